//! The front-end-neutral API: a hand-built raw spec with a custom location type, as the
//! `#[predify]` macro builds one from its inline syntax.

use predify_spec::raw::{Located, RawTable, RawValue};
use predify_spec::{validate, validate_pcoder, SpecErrorKind};

/// A location as a macro might use: an index into its own table of spans.
type Loc = u32;

fn key(k: &str, at: Loc) -> Located<String, Loc> {
    Located::new(k.to_string(), at)
}

fn val(v: RawValue<Loc>, at: Loc) -> Located<RawValue<Loc>, Loc> {
    Located::new(v, at)
}

fn pcoder(module: &str, predictor: Option<&str>, at: Loc) -> Located<RawValue<Loc>, Loc> {
    let mut t = RawTable::new().with(key("module", at + 1), val(RawValue::Str(module.into()), at + 2));
    if let Some(p) = predictor {
        t.push(key("predictor", at + 3), val(RawValue::Str(p.into()), at + 4));
    }
    val(RawValue::Table(t), at)
}

fn spec(pcoders: Vec<Located<RawValue<Loc>, Loc>>) -> RawTable<Loc> {
    RawTable::new()
        .with(key("name", 1), val(RawValue::Str("PNet".into()), 2))
        .with(
            key("input_size", 3),
            val(RawValue::Array(vec![val(RawValue::Int(3), 4), val(RawValue::Int(8), 5), val(RawValue::Int(8), 6)]), 7),
        )
        .with(key("pcoders", 8), val(RawValue::Array(pcoders), 9))
}

#[test]
fn validates_with_any_location_type() {
    let raw = Located::new(spec(vec![pcoder("conv1", Some("ConvTranspose2d(4, 3, 3, padding=1)"), 10)]), 0);
    let spec = validate(raw).unwrap();
    assert_eq!(spec.name, "PNet");
    assert_eq!(spec.pcoders[0].module.to_string(), "conv1");
}

#[test]
fn errors_carry_the_front_ends_locations() {
    let mut table = spec(vec![pcoder("conv1", Some("Conv2d(4, 3)"), 10), pcoder("a[", None, 20)]);
    table.push(key("name", 30), val(RawValue::Str("Again".into()), 31));
    table.push(key("gradient_scaling", 32), val(RawValue::Int(1), 33));
    let errors = validate(Located::new(table, 0)).unwrap_err();
    let summary: Vec<_> = errors.iter().map(|e| (e.pcoder, e.key.as_deref(), e.loc, e.offset_in_value())).collect();
    assert_eq!(
        summary,
        vec![
            (None, Some("name"), Some(30), None),
            (None, Some("gradient_scaling"), Some(33), None),
            (Some(1), Some("predictor"), Some(14), Some(11)),
            (Some(2), Some("module"), Some(22), Some(1)),
        ]
    );
    assert_eq!(errors[0].kind, SpecErrorKind::DuplicateKey);
    assert!(matches!(errors[2].kind, SpecErrorKind::InvalidPredictor(_)));
    assert_eq!(
        errors[2].to_string(),
        "pcoder 1: predictor: invalid predictor: at byte 11: Conv2d is missing required argument `kernel_size`"
    );
    // Locations map to another type without touching the rest.
    let mapped = errors[3].clone().map_loc(|l| format!("span #{l}"));
    assert_eq!(mapped.loc.as_deref(), Some("span #22"));
}

#[test]
fn missing_keys_point_at_the_enclosing_table() {
    let errors = validate(Located::new(RawTable::<Loc>::new(), 99)).unwrap_err();
    assert_eq!(errors.len(), 3);
    assert!(errors.iter().all(|e| e.loc == Some(99) && matches!(e.kind, SpecErrorKind::MissingKey { .. })));
}

#[test]
fn single_pcoders_validate_on_their_own() {
    let Located { value: RawValue::Table(t), loc } = pcoder("features[3]", Some("ReLU()"), 50) else { unreachable!() };
    let p = validate_pcoder(4, Located::new(t, loc)).unwrap();
    assert_eq!(p.module.to_string(), "features[3]");

    let bad = RawTable::new().with(
        key("hyperparameters", 1),
        val(RawValue::Table(RawTable::new().with(key("feedforward", 2), val(RawValue::Float(-1.0), 3))), 4),
    );
    let errors = validate_pcoder(4, Located::new(bad, 0)).unwrap_err();
    let summary: Vec<_> = errors.iter().map(|e| (e.pcoder, e.key.as_deref(), e.loc)).collect();
    assert_eq!(
        summary,
        vec![(Some(4), Some("module"), Some(0)), (Some(4), Some("hyperparameters.feedforward"), Some(3)),]
    );
}
