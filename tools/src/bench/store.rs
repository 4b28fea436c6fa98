//! The interface every benchmarked engine implements: a plain key-value store.

use std::path::Path;

use anyhow::{bail, Result};

use super::config::EngineKind;

/// How writes are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// WAL on, no per-write sync: Sibyl `SyncMode::Periodic { 10s }` (Cassandra's default),
    /// RocksDB and fjall with their WAL written to the OS on each write and never synced.
    NoSync,
    /// Each write acknowledged after an fsync covering it, concurrent writers sharing syncs:
    /// Sibyl `SyncMode::Group { 2ms }`, RocksDB `WriteOptions::set_sync(true)`, fjall
    /// `persist(PersistMode::SyncData)` after each insert.
    SyncGroup,
    /// Sibyl only: `SyncMode::Batch` (syncs back to back, no gathering window).
    SyncBatch,
}

impl Durability {
    /// Suffix for the benchmark name in reports ("" for the engine's main variant).
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Durability::NoSync | Durability::SyncGroup => "",
            Durability::SyncBatch => "[batch]",
        }
    }
}

/// What a seek found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeekOutcome {
    /// The sought key itself was among the entries returned.
    pub found_key: bool,
    /// Entries read.
    pub entries: usize,
    /// Key and value bytes read (so the reads cannot be optimised away).
    pub bytes: usize,
}

/// One engine under test. `&self` methods so fillsync can share it between threads.
pub trait Store: Send + Sync {
    /// Writes `key` = `value` with the durability the store was opened with.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Reads `key` into `out`; false if absent.
    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool>;

    /// Positions at `key` (or the next entry after it in the engine's order) and reads `n` entries.
    fn seek(&self, key: &[u8], n: usize) -> Result<SeekOutcome>;

    /// Writes memtables to on-disk tables and waits for it.
    fn flush(&self) -> Result<()>;

    /// Bytes the engine itself counts as written (WAL + flush + compaction), if it counts them.
    fn engine_write_bytes(&self) -> Option<u64>;

    /// On-disk tables (SSTables) the store has now, if it tells.
    fn table_count(&self) -> Result<Option<u64>>;

    /// Deletes `key` (the compaction workloads).
    fn delete(&self, _key: &[u8]) -> Result<()> {
        bail!("this engine does not run the compaction workloads")
    }

    /// Whether compactions are running or waiting to run now.
    fn compaction_busy(&self) -> Result<bool> {
        Ok(false)
    }

    /// Compacts all data (a major compaction) and waits for it.
    fn compact_all(&self) -> Result<()> {
        bail!("this engine does not run the compaction workloads")
    }

    /// Bytes written into on-disk tables (flushes and compactions, no commit log or WAL) since
    /// the store opened, as the engine counts them.
    fn table_write_bytes(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Bytes of the on-disk tables alone (no commit log or WAL), if the engine tells.
    fn table_bytes(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// On-disk tables consulted per point read since the store opened, as the engine counts it.
    fn tables_per_read(&self) -> Option<f64> {
        None
    }

    /// Closes the store, reporting errors that dropping would hide.
    fn close(self: Box<Self>) -> Result<()>;
}

/// Opens a fresh store of `kind` in `dir`.
/// Sibyl starts from `sibyl` (the node configuration's engine options).
pub fn open(
    kind: EngineKind,
    dir: &Path,
    durability: Durability,
    sibyl: &sibyl_engine::EngineOptions,
) -> Result<Box<dyn Store>> {
    open_with(kind, dir, durability, sibyl, None)
}

/// Opens a fresh store of `kind` in `dir`; Sibyl's table gets `compaction` (Cassandra's
/// compaction options) and gc_grace_seconds 0 when it is given.
pub fn open_with(
    kind: EngineKind,
    dir: &Path,
    durability: Durability,
    sibyl: &sibyl_engine::EngineOptions,
    compaction: Option<&std::collections::BTreeMap<String, String>>,
) -> Result<Box<dyn Store>> {
    if !kind.is_compiled_in() {
        bail!("engine {} needs the cargo feature `{}`", kind.name(), kind.feature().unwrap_or("?"));
    }
    match kind {
        EngineKind::Sibyl => {
            Ok(Box::new(super::sibyl::SibylStore::open(dir, durability, sibyl, compaction)?))
        }
        EngineKind::Rocksdb => open_rocksdb(dir, durability),
        EngineKind::Fjall => open_fjall(dir, durability),
    }
}

#[cfg(feature = "rocksdb")]
fn open_rocksdb(dir: &Path, durability: Durability) -> Result<Box<dyn Store>> {
    Ok(Box::new(super::rocks::RocksStore::open(dir, durability)?))
}

#[cfg(not(feature = "rocksdb"))]
fn open_rocksdb(_dir: &Path, _durability: Durability) -> Result<Box<dyn Store>> {
    bail!("engine rocksdb needs the cargo feature `rocksdb`")
}

#[cfg(feature = "fjall")]
fn open_fjall(dir: &Path, durability: Durability) -> Result<Box<dyn Store>> {
    Ok(Box::new(super::fjall::FjallStore::open(dir, durability)?))
}

#[cfg(not(feature = "fjall"))]
fn open_fjall(_dir: &Path, _durability: Durability) -> Result<Box<dyn Store>> {
    bail!("engine fjall needs the cargo feature `fjall`")
}
