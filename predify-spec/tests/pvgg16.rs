//! Predify's own PVGG16 config parses, unchanged, to the expected typed values.

use predify_spec::{AttachPoint, ConvSpec, Hyperparameters, Layer, PathSegment, Predictor, Spec};

const PVGG16: &str = r#"name = "PVGG16"
imports = ["from torch.nn import Sequential, ReLU, ConvTranspose2d"]
gradient_scaling = true
shared_hyperparameters = false
input_size = [3, 224, 224]

[[pcoders]]
module = "features[3]"
predictor = "ConvTranspose2d(64, 3, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"
hyperparameters = {feedforward=0.2, feedback=0.05, pc=0.01}

[[pcoders]]
module = "features[8]"
predictor = "Sequential(ConvTranspose2d(128, 64, kernel_size=(10, 10), stride=(2, 2), padding=(4, 4)), ReLU(inplace=True))"
hyperparameters = {feedforward=0.4, feedback=0.1, pc=0.01}
"#;

fn conv_t(in_c: usize, out_c: usize, k: usize, s: usize, p: usize) -> ConvSpec {
    ConvSpec {
        dims: 2,
        in_channels: in_c,
        out_channels: out_c,
        kernel_size: vec![k, k],
        stride: vec![s, s],
        padding: vec![p, p],
        output_padding: vec![0, 0],
        dilation: vec![1, 1],
        groups: 1,
        bias: true,
    }
}

#[test]
fn pvgg16_parses_to_typed_values() {
    let spec = Spec::from_toml_str(PVGG16).unwrap();
    assert_eq!(spec.name, "PVGG16");
    assert_eq!(spec.imports, vec!["from torch.nn import Sequential, ReLU, ConvTranspose2d".to_string()]);
    assert!(spec.gradient_scaling);
    assert!(!spec.shared_hyperparameters);
    assert_eq!(spec.input_size, vec![3, 224, 224]);
    assert!(!spec.is_3d());
    assert_eq!(spec.spatial_dims(), 2);
    assert_eq!(spec.pcoders.len(), 2);

    let p1 = &spec.pcoders[0];
    assert_eq!(p1.module, AttachPoint { segments: vec![PathSegment::Field("features".into()), PathSegment::Index(3)] });
    assert_eq!(p1.module.to_string(), "features[3]");
    assert_eq!(p1.predictor, Some(Predictor::Single(Layer::ConvTranspose(conv_t(64, 3, 5, 1, 2)))));
    assert_eq!(p1.hyperparameters, Hyperparameters { feedforward: 0.2, feedback: 0.05, pc: 0.01 });

    let p2 = &spec.pcoders[1];
    assert_eq!(p2.module.to_string(), "features[8]");
    assert_eq!(
        p2.predictor,
        Some(Predictor::Sequential(vec![
            Layer::ConvTranspose(conv_t(128, 64, 10, 2, 4)),
            Layer::ReLU { inplace: true },
        ]))
    );
    assert_eq!(spec.hyperparameters(1), Hyperparameters { feedforward: 0.4, feedback: 0.1, pc: 0.01 });
    assert_eq!(spec.hyperparameters(1).memory(), (1.0f32 - 0.4) - 0.1);
}

#[test]
fn predictor_helpers_match_predify_naming() {
    let spec = Spec::from_toml_str(PVGG16).unwrap();
    let single = spec.pcoders[0].predictor.as_ref().unwrap();
    let seq = spec.pcoders[1].predictor.as_ref().unwrap();
    assert_eq!(single.layers().len(), 1);
    assert_eq!(single.param_prefix(0), "pmodule");
    assert_eq!(seq.layers().len(), 2);
    assert_eq!(seq.param_prefix(0), "pmodule.0");
    assert_eq!(seq.param_prefix(1), "pmodule.1");
    assert!(seq.layers()[0].has_params());
    assert!(!seq.layers()[1].has_params());
    assert_eq!((seq.in_channels(), seq.out_channels()), (Some(128), Some(64)));
}

#[test]
fn display_is_pytorch_repr() {
    let spec = Spec::from_toml_str(PVGG16).unwrap();
    assert_eq!(
        spec.pcoders[0].predictor.as_ref().unwrap().to_string(),
        "ConvTranspose2d(64, 3, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"
    );
    assert_eq!(
        spec.pcoders[1].predictor.as_ref().unwrap().to_string(),
        "Sequential(ConvTranspose2d(128, 64, kernel_size=(10, 10), stride=(2, 2), padding=(4, 4)), ReLU(inplace=True))"
    );
}

#[test]
fn to_toml_round_trips() {
    let spec = Spec::from_toml_str(PVGG16).unwrap();
    let again = Spec::from_toml_str(&spec.to_toml_string()).unwrap();
    assert_eq!(spec, again);
}

#[test]
fn shared_hyperparameters_use_the_first_pcoders() {
    let text = PVGG16.replace("shared_hyperparameters = false", "shared_hyperparameters = true");
    let spec = Spec::from_toml_str(&text).unwrap();
    let first = Hyperparameters { feedforward: 0.2, feedback: 0.05, pc: 0.01 };
    assert_eq!(spec.hyperparameters(0), first);
    assert_eq!(spec.hyperparameters(1), first);
    // As written, pcoder 2 keeps its own values.
    assert_eq!(spec.pcoders[1].hyperparameters.feedforward, 0.4);
}

#[test]
fn defaults_and_3d() {
    let spec = Spec::from_toml_str(
        "name = \"P3\"\ninput_size = [1, 8, 16, 16]\n[[pcoders]]\nmodule = \"blocks.0\"\n\
         predictor = \"nn.ConvTranspose3d(4, 1, 3, padding=1)\"\n\
         [[pcoders]]\nmodule = \"conv2\"\nhyperparameters = {feedforward = 1, feedback = 0}\n",
    )
    .unwrap();
    assert!(spec.is_3d());
    assert_eq!(spec.spatial_dims(), 3);
    assert!(!spec.gradient_scaling && !spec.shared_hyperparameters && spec.imports.is_empty());
    assert_eq!(spec.pcoders[0].hyperparameters, Hyperparameters::default());
    assert_eq!(spec.pcoders[0].hyperparameters, Hyperparameters { feedforward: 0.3, feedback: 0.3, pc: 0.01 });
    assert_eq!(spec.pcoders[1].hyperparameters, Hyperparameters { feedforward: 1.0, feedback: 0.0, pc: 0.01 });
    assert_eq!(spec.pcoders[1].predictor, None);
    assert_eq!(spec.pcoders[0].module.to_string(), "blocks[0]");
    let Some(Predictor::Single(Layer::ConvTranspose(c))) = &spec.pcoders[0].predictor else { panic!() };
    assert_eq!((c.dims, c.kernel_size.clone(), c.padding.clone()), (3, vec![3, 3, 3], vec![1, 1, 1]));
}

#[test]
fn from_path_reads_files_and_names_them_in_errors() {
    let dir = std::env::temp_dir().join(format!("predify-spec-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("pvgg16.toml");
    std::fs::write(&good, PVGG16).unwrap();
    assert_eq!(Spec::from_path(&good).unwrap(), Spec::from_toml_str(PVGG16).unwrap());

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "name = \"P\"\ninput_size = [3, 32]\n[[pcoders]]\nmodule = \"a\"\n").unwrap();
    let err = Spec::from_path(&bad).unwrap_err();
    assert_eq!(err.path(), Some(bad.as_path()));
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2:14: input_size: expected 3 or 4 positive integers ([C, H, W] or [C, D, H, W]), found [3, 32]",
            bad.display()
        )
    );

    let missing = dir.join("missing.toml");
    let err = Spec::from_path(&missing).unwrap_err();
    assert_eq!(err.errors().len(), 1);
    assert!(matches!(&err.errors()[0].kind, predify_spec::SpecErrorKind::Io { path, .. } if path == &missing));
    assert!(err.to_string().contains("missing.toml"));
    std::fs::remove_dir_all(&dir).unwrap();
}
