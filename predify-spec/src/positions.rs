//! Byte offsets to line:column, and offsets inside a decoded TOML string to offsets in
//! the source (so errors inside a predictor point at the offending character).

/// 1-based line and column (in characters) of byte `offset` of `text`, clamped to the text.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, col)
}

/// Bytes per block of [`LineIndex`]'s character counts.
const BLOCK: usize = 256;

/// Line and column lookups in one text, each in O(log lines + 256) after an O(len) build:
/// what formatting many errors of one large spec needs (rebuilding the lines for every error
/// made 60,000 errors of a 1.2 MB spec take a minute).
///
/// ```
/// let index = predify_spec::LineIndex::new("ab\ncdé\nx");
/// assert_eq!(index.line_col(7), (2, 4));
/// assert_eq!(index.line_col(100), (3, 2));
/// ```
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// `chars[b]`: characters in `text[..b * BLOCK]`.
    chars: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// Index `text`.
    pub fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let mut line_starts = vec![0];
        line_starts.extend(bytes.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i + 1));
        let mut chars = Vec::with_capacity(bytes.len() / BLOCK + 1);
        let mut count = 0;
        for block in bytes.chunks(BLOCK) {
            chars.push(count);
            count += block.iter().filter(|&&b| !is_continuation(b)).count();
        }
        chars.push(count);
        Self { text, line_starts, chars }
    }

    /// Characters in `text[..offset]` (`offset` on a character boundary).
    fn chars_before(&self, offset: usize) -> usize {
        let block = offset / BLOCK;
        let start = block * BLOCK;
        let head = self.chars.get(block).copied().unwrap_or(0);
        head + self.text.as_bytes().get(start..offset).map_or(0, |s| s.iter().filter(|&&b| !is_continuation(b)).count())
    }

    /// 1-based line and column (in characters) of byte `offset`, clamped to the text (as
    /// `SpecErrors::line_col`).
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line starting at or before `offset`.
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        (line, self.chars_before(offset) - self.chars_before(start) + 1)
    }
}

/// A UTF-8 continuation byte (`0b10xx_xxxx`): not the start of a character.
fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// Offset in `raw` (a TOML string literal, quotes included) of byte `offset` of the string's
/// decoded value. Walks escapes in basic strings and skips the newline that may open a
/// multi-line string; for anything that is not a string literal, returns `offset`.
pub(crate) fn literal_offset(raw: &str, offset: usize) -> usize {
    let (open, escapes) = if raw.starts_with("\"\"\"") {
        (3, true)
    } else if raw.starts_with("'''") {
        (3, false)
    } else if raw.starts_with('"') {
        (1, true)
    } else if raw.starts_with('\'') {
        (1, false)
    } else {
        return offset;
    };
    let body = raw.get(open..).unwrap_or("");
    let mut pos = open;
    if open == 3 {
        // TOML drops a newline right after the opening delimiter.
        if body.starts_with("\r\n") {
            pos += 2;
        } else if body.starts_with('\n') {
            pos += 1;
        }
    }
    let mut decoded = 0;
    while let Some(rest) = raw.get(pos..) {
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        let escape = if escapes && c == '\\' { chars.next() } else { None };
        match escape {
            // A line-ending backslash: it and the whitespace after it decode to nothing.
            Some(w) if w.is_whitespace() => {
                pos += 1 + rest.get(1..).map_or(0, |r| r.len() - r.trim_start().len());
                continue;
            }
            _ if decoded >= offset => break,
            Some('u') => {
                decoded += hex_char_len(rest.get(2..6));
                pos += 6;
            }
            Some('U') => {
                decoded += hex_char_len(rest.get(2..10));
                pos += 10;
            }
            Some(_) => {
                decoded += 1;
                pos += 2;
            }
            None if escapes && c == '\\' => break,
            None => {
                decoded += c.len_utf8();
                pos += c.len_utf8();
            }
        }
    }
    pos.min(raw.len())
}

/// UTF-8 length of the character a `\u`/`\U` escape with these hex digits stands for.
fn hex_char_len(hex: Option<&str>) -> usize {
    hex.and_then(|h| u32::from_str_radix(h, 16).ok()).and_then(char::from_u32).map_or(1, char::len_utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let t = "ab\ncdé\nx";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 7), (2, 4));
        assert_eq!(line_col(t, 8), (3, 1));
        assert_eq!(line_col(t, 100), (3, 2));
        assert_eq!(line_col(t, 6), (2, 3)); // inside `é`: clamped to its start
    }

    #[test]
    fn index_agrees_with_line_col() {
        let texts = ["", "ab\ncdé\nx", "\n\n", "é\u{1F600}\n\r\nz", &"aé\n".repeat(300), &"x".repeat(1000)];
        for t in texts {
            let index = LineIndex::new(t);
            for offset in 0..t.len() + 3 {
                assert_eq!(index.line_col(offset), line_col(t, offset), "{t:?} at {offset}");
            }
        }
    }

    #[test]
    fn literals() {
        assert_eq!(literal_offset("\"abc\"", 2), 3);
        assert_eq!(literal_offset("'abc'", 0), 1);
        assert_eq!(literal_offset(r#""a\"b""#, 2), 4);
        assert_eq!(literal_offset(r#""\u00e9x""#, 2), 7);
        assert_eq!(literal_offset("\"\"\"\nab\"\"\"", 1), 5);
        assert_eq!(literal_offset("'''\nab'''", 1), 5);
        assert_eq!(literal_offset("\"\"\"a\\\n   b\"\"\"", 1), 9);
        assert_eq!(literal_offset("12", 5), 5);
    }
}
