//! The paging state handed to clients: where the next page of a SELECT resumes.
//!
//! Clients treat it as opaque bytes and send it back, so it is untrusted input: it is versioned,
//! checksummed and bounded, and a damaged one is refused with an Invalid error. The format is
//! documented in `docs/format/paging-state.md`.
//!
//! ```text
//! paging_state := version u8 (= 1) | flags u8 (bit 0: resumes inside the partition)
//!                 | key_len u32be | key | [clustering_len u32be | clustering]
//!                 | remaining u32be | remaining_in_partition u32be | crc32 u32be
//! ```

use bytes::Bytes;

use crate::error::{Error, Result};

const VERSION: u8 = 1;
const MAX_PART_BYTES: usize = 1 << 20;

/// Where a paged SELECT stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagingState {
    /// Engine partition key of the last row returned.
    pub key: Bytes,
    /// Engine clustering key of the last row returned, or `None` if the partition is done.
    pub clustering: Option<Bytes>,
    /// Rows still allowed by LIMIT.
    pub remaining: u32,
    /// Rows still allowed in this partition by PER PARTITION LIMIT.
    pub remaining_in_partition: u32,
}

impl PagingState {
    /// Encodes the state.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut out =
            Vec::with_capacity(24 + self.key.len() + self.clustering.as_ref().map_or(0, Bytes::len));
        out.push(VERSION);
        out.push(u8::from(self.clustering.is_some()));
        put(&mut out, &self.key);
        if let Some(c) = &self.clustering {
            put(&mut out, c);
        }
        out.extend_from_slice(&self.remaining.to_be_bytes());
        out.extend_from_slice(&self.remaining_in_partition.to_be_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        Bytes::from(out)
    }

    /// Decodes and verifies a state a client sent back.
    pub fn decode(bytes: &[u8]) -> Result<PagingState> {
        let bad = || Error::invalid("Invalid value for the paging state");
        let (body, crc) =
            bytes.split_at_checked(bytes.len().checked_sub(4).ok_or_else(bad)?).ok_or_else(bad)?;
        if crc32fast::hash(body) != u32::from_be_bytes(crc.try_into().map_err(|_| bad())?) {
            return Err(bad());
        }
        let mut r = body;
        let mut take = |n: usize| -> Result<&[u8]> {
            let (head, tail) = r.split_at_checked(n).ok_or_else(bad)?;
            r = tail;
            Ok(head)
        };
        if take(1)? != [VERSION] {
            return Err(bad());
        }
        let flags = take(1)?[0];
        let key_len = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
        if key_len > MAX_PART_BYTES {
            return Err(bad());
        }
        let key = Bytes::copy_from_slice(take(key_len)?);
        let clustering = if flags & 1 == 1 {
            let len = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
            if len > MAX_PART_BYTES {
                return Err(bad());
            }
            Some(Bytes::copy_from_slice(take(len)?))
        } else {
            None
        };
        let remaining = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?);
        let remaining_in_partition = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?);
        if !r.is_empty() || flags > 1 {
            return Err(bad());
        }
        Ok(PagingState { key, clustering, remaining, remaining_in_partition })
    }
}

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoding is a format clients keep between requests (and across a node upgrade):
    /// it must not change by accident. See docs/format/paging-state.md.
    #[test]
    fn paging_state_has_a_stable_encoding() {
        let s = PagingState {
            key: Bytes::from_static(&[0, 0, 0, 1]),
            clustering: Some(Bytes::from_static(&[0x40, 0x80, 0, 0, 3, 0, 1, 0x38])),
            remaining: 7,
            remaining_in_partition: u32::MAX,
        };
        let b = s.encode();
        let body: &[u8] = &[
            1, 1, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 8, 0x40, 0x80, 0, 0, 3, 0, 1, 0x38, 0, 0, 0, 7, 0xff,
            0xff, 0xff, 0xff,
        ];
        assert_eq!(&b[..body.len()], body);
        assert_eq!(&b[body.len()..], &crc32fast::hash(body).to_be_bytes());
        assert_eq!(PagingState::decode(&b).unwrap(), s);
    }

    #[test]
    fn paging_state_round_trips_and_every_damage_is_refused() {
        let s = PagingState {
            key: Bytes::from_static(b"key"),
            clustering: Some(Bytes::from_static(b"\x40ab\x00\x01\x38")),
            remaining: 7,
            remaining_in_partition: u32::MAX,
        };
        let b = s.encode();
        assert_eq!(PagingState::decode(&b).unwrap(), s);
        for cut in 0..b.len() {
            assert!(PagingState::decode(&b[..cut]).is_err(), "truncated at {cut}");
        }
        for i in 0..b.len() {
            let mut d = b.to_vec();
            d[i] ^= 0x10;
            assert!(PagingState::decode(&d).is_err(), "flipped byte {i}");
        }
    }
}
