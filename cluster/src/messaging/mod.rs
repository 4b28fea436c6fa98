//! Internode messaging: the only code in the cluster crate that touches sockets.
//!
//! A [`MessagingService`] moves opaque messages (a [`Verb`] and a `Bytes` payload) between nodes
//! named by [`Endpoint`](crate::endpoint::Endpoint). Verbs and payload encodings are decided by
//! the layers above; this module decides how messages travel:
//!
//! - **Wire format** ([`frame`], `docs/internode.md`): a versioned, checksummed preamble naming the
//!   sender and its cluster, then CRC32-protected frames. Bytes from the network never panic and
//!   never make us allocate more than `max_frame_bytes`.
//! - **One outbound connection per peer**, opened lazily on the first message, fed by a bounded
//!   queue and drained by a single writer task that batches frames and flushes when the queue is
//!   empty; it reconnects with jittered exponential backoff ([`backoff`]). As in Cassandra,
//!   responses travel back over the responder's own outbound connection, so inbound connections
//!   only ever carry bytes one way.
//! - **Sending never blocks** and works from any thread: a full queue drops the message (counted
//!   per peer and per verb) and a request's callback gets [`RequestError::Overloaded`] at once.
//!   Messages whose expiry passes while queued are dropped rather than sent.
//! - **Requests** get a [`MessageId`]; a bounded callback table correlates responses, and a timer
//!   task fails callbacks whose timeout passed. Each callback runs exactly once.
//! - **Tests** can drop, delay or partition traffic with a [`FilterAction`] hook and
//!   [`MessagingService::block_peer`].
//!
//! Everything is bounded: queues (messages and bytes), outstanding requests, inbound connections,
//! known peers, delayed and local deliveries, frame size.

pub mod backoff;
pub mod callbacks;
mod config;
mod connection;
pub mod filter;
pub mod frame;
pub mod queue;
mod request;
mod service;
pub mod stats;

use std::fmt;

pub use config::MessagingConfig;
pub use filter::{FilterAction, FilterContext, MessageFilter};
pub use request::{RequestError, Response, ResponseCallback};
pub use service::{InboundHandler, MessagingService, Responder};
pub use stats::{ConnectionState, MessagingStats, PeerStats, VerbStats};

/// What a message asks for; opaque here (the cluster layer defines the verbs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Verb(pub u16);

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "verb {}", self.0)
    }
}

/// Correlates a response with its request; unique per sending node until it restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64);

/// The four kinds of frame, with their codes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageKind {
    /// Expects a response or a failure response with the same id (code 1).
    Request,
    /// Answers a request (code 2).
    Response,
    /// Answers a request with a failure reason as payload (code 3).
    FailureResponse,
    /// Expects nothing back (code 4).
    OneWay,
}

impl MessageKind {
    /// The kind's code on the wire.
    pub fn code(self) -> u8 {
        match self {
            MessageKind::Request => 1,
            MessageKind::Response => 2,
            MessageKind::FailureResponse => 3,
            MessageKind::OneWay => 4,
        }
    }

    /// The kind for a wire code, if the code is known.
    pub fn from_code(code: u8) -> Option<MessageKind> {
        match code {
            1 => Some(MessageKind::Request),
            2 => Some(MessageKind::Response),
            3 => Some(MessageKind::FailureResponse),
            4 => Some(MessageKind::OneWay),
            _ => None,
        }
    }

    /// Whether this kind answers a request (and so completes a callback).
    pub fn is_response(self) -> bool {
        matches!(self, MessageKind::Response | MessageKind::FailureResponse)
    }
}
