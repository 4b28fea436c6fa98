//! Per-table read behaviour: the `read_repair` and `speculative_retry` table options, parsed
//! into plain values, and the per-table latency window that percentile-based speculative retry
//! reads its threshold from.
//!
//! The parsing and the threshold arithmetic are pure; the coordinator records latencies and asks
//! for the current threshold.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sibyl_engine::metrics::HistogramSnapshot;
use sibyl_engine::TableId;

/// The `read_repair` table option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadRepair {
    /// `'BLOCKING'` (the default): replicas found stale by a read are written the merged data
    /// before the read answers, so a QUORUM read followed by another QUORUM read never goes back
    /// in time.
    #[default]
    Blocking,
    /// `'NONE'`: disagreeing replicas are merged for the answer but not repaired (reads are
    /// then not monotonic; hints and repair still converge the replicas).
    None,
}

impl ReadRepair {
    /// Parses the option's value (case-insensitive).
    ///
    /// # Errors
    /// A message naming the valid values.
    pub fn parse(text: &str) -> Result<ReadRepair, String> {
        match text.trim().to_ascii_uppercase().as_str() {
            "BLOCKING" => Ok(ReadRepair::Blocking),
            "NONE" => Ok(ReadRepair::None),
            other => Err(format!("Invalid value for read_repair: {other}; expected BLOCKING or NONE")),
        }
    }
}

/// The `speculative_retry` table option: when a read asks one more replica than its level needs
/// because those asked have not all answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpeculativeRetry {
    /// `'NONE'`: never.
    Never,
    /// `'ALWAYS'`: at once (every read asks one replica more).
    Always,
    /// `'50ms'`: after a fixed delay.
    Fixed(Duration),
    /// `'99p'` / `'99PERCENTILE'`: after this percentile (0..100) of the table's recent read
    /// latencies as this coordinator measured them.
    Percentile(f64),
    /// `'MIN(99p,50ms)'` / `'MAX(99p,50ms)'`: the smaller or larger of a percentile and a delay.
    Hybrid {
        /// The percentile part.
        percentile: f64,
        /// The fixed part.
        fixed: Duration,
        /// `MAX(...)` when true, `MIN(...)` when false.
        take_max: bool,
    },
}

impl Default for SpeculativeRetry {
    fn default() -> Self {
        SpeculativeRetry::Percentile(99.0)
    }
}

impl SpeculativeRetry {
    /// Parses the option's value as Cassandra 4 accepts it: `NONE`, `ALWAYS`, `<n>ms`, `<n>p`,
    /// `<n>PERCENTILE`, `MIN(a,b)` and `MAX(a,b)` with one percentile and one delay
    /// (case-insensitive).
    ///
    /// # Errors
    /// A message saying what was wrong with the value.
    pub fn parse(text: &str) -> Result<SpeculativeRetry, String> {
        let upper = text.trim().to_ascii_uppercase();
        let invalid = || format!("Invalid value {text:?} for speculative_retry");
        match upper.as_str() {
            "NONE" => return Ok(SpeculativeRetry::Never),
            "ALWAYS" => return Ok(SpeculativeRetry::Always),
            _ => {}
        }
        for (prefix, take_max) in [("MIN(", false), ("MAX(", true)] {
            if let Some(inner) = upper.strip_prefix(prefix).and_then(|s| s.strip_suffix(')')) {
                let (a, b) = inner.split_once(',').ok_or_else(invalid)?;
                let (a, b) = (Self::simple(a.trim()), Self::simple(b.trim()));
                return match (a, b) {
                    (Some(SpeculativeRetry::Percentile(p)), Some(SpeculativeRetry::Fixed(d)))
                    | (Some(SpeculativeRetry::Fixed(d)), Some(SpeculativeRetry::Percentile(p))) => {
                        Ok(SpeculativeRetry::Hybrid { percentile: p, fixed: d, take_max })
                    }
                    _ => Err(format!(
                        "Invalid value {text:?} for speculative_retry: {prefix}...) takes one percentile and one delay, e.g. {prefix}99p,50ms)"
                    )),
                };
            }
        }
        Self::simple(&upper).ok_or_else(invalid)
    }

    fn simple(upper: &str) -> Option<SpeculativeRetry> {
        if let Some(ms) = upper.strip_suffix("MS") {
            let ms: f64 = ms.trim().parse().ok()?;
            return (0.0..=1e9)
                .contains(&ms)
                .then(|| SpeculativeRetry::Fixed(Duration::from_micros((ms * 1000.0) as u64)));
        }
        let number = upper.strip_suffix("PERCENTILE").or_else(|| upper.strip_suffix('P'))?;
        let p: f64 = number.trim().parse().ok()?;
        (p > 0.0 && p < 100.0).then_some(SpeculativeRetry::Percentile(p))
    }

    /// The delay after which an extra replica is asked, given the table's measured latency at
    /// the percentile this policy names (`percentile_latency`, ignored by the fixed kinds).
    /// `None` means never.
    #[must_use]
    pub fn delay(self, percentile_latency: Duration) -> Option<Duration> {
        match self {
            SpeculativeRetry::Never => None,
            SpeculativeRetry::Always => Some(Duration::ZERO),
            SpeculativeRetry::Fixed(d) => Some(d),
            SpeculativeRetry::Percentile(_) => Some(percentile_latency),
            SpeculativeRetry::Hybrid { fixed, take_max, .. } => {
                Some(if take_max { fixed.max(percentile_latency) } else { fixed.min(percentile_latency) })
            }
        }
    }

    /// The percentile (0..100) whose latency [`SpeculativeRetry::delay`] needs, if any.
    #[must_use]
    pub fn percentile(self) -> Option<f64> {
        match self {
            SpeculativeRetry::Percentile(p) | SpeculativeRetry::Hybrid { percentile: p, .. } => Some(p),
            _ => None,
        }
    }
}

/// How the coordinator reads one table.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReadPolicy {
    /// `read_repair`.
    pub read_repair: ReadRepair,
    /// `speculative_retry`.
    pub speculative_retry: SpeculativeRetry,
}

impl ReadPolicy {
    /// Parses the two table options.
    ///
    /// # Errors
    /// The first invalid value's message.
    pub fn parse(read_repair: &str, speculative_retry: &str) -> Result<ReadPolicy, String> {
        Ok(ReadPolicy {
            read_repair: ReadRepair::parse(read_repair)?,
            speculative_retry: SpeculativeRetry::parse(speculative_retry)?,
        })
    }
}

/// A window of a table's read latencies: once [`LATENCY_WINDOW`] has passed, the window just
/// ended becomes the one percentiles are read from (as Cassandra recomputes a table's speculative
/// threshold from a recent, decaying histogram).
#[derive(Debug, Clone)]
struct LatencyWindow {
    current: HistogramSnapshot,
    started: Instant,
    /// The last window that had enough reads.
    previous: HistogramSnapshot,
}

/// How long one latency window lasts.
pub const LATENCY_WINDOW: Duration = Duration::from_secs(10);

/// Reads a window needs before its percentiles are trusted; until then the threshold stays at
/// its starting value.
pub const MIN_SAMPLES: u64 = 20;

/// Recent read latencies per table, in microseconds.
#[derive(Debug, Default)]
pub struct ReadLatencies {
    tables: Mutex<HashMap<TableId, LatencyWindow>>,
}

impl ReadLatencies {
    /// Records how long a successful read of `table` took.
    pub fn record(&self, table: TableId, took: Duration, now: Instant) {
        let mut tables = self.tables.lock();
        let w = tables.entry(table).or_insert_with(|| LatencyWindow {
            current: HistogramSnapshot::default(),
            started: now,
            previous: HistogramSnapshot::default(),
        });
        if now.saturating_duration_since(w.started) >= LATENCY_WINDOW {
            if w.current.count() >= MIN_SAMPLES {
                w.previous = std::mem::take(&mut w.current);
            } else {
                w.current = HistogramSnapshot::default();
            }
            w.started = now;
        }
        w.current.record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    /// The latency at `percentile` (0..100) of the table's last full window, or `fallback` when
    /// no window has enough reads yet.
    #[must_use]
    pub fn percentile(&self, table: TableId, percentile: f64, fallback: Duration) -> Duration {
        let tables = self.tables.lock();
        let Some(w) = tables.get(&table) else { return fallback };
        let source = if w.previous.count() >= MIN_SAMPLES {
            &w.previous
        } else if w.current.count() >= MIN_SAMPLES {
            &w.current
        } else {
            return fallback;
        };
        match source.percentile(percentile / 100.0) {
            u64::MAX => fallback,
            micros => Duration::from_micros(micros),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_cassandra_accepts() {
        let ms = |n| Duration::from_millis(n);
        assert_eq!(SpeculativeRetry::parse("NONE"), Ok(SpeculativeRetry::Never));
        assert_eq!(SpeculativeRetry::parse("always"), Ok(SpeculativeRetry::Always));
        assert_eq!(SpeculativeRetry::parse("50ms"), Ok(SpeculativeRetry::Fixed(ms(50))));
        assert_eq!(
            SpeculativeRetry::parse("2.5ms"),
            Ok(SpeculativeRetry::Fixed(Duration::from_micros(2500)))
        );
        assert_eq!(SpeculativeRetry::parse("99p"), Ok(SpeculativeRetry::Percentile(99.0)));
        assert_eq!(SpeculativeRetry::parse("95PERCENTILE"), Ok(SpeculativeRetry::Percentile(95.0)));
        assert_eq!(SpeculativeRetry::parse("99.9percentile"), Ok(SpeculativeRetry::Percentile(99.9)));
        assert_eq!(
            SpeculativeRetry::parse("MIN(99p,50ms)"),
            Ok(SpeculativeRetry::Hybrid { percentile: 99.0, fixed: ms(50), take_max: false })
        );
        assert_eq!(
            SpeculativeRetry::parse("max(10ms, 90p)"),
            Ok(SpeculativeRetry::Hybrid { percentile: 90.0, fixed: ms(10), take_max: true })
        );
        for bad in ["", "fast", "100p", "0p", "-1ms", "MIN(10ms,20ms)", "MAX(99p)", "ms", "99"] {
            assert!(SpeculativeRetry::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(ReadRepair::parse("none"), Ok(ReadRepair::None));
        assert_eq!(ReadRepair::parse("BLOCKING"), Ok(ReadRepair::Blocking));
        assert!(ReadRepair::parse("ASYNC").is_err());
    }

    #[test]
    fn delay_follows_the_kind() {
        let p99 = Duration::from_millis(30);
        assert_eq!(SpeculativeRetry::Never.delay(p99), None);
        assert_eq!(SpeculativeRetry::Always.delay(p99), Some(Duration::ZERO));
        assert_eq!(
            SpeculativeRetry::Fixed(Duration::from_millis(5)).delay(p99),
            Some(Duration::from_millis(5))
        );
        assert_eq!(SpeculativeRetry::Percentile(99.0).delay(p99), Some(p99));
        let min = SpeculativeRetry::parse("MIN(99p,10ms)").unwrap_or_default();
        let max = SpeculativeRetry::parse("MAX(99p,10ms)").unwrap_or_default();
        assert_eq!(min.delay(p99), Some(Duration::from_millis(10)));
        assert_eq!(max.delay(p99), Some(p99));
    }

    #[test]
    fn percentiles_come_from_a_full_window_and_fall_back_until_then() {
        let lat = ReadLatencies::default();
        let t = TableId(uuid::Uuid::from_u128(1));
        let start = Instant::now();
        let fallback = Duration::from_secs(1);
        assert_eq!(lat.percentile(t, 99.0, fallback), fallback);
        for i in 0..(MIN_SAMPLES - 1) {
            lat.record(t, Duration::from_millis(2), start + Duration::from_millis(i));
        }
        assert_eq!(lat.percentile(t, 99.0, fallback), fallback, "too few reads yet");
        lat.record(t, Duration::from_millis(2), start);
        let p = lat.percentile(t, 99.0, fallback);
        assert!(p >= Duration::from_millis(2) && p < Duration::from_millis(3), "{p:?}");
        // The next window's slow reads replace the old figure once it is full.
        let later = start + LATENCY_WINDOW;
        for _ in 0..MIN_SAMPLES {
            lat.record(t, Duration::from_millis(40), later);
        }
        let p = lat.percentile(t, 99.0, fallback);
        assert!(
            p >= Duration::from_millis(2) && p < Duration::from_millis(3),
            "old window still read: {p:?}"
        );
        lat.record(t, Duration::from_millis(40), later + LATENCY_WINDOW);
        let p = lat.percentile(t, 99.0, fallback);
        assert!(p >= Duration::from_millis(40) && p < Duration::from_millis(50), "{p:?}");
    }
}
