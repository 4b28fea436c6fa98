//! Compaction: which SSTables to merge next, decided from plain values.
//!
//! Every decision here is a pure function of the table's [`CompactionParams`], a snapshot of its
//! live SSTables ([`SsTableInfo`], what `Statistics.db` and the file size tell), the set already
//! being compacted, and the current time. Nothing here reads files, keeps state between calls or
//! starts threads: the engine's compaction executor asks [`next_task`], marks the task's inputs as
//! compacting, runs it (merging, purging, writing outputs at the task's level), and asks again.
//! Keeping the choice pure lets the same code drive the engine, `nodetool compactionstats`
//! ([`pending_tasks`]) and the [`simulator`], and lets tests state the rules with hand-made sizes.
//!
//! Three of Cassandra's strategies, with its option names and defaults:
//!
//! | strategy | module | picks |
//! |---|---|---|
//! | size-tiered (STCS) | [`size_tiered`] | `min_threshold`..`max_threshold` SSTables of similar size |
//! | leveled (LCS) | [`leveled`] | one SSTable of an over-full level plus what it overlaps one level down |
//! | time-window (TWCS) | [`time_window`] | fully expired SSTables to drop; the SSTables of one time window |
//!
//! When a strategy has nothing to merge it may still compact one SSTable alone to purge its
//! droppable tombstones ([`tombstones::worth_dropping_tombstones`], Cassandra's
//! `worthDroppingTombstones`).
//!
//! Contract with the engine:
//! - `id` is the SSTable's generation; larger is newer. The outputs of one task must get
//!   increasing generations in token order (LCS derives its round-robin position from that, see
//!   [`leveled`]).
//! - A task's inputs must be marked compacting before the next call, and stay so until its outputs
//!   replace them atomically.
//! - Output SSTables carry `level = task.output_level`; with `max_output_bytes = Some(n)` the writer
//!   starts a new output SSTable once the current one reaches `n` bytes (at a partition boundary).
//! - [`TaskKind::DropExpired`] deletes its inputs without reading them. Before doing so the engine
//!   re-checks them against its memtables with [`tombstones::fully_expired`] (`memtable_min_timestamp`),
//!   which the SSTable snapshot given here cannot know about.

pub mod leveled;
pub mod params;
pub mod simulator;
pub mod size_tiered;
pub mod time_window;
pub mod tombstones;

use std::collections::BTreeSet;

pub use leveled::level_overlaps;
pub use params::{
    CompactionOptionsError, CompactionParams, LeveledOptions, SizeTieredOptions, Strategy, TimeWindowOptions,
    TimestampResolution, TombstoneOptions, WindowUnit,
};

/// What the compaction strategies know about one live SSTable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsTableInfo {
    /// Generation; larger is newer.
    pub id: u64,
    /// Bytes on disk (all components' data; `Data.db` dominates).
    pub size_bytes: u64,
    /// LCS level (0 for fresh flushes and for the other strategies' outputs).
    pub level: u8,
    /// Murmur3 token of the first partition (inclusive).
    pub first_token: i64,
    /// Murmur3 token of the last partition (inclusive).
    pub last_token: i64,
    /// Smallest cell write timestamp (microseconds unless TWCS says otherwise).
    pub min_timestamp: i64,
    /// Largest cell write timestamp.
    pub max_timestamp: i64,
    /// Largest local deletion time of any tombstone or expiring cell, in seconds;
    /// `u32::MAX` when the SSTable holds live data that never expires.
    pub max_local_deletion_time: u32,
    /// Tombstones whose local deletion time + gc_grace is before the `now` of the call
    /// (the caller computes it from the SSTable's tombstone histogram).
    pub estimated_droppable_tombstones: u64,
    /// Cells (the denominator of the droppable-tombstone ratio).
    pub cell_count: u64,
    /// When the SSTable was written, in seconds (its `Data.db` creation time).
    pub created_at_seconds: u32,
}

impl SsTableInfo {
    /// Whether the token ranges of `self` and `other` share at least one token.
    #[must_use]
    pub fn overlaps(&self, other: &SsTableInfo) -> bool {
        self.first_token <= other.last_token && other.first_token <= self.last_token
    }

    /// Whether this SSTable's token range shares a token with `[first, last]`.
    #[must_use]
    pub fn overlaps_range(&self, first: i64, last: i64) -> bool {
        self.first_token <= last && first <= self.last_token
    }

    /// Fraction of this SSTable's cells that are droppable tombstones (0 with no cells).
    #[must_use]
    pub fn droppable_tombstone_ratio(&self) -> f64 {
        if self.cell_count == 0 {
            0.0
        } else {
            self.estimated_droppable_tombstones as f64 / self.cell_count as f64
        }
    }
}

/// What a task does with its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskKind {
    /// Merge the inputs into new SSTables.
    Compaction,
    /// Rewrite a single SSTable to purge its droppable tombstones.
    TombstoneCompaction,
    /// Delete the inputs whole, without reading or rewriting them: every cell in them has expired
    /// and is past gc_grace, and nothing they could shadow remains elsewhere.
    DropExpired,
}

/// One unit of compaction work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionTask {
    /// Generations of the input SSTables, ascending.
    pub inputs: Vec<u64>,
    /// Level of the output SSTables (always 0 outside LCS).
    pub output_level: u8,
    /// Start a new output SSTable past this many bytes (LCS); `None`: one output.
    pub max_output_bytes: Option<u64>,
    /// What to do.
    pub kind: TaskKind,
    /// Cleanup: only partitions whose token lies in one of these ranges `(start, end]` are
    /// written out (`start == end` is the whole ring); `None` keeps every partition.
    pub keep: Option<Vec<(i64, i64)>>,
}

impl CompactionTask {
    fn new(mut inputs: Vec<u64>, output_level: u8, max_output_bytes: Option<u64>, kind: TaskKind) -> Self {
        inputs.sort_unstable();
        inputs.dedup();
        CompactionTask { inputs, output_level, max_output_bytes, kind, keep: None }
    }
}

/// Whether `token` lies in the range `(start, end]` (wrapping past the greatest token when
/// `end <= start`; `start == end` is the whole ring).
#[must_use]
pub fn range_contains(start: i64, end: i64, token: i64) -> bool {
    if start < end {
        start < token && token <= end
    } else {
        token > start || token <= end
    }
}

/// What cleanup does with an SSTable whose tokens span `[min, max]`, given the ranges the node
/// keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupAction {
    /// Every token it can hold is kept: leave it.
    Keep,
    /// None of its tokens is kept: delete it whole.
    Drop,
    /// Rewrite it without the partitions outside the ranges.
    Rewrite,
}

/// Decides [`CleanupAction`] for an SSTable spanning tokens `[min, max]`.
#[must_use]
pub fn cleanup_action(min: i64, max: i64, keep: &[(i64, i64)]) -> CleanupAction {
    // Within one range: both ends in it and, for a wrapping range, on the same side of the wrap.
    let inside = |&(s, e): &(i64, i64)| {
        if s < e {
            s < min && max <= e
        } else {
            s == e || min > s || max <= e
        }
    };
    // Disjoint from a range: no token of [min, max] in (s, e].
    let outside = |&(s, e): &(i64, i64)| {
        if s < e {
            max <= s || min > e
        } else {
            s != e && max <= s && min > e
        }
    };
    if keep.iter().any(inside) {
        CleanupAction::Keep
    } else if keep.iter().all(outside) {
        CleanupAction::Drop
    } else {
        CleanupAction::Rewrite
    }
}

/// The next background compaction for a table, or `None` if nothing is worth doing.
///
/// SSTables in `compacting` are never chosen. `now_seconds` is the current time and
/// `gc_grace_seconds` the table's `gc_grace_seconds`: tombstones and expired cells whose local
/// deletion time is before `now_seconds - gc_grace_seconds` may be purged. Returns `None` when
/// `enabled` is false.
#[must_use]
pub fn next_task(
    params: &CompactionParams,
    sstables: &[SsTableInfo],
    compacting: &BTreeSet<u64>,
    now_seconds: u32,
    gc_grace_seconds: u32,
) -> Option<CompactionTask> {
    if !params.enabled {
        return None;
    }
    let ctx = Context {
        params,
        sstables,
        compacting,
        now_seconds,
        gc_before: now_seconds.saturating_sub(gc_grace_seconds),
    };
    match &params.strategy {
        Strategy::SizeTiered => size_tiered::next_task(&ctx),
        Strategy::Leveled(options) => leveled::next_task(&ctx, options),
        Strategy::TimeWindow(options) => time_window::next_task(&ctx, options),
    }
}

/// The tasks of a major compaction (`nodetool compact`), run even when `enabled` is false.
///
/// Like Cassandra, a major compaction needs every SSTable: while any is compacting this returns
/// nothing, and the engine retries once background compactions are stopped and drained.
/// - STCS: one task merging everything into one SSTable.
/// - LCS: one task merging everything, written split at `sstable_size_in_mb` into the lowest level
///   (≥ 1) whose capacity holds the total.
/// - TWCS: one task per time window (merging across windows would keep old data alive until the
///   newest expires; Cassandra's single task does that, Sibyl deliberately does not), plus a
///   [`TaskKind::DropExpired`] task for fully expired SSTables.
#[must_use]
pub fn major_task(
    params: &CompactionParams,
    sstables: &[SsTableInfo],
    compacting: &BTreeSet<u64>,
    now_seconds: u32,
    gc_grace_seconds: u32,
) -> Vec<CompactionTask> {
    if sstables.is_empty() || sstables.iter().any(|s| compacting.contains(&s.id)) {
        return Vec::new();
    }
    let ctx = Context {
        params,
        sstables,
        compacting,
        now_seconds,
        gc_before: now_seconds.saturating_sub(gc_grace_seconds),
    };
    match &params.strategy {
        Strategy::SizeTiered => {
            vec![CompactionTask::new(sstables.iter().map(|s| s.id).collect(), 0, None, TaskKind::Compaction)]
        }
        Strategy::Leveled(options) => leveled::major_task(sstables, options),
        Strategy::TimeWindow(options) => time_window::major_tasks(&ctx, options),
    }
}

/// Estimated number of compactions still to do (`nodetool compactionstats` "pending tasks").
///
/// Uses Cassandra's estimates: STCS counts `ceil(n / max_threshold)` per bucket of at least
/// `min_threshold`; LCS counts SSTable-sized units above each level's capacity plus L0 batches;
/// TWCS counts eligible windows, plus one if fully expired SSTables wait to be dropped.
#[must_use]
pub fn pending_tasks(
    params: &CompactionParams,
    sstables: &[SsTableInfo],
    compacting: &BTreeSet<u64>,
    now_seconds: u32,
    gc_grace_seconds: u32,
) -> usize {
    let ctx = Context {
        params,
        sstables,
        compacting,
        now_seconds,
        gc_before: now_seconds.saturating_sub(gc_grace_seconds),
    };
    match &params.strategy {
        Strategy::SizeTiered => size_tiered::pending_tasks(&ctx),
        Strategy::Leveled(options) => leveled::pending_tasks(&ctx, options),
        Strategy::TimeWindow(options) => time_window::pending_tasks(&ctx, options),
    }
}

/// The arguments every strategy needs, gathered once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub params: &'a CompactionParams,
    pub sstables: &'a [SsTableInfo],
    pub compacting: &'a BTreeSet<u64>,
    pub now_seconds: u32,
    /// Tombstones and expired cells with a local deletion time before this may be purged.
    pub gc_before: u32,
}

impl Context<'_> {
    /// SSTables not being compacted.
    pub fn candidates(&self) -> Vec<&SsTableInfo> {
        self.sstables.iter().filter(|s| !self.compacting.contains(&s.id)).collect()
    }

    /// Whether `s` is worth compacting alone for its tombstones.
    pub fn worth_dropping_tombstones(&self, s: &SsTableInfo) -> bool {
        tombstones::worth_dropping_tombstones(
            &self.params.tombstone,
            s,
            self.sstables,
            self.now_seconds,
            self.gc_before,
        )
    }
}

/// Sum of the sizes of `sstables`.
pub(crate) fn total_bytes<'a>(sstables: impl IntoIterator<Item = &'a SsTableInfo>) -> u64 {
    sstables.into_iter().fold(0u64, |acc, s| acc.saturating_add(s.size_bytes))
}
