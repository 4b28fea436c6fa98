//! Sibyl behind the benchmark's key-value interface.
//!
//! Mapping (Cassandra's `CREATE TABLE bench.kv (k blob PRIMARY KEY, v blob)`): each bench key
//! is one partition key; the partition holds one row (the empty clustering of a table without
//! clustering columns) with one cell, column 1 = the value, timestamped with a counter of
//! microseconds so a later write always wins. No row liveness marker is written.
//!
//! Partitions are placed by token (Murmur3 of the key), so there is no key order: seekrandom is
//! Cassandra's `SELECT * FROM kv WHERE token(k) >= token(?) LIMIT n`, an [`Engine::scan`] from
//! the sought key's token over the next `n` partitions in token order.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bytes::Bytes;
use sibyl_engine::clustering;
use sibyl_engine::{
    Cell, ColumnId, DeletionTime, Engine, EngineOptions, Mutation, PartitionUpdate, ReadCommand, Row,
    ScanCommand, ScanStart, Slice, SyncMode, TableId, TableOptions, Token,
};

use super::store::{Durability, SeekOutcome, Store};

/// The single regular column holding the value.
const VALUE_COLUMN: ColumnId = ColumnId(1);

/// Sibyl's engine with one table `bench.kv`.
#[derive(Debug)]
pub struct SibylStore {
    engine: Engine,
    table: TableId,
    next_timestamp_micros: AtomicI64,
    now_seconds: u32,
}

impl SibylStore {
    /// Opens a fresh engine in `dir` with the node configuration's settings (`base`), the
    /// bench's directories and the durability's sync mode, and creates the table.
    /// With `compaction`, the table uses those compaction options and gc_grace_seconds 0 (the
    /// compaction workloads compare tombstone purging with RocksDB, which has no grace period).
    pub fn open(
        dir: &Path,
        durability: Durability,
        base: &EngineOptions,
        compaction: Option<&BTreeMap<String, String>>,
    ) -> Result<SibylStore> {
        let mut options = base.clone();
        options.data_dir = dir.join("data");
        options.commitlog_dir = dir.join("commitlog");
        options.commitlog_sync = sync_mode(durability);
        let engine = Engine::open(options).with_context(|| format!("opening Sibyl in {}", dir.display()))?;
        let table = TableId::random();
        let mut options = TableOptions::new(table, "bench", "kv");
        if let Some(c) = compaction {
            options.compaction = c.clone();
            options.gc_grace_seconds = 0;
            // What CREATE TABLE gives a table of this strategy (0.1 for LCS, as Cassandra).
            if let Ok(params) = sibyl_engine::compaction::CompactionParams::from_options(c) {
                options.bloom_fp_chance = params.default_bloom_fp_chance();
            }
        }
        engine.create_table(options).context("creating table bench.kv")?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).context("system clock before 1970")?;
        let now_micros = i64::try_from(now.as_micros()).context("clock out of range")?;
        let now_seconds = u32::try_from(now.as_secs()).context("clock out of range")?;
        Ok(SibylStore { engine, table, next_timestamp_micros: AtomicI64::new(now_micros), now_seconds })
    }

    fn timestamp(&self) -> i64 {
        self.next_timestamp_micros.fetch_add(1, Ordering::Relaxed)
    }
}

/// The commit log sync mode used for each durability.
#[must_use]
pub fn sync_mode(durability: Durability) -> SyncMode {
    match durability {
        Durability::NoSync => SyncMode::Periodic { period: Duration::from_secs(10) },
        Durability::SyncGroup => SyncMode::Group { window: Duration::from_millis(2) },
        Durability::SyncBatch => SyncMode::Batch,
    }
}

impl Store for SibylStore {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut row = Row::new(clustering::empty_key());
        row.add_cell(Cell::live(VALUE_COLUMN, self.timestamp(), Bytes::copy_from_slice(value)));
        let update = PartitionUpdate::new(Bytes::copy_from_slice(key)).with_row(row);
        self.engine.apply(Mutation { table: self.table, update }).context("Sibyl apply")
    }

    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        let cmd = ReadCommand::partition(self.table, Bytes::copy_from_slice(key), self.now_seconds);
        let Some(partition) = self.engine.read(&cmd).context("Sibyl read")? else {
            return Ok(false);
        };
        let cell = partition
            .live_rows(self.now_seconds)
            .flat_map(|r| r.cells.iter())
            .find(|c| c.column == VALUE_COLUMN && c.is_live(self.now_seconds));
        match cell {
            Some(c) => {
                out.clear();
                out.extend_from_slice(&c.value);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn seek(&self, key: &[u8], n: usize) -> Result<SeekOutcome> {
        let token = Token::of_key(key);
        let cmd = ScanCommand {
            table: self.table,
            start: ScanStart::TokenInclusive(token),
            end: Token::MAX,
            slices: vec![Slice::all()],
            partition_limit: n,
            row_limit: usize::MAX,
            now_seconds: self.now_seconds,
        };
        let partitions = self.engine.scan(&cmd).context("Sibyl scan")?;
        let found_key = partitions.iter().take_while(|p| p.key.token == token).any(|p| p.key.key == key);
        let bytes = partitions
            .iter()
            .map(|p| {
                p.key.key.len() + p.rows.iter().flat_map(|r| &r.cells).map(|c| c.value.len()).sum::<usize>()
            })
            .sum();
        Ok(SeekOutcome { found_key, entries: partitions.len(), bytes })
    }

    fn flush(&self) -> Result<()> {
        self.engine.flush(self.table).context("Sibyl flush")
    }

    fn engine_write_bytes(&self) -> Option<u64> {
        None
    }

    fn table_count(&self) -> Result<Option<u64>> {
        let stats = self.engine.table_stats(self.table).context("Sibyl table stats")?;
        Ok(Some(stats.sstable_count as u64))
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        let mut update = PartitionUpdate::new(Bytes::copy_from_slice(key));
        update.header.deletion = DeletionTime::new(self.timestamp(), self.now_seconds);
        self.engine.apply(Mutation { table: self.table, update }).context("Sibyl delete")
    }

    fn compaction_busy(&self) -> Result<bool> {
        let pending = self.engine.table_stats(self.table).context("Sibyl table stats")?.pending_compactions;
        Ok(pending > 0 || !self.engine.active_compactions().is_empty())
    }

    fn compact_all(&self) -> Result<()> {
        self.engine.compact(self.table).context("Sibyl major compaction")
    }

    fn table_write_bytes(&self) -> Result<Option<u64>> {
        let stats = self.engine.table_stats(self.table).context("Sibyl table stats")?;
        Ok(Some(stats.bytes_flushed + stats.bytes_compaction_written))
    }

    fn table_bytes(&self) -> Result<Option<u64>> {
        Ok(Some(self.engine.table_stats(self.table).context("Sibyl table stats")?.live_disk_bytes))
    }

    fn tables_per_read(&self) -> Option<f64> {
        let stats = self.engine.table_stats(self.table).ok()?;
        Some(stats.sstables_per_read.mean_f64())
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.engine.close().context("closing Sibyl")
    }
}
