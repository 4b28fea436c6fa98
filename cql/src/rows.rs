//! Between CQL rows and engine rows.
//!
//! The engine stores partitions of rows of cells and knows nothing of types. This module is the
//! one place that decides how a CQL row becomes engine bytes and back:
//!
//! - partition key: the Cassandra serialization of the key column (one column), or Cassandra's
//!   `CompositeType` of them (several); so tokens equal the drivers' Murmur3 tokens;
//! - clustering key: each clustering value's byte-comparable form (`types::comparable`), joined
//!   by [`sibyl_engine::clustering`] with the column's ASC/DESC order;
//! - a simple column: one cell whose value is the Cassandra serialization;
//! - a non-frozen collection: one cell per element; the cell path is the element's
//!   byte-comparable form for sets (empty value) and maps (value = the map value), and a
//!   [`ListPath`] for lists, so the engine's cell order is the collection's order;
//! - a static column: a cell of the partition's static row.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use sibyl_engine::clustering::{decode_components, ClusteringBuilder};
use sibyl_engine::{Cell, ColumnId, LivenessInfo, PartitionData, Row};

use crate::error::{Error, Result};
use crate::schema::{ColumnMetadata, TableMetadata};
use crate::types::{self, CqlType, Value};

/// Largest partition key component and clustering value (Cassandra's 64 KiB key limit).
pub const MAX_KEY_COMPONENT_BYTES: usize = 65_535;

/// Encodes the partition key from the serialized values of the key columns, in order.
pub fn partition_key(table: &TableMetadata, values: &[Bytes]) -> Result<Bytes> {
    assert_eq!(values.len(), table.partition_key_len(), "one value per partition key column");
    for (v, c) in values.iter().zip(table.partition_key()) {
        if v.len() > MAX_KEY_COMPONENT_BYTES {
            return Err(Error::invalid(format!(
                "Key length of {} is longer than maximum of {MAX_KEY_COMPONENT_BYTES} (column {})",
                v.len(),
                c.name
            )));
        }
    }
    if let [single] = values {
        if single.is_empty() {
            return Err(Error::invalid("Key may not be empty"));
        }
        return Ok(single.clone());
    }
    let parts: Vec<&[u8]> = values.iter().map(|v| v.as_ref()).collect();
    Ok(Bytes::from(sibyl_engine::token::composite_partition_key(&parts)))
}

/// Splits an engine partition key back into the serialized values of the key columns.
pub fn split_partition_key(table: &TableMetadata, key: &Bytes) -> Result<Vec<Bytes>> {
    let n = table.partition_key_len();
    if n == 1 {
        return Ok(vec![key.clone()]);
    }
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    while i < key.len() {
        let len_bytes = key.get(i..i + 2).ok_or_else(|| bad_key(table))?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let start = i + 2;
        let end = start + len;
        if key.get(end) != Some(&0) {
            return Err(bad_key(table));
        }
        out.push(key.slice(start..end));
        i = end + 1;
    }
    if out.len() != n {
        return Err(bad_key(table));
    }
    Ok(out)
}

fn bad_key(table: &TableMetadata) -> Error {
    Error::Server(format!("malformed stored partition key in {}.{}", table.keyspace, table.name))
}

/// Builds the clustering key or prefix of the given leading clustering values.
pub fn clustering_prefix(table: &TableMetadata, values: &[Value]) -> Result<ClusteringBuilder> {
    let mut b = ClusteringBuilder::new();
    for (v, c) in values.iter().zip(table.clustering()) {
        let comparable = types::to_comparable(v);
        if comparable.len() > MAX_KEY_COMPONENT_BYTES {
            return Err(Error::invalid(format!(
                "Key length of {} is longer than maximum of {MAX_KEY_COMPONENT_BYTES} (column {})",
                comparable.len(),
                c.name
            )));
        }
        b.push(&comparable, c.order);
    }
    Ok(b)
}

/// Decodes an engine clustering key into the serialized clustering values.
pub fn clustering_values(table: &TableMetadata, key: &[u8]) -> Result<Vec<Bytes>> {
    let orders = table.clustering_orders();
    let parts = decode_components(key, &orders).ok_or_else(|| {
        Error::Server(format!("malformed stored clustering key in {}.{}", table.keyspace, table.name))
    })?;
    parts
        .iter()
        .zip(table.clustering())
        .map(|(p, c)| {
            let v = types::from_comparable(&c.ty, p).map_err(|e| {
                Error::Server(format!(
                    "stored clustering value of {}.{}.{}: {e}",
                    table.keyspace, table.name, c.name
                ))
            })?;
            Ok(Bytes::from(types::encode(&v)))
        })
        .collect()
}

/// Timestamp, TTL and "now" of one write.
#[derive(Debug, Clone, Copy)]
pub struct WriteTime {
    /// Write timestamp, microseconds.
    pub timestamp: i64,
    /// TTL in seconds (0: none).
    pub ttl: u32,
    /// Now, seconds.
    pub now_seconds: u32,
}

impl WriteTime {
    /// A live (or expiring) cell.
    #[must_use]
    pub fn cell(&self, column: ColumnId, value: Bytes) -> Cell {
        if self.ttl > 0 {
            Cell::expiring(column, self.timestamp, value, self.ttl, self.now_seconds)
        } else {
            Cell::live(column, self.timestamp, value)
        }
    }

    /// A cell tombstone.
    #[must_use]
    pub fn tombstone(&self, column: ColumnId) -> Cell {
        Cell::tombstone(column, self.timestamp, self.now_seconds)
    }

    /// The row marker INSERT writes.
    #[must_use]
    pub fn liveness(&self) -> LivenessInfo {
        if self.ttl > 0 {
            LivenessInfo::expiring(self.timestamp, self.ttl, self.now_seconds)
        } else {
            LivenessInfo::new(self.timestamp)
        }
    }

    /// The deletion of a whole collection before it is overwritten: one microsecond older than
    /// the write, so the new elements survive it (as Cassandra does).
    #[must_use]
    pub fn collection_overwrite(&self) -> sibyl_engine::DeletionTime {
        sibyl_engine::DeletionTime::new(self.timestamp - 1, self.now_seconds)
    }
}

/// Generates list element paths: 8 bytes of order (big-endian, derived from the write
/// timestamp: increasing for appends, decreasing for prepends) and 8 bytes of node-local sequence
/// so that two elements written in the same microsecond stay distinct.
#[derive(Debug, Default)]
pub struct ListPath {
    sequence: AtomicU64,
}

impl ListPath {
    /// A path for an element appended at `timestamp` (the `index`-th of this statement).
    pub fn append(&self, timestamp: i64, index: usize) -> Bytes {
        let order =
            (1u64 << 63).wrapping_add(timestamp.unsigned_abs().wrapping_mul(1024)).wrapping_add(index as u64);
        self.path(order)
    }

    /// A path for an element prepended at `timestamp` (the `index`-th of `count`).
    pub fn prepend(&self, timestamp: i64, index: usize, count: usize) -> Bytes {
        let order = (1u64 << 63)
            .wrapping_sub(timestamp.unsigned_abs().wrapping_mul(1024))
            .wrapping_sub(count as u64)
            .wrapping_add(index as u64);
        self.path(order)
    }

    fn path(&self, order: u64) -> Bytes {
        let seq = self.sequence.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&order.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        Bytes::from(out)
    }
}

/// A column's value as read, with what WRITETIME() and TTL() report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnValue {
    /// Serialized value (collections assembled from their element cells).
    pub bytes: Bytes,
    /// Write timestamp (simple columns; the newest element for collections).
    pub timestamp: i64,
    /// Remaining TTL in seconds, if the cell expires.
    pub ttl: Option<i32>,
}

/// One row of a partition as CQL sees it: a value (or null) per table column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CqlRow {
    /// The engine clustering key (for paging), empty for a partition's static-only row.
    pub clustering: Bytes,
    /// Values by column index of [`TableMetadata::columns`].
    pub columns: Vec<Option<ColumnValue>>,
}

/// A partition as CQL sees it.
#[derive(Debug, Clone)]
pub struct CqlPartition {
    /// Engine partition key.
    pub key: Bytes,
    /// Static column values (by column index), if the partition has live static data.
    pub statics: Option<Vec<Option<ColumnValue>>>,
    /// Live rows, in the order read.
    pub rows: Vec<CqlRow>,
}

impl CqlPartition {
    /// The rows a `SELECT` returns: each row with the partition's static values filled in, or,
    /// for a partition with static data and no rows, one row with nulls for the clustering and
    /// regular columns (Cassandra's behaviour).
    #[must_use]
    pub fn result_rows(&self) -> Vec<CqlRow> {
        let mut rows = self.rows.clone();
        if let Some(statics) = &self.statics {
            if rows.is_empty() {
                // `statics` has the partition key filled in and nulls elsewhere.
                rows.push(CqlRow { clustering: Bytes::new(), columns: statics.clone() });
            } else {
                for r in &mut rows {
                    for (i, s) in statics.iter().enumerate() {
                        if s.is_some() && r.columns[i].is_none() {
                            r.columns[i] = s.clone();
                        }
                    }
                }
            }
        }
        rows
    }
}

/// Decodes an engine partition for `table` at `now_seconds`.
pub fn decode_partition(
    table: &TableMetadata,
    data: &PartitionData,
    now_seconds: u32,
) -> Result<CqlPartition> {
    let key_values = split_partition_key(table, &data.key.key)?;
    let n = table.columns.len();
    let fill_key = |columns: &mut Vec<Option<ColumnValue>>| {
        for (i, v) in key_values.iter().enumerate() {
            columns[i] = Some(ColumnValue { bytes: v.clone(), timestamp: i64::MIN, ttl: None });
        }
    };
    let statics = match &data.header.static_row {
        Some(r) if r.has_live_data(now_seconds) => {
            let mut cols = decode_cells(table, r, now_seconds)?;
            fill_key(&mut cols);
            Some(cols)
        }
        _ => None,
    };
    let ck = table.clustering_len();
    let pk = key_values.len();
    let mut rows = Vec::with_capacity(data.rows.len());
    for r in data.live_rows(now_seconds) {
        let mut columns = decode_cells(table, r, now_seconds)?;
        fill_key(&mut columns);
        if ck > 0 {
            for (i, v) in clustering_values(table, &r.clustering)?.into_iter().enumerate() {
                columns[pk + i] = Some(ColumnValue { bytes: v, timestamp: i64::MIN, ttl: None });
            }
        }
        debug_assert_eq!(columns.len(), n);
        rows.push(CqlRow { clustering: r.clustering.clone(), columns });
    }
    Ok(CqlPartition { key: data.key.key.clone(), statics, rows })
}

fn decode_cells(table: &TableMetadata, row: &Row, now_seconds: u32) -> Result<Vec<Option<ColumnValue>>> {
    let mut out: Vec<Option<ColumnValue>> = vec![None; table.columns.len()];
    let mut i = 0;
    let cells = &row.cells;
    while i < cells.len() {
        let column = cells[i].column;
        let mut j = i;
        while j < cells.len() && cells[j].column == column {
            j += 1;
        }
        let group = &cells[i..j];
        i = j;
        // Cells of dropped columns have ids no current column has: they are skipped.
        let Some(idx) = table.column_index_by_id(column) else { continue };
        let col = &table.columns[idx];
        out[idx] = if col.ty.is_multi_cell() {
            collection_value(col, group, now_seconds)?
        } else {
            group.iter().find(|c| c.path.is_none() && c.is_live(now_seconds)).map(|c| ColumnValue {
                bytes: c.value.clone(),
                timestamp: c.timestamp,
                ttl: remaining_ttl(c, now_seconds),
            })
        };
    }
    Ok(out)
}

fn remaining_ttl(c: &Cell, now_seconds: u32) -> Option<i32> {
    c.is_expiring()
        .then(|| i32::try_from(c.local_deletion_time.saturating_sub(now_seconds)).unwrap_or(i32::MAX))
}

fn collection_value(col: &ColumnMetadata, cells: &[Cell], now_seconds: u32) -> Result<Option<ColumnValue>> {
    let live: Vec<&Cell> = cells.iter().filter(|c| c.path.is_some() && c.is_live(now_seconds)).collect();
    if live.is_empty() {
        return Ok(None);
    }
    let stored = |what: &str, e: &dyn std::fmt::Display| {
        Error::Server(format!("stored {what} of column {}: {e}", col.name))
    };
    let mut elements: Vec<Bytes> = Vec::with_capacity(live.len() * 2);
    match &col.ty {
        CqlType::List { .. } => elements.extend(live.iter().map(|c| c.value.clone())),
        CqlType::Set { element, .. } => {
            for c in &live {
                let path = c.path.as_deref().unwrap_or_default();
                let v = types::from_comparable(element, path).map_err(|e| stored("set element", &e))?;
                elements.push(Bytes::from(types::encode(&v)));
            }
        }
        CqlType::Map { key, .. } => {
            for c in &live {
                let path = c.path.as_deref().unwrap_or_default();
                let k = types::from_comparable(key, path).map_err(|e| stored("map key", &e))?;
                elements.push(Bytes::from(types::encode(&k)));
                elements.push(c.value.clone());
            }
        }
        other => return Err(Error::Server(format!("column {} of type {other} has element cells", col.name))),
    }
    let count = if matches!(col.ty, CqlType::Map { .. }) { elements.len() / 2 } else { elements.len() };
    let mut out = Vec::with_capacity(4 + elements.iter().map(|e| e.len() + 4).sum::<usize>());
    out.extend_from_slice(&i32::try_from(count).unwrap_or(i32::MAX).to_be_bytes());
    for e in &elements {
        out.extend_from_slice(&i32::try_from(e.len()).unwrap_or(i32::MAX).to_be_bytes());
        out.extend_from_slice(e);
    }
    let newest = live.iter().max_by_key(|c| c.timestamp).map_or(i64::MIN, |c| c.timestamp);
    let ttl = live.iter().find_map(|c| remaining_ttl(c, now_seconds));
    Ok(Some(ColumnValue { bytes: Bytes::from(out), timestamp: newest, ttl }))
}
