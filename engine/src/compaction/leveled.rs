//! Leveled compaction (LCS): levels of non-overlapping SSTables, each `fanout_size` times larger
//! than the one before.
//!
//! Flushes land in L0, where SSTables may overlap. Every level L ≥ 1 holds SSTables of about
//! `sstable_size_in_mb` whose token ranges do not overlap, so a read consults at most one SSTable
//! per level. Level L's capacity is `sstable_size × fanout^L` bytes (L0's is 4 SSTables). The
//! choice follows Cassandra's `LeveledManifest.getCompactionCandidates`:
//!
//! 1. If L0 holds more than 32 SSTables ([`MAX_COMPACTING_L0`]), L0 has fallen behind and a
//!    size-tiered compaction inside L0 (output stays in L0, one SSTable) is prepared.
//! 2. From the highest level down, the first level L ≥ 1 whose score — bytes not being compacted
//!    over capacity — exceeds 1.001 is compacted (the L0 size-tiered task of step 1 goes first if
//!    there is one). Cassandra deliberately takes the *highest* such level, not the highest score:
//!    emptying upper levels first minimises total rewriting when L0 is far behind. The task is one
//!    SSTable of L, taken round-robin through the token ring, plus every SSTable of L+1 it
//!    overlaps; outputs go to L+1, split at `sstable_size_in_mb`. The highest level (8) is never
//!    compacted upwards.
//! 3. Otherwise L0 → L1: L0 SSTables oldest first (by newest timestamp) with every L0 SSTable they
//!    overlap, at most `max_threshold`; if together they reach one SSTable's worth of bytes, every
//!    L1 SSTable overlapping them joins and the output goes to L1, else the output stays in L0.
//!    Sibyl waits for [`L0_COMPACTION_TRIGGER`] (4) such SSTables, where Cassandra starts at 2:
//!    merging a growing L0 SSTable with every small flush rewrites it over and over. Sibyl also
//!    goes to L1 when the candidates hold at least as many bytes as the L1 SSTables they overlap
//!    (an empty or small L1): Cassandra's L0 → L0 merge exists to gather a full SSTable's worth
//!    before rewriting the L1 data it overlaps, and when that L1 data is smaller than what L0
//!    already holds there is nothing to amortise, only the L0 data written twice.
//! 4. Otherwise the L0 size-tiered task, if any; otherwise one SSTable worth compacting alone for
//!    its tombstones (highest level first, highest droppable ratio first; it stays in its level).
//!
//! Round-robin position. Cassandra remembers, per level, the last SSTable compacted out of it and
//! resumes just past it; after a restart it derives that position from the newest SSTable of the
//! next level. Sibyl always derives it that way, so the choice is a pure function of the SSTables:
//! the next SSTable taken from level L is the first (by first token) whose first token is above the
//! last token of the newest (highest generation) SSTable of level L+1, wrapping around. This
//! requires the engine to number a task's outputs in token order, which it does anyway by writing
//! them in order. A tombstone compaction in L+1 moves the position to its output's range; that
//! only shifts where the next sweep of L starts.

use super::size_tiered;
use super::{total_bytes, CompactionTask, Context, LeveledOptions, SsTableInfo, TaskKind};

/// Highest level (Cassandra has 9 levels, 0 to 8). SSTables claiming a higher level are treated
/// as being in it.
pub const MAX_LEVEL: u8 = 8;

/// Above this many SSTables in L0, size-tiered compaction runs inside L0 first.
pub const MAX_COMPACTING_L0: usize = 32;

/// Fewest compactable L0 SSTables for an L0 → L1 (or L0 → L0) compaction.
pub const L0_COMPACTION_TRIGGER: usize = 4;

/// Score above which a level is compacted.
const SCORE_THRESHOLD: f64 = 1.001;

/// Capacity of `level` in bytes: 4 SSTables for L0, `sstable_size × fanout^level` above.
#[must_use]
pub fn max_bytes_for_level(level: u8, options: &LeveledOptions) -> u64 {
    if level == 0 {
        return options.sstable_size_bytes.saturating_mul(4);
    }
    let mut bytes = options.sstable_size_bytes;
    for _ in 0..level {
        bytes = bytes.saturating_mul(u64::from(options.fanout_size));
    }
    bytes
}

/// The level a compaction of `inputs` writes to (Cassandra's `getNextLevel`).
///
/// L0-only inputs smaller than one SSTable stay in L0; inputs all from one level L go to L+1;
/// inputs from L and L+1 go to L+1.
#[must_use]
pub fn next_level(inputs: &[&SsTableInfo], sstable_size_bytes: u64) -> u8 {
    let min = inputs.iter().map(|s| s.level.min(MAX_LEVEL)).min().unwrap_or(0);
    let max = inputs.iter().map(|s| s.level.min(MAX_LEVEL)).max().unwrap_or(0);
    if max == 0 && total_bytes(inputs.iter().copied()) < sstable_size_bytes {
        0
    } else if min == max {
        (max + 1).min(MAX_LEVEL)
    } else {
        max
    }
}

/// Pairs of SSTables in the same level ≥ 1 whose token ranges overlap (there should be none).
///
/// Each pair is `(a, b)` with `a` the one starting first; pairs are listed by level, then by
/// position.
#[must_use]
pub fn level_overlaps(sstables: &[SsTableInfo]) -> Vec<(u64, u64)> {
    let mut pairs = Vec::new();
    for level in 1..=MAX_LEVEL {
        let mut in_level: Vec<&SsTableInfo> =
            sstables.iter().filter(|s| s.level.min(MAX_LEVEL) == level).collect();
        in_level.sort_by_key(|s| (s.first_token, s.id));
        for (j, a) in in_level.iter().enumerate() {
            for b in in_level.iter().skip(j + 1) {
                if b.first_token > a.last_token {
                    break;
                }
                pairs.push((a.id, b.id));
            }
        }
    }
    pairs
}

/// The smallest token range holding all of `sstables`.
fn hull(sstables: &[&SsTableInfo]) -> Option<(i64, i64)> {
    let first = sstables.iter().map(|s| s.first_token).min()?;
    let last = sstables.iter().map(|s| s.last_token).max()?;
    Some((first, last))
}

fn by_level(sstables: &[SsTableInfo]) -> Vec<Vec<&SsTableInfo>> {
    let mut levels: Vec<Vec<&SsTableInfo>> = vec![Vec::new(); usize::from(MAX_LEVEL) + 1];
    for s in sstables {
        levels[usize::from(s.level.min(MAX_LEVEL))].push(s);
    }
    levels
}

pub(crate) fn next_task(ctx: &Context<'_>, options: &LeveledOptions) -> Option<CompactionTask> {
    let levels = by_level(ctx.sstables);
    let sstable_size = options.sstable_size_bytes;
    let l0_size_tiered = l0_size_tiered_task(ctx, &levels[0]);

    for level in (1..=MAX_LEVEL).rev() {
        let members = &levels[usize::from(level)];
        if members.is_empty() {
            continue;
        }
        let remaining = total_bytes(members.iter().copied().filter(|s| !ctx.compacting.contains(&s.id)));
        let score = remaining as f64 / max_bytes_for_level(level, options) as f64;
        if score <= SCORE_THRESHOLD || level == MAX_LEVEL {
            continue;
        }
        if l0_size_tiered.is_some() {
            return l0_size_tiered;
        }
        if let Some(inputs) = candidates_for_level(ctx, &levels, level) {
            let output_level = next_level(&inputs, sstable_size);
            return Some(task(&inputs, output_level, Some(sstable_size), TaskKind::Compaction));
        }
    }

    if let Some((inputs, output_level)) = candidates_for_l0(ctx, &levels, options) {
        return Some(task(&inputs, output_level, Some(sstable_size), TaskKind::Compaction));
    }
    if l0_size_tiered.is_some() {
        return l0_size_tiered;
    }
    droppable_task(ctx, &levels, sstable_size)
}

fn task(
    inputs: &[&SsTableInfo],
    output_level: u8,
    max_output_bytes: Option<u64>,
    kind: TaskKind,
) -> CompactionTask {
    CompactionTask::new(inputs.iter().map(|s| s.id).collect(), output_level, max_output_bytes, kind)
}

/// Size-tiered compaction inside L0 when it holds more than [`MAX_COMPACTING_L0`] SSTables.
fn l0_size_tiered_task(ctx: &Context<'_>, l0: &[&SsTableInfo]) -> Option<CompactionTask> {
    if l0.len() <= MAX_COMPACTING_L0 {
        return None;
    }
    let candidates: Vec<&SsTableInfo> =
        l0.iter().copied().filter(|s| !ctx.compacting.contains(&s.id)).collect();
    let chosen = size_tiered::pick(&candidates, ctx);
    (!chosen.is_empty()).then(|| task(&chosen, 0, None, TaskKind::Compaction))
}

/// One SSTable of `level`, round-robin, plus the SSTables of `level + 1` it overlaps.
fn candidates_for_level<'a>(
    ctx: &Context<'_>,
    levels: &[Vec<&'a SsTableInfo>],
    level: u8,
) -> Option<Vec<&'a SsTableInfo>> {
    let next: &[&SsTableInfo] = &levels[usize::from(level) + 1];
    let mut members = levels[usize::from(level)].clone();
    members.sort_by_key(|s| (s.first_token, s.id));
    let start = next
        .iter()
        .max_by_key(|s| s.id)
        .and_then(|newest| members.iter().position(|s| s.first_token > newest.last_token))
        .unwrap_or(0);
    for i in 0..members.len() {
        let s = members[(start + i) % members.len()];
        let mut inputs = vec![s];
        inputs.extend(next.iter().copied().filter(|n| n.overlaps(s)));
        if inputs.iter().all(|c| !ctx.compacting.contains(&c.id)) {
            return Some(inputs);
        }
    }
    None
}

/// L0 candidates (Cassandra's `getCandidatesFor(0)`), with the L1 SSTables they overlap when
/// they add up to at least one SSTable's worth or to at least those L1 SSTables' bytes, and
/// the level the output goes to (1 then, else 0).
fn candidates_for_l0<'a>(
    ctx: &Context<'_>,
    levels: &[Vec<&'a SsTableInfo>],
    options: &LeveledOptions,
) -> Option<(Vec<&'a SsTableInfo>, u8)> {
    let l0 = &levels[0];
    let compacting_l0: Vec<&SsTableInfo> =
        l0.iter().copied().filter(|s| ctx.compacting.contains(&s.id)).collect();
    let compacting_range = hull(&compacting_l0);
    if l0.len() - compacting_l0.len() < L0_COMPACTION_TRIGGER {
        return None;
    }

    let by_age = |v: &mut Vec<&SsTableInfo>| v.sort_by_key(|s| (s.max_timestamp, s.id));
    let mut remaining: Vec<&SsTableInfo> = l0.clone();
    let mut aged = l0.clone();
    by_age(&mut aged);
    let mut candidates: Vec<&SsTableInfo> = Vec::new();
    for s in aged {
        if candidates.iter().any(|c| c.id == s.id) {
            continue;
        }
        let mut overlapped: Vec<&SsTableInfo> = vec![s];
        overlapped.extend(remaining.iter().copied().filter(|r| r.id != s.id && r.overlaps(s)));
        if overlapped.iter().any(|o| ctx.compacting.contains(&o.id)) {
            continue;
        }
        for o in overlapped {
            let clear = compacting_range.is_none_or(|(first, last)| !o.overlaps_range(first, last));
            if clear && !candidates.iter().any(|c| c.id == o.id) {
                candidates.push(o);
            }
            remaining.retain(|r| r.id != o.id);
        }
        if candidates.len() > ctx.params.max_threshold {
            by_age(&mut candidates);
            candidates.truncate(ctx.params.max_threshold);
            break;
        }
    }
    if candidates.len() < L0_COMPACTION_TRIGGER.max(2) {
        return None;
    }

    let (first, last) = hull(&candidates)?;
    let l1: Vec<&SsTableInfo> = levels[1].iter().copied().filter(|s| s.overlaps_range(first, last)).collect();
    let l0_bytes = total_bytes(candidates.iter().copied());
    if l0_bytes >= options.sstable_size_bytes.min(total_bytes(l1.iter().copied())) {
        if l1.iter().any(|s| ctx.compacting.contains(&s.id)) {
            return None;
        }
        if compacting_l0.iter().any(|c| c.overlaps_range(first, last)) {
            return None;
        }
        candidates.extend(l1);
        return Some((candidates, 1));
    }
    Some((candidates, 0))
}

/// One SSTable worth compacting alone for its tombstones, highest level first.
fn droppable_task(
    ctx: &Context<'_>,
    levels: &[Vec<&SsTableInfo>],
    sstable_size: u64,
) -> Option<CompactionTask> {
    let threshold = ctx.params.tombstone.threshold;
    for level in (0..=MAX_LEVEL).rev() {
        let mut members = levels[usize::from(level)].clone();
        members.sort_by(|a, b| {
            b.droppable_tombstone_ratio().total_cmp(&a.droppable_tombstone_ratio()).then(a.id.cmp(&b.id))
        });
        for s in members {
            if s.droppable_tombstone_ratio() <= threshold {
                break;
            }
            if !ctx.compacting.contains(&s.id) && ctx.worth_dropping_tombstones(s) {
                return Some(task(&[s], level, Some(sstable_size), TaskKind::TombstoneCompaction));
            }
        }
    }
    None
}

pub(crate) fn major_task(sstables: &[SsTableInfo], options: &LeveledOptions) -> Vec<CompactionTask> {
    let total = total_bytes(sstables);
    let level = (1..=MAX_LEVEL).find(|l| max_bytes_for_level(*l, options) >= total).unwrap_or(MAX_LEVEL);
    let inputs: Vec<&SsTableInfo> = sstables.iter().collect();
    vec![task(&inputs, level, Some(options.sstable_size_bytes), TaskKind::Compaction)]
}

/// Cassandra's `getEstimatedTasks`: SSTable-sized units above each level's capacity, plus L0
/// batches of `max_threshold` when L0 is that deep.
pub(crate) fn pending_tasks(ctx: &Context<'_>, options: &LeveledOptions) -> usize {
    let levels = by_level(ctx.sstables);
    let size = options.sstable_size_bytes.max(1);
    let mut tasks: u64 = 0;
    for (level, members) in (0..=MAX_LEVEL).zip(levels.iter()) {
        let bytes = total_bytes(members.iter().copied());
        let allowed = (max_bytes_for_level(level, options) as f64 * SCORE_THRESHOLD) as u64;
        tasks = tasks.saturating_add(bytes.saturating_sub(allowed).div_ceil(size));
    }
    let max_threshold = ctx.params.max_threshold.max(1);
    if levels[0].len() > max_threshold {
        tasks = tasks.saturating_add((levels[0].len() / max_threshold) as u64);
    }
    usize::try_from(tasks).unwrap_or(usize::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn sst(id: u64, level: u8, first: i64, last: i64, size_bytes: u64) -> SsTableInfo {
        SsTableInfo {
            id,
            size_bytes,
            level,
            first_token: first,
            last_token: last,
            min_timestamp: id as i64,
            max_timestamp: id as i64,
            max_local_deletion_time: u32::MAX,
            estimated_droppable_tombstones: 0,
            cell_count: 1000,
            created_at_seconds: 0,
        }
    }

    #[test]
    fn capacities_grow_by_fanout() {
        let o = LeveledOptions { sstable_size_bytes: 160 * MIB, fanout_size: 10 };
        assert_eq!(max_bytes_for_level(0, &o), 640 * MIB);
        assert_eq!(max_bytes_for_level(1, &o), 1600 * MIB);
        assert_eq!(max_bytes_for_level(3, &o), 160_000 * MIB);
        let huge = LeveledOptions { sstable_size_bytes: u64::MAX / 2, fanout_size: 10 };
        assert_eq!(max_bytes_for_level(8, &huge), u64::MAX);
    }

    #[test]
    fn next_level_rules() {
        let small = sst(1, 0, 0, 10, MIB);
        let other = sst(2, 0, 0, 10, MIB);
        assert_eq!(next_level(&[&small, &other], 160 * MIB), 0);
        assert_eq!(next_level(&[&small, &other], 2 * MIB), 1);
        let l1 = sst(3, 1, 0, 10, MIB);
        assert_eq!(next_level(&[&small, &l1], 160 * MIB), 1);
        let l2 = sst(4, 2, 0, 10, MIB);
        assert_eq!(next_level(&[&l1], 160 * MIB), 2);
        assert_eq!(next_level(&[&l1, &l2], 160 * MIB), 2);
    }

    /// The L0 → L1 decision: one SSTable's worth goes to L1 with the L1 data it overlaps (as
    /// Cassandra); less than that goes to L1 too when it is at least as large as that L1 data
    /// (Sibyl), and otherwise stays in L0 (Cassandra's L0 → L0 merge).
    #[test]
    fn l0_goes_to_l1_when_it_outweighs_the_l1_data_it_overlaps() {
        let options = LeveledOptions { sstable_size_bytes: 160 * MIB, fanout_size: 10 };
        let params =
            super::super::CompactionParams::with_strategy(super::super::Strategy::Leveled(options.clone()));
        let decide = |sstables: &[SsTableInfo]| {
            let compacting = std::collections::BTreeSet::new();
            let ctx =
                Context { params: &params, sstables, compacting: &compacting, now_seconds: 0, gc_before: 0 };
            let t = next_task(&ctx, &options).expect("a task");
            let mut inputs = t.inputs.clone();
            inputs.sort_unstable();
            (inputs, t.output_level)
        };
        let flushes: Vec<SsTableInfo> = (1..=4).map(|id| sst(id, 0, 0, 1000, 40 * MIB)).collect();
        // Nothing in L1 yet: 160 MiB of L0 is below one SSTable, but there is nothing to wait for.
        assert_eq!(decide(&flushes), (vec![1, 2, 3, 4], 1));
        // L1 smaller than the L0 candidates: to L1, with it.
        let mut small_l1 = flushes.clone();
        small_l1.push(sst(10, 1, 0, 1000, 100 * MIB));
        small_l1.push(sst(11, 1, 2000, 3000, 500 * MIB)); // overlaps nothing in L0
        assert_eq!(decide(&small_l1), (vec![1, 2, 3, 4, 10], 1));
        // L1 data under the candidates larger than they are (and they are under one SSTable's
        // worth): gather in L0 first.
        let mut big_l1 = flushes[..3].to_vec();
        big_l1.push(sst(4, 0, 0, 1000, 30 * MIB));
        big_l1.push(sst(10, 1, 0, 500, 160 * MIB));
        big_l1.push(sst(12, 1, 501, 1000, 160 * MIB));
        assert_eq!(decide(&big_l1), (vec![1, 2, 3, 4], 0));
        // A full SSTable's worth always goes to L1 with what it overlaps.
        let mut full = flushes.clone();
        full.push(sst(5, 0, 0, 1000, 40 * MIB));
        full.push(sst(10, 1, 0, 500, 160 * MIB));
        full.push(sst(12, 1, 501, 1000, 160 * MIB));
        assert_eq!(decide(&full), (vec![1, 2, 3, 4, 5, 10, 12], 1));
    }

    #[test]
    fn overlaps_are_found_per_level() {
        let all = [
            sst(1, 1, 0, 10, MIB),
            sst(2, 1, 10, 20, MIB), // touches 1 at token 10
            sst(3, 1, 30, 40, MIB),
            sst(4, 2, 0, 100, MIB),
            sst(5, 0, 0, 100, MIB), // L0 overlaps are allowed
            sst(6, 2, 50, 60, MIB),
        ];
        assert_eq!(level_overlaps(&all), vec![(1, 2), (4, 6)]);
    }
}
