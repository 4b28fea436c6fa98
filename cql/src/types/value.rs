//! Typed CQL values.

use std::cmp::Ordering;
use std::net::IpAddr;

use bigdecimal::BigDecimal;
use bytes::Bytes;
use num_bigint::BigInt;
use uuid::Uuid;

use super::compare::compare;
use super::cql_type::{CqlType, MAX_DEPTH};
use super::error::TypeError;
use super::temporal::NANOS_PER_DAY;

/// A non-null CQL value (nulls are `Option<Value>` outside, and `None` fields inside tuples).
///
/// The variant carries the type where two types share a representation (`Uuid`/`Timeuuid`,
/// `Bigint`/`Counter`, `Ascii`/`Text`, `Blob`/`Custom`), because they serialize alike but order
/// differently.
///
/// Invariants (checked by [`Value::check`], guaranteed by every decoder and parser here):
/// `Ascii` is 7-bit; `Date` is Cassandra's day number with the epoch at 2^31; `Time` is in
/// `0..86_400_000_000_000`; `Timeuuid` is version 1; `Decimal` has a scale that fits an `i32`;
/// the three `Duration` fields are all `>= 0` or all `<= 0`; `Set` elements are sorted and
/// unique and `Map` keys sorted and unique by [`compare`] of the element type; `Tuple` has
/// exactly one entry per tuple field.
///
/// `Empty` is the empty byte string that Cassandra accepts for some types (`int`, `uuid`,
/// `timestamp`, ... see [`CqlType::allows_empty`]): it is not null, is stored and returned
/// as such, and sorts before every other value of the type.
///
/// `==` compares the payloads (so `Decimal` 1.0 == 1.00 and `NaN != NaN`); to compare as
/// Cassandra does use [`compare`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Ascii(String),
    Bigint(i64),
    Blob(Bytes),
    Boolean(bool),
    Counter(i64),
    /// Days with the epoch (1970-01-01) at 2^31.
    Date(u32),
    Decimal(BigDecimal),
    Double(f64),
    Duration {
        months: i32,
        days: i32,
        nanoseconds: i64,
    },
    /// The empty value of a type that allows one (see [`CqlType::allows_empty`]).
    Empty,
    Float(f32),
    Inet(IpAddr),
    Int(i32),
    Smallint(i16),
    Text(String),
    /// Nanoseconds since midnight.
    Time(i64),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Timeuuid(Uuid),
    Tinyint(i8),
    Uuid(Uuid),
    Varint(BigInt),
    List(Vec<Value>),
    /// Sorted and unique by the element type's order.
    Set(Vec<Value>),
    /// Sorted and unique by key.
    Map(Vec<(Value, Value)>),
    Tuple(Vec<Option<Value>>),
    /// The bytes of a value of a [`CqlType::Custom`] type.
    Custom(Bytes),
}

impl Value {
    /// A set value of elements of type `element`: sorted by [`compare`], duplicates removed
    /// (the first of equal elements is kept, as Cassandra's `TreeSet` does).
    pub fn new_set(element: &CqlType, items: Vec<Value>) -> Value {
        Value::Set(sort_set(element, items))
    }

    /// A map value with keys of type `key`: sorted by key, for duplicate keys the first key and
    /// the last value are kept (as Cassandra's `TreeMap.put` does).
    pub fn new_map(key: &CqlType, entries: Vec<(Value, Value)>) -> Value {
        Value::Map(sort_map(key, entries))
    }

    /// The variant's name, for messages.
    pub fn variant_name(&self) -> &'static str {
        match self {
            Value::Ascii(_) => "ascii",
            Value::Bigint(_) => "bigint",
            Value::Blob(_) => "blob",
            Value::Boolean(_) => "boolean",
            Value::Counter(_) => "counter",
            Value::Date(_) => "date",
            Value::Decimal(_) => "decimal",
            Value::Double(_) => "double",
            Value::Duration { .. } => "duration",
            Value::Empty => "empty",
            Value::Float(_) => "float",
            Value::Inet(_) => "inet",
            Value::Int(_) => "int",
            Value::Smallint(_) => "smallint",
            Value::Text(_) => "text",
            Value::Time(_) => "time",
            Value::Timestamp(_) => "timestamp",
            Value::Timeuuid(_) => "timeuuid",
            Value::Tinyint(_) => "tinyint",
            Value::Uuid(_) => "uuid",
            Value::Varint(_) => "varint",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
            Value::Tuple(_) => "tuple",
            Value::Custom(_) => "custom",
        }
    }

    /// Checks that this is a valid value of `ty` (see the invariants on [`Value`]). Values
    /// produced by this module's decoders and parsers always pass; values built by hand should
    /// be checked before they are encoded or stored.
    pub fn check(&self, ty: &CqlType) -> Result<(), TypeError> {
        check_at(self, ty, 1)
    }
}

pub(crate) fn sort_set(element: &CqlType, mut items: Vec<Value>) -> Vec<Value> {
    items.sort_by(|a, b| compare(element, a, b));
    // dedup_by removes the later of two equal neighbours: the first is kept.
    items.dedup_by(|later, earlier| compare(element, later, earlier) == Ordering::Equal);
    items
}

pub(crate) fn sort_map(key: &CqlType, mut entries: Vec<(Value, Value)>) -> Vec<(Value, Value)> {
    // Stable sort: equal keys stay in input order.
    entries.sort_by(|a, b| compare(key, &a.0, &b.0));
    let mut out: Vec<(Value, Value)> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        match out.last_mut() {
            Some(last) if compare(key, &last.0, &k) == Ordering::Equal => last.1 = v,
            _ => out.push((k, v)),
        }
    }
    out
}

fn invalid(ty: &CqlType, v: &Value, why: &str) -> TypeError {
    TypeError::InvalidValue(format!("Invalid {} value for type {ty}{why}", v.variant_name()))
}

fn check_at(v: &Value, ty: &CqlType, depth: usize) -> Result<(), TypeError> {
    if depth > MAX_DEPTH {
        return Err(TypeError::TooDeep { max: MAX_DEPTH });
    }
    let ok = match (ty, v) {
        (t, Value::Empty) => {
            return if t.allows_empty() {
                Ok(())
            } else {
                Err(invalid(ty, v, ": empty values are not allowed"))
            };
        }
        (CqlType::Ascii, Value::Ascii(s)) => {
            if !s.is_ascii() {
                return Err(invalid(ty, v, ": not 7-bit ASCII"));
            }
            true
        }
        (CqlType::Time, Value::Time(t)) => {
            if !(0..NANOS_PER_DAY).contains(t) {
                return Err(invalid(ty, v, &format!(": {t} is outside 0..86400000000000 ns")));
            }
            true
        }
        (CqlType::Timeuuid, Value::Timeuuid(u)) => {
            if u.get_version_num() != 1 {
                return Err(invalid(ty, v, ": not a version 1 UUID"));
            }
            true
        }
        (CqlType::Decimal, Value::Decimal(d)) => {
            let (_, scale) = d.as_bigint_and_scale();
            if i32::try_from(scale).is_err() {
                return Err(invalid(ty, v, &format!(": scale {scale} does not fit a 32-bit integer")));
            }
            true
        }
        (CqlType::Duration, Value::Duration { months, days, nanoseconds }) => {
            let all_pos = *months >= 0 && *days >= 0 && *nanoseconds >= 0;
            let all_neg = *months <= 0 && *days <= 0 && *nanoseconds <= 0;
            if !all_pos && !all_neg {
                return Err(TypeError::InvalidValue(format!(
                    "The duration months, days and nanoseconds must be all of the same sign ({months}, {days}, {nanoseconds})"
                )));
            }
            true
        }
        (CqlType::List { element, .. }, Value::List(items)) => {
            for item in items {
                check_at(item, element, depth + 1)?;
            }
            true
        }
        (CqlType::Set { element, .. }, Value::Set(items)) => {
            for item in items {
                check_at(item, element, depth + 1)?;
            }
            for pair in items.windows(2) {
                if let [a, b] = pair {
                    if compare(element, a, b) != Ordering::Less {
                        return Err(invalid(ty, v, ": elements are not sorted and unique"));
                    }
                }
            }
            true
        }
        (CqlType::Map { key, value, .. }, Value::Map(entries)) => {
            for (k, val) in entries {
                check_at(k, key, depth + 1)?;
                check_at(val, value, depth + 1)?;
            }
            for pair in entries.windows(2) {
                if let [a, b] = pair {
                    if compare(key, &a.0, &b.0) != Ordering::Less {
                        return Err(invalid(ty, v, ": keys are not sorted and unique"));
                    }
                }
            }
            true
        }
        (CqlType::Tuple(types), Value::Tuple(fields)) => {
            if types.len() != fields.len() {
                return Err(invalid(ty, v, &format!(": {} fields instead of {}", fields.len(), types.len())));
            }
            for (t, f) in types.iter().zip(fields) {
                if let Some(f) = f {
                    check_at(f, t, depth + 1)?;
                }
            }
            true
        }
        (CqlType::Bigint, Value::Bigint(_))
        | (CqlType::Blob, Value::Blob(_))
        | (CqlType::Boolean, Value::Boolean(_))
        | (CqlType::Counter, Value::Counter(_))
        | (CqlType::Date, Value::Date(_))
        | (CqlType::Double, Value::Double(_))
        | (CqlType::Float, Value::Float(_))
        | (CqlType::Inet, Value::Inet(_))
        | (CqlType::Int, Value::Int(_))
        | (CqlType::Smallint, Value::Smallint(_))
        | (CqlType::Text, Value::Text(_))
        | (CqlType::Timestamp, Value::Timestamp(_))
        | (CqlType::Tinyint, Value::Tinyint(_))
        | (CqlType::Uuid, Value::Uuid(_))
        | (CqlType::Varint, Value::Varint(_))
        | (CqlType::Custom(_), Value::Custom(_)) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(ty, v, ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_maps_are_normalized() {
        let s =
            Value::new_set(&CqlType::Int, vec![Value::Int(3), Value::Int(1), Value::Int(3), Value::Empty]);
        assert_eq!(s, Value::Set(vec![Value::Empty, Value::Int(1), Value::Int(3)]));
        let m = Value::new_map(
            &CqlType::Text,
            vec![
                (Value::Text("b".into()), Value::Int(1)),
                (Value::Text("a".into()), Value::Int(2)),
                (Value::Text("b".into()), Value::Int(3)),
            ],
        );
        assert_eq!(
            m,
            Value::Map(vec![
                (Value::Text("a".into()), Value::Int(2)),
                (Value::Text("b".into()), Value::Int(3))
            ])
        );
    }

    #[test]
    fn check_catches_invalid_values() {
        let set_int = CqlType::Set { element: Box::new(CqlType::Int), frozen: true };
        assert!(Value::Set(vec![Value::Int(2), Value::Int(1)]).check(&set_int).is_err());
        assert!(Value::Set(vec![Value::Int(1), Value::Int(1)]).check(&set_int).is_err());
        assert!(Value::Set(vec![Value::Int(1), Value::Int(2)]).check(&set_int).is_ok());
        assert!(Value::Int(1).check(&CqlType::Bigint).is_err());
        assert!(Value::Empty.check(&CqlType::Text).is_err());
        assert!(Value::Empty.check(&CqlType::Int).is_ok());
        assert!(Value::Ascii("é".into()).check(&CqlType::Ascii).is_err());
        assert!(Value::Time(-1).check(&CqlType::Time).is_err());
        assert!(Value::Time(NANOS_PER_DAY).check(&CqlType::Time).is_err());
        assert!(Value::Timeuuid(Uuid::nil()).check(&CqlType::Timeuuid).is_err());
        assert!(Value::Duration { months: 1, days: -1, nanoseconds: 0 }.check(&CqlType::Duration).is_err());
        assert!(Value::Decimal(BigDecimal::new(1.into(), 1 << 40)).check(&CqlType::Decimal).is_err());
        let tuple = CqlType::Tuple(vec![CqlType::Int, CqlType::Text]);
        assert!(Value::Tuple(vec![Some(Value::Int(1))]).check(&tuple).is_err());
        assert!(Value::Tuple(vec![Some(Value::Int(1)), None]).check(&tuple).is_ok());
    }
}
