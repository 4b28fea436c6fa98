//! End-to-end behaviour of the engine through its public API.

#![allow(clippy::unwrap_used, reason = "a test should fail loudly on any error")]

mod common;

use bytes::Bytes;
use common::*;
use sibyl_engine::partition::RangeTombstone;
use sibyl_engine::{
    Bound, Cell, ColumnId, DeletionTime, Engine, Error, LivenessInfo, Mutation, PartitionUpdate, ReadCommand,
    Row, ScanCommand, ScanStart, Slice, Token,
};

#[test]
fn writes_are_readable_from_memtable_sstable_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    engine.apply(insert(t, pk(1), 1, 10, "a")).unwrap();
    engine.apply(insert(t, pk(1), 2, 10, "b")).unwrap();
    assert_eq!(visible(&engine, t, pk(1)), vec![(ck(1), "a".into()), (ck(2), "b".into())]);
    engine.flush(t).unwrap();
    assert_eq!(engine.table_stats(t).unwrap().sstable_count, 1);
    engine.apply(insert(t, pk(1), 1, 11, "a2")).unwrap();
    assert_eq!(visible(&engine, t, pk(1)), vec![(ck(1), "a2".into()), (ck(2), "b".into())]);
    drop(engine);
    let (engine, t) = open_with_table(dir.path());
    assert_eq!(visible(&engine, t, pk(1)), vec![(ck(1), "a2".into()), (ck(2), "b".into())]);
    assert!(engine.read(&ReadCommand::partition(t, pk(2), NOW)).unwrap().is_none());
}

#[test]
fn older_write_loses_to_newer_across_sstables() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    engine.apply(insert(t, pk(1), 1, 20, "new")).unwrap();
    engine.flush(t).unwrap();
    engine.apply(insert(t, pk(1), 1, 10, "old")).unwrap();
    engine.flush(t).unwrap();
    assert_eq!(visible(&engine, t, pk(1)), vec![(ck(1), "new".into())]);
}

#[test]
fn row_partition_and_range_deletions_shadow_older_data_only() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    for i in 0..10 {
        engine.apply(insert(t, pk(1), i, 10, &format!("v{i}"))).unwrap();
    }
    engine.flush(t).unwrap();
    engine.apply(delete_row(t, pk(1), 0, 11)).unwrap();
    // Range delete [3, 5] at ts 12, then a newer write at 4.
    let mut rt = PartitionUpdate::new(pk(1));
    rt.header.range_tombstones.push(RangeTombstone {
        slice: Slice { start: ck_prefix(3).before(), end: ck_prefix(5).after() },
        deletion: DeletionTime::new(12, NOW),
    });
    engine.apply(Mutation { table: t, update: rt }).unwrap();
    engine.apply(insert(t, pk(1), 4, 13, "back")).unwrap();
    let keys: Vec<Bytes> = visible(&engine, t, pk(1)).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [1, 2, 4, 6, 7, 8, 9].map(ck).to_vec());
    engine.flush(t).unwrap();
    let keys: Vec<Bytes> = visible(&engine, t, pk(1)).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [1, 2, 4, 6, 7, 8, 9].map(ck).to_vec());
    // Partition deletion at 13 removes everything written at or before 13.
    let mut pd = PartitionUpdate::new(pk(1));
    pd.header.deletion = DeletionTime::new(13, NOW);
    engine.apply(Mutation { table: t, update: pd }).unwrap();
    assert!(visible(&engine, t, pk(1)).is_empty());
    engine.apply(insert(t, pk(1), 7, 14, "after")).unwrap();
    assert_eq!(visible(&engine, t, pk(1)), vec![(ck(7), "after".into())]);
}

#[test]
fn ttl_cells_disappear_when_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    let mut row = Row::new(ck(1));
    row.liveness = LivenessInfo::expiring(10, 100, NOW);
    row.add_cell(Cell::expiring(ColumnId(1), 10, Bytes::from_static(b"x"), 100, NOW));
    engine.apply(Mutation { table: t, update: PartitionUpdate::new(pk(1)).with_row(row) }).unwrap();
    engine.flush(t).unwrap();
    let read = |now| {
        let p = engine.read(&ReadCommand::partition(t, pk(1), now)).unwrap().unwrap();
        p.live_rows(now).count()
    };
    assert_eq!(read(NOW + 99), 1);
    assert_eq!(read(NOW + 100), 0);
}

#[test]
fn static_row_is_shared_by_the_partition_and_deleted_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    let mut u = PartitionUpdate::new(pk(1));
    let mut s = Row::new(Bytes::new());
    s.add_cell(Cell::live(ColumnId(9), 5, Bytes::from_static(b"static")));
    u.header.static_row = Some(s);
    engine.apply(Mutation { table: t, update: u }).unwrap();
    engine.flush(t).unwrap();
    let p = engine.read(&ReadCommand::partition(t, pk(1), NOW)).unwrap().unwrap();
    assert_eq!(p.header.static_row.unwrap().cells[0].value, Bytes::from_static(b"static"));
    let mut d = PartitionUpdate::new(pk(1));
    d.header.deletion = DeletionTime::new(6, NOW);
    engine.apply(Mutation { table: t, update: d }).unwrap();
    let p = engine.read(&ReadCommand::partition(t, pk(1), NOW)).unwrap().unwrap();
    assert!(p.header.static_row.is_none());
}

fn slice_read(
    engine: &Engine,
    t: sibyl_engine::TableId,
    slice: Slice,
    reversed: bool,
    limit: usize,
) -> Vec<Bytes> {
    let cmd = ReadCommand {
        table: t,
        key: pk(7),
        slices: vec![slice],
        reversed,
        row_limit: limit,
        now_seconds: NOW,
    };
    engine.read(&cmd).unwrap().map(|p| p.rows.into_iter().map(|r| r.clustering).collect()).unwrap_or_default()
}

#[test]
fn wide_partition_slices_read_forward_and_reversed_through_the_row_index() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    let n = 5000;
    for i in 0..n {
        engine.apply(put(t, pk(7), i, 1, 1, &"x".repeat(40))).unwrap();
    }
    // Half in an SSTable, the odd half overwritten into a second one, a few still in memory.
    engine.flush(t).unwrap();
    for i in (1..n).step_by(2) {
        engine.apply(put(t, pk(7), i, 1, 2, "y")).unwrap();
    }
    engine.flush(t).unwrap();
    engine.apply(put(t, pk(7), 2500, 1, 3, "z")).unwrap();
    let mid = Slice { start: ck_prefix(2490).before(), end: ck_prefix(2510).after() };
    assert_eq!(
        slice_read(&engine, t, mid.clone(), false, usize::MAX),
        (2490..=2510).map(ck).collect::<Vec<_>>()
    );
    assert_eq!(
        slice_read(&engine, t, mid.clone(), true, usize::MAX),
        (2490..=2510).rev().map(ck).collect::<Vec<_>>()
    );
    assert_eq!(slice_read(&engine, t, mid, true, 3), vec![ck(2510), ck(2509), ck(2508)]);
    // Exclusive bounds.
    let excl = Slice { start: ck_prefix(10).after(), end: ck_prefix(13).before() };
    assert_eq!(slice_read(&engine, t, excl.clone(), false, usize::MAX), vec![ck(11), ck(12)]);
    assert_eq!(slice_read(&engine, t, excl, true, usize::MAX), vec![ck(12), ck(11)]);
    assert_eq!(slice_read(&engine, t, Slice::all(), true, 2), vec![ck(n - 1), ck(n - 2)]);

    // A slice from the middle decompresses only a few chunks of each SSTable.
    let sstables = engine.sstables(t).unwrap();
    let before: Vec<u64> = sstables.iter().map(|s| s.chunks_read()).collect();
    let cmd = ReadCommand {
        table: t,
        key: pk(7),
        slices: vec![Slice { start: ck_prefix(3000).before(), end: ck_prefix(3005).after() }],
        reversed: false,
        row_limit: usize::MAX,
        now_seconds: NOW,
    };
    assert_eq!(engine.read(&cmd).unwrap().unwrap().rows.len(), 6);
    for (s, b) in sstables.iter().zip(before) {
        let total = s.stats().uncompressed_bytes / 1024;
        let read = s.chunks_read() - b;
        assert!(read <= 6, "read {read} of {total} chunks for a 6-row slice");
    }
}

#[test]
fn scans_return_partitions_in_token_order_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    for i in 0..200u64 {
        engine.apply(insert(t, pk(i), 0, 1, "v")).unwrap();
        if i == 100 {
            engine.flush(t).unwrap();
        }
    }
    engine.apply(delete_row(t, pk(5), 0, 2)).unwrap();
    let all = scan_all(&engine, t, 30);
    let tokens: Vec<Token> = all.iter().map(|p| p.key.token).collect();
    let mut sorted = tokens.clone();
    sorted.sort();
    assert_eq!(tokens, sorted);
    assert_eq!(all.len(), 200, "every partition once, the deleted one with its tombstone");
    let live = all.iter().filter(|p| !p.is_empty_for_client(NOW)).count();
    assert_eq!(live, 199);
    // A token-bounded scan sees only its range.
    let mid = all[100].key.token;
    let cmd = ScanCommand {
        table: t,
        start: ScanStart::TokenExclusive(mid),
        end: Token::MAX,
        slices: vec![Slice::all()],
        partition_limit: usize::MAX,
        row_limit: usize::MAX,
        now_seconds: NOW,
    };
    assert_eq!(engine.scan(&cmd).unwrap().len(), 99);
}

#[test]
fn poisoned_commit_log_refuses_writes_and_keeps_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    engine.apply(insert(t, pk(1), 1, 1, "a")).unwrap();
    engine.poison_commit_log_for_test();
    assert!(matches!(engine.apply(insert(t, pk(1), 2, 1, "b")), Err(Error::Poisoned { .. })));
    assert_eq!(visible(&engine, t, pk(1)).len(), 1);
}

#[test]
fn invalid_mutations_are_rejected_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    let err = engine.apply(insert(t, Bytes::new(), 1, 1, "a")).unwrap_err();
    assert!(err.to_string().contains("Key may not be empty"), "{err}");
    let huge = "x".repeat(600 * 1024);
    let err = engine.apply(insert(t, pk(1), 1, 1, &huge)).unwrap_err();
    assert!(err.to_string().contains("larger than the maximum"), "{err}");
    let mut bad = insert(t, pk(1), 1, 1, "a");
    bad.update.rows[0].clustering = Bytes::from_static(b"raw");
    assert!(matches!(engine.apply(bad), Err(Error::InvalidRequest(_))));
    let unknown = sibyl_engine::TableId::random();
    assert!(matches!(engine.apply(insert(unknown, pk(1), 1, 1, "a")), Err(Error::UnknownTable(_))));
}

#[test]
fn commit_log_segments_are_deleted_once_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    for i in 0..3000u64 {
        engine.apply(insert(t, pk(i), 0, 1, &"v".repeat(1000))).unwrap();
    }
    assert!(engine.commitlog_segments() > 2);
    engine.flush(t).unwrap();
    assert_eq!(engine.commitlog_segments(), 1);
    drop(engine);
    let (engine, t) = open_with_table(dir.path());
    assert_eq!(engine.replayed_mutations(), 0, "nothing left to replay after a flush");
    assert_eq!(visible(&engine, t, pk(2999)).len(), 1);
}

#[test]
fn compressed_commit_log_replays_and_mixes_with_uncompressed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let open = |compression: bool| {
        let mut o = options(dir.path());
        o.commitlog_compression = compression;
        let engine = Engine::open(o).unwrap();
        // A random id, as real tables have: nothing in the log compresses for its sake.
        let t = engine.tables().first().map_or_else(sibyl_engine::TableId::random, |o| o.id);
        if engine.tables().is_empty() {
            engine.create_table(table_options(t)).unwrap();
        }
        (engine, t)
    };
    let log_bytes = || -> u64 {
        std::fs::read_dir(dir.path().join("commitlog"))
            .unwrap()
            .map(|e| {
                let data = std::fs::read(e.unwrap().path()).unwrap();
                data.iter().rposition(|b| *b != 0).map_or(0, |e| e as u64 + 1)
            })
            .sum()
    };
    let records = || commit_log_records(&dir.path().join("commitlog"));
    // An uncompressed log, then a compressed one (replay at open flushes what it replayed).
    let (engine, t) = open(false);
    for i in 0..200u64 {
        engine.apply(insert(t, pk(i), 0, 1, &format!("plain {i} {}", "x".repeat(500)))).unwrap();
    }
    drop(engine);
    assert_eq!(records(), (200, 0));
    let plain = log_bytes();
    let (engine, t) = open(true);
    assert_eq!(engine.replayed_mutations(), 200);
    for i in 200..400u64 {
        engine.apply(insert(t, pk(i), 0, 1, &format!("packed {i} {}", "x".repeat(500)))).unwrap();
    }
    // Updates lz4 cannot shrink are logged as they are, in the same segments (this one has no
    // repeated bytes: the empty clustering is not stored, unlike a clustering key whose
    // escaping repeats); batches (records that name their tables) are compressed too.
    let mut short = insert(t, pk(400), 0, 1, "q7#Zp");
    short.update.rows[0].clustering = sibyl_engine::clustering::empty_key();
    engine.apply(short).unwrap();
    engine
        .apply_batch(vec![
            insert(t, pk(401), 0, 1, &format!("batch {}", "y".repeat(300))),
            insert(t, pk(402), 0, 1, &format!("batch {}", "z".repeat(300))),
        ])
        .unwrap();
    drop(engine);
    assert_eq!(records(), (1, 201), "(records as they are, compressed)");
    let packed = log_bytes();
    assert!(packed > 0 && packed * 4 < plain, "compressed segments {packed} bytes, plain {plain}");
    // And back to uncompressed: every record replays.
    let (engine, t) = open(false);
    assert_eq!(engine.replayed_mutations(), 202);
    for i in [0u64, 199, 200, 399] {
        let value = &visible(&engine, t, pk(i))[0].1;
        assert!(value.starts_with(&format!("{} {i} ", if i < 200 { "plain" } else { "packed" })), "{value}");
    }
    assert!(visible(&engine, t, pk(402))[0].1.starts_with("batch z"));
    assert_eq!(visible(&engine, t, pk(400))[0].1, "q7#Zp");
}

#[test]
fn writers_wait_for_flush_instead_of_growing_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.memtable_space_bytes = 256 * 1024;
    o.commitlog_sync = sibyl_engine::SyncMode::Periodic { period: std::time::Duration::from_secs(10) };
    let engine = Engine::open(o).unwrap();
    let t = sibyl_engine::TableId::random();
    engine.create_table(table_options(t)).unwrap();
    for i in 0..5000u64 {
        engine.apply(insert(t, pk(i), 0, 1, &"v".repeat(200))).unwrap();
        assert!(engine.table_stats(t).unwrap().memtable_bytes < 3 * 256 * 1024);
    }
    let stats = engine.table_stats(t).unwrap();
    assert!(stats.flushes > 0, "{stats:?}");
    assert!(stats.bytes_flushed > 0, "{stats:?}");
    for i in (0..5000u64).step_by(97) {
        assert_eq!(visible(&engine, t, pk(i)).len(), 1, "key {i}");
    }
}

#[test]
fn snapshot_hard_links_live_sstables() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    engine.apply(insert(t, pk(1), 1, 1, "a")).unwrap();
    let dirs = engine.snapshot("before-upgrade").unwrap();
    assert_eq!(dirs.len(), 1);
    let files: Vec<_> = std::fs::read_dir(&dirs[0]).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(files.iter().any(|f| f.to_string_lossy().ends_with("Data.db")), "{files:?}");
    assert!(engine.snapshot("before-upgrade").is_err(), "snapshot names are unique");
}

#[test]
fn dropped_tables_vanish_and_their_log_records_are_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    engine.apply(insert(t, pk(1), 1, 1, "a")).unwrap();
    engine.drop_table(t).unwrap();
    assert!(matches!(engine.read(&ReadCommand::partition(t, pk(1), NOW)), Err(Error::UnknownTable(_))));
    drop(engine);
    let engine = Engine::open(options(dir.path())).unwrap();
    assert!(engine.tables().is_empty());
}

#[test]
fn range_tombstone_bounds_respect_inclusivity() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    for i in 0..6 {
        engine.apply(insert(t, pk(1), i, 1, "v")).unwrap();
    }
    // Delete (1, 4): exclusive on both ends.
    let mut u = PartitionUpdate::new(pk(1));
    u.header.range_tombstones.push(RangeTombstone {
        slice: Slice { start: ck_prefix(1).after(), end: ck_prefix(4).before() },
        deletion: DeletionTime::new(2, NOW),
    });
    engine.apply(Mutation { table: t, update: u }).unwrap();
    engine.flush(t).unwrap();
    let keys: Vec<Bytes> = visible(&engine, t, pk(1)).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [0, 1, 4, 5].map(ck).to_vec());
    let _ = Bound::bottom();
}

#[test]
fn truncate_removes_every_earlier_row_durably_and_keeps_later_writes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (engine, t) = open_with_table(dir.path());
        engine.apply(insert(t, pk(1), 1, 10, "flushed")).unwrap();
        engine.flush(t).unwrap();
        engine.apply(insert(t, pk(2), 1, 11, "in memtable")).unwrap();
        engine.truncate(t).unwrap();
        assert!(visible(&engine, t, pk(1)).is_empty());
        assert!(visible(&engine, t, pk(2)).is_empty());
        assert!(engine.sstables(t).unwrap().is_empty());
        engine.apply(insert(t, pk(3), 1, 12, "after")).unwrap();
        // Closed without a flush: the commit log holds all three writes, and replay must skip
        // the two from before the truncation.
        engine.close().unwrap();
    }
    let (engine, t) = open_with_table(dir.path());
    assert!(visible(&engine, t, pk(1)).is_empty());
    assert!(visible(&engine, t, pk(2)).is_empty());
    assert_eq!(visible(&engine, t, pk(3)).len(), 1);
    let files = std::fs::read_dir(engine.tables()[0].dir(&engine.options().data_dir)).unwrap().count();
    // table.meta plus one SSTable (six components) flushed after replay.
    assert_eq!(files, 7, "truncated SSTable files must be gone");
}

#[test]
fn repeated_reads_are_served_by_the_chunk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    for i in 0..200 {
        engine.apply(insert(t, pk(i), 1, 10, "value")).unwrap();
    }
    engine.flush(t).unwrap();
    let sstable = engine.sstables(t).unwrap()[0].clone();
    assert_eq!(visible(&engine, t, pk(7)).len(), 1);
    let decompressed = sstable.chunks_read();
    let before = engine.chunk_cache_stats();
    for _ in 0..50 {
        assert_eq!(visible(&engine, t, pk(7)).len(), 1);
    }
    let after = engine.chunk_cache_stats();
    assert_eq!(sstable.chunks_read(), decompressed, "cached chunks must not be decompressed again");
    assert!(after.hits >= before.hits + 50, "{before:?} -> {after:?}");
    assert!(after.size_bytes > 0 && after.size_bytes <= after.capacity_bytes);
}

#[test]
fn the_key_cache_serves_repeated_reads_and_follows_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, t) = open_with_table(dir.path());
    for round in 0..2 {
        for i in 0..100 {
            engine.apply(insert(t, pk(i), 1, 10 + round, &format!("v{round}"))).unwrap();
        }
        engine.flush(t).unwrap();
    }
    // Each read looks the key up in both SSTables: misses first, hits after.
    let before = engine.key_cache_stats();
    assert_eq!(visible(&engine, t, pk(7)), vec![(ck(1), "v1".to_string())]);
    let first = engine.key_cache_stats();
    assert_eq!((first.hits - before.hits, first.misses - before.misses), (0, 2));
    for _ in 0..10 {
        assert_eq!(visible(&engine, t, pk(7)), vec![(ck(1), "v1".to_string())]);
    }
    let again = engine.key_cache_stats();
    assert_eq!((again.hits - first.hits, again.misses - first.misses), (20, 0));
    // After a compaction the new SSTable has its own entries; the old ones are never served.
    engine.apply(insert(t, pk(7), 1, 20, "v2")).unwrap();
    engine.compact(t).unwrap();
    assert_eq!(visible(&engine, t, pk(7)), vec![(ck(1), "v2".to_string())]);
    let after = engine.key_cache_stats();
    assert_eq!((after.hits - again.hits, after.misses - again.misses), (0, 1));
    assert!(after.entries >= 3 && after.size_bytes <= after.capacity_bytes, "{after:?}");
}

#[test]
fn a_batch_is_replayed_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let t2 = sibyl_engine::TableId(uuid::Uuid::from_u128(43));
    {
        let (engine, t) = open_with_table(dir.path());
        let mut o = table_options(t2);
        o.name = "t2".into();
        engine.create_table(o).unwrap();
        engine.apply(insert(t, pk(1), 1, 10, "single")).unwrap();
        engine
            .apply_batch(vec![
                insert(t, pk(2), 1, 11, "a"),
                insert(t2, pk(3), 1, 11, "b"),
                insert(t, pk(4), 1, 11, "c"),
            ])
            .unwrap();
        engine.close().unwrap();
    }
    {
        // Replayed whole: both tables, all three partitions.
        let (engine, t) = open_with_table(dir.path());
        assert_eq!(visible(&engine, t, pk(2)).len(), 1);
        assert_eq!(visible(&engine, t2, pk(3)).len(), 1);
        assert_eq!(visible(&engine, t, pk(4)).len(), 1);
        engine.apply(insert(t, pk(5), 1, 12, "single again")).unwrap();
        engine.apply_batch(vec![insert(t, pk(6), 1, 13, "x"), insert(t2, pk(7), 1, 13, "y")]).unwrap();
        engine.close().unwrap();
    }
    // Tear the last record (the second batch): zero its last bytes, as a crash mid-write would.
    // The allocator has already prepared an empty spare segment after it: the torn record must
    // still count as the end of the log, not as damage in its middle (it once did).
    let log_dir = options(dir.path()).commitlog_dir;
    let mut segments: Vec<_> = std::fs::read_dir(&log_dir).unwrap().map(|e| e.unwrap().path()).collect();
    segments.sort();
    let mut torn = false;
    for seg in segments.iter().rev() {
        let mut bytes = std::fs::read(seg).unwrap();
        if let Some(last) = bytes.iter().rposition(|b| *b != 0) {
            if last > 64 {
                for b in &mut bytes[last - 8..=last] {
                    *b = 0;
                }
                std::fs::write(seg, &bytes).unwrap();
                torn = true;
                break;
            }
        }
    }
    assert!(torn, "no commit log record found to tear");
    let (engine, t) = open_with_table(dir.path());
    assert_eq!(visible(&engine, t, pk(5)).len(), 1, "the acknowledged single write survives");
    assert!(visible(&engine, t, pk(6)).is_empty(), "no part of the torn batch is applied");
    assert!(visible(&engine, t2, pk(7)).is_empty(), "no part of the torn batch is applied");
}
