//! Tokenizer: CQL text to a vector of tokens, following Cassandra's `Lexer.g`.
//!
//! Keywords are not distinguished from identifiers here: both are [`TokenKind::Word`] and the
//! grammar decides (see `keywords.rs`). Where several token rules match, the longest match wins
//! and ties go to the rule Cassandra lists first (DURATION and BOOLEAN before IDENT, INTEGER
//! before FLOAT), so `P1Y` is a duration, `P1Yx` an identifier and
//! `a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11` a UUID. A leading `-` is never part of a number token:
//! the grammar folds `-` into the literal that follows it.
//!
//! The lexer never fails: an invalid character or an unterminated literal yields one
//! [`TokenKind::Error`] token (followed by `Eof`), which the grammar reports if it gets that far.

use nom::branch::alt;
use nom::bytes::complete::{tag, take, take_till, take_until};
use nom::character::complete::multispace1;
use nom::combinator::value;
use nom::{IResult, Input, Parser};
use nom_locate::LocatedSpan;

pub(crate) type Span<'a> = LocatedSpan<&'a str>;

/// Token categories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// Unquoted identifier or keyword: `LETTER (LETTER | DIGIT | '_')*`.
    Word,
    /// `"Quoted Name"`, unescaped. Empty for `""` (only valid as a legacy column name).
    Quoted(String),
    /// `'string'` or `$$string$$`, unescaped.
    Str(String),
    Integer,
    Float,
    Hex,
    Uuid,
    Duration,
    /// Punctuation / operator.
    Sym(&'static str),
    /// Lexical error; the payload is the message.
    Error(String),
    Eof,
}

/// One token with its source text and position.
#[derive(Debug, Clone)]
pub(crate) struct Token<'a> {
    pub kind: TokenKind,
    /// Raw source text (including quotes).
    pub text: &'a str,
    /// Byte offset in the source.
    pub offset: usize,
    /// 1-based line.
    pub line: u32,
}

/// Punctuation, longest first so that `<=` wins over `<`.
const SYMBOLS: [&str; 25] = [
    "..", "<=", ">=", "!=", "+=", "-=", "(", ")", "[", "]", "{", "}", ",", ";", ".", ":", "=", "<", ">", "+",
    "-", "*", "/", "%", "?",
];

/// Lexical error raised inside a token rule.
#[derive(Debug)]
struct LexError<'a> {
    at: Span<'a>,
    message: Option<&'static str>,
}

impl<'a> nom::error::ParseError<Span<'a>> for LexError<'a> {
    fn from_error_kind(input: Span<'a>, _kind: nom::error::ErrorKind) -> Self {
        LexError { at: input, message: None }
    }

    fn append(_input: Span<'a>, _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

type LResult<'a, T> = IResult<Span<'a>, T, LexError<'a>>;

fn failure<'a, T>(at: Span<'a>, message: &'static str) -> LResult<'a, T> {
    Err(nom::Err::Failure(LexError { at, message: Some(message) }))
}

/// Whitespace and comments (`-- ...`, `// ...`, `/* ... */`).
fn trivia(i: Span<'_>) -> LResult<'_, ()> {
    // Fast path: most tokens start with something else.
    if !i.fragment().bytes().next().is_some_and(|b| b.is_ascii_whitespace() || b == b'-' || b == b'/') {
        return Err(nom::Err::Error(LexError { at: i, message: None }));
    }
    let line_comment = (alt((tag("--"), tag("//"))), take_till(|c| c == '\n' || c == '\r'));
    alt((value((), multispace1), value((), line_comment), block_comment)).parse(i)
}

fn block_comment(i: Span<'_>) -> LResult<'_, ()> {
    let (rest, _) = tag("/*").parse(i)?;
    match (take_until::<_, _, LexError<'_>>("*/"), tag("*/")).parse(rest) {
        Ok((rest, _)) => Ok((rest, ())),
        Err(_) => failure(i, "unterminated comment"),
    }
}

/// `'...'` with `''` escapes, or `"..."` with `""` escapes (selected by `quote`).
fn quoted(quote: char, unterminated: &'static str) -> impl Fn(Span<'_>) -> LResult<'_, String> {
    move |i: Span<'_>| {
        let (mut rest, _) = nom::character::complete::char(quote).parse(i)?;
        let mut out = String::new();
        loop {
            let (r, chunk) = take_till::<_, _, LexError<'_>>(|c| c == quote).parse(rest)?;
            out.push_str(chunk.fragment());
            match nom::character::complete::char::<_, LexError<'_>>(quote).parse(r) {
                Ok((r, _)) => {
                    // A doubled quote is an escaped quote; a single one ends the literal.
                    match nom::character::complete::char::<_, LexError<'_>>(quote).parse(r) {
                        Ok((r, _)) => {
                            out.push(quote);
                            rest = r;
                        }
                        Err(_) => return Ok((r, out)),
                    }
                }
                Err(_) => return failure(i, unterminated),
            }
        }
    }
}

fn dollar_string(i: Span<'_>) -> LResult<'_, String> {
    let (rest, _) = tag("$$").parse(i)?;
    match (take_until::<_, _, LexError<'_>>("$$"), tag("$$")).parse(rest) {
        Ok((rest, (body, _))) => Ok((rest, body.fragment().to_string())),
        Err(_) => failure(i, "unterminated $$ string literal"),
    }
}

fn symbol(i: Span<'_>) -> LResult<'_, &'static str> {
    let text = i.fragment().as_bytes();
    for sym in SYMBOLS {
        if text.starts_with(sym.as_bytes()) {
            return Ok((i.take_from(sym.len()), sym));
        }
    }
    Err(nom::Err::Error(LexError { at: i, message: None }))
}

// ----- longest-match scanning of words, numbers, durations and UUIDs -------------------------

fn count_while(s: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    s.get(from..).map_or(0, |rest| rest.iter().take_while(|&&b| pred(b)).count())
}

fn byte_at(s: &[u8], at: usize) -> Option<u8> {
    s.get(at).copied()
}

/// `LETTER (LETTER | DIGIT | '_')*`.
fn scan_word(s: &[u8]) -> usize {
    match byte_at(s, 0) {
        Some(b) if b.is_ascii_alphabetic() => {
            1 + count_while(s, 1, |b| b.is_ascii_alphanumeric() || b == b'_')
        }
        _ => 0,
    }
}

/// `HEX{8} '-' HEX{4} '-' HEX{4} '-' HEX{4} '-' HEX{12}`.
fn scan_uuid(s: &[u8]) -> usize {
    let mut at = 0;
    for (n, group) in [8usize, 4, 4, 4, 12].into_iter().enumerate() {
        if n > 0 {
            if byte_at(s, at) != Some(b'-') {
                return 0;
            }
            at += 1;
        }
        if count_while(s, at, |b| b.is_ascii_hexdigit()) < group {
            return 0;
        }
        at += group;
    }
    at
}

/// `'0' X HEX*`.
fn scan_hex(s: &[u8]) -> usize {
    match (byte_at(s, 0), byte_at(s, 1)) {
        (Some(b'0'), Some(b'x' | b'X')) => 2 + count_while(s, 2, |b| b.is_ascii_hexdigit()),
        _ => 0,
    }
}

/// `DIGIT+ ('.' DIGIT*)? EXPONENT?`, returning (length, is_float). `1..2` lexes `1` then `..`.
fn scan_number(s: &[u8]) -> (usize, bool) {
    let digits = count_while(s, 0, |b| b.is_ascii_digit());
    if digits == 0 {
        return (0, false);
    }
    let mut at = digits;
    let mut is_float = false;
    if byte_at(s, at) == Some(b'.') && byte_at(s, at + 1) != Some(b'.') {
        at += 1 + count_while(s, at + 1, |b| b.is_ascii_digit());
        is_float = true;
    }
    if matches!(byte_at(s, at), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(byte_at(s, at + 1), Some(b'+' | b'-')));
        let exp = count_while(s, at + 1 + sign, |b| b.is_ascii_digit());
        if exp > 0 {
            at += 1 + sign + exp;
            is_float = true;
        }
    }
    (at, is_float)
}

/// Length of a duration unit at the start of `s` (case-insensitive; `µs` too).
fn scan_unit(s: &[u8]) -> usize {
    let lower = |at: usize| byte_at(s, at).map(|b| b.to_ascii_lowercase());
    match (lower(0), lower(1)) {
        (Some(b'm'), Some(b'o' | b's')) | (Some(b'u' | b'n'), Some(b's')) => 2,
        // U+00B5 MICRO SIGN is 0xC2 0xB5 in UTF-8.
        (Some(0xC2), _) if byte_at(s, 1) == Some(0xB5) && lower(2) == Some(b's') => 3,
        (Some(b'y' | b'w' | b'd' | b'h' | b'm' | b's'), _) => 1,
        _ => 0,
    }
}

/// `DIGIT+ UNIT (DIGIT+ UNIT)*`.
fn scan_unit_duration(s: &[u8]) -> usize {
    let mut at = 0;
    loop {
        let digits = count_while(s, at, |b| b.is_ascii_digit());
        if digits == 0 {
            return at;
        }
        let unit = s.get(at + digits..).map_or(0, scan_unit);
        if unit == 0 {
            return at;
        }
        at += digits + unit;
    }
}

/// ISO 8601 durations (designators are upper case, as in Cassandra):
/// `P[nY][nM][nD][T[nH][nM][nS]]`, `PnW`, `PYYYY-MM-DDThh:mm:ss`.
fn scan_iso_duration(s: &[u8]) -> usize {
    if byte_at(s, 0) != Some(b'P') {
        return 0;
    }
    // Alternative format.
    let pattern = b"dddd-dd-ddTdd:dd:dd";
    let alt_ok = pattern.iter().enumerate().all(|(n, &p)| match byte_at(s, 1 + n) {
        Some(b) if p == b'd' => b.is_ascii_digit(),
        Some(b) => b == p,
        None => false,
    });
    if alt_ok {
        return 1 + pattern.len();
    }
    // Designated components: each is DIGIT+ followed by one of `allowed`, in order.
    let components = |start: usize, allowed: &[u8]| -> usize {
        let mut at = start;
        let mut next = 0;
        loop {
            let digits = count_while(s, at, |b| b.is_ascii_digit());
            let Some(designator) = byte_at(s, at + digits) else { return at };
            let Some(pos) = allowed.get(next..).and_then(|rest| rest.iter().position(|&d| d == designator))
            else {
                return at;
            };
            if digits == 0 {
                return at;
            }
            next += pos + 1;
            at += digits + 1;
        }
    };
    let week_digits = count_while(s, 1, |b| b.is_ascii_digit());
    if week_digits > 0 && byte_at(s, 1 + week_digits) == Some(b'W') {
        return 2 + week_digits;
    }
    let date_end = components(1, b"YMD");
    let mut end = date_end;
    if byte_at(s, date_end) == Some(b'T') {
        let time_end = components(date_end + 1, b"HMS");
        if time_end > date_end + 1 {
            end = time_end;
        }
    }
    if end > 1 {
        end
    } else {
        0
    }
}

/// Longest match among the word-like and number-like token rules.
fn scan_atom(s: &[u8]) -> Option<(usize, TokenKind)> {
    let (num_len, is_float) = scan_number(s);
    let num_kind = if is_float { TokenKind::Float } else { TokenKind::Integer };
    // Priority order for equal lengths follows Cassandra's Lexer.g rule order.
    let candidates = [
        (scan_unit_duration(s), TokenKind::Duration),
        (scan_iso_duration(s), TokenKind::Duration),
        (num_len, num_kind),
        (scan_word(s), TokenKind::Word),
        (scan_hex(s), TokenKind::Hex),
        (scan_uuid(s), TokenKind::Uuid),
    ];
    let mut best: Option<(usize, TokenKind)> = None;
    for (len, kind) in candidates {
        if len > 0 && best.as_ref().is_none_or(|(l, _)| len > *l) {
            best = Some((len, kind));
        }
    }
    best
}

fn atom(i: Span<'_>) -> LResult<'_, TokenKind> {
    match scan_atom(i.fragment().as_bytes()) {
        // `len` counts bytes (the `take` combinator would count characters).
        Some((len, kind)) if i.fragment().is_char_boundary(len) => Ok((i.take_from(len), kind)),
        Some(_) => Err(nom::Err::Error(LexError { at: i, message: None })),
        None => Err(nom::Err::Error(LexError { at: i, message: None })),
    }
}

fn string_literal(i: Span<'_>) -> LResult<'_, TokenKind> {
    quoted('\'', "unterminated string literal").map(TokenKind::Str).parse(i)
}

fn dollar_literal(i: Span<'_>) -> LResult<'_, TokenKind> {
    dollar_string.map(TokenKind::Str).parse(i)
}

fn quoted_name(i: Span<'_>) -> LResult<'_, TokenKind> {
    quoted('"', "unterminated quoted identifier").map(TokenKind::Quoted).parse(i)
}

fn punctuation(i: Span<'_>) -> LResult<'_, TokenKind> {
    symbol.map(TokenKind::Sym).parse(i)
}

/// One token (not trivia), dispatched on its first byte.
fn token(i: Span<'_>) -> LResult<'_, TokenKind> {
    match i.fragment().bytes().next() {
        Some(b'\'') => string_literal(i),
        Some(b'"') => quoted_name(i),
        Some(b'$') => alt((dollar_literal, punctuation)).parse(i),
        Some(b) if b.is_ascii_alphanumeric() => atom(i),
        _ => punctuation(i),
    }
}

fn make_token<'a>(kind: TokenKind, start: Span<'a>, end: Span<'a>) -> Token<'a> {
    let len = end.location_offset().saturating_sub(start.location_offset());
    let text = start.fragment().get(..len).unwrap_or_default();
    Token { kind, text, offset: start.location_offset(), line: start.location_line() }
}

/// Tokenizes `src`. The result always ends with exactly one `Eof` token and contains at most
/// one `Error` token, just before it.
pub(crate) fn tokenize(src: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut input = Span::new(src);
    loop {
        // Skip whitespace and comments.
        loop {
            match trivia(input) {
                Ok((rest, ())) => input = rest,
                Err(nom::Err::Failure(e)) => {
                    push_error(&mut tokens, e);
                    return finish(tokens, src);
                }
                Err(_) => break,
            }
        }
        if input.input_len() == 0 {
            return finish(tokens, src);
        }
        match token(input) {
            Ok((rest, kind)) => {
                tokens.push(make_token(kind, input, rest));
                input = rest;
            }
            Err(nom::Err::Failure(e)) => {
                push_error(&mut tokens, e);
                return finish(tokens, src);
            }
            Err(_) => {
                let ch = input.fragment().chars().next().unwrap_or('?');
                let rest = take::<_, _, LexError<'_>>(1usize).parse(input).map_or(input, |(rest, _)| rest);
                let kind = TokenKind::Error(format!("no viable alternative at character '{ch}'"));
                tokens.push(make_token(kind, input, rest));
                return finish(tokens, src);
            }
        }
    }
}

fn push_error<'a>(tokens: &mut Vec<Token<'a>>, e: LexError<'a>) {
    let message = e.message.unwrap_or("invalid input");
    let first = e.at.fragment().chars().next().map_or(0, char::len_utf8);
    let text = e.at.fragment().get(..first).unwrap_or_default();
    tokens.push(Token {
        kind: TokenKind::Error(message.to_string()),
        text,
        offset: e.at.location_offset(),
        line: e.at.location_line(),
    });
}

fn finish<'a>(mut tokens: Vec<Token<'a>>, src: &'a str) -> Vec<Token<'a>> {
    let line = 1 + u32::try_from(src.bytes().filter(|&b| b == b'\n').count()).unwrap_or(u32::MAX - 1);
    tokens.push(Token { kind: TokenKind::Eof, text: "", offset: src.len(), line });
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(TokenKind, &str)> {
        tokenize(src).into_iter().map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn words_numbers_symbols() {
        use TokenKind::*;
        assert_eq!(
            kinds("SELECT a1_b, 42 FROM t WHERE x>=1.5e3"),
            vec![
                (Word, "SELECT"),
                (Word, "a1_b"),
                (Sym(","), ","),
                (Integer, "42"),
                (Word, "FROM"),
                (Word, "t"),
                (Word, "WHERE"),
                (Word, "x"),
                (Sym(">="), ">="),
                (Float, "1.5e3"),
                (Eof, ""),
            ]
        );
    }

    #[test]
    fn numbers() {
        use TokenKind::*;
        assert_eq!(kinds("1.")[0], (Float, "1."));
        assert_eq!(kinds("1e10")[0], (Float, "1e10"));
        assert_eq!(kinds("2.5E-3")[0], (Float, "2.5E-3"));
        assert_eq!(kinds("1..2"), vec![(Integer, "1"), (Sym(".."), ".."), (Integer, "2"), (Eof, "")]);
        assert_eq!(kinds("1e")[..2], [(Integer, "1"), (Word, "e")]);
        assert_eq!(kinds("0xCAFE")[0], (Hex, "0xCAFE"));
        assert_eq!(kinds("0x")[0], (Hex, "0x"));
        assert_eq!(kinds("-1")[..2], [(Sym("-"), "-"), (Integer, "1")]);
    }

    #[test]
    fn uuids_and_durations() {
        use TokenKind::*;
        assert_eq!(
            kinds("123e4567-e89b-12d3-a456-426614174000")[0],
            (Uuid, "123e4567-e89b-12d3-a456-426614174000")
        );
        assert_eq!(
            kinds("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")[0],
            (Uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        );
        for d in
            ["1h30m", "2d", "1mo", "12us", "12µs", "3ns", "1y", "2w", "10ms", "1Y2MO3D", "P1Y2M3DT4H5M6S"]
        {
            assert_eq!(kinds(d), vec![(Duration, d), (Eof, "")], "{d}");
        }
        for d in ["P2W", "PT5S", "P1D", "P0001-02-03T04:05:06", "P1YT1S"] {
            assert_eq!(kinds(d), vec![(Duration, d), (Eof, "")], "{d}");
        }
        // Not durations.
        assert_eq!(kinds("P")[0], (Word, "P"));
        assert_eq!(kinds("P1Yx")[0], (Word, "P1Yx"));
        assert_eq!(kinds("p1y")[0], (Word, "p1y"));
        assert_eq!(kinds("PT")[0], (Word, "PT"));
        assert_eq!(kinds("P1M1Y")[..2], [(Word, "P1M1Y"), (Eof, "")]);
        assert_eq!(kinds("1hx")[..2], [(Duration, "1h"), (Word, "x")]);
    }

    #[test]
    fn strings_and_names() {
        use TokenKind::*;
        assert_eq!(kinds("'it''s'")[0], (Str("it's".into()), "'it''s'"));
        assert_eq!(kinds("''")[0], (Str(String::new()), "''"));
        assert_eq!(kinds("$$a'b;$c$$")[0], (Str("a'b;$c".into()), "$$a'b;$c$$"));
        assert_eq!(kinds("\"Foo\"\"Bar\"")[0], (Quoted("Foo\"Bar".into()), "\"Foo\"\"Bar\""));
        assert_eq!(kinds("\"\"")[0], (Quoted(String::new()), "\"\""));
    }

    #[test]
    fn comments_and_lines() {
        let toks = tokenize("-- c1\nSELECT /* x\n y */ a // c2\n FROM");
        let words: Vec<_> = toks.iter().map(|t| (t.text, t.line)).collect();
        assert_eq!(words, vec![("SELECT", 2), ("a", 3), ("FROM", 4), ("", 4)]);
    }

    #[test]
    fn errors() {
        let toks = tokenize("SELECT 'abc");
        assert_eq!(toks[1].kind, TokenKind::Error("unterminated string literal".into()));
        assert_eq!(toks[1].offset, 7);
        let toks = tokenize("a /* b");
        assert_eq!(toks[1].kind, TokenKind::Error("unterminated comment".into()));
        let toks = tokenize("a ! b");
        assert_eq!(toks[1].kind, TokenKind::Error("no viable alternative at character '!'".into()));
        let toks = tokenize("a é");
        assert_eq!(toks[1].kind, TokenKind::Error("no viable alternative at character 'é'".into()));
        assert_eq!(toks[2].kind, TokenKind::Eof);
    }
}
