//! Three in-process nodes (real engines, real sockets on 127.0.0.1) driven through their
//! coordinators: quorum reads see quorum writes from any coordinator, a replica that missed a
//! write is repaired by a read at ALL, and replicas that do not answer give WriteTimeout with
//! the counts the protocol reports.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use sibyl_cluster::messaging::{FilterAction, FilterContext};
use sibyl_cluster::ring::random_tokens;
use sibyl_cluster::{
    ClusterConfig, ClusterHooks, ClusterService, ConsistencyLevel, Coordinator, Endpoint, Error, Location,
    PeerInfo, ReplicationStrategy, Timeouts, WriteType,
};
use sibyl_engine::{
    Cell, ColumnId, Engine, EngineOptions, Mutation, PartitionUpdate, ReadCommand, Row, TableId, TableOptions,
};

#[derive(Debug)]
struct NoSchema;

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

const TABLE: TableId = TableId(uuid::Uuid::from_u128(42));

struct Node {
    engine: Arc<Engine>,
    coordinator: Arc<Coordinator>,
    service: ClusterService,
    _dir: tempfile::TempDir,
}

fn free_endpoint() -> Endpoint {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    Endpoint(l.local_addr().unwrap())
}

fn start_cluster(rt: &tokio::runtime::Runtime, n: usize, timeouts: Timeouts) -> Vec<Node> {
    let endpoints: Vec<Endpoint> = (0..n).map(|_| free_endpoint()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut taken = BTreeSet::new();
    let mut nodes = Vec::new();
    for (i, ep) in endpoints.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open(EngineOptions::new(dir.path())).unwrap());
        engine.create_table(TableOptions::new(TABLE, "ks", "t")).unwrap();
        let tokens = random_tokens(8, &mut rng, &taken);
        taken.extend(tokens.iter().copied());
        let storage: Arc<dyn sibyl_cluster::Storage> = Arc::clone(&engine) as _;
        let coordinator = Arc::new(Coordinator::new(*ep, Location::default(), &tokens, storage, timeouts));
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
        };
        let service =
            rt.block_on(ClusterService::start(config, Arc::clone(&coordinator), Arc::new(NoSchema))).unwrap();
        nodes.push(Node { engine, coordinator, service, _dir: dir });
    }
    let start = Instant::now();
    while !nodes.iter().all(|n| {
        n.coordinator.view().live.len() == n_nodes(&nodes)
            && n.coordinator.view().ring.endpoints().len() == n_nodes(&nodes)
    }) {
        assert!(start.elapsed() < Duration::from_secs(30), "gossip did not converge");
        std::thread::sleep(Duration::from_millis(50));
    }
    nodes
}

fn n_nodes(nodes: &[Node]) -> usize {
    nodes.len()
}

fn write(key: u32, value: &'static str, ts: i64) -> Mutation {
    let mut row = Row::new(sibyl_engine::clustering::empty_key());
    row.cells.push(Cell::live(ColumnId(1), ts, Bytes::from_static(value.as_bytes())));
    Mutation {
        table: TABLE,
        update: PartitionUpdate::new(Bytes::copy_from_slice(&key.to_be_bytes())).with_row(row),
    }
}

fn read_cmd(key: u32) -> ReadCommand {
    ReadCommand::partition(TABLE, Bytes::copy_from_slice(&key.to_be_bytes()), 1)
}

fn value(data: Option<sibyl_engine::PartitionData>) -> Option<Bytes> {
    data.and_then(|d| d.rows.first().and_then(|r| r.cells.first().map(|c| c.value.clone())))
}

fn rf3() -> ReplicationStrategy {
    ReplicationStrategy::Simple { replication_factor: 3 }
}

#[test]
fn quorum_reads_through_any_node_see_a_quorum_write() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nodes = start_cluster(&rt, 3, Timeouts::default());
    for k in 0..20 {
        nodes[0]
            .coordinator
            .write(&rf3(), vec![write(k, "v", 10)], ConsistencyLevel::Quorum, WriteType::Simple)
            .unwrap();
    }
    for node in &nodes[1..] {
        for k in 0..20 {
            let got = node.coordinator.read(&rf3(), &read_cmd(k), ConsistencyLevel::Quorum).unwrap();
            assert_eq!(value(got).as_deref(), Some(&b"v"[..]));
        }
    }
    // RF 3 on three nodes: every node holds every partition.
    for node in &nodes {
        assert!(node.engine.read(&read_cmd(3)).unwrap().is_some());
    }
    for n in &nodes {
        n.service.shutdown();
    }
}

#[test]
fn a_replica_that_missed_a_write_is_repaired_by_a_read_at_all() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nodes = start_cluster(&rt, 3, Timeouts::default());
    let lagging = nodes[2].coordinator.local();
    // Node 0's messages to node 2 are lost: the QUORUM write lands on nodes 0 and 1 only.
    nodes[0].service.messaging().set_filter(Some(Arc::new(move |c: &FilterContext| {
        if c.to == lagging && c.verb == sibyl_cluster::verbs::MUTATION {
            FilterAction::Drop
        } else {
            FilterAction::Deliver
        }
    })));
    nodes[0]
        .coordinator
        .write(&rf3(), vec![write(7, "new", 20)], ConsistencyLevel::Quorum, WriteType::Simple)
        .unwrap();
    assert!(nodes[2].engine.read(&read_cmd(7)).unwrap().is_none(), "node 2 must have missed the write");
    nodes[0].service.messaging().set_filter(None);

    let got = nodes[0].coordinator.read(&rf3(), &read_cmd(7), ConsistencyLevel::All).unwrap();
    assert_eq!(value(got).as_deref(), Some(&b"new"[..]));
    let stats = nodes[0].coordinator.stats();
    assert!(stats.digest_mismatches >= 1 && stats.read_repairs >= 1, "{stats:?}");
    // Blocking read repair: the answer came after node 2 acknowledged the repair.
    assert_eq!(value(nodes[2].engine.read(&read_cmd(7)).unwrap()).as_deref(), Some(&b"new"[..]));
    for n in &nodes {
        n.service.shutdown();
    }
}

#[test]
fn replicas_that_do_not_answer_give_a_write_timeout_with_received_and_block_for() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let timeouts = Timeouts { write: Duration::from_millis(300), ..Timeouts::default() };
    let nodes = start_cluster(&rt, 3, timeouts);
    nodes[0].service.messaging().set_filter(Some(Arc::new(|c: &FilterContext| {
        if c.verb == sibyl_cluster::verbs::MUTATION {
            FilterAction::Drop
        } else {
            FilterAction::Deliver
        }
    })));
    let started = Instant::now();
    let err = nodes[0]
        .coordinator
        .write(&rf3(), vec![write(1, "x", 5)], ConsistencyLevel::Quorum, WriteType::Simple)
        .unwrap_err();
    assert!(
        matches!(err, Error::WriteTimeout { received: 1, block_for: 2, write_type: WriteType::Simple, .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "the write must not wait past its timeout");
    // ONE is met by the coordinator's own replica.
    nodes[0]
        .coordinator
        .write(&rf3(), vec![write(1, "x", 6)], ConsistencyLevel::One, WriteType::Simple)
        .unwrap();
    for n in &nodes {
        n.service.shutdown();
    }
}
