//! Token cursor shared by the grammar rules: lookahead, expectations, error tracking,
//! speculation, nesting depth and bind-marker numbering.
//!
//! Error strategy: every failed `expect_*`/`accept_*` records what would have been accepted at
//! the current token. Only the expectations at the furthest token reached survive, so when the
//! parse fails the error points at the furthest position with the full set of alternatives that
//! were valid there. Rules that know better (semantic checks, the depth limit, lexical errors)
//! raise a *fatal* error instead, which aborts the parse whatever alternatives remain.

use std::fmt;

use super::keywords::is_reserved_keyword;
use super::lexer::{tokenize, Token, TokenKind};
use super::{ParseError, MAX_NESTING_DEPTH};
use crate::ast::{BindMarker, QualifiedName};

/// Something the grammar would have accepted at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    /// A keyword, shown bare (`FROM`).
    Keyword(&'static str),
    /// Punctuation, shown quoted (`')'`).
    Sym(&'static str),
    /// A category, shown as is (`identifier`, `term`, `type`...).
    What(&'static str),
    /// End of input, shown `EOF`.
    Eof,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Keyword(k) => f.write_str(k),
            Expected::Sym(s) => write!(f, "'{s}'"),
            Expected::What(w) => f.write_str(w),
            Expected::Eof => f.write_str("EOF"),
        }
    }
}

/// More alternatives than this and the error says "no viable alternative" instead of listing.
const MAX_LISTED_EXPECTATIONS: usize = 12;

/// Longest token text quoted in an error message.
const MAX_SHOWN_TOKEN_CHARS: usize = 40;

/// Marker for a failed rule; the details live in the [`Parser`].
#[derive(Debug)]
pub(crate) struct Fail;

pub(crate) type PResult<T> = Result<T, Fail>;

/// Parser state over one token vector.
pub(crate) struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token<'a>>,
    eof: Token<'a>,
    pos: usize,
    furthest: usize,
    expected: Vec<Expected>,
    fatal: Option<ParseError>,
    depth: u32,
    markers: Vec<Option<String>>,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        let toks = tokenize(src);
        let eof =
            toks.last().cloned().unwrap_or(Token { kind: TokenKind::Eof, text: "", offset: 0, line: 1 });
        Parser {
            src,
            toks,
            eof,
            pos: 0,
            furthest: 0,
            expected: Vec::new(),
            fatal: None,
            depth: 0,
            markers: Vec::new(),
        }
    }

    // ----- lookahead -------------------------------------------------------------------------

    pub(crate) fn peek(&self) -> &Token<'a> {
        self.peek_n(0)
    }

    /// The token `n` positions ahead (Eof past the end).
    pub(crate) fn peek_n(&self, n: usize) -> &Token<'a> {
        self.toks.get(self.pos.saturating_add(n)).unwrap_or(&self.eof)
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn at_eof(&self) -> bool {
        self.peek().kind == TokenKind::Eof
    }

    /// Consumes and returns the current token (never moves past Eof).
    pub(crate) fn advance(&mut self) -> Token<'a> {
        let tok = self.peek().clone();
        if tok.kind != TokenKind::Eof {
            self.pos += 1;
        }
        tok
    }

    pub(crate) fn is_kw(tok: &Token<'_>, kw: &str) -> bool {
        tok.kind == TokenKind::Word && tok.text.eq_ignore_ascii_case(kw)
    }

    /// Whether the token `n` ahead is keyword `kw` (no expectation recorded).
    pub(crate) fn check_kw_at(&self, n: usize, kw: &str) -> bool {
        Self::is_kw(self.peek_n(n), kw)
    }

    pub(crate) fn check_kw(&self, kw: &str) -> bool {
        self.check_kw_at(0, kw)
    }

    /// Consumes keyword `kw` if present; otherwise records it as expected.
    pub(crate) fn accept_kw(&mut self, kw: &'static str) -> bool {
        if self.check_kw(kw) {
            self.pos += 1;
            true
        } else {
            self.record(Expected::Keyword(kw));
            false
        }
    }

    pub(crate) fn expect_kw(&mut self, kw: &'static str) -> PResult<()> {
        if self.accept_kw(kw) {
            Ok(())
        } else {
            Err(Fail)
        }
    }

    pub(crate) fn check_sym_at(&self, n: usize, sym: &str) -> bool {
        matches!(self.peek_n(n).kind, TokenKind::Sym(s) if s == sym)
    }

    pub(crate) fn check_sym(&self, sym: &str) -> bool {
        self.check_sym_at(0, sym)
    }

    /// Consumes symbol `sym` if present; otherwise records it as expected.
    pub(crate) fn accept_sym(&mut self, sym: &'static str) -> bool {
        if self.check_sym(sym) {
            self.pos += 1;
            true
        } else {
            self.record(Expected::Sym(sym));
            false
        }
    }

    pub(crate) fn expect_sym(&mut self, sym: &'static str) -> PResult<()> {
        if self.accept_sym(sym) {
            Ok(())
        } else {
            Err(Fail)
        }
    }

    /// Consumes the end of input or records it as expected.
    pub(crate) fn accept_eof(&mut self) -> bool {
        if self.at_eof() {
            true
        } else {
            self.record(Expected::Eof);
            false
        }
    }

    // ----- errors ----------------------------------------------------------------------------

    /// Records that `e` would have been accepted at the current token.
    pub(crate) fn record(&mut self, e: Expected) {
        if self.pos > self.furthest {
            self.furthest = self.pos;
            self.expected.clear();
        }
        if self.pos == self.furthest && !self.expected.contains(&e) {
            self.expected.push(e);
        }
    }

    /// Records `e` and fails.
    pub(crate) fn fail<T>(&mut self, e: Expected) -> PResult<T> {
        self.record(e);
        Err(Fail)
    }

    /// Aborts the whole parse with `message` at the current token.
    pub(crate) fn fatal<T>(&mut self, message: impl Into<String>) -> PResult<T> {
        self.fatal_at(self.pos, message)
    }

    /// Aborts the whole parse with `message` at token index `at`.
    pub(crate) fn fatal_at<T>(&mut self, at: usize, message: impl Into<String>) -> PResult<T> {
        if self.fatal.is_none() {
            let tok = self.toks.get(at).unwrap_or(&self.eof);
            self.fatal = Some(self.error_at(tok, message.into()));
        }
        Err(Fail)
    }

    /// Like [`Parser::fatal_at`], for a rule Cassandra checks after parsing: reported as an
    /// invalid query, not a syntax error.
    pub(crate) fn invalid_at<T>(&mut self, at: usize, message: impl Into<String>) -> PResult<T> {
        let r = self.fatal_at(at, message);
        if let Some(f) = &mut self.fatal {
            f.kind = super::ParseErrorKind::Invalid;
        }
        r
    }

    /// An error at `tok`: the line comes from the lexer, the column (in characters, like
    /// ANTLR) is computed here, once.
    fn error_at(&self, tok: &Token<'_>, message: String) -> ParseError {
        let before = self.src.get(..tok.offset).unwrap_or(self.src);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |l| l.chars().count());
        ParseError {
            line: tok.line,
            column: u32::try_from(column).unwrap_or(u32::MAX),
            message,
            kind: super::ParseErrorKind::Syntax,
        }
    }

    /// The error to report after a failed parse.
    pub(crate) fn into_error(self) -> ParseError {
        if let Some(fatal) = self.fatal {
            return fatal;
        }
        let tok = self.toks.get(self.furthest).unwrap_or(&self.eof);
        if let TokenKind::Error(message) = &tok.kind {
            return self.error_at(tok, message.clone());
        }
        let input = display_token(tok);
        let message = match self.expected.as_slice() {
            [] => format!("no viable alternative at input '{input}'"),
            [one] => format!("mismatched input '{input}' expecting {one}"),
            many if many.len() <= MAX_LISTED_EXPECTATIONS => {
                let list: Vec<String> = many.iter().map(ToString::to_string).collect();
                format!("mismatched input '{input}' expecting {{{}}}", list.join(", "))
            }
            _ => format!("no viable alternative at input '{input}'"),
        };
        self.error_at(tok, message)
    }

    // ----- structure -------------------------------------------------------------------------

    /// Runs `f` one nesting level deeper; fails fatally beyond [`MAX_NESTING_DEPTH`].
    pub(crate) fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.depth >= MAX_NESTING_DEPTH {
            return self.fatal(format!("input nested too deeply (more than {MAX_NESTING_DEPTH} levels)"));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// Tries `f`; on a non-fatal failure rewinds (position and bind markers) and returns
    /// `Ok(None)`. Expectations recorded by the attempt are kept: if the attempt got furthest,
    /// its error is the most useful one.
    pub(crate) fn speculate<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<Option<T>> {
        let (pos, markers) = (self.pos, self.markers.len());
        match f(self) {
            Ok(v) => Ok(Some(v)),
            Err(Fail) if self.fatal.is_some() => Err(Fail),
            Err(Fail) => {
                self.pos = pos;
                self.markers.truncate(markers);
                Ok(None)
            }
        }
    }

    /// Allocates the next bind marker.
    pub(crate) fn new_marker(&mut self, name: Option<String>) -> BindMarker {
        let index = self.markers.len();
        self.markers.push(name.clone());
        BindMarker { index, name }
    }

    /// Takes the bind markers of the statement just parsed (and resets the numbering).
    pub(crate) fn take_markers(&mut self) -> Vec<Option<String>> {
        std::mem::take(&mut self.markers)
    }

    // ----- identifiers -----------------------------------------------------------------------

    /// The identifier a token denotes, if it can be one: an unreserved word (lower-cased) or a
    /// non-empty quoted name (verbatim).
    pub(crate) fn ident_of(tok: &Token<'_>) -> Option<String> {
        match &tok.kind {
            TokenKind::Word if !is_reserved_keyword(tok.text) => Some(tok.text.to_ascii_lowercase()),
            TokenKind::Quoted(name) if !name.is_empty() => Some(name.clone()),
            _ => None,
        }
    }

    pub(crate) fn check_ident_at(&self, n: usize) -> bool {
        Self::ident_of(self.peek_n(n)).is_some()
    }

    /// `IDENT | QUOTED_NAME | unreserved_keyword`.
    pub(crate) fn ident(&mut self) -> PResult<String> {
        match Self::ident_of(self.peek()) {
            Some(name) => {
                self.pos += 1;
                Ok(name)
            }
            None => self.fail(Expected::What("identifier")),
        }
    }

    /// A column name in DML: like [`Self::ident`] but also the legacy empty name `""`.
    pub(crate) fn cident(&mut self) -> PResult<String> {
        if matches!(&self.peek().kind, TokenKind::Quoted(name) if name.is_empty()) {
            self.pos += 1;
            return Ok(String::new());
        }
        self.ident()
    }

    /// An identifier for a schema object of kind `what` (`keyspace`, `table`...): rejects `?`
    /// with Cassandra's message.
    pub(crate) fn object_name(&mut self, what: &str) -> PResult<String> {
        if self.check_sym("?") {
            return self.fatal(format!("Bind variables cannot be used for {what} names"));
        }
        self.ident()
    }

    /// `[ks '.'] name`.
    pub(crate) fn qualified_name(&mut self, what: &str) -> PResult<QualifiedName> {
        let first = self.object_name(what)?;
        if self.accept_sym(".") {
            let name = self.object_name(what)?;
            Ok(QualifiedName { keyspace: Some(first), name })
        } else {
            Ok(QualifiedName { keyspace: None, name: first })
        }
    }
}

/// Token text as shown in messages (`<EOF>` for the end, long texts shortened).
fn display_token(tok: &Token<'_>) -> String {
    if tok.kind == TokenKind::Eof {
        return "<EOF>".to_string();
    }
    let mut chars = tok.text.chars();
    let shown: String = chars.by_ref().take(MAX_SHOWN_TOKEN_CHARS).collect();
    if chars.next().is_some() {
        format!("{shown}...")
    } else {
        shown
    }
}
