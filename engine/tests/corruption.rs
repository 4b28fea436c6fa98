//! Corruption tables: truncate at every offset and flip bytes across a small commit log segment
//! and a small SSTable. Every case must be detected (an error naming the file and an offset) or
//! harmless (only data that was really written is returned); never a panic, never wrong data.

#![allow(clippy::unwrap_used, reason = "a test should fail loudly on any error")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use sibyl_engine::commitlog::replay::{replay, RecordError};
use sibyl_engine::commitlog::segment::list_segments;
use sibyl_engine::read::{read_partition, Sources};
use sibyl_engine::sstable::{Component, Descriptor, SsTable};
use sibyl_engine::{ColumnId, DecoratedKey, Engine, Error, Generation, Mutation, Slice, TableId};

/// Written values: partition key -> value of column 1 at clustering 0.
type Expected = BTreeMap<Bytes, String>;

fn writes(n: u64) -> Vec<(Bytes, String)> {
    (0..n).map(|i| (pk(i), format!("value-{i}-{}", "x".repeat((i % 7) as usize * 9)))).collect()
}

fn segment_with_records(dir: &Path, n: u64) -> (PathBuf, Vec<(Bytes, String)>, usize) {
    let (engine, t) = open_with_table(dir);
    let w = writes(n);
    for (k, v) in &w {
        engine.apply(insert(t, k.clone(), 0, 1, v)).unwrap();
    }
    engine.close().unwrap();
    drop(engine);
    // The oldest segment holds the records; a newer one is the empty spare made ahead of time.
    let (_, seg) = list_segments(&dir.join("commitlog")).unwrap().remove(0);
    let data = std::fs::read(&seg).unwrap();
    let end = data.iter().rposition(|b| *b != 0).unwrap() + 1;
    (seg, w, end)
}

/// Replays `segment_bytes` as the only segment; returns the decoded (key, value) records or the
/// error.
fn replay_bytes(segment_bytes: &[u8], name: &str) -> Result<Vec<(Bytes, String)>, Error> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), segment_bytes).unwrap();
    let mut out = Vec::new();
    replay(dir.path(), false, |_, mutations| {
        let [m]: [Mutation; 1] =
            mutations.try_into().map_err(|_| RecordError::Undecodable("not one mutation".into()))?;
        let v = m.update.rows[0].cells.iter().find(|c| c.column == ColumnId(1)).unwrap().value.clone();
        out.push((m.update.key, String::from_utf8(v.to_vec()).unwrap()));
        Ok(())
    })?;
    Ok(out)
}

fn assert_names(err: &Error, file: &str) {
    match err {
        Error::Corruption { file: f, .. } => {
            assert!(f.to_string_lossy().contains(file), "error names {f:?}, expected {file}")
        }
        other => panic!("expected a corruption error naming {file}, got {other}"),
    }
}

#[test]
fn truncated_commit_log_replays_a_prefix_of_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, written, end) = segment_with_records(dir.path(), 12);
    let data = std::fs::read(&seg).unwrap();
    let name = seg.file_name().unwrap().to_str().unwrap().to_string();
    for len in 0..=end {
        let got = replay_bytes(&data[..len], &name).unwrap_or_else(|e| panic!("truncation at {len}: {e}"));
        assert_eq!(got[..], written[..got.len()], "truncation at {len} must give a prefix");
    }
    assert_eq!(replay_bytes(&data[..end], &name).unwrap(), written);
}

#[test]
fn flipped_commit_log_bytes_are_detected_or_cost_only_the_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, written, end) = segment_with_records(dir.path(), 12);
    let data = std::fs::read(&seg).unwrap();
    let name = seg.file_name().unwrap().to_str().unwrap().to_string();
    let mut detected = 0;
    for offset in 0..end {
        for mask in [0xffu8, 0x01] {
            let mut bad = data.clone();
            bad[offset] ^= mask;
            match replay_bytes(&bad, &name) {
                Ok(got) => {
                    // Only a damaged last record may be dropped (indistinguishable from a torn write).
                    assert!(got.len() >= written.len() - 1, "flip at {offset} lost more than the tail");
                    assert_eq!(got[..], written[..got.len()], "flip at {offset} returned wrong data");
                }
                Err(e) => {
                    assert_names(&e, &name);
                    detected += 1;
                }
            }
        }
    }
    assert!(detected > 0);
}

#[test]
fn corrupt_commit_log_stops_the_engine_with_segment_and_offset_unless_told_to_skip() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, written, _) = segment_with_records(dir.path(), 12);
    let mut data = std::fs::read(&seg).unwrap();
    data[60] ^= 0xff; // inside the first record
    std::fs::write(&seg, &data).unwrap();
    let err = Engine::open(options(dir.path())).unwrap_err();
    assert_names(&err, seg.file_name().unwrap().to_str().unwrap());
    let msg = err.to_string();
    assert!(msg.contains("commitlog_ignore_replay_errors"), "{msg}");
    let mut o = options(dir.path());
    o.commitlog_ignore_replay_errors = true;
    let engine = Engine::open(o).unwrap();
    assert_eq!(engine.replay_report().skipped.len(), 1);
    let t = engine.tables()[0].id;
    let present = written.iter().filter(|(k, _)| !visible(&engine, t, k.clone()).is_empty()).count();
    assert_eq!(present, written.len() - 1, "exactly the damaged record is lost");
}

/// A damaged record naming a table for its segment (the first 26 bytes after the 28-byte
/// header) leaves that table's later records in the segment unattributable: without
/// `commitlog_ignore_replay_errors` the node refuses to start; with it, each is reported as
/// skipped, none is applied to a wrong table.
#[test]
fn a_damaged_table_definition_costs_the_tables_records_in_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, written, _) = segment_with_records(dir.path(), 12);
    let mut data = std::fs::read(&seg).unwrap();
    assert_eq!(data[28 + 3], 0x04, "a define record follows the header");
    data[28 + 10] ^= 0xff; // inside the table id
    std::fs::write(&seg, &data).unwrap();
    let err = Engine::open(options(dir.path())).unwrap_err();
    assert_names(&err, seg.file_name().unwrap().to_str().unwrap());
    let mut o = options(dir.path());
    o.commitlog_ignore_replay_errors = true;
    let engine = Engine::open(o).unwrap();
    let skipped = &engine.replay_report().skipped;
    assert_eq!(skipped.len(), 1 + written.len(), "{skipped:?}");
    assert!(skipped[1].2.contains("table ordinal 0"), "{:?}", skipped[1]);
    let t = engine.tables()[0].id;
    assert!(written.iter().all(|(k, _)| visible(&engine, t, k.clone()).is_empty()));
}

/// Builds an SSTable of a few partitions with several chunks; returns its directory, generation
/// and what it holds.
fn small_sstable(dir: &Path) -> (PathBuf, Generation, TableId, Expected) {
    let (engine, t) = open_with_table(dir);
    let mut expected = Expected::new();
    for (k, v) in writes(30) {
        engine.apply(insert(t, k.clone(), 0, 1, &v)).unwrap();
        expected.insert(k, v);
    }
    engine.flush(t).unwrap();
    let s = engine.sstables(t).unwrap().remove(0);
    let desc = s.descriptor().clone();
    assert!(s.stats().uncompressed_bytes > 2048, "want several chunks");
    drop(s);
    engine.close().unwrap();
    (desc.dir, desc.generation, t, expected)
}

/// Opens the SSTable and reads every partition: Ok(data read) or the first error.
fn read_all(dir: &Path, generation: Generation, expected: &Expected) -> Result<Expected, Error> {
    let s = Arc::new(SsTable::open(Descriptor { dir: dir.to_path_buf(), generation })?);
    let sources = Sources { memtables: Vec::new(), sstables: vec![s] };
    let mut out = Expected::new();
    for k in expected.keys() {
        let dk = DecoratedKey::new(k.clone());
        if let Some(p) = read_partition(&sources, &dk, &[Slice::all()], false, usize::MAX, NOW)? {
            for r in p.live_rows(NOW) {
                let v = &r.cells.iter().find(|c| c.column == ColumnId(1)).unwrap().value;
                out.insert(k.clone(), String::from_utf8(v.to_vec()).unwrap());
            }
        }
    }
    Ok(out)
}

fn sstable_table(damage: impl Fn(&[u8]) -> Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let (tdir, generation, _, expected) = small_sstable(dir.path());
    let desc = Descriptor { dir: tdir.clone(), generation };
    assert_eq!(read_all(&tdir, generation, &expected).unwrap(), expected);
    for c in Component::ALL {
        let path = desc.path(c);
        let original = std::fs::read(&path).unwrap();
        for (case, bad) in damage(&original).into_iter().enumerate() {
            std::fs::write(&path, &bad).unwrap();
            match read_all(&tdir, generation, &expected) {
                Ok(got) => {
                    // Harmless damage must not change a single value (a bloom-filter bit may
                    // only cost a lookup, a TOC byte only its own text).
                    for (k, v) in &got {
                        assert_eq!(expected.get(k), Some(v), "{c:?} case {case}: wrong data");
                    }
                    assert_eq!(got.len(), expected.len(), "{c:?} case {case}: data silently lost");
                }
                Err(Error::Corruption { file, .. }) => {
                    let f = file.to_string_lossy();
                    assert!(f.contains(&format!("-{generation}-")), "{c:?} case {case}: names {f}");
                }
                Err(Error::Io { path, .. }) => {
                    assert!(path.to_string_lossy().contains(c.suffix()), "{c:?} case {case}: {path:?}")
                }
                Err(other) => panic!("{c:?} case {case}: unexpected error {other}"),
            }
        }
        std::fs::write(&path, &original).unwrap();
    }
}

#[test]
fn truncated_sstable_components_are_detected() {
    sstable_table(|b| (0..b.len()).map(|len| b[..len].to_vec()).collect());
}

#[test]
fn flipped_sstable_bytes_are_detected_or_harmless() {
    sstable_table(|b| {
        let mut cases = Vec::new();
        for i in 0..b.len() {
            for mask in [0xffu8, 0x10] {
                let mut bad = b.to_vec();
                bad[i] ^= mask;
                cases.push(bad);
            }
        }
        cases
    });
}

#[test]
fn engine_open_names_the_damaged_sstable_file() {
    let dir = tempfile::tempdir().unwrap();
    let (tdir, generation, _, _) = small_sstable(dir.path());
    let path = Descriptor { dir: tdir, generation }.path(Component::Statistics);
    let mut b = std::fs::read(&path).unwrap();
    b[20] ^= 0x55;
    std::fs::write(&path, b).unwrap();
    let err = Engine::open(options(dir.path())).unwrap_err();
    assert_names(&err, "Statistics.db");
}
