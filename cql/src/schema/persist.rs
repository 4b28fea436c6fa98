//! The schema as rows of the `system_schema` tables, and back.
//!
//! A DDL statement writes rows (with the statement's timestamp) through the engine's commit log,
//! so an acknowledged schema change survives a crash like any write. At start the node reads
//! the rows back ([`load`]). A rewrite of a table's columns first deletes its old column rows
//! with a range tombstone one microsecond older than the new rows, so dropped columns vanish
//! while the new rows win.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use sibyl_engine::{
    ColumnId, DeletionTime, Engine, Mutation, Order, PartitionUpdate, RangeTombstone, Row, ScanCommand,
    ScanStart, Slice, TableId, Token,
};

use super::system::{self, SYSTEM_SCHEMA};
use super::{
    is_system_keyspace, ColumnKind, ColumnMetadata, DroppedColumn, KeyspaceMetadata, KeyspaceParams,
    TableMetadata, TableParams,
};
use crate::error::{Error, Result};
use crate::rows::{self, WriteTime};
use crate::types::{self, CqlType, Value};

/// The system_schema table `name`.
fn schema_table(name: &str) -> Arc<TableMetadata> {
    #[allow(clippy::expect_used, reason = "compiled-in definitions, covered by tests")]
    let ks =
        system::keyspaces().into_iter().find(|k| k.name == SYSTEM_SCHEMA).expect("system_schema is defined");
    #[allow(clippy::expect_used, reason = "compiled-in definitions, covered by tests")]
    Arc::clone(ks.tables.get(name).expect("system_schema table is defined"))
}

fn text(s: &str) -> Option<Value> {
    Some(Value::Text(s.to_string()))
}

fn text_map(m: &BTreeMap<String, String>) -> Option<Value> {
    Some(Value::Map(m.iter().map(|(k, v)| (Value::Text(k.clone()), Value::Text(v.clone()))).collect()))
}

/// Builds the mutation that writes one row of `table` from named values. Every primary key
/// column must be given; other columns not named are left alone.
pub fn insert_row(
    table: &TableMetadata,
    values: &[(&str, Option<Value>)],
    wt: WriteTime,
) -> Result<Mutation> {
    let find = |name: &str| values.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.clone());
    let mut pk = Vec::new();
    for c in table.partition_key() {
        let v = find(&c.name).ok_or_else(|| Error::Server(format!("no value for key column {}", c.name)))?;
        pk.push(Bytes::from(types::encode(&v)));
    }
    let mut ck = Vec::new();
    for c in table.clustering() {
        ck.push(
            find(&c.name)
                .ok_or_else(|| Error::Server(format!("no value for clustering column {}", c.name)))?,
        );
    }
    let key = rows::partition_key(table, &pk)?;
    let clustering = if ck.is_empty() && table.clustering_len() == 0 {
        sibyl_engine::clustering::empty_key()
    } else {
        rows::clustering_prefix(table, &ck)?.key()
    };
    let mut row = Row::new(clustering);
    row.liveness = wt.liveness();
    let mut static_row: Option<Row> = None;
    for (name, value) in values {
        let Some(col) = table.column(name) else {
            return Err(Error::Server(format!("no column {name} in {}.{}", table.keyspace, table.name)));
        };
        if col.kind.is_primary_key() {
            continue;
        }
        let target = if col.kind == ColumnKind::Static {
            static_row.get_or_insert_with(|| Row::new(Bytes::new()))
        } else {
            &mut row
        };
        write_value(target, col, value.as_ref(), wt);
    }
    let mut update = PartitionUpdate::new(key).with_row(row);
    update.header.static_row = static_row;
    Ok(Mutation { table: table.id, update })
}

/// Writes `value` (or null) into `row` as the whole new value of `col`.
pub fn write_value(row: &mut Row, col: &ColumnMetadata, value: Option<&Value>, wt: WriteTime) {
    if col.ty.is_multi_cell() {
        row.add_complex_deletion(col.id, wt.collection_overwrite());
        let Some(v) = value else { return };
        match v {
            Value::Set(items) => {
                for item in items {
                    row.add_cell(
                        wt.cell(col.id, Bytes::new()).with_path(Bytes::from(types::to_comparable(item))),
                    );
                }
            }
            Value::Map(entries) => {
                for (k, item) in entries {
                    row.add_cell(
                        wt.cell(col.id, Bytes::from(types::encode(item)))
                            .with_path(Bytes::from(types::to_comparable(k))),
                    );
                }
            }
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    let mut path = Vec::with_capacity(16);
                    path.extend_from_slice(&((1u64 << 63) + i as u64).to_be_bytes());
                    path.extend_from_slice(&wt.timestamp.to_be_bytes());
                    row.add_cell(
                        wt.cell(col.id, Bytes::from(types::encode(item))).with_path(Bytes::from(path)),
                    );
                }
            }
            _ => {}
        }
    } else {
        match value {
            Some(v) => row.add_cell(wt.cell(col.id, Bytes::from(types::encode(v)))),
            None => row.add_cell(wt.tombstone(col.id)),
        }
    }
}

/// The row of `system_schema.keyspaces` for `ks`.
pub fn keyspace_mutations(ks: &KeyspaceMetadata, timestamp: i64, now_seconds: u32) -> Result<Vec<Mutation>> {
    let wt = WriteTime { timestamp, ttl: 0, now_seconds };
    let t = schema_table("keyspaces");
    Ok(vec![insert_row(
        &t,
        &[
            ("keyspace_name", text(&ks.name)),
            ("durable_writes", Some(Value::Boolean(ks.params.durable_writes))),
            ("replication", text_map(&ks.params.replication)),
        ],
        wt,
    )?])
}

/// Rows of `system_schema.tables`, `columns` and `dropped_columns` for `t`, replacing whatever
/// was stored for it before.
pub fn table_mutations(t: &TableMetadata, timestamp: i64, now_seconds: u32) -> Result<Vec<Mutation>> {
    let wt = WriteTime { timestamp, ttl: 0, now_seconds };
    let p = &t.params;
    let tables = schema_table("tables");
    let mut out = vec![insert_row(
        &tables,
        &[
            ("keyspace_name", text(&t.keyspace)),
            ("table_name", text(&t.name)),
            ("additional_write_policy", text(&p.additional_write_policy)),
            ("bloom_filter_fp_chance", Some(Value::Double(p.bloom_filter_fp_chance))),
            ("caching", text_map(&p.caching)),
            ("cdc", Some(Value::Boolean(p.cdc))),
            ("comment", text(&p.comment)),
            ("compaction", text_map(&p.compaction)),
            ("compression", text_map(&p.compression)),
            ("crc_check_chance", Some(Value::Double(p.crc_check_chance))),
            ("dclocal_read_repair_chance", Some(Value::Double(0.0))),
            ("default_time_to_live", Some(Value::Int(p.default_time_to_live))),
            (
                "extensions",
                Some(Value::Map(
                    p.extensions
                        .iter()
                        .map(|(k, v)| (Value::Text(k.clone()), Value::Blob(Bytes::from(v.clone()))))
                        .collect(),
                )),
            ),
            ("flags", Some(Value::Set(t.flags().into_iter().map(Value::Text).collect()))),
            ("gc_grace_seconds", Some(Value::Int(p.gc_grace_seconds))),
            ("id", Some(Value::Uuid(t.id.0))),
            ("max_index_interval", Some(Value::Int(p.max_index_interval))),
            ("memtable_flush_period_in_ms", Some(Value::Int(p.memtable_flush_period_in_ms))),
            ("min_index_interval", Some(Value::Int(p.min_index_interval))),
            ("read_repair", text(&p.read_repair)),
            ("read_repair_chance", Some(Value::Double(0.0))),
            ("speculative_retry", text(&p.speculative_retry)),
        ],
        wt,
    )?];
    let older = WriteTime { timestamp: timestamp - 1, ..wt };
    for (name, rows) in [("columns", column_rows(t)), ("dropped_columns", dropped_rows(t))] {
        let schema = schema_table(name);
        out.push(delete_table_rows(&schema, t, older)?);
        for values in rows {
            let refs: Vec<(&str, Option<Value>)> = values.iter().map(|(n, v)| (*n, v.clone())).collect();
            out.push(insert_row(&schema, &refs, wt)?);
        }
    }
    Ok(out)
}

type NamedValues = Vec<(&'static str, Option<Value>)>;

fn column_rows(t: &TableMetadata) -> Vec<NamedValues> {
    t.columns
        .iter()
        .map(|c| {
            vec![
                ("keyspace_name", text(&t.keyspace)),
                ("table_name", text(&t.name)),
                ("column_name", text(&c.name)),
                ("clustering_order", text(c.clustering_order_str())),
                ("column_name_bytes", Some(Value::Blob(Bytes::from(c.name.clone().into_bytes())))),
                ("kind", text(c.kind.as_str())),
                ("position", Some(Value::Int(c.position))),
                ("type", text(&c.ty.to_string())),
                ("column_id", Some(Value::Int(i32::try_from(c.id.0).unwrap_or(i32::MAX)))),
            ]
        })
        .collect()
}

fn dropped_rows(t: &TableMetadata) -> Vec<NamedValues> {
    t.dropped
        .iter()
        .map(|d| {
            vec![
                ("keyspace_name", text(&t.keyspace)),
                ("table_name", text(&t.name)),
                ("column_name", text(&d.name)),
                ("dropped_time", Some(Value::Timestamp(d.dropped_time_micros / 1000))),
                ("kind", text(d.kind.as_str())),
                ("type", text(&d.ty.to_string())),
                ("column_id", Some(Value::Int(i32::try_from(d.id.0).unwrap_or(i32::MAX)))),
            ]
        })
        .collect()
}

/// A range tombstone over the rows of `schema` (clustered by table name) that belong to `t`.
fn delete_table_rows(schema: &TableMetadata, t: &TableMetadata, wt: WriteTime) -> Result<Mutation> {
    let key = rows::partition_key(schema, &[Bytes::from(types::encode(&Value::Text(t.keyspace.clone())))])?;
    let prefix = rows::clustering_prefix(schema, &[Value::Text(t.name.clone())])?;
    let mut update = PartitionUpdate::new(key);
    update.header.range_tombstones.push(RangeTombstone {
        slice: Slice::prefix(&prefix),
        deletion: DeletionTime::new(wt.timestamp, wt.now_seconds),
    });
    Ok(Mutation { table: schema.id, update })
}

/// Deletes the schema rows of table `t`.
pub fn drop_table_mutations(t: &TableMetadata, timestamp: i64, now_seconds: u32) -> Result<Vec<Mutation>> {
    let wt = WriteTime { timestamp, ttl: 0, now_seconds };
    ["tables", "columns", "dropped_columns"]
        .into_iter()
        .map(|name| delete_table_rows(&schema_table(name), t, wt))
        .collect()
}

/// Deletes every schema row of keyspace `name` (its partition in each system_schema table).
pub fn drop_keyspace_mutations(name: &str, timestamp: i64, now_seconds: u32) -> Result<Vec<Mutation>> {
    let ks = system::keyspaces().into_iter().find(|k| k.name == SYSTEM_SCHEMA);
    let mut out = Vec::new();
    for t in ks.iter().flat_map(|k| k.tables.values()) {
        let key = rows::partition_key(t, &[Bytes::from(types::encode(&Value::Text(name.to_string())))])?;
        let mut update = PartitionUpdate::new(key);
        update.header.deletion = DeletionTime::new(timestamp, now_seconds);
        out.push(Mutation { table: t.id, update });
    }
    Ok(out)
}

/// Every live row of `table`, as column name → value.
pub fn read_all(
    engine: &Engine,
    table: &TableMetadata,
    now_seconds: u32,
) -> Result<Vec<HashMap<String, Value>>> {
    read_all_with_timestamp(engine, table, now_seconds).map(|(rows, _)| rows)
}

/// The newest write timestamp in the schema tables: schema changes after a restart must be
/// newer than it even if the clock went back, or a DROP would be shadowed by the CREATE.
pub fn newest_timestamp(engine: &Engine, now_seconds: u32) -> Result<i64> {
    let mut newest = i64::MIN;
    for name in ["keyspaces", "tables", "columns", "dropped_columns"] {
        newest = newest.max(read_all_with_timestamp(engine, &schema_table(name), now_seconds)?.1);
    }
    Ok(newest)
}

fn read_all_with_timestamp(
    engine: &Engine,
    table: &TableMetadata,
    now_seconds: u32,
) -> Result<(Vec<HashMap<String, Value>>, i64)> {
    let mut newest = i64::MIN;
    let mut out = Vec::new();
    let mut start = ScanStart::TokenInclusive(Token(i64::MIN));
    loop {
        let cmd = ScanCommand {
            table: table.id,
            start: start.clone(),
            end: Token(i64::MAX),
            slices: vec![Slice::all()],
            partition_limit: 256,
            row_limit: usize::MAX,
            now_seconds,
        };
        let page = engine.scan(&cmd)?;
        let Some(last) = page.last() else { break };
        start = ScanStart::AfterKey(last.key.clone());
        for p in &page {
            // Deletions count too: a CREATE after a restart must beat an earlier DROP.
            if !p.header.deletion.is_live() {
                newest = newest.max(p.header.deletion.marked_for_delete_at);
            }
            for rt in &p.header.range_tombstones {
                newest = newest.max(rt.deletion.marked_for_delete_at);
            }
            let decoded = rows::decode_partition(table, p, now_seconds)?;
            for r in decoded.result_rows() {
                let mut m = HashMap::new();
                for (c, v) in table.columns.iter().zip(r.columns) {
                    if let Some(v) = v {
                        newest = newest.max(v.timestamp);
                        let value = types::decode(&c.ty, &v.bytes).map_err(|e| {
                            Error::Server(format!(
                                "stored value of {}.{}.{}: {e}",
                                table.keyspace, table.name, c.name
                            ))
                        })?;
                        m.insert(c.name.clone(), value);
                    }
                }
                out.push(m);
            }
        }
        if page.len() < 256 {
            break;
        }
    }
    Ok((out, newest))
}

fn get_text(row: &HashMap<String, Value>, name: &str) -> Option<String> {
    match row.get(name) {
        Some(Value::Text(s) | Value::Ascii(s)) => Some(s.clone()),
        _ => None,
    }
}

fn get_int(row: &HashMap<String, Value>, name: &str) -> Option<i32> {
    match row.get(name) {
        Some(Value::Int(v)) => Some(*v),
        _ => None,
    }
}

fn get_double(row: &HashMap<String, Value>, name: &str) -> Option<f64> {
    match row.get(name) {
        Some(Value::Double(v)) => Some(*v),
        _ => None,
    }
}

fn get_text_map(row: &HashMap<String, Value>, name: &str) -> BTreeMap<String, String> {
    match row.get(name) {
        Some(Value::Map(entries)) => entries
            .iter()
            .filter_map(|(k, v)| match (k, v) {
                (Value::Text(k), Value::Text(v)) => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Reads the user schema (every keyspace but the node's own) from the system_schema tables.
/// A table whose rows are incomplete (a crash between the statements' mutations) is skipped
/// with a warning rather than failing the start.
pub fn load(engine: &Engine, now_seconds: u32) -> Result<Vec<KeyspaceMetadata>> {
    let mut keyspaces: BTreeMap<String, KeyspaceMetadata> = BTreeMap::new();
    for row in read_all(engine, &schema_table("keyspaces"), now_seconds)? {
        let Some(name) = get_text(&row, "keyspace_name") else { continue };
        if is_system_keyspace(&name) {
            continue;
        }
        let durable_writes = !matches!(row.get("durable_writes"), Some(Value::Boolean(false)));
        let params = KeyspaceParams { replication: get_text_map(&row, "replication"), durable_writes };
        keyspaces.insert(name.clone(), KeyspaceMetadata { name, params, tables: BTreeMap::new() });
    }
    let mut columns: HashMap<(String, String), Vec<ColumnMetadata>> = HashMap::new();
    for row in read_all(engine, &schema_table("columns"), now_seconds)? {
        let (Some(ks), Some(table), Some(name), Some(kind), Some(ty)) = (
            get_text(&row, "keyspace_name"),
            get_text(&row, "table_name"),
            get_text(&row, "column_name"),
            get_text(&row, "kind").and_then(|k| ColumnKind::parse(&k)),
            get_text(&row, "type"),
        ) else {
            continue;
        };
        let ty = CqlType::parse(&ty)
            .map_err(|e| Error::Server(format!("stored type of {ks}.{table}.{name}: {e}")))?;
        let order = if get_text(&row, "clustering_order").as_deref() == Some("desc") {
            Order::Descending
        } else {
            Order::Ascending
        };
        let id = ColumnId(get_int(&row, "column_id").and_then(|v| u32::try_from(v).ok()).unwrap_or(0));
        let position = get_int(&row, "position").unwrap_or(-1);
        columns.entry((ks, table)).or_default().push(ColumnMetadata { name, id, ty, kind, position, order });
    }
    let mut dropped: HashMap<(String, String), Vec<DroppedColumn>> = HashMap::new();
    for row in read_all(engine, &schema_table("dropped_columns"), now_seconds)? {
        let (Some(ks), Some(table), Some(name), Some(ty)) = (
            get_text(&row, "keyspace_name"),
            get_text(&row, "table_name"),
            get_text(&row, "column_name"),
            get_text(&row, "type").and_then(|t| CqlType::parse(&t).ok()),
        ) else {
            continue;
        };
        let kind = get_text(&row, "kind").and_then(|k| ColumnKind::parse(&k)).unwrap_or(ColumnKind::Regular);
        let id = ColumnId(get_int(&row, "column_id").and_then(|v| u32::try_from(v).ok()).unwrap_or(0));
        let dropped_time_micros = match row.get("dropped_time") {
            Some(Value::Timestamp(ms)) => ms.saturating_mul(1000),
            _ => 0,
        };
        dropped.entry((ks, table)).or_default().push(DroppedColumn {
            name,
            id,
            ty,
            kind,
            dropped_time_micros,
        });
    }
    for row in read_all(engine, &schema_table("tables"), now_seconds)? {
        let (Some(ks), Some(name), Some(Value::Uuid(id))) =
            (get_text(&row, "keyspace_name"), get_text(&row, "table_name"), row.get("id").cloned())
        else {
            continue;
        };
        if is_system_keyspace(&ks) {
            // The node's own tables are listed for drivers, and defined by the code.
            continue;
        }
        let Some(keyspace) = keyspaces.get_mut(&ks) else {
            tracing::warn!(keyspace = %ks, table = %name, "schema has a table of an unknown keyspace; ignoring it");
            continue;
        };
        let cols = columns.remove(&(ks.clone(), name.clone())).unwrap_or_default();
        if !cols.iter().any(|c| c.kind == ColumnKind::PartitionKey) {
            tracing::warn!(keyspace = %ks, table = %name, "schema rows of this table are incomplete (no partition key columns): a schema change was interrupted; ignoring the table");
            continue;
        }
        let d = TableParams::default();
        let params = TableParams {
            bloom_filter_fp_chance: get_double(&row, "bloom_filter_fp_chance")
                .unwrap_or(d.bloom_filter_fp_chance),
            caching: get_text_map(&row, "caching"),
            comment: get_text(&row, "comment").unwrap_or_default(),
            compaction: get_text_map(&row, "compaction"),
            compression: get_text_map(&row, "compression"),
            crc_check_chance: get_double(&row, "crc_check_chance").unwrap_or(d.crc_check_chance),
            default_time_to_live: get_int(&row, "default_time_to_live").unwrap_or(0),
            gc_grace_seconds: get_int(&row, "gc_grace_seconds").unwrap_or(d.gc_grace_seconds),
            max_index_interval: get_int(&row, "max_index_interval").unwrap_or(d.max_index_interval),
            memtable_flush_period_in_ms: get_int(&row, "memtable_flush_period_in_ms").unwrap_or(0),
            min_index_interval: get_int(&row, "min_index_interval").unwrap_or(d.min_index_interval),
            speculative_retry: get_text(&row, "speculative_retry").unwrap_or(d.speculative_retry),
            additional_write_policy: get_text(&row, "additional_write_policy")
                .unwrap_or(d.additional_write_policy),
            read_repair: get_text(&row, "read_repair").unwrap_or(d.read_repair),
            cdc: matches!(row.get("cdc"), Some(Value::Boolean(true))),
            extensions: match row.get("extensions") {
                Some(Value::Map(entries)) => entries
                    .iter()
                    .filter_map(|(k, v)| match (k, v) {
                        (Value::Text(k), Value::Blob(b)) => Some((k.clone(), b.to_vec())),
                        _ => None,
                    })
                    .collect(),
                _ => BTreeMap::new(),
            },
        };
        let mut table = TableMetadata::new(&ks, &name, TableId(id), cols, params);
        table.dropped = dropped.remove(&(ks.clone(), name.clone())).unwrap_or_default();
        keyspace.tables.insert(name, Arc::new(table));
    }
    Ok(keyspaces.into_values().collect())
}
