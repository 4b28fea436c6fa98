//! Counters kept by the messaging service, and the plain snapshot [`MessagingStats`] they are read
//! into.
//!
//! Drops are split by cause, as Cassandra's dropped-message metrics are: a full queue (overload),
//! an expiry passed while queued or before delivery (the message was no longer useful), and the
//! test filter (injected loss). Counters only grow; a snapshot is not atomic across counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use super::Verb;
use crate::endpoint::Endpoint;

/// The state of this node's outbound connection to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConnectionState {
    /// No writer yet: the peer only connected to us, or is this node itself.
    Idle,
    /// Connecting or handshaking.
    Connecting,
    /// Handshake accepted; frames are flowing.
    Connected,
    /// The last attempt failed or the connection broke; waiting before the next attempt.
    Backoff,
    /// The service is shut down.
    Closed,
}

impl ConnectionState {
    pub(crate) fn code(self) -> u8 {
        match self {
            ConnectionState::Idle => 0,
            ConnectionState::Connecting => 1,
            ConnectionState::Connected => 2,
            ConnectionState::Backoff => 3,
            ConnectionState::Closed => 4,
        }
    }

    pub(crate) fn from_code(code: u8) -> ConnectionState {
        match code {
            1 => ConnectionState::Connecting,
            2 => ConnectionState::Connected,
            3 => ConnectionState::Backoff,
            4 => ConnectionState::Closed,
            _ => ConnectionState::Idle,
        }
    }
}

/// What this node knows about its traffic with one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStats {
    /// State of the outbound connection.
    pub state: ConnectionState,
    /// Messages waiting in the outbound queue.
    pub pending_messages: usize,
    /// Wire bytes waiting in the outbound queue.
    pub pending_bytes: usize,
    /// Messages written to the connection (or delivered locally, for this node itself).
    pub sent: u64,
    /// Messages received from the peer.
    pub received: u64,
    /// Messages to the peer dropped because its queue was full.
    pub dropped_queue_full: u64,
    /// Messages to or from the peer dropped because their expiry had passed.
    pub dropped_expired: u64,
    /// Messages to or from the peer dropped by the filter or by [`block_peer`].
    ///
    /// [`block_peer`]: super::MessagingService::block_peer
    pub dropped_filtered: u64,
    /// Requests to the peer whose callback timed out.
    pub timeouts: u64,
    /// Connection attempts that failed since the last one that succeeded (refused, timed
    /// out, or handshake refused): evidence that the peer is down or cut off.
    pub connect_failures: u32,
}

impl PeerStats {
    /// All drops, whatever the cause.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full + self.dropped_expired + self.dropped_filtered
    }
}

/// Drops counted for one verb.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerbStats {
    /// Dropped because the destination's queue was full.
    pub dropped_queue_full: u64,
    /// Dropped because their expiry had passed.
    pub dropped_expired: u64,
    /// Dropped by the filter or by a blocked peer.
    pub dropped_filtered: u64,
    /// Refused because the payload does not fit in a frame.
    pub dropped_too_large: u64,
}

impl VerbStats {
    /// All drops, whatever the cause.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full + self.dropped_expired + self.dropped_filtered + self.dropped_too_large
    }
}

/// A snapshot of the messaging service's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagingStats {
    /// Per peer (this node included once it sent to itself).
    pub peers: BTreeMap<Endpoint, PeerStats>,
    /// Per verb, for verbs that had a drop.
    pub verbs: BTreeMap<Verb, VerbStats>,
    /// Requests waiting for a response.
    pub outstanding_requests: usize,
    /// Requests refused because the callback table was full.
    pub callback_table_full: u64,
    /// Responses that arrived after their request had timed out (or were never ours).
    pub late_responses: u64,
    /// Inbound connections currently open (handshaking or accepted).
    pub inbound_connections: usize,
    /// Inbound connections refused at the handshake (magic, version, cluster, overload).
    pub refused_connections: u64,
    /// Connections closed because of a bad frame (CRC, length, kind).
    pub protocol_errors: u64,
}

/// Why a message was dropped; selects the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropCause {
    QueueFull,
    Expired,
    Filtered,
    TooLarge,
}

/// The live counters of one peer.
#[derive(Debug, Default)]
pub(crate) struct PeerCounters {
    pub(crate) state: AtomicU8,
    pub(crate) sent: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_expired: AtomicU64,
    pub(crate) dropped_filtered: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) connect_failures: std::sync::atomic::AtomicU32,
}

impl PeerCounters {
    pub(crate) fn set_state(&self, state: ConnectionState) {
        self.state.store(state.code(), Ordering::Relaxed);
    }

    pub(crate) fn state(&self) -> ConnectionState {
        ConnectionState::from_code(self.state.load(Ordering::Relaxed))
    }

    pub(crate) fn count_drop(&self, cause: DropCause, n: u64) {
        let counter = match cause {
            DropCause::QueueFull => &self.dropped_queue_full,
            DropCause::Expired => &self.dropped_expired,
            DropCause::Filtered => &self.dropped_filtered,
            DropCause::TooLarge => return,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, pending_messages: usize, pending_bytes: usize) -> PeerStats {
        PeerStats {
            state: self.state(),
            pending_messages,
            pending_bytes,
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Ordering::Relaxed),
            dropped_expired: self.dropped_expired.load(Ordering::Relaxed),
            dropped_filtered: self.dropped_filtered.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            connect_failures: self.connect_failures.load(Ordering::Relaxed),
        }
    }
}

impl VerbStats {
    pub(crate) fn count_drop(&mut self, cause: DropCause, n: u64) {
        let counter = match cause {
            DropCause::QueueFull => &mut self.dropped_queue_full,
            DropCause::Expired => &mut self.dropped_expired,
            DropCause::Filtered => &mut self.dropped_filtered,
            DropCause::TooLarge => &mut self.dropped_too_large,
        };
        *counter += n;
    }
}
