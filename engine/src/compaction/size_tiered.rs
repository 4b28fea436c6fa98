//! Size-tiered compaction (STCS): merge SSTables of similar size.
//!
//! SSTables are grouped into buckets by size (Cassandra's `getBuckets`): taken smallest first,
//! each joins the first bucket whose average size `avg` satisfies
//! `bucket_low × avg < size < bucket_high × avg`, or whose average and own size are both below
//! `min_sstable_size` (all small SSTables share one bucket); otherwise it starts a new bucket.
//! A bucket is a candidate once it has `min_threshold` SSTables; at most `max_threshold` of them
//! are compacted at once.
//!
//! Choosing among candidate buckets: Cassandra prefers the bucket with the most reads per key
//! ("hotness", from per-SSTable read meters). Sibyl has no read meters yet, so every bucket is
//! equally cold and the tie-break decides: the bucket with the **smallest average size** wins
//! (cheap merges that cut the SSTable count fastest; ties go to the bucket holding the oldest
//! SSTable). Cassandra's comparator comment says the same, though its `Collections.max` actually
//! returns the largest on a tie. A bucket above `max_threshold` keeps its **oldest** SSTables
//! (lowest generations), Cassandra's rule before read meters existed.
//!
//! If no bucket qualifies, one SSTable worth compacting for its tombstones is rewritten alone
//! (the largest such, as Cassandra does).

use super::params::SizeTieredOptions;
use super::{CompactionTask, Context, SsTableInfo, TaskKind};

/// Groups SSTables of similar size (Cassandra's `getBuckets`), each bucket sorted by size.
///
/// Buckets come out in the order they were started, so smallest sizes first.
#[must_use]
pub fn buckets<'a>(sstables: &[&'a SsTableInfo], options: &SizeTieredOptions) -> Vec<Vec<&'a SsTableInfo>> {
    let mut sorted: Vec<&SsTableInfo> = sstables.to_vec();
    sorted.sort_by_key(|s| (s.size_bytes, s.id));
    // (average size, members)
    let mut buckets: Vec<(u64, Vec<&SsTableInfo>)> = Vec::new();
    for s in sorted {
        let size = s.size_bytes;
        let fits = |avg: u64| {
            let (sf, af) = (size as f64, avg as f64);
            (sf > af * options.bucket_low && sf < af * options.bucket_high)
                || (size < options.min_sstable_size_bytes && avg < options.min_sstable_size_bytes)
        };
        match buckets.iter_mut().find(|(avg, _)| fits(*avg)) {
            Some((avg, members)) => {
                let n = members.len() as u128;
                let total = u128::from(*avg) * n + u128::from(size);
                *avg = u64::try_from(total / (n + 1)).unwrap_or(u64::MAX);
                members.push(s);
            }
            None => buckets.push((size, vec![s])),
        }
    }
    buckets.into_iter().map(|(_, members)| members).collect()
}

/// The bucket to compact next: among buckets with at least `min_threshold` SSTables, each cut to
/// its `max_threshold` oldest, the one with the smallest average size. Empty if none qualifies.
/// The result is sorted by generation.
#[must_use]
pub fn most_interesting_bucket<'a>(
    buckets: &[Vec<&'a SsTableInfo>],
    min_threshold: usize,
    max_threshold: usize,
) -> Vec<&'a SsTableInfo> {
    let mut best: Option<(u64, u64, Vec<&SsTableInfo>)> = None; // (average, oldest id, members)
    for bucket in buckets {
        if bucket.len() < min_threshold.max(1) {
            continue;
        }
        let mut members = bucket.clone();
        members.sort_by_key(|s| s.id);
        members.truncate(max_threshold.max(1));
        let total: u128 = members.iter().map(|s| u128::from(s.size_bytes)).sum();
        let average = u64::try_from(total / members.len() as u128).unwrap_or(u64::MAX);
        let oldest = members.first().map_or(u64::MAX, |s| s.id);
        if best.as_ref().is_none_or(|(a, o, _)| (average, oldest) < (*a, *o)) {
            best = Some((average, oldest, members));
        }
    }
    best.map(|(_, _, members)| members).unwrap_or_default()
}

/// Size-tiered choice over `candidates` with the table's thresholds (used by STCS, by LCS inside
/// L0 and by TWCS in the newest window).
pub(crate) fn pick<'a>(candidates: &[&'a SsTableInfo], ctx: &Context<'_>) -> Vec<&'a SsTableInfo> {
    let b = buckets(candidates, &ctx.params.size_tiered);
    most_interesting_bucket(&b, ctx.params.min_threshold, ctx.params.max_threshold)
}

pub(crate) fn next_task(ctx: &Context<'_>) -> Option<CompactionTask> {
    let candidates = ctx.candidates();
    let chosen = pick(&candidates, ctx);
    if !chosen.is_empty() {
        return Some(CompactionTask::new(
            chosen.iter().map(|s| s.id).collect(),
            0,
            None,
            TaskKind::Compaction,
        ));
    }
    candidates
        .iter()
        .filter(|s| ctx.worth_dropping_tombstones(s))
        .max_by_key(|s| (s.size_bytes, std::cmp::Reverse(s.id)))
        .map(|s| CompactionTask::new(vec![s.id], s.level, None, TaskKind::TombstoneCompaction))
}

/// Cassandra's `getEstimatedCompactionsByTasks` over the given buckets.
pub(crate) fn estimated_tasks(
    buckets: &[Vec<&SsTableInfo>],
    min_threshold: usize,
    max_threshold: usize,
) -> usize {
    buckets.iter().filter(|b| b.len() >= min_threshold).map(|b| b.len().div_ceil(max_threshold.max(1))).sum()
}

pub(crate) fn pending_tasks(ctx: &Context<'_>) -> usize {
    let b = buckets(&ctx.candidates(), &ctx.params.size_tiered);
    estimated_tasks(&b, ctx.params.min_threshold, ctx.params.max_threshold)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::compaction::{next_task, pending_tasks, CompactionParams};

    const MIB: u64 = 1 << 20;

    fn sst(id: u64, size_bytes: u64) -> SsTableInfo {
        SsTableInfo {
            id,
            size_bytes,
            level: 0,
            first_token: i64::MIN,
            last_token: i64::MAX,
            min_timestamp: 0,
            max_timestamp: 0,
            max_local_deletion_time: u32::MAX,
            estimated_droppable_tombstones: 0,
            cell_count: 1000,
            created_at_seconds: 0,
        }
    }

    fn ids(v: &[&SsTableInfo]) -> Vec<u64> {
        v.iter().map(|s| s.id).collect()
    }

    #[test]
    fn similar_sizes_share_a_bucket() {
        let opts = SizeTieredOptions { min_sstable_size_bytes: 0, ..SizeTieredOptions::default() };
        let all =
            [sst(1, 100 * MIB), sst(2, 120 * MIB), sst(3, 140 * MIB), sst(4, 400 * MIB), sst(5, 500 * MIB)];
        let refs: Vec<&SsTableInfo> = all.iter().collect();
        let b = buckets(&refs, &opts);
        let got: Vec<Vec<u64>> = b.iter().map(|b| ids(b)).collect();
        assert_eq!(got, vec![vec![1, 2, 3], vec![4, 5]]);
    }

    #[test]
    fn bounds_are_exclusive() {
        // 150 is exactly 1.5 × 100: not below bucket_high, so it starts a new bucket.
        let opts = SizeTieredOptions { min_sstable_size_bytes: 0, ..SizeTieredOptions::default() };
        let all = [sst(1, 100), sst(2, 150)];
        let refs: Vec<&SsTableInfo> = all.iter().collect();
        assert_eq!(buckets(&refs, &opts).len(), 2);
    }

    #[test]
    fn small_sstables_share_one_bucket() {
        let all = [sst(1, MIB), sst(2, 10 * MIB), sst(3, 40 * MIB), sst(4, 49 * MIB)];
        let refs: Vec<&SsTableInfo> = all.iter().collect();
        let b = buckets(&refs, &SizeTieredOptions::default());
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn smallest_average_bucket_wins_when_reads_are_unknown() {
        let opts = SizeTieredOptions { min_sstable_size_bytes: 0, ..SizeTieredOptions::default() };
        let all: Vec<SsTableInfo> =
            (1..=4).map(|i| sst(i, 1000 * MIB)).chain((5..=8).map(|i| sst(i, 10 * MIB))).collect();
        let refs: Vec<&SsTableInfo> = all.iter().collect();
        let b = buckets(&refs, &opts);
        assert_eq!(ids(&most_interesting_bucket(&b, 4, 32)), vec![5, 6, 7, 8]);
    }

    #[test]
    fn oldest_are_kept_when_trimming() {
        let all: Vec<SsTableInfo> = (1..=10).rev().map(|i| sst(i, MIB)).collect();
        let refs: Vec<&SsTableInfo> = all.iter().collect();
        let b = buckets(&refs, &SizeTieredOptions::default());
        assert_eq!(ids(&most_interesting_bucket(&b, 4, 6)), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn pending_counts_batches_per_bucket() {
        let p = CompactionParams::default();
        let all: Vec<SsTableInfo> = (1..=70).map(|i| sst(i, MIB)).collect();
        assert_eq!(pending_tasks(&p, &all, &BTreeSet::new(), 0, 0), 3);
        assert_eq!(pending_tasks(&p, &all[..3], &BTreeSet::new(), 0, 0), 0);
    }

    #[test]
    fn largest_tombstone_heavy_sstable_goes_first() {
        let p = CompactionParams::default();
        let mut a = sst(1, 10 * MIB);
        let mut b = sst(2, 200 * MIB);
        a.estimated_droppable_tombstones = 500;
        b.estimated_droppable_tombstones = 500;
        // Disjoint ranges so nothing overlaps.
        a.last_token = 0;
        b.first_token = 1;
        let t = next_task(&p, &[a, b], &BTreeSet::new(), 100_000, 0).unwrap();
        assert_eq!(t.inputs, vec![2]);
        assert_eq!(t.kind, TaskKind::TombstoneCompaction);
    }
}
