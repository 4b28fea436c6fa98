//! Behaviour of the compaction strategies: hand-made SSTable sets for each rule, seeded random
//! states for the invariants, and long simulations for the overall shape.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use sibyl_engine::compaction::leveled::{level_overlaps, MAX_COMPACTING_L0};
use sibyl_engine::compaction::simulator::{simulate, SimulationReport, Workload};
use sibyl_engine::compaction::time_window::window_start_seconds;
use sibyl_engine::compaction::tombstones::fully_expired;
use sibyl_engine::compaction::{
    major_task, next_task, pending_tasks, CompactionParams, CompactionTask, SsTableInfo, Strategy, TaskKind,
};

const MIB: u64 = 1 << 20;
const HOUR_MICROS: i64 = 3_600_000_000;

fn params(pairs: &[(&str, &str)]) -> CompactionParams {
    let m: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    CompactionParams::from_options(&m).unwrap()
}

fn stcs() -> CompactionParams {
    params(&[("class", "SizeTieredCompactionStrategy")])
}

fn lcs(sstable_size_in_mb: &str) -> CompactionParams {
    params(&[("class", "LeveledCompactionStrategy"), ("sstable_size_in_mb", sstable_size_in_mb)])
}

fn twcs_hours(hours: &str) -> CompactionParams {
    params(&[
        ("class", "TimeWindowCompactionStrategy"),
        ("compaction_window_unit", "HOURS"),
        ("compaction_window_size", hours),
    ])
}

/// A live, non-expiring SSTable over the whole ring, written at `id` microseconds.
fn sst(id: u64, size_bytes: u64) -> SsTableInfo {
    SsTableInfo {
        id,
        size_bytes,
        level: 0,
        first_token: i64::MIN,
        last_token: i64::MAX,
        min_timestamp: id as i64,
        max_timestamp: id as i64,
        max_local_deletion_time: u32::MAX,
        estimated_droppable_tombstones: 0,
        cell_count: 10_000,
        created_at_seconds: 0,
    }
}

fn leveled(id: u64, level: u8, first: i64, last: i64, size_bytes: u64) -> SsTableInfo {
    SsTableInfo { level, first_token: first, last_token: last, ..sst(id, size_bytes) }
}

fn none() -> BTreeSet<u64> {
    BTreeSet::new()
}

fn next(p: &CompactionParams, all: &[SsTableInfo]) -> Option<CompactionTask> {
    next_task(p, all, &none(), 1_000_000, 864_000)
}

fn seed() -> u64 {
    let seed =
        std::env::var("SIBYL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| rand::rng().random());
    eprintln!("seed {seed} (re-run with SIBYL_SEED={seed})");
    seed
}

// ---------------------------------------------------------------------------------------------
// Size-tiered

#[test]
fn stcs_four_small_sstables_form_a_bucket_without_the_large_one() {
    let all = [sst(1, MIB), sst(2, MIB), sst(3, MIB), sst(4, MIB), sst(5, 100 * MIB)];
    let t = next(&stcs(), &all).unwrap();
    assert_eq!(t.inputs, vec![1, 2, 3, 4]);
    assert_eq!(t.kind, TaskKind::Compaction);
    assert_eq!((t.output_level, t.max_output_bytes), (0, None));
}

#[test]
fn stcs_waits_for_min_threshold() {
    let all = [sst(1, MIB), sst(2, MIB), sst(3, MIB), sst(5, 100 * MIB)];
    assert_eq!(next(&stcs(), &all), None);
    let three = params(&[("class", "SizeTieredCompactionStrategy"), ("min_threshold", "3")]);
    assert_eq!(next(&three, &all).unwrap().inputs, vec![1, 2, 3]);
}

#[test]
fn stcs_max_threshold_caps_a_task_at_the_oldest() {
    let all: Vec<SsTableInfo> = (1..=40).rev().map(|i| sst(i, MIB)).collect();
    let t = next(&stcs(), &all).unwrap();
    assert_eq!(t.inputs, (1..=32).collect::<Vec<_>>());
    let eight = params(&[("class", "SizeTieredCompactionStrategy"), ("max_threshold", "8")]);
    assert_eq!(next(&eight, &all).unwrap().inputs, (1..=8).collect::<Vec<_>>());
}

#[test]
fn stcs_never_picks_compacting_sstables() {
    let all: Vec<SsTableInfo> = (1..=6).map(|i| sst(i, MIB)).collect();
    let compacting = BTreeSet::from([2, 5]);
    let t = next_task(&stcs(), &all, &compacting, 1_000_000, 0).unwrap();
    assert_eq!(t.inputs, vec![1, 3, 4, 6]);
    let compacting = BTreeSet::from([2, 5, 6]);
    assert_eq!(next_task(&stcs(), &all, &compacting, 1_000_000, 0), None);
}

#[test]
fn stcs_prefers_the_bucket_of_smallest_sstables() {
    let mut all: Vec<SsTableInfo> = (1..=4).map(|i| sst(i, 500 * MIB)).collect();
    all.extend((5..=8).map(|i| sst(i, 60 * MIB)));
    assert_eq!(next(&stcs(), &all).unwrap().inputs, vec![5, 6, 7, 8]);
}

#[test]
fn disabled_compaction_runs_no_background_task_but_major_still_works() {
    let p = params(&[("class", "SizeTieredCompactionStrategy"), ("enabled", "false")]);
    let all: Vec<SsTableInfo> = (1..=5).map(|i| sst(i, MIB)).collect();
    assert_eq!(next(&p, &all), None);
    let major = major_task(&p, &all, &none(), 0, 0);
    assert_eq!(major.len(), 1);
    assert_eq!(major[0].inputs, vec![1, 2, 3, 4, 5]);
    assert!(
        major_task(&p, &all, &BTreeSet::from([3]), 0, 0).is_empty(),
        "major waits for running compactions"
    );
}

#[test]
fn stcs_pending_tasks_follow_cassandras_estimate() {
    let mut all: Vec<SsTableInfo> = (1..=40).map(|i| sst(i, MIB)).collect();
    all.extend((41..=44).map(|i| sst(i, 500 * MIB)));
    // 40 small: ceil(40/32) = 2; 4 large: 1.
    assert_eq!(pending_tasks(&stcs(), &all, &none(), 0, 0), 3);
}

// ---------------------------------------------------------------------------------------------
// Leveled

#[test]
fn lcs_four_l0_sstables_go_to_l1_with_the_l1_sstables_they_overlap() {
    let p = lcs("160");
    let mut all: Vec<SsTableInfo> = (11..=14).map(|i| leveled(i, 0, -1000, 1000, 50 * MIB)).collect();
    all.push(leveled(1, 1, -2000, -1500, 10 * MIB));
    all.push(leveled(2, 1, -1200, -500, 10 * MIB));
    all.push(leveled(3, 1, 0, 500, 10 * MIB));
    all.push(leveled(4, 1, 1500, 2000, 10 * MIB));
    let t = next(&p, &all).unwrap();
    assert_eq!(t.inputs, vec![2, 3, 11, 12, 13, 14]);
    assert_eq!(t.output_level, 1);
    assert_eq!(t.max_output_bytes, Some(160 * MIB));
    assert_eq!(t.kind, TaskKind::Compaction);
}

#[test]
fn lcs_waits_for_four_l0_sstables() {
    let p = lcs("160");
    let all: Vec<SsTableInfo> = (1..=3).map(|i| leveled(i, 0, -1000, 1000, 100 * MIB)).collect();
    assert_eq!(next(&p, &all), None);
}

#[test]
fn lcs_small_l0_compactions_stay_in_l0() {
    let p = lcs("160");
    let mut all: Vec<SsTableInfo> = (11..=14).map(|i| leveled(i, 0, -1000, 1000, MIB)).collect();
    all.push(leveled(1, 1, -500, 500, 10 * MIB));
    let t = next(&p, &all).unwrap();
    assert_eq!(t.inputs, vec![11, 12, 13, 14], "L1 is not involved below one SSTable's worth");
    assert_eq!(t.output_level, 0);
}

/// `count` adjacent, non-overlapping SSTables of `size` in `level`, ids from `first_id`.
fn level_of(level: u8, first_id: u64, count: u64, size: u64) -> Vec<SsTableInfo> {
    (0..count).map(|i| leveled(first_id + i, level, (i * 100) as i64, (i * 100 + 99) as i64, size)).collect()
}

#[test]
fn lcs_compacts_an_over_full_level_into_the_next() {
    let p = lcs("1"); // capacities: L1 10 MiB, L2 100 MiB
    let mut all = level_of(1, 1, 11, MIB); // score 1.1
    all.extend(level_of(2, 100, 50, MIB)); // score 0.5
    let t = next(&p, &all).unwrap();
    assert_eq!(t.output_level, 2);
    assert_eq!(t.max_output_bytes, Some(MIB));
    // One L1 SSTable and the L2 SSTable covering the same tokens.
    assert_eq!(t.inputs.len(), 2);
    let l1: Vec<&SsTableInfo> = all.iter().filter(|s| t.inputs.contains(&s.id) && s.level == 1).collect();
    assert_eq!(l1.len(), 1);
    // Under capacity (and score 1.0 is not above 1.001): nothing to do.
    let calm = level_of(1, 1, 10, MIB);
    assert_eq!(next(&p, &calm), None);
}

#[test]
fn lcs_takes_the_highest_over_full_level_not_the_highest_score() {
    let p = lcs("1");
    let mut all = level_of(1, 1, 20, MIB); // score 2.0
    all.extend(level_of(2, 1000, 110, MIB)); // score 1.1
    let t = next(&p, &all).unwrap();
    assert_eq!(t.output_level, 3, "L2 goes first: {t:?}");
    assert!(t.inputs.iter().all(|id| *id >= 1000));
}

#[test]
fn lcs_walks_a_level_round_robin_from_the_newest_sstable_of_the_next_level() {
    let p = lcs("1");
    let mut all = level_of(1, 1, 13, MIB); // L1 tokens [0,99], [100,199], ... [1200,1299]
                                           // The newest L2 SSTable ends at token 450: the last L1 → L2 compaction reached there.
    all.push(leveled(500, 2, 400, 450, MIB));
    all.push(leveled(400, 2, 2000, 2100, MIB));
    let t = next(&p, &all).unwrap();
    assert_eq!(t.inputs, vec![6], "first L1 SSTable starting after token 450 is [500,599]");
    // Past the end of the level the walk wraps to the start.
    all.push(leveled(600, 2, 5000, 5100, MIB));
    let t = next(&p, &all).unwrap();
    assert_eq!(t.inputs, vec![1]);
    // SSTables that are compacting, or overlap compacting ones in L2, are passed over (the level
    // score only counts SSTables not compacting: 11 of 13 MiB is still over 10 MiB).
    all.push(leveled(50, 2, 250, 260, MIB));
    let t = next_task(&p, &all, &BTreeSet::from([1, 2, 50]), 0, 0).unwrap();
    assert_eq!(t.inputs, vec![4]);
}

#[test]
fn lcs_size_tiers_l0_first_when_it_is_far_behind() {
    let p = lcs("1");
    let mut all: Vec<SsTableInfo> =
        (100..100 + MAX_COMPACTING_L0 as u64 + 1).map(|i| leveled(i, 0, 0, 1000, MIB)).collect();
    all.extend(level_of(1, 1, 11, MIB)); // L1 over capacity
    let t = next(&p, &all).unwrap();
    assert_eq!(t.output_level, 0);
    assert_eq!(t.max_output_bytes, None);
    assert_eq!(t.inputs.len(), 32, "max_threshold SSTables of the L0 bucket");
    assert!(t.inputs.iter().all(|id| *id >= 100));
    // With every higher level content, L0 → L1 comes first (at most max_threshold of L0).
    let calm: Vec<SsTableInfo> = all.iter().filter(|s| s.level == 0).cloned().collect();
    let t = next(&p, &calm).unwrap();
    assert_eq!(t.output_level, 1);
    assert_eq!(t.inputs.len(), 32);
}

#[test]
fn lcs_l0_compaction_waits_for_busy_l1_sstables() {
    let p = lcs("160");
    let mut all: Vec<SsTableInfo> = (11..=14).map(|i| leveled(i, 0, -1000, 1000, 50 * MIB)).collect();
    all.push(leveled(1, 1, 0, 500, 10 * MIB));
    all.push(leveled(2, 2, 0, 5000, 10 * MIB));
    assert_eq!(next_task(&p, &all, &BTreeSet::from([1, 2]), 0, 0), None);
}

#[test]
fn lcs_major_compaction_writes_one_level() {
    let p = lcs("1");
    let mut all = level_of(1, 1, 5, MIB);
    all.extend(level_of(2, 100, 30, MIB));
    all.push(leveled(1000, 0, 0, 3000, MIB));
    let tasks = major_task(&p, &all, &none(), 0, 0);
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].inputs.len(), all.len());
    assert_eq!(tasks[0].output_level, 2, "36 MiB fits L2 (100 MiB), not L1 (10 MiB)");
    assert_eq!(tasks[0].max_output_bytes, Some(MIB));
}

#[test]
fn lcs_pending_tasks_count_bytes_over_capacity() {
    let p = lcs("1");
    let all = level_of(1, 1, 15, MIB); // 15 MiB in a 10 MiB level: 5 MiB over (minus 0.1%)
    assert_eq!(pending_tasks(&p, &all, &none(), 0, 0), 5);
}

// ---------------------------------------------------------------------------------------------
// Time-window

fn timed(id: u64, min_ts: i64, max_ts: i64, max_local_deletion_time: u32) -> SsTableInfo {
    SsTableInfo { min_timestamp: min_ts, max_timestamp: max_ts, max_local_deletion_time, ..sst(id, MIB) }
}

#[test]
fn twcs_assigns_windows_by_unit_and_size() {
    let p = twcs_hours("6");
    let o = p.time_window().unwrap();
    let t0 = 1_700_000_000i64; // 2023-11-14T22:13:20Z
    assert_eq!(window_start_seconds(t0 * 1_000_000, o), 1_699_984_800); // 18:00 .. 23:59
    let p = params(&[("class", "TimeWindowCompactionStrategy")]);
    assert_eq!(window_start_seconds(t0 * 1_000_000, p.time_window().unwrap()), 1_699_920_000); // midnight
    let p = params(&[
        ("class", "TimeWindowCompactionStrategy"),
        ("compaction_window_unit", "MINUTES"),
        ("compaction_window_size", "15"),
    ]);
    assert_eq!(window_start_seconds(t0 * 1_000_000, p.time_window().unwrap()), 1_699_999_200); // 22:00
    let p = params(&[
        ("class", "TimeWindowCompactionStrategy"),
        ("compaction_window_unit", "DAYS"),
        ("compaction_window_size", "7"),
        ("timestamp_resolution", "MILLISECONDS"),
    ]);
    // Weeks from the epoch (a Thursday).
    assert_eq!(window_start_seconds(t0 * 1_000, p.time_window().unwrap()), 1_699_488_000);
}

#[test]
fn twcs_drops_fully_expired_sstables_whole() {
    let p = twcs_hours("1");
    // Two old windows, all TTL'd data expired by 5000 s, and a live newer one.
    let all = [
        timed(1, 0, HOUR_MICROS - 1, 4_000),
        timed(2, HOUR_MICROS, 2 * HOUR_MICROS - 1, 5_000),
        timed(3, 2 * HOUR_MICROS, 3 * HOUR_MICROS - 1, 20_000),
    ];
    let t = next_task(&p, &all, &none(), 10_000, 600).unwrap();
    assert_eq!(t.kind, TaskKind::DropExpired);
    assert_eq!(t.inputs, vec![1, 2]);
    // Before gc_grace has passed nothing is dropped.
    assert_eq!(next_task(&p, &all, &none(), 4_500, 600), None);
    // A compacting SSTable is never dropped.
    let t = next_task(&p, &all, &BTreeSet::from([1]), 10_000, 600).unwrap();
    assert_eq!(t.inputs, vec![2]);
}

#[test]
fn twcs_keeps_an_expired_sstable_that_may_shadow_older_live_data() {
    let p = twcs_hours("1");
    // 2 expired, but 1 holds live (non-expiring) cells older than 2's newest: dropping 2 could
    // resurrect what its tombstones or newer cells hide in 1.
    let all = [timed(1, 0, 3 * HOUR_MICROS, u32::MAX), timed(2, HOUR_MICROS, 2 * HOUR_MICROS, 4_000)];
    assert_ne!(next_task(&p, &all, &none(), 10_000, 0).map(|t| t.kind), Some(TaskKind::DropExpired));
    assert!(fully_expired(&all, &all, 10_000, None).is_empty());
    // The same live data on disjoint tokens shadows nothing.
    let mut apart = all.clone();
    apart[0].last_token = -1;
    apart[1].first_token = 0;
    assert_eq!(next_task(&p, &apart, &none(), 10_000, 0).unwrap().kind, TaskKind::DropExpired);
}

#[test]
fn twcs_size_tiers_the_newest_window_and_merges_older_ones() {
    let p = twcs_hours("1");
    let w = |window: i64, i: i64| window * HOUR_MICROS + i;
    // Newest window (hour 5): 3 SSTables, under min_threshold. Hour 3: one. Hour 2: two.
    let all = [
        timed(1, w(2, 0), w(2, 10), u32::MAX),
        timed(2, w(2, 11), w(2, 20), u32::MAX),
        timed(3, w(3, 0), w(3, 10), u32::MAX),
        timed(4, w(5, 0), w(5, 10), u32::MAX),
        timed(5, w(5, 11), w(5, 20), u32::MAX),
        timed(6, w(5, 21), w(5, 30), u32::MAX),
    ];
    let t = next(&p, &all).unwrap();
    assert_eq!(t.inputs, vec![1, 2], "an older window with two SSTables merges into one");
    let mut more = all.to_vec();
    more.push(timed(7, w(5, 31), w(5, 40), u32::MAX));
    let t = next(&p, &more).unwrap();
    assert_eq!(t.inputs, vec![4, 5, 6, 7], "the newest window is size-tiered at min_threshold");
    // Older windows alone with one SSTable each: nothing to do.
    assert_eq!(next(&p, &[all[0].clone(), all[2].clone(), all[3].clone()]), None);
    assert_eq!(pending_tasks(&p, &more, &none(), 0, 0), 2);
}

#[test]
fn twcs_major_compaction_keeps_windows_apart() {
    let p = twcs_hours("1");
    let all = [
        timed(4, 0, 10, 1_000),
        timed(1, HOUR_MICROS, HOUR_MICROS + 10, u32::MAX),
        timed(2, HOUR_MICROS + 11, HOUR_MICROS + 20, u32::MAX),
        timed(3, 2 * HOUR_MICROS, 2 * HOUR_MICROS + 10, u32::MAX),
    ];
    let tasks = major_task(&p, &all, &none(), 10_000, 0);
    let got: Vec<(TaskKind, Vec<u64>)> = tasks.into_iter().map(|t| (t.kind, t.inputs)).collect();
    assert_eq!(
        got,
        vec![
            (TaskKind::DropExpired, vec![4]),
            (TaskKind::Compaction, vec![1, 2]),
            (TaskKind::Compaction, vec![3])
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Tombstone compactions

fn tombstone_heavy(id: u64, created_at_seconds: u32) -> SsTableInfo {
    SsTableInfo { estimated_droppable_tombstones: 3_000, created_at_seconds, ..sst(id, 10 * MIB) }
}

#[test]
fn tombstone_heavy_old_sstable_is_compacted_alone() {
    let day = 86_400;
    let all = [tombstone_heavy(1, 1_000)];
    for p in [stcs(), lcs("160")] {
        let t = next_task(&p, &all, &none(), 1_000 + day, 0).unwrap();
        assert_eq!(t.kind, TaskKind::TombstoneCompaction, "{:?}", p.strategy);
        assert_eq!(t.inputs, vec![1]);
        assert_eq!(next_task(&p, &all, &none(), 1_000 + day - 1, 0), None, "younger than the interval");
        assert_eq!(next_task(&p, &all, &BTreeSet::from([1]), 1_000 + day, 0), None);
    }
    let low = [SsTableInfo { estimated_droppable_tombstones: 2_000, ..tombstone_heavy(1, 0) }];
    assert_eq!(next_task(&stcs(), &low, &none(), 1_000_000, 0), None, "ratio 0.2 is not above 0.2");
    let interval =
        params(&[("class", "SizeTieredCompactionStrategy"), ("tombstone_compaction_interval", "10")]);
    assert!(next_task(&interval, &all, &none(), 1_010, 0).is_some());
}

#[test]
fn twcs_tombstone_compactions_need_an_explicit_option() {
    let all = [tombstone_heavy(1, 0)];
    assert_eq!(next_task(&twcs_hours("1"), &all, &none(), 1_000_000, 0), None);
    let p = params(&[("class", "TimeWindowCompactionStrategy"), ("tombstone_threshold", "0.2")]);
    assert_eq!(next_task(&p, &all, &none(), 1_000_000, 0).unwrap().kind, TaskKind::TombstoneCompaction);
}

// ---------------------------------------------------------------------------------------------
// Options

#[test]
fn options_defaults_full_names_and_refusals() {
    let p = params(&[("class", "org.apache.cassandra.db.compaction.LeveledCompactionStrategy")]);
    assert!(matches!(p.strategy, Strategy::Leveled(_)));
    assert_eq!(p.leveled().unwrap().sstable_size_bytes, 160 * MIB);
    assert_eq!(p.leveled().unwrap().fanout_size, 10);
    assert_eq!((p.min_threshold, p.max_threshold), (4, 32));
    let bad = |pairs: &[(&str, &str)]| {
        let m: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        CompactionParams::from_options(&m).unwrap_err().to_string()
    };
    assert_eq!(bad(&[("class", "Foo")]), "Unable to find compaction strategy class 'Foo'");
    assert_eq!(
        bad(&[("class", "LeveledCompactionStrategy"), ("bucket_high", "0.1")]),
        "Bucket high value (0.1) is less than or equal bucket low value (0.5)"
    );
    assert_eq!(
        bad(&[("class", "TimeWindowCompactionStrategy"), ("sstable_size_in_mb", "5")]),
        "Properties specified [sstable_size_in_mb] are not understood by TimeWindowCompactionStrategy"
    );
}

// ---------------------------------------------------------------------------------------------
// Invariants over random states

fn random_sstables(rng: &mut impl Rng, n: u64) -> Vec<SsTableInfo> {
    (1..=n)
        .map(|id| {
            let a: i64 = rng.random();
            let b: i64 = rng.random();
            let min_ts = rng.random_range(0..10 * HOUR_MICROS);
            SsTableInfo {
                id,
                size_bytes: rng.random_range(1..400 * MIB),
                level: rng.random_range(0..4),
                first_token: a.min(b),
                last_token: a.max(b),
                min_timestamp: min_ts,
                max_timestamp: min_ts + rng.random_range(0..2 * HOUR_MICROS),
                max_local_deletion_time: if rng.random_bool(0.5) {
                    u32::MAX
                } else {
                    rng.random_range(0..40_000)
                },
                estimated_droppable_tombstones: rng.random_range(0..10_000),
                cell_count: 10_000,
                created_at_seconds: rng.random_range(0..40_000),
            }
        })
        .collect()
}

#[test]
fn chosen_inputs_are_live_idle_and_well_formed() {
    let seed = seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let strategies = [
        stcs(),
        lcs("64"),
        twcs_hours("1"),
        params(&[("class", "TimeWindowCompactionStrategy"), ("tombstone_threshold", "0.1")]),
    ];
    for round in 0..500 {
        let n = rng.random_range(0..60);
        let all = random_sstables(&mut rng, n);
        let compacting: BTreeSet<u64> = all.iter().map(|s| s.id).filter(|_| rng.random_bool(0.2)).collect();
        let now = rng.random_range(0..50_000);
        let gc = rng.random_range(0..5_000);
        for p in &strategies {
            let Some(t) = next_task(p, &all, &compacting, now, gc) else { continue };
            let ctx = format!("round {round} {:?} {t:?}", p.strategy);
            assert!(!t.inputs.is_empty(), "{ctx}");
            assert!(t.inputs.windows(2).all(|w| w[0] < w[1]), "{ctx}");
            assert!(t.inputs.iter().all(|id| all.iter().any(|s| s.id == *id)), "{ctx}");
            assert!(t.inputs.iter().all(|id| !compacting.contains(id)), "{ctx}");
            match t.kind {
                TaskKind::TombstoneCompaction => assert_eq!(t.inputs.len(), 1, "{ctx}"),
                TaskKind::DropExpired => {
                    let inputs: Vec<&SsTableInfo> = all.iter().filter(|s| t.inputs.contains(&s.id)).collect();
                    let expired = fully_expired(inputs, &all, now.saturating_sub(gc), None);
                    assert_eq!(expired.into_iter().collect::<Vec<_>>(), t.inputs, "{ctx}");
                }
                TaskKind::Compaction => assert!(t.inputs.len() <= p.max_threshold.max(all.len()), "{ctx}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Simulations

fn summary(name: &str, r: &SimulationReport) {
    eprintln!(
        "{name}: write amp {:.2}, space amp {:.2} (max {:.2}), sstables/read {:.2} (max {}), sstables max {}, tasks {}/{}/{}",
        r.write_amplification,
        r.space_amplification,
        r.max_space_amplification,
        r.mean_sstables_per_read,
        r.max_sstables_per_read,
        r.max_sstable_count,
        r.compaction_tasks,
        r.tombstone_compaction_tasks,
        r.drop_expired_tasks,
    );
}

/// The count stays under `limit`, and the last quarter of the run is no worse than the second.
fn assert_bounded(name: &str, r: &SimulationReport, limit: usize) {
    let counts = &r.sstable_count_over_time;
    let q = counts.len() / 4;
    let second = counts[q..2 * q].iter().max().copied().unwrap_or(0);
    let last = counts[3 * q..].iter().max().copied().unwrap_or(0);
    assert!(r.max_sstable_count <= limit, "{name}: {} SSTables", r.max_sstable_count);
    assert!(last <= second + second / 2 + 2, "{name}: count still growing ({second} then {last})");
    assert_eq!(r.task_limit_reached_steps, 0, "{name}");
}

#[test]
fn simulated_stcs_write_amplification_is_about_log4_of_data_over_flush() {
    let seed = seed();
    let p = stcs();
    for (key_count, data_over_flush) in [(1u64 << 22, 64.0f64), (1 << 24, 256.0)] {
        // 1 KiB values, 64 MiB flushes (above min_sstable_size, so only the tiers count).
        let w = Workload { key_count, value_bytes: 1024, flush_bytes: 64 * MIB, ..Workload::default() };
        let r = simulate(&p, &w, 3_000, seed);
        summary(&format!("stcs D/F={data_over_flush}"), &r);
        let tiers = data_over_flush.log(4.0);
        assert!(
            (r.write_amplification - (1.0 + tiers)).abs() <= 1.25,
            "write amp {} for log4(D/F) = {tiers}",
            r.write_amplification
        );
        assert_eq!(r.level_overlap_violations, 0);
        assert_bounded("stcs", &r, 4 * 8);
    }
}

#[test]
fn simulated_lcs_never_overlaps_within_a_level() {
    let seed = seed();
    let p = lcs("16");
    let base =
        Workload { key_count: 1 << 20, value_bytes: 1024, flush_bytes: 16 * MIB, ..Workload::default() };
    for (name, w) in [
        ("lcs", base.clone()),
        (
            "lcs, 2 compactors, throttled",
            Workload { concurrent_compactors: 2, compaction_bytes_per_step: Some(160 * MIB), ..base.clone() },
        ),
        ("lcs, deletes", Workload { delete_fraction: 0.3, gc_grace_seconds: 3_600, ..base.clone() }),
    ] {
        let r = simulate(&p, &w, 3_000, seed);
        summary(name, &r);
        assert_eq!(r.level_overlap_violations, 0, "{name}: first overlap {:?}", r.first_level_overlap);
        assert!(level_overlaps(&r.final_sstables).is_empty());
        assert!(r.space_amplification < 2.0, "{name}: {}", r.space_amplification);
        // 1 GiB of data in 16 MiB SSTables, plus L0.
        assert_bounded(name, &r, 64 + 32 + 16);
        // L0 (a few) + one per level.
        assert!(r.mean_sstables_per_read < 8.0, "{name}");
        if w.compaction_bytes_per_step.is_some() {
            assert_eq!(r.max_running_tasks, 2, "{name}: compactions overlapped in time");
        }
    }
}

#[test]
fn simulated_twcs_drops_expired_windows_without_rewriting_them() {
    let seed = seed();
    let p = twcs_hours("1");
    let w = Workload {
        key_count: 1 << 20,
        value_bytes: 1024,
        flush_bytes: 16 * MIB,
        flush_interval_seconds: 60,
        ttl_seconds: Some(3 * 3_600),
        gc_grace_seconds: 600,
        ..Workload::default()
    };
    let r = simulate(&p, &w, 3_000, seed);
    summary("twcs", &r);
    assert!(r.drop_expired_tasks > 0 && r.sstables_dropped_expired > 0);
    assert_eq!(r.drop_expired_bytes_written, 0);
    // Expired data leaves by whole-SSTable drops, not by rewriting.
    assert!(r.bytes_dropped_expired > 0);
    assert!(
        r.bytes_purged_by_rewrite * 20 < r.bytes_dropped_expired,
        "{} purged by rewrite",
        r.bytes_purged_by_rewrite
    );
    // Windows: 3 h of TTL + gc_grace + the current one, each one SSTable, plus the current's tiers.
    assert_bounded("twcs", &r, 20);
    let windows: BTreeSet<i64> = r
        .final_sstables
        .iter()
        .map(|s| window_start_seconds(s.max_timestamp, p.time_window().unwrap()))
        .collect();
    assert!(windows.len() <= 5, "{windows:?}");
}

#[test]
fn every_strategy_keeps_the_sstable_count_bounded() {
    let seed = seed();
    let w = Workload {
        key_count: 1 << 20,
        value_bytes: 1024,
        flush_bytes: 16 * MIB,
        ttl_seconds: Some(6 * 3_600),
        delete_fraction: 0.1,
        gc_grace_seconds: 3_600,
        ..Workload::default()
    };
    for (name, p, limit) in [("stcs", stcs(), 40), ("lcs", lcs("16"), 120), ("twcs", twcs_hours("2"), 30)] {
        let r = simulate(&p, &w, 5_000, seed);
        summary(name, &r);
        assert_bounded(name, &r, limit);
        assert_eq!(r.drop_expired_bytes_written, 0);
    }
}

#[test]
fn simulations_replay_from_their_seed() {
    let seed = seed();
    let w = Workload {
        concurrent_compactors: 2,
        compaction_bytes_per_step: Some(64 * MIB),
        ..Workload::default()
    };
    assert_eq!(simulate(&lcs("16"), &w, 300, seed), simulate(&lcs("16"), &w, 300, seed));
}
