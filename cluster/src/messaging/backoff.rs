//! How long an outbound connection waits before its next connection attempt.
//!
//! Exponential with "equal jitter": attempt `n` (0-based) waits a uniformly random time in
//! `[ceiling / 2, ceiling]`, where `ceiling = min(max, min * 2^n)`, and never less than `min`.
//! The jitter keeps a restarted node from being hit by every peer at the same instant; the
//! randomness is passed in so tests can replay a schedule from a seed.

use std::time::Duration;

use rand::Rng;

/// The wait before connection attempt `attempt + 1`, after `attempt + 1` consecutive failures.
pub fn reconnect_delay(attempt: u32, min: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let max = max.max(min);
    let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    let ceiling = min.checked_mul(factor).unwrap_or(max).min(max);
    let floor = (ceiling / 2).max(min);
    if floor >= ceiling {
        return ceiling;
    }
    let span_ns = u64::try_from((ceiling - floor).as_nanos()).unwrap_or(u64::MAX);
    floor + Duration::from_nanos(rng.random_range(0..=span_ns))
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn delays_grow_exponentially_within_bounds() {
        let seed = std::env::var("SIBYL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7u64);
        eprintln!("seed {seed}");
        let mut rng = StdRng::seed_from_u64(seed);
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(5));
        for attempt in 0..64 {
            let ceiling = (min * 2u32.saturating_pow(attempt.min(20))).min(max);
            let d = reconnect_delay(attempt, min, max, &mut rng);
            assert!(d >= min && d <= max, "attempt {attempt}: {d:?}");
            assert!(d >= (ceiling / 2).max(min) && d <= ceiling, "attempt {attempt}: {d:?}");
        }
        assert_eq!(reconnect_delay(0, min, max, &mut rng), min);
    }

    #[test]
    fn max_below_min_is_treated_as_min() {
        let mut rng = StdRng::seed_from_u64(1);
        let d = reconnect_delay(5, Duration::from_millis(50), Duration::from_millis(10), &mut rng);
        assert_eq!(d, Duration::from_millis(50));
    }
}
