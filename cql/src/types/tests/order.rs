//! `compare` against the byte order of `to_comparable`, on random pairs and on hand-written
//! cases that pin Cassandra's ordering.

use std::cmp::Ordering::{self, Equal, Greater, Less};
use std::str::FromStr;

use bigdecimal::BigDecimal;
use bytes::Bytes;
use num_bigint::BigInt;
use uuid::Uuid;

use super::gen::{random_type, random_value, rng, same};
use crate::types::{compare, from_comparable_split, to_comparable, to_comparable_split, CqlType, Value};

fn references_decimal(ty: &CqlType) -> bool {
    match ty {
        CqlType::Decimal => true,
        CqlType::List { element, .. } | CqlType::Set { element, .. } => references_decimal(element),
        CqlType::Map { key, value, .. } => references_decimal(key) || references_decimal(value),
        CqlType::Tuple(types) => types.iter().any(references_decimal),
        _ => false,
    }
}

/// The byte order agrees with `compare`; equal encodings only for the same value; values that
/// compare equal but differ are decimals of different scales.
fn check_pair(ty: &CqlType, a: &Value, b: &Value) {
    let expected = compare(ty, a, b);
    let (ca, cb) = (to_comparable(a), to_comparable(b));
    let actual = ca.cmp(&cb);
    if expected == Equal {
        assert!(
            actual == Equal || references_decimal(ty),
            "{ty}: {a:?} vs {b:?} compare Equal, bytes {actual:?}"
        );
    } else {
        assert_eq!(actual, expected, "{ty}: {a:?} vs {b:?}\n{ca:02x?}\n{cb:02x?}");
    }
    assert_eq!(ca == cb, same(a, b), "{ty}: {a:?} vs {b:?}");
    assert_eq!(compare(ty, b, a), expected.reverse(), "{ty}: antisymmetry");
}

#[test]
fn compare_equals_comparable_byte_order_on_random_pairs() {
    let mut rng = rng("compare_equals_comparable_byte_order_on_random_pairs");
    for i in 0..6000 {
        let ty = random_type(&mut rng, 3);
        let small = i % 2 == 0;
        let a = random_value(&mut rng, &ty, small);
        let b = random_value(&mut rng, &ty, small);
        check_pair(&ty, &a, &b);
        check_pair(&ty, &a, &a);
    }
}

#[test]
fn sorting_by_bytes_is_sorting_by_compare() {
    let mut rng = rng("sorting_by_bytes_is_sorting_by_compare");
    for i in 0..300 {
        let ty = random_type(&mut rng, 3);
        let mut values: Vec<Value> = (0..24).map(|j| random_value(&mut rng, &ty, (i + j) % 2 == 0)).collect();
        values.sort_by_key(to_comparable);
        for pair in values.windows(2) {
            assert_ne!(compare(&ty, &pair[0], &pair[1]), Greater, "{ty}: {:?} then {:?}", pair[0], pair[1]);
        }
    }
}

#[test]
fn decimals_compare_like_java_bigdecimal() {
    let mut rng = rng("decimals_compare_like_java_bigdecimal");
    for _ in 0..3000 {
        let small = rand::Rng::random_bool(&mut rng, 0.5);
        let (a, b) = match (
            random_value(&mut rng, &CqlType::Decimal, small),
            random_value(&mut rng, &CqlType::Decimal, small),
        ) {
            (Value::Decimal(a), Value::Decimal(b)) => (a, b),
            _ => continue,
        };
        // bigdecimal's own comparison is the reference when the scales are close (it may try to
        // materialize 10^(scale difference) otherwise).
        if (a.as_bigint_and_scale().1 - b.as_bigint_and_scale().1).abs() > 1000 {
            continue;
        }
        assert_eq!(
            compare(&CqlType::Decimal, &Value::Decimal(a.clone()), &Value::Decimal(b.clone())),
            a.cmp(&b),
            "{a} {b}"
        );
    }
}

/// Asserts `values` are strictly increasing under both `compare` and the byte order.
fn assert_increasing(ty: &CqlType, values: &[Value]) {
    for (i, a) in values.iter().enumerate() {
        for (j, b) in values.iter().enumerate() {
            let expected: Ordering = i.cmp(&j);
            assert_eq!(compare(ty, a, b), expected, "{ty}: {a:?} vs {b:?}");
            assert_eq!(to_comparable(a).cmp(&to_comparable(b)), expected, "{ty} bytes: {a:?} vs {b:?}");
        }
    }
}

fn dec(s: &str) -> Value {
    Value::Decimal(BigDecimal::from_str(s).unwrap())
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

#[test]
fn cassandra_orderings() {
    assert_increasing(
        &CqlType::Int,
        &[
            Value::Empty,
            Value::Int(i32::MIN),
            Value::Int(-1),
            Value::Int(0),
            Value::Int(1),
            Value::Int(i32::MAX),
        ],
    );
    assert_increasing(
        &CqlType::Bigint,
        &[
            Value::Empty,
            Value::Bigint(i64::MIN),
            Value::Bigint(-1),
            Value::Bigint(0),
            Value::Bigint(i64::MAX),
        ],
    );
    assert_increasing(
        &CqlType::Tinyint,
        &[Value::Tinyint(-128), Value::Tinyint(-1), Value::Tinyint(0), Value::Tinyint(127)],
    );
    assert_increasing(
        &CqlType::Smallint,
        &[Value::Smallint(-32768), Value::Smallint(-1), Value::Smallint(0), Value::Smallint(1)],
    );
    assert_increasing(
        &CqlType::Timestamp,
        &[Value::Empty, Value::Timestamp(-1), Value::Timestamp(0), Value::Timestamp(1)],
    );
    assert_increasing(&CqlType::Boolean, &[Value::Empty, Value::Boolean(false), Value::Boolean(true)]);
    assert_increasing(
        &CqlType::Date,
        &[Value::Date(0), Value::Date((1 << 31) - 1), Value::Date(1 << 31), Value::Date(u32::MAX)],
    );
    assert_increasing(&CqlType::Time, &[Value::Time(0), Value::Time(1), Value::Time(86_399_999_999_999)]);
    assert_increasing(
        &CqlType::Float,
        &[
            Value::Empty,
            Value::Float(f32::NEG_INFINITY),
            Value::Float(f32::MIN),
            Value::Float(-1.0),
            Value::Float(-f32::MIN_POSITIVE),
            Value::Float(-1e-45),
            Value::Float(-0.0),
            Value::Float(0.0),
            Value::Float(1e-45),
            Value::Float(1.0),
            Value::Float(f32::MAX),
            Value::Float(f32::INFINITY),
            Value::Float(f32::NAN),
        ],
    );
    assert_increasing(
        &CqlType::Double,
        &[
            Value::Double(f64::NEG_INFINITY),
            Value::Double(-0.5),
            Value::Double(-0.0),
            Value::Double(0.0),
            Value::Double(0.5),
            Value::Double(f64::INFINITY),
            Value::Double(f64::NAN),
        ],
    );
    // Every NaN is the same NaN.
    assert_eq!(compare(&CqlType::Double, &Value::Double(f64::NAN), &Value::Double(-f64::NAN)), Equal);
    assert_eq!(
        compare(&CqlType::Float, &Value::Float(f32::NAN), &Value::Float(f32::from_bits(0xffc0_0001))),
        Equal
    );
    assert_eq!(
        to_comparable(&Value::Float(f32::NAN)),
        to_comparable(&Value::Float(f32::from_bits(0xffc0_0001)))
    );
    assert_eq!(
        to_comparable(&Value::Float(f32::NAN)),
        to_comparable(&Value::Float(f32::from_bits(0x7f80_0001)))
    );
    assert_eq!(
        to_comparable(&Value::Double(f64::NAN)),
        to_comparable(&Value::Double(f64::from_bits(0xfff0_0000_0000_0001)))
    );
    let big = |s: &str| Value::Varint(BigInt::from_str(s).unwrap());
    assert_increasing(
        &CqlType::Varint,
        &[
            Value::Empty,
            big("-1000000000000000000000000000000"),
            big("-18446744073709551616"),
            big("-256"),
            big("-255"),
            big("-129"),
            big("-128"),
            big("-1"),
            big("0"),
            big("1"),
            big("127"),
            big("128"),
            big("255"),
            big("256"),
            big("18446744073709551616"),
            big("1000000000000000000000000000000"),
        ],
    );
    assert_increasing(
        &CqlType::Decimal,
        &[
            Value::Empty,
            dec("-1E+10"),
            dec("-100"),
            dec("-99.9"),
            dec("-1.5"),
            dec("-1.25"),
            dec("-0.001"),
            dec("0"),
            dec("0.0001"),
            dec("0.001"),
            dec("0.5"),
            dec("1"),
            dec("1.0000001"),
            dec("1.5"),
            dec("9.99"),
            dec("10"),
            dec("1E+10"),
        ],
    );
    // Equal values of different scales: equal for compare, ordered by scale in bytes.
    for (a, b) in [("1", "1.0"), ("1.0", "1.00"), ("0", "0.00"), ("1E+1", "10")] {
        assert_eq!(compare(&CqlType::Decimal, &dec(a), &dec(b)), Equal);
        assert_eq!(to_comparable(&dec(a)).cmp(&to_comparable(&dec(b))), Less, "{a} {b}");
    }
    for (a, b) in [("-1", "-1.0"), ("-1.0", "-1.00")] {
        assert_eq!(to_comparable(&dec(a)).cmp(&to_comparable(&dec(b))), Less, "{a} {b}");
    }
    // The scale only breaks ties after everything else: (1.0, 5) > (1.00, 3) as in Cassandra.
    let pair = CqlType::Tuple(vec![CqlType::Decimal, CqlType::Int]);
    let p = |d: &str, i: i32| Value::Tuple(vec![Some(dec(d)), Some(Value::Int(i))]);
    assert_eq!(compare(&pair, &p("1.0", 5), &p("1.00", 3)), Greater);
    assert_eq!(to_comparable(&p("1.0", 5)).cmp(&to_comparable(&p("1.00", 3))), Greater);
    assert_eq!(to_comparable(&p("1.0", 3)).cmp(&to_comparable(&p("1.00", 3))), Less);
    // Keys of several components: order parts first, then tie-break parts.
    let key = |d: &str, i: i32| {
        let (o1, t1) = to_comparable_split(&dec(d));
        let (o2, t2) = to_comparable_split(&Value::Int(i));
        [o1, o2, t1, t2].concat()
    };
    assert!(key("1.0", 5) > key("1.00", 3));
    assert!(key("1.0", 3) < key("1.00", 3));
    let (order, tiebreak) = to_comparable_split(&dec("1.50"));
    assert_eq!(
        from_comparable_split(&CqlType::Decimal, &order, &tiebreak).map(|v| to_comparable(&v)),
        Ok(to_comparable(&dec("1.50")))
    );
    assert_eq!(to_comparable_split(&Value::Int(1)).1, Vec::<u8>::new());
    // UUIDType: version first, then time for v1, then unsigned bytes.
    assert_increasing(
        &CqlType::Uuid,
        &[
            Value::Empty,
            Value::Uuid(uuid("ffffffff-ffff-0fff-ffff-ffffffffffff")),
            Value::Uuid(uuid("ffffffff-ffff-1000-8000-000000000000")),
            Value::Uuid(uuid("00000000-0000-1001-8000-000000000000")),
            Value::Uuid(uuid("00000000-0000-1001-ff00-000000000000")),
            Value::Uuid(uuid("00000000-0000-4000-8000-000000000000")),
            Value::Uuid(uuid("00000000-0000-4000-8000-000000000001")),
            Value::Uuid(uuid("00000000-0001-4000-0000-000000000000")),
            Value::Uuid(uuid("00000000-0000-5000-0000-000000000000")),
        ],
    );
    // TimeUUIDType: time, then the low bytes as signed bytes (0x80 < 0x7f).
    assert_increasing(
        &CqlType::Timeuuid,
        &[
            Value::Empty,
            Value::Timeuuid(uuid("ffffffff-ffff-1000-8080-808080808080")),
            Value::Timeuuid(uuid("ffffffff-ffff-1000-ff00-000000000000")),
            Value::Timeuuid(uuid("ffffffff-ffff-1000-0000-000000000000")),
            Value::Timeuuid(uuid("ffffffff-ffff-1000-7f7f-7f7f7f7f7f7f")),
            Value::Timeuuid(uuid("00000000-0000-1001-8080-808080808080")),
        ],
    );
    let ip = |s: &str| Value::Inet(s.parse().unwrap());
    assert_increasing(
        &CqlType::Inet,
        &[
            Value::Empty,
            ip("::"),
            ip("::1"),
            ip("ff::"),
            ip("9.255.255.255"),
            ip("10.0.0.0"),
            ip("a00::"),
            ip("10.0.0.1"),
            ip("a00:1::"),
            ip("ff00::"),
        ],
    );
    let t = |s: &str| Value::Text(s.to_string());
    assert_increasing(
        &CqlType::Text,
        &[
            t(""),
            t("\0"),
            t("A"),
            t("Z"),
            t("a"),
            t("a\0"),
            t("a\0\0"),
            t("a\u{1}"),
            t("ab"),
            t("é"),
            t("😀"),
        ],
    );
    let b = |s: &'static [u8]| Value::Blob(Bytes::from_static(s));
    assert_increasing(
        &CqlType::Blob,
        &[b(b""), b(b"\x00"), b(b"\x00\x00"), b(b"\x00\xff"), b(b"\x01"), b(b"\x7f"), b(b"\x80"), b(b"\xff")],
    );
    // Durations order by their serialized bytes, as DurationType does.
    let d = |months, days, nanoseconds| Value::Duration { months, days, nanoseconds };
    assert_increasing(
        &CqlType::Duration,
        &[d(0, 0, 0), d(0, 0, -1), d(0, 0, 1), d(0, -1, 0), d(0, 1, 0), d(-1, 0, 0), d(1, 0, 0), d(64, 0, 0)],
    );
}

#[test]
fn nested_orderings() {
    let list = CqlType::List { element: Box::new(CqlType::Int), frozen: true };
    let l = |xs: &[i32]| Value::List(xs.iter().map(|x| Value::Int(*x)).collect());
    assert_increasing(
        &list,
        &[l(&[]), Value::List(vec![Value::Empty]), l(&[-1]), l(&[1]), l(&[1, -5]), l(&[1, 2]), l(&[2])],
    );
    let texts = CqlType::List { element: Box::new(CqlType::Text), frozen: true };
    let tl = |xs: &[&str]| Value::List(xs.iter().map(|x| Value::Text(x.to_string())).collect());
    assert_increasing(
        &texts,
        &[
            tl(&[]),
            tl(&[""]),
            tl(&["", ""]),
            tl(&["", "a"]),
            tl(&["\0"]),
            tl(&["a"]),
            tl(&["a", ""]),
            tl(&["a\0"]),
            tl(&["ab"]),
        ],
    );
    let tuple = CqlType::Tuple(vec![CqlType::Int, CqlType::Text]);
    let tu = |a: Option<Value>, b: Option<&str>| Value::Tuple(vec![a, b.map(|s| Value::Text(s.to_string()))]);
    assert_increasing(
        &tuple,
        &[
            Value::Empty,
            tu(None, None),
            tu(None, Some("")),
            tu(Some(Value::Empty), None),
            tu(Some(Value::Int(-1)), Some("z")),
            tu(Some(Value::Int(0)), None),
            tu(Some(Value::Int(0)), Some("")),
            tu(Some(Value::Int(0)), Some("a")),
        ],
    );
    let map = CqlType::Map { key: Box::new(CqlType::Text), value: Box::new(CqlType::Int), frozen: true };
    let m = |xs: &[(&str, i32)]| {
        Value::Map(xs.iter().map(|(k, v)| (Value::Text(k.to_string()), Value::Int(*v))).collect())
    };
    assert_increasing(
        &map,
        &[m(&[]), m(&[("a", 1)]), m(&[("a", 1), ("b", 0)]), m(&[("a", 2)]), m(&[("b", 0)])],
    );
    let set = CqlType::Set { element: Box::new(CqlType::Decimal), frozen: true };
    assert_increasing(
        &set,
        &[
            Value::Set(vec![]),
            Value::Set(vec![dec("-1")]),
            Value::Set(vec![dec("-1"), dec("2")]),
            Value::Set(vec![dec("1.5")]),
        ],
    );
}
