//! Time-window compaction (TWCS): one SSTable per time window, dropped whole once expired.
//!
//! For time series written with a TTL: each SSTable belongs to the window holding its newest
//! write timestamp (windows of `compaction_window_size` × `compaction_window_unit`, aligned on the
//! Unix epoch, timestamps in `timestamp_resolution`). Following Cassandra's
//! `TimeWindowCompactionStrategy`:
//!
//! 1. Fully expired SSTables ([`super::tombstones::fully_expired`]) are deleted whole, without
//!    being read: a [`TaskKind::DropExpired`] task. (Cassandra adds them to the next compaction,
//!    which then drops them; a separate task makes "no bytes rewritten" explicit.)
//! 2. Windows are visited newest first. The newest window (the highest window of any live SSTable,
//!    standing in for Cassandra's "highest window seen") is size-tiered once it has
//!    `min_threshold` SSTables; any older window with at least 2 SSTables is merged whole, up to
//!    `max_threshold` SSTables (the smallest first), so it ends as one SSTable.
//! 3. Otherwise one SSTable worth compacting for its tombstones, the smallest — only if
//!    `tombstone_threshold` or `tombstone_compaction_interval` was set explicitly (TWCS's default
//!    is off, as in Cassandra).
//!
//! Windows of negative timestamps round down (towards older windows); Cassandra's Java remainder
//! rounds them towards zero. Only timestamps before 1970 differ.

use std::collections::BTreeMap;

use super::size_tiered;
use super::tombstones::fully_expired;
use super::{CompactionTask, Context, SsTableInfo, TaskKind, TimeWindowOptions};

/// Start (inclusive, in seconds since the epoch) of the window holding `timestamp`.
#[must_use]
pub fn window_start_seconds(timestamp: i64, options: &TimeWindowOptions) -> i64 {
    let seconds = timestamp.div_euclid(options.timestamp_resolution.per_second());
    let window = options.window_seconds().max(1);
    seconds - seconds.rem_euclid(window)
}

/// First and last second (both inclusive) of the window holding `timestamp`.
#[must_use]
pub fn window_bounds_seconds(timestamp: i64, options: &TimeWindowOptions) -> (i64, i64) {
    let start = window_start_seconds(timestamp, options);
    (start, start.saturating_add(options.window_seconds().max(1) - 1))
}

/// SSTables grouped by window start, oldest window first.
fn windows<'a>(
    sstables: &[&'a SsTableInfo],
    options: &TimeWindowOptions,
) -> BTreeMap<i64, Vec<&'a SsTableInfo>> {
    let mut windows: BTreeMap<i64, Vec<&SsTableInfo>> = BTreeMap::new();
    for s in sstables {
        windows.entry(window_start_seconds(s.max_timestamp, options)).or_default().push(s);
    }
    windows
}

/// What the window walk decides: the SSTables to merge next, and Cassandra's task estimate.
struct WindowChoice<'a> {
    chosen: Vec<&'a SsTableInfo>,
    estimated_tasks: usize,
}

fn choose_window<'a>(
    ctx: &Context<'_>,
    options: &TimeWindowOptions,
    candidates: &[&'a SsTableInfo],
) -> WindowChoice<'a> {
    let newest =
        ctx.sstables.iter().map(|s| window_start_seconds(s.max_timestamp, options)).max().unwrap_or(i64::MIN);
    let (min_threshold, max_threshold) = (ctx.params.min_threshold, ctx.params.max_threshold.max(1));
    let estimate = |n: usize| {
        let remaining = n.saturating_sub(max_threshold);
        1 + if remaining > min_threshold { remaining.div_ceil(max_threshold) } else { 0 }
    };
    let mut choice = WindowChoice { chosen: Vec::new(), estimated_tasks: 0 };
    for (start, members) in windows(candidates, options).into_iter().rev() {
        if start >= newest {
            if members.len() < min_threshold {
                continue;
            }
            let picked = size_tiered::pick(&members, ctx);
            if picked.is_empty() {
                continue;
            }
            choice.estimated_tasks += estimate(members.len());
            if choice.chosen.is_empty() {
                choice.chosen = picked;
            }
        } else if members.len() >= 2 {
            choice.estimated_tasks += estimate(members.len());
            if choice.chosen.is_empty() {
                let mut by_size = members;
                by_size.sort_by_key(|s| (s.size_bytes, s.id));
                by_size.truncate(max_threshold);
                choice.chosen = by_size;
            }
        }
    }
    choice
}

pub(crate) fn next_task(ctx: &Context<'_>, options: &TimeWindowOptions) -> Option<CompactionTask> {
    let candidates = ctx.candidates();
    let expired = fully_expired(candidates.iter().copied(), ctx.sstables, ctx.gc_before, None);
    if !expired.is_empty() {
        return Some(CompactionTask::new(expired.into_iter().collect(), 0, None, TaskKind::DropExpired));
    }
    let choice = choose_window(ctx, options, &candidates);
    if !choice.chosen.is_empty() {
        return Some(CompactionTask::new(
            choice.chosen.iter().map(|s| s.id).collect(),
            0,
            None,
            TaskKind::Compaction,
        ));
    }
    candidates
        .iter()
        .filter(|s| ctx.worth_dropping_tombstones(s))
        .min_by_key(|s| (s.size_bytes, s.id))
        .map(|s| CompactionTask::new(vec![s.id], 0, None, TaskKind::TombstoneCompaction))
}

pub(crate) fn major_tasks(ctx: &Context<'_>, options: &TimeWindowOptions) -> Vec<CompactionTask> {
    let all: Vec<&SsTableInfo> = ctx.sstables.iter().collect();
    let expired = fully_expired(all.iter().copied(), ctx.sstables, ctx.gc_before, None);
    let mut tasks = Vec::new();
    if !expired.is_empty() {
        tasks.push(CompactionTask::new(expired.iter().copied().collect(), 0, None, TaskKind::DropExpired));
    }
    let rest: Vec<&SsTableInfo> = all.into_iter().filter(|s| !expired.contains(&s.id)).collect();
    for members in windows(&rest, options).into_values() {
        tasks.push(CompactionTask::new(
            members.iter().map(|s| s.id).collect(),
            0,
            None,
            TaskKind::Compaction,
        ));
    }
    tasks
}

pub(crate) fn pending_tasks(ctx: &Context<'_>, options: &TimeWindowOptions) -> usize {
    let candidates = ctx.candidates();
    let expired = fully_expired(candidates.iter().copied(), ctx.sstables, ctx.gc_before, None);
    let rest: Vec<&SsTableInfo> = candidates.into_iter().filter(|s| !expired.contains(&s.id)).collect();
    choose_window(ctx, options, &rest).estimated_tasks + usize::from(!expired.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::compaction::{TimestampResolution, WindowUnit};

    fn opts(unit: WindowUnit, size: u32) -> TimeWindowOptions {
        TimeWindowOptions { window_unit: unit, window_size: size, ..TimeWindowOptions::default() }
    }

    #[test]
    fn windows_align_on_the_epoch() {
        let day = opts(WindowUnit::Days, 1);
        // 2024-03-10T15:30:00Z = 1710084600 s.
        let ts = 1_710_084_600_000_000i64;
        assert_eq!(window_start_seconds(ts, &day), 1_710_028_800);
        assert_eq!(window_bounds_seconds(ts, &day), (1_710_028_800, 1_710_028_800 + 86_399));
        let six_hours = opts(WindowUnit::Hours, 6);
        assert_eq!(window_start_seconds(ts, &six_hours), 1_710_028_800 + 12 * 3600);
        let ten_minutes = opts(WindowUnit::Minutes, 10);
        assert_eq!(window_start_seconds(ts, &ten_minutes), 1_710_084_600);
        assert_eq!(window_start_seconds(ts + 599_999_999, &ten_minutes), 1_710_084_600);
        assert_eq!(window_start_seconds(ts + 600_000_000, &ten_minutes), 1_710_085_200);
    }

    #[test]
    fn timestamp_resolution_is_honoured() {
        let ms = TimeWindowOptions {
            timestamp_resolution: TimestampResolution::Milliseconds,
            ..opts(WindowUnit::Hours, 1)
        };
        assert_eq!(window_start_seconds(7_200_500, &ms), 7_200);
        let s = TimeWindowOptions {
            timestamp_resolution: TimestampResolution::Seconds,
            ..opts(WindowUnit::Hours, 1)
        };
        assert_eq!(window_start_seconds(7_199, &s), 3_600);
    }

    #[test]
    fn negative_timestamps_round_down() {
        let hour = opts(WindowUnit::Hours, 1);
        assert_eq!(window_start_seconds(-1, &hour), -3_600);
    }
}
