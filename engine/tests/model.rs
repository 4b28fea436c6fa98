//! Model test: random sequences of writes, deletions of every kind, TTLs, flushes, compactions
//! (each case picks size-tiered, leveled or time-window), reopens and reads against a naive model
//! of Cassandra's semantics. At the end of a case the clock passes gc_grace and TTLs, a random
//! subset of SSTables is compacted (tombstones whose shadowed data lies outside the subset must
//! stay), then everything is: reads before and after must agree with the model, so purging never
//! resurrects anything.
//!
//! The model keeps every operation and answers a read by brute force: a cell is visible if the
//! newest operation on it is a write that has not expired and no row, range or partition deletion
//! at least as new covers it. Timestamps are unique and handed out in shuffled order, so newer
//! data regularly arrives before older data.
//!
//! `SIBYL_MODEL_CASES` sets the number of cases per shard (default 150, four shards), `SIBYL_SEED` the base seed; the
//! seed of a failing case is printed so it can be replayed alone.

#![allow(clippy::unwrap_used, reason = "a test should fail loudly on any error")]

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sibyl_engine::partition::RangeTombstone;
use sibyl_engine::{
    Cell, ColumnId, DeletionTime, Engine, LivenessInfo, Mutation, PartitionUpdate, ReadCommand, Row, Slice,
    TableId, Token,
};

const PARTITIONS: u64 = 4;
const CLUSTERINGS: i64 = 24;
const COLUMNS: u32 = 3;

#[derive(Debug, Clone)]
enum Op {
    Write { p: u64, c: i64, col: u32, ts: i64, value: String, ttl: Option<u32> },
    Marker { p: u64, c: i64, ts: i64, ttl: Option<u32> },
    DeleteCell { p: u64, c: i64, col: u32, ts: i64 },
    DeleteRow { p: u64, c: i64, ts: i64 },
    DeleteRange { p: u64, lo: i64, hi: i64, lo_incl: bool, hi_incl: bool, ts: i64 },
    DeletePartition { p: u64, ts: i64 },
}

#[derive(Default)]
struct Model {
    ops: Vec<Op>,
}

impl Model {
    /// Newest deletion timestamp covering row (p, c), if any.
    fn row_deleted_at(&self, p: u64, c: i64) -> i64 {
        let mut d = i64::MIN;
        for op in &self.ops {
            match *op {
                Op::DeleteRow { p: q, c: k, ts } if q == p && k == c => d = d.max(ts),
                Op::DeletePartition { p: q, ts } if q == p => d = d.max(ts),
                Op::DeleteRange { p: q, lo, hi, lo_incl, hi_incl, ts } if q == p => {
                    let above = if lo_incl { c >= lo } else { c > lo };
                    let below = if hi_incl { c <= hi } else { c < hi };
                    if above && below {
                        d = d.max(ts);
                    }
                }
                _ => {}
            }
        }
        d
    }

    fn cell(&self, p: u64, c: i64, col: u32, now: u32) -> Option<String> {
        let newest = self
            .ops
            .iter()
            .filter(|op| match op {
                Op::Write { p: q, c: k, col: x, .. } | Op::DeleteCell { p: q, c: k, col: x, .. } => {
                    *q == p && *k == c && *x == col
                }
                _ => false,
            })
            .max_by_key(|op| match op {
                Op::Write { ts, .. } | Op::DeleteCell { ts, .. } => *ts,
                _ => unreachable!(),
            })?;
        match newest {
            Op::Write { ts, value, ttl, .. } => {
                let expired = ttl.is_some_and(|t| now >= NOW + t);
                (!expired && *ts > self.row_deleted_at(p, c)).then(|| value.clone())
            }
            _ => None,
        }
    }

    fn marker_live(&self, p: u64, c: i64, now: u32) -> bool {
        let newest = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Marker { p: q, c: k, ts, ttl } if *q == p && *k == c => Some((*ts, *ttl)),
                _ => None,
            })
            .max_by_key(|(ts, _)| *ts);
        newest.is_some_and(|(ts, ttl)| ts > self.row_deleted_at(p, c) && ttl.is_none_or(|t| now < NOW + t))
    }

    /// Visible rows of partition p: clustering -> the three column values.
    fn partition(&self, p: u64, now: u32) -> BTreeMap<i64, Vec<Option<String>>> {
        let mut out = BTreeMap::new();
        for c in 0..CLUSTERINGS {
            let cols: Vec<Option<String>> = (1..=COLUMNS).map(|col| self.cell(p, c, col, now)).collect();
            if self.marker_live(p, c, now) || cols.iter().any(Option::is_some) {
                out.insert(c, cols);
            }
        }
        out
    }
}

fn to_mutation(t: TableId, op: &Op) -> Mutation {
    let (p, update) = match op {
        Op::Write { p, c, col, ts, value, ttl } => {
            let mut row = Row::new(ck(*c));
            let v = Bytes::copy_from_slice(value.as_bytes());
            row.add_cell(match ttl {
                Some(ttl) => Cell::expiring(ColumnId(*col), *ts, v, *ttl, NOW),
                None => Cell::live(ColumnId(*col), *ts, v),
            });
            (*p, Some(row))
        }
        Op::Marker { p, c, ts, ttl } => {
            let mut row = Row::new(ck(*c));
            row.liveness = match ttl {
                Some(ttl) => LivenessInfo::expiring(*ts, *ttl, NOW),
                None => LivenessInfo::new(*ts),
            };
            (*p, Some(row))
        }
        Op::DeleteCell { p, c, col, ts } => {
            let mut row = Row::new(ck(*c));
            row.add_cell(Cell::tombstone(ColumnId(*col), *ts, NOW));
            (*p, Some(row))
        }
        Op::DeleteRow { p, c, ts } => {
            let mut row = Row::new(ck(*c));
            row.deletion = DeletionTime::new(*ts, NOW);
            (*p, Some(row))
        }
        Op::DeleteRange { p, .. } | Op::DeletePartition { p, .. } => (*p, None),
    };
    let mut u = PartitionUpdate::new(pk(p));
    if let Some(row) = update {
        u.rows.push(row);
    }
    match *op {
        Op::DeleteRange { lo, hi, lo_incl, hi_incl, ts, .. } => {
            let (l, h) = (ck_prefix(lo), ck_prefix(hi));
            u.header.range_tombstones.push(RangeTombstone {
                slice: Slice {
                    start: if lo_incl { l.before() } else { l.after() },
                    end: if hi_incl { h.after() } else { h.before() },
                },
                deletion: DeletionTime::new(ts, NOW),
            });
        }
        Op::DeletePartition { ts, .. } => u.header.deletion = DeletionTime::new(ts, NOW),
        _ => {}
    }
    Mutation { table: t, update: u }
}

fn engine_partition(engine: &Engine, t: TableId, p: u64, now: u32) -> BTreeMap<i64, Vec<Option<String>>> {
    let mut out = BTreeMap::new();
    let Some(data) = engine.read(&ReadCommand::partition(t, pk(p), now)).unwrap() else { return out };
    for row in data.live_rows(now) {
        let c = (0..CLUSTERINGS).find(|c| ck(*c) == row.clustering).expect("known clustering");
        let cols = (1..=COLUMNS)
            .map(|col| {
                row.cells
                    .iter()
                    .find(|x| x.column == ColumnId(col) && x.is_live(now))
                    .map(|x| String::from_utf8_lossy(&x.value).into_owned())
            })
            .collect();
        out.insert(c, cols);
    }
    out
}

fn random_op(rng: &mut StdRng, ts: i64) -> Op {
    let p = rng.random_range(0..PARTITIONS);
    let c = rng.random_range(0..CLUSTERINGS);
    let ttl = if rng.random_bool(0.15) { Some(rng.random_range(1..10)) } else { None };
    match rng.random_range(0..100) {
        0..=54 => Op::Write { p, c, col: rng.random_range(1..=COLUMNS), ts, value: format!("v{ts}"), ttl },
        55..=64 => Op::Marker { p, c, ts, ttl },
        65..=76 => Op::DeleteCell { p, c, col: rng.random_range(1..=COLUMNS), ts },
        77..=88 => Op::DeleteRow { p, c, ts },
        89..=96 => {
            let a = rng.random_range(0..CLUSTERINGS);
            let b = rng.random_range(0..CLUSTERINGS);
            Op::DeleteRange {
                p,
                lo: a.min(b),
                hi: a.max(b),
                lo_incl: rng.random(),
                hi_incl: rng.random(),
                ts,
            }
        }
        _ => Op::DeletePartition { p, ts },
    }
}

/// Seconds of gc_grace in every case.
const GC_GRACE: u32 = 30;

fn run_case(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.commitlog_sync = sibyl_engine::SyncMode::Periodic { period: std::time::Duration::from_secs(60) };
    let clock = std::sync::Arc::new(sibyl_engine::ManualClock::new(i64::from(NOW) * 1_000_000));
    o.clock = clock.clone();
    o.concurrent_compactors = 0;
    let t = TableId(uuid::Uuid::from_u128(7));
    let mut engine = Engine::open(o.clone()).unwrap();
    let mut table = table_options(t);
    table.gc_grace_seconds = GC_GRACE;
    let strategy: &[(&str, &str)] = match rng.random_range(0..3) {
        0 => &[("class", "SizeTieredCompactionStrategy"), ("min_threshold", "2")],
        1 => &[("class", "LeveledCompactionStrategy"), ("sstable_size_in_mb", "1")],
        _ => &[
            ("class", "TimeWindowCompactionStrategy"),
            ("compaction_window_unit", "MINUTES"),
            ("min_threshold", "2"),
        ],
    };
    table.compaction = strategy.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
    engine.create_table(table).unwrap();
    let n_ops = rng.random_range(10..80);
    let mut timestamps: Vec<i64> = (1..=n_ops as i64).map(|i| i * 10).collect();
    timestamps.shuffle(&mut rng);
    let mut model = Model::default();
    for ts in timestamps {
        let op = random_op(&mut rng, ts);
        engine.apply(to_mutation(t, &op)).unwrap();
        model.ops.push(op);
        match rng.random_range(0..100) {
            0..=7 => engine.flush(t).unwrap(),
            8..=10 => {
                drop(engine);
                engine = Engine::open(o.clone()).unwrap();
            }
            11..=20 => {
                let now = NOW + rng.random_range(0..12);
                let p = rng.random_range(0..PARTITIONS);
                check_slice(&engine, &model, t, p, now, &mut rng);
            }
            21..=26 => {
                engine.compact_pending(t).unwrap();
            }
            27..=28 => engine.compact(t).unwrap(),
            _ => {}
        }
    }
    for now in [NOW, NOW + 5, NOW + 20] {
        for p in 0..PARTITIONS {
            assert_eq!(
                engine_partition(&engine, t, p, now),
                model.partition(p, now),
                "partition {p} at now+{}",
                now - NOW
            );
        }
    }
    check_scan(&engine, &model, t, rng.random_range(1..4), NOW);
    drop(engine);
    let engine = Engine::open(o).unwrap();
    for p in 0..PARTITIONS {
        assert_eq!(
            engine_partition(&engine, t, p, NOW),
            model.partition(p, NOW),
            "after reopen, partition {p}"
        );
    }

    // Past gc_grace and every TTL: purge what may be purged, in two steps.
    engine.flush(t).unwrap();
    clock.advance_seconds(i64::from(GC_GRACE) + 20);
    let later = NOW + GC_GRACE + 20;
    let check = |engine: &Engine, when: &str| {
        for p in 0..PARTITIONS {
            assert_eq!(
                engine_partition(engine, t, p, later),
                model.partition(p, later),
                "{when}, partition {p}"
            );
        }
    };
    let mut gens: Vec<u64> =
        engine.sstables(t).unwrap().iter().map(|s| s.descriptor().generation.0).collect();
    gens.shuffle(&mut rng);
    gens.truncate(rng.random_range(0..=gens.len()));
    if !gens.is_empty() {
        engine.compact_sstables(t, &gens).unwrap();
    }
    check(&engine, "after compacting a subset past gc_grace");
    engine.compact(t).unwrap();
    check(&engine, "after a major compaction past gc_grace");
    check_scan(&engine, &model, t, rng.random_range(1..4), later);
}

/// A paged token-range scan sees exactly the partitions with visible rows, in token order,
/// with the same rows as the model.
fn check_scan(engine: &Engine, model: &Model, t: TableId, page: usize, now: u32) {
    let seen = scan_all_at(engine, t, page, now);
    let tokens: Vec<Token> = seen.iter().map(|p| p.key.token).collect();
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "scan out of token order");
    let index = |k: &Bytes| (0..PARTITIONS).find(|i| pk(*i) == *k).expect("known key");
    let visible: Vec<u64> = (0..PARTITIONS).filter(|p| !model.partition(*p, now).is_empty()).collect();
    let mut scanned: Vec<u64> =
        seen.iter().filter(|p| p.live_rows(now).next().is_some()).map(|p| index(&p.key.key)).collect();
    scanned.sort_unstable();
    assert_eq!(scanned, visible, "scan with page size {page}");
    for p in &seen {
        let i = index(&p.key.key);
        assert_eq!(p.live_rows(now).count(), model.partition(i, now).len(), "scanned rows of partition {i}");
    }
}

fn check_slice(engine: &Engine, model: &Model, t: TableId, p: u64, now: u32, rng: &mut StdRng) {
    let a = rng.random_range(0..CLUSTERINGS);
    let b = rng.random_range(0..CLUSTERINGS);
    let (lo, hi) = (a.min(b), a.max(b));
    let reversed = rng.random_bool(0.5);
    let limit = rng.random_range(1..8);
    let cmd = ReadCommand {
        table: t,
        key: pk(p),
        slices: vec![Slice { start: ck_prefix(lo).before(), end: ck_prefix(hi).after() }],
        reversed,
        row_limit: limit,
        now_seconds: now,
    };
    let got: Vec<Bytes> = engine
        .read(&cmd)
        .unwrap()
        .map(|d| d.live_rows(now).map(|r| r.clustering.clone()).collect())
        .unwrap_or_default();
    let mut want: Vec<Bytes> =
        model.partition(p, now).keys().filter(|c| (lo..=hi).contains(*c)).map(|c| ck(*c)).collect();
    if reversed {
        want.reverse();
    }
    want.truncate(limit);
    assert_eq!(got, want, "slice [{lo}, {hi}] reversed={reversed} limit={limit} of partition {p}");
}

/// Runs `SIBYL_MODEL_CASES` cases (default 150 per shard) from a base seed; shards run in
/// parallel under nextest and use disjoint seeds.
fn run_shard(shard: u64) {
    let cases: u64 = std::env::var("SIBYL_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let base: u64 = match std::env::var("SIBYL_SEED").ok().and_then(|v| v.parse().ok()) {
        Some(seed) => seed,
        None => rand::random::<u64>().wrapping_add(shard << 48),
    };
    println!(
        "model test shard {shard}: {cases} cases from base seed {base} (SIBYL_SEED={base} replays them)"
    );
    for i in 0..cases {
        let seed = base.wrapping_add(i);
        let result = std::panic::catch_unwind(|| run_case(seed));
        if let Err(e) = result {
            eprintln!("model test case failed: SIBYL_SEED={seed} SIBYL_MODEL_CASES=1 reproduces it");
            std::panic::resume_unwind(e);
        }
    }
}

#[test]
fn engine_matches_the_model_of_cassandra_semantics_shard_0() {
    run_shard(0);
}

#[test]
fn engine_matches_the_model_of_cassandra_semantics_shard_1() {
    run_shard(1);
}

#[test]
fn engine_matches_the_model_of_cassandra_semantics_shard_2() {
    run_shard(2);
}

#[test]
fn engine_matches_the_model_of_cassandra_semantics_shard_3() {
    run_shard(3);
}
