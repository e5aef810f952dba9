//! Parsing and printing of module paths (`features[3]`, `conv2`, `blocks.0`, `a.b[2]`).

use std::fmt;

use crate::types::{AttachPoint, PathSegment};

/// An invalid module path, at a byte offset inside the path string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {kind}")]
pub struct AttachPointError {
    /// Byte offset of the problem inside the path.
    pub offset: usize,
    /// What went wrong.
    pub kind: AttachPointErrorKind,
}

/// What is wrong with a module path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachPointErrorKind {
    /// The path is empty.
    #[error("empty module path")]
    Empty,
    /// A character where a name or an index should start.
    #[error("expected a name or an index, found {}", found.map_or("end of path".to_string(), |c| format!("{c:?}")))]
    ExpectedSegment {
        /// The character found (`None` at the end of the path).
        found: Option<char>,
    },
    /// A character that cannot follow a segment.
    #[error("expected `.`, `[` or end of path, found {0:?}")]
    UnexpectedChar(char),
    /// `[` without a valid index and `]`.
    #[error("expected a non-negative integer index followed by `]`")]
    BadIndex,
    /// An index that does not fit in `usize`.
    #[error("index too large")]
    IndexTooLarge,
}

impl AttachPoint {
    /// Parses a Predify module path: names and indices joined by `.`, indices also as `[i]`.
    /// A path may start with an index (`0.conv`), as PyTorch's `named_modules` names do.
    ///
    /// ```
    /// use predify_spec::{AttachPoint, PathSegment};
    /// let p = AttachPoint::parse("a.b[2]").unwrap();
    /// assert_eq!(p.segments, vec![
    ///     PathSegment::Field("a".into()), PathSegment::Field("b".into()), PathSegment::Index(2),
    /// ]);
    /// assert_eq!(p.to_string(), "a.b[2]");
    /// ```
    pub fn parse(path: &str) -> Result<AttachPoint, AttachPointError> {
        let err = |offset, kind| AttachPointError { offset, kind };
        if path.is_empty() {
            return Err(err(0, AttachPointErrorKind::Empty));
        }
        let bytes = path.as_bytes();
        let mut segments = Vec::new();
        let mut i = 0;
        loop {
            // A segment after start or `.`: a name or a bare index.
            let run = |from: usize, f: fn(&u8) -> bool| from + bytes[from..].iter().take_while(|b| f(b)).count();
            match bytes.get(i) {
                Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
                    let end = run(i, |b| b.is_ascii_alphanumeric() || *b == b'_');
                    segments.push(PathSegment::Field(path[i..end].to_string()));
                    i = end;
                }
                Some(b) if b.is_ascii_digit() => {
                    let end = run(i, u8::is_ascii_digit);
                    segments.push(PathSegment::Index(index(&path[i..end], i)?));
                    i = end;
                }
                _ => {
                    let found = path.get(i..).and_then(|s| s.chars().next());
                    return Err(err(i, AttachPointErrorKind::ExpectedSegment { found }));
                }
            }
            // Any number of `[i]` after it.
            while bytes.get(i) == Some(&b'[') {
                let end = run(i + 1, u8::is_ascii_digit);
                if end == i + 1 || bytes.get(end) != Some(&b']') {
                    return Err(err(i, AttachPointErrorKind::BadIndex));
                }
                segments.push(PathSegment::Index(index(&path[i + 1..end], i + 1)?));
                i = end + 1;
            }
            match bytes.get(i) {
                None => return Ok(AttachPoint { segments }),
                Some(b'.') => i += 1,
                Some(_) => {
                    let c = path.get(i..).and_then(|s| s.chars().next()).unwrap_or('\u{fffd}');
                    return Err(err(i, AttachPointErrorKind::UnexpectedChar(c)));
                }
            }
        }
    }
}

fn index(digits: &str, offset: usize) -> Result<usize, AttachPointError> {
    digits.parse().map_err(|_| AttachPointError { offset, kind: AttachPointErrorKind::IndexTooLarge })
}

impl fmt::Display for AttachPoint {
    /// Predify's spelling: names joined by `.`, indices as `[i]` (a leading index bare).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, segment) in self.segments.iter().enumerate() {
            match (k, segment) {
                (0, PathSegment::Field(name)) => write!(f, "{name}")?,
                (0, PathSegment::Index(i)) => write!(f, "{i}")?,
                (_, PathSegment::Field(name)) => write!(f, ".{name}")?,
                (_, PathSegment::Index(i)) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathSegment::{Field, Index};

    #[test]
    fn forms() {
        let f = |s: &str| Field(s.to_string());
        assert_eq!(AttachPoint::parse("features[3]").unwrap().segments, vec![f("features"), Index(3)]);
        assert_eq!(AttachPoint::parse("conv2").unwrap().segments, vec![f("conv2")]);
        assert_eq!(AttachPoint::parse("blocks.0").unwrap().segments, vec![f("blocks"), Index(0)]);
        assert_eq!(
            AttachPoint::parse("a.b[2][1].c").unwrap().segments,
            vec![f("a"), f("b"), Index(2), Index(1), f("c")]
        );
        assert_eq!(AttachPoint::parse("0.conv").unwrap().to_string(), "0.conv");
        assert_eq!(AttachPoint::parse("blocks.0").unwrap().to_string(), "blocks[0]");
    }

    #[test]
    fn errors() {
        let k = |s: &str| {
            let e = AttachPoint::parse(s).unwrap_err();
            (e.offset, e.kind)
        };
        assert_eq!(k(""), (0, AttachPointErrorKind::Empty));
        assert_eq!(k("a."), (2, AttachPointErrorKind::ExpectedSegment { found: None }));
        assert_eq!(k("a[-1]"), (1, AttachPointErrorKind::BadIndex));
        assert_eq!(k("a[1"), (1, AttachPointErrorKind::BadIndex));
        assert_eq!(k("a b"), (1, AttachPointErrorKind::UnexpectedChar(' ')));
        assert_eq!(k(".a"), (0, AttachPointErrorKind::ExpectedSegment { found: Some('.') }));
        assert_eq!(k("a[99999999999999999999999]"), (2, AttachPointErrorKind::IndexTooLarge));
        assert_eq!(k("2x"), (1, AttachPointErrorKind::UnexpectedChar('x')));
    }
}
