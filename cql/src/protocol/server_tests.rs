//! The server over real TCP on 127.0.0.1, with a small test handler.
#![allow(clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::protocol::codec::StringMap;
use crate::protocol::compression::Compression;
use crate::protocol::connection::ConnectionState;
use crate::protocol::consistency::Consistency;
use crate::protocol::event::{
    Event, EventType, SchemaChange, SchemaChangeTarget, SchemaChangeType, StatusChangeType,
    TopologyChangeType,
};
use crate::protocol::frame::{Direction, Frame, FrameFlags, FrameHeader, Opcode, DEFAULT_MAX_FRAME_BYTES};
use crate::protocol::limits::Limits;
use crate::protocol::metadata::{ColumnSpec, ColumnType, RowsMetadata};
use crate::protocol::request::{QueryParameters, Request, RequestEnvelope};
use crate::protocol::request_tests::{frame, ls};
use crate::protocol::response::{
    ErrorKind, ErrorResponse, Response, ResponseEnvelope, ResultBody, Rows, RowsContent,
};
use crate::protocol::server::{serve, EventBus, Handler};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Answers QUERY by its text:
/// `void`, `rows`, `big N` (one N-byte cell), `sleep MS`, `block` (waits for `release`),
/// `panic`, `USE ks`, `keyspace` (the connection's keyspace), `forever` (never answers).
#[derive(Debug)]
struct TestHandler {
    entered: AtomicUsize,
    release: Semaphore,
}

impl Default for TestHandler {
    fn default() -> Self {
        TestHandler { entered: AtomicUsize::new(0), release: Semaphore::new(0) }
    }
}

fn rows_of(cells: Vec<Vec<Option<Bytes>>>) -> Response {
    let width = cells.first().map_or(1, Vec::len);
    let columns = (0..width).map(|i| ColumnSpec::new("ks", "t", format!("c{i}"), ColumnType::Blob)).collect();
    Response::Result(ResultBody::Rows(Rows {
        metadata: RowsMetadata::new(columns),
        rows: RowsContent::Rows(cells),
    }))
}

impl Handler for TestHandler {
    async fn handle(&self, conn: &Arc<ConnectionState>, request: RequestEnvelope) -> ResponseEnvelope {
        let tracing = request.tracing;
        let response = match request.request {
            Request::Query { query, .. } => {
                let (verb, arg) = query.split_once(' ').unwrap_or((query.as_str(), ""));
                match verb {
                    "void" => Response::void(),
                    "rows" => rows_of(vec![
                        vec![Some(Bytes::from_static(b"a")), None],
                        vec![Some(Bytes::from_static(b"b")), Some(Bytes::new())],
                    ]),
                    "big" => rows_of(vec![vec![Some(Bytes::from(vec![b'x'; arg.parse().unwrap()]))]]),
                    "sleep" => {
                        tokio::time::sleep(Duration::from_millis(arg.parse().unwrap())).await;
                        return ResponseEnvelope::from(Response::void()).with_warning(format!("slept {arg}"));
                    }
                    "block" => {
                        self.entered.fetch_add(1, Ordering::SeqCst);
                        self.release.acquire().await.unwrap().forget();
                        Response::void()
                    }
                    "forever" => std::future::pending().await,
                    "panic" => panic!("handler exploded on purpose"),
                    "USE" => {
                        conn.set_keyspace(Some(arg.to_owned()));
                        Response::Result(ResultBody::SetKeyspace(arg.to_owned()))
                    }
                    "keyspace" => rows_of(vec![vec![conn.keyspace().map(Bytes::from)]]),
                    _ => Response::error(ErrorKind::SyntaxError, format!("unknown test query {query:?}")),
                }
            }
            Request::Execute { id, .. } => {
                Response::error(ErrorKind::Unprepared { id }, "Prepared query with ID not found")
            }
            other => Response::invalid(format!("unsupported in tests: {:?}", other.opcode())),
        };
        let mut env = ResponseEnvelope::from(response);
        if tracing {
            env.tracing_id = Some(Uuid::from_u128(0xA11CE));
        }
        env
    }
}

struct TestServer {
    addr: SocketAddr,
    handler: Arc<TestHandler>,
    events: EventBus,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    async fn start(limits: Limits) -> Self {
        Self::start_with_events(limits, EventBus::default()).await
    }

    async fn start_with_events(limits: Limits, events: EventBus) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = Arc::new(TestHandler::default());
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, Arc::clone(&handler), limits, events.clone(), rx));
        TestServer { addr, handler, events, shutdown, task }
    }

    async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// A client that completed OPTIONS and STARTUP.
    async fn ready_client(&self, compression: Option<Compression>) -> Client {
        let mut c = self.client().await;
        c.startup(compression).await;
        c
    }

    async fn stop(self) {
        self.shutdown.send(true).unwrap();
        tokio::time::timeout(TIMEOUT, self.task).await.expect("serve returned").unwrap().unwrap();
    }
}

struct Client {
    stream: TcpStream,
    buf: BytesMut,
    compression: Option<Compression>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client { stream, buf: BytesMut::new(), compression: None }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn send(&mut self, env: RequestEnvelope) {
        let bytes = env.encode(self.compression).unwrap();
        self.send_raw(&bytes).await;
    }

    async fn query(&mut self, stream: i16, query: &str) {
        self.send(RequestEnvelope::new(
            stream,
            Request::Query { query: query.into(), params: QueryParameters::new(Consistency::One) },
        ))
        .await;
    }

    /// The next frame, its raw header and its decoded envelope.
    async fn recv(&mut self) -> (FrameHeader, ResponseEnvelope) {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(f) =
                    Frame::decode(&mut self.buf, Direction::Response, DEFAULT_MAX_FRAME_BYTES).unwrap()
                {
                    let env = ResponseEnvelope::decode_frame(
                        &f.header,
                        f.body,
                        self.compression,
                        DEFAULT_MAX_FRAME_BYTES,
                    )
                    .unwrap();
                    return (f.header, env);
                }
                let n = self.stream.read_buf(&mut self.buf).await.unwrap();
                assert!(n > 0, "connection closed while waiting for a frame");
            }
        })
        .await
        .expect("timed out waiting for a response")
    }

    async fn request(&mut self, stream: i16, request: Request) -> Response {
        self.send(RequestEnvelope::new(stream, request)).await;
        let (header, env) = self.recv().await;
        assert_eq!(header.stream, stream);
        env.response
    }

    async fn startup(&mut self, compression: Option<Compression>) {
        let Response::Supported(options) = self.request(0, Request::Options).await else {
            panic!("not SUPPORTED")
        };
        assert_eq!(options["CQL_VERSION"], vec!["3.4.5".to_owned()]);
        let mut startup = StringMap::new();
        startup.insert("CQL_VERSION".into(), "3.4.5".into());
        startup.insert("DRIVER_NAME".into(), "test".into());
        if let Some(c) = compression {
            startup.insert("COMPRESSION".into(), c.name().into());
        }
        self.send(RequestEnvelope::new(1, Request::Startup(startup))).await;
        let (header, env) = self.recv().await;
        assert_eq!(env.response, Response::Ready);
        assert!(!header.flags.contains(FrameFlags::COMPRESSION), "READY must not be compressed");
        self.compression = compression;
    }

    /// Asserts the server closes the connection (EOF or reset) without sending more frames.
    async fn expect_closed(&mut self) {
        assert!(self.buf.is_empty(), "unread frames before the close: {:?}", self.buf);
        tokio::time::timeout(TIMEOUT, async {
            let mut scratch = [0u8; 1024];
            match self.stream.read(&mut scratch).await {
                Ok(0) | Err(_) => {}
                Ok(n) => panic!("expected close, got {n} more bytes: {:?}", &scratch[..n]),
            }
        })
        .await
        .expect("connection was not closed");
    }

    /// Reads one raw frame: header bytes and body bytes, no decoding beyond the length.
    async fn recv_raw(&mut self) -> (Vec<u8>, Vec<u8>) {
        let mut header = [0u8; 9];
        tokio::time::timeout(TIMEOUT, self.stream.read_exact(&mut header)).await.unwrap().unwrap();
        let len = i32::from_be_bytes([header[5], header[6], header[7], header[8]]) as usize;
        let mut body = vec![0u8; len];
        tokio::time::timeout(TIMEOUT, self.stream.read_exact(&mut body)).await.unwrap().unwrap();
        (header.to_vec(), body)
    }
}

fn expect_error(response: &Response, kind: ErrorKind) -> String {
    match response {
        Response::Error(ErrorResponse { kind: k, message }) => {
            assert_eq!(*k, kind, "message: {message}");
            message.clone()
        }
        other => panic!("expected {kind:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn handshake_options_supported_then_startup_ready() {
    let server = TestServer::start(Limits::default()).await;
    let mut c = server.client().await;
    c.send(RequestEnvelope::new(3, Request::Options)).await;
    let (header, env) = c.recv().await;
    assert_eq!(header.direction, Direction::Response);
    assert_eq!(header.stream, 3);
    let Response::Supported(options) = env.response else { panic!() };
    assert_eq!(options["CQL_VERSION"], vec!["3.4.5"]);
    assert_eq!(options["COMPRESSION"], vec!["lz4", "snappy"]);
    assert_eq!(options["PROTOCOL_VERSIONS"], vec!["4/v4"]);
    assert_eq!(options.len(), 3);

    let mut startup = StringMap::new();
    startup.insert("CQL_VERSION".into(), "4.0.0".into());
    startup.insert("DRIVER_NAME".into(), "x".into());
    startup.insert("CLIENT_ID".into(), "y".into());
    assert_eq!(c.request(7, Request::Startup(startup)).await, Response::Ready);
    c.query(8, "void").await;
    let (header, env) = c.recv().await;
    assert_eq!(header.stream, 8);
    assert_eq!(header.opcode, Opcode::Result);
    assert_eq!(env.response, Response::void());
    // OPTIONS after READY still works
    assert!(matches!(c.request(9, Request::Options).await, Response::Supported(_)));
    server.stop().await;
}

#[tokio::test]
async fn python_startup_bytes_get_ready_bytes() {
    let server = TestServer::start(Limits::default()).await;
    let mut c = server.client().await;
    let body = [
        &[0x00, 0x02][..],
        &crate::protocol::request_tests::s("CQL_VERSION"),
        &crate::protocol::request_tests::s("3.4.5"),
        &crate::protocol::request_tests::s("DRIVER_NAME"),
        &crate::protocol::request_tests::s("DataStax Python Driver"),
    ]
    .concat();
    c.send_raw(&frame(0, 0, 0x01, &body)).await;
    let (header, body) = c.recv_raw().await;
    assert_eq!(header, vec![0x84, 0x00, 0x00, 0x00, 0x02, 0, 0, 0, 0]);
    assert!(body.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn requests_before_startup_are_refused_but_the_connection_stays_open() {
    let server = TestServer::start(Limits::default()).await;
    let mut c = server.client().await;
    let params = QueryParameters::new(Consistency::One);
    let r = c.request(1, Request::Query { query: "void".into(), params }).await;
    let msg = expect_error(&r, ErrorKind::ProtocolError);
    assert_eq!(msg, "Unexpected message QUERY, expecting STARTUP or OPTIONS");
    let r = c.request(2, Request::Register { events: vec![EventType::StatusChange] }).await;
    expect_error(&r, ErrorKind::ProtocolError);
    assert_eq!(server.handler.entered.load(Ordering::SeqCst), 0);
    c.startup(None).await;
    c.query(3, "void").await;
    assert_eq!(c.recv().await.1.response, Response::void());
    server.stop().await;
}

#[tokio::test]
async fn startup_negotiation_rules() {
    let server = TestServer::start(Limits::default()).await;
    let mut c = server.client().await;
    // CQL_VERSION is mandatory
    let r = c.request(1, Request::Startup(StringMap::new())).await;
    assert_eq!(expect_error(&r, ErrorKind::ProtocolError), "Missing value CQL_VERSION in STARTUP message");
    // unknown compression is refused
    let mut opts = StringMap::new();
    opts.insert("CQL_VERSION".into(), "3.0.0".into());
    opts.insert("COMPRESSION".into(), "zstd".into());
    let r = c.request(2, Request::Startup(opts.clone())).await;
    assert!(expect_error(&r, ErrorKind::ProtocolError).contains("zstd"));
    // a good STARTUP (compression name in upper case) then a second one
    opts.insert("COMPRESSION".into(), "LZ4".into());
    assert_eq!(c.request(3, Request::Startup(opts.clone())).await, Response::Ready);
    c.compression = Some(Compression::Lz4);
    let r = c.request(4, Request::Startup(opts)).await;
    expect_error(&r, ErrorKind::ProtocolError);
    server.stop().await;
}

async fn assert_version_refused(server: &TestServer, header: &[u8], version: u8, stream: i16) {
    let mut c = server.client().await;
    c.send_raw(header).await;
    let (h, body) = c.recv_raw().await;
    let expected_stream = stream.to_be_bytes();
    assert_eq!(h[..5], [0x84, 0x00, expected_stream[0], expected_stream[1], 0x00], "version {version}");
    let message =
        format!("Invalid or unsupported protocol version ({version}); supported versions are (4/v4)");
    let mut expected = vec![0, 0, 0, 0x0A];
    expected.extend_from_slice(&(message.len() as u16).to_be_bytes());
    expected.extend_from_slice(message.as_bytes());
    assert_eq!(body, expected, "version {version}");
    c.expect_closed().await;
}

#[tokio::test]
async fn unsupported_versions_get_a_v4_error_and_close() {
    let server = TestServer::start(Limits::default()).await;
    // Python driver: 0x42 (DSE v2), 0x41 (DSE v1), then 5, with OPTIONS or STARTUP
    for version in [0x42u8, 0x41, 5, 3, 65, 0x7F] {
        let mut bytes = frame(0, 0x0102, 0x05, &[]);
        bytes[0] = version;
        assert_version_refused(&server, &bytes, version, 0x0102).await;
    }
    // a v5 STARTUP with a body
    let body = [
        &[0, 1][..],
        &crate::protocol::request_tests::s("CQL_VERSION"),
        &crate::protocol::request_tests::s("3.4.5"),
    ]
    .concat();
    let mut bytes = frame(0, 0, 0x01, &body);
    bytes[0] = 5;
    assert_version_refused(&server, &bytes, 5, 0).await;
    // protocol v2 had 8-byte headers with a 1-byte stream id
    assert_version_refused(&server, &[0x02, 0x00, 0x05, 0x05, 0, 0, 0, 0], 2, 5).await;
    // the server is still fine
    let mut c = server.ready_client(None).await;
    c.query(1, "void").await;
    assert_eq!(c.recv().await.1.response, Response::void());
    server.stop().await;
}

#[tokio::test]
async fn response_direction_from_a_client_is_a_protocol_error() {
    let server = TestServer::start(Limits::default()).await;
    let mut c = server.client().await;
    let mut bytes = frame(0, 6, 0x05, &[]);
    bytes[0] = 0x84;
    c.send_raw(&bytes).await;
    let (header, env) = c.recv().await;
    assert_eq!(header.stream, 6);
    assert!(expect_error(&env.response, ErrorKind::ProtocolError).contains("direction"));
    c.expect_closed().await;
    server.stop().await;
}

async fn compressed_round_trip(compression: Compression) {
    let server = TestServer::start(Limits::default()).await;
    let mut c = server.ready_client(Some(compression)).await;
    // a compressed request and a large, compressed response
    c.query(5, "big 100000").await;
    let (header, env) = c.recv().await;
    assert!(header.flags.contains(FrameFlags::COMPRESSION));
    assert!(header.length < 10_000, "100 kB of 'x' compresses: {}", header.length);
    let Response::Result(ResultBody::Rows(rows)) = env.response else { panic!() };
    let RowsContent::Rows(cells) = rows.rows else { panic!() };
    assert_eq!(cells[0][0].as_deref(), Some(&vec![b'x'; 100_000][..]));
    // uncompressed requests are still accepted after negotiation
    c.compression = None;
    c.send(RequestEnvelope::new(
        6,
        Request::Query { query: "rows".into(), params: QueryParameters::new(Consistency::One) },
    ))
    .await;
    c.compression = Some(compression);
    let (header, env) = c.recv().await;
    assert!(header.flags.contains(FrameFlags::COMPRESSION));
    assert!(matches!(env.response, Response::Result(ResultBody::Rows(_))));
    // corrupt compressed data: protocol error, then close
    let mut bad = frame(0x01, 7, 0x07, &[0, 0, 0, 50, 0xFF, 0xFF, 0xFF]);
    if compression == Compression::Snappy {
        bad = frame(0x01, 7, 0x07, &[50, 0xFF, 0xFF, 0xFF]);
    }
    c.send_raw(&bad).await;
    let (header, env) = c.recv().await;
    assert_eq!(header.stream, 7);
    assert!(expect_error(&env.response, ErrorKind::ProtocolError).contains("decompression failed"));
    c.expect_closed().await;
    server.stop().await;
}

#[tokio::test]
async fn lz4_compressed_round_trip() {
    compressed_round_trip(Compression::Lz4).await;
}

#[tokio::test]
async fn snappy_compressed_round_trip() {
    compressed_round_trip(Compression::Snappy).await;
}

#[tokio::test]
async fn responses_come_back_out_of_order_matched_by_stream() {
    let server = TestServer::start(Limits::default()).await;
    let mut c = server.ready_client(None).await;
    c.query(1, "sleep 400").await;
    c.query(2, "sleep 100").await;
    c.query(3, "void").await;
    let mut order = Vec::new();
    for _ in 0..3 {
        let (header, env) = c.recv().await;
        if header.stream != 3 {
            assert_eq!(env.warnings, vec![format!("slept {}", if header.stream == 1 { 400 } else { 100 })]);
            assert!(header.flags.contains(FrameFlags::WARNING));
        }
        order.push(header.stream);
    }
    assert_eq!(order, vec![3, 2, 1]);
    server.stop().await;
}

#[tokio::test]
async fn in_flight_limit_stops_the_reader() {
    let limits = Limits { max_concurrent_requests_per_connection: 4, ..Limits::default() };
    let server = TestServer::start(limits).await;
    let mut c = server.ready_client(None).await;
    for stream in 10..20 {
        c.query(stream, "block").await;
    }
    let deadline = Instant::now() + TIMEOUT;
    while server.handler.entered.load(Ordering::SeqCst) < 4 {
        assert!(Instant::now() < deadline, "handlers never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.handler.entered.load(Ordering::SeqCst), 4, "more than the limit in flight");
    server.handler.release.add_permits(10);
    let mut streams: Vec<i16> = Vec::new();
    for _ in 0..10 {
        let (header, env) = c.recv().await;
        assert_eq!(env.response, Response::void());
        streams.push(header.stream);
    }
    streams.sort_unstable();
    assert_eq!(streams, (10..20).collect::<Vec<_>>());
    assert_eq!(server.handler.entered.load(Ordering::SeqCst), 10);
    server.stop().await;
}

async fn wait_until_entered(server: &TestServer, n: usize) {
    let deadline = Instant::now() + TIMEOUT;
    while server.handler.entered.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "handlers never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // give the reader a chance to (wrongly) start more
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn request_byte_budget_per_connection_stops_the_reader() {
    // each "block <padding>" query is about 620 body bytes: only one fits in 1000
    let limits = Limits { max_request_bytes_in_flight_per_connection: 1000, ..Limits::default() };
    let server = TestServer::start(limits).await;
    let mut c = server.ready_client(None).await;
    let query = format!("block {}", "p".repeat(600));
    for stream in 1..=3 {
        c.query(stream, &query).await;
    }
    wait_until_entered(&server, 1).await;
    assert_eq!(server.handler.entered.load(Ordering::SeqCst), 1, "byte budget exceeded");
    // small requests from the same connection also wait behind the budget holder
    server.handler.release.add_permits(3);
    for _ in 1..=3 {
        assert_eq!(c.recv().await.1.response, Response::void());
    }
    assert_eq!(server.handler.entered.load(Ordering::SeqCst), 3);
    server.stop().await;
}

#[tokio::test]
async fn request_byte_budget_is_shared_by_all_connections() {
    let limits = Limits { max_request_bytes_in_flight: 1000, ..Limits::default() };
    let server = TestServer::start(limits).await;
    let mut a = server.ready_client(None).await;
    let mut b = server.ready_client(None).await;
    let query = format!("block {}", "p".repeat(600));
    a.query(1, &query).await;
    b.query(1, &query).await;
    wait_until_entered(&server, 1).await;
    assert_eq!(server.handler.entered.load(Ordering::SeqCst), 1, "global byte budget exceeded");
    server.handler.release.add_permits(2);
    assert_eq!(a.recv().await.1.response, Response::void());
    assert_eq!(b.recv().await.1.response, Response::void());
    server.stop().await;
}

#[tokio::test]
async fn a_frame_larger_than_the_byte_budget_still_runs_alone() {
    let limits = Limits { max_request_bytes_in_flight_per_connection: 100, ..Limits::default() };
    let server = TestServer::start(limits).await;
    let mut c = server.ready_client(None).await;
    let big_query = format!("void {}", "v".repeat(5000));
    for stream in 1..=3 {
        c.query(stream, &big_query).await;
    }
    for stream in 1..=3 {
        let (header, env) = c.recv().await;
        assert_eq!((header.stream, env.response), (stream, Response::void()));
    }
    server.stop().await;
}

async fn assert_violation(server: &TestServer, bytes: &[u8], stream: i16, message_part: &str) {
    let mut c = server.ready_client(None).await;
    c.send_raw(bytes).await;
    let (header, env) = c.recv().await;
    assert_eq!(header.stream, stream, "{message_part}");
    let message = expect_error(&env.response, ErrorKind::ProtocolError);
    assert!(message.contains(message_part), "{message:?} does not contain {message_part:?}");
    c.expect_closed().await;
}

#[tokio::test]
async fn malformed_frames_close_only_their_connection() {
    let server = TestServer::start(Limits::default()).await;
    let mut healthy = server.ready_client(None).await;

    // unknown opcode 0x04
    assert_violation(&server, &frame(0, 7, 0x04, &[]), 7, "unknown opcode 0x04").await;
    // a response opcode
    assert_violation(&server, &frame(0, 8, 0x08, &[]), 8, "unexpected opcode RESULT").await;
    // body shorter than its elements: the query claims 100 bytes
    let body = [&100i32.to_be_bytes()[..], b"SELECT"].concat();
    assert_violation(&server, &frame(0, 9, 0x07, &body), 9, "truncated query string").await;
    // trailing garbage inside a body
    let body = [&ls("void")[..], &[0x00, 0x01, 0x00, 0xEE, 0xEE]].concat();
    assert_violation(
        &server,
        &frame(0, 10, 0x07, &body),
        10,
        "2 unexpected trailing bytes after the QUERY body",
    )
    .await;
    // oversize length: refused from the header alone
    let mut oversize = frame(0, 11, 0x07, &[]);
    oversize[5..9].copy_from_slice(&20_000_000i32.to_be_bytes());
    assert_violation(
        &server,
        &oversize,
        11,
        "frame body length 20000000 exceeds native_transport_max_frame_size 16777216",
    )
    .await;
    // negative length
    let mut negative = frame(0, 12, 0x07, &[]);
    negative[5..9].copy_from_slice(&(-1i32).to_be_bytes());
    assert_violation(&server, &negative, 12, "negative frame body length -1").await;
    // compressed flag without negotiation
    assert_violation(&server, &frame(0x01, 13, 0x07, &[1, 2, 3]), 13, "no compression was negotiated").await;
    // beta flag
    assert_violation(&server, &frame(0x10, 14, 0x05, &[]), 14, "beta").await;
    // unknown consistency
    let body = [&ls("void")[..], &[0x00, 0x20, 0x00]].concat();
    assert_violation(&server, &frame(0, 15, 0x07, &body), 15, "unknown consistency level code 0x0020").await;
    // garbage: random bytes that happen to start with 0x04
    assert_violation(
        &server,
        b"\x04\xde\xad\xbe\xefGARBAGE garbage garbage",
        i16::from_be_bytes([0xAD, 0xBE]),
        "beta",
    )
    .await;

    // the healthy connection never noticed
    healthy.query(99, "rows").await;
    let (header, env) = healthy.recv().await;
    assert_eq!(header.stream, 99);
    assert!(matches!(env.response, Response::Result(ResultBody::Rows(_))));
    server.stop().await;
}

#[tokio::test]
async fn frame_limit_is_configurable() {
    let limits = Limits { max_frame_bytes: 1024, ..Limits::default() };
    let server = TestServer::start(limits).await;
    let query = "x".repeat(2000);
    let body = [&ls(&query)[..], &[0x00, 0x01, 0x00]].concat();
    assert_violation(&server, &frame(0, 1, 0x07, &body), 1, "exceeds native_transport_max_frame_size 1024")
        .await;
    server.stop().await;
}

#[tokio::test]
async fn registered_connections_receive_events_on_stream_minus_one() {
    let server = TestServer::start(Limits::default()).await;
    let mut listener = server.ready_client(None).await;
    let r = listener
        .request(2, Request::Register { events: vec![EventType::StatusChange, EventType::SchemaChange] })
        .await;
    assert_eq!(r, Response::Ready);
    let mut bystander = server.ready_client(None).await;

    let addr: SocketAddr = "127.0.0.5:9042".parse().unwrap();
    // not registered for topology: must not arrive
    server.events.publish(Event::TopologyChange { change: TopologyChangeType::NewNode, address: addr });
    let status = Event::StatusChange { change: StatusChangeType::Down, address: addr };
    assert!(server.events.publish(status.clone()) >= 1);
    let (header, env) = listener.recv().await;
    assert_eq!(header.stream, -1);
    assert_eq!(header.opcode, Opcode::Event);
    assert_eq!(env.response, Response::Event(status));

    let schema = Event::SchemaChange(SchemaChange {
        change_type: SchemaChangeType::Created,
        target: SchemaChangeTarget::Table { keyspace: "ks".into(), table: "t".into() },
    });
    server.events.publish(schema.clone());
    let (header, env) = listener.recv().await;
    assert_eq!(header.stream, -1);
    assert_eq!(env.response, Response::Event(schema));

    // the unregistered connection got nothing: its next frame is the answer to its query
    bystander.query(5, "void").await;
    let (header, _) = bystander.recv().await;
    assert_eq!(header.stream, 5);
    // and neither did the listener get the topology event
    listener.query(6, "void").await;
    let (header, _) = listener.recv().await;
    assert_eq!(header.stream, 6);
    server.stop().await;
}

#[tokio::test]
async fn compressed_connections_receive_compressed_events() {
    let server = TestServer::start(Limits::default()).await;
    let mut c = server.ready_client(Some(Compression::Lz4)).await;
    assert_eq!(
        c.request(1, Request::Register { events: vec![EventType::TopologyChange] }).await,
        Response::Ready
    );
    let event = Event::TopologyChange {
        change: TopologyChangeType::RemovedNode,
        address: "[::1]:9042".parse().unwrap(),
    };
    server.events.publish(event.clone());
    let (header, env) = c.recv().await;
    assert!(header.flags.contains(FrameFlags::COMPRESSION));
    assert_eq!(env.response, Response::Event(event));
    server.stop().await;
}

#[tokio::test]
async fn slow_event_consumers_skip_events_instead_of_buffering() {
    let server = TestServer::start_with_events(Limits::default(), EventBus::new(4)).await;
    let mut c = server.ready_client(None).await;
    assert_eq!(
        c.request(1, Request::Register { events: vec![EventType::StatusChange] }).await,
        Response::Ready
    );
    // publish far more than the buffer in one go; the connection may skip some
    for i in 0..10_000u32 {
        let address = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 9042));
        server.events.publish(Event::StatusChange { change: StatusChangeType::Up, address });
    }
    c.query(2, "void").await;
    let mut events = 0;
    loop {
        let (header, env) = c.recv().await;
        if header.stream == 2 {
            assert_eq!(env.response, Response::void());
            break;
        }
        events += 1;
    }
    assert!((1..10_000).contains(&events), "{events} events delivered");
    server.stop().await;
}

#[tokio::test]
async fn handler_panic_becomes_server_error_and_everything_keeps_working() {
    let server = TestServer::start(Limits::default()).await;
    let mut c = server.ready_client(None).await;
    c.query(4, "panic").await;
    let (header, env) = c.recv().await;
    assert_eq!(header.stream, 4);
    let message = expect_error(&env.response, ErrorKind::ServerError);
    assert!(message.contains("handler exploded on purpose"), "{message}");
    // same connection, and a new one
    c.query(5, "void").await;
    assert_eq!(c.recv().await.1.response, Response::void());
    let mut other = server.ready_client(None).await;
    other.query(1, "rows").await;
    assert!(matches!(other.recv().await.1.response, Response::Result(ResultBody::Rows(_))));
    server.stop().await;
}

#[tokio::test]
async fn keyspace_tracing_and_unprepared_go_through_the_handler() {
    let server = TestServer::start(Limits::default()).await;
    let mut a = server.ready_client(None).await;
    let mut b = server.ready_client(None).await;
    a.query(1, "USE ks1").await;
    assert_eq!(a.recv().await.1.response, Response::Result(ResultBody::SetKeyspace("ks1".into())));
    for (client, expected) in [(&mut a, Some(Bytes::from_static(b"ks1"))), (&mut b, None)] {
        client.query(2, "keyspace").await;
        let Response::Result(ResultBody::Rows(rows)) = client.recv().await.1.response else { panic!() };
        assert_eq!(rows.rows, RowsContent::Rows(vec![vec![expected]]));
    }
    let mut traced = RequestEnvelope::new(
        3,
        Request::Query { query: "void".into(), params: QueryParameters::new(Consistency::One) },
    );
    traced.tracing = true;
    a.send(traced).await;
    let (header, env) = a.recv().await;
    assert!(header.flags.contains(FrameFlags::TRACING));
    assert_eq!(env.tracing_id, Some(Uuid::from_u128(0xA11CE)));
    let id = Bytes::from_static(&[0xAB; 16]);
    let r = a
        .request(4, Request::Execute { id: id.clone(), params: QueryParameters::new(Consistency::One) })
        .await;
    expect_error(&r, ErrorKind::Unprepared { id });
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_with_overloaded() {
    let limits = Limits { max_connections: 1, ..Limits::default() };
    let server = TestServer::start(limits).await;
    let mut first = server.ready_client(None).await;

    let mut second = server.client().await;
    second.send(RequestEnvelope::new(21, Request::Options)).await;
    let (header, env) = second.recv().await;
    assert_eq!(header.stream, 21);
    assert!(expect_error(&env.response, ErrorKind::Overloaded).contains("max_connections"));
    second.expect_closed().await;

    first.query(1, "void").await;
    assert_eq!(first.recv().await.1.response, Response::void());
    drop(first);
    // once the first connection is gone, a new one is accepted
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut c = server.client().await;
        c.send(RequestEnvelope::new(1, Request::Options)).await;
        if matches!(c.recv().await.1.response, Response::Supported(_)) {
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_then_closes() {
    let server = TestServer::start(Limits::default()).await;
    let mut c = server.ready_client(None).await;
    c.query(1, "sleep 300").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let addr = server.addr;
    server.shutdown.send(true).unwrap();
    let (header, env) = c.recv().await;
    assert_eq!(header.stream, 1);
    assert_eq!(env.response, Response::void());
    c.expect_closed().await;
    tokio::time::timeout(TIMEOUT, server.task).await.unwrap().unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn shutdown_gives_up_on_stuck_requests_after_the_grace_period() {
    let limits = Limits { shutdown_grace: Duration::from_millis(200), ..Limits::default() };
    let server = TestServer::start(limits).await;
    let mut c = server.ready_client(None).await;
    c.query(1, "forever").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    server.shutdown.send(true).unwrap();
    tokio::time::timeout(TIMEOUT, server.task).await.unwrap().unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    c.expect_closed().await;
}

#[tokio::test]
async fn invalid_limits_are_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_tx, rx) = watch::channel(false);
    let limits = Limits { max_concurrent_requests_per_connection: 0, ..Limits::default() };
    let err =
        serve(listener, Arc::new(TestHandler::default()), limits, EventBus::default(), rx).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
