//! `Statistics.db`: what is known about an SSTable without reading its data.
//!
//! ```text
//! stats := magic "SBLS" | version u8 (1 to 3) | reserved [0;3]
//!          | min_timestamp i64 | max_timestamp i64 | min_token i64 | max_token i64
//!          | min_local_deletion_time u32 | max_local_deletion_time u32
//!          | partition_count u64 | row_count u64 | cell_count u64 | tombstone_count u64
//!          | commitlog_upper_segment u64 | commitlog_upper_offset u32 | level u32
//!          | uncompressed_bytes u64 | first_key:lenbytes | last_key:lenbytes
//!          | flags u8 (bit 0: holds live data without TTL)                      (version 2)
//!          | drop_bins varint | (second u32, count varint)*                     (version 2)
//!          | cell_buckets varint | (bucket varint, count varint)*               (version 2)
//!          | size_buckets varint | (bucket varint, count varint)*               (version 3)
//!          | crc32 u32 (of everything before)
//! ```
//! All integers little-endian; `lenbytes` is a varint length and the bytes. `drop_bins` is the
//! tombstone drop-time histogram (at most [`MAX_DROP_TIME_BINS`] bins, like Cassandra's
//! streaming histogram); `cell_buckets` the non-empty buckets of the cells-per-partition
//! histogram ([`crate::metrics`] layout), `size_buckets` the partition-size histogram (bytes in
//! the uncompressed data stream), which a sparse `Index.db` (version 4) cannot give. Version 1
//! files still open: as holding live data (never fully expired) with empty histograms.

use bytes::Bytes;

use crate::codec::{crc32, put_len_prefixed, put_varint, DecodeError, DecodeResult, Reader};
use crate::commitlog::{Position, SegmentId};
use crate::metrics::{HistogramSnapshot, BUCKETS};
use crate::partition::MAX_PARTITION_KEY_BYTES;
use crate::token::Token;

const MAGIC: &[u8; 4] = b"SBLS";
const VERSION: u8 = 3;
/// Bins kept in the tombstone drop-time histogram.
pub const MAX_DROP_TIME_BINS: usize = 100;

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
    /// Whether any row marker or cell is live without a TTL (such an SSTable never fully
    /// expires).
    pub has_non_expiring_data: bool,
    /// Tombstones (and expiring cells) by the second they become droppable, before gc_grace:
    /// `(second, count)` bins in increasing order.
    pub tombstone_drop_times: Vec<(u32, u64)>,
    /// Cells per partition.
    pub cells_per_partition: HistogramSnapshot,
    /// Partition sizes in the uncompressed data stream (empty before version 3).
    pub partition_sizes: HistogramSnapshot,
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
            has_non_expiring_data: false,
            tombstone_drop_times: Vec::new(),
            cells_per_partition: HistogramSnapshot::default(),
            partition_sizes: HistogramSnapshot::default(),
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
            self.note_drop_time(ldt);
        }
    }

    fn note_drop_time(&mut self, ldt: u32) {
        // Round up to the minute, as Cassandra's tombstone histogram does.
        let point = ldt.div_ceil(60).saturating_mul(60);
        match self.tombstone_drop_times.binary_search_by_key(&point, |(p, _)| *p) {
            Ok(i) => self.tombstone_drop_times[i].1 += 1,
            Err(i) => self.tombstone_drop_times.insert(i, (point, 1)),
        }
        if self.tombstone_drop_times.len() > 2 * MAX_DROP_TIME_BINS {
            self.shrink_drop_times();
        }
    }

    /// Merges the closest neighbouring bins until at most [`MAX_DROP_TIME_BINS`] remain.
    pub fn shrink_drop_times(&mut self) {
        let bins = &mut self.tombstone_drop_times;
        while bins.len() > MAX_DROP_TIME_BINS {
            let Some(i) = (0..bins.len() - 1).min_by_key(|i| bins[i + 1].0 - bins[*i].0) else { break };
            let (a, b) = (bins[i], bins[i + 1]);
            let count = a.1 + b.1;
            let point =
                (u128::from(a.0) * u128::from(a.1) + u128::from(b.0) * u128::from(b.1)) / u128::from(count);
            bins[i] = (u32::try_from(point).unwrap_or(b.0), count);
            bins.remove(i + 1);
        }
    }

    /// Estimated tombstones droppable before `gc_before` (Cassandra's
    /// `getDroppableTombstonesBefore`): whole bins at or before it, and a share of the bin that
    /// straddles it.
    #[must_use]
    pub fn droppable_tombstones(&self, gc_before: u32) -> u64 {
        let mut sum = 0u64;
        let mut prev: Option<(u32, u64)> = None;
        for &(point, count) in &self.tombstone_drop_times {
            if point <= gc_before {
                sum += count;
            } else {
                if let Some((p, _)) = prev {
                    let share = f64::from(gc_before - p) / f64::from(point - p);
                    sum += (share * count as f64) as u64;
                }
                break;
            }
            prev = Some((point, count));
        }
        sum
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
        out.push(u8::from(self.has_non_expiring_data));
        put_varint(&mut out, self.tombstone_drop_times.len() as u64);
        for (point, count) in &self.tombstone_drop_times {
            out.extend_from_slice(&point.to_le_bytes());
            put_varint(&mut out, *count);
        }
        for histogram in [&self.cells_per_partition, &self.partition_sizes] {
            let buckets: Vec<(usize, u64)> = histogram.nonzero().collect();
            put_varint(&mut out, buckets.len() as u64);
            for (bucket, count) in buckets {
                put_varint(&mut out, bucket as u64);
                put_varint(&mut out, count);
            }
        }
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
        let version = body[4];
        if !(1..=VERSION).contains(&version) {
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
        let mut s = Stats {
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
            has_non_expiring_data: true,
            tombstone_drop_times: Vec::new(),
            cells_per_partition: HistogramSnapshot::default(),
            partition_sizes: HistogramSnapshot::default(),
        };
        if version >= 2 {
            s.has_non_expiring_data = r.u8()? & 1 == 1;
            let bins = r.count(5)?;
            if bins > 2 * MAX_DROP_TIME_BINS {
                return Err(
                    r.error(format!("{bins} tombstone histogram bins, at most {}", 2 * MAX_DROP_TIME_BINS))
                );
            }
            for _ in 0..bins {
                let point = r.u32()?;
                let count = r.varint()?;
                s.tombstone_drop_times.push((point, count));
            }
            if s.tombstone_drop_times.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err(r.error("tombstone histogram bins out of order"));
            }
            let histograms = if version >= 3 { 2 } else { 1 };
            for h in 0..histograms {
                let buckets = r.count(2)?;
                for _ in 0..buckets {
                    let bucket = r.varint()?;
                    let count = r.varint()?;
                    if bucket >= BUCKETS as u64 {
                        return Err(r.error(format!("histogram bucket {bucket} out of range")));
                    }
                    let histogram = if h == 0 { &mut s.cells_per_partition } else { &mut s.partition_sizes };
                    histogram.add_to_bucket(bucket as usize, count);
                }
            }
        }
        if !r.is_empty() {
            return Err(r.error("trailing bytes in statistics"));
        }
        Ok(s)
    }
}
