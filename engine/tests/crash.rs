//! Crash test: a child process (this test binary, re-executed) writes with `batch` or `group`
//! sync from several threads and prints every acknowledged key; the parent kills it with SIGKILL
//! at a random moment, reopens the engine, and checks that every acknowledged write is present
//! with its value and that no key appears that was never written. Small memtables make flushes
//! frequent, and size-tiered compaction with `min_threshold` 2 runs in the background all the
//! time, so kills land during flushes and compactions; after each restart no compaction
//! transaction log and no SSTable without its TOC may be left.
//!
//! Half the rounds write an lz4-compressed commit log (`commitlog_compression`); the parent
//! replays every round's log without it (either setting reads both formats).
//!
//! `SIBYL_CRASH_ROUNDS` sets the number of kills (default 50); `SIBYL_SEED` the seed.

#![allow(clippy::unwrap_used, reason = "a test should fail loudly on any error")]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sibyl_engine::{ColumnId, Engine, ScanCommand, ScanStart, Slice, SyncMode, TableId, Token};

const WRITERS: u64 = 4;
const TABLE: u128 = 99;

fn key(round: u64, writer: u64, i: u64) -> Bytes {
    Bytes::from(format!("r{round:03}-w{writer}-{i:07}"))
}

fn value(k: &[u8]) -> String {
    format!("value-of-{}", String::from_utf8_lossy(k))
}

fn crash_options(dir: &std::path::Path, group: bool, compressed: bool) -> sibyl_engine::EngineOptions {
    let mut o = options(dir);
    o.commitlog_compression = compressed;
    o.commitlog_segment_size_bytes = 256 * 1024;
    o.commitlog_sync =
        if group { SyncMode::Group { window: Duration::from_millis(2) } } else { SyncMode::Batch };
    o
}

/// The child writer. Ignored in normal runs: the parent re-executes this binary with
/// `--ignored` to run it.
#[test]
#[ignore = "the writer child of acknowledged_writes_survive_sigkill, run by it"]
fn crash_child() {
    let Ok(dir) = std::env::var("SIBYL_CRASH_CHILD_DIR") else { return };
    let round: u64 = std::env::var("SIBYL_CRASH_ROUND").unwrap().parse().unwrap();
    // Rounds cycle through batch/group sync, each with a plain and an lz4-compressed log (every
    // record here compresses: the value repeats the key).
    let group = round % 2 == 1;
    let compressed = round % 4 >= 2;
    let engine = std::sync::Arc::new(Engine::open(crash_options(dir.as_ref(), group, compressed)).unwrap());
    let t = TableId(uuid::Uuid::from_u128(TABLE));
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    println!("ready");
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            let engine = engine.clone();
            let out = out.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let k = key(round, w, i);
                    engine.apply(insert(t, k.clone(), 0, 1, &value(&k))).unwrap();
                    let mut o = out.lock().unwrap();
                    writeln!(o, "ack {w} {i}").unwrap();
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let rounds: u64 = std::env::var("SIBYL_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let seed: u64 =
        std::env::var("SIBYL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    println!("crash test: {rounds} kills, SIBYL_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let t = TableId(uuid::Uuid::from_u128(TABLE));
    {
        let engine = Engine::open(crash_options(dir.path(), false, false)).unwrap();
        let mut o = table_options(t);
        o.memtable_flush_size_bytes = 48 * 1024;
        o.compaction = [("class", "SizeTieredCompactionStrategy"), ("min_threshold", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        engine.create_table(o).unwrap();
    }
    // Per round and writer: the highest acknowledged index (None if nothing was acknowledged).
    let mut acked: HashMap<(u64, u64), Option<u64>> = HashMap::new();
    let exe = std::env::current_exe().unwrap();
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("SIBYL_CRASH_CHILD_DIR", dir.path())
            .env("SIBYL_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait until the child is writing, then let it run for a random while.
        let started = Instant::now();
        let mut writing = false;
        while !writing && started.elapsed() < Duration::from_secs(30) {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
                writing = line.starts_with("ack");
                record(&mut acked, round, &line);
            }
        }
        assert!(writing, "round {round}: the child never acknowledged a write");
        std::thread::sleep(Duration::from_millis(rng.random_range(5..250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        while let Ok(line) = rx.try_recv() {
            record(&mut acked, round, &line);
        }
        let (_, compressed_records) = commit_log_records(&dir.path().join("commitlog"));
        assert_eq!(compressed_records > 0, round % 4 >= 2, "round {round}: compressed records on disk");
        verify_round(dir.path(), t, round, &acked);
    }
    verify_everything(dir.path(), t, &acked);
}

fn record(acked: &mut HashMap<(u64, u64), Option<u64>>, round: u64, line: &str) {
    let mut parts = line.split_whitespace();
    if parts.next() != Some("ack") {
        return;
    }
    let w: u64 = parts.next().unwrap().parse().unwrap();
    let i: u64 = parts.next().unwrap().parse().unwrap();
    let e = acked.entry((round, w)).or_insert(None);
    *e = Some(e.map_or(i, |prev| prev.max(i)));
}

fn verify_round(dir: &std::path::Path, t: TableId, round: u64, acked: &HashMap<(u64, u64), Option<u64>>) {
    // No background compaction while the directory is inspected.
    let mut o = crash_options(dir, false, false);
    o.concurrent_compactors = 0;
    let engine = Engine::open(o).unwrap();
    if let Some(s) = engine.sstables(t).unwrap().first() {
        let table_dir = s.descriptor().dir.clone();
        let names: Vec<String> = std::fs::read_dir(&table_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with("txn-")),
            "round {round}: a transaction log survived open"
        );
        for (generation, has_toc) in sibyl_engine::sstable::Descriptor::scan(&table_dir).unwrap() {
            assert!(has_toc, "round {round}: SSTable {generation} without a TOC survived open");
        }
        let live = engine.sstables(t).unwrap().len();
        let on_disk = names.iter().filter(|n| n.ends_with("-TOC.txt")).count();
        assert_eq!(live, on_disk, "round {round}: SSTables on disk that are not live (orphans)");
    }
    for w in 0..WRITERS {
        let Some(Some(max)) = acked.get(&(round, w)) else { continue };
        for i in 0..=*max {
            let k = key(round, w, i);
            let got = visible(&engine, t, k.clone());
            assert_eq!(
                got.len(),
                1,
                "round {round}: acknowledged key {} is missing",
                String::from_utf8_lossy(&k)
            );
            assert_eq!(got[0].1, value(&k));
        }
    }
}

fn verify_everything(dir: &std::path::Path, t: TableId, acked: &HashMap<(u64, u64), Option<u64>>) {
    let engine = Engine::open(crash_options(dir, false, false)).unwrap();
    let cmd = ScanCommand {
        table: t,
        start: ScanStart::TokenInclusive(Token::MIN),
        end: Token::MAX,
        slices: vec![Slice::all()],
        partition_limit: usize::MAX,
        row_limit: usize::MAX,
        now_seconds: NOW,
    };
    let mut present = BTreeSet::new();
    for p in engine.scan(&cmd).unwrap() {
        let text = String::from_utf8(p.key.key.to_vec()).unwrap();
        let row = p.live_rows(NOW).next().expect("every written partition has its row");
        let v = &row.cells.iter().find(|c| c.column == ColumnId(1)).unwrap().value;
        assert_eq!(v.as_ref(), value(&p.key.key).as_bytes(), "wrong value for {text}");
        present.insert(text);
    }
    let mut expected_min = 0;
    for ((round, w), max) in acked {
        let Some(max) = max else { continue };
        expected_min += max + 1;
        for i in 0..=*max {
            assert!(present.contains(&String::from_utf8(key(*round, *w, i).to_vec()).unwrap()));
        }
    }
    // Anything beyond the acknowledged keys can only be the one write each writer had in flight.
    let max_in_flight = acked.len() as u64;
    assert!(present.len() as u64 >= expected_min);
    assert!(present.len() as u64 <= expected_min + max_in_flight, "keys appeared that were never written");
    for k in &present {
        let parts: Vec<&str> = k.split('-').collect();
        let round: u64 = parts[0][1..].parse().unwrap();
        let w: u64 = parts[1][1..].parse().unwrap();
        let i: u64 = parts[2].parse().unwrap();
        let in_flight_limit = match acked.get(&(round, w)).copied().flatten() {
            Some(m) => m + 1,
            None => 0,
        };
        assert!(i <= in_flight_limit, "{k} was never written");
    }
    println!(
        "crash test: {} acknowledged writes all present after {} kills",
        expected_min,
        acked.len() / WRITERS as usize
    );
}
