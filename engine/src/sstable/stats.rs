//! `Statistics.db`: what is known about an SSTable without reading its data.
//!
//! ```text
//! stats := magic "SBLS" | version u8 (=1) | reserved [0;3]
//!          | min_timestamp i64 | max_timestamp i64 | min_token i64 | max_token i64
//!          | min_local_deletion_time u32 | max_local_deletion_time u32
//!          | partition_count u64 | row_count u64 | cell_count u64 | tombstone_count u64
//!          | commitlog_upper_segment u64 | commitlog_upper_offset u32 | level u32
//!          | uncompressed_bytes u64 | first_key:lenbytes | last_key:lenbytes
//!          | crc32 u32 (of everything before)
//! ```
//! All integers little-endian; `lenbytes` is a varint length and the bytes.

use bytes::Bytes;

use crate::codec::{crc32, put_len_prefixed, DecodeError, DecodeResult, Reader};
use crate::commitlog::{Position, SegmentId};
use crate::partition::MAX_PARTITION_KEY_BYTES;
use crate::token::Token;

const MAGIC: &[u8; 4] = b"SBLS";
const VERSION: u8 = 1;

/// SSTable statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Smallest write or deletion timestamp inside.
    pub min_timestamp: i64,
    /// Largest write or deletion timestamp inside.
    pub max_timestamp: i64,
    /// Token of the first partition.
    pub min_token: Token,
    /// Token of the last partition.
    pub max_token: Token,
    /// Smallest deletion/expiration second of any tombstone or expiring cell (`u32::MAX` if none).
    pub min_local_deletion_time: u32,
    /// Largest such second (0 if none).
    pub max_local_deletion_time: u32,
    /// Partitions.
    pub partition_count: u64,
    /// Rows (not counting static rows).
    pub row_count: u64,
    /// Cells.
    pub cell_count: u64,
    /// Tombstones of every kind.
    pub tombstone_count: u64,
    /// Every commit log record starting before this position is covered by this SSTable's table.
    pub commitlog_upper: Position,
    /// Compaction level (0 for flushed SSTables).
    pub level: u32,
    /// Size of the data before compression.
    pub uncompressed_bytes: u64,
    /// First partition key.
    pub first_key: Bytes,
    /// Last partition key.
    pub last_key: Bytes,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            min_timestamp: i64::MAX,
            max_timestamp: i64::MIN,
            min_token: Token::MAX,
            max_token: Token::MIN,
            min_local_deletion_time: u32::MAX,
            max_local_deletion_time: 0,
            partition_count: 0,
            row_count: 0,
            cell_count: 0,
            tombstone_count: 0,
            commitlog_upper: Position::ZERO,
            level: 0,
            uncompressed_bytes: 0,
            first_key: Bytes::new(),
            last_key: Bytes::new(),
        }
    }
}

impl Stats {
    /// Folds a timestamp in.
    pub fn note_timestamp(&mut self, ts: i64) {
        if ts != i64::MIN {
            self.min_timestamp = self.min_timestamp.min(ts);
            self.max_timestamp = self.max_timestamp.max(ts);
        }
    }

    /// Folds a local deletion/expiration time in.
    pub fn note_local_deletion_time(&mut self, ldt: u32) {
        if ldt != crate::cell::NO_DELETION_TIME {
            self.min_local_deletion_time = self.min_local_deletion_time.min(ldt);
            self.max_local_deletion_time = self.max_local_deletion_time.max(ldt);
        }
    }

    /// Encodes the statistics file.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[VERSION, 0, 0, 0]);
        for v in [self.min_timestamp, self.max_timestamp, self.min_token.0, self.max_token.0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.min_local_deletion_time.to_le_bytes());
        out.extend_from_slice(&self.max_local_deletion_time.to_le_bytes());
        for v in [self.partition_count, self.row_count, self.cell_count, self.tombstone_count] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.commitlog_upper.segment.0.to_le_bytes());
        out.extend_from_slice(&self.commitlog_upper.offset.to_le_bytes());
        out.extend_from_slice(&self.level.to_le_bytes());
        out.extend_from_slice(&self.uncompressed_bytes.to_le_bytes());
        put_len_prefixed(&mut out, &self.first_key);
        put_len_prefixed(&mut out, &self.last_key);
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and verifies a statistics file.
    pub fn decode(bytes: &[u8]) -> DecodeResult<Stats> {
        if bytes.len() < 12 {
            return Err(DecodeError { offset: 0, reason: "statistics file too short".into() });
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if &body[..4] != MAGIC {
            return Err(DecodeError { offset: 0, reason: "bad magic, not a statistics file".into() });
        }
        if body[4] != VERSION {
            return Err(DecodeError {
                offset: 4,
                reason: format!("unsupported statistics version {}", body[4]),
            });
        }
        if crc32(body) != stored {
            return Err(DecodeError { offset: body.len(), reason: "statistics checksum mismatch".into() });
        }
        let mut r = Reader::new(body);
        r.bytes(8)?;
        let s = Stats {
            min_timestamp: r.i64()?,
            max_timestamp: r.i64()?,
            min_token: Token(r.i64()?),
            max_token: Token(r.i64()?),
            min_local_deletion_time: r.u32()?,
            max_local_deletion_time: r.u32()?,
            partition_count: r.u64()?,
            row_count: r.u64()?,
            cell_count: r.u64()?,
            tombstone_count: r.u64()?,
            commitlog_upper: Position { segment: SegmentId(r.u64()?), offset: r.u32()? },
            level: r.u32()?,
            uncompressed_bytes: r.u64()?,
            first_key: Bytes::copy_from_slice(r.len_prefixed(MAX_PARTITION_KEY_BYTES)?),
            last_key: Bytes::copy_from_slice(r.len_prefixed(MAX_PARTITION_KEY_BYTES)?),
        };
        if !r.is_empty() {
            return Err(r.error("trailing bytes in statistics"));
        }
        Ok(s)
    }
}
