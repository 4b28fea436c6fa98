//! Schema changes (CREATE/ALTER/DROP KEYSPACE and TABLE) and the node's start-up schema work.
//!
//! Order of operations keeps a crash harmless: a new table's engine files are created before
//! the schema rows that name it, and a dropped table's schema rows are deleted before its files.
//! Engine tables no schema row names (left by such a crash) are dropped at start.

use std::collections::{BTreeMap, HashSet};

use sibyl_engine::{ColumnId, Order, TableId, TableOptions};
use uuid::Uuid;

use super::{Executor, SchemaChange, SchemaChangeKind, CQL_VERSION, RELEASE_VERSION};
use crate::ast::{self, AlterTableAction, Statement};
use crate::error::{Error, Result};
use crate::schema::options::OptionValue;
use crate::schema::{
    is_system_keyspace, persist, system, ColumnKind, ColumnMetadata, DroppedColumn, KeyspaceMetadata,
    KeyspaceParams, Schema, TableMetadata, TableParams,
};
use crate::types::{CqlType, Value};

/// Longest keyspace or table name (Cassandra's limit, and the engine's).
pub const MAX_NAME_LENGTH: usize = 48;

fn check_name(kind: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > MAX_NAME_LENGTH
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::invalid(format!(
            "{kind} name must not be empty, more than {MAX_NAME_LENGTH} characters long, or contain non-alphanumeric-underscore characters (got \"{name}\")"
        )));
    }
    Ok(())
}

/// Refuses changes to the node's own keyspaces, with Cassandra's message.
pub(crate) fn check_user_keyspace(keyspace: &str) -> Result<()> {
    if is_system_keyspace(keyspace) {
        return Err(Error::Unauthorized(format!("{keyspace} keyspace is not user-modifiable.")));
    }
    Ok(())
}

pub(crate) fn engine_options(t: &TableMetadata) -> TableOptions {
    let mut o = TableOptions::new(t.id, &t.keyspace, &t.name);
    o.bloom_fp_chance = t.params.bloom_filter_fp_chance;
    o.chunk_size = t.params.chunk_size_bytes();
    o.gc_grace_seconds = u32::try_from(t.params.gc_grace_seconds).unwrap_or(0);
    // The schema layer validated the map with the engine's own rules; a map it somehow could not
    // parse keeps the engine's default (size-tiered).
    if sibyl_engine::compaction::CompactionParams::from_options(&t.params.compaction).is_ok() {
        o.compaction = t.params.compaction.clone();
    }
    o
}

/// Start-up: the node's own tables, the stored schema, and `system.local`.
pub fn bootstrap(exec: &Executor) -> Result<()> {
    let engine = exec.engine();
    let existing: HashSet<TableId> = engine.tables().iter().map(|t| t.id).collect();
    let system_keyspaces = system::keyspaces();
    for ks in &system_keyspaces {
        for t in ks.tables.values() {
            if !existing.contains(&t.id) {
                engine.create_table(engine_options(t))?;
            }
        }
    }
    let now = exec.clock().now_seconds();
    exec.observe_timestamp(persist::newest_timestamp(engine, now)?);
    let user = persist::load(engine, now)?;
    let mut all = system_keyspaces;
    all.extend(user);
    let schema = Schema::new(all);
    // Engine tables without schema rows: a CREATE or DROP interrupted by a crash.
    for t in engine.tables() {
        if schema.table_by_id(t.id).is_none() {
            tracing::warn!(keyspace = %t.keyspace, table = %t.name, "dropping table files no schema row names (a CREATE or DROP TABLE was interrupted)");
            engine.drop_table(t.id)?;
        }
    }
    // User tables whose engine files are missing (the data directory was damaged by hand).
    for ks in schema.keyspaces().values() {
        for t in ks.tables.values() {
            if !engine.tables().iter().any(|e| e.id == t.id) {
                tracing::error!(keyspace = %t.keyspace, table = %t.name, "table has no data files; recreating it empty");
                engine.create_table(engine_options(t))?;
            }
        }
    }
    // The system keyspaces' own schema rows, rewritten at every start like Cassandra does.
    let ts = exec.next_timestamp();
    let mut mutations = Vec::new();
    for ks in schema.keyspaces().values().filter(|k| is_system_keyspace(&k.name)) {
        mutations.extend(persist::drop_keyspace_mutations(&ks.name, ts, now)?);
        mutations.extend(persist::keyspace_mutations(ks, ts + 2, now)?);
        for t in ks.tables.values() {
            mutations.extend(persist::table_mutations(t, ts + 2, now)?);
        }
    }
    exec.next_timestamp();
    exec.next_timestamp();
    exec.apply_internal(mutations)?;
    exec.set_schema(schema);
    match stored_identity(exec)? {
        Some((host_id, tokens, bootstrapped)) => exec.restore_identity(host_id, tokens, bootstrapped),
        None => exec.first_boot.store(true, std::sync::atomic::Ordering::Relaxed),
    }
    write_local(exec)?;
    Ok(())
}

/// Reads this node's stored host id, tokens and bootstrap state, if it has run before.
pub fn stored_identity(exec: &Executor) -> Result<Option<(Uuid, Vec<i64>, String)>> {
    let schema = exec.schema();
    let Some(local) = schema.table(system::SYSTEM, "local") else { return Ok(None) };
    let rows = persist::read_all(exec.engine(), local, exec.clock().now_seconds())?;
    let Some(row) = rows.into_iter().next() else { return Ok(None) };
    let Some(Value::Uuid(host_id)) = row.get("host_id") else { return Ok(None) };
    let tokens = match row.get("tokens") {
        Some(Value::Set(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::Text(s) => s.parse::<i64>().ok(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let bootstrapped = match row.get("bootstrapped") {
        Some(Value::Text(s)) => s.clone(),
        _ => "COMPLETED".to_string(),
    };
    Ok(Some((*host_id, tokens, bootstrapped)))
}

/// Writes `system.local` (at start and after every schema change, for `schema_version`).
pub fn write_local(exec: &Executor) -> Result<()> {
    let schema = exec.schema();
    let Some(table) = schema.table(system::SYSTEM, "local") else { return Ok(()) };
    let l = exec.local();
    let now = exec.clock().now_seconds();
    let wt = crate::rows::WriteTime { timestamp: exec.next_timestamp(), ttl: 0, now_seconds: now };
    let text = |s: &str| Some(Value::Text(s.to_string()));
    let m = persist::insert_row(
        table,
        &[
            ("key", text("local")),
            ("bootstrapped", text(&exec.bootstrap_state())),
            ("broadcast_address", Some(Value::Inet(l.listen_address))),
            ("broadcast_port", Some(Value::Int(i32::from(l.storage_port)))),
            ("cluster_name", text(&l.cluster_name)),
            ("cql_version", text(CQL_VERSION)),
            ("data_center", text(&l.data_center)),
            ("gossip_generation", Some(Value::Int(i32::try_from(now).unwrap_or(i32::MAX)))),
            ("host_id", Some(Value::Uuid(l.host_id))),
            ("listen_address", Some(Value::Inet(l.listen_address))),
            ("listen_port", Some(Value::Int(i32::from(l.storage_port)))),
            ("native_protocol_version", text("4")),
            ("partitioner", text("org.apache.cassandra.dht.Murmur3Partitioner")),
            ("rack", text(&l.rack)),
            ("release_version", text(RELEASE_VERSION)),
            ("rpc_address", Some(Value::Inet(l.rpc_address))),
            ("rpc_port", Some(Value::Int(i32::from(l.native_port)))),
            ("schema_version", Some(Value::Uuid(schema.version()))),
            ("tokens", Some(Value::Set(sorted_tokens(&l.tokens)))),
        ],
        wt,
    )?;
    exec.apply_internal(vec![m])
}

fn sorted_tokens(tokens: &[i64]) -> Vec<Value> {
    // Set elements sort by their text (the column is set<text>).
    let mut t: Vec<String> = tokens.iter().map(i64::to_string).collect();
    t.sort();
    t.dedup();
    t.into_iter().map(Value::Text).collect()
}

fn properties(props: &[ast::Property]) -> Result<Vec<(String, OptionValue)>> {
    let lit = |l: &ast::Literal| -> String {
        match l {
            ast::Literal::String(s)
            | ast::Literal::Integer(s)
            | ast::Literal::Float(s)
            | ast::Literal::Duration(s)
            | ast::Literal::Uuid(s)
            | ast::Literal::Hex(s) => s.clone(),
            ast::Literal::Boolean(b) => b.to_string(),
            ast::Literal::Null => "null".into(),
        }
    };
    Ok(props
        .iter()
        .map(|p| {
            let v = match &p.value {
                ast::OptionValue::Constant(l) => OptionValue::Constant(lit(l)),
                ast::OptionValue::Identifier(s) => OptionValue::Constant(s.clone()),
                ast::OptionValue::Map(entries) => OptionValue::Map(
                    entries.iter().map(|(k, v)| (lit(k), lit(v))).collect::<BTreeMap<_, _>>(),
                ),
            };
            (p.name.clone(), v)
        })
        .collect())
}

/// Executes a DDL statement. `None` when nothing changed (IF [NOT] EXISTS).
pub fn execute(
    exec: &Executor,
    keyspace: Option<&str>,
    statement: &Statement,
) -> Result<Option<SchemaChange>> {
    let _guard = exec.ddl_lock();
    let schema = exec.schema();
    let now = exec.clock().now_seconds();
    // Each DDL uses two timestamps: older for clearing rows, newer for writing them.
    let ts = exec.next_timestamp();
    let ts = ts.max(exec.next_timestamp() - 1);
    let change = |change, ks: &str, table: Option<&str>| SchemaChange {
        change,
        keyspace: ks.to_string(),
        table: table.map(str::to_string),
    };
    let ks_name = |name: &ast::QualifiedName| -> Result<String> {
        name.keyspace.clone().or_else(|| keyspace.map(str::to_string)).ok_or_else(|| {
            Error::invalid(
                "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename",
            )
        })
    };
    let result = match statement {
        Statement::CreateKeyspace(s) => {
            check_name("Keyspace", &s.name)?;
            if schema.keyspace(&s.name).is_some() {
                if s.if_not_exists {
                    return Ok(None);
                }
                return Err(Error::AlreadyExists { keyspace: s.name.clone(), table: String::new() });
            }
            if is_system_keyspace(&s.name) || s.name.starts_with("system") {
                return Err(Error::invalid(format!("Keyspace name {} is reserved", s.name)));
            }
            let params = KeyspaceParams::parse(&properties(&s.properties)?, None)?;
            let ks = KeyspaceMetadata { name: s.name.clone(), params, tables: BTreeMap::new() };
            exec.apply_internal(persist::keyspace_mutations(&ks, ts, now)?)?;
            exec.set_schema(schema.with_keyspace(ks));
            change(SchemaChangeKind::Created, &s.name, None)
        }
        Statement::AlterKeyspace(s) => {
            let Some(old) = schema.keyspace(&s.name) else {
                if s.if_exists {
                    return Ok(None);
                }
                return Err(Error::invalid(format!("Keyspace '{}' doesn't exist", s.name)));
            };
            check_user_keyspace(&s.name)?;
            let params = KeyspaceParams::parse(&properties(&s.properties)?, Some(&old.params))?;
            let ks = KeyspaceMetadata { params, ..(**old).clone() };
            exec.apply_internal(persist::keyspace_mutations(&ks, ts, now)?)?;
            exec.set_schema(schema.with_keyspace(ks));
            change(SchemaChangeKind::Updated, &s.name, None)
        }
        Statement::DropKeyspace(s) => {
            let Some(old) = schema.keyspace(&s.name) else {
                if s.if_exists {
                    return Ok(None);
                }
                return Err(Error::invalid(format!("Keyspace '{}' doesn't exist", s.name)));
            };
            check_user_keyspace(&s.name)?;
            exec.apply_internal(persist::drop_keyspace_mutations(&s.name, ts, now)?)?;
            exec.set_schema(schema.without_keyspace(&s.name));
            for t in old.tables.values() {
                exec.engine().drop_table(t.id)?;
            }
            change(SchemaChangeKind::Dropped, &s.name, None)
        }
        Statement::CreateTable(s) => {
            let ks = ks_name(&s.name)?;
            let Some(keyspace_meta) = schema.keyspace(&ks) else {
                return Err(Error::invalid(format!("Keyspace '{ks}' does not exist")));
            };
            check_user_keyspace(&ks)?;
            check_name("Table", &s.name.name)?;
            if keyspace_meta.tables.contains_key(&s.name.name) {
                if s.if_not_exists {
                    return Ok(None);
                }
                return Err(Error::AlreadyExists { keyspace: ks, table: s.name.name.clone() });
            }
            let table = build_table(&ks, s, TableId(Uuid::new_v4()))?;
            exec.engine().create_table(engine_options(&table))?;
            exec.apply_internal(persist::table_mutations(&table, ts, now)?)?;
            let name = table.name.clone();
            exec.set_schema(schema.with_table(table));
            change(SchemaChangeKind::Created, &ks, Some(&name))
        }
        Statement::DropTable(s) => {
            let ks = ks_name(&s.name)?;
            let Some(table) = schema.table(&ks, &s.name.name) else {
                if s.if_exists {
                    return Ok(None);
                }
                return Err(Error::invalid(format!("Table '{ks}.{}' doesn't exist", s.name.name)));
            };
            check_user_keyspace(&ks)?;
            exec.apply_internal(persist::drop_table_mutations(table, ts, now)?)?;
            exec.set_schema(schema.without_table(&ks, &s.name.name));
            exec.engine().drop_table(table.id)?;
            change(SchemaChangeKind::Dropped, &ks, Some(&s.name.name))
        }
        Statement::AlterTable(s) => {
            let ks = ks_name(&s.table)?;
            let Some(table) = schema.table(&ks, &s.table.name) else {
                if s.if_exists {
                    return Ok(None);
                }
                return Err(Error::invalid(format!("Table '{ks}.{}' doesn't exist", s.table.name)));
            };
            check_user_keyspace(&ks)?;
            let Some(altered) = alter_table(table, &s.action, ts)? else { return Ok(None) };
            exec.apply_internal(persist::table_mutations(&altered, ts, now)?)?;
            exec.set_schema(schema.with_table(altered));
            change(SchemaChangeKind::Updated, &ks, Some(&s.table.name))
        }
        _ => return Err(Error::Server("not a schema statement".into())),
    };
    write_local(exec)?;
    Ok(Some(result))
}

fn column_type(name: &str, ty: &ast::TypeExpr) -> Result<CqlType> {
    if let ast::TypeExpr::Native(ast::NativeType::Counter) = ty {
        return Err(Error::invalid(format!("Counter columns are not supported (column {name})")));
    }
    if contains_udt(ty) {
        return Err(Error::invalid(format!("User-defined types are not supported (column {name})")));
    }
    let t = super::expr::type_of(ty)?;
    t.validate().map_err(|e| Error::invalid(format!("{e} (column {name})")))?;
    Ok(t)
}

fn contains_udt(t: &ast::TypeExpr) -> bool {
    match t {
        ast::TypeExpr::UserDefined(_) => true,
        ast::TypeExpr::List(e) | ast::TypeExpr::Set(e) | ast::TypeExpr::Frozen(e) => contains_udt(e),
        ast::TypeExpr::Map(k, v) => contains_udt(k) || contains_udt(v),
        ast::TypeExpr::Tuple(ts) => ts.iter().any(contains_udt),
        ast::TypeExpr::Vector { element, .. } => contains_udt(element),
        ast::TypeExpr::Native(_) | ast::TypeExpr::Custom(_) => false,
    }
}

fn build_table(keyspace: &str, s: &ast::CreateTableStatement, id: TableId) -> Result<TableMetadata> {
    if s.options.compact_storage {
        return Err(Error::invalid("COMPACT STORAGE tables are not supported (Cassandra 4 deprecates them)"));
    }
    let pk = &s.primary_key;
    let mut seen = HashSet::new();
    let mut columns = Vec::new();
    for (i, def) in s.columns.iter().enumerate() {
        if !seen.insert(def.name.clone()) {
            return Err(Error::invalid(format!(
                "Duplicate column '{}' declaration for table {keyspace}.{}",
                def.name, s.name.name
            )));
        }
        let ty = column_type(&def.name, &def.ty)?;
        let (kind, position) = if let Some(p) = pk.partition_key.iter().position(|c| *c == def.name) {
            (ColumnKind::PartitionKey, p)
        } else if let Some(p) = pk.clustering_columns.iter().position(|c| *c == def.name) {
            (ColumnKind::Clustering, p)
        } else if def.is_static {
            (ColumnKind::Static, usize::MAX)
        } else {
            (ColumnKind::Regular, usize::MAX)
        };
        if kind.is_primary_key() {
            if def.is_static {
                return Err(Error::invalid(format!(
                    "Static column {} cannot be part of the PRIMARY KEY",
                    def.name
                )));
            }
            if ty.is_multi_cell() {
                return Err(Error::invalid(format!(
                    "Invalid non-frozen collection type for PRIMARY KEY component {}",
                    def.name
                )));
            }
            if ty == CqlType::Duration {
                return Err(Error::invalid(format!(
                    "duration type is not supported for PRIMARY KEY column '{}'",
                    def.name
                )));
            }
        }
        let order = if kind == ColumnKind::Clustering {
            match s.options.clustering_order.iter().find(|o| o.column == def.name) {
                Some(o) if o.order == ast::Order::Desc => Order::Descending,
                _ => Order::Ascending,
            }
        } else {
            Order::Ascending
        };
        columns.push(ColumnMetadata {
            name: def.name.clone(),
            id: ColumnId(u32::try_from(i).unwrap_or(u32::MAX)),
            ty,
            kind,
            position: if position == usize::MAX { -1 } else { i32::try_from(position).unwrap_or(-1) },
            order,
        });
    }
    for name in pk.partition_key.iter().chain(&pk.clustering_columns) {
        if !seen.contains(name) {
            return Err(Error::invalid(format!("Unknown definition {name} referenced in PRIMARY KEY")));
        }
    }
    if pk.partition_key.is_empty() {
        return Err(Error::invalid("No PRIMARY KEY specifed for table (exactly one required)"));
    }
    if pk.clustering_columns.is_empty() && columns.iter().any(|c| c.kind == ColumnKind::Static) {
        return Err(Error::invalid("Static columns are only useful (and thus allowed) if the table has at least one clustering column".to_string()));
    }
    // CLUSTERING ORDER BY must name the clustering columns in order.
    for (i, o) in s.options.clustering_order.iter().enumerate() {
        if pk.clustering_columns.get(i) != Some(&o.column) {
            if !pk.clustering_columns.contains(&o.column) {
                return Err(Error::invalid(format!("Only clustering key columns can be defined in CLUSTERING ORDER directive: {} is not a clustering column", o.column)));
            }
            return Err(Error::invalid("The order of columns in the CLUSTERING ORDER directive must match that of the clustering columns"));
        }
    }
    let params = TableParams::for_create(&properties(&s.options.properties)?)?;
    Ok(TableMetadata::new(keyspace, &s.name.name, id, columns, params))
}

fn alter_table(table: &TableMetadata, action: &AlterTableAction, ts: i64) -> Result<Option<TableMetadata>> {
    let mut t = table.clone();
    match action {
        AlterTableAction::Add { if_not_exists, columns } => {
            for def in columns {
                if t.column(&def.name).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(Error::invalid(format!("Column with name '{}' already exists", def.name)));
                }
                let ty = column_type(&def.name, &def.ty)?;
                if def.is_static && t.clustering_len() == 0 {
                    return Err(Error::invalid(
                        "Static columns are not allowed in tables with no clustering columns".to_string(),
                    ));
                }
                let id = t.next_column_id();
                let kind = if def.is_static { ColumnKind::Static } else { ColumnKind::Regular };
                t.columns.push(ColumnMetadata {
                    name: def.name.clone(),
                    id,
                    ty,
                    kind,
                    position: -1,
                    order: Order::Ascending,
                });
            }
        }
        AlterTableAction::Drop { if_exists, columns, timestamp } => {
            let dropped_at = match timestamp {
                Some(ast::Literal::Integer(s)) => {
                    s.parse::<i64>().map_err(|_| Error::invalid("Invalid USING TIMESTAMP"))?
                }
                _ => ts,
            };
            for name in columns {
                let Some(c) = t.column(name).cloned() else {
                    if *if_exists {
                        continue;
                    }
                    return Err(Error::invalid(format!("Column {name} was not found in table {}", t.name)));
                };
                if c.kind.is_primary_key() {
                    return Err(Error::invalid(format!("Cannot drop PRIMARY KEY part {name}")));
                }
                t.columns.retain(|x| x.name != *name);
                t.dropped.retain(|d| d.name != *name);
                t.dropped.push(DroppedColumn {
                    name: name.clone(),
                    id: c.id,
                    ty: c.ty,
                    kind: c.kind,
                    dropped_time_micros: dropped_at,
                });
            }
        }
        AlterTableAction::Rename { if_exists, renames } => {
            for (from, to) in renames {
                let Some(i) = t.column_index(from) else {
                    if *if_exists {
                        continue;
                    }
                    return Err(Error::invalid(format!("Column {from} was not found in table {}", t.name)));
                };
                if !t.columns[i].kind.is_primary_key() {
                    return Err(Error::invalid(format!("Cannot rename non PRIMARY KEY column {from}")));
                }
                if t.column(to).is_some() {
                    return Err(Error::invalid(format!("Cannot rename column {from} to {to} in table {}; another column of that name already exist", t.name)));
                }
                t.columns[i].name = to.clone();
            }
        }
        AlterTableAction::WithOptions(props) => {
            t.params.apply(&properties(props)?)?;
        }
        AlterTableAction::AlterColumnType { .. } => {
            return Err(Error::invalid("Altering column types is no longer supported"))
        }
        AlterTableAction::DropCompactStorage => return Err(Error::invalid("Table has no COMPACT STORAGE")),
    }
    let rebuilt = TableMetadata {
        dropped: t.dropped.clone(),
        ..TableMetadata::new(&t.keyspace, &t.name, t.id, t.columns, t.params)
    };
    if rebuilt == *table {
        return Ok(None);
    }
    Ok(Some(rebuilt))
}
