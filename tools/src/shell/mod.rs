//! `sibylsh`: a cqlsh-like shell for Sibyl (and any server speaking CQL native protocol v4).
//!
//! How a line of input becomes output:
//! 1. [`split::Splitter`] gathers lines until a statement is complete (a `;` outside quotes and
//!    comments, or the end of the line for shell commands such as `EXPAND ON`).
//! 2. [`commands::parse`] tells shell commands (`EXPAND`, `PAGING`, `CONSISTENCY`, `SOURCE`,
//!    `DESCRIBE`, ...) from CQL statements.
//! 3. [`Shell::execute`] runs it: CQL goes to the server through the `scylla` driver with the
//!    shell's consistency level and page size; DESCRIBE too, and its rows are printed as cqlsh
//!    prints them.
//! 4. Values are formatted by [`format`] and laid out by [`table`]; errors by [`errors`].
//!
//! [`run`] is the whole program (arguments, connection, `-e` / `-f` / piped input /
//! interactive mode) with its output going to the writers it is given, so tests run it without
//! spawning a process; `src/bin/sibylsh.rs` only passes it the real stdout and stderr.

pub mod commands;
pub mod errors;
pub mod format;
pub mod interactive;
pub mod split;
pub mod table;

use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::ExecutionError;
use scylla::response::query_result::{QueryResult, QueryRowsResult};
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::{Consistency, SerialConsistency, Statement as CqlStatement};
use scylla::value::{CqlValue, Row};

use self::commands::{Command, DescribeKind, PagingSetting, ShowWhat};
use self::format::FormatOptions;
use self::interactive::{LineReader, ReadLine};

/// The shell's version, shown by `SHOW VERSION` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Page size of `PAGING ON` (cqlsh's default).
pub const DEFAULT_PAGE_SIZE: i32 = 100;

/// How deeply `SOURCE` may nest (a file sourcing itself stops here).
pub const MAX_SOURCE_DEPTH: usize = 16;

/// Page size used to fetch DESCRIBE results and the whole result in `-e` / `-f` mode when
/// paging is off.
const FETCH_ALL_PAGE_SIZE: i32 = 5000;

/// Command-line arguments, as cqlsh takes them.
#[derive(Debug, Parser)]
#[command(name = "sibylsh", version, about = "Interactive CQL shell for Sibyl (cqlsh-compatible)")]
pub struct Args {
    /// Host of the node to connect to.
    #[arg(default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the node's CQL native protocol.
    #[arg(default_value_t = 9042)]
    pub port: u16,
    /// Keyspace to USE after connecting.
    #[arg(short = 'k', long)]
    pub keyspace: Option<String>,
    /// Execute the statement(s) and exit.
    #[arg(short = 'e', long, conflicts_with = "file")]
    pub execute: Option<String>,
    /// Execute the statements of a file and exit.
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
    /// Seconds to wait for the server to answer a request.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub request_timeout: u64,
    /// Seconds to wait for the connection to open.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub connect_timeout: u64,
    /// User name (password authentication).
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password (password authentication).
    #[arg(short = 'p', long)]
    pub password: Option<String>,
}

/// Settings that shell commands change.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `EXPAND ON`: one `@ Row N` block per row.
    pub expand: bool,
    /// `PAGING`: the page size, or `None` when paging is off.
    pub page_size: Option<i32>,
    /// `PAGING N` remembers N while paging is off.
    pub last_page_size: i32,
    /// `CONSISTENCY`.
    pub consistency: Consistency,
    /// `SERIAL CONSISTENCY`.
    pub serial_consistency: SerialConsistency,
    /// Digits of floats and doubles.
    pub format: FormatOptions,
    /// How long to wait for the server to answer.
    pub request_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            expand: false,
            page_size: Some(DEFAULT_PAGE_SIZE),
            last_page_size: DEFAULT_PAGE_SIZE,
            consistency: Consistency::One,
            serial_consistency: SerialConsistency::Serial,
            format: FormatOptions::default(),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Where the shell writes, and how it asks to continue between pages.
pub struct Io<'a> {
    /// Results.
    pub out: &'a mut dyn Write,
    /// Errors.
    pub err: &'a mut dyn Write,
    /// In interactive mode, reads the answer to the `---MORE---` prompt between pages; `None`
    /// fetches every page without asking.
    pub more: Option<&'a mut dyn LineReader>,
}

impl std::fmt::Debug for Io<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io").field("interactive", &self.more.is_some()).finish()
    }
}

impl Io<'_> {
    /// Writes a line of output. Output errors (a closed pipe) are ignored, like cqlsh does.
    pub fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    /// Writes a line to the error stream.
    pub fn error_line(&mut self, text: &str) {
        let _ = writeln!(self.err, "{text}");
    }

    fn flush(&mut self) {
        let _ = self.out.flush();
        let _ = self.err.flush();
    }
}

/// Whether to go on after a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next statement.
    Continue,
    /// `EXIT` / `QUIT`.
    Exit,
}

/// Where a statement came from, for error messages (`file:line:` in scripts, like cqlsh).
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The file name, `<stdin>` for `-e` and piped input, or `None` when typed interactively.
    pub source: Option<&'a str>,
    /// The line where the statement starts.
    pub line: usize,
}

/// A page of results, formatted.
#[derive(Debug, Default)]
struct Page {
    names: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// A connected shell.
#[derive(Debug)]
pub struct Shell {
    session: Session,
    host: String,
    port: u16,
    /// Settings changed by shell commands.
    pub settings: Settings,
    failed: bool,
    source_depth: usize,
}

impl Shell {
    /// Connects to `host:port`.
    pub async fn connect(args: &Args) -> Result<Shell, String> {
        let request_timeout = Duration::from_secs(args.request_timeout.max(1));
        let profile = ExecutionProfile::builder().request_timeout(Some(request_timeout)).build();
        let mut builder = SessionBuilder::new()
            .known_node(format!("{}:{}", args.host, args.port))
            .connection_timeout(Duration::from_secs(args.connect_timeout.max(1)))
            .default_execution_profile_handle(profile.into_handle());
        if let Some(user) = &args.username {
            builder = builder.user(user, args.password.clone().unwrap_or_default());
        }
        let session = builder.build().await.map_err(|e| {
            format!("Connection error: could not connect to {}:{}: {e}", args.host, args.port)
        })?;
        let settings = Settings { request_timeout, ..Settings::default() };
        Ok(Shell {
            session,
            host: args.host.clone(),
            port: args.port,
            settings,
            failed: false,
            source_depth: 0,
        })
    }

    /// The driver session.
    #[must_use]
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Whether any statement has failed so far.
    #[must_use]
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// The current keyspace (after `USE`).
    #[must_use]
    pub fn keyspace(&self) -> Option<String> {
        self.session.get_keyspace().map(|k| k.to_string())
    }

    /// The main prompt: `sibylsh> ` or `sibylsh:ks> `.
    #[must_use]
    pub fn prompt(&self) -> String {
        match self.keyspace() {
            Some(ks) => format!("sibylsh:{ks}> "),
            None => "sibylsh> ".to_string(),
        }
    }

    fn report(&mut self, origin: Origin<'_>, message: &str, io: &mut Io<'_>) {
        self.failed = true;
        match origin.source {
            Some(source) => io.error_line(&format!("{source}:{}:{message}", origin.line)),
            None => io.error_line(message),
        }
    }

    fn statement(&self, text: &str, page_size: Option<i32>) -> CqlStatement {
        let mut st = CqlStatement::new(text.to_string());
        st.set_consistency(self.settings.consistency);
        st.set_serial_consistency(Some(self.settings.serial_consistency));
        st.set_request_timeout(Some(self.settings.request_timeout));
        if let Some(n) = page_size {
            st.set_page_size(n);
        }
        st
    }

    /// Runs every statement of a script; stops early only at `EXIT`.
    pub async fn run_script(&mut self, text: &str, source: &str, io: &mut Io<'_>) -> Flow {
        for statement in split::split_script(text) {
            let origin = Origin { source: Some(source), line: statement.line };
            if self.execute(&statement.text, origin, io).await == Flow::Exit {
                return Flow::Exit;
            }
        }
        Flow::Continue
    }

    /// Executes one complete statement (a shell command or CQL).
    pub async fn execute(&mut self, text: &str, origin: Origin<'_>, io: &mut Io<'_>) -> Flow {
        let flow = match commands::parse(text) {
            Command::Exit => Flow::Exit,
            Command::Cql => {
                self.run_cql(text, origin, io).await;
                Flow::Continue
            }
            Command::Describe(kind) => {
                self.describe(text, kind, origin, io).await;
                Flow::Continue
            }
            Command::Source(file) => self.source(&file, origin, io).await,
            other => {
                self.settings_command(other, origin, io).await;
                Flow::Continue
            }
        };
        io.flush();
        flow
    }

    async fn settings_command(&mut self, command: Command, origin: Origin<'_>, io: &mut Io<'_>) {
        match command {
            Command::Help(topic) => io.line(&help(topic.as_deref())),
            Command::Clear => {
                if io.more.is_some() {
                    let _ = write!(io.out, "\x1b[2J\x1b[H");
                }
            }
            Command::Expand(None) => io.line(if self.settings.expand {
                "Expanded output is currently enabled. Use EXPAND OFF to disable"
            } else {
                "Expanded output is currently disabled. Use EXPAND ON to enable."
            }),
            Command::Expand(Some(true)) => {
                self.settings.expand = true;
                io.line("Now Expanded output is enabled");
            }
            Command::Expand(Some(false)) => {
                self.settings.expand = false;
                io.line("Disabled Expanded output.");
            }
            Command::Paging(None) => match self.settings.page_size {
                Some(n) => io.line(&format!(
                    "Query paging is currently enabled. Use PAGING OFF to disable\nPage size: {n}"
                )),
                None => io.line("Query paging is currently disabled. Use PAGING ON to enable."),
            },
            Command::Paging(Some(PagingSetting::On)) => {
                self.settings.page_size = Some(self.settings.last_page_size);
                io.line(&format!("Now Query paging is enabled\nPage size: {}", self.settings.last_page_size));
            }
            Command::Paging(Some(PagingSetting::Off)) => {
                self.settings.page_size = None;
                io.line("Disabled Query paging.");
            }
            Command::Paging(Some(PagingSetting::Size(n))) => {
                self.settings.page_size = Some(n);
                self.settings.last_page_size = n;
                io.line(&format!("Page size: {n}"));
            }
            Command::Consistency(None) => io.line(&format!(
                "Current consistency level is {}.",
                commands::consistency_name(self.settings.consistency)
            )),
            Command::Consistency(Some(c)) => {
                self.settings.consistency = c;
                io.line(&format!("Consistency level set to {}.", commands::consistency_name(c)));
            }
            Command::SerialConsistency(None) => io.line(&format!(
                "Current serial consistency level is {}.",
                commands::serial_consistency_name(self.settings.serial_consistency)
            )),
            Command::SerialConsistency(Some(c)) => {
                self.settings.serial_consistency = c;
                io.line(&format!(
                    "Serial consistency level set to {}.",
                    commands::serial_consistency_name(c)
                ));
            }
            Command::Tracing(None) => io.line("Tracing is currently disabled. Use TRACING ON to enable."),
            Command::Tracing(Some(false)) => io.line("Tracing is not enabled."),
            Command::Tracing(Some(true)) => io.error_line(
                "TRACING is not supported: Sibyl does not record query traces yet, so tracing stays off.",
            ),
            Command::Show(ShowWhat::Host) => {
                let cluster = self.local_info().await.map(|i| i.0).unwrap_or_else(|| "?".to_string());
                io.line(&format!("Connected to {cluster} at {}:{}", self.host, self.port));
            }
            Command::Show(ShowWhat::Version) => {
                let line = self.version_line().await;
                io.line(&line);
            }
            Command::Unsupported(name) => {
                self.report(origin, &format!("{name} is not supported by sibylsh"), io);
            }
            Command::Improper(message) => self.report(origin, &message, io),
            Command::Exit | Command::Cql | Command::Describe(_) | Command::Source(_) => {}
        }
    }

    async fn source(&mut self, file: &str, origin: Origin<'_>, io: &mut Io<'_>) -> Flow {
        let path = expand_home(file);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                self.report(origin, &format!("Could not open '{file}': {e}"), io);
                return Flow::Continue;
            }
        };
        if self.source_depth >= MAX_SOURCE_DEPTH {
            self.report(
                origin,
                &format!("SOURCE '{file}': files nest more than {MAX_SOURCE_DEPTH} deep"),
                io,
            );
            return Flow::Continue;
        }
        self.source_depth += 1;
        let name = path.display().to_string();
        // Like cqlsh, EXIT inside a sourced file ends only that file.
        let _ = Box::pin(self.run_script(&text, &name, io)).await;
        self.source_depth -= 1;
        Flow::Continue
    }

    /// Sends a CQL statement and prints its result.
    async fn run_cql(&mut self, text: &str, origin: Origin<'_>, io: &mut Io<'_>) {
        let first_word = split::first_word(text);
        let page_size =
            self.settings.page_size.or(if io.more.is_none() { Some(FETCH_ALL_PAGE_SIZE) } else { None });
        let statement = self.statement(text, page_size);
        let first = match page_size {
            Some(_) => self.session.query_single_page(statement.clone(), (), PagingState::start()).await,
            None => self
                .session
                .query_unpaged(statement.clone(), ())
                .await
                .map(|r| (r, PagingStateResponse::NoMorePages)),
        };
        let (result, mut paging) = match first {
            Ok(r) => r,
            Err(e) => return self.report(origin, &errors::format_execution_error(&e), io),
        };
        print_warnings(&result, io);
        if !result.is_rows() {
            return;
        }
        let mut page = match self.page(result) {
            Ok(p) => p,
            Err(e) => return self.report(origin, &e, io),
        };
        if first_word != "select" {
            // A conditional update answers with `[applied]`: shown without a row count.
            if !page.rows.is_empty() {
                io.line("");
                self.print_page(&page, 1, io);
            }
            return;
        }
        io.line("");
        let interactive = io.more.is_some();
        let mut printed = 0;
        let mut first_page = true;
        loop {
            if interactive && (first_page || !page.rows.is_empty()) {
                self.print_page(&page, printed + 1, io);
                printed += page.rows.len();
            }
            let state = match paging {
                PagingStateResponse::HasMorePages { state } => state,
                PagingStateResponse::NoMorePages => break,
            };
            if interactive && !page.rows.is_empty() {
                io.flush();
                let answer = io.more.as_mut().map(|r| r.read_line("---MORE---"));
                if !matches!(answer, Some(ReadLine::Line(_))) {
                    break;
                }
            }
            let next = match self.session.query_single_page(statement.clone(), (), state).await {
                Ok(r) => r,
                Err(e) => return self.report(origin, &errors::format_execution_error(&e), io),
            };
            paging = next.1;
            let next_page = match self.page(next.0) {
                Ok(p) => p,
                Err(e) => return self.report(origin, &e, io),
            };
            if interactive {
                page = next_page;
            } else {
                page.rows.extend(next_page.rows);
            }
            first_page = false;
        }
        if !interactive {
            self.print_page(&page, 1, io);
            printed = page.rows.len();
        }
        io.line(&format!("({printed} rows)"));
    }

    fn print_page(&self, page: &Page, first_row_number: usize, io: &mut Io<'_>) {
        if self.settings.expand && !page.rows.is_empty() {
            for line in table::render_vertical(&page.names, &page.rows, first_row_number) {
                io.line(&line);
            }
        } else {
            for line in table::render_table(&page.names, &page.rows) {
                io.line(&line);
            }
            io.line("");
        }
    }

    fn page(&self, result: QueryResult) -> Result<Page, String> {
        let rows_result = result.into_rows_result().map_err(|e| format!("Error: {e}"))?;
        let (names, rows) = raw_rows(&rows_result)?;
        let rows = rows
            .iter()
            .map(|r| {
                r.columns.iter().map(|v| format::format_cell(v.as_ref(), &self.settings.format)).collect()
            })
            .collect();
        Ok(Page { names, rows })
    }

    /// Runs a statement and fetches every page of its rows.
    async fn fetch_all(&self, text: &str) -> Result<(Vec<String>, Vec<Row>), ExecutionError> {
        let statement = self.statement(text, Some(FETCH_ALL_PAGE_SIZE));
        let mut state = PagingState::start();
        let mut names = Vec::new();
        let mut rows = Vec::new();
        loop {
            let (result, paging) = self.session.query_single_page(statement.clone(), (), state).await?;
            if let Ok(rows_result) = result.into_rows_result() {
                if let Ok((n, r)) = raw_rows(&rows_result) {
                    names = n;
                    rows.extend(r);
                }
            }
            match paging {
                PagingStateResponse::HasMorePages { state: s } => state = s,
                PagingStateResponse::NoMorePages => return Ok((names, rows)),
            }
        }
    }

    /// DESCRIBE is answered by the server (rows `keyspace_name, type, name, create_statement`);
    /// the shell lays the rows out like cqlsh.
    async fn describe(&mut self, text: &str, kind: DescribeKind, origin: Origin<'_>, io: &mut Io<'_>) {
        let (names, rows) = match self.fetch_all(text).await {
            Ok(r) => r,
            Err(e) => return self.report(origin, &errors::message_only(&e), io),
        };
        let column = |name: &str| names.iter().position(|n| n == name);
        let cell = |row: &Row, index: Option<usize>| -> String {
            index.and_then(|i| row.columns.get(i)).and_then(Option::as_ref).map(text_of).unwrap_or_default()
        };
        match kind {
            DescribeKind::Keyspaces => {
                let name = column("name");
                let list: Vec<String> = rows.iter().map(|r| cell(r, name)).collect();
                io.line("");
                for line in table::columnize(&list, 80) {
                    io.line(&line);
                }
                io.line("");
            }
            DescribeKind::List => {
                let (ks_col, name_col) = (column("keyspace_name"), column("name"));
                let mut groups: Vec<(String, Vec<String>)> = Vec::new();
                for row in &rows {
                    let ks = cell(row, ks_col);
                    match groups.last_mut() {
                        Some((k, names)) if *k == ks => names.push(cell(row, name_col)),
                        _ => groups.push((ks, vec![cell(row, name_col)])),
                    }
                }
                let show_keyspace = self.keyspace().is_none();
                for (ks, list) in &groups {
                    io.line("");
                    if show_keyspace {
                        io.line(&format!("Keyspace {ks}"));
                        io.line(&format!("---------{}", "-".repeat(ks.chars().count())));
                    }
                    for line in table::columnize(list, 80) {
                        io.line(&line);
                    }
                }
                io.line("");
            }
            DescribeKind::Cluster => {
                for row in &rows {
                    io.line("");
                    io.line(&format!("Cluster: {}", cell(row, column("cluster"))));
                    io.line(&format!("Partitioner: {}", cell(row, column("partitioner"))));
                    io.line(&format!("Snitch: {}", cell(row, column("snitch"))));
                    io.line("");
                }
            }
            DescribeKind::Element => {
                let create = column("create_statement");
                for row in &rows {
                    io.line("");
                    io.line(&cell(row, create));
                }
                if !rows.is_empty() {
                    io.line("");
                }
            }
        }
    }

    /// `(cluster_name, release_version, cql_version)` from `system.local`.
    async fn local_info(&self) -> Option<(String, String, String)> {
        let (names, rows) = self
            .fetch_all(
                "SELECT cluster_name, release_version, cql_version FROM system.local WHERE key = 'local'",
            )
            .await
            .ok()?;
        let row = rows.first()?;
        let get = |name: &str| {
            names
                .iter()
                .position(|n| n == name)
                .and_then(|i| row.columns.get(i))
                .and_then(Option::as_ref)
                .map(text_of)
                .unwrap_or_else(|| "?".to_string())
        };
        Some((get("cluster_name"), get("release_version"), get("cql_version")))
    }

    async fn version_line(&self) -> String {
        let (_, release, cql) =
            self.local_info().await.unwrap_or_else(|| ("?".into(), "?".into(), "?".into()));
        format!("[sibylsh {VERSION} | Cassandra {release} | CQL spec {cql} | Native protocol v4]")
    }

    /// The banner of interactive mode.
    pub async fn banner(&self) -> String {
        let cluster = self.local_info().await.map(|i| i.0).unwrap_or_else(|| "?".to_string());
        format!(
            "Connected to {cluster} at {}:{}\n{}\nUse HELP for help.",
            self.host,
            self.port,
            self.version_line().await
        )
    }
}

fn raw_rows(result: &QueryRowsResult) -> Result<(Vec<String>, Vec<Row>), String> {
    let names = result.column_specs().iter().map(|c| c.name().to_string()).collect();
    let rows = result
        .rows::<Row>()
        .map_err(|e| format!("Error: cannot read the result: {e}"))?
        .collect::<Result<Vec<Row>, _>>()
        .map_err(|e| format!("Error: cannot read the result: {e}"))?;
    Ok((names, rows))
}

fn text_of(value: &CqlValue) -> String {
    match value {
        CqlValue::Text(s) | CqlValue::Ascii(s) => s.clone(),
        other => format::format_cell(Some(other), &FormatOptions::default()),
    }
}

fn print_warnings(result: &QueryResult, io: &mut Io<'_>) {
    let warnings: Vec<&str> = result.warnings().collect();
    if warnings.is_empty() {
        return;
    }
    io.line("");
    io.line("Warnings :");
    for w in warnings {
        io.line(w);
        io.line("");
    }
}

fn expand_home(path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(path)
}

/// Quotes a name for CQL unless it is a plain lower-case identifier.
#[must_use]
pub fn protect_name(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Help text for `HELP` and `HELP topic`.
#[must_use]
pub fn help(topic: Option<&str>) -> String {
    let topic = topic.map(|t| t.trim().to_ascii_lowercase());
    let text = match topic.as_deref() {
        None => {
            return "\nDocumented shell commands:\n===========================\n\
                 CLEAR  CONSISTENCY  DESC  DESCRIBE  EXIT  EXPAND  HELP  PAGING  QUIT  SERIAL  SHOW  SOURCE  TRACING\n\n\
                 CQL statements (SELECT, INSERT, UPDATE, DELETE, BATCH, CREATE, ALTER, DROP, TRUNCATE, USE, ...)\n\
                 are sent to the server; end them with ';'. HELP <command> describes a shell command.\n"
                .to_string()
        }
        Some("clear" | "cls") => "CLEAR: clears the screen.",
        Some("consistency") => {
            "CONSISTENCY [level]: shows or sets the consistency level of statements (default ONE).\n\
             Levels: ANY, ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, SERIAL, LOCAL_SERIAL, LOCAL_ONE."
        }
        Some("serial" | "serial consistency") => {
            "SERIAL CONSISTENCY [SERIAL|LOCAL_SERIAL]: shows or sets the serial consistency of conditional updates."
        }
        Some("desc" | "describe") => {
            "DESCRIBE KEYSPACES | KEYSPACE [ks] | TABLES | TABLE [ks.]t | CLUSTER | [FULL] SCHEMA | <name>:\n\
             asks the server for the schema and prints it as CQL."
        }
        Some("exit" | "quit") => "EXIT / QUIT: leaves the shell.",
        Some("expand") => "EXPAND [ON|OFF]: shows rows vertically, one `@ Row N` block per row.",
        Some("paging") => {
            "PAGING [ON|OFF|N]: fetches results N rows at a time (default 100) and pauses with ---MORE--- \
             between pages in interactive mode."
        }
        Some("show") => "SHOW VERSION | SHOW HOST: shows the server's version or where the shell is connected.",
        Some("source") => "SOURCE 'file': runs the statements of a file.",
        Some("tracing") => "TRACING [ON|OFF]: request tracing is not supported by Sibyl yet.",
        Some("help") => "HELP [command]: lists the shell commands or describes one.",
        Some(other) => return format!("No help on '{other}'."),
    };
    text.to_string()
}

/// Runs the program with `args` (including the program name), writing to `out` and `err`;
/// returns the exit status: 0, 1 if a statement failed (in `-e` / `-f` / piped mode) or the
/// connection failed, 2 for bad arguments.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let text = e.render().to_string();
            return if e.use_stderr() {
                let _ = write!(err, "{text}");
                2
            } else {
                let _ = write!(out, "{text}");
                0
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "cannot start the runtime: {e}");
            return 1;
        }
    };
    // Read the script before connecting, so a missing file is reported without a server.
    let script = match (&args.execute, &args.file) {
        (Some(text), _) => Some((text.clone(), "<stdin>".to_string())),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => Some((text, path.display().to_string())),
            Err(e) => {
                let _ = writeln!(err, "Could not open '{}': {e}", path.display());
                return 1;
            }
        },
        (None, None) if !std::io::stdin().is_terminal() => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                let _ = writeln!(err, "cannot read standard input: {e}");
                return 1;
            }
            Some((text, "<stdin>".to_string()))
        }
        (None, None) => None,
    };
    runtime.block_on(async {
        let mut shell = match Shell::connect(&args).await {
            Ok(s) => s,
            Err(message) => {
                let _ = writeln!(err, "{message}");
                return 1;
            }
        };
        if let Some(ks) = &args.keyspace {
            let mut io = Io { out: &mut *out, err: &mut *err, more: None };
            let use_ks = format!("USE {}", protect_name(ks));
            shell.execute(&use_ks, Origin { source: None, line: 1 }, &mut io).await;
            if shell.has_failed() {
                return 1;
            }
        }
        match script {
            Some((text, source)) => {
                let mut io = Io { out: &mut *out, err: &mut *err, more: None };
                shell.run_script(&text, &source, &mut io).await;
                i32::from(shell.has_failed())
            }
            None => {
                let mut reader = interactive::RustylineReader::new();
                interactive::run_interactive(&mut shell, &mut reader, out, err).await
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_only_when_needed() {
        assert_eq!(protect_name("ks1"), "ks1");
        assert_eq!(protect_name("MyKs"), "\"MyKs\"");
        assert_eq!(protect_name("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn help_lists_commands_and_topics() {
        assert!(help(None).contains("CONSISTENCY"));
        assert!(help(Some("paging")).contains("---MORE---"));
        assert_eq!(help(Some("nope")), "No help on 'nope'.");
    }

    #[test]
    fn arguments_like_cqlsh() {
        let a = Args::try_parse_from(["sibylsh", "10.0.0.1", "9043", "-k", "ks", "-e", "SELECT 1"]).unwrap();
        assert_eq!((a.host.as_str(), a.port, a.keyspace.as_deref()), ("10.0.0.1", 9043, Some("ks")));
        assert_eq!(a.execute.as_deref(), Some("SELECT 1"));
        let d = Args::try_parse_from(["sibylsh"]).unwrap();
        assert_eq!((d.host.as_str(), d.port, d.request_timeout), ("127.0.0.1", 9042, 10));
        assert!(Args::try_parse_from(["sibylsh", "-e", "x", "-f", "y"]).is_err());
    }

    #[test]
    fn bad_arguments_exit_with_status_2() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run(["sibylsh", "--bogus"], &mut out, &mut err), 2);
        assert!(String::from_utf8_lossy(&err).contains("--bogus"));
    }

    #[test]
    fn missing_script_file_fails_before_connecting() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run(["sibylsh", "-f", "/nonexistent/x.cql"], &mut out, &mut err), 1);
        assert!(String::from_utf8_lossy(&err).contains("Could not open '/nonexistent/x.cql'"));
    }
}
