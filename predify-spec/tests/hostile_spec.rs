//! Hostile specs: numbers no machine can hold are located errors, many errors print in linear
//! time, and no text (arbitrary bytes, or a valid spec with bytes flipped, inserted, deleted or
//! cut) panics or takes long.

use predify_spec::{
    parse_predictor, ExprErrorKind, Spec, SpecErrorKind, SpecErrors, MAX_KERNEL_SIZE, MAX_LAYER_WEIGHTS,
    MAX_SAMPLE_ELEMENTS, MAX_SIZE,
};
use proptest::prelude::*;
use std::time::{Duration, Instant};

const VALID: &str = r#"name = "PNet"
input_size = [3, 32, 32]
gradient_scaling = true

[[pcoders]]
module = "features[3]"
predictor = "ConvTranspose2d(16, 3, kernel_size=(3, 3), padding=1)"
hyperparameters = {feedforward=0.3, feedback=0.3, pc=0.01}

[[pcoders]]
module = "conv2"
predictor = "Sequential(ConvTranspose2d(32, 16, 4, stride=2, padding=1), ReLU(inplace=True), Upsample(scale_factor=2, mode='bilinear'))"
"#;

fn errors(src: &str) -> SpecErrors {
    match Spec::from_toml_str(src) {
        Ok(spec) => panic!("expected errors, got {spec:?}"),
        Err(e) => e,
    }
}

fn with_input_size(size: &str) -> String {
    VALID.replacen("[3, 32, 32]", size, 1)
}

fn with_predictor(expr: &str) -> String {
    VALID.replacen("ConvTranspose2d(16, 3, kernel_size=(3, 3), padding=1)", expr, 1)
}

#[test]
fn the_base_spec_is_valid() {
    Spec::from_toml_str(VALID).unwrap();
}

#[test]
fn input_sizes_no_machine_holds_are_located_errors() {
    // An entry over 2^20, pointed at.
    let errs = errors(&with_input_size("[3, 9223372036854775807, 28]"));
    assert_eq!(errs.errors().len(), 1, "{errs}");
    let e = &errs.errors()[0];
    assert!(matches!(&e.kind, SpecErrorKind::TooLarge { limit, .. } if *limit == MAX_SIZE), "{e:?}");
    assert_eq!(e.key.as_deref(), Some("input_size"));
    assert_eq!(errs.line_col(e), Some((2, 18)), "{errs}");
    assert!(errs.to_string().contains("9223372036854775807"), "{errs}");
    // The largest entry is fine on its own ...
    Spec::from_toml_str(&with_input_size(&format!("[3, {MAX_SIZE}, 2]"))).unwrap();
    // ... but one sample of 2^40 elements is not.
    let errs = errors(&with_input_size(&format!("[3, {MAX_SIZE}, {MAX_SIZE}]")));
    let e = &errs.errors()[0];
    assert!(matches!(&e.kind, SpecErrorKind::TooLarge { limit, .. } if *limit == MAX_SAMPLE_ELEMENTS), "{e:?}");
    assert!(errs.to_string().contains("2:14: input_size: one sample must be at most 2147483648"), "{errs}");
    // 4-D too.
    let errs = errors(&with_input_size("[3, 2048, 2048, 2048]"));
    assert!(errs.to_string().contains("one sample"), "{errs}");
}

#[test]
fn layer_sizes_no_machine_holds_are_located_errors() {
    let invalid = |expr: &str| -> (String, usize) {
        match parse_predictor(expr) {
            Ok(p) => panic!("{expr} parsed: {p:?}"),
            Err(e) => match e.kind {
                ExprErrorKind::InvalidValue { arg, message } => (format!("{arg}: {message}"), e.offset),
                other => panic!("{expr}: {other:?}"),
            },
        }
    };
    let (m, at) = invalid("ConvTranspose2d(1, 1, kernel_size=4611686018427387904)");
    assert!(m.starts_with("kernel_size: must be <= 1024"), "{m}");
    assert_eq!(at, 34);
    let (m, _) = invalid("Conv2d(1, 1, 100001)");
    assert!(m.contains(&format!("<= {MAX_KERNEL_SIZE}")), "{m}");
    let (m, _) = invalid("Conv2d(2097152, 1, 3)");
    assert!(m.starts_with("in_channels: must be <= 1048576"), "{m}");
    let (m, _) = invalid("Conv3d(1, 4, 3, stride=(1, 1, 9999999))");
    assert!(m.starts_with("stride:"), "{m}");
    let (m, _) = invalid("ConvTranspose2d(1, 1, 3, padding=9223372036854775807)");
    assert!(m.starts_with("padding:"), "{m}");
    // Each number within its limit, the product beyond the weight limit.
    let (m, _) = invalid("Conv3d(1048576, 1048576, 3)");
    assert!(m.contains(&MAX_LAYER_WEIGHTS.to_string()), "{m}");
    // The dilated kernel's extent.
    let (m, _) = invalid("Conv2d(1, 1, 1024, dilation=1048576)");
    assert!(m.contains("dilated kernel"), "{m}");
    let (m, _) = invalid("Upsample(size=(4294967296, 2))");
    assert!(m.starts_with("size:"), "{m}");
    let (m, _) = invalid("Upsample(scale_factor=1e300)");
    assert!(m.starts_with("scale_factor:"), "{m}");
    // Through a spec: located inside the predictor string.
    let errs = errors(&with_predictor("ConvTranspose2d(16, 3, kernel_size=4611686018427387904)"));
    assert_eq!(errs.errors().len(), 1, "{errs}");
    assert!(errs.to_string().starts_with("7:49: pcoder 1: predictor: invalid predictor: at byte 35: `kernel_size`"), "{errs}");
    // Limits themselves are accepted.
    parse_predictor("Conv2d(1, 1, 1024)").unwrap();
    parse_predictor("ConvTranspose2d(1048576, 1, 1)").unwrap();
}

#[test]
fn many_errors_print_in_linear_time() {
    // 60,000 unknown keys (~1.2 MB): every error printed with its line:col in well under the
    // minute the per-error line count took.
    let mut text = String::from(VALID);
    text.push_str("[[pcoders]]\nmodule = \"x\"\n");
    for i in 0..60_000 {
        text.push_str(&format!("unknown_key_{i:06} = 1\n"));
    }
    let start = Instant::now();
    let errs = errors(&text);
    let shown = errs.to_string();
    let took = start.elapsed();
    assert_eq!(errs.errors().len(), 60_000);
    assert_eq!(shown.lines().count(), 60_000);
    let last = shown.lines().last().unwrap();
    assert!(last.starts_with("60014:1: pcoder 3: unknown_key_059999: unknown key"), "{last}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // The same on one line (an inline table): the columns are found without rescanning it.
    let keys: Vec<String> = (0..60_000).map(|i| format!("k{i}=1")).collect();
    let text = VALID.replacen("pc=0.01}", &format!("pc=0.01, {}}}", keys.join(", ")), 1);
    let start = Instant::now();
    let shown = errors(&text).to_string();
    assert_eq!(shown.lines().count(), 60_000);
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
}

/// Parse and print; no panic, and quick.
fn check_text(text: &str) {
    let start = Instant::now();
    match Spec::from_toml_str(text) {
        Ok(spec) => {
            // A valid spec stays within the limits.
            assert!(spec.input_size.iter().all(|&s| (1..=MAX_SIZE).contains(&s)), "{spec:?}");
            assert!(spec.input_size.iter().product::<usize>() <= MAX_SAMPLE_ELEMENTS);
        }
        Err(e) => {
            assert!(!e.errors().is_empty());
            let _ = e.to_string();
        }
    }
    assert!(start.elapsed() < Duration::from_secs(1), "{:?} for {text:?}", start.elapsed());
}

/// A byte-level mutation of `base`: flip, insert, delete, truncate, or splice in a number.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    Number(usize, i64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, x)| Mutation::Flip(at, x)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 1usize..16).prop_map(|(at, n)| Mutation::Delete(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<i64>()).prop_map(|(at, n)| Mutation::Number(at, n)),
    ]
}

fn mutate(base: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = base.to_vec();
    for m in mutations {
        let len = b.len().max(1);
        match m {
            Mutation::Flip(at, x) => {
                if let Some(byte) = b.get_mut(at % len) {
                    *byte ^= x;
                }
            }
            Mutation::Insert(at, bytes) => {
                let at = at % (b.len() + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(b.len());
                if at < end {
                    b.drain(at..end);
                }
            }
            Mutation::Truncate(at) => b.truncate(at % len),
            Mutation::Number(at, n) => {
                // Replace the digit run at or after `at` by `n`.
                let start = (at % len..b.len()).find(|&i| b[i].is_ascii_digit());
                if let Some(start) = start {
                    let end = (start..b.len()).find(|&i| !b[i].is_ascii_digit()).unwrap_or(b.len());
                    b.splice(start..end, n.to_string().into_bytes());
                }
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_text(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_specs_never_panic(mutations in proptest::collection::vec(mutation(), 1..6)) {
        let bytes = mutate(VALID.as_bytes(), &mutations);
        check_text(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn unreadable_files_are_errors_naming_the_file(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let path = std::env::temp_dir().join(format!("predify-hostile-spec-{}.toml", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = Spec::from_path(&path) {
            prop_assert!(e.to_string().contains("predify-hostile-spec"), "{}", e);
        }
        let _ = std::fs::remove_file(&path);
    }
}
