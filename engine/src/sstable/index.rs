//! `Index.db`: one entry per partition, in partition order, each locating the partition in the
//! data stream and, for wide partitions, indexing its rows in blocks.
//!
//! ```text
//! Index.db := magic "SBLI" | version u8 (=1) | reserved [0;3] | entry*
//! entry    := len u32le | crc32 u32le of body | body
//! body     := token i64le | key:lenbytes | data_position varint | data_length varint
//!             | block_count varint | block*
//! block    := first_clustering:lenbytes | last_clustering:lenbytes | offset varint | width varint
//! ```
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
    /// Appends the framed entry.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(32 + self.key.key.len());
        body.extend_from_slice(&self.key.token.0.to_le_bytes());
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
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32(&body).to_le_bytes());
        out.extend_from_slice(&body);
    }

    /// Checks the framing and checksum of the entry at `offset`; returns its body and the
    /// next entry's offset.
    fn body_at(index: &[u8], offset: usize) -> DecodeResult<(&[u8], usize)> {
        let mut r = Reader::new(index);
        r.bytes(offset)?;
        let len = r.u32()? as usize;
        let crc = r.u32()?;
        if len > MAX_ENTRY_BYTES {
            return Err(r.error(format!("index entry length {len} exceeds {MAX_ENTRY_BYTES}")));
        }
        let body = r.bytes(len)?;
        if crc32(body) != crc {
            return Err(r.error("index entry checksum mismatch"));
        }
        Ok((body, r.position()))
    }

    /// Compares the key of the entry at `offset` with `key` without copying it; returns the
    /// ordering of the entry's key relative to `key` and the next entry's offset.
    pub fn compare_at(
        index: &[u8],
        offset: usize,
        key: &DecoratedKey,
    ) -> DecodeResult<(std::cmp::Ordering, usize)> {
        let (body, next) = IndexEntry::body_at(index, offset)?;
        let mut b = Reader::new(body);
        let token = Token(b.i64()?);
        let k = b.len_prefixed(MAX_PARTITION_KEY_BYTES)?;
        Ok((token.cmp(&key.token).then_with(|| k.cmp(&key.key[..])), next))
    }

    /// Decodes the entry at `offset` of the index file; returns it and the next entry's offset.
    /// Only the token and key are decoded when `key_only` is set (blocks left empty).
    pub fn decode_at(index: &[u8], offset: usize, key_only: bool) -> DecodeResult<(IndexEntry, usize)> {
        let (body, next) = IndexEntry::body_at(index, offset)?;
        let parsed = (|| -> DecodeResult<IndexEntry> {
            let mut b = Reader::new(body);
            let token = Token(b.i64()?);
            let key = Bytes::copy_from_slice(b.len_prefixed(MAX_PARTITION_KEY_BYTES)?);
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
            e.offset += offset + 8;
            e
        })?;
        Ok((entry, next))
    }
}
