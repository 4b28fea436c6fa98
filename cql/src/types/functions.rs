//! Pure functions behind CQL's native functions: `now()`, `minTimeuuid`, `maxTimeuuid`,
//! `toUnixTimestamp`, `toDate`, `toTimestamp`, `blobAsX`, `xAsBlob`. Time is always passed in;
//! nothing here reads the clock.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use uuid::Uuid;

use super::codec::{decode, encode};
use super::cql_type::CqlType;
use super::error::TypeError;
use super::temporal::{DATE_EPOCH, MILLIS_PER_DAY};
use super::value::Value;

/// Milliseconds from the UUID epoch (1582-10-15T00:00Z) to the Unix epoch, negated: the Unix
/// time of the UUID epoch.
const UUID_EPOCH_UNIX_MS: i64 = -12_219_292_800_000;
/// 100-nanosecond ticks per millisecond and per microsecond.
const TICKS_PER_MS: i64 = 10_000;
const TICKS_PER_MICRO: i64 = 10;
/// A version 1 timestamp has 60 bits.
const MAX_TICKS: u64 = (1 << 60) - 1;
/// The clock-seq-and-node halves `minTimeuuid`/`maxTimeuuid` use: the smallest and largest
/// values under `TimeUUIDType`'s signed byte comparison.
const MIN_CLOCK_SEQ_AND_NODE: u64 = 0x8080_8080_8080_8080;
const MAX_CLOCK_SEQ_AND_NODE: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The most significant half of a version 1 UUID for a 60-bit timestamp (Cassandra's
/// `createTime`).
fn msb_for_ticks(ticks: u64) -> u64 {
    ((ticks & 0xFFFF_FFFF) << 32) | (((ticks >> 32) & 0xFFFF) << 16) | ((ticks >> 48) & 0x0FFF) | 0x1000
}

fn ticks_of_msb(msb: u64) -> u64 {
    ((msb & 0x0FFF) << 48) | (((msb >> 16) & 0xFFFF) << 32) | (msb >> 32)
}

/// Generates version 1 (time-based) UUIDs, as `now()` does.
///
/// The clock sequence and node are fixed at construction; the timestamp comes from the
/// `now_micros` passed to [`TimeuuidGenerator::next`]. UUIDs from one generator are strictly
/// increasing in timestamp, so unique even when called many times within one microsecond (the
/// generator then runs ahead of the clock by 100 ns ticks, as Cassandra's does). Safe to share
/// between threads.
#[derive(Debug)]
pub struct TimeuuidGenerator {
    clock_seq_and_node: u64,
    last_ticks: AtomicU64,
}

impl TimeuuidGenerator {
    /// A generator with the given 14-bit clock sequence and 48-bit node (the RFC 4122 variant
    /// bits are set).
    pub fn new(clock_seq: u16, node: [u8; 6]) -> TimeuuidGenerator {
        let [n0, n1, n2, n3, n4, n5] = node;
        let node = u64::from_be_bytes([0, 0, n0, n1, n2, n3, n4, n5]);
        let clock = 0x8000 | (u64::from(clock_seq) & 0x3FFF);
        TimeuuidGenerator { clock_seq_and_node: (clock << 48) | node, last_ticks: AtomicU64::new(0) }
    }

    /// A generator with a random clock sequence and a random node (multicast bit set, as RFC 4122
    /// asks for nodes that are not MAC addresses).
    pub fn new_random() -> TimeuuidGenerator {
        let [a, b, n0, n1, n2, n3, n4, n5, ..] = *Uuid::new_v4().as_bytes();
        TimeuuidGenerator::new(u16::from_be_bytes([a, b]), [n0 | 0x01, n1, n2, n3, n4, n5])
    }

    /// The next timeuuid for the current time `now_micros` (microseconds since the Unix epoch).
    /// Times before 1582-10-15 or after the year 5236 are clamped to the representable range.
    pub fn next(&self, now_micros: i64) -> Uuid {
        let candidate = i128::from(now_micros) * i128::from(TICKS_PER_MICRO)
            - i128::from(UUID_EPOCH_UNIX_MS) * i128::from(TICKS_PER_MS);
        let candidate = u64::try_from(candidate.clamp(0, i128::from(MAX_TICKS))).unwrap_or(0);
        let mut last = self.last_ticks.load(Ordering::Relaxed);
        let ticks = loop {
            let next = if candidate > last { candidate } else { last.saturating_add(1).min(MAX_TICKS) };
            match self.last_ticks.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break next,
                Err(current) => last = current,
            }
        };
        Uuid::from_u64_pair(msb_for_ticks(ticks), self.clock_seq_and_node)
    }
}

fn ticks_for_ms(ms: i64, adjust: i64) -> Result<u64, TypeError> {
    let ticks =
        (i128::from(ms) - i128::from(UUID_EPOCH_UNIX_MS)) * i128::from(TICKS_PER_MS) + i128::from(adjust);
    u64::try_from(ticks)
        .ok()
        .filter(|t| *t <= MAX_TICKS)
        .ok_or_else(|| TypeError::OutOfRange(format!("Timestamp {ms} cannot be represented in a timeuuid")))
}

/// `minTimeuuid(ms)`: the smallest timeuuid (in `timeuuid` order) with timestamp `ms`.
pub fn min_timeuuid(unix_ms: i64) -> Result<Uuid, TypeError> {
    Ok(Uuid::from_u64_pair(msb_for_ticks(ticks_for_ms(unix_ms, 0)?), MIN_CLOCK_SEQ_AND_NODE))
}

/// `maxTimeuuid(ms)`: the largest timeuuid (in `timeuuid` order) with timestamp `ms`, i.e.
/// the last 100 ns tick of that millisecond.
pub fn max_timeuuid(unix_ms: i64) -> Result<Uuid, TypeError> {
    let ticks = ticks_for_ms(unix_ms.saturating_add(1), -1)?;
    Ok(Uuid::from_u64_pair(msb_for_ticks(ticks), MAX_CLOCK_SEQ_AND_NODE))
}

/// `toUnixTimestamp(timeuuid)`: the timeuuid's timestamp in milliseconds since the Unix epoch
/// (sub-millisecond ticks truncated). Fails for UUIDs that are not version 1.
pub fn timeuuid_to_unix_ms(u: &Uuid) -> Result<i64, TypeError> {
    let (msb, _) = u.as_u64_pair();
    if u.get_version_num() != 1 {
        return Err(TypeError::InvalidValue(format!("{u} is not a version 1 (time-based) UUID")));
    }
    let ticks = i64::try_from(ticks_of_msb(msb)).unwrap_or(i64::MAX);
    Ok(ticks / TICKS_PER_MS + UUID_EPOCH_UNIX_MS)
}

/// `toDate(timestamp)`: the UTC date of a timestamp (milliseconds since the epoch), as a `date`
/// value (days with the epoch at 2^31). Fails outside the `date` range.
pub fn to_date(unix_ms: i64) -> Result<u32, TypeError> {
    let days = unix_ms.div_euclid(MILLIS_PER_DAY);
    u32::try_from(days + DATE_EPOCH).map_err(|_| {
        TypeError::OutOfRange(format!("Timestamp {unix_ms} is outside the range of the date type"))
    })
}

/// `toTimestamp(date)`: midnight UTC of a `date` value, in milliseconds since the epoch.
pub fn date_to_timestamp(date: u32) -> i64 {
    (i64::from(date) - DATE_EPOCH) * MILLIS_PER_DAY
}

/// `blobAsX(blob)`: the bytes as a value of type `ty`, validated as when they arrive from a
/// client (see [`decode`]).
pub fn blob_as(ty: &CqlType, bytes: &[u8]) -> Result<Value, TypeError> {
    decode(ty, bytes)
}

/// `xAsBlob(value)`: the serialized bytes of the value.
pub fn as_blob(value: &Value) -> Bytes {
    Bytes::from(encode(value))
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering as Cmp;
    use std::collections::HashSet;

    use super::*;
    use crate::types::compare;

    #[test]
    fn generator_is_monotonic_and_unique() {
        let g = TimeuuidGenerator::new(0x1234, [1, 2, 3, 4, 5, 6]);
        let now = 1_700_000_000_000_000;
        let mut seen = HashSet::new();
        let mut previous: Option<Uuid> = None;
        for i in 0..1000 {
            // The clock stalls and even goes back; the UUIDs keep increasing.
            let u = g.next(now + (i / 100) - (i % 7));
            assert_eq!(u.get_version_num(), 1);
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
            assert!(seen.insert(u));
            if let Some(p) = previous {
                assert_eq!(compare(&CqlType::Timeuuid, &Value::Timeuuid(p), &Value::Timeuuid(u)), Cmp::Less);
            }
            previous = Some(u);
        }
        let first = g.next(now + 1_000_000);
        assert_eq!(timeuuid_to_unix_ms(&first), Ok((now + 1_000_000) / 1000));
        let (_, lsb) = first.as_u64_pair();
        assert_eq!(lsb, 0x9234_0102_0304_0506);
        let r = TimeuuidGenerator::new_random();
        assert_eq!(r.next(now).get_version_num(), 1);
    }

    #[test]
    fn min_and_max_timeuuid_bracket_the_millisecond() {
        let ms = 1_296_705_900_000;
        let min = min_timeuuid(ms).unwrap();
        let max = max_timeuuid(ms).unwrap();
        assert_eq!(min.to_string(), "c4fb3e00-2f4a-11e0-8080-808080808080");
        assert_eq!(max.to_string(), "c4fb650f-2f4a-11e0-7f7f-7f7f7f7f7f7f");
        assert_eq!(timeuuid_to_unix_ms(&min), Ok(ms));
        assert_eq!(timeuuid_to_unix_ms(&max), Ok(ms));
        let g = TimeuuidGenerator::new_random();
        let ty = CqlType::Timeuuid;
        for micros in [ms * 1000, ms * 1000 + 999] {
            let u = Value::Timeuuid(g.next(micros));
            assert_eq!(compare(&ty, &Value::Timeuuid(min), &u), Cmp::Less);
            assert_eq!(compare(&ty, &u, &Value::Timeuuid(max)), Cmp::Less);
        }
        assert_eq!(
            compare(&ty, &Value::Timeuuid(max), &Value::Timeuuid(min_timeuuid(ms + 1).unwrap())),
            Cmp::Less
        );
        assert_eq!(min_timeuuid(UUID_EPOCH_UNIX_MS).map(|u| u.as_u64_pair().0), Ok(0x1000));
        assert!(min_timeuuid(UUID_EPOCH_UNIX_MS - 1).is_err());
        assert!(max_timeuuid(i64::MAX).is_err());
        assert!(timeuuid_to_unix_ms(&Uuid::new_v4()).is_err());
    }

    #[test]
    fn dates_and_timestamps() {
        assert_eq!(to_date(0), Ok(1 << 31));
        assert_eq!(to_date(-1), Ok((1 << 31) - 1));
        assert_eq!(to_date(86_399_999), Ok(1 << 31));
        assert_eq!(to_date(1_296_705_900_000), Ok((1 << 31) + 15_008));
        assert!(to_date(i64::MAX).is_err());
        assert!(to_date(i64::MIN).is_err());
        assert_eq!(date_to_timestamp((1 << 31) + 15_008), 1_296_691_200_000);
        assert_eq!(date_to_timestamp(0), -(1_i64 << 31) * 86_400_000);
    }

    #[test]
    fn blob_conversions_validate() {
        assert_eq!(blob_as(&CqlType::Int, &[0, 0, 0, 1]), Ok(Value::Int(1)));
        assert_eq!(
            blob_as(&CqlType::Int, &[0, 0, 1]).map_err(|e| e.to_string()),
            Err("Expected 4 or 0 byte int (3)".to_string())
        );
        assert_eq!(blob_as(&CqlType::Int, &[]), Ok(Value::Empty));
        assert_eq!(as_blob(&Value::Bigint(1)).as_ref(), &[0, 0, 0, 0, 0, 0, 0, 1]);
    }
}
