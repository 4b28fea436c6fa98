//! One client connection: a reader loop that frames and decodes requests, concurrent request
//! tasks, and a writer task that serializes their responses onto the socket.
//!
//! ```text
//!  socket ──► reader loop ──(permit)──► request task ─► Handler::handle ─┐
//!               │  OPTIONS / STARTUP / REGISTER answered inline          │ encoded frame
//!               └───────────────────────────────────────────────► bounded queue ─► writer ─► socket
//!  EventBus ──► event task (after REGISTER, stream -1) ─────────────────┘
//! ```

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, error, warn};

use crate::protocol::codec::{StringMap, StringMultimap};
use crate::protocol::compression::Compression;
use crate::protocol::error::ProtocolError;
use crate::protocol::event::{Event, EventType};
use crate::protocol::frame::{Direction, FrameHeader, EVENT_STREAM_ID, HEADER_LEN};
use crate::protocol::request::{decompress_body, Request, RequestEnvelope};
use crate::protocol::response::{Response, ResponseEnvelope};
use crate::protocol::server::{shutdown_signalled, Handler, Shared};

/// The CQL version advertised in SUPPORTED.
pub const CQL_VERSION: &str = "3.4.5";
/// The protocol versions advertised in SUPPORTED.
pub const PROTOCOL_VERSIONS: &str = "4/v4";
/// Encoded frames waiting for the writer. Producers wait when it is full.
const OUTBOUND_QUEUE: usize = 128;
/// Read buffer growth step and minimum free space before a read.
const READ_CHUNK: usize = 64 * 1024;
const WRITE_BUFFER: usize = 64 * 1024;
/// After a protocol violation: how long to keep reading (and discarding) so the client receives
/// the error frame before the close instead of a reset.
const LINGER: Duration = Duration::from_secs(1);

const COMPRESSION_NONE: u8 = 0;
const COMPRESSION_LZ4: u8 = 1;
const COMPRESSION_SNAPPY: u8 = 2;

/// Per-connection state shared by the reader, the request tasks and the handler.
#[derive(Debug)]
pub struct ConnectionState {
    id: u64,
    peer: SocketAddr,
    keyspace: Mutex<Option<String>>,
    startup_options: Mutex<StringMap>,
    ready: AtomicBool,
    compression: AtomicU8,
    registered: AtomicU8,
}

impl ConnectionState {
    /// Fresh state: no keyspace, not started, no compression, no events.
    pub fn new(id: u64, peer: SocketAddr) -> Self {
        ConnectionState {
            id,
            peer,
            keyspace: Mutex::new(None),
            startup_options: Mutex::new(StringMap::new()),
            ready: AtomicBool::new(false),
            compression: AtomicU8::new(COMPRESSION_NONE),
            registered: AtomicU8::new(0),
        }
    }

    /// Server-unique connection id (1, 2, ... in accept order).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The keyspace set by `USE`, if any.
    pub fn keyspace(&self) -> Option<String> {
        self.keyspace.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Sets (or clears) the current keyspace.
    pub fn set_keyspace(&self, keyspace: Option<String>) {
        *self.keyspace.lock().unwrap_or_else(PoisonError::into_inner) = keyspace;
    }

    /// The options the client sent in STARTUP (driver name and version, ...).
    pub fn startup_options(&self) -> StringMap {
        self.startup_options.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Whether STARTUP completed (READY was sent).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The compression negotiated in STARTUP.
    pub fn compression(&self) -> Option<Compression> {
        match self.compression.load(Ordering::Acquire) {
            COMPRESSION_LZ4 => Some(Compression::Lz4),
            COMPRESSION_SNAPPY => Some(Compression::Snappy),
            _ => None,
        }
    }

    /// Whether the connection REGISTERed for `event_type`.
    pub fn is_registered(&self, event_type: EventType) -> bool {
        self.registered.load(Ordering::Acquire) & event_type.mask() != 0
    }

    /// The registered event types.
    pub fn registered_events(&self) -> Vec<EventType> {
        EventType::ALL.into_iter().filter(|t| self.is_registered(*t)).collect()
    }

    fn complete_startup(&self, options: StringMap, compression: Option<Compression>) {
        let code = match compression {
            None => COMPRESSION_NONE,
            Some(Compression::Lz4) => COMPRESSION_LZ4,
            Some(Compression::Snappy) => COMPRESSION_SNAPPY,
        };
        *self.startup_options.lock().unwrap_or_else(PoisonError::into_inner) = options;
        self.compression.store(code, Ordering::Release);
        self.ready.store(true, Ordering::Release);
    }

    fn register(&self, event_type: EventType) {
        self.registered.fetch_or(event_type.mask(), Ordering::AcqRel);
    }
}

/// The SUPPORTED body: what STARTUP accepts. No `SCYLLA_*` keys (drivers would then expect
/// Scylla extensions).
pub fn supported_options() -> StringMultimap {
    let mut options = StringMultimap::new();
    options.insert("CQL_VERSION".into(), vec![CQL_VERSION.into()]);
    options
        .insert("COMPRESSION".into(), Compression::SUPPORTED.iter().map(|c| c.name().to_owned()).collect());
    options.insert("PROTOCOL_VERSIONS".into(), vec![PROTOCOL_VERSIONS.into()]);
    options
}

/// Validates STARTUP: the negotiated compression, or the protocol error message to answer.
///
/// Rules: STARTUP is accepted once; `CQL_VERSION` must be present and non-empty (any value is
/// accepted: drivers send 3.0.0, 3.4.5, 4.0.0); `COMPRESSION`, if present, must be `lz4` or
/// `snappy` (any case); unknown keys are ignored.
pub fn negotiate_startup(already_ready: bool, options: &StringMap) -> Result<Option<Compression>, String> {
    if already_ready {
        return Err("STARTUP was already received on this connection".into());
    }
    match options.get("CQL_VERSION") {
        Some(v) if !v.is_empty() => {}
        _ => return Err("Missing value CQL_VERSION in STARTUP message".into()),
    }
    match options.get("COMPRESSION") {
        None => Ok(None),
        Some(name) => Compression::from_startup_option(name).map(Some).map_err(|e| e.to_string()),
    }
}

/// Why a reader loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed its side.
    Eof,
    /// Server shutdown.
    Shutdown,
    /// The client broke the protocol; an error frame was queued.
    Violation,
    /// Socket error, or the writer stopped.
    Broken,
}

/// What a running request holds until its response is queued: its slot and its body bytes.
struct InFlight {
    _count: OwnedSemaphorePermit,
    _connection_bytes: OwnedSemaphorePermit,
    _global_bytes: OwnedSemaphorePermit,
}

enum Flow {
    Continue,
    End(End),
}

struct ConnectionLoop<H> {
    conn: Arc<ConnectionState>,
    shared: Arc<Shared<H>>,
    read_half: OwnedReadHalf,
    buf: BytesMut,
    tx: mpsc::Sender<Bytes>,
    permits: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    requests: JoinSet<()>,
    events_task: Option<JoinHandle<()>>,
}

/// Runs one connection to completion. Never panics on client input; never returns an error (the
/// outcome is logged).
pub(crate) async fn run_connection<H: Handler>(
    stream: TcpStream,
    conn: Arc<ConnectionState>,
    shared: Arc<Shared<H>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (read_half, write_half) = stream.into_split();
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let mut writer = tokio::spawn(write_loop(write_half, rx));
    let grace = shared.limits.shutdown_grace;
    let permits = Arc::new(Semaphore::new(shared.limits.max_concurrent_requests_per_connection));
    let bytes = Arc::new(Semaphore::new(shared.limits.max_request_bytes_in_flight_per_connection));
    let mut state = ConnectionLoop {
        conn,
        shared,
        read_half,
        buf: BytesMut::with_capacity(READ_CHUNK),
        tx,
        permits,
        bytes,
        requests: JoinSet::new(),
        events_task: None,
    };
    let end = state.run(&mut shutdown).await;
    debug!(id = state.conn.id, peer = %state.conn.peer, ?end, "connection reader finished");

    let ConnectionLoop { conn, read_half, tx, mut requests, events_task, .. } = state;
    if let Some(task) = events_task {
        task.abort();
        let _ = task.await;
    }
    drop(tx);
    // In-flight requests finish (bounded), their responses are flushed, then the socket closes.
    let deadline = tokio::time::Instant::now() + grace;
    let drained = tokio::time::timeout_at(deadline, async {
        while let Some(done) = requests.join_next().await {
            if let Err(e) = done {
                error!(id = conn.id, "request task failed: {e}");
            }
        }
    })
    .await;
    if drained.is_err() {
        warn!(id = conn.id, "in-flight requests did not finish within the shutdown grace; cancelling them");
        requests.shutdown().await;
    }
    let flush_deadline = deadline.max(tokio::time::Instant::now() + Duration::from_millis(100));
    if tokio::time::timeout_at(flush_deadline, &mut writer).await.is_err() {
        warn!(id = conn.id, "client is not reading its responses; closing");
        writer.abort();
    }
    if end == End::Violation {
        linger(read_half).await;
    }
}

impl<H: Handler> ConnectionLoop<H> {
    async fn run(&mut self, shutdown: &mut watch::Receiver<bool>) -> End {
        loop {
            while self.requests.try_join_next().is_some() {}
            match self.next_frame() {
                Err((stream, err)) => return self.violation(stream, err).await,
                Ok(Some((header, body))) => match self.dispatch(header, body, shutdown).await {
                    Flow::Continue => continue,
                    Flow::End(end) => return end,
                },
                Ok(None) => {}
            }
            if self.buf.capacity().saturating_sub(self.buf.len()) < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                () = shutdown_signalled(shutdown) => return End::Shutdown,
                () = self.tx.closed() => return End::Broken,
                read = self.read_half.read_buf(&mut self.buf) => match read {
                    Ok(0) => return End::Eof,
                    Ok(_) => {}
                    Err(e) => {
                        debug!(id = self.conn.id, "read failed: {e}");
                        return End::Broken;
                    }
                },
            }
        }
    }

    /// Splits the next complete frame off the read buffer. Errors carry the stream id to answer on.
    fn next_frame(&mut self) -> Result<Option<(FrameHeader, Bytes)>, (i16, ProtocolError)> {
        let Some(&version_byte) = self.buf.first() else { return Ok(None) };
        // Answer a wrong version as soon as the stream id is known: older versions have shorter
        // headers, and the client waits for our answer before sending anything else.
        if let Err(e) = FrameHeader::check_version(version_byte, Direction::Request) {
            return match FrameHeader::peek_stream(&self.buf) {
                Some(stream) => Err((stream, e)),
                None => Ok(None),
            };
        }
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let header = FrameHeader::decode(&self.buf, Direction::Request, self.shared.limits.max_frame_bytes)
            .map_err(|e| (FrameHeader::peek_stream(&self.buf).unwrap_or(0), e))?;
        let total = HEADER_LEN.saturating_add(header.length);
        if self.buf.len() < total {
            // bounded: header.length <= max_frame_bytes
            self.buf.reserve(total.saturating_sub(self.buf.len()));
            return Ok(None);
        }
        let mut frame = self.buf.split_to(total);
        let body = frame.split_off(HEADER_LEN).freeze();
        Ok(Some((header, body)))
    }

    async fn dispatch(
        &mut self,
        header: FrameHeader,
        body: Bytes,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Flow {
        // Back-pressure: at the in-flight limit, stop here (and so stop reading the socket).
        let permit = tokio::select! {
            biased;
            () = shutdown_signalled(shutdown) => return Flow::End(End::Shutdown),
            permit = Arc::clone(&self.permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return Flow::End(End::Broken),
            },
        };
        let compression = self.conn.compression();
        let limits = &self.shared.limits;
        let decoded = decompress_body(&header, body, compression, limits.max_frame_bytes).and_then(|body| {
            let len = body.len();
            RequestEnvelope::decode(&header, body, limits).map(|envelope| (envelope, len))
        });
        let (envelope, body_len) = match decoded {
            Ok(d) => d,
            Err(e) => return Flow::End(self.violation(header.stream, e).await),
        };
        // Second back-pressure: request bytes held in flight, per connection and overall.
        let in_flight = tokio::select! {
            biased;
            () = shutdown_signalled(shutdown) => return Flow::End(End::Shutdown),
            in_flight = self.reserve_bytes(body_len, permit) => match in_flight {
                Some(f) => f,
                None => return Flow::End(End::Broken),
            },
        };
        let stream = envelope.stream;
        match &envelope.request {
            Request::Options => {
                self.reply(stream, Response::Supported(supported_options()), compression).await
            }
            Request::Startup(options) => match negotiate_startup(self.conn.is_ready(), options) {
                Ok(negotiated) => {
                    self.conn.complete_startup(options.clone(), negotiated);
                    debug!(id = self.conn.id, ?negotiated, "STARTUP complete");
                    // the READY answering STARTUP is never compressed
                    self.reply(stream, Response::Ready, None).await
                }
                Err(message) => self.reply(stream, Response::protocol_error(message), compression).await,
            },
            Request::Register { events } if self.conn.is_ready() => {
                for event_type in events {
                    self.conn.register(*event_type);
                }
                self.start_event_forwarding();
                self.reply(stream, Response::Ready, compression).await
            }
            request if !self.conn.is_ready() => {
                let message =
                    format!("Unexpected message {}, expecting STARTUP or OPTIONS", request.opcode());
                self.reply(stream, Response::protocol_error(message), compression).await
            }
            _ => {
                self.spawn_request(envelope, in_flight);
                Flow::Continue
            }
        }
    }

    /// Takes `len` bytes (capped at each budget, so an oversized frame takes all of it) from the
    /// connection's and the server's request byte budgets.
    async fn reserve_bytes(&self, len: usize, count: OwnedSemaphorePermit) -> Option<InFlight> {
        let take = |budget: usize| u32::try_from(len.min(budget)).unwrap_or(u32::MAX);
        let limits = &self.shared.limits;
        let connection_bytes = Arc::clone(&self.bytes)
            .acquire_many_owned(take(limits.max_request_bytes_in_flight_per_connection))
            .await
            .ok()?;
        let global_bytes = Arc::clone(&self.shared.global_bytes)
            .acquire_many_owned(take(limits.max_request_bytes_in_flight))
            .await
            .ok()?;
        Some(InFlight { _count: count, _connection_bytes: connection_bytes, _global_bytes: global_bytes })
    }

    async fn reply(&self, stream: i16, response: Response, compression: Option<Compression>) -> Flow {
        let Some(frame) = encode_response(stream, &ResponseEnvelope::from(response), compression) else {
            return Flow::End(End::Broken);
        };
        match self.tx.send(frame).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::End(End::Broken),
        }
    }

    async fn violation(&self, stream: i16, err: ProtocolError) -> End {
        if matches!(err, ProtocolError::UnsupportedVersion { .. }) {
            // Drivers open with the newest version they know and step down on this error: the
            // negotiation, not a fault.
            debug!(id = self.conn.id, peer = %self.conn.peer, "protocol version negotiation: {err}");
        } else {
            warn!(id = self.conn.id, peer = %self.conn.peer, stream, "protocol violation, closing: {err}");
        }
        // Sent uncompressed: the flag tells the client, and the body must be readable even if
        // the violation was a broken compressed frame.
        if let Some(frame) = encode_response(stream, &Response::protocol_error(err.to_string()).into(), None)
        {
            let _ = self.tx.send(frame).await;
        }
        End::Violation
    }

    fn spawn_request(&mut self, envelope: RequestEnvelope, in_flight: InFlight) {
        let handler = Arc::clone(&self.shared.handler);
        let conn = Arc::clone(&self.conn);
        let tx = self.tx.clone();
        self.requests.spawn(async move {
            let stream = envelope.stream;
            let opcode = envelope.request.opcode();
            let outcome = CatchUnwind::new(async { handler.handle(&conn, envelope).await }).await;
            let response = match outcome {
                Ok(response) => response,
                Err(panic) => {
                    let message = panic_message(panic.as_ref());
                    error!(id = conn.id, stream, %opcode, "request handler panicked: {message}");
                    Response::server_error(format!("internal error while handling {opcode}: {message}"))
                        .into()
                }
            };
            if let Some(frame) = encode_response(stream, &response, conn.compression()) {
                let _ = tx.send(frame).await;
            }
            drop(in_flight);
        });
    }

    fn start_event_forwarding(&mut self) {
        if self.events_task.is_none() {
            let rx = self.shared.events.subscribe();
            self.events_task =
                Some(tokio::spawn(forward_events(Arc::clone(&self.conn), rx, self.tx.clone())));
        }
    }
}

/// Encodes a response; if that fails (a handler produced something unencodable, e.g. a
/// 70 000-byte column name), answers Server error instead so the client is not left waiting.
fn encode_response(
    stream: i16,
    response: &ResponseEnvelope,
    compression: Option<Compression>,
) -> Option<Bytes> {
    match response.encode(stream, compression) {
        Ok(frame) => Some(frame),
        Err(e) => {
            error!(stream, "cannot encode response: {e}");
            let fallback = Response::server_error(format!("the response could not be encoded: {e}"));
            ResponseEnvelope::from(fallback).encode(stream, compression).ok()
        }
    }
}

async fn forward_events(
    conn: Arc<ConnectionState>,
    mut rx: broadcast::Receiver<Event>,
    tx: mpsc::Sender<Bytes>,
) {
    loop {
        match rx.recv().await {
            Ok(event) => {
                if !conn.is_registered(event.event_type()) {
                    continue;
                }
                let response = ResponseEnvelope::from(Response::Event(event));
                if let Some(frame) = encode_response(EVENT_STREAM_ID, &response, conn.compression()) {
                    if tx.send(frame).await.is_err() {
                        return;
                    }
                }
            }
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                warn!(id = conn.id, skipped, "client is slow to receive events; skipped some");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn write_loop(write_half: OwnedWriteHalf, mut rx: mpsc::Receiver<Bytes>) {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, write_half);
    while let Some(frame) = rx.recv().await {
        if out.write_all(&frame).await.is_err() {
            return;
        }
        // batch whatever else is ready into one flush
        while let Ok(more) = rx.try_recv() {
            if out.write_all(&more).await.is_err() {
                return;
            }
        }
        if out.flush().await.is_err() {
            return;
        }
    }
    let _ = out.shutdown().await;
}

/// Reads and discards input until the client closes or [`LINGER`] passes, so that closing with
/// unread input does not reset the connection before the client has read our error frame.
async fn linger(mut read_half: OwnedReadHalf) {
    let mut scratch = vec![0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        loop {
            match read_half.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// Turns a panic inside a future into an `Err` (like `futures::FutureExt::catch_unwind`, without
/// the dependency). The future is boxed, so no pin projection (and no `unsafe`) is needed.
struct CatchUnwind<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> CatchUnwind<F> {
    fn new(future: F) -> Self {
        CatchUnwind { inner: Box::pin(future) }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match catch_unwind(AssertUnwindSafe(|| this.inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
