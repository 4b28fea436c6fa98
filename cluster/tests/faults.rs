//! Fault tests of issue 6 between in-process nodes (real engines, real sockets, links cut with
//! the messaging filter hook):
//! - read repair: 10,000 writes at ONE while a replica is cut off (no hints); QUORUM reads of
//!   every key bring the lagging replica up to date by themselves;
//! - partitions: writers and readers at QUORUM through every node while random partitions come
//!   and go; a checker finds no stale read, and after heal and repair a read at ALL returns every
//!   acknowledged write.
//!
//! Randomized tests print their seed; `SIBYL_SEED=<n>` replays one.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{
    all_see_all, drop_verb_to, read_cmd, simple, start_cluster, value, wait_until, write, Node, TABLE,
};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use sibyl_cluster::messaging::{FilterAction, FilterContext};
use sibyl_cluster::repair::{RepairRequest, RepairScope, RepairService, RepairState};
use sibyl_cluster::{verbs, ConsistencyLevel, Endpoint, Error, ReadPolicy, Timeouts, WriteType};
use sibyl_engine::{Cell, ColumnId, Mutation, PartitionUpdate, Row};

fn seed() -> u64 {
    let seed = std::env::var("SIBYL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("seed {seed} (SIBYL_SEED={seed} replays it)");
    seed
}

#[test]
fn quorum_reads_repair_a_replica_that_missed_ten_thousand_writes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nodes = start_cluster(&rt, 3, Timeouts::default());
    let rf3 = simple(3);
    let lagging = nodes[2].coordinator.local();
    // Node 2 is cut off from the writes (hints are off in this cluster).
    drop_verb_to(&nodes[0], lagging, verbs::MUTATION);
    let c0 = &nodes[0].coordinator;
    for k in 0..10_000u32 {
        c0.write(&rf3, vec![write(k, "v", 10)], ConsistencyLevel::One, WriteType::Simple).unwrap();
        if k % 200 == 199 {
            // A write at ONE returns once node 0 applied it, so nothing slows the writer down;
            // let node 1 keep up instead of having its copies shed by the bounded outbound queue
            // (with hints off they would be lost, and QUORUM reads could rightly miss them).
            wait_until(Duration::from_secs(10), "node 1 to keep up", || {
                nodes[1].engine.read(&read_cmd(k)).unwrap().is_some()
            });
        }
    }
    nodes[0].service.messaging().set_filter(None);
    assert!(nodes[2].engine.read(&read_cmd(9_999)).unwrap().is_none(), "node 2 must have missed the writes");
    // Until node 1 has them all, a QUORUM read may rightly miss a write (ONE + QUORUM do not
    // overlap at RF 3).
    wait_until(Duration::from_secs(30), "node 1 to apply every write", || {
        (0..10_000u32).all(|k| nodes[1].engine.read(&read_cmd(k)).unwrap().is_some())
    });

    // QUORUM reads of every key, coordinated by the lagging node: it reads its own replica first,
    // so every read compares it with another replica. (Through node 0 or 1 a QUORUM read may ask
    // the two up-to-date replicas only and repair nothing, which is just as correct.)
    let c2 = &nodes[2].coordinator;
    let keys: Vec<u32> = (0..10_000).collect();
    for chunk in keys.chunks(500) {
        let cmds: Vec<_> = chunk.iter().map(|k| read_cmd(*k)).collect();
        for (k, answer) in
            chunk.iter().zip(c2.read_many(&rf3, &cmds, ConsistencyLevel::Quorum, ReadPolicy::default()))
        {
            assert_eq!(value(answer.unwrap()).as_deref(), Some(&b"v"[..]), "QUORUM read of key {k}");
        }
    }
    let stats = c2.stats();
    println!(
        "QUORUM reads: {} digest mismatches, {} read repairs",
        stats.digest_mismatches, stats.read_repairs
    );
    assert_eq!(stats.read_repairs, 10_000, "{stats:?}");
    // The lagging replica alone now returns every key.
    for k in 0..10_000u32 {
        assert_eq!(value(nodes[2].engine.read(&read_cmd(k)).unwrap()).as_deref(), Some(&b"v"[..]), "key {k}");
    }
    for n in &nodes {
        n.service.shutdown();
    }
}

/// The value written is the write's timestamp, so a read says which write it saw.
fn versioned(key: u32, ts: i64) -> Mutation {
    let mut row = Row::new(sibyl_engine::clustering::empty_key());
    row.cells.push(Cell::live(ColumnId(1), ts, Bytes::copy_from_slice(&ts.to_be_bytes())));
    Mutation {
        table: TABLE,
        update: PartitionUpdate::new(Bytes::copy_from_slice(&key.to_be_bytes())).with_row(row),
    }
}

fn ts_of(data: Option<sibyl_engine::PartitionData>) -> i64 {
    value(data).map_or(0, |v| i64::from_be_bytes(v[..8].try_into().unwrap()))
}

/// Cuts every link between `side` and the other nodes, both ways (gossip included), or heals
/// them all when `side` is empty.
fn partition(nodes: &[Node], side: &HashSet<usize>) {
    let eps: Vec<Endpoint> = nodes.iter().map(|n| n.coordinator.local()).collect();
    for (i, n) in nodes.iter().enumerate() {
        if side.is_empty() {
            n.service.messaging().set_filter(None);
            continue;
        }
        let mine = side.contains(&i);
        let cut: HashSet<Endpoint> =
            (0..nodes.len()).filter(|j| side.contains(j) != mine).map(|j| eps[j]).collect();
        n.service.messaging().set_filter(Some(Arc::new(move |c: &FilterContext| {
            if cut.contains(&c.to) {
                FilterAction::Drop
            } else {
                FilterAction::Deliver
            }
        })));
    }
}

/// Per key: (timestamp, acknowledged at) of every acknowledged write.
type Acked = BTreeMap<u32, Vec<(i64, Instant)>>;

#[derive(Debug, Default)]
struct Figures {
    writes_ok: u64,
    reads_ok: u64,
    failures: BTreeMap<&'static str, u64>,
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::Unavailable { .. } => "Unavailable",
        Error::WriteTimeout { .. } => "WriteTimeout",
        Error::ReadTimeout { .. } => "ReadTimeout",
        Error::Failure { reason, .. } => {
            println!("replica failure: {reason}");
            "Failure"
        }
        Error::Overloaded(_) => "Overloaded",
        other => {
            println!("unexpected failure: {other}");
            "other"
        }
    }
}

#[test]
fn quorum_stays_consistent_through_random_partitions_and_repair_restores_every_write() {
    let seed = seed();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let timeouts = Timeouts {
        write: Duration::from_millis(300),
        read: Duration::from_millis(300),
        range: Duration::from_secs(2),
    };
    let nodes = Arc::new(start_cluster(&rt, 3, timeouts));
    let rf3 = simple(3);
    // Enough keys that read repair alone does not converge them all before the repair.
    const KEYS: u32 = 1_000;
    let clock = Arc::new(AtomicI64::new(1));
    let acked: Arc<Mutex<Acked>> = Arc::default();
    // Per read: (key, started-at, timestamp seen).
    let reads: Arc<Mutex<Vec<(u32, Instant, i64)>>> = Arc::default();
    let figures: Arc<Mutex<Figures>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (nodes, clock, acked, reads, figures, stop, rf3) = (
            Arc::clone(&nodes),
            Arc::clone(&clock),
            Arc::clone(&acked),
            Arc::clone(&reads),
            Arc::clone(&figures),
            Arc::clone(&stop),
            rf3.clone(),
        );
        workers.push(std::thread::spawn(move || {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (w + 1));
            while !stop.load(Ordering::Relaxed) {
                let key = rng.random_range(0..KEYS);
                let node = &nodes[rng.random_range(0..nodes.len())];
                if w % 2 == 0 {
                    let ts = clock.fetch_add(1, Ordering::SeqCst);
                    let r = node.coordinator.write(
                        &rf3,
                        vec![versioned(key, ts)],
                        ConsistencyLevel::Quorum,
                        WriteType::Simple,
                    );
                    match r {
                        Ok(()) => {
                            acked.lock().entry(key).or_default().push((ts, Instant::now()));
                            figures.lock().writes_ok += 1;
                        }
                        Err(e) => *figures.lock().failures.entry(kind(&e)).or_default() += 1,
                    }
                } else {
                    let started = Instant::now();
                    match node.coordinator.read(
                        &rf3,
                        &read_cmd(key),
                        ConsistencyLevel::Quorum,
                        ReadPolicy::default(),
                    ) {
                        Ok(d) => {
                            reads.lock().push((key, started, ts_of(d)));
                            figures.lock().reads_ok += 1;
                        }
                        Err(e) => *figures.lock().failures.entry(kind(&e)).or_default() += 1,
                    }
                }
            }
        }));
    }

    // Random partitions and heals for a bounded time.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut partitions = 0;
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let cut = rng.random_range(0..nodes.len());
        partition(&nodes, &HashSet::from([cut]));
        partitions += 1;
        std::thread::sleep(Duration::from_millis(rng.random_range(300..1500)));
        partition(&nodes, &HashSet::new());
        std::thread::sleep(Duration::from_millis(rng.random_range(200..800)));
    }
    // The load ends during a last partition, so the cut node misses the last writes of many
    // keys and only the repair can bring them.
    partition(&nodes, &HashSet::from([rng.random_range(0..nodes.len())]));
    partitions += 1;
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    partition(&nodes, &HashSet::new());

    // The checker: a read returns a write at least as new as every write acknowledged before
    // the read began.
    let acked = acked.lock().clone();
    let mut stale = 0;
    for (key, started, seen) in reads.lock().iter() {
        let newest_before =
            acked.get(key).into_iter().flatten().filter(|(_, at)| at < started).map(|(ts, _)| *ts).max();
        if newest_before.is_some_and(|ts| *seen < ts) {
            stale += 1;
            println!("stale read of key {key}: saw {seen}, acknowledged before it began: {newest_before:?}");
        }
    }

    // Heal, repair, then every acknowledged write is there at ALL.
    wait_until(Duration::from_secs(60), "every node to see every node after the heal", || {
        all_see_all(&nodes)
    });
    let service = RepairService::new(Arc::clone(&nodes[0].coordinator));
    let id = service
        .start(RepairRequest {
            keyspace: "ks".into(),
            strategy: rf3.clone(),
            tables: vec![("t".into(), TABLE)],
            scope: RepairScope::All,
        })
        .unwrap();
    wait_until(Duration::from_secs(60), "the repair", || {
        service.session(id).unwrap().state != RepairState::Running
    });
    let repair = service.session(id).unwrap();
    assert_eq!(repair.state, RepairState::Succeeded, "{:?}", repair.events);
    let mut lost = 0;
    for (key, writes) in &acked {
        let newest = writes.iter().map(|(ts, _)| *ts).max().unwrap_or(0);
        let got = ts_of(
            nodes[1]
                .coordinator
                .read(&rf3, &read_cmd(*key), ConsistencyLevel::All, ReadPolicy::default())
                .unwrap(),
        );
        // Every replica alone holds it too, after the repair.
        for n in nodes.iter() {
            let own = ts_of(n.engine.read(&read_cmd(*key)).unwrap());
            if own < newest {
                lost += 1;
                println!("key {key}: {} holds {own}, newest acknowledged {newest}", n.coordinator.local());
            }
        }
        if got < newest {
            lost += 1;
        }
    }
    let f = figures.lock();
    println!(
        "partitions {partitions}; writes acknowledged {}, reads {}, failures {:?}; stale reads {stale}; lost acknowledged writes {lost}; repair repaired {} partitions",
        f.writes_ok, f.reads_ok, f.failures, repair.partitions_repaired
    );
    assert!(f.writes_ok > 100 && f.reads_ok > 100, "too little work to mean anything: {f:?}");
    assert_eq!(stale, 0, "stale reads");
    assert_eq!(lost, 0, "lost acknowledged writes");
    assert!(repair.partitions_repaired > 0, "the last partition left nothing for the repair to do");
    for n in nodes.iter() {
        n.service.shutdown();
    }
}
