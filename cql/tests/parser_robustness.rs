//! Robustness: untrusted input never panics, never overflows the stack and is parsed quickly.
//!
//! (a) every prefix of every golden statement, (b) random byte mutations of golden statements
//! and files (seed printed; `SIBYL_SEED=<n>` replays a run), (c) pathologically deep input.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sibyl_cql::parser::{parse_prepared, parse_statements, parse_type, ParseError};

/// Generous bound for one parse (debug build on a loaded 2-core machine).
const MAX_PARSE_TIME: Duration = Duration::from_secs(2);

/// The error position must lie within the input.
fn check_position(input: &str, e: &ParseError) {
    let lines: Vec<&str> = input.split('\n').collect();
    let line = usize::try_from(e.line).expect("line fits usize");
    assert!(line >= 1 && line <= lines.len(), "line {} out of range for {input:?}: {e}", e.line);
    let len = lines.get(line - 1).map_or(0, |l| l.chars().count());
    let column = usize::try_from(e.column).expect("column fits usize");
    assert!(column <= len, "column {} out of range for {input:?}: {e}", e.column);
}

/// Parses `input` every way, failing with the input if anything panics or is too slow.
fn exercise(input: &str, context: &str) {
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        match parse_prepared(input) {
            Ok(p) => assert_eq!(p.statement.bind_markers(), p.bind_markers, "marker walk disagrees"),
            Err(e) => check_position(input, &e),
        }
        if let Err(e) = parse_statements(input) {
            check_position(input, &e);
        }
        if let Err(e) = parse_type(input) {
            check_position(input, &e);
        }
    }));
    if let Err(panic) = result {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{context}: parsing panicked ({msg}) on input {input:?}");
    }
    let took = started.elapsed();
    assert!(took < MAX_PARSE_TIME, "{context}: parsing took {took:?} on input {input:?}");
}

#[test]
fn every_prefix_of_every_golden_statement() {
    let statements = common::all_golden_statements();
    assert!(statements.len() > 200, "golden statements missing");
    let mut count = 0;
    for stmt in &statements {
        for (i, _) in stmt.char_indices().chain(std::iter::once((stmt.len(), ' '))) {
            if let Some(prefix) = stmt.get(..i) {
                exercise(prefix, "prefix");
                count += 1;
            }
        }
    }
    println!("parsed {count} prefixes of {} statements", statements.len());
}

/// Bytes worth inserting: CQL punctuation and token starts.
const INTERESTING: &[u8] = b"()[]{}<>,;.:?=!+-*/%'\"$0123456789eExXpPT\xC2\xB5 \n\t\\";

fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    let rounds = rng.random_range(1..=4);
    for _ in 0..rounds {
        let len = bytes.len();
        let at = if len == 0 { 0 } else { rng.random_range(0..len) };
        match rng.random_range(0..7) {
            0 if len > 0 => bytes[at] = rng.random(),
            1 => bytes.insert(at, INTERESTING[rng.random_range(0..INTERESTING.len())]),
            2 if len > 0 => {
                bytes.remove(at);
            }
            3 if len > 0 => {
                // Duplicate a slice.
                let end = rng.random_range(at..=len.min(at + 20));
                let chunk: Vec<u8> = bytes[at..end].to_vec();
                let to = rng.random_range(0..=len);
                bytes.splice(to..to, chunk);
            }
            4 if len > 0 => bytes.truncate(at),
            5 if len > 1 => {
                let other = rng.random_range(0..len);
                bytes.swap(at, other);
            }
            _ => bytes.insert(at, rng.random_range(0x20..0x7f)),
        }
    }
    bytes
}

#[test]
fn random_mutations_of_golden_statements() {
    let seed: u64 = match std::env::var("SIBYL_SEED") {
        Ok(s) => s.parse().expect("SIBYL_SEED must be an integer"),
        Err(_) => rand::rng().random(),
    };
    println!("robustness seed: {seed} (replay with SIBYL_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let statements = common::all_golden_statements();
    let files: Vec<String> = common::golden_files()
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("readable golden file"))
        .collect();
    for i in 0..10_000 {
        let source = if i % 50 == 0 {
            &files[rng.random_range(0..files.len())]
        } else {
            &statements[rng.random_range(0..statements.len())]
        };
        let mutated = mutate(&mut rng, source.as_bytes());
        let text = String::from_utf8_lossy(&mutated);
        exercise(&text, &format!("seed {seed}, mutation {i}"));
    }
}

#[test]
fn deep_nesting_is_rejected_quickly() {
    const N: usize = 100_000;
    let cases: Vec<(&str, String)> = vec![
        ("parens", "(".repeat(N)),
        ("brackets", "[".repeat(N)),
        ("braces", "{".repeat(N)),
        ("term parens", format!("SELECT * FROM t WHERE a = {}", "(".repeat(N))),
        ("term brackets", format!("INSERT INTO t (a) VALUES ({}", "[".repeat(N))),
        ("term braces", format!("INSERT INTO t (a) VALUES ({}", "{".repeat(N))),
        ("udt", format!("INSERT INTO t (a) VALUES ({}", "{a:".repeat(N))),
        ("map keys", format!("INSERT INTO t (a) VALUES ({}", "{[".repeat(N))),
        ("casts", format!("INSERT INTO t (a) VALUES ({}", "(int)".repeat(N))),
        ("cast types", format!("INSERT INTO t (a) VALUES (({}", "frozen<".repeat(N))),
        ("functions", format!("SELECT * FROM t WHERE a = {}", "f(".repeat(N))),
        ("selectors", format!("SELECT {} FROM t", "f(".repeat(N))),
        ("cast selectors", format!("SELECT {} FROM t", "CAST(".repeat(N))),
        ("selector modifiers", format!("SELECT a{} FROM t", "[".repeat(N))),
        ("relations", format!("SELECT * FROM t WHERE {}", "(".repeat(N))),
        ("types", format!("CREATE TABLE t (a {}", "list<".repeat(N))),
        ("tuple types", format!("CREATE TABLE t (a {}", "tuple<".repeat(N))),
        ("frozen", "frozen<".repeat(N)),
        ("balanced", format!("SELECT * FROM t WHERE a = {}1{}", "(".repeat(N), ")".repeat(N))),
        ("minus signs", format!("SELECT * FROM t WHERE a = {}1", "-".repeat(N))),
        ("markers", format!("SELECT * FROM t WHERE a IN ({})", "?,".repeat(N))),
        ("many relations", format!("SELECT * FROM t WHERE {}a = 1", "a = 1 AND ".repeat(N / 10))),
        ("long string", format!("SELECT * FROM t WHERE a = '{}'", "x".repeat(N * 10))),
        ("unterminated", format!("SELECT * FROM t WHERE a = '{}", "x".repeat(N * 10))),
        ("many lines", format!("SELECT *{} FROM t WHERE", "\n".repeat(N))),
        ("long line errors", format!("SELECT * FROM t WHERE a IN ({}!", "1,".repeat(N))),
        ("batch", format!("BEGIN BATCH {} APPLY BATCH", "INSERT INTO t (a) VALUES (1);".repeat(N / 100))),
        ("statements", "SELECT * FROM t;".repeat(N / 10)),
        ("semicolons", ";".repeat(N)),
    ];
    // A small stack proves the depth limit, not the default thread stack, keeps us safe.
    let handle = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            for (name, input) in &cases {
                let started = Instant::now();
                exercise(input, name);
                if std::env::var_os("SIBYL_TIMING").is_some() {
                    println!("{name}: {:?}", started.elapsed());
                }
            }
        })
        .expect("spawn");
    handle.join().expect("deep nesting cases did not panic");
}
