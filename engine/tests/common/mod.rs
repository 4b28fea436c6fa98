//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::Path;

use bytes::Bytes;
use sibyl_engine::clustering::component;
use sibyl_engine::{
    Cell, ClusteringBuilder, ColumnId, DeletionTime, Engine, EngineOptions, LivenessInfo, Mutation, Order,
    PartitionData, PartitionUpdate, ReadCommand, Row, ScanCommand, ScanStart, Slice, SyncMode, TableId,
    TableOptions, Token,
};

pub const NOW: u32 = 1_700_000_000;

pub fn options(dir: &Path) -> EngineOptions {
    let mut o = EngineOptions::new(dir);
    o.commitlog_segment_size_bytes = 1 << 20;
    o.commitlog_sync = SyncMode::Batch;
    // Tombstones in these tests are written at NOW: a clock at NOW keeps gc_grace from passing.
    o.clock = std::sync::Arc::new(sibyl_engine::ManualClock::new(i64::from(NOW) * 1_000_000));
    o
}

pub fn table_options(id: TableId) -> TableOptions {
    let mut t = TableOptions::new(id, "ks", "t");
    t.chunk_size = 1024;
    t.row_index_block_bytes = 1024;
    t
}

pub fn open_with_table(dir: &Path) -> (Engine, TableId) {
    let engine = Engine::open(options(dir)).unwrap();
    let id = TableId(uuid::Uuid::from_u128(42));
    if engine.tables().is_empty() {
        engine.create_table(table_options(id)).unwrap();
    }
    (engine, id)
}

pub fn ck(i: i64) -> Bytes {
    let mut b = ClusteringBuilder::new();
    b.push(&component::i64(i), Order::Ascending);
    b.key()
}

pub fn ck_prefix(i: i64) -> ClusteringBuilder {
    let mut b = ClusteringBuilder::new();
    b.push(&component::i64(i), Order::Ascending);
    b
}

pub fn pk(i: u64) -> Bytes {
    Bytes::from(format!("pk{i:06}"))
}

pub fn put(table: TableId, key: Bytes, clustering: i64, column: u32, ts: i64, value: &str) -> Mutation {
    let mut row = Row::new(ck(clustering));
    row.add_cell(Cell::live(ColumnId(column), ts, Bytes::copy_from_slice(value.as_bytes())));
    Mutation { table, update: PartitionUpdate::new(key).with_row(row) }
}

pub fn insert(table: TableId, key: Bytes, clustering: i64, ts: i64, value: &str) -> Mutation {
    let mut m = put(table, key, clustering, 1, ts, value);
    m.update.rows[0].liveness = LivenessInfo::new(ts);
    m
}

pub fn delete_row(table: TableId, key: Bytes, clustering: i64, ts: i64) -> Mutation {
    let mut row = Row::new(ck(clustering));
    row.deletion = DeletionTime::new(ts, NOW);
    Mutation { table, update: PartitionUpdate::new(key).with_row(row) }
}

/// Visible (clustering, column 1 value) pairs of a partition.
pub fn visible(engine: &Engine, table: TableId, key: Bytes) -> Vec<(Bytes, String)> {
    let Some(p) = engine.read(&ReadCommand::partition(table, key, NOW)).unwrap() else { return Vec::new() };
    p.live_rows(NOW)
        .map(|r| {
            let v = r
                .cells
                .iter()
                .find(|c| c.column == ColumnId(1) && c.is_live(NOW))
                .map(|c| String::from_utf8_lossy(&c.value).into_owned())
                .unwrap_or_default();
            (r.clustering.clone(), v)
        })
        .collect()
}

/// Every partition of the table, read by a token scan in pages of `page` partitions.
pub fn scan_all(engine: &Engine, table: TableId, page: usize) -> Vec<PartitionData> {
    scan_all_at(engine, table, page, NOW)
}

/// [`scan_all`] reading at `now`.
pub fn scan_all_at(engine: &Engine, table: TableId, page: usize, now: u32) -> Vec<PartitionData> {
    let mut all = Vec::new();
    let mut start = ScanStart::TokenInclusive(Token::MIN);
    loop {
        let cmd = ScanCommand {
            table,
            start: start.clone(),
            end: Token::MAX,
            slices: vec![Slice::all()],
            partition_limit: page,
            row_limit: usize::MAX,
            now_seconds: now,
        };
        let got = engine.scan(&cmd).unwrap();
        let Some(last) = got.last() else { break };
        start = ScanStart::AfterKey(last.key.clone());
        all.extend(got);
    }
    all
}

/// Records in the version 3 commit log segments of `commitlog_dir`: (stored as they are, stored
/// lz4-compressed). Define records are not counted.
pub fn commit_log_records(commitlog_dir: &Path) -> (usize, usize) {
    use sibyl_engine::commitlog::segment::{self, kind, Frame};
    let (mut plain, mut compressed) = (0, 0);
    for (id, path) in segment::list_segments(commitlog_dir).unwrap() {
        let data = std::fs::read(path).unwrap();
        let Ok((version, _)) = segment::check_header(&data, id) else { continue };
        let mut offset = segment::header_bytes(version);
        while let Frame::Record { payload, next } = segment::read_frame(&data, offset, data.len(), version) {
            match payload[0] {
                kind::DEFINE => {}
                k if k & kind::COMPRESSED != 0 => compressed += 1,
                _ => plain += 1,
            }
            offset = next;
        }
    }
    (plain, compressed)
}
