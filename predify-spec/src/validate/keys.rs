//! Error collection and splitting a table into its known keys.

use crate::error::{SpecError, SpecErrorKind};
use crate::raw::{Located, RawTable, RawValue};

/// A raw value with its location.
pub(crate) type Value<L> = Located<RawValue<L>, L>;

/// Collects errors; `pcoder` is the pcoder being checked (1-based), if any.
pub(crate) struct Errors<L> {
    pub(crate) list: Vec<SpecError<L>>,
    pub(crate) pcoder: Option<usize>,
}

impl<L: Clone> Errors<L> {
    pub(crate) fn new(pcoder: Option<usize>) -> Self {
        Self { list: Vec::new(), pcoder }
    }

    pub(crate) fn push(&mut self, kind: SpecErrorKind, key: &str, loc: &L) {
        self.list.push(SpecError::new(kind, self.pcoder, Some(key), Some(loc.clone())));
    }

    pub(crate) fn wrong_type(&mut self, expected: &'static str, key: &str, value: &Value<L>) {
        let found = value.value.describe();
        self.push(SpecErrorKind::WrongType { expected, found }, key, &value.loc);
    }
}

/// The values of `allowed` keys in `table`, in `allowed` order; reports unknown and
/// duplicate keys (named `{prefix}{key}`).
pub(crate) fn split<'a, L: Clone, const N: usize>(
    errors: &mut Errors<L>,
    table: &'a RawTable<L>,
    allowed: &'static [&'static str; N],
    prefix: &str,
) -> [Option<&'a Value<L>>; N] {
    let mut found: [Option<&Value<L>>; N] = [None; N];
    for entry in &table.entries {
        let key = &entry.key.value;
        let full = format!("{prefix}{key}");
        match allowed.iter().position(|k| k == key).and_then(|i| found.get_mut(i)) {
            Some(slot @ None) => *slot = Some(&entry.value),
            Some(Some(_)) => errors.push(SpecErrorKind::DuplicateKey, &full, &entry.key.loc),
            None => {
                let kind = SpecErrorKind::UnknownKey { allowed, suggestion: suggest(key, allowed) };
                errors.push(kind, &full, &entry.key.loc);
            }
        }
    }
    found
}

/// The allowed key closest to a mistyped one: same up to case, or within edit distance 2
/// (1 for short keys).
fn suggest(key: &str, allowed: &[&'static str]) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    let limit = if key.chars().count() <= 4 { 1 } else { 2 };
    allowed
        .iter()
        .map(|&k| (if k == lower { 0 } else { distance(&lower, k) }, k))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Levenshtein distance (keys are short, so the quadratic table is fine).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = i;
        let mut next = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let left = next.last().copied().unwrap_or(0);
            let up = row.get(j + 1).copied().unwrap_or(0);
            let cost = diagonal + usize::from(ca != *cb);
            next.push(cost.min(left + 1).min(up + 1));
            diagonal = up;
        }
        row = next;
    }
    row.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = &["feedforward", "feedback", "pc"];
        assert_eq!(suggest("feedfoward", keys), Some("feedforward"));
        assert_eq!(suggest("FeedBack", keys), Some("feedback"));
        assert_eq!(suggest("pcc", keys), Some("pc"));
        assert_eq!(suggest("alpha", keys), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
