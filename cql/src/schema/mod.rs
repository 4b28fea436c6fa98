//! The schema catalog: keyspaces, tables and columns as plain values.
//!
//! A [`Schema`] is immutable; a DDL statement builds a new one and the node swaps it in whole,
//! so a request sees one consistent schema from start to end. The schema is persisted as rows of
//! the `system_schema` tables ([`persist`]), which are themselves ordinary engine tables whose
//! definitions are compiled in ([`system`]), exactly as Cassandra does it.

pub mod options;
pub mod persist;
pub mod system;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use md5::{Digest, Md5};
use sibyl_engine::{ColumnId, Order, TableId};
use uuid::Uuid;

pub use options::{KeyspaceParams, TableParams};

use crate::types::CqlType;

/// What part of the primary key, if any, a column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ColumnKind {
    /// Part of the partition key.
    PartitionKey,
    /// A clustering column.
    Clustering,
    /// A static column (one value per partition).
    Static,
    /// A regular column.
    Regular,
}

impl ColumnKind {
    /// The name `system_schema.columns.kind` uses.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnKind::PartitionKey => "partition_key",
            ColumnKind::Clustering => "clustering",
            ColumnKind::Static => "static",
            ColumnKind::Regular => "regular",
        }
    }

    /// Parses [`ColumnKind::as_str`].
    #[must_use]
    pub fn parse(s: &str) -> Option<ColumnKind> {
        Some(match s {
            "partition_key" => ColumnKind::PartitionKey,
            "clustering" => ColumnKind::Clustering,
            "static" => ColumnKind::Static,
            "regular" => ColumnKind::Regular,
            _ => return None,
        })
    }

    /// Whether the column is part of the primary key.
    #[must_use]
    pub fn is_primary_key(self) -> bool {
        matches!(self, ColumnKind::PartitionKey | ColumnKind::Clustering)
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMetadata {
    /// Name (case preserved; unquoted identifiers were folded to lower case by the parser).
    pub name: String,
    /// The engine's id for the column's cells. Never reused within a table, so a column dropped
    /// and added again does not see the old column's data.
    pub id: ColumnId,
    /// Type.
    pub ty: CqlType,
    /// Primary key role.
    pub kind: ColumnKind,
    /// Index within the partition key or clustering columns; -1 for other columns (as in
    /// `system_schema.columns.position`).
    pub position: i32,
    /// Clustering order (ascending for non-clustering columns).
    pub order: Order,
}

impl ColumnMetadata {
    /// `system_schema.columns.clustering_order`: `asc`, `desc`, or `none`.
    #[must_use]
    pub fn clustering_order_str(&self) -> &'static str {
        match (self.kind, self.order) {
            (ColumnKind::Clustering, Order::Ascending) => "asc",
            (ColumnKind::Clustering, Order::Descending) => "desc",
            _ => "none",
        }
    }
}

/// A table's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct TableMetadata {
    /// Keyspace.
    pub keyspace: String,
    /// Table name.
    pub name: String,
    /// Id (also the engine's table id).
    pub id: TableId,
    /// Columns in `SELECT *` order: partition key, clustering, then static and regular columns
    /// each sorted by name (Cassandra's order).
    pub columns: Vec<ColumnMetadata>,
    /// Options.
    pub params: TableParams,
    /// Columns dropped from this table, with the ids they had (never reused) and when.
    pub dropped: Vec<DroppedColumn>,
}

/// A column that was dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedColumn {
    /// Name it had.
    pub name: String,
    /// Id it had.
    pub id: ColumnId,
    /// Type it had.
    pub ty: CqlType,
    /// Kind it had.
    pub kind: ColumnKind,
    /// Drop time, microseconds.
    pub dropped_time_micros: i64,
}

impl TableMetadata {
    /// Builds a table from its columns in any order, sorting them into `SELECT *` order.
    /// Partition key and clustering columns must carry their `position`.
    #[must_use]
    pub fn new(
        keyspace: &str,
        name: &str,
        id: TableId,
        mut columns: Vec<ColumnMetadata>,
        params: TableParams,
    ) -> TableMetadata {
        columns.sort_by(|a, b| {
            let rank = |c: &ColumnMetadata| match c.kind {
                ColumnKind::PartitionKey => 0,
                ColumnKind::Clustering => 1,
                ColumnKind::Static => 2,
                ColumnKind::Regular => 3,
            };
            (rank(a), a.position, &a.name).cmp(&(rank(b), b.position, &b.name))
        });
        TableMetadata {
            keyspace: keyspace.to_string(),
            name: name.to_string(),
            id,
            columns,
            params,
            dropped: Vec::new(),
        }
    }

    /// The partition key columns, in order.
    pub fn partition_key(&self) -> impl Iterator<Item = &ColumnMetadata> {
        self.columns.iter().filter(|c| c.kind == ColumnKind::PartitionKey)
    }

    /// Number of partition key columns.
    #[must_use]
    pub fn partition_key_len(&self) -> usize {
        self.partition_key().count()
    }

    /// The clustering columns, in order.
    pub fn clustering(&self) -> impl Iterator<Item = &ColumnMetadata> {
        self.columns.iter().filter(|c| c.kind == ColumnKind::Clustering)
    }

    /// Number of clustering columns.
    #[must_use]
    pub fn clustering_len(&self) -> usize {
        self.clustering().count()
    }

    /// The clustering orders, in order (for decoding clustering keys).
    #[must_use]
    pub fn clustering_orders(&self) -> Vec<Order> {
        self.clustering().map(|c| c.order).collect()
    }

    /// Whether the table has static columns.
    #[must_use]
    pub fn has_statics(&self) -> bool {
        self.columns.iter().any(|c| c.kind == ColumnKind::Static)
    }

    /// The column called `name`.
    #[must_use]
    pub fn column(&self, name: &str) -> Option<&ColumnMetadata> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Index of the column called `name` in [`TableMetadata::columns`].
    #[must_use]
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Index of the column with engine id `id`.
    #[must_use]
    pub fn column_index_by_id(&self, id: ColumnId) -> Option<usize> {
        self.columns.iter().position(|c| c.id == id)
    }

    /// The next unused column id (dropped ids are never reused).
    #[must_use]
    pub fn next_column_id(&self) -> ColumnId {
        let max = self.columns.iter().map(|c| c.id.0).chain(self.dropped.iter().map(|d| d.id.0)).max();
        ColumnId(max.map_or(0, |m| m + 1))
    }

    /// `flags` as in `system_schema.tables` (always `compound`: Sibyl has no COMPACT STORAGE).
    #[must_use]
    pub fn flags(&self) -> Vec<String> {
        vec!["compound".to_string()]
    }
}

/// A keyspace: its replication and its tables.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyspaceMetadata {
    /// Name.
    pub name: String,
    /// Replication and durable_writes.
    pub params: KeyspaceParams,
    /// Tables by name.
    pub tables: BTreeMap<String, Arc<TableMetadata>>,
}

/// Keyspaces whose tables the node owns and defines itself; users cannot change them.
pub const SYSTEM_KEYSPACES: [&str; 2] = [system::SYSTEM, system::SYSTEM_SCHEMA];

/// Whether `keyspace` is one of the node's own.
#[must_use]
pub fn is_system_keyspace(keyspace: &str) -> bool {
    SYSTEM_KEYSPACES.contains(&keyspace)
}

/// One immutable version of the whole schema.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    keyspaces: BTreeMap<String, Arc<KeyspaceMetadata>>,
    by_id: HashMap<TableId, Arc<TableMetadata>>,
    version: Uuid,
}

impl Schema {
    /// Builds a schema from keyspaces.
    #[must_use]
    pub fn new(keyspaces: Vec<KeyspaceMetadata>) -> Schema {
        let mut s = Schema::default();
        for ks in keyspaces {
            for t in ks.tables.values() {
                s.by_id.insert(t.id, Arc::clone(t));
            }
            s.keyspaces.insert(ks.name.clone(), Arc::new(ks));
        }
        s.version = s.digest();
        s
    }

    /// The schema version: a digest of the whole schema (stable across restarts and equal on
    /// nodes with the same schema, like Cassandra's `schema_version`).
    #[must_use]
    pub fn version(&self) -> Uuid {
        self.version
    }

    /// Keyspaces by name.
    #[must_use]
    pub fn keyspaces(&self) -> &BTreeMap<String, Arc<KeyspaceMetadata>> {
        &self.keyspaces
    }

    /// The keyspace called `name`.
    #[must_use]
    pub fn keyspace(&self, name: &str) -> Option<&Arc<KeyspaceMetadata>> {
        self.keyspaces.get(name)
    }

    /// The table `keyspace.name`.
    #[must_use]
    pub fn table(&self, keyspace: &str, name: &str) -> Option<&Arc<TableMetadata>> {
        self.keyspaces.get(keyspace)?.tables.get(name)
    }

    /// The table with id `id`.
    #[must_use]
    pub fn table_by_id(&self, id: TableId) -> Option<&Arc<TableMetadata>> {
        self.by_id.get(&id)
    }

    /// A copy with `keyspace` added or replaced.
    #[must_use]
    pub fn with_keyspace(&self, keyspace: KeyspaceMetadata) -> Schema {
        let mut all: Vec<KeyspaceMetadata> =
            self.keyspaces.values().filter(|k| k.name != keyspace.name).map(|k| (**k).clone()).collect();
        all.push(keyspace);
        Schema::new(all)
    }

    /// A copy without keyspace `name`.
    #[must_use]
    pub fn without_keyspace(&self, name: &str) -> Schema {
        Schema::new(self.keyspaces.values().filter(|k| k.name != name).map(|k| (**k).clone()).collect())
    }

    /// A copy with `table` added or replaced in its keyspace (which must exist).
    #[must_use]
    pub fn with_table(&self, table: TableMetadata) -> Schema {
        let Some(ks) = self.keyspaces.get(&table.keyspace) else { return self.clone() };
        let mut ks = (**ks).clone();
        ks.tables.insert(table.name.clone(), Arc::new(table));
        self.with_keyspace(ks)
    }

    /// A copy without table `keyspace.name`.
    #[must_use]
    pub fn without_table(&self, keyspace: &str, name: &str) -> Schema {
        let Some(ks) = self.keyspaces.get(keyspace) else { return self.clone() };
        let mut ks = (**ks).clone();
        ks.tables.remove(name);
        self.with_keyspace(ks)
    }

    fn digest(&self) -> Uuid {
        let mut h = Md5::new();
        for ks in self.keyspaces.values() {
            h.update(format!("{:?}", ks.params).as_bytes());
            h.update(ks.name.as_bytes());
            for t in ks.tables.values() {
                h.update(format!("{t:?}").as_bytes());
            }
        }
        let mut bytes: [u8; 16] = h.finalize().into();
        // Mark it a name-based (version 3) UUID, as Cassandra's schema versions are.
        bytes[6] = (bytes[6] & 0x0f) | 0x30;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Uuid::from_bytes(bytes)
    }
}

/// Cassandra's id for a system table: a name-based UUID of keyspace and table name
/// (`TableId.forSystemTable`), so the node's own tables have the same id on every start.
#[must_use]
pub fn system_table_id(keyspace: &str, table: &str) -> TableId {
    let mut name = Vec::with_capacity(keyspace.len() + table.len());
    name.extend_from_slice(keyspace.as_bytes());
    name.extend_from_slice(table.as_bytes());
    TableId(Uuid::new_v3(&Uuid::NAMESPACE_OID, &name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_table_ids_are_stable_and_distinct() {
        let a = system_table_id("system", "local");
        assert_eq!(a, system_table_id("system", "local"));
        assert_ne!(a, system_table_id("system", "peers"));
    }
}
