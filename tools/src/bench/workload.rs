//! The timed loops of each workload. Each operation is timed alone (key and value are prepared
//! before the clock starts) into an HDR histogram of nanoseconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::keys::{mix, KeyFormat, KeyState, ValueSource};
use super::store::Store;

/// Longest latency the histograms hold (longer ones are clamped): one hour in nanoseconds.
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// What a timed loop measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Operations done.
    pub ops: u64,
    /// Wall time of the loop.
    pub elapsed: Duration,
    /// Latency of each operation, nanoseconds.
    pub latency_ns: Histogram<u64>,
}

impl Measured {
    /// Operations per second.
    #[must_use]
    pub fn ops_per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What the reads found, checked against what was written.
#[derive(Debug, Clone, Default)]
pub struct ReadCheck {
    /// Reads that found a value.
    pub found: u64,
    /// Reads of written keys that found nothing (a bench failure).
    pub missing: u64,
    /// Reads that found a value other than the last one written (a bench failure).
    pub wrong: u64,
    /// The first failure, described for a bug report.
    pub first_failure: Option<String>,
}

/// What the seeks found.
#[derive(Debug, Clone, Default)]
pub struct SeekCheck {
    /// Seeks whose sought key was returned (it exists).
    pub found: u64,
    /// Seeks to a key that exists but was not returned (a bench failure).
    pub missing: u64,
    /// Entries read over all seeks.
    pub entries: u64,
    /// The first failure, described for a bug report.
    pub first_failure: Option<String>,
}

/// Everything a workload needs besides the store.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Key format.
    pub keys: KeyFormat,
    /// Value generator.
    pub values: ValueSource,
    /// Number of keys.
    pub num: u64,
}

/// Prints progress every 10% of a phase on stderr.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    step: u64,
    done: AtomicU64,
    start: Instant,
}

impl Progress {
    /// Progress of `total` operations named `label`.
    #[must_use]
    pub fn new(label: String, total: u64) -> Progress {
        Progress { label, total, step: (total / 10).max(1), done: AtomicU64::new(0), start: Instant::now() }
    }

    /// Counts one operation.
    pub fn tick(&self) {
        let d = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        // Print when d crosses a multiple of step.
        if (d - 1) / self.step != d / self.step {
            let secs = self.start.elapsed().as_secs_f64().max(1e-9);
            eprintln!(
                "  {:<28} {:>3}% ({d}/{}) {:.0} ops/s",
                self.label,
                d * 100 / self.total.max(1),
                self.total,
                d as f64 / secs
            );
        }
    }
}

fn histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).context("creating latency histogram")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Key order of a fill.
#[derive(Debug, Clone, Copy)]
pub enum FillOrder {
    /// Keys `0..n` in order.
    Sequential,
    /// `n` keys drawn uniformly from `0..num` with this seed.
    Random(u64),
}

/// Writes `n` keys in `order`, one thread.
pub fn fill(
    store: &dyn Store,
    state: &mut KeyState,
    w: &Workload,
    order: FillOrder,
    n: u64,
    progress: &Progress,
) -> Result<Measured> {
    let mut hist = histogram()?;
    let mut rng = match order {
        FillOrder::Random(seed) => Some(StdRng::seed_from_u64(seed)),
        FillOrder::Sequential => None,
    };
    let mut key = Vec::new();
    let start = Instant::now();
    for i in 0..n {
        let index = match &mut rng {
            Some(r) => r.random_range(0..w.num),
            None => i,
        };
        w.keys.write(index, &mut key);
        let version = state.record_write(index)?;
        let value = w.values.value(index, version);
        let t = Instant::now();
        store.put(&key, value).with_context(|| format!("write {i} of key {index}"))?;
        hist.saturating_record(nanos(t.elapsed()));
        progress.tick();
    }
    Ok(Measured { ops: n, elapsed: start.elapsed(), latency_ns: hist })
}

/// `n` point reads of keys that exist, each checked against the last value written.
pub fn read_random(
    store: &dyn Store,
    state: &KeyState,
    w: &Workload,
    seed: u64,
    n: u64,
    progress: &Progress,
) -> Result<(Measured, ReadCheck)> {
    let existing = state.existing();
    if existing.is_empty() {
        return Err(anyhow!("readrandom needs a database with data"));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut hist = histogram()?;
    let mut check = ReadCheck::default();
    let (mut key, mut out) = (Vec::new(), Vec::new());
    let start = Instant::now();
    for _ in 0..n {
        let index = existing[rng.random_range(0..existing.len())];
        w.keys.write(index, &mut key);
        let t = Instant::now();
        let found = store.get(&key, &mut out).with_context(|| format!("read of key {index}"))?;
        hist.saturating_record(nanos(t.elapsed()));
        progress.tick();
        let version = state.version(index).context("key index taken from the existing keys")?;
        if !found {
            check.missing += 1;
            check.first_failure.get_or_insert_with(|| {
                format!("key {index} ({}) written with version {version} was not found", show(&key))
            });
        } else if out != w.values.value(index, version) {
            check.found += 1;
            check.wrong += 1;
            check.first_failure.get_or_insert_with(|| {
                format!("key {index} ({}) returned a value other than version {version}", show(&key))
            });
        } else {
            check.found += 1;
        }
    }
    Ok((Measured { ops: n, elapsed: start.elapsed(), latency_ns: hist }, check))
}

/// `n` point reads of keys `num..2*num`, never written; finding one is a failure.
pub fn read_missing(
    store: &dyn Store,
    w: &Workload,
    seed: u64,
    n: u64,
    progress: &Progress,
) -> Result<(Measured, ReadCheck)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut hist = histogram()?;
    let mut check = ReadCheck::default();
    let (mut key, mut out) = (Vec::new(), Vec::new());
    let start = Instant::now();
    for _ in 0..n {
        let index = w.num + rng.random_range(0..w.num);
        w.keys.write(index, &mut key);
        let t = Instant::now();
        let found = store.get(&key, &mut out).with_context(|| format!("read of missing key {index}"))?;
        hist.saturating_record(nanos(t.elapsed()));
        progress.tick();
        if found {
            check.found += 1;
            check.wrong += 1;
            check.first_failure.get_or_insert_with(|| {
                format!("key {index} ({}) was never written but a read found a value", show(&key))
            });
        }
    }
    Ok((Measured { ops: n, elapsed: start.elapsed(), latency_ns: hist }, check))
}

/// `n` seeks to keys drawn uniformly from `0..num`, each reading `nexts` entries.
pub fn seek_random(
    store: &dyn Store,
    state: &KeyState,
    w: &Workload,
    seed: u64,
    n: u64,
    nexts: usize,
    progress: &Progress,
) -> Result<(Measured, SeekCheck)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut hist = histogram()?;
    let mut check = SeekCheck::default();
    let mut key = Vec::new();
    let mut bytes = 0usize;
    let start = Instant::now();
    for _ in 0..n {
        let index = rng.random_range(0..w.num);
        w.keys.write(index, &mut key);
        let t = Instant::now();
        let outcome = store.seek(&key, nexts).with_context(|| format!("seek to key {index}"))?;
        hist.saturating_record(nanos(t.elapsed()));
        progress.tick();
        bytes = bytes.wrapping_add(outcome.bytes);
        check.entries += outcome.entries as u64;
        if outcome.found_key {
            check.found += 1;
        } else if state.version(index).is_some() {
            check.missing += 1;
            check.first_failure.get_or_insert_with(|| {
                format!("seek to existing key {index} ({}) did not return it", show(&key))
            });
        }
    }
    std::hint::black_box(bytes);
    Ok((Measured { ops: n, elapsed: start.elapsed(), latency_ns: hist }, check))
}

/// `total` random writes from `writers` threads sharing the store; every write is durable
/// when `put` returns (the store was opened with a sync durability). Returns the measurement
/// and the number of distinct keys written.
pub fn fill_sync(
    store: &dyn Store,
    w: &Workload,
    seed: u64,
    writers: usize,
    total: u64,
    progress: &Progress,
) -> Result<(Measured, u64)> {
    let writers_u64 = writers as u64;
    let start = Instant::now();
    let per_thread: Vec<Result<(Histogram<u64>, Vec<u64>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers_u64)
            .map(|t| {
                let count = total / writers_u64 + u64::from(t < total % writers_u64);
                s.spawn(move || -> Result<(Histogram<u64>, Vec<u64>)> {
                    let mut rng = StdRng::seed_from_u64(mix(seed ^ t));
                    let mut hist = histogram()?;
                    let mut written = Vec::new();
                    let mut key = Vec::new();
                    for i in 0..count {
                        let index = rng.random_range(0..w.num);
                        w.keys.write(index, &mut key);
                        // Versions are unique per (thread, write); fillsync values are not read back.
                        let version = u32::try_from(t * total + i).unwrap_or(u32::MAX);
                        let value = w.values.value(index, version);
                        let started = Instant::now();
                        store.put(&key, value).with_context(|| format!("sync write of key {index}"))?;
                        hist.saturating_record(nanos(started.elapsed()));
                        progress.tick();
                        written.push(index);
                    }
                    Ok((hist, written))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a fillsync writer thread panicked"))))
            .collect()
    });
    let elapsed = start.elapsed();
    let mut hist = histogram()?;
    let mut keys = Vec::new();
    for r in per_thread {
        let (h, written) = r?;
        hist.add(&h).context("merging latency histograms")?;
        keys.extend(written);
    }
    keys.sort_unstable();
    keys.dedup();
    Ok((Measured { ops: total, elapsed, latency_ns: hist }, keys.len() as u64))
}

fn show(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}
