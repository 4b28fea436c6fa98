//! fjall behind the benchmark's key-value interface (cargo feature `fjall`).
//!
//! Defaults (LZ4, leveled compaction), one keyspace. Without sync each insert writes its journal
//! entry to the OS (fjall's default, like RocksDB's WAL without sync); with sync each insert
//! is followed by `Database::persist(PersistMode::SyncData)`, fjall's durable acknowledgement.
//! fjall has no public flush: `Keyspace::rotate_memtable_and_wait` (public, doc-hidden) seals
//! the memtable and waits until it is written to a table.

use std::path::Path;

use anyhow::{Context, Result};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::store::{Durability, SeekOutcome, Store};

/// A fjall database with one keyspace `bench`.
pub struct FjallStore {
    db: Database,
    keyspace: Keyspace,
    sync: bool,
}

impl std::fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStore").field("path", &self.keyspace.path()).field("sync", &self.sync).finish()
    }
}

impl FjallStore {
    /// Opens a fresh database in `dir`.
    pub fn open(dir: &Path, durability: Durability) -> Result<FjallStore> {
        let db =
            Database::builder(dir).open().with_context(|| format!("opening fjall in {}", dir.display()))?;
        let keyspace =
            db.keyspace("bench", KeyspaceCreateOptions::default).context("opening fjall keyspace")?;
        Ok(FjallStore { db, keyspace, sync: durability != Durability::NoSync })
    }
}

impl Store for FjallStore {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.keyspace.insert(key, value).context("fjall insert")?;
        if self.sync {
            self.db.persist(PersistMode::SyncData).context("fjall persist")?;
        }
        Ok(())
    }

    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        match self.keyspace.get(key).context("fjall get")? {
            Some(v) => {
                out.clear();
                out.extend_from_slice(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn seek(&self, key: &[u8], n: usize) -> Result<SeekOutcome> {
        let mut outcome = SeekOutcome::default();
        for guard in self.keyspace.range(key..).take(n) {
            let (k, v) = guard.into_inner().context("fjall iterator")?;
            if outcome.entries == 0 {
                outcome.found_key = &*k == key;
            }
            outcome.entries += 1;
            outcome.bytes += k.len() + v.len();
        }
        Ok(outcome)
    }

    fn flush(&self) -> Result<()> {
        self.keyspace.rotate_memtable_and_wait().context("fjall flush")
    }

    fn engine_write_bytes(&self) -> Option<u64> {
        None
    }

    fn table_count(&self) -> Result<Option<u64>> {
        Ok(Some(self.keyspace.table_count() as u64))
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.persist(PersistMode::SyncAll).context("fjall persist at close")?;
        Ok(())
    }
}
