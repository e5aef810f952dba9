//! Parses tokens into a small Python-expression tree (calls, literals, tuples, lists).
//!
//! The tree knows nothing about layers; [`super::build`] gives calls their meaning.

use super::error::{ExprError, ExprErrorKind};
use super::lexer::{Tok, Token};

/// Deepest bracket nesting accepted; real predictors use 3 levels at most.
pub(crate) const MAX_DEPTH: usize = 32;

/// A value and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) offset: usize,
    pub(crate) kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    None,
    /// `(a, b)` (and `(a,)`); `(a)` is just `a`, as in Python.
    Tuple(Vec<Node>),
    List(Vec<Node>),
    Call(Call),
}

impl NodeKind {
    /// How the value reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            NodeKind::Int(i) => format!("integer {i}"),
            NodeKind::Float(f) => format!("number {f:?}"),
            NodeKind::Str(s) => format!("string {s:?}"),
            NodeKind::Bool(true) => "True".into(),
            NodeKind::Bool(false) => "False".into(),
            NodeKind::None => "None".into(),
            NodeKind::Tuple(v) => format!("a tuple of {} values", v.len()),
            NodeKind::List(v) => format!("a list of {} values", v.len()),
            NodeKind::Call(c) => format!("a call of `{}`", c.name),
        }
    }
}

/// `name(args)`, with `name` possibly dotted (`nn.ReLU`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub(crate) name: String,
    pub(crate) args: Vec<Arg>,
    /// Offset of the closing `)`, where a missing argument is reported.
    pub(crate) close: usize,
}

/// One argument: `value` or `keyword=value`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Arg {
    /// The keyword and its offset.
    pub(crate) keyword: Option<(String, usize)>,
    pub(crate) value: Node,
}

/// Parses a whole expression; trailing tokens are an error.
pub(crate) fn parse(tokens: &[Token]) -> Result<Node, ExprError> {
    let mut p = Parser { tokens, pos: 0 };
    let node = p.value(0)?;
    p.expect(|t| matches!(t, Tok::End), "end of expression")?;
    Ok(node)
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
}

const END: Token = Token { tok: Tok::End, offset: 0 };

impl<'t> Parser<'t> {
    fn peek(&self) -> &'t Token {
        self.tokens.get(self.pos).or(self.tokens.last()).unwrap_or(&END)
    }

    fn peek_at(&self, ahead: usize) -> &'t Tok {
        self.tokens.get(self.pos + ahead).map_or(&Tok::End, |t| &t.tok)
    }

    fn bump(&mut self) -> &'t Token {
        let t = self.peek();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn unexpected(&self, expected: &'static str) -> ExprError {
        let t = self.peek();
        ExprError::new(t.offset, ExprErrorKind::Unexpected { expected, found: t.tok.describe() })
    }

    fn expect(&mut self, ok: impl Fn(&Tok) -> bool, expected: &'static str) -> Result<&'t Token, ExprError> {
        if ok(&self.peek().tok) {
            Ok(self.bump())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, ExprError> {
        let start = self.peek();
        if depth > MAX_DEPTH {
            return Err(ExprError::new(start.offset, ExprErrorKind::TooDeep(MAX_DEPTH)));
        }
        let offset = start.offset;
        let kind = match &start.tok {
            Tok::Int(i) => {
                self.bump();
                NodeKind::Int(*i)
            }
            Tok::Float(f) => {
                self.bump();
                NodeKind::Float(*f)
            }
            Tok::Str(s) => {
                self.bump();
                NodeKind::Str(s.clone())
            }
            Tok::Minus => {
                self.bump();
                let kind = match self.peek().tok {
                    Tok::Int(i) => NodeKind::Int(-i),
                    Tok::Float(f) => NodeKind::Float(-f),
                    _ => return Err(self.unexpected("a number after `-`")),
                };
                self.bump();
                kind
            }
            Tok::LParen => {
                self.bump();
                let (mut items, trailing_comma) = self.items(depth, |t| matches!(t, Tok::RParen), "`,` or `)`")?;
                if items.len() == 1 && !trailing_comma {
                    return Ok(items.remove(0));
                }
                NodeKind::Tuple(items)
            }
            Tok::LBracket => {
                self.bump();
                NodeKind::List(self.items(depth, |t| matches!(t, Tok::RBracket), "`,` or `]`")?.0)
            }
            Tok::Ident(_) => return self.name_or_call(depth),
            _ => return Err(self.unexpected("a value")),
        };
        Ok(Node { offset, kind })
    }

    /// Comma-separated values up to the closing token (consumed); also says whether a
    /// trailing comma was written, which is what makes `(a,)` a tuple.
    fn items(
        &mut self,
        depth: usize,
        close: fn(&Tok) -> bool,
        expected: &'static str,
    ) -> Result<(Vec<Node>, bool), ExprError> {
        let mut items = Vec::new();
        loop {
            if close(&self.peek().tok) {
                self.bump();
                let trailing_comma = !items.is_empty();
                return Ok((items, trailing_comma));
            }
            items.push(self.value(depth + 1)?);
            if close(&self.peek().tok) {
                self.bump();
                return Ok((items, false));
            }
            self.expect(|t| matches!(t, Tok::Comma), expected)?;
        }
    }

    /// `True`/`False`/`None`, or a possibly dotted name followed by `(args)`.
    fn name_or_call(&mut self, depth: usize) -> Result<Node, ExprError> {
        let first = self.bump();
        let offset = first.offset;
        let mut name = match &first.tok {
            Tok::Ident(s) => s.clone(),
            _ => {
                return Err(ExprError::new(
                    offset,
                    ExprErrorKind::Unexpected { expected: "a name", found: first.tok.describe() },
                ))
            }
        };
        if !matches!(self.peek().tok, Tok::Dot | Tok::LParen) {
            let kind = match name.as_str() {
                "True" => NodeKind::Bool(true),
                "False" => NodeKind::Bool(false),
                "None" => NodeKind::None,
                _ => {
                    return Err(ExprError::new(
                        offset,
                        ExprErrorKind::Unexpected {
                            expected: "a value (strings need quotes)",
                            found: format!("name `{name}`"),
                        },
                    ))
                }
            };
            return Ok(Node { offset, kind });
        }
        while matches!(self.peek().tok, Tok::Dot) {
            self.bump();
            match &self.expect(|t| matches!(t, Tok::Ident(_)), "a name after `.`")?.tok {
                Tok::Ident(s) => {
                    name.push('.');
                    name.push_str(s);
                }
                _ => return Err(self.unexpected("a name after `.`")),
            }
        }
        self.expect(|t| matches!(t, Tok::LParen), "`(`")?;
        let args = self.args(depth)?;
        let close = self.expect(|t| matches!(t, Tok::RParen), "`,` or `)`")?.offset;
        Ok(Node { offset, kind: NodeKind::Call(Call { name, args, close }) })
    }

    /// Arguments up to (not including) the closing `)`.
    fn args(&mut self, depth: usize) -> Result<Vec<Arg>, ExprError> {
        let mut args = Vec::new();
        while !matches!(self.peek().tok, Tok::RParen) {
            let keyword = match (&self.peek().tok, self.peek_at(1)) {
                (Tok::Ident(k), Tok::Eq) => {
                    let at = self.peek().offset;
                    self.pos += 2;
                    Some((k.clone(), at))
                }
                _ => None,
            };
            let value = self.value(depth + 1)?;
            args.push(Arg { keyword, value });
            if matches!(self.peek().tok, Tok::RParen) {
                break;
            }
            self.expect(|t| matches!(t, Tok::Comma), "`,` or `)`")?;
        }
        Ok(args)
    }
}
