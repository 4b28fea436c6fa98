//! Seeded random types and values for the property tests.
//!
//! The seed is printed by every test that uses it; set `SIBYL_SEED` to replay a failure.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bigdecimal::BigDecimal;
use bytes::Bytes;
use num_bigint::BigInt;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, RngCore, SeedableRng};
use uuid::Uuid;

use crate::types::{encode, CqlType, Value};

/// A seeded generator; prints the seed so that a failure can be replayed with `SIBYL_SEED`.
pub fn rng(test: &str) -> StdRng {
    let seed = match std::env::var("SIBYL_SEED") {
        Ok(s) => s.parse().unwrap_or_else(|_| panic!("SIBYL_SEED must be a u64, got {s:?}")),
        Err(_) => rand::rng().random(),
    };
    println!("{test}: SIBYL_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

/// Two values are the same if they have the same variant and serialize identically (this
/// distinguishes 1.0 from 1.00 and -0.0 from 0.0; the generators only produce canonical NaNs).
pub fn same(a: &Value, b: &Value) -> bool {
    a.variant_name() == b.variant_name() && encode(a) == encode(b)
}

const SCALARS: &[CqlType] = &[
    CqlType::Ascii,
    CqlType::Bigint,
    CqlType::Blob,
    CqlType::Boolean,
    CqlType::Date,
    CqlType::Decimal,
    CqlType::Double,
    CqlType::Duration,
    CqlType::Float,
    CqlType::Inet,
    CqlType::Int,
    CqlType::Smallint,
    CqlType::Text,
    CqlType::Time,
    CqlType::Timestamp,
    CqlType::Timeuuid,
    CqlType::Tinyint,
    CqlType::Uuid,
    CqlType::Varint,
];

fn scalar(rng: &mut StdRng, allow_duration: bool) -> CqlType {
    loop {
        let t = SCALARS.choose(rng).cloned().unwrap_or(CqlType::Int);
        if allow_duration || t != CqlType::Duration {
            return t;
        }
    }
}

/// A random valid type of depth at most `max_depth`. Top-level collections are sometimes
/// non-frozen; everything inside is frozen, as Cassandra requires.
pub fn random_type(rng: &mut StdRng, max_depth: usize) -> CqlType {
    let t = random_type_inner(rng, max_depth, true, true);
    if rng.random_ratio(1, 40) {
        return if rng.random_bool(0.5) {
            CqlType::Counter
        } else {
            CqlType::Custom("com.example.Opaque".into())
        };
    }
    t
}

fn random_type_inner(rng: &mut StdRng, max_depth: usize, top: bool, allow_duration: bool) -> CqlType {
    if max_depth <= 1 || rng.random_ratio(3, 5) {
        return scalar(rng, allow_duration);
    }
    let frozen = !top || rng.random_bool(0.5);
    let inner =
        |rng: &mut StdRng, allow_duration: bool| random_type_inner(rng, max_depth - 1, false, allow_duration);
    match rng.random_range(0..4) {
        0 => CqlType::List { element: Box::new(inner(rng, allow_duration)), frozen },
        1 => CqlType::Set { element: Box::new(inner(rng, false)), frozen },
        2 => CqlType::Map {
            key: Box::new(inner(rng, false)),
            value: Box::new(inner(rng, allow_duration)),
            frozen,
        },
        _ => {
            let n = rng.random_range(1..4);
            CqlType::Tuple((0..n).map(|_| inner(rng, allow_duration)).collect())
        }
    }
}

/// A random value of `ty`. With `small`, values come from tiny domains so that pairs often tie
/// or share prefixes.
pub fn random_value(rng: &mut StdRng, ty: &CqlType, small: bool) -> Value {
    if ty.allows_empty() && rng.random_ratio(1, 12) {
        return Value::Empty;
    }
    match ty {
        CqlType::Ascii => Value::Ascii(random_string(rng, small, true)),
        CqlType::Text => Value::Text(random_string(rng, small, false)),
        CqlType::Blob => Value::Blob(random_bytes(rng, small)),
        CqlType::Custom(_) => Value::Custom(random_bytes(rng, small)),
        CqlType::Boolean => Value::Boolean(rng.random()),
        CqlType::Bigint => Value::Bigint(random_i64(rng, small)),
        CqlType::Counter => Value::Counter(random_i64(rng, small)),
        CqlType::Timestamp => Value::Timestamp(random_i64(rng, small)),
        CqlType::Int => Value::Int(pick_or(rng, small, &[i32::MIN, -1, 0, 1, i32::MAX], |r| r.random())),
        CqlType::Smallint => {
            Value::Smallint(pick_or(rng, small, &[i16::MIN, -1, 0, 1, i16::MAX], |r| r.random()))
        }
        CqlType::Tinyint => {
            Value::Tinyint(pick_or(rng, small, &[i8::MIN, -1, 0, 1, i8::MAX], |r| r.random()))
        }
        CqlType::Date => {
            Value::Date(pick_or(rng, small, &[0, (1 << 31) - 1, 1 << 31, (1 << 31) + 1, u32::MAX], |r| {
                r.random()
            }))
        }
        CqlType::Time => Value::Time(pick_or(rng, small, &[0, 1, 86_399_999_999_999], |r| {
            r.random_range(0..86_400_000_000_000)
        })),
        CqlType::Float => Value::Float(random_f32(rng, small)),
        CqlType::Double => Value::Double(random_f64(rng, small)),
        CqlType::Uuid => Value::Uuid(random_uuid(rng, small, None)),
        CqlType::Timeuuid => Value::Timeuuid(random_uuid(rng, small, Some(1))),
        CqlType::Inet => Value::Inet(random_inet(rng, small)),
        CqlType::Varint => Value::Varint(random_bigint(rng, small)),
        CqlType::Decimal => Value::Decimal(random_decimal(rng, small)),
        CqlType::Duration => random_duration(rng, small),
        CqlType::List { element, .. } => {
            let n = rng.random_range(0..if small { 3 } else { 5 });
            Value::List((0..n).map(|_| random_value(rng, element, small)).collect())
        }
        CqlType::Set { element, .. } => {
            let n = rng.random_range(0..if small { 3 } else { 5 });
            Value::new_set(element, (0..n).map(|_| random_value(rng, element, small)).collect())
        }
        CqlType::Map { key, value, .. } => {
            let n = rng.random_range(0..if small { 3 } else { 5 });
            Value::new_map(
                key,
                (0..n).map(|_| (random_value(rng, key, small), random_value(rng, value, small))).collect(),
            )
        }
        CqlType::Tuple(types) => Value::Tuple(
            types
                .iter()
                .map(|t| if rng.random_ratio(1, 6) { None } else { Some(random_value(rng, t, small)) })
                .collect(),
        ),
    }
}

fn pick_or<T: Copy>(rng: &mut StdRng, small: bool, edges: &[T], random: impl FnOnce(&mut StdRng) -> T) -> T {
    if small || rng.random_ratio(1, 4) {
        if let Some(v) = edges.choose(rng) {
            return *v;
        }
    }
    random(rng)
}

fn random_i64(rng: &mut StdRng, small: bool) -> i64 {
    match rng.random_range(0..4) {
        _ if small => rng.random_range(-2..3),
        0 => *[i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX].choose(rng).unwrap_or(&0),
        1 => rng.random_range(-1000..1000),
        _ => rng.random(),
    }
}

fn random_string(rng: &mut StdRng, small: bool, ascii: bool) -> String {
    if small {
        return ["", "a", "a\0", "a\0b", "ab", "b", "\0"].choose(rng).unwrap_or(&"").to_string();
    }
    let pool: &[char] = if ascii {
        &['\0', '\u{1}', 'a', 'b', 'Z', '\'', '\\', '\u{7f}', ' ']
    } else {
        &['\0', 'a', 'b', 'Z', '\'', 'é', 'ß', '€', '😀', '\u{ffff}', '\u{10ffff}', '\n']
    };
    let n = rng.random_range(0..12);
    (0..n).map(|_| *pool.choose(rng).unwrap_or(&'a')).collect()
}

fn random_bytes(rng: &mut StdRng, small: bool) -> Bytes {
    if small {
        let options: [&[u8]; 6] = [&[], &[0], &[0, 0], &[0, 1], &[0xff], &[1]];
        return Bytes::from_static(options.choose(rng).copied().unwrap_or(&[]));
    }
    let n = rng.random_range(0..20);
    let pool = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
    Bytes::from(
        (0..n)
            .map(|_| if rng.random_bool(0.5) { *pool.choose(rng).unwrap_or(&0) } else { rng.random() })
            .collect::<Vec<u8>>(),
    )
}

fn random_f32(rng: &mut StdRng, small: bool) -> f32 {
    let edges = [
        0.0,
        -0.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        1e-45,
        -1e-45,
        1.0,
        -1.0,
    ];
    if small || rng.random_ratio(1, 3) {
        return *edges.choose(rng).unwrap_or(&0.0);
    }
    let f = f32::from_bits(rng.random());
    if f.is_nan() {
        f32::NAN
    } else {
        f
    }
}

fn random_f64(rng: &mut StdRng, small: bool) -> f64 {
    let edges = [
        0.0,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        5e-324,
        -5e-324,
        1.0,
        -1.0,
        0.1,
    ];
    if small || rng.random_ratio(1, 3) {
        return *edges.choose(rng).unwrap_or(&0.0);
    }
    let f = f64::from_bits(rng.random());
    if f.is_nan() {
        f64::NAN
    } else {
        f
    }
}

fn random_uuid(rng: &mut StdRng, small: bool, version: Option<u8>) -> Uuid {
    let mut b = [0_u8; 16];
    if small {
        // Few distinct bytes so that timestamps and low halves tie often.
        for x in &mut b {
            *x = *[0x00, 0x7f, 0x80, 0xff].choose(rng).unwrap_or(&0);
        }
    } else {
        rng.fill_bytes(&mut b);
    }
    let version = version.unwrap_or_else(|| *[0, 1, 1, 2, 3, 4, 4, 5, 15].choose(rng).unwrap_or(&4));
    b[6] = (b[6] & 0x0f) | (version << 4);
    Uuid::from_bytes(b)
}

fn random_inet(rng: &mut StdRng, small: bool) -> IpAddr {
    if small {
        let options = ["0.0.0.0", "10.0.0.1", "::", "::1", "a00:1::", "255.255.255.255"];
        return options.choose(rng).unwrap_or(&"::").parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }
    if rng.random_bool(0.5) {
        IpAddr::V4(Ipv4Addr::from(rng.random::<u32>()))
    } else {
        IpAddr::V6(Ipv6Addr::from(rng.random::<u128>()))
    }
}

fn random_bigint(rng: &mut StdRng, small: bool) -> BigInt {
    if small {
        return BigInt::from(rng.random_range(-300..300));
    }
    match rng.random_range(0..3) {
        0 => BigInt::from(random_i64(rng, false)),
        1 => {
            let sign = if rng.random_bool(0.5) { -1 } else { 1 };
            BigInt::from(sign) * BigInt::from(256).pow(rng.random_range(0..20))
                + BigInt::from(rng.random_range(-2..3))
        }
        _ => {
            let n = rng.random_range(1..40);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            BigInt::from_signed_bytes_be(&bytes)
        }
    }
}

fn random_decimal(rng: &mut StdRng, small: bool) -> BigDecimal {
    if small {
        let unscaled = BigInt::from(*[-100, -10, -15, -1, 0, 1, 10, 15, 100, 150].choose(rng).unwrap_or(&0));
        return BigDecimal::new(unscaled, rng.random_range(-2..4));
    }
    let unscaled = match rng.random_range(0..3) {
        // Trailing zeros: the same value at several scales.
        0 => BigInt::from(rng.random_range(-20..20)) * BigInt::from(10).pow(rng.random_range(0..6)),
        _ => random_bigint(rng, false),
    };
    let scale = match rng.random_range(0..10) {
        0 => *[i32::MIN, i32::MIN + 1, i32::MAX].choose(rng).unwrap_or(&0),
        1 => rng.random(),
        _ => rng.random_range(-30..30),
    };
    BigDecimal::new(unscaled, i64::from(scale))
}

fn random_duration(rng: &mut StdRng, small: bool) -> Value {
    let (months, days, nanoseconds): (i32, i32, i64) = if small {
        (rng.random_range(0..2), rng.random_range(0..2), rng.random_range(0..2))
    } else {
        match rng.random_range(0..3) {
            0 => (i32::MAX, i32::MAX, i64::MAX),
            1 => (rng.random_range(0..100), rng.random_range(0..100), rng.random_range(0..100_000_000_000)),
            _ => (
                rng.random_range(0..=i32::MAX),
                rng.random_range(0..=i32::MAX),
                rng.random_range(0..=i64::MAX),
            ),
        }
    };
    if rng.random_bool(0.5) {
        Value::Duration { months: -months, days: -days, nanoseconds: -nanoseconds }
    } else {
        Value::Duration { months, days, nanoseconds }
    }
}
