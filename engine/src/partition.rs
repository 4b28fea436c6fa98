//! Partitions: keys placed by token, partition-level deletions and range tombstones, and the
//! update and read-result shapes built from them.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::cell::DeletionTime;
use crate::clustering::Slice;
use crate::row::Row;
use crate::token::Token;

/// Largest partition key Cassandra accepts.
pub const MAX_PARTITION_KEY_BYTES: usize = u16::MAX as usize;

/// A partition key with its token; the order of partitions on disk and in memory:
/// by token, then by key bytes (as Cassandra's `DecoratedKey`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DecoratedKey {
    /// Murmur3 token of the key.
    pub token: Token,
    /// The serialized partition key.
    pub key: Bytes,
}

impl DecoratedKey {
    /// Computes the token of `key`.
    #[must_use]
    pub fn new(key: Bytes) -> DecoratedKey {
        DecoratedKey { token: Token::of_key(&key), key }
    }
}

impl Ord for DecoratedKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.token.cmp(&other.token).then_with(|| self.key.cmp(&other.key))
    }
}

impl PartialOrd for DecoratedKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A deletion of every row inside a clustering slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeTombstone {
    /// The rows deleted.
    pub slice: Slice,
    /// When.
    pub deletion: DeletionTime,
}

/// Partition-level state: the partition deletion, the static row and range tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionHeader {
    /// Deletion of the whole partition.
    pub deletion: DeletionTime,
    /// The static row, if any static cell was written.
    pub static_row: Option<Row>,
    /// Range tombstones (possibly overlapping).
    pub range_tombstones: Vec<RangeTombstone>,
}

impl Default for PartitionHeader {
    fn default() -> Self {
        PartitionHeader { deletion: DeletionTime::LIVE, static_row: None, range_tombstones: Vec::new() }
    }
}

impl PartitionHeader {
    /// Whether the header carries nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.deletion.is_live() && self.static_row.is_none() && self.range_tombstones.is_empty()
    }

    /// Merges another version of the header into this one.
    pub fn merge(&mut self, other: PartitionHeader) {
        self.deletion = self.deletion.max(other.deletion);
        match (&mut self.static_row, other.static_row) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
        for rt in other.range_tombstones {
            if !self.range_tombstones.contains(&rt) {
                self.range_tombstones.push(rt);
            }
        }
    }

    /// The strongest deletion covering a row at `clustering`: the partition deletion or any
    /// range tombstone containing the key.
    #[must_use]
    pub fn deletion_for(&self, clustering: &[u8]) -> DeletionTime {
        self.range_tombstones
            .iter()
            .filter(|rt| rt.slice.contains(clustering))
            .fold(self.deletion, |d, rt| d.max(rt.deletion))
    }

    /// Drops range tombstones and static data shadowed by the partition deletion.
    pub fn purge_shadowed(&mut self) {
        let pd = self.deletion;
        self.range_tombstones.retain(|rt| rt.deletion.supersedes(&pd));
        if let Some(s) = &mut self.static_row {
            s.purge_shadowed(pd);
            if s.is_empty() {
                self.static_row = None;
            }
        }
    }

    /// Smallest timestamp in the header; `i64::MAX` if none.
    #[must_use]
    pub fn min_timestamp(&self) -> i64 {
        let mut m = if self.deletion.is_live() { i64::MAX } else { self.deletion.marked_for_delete_at };
        if let Some(s) = &self.static_row {
            m = m.min(s.min_timestamp());
        }
        self.range_tombstones.iter().fold(m, |m, rt| m.min(rt.deletion.marked_for_delete_at))
    }

    /// Approximate memory used.
    #[must_use]
    pub fn size_bytes(&self) -> usize {
        32 + self.static_row.as_ref().map_or(0, Row::size_bytes)
            + self
                .range_tombstones
                .iter()
                .map(|rt| 48 + rt.slice.start.0.len() + rt.slice.end.0.len())
                .sum::<usize>()
    }
}

/// Everything one write does to one partition of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionUpdate {
    /// The serialized partition key.
    pub key: Bytes,
    /// Partition deletion, static row, range tombstones.
    pub header: PartitionHeader,
    /// Rows written (any order; duplicates are merged).
    pub rows: Vec<Row>,
}

impl PartitionUpdate {
    /// An update of partition `key` with nothing in it yet.
    #[must_use]
    pub fn new(key: Bytes) -> PartitionUpdate {
        PartitionUpdate { key, header: PartitionHeader::default(), rows: Vec::new() }
    }

    /// Adds a row.
    #[must_use]
    pub fn with_row(mut self, row: Row) -> PartitionUpdate {
        self.rows.push(row);
        self
    }

    /// Approximate memory used.
    #[must_use]
    pub fn size_bytes(&self) -> usize {
        self.key.len() + self.header.size_bytes() + self.rows.iter().map(Row::size_bytes).sum::<usize>()
    }
}

/// The merged, reconciled contents of one partition as a read returns them: shadowed data
/// removed, tombstones kept (the coordinator needs them to reconcile replicas).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionData {
    /// Key and token.
    pub key: DecoratedKey,
    /// Partition deletion, static row and the range tombstones that intersect the read.
    pub header: PartitionHeader,
    /// Rows in the order requested (reversed for reversed reads).
    pub rows: Vec<Row>,
}

impl PartitionData {
    /// The rows a client sees at `now_seconds`.
    pub fn live_rows(&self, now_seconds: u32) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(move |r| r.has_live_data(now_seconds))
    }

    /// Tombstones in the result (partition deletion, range tombstones, dead cells and row
    /// deletions, counting cells expired by `now_seconds`).
    #[must_use]
    pub fn tombstone_count(&self, now_seconds: u32) -> usize {
        usize::from(!self.header.deletion.is_live())
            + self.header.range_tombstones.len()
            + self.header.static_row.as_ref().map_or(0, |r| r.tombstone_count(now_seconds))
            + self.rows.iter().map(|r| r.tombstone_count(now_seconds)).sum::<usize>()
    }

    /// Whether a client would see nothing at all (no live row and no live static row).
    #[must_use]
    pub fn is_empty_for_client(&self, now_seconds: u32) -> bool {
        self.live_rows(now_seconds).next().is_none()
            && !self.header.static_row.as_ref().is_some_and(|s| s.has_live_data(now_seconds))
    }
}
