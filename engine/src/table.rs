//! A table inside the engine: its options (persisted in `table.meta`), its directory, and the
//! current view of its memtables and SSTables.
//!
//! ```text
//! table.meta := magic "SBTM" | version u8 (=1) | reserved [0;3] | table_id 16 bytes
//!               | keyspace:lenbytes | name:lenbytes | chunk_size u32le | row_index_block_bytes u32le
//!               | bloom_fp_chance f64le | gc_grace_seconds u32le | memtable_flush_size_bytes u64le
//!               | truncated_segment u64le | truncated_offset u32le            (version >= 2)
//!               | compaction_count varint | (key:lenbytes value:lenbytes)*   (version >= 3)
//!               | crc32 u32le of everything before
//! ```
//!
//! Versions 1 and 2 still open: as never truncated, and with the default compaction.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::codec::{crc32, put_len_prefixed, put_varint, DecodeError, DecodeResult, Reader};
use crate::commitlog::Position;
use crate::compaction::CompactionParams;
use crate::ids::TableId;
use crate::memtable::Memtable;
use crate::metrics::Histogram;
use crate::read::Sources;
use crate::sstable::{SsTable, WriterOptions};

const META_MAGIC: &[u8; 4] = b"SBTM";
/// Version 2 added `truncated_at`, version 3 the compaction options.
const META_VERSION: u8 = 3;
/// Most entries accepted in a stored compaction map.
const MAX_COMPACTION_OPTIONS: usize = 64;
/// File holding a table's options inside its directory.
pub const META_FILE: &str = "table.meta";

/// Per-table settings, named after Cassandra's table options where one exists.
#[derive(Debug, Clone, PartialEq)]
pub struct TableOptions {
    /// Table id.
    pub id: TableId,
    /// Keyspace name.
    pub keyspace: String,
    /// Table name.
    pub name: String,
    /// `compression = {'chunk_length_in_kb': ..}`, in bytes.
    pub chunk_size: u32,
    /// Row-index block size (`column_index_size`), in bytes.
    pub row_index_block_bytes: u32,
    /// `bloom_filter_fp_chance`.
    pub bloom_fp_chance: f64,
    /// `gc_grace_seconds`.
    pub gc_grace_seconds: u32,
    /// Flush the memtable once it holds this many bytes. The default (`u64::MAX`) sets no
    /// per-table limit: as in Cassandra, flushes are chosen by the node-wide
    /// `memtable_cleanup_threshold` of `memtable_heap_space`. A per-table limit of 64 MiB used to
    /// be the default; its small flushes cost a third more bytes written under leveled
    /// compaction (docs/benchmarks.md).
    pub memtable_flush_size_bytes: u64,
    /// Set by `TRUNCATE`: commit log records before this position belong to data that was
    /// truncated and are skipped at replay. Not a user option.
    pub truncated_at: Position,
    /// `compaction = {...}`: the strategy's class and options, as Cassandra names them
    /// (validated by [`CompactionParams::from_options`]).
    pub compaction: BTreeMap<String, String>,
}

impl TableOptions {
    /// Defaults for a new table (Cassandra's defaults where they exist).
    #[must_use]
    pub fn new(id: TableId, keyspace: &str, name: &str) -> TableOptions {
        TableOptions {
            id,
            keyspace: keyspace.to_string(),
            name: name.to_string(),
            chunk_size: 16 * 1024,
            row_index_block_bytes: 16 * 1024,
            bloom_fp_chance: 0.01,
            gc_grace_seconds: 864_000,
            memtable_flush_size_bytes: u64::MAX,
            truncated_at: Position::ZERO,
            compaction: CompactionParams::default().to_options(),
        }
    }

    /// The validated compaction settings (the default if the map were somehow invalid, which
    /// [`TableOptions::validate`] refuses).
    #[must_use]
    pub fn compaction_params(&self) -> CompactionParams {
        CompactionParams::from_options(&self.compaction).unwrap_or_default()
    }

    /// Checks values a user could have set badly.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = |s: &str| {
            !s.is_empty() && s.len() <= 48 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !name_ok(&self.keyspace) || !name_ok(&self.name) {
            return Err("keyspace and table names must be 1-48 characters of [A-Za-z0-9_]".into());
        }
        if !self.chunk_size.is_power_of_two()
            || self.chunk_size < 1024
            || self.chunk_size > crate::sstable::chunks::MAX_CHUNK_SIZE
        {
            return Err(format!(
                "chunk size {} must be a power of two between 1 KiB and 16 MiB",
                self.chunk_size
            ));
        }
        if self.row_index_block_bytes < 1024 {
            return Err("row index block size must be at least 1 KiB".into());
        }
        if !(self.bloom_fp_chance > 0.0 && self.bloom_fp_chance <= 1.0) {
            return Err(format!("bloom_filter_fp_chance {} must be in (0, 1]", self.bloom_fp_chance));
        }
        if self.memtable_flush_size_bytes < 1024 {
            return Err("memtable flush size must be at least 1 KiB".into());
        }
        if self.compaction.len() > MAX_COMPACTION_OPTIONS {
            return Err(format!("at most {MAX_COMPACTION_OPTIONS} compaction options are accepted"));
        }
        CompactionParams::from_options(&self.compaction).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// SSTable writer settings derived from these options.
    #[must_use]
    pub fn writer_options(&self) -> WriterOptions {
        WriterOptions {
            chunk_size: self.chunk_size,
            row_index_block_bytes: self.row_index_block_bytes,
            bloom_fp_chance: self.bloom_fp_chance,
            timestamp_base: 0,
        }
    }

    /// Directory of the table under `data_dir`: `<keyspace>/<table>-<id hex>`, like Cassandra.
    #[must_use]
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(&self.keyspace).join(format!("{}-{}", self.name, self.id.simple_hex()))
    }

    /// Encodes `table.meta`.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(META_MAGIC);
        out.extend_from_slice(&[META_VERSION, 0, 0, 0]);
        out.extend_from_slice(self.id.as_bytes());
        put_len_prefixed(&mut out, self.keyspace.as_bytes());
        put_len_prefixed(&mut out, self.name.as_bytes());
        out.extend_from_slice(&self.chunk_size.to_le_bytes());
        out.extend_from_slice(&self.row_index_block_bytes.to_le_bytes());
        out.extend_from_slice(&self.bloom_fp_chance.to_le_bytes());
        out.extend_from_slice(&self.gc_grace_seconds.to_le_bytes());
        out.extend_from_slice(&self.memtable_flush_size_bytes.to_le_bytes());
        out.extend_from_slice(&self.truncated_at.segment.0.to_le_bytes());
        out.extend_from_slice(&self.truncated_at.offset.to_le_bytes());
        put_varint(&mut out, self.compaction.len() as u64);
        for (k, v) in &self.compaction {
            put_len_prefixed(&mut out, k.as_bytes());
            put_len_prefixed(&mut out, v.as_bytes());
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and verifies `table.meta`.
    pub fn decode(bytes: &[u8]) -> DecodeResult<TableOptions> {
        if bytes.len() < 12 || &bytes[..4] != META_MAGIC {
            return Err(DecodeError { offset: 0, reason: "bad magic, not a table.meta file".into() });
        }
        let version = bytes[4];
        if !(1..=META_VERSION).contains(&version) {
            return Err(DecodeError {
                offset: 4,
                reason: format!("unsupported table.meta version {}", bytes[4]),
            });
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(DecodeError { offset: body.len(), reason: "table.meta checksum mismatch".into() });
        }
        let mut r = Reader::new(body);
        r.bytes(8)?;
        let mut id = [0u8; 16];
        id.copy_from_slice(r.bytes(16)?);
        let text = |r: &mut Reader<'_>| -> DecodeResult<String> {
            let b = r.len_prefixed(256)?;
            String::from_utf8(b.to_vec()).map_err(|_| r.error("name is not UTF-8"))
        };
        let keyspace = text(&mut r)?;
        let name = text(&mut r)?;
        let o = TableOptions {
            id: TableId(uuid::Uuid::from_bytes(id)),
            keyspace,
            name,
            chunk_size: r.u32()?,
            row_index_block_bytes: r.u32()?,
            bloom_fp_chance: f64::from_bits(r.u64()?),
            gc_grace_seconds: r.u32()?,
            memtable_flush_size_bytes: r.u64()?,
            truncated_at: if version >= 2 {
                Position { segment: crate::commitlog::SegmentId(r.u64()?), offset: r.u32()? }
            } else {
                Position::ZERO
            },
            compaction: if version >= 3 {
                let n = r.count(2)?;
                if n > MAX_COMPACTION_OPTIONS {
                    return Err(r.error(format!(
                        "{n} compaction options, at most {MAX_COMPACTION_OPTIONS} accepted"
                    )));
                }
                let mut m = BTreeMap::new();
                for _ in 0..n {
                    let k = text(&mut r)?;
                    let v = text(&mut r)?;
                    m.insert(k, v);
                }
                m
            } else {
                CompactionParams::default().to_options()
            },
        };
        if !r.is_empty() {
            return Err(r.error("trailing bytes in table.meta"));
        }
        o.validate().map_err(|reason| DecodeError { offset: 0, reason })?;
        Ok(o)
    }
}

/// The memtables and SSTables of a table at one moment. Replaced whole, never mutated.
#[derive(Debug, Clone)]
pub struct View {
    /// The memtable taking writes.
    pub memtable: Arc<Memtable>,
    /// Memtables being flushed, each with the commit log position it covers up to.
    pub flushing: Vec<(Arc<Memtable>, Position)>,
    /// Live SSTables, newest first.
    pub sstables: Vec<Arc<SsTable>>,
}

impl View {
    /// The read sources of this view.
    #[must_use]
    pub fn sources(&self) -> Sources {
        let mut memtables = vec![Arc::clone(&self.memtable)];
        memtables.extend(self.flushing.iter().map(|(m, _)| Arc::clone(m)));
        Sources { memtables, sstables: self.sstables.clone() }
    }
}

/// Counters kept per table.
#[derive(Debug, Default)]
pub struct TableCounters {
    /// Mutations applied.
    pub writes: AtomicU64,
    /// Partition reads served.
    pub reads: AtomicU64,
    /// Memtables flushed.
    pub flushes: AtomicU64,
    /// Bytes written by flushes.
    pub bytes_flushed: AtomicU64,
    /// Compactions completed (including whole-SSTable drops).
    pub compactions: AtomicU64,
    /// Bytes of input SSTables compactions have read (on disk).
    pub bytes_compacted: AtomicU64,
    /// Bytes of SSTables compactions have written.
    pub bytes_compaction_written: AtomicU64,
    /// Writes that were slowed down because compaction was behind.
    pub write_slowdowns: AtomicU64,
    /// Microseconds writers spent slowed down or stopped because compaction was behind.
    pub write_stall_micros: AtomicU64,
    /// SSTables consulted per partition read.
    pub sstables_per_read: Histogram,
    /// Tombstones met per partition read.
    pub tombstones_per_read: Histogram,
}

/// A table's live state inside the engine.
#[derive(Debug)]
pub struct Table {
    /// Table id.
    pub id: TableId,
    /// Keyspace name.
    pub keyspace: String,
    /// Table name.
    pub name: String,
    /// Current options (as in `table.meta`); changed by ALTER TABLE and TRUNCATE.
    options: RwLock<TableOptions>,
    /// Directory.
    pub dir: PathBuf,
    /// Current view. Writers hold the read lock while they log and apply a mutation, so a
    /// memtable switch (write lock) sees no write half done.
    pub view: RwLock<Arc<View>>,
    /// Serializes flushes of this table, and the commit of a compaction with TRUNCATE and DROP.
    pub flush_lock: Mutex<()>,
    /// Next SSTable generation.
    pub next_generation: AtomicU64,
    /// A flush request is queued.
    pub flush_queued: AtomicBool,
    /// Generations of the SSTables being compacted.
    pub compacting: Mutex<BTreeSet<u64>>,
    /// Above zero while a major compaction, truncate or drop keeps background compactions away.
    pub compaction_paused: AtomicUsize,
    /// Counters.
    pub counters: TableCounters,
}

impl Table {
    /// A table with an empty memtable over `sstables`.
    #[must_use]
    pub fn new(options: TableOptions, dir: PathBuf, sstables: Vec<Arc<SsTable>>, next: u64) -> Table {
        Table {
            id: options.id,
            keyspace: options.keyspace.clone(),
            name: options.name.clone(),
            options: RwLock::new(options),
            dir,
            view: RwLock::new(Arc::new(View {
                memtable: Arc::new(Memtable::new()),
                flushing: Vec::new(),
                sstables,
            })),
            flush_lock: Mutex::new(()),
            next_generation: AtomicU64::new(next),
            flush_queued: AtomicBool::new(false),
            compacting: Mutex::new(BTreeSet::new()),
            compaction_paused: AtomicUsize::new(0),
            counters: TableCounters::default(),
        }
    }

    /// Snapshot of the current view.
    #[must_use]
    pub fn current_view(&self) -> Arc<View> {
        Arc::clone(&self.view.read())
    }

    /// The current options.
    #[must_use]
    pub fn options(&self) -> TableOptions {
        self.options.read().clone()
    }

    /// `memtable_flush_size_bytes` without copying the options (the write path reads it).
    #[must_use]
    pub fn memtable_flush_size(&self) -> u64 {
        self.options.read().memtable_flush_size_bytes
    }

    /// Writer settings for a new SSTable of this table.
    #[must_use]
    pub fn writer_options(&self) -> WriterOptions {
        self.options.read().writer_options()
    }

    /// Replaces the options in memory (the caller has persisted them).
    pub fn set_options(&self, options: TableOptions) {
        *self.options.write() = options;
    }

    /// Reserves a generation number.
    pub fn allocate_generation(&self) -> crate::ids::Generation {
        crate::ids::Generation(self.next_generation.fetch_add(1, Ordering::Relaxed))
    }

    /// Writes `options` durably to `table.meta` (temporary file, fsync, rename, directory fsync).
    pub fn persist_options(dir: &Path, options: &TableOptions) -> crate::error::Result<()> {
        let tmp = dir.join(format!("{META_FILE}.tmp"));
        crate::sstable::writer::write_synced(&tmp, &options.encode())?;
        let meta = dir.join(META_FILE);
        std::fs::rename(&tmp, &meta).map_err(|e| crate::error::Error::io(&meta, e))?;
        crate::commitlog::sync_dir(dir)
    }
}
