//! [`MessagingService`]: the handle the rest of the node sends and receives messages through.
//!
//! This file owns the routing decisions that do not depend on a socket: which peer a message is
//! for, whether the filter lets it through, whether it goes to the local handler or onto a peer's
//! queue, how responses find their callbacks, and when callbacks time out. The tasks that move
//! bytes live in `connection.rs`.
//!
//! Every `send_*` method only takes short locks and never awaits, so it can be called from tokio
//! tasks and from plain threads alike. Messages to this node itself skip the socket but not the
//! filter, the expiry check or the bounds.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch, Notify};

use super::callbacks::{CallbackTable, RegisterError};
use super::config::MessagingConfig;
use super::filter::{FilterAction, FilterContext, MessageFilter};
use super::frame::{Frame, Preamble, PROTOCOL_VERSION};
use super::queue::{OutboundMessage, OutboundQueue};
use super::request::{RequestError, Response, ResponseCallback};
use super::stats::{ConnectionState, DropCause, MessagingStats, PeerCounters, VerbStats};
use super::{connection, MessageId, MessageKind, Verb};
use crate::endpoint::Endpoint;

/// Receives every request and one-way message addressed to this node.
///
/// `handle` runs on the connection's reader task (or a messaging task, for messages to self):
/// it must not block, not even briefly on disk. Hand the work to another thread or task and
/// answer later through the [`Responder`], which may be moved anywhere.
pub trait InboundHandler: Send + Sync + 'static {
    /// Handles one message. For one-way messages the responder does nothing.
    fn handle(&self, from: Endpoint, verb: Verb, payload: Bytes, responder: Responder);
}

impl<F> InboundHandler for F
where
    F: Fn(Endpoint, Verb, Bytes, Responder) + Send + Sync + 'static,
{
    fn handle(&self, from: Endpoint, verb: Verb, payload: Bytes, responder: Responder) {
        self(from, verb, payload, responder)
    }
}

/// Answers one inbound request, at most once (its methods consume it). Dropping it without
/// answering leaves the requester to time out, as Cassandra does. `Send`: it may be moved to
/// another thread and used later.
pub struct Responder {
    reply: Option<ReplyTo>,
}

struct ReplyTo {
    inner: Arc<Inner>,
    to: Endpoint,
    verb: Verb,
    id: MessageId,
    expires_at: Instant,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reply {
            None => f.write_str("Responder(one-way)"),
            Some(r) => f
                .debug_struct("Responder")
                .field("to", &r.to)
                .field("verb", &r.verb)
                .field("id", &r.id)
                .finish(),
        }
    }
}

impl Responder {
    /// A responder for a one-way message: every method does nothing.
    pub fn one_way() -> Responder {
        Responder { reply: None }
    }

    /// Whether the sender waits for an answer (false for one-way messages).
    pub fn expects_response(&self) -> bool {
        self.reply.is_some()
    }

    /// When the request stops being useful to its sender; `None` for one-way messages. A
    /// response sent after this instant is dropped as expired.
    pub fn expires_at(&self) -> Option<Instant> {
        self.reply.as_ref().map(|r| r.expires_at)
    }

    /// Sends a response carrying `payload`.
    pub fn respond(self, payload: Bytes) {
        self.send(MessageKind::Response, payload);
    }

    /// Sends a failure response; the requester gets [`RequestError::Failed`] with `reason`
    /// (truncated to what fits in a frame).
    pub fn fail(self, reason: impl Into<String>) {
        let Some(reply) = &self.reply else { return };
        let mut reason = reason.into();
        let max = reply.inner.config.max_payload_bytes();
        if reason.len() > max {
            let mut end = max;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        self.send(MessageKind::FailureResponse, Bytes::from(reason.into_bytes()));
    }

    fn send(self, kind: MessageKind, payload: Bytes) {
        let Some(r) = self.reply else { return };
        let message = OutboundMessage { kind, verb: r.verb, id: r.id, expires_at: r.expires_at, payload };
        r.inner.route(r.to, message);
    }
}

/// A node's internode messaging: a cheap, cloneable handle to the running service.
///
/// Call [`shutdown`](MessagingService::shutdown) to stop it; dropping the handles does not stop
/// its tasks.
#[derive(Clone)]
pub struct MessagingService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MessagingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagingService")
            .field("local", &self.inner.local)
            .field("cluster_name", &self.inner.config.cluster_name)
            .field("shut_down", &self.inner.is_shut_down())
            .finish()
    }
}

/// One peer's outbound queue, its writer's wake-up, and its counters.
pub(crate) struct Peer {
    pub(crate) endpoint: Endpoint,
    pub(crate) queue: Mutex<OutboundQueue>,
    pub(crate) wake: Notify,
    /// Cuts the writer's reconnect backoff short: the peer just connected to us, so it listens.
    pub(crate) reconnect: Notify,
    writer_started: AtomicBool,
    pub(crate) counters: PeerCounters,
}

/// Service-wide counters.
#[derive(Default)]
pub(crate) struct ServiceCounters {
    pub(crate) late_responses: AtomicU64,
    pub(crate) callback_table_full: AtomicU64,
    pub(crate) refused_connections: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) inbound_connections: AtomicUsize,
}

/// Why [`Inner::route`] did not queue a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteError {
    Overloaded,
    Shutdown,
    TooLarge { size_bytes: usize, max_bytes: usize },
}

/// The state shared by the handle and every messaging task.
pub(crate) struct Inner {
    pub(crate) config: MessagingConfig,
    pub(crate) local: Endpoint,
    pub(crate) preamble: Vec<u8>,
    handler: Arc<dyn InboundHandler>,
    runtime: Handle,
    peers: RwLock<HashMap<Endpoint, Arc<Peer>>>,
    callbacks: Mutex<CallbackTable>,
    timer_wake: Notify,
    next_id: AtomicU64,
    filter: RwLock<Option<MessageFilter>>,
    blocked: RwLock<HashSet<Endpoint>>,
    verbs: Mutex<HashMap<Verb, VerbStats>>,
    deferred: AtomicUsize,
    pub(crate) counters: ServiceCounters,
    shut_down: AtomicBool,
    shutdown_tx: watch::Sender<bool>,
    live_tasks: AtomicUsize,
    tasks_done: Notify,
}

impl MessagingService {
    /// Binds `config.local`, then spawns on the current tokio runtime the listener, which
    /// accepts up to `max_inbound_connections`, and the timer that fails timed-out requests.
    ///
    /// Fails with `InvalidInput` for a bad configuration, or with the bind error; must be called
    /// from within a tokio runtime (multi-threaded, since handlers run on its workers).
    pub fn start(config: MessagingConfig, handler: Arc<dyn InboundHandler>) -> io::Result<MessagingService> {
        Self::start_on(config, handler, None)
    }

    /// Like [`MessagingService::start`], on `listener` when given (already bound to
    /// `config.local`'s address: a node given port 0 keeps the port it was assigned from the
    /// start, so nothing else can take it meanwhile).
    ///
    /// # Errors
    /// As [`MessagingService::start`].
    pub fn start_on(
        config: MessagingConfig,
        handler: Arc<dyn InboundHandler>,
        listener: Option<std::net::TcpListener>,
    ) -> io::Result<MessagingService> {
        config.validate()?;
        let runtime = Handle::try_current()
            .map_err(|e| io::Error::other(format!("MessagingService::start needs a tokio runtime: {e}")))?;
        let listener: TcpListener = match listener {
            Some(l) => {
                l.set_nonblocking(true)?;
                TcpListener::from_std(l)?
            }
            None => {
                let socket =
                    if config.local.0.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
                socket.set_reuseaddr(true)?;
                socket.bind(config.local.0)?;
                socket.listen(1024)?
            }
        };
        let local = Endpoint(listener.local_addr()?);
        let preamble =
            Preamble { version: PROTOCOL_VERSION, from: local, cluster_name: config.cluster_name.clone() }
                .encode()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let (shutdown_tx, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            callbacks: Mutex::new(CallbackTable::new(config.max_outstanding_requests)),
            config,
            local,
            preamble,
            handler,
            runtime,
            peers: RwLock::new(HashMap::new()),
            timer_wake: Notify::new(),
            next_id: AtomicU64::new(1),
            filter: RwLock::new(None),
            blocked: RwLock::new(HashSet::new()),
            verbs: Mutex::new(HashMap::new()),
            deferred: AtomicUsize::new(0),
            counters: ServiceCounters::default(),
            shut_down: AtomicBool::new(false),
            shutdown_tx,
            live_tasks: AtomicUsize::new(0),
            tasks_done: Notify::new(),
        });
        inner.spawn(connection::run_listener(inner.clone(), listener));
        inner.spawn(run_timer(inner.clone()));
        tracing::info!(
            "internode messaging listening on {local} for cluster {:?}",
            inner.config.cluster_name
        );
        Ok(MessagingService { inner })
    }

    /// The endpoint this node listens on and announces (with the bound port if it asked for 0).
    pub fn local_endpoint(&self) -> Endpoint {
        self.inner.local
    }

    /// Queues a one-way message to `to`, dropped if still unsent after `expires`. Never blocks;
    /// a full queue drops the message (counted).
    pub fn send_one_way(&self, to: Endpoint, verb: Verb, payload: Bytes, expires: Duration) {
        let message = OutboundMessage {
            kind: MessageKind::OneWay,
            verb,
            id: MessageId(0),
            expires_at: deadline_after(expires),
            payload,
        };
        self.inner.route(to, message);
    }

    /// Queues a request to `to`; `callback` is called exactly once: with the response, a
    /// failure response, [`RequestError::Timeout`] once `timeout` passed, or at once with
    /// [`RequestError::Overloaded`] if the queue or the callback table is full. Never blocks.
    pub fn send_request(
        &self,
        to: Endpoint,
        verb: Verb,
        payload: Bytes,
        timeout: Duration,
        callback: ResponseCallback,
    ) {
        let inner = &self.inner;
        if inner.is_shut_down() {
            return callback(Err(RequestError::Shutdown));
        }
        let max_bytes = inner.config.max_payload_bytes();
        if payload.len() > max_bytes {
            inner.count_drop(None, verb, DropCause::TooLarge, 1);
            return callback(Err(RequestError::PayloadTooLarge { size_bytes: payload.len(), max_bytes }));
        }
        let id = MessageId(inner.next_id.fetch_add(1, Ordering::Relaxed));
        let expires_at = deadline_after(timeout);
        let registered = inner.callbacks.lock().register(id, to, expires_at, callback);
        match registered {
            Ok(earliest) => {
                if earliest {
                    inner.timer_wake.notify_one();
                }
            }
            Err((RegisterError::Full, callback)) => {
                inner.counters.callback_table_full.fetch_add(1, Ordering::Relaxed);
                inner.count_drop(None, verb, DropCause::QueueFull, 1);
                return callback(Err(RequestError::Overloaded));
            }
            Err((RegisterError::Closed, callback)) => return callback(Err(RequestError::Shutdown)),
        }
        let message = OutboundMessage { kind: MessageKind::Request, verb, id, expires_at, payload };
        inner.route(to, message);
    }

    /// Sends a request and waits for its outcome (see [`send_request`](Self::send_request)).
    pub async fn request(
        &self,
        to: Endpoint,
        verb: Verb,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Response, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.send_request(
            to,
            verb,
            payload,
            timeout,
            Box::new(move |outcome| {
                let _ = tx.send(outcome);
            }),
        );
        rx.await.unwrap_or(Err(RequestError::Shutdown))
    }

    /// Installs (or with `None` removes) the test filter applied to every outgoing message.
    pub fn set_filter(&self, filter: Option<MessageFilter>) {
        *self.inner.filter.write() = filter;
    }

    /// Drops every message to `peer` and every message received from it, until
    /// [`unblock_peer`](Self::unblock_peer). Bounded by `max_peers` blocked peers.
    pub fn block_peer(&self, peer: Endpoint) {
        let mut blocked = self.inner.blocked.write();
        if blocked.len() >= self.inner.config.max_peers && !blocked.contains(&peer) {
            tracing::warn!("not blocking {peer}: {} peers blocked already", blocked.len());
            return;
        }
        if blocked.insert(peer) {
            tracing::info!("blocking all messages to and from {peer}");
        }
    }

    /// Lets messages to and from `peer` through again.
    pub fn unblock_peer(&self, peer: Endpoint) {
        if self.inner.blocked.write().remove(&peer) {
            tracing::info!("unblocking messages to and from {peer}");
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MessagingStats {
        let inner = &self.inner;
        let peers = inner
            .peers
            .read()
            .iter()
            .map(|(endpoint, peer)| {
                let (len, bytes) = {
                    let q = peer.queue.lock();
                    (q.len(), q.size_bytes())
                };
                (*endpoint, peer.counters.snapshot(len, bytes))
            })
            .collect();
        let verbs = inner.verbs.lock().iter().map(|(v, s)| (*v, *s)).collect();
        MessagingStats {
            peers,
            verbs,
            outstanding_requests: inner.callbacks.lock().len(),
            callback_table_full: inner.counters.callback_table_full.load(Ordering::Relaxed),
            late_responses: inner.counters.late_responses.load(Ordering::Relaxed),
            inbound_connections: inner.counters.inbound_connections.load(Ordering::Relaxed),
            refused_connections: inner.counters.refused_connections.load(Ordering::Relaxed),
            protocol_errors: inner.counters.protocol_errors.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting, closes every connection, and fails every outstanding request with
    /// [`RequestError::Shutdown`]; later sends are refused the same way. Idempotent; returns at
    /// once (see [`wait_stopped`](Self::wait_stopped)).
    pub fn shutdown(&self) {
        let inner = &self.inner;
        if inner.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        inner.shutdown_tx.send_replace(true);
        let pending = inner.callbacks.lock().close();
        for callback in pending {
            callback(Err(RequestError::Shutdown));
        }
        tracing::info!("internode messaging on {} shut down", inner.local);
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.is_shut_down()
    }

    /// Waits until every task of the service has ended after [`shutdown`](Self::shutdown): the
    /// listening socket is closed and the port can be bound again.
    pub async fn wait_stopped(&self) {
        let inner = &self.inner;
        loop {
            let done = inner.tasks_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if inner.live_tasks.load(Ordering::Acquire) == 0 {
                return;
            }
            done.await;
        }
    }
}

fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or(now + Duration::from_secs(365 * 24 * 3600))
}

/// Holds one of the bounded slots for work that waits outside a queue: delayed messages and
/// deliveries to this node itself.
struct DeferredSlot(Arc<Inner>);

impl Drop for DeferredSlot {
    fn drop(&mut self) {
        self.0.deferred.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a live task; the last one to end wakes [`MessagingService::wait_stopped`].
struct TaskGuard(Arc<Inner>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.live_tasks.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.tasks_done.notify_waiters();
        }
    }
}

impl Inner {
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    pub(crate) fn subscribe_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown_tx.subscribe()
    }

    /// Spawns a task on the service's runtime, counted for `wait_stopped`.
    pub(crate) fn spawn<F>(self: &Arc<Self>, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.live_tasks.fetch_add(1, Ordering::AcqRel);
        let guard = TaskGuard(self.clone());
        self.runtime.spawn(async move {
            let _guard = guard;
            task.await;
        });
    }

    /// The state kept for `endpoint`, created on first use; `None` past `max_peers`.
    pub(crate) fn peer(&self, endpoint: Endpoint) -> Option<Arc<Peer>> {
        if let Some(peer) = self.peers.read().get(&endpoint) {
            return Some(peer.clone());
        }
        let mut peers = self.peers.write();
        if let Some(peer) = peers.get(&endpoint) {
            return Some(peer.clone());
        }
        if peers.len() >= self.config.max_peers {
            return None;
        }
        let peer = Arc::new(Peer {
            endpoint,
            queue: Mutex::new(OutboundQueue::new(
                self.config.queue_capacity_messages,
                self.config.queue_capacity_bytes,
            )),
            wake: Notify::new(),
            reconnect: Notify::new(),
            writer_started: AtomicBool::new(false),
            counters: PeerCounters::default(),
        });
        peers.insert(endpoint, peer.clone());
        Some(peer)
    }

    fn peer_if_known(&self, endpoint: Endpoint) -> Option<Arc<Peer>> {
        self.peers.read().get(&endpoint).cloned()
    }

    pub(crate) fn is_blocked(&self, endpoint: Endpoint) -> bool {
        let blocked = self.blocked.read();
        !blocked.is_empty() && blocked.contains(&endpoint)
    }

    pub(crate) fn count_drop(&self, peer: Option<&Peer>, verb: Verb, cause: DropCause, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(peer) = peer {
            peer.counters.count_drop(cause, n);
        }
        self.verbs.lock().entry(verb).or_default().count_drop(cause, n);
    }

    fn count_drops(&self, peer: &Peer, messages: &[OutboundMessage], cause: DropCause) {
        for m in messages {
            self.count_drop(Some(peer), m.verb, cause, 1);
        }
    }

    /// Sends `message` to `to` through the filter; on failure, a request's callback is failed.
    fn route(self: &Arc<Self>, to: Endpoint, message: OutboundMessage) {
        let (kind, id) = (message.kind, message.id);
        if let Err(e) = self.try_route(to, message) {
            if kind == MessageKind::Request {
                self.fail_request(id, e);
            }
        }
    }

    fn fail_request(&self, id: MessageId, error: RouteError) {
        let callback = self.callbacks.lock().cancel(id);
        let Some(callback) = callback else { return };
        callback(Err(match error {
            RouteError::Overloaded => RequestError::Overloaded,
            RouteError::Shutdown => RequestError::Shutdown,
            RouteError::TooLarge { size_bytes, max_bytes } => {
                RequestError::PayloadTooLarge { size_bytes, max_bytes }
            }
        }));
    }

    fn try_route(self: &Arc<Self>, to: Endpoint, message: OutboundMessage) -> Result<(), RouteError> {
        if self.is_shut_down() {
            return Err(RouteError::Shutdown);
        }
        let max_bytes = self.config.max_payload_bytes();
        if message.payload.len() > max_bytes {
            tracing::warn!(
                "not sending {} to {to}: payload of {} bytes exceeds the frame bound of {max_bytes}",
                message.verb,
                message.payload.len()
            );
            self.count_drop(None, message.verb, DropCause::TooLarge, 1);
            return Err(RouteError::TooLarge { size_bytes: message.payload.len(), max_bytes });
        }
        let Some(peer) = self.peer(to) else {
            tracing::warn!("not sending {} to {to}: already tracking max_peers peers", message.verb);
            self.count_drop(None, message.verb, DropCause::QueueFull, 1);
            return Err(RouteError::Overloaded);
        };
        match self.filter_action(to, message.verb, message.kind) {
            FilterAction::Deliver => self.dispatch(&peer, message),
            FilterAction::Drop => {
                self.count_drop(Some(&peer), message.verb, DropCause::Filtered, 1);
                Ok(())
            }
            FilterAction::Delay(delay) => self.delay(peer, message, delay),
        }
    }

    fn filter_action(&self, to: Endpoint, verb: Verb, kind: MessageKind) -> FilterAction {
        if self.is_blocked(to) {
            return FilterAction::Drop;
        }
        let filter = self.filter.read().clone();
        match filter {
            None => FilterAction::Deliver,
            Some(filter) => filter(&FilterContext { from: self.local, to, verb, kind }),
        }
    }

    fn try_deferred_slot(self: &Arc<Self>) -> Option<DeferredSlot> {
        let taken = self.deferred.fetch_add(1, Ordering::AcqRel);
        let slot = DeferredSlot(self.clone());
        (taken < self.config.queue_capacity_messages).then_some(slot)
    }

    /// Queues `message` after `delay`, holding a deferred slot meanwhile.
    fn delay(
        self: &Arc<Self>,
        peer: Arc<Peer>,
        message: OutboundMessage,
        delay: Duration,
    ) -> Result<(), RouteError> {
        let Some(slot) = self.try_deferred_slot() else {
            self.count_drop(Some(&peer), message.verb, DropCause::QueueFull, 1);
            return Err(RouteError::Overloaded);
        };
        let inner = self.clone();
        let mut shutdown = self.subscribe_shutdown();
        self.spawn(async move {
            let _slot = slot;
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return,
            }
            let (kind, id) = (message.kind, message.id);
            if let Err(e) = inner.dispatch(&peer, message) {
                if kind == MessageKind::Request {
                    inner.fail_request(id, e);
                }
            }
        });
        Ok(())
    }

    /// Hands a message that passed the filter to the local handler or to the peer's queue.
    fn dispatch(self: &Arc<Self>, peer: &Arc<Peer>, message: OutboundMessage) -> Result<(), RouteError> {
        if self.is_shut_down() {
            return Err(RouteError::Shutdown);
        }
        let now = Instant::now();
        if message.is_expired(now) {
            self.count_drop(Some(peer), message.verb, DropCause::Expired, 1);
            return Ok(());
        }
        if peer.endpoint == self.local {
            return self.deliver_local(peer, message);
        }
        let mut expired = Vec::new();
        let pushed = peer.queue.lock().push(message, now, &mut expired);
        self.count_drops(peer, &expired, DropCause::Expired);
        match pushed {
            Ok(()) => {
                peer.wake.notify_one();
                self.ensure_writer(peer);
                Ok(())
            }
            Err(refused) => {
                self.count_drop(Some(peer), refused.verb, DropCause::QueueFull, 1);
                self.ensure_writer(peer);
                Err(RouteError::Overloaded)
            }
        }
    }

    fn ensure_writer(self: &Arc<Self>, peer: &Arc<Peer>) {
        if !peer.writer_started.swap(true, Ordering::AcqRel) && !self.is_shut_down() {
            self.spawn(connection::run_writer(self.clone(), peer.clone()));
        }
    }

    /// Delivers a message to this node on a fresh task (never inline: the sender may hold
    /// locks), holding a deferred slot until the handler returns.
    fn deliver_local(self: &Arc<Self>, peer: &Arc<Peer>, message: OutboundMessage) -> Result<(), RouteError> {
        let Some(slot) = self.try_deferred_slot() else {
            self.count_drop(Some(peer), message.verb, DropCause::QueueFull, 1);
            return Err(RouteError::Overloaded);
        };
        peer.counters.sent.fetch_add(1, Ordering::Relaxed);
        let inner = self.clone();
        let peer = peer.clone();
        self.spawn(async move {
            let _slot = slot;
            if !inner.is_shut_down() {
                let OutboundMessage { kind, verb, id, expires_at, payload } = message;
                inner.receive(&peer, kind, verb, id, expires_at, payload);
            }
        });
        Ok(())
    }

    /// Handles a frame read from `peer`'s connection.
    pub(crate) fn receive_frame(self: &Arc<Self>, peer: &Arc<Peer>, frame: Frame) {
        let header = frame.header;
        let expires_at = deadline_after(Duration::from_millis(u64::from(header.expires_in_ms)));
        if header.expires_in_ms == 0 && !header.kind.is_response() {
            peer.counters.received.fetch_add(1, Ordering::Relaxed);
            self.count_drop(Some(peer), header.verb, DropCause::Expired, 1);
            return;
        }
        self.receive(peer, header.kind, header.verb, header.id, expires_at, frame.payload);
    }

    /// Delivers a message from `peer`: requests and one-way messages to the handler, responses
    /// to their callbacks.
    fn receive(
        self: &Arc<Self>,
        peer: &Arc<Peer>,
        kind: MessageKind,
        verb: Verb,
        id: MessageId,
        expires_at: Instant,
        payload: Bytes,
    ) {
        let from = peer.endpoint;
        peer.counters.received.fetch_add(1, Ordering::Relaxed);
        if self.is_blocked(from) {
            self.count_drop(Some(peer), verb, DropCause::Filtered, 1);
            return;
        }
        match kind {
            MessageKind::Request | MessageKind::OneWay => {
                if Instant::now() >= expires_at {
                    self.count_drop(Some(peer), verb, DropCause::Expired, 1);
                    return;
                }
                let responder = if kind == MessageKind::Request {
                    Responder { reply: Some(ReplyTo { inner: self.clone(), to: from, verb, id, expires_at }) }
                } else {
                    Responder::one_way()
                };
                self.handler.handle(from, verb, payload, responder);
            }
            MessageKind::Response => self.complete(from, id, Ok(Response { from, payload })),
            MessageKind::FailureResponse => {
                let reason = String::from_utf8_lossy(&payload).into_owned();
                self.complete(from, id, Err(RequestError::Failed { from, reason }));
            }
        }
    }

    fn complete(&self, from: Endpoint, id: MessageId, outcome: Result<Response, RequestError>) {
        let callback = self.callbacks.lock().complete(id, from);
        match callback {
            Some(callback) => callback(outcome),
            None => {
                self.counters.late_responses.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("dropping late or unknown response {} from {from}", id.0);
            }
        }
    }

    /// Drops the expired messages waiting for `peer` (while its connection is down).
    pub(crate) fn prune_expired(&self, peer: &Peer) {
        let mut expired = Vec::new();
        peer.queue.lock().prune_expired(Instant::now(), &mut expired);
        self.count_drops(peer, &expired, DropCause::Expired);
    }

    pub(crate) fn count_expired(&self, peer: &Peer, verb: Verb) {
        self.count_drop(Some(peer), verb, DropCause::Expired, 1);
    }

    pub(crate) fn set_state(&self, peer: &Peer, state: ConnectionState) {
        peer.counters.set_state(state);
    }
}

/// Fails the callbacks whose deadline passed, sleeping until the earliest remaining one.
async fn run_timer(inner: Arc<Inner>) {
    let mut shutdown = inner.subscribe_shutdown();
    while !inner.is_shut_down() {
        let now = Instant::now();
        let (due, next) = {
            let mut table = inner.callbacks.lock();
            (table.expire(now), table.next_deadline())
        };
        for (to, callback) in due {
            if let Some(peer) = inner.peer_if_known(to) {
                peer.counters.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            callback(Err(RequestError::Timeout));
        }
        let wake_at = next.unwrap_or_else(|| deadline_after(Duration::from_secs(3600)));
        tokio::select! {
            _ = tokio::time::sleep_until(wake_at.into()) => {}
            _ = inner.timer_wake.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}
