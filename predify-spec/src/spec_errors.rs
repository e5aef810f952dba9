//! [`SpecErrors`]: the errors of a TOML spec with the text they point into.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::SpecError;
use crate::positions::{self, LineIndex};

/// Every error of a spec read from TOML, with the source text so each can be shown as
/// `line:col: message` (prefixed by the file's path when read from a file).
#[derive(Debug, Clone, PartialEq)]
pub struct SpecErrors {
    errors: Vec<SpecError<Range<usize>>>,
    source: String,
    path: Option<PathBuf>,
}

impl SpecErrors {
    /// Errors of the spec `source`, whose locations are byte spans in it; kept in the
    /// order they occur in the text.
    pub fn new(errors: Vec<SpecError<Range<usize>>>, source: impl Into<String>) -> Self {
        let mut this = Self { errors, source: source.into(), path: None };
        let mut keyed: Vec<(usize, SpecError<Range<usize>>)> =
            std::mem::take(&mut this.errors).into_iter().map(|e| (this.position(&e).unwrap_or(0), e)).collect();
        keyed.sort_by_key(|(p, _)| *p);
        this.errors = keyed.into_iter().map(|(_, e)| e).collect();
        this
    }

    /// The same errors, shown as coming from the file `path`.
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// The errors, in source order.
    pub fn errors(&self) -> &[SpecError<Range<usize>>] {
        &self.errors
    }

    /// The errors, by value.
    pub fn into_errors(self) -> Vec<SpecError<Range<usize>>> {
        self.errors
    }

    /// The spec's text (empty when the file could not be read).
    pub fn source_text(&self) -> &str {
        &self.source
    }

    /// The file the spec was read from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The byte offset in the source that `error` points at: the start of its span, or for
    /// errors inside a module path or predictor string, the offending character in it.
    pub fn position(&self, error: &SpecError<Range<usize>>) -> Option<usize> {
        let span = error.loc.as_ref()?;
        Some(match error.offset_in_value() {
            Some(offset) => match self.source.get(span.clone()) {
                Some(raw) => span.start + positions::literal_offset(raw, offset),
                None => span.start,
            },
            None => span.start,
        })
    }

    /// 1-based line and column (in characters) that `error` points at (see [`Self::position`]).
    /// O(length of the source); for many errors use [`Self::line_index`] once.
    pub fn line_col(&self, error: &SpecError<Range<usize>>) -> Option<(usize, usize)> {
        self.position(error).map(|p| positions::line_col(&self.source, p))
    }

    /// An index of the source's lines, to find the line and column of many positions.
    pub fn line_index(&self) -> LineIndex<'_> {
        LineIndex::new(&self.source)
    }
}

impl fmt::Display for SpecErrors {
    /// One line per error: `[path:]line:col: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One index for all errors: linear in the source and the number of errors.
        let index = self.line_index();
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if let Some(path) = &self.path {
                write!(f, "{}:", path.display())?;
            }
            if let Some((line, col)) = self.position(e).map(|p| index.line_col(p)) {
                write!(f, "{line}:{col}: ")?;
            } else if self.path.is_some() {
                f.write_str(" ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}
