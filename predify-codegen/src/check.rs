//! Attach points against the struct: every `module` must name a field that runs (or an element
//! of a list field, in range), and the pcoders must follow the forward order.
//!
//! The checks read the module paths straight from the raw spec tree, so they run (and report)
//! even when other parts of the spec are invalid.

use predify_spec::raw::{RawSpec, RawValue};
use predify_spec::{AttachPoint, PathSegment};

use crate::model::{FieldKind, Model};

/// One pcoder's `module`, as written.
#[derive(Debug, Clone)]
pub(crate) struct ModuleRef<L> {
    /// 1-based pcoder number.
    pub(crate) number: usize,
    pub(crate) point: AttachPoint,
    pub(crate) loc: L,
}

/// Where a pcoder fires in the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// After the whole field (index into `Model::fields`).
    Field(usize),
    /// After element `j` of a list field.
    Element(usize, usize),
}

/// The module paths that parse, from the raw spec (invalid ones are validation's to report).
pub(crate) fn module_refs<L: Clone>(raw: &RawSpec<L>) -> Vec<ModuleRef<L>> {
    let Some(entry) = raw.value.get("pcoders") else { return Vec::new() };
    let RawValue::Array(items) = &entry.value.value else { return Vec::new() };
    let mut refs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let RawValue::Table(t) = &item.value else { continue };
        let Some(m) = t.get("module") else { continue };
        let RawValue::Str(s) = &m.value.value else { continue };
        if let Ok(point) = AttachPoint::parse(s) {
            refs.push(ModuleRef { number: i + 1, point, loc: m.value.loc.clone() });
        }
    }
    refs
}

/// Resolves every reference; returns the targets (in `refs` order; `None` where invalid) and
/// the errors, each with the location of the offending `module` value.
pub(crate) fn check<L: Clone>(model: &Model, struct_name: &str, refs: &[ModuleRef<L>]) -> (Vec<Option<Target>>, Vec<(L, String)>) {
    let mut errors = Vec::new();
    let mut targets = Vec::new();
    // (position in forward order, pcoder number, path) of the last valid pcoder
    let mut previous: Option<((usize, usize), usize, String)> = None;
    for r in refs {
        let prefix = format!("pcoder {}: module: ", r.number);
        let path = r.point.to_string();
        let target = match resolve(model, struct_name, &r.point) {
            Ok(t) => t,
            Err(msg) => {
                errors.push((r.loc.clone(), format!("{prefix}{msg}")));
                targets.push(None);
                continue;
            }
        };
        let pos = position(model, target);
        if let Some((prev_pos, prev_number, prev_path)) = &previous {
            if pos == *prev_pos {
                let same = if *prev_path == path { String::new() } else { format!(" (`{prev_path}` and `{path}` are the same point)") };
                errors.push((
                    r.loc.clone(),
                    format!("{prefix}`{path}` is duplicated: pcoder {prev_number} already attaches there{same}; each attach point takes one pcoder"),
                ));
                targets.push(None);
                continue;
            }
            if pos < *prev_pos {
                errors.push((
                    r.loc.clone(),
                    format!(
                        "{prefix}`{path}` is out of forward order: it runs before `{prev_path}` (pcoder {prev_number}); list the pcoders in the order the forward pass reaches them (the fields of `{struct_name}` in declaration order)"
                    ),
                ));
                targets.push(None);
                continue;
            }
        }
        previous = Some((pos, r.number, path));
        targets.push(Some(target));
    }
    (targets, errors)
}

/// Position of a target in the forward pass: (field's rank among the running fields, element
/// index; after the whole field = after its last element).
fn position(model: &Model, target: Target) -> (usize, usize) {
    let (field, elem) = match target {
        Target::Field(f) => {
            let elem = match model.fields[f].kind {
                FieldKind::Array(Some(n)) => n.saturating_sub(1),
                _ => usize::MAX,
            };
            (f, elem)
        }
        Target::Element(f, j) => (f, j),
    };
    let rank = model.fields[..field].iter().filter(|f| !f.skip).count();
    (rank, elem)
}

fn resolve(model: &Model, struct_name: &str, point: &AttachPoint) -> Result<Target, String> {
    let segments = &point.segments;
    let name = match segments.first() {
        Some(PathSegment::Field(name)) => name,
        _ => {
            return Err(format!(
                "`{point}` must start with a field of `{struct_name}` (the macro attaches to the struct's own fields, not to positions in an unnamed Sequential)"
            ))
        }
    };
    let Some(index) = model.fields.iter().position(|f| f.ident == name.as_str() || f.ident == format!("r#{name}").as_str()) else {
        let running: Vec<String> = model.forward_fields().map(|f| f.ident.to_string()).collect();
        let hint = suggest(name, &running).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
        return Err(format!(
            "unknown field `{name}`{hint} (the layers of `{struct_name}` in forward order: {})",
            if running.is_empty() { "none".to_string() } else { running.join(", ") }
        ));
    };
    let field = &model.fields[index];
    if field.skip {
        return Err(format!("field `{name}` is marked `#[predify(skip)]`, so it is not part of the forward pass and cannot take a pcoder"));
    }
    match segments.get(1..).unwrap_or(&[]) {
        [] => Ok(Target::Field(index)),
        [PathSegment::Index(j)] => match field.kind {
            FieldKind::Single => Err(format!(
                "`{point}` indexes field `{name}`, which is not a list of layers (only `Vec<T>` and `[T; N]` fields can be indexed); attach to `{name}` itself"
            )),
            FieldKind::Array(Some(n)) if *j >= n => Err(format!(
                "index {j} is out of range: `{name}` has {n} layers (`[_; {n}]`), so the last one is `{name}[{}]`",
                n.saturating_sub(1)
            )),
            FieldKind::Array(_) | FieldKind::Vec => Ok(Target::Element(index, *j)),
        },
        _ => Err(format!(
            "`{point}`: the macro attaches after a field (`{name}`) or after an element of a list field (`{name}[3]`); deeper paths are not supported (make the inner part a field of its own)"
        )),
    }
}

/// The candidate closest to `name` (edit distance at most 2, or a case-insensitive match).
fn suggest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (if c.to_ascii_lowercase() == lower { 0 } else { distance(&lower, &c.to_ascii_lowercase()) }, c))
        .filter(|(d, c)| *d <= if c.len() <= 4 { 1 } else { 2 })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut next = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let v = (row[j] + usize::from(ca != *cb)).min(row[j + 1] + 1).min(next[j] + 1);
            next.push(v);
        }
        row = next;
    }
    row[b.len()]
}
