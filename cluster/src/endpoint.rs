//! How nodes are named on the wire and in the ring, and where they sit in the topology.
//!
//! An [`Endpoint`] is a node's listen address with its storage port; it orders and hashes like the
//! socket address, so sorted lists of endpoints are deterministic. A [`Location`] is the snitch's
//! answer for a node (datacenter and rack); placement (`crate::replication`) and the
//! datacenter-local consistency levels (`crate::consistency`) are decided from it.
use std::fmt;
use std::net::SocketAddr;

/// A node: its listen address and storage port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint(pub SocketAddr);

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The datacenter a node uses when its snitch has said nothing, as in Cassandra's
/// `SimpleSnitch`.
pub const DEFAULT_DATACENTER: &str = "datacenter1";

/// The rack a node uses when its snitch has said nothing, as in Cassandra's `SimpleSnitch`.
pub const DEFAULT_RACK: &str = "rack1";

/// Where a node sits: its datacenter and rack, as a snitch reports them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Datacenter name (e.g. `datacenter1`).
    pub dc: String,
    /// Rack name within the datacenter (e.g. `rack1`).
    pub rack: String,
}

impl Location {
    /// A location from its datacenter and rack names.
    #[must_use]
    pub fn new(dc: impl Into<String>, rack: impl Into<String>) -> Self {
        Location { dc: dc.into(), rack: rack.into() }
    }
}

impl Default for Location {
    /// `datacenter1` / `rack1`, where Cassandra's `SimpleSnitch` puts every node.
    fn default() -> Self {
        Location::new(DEFAULT_DATACENTER, DEFAULT_RACK)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.dc, self.rack)
    }
}
