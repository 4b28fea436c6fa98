//! Bounded readers and writers for the notations of spec §3.
//!
//! [`Reader`] walks a frame body; every length is checked against the bytes that remain *before*
//! anything is allocated, so a lying length can at most make the decoder fail, never make it
//! allocate more than the (already bounded) frame. List capacities are capped by what the
//! remaining bytes could possibly hold. Writers (`put_*`) return an error instead of truncating
//! when a value does not fit its length prefix.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

use crate::protocol::consistency::Consistency;
use crate::protocol::error::{ProtocolError, Result};
use crate::protocol::frame::Opcode;

/// `[string map]`: keys are unique; a later duplicate replaces an earlier one.
pub type StringMap = BTreeMap<String, String>;
/// `[string multimap]`.
pub type StringMultimap = BTreeMap<String, Vec<String>>;
/// `[bytes map]` (custom payloads); values may be null.
pub type BytesMap = BTreeMap<String, Option<Bytes>>;

/// A `[value]`: bytes, null (length -1) or not set (length -2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BindValue {
    /// Length -1.
    Null,
    /// Length -2: leave the existing value unchanged.
    Unset,
    /// Length >= 0.
    Bytes(Bytes),
}

impl BindValue {
    /// A value from anything convertible to `Bytes`.
    pub fn bytes(value: impl Into<Bytes>) -> Self {
        BindValue::Bytes(value.into())
    }
}

/// A cursor over an untrusted body. All reads are bounds-checked and return errors.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    /// Reads from `buf`; sub-slices share its allocation.
    pub fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether everything was consumed.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unconsumed bytes.
    pub fn into_rest(self) -> Bytes {
        self.buf
    }

    /// Errors if bytes remain (requests must not carry trailing garbage).
    pub fn expect_end(&self, opcode: Opcode) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::TrailingBytes { opcode, remaining: self.buf.len() })
        }
    }

    fn need(&self, needed: usize, what: &'static str) -> Result<()> {
        if needed > self.buf.len() {
            Err(ProtocolError::Truncated { what, needed, remaining: self.buf.len() })
        } else {
            Ok(())
        }
    }

    /// Takes exactly `n` raw bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<Bytes> {
        self.need(n, what)?;
        Ok(self.buf.split_to(n))
    }

    /// Capacity to reserve for `count` elements of at least `min_element_bytes` each: never more
    /// than the remaining bytes could hold.
    pub fn capacity_for(&self, count: usize, min_element_bytes: usize) -> usize {
        count.min(self.buf.len() / min_element_bytes.max(1))
    }

    /// `[byte]`.
    pub fn read_byte(&mut self, what: &'static str) -> Result<u8> {
        self.need(1, what)?;
        Ok(self.buf.get_u8())
    }

    /// `[short]`: unsigned 16 bits.
    pub fn read_short(&mut self, what: &'static str) -> Result<u16> {
        self.need(2, what)?;
        Ok(self.buf.get_u16())
    }

    /// `[int]`.
    pub fn read_int(&mut self, what: &'static str) -> Result<i32> {
        self.need(4, what)?;
        Ok(self.buf.get_i32())
    }

    /// `[long]`.
    pub fn read_long(&mut self, what: &'static str) -> Result<i64> {
        self.need(8, what)?;
        Ok(self.buf.get_i64())
    }

    fn utf8(bytes: Bytes, what: &'static str) -> Result<String> {
        std::str::from_utf8(&bytes).map(str::to_owned).map_err(|_| ProtocolError::InvalidUtf8 { what })
    }

    /// `[string]`: `[short]` length then UTF-8.
    pub fn read_string(&mut self, what: &'static str) -> Result<String> {
        let len = self.read_short(what)?;
        let bytes = self.take(usize::from(len), what)?;
        Self::utf8(bytes, what)
    }

    /// `[long string]`: `[int]` length (>= 0) then UTF-8.
    pub fn read_long_string(&mut self, what: &'static str) -> Result<String> {
        let len = self.read_int(what)?;
        let len = usize::try_from(len)
            .map_err(|_| ProtocolError::InvalidLength { what, length: i64::from(len) })?;
        let bytes = self.take(len, what)?;
        Self::utf8(bytes, what)
    }

    /// `[uuid]`.
    pub fn read_uuid(&mut self, what: &'static str) -> Result<Uuid> {
        let bytes = self.take(16, what)?;
        Uuid::from_slice(&bytes).map_err(|e| ProtocolError::Invalid { what, reason: e.to_string() })
    }

    /// `[string list]`.
    pub fn read_string_list(&mut self, what: &'static str) -> Result<Vec<String>> {
        let n = usize::from(self.read_short(what)?);
        let mut out = Vec::with_capacity(self.capacity_for(n, 2));
        for _ in 0..n {
            out.push(self.read_string(what)?);
        }
        Ok(out)
    }

    /// `[bytes]`: a negative length is null.
    pub fn read_bytes(&mut self, what: &'static str) -> Result<Option<Bytes>> {
        let len = self.read_int(what)?;
        match usize::try_from(len) {
            Ok(len) => Ok(Some(self.take(len, what)?)),
            Err(_) => Ok(None),
        }
    }

    /// `[value]`: -1 null, -2 unset, below -2 an error.
    pub fn read_value(&mut self, what: &'static str) -> Result<BindValue> {
        let len = self.read_int(what)?;
        match len {
            -1 => Ok(BindValue::Null),
            -2 => Ok(BindValue::Unset),
            _ => match usize::try_from(len) {
                Ok(len) => Ok(BindValue::Bytes(self.take(len, what)?)),
                Err(_) => Err(ProtocolError::InvalidLength { what, length: i64::from(len) }),
            },
        }
    }

    /// `[short bytes]`.
    pub fn read_short_bytes(&mut self, what: &'static str) -> Result<Bytes> {
        let len = self.read_short(what)?;
        self.take(usize::from(len), what)
    }

    /// `[inet]`: `[byte]` size (4 or 16), the address, then an `[int]` port.
    pub fn read_inet(&mut self, what: &'static str) -> Result<SocketAddr> {
        let size = self.read_byte(what)?;
        let ip = match size {
            4 => {
                let b = self.take(4, what)?;
                let octets: [u8; 4] = b.as_ref().try_into().map_err(|_| ProtocolError::Truncated {
                    what,
                    needed: 4,
                    remaining: b.len(),
                })?;
                IpAddr::V4(Ipv4Addr::from(octets))
            }
            16 => {
                let b = self.take(16, what)?;
                let octets: [u8; 16] = b.as_ref().try_into().map_err(|_| ProtocolError::Truncated {
                    what,
                    needed: 16,
                    remaining: b.len(),
                })?;
                IpAddr::V6(Ipv6Addr::from(octets))
            }
            other => return Err(ProtocolError::InvalidLength { what, length: i64::from(other) }),
        };
        let port = self.read_int(what)?;
        let port = u16::try_from(port).map_err(|_| ProtocolError::Invalid {
            what,
            reason: format!("port {port} is outside 0..=65535"),
        })?;
        Ok(SocketAddr::new(ip, port))
    }

    /// `[consistency]`.
    pub fn read_consistency(&mut self, what: &'static str) -> Result<Consistency> {
        Consistency::from_code(self.read_short(what)?)
    }

    /// `[string map]`.
    pub fn read_string_map(&mut self, what: &'static str) -> Result<StringMap> {
        let n = self.read_short(what)?;
        let mut out = StringMap::new();
        for _ in 0..n {
            let k = self.read_string(what)?;
            let v = self.read_string(what)?;
            out.insert(k, v);
        }
        Ok(out)
    }

    /// `[string multimap]`.
    pub fn read_string_multimap(&mut self, what: &'static str) -> Result<StringMultimap> {
        let n = self.read_short(what)?;
        let mut out = StringMultimap::new();
        for _ in 0..n {
            let k = self.read_string(what)?;
            let v = self.read_string_list(what)?;
            out.insert(k, v);
        }
        Ok(out)
    }

    /// `[bytes map]`.
    pub fn read_bytes_map(&mut self, what: &'static str) -> Result<BytesMap> {
        let n = self.read_short(what)?;
        let mut out = BytesMap::new();
        for _ in 0..n {
            let k = self.read_string(what)?;
            let v = self.read_bytes(what)?;
            out.insert(k, v);
        }
        Ok(out)
    }
}

fn too_long(what: &'static str, length: usize, max: usize) -> ProtocolError {
    ProtocolError::EncodeTooLong { what, length, max }
}

/// A length or count as a `[short]`.
pub fn short_len(len: usize, what: &'static str) -> Result<u16> {
    u16::try_from(len).map_err(|_| too_long(what, len, usize::from(u16::MAX)))
}

/// A length or count as a non-negative `[int]`.
pub fn int_len(len: usize, what: &'static str) -> Result<i32> {
    i32::try_from(len).map_err(|_| too_long(what, len, i32::MAX as usize))
}

/// `[string]`.
pub fn put_string(out: &mut BytesMut, s: &str, what: &'static str) -> Result<()> {
    out.put_u16(short_len(s.len(), what)?);
    out.put_slice(s.as_bytes());
    Ok(())
}

/// `[long string]`.
pub fn put_long_string(out: &mut BytesMut, s: &str, what: &'static str) -> Result<()> {
    out.put_i32(int_len(s.len(), what)?);
    out.put_slice(s.as_bytes());
    Ok(())
}

/// `[uuid]`.
pub fn put_uuid(out: &mut BytesMut, id: &Uuid) {
    out.put_slice(id.as_bytes());
}

/// `[string list]`.
pub fn put_string_list<S: AsRef<str>>(out: &mut BytesMut, list: &[S], what: &'static str) -> Result<()> {
    out.put_u16(short_len(list.len(), what)?);
    for s in list {
        put_string(out, s.as_ref(), what)?;
    }
    Ok(())
}

/// `[bytes]`: `None` is null (length -1).
pub fn put_bytes(out: &mut BytesMut, value: Option<&[u8]>, what: &'static str) -> Result<()> {
    match value {
        None => out.put_i32(-1),
        Some(b) => {
            out.put_i32(int_len(b.len(), what)?);
            out.put_slice(b);
        }
    }
    Ok(())
}

/// `[value]`.
pub fn put_value(out: &mut BytesMut, value: &BindValue, what: &'static str) -> Result<()> {
    match value {
        BindValue::Null => out.put_i32(-1),
        BindValue::Unset => out.put_i32(-2),
        BindValue::Bytes(b) => {
            out.put_i32(int_len(b.len(), what)?);
            out.put_slice(b);
        }
    }
    Ok(())
}

/// `[short bytes]`.
pub fn put_short_bytes(out: &mut BytesMut, b: &[u8], what: &'static str) -> Result<()> {
    out.put_u16(short_len(b.len(), what)?);
    out.put_slice(b);
    Ok(())
}

/// `[inet]`.
pub fn put_inet(out: &mut BytesMut, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.put_u8(4);
            out.put_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.put_u8(16);
            out.put_slice(&ip.octets());
        }
    }
    out.put_i32(i32::from(addr.port()));
}

/// `[consistency]`.
pub fn put_consistency(out: &mut BytesMut, consistency: Consistency) {
    out.put_u16(consistency.code());
}

/// `[string map]`.
pub fn put_string_map(out: &mut BytesMut, map: &StringMap, what: &'static str) -> Result<()> {
    out.put_u16(short_len(map.len(), what)?);
    for (k, v) in map {
        put_string(out, k, what)?;
        put_string(out, v, what)?;
    }
    Ok(())
}

/// `[string multimap]`.
pub fn put_string_multimap(out: &mut BytesMut, map: &StringMultimap, what: &'static str) -> Result<()> {
    out.put_u16(short_len(map.len(), what)?);
    for (k, v) in map {
        put_string(out, k, what)?;
        put_string_list(out, v, what)?;
    }
    Ok(())
}

/// `[bytes map]`.
pub fn put_bytes_map(out: &mut BytesMut, map: &BytesMap, what: &'static str) -> Result<()> {
    out.put_u16(short_len(map.len(), what)?);
    for (k, v) in map {
        put_string(out, k, what)?;
        put_bytes(out, v.as_deref(), what)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> Reader {
        Reader::new(Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn primitives_are_big_endian() {
        let mut r = reader(&[0x01, 0x02, 0xFF, 0xFF, 0xFF, 0xFE, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x7F]);
        assert_eq!(r.read_short("s").unwrap(), 0x0102);
        assert_eq!(r.read_int("i").unwrap(), -2);
        assert_eq!(r.read_long("l").unwrap(), 256);
        assert_eq!(r.read_byte("b").unwrap(), 0x7F);
        assert!(r.is_empty());
        assert!(matches!(r.read_byte("b"), Err(ProtocolError::Truncated { needed: 1, remaining: 0, .. })));
    }

    #[test]
    fn short_is_unsigned() {
        // a [string] of length 0x8000 must not be read as negative
        let mut bytes = vec![0x80, 0x00];
        bytes.extend(std::iter::repeat_n(b'a', 0x8000));
        assert_eq!(reader(&bytes).read_string("s").unwrap().len(), 0x8000);
    }

    #[test]
    fn strings_round_trip_and_check_utf8() {
        let mut out = BytesMut::new();
        put_string(&mut out, "héllo", "s").unwrap();
        put_long_string(&mut out, "SELECT * FROM t", "q").unwrap();
        let mut r = Reader::new(out.freeze());
        assert_eq!(r.read_string("s").unwrap(), "héllo");
        assert_eq!(r.read_long_string("q").unwrap(), "SELECT * FROM t");
        assert!(r.is_empty());
        assert_eq!(
            reader(&[0, 1, 0xFF]).read_string("s").unwrap_err(),
            ProtocolError::InvalidUtf8 { what: "s" }
        );
        assert!(matches!(
            reader(&[0xFF, 0xFF, 0xFF, 0xFF]).read_long_string("q"),
            Err(ProtocolError::InvalidLength { length: -1, .. })
        ));
    }

    #[test]
    fn lying_lengths_fail_without_allocating() {
        // [long string] claiming 2 GiB in a 6-byte body
        let err = reader(&[0x7F, 0xFF, 0xFF, 0xFF, b'a', b'b']).read_long_string("query").unwrap_err();
        assert_eq!(err, ProtocolError::Truncated { what: "query", needed: i32::MAX as usize, remaining: 2 });
        assert_eq!(err.to_string(), "truncated query: needs 2147483647 bytes but only 2 remain");
        // [string list] claiming 65535 entries: capacity is capped by the remaining bytes
        let r = reader(&[0xFF, 0xFF, 0, 0]);
        assert_eq!(r.capacity_for(65535, 2), 2);
        assert!(reader(&[0xFF, 0xFF, 0, 0]).read_string_list("l").is_err());
        assert!(reader(&[0x7F, 0xFF, 0xFF, 0xFF]).read_bytes("b").is_err());
        assert!(reader(&[0xFF, 0xFF]).read_short_bytes("b").is_err());
    }

    #[test]
    fn values_null_unset_and_invalid() {
        let mut out = BytesMut::new();
        for v in
            [BindValue::Null, BindValue::Unset, BindValue::bytes(&b"xy"[..]), BindValue::bytes(Bytes::new())]
        {
            put_value(&mut out, &v, "v").unwrap();
        }
        assert_eq!(&out[..8], &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE]);
        let mut r = Reader::new(out.freeze());
        assert_eq!(r.read_value("v").unwrap(), BindValue::Null);
        assert_eq!(r.read_value("v").unwrap(), BindValue::Unset);
        assert_eq!(r.read_value("v").unwrap(), BindValue::bytes(&b"xy"[..]));
        assert_eq!(r.read_value("v").unwrap(), BindValue::bytes(Bytes::new()));
        assert!(r.is_empty());
        assert_eq!(
            reader(&[0xFF, 0xFF, 0xFF, 0xFD]).read_value("v").unwrap_err(),
            ProtocolError::InvalidLength { what: "v", length: -3 }
        );
        // [bytes]: any negative length is null
        assert_eq!(reader(&[0xFF, 0xFF, 0xFF, 0xFD]).read_bytes("b").unwrap(), None);
    }

    #[test]
    fn inet_round_trips_v4_and_v6_and_rejects_bad_sizes() {
        for addr in ["127.0.0.1:9042", "[::1]:7000", "[2001:db8::5]:65535"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let mut out = BytesMut::new();
            put_inet(&mut out, &addr);
            assert_eq!(Reader::new(out.freeze()).read_inet("inet").unwrap(), addr);
        }
        let mut out = BytesMut::new();
        put_inet(&mut out, &"10.0.0.2:9042".parse().unwrap());
        assert_eq!(&out[..], &[4, 10, 0, 0, 2, 0, 0, 0x23, 0x52]);
        assert!(reader(&[5, 1, 2, 3, 4, 5, 0, 0, 0, 1]).read_inet("inet").is_err());
        assert!(reader(&[4, 1, 2, 3, 4, 0, 1, 0, 0]).read_inet("inet").is_err());
    }

    #[test]
    fn maps_round_trip() {
        let mut sm = StringMap::new();
        sm.insert("CQL_VERSION".into(), "3.4.5".into());
        sm.insert("COMPRESSION".into(), "lz4".into());
        let mut mm = StringMultimap::new();
        mm.insert("COMPRESSION".into(), vec!["lz4".into(), "snappy".into()]);
        mm.insert("EMPTY".into(), vec![]);
        let mut bm = BytesMap::new();
        bm.insert("a".into(), Some(Bytes::from_static(b"1")));
        bm.insert("b".into(), None);
        let mut out = BytesMut::new();
        put_string_map(&mut out, &sm, "m").unwrap();
        put_string_multimap(&mut out, &mm, "mm").unwrap();
        put_bytes_map(&mut out, &bm, "bm").unwrap();
        put_short_bytes(&mut out, b"id", "id").unwrap();
        put_consistency(&mut out, Consistency::LocalQuorum);
        let id = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        put_uuid(&mut out, &id);
        put_string_list(&mut out, &["x", "y"], "l").unwrap();
        let mut r = Reader::new(out.freeze());
        assert_eq!(r.read_string_map("m").unwrap(), sm);
        assert_eq!(r.read_string_multimap("mm").unwrap(), mm);
        assert_eq!(r.read_bytes_map("bm").unwrap(), bm);
        assert_eq!(&r.read_short_bytes("id").unwrap()[..], b"id");
        assert_eq!(r.read_consistency("c").unwrap(), Consistency::LocalQuorum);
        assert_eq!(r.read_uuid("u").unwrap(), id);
        assert_eq!(r.read_string_list("l").unwrap(), vec!["x".to_owned(), "y".to_owned()]);
        r.expect_end(Opcode::Query).unwrap();
    }

    #[test]
    fn writers_refuse_values_that_do_not_fit() {
        let long = "a".repeat(70_000);
        let mut out = BytesMut::new();
        assert_eq!(
            put_string(&mut out, &long, "name").unwrap_err(),
            ProtocolError::EncodeTooLong { what: "name", length: 70_000, max: 65_535 }
        );
        assert!(put_short_bytes(&mut out, long.as_bytes(), "id").is_err());
        assert!(put_long_string(&mut out, &long, "q").is_ok());
    }
}
