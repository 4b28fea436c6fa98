//! Hinted handoff between in-process nodes (real engines, sockets and hints files): a replica
//! that was down gets every write it missed once it is back, hints stop after
//! `max_hint_window`, ANY is acknowledged by a hint, and a replica that only timed out is hinted
//! too.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{drop_verb_to, read_cmd, simple, start_cluster_with, value, wait_until, write, Node};
use sibyl_cluster::hints::HintsConfig;
use sibyl_cluster::{ConsistencyLevel, Error, ReadPolicy, Timeouts, WriteType};
use sibyl_engine::Token;

fn with_hints(dir: PathBuf) -> HintsConfig {
    let mut c = HintsConfig::new(dir);
    c.dispatch_interval = Duration::from_millis(200);
    c.flush_period = Duration::from_millis(200);
    c
}

fn cluster(
    rt: &tokio::runtime::Runtime,
    n: usize,
    timeouts: Timeouts,
    hints: &dyn Fn(PathBuf) -> HintsConfig,
) -> Vec<Node> {
    start_cluster_with(rt, n, timeouts, |engine| engine as _, Some(hints))
}

fn sees_down(observer: &Node, other: &Node) -> bool {
    !observer.coordinator.view().live.contains(&other.config.local)
}

fn sees_up(observer: &Node, other: &Node) -> bool {
    observer.coordinator.view().live.contains(&other.config.local)
}

/// cassandra-dtest's hintedhandoff scenario: RF 2, one node stopped, 1,000 writes at ONE, the
/// node restarted and its hints delivered; then the other node stopped and every row read from
/// the restarted node alone. The coordinator is itself restarted while holding the hints, so
/// they must come back from its hints files.
#[test]
fn a_restarted_replica_receives_every_write_it_missed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut nodes = cluster(&rt, 2, Timeouts::default(), &with_hints);
    let rf2 = simple(2);
    nodes[1].stop(&rt);
    wait_until(Duration::from_secs(20), "node 0 to see node 1 down", || sees_down(&nodes[0], &nodes[1]));
    for k in 0..1000 {
        nodes[0]
            .coordinator
            .write(&rf2, vec![write(k, "v", 10)], ConsistencyLevel::One, WriteType::Simple)
            .unwrap();
    }
    let stats = nodes[0].hints().store().stats();
    assert_eq!(stats.written, 1000, "{stats:?}");
    let pending = nodes[0].hints().store().pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].host, nodes[1].config.host_id);

    // The coordinator restarts: its hints come back from disk.
    nodes[0].stop(&rt);
    nodes[0].restart(&rt);
    assert_eq!(nodes[0].hints().store().pending().len(), 1, "hints survive the coordinator's restart");

    nodes[1].restart(&rt);
    wait_until(Duration::from_secs(30), "hints to be delivered", || {
        nodes[0].hints().store().pending().is_empty()
    });
    assert_eq!(nodes[0].hints().store().stats().delivered, 1000);
    assert_eq!(
        std::fs::read_dir(nodes[0].hints().config().directory.clone()).unwrap().count(),
        0,
        "delivered files are deleted"
    );

    nodes[0].stop(&rt);
    for k in 0..1000 {
        let got = nodes[1]
            .coordinator
            .read(&rf2, &read_cmd(k), ConsistencyLevel::One, ReadPolicy::default())
            .unwrap();
        assert_eq!(value(got).as_deref(), Some(&b"v"[..]), "key {k} on the restarted node alone");
    }
    nodes[1].stop(&rt);
}

#[test]
fn no_hints_are_stored_once_a_replica_is_down_longer_than_max_hint_window() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let short = |dir| HintsConfig { max_hint_window: Duration::from_secs(1), ..with_hints(dir) };
    let nodes = cluster(&rt, 2, Timeouts::default(), &short);
    let rf2 = simple(2);
    nodes[1].stop(&rt);
    wait_until(Duration::from_secs(20), "node 0 to see node 1 down", || sees_down(&nodes[0], &nodes[1]));
    nodes[0]
        .coordinator
        .write(&rf2, vec![write(1, "a", 10)], ConsistencyLevel::One, WriteType::Simple)
        .unwrap();
    assert_eq!(nodes[0].hints().store().stats().written, 1);
    std::thread::sleep(Duration::from_millis(1100));
    nodes[0]
        .coordinator
        .write(&rf2, vec![write(2, "b", 10)], ConsistencyLevel::One, WriteType::Simple)
        .unwrap();
    let stats = nodes[0].hints().store().stats();
    assert_eq!((stats.written, stats.dropped_window), (1, 1), "{stats:?}");
    nodes[0].stop(&rt);
}

#[test]
fn any_is_acknowledged_by_a_hint_when_every_replica_is_down() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut nodes = cluster(&rt, 3, Timeouts::default(), &with_hints);
    let rf1 = simple(1);
    // A key whose only replica is node 2.
    let key = (0u32..)
        .find(|k| {
            nodes[0].coordinator.natural_replicas(&rf1, Token::of_key(&k.to_be_bytes()))
                == vec![nodes[2].config.local]
        })
        .unwrap();
    nodes[2].stop(&rt);
    wait_until(Duration::from_secs(20), "node 0 to see node 2 down", || sees_down(&nodes[0], &nodes[2]));
    let err = nodes[0]
        .coordinator
        .write(&rf1, vec![write(key, "any", 10)], ConsistencyLevel::One, WriteType::Simple)
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { required: 1, alive: 0, .. }), "{err:?}");
    assert_eq!(nodes[0].hints().store().stats().written, 0, "an Unavailable write leaves no hint");
    // With hints disabled, nothing can hold an ANY write.
    nodes[0].hints().set_enabled(false);
    let err = nodes[0]
        .coordinator
        .write(&rf1, vec![write(key, "any", 10)], ConsistencyLevel::Any, WriteType::Simple)
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    nodes[0].hints().set_enabled(true);
    nodes[0]
        .coordinator
        .write(&rf1, vec![write(key, "any", 10)], ConsistencyLevel::Any, WriteType::Simple)
        .unwrap();
    assert_eq!(nodes[0].hints().store().stats().written, 1);

    nodes[2].restart(&rt);
    wait_until(Duration::from_secs(30), "the ANY write to reach its replica", || {
        value(nodes[2].engine.read(&read_cmd(key)).unwrap()).as_deref() == Some(&b"any"[..])
    });
    for n in &nodes {
        n.stop(&rt);
    }
}

#[test]
fn a_replica_that_does_not_acknowledge_in_time_is_hinted() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let timeouts = Timeouts { write: Duration::from_millis(300), ..Timeouts::default() };
    let nodes = cluster(&rt, 3, timeouts, &with_hints);
    let rf3 = simple(3);
    let lagging = nodes[2].config.local;
    drop_verb_to(&nodes[0], lagging, sibyl_cluster::verbs::MUTATION);
    nodes[0]
        .coordinator
        .write(&rf3, vec![write(5, "late", 10)], ConsistencyLevel::Quorum, WriteType::Simple)
        .unwrap();
    assert!(nodes[2].engine.read(&read_cmd(5)).unwrap().is_none());
    wait_until(Duration::from_secs(5), "the timed-out replica to be hinted", || {
        nodes[0].hints().store().stats().written == 1
    });
    // The replica was up all along: the periodic dispatch delivers (HINT is not filtered).
    wait_until(Duration::from_secs(10), "the hint to be delivered", || {
        value(nodes[2].engine.read(&read_cmd(5)).unwrap()).as_deref() == Some(&b"late"[..])
    });
    assert!(sees_up(&nodes[0], &nodes[2]));
    wait_until(Duration::from_secs(5), "the delivered file to be removed", || {
        nodes[0].hints().store().pending().is_empty()
    });
    for n in &nodes {
        n.stop(&rt);
    }
}
