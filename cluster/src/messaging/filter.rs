//! The test hook that decides, per message, whether it is delivered, dropped or delayed.
//!
//! A filter runs on the sending side for every message, responses and messages to self
//! included, before the message is queued; it sees only the routing facts in a
//! [`FilterContext`]. It must be quick and must not block. Messages a filter drops are counted
//! separately from overload drops, so a test can tell injected loss from real loss.

use std::sync::Arc;
use std::time::Duration;

use super::{MessageKind, Verb};
use crate::endpoint::Endpoint;

/// The facts a filter decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterContext {
    /// The sending node (this node).
    pub from: Endpoint,
    /// The destination node.
    pub to: Endpoint,
    /// The message's verb (for responses, the request's verb).
    pub verb: Verb,
    /// Request, response, failure response or one-way.
    pub kind: MessageKind,
}

/// What happens to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterAction {
    /// Send it normally.
    Deliver,
    /// Drop it silently (a request then times out), counting it as filtered.
    Drop,
    /// Queue it only after this delay (it may expire meanwhile and be dropped).
    Delay(Duration),
}

/// A message filter, installed with
/// [`MessagingService::set_filter`](super::MessagingService::set_filter).
pub type MessageFilter = Arc<dyn Fn(&FilterContext) -> FilterAction + Send + Sync>;
