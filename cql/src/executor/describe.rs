//! Server-side DESCRIBE, as Cassandra 4 answers it (cqlsh sends DESCRIBE to the server).
//!
//! Listings (`DESCRIBE KEYSPACES`, `TABLES`) return `keyspace_name, type, name`; elements
//! (`DESCRIBE KEYSPACE ks`, `TABLE t`, `SCHEMA`) add `create_statement`; `DESCRIBE CLUSTER`
//! returns `cluster, partitioner, snitch`.

use std::fmt::Write as _;

use bytes::Bytes;

use super::{ColumnSpec, Executor, ResultSet};
use crate::ast::{DescribeStatement, DescribeTarget};
use crate::error::{Error, Result};
use crate::parser::quote_identifier;
use crate::schema::{is_system_keyspace, ColumnKind, KeyspaceMetadata, Schema, TableMetadata};
use crate::types::CqlType;

/// Columns of element results.
pub const COLUMNS: [&str; 4] = ["keyspace_name", "type", "name", "create_statement"];

/// A text column of the `system.describe` pseudo-table.
#[must_use]
pub fn spec(name: &str) -> ColumnSpec {
    ColumnSpec { keyspace: "system".into(), table: "describe".into(), name: name.into(), ty: CqlType::Text }
}

fn text(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

/// Runs a DESCRIBE.
pub fn execute(
    exec: &Executor,
    schema: &Schema,
    keyspace: Option<&str>,
    d: &DescribeStatement,
) -> Result<ResultSet> {
    let listing = |rows: Vec<(String, &str, String)>| ResultSet {
        columns: COLUMNS[..3].iter().map(|c| spec(c)).collect(),
        rows: rows.into_iter().map(|(k, t, n)| vec![text(&k), text(t), text(&n)]).collect(),
        paging_state: None,
    };
    let elements = |rows: Vec<(String, &str, String, String)>| ResultSet {
        columns: COLUMNS.iter().map(|c| spec(c)).collect(),
        rows: rows.into_iter().map(|(k, t, n, s)| vec![text(&k), text(t), text(&n), text(&s)]).collect(),
        paging_state: None,
    };
    let find_ks = |name: Option<&str>| -> Result<&KeyspaceMetadata> {
        let name = name
            .or(keyspace)
            .ok_or_else(|| Error::invalid("No keyspace specified and no current keyspace"))?;
        schema
            .keyspace(name)
            .map(|k| &**k)
            .ok_or_else(|| Error::invalid(format!("'{name}' not found in keyspaces")))
    };
    let with_internals = d.with_internals;
    Ok(match &d.target {
        DescribeTarget::Cluster => ResultSet {
            columns: ["cluster", "partitioner", "snitch"].iter().map(|c| spec(c)).collect(),
            rows: vec![vec![
                text(&exec.local().cluster_name),
                text("org.apache.cassandra.dht.Murmur3Partitioner"),
                text("org.apache.cassandra.locator.SimpleSnitch"),
            ]],
            paging_state: None,
        },
        DescribeTarget::Keyspaces => {
            listing(schema.keyspaces().values().map(|k| (q(&k.name), "keyspace", q(&k.name))).collect())
        }
        DescribeTarget::Tables => {
            let kss: Vec<&KeyspaceMetadata> = match keyspace {
                Some(k) => vec![find_ks(Some(k))?],
                None => schema.keyspaces().values().map(|k| &**k).collect(),
            };
            listing(
                kss.iter()
                    .flat_map(|k| k.tables.values().map(|t| (q(&k.name), "table", q(&t.name))))
                    .collect(),
            )
        }
        DescribeTarget::Types | DescribeTarget::Functions | DescribeTarget::Aggregates => listing(Vec::new()),
        DescribeTarget::Keyspace { only, name } => {
            let ks = find_ks(name.as_deref())?;
            elements(keyspace_elements(ks, *only, with_internals))
        }
        DescribeTarget::Schema { full } => {
            let mut rows = Vec::new();
            for ks in schema.keyspaces().values() {
                if !full && is_system_keyspace(&ks.name) {
                    continue;
                }
                rows.extend(keyspace_elements(ks, false, with_internals));
            }
            elements(rows)
        }
        DescribeTarget::Table(name) => {
            let ks = find_ks(name.keyspace.as_deref())?;
            let t = ks.tables.get(&name.name).ok_or_else(|| {
                Error::invalid(format!("Table '{}' not found in keyspace '{}'", name.name, ks.name))
            })?;
            elements(vec![(q(&ks.name), "table", q(&t.name), create_table(t, with_internals))])
        }
        DescribeTarget::Generic(name) => {
            // A keyspace, or a table of the named or current keyspace.
            if name.keyspace.is_none() {
                if let Some(ks) = schema.keyspace(&name.name) {
                    return Ok(elements(keyspace_elements(ks, false, with_internals)));
                }
            }
            let ks = find_ks(name.keyspace.as_deref())?;
            match ks.tables.get(&name.name) {
                Some(t) => {
                    elements(vec![(q(&ks.name), "table", q(&t.name), create_table(t, with_internals))])
                }
                None => {
                    return Err(Error::invalid(format!(
                        "'{}' not found in keyspace '{}'",
                        name.name, ks.name
                    )))
                }
            }
        }
        DescribeTarget::Type(n) | DescribeTarget::Function(n) | DescribeTarget::Aggregate(n) => {
            return Err(Error::invalid(format!(
                "'{}' not found: user-defined types, functions and aggregates are not supported",
                n.name
            )))
        }
        DescribeTarget::Index(n) | DescribeTarget::MaterializedView(n) => {
            return Err(Error::invalid(format!(
                "'{}' not found: secondary indexes and materialized views are not supported",
                n.name
            )))
        }
    })
}

fn q(name: &str) -> String {
    quote_identifier(name).into_owned()
}

fn keyspace_elements(
    ks: &KeyspaceMetadata,
    only: bool,
    with_internals: bool,
) -> Vec<(String, &'static str, String, String)> {
    let mut rows = vec![(q(&ks.name), "keyspace", q(&ks.name), create_keyspace(ks))];
    if !only {
        for t in ks.tables.values() {
            rows.push((q(&ks.name), "table", q(&t.name), create_table(t, with_internals)));
        }
    }
    rows
}

fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn map_literal<'a>(entries: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    let parts: Vec<String> =
        entries.map(|(k, v)| format!("{}: {}", string_literal(k), string_literal(v))).collect();
    format!("{{{}}}", parts.join(", "))
}

/// `CREATE KEYSPACE ...;` for `ks`.
#[must_use]
pub fn create_keyspace(ks: &KeyspaceMetadata) -> String {
    let mut s = format!(
        "CREATE KEYSPACE {} WITH replication = {}  AND durable_writes = {};",
        q(&ks.name),
        map_literal(ks.params.replication.iter()),
        ks.params.durable_writes
    );
    if is_system_keyspace(&ks.name) {
        s = format!("/*\nWarning: Keyspace {} is a system keyspace and cannot be recreated with CQL.\nStructure, for reference:\n{s}\n*/", q(&ks.name));
    }
    s
}

/// `CREATE TABLE ...;` for `t`, formatted like Cassandra 4's DESCRIBE.
#[must_use]
pub fn create_table(t: &TableMetadata, with_internals: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "CREATE TABLE {}.{} (", q(&t.keyspace), q(&t.name));
    let pk: Vec<_> = t.partition_key().collect();
    let ck: Vec<_> = t.clustering().collect();
    let inline_pk = pk.len() == 1 && ck.is_empty();
    for c in &t.columns {
        let _ = write!(s, "    {} {}", q(&c.name), c.ty);
        if c.kind == ColumnKind::Static {
            s.push_str(" static");
        }
        if inline_pk && c.kind == ColumnKind::PartitionKey {
            s.push_str(" PRIMARY KEY");
        }
        s.push_str(",\n");
    }
    if !inline_pk {
        let pk_text = if pk.len() == 1 {
            q(&pk[0].name)
        } else {
            format!("({})", pk.iter().map(|c| q(&c.name)).collect::<Vec<_>>().join(", "))
        };
        let mut parts = vec![pk_text];
        parts.extend(ck.iter().map(|c| q(&c.name)));
        let _ = writeln!(s, "    PRIMARY KEY ({})", parts.join(", "));
    } else {
        // Drop the trailing ",\n" of the last column.
        s.truncate(s.len() - 2);
        s.push('\n');
    }
    s.push_str(") WITH ");
    let mut opts: Vec<String> = Vec::new();
    if with_internals {
        opts.push(format!("ID = {}", t.id.0));
    }
    if !ck.is_empty() {
        let order: Vec<String> = ck
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    q(&c.name),
                    if c.order == sibyl_engine::Order::Descending { "DESC" } else { "ASC" }
                )
            })
            .collect();
        opts.push(format!("CLUSTERING ORDER BY ({})", order.join(", ")));
    }
    let p = &t.params;
    opts.push(format!("additional_write_policy = {}", string_literal(&p.additional_write_policy)));
    opts.push(format!("bloom_filter_fp_chance = {}", p.bloom_filter_fp_chance));
    opts.push(format!("caching = {}", map_literal(p.caching.iter())));
    opts.push(format!("cdc = {}", p.cdc));
    opts.push(format!("comment = {}", string_literal(&p.comment)));
    opts.push(format!("compaction = {}", map_literal(p.compaction.iter())));
    opts.push(format!("compression = {}", map_literal(p.compression.iter())));
    opts.push(format!("crc_check_chance = {:?}", p.crc_check_chance));
    opts.push(format!("default_time_to_live = {}", p.default_time_to_live));
    opts.push("extensions = {}".to_string());
    opts.push(format!("gc_grace_seconds = {}", p.gc_grace_seconds));
    opts.push(format!("max_index_interval = {}", p.max_index_interval));
    opts.push(format!("memtable_flush_period_in_ms = {}", p.memtable_flush_period_in_ms));
    opts.push(format!("min_index_interval = {}", p.min_index_interval));
    opts.push(format!("read_repair = {}", string_literal(&p.read_repair)));
    opts.push(format!("speculative_retry = {}", string_literal(&p.speculative_retry)));
    s.push_str(&opts.join("\n    AND "));
    s.push(';');
    s
}
