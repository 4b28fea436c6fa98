//! Histograms for per-table statistics, with the bucket layout of Cassandra's
//! `EstimatedHistogram` (each bucket about 1.2 times wider than the one before), so percentiles
//! read like `nodetool tablehistograms`.
//!
//! [`Histogram`] is updated concurrently with relaxed atomics; [`HistogramSnapshot`] is the plain
//! value tools read percentiles from.

use std::sync::atomic::{AtomicU64, Ordering};

/// Number of buckets; the last bucket's offset is about 1.3e11, larger values go to the overflow
/// bucket.
pub const BUCKETS: usize = 140;

/// Upper bound (inclusive) of each bucket: 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 17, 20, 24, ...
pub const OFFSETS: [u64; BUCKETS] = offsets();

const fn offsets() -> [u64; BUCKETS] {
    let mut out = [0u64; BUCKETS];
    let mut last = 1u64;
    out[0] = 1;
    let mut i = 1;
    while i < BUCKETS {
        let mut next = (last * 12 + 5) / 10;
        if next == last {
            next = last + 1;
        }
        out[i] = next;
        last = next;
        i += 1;
    }
    out
}

fn bucket_of(value: u64) -> usize {
    OFFSETS.partition_point(|o| *o < value)
}

/// A concurrently updated histogram (buckets plus one overflow bucket).
#[derive(Debug)]
pub struct Histogram {
    counts: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl Histogram {
    /// Records one value.
    pub fn record(&self, value: u64) {
        self.counts[bucket_of(value)].fetch_add(1, Ordering::Relaxed);
    }

    /// The current counts.
    #[must_use]
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot { counts: self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect() }
    }
}

/// Counts per bucket at one moment (the last entry is the overflow bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    counts: Vec<u64>,
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        HistogramSnapshot { counts: vec![0; BUCKETS + 1] }
    }
}

impl HistogramSnapshot {
    /// Adds one value.
    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
    }

    /// The non-empty buckets as `(bucket index, count)`.
    pub fn nonzero(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| (i, *c))
    }

    /// Adds `count` values to bucket `bucket` (`BUCKETS` is the overflow bucket).
    pub fn add_to_bucket(&mut self, bucket: usize, count: u64) {
        if let Some(c) = self.counts.get_mut(bucket) {
            *c = c.saturating_add(count);
        }
    }

    /// Adds another snapshot's counts.
    pub fn add(&mut self, other: &HistogramSnapshot) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Number of values recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Whether values beyond the last bucket were recorded (their size is then unknown).
    #[must_use]
    pub fn overflowed(&self) -> bool {
        self.counts[BUCKETS] > 0
    }

    /// The bucket bound at or below which `p` (0..=1) of the values lie; 0 when empty. Values
    /// past the last bucket report `u64::MAX`.
    #[must_use]
    pub fn percentile(&self, p: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let target = ((p.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return OFFSETS.get(i).copied().unwrap_or(u64::MAX);
            }
        }
        u64::MAX
    }

    /// Upper bound of the smallest non-empty bucket (0 when empty).
    #[must_use]
    pub fn min(&self) -> u64 {
        self.counts.iter().position(|c| *c > 0).map_or(0, |i| OFFSETS.get(i).copied().unwrap_or(u64::MAX))
    }

    /// Upper bound of the largest non-empty bucket (0 when empty).
    #[must_use]
    pub fn max(&self) -> u64 {
        self.counts.iter().rposition(|c| *c > 0).map_or(0, |i| OFFSETS.get(i).copied().unwrap_or(u64::MAX))
    }

    /// The bucket bounds weighted by their counts, summed, and the count.
    fn weighted_sum(&self) -> (u128, u64) {
        let sum = self
            .counts
            .iter()
            .zip(OFFSETS.iter().chain(std::iter::once(&OFFSETS[BUCKETS - 1])))
            .map(|(c, o)| u128::from(*c) * u128::from(*o))
            .sum();
        (sum, self.count())
    }

    /// [`HistogramSnapshot::mean`] without rounding (small values such as SSTables per read
    /// have exact buckets, so this is their true mean).
    #[must_use]
    pub fn mean_f64(&self) -> f64 {
        match self.weighted_sum() {
            (_, 0) => 0.0,
            (sum, total) => sum as f64 / total as f64,
        }
    }

    /// Mean of the bucket bounds weighted by their counts (Cassandra's estimate; 0 when empty).
    #[must_use]
    pub fn mean(&self) -> u64 {
        match self.weighted_sum() {
            (_, 0) => 0,
            (sum, total) => u64::try_from(sum / u128::from(total)).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn offsets_match_cassandras_estimated_histogram() {
        assert_eq!(&OFFSETS[..16], &[1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 17, 20, 24, 29, 35]);
        assert!(OFFSETS.windows(2).all(|w| w[0] < w[1]));
        assert!(OFFSETS[BUCKETS - 1] > 100_000_000_000);
    }

    #[test]
    fn percentiles_report_bucket_bounds() {
        let h = Histogram::default();
        for v in 1..=100u64 {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 100);
        assert_eq!(s.min(), 1);
        assert_eq!(s.max(), 103);
        assert_eq!(s.percentile(0.5), 50);
        // 99 lies in the bucket (86, 103].
        assert_eq!(s.percentile(0.99), 103);
        assert!((45..=60).contains(&s.mean()));
        assert_eq!(HistogramSnapshot::default().percentile(0.5), 0);
    }

    #[test]
    fn huge_values_go_to_the_overflow_bucket() {
        let mut s = HistogramSnapshot::default();
        s.record(u64::MAX);
        assert!(s.overflowed());
        assert_eq!(s.percentile(1.0), u64::MAX);
    }
}
