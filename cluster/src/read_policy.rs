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

/// A window of a table's read latencies: once it is [`LATENCY_WINDOW`] old and holds at least
/// [`MIN_SAMPLES`] reads, it becomes the one percentiles are read from and a new one starts (as
/// Cassandra recomputes a table's speculative threshold from a recent, decaying histogram). A
/// quiet table's window keeps filling until it has enough reads.
#[derive(Debug, Clone)]
struct LatencyWindow {
    current: HistogramSnapshot,
    started: Instant,
    /// The last full window and when it closed.
    previous: Option<(HistogramSnapshot, Instant)>,
}

/// How long one latency window lasts (at least).
pub const LATENCY_WINDOW: Duration = Duration::from_secs(10);

/// Reads a window needs before its percentiles are trusted; until then the threshold stays at
/// its starting value.
pub const MIN_SAMPLES: u64 = 20;

/// A full window older than this is no longer used (the table went quiet; its old latencies may
/// not hold any more).
pub const WINDOW_EXPIRY: Duration = Duration::from_secs(300);

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
            previous: None,
        });
        w.current.record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        if now.saturating_duration_since(w.started) >= LATENCY_WINDOW && w.current.count() >= MIN_SAMPLES {
            w.previous = Some((std::mem::take(&mut w.current), now));
            w.started = now;
        }
    }

    /// The latency at `percentile` (0..100) of the table's last full window (if it closed less
    /// than [`WINDOW_EXPIRY`] ago), else of the current one if it has enough reads, else
    /// `fallback`.
    #[must_use]
    pub fn percentile(&self, table: TableId, percentile: f64, fallback: Duration, now: Instant) -> Duration {
        let tables = self.tables.lock();
        let Some(w) = tables.get(&table) else { return fallback };
        let recent = w.previous.as_ref().filter(|(_, at)| now.saturating_duration_since(*at) < WINDOW_EXPIRY);
        let source = match recent {
            Some((h, _)) => h,
            None if w.current.count() >= MIN_SAMPLES => &w.current,
            None => return fallback,
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
        let ms = Duration::from_millis;
        assert_eq!(lat.percentile(t, 99.0, fallback, start), fallback);
        for i in 0..(MIN_SAMPLES - 1) {
            lat.record(t, ms(2), start + ms(i));
        }
        assert_eq!(lat.percentile(t, 99.0, fallback, start), fallback, "too few reads yet");
        // A quiet table: the window keeps filling past LATENCY_WINDOW until it has enough reads.
        let later = start + LATENCY_WINDOW * 3;
        lat.record(t, ms(2), later);
        let p = lat.percentile(t, 99.0, fallback, later);
        assert!(p >= ms(2) && p < ms(3), "{p:?}");
        // The next window's slow reads replace the figure once that window is full.
        for _ in 0..MIN_SAMPLES {
            lat.record(t, ms(40), later + ms(1));
        }
        let p = lat.percentile(t, 99.0, fallback, later + ms(1));
        assert!(p >= ms(2) && p < ms(3), "the full window is still the one read: {p:?}");
        let next = later + LATENCY_WINDOW;
        lat.record(t, ms(40), next);
        let p = lat.percentile(t, 99.0, fallback, next);
        assert!(p >= ms(40) && p < ms(50), "{p:?}");
        // Long silence: the old window expires and the (nearly empty) current one is not enough.
        assert_eq!(lat.percentile(t, 99.0, fallback, next + WINDOW_EXPIRY), fallback);
    }
}
