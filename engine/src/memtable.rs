//! Memtables: the in-memory, sorted, concurrently writable part of a table.
//!
//! One lock-free skip map per memtable holds every entry of every partition, ordered exactly like
//! an SSTable: by token, partition key, then clustering key. A partition's header (partition
//! deletion, static row, range tombstones) is the entry with an empty clustering, which sorts
//! before its rows. Writers to different rows never contend; two writers to the same row merge
//! under that row's own small mutex.
//!
//! Reads copy rows out in small batches (see [`MemtableRows`]) so a read holds neither a lock
//! nor an unbounded buffer, whatever the partition's size.

use std::collections::VecDeque;
use std::ops::Bound as RangeBound;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use parking_lot::Mutex;

use crate::clustering::Slice;
use crate::partition::{DecoratedKey, PartitionHeader, PartitionUpdate};
use crate::row::Row;
use crate::token::Token;

/// Rows copied out of a memtable per batch during reads.
const READ_BATCH_ROWS: usize = 64;
/// Fixed per-entry overhead counted by the memory accounting (skip-map node, key, mutex).
const ENTRY_OVERHEAD_BYTES: usize = 96;

/// Key of one memtable entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemKey {
    token: Token,
    key: Bytes,
    /// Empty for the partition header entry.
    clustering: Bytes,
}

impl MemKey {
    fn new(dk: &DecoratedKey, clustering: Bytes) -> MemKey {
        MemKey { token: dk.token, key: dk.key.clone(), clustering }
    }

    fn decorated(&self) -> DecoratedKey {
        DecoratedKey { token: self.token, key: self.key.clone() }
    }
}

/// A memtable entry.
#[derive(Debug)]
pub enum MemEntry {
    /// Partition-level state.
    Header(PartitionHeader),
    /// One row.
    Row(Row),
}

/// A sorted in-memory buffer of writes for one table.
#[derive(Debug)]
pub struct Memtable {
    map: SkipMap<MemKey, Mutex<MemEntry>>,
    size_bytes: AtomicUsize,
    min_timestamp: AtomicI64,
}

impl Default for Memtable {
    fn default() -> Self {
        Memtable::new()
    }
}

impl Memtable {
    /// An empty memtable.
    #[must_use]
    pub fn new() -> Memtable {
        Memtable {
            map: SkipMap::new(),
            size_bytes: AtomicUsize::new(0),
            min_timestamp: AtomicI64::new(i64::MAX),
        }
    }

    /// Smallest timestamp written into this memtable (`i64::MAX` when empty): compaction keeps a
    /// tombstone that could shadow anything here.
    #[must_use]
    pub fn min_timestamp(&self) -> i64 {
        self.min_timestamp.load(Ordering::Relaxed)
    }

    /// Applies an update; returns how much the accounting grew (negative when it shrank).
    ///
    /// An update merged into an existing row or header counts only the difference it makes:
    /// the merge keeps the winning version of each cell and drops the other, so ten overwrites
    /// of a row hold one row's memory, not ten (Cassandra's slab allocator keeps the overwritten
    /// copies until the flush and counts them; Sibyl frees them at once and counts what it holds).
    pub fn apply(&self, dk: &DecoratedKey, update: PartitionUpdate) -> isize {
        let min = update.rows.iter().fold(update.header.min_timestamp(), |m, r| m.min(r.min_timestamp()));
        self.min_timestamp.fetch_min(min, Ordering::Relaxed);
        let mut grew = 0usize;
        let mut shrank = 0usize;
        let mut count_merge = |before: usize, after: usize| {
            if after >= before {
                grew += after - before;
            } else {
                shrank += before - after;
            }
        };
        if !update.header.is_empty() {
            let mut slot = Some(update.header);
            let mut inserted = 0;
            let entry = self.map.get_or_insert_with(MemKey::new(dk, Bytes::new()), || {
                let header = slot.take().unwrap_or_default();
                inserted = ENTRY_OVERHEAD_BYTES + dk.key.len() + header.size_bytes();
                Mutex::new(MemEntry::Header(header))
            });
            if let Some(header) = slot {
                if let MemEntry::Header(h) = &mut *entry.value().lock() {
                    let before = h.size_bytes();
                    h.merge(header);
                    count_merge(before, h.size_bytes());
                }
            }
            count_merge(0, inserted);
        }
        for row in update.rows {
            let key = MemKey::new(dk, row.clustering.clone());
            let mut slot = Some(row);
            let mut inserted = 0;
            let entry = self.map.get_or_insert_with(key, || {
                let row = slot.take().unwrap_or_else(|| Row::new(Bytes::new()));
                inserted = ENTRY_OVERHEAD_BYTES + dk.key.len() + row.size_bytes();
                Mutex::new(MemEntry::Row(row))
            });
            if let Some(row) = slot {
                if let MemEntry::Row(r) = &mut *entry.value().lock() {
                    let before = r.size_bytes();
                    r.merge(row);
                    count_merge(before, r.size_bytes());
                }
            }
            count_merge(0, inserted);
        }
        if grew >= shrank {
            self.size_bytes.fetch_add(grew - shrank, Ordering::Relaxed);
        } else {
            let _ = self.size_bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(shrank - grew))
            });
        }
        grew as isize - shrank as isize
    }

    /// Approximate bytes held.
    #[must_use]
    pub fn size_bytes(&self) -> usize {
        self.size_bytes.load(Ordering::Relaxed)
    }

    /// Whether nothing was written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of entries (headers and rows).
    #[must_use]
    pub fn entry_count(&self) -> usize {
        self.map.len()
    }

    /// A copy of a partition's header, if it has one.
    #[must_use]
    pub fn header(&self, dk: &DecoratedKey) -> Option<PartitionHeader> {
        let e = self.map.get(&MemKey::new(dk, Bytes::new()))?;
        let guard = e.value().lock();
        match &*guard {
            MemEntry::Header(h) => Some(h.clone()),
            MemEntry::Row(_) => None,
        }
    }

    /// Whether the partition has any entry.
    #[must_use]
    pub fn contains_partition(&self, dk: &DecoratedKey) -> bool {
        let lo = MemKey::new(dk, Bytes::new());
        self.map
            .lower_bound(RangeBound::Included(&lo))
            .is_some_and(|e| e.key().token == dk.token && e.key().key == dk.key)
    }

    /// Up to `limit` rows of `dk` inside `slice`, after `resume` (exclusive), in order or reversed.
    fn rows_batch(
        &self,
        dk: &DecoratedKey,
        slice: &Slice,
        reversed: bool,
        resume: Option<&Bytes>,
        limit: usize,
    ) -> Vec<Row> {
        let lo_key = MemKey::new(dk, slice.start.0.clone());
        let hi_key = MemKey::new(dk, slice.end.0.clone());
        let (lo, hi) = match (resume, reversed) {
            (Some(r), false) => {
                (RangeBound::Excluded(MemKey::new(dk, r.clone())), RangeBound::Excluded(hi_key))
            }
            (Some(r), true) => {
                (RangeBound::Excluded(lo_key), RangeBound::Excluded(MemKey::new(dk, r.clone())))
            }
            (None, _) => (RangeBound::Excluded(lo_key), RangeBound::Excluded(hi_key)),
        };
        let range = self.map.range((lo, hi));
        let copy = |e: crossbeam_skiplist::map::Entry<'_, MemKey, Mutex<MemEntry>>| match &*e.value().lock() {
            MemEntry::Row(r) => Some(r.clone()),
            MemEntry::Header(_) => None,
        };
        if reversed {
            range.rev().filter_map(copy).take(limit).collect()
        } else {
            range.filter_map(copy).take(limit).collect()
        }
    }

    /// Up to `limit` partition keys in token order, starting at `start`.
    #[must_use]
    pub fn partition_keys(
        &self,
        start: RangeBound<&DecoratedKey>,
        end: Token,
        limit: usize,
    ) -> Vec<DecoratedKey> {
        let mut out = Vec::new();
        let mut next = match start {
            RangeBound::Included(k) => RangeBound::Included(MemKey::new(k, Bytes::new())),
            RangeBound::Excluded(k) => RangeBound::Excluded(MemKey::new(k, Bytes::from_static(&[0xff]))),
            RangeBound::Unbounded => RangeBound::Unbounded,
        };
        while out.len() < limit {
            let Some(e) = self.map.lower_bound(next.as_ref()) else { break };
            if e.key().token > end {
                break;
            }
            let dk = e.key().decorated();
            next = RangeBound::Excluded(MemKey::new(&dk, Bytes::from_static(&[0xff])));
            out.push(dk);
        }
        out
    }

    /// Every entry in order, for flushing. Only call on a memtable no longer written to.
    pub fn for_each_entry(
        &self,
        mut f: impl FnMut(&DecoratedKey, &MemEntry) -> crate::Result<()>,
    ) -> crate::Result<()> {
        let mut current: Option<DecoratedKey> = None;
        for e in self.map.iter() {
            let k = e.key();
            if current.as_ref().is_none_or(|c| c.token != k.token || c.key != k.key) {
                current = Some(k.decorated());
            }
            if let Some(dk) = &current {
                f(dk, &e.value().lock())?;
            }
        }
        Ok(())
    }
}

/// Rows of one partition of one memtable inside a slice, fetched in batches.
#[derive(Debug)]
pub struct MemtableRows {
    memtable: Arc<Memtable>,
    key: DecoratedKey,
    slice: Slice,
    reversed: bool,
    last: Option<Bytes>,
    buffer: VecDeque<Row>,
    exhausted: bool,
}

impl MemtableRows {
    /// Starts reading `key`'s rows inside `slice`.
    #[must_use]
    pub fn new(memtable: Arc<Memtable>, key: DecoratedKey, slice: Slice, reversed: bool) -> MemtableRows {
        MemtableRows { memtable, key, slice, reversed, last: None, buffer: VecDeque::new(), exhausted: false }
    }

    /// The next row, or `None` at the end of the slice.
    pub fn next_row(&mut self) -> Option<Row> {
        if self.buffer.is_empty() && !self.exhausted {
            let batch = self.memtable.rows_batch(
                &self.key,
                &self.slice,
                self.reversed,
                self.last.as_ref(),
                READ_BATCH_ROWS,
            );
            self.exhausted = batch.len() < READ_BATCH_ROWS;
            if let Some(last) = batch.last() {
                self.last = Some(last.clustering.clone());
            }
            self.buffer.extend(batch);
        }
        self.buffer.pop_front()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::cell::{Cell, DeletionTime};
    use crate::ids::ColumnId;

    fn write(m: &Memtable, key: &DecoratedKey, column: u32, ts: i64, value: &'static [u8]) -> isize {
        let mut row = Row::new(Bytes::from_static(b"\x38"));
        row.add_cell(Cell::live(ColumnId(column), ts, Bytes::from_static(value)));
        m.apply(key, PartitionUpdate::new(key.key.clone()).with_row(row))
    }

    /// The accounting follows what the memtable holds: overwrites of a row replace its cells
    /// and count only the difference, so a hot row does not force flushes of a small memtable.
    #[test]
    fn overwrites_count_only_the_memory_they_add() {
        let m = Memtable::new();
        let key = DecoratedKey::new(Bytes::from_static(b"k"));
        let first = write(&m, &key, 1, 1, b"0123456789");
        assert!(first > 0);
        assert_eq!(m.size_bytes(), first.unsigned_abs());
        for ts in 2..12 {
            assert_eq!(write(&m, &key, 1, ts, b"9876543210"), 0, "same-size overwrite at {ts}");
        }
        assert_eq!(m.size_bytes(), first.unsigned_abs());
        assert_eq!(write(&m, &key, 1, 20, b"0123456789ABCDEFGHIJ"), 10, "a longer value grows by its length");
        assert_eq!(write(&m, &key, 1, 21, b"x"), -19, "a shorter one shrinks");
        assert_eq!(write(&m, &key, 1, 5, b"an older, losing write"), 0, "a losing write changes nothing");
        let second_column = write(&m, &key, 2, 22, b"v");
        assert!(second_column > 0, "a new cell adds");
        let other = write(&m, &DecoratedKey::new(Bytes::from_static(b"other")), 1, 1, b"0123456789");
        assert_eq!(other, first + 4, "a new row counts in full (entry, key, row)");
        let mut gone = PartitionUpdate::new(key.key.clone());
        gone.header.deletion = DeletionTime::new(30, 1);
        let header = m.apply(&key, gone.clone());
        assert!(header > 0);
        assert_eq!(m.apply(&key, gone), 0, "the same partition deletion again");
        let total: isize = [first, 10, -19, second_column, other, header].iter().sum();
        assert_eq!(m.size_bytes(), total.unsigned_abs());
    }
}
