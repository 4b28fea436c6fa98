//! `Index.db`: one entry per partition, in partition order, each locating the partition in the
//! data stream and, for wide partitions, indexing its rows in blocks.
//!
//! ```text
//! Index.db := magic "SBLI" | version u8 (1 or 2) | reserved [0;3] | entry*
//! entry    := len u32le | crc32 u32le of body | body                     (version 1)
//!           | len varint | crc32 u32le of body | body                    (version 2)
//! body     := [token i64le] | key:lenbytes | data_position varint | data_length varint
//!             | block_count varint | block*          (the token in version 1 only)
//! block    := first_clustering:lenbytes | last_clustering:lenbytes | offset varint | width varint
//! ```
//! Version 2 (written today) drops the token, which is the key's Murmur3 hash and is
//! recomputed when needed, and frames the body with a varint length: 11 bytes less per
//! partition, about a third of a small partition's entry.
//! `data_position` is the partition's offset in the uncompressed data stream and `data_length`
//! its length; a block's `offset` is relative to the partition's start. Partitions with fewer
//! than two blocks of rows have no blocks.

use bytes::Bytes;

use crate::clustering::MAX_CLUSTERING_BYTES;
use crate::codec::{crc32, put_len_prefixed, put_varint, DecodeResult, Reader};
use crate::partition::{DecoratedKey, MAX_PARTITION_KEY_BYTES};
use crate::token::Token;

/// Magic of the index file.
pub const MAGIC: &[u8; 4] = b"SBLI";
/// The index format written today (see the module docs); version 1 is still read.
pub const VERSION: u8 = 2;
/// Bytes before the first entry.
pub const HEADER_BYTES: usize = 8;
/// Largest index entry accepted (a partition with a very large row index).
pub const MAX_ENTRY_BYTES: usize = 64 << 20;

/// A block of rows inside a wide partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowIndexBlock {
    /// Clustering of the block's first row.
    pub first: Bytes,
    /// Clustering of the block's last row.
    pub last: Bytes,
    /// Offset of the block's first row entry, relative to the partition start.
    pub offset: u64,
    /// Bytes of row entries in the block.
    pub width: u64,
}

/// Where one partition lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The partition.
    pub key: DecoratedKey,
    /// Offset in the uncompressed stream.
    pub position: u64,
    /// Length in the uncompressed stream.
    pub length: u64,
    /// Row index (empty for narrow partitions).
    pub blocks: Vec<RowIndexBlock>,
}

impl IndexEntry {
    /// Appends the framed entry (format [`VERSION`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(24 + self.key.key.len());
        put_len_prefixed(&mut body, &self.key.key);
        put_varint(&mut body, self.position);
        put_varint(&mut body, self.length);
        put_varint(&mut body, self.blocks.len() as u64);
        for b in &self.blocks {
            put_len_prefixed(&mut body, &b.first);
            put_len_prefixed(&mut body, &b.last);
            put_varint(&mut body, b.offset);
            put_varint(&mut body, b.width);
        }
        put_varint(out, body.len() as u64);
        out.extend_from_slice(&crc32(&body).to_le_bytes());
        out.extend_from_slice(&body);
    }

    /// Checks the framing and checksum of the entry at `offset` of an index of `version`;
    /// returns its body, the body's offset in the file and the next entry's offset.
    fn body_at(index: &[u8], version: u8, offset: usize) -> DecodeResult<(&[u8], usize, usize)> {
        let mut r = Reader::new(index);
        r.bytes(offset)?;
        let len = if version == 1 { u64::from(r.u32()?) } else { r.varint()? };
        let crc = r.u32()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_ENTRY_BYTES)
            .ok_or_else(|| r.error(format!("index entry length {len} exceeds {MAX_ENTRY_BYTES}")))?;
        let start = r.position();
        let body = r.bytes(len)?;
        if crc32(body) != crc {
            return Err(r.error("index entry checksum mismatch"));
        }
        Ok((body, start, r.position()))
    }

    /// The token (stored in version 1, the key's hash in version 2) and key at the start of a
    /// body.
    fn token_and_key<'b>(b: &mut Reader<'b>, version: u8) -> DecodeResult<(Token, &'b [u8])> {
        if version == 1 {
            let token = Token(b.i64()?);
            Ok((token, b.len_prefixed(MAX_PARTITION_KEY_BYTES)?))
        } else {
            let key = b.len_prefixed(MAX_PARTITION_KEY_BYTES)?;
            Ok((Token::of_key(key), key))
        }
    }

    /// Compares the key of the entry at `offset` with `key` without copying it; returns the
    /// ordering of the entry's key relative to `key` and the next entry's offset.
    pub fn compare_at(
        index: &[u8],
        version: u8,
        offset: usize,
        key: &DecoratedKey,
    ) -> DecodeResult<(std::cmp::Ordering, usize)> {
        let (body, start, next) = IndexEntry::body_at(index, version, offset)?;
        let mut b = Reader::new(body);
        let (token, k) = Self::token_and_key(&mut b, version).map_err(|mut e| {
            e.offset += start;
            e
        })?;
        Ok((token.cmp(&key.token).then_with(|| k.cmp(&key.key[..])), next))
    }

    /// Whether the entry at `offset` is the partition `key` (no token needed: equal keys have
    /// equal tokens); returns the answer and the next entry's offset.
    pub fn key_matches_at(
        index: &[u8],
        version: u8,
        offset: usize,
        key: &[u8],
    ) -> DecodeResult<(bool, usize)> {
        let (body, start, next) = IndexEntry::body_at(index, version, offset)?;
        let mut b = Reader::new(body);
        let found = (|| -> DecodeResult<bool> {
            if version == 1 {
                b.i64()?;
            }
            Ok(b.len_prefixed(MAX_PARTITION_KEY_BYTES)? == key)
        })()
        .map_err(|mut e| {
            e.offset += start;
            e
        })?;
        Ok((found, next))
    }

    /// Decodes the entry at `offset` of the index file; returns it and the next entry's offset.
    /// Only the token and key are decoded when `key_only` is set (blocks left empty).
    pub fn decode_at(
        index: &[u8],
        version: u8,
        offset: usize,
        key_only: bool,
    ) -> DecodeResult<(IndexEntry, usize)> {
        let (body, start, next) = IndexEntry::body_at(index, version, offset)?;
        let parsed = (|| -> DecodeResult<IndexEntry> {
            let mut b = Reader::new(body);
            let (token, key) = Self::token_and_key(&mut b, version)?;
            let key = Bytes::copy_from_slice(key);
            let position = b.varint()?;
            let length = b.varint()?;
            let mut blocks = Vec::new();
            if !key_only {
                let n = b.count(4)?;
                blocks.reserve(n);
                for _ in 0..n {
                    let first = Bytes::copy_from_slice(b.len_prefixed(MAX_CLUSTERING_BYTES)?);
                    let last = Bytes::copy_from_slice(b.len_prefixed(MAX_CLUSTERING_BYTES)?);
                    let offset = b.varint()?;
                    let width = b.varint()?;
                    if offset.checked_add(width).is_none_or(|e| e > length) || first > last {
                        return Err(b.error("row index block outside its partition"));
                    }
                    blocks.push(RowIndexBlock { first, last, offset, width });
                }
                if !b.is_empty() {
                    return Err(b.error("trailing bytes in index entry"));
                }
            }
            Ok(IndexEntry { key: DecoratedKey { token, key }, position, length, blocks })
        })();
        // Errors inside the body are relative to it; report file offsets.
        let entry = parsed.map_err(|mut e| {
            e.offset += start;
            e
        })?;
        Ok((entry, next))
    }
}
