//! The compaction workloads: hours of writes compressed into one run, to see what each
//! compaction strategy costs and how reads fare while it works.
//!
//! `sustained`: `num` keys loaded in random order, then `overwrite_factor * num` random
//! overwrites. `deletes`: the same load, then as many random operations, half overwrites and
//! half deletes. For both, a reader thread does paced point reads (`read_rate` per second) from
//! the start, and after the writes:
//! 1. the store is flushed and left until its background compactions are done ("settled");
//! 2. `reads` paced reads are timed with nothing else running ("idle");
//! 3. a major compaction runs while the reader goes on ("during major").
//!
//! The report gives write amplification (bytes this process wrote per user byte, over the
//! load, the writes and the settling), space amplification after settling, on-disk tables per
//! point read, and the read p99 of each period.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::disk;
use super::keys::{KeyFormat, ValueSource};
use super::store::Store;
use super::workload::{Measured, Progress};

/// Longest a store may take to finish its background compactions after the writes.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(1800);
/// How long a store must report no compaction work before it counts as settled.
const SETTLE_QUIET: Duration = Duration::from_secs(2);

/// Which compaction workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Random overwrites only.
    Overwrites,
    /// Half overwrites, half deletes.
    Deletes,
}

/// Sizes of a compaction workload.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Distinct keys.
    pub num: u64,
    /// Operations after the load.
    pub ops: u64,
    /// Reads timed while idle (and at most this many during the major compaction).
    pub reads: u64,
    /// Paced reads per second of the reader thread.
    pub read_rate: u64,
    /// Which operations.
    pub mix: Mix,
    /// Seed of the key choices.
    pub seed: u64,
    /// Key plus value bytes of one entry.
    pub entry_bytes: u64,
}

/// What a compaction workload measured.
#[derive(Debug, Clone)]
pub struct Figures {
    /// The timed writes (load excluded).
    pub writes: Measured,
    /// Bytes written by the process (load, writes, flush and settling) per user byte written.
    pub write_amp: Option<f64>,
    /// Of those, the bytes written into tables (flushes and compactions, as the engine counts
    /// them) per user byte; the rest is mostly the commit log or WAL.
    pub table_write_amp: Option<f64>,
    /// Allocated directory bytes after settling per live user byte.
    pub space_amp: f64,
    /// Allocated directory bytes after settling.
    pub settled_bytes: u64,
    /// Bytes of the on-disk tables alone after settling per live user byte (no commit log or
    /// WAL, whose preallocated segments dominate small runs).
    pub table_space_amp: Option<f64>,
    /// On-disk tables after settling.
    pub tables: Option<u64>,
    /// Tables consulted per point read, as the engine counts it.
    pub tables_per_read: Option<f64>,
    /// Time the background compactions needed after the writes stopped.
    pub settle: Duration,
    /// Reads while writes ran.
    pub reads_under_writes: Histogram<u64>,
    /// Reads with nothing else running.
    pub reads_idle: Histogram<u64>,
    /// Reads while a major compaction ran.
    pub reads_during_major: Histogram<u64>,
    /// How long the major compaction took.
    pub major: Duration,
    /// Reads that found a value other than the last one written, or none for a live key.
    pub wrong_reads: u64,
}

impl Figures {
    /// The report fields after the common ops/latency columns.
    #[must_use]
    pub fn describe(&self) -> String {
        let p99 = |h: &Histogram<u64>| h.value_at_quantile(0.99) as f64 / 1000.0;
        let amp = self.write_amp.map_or_else(|| "n/a".to_string(), |a| format!("{a:.2}"));
        let table_w = self.table_write_amp.map_or_else(|| "n/a".to_string(), |a| format!("{a:.2}"));
        let table_amp = self.table_space_amp.map_or_else(|| "n/a".to_string(), |a| format!("{a:.2}"));
        let tpr = self.tables_per_read.map_or_else(|| "n/a".to_string(), |t| format!("{t:.2}"));
        let idle = p99(&self.reads_idle);
        let major = p99(&self.reads_during_major);
        format!(
            "  w-amp {amp} (tables {table_w})  s-amp {:.2} (tables only {table_amp}; {:.1} MiB, {} tables)  tables/read {tpr}  settle {:.1} s  \
             read p99 us: under writes {:.1}, idle {idle:.1}, during major {major:.1} ({:.2}x idle, \
             {} reads over {:.1} s)",
            self.space_amp,
            self.settled_bytes as f64 / (1u64 << 20) as f64,
            self.tables.map_or_else(|| "?".to_string(), |t| t.to_string()),
            self.settle.as_secs_f64(),
            p99(&self.reads_under_writes),
            major / idle.max(1e-9),
            self.reads_during_major.len(),
            self.major.as_secs_f64(),
        )
    }
}

/// Shared by the writer and the reader: the value index last written to each key (`u64::MAX`
/// for a deleted or never written key), so every read can be checked.
struct Versions(Vec<AtomicU64>);

const ABSENT: u64 = u64::MAX;

/// A paced reader thread: reads random keys at `rate` per second into whichever histogram
/// `phase` selects, until told to stop.
struct Reader<'scope> {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicU64>,
    handle: std::thread::ScopedJoinHandle<'scope, Result<([Histogram<u64>; 3], u64)>>,
}

/// Reader phases (indexes into its histograms); `PAUSED` records nothing.
const UNDER_WRITES: u64 = 0;
const IDLE: u64 = 1;
const DURING_MAJOR: u64 = 2;
const PAUSED: u64 = 3;

impl<'scope> Reader<'scope> {
    fn start<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        store: &'env dyn Store,
        versions: &'env Versions,
        keys: KeyFormat,
        values: &'env ValueSource,
        rate: u64,
        seed: u64,
    ) -> Result<Reader<'scope>> {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicU64::new(UNDER_WRITES));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&phase));
        let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
        let handle = std::thread::Builder::new()
            .name("bench-reader".into())
            .spawn_scoped(scope, move || -> Result<([Histogram<u64>; 3], u64)> {
                let new = || Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3);
                let mut hists = [new()?, new()?, new()?];
                let mut rng = StdRng::seed_from_u64(seed);
                let n = versions.0.len() as u64;
                let mut key = Vec::new();
                let mut out = Vec::new();
                let mut wrong = 0;
                let mut next = Instant::now();
                while !s.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now < next {
                        std::thread::sleep(next - now);
                    }
                    next += interval;
                    let phase = p.load(Ordering::Relaxed);
                    let Some(h) = usize::try_from(phase).ok().and_then(|i| hists.get_mut(i)) else {
                        next = Instant::now();
                        std::thread::sleep(interval);
                        continue;
                    };
                    let i = rng.random_range(0..n);
                    keys.write(i, &mut key);
                    // The version is read before and after: a write racing the read may
                    // legitimately return either.
                    let before = versions.0[i as usize].load(Ordering::Acquire);
                    let t = Instant::now();
                    let found = store.get(&key, &mut out)?;
                    h.saturating_record(t.elapsed().as_nanos().try_into().unwrap_or(u64::MAX));
                    let after = versions.0[i as usize].load(Ordering::Acquire);
                    let ok = |v: u64| {
                        if v == ABSENT {
                            !found
                        } else {
                            found && u32::try_from(v).is_ok_and(|v| out.as_slice() == values.value(i, v))
                        }
                    };
                    if !ok(before) && !ok(after) {
                        wrong += 1;
                    }
                }
                Ok((hists, wrong))
            })
            .context("starting the reader thread")?;
        Ok(Reader { stop, phase, handle })
    }

    fn set_phase(&self, phase: u64) {
        self.phase.store(phase, Ordering::Relaxed);
    }

    fn finish(self) -> Result<([Histogram<u64>; 3], u64)> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.join() {
            Ok(r) => r,
            Err(_) => bail!("the reader thread panicked"),
        }
    }
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs one compaction workload on a fresh `store` in `dir`.
pub fn run(
    store: &dyn Store,
    dir: &std::path::Path,
    keys: &KeyFormat,
    values: &ValueSource,
    plan: &Plan,
    label: &str,
) -> Result<Figures> {
    let entry = plan.entry_bytes;
    let versions = Versions((0..plan.num).map(|_| AtomicU64::new(ABSENT)).collect());
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let process_before = disk::process_write_bytes()?;
    let mut key = Vec::new();

    // Load every key once, in random order (a permutation), untimed.
    let progress = Progress::new(format!("{label} load"), plan.num);
    let mut order: Vec<u64> = (0..plan.num).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let mut sequence = 0u32;
    for &i in &order {
        keys.write(i, &mut key);
        store.put(&key, values.value(i, sequence))?;
        versions.0[i as usize].store(u64::from(sequence), Ordering::Release);
        sequence += 1;
        progress.tick();
    }
    drop(order);

    std::thread::scope(|scope| -> Result<Figures> {
        let reader =
            Reader::start(scope, store, &versions, *keys, values, plan.read_rate, plan.seed ^ 0x5EED)?;
        // An error below returns early: the reader must stop too, or the scope would wait for it.
        let _stop_reader = StopOnDrop(Arc::clone(&reader.stop));
        let progress = Progress::new(format!("{label} writes"), plan.ops);
        let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)?;
        let started = Instant::now();
        for _ in 0..plan.ops {
            let i = rng.random_range(0..plan.num);
            keys.write(i, &mut key);
            let delete = plan.mix == Mix::Deletes && rng.random_bool(0.5);
            let t = Instant::now();
            if delete {
                store.delete(&key)?;
                versions.0[i as usize].store(ABSENT, Ordering::Release);
            } else {
                store.put(&key, values.value(i, sequence))?;
                versions.0[i as usize].store(u64::from(sequence), Ordering::Release);
            }
            latency.saturating_record(t.elapsed().as_nanos().try_into().unwrap_or(u64::MAX));
            sequence += 1;
            progress.tick();
        }
        let writes = Measured { ops: plan.ops, elapsed: started.elapsed(), latency_ns: latency };

        // Settle: flush, then wait until the engine reports no compaction work for a while.
        reader.set_phase(PAUSED);
        store.flush()?;
        let settle_started = Instant::now();
        let mut quiet_since: Option<Instant> = None;
        loop {
            if store.compaction_busy()? {
                quiet_since = None;
            } else if quiet_since.get_or_insert_with(Instant::now).elapsed() >= SETTLE_QUIET {
                break;
            }
            if settle_started.elapsed() > SETTLE_TIMEOUT {
                bail!("{label}: compactions still running {} s after the writes", SETTLE_TIMEOUT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let settle = settle_started.elapsed().saturating_sub(SETTLE_QUIET);
        let process_after = disk::process_write_bytes()?;
        let settled_bytes = disk::dir_size_bytes(dir)?;
        let live = versions.0.iter().filter(|v| v.load(Ordering::Relaxed) != ABSENT).count() as u64;
        let tables = store.table_count()?;
        let table_bytes = store.table_bytes()?;
        let table_write_bytes = store.table_write_bytes()?;
        let tables_per_read = store.tables_per_read();

        // Idle reads: as many as asked for, at the reader's pace.
        reader.set_phase(IDLE);
        std::thread::sleep(Duration::from_secs_f64(plan.reads as f64 / plan.read_rate.max(1) as f64));
        reader.set_phase(DURING_MAJOR);
        let major_started = Instant::now();
        store.compact_all()?;
        let major = major_started.elapsed();
        let (hists, wrong_reads) = reader.finish()?;
        let [reads_under_writes, reads_idle, reads_during_major] = hists;
        let user_bytes = (plan.num + plan.ops) * entry;
        let write_amp = match (process_before, process_after) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / user_bytes.max(1) as f64),
            _ => None,
        };
        Ok(Figures {
            writes,
            write_amp,
            table_write_amp: table_write_bytes.map(|b| b as f64 / user_bytes.max(1) as f64),
            space_amp: settled_bytes as f64 / (live * entry).max(1) as f64,
            table_space_amp: table_bytes.map(|b| b as f64 / (live * entry).max(1) as f64),
            settled_bytes,
            tables,
            tables_per_read,
            settle,
            reads_under_writes,
            reads_idle,
            reads_during_major,
            major,
            wrong_reads,
        })
    })
}
