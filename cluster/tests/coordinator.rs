//! Three in-process nodes (real engines, real sockets on 127.0.0.1) driven through their
//! coordinators: quorum reads see quorum writes from any coordinator, a replica that missed a
//! write is repaired by a read at ALL, and replicas that do not answer give WriteTimeout with
//! the counts the protocol reports.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{drop_verb_to, read_cmd, simple, start_cluster, start_cluster_with, value, write, TABLE};
use sibyl_cluster::messaging::{FilterAction, FilterContext};
use sibyl_cluster::{
    ConsistencyLevel, Error, ReadPolicy, ReadRepair, ReplicationStrategy, SpeculativeRetry, Timeouts,
    WriteType,
};
use sibyl_engine::{Engine, Mutation, ReadCommand, ScanCommand, ScanStart, Token};

/// Storage that takes 30 ms per read or scan and records the most it ever ran at once.
#[derive(Debug)]
struct SlowStorage {
    engine: Arc<Engine>,
    running: AtomicUsize,
    most: AtomicUsize,
}

impl SlowStorage {
    fn timed<T>(&self, f: impl FnOnce() -> T) -> T {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        let r = f();
        self.running.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

impl sibyl_cluster::Storage for SlowStorage {
    fn apply(&self, mutations: Vec<Mutation>) -> sibyl_engine::Result<()> {
        self.engine.apply_batch(mutations)
    }
    fn read(&self, cmd: &ReadCommand) -> sibyl_engine::Result<Option<sibyl_engine::PartitionData>> {
        self.timed(|| self.engine.read(cmd))
    }
    fn scan(&self, cmd: &ScanCommand) -> sibyl_engine::Result<Vec<sibyl_engine::PartitionData>> {
        self.timed(|| self.engine.scan(cmd))
    }
}

fn rf3() -> ReplicationStrategy {
    simple(3)
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
            let got = node
                .coordinator
                .read(&rf3(), &read_cmd(k), ConsistencyLevel::Quorum, ReadPolicy::default())
                .unwrap();
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
    drop_verb_to(&nodes[0], lagging, sibyl_cluster::verbs::MUTATION);
    nodes[0]
        .coordinator
        .write(&rf3(), vec![write(7, "new", 20)], ConsistencyLevel::Quorum, WriteType::Simple)
        .unwrap();
    assert!(nodes[2].engine.read(&read_cmd(7)).unwrap().is_none(), "node 2 must have missed the write");
    nodes[0].service.messaging().set_filter(None);

    let got = nodes[0]
        .coordinator
        .read(&rf3(), &read_cmd(7), ConsistencyLevel::All, ReadPolicy::default())
        .unwrap();
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

#[test]
fn in_reads_and_range_scans_fan_out_and_keep_their_order_and_limits() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let slow: Arc<parking_lot::Mutex<Vec<Arc<SlowStorage>>>> = Arc::default();
    let nodes = {
        let slow = Arc::clone(&slow);
        start_cluster_with(
            &rt,
            3,
            Timeouts::default(),
            move |engine| {
                let s =
                    Arc::new(SlowStorage { engine, running: AtomicUsize::new(0), most: AtomicUsize::new(0) });
                slow.lock().push(Arc::clone(&s));
                s as _
            },
            None,
        )
    };
    let slow = slow.lock().clone();
    let rf1 = ReplicationStrategy::Simple { replication_factor: 1 };
    let keys: Vec<u32> = (0..64).collect();
    let writes: Vec<Mutation> = keys.iter().map(|k| write(*k, "v", 10)).collect();
    for w in writes {
        nodes[0].coordinator.write(&rf1, vec![w], ConsistencyLevel::One, WriteType::Simple).unwrap();
    }

    // IN: answers in the order asked, missing partitions as None, reads overlapping.
    let cmds: Vec<ReadCommand> =
        (0..20u32).map(|k| read_cmd(if k % 5 == 4 { 1000 + k } else { k })).collect();
    let answers = nodes[0].coordinator.read_many(&rf1, &cmds, ConsistencyLevel::One, ReadPolicy::default());
    assert_eq!(answers.len(), 20);
    for (k, a) in (0..20u32).zip(answers) {
        let got = value(a.unwrap());
        if k % 5 == 4 {
            assert_eq!(got, None, "key {}", 1000 + k);
        } else {
            assert_eq!(got.as_deref(), Some(&b"v"[..]), "key {k}");
        }
    }
    let most: Vec<usize> = slow.iter().map(|s| s.most.load(Ordering::SeqCst)).collect();
    assert!(most.iter().any(|m| *m >= 2), "no node served two reads at once: {most:?}");

    // A full scan: every partition once, in token order; limits are exact.
    let scan = |partition_limit: usize, row_limit: usize| ScanCommand {
        table: TABLE,
        start: ScanStart::TokenInclusive(Token(i64::MIN)),
        end: Token(i64::MAX),
        slices: vec![sibyl_engine::Slice::all()],
        partition_limit,
        row_limit,
        now_seconds: 100,
    };
    for s in &slow {
        s.most.store(0, Ordering::SeqCst);
    }
    let all = nodes[1].coordinator.scan(&rf1, &scan(usize::MAX, usize::MAX), ConsistencyLevel::One).unwrap();
    let mut expected: Vec<Token> = keys.iter().map(|k| Token::of_key(&k.to_be_bytes())).collect();
    expected.sort();
    assert_eq!(all.iter().map(|p| p.key.token).collect::<Vec<_>>(), expected);
    let most: Vec<usize> = slow.iter().map(|s| s.most.load(Ordering::SeqCst)).collect();
    assert!(most.iter().any(|m| *m >= 2), "no node served two ring pieces at once: {most:?}");
    for limit in [1, 7, 33] {
        let some = nodes[2].coordinator.scan(&rf1, &scan(limit, usize::MAX), ConsistencyLevel::One).unwrap();
        assert_eq!(some.iter().map(|p| p.key.token).collect::<Vec<_>>(), expected[..limit]);
        let rows = nodes[2].coordinator.scan(&rf1, &scan(usize::MAX, limit), ConsistencyLevel::One).unwrap();
        assert_eq!(rows.iter().map(|p| p.key.token).collect::<Vec<_>>(), expected[..limit]);
    }

    // A node node 0 believes down owns a later piece of the ring: a scan whose LIMIT is met
    // before that piece succeeds; one that needs the piece is Unavailable.
    let c = &nodes[0].coordinator;
    let ring: Vec<i64> = c.view().ring.sorted_tokens();
    let owner = |t: i64| c.natural_replicas(&rf1, Token(t))[0];
    let first_owner = owner(ring[0]);
    let down =
        nodes.iter().map(|n| n.coordinator.local()).find(|e| *e != first_owner && *e != c.local()).unwrap();
    let first_down = ring.iter().position(|t| owner(*t) == down).unwrap();
    // Keys up to the token before the down node's first piece are all on live nodes.
    let reachable =
        if first_down == 0 { 0 } else { expected.iter().filter(|t| t.0 <= ring[first_down - 1]).count() };
    c.update_view(|v| {
        v.live.remove(&down);
    });
    assert!(reachable > 0, "the tokens (seed 7) put data before the down node's first piece");
    let some = c.scan(&rf1, &scan(reachable, usize::MAX), ConsistencyLevel::One).unwrap();
    assert_eq!(some.iter().map(|p| p.key.token).collect::<Vec<_>>(), expected[..reachable]);
    let err = c.scan(&rf1, &scan(usize::MAX, usize::MAX), ConsistencyLevel::One).unwrap_err();
    assert!(matches!(err, Error::Unavailable { required: 1, alive: 0, .. }), "{err:?}");
    for n in &nodes {
        n.service.shutdown();
    }
}

#[test]
fn read_repair_none_answers_the_merged_data_but_leaves_the_stale_replica_alone() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nodes = start_cluster(&rt, 3, Timeouts::default());
    let lagging = nodes[2].coordinator.local();
    drop_verb_to(&nodes[0], lagging, sibyl_cluster::verbs::MUTATION);
    nodes[0]
        .coordinator
        .write(&rf3(), vec![write(8, "new", 20)], ConsistencyLevel::Quorum, WriteType::Simple)
        .unwrap();
    nodes[0].service.messaging().set_filter(None);

    let none = ReadPolicy { read_repair: ReadRepair::None, ..ReadPolicy::default() };
    let got = nodes[0].coordinator.read(&rf3(), &read_cmd(8), ConsistencyLevel::All, none).unwrap();
    assert_eq!(value(got).as_deref(), Some(&b"new"[..]), "the answer is still the merged data");
    let stats = nodes[0].coordinator.stats();
    assert_eq!((stats.digest_mismatches, stats.read_repairs), (1, 0), "{stats:?}");
    assert!(nodes[2].engine.read(&read_cmd(8)).unwrap().is_none(), "NONE must not repair");

    // The same read with the default (BLOCKING) repairs it.
    nodes[0].coordinator.read(&rf3(), &read_cmd(8), ConsistencyLevel::All, ReadPolicy::default()).unwrap();
    assert_eq!(value(nodes[2].engine.read(&read_cmd(8)).unwrap()).as_deref(), Some(&b"new"[..]));
    for n in &nodes {
        n.service.shutdown();
    }
}

#[test]
fn speculative_retry_asks_another_replica_when_one_does_not_answer_and_none_does_not() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let timeouts = Timeouts { read: Duration::from_millis(400), ..Timeouts::default() };
    let nodes = start_cluster(&rt, 3, timeouts);
    nodes[0]
        .coordinator
        .write(&rf3(), vec![write(9, "v", 10)], ConsistencyLevel::All, WriteType::Simple)
        .unwrap();
    // Reads from node 0 to the first remote replica it contacts vanish (a replica that is
    // alive to gossip but does not answer reads). Contacts are chosen deterministically, so every
    // read of key 9 contacts that replica.
    let silent: Arc<std::sync::OnceLock<sibyl_cluster::Endpoint>> = Arc::default();
    let s = Arc::clone(&silent);
    nodes[0].service.messaging().set_filter(Some(Arc::new(move |c: &FilterContext| {
        if c.verb == sibyl_cluster::verbs::READ && *s.get_or_init(|| c.to) == c.to {
            FilterAction::Drop
        } else {
            FilterAction::Deliver
        }
    })));
    let c = &nodes[0].coordinator;
    let never = ReadPolicy { speculative_retry: SpeculativeRetry::Never, ..ReadPolicy::default() };
    let err = c.read(&rf3(), &read_cmd(9), ConsistencyLevel::Quorum, never).unwrap_err();
    assert!(matches!(err, Error::ReadTimeout { received: 1, block_for: 2, .. }), "{err:?}");
    assert_eq!(c.stats().speculative_retries, 0);

    let fixed = ReadPolicy {
        speculative_retry: SpeculativeRetry::Fixed(Duration::from_millis(20)),
        ..ReadPolicy::default()
    };
    let got = c.read(&rf3(), &read_cmd(9), ConsistencyLevel::Quorum, fixed).unwrap();
    assert_eq!(value(got).as_deref(), Some(&b"v"[..]));
    assert_eq!(c.stats().speculative_retries, 1);

    // The default (99th percentile) has no measurements for the table yet and waits half the
    // read timeout, which is still inside it.
    let got = c.read(&rf3(), &read_cmd(9), ConsistencyLevel::Quorum, ReadPolicy::default()).unwrap();
    assert_eq!(value(got).as_deref(), Some(&b"v"[..]));
    assert_eq!(c.stats().speculative_retries, 2);
    for n in &nodes {
        n.service.shutdown();
    }
}
