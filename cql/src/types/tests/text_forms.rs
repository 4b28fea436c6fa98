//! Text forms: CQL literals read back as the same value; timestamps, dates, times and
//! durations round-trip through their string forms.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use num_bigint::BigInt;
use rand::Rng;

use super::gen::{random_value, rng, same};
use crate::types::{
    from_string_literal, parse_date, parse_duration, parse_inet, parse_time, parse_timestamp, parse_uuid,
    to_cql_literal, to_display, CqlType, Value,
};

fn unquote(s: &str) -> String {
    let inner =
        s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')).unwrap_or_else(|| panic!("not quoted: {s}"));
    inner.replace("''", "'")
}

/// Reads a scalar CQL literal back, the way the CQL parser and Cassandra's string conversions
/// would.
fn read_literal(ty: &CqlType, lit: &str) -> Value {
    match ty {
        CqlType::Ascii => Value::Ascii(unquote(lit)),
        CqlType::Text => Value::Text(unquote(lit)),
        CqlType::Timestamp if lit.starts_with('\'') => from_string_literal(ty, &unquote(lit)).unwrap(),
        CqlType::Timestamp => Value::Timestamp(lit.parse().unwrap()),
        CqlType::Date | CqlType::Time | CqlType::Inet => from_string_literal(ty, &unquote(lit)).unwrap(),
        CqlType::Bigint => Value::Bigint(lit.parse().unwrap()),
        CqlType::Int => Value::Int(lit.parse().unwrap()),
        CqlType::Smallint => Value::Smallint(lit.parse().unwrap()),
        CqlType::Tinyint => Value::Tinyint(lit.parse().unwrap()),
        CqlType::Varint => Value::Varint(BigInt::from_str(lit).unwrap()),
        CqlType::Decimal => Value::Decimal(BigDecimal::from_str(lit).unwrap()),
        CqlType::Boolean => Value::Boolean(lit.parse().unwrap()),
        CqlType::Float => Value::Float(lit.parse().unwrap()),
        CqlType::Double => Value::Double(lit.parse().unwrap()),
        CqlType::Uuid => Value::Uuid(parse_uuid(lit).unwrap()),
        CqlType::Timeuuid => Value::Timeuuid(parse_uuid(lit).unwrap()),
        CqlType::Duration => {
            let (months, days, nanoseconds) = parse_duration(lit).unwrap();
            Value::Duration { months, days, nanoseconds }
        }
        CqlType::Blob => {
            let hex = lit.strip_prefix("0x").unwrap();
            let bytes: Vec<u8> =
                (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            Value::Blob(bytes.into())
        }
        other => panic!("no literal reader for {other}"),
    }
}

#[test]
fn scalar_literals_read_back_as_the_same_value() {
    let mut rng = rng("scalar_literals_read_back_as_the_same_value");
    let types = [
        CqlType::Ascii,
        CqlType::Text,
        CqlType::Timestamp,
        CqlType::Date,
        CqlType::Time,
        CqlType::Inet,
        CqlType::Bigint,
        CqlType::Int,
        CqlType::Smallint,
        CqlType::Tinyint,
        CqlType::Varint,
        CqlType::Decimal,
        CqlType::Boolean,
        CqlType::Float,
        CqlType::Double,
        CqlType::Uuid,
        CqlType::Timeuuid,
        CqlType::Duration,
        CqlType::Blob,
    ];
    for i in 0..5000 {
        let ty = &types[i % types.len()];
        let small = rng.random_bool(0.3);
        let v = random_value(&mut rng, ty, small);
        if matches!(v, Value::Empty) {
            continue;
        }
        let lit = to_cql_literal(&v);
        let back = read_literal(ty, &lit);
        let nan = matches!(v, Value::Float(f) if f.is_nan()) || matches!(v, Value::Double(f) if f.is_nan());
        assert!(nan || same(&v, &back), "{ty}: {v:?} -> {lit} -> {back:?}");
    }
}

#[test]
fn timestamps_dates_and_times_round_trip_through_strings() {
    let mut rng = rng("timestamps_dates_and_times_round_trip_through_strings");
    for _ in 0..5000 {
        // Years 1..=9999.
        let ms = rng.random_range(-62_135_596_800_000..253_402_300_800_000_i64);
        let lit = to_cql_literal(&Value::Timestamp(ms));
        assert_eq!(parse_timestamp(&unquote(&lit)), Ok(ms), "{lit}");
        // cqlsh's display form (microseconds, +0000) is not a Cassandra input format, but its
        // date and time up to milliseconds are.
        // (Beyond about year 2200 cqlsh's float arithmetic shows microseconds that are off.)
        let shown = to_display(&Value::Timestamp(ms));
        if shown.len() == "2011-02-03 04:05:00.000000+0000".len() && ms.abs() < 7_000_000_000_000 {
            let millis = format!("{}+0000", &shown[..23]);
            assert_eq!(parse_timestamp(&millis), Ok(ms), "{shown}");
        }
        let date: u32 = rng.random();
        assert_eq!(parse_date(&unquote(&to_cql_literal(&Value::Date(date)))), Ok(date));
        let time = rng.random_range(0..86_400_000_000_000_i64);
        assert_eq!(parse_time(&unquote(&to_cql_literal(&Value::Time(time)))), Ok(time));
        assert_eq!(parse_time(&to_display(&Value::Time(time))), Ok(time));
    }
    assert_eq!(
        parse_inet(&unquote(&to_cql_literal(&Value::Inet("::ffff:1.2.3.4".parse().unwrap())))),
        Ok("::ffff:1.2.3.4".parse().unwrap())
    );
}

#[test]
fn durations_round_trip_through_strings() {
    let mut rng = rng("durations_round_trip_through_strings");
    for _ in 0..5000 {
        let small = rng.random_bool(0.3);
        let v = random_value(&mut rng, &CqlType::Duration, small);
        let Value::Duration { months, days, nanoseconds } = v else { continue };
        assert_eq!(parse_duration(&to_cql_literal(&v)), Ok((months, days, nanoseconds)), "{v:?}");
        let shown = to_display(&v);
        if !shown.is_empty() {
            assert_eq!(parse_duration(&shown), Ok((months, days, nanoseconds)), "{shown}");
        }
    }
}

#[test]
fn collection_literals_and_display() {
    let set = CqlType::Set { element: Box::new(CqlType::Text), frozen: false };
    let v = Value::new_set(&CqlType::Text, vec![Value::Text("b".into()), Value::Text("a'b".into())]);
    assert_eq!(v.check(&set), Ok(()));
    assert_eq!(to_cql_literal(&v), "{'a''b', 'b'}");
    assert_eq!(to_display(&v), "{'a''b', 'b'}");
    let nested = Value::List(vec![
        Value::Tuple(vec![Some(Value::Double(1.5)), None]),
        Value::Tuple(vec![None, Some(Value::Boolean(true))]),
    ]);
    assert_eq!(to_cql_literal(&nested), "[(1.5, null), (null, true)]");
    assert_eq!(to_display(&nested), "[(1.5, null), (null, True)]");
    let m = Value::Map(vec![(Value::Int(1), Value::Map(vec![(Value::Timestamp(0), Value::Date(1 << 31))]))]);
    assert_eq!(to_cql_literal(&m), "{1: {'1970-01-01T00:00:00.000Z': '1970-01-01'}}");
    assert_eq!(to_display(&m), "{1: {'1970-01-01 00:00:00.000000+0000': 1970-01-01}}");
}
