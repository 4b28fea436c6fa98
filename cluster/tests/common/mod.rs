//! In-process nodes for the cluster tests: real engines, real sockets on 127.0.0.1, one table,
//! optional hints, and stop/restart of a node on the same data.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use sibyl_cluster::hints::{HintsConfig, HintsService};
use sibyl_cluster::messaging::{FilterAction, FilterContext, Verb};
use sibyl_cluster::ring::random_tokens;
use sibyl_cluster::{
    ClusterConfig, ClusterHooks, ClusterService, Coordinator, Endpoint, Location, PeerInfo,
    ReplicationStrategy, Storage, Timeouts,
};
use sibyl_engine::{
    Cell, ColumnId, Engine, EngineOptions, Mutation, PartitionUpdate, ReadCommand, Row, SystemClock, TableId,
    TableOptions,
};

/// Hooks of a cluster without a schema layer.
#[derive(Debug)]
pub struct NoSchema;

impl ClusterHooks for NoSchema {
    fn schema_version(&self) -> uuid::Uuid {
        uuid::Uuid::from_u128(1)
    }
    fn schema_mutations(&self) -> Result<Vec<Mutation>, String> {
        Ok(Vec::new())
    }
    fn merge_schema(&self, _: Vec<Mutation>) -> Result<(), String> {
        Ok(())
    }
    fn peer_changed(&self, _: &PeerInfo) {}
    fn peer_status(&self, _: &PeerInfo, _: bool) {}
}

/// The one table every node has.
pub const TABLE: TableId = TableId(uuid::Uuid::from_u128(42));

/// One in-process node.
pub struct Node {
    pub engine: Arc<Engine>,
    pub coordinator: Arc<Coordinator>,
    pub service: ClusterService,
    pub config: ClusterConfig,
    pub dir: tempfile::TempDir,
    storage: Arc<dyn Storage>,
    hints: Option<HintsConfig>,
    timeouts: Timeouts,
}

impl Node {
    /// The node's hints service (when the cluster was started with hints).
    pub fn hints(&self) -> &Arc<HintsService> {
        self.coordinator.hints().expect("started with hints")
    }

    /// Stops the node's messaging and gossip (its data stays open), as a killed process.
    pub fn stop(&self, rt: &tokio::runtime::Runtime) {
        self.service.shutdown();
        rt.block_on(self.service.messaging().wait_stopped());
    }

    /// Starts the node again on the same endpoint and data, with a new gossip generation.
    pub fn restart(&mut self, rt: &tokio::runtime::Runtime) {
        self.config.generation += 1;
        self.coordinator =
            new_coordinator(&self.config, Arc::clone(&self.storage), self.timeouts, self.hints.clone());
        self.service = rt
            .block_on(ClusterService::start(
                self.config.clone(),
                Arc::clone(&self.coordinator),
                Arc::new(NoSchema),
            ))
            .unwrap();
    }
}

pub fn free_endpoint() -> Endpoint {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    Endpoint(l.local_addr().unwrap())
}

fn new_coordinator(
    config: &ClusterConfig,
    storage: Arc<dyn Storage>,
    timeouts: Timeouts,
    hints: Option<HintsConfig>,
) -> Arc<Coordinator> {
    let c = Arc::new(Coordinator::new(config.local, Location::default(), &config.tokens, storage, timeouts));
    if let Some(h) = hints {
        c.attach_hints(HintsService::open(h, Arc::new(SystemClock)).unwrap());
    }
    c
}

pub fn start_cluster(rt: &tokio::runtime::Runtime, n: usize, timeouts: Timeouts) -> Vec<Node> {
    start_cluster_with(rt, n, timeouts, |engine| engine as _, None)
}

/// Starts `n` nodes; `storage_of` wraps each engine; `hints`, given a node's hints directory,
/// gives its hints settings (no hints when `None`).
pub fn start_cluster_with(
    rt: &tokio::runtime::Runtime,
    n: usize,
    timeouts: Timeouts,
    storage_of: impl Fn(Arc<Engine>) -> Arc<dyn Storage>,
    hints: Option<&dyn Fn(PathBuf) -> HintsConfig>,
) -> Vec<Node> {
    let endpoints: Vec<Endpoint> = (0..n).map(|_| free_endpoint()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut taken = BTreeSet::new();
    let mut nodes = Vec::new();
    for (i, ep) in endpoints.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open(EngineOptions::new(&dir.path().join("data"))).unwrap());
        engine.create_table(TableOptions::new(TABLE, "ks", "t")).unwrap();
        let tokens = random_tokens(8, &mut rng, &taken);
        taken.extend(tokens.iter().copied());
        let storage = storage_of(Arc::clone(&engine));
        let hints = hints.map(|h| h(dir.path().join("hints")));
        let config = ClusterConfig {
            cluster_name: "test".into(),
            local: *ep,
            location: Location::default(),
            seeds: vec![endpoints[0]],
            phi_convict_threshold: 8.0,
            host_id: uuid::Uuid::from_u128(100 + i as u128),
            tokens,
            rpc_address: ep.0.ip(),
            native_port: 9042,
            release_version: "4.0.11".into(),
            generation: 1,
            normal: true,
            stream_throughput_bytes_per_sec: 0,
        };
        let coordinator = new_coordinator(&config, Arc::clone(&storage), timeouts, hints.clone());
        let service = rt
            .block_on(ClusterService::start(config.clone(), Arc::clone(&coordinator), Arc::new(NoSchema)))
            .unwrap();
        nodes.push(Node { engine, coordinator, service, config, dir, storage, hints, timeouts });
    }
    wait_until(Duration::from_secs(30), "gossip to converge", || all_see_all(&nodes));
    nodes
}

/// Drops every message `from` sends to `to` with `verb` (one verb of one link cut), replacing
/// any filter `from` had.
pub fn drop_verb_to(from: &Node, to: Endpoint, verb: Verb) {
    from.service.messaging().set_filter(Some(Arc::new(move |c: &FilterContext| {
        if c.to == to && c.verb == verb {
            FilterAction::Drop
        } else {
            FilterAction::Deliver
        }
    })));
}

/// Whether every node sees every node alive and in the ring.
pub fn all_see_all(nodes: &[Node]) -> bool {
    nodes.iter().all(|n| {
        let v = n.coordinator.view();
        v.live.len() == nodes.len() && v.ring.endpoints().len() == nodes.len()
    })
}

/// Polls `done` every 50 ms until it holds; fails the test after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn write(key: u32, value: &'static str, ts: i64) -> Mutation {
    let mut row = Row::new(sibyl_engine::clustering::empty_key());
    row.cells.push(Cell::live(ColumnId(1), ts, Bytes::from_static(value.as_bytes())));
    Mutation {
        table: TABLE,
        update: PartitionUpdate::new(Bytes::copy_from_slice(&key.to_be_bytes())).with_row(row),
    }
}

pub fn read_cmd(key: u32) -> ReadCommand {
    ReadCommand::partition(TABLE, Bytes::copy_from_slice(&key.to_be_bytes()), 1)
}

pub fn value(data: Option<sibyl_engine::PartitionData>) -> Option<Bytes> {
    data.and_then(|d| d.rows.first().and_then(|r| r.cells.first().map(|c| c.value.clone())))
}

pub fn simple(rf: usize) -> ReplicationStrategy {
    ReplicationStrategy::Simple { replication_factor: rf }
}
