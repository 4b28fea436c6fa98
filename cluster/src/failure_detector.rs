//! The phi-accrual failure detector: how suspicious a silent endpoint is, and when to convict it.
//!
//! Every time gossip shows that an endpoint's heartbeat advanced, the gossiper calls
//! [`FailureDetector::report`]. Per endpoint we keep an *arrival window*: the last arrival time and
//! the most recent [`SAMPLE_WINDOW_SIZE`] inter-arrival intervals. The suspicion level at `now` is
//!
//! ```text
//! phi(now) = PHI_FACTOR * (now - last_arrival) / mean(intervals),   PHI_FACTOR = 1 / ln(10)
//! ```
//!
//! and the endpoint is convicted when `phi > phi_convict_threshold` (8 by default).
//!
//! # Why this formula
//! Hayashibara et al.'s "The φ Accrual Failure Detector" (2004) models inter-arrival times as a
//! normal distribution and defines `phi = -log10(P_later(t))`, `P_later` being the normal tail.
//! Cassandra simplifies (CASSANDRA-2597) to an exponential distribution, whose tail is
//! `P_later(t) = e^(-t / mean)`, so `-log10(P_later(t)) = t / (mean * ln 10)`: phi grows linearly
//! with silence and depends only on the mean. Cassandra computes `t / mean` and multiplies by
//! `PHI_FACTOR` when comparing with the threshold, which keeps the historical default of 8; we do
//! the same, so `phi_convict_threshold` means what it means in `cassandra.yaml`. With 1 s
//! heartbeats and a threshold of 8 an endpoint is convicted after `8 * ln 10 ≈ 18.4 s` of silence.
//!
//! # Cassandra's details we keep
//! - The first report of an endpoint seeds the window with [`DEFAULT_INITIAL_INTERVAL`] (twice the
//!   gossip interval): erring high means a new node is convicted a little late rather than
//!   flapping.
//! - Intervals longer than [`DEFAULT_MAX_INTERVAL`] (the same 2 s) are not recorded: after a long
//!   partition we would rather keep convicting quickly than learn that the node is slow.
//! - A local pause: if `interpret` has not run for more than [`MAX_LOCAL_PAUSE`] (our own process
//!   stalled, not the peers), nobody is convicted for the next [`MAX_LOCAL_PAUSE`].
//!
//! The detector is a plain value: time is the `now` argument (a monotonic [`Duration`]), there is
//! no clock, no thread, no listener; the gossiper acts on [`FailureDetector::interpret`]'s answer.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::endpoint::Endpoint;

/// `1 / ln(10)`: turns `t / mean` into `-log10` of the exponential tail (Cassandra's `PHI_FACTOR`).
pub const PHI_FACTOR: f64 = std::f64::consts::LOG10_E;

/// Inter-arrival intervals kept per endpoint (Cassandra's `SAMPLE_SIZE`).
pub const SAMPLE_WINDOW_SIZE: usize = 1000;

/// Default conviction threshold (`phi_convict_threshold` in `cassandra.yaml`).
pub const DEFAULT_PHI_CONVICT_THRESHOLD: f64 = 8.0;

/// The interval that seeds a new window: twice the 1 s gossip interval (Cassandra's
/// `INITIAL_VALUE`, `cassandra.fd_initial_value_ms`).
pub const DEFAULT_INITIAL_INTERVAL: Duration = Duration::from_millis(2000);

/// Longer intervals are ignored (Cassandra's `MAX_INTERVAL`, `cassandra.fd_max_interval_ms`).
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_millis(2000);

/// A gap between two `interpret` calls longer than this is a local pause (Cassandra's
/// `cassandra.max_local_pause_in_ms`, 5 s).
pub const MAX_LOCAL_PAUSE: Duration = Duration::from_secs(5);

/// The heartbeat history of one endpoint.
#[derive(Debug, Clone)]
struct ArrivalWindow {
    /// When the last heartbeat advance was reported.
    last_arrival: Duration,
    /// The most recent intervals, oldest first, in nanoseconds; at most [`SAMPLE_WINDOW_SIZE`].
    intervals_ns: VecDeque<u64>,
    /// Sum of `intervals_ns`, kept so `mean` is O(1).
    sum_ns: u64,
}

impl ArrivalWindow {
    fn new(now: Duration, initial_interval: Duration) -> ArrivalWindow {
        let mut window =
            ArrivalWindow { last_arrival: now, intervals_ns: VecDeque::with_capacity(16), sum_ns: 0 };
        window.push(duration_ns(initial_interval));
        window
    }

    fn push(&mut self, interval_ns: u64) {
        if self.intervals_ns.len() == SAMPLE_WINDOW_SIZE {
            if let Some(oldest) = self.intervals_ns.pop_front() {
                self.sum_ns -= oldest;
            }
        }
        self.intervals_ns.push_back(interval_ns);
        self.sum_ns += interval_ns;
        assert!(self.intervals_ns.len() <= SAMPLE_WINDOW_SIZE);
    }

    fn add(&mut self, now: Duration, max_interval: Duration) {
        // A report from the past (cannot happen with a monotonic clock) counts as no time passed.
        let interval = now.saturating_sub(self.last_arrival);
        if interval <= max_interval {
            self.push(duration_ns(interval));
        }
        self.last_arrival = self.last_arrival.max(now);
    }

    fn mean_ns(&self) -> f64 {
        // Never empty: the window is created with its initial interval.
        self.sum_ns as f64 / self.intervals_ns.len().max(1) as f64
    }

    fn phi(&self, now: Duration) -> f64 {
        let silence_ns = duration_ns(now.saturating_sub(self.last_arrival)) as f64;
        let mean_ns = self.mean_ns();
        if mean_ns <= 0.0 {
            // Only zero-length intervals so far (several reports at the same instant): any silence
            // at all is infinitely suspicious, no silence is not suspicious.
            return if silence_ns > 0.0 { f64::INFINITY } else { 0.0 };
        }
        PHI_FACTOR * silence_ns / mean_ns
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Cassandra's phi-accrual failure detector over every endpoint gossip told us about.
#[derive(Debug, Clone)]
pub struct FailureDetector {
    windows: BTreeMap<Endpoint, ArrivalWindow>,
    phi_convict_threshold: f64,
    initial_interval: Duration,
    max_interval: Duration,
    /// When `interpret` last ran, to notice our own pauses.
    last_interpret: Option<Duration>,
    /// When the last local pause was noticed.
    last_pause: Option<Duration>,
}

impl FailureDetector {
    /// A detector with Cassandra's defaults (2 s initial and maximum interval).
    ///
    /// # Panics
    /// If `phi_convict_threshold` is not a positive finite number (a configuration bug).
    #[must_use]
    pub fn new(phi_convict_threshold: f64) -> FailureDetector {
        FailureDetector::with_intervals(phi_convict_threshold, DEFAULT_INITIAL_INTERVAL, DEFAULT_MAX_INTERVAL)
    }

    /// A detector with explicit initial and maximum intervals (Cassandra's `fd_initial_value_ms`
    /// and `fd_max_interval_ms`).
    ///
    /// # Panics
    /// If `phi_convict_threshold` is not a positive finite number or `initial_interval` is zero.
    #[must_use]
    pub fn with_intervals(
        phi_convict_threshold: f64,
        initial_interval: Duration,
        max_interval: Duration,
    ) -> FailureDetector {
        assert!(
            phi_convict_threshold.is_finite() && phi_convict_threshold > 0.0,
            "phi_convict_threshold must be positive, got {phi_convict_threshold}"
        );
        assert!(!initial_interval.is_zero(), "the initial interval must not be zero");
        FailureDetector {
            windows: BTreeMap::new(),
            phi_convict_threshold,
            initial_interval,
            max_interval,
            last_interpret: None,
            last_pause: None,
        }
    }

    /// The conviction threshold.
    #[must_use]
    pub fn phi_convict_threshold(&self) -> f64 {
        self.phi_convict_threshold
    }

    /// Records that `endpoint`'s heartbeat advanced at `now`.
    pub fn report(&mut self, endpoint: Endpoint, now: Duration) {
        match self.windows.get_mut(&endpoint) {
            Some(window) => window.add(now, self.max_interval),
            None => {
                self.windows.insert(endpoint, ArrivalWindow::new(now, self.initial_interval));
            }
        }
    }

    /// The suspicion level of `endpoint` at `now`, on the threshold's scale; 0 for an endpoint
    /// never reported.
    #[must_use]
    pub fn phi(&self, endpoint: Endpoint, now: Duration) -> f64 {
        self.windows.get(&endpoint).map_or(0.0, |window| window.phi(now))
    }

    /// Whether `endpoint` should be convicted at `now` (`phi > phi_convict_threshold`).
    ///
    /// Returns false for unknown endpoints, and for everyone while we recover from a local pause
    /// (see the module docs).
    pub fn interpret(&mut self, endpoint: Endpoint, now: Duration) -> bool {
        let Some(window) = self.windows.get(&endpoint) else {
            return false;
        };
        let previous = self.last_interpret.replace(now);
        if let Some(previous) = previous {
            if now.saturating_sub(previous) > MAX_LOCAL_PAUSE {
                tracing::warn!(
                    pause_ms = now.saturating_sub(previous).as_millis() as u64,
                    "not convicting anyone after a local pause"
                );
                self.last_pause = Some(now);
                return false;
            }
        }
        if let Some(pause) = self.last_pause {
            if now.saturating_sub(pause) < MAX_LOCAL_PAUSE {
                return false;
            }
        }
        window.phi(now) > self.phi_convict_threshold
    }

    /// Forgets `endpoint` (it left, or restarted while down and must relearn its intervals).
    pub fn remove(&mut self, endpoint: Endpoint) {
        self.windows.remove(&endpoint);
    }

    /// The mean recorded interval of `endpoint`, if it was ever reported.
    #[must_use]
    pub fn mean_interval(&self, endpoint: Endpoint) -> Option<Duration> {
        self.windows.get(&endpoint).map(|window| Duration::from_nanos(window.mean_ns() as u64))
    }

    /// When `endpoint`'s heartbeat was last seen advancing.
    #[must_use]
    pub fn last_arrival(&self, endpoint: Endpoint) -> Option<Duration> {
        self.windows.get(&endpoint).map(|window| window.last_arrival)
    }

    /// How many intervals are recorded for `endpoint` (at most [`SAMPLE_WINDOW_SIZE`]).
    #[must_use]
    pub fn sample_count(&self, endpoint: Endpoint) -> usize {
        self.windows.get(&endpoint).map_or(0, |window| window.intervals_ns.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> Endpoint {
        Endpoint("127.0.0.1:7000".parse().unwrap())
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Reports every second from 0 to `count - 1` seconds.
    fn steady(fd: &mut FailureDetector, count: u64) {
        for i in 0..count {
            fd.report(ep(), ms(i * 1000));
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn phi_of_steady_one_second_heartbeats_matches_the_hand_computed_value() {
        // 1001 reports: the seeded 2000 ms interval is pushed out by 1000 intervals of 1000 ms.
        let mut fd = FailureDetector::new(8.0);
        steady(&mut fd, 1001);
        assert_eq!(fd.sample_count(ep()), SAMPLE_WINDOW_SIZE);
        assert_eq!(fd.mean_interval(ep()), Some(ms(1000)));
        let last = ms(1_000_000);
        assert!(close(fd.phi(ep(), last), 0.0));
        // 8000 / 1000 / ln 10 = 3.4743...
        let phi = fd.phi(ep(), last + ms(8000));
        assert!(close(phi, 8.0 / std::f64::consts::LN_10), "phi {phi}");
        assert!((phi - 3.474).abs() < 1e-3);
    }

    #[test]
    fn the_first_report_seeds_the_window_with_the_initial_interval() {
        let mut fd = FailureDetector::new(8.0);
        fd.report(ep(), ms(5000));
        assert_eq!(fd.sample_count(ep()), 1);
        assert_eq!(fd.mean_interval(ep()), Some(DEFAULT_INITIAL_INTERVAL));
        // 2 s of silence over a 2 s mean: 1 / ln 10.
        assert!(close(fd.phi(ep(), ms(7000)), PHI_FACTOR));
        // Then (2000 + 1000) / 2 = 1500 ms.
        fd.report(ep(), ms(6000));
        assert_eq!(fd.mean_interval(ep()), Some(ms(1500)));
        assert!(close(fd.phi(ep(), ms(9000)), 2.0 * PHI_FACTOR));
    }

    #[test]
    fn unknown_endpoints_have_zero_phi_and_are_never_convicted() {
        let mut fd = FailureDetector::new(8.0);
        assert_eq!(fd.phi(ep(), ms(1_000_000)), 0.0);
        assert!(!fd.interpret(ep(), ms(1_000_000)));
    }

    #[test]
    fn one_second_heartbeats_are_convicted_after_about_18_4_seconds_at_threshold_8() {
        let mut fd = FailureDetector::new(8.0);
        steady(&mut fd, 1001);
        let last = ms(1_000_000);
        let expected = 8.0 * std::f64::consts::LN_10; // 18.42 s
        let mut convicted_at = None;
        // interpret every 100 ms, as often as needed to avoid a local pause.
        for step in 1..=400u64 {
            let now = last + ms(step * 100);
            if fd.interpret(ep(), now) {
                convicted_at = Some(now - last);
                break;
            }
        }
        let after = convicted_at.unwrap().as_secs_f64();
        assert!(after > expected && after <= expected + 0.1, "convicted after {after} s");
        assert!((after - 18.5).abs() < 1e-9);
    }

    #[test]
    fn a_short_history_still_carries_the_seed_interval() {
        // Ten reports: intervals 2000 + 9 * 1000, mean 1100 ms, conviction after 8 * ln 10 * 1.1 s.
        let mut fd = FailureDetector::new(8.0);
        steady(&mut fd, 10);
        assert_eq!(fd.mean_interval(ep()), Some(ms(1100)));
        let limit = 8.0 * std::f64::consts::LN_10 * 1.1;
        let last = ms(9000);
        assert!(fd.phi(ep(), last + Duration::from_secs_f64(limit - 0.01)) < 8.0);
        assert!(fd.phi(ep(), last + Duration::from_secs_f64(limit + 0.01)) > 8.0);
    }

    #[test]
    fn the_window_keeps_at_most_sample_window_size_intervals() {
        let mut fd = FailureDetector::new(8.0);
        steady(&mut fd, 5000);
        assert_eq!(fd.sample_count(ep()), SAMPLE_WINDOW_SIZE);
        // Then 1000 intervals of 500 ms replace every 1000 ms one.
        let start = ms(4999 * 1000);
        for i in 1..=1000u64 {
            fd.report(ep(), start + ms(i * 500));
        }
        assert_eq!(fd.sample_count(ep()), SAMPLE_WINDOW_SIZE);
        assert_eq!(fd.mean_interval(ep()), Some(ms(500)));
    }

    #[test]
    fn intervals_longer_than_the_maximum_are_ignored_but_move_the_last_arrival() {
        let mut fd = FailureDetector::new(8.0);
        steady(&mut fd, 3); // 2000, 1000, 1000
        assert_eq!(fd.sample_count(ep()), 3);
        fd.report(ep(), ms(2000 + 30_000)); // a partition of 30 s
        assert_eq!(fd.sample_count(ep()), 3);
        assert_eq!(fd.last_arrival(ep()), Some(ms(32_000)));
        assert!(fd.phi(ep(), ms(32_000)) < 1e-12);
        // Exactly the maximum still counts.
        fd.report(ep(), ms(34_000));
        assert_eq!(fd.sample_count(ep()), 4);
        assert_eq!(fd.mean_interval(ep()), Some(ms(1500)));
    }

    #[test]
    fn a_local_pause_suppresses_convictions_for_a_while() {
        let mut fd = FailureDetector::new(8.0);
        steady(&mut fd, 1001);
        let last = ms(1_000_000);
        assert!(!fd.interpret(ep(), last + ms(1000)));
        // We stalled for 60 s: the silence is ours, not the peer's.
        assert!(fd.phi(ep(), last + ms(61_000)) > 8.0);
        assert!(!fd.interpret(ep(), last + ms(61_000)));
        assert!(!fd.interpret(ep(), last + ms(63_000)));
        assert!(!fd.interpret(ep(), last + ms(65_000)));
        assert!(fd.interpret(ep(), last + ms(66_000)));
    }

    #[test]
    fn remove_forgets_the_history() {
        let mut fd = FailureDetector::new(8.0);
        steady(&mut fd, 10);
        fd.remove(ep());
        assert_eq!(fd.sample_count(ep()), 0);
        assert_eq!(fd.phi(ep(), ms(100_000)), 0.0);
    }
}
