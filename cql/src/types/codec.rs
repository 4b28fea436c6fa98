//! Cassandra's binary serialization of values: what native protocol v4 carries in `[bytes]`
//! and what Cassandra stores in cells.
//!
//! | type | serialized form |
//! | --- | --- |
//! | `ascii`, `text` | the bytes (7-bit ASCII / valid UTF-8) |
//! | `bigint`, `counter`, `timestamp` | 8-byte big-endian two's complement (`timestamp`: ms since the epoch) |
//! | `int`, `smallint`, `tinyint` | 4 / 2 / 1 byte big-endian two's complement |
//! | `boolean` | 1 byte, 0 = false, anything else = true (written as 1) |
//! | `date` | 4-byte big-endian unsigned days, epoch at 2^31 |
//! | `time` | 8-byte big-endian nanoseconds since midnight |
//! | `float`, `double` | IEEE 754 big-endian, bit pattern preserved |
//! | `uuid`, `timeuuid` | the 16 bytes |
//! | `inet` | 4 (IPv4) or 16 (IPv6) bytes |
//! | `varint` | minimal big-endian two's complement (non-minimal input is accepted, as Java's `BigInteger` does) |
//! | `decimal` | 4-byte big-endian scale, then the unscaled value as a varint |
//! | `duration` | three signed vints (zigzag): months, days, nanoseconds |
//! | list, set | `[int n]` then n × `[int len][bytes]` (protocol v3+ format, nulls rejected) |
//! | map | `[int n]` then n × (key, value), each `[int len][bytes]` |
//! | tuple | per field `[int len][bytes]`, `len < 0` = null; trailing fields may be missing |
//!
//! Empty values: an empty byte string decodes to [`Value::Empty`] for the types that allow it
//! ([`CqlType::allows_empty`]: `bigint`, `boolean`, `counter`, `decimal`, `double`, `float`,
//! `inet`, `int`, `timestamp`, `timeuuid`, `uuid`, `varint`, tuples), as Cassandra's validators
//! accept it. For `ascii`, `text`, `blob` and custom types it is the empty string / blob; for
//! every other type (`date`, `time`, `smallint`, `tinyint`, `duration`, collections) it is an
//! error with Cassandra's message.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bigdecimal::BigDecimal;
use bytes::Bytes;
use num_bigint::BigInt;
use uuid::Uuid;

use super::cql_type::{CqlType, MAX_DEPTH};
use super::error::{marshal, TypeError};
use super::temporal::NANOS_PER_DAY;
use super::value::{sort_map, sort_set, Value};

/// Serializes a value. The value is assumed valid ([`Value::check`]); values from this
/// module's decoders and parsers always are. (A hand-built `Decimal` whose scale does not fit
/// an `i32` has its scale saturated; a collection or element larger than 2 GiB cannot be
/// represented and has its length saturated.)
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends the serialization of `value` to `out` (see [`encode`]).
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Empty => {}
        Value::Ascii(s) | Value::Text(s) => out.extend_from_slice(s.as_bytes()),
        Value::Blob(b) | Value::Custom(b) => out.extend_from_slice(b),
        Value::Bigint(v) | Value::Counter(v) | Value::Timestamp(v) | Value::Time(v) => {
            out.extend_from_slice(&v.to_be_bytes());
        }
        Value::Boolean(b) => out.push(u8::from(*b)),
        Value::Date(d) => out.extend_from_slice(&d.to_be_bytes()),
        Value::Decimal(d) => {
            let (unscaled, scale) = d.as_bigint_and_scale();
            let scale = i32::try_from(scale).unwrap_or(if scale < 0 { i32::MIN } else { i32::MAX });
            out.extend_from_slice(&scale.to_be_bytes());
            out.extend_from_slice(&unscaled.to_signed_bytes_be());
        }
        Value::Double(v) => out.extend_from_slice(&v.to_bits().to_be_bytes()),
        Value::Float(v) => out.extend_from_slice(&v.to_bits().to_be_bytes()),
        Value::Duration { months, days, nanoseconds } => {
            write_vint(i64::from(*months), out);
            write_vint(i64::from(*days), out);
            write_vint(*nanoseconds, out);
        }
        Value::Inet(IpAddr::V4(a)) => out.extend_from_slice(&a.octets()),
        Value::Inet(IpAddr::V6(a)) => out.extend_from_slice(&a.octets()),
        Value::Int(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Smallint(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Tinyint(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Timeuuid(u) | Value::Uuid(u) => out.extend_from_slice(u.as_bytes()),
        Value::Varint(v) => out.extend_from_slice(&v.to_signed_bytes_be()),
        Value::List(items) | Value::Set(items) => {
            write_len(items.len(), out);
            for item in items {
                encode_element(item, out);
            }
        }
        Value::Map(entries) => {
            write_len(entries.len(), out);
            for (k, v) in entries {
                encode_element(k, out);
                encode_element(v, out);
            }
        }
        Value::Tuple(fields) => {
            for field in fields {
                match field {
                    Some(v) => encode_element(v, out),
                    None => out.extend_from_slice(&(-1_i32).to_be_bytes()),
                }
            }
        }
    }
}

fn write_len(len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes());
}

/// `[int len][bytes]`, the length patched in after the element is written.
fn encode_element(value: &Value, out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    encode_into(value, out);
    let len = i32::try_from(out.len() - at - 4).unwrap_or(i32::MAX).to_be_bytes();
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&len);
    }
}

/// Deserializes and validates a value of type `ty`, as strictly as Cassandra's validators (see
/// the module documentation for the format and the treatment of empty values). Sets are sorted
/// and deduplicated, maps sorted by key, and tuples with missing trailing fields padded with
/// nulls, so the result satisfies [`Value::check`].
pub fn decode(ty: &CqlType, bytes: &[u8]) -> Result<Value, TypeError> {
    decode_at(ty, bytes, 1)
}

fn fixed<const N: usize>(bytes: &[u8], msg: impl FnOnce(usize) -> String) -> Result<[u8; N], TypeError> {
    <[u8; N]>::try_from(bytes).map_err(|_| marshal(msg(bytes.len())))
}

pub(crate) fn decode_at(ty: &CqlType, bytes: &[u8], depth: usize) -> Result<Value, TypeError> {
    if depth > MAX_DEPTH {
        return Err(TypeError::TooDeep { max: MAX_DEPTH });
    }
    if bytes.is_empty() && ty.allows_empty() {
        return Ok(Value::Empty);
    }
    Ok(match ty {
        CqlType::Ascii => Value::Ascii(decode_ascii(bytes)?),
        CqlType::Text => Value::Text(decode_utf8(bytes)?),
        CqlType::Blob => Value::Blob(Bytes::copy_from_slice(bytes)),
        CqlType::Custom(_) => Value::Custom(Bytes::copy_from_slice(bytes)),
        CqlType::Bigint => Value::Bigint(i64::from_be_bytes(fixed(bytes, long_msg)?)),
        CqlType::Counter => Value::Counter(i64::from_be_bytes(fixed(bytes, long_msg)?)),
        CqlType::Timestamp => Value::Timestamp(i64::from_be_bytes(fixed(bytes, |n| {
            format!("Expected 8 or 0 byte long for date ({n})")
        })?)),
        CqlType::Boolean => {
            let [b] = fixed::<1>(bytes, |n| format!("Expected 1 or 0 byte value ({n})"))?;
            Value::Boolean(b != 0)
        }
        CqlType::Date => {
            Value::Date(u32::from_be_bytes(fixed(bytes, |n| format!("Expected 4 byte long for date ({n})"))?))
        }
        CqlType::Time => {
            let t = i64::from_be_bytes(fixed(bytes, |n| format!("Expected 8 byte long for time ({n})"))?);
            if !(0..NANOS_PER_DAY).contains(&t) {
                return Err(marshal(format!("Time value {t} is outside 0..86400000000000 nanoseconds")));
            }
            Value::Time(t)
        }
        CqlType::Int => {
            Value::Int(i32::from_be_bytes(fixed(bytes, |n| format!("Expected 4 or 0 byte int ({n})"))?))
        }
        CqlType::Smallint => Value::Smallint(i16::from_be_bytes(fixed(bytes, |n| {
            format!("Expected 2 bytes for a smallint ({n})")
        })?)),
        CqlType::Tinyint => Value::Tinyint(i8::from_be_bytes(fixed(bytes, |n| {
            format!("Expected 1 byte for a tinyint ({n})")
        })?)),
        CqlType::Float => Value::Float(f32::from_bits(u32::from_be_bytes(fixed(bytes, |n| {
            format!("Expected 4 or 0 byte value for a float ({n})")
        })?))),
        CqlType::Double => Value::Double(f64::from_bits(u64::from_be_bytes(fixed(bytes, |n| {
            format!("Expected 8 or 0 byte value for a double ({n})")
        })?))),
        CqlType::Uuid => {
            Value::Uuid(Uuid::from_bytes(fixed(bytes, |n| format!("UUID should be 16 or 0 bytes ({n})"))?))
        }
        CqlType::Timeuuid => {
            let u = Uuid::from_bytes(fixed(bytes, |n| format!("TimeUUID should be 16 or 0 bytes ({n})"))?);
            if u.get_version_num() != 1 {
                return Err(marshal("Invalid version for TimeUUID type."));
            }
            Value::Timeuuid(u)
        }
        CqlType::Inet => Value::Inet(match bytes.len() {
            4 => IpAddr::V4(Ipv4Addr::from(fixed::<4>(bytes, |_| String::new())?)),
            16 => IpAddr::V6(Ipv6Addr::from(fixed::<16>(bytes, |_| String::new())?)),
            _ => {
                return Err(marshal(format!("Expected 4 or 16 byte inetaddress; got {}", hex_prefix(bytes))))
            }
        }),
        CqlType::Varint => Value::Varint(BigInt::from_signed_bytes_be(bytes)),
        CqlType::Decimal => {
            let (scale, unscaled) = bytes
                .split_first_chunk::<4>()
                .ok_or_else(|| marshal(format!("Expected 0 or at least 4 bytes ({})", bytes.len())))?;
            if unscaled.is_empty() {
                return Err(marshal("Invalid decimal: 4 bytes of scale but no unscaled value"));
            }
            let scale = i32::from_be_bytes(*scale);
            Value::Decimal(BigDecimal::new(BigInt::from_signed_bytes_be(unscaled), i64::from(scale)))
        }
        CqlType::Duration => decode_duration(bytes)?,
        CqlType::List { element, .. } => Value::List(decode_collection(bytes, "list", depth, |r| {
            decode_at(element, r.element()?, depth + 1)
        })?),
        CqlType::Set { element, .. } => {
            let items =
                decode_collection(bytes, "set", depth, |r| decode_at(element, r.element()?, depth + 1))?;
            Value::Set(sort_set(element, items))
        }
        CqlType::Map { key, value, .. } => {
            let entries = decode_collection(bytes, "map", depth, |r| {
                let k = decode_at(key, r.element()?, depth + 1)?;
                let v = decode_at(value, r.element()?, depth + 1)?;
                Ok((k, v))
            })?;
            Value::Map(sort_map(key, entries))
        }
        CqlType::Tuple(types) => decode_tuple(types, bytes, depth)?,
    })
}

fn long_msg(n: usize) -> String {
    format!("Expected 8 or 0 byte long ({n})")
}

/// Up to 32 bytes as `0x...` hex, for messages.
pub(crate) fn hex_prefix(bytes: &[u8]) -> String {
    let shown = bytes.get(..32).unwrap_or(bytes);
    let mut s = String::with_capacity(2 + 2 * shown.len() + 3);
    s.push_str("0x");
    for b in shown {
        s.push_str(&format!("{b:02x}"));
    }
    if shown.len() < bytes.len() {
        s.push_str("...");
    }
    s
}

pub(crate) fn decode_ascii(bytes: &[u8]) -> Result<String, TypeError> {
    if let Some(bad) = bytes.iter().find(|b| !b.is_ascii()) {
        return Err(marshal(format!("Invalid byte for ascii: {}", i32::from(*bad as i8))));
    }
    decode_utf8(bytes)
}

pub(crate) fn decode_utf8(bytes: &[u8]) -> Result<String, TypeError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => {
            let at = e.valid_up_to();
            Err(marshal(format!(
                "Invalid UTF-8 bytes at offset {at}: {}",
                hex_prefix(bytes.get(at..).unwrap_or_default())
            )))
        }
    }
}

/// A cursor over untrusted bytes; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.buf.split_at_checked(n)?;
        self.buf = tail;
        Some(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.buf.split_first_chunk::<N>()?;
        self.buf = tail;
        Some(*head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (first, tail) = self.buf.split_first()?;
        self.buf = tail;
        Some(*first)
    }

    fn i32(&mut self) -> Option<i32> {
        self.array::<4>().map(i32::from_be_bytes)
    }
}

/// Reads collection elements: `[int len][bytes]`, nulls rejected.
struct Elements<'a> {
    reader: Reader<'a>,
    kind: &'static str,
}

impl<'a> Elements<'a> {
    fn element(&mut self) -> Result<&'a [u8], TypeError> {
        let len =
            self.reader.i32().ok_or_else(|| marshal(format!("Not enough bytes to read a {}", self.kind)))?;
        let len = usize::try_from(len).map_err(|_| marshal("null is not supported inside collections"))?;
        self.reader.take(len).ok_or_else(|| marshal(format!("Not enough bytes to read a {}", self.kind)))
    }
}

fn decode_collection<T>(
    bytes: &[u8],
    kind: &'static str,
    depth: usize,
    mut item: impl FnMut(&mut Elements<'_>) -> Result<T, TypeError>,
) -> Result<Vec<T>, TypeError> {
    if depth >= MAX_DEPTH {
        return Err(TypeError::TooDeep { max: MAX_DEPTH });
    }
    let mut elements = Elements { reader: Reader::new(bytes), kind };
    let n = elements.reader.i32().ok_or_else(|| marshal(format!("Not enough bytes to read a {kind}")))?;
    let n =
        usize::try_from(n).map_err(|_| marshal(format!("The data cannot be deserialized as a {kind}")))?;
    // Every element takes at least its 4-byte length (8 bytes for a map entry): a count that
    // does not fit the remaining input is rejected before anything is allocated.
    let per_item = if kind == "map" { 8 } else { 4 };
    if n > elements.reader.remaining() / per_item {
        return Err(marshal(format!("Not enough bytes to read a {kind}")));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(item(&mut elements)?);
    }
    if elements.reader.remaining() > 0 {
        return Err(marshal(format!("Unexpected extraneous bytes after {kind} value")));
    }
    Ok(out)
}

fn decode_tuple(types: &[CqlType], bytes: &[u8], depth: usize) -> Result<Value, TypeError> {
    let mut r = Reader::new(bytes);
    let mut fields = Vec::with_capacity(types.len());
    for (i, t) in types.iter().enumerate() {
        // Missing trailing fields are nulls (fields added to a type later).
        if r.remaining() == 0 {
            break;
        }
        let len =
            r.i32().ok_or_else(|| marshal(format!("Not enough bytes to read size of {i}th component")))?;
        match usize::try_from(len) {
            Err(_) => fields.push(None),
            Ok(len) => {
                let field = r
                    .take(len)
                    .ok_or_else(|| marshal(format!("Not enough bytes to read {i}th component")))?;
                fields.push(Some(decode_at(t, field, depth + 1)?));
            }
        }
    }
    if r.remaining() > 0 {
        return Err(marshal("Invalid remaining data after end of tuple value"));
    }
    fields.resize(types.len(), None);
    Ok(Value::Tuple(fields))
}

fn decode_duration(bytes: &[u8]) -> Result<Value, TypeError> {
    if bytes.len() < 3 {
        return Err(marshal(format!("Expected at least 3 bytes for a duration ({})", bytes.len())));
    }
    let mut r = Reader::new(bytes);
    let truncated = || marshal("Not enough bytes to read a duration");
    let months = read_vint(&mut r).ok_or_else(truncated)?;
    let days = read_vint(&mut r).ok_or_else(truncated)?;
    let nanoseconds = read_vint(&mut r).ok_or_else(truncated)?;
    if r.remaining() > 0 {
        return Err(marshal("Unexpected extraneous bytes after duration value"));
    }
    let months = i32::try_from(months)
        .map_err(|_| marshal(format!("The duration months must be a 32 bits integer but was: {months}")))?;
    let days = i32::try_from(days)
        .map_err(|_| marshal(format!("The duration days must be a 32 bits integer but was: {days}")))?;
    if !((months >= 0 && days >= 0 && nanoseconds >= 0) || (months <= 0 && days <= 0 && nanoseconds <= 0)) {
        return Err(marshal(format!(
            "The duration months, days and nanoseconds must be all of the same sign ({months}, {days}, {nanoseconds})"
        )));
    }
    Ok(Value::Duration { months, days, nanoseconds })
}

// ---------------------------------------------------------------------------------------------
// Cassandra's vint: the number of extra bytes is the count of leading 1 bits of the first byte,
// the value follows big-endian in the remaining bits (at most 9 bytes). Signed values are
// zigzag-encoded.

pub(crate) fn write_unsigned_vint(v: u64, out: &mut Vec<u8>) {
    let lz = (v | 1).leading_zeros() as usize;
    let size = if lz == 0 { 9 } else { 9 - (lz - 1) / 7 };
    if size == 1 {
        out.push(v as u8);
        return;
    }
    let extra = size - 1;
    let be = v.to_be_bytes();
    let mask = !(0xff_u8.checked_shr(extra as u32).unwrap_or(0));
    if size == 9 {
        out.push(0xff);
        out.extend_from_slice(&be);
    } else {
        let value_bytes = be.get(8 - size..).unwrap_or(&be);
        if let Some((first, rest)) = value_bytes.split_first() {
            out.push(first | mask);
            out.extend_from_slice(rest);
        }
    }
}

pub(crate) fn write_vint(v: i64, out: &mut Vec<u8>) {
    write_unsigned_vint(((v << 1) ^ (v >> 63)) as u64, out);
}

/// Reads an unsigned vint; `None` if truncated. Non-minimal encodings are accepted (as
/// Cassandra does); see [`read_unsigned_vint_minimal`] for the strict variant.
pub(crate) fn read_unsigned_vint(r: &mut Reader<'_>) -> Option<u64> {
    read_unsigned_vint_sized(r).map(|(v, _)| v)
}

fn read_unsigned_vint_sized(r: &mut Reader<'_>) -> Option<(u64, usize)> {
    let first = r.u8()?;
    let extra = first.leading_ones() as usize;
    let mut v = u64::from(first & 0xff_u8.checked_shr(extra as u32).unwrap_or(0));
    for b in r.take(extra)? {
        v = (v << 8) | u64::from(*b);
    }
    Some((v, extra + 1))
}

/// Reads an unsigned vint and also reports whether it was minimally encoded.
pub(crate) fn read_unsigned_vint_minimal(r: &mut Reader<'_>) -> Option<(u64, bool)> {
    let (v, size) = read_unsigned_vint_sized(r)?;
    let mut canonical = Vec::with_capacity(9);
    write_unsigned_vint(v, &mut canonical);
    Some((v, canonical.len() == size))
}

pub(crate) fn read_vint(r: &mut Reader<'_>) -> Option<i64> {
    read_unsigned_vint(r).map(unzigzag)
}

pub(crate) fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vint(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_vint(v, &mut out);
        out
    }

    #[test]
    fn vints_match_cassandras_format() {
        assert_eq!(vint(0), [0x00]);
        assert_eq!(vint(1), [0x02]);
        assert_eq!(vint(-1), [0x01]);
        assert_eq!(vint(63), [0x7e]);
        assert_eq!(vint(64), [0x80, 0x80]);
        assert_eq!(vint(-65), [0x80, 0x81]);
        assert_eq!(vint(i64::MAX), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(vint(i64::MIN), [0xff; 9]);
        // 1 hour in nanoseconds: zigzag 7_200_000_000_000 = 0x068c61714000 (43 bits) needs 7 bytes.
        assert_eq!(vint(3_600_000_000_000), [0xfc, 0x06, 0x8c, 0x61, 0x71, 0x40, 0x00]);
        for shift in 0..64 {
            for delta in [-1_i64, 0, 1] {
                let v = (1_i64 << shift).wrapping_add(delta);
                for v in [v, v.wrapping_neg(), v.wrapping_neg().wrapping_sub(1)] {
                    let bytes = vint(v);
                    let mut r = Reader::new(&bytes);
                    assert_eq!(read_vint(&mut r), Some(v));
                    assert_eq!(r.remaining(), 0);
                    let mut r = Reader::new(&bytes);
                    assert_eq!(read_unsigned_vint_minimal(&mut r).map(|(_, m)| m), Some(true));
                }
            }
        }
        // Non-minimal: 5 in two bytes.
        let mut r = Reader::new(&[0x80, 0x05]);
        assert_eq!(read_unsigned_vint_minimal(&mut r), Some((5, false)));
        assert_eq!(read_unsigned_vint(&mut Reader::new(&[0xc0, 0x01])), None);
    }
}
