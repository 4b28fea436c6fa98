//! Golden script tests of the executor through its public API.
//!
//! Each `tests/golden/executor/*.cql` file is a script run against a fresh node (engine in a
//! temporary directory, a manual clock). Statements end with a `;` at the end of a line. Lines
//! starting with `@` are directives:
//!
//! - `@advance N`: move the clock N seconds forward (TTL expiry without sleeping);
//! - `@page N`: run the next statement with page size N, following the paging state to the end
//!   and printing each page;
//! - `@restart`: close the engine and reopen engine and executor on the same directories.
//!
//! The rendering of every statement and its result is compared with the `.out` file;
//! `SIBYL_BLESS=1` rewrites it.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sibyl_cql::executor::{QueryOptions, QueryResult};
use sibyl_cql::types;
use sibyl_cql::{Executor, LocalNode, ReadLimits};
use sibyl_engine::{Engine, EngineOptions, ManualClock, SyncMode};

const START_MICROS: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

struct Node {
    dir: PathBuf,
    clock: Arc<ManualClock>,
    exec: Option<Executor>,
}

impl Node {
    fn open(dir: &Path, clock: Arc<ManualClock>) -> Executor {
        let mut o = EngineOptions::new(dir);
        o.commitlog_sync = SyncMode::Batch;
        o.commitlog_segment_size_bytes = 1 << 20;
        let engine = Arc::new(Engine::open(o).unwrap());
        let local = LocalNode {
            cluster_name: "Golden Cluster".into(),
            host_id: uuid::Uuid::from_u128(1),
            data_center: "datacenter1".into(),
            rack: "rack1".into(),
            listen_address: "127.0.0.1".parse().unwrap(),
            rpc_address: "127.0.0.1".parse().unwrap(),
            native_port: 9042,
            storage_port: 7000,
            tokens: vec![0],
        };
        let limits = ReadLimits { tombstone_warn_threshold: 10, tombstone_failure_threshold: 50 };
        Executor::open(engine, clock, local, limits).unwrap()
    }

    fn restart(&mut self) {
        if let Some(e) = self.exec.take() {
            e.engine().close().unwrap();
        }
        self.exec = Some(Node::open(&self.dir, Arc::clone(&self.clock)));
    }
}

fn render(out: &mut String, result: Result<QueryResult, sibyl_cql::Error>) -> Option<bytes::Bytes> {
    match result {
        Err(e) => {
            let kind = format!("{e:?}");
            let kind = kind.split(['(', ' ', '{']).next().unwrap_or("?").to_string();
            let _ = writeln!(out, "ERROR {kind}: {e}");
            None
        }
        Ok(QueryResult::Void) => {
            out.push_str("OK\n");
            None
        }
        Ok(QueryResult::SetKeyspace(k)) => {
            let _ = writeln!(out, "USE {k}");
            None
        }
        Ok(QueryResult::SchemaChange(c)) => {
            let _ = writeln!(
                out,
                "SCHEMA {:?} {}{}",
                c.change,
                c.keyspace,
                c.table.map(|t| format!(".{t}")).unwrap_or_default()
            );
            None
        }
        Ok(QueryResult::Rows(rs)) => {
            let header: Vec<String> = rs.columns.iter().map(|c| format!("{} {}", c.name, c.ty)).collect();
            let _ = writeln!(out, "| {} |", header.join(" | "));
            for row in &rs.rows {
                let cells: Vec<String> = row
                    .iter()
                    .zip(&rs.columns)
                    .map(|(v, c)| match v {
                        None => "null".to_string(),
                        Some(b) => match types::decode(&c.ty, b) {
                            Ok(v) => types::to_display(&v),
                            Err(e) => format!("<undecodable: {e}>"),
                        },
                    })
                    .collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
            let _ = writeln!(
                out,
                "({} rows{})",
                rs.rows.len(),
                if rs.paging_state.is_some() { ", more pages" } else { "" }
            );
            rs.paging_state
        }
    }
}

fn run_script(path: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START_MICROS));
    let mut node = Node { dir: dir.path().to_path_buf(), clock: Arc::clone(&clock), exec: None };
    node.restart();
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    let mut keyspace: Option<String> = None;
    let mut page: Option<usize> = None;
    let mut stmt = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if stmt.is_empty() {
            if let Some(directive) = trimmed.strip_prefix('@') {
                let _ = writeln!(out, "@{directive}");
                let mut parts = directive.split_whitespace();
                match (parts.next(), parts.next()) {
                    (Some("advance"), Some(n)) => clock.advance_seconds(n.parse().unwrap()),
                    (Some("page"), Some(n)) => page = Some(n.parse().unwrap()),
                    // The clock does not move: schema changes after the restart must still be
                    // newer than those before it.
                    (Some("restart"), None) => node.restart(),
                    _ => panic!("unknown directive {directive}"),
                }
                continue;
            }
            if trimmed.is_empty() || trimmed.starts_with("--") {
                continue;
            }
        }
        stmt.push_str(line);
        stmt.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let text = std::mem::take(&mut stmt);
        for l in text.trim_end().lines() {
            let _ = writeln!(out, "> {l}");
        }
        let exec = node.exec.as_ref().unwrap();
        let mut options = QueryOptions { page_size: page.take(), ..QueryOptions::default() };
        let paged = options.page_size.is_some();
        let mut pages = 0;
        loop {
            let result = exec.query(keyspace.as_deref(), &text, &options);
            if let Ok(QueryResult::SetKeyspace(k)) = &result {
                keyspace = Some(k.clone());
            }
            let state = render(&mut out, result);
            pages += 1;
            match state {
                Some(s) if paged && pages < 1000 => {
                    options.paging_state = Some(s);
                    out.push_str("-- next page\n");
                }
                _ => break,
            }
        }
        out.push('\n');
    }
    assert!(stmt.trim().is_empty(), "{}: unterminated statement {stmt:?}", path.display());
    if let Some(e) = node.exec.take() {
        e.engine().close().unwrap();
    }
    out
}

#[test]
fn executor_scripts_match_their_golden_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/executor");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cql"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let bless = std::env::var("SIBYL_BLESS").is_ok();
    let mut failures = Vec::new();
    for f in files {
        let got = run_script(&f);
        let golden = f.with_extension("out");
        if bless {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            let first = got.lines().zip(want.lines()).position(|(a, b)| a != b).unwrap_or(0);
            let context: Vec<&str> = got.lines().skip(first.saturating_sub(3)).take(12).collect();
            failures.push(format!(
                "{} differs from {} near line {}:\n{}",
                f.display(),
                golden.display(),
                first + 1,
                context.join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(rerun with SIBYL_BLESS=1 after checking the new output)",
        failures.join("\n\n")
    );
}
