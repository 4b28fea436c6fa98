//! The tasks that own sockets: the listener, one reader per inbound connection, and one writer
//! per peer.
//!
//! Decisions:
//! - A connection carries frames one way only: the connecting side writes, the accepting side
//!   reads. Responses go back over the responder's own outbound connection, as in Cassandra.
//! - The writer drains its peer's queue in batches into a buffered writer and flushes when the
//!   queue is empty, so a burst costs few syscalls and a lone message goes out at once. While
//!   idle it watches the socket for end-of-file, so a peer that restarts is noticed before the
//!   next message is lost to the dead connection.
//! - A failed connection is retried after a jittered exponential backoff, and only while
//!   something is queued. The backoff is cut short when the peer connects to us: it has
//!   (re)started and listens.
//! - Every refusal and every protocol error is logged with the peer and the reason, and closes
//!   the connection; nothing read from a socket can panic or make us allocate past
//!   `max_frame_bytes`.

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};

use super::backoff::reconnect_delay;
use super::frame::{
    decode_frame, frame_bytes_needed, FrameHeader, HandshakeOutcome, HandshakeReply, Preamble, PreambleError,
    HANDSHAKE_REPLY_BYTES, MAX_PREAMBLE_BYTES, PROTOCOL_VERSION,
};
use super::queue::OutboundMessage;
use super::service::{Inner, Peer};
use super::stats::ConnectionState;
use crate::endpoint::Endpoint;

/// Most messages the writer takes from its queue under one lock.
const WRITE_BATCH_MESSAGES: usize = 256;
/// Capacity of the writer's buffer, and the smallest read into a reader's buffer.
const IO_BUFFER_BYTES: usize = 64 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors) before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Releases an inbound connection slot when the connection's task ends.
struct InboundSlot(Arc<Inner>);

impl Drop for InboundSlot {
    fn drop(&mut self) {
        self.0.counters.inbound_connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts inbound connections until shutdown, refusing those past `max_inbound_connections`.
pub(crate) async fn run_listener(inner: Arc<Inner>, listener: TcpListener) {
    let mut shutdown = inner.subscribe_shutdown();
    let max = inner.config.max_inbound_connections;
    while !inner.is_shut_down() {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        match accepted {
            Ok((stream, addr)) => {
                let open = inner.counters.inbound_connections.fetch_add(1, Ordering::AcqRel);
                let slot = InboundSlot(inner.clone());
                if open >= max {
                    drop(slot);
                    inner.counters.refused_connections.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        "refusing connection from {addr}: {open} inbound connections open, \
                         max_inbound_connections is {max}"
                    );
                    let reply = HandshakeReply {
                        version: PROTOCOL_VERSION,
                        outcome: HandshakeOutcome::RefusedOverloaded,
                    };
                    let _ = stream.try_write(&reply.encode());
                    continue;
                }
                inner.spawn(run_inbound(inner.clone(), stream, addr, slot));
            }
            Err(e) => {
                tracing::warn!("accepting internode connection on {} failed: {e}", inner.local);
                tokio::select! {
                    _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                    _ = shutdown.changed() => break,
                }
            }
        }
    }
    tracing::debug!("internode listener on {} closed", inner.local);
}

/// Why an inbound handshake did not produce a preamble.
enum PreambleFailure {
    Closed,
    Io(std::io::Error),
    Bad(PreambleError),
    TimedOut,
}

async fn read_preamble(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<Preamble, PreambleFailure> {
    loop {
        match Preamble::decode(buf) {
            Ok(Some((preamble, consumed))) => {
                buf.advance(consumed);
                return Ok(preamble);
            }
            Ok(None) => {}
            Err(e) => return Err(PreambleFailure::Bad(e)),
        }
        buf.reserve(MAX_PREAMBLE_BYTES);
        match stream.read_buf(buf).await {
            Ok(0) => return Err(PreambleFailure::Closed),
            Ok(_) => {}
            Err(e) => return Err(PreambleFailure::Io(e)),
        }
    }
}

async fn send_reply(inner: &Inner, stream: &mut TcpStream, outcome: HandshakeOutcome) -> std::io::Result<()> {
    let reply = HandshakeReply { version: PROTOCOL_VERSION, outcome }.encode();
    match tokio::time::timeout(inner.config.connect_timeout, stream.write_all(&reply)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Runs one inbound connection: checks the preamble, answers it, then reads frames until the
/// peer closes, a frame is bad, or the service shuts down.
async fn run_inbound(inner: Arc<Inner>, mut stream: TcpStream, addr: SocketAddr, _slot: InboundSlot) {
    let mut shutdown = inner.subscribe_shutdown();
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(MAX_PREAMBLE_BYTES);
    let handshake = async {
        match tokio::time::timeout(inner.config.connect_timeout, read_preamble(&mut stream, &mut buf)).await {
            Ok(result) => result,
            Err(_) => Err(PreambleFailure::TimedOut),
        }
    };
    let preamble = tokio::select! {
        result = handshake => result,
        _ = shutdown.changed() => return,
    };
    let refuse = |reason: fmt::Arguments<'_>| {
        inner.counters.refused_connections.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("refusing connection from {reason}");
    };
    let preamble = match preamble {
        Ok(preamble) => preamble,
        Err(PreambleFailure::Closed) => {
            tracing::debug!("connection from {addr} closed before its preamble");
            return;
        }
        Err(PreambleFailure::Io(e)) => {
            tracing::debug!("connection from {addr} failed before its preamble: {e}");
            return;
        }
        Err(PreambleFailure::TimedOut) => {
            refuse(format_args!("{addr}: no preamble within {:?}", inner.config.connect_timeout));
            return;
        }
        Err(PreambleFailure::Bad(e)) => {
            refuse(format_args!("{addr}: {e}"));
            if !matches!(e, PreambleError::BadMagic(_)) {
                let _ = send_reply(&inner, &mut stream, HandshakeOutcome::RefusedMalformed).await;
            }
            return;
        }
    };
    let from = preamble.from;
    let outcome = if preamble.version != PROTOCOL_VERSION {
        refuse(format_args!(
            "{from} (socket {addr}): protocol version {}, this node speaks {PROTOCOL_VERSION}",
            preamble.version
        ));
        HandshakeOutcome::RefusedVersion
    } else if preamble.cluster_name != inner.config.cluster_name {
        refuse(format_args!(
            "{from} (socket {addr}): cluster name {:?}, this node is in cluster {:?}",
            preamble.cluster_name, inner.config.cluster_name
        ));
        HandshakeOutcome::RefusedClusterName
    } else {
        HandshakeOutcome::Accepted
    };
    let peer = match outcome {
        HandshakeOutcome::Accepted => match inner.peer(from) {
            Some(peer) => Some(peer),
            None => {
                refuse(format_args!("{from} (socket {addr}): already tracking max_peers peers"));
                None
            }
        },
        _ => None,
    };
    let Some(peer) = peer else {
        let outcome =
            if outcome == HandshakeOutcome::Accepted { HandshakeOutcome::RefusedOverloaded } else { outcome };
        let _ = send_reply(&inner, &mut stream, outcome).await;
        return;
    };
    if let Err(e) = send_reply(&inner, &mut stream, HandshakeOutcome::Accepted).await {
        tracing::debug!("connection from {from} (socket {addr}) failed during handshake: {e}");
        return;
    }
    tracing::debug!("accepted connection from {from} (socket {addr})");
    // A peer we failed to reach has (re)started: reconnect now rather than after the backoff,
    // so this node stops holding it down (its requests, e.g. a restarted node's stream
    // request, are answered over our connection to it).
    if peer.counters.connect_failures.load(Ordering::Relaxed) > 0 {
        peer.reconnect.notify_one();
    }
    let reason = tokio::select! {
        reason = read_frames(&inner, &peer, &mut stream, buf) => reason,
        _ = shutdown.changed() => return,
    };
    match reason {
        ReadEnd::Closed(why) => tracing::debug!("connection from {from} closed: {why}"),
        ReadEnd::Protocol(why) => {
            inner.counters.protocol_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("closing connection from {from} (socket {addr}): {why}");
        }
    }
}

/// How a reader ended.
enum ReadEnd {
    /// The peer closed the connection or the socket failed.
    Closed(String),
    /// The peer sent something we refuse; the connection is closed.
    Protocol(String),
}

async fn read_frames(
    inner: &Arc<Inner>,
    peer: &Arc<Peer>,
    stream: &mut TcpStream,
    mut buf: BytesMut,
) -> ReadEnd {
    let max = inner.config.max_frame_bytes;
    loop {
        loop {
            match decode_frame(&mut buf, max) {
                Ok(Some(frame)) => inner.receive_frame(peer, frame),
                Ok(None) => break,
                Err(e) => return ReadEnd::Protocol(e.to_string()),
            }
        }
        // decode_frame has checked the length against `max`, so this is bounded.
        buf.reserve(frame_bytes_needed(&buf).max(IO_BUFFER_BYTES));
        match stream.read_buf(&mut buf).await {
            Ok(0) if buf.is_empty() => return ReadEnd::Closed("end of stream".to_owned()),
            Ok(0) => {
                return ReadEnd::Protocol(format!(
                    "end of stream inside a frame ({} bytes buffered)",
                    buf.len()
                ))
            }
            Ok(_) => {}
            Err(e) => return ReadEnd::Closed(e.to_string()),
        }
    }
}

/// Why an outbound connection attempt failed.
#[derive(Debug)]
enum ConnectError {
    Io(std::io::Error),
    TimedOut(Duration),
    Refused(HandshakeReply),
    BadReply([u8; HANDSHAKE_REPLY_BYTES]),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Io(e) => write!(f, "{e}"),
            ConnectError::TimedOut(t) => write!(f, "no connection and handshake within {t:?}"),
            ConnectError::BadReply(bytes) => write!(f, "unintelligible handshake reply {bytes:02x?}"),
            ConnectError::Refused(reply) => match reply.outcome {
                HandshakeOutcome::RefusedVersion => write!(
                    f,
                    "refused: it speaks protocol version {}, this node speaks {PROTOCOL_VERSION}",
                    reply.version
                ),
                HandshakeOutcome::RefusedClusterName => {
                    write!(f, "refused: it belongs to another cluster")
                }
                HandshakeOutcome::RefusedOverloaded => write!(f, "refused: it has too many connections"),
                HandshakeOutcome::RefusedMalformed => write!(f, "refused: it could not read our preamble"),
                HandshakeOutcome::Accepted => write!(f, "accepted"),
            },
        }
    }
}

async fn connect(inner: &Inner, to: Endpoint) -> Result<TcpStream, ConnectError> {
    let attempt = async {
        let mut stream = TcpStream::connect(to.0).await.map_err(ConnectError::Io)?;
        stream.set_nodelay(true).map_err(ConnectError::Io)?;
        stream.write_all(&inner.preamble).await.map_err(ConnectError::Io)?;
        let mut reply = [0u8; HANDSHAKE_REPLY_BYTES];
        stream.read_exact(&mut reply).await.map_err(ConnectError::Io)?;
        match HandshakeReply::decode(reply) {
            Some(HandshakeReply { outcome: HandshakeOutcome::Accepted, .. }) => Ok(stream),
            Some(refused) => Err(ConnectError::Refused(refused)),
            None => Err(ConnectError::BadReply(reply)),
        }
    };
    let timeout = inner.config.connect_timeout;
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::TimedOut(timeout)),
    }
}

/// Owns the outbound connection to one peer: connects, writes its queue, reconnects with
/// backoff, until shutdown.
pub(crate) async fn run_writer(inner: Arc<Inner>, peer: Arc<Peer>) {
    let mut shutdown = inner.subscribe_shutdown();
    let mut hasher = DefaultHasher::new();
    peer.endpoint.hash(&mut hasher);
    let mut rng = StdRng::seed_from_u64(inner.config.jitter_seed ^ hasher.finish());
    let to = peer.endpoint;
    let mut failures: u32 = 0;
    'connection: while !inner.is_shut_down() {
        inner.set_state(&peer, ConnectionState::Connecting);
        let connected = tokio::select! {
            connected = connect(&inner, to) => connected,
            _ = shutdown.changed() => break,
        };
        match connected {
            Ok(stream) => {
                if failures > 0 {
                    tracing::info!("connected to {to} after {failures} failed attempts");
                } else {
                    tracing::debug!("connected to {to}");
                }
                failures = 0;
                peer.counters.connect_failures.store(0, std::sync::atomic::Ordering::Relaxed);
                inner.set_state(&peer, ConnectionState::Connected);
                let why = tokio::select! {
                    why = write_frames(&inner, &peer, stream) => why,
                    _ = shutdown.changed() => break,
                };
                tracing::warn!("connection to {to} lost: {why}; reconnecting");
            }
            Err(e) => {
                if failures == 0 {
                    tracing::warn!("cannot connect to {to}: {e}; retrying with backoff");
                } else {
                    tracing::debug!("cannot connect to {to} (attempt {}): {e}", failures + 1);
                }
                failures = failures.saturating_add(1);
                peer.counters.connect_failures.store(failures, std::sync::atomic::Ordering::Relaxed);
            }
        }
        inner.set_state(&peer, ConnectionState::Backoff);
        inner.prune_expired(&peer);
        let delay = reconnect_delay(
            failures.saturating_sub(1),
            inner.config.reconnect_backoff_min,
            inner.config.reconnect_backoff_max,
            &mut rng,
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = peer.reconnect.notified(), if failures > 0 => {
                tracing::debug!("{to} connected to this node; reconnecting before the backoff ends");
            }
            _ = shutdown.changed() => break,
        }
        // Reconnect only for something to send.
        loop {
            inner.prune_expired(&peer);
            if !peer.queue.lock().is_empty() {
                break;
            }
            inner.set_state(&peer, ConnectionState::Idle);
            tokio::select! {
                _ = peer.wake.notified() => {}
                _ = shutdown.changed() => break 'connection,
            }
        }
    }
    inner.set_state(&peer, ConnectionState::Closed);
    let abandoned = peer.queue.lock().clear();
    tracing::debug!("writer to {to} stopped; {} queued messages abandoned", abandoned.len());
}

/// Milliseconds from `now` until `expires_at`, rounded up, at least 1.
fn remaining_ms(expires_at: Instant, now: Instant) -> u32 {
    let remaining = expires_at.saturating_duration_since(now);
    let ms = remaining.as_millis() + u128::from(!remaining.subsec_nanos().is_multiple_of(1_000_000));
    u32::try_from(ms).unwrap_or(u32::MAX).max(1)
}

/// Writes the peer's queue to `stream` until the connection fails; returns why it ended.
async fn write_frames(inner: &Inner, peer: &Peer, stream: TcpStream) -> String {
    let (mut reader, writer) = stream.into_split();
    let mut writer = BufWriter::with_capacity(IO_BUFFER_BYTES, writer);
    let mut batch: Vec<OutboundMessage> = Vec::with_capacity(WRITE_BATCH_MESSAGES);
    let mut probe = [0u8; 1];
    loop {
        peer.queue.lock().pop_batch(WRITE_BATCH_MESSAGES, &mut batch);
        if batch.is_empty() {
            if let Err(e) = writer.flush().await {
                return format!("write failed: {e}");
            }
            tokio::select! {
                _ = peer.wake.notified() => continue,
                read = reader.read(&mut probe) => return match read {
                    Ok(0) => "closed by the peer".to_owned(),
                    Ok(_) => "the peer sent bytes on a write-only connection".to_owned(),
                    Err(e) => format!("read failed: {e}"),
                },
            }
        }
        let now = Instant::now();
        for message in batch.drain(..) {
            if message.is_expired(now) {
                inner.count_expired(peer, message.verb);
                continue;
            }
            let header = FrameHeader {
                kind: message.kind,
                verb: message.verb,
                id: message.id,
                expires_in_ms: remaining_ms(message.expires_at, now),
            };
            let prefix = header.encode_with_prefix(&message.payload);
            if let Err(e) = writer.write_all(&prefix).await {
                return format!("write failed: {e}");
            }
            if let Err(e) = writer.write_all(&message.payload).await {
                return format!("write failed: {e}");
            }
            peer.counters.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_ms_rounds_up_and_is_never_zero() {
        let now = Instant::now();
        assert_eq!(remaining_ms(now, now), 1);
        assert_eq!(remaining_ms(now + Duration::from_micros(1500), now), 2);
        assert_eq!(remaining_ms(now + Duration::from_millis(7), now), 7);
        assert_eq!(remaining_ms(now + Duration::from_secs(100 * 86_400), now), u32::MAX);
    }
}
