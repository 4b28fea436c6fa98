//! Splitting shell input into statements.
//!
//! A CQL statement ends at a `;` outside string literals (`'...'` with `''` escapes and
//! `$$...$$`), quoted identifiers (`"..."` with `""` escapes) and comments (`-- ...`,
//! `// ...` and `/* ... */`). Like cqlsh, shell commands such as `EXIT`, `HELP`, `DESCRIBE` or
//! `CONSISTENCY` also end at the end of their line, so they need no `;`.
//!
//! Leading whitespace and comments are removed from each statement and the `;` is not part of
//! it; everything else (including comments inside the statement) is kept as typed.

/// Shell commands that end at the end of a line (cqlsh's `commands_end_with_newline`).
pub const COMMANDS_ENDING_AT_NEWLINE: [&str; 18] = [
    "help",
    "?",
    "consistency",
    "serial",
    "describe",
    "desc",
    "show",
    "source",
    "capture",
    "login",
    "debug",
    "tracing",
    "expand",
    "paging",
    "exit",
    "quit",
    "clear",
    "cls",
];

/// A complete statement and the line of the input where it starts (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement text, without leading comments and without the terminating `;`.
    pub text: String,
    /// The line where the statement's first token is.
    pub line: usize,
}

/// Lexical state of the scanner between characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    SingleQuoted,
    DoubleQuoted,
    DollarQuoted,
    LineComment,
    BlockComment,
}

/// Accumulates input lines and hands out complete statements.
#[derive(Debug, Default)]
pub struct Splitter {
    /// Text not yet part of a complete statement.
    pending: String,
    /// Line number (1-based) of the first line in `pending`.
    pending_first_line: usize,
    /// Lines pushed so far.
    lines_seen: usize,
}

impl Splitter {
    /// A splitter at the start of the input.
    #[must_use]
    pub fn new() -> Splitter {
        Splitter { pending: String::new(), pending_first_line: 1, lines_seen: 0 }
    }

    /// Adds one line of input (without its line terminator) and returns the statements it
    /// completes.
    pub fn push_line(&mut self, line: &str) -> Vec<Statement> {
        if self.pending.is_empty() {
            self.pending_first_line = self.lines_seen + 1;
        }
        self.lines_seen += 1;
        self.pending.push_str(line);
        self.pending.push('\n');
        let (statements, consumed) = scan(&self.pending, self.pending_first_line, true);
        self.consume(consumed);
        statements
    }

    /// Whether no statement is in progress (only whitespace or comments are pending), so the
    /// shell shows its main prompt rather than the continuation prompt.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        strip_leading_trivia(&self.pending).0.is_empty()
    }

    /// Forgets the statement in progress (Ctrl-C at the prompt).
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// Ends the input: an unterminated statement is returned as it is (a script's last
    /// statement may omit its `;`).
    pub fn finish(&mut self) -> Option<Statement> {
        let (text, skipped_lines) = strip_leading_trivia(&self.pending);
        let text = text.trim_end().to_string();
        let line = self.pending_first_line + skipped_lines;
        self.pending.clear();
        if text.is_empty() {
            None
        } else {
            Some(Statement { text, line })
        }
    }

    fn consume(&mut self, consumed: usize) {
        if consumed == 0 {
            return;
        }
        let removed_lines = self.pending[..consumed].matches('\n').count();
        self.pending.drain(..consumed);
        self.pending_first_line += removed_lines;
    }
}

/// Splits a whole script into statements; a final statement without `;` is included.
#[must_use]
pub fn split_script(text: &str) -> Vec<Statement> {
    let mut splitter = Splitter::new();
    let mut statements = Vec::new();
    for line in text.lines() {
        statements.extend(splitter.push_line(line));
    }
    statements.extend(splitter.finish());
    statements
}

/// Removes leading whitespace and comments; returns the rest and how many newlines were
/// skipped.
fn strip_leading_trivia(text: &str) -> (&str, usize) {
    let mut rest = text;
    let mut newlines = 0;
    loop {
        let trimmed = rest.trim_start();
        newlines += rest[..rest.len() - trimmed.len()].matches('\n').count();
        rest = trimmed;
        if rest.starts_with("--") || rest.starts_with("//") {
            match rest.find('\n') {
                Some(i) => {
                    rest = &rest[i..];
                }
                None => return ("", newlines),
            }
        } else if let Some(body) = rest.strip_prefix("/*") {
            match body.find("*/") {
                Some(i) => {
                    newlines += body[..i].matches('\n').count();
                    rest = &body[i + 2..];
                }
                // An unterminated block comment: the statement has not started yet, but the
                // input is not idle either.
                None => return (rest, newlines),
            }
        } else {
            return (rest, newlines);
        }
    }
}

/// The first word of a statement, lower-cased.
#[must_use]
pub fn first_word(text: &str) -> String {
    let text = strip_leading_trivia(text).0;
    if text.starts_with('?') {
        return "?".to_string();
    }
    text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>().to_lowercase()
}

/// Scans `text` for complete statements. With `at_line_end`, a shell command that ends at a
/// newline is complete at the first newline outside quotes. Returns the statements and how many
/// bytes of `text` they used.
fn scan(text: &str, first_line: usize, at_line_end: bool) -> (Vec<Statement>, usize) {
    let mut statements = Vec::new();
    let mut state = State::Code;
    let mut start = 0; // byte offset where the current statement begins
    let mut start_line = first_line;
    let mut line = first_line;
    let bytes = text.as_bytes();
    let mut i = 0;
    let push = |statements: &mut Vec<Statement>, from: usize, to: usize, from_line: usize| {
        let (body, skipped) = strip_leading_trivia(&text[from..to]);
        let body = body.trim_end();
        if !body.is_empty() {
            statements.push(Statement { text: body.to_string(), line: from_line + skipped });
        }
    };
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        match state {
            State::Code => match c {
                b'\'' => state = State::SingleQuoted,
                b'"' => state = State::DoubleQuoted,
                b'$' if next == Some(b'$') => {
                    state = State::DollarQuoted;
                    i += 1;
                }
                b'-' if next == Some(b'-') => state = State::LineComment,
                b'/' if next == Some(b'/') => state = State::LineComment,
                b'/' if next == Some(b'*') => {
                    state = State::BlockComment;
                    i += 1;
                }
                b';' => {
                    push(&mut statements, start, i, start_line);
                    start = i + 1;
                    start_line = line;
                }
                b'\n' if at_line_end && ends_at_newline(&text[start..i]) => {
                    push(&mut statements, start, i, start_line);
                    start = i + 1;
                    start_line = line + 1;
                }
                _ => {}
            },
            State::SingleQuoted => {
                if c == b'\'' {
                    if next == Some(b'\'') {
                        i += 1;
                    } else {
                        state = State::Code;
                    }
                }
            }
            State::DoubleQuoted => {
                if c == b'"' {
                    if next == Some(b'"') {
                        i += 1;
                    } else {
                        state = State::Code;
                    }
                }
            }
            State::DollarQuoted => {
                if c == b'$' && next == Some(b'$') {
                    state = State::Code;
                    i += 1;
                }
            }
            State::LineComment => {
                if c == b'\n' {
                    state = State::Code;
                    // The newline ends the comment; it may also end a shell command.
                    continue;
                }
            }
            State::BlockComment => {
                if c == b'*' && next == Some(b'/') {
                    state = State::Code;
                    i += 1;
                }
            }
        }
        if c == b'\n' {
            line += 1;
        }
        i += 1;
    }
    (statements, start)
}

fn ends_at_newline(statement: &str) -> bool {
    let word = first_word(statement);
    COMMANDS_ENDING_AT_NEWLINE.contains(&word.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(statements: &[Statement]) -> Vec<&str> {
        statements.iter().map(|s| s.text.as_str()).collect()
    }

    #[test]
    fn statements_end_at_semicolons() {
        let s = split_script("SELECT * FROM t; INSERT INTO t (k) VALUES (1);\nSELECT 1;");
        assert_eq!(texts(&s), ["SELECT * FROM t", "INSERT INTO t (k) VALUES (1)", "SELECT 1"]);
        assert_eq!(s.iter().map(|s| s.line).collect::<Vec<_>>(), [1, 1, 2]);
    }

    #[test]
    fn a_statement_spans_lines_until_its_semicolon() {
        let mut sp = Splitter::new();
        assert!(sp.is_idle());
        assert!(sp.push_line("CREATE TABLE t (").is_empty());
        assert!(!sp.is_idle());
        assert!(sp.push_line("  k int PRIMARY KEY").is_empty());
        let done = sp.push_line(");");
        assert_eq!(texts(&done), ["CREATE TABLE t (\n  k int PRIMARY KEY\n)"]);
        assert_eq!(done[0].line, 1);
        assert!(sp.is_idle());
    }

    #[test]
    fn semicolons_inside_quotes_and_dollar_strings_do_not_end_statements() {
        let s = split_script(
            "INSERT INTO t (k, v) VALUES (1, 'a;b''c;');\nSELECT \"we;ird\" FROM t;\nINSERT INTO t (k, v) VALUES (2, $$x;\ny$$);",
        );
        assert_eq!(
            texts(&s),
            [
                "INSERT INTO t (k, v) VALUES (1, 'a;b''c;')",
                "SELECT \"we;ird\" FROM t",
                "INSERT INTO t (k, v) VALUES (2, $$x;\ny$$)"
            ]
        );
    }

    #[test]
    fn comments_hide_semicolons_and_leading_comments_are_dropped() {
        let s = split_script(
            "-- a comment; still a comment\n// another;\n/* block;\n comment */ SELECT 1 -- trailing;\n FROM t;",
        );
        assert_eq!(texts(&s), ["SELECT 1 -- trailing;\n FROM t"]);
        assert_eq!(s[0].line, 4);
    }

    #[test]
    fn comment_only_input_is_idle() {
        let mut sp = Splitter::new();
        assert!(sp.push_line("-- nothing here").is_empty());
        assert!(sp.is_idle());
        assert!(sp.push_line("/* open").is_empty());
        assert!(!sp.is_idle());
        assert!(sp.push_line("close */").is_empty());
        assert!(sp.is_idle());
        assert_eq!(sp.finish(), None);
    }

    #[test]
    fn shell_commands_end_at_the_end_of_the_line() {
        let mut sp = Splitter::new();
        assert_eq!(texts(&sp.push_line("exit")), ["exit"]);
        assert_eq!(texts(&sp.push_line("  EXPAND ON")), ["EXPAND ON"]);
        assert_eq!(texts(&sp.push_line("DESC KEYSPACES;")), ["DESC KEYSPACES"]);
        assert_eq!(texts(&sp.push_line("SOURCE 'a;b.cql'")), ["SOURCE 'a;b.cql'"]);
        // CQL statements do not.
        assert!(sp.push_line("SELECT *").is_empty());
        assert_eq!(texts(&sp.push_line("FROM t;")), ["SELECT *\nFROM t"]);
    }

    #[test]
    fn empty_statements_are_skipped() {
        assert_eq!(texts(&split_script(";;  ;\nSELECT 1;;")), ["SELECT 1"]);
    }

    #[test]
    fn unterminated_last_statement_is_returned_at_the_end() {
        let s = split_script("SELECT 1;\n\nSELECT 2");
        assert_eq!(texts(&s), ["SELECT 1", "SELECT 2"]);
        assert_eq!(s[1].line, 3);
    }

    #[test]
    fn unterminated_string_keeps_the_statement_open() {
        let mut sp = Splitter::new();
        assert!(sp.push_line("INSERT INTO t (k, v) VALUES (1, 'multi;").is_empty());
        assert!(!sp.is_idle());
        let done = sp.push_line("line');");
        assert_eq!(texts(&done), ["INSERT INTO t (k, v) VALUES (1, 'multi;\nline')"]);
    }

    #[test]
    fn line_numbers_follow_consumed_statements() {
        let s = split_script("SELECT 1;\nSELECT\n2;\n\n-- c\nSELECT 3;");
        assert_eq!(s.iter().map(|s| s.line).collect::<Vec<_>>(), [1, 2, 6]);
    }

    #[test]
    fn first_word_skips_comments() {
        assert_eq!(first_word("/* x */ Describe tables"), "describe");
        assert_eq!(first_word("-- y\n  select 1"), "select");
        assert_eq!(first_word("?"), "?");
    }
}
