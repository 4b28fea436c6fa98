//! A deterministic simulation of one table under a write workload, to compare strategies.
//!
//! No data is written: each SSTable is a statistical summary — a token range, the fraction of the
//! table's keys in that range it holds ("density"), and a coarse histogram of its entries by write
//! time (at most 12 parts, each with its share of entries and of tombstones, writes uniform within
//! a part). Each step is one flush followed by whatever compaction the strategy asks for, decided
//! by the real [`next_task`] on the SSTables' [`SsTableInfo`]s.
//!
//! The model:
//! - Writes go to `key_count` keys uniformly at random (an overwrite workload); a flush of
//!   `flush_bytes` holds `w = flush_bytes / value_bytes` writes, hence
//!   `key_count × (1 − (1 − 1/key_count)^w)` distinct keys, spread over nearly the whole token ring
//!   (its first and last tokens are drawn as the minimum and maximum of that many uniform tokens).
//!   `delete_fraction` of the writes are deletions; with `ttl_seconds` every cell expires.
//! - Merging assumes the inputs' key sets are independent: over each stretch of tokens between
//!   input boundaries the output holds `1 − ∏(1 − dᵢ)` of the keys, each key's newest version
//!   coming from input `j` with probability `dⱼ × ∏(1 − dᵢ)` over the inputs `i` newer than `j`.
//! - Purging: tombstones past gc_grace and cells past TTL + gc_grace are dropped, except where a
//!   key may also sit in an overlapping SSTable left out of the merge whose oldest data is older
//!   (Cassandra's rule, evaluated per key: the chance that no such SSTable holds the key is the
//!   product of `1 − d` over them). Parts are split at the expiry cutoff so what survives keeps its
//!   true age; histograms are then coarsened by merging the neighbouring parts that blur them
//!   least (matching their mean and variance).
//! - Outputs with a size limit (LCS) are split into equal slices of the merged token range,
//!   numbered in token order.
//! - A task costs its input bytes. With `compaction_bytes_per_step = None` compaction keeps up:
//!   tasks run to completion within the step. Otherwise up to `concurrent_compactors` tasks run at
//!   once and share that budget in start order, so SSTables really sit in `compacting`.
//!   [`TaskKind::DropExpired`] tasks cost nothing and write nothing.
//!
//! Reported: write amplification ((flush + compaction bytes written) / flush bytes), space
//! amplification (SSTable bytes / live data bytes), SSTables per point read (SSTables whose token
//! range covers a random token — an upper bound, bloom filters would skip some), the SSTable count
//! after every step, and for LCS whether any level ≥ 1 ever held overlapping SSTables.

use std::collections::{BTreeSet, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::leveled::level_overlaps;
use super::{next_task, CompactionParams, CompactionTask, SsTableInfo, Strategy, TaskKind};

/// Most tasks started in one step (a guard against a strategy that never settles).
pub const MAX_TASKS_PER_STEP: usize = 10_000;

/// Number of tokens on the Murmur3 ring.
const TOKEN_SPAN: f64 = 18_446_744_073_709_551_616.0;

/// The simulated write workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// Distinct keys (partitions) writes go to.
    pub key_count: u64,
    /// Bytes per key in an SSTable.
    pub value_bytes: u64,
    /// Bytes written to the memtable between flushes.
    pub flush_bytes: u64,
    /// Simulated seconds between flushes (one step).
    pub flush_interval_seconds: u32,
    /// Clock at the start, in seconds since the epoch.
    pub start_seconds: u32,
    /// TTL of every write, if any.
    pub ttl_seconds: Option<u32>,
    /// Fraction of writes that are deletions.
    pub delete_fraction: f64,
    /// The table's `gc_grace_seconds`.
    pub gc_grace_seconds: u32,
    /// Most compactions running at once (only with a `compaction_bytes_per_step` budget).
    pub concurrent_compactors: usize,
    /// Input bytes compaction gets through per step; `None` means it always keeps up.
    pub compaction_bytes_per_step: Option<u64>,
    /// Random point reads sampled per step for the SSTables-per-read figures.
    pub reads_per_step: usize,
}

impl Default for Workload {
    /// One million 1 KiB keys, 16 MiB flushes a minute, no TTL, no deletions.
    fn default() -> Self {
        Workload {
            key_count: 1 << 20,
            value_bytes: 1024,
            flush_bytes: 16 << 20,
            flush_interval_seconds: 60,
            start_seconds: 1_700_000_000,
            ttl_seconds: None,
            delete_fraction: 0.0,
            gc_grace_seconds: 864_000,
            concurrent_compactors: 1,
            compaction_bytes_per_step: None,
            reads_per_step: 16,
        }
    }
}

/// What a simulation measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationReport {
    /// Steps (flushes) simulated.
    pub steps: u64,
    /// Bytes written by flushes.
    pub bytes_flushed: u64,
    /// Bytes written by [`TaskKind::Compaction`] tasks.
    pub compaction_bytes_written: u64,
    /// Bytes written by [`TaskKind::TombstoneCompaction`] tasks.
    pub tombstone_compaction_bytes_written: u64,
    /// Bytes written by [`TaskKind::DropExpired`] tasks (zero by design; measured anyway).
    pub drop_expired_bytes_written: u64,
    /// Estimated bytes of expired or deleted data that rewriting compactions purged.
    pub bytes_purged_by_rewrite: u64,
    /// Bytes of SSTables deleted whole by [`TaskKind::DropExpired`].
    pub bytes_dropped_expired: u64,
    /// [`TaskKind::Compaction`] tasks completed.
    pub compaction_tasks: u64,
    /// [`TaskKind::TombstoneCompaction`] tasks completed.
    pub tombstone_compaction_tasks: u64,
    /// [`TaskKind::DropExpired`] tasks completed.
    pub drop_expired_tasks: u64,
    /// SSTables deleted whole by [`TaskKind::DropExpired`].
    pub sstables_dropped_expired: u64,
    /// (flush + compaction bytes written) / flush bytes.
    pub write_amplification: f64,
    /// SSTable bytes / live data bytes at the end.
    pub space_amplification: f64,
    /// Mean of the space amplification over the steps with live data.
    pub mean_space_amplification: f64,
    /// Largest space amplification seen after a step.
    pub max_space_amplification: f64,
    /// Mean SSTables whose token range covers a random token.
    pub mean_sstables_per_read: f64,
    /// Most SSTables covering one sampled token.
    pub max_sstables_per_read: usize,
    /// Live SSTables after each step.
    pub sstable_count_over_time: Vec<usize>,
    /// Largest entry of `sstable_count_over_time`.
    pub max_sstable_count: usize,
    /// Checks (after every task and step, LCS only) that found overlapping SSTables in a level ≥ 1.
    pub level_overlap_violations: u64,
    /// The first overlapping pair found: (step, SSTable, SSTable).
    pub first_level_overlap: Option<(u64, u64, u64)>,
    /// Steps that hit [`MAX_TASKS_PER_STEP`].
    pub task_limit_reached_steps: u64,
    /// Most tasks running at once (above 1 only with a `compaction_bytes_per_step` budget).
    pub max_running_tasks: usize,
    /// The SSTables at the end.
    pub final_sstables: Vec<SsTableInfo>,
}

/// Runs `steps` flushes of `workload` under `params` with an RNG seeded from `seed`.
#[must_use]
pub fn simulate(params: &CompactionParams, workload: &Workload, steps: u64, seed: u64) -> SimulationReport {
    let mut rng = StdRng::seed_from_u64(seed);
    simulate_with_rng(params, workload, steps, &mut rng)
}

/// [`simulate`] with the caller's RNG.
#[must_use]
pub fn simulate_with_rng(
    params: &CompactionParams,
    workload: &Workload,
    steps: u64,
    rng: &mut impl Rng,
) -> SimulationReport {
    let mut sim = Simulation::new(params, workload);
    for step in 0..steps {
        sim.step(step, rng);
    }
    sim.report(steps)
}

/// One simulated SSTable.
#[derive(Debug, Clone)]
struct SimTable {
    id: u64,
    level: u8,
    first: i128,
    last: i128,
    /// Fraction of the keys in `[first, last]` this SSTable holds.
    density: f64,
    /// Oldest and newest write times (seconds), exact.
    min_write: f64,
    max_write: f64,
    /// Its entries by write time: a coarse histogram of at most [`MAX_PARTS`] parts.
    parts: Vec<Part>,
    created_at_seconds: u32,
}

impl SimTable {
    fn tombstone_fraction(&self) -> f64 {
        self.parts.iter().map(|p| p.share * p.tombstone_fraction).sum()
    }
}

/// Most write-time parts kept per simulated SSTable.
const MAX_PARTS: usize = 12;

/// A share of an SSTable's entries written over `[min_write, max_write]` (seconds, uniformly).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Part {
    min_write: f64,
    max_write: f64,
    /// Fraction of the SSTable's entries.
    share: f64,
    /// Fraction of this part's entries that are tombstones.
    tombstone_fraction: f64,
}

impl Part {
    /// Fraction of this part's writes strictly older than `cutoff` seconds.
    fn older_fraction(&self, cutoff: f64) -> f64 {
        if cutoff <= self.min_write {
            0.0
        } else if cutoff > self.max_write {
            1.0
        } else {
            ((cutoff - self.min_write) / (self.max_write - self.min_write).max(1e-9)).clamp(0.0, 1.0)
        }
    }

    /// Middle of the part's writes older than `cutoff`.
    fn older_midpoint(&self, cutoff: f64) -> f64 {
        (self.min_write + cutoff.min(self.max_write)) / 2.0
    }

    fn center(&self) -> f64 {
        (self.min_write + self.max_write) / 2.0
    }

    fn variance(&self) -> f64 {
        (self.max_write - self.min_write).powi(2) / 12.0
    }

    /// One uniform part with the share, mean and variance of both (clamped to their span).
    fn combine(a: &Part, b: &Part) -> Part {
        let share = a.share + b.share;
        let center = (a.share * a.center() + b.share * b.center()) / share;
        let variance = (a.share * (a.variance() + (a.center() - center).powi(2))
            + b.share * (b.variance() + (b.center() - center).powi(2)))
            / share;
        let half = (12.0 * variance).sqrt() / 2.0;
        Part {
            min_write: (center - half).max(a.min_write.min(b.min_write)),
            max_write: (center + half).min(a.max_write.max(b.max_write)),
            share,
            tombstone_fraction: (a.share * a.tombstone_fraction + b.share * b.tombstone_fraction) / share,
        }
    }

    /// How much merging `a` and `b` blurs the histogram (Ward's criterion).
    fn merge_cost(a: &Part, b: &Part) -> f64 {
        a.share * b.share / (a.share + b.share) * (a.center() - b.center()).powi(2)
    }
}

/// Merges neighbouring parts (by time) until at most [`MAX_PARTS`] remain, cheapest first.
fn coarsen(mut parts: Vec<Part>) -> Vec<Part> {
    parts.retain(|p| p.share > 0.0);
    parts.sort_by(|a, b| a.center().total_cmp(&b.center()));
    while parts.len() > MAX_PARTS {
        let best = (0..parts.len() - 1)
            .min_by(|&i, &j| {
                Part::merge_cost(&parts[i], &parts[i + 1])
                    .total_cmp(&Part::merge_cost(&parts[j], &parts[j + 1]))
            })
            .unwrap_or(0);
        let b = parts.remove(best + 1);
        parts[best] = Part::combine(&parts[best], &b);
    }
    parts
}

/// The SSTables left out of a merge that overlap one stretch of tokens, by age: a purge at time
/// `c` is blocked for a key if one of them holds the key and has data older than `c`.
#[derive(Debug)]
struct Blockers {
    /// (min write time, probability none of the blockers up to here holds the key), ascending.
    prefix: Vec<(f64, f64)>,
}

impl Blockers {
    fn new<'t>(others: impl Iterator<Item = &'t SimTable>) -> Blockers {
        let mut v: Vec<(f64, f64)> = others.map(|t| (t.min_write, t.density)).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut clear = 1.0;
        let prefix = v
            .into_iter()
            .map(|(min_write, density)| {
                clear *= 1.0 - density;
                (min_write, clear)
            })
            .collect();
        Blockers { prefix }
    }

    /// Probability that no blocker holding the key has data at or before `time`.
    fn clear_at(&self, time: f64) -> f64 {
        let n = self.prefix.partition_point(|(m, _)| *m <= time);
        if n == 0 {
            1.0
        } else {
            self.prefix[n - 1].1
        }
    }
}

/// A task in progress.
#[derive(Debug)]
struct Running {
    task: CompactionTask,
    remaining_bytes: u64,
}

#[derive(Debug)]
struct Simulation<'a> {
    params: &'a CompactionParams,
    w: &'a Workload,
    key_count: f64,
    tables: Vec<SimTable>,
    running: VecDeque<Running>,
    next_id: u64,
    now: u32,
    /// (time, writes) of every flush still inside the TTL (all of them without TTL).
    write_history: VecDeque<(u32, f64)>,
    writes_in_window: f64,
    r: SimulationReport,
    space_amp_sum: f64,
    space_amp_samples: u64,
    reads_sum: u64,
    reads_samples: u64,
}

impl<'a> Simulation<'a> {
    fn new(params: &'a CompactionParams, w: &'a Workload) -> Self {
        Simulation {
            params,
            w,
            key_count: w.key_count.max(1) as f64,
            tables: Vec::new(),
            running: VecDeque::new(),
            next_id: 1,
            now: w.start_seconds,
            write_history: VecDeque::new(),
            writes_in_window: 0.0,
            r: SimulationReport {
                steps: 0,
                bytes_flushed: 0,
                compaction_bytes_written: 0,
                tombstone_compaction_bytes_written: 0,
                drop_expired_bytes_written: 0,
                bytes_purged_by_rewrite: 0,
                bytes_dropped_expired: 0,
                compaction_tasks: 0,
                tombstone_compaction_tasks: 0,
                drop_expired_tasks: 0,
                sstables_dropped_expired: 0,
                write_amplification: 0.0,
                space_amplification: 0.0,
                mean_space_amplification: 0.0,
                max_space_amplification: 0.0,
                mean_sstables_per_read: 0.0,
                max_sstables_per_read: 0,
                sstable_count_over_time: Vec::new(),
                max_sstable_count: 0,
                level_overlap_violations: 0,
                first_level_overlap: None,
                task_limit_reached_steps: 0,
                max_running_tasks: 0,
                final_sstables: Vec::new(),
            },
            space_amp_sum: 0.0,
            space_amp_samples: 0,
            reads_sum: 0,
            reads_samples: 0,
        }
    }

    fn step(&mut self, step: u64, rng: &mut impl Rng) {
        let previous = self.now;
        self.now = self.now.saturating_add(self.w.flush_interval_seconds);
        self.flush(previous, rng);
        self.compact(step);
        self.check_levels(step);
        self.sample(rng);
    }

    /// Entries (keys present, live or tombstone) of a table.
    fn entries(&self, t: &SimTable) -> f64 {
        t.density * self.key_count * width_fraction(t.first, t.last)
    }

    fn bytes_of(&self, entries: f64) -> u64 {
        (entries * self.w.value_bytes as f64).round() as u64
    }

    fn flush(&mut self, previous: u32, rng: &mut impl Rng) {
        let writes = (self.w.flush_bytes / self.w.value_bytes.max(1)).max(1) as f64;
        self.record_writes(writes);
        let distinct = self.key_count * -f64::exp_m1(writes * f64::ln_1p(-1.0 / self.key_count));
        let distinct = if self.key_count <= 1.0 { 1.0 } else { distinct.max(1.0) };
        // First and last tokens of `distinct` uniform tokens.
        let n = distinct.round().max(1.0);
        let low = 1.0 - rng.random::<f64>().powf(1.0 / n);
        let high = 1.0 - rng.random::<f64>().powf(1.0 / n);
        let first = i128::from(i64::MIN) + (low * TOKEN_SPAN) as i128;
        let last = (i128::from(i64::MAX) - (high * TOKEN_SPAN) as i128).max(first);
        let density = (distinct / (self.key_count * width_fraction(first, last))).min(1.0);
        let table = SimTable {
            id: self.take_id(),
            level: 0,
            first,
            last,
            density,
            min_write: f64::from(previous) + 1e-3,
            max_write: f64::from(self.now),
            parts: vec![Part {
                min_write: f64::from(previous) + 1e-3,
                max_write: f64::from(self.now),
                share: 1.0,
                tombstone_fraction: self.w.delete_fraction.clamp(0.0, 1.0),
            }],
            created_at_seconds: self.now,
        };
        self.r.bytes_flushed += self.bytes_of(self.entries(&table));
        self.tables.push(table);
    }

    fn record_writes(&mut self, writes: f64) {
        self.write_history.push_back((self.now, writes));
        self.writes_in_window += writes;
        if let Some(ttl) = self.w.ttl_seconds {
            while let Some(&(t, n)) = self.write_history.front() {
                if u64::from(t) + u64::from(ttl) > u64::from(self.now) {
                    break;
                }
                self.writes_in_window -= n;
                self.write_history.pop_front();
            }
        }
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn info(&self, t: &SimTable) -> SsTableInfo {
        let entries = self.entries(t);
        let gc = f64::from(self.w.gc_grace_seconds);
        let now = f64::from(self.now);
        let ttl = self.w.ttl_seconds.map(f64::from);
        let droppable: f64 = t
            .parts
            .iter()
            .map(|p| {
                let tombstones = p.tombstone_fraction * p.older_fraction(now - gc);
                let expired =
                    ttl.map_or(0.0, |ttl| (1.0 - p.tombstone_fraction) * p.older_fraction(now - gc - ttl));
                p.share * (tombstones + expired)
            })
            .sum();
        SsTableInfo {
            id: t.id,
            size_bytes: self.bytes_of(entries),
            level: t.level,
            first_token: clamp_token(t.first),
            last_token: clamp_token(t.last),
            min_timestamp: (t.min_write * 1e6) as i64,
            max_timestamp: (t.max_write * 1e6) as i64,
            max_local_deletion_time: self.max_local_deletion_time(t),
            estimated_droppable_tombstones: (entries * droppable).round() as u64,
            cell_count: entries.round() as u64,
            created_at_seconds: t.created_at_seconds,
        }
    }

    fn max_local_deletion_time(&self, t: &SimTable) -> u32 {
        match self.w.ttl_seconds {
            Some(ttl) => (t.max_write.ceil() as u32).saturating_add(ttl),
            None if t.tombstone_fraction() >= 1.0 => t.max_write.ceil() as u32,
            None => u32::MAX,
        }
    }

    fn infos(&self) -> Vec<SsTableInfo> {
        self.tables.iter().map(|t| self.info(t)).collect()
    }

    fn compacting(&self) -> BTreeSet<u64> {
        self.running.iter().flat_map(|r| r.task.inputs.iter().copied()).collect()
    }

    fn compact(&mut self, step: u64) {
        let mut started = 0usize;
        let mut budget = self.w.compaction_bytes_per_step;
        loop {
            // Fill the free compactor slots; when compaction keeps up, one task at a time, each
            // finished before the next is chosen.
            let slots = if budget.is_none() { 1 } else { self.w.concurrent_compactors.max(1) };
            while self.running.len() < slots && started < MAX_TASKS_PER_STEP {
                let infos = self.infos();
                let Some(task) =
                    next_task(self.params, &infos, &self.compacting(), self.now, self.w.gc_grace_seconds)
                else {
                    break;
                };
                started += 1;
                let cost = if task.kind == TaskKind::DropExpired {
                    0
                } else {
                    infos.iter().filter(|s| task.inputs.contains(&s.id)).map(|s| s.size_bytes).sum()
                };
                self.running.push_back(Running { task, remaining_bytes: cost });
                self.r.max_running_tasks = self.r.max_running_tasks.max(self.running.len());
            }
            let Some(front) = self.running.front_mut() else { break };
            match budget.as_mut() {
                None => front.remaining_bytes = 0,
                Some(b) => {
                    let spent = (*b).min(front.remaining_bytes);
                    front.remaining_bytes -= spent;
                    *b -= spent;
                }
            }
            if front.remaining_bytes > 0 {
                break; // out of budget for this step
            }
            if let Some(done) = self.running.pop_front() {
                self.complete(&done.task);
                self.check_levels(step);
            }
            if started >= MAX_TASKS_PER_STEP {
                self.r.task_limit_reached_steps += 1;
                break;
            }
        }
    }

    fn complete(&mut self, task: &CompactionTask) {
        let (inputs, rest): (Vec<SimTable>, Vec<SimTable>) =
            std::mem::take(&mut self.tables).into_iter().partition(|t| task.inputs.contains(&t.id));
        self.tables = rest;
        // A DropExpired task deletes its inputs and writes nothing; the others rewrite them.
        let outputs = match task.kind {
            TaskKind::DropExpired => Vec::new(),
            TaskKind::Compaction | TaskKind::TombstoneCompaction => self.merge(&inputs, task),
        };
        let written: u64 = outputs.iter().map(|t| self.bytes_of(self.entries(t))).sum();
        match task.kind {
            TaskKind::DropExpired => {
                self.r.drop_expired_tasks += 1;
                self.r.drop_expired_bytes_written += written;
                self.r.sstables_dropped_expired += inputs.len() as u64;
                self.r.bytes_dropped_expired +=
                    inputs.iter().map(|t| self.bytes_of(self.entries(t))).sum::<u64>();
            }
            TaskKind::Compaction => {
                self.r.compaction_tasks += 1;
                self.r.compaction_bytes_written += written;
            }
            TaskKind::TombstoneCompaction => {
                self.r.tombstone_compaction_tasks += 1;
                self.r.tombstone_compaction_bytes_written += written;
            }
        }
        self.tables.extend(outputs);
    }

    /// The statistical merge described in the module documentation.
    fn merge(&mut self, inputs: &[SimTable], task: &CompactionTask) -> Vec<SimTable> {
        let Some(first) = inputs.iter().map(|t| t.first).min() else { return Vec::new() };
        let last = inputs.iter().map(|t| t.last).max().unwrap_or(first);
        let now = f64::from(self.now);
        let gc_before = now - f64::from(self.w.gc_grace_seconds);
        // Cells written before this have expired and passed gc_grace.
        let expired_before = self.w.ttl_seconds.map_or(f64::NEG_INFINITY, |ttl| gc_before - f64::from(ttl));

        let mut newest_first: Vec<&SimTable> = inputs.iter().collect();
        newest_first.sort_by(|a, b| b.max_write.total_cmp(&a.max_write).then(b.id.cmp(&a.id)));
        let mut cuts: Vec<i128> = inputs.iter().flat_map(|t| [t.first, t.last + 1]).collect();
        cuts.sort_unstable();
        cuts.dedup();

        // Each input part splits at `expired_before` into an expired segment and the rest; per
        // segment, the (entries, tombstones) that survive the merge.
        let segments = |p: &Part| -> [Part; 2] {
            let cut = expired_before.clamp(p.min_write, p.max_write);
            let old = p.older_fraction(expired_before);
            [
                Part { max_write: cut, share: p.share * old, ..*p },
                Part { min_write: cut, share: p.share * (1.0 - old), ..*p },
            ]
        };
        let mut kept: Vec<Vec<[(f64, f64); 2]>> =
            newest_first.iter().map(|t| vec![[(0.0, 0.0); 2]; t.parts.len()]).collect();
        let mut purged = 0.0;
        for pair in cuts.windows(2) {
            let (lo, hi) = (pair[0], pair[1]);
            let keys = self.key_count * (hi - lo) as f64 / TOKEN_SPAN;
            let blockers = Blockers::new(self.tables.iter().filter(|t| t.first < hi && t.last >= lo));
            let mut absent = 1.0;
            for (j, t) in newest_first.iter().enumerate() {
                if !(t.first <= lo && t.last >= hi - 1) {
                    continue;
                }
                // Keys whose newest version among the inputs is in `t`.
                let from_t = keys * absent * t.density;
                absent *= 1.0 - t.density;
                for (q, p) in t.parts.iter().enumerate() {
                    let [expired, recent] = segments(p);
                    // Expired segment: everything in it may go, tombstones and expired cells alike.
                    let e = from_t * expired.share;
                    let gone = e * blockers.clear_at(expired.older_midpoint(expired_before));
                    let k = &mut kept[j][q][0];
                    k.0 += e - gone;
                    k.1 += (e - gone) * expired.tombstone_fraction;
                    // The rest: only tombstones past gc_grace may go.
                    let e = from_t * recent.share;
                    let tombstones = e * recent.tombstone_fraction;
                    let gone_tombstones = tombstones
                        * recent.older_fraction(gc_before)
                        * blockers.clear_at(recent.older_midpoint(gc_before));
                    let k = &mut kept[j][q][1];
                    k.0 += e - gone_tombstones;
                    k.1 += tombstones - gone_tombstones;
                    purged += gone + gone_tombstones;
                }
            }
        }
        self.r.bytes_purged_by_rewrite += self.bytes_of(purged);

        let entries: f64 = kept.iter().flatten().flatten().map(|k| k.0).sum();
        if entries < 0.5 {
            return Vec::new();
        }
        let mut parts = Vec::new();
        for (t, kept) in newest_first.iter().zip(&kept) {
            for (p, halves) in t.parts.iter().zip(kept) {
                for (segment, &(e, tombstones)) in segments(p).iter().zip(halves) {
                    if e > entries * 1e-9 {
                        parts.push(Part {
                            share: e / entries,
                            tombstone_fraction: (tombstones / e).clamp(0.0, 1.0),
                            ..*segment
                        });
                    }
                }
            }
        }
        let min_write = parts.iter().map(|p| p.min_write).fold(f64::INFINITY, f64::min);
        let max_write = inputs.iter().map(|t| t.max_write).fold(f64::NEG_INFINITY, f64::max);
        let parts = coarsen(parts);

        let bytes = entries * self.w.value_bytes as f64;
        let pieces = match task.max_output_bytes {
            Some(limit) if limit > 0 => ((bytes / limit as f64).ceil() as u64).max(1),
            _ => 1,
        };
        let density = (entries / (self.key_count * width_fraction(first, last))).min(1.0);
        let width = last - first + 1;
        let pieces = i128::from(pieces).min(width).max(1);
        (0..pieces)
            .map(|i| SimTable {
                id: self.take_id(),
                level: task.output_level,
                first: first + width * i / pieces,
                last: first + width * (i + 1) / pieces - 1,
                density,
                min_write: min_write.min(max_write),
                max_write,
                parts: parts.clone(),
                created_at_seconds: self.now,
            })
            .collect()
    }

    fn check_levels(&mut self, step: u64) {
        if !matches!(self.params.strategy, Strategy::Leveled(_)) {
            return;
        }
        let overlaps = level_overlaps(&self.infos());
        if let Some(&(a, b)) = overlaps.first() {
            self.r.level_overlap_violations += 1;
            self.r.first_level_overlap.get_or_insert((step, a, b));
        }
    }

    fn sample(&mut self, rng: &mut impl Rng) {
        let count = self.tables.len();
        self.r.sstable_count_over_time.push(count);
        self.r.max_sstable_count = self.r.max_sstable_count.max(count);

        let live_keys = self.key_count
            * -f64::exp_m1(self.writes_in_window * f64::ln_1p(-1.0 / self.key_count))
            * (1.0 - self.w.delete_fraction.clamp(0.0, 1.0));
        let logical = live_keys * self.w.value_bytes as f64;
        let stored: f64 = self.tables.iter().map(|t| self.entries(t) * self.w.value_bytes as f64).sum();
        if logical >= 1.0 {
            let amp = stored / logical;
            self.r.space_amplification = amp;
            self.space_amp_sum += amp;
            self.space_amp_samples += 1;
            self.r.max_space_amplification = self.r.max_space_amplification.max(amp);
        }

        for _ in 0..self.w.reads_per_step {
            let token = i128::from(rng.random::<i64>());
            let hits = self.tables.iter().filter(|t| t.first <= token && token <= t.last).count();
            self.reads_sum += hits as u64;
            self.reads_samples += 1;
            self.r.max_sstables_per_read = self.r.max_sstables_per_read.max(hits);
        }
    }

    fn report(mut self, steps: u64) -> SimulationReport {
        let written = self.r.bytes_flushed
            + self.r.compaction_bytes_written
            + self.r.tombstone_compaction_bytes_written
            + self.r.drop_expired_bytes_written;
        self.r.steps = steps;
        self.r.write_amplification =
            if self.r.bytes_flushed == 0 { 0.0 } else { written as f64 / self.r.bytes_flushed as f64 };
        self.r.mean_space_amplification = if self.space_amp_samples == 0 {
            0.0
        } else {
            self.space_amp_sum / self.space_amp_samples as f64
        };
        self.r.mean_sstables_per_read =
            if self.reads_samples == 0 { 0.0 } else { self.reads_sum as f64 / self.reads_samples as f64 };
        self.r.final_sstables = self.infos();
        self.r
    }
}

/// Fraction of the token ring `[first, last]` covers.
fn width_fraction(first: i128, last: i128) -> f64 {
    ((last - first + 1).max(0) as f64 / TOKEN_SPAN).min(1.0)
}

fn clamp_token(t: i128) -> i64 {
    i64::try_from(t.clamp(i128::from(i64::MIN), i128::from(i64::MAX))).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_report() {
        let p = CompactionParams::default();
        let w = Workload { flush_bytes: 64 << 20, ..Workload::default() };
        assert_eq!(simulate(&p, &w, 200, 7), simulate(&p, &w, 200, 7));
    }

    #[test]
    fn a_flush_covers_nearly_the_whole_ring() {
        let p = CompactionParams { enabled: false, ..CompactionParams::default() };
        let r = simulate(&p, &Workload::default(), 1, 1);
        let s = &r.final_sstables[0];
        assert!(s.first_token < i64::MIN / 100 * 99 && s.last_token > i64::MAX / 100 * 99, "{s:?}");
        // 16 MiB of 1 KiB writes over a million keys: almost all distinct.
        assert!(s.cell_count > 16_000 && s.cell_count <= 16_384, "{s:?}");
        assert_eq!(r.write_amplification, 1.0);
    }

    #[test]
    fn merging_overwrites_deduplicates() {
        // Four flushes each holding all keys merge into one table holding them once.
        let p = CompactionParams::default();
        let w = Workload { key_count: 1000, flush_bytes: 1000 * 1024 * 50, ..Workload::default() };
        let r = simulate(&p, &w, 4, 3);
        assert_eq!(r.final_sstables.len(), 1);
        let s = &r.final_sstables[0];
        assert!((990..=1000).contains(&s.cell_count), "{s:?}");
        assert!((r.space_amplification - 1.0).abs() < 0.02, "{}", r.space_amplification);
    }
}
