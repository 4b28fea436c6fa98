//! Running compactions: the doing half. [`crate::compaction`] decides what to merge; this module
//! merges it, purges what may be purged, and swaps the outputs in atomically.
//!
//! - **Workers.** `concurrent_compactors` threads take table ids from a queue (deduplicated, so
//!   bounded by the number of tables), ask [`crate::compaction::next_task`] with the table's
//!   SSTables, mark the inputs compacting, run the task, and queue the table again. A flush queues
//!   its table; every table is queued once a minute so time-driven work (TWCS expiry, tombstone
//!   compactions) happens on idle tables too.
//! - **Merge.** Partitions are merged in token order from every input; within a partition rows
//!   are merged one at a time (a k-way merge of row cursors), so memory is bounded by one row per
//!   input whatever the partition's size. Shadowed data is dropped; expired TTL cells become
//!   tombstones; tombstones are purged only when their local deletion time is before
//!   `now - gc_grace_seconds` *and* their timestamp is older than everything any SSTable outside
//!   the compaction (bloom filter and token range say may hold the partition) or memtable holding
//!   the partition could have (Cassandra's `maxPurgeableTimestamp`). Nothing deleted can come back.
//! - **Atomic swap.** Every task runs inside a [`crate::txnlog::TxnLog`]: after a crash, exactly
//!   one of inputs and outputs is live. The commit happens under the table's flush lock after
//!   checking every input is still live (a TRUNCATE or DROP meanwhile aborts the task).
//! - **Throughput.** `compaction_throughput` bytes per second (of input, on disk) are shared by
//!   all workers; 0 means unlimited.
//! - **Progress and stop.** [`CompactionInfo`] shows each running task's total and completed
//!   bytes (`nodetool compactionstats`); a stop request ends a task at its next partition, its
//!   outputs deleted and inputs kept.

use std::collections::{BTreeSet, VecDeque};
use std::ops::Bound as RangeBound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::clustering::Slice;
use crate::commitlog::Position;
use crate::compaction::{
    self, tombstones, CompactionParams, CompactionTask, SsTableInfo, Strategy, TaskKind,
};
use crate::engine::Inner;
use crate::error::{Error, Result};
use crate::ids::{Generation, TableId};
use crate::partition::{DecoratedKey, PartitionHeader};
use crate::row::Row;
use crate::sstable::index::IndexEntry;
use crate::sstable::{bloom_hash, Descriptor, RowCursor, SsTable, SsTableRows, SsTableWriter, WriterOptions};
use crate::table::Table;
use crate::txnlog::TxnLog;

/// How often every table is queued for a compaction check even without flushes.
const PERIODIC_CHECK: Duration = Duration::from_secs(60);
/// Longest a stopped compaction is waited for by a major compaction.
const STOP_WAIT: Duration = Duration::from_secs(60);
/// Tokens a throttled worker may run ahead (one second of the rate).
const THROTTLE_BURST: Duration = Duration::from_secs(1);

/// What a running compaction is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactionKind {
    /// A background compaction chosen by the table's strategy.
    Compaction,
    /// A single SSTable rewritten to purge its droppable tombstones.
    TombstoneCompaction,
    /// Fully expired SSTables deleted whole.
    ExpiredDrop,
    /// A major compaction (`nodetool compact`).
    Major,
    /// `nodetool cleanup`: SSTables rewritten without the partitions this node no longer owns.
    Cleanup,
}

impl std::fmt::Display for CompactionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CompactionKind::Compaction => "Compaction",
            CompactionKind::TombstoneCompaction => "Tombstone Compaction",
            CompactionKind::ExpiredDrop => "Expired SSTable Drop",
            CompactionKind::Major => "Major Compaction",
            CompactionKind::Cleanup => "Cleanup",
        })
    }
}

/// One running compaction, as `nodetool compactionstats` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionInfo {
    /// Id, unique while the engine runs.
    pub id: u64,
    /// Keyspace.
    pub keyspace: String,
    /// Table.
    pub table: String,
    /// What kind of work.
    pub kind: CompactionKind,
    /// Uncompressed bytes of the inputs.
    pub total_bytes: u64,
    /// Uncompressed input bytes merged so far.
    pub completed_bytes: u64,
    /// Number of input SSTables.
    pub inputs: usize,
    /// Level the outputs are written at.
    pub output_level: u8,
}

#[derive(Debug)]
pub(crate) struct Running {
    id: u64,
    table: TableId,
    keyspace: String,
    name: String,
    kind: CompactionKind,
    total: u64,
    inputs: usize,
    level: u8,
    completed: AtomicU64,
    cancel: AtomicBool,
}

impl Running {
    fn info(&self) -> CompactionInfo {
        CompactionInfo {
            id: self.id,
            keyspace: self.keyspace.clone(),
            table: self.name.clone(),
            kind: self.kind,
            total_bytes: self.total,
            completed_bytes: self.completed.load(Ordering::Relaxed).min(self.total),
            inputs: self.inputs,
            output_level: self.level,
        }
    }
}

/// A shared rate limit (GCRA): each acquire books its bytes after the previous booking and sleeps
/// until its slot, allowing one second of burst. Compaction uses it for `compaction_throughput`,
/// streaming (in the cluster crate) for `stream_throughput_outbound`.
#[derive(Debug)]
pub struct Throttle {
    bytes_per_second: AtomicU64,
    next: Mutex<Option<Instant>>,
}

impl Throttle {
    /// A limit of `bytes_per_second` (0 = unlimited).
    #[must_use]
    pub fn new(bytes_per_second: u64) -> Throttle {
        Throttle { bytes_per_second: AtomicU64::new(bytes_per_second), next: Mutex::new(None) }
    }

    /// Changes the limit (0 = unlimited).
    pub fn set_rate(&self, bytes_per_second: u64) {
        self.bytes_per_second.store(bytes_per_second, Ordering::Relaxed);
    }

    /// The limit in bytes per second (0 = unlimited).
    #[must_use]
    pub fn rate(&self) -> u64 {
        self.bytes_per_second.load(Ordering::Relaxed)
    }

    /// Books `bytes` and sleeps until the rate allows them.
    pub fn acquire(&self, bytes: u64) {
        let rate = self.rate();
        if rate == 0 || bytes == 0 {
            return;
        }
        let now = Instant::now();
        let wait = {
            let mut next = self.next.lock();
            let floor = now.checked_sub(THROTTLE_BURST).unwrap_or(now);
            let start = next.map_or(floor, |n| n.max(floor));
            let slot = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
            *next = Some(slot);
            slot.saturating_duration_since(now + THROTTLE_BURST)
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// The engine's compaction state: the queue of tables to check, running tasks, the rate limit.
#[derive(Debug)]
pub(crate) struct Compactor {
    queue: Mutex<VecDeque<TableId>>,
    wake: Condvar,
    running: Mutex<Vec<Arc<Running>>>,
    /// Notified whenever a task ends (back-pressure and major compaction wait on it).
    pub(crate) finished: Condvar,
    pub(crate) finished_lock: Mutex<()>,
    pub(crate) throttle: Throttle,
    next_id: AtomicU64,
}

impl Compactor {
    pub(crate) fn new(throughput_bytes_per_second: u64) -> Compactor {
        Compactor {
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            running: Mutex::new(Vec::new()),
            finished: Condvar::new(),
            finished_lock: Mutex::new(()),
            throttle: Throttle::new(throughput_bytes_per_second),
            next_id: AtomicU64::new(1),
        }
    }

    /// Queues a table for a compaction check.
    pub(crate) fn request(&self, id: TableId) {
        let mut q = self.queue.lock();
        if !q.contains(&id) {
            q.push_back(id);
            self.wake.notify_one();
        }
    }

    pub(crate) fn wake_all(&self) {
        let _q = self.queue.lock();
        self.wake.notify_all();
    }

    /// The running compactions.
    pub(crate) fn active(&self) -> Vec<CompactionInfo> {
        self.running.lock().iter().map(|r| r.info()).collect()
    }

    /// Asks the running compactions (of `table`, or all) to stop; returns how many were asked.
    pub(crate) fn stop(&self, table: Option<TableId>) -> usize {
        let running = self.running.lock();
        let mut n = 0;
        for r in running.iter().filter(|r| table.is_none_or(|t| t == r.table)) {
            r.cancel.store(true, Ordering::Relaxed);
            n += 1;
        }
        n
    }

    fn notify_finished(&self) {
        let _g = self.finished_lock.lock();
        self.finished.notify_all();
    }
}

/// A worker: checks queued tables until the engine closes.
pub(crate) fn worker_loop(inner: &Arc<Inner>) {
    let mut last_sweep = Instant::now();
    loop {
        let next = {
            let mut q = inner.compactor.queue.lock();
            loop {
                if inner.closed.load(Ordering::Acquire) {
                    return;
                }
                if let Some(id) = q.pop_front() {
                    break Some(id);
                }
                if last_sweep.elapsed() >= PERIODIC_CHECK {
                    break None;
                }
                inner.compactor.wake.wait_for(&mut q, Duration::from_secs(1));
            }
        };
        let Some(id) = next else {
            last_sweep = Instant::now();
            let ids: Vec<TableId> = inner.tables.read().keys().copied().collect();
            for id in ids {
                inner.compactor.request(id);
            }
            continue;
        };
        let table = inner.tables.read().get(&id).cloned();
        let Some(table) = table else { continue };
        match run_next(inner, &table) {
            Ok(true) => inner.compactor.request(id),
            Ok(false) => {}
            Err(Error::CompactionStopped { .. } | Error::Closed) => {}
            Err(e) => {
                tracing::error!(keyspace = %table.keyspace, table = %table.name, error = %e, "compaction failed; its inputs stay live and it will be retried. If this repeats, check the disk (space, permissions) and the SSTable named in the error");
                std::thread::sleep(Duration::from_secs(1));
                inner.compactor.request(id);
            }
        }
    }
}

/// What a strategy knows about `s`.
#[must_use]
pub fn sstable_info(s: &SsTable, gc_before: u32) -> SsTableInfo {
    let st = s.stats();
    SsTableInfo {
        id: s.descriptor().generation.0,
        size_bytes: s.size_on_disk(),
        level: u8::try_from(st.level).unwrap_or(u8::MAX),
        first_token: st.min_token.0,
        last_token: st.max_token.0,
        min_timestamp: st.min_timestamp,
        max_timestamp: st.max_timestamp,
        max_local_deletion_time: if st.has_non_expiring_data { u32::MAX } else { st.max_local_deletion_time },
        estimated_droppable_tombstones: st.droppable_tombstones(gc_before),
        cell_count: st.cell_count,
        created_at_seconds: s.created_at_seconds(),
    }
}

/// Runs the next background task of `table`, if any. `Ok(true)` if one ran.
pub(crate) fn run_next(inner: &Inner, table: &Arc<Table>) -> Result<bool> {
    if table.compaction_paused.load(Ordering::Acquire) > 0 {
        return Ok(false);
    }
    let options = table.options();
    let params = options.compaction_params();
    let now = inner.options.clock.now_seconds();
    let gc_before = now.saturating_sub(options.gc_grace_seconds);
    let view = table.current_view();
    let (task, inputs) = {
        let mut compacting = table.compacting.lock();
        let infos: Vec<SsTableInfo> = view.sstables.iter().map(|s| sstable_info(s, gc_before)).collect();
        let Some(task) = compaction::next_task(&params, &infos, &compacting, now, options.gc_grace_seconds)
        else {
            return Ok(false);
        };
        let inputs: Vec<Arc<SsTable>> = view
            .sstables
            .iter()
            .filter(|s| task.inputs.contains(&s.descriptor().generation.0))
            .cloned()
            .collect();
        if inputs.len() != task.inputs.len() {
            return Ok(false);
        }
        compacting.extend(task.inputs.iter().copied());
        (task, inputs)
    };
    let kind = match task.kind {
        TaskKind::Compaction => CompactionKind::Compaction,
        TaskKind::TombstoneCompaction => CompactionKind::TombstoneCompaction,
        TaskKind::DropExpired => CompactionKind::ExpiredDrop,
    };
    run_marked(inner, table, &task, &inputs, kind, &params).map(|()| true)
}

/// Keeps background compactions of a table from starting while alive.
struct Paused<'a>(&'a Table);

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.0.compaction_paused.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Pauses the table's background compactions, stops the running ones and waits for them to end.
fn pause_compactions<'a>(inner: &Inner, table: &'a Table, what: &str) -> Result<Paused<'a>> {
    table.compaction_paused.fetch_add(1, Ordering::AcqRel);
    let paused = Paused(table);
    inner.compactor.stop(Some(table.id));
    let deadline = Instant::now() + STOP_WAIT;
    loop {
        let busy = !table.compacting.lock().is_empty();
        if !busy {
            return Ok(paused);
        }
        if Instant::now() >= deadline {
            return Err(Error::InvalidRequest(format!(
                "{what} of {}.{}: running compactions did not stop within {} s; try again",
                table.keyspace,
                table.name,
                STOP_WAIT.as_secs()
            )));
        }
        let mut g = inner.compactor.finished_lock.lock();
        inner.compactor.finished.wait_for(&mut g, Duration::from_millis(100));
    }
}

/// What a cleanup did to one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupStats {
    /// SSTables left as they were (every token they can hold is kept).
    pub kept: usize,
    /// SSTables deleted whole (no token they can hold is kept).
    pub dropped: usize,
    /// SSTables rewritten without the partitions outside the kept ranges.
    pub rewritten: usize,
    /// Bytes on disk before.
    pub bytes_before: u64,
    /// Bytes on disk after.
    pub bytes_after: u64,
}

/// `nodetool cleanup`: removes the partitions whose tokens lie outside `keep` from every SSTable
/// (the caller flushed the memtables), one SSTable at a time, each through the usual crash-safe
/// swap.
pub(crate) fn cleanup(inner: &Inner, table: &Arc<Table>, keep: &[(i64, i64)]) -> Result<CleanupStats> {
    let _paused = pause_compactions(inner, table, "cleanup")?;
    let params = table.options().compaction_params();
    let view = table.current_view();
    let mut stats = CleanupStats::default();
    for s in &view.sstables {
        let st = s.stats();
        stats.bytes_before += s.size_on_disk();
        let generation = s.descriptor().generation;
        match compaction::cleanup_action(st.min_token.0, st.max_token.0, keep) {
            compaction::CleanupAction::Keep => stats.kept += 1,
            compaction::CleanupAction::Drop => {
                table.compacting.lock().insert(generation.0);
                let txn = TxnLog::begin(&table.dir, table.allocate_generation().0, &[generation]);
                let r =
                    txn.and_then(|txn| commit_swap(inner, table, txn, std::slice::from_ref(s), Vec::new()));
                table.compacting.lock().remove(&generation.0);
                r?;
                stats.dropped += 1;
            }
            compaction::CleanupAction::Rewrite => {
                let task = CompactionTask {
                    inputs: vec![generation.0],
                    output_level: u8::try_from(st.level).unwrap_or(0),
                    max_output_bytes: None,
                    kind: TaskKind::Compaction,
                    keep: Some(keep.to_vec()),
                };
                table.compacting.lock().insert(generation.0);
                run_marked(inner, table, &task, std::slice::from_ref(s), CompactionKind::Cleanup, &params)?;
                stats.rewritten += 1;
            }
        }
    }
    stats.bytes_after = table.current_view().sstables.iter().map(|s| s.size_on_disk()).sum();
    tracing::info!(
        keyspace = %table.keyspace, table = %table.name, kept = stats.kept, dropped = stats.dropped,
        rewritten = stats.rewritten, bytes_before = stats.bytes_before, bytes_after = stats.bytes_after,
        "cleanup finished"
    );
    Ok(stats)
}

/// Major compaction of `table`: stops its background compactions, then runs the strategy's major
/// tasks (see [`crate::compaction::major_task`]).
pub(crate) fn major(inner: &Inner, table: &Arc<Table>) -> Result<()> {
    let _paused = pause_compactions(inner, table, "major compaction")?;
    let options = table.options();
    let params = options.compaction_params();
    let now = inner.options.clock.now_seconds();
    let gc_before = now.saturating_sub(options.gc_grace_seconds);
    let view = table.current_view();
    let infos: Vec<SsTableInfo> = view.sstables.iter().map(|s| sstable_info(s, gc_before)).collect();
    let tasks = compaction::major_task(&params, &infos, &BTreeSet::new(), now, options.gc_grace_seconds);
    for task in tasks {
        let inputs: Vec<Arc<SsTable>> = view
            .sstables
            .iter()
            .filter(|s| task.inputs.contains(&s.descriptor().generation.0))
            .cloned()
            .collect();
        table.compacting.lock().extend(task.inputs.iter().copied());
        let kind = if task.kind == TaskKind::DropExpired {
            CompactionKind::ExpiredDrop
        } else {
            CompactionKind::Major
        };
        run_marked(inner, table, &task, &inputs, kind, &params)?;
    }
    Ok(())
}

/// User-defined compaction (`nodetool compact --user-defined`): merges exactly the SSTables with
/// these generations into one level-0 SSTable, with the usual purge rules.
pub(crate) fn user_defined(inner: &Inner, table: &Arc<Table>, generations: &[u64]) -> Result<()> {
    let view = table.current_view();
    let inputs: Vec<Arc<SsTable>> = view
        .sstables
        .iter()
        .filter(|s| generations.contains(&s.descriptor().generation.0))
        .cloned()
        .collect();
    if inputs.len() != generations.len() {
        return Err(Error::InvalidRequest(format!(
            "{}.{} has no live SSTable with some of the generations {generations:?}",
            table.keyspace, table.name
        )));
    }
    {
        let mut compacting = table.compacting.lock();
        if generations.iter().any(|g| compacting.contains(g)) {
            return Err(Error::InvalidRequest(
                "some of those SSTables are being compacted; try again".into(),
            ));
        }
        compacting.extend(generations.iter().copied());
    }
    let task = CompactionTask {
        inputs: generations.to_vec(),
        output_level: 0,
        max_output_bytes: None,
        kind: TaskKind::Compaction,
        keep: None,
    };
    let params = table.options().compaction_params();
    run_marked(inner, table, &task, &inputs, CompactionKind::Compaction, &params)
}

/// Runs a task whose inputs the caller marked compacting, then unmarks them and wakes whoever
/// waits for compactions to end (back-pressured writers, major compactions).
fn run_marked(
    inner: &Inner,
    table: &Arc<Table>,
    task: &CompactionTask,
    inputs: &[Arc<SsTable>],
    kind: CompactionKind,
    params: &CompactionParams,
) -> Result<()> {
    let result = run_task(inner, table, task, inputs, kind, params);
    let mut compacting = table.compacting.lock();
    for id in &task.inputs {
        compacting.remove(id);
    }
    drop(compacting);
    inner.compactor.notify_finished();
    result
}

fn run_task(
    inner: &Inner,
    table: &Arc<Table>,
    task: &CompactionTask,
    inputs: &[Arc<SsTable>],
    kind: CompactionKind,
    params: &CompactionParams,
) -> Result<()> {
    let running = Arc::new(Running {
        id: inner.compactor.next_id.fetch_add(1, Ordering::Relaxed),
        table: table.id,
        keyspace: table.keyspace.clone(),
        name: table.name.clone(),
        kind,
        total: inputs.iter().map(|s| s.stats().uncompressed_bytes).sum(),
        inputs: inputs.len(),
        level: task.output_level,
        completed: AtomicU64::new(0),
        cancel: AtomicBool::new(false),
    });
    inner.compactor.running.lock().push(Arc::clone(&running));
    let started = Instant::now();
    let result = if task.kind == TaskKind::DropExpired {
        drop_expired(inner, table, inputs)
    } else {
        compact(inner, table, task, inputs, &running)
    };
    inner.compactor.running.lock().retain(|r| !Arc::ptr_eq(r, &running));
    match &result {
        Ok(Some(outputs)) => {
            let read: u64 = inputs.iter().map(|s| s.size_on_disk()).sum();
            let written: u64 = outputs.iter().map(|s| s.size_on_disk()).sum();
            table.counters.compactions.fetch_add(1, Ordering::Relaxed);
            table.counters.bytes_compacted.fetch_add(read, Ordering::Relaxed);
            table.counters.bytes_compaction_written.fetch_add(written, Ordering::Relaxed);
            tracing::info!(
                keyspace = %table.keyspace, table = %table.name, kind = %kind, strategy = params.strategy.short_name(),
                inputs = ?inputs.iter().map(|s| s.descriptor().generation.0).collect::<Vec<_>>(),
                outputs = ?outputs.iter().map(|s| s.descriptor().generation.0).collect::<Vec<_>>(),
                level = task.output_level, bytes_read = read, bytes_written = written,
                millis = started.elapsed().as_millis() as u64,
                "compacted {} SSTables into {}", inputs.len(), outputs.len()
            );
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(Error::CompactionStopped { .. }) => {
            tracing::info!(keyspace = %table.keyspace, table = %table.name, kind = %kind, "compaction stopped; its inputs stay live");
            result.map(|_| ())
        }
        Err(_) => result.map(|_| ()),
    }
}

/// Deletes fully expired SSTables whole, after re-checking them against the memtables.
fn drop_expired(
    inner: &Inner,
    table: &Arc<Table>,
    inputs: &[Arc<SsTable>],
) -> Result<Option<Vec<Arc<SsTable>>>> {
    let options = table.options();
    let gc_before = inner.options.clock.now_seconds().saturating_sub(options.gc_grace_seconds);
    let view = table.current_view();
    let all: Vec<SsTableInfo> = view.sstables.iter().map(|s| sstable_info(s, gc_before)).collect();
    let memtable_min =
        view.sources().memtables.iter().map(|m| m.min_timestamp()).min().filter(|m| *m != i64::MAX);
    let candidates: Vec<SsTableInfo> = inputs.iter().map(|s| sstable_info(s, gc_before)).collect();
    let expired = tombstones::fully_expired(&candidates, &all, gc_before, memtable_min);
    let doomed: Vec<&Arc<SsTable>> =
        inputs.iter().filter(|s| expired.contains(&s.descriptor().generation.0)).collect();
    if doomed.is_empty() {
        return Ok(None);
    }
    let gens: Vec<Generation> = doomed.iter().map(|s| s.descriptor().generation).collect();
    let txn = TxnLog::begin(&table.dir, table.allocate_generation().0, &gens)?;
    let doomed: Vec<Arc<SsTable>> = doomed.into_iter().cloned().collect();
    commit_swap(inner, table, txn, &doomed, Vec::new())
}

/// Merges `inputs` into new SSTables and swaps them in. `None` if the task was abandoned because
/// its inputs left the table meanwhile.
fn compact(
    inner: &Inner,
    table: &Arc<Table>,
    task: &CompactionTask,
    inputs: &[Arc<SsTable>],
    running: &Running,
) -> Result<Option<Vec<Arc<SsTable>>>> {
    let gens: Vec<Generation> = inputs.iter().map(|s| s.descriptor().generation).collect();
    let mut txn = TxnLog::begin(&table.dir, table.allocate_generation().0, &gens)?;
    let mut outputs: Vec<Arc<SsTable>> = Vec::new();
    let merged = merge(inner, table, task, inputs, running, &mut txn, &mut outputs);
    match merged {
        Ok(()) => commit_swap(inner, table, txn, inputs, outputs),
        Err(e) => {
            let descs: Vec<Descriptor> = outputs.iter().map(|s| s.descriptor().clone()).collect();
            drop(outputs);
            if let Err(abort) = txn.abort(&descs) {
                tracing::warn!(error = %abort, "could not remove the outputs of a failed compaction; they are removed at the next open");
            }
            Err(e)
        }
    }
}

/// Commits the transaction and swaps `outputs` in for `inputs`, unless an input left the table
/// (TRUNCATE, DROP) meanwhile, in which case the outputs are deleted and `None` returned.
fn commit_swap(
    inner: &Inner,
    table: &Arc<Table>,
    mut txn: TxnLog,
    inputs: &[Arc<SsTable>],
    outputs: Vec<Arc<SsTable>>,
) -> Result<Option<Vec<Arc<SsTable>>>> {
    let input_descs: Vec<Descriptor> = inputs.iter().map(|s| s.descriptor().clone()).collect();
    let flush = table.flush_lock.lock();
    let view = table.current_view();
    let live = inner.tables.read().get(&table.id).is_some_and(|t| Arc::ptr_eq(t, table))
        && inputs.iter().all(|i| view.sstables.iter().any(|s| Arc::ptr_eq(s, i)));
    if !live {
        drop(flush);
        let descs: Vec<Descriptor> = outputs.iter().map(|s| s.descriptor().clone()).collect();
        drop(outputs);
        if let Err(e) = txn.abort(&descs) {
            tracing::debug!(error = %e, "cleaning up a compaction whose table was truncated or dropped");
        }
        return Ok(None);
    }
    txn.commit()?;
    {
        let mut v = table.view.write();
        let mut next = crate::table::View::clone(&v);
        next.sstables.retain(|s| !inputs.iter().any(|i| Arc::ptr_eq(s, i)));
        next.sstables.extend(outputs.iter().cloned());
        next.sstables.sort_by_key(|s| std::cmp::Reverse(s.descriptor().generation));
        *v = Arc::new(next);
    }
    drop(flush);
    // Readers holding the old view keep reading the unlinked files through their maps.
    txn.finish(&input_descs)?;
    Ok(Some(outputs))
}

/// One input's position in the merge.
struct Input {
    sstable: Arc<SsTable>,
    head: Option<(IndexEntry, crate::sstable::index::IndexCursor)>,
    last: Option<RowCursor>,
}

/// Decides, per partition, which tombstones may go.
struct Purger<'a> {
    table: &'a Table,
    inputs: &'a [Arc<SsTable>],
    gc_before: u32,
    key: DecoratedKey,
    max_purgeable: Option<i64>,
}

impl Purger<'_> {
    fn purgeable(&mut self, timestamp: i64, local_deletion_time: u32) -> bool {
        local_deletion_time < self.gc_before && timestamp < self.max_purgeable()
    }

    /// The oldest timestamp any source outside the compaction may hold for this partition: a
    /// tombstone at or above it might shadow data there and must stay.
    fn max_purgeable(&mut self) -> i64 {
        if let Some(m) = self.max_purgeable {
            return m;
        }
        let view = self.table.current_view();
        let hash = bloom_hash(&self.key.key);
        let mut min = i64::MAX;
        for s in &view.sstables {
            if self.inputs.iter().any(|i| Arc::ptr_eq(i, s)) || !s.may_contain(&self.key, hash) {
                continue;
            }
            min = min.min(s.stats().min_timestamp);
        }
        for m in view.sources().memtables {
            if m.contains_partition(&self.key) {
                min = min.min(m.min_timestamp());
            }
        }
        self.max_purgeable = Some(min);
        min
    }
}

fn merge(
    inner: &Inner,
    table: &Arc<Table>,
    task: &CompactionTask,
    inputs: &[Arc<SsTable>],
    running: &Running,
    txn: &mut TxnLog,
    outputs: &mut Vec<Arc<SsTable>>,
) -> Result<()> {
    let options = table.options();
    let now = inner.options.clock.now_seconds();
    let gc_before = now.saturating_sub(options.gc_grace_seconds);
    let upper = inputs.iter().map(|s| s.stats().commitlog_upper).max().unwrap_or(Position::ZERO);
    let disk: u64 = inputs.iter().map(|s| s.size_on_disk()).sum();
    let uncompressed: u64 = inputs.iter().map(|s| s.stats().uncompressed_bytes).sum::<u64>().max(1);
    let disk_ratio = disk as f64 / uncompressed as f64;
    let mut cursors = Vec::with_capacity(inputs.len());
    for s in inputs {
        let offset = s.seek(RangeBound::Unbounded)?;
        let mut last = None;
        let head = s.entry_at(offset, &mut last, false)?;
        cursors.push(Input { sstable: Arc::clone(s), head, last });
    }
    let mut writer: Option<SsTableWriter> = None;
    let mut writer_options = table.writer_options();
    writer_options.timestamp_base =
        inputs.iter().map(|s| s.stats().min_timestamp).min().filter(|m| *m != i64::MAX).unwrap_or(0);
    let stopped = || Error::CompactionStopped { keyspace: table.keyspace.clone(), table: table.name.clone() };
    loop {
        if running.cancel.load(Ordering::Relaxed) || inner.closed.load(Ordering::Acquire) {
            return Err(stopped());
        }
        let Some(key) = cursors.iter().filter_map(|c| c.head.as_ref().map(|(e, _)| &e.key)).min().cloned()
        else {
            break;
        };
        if let Some(keep) = &task.keep {
            if !keep.iter().any(|&(s, e)| compaction::range_contains(s, e, key.token.0)) {
                // Cleanup: a partition this node no longer owns is not written out.
                let mut consumed = 0u64;
                for c in &mut cursors {
                    if c.head.as_ref().is_some_and(|(e, _)| e.key == key) {
                        if let Some((entry, next)) = c.head.take() {
                            consumed += entry.length;
                            c.head = c.sstable.entry_at(next, &mut c.last, false)?;
                        }
                    }
                }
                running.completed.fetch_add(consumed, Ordering::Relaxed);
                continue;
            }
        }
        let mut header = PartitionHeader::default();
        let mut rows: Vec<SsTableRows> = Vec::new();
        let mut consumed = 0u64;
        for c in &mut cursors {
            if c.head.as_ref().is_none_or(|(e, _)| e.key != key) {
                continue;
            }
            let Some((entry, next)) = c.head.take() else { continue };
            let (h, cursor) = c.sstable.read_header_uncached(&entry, c.last.as_ref())?;
            c.last = Some(cursor.clone());
            header.merge(h);
            consumed += entry.length;
            rows.push(SsTableRows::new(cursor, entry, Slice::all(), false));
            c.head = c.sstable.entry_at(next, &mut c.last, false)?;
        }
        let mut purger = Purger { table, inputs, gc_before, key: key.clone(), max_purgeable: None };
        header.purge_shadowed();
        let shadowing = header.clone();
        let mut out_header = header;
        if let Some(mut s) = out_header.static_row.take() {
            s.expire(now);
            s.purge_tombstones(now, &mut |ts, ldt| purger.purgeable(ts, ldt));
            if !s.is_empty() {
                out_header.static_row = Some(s);
            }
        }
        let d = out_header.deletion;
        if !d.is_live() && purger.purgeable(d.marked_for_delete_at, d.local_deletion_time) {
            out_header.deletion = crate::cell::DeletionTime::LIVE;
        }
        out_header.range_tombstones.retain(|rt| {
            !purger.purgeable(rt.deletion.marked_for_delete_at, rt.deletion.local_deletion_time)
        });

        let mut begun = false;
        let mut heads: Vec<Option<Row>> = Vec::with_capacity(rows.len());
        for r in &mut rows {
            heads.push(r.next_row()?);
        }
        loop {
            let Some(best) = heads.iter().flatten().map(|r| &r.clustering).min().cloned() else { break };
            let mut merged: Option<Row> = None;
            for (i, head) in heads.iter_mut().enumerate() {
                if head.as_ref().is_some_and(|r| r.clustering == best) {
                    if let Some(r) = head.take() {
                        match &mut merged {
                            Some(m) => m.merge(r),
                            None => merged = Some(r),
                        }
                    }
                    *head = rows[i].next_row()?;
                }
            }
            let Some(mut row) = merged else { continue };
            row.expire(now);
            row.purge_shadowed(shadowing.deletion_for(&row.clustering));
            row.purge_tombstones(now, &mut |ts, ldt| purger.purgeable(ts, ldt));
            if row.is_empty() {
                continue;
            }
            let w = open_writer(table, &writer_options, txn, &mut writer)?;
            if !begun {
                w.begin_partition(&key, &out_header)?;
                begun = true;
            }
            w.add_row(&row)?;
        }
        if !begun && !out_header.is_empty() {
            open_writer(table, &writer_options, txn, &mut writer)?.begin_partition(&key, &out_header)?;
            begun = true;
        }
        if begun {
            if let Some(w) = writer.as_mut() {
                w.end_partition()?;
                if task.max_output_bytes.is_some_and(|max| w.data_bytes() >= max) {
                    if let Some(w) = writer.take() {
                        outputs.push(finish_writer(inner, w, upper, task.output_level)?);
                    }
                }
            }
        }
        running.completed.fetch_add(consumed, Ordering::Relaxed);
        inner.compactor.throttle.acquire((consumed as f64 * disk_ratio) as u64);
    }
    if let Some(w) = writer.take() {
        if w.partition_count() > 0 {
            outputs.push(finish_writer(inner, w, upper, task.output_level)?);
        }
    }
    Ok(())
}

fn open_writer<'a>(
    table: &Table,
    options: &WriterOptions,
    txn: &mut TxnLog,
    writer: &'a mut Option<SsTableWriter>,
) -> Result<&'a mut SsTableWriter> {
    if writer.is_none() {
        let generation = table.allocate_generation();
        txn.add(generation)?;
        let desc = Descriptor { dir: table.dir.clone(), generation };
        *writer = Some(SsTableWriter::create(desc, options.clone())?);
    }
    writer.as_mut().ok_or(Error::Closed)
}

fn finish_writer(inner: &Inner, w: SsTableWriter, upper: Position, level: u8) -> Result<Arc<SsTable>> {
    let desc = w.descriptor().clone();
    w.finish(upper, u32::from(level))?;
    let s = SsTable::open(desc)?;
    s.attach_cache(&inner.caches);
    Ok(Arc::new(s))
}

/// SSTables that count against write back-pressure: level 0 for LCS, those of the newest time
/// window for TWCS (older windows hold one SSTable each once compacted), all for STCS.
#[must_use]
pub fn backlog_sstables(params: &CompactionParams, sstables: &[Arc<SsTable>]) -> usize {
    match &params.strategy {
        Strategy::SizeTiered => sstables.len(),
        Strategy::Leveled(_) => sstables.iter().filter(|s| s.stats().level == 0).count(),
        Strategy::TimeWindow(o) => {
            let window =
                |s: &Arc<SsTable>| compaction::time_window::window_start_seconds(s.stats().max_timestamp, o);
            let newest = sstables.iter().map(window).max();
            sstables.iter().filter(|s| Some(window(s)) == newest).count()
        }
    }
}
