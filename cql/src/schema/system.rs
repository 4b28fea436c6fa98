//! The node's own tables: `system` (this node and its peers) and `system_schema` (the schema).
//!
//! Their definitions are compiled in, with the column names and types of Cassandra 4.0, because
//! drivers read them on connect (see `../shared/reference/driver-notes.md`). They are ordinary
//! engine tables with fixed ids, so reads of them go through the same path as user tables and
//! support the same WHERE clauses, also through PREPARE.

use sibyl_engine::{ColumnId, Order};

use super::{
    system_table_id, ColumnKind, ColumnMetadata, KeyspaceMetadata, KeyspaceParams, TableMetadata, TableParams,
};
use crate::types::CqlType;

/// The `system` keyspace.
pub const SYSTEM: &str = "system";
/// The `system_schema` keyspace.
pub const SYSTEM_SCHEMA: &str = "system_schema";

/// Column roles in the compact definitions below.
#[derive(Debug, Clone, Copy)]
enum K {
    /// Partition key.
    P,
    /// Clustering.
    C,
    /// Regular.
    R,
}

use K::{C, P, R};

type Def = (&'static str, &'static str, &'static [(&'static str, &'static str, K)]);

const TABLE_OPTIONS: [(&str, &str, K); 20] = [
    ("additional_write_policy", "text", R),
    ("bloom_filter_fp_chance", "double", R),
    ("caching", "frozen<map<text, text>>", R),
    ("cdc", "boolean", R),
    ("comment", "text", R),
    ("compaction", "frozen<map<text, text>>", R),
    ("compression", "frozen<map<text, text>>", R),
    ("crc_check_chance", "double", R),
    ("dclocal_read_repair_chance", "double", R),
    ("default_time_to_live", "int", R),
    ("extensions", "frozen<map<text, blob>>", R),
    ("gc_grace_seconds", "int", R),
    ("id", "uuid", R),
    ("max_index_interval", "int", R),
    ("memtable_flush_period_in_ms", "int", R),
    ("min_index_interval", "int", R),
    ("read_repair", "text", R),
    ("read_repair_chance", "double", R),
    ("speculative_retry", "text", R),
    ("flags", "frozen<set<text>>", R),
];

const TABLES_COLUMNS: [(&str, &str, K); 22] = {
    let mut out = [("keyspace_name", "text", P); 22];
    out[1] = ("table_name", "text", C);
    let mut i = 0;
    while i < TABLE_OPTIONS.len() {
        out[i + 2] = TABLE_OPTIONS[i];
        i += 1;
    }
    out
};

const VIEWS_COLUMNS: [(&str, &str, K); 25] = {
    let mut out = [("keyspace_name", "text", P); 25];
    out[1] = ("view_name", "text", C);
    out[2] = ("base_table_id", "uuid", R);
    out[3] = ("base_table_name", "text", R);
    out[4] = ("where_clause", "text", R);
    out[5] = ("include_all_columns", "boolean", R);
    let mut i = 0;
    // Views carry the table options except `flags`.
    while i < TABLE_OPTIONS.len() - 1 {
        out[i + 6] = TABLE_OPTIONS[i];
        i += 1;
    }
    out
};

const DEFINITIONS: &[Def] = &[
    (
        SYSTEM,
        "local",
        &[
            ("key", "text", P),
            ("bootstrapped", "text", R),
            ("broadcast_address", "inet", R),
            ("broadcast_port", "int", R),
            ("cluster_name", "text", R),
            ("cql_version", "text", R),
            ("data_center", "text", R),
            ("gossip_generation", "int", R),
            ("host_id", "uuid", R),
            ("listen_address", "inet", R),
            ("listen_port", "int", R),
            ("native_protocol_version", "text", R),
            ("partitioner", "text", R),
            ("rack", "text", R),
            ("release_version", "text", R),
            ("rpc_address", "inet", R),
            ("rpc_port", "int", R),
            ("schema_version", "uuid", R),
            ("tokens", "set<text>", R),
            ("truncated_at", "map<uuid, blob>", R),
        ],
    ),
    (
        SYSTEM,
        "peers",
        &[
            ("peer", "inet", P),
            ("data_center", "text", R),
            ("host_id", "uuid", R),
            ("preferred_ip", "inet", R),
            ("rack", "text", R),
            ("release_version", "text", R),
            ("rpc_address", "inet", R),
            ("schema_version", "uuid", R),
            ("tokens", "set<text>", R),
        ],
    ),
    (
        SYSTEM,
        "peers_v2",
        &[
            ("peer", "inet", P),
            ("peer_port", "int", C),
            ("data_center", "text", R),
            ("host_id", "uuid", R),
            ("native_address", "inet", R),
            ("native_port", "int", R),
            ("preferred_ip", "inet", R),
            ("preferred_port", "int", R),
            ("rack", "text", R),
            ("release_version", "text", R),
            ("schema_version", "uuid", R),
            ("tokens", "set<text>", R),
        ],
    ),
    (
        SYSTEM_SCHEMA,
        "keyspaces",
        &[
            ("keyspace_name", "text", P),
            ("durable_writes", "boolean", R),
            ("replication", "frozen<map<text, text>>", R),
        ],
    ),
    (SYSTEM_SCHEMA, "tables", &TABLES_COLUMNS),
    (
        SYSTEM_SCHEMA,
        "columns",
        &[
            ("keyspace_name", "text", P),
            ("table_name", "text", C),
            ("column_name", "text", C),
            ("clustering_order", "text", R),
            ("column_name_bytes", "blob", R),
            ("kind", "text", R),
            ("position", "int", R),
            ("type", "text", R),
            // Sibyl's own: the engine's id for the column's cells (not in Cassandra).
            ("column_id", "int", R),
        ],
    ),
    (
        SYSTEM_SCHEMA,
        "dropped_columns",
        &[
            ("keyspace_name", "text", P),
            ("table_name", "text", C),
            ("column_name", "text", C),
            ("dropped_time", "timestamp", R),
            ("kind", "text", R),
            ("type", "text", R),
            // Sibyl's own: the id the column had, never reused.
            ("column_id", "int", R),
        ],
    ),
    (
        SYSTEM_SCHEMA,
        "triggers",
        &[
            ("keyspace_name", "text", P),
            ("table_name", "text", C),
            ("trigger_name", "text", C),
            ("options", "frozen<map<text, text>>", R),
        ],
    ),
    (SYSTEM_SCHEMA, "views", &VIEWS_COLUMNS),
    (
        SYSTEM_SCHEMA,
        "types",
        &[
            ("keyspace_name", "text", P),
            ("type_name", "text", C),
            ("field_names", "frozen<list<text>>", R),
            ("field_types", "frozen<list<text>>", R),
        ],
    ),
    (
        SYSTEM_SCHEMA,
        "functions",
        &[
            ("keyspace_name", "text", P),
            ("function_name", "text", C),
            ("argument_types", "frozen<list<text>>", C),
            ("argument_names", "frozen<list<text>>", R),
            ("body", "text", R),
            ("called_on_null_input", "boolean", R),
            ("language", "text", R),
            ("return_type", "text", R),
        ],
    ),
    (
        SYSTEM_SCHEMA,
        "aggregates",
        &[
            ("keyspace_name", "text", P),
            ("aggregate_name", "text", C),
            ("argument_types", "frozen<list<text>>", C),
            ("final_func", "text", R),
            ("initcond", "text", R),
            ("return_type", "text", R),
            ("state_func", "text", R),
            ("state_type", "text", R),
        ],
    ),
    (
        SYSTEM_SCHEMA,
        "indexes",
        &[
            ("keyspace_name", "text", P),
            ("table_name", "text", C),
            ("index_name", "text", C),
            ("kind", "text", R),
            ("options", "frozen<map<text, text>>", R),
        ],
    ),
];

fn build(keyspace: &str, name: &str, columns: &[(&str, &str, K)]) -> TableMetadata {
    let mut pk = 0;
    let mut ck = 0;
    let cols = columns
        .iter()
        .enumerate()
        .map(|(i, &(col, ty, k))| {
            let (kind, position) = match k {
                P => {
                    pk += 1;
                    (ColumnKind::PartitionKey, pk - 1)
                }
                C => {
                    ck += 1;
                    (ColumnKind::Clustering, ck - 1)
                }
                R => (ColumnKind::Regular, -1),
            };
            #[allow(clippy::expect_used, reason = "compiled-in definitions, checked by a unit test")]
            let ty = CqlType::parse(ty).expect("system table column types parse");
            ColumnMetadata {
                name: col.to_string(),
                id: ColumnId(u32::try_from(i).unwrap_or(u32::MAX)),
                ty,
                kind,
                position,
                order: Order::Ascending,
            }
        })
        .collect();
    let mut params = TableParams { gc_grace_seconds: 7 * 24 * 3600, ..TableParams::default() };
    params.comment = format!("{keyspace}.{name}");
    TableMetadata::new(keyspace, name, system_table_id(keyspace, name), cols, params)
}

/// The `system` and `system_schema` keyspaces with all their tables.
#[must_use]
pub fn keyspaces() -> Vec<KeyspaceMetadata> {
    let mut system =
        KeyspaceMetadata { name: SYSTEM.into(), params: KeyspaceParams::local(), tables: Default::default() };
    let mut schema = KeyspaceMetadata {
        name: SYSTEM_SCHEMA.into(),
        params: KeyspaceParams::local(),
        tables: Default::default(),
    };
    for (ks, name, cols) in DEFINITIONS {
        let t = std::sync::Arc::new(build(ks, name, cols));
        if *ks == SYSTEM {
            system.tables.insert((*name).to_string(), t);
        } else {
            schema.tables.insert((*name).to_string(), t);
        }
    }
    vec![system, schema]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_table_builds_with_a_partition_key() {
        let ks = keyspaces();
        assert_eq!(ks.len(), 2);
        let tables: usize = ks.iter().map(|k| k.tables.len()).sum();
        assert_eq!(tables, DEFINITIONS.len());
        for k in &ks {
            for t in k.tables.values() {
                assert!(t.partition_key_len() == 1, "{}", t.name);
                let mut names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                assert_eq!(names.len(), t.columns.len(), "duplicate column in {}", t.name);
            }
        }
        let cols = &ks[1].tables["columns"];
        assert_eq!(cols.column("position").unwrap().ty, CqlType::Int);
        assert_eq!(ks[1].tables["tables"].column("flags").unwrap().ty.to_string(), "frozen<set<text>>");
    }
}
