//! Property tests: the parsers never panic, on any input, and valid specs round-trip
//! through TOML.

use predify_spec::{
    ErrorScaling,
    parse_predictor, AttachPoint, AxisValues, ConvSpec, Hyperparameters, Layer, PCoderSpec, PathSegment, Predictor,
    Spec, SpecErrors, UpsampleMode, UpsampleSpec,
};
use proptest::prelude::*;

const CASES: u32 = 3000;

/// Pieces that predictor expressions are made of, so random joins often get far into parsing.
const EXPR_FRAGMENTS: &[&str] = &[
    "Sequential(",
    "ConvTranspose2d(",
    "ConvTranspose3d(",
    "Conv2d(",
    "Conv3d(",
    "ReLU(",
    "Upsample(",
    "nn.",
    "torch.nn.",
    "Tanh(",
    "(",
    ")",
    "[",
    "]",
    ",",
    ", ",
    "=",
    "-",
    ".",
    "0",
    "1",
    "3",
    "64",
    "2.0",
    "1.",
    ".5",
    "1e-3",
    "1e",
    "99999999999999999999",
    "True",
    "False",
    "None",
    "'nearest'",
    "\"bilinear\"",
    "'trilinear'",
    "'zeros'",
    "'same'",
    "'valid'",
    "'",
    "\"",
    "\\",
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "output_padding",
    "dilation",
    "groups",
    "bias",
    "padding_mode",
    "size",
    "scale_factor",
    "mode",
    "align_corners",
    "recompute_scale_factor",
    "inplace",
    " ",
    "\n",
    "(3, 3)",
    "(2.0, 1.5)",
    "[1, 2, 3]",
    "é",
    "$",
];

fn fragments(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(pieces), 0..max).prop_map(|v| v.concat())
}

/// Checks what every error report must satisfy: it formats, and positions are in the text.
fn check_report(text: &str, errors: &SpecErrors) {
    assert!(!errors.errors().is_empty());
    let shown = errors.to_string();
    assert_eq!(shown.lines().count(), errors.errors().len());
    for e in errors.errors() {
        if let Some(p) = errors.position(e) {
            assert!(p <= text.len(), "{p} > {} for {e}", text.len());
            let (line, col) = errors.line_col(e).unwrap();
            assert!(line >= 1 && col >= 1 && line <= text.lines().count().max(1) + 1);
        }
    }
}

/// Parsing a spec: never panics; errors well-formed; a valid spec round-trips.
fn check_spec_text(text: &str) {
    match Spec::from_toml_str(text) {
        Ok(spec) => {
            assert!(!spec.pcoders.is_empty());
            let again = Spec::from_toml_str(&spec.to_toml_string());
            assert_eq!(again.as_ref(), Ok(&spec), "{}", spec.to_toml_string());
        }
        Err(errors) => check_report(text, &errors),
    }
}

/// Parsing a predictor: never panics; what parses prints back to itself.
fn check_predictor_text(text: &str) {
    match parse_predictor(text) {
        Ok(p) => assert_eq!(parse_predictor(&p.to_string()), Ok(p.clone()), "{text} -> {p}"),
        Err(e) => assert!(e.offset <= text.len()),
    }
}

// ---- Generated valid specs ------------------------------------------------------------

/// Draws numbers from a pool of random words: dependent choices (channel counts that must
/// chain) are simpler to write this way than with nested strategies.
struct Dice<'a> {
    words: &'a [u32],
    at: usize,
}

impl Dice<'_> {
    fn roll(&mut self, n: u32) -> u32 {
        let w = self.words.get(self.at % self.words.len().max(1)).copied().unwrap_or(0);
        self.at += 1;
        w.rotate_left((self.at % 32) as u32) % n.max(1)
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.roll((hi - lo + 1) as u32) as usize
    }
    fn coin(&mut self) -> bool {
        self.roll(2) == 1
    }
    fn unit(&mut self) -> f32 {
        self.roll(u32::MAX) as f32 / u32::MAX as f32
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn conv(d: &mut Dice, dims: usize, input: usize, output: usize, transposed: bool) -> Layer {
    let axes = |d: &mut Dice, lo: usize, hi: usize| (0..dims).map(|_| d.range(lo, hi)).collect::<Vec<_>>();
    let kernel_size = axes(d, 1, 7);
    let stride = axes(d, 1, 3);
    let dilation = axes(d, 1, 2);
    let padding = axes(d, 0, 3);
    let output_padding = if transposed {
        stride.iter().zip(&dilation).map(|(&s, &l)| d.range(0, s.max(l) - 1)).collect()
    } else {
        vec![0; dims]
    };
    let groups = if d.coin() { gcd(input, output) } else { 1 };
    let spec = ConvSpec {
        dims,
        in_channels: input,
        out_channels: output,
        kernel_size,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        bias: d.coin(),
    };
    if transposed {
        Layer::ConvTranspose(spec)
    } else {
        Layer::Conv(spec)
    }
}

fn upsample(d: &mut Dice, dims: usize) -> Layer {
    const SCALES: &[f64] = &[1.0, 1.5, 2.0, 3.0, 0.5, 2.25, 1e-3, 4.0, 0.1];
    let mode = match d.roll(3) {
        0 => UpsampleMode::Nearest,
        _ if dims == 2 => UpsampleMode::Bilinear,
        _ => UpsampleMode::Trilinear,
    };
    let scale = |d: &mut Dice| SCALES.get(d.roll(SCALES.len() as u32) as usize).copied().unwrap_or(2.0);
    let (size, scale_factor) = match d.roll(4) {
        0 => (Some(AxisValues::Uniform(d.range(1, 64))), None),
        1 => (Some(AxisValues::PerAxis((0..dims).map(|_| d.range(1, 64)).collect())), None),
        2 => (None, Some(AxisValues::Uniform(scale(d)))),
        _ => (None, Some(AxisValues::PerAxis((0..dims).map(|_| scale(d)).collect()))),
    };
    let align_corners = match (mode, d.roll(3)) {
        (UpsampleMode::Nearest, _) | (_, 0) => None,
        (_, 1) => Some(true),
        _ => Some(false),
    };
    Layer::Upsample(UpsampleSpec { size, scale_factor, mode, align_corners })
}

/// A predictor from `input` to `output` channels.
fn predictor(d: &mut Dice, dims: usize, input: usize, output: usize) -> Predictor {
    if d.roll(3) == 0 {
        let transposed = d.coin();
        return Predictor::Single(conv(d, dims, input, output, transposed));
    }
    let mut layers = Vec::new();
    let convs = d.range(0, 2);
    let mut channels = input;
    for k in 0..convs {
        let next = if k + 1 == convs { output } else { d.range(1, 32) };
        if d.coin() {
            layers.push(upsample(d, dims));
        }
        let transposed = d.coin();
        layers.push(conv(d, dims, channels, next, transposed));
        channels = next;
        if d.coin() {
            layers.push(Layer::ReLU { inplace: d.coin() });
        }
    }
    if convs == 0 || layers.is_empty() {
        // Channel-preserving only: any input/output counts are left unchecked.
        layers.push(if d.coin() { Layer::ReLU { inplace: d.coin() } } else { upsample(d, dims) });
    }
    Predictor::Sequential(layers)
}

fn ident(d: &mut Dice) -> String {
    const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_";
    const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
    let mut s = String::new();
    s.push(FIRST.get(d.roll(FIRST.len() as u32) as usize).copied().unwrap_or(b'a') as char);
    for _ in 0..d.range(0, 8) {
        s.push(REST.get(d.roll(REST.len() as u32) as usize).copied().unwrap_or(b'x') as char);
    }
    s
}

fn module(d: &mut Dice) -> AttachPoint {
    let segments = (0..d.range(1, 4))
        .map(|_| if d.roll(3) == 0 { PathSegment::Index(d.range(0, 5000)) } else { PathSegment::Field(ident(d)) })
        .collect();
    AttachPoint { segments }
}

fn hyperparameters(d: &mut Dice) -> Hyperparameters {
    let feedforward = d.unit();
    let mut feedback = d.unit() * (1.0 - feedforward);
    if (1.0f32 - feedforward) - feedback < 0.0 {
        feedback = 0.0;
    }
    let pc = if d.coin() { d.unit() * 10.0 } else { d.range(0, 3) as f32 };
    Hyperparameters { feedforward, feedback, pc }
}

fn valid_spec(words: &[u32], imports: Vec<String>) -> Spec {
    let d = &mut Dice { words, at: 0 };
    let dims = d.range(2, 3);
    let mut input_size = vec![d.range(1, 8)];
    input_size.extend((0..dims).map(|_| d.range(1, 300)));
    let n = d.range(1, 4);
    let mut channels = vec![input_size.first().copied().unwrap_or(1)];
    channels.extend((0..n).map(|_| d.range(1, 64)));
    let pcoders = (1..=n)
        .map(|i| PCoderSpec {
            module: module(d),
            predictor: d.roll(4).ne(&0).then(|| predictor(d, dims, channels[i], channels[i - 1])),
            hyperparameters: hyperparameters(d),
        })
        .collect();
    let error_scaling = if d.coin() { ErrorScaling::PerSample } else { ErrorScaling::BatchMean };
    Spec { name: ident(d), input_size, gradient_scaling: d.coin(), shared_hyperparameters: d.coin(), error_scaling, imports, pcoders }
}

// ---- Generated TOML documents ---------------------------------------------------------

const KEYS: &[&str] = &[
    "name",
    "input_size",
    "gradient_scaling",
    "shared_hyperparameters",
    "imports",
    "pcoders",
    "module",
    "predictor",
    "hyperparameters",
    "feedforward",
    "feedback",
    "pc",
    "nmae",
    "Module",
    "x",
    "hyperparameters.pc",
    "hyperparameters.feedforward",
    "\"quoted key\"",
];

const PLAUSIBLE: &[&str] = &[
    "\"PNet\"",
    "[3, 32, 32]",
    "[1, 4, 8, 8]",
    "[3, 0, 32]",
    "true",
    "false",
    "[\"import torch\"]",
    "\"features[3]\"",
    "\"conv1\"",
    "\"ConvTranspose2d(16, 3, 3, padding=1)\"",
    "\"ReLU()\"",
    "{feedforward=0.2, feedback=0.05, pc=0.01}",
    "{pc=-1}",
    "{}",
    "[]",
    "1979-05-27",
    "inf",
    "nan",
    "-0.5",
    "0.3",
    "1e300",
    "9223372036854775807",
    "-9223372036854775808",
];

fn toml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        3 => prop::sample::select(PLAUSIBLE).prop_map(str::to_string),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => any::<f64>().prop_map(|f| if f.is_finite() { format!("{f:?}") } else { "nan".to_string() }),
        1 => fragments(EXPR_FRAGMENTS, 12).prop_map(|s| format!("{s:?}")),
        1 => "[a-z_.\\[\\]0-9]{0,12}".prop_map(|s| format!("'{s}'")),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|v| {
                let items: Vec<String> = v.into_iter().map(|(k, x)| format!("{k} = {x}")).collect();
                format!("{{{}}}", items.join(", "))
            }),
        ]
    })
}

fn toml_lines(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(KEYS), toml_value()), 0..max)
        .prop_map(|v| v.into_iter().map(|(k, x)| format!("{k} = {x}\n")).collect::<String>())
}

fn toml_document() -> impl Strategy<Value = String> {
    let section = (
        prop::sample::select(
            &["[[pcoders]]", "[[pcoders]]", "[[pcoders]]", "[pcoders.hyperparameters]", "[pcoders]", "[[other]]"][..],
        ),
        toml_lines(5),
    )
        .prop_map(|(header, body)| format!("\n{header}\n{body}"));
    (toml_lines(7), prop::collection::vec(section, 0..4)).prop_map(|(root, sections)| root + &sections.concat())
}

const MODULES: &[&str] = &[
    "\"features[3]\"",
    "\"conv1\"",
    "\"blocks.0\"",
    "'layer4[1].conv2'",
    "\"features[8]\"",
    "\"a.b\"",
    "\"conv1\"",
    "\"c[1][2]\"",
    "\"a..b\"",
    "\"x[\"",
    "3",
];
/// Channels chain 3 <- 16 <- 32 for the usual order, so many documents are fully valid.
const PREDICTORS: &[&str] = &[
    "\"ConvTranspose2d(16, 3, 3, padding=1)\"",
    "\"ConvTranspose2d(16, 3, 3, padding=1)\"",
    "\"Sequential(ConvTranspose2d(32, 16, 4, stride=2, padding=1), ReLU(inplace=True))\"",
    "\"ReLU()\"",
    "\"ReLU()\"",
    "\"nn.Sequential(nn.Upsample(scale_factor=2, mode='bilinear'), nn.Conv2d(64, 32, 3, padding=1))\"",
    "\"ReLU()\"",
    "'Upsample(scale_factor=(2.0, 1.5))'",
    "\"\"\"\nConv2d(16, 3,\n 3)\"\"\"",
    "\"ConvTranspose3d(16, 3, 3)\"",
    "\"Conv2d(16, 4, 3, bias=False)\"",
    "\"Tanh()\"",
    "\"Conv2d(16, 3\"",
];
const HYPERS: &[&str] = &[
    "{feedforward=0.2, feedback=0.05, pc=0.01}",
    "{feedforward=1, feedback=0}",
    "{pc=0.5}",
    "{feedforward=0.4, feedback=0.1, pc=0.01}",
    "{feedback=0.6}",
    "{}",
    "{feedforward=0.9, feedback=0.9}",
    "{feedforward=-1}",
    "{feedfoward=0.1}",
];

/// A document that starts out valid-ish: the required keys, then pcoders whose keys are
/// mostly present with mostly plausible values, and the odd random line.
fn near_valid_document() -> impl Strategy<Value = String> {
    let line = |key: &'static str, values: &'static [&'static str], p: f64| {
        prop::option::weighted(p, prop::sample::select(values))
            .prop_map(move |v| v.map_or(String::new(), |v| format!("{key} = {v}\n")))
    };
    let pcoder = (
        line("module", MODULES, 0.95),
        line("predictor", PREDICTORS, 0.7),
        line("hyperparameters", HYPERS, 0.5),
        toml_lines(2),
    )
        .prop_map(|(m, p, h, extra)| {
            format!("\n[[pcoders]]\n{m}{p}{h}{}", if extra.len() % 5 == 0 { extra } else { String::new() })
        });
    let size = prop::sample::select(
        &["[3, 32, 32]", "[3, 32, 32]", "[3, 32, 32]", "[3, 32, 32]", "[3, 8, 32, 32]", "[3, 0, 32]", "[3, 32]"][..],
    );
    let flags = line("gradient_scaling", &["true", "false", "true", "1"], 0.5);
    (size, flags, prop::collection::vec(pcoder, 1..4))
        .prop_map(|(size, flags, pcoders)| format!("name = \"P\"\ninput_size = {size}\n{flags}{}", pcoders.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn predictor_never_panics_on_arbitrary_strings(s in any::<String>()) {
        check_predictor_text(&s);
    }

    #[test]
    fn predictor_never_panics_on_expression_fragments(s in fragments(EXPR_FRAGMENTS, 24)) {
        check_predictor_text(&s);
    }

    #[test]
    fn predictor_never_panics_on_mutated_valid_expressions(
        words in prop::collection::vec(any::<u32>(), 64),
        cut in any::<prop::sample::Index>(),
        insert in prop::sample::select(EXPR_FRAGMENTS),
        delete in 0usize..4,
    ) {
        let d = &mut Dice { words: &words, at: 0 };
        let dims = d.range(2, 3);
        let (input, output) = (d.range(1, 16), d.range(1, 16));
        let text = predictor(d, dims, input, output).to_string();
        check_predictor_text(&text);
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) { at -= 1; }
        let end = (at + delete).min(text.len());
        let end = (end..=text.len()).find(|&e| text.is_char_boundary(e)).unwrap_or(text.len());
        check_predictor_text(&format!("{}{}{}", &text[..at], insert, &text[end..]));
    }

    #[test]
    fn module_paths_never_panic_and_round_trip(s in "[a-z0-9_.\\[\\]\\-]{0,16}") {
        if let Ok(p) = AttachPoint::parse(&s) {
            prop_assert_eq!(AttachPoint::parse(&p.to_string()), Ok(p));
        }
    }

    #[test]
    fn spec_never_panics_on_arbitrary_strings(s in any::<String>()) {
        check_spec_text(&s);
    }

    #[test]
    fn spec_never_panics_on_generated_documents(doc in toml_document()) {
        check_spec_text(&doc);
    }

    #[test]
    fn spec_never_panics_on_near_valid_documents(doc in near_valid_document()) {
        check_spec_text(&doc);
    }

    #[test]
    fn valid_specs_round_trip_through_toml(
        words in prop::collection::vec(any::<u32>(), 256),
        imports in prop::collection::vec(any::<String>(), 0..3),
    ) {
        let spec = valid_spec(&words, imports);
        let text = spec.to_toml_string();
        match Spec::from_toml_str(&text) {
            Ok(parsed) => prop_assert_eq!(parsed, spec, "{}", text),
            Err(e) => prop_assert!(false, "{}\n---\n{}", e, text),
        }
    }
}
