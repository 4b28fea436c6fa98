//! The batchlog between in-process nodes (real engines, real sockets): a logged batch is stored
//! on two other nodes and forgotten once applied; a batch whose coordinator dies after storing it
//! but before applying it is replayed in full by the nodes that hold it.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::{read_cmd, simple, start_cluster, value, wait_until, write, Node};
use sibyl_cluster::batchlog::{ApplyFn, Batchlog};
use sibyl_cluster::messaging::{FilterAction, FilterContext};
use sibyl_cluster::{verbs, ConsistencyLevel, Error, Timeouts, WriteType};
use sibyl_engine::Token;

/// Gives every node a batchlog replaying, every 100 ms, batches older than `min_age` at ONE.
fn attach_batchlogs(nodes: &[Node], min_age: Duration) {
    for n in nodes {
        let log = Batchlog::open(&n.dir.path().join("batchlog")).unwrap();
        n.coordinator.attach_batchlog(Arc::clone(&log));
        let c = Arc::clone(&n.coordinator);
        let apply: ApplyFn = Arc::new(move |m, _age| {
            c.write(&simple(1), m, ConsistencyLevel::One, WriteType::Batch).map_err(|e| e.to_string())
        });
        log.start_replay(apply, Duration::from_millis(100), min_age).unwrap();
    }
}

/// Keys whose only replica (RF 1) is not node 0.
fn keys_off(nodes: &[Node], n: usize) -> Vec<u32> {
    let c = &nodes[0].coordinator;
    (0..10_000u32)
        .filter(|k| c.natural_replicas(&simple(1), Token::of_key(&k.to_be_bytes()))[0] != c.local())
        .take(n)
        .collect()
}

fn holder(nodes: &[Node], key: u32) -> &Node {
    let ep = nodes[0].coordinator.natural_replicas(&simple(1), Token::of_key(&key.to_be_bytes()))[0];
    nodes.iter().find(|n| n.coordinator.local() == ep).unwrap()
}

#[test]
fn a_logged_batch_is_stored_on_two_other_nodes_and_forgotten_once_applied() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nodes = start_cluster(&rt, 3, Timeouts::default());
    attach_batchlogs(&nodes, Duration::from_secs(60));
    let batch: Vec<_> = (0..20u32).map(|k| write(k, "b", 10)).collect();
    nodes[0].coordinator.write_logged(vec![(simple(1), batch)], ConsistencyLevel::One).unwrap();
    for k in 0..20u32 {
        assert_eq!(value(holder(&nodes, k).engine.read(&read_cmd(k)).unwrap()).as_deref(), Some(&b"b"[..]));
    }
    let log = |n: &Node| Arc::clone(n.coordinator.batchlog().unwrap());
    assert_eq!(log(&nodes[0]).counters().stored.load(Ordering::Relaxed), 0, "not on the coordinator");
    for n in &nodes[1..] {
        assert_eq!(log(n).counters().stored.load(Ordering::Relaxed), 1);
        wait_until(Duration::from_secs(5), "the batch to be removed", || log(n).pending().is_empty());
        assert_eq!(log(n).counters().replayed.load(Ordering::Relaxed), 0);
    }
    // One partition: no batchlog at all.
    nodes[0]
        .coordinator
        .write_logged(vec![(simple(1), vec![write(1, "c", 11)])], ConsistencyLevel::One)
        .unwrap();
    assert_eq!(log(&nodes[1]).counters().stored.load(Ordering::Relaxed), 1);
    for n in &nodes {
        n.service.shutdown();
    }
}

#[test]
fn a_batch_whose_coordinator_dies_after_storing_it_is_replayed_in_full() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let timeouts = Timeouts { write: Duration::from_millis(300), ..Timeouts::default() };
    let nodes = start_cluster(&rt, 3, timeouts);
    attach_batchlogs(&nodes, Duration::from_millis(600));
    // Node 0 stores the batch, but none of its mutations (nor the removal) leave it: as if it
    // died right after the batchlog write.
    nodes[0].service.messaging().set_filter(Some(Arc::new(|c: &FilterContext| {
        if c.verb == verbs::MUTATION || c.verb == verbs::BATCH_REMOVE {
            FilterAction::Drop
        } else {
            FilterAction::Deliver
        }
    })));
    let keys = keys_off(&nodes, 30);
    let batch: Vec<_> = keys.iter().map(|k| write(*k, "all", 10)).collect();
    let err = nodes[0].coordinator.write_logged(vec![(simple(1), batch)], ConsistencyLevel::One).unwrap_err();
    assert!(matches!(err, Error::WriteTimeout { write_type: WriteType::Batch, .. }), "{err:?}");
    nodes[0].stop(&rt);
    for k in &keys {
        assert!(holder(&nodes, *k).engine.read(&read_cmd(*k)).unwrap().is_none(), "nothing applied yet");
    }
    // The holders replay it after twice the write timeout, in full.
    wait_until(Duration::from_secs(20), "the batch to be replayed everywhere", || {
        keys.iter().all(|k| holder(&nodes, *k).engine.read(&read_cmd(*k)).unwrap().is_some())
    });
    for k in &keys {
        assert_eq!(
            value(holder(&nodes, *k).engine.read(&read_cmd(*k)).unwrap()).as_deref(),
            Some(&b"all"[..])
        );
    }
    for n in &nodes[1..] {
        wait_until(Duration::from_secs(5), "replayed batches to be deleted", || {
            n.coordinator.batchlog().unwrap().pending().is_empty()
        });
    }
    let replayed: u64 = nodes[1..]
        .iter()
        .map(|n| n.coordinator.batchlog().unwrap().counters().replayed.load(Ordering::Relaxed))
        .sum();
    assert!(replayed >= 1);

    // Storing the batch itself failing gives BATCH_LOG: nothing was applied.
    nodes[1].service.messaging().set_filter(Some(Arc::new(|c: &FilterContext| {
        if c.verb == verbs::BATCH_STORE {
            FilterAction::Drop
        } else {
            FilterAction::Deliver
        }
    })));
    let batch: Vec<_> = keys[..5].iter().map(|k| write(*k, "x", 20)).collect();
    let err = nodes[1].coordinator.write_logged(vec![(simple(1), batch)], ConsistencyLevel::One).unwrap_err();
    assert!(matches!(err, Error::WriteTimeout { write_type: WriteType::BatchLog, .. }), "{err:?}");
    for n in &nodes {
        n.service.shutdown();
    }
}
