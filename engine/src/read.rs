//! The read path: merge one partition's versions from every memtable and SSTable into the
//! reconciled result.
//!
//! 1. Candidate sources: memtables holding the partition, SSTables whose token range and bloom
//!    filter admit it and whose index has it.
//! 2. Headers (partition deletion, static row, range tombstones) are merged first; an SSTable
//!    whose newest timestamp is covered by the partition deletion holds nothing visible, so its
//!    rows are not read.
//! 3. Per slice, each source yields rows in clustering order (reversed if asked); a k-way merge
//!    joins equal clusterings with [`Row::merge`], then drops what the partition deletion or a
//!    covering range tombstone shadows.
//! 4. Reading stops once `row_limit` rows with live data were produced, so memory is bounded by
//!    the limit (plus one row-index block per SSTable), not by the partition's size.

use std::ops::Bound as RangeBound;
use std::sync::Arc;

use bytes::Bytes;

use crate::clustering::Slice;
use crate::error::Result;
use crate::ids::TableId;
use crate::memtable::{Memtable, MemtableRows};
use crate::partition::{DecoratedKey, PartitionData, PartitionHeader};
use crate::row::Row;
use crate::sstable::{bloom_hash, RowCursor, SsTable, SsTableRows};
use crate::token::Token;

/// A read of one partition.
#[derive(Debug, Clone)]
pub struct ReadCommand {
    /// Table.
    pub table: TableId,
    /// Serialized partition key.
    pub key: Bytes,
    /// Sorted, non-overlapping clustering slices (`[Slice::all()]` for the whole partition).
    pub slices: Vec<Slice>,
    /// Return rows in reverse clustering order.
    pub reversed: bool,
    /// Stop after this many rows with live data.
    pub row_limit: usize,
    /// "Now" for TTL expiry, in seconds since the epoch (Cassandra's `nowInSec`).
    pub now_seconds: u32,
}

impl ReadCommand {
    /// Reads the whole partition.
    #[must_use]
    pub fn partition(table: TableId, key: Bytes, now_seconds: u32) -> ReadCommand {
        ReadCommand {
            table,
            key,
            slices: vec![Slice::all()],
            reversed: false,
            row_limit: usize::MAX,
            now_seconds,
        }
    }
}

/// Where a token-range scan starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanStart {
    /// At the first partition whose token is at least this.
    TokenInclusive(Token),
    /// At the first partition whose token is greater than this.
    TokenExclusive(Token),
    /// After this partition (paging).
    AfterKey(DecoratedKey),
}

/// A scan of the partitions in a token range.
#[derive(Debug, Clone)]
pub struct ScanCommand {
    /// Table.
    pub table: TableId,
    /// Where to start.
    pub start: ScanStart,
    /// Last token included.
    pub end: Token,
    /// Rows read from each partition (the whole partition by default).
    pub slices: Vec<Slice>,
    /// Stop after this many partitions that have anything to return.
    pub partition_limit: usize,
    /// Stop after this many live rows in total.
    pub row_limit: usize,
    /// "Now" for TTL expiry.
    pub now_seconds: u32,
}

/// One immutable view of a table's data: memtables newest first, then SSTables.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Memtables (active first, then those being flushed).
    pub memtables: Vec<Arc<Memtable>>,
    /// SSTables.
    pub sstables: Vec<Arc<SsTable>>,
}

enum RowIter {
    Mem(MemtableRows),
    Sst(SsTableRows),
}

impl RowIter {
    fn next_row(&mut self) -> Result<Option<Row>> {
        match self {
            RowIter::Mem(m) => Ok(m.next_row()),
            RowIter::Sst(s) => s.next_row(),
        }
    }
}

enum Found {
    Mem(Arc<Memtable>),
    Sst(crate::sstable::index::IndexEntry, RowCursor),
}

/// Reads one partition. `None` when no source holds anything for it.
pub fn read_partition(
    sources: &Sources,
    key: &DecoratedKey,
    slices: &[Slice],
    reversed: bool,
    row_limit: usize,
    now_seconds: u32,
) -> Result<Option<PartitionData>> {
    let hash = bloom_hash(&key.key);
    let mut header = PartitionHeader::default();
    let mut found = Vec::new();
    for m in &sources.memtables {
        if m.contains_partition(key) {
            if let Some(h) = m.header(key) {
                header.merge(h);
            }
            found.push((i64::MAX, Found::Mem(Arc::clone(m))));
        }
    }
    for s in &sources.sstables {
        if !s.may_contain(key, hash) {
            continue;
        }
        if let Some(entry) = s.find(key)? {
            let (h, cursor) = s.read_header(&entry)?;
            header.merge(h);
            found.push((s.stats().max_timestamp, Found::Sst(entry, cursor)));
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    // Sources whose newest data is older than the partition deletion cannot contribute rows.
    let partition_deletion = header.deletion;
    found.retain(|(max_ts, _)| !partition_deletion.deletes_timestamp(*max_ts));
    header.purge_shadowed();
    header.range_tombstones.retain(|rt| slices.iter().any(|s| s.intersects(&rt.slice)));

    let mut rows = Vec::new();
    let mut live = 0usize;
    let ordered: Vec<&Slice> = if reversed { slices.iter().rev().collect() } else { slices.iter().collect() };
    'slices: for slice in ordered {
        if live >= row_limit {
            break;
        }
        let mut iters: Vec<RowIter> = found
            .iter()
            .map(|(_, f)| match f {
                Found::Mem(m) => {
                    RowIter::Mem(MemtableRows::new(Arc::clone(m), key.clone(), slice.clone(), reversed))
                }
                Found::Sst(e, cursor) => {
                    RowIter::Sst(SsTableRows::new(cursor.clone(), e.clone(), slice.clone(), reversed))
                }
            })
            .collect();
        let mut heads: Vec<Option<Row>> = Vec::with_capacity(iters.len());
        for it in &mut iters {
            heads.push(it.next_row()?);
        }
        loop {
            let mut best: Option<&Bytes> = None;
            for r in heads.iter().flatten() {
                let better = match best {
                    None => true,
                    Some(b) => (r.clustering < *b) != reversed && r.clustering != *b,
                };
                if better {
                    best = Some(&r.clustering);
                }
            }
            let Some(best) = best.cloned() else { break };
            let mut merged: Option<Row> = None;
            for (i, head) in heads.iter_mut().enumerate() {
                if head.as_ref().is_some_and(|r| r.clustering == best) {
                    if let Some(r) = head.take() {
                        match &mut merged {
                            Some(m) => m.merge(r),
                            None => merged = Some(r),
                        }
                    }
                    *head = iters[i].next_row()?;
                }
            }
            if let Some(mut row) = merged {
                row.purge_shadowed(header.deletion_for(&row.clustering));
                if row.is_empty() {
                    continue;
                }
                if row.has_live_data(now_seconds) {
                    live += 1;
                }
                rows.push(row);
                if live >= row_limit {
                    break 'slices;
                }
            }
        }
    }
    Ok(Some(PartitionData { key: key.clone(), header, rows }))
}

/// Scans partitions in token order.
pub fn scan(sources: &Sources, cmd: &ScanCommand) -> Result<Vec<PartitionData>> {
    let mut out = Vec::new();
    let mut rows_left = cmd.row_limit;
    let mut cursor: Option<DecoratedKey> = match &cmd.start {
        ScanStart::AfterKey(k) => Some(k.clone()),
        _ => None,
    };
    let start_token = match &cmd.start {
        ScanStart::TokenInclusive(t) => Some((*t, true)),
        ScanStart::TokenExclusive(t) => Some((*t, false)),
        ScanStart::AfterKey(_) => None,
    };
    let admitted = |k: &DecoratedKey| match start_token {
        Some((t, true)) => k.token >= t,
        Some((t, false)) => k.token > t,
        None => true,
    };
    // A token bound becomes a key bound through the smallest key of that token.
    let token_floor = start_token.map(|(t, _)| DecoratedKey { token: t, key: Bytes::new() });
    while out.len() < cmd.partition_limit && rows_left > 0 {
        let bound = match (&cursor, &token_floor) {
            (Some(k), _) => RangeBound::Excluded(k.clone()),
            (None, Some(f)) => RangeBound::Included(f.clone()),
            (None, None) => RangeBound::Unbounded,
        };
        let mut next: Option<DecoratedKey> = None;
        for m in &sources.memtables {
            let mut b = bound.clone();
            'mem: loop {
                let keys = m.partition_keys(b.as_ref(), cmd.end, 16);
                let Some(last) = keys.last().cloned() else { break };
                for k in keys {
                    if admitted(&k) {
                        if next.as_ref().is_none_or(|n| k < *n) {
                            next = Some(k);
                        }
                        break 'mem;
                    }
                }
                b = RangeBound::Excluded(last);
            }
        }
        for s in &sources.sstables {
            let mut b = bound.clone();
            while let Some(k) = s.first_key_from(b.as_ref(), cmd.end)? {
                if admitted(&k) {
                    if next.as_ref().is_none_or(|n| k < *n) {
                        next = Some(k);
                    }
                    break;
                }
                b = RangeBound::Excluded(k);
            }
        }
        let Some(key) = next else { break };
        if let Some(p) = read_partition(sources, &key, &cmd.slices, false, rows_left, cmd.now_seconds)? {
            if !(p.rows.is_empty() && p.header.is_empty()) {
                rows_left = rows_left.saturating_sub(p.live_rows(cmd.now_seconds).count());
                out.push(p);
            }
        }
        cursor = Some(key);
    }
    Ok(out)
}
