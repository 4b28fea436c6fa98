//! Results: one line per engine and workload as it finishes, then a summary and the ops/s ratios
//! of each engine to every baseline (every engine but Sibyl, RocksDB first).

use std::fmt::Write as _;

use super::config::{Benchmark, EngineKind};
use super::workload::{Measured, ReadCheck, SeekCheck};

/// Bytes measured around a write workload (taken before it and after its untimed flush).
#[derive(Debug, Clone, Default)]
pub struct WriteCost {
    /// Key and value bytes the workload wrote.
    pub user_bytes: u64,
    /// Bytes the process wrote to storage (`/proc/self/io`), if known.
    pub process_bytes: Option<u64>,
    /// Growth of the database directory (allocated bytes; negative if compaction shrank it).
    pub dir_growth_bytes: i64,
    /// Allocated size of the database directory afterwards.
    pub final_dir_bytes: u64,
    /// Key and value bytes of the distinct live keys afterwards.
    pub live_user_bytes: u64,
    /// Bytes the engine counts as written (RocksDB statistics: WAL + flush + compaction).
    pub engine_bytes: Option<u64>,
}

impl WriteCost {
    fn ratio(bytes: f64, user: u64) -> f64 {
        bytes / (user.max(1) as f64)
    }

    /// Process bytes written per user byte.
    #[must_use]
    pub fn write_amp(&self) -> Option<f64> {
        self.process_bytes.map(|b| Self::ratio(b as f64, self.user_bytes))
    }

    /// Directory growth per user byte.
    #[must_use]
    pub fn dir_write_amp(&self) -> f64 {
        Self::ratio(self.dir_growth_bytes as f64, self.user_bytes)
    }

    /// Final directory size per live user byte.
    #[must_use]
    pub fn space_amp(&self) -> f64 {
        Self::ratio(self.final_dir_bytes as f64, self.live_user_bytes)
    }
}

/// The result of one workload on one engine.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    /// Engine.
    pub engine: EngineKind,
    /// Workload.
    pub benchmark: Benchmark,
    /// Variant suffix ("" or e.g. "[batch]").
    pub variant: &'static str,
    /// Timing.
    pub measured: Measured,
    /// Write and space amplification (write workloads).
    pub write: Option<WriteCost>,
    /// Read results (readrandom, readmissing).
    pub read: Option<ReadCheck>,
    /// Seek results (seekrandom).
    pub seek: Option<SeekCheck>,
    /// On-disk tables after the workload, if the engine tells.
    pub tables: Option<u64>,
    /// Compaction workload figures (sustained, deletes).
    pub sustained: Option<super::sustained::Figures>,
    /// Notes (e.g. data loaded untimed).
    pub note: Option<String>,
}

impl PhaseResult {
    /// The workload's name with its variant.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{}{}", self.benchmark.name(), self.variant)
    }

    /// The report line.
    #[must_use]
    pub fn line(&self) -> String {
        let m = &self.measured;
        let us = |q: f64| m.latency_ns.value_at_quantile(q) as f64 / 1000.0;
        let mut s = format!(
            "{:<8} {:<17} {:>9} ops {:>9.3} s {:>10.0} ops/s  p50 {:>9.1} us  p99 {:>9.1} us",
            self.engine.name(),
            self.label(),
            m.ops,
            m.elapsed.as_secs_f64(),
            m.ops_per_second(),
            us(0.5),
            us(0.99),
        );
        if let Some(w) = &self.write {
            match w.write_amp() {
                Some(a) => {
                    let _ = write!(s, "  w-amp {a:.2}");
                }
                None => s.push_str("  w-amp n/a"),
            }
            let _ = write!(s, " (dir {:.2}", w.dir_write_amp());
            if let Some(e) = w.engine_bytes {
                let _ = write!(s, ", engine {:.2}", e as f64 / w.user_bytes.max(1) as f64);
            }
            let _ = write!(s, ")  s-amp {:.2} ({:.1} MiB)", w.space_amp(), w.final_dir_bytes as f64 / MIB);
        }
        if let Some(r) = &self.read {
            let _ = write!(s, "  found {}/{}", r.found, m.ops);
            if r.missing + r.wrong > 0 {
                let _ = write!(s, "  FAILED: {} missing, {} wrong", r.missing, r.wrong);
            }
        }
        if let Some(k) = &self.seek {
            let _ = write!(
                s,
                "  found {}/{}  entries/seek {:.1}",
                k.found,
                m.ops,
                k.entries as f64 / m.ops.max(1) as f64
            );
            if k.missing > 0 {
                let _ = write!(s, "  FAILED: {} existing keys not returned", k.missing);
            }
        }
        if let Some(f) = &self.sustained {
            s.push_str(&f.describe());
            if f.wrong_reads > 0 {
                let _ = write!(s, "  FAILED: {} reads returned a stale or missing value", f.wrong_reads);
            }
        } else if let Some(t) = self.tables {
            let _ = write!(s, "  tables {t}");
        }
        if let Some(n) = &self.note {
            let _ = write!(s, "  [{n}]");
        }
        s
    }

    /// A description of the failure, if the workload's checks failed.
    #[must_use]
    pub fn failure(&self) -> Option<String> {
        if let Some(f) = self.sustained.as_ref().filter(|f| f.wrong_reads > 0) {
            return Some(format!("{} {}: {} wrong reads", self.engine.name(), self.label(), f.wrong_reads));
        }
        let first = self
            .read
            .as_ref()
            .and_then(|r| r.first_failure.clone())
            .or_else(|| self.seek.as_ref().and_then(|k| k.first_failure.clone()))?;
        Some(format!("{} {}: {first}", self.engine.name(), self.label()))
    }
}

const MIB: f64 = (1u64 << 20) as f64;

/// The summary: every result grouped by workload, then the ratio table.
#[must_use]
pub fn summary(results: &[PhaseResult], engines: &[EngineKind]) -> String {
    let mut out = String::from("\n== summary (grouped by workload) ==\n");
    let mut labels: Vec<(Benchmark, String)> = Vec::new();
    for r in results {
        let l = (r.benchmark, r.label());
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    labels.sort();
    for (_, label) in &labels {
        for r in results.iter().filter(|r| &r.label() == label) {
            out.push_str(&r.line());
            out.push('\n');
        }
    }
    let bases = baselines(engines);
    if bases.is_empty() {
        out.push_str("\n(no ratio table: run a second engine, e.g. --engines sibyl,rocksdb)\n");
    }
    for base in bases {
        out.push_str(&ratio_table(results, engines, &labels, base));
    }
    out
}

/// The engines to compare against: every engine but Sibyl, RocksDB first.
fn baselines(engines: &[EngineKind]) -> Vec<EngineKind> {
    let mut out: Vec<EngineKind> = engines.iter().copied().filter(|e| *e != EngineKind::Sibyl).collect();
    out.sort_by_key(|e| *e != EngineKind::Rocksdb);
    out.dedup();
    out
}

fn ratio_table(
    results: &[PhaseResult],
    engines: &[EngineKind],
    labels: &[(Benchmark, String)],
    base: EngineKind,
) -> String {
    let others: Vec<EngineKind> = engines.iter().copied().filter(|e| *e != base).collect();
    let mut out = format!(
        "\n== ops/s ratio vs {} (>1 means faster than {}) ==\n{:<17}",
        base.name(),
        base.name(),
        "workload"
    );
    for e in &others {
        let _ = write!(out, " {:>16}", format!("{}/{}", e.name(), base.name()));
    }
    out.push('\n');
    for (bench, label) in labels {
        let _ = write!(out, "{label:<17}");
        // A variant (e.g. Sibyl's fillsync[batch]) is compared with the baseline's main run.
        let base_ops = results
            .iter()
            .find(|r| r.engine == base && r.benchmark == *bench && r.variant.is_empty())
            .map(|r| r.measured.ops_per_second());
        for e in &others {
            let ops = results
                .iter()
                .find(|r| r.engine == *e && &r.label() == label)
                .map(|r| r.measured.ops_per_second());
            match (ops, base_ops) {
                (Some(o), Some(b)) if b > 0.0 => {
                    let _ = write!(out, " {:>16.2}", o / b);
                }
                _ => {
                    let _ = write!(out, " {:>16}", "-");
                }
            }
        }
        out.push('\n');
    }
    out
}
