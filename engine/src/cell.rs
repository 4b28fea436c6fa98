//! Cells, liveness and deletion times, and Cassandra's reconciliation rules for them.
//!
//! Everything here is a plain value with pure functions; the rules follow Cassandra's
//! `Cells.resolveRegular`, `LivenessInfo.supersedes` and `DeletionTime`:
//!
//! * the higher write timestamp wins;
//! * on equal timestamps a tombstone or expiring cell beats a regular cell, a tombstone beats an
//!   expiring cell, then the later local deletion (or expiration) time wins, and finally the
//!   greater value wins, comparing bytes as Java's signed `ByteBuffer.compareTo` does;
//! * a deletion shadows everything written at or before its `marked_for_delete_at`.

use bytes::Bytes;

use crate::ids::ColumnId;

/// `local_deletion_time` of a cell that is neither a tombstone nor expiring.
pub const NO_DELETION_TIME: u32 = u32::MAX;
/// `ttl` of a cell without TTL.
pub const NO_TTL: u32 = 0;
/// Largest TTL Cassandra accepts (20 years).
pub const MAX_TTL_SECONDS: u32 = 20 * 365 * 24 * 60 * 60;

/// One value of one column in one row (or one element of a collection column).
///
/// * live: `ttl == 0`, `local_deletion_time == NO_DELETION_TIME`;
/// * expiring: `ttl > 0`, `local_deletion_time` = the second it expires;
/// * tombstone: `ttl == 0`, `local_deletion_time` = the second it was deleted, empty value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// Which column.
    pub column: ColumnId,
    /// For collection elements: the element's key (list index uuid, set element, map key).
    pub path: Option<Bytes>,
    /// Write timestamp in microseconds.
    pub timestamp: i64,
    /// TTL in seconds, 0 for none.
    pub ttl: u32,
    /// Deletion or expiration second, [`NO_DELETION_TIME`] for a live cell.
    pub local_deletion_time: u32,
    /// The value (empty for tombstones).
    pub value: Bytes,
}

impl Cell {
    /// A live cell without TTL.
    #[must_use]
    pub fn live(column: ColumnId, timestamp: i64, value: Bytes) -> Cell {
        Cell { column, path: None, timestamp, ttl: NO_TTL, local_deletion_time: NO_DELETION_TIME, value }
    }

    /// A cell that expires `ttl` seconds after `now_seconds`.
    #[must_use]
    pub fn expiring(column: ColumnId, timestamp: i64, value: Bytes, ttl: u32, now_seconds: u32) -> Cell {
        assert!(ttl > 0, "an expiring cell needs a positive ttl");
        Cell {
            column,
            path: None,
            timestamp,
            ttl,
            local_deletion_time: now_seconds.saturating_add(ttl).min(NO_DELETION_TIME - 1),
            value,
        }
    }

    /// A cell tombstone written at `now_seconds`.
    #[must_use]
    pub fn tombstone(column: ColumnId, timestamp: i64, now_seconds: u32) -> Cell {
        Cell {
            column,
            path: None,
            timestamp,
            ttl: NO_TTL,
            local_deletion_time: now_seconds.min(NO_DELETION_TIME - 1),
            value: Bytes::new(),
        }
    }

    /// The same cell for a collection element.
    #[must_use]
    pub fn with_path(mut self, path: Bytes) -> Cell {
        self.path = Some(path);
        self
    }

    /// Whether this is a deletion marker.
    #[must_use]
    pub fn is_tombstone(&self) -> bool {
        self.ttl == NO_TTL && self.local_deletion_time != NO_DELETION_TIME
    }

    /// Whether this cell carries a TTL.
    #[must_use]
    pub fn is_expiring(&self) -> bool {
        self.ttl != NO_TTL
    }

    /// Whether the cell is visible at `now_seconds` (not a tombstone and not expired).
    #[must_use]
    pub fn is_live(&self, now_seconds: u32) -> bool {
        self.local_deletion_time == NO_DELETION_TIME
            || (self.is_expiring() && now_seconds < self.local_deletion_time)
    }

    /// Identity of the cell inside its row: column then path.
    #[must_use]
    pub fn identity(&self) -> (ColumnId, Option<&[u8]>) {
        (self.column, self.path.as_deref())
    }

    /// Approximate memory used, for memtable accounting.
    #[must_use]
    pub fn size_bytes(&self) -> usize {
        48 + self.value.len() + self.path.as_ref().map_or(0, |p| p.len())
    }
}

/// Cassandra's cell reconciliation: which of two versions of the same cell wins.
/// Commutative: `reconcile(a, b)` and `reconcile(b, a)` pick the same cell.
#[must_use]
pub fn reconcile<'a>(left: &'a Cell, right: &'a Cell) -> &'a Cell {
    if left.timestamp != right.timestamp {
        return if left.timestamp > right.timestamp { left } else { right };
    }
    let left_dead_or_expiring = left.local_deletion_time != NO_DELETION_TIME;
    let right_dead_or_expiring = right.local_deletion_time != NO_DELETION_TIME;
    if left_dead_or_expiring || right_dead_or_expiring {
        if left_dead_or_expiring != right_dead_or_expiring {
            return if left_dead_or_expiring { left } else { right };
        }
        let left_tombstone = !left.is_expiring();
        let right_tombstone = !right.is_expiring();
        if left_tombstone != right_tombstone {
            return if left_tombstone { left } else { right };
        }
        if left.local_deletion_time != right.local_deletion_time {
            return if left.local_deletion_time > right.local_deletion_time { left } else { right };
        }
    }
    if java_compare(&left.value, &right.value) != std::cmp::Ordering::Less {
        left
    } else {
        right
    }
}

/// Java's `ByteBuffer.compareTo`: bytes compared as signed, then length.
fn java_compare(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let c = (*x as i8).cmp(&(*y as i8));
        if c != std::cmp::Ordering::Equal {
            return c;
        }
    }
    a.len().cmp(&b.len())
}

/// A deletion: everything written at or before `marked_for_delete_at` is shadowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeletionTime {
    /// Timestamp (microseconds) of the deletion.
    pub marked_for_delete_at: i64,
    /// Second the deletion happened on the coordinator (drives gc_grace purging).
    pub local_deletion_time: u32,
}

impl DeletionTime {
    /// "Not deleted".
    pub const LIVE: DeletionTime =
        DeletionTime { marked_for_delete_at: i64::MIN, local_deletion_time: NO_DELETION_TIME };

    /// A deletion at `timestamp` made at `now_seconds`.
    #[must_use]
    pub fn new(timestamp: i64, now_seconds: u32) -> DeletionTime {
        DeletionTime {
            marked_for_delete_at: timestamp,
            local_deletion_time: now_seconds.min(NO_DELETION_TIME - 1),
        }
    }

    /// Whether this is [`DeletionTime::LIVE`].
    #[must_use]
    pub fn is_live(&self) -> bool {
        self.marked_for_delete_at == i64::MIN && self.local_deletion_time == NO_DELETION_TIME
    }

    /// Whether data written at `timestamp` is shadowed by this deletion.
    #[must_use]
    pub fn deletes_timestamp(&self, timestamp: i64) -> bool {
        !self.is_live() && timestamp <= self.marked_for_delete_at
    }

    /// Whether this deletion is stronger than `other` (Cassandra's `DeletionTime.supersedes`).
    #[must_use]
    pub fn supersedes(&self, other: &DeletionTime) -> bool {
        self.marked_for_delete_at > other.marked_for_delete_at
            || (self.marked_for_delete_at == other.marked_for_delete_at
                && self.local_deletion_time > other.local_deletion_time)
    }

    /// The stronger of the two.
    #[must_use]
    pub fn max(self, other: DeletionTime) -> DeletionTime {
        if other.supersedes(&self) {
            other
        } else {
            self
        }
    }
}

/// The row marker written by INSERT: makes a row exist even with every regular column null.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LivenessInfo {
    /// Write timestamp (microseconds), `i64::MIN` when absent.
    pub timestamp: i64,
    /// TTL in seconds, 0 for none.
    pub ttl: u32,
    /// Expiration second for an expiring marker, [`NO_DELETION_TIME`] otherwise.
    pub local_expiration_time: u32,
}

impl LivenessInfo {
    /// No row marker.
    pub const EMPTY: LivenessInfo =
        LivenessInfo { timestamp: i64::MIN, ttl: NO_TTL, local_expiration_time: NO_DELETION_TIME };

    /// A marker without TTL.
    #[must_use]
    pub fn new(timestamp: i64) -> LivenessInfo {
        LivenessInfo { timestamp, ..LivenessInfo::EMPTY }
    }

    /// A marker that expires `ttl` seconds after `now_seconds`.
    #[must_use]
    pub fn expiring(timestamp: i64, ttl: u32, now_seconds: u32) -> LivenessInfo {
        assert!(ttl > 0, "an expiring row marker needs a positive ttl");
        LivenessInfo {
            timestamp,
            ttl,
            local_expiration_time: now_seconds.saturating_add(ttl).min(NO_DELETION_TIME - 1),
        }
    }

    /// Whether there is no marker.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.timestamp == i64::MIN
    }

    /// Whether the marker carries a TTL.
    #[must_use]
    pub fn is_expiring(&self) -> bool {
        self.ttl != NO_TTL
    }

    /// Whether the marker makes the row visible at `now_seconds`.
    #[must_use]
    pub fn is_live(&self, now_seconds: u32) -> bool {
        !self.is_empty() && (!self.is_expiring() || now_seconds < self.local_expiration_time)
    }

    /// Cassandra's `LivenessInfo.supersedes`.
    #[must_use]
    pub fn supersedes(&self, other: &LivenessInfo) -> bool {
        if self.timestamp != other.timestamp {
            return self.timestamp > other.timestamp;
        }
        if self.is_expiring() == other.is_expiring() {
            return self.local_expiration_time > other.local_expiration_time;
        }
        self.is_expiring()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: ColumnId = ColumnId(1);

    fn live(ts: i64, v: &'static [u8]) -> Cell {
        Cell::live(C, ts, Bytes::from_static(v))
    }

    fn both_ways(a: &Cell, b: &Cell) -> Cell {
        let x = reconcile(a, b).clone();
        assert_eq!(x, *reconcile(b, a), "reconcile must be commutative");
        x
    }

    #[test]
    fn higher_timestamp_wins() {
        assert_eq!(both_ways(&live(1, b"new"), &live(2, b"old")), live(2, b"old"));
        assert_eq!(both_ways(&Cell::tombstone(C, 1, 100), &live(2, b"x")), live(2, b"x"));
    }

    #[test]
    fn tombstone_beats_live_and_expiring_on_timestamp_tie() {
        let t = Cell::tombstone(C, 5, 100);
        assert_eq!(both_ways(&t, &live(5, b"v")), t);
        let e = Cell::expiring(C, 5, Bytes::from_static(b"v"), 10, 100);
        assert_eq!(both_ways(&t, &e), t);
    }

    #[test]
    fn expiring_beats_regular_on_timestamp_tie_even_before_expiry() {
        let e = Cell::expiring(C, 5, Bytes::from_static(b"a"), 1000, 100);
        assert_eq!(both_ways(&e, &live(5, b"zzz")), e);
    }

    #[test]
    fn later_expiration_wins_between_expiring_cells() {
        let a = Cell::expiring(C, 5, Bytes::from_static(b"z"), 10, 100);
        let b = Cell::expiring(C, 5, Bytes::from_static(b"a"), 20, 100);
        assert_eq!(both_ways(&a, &b), b);
    }

    #[test]
    fn greater_value_wins_a_full_tie_comparing_signed_bytes() {
        assert_eq!(both_ways(&live(5, b"a"), &live(5, b"b")), live(5, b"b"));
        // 0x80 is negative as a Java byte, so 0x7f wins.
        assert_eq!(both_ways(&live(5, &[0x80]), &live(5, &[0x7f])), live(5, &[0x7f]));
        assert_eq!(both_ways(&live(5, b"ab"), &live(5, b"a")), live(5, b"ab"));
    }

    #[test]
    fn deletion_shadows_at_or_before_its_timestamp() {
        let d = DeletionTime::new(10, 100);
        assert!(d.deletes_timestamp(10) && d.deletes_timestamp(-3));
        assert!(!d.deletes_timestamp(11));
        assert!(!DeletionTime::LIVE.deletes_timestamp(i64::MIN));
        assert_eq!(DeletionTime::LIVE.max(d), d);
        assert_eq!(d.max(DeletionTime::new(10, 200)), DeletionTime::new(10, 200));
    }

    #[test]
    fn expired_cells_and_markers_are_not_live() {
        let e = Cell::expiring(C, 5, Bytes::from_static(b"v"), 10, 100);
        assert!(e.is_live(109) && !e.is_live(110));
        let m = LivenessInfo::expiring(5, 10, 100);
        assert!(m.is_live(109) && !m.is_live(110));
        assert!(!LivenessInfo::EMPTY.is_live(0));
        assert!(LivenessInfo::new(1).supersedes(&LivenessInfo::EMPTY));
        assert!(m.supersedes(&LivenessInfo::new(5)));
    }
}
