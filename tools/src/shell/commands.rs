//! Shell commands that cqlsh handles itself (not sent to the server), parsed from a statement.

use scylla::statement::{Consistency, SerialConsistency};

/// A statement, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EXIT` / `QUIT`.
    Exit,
    /// `HELP [topic]` / `?`.
    Help(Option<String>),
    /// `CLEAR` / `CLS`.
    Clear,
    /// `EXPAND [ON|OFF]`.
    Expand(Option<bool>),
    /// `PAGING [ON|OFF|N]`.
    Paging(Option<PagingSetting>),
    /// `CONSISTENCY [level]`.
    Consistency(Option<Consistency>),
    /// `SERIAL CONSISTENCY [level]`.
    SerialConsistency(Option<SerialConsistency>),
    /// `TRACING [ON|OFF]`.
    Tracing(Option<bool>),
    /// `SOURCE 'file'`.
    Source(String),
    /// `SHOW VERSION` / `SHOW HOST`.
    Show(ShowWhat),
    /// `DESCRIBE ...` / `DESC ...` (sent to the server; the kind chooses the layout).
    Describe(DescribeKind),
    /// A command cqlsh has that this shell does not (`COPY`, `CAPTURE`, `LOGIN`, ...).
    Unsupported(String),
    /// A shell command with bad arguments; the text is the message to print.
    Improper(String),
    /// Anything else: a CQL statement for the server (including `USE`).
    Cql,
}

/// The argument of `PAGING`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingSetting {
    /// `PAGING ON`.
    On,
    /// `PAGING OFF`.
    Off,
    /// `PAGING N`: on, with this page size.
    Size(i32),
}

/// What `SHOW` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowWhat {
    /// `SHOW VERSION`.
    Version,
    /// `SHOW HOST`.
    Host,
}

/// How a DESCRIBE result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescribeKind {
    /// `DESCRIBE KEYSPACES`: the names in columns.
    Keyspaces,
    /// `DESCRIBE TABLES` (and types, functions, aggregates): names grouped by keyspace.
    List,
    /// `DESCRIBE CLUSTER`.
    Cluster,
    /// Everything else: the `create_statement` texts.
    Element,
}

/// Splits a statement into words, keeping quoted strings (with their quotes) as one word.
#[must_use]
pub fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '\'' || c == '"' {
            let quote = c;
            word.push(c);
            chars.next();
            while let Some(c) = chars.next() {
                word.push(c);
                if c == quote {
                    if chars.peek() == Some(&quote) {
                        word.push(quote);
                        chars.next();
                    } else {
                        break;
                    }
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    words
}

/// Removes single quotes (with `''` escapes) around a string literal, if present.
#[must_use]
pub fn unquote(s: &str) -> String {
    match s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None => s.to_string(),
    }
}

/// Parses a consistency level name (case-insensitive).
#[must_use]
pub fn parse_consistency(name: &str) -> Option<Consistency> {
    Some(match name.to_ascii_uppercase().as_str() {
        "ANY" => Consistency::Any,
        "ONE" => Consistency::One,
        "TWO" => Consistency::Two,
        "THREE" => Consistency::Three,
        "QUORUM" => Consistency::Quorum,
        "ALL" => Consistency::All,
        "LOCAL_QUORUM" => Consistency::LocalQuorum,
        "EACH_QUORUM" => Consistency::EachQuorum,
        "SERIAL" => Consistency::Serial,
        "LOCAL_SERIAL" => Consistency::LocalSerial,
        "LOCAL_ONE" => Consistency::LocalOne,
        _ => return None,
    })
}

/// The CQL name of a consistency level.
#[must_use]
pub fn consistency_name(c: Consistency) -> &'static str {
    match c {
        Consistency::Any => "ANY",
        Consistency::One => "ONE",
        Consistency::Two => "TWO",
        Consistency::Three => "THREE",
        Consistency::Quorum => "QUORUM",
        Consistency::All => "ALL",
        Consistency::LocalQuorum => "LOCAL_QUORUM",
        Consistency::EachQuorum => "EACH_QUORUM",
        Consistency::Serial => "SERIAL",
        Consistency::LocalSerial => "LOCAL_SERIAL",
        Consistency::LocalOne => "LOCAL_ONE",
    }
}

/// The CQL name of a serial consistency level.
#[must_use]
pub fn serial_consistency_name(c: SerialConsistency) -> &'static str {
    match c {
        SerialConsistency::Serial => "SERIAL",
        SerialConsistency::LocalSerial => "LOCAL_SERIAL",
    }
}

fn on_off(word: Option<&String>) -> Result<Option<bool>, ()> {
    match word.map(|w| w.to_ascii_lowercase()) {
        None => Ok(None),
        Some(w) if w == "on" => Ok(Some(true)),
        Some(w) if w == "off" => Ok(Some(false)),
        Some(_) => Err(()),
    }
}

/// Classifies a statement.
#[must_use]
pub fn parse(text: &str) -> Command {
    let words = words(text);
    let Some(first) = words.first().map(|w| w.to_ascii_lowercase()) else {
        return Command::Cql;
    };
    let arg = words.get(1);
    let extra = words.len() > 2;
    match first.as_str() {
        "exit" | "quit" => Command::Exit,
        "help" | "?" => Command::Help(if words.len() > 1 { Some(words[1..].join(" ")) } else { None }),
        "clear" | "cls" => Command::Clear,
        "expand" => match on_off(arg) {
            Ok(v) if !extra => Command::Expand(v),
            _ => Command::Improper("Improper EXPAND command.".into()),
        },
        "tracing" => match on_off(arg) {
            Ok(v) if !extra => Command::Tracing(v),
            _ => Command::Improper("Improper TRACING command.".into()),
        },
        "paging" => {
            let setting = match arg.map(|w| w.to_ascii_lowercase()) {
                None => Some(None),
                Some(w) if w == "on" => Some(Some(PagingSetting::On)),
                Some(w) if w == "off" => Some(Some(PagingSetting::Off)),
                Some(w) => w.parse::<i32>().ok().filter(|n| *n > 0).map(|n| Some(PagingSetting::Size(n))),
            };
            match setting {
                Some(s) if !extra => Command::Paging(s),
                _ => Command::Improper("Improper PAGING command.".into()),
            }
        }
        "consistency" => match arg {
            None => Command::Consistency(None),
            Some(level) => match parse_consistency(level) {
                Some(c) if !extra => Command::Consistency(Some(c)),
                _ => Command::Improper("Improper CONSISTENCY command.".into()),
            },
        },
        "serial" => {
            if !arg.is_some_and(|w| w.eq_ignore_ascii_case("consistency")) {
                return Command::Improper("Improper SERIAL CONSISTENCY command.".into());
            }
            match words.get(2).map(|w| w.to_ascii_uppercase()) {
                None => Command::SerialConsistency(None),
                Some(w) if w == "SERIAL" && words.len() == 3 => {
                    Command::SerialConsistency(Some(SerialConsistency::Serial))
                }
                Some(w) if w == "LOCAL_SERIAL" && words.len() == 3 => {
                    Command::SerialConsistency(Some(SerialConsistency::LocalSerial))
                }
                Some(_) => Command::Improper("Improper SERIAL CONSISTENCY command.".into()),
            }
        }
        "source" => match arg {
            Some(f) if f.starts_with('\'') && !extra => Command::Source(unquote(f)),
            _ => Command::Improper("Improper SOURCE command: use SOURCE 'file'".into()),
        },
        "show" => match arg.map(|w| w.to_ascii_lowercase()).as_deref() {
            Some("version") if !extra => Command::Show(ShowWhat::Version),
            Some("host") if !extra => Command::Show(ShowWhat::Host),
            _ => Command::Improper("Improper SHOW command: use SHOW VERSION or SHOW HOST".into()),
        },
        "describe" | "desc" => Command::Describe(describe_kind(&words[1..])),
        "capture" | "login" | "debug" | "copy" | "history" => {
            Command::Unsupported(first.to_ascii_uppercase())
        }
        _ => Command::Cql,
    }
}

fn describe_kind(args: &[String]) -> DescribeKind {
    let mut args = args.iter().map(|w| w.to_ascii_lowercase());
    let mut what = args.next();
    while matches!(what.as_deref(), Some("full" | "only")) {
        what = args.next();
    }
    match what.as_deref() {
        Some("keyspaces") => DescribeKind::Keyspaces,
        Some("tables" | "columnfamilies" | "types" | "functions" | "aggregates") => DescribeKind::List,
        Some("cluster") => DescribeKind::Cluster,
        _ => DescribeKind::Element,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_commands_are_recognised_case_insensitively() {
        assert_eq!(parse("exit"), Command::Exit);
        assert_eq!(parse("QUIT"), Command::Exit);
        assert_eq!(parse("expand on"), Command::Expand(Some(true)));
        assert_eq!(parse("EXPAND"), Command::Expand(None));
        assert_eq!(parse("paging 50"), Command::Paging(Some(PagingSetting::Size(50))));
        assert_eq!(parse("PAGING off"), Command::Paging(Some(PagingSetting::Off)));
        assert_eq!(parse("consistency local_quorum"), Command::Consistency(Some(Consistency::LocalQuorum)));
        assert_eq!(parse("CONSISTENCY"), Command::Consistency(None));
        assert_eq!(
            parse("SERIAL CONSISTENCY local_serial"),
            Command::SerialConsistency(Some(SerialConsistency::LocalSerial))
        );
        assert_eq!(parse("tracing on"), Command::Tracing(Some(true)));
        assert_eq!(parse("SOURCE '/tmp/it''s.cql'"), Command::Source("/tmp/it's.cql".into()));
        assert_eq!(parse("help"), Command::Help(None));
        assert_eq!(parse("cls"), Command::Clear);
    }

    #[test]
    fn bad_arguments_are_improper() {
        assert!(matches!(parse("expand maybe"), Command::Improper(_)));
        assert!(matches!(parse("paging -1"), Command::Improper(_)));
        assert!(matches!(parse("consistency strong"), Command::Improper(_)));
        assert!(matches!(parse("serial consistency one"), Command::Improper(_)));
        assert!(matches!(parse("source nofile"), Command::Improper(_)));
    }

    #[test]
    fn describe_kinds() {
        assert_eq!(parse("DESCRIBE KEYSPACES"), Command::Describe(DescribeKind::Keyspaces));
        assert_eq!(parse("desc tables"), Command::Describe(DescribeKind::List));
        assert_eq!(parse("DESC CLUSTER"), Command::Describe(DescribeKind::Cluster));
        assert_eq!(parse("DESCRIBE TABLE ks.t"), Command::Describe(DescribeKind::Element));
        assert_eq!(parse("DESCRIBE FULL SCHEMA"), Command::Describe(DescribeKind::Element));
        assert_eq!(parse("DESCRIBE ONLY KEYSPACE ks"), Command::Describe(DescribeKind::Element));
    }

    #[test]
    fn cql_statements_go_to_the_server() {
        assert_eq!(parse("SELECT * FROM t"), Command::Cql);
        assert_eq!(parse("USE ks"), Command::Cql);
        assert_eq!(parse("serial_table"), Command::Cql);
    }

    #[test]
    fn consistency_names_round_trip() {
        for name in [
            "ANY",
            "ONE",
            "TWO",
            "THREE",
            "QUORUM",
            "ALL",
            "LOCAL_QUORUM",
            "EACH_QUORUM",
            "SERIAL",
            "LOCAL_SERIAL",
            "LOCAL_ONE",
        ] {
            assert_eq!(parse_consistency(name).map(consistency_name), Some(name));
        }
    }
}
