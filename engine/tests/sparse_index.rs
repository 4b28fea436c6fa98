//! The sparse `Index.db` (version 4): an SSTable of many small partitions over many small
//! chunks, with wide partitions among them, is found, sought and walked exactly as if every
//! partition had an entry, while the index holds about one entry per chunk.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use sibyl_engine::partition::{DecoratedKey, PartitionHeader};
use sibyl_engine::sstable::index::IndexCursor;
use sibyl_engine::sstable::{Descriptor, SsTable, SsTableRows, SsTableWriter, WriterOptions};
use sibyl_engine::{Cell, ColumnId, Generation, Row, Slice};

/// Partition `i` holds `rows(i)` rows; every 37th is wide (spans several row-index blocks).
fn rows(i: usize) -> usize {
    if i % 37 == 5 {
        60
    } else {
        1 + i % 3
    }
}

fn row(i: usize, r: usize) -> Row {
    let mut row = Row::new(ck(r as i64));
    row.add_cell(Cell::live(
        ColumnId(1),
        1_000 + i as i64,
        Bytes::from(format!("value {i}/{r} {}", "v".repeat(40))),
    ));
    row
}

/// Writes 600 partitions into 1 KiB chunks; returns the SSTable and its keys in order.
fn build(dir: &std::path::Path) -> (Arc<SsTable>, Vec<DecoratedKey>) {
    let mut keys: Vec<DecoratedKey> = (0..600u64).map(|i| DecoratedKey::new(pk(i))).collect();
    keys.sort();
    let desc = Descriptor { dir: dir.to_path_buf(), generation: Generation(1) };
    let options = WriterOptions {
        chunk_size: 1024,
        row_index_block_bytes: 1024,
        bloom_fp_chance: 0.01,
        timestamp_base: 1_000,
    };
    let mut w = SsTableWriter::create(desc.clone(), options).unwrap();
    for (i, k) in keys.iter().enumerate() {
        w.begin_partition(k, &PartitionHeader::default()).unwrap();
        for r in 0..rows(i) {
            w.add_row(&row(i, r)).unwrap();
        }
        w.end_partition().unwrap();
    }
    w.finish(sibyl_engine::commitlog::Position::ZERO, 0).unwrap();
    (Arc::new(SsTable::open(desc).unwrap()), keys)
}

fn rows_of(s: &Arc<SsTable>, entry: &sibyl_engine::sstable::index::IndexEntry) -> Vec<Row> {
    let (_, cursor) = s.read_header(entry).unwrap();
    let mut it = SsTableRows::new(cursor, entry.clone(), Slice::all(), false);
    let mut out = Vec::new();
    while let Some(r) = it.next_row().unwrap() {
        out.push(r);
    }
    out
}

#[test]
fn a_sparse_index_finds_seeks_and_walks_every_partition() {
    let dir = tempfile::tempdir().unwrap();
    let (s, keys) = build(dir.path());
    let index = std::fs::read(s.descriptor().path(sibyl_engine::sstable::Component::Index)).unwrap();
    assert_eq!(index[4], 4, "Index.db version 4");
    let chunks = s.stats().uncompressed_bytes.div_ceil(1024);
    let wide = (0..keys.len()).filter(|i| rows(*i) == 60).count() as u64;
    // An entry is 28 bytes for these keys, plus the row index of a wide partition (a few
    // blocks of about 30 bytes): one entry per chunk and per wide partition, not per partition.
    let bound = 28 * (chunks + wide + 1) + 200 * wide + 12;
    assert!(
        index.len() as u64 <= bound,
        "{} bytes of index for {chunks} chunks and {wide} wide partitions",
        index.len()
    );
    let dense = 28 * keys.len() as u64 + 200 * wide;
    assert!(
        (index.len() as u64) < dense / 2,
        "{} bytes against about {dense} for a dense index",
        index.len()
    );

    // Point lookups: every partition, with its rows and its row index if it is wide.
    for (i, k) in keys.iter().enumerate() {
        let entry = s.find(k).unwrap().unwrap_or_else(|| panic!("partition {i} not found"));
        assert_eq!(entry.key, *k);
        assert_eq!(entry.blocks.len() >= 2, rows(i) == 60, "partition {i}: row index");
        let got = rows_of(&s, &entry);
        assert_eq!(got.len(), rows(i), "partition {i}");
        assert_eq!(got[0], row(i, 0));
    }
    // Keys that are not there, in between the others.
    for i in 600..900u64 {
        assert_eq!(s.find(&DecoratedKey::new(pk(i))).unwrap(), None, "pk {i}");
    }

    // A walk from the start gives every partition once, in order, contiguous in the stream.
    let walked = s.keys().unwrap();
    assert_eq!(walked, keys);
    let mut cursor = s.seek(Bound::Unbounded).unwrap();
    let mut chunk = None;
    let mut end = 0;
    let mut n = 0;
    while let Some((entry, next)) = s.entry_at(cursor, &mut chunk, false).unwrap() {
        assert_eq!(entry.position, end, "partition {n} follows the one before");
        assert_eq!(entry.key, keys[n]);
        end = entry.position + entry.length;
        cursor = next;
        n += 1;
    }
    assert_eq!((n, end), (keys.len(), s.stats().uncompressed_bytes));

    // Seeks land on the first partition inside the bound, whether or not it has an entry.
    let first_at = |cursor: IndexCursor| s.entry_at(cursor, &mut None, false).unwrap().map(|(e, _)| e.key);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(first_at(s.seek(Bound::Included(k)).unwrap()), Some(k.clone()), "included {i}");
        assert_eq!(first_at(s.seek(Bound::Excluded(k)).unwrap()), keys.get(i + 1).cloned(), "excluded {i}");
    }
    for i in 600..700u64 {
        let k = DecoratedKey::new(pk(i));
        let expected = keys.iter().find(|x| **x > k).cloned();
        assert_eq!(first_at(s.seek(Bound::Included(&k)).unwrap()), expected, "absent pk {i}");
    }
    assert_eq!(s.partition_sizes().count(), keys.len() as u64, "sizes come from the statistics");
}
