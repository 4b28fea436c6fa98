//! What a request's caller gets back: a [`Response`] or a [`RequestError`].

use bytes::Bytes;

use crate::endpoint::Endpoint;

/// A successful answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The node that answered.
    pub from: Endpoint,
    /// The answer's opaque payload.
    pub payload: Bytes,
}

/// Why a request did not get a [`Response`]; variants say what the caller should do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No answer before the timeout (the request, the response or the peer was lost or slow):
    /// count the replica as not answering.
    #[error("request timed out")]
    Timeout,
    /// The request was never sent: the peer's queue or the callback table is full. Shed load.
    #[error("request dropped: outbound queue or callback table full")]
    Overloaded,
    /// The peer answered with a failure response.
    #[error("request failed on {from}: {reason}")]
    Failed {
        /// The node that failed the request.
        from: Endpoint,
        /// Its reason, as it sent it.
        reason: String,
    },
    /// The payload does not fit in one frame; it was never sent.
    #[error("payload of {size_bytes} bytes exceeds the frame bound of {max_bytes} bytes")]
    PayloadTooLarge {
        /// The payload's size.
        size_bytes: usize,
        /// The largest payload a frame may carry.
        max_bytes: usize,
    },
    /// This node's messaging service is shut down.
    #[error("messaging service shut down")]
    Shutdown,
}

/// Called exactly once with a request's outcome. It runs on a messaging task (or, for
/// [`RequestError::Overloaded`], on the sending thread), so it must be quick and must not block.
pub type ResponseCallback = Box<dyn FnOnce(Result<Response, RequestError>) + Send>;
