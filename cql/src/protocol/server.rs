//! The TCP front door: accepts connections, enforces `max_connections`, and shuts down cleanly.
//! The per-connection protocol lives in [`crate::protocol::connection`].

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::protocol::connection::{run_connection, ConnectionState};
use crate::protocol::event::Event;
use crate::protocol::frame::FrameHeader;
use crate::protocol::limits::Limits;
use crate::protocol::request::RequestEnvelope;
use crate::protocol::response::{ErrorKind, Response, ResponseEnvelope};

/// Events buffered per subscriber before a slow connection starts skipping them.
pub const DEFAULT_EVENT_BUFFER: usize = 1024;
/// Connections beyond `max_connections` that may concurrently be told "overloaded" before new
/// ones are dropped without a word.
const MAX_PENDING_REJECTIONS: usize = 16;
/// How long a refused connection gets to send its first header before it is closed.
const REJECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Executes requests. The server answers OPTIONS, STARTUP and REGISTER itself and refuses
/// everything else before STARTUP; all other requests (QUERY, PREPARE, EXECUTE, BATCH,
/// AUTH_RESPONSE) come here, concurrently, up to the per-connection in-flight limit.
///
/// A panic inside `handle` is caught and answered with a Server error; the connection and the
/// server keep running.
pub trait Handler: Send + Sync + 'static {
    /// Handles one request. `conn` is the connection's state (peer, id, current keyspace); the
    /// response goes back on `request.stream`.
    fn handle(
        &self,
        conn: &Arc<ConnectionState>,
        request: RequestEnvelope,
    ) -> impl Future<Output = ResponseEnvelope> + Send;
}

/// The source of server-pushed events: publish once, every connection that REGISTERed for the
/// event's type receives it on stream -1.
///
/// Backed by a bounded `tokio::sync::broadcast` channel: a connection that falls more than the
/// buffer behind skips the oldest events instead of growing memory.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
}

impl EventBus {
    /// A bus buffering at most `capacity` events per subscriber (at least 1).
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        EventBus { sender }
    }

    /// Sends an event to every subscribed connection; returns how many subscribers there were.
    pub fn publish(&self, event: Event) -> usize {
        self.sender.send(event).unwrap_or(0)
    }

    /// A new subscription (one per registered connection).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(DEFAULT_EVENT_BUFFER)
    }
}

/// What every connection task shares.
#[derive(Debug)]
pub(crate) struct Shared<H> {
    pub(crate) handler: Arc<H>,
    pub(crate) limits: Limits,
    pub(crate) events: EventBus,
    /// One permit per request body byte in flight, over all connections.
    pub(crate) global_bytes: Arc<Semaphore>,
}

/// Resolves when `shutdown` becomes `true` or its sender is dropped.
pub(crate) async fn shutdown_signalled(shutdown: &mut watch::Receiver<bool>) {
    // Err means the sender is gone: nobody can ask for shutdown any more, treat it as asked.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Serves the CQL native protocol v4 on `listener` until `shutdown` turns `true` (or its sender
/// is dropped).
///
/// On shutdown: stop accepting, stop reading new requests, let in-flight requests finish for up
/// to `limits.shutdown_grace`, flush their responses, close every connection, return.
///
/// Errors only for invalid `limits`; per-connection failures are logged and never end the server.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: Limits,
    events: EventBus,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    limits.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let grace = limits.shutdown_grace;
    let max_connections = limits.max_connections;
    let global_bytes = Arc::new(Semaphore::new(limits.max_request_bytes_in_flight));
    let shared = Arc::new(Shared { handler, limits, events, global_bytes });
    let rejections = Arc::new(Semaphore::new(MAX_PENDING_REJECTIONS));
    let mut connections = JoinSet::new();
    let mut next_id: u64 = 0;
    info!(addr = ?listener.local_addr().ok(), "CQL native protocol server listening");

    loop {
        tokio::select! {
            biased;
            () = shutdown_signalled(&mut shutdown) => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done {
                    error!("connection task failed: {e}");
                }
            }
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!("accept failed: {e}");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                        continue;
                    }
                };
                if connections.len() >= max_connections {
                    warn!(%peer, max_connections, "refusing connection: too many connections");
                    if let Ok(permit) = Arc::clone(&rejections).try_acquire_owned() {
                        tokio::spawn(async move {
                            refuse_connection(stream, max_connections).await;
                            drop(permit);
                        });
                    }
                    continue;
                }
                if let Err(e) = stream.set_nodelay(true) {
                    debug!(%peer, "set_nodelay failed: {e}");
                }
                next_id = next_id.wrapping_add(1);
                let conn = Arc::new(ConnectionState::new(next_id, peer));
                debug!(%peer, id = next_id, "connection accepted");
                connections.spawn(run_connection(stream, conn, Arc::clone(&shared), shutdown.clone()));
            }
        }
    }

    drop(listener);
    info!(open = connections.len(), "shutting down: waiting for connections to drain");
    // Each connection enforces the grace period itself; this outer bound only guards against a bug.
    let drained = tokio::time::timeout(grace.saturating_add(Duration::from_secs(2)), async {
        while let Some(done) = connections.join_next().await {
            if let Err(e) = done {
                error!("connection task failed: {e}");
            }
        }
    })
    .await;
    if drained.is_err() {
        warn!(open = connections.len(), "connections did not close within the shutdown grace; aborting them");
        connections.shutdown().await;
    }
    info!("CQL native protocol server stopped");
    Ok(())
}

/// Tells a connection over the limit why it is being closed: reads its first header (for the
/// stream id, with a short timeout), answers ERROR Overloaded in a v4 frame, closes.
async fn refuse_connection(mut stream: TcpStream, max_connections: usize) {
    let mut header = [0u8; 9];
    let mut filled = 0;
    let _ = tokio::time::timeout(REJECTION_TIMEOUT, async {
        while filled < 4 {
            let Some(rest) = header.get_mut(filled..) else { break };
            match stream.read(rest).await {
                Ok(0) | Err(_) => break,
                Ok(n) => filled = filled.saturating_add(n),
            }
        }
    })
    .await;
    let stream_id = header.get(..filled).and_then(FrameHeader::peek_stream).unwrap_or(0);
    let response = Response::error(
        ErrorKind::Overloaded,
        format!("too many connections: this node accepts at most {max_connections} (max_connections)"),
    );
    if let Ok(frame) = ResponseEnvelope::from(response).encode(stream_id, None) {
        let _ = tokio::time::timeout(REJECTION_TIMEOUT, async {
            let _ = stream.write_all(&frame).await;
            let _ = stream.shutdown().await;
            // drain until the client closes, so unread input does not reset the connection
            // before it has read the error
            let mut scratch = [0u8; 1024];
            while let Ok(n) = stream.read(&mut scratch).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
}
