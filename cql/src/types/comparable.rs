//! Byte-comparable encoding of values: unsigned lexicographic order of the encodings equals
//! [`compare`](super::compare). The exact format is persisted (clustering keys, collection cell paths) and documented in
//! `docs/format/comparable-values.md` (`docs-types-comparable.md` in the scratch crate); in short:
//!
//! ```text
//! value      := order tiebreak
//! order (top level) := raw bytes for ascii, text, blob, custom, inet; [] for Empty; else sd
//! nested     := 0x01 (Empty) | 0x02 sd
//! sd (self-delimiting form):
//!   ascii/text/blob/custom/inet := escaped bytes (00 -> 00 FF) then 00 01
//!   boolean   := 00 | 01
//!   tinyint/smallint/int/bigint/counter/timestamp := big-endian, sign bit flipped
//!   date      := 4 bytes big-endian;  time := 8 bytes big-endian
//!   float/double := IEEE bits: negative -> all bits inverted, else sign bit set; NaN canonical
//!   uuid      := version byte, then (v1: reordered timestamp, else msb), then lsb
//!   timeuuid  := reordered timestamp, then lsb xor 0x80 per byte
//!   varint    := 80 (zero) | C0 len magnitude | 40 ~(len magnitude)
//!   decimal   := 80 (zero) | C0 exponent digit-pairs 00 | 40 ~(exponent digit-pairs 00)
//!                (the value without trailing zeros: numerically equal decimals are equal here)
//!   duration  := the three canonical vints (the serialized form)
//!   list/set  := nested* 00;  map := (nested nested)* 00;  tuple := (00 | nested) per field
//! tiebreak   := the scale of every decimal in the value, in order (empty without decimals)
//! ```

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bigdecimal::BigDecimal;
use bytes::Bytes;
use num_bigint::{BigInt, BigUint, Sign};
use uuid::Uuid;

use super::codec::{decode_ascii, decode_utf8, read_unsigned_vint_minimal, unzigzag, write_vint, Reader};
use super::compare::{compare, reorder_timestamp, unreorder_timestamp};
use super::cql_type::{CqlType, MAX_DEPTH};
use super::error::TypeError;
use super::temporal::NANOS_PER_DAY;
use super::value::Value;

const NESTED_EMPTY: u8 = 0x01;
const NESTED_VALUE: u8 = 0x02;
const END: u8 = 0x00;
const TUPLE_NULL: u8 = 0x00;

const NEGATIVE: u8 = 0x40;
const ZERO: u8 = 0x80;
const POSITIVE: u8 = 0xC0;

/// The byte-comparable encoding of a value: for two values `a`, `b` of the same type,
/// `to_comparable(a).cmp(&to_comparable(b)) == compare(ty, a, b)` whenever `compare` does not
/// say `Equal`, and the encodings are equal exactly when the values are the same. Values that
/// `compare` treats as equal although they differ (decimals of equal value and different
/// scale: 1.0 and 1.00, alone or inside tuples and collections) are ordered by the scales of
/// their decimals, in order of appearance, smaller scale first. NaNs are all encoded as the
/// canonical NaN.
///
/// The encoding is `order ++ tiebreak` (see [`to_comparable_split`]); `tiebreak` is empty unless
/// the value contains a decimal. The top-level encoding is not prefix-free (the caller escapes
/// and delimits components); the elements inside collections and tuples are self-delimiting.
pub fn to_comparable(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    to_comparable_into(value, &mut out);
    out
}

/// Appends the byte-comparable encoding of `value` to `out` (see [`to_comparable`]).
pub fn to_comparable_into(value: &Value, out: &mut Vec<u8>) {
    let mut tiebreak = Vec::new();
    write_order(value, out, &mut tiebreak);
    out.extend_from_slice(&tiebreak);
}

/// The two parts of [`to_comparable`]: the order part, whose byte order is exactly `compare`
/// (numerically equal decimals encode identically in it), and the tie-break part (the decimal
/// scales; empty for values without decimals).
///
/// A key made of several values, of which one that is not the last contains a decimal, keeps
/// Cassandra's order only if all the order parts come first and the tie-break parts after them
/// (`1.0` then `5` must sort after `1.00` then `3`): concatenating whole [`to_comparable`]
/// encodings would order by the first decimal's scale before the later components. The order
/// part of a value that has a tie-break part is self-delimiting.
pub fn to_comparable_split(value: &Value) -> (Vec<u8>, Vec<u8>) {
    let mut order = Vec::new();
    let mut tiebreak = Vec::new();
    write_order(value, &mut order, &mut tiebreak);
    (order, tiebreak)
}

fn write_order(value: &Value, out: &mut Vec<u8>, tiebreak: &mut Vec<u8>) {
    match value {
        Value::Empty => {}
        Value::Ascii(s) | Value::Text(s) => out.extend_from_slice(s.as_bytes()),
        Value::Blob(b) | Value::Custom(b) => out.extend_from_slice(b),
        Value::Inet(ip) => out.extend_from_slice(&inet_bytes(ip)),
        other => write_sd(other, out, tiebreak),
    }
}

fn inet_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn write_nested(value: &Value, out: &mut Vec<u8>, tiebreak: &mut Vec<u8>) {
    if let Value::Empty = value {
        out.push(NESTED_EMPTY);
    } else {
        out.push(NESTED_VALUE);
        write_sd(value, out, tiebreak);
    }
}

fn write_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

fn float_key(f: f32) -> u32 {
    let bits = if f.is_nan() { 0x7fc0_0000 } else { f.to_bits() };
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

fn double_key(f: f64) -> u64 {
    let bits = if f.is_nan() { 0x7ff8_0000_0000_0000 } else { f.to_bits() };
    if bits & (1 << 63) != 0 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The self-delimiting form; decimal scales go to `tiebreak`.
fn write_sd(value: &Value, out: &mut Vec<u8>, tiebreak: &mut Vec<u8>) {
    match value {
        Value::Empty => {}
        Value::Ascii(s) | Value::Text(s) => write_escaped(s.as_bytes(), out),
        Value::Blob(b) | Value::Custom(b) => write_escaped(b, out),
        Value::Inet(ip) => write_escaped(&inet_bytes(ip), out),
        Value::Boolean(b) => out.push(u8::from(*b)),
        Value::Bigint(v) | Value::Counter(v) | Value::Timestamp(v) => {
            out.extend_from_slice(&((*v as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Int(v) => out.extend_from_slice(&((*v as u32) ^ (1 << 31)).to_be_bytes()),
        Value::Smallint(v) => out.extend_from_slice(&((*v as u16) ^ (1 << 15)).to_be_bytes()),
        Value::Tinyint(v) => out.push((*v as u8) ^ 0x80),
        Value::Date(d) => out.extend_from_slice(&d.to_be_bytes()),
        Value::Time(t) => out.extend_from_slice(&(*t as u64).to_be_bytes()),
        Value::Float(f) => out.extend_from_slice(&float_key(*f).to_be_bytes()),
        Value::Double(f) => out.extend_from_slice(&double_key(*f).to_be_bytes()),
        Value::Uuid(u) => {
            let (msb, lsb) = u.as_u64_pair();
            let version = ((msb >> 12) & 0xf) as u8;
            out.push(version);
            let high = if version == 1 { reorder_timestamp(msb) } else { msb };
            out.extend_from_slice(&high.to_be_bytes());
            out.extend_from_slice(&lsb.to_be_bytes());
        }
        Value::Timeuuid(u) => {
            let (msb, lsb) = u.as_u64_pair();
            out.extend_from_slice(&reorder_timestamp(msb).to_be_bytes());
            out.extend_from_slice(&(lsb ^ 0x8080_8080_8080_8080).to_be_bytes());
        }
        Value::Varint(v) => write_varint(v, out),
        Value::Decimal(d) => write_decimal(d, out, tiebreak),
        Value::Duration { months, days, nanoseconds } => {
            write_vint(i64::from(*months), out);
            write_vint(i64::from(*days), out);
            write_vint(*nanoseconds, out);
        }
        Value::List(items) | Value::Set(items) => {
            for item in items {
                write_nested(item, out, tiebreak);
            }
            out.push(END);
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                write_nested(k, out, tiebreak);
                write_nested(v, out, tiebreak);
            }
            out.push(END);
        }
        Value::Tuple(fields) => {
            for field in fields {
                match field {
                    None => out.push(TUPLE_NULL),
                    Some(v) => write_nested(v, out, tiebreak),
                }
            }
        }
    }
}

/// An order-preserving, self-delimiting signed integer: `0x80 + n` then `v` in `n` big-endian
/// bytes for `v >= 0` (n minimal, 0 for zero); `0x7F - n` then the low `n` bytes of `v` for
/// `v < 0` (n minimal for `!v`).
fn write_signed(v: i64, out: &mut Vec<u8>) {
    let (header, payload) = if v >= 0 {
        let n = 8 - (v.leading_zeros() / 8) as usize;
        (0x80 + n as u8, v.to_be_bytes())
    } else {
        let n = 8 - ((!v).leading_zeros() / 8) as usize;
        (0x7F - n as u8, v.to_be_bytes())
    };
    out.push(header);
    let n = if header >= 0x80 { usize::from(header - 0x80) } else { usize::from(0x7F - header) };
    out.extend_from_slice(payload.get(8 - n..).unwrap_or_default());
}

fn read_signed(r: &mut Reader<'_>, invert: bool) -> Option<i64> {
    let flip = |b: u8| if invert { !b } else { b };
    let header = flip(r.u8()?);
    let (negative, n) = match header {
        0x80..=0x88 => (false, usize::from(header - 0x80)),
        0x77..=0x7F => (true, usize::from(0x7F - header)),
        _ => return None,
    };
    let bytes = r.take(n)?;
    let mut v: i64 = if negative { -1 } else { 0 };
    for (i, b) in bytes.iter().enumerate() {
        let b = flip(*b);
        // Minimal: the first byte must carry information.
        if i == 0 && b == if negative { 0xFF } else { 0x00 } {
            return None;
        }
        v = (v << 8) | i64::from(b);
    }
    Some(v)
}

fn write_varint(v: &BigInt, out: &mut Vec<u8>) {
    let (sign, magnitude) = v.to_bytes_be();
    match sign {
        Sign::NoSign => out.push(ZERO),
        Sign::Plus => {
            out.push(POSITIVE);
            write_signed(magnitude.len() as i64, out);
            out.extend_from_slice(&magnitude);
        }
        Sign::Minus => {
            out.push(NEGATIVE);
            let start = out.len();
            write_signed(magnitude.len() as i64, out);
            out.extend_from_slice(&magnitude);
            invert(out, start);
        }
    }
}

fn invert(out: &mut [u8], from: usize) {
    if let Some(tail) = out.get_mut(from..) {
        for b in tail {
            *b = !*b;
        }
    }
}

/// Decimal digits in base-100 pairs, each byte `1 + 10 * d1 + d2` (1..=100), an odd last digit
/// padded with 0.
fn write_digit_pairs(digits: &[u8], out: &mut Vec<u8>) {
    for pair in digits.chunks(2) {
        let hi = pair.first().map_or(0, |d| d - b'0');
        let lo = pair.get(1).map_or(0, |d| d - b'0');
        out.push(1 + 10 * hi + lo);
    }
}

/// The value without trailing zeros goes to `out`, the scale to `tiebreak`.
fn write_decimal(d: &BigDecimal, out: &mut Vec<u8>, tiebreak: &mut Vec<u8>) {
    let (unscaled, scale) = d.as_bigint_and_scale();
    write_signed(scale, tiebreak);
    let sign = unscaled.sign();
    if sign == Sign::NoSign {
        out.push(ZERO);
        return;
    }
    let all_digits = unscaled.magnitude().to_string();
    // value = 0.d1d2... * 10^exponent, computed before trailing zeros are dropped.
    let exponent = (all_digits.len() as i64).saturating_sub(scale);
    let digits = all_digits.trim_end_matches('0');
    out.push(if sign == Sign::Minus { NEGATIVE } else { POSITIVE });
    let start = out.len();
    write_signed(exponent, out);
    write_digit_pairs(digits.as_bytes(), out);
    out.push(END);
    if sign == Sign::Minus {
        invert(out, start);
    }
}

/// Decimals decoded from the order part are normalized (no trailing zeros); their scales come
/// from the tie-break part. A decimal may gain at most this many trailing zeros: far more than
/// any decimal that fits a key or cell path (64 KiB), few enough that hostile input cannot make
/// the decoder build a gigantic number.
const MAX_RESTORED_ZEROS: i64 = 1 << 20;

/// Decodes a byte-comparable encoding produced by [`to_comparable`] for type `ty`. Corrupt or
/// non-canonical input (an encoding that [`to_comparable`] would never produce, such as a
/// non-canonical NaN or an unsorted set) is an error; nesting is bounded. Decimals with more
/// than 2^20 trailing zero digits (far beyond the 64 KiB limit of keys and cell paths) are
/// refused.
pub fn from_comparable(ty: &CqlType, bytes: &[u8]) -> Result<Value, TypeError> {
    let err = |msg: &str| TypeError::Comparable { ty: ty.to_string(), msg: msg.to_string() };
    if bytes.is_empty() && ty.allows_empty() {
        return Ok(Value::Empty);
    }
    match ty {
        CqlType::Ascii => Ok(Value::Ascii(decode_ascii(bytes)?)),
        CqlType::Text => Ok(Value::Text(decode_utf8(bytes)?)),
        CqlType::Blob => Ok(Value::Blob(Bytes::copy_from_slice(bytes))),
        CqlType::Custom(_) => Ok(Value::Custom(Bytes::copy_from_slice(bytes))),
        CqlType::Inet => inet_from(bytes).ok_or_else(|| err("an inet address is 4 or 16 bytes")),
        _ => {
            let mut r = Reader::new(bytes);
            let mut v = read_sd(ty, &mut r, 1)?;
            restore_scales(&mut v, &mut r, ty)?;
            if r.remaining() > 0 {
                return Err(err("trailing bytes"));
            }
            Ok(v)
        }
    }
}

/// Decodes the two parts of [`to_comparable_split`].
pub fn from_comparable_split(ty: &CqlType, order: &[u8], tiebreak: &[u8]) -> Result<Value, TypeError> {
    if tiebreak.is_empty() {
        return from_comparable(ty, order);
    }
    let mut joined = Vec::with_capacity(order.len() + tiebreak.len());
    joined.extend_from_slice(order);
    joined.extend_from_slice(tiebreak);
    from_comparable(ty, &joined)
}

/// Gives every decimal of `v` (normalized, as read from the order part) its scale from the
/// tie-break part, in the order [`write_sd`] wrote them.
fn restore_scales(v: &mut Value, r: &mut Reader<'_>, ty: &CqlType) -> Result<(), TypeError> {
    let err = |msg: &str| TypeError::Comparable { ty: ty.to_string(), msg: msg.to_string() };
    match v {
        Value::Decimal(d) => {
            let scale = read_signed(r, false).ok_or_else(|| err("missing or invalid decimal scale"))?;
            if i32::try_from(scale).is_err() {
                return Err(err("decimal scale out of range"));
            }
            let (unscaled, normalized_scale) = d.as_bigint_and_scale();
            let zeros = i128::from(scale) - i128::from(normalized_scale);
            let unscaled = if unscaled.sign() == Sign::NoSign {
                unscaled.into_owned()
            } else if zeros < 0 || zeros > i128::from(MAX_RESTORED_ZEROS) {
                return Err(err("decimal scale inconsistent with its value"));
            } else {
                unscaled.as_ref() * BigInt::from(10).pow(u32::try_from(zeros).unwrap_or(0))
            };
            *d = BigDecimal::new(unscaled, scale);
            Ok(())
        }
        Value::List(items) | Value::Set(items) => {
            items.iter_mut().try_for_each(|item| restore_scales(item, r, ty))
        }
        Value::Map(entries) => entries.iter_mut().try_for_each(|(k, val)| {
            restore_scales(k, r, ty)?;
            restore_scales(val, r, ty)
        }),
        Value::Tuple(fields) => fields.iter_mut().flatten().try_for_each(|f| restore_scales(f, r, ty)),
        _ => Ok(()),
    }
}

fn inet_from(bytes: &[u8]) -> Option<Value> {
    if let Ok(a) = <[u8; 4]>::try_from(bytes) {
        return Some(Value::Inet(IpAddr::V4(Ipv4Addr::from(a))));
    }
    <[u8; 16]>::try_from(bytes).ok().map(|a| Value::Inet(IpAddr::V6(Ipv6Addr::from(a))))
}

fn read_nested(ty: &CqlType, r: &mut Reader<'_>, depth: usize) -> Result<Value, TypeError> {
    let err = |msg: &str| TypeError::Comparable { ty: ty.to_string(), msg: msg.to_string() };
    match r.u8() {
        Some(NESTED_EMPTY) if ty.allows_empty() => Ok(Value::Empty),
        Some(NESTED_VALUE) => read_sd(ty, r, depth),
        Some(_) => Err(err("invalid element marker")),
        None => Err(err("truncated")),
    }
}

fn read_escaped(r: &mut Reader<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        match r.u8()? {
            0x00 => match r.u8()? {
                0xFF => out.push(0),
                0x01 => return Some(out),
                _ => return None,
            },
            b => out.push(b),
        }
    }
}

fn read_sd(ty: &CqlType, r: &mut Reader<'_>, depth: usize) -> Result<Value, TypeError> {
    let err = |msg: &str| TypeError::Comparable { ty: ty.to_string(), msg: msg.to_string() };
    let truncated = || err("truncated");
    if depth > MAX_DEPTH {
        return Err(TypeError::TooDeep { max: MAX_DEPTH });
    }
    Ok(match ty {
        CqlType::Ascii => Value::Ascii(decode_ascii(&read_escaped(r).ok_or_else(|| err("bad escaping"))?)?),
        CqlType::Text => Value::Text(decode_utf8(&read_escaped(r).ok_or_else(|| err("bad escaping"))?)?),
        CqlType::Blob => Value::Blob(read_escaped(r).ok_or_else(|| err("bad escaping"))?.into()),
        CqlType::Custom(_) => Value::Custom(read_escaped(r).ok_or_else(|| err("bad escaping"))?.into()),
        CqlType::Inet => {
            let bytes = read_escaped(r).ok_or_else(|| err("bad escaping"))?;
            inet_from(&bytes).ok_or_else(|| err("an inet address is 4 or 16 bytes"))?
        }
        CqlType::Boolean => match r.u8().ok_or_else(truncated)? {
            0 => Value::Boolean(false),
            1 => Value::Boolean(true),
            _ => return Err(err("a boolean is 0 or 1")),
        },
        CqlType::Bigint => {
            Value::Bigint((u64::from_be_bytes(r.array().ok_or_else(truncated)?) ^ (1 << 63)) as i64)
        }
        CqlType::Counter => {
            Value::Counter((u64::from_be_bytes(r.array().ok_or_else(truncated)?) ^ (1 << 63)) as i64)
        }
        CqlType::Timestamp => {
            Value::Timestamp((u64::from_be_bytes(r.array().ok_or_else(truncated)?) ^ (1 << 63)) as i64)
        }
        CqlType::Int => Value::Int((u32::from_be_bytes(r.array().ok_or_else(truncated)?) ^ (1 << 31)) as i32),
        CqlType::Smallint => {
            Value::Smallint((u16::from_be_bytes(r.array().ok_or_else(truncated)?) ^ (1 << 15)) as i16)
        }
        CqlType::Tinyint => Value::Tinyint((r.u8().ok_or_else(truncated)? ^ 0x80) as i8),
        CqlType::Date => Value::Date(u32::from_be_bytes(r.array().ok_or_else(truncated)?)),
        CqlType::Time => {
            let t = u64::from_be_bytes(r.array().ok_or_else(truncated)?);
            match i64::try_from(t) {
                Ok(t) if t < NANOS_PER_DAY => Value::Time(t),
                _ => return Err(err("time of day out of range")),
            }
        }
        CqlType::Float => {
            let key = u32::from_be_bytes(r.array().ok_or_else(truncated)?);
            let bits = if key & 0x8000_0000 != 0 { key ^ 0x8000_0000 } else { !key };
            let f = f32::from_bits(bits);
            if f.is_nan() && bits != 0x7fc0_0000 {
                return Err(err("non-canonical NaN"));
            }
            Value::Float(f)
        }
        CqlType::Double => {
            let key = u64::from_be_bytes(r.array().ok_or_else(truncated)?);
            let bits = if key & (1 << 63) != 0 { key ^ (1 << 63) } else { !key };
            let f = f64::from_bits(bits);
            if f.is_nan() && bits != 0x7ff8_0000_0000_0000 {
                return Err(err("non-canonical NaN"));
            }
            Value::Double(f)
        }
        CqlType::Uuid => {
            let version = r.u8().ok_or_else(truncated)?;
            let high = u64::from_be_bytes(r.array().ok_or_else(truncated)?);
            let lsb = u64::from_be_bytes(r.array().ok_or_else(truncated)?);
            let msb = if version == 1 { unreorder_timestamp(high) } else { high };
            if u64::from(version) != (msb >> 12) & 0xf {
                return Err(err("version byte does not match the UUID"));
            }
            Value::Uuid(Uuid::from_u64_pair(msb, lsb))
        }
        CqlType::Timeuuid => {
            let msb = unreorder_timestamp(u64::from_be_bytes(r.array().ok_or_else(truncated)?));
            let lsb = u64::from_be_bytes(r.array().ok_or_else(truncated)?) ^ 0x8080_8080_8080_8080;
            if (msb >> 12) & 0xf != 1 {
                return Err(err("not a version 1 UUID"));
            }
            Value::Timeuuid(Uuid::from_u64_pair(msb, lsb))
        }
        CqlType::Varint => Value::Varint(read_varint(r).ok_or_else(|| err("invalid varint"))?),
        CqlType::Decimal => Value::Decimal(read_decimal(r).ok_or_else(|| err("invalid decimal"))?),
        CqlType::Duration => {
            let mut field = || -> Result<i64, TypeError> {
                match read_unsigned_vint_minimal(r) {
                    Some((v, true)) => Ok(unzigzag(v)),
                    Some((_, false)) => Err(err("non-minimal vint")),
                    None => Err(truncated()),
                }
            };
            let months = i32::try_from(field()?).map_err(|_| err("months out of range"))?;
            let days = i32::try_from(field()?).map_err(|_| err("days out of range"))?;
            let nanoseconds = field()?;
            if !((months >= 0 && days >= 0 && nanoseconds >= 0)
                || (months <= 0 && days <= 0 && nanoseconds <= 0))
            {
                return Err(err("months, days and nanoseconds of different signs"));
            }
            Value::Duration { months, days, nanoseconds }
        }
        CqlType::List { element, .. } | CqlType::Set { element, .. } => {
            let mut items: Vec<Value> = Vec::new();
            loop {
                match r.peek() {
                    Some(END) => {
                        r.u8();
                        break;
                    }
                    Some(_) => {
                        let item = read_nested(element, r, depth + 1)?;
                        if matches!(ty, CqlType::Set { .. }) {
                            if let Some(last) = items.last() {
                                if compare(element, last, &item) != Ordering::Less {
                                    return Err(err("set elements out of order"));
                                }
                            }
                        }
                        items.push(item);
                    }
                    None => return Err(truncated()),
                }
            }
            if matches!(ty, CqlType::Set { .. }) {
                Value::Set(items)
            } else {
                Value::List(items)
            }
        }
        CqlType::Map { key, value, .. } => {
            let mut entries: Vec<(Value, Value)> = Vec::new();
            loop {
                match r.peek() {
                    Some(END) => {
                        r.u8();
                        break;
                    }
                    Some(_) => {
                        let k = read_nested(key, r, depth + 1)?;
                        if let Some((last, _)) = entries.last() {
                            if compare(key, last, &k) != Ordering::Less {
                                return Err(err("map keys out of order"));
                            }
                        }
                        let v = read_nested(value, r, depth + 1)?;
                        entries.push((k, v));
                    }
                    None => return Err(truncated()),
                }
            }
            Value::Map(entries)
        }
        CqlType::Tuple(types) => {
            let mut fields = Vec::with_capacity(types.len());
            for t in types {
                match r.peek() {
                    Some(TUPLE_NULL) => {
                        r.u8();
                        fields.push(None);
                    }
                    Some(_) => fields.push(Some(read_nested(t, r, depth + 1)?)),
                    None => return Err(truncated()),
                }
            }
            Value::Tuple(fields)
        }
    })
}

fn read_varint(r: &mut Reader<'_>) -> Option<BigInt> {
    match r.u8()? {
        ZERO => Some(BigInt::from(0)),
        marker @ (POSITIVE | NEGATIVE) => {
            let negative = marker == NEGATIVE;
            let len = usize::try_from(read_signed(r, negative)?).ok()?;
            let mut magnitude = r.take(len)?.to_vec();
            if negative {
                invert(&mut magnitude, 0);
            }
            if magnitude.first().is_none_or(|b| *b == 0) {
                return None;
            }
            let sign = if negative { Sign::Minus } else { Sign::Plus };
            Some(BigInt::from_bytes_be(sign, &magnitude))
        }
        _ => None,
    }
}

/// The order part of a decimal: the normalized value (no trailing zeros); the scale is restored
/// later from the tie-break part.
fn read_decimal(r: &mut Reader<'_>) -> Option<BigDecimal> {
    let negative = match r.u8()? {
        ZERO => return Some(BigDecimal::new(BigInt::from(0), 0)),
        POSITIVE => false,
        NEGATIVE => true,
        _ => return None,
    };
    let flip = |b: u8| if negative { !b } else { b };
    let exponent = read_signed(r, negative)?;
    let mut digits = Vec::new();
    loop {
        match flip(r.u8()?) {
            END => break,
            b @ 1..=100 => {
                let pair = b - 1;
                digits.push(b'0' + pair / 10);
                digits.push(b'0' + pair % 10);
            }
            _ => return None,
        }
    }
    // An odd digit count has a padding 0; the value itself has no trailing zero.
    if digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.first().is_none_or(|d| *d == b'0') || digits.last().is_none_or(|d| *d == b'0') {
        return None;
    }
    // value = 0.d1d2...dn * 10^exponent = digits * 10^-(n - exponent)
    let scale = i64::try_from(digits.len()).ok()?.checked_sub(exponent)?;
    let magnitude = BigUint::parse_bytes(&digits, 10)?;
    let sign = if negative { Sign::Minus } else { Sign::Plus };
    Some(BigDecimal::new(BigInt::from_biguint(sign, magnitude), scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_signed(v, &mut out);
        out
    }

    #[test]
    fn signed_integers_are_ordered_and_minimal() {
        let mut values = vec![
            i64::MIN,
            i64::MIN + 1,
            -65_536,
            -65_535,
            -257,
            -256,
            -255,
            -2,
            -1,
            0,
            1,
            255,
            256,
            65_535,
            65_536,
            i64::MAX,
        ];
        for shift in 0..63 {
            values.push(1 << shift);
            values.push(-(1 << shift));
            values.push((1 << shift) - 1);
        }
        values.sort_unstable();
        values.dedup();
        for pair in values.windows(2) {
            assert!(signed(pair[0]) < signed(pair[1]), "{} {}", pair[0], pair[1]);
        }
        for v in values {
            let bytes = signed(v);
            let mut r = Reader::new(&bytes);
            assert_eq!(read_signed(&mut r, false), Some(v));
            assert_eq!(r.remaining(), 0);
        }
        assert_eq!(signed(0), [0x80]);
        assert_eq!(signed(-1), [0x7F]);
        assert_eq!(signed(1), [0x81, 0x01]);
        assert_eq!(signed(-2), [0x7E, 0xFE]);
        // Non-minimal forms are rejected.
        assert_eq!(read_signed(&mut Reader::new(&[0x81, 0x00]), false), None);
        assert_eq!(read_signed(&mut Reader::new(&[0x7E, 0xFF]), false), None);
    }
}
