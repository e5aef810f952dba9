//! Tokens of the Python subset used in predictor expressions.

use super::error::{ExprError, ExprErrorKind};

/// One token kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    /// A non-negative integer literal (a sign is a separate token).
    Int(i64),
    Float(f64),
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eq,
    Minus,
    Dot,
    End,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("name `{s}`"),
            Tok::Int(i) => format!("integer {i}"),
            Tok::Float(f) => format!("number {f:?}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Eq => "`=`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Dot => "`.`".into(),
            Tok::End => "end of expression".into(),
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) offset: usize,
}

/// Splits `src` into tokens, ending with [`Tok::End`].
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, ExprError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let start = i;
        let tok = match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => {
                i += 1;
                continue;
            }
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b'[' => Tok::LBracket,
            b']' => Tok::RBracket,
            b',' => Tok::Comma,
            b'=' => Tok::Eq,
            b'-' => Tok::Minus,
            b'.' if !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => Tok::Dot,
            b'\'' | b'"' => {
                let (s, end) = lex_string(src, i)?;
                out.push(Token { tok: Tok::Str(s), offset: start });
                i = end;
                continue;
            }
            b'.' | b'0'..=b'9' => {
                let end = number_end(bytes, i);
                out.push(Token { tok: number(&src[i..end], start)?, offset: start });
                i = end;
                continue;
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let end = i + bytes[i..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
                out.push(Token { tok: Tok::Ident(src[i..end].to_string()), offset: start });
                i = end;
                continue;
            }
            _ => {
                let c = src[i..].chars().next().unwrap_or('\u{fffd}');
                return Err(ExprError::new(i, ExprErrorKind::UnexpectedChar(c)));
            }
        };
        out.push(Token { tok, offset: start });
        i += 1;
    }
    out.push(Token { tok: Tok::End, offset: src.len() });
    Ok(out)
}

/// End of a number starting at `i`: digits, `.`, exponent, and any trailing identifier
/// characters (so `3x` is reported as one bad number rather than two tokens).
fn number_end(bytes: &[u8], mut i: usize) -> usize {
    let mut prev = 0u8;
    while let Some(&c) = bytes.get(i) {
        let sign_in_exponent = (c == b'+' || c == b'-') && (prev == b'e' || prev == b'E');
        if !(c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || sign_in_exponent) {
            break;
        }
        prev = c;
        i += 1;
    }
    i
}

fn number(text: &str, offset: usize) -> Result<Tok, ExprError> {
    let bad = || ExprError::new(offset, ExprErrorKind::InvalidNumber(text.to_string()));
    if text.bytes().all(|c| c.is_ascii_digit()) {
        return text.parse::<i64>().map(Tok::Int).map_err(|_| bad());
    }
    // Python float syntax: digits with at most one `.` and an optional exponent. Rust's
    // parser also takes `inf`/`nan`, which cannot occur here since text starts with a digit or `.`.
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(p) => (&text[..p], Some(&text[p + 1..])),
        None => (text, None),
    };
    let mantissa_ok = mantissa.bytes().filter(|&c| c == b'.').count() <= 1
        && mantissa.bytes().any(|c| c.is_ascii_digit())
        && mantissa.bytes().all(|c| c.is_ascii_digit() || c == b'.');
    let exponent_ok = match exponent {
        None => true,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit())
        }
    };
    if !(mantissa_ok && exponent_ok) {
        return Err(bad());
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Tok::Float(f)),
        _ => Err(bad()),
    }
}

/// Reads a `'...'` or `"..."` literal starting at `start`; returns its value and end offset.
fn lex_string(src: &str, start: usize) -> Result<(String, usize), ExprError> {
    let mut chars = src[start..].char_indices();
    let quote = chars.next().map(|(_, c)| c).unwrap_or('"');
    let mut value = String::new();
    while let Some((k, c)) = chars.next() {
        match c {
            c if c == quote => return Ok((value, start + k + c.len_utf8())),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                value.push(match e {
                    '\\' | '\'' | '"' => e,
                    'n' => '\n',
                    't' => '\t',
                    _ => return Err(ExprError::new(start + k, ExprErrorKind::BadEscape(e))),
                });
            }
            c => value.push(c),
        }
    }
    Err(ExprError::new(start, ExprErrorKind::UnterminatedString))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers() {
        assert_eq!(
            toks("1. 2.0 .5 1e-3 7"),
            vec![Tok::Float(1.0), Tok::Float(2.0), Tok::Float(0.5), Tok::Float(1e-3), Tok::Int(7), Tok::End]
        );
        assert!(lex("3x").is_err());
        assert!(lex("1e").is_err());
        assert!(lex("1..2").is_err());
        assert!(lex("99999999999999999999").is_err());
    }

    #[test]
    fn names_and_strings() {
        assert_eq!(
            toks("nn.ReLU(mode='a\\'b')"),
            vec![
                Tok::Ident("nn".into()),
                Tok::Dot,
                Tok::Ident("ReLU".into()),
                Tok::LParen,
                Tok::Ident("mode".into()),
                Tok::Eq,
                Tok::Str("a'b".into()),
                Tok::RParen,
                Tok::End
            ]
        );
        let e = lex("f('abc").unwrap_err();
        assert_eq!((e.offset, e.kind), (2, ExprErrorKind::UnterminatedString));
        let e = lex("f(é)").unwrap_err();
        assert_eq!((e.offset, e.kind), (2, ExprErrorKind::UnexpectedChar('é')));
    }
}
