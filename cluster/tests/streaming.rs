//! Streaming between two real engines: exactly the partitions of the ranges asked arrive,
//! tombstones included, through injected delivery failures and a corrupted batch.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::{read_cmd, value, write, TABLE};
use sibyl_cluster::streaming::{
    receive, Direction, StreamManager, StreamOperation, StreamRequest, StreamState, STREAM_PAGE_PARTITIONS,
};
use sibyl_cluster::{Endpoint, Storage};
use sibyl_engine::{DeletionTime, Engine, EngineOptions, Mutation, PartitionUpdate, TableOptions, Token};

fn engine(dir: &std::path::Path) -> Arc<Engine> {
    let e = Arc::new(Engine::open(EngineOptions::new(dir)).unwrap());
    e.create_table(TableOptions::new(TABLE, "ks", "t")).unwrap();
    e
}

fn ep(i: u8) -> Endpoint {
    Endpoint(std::net::SocketAddr::from(([127, 0, 0, i], 7000)))
}

fn token(key: u32) -> i64 {
    Token::of_key(&key.to_be_bytes()).0
}

#[test]
fn a_stream_moves_exactly_its_ranges_tombstones_included_through_failures() {
    let dir = tempfile::tempdir().unwrap();
    let source = engine(&dir.path().join("a"));
    let target = engine(&dir.path().join("b"));
    let keys: Vec<u32> = (0..3000).collect();
    for chunk in keys.chunks(500) {
        source.apply_batch(chunk.iter().map(|k| write(*k, "v2", 10)).collect()).unwrap();
    }
    // Some data on disk, some in memtables.
    source.flush(TABLE).unwrap();
    // A deleted partition in the range: the target holds an older value the tombstone shadows.
    let deleted = keys.iter().copied().find(|k| token(*k) <= 0).unwrap();
    let mut tombstone = PartitionUpdate::new(Bytes::copy_from_slice(&deleted.to_be_bytes()));
    tombstone.header.deletion = DeletionTime::new(20, 1);
    source.apply_batch(vec![Mutation { table: TABLE, update: tombstone }]).unwrap();
    target.apply_batch(vec![write(deleted, "old", 1)]).unwrap();

    let sender = StreamManager::new(0);
    let receiver = StreamManager::new(0);
    let request = StreamRequest {
        session: uuid::Uuid::from_u128(77),
        operation: StreamOperation::Bootstrap,
        target: ep(2),
        tables: vec![TABLE],
        ranges: vec![(i64::MIN, 0)],
    };
    let calls = AtomicUsize::new(0);
    let deliver = |payload: Bytes| -> Result<(), String> {
        match calls.fetch_add(1, Ordering::Relaxed) {
            // A lost request, then a batch damaged on the way: both are sent again.
            1 => Err("injected failure".into()),
            2 => {
                let mut bad = payload.to_vec();
                let last = bad.len() - 1;
                bad[last] ^= 0x40;
                receive(&receiver, target.as_ref(), ep(1), &bad)
            }
            _ => receive(&receiver, target.as_ref(), ep(1), &payload),
        }
    };
    sender.send(source.as_ref(), &request, &deliver, &|| None).unwrap();

    let in_range: Vec<u32> = keys.iter().copied().filter(|k| token(*k) <= 0).collect();
    assert!(in_range.len() > STREAM_PAGE_PARTITIONS * 3, "several pages: {}", in_range.len());
    for k in &keys {
        let got = value(Storage::read(target.as_ref(), &read_cmd(*k)).unwrap());
        if *k == deleted {
            assert_eq!(got, None, "the tombstone shadows the target's older value");
        } else if token(*k) <= 0 {
            assert_eq!(got.as_deref(), Some(&b"v2"[..]), "key {k} in range");
        } else {
            assert_eq!(got, None, "key {k} is outside the range");
        }
    }
    let sent = sender.sessions();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].direction, &sent[0].state), (Direction::Sending, &StreamState::Completed));
    assert_eq!((sent[0].ranges_done, sent[0].ranges_total), (1, 1));
    assert_eq!(sent[0].partitions, in_range.len() as u64);
    let received = receiver.sessions();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].state, StreamState::Completed, "the end marker closes the receiving side");
    assert_eq!(received[0].partitions, in_range.len() as u64);
    assert!(calls.load(Ordering::Relaxed) >= 4);
}

#[test]
fn a_stream_that_keeps_failing_fails_naming_the_target_and_a_cancelled_one_stops() {
    let dir = tempfile::tempdir().unwrap();
    let source = engine(dir.path());
    source.apply_batch((0..100).map(|k| write(k, "v", 1)).collect()).unwrap();
    let sender = StreamManager::new(0);
    let request = StreamRequest {
        session: uuid::Uuid::from_u128(1),
        operation: StreamOperation::Decommission,
        target: ep(9),
        tables: vec![TABLE],
        ranges: vec![(0, 0)],
    };
    let err =
        sender.send(source.as_ref(), &request, &|_| Err("connection refused".into()), &|| None).unwrap_err();
    assert!(err.contains("127.0.0.9:7000") && err.contains("connection refused"), "{err}");
    assert!(matches!(sender.sessions()[0].state, StreamState::Failed(_)));
    let err = sender
        .send(source.as_ref(), &request, &|_| Ok(()), &|| Some("the target went down".into()))
        .unwrap_err();
    assert_eq!(err, "the target went down");
}
