//! How the CQL layer follows the cluster: schema exchange, `system.peers`, client events.
//!
//! The cluster layer calls [`NodeHooks`] (its [`ClusterHooks`]):
//! - schema: [`Executor::schema_mutations`] exports the user keyspaces' rows of the
//!   `system_schema` tables (tombstones included, so a drop travels too), and
//!   [`Executor::merge_schema`] applies another node's rows, reloads the schema from the tables,
//!   creates or drops engine tables to match, and emits SCHEMA_CHANGE events for what changed.
//!   Rows reconcile by timestamp, so any order of pushes and pulls converges to one version.
//! - peers: each change of another node is written to `system.peers` and `system.peers_v2`
//!   (drivers discover the cluster from them), and UP/DOWN/NEW_NODE become client events.
//!   These run on one worker thread fed by a bounded queue: the gossip task never waits on disk.

use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use sibyl_cluster::{ClusterHooks, PeerInfo};
use sibyl_engine::{Mutation, PartitionUpdate, ScanCommand, ScanStart, Slice, Token};
use uuid::Uuid;

use super::{ddl, Executor, SchemaChange, SchemaChangeKind};
use crate::error::{Error, Result};
use crate::protocol::{Event, EventBus, StatusChangeType, TopologyChangeType};
use crate::rows::WriteTime;
use crate::schema::{is_system_keyspace, persist, system, Schema};
use crate::types::Value;

/// Peer updates waiting for the worker; beyond this, updates are dropped (the next gossip
/// change of that peer writes its row again).
const PEER_QUEUE: usize = 1024;

impl Executor {
    /// The user keyspaces' schema rows, as mutations another node can apply.
    pub fn schema_mutations(&self) -> Result<Vec<Mutation>> {
        let now = self.clock().now_seconds();
        let mut out = Vec::new();
        let schema = self.schema();
        let Some(ks) = schema.keyspace(system::SYSTEM_SCHEMA) else { return Ok(out) };
        for table in ks.tables.values() {
            let cmd = ScanCommand {
                table: table.id,
                start: ScanStart::TokenInclusive(Token::MIN),
                end: Token::MAX,
                slices: vec![Slice::all()],
                partition_limit: usize::MAX,
                row_limit: usize::MAX,
                now_seconds: now,
            };
            for p in self.engine().scan(&cmd)? {
                let keyspace = std::str::from_utf8(&p.key.key).unwrap_or_default();
                if is_system_keyspace(keyspace) {
                    continue;
                }
                out.push(Mutation {
                    table: table.id,
                    update: PartitionUpdate { key: p.key.key.clone(), header: p.header, rows: p.rows },
                });
            }
        }
        Ok(out)
    }

    /// Applies schema rows from another node and follows them: reload, engine tables,
    /// prepared statements, events. Returns what changed.
    pub fn merge_schema(&self, mutations: Vec<Mutation>) -> Result<Vec<SchemaChange>> {
        let schema_tables: Vec<_> = self
            .schema()
            .keyspace(system::SYSTEM_SCHEMA)
            .map(|k| k.tables.values().map(|t| t.id).collect())
            .unwrap_or_default();
        if let Some(m) = mutations.iter().find(|m| !schema_tables.contains(&m.table)) {
            return Err(Error::invalid(format!(
                "schema push names a table outside system_schema: {}",
                m.table
            )));
        }
        let _ddl = self.ddl_lock();
        let old = self.schema();
        for m in &mutations {
            self.observe_timestamp(newest_timestamp(&m.update));
        }
        self.apply_internal(mutations)?;
        let changes = self.reload_schema_locked(&old)?;
        for c in &changes {
            self.invalidate_prepared(c);
            self.notify(c);
        }
        if !changes.is_empty() {
            tracing::info!(changes = changes.len(), version = %self.schema().version(), "merged schema from a peer");
        }
        Ok(changes)
    }

    /// Rebuilds the schema from the schema tables (the caller holds the DDL lock), makes the
    /// engine's tables match, and says what changed since `old`.
    pub(crate) fn reload_schema_locked(&self, old: &Schema) -> Result<Vec<SchemaChange>> {
        let now = self.clock().now_seconds();
        let mut all = system::keyspaces();
        all.extend(persist::load(self.engine(), now)?);
        let new = Schema::new(all);
        let engine = self.engine();
        let existing: Vec<_> = engine.tables().iter().map(|t| t.id).collect();
        let current: std::collections::HashMap<_, _> =
            engine.tables().into_iter().map(|t| (t.id, t)).collect();
        for ks in new.keyspaces().values() {
            for t in ks.tables.values() {
                match current.get(&t.id) {
                    None => engine.create_table(ddl::engine_options(t))?,
                    Some(had) => {
                        // ALTER TABLE WITH (here or on a peer) reaches the engine: compaction,
                        // gc_grace_seconds, bloom filter and compression settings.
                        let mut wanted = ddl::engine_options(t);
                        wanted.truncated_at = had.truncated_at;
                        wanted.memtable_flush_size_bytes = had.memtable_flush_size_bytes;
                        wanted.row_index_block_bytes = had.row_index_block_bytes;
                        if wanted != *had {
                            engine.alter_table(wanted)?;
                        }
                    }
                }
            }
        }
        self.set_schema(new.clone());
        for id in existing {
            if new.table_by_id(id).is_none() {
                engine.drop_table(id)?;
            }
        }
        if old.version() != new.version() {
            ddl::write_local(self)?;
        }
        Ok(diff(old, &new))
    }

    /// Reloads the schema from its tables (after a local DDL statement), so every node derives
    /// its schema version from the same rows.
    pub(crate) fn reload_schema(&self) -> Result<()> {
        let _ddl = self.ddl_lock();
        let old = self.schema();
        self.reload_schema_locked(&old)?;
        Ok(())
    }

    /// Sends the schema to every live node after a local change.
    pub(crate) fn announce_schema(&self) {
        if let Err(e) = self.reload_schema() {
            tracing::error!(error = %e, "cannot reload the schema after a change");
        }
        let Some(cluster) = self.cluster() else { return };
        match self.schema_mutations() {
            Ok(m) => cluster.announce_schema(&m),
            Err(e) => tracing::error!(error = %e, "cannot export the schema to announce it"),
        }
    }

    /// Writes another node's rows in `system.peers` and `system.peers_v2`.
    pub fn write_peer(&self, peer: &PeerInfo) -> Result<()> {
        let schema = self.schema();
        let now = self.clock().now_seconds();
        let wt = WriteTime { timestamp: self.next_timestamp(), ttl: 0, now_seconds: now };
        let ip = peer.endpoint.0.ip();
        let text = |s: &str| Some(Value::Text(s.to_string()));
        let mut tokens: Vec<String> = peer.tokens.iter().map(i64::to_string).collect();
        tokens.sort();
        tokens.dedup();
        let tokens = Some(Value::Set(tokens.into_iter().map(Value::Text).collect()));
        let rpc = peer.rpc_address.map(Value::Inet);
        let mut mutations = Vec::new();
        if let Some(t) = schema.table(system::SYSTEM, "peers") {
            mutations.push(persist::insert_row(
                t,
                &[
                    ("peer", Some(Value::Inet(ip))),
                    ("data_center", text(&peer.location.dc)),
                    ("host_id", peer.host_id.map(Value::Uuid)),
                    ("preferred_ip", Some(Value::Inet(ip))),
                    ("rack", text(&peer.location.rack)),
                    ("release_version", peer.release_version.as_deref().and_then(text)),
                    ("rpc_address", rpc.clone()),
                    ("schema_version", peer.schema_version.map(Value::Uuid)),
                    ("tokens", tokens.clone()),
                ],
                wt,
            )?);
        }
        if let Some(t) = schema.table(system::SYSTEM, "peers_v2") {
            let port = Some(Value::Int(i32::from(peer.endpoint.0.port())));
            mutations.push(persist::insert_row(
                t,
                &[
                    ("peer", Some(Value::Inet(ip))),
                    ("peer_port", port.clone()),
                    ("data_center", text(&peer.location.dc)),
                    ("host_id", peer.host_id.map(Value::Uuid)),
                    ("native_address", rpc),
                    ("native_port", peer.native_port.map(|p| Value::Int(i32::from(p)))),
                    ("preferred_ip", Some(Value::Inet(ip))),
                    ("preferred_port", port),
                    ("rack", text(&peer.location.rack)),
                    ("release_version", peer.release_version.as_deref().and_then(text)),
                    ("schema_version", peer.schema_version.map(Value::Uuid)),
                    ("tokens", tokens),
                ],
                wt,
            )?);
        }
        self.apply_internal(mutations)
    }
}

impl Executor {
    /// Deletes another node's rows in `system.peers` and `system.peers_v2` (it left the ring).
    pub fn delete_peer(&self, peer: &PeerInfo) -> Result<()> {
        let schema = self.schema();
        let now = self.clock().now_seconds();
        let deletion = sibyl_engine::DeletionTime::new(self.next_timestamp(), now);
        let ip = Bytes::from(crate::types::encode(&Value::Inet(peer.endpoint.0.ip())));
        let mut mutations = Vec::new();
        for name in ["peers", "peers_v2"] {
            if let Some(t) = schema.table(system::SYSTEM, name) {
                let key = crate::rows::partition_key(t, std::slice::from_ref(&ip))?;
                let mut update = PartitionUpdate::new(key);
                update.header.deletion = deletion;
                mutations.push(Mutation { table: t.id, update });
            }
        }
        self.apply_internal(mutations)
    }
}

fn newest_timestamp(u: &PartitionUpdate) -> i64 {
    let rows = u.rows.iter().chain(u.header.static_row.iter());
    let cells = rows.clone().flat_map(|r| r.cells.iter().map(|c| c.timestamp));
    let markers = rows.map(|r| r.liveness.timestamp.max(r.deletion.marked_for_delete_at));
    cells.chain(markers).fold(u.header.deletion.marked_for_delete_at, i64::max)
}

/// What changed between two schemas, as SCHEMA_CHANGE events.
fn diff(old: &Schema, new: &Schema) -> Vec<SchemaChange> {
    let change = |kind, ks: &str, table: Option<&str>| SchemaChange {
        change: kind,
        keyspace: ks.to_string(),
        table: table.map(str::to_string),
    };
    let mut out = Vec::new();
    let user = |s: &Schema| -> BTreeMap<String, _> {
        s.keyspaces()
            .iter()
            .filter(|(k, _)| !is_system_keyspace(k))
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    };
    let (o, n) = (user(old), user(new));
    for (name, ks) in &n {
        match o.get(name) {
            None => {
                out.push(change(SchemaChangeKind::Created, name, None));
                for t in ks.tables.keys() {
                    out.push(change(SchemaChangeKind::Created, name, Some(t)));
                }
            }
            Some(before) => {
                if format!("{:?}", before.params) != format!("{:?}", ks.params) {
                    out.push(change(SchemaChangeKind::Updated, name, None));
                }
                for (t, meta) in &ks.tables {
                    match before.tables.get(t) {
                        None => out.push(change(SchemaChangeKind::Created, name, Some(t))),
                        Some(b) if format!("{b:?}") != format!("{meta:?}") => {
                            out.push(change(SchemaChangeKind::Updated, name, Some(t)));
                        }
                        Some(_) => {}
                    }
                }
                for t in before.tables.keys().filter(|t| !ks.tables.contains_key(*t)) {
                    out.push(change(SchemaChangeKind::Dropped, name, Some(t)));
                }
            }
        }
    }
    for name in o.keys().filter(|k| !n.contains_key(*k)) {
        out.push(change(SchemaChangeKind::Dropped, name, None));
    }
    out
}

enum PeerJob {
    Changed(PeerInfo),
    Status(PeerInfo, bool),
    Removed(PeerInfo),
}

/// The CQL layer's side of the cluster: schema exchange, peers rows and client events.
#[derive(Debug)]
pub struct NodeHooks {
    exec: Weak<Executor>,
    jobs: SyncSender<PeerJob>,
}

impl std::fmt::Debug for PeerJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerJob::Changed(p) => write!(f, "Changed({})", p.endpoint),
            PeerJob::Status(p, up) => write!(f, "Status({}, {up})", p.endpoint),
            PeerJob::Removed(p) => write!(f, "Removed({})", p.endpoint),
        }
    }
}

impl NodeHooks {
    /// Hooks for `exec`, publishing client events on `events`. Starts the peers worker.
    pub fn new(exec: &Arc<Executor>, events: EventBus) -> std::io::Result<Arc<NodeHooks>> {
        let (jobs, rx) = sync_channel::<PeerJob>(PEER_QUEUE);
        let weak = Arc::downgrade(exec);
        std::thread::Builder::new().name("peers".into()).spawn(move || {
            let mut known = std::collections::HashSet::new();
            while let Ok(job) = rx.recv() {
                let Some(exec) = weak.upgrade() else { break };
                match job {
                    PeerJob::Changed(p) => {
                        // Like Cassandra, only ring members get peers rows: drivers ignore a
                        // row without tokens, and would then never look at the node again.
                        if !is_member(&p) {
                            continue;
                        }
                        if let Err(e) = exec.write_peer(&p) {
                            tracing::error!(peer = %p.endpoint, error = %e, "cannot write system.peers");
                        }
                        // Drivers read system.peers on connect; later arrivals are announced.
                        if let (true, Some(addr)) = (known.insert(p.endpoint), native_address(&p)) {
                            events.publish(Event::TopologyChange {
                                change: TopologyChangeType::NewNode,
                                address: addr,
                            });
                        }
                    }
                    PeerJob::Removed(p) => {
                        if let Err(e) = exec.delete_peer(&p) {
                            tracing::error!(peer = %p.endpoint, error = %e, "cannot delete from system.peers");
                        }
                        known.remove(&p.endpoint);
                        if let Some(addr) = native_address(&p) {
                            events.publish(Event::TopologyChange {
                                change: TopologyChangeType::RemovedNode,
                                address: addr,
                            });
                        }
                    }
                    PeerJob::Status(p, up) => {
                        if let Some(addr) = native_address(&p) {
                            let change = if up { StatusChangeType::Up } else { StatusChangeType::Down };
                            events.publish(Event::StatusChange { change, address: addr });
                        }
                    }
                }
            }
        })?;
        Ok(Arc::new(NodeHooks { exec: Arc::downgrade(exec), jobs }))
    }

    fn exec(&self) -> std::result::Result<Arc<Executor>, String> {
        self.exec.upgrade().ok_or_else(|| "the node is shutting down".to_string())
    }

    fn enqueue(&self, job: PeerJob) {
        if let Err(TrySendError::Full(job)) = self.jobs.try_send(job) {
            tracing::warn!(?job, "peer update queue full; dropping an update");
        }
    }
}

/// A node that serves its ranges: NORMAL or LEAVING, with tokens.
fn is_member(p: &PeerInfo) -> bool {
    use sibyl_cluster::service::RingStatus;
    !p.tokens.is_empty() && matches!(RingStatus::parse(&p.status), RingStatus::Normal | RingStatus::Leaving)
}

fn native_address(p: &PeerInfo) -> Option<std::net::SocketAddr> {
    Some(std::net::SocketAddr::new(p.rpc_address?, p.native_port?))
}

impl ClusterHooks for NodeHooks {
    fn schema_version(&self) -> Uuid {
        self.exec.upgrade().map(|e| e.schema().version()).unwrap_or_default()
    }

    fn schema_mutations(&self) -> std::result::Result<Vec<Mutation>, String> {
        self.exec()?.schema_mutations().map_err(|e| e.to_string())
    }

    fn merge_schema(&self, mutations: Vec<Mutation>) -> std::result::Result<(), String> {
        self.exec()?.merge_schema(mutations).map(|_| ()).map_err(|e| e.to_string())
    }

    fn peer_changed(&self, peer: &PeerInfo) {
        self.enqueue(PeerJob::Changed(peer.clone()));
    }

    fn peer_status(&self, peer: &PeerInfo, up: bool) {
        self.enqueue(PeerJob::Status(peer.clone(), up));
    }

    fn peer_removed(&self, peer: &PeerInfo) {
        self.enqueue(PeerJob::Removed(peer.clone()));
    }
}
