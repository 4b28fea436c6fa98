//! The executor: a statement's text, or a prepared id, and bound values in; a result out.
//!
//! [`Executor`] is the node-wide part (engine, schema, prepared statements, clock); the
//! connection's current keyspace is passed in by the caller. Every method is synchronous and may
//! block on disk or on the commit log's group sync: the protocol server calls it from tokio's
//! blocking pool, never from an async worker.
//!
//! Walk of a query: [`Executor::query`] parses the text (`parser`), resolves it against the
//! current [`Schema`] into a plan (`select::plan`, `modify::plan_*`, with every term typed by its
//! receiver in `expr`), evaluates bound values, and then reads (`select::execute` through the
//! engine) or builds mutations (`modify`) and applies them to the engine.

pub mod ddl;
pub mod describe;
pub mod expr;
pub mod membership;
pub mod modify;
pub mod paging;
pub mod restrictions;
pub mod select;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};
use parking_lot::{Mutex, RwLock};
use sibyl_cluster::{
    ClusterService, ConsistencyLevel, Coordinator, Endpoint, Location, ReplicationStrategy, Timeouts,
};
use sibyl_engine::{Clock, Engine, Mutation, PartitionData, ReadCommand, ScanCommand, TableId};
use uuid::Uuid;

use self::expr::{BindSpecs, BoundValue, EvalContext, Receiver};
use self::modify::{ModifyPlan, MutationSet, WriteContext};
use self::select::{PageOptions, ReadSource};
use crate::ast::{BatchChild, BatchKind, Statement};
use crate::error::{Error, Result};
use crate::parser;
use crate::protocol::Consistency;
use crate::rows::ListPath;
use crate::schema::{self, Schema, TableMetadata};
use crate::types::{CqlType, TimeuuidGenerator};

/// Most prepared statements kept (the oldest is evicted; its clients re-prepare on Unprepared).
pub const MAX_PREPARED_STATEMENTS: usize = 10_000;

/// A column of a result or a bind variable.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    /// Keyspace.
    pub keyspace: String,
    /// Table.
    pub table: String,
    /// Name.
    pub name: String,
    /// Type.
    pub ty: CqlType,
}

/// Rows returned by a SELECT (serialized values, Cassandra's format).
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSet {
    /// Columns.
    pub columns: Vec<ColumnSpec>,
    /// Rows.
    pub rows: Vec<Vec<Option<Bytes>>>,
    /// Set when more pages remain.
    pub paging_state: Option<Bytes>,
}

/// What a schema change did, for the RESULT and the EVENT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    /// `CREATED`, `UPDATED` or `DROPPED`.
    pub change: SchemaChangeKind,
    /// Keyspace.
    pub keyspace: String,
    /// Table, if the change is to a table.
    pub table: Option<String>,
}

/// Kinds of schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaChangeKind {
    /// Created.
    Created,
    /// Altered.
    Updated,
    /// Dropped.
    Dropped,
}

/// The result of a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// Nothing to return.
    Void,
    /// Rows.
    Rows(ResultSet),
    /// USE.
    SetKeyspace(String),
    /// DDL.
    SchemaChange(SchemaChange),
}

/// Values bound to a statement's markers.
#[derive(Debug, Clone, Default)]
pub enum Values {
    /// No values.
    #[default]
    None,
    /// By position.
    Positional(Vec<BoundValue>),
    /// By name.
    Named(Vec<(String, BoundValue)>),
}

/// Options of one execution (from QUERY/EXECUTE/BATCH parameters).
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Consistency level.
    pub consistency: Consistency,
    /// Bound values.
    pub values: Values,
    /// Page size.
    pub page_size: Option<usize>,
    /// Paging state from the previous page.
    pub paging_state: Option<Bytes>,
    /// Client-provided default timestamp (microseconds).
    pub timestamp: Option<i64>,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            consistency: Consistency::One,
            values: Values::None,
            page_size: None,
            paging_state: None,
            timestamp: None,
        }
    }
}

/// A prepared statement as the client sees it.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Id (MD5 of keyspace and text, as Cassandra computes it).
    pub id: Bytes,
    /// Bind variables.
    pub variables: Vec<ColumnSpec>,
    /// Indexes of the variables that give the partition key, in key order (for token-aware
    /// routing), or empty.
    pub pk_indexes: Vec<u16>,
    /// Result columns (SELECT) or empty.
    pub result_columns: Vec<ColumnSpec>,
}

#[derive(Debug)]
struct PreparedEntry {
    statement: Arc<Statement>,
    keyspace: Option<String>,
    names: Vec<Option<String>>,
    tables: Vec<(String, String)>,
    sequence: u64,
}

/// This node as `system.local` shows it.
#[derive(Debug, Clone)]
pub struct LocalNode {
    /// `cluster_name`.
    pub cluster_name: String,
    /// Host id.
    pub host_id: Uuid,
    /// Data center.
    pub data_center: String,
    /// Rack.
    pub rack: String,
    /// `listen_address`.
    pub listen_address: IpAddr,
    /// `rpc_address` / `broadcast_rpc_address`.
    pub rpc_address: IpAddr,
    /// `native_transport_port`.
    pub native_port: u16,
    /// `storage_port` (internode messaging).
    pub storage_port: u16,
    /// The node's tokens.
    pub tokens: Vec<i64>,
}

/// Cassandra release this node reports (drivers pick their schema parser from it; cqlsh needs
/// >= 4 for server-side DESCRIBE).
pub const RELEASE_VERSION: &str = "4.0.11";
/// CQL version reported.
pub const CQL_VERSION: &str = "3.4.5";

/// Read-path limits.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Warn (log) when a read scans this many tombstones.
    pub tombstone_warn_threshold: usize,
    /// Fail a read that scans this many tombstones.
    pub tombstone_failure_threshold: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits { tombstone_warn_threshold: 1000, tombstone_failure_threshold: 100_000 }
    }
}

/// The node-wide executor.
#[derive(Debug)]
pub struct Executor {
    engine: Arc<Engine>,
    clock: Arc<dyn Clock>,
    schema: RwLock<Arc<Schema>>,
    ddl: Mutex<()>,
    prepared: Mutex<HashMap<Bytes, PreparedEntry>>,
    prepared_sequence: std::sync::atomic::AtomicU64,
    last_timestamp: AtomicI64,
    timeuuids: TimeuuidGenerator,
    list_paths: ListPath,
    local: RwLock<LocalNode>,
    /// No identity was stored when the node opened: this is its first start.
    pub(crate) first_boot: std::sync::atomic::AtomicBool,
    /// `system.local.bootstrapped`: `NEEDS_BOOTSTRAP`, `IN_PROGRESS`, `COMPLETED` or
    /// `DECOMMISSIONED`.
    bootstrapped: RwLock<String>,
    limits: ReadLimits,
    listeners: Mutex<Vec<std::sync::mpsc::SyncSender<SchemaChange>>>,
    /// Serializes lightweight transactions coordinated by this node (not Paxos: see
    /// docs/cql.md for what that guarantees across coordinators).
    lwt: Mutex<()>,
    /// Runs reads and writes against the replicas.
    coordinator: Arc<Coordinator>,
    /// The cluster service, once the node joined its cluster (schema changes are announced).
    cluster: std::sync::OnceLock<ClusterService>,
}

impl Executor {
    /// Opens the executor on an engine: creates the node's own tables if needed, loads the
    /// schema, and records this node in `system.local`.
    pub fn open(
        engine: Arc<Engine>,
        clock: Arc<dyn Clock>,
        local: LocalNode,
        limits: ReadLimits,
    ) -> Result<Executor> {
        Executor::open_with_timeouts(engine, clock, local, limits, Timeouts::default())
    }

    /// [`Executor::open`] with the coordinator's request timeouts.
    pub fn open_with_timeouts(
        engine: Arc<Engine>,
        clock: Arc<dyn Clock>,
        local: LocalNode,
        limits: ReadLimits,
        timeouts: Timeouts,
    ) -> Result<Executor> {
        let endpoint = Endpoint(std::net::SocketAddr::new(local.listen_address, local.storage_port));
        let location = Location { dc: local.data_center.clone(), rack: local.rack.clone() };
        let storage: Arc<dyn sibyl_cluster::Storage> = Arc::clone(&engine) as _;
        let coordinator = Arc::new(Coordinator::new(endpoint, location, &local.tokens, storage, timeouts));
        let exec = Executor {
            coordinator,
            cluster: std::sync::OnceLock::new(),
            engine,
            timeuuids: TimeuuidGenerator::new_random(),
            clock,
            schema: RwLock::new(Arc::new(Schema::default())),
            ddl: Mutex::new(()),
            prepared: Mutex::new(HashMap::new()),
            prepared_sequence: std::sync::atomic::AtomicU64::new(0),
            last_timestamp: AtomicI64::new(i64::MIN),
            list_paths: ListPath::default(),
            local: RwLock::new(local),
            first_boot: std::sync::atomic::AtomicBool::new(false),
            bootstrapped: RwLock::new("COMPLETED".to_string()),
            limits,
            listeners: Mutex::new(Vec::new()),
            lwt: Mutex::new(()),
        };
        ddl::bootstrap(&exec)?;
        // The tokens kept from an earlier run replace the ones drawn for this start.
        let tokens = exec.local().tokens;
        exec.coordinator.update_view(|v| v.ring.update_normal_tokens(endpoint, &tokens));
        Ok(exec)
    }

    /// The coordinator.
    #[must_use]
    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coordinator
    }

    /// Connects the executor to its cluster: schema changes are announced from now on.
    pub fn attach_cluster(&self, cluster: ClusterService) {
        let _ = self.cluster.set(cluster);
    }

    /// The cluster service, if the node joined one.
    #[must_use]
    pub fn cluster(&self) -> Option<&ClusterService> {
        self.cluster.get()
    }

    /// How a table's keyspace is replicated (the node's own keyspaces are local).
    pub fn strategy_for(&self, table: TableId) -> Result<ReplicationStrategy> {
        let schema = self.schema();
        let Some(t) = schema.table_by_id(table) else {
            return Err(Error::invalid(format!("unknown table {table}")));
        };
        self.keyspace_strategy(&schema, &t.keyspace)
    }

    /// How the coordinator reads `table`: its `read_repair` and `speculative_retry` options
    /// (validated when the table was created or altered; defaults for an unknown table).
    #[must_use]
    pub fn read_policy(&self, table: TableId) -> sibyl_cluster::ReadPolicy {
        let schema = self.schema();
        schema
            .table_by_id(table)
            .and_then(|t| {
                sibyl_cluster::ReadPolicy::parse(&t.params.read_repair, &t.params.speculative_retry).ok()
            })
            .unwrap_or_default()
    }

    /// How `keyspace` is replicated in `schema` (the node's own keyspaces are local).
    pub fn keyspace_strategy(&self, schema: &Schema, keyspace: &str) -> Result<ReplicationStrategy> {
        if schema::is_system_keyspace(keyspace) {
            return Ok(ReplicationStrategy::Local);
        }
        let Some(ks) = schema.keyspace(keyspace) else {
            return Err(Error::invalid(format!("Keyspace '{keyspace}' does not exist")));
        };
        let class = ks.params.replication.get("class").cloned().unwrap_or_default();
        let options: std::collections::BTreeMap<String, String> =
            ks.params.replication.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        ReplicationStrategy::from_options(&class, &options).map_err(|e| Error::Config(e.to_string()))
    }

    /// The engine.
    #[must_use]
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The current schema.
    #[must_use]
    pub fn schema(&self) -> Arc<Schema> {
        Arc::clone(&self.schema.read())
    }

    /// This node.
    #[must_use]
    pub fn local(&self) -> LocalNode {
        self.local.read().clone()
    }

    /// Keeps the host id and tokens this node had on its previous runs.
    fn restore_identity(&self, host_id: Uuid, tokens: Vec<i64>, bootstrapped: String) {
        let mut l = self.local.write();
        l.host_id = host_id;
        if !tokens.is_empty() {
            l.tokens = tokens;
        }
        *self.bootstrapped.write() = bootstrapped;
    }

    /// Whether this start found no stored identity (a new node).
    #[must_use]
    pub fn is_first_boot(&self) -> bool {
        self.first_boot.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `system.local.bootstrapped` (`COMPLETED` for a node that never bootstrapped).
    #[must_use]
    pub fn bootstrap_state(&self) -> String {
        self.bootstrapped.read().clone()
    }

    /// Records the bootstrap state in `system.local` (`IN_PROGRESS` survives a crash, so the
    /// bootstrap is run again; `DECOMMISSIONED` keeps a decommissioned node out).
    pub fn set_bootstrap_state(&self, state: &str) -> Result<()> {
        *self.bootstrapped.write() = state.to_string();
        ddl::write_local(self)
    }

    /// Replaces this node's tokens (chosen by bootstrap) in `system.local` and in its view.
    pub fn set_tokens(&self, tokens: Vec<i64>) -> Result<()> {
        self.local.write().tokens = tokens;
        ddl::write_local(self)
    }

    /// Registers for schema change notifications (the protocol server turns them into EVENTs).
    /// The channel is bounded; a full one drops notifications rather than block DDL.
    pub fn subscribe(&self, sender: std::sync::mpsc::SyncSender<SchemaChange>) {
        self.listeners.lock().push(sender);
    }

    pub(crate) fn notify(&self, change: &SchemaChange) {
        self.listeners.lock().retain(|l| {
            !matches!(l.try_send(change.clone()), Err(std::sync::mpsc::TrySendError::Disconnected(_)))
        });
    }

    pub(crate) fn set_schema(&self, schema: Schema) {
        *self.schema.write() = Arc::new(schema);
    }

    /// A write timestamp: the clock in microseconds, strictly increasing on this node.
    pub fn next_timestamp(&self) -> i64 {
        let now = self.clock.now_micros();
        let mut last = self.last_timestamp.load(Ordering::Relaxed);
        loop {
            let next = if now > last { now } else { last + 1 };
            match self.last_timestamp.compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(actual) => last = actual,
            }
        }
    }

    /// Makes later timestamps from [`Executor::next_timestamp`] newer than `timestamp`.
    fn observe_timestamp(&self, timestamp: i64) {
        self.last_timestamp.fetch_max(timestamp, Ordering::AcqRel);
    }

    /// Runs a statement given as text.
    pub fn query(&self, keyspace: Option<&str>, text: &str, options: &QueryOptions) -> Result<QueryResult> {
        tracing::debug!(keyspace, query = text, "query");
        // cqlsh sends a lone ";" after some multi-line input; Cassandra's grammar refuses it, but
        // an empty statement has nothing to do.
        if text.trim_matches(|c: char| c.is_whitespace() || c == ';').is_empty() {
            return Ok(QueryResult::Void);
        }
        let parsed = parse(text)?;
        let names = parsed.bind_markers();
        self.run(keyspace, &parsed, &names, options)
    }

    /// Prepares a statement: its id, bind variables and result columns.
    pub fn prepare(&self, keyspace: Option<&str>, text: &str) -> Result<Prepared> {
        let statement = parse(text)?;
        let names = statement.bind_markers();
        let schema = self.schema();
        let (binds, result_columns, tables, pk_indexes) =
            self.resolve_for_prepare(&schema, keyspace, &statement, &names)?;
        let variables = binds
            .receivers
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let r = r.clone().unwrap_or_else(|| Receiver::new(format!("[{i}]"), CqlType::Blob));
                let (ks, t) = tables.first().cloned().unwrap_or_default();
                ColumnSpec {
                    keyspace: ks,
                    table: t,
                    name: names.get(i).cloned().flatten().unwrap_or(r.name),
                    ty: r.ty,
                }
            })
            .collect();
        let id = prepared_id(keyspace, text);
        let sequence = self.prepared_sequence.fetch_add(1, Ordering::Relaxed);
        let mut cache = self.prepared.lock();
        if cache.len() >= MAX_PREPARED_STATEMENTS && !cache.contains_key(&id) {
            if let Some(oldest) = cache.iter().min_by_key(|(_, e)| e.sequence).map(|(k, _)| k.clone()) {
                cache.remove(&oldest);
            }
        }
        cache.insert(
            id.clone(),
            PreparedEntry {
                statement: Arc::new(statement),
                keyspace: keyspace.map(str::to_string),
                names,
                tables,
                sequence,
            },
        );
        Ok(Prepared { id, variables, pk_indexes, result_columns })
    }

    /// Executes a prepared statement.
    pub fn execute(&self, id: &[u8], options: &QueryOptions) -> Result<QueryResult> {
        let (statement, keyspace, names) = {
            let cache = self.prepared.lock();
            let e = cache.get(id).ok_or_else(|| Error::Unprepared { id: id.to_vec() })?;
            (Arc::clone(&e.statement), e.keyspace.clone(), e.names.clone())
        };
        self.run(keyspace.as_deref(), &statement, &names, options)
    }

    /// Executes a BATCH of statements (text or prepared ids) with their values.
    pub fn batch(
        &self,
        keyspace: Option<&str>,
        kind: BatchKind,
        statements: &[(BatchItem, Values)],
        options: &QueryOptions,
    ) -> Result<QueryResult> {
        if kind == BatchKind::Counter {
            return Err(Error::invalid("Counter batches are not supported"));
        }
        let schema = self.schema();
        let mut set = MutationSet::default();
        for (item, values) in statements {
            let (statement, ks, names) = match item {
                BatchItem::Query(text) => {
                    let s = parse(text)?;
                    let names = s.bind_markers();
                    (Arc::new(s), keyspace.map(str::to_string), names)
                }
                BatchItem::Prepared(id) => {
                    let cache = self.prepared.lock();
                    let e = cache.get(id.as_ref()).ok_or_else(|| Error::Unprepared { id: id.to_vec() })?;
                    (Arc::clone(&e.statement), e.keyspace.clone(), e.names.clone())
                }
            };
            let mut binds = BindSpecs::new(names.clone());
            let plan = match &*statement {
                Statement::Insert(s) => {
                    modify::plan_insert(self.table(&schema, ks.as_deref(), &s.table)?, s, &mut binds)?
                }
                Statement::Update(s) => {
                    modify::plan_update(self.table(&schema, ks.as_deref(), &s.table)?, s, &mut binds)?
                }
                Statement::Delete(s) => {
                    modify::plan_delete(self.table(&schema, ks.as_deref(), &s.table)?, s, &mut binds)?
                }
                _ => {
                    return Err(Error::invalid(
                        "Only INSERT, UPDATE and DELETE statements are allowed in a BATCH",
                    ))
                }
            };
            let per = QueryOptions { values: values.clone(), ..options.clone() };
            let ctx = self.context(&per, &names, &binds)?;
            plan.build(&ctx, None, &mut set)?;
        }
        if kind == BatchKind::Logged {
            self.apply_logged(set.into_mutations(), options.consistency)?;
        } else {
            self.apply(set.into_mutations(), options.consistency)?;
        }
        Ok(QueryResult::Void)
    }

    fn table(
        &self,
        schema: &Schema,
        keyspace: Option<&str>,
        name: &crate::ast::QualifiedName,
    ) -> Result<Arc<TableMetadata>> {
        let ks = name.keyspace.as_deref().or(keyspace).ok_or_else(|| {
            Error::invalid(
                "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename",
            )
        })?;
        if schema.keyspace(ks).is_none() {
            return Err(Error::invalid(format!("Keyspace '{ks}' does not exist")));
        }
        schema
            .table(ks, &name.name)
            .cloned()
            .ok_or_else(|| Error::invalid(format!("table {} does not exist", name.name)))
    }

    fn context<'a>(
        &'a self,
        options: &'a QueryOptions,
        names: &[Option<String>],
        binds: &BindSpecs,
    ) -> Result<Context<'a>> {
        let values = match &options.values {
            Values::None => Vec::new(),
            Values::Positional(v) => v.clone(),
            Values::Named(named) => {
                let mut out = vec![BoundValue::Unset; names.len()];
                for (i, n) in names.iter().enumerate() {
                    let Some(n) = n else {
                        return Err(Error::invalid(
                            "Named values given for a statement with positional bind markers",
                        ));
                    };
                    let v = named
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(n))
                        .map(|(_, v)| v.clone())
                        .ok_or_else(|| Error::invalid(format!("No value bound for variable {n}")))?;
                    out[i] = v;
                }
                out
            }
        };
        if values.len() != binds.receivers.len() {
            return Err(Error::invalid(format!(
                "There were {} markers(?) in CQL but {} bound variables",
                binds.receivers.len(),
                values.len()
            )));
        }
        Ok(Context { exec: self, values, options })
    }

    fn run(
        &self,
        keyspace: Option<&str>,
        statement: &Statement,
        names: &[Option<String>],
        options: &QueryOptions,
    ) -> Result<QueryResult> {
        let schema = self.schema();
        let mut binds = BindSpecs::new(names.to_vec());
        match statement {
            Statement::Select(s) => {
                let table = self.table(&schema, keyspace, &s.table)?;
                let plan = select::plan(table, s, &mut binds)?;
                let ctx = self.context(options, names, &binds)?;
                let page =
                    PageOptions { page_size: options.page_size, paging_state: options.paging_state.clone() };
                let rs = select::execute(&plan, &ctx, &ctx, &page, self.clock.now_seconds())?;
                Ok(QueryResult::Rows(rs))
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                let plan = self.plan_modify(&schema, keyspace, statement, &mut binds)?;
                let ctx = self.context(options, names, &binds)?;
                if plan.condition.is_some() {
                    return self.execute_conditional(&plan, &ctx, options.consistency);
                }
                let mut set = MutationSet::default();
                plan.build(&ctx, None, &mut set)?;
                self.apply(set.into_mutations(), options.consistency)?;
                Ok(QueryResult::Void)
            }
            Statement::Batch(b) => {
                let mut plans = Vec::with_capacity(b.statements.len());
                for child in &b.statements {
                    let st = match child {
                        BatchChild::Insert(s) => Statement::Insert(s.clone()),
                        BatchChild::Update(s) => Statement::Update(s.clone()),
                        BatchChild::Delete(s) => Statement::Delete(s.clone()),
                    };
                    let plan = self.plan_modify(&schema, keyspace, &st, &mut binds)?;
                    if plan.condition.is_some() {
                        return Err(Error::invalid("Conditional BATCH statements are not supported yet"));
                    }
                    if b.using.timestamp.is_some() && plan.using.has_timestamp() {
                        return Err(Error::invalid(
                            "Timestamp must be set either on BATCH or individual statements",
                        ));
                    }
                    plans.push(plan);
                }
                if b.using.ttl.is_some() {
                    return Err(Error::invalid("Global TTL on the BATCH statement is not supported."));
                }
                if b.kind == BatchKind::Counter {
                    return Err(Error::invalid("Counter batches are not supported"));
                }
                let batch_ts = b
                    .using
                    .timestamp
                    .as_ref()
                    .map(|t| expr::resolve(t, &Receiver::new("[timestamp]", CqlType::Bigint), &mut binds))
                    .transpose()?;
                let ctx = self.context(options, names, &binds)?;
                let ts = match batch_ts {
                    Some(e) => match e.eval(&ctx)? {
                        expr::Evaluated::Value(crate::types::Value::Bigint(t)) => Some(t),
                        _ => None,
                    },
                    None => None,
                };
                let mut set = MutationSet::default();
                for p in &plans {
                    p.build(&ctx, ts, &mut set)?;
                }
                if b.kind == BatchKind::Logged {
                    self.apply_logged(set.into_mutations(), options.consistency)?;
                } else {
                    self.apply(set.into_mutations(), options.consistency)?;
                }
                Ok(QueryResult::Void)
            }
            Statement::Use(ks) => {
                if schema.keyspace(ks).is_none() {
                    return Err(Error::invalid(format!("Keyspace '{ks}' does not exist")));
                }
                Ok(QueryResult::SetKeyspace(ks.clone()))
            }
            Statement::Truncate(name) => {
                let table = self.table(&schema, keyspace, name)?;
                if schema::is_system_keyspace(&table.keyspace) {
                    return Err(Error::Unauthorized(format!(
                        "Cannot TRUNCATE a table of the {} keyspace",
                        table.keyspace
                    )));
                }
                self.engine.truncate(table.id)?;
                Ok(QueryResult::Void)
            }
            Statement::CreateKeyspace(_)
            | Statement::AlterKeyspace(_)
            | Statement::DropKeyspace(_)
            | Statement::CreateTable(_)
            | Statement::AlterTable(_)
            | Statement::DropTable(_) => {
                let change = ddl::execute(self, keyspace, statement)?;
                Ok(match change {
                    Some(c) => {
                        self.invalidate_prepared(&c);
                        self.notify(&c);
                        self.announce_schema();
                        QueryResult::SchemaChange(c)
                    }
                    None => QueryResult::Void,
                })
            }
            Statement::Describe(d) => Ok(QueryResult::Rows(describe::execute(self, &schema, keyspace, d)?)),
            Statement::Unsupported { kind } => {
                Err(Error::invalid(format!("{kind} is not supported by Sibyl")))
            }
        }
    }

    /// Runs a lightweight transaction: read the row, check the condition, write if it holds;
    /// answers `[applied]` (and the current values when it did not apply).
    fn execute_conditional(
        &self,
        plan: &ModifyPlan,
        ctx: &Context<'_>,
        consistency: Consistency,
    ) -> Result<QueryResult> {
        let table = &plan.table;
        let _serial = self.lwt.lock();
        let (key, clustering) = plan.conditional_target(ctx)?;
        let now = self.clock.now_seconds();
        let slice = if clustering.is_empty() {
            sibyl_engine::Slice::all()
        } else {
            sibyl_engine::Slice {
                start: sibyl_engine::Bound::before_key(&clustering),
                end: sibyl_engine::Bound::after_key(&clustering),
            }
        };
        let cmd = ReadCommand {
            table: table.id,
            key: key.clone(),
            slices: vec![slice],
            reversed: false,
            row_limit: 1,
            now_seconds: now,
        };
        let data = ReadSource::read(ctx, &cmd)?;
        let partition = data.as_ref().map(|d| crate::rows::decode_partition(table, d, now)).transpose()?;
        let current: Option<Vec<Option<crate::rows::ColumnValue>>> = partition.as_ref().and_then(|p| {
            let rows = p.result_rows();
            if clustering.is_empty() {
                rows.into_iter().next().map(|r| r.columns)
            } else {
                rows.into_iter()
                    .find(|r| r.clustering == clustering)
                    .map(|r| r.columns)
                    .or_else(|| p.statics.clone())
            }
        });
        let exists = partition.as_ref().is_some_and(|p| {
            if clustering.is_empty() {
                !p.rows.is_empty() || p.statics.is_some()
            } else {
                p.rows.iter().any(|r| r.clustering == clustering)
            }
        });
        let applied = plan.condition_holds(current.as_deref(), exists, ctx)?;
        let spec = |name: &str, ty: CqlType| ColumnSpec {
            keyspace: table.keyspace.clone(),
            table: table.name.clone(),
            name: name.into(),
            ty,
        };
        let mut columns = vec![spec("[applied]", CqlType::Boolean)];
        let mut row = vec![Some(Bytes::from_static(if applied { &[1] } else { &[0] }))];
        if applied {
            let mut set = MutationSet::default();
            plan.build(ctx, None, &mut set)?;
            self.apply(set.into_mutations(), consistency)?;
        } else if let (Some(current), false) =
            (&current, matches!(plan.condition, Some(modify::Condition::Exists)))
        {
            for i in plan.condition_columns() {
                let c = &table.columns[i];
                columns.push(spec(&c.name, c.ty.clone()));
                row.push(current.get(i).and_then(|v| v.as_ref()).map(|v| v.bytes.clone()));
            }
        }
        Ok(QueryResult::Rows(ResultSet { columns, rows: vec![row], paging_state: None }))
    }

    fn plan_modify(
        &self,
        schema: &Schema,
        keyspace: Option<&str>,
        statement: &Statement,
        binds: &mut BindSpecs,
    ) -> Result<ModifyPlan> {
        let plan = match statement {
            Statement::Insert(s) => modify::plan_insert(self.table(schema, keyspace, &s.table)?, s, binds)?,
            Statement::Update(s) => modify::plan_update(self.table(schema, keyspace, &s.table)?, s, binds)?,
            Statement::Delete(s) => modify::plan_delete(self.table(schema, keyspace, &s.table)?, s, binds)?,
            _ => return Err(Error::Server("not a modification".into())),
        };
        ddl::check_user_keyspace(&plan.table.keyspace)?;
        Ok(plan)
    }

    fn resolve_for_prepare(
        &self,
        schema: &Schema,
        keyspace: Option<&str>,
        statement: &Statement,
        names: &[Option<String>],
    ) -> Result<PrepareInfo> {
        let mut binds = BindSpecs::new(names.to_vec());
        let mut result = Vec::new();
        let mut tables = Vec::new();
        let mut pk_indexes = Vec::new();
        let note_table = |t: &TableMetadata, tables: &mut Vec<(String, String)>| {
            tables.push((t.keyspace.clone(), t.name.clone()));
        };
        match statement {
            Statement::Select(s) => {
                let table = self.table(schema, keyspace, &s.table)?;
                let plan = select::plan(Arc::clone(&table), s, &mut binds)?;
                result = plan.columns.clone();
                note_table(&table, &mut tables);
                pk_indexes = pk_bind_indexes(&table, &binds);
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                let plan = self.plan_modify(schema, keyspace, statement, &mut binds)?;
                note_table(&plan.table, &mut tables);
                pk_indexes = pk_bind_indexes(&plan.table, &binds);
            }
            Statement::Batch(b) => {
                for child in &b.statements {
                    let st = match child {
                        BatchChild::Insert(s) => Statement::Insert(s.clone()),
                        BatchChild::Update(s) => Statement::Update(s.clone()),
                        BatchChild::Delete(s) => Statement::Delete(s.clone()),
                    };
                    let plan = self.plan_modify(schema, keyspace, &st, &mut binds)?;
                    note_table(&plan.table, &mut tables);
                }
                if let Some(t) = &b.using.timestamp {
                    expr::resolve(t, &Receiver::new("[timestamp]", CqlType::Bigint), &mut binds)?;
                }
            }
            Statement::Describe(_) => result = describe::COLUMNS.iter().map(|c| describe::spec(c)).collect(),
            _ => {}
        }
        Ok((binds, result, tables, pk_indexes))
    }

    /// Drops prepared statements on a changed keyspace or table: clients get Unprepared and
    /// prepare again against the new schema (as Cassandra does).
    pub(crate) fn invalidate_prepared(&self, change: &SchemaChange) {
        self.prepared.lock().retain(|_, e| {
            !e.tables
                .iter()
                .any(|(ks, t)| *ks == change.keyspace && change.table.as_ref().is_none_or(|ct| ct == t))
        });
    }

    fn apply(&self, mutations: Vec<Mutation>, consistency: Consistency) -> Result<()> {
        let schema = self.schema();
        let level = level(consistency);
        let write_type = if mutations.len() > 1 {
            sibyl_cluster::WriteType::UnloggedBatch
        } else {
            sibyl_cluster::WriteType::Simple
        };
        // Group by keyspace: each keyspace has its own replicas. Mutations of one group are
        // one commit log record on each replica (all or nothing there after a crash).
        let mut by_keyspace: std::collections::BTreeMap<String, Vec<Mutation>> =
            std::collections::BTreeMap::new();
        for m in mutations {
            let ks = schema.table_by_id(m.table).map(|t| t.keyspace.clone()).unwrap_or_default();
            by_keyspace.entry(ks).or_default().push(m);
        }
        for (ks, group) in by_keyspace {
            let strategy = self.keyspace_strategy(&schema, &ks)?;
            self.coordinator.write(&strategy, group, level, write_type)?;
        }
        Ok(())
    }

    /// Groups mutations by keyspace, with each keyspace's replication.
    fn by_keyspace(
        &self,
        mutations: Vec<Mutation>,
    ) -> Result<Vec<(sibyl_cluster::ReplicationStrategy, Vec<Mutation>)>> {
        let schema = self.schema();
        let mut by_keyspace: std::collections::BTreeMap<String, Vec<Mutation>> =
            std::collections::BTreeMap::new();
        for m in mutations {
            let ks = schema.table_by_id(m.table).map(|t| t.keyspace.clone()).unwrap_or_default();
            by_keyspace.entry(ks).or_default().push(m);
        }
        by_keyspace
            .into_iter()
            .map(|(ks, group)| Ok((self.keyspace_strategy(&schema, &ks)?, group)))
            .collect()
    }

    /// A logged batch: through the batchlog when it spans several partitions, so it is applied
    /// in full eventually even if this coordinator dies half-way.
    fn apply_logged(&self, mutations: Vec<Mutation>, consistency: Consistency) -> Result<()> {
        let groups = self.by_keyspace(mutations)?;
        self.coordinator.write_logged(groups, level(consistency))?;
        Ok(())
    }

    /// Replays a logged batch another coordinator did not finish (the batchlog's apply
    /// function): each keyspace's mutations at ONE, so replicas that do not answer get hints.
    /// Mutations of tables dropped since, or whose `gc_grace_seconds` is shorter than the
    /// batch's `age`, are skipped.
    ///
    /// # Errors
    /// The write failed; the batch stays stored for the next round.
    pub fn replay_batch(
        &self,
        mutations: Vec<Mutation>,
        age: std::time::Duration,
    ) -> std::result::Result<(), String> {
        let schema = self.schema();
        // A batch older than a table's gc_grace_seconds could bring back data whose tombstone
        // was purged meanwhile; its mutations for that table are dropped, as Cassandra does.
        let known: Vec<Mutation> = mutations
            .into_iter()
            .filter(|m| match schema.table_by_id(m.table) {
                None => false,
                Some(t) => {
                    let grace = std::time::Duration::from_secs(u64::try_from(t.params.gc_grace_seconds).unwrap_or(0));
                    if age > grace {
                        tracing::warn!(table = %format!("{}.{}", t.keyspace, t.name), ?age, "dropping a replayed batch's mutation older than the table's gc_grace_seconds");
                    }
                    age <= grace
                }
            })
            .collect();
        drop(schema);
        for (strategy, group) in self.by_keyspace(known).map_err(|e| e.to_string())? {
            self.coordinator
                .write(
                    &strategy,
                    group,
                    sibyl_cluster::ConsistencyLevel::One,
                    sibyl_cluster::WriteType::Batch,
                )
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Applies mutations without consistency checks (the node's own tables), atomically: a
    /// schema change never leaves half its rows after a crash.
    pub(crate) fn apply_internal(&self, mutations: Vec<Mutation>) -> Result<()> {
        self.engine.apply_batch(mutations)?;
        Ok(())
    }

    pub(crate) fn ddl_lock(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.ddl.lock()
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// Read limits.
    #[must_use]
    pub fn read_limits(&self) -> ReadLimits {
        self.limits
    }
}

/// What PREPARE learns: bind variables, result columns, tables read or written, and the
/// bind indexes of the partition key.
type PrepareInfo = (BindSpecs, Vec<ColumnSpec>, Vec<(String, String)>, Vec<u16>);

/// A statement of a BATCH request.
#[derive(Debug, Clone)]
pub enum BatchItem {
    /// Text.
    Query(String),
    /// Prepared id.
    Prepared(Bytes),
}

/// The cluster layer's name for a protocol consistency level (the codes are the protocol's).
fn level(c: Consistency) -> ConsistencyLevel {
    ConsistencyLevel::from_code(c.code()).unwrap_or(ConsistencyLevel::One)
}

fn parse(text: &str) -> Result<Statement> {
    parser::parse_statement(text).map_err(|e| match e.kind {
        parser::ParseErrorKind::Invalid => Error::Invalid(e.message),
        parser::ParseErrorKind::Syntax => {
            Error::Syntax { line: e.line, column: e.column, message: e.message }
        }
    })
}

fn prepared_id(keyspace: Option<&str>, text: &str) -> Bytes {
    let mut h = Md5::new();
    if let Some(ks) = keyspace {
        h.update(ks.as_bytes());
    }
    h.update(text.as_bytes());
    Bytes::copy_from_slice(&h.finalize())
}

fn pk_bind_indexes(table: &TableMetadata, binds: &BindSpecs) -> Vec<u16> {
    let mut out = Vec::new();
    for c in table.partition_key() {
        let found =
            binds.receivers.iter().position(|r| r.as_ref().is_some_and(|r| r.name == c.name && r.ty == c.ty));
        match found.and_then(|i| u16::try_from(i).ok()) {
            Some(i) => out.push(i),
            None => return Vec::new(),
        }
    }
    out
}

/// The per-statement context: bound values, clock and the node.
#[derive(Debug)]
struct Context<'a> {
    exec: &'a Executor,
    values: Vec<BoundValue>,
    options: &'a QueryOptions,
}

impl EvalContext for Context<'_> {
    fn bound(&self, index: usize) -> Option<&BoundValue> {
        self.values.get(index)
    }

    fn now_micros(&self) -> i64 {
        self.exec.clock.now_micros()
    }

    fn new_timeuuid(&self) -> Uuid {
        self.exec.timeuuids.next(self.exec.clock.now_micros())
    }
}

impl WriteContext for Context<'_> {
    fn default_timestamp(&self) -> i64 {
        self.options.timestamp.unwrap_or_else(|| self.exec.next_timestamp())
    }

    fn now_seconds(&self) -> u32 {
        self.exec.clock.now_seconds()
    }

    fn list_paths(&self) -> &ListPath {
        &self.exec.list_paths
    }

    fn reader(&self) -> &dyn ReadSource {
        self
    }
}

impl ReadSource for Context<'_> {
    fn read(&self, cmd: &ReadCommand) -> Result<Option<PartitionData>> {
        let strategy = self.exec.strategy_for(cmd.table)?;
        let policy = self.exec.read_policy(cmd.table);
        let data = self.exec.coordinator.read(&strategy, cmd, level(self.options.consistency), policy)?;
        if let Some(d) = &data {
            self.exec.check_tombstones(cmd.table, d)?;
        }
        Ok(data)
    }

    fn read_many(&self, cmds: &[ReadCommand]) -> Result<Vec<Option<PartitionData>>> {
        let Some(first) = cmds.first() else { return Ok(Vec::new()) };
        let strategy = self.exec.strategy_for(first.table)?;
        let policy = self.exec.read_policy(first.table);
        let answers =
            self.exec.coordinator.read_many(&strategy, cmds, level(self.options.consistency), policy);
        let mut out = Vec::with_capacity(answers.len());
        for (cmd, answer) in cmds.iter().zip(answers) {
            let data = answer?;
            if let Some(d) = &data {
                self.exec.check_tombstones(cmd.table, d)?;
            }
            out.push(data);
        }
        Ok(out)
    }

    fn scan(&self, cmd: &ScanCommand) -> Result<Vec<PartitionData>> {
        let strategy = self.exec.strategy_for(cmd.table)?;
        let data = self.exec.coordinator.scan(&strategy, cmd, level(self.options.consistency))?;
        for d in &data {
            self.exec.check_tombstones(cmd.table, d)?;
        }
        Ok(data)
    }
}

impl Executor {
    /// Enforces `tombstone_warn_threshold` / `tombstone_failure_threshold` on what a read
    /// returned (the engine hands back the tombstones it merged).
    fn check_tombstones(&self, table: sibyl_engine::TableId, data: &PartitionData) -> Result<()> {
        let now = self.clock.now_seconds();
        let count = data.header.range_tombstones.len()
            + usize::from(!data.header.deletion.is_live())
            + data.rows.iter().map(|r| r.tombstone_count(now)).sum::<usize>();
        if count >= self.limits.tombstone_failure_threshold {
            let name = self
                .schema()
                .table_by_id(table)
                .map(|t| format!("{}.{}", t.keyspace, t.name))
                .unwrap_or_default();
            tracing::error!(table = %name, tombstones = count, "read scanned too many tombstones and was aborted (tombstone_failure_threshold); compaction purges them after gc_grace_seconds, or model the data to avoid them");
            return Err(Error::ReadFailure(format!(
                "Read on {name} scanned over {count} tombstones (tombstone_failure_threshold is {}); query aborted",
                self.limits.tombstone_failure_threshold
            )));
        }
        if count >= self.limits.tombstone_warn_threshold {
            let name = self
                .schema()
                .table_by_id(table)
                .map(|t| format!("{}.{}", t.keyspace, t.name))
                .unwrap_or_default();
            tracing::warn!(table = %name, tombstones = count, "read scanned many tombstones (tombstone_warn_threshold)");
        }
        Ok(())
    }
}
