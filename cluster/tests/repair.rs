//! Merkle-tree anti-entropy repair between in-process nodes (real engines, real sockets): replicas
//! diverged by a known set of rows converge, only about the diverged data moves, a second
//! repair finds nothing, and a replica going down fails the session instead of hanging it.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{drop_verb_to, read_cmd, simple, start_cluster, value, wait_until, write, TABLE};
use sibyl_cluster::repair::{RepairRequest, RepairScope, RepairService, RepairSession, RepairState};
use sibyl_cluster::{verbs, ConsistencyLevel, Timeouts, WriteType};
use sibyl_engine::cell::DeletionTime;
use sibyl_engine::{Mutation, PartitionUpdate};

fn request(scope: RepairScope) -> RepairRequest {
    RepairRequest { keyspace: "ks".into(), strategy: simple(3), tables: vec![("t".into(), TABLE)], scope }
}

fn finish(service: &RepairService, id: uuid::Uuid) -> RepairSession {
    wait_until(Duration::from_secs(60), "the repair to finish", || {
        service.session(id).unwrap().state != RepairState::Running
    });
    service.session(id).unwrap()
}

fn delete(key: u32, ts: i64) -> Mutation {
    let mut update = PartitionUpdate::new(Bytes::copy_from_slice(&key.to_be_bytes()));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    update.header.deletion = DeletionTime::new(ts, u32::try_from(now).unwrap());
    Mutation { table: TABLE, update }
}

#[test]
fn replicas_diverged_by_known_rows_converge_and_only_about_the_difference_moves() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nodes = start_cluster(&rt, 3, Timeouts::default());
    let rf3 = simple(3);
    for chunk in (0..2_000u32).collect::<Vec<_>>().chunks(100) {
        let batch: Vec<Mutation> = chunk.iter().map(|k| write(*k, "base", 10)).collect();
        nodes[0].coordinator.write(&rf3, batch, ConsistencyLevel::All, WriteType::Simple).unwrap();
    }
    nodes[1].engine.flush_all().unwrap();

    // Node 2 misses 100 new rows, 50 overwrites and 10 deletions written through node 0.
    drop_verb_to(&nodes[0], nodes[2].coordinator.local(), verbs::MUTATION);
    let mut missed: Vec<Mutation> = (2_000..2_100u32).map(|k| write(k, "new", 20)).collect();
    missed.extend((0..50u32).map(|k| write(k, "over", 20)));
    missed.extend((100..110u32).map(|k| delete(k, 20)));
    let diverged_bytes: usize =
        missed.iter().map(|m| verbs::encode_mutations(std::slice::from_ref(m)).len()).sum();
    for m in &missed {
        nodes[0]
            .coordinator
            .write(&rf3, vec![m.clone()], ConsistencyLevel::Quorum, WriteType::Simple)
            .unwrap();
    }
    nodes[0].service.messaging().set_filter(None);
    assert!(nodes[2].engine.read(&read_cmd(2_050)).unwrap().is_none(), "node 2 must have missed the writes");

    let service = RepairService::new(Arc::clone(&nodes[0].coordinator));
    let id = service.start(request(RepairScope::All)).unwrap();
    let s = finish(&service, id);
    assert_eq!(s.state, RepairState::Succeeded, "{:?}", s.events);
    assert_eq!(s.ranges_done, s.ranges_total);
    assert!(s.ranges_total > 0);
    assert_eq!(s.partitions_repaired, missed.len() as u64, "{s:?}");
    let moved = s.bytes_fetched + s.bytes_sent;
    let ratio = moved as f64 / diverged_bytes as f64;
    println!(
        "repair moved {moved} bytes ({} fetched, {} sent) for {diverged_bytes} diverged bytes: ratio {ratio:.2}; {} differing sub-ranges",
        s.bytes_fetched, s.bytes_sent, s.mismatched_ranges
    );
    assert!(ratio < 5.0, "repair moved {ratio:.2} times the diverged data");
    assert!(s.events.iter().any(|e| e.contains("progress: 100%")), "{:?}", s.events);

    // Node 2 alone now holds every row as the others do.
    let e2 = &nodes[2].engine;
    for k in 0..2_100u32 {
        let got = value(e2.read(&read_cmd(k)).unwrap());
        let want: Option<&[u8]> = match k {
            0..50 => Some(b"over"),
            100..110 => None,
            2_000.. => Some(b"new"),
            _ => Some(b"base"),
        };
        assert_eq!(got.as_deref(), want, "key {k} on node 2");
    }

    // A second repair finds the replicas consistent and moves nothing.
    let id = service.start(request(RepairScope::All)).unwrap();
    let again = finish(&service, id);
    assert_eq!(again.state, RepairState::Succeeded);
    assert_eq!(
        (again.mismatched_ranges, again.partitions_repaired, again.bytes_sent),
        (0, 0, 0),
        "{again:?}"
    );
    assert_eq!(service.sessions().len(), 2);
    for n in &nodes {
        n.service.shutdown();
    }
}

#[test]
fn primary_range_repairs_from_every_node_cover_the_ring_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nodes = start_cluster(&rt, 3, Timeouts::default());
    let rf3 = simple(3);
    drop_verb_to(&nodes[0], nodes[1].coordinator.local(), verbs::MUTATION);
    for k in 0..300u32 {
        nodes[0]
            .coordinator
            .write(&rf3, vec![write(k, "v", 10)], ConsistencyLevel::Quorum, WriteType::Simple)
            .unwrap();
    }
    nodes[0].service.messaging().set_filter(None);
    let mut repaired = 0;
    let mut ranges = 0;
    for n in &nodes {
        let service = RepairService::new(Arc::clone(&n.coordinator));
        let id = service.start(request(RepairScope::PrimaryRange)).unwrap();
        let s = finish(&service, id);
        assert_eq!(s.state, RepairState::Succeeded, "{:?}", s.events);
        repaired += s.partitions_repaired;
        ranges += s.ranges_total;
    }
    // 8 tokens per node: 24 primary ranges, each repaired once; every missed row exactly once.
    assert_eq!((ranges, repaired), (24, 300));
    for k in 0..300u32 {
        assert_eq!(value(nodes[1].engine.read(&read_cmd(k)).unwrap()).as_deref(), Some(&b"v"[..]), "key {k}");
    }
    // A subrange this node does not replicate is refused with the reason (RF 3 on 3 nodes: every
    // node replicates everything, so ask for an empty one instead).
    let service = RepairService::new(Arc::clone(&nodes[0].coordinator));
    let err = service.start(request(RepairScope::Subrange(5, 5))).unwrap_err();
    assert!(err.contains("empty"), "{err}");
    let id = service.start(request(RepairScope::Subrange(-1_000, 1_000_000))).unwrap();
    assert_eq!(finish(&service, id).state, RepairState::Succeeded);
    for n in &nodes {
        n.service.shutdown();
    }
}

#[test]
fn a_replica_going_down_fails_the_session_instead_of_hanging_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nodes = start_cluster(&rt, 3, Timeouts::default());
    let rf3 = simple(3);
    for k in 0..100u32 {
        nodes[0]
            .coordinator
            .write(&rf3, vec![write(k, "v", 10)], ConsistencyLevel::All, WriteType::Simple)
            .unwrap();
    }
    // Node 1 never answers node 0's validation requests; then it dies.
    let silent = nodes[1].coordinator.local();
    drop_verb_to(&nodes[0], silent, verbs::VALIDATION);
    let service = RepairService::new(Arc::clone(&nodes[0].coordinator));
    let id = service.start(request(RepairScope::All)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(service.session(id).unwrap().state, RepairState::Running);
    nodes[1].stop(&rt);
    let s = finish(&service, id);
    match &s.state {
        RepairState::Failed(reason) => {
            assert!(reason.contains("died") && reason.contains(&silent.to_string()), "{reason}")
        }
        other => panic!("expected a failed session, got {other:?}"),
    }
    assert!(s.events.last().unwrap().contains("failed"), "{:?}", s.events);

    // A new repair is refused at once while the replica is down.
    let err = service.start(request(RepairScope::All)).unwrap_err();
    assert!(err.contains("is dead"), "{err}");
    for n in &nodes {
        n.service.shutdown();
    }
}

#[test]
fn a_running_session_can_be_cancelled() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nodes = start_cluster(&rt, 3, Timeouts::default());
    // Node 1 never answers validations but stays up: without a cancel the session would wait for
    // VALIDATION_TIMEOUT.
    drop_verb_to(&nodes[0], nodes[1].coordinator.local(), verbs::VALIDATION);
    let history = nodes[0].dir.path().join("repair_history.log");
    let service = RepairService::with_history(Arc::clone(&nodes[0].coordinator), &history).unwrap();
    let id = service.start(request(RepairScope::All)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(service.start(request(RepairScope::All)).unwrap_err().contains("still running"));
    assert!(service.cancel(uuid::Uuid::from_u128(1)).is_err(), "unknown session");
    service.cancel(id).unwrap();
    let s = finish(&service, id);
    assert_eq!(s.state, RepairState::Failed("cancelled by repair_admin cancel".into()));
    assert!(s.events.last().unwrap().contains("cancelled"), "{:?}", s.events);
    // The next session starts normally (and is not cancelled by the old request).
    nodes[0].service.messaging().set_filter(None);
    let id = service.start(request(RepairScope::PrimaryRange)).unwrap();
    assert_eq!(finish(&service, id).state, RepairState::Succeeded);
    // Both sessions are in the history file, once each, and come back in a new service.
    let reloaded = RepairService::with_history(Arc::clone(&nodes[0].coordinator), &history).unwrap();
    let states: Vec<&str> = reloaded.sessions().iter().map(|s| s.state.name()).collect();
    assert_eq!(states, vec!["FAILED", "SUCCESS"]);
    for n in &nodes {
        n.service.shutdown();
    }
}
