//! RocksDB behind the benchmark's key-value interface (cargo feature `rocksdb`).
//!
//! Defaults as db_bench runs them, except LZ4 compression (the crate is built with LZ4 only,
//! to keep its build short, and Sibyl and fjall compress with LZ4 too). Statistics are on so
//! RocksDB's own count of written bytes can be reported next to the directory growth.

use std::path::Path;

use anyhow::{Context, Result};
use rocksdb::statistics::{Histogram, Ticker};
use rocksdb::{DBCompressionType, Options, WriteOptions, DB};

use super::store::{Durability, SeekOutcome, Store};

/// A RocksDB database with its options (kept for the statistics).
pub struct RocksStore {
    db: DB,
    options: Options,
    write_options: WriteOptions,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore").field("path", &self.db.path()).finish_non_exhaustive()
    }
}

impl RocksStore {
    /// Opens a fresh database in `dir`. Sync durabilities set `WriteOptions::set_sync(true)`;
    /// RocksDB groups concurrent syncing writers itself.
    pub fn open(dir: &Path, durability: Durability) -> Result<RocksStore> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_compression_type(DBCompressionType::Lz4);
        options.enable_statistics();
        let db = DB::open(&options, dir).with_context(|| format!("opening RocksDB in {}", dir.display()))?;
        let mut write_options = WriteOptions::default();
        write_options.set_sync(durability != Durability::NoSync);
        Ok(RocksStore { db, options, write_options })
    }
}

impl Store for RocksStore {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db.put_opt(key, value, &self.write_options).context("RocksDB put")
    }

    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        match self.db.get_pinned(key).context("RocksDB get")? {
            Some(v) => {
                out.clear();
                out.extend_from_slice(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn seek(&self, key: &[u8], n: usize) -> Result<SeekOutcome> {
        let mut it = self.db.raw_iterator();
        it.seek(key);
        let mut outcome = SeekOutcome::default();
        while outcome.entries < n {
            let (Some(k), Some(v)) = (it.key(), it.value()) else { break };
            if outcome.entries == 0 {
                outcome.found_key = k == key;
            }
            outcome.entries += 1;
            outcome.bytes += k.len() + v.len();
            it.next();
        }
        it.status().context("RocksDB iterator")?;
        Ok(outcome)
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().context("RocksDB flush")
    }

    fn engine_write_bytes(&self) -> Option<u64> {
        let t = |ticker| self.options.get_ticker_count(ticker);
        Some(t(Ticker::WalFileBytes) + t(Ticker::FlushWriteBytes) + t(Ticker::CompactWriteBytes))
    }

    fn table_count(&self) -> Result<Option<u64>> {
        Ok(Some(self.db.live_files().context("RocksDB live files")?.len() as u64))
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        self.db.delete_opt(key, &self.write_options).context("RocksDB delete")
    }

    fn compaction_busy(&self) -> Result<bool> {
        let p = |name: &str| -> Result<u64> {
            Ok(self.db.property_int_value(name).context("RocksDB property")?.unwrap_or(0))
        };
        Ok(p("rocksdb.compaction-pending")? > 0 || p("rocksdb.num-running-compactions")? > 0)
    }

    fn compact_all(&self) -> Result<()> {
        self.db.compact_range(None::<&[u8]>, None::<&[u8]>);
        Ok(())
    }

    fn table_write_bytes(&self) -> Result<Option<u64>> {
        let t = |ticker| self.options.get_ticker_count(ticker);
        Ok(Some(t(Ticker::FlushWriteBytes) + t(Ticker::CompactWriteBytes)))
    }

    fn table_bytes(&self) -> Result<Option<u64>> {
        let files = self.db.live_files().context("RocksDB live files")?;
        Ok(Some(files.iter().map(|f| f.size as u64).sum()))
    }

    fn tables_per_read(&self) -> Option<f64> {
        // RocksDB's own count of SST files read per level of each Get, summed over the Gets.
        let files = self.options.get_histogram_data(Histogram::NumSstReadPerLevel).sum();
        let gets = self.options.get_ticker_count(Ticker::NumberKeysRead);
        // Empty when RocksDB did not sample it: then it is not reported.
        (gets > 0 && files > 0).then(|| files as f64 / gets as f64)
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.flush_wal(true).context("RocksDB WAL sync at close")?;
        drop(self.db);
        Ok(())
    }
}
