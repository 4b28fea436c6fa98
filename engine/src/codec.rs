//! Bounded binary decoding and the small encoding helpers every format shares.
//!
//! Every length read from disk or the network goes through [`Reader`], which checks it against the
//! bytes actually present before anything is allocated. A decode failure is a [`DecodeError`]
//! carrying the offset inside the buffer; callers add the file name and base offset.

/// A failed decode: where in the buffer, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset inside the decoded buffer.
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at byte {})", self.reason, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// Result of a decode.
pub type DecodeResult<T> = Result<T, DecodeError>;

/// A cursor over a byte slice whose every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Current offset.
    #[must_use]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether everything was read.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// An error at the current offset.
    pub fn error(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError { offset: self.pos, reason: reason.into() }
    }

    /// Takes the next `len` bytes, failing if fewer remain.
    pub fn bytes(&mut self, len: usize) -> DecodeResult<&'a [u8]> {
        if len > self.remaining() {
            return Err(self.error(format!("needs {len} bytes but only {} remain", self.remaining())));
        }
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> DecodeResult<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> DecodeResult<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// Little-endian u16.
    pub fn u16(&mut self) -> DecodeResult<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Little-endian u32.
    pub fn u32(&mut self) -> DecodeResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Little-endian u64.
    pub fn u64(&mut self) -> DecodeResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Little-endian i64.
    pub fn i64(&mut self) -> DecodeResult<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// Unsigned LEB128, at most 10 bytes.
    pub fn varint(&mut self) -> DecodeResult<u64> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.u8()?;
            if i == 9 && byte > 1 {
                self.pos = start;
                return Err(self.error("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.pos = start;
        Err(self.error("varint longer than 10 bytes"))
    }

    /// A varint that must fit in `u32`.
    pub fn varint_u32(&mut self) -> DecodeResult<u32> {
        let v = self.varint()?;
        u32::try_from(v).map_err(|_| self.error(format!("value {v} does not fit in 32 bits")))
    }

    /// A varint length at most `max`, also checked against the bytes that remain.
    pub fn len(&mut self, max: usize) -> DecodeResult<usize> {
        let v = self.varint()?;
        if v > max as u64 || v > self.remaining() as u64 {
            return Err(self.error(format!(
                "length {v} exceeds the limit {max} or the {} bytes that remain",
                self.remaining()
            )));
        }
        Ok(v as usize)
    }

    /// A varint-length-prefixed byte string of at most `max` bytes.
    pub fn len_prefixed(&mut self, max: usize) -> DecodeResult<&'a [u8]> {
        let len = self.len(max)?;
        self.bytes(len)
    }

    /// A count of items that each take at least `min_item_bytes`; rejects counts the remaining
    /// bytes cannot hold, so `Vec::with_capacity(count)` is safe afterwards.
    pub fn count(&mut self, min_item_bytes: usize) -> DecodeResult<usize> {
        let v = self.varint()?;
        let cap = self.remaining() / min_item_bytes.max(1);
        if v > cap as u64 {
            return Err(
                self.error(format!("count {v} cannot fit in the {} bytes that remain", self.remaining()))
            );
        }
        Ok(v as usize)
    }
}

/// Appends an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a varint length and the bytes.
pub fn put_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Number of bytes `put_varint` writes for `v`.
#[must_use]
pub fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// CRC32 (the IEEE polynomial, as Java's `java.util.zip.CRC32` and Cassandra use).
#[must_use]
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width() {
        let values = [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX - 1, u64::MAX];
        for v in values {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "length of {v}");
            let mut r = Reader::new(&out);
            assert_eq!(r.varint().unwrap(), v);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let bytes = [0xffu8; 11];
        assert!(Reader::new(&bytes).varint().is_err());
        let mut too_big = vec![0xffu8; 9];
        too_big.push(0x02);
        assert!(Reader::new(&too_big).varint().is_err());
    }

    #[test]
    fn lengths_beyond_remaining_bytes_are_rejected_before_allocation() {
        let mut out = Vec::new();
        put_varint(&mut out, 1 << 40);
        out.extend_from_slice(b"abc");
        assert!(Reader::new(&out).len(usize::MAX).is_err());
        assert!(Reader::new(&out).count(1).is_err());
        let mut ok = Vec::new();
        put_len_prefixed(&mut ok, b"abc");
        assert_eq!(Reader::new(&ok).len_prefixed(3).unwrap(), b"abc");
        assert!(Reader::new(&ok).len_prefixed(2).is_err());
    }

    #[test]
    fn crc32_matches_java() {
        // java.util.zip.CRC32 of "123456789" is 0xCBF43926.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
