//! Every class of spec error: its kind, the pcoder (1-based), the key, and the line:col.

use predify_spec::{AttachPointErrorKind, ExprErrorKind, Spec, SpecErrorKind, SpecErrors};

const BASE: &str = r#"name = "PNet"
input_size = [3, 32, 32]

[[pcoders]]
module = "conv1"
predictor = "ConvTranspose2d(16, 3, 3, padding=1)"
hyperparameters = {feedforward=0.3, feedback=0.3, pc=0.01}

[[pcoders]]
module = "conv2"
predictor = "Sequential(ConvTranspose2d(32, 16, 4, stride=2, padding=1), ReLU(inplace=True))"
"#;

fn errors(src: &str) -> SpecErrors {
    match Spec::from_toml_str(src) {
        Ok(spec) => panic!("expected errors, got {spec:?}"),
        Err(e) => e,
    }
}

/// The only error of `src`: kind, pcoder, key, and (line, col).
fn only(src: &str) -> (SpecErrorKind, Option<usize>, Option<String>, (usize, usize)) {
    let errs = errors(src);
    assert_eq!(errs.errors().len(), 1, "{errs}");
    let e = &errs.errors()[0];
    (e.kind.clone(), e.pcoder, e.key.clone(), errs.line_col(e).unwrap())
}

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

#[test]
fn base_is_valid() {
    Spec::from_toml_str(BASE).unwrap();
}

#[test]
fn missing_required_keys() {
    let (kind, pcoder, key, at) = only(&edit("input_size = [3, 32, 32]\n", ""));
    assert!(matches!(kind, SpecErrorKind::MissingKey { .. }));
    assert_eq!((pcoder, key.as_deref(), at), (None, Some("input_size"), (1, 1)));

    let no_pcoders = BASE.split("[[pcoders]]").next().unwrap();
    let (kind, pcoder, key, _) = only(no_pcoders);
    assert!(matches!(kind, SpecErrorKind::MissingKey { .. }));
    assert_eq!((pcoder, key.as_deref()), (None, Some("pcoders")));

    let (kind, pcoder, key, at) = only(&edit("module = \"conv2\"\n", ""));
    assert!(matches!(kind, SpecErrorKind::MissingKey { .. }));
    assert_eq!((pcoder, key.as_deref(), at), (Some(2), Some("module"), (9, 1)));

    let (kind, _, key, _) = only(&edit("name = \"PNet\"\n", ""));
    assert!(matches!(kind, SpecErrorKind::MissingKey { .. }));
    assert_eq!(key.as_deref(), Some("name"));
}

#[test]
fn empty_pcoders() {
    let src = format!("{}pcoders = []\n", BASE.split("[[pcoders]]").next().unwrap());
    let (kind, pcoder, key, at) = only(&src);
    assert_eq!(kind, SpecErrorKind::EmptyPCoders);
    assert_eq!((pcoder, key.as_deref(), at), (None, Some("pcoders"), (4, 11)));
}

#[test]
fn wrong_types() {
    let cases: &[(&str, &str, Option<usize>, &str, &str)] = &[
        ("name = \"PNet\"", "name = 3", None, "name", "integer 3"),
        ("input_size = [3, 32, 32]", "input_size = \"3x32x32\"", None, "input_size", "string \"3x32x32\""),
        ("input_size = [3, 32, 32]", "input_size = [3, 32.0, 32]", None, "input_size", "float 32.0"),
        (
            "input_size = [3, 32, 32]",
            "input_size = [3, 32, 32]\ngradient_scaling = 1",
            None,
            "gradient_scaling",
            "integer 1",
        ),
        (
            "input_size = [3, 32, 32]",
            "input_size = [3, 32, 32]\nshared_hyperparameters = \"no\"",
            None,
            "shared_hyperparameters",
            "string \"no\"",
        ),
        (
            "input_size = [3, 32, 32]",
            "input_size = [3, 32, 32]\nimports = \"torch\"",
            None,
            "imports",
            "string \"torch\"",
        ),
        ("input_size = [3, 32, 32]", "input_size = [3, 32, 32]\nimports = [1]", None, "imports", "integer 1"),
        ("module = \"conv1\"", "module = [\"conv1\"]", Some(1), "module", "an array"),
        (
            "predictor = \"ConvTranspose2d(16, 3, 3, padding=1)\"",
            "predictor = false",
            Some(1),
            "predictor",
            "boolean false",
        ),
        (
            "hyperparameters = {feedforward=0.3, feedback=0.3, pc=0.01}",
            "hyperparameters = 0.3",
            Some(1),
            "hyperparameters",
            "float 0.3",
        ),
        ("feedback=0.3", "feedback=\"0.3\"", Some(1), "hyperparameters.feedback", "string \"0.3\""),
        (
            "module = \"conv2\"",
            "module = \"conv2\"\nhyperparameters = {pc = 2024-01-01}",
            Some(2),
            "hyperparameters.pc",
            "a datetime",
        ),
    ];
    for (from, to, want_pcoder, want_key, want_found) in cases {
        let (kind, pcoder, key, _) = only(&edit(from, to));
        match kind {
            SpecErrorKind::WrongType { found, .. } => assert_eq!(&found, want_found, "{to}"),
            other => panic!("{to}: {other:?}"),
        }
        assert_eq!((pcoder, key.as_deref()), (*want_pcoder, Some(*want_key)), "{to}");
    }

    // `pcoders` as a single table, and a non-table element.
    let head = BASE.split("[[pcoders]]").next().unwrap();
    let (kind, _, key, _) = only(&format!("{head}[pcoders]\nmodule = \"conv1\"\n"));
    assert!(matches!(kind, SpecErrorKind::WrongType { .. }));
    assert_eq!(key.as_deref(), Some("pcoders"));
    let (kind, pcoder, key, _) = only(&format!("{head}pcoders = [{{module = \"conv1\"}}, 5]\n"));
    assert!(matches!(kind, SpecErrorKind::WrongType { found, .. } if found == "integer 5"));
    assert_eq!((pcoder, key.as_deref()), (Some(2), Some("pcoders")));
}

#[test]
fn feedforward_plus_feedback_above_one() {
    let (kind, pcoder, key, at) = only(&edit("feedforward=0.3, feedback=0.3", "feedforward=0.7, feedback=0.4"));
    assert_eq!(kind, SpecErrorKind::HyperparameterSum { feedforward: 0.7, feedback: 0.4 });
    assert_eq!((pcoder, key.as_deref(), at), (Some(1), Some("hyperparameters"), (7, 19)));
    // With the default feedback (0.3).
    let (kind, pcoder, ..) =
        only(&edit("module = \"conv2\"", "module = \"conv2\"\nhyperparameters = {feedforward = 0.8}"));
    assert_eq!(kind, SpecErrorKind::HyperparameterSum { feedforward: 0.8, feedback: 0.3 });
    assert_eq!(pcoder, Some(2));
    // Exactly 1 is fine, also where f64 would say otherwise: f32(0.7) + f32(0.3) = 1 exactly.
    Spec::from_toml_str(&edit("feedforward=0.3, feedback=0.3", "feedforward=0.7, feedback=0.3")).unwrap();
    Spec::from_toml_str(&edit("feedforward=0.3, feedback=0.3", "feedforward=1, feedback=0")).unwrap();
}

#[test]
fn negative_or_non_finite_hyperparameters() {
    let cases = [
        ("feedforward=0.3", "feedforward=-0.5", "hyperparameters.feedforward", -0.5),
        ("feedback=0.3", "feedback=-1", "hyperparameters.feedback", -1.0),
        ("pc=0.01", "pc=-0.01", "hyperparameters.pc", -0.01),
        ("pc=0.01", "pc=inf", "hyperparameters.pc", f64::INFINITY),
        ("pc=0.01", "pc=1e300", "hyperparameters.pc", 1e300), // finite in f64, not in f32
    ];
    for (from, to, want_key, want) in cases {
        let (kind, pcoder, key, _) = only(&edit(from, to));
        assert_eq!(kind, SpecErrorKind::InvalidHyperparameter { found: want }, "{to}");
        assert_eq!((pcoder, key.as_deref()), (Some(1), Some(want_key)));
    }
    let (kind, ..) = only(&edit("pc=0.01", "pc=nan"));
    assert!(matches!(kind, SpecErrorKind::InvalidHyperparameter { found } if found.is_nan()));
    let e = errors(&edit("feedforward=0.3", "feedforward=-0.5"));
    assert_eq!(
        e.errors()[0].to_string(),
        "pcoder 1: hyperparameters.feedforward: expected a finite number >= 0, found -0.5"
    );
}

#[test]
fn bad_input_size() {
    for (to, at) in
        [("[3, 32]", (2, 14)), ("[3, 32, 32, 32, 32]", (2, 14)), ("[3, 0, 32]", (2, 18)), ("[3, 32, -1]", (2, 22))]
    {
        let (kind, pcoder, key, got_at) = only(&edit("[3, 32, 32]", to));
        assert!(matches!(kind, SpecErrorKind::InvalidInputSize { .. }), "{to}: {kind:?}");
        assert_eq!((pcoder, key.as_deref(), got_at), (None, Some("input_size"), at), "{to}");
    }
}

#[test]
fn bad_name() {
    let (kind, ..) = only(&edit("\"PNet\"", "\"P-Net\""));
    assert_eq!(kind, SpecErrorKind::InvalidName("P-Net".into()));
}

#[test]
fn bad_module_path_points_into_the_string() {
    let (kind, pcoder, key, at) = only(&edit("\"conv2\"", "\"layer[x]\""));
    assert!(
        matches!(kind, SpecErrorKind::InvalidModule(ref e) if e.offset == 5 && e.kind == AttachPointErrorKind::BadIndex)
    );
    // `module = "` is 10 characters; byte 5 of the path is column 16.
    assert_eq!((pcoder, key.as_deref(), at), (Some(2), Some("module"), (10, 16)));
}

#[test]
fn unknown_keys() {
    let errs = errors(&edit("name = \"PNet\"", "name = \"PNet\"\ncolour = 1"));
    let e = &errs.errors()[0];
    assert!(matches!(e.kind, SpecErrorKind::UnknownKey { suggestion: None, .. }));
    assert_eq!((e.pcoder, e.key.as_deref(), errs.line_col(e)), (None, Some("colour"), Some((2, 1))));

    let (kind, pcoder, key, at) = only(&edit("predictor = \"Seq", "predicter = \"Seq"));
    assert!(matches!(kind, SpecErrorKind::UnknownKey { suggestion: Some("predictor"), .. }));
    assert_eq!((pcoder, key.as_deref(), at), (Some(2), Some("predicter"), (11, 1)));

    let (kind, pcoder, key, _) = only(&edit("pc=0.01", "pc=0.01, alpha=1"));
    assert!(matches!(kind, SpecErrorKind::UnknownKey { .. }));
    assert_eq!((pcoder, key.as_deref()), (Some(1), Some("hyperparameters.alpha")));
}

#[test]
fn predictor_errors_point_into_the_string() {
    // Unknown layer type, named.
    let (kind, pcoder, key, at) = only(&edit("ReLU(inplace=True)", "Tanh()"));
    assert!(
        matches!(&kind, SpecErrorKind::InvalidPredictor(e) if e.kind == ExprErrorKind::UnknownLayer("Tanh".into()))
    );
    assert_eq!((pcoder, key.as_deref()), (Some(2), Some("predictor")));
    // `predictor = "` is 13 characters; `Tanh` is at byte 60 of the expression.
    assert_eq!(at, (11, 14 + 60));

    // Malformed expression.
    let (kind, pcoder, _, at) = only(&edit("padding=1)\"", "padding=1\""));
    assert!(
        matches!(&kind, SpecErrorKind::InvalidPredictor(e) if e.offset == 35 && matches!(e.kind, ExprErrorKind::Unexpected { .. }))
    );
    assert_eq!((pcoder, at), (Some(1), (6, 14 + 35)));

    // Arity: too many positional, missing, duplicate keyword, unknown keyword.
    let arity = [
        ("ReLU(inplace=True)", "ReLU(True, True)"),
        ("ConvTranspose2d(16, 3, 3, padding=1)", "ConvTranspose2d(16, 3)"),
        ("padding=1)", "padding=1, padding=1)"),
        ("padding=1)", "pading=1)"),
    ];
    for (from, to) in arity {
        let (kind, ..) = only(&edit(from, to));
        let SpecErrorKind::InvalidPredictor(e) = &kind else { panic!("{to}: {kind:?}") };
        assert!(
            matches!(
                e.kind,
                ExprErrorKind::TooManyPositional { .. }
                    | ExprErrorKind::MissingArgument { .. }
                    | ExprErrorKind::DuplicateArgument { .. }
                    | ExprErrorKind::UnknownKeyword { .. }
            ),
            "{to}: {kind:?}"
        );
    }
}

#[test]
fn predictor_offsets_survive_escapes_and_multiline_strings() {
    let src = edit(
        "predictor = \"ConvTranspose2d(16, 3, 3, padding=1)\"",
        "predictor = \"\"\"\nConvTranspose2d(16, 3, 3,\n    padding=1, mode=\\\"x\\\")\"\"\"",
    );
    let (kind, _, _, at) = only(&src);
    assert!(
        matches!(&kind, SpecErrorKind::InvalidPredictor(e) if matches!(e.kind, ExprErrorKind::UnknownKeyword { .. }))
    );
    assert_eq!(at, (8, 16));

    let src = edit("ReLU(inplace=True)", "ReLU(inplace=\\u0054rue, x=1)");
    let (_, _, _, at) = only(&src);
    // `x` is at byte 79 of the value; the escape `\u0054` before it is 6 bytes in the
    // source but 1 in the value.
    assert_eq!(at, (11, 14 + 79 + 5));
}

#[test]
fn predictor_dimensions_and_channels_are_checked_against_the_spec() {
    let (kind, pcoder, key, at) =
        only(&edit("ConvTranspose2d(16, 3, 3, padding=1)", "ConvTranspose3d(16, 3, 3, padding=1)"));
    assert!(matches!(kind, SpecErrorKind::PredictorDims { layer_dims: 3, spec_dims: 2, offset: 0, .. }), "{kind:?}");
    assert_eq!((pcoder, key.as_deref(), at), (Some(1), Some("predictor"), (6, 14)));

    let (kind, ..) = only(&edit("ReLU(inplace=True)", "Upsample(scale_factor=2, mode='trilinear')"));
    assert!(matches!(kind, SpecErrorKind::PredictorDims { layer_dims: 3, spec_dims: 2, offset: 60, .. }), "{kind:?}");

    // Pcoder 1 predicts the 3-channel image.
    let (kind, pcoder, ..) = only(&edit("ConvTranspose2d(16, 3,", "ConvTranspose2d(16, 4,"));
    assert!(matches!(kind, SpecErrorKind::ChannelMismatch { expected: 3, found: 4, .. }), "{kind:?}");
    assert_eq!(pcoder, Some(1));
    // Pcoder 2 predicts what pcoder 1's predictor takes (16 channels).
    let (kind, pcoder, ..) = only(&edit("ConvTranspose2d(32, 16,", "ConvTranspose2d(32, 8,"));
    assert!(matches!(kind, SpecErrorKind::ChannelMismatch { expected: 16, found: 8, offset: 11, .. }), "{kind:?}");
    assert_eq!(pcoder, Some(2));
    // Inside a Sequential, convolutions chain.
    let (kind, ..) = only(&edit("ReLU(inplace=True)", "Conv2d(15, 16, 1)"));
    assert!(matches!(kind, SpecErrorKind::ChannelMismatch { expected: 16, found: 15, offset: 60, .. }), "{kind:?}");
}

#[test]
fn all_errors_are_collected_in_source_order() {
    let src = r#"name = "P-1"
input_size = [3, 0]
typo = true

[[pcoders]]
module = "a..b"
predictor = "Conv2d(1, 2)"
hyperparameters = {feedforward=-1, feedback=2, pc="x"}

[[pcoders]]
predictor = "ReLU()"
"#;
    let errs = errors(src);
    let lines: Vec<String> = errs.to_string().lines().map(str::to_string).collect();
    // The exact list (feedback = 2 is a valid number on its own; the sum is not checked while
    // another hyperparameter is invalid).
    assert_eq!(lines, vec![
        "1:8: name: expected an identifier (letters, digits, `_`, not starting with a digit), found \"P-1\"",
        "2:14: input_size: expected 3 or 4 positive integers ([C, H, W] or [C, D, H, W]), found [3, 0]",
        "3:1: typo: unknown key (expected one of: name, input_size, gradient_scaling, shared_hyperparameters, error_scaling, imports, pcoders)",
        "6:13: pcoder 1: module: invalid module path: at byte 2: expected a name or an index, found '.'",
        "7:25: pcoder 1: predictor: invalid predictor: at byte 11: Conv2d is missing required argument `kernel_size`",
        "8:32: pcoder 1: hyperparameters.feedforward: expected a finite number >= 0, found -1.0",
        "8:51: pcoder 1: hyperparameters.pc: expected a number, found string \"x\"",
        "10:1: pcoder 2: module: missing required key (expected a module path such as \"features[3]\")",
    ]);
    assert_eq!(errs.errors().len(), 8);
}

#[test]
fn toml_syntax_errors_keep_the_parsers_position() {
    let (kind, pcoder, key, at) = only("name = \"P\"\ninput_size = [3, 4, 4\n");
    assert!(matches!(kind, SpecErrorKind::Syntax(_)));
    assert_eq!((pcoder, key), (None, None));
    assert_eq!(at.0, 3);
    let (kind, _, _, at) = only("name = \"P\"\nname = \"Q\"\n");
    assert!(matches!(kind, SpecErrorKind::Syntax(ref m) if m.contains("duplicate key")));
    assert_eq!(at, (2, 1));
}

#[test]
fn dotted_keys_and_table_headers_are_accepted() {
    let src = edit(
        "hyperparameters = {feedforward=0.3, feedback=0.3, pc=0.01}",
        "hyperparameters.feedforward = 0.25\nhyperparameters.pc = 0.5",
    );
    let spec = Spec::from_toml_str(&src).unwrap();
    assert_eq!((spec.pcoders[0].hyperparameters.feedforward, spec.pcoders[0].hyperparameters.pc), (0.25, 0.5));
    let src = format!("{BASE}[pcoders.hyperparameters]\nfeedback = 0.5\n");
    let spec = Spec::from_toml_str(&src).unwrap();
    assert_eq!(spec.pcoders[1].hyperparameters.feedback, 0.5);
    let src = format!("{BASE}[pcoders.hyperparameters]\nfeedbak = 0.5\n");
    let (kind, pcoder, key, at) = only(&src);
    assert!(matches!(kind, SpecErrorKind::UnknownKey { suggestion: Some("feedback"), .. }));
    assert_eq!((pcoder, key.as_deref(), at), (Some(2), Some("hyperparameters.feedbak"), (13, 1)));
}
