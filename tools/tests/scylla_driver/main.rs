//! End-to-end tests with the Rust `scylla` driver (default settings) against in-process Sibyl
//! nodes: connect and schema metadata, DML of every kind, every type, paging, batches, TTL and
//! timestamps, tokens, errors as the driver's error kinds, compression, restarts and events.
//!
//! One test binary (each file a module) so the driver and the node link once.

mod common;

mod batches;
mod connect_and_schema;
mod dml;
mod errors;
mod paging;
mod protocol;
mod restart_and_events;
mod token;
mod ttl_timestamp;
mod types;
