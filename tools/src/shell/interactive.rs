//! Interactive mode: prompts, line editing and history (`~/.sibylsh_history`).
//!
//! The loop reads through the [`LineReader`] trait, so tests drive it with scripted input;
//! [`RustylineReader`] is the terminal implementation.

use std::io::Write;
use std::path::PathBuf;

use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;

use super::split::Splitter;
use super::{Flow, Io, Origin, Shell};

/// The prompt shown while a statement continues over several lines.
pub const CONTINUATION_PROMPT: &str = "   ... ";

/// History file name in the home directory.
pub const HISTORY_FILE: &str = ".sibylsh_history";

/// What reading a line produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadLine {
    /// A line, without its terminator.
    Line(String),
    /// Ctrl-C.
    Interrupted,
    /// Ctrl-D or the end of the input.
    Eof,
}

/// A source of input lines.
pub trait LineReader {
    /// Shows `prompt` and reads a line.
    fn read_line(&mut self, prompt: &str) -> ReadLine;
    /// Records a line in the history.
    fn add_history(&mut self, _line: &str) {}
}

/// Reads lines from the terminal with rustyline; keeps the history in `~/.sibylsh_history`.
pub struct RustylineReader {
    editor: Option<DefaultEditor>,
    history: Option<PathBuf>,
}

impl std::fmt::Debug for RustylineReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustylineReader").field("history", &self.history).finish()
    }
}

impl RustylineReader {
    /// An editor with the history loaded (an editor that cannot start falls back to plain
    /// reading of standard input).
    #[must_use]
    pub fn new() -> RustylineReader {
        let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(HISTORY_FILE));
        let mut editor = DefaultEditor::new().ok();
        if let (Some(editor), Some(path)) = (editor.as_mut(), history.as_ref()) {
            // A missing history file is normal on the first run.
            let _ = editor.load_history(path);
        }
        RustylineReader { editor, history }
    }
}

impl Default for RustylineReader {
    fn default() -> Self {
        RustylineReader::new()
    }
}

impl LineReader for RustylineReader {
    fn read_line(&mut self, prompt: &str) -> ReadLine {
        let Some(editor) = self.editor.as_mut() else {
            print!("{prompt}");
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            return match std::io::stdin().read_line(&mut line) {
                Ok(0) | Err(_) => ReadLine::Eof,
                Ok(_) => ReadLine::Line(line.trim_end_matches(['\n', '\r']).to_string()),
            };
        };
        match editor.readline(prompt) {
            Ok(line) => ReadLine::Line(line),
            Err(ReadlineError::Interrupted) => ReadLine::Interrupted,
            Err(_) => ReadLine::Eof,
        }
    }

    fn add_history(&mut self, line: &str) {
        if let Some(editor) = self.editor.as_mut() {
            let _ = editor.add_history_entry(line);
        }
    }
}

impl Drop for RustylineReader {
    fn drop(&mut self) {
        if let (Some(editor), Some(path)) = (self.editor.as_mut(), self.history.as_ref()) {
            let _ = editor.save_history(path);
        }
    }
}

/// The interactive loop: prints the banner, then reads statements until `EXIT` or Ctrl-D.
/// Ctrl-C abandons the statement being typed. Returns the exit status (0).
pub async fn run_interactive(
    shell: &mut Shell,
    reader: &mut dyn LineReader,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let banner = shell.banner().await;
    let _ = writeln!(out, "{banner}");
    interactive_loop(shell, reader, out, err).await;
    0
}

/// The loop of [`run_interactive`] without the banner.
pub async fn interactive_loop(
    shell: &mut Shell,
    reader: &mut dyn LineReader,
    out: &mut dyn Write,
    err: &mut dyn Write,
) {
    let mut splitter = Splitter::new();
    loop {
        let prompt = if splitter.is_idle() { shell.prompt() } else { CONTINUATION_PROMPT.to_string() };
        let _ = out.flush();
        let line = match reader.read_line(&prompt) {
            ReadLine::Line(line) => line,
            ReadLine::Interrupted => {
                splitter.clear();
                continue;
            }
            ReadLine::Eof => {
                let _ = writeln!(out);
                return;
            }
        };
        if !line.trim().is_empty() {
            reader.add_history(&line);
        }
        for statement in splitter.push_line(&line) {
            let mut io = Io { out: &mut *out, err: &mut *err, more: Some(&mut *reader) };
            let origin = Origin { source: None, line: statement.line };
            if shell.execute(&statement.text, origin, &mut io).await == Flow::Exit {
                return;
            }
        }
    }
}
