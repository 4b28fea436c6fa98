//! Known-answer vectors: Cassandra's serialized forms (computed from the specification of each
//! serializer, independently of the encoder) and the documented byte-comparable forms.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use bytes::Bytes;
use num_bigint::BigInt;
use uuid::Uuid;

use crate::types::{decode, encode, from_comparable, to_comparable, CqlType, TypeError, Value};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn dec(s: &str) -> Value {
    Value::Decimal(BigDecimal::from_str(s).unwrap())
}

fn list(t: CqlType) -> CqlType {
    CqlType::List { element: Box::new(t), frozen: true }
}

/// Encodes to exactly `bytes` and decodes back to the same serialization.
fn wire(ty: &CqlType, v: Value, bytes: &str) {
    let expected = hex(bytes);
    assert_eq!(encode(&v), expected, "{ty} {v:?}");
    let back = decode(ty, &expected).unwrap_or_else(|e| panic!("{ty} {bytes}: {e}"));
    assert_eq!(encode(&back), expected);
}

#[test]
fn serialized_forms() {
    wire(&CqlType::Int, Value::Int(1), "00000001");
    wire(&CqlType::Int, Value::Int(-1), "ffffffff");
    wire(&CqlType::Bigint, Value::Bigint(-2), "fffffffffffffffe");
    wire(&CqlType::Smallint, Value::Smallint(258), "0102");
    wire(&CqlType::Tinyint, Value::Tinyint(-128), "80");
    wire(&CqlType::Boolean, Value::Boolean(true), "01");
    wire(&CqlType::Float, Value::Float(1.0), "3f800000");
    wire(&CqlType::Double, Value::Double(-2.5), "c004000000000000");
    wire(&CqlType::Text, Value::Text("é".into()), "c3a9");
    wire(&CqlType::Ascii, Value::Ascii("a".into()), "61");
    wire(&CqlType::Date, Value::Date(1 << 31), "80000000");
    wire(&CqlType::Time, Value::Time(1), "0000000000000001");
    wire(&CqlType::Timestamp, Value::Timestamp(1_296_705_900_000), "0000012de9b1cde0");
    wire(&CqlType::Inet, Value::Inet("127.0.0.1".parse().unwrap()), "7f000001");
    wire(&CqlType::Inet, Value::Inet("::1".parse().unwrap()), "00000000000000000000000000000001");
    wire(
        &CqlType::Uuid,
        Value::Uuid(Uuid::parse_str("123e4567-e89b-12d3-a456-426614174000").unwrap()),
        "123e4567e89b12d3a456426614174000",
    );
    // varint: minimal two's complement (Java's BigInteger.toByteArray).
    for (v, bytes) in [
        ("0", "00"),
        ("1", "01"),
        ("127", "7f"),
        ("128", "0080"),
        ("255", "00ff"),
        ("256", "0100"),
        ("-1", "ff"),
        ("-128", "80"),
        ("-129", "ff7f"),
        ("-256", "ff00"),
    ] {
        wire(&CqlType::Varint, Value::Varint(BigInt::from_str(v).unwrap()), bytes);
    }
    // decimal: [int scale][varint unscaled].
    wire(&CqlType::Decimal, dec("1.5"), "00000001 0f");
    wire(&CqlType::Decimal, dec("-1.5"), "00000001 f1");
    wire(&CqlType::Decimal, dec("0"), "00000000 00");
    wire(&CqlType::Decimal, dec("0.00"), "00000002 00");
    wire(&CqlType::Decimal, dec("1E+5"), "fffffffb 01");
    wire(&CqlType::Decimal, dec("1.28"), "00000002 0080");
    // duration: three zigzag vints. 1h = 3.6e12 ns, zigzag 7.2e12 = 0x068c61714000 (43 bits):
    // 7 bytes, the first with six leading 1 bits.
    let d = |months, days, nanoseconds| Value::Duration { months, days, nanoseconds };
    wire(&CqlType::Duration, d(0, 0, 3_600_000_000_000), "00 00 fc068c61714000");
    wire(&CqlType::Duration, d(1, 2, 3), "02 04 06");
    wire(&CqlType::Duration, d(0, -1, 0), "00 01 00");
    wire(&CqlType::Duration, d(-1, -1, -1), "01 01 01");
    wire(&CqlType::Duration, d(64, 0, 0), "8080 00 00");
    wire(&CqlType::Duration, d(i32::MAX, 0, 0), "f0fffffffe 00 00");
    wire(&CqlType::Duration, d(0, 0, i64::MIN), "00 00 ffffffffffffffffff");
    // collections: [int n] then [int len][bytes] per element.
    wire(
        &list(CqlType::Int),
        Value::List(vec![Value::Int(1), Value::Int(2)]),
        "00000002 00000004 00000001 00000004 00000002",
    );
    wire(&list(CqlType::Int), Value::List(vec![]), "00000000");
    wire(&list(CqlType::Int), Value::List(vec![Value::Empty]), "00000001 00000000");
    let map = CqlType::Map { key: Box::new(CqlType::Text), value: Box::new(CqlType::Int), frozen: false };
    wire(
        &map,
        Value::Map(vec![(Value::Text("a".into()), Value::Int(1))]),
        "00000001 00000001 61 00000004 00000001",
    );
    // tuples: [int len][bytes] per field, -1 for null.
    let tuple = CqlType::Tuple(vec![CqlType::Int, CqlType::Text]);
    wire(&tuple, Value::Tuple(vec![Some(Value::Int(1)), None]), "00000004 00000001 ffffffff");
    wire(&tuple, Value::Tuple(vec![None, Some(Value::Text(String::new()))]), "ffffffff 00000000");
}

#[test]
fn lenient_inputs_cassandra_accepts() {
    // Non-minimal varints, as Java's BigInteger reads them.
    assert_eq!(decode(&CqlType::Varint, &hex("0001")), Ok(Value::Varint(BigInt::from(1))));
    assert_eq!(decode(&CqlType::Varint, &hex("ffff")), Ok(Value::Varint(BigInt::from(-1))));
    assert_eq!(decode(&CqlType::Decimal, &hex("00000001 000f")), Ok(dec("1.5")));
    // Any non-zero byte is true.
    assert_eq!(decode(&CqlType::Boolean, &hex("02")), Ok(Value::Boolean(true)));
    // Empty values.
    for ty in [
        CqlType::Int,
        CqlType::Bigint,
        CqlType::Uuid,
        CqlType::Timestamp,
        CqlType::Decimal,
        CqlType::Varint,
        CqlType::Inet,
        CqlType::Boolean,
    ] {
        assert_eq!(decode(&ty, &[]), Ok(Value::Empty), "{ty}");
    }
    assert_eq!(decode(&CqlType::Text, &[]), Ok(Value::Text(String::new())));
    assert_eq!(decode(&CqlType::Blob, &[]), Ok(Value::Blob(Bytes::new())));
    // Missing trailing tuple fields are nulls.
    let tuple = CqlType::Tuple(vec![CqlType::Int, CqlType::Text]);
    assert_eq!(decode(&tuple, &hex("00000004 00000001")), Ok(Value::Tuple(vec![Some(Value::Int(1)), None])));
    assert_eq!(decode(&tuple, &[]), Ok(Value::Empty));
    // Non-minimal duration vints.
    assert_eq!(
        decode(&CqlType::Duration, &hex("8002 00 00")),
        Ok(Value::Duration { months: 1, days: 0, nanoseconds: 0 })
    );
    // Sets and maps are sorted and deduplicated.
    let set = CqlType::Set { element: Box::new(CqlType::Int), frozen: true };
    assert_eq!(
        decode(&set, &hex("00000003 00000004 00000002 00000004 00000001 00000004 00000002")),
        Ok(Value::Set(vec![Value::Int(1), Value::Int(2)]))
    );
}

fn marshal_error(ty: &CqlType, bytes: &str) -> String {
    match decode(ty, &hex(bytes)) {
        Err(TypeError::Marshal(m)) => m,
        other => panic!("{ty} {bytes}: {other:?}"),
    }
}

#[test]
fn cassandras_error_messages() {
    assert_eq!(marshal_error(&CqlType::Int, "000001"), "Expected 4 or 0 byte int (3)");
    assert_eq!(marshal_error(&CqlType::Bigint, "00"), "Expected 8 or 0 byte long (1)");
    assert_eq!(marshal_error(&CqlType::Smallint, ""), "Expected 2 bytes for a smallint (0)");
    assert_eq!(marshal_error(&CqlType::Tinyint, "0000"), "Expected 1 byte for a tinyint (2)");
    assert_eq!(marshal_error(&CqlType::Boolean, "0000"), "Expected 1 or 0 byte value (2)");
    assert_eq!(marshal_error(&CqlType::Date, ""), "Expected 4 byte long for date (0)");
    assert_eq!(marshal_error(&CqlType::Time, "00"), "Expected 8 byte long for time (1)");
    assert_eq!(marshal_error(&CqlType::Timestamp, "00"), "Expected 8 or 0 byte long for date (1)");
    assert_eq!(marshal_error(&CqlType::Float, "00"), "Expected 4 or 0 byte value for a float (1)");
    assert_eq!(marshal_error(&CqlType::Double, "00"), "Expected 8 or 0 byte value for a double (1)");
    assert_eq!(marshal_error(&CqlType::Uuid, "00"), "UUID should be 16 or 0 bytes (1)");
    assert_eq!(marshal_error(&CqlType::Timeuuid, "00"), "TimeUUID should be 16 or 0 bytes (1)");
    assert_eq!(
        marshal_error(&CqlType::Timeuuid, "123e4567e89b42d3a456426614174000"),
        "Invalid version for TimeUUID type."
    );
    assert_eq!(marshal_error(&CqlType::Decimal, "000001"), "Expected 0 or at least 4 bytes (3)");
    assert_eq!(marshal_error(&CqlType::Inet, "0102"), "Expected 4 or 16 byte inetaddress; got 0x0102");
    assert_eq!(marshal_error(&CqlType::Ascii, "61e9"), "Invalid byte for ascii: -23");
    assert_eq!(marshal_error(&CqlType::Text, "61ff62"), "Invalid UTF-8 bytes at offset 1: 0xff62");
    assert_eq!(marshal_error(&CqlType::Duration, "0000"), "Expected at least 3 bytes for a duration (2)");
    assert_eq!(
        marshal_error(&CqlType::Duration, "02 01 00"),
        "The duration months, days and nanoseconds must be all of the same sign (1, -1, 0)"
    );
    assert_eq!(
        marshal_error(&CqlType::Duration, "f100000001 00 00"),
        "The duration months must be a 32 bits integer but was: -2147483649"
    );
    assert_eq!(
        marshal_error(&CqlType::Duration, "f100000000 00 00"),
        "The duration months must be a 32 bits integer but was: 2147483648"
    );
    assert_eq!(marshal_error(&list(CqlType::Int), ""), "Not enough bytes to read a list");
    assert_eq!(marshal_error(&list(CqlType::Int), "ffffffff"), "The data cannot be deserialized as a list");
    assert_eq!(
        marshal_error(&list(CqlType::Int), "00000001 ffffffff"),
        "null is not supported inside collections"
    );
    assert_eq!(
        marshal_error(&list(CqlType::Int), "00000000 00"),
        "Unexpected extraneous bytes after list value"
    );
    assert_eq!(marshal_error(&list(CqlType::Int), "7fffffff 00000004"), "Not enough bytes to read a list");
    let tuple = CqlType::Tuple(vec![CqlType::Int]);
    assert_eq!(
        marshal_error(&tuple, "00000004 00000001 ffffffff"),
        "Invalid remaining data after end of tuple value"
    );
    assert_eq!(marshal_error(&tuple, "0000"), "Not enough bytes to read size of 0th component");
    assert_eq!(marshal_error(&tuple, "00000008 00000001"), "Not enough bytes to read 0th component");
}

/// The byte-comparable form is exactly `bytes` and decodes back.
fn comparable(ty: &CqlType, v: Value, bytes: &str) {
    let expected = hex(bytes);
    assert_eq!(to_comparable(&v), expected, "{ty} {v:?}");
    let back = from_comparable(ty, &expected).unwrap_or_else(|e| panic!("{ty} {bytes}: {e}"));
    assert_eq!(to_comparable(&back), expected);
    assert_eq!(encode(&back), encode(&v));
}

#[test]
fn comparable_forms() {
    comparable(&CqlType::Int, Value::Int(1), "80000001");
    comparable(&CqlType::Int, Value::Int(-1), "7fffffff");
    comparable(&CqlType::Int, Value::Empty, "");
    comparable(&CqlType::Bigint, Value::Bigint(0), "8000000000000000");
    comparable(&CqlType::Tinyint, Value::Tinyint(-128), "00");
    comparable(&CqlType::Boolean, Value::Boolean(true), "01");
    comparable(&CqlType::Date, Value::Date(1 << 31), "80000000");
    comparable(&CqlType::Time, Value::Time(1), "0000000000000001");
    comparable(&CqlType::Float, Value::Float(1.0), "bf800000");
    comparable(&CqlType::Float, Value::Float(-1.0), "407fffff");
    comparable(&CqlType::Float, Value::Float(0.0), "80000000");
    comparable(&CqlType::Float, Value::Float(-0.0), "7fffffff");
    comparable(&CqlType::Float, Value::Float(f32::NAN), "ffc00000");
    comparable(&CqlType::Double, Value::Double(1.0), "bff0000000000000");
    comparable(&CqlType::Text, Value::Text("a\0b".into()), "610062");
    comparable(&CqlType::Inet, Value::Inet("10.0.0.1".parse().unwrap()), "0a000001");
    comparable(
        &CqlType::Uuid,
        Value::Uuid(Uuid::parse_str("123e4567-e89b-12d3-a456-426614174000").unwrap()),
        "01 12d3e89b123e4567 a456426614174000",
    );
    comparable(
        &CqlType::Uuid,
        Value::Uuid(Uuid::parse_str("123e4567-e89b-42d3-a456-426614174000").unwrap()),
        "04 123e4567e89b42d3 a456426614174000",
    );
    comparable(
        &CqlType::Timeuuid,
        Value::Timeuuid(Uuid::parse_str("123e4567-e89b-12d3-a456-426614174000").unwrap()),
        "12d3e89b123e4567 24d6c2e69497c080",
    );
    let d = |months, days, nanoseconds| Value::Duration { months, days, nanoseconds };
    comparable(&CqlType::Duration, d(1, 2, 3), "020406");
    // varint: 80 zero | C0 len magnitude | 40 ~(len magnitude); len as a signed integer
    // (0x80 + byte count, then the bytes).
    comparable(&CqlType::Varint, Value::Varint(BigInt::from(0)), "80");
    comparable(&CqlType::Varint, Value::Varint(BigInt::from(1)), "c0 8101 01");
    comparable(&CqlType::Varint, Value::Varint(BigInt::from(256)), "c0 8102 0100");
    comparable(&CqlType::Varint, Value::Varint(BigInt::from(-1)), "40 7efe fe");
    comparable(&CqlType::Varint, Value::Varint(BigInt::from(-256)), "40 7efd feff");
    // decimal: 80 | C0 exponent pairs 00 | 40 ~(exponent pairs 00), trailing zeros dropped,
    // then the scale as the tie-break part.
    comparable(&CqlType::Decimal, dec("0"), "80 80");
    comparable(&CqlType::Decimal, dec("0.00"), "80 8102");
    comparable(&CqlType::Decimal, dec("1.5"), "c0 8101 10 00 8101");
    comparable(&CqlType::Decimal, dec("1.50"), "c0 8101 10 00 8102");
    comparable(&CqlType::Decimal, dec("1"), "c0 8101 0b 00 80");
    comparable(&CqlType::Decimal, dec("123.45"), "c0 8103 0d 23 33 00 8102");
    comparable(&CqlType::Decimal, dec("0.001"), "c0 7efe 0b 00 8103");
    comparable(&CqlType::Decimal, dec("-1.5"), "40 7efe ef ff 8101");
    comparable(&CqlType::Decimal, dec("-1.50"), "40 7efe ef ff 8102");
    // Inside a tuple the order part comes first, the scales of all decimals after it.
    let pair = CqlType::Tuple(vec![CqlType::Decimal, CqlType::Int]);
    comparable(
        &pair,
        Value::Tuple(vec![Some(dec("1.0")), Some(Value::Int(5))]),
        "02 c08101 0b 00 02 80000005 8101",
    );
    comparable(&CqlType::Decimal, Value::Decimal(BigDecimal::new(BigInt::from(7), -3)), "c0 8104 47 00 7efd");
    // Nested: element markers 01 (empty) / 02 (value), 00 ends a collection or is a null field.
    comparable(&list(CqlType::Int), Value::List(vec![Value::Int(1), Value::Empty]), "02 80000001 01 00");
    comparable(&list(CqlType::Int), Value::List(vec![]), "00");
    comparable(
        &list(CqlType::Text),
        Value::List(vec![Value::Text("a\0".into()), Value::Text(String::new())]),
        "02 61 00ff 0001 02 0001 00",
    );
    let tuple = CqlType::Tuple(vec![CqlType::Int, CqlType::Text, CqlType::Bigint]);
    comparable(
        &tuple,
        Value::Tuple(vec![Some(Value::Int(0)), None, Some(Value::Empty)]),
        "02 80000000 00 01",
    );
    let map = CqlType::Map { key: Box::new(CqlType::Text), value: Box::new(CqlType::Int), frozen: true };
    comparable(
        &map,
        Value::Map(vec![(Value::Text("k".into()), Value::Int(-1))]),
        "02 6b 0001 02 7fffffff 00",
    );
}

#[test]
fn documented_worked_example() {
    // The worked example of docs-types-comparable.md.
    let ty = CqlType::parse("tuple<int, text, decimal, frozen<set<bigint>>>").unwrap();
    let v = Value::Tuple(vec![
        Some(Value::Int(1)),
        Some(Value::Text("a\0".into())),
        Some(dec("-1.50")),
        Some(Value::Set(vec![Value::Empty, Value::Bigint(-1)])),
    ]);
    comparable(
        &ty,
        v.clone(),
        "02 80000001  02 61 00ff 0001  02 40 7efe ef ff  02 01 02 7fffffffffffffff 00  8102",
    );
    assert_eq!(ty.to_string(), "frozen<tuple<int, text, decimal, frozen<set<bigint>>>>");
    assert_eq!(crate::types::to_cql_literal(&v), "(1, 'a\0', -1.50, {null, -1})");
}
