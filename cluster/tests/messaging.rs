//! Internode messaging over real sockets on 127.0.0.1 (ephemeral ports).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use sibyl_cluster::endpoint::Endpoint;
use sibyl_cluster::messaging::frame::{FrameHeader, Preamble, PROTOCOL_VERSION};
use sibyl_cluster::messaging::{
    ConnectionState, FilterAction, InboundHandler, MessageId, MessageKind, MessagingConfig, MessagingService,
    RequestError, Responder, Verb,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Answered with the request's payload.
const ECHO: Verb = Verb(1);
/// Answered with a failure response.
const FAIL: Verb = Verb(2);
/// Never answered.
const SILENT: Verb = Verb(3);
/// One-way messages, recorded.
const NOTE: Verb = Verb(4);

const CLUSTER: &str = "Test Cluster";

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// Records every message and answers according to the verb.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(Endpoint, Verb, Bytes)>>,
}

impl InboundHandler for Recorder {
    fn handle(&self, from: Endpoint, verb: Verb, payload: Bytes, responder: Responder) {
        self.seen.lock().push((from, verb, payload.clone()));
        match verb {
            ECHO => responder.respond(payload),
            FAIL => responder.fail("no such table ks.t"),
            _ => {}
        }
    }
}

impl Recorder {
    fn count(&self, verb: Verb) -> usize {
        self.seen.lock().iter().filter(|(_, v, _)| *v == verb).count()
    }

    fn payloads(&self, verb: Verb) -> Vec<Bytes> {
        self.seen.lock().iter().filter(|(_, v, _)| *v == verb).map(|(_, _, p)| p.clone()).collect()
    }
}

fn config_at(local: SocketAddr) -> MessagingConfig {
    let mut config = MessagingConfig::new(Endpoint(local), CLUSTER);
    config.connect_timeout = Duration::from_secs(1);
    config.reconnect_backoff_min = Duration::from_millis(20);
    config.reconnect_backoff_max = Duration::from_millis(200);
    config
}

fn config() -> MessagingConfig {
    config_at("127.0.0.1:0".parse().unwrap())
}

fn start(config: MessagingConfig) -> (MessagingService, Arc<Recorder>) {
    init_tracing();
    let recorder = Arc::new(Recorder::default());
    let service = MessagingService::start(config, recorder.clone()).unwrap();
    (service, recorder)
}

/// An address on which nothing listens (for now).
fn unused_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < timeout, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn bytes(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_response_round_trip_between_two_nodes() {
    let (a, _) = start(config());
    let (b, b_seen) = start(config());
    let response = a.request(b.local_endpoint(), ECHO, bytes("ping"), 5 * SECOND).await.unwrap();
    assert_eq!(response.from, b.local_endpoint());
    assert_eq!(response.payload, bytes("ping"));
    assert_eq!(b_seen.seen.lock()[0].0, a.local_endpoint(), "the sender is named by its listen address");
    let back = b.request(a.local_endpoint(), ECHO, bytes("pong"), 5 * SECOND).await.unwrap();
    assert_eq!((back.from, back.payload), (a.local_endpoint(), bytes("pong")));
    let stats = a.stats();
    let to_b = &stats.peers[&b.local_endpoint()];
    assert_eq!(to_b.state, ConnectionState::Connected);
    assert_eq!((to_b.sent, to_b.received), (2, 2), "one request and one response each way");
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_message_is_delivered() {
    let (a, _) = start(config());
    let (b, b_seen) = start(config());
    a.send_one_way(b.local_endpoint(), NOTE, bytes("gossip"), 5 * SECOND);
    wait_until("b got the message", 5 * SECOND, || b_seen.count(NOTE) == 1).await;
    assert_eq!(b_seen.seen.lock()[0], (a.local_endpoint(), NOTE, bytes("gossip")));
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_to_self_delivers_without_a_socket() {
    let (a, a_seen) = start(config());
    let me = a.local_endpoint();
    let response = a.request(me, ECHO, bytes("self"), 5 * SECOND).await.unwrap();
    assert_eq!((response.from, response.payload), (me, bytes("self")));
    a.send_one_way(me, NOTE, bytes("note to self"), 5 * SECOND);
    wait_until("the note arrived", 5 * SECOND, || a_seen.count(NOTE) == 1).await;
    let failed = a.request(me, FAIL, bytes(""), 5 * SECOND).await;
    assert_eq!(failed, Err(RequestError::Failed { from: me, reason: "no such table ks.t".to_owned() }));
    let stats = a.stats();
    assert_eq!(stats.inbound_connections, 0);
    assert_eq!(stats.peers[&me].state, ConnectionState::Idle, "no connection to self");
    assert_eq!(stats.peers[&me].sent, 5, "three requests or one-ways and two responses");
    a.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_works_from_a_plain_thread() {
    let (a, _) = start(config());
    let (b, b_seen) = start(config());
    let to = b.local_endpoint();
    let outcome = tokio::task::spawn_blocking(move || {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        a.send_one_way(to, NOTE, bytes("from a thread"), 5 * SECOND);
        a.send_request(
            to,
            ECHO,
            bytes("blocking caller"),
            5 * SECOND,
            Box::new(move |outcome| tx.send(outcome).unwrap()),
        );
        let outcome = rx.recv_timeout(5 * SECOND).unwrap();
        a.shutdown();
        outcome
    })
    .await
    .unwrap();
    assert_eq!(outcome.unwrap().payload, bytes("blocking caller"));
    assert_eq!(b_seen.count(NOTE), 1);
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_request_times_out_with_exactly_one_callback() {
    let (a, _) = start(config());
    let (b, b_seen) = start(config());
    let calls = Arc::new(Mutex::new(Vec::new()));
    let sent_at = Instant::now();
    let timeout = Duration::from_millis(200);
    let record = calls.clone();
    a.send_request(
        b.local_endpoint(),
        SILENT,
        bytes("anyone?"),
        timeout,
        Box::new(move |outcome| record.lock().push((outcome, sent_at.elapsed()))),
    );
    wait_until("the callback ran", 5 * SECOND, || !calls.lock().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = calls.lock();
    assert_eq!(calls.len(), 1, "exactly one callback call");
    assert_eq!(calls[0].0, Err(RequestError::Timeout));
    assert!(calls[0].1 >= timeout, "timed out after {:?}, before the timeout", calls[0].1);
    assert_eq!(b_seen.count(SILENT), 1, "the request itself was delivered");
    let stats = a.stats();
    assert_eq!(stats.peers[&b.local_endpoint()].timeouts, 1);
    assert_eq!(stats.outstanding_requests, 0);
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_response_reaches_the_caller_with_its_reason() {
    let (a, _) = start(config());
    let (b, _) = start(config());
    let outcome = a.request(b.local_endpoint(), FAIL, bytes("read"), 5 * SECOND).await;
    assert_eq!(
        outcome,
        Err(RequestError::Failed { from: b.local_endpoint(), reason: "no such table ks.t".to_owned() })
    );
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_restarted_on_the_same_port_gets_later_messages() {
    let (a, _) = start(config());
    let (b, _) = start(config());
    let b_at = b.local_endpoint();
    a.request(b_at, ECHO, bytes("before"), 5 * SECOND).await.unwrap();
    b.shutdown();
    b.wait_stopped().await;
    wait_until("a noticed b is gone", 5 * SECOND, || {
        a.stats().peers[&b_at].state != ConnectionState::Connected
    })
    .await;
    let (b2, b2_seen) = start(config_at(b_at.0));
    assert_eq!(b2.local_endpoint(), b_at);
    let response = a.request(b_at, ECHO, bytes("after"), 5 * SECOND).await.unwrap();
    assert_eq!(response.payload, bytes("after"));
    a.send_one_way(b_at, NOTE, bytes("also after"), 5 * SECOND);
    wait_until("b2 got the one-way", 5 * SECOND, || b2_seen.count(NOTE) == 1).await;
    a.shutdown();
    b2.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_connecting_to_us_cuts_our_reconnect_backoff_short() {
    let mut cfg = config();
    cfg.reconnect_backoff_min = 60 * SECOND;
    cfg.reconnect_backoff_max = 60 * SECOND;
    let (a, _) = start(cfg);
    let b_at = unused_address();
    a.send_one_way(Endpoint(b_at), NOTE, bytes("queued while b was down"), 120 * SECOND);
    wait_until("a's first connection attempt failed", 5 * SECOND, || {
        a.stats().peers.get(&Endpoint(b_at)).is_some_and(|p| p.connect_failures > 0)
    })
    .await;
    // b starts and talks to a: a reconnects now, not after its minute of backoff.
    let (b, b_seen) = start(config_at(b_at));
    b.send_one_way(a.local_endpoint(), NOTE, bytes("hello"), 5 * SECOND);
    wait_until("a's queued message reached b", 10 * SECOND, || b_seen.count(NOTE) == 1).await;
    assert_eq!(a.stats().peers[&Endpoint(b_at)].connect_failures, 0);
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_drops_the_excess_and_overloads_requests() {
    let mut cfg = config();
    cfg.queue_capacity_messages = 10;
    let (a, _) = start(cfg);
    let nowhere = Endpoint(unused_address());
    for _ in 0..25 {
        a.send_one_way(nowhere, NOTE, bytes("lost"), 60 * SECOND);
    }
    let overloaded = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let overloaded = overloaded.clone();
        a.send_request(
            nowhere,
            ECHO,
            bytes("lost"),
            60 * SECOND,
            Box::new(move |outcome| {
                assert_eq!(outcome.unwrap_err(), RequestError::Overloaded);
                overloaded.fetch_add(1, Ordering::SeqCst);
            }),
        );
    }
    assert_eq!(overloaded.load(Ordering::SeqCst), 3, "callbacks ran before send_request returned");
    let stats = a.stats();
    let peer = &stats.peers[&nowhere];
    assert_eq!(peer.pending_messages, 10);
    assert_eq!(peer.dropped_queue_full, 15 + 3);
    assert_eq!(stats.verbs[&NOTE].dropped_queue_full, 15);
    assert_eq!(stats.verbs[&ECHO].dropped_queue_full, 3);
    assert_eq!(stats.outstanding_requests, 0);
    wait_until("the writer is backing off", 5 * SECOND, || {
        matches!(a.stats().peers[&nowhere].state, ConnectionState::Backoff | ConnectionState::Connecting)
    })
    .await;
    a.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_expiring_in_the_queue_are_dropped_not_delivered() {
    let (a, _) = start(config());
    let b_at = unused_address();
    a.send_one_way(Endpoint(b_at), NOTE, bytes("stale"), Duration::from_millis(100));
    a.send_one_way(Endpoint(b_at), NOTE, bytes("fresh"), 10 * SECOND);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (b, b_seen) = start(config_at(b_at));
    wait_until("the fresh message arrived", 5 * SECOND, || b_seen.count(NOTE) == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(b_seen.payloads(NOTE), vec![bytes("fresh")]);
    let stats = a.stats();
    assert_eq!(stats.peers[&Endpoint(b_at)].dropped_expired, 1);
    assert_eq!(stats.verbs[&NOTE].dropped_expired, 1);
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_drop_cuts_one_direction_only() {
    let (a, a_seen) = start(config());
    let (b, b_seen) = start(config());
    let (a_at, b_at) = (a.local_endpoint(), b.local_endpoint());
    a.set_filter(Some(Arc::new(
        move |m| {
            if m.to == b_at {
                FilterAction::Drop
            } else {
                FilterAction::Deliver
            }
        },
    )));
    a.send_one_way(b_at, NOTE, bytes("a to b"), 5 * SECOND);
    b.send_one_way(a_at, NOTE, bytes("b to a"), 5 * SECOND);
    let outcome = a.request(b_at, ECHO, bytes("a to b"), Duration::from_millis(200)).await;
    assert_eq!(outcome, Err(RequestError::Timeout));
    wait_until("b's note reached a", 5 * SECOND, || a_seen.count(NOTE) == 1).await;
    assert_eq!(b_seen.count(NOTE) + b_seen.count(ECHO), 0, "nothing crossed from a to b");
    let stats = a.stats();
    assert_eq!(stats.peers[&b_at].dropped_filtered, 2);
    assert_eq!(stats.peers[&b_at].dropped_queue_full, 0, "filtered drops are counted apart");
    a.set_filter(None);
    a.request(b_at, ECHO, bytes("healed"), 5 * SECOND).await.unwrap();
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_drop_of_responses_times_out_a_delivered_request() {
    let (a, _) = start(config());
    let (b, b_seen) = start(config());
    b.set_filter(Some(Arc::new(|m| {
        if m.kind == MessageKind::Response {
            FilterAction::Drop
        } else {
            FilterAction::Deliver
        }
    })));
    let outcome = a.request(b.local_endpoint(), ECHO, bytes("q"), Duration::from_millis(200)).await;
    assert_eq!(outcome, Err(RequestError::Timeout));
    assert_eq!(b_seen.count(ECHO), 1, "the request arrived; its response was filtered");
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_delay_delays_delivery() {
    let (a, _) = start(config());
    let (b, _) = start(config());
    let delay = Duration::from_millis(300);
    a.set_filter(Some(Arc::new(move |m| {
        if m.verb == ECHO {
            FilterAction::Delay(delay)
        } else {
            FilterAction::Deliver
        }
    })));
    let started = Instant::now();
    a.request(b.local_endpoint(), ECHO, bytes("slow"), 5 * SECOND).await.unwrap();
    assert!(started.elapsed() >= delay, "answered after {:?}", started.elapsed());
    let expired = a.request(b.local_endpoint(), ECHO, bytes("too slow"), Duration::from_millis(100)).await;
    assert_eq!(expired, Err(RequestError::Timeout));
    wait_until("the delayed request expired unsent", 5 * SECOND, || {
        a.stats().verbs.get(&ECHO).is_some_and(|v| v.dropped_expired == 1)
    })
    .await;
    assert_eq!(a.stats().peers[&b.local_endpoint()].sent, 1, "only the first request was sent");
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_peer_blocks_both_directions_until_unblocked() {
    let (a, a_seen) = start(config());
    let (b, b_seen) = start(config());
    let (a_at, b_at) = (a.local_endpoint(), b.local_endpoint());
    a.block_peer(b_at);
    let short = Duration::from_millis(200);
    let (to_b, to_a) =
        tokio::join!(a.request(b_at, ECHO, bytes("x"), short), b.request(a_at, ECHO, bytes("y"), short));
    assert_eq!((to_b, to_a), (Err(RequestError::Timeout), Err(RequestError::Timeout)));
    b.send_one_way(a_at, NOTE, bytes("blocked"), 5 * SECOND);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(b_seen.count(ECHO), 0);
    assert_eq!(a_seen.count(ECHO) + a_seen.count(NOTE), 0);
    assert!(a.stats().peers[&b_at].dropped_filtered >= 3);
    a.unblock_peer(b_at);
    a.request(b_at, ECHO, bytes("x"), 5 * SECOND).await.unwrap();
    b.request(a_at, ECHO, bytes("y"), 5 * SECOND).await.unwrap();
    a.shutdown();
    b.shutdown();
}

/// Reads until the server closes the connection; returns what it sent first.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(5 * SECOND, stream.read(&mut buf)).await {
            Err(_) => panic!("connection still open; received {received:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return received,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

fn preamble(version: u8, cluster_name: &str) -> Vec<u8> {
    let from = Endpoint("127.0.0.9:7000".parse().unwrap());
    Preamble { version, from, cluster_name: cluster_name.to_owned() }.encode().unwrap()
}

async fn raw_connect(to: Endpoint, preamble: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(to.0).await.unwrap();
    stream.write_all(preamble).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_peers_are_disconnected_and_the_node_keeps_serving() {
    let mut cfg = config();
    cfg.max_frame_bytes = 1024 * 1024;
    let (a, a_seen) = start(cfg);
    let (b, _) = start(config());
    let a_at = a.local_endpoint();
    b.request(a_at, ECHO, bytes("warm up"), 5 * SECOND).await.unwrap();

    let mut wrong_magic = raw_connect(a_at, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(read_until_closed(&mut wrong_magic).await, Vec::<u8>::new(), "no reply to strangers");

    let mut wrong_version = raw_connect(a_at, &preamble(9, CLUSTER)).await;
    assert_eq!(read_until_closed(&mut wrong_version).await, vec![PROTOCOL_VERSION, 1]);

    let mut wrong_cluster = raw_connect(a_at, &preamble(PROTOCOL_VERSION, "Other Cluster")).await;
    assert_eq!(read_until_closed(&mut wrong_cluster).await, vec![PROTOCOL_VERSION, 2]);

    let mut corrupt_preamble = preamble(PROTOCOL_VERSION, CLUSTER);
    corrupt_preamble[8] ^= 0x40;
    let mut corrupt = raw_connect(a_at, &corrupt_preamble).await;
    assert_eq!(read_until_closed(&mut corrupt).await, vec![PROTOCOL_VERSION, 4]);

    let mut oversized = raw_connect(a_at, &preamble(PROTOCOL_VERSION, CLUSTER)).await;
    let mut reply = [0u8; 2];
    oversized.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply, [PROTOCOL_VERSION, 0], "accepted");
    let mut frame = (1024 * 1024 + 1u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&[0u8; 4 + 15]);
    oversized.write_all(&frame).await.unwrap();
    assert_eq!(read_until_closed(&mut oversized).await, Vec::<u8>::new());

    let mut bad_crc = raw_connect(a_at, &preamble(PROTOCOL_VERSION, CLUSTER)).await;
    bad_crc.read_exact(&mut reply).await.unwrap();
    let header = FrameHeader { kind: MessageKind::OneWay, verb: NOTE, id: MessageId(0), expires_in_ms: 5000 };
    let mut good = header.encode_frame(b"accepted");
    let mut damaged = header.encode_frame(b"corrupted");
    damaged[20] ^= 0x01;
    good.append(&mut damaged);
    bad_crc.write_all(&good).await.unwrap();
    assert_eq!(read_until_closed(&mut bad_crc).await, Vec::<u8>::new());
    assert_eq!(a_seen.payloads(NOTE), vec![bytes("accepted")], "frames before the bad one count");

    let stats = a.stats();
    assert_eq!(stats.refused_connections, 4);
    assert_eq!(stats.protocol_errors, 2);
    let response = b.request(a_at, ECHO, bytes("still here"), 5 * SECOND).await.unwrap();
    assert_eq!(response.payload, bytes("still here"));
    a.send_one_way(b.local_endpoint(), NOTE, bytes("and talking"), 5 * SECOND);
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_requests_are_all_answered() {
    const REQUESTS: usize = 10_000;
    let mut cfg = config();
    cfg.queue_capacity_messages = 2 * REQUESTS;
    let (a, _) = start(cfg.clone());
    let (b, _) = start(cfg);
    let answered = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(AtomicUsize::new(0));
    for i in 0..REQUESTS {
        let (answered, wrong) = (answered.clone(), wrong.clone());
        let payload = Bytes::from(i.to_be_bytes().to_vec());
        let expected = payload.clone();
        a.send_request(
            b.local_endpoint(),
            ECHO,
            payload,
            10 * SECOND,
            Box::new(move |outcome| {
                if outcome.map(|r| r.payload) != Ok(expected) {
                    wrong.fetch_add(1, Ordering::SeqCst);
                }
                answered.fetch_add(1, Ordering::SeqCst);
            }),
        );
    }
    wait_until("every request was answered", 15 * SECOND, || answered.load(Ordering::SeqCst) == REQUESTS)
        .await;
    assert_eq!(wrong.load(Ordering::SeqCst), 0);
    let stats = a.stats();
    assert_eq!(stats.outstanding_requests, 0);
    assert_eq!(stats.peers[&b.local_endpoint()].received, REQUESTS as u64);
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_fails_outstanding_requests_and_refuses_new_ones() {
    let (a, _) = start(config());
    let (b, _) = start(config());
    let outcome = Arc::new(Mutex::new(None));
    let record = outcome.clone();
    a.send_request(
        b.local_endpoint(),
        SILENT,
        bytes("pending"),
        60 * SECOND,
        Box::new(move |o| *record.lock() = Some(o)),
    );
    a.shutdown();
    assert_eq!(*outcome.lock(), Some(Err(RequestError::Shutdown)));
    let later = a.request(b.local_endpoint(), ECHO, bytes("late"), SECOND).await;
    assert_eq!(later, Err(RequestError::Shutdown));
    tokio::time::timeout(5 * SECOND, a.wait_stopped()).await.expect("every task ended");
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_of_another_cluster_is_refused() {
    let (a, _) = start(config());
    let mut other = config();
    other.cluster_name = "Other Cluster".to_owned();
    let (b, b_seen) = start(other);
    let outcome = a.request(b.local_endpoint(), ECHO, bytes("hello?"), Duration::from_millis(300)).await;
    assert_eq!(outcome, Err(RequestError::Timeout));
    assert_eq!(b_seen.count(ECHO), 0);
    assert!(b.stats().refused_connections >= 1);
    assert_ne!(a.stats().peers[&b.local_endpoint()].state, ConnectionState::Connected);
    a.shutdown();
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_table_is_bounded() {
    let mut cfg = config();
    cfg.max_outstanding_requests = 2;
    let (a, _) = start(cfg);
    let (b, _) = start(config());
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..3 {
        let record = outcomes.clone();
        let callback = Box::new(move |o| record.lock().push(o));
        a.send_request(b.local_endpoint(), SILENT, bytes("q"), 60 * SECOND, callback);
    }
    assert_eq!(*outcomes.lock(), vec![Err(RequestError::Overloaded)]);
    let stats = a.stats();
    assert_eq!((stats.outstanding_requests, stats.callback_table_full), (2, 1));
    a.shutdown();
    assert_eq!(outcomes.lock().len(), 3, "shutdown failed the two outstanding requests");
    b.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_late_responses_are_counted_and_dropped() {
    let (a, _) = start(config());
    let mut raw = raw_connect(a.local_endpoint(), &preamble(PROTOCOL_VERSION, CLUSTER)).await;
    let mut reply = [0u8; 2];
    raw.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply, [PROTOCOL_VERSION, 0]);
    let header =
        FrameHeader { kind: MessageKind::Response, verb: ECHO, id: MessageId(999), expires_in_ms: 5000 };
    raw.write_all(&header.encode_frame(b"nobody asked")).await.unwrap();
    wait_until("the response was counted", 5 * SECOND, || a.stats().late_responses == 1).await;
    assert_eq!(a.stats().protocol_errors, 0, "a late response is not a protocol error");
    a.shutdown();
}
