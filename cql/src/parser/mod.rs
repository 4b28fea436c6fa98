//! CQL parser: text to [`crate::ast`].
//!
//! A hand-written recursive-descent parser over a token vector produced by a `nom` lexer
//! (`lexer.rs`). It follows Cassandra's ANTLR grammar (`Lexer.g` / `Parser.g`, 4.x with a few
//! 5.0 additions) for the statements Sibyl executes, and reports errors the way Cassandra does:
//! `line L:C mismatched input 'X' expecting Y`, `line L:C no viable alternative at input 'X'`,
//! with a 1-based line and a 0-based column in characters.
//!
//! # Entry points
//!
//! * [`parse_statement`]: exactly one statement, optional trailing `;`.
//! * [`parse_prepared`]: the same, plus the statement's bind markers ([`Parsed`]).
//! * [`parse_statements`]: a `;`-separated script (empty statements are skipped).
//! * [`parse_type`]: a CQL type as written in `system_schema.columns.type`.
//!
//! # Bind markers
//!
//! Every `?` and every `:name` gets the next 0-based index in order of appearance across the
//! whole statement (batch children, `USING TTL ?`, `LIMIT ?`, `IN ?` included); a name used twice
//! gets two indices, as in Cassandra. [`Parsed::bind_markers`] and
//! [`crate::ast::Statement::bind_markers`] list the names by index.
//!
//! # Grammar covered
//!
//! * Lexical: case-insensitive keywords; identifiers folded to lower case unless `"quoted"`
//!   (`""` escapes `"`); unreserved keywords usable as identifiers (see `keywords.rs`, taken
//!   from `Parser.g`); comments `--`, `//`, `/* */`; strings `'...'` (`''` escape) and
//!   `$$...$$`; integers, floats (`1.5`, `1.`, `1e10`, `NaN`, `Infinity`, with `-`), hex blobs
//!   `0x...`, unquoted UUIDs, booleans, `null`, durations (`1h30m`, `12µs`, `P1Y2M3DT4H5M6S`,
//!   `P2W`, `P0001-02-03T04:05:06`).
//! * `CREATE KEYSPACE|SCHEMA [IF NOT EXISTS]`, `ALTER KEYSPACE [IF EXISTS]`,
//!   `DROP KEYSPACE [IF EXISTS]`, `USE`.
//! * `CREATE TABLE|COLUMNFAMILY [IF NOT EXISTS]` with `STATIC`, inline or separate (composite)
//!   `PRIMARY KEY`, a trailing comma, `WITH` generic properties, `CLUSTERING ORDER BY`,
//!   `COMPACT STORAGE`; `ALTER TABLE [IF EXISTS]` `ADD [IF NOT EXISTS]`, `DROP [IF EXISTS]
//!   [USING TIMESTAMP n]`, `DROP COMPACT STORAGE`, `RENAME [IF EXISTS]`, `ALTER c TYPE t`,
//!   `WITH`; `DROP TABLE [IF EXISTS]`; `TRUNCATE [TABLE]`.
//! * `INSERT` (`VALUES` or `JSON ... [DEFAULT NULL|UNSET]`, `IF NOT EXISTS`, `USING`),
//!   `UPDATE` (all assignment forms, `IF EXISTS`, `IF` conditions incl. `IN`, `c[k]`, `c.f`,
//!   `CONTAINS [KEY]`), `DELETE` (columns, `c[k]`, `c.f`, `USING TIMESTAMP`, `IF`), `BATCH`
//!   (logged, `UNLOGGED`, `COUNTER`, `USING`, children with optional `;`, empty batch).
//! * `SELECT [JSON] [DISTINCT]` with `*`, columns, aliases, `COUNT(*)`, `WRITETIME`,
//!   `MAXWRITETIME`, `TTL`, `CAST(x AS native)`, function calls (`ks.fn`, `token`), field
//!   selection `c.f`, element `c[k]` and slice `c[a..b]` selection, term selectors; `WHERE`
//!   relations (`= < <= > >= != IN CONTAINS [KEY] LIKE`, `IS NOT NULL`, `c[k] op`, tuples
//!   `(a, b) op|IN`, `token(...) op`, parenthesised relations); `GROUP BY`, `ORDER BY`,
//!   `PER PARTITION LIMIT`, `LIMIT`, `ALLOW FILTERING`.
//! * `DESCRIBE|DESC` `CLUSTER`, `[FULL] SCHEMA`, `KEYSPACES`, `[ONLY] KEYSPACE [ks]`,
//!   `TABLES`, `TABLE t`, `INDEX i`, `MATERIALIZED VIEW v`, `TYPES`, `TYPE t`, `FUNCTIONS`,
//!   `FUNCTION f`, `AGGREGATES`, `AGGREGATE a`, `name`, `ks.name`, `WITH INTERNALS`.
//! * Statements Sibyl does not implement are recognised by their leading keywords and the rest
//!   is skipped to the next `;`, yielding [`crate::ast::Statement::Unsupported`] with `kind`:
//!   `CREATE` `INDEX`, `CUSTOM INDEX`, `MATERIALIZED VIEW`, `TYPE`, `[OR REPLACE] FUNCTION`,
//!   `[OR REPLACE] AGGREGATE`, `TRIGGER`, `ROLE`, `USER`; `ALTER` `MATERIALIZED VIEW`, `TYPE`,
//!   `ROLE`, `USER`; `DROP` `INDEX`, `MATERIALIZED VIEW`, `TYPE`, `FUNCTION`, `AGGREGATE`,
//!   `TRIGGER`, `ROLE`, `USER`, `IDENTITY`; `GRANT`; `REVOKE`; `LIST ROLES|USERS|SUPERUSERS`
//!   (any other `LIST ...` is `LIST PERMISSIONS`); `ADD IDENTITY`. Kinds are e.g.
//!   `"CREATE INDEX"`, `"CREATE FUNCTION"` (also for `OR REPLACE`), `"GRANT"`.
//!
//! # Deliberate deviations from Cassandra
//!
//! * No arithmetic operators in terms or selectors (`a + 1`, `-x`, `?*2`): a `-` is only folded
//!   into the number/duration/NaN/Infinity literal that follows it (with or without a space).
//! * Terms have no `CAST(x AS t)` (Cassandra 5); selectors have no nested-selector tuples or
//!   collection literals built from columns (`(a, b)`, `[a, b]`), no `(type) column` hints (a
//!   parenthesised selector is parsed as a term), no arithmetic; `WRITETIME`/`TTL` take a plain
//!   column. `GROUP BY` takes columns only. No `BETWEEN`, `NOT IN`, `NOT CONTAINS`, `ANN OF`,
//!   `expr(index, ...)` custom index expressions, column masks or CHECK constraints.
//! * Tuple relations accept any term on the right of an operator and any terms in `IN (...)`
//!   (Cassandra requires tuple literals or markers there); the executor checks shapes.
//! * INSERT accepts `USING ...` before `IF NOT EXISTS` as well as after.
//! * Duplicate `TTL`/`TIMESTAMP` in one USING clause are rejected (Cassandra keeps the last).
//! * Property values may be any identifier, not only unreserved keywords; property map entries
//!   must be constants (Cassandra reports non-constants after parsing, with another message).
//! * Checks Cassandra makes while parsing are made here too, with the same messages where
//!   Cassandra has one: several or no PRIMARY KEY, duplicate properties, `X = Y + v` with
//!   `X != Y`, `frozen<>` on a native type, reserved user type names, bind markers as keyspace
//!   or table names. Column/value count mismatches are left to the executor.
//! * `CREATE SCHEMA` / `ALTER SCHEMA` / `DROP SCHEMA` are accepted as keyspace synonyms.
//! * Nesting (terms, types, selectors, parenthesised relations) is limited to
//!   [`MAX_NESTING_DEPTH`] levels; deeper input is a parse error, never a stack overflow.
//! * Lexical errors are reported at the start of the offending token (unterminated strings,
//!   quoted names and comments at their opening quote), with messages like
//!   `unterminated string literal` or `no viable alternative at character '!'`.

mod cursor;
mod ddl;
mod dml;
mod keywords;
mod lexer;
mod terms;

#[cfg(test)]
mod tests;

use crate::ast::{Statement, TypeExpr};
use cursor::{Fail, Parser};

pub use keywords::{is_reserved_keyword, quote_identifier};

/// Maximum nesting of terms, types, selectors and parenthesised relations.
pub const MAX_NESTING_DEPTH: u32 = 64;

/// A syntax error, displayed Cassandra-style: `line 1:14 mismatched input 'FORM' expecting FROM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}:{column} {message}")]
pub struct ParseError {
    /// 1-based line of the offending token.
    pub line: u32,
    /// 0-based column (in characters) of the offending token.
    pub column: u32,
    /// What went wrong, e.g. `mismatched input 'FORM' expecting FROM`.
    pub message: String,
    /// Whether the text is not CQL at all (a syntax error) or CQL that Cassandra refuses when it
    /// prepares the statement (an invalid query), which the protocol reports with another code.
    pub kind: ParseErrorKind,
}

/// What kind of error a [`ParseError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParseErrorKind {
    /// The text does not parse (protocol `Syntax_error`).
    #[default]
    Syntax,
    /// The text parses but breaks a rule Cassandra checks on the parsed statement (protocol
    /// `Invalid`), e.g. a table with no or several PRIMARY KEYs.
    Invalid,
}

/// A statement with its bind markers.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub statement: Statement,
    /// Marker names by index (`None` for `?`); the length is the number of markers.
    pub bind_markers: Vec<Option<String>>,
}

/// Parses exactly one statement, with an optional trailing `;`. Whitespace and comments may
/// surround it.
pub fn parse_statement(text: &str) -> Result<Statement, ParseError> {
    parse_prepared(text).map(|p| p.statement)
}

/// Like [`parse_statement`], also returning the bind markers (what a PREPARE needs).
pub fn parse_prepared(text: &str) -> Result<Parsed, ParseError> {
    let mut p = Parser::new(text);
    match one_statement(&mut p) {
        Ok(statement) => Ok(Parsed { statement, bind_markers: p.take_markers() }),
        Err(Fail) => Err(p.into_error()),
    }
}

fn one_statement(p: &mut Parser<'_>) -> Result<Statement, Fail> {
    let statement = p.statement()?;
    p.accept_sym(";");
    if p.accept_eof() {
        Ok(statement)
    } else {
        Err(Fail)
    }
}

/// Parses a script of statements separated by `;` (empty statements are skipped). Each
/// statement numbers its bind markers from 0.
pub fn parse_statements(text: &str) -> Result<Vec<Statement>, ParseError> {
    parse_prepared_statements(text).map(|v| v.into_iter().map(|p| p.statement).collect())
}

/// Like [`parse_statements`], also returning each statement's bind markers.
pub fn parse_prepared_statements(text: &str) -> Result<Vec<Parsed>, ParseError> {
    let mut p = Parser::new(text);
    let mut out = Vec::new();
    loop {
        while p.accept_sym(";") {}
        if p.at_eof() {
            return Ok(out);
        }
        let statement = match p.statement() {
            Ok(s) => s,
            Err(Fail) => return Err(p.into_error()),
        };
        out.push(Parsed { statement, bind_markers: p.take_markers() });
        if !p.accept_sym(";") && !p.accept_eof() {
            return Err(p.into_error());
        }
    }
}

/// Parses a CQL type such as `frozen<map<text, list<int>>>`, `tuple<int, "MyType">`,
/// `ks.address` or `'org.apache.cassandra.db.marshal.BytesType'`.
pub fn parse_type(text: &str) -> Result<TypeExpr, ParseError> {
    let mut p = Parser::new(text);
    let result = p.type_expr().and_then(|ty| if p.accept_eof() { Ok(ty) } else { Err(Fail) });
    result.map_err(|Fail| p.into_error())
}
