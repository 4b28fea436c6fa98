//! Checked-in format fixtures: commit log segments and SSTables. Tests read them back, and check
//! that today's writer produces the same bytes, so any format change is a conscious act: bump
//! the version, keep reading the old one, regenerate with
//! `cargo test -p sibyl-engine --test fixtures -- --ignored regenerate_fixtures`.
//!
//! | fixture | what it holds |
//! | --- | --- |
//! | `commitlog-v1/` | segment version 1, mutations version 1 |
//! | `commitlog-v2/` | segment version 2 (lz4), mutations version 1 |
//! | `commitlog-v3/` | segment version 1, mutations version 3 (row encoding 2) |
//! | `commitlog-v4/` | segment version 2 (lz4), mutations version 3 |
//! | `commitlog-v5/` | segment version 3 (table ordinals, varint framing): written today |
//! | `commitlog-v6/` | segment version 3 with `commitlog_compression`: written today |
//! | `sstable-v1/` | every component at version 1 |
//! | `sstable-v2/` | Statistics.db version 2 |
//! | `sstable-v3/` | also Index.db version 2 |
//! | `sstable-v4/` | also Data.db version 2 (row encoding 2) and Index.db version 3 |
//! | `sstable-v5/` | Data.db version 3 (row encoding 3), Index.db version 4 (sparse), Statistics.db version 3: written today |

#![allow(clippy::unwrap_used, reason = "a test should fail loudly on any error")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use sibyl_engine::commitlog::replay::replay;
use sibyl_engine::commitlog::{Position, SegmentId};
use sibyl_engine::partition::RangeTombstone;
use sibyl_engine::read::{read_partition, Sources};
use sibyl_engine::sstable::{Component, Descriptor, SsTable};
use sibyl_engine::{
    Cell, ColumnId, DecoratedKey, DeletionTime, Engine, Generation, LivenessInfo, Mutation, PartitionUpdate,
    Row, Slice, TableId,
};

const TABLE: u128 = 0x5151_0000_0000_0000_0000_0000_0000_0001;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The mutations every fixture holds: every kind of cell and deletion.
fn mutations() -> Vec<Mutation> {
    let t = TableId(uuid::Uuid::from_u128(TABLE));
    let mut out = Vec::new();
    for i in 0..5u64 {
        let mut row = Row::new(ck(i as i64));
        row.liveness = LivenessInfo::new(1000 + i as i64);
        row.add_cell(Cell::live(ColumnId(1), 1000 + i as i64, Bytes::from(format!("value {i}"))));
        out.push(Mutation { table: t, update: PartitionUpdate::new(pk(i % 2)).with_row(row) });
    }
    let mut ttl = Row::new(ck(10));
    ttl.add_cell(Cell::expiring(ColumnId(2), 2000, Bytes::from_static(b"short-lived"), 3600, NOW));
    ttl.add_cell(Cell::tombstone(ColumnId(3), 2000, NOW));
    ttl.add_cell(
        Cell::live(ColumnId(4), 2000, Bytes::from_static(b"elem")).with_path(Bytes::from_static(b"k1")),
    );
    ttl.add_complex_deletion(ColumnId(4), DeletionTime::new(1999, NOW));
    out.push(Mutation { table: t, update: PartitionUpdate::new(pk(0)).with_row(ttl) });
    let mut header = PartitionUpdate::new(pk(1));
    let mut st = Row::new(Bytes::new());
    st.add_cell(Cell::live(ColumnId(9), 3000, Bytes::from_static(b"static")));
    header.header.static_row = Some(st);
    header.header.range_tombstones.push(RangeTombstone {
        slice: Slice { start: ck_prefix(3).before(), end: ck_prefix(3).after() },
        deletion: DeletionTime::new(3001, NOW),
    });
    out.push(Mutation { table: t, update: header });
    let mut gone = PartitionUpdate::new(pk(2));
    gone.header.deletion = DeletionTime::new(4000, NOW);
    out.push(Mutation { table: t, update: gone });
    let mut del = Row::new(ck(0));
    del.deletion = DeletionTime::new(5000, NOW);
    out.push(Mutation { table: t, update: PartitionUpdate::new(pk(0)).with_row(del) });
    out
}

/// The compressed log's mutations: the others, and one whose value lz4 shrinks.
fn compressible_mutations() -> Vec<Mutation> {
    let t = TableId(uuid::Uuid::from_u128(TABLE));
    let mut row = Row::new(ck(7));
    row.add_cell(Cell::live(ColumnId(1), 7000, Bytes::from("compressible ".repeat(20))));
    let mut out = mutations();
    out.push(Mutation { table: t, update: PartitionUpdate::new(pk(3)).with_row(row) });
    out
}

/// Writes a compressed commit log (`commitlog_compression`) of `compressible_mutations` into
/// `dir/commitlog-v6/`.
fn generate_compressed_log(dir: &Path) {
    let work = tempfile::tempdir().unwrap();
    let mut o = options(work.path());
    o.commitlog_compression = true;
    let engine = Engine::open(o).unwrap();
    let t = TableId(uuid::Uuid::from_u128(TABLE));
    engine.create_table(table_options(t)).unwrap();
    for m in compressible_mutations() {
        engine.apply(m).unwrap();
    }
    drop(engine);
    let log_dir = dir.join("commitlog-v6");
    std::fs::create_dir_all(&log_dir).unwrap();
    let data = std::fs::read(work.path().join("commitlog").join("CommitLog-3-1.log")).unwrap();
    let end = data.iter().rposition(|b| *b != 0).unwrap() + 1;
    std::fs::write(log_dir.join("CommitLog-3-1.log"), &data[..end]).unwrap();
}

/// Writes today's fixtures into `dir`: `commitlog-v5/`, `commitlog-v6/` and `sstable-v5/` (see
/// the module docs for the older ones, which stay as they were written).
fn generate(dir: &Path) {
    generate_compressed_log(dir);
    let work = tempfile::tempdir().unwrap();
    let engine = Engine::open(options(work.path())).unwrap();
    let t = TableId(uuid::Uuid::from_u128(TABLE));
    engine.create_table(table_options(t)).unwrap();
    for m in mutations() {
        engine.apply(m).unwrap();
    }
    engine.flush(t).unwrap();
    let sstable = engine.sstables(t).unwrap().remove(0);
    let desc = sstable.descriptor().clone();
    drop(sstable);
    engine.close().unwrap();
    drop(engine);
    let log_dir = dir.join("commitlog-v5");
    let sst_dir = dir.join("sstable-v5");
    std::fs::create_dir_all(&log_dir).unwrap();
    let seg = work.path().join("commitlog").join("CommitLog-3-1.log");
    let data = std::fs::read(&seg).unwrap();
    let end = data.iter().rposition(|b| *b != 0).unwrap() + 1;
    std::fs::write(log_dir.join("CommitLog-3-1.log"), &data[..end]).unwrap();
    std::fs::create_dir_all(&sst_dir).unwrap();
    for c in Component::ALL {
        let src = desc.path(c);
        std::fs::copy(&src, sst_dir.join(src.file_name().unwrap())).unwrap();
    }
}

#[test]
#[ignore = "rewrites the checked-in fixtures; run only after a deliberate format change"]
fn regenerate_fixtures() {
    generate(&fixture_dir());
}

/// Replays a fixture log; returns its mutations.
fn replay_fixture(sub: &str) -> Vec<Mutation> {
    let mut got = Vec::new();
    let report = replay(&fixture_dir().join(sub), false, |_, mutations| {
        got.extend(mutations);
        Ok(())
    })
    .unwrap();
    assert_eq!(report.torn_tail, None);
    got
}

/// The single segment file of a fixture log, and its bytes.
fn fixture_segment(sub: &str) -> (String, Vec<u8>) {
    let dir = fixture_dir().join(sub);
    let path = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    (path.file_name().unwrap().to_str().unwrap().to_string(), std::fs::read(path).unwrap())
}

#[test]
fn commit_log_fixture_replays_the_known_mutations() {
    // (fixture, segment version, first byte of a mutation record's payload or body)
    for (sub, segment, first) in [("commitlog-v1", 1, 1), ("commitlog-v3", 1, 3), ("commitlog-v5", 3, 4)] {
        assert_eq!(replay_fixture(sub), mutations(), "{sub}");
        let (name, data) = fixture_segment(sub);
        assert_eq!(name, format!("CommitLog-{segment}-1.log"));
        assert_eq!(data[4], segment, "{sub}: segment version");
        let header = if segment == 3 { 28 } else { 20 };
        let frame = if segment == 3 { 3 } else { 8 };
        assert_eq!(data[header + frame], first, "{sub}: first record");
    }
}

#[test]
fn compressed_commit_log_fixture_replays_the_known_mutations() {
    for (sub, segment) in [("commitlog-v2", 2), ("commitlog-v4", 2), ("commitlog-v6", 3)] {
        assert_eq!(replay_fixture(sub), compressible_mutations(), "{sub}");
        let (name, data) = fixture_segment(sub);
        assert_eq!(name, format!("CommitLog-{segment}-1.log"));
        assert_eq!(data[4], segment, "{sub}: segment version");
        let twice = b"compressible compressible ";
        assert!(data.windows(twice.len()).all(|w| w != twice), "the long value is stored compressed");
    }
}

/// Development builds between mutation version 3 and segment version 3 wrote version 3
/// mutations that lz4 could not shrink into version 2 segments as they were, so their first
/// byte (3) looked like the compressed-payload marker. Replay reads them as mutations when they
/// do not inflate.
#[test]
fn version_2_segments_replay_uncompressed_version_3_mutations() {
    use sibyl_engine::commitlog::segment::{encode_legacy_header, encode_record};
    let dir = tempfile::tempdir().unwrap();
    let t = TableId::random();
    let mut data = encode_legacy_header(2, SegmentId(1)).to_vec();
    let written: Vec<Mutation> = (0..3u64)
        .map(|i| {
            let mut row = Row::new(ck(i as i64));
            row.add_cell(Cell::live(
                ColumnId(1),
                1_700_000_000_000_000 + i as i64,
                Bytes::from(format!("q7#Zp{i}")),
            ));
            Mutation { table: t, update: PartitionUpdate::new(pk(i)).with_row(row) }
        })
        .collect();
    for m in &written {
        let mut payload = Vec::new();
        m.encode(&mut payload);
        assert_eq!(payload[0], 3);
        encode_record(&payload, &mut data);
    }
    data.extend_from_slice(&[0u8; 64]);
    std::fs::write(dir.path().join("CommitLog-2-1.log"), &data).unwrap();
    let mut got = Vec::new();
    let report = replay(dir.path(), false, |_, m| {
        got.extend(m);
        Ok(())
    })
    .unwrap();
    assert_eq!(report.skipped, vec![]);
    assert_eq!(got, written);
}

/// The same mutations take fewer bytes in today's commit log (segment version 3) than in the
/// older fixtures, and fewer in today's SSTable (row encoding 2, sparse Index.db version 4) than
/// in `sstable-v3` and `sstable-v4`.
#[test]
fn todays_formats_are_smaller_than_the_older_ones() {
    let len = |p: &str| std::fs::metadata(fixture_dir().join(p)).unwrap().len();
    let (v1, v3) = (len("commitlog-v1/CommitLog-1-1.log"), len("commitlog-v3/CommitLog-1-1.log"));
    assert!(v3 < v1, "commit log: {v3} bytes against {v1}");
    let v5 = len("commitlog-v5/CommitLog-3-1.log");
    assert!(v5 < v3, "commit log: {v5} bytes against {v3}");
    let (v4, v6) = (len("commitlog-v4/CommitLog-2-1.log"), len("commitlog-v6/CommitLog-3-1.log"));
    assert!(v6 < v4, "compressed commit log: {v6} bytes against {v4}");
    let data = |sub: &str| {
        let s =
            SsTable::open(Descriptor { dir: fixture_dir().join(sub), generation: Generation(1) }).unwrap();
        s.stats().uncompressed_bytes
    };
    let (old, new) = (data("sstable-v3"), data("sstable-v4"));
    assert!(new < old, "data stream: {new} bytes against {old}");
    let data_file = std::fs::read(fixture_dir().join("sstable-v4/sib1-1-Data.db")).unwrap();
    assert_eq!(&data_file[..5], b"SBLD\x02", "Data.db version 2");
    let (old, new) = (len("sstable-v3/sib1-1-Index.db"), len("sstable-v4/sib1-1-Index.db"));
    assert!(new < old, "Index.db: {new} bytes against {old}");
    let index_file = std::fs::read(fixture_dir().join("sstable-v4/sib1-1-Index.db")).unwrap();
    assert_eq!(&index_file[..5], b"SBLI\x03", "Index.db version 3");
    let (old, new) = (len("sstable-v4/sib1-1-Index.db"), len("sstable-v5/sib1-1-Index.db"));
    assert!(new < old, "Index.db: {new} bytes against {old}");
    let (old, new) = (data("sstable-v4"), data("sstable-v5"));
    assert!(new < old, "data stream: {new} bytes against {old}");
}

/// `Statistics.db` version 2 added the live-data flag and the tombstone and cell histograms;
/// the rest of the SSTable is unchanged. The version 1 fixture still opens (as holding live data,
/// so never dropped as fully expired).
#[test]
fn sstable_statistics_v2_fixture_has_its_histograms_and_v1_reads_conservatively() {
    let open = |sub: &str| {
        Arc::new(
            SsTable::open(Descriptor { dir: fixture_dir().join(sub), generation: Generation(1) }).unwrap(),
        )
    };
    let v1 = open("sstable-v1");
    let v2 = open("sstable-v2");
    let v3 = open("sstable-v3");
    assert_eq!(v3.keys().unwrap(), v2.keys().unwrap(), "Index.db v2 gives the same keys and tokens");
    let v4 = open("sstable-v4");
    assert_eq!(v4.keys().unwrap(), v2.keys().unwrap());
    let v5 = open("sstable-v5");
    assert_eq!(v5.keys().unwrap(), v2.keys().unwrap(), "keys read from the data past the sparse index");
    assert_eq!(v5.partition_sizes(), v4.partition_sizes(), "sizes from the statistics");
    assert_eq!(v5.stats().partition_count, 3);
    assert_eq!(v4.stats().droppable_tombstones(u32::MAX), v2.stats().droppable_tombstones(u32::MAX));
    assert!(v1.stats().has_non_expiring_data && v1.stats().tombstone_drop_times.is_empty());
    assert!(v2.stats().has_non_expiring_data);
    let tombstones: u64 = v2.stats().tombstone_drop_times.iter().map(|(_, c)| c).sum();
    assert!(tombstones >= v2.stats().tombstone_count, "every tombstone and expiring cell is binned");
    assert_eq!(v2.stats().cells_per_partition.count(), 3, "one entry per partition");
    assert_eq!(v2.stats().droppable_tombstones(0), 0);
    assert_eq!(v2.stats().droppable_tombstones(u32::MAX), tombstones);
    assert_eq!(v1.stats().partition_count, v2.stats().partition_count);
}

#[test]
fn sstable_fixture_reads_back_the_known_data() {
    for sub in ["sstable-v1", "sstable-v2", "sstable-v3", "sstable-v4", "sstable-v5"] {
        sstable_fixture_reads_back(sub);
    }
}

fn sstable_fixture_reads_back(sub: &str) {
    let desc = Descriptor { dir: fixture_dir().join(sub), generation: Generation(1) };
    let s = Arc::new(SsTable::open(desc).unwrap());
    assert_eq!(s.stats().partition_count, 3);
    let sources = Sources { memtables: Vec::new(), sstables: vec![s] };
    let read = |k: u64| {
        read_partition(&sources, &DecoratedKey::new(pk(k)), &[Slice::all()], false, usize::MAX, NOW)
            .unwrap()
            .unwrap()
    };
    let p0 = read(0);
    let live: Vec<Bytes> = p0.live_rows(NOW).map(|r| r.clustering.clone()).collect();
    assert_eq!(live, vec![ck(2), ck(4), ck(10)], "row 0 deleted at 5000");
    let ttl_row = p0.rows.iter().find(|r| r.clustering == ck(10)).unwrap();
    assert!(ttl_row
        .cells
        .iter()
        .any(|c| c.column == ColumnId(2) && c.is_live(NOW) && !c.is_live(NOW + 3600)));
    let p1 = read(1);
    let live: Vec<Bytes> = p1.live_rows(NOW).map(|r| r.clustering.clone()).collect();
    assert_eq!(live, vec![ck(1)], "row 3 is range-deleted");
    assert_eq!(p1.header.static_row.unwrap().cells[0].value, Bytes::from_static(b"static"));
    let p2 = read(2);
    assert_eq!(p2.header.deletion, DeletionTime::new(4000, NOW));
    assert!(p2.rows.is_empty());
}

#[test]
fn todays_writer_produces_the_fixture_bytes() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    for sub in ["commitlog-v5", "commitlog-v6", "sstable-v5"] {
        for e in std::fs::read_dir(fixture_dir().join(sub)).unwrap() {
            let path = e.unwrap().path();
            let fresh = dir.path().join(sub).join(path.file_name().unwrap());
            assert!(
                std::fs::read(&path).unwrap() == std::fs::read(&fresh).unwrap(),
                "{} changed: a format change needs a new version (see the module docs)",
                path.display()
            );
        }
    }
}

/// Golden test: the dump of the fixture SSTable, a text a person can review. Set
/// `SIBYL_BLESS=1` to rewrite `tests/golden/sstable-v1.dump` after a deliberate change.
#[test]
fn sstable_fixture_dump_matches_the_golden_file() {
    let desc = Descriptor { dir: fixture_dir().join("sstable-v1"), generation: Generation(1) };
    let s = Arc::new(SsTable::open(desc).unwrap());
    let text = sibyl_engine::sstable::dump::dump(&s).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sstable-v1.dump");
    if std::env::var("SIBYL_BLESS").is_ok() {
        std::fs::write(&golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(text == expected, "dump differs from {}:\n{text}", golden.display());
}

fn fixture_table_options() -> sibyl_engine::TableOptions {
    let mut o = sibyl_engine::TableOptions::new(TableId(uuid::Uuid::from_u128(TABLE)), "ks", "events");
    o.gc_grace_seconds = 3600;
    // The fixture was written when 64 MiB was the default; the bytes pin the format, not it.
    o.memtable_flush_size_bytes = 64 << 20;
    o
}

/// `table.meta` version 3 (with the compaction map): the fixture decodes to the known options and
/// today's encoder produces the same bytes. Regenerate with `SIBYL_BLESS=1`.
#[test]
fn table_meta_fixture_decodes_and_is_what_todays_encoder_writes() {
    let path = fixture_dir().join("table-meta-v3/table.meta");
    let mut options = fixture_table_options();
    options.truncated_at = Position { segment: SegmentId(7), offset: 4096 };
    options.compaction = [("class", "LeveledCompactionStrategy"), ("sstable_size_in_mb", "10")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let fresh = options.encode();
    if std::env::var("SIBYL_BLESS").is_ok() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(sibyl_engine::TableOptions::decode(&bytes).unwrap(), options);
    assert!(bytes == fresh, "{} changed: a format change needs a new version", path.display());
}

/// Version 2 files, written before compaction options were stored, open with the default
/// compaction (size-tiered).
#[test]
fn table_meta_v2_fixture_still_decodes() {
    let bytes = std::fs::read(fixture_dir().join("table-meta-v2/table.meta")).unwrap();
    let mut expected = fixture_table_options();
    expected.truncated_at = Position { segment: SegmentId(7), offset: 4096 };
    assert_eq!(sibyl_engine::TableOptions::decode(&bytes).unwrap(), expected);
}

/// Version 1 files, written before `TRUNCATE` existed, still open as never truncated.
#[test]
fn table_meta_v1_fixture_still_decodes() {
    let bytes = std::fs::read(fixture_dir().join("table-meta-v1/table.meta")).unwrap();
    assert_eq!(sibyl_engine::TableOptions::decode(&bytes).unwrap(), fixture_table_options());
}

/// An SSTable of every older format, dropped into a table directory, is served as it is and
/// compacted into today's format with the same contents.
#[test]
fn older_sstables_compact_into_todays_format_with_the_same_contents() {
    for sub in ["sstable-v1", "sstable-v2", "sstable-v3", "sstable-v4"] {
        let dir = tempfile::tempdir().unwrap();
        let t = TableId(uuid::Uuid::from_u128(TABLE));
        let table_dir = {
            let engine = Engine::open(options(dir.path())).unwrap();
            engine.create_table(table_options(t)).unwrap();
            engine.close().unwrap();
            table_options(t).dir(&dir.path().join("data"))
        };
        assert!(table_dir.is_dir(), "{} is the table directory", table_dir.display());
        for e in std::fs::read_dir(fixture_dir().join(sub)).unwrap() {
            let path = e.unwrap().path();
            std::fs::copy(&path, table_dir.join(path.file_name().unwrap())).unwrap();
        }
        let engine = Engine::open(options(dir.path())).unwrap();
        assert_eq!(engine.sstables(t).unwrap().len(), 1, "{sub} is loaded");
        let before = scan_all(&engine, t, 2);
        assert_eq!(before.len(), 3, "{sub}");
        engine.apply(mutations().remove(0)).unwrap();
        engine.flush(t).unwrap();
        let expected = scan_all(&engine, t, 2);
        engine.compact(t).unwrap();
        let after = engine.sstables(t).unwrap();
        assert_eq!(after.len(), 1, "{sub}: one SSTable after the major compaction");
        let data = std::fs::read(after[0].descriptor().path(Component::Data)).unwrap();
        assert_eq!(data[4], 3, "{sub}: compacted into Data.db version 3");
        let index = std::fs::read(after[0].descriptor().path(Component::Index)).unwrap();
        assert_eq!(index[4], 4, "{sub}: and Index.db version 4");
        assert_eq!(scan_all(&engine, t, 2), expected, "{sub}: same contents");
        drop(after);
        engine.close().unwrap();
    }
}

/// Each fixture keeps the component versions it was written with (the version byte follows the
/// four magic bytes in every component), so a regeneration that overwrote an older fixture
/// with today's bytes would fail here rather than silently drop the coverage of a format.
#[test]
fn each_sstable_fixture_keeps_its_component_versions() {
    let expected = [
        ("sstable-v1", [("Data.db", 1), ("Index.db", 1), ("Statistics.db", 1)]),
        ("sstable-v2", [("Data.db", 1), ("Index.db", 1), ("Statistics.db", 2)]),
        ("sstable-v3", [("Data.db", 1), ("Index.db", 2), ("Statistics.db", 2)]),
        ("sstable-v4", [("Data.db", 2), ("Index.db", 3), ("Statistics.db", 2)]),
        ("sstable-v5", [("Data.db", 3), ("Index.db", 4), ("Statistics.db", 3)]),
    ];
    for (sub, components) in expected {
        for (component, version) in components {
            let bytes = std::fs::read(fixture_dir().join(sub).join(format!("sib1-1-{component}"))).unwrap();
            assert_eq!(bytes[4], version, "{sub}/{component}");
        }
    }
}
