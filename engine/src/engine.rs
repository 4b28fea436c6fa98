//! The engine: one per node. Owns the commit log, every table, the flush thread and the
//! memtable memory budget.
//!
//! Write path ([`Engine::apply`]): validate, encode, wait for memtable memory if flushing is
//! behind, then under the table's view read-lock append to the commit log and apply to the
//! active memtable; release the lock; wait for the sync mode's durability; ask for a flush if
//! the memtable is full.
//!
//! Flush ([`Engine::flush`] or the flush thread): switch the memtable under the view write lock,
//! recording the commit log position; write an SSTable from the old memtable; publish it in a new
//! view; tell the commit log the table is clean up to that position so old segments are deleted.
//!
//! Open ([`Engine::open`]): load every table's options and SSTables (deleting SSTables whose TOC
//! is missing), replay the commit log into memtables, skipping records older than each table's
//! newest flushed position, flush what was replayed, delete the replayed segments and start a
//! new log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::cache::{CacheStats, Caches};
use crate::clock::{Clock, SystemClock};
use crate::clustering::KEY_END;
use crate::commitlog::replay::{self, ReplayReport};
use crate::commitlog::{self, CommitLog, CommitLogOptions, Position, SegmentId, SyncMode};
use crate::compactor::{self, CompactionInfo, Compactor};
use crate::error::{Error, Result};
use crate::ids::TableId;
use crate::memtable::{MemEntry, Memtable};
use crate::metrics::HistogramSnapshot;
use crate::partition::{DecoratedKey, PartitionData, PartitionHeader, MAX_PARTITION_KEY_BYTES};
use crate::read::{self, ReadCommand, ScanCommand};
use crate::serialization::Mutation;
use crate::sstable::writer::write_synced;
use crate::sstable::{Component, Descriptor, SsTable, SsTableWriter};
use crate::table::{Table, TableOptions, View, META_FILE};

/// Bounded depth of the flush request queue.
const FLUSH_QUEUE_DEPTH: usize = 1024;
/// How often the flush thread checks commit log space when idle.
const FLUSH_THREAD_TICK: Duration = Duration::from_millis(250);

/// Node-wide engine settings (cassandra.yaml keys in parentheses).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where tables live (`data_file_directories`, first entry).
    pub data_dir: PathBuf,
    /// Where the commit log lives (`commitlog_directory`).
    pub commitlog_dir: PathBuf,
    /// `commitlog_sync` with its period or window.
    pub commitlog_sync: SyncMode,
    /// `commitlog_segment_size`.
    pub commitlog_segment_size_bytes: u32,
    /// `commitlog_compression` (LZ4Compressor): records lz4-compressed when that shrinks them.
    pub commitlog_compression: bool,
    /// `commitlog_total_space`: flush the tables pinning the oldest segment beyond this.
    pub commitlog_total_space_bytes: u64,
    /// `commitlog_ignore_replay_errors` (Cassandra's `cassandra.commitlog.ignorereplayerrors`).
    pub commitlog_ignore_replay_errors: bool,
    /// `memtable_heap_space`: memtable bytes (active plus flushing) beyond which writers wait.
    pub memtable_space_bytes: usize,
    /// `memtable_cleanup_threshold`: fraction of the space at which the largest memtable is
    /// flushed.
    pub memtable_cleanup_threshold: f64,
    /// `file_cache_size`: memory for decompressed SSTable chunks (0 disables the cache).
    pub chunk_cache_bytes: usize,
    /// `key_cache_size`: memory for partition index entries (0 disables the cache).
    pub key_cache_bytes: usize,
    /// `concurrent_compactors`: background compaction threads (0: no background compaction;
    /// major compactions still run).
    pub concurrent_compactors: usize,
    /// `compaction_throughput`: input bytes per second all compactions together may read
    /// (0: unlimited).
    pub compaction_throughput_bytes_per_sec: u64,
    /// Writers to a table are slowed down once its backlog (see
    /// [`compactor::backlog_sstables`]) passes this many SSTables ...
    pub sstable_slowdown_trigger: usize,
    /// ... and wait for compaction once it reaches this many.
    pub sstable_stop_trigger: usize,
    /// The clock deciding TTL expiry and gc_grace in compaction.
    pub clock: Arc<dyn Clock>,
}

impl EngineOptions {
    /// Defaults rooted at `dir` (`dir/data`, `dir/commitlog`), Cassandra's defaults otherwise.
    #[must_use]
    pub fn new(dir: &Path) -> EngineOptions {
        EngineOptions {
            data_dir: dir.join("data"),
            commitlog_dir: dir.join("commitlog"),
            commitlog_sync: SyncMode::Periodic { period: Duration::from_secs(10) },
            commitlog_segment_size_bytes: 32 << 20,
            commitlog_compression: false,
            commitlog_total_space_bytes: 8 << 30,
            commitlog_ignore_replay_errors: false,
            memtable_space_bytes: 512 << 20,
            memtable_cleanup_threshold: 0.33,
            chunk_cache_bytes: 256 << 20,
            key_cache_bytes: 100 << 20,
            concurrent_compactors: 2,
            compaction_throughput_bytes_per_sec: 64 << 20,
            sstable_slowdown_trigger: 32,
            sstable_stop_trigger: 64,
            clock: Arc::new(SystemClock),
        }
    }
}

/// What [`Engine::table_stats`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStats {
    /// Live SSTables.
    pub sstable_count: usize,
    /// Bytes of their files.
    pub live_disk_bytes: u64,
    /// Bytes in memtables (active and flushing).
    pub memtable_bytes: usize,
    /// Entries in the active memtable.
    pub memtable_entries: usize,
    /// Partitions in SSTables (duplicates across SSTables counted once per SSTable).
    pub sstable_partitions: u64,
    /// Mutations applied since open.
    pub writes: u64,
    /// Partition reads since open.
    pub reads: u64,
    /// Flushes since open.
    pub flushes: u64,
    /// Bytes of SSTables written by flushes since open.
    pub bytes_flushed: u64,
    /// Live SSTables per level (index = level; STCS and TWCS keep everything at level 0).
    pub sstables_per_level: Vec<usize>,
    /// Estimated compactions still to do (`nodetool compactionstats` pending tasks).
    pub pending_compactions: usize,
    /// Compactions completed since open.
    pub compactions: u64,
    /// On-disk bytes of SSTables compactions read since open.
    pub bytes_compacted: u64,
    /// Bytes of SSTables compactions wrote since open.
    pub bytes_compaction_written: u64,
    /// Writes slowed down or stopped because compaction was behind, and the total time they
    /// waited in microseconds.
    pub write_slowdowns: u64,
    /// See `write_slowdowns`.
    pub write_stall_micros: u64,
    /// Uncompressed partition sizes in the live SSTables (a partition in several SSTables counts
    /// once per SSTable).
    pub partition_size: HistogramSnapshot,
    /// Cells per partition in the live SSTables.
    pub cells_per_partition: HistogramSnapshot,
    /// SSTables consulted per partition read since open.
    pub sstables_per_read: HistogramSnapshot,
    /// Tombstones met per partition read since open.
    pub tombstones_per_read: HistogramSnapshot,
    /// Tombstones the live SSTables hold that could be purged now (estimate).
    pub droppable_tombstones: u64,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) options: EngineOptions,
    commit_log: CommitLog,
    pub(crate) tables: RwLock<HashMap<TableId, Arc<Table>>>,
    memtable_bytes: AtomicUsize,
    pub(crate) caches: Caches,
    memory_lock: Mutex<()>,
    memory_freed: Condvar,
    flush_tx: Mutex<Option<SyncSender<TableId>>>,
    pub(crate) closed: AtomicBool,
    write_stalls: AtomicU64,
    pub(crate) compactor: Compactor,
}

/// The storage engine of one node. Every method is synchronous and may block on disk I/O:
/// call it from a blocking thread pool, never from an async worker.
#[derive(Debug)]
pub struct Engine {
    inner: Arc<Inner>,
    flush_thread: Mutex<Option<JoinHandle<()>>>,
    compaction_threads: Mutex<Vec<JoinHandle<()>>>,
    replay: ReplayReport,
    replayed_mutations: u64,
}

impl Engine {
    /// Opens the engine: loads tables, replays the commit log, starts background threads.
    pub fn open(options: EngineOptions) -> Result<Engine> {
        assert!(options.memtable_cleanup_threshold > 0.0 && options.memtable_cleanup_threshold <= 1.0);
        for d in [&options.data_dir, &options.commitlog_dir] {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let caches = Caches::new(options.chunk_cache_bytes, options.key_cache_bytes);
        let tables = load_tables(&options.data_dir, &caches)?;
        let mut flushed: HashMap<TableId, Position> = HashMap::new();
        for (id, t) in &tables {
            let upto = t.current_view().sstables.iter().map(|s| s.stats().commitlog_upper).max();
            flushed.insert(*id, upto.unwrap_or(Position::ZERO).max(t.options().truncated_at));
        }
        let mut skipped_records = 0u64;
        let report = replay::replay(
            &options.commitlog_dir,
            options.commitlog_ignore_replay_errors,
            |pos, mutations| {
                let mut applied = false;
                for m in mutations {
                    let Some(t) = tables.get(&m.table) else {
                        continue; // the table was dropped
                    };
                    if flushed.get(&m.table).is_some_and(|upto| pos < *upto) {
                        continue; // already in an SSTable
                    }
                    let dk = DecoratedKey::new(m.update.key.clone());
                    t.current_view().memtable.apply(&dk, m.update);
                    applied = true;
                }
                if !applied {
                    skipped_records += 1;
                }
                Ok(())
            },
        )?;
        if report.segments > 0 {
            tracing::info!(
                segments = report.segments, replayed = report.records - skipped_records, skipped = skipped_records,
                torn_tail = ?report.torn_tail, damaged = report.skipped.len(), "commit log replayed"
            );
        }
        let first_segment = SegmentId(report.last_segment.map_or(1, |s| s.0 + 1));
        let log_options = CommitLogOptions {
            dir: options.commitlog_dir.clone(),
            segment_size_bytes: options.commitlog_segment_size_bytes,
            sync: options.commitlog_sync,
            compression: options.commitlog_compression,
            timestamp_base: options.clock.now_micros(),
        };
        let old_segments = commitlog::segment::list_segments(&options.commitlog_dir)
            .map_err(|e| Error::io(&options.commitlog_dir, e))?;
        let commit_log = CommitLog::open(log_options, first_segment)?;
        let compactor = Compactor::new(options.compaction_throughput_bytes_per_sec);
        let inner = Arc::new(Inner {
            compactor,
            options,
            commit_log,
            tables: RwLock::new(tables),
            memtable_bytes: AtomicUsize::new(0),
            caches,
            memory_lock: Mutex::new(()),
            memory_freed: Condvar::new(),
            flush_tx: Mutex::new(None),
            closed: AtomicBool::new(false),
            write_stalls: AtomicU64::new(0),
        });
        // Everything replayed goes to SSTables now, so the replayed segments can go.
        let replayed_upto = Position { segment: first_segment, offset: 0 };
        let tables: Vec<Arc<Table>> = inner.tables.read().values().cloned().collect();
        for t in tables {
            let m = t.current_view().memtable.size_bytes();
            inner.memtable_bytes.fetch_add(m, Ordering::Relaxed);
            if m > 0 {
                flush_table(&inner, &t, Some(replayed_upto))?;
            }
        }
        for (id, path) in old_segments {
            if id < first_segment {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        commitlog::sync_dir(&inner.options.commitlog_dir)?;
        let (tx, rx) = mpsc::sync_channel(FLUSH_QUEUE_DEPTH);
        *inner.flush_tx.lock() = Some(tx);
        let thread_inner = Arc::clone(&inner);
        let handle = std::thread::Builder::new()
            .name("memtable-flush".into())
            .spawn(move || flush_loop(&thread_inner, &rx))
            .map_err(|e| Error::io("memtable-flush thread", e))?;
        let mut compaction_threads = Vec::new();
        for i in 0..inner.options.concurrent_compactors {
            let thread_inner = Arc::clone(&inner);
            let handle = std::thread::Builder::new()
                .name(format!("compaction-{i}"))
                .spawn(move || compactor::worker_loop(&thread_inner))
                .map_err(|e| Error::io("compaction thread", e))?;
            compaction_threads.push(handle);
        }
        let ids: Vec<TableId> = inner.tables.read().keys().copied().collect();
        for id in ids {
            inner.compactor.request(id);
        }
        let replayed_mutations = report.records - skipped_records;
        Ok(Engine {
            inner,
            flush_thread: Mutex::new(Some(handle)),
            compaction_threads: Mutex::new(compaction_threads),
            replay: report,
            replayed_mutations,
        })
    }

    /// What the commit log replay at open found.
    #[must_use]
    pub fn replay_report(&self) -> &ReplayReport {
        &self.replay
    }

    /// Mutations the replay at open applied (records already flushed or of dropped tables are
    /// not counted).
    #[must_use]
    pub fn replayed_mutations(&self) -> u64 {
        self.replayed_mutations
    }

    /// The options the engine runs with.
    #[must_use]
    pub fn options(&self) -> &EngineOptions {
        &self.inner.options
    }

    /// Creates a table (durably: its options are fsynced before this returns).
    pub fn create_table(&self, options: TableOptions) -> Result<()> {
        options.validate().map_err(Error::InvalidRequest)?;
        let mut tables = self.inner.tables.write();
        if tables.contains_key(&options.id) {
            return Err(Error::TableExists(options.id));
        }
        let dir = options.dir(&self.inner.options.data_dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let tmp = dir.join(format!("{META_FILE}.tmp"));
        write_synced(&tmp, &options.encode())?;
        let meta = dir.join(META_FILE);
        std::fs::rename(&tmp, &meta).map_err(|e| Error::io(&meta, e))?;
        commitlog::sync_dir(&dir)?;
        if let Some(parent) = dir.parent() {
            commitlog::sync_dir(parent)?;
        }
        commitlog::sync_dir(&self.inner.options.data_dir)?;
        let table = Table::new(options, dir, Vec::new(), 1);
        tables.insert(table.id, Arc::new(table));
        Ok(())
    }

    /// Drops a table and deletes its files.
    pub fn drop_table(&self, id: TableId) -> Result<()> {
        let table = self.inner.tables.write().remove(&id).ok_or(Error::UnknownTable(id))?;
        table.compaction_paused.fetch_add(1, Ordering::AcqRel);
        self.inner.compactor.stop(Some(id));
        let _flush = table.flush_lock.lock();
        let freed: usize = {
            let v = table.view.read();
            v.memtable.size_bytes() + v.flushing.iter().map(|(m, _)| m.size_bytes()).sum::<usize>()
        };
        release_memory(&self.inner, freed);
        self.inner.commit_log.forget_table(id)?;
        // Forget the table durably first: a crash while deleting its files then leaves a
        // directory without table.meta, which open ignores, never a half-deleted live table.
        let meta = table.dir.join(META_FILE);
        std::fs::remove_file(&meta).map_err(|e| Error::io(&meta, e))?;
        commitlog::sync_dir(&table.dir)?;
        std::fs::remove_dir_all(&table.dir).map_err(|e| Error::io(&table.dir, e))?;
        Ok(())
    }

    /// Truncates a table: every row written before this call is gone, durably; the table stays.
    ///
    /// The commit log position at the start is recorded in `table.meta` (so replay skips older
    /// records, and SSTables that hold only older data are deleted at open if a crash interrupts
    /// this), then the memtables and SSTables leave the table and their files are deleted.
    pub fn truncate(&self, id: TableId) -> Result<()> {
        let table = self.table(id)?;
        self.inner.compactor.stop(Some(id));
        let _flush = table.flush_lock.lock();
        let position = self.inner.commit_log.current_position();
        let old = {
            let mut view = table.view.write();
            let old = Arc::clone(&view);
            *view = Arc::new(View {
                memtable: Arc::new(Memtable::new()),
                flushing: Vec::new(),
                sstables: Vec::new(),
            });
            old
        };
        let mut options = table.options();
        options.truncated_at = position;
        Table::persist_options(&table.dir, &options)?;
        table.set_options(options);
        for s in &old.sstables {
            s.descriptor().delete_files().map_err(|e| Error::io(&table.dir, e))?;
        }
        commitlog::sync_dir(&table.dir)?;
        let freed =
            old.memtable.size_bytes() + old.flushing.iter().map(|(m, _)| m.size_bytes()).sum::<usize>();
        release_memory(&self.inner, freed);
        self.inner.commit_log.mark_flushed(id, position)?;
        tracing::info!(keyspace = %table.keyspace, table = %table.name, sstables = old.sstables.len(), "table truncated");
        Ok(())
    }

    /// Statistics of the chunk cache (hits, misses, size).
    #[must_use]
    pub fn chunk_cache_stats(&self) -> CacheStats {
        self.inner.caches.chunks.stats()
    }

    /// Statistics of the key cache (hits, misses, size).
    #[must_use]
    pub fn key_cache_stats(&self) -> CacheStats {
        self.inner.caches.keys.stats()
    }

    /// Options of every table.
    #[must_use]
    pub fn tables(&self) -> Vec<TableOptions> {
        let mut v: Vec<TableOptions> = self.inner.tables.read().values().map(|t| t.options()).collect();
        v.sort_by(|a, b| (&a.keyspace, &a.name).cmp(&(&b.keyspace, &b.name)));
        v
    }

    /// Options of one table, if it exists.
    #[must_use]
    pub fn table_options(&self, id: TableId) -> Option<TableOptions> {
        self.inner.tables.read().get(&id).map(|t| t.options())
    }

    fn table(&self, id: TableId) -> Result<Arc<Table>> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.inner.tables.read().get(&id).cloned().ok_or(Error::UnknownTable(id))
    }

    /// Applies a mutation: logged, applied to the memtable, and durable per the sync mode when
    /// this returns.
    pub fn apply(&self, mutation: Mutation) -> Result<()> {
        let table = self.table(mutation.table)?;
        validate(&mutation)?;
        let mut payload = Vec::with_capacity(64 + mutation.update.size_bytes());
        let base = crate::serialization::encode_update(&mutation.update, &mut payload);
        self.wait_for_compaction(&table)?;
        self.wait_for_memory()?;
        let dk = DecoratedKey::new(mutation.update.key.clone());
        let (appended, memtable_size) = {
            let view = table.view.read();
            let appended = self.inner.commit_log.append(table.id, base, &payload)?;
            let delta = view.memtable.apply(&dk, mutation.update);
            account_memory(&self.inner, delta);
            (appended, view.memtable.size_bytes())
        };
        table.counters.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.commit_log.wait_durable(appended.end)?;
        let total = self.inner.memtable_bytes.load(Ordering::Relaxed) as f64;
        let cleanup =
            self.inner.options.memtable_space_bytes as f64 * self.inner.options.memtable_cleanup_threshold;
        if memtable_size as u64 >= table.memtable_flush_size() {
            request_flush(&self.inner, &table);
        } else if total >= cleanup {
            if let Some(largest) = largest_memtable(&self.inner) {
                request_flush(&self.inner, &largest);
            }
        }
        Ok(())
    }

    /// Applies several mutations atomically: they are logged as one commit log record, so after
    /// a crash replay finds all of them or none (Cassandra's logged batch guarantee), and they
    /// enter the memtables while no flush can split them.
    pub fn apply_batch(&self, mutations: Vec<Mutation>) -> Result<()> {
        if mutations.len() <= 1 {
            return mutations.into_iter().try_for_each(|m| self.apply(m));
        }
        if mutations.len() > crate::serialization::MAX_BATCH_MUTATIONS {
            return Err(Error::InvalidRequest(format!(
                "batch of {} mutations exceeds {}",
                mutations.len(),
                crate::serialization::MAX_BATCH_MUTATIONS
            )));
        }
        let mut tables: Vec<Arc<Table>> = Vec::new();
        for m in &mutations {
            validate(m)?;
            if !tables.iter().any(|t| t.id == m.table) {
                tables.push(self.table(m.table)?);
            }
        }
        // A fixed lock order (by table id) so two batches never wait on each other's locks.
        tables.sort_by_key(|t| t.id);
        let ids: Vec<TableId> = tables.iter().map(|t| t.id).collect();
        let mut payload =
            Vec::with_capacity(64 + mutations.iter().map(|m| m.update.size_bytes() + 32).sum::<usize>());
        crate::serialization::encode_batch(&mutations, &mut payload);
        for t in &tables {
            self.wait_for_compaction(t)?;
        }
        self.wait_for_memory()?;
        let appended = {
            let views: Vec<_> = tables.iter().map(|t| t.view.read()).collect();
            let appended = self.inner.commit_log.append_for(&ids, &payload)?;
            for m in mutations {
                let i = ids.binary_search(&m.table).map_err(|_| Error::UnknownTable(m.table))?;
                let dk = DecoratedKey::new(m.update.key.clone());
                let delta = views[i].memtable.apply(&dk, m.update);
                account_memory(&self.inner, delta);
                tables[i].counters.writes.fetch_add(1, Ordering::Relaxed);
            }
            appended
        };
        self.inner.commit_log.wait_durable(appended.end)?;
        for t in &tables {
            if t.current_view().memtable.size_bytes() as u64 >= t.memtable_flush_size() {
                request_flush(&self.inner, t);
            }
        }
        Ok(())
    }

    /// Write back-pressure from compaction: past `sstable_slowdown_trigger` backlog SSTables a
    /// write sleeps a millisecond per SSTable over (at most 50 ms); at `sstable_stop_trigger` it
    /// waits until compaction brings the backlog down. Tables whose background compaction is
    /// disabled are not held back (nothing would ever release them).
    fn wait_for_compaction(&self, table: &Table) -> Result<()> {
        let o = &self.inner.options;
        if o.concurrent_compactors == 0 || o.sstable_slowdown_trigger == 0 {
            return Ok(());
        }
        let backlog = |params: &crate::compaction::CompactionParams| {
            compactor::backlog_sstables(params, &table.current_view().sstables)
        };
        if table.current_view().sstables.len() <= o.sstable_slowdown_trigger {
            return Ok(()); // the common case, without parsing the options
        }
        let params = table.options().compaction_params();
        let n = backlog(&params);
        if !params.enabled
            || n <= o.sstable_slowdown_trigger
            || table.compaction_paused.load(Ordering::Acquire) > 0
        {
            return Ok(());
        }
        let started = std::time::Instant::now();
        table.counters.write_slowdowns.fetch_add(1, Ordering::Relaxed);
        self.inner.compactor.request(table.id);
        if n < o.sstable_stop_trigger {
            let over = (n - o.sstable_slowdown_trigger).min(50) as u64;
            std::thread::sleep(Duration::from_millis(over));
        } else {
            tracing::debug!(keyspace = %table.keyspace, table = %table.name, sstables = n, "writes wait for compaction (sstable_stop_trigger reached)");
            let mut g = self.inner.compactor.finished_lock.lock();
            while backlog(&params) >= o.sstable_stop_trigger {
                if self.inner.closed.load(Ordering::Acquire) {
                    return Err(Error::Closed);
                }
                if table.compaction_paused.load(Ordering::Acquire) > 0 {
                    break;
                }
                self.inner.compactor.finished.wait_for(&mut g, Duration::from_millis(100));
            }
        }
        let waited = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        table.counters.write_stall_micros.fetch_add(waited, Ordering::Relaxed);
        Ok(())
    }

    fn wait_for_memory(&self) -> Result<()> {
        let limit = self.inner.options.memtable_space_bytes;
        if self.inner.memtable_bytes.load(Ordering::Relaxed) < limit {
            return Ok(());
        }
        self.inner.write_stalls.fetch_add(1, Ordering::Relaxed);
        let mut guard = self.inner.memory_lock.lock();
        while self.inner.memtable_bytes.load(Ordering::Relaxed) >= limit {
            if self.inner.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            if self.inner.commit_log.is_poisoned() {
                return self.inner.commit_log.wait_durable(Position::ZERO);
            }
            if let Some(largest) = largest_memtable(&self.inner) {
                request_flush(&self.inner, &largest);
            }
            self.inner.memory_freed.wait_for(&mut guard, Duration::from_millis(100));
        }
        Ok(())
    }

    /// Reads one partition (see [`crate::read`]). `None` if no data at all exists for it.
    pub fn read(&self, cmd: &ReadCommand) -> Result<Option<PartitionData>> {
        let table = self.table(cmd.table)?;
        if cmd.key.is_empty() || cmd.key.len() > MAX_PARTITION_KEY_BYTES {
            return Err(Error::InvalidRequest("partition key must be 1 to 65535 bytes".into()));
        }
        let key = DecoratedKey::new(cmd.key.clone());
        table.counters.reads.fetch_add(1, Ordering::Relaxed);
        let sources = table.current_view().sources();
        let (data, sstables) = read::read_partition_counted(
            &sources,
            &key,
            &cmd.slices,
            cmd.reversed,
            cmd.row_limit,
            cmd.now_seconds,
        )?;
        table.counters.sstables_per_read.record(sstables as u64);
        let tombstones = data.as_ref().map_or(0, |p| p.tombstone_count(cmd.now_seconds));
        table.counters.tombstones_per_read.record(tombstones as u64);
        Ok(data)
    }

    /// Scans partitions in token order (for range queries, repair and streaming).
    pub fn scan(&self, cmd: &ScanCommand) -> Result<Vec<PartitionData>> {
        let table = self.table(cmd.table)?;
        let sources = table.current_view().sources();
        read::scan(&sources, cmd)
    }

    /// Flushes a table's memtable to an SSTable and waits for it.
    pub fn flush(&self, id: TableId) -> Result<()> {
        let table = self.table(id)?;
        flush_table(&self.inner, &table, None)
    }

    /// Flushes every table.
    pub fn flush_all(&self) -> Result<()> {
        let tables: Vec<Arc<Table>> = self.inner.tables.read().values().cloned().collect();
        for t in tables {
            flush_table(&self.inner, &t, None)?;
        }
        Ok(())
    }

    /// Statistics of a table.
    pub fn table_stats(&self, id: TableId) -> Result<TableStats> {
        let t = self.table(id)?;
        let v = t.current_view();
        let options = t.options();
        let now = self.inner.options.clock.now_seconds();
        let gc_before = now.saturating_sub(options.gc_grace_seconds);
        let infos: Vec<crate::compaction::SsTableInfo> =
            v.sstables.iter().map(|s| compactor::sstable_info(s, gc_before)).collect();
        let pending_compactions = crate::compaction::pending_tasks(
            &options.compaction_params(),
            &infos,
            &t.compacting.lock(),
            now,
            options.gc_grace_seconds,
        );
        let mut sstables_per_level = Vec::new();
        let mut partition_size = HistogramSnapshot::default();
        let mut cells_per_partition = HistogramSnapshot::default();
        for s in &v.sstables {
            let level = s.stats().level as usize;
            if sstables_per_level.len() <= level {
                sstables_per_level.resize(level + 1, 0);
            }
            sstables_per_level[level] += 1;
            partition_size.add(s.partition_sizes());
            cells_per_partition.add(&s.stats().cells_per_partition);
        }
        Ok(TableStats {
            sstables_per_level,
            pending_compactions,
            compactions: t.counters.compactions.load(Ordering::Relaxed),
            bytes_compacted: t.counters.bytes_compacted.load(Ordering::Relaxed),
            bytes_compaction_written: t.counters.bytes_compaction_written.load(Ordering::Relaxed),
            write_slowdowns: t.counters.write_slowdowns.load(Ordering::Relaxed),
            write_stall_micros: t.counters.write_stall_micros.load(Ordering::Relaxed),
            partition_size,
            cells_per_partition,
            sstables_per_read: t.counters.sstables_per_read.snapshot(),
            tombstones_per_read: t.counters.tombstones_per_read.snapshot(),
            droppable_tombstones: infos.iter().map(|i| i.estimated_droppable_tombstones).sum(),
            sstable_count: v.sstables.len(),
            live_disk_bytes: v.sstables.iter().map(|s| s.size_on_disk()).sum(),
            memtable_bytes: v.memtable.size_bytes()
                + v.flushing.iter().map(|(m, _)| m.size_bytes()).sum::<usize>(),
            memtable_entries: v.memtable.entry_count(),
            sstable_partitions: v.sstables.iter().map(|s| s.stats().partition_count).sum(),
            writes: t.counters.writes.load(Ordering::Relaxed),
            reads: t.counters.reads.load(Ordering::Relaxed),
            flushes: t.counters.flushes.load(Ordering::Relaxed),
            bytes_flushed: t.counters.bytes_flushed.load(Ordering::Relaxed),
        })
    }

    /// The live SSTables of a table (newest first), for tools and tests.
    pub fn sstables(&self, id: TableId) -> Result<Vec<Arc<SsTable>>> {
        Ok(self.table(id)?.current_view().sstables.clone())
    }

    /// How many writes had to wait for memtable memory (back-pressure events).
    #[must_use]
    pub fn write_stalls(&self) -> u64 {
        self.inner.write_stalls.load(Ordering::Relaxed)
    }

    /// Number of commit log segment files.
    #[must_use]
    pub fn commitlog_segments(&self) -> usize {
        self.inner.commit_log.segment_count()
    }

    /// `nodetool cleanup`: flushes the table, then removes from its SSTables every partition
    /// whose token is outside `keep` (ranges `(start, end]`, `start == end` the whole ring):
    /// SSTables wholly kept are left alone, wholly outside are deleted, the others rewritten.
    ///
    /// # Errors
    /// An unknown table, I/O errors, or compactions that did not stop in time.
    pub fn cleanup(&self, id: TableId, keep: &[(i64, i64)]) -> Result<compactor::CleanupStats> {
        let table = self.table(id)?;
        flush_table(&self.inner, &table, None)?;
        let stats = compactor::cleanup(&self.inner, &table, keep)?;
        self.inner.compactor.request(id);
        Ok(stats)
    }

    /// Major compaction (`nodetool compact`): flushes the table, stops its background
    /// compactions, then merges its SSTables as its strategy's major compaction says, purging
    /// whatever gc_grace allows. Blocks until done.
    pub fn compact(&self, id: TableId) -> Result<()> {
        let table = self.table(id)?;
        flush_table(&self.inner, &table, None)?;
        compactor::major(&self.inner, &table)?;
        self.inner.compactor.request(id);
        Ok(())
    }

    /// Runs background compaction tasks of a table until its strategy has nothing more to do,
    /// in this thread (for tests and tools that want a settled table; workers keep running).
    pub fn compact_pending(&self, id: TableId) -> Result<usize> {
        let table = self.table(id)?;
        let mut n = 0;
        while compactor::run_next(&self.inner, &table)? {
            n += 1;
        }
        Ok(n)
    }

    /// Merges exactly the SSTables with these generations (`nodetool compact --user-defined`).
    pub fn compact_sstables(&self, id: TableId, generations: &[u64]) -> Result<()> {
        let table = self.table(id)?;
        compactor::user_defined(&self.inner, &table, generations)
    }

    /// The compactions running now (`nodetool compactionstats`).
    #[must_use]
    pub fn active_compactions(&self) -> Vec<CompactionInfo> {
        self.inner.compactor.active()
    }

    /// Stops running compactions (of one table, or all): `nodetool stop COMPACTION`. Their
    /// inputs stay live; the strategy picks them again later. Returns how many were asked to stop.
    pub fn stop_compactions(&self, table: Option<TableId>) -> usize {
        self.inner.compactor.stop(table)
    }

    /// Sets `compaction_throughput` (bytes per second, 0 = unlimited) while running
    /// (`nodetool setcompactionthroughput`).
    pub fn set_compaction_throughput(&self, bytes_per_second: u64) {
        self.inner.compactor.throttle.set_rate(bytes_per_second);
    }

    /// The current `compaction_throughput` in bytes per second (0 = unlimited).
    #[must_use]
    pub fn compaction_throughput(&self) -> u64 {
        self.inner.compactor.throttle.rate()
    }

    /// Changes a table's options (ALTER TABLE): compaction, gc_grace_seconds, bloom filter
    /// chance, chunk size and memtable flush size. Durable before it returns. New SSTables use
    /// the new settings; existing ones are rewritten only by compaction.
    pub fn alter_table(&self, options: TableOptions) -> Result<()> {
        options.validate().map_err(Error::InvalidRequest)?;
        let table = self.table(options.id)?;
        if options.keyspace != table.keyspace || options.name != table.name {
            return Err(Error::InvalidRequest("a table's keyspace and name cannot change".into()));
        }
        let _flush = table.flush_lock.lock();
        let mut next = options;
        next.truncated_at = table.options().truncated_at;
        if next == table.options() {
            return Ok(());
        }
        Table::persist_options(&table.dir, &next)?;
        table.set_options(next);
        drop(_flush);
        self.inner.compactor.request(table.id);
        Ok(())
    }

    /// Flushes every table, then hard-links every live SSTable into
    /// `<table dir>/snapshots/<tag>/` (Cassandra's `nodetool snapshot`). Returns the
    /// snapshot directories.
    pub fn snapshot(&self, tag: &str) -> Result<Vec<PathBuf>> {
        if tag.is_empty() || tag.contains('/') || tag.starts_with('.') {
            return Err(Error::InvalidRequest(format!("invalid snapshot name {tag:?}")));
        }
        self.flush_all()?;
        let tables: Vec<Arc<Table>> = self.inner.tables.read().values().cloned().collect();
        let mut dirs = Vec::new();
        for t in tables {
            let dir = t.dir.join("snapshots").join(tag);
            if dir.exists() {
                return Err(Error::InvalidRequest(format!(
                    "snapshot {tag} already exists in {}",
                    dir.display()
                )));
            }
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            for s in &t.current_view().sstables {
                for c in Component::ALL {
                    let src = s.descriptor().path(c);
                    let Some(name) = src.file_name() else { continue };
                    let dst = dir.join(name);
                    std::fs::hard_link(&src, &dst).map_err(|e| Error::io(&dst, e))?;
                }
            }
            let meta = t.dir.join(META_FILE);
            std::fs::copy(&meta, dir.join(META_FILE)).map_err(|e| Error::io(&meta, e))?;
            commitlog::sync_dir(&dir)?;
            dirs.push(dir);
        }
        Ok(dirs)
    }

    /// Stops background work and syncs the commit log. Memtables are not flushed: their data
    /// is in the commit log and is replayed at the next open. Use [`Engine::drain`] to flush.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.inner.flush_tx.lock().take();
        if let Some(h) = self.flush_thread.lock().take() {
            let _ = h.join();
        }
        self.inner.compactor.stop(None);
        self.inner.compactor.wake_all();
        for h in self.compaction_threads.lock().drain(..) {
            let _ = h.join();
        }
        self.inner.memory_freed.notify_all();
        self.inner.commit_log.close()
    }

    /// Flushes every memtable, then closes (Cassandra's `nodetool drain`).
    pub fn drain(&self) -> Result<()> {
        self.flush_all()?;
        self.close()
    }

    /// Test hook: poison the commit log as a failed fsync would.
    #[doc(hidden)]
    pub fn poison_commit_log_for_test(&self) {
        self.inner.commit_log.poison_for_test("injected fsync failure");
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "engine close failed");
        }
    }
}

fn validate(m: &Mutation) -> Result<()> {
    let invalid = |s: &str| Err(Error::InvalidRequest(s.to_string()));
    let u = &m.update;
    if u.key.is_empty() {
        return invalid("Key may not be empty");
    }
    if u.key.len() > MAX_PARTITION_KEY_BYTES {
        return invalid("Key length exceeds the maximum of 65535 bytes");
    }
    if u.rows.iter().any(|r| r.clustering.last() != Some(&KEY_END)) {
        return invalid("row clustering must be a full encoded clustering key");
    }
    if u.header.static_row.as_ref().is_some_and(|r| !r.clustering.is_empty()) {
        return invalid("the static row must have an empty clustering");
    }
    if u.header.range_tombstones.iter().any(|rt| {
        !crate::clustering::Bound::is_valid(&rt.slice.start.0)
            || !crate::clustering::Bound::is_valid(&rt.slice.end.0)
    }) {
        return invalid("range tombstone bounds must be encoded bounds");
    }
    Ok(())
}

fn load_tables(data_dir: &Path, cache: &Caches) -> Result<HashMap<TableId, Arc<Table>>> {
    let mut out = HashMap::new();
    let read = |d: &Path| std::fs::read_dir(d).map_err(|e| Error::io(d, e));
    for ks in read(data_dir)? {
        let ks = ks.map_err(|e| Error::io(data_dir, e))?;
        if !ks.path().is_dir() {
            continue;
        }
        for t in read(&ks.path())? {
            let t = t.map_err(|e| Error::io(ks.path(), e))?;
            let dir = t.path();
            let meta = dir.join(META_FILE);
            if !meta.exists() {
                continue;
            }
            let bytes = std::fs::read(&meta).map_err(|e| Error::io(&meta, e))?;
            let options = TableOptions::decode(&bytes)
                .map_err(|e| Error::corruption(&meta, e.offset as u64, e.reason))?;
            crate::txnlog::recover(&dir)?;
            let mut sstables = Vec::new();
            let mut max_gen = 0;
            for (generation, has_toc) in Descriptor::scan(&dir).map_err(|e| Error::io(&dir, e))? {
                max_gen = max_gen.max(generation.0);
                let desc = Descriptor { dir: dir.clone(), generation };
                if has_toc {
                    let sstable = SsTable::open(desc)?;
                    if options.truncated_at > Position::ZERO
                        && sstable.stats().commitlog_upper <= options.truncated_at
                    {
                        tracing::info!(dir = %dir.display(), generation = generation.0, "deleting an SSTable of truncated data (a TRUNCATE was interrupted)");
                        let desc = Descriptor { dir: dir.clone(), generation };
                        drop(sstable);
                        desc.delete_files().map_err(|e| Error::io(&dir, e))?;
                        continue;
                    }
                    sstable.attach_cache(cache);
                    sstables.push(Arc::new(sstable));
                } else {
                    tracing::info!(dir = %dir.display(), generation = generation.0, "deleting an SSTable whose write was interrupted (no TOC)");
                    desc.delete_files().map_err(|e| Error::io(&dir, e))?;
                }
            }
            sstables.reverse();
            let table = Table::new(options, dir, sstables, max_gen + 1);
            out.insert(table.id, Arc::new(table));
        }
    }
    Ok(out)
}

/// Adds a memtable's growth (or shrinkage) to the node-wide memtable accounting.
fn account_memory(inner: &Inner, delta: isize) {
    if delta >= 0 {
        inner.memtable_bytes.fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
    } else {
        release_memory(inner, delta.unsigned_abs());
    }
}

fn release_memory(inner: &Inner, bytes: usize) {
    let _ = inner
        .memtable_bytes
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(bytes)));
    let _guard = inner.memory_lock.lock();
    inner.memory_freed.notify_all();
}

fn largest_memtable(inner: &Inner) -> Option<Arc<Table>> {
    inner
        .tables
        .read()
        .values()
        .max_by_key(|t| t.view.read().memtable.size_bytes())
        .filter(|t| t.view.read().memtable.size_bytes() > 0)
        .cloned()
}

fn request_flush(inner: &Inner, table: &Arc<Table>) {
    if table.flush_queued.swap(true, Ordering::AcqRel) {
        return;
    }
    let sent = match inner.flush_tx.lock().as_ref() {
        Some(tx) => match tx.try_send(table.id) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        },
        None => false,
    };
    if !sent {
        table.flush_queued.store(false, Ordering::Release);
    }
}

fn flush_loop(inner: &Arc<Inner>, rx: &mpsc::Receiver<TableId>) {
    loop {
        match rx.recv_timeout(FLUSH_THREAD_TICK) {
            Ok(id) => {
                let table = inner.tables.read().get(&id).cloned();
                if let Some(t) = table {
                    if let Err(e) = flush_table(inner, &t, None) {
                        tracing::error!(table = %t.name, error = %e, "memtable flush failed; the data stays in the commit log and the flush will be retried");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if inner.commit_log.total_size_bytes() > inner.options.commitlog_total_space_bytes {
                    for id in inner.commit_log.tables_pinning_oldest_segment() {
                        let table = inner.tables.read().get(&id).cloned();
                        if let Some(t) = table {
                            tracing::info!(table = %t.name, "flushing to free commit log space (commitlog_total_space exceeded)");
                            if let Err(e) = flush_table(inner, &t, None) {
                                tracing::error!(table = %t.name, error = %e, "flush for commit log space failed");
                            }
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Switches and flushes the memtable of `table`; also retries memtables left by failed
/// flushes. `upto` overrides the commit log position the flush covers (used after replay).
fn flush_table(inner: &Inner, table: &Arc<Table>, upto: Option<Position>) -> Result<()> {
    let _guard = table.flush_lock.lock();
    table.flush_queued.store(false, Ordering::Release);
    {
        let mut view = table.view.write();
        if !view.memtable.is_empty() {
            let position = upto.unwrap_or_else(|| inner.commit_log.current_position());
            let mut next = View::clone(&view);
            next.flushing.push((Arc::clone(&view.memtable), position));
            next.memtable = Arc::new(Memtable::new());
            *view = Arc::new(next);
        }
    }
    let pending: Vec<(Arc<Memtable>, Position)> = table.current_view().flushing.clone();
    for (memtable, position) in pending {
        let sstable = write_sstable(table, &memtable, position, &inner.caches)?;
        {
            let mut view = table.view.write();
            let mut next = View::clone(&view);
            next.flushing.retain(|(m, _)| !Arc::ptr_eq(m, &memtable));
            if let Some(s) = sstable {
                table.counters.bytes_flushed.fetch_add(s.size_on_disk(), Ordering::Relaxed);
                next.sstables.insert(0, s);
            }
            *view = Arc::new(next);
        }
        table.counters.flushes.fetch_add(1, Ordering::Relaxed);
        inner.commit_log.mark_flushed(table.id, position)?;
        release_memory(inner, memtable.size_bytes());
        inner.compactor.request(table.id);
    }
    Ok(())
}

fn write_sstable(
    table: &Table,
    memtable: &Memtable,
    position: Position,
    cache: &Caches,
) -> Result<Option<Arc<SsTable>>> {
    if memtable.is_empty() {
        return Ok(None);
    }
    let desc = Descriptor { dir: table.dir.clone(), generation: table.allocate_generation() };
    let mut options = table.writer_options();
    options.timestamp_base = Some(memtable.min_timestamp()).filter(|m| *m != i64::MAX).unwrap_or(0);
    let mut writer = SsTableWriter::create(desc.clone(), options)?;
    let empty = PartitionHeader::default();
    let mut open: Option<DecoratedKey> = None;
    memtable.for_each_entry(|dk, entry| {
        let same = open.as_ref() == Some(dk);
        match entry {
            MemEntry::Header(h) => {
                if open.is_some() {
                    writer.end_partition()?;
                }
                writer.begin_partition(dk, h)?;
                open = Some(dk.clone());
            }
            MemEntry::Row(r) => {
                if !same {
                    if open.is_some() {
                        writer.end_partition()?;
                    }
                    writer.begin_partition(dk, &empty)?;
                    open = Some(dk.clone());
                }
                writer.add_row(r)?;
            }
        }
        Ok(())
    })?;
    if open.is_some() {
        writer.end_partition()?;
    }
    let stats = writer.finish(position, 0)?;
    tracing::debug!(table = %table.name, generation = desc.generation.0, partitions = stats.partition_count, "memtable flushed");
    let sstable = SsTable::open(desc)?;
    sstable.attach_cache(cache);
    Ok(Some(Arc::new(sstable)))
}
