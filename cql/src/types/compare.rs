//! Cassandra's ordering of values (`AbstractType.compare`).

use std::cmp::Ordering;
use std::net::IpAddr;

use bigdecimal::BigDecimal;
use num_bigint::{BigUint, Sign};
use uuid::Uuid;

use super::codec::encode;
use super::comparable::to_comparable;
use super::cql_type::CqlType;
use super::value::Value;

/// Compares two values of type `ty` exactly as Cassandra's comparator for the type does:
///
/// - `Empty` sorts before every other value; `null` tuple fields before everything else.
/// - Integers, `varint`, `timestamp`, `counter`: numerically (signed).
/// - `decimal`: numerically, so 1.0 and 1.00 are *equal* (as `BigDecimal.compareTo`).
/// - `float`, `double`: Java's `Float.compare`/`Double.compare`: -0.0 < 0.0, every NaN is
///   equal to every other NaN and greater than +Infinity.
/// - `boolean`: false < true.
/// - `ascii`, `text`, `blob`, `inet`, custom types, `duration`: unsigned bytes of the serialized
///   form (for `inet` a 4-byte address compares with a 16-byte one on the common prefix, the
///   shorter first; `duration` compares its canonical vint serialization, as `DurationType`).
/// - `date`, `time`: unsigned (the serialized bytes' order).
/// - `uuid` (`UUIDType`): version first; for version 1 then by timestamp, for other versions by
///   the most significant 64 bits unsigned; then the least significant 64 bits unsigned.
/// - `timeuuid` (`TimeUUIDType`): by timestamp, then the least significant 8 bytes as *signed*
///   bytes.
/// - lists and sets: element by element, then the shorter first; maps: key, value, key, ...;
///   tuples: field by field.
///
/// A value whose variant does not belong to `ty` (which [`Value::check`] rejects) is ordered
/// after the valid ones, deterministically.
pub fn compare(ty: &CqlType, a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Empty, Value::Empty) => return Ordering::Equal,
        (Value::Empty, _) => return Ordering::Less,
        (_, Value::Empty) => return Ordering::Greater,
        _ => {}
    }
    match (ty, a, b) {
        (CqlType::Ascii, Value::Ascii(x), Value::Ascii(y))
        | (CqlType::Text, Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (CqlType::Blob, Value::Blob(x), Value::Blob(y))
        | (CqlType::Custom(_), Value::Custom(x), Value::Custom(y)) => x.as_ref().cmp(y.as_ref()),
        (CqlType::Bigint, Value::Bigint(x), Value::Bigint(y))
        | (CqlType::Counter, Value::Counter(x), Value::Counter(y))
        | (CqlType::Timestamp, Value::Timestamp(x), Value::Timestamp(y)) => x.cmp(y),
        (CqlType::Int, Value::Int(x), Value::Int(y)) => x.cmp(y),
        (CqlType::Smallint, Value::Smallint(x), Value::Smallint(y)) => x.cmp(y),
        (CqlType::Tinyint, Value::Tinyint(x), Value::Tinyint(y)) => x.cmp(y),
        (CqlType::Boolean, Value::Boolean(x), Value::Boolean(y)) => x.cmp(y),
        (CqlType::Date, Value::Date(x), Value::Date(y)) => x.cmp(y),
        (CqlType::Time, Value::Time(x), Value::Time(y)) => (*x as u64).cmp(&(*y as u64)),
        (CqlType::Varint, Value::Varint(x), Value::Varint(y)) => x.cmp(y),
        (CqlType::Decimal, Value::Decimal(x), Value::Decimal(y)) => compare_decimals(x, y),
        (CqlType::Float, Value::Float(x), Value::Float(y)) => java_float_compare(*x, *y),
        (CqlType::Double, Value::Double(x), Value::Double(y)) => java_double_compare(*x, *y),
        (CqlType::Inet, Value::Inet(x), Value::Inet(y)) => compare_inets(x, y),
        (CqlType::Duration, Value::Duration { .. }, Value::Duration { .. }) => encode(a).cmp(&encode(b)),
        (CqlType::Uuid, Value::Uuid(x), Value::Uuid(y)) => compare_uuids(x, y),
        (CqlType::Timeuuid, Value::Timeuuid(x), Value::Timeuuid(y)) => compare_timeuuids(x, y),
        (CqlType::List { element, .. }, Value::List(x), Value::List(y))
        | (CqlType::Set { element, .. }, Value::Set(x), Value::Set(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = compare(element, p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (CqlType::Map { key, value, .. }, Value::Map(x), Value::Map(y)) => {
            for ((k1, v1), (k2, v2)) in x.iter().zip(y) {
                let c = compare(key, k1, k2).then_with(|| compare(value, v1, v2));
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (CqlType::Tuple(types), Value::Tuple(x), Value::Tuple(y)) => {
            for ((t, p), q) in types.iter().zip(x).zip(y) {
                let c = match (p, q) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(p), Some(q)) => compare(t, p, q),
                };
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => {
            // At least one value does not belong to the type: valid values first, then by
            // variant and bytes, so that sorting never panics and stays deterministic.
            let valid = |v: &Value| v.check(ty).is_ok();
            valid(b)
                .cmp(&valid(a))
                .then_with(|| a.variant_name().cmp(b.variant_name()))
                .then_with(|| to_comparable(a).cmp(&to_comparable(b)))
        }
    }
}

/// `InetAddressType`: the 4 or 16 address bytes, unsigned, a prefix first.
fn compare_inets(a: &IpAddr, b: &IpAddr) -> Ordering {
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => x.octets().cmp(&y.octets()),
        (IpAddr::V6(x), IpAddr::V6(y)) => x.octets().cmp(&y.octets()),
        (IpAddr::V4(x), IpAddr::V6(y)) => x.octets().as_slice().cmp(y.octets().as_slice()),
        (IpAddr::V6(x), IpAddr::V4(y)) => x.octets().as_slice().cmp(y.octets().as_slice()),
    }
}

/// Java's `Float.compare`.
pub(crate) fn java_float_compare(a: f32, b: f32) -> Ordering {
    if a < b {
        Ordering::Less
    } else if a > b {
        Ordering::Greater
    } else {
        // floatToIntBits: every NaN is 0x7fc00000; signed comparison puts -0.0 before 0.0.
        let bits = |f: f32| if f.is_nan() { 0x7fc0_0000_i32 } else { f.to_bits() as i32 };
        bits(a).cmp(&bits(b))
    }
}

/// Java's `Double.compare`.
pub(crate) fn java_double_compare(a: f64, b: f64) -> Ordering {
    if a < b {
        Ordering::Less
    } else if a > b {
        Ordering::Greater
    } else {
        let bits = |f: f64| if f.is_nan() { 0x7ff8_0000_0000_0000_i64 } else { f.to_bits() as i64 };
        bits(a).cmp(&bits(b))
    }
}

/// `TimeUUIDType.reorderTimestampBytes`: the v1 timestamp fields (time_hi, time_mid, time_low)
/// moved to the order of significance, the version nibble on top.
pub(crate) fn reorder_timestamp(msb: u64) -> u64 {
    (msb << 48) | ((msb << 16) & 0xFFFF_0000_0000) | (msb >> 32)
}

/// The inverse of [`reorder_timestamp`].
pub(crate) fn unreorder_timestamp(r: u64) -> u64 {
    (r << 32) | ((r >> 16) & 0xFFFF_0000) | (r >> 48)
}

/// `UUIDType.compareCustom`.
pub(crate) fn compare_uuids(a: &Uuid, b: &Uuid) -> Ordering {
    let (msb1, lsb1) = a.as_u64_pair();
    let (msb2, lsb2) = b.as_u64_pair();
    let version1 = (msb1 >> 12) & 0xf;
    let version2 = (msb2 >> 12) & 0xf;
    if version1 != version2 {
        return version1.cmp(&version2);
    }
    let c = if version1 == 1 {
        // Java compares the reordered longs signed; the version nibble on top keeps them positive.
        (reorder_timestamp(msb1) as i64).cmp(&(reorder_timestamp(msb2) as i64))
    } else {
        msb1.cmp(&msb2)
    };
    c.then_with(|| lsb1.cmp(&lsb2))
}

/// `TimeUUIDType.compareCustom`.
pub(crate) fn compare_timeuuids(a: &Uuid, b: &Uuid) -> Ordering {
    let (msb1, lsb1) = a.as_u64_pair();
    let (msb2, lsb2) = b.as_u64_pair();
    // Signed per-byte comparison of the low 8 bytes, made a signed long comparison.
    let signed_bytes = |lsb: u64| (lsb ^ 0x0080_8080_8080_8080) as i64;
    (reorder_timestamp(msb1) as i64)
        .cmp(&(reorder_timestamp(msb2) as i64))
        .then_with(|| signed_bytes(lsb1).cmp(&signed_bytes(lsb2)))
}

/// Numeric comparison of decimals (`BigDecimal.compareTo`): 1.0 == 1.00. Scales come from
/// clients and may differ by up to 2^32, so 10^(scale difference) is only materialized when it
/// is no larger than the other operand; beyond that the magnitudes are decided by the scales.
pub(crate) fn compare_decimals(a: &BigDecimal, b: &BigDecimal) -> Ordering {
    let (ua, sa) = a.as_bigint_and_scale();
    let (ub, sb) = b.as_bigint_and_scale();
    let sign_rank = |s: Sign| match s {
        Sign::Minus => 0,
        Sign::NoSign => 1,
        Sign::Plus => 2,
    };
    let (sign_a, sign_b) = (ua.sign(), ub.sign());
    if sign_a != sign_b || sign_a == Sign::NoSign {
        return sign_rank(sign_a).cmp(&sign_rank(sign_b));
    }
    let (ma, mb) = (ua.magnitude(), ub.magnitude());
    let magnitude = match sa.cmp(&sb) {
        Ordering::Equal => ma.cmp(mb),
        // |a| = ma * 10^-sa, |b| = mb * 10^-sb: compare ma * 10^(sb - sa) with mb.
        Ordering::Less => compare_scaled(ma, i128::from(sb) - i128::from(sa), mb),
        Ordering::Greater => compare_scaled(mb, i128::from(sa) - i128::from(sb), ma).reverse(),
    };
    if sign_a == Sign::Minus {
        magnitude.reverse()
    } else {
        magnitude
    }
}

/// `x * 10^shift` against `y`, for non-zero `x`, `y` and `shift > 0`.
fn compare_scaled(x: &BigUint, shift: i128, y: &BigUint) -> Ordering {
    // y < 2^bits(y) <= 10^bits(y): if shift >= bits(y), x * 10^shift >= 10^shift > y.
    if shift >= i128::from(y.bits()) {
        return Ordering::Greater;
    }
    let shift = u32::try_from(shift).unwrap_or(u32::MAX);
    (x * BigUint::from(10_u32).pow(shift)).cmp(y)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn floats_follow_java() {
        use Ordering::*;
        assert_eq!(java_float_compare(-0.0, 0.0), Less);
        assert_eq!(java_float_compare(0.0, -0.0), Greater);
        assert_eq!(java_float_compare(f32::NAN, f32::INFINITY), Greater);
        assert_eq!(java_float_compare(f32::NAN, f32::from_bits(0xffc0_0001)), Equal);
        assert_eq!(java_float_compare(f32::NEG_INFINITY, -1.0), Less);
        assert_eq!(java_double_compare(f64::NAN, f64::NAN), Equal);
        assert_eq!(java_double_compare(-f64::NAN, f64::MAX), Greater);
        assert_eq!(java_double_compare(-0.0, 0.0), Less);
    }

    #[test]
    fn decimals_compare_numerically() {
        let d = |s: &str| BigDecimal::from_str(s).unwrap();
        use Ordering::*;
        assert_eq!(compare_decimals(&d("1.0"), &d("1.00")), Equal);
        assert_eq!(compare_decimals(&d("0"), &d("0.000")), Equal);
        assert_eq!(compare_decimals(&d("-1"), &d("0")), Less);
        assert_eq!(compare_decimals(&d("-1.5"), &d("-1.25")), Less);
        assert_eq!(compare_decimals(&d("10"), &d("9.99")), Greater);
        assert_eq!(compare_decimals(&d("1E+5"), &d("99999")), Greater);
        assert_eq!(compare_decimals(&d("0.001"), &d("0.0009")), Greater);
        let tiny = BigDecimal::new(1.into(), i64::from(i32::MAX));
        let huge = BigDecimal::new(1.into(), i64::from(i32::MIN));
        assert_eq!(compare_decimals(&tiny, &d("0")), Greater);
        assert_eq!(compare_decimals(&tiny, &huge), Less);
    }

    #[test]
    fn uuids_follow_cassandra() {
        let u = |s: &str| Uuid::parse_str(s).unwrap();
        use Ordering::*;
        // Version first, even against byte order.
        assert_eq!(
            compare_uuids(
                &u("ffffffff-ffff-1fff-8fff-ffffffffffff"),
                &u("00000000-0000-4000-8000-000000000000")
            ),
            Less
        );
        // Version 1: by timestamp (time_hi first), not by bytes.
        assert_eq!(
            compare_uuids(
                &u("ffffffff-0000-1000-8000-000000000000"),
                &u("00000000-0000-1001-8000-000000000000")
            ),
            Less
        );
        // Then the low bytes unsigned for UUIDType ...
        assert_eq!(
            compare_uuids(
                &u("00000000-0000-1000-8000-000000000000"),
                &u("00000000-0000-1000-7f00-000000000000")
            ),
            Greater
        );
        // ... but signed for TimeUUIDType.
        assert_eq!(
            compare_timeuuids(
                &u("00000000-0000-1000-8000-000000000000"),
                &u("00000000-0000-1000-7f00-000000000000")
            ),
            Less
        );
        assert_eq!(
            compare_timeuuids(
                &u("ffffffff-0000-1000-8000-000000000000"),
                &u("00000000-0001-1000-8000-000000000000")
            ),
            Less
        );
        for m in [0_u64, 1, 0x1234_5678_9abc_def0, u64::MAX] {
            assert_eq!(unreorder_timestamp(reorder_timestamp(m)), m);
        }
    }
}
