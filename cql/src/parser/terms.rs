//! Constants, terms, bind markers, function calls and types.

use super::cursor::{Expected, PResult, Parser};
use super::keywords::is_reserved_keyword;
use super::lexer::{Token, TokenKind};
use crate::ast::{BindMarker, Literal, NativeType, QualifiedName, Term, TypeExpr};

/// Names Cassandra refuses for user types (`Parser.g` `reservedTypeNames`).
const RESERVED_TYPE_NAMES: [&str; 7] =
    ["byte", "complex", "enum", "date", "interval", "macaddr", "bitstring"];

impl<'a> Parser<'a> {
    // ----- constants -------------------------------------------------------------------------

    /// Whether the token `n` ahead starts a constant (including a `-` sign).
    pub(crate) fn check_constant_at(&self, n: usize) -> bool {
        let tok = self.peek_n(n);
        match &tok.kind {
            TokenKind::Str(_)
            | TokenKind::Integer
            | TokenKind::Float
            | TokenKind::Duration
            | TokenKind::Uuid
            | TokenKind::Hex => true,
            TokenKind::Word => {
                ["true", "false", "nan", "infinity"].iter().any(|k| tok.text.eq_ignore_ascii_case(k))
            }
            TokenKind::Sym("-") => Self::is_signable(self.peek_n(n + 1)),
            _ => false,
        }
    }

    /// Tokens a leading `-` can be folded into.
    fn is_signable(tok: &Token<'_>) -> bool {
        matches!(tok.kind, TokenKind::Integer | TokenKind::Float | TokenKind::Duration)
            || Self::is_kw(tok, "nan")
            || Self::is_kw(tok, "infinity")
    }

    /// `constant`: string, integer, float, boolean, duration, uuid, hex, NaN, Infinity; a leading
    /// `-` is folded into numbers and durations.
    pub(crate) fn constant(&mut self) -> PResult<Literal> {
        if !self.check_constant_at(0) {
            return self.fail(Expected::What("constant"));
        }
        let negative = self.check_sym("-");
        if negative {
            self.advance();
        }
        let tok = self.advance();
        let signed = |text: &str| if negative { format!("-{text}") } else { text.to_string() };
        Ok(match tok.kind {
            TokenKind::Str(s) => Literal::String(s),
            TokenKind::Integer => Literal::Integer(signed(tok.text)),
            TokenKind::Float => Literal::Float(signed(tok.text)),
            TokenKind::Duration => Literal::Duration(signed(tok.text)),
            TokenKind::Uuid => Literal::Uuid(tok.text.to_string()),
            TokenKind::Hex => Literal::Hex(tok.text.to_string()),
            _ if Self::is_kw(&tok, "true") => Literal::Boolean(true),
            _ if Self::is_kw(&tok, "false") => Literal::Boolean(false),
            // NaN / Infinity (check_constant_at admitted nothing else).
            _ => Literal::Float(signed(tok.text)),
        })
    }

    // ----- bind markers ----------------------------------------------------------------------

    pub(crate) fn check_marker(&self) -> bool {
        self.check_sym("?") || self.check_sym(":")
    }

    /// `?` or `:name`.
    pub(crate) fn marker(&mut self) -> PResult<BindMarker> {
        if self.accept_sym("?") {
            return Ok(self.new_marker(None));
        }
        if self.accept_sym(":") {
            let name = self.ident()?;
            return Ok(self.new_marker(Some(name)));
        }
        self.fail(Expected::What("bind marker"))
    }

    /// `intValue`: an integer (optionally negative) or a bind marker.
    pub(crate) fn int_value(&mut self) -> PResult<Term> {
        if self.check_marker() {
            return Ok(Term::BindMarker(self.marker()?));
        }
        let negative = self.check_sym("-") && self.peek_n(1).kind == TokenKind::Integer;
        if self.peek().kind == TokenKind::Integer || negative {
            return Ok(Term::Literal(self.constant()?));
        }
        self.record(Expected::What("integer"));
        self.fail(Expected::What("bind marker"))
    }

    // ----- terms -----------------------------------------------------------------------------

    /// A word or quoted name usable as (part of) a function name.
    fn is_function_name(tok: &Token<'_>) -> bool {
        Parser::ident_of(tok).is_some() || Self::is_kw(tok, "token")
    }

    /// Whether a function call `f(` or `ks.f(` starts `n` tokens ahead.
    pub(crate) fn check_function_call_at(&self, n: usize) -> bool {
        Self::is_function_name(self.peek_n(n))
            && (self.check_sym_at(n + 1, "(")
                || (self.check_sym_at(n + 1, ".")
                    && Self::is_function_name(self.peek_n(n + 2))
                    && self.check_sym_at(n + 3, "(")))
    }

    /// Whether the token `n` ahead can start a term.
    pub(crate) fn check_term_start_at(&self, n: usize) -> bool {
        let tok = self.peek_n(n);
        self.check_constant_at(n)
            || Self::is_kw(tok, "null")
            || matches!(tok.kind, TokenKind::Sym("?" | ":" | "[" | "{" | "("))
            || self.check_function_call_at(n)
    }

    /// `functionName`: `[ks '.'] name` where name may also be `token`.
    pub(crate) fn function_name(&mut self) -> PResult<QualifiedName> {
        let first = self.function_name_part()?;
        if self.check_sym(".") && Self::is_function_name(self.peek_n(1)) {
            self.advance();
            let name = self.function_name_part()?;
            return Ok(QualifiedName { keyspace: Some(first), name });
        }
        Ok(QualifiedName { keyspace: None, name: first })
    }

    fn function_name_part(&mut self) -> PResult<String> {
        if self.check_kw("token") {
            self.advance();
            return Ok("token".to_string());
        }
        match Self::ident_of(self.peek()) {
            Some(name) => {
                self.advance();
                Ok(name)
            }
            None => self.fail(Expected::What("function name")),
        }
    }

    /// A term, one nesting level deeper.
    pub(crate) fn term(&mut self) -> PResult<Term> {
        self.nested(Self::term_inner)
    }

    fn term_inner(&mut self) -> PResult<Term> {
        if self.check_constant_at(0) {
            return Ok(Term::Literal(self.constant()?));
        }
        if self.check_kw("null") {
            self.advance();
            return Ok(Term::Literal(Literal::Null));
        }
        if self.check_marker() {
            return Ok(Term::BindMarker(self.marker()?));
        }
        if self.check_sym("[") {
            return self.list_literal();
        }
        if self.check_sym("{") {
            return self.brace_literal();
        }
        if self.check_sym("(") {
            return self.paren_term();
        }
        if self.check_function_call_at(0) {
            let name = self.function_name()?;
            let args = self.function_args(Self::term)?;
            return Ok(Term::FunctionCall { name, args });
        }
        self.fail(Expected::What("term"))
    }

    /// `'(' (item (',' item)*)? ')'`.
    pub(crate) fn function_args<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        self.expect_sym("(")?;
        let mut args = Vec::new();
        if self.accept_sym(")") {
            return Ok(args);
        }
        loop {
            args.push(item(self)?);
            if self.accept_sym(")") {
                return Ok(args);
            }
            self.expect_sym(",")?;
        }
    }

    /// `'[' (term (',' term)*)? ']'`.
    fn list_literal(&mut self) -> PResult<Term> {
        self.expect_sym("[")?;
        let mut items = Vec::new();
        if self.accept_sym("]") {
            return Ok(Term::List(items));
        }
        loop {
            items.push(self.term()?);
            if self.accept_sym("]") {
                return Ok(Term::List(items));
            }
            self.expect_sym(",")?;
        }
    }

    /// `{}`, set `{a, b}`, map `{k: v}` or user type `{field: v}`.
    fn brace_literal(&mut self) -> PResult<Term> {
        self.expect_sym("{")?;
        if self.accept_sym("}") {
            return Ok(Term::EmptyCollection);
        }
        if self.check_ident_at(0) && self.check_sym_at(1, ":") {
            let mut fields = Vec::new();
            loop {
                let field = self.ident()?;
                self.expect_sym(":")?;
                fields.push((field, self.term()?));
                if self.accept_sym("}") {
                    return Ok(Term::Udt(fields));
                }
                self.expect_sym(",")?;
            }
        }
        let first = self.term()?;
        if self.accept_sym(":") {
            let mut entries = vec![(first, self.term()?)];
            loop {
                if self.accept_sym("}") {
                    return Ok(Term::Map(entries));
                }
                self.expect_sym(",")?;
                let key = self.term()?;
                self.expect_sym(":")?;
                entries.push((key, self.term()?));
            }
        }
        let mut items = vec![first];
        loop {
            if self.accept_sym("}") {
                return Ok(Term::Set(items));
            }
            self.expect_sym(",")?;
            items.push(self.term()?);
        }
    }

    /// After `(`: a type hint `(type) term` or a tuple `(t1, t2, ...)`.
    ///
    /// Decided by lookahead: a word that cannot start a term (not `null`/`true`/... and not a
    /// function call) starts a type, and so does a string literal directly followed by `)` and
    /// a term (a custom type class name).
    fn paren_term(&mut self) -> PResult<Term> {
        let tok = self.peek_n(1);
        let starts_type = match &tok.kind {
            TokenKind::Word => {
                (!is_reserved_keyword(tok.text) || Self::is_kw(tok, "set")) && !self.check_function_call_at(1)
            }
            TokenKind::Quoted(_) => !self.check_function_call_at(1),
            TokenKind::Str(_) => self.check_sym_at(2, ")") && self.check_term_start_at(3),
            _ => false,
        };
        self.expect_sym("(")?;
        if starts_type {
            let ty = self.type_expr()?;
            self.expect_sym(")")?;
            let term = self.term()?;
            return Ok(Term::Cast { ty, term: Box::new(term) });
        }
        let mut items = Vec::new();
        loop {
            items.push(self.term()?);
            if self.accept_sym(")") {
                return Ok(Term::Tuple(items));
            }
            self.expect_sym(",")?;
        }
    }

    // ----- types -----------------------------------------------------------------------------

    /// `comparatorType`, one nesting level deeper.
    pub(crate) fn type_expr(&mut self) -> PResult<TypeExpr> {
        self.nested(Self::type_inner)
    }

    fn type_inner(&mut self) -> PResult<TypeExpr> {
        let tok = self.peek().clone();
        if let TokenKind::Str(class) = tok.kind {
            self.advance();
            return Ok(TypeExpr::Custom(class));
        }
        if tok.kind == TokenKind::Word && self.check_sym_at(1, "<") {
            let word = tok.text.to_ascii_lowercase();
            let parametrized = ["frozen", "list", "set", "map", "tuple", "vector"];
            if parametrized.contains(&word.as_str()) {
                self.advance();
                self.advance();
                return self.parametrized_type(&word);
            }
        }
        if tok.kind == TokenKind::Word && !self.check_sym_at(1, ".") {
            if let Some(native) = NativeType::from_name(tok.text) {
                self.advance();
                return Ok(TypeExpr::Native(native));
            }
        }
        if !self.check_ident_at(0) {
            return self.fail(Expected::What("type"));
        }
        let first = self.ident()?;
        let (name, name_tok) = if self.check_sym(".") && self.check_ident_at(1) {
            self.advance();
            let tok = self.peek().clone();
            (QualifiedName { keyspace: Some(first), name: self.ident()? }, tok)
        } else {
            (QualifiedName { keyspace: None, name: first }, tok)
        };
        if name_tok.kind == TokenKind::Word && RESERVED_TYPE_NAMES.contains(&name.name.as_str()) {
            let at = self.pos().saturating_sub(1);
            return self.fatal_at(at, format!("Invalid (reserved) user type name {}", name.name));
        }
        Ok(TypeExpr::UserDefined(name))
    }

    /// The rest of `word<...>` after the `<`.
    fn parametrized_type(&mut self, word: &str) -> PResult<TypeExpr> {
        let ty = match word {
            "frozen" => {
                let at = self.pos();
                let inner = self.type_expr()?;
                if matches!(inner, TypeExpr::Native(_) | TypeExpr::Custom(_)) {
                    return self.fatal_at(
                        at,
                        "frozen<> is only allowed on collections, tuples, and user-defined types",
                    );
                }
                TypeExpr::Frozen(Box::new(inner))
            }
            "list" => TypeExpr::List(Box::new(self.type_expr()?)),
            "set" => TypeExpr::Set(Box::new(self.type_expr()?)),
            "map" => {
                let key = self.type_expr()?;
                self.expect_sym(",")?;
                TypeExpr::Map(Box::new(key), Box::new(self.type_expr()?))
            }
            "tuple" => {
                let mut items = vec![self.type_expr()?];
                while self.accept_sym(",") {
                    items.push(self.type_expr()?);
                }
                TypeExpr::Tuple(items)
            }
            _ => {
                let element = self.type_expr()?;
                self.expect_sym(",")?;
                if self.peek().kind != TokenKind::Integer {
                    return self.fail(Expected::What("integer"));
                }
                let tok = self.advance();
                let dimension = match tok.text.parse::<u32>() {
                    Ok(d) if d > 0 => d,
                    _ => {
                        return self.fatal_at(
                            self.pos().saturating_sub(1),
                            format!("Invalid vector dimension: {}", tok.text),
                        )
                    }
                };
                TypeExpr::Vector { element: Box::new(element), dimension }
            }
        };
        self.expect_sym(">")?;
        Ok(ty)
    }
}
