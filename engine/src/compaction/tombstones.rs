//! When deletion markers can go: fully expired SSTables and single-SSTable tombstone compactions.
//!
//! A tombstone (or an expired TTL cell, which becomes one) can be purged only after gc_grace, and
//! only if no other SSTable holds older data it shadows: purging it there would resurrect that
//! data. Both rules below are Cassandra's, made conservative where an SSTable-level estimate is
//! all there is:
//!
//! - [`fully_expired`] (Cassandra's `CompactionController.getFullyExpiredSSTables`): an SSTable
//!   whose every cell expired before `gc_before` may be deleted whole if its newest timestamp is
//!   older than the oldest timestamp of every overlapping SSTable (and memtable) still holding
//!   live data. Cassandra takes one minimum over all overlapping SSTables of the compaction; this
//!   takes it per candidate over the SSTables whose token range overlaps the candidate's, which is
//!   just as safe (shadowing needs a shared partition, hence a shared token).
//! - [`worth_dropping_tombstones`] (Cassandra's `worthDroppingTombstones`): compact one SSTable
//!   alone when more than `tombstone_threshold` of its cells are droppable tombstones, it is older
//!   than `tombstone_compaction_interval`, and the overlapping SSTables leave enough of its key
//!   range uncovered (keys assumed uniform over its token range).

use std::collections::BTreeSet;

use super::params::TombstoneOptions;
use super::SsTableInfo;

/// Whether every cell of `s` expired (and passed gc_grace) before `gc_before`.
#[must_use]
pub fn is_expired(s: &SsTableInfo, gc_before: u32) -> bool {
    s.max_local_deletion_time < gc_before
}

/// The candidates that can be deleted whole at `gc_before` without resurrecting anything.
///
/// `all` is every live SSTable of the table (candidates included; the compacting ones too, since
/// their data still shadows). `memtable_min_timestamp` is the smallest write timestamp in the
/// table's memtables, if the caller knows it (the engine does when it executes a
/// [`super::TaskKind::DropExpired`] task); memtables are treated as overlapping every token.
#[must_use]
pub fn fully_expired<'a>(
    candidates: impl IntoIterator<Item = &'a SsTableInfo>,
    all: &[SsTableInfo],
    gc_before: u32,
    memtable_min_timestamp: Option<i64>,
) -> BTreeSet<u64> {
    let mut expired = BTreeSet::new();
    for c in candidates {
        if !is_expired(c, gc_before) {
            continue;
        }
        if memtable_min_timestamp.is_some_and(|m| c.max_timestamp >= m) {
            continue;
        }
        let shadows_live_data = all.iter().any(|s| {
            s.id != c.id && !is_expired(s, gc_before) && s.overlaps(c) && c.max_timestamp >= s.min_timestamp
        });
        if !shadows_live_data {
            expired.insert(c.id);
        }
    }
    expired
}

/// Whether `s` should be compacted alone to purge its droppable tombstones.
///
/// `all` is every live SSTable of the table (`s` may be among them). `gc_before` is
/// `now_seconds - gc_grace_seconds`.
#[must_use]
pub fn worth_dropping_tombstones(
    options: &TombstoneOptions,
    s: &SsTableInfo,
    all: &[SsTableInfo],
    now_seconds: u32,
    gc_before: u32,
) -> bool {
    if !options.enabled {
        return false;
    }
    // The droppable count is an estimate: if the rewrite purges nothing, this interval is what
    // stops the same SSTable from being picked again and again.
    if u64::from(now_seconds)
        < u64::from(s.created_at_seconds).saturating_add(options.compaction_interval_seconds)
    {
        return false;
    }
    let ratio = s.droppable_tombstone_ratio();
    if ratio <= options.threshold {
        return false;
    }
    if options.unchecked {
        return true;
    }
    let overlapping: Vec<&SsTableInfo> = all.iter().filter(|o| o.id != s.id && o.overlaps(s)).collect();
    if overlapping.is_empty() {
        return true;
    }
    if !fully_expired([s], all, gc_before, None).is_empty() {
        return true;
    }
    if s.cell_count == 0 {
        return false;
    }
    // Tombstones over keys no overlapping SSTable covers can certainly be purged; the others may
    // be kept. Estimate the uncovered share of the key range and expect that share of tombstones.
    let uncovered = uncovered_fraction(s, &overlapping);
    uncovered * ratio > options.threshold
}

/// Fraction of `s`'s token range that none of `others` covers.
fn uncovered_fraction(s: &SsTableInfo, others: &[&SsTableInfo]) -> f64 {
    let lo = i128::from(s.first_token);
    let hi = i128::from(s.last_token);
    let width = hi - lo + 1;
    if width <= 0 {
        return 0.0;
    }
    let mut ranges: Vec<(i128, i128)> = others
        .iter()
        .map(|o| (i128::from(o.first_token).max(lo), i128::from(o.last_token).min(hi)))
        .filter(|(a, b)| a <= b)
        .collect();
    ranges.sort_unstable();
    let mut covered: i128 = 0;
    let mut current: Option<(i128, i128)> = None;
    for (a, b) in ranges {
        current = match current {
            Some((ca, cb)) if a <= cb + 1 => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                covered += cb - ca + 1;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((ca, cb)) = current {
        covered += cb - ca + 1;
    }
    (width - covered) as f64 / width as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    fn sst(id: u64, first: i64, last: i64, min_ts: i64, max_ts: i64, max_ldt: u32) -> SsTableInfo {
        SsTableInfo {
            id,
            size_bytes: 1 << 20,
            level: 0,
            first_token: first,
            last_token: last,
            min_timestamp: min_ts,
            max_timestamp: max_ts,
            max_local_deletion_time: max_ldt,
            estimated_droppable_tombstones: 0,
            cell_count: 1000,
            created_at_seconds: 0,
        }
    }

    fn options() -> TombstoneOptions {
        TombstoneOptions {
            threshold: 0.2,
            compaction_interval_seconds: 86_400,
            unchecked: false,
            enabled: true,
        }
    }

    #[test]
    fn expired_sstable_without_overlap_is_fully_expired() {
        let all = vec![sst(1, 0, 100, 10, 20, 500), sst(2, 200, 300, 0, 5, u32::MAX)];
        assert_eq!(fully_expired(&all, &all, 1000, None), BTreeSet::from([1]));
        // Not yet past gc_before.
        assert!(fully_expired(&all, &all, 500, None).is_empty());
    }

    #[test]
    fn expired_sstable_over_older_live_data_is_kept() {
        // 2 holds live data older than 1's newest cell, on shared tokens: dropping 1 could
        // resurrect 2's shadowed cells.
        let all = vec![sst(1, 0, 100, 10, 20, 500), sst(2, 50, 300, 15, 30, u32::MAX)];
        assert!(fully_expired(&all, &all, 1000, None).is_empty());
        // Live data newer than everything in 1 is no obstacle.
        let all = vec![sst(1, 0, 100, 10, 20, 500), sst(2, 50, 300, 21, 30, u32::MAX)];
        assert_eq!(fully_expired(&all, &all, 1000, None), BTreeSet::from([1]));
        // ... unless a memtable holds older writes.
        assert!(fully_expired(&all, &all, 1000, Some(20)).is_empty());
        // An expired overlapping SSTable does not count as live data.
        let all = vec![sst(1, 0, 100, 10, 20, 500), sst(2, 50, 300, 15, 30, 600)];
        assert_eq!(fully_expired(&all, &all, 1000, None), BTreeSet::from([1, 2]));
    }

    #[test]
    fn tombstone_compaction_needs_ratio_and_age() {
        let mut s = sst(1, 0, 100, 0, 10, u32::MAX);
        s.estimated_droppable_tombstones = 300;
        s.created_at_seconds = 1_000;
        let all = vec![s.clone()];
        assert!(worth_dropping_tombstones(&options(), &s, &all, 1_000 + 86_400, 0));
        assert!(
            !worth_dropping_tombstones(&options(), &s, &all, 1_000 + 86_399, 0),
            "younger than the interval"
        );
        s.estimated_droppable_tombstones = 200;
        assert!(
            !worth_dropping_tombstones(&options(), &s, &all, 200_000, 0),
            "ratio must exceed the threshold"
        );
        s.estimated_droppable_tombstones = 300;
        let disabled = TombstoneOptions { enabled: false, ..options() };
        assert!(!worth_dropping_tombstones(&disabled, &s, &all, 200_000, 0));
    }

    #[test]
    fn overlapping_sstables_reduce_the_expected_purge() {
        let mut s = sst(1, 0, 99, 0, 10, u32::MAX);
        s.estimated_droppable_tombstones = 300; // ratio 0.3
        let half = sst(2, 0, 49, 0, 10, u32::MAX);
        let all = vec![s.clone(), half.clone()];
        // Half the range uncovered: expected 0.15 <= 0.2.
        assert!(!worth_dropping_tombstones(&options(), &s, &all, 100_000, 0));
        let unchecked = TombstoneOptions { unchecked: true, ..options() };
        assert!(worth_dropping_tombstones(&unchecked, &s, &all, 100_000, 0));
        let quarter = sst(2, 0, 24, 0, 10, u32::MAX);
        let all = vec![s.clone(), quarter];
        // Three quarters uncovered: 0.225 > 0.2.
        assert!(worth_dropping_tombstones(&options(), &s, &all, 100_000, 0));
    }

    #[test]
    fn uncovered_fraction_merges_ranges() {
        let s = sst(1, 0, 99, 0, 0, 0);
        let a = sst(2, -50, 9, 0, 0, 0);
        let b = sst(3, 5, 19, 0, 0, 0);
        let c = sst(4, 90, 200, 0, 0, 0);
        let f = uncovered_fraction(&s, &[&a, &b, &c]);
        assert!((f - 0.70).abs() < 1e-9, "{f}");
        let full = sst(5, i64::MIN, i64::MAX, 0, 0, 0);
        assert_eq!(uncovered_fraction(&full, &[]), 1.0);
    }
}
