//! `Index.db`: entries in partition order, each locating a partition in the data stream and,
//! for wide partitions, indexing its rows in blocks. Versions 1 to 3 have one entry per
//! partition; version 4 (written today) is sparse: it indexes the first partition that starts
//! in each chunk of the data stream and every partition with a row index, and a lookup scans
//! the partitions of one chunk in the data to find the others.
//!
//! ```text
//! Index.db := magic "SBLI" | version u8 (1 to 4) | reserved [0;3] | entry*
//!             | [crc32 u32le of everything before (versions 3 and 4)]
//! entry    := len u32le | crc32 u32le of body | body                     (version 1)
//!           | len varint | crc32 u32le of body | body                    (version 2)
//!           | key:lenbytes | data_length varint | block_count varint | block*   (version 3)
//!           | token i64le | key:lenbytes | data_position varint | data_length varint
//!             | block_count varint | block*                                        (version 4)
//! body     := [token i64le] | key:lenbytes | data_position varint | data_length varint
//!             | block_count varint | block*          (the token in version 1 only)
//! block    := first_clustering:lenbytes | last_clustering:lenbytes | offset varint | width varint
//! ```
//! Version 2 drops the token, which is the key's Murmur3 hash and is recomputed when needed,
//! and frames the body with a varint length: 11 bytes less per partition. Version 3 (written
//! today) also drops the framing, the per-entry checksum and the position: partitions are
//! contiguous in the data stream, so an entry's position is the previous entry's position plus
//! its length, carried by an [`IndexCursor`] (the summary keeps the position of every entry it
//! samples). One checksum of the whole file, verified when the SSTable is opened (which reads
//! every entry anyway), replaces the per-entry ones: 9 to 10 bytes less per partition again.
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
/// The index format written today (see the module docs); versions 1 to 3 are still read.
pub const VERSION: u8 = 4;
/// Bytes after the last entry in versions 3 and 4 (the file checksum).
pub const TRAILER_BYTES: usize = 4;

/// Where a walk over an SSTable's partitions is: the data stream position of the next
/// partition, and the file offset of the first index entry at or after it (in the dense versions
/// 1 to 3 that entry is the partition's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexCursor {
    /// Offset of the next index entry in `Index.db`.
    pub offset: usize,
    /// Data stream position of the next partition.
    pub position: u64,
}
/// Bytes before the first entry.
pub const HEADER_BYTES: usize = 8;
/// Largest index entry accepted (a partition with a very large row index).
pub const MAX_ENTRY_BYTES: usize = 64 << 20;

/// The head of a parsed index entry.
struct ParsedHead<'a> {
    /// The token as stored (version 1); later versions recompute it from the key on demand.
    stored_token: Option<Token>,
    key: &'a [u8],
    position: u64,
    length: u64,
    /// The body after the length (the row-index blocks).
    rest: Reader<'a>,
    /// File offset of the body, for error offsets.
    body_offset: usize,
    next: IndexCursor,
}

impl ParsedHead<'_> {
    /// The entry's token: stored, or the key's Murmur3 hash (not computed by key comparisons
    /// for equality, which need none).
    fn token(&self) -> Token {
        self.stored_token.unwrap_or_else(|| Token::of_key(self.key))
    }
}

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
    /// Appends the entry (format [`VERSION`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key.token.0.to_le_bytes());
        put_len_prefixed(out, &self.key.key);
        put_varint(out, self.position);
        put_varint(out, self.length);
        put_varint(out, self.blocks.len() as u64);
        for b in &self.blocks {
            put_len_prefixed(out, &b.first);
            put_len_prefixed(out, &b.last);
            put_varint(out, b.offset);
            put_varint(out, b.width);
        }
    }

    /// The bytes of the entry at `cursor`, the body's offset in the file and the next entry's
    /// offset. Versions 1 and 2 check the entry's framing and checksum; version 3 parses the
    /// entry to find its end (its file checksum was checked at open).
    fn body_at(index: &[u8], version: u8, offset: usize) -> DecodeResult<(&[u8], usize, usize)> {
        if version >= 3 {
            let mut r = Reader::new(index);
            r.bytes(offset)?;
            if version >= 4 {
                r.i64()?;
            }
            r.len_prefixed(MAX_PARTITION_KEY_BYTES)?;
            if version >= 4 {
                r.varint()?;
            }
            r.varint()?;
            let n = r.count(4)?;
            for _ in 0..n {
                r.len_prefixed(MAX_CLUSTERING_BYTES)?;
                r.len_prefixed(MAX_CLUSTERING_BYTES)?;
                r.varint()?;
                r.varint()?;
            }
            let end = r.position();
            if end - offset > MAX_ENTRY_BYTES {
                return Err(r.error(format!("index entry length {} exceeds {MAX_ENTRY_BYTES}", end - offset)));
            }
            return Ok((&index[offset..end], offset, end));
        }
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

    /// The stored token (versions 1 and 4), key, position and length at the start of a body;
    /// `position` is the cursor's for version 3, which does not store it.
    fn head<'b>(
        b: &mut Reader<'b>,
        version: u8,
        position: u64,
    ) -> DecodeResult<(Option<Token>, &'b [u8], u64, u64)> {
        let stored_token = if version == 1 || version >= 4 { Some(Token(b.i64()?)) } else { None };
        let key = b.len_prefixed(MAX_PARTITION_KEY_BYTES)?;
        let position = if version == 3 { position } else { b.varint()? };
        let length = b.varint()?;
        if position.checked_add(length).is_none() {
            return Err(b.error("index entry position overflows"));
        }
        Ok((stored_token, key, position, length))
    }

    /// Parses the head of the entry at `cursor`.
    fn parse_at(index: &[u8], version: u8, cursor: IndexCursor) -> DecodeResult<ParsedHead<'_>> {
        let (body, start, next) = IndexEntry::body_at(index, version, cursor.offset)?;
        let mut rest = Reader::new(body);
        let (stored_token, key, position, length) =
            Self::head(&mut rest, version, cursor.position).map_err(|mut e| {
                e.offset += start;
                e
            })?;
        let next = IndexCursor { offset: next, position: position + length };
        Ok(ParsedHead { stored_token, key, position, length, rest, body_offset: start, next })
    }

    /// Compares the key of the entry at `cursor` with `key` without copying it; returns the
    /// ordering of the entry's key relative to `key` and the next entry's cursor.
    pub fn compare_at(
        index: &[u8],
        version: u8,
        cursor: IndexCursor,
        key: &DecoratedKey,
    ) -> DecodeResult<(std::cmp::Ordering, IndexCursor)> {
        let p = Self::parse_at(index, version, cursor)?;
        Ok((p.token().cmp(&key.token).then_with(|| p.key.cmp(&key.key[..])), p.next))
    }

    /// The data stream position and length of the partition of the entry at `cursor`, and the
    /// cursor after the entry.
    pub fn extent_at(
        index: &[u8],
        version: u8,
        cursor: IndexCursor,
    ) -> DecodeResult<(u64, u64, IndexCursor)> {
        let p = Self::parse_at(index, version, cursor)?;
        Ok((p.position, p.length, p.next))
    }

    /// Whether the entry at `cursor` is the partition `key` (equal keys have equal tokens, so
    /// only bytes are compared); returns the answer and the next entry's cursor.
    pub fn key_matches_at(
        index: &[u8],
        version: u8,
        cursor: IndexCursor,
        key: &[u8],
    ) -> DecodeResult<(bool, IndexCursor)> {
        let p = Self::parse_at(index, version, cursor)?;
        Ok((p.key == key, p.next))
    }

    /// Decodes the entry at `cursor`; returns it and the next entry's cursor. Only the token,
    /// key, position and length are decoded when `key_only` is set (blocks left empty).
    pub fn decode_at(
        index: &[u8],
        version: u8,
        cursor: IndexCursor,
        key_only: bool,
    ) -> DecodeResult<(IndexEntry, IndexCursor)> {
        let head = Self::parse_at(index, version, cursor)?;
        let token = head.token();
        let ParsedHead { key, position, length, rest: mut b, body_offset: start, next, .. } = head;
        let key = Bytes::copy_from_slice(key);
        let parsed = (|| -> DecodeResult<Vec<RowIndexBlock>> {
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
            Ok(blocks)
        })();
        // Errors inside the body are relative to it; report file offsets.
        let blocks = parsed.map_err(|mut e| {
            e.offset += start;
            e
        })?;
        Ok((IndexEntry { key: DecoratedKey { token, key }, position, length, blocks }, next))
    }
}
