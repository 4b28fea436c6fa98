//! Sibyl's cluster layer: a Dynamo-style ring of equal nodes.
//!
//! - [`ring`], [`replication`], [`consistency`]: pure placement and level arithmetic. A
//!   partition's token gives its natural replicas (Cassandra's SimpleStrategy and
//!   NetworkTopologyStrategy); a consistency level and the live set give a [`ReplicaPlan`].
//! - [`failure_detector`], [`gossip`]: pure state machines (`step`/`tick` with `now` passed in)
//!   for membership: Cassandra's SYN/ACK/ACK2 gossip and the phi-accrual failure detector.
//! - [`messaging`]: the only code touching sockets: framed, checksummed internode messages.
//! - [`verbs`]: what travels inside the frames.
//! - [`coordinator`]: runs a client's read or write against the replicas at its level;
//!   [`resolver`] reconciles their answers; [`read_policy`] holds the per-table read options.
//! - [`service`]: one node's membership wired to sockets: the gossip task, replica-side verb
//!   handlers and schema propagation.
//! - [`hints`], [`repair`], [`batchlog`]: the convergence mechanisms beyond read repair: hinted
//!   handoff, Merkle-tree anti-entropy repair, and logged batches replayed in full.
//! - [`operations`]: bootstrap, replace, decommission and removenode, run by one node.
//! - [`storage`]: the narrow door to the node's storage engine.
//! - [`streaming`]: moving token ranges' data between nodes when the ring changes, and the
//!   pure plan of what moves where (also the pending ranges writes go to meanwhile).
//! - [`token_allocation`]: a joining node's tokens chosen to keep ownership even (pure).
//!
//! `docs/architecture.md` walks a request through these modules.

pub mod batchlog;
pub mod consistency;
pub mod coordinator;
#[rustfmt::skip]
pub mod endpoint;
pub mod error;
pub mod failure_detector;
pub mod gossip;
pub mod hints;
pub mod messaging;
pub mod operations;
pub mod read_policy;
pub mod repair;
pub mod replication;
pub mod resolver;
pub mod ring;
pub mod service;
pub mod storage;
pub mod streaming;
pub mod token_allocation;
pub mod verbs;

pub use consistency::{ConsistencyLevel, PlanError, ReplicaPlan};
pub use coordinator::{ClusterView, Coordinator, CoordinatorStats, Timeouts};
pub use endpoint::{Endpoint, Location};
pub use error::{Error, Result, WriteType};
pub use read_policy::{ReadPolicy, ReadRepair, SpeculativeRetry};
pub use replication::ReplicationStrategy;
pub use ring::TokenMetadata;
pub use service::{ClusterConfig, ClusterHooks, ClusterService, PeerInfo};
pub use storage::Storage;
