//! Reconciling replicas' answers: digests, and merging versions of a partition by timestamp.
//!
//! A read at a level above ONE asks one replica for data and the others for a digest of their
//! answer ([`digest`]). Equal digests mean the data is the answer. On a mismatch the coordinator
//! asks every contacted replica for data and merges the versions with the same rules as the
//! engine's read path ([`merge_versions`]): headers merged, rows with equal clustering merged
//! cell by cell (last write wins with Cassandra's tie-breaks), shadowed data dropped, then the
//! row limit applied.

use std::collections::BTreeMap;

use bytes::Bytes;
use sibyl_engine::token::murmur3_x64_128;
use sibyl_engine::{DecoratedKey, Mutation, PartitionData, PartitionHeader, PartitionUpdate, Row, TableId};

use crate::verbs::encode_partition;

/// The digest of a replica's answer: a 128-bit hash of its encoding (`None` hashes as empty).
#[must_use]
pub fn digest(data: Option<&PartitionData>) -> [u8; 16] {
    let mut bytes = Vec::new();
    if let Some(p) = data {
        encode_partition(p, &mut bytes);
    }
    let (a, b) = murmur3_x64_128(&bytes, 0);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_be_bytes());
    out[8..].copy_from_slice(&b.to_be_bytes());
    out
}

/// Merges replicas' versions of one partition. `None` when no replica had anything.
#[must_use]
pub fn merge_versions(
    versions: Vec<Option<PartitionData>>,
    reversed: bool,
    row_limit: usize,
    now_seconds: u32,
) -> Option<PartitionData> {
    let mut key: Option<DecoratedKey> = None;
    let mut header = PartitionHeader::default();
    let mut rows: BTreeMap<Bytes, Row> = BTreeMap::new();
    for v in versions.into_iter().flatten() {
        key.get_or_insert(v.key);
        header.merge(v.header);
        for r in v.rows {
            match rows.get_mut(&r.clustering) {
                Some(mine) => mine.merge(r),
                None => {
                    rows.insert(r.clustering.clone(), r);
                }
            }
        }
    }
    let key = key?;
    header.purge_shadowed();
    let mut out = Vec::new();
    let mut live = 0usize;
    let ordered: Box<dyn Iterator<Item = Row>> =
        if reversed { Box::new(rows.into_values().rev()) } else { Box::new(rows.into_values()) };
    for mut row in ordered {
        if live >= row_limit {
            break;
        }
        row.purge_shadowed(header.deletion_for(&row.clustering));
        if row.is_empty() {
            continue;
        }
        if row.has_live_data(now_seconds) {
            live += 1;
        }
        out.push(row);
    }
    Some(PartitionData { key, header, rows: out })
}

/// Merges replicas' answers to a range scan: partitions in token order, each merged across
/// replicas, at most `partition_limit` partitions that have anything to return.
#[must_use]
pub fn merge_ranges(
    answers: Vec<Vec<PartitionData>>,
    row_limit: usize,
    partition_limit: usize,
    now_seconds: u32,
) -> Vec<PartitionData> {
    let mut by_key: BTreeMap<DecoratedKey, Vec<Option<PartitionData>>> = BTreeMap::new();
    for answer in answers {
        for p in answer {
            by_key.entry(p.key.clone()).or_default().push(Some(p));
        }
    }
    let mut out = Vec::new();
    let mut rows_left = row_limit;
    for (_, versions) in by_key {
        if out.len() >= partition_limit || rows_left == 0 {
            break;
        }
        if let Some(p) = merge_versions(versions, false, rows_left, now_seconds) {
            if !(p.rows.is_empty() && p.header.is_empty()) {
                rows_left = rows_left.saturating_sub(p.live_rows(now_seconds).count());
                out.push(p);
            }
        }
    }
    out
}

/// What a replica needs to catch up with the merged answer: the merged partition written back
/// as a mutation (idempotent: last write wins makes re-applying newer data harmless).
#[must_use]
pub fn repair_mutation(table: TableId, merged: &PartitionData) -> Mutation {
    Mutation {
        table,
        update: PartitionUpdate {
            key: merged.key.key.clone(),
            header: merged.header.clone(),
            rows: merged.rows.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use sibyl_engine::{Cell, ColumnId, DeletionTime};

    use super::*;

    fn row(ck: u8, ts: i64, v: &'static [u8]) -> Row {
        let mut r = Row::new(Bytes::copy_from_slice(&[ck]));
        r.cells.push(Cell::live(ColumnId(1), ts, Bytes::from_static(v)));
        r
    }

    fn part(rows: Vec<Row>) -> PartitionData {
        PartitionData { key: DecoratedKey::new(Bytes::from_static(b"k")), header: Default::default(), rows }
    }

    #[test]
    fn newer_cell_wins_and_rows_from_every_replica_are_kept() {
        let a = part(vec![row(1, 10, b"old"), row(3, 10, b"c")]);
        let b = part(vec![row(1, 20, b"new"), row(2, 5, b"b")]);
        let m = merge_versions(vec![Some(a), Some(b), None], false, usize::MAX, 0).unwrap();
        let values: Vec<&[u8]> = m.rows.iter().map(|r| &r.cells[0].value[..]).collect();
        assert_eq!(values, vec![&b"new"[..], b"b", b"c"]);
        let rev = merge_versions(vec![Some(m.clone())], true, 2, 0).unwrap();
        assert_eq!(rev.rows.len(), 2);
        assert_eq!(rev.rows[0].clustering[0], 3);
    }

    #[test]
    fn a_partition_deletion_on_one_replica_shadows_older_rows_on_another() {
        let mut deleted = part(vec![]);
        deleted.header.deletion = DeletionTime::new(15, 100);
        let live = part(vec![row(1, 10, b"gone"), row(2, 20, b"kept")]);
        let m = merge_versions(vec![Some(live), Some(deleted)], false, usize::MAX, 0).unwrap();
        assert_eq!(m.rows.len(), 1);
        assert_eq!(m.rows[0].clustering[0], 2);
        assert_eq!(m.header.deletion, DeletionTime::new(15, 100));
    }

    #[test]
    fn digests_differ_when_data_differs() {
        let a = part(vec![row(1, 10, b"x")]);
        let b = part(vec![row(1, 11, b"x")]);
        assert_eq!(digest(Some(&a)), digest(Some(&a.clone())));
        assert_ne!(digest(Some(&a)), digest(Some(&b)));
        assert_ne!(digest(Some(&a)), digest(None));
    }

    #[test]
    fn range_answers_merge_in_token_order_with_limits() {
        let key = |k: &'static [u8]| DecoratedKey::new(Bytes::from_static(k));
        let p = |k: &'static [u8]| PartitionData {
            key: key(k),
            header: Default::default(),
            rows: vec![row(1, 1, b"v")],
        };
        let a = vec![p(b"a"), p(b"b")];
        let b = vec![p(b"b"), p(b"c")];
        let mut all = merge_ranges(vec![a.clone(), b.clone()], usize::MAX, usize::MAX, 0);
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].key < w[1].key));
        all = merge_ranges(vec![a, b], usize::MAX, 2, 0);
        assert_eq!(all.len(), 2);
    }
}
