use predify_spec::*;
#[test]
fn show() {
    let src = r#"name = "PVGG-16"
imports = ["from torch.nn import Sequential, ReLU, ConvTranspose2d", 3]
gradient_scaling = "yes"
input_size = [3, 0, 224, 5, 6]
colour = 1

[[pcoders]]
module = "features[3"
predictor = "ConvTranspose2d(64, 3, kernel_size=(5, 5), stride=(1, 1), paddin=(2, 2))"
hyperparameters = {feedforward=-0.2, feedback=0.05, pc=0.01, foo=1}

[[pcoders]]
modul = "features[8]"
predictor = "Sequential(ConvTranspose2d(128, 64, kernel_size=(10, 10), stride=(2, 2), padding=(4, 4)), ReLU(inplace=True))"
hyperparameters = {feedforward=0.8, feedback=0.5}

[[pcoders]]
module = "features[10]"
predictor = """
Sequential(ConvTranspose3d(128, 64, kernel_size=(10, 10, 1)), Conv2d(32, 63, 3))"""
hyperparameters.pc = 1e400
"#;
    match Spec::from_toml_str(src) { Ok(s) => println!("{s:#?}"), Err(e) => println!("{e}") }
    for s in ["", "a = ", "name = 'x'\n[[pcoders]]\nmodule='a'\n[pcoders]\n", "name=1\ninput_size=[3,4,5]\npcoders=[]"] {
        match Spec::from_toml_str(s) { Ok(s) => println!("{s:#?}"), Err(e) => println!("---\n{e}") }
    }
}
