//! `sibyl-bench`: db_bench-style workloads run on Sibyl's engine and, when compiled in, on
//! RocksDB and fjall, in the same process with the same keys, values and random choices.
//!
//! For each engine the workloads run in the order given. fillseq, fillrandom and fillsync each
//! start from a fresh database; overwrite and the read workloads use the database left by the
//! previous workload (a read workload with no data first loads `num` keys in order, untimed).
//! Every write workload ends with an untimed flush, so write and space amplification include
//! the flush and the read workloads read flushed tables (plus whatever compaction is doing).
//!
//! `docs/benchmarks.md` explains the workloads, the Sibyl mapping and the measured results.

pub mod config;
pub mod disk;
pub mod keys;
pub mod report;
pub mod sibyl;
pub mod store;
pub mod sustained;
pub mod workload;

#[cfg(feature = "fjall")]
pub mod fjall;
#[cfg(feature = "rocksdb")]
pub mod rocks;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use config::{BenchConfig, Benchmark, EngineKind};
use keys::{mix, KeyFormat, KeyState, ValueSource};
use report::{PhaseResult, WriteCost};
use store::{Durability, Store};
use workload::{FillOrder, Measured, Progress, Workload};

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Every result, in the order run.
    pub results: Vec<PhaseResult>,
    /// Failed checks (wrong or missing values): the run must exit non-zero.
    pub failures: Vec<String>,
}

/// How Sibyl stores the benchmark's keys, printed with every run.
pub const SIBYL_MAPPING: &str = "\
sibyl mapping: table bench.kv (k blob PRIMARY KEY, v blob); one partition per key, one row (empty
  clustering) with one cell; reads are single-partition reads; seekrandom is a token-order scan
  (SELECT * FROM kv WHERE token(k) >= token(?) LIMIT seek_nexts), not a key-order range.
durability: non-sync workloads: WAL on, no per-write sync (sibyl commitlog_sync periodic 10s,
  rocksdb sync=false, fjall journal written to the OS per write); fillsync: sibyl group 2ms
  (and batch), rocksdb sync=true, fjall persist(SyncData) after each insert.
flush: every write workload ends with an untimed flush; reads hit flushed tables.
w-amp: bytes this process wrote to storage (/proc/self/io write_bytes, page granular) per user
  byte, over the workload and its flush; dir = growth of the directory's allocated bytes;
  engine = the engine's own count (RocksDB: WAL + flush + compaction bytes).
s-amp: allocated directory bytes after the flush per live user byte (key + value).
tables: on-disk tables after the workload (Sibyl SSTables, RocksDB live SST files, fjall tables).";

/// Runs every engine and workload of `cfg`, printing results as they finish.
pub fn run(cfg: &BenchConfig) -> Result<Outcome> {
    cfg.validate()?;
    let seed = match cfg.seed {
        Some(s) => s,
        None => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            mix(u64::try_from(now.as_nanos()).unwrap_or(u64::MAX))
        }
    };
    let temp;
    let root: PathBuf = match &cfg.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("sibyl-bench-")
                .tempdir()
                .context("creating a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let engines: Vec<&str> = cfg.engines.iter().map(|e| e.name()).collect();
    let benchmarks: Vec<&str> = cfg.benchmarks.iter().map(|b| b.name()).collect();
    println!(
        "sibyl-bench: engines {} | workloads {} | num {} reads {} seeks {} key {} B value {} B seek-nexts {} \
         sync-writers {} sync-writes {} | seed {seed} | dir {}",
        engines.join(","),
        benchmarks.join(","),
        cfg.num,
        cfg.reads,
        cfg.seeks,
        cfg.key_size,
        cfg.value_size,
        cfg.seek_nexts,
        cfg.sync_writers,
        cfg.sync_writes,
        root.display()
    );
    println!("{SIBYL_MAPPING}\n");
    let workload = Workload {
        keys: KeyFormat::new(cfg.key_size),
        values: ValueSource::new(cfg.value_size, seed),
        num: cfg.num,
    };
    let sibyl = crate::config::NodeConfig::load(cfg.config.as_deref())?.engine_options()?;
    let mut outcome = Outcome { results: Vec::new(), failures: Vec::new() };
    for &engine in &cfg.engines {
        let mut runner = EngineRunner {
            cfg,
            engine,
            seed,
            root: root.join(engine.name()),
            workload: &workload,
            sibyl: &sibyl,
            db: None,
        };
        let result = runner.run_all(&mut outcome);
        if let Some(db) = runner.db.take() {
            db.close(cfg.keep_data)?;
        }
        result?;
    }
    println!("{}", report::summary(&outcome.results, &cfg.engines));
    Ok(outcome)
}

/// An open database and what was written to it.
struct Db {
    store: Box<dyn Store>,
    dir: PathBuf,
    keys: KeyState,
}

impl Db {
    fn open(
        engine: EngineKind,
        dir: PathBuf,
        durability: Durability,
        sibyl: &sibyl_engine::EngineOptions,
        num: u64,
    ) -> Result<Db> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing old {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let store = store::open(engine, &dir, durability, sibyl)?;
        Ok(Db { store, dir, keys: KeyState::new(num)? })
    }

    fn close(self, keep: bool) -> Result<()> {
        self.store.close()?;
        if !keep {
            std::fs::remove_dir_all(&self.dir).with_context(|| format!("removing {}", self.dir.display()))?;
        }
        Ok(())
    }
}

/// Disk counters at one moment.
struct DiskSnapshot {
    dir_bytes: u64,
    process_bytes: Option<u64>,
    engine_bytes: Option<u64>,
}

impl DiskSnapshot {
    fn take(store: &dyn Store, dir: &Path) -> Result<DiskSnapshot> {
        Ok(DiskSnapshot {
            dir_bytes: disk::dir_size_bytes(dir)?,
            process_bytes: disk::process_write_bytes()?,
            engine_bytes: store.engine_write_bytes(),
        })
    }

    fn cost_since(&self, before: &DiskSnapshot, user_bytes: u64, live_user_bytes: u64) -> WriteCost {
        let delta = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?));
        WriteCost {
            user_bytes,
            process_bytes: delta(self.process_bytes, before.process_bytes),
            dir_growth_bytes: i64::try_from(self.dir_bytes).unwrap_or(i64::MAX)
                - i64::try_from(before.dir_bytes).unwrap_or(i64::MAX),
            final_dir_bytes: self.dir_bytes,
            live_user_bytes,
            engine_bytes: delta(self.engine_bytes, before.engine_bytes),
        }
    }
}

/// Runs the workloads of one engine.
struct EngineRunner<'a> {
    cfg: &'a BenchConfig,
    engine: EngineKind,
    seed: u64,
    root: PathBuf,
    workload: &'a Workload,
    /// Sibyl's engine settings from the node configuration.
    sibyl: &'a sibyl_engine::EngineOptions,
    db: Option<Db>,
}

impl EngineRunner<'_> {
    fn run_all(&mut self, outcome: &mut Outcome) -> Result<()> {
        for (step, &bench) in self.cfg.benchmarks.iter().enumerate() {
            let results = self
                .run_one(bench, step)
                .with_context(|| format!("{} {}", self.engine.name(), bench.name()))?;
            for r in results {
                println!("{}", r.line());
                if let Some(f) = r.failure() {
                    eprintln!("CHECK FAILED: {f}");
                    outcome.failures.push(f);
                }
                outcome.results.push(r);
            }
        }
        Ok(())
    }

    /// The seed of a workload: the same for every engine, so they see the same keys.
    fn phase_seed(&self, bench: Benchmark) -> u64 {
        mix(self.seed ^ mix(bench as u64 + 1))
    }

    fn progress(&self, bench: Benchmark, variant: &str, total: u64) -> Progress {
        Progress::new(format!("{} {}{variant}", self.engine.name(), bench.name()), total)
    }

    fn fresh_db(&mut self, name: &str, durability: Durability) -> Result<Db> {
        if let Some(old) = self.db.take() {
            old.close(self.cfg.keep_data)?;
        }
        Db::open(self.engine, self.root.join(name), durability, self.sibyl, self.cfg.num)
    }

    fn run_one(&mut self, bench: Benchmark, step: usize) -> Result<Vec<PhaseResult>> {
        let cfg = self.cfg;
        let w = self.workload;
        let seed = self.phase_seed(bench);
        let engine = self.engine;
        let mut note = None;
        let result = |measured: Measured, note: Option<String>| PhaseResult {
            engine,
            benchmark: bench,
            variant: "",
            measured,
            write: None,
            read: None,
            seek: None,
            tables: None,
            sustained: None,
            note,
        };
        match bench {
            Benchmark::Fillseq | Benchmark::Fillrandom | Benchmark::Overwrite => {
                let order =
                    if bench == Benchmark::Fillseq { FillOrder::Sequential } else { FillOrder::Random(seed) };
                if bench != Benchmark::Overwrite || self.db.is_none() {
                    self.db = Some(self.fresh_db(&format!("{step}-{}", bench.name()), Durability::NoSync)?);
                }
                let progress = self.progress(bench, "", cfg.num);
                let db = self.db.as_mut().context("database just opened")?;
                let before = DiskSnapshot::take(&*db.store, &db.dir)?;
                let measured = workload::fill(&*db.store, &mut db.keys, w, order, cfg.num, &progress)?;
                db.store.flush()?;
                let after = DiskSnapshot::take(&*db.store, &db.dir)?;
                let user_bytes = cfg.num * cfg.entry_bytes();
                let cost = after.cost_since(&before, user_bytes, db.keys.live() * cfg.entry_bytes());
                let tables = db.store.table_count()?;
                Ok(vec![PhaseResult { write: Some(cost), tables, ..result(measured, None) }])
            }
            Benchmark::Readrandom | Benchmark::Readmissing | Benchmark::Seekrandom => {
                if self.db.is_none() {
                    eprintln!(
                        "  {} {}: no data yet, loading {} keys in order (untimed)",
                        self.engine.name(),
                        bench.name(),
                        cfg.num
                    );
                    let mut db = self.fresh_db(&format!("{step}-load"), Durability::NoSync)?;
                    let progress = self.progress(bench, " load", cfg.num);
                    workload::fill(&*db.store, &mut db.keys, w, FillOrder::Sequential, cfg.num, &progress)?;
                    db.store.flush()?;
                    self.db = Some(db);
                    note = Some(format!("loaded {} keys in order, untimed", cfg.num));
                }
                let db = self.db.as_ref().context("database just loaded")?;
                let store = &*db.store;
                let tables = store.table_count()?;
                let mut r = match bench {
                    Benchmark::Readrandom => {
                        let progress = self.progress(bench, "", cfg.reads);
                        let (m, check) =
                            workload::read_random(store, &db.keys, w, seed, cfg.reads, &progress)?;
                        PhaseResult { read: Some(check), ..result(m, note) }
                    }
                    Benchmark::Readmissing => {
                        let progress = self.progress(bench, "", cfg.reads);
                        let (m, check) = workload::read_missing(store, w, seed, cfg.reads, &progress)?;
                        PhaseResult { read: Some(check), ..result(m, note) }
                    }
                    _ => {
                        let progress = self.progress(bench, "", cfg.seeks);
                        let nexts = cfg.seek_nexts;
                        let (m, check) =
                            workload::seek_random(store, &db.keys, w, seed, cfg.seeks, nexts, &progress)?;
                        PhaseResult { seek: Some(check), ..result(m, note) }
                    }
                };
                r.tables = tables;
                Ok(vec![r])
            }
            Benchmark::Sustained | Benchmark::Deletes => {
                let variants: Vec<(&'static str, Option<config::Strategy>)> = match self.engine {
                    EngineKind::Sibyl => cfg.strategies.iter().map(|s| (s.label(), Some(*s))).collect(),
                    _ => vec![("", None)],
                };
                let mut out = Vec::new();
                for (label, strategy) in variants {
                    if let Some(old) = self.db.take() {
                        old.close(cfg.keep_data)?;
                    }
                    let dir = self.root.join(format!("{step}-{}{label}", bench.name()));
                    if dir.exists() {
                        std::fs::remove_dir_all(&dir)
                            .with_context(|| format!("removing old {}", dir.display()))?;
                    }
                    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                    let compaction = strategy.map(config::Strategy::options);
                    let store = store::open_with(
                        self.engine,
                        &dir,
                        Durability::NoSync,
                        self.sibyl,
                        compaction.as_ref(),
                    )?;
                    let plan = sustained::Plan {
                        num: cfg.num,
                        ops: cfg.num * cfg.overwrite_factor,
                        reads: (cfg.reads / 10).max(1),
                        read_rate: cfg.read_rate,
                        mix: if bench == Benchmark::Sustained {
                            sustained::Mix::Overwrites
                        } else {
                            sustained::Mix::Deletes
                        },
                        seed,
                        entry_bytes: cfg.entry_bytes(),
                    };
                    let name = format!("{} {}{label}", self.engine.name(), bench.name());
                    let figures = sustained::run(&*store, &dir, &w.keys, &w.values, &plan, &name)?;
                    store.close()?;
                    if !cfg.keep_data {
                        std::fs::remove_dir_all(&dir)
                            .with_context(|| format!("removing {}", dir.display()))?;
                    }
                    let mut r = result(figures.writes.clone(), None);
                    r.variant = label;
                    r.tables = figures.tables;
                    r.sustained = Some(figures);
                    out.push(r);
                }
                Ok(out)
            }
            Benchmark::Fillsync => {
                let variants: &[Durability] = match self.engine {
                    EngineKind::Sibyl => &[Durability::SyncGroup, Durability::SyncBatch],
                    _ => &[Durability::SyncGroup],
                };
                let mut out = Vec::new();
                for &durability in variants {
                    // A separate database: the one the other workloads use stays as it is.
                    let dir = self.root.join(format!("{step}-fillsync{}", durability.label()));
                    let db = Db::open(self.engine, dir, durability, self.sibyl, cfg.num)?;
                    let progress = self.progress(bench, durability.label(), cfg.sync_writes);
                    let before = DiskSnapshot::take(&*db.store, &db.dir)?;
                    let (measured, live) = workload::fill_sync(
                        &*db.store,
                        w,
                        seed,
                        cfg.sync_writers,
                        cfg.sync_writes,
                        &progress,
                    )?;
                    db.store.flush()?;
                    let after = DiskSnapshot::take(&*db.store, &db.dir)?;
                    let cost = after.cost_since(
                        &before,
                        cfg.sync_writes * cfg.entry_bytes(),
                        live * cfg.entry_bytes(),
                    );
                    let tables = db.store.table_count()?;
                    db.close(cfg.keep_data)?;
                    let mut r = PhaseResult { write: Some(cost), tables, ..result(measured, None) };
                    r.variant = durability.label();
                    r.note = Some(format!("{} writers", cfg.sync_writers));
                    out.push(r);
                }
                Ok(out)
            }
        }
    }
}
