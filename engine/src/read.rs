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

/// Where one source's version of a partition comes from.
enum Found {
    Mem(Arc<Memtable>),
    Sst(crate::sstable::index::IndexEntry, RowCursor),
}

/// One source's version of a partition: its newest timestamp (`i64::MAX` for memtables), its
/// header, and where its rows are.
type Part = (i64, Option<PartitionHeader>, Found);

/// Reads one partition. `None` when no source holds anything for it.
pub fn read_partition(
    sources: &Sources,
    key: &DecoratedKey,
    slices: &[Slice],
    reversed: bool,
    row_limit: usize,
    now_seconds: u32,
) -> Result<Option<PartitionData>> {
    read_partition_counted(sources, key, slices, reversed, row_limit, now_seconds).map(|(p, _)| p)
}

/// [`read_partition`], also returning how many SSTables held the partition (whose headers were
/// read: the "SSTables per read" statistic).
pub fn read_partition_counted(
    sources: &Sources,
    key: &DecoratedKey,
    slices: &[Slice],
    reversed: bool,
    row_limit: usize,
    now_seconds: u32,
) -> Result<(Option<PartitionData>, usize)> {
    let hash = bloom_hash(&key.key);
    let mut parts: Vec<Part> = Vec::new();
    for m in &sources.memtables {
        if m.contains_partition(key) {
            parts.push((i64::MAX, m.header(key), Found::Mem(Arc::clone(m))));
        }
    }
    for s in &sources.sstables {
        if !s.may_contain(key, hash) {
            continue;
        }
        if let Some(entry) = s.find(key)? {
            let (h, cursor) = s.read_header(&entry)?;
            parts.push((s.stats().max_timestamp, Some(h), Found::Sst(entry, cursor)));
        }
    }
    let sstables = parts.iter().filter(|(_, _, f)| matches!(f, Found::Sst(..))).count();
    Ok((merge_partition(key, parts, slices, reversed, row_limit, now_seconds)?, sstables))
}

/// Merges the versions of one partition found in `parts`.
fn merge_partition(
    key: &DecoratedKey,
    parts: Vec<Part>,
    slices: &[Slice],
    reversed: bool,
    row_limit: usize,
    now_seconds: u32,
) -> Result<Option<PartitionData>> {
    if parts.is_empty() {
        return Ok(None);
    }
    let mut header = PartitionHeader::default();
    let mut found = Vec::with_capacity(parts.len());
    for (max_ts, h, f) in parts {
        if let Some(h) = h {
            header.merge(h);
        }
        found.push((max_ts, f));
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

/// A source's position in a scan: the next partition key it holds.
enum KeyCursor {
    Mem {
        memtable: Arc<Memtable>,
        buffered: std::collections::VecDeque<DecoratedKey>,
        exhausted: bool,
    },
    Sst {
        sstable: Arc<SsTable>,
        head: Option<(crate::sstable::index::IndexEntry, crate::sstable::index::IndexCursor)>,
        last: Option<RowCursor>,
    },
}

/// Memtable keys fetched per refill during a scan.
const SCAN_KEY_BATCH: usize = 64;

impl KeyCursor {
    fn head(&self) -> Option<&DecoratedKey> {
        match self {
            KeyCursor::Mem { buffered, .. } => buffered.front(),
            KeyCursor::Sst { head, .. } => head.as_ref().map(|(e, _)| &e.key),
        }
    }

    fn refill(&mut self, from: RangeBound<&DecoratedKey>, end: Token) {
        if let KeyCursor::Mem { memtable, buffered, exhausted } = self {
            if buffered.is_empty() && !*exhausted {
                let keys = memtable.partition_keys(from, end, SCAN_KEY_BATCH);
                *exhausted = keys.len() < SCAN_KEY_BATCH;
                buffered.extend(keys);
            }
        }
    }

    /// Takes this source's version of the head partition and moves past it.
    fn take(&mut self, end: Token) -> Result<Part> {
        match self {
            KeyCursor::Mem { memtable, buffered, .. } => {
                let key = buffered.pop_front().expect("take is called on a cursor with a head");
                let part = (i64::MAX, memtable.header(&key), Found::Mem(Arc::clone(memtable)));
                self.refill(RangeBound::Excluded(&key), end);
                Ok(part)
            }
            KeyCursor::Sst { sstable, head, last } => {
                let (entry, next) = head.take().expect("take is called on a cursor with a head");
                let (h, cursor) = sstable.read_header_after(&entry, last.as_ref())?;
                *last = Some(cursor.clone());
                *head = sstable.entry_at(next, last, true)?;
                Ok((sstable.stats().max_timestamp, Some(h), Found::Sst(entry, cursor)))
            }
        }
    }
}

/// Scans partitions in token order: a merge over one positioned key cursor per source, each
/// partition read only from the sources that hold it.
pub fn scan(sources: &Sources, cmd: &ScanCommand) -> Result<Vec<PartitionData>> {
    let start_key = match &cmd.start {
        ScanStart::AfterKey(k) => RangeBound::Excluded(k.clone()),
        // The smallest key of a token is the empty key; an exclusive token start skips every
        // key of that token below.
        ScanStart::TokenInclusive(t) | ScanStart::TokenExclusive(t) => {
            RangeBound::Included(DecoratedKey { token: *t, key: Bytes::new() })
        }
    };
    let skip_token = match cmd.start {
        ScanStart::TokenExclusive(t) => Some(t),
        _ => None,
    };
    let mut cursors = Vec::with_capacity(sources.memtables.len() + sources.sstables.len());
    for m in &sources.memtables {
        let mut c = KeyCursor::Mem {
            memtable: Arc::clone(m),
            buffered: std::collections::VecDeque::new(),
            exhausted: false,
        };
        c.refill(start_key.as_ref(), cmd.end);
        cursors.push(c);
    }
    for s in &sources.sstables {
        if s.stats().max_token < start_key_token(&start_key) || s.stats().min_token > cmd.end {
            continue;
        }
        let offset = s.seek(start_key.as_ref())?;
        let mut last = None;
        let head = s.entry_at(offset, &mut last, true)?;
        cursors.push(KeyCursor::Sst { sstable: Arc::clone(s), head, last });
    }
    let mut out = Vec::new();
    let mut rows_left = cmd.row_limit;
    while out.len() < cmd.partition_limit && rows_left > 0 {
        let Some(key) = cursors.iter().filter_map(KeyCursor::head).min().cloned() else { break };
        if key.token > cmd.end {
            break;
        }
        let mut parts = Vec::new();
        for c in &mut cursors {
            if c.head() == Some(&key) {
                parts.push(c.take(cmd.end)?);
            }
        }
        if skip_token == Some(key.token) {
            continue;
        }
        if let Some(p) = merge_partition(&key, parts, &cmd.slices, false, rows_left, cmd.now_seconds)? {
            if !(p.rows.is_empty() && p.header.is_empty()) {
                rows_left = rows_left.saturating_sub(p.live_rows(cmd.now_seconds).count());
                out.push(p);
            }
        }
    }
    Ok(out)
}

fn start_key_token(start: &RangeBound<DecoratedKey>) -> Token {
    match start {
        RangeBound::Included(k) | RangeBound::Excluded(k) => k.token,
        RangeBound::Unbounded => Token::MIN,
    }
}
