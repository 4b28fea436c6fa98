//! The messaging service's settings; every bound it enforces is one of these.

use std::io;
use std::time::Duration;

use super::frame::{DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES, MAX_CLUSTER_NAME_BYTES};
use crate::endpoint::Endpoint;

/// Settings for [`MessagingService::start`](super::MessagingService::start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagingConfig {
    /// Address to listen on, and this node's identity on the wire. Port 0 binds an ephemeral
    /// port (see [`local_endpoint`](super::MessagingService::local_endpoint)). Must be a concrete
    /// address that peers can reach, not `0.0.0.0`: it is what peers reply to.
    pub local: Endpoint,
    /// Connections from nodes with another cluster name are refused (at most 255 bytes).
    pub cluster_name: String,
    /// Largest frame body (header and payload) sent or accepted.
    pub max_frame_bytes: u32,
    /// Per-peer outbound queue bound, in messages.
    pub queue_capacity_messages: usize,
    /// Per-peer outbound queue bound, in wire bytes.
    pub queue_capacity_bytes: usize,
    /// Bound on the TCP connect plus handshake, in both directions.
    pub connect_timeout: Duration,
    /// First reconnect delay.
    pub reconnect_backoff_min: Duration,
    /// Largest reconnect delay.
    pub reconnect_backoff_max: Duration,
    /// Bound on requests awaiting a response.
    pub max_outstanding_requests: usize,
    /// Bound on open inbound connections; over it, new ones are refused.
    pub max_inbound_connections: usize,
    /// Bound on distinct peers this node keeps state for.
    pub max_peers: usize,
    /// Seed of the reconnect jitter (each peer's writer mixes in the peer's address).
    pub jitter_seed: u64,
}

impl MessagingConfig {
    /// Defaults: 64 MiB frames, 8192-message / 64 MiB queues, 2 s connect timeout, reconnect
    /// backoff 100 ms .. 5 s, 100k outstanding requests, 1024 inbound connections, 4096 peers.
    pub fn new(local: Endpoint, cluster_name: impl Into<String>) -> Self {
        MessagingConfig {
            local,
            cluster_name: cluster_name.into(),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            queue_capacity_messages: 8192,
            queue_capacity_bytes: 64 * 1024 * 1024,
            connect_timeout: Duration::from_secs(2),
            reconnect_backoff_min: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(5),
            max_outstanding_requests: 100_000,
            max_inbound_connections: 1024,
            max_peers: 4096,
            jitter_seed: 0,
        }
    }

    /// Largest payload one frame can carry under this configuration.
    pub fn max_payload_bytes(&self) -> usize {
        (self.max_frame_bytes as usize).saturating_sub(FRAME_HEADER_BYTES)
    }

    /// Checks the settings; `InvalidInput` names the first bad one.
    pub fn validate(&self) -> io::Result<()> {
        let invalid = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        if self.cluster_name.len() > MAX_CLUSTER_NAME_BYTES {
            return invalid(format!(
                "cluster_name is {} bytes, at most {MAX_CLUSTER_NAME_BYTES} allowed",
                self.cluster_name.len()
            ));
        }
        if (self.max_frame_bytes as usize) < FRAME_HEADER_BYTES {
            return invalid(format!("max_frame_bytes must be at least {FRAME_HEADER_BYTES}"));
        }
        if self.local.0.ip().is_unspecified() {
            return invalid(format!("local {} must be an address peers can reach", self.local));
        }
        for (name, value) in [
            ("queue_capacity_messages", self.queue_capacity_messages),
            ("queue_capacity_bytes", self.queue_capacity_bytes),
            ("max_outstanding_requests", self.max_outstanding_requests),
            ("max_inbound_connections", self.max_inbound_connections),
            ("max_peers", self.max_peers),
        ] {
            if value == 0 {
                return invalid(format!("{name} must be positive"));
            }
        }
        if self.connect_timeout.is_zero() || self.reconnect_backoff_min.is_zero() {
            return invalid("connect_timeout and reconnect_backoff_min must be positive".to_owned());
        }
        Ok(())
    }
}
