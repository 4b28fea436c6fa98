//! Compaction executed by the engine: merging, purging after gc_grace without resurrecting
//! anything, TTL expiry, whole-SSTable drops, level invariants, crash-safe swaps, stop requests.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use sibyl_engine::compaction::level_overlaps;
use sibyl_engine::compactor::sstable_info;
use sibyl_engine::sstable::{Component, Descriptor};
use sibyl_engine::txnlog::TxnLog;
use sibyl_engine::{
    Cell, ColumnId, Engine, EngineOptions, Generation, ManualClock, Mutation, PartitionUpdate, Row, TableId,
    TableOptions,
};

const DAY: i64 = 86_400;

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Engine,
    clock: Arc<ManualClock>,
    table: TableId,
}

fn compaction_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

/// An engine without background compaction (tests drive it), a clock at NOW, and one table.
fn fixture(gc_grace_seconds: u32, compaction: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(i64::from(NOW) * 1_000_000));
    let mut o: EngineOptions = options(dir.path());
    o.clock = clock.clone();
    o.concurrent_compactors = 0;
    o.commitlog_sync = sibyl_engine::SyncMode::Periodic { period: std::time::Duration::from_secs(10) };
    let engine = Engine::open(o).unwrap();
    let table = TableId(uuid::Uuid::from_u128(7));
    let mut t = table_options(table);
    t.gc_grace_seconds = gc_grace_seconds;
    if !compaction.is_empty() {
        t.compaction = compaction_map(compaction);
    }
    engine.create_table(t).unwrap();
    Fixture { _dir: dir, engine, clock, table }
}

/// `len` incompressible letters derived from `seed`.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

fn generations(e: &Engine, t: TableId) -> Vec<u64> {
    let mut g: Vec<u64> = e.sstables(t).unwrap().iter().map(|s| s.descriptor().generation.0).collect();
    g.sort_unstable();
    g
}

fn tombstones_on_disk(e: &Engine, t: TableId) -> u64 {
    e.sstables(t).unwrap().iter().map(|s| s.stats().tombstone_count).sum()
}

#[test]
fn size_tiered_merges_four_flushes_and_keeps_the_newest_values() {
    let f = fixture(864_000, &[]);
    for round in 0..4i64 {
        for k in 0..50u64 {
            f.engine.apply(insert(f.table, pk(k), 1, 100 + round, &format!("v{round}"))).unwrap();
        }
        f.engine.flush(f.table).unwrap();
    }
    assert_eq!(f.engine.sstables(f.table).unwrap().len(), 4);
    // A key read before the compaction keeps its chunks cached; the compaction's own reads add
    // none (a one-pass merge would only evict what readers use).
    assert_eq!(visible(&f.engine, f.table, pk(0)), vec![(ck(1), "v3".to_string())]);
    let cached = f.engine.chunk_cache_stats().entries;
    assert!(cached > 0);
    assert_eq!(f.engine.compact_pending(f.table).unwrap(), 1);
    assert_eq!(f.engine.sstables(f.table).unwrap().len(), 1);
    assert_eq!(f.engine.chunk_cache_stats().entries, cached, "compaction filled the chunk cache");
    for k in 0..50u64 {
        assert_eq!(visible(&f.engine, f.table, pk(k)), vec![(ck(1), "v3".to_string())]);
    }
    let stats = f.engine.table_stats(f.table).unwrap();
    assert_eq!(stats.compactions, 1);
    assert!(stats.bytes_compacted > 0 && stats.bytes_compaction_written > 0);
    assert_eq!(stats.pending_compactions, 0);
}

#[test]
fn tombstones_stay_until_gc_grace_then_go_with_the_data_they_shadow() {
    let f = fixture(3600, &[]);
    f.engine.apply(insert(f.table, pk(1), 1, 10, "old")).unwrap();
    f.engine.flush(f.table).unwrap();
    f.engine.apply(delete_row(f.table, pk(1), 1, 20)).unwrap();
    f.engine.flush(f.table).unwrap();
    f.engine.compact(f.table).unwrap();
    assert_eq!(tombstones_on_disk(&f.engine, f.table), 1, "within gc_grace the tombstone stays");
    assert!(visible(&f.engine, f.table, pk(1)).is_empty());
    f.clock.advance_seconds(3601);
    f.engine.compact(f.table).unwrap();
    assert!(f.engine.sstables(f.table).unwrap().is_empty(), "tombstone and shadowed row are both gone");
    assert!(visible(&f.engine, f.table, pk(1)).is_empty());
}

#[test]
fn a_tombstone_is_kept_while_an_sstable_outside_the_compaction_holds_older_data() {
    let f = fixture(0, &[]);
    f.engine.apply(insert(f.table, pk(1), 1, 10, "old")).unwrap();
    f.engine.flush(f.table).unwrap();
    let old = generations(&f.engine, f.table);
    f.engine.apply(delete_row(f.table, pk(1), 1, 20)).unwrap();
    f.engine.flush(f.table).unwrap();
    f.engine.apply(insert(f.table, pk(2), 1, 30, "other")).unwrap();
    f.engine.flush(f.table).unwrap();
    f.clock.advance_seconds(10);
    let newer: Vec<u64> = generations(&f.engine, f.table).into_iter().filter(|g| !old.contains(g)).collect();
    f.engine.compact_sstables(f.table, &newer).unwrap();
    assert_eq!(tombstones_on_disk(&f.engine, f.table), 1, "purging it would resurrect the old row");
    assert!(visible(&f.engine, f.table, pk(1)).is_empty(), "no resurrection");

    // Old data arriving in the memtable protects the tombstone the same way.
    f.engine.compact(f.table).unwrap();
    assert_eq!(tombstones_on_disk(&f.engine, f.table), 0);
    f.engine.apply(delete_row(f.table, pk(3), 1, 50)).unwrap();
    f.engine.flush(f.table).unwrap();
    f.engine.apply(insert(f.table, pk(3), 2, 5, "older write arriving late")).unwrap();
    f.clock.advance_seconds(10);
    let on_disk = generations(&f.engine, f.table);
    f.engine.compact_sstables(f.table, &on_disk).unwrap();
    assert_eq!(tombstones_on_disk(&f.engine, f.table), 1, "the memtable holds older data of that partition");
    assert_eq!(visible(&f.engine, f.table, pk(2)), vec![(ck(1), "other".to_string())]);
}

#[test]
fn expired_cells_become_tombstones_and_are_purged_after_gc_grace() {
    let f = fixture(100, &[]);
    let mut row = Row::new(ck(1));
    row.add_cell(Cell::expiring(ColumnId(1), 10, Bytes::from_static(b"ttl"), 60, NOW));
    f.engine.apply(Mutation { table: f.table, update: PartitionUpdate::new(pk(1)).with_row(row) }).unwrap();
    f.engine.apply(insert(f.table, pk(2), 1, 10, "forever")).unwrap();
    f.engine.flush(f.table).unwrap();
    f.clock.advance_seconds(61);
    f.engine.compact(f.table).unwrap();
    let s = &f.engine.sstables(f.table).unwrap()[0];
    assert_eq!(s.stats().tombstone_count, 1, "the expired cell is now a tombstone");
    f.clock.advance_seconds(100);
    f.engine.compact(f.table).unwrap();
    let s = &f.engine.sstables(f.table).unwrap()[0];
    assert_eq!(s.stats().tombstone_count, 0);
    assert_eq!(s.stats().partition_count, 1);
    assert_eq!(visible(&f.engine, f.table, pk(2)), vec![(ck(1), "forever".to_string())]);
}

#[test]
fn time_window_drops_fully_expired_sstables_without_rewriting_them() {
    let f = fixture(0, &[("class", "TimeWindowCompactionStrategy"), ("compaction_window_unit", "MINUTES")]);
    let ts = i64::from(NOW) * 1_000_000;
    for (i, ttl) in [(1u64, 60u32), (2, 60)] {
        let mut row = Row::new(ck(1));
        row.add_cell(Cell::expiring(ColumnId(1), ts, Bytes::from_static(b"x"), ttl, NOW));
        f.engine
            .apply(Mutation { table: f.table, update: PartitionUpdate::new(pk(i)).with_row(row) })
            .unwrap();
        f.engine.flush(f.table).unwrap();
    }
    f.engine.apply(insert(f.table, pk(9), 1, ts + 300_000_000, "live")).unwrap();
    f.engine.flush(f.table).unwrap();
    assert_eq!(f.engine.sstables(f.table).unwrap().len(), 3);
    f.clock.advance_seconds(120);
    let before = f.engine.table_stats(f.table).unwrap();
    while f.engine.compact_pending(f.table).unwrap() > 0 {}
    let after = f.engine.table_stats(f.table).unwrap();
    assert_eq!(after.sstable_count, 1, "the two expired SSTables are gone");
    assert_eq!(after.bytes_compaction_written, before.bytes_compaction_written, "nothing was rewritten");
    assert_eq!(visible(&f.engine, f.table, pk(9)), vec![(ck(1), "live".to_string())]);
}

#[test]
fn leveled_keeps_levels_above_zero_free_of_overlap() {
    let f = fixture(864_000, &[("class", "LeveledCompactionStrategy"), ("sstable_size_in_mb", "1")]);
    let mut n = 0u64;
    for round in 0..12 {
        for k in 0..2000u64 {
            let key = (k * 7919 + round * 13) % 20_000;
            f.engine.apply(insert(f.table, pk(key), 1, 1 + n as i64, &noise(n, 200))).unwrap();
            n += 1;
        }
        f.engine.flush(f.table).unwrap();
        f.engine.compact_pending(f.table).unwrap();
    }
    let ssts = f.engine.sstables(f.table).unwrap();
    let infos: Vec<_> = ssts.iter().map(|s| sstable_info(s, 0)).collect();
    assert!(infos.iter().any(|i| i.level >= 1), "data reached level 1");
    assert!(level_overlaps(&infos).is_empty(), "overlaps within a level: {:?}", level_overlaps(&infos));
    let stats = f.engine.table_stats(f.table).unwrap();
    assert_eq!(stats.sstables_per_level.iter().sum::<usize>(), ssts.len());
    let distinct: std::collections::BTreeSet<u64> =
        (0..12u64).flat_map(|round| (0..2000u64).map(move |k| (k * 7919 + round * 13) % 20_000)).collect();
    assert_eq!(scan_all(&f.engine, f.table, 1000).len(), distinct.len());
}

#[test]
fn alter_table_changes_the_strategy_durably() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, id) = open_with_table(dir.path());
    let mut o = engine.tables().remove(0);
    o.compaction = compaction_map(&[("class", "LeveledCompactionStrategy"), ("sstable_size_in_mb", "5")]);
    o.gc_grace_seconds = 7;
    engine.alter_table(o.clone()).unwrap();
    let mut bad = o.clone();
    bad.compaction = compaction_map(&[("class", "NoSuchStrategy")]);
    let err = engine.alter_table(bad).unwrap_err().to_string();
    assert!(err.contains("Unable to find compaction strategy class"), "{err}");
    drop(engine);
    let (engine, _) = open_with_table(dir.path());
    let now: TableOptions = engine.tables().remove(0);
    assert_eq!(now.id, id);
    assert_eq!(now.compaction, o.compaction);
    assert_eq!(now.gc_grace_seconds, 7);
}

/// Copies every component of SSTable `from` to generation `to` in the same directory.
fn copy_sstable(dir: &std::path::Path, from: u64, to: u64) {
    let src = Descriptor { dir: dir.to_path_buf(), generation: Generation(from) };
    let dst = Descriptor { dir: dir.to_path_buf(), generation: Generation(to) };
    for c in Component::ALL {
        std::fs::copy(src.path(c), dst.path(c)).unwrap();
    }
}

#[test]
fn an_interrupted_compaction_leaves_exactly_its_inputs_or_its_outputs() {
    for committed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (engine, id) = open_with_table(dir.path());
        engine.apply(insert(id, pk(1), 1, 10, "a")).unwrap();
        engine.flush(id).unwrap();
        engine.apply(insert(id, pk(2), 1, 10, "b")).unwrap();
        engine.flush(id).unwrap();
        let table_dir = engine.sstables(id).unwrap()[0].descriptor().dir.clone();
        let inputs = generations(&engine, id);
        engine.close().unwrap();
        drop(engine);
        // A crash mid-compaction: the log names both inputs and an output that exists on disk
        // (a copy of the newer input, so it covers the same commit log position an output would).
        let mut log =
            TxnLog::begin(&table_dir, 100, &inputs.iter().map(|g| Generation(*g)).collect::<Vec<_>>())
                .unwrap();
        log.add(Generation(50)).unwrap();
        copy_sstable(&table_dir, inputs[1], 50);
        if committed {
            log.commit().unwrap();
        }
        drop(log);
        let (engine, _) = open_with_table(dir.path());
        let live = generations(&engine, id);
        if committed {
            assert_eq!(live, vec![50], "the committed output replaced the inputs");
            assert_eq!(visible(&engine, id, pk(2)), vec![(ck(1), "b".to_string())]);
            assert!(visible(&engine, id, pk(1)).is_empty(), "the copied output only held pk 2");
        } else {
            assert_eq!(live, inputs, "the uncommitted output is gone, the inputs stay");
            assert_eq!(visible(&engine, id, pk(2)), vec![(ck(1), "b".to_string())]);
        }
        let leftovers: Vec<String> = std::fs::read_dir(&table_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("txn-") || n.starts_with("sib1-50-") && !committed)
            .collect();
        assert!(leftovers.is_empty(), "orphaned files: {leftovers:?}");
    }
}

#[test]
fn a_corrupt_transaction_log_is_reported_with_its_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, id) = open_with_table(dir.path());
    engine.apply(insert(id, pk(1), 1, 10, "a")).unwrap();
    engine.flush(id).unwrap();
    let table_dir = engine.sstables(id).unwrap()[0].descriptor().dir.clone();
    engine.close().unwrap();
    drop(engine);
    let path = TxnLog::path(&table_dir, 9);
    std::fs::write(&path, b"SIBYL-TXN 1|00000000\nCOMMIT|00000000\n").unwrap();
    let err = Engine::open(options(dir.path())).unwrap_err().to_string();
    assert!(err.contains("txn-9.log") && err.contains("offset 0"), "{err}");
}

#[test]
fn a_stopped_compaction_keeps_its_inputs_and_deletes_its_outputs() {
    let f = fixture(864_000, &[]);
    for round in 0..4 {
        for k in 0..400u64 {
            // Incompressible values, so the throttle (on disk bytes) has something to hold back.
            let value = noise(k * 10 + round as u64, 500);
            f.engine.apply(insert(f.table, pk(k), round, 1 + round, &value)).unwrap();
        }
        f.engine.flush(f.table).unwrap();
    }
    let before = generations(&f.engine, f.table);
    f.engine.set_compaction_throughput(64 * 1024); // about ten seconds of input
    std::thread::scope(|s| {
        let h = s.spawn(|| f.engine.compact(f.table));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while f.engine.active_compactions().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the compaction never started");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let info = f.engine.active_compactions().remove(0);
        assert_eq!(info.table, "t");
        assert!(info.total_bytes > 0);
        assert_eq!(f.engine.stop_compactions(Some(f.table)), 1);
        let err = h.join().unwrap().unwrap_err().to_string();
        assert!(err.contains("stopped"), "{err}");
    });
    assert_eq!(generations(&f.engine, f.table), before);
    let dir = f.engine.sstables(f.table).unwrap()[0].descriptor().dir.clone();
    let files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.iter().any(|n| n.starts_with("txn-")), "{files:?}");
    assert_eq!(files.iter().filter(|n| n.ends_with("-TOC.txt")).count(), before.len(), "{files:?}");
    for k in [0u64, 399] {
        assert_eq!(visible(&f.engine, f.table, pk(k)).len(), 4);
    }
}

#[test]
fn background_workers_compact_after_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, id) = open_with_table(dir.path());
    for round in 0..8i64 {
        for k in 0..20u64 {
            engine.apply(insert(id, pk(k), round, 1 + round, "v")).unwrap();
        }
        engine.flush(id).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while engine.table_stats(id).unwrap().sstable_count > 3 {
        assert!(std::time::Instant::now() < deadline, "background compaction never caught up");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(engine.table_stats(id).unwrap().compactions >= 1);
    for k in 0..20u64 {
        assert_eq!(visible(&engine, id, pk(k)).len(), 8);
    }
    let _ = DAY;
}

#[test]
fn cleanup_removes_exactly_the_partitions_outside_the_kept_ranges() {
    let f = fixture(864_000, &[]);
    let token = |k: u64| sibyl_engine::Token::of_key(&pk(k)).0;
    // Two flushes of 200 keys each, and a third SSTable whose keys all lie outside the range.
    for round in 0..2u64 {
        for k in round * 200..(round + 1) * 200 {
            f.engine.apply(insert(f.table, pk(k), 1, 100, "v")).unwrap();
        }
        f.engine.flush(f.table).unwrap();
    }
    let keep = [(i64::MIN / 2, i64::MAX / 2)];
    let kept = |k: u64| token(k) > keep[0].0 && token(k) <= keep[0].1;
    // Above the range only, so that SSTable spans no kept token.
    let outside: Vec<u64> = (400..2_000u64).filter(|k| token(*k) > keep[0].1).take(30).collect();
    for k in &outside {
        f.engine.apply(insert(f.table, pk(*k), 1, 100, "v")).unwrap();
    }
    // Unflushed data is cleaned too: cleanup flushes first.
    let stats = f.engine.cleanup(f.table, &keep).unwrap();
    assert_eq!((stats.kept, stats.dropped, stats.rewritten), (0, 1, 2), "{stats:?}");
    assert!(stats.bytes_after < stats.bytes_before);
    let check = |e: &Engine| {
        for k in (0..400u64).chain(outside.iter().copied()) {
            let found = !visible(e, f.table, pk(k)).is_empty();
            assert_eq!(found, kept(k), "key {k} (token {})", token(k));
        }
    };
    check(&f.engine);
    // A second cleanup finds nothing left to remove.
    let again = f.engine.cleanup(f.table, &keep).unwrap();
    assert_eq!((again.dropped, again.rewritten), (0, 0), "{again:?}");
    assert_eq!(again.kept, f.engine.sstables(f.table).unwrap().len());
    check(&f.engine);
    // Owning the whole ring keeps everything; owning nothing drops everything.
    assert_eq!(f.engine.cleanup(f.table, &[(5, 5)]).unwrap().rewritten, 0);
    let none = f.engine.cleanup(f.table, &[]).unwrap();
    assert_eq!(none.bytes_after, 0, "{none:?}");
    assert!(visible(&f.engine, f.table, pk(0)).is_empty() && visible(&f.engine, f.table, pk(1)).is_empty());
}
