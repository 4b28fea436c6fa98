//! Rows: a clustering key, an optional row marker, an optional row deletion and cells; and the
//! merge of two versions of the same row.

use bytes::Bytes;

use crate::cell::{reconcile, Cell, DeletionTime, LivenessInfo};
use crate::ids::ColumnId;

/// One row of a partition (or its static row, whose clustering is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Encoded clustering key (see [`crate::clustering`]); empty for the static row.
    pub clustering: Bytes,
    /// Row marker from INSERT.
    pub liveness: LivenessInfo,
    /// Row-level deletion.
    pub deletion: DeletionTime,
    /// Cells sorted by (column, path), at most one per identity.
    pub cells: Vec<Cell>,
    /// Whole-collection deletions (`SET m = {...}` deletes the old elements), sorted by column.
    pub complex_deletions: Vec<(ColumnId, DeletionTime)>,
}

impl Row {
    /// An empty row at `clustering`.
    #[must_use]
    pub fn new(clustering: Bytes) -> Row {
        Row {
            clustering,
            liveness: LivenessInfo::EMPTY,
            deletion: DeletionTime::LIVE,
            cells: Vec::new(),
            complex_deletions: Vec::new(),
        }
    }

    /// Adds a cell, keeping the cells sorted and reconciling a duplicate identity.
    pub fn add_cell(&mut self, cell: Cell) {
        match self.cells.binary_search_by(|c| c.identity().cmp(&cell.identity())) {
            Ok(i) => {
                let winner = reconcile(&self.cells[i], &cell).clone();
                self.cells[i] = winner;
            }
            Err(i) => self.cells.insert(i, cell),
        }
    }

    /// Records a whole-collection deletion for `column`.
    pub fn add_complex_deletion(&mut self, column: ColumnId, deletion: DeletionTime) {
        match self.complex_deletions.binary_search_by_key(&column, |(c, _)| *c) {
            Ok(i) => self.complex_deletions[i].1 = self.complex_deletions[i].1.max(deletion),
            Err(i) => self.complex_deletions.insert(i, (column, deletion)),
        }
    }

    /// Whether the row carries nothing at all (no marker, deletion, cell or collection deletion).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.liveness.is_empty()
            && self.deletion.is_live()
            && self.cells.is_empty()
            && self.complex_deletions.is_empty()
    }

    /// Whether a read at `now_seconds` sees this row (a live marker or any live cell).
    #[must_use]
    pub fn has_live_data(&self, now_seconds: u32) -> bool {
        self.liveness.is_live(now_seconds) || self.cells.iter().any(|c| c.is_live(now_seconds))
    }

    /// Number of tombstones this row carries (row deletion, dead cells, collection deletions),
    /// counting cells that have expired by `now_seconds`.
    #[must_use]
    pub fn tombstone_count(&self, now_seconds: u32) -> usize {
        usize::from(!self.deletion.is_live())
            + self.complex_deletions.len()
            + self.cells.iter().filter(|c| !c.is_live(now_seconds)).count()
    }

    /// Smallest timestamp of anything in the row (marker, deletions, cells); `i64::MAX` if none.
    #[must_use]
    pub fn min_timestamp(&self) -> i64 {
        let mut m = i64::MAX;
        if !self.liveness.is_empty() {
            m = m.min(self.liveness.timestamp);
        }
        if !self.deletion.is_live() {
            m = m.min(self.deletion.marked_for_delete_at);
        }
        for (_, d) in &self.complex_deletions {
            m = m.min(d.marked_for_delete_at);
        }
        self.cells.iter().fold(m, |m, c| m.min(c.timestamp))
    }

    /// Approximate memory used, for memtable accounting.
    #[must_use]
    pub fn size_bytes(&self) -> usize {
        96 + self.clustering.len()
            + self.cells.iter().map(Cell::size_bytes).sum::<usize>()
            + self.complex_deletions.len() * 24
    }

    /// Merges `other` (another version of the same row) into `self`.
    pub fn merge(&mut self, other: Row) {
        debug_assert_eq!(self.clustering, other.clustering);
        if other.liveness.supersedes(&self.liveness) {
            self.liveness = other.liveness;
        }
        self.deletion = self.deletion.max(other.deletion);
        for (column, deletion) in other.complex_deletions {
            self.add_complex_deletion(column, deletion);
        }
        if self.cells.is_empty() {
            self.cells = other.cells;
        } else if !other.cells.is_empty() {
            let mine = std::mem::take(&mut self.cells);
            self.cells = merge_cells(mine, other.cells);
        }
    }

    /// Drops everything shadowed by the row's own deletions or by `outer` (the partition
    /// deletion and any range tombstone covering the row). A row deletion that `outer`
    /// supersedes is dropped too, as Cassandra does.
    pub fn purge_shadowed(&mut self, outer: DeletionTime) {
        if !self.deletion.supersedes(&outer) {
            self.deletion = DeletionTime::LIVE;
        }
        let effective = self.deletion.max(outer);
        if effective.deletes_timestamp(self.liveness.timestamp) {
            self.liveness = LivenessInfo::EMPTY;
        }
        self.complex_deletions.retain(|(_, d)| d.supersedes(&effective));
        let complex = &self.complex_deletions;
        self.cells.retain(|c| {
            if effective.deletes_timestamp(c.timestamp) {
                return false;
            }
            if c.path.is_some() {
                if let Ok(i) = complex.binary_search_by_key(&c.column, |(col, _)| *col) {
                    return !complex[i].1.deletes_timestamp(c.timestamp);
                }
            }
            true
        });
    }

    /// Cassandra's compaction-time conversion: cells whose TTL has passed by `now_seconds`
    /// become tombstones (keeping their timestamp, deleted at their write second), so they shadow
    /// older versions elsewhere until purged. An expired row marker stays as it is: it still
    /// supersedes older markers in other SSTables, and is purged like a tombstone.
    pub fn expire(&mut self, now_seconds: u32) {
        for c in &mut self.cells {
            if c.is_expiring() && !c.is_live(now_seconds) {
                let deleted_at = c.local_deletion_time.saturating_sub(c.ttl);
                let path = c.path.take();
                *c = Cell::tombstone(c.column, c.timestamp, deleted_at);
                c.path = path;
            }
        }
    }

    /// Drops the tombstones `purgeable(timestamp, local_deletion_time)` allows: the row deletion,
    /// collection deletions, tombstone cells and an expired row marker. Call [`Row::expire`] and
    /// [`Row::purge_shadowed`] first.
    pub fn purge_tombstones(&mut self, now_seconds: u32, purgeable: &mut impl FnMut(i64, u32) -> bool) {
        if !self.deletion.is_live()
            && purgeable(self.deletion.marked_for_delete_at, self.deletion.local_deletion_time)
        {
            self.deletion = DeletionTime::LIVE;
        }
        self.complex_deletions.retain(|(_, d)| !purgeable(d.marked_for_delete_at, d.local_deletion_time));
        self.cells.retain(|c| !(c.is_tombstone() && purgeable(c.timestamp, c.local_deletion_time)));
        let l = self.liveness;
        if !l.is_empty() && !l.is_live(now_seconds) && purgeable(l.timestamp, l.local_expiration_time) {
            self.liveness = LivenessInfo::EMPTY;
        }
    }
}

fn merge_cells(a: Vec<Cell>, b: Vec<Cell>) -> Vec<Cell> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => out.extend(a.by_ref()),
            (None, Some(_)) => out.extend(b.by_ref()),
            (Some(x), Some(y)) => match x.identity().cmp(&y.identity()) {
                std::cmp::Ordering::Less => out.extend(a.next()),
                std::cmp::Ordering::Greater => out.extend(b.next()),
                std::cmp::Ordering::Equal => {
                    if let (Some(x), Some(y)) = (a.next(), b.next()) {
                        out.push(reconcile(&x, &y).clone());
                    }
                }
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: Vec<Cell>) -> Row {
        let mut r = Row::new(Bytes::from_static(b"\x38"));
        for c in cells {
            r.add_cell(c);
        }
        r
    }

    fn live(col: u32, ts: i64, v: &'static [u8]) -> Cell {
        Cell::live(ColumnId(col), ts, Bytes::from_static(v))
    }

    #[test]
    fn merge_reconciles_each_cell_independently() {
        let mut a = row(vec![live(1, 10, b"a1"), live(2, 5, b"a2")]);
        let b = row(vec![live(1, 9, b"b1"), live(2, 6, b"b2"), live(3, 1, b"b3")]);
        a.merge(b);
        assert_eq!(a.cells, vec![live(1, 10, b"a1"), live(2, 6, b"b2"), live(3, 1, b"b3")]);
    }

    #[test]
    fn row_deletion_shadows_older_cells_and_marker() {
        let mut r = row(vec![live(1, 10, b"x"), live(2, 20, b"y")]);
        r.liveness = LivenessInfo::new(10);
        r.deletion = DeletionTime::new(15, 100);
        r.purge_shadowed(DeletionTime::LIVE);
        assert_eq!(r.cells, vec![live(2, 20, b"y")]);
        assert!(r.liveness.is_empty());
        assert_eq!(r.deletion, DeletionTime::new(15, 100));
    }

    #[test]
    fn outer_deletion_that_supersedes_the_row_deletion_replaces_it() {
        let mut r = row(vec![live(1, 30, b"x")]);
        r.deletion = DeletionTime::new(15, 100);
        r.purge_shadowed(DeletionTime::new(20, 100));
        assert!(r.deletion.is_live());
        assert_eq!(r.cells.len(), 1);
    }

    #[test]
    fn collection_deletion_shadows_only_older_elements_of_its_column() {
        let el = |k: &'static [u8], ts| live(1, ts, b"v").with_path(Bytes::from_static(k));
        let mut r = row(vec![el(b"a", 5), el(b"b", 15), live(2, 1, b"other")]);
        r.add_complex_deletion(ColumnId(1), DeletionTime::new(10, 100));
        r.purge_shadowed(DeletionTime::LIVE);
        assert_eq!(r.cells, vec![el(b"b", 15), live(2, 1, b"other")]);
        assert_eq!(r.complex_deletions.len(), 1);
    }

    #[test]
    fn expired_cells_become_tombstones_with_their_timestamp() {
        let mut r = row(vec![Cell::expiring(ColumnId(1), 7, Bytes::from_static(b"v"), 10, 100)]);
        r.expire(105);
        assert!(r.cells[0].is_expiring());
        r.expire(110);
        assert!(r.cells[0].is_tombstone());
        assert_eq!(r.cells[0].timestamp, 7);
        assert_eq!(r.cells[0].local_deletion_time, 100);
    }

    #[test]
    fn live_data_needs_a_live_marker_or_cell() {
        let mut r = row(vec![Cell::tombstone(ColumnId(1), 1, 5)]);
        assert!(!r.has_live_data(10));
        r.liveness = LivenessInfo::new(1);
        assert!(r.has_live_data(10));
    }
}
