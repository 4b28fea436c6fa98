//! The clock, injected so tests and simulations control time.
//!
//! Nothing in Sibyl reads the system time directly: the node builds one [`Clock`] and passes it
//! down. [`SystemClock`] is the real one; [`ManualClock`] only moves when a test moves it, so TTL
//! expiry and gc_grace can be tested without sleeping, and a simulation replays from its seed.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Microseconds since the Unix epoch (the unit of write timestamps).
    fn now_micros(&self) -> i64;

    /// Milliseconds since the Unix epoch (the unit of CQL `timestamp` values).
    fn now_millis(&self) -> i64 {
        self.now_micros().div_euclid(1000)
    }

    /// Seconds since the Unix epoch, as Cassandra's `nowInSec` (TTL expiry, deletion times).
    fn now_seconds(&self) -> u32 {
        u32::try_from(self.now_micros().div_euclid(1_000_000)).unwrap_or(u32::MAX)
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        // A clock before 1970 is a broken machine; saturate rather than panic.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock showing `micros` since the epoch.
    #[must_use]
    pub fn new(micros: i64) -> ManualClock {
        ManualClock { micros: AtomicI64::new(micros) }
    }

    /// Moves the clock forward by `micros` (or back, if negative: a clock jump).
    pub fn advance_micros(&self, micros: i64) {
        self.micros.fetch_add(micros, Ordering::SeqCst);
    }

    /// Moves the clock forward by whole seconds.
    pub fn advance_seconds(&self, seconds: i64) {
        self.advance_micros(seconds * 1_000_000);
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> i64 {
        self.micros.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced_and_derives_coarser_units() {
        let c = ManualClock::new(1_700_000_000_123_456);
        assert_eq!(c.now_millis(), 1_700_000_000_123);
        assert_eq!(c.now_seconds(), 1_700_000_000);
        c.advance_seconds(2);
        assert_eq!(c.now_seconds(), 1_700_000_002);
        assert_eq!(c.now_micros(), 1_700_000_002_123_456);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_seconds() > 1_577_836_800);
    }
}
