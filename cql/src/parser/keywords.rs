//! Reserved keywords and identifier quoting.
//!
//! Cassandra's lexer makes every keyword a token; the parser accepts the *unreserved* ones
//! wherever an identifier is expected (`unreserved_keyword` in `Parser.g`). Here the lexer
//! produces plain words and this module says which words can never be identifiers: the keywords
//! Cassandra's grammar does not list as unreserved, plus `true`/`false` (BOOLEAN tokens).

use std::borrow::Cow;

/// Words that are never identifiers (upper case, sorted).
const RESERVED: [&str; 59] = [
    "ADD",
    "ALLOW",
    "ALTER",
    "AND",
    "APPLY",
    "ASC",
    "AUTHORIZE",
    "BATCH",
    "BEGIN",
    "BY",
    "COLUMNFAMILY",
    "CREATE",
    "DELETE",
    "DESC",
    "DESCRIBE",
    "DROP",
    "ENTRIES",
    "EXECUTE",
    "FALSE",
    "FROM",
    "FULL",
    "GRANT",
    "IF",
    "IN",
    "INDEX",
    "INFINITY",
    "INSERT",
    "INTO",
    "IS",
    "KEYSPACE",
    "LIMIT",
    "MATERIALIZED",
    "MODIFY",
    "NAN",
    "NORECURSIVE",
    "NOT",
    "NULL",
    "OF",
    "ON",
    "OR",
    "ORDER",
    "PRIMARY",
    "RENAME",
    "REVOKE",
    "SCHEMA",
    "SELECT",
    "SET",
    "TABLE",
    "TO",
    "TOKEN",
    "TRUE",
    "TRUNCATE",
    "UNLOGGED",
    "UPDATE",
    "USE",
    "USING",
    "VIEW",
    "WHERE",
    "WITH",
];

/// Not reserved by the grammar but listed by Cassandra's `ReservedKeywords`, which decides what
/// it quotes when printing names: quoted too, to print names exactly like Cassandra.
const QUOTED_ANYWAY: [&str; 5] = ["DEFAULT", "MBEAN", "MBEANS", "REPLACE", "UNSET"];

/// Whether `word` (any case) is a reserved keyword, i.e. can never be an unquoted identifier.
pub fn is_reserved_keyword(word: &str) -> bool {
    RESERVED.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// Quotes `name` the way Cassandra prints identifiers (`ColumnIdentifier.maybeQuote`): names that
/// are not `[a-z][a-z0-9_]*` or that are (reserved) keywords get double quotes, with `"` doubled.
pub fn quote_identifier(name: &str) -> Cow<'_, str> {
    let plain = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    let keyword = is_reserved_keyword(name) || QUOTED_ANYWAY.iter().any(|k| k.eq_ignore_ascii_case(name));
    if plain && !keyword {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("\"{}\"", name.replace('"', "\"\"")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved() {
        assert!(is_reserved_keyword("select"));
        assert!(is_reserved_keyword("Token"));
        assert!(is_reserved_keyword("true"));
        for w in
            ["key", "value", "ttl", "writetime", "type", "count", "timestamp", "keys", "default", "unset"]
        {
            assert!(!is_reserved_keyword(w), "{w}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_identifier("abc_1"), "abc_1");
        assert_eq!(quote_identifier("C0"), "\"C0\"");
        assert_eq!(quote_identifier("select"), "\"select\"");
        assert_eq!(quote_identifier("default"), "\"default\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_identifier(""), "\"\"");
        assert_eq!(quote_identifier("1a"), "\"1a\"");
    }
}
