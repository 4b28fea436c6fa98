//! Every bound the protocol layer enforces, in one place.

use std::time::Duration;

use crate::protocol::frame::DEFAULT_MAX_FRAME_BYTES;

/// Default for [`Limits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default for [`Limits::max_concurrent_requests_per_connection`].
pub const DEFAULT_MAX_CONCURRENT_REQUESTS_PER_CONNECTION: usize = 1024;
/// Default for [`Limits::max_values_per_request`]: the most a `[short]` count can say.
pub const DEFAULT_MAX_VALUES_PER_REQUEST: usize = 65_535;
/// Default for [`Limits::max_batch_statements`]: the most a `[short]` count can say.
pub const DEFAULT_MAX_BATCH_STATEMENTS: usize = 65_535;
/// Default for [`Limits::max_request_bytes_in_flight_per_connection`] (64 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT_PER_CONNECTION: usize = 64 * 1024 * 1024;
/// Default for [`Limits::max_request_bytes_in_flight`] (256 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT: usize = 256 * 1024 * 1024;
/// Default for [`Limits::shutdown_grace`].
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Bounds on frames, connections and requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted frame body, compressed or decompressed (Cassandra's
    /// `native_transport_max_frame_size`). Checked from the header before the body is read.
    pub max_frame_bytes: usize,
    /// Open client connections; a connection beyond this gets an Overloaded error and is closed.
    pub max_connections: usize,
    /// Requests handled concurrently on one connection. At the limit the connection's reader
    /// stops reading (TCP back-pressure) until a response has been queued.
    pub max_concurrent_requests_per_connection: usize,
    /// Request body bytes (after decompression) held by in-flight requests of one connection
    /// (like Cassandra's `native_transport_max_request_data_in_flight_per_ip`). At the limit the
    /// reader waits. A single frame larger than the budget takes the whole budget.
    pub max_request_bytes_in_flight_per_connection: usize,
    /// The same over all connections (like `native_transport_max_request_data_in_flight`).
    pub max_request_bytes_in_flight: usize,
    /// Bind values in one QUERY/EXECUTE, or in all statements of one BATCH together.
    pub max_values_per_request: usize,
    /// Statements in one BATCH.
    pub max_batch_statements: usize,
    /// How long shutdown waits for in-flight requests before closing connections anyway.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_concurrent_requests_per_connection: DEFAULT_MAX_CONCURRENT_REQUESTS_PER_CONNECTION,
            max_request_bytes_in_flight_per_connection: DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT_PER_CONNECTION,
            max_request_bytes_in_flight: DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT,
            max_values_per_request: DEFAULT_MAX_VALUES_PER_REQUEST,
            max_batch_statements: DEFAULT_MAX_BATCH_STATEMENTS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

impl Limits {
    /// Checks that every limit is usable: non-zero, and the frame limit expressible in the header.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_frame_bytes == 0 || self.max_frame_bytes > i32::MAX as usize {
            return Err(format!("max_frame_bytes {} must be in 1..={}", self.max_frame_bytes, i32::MAX));
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        // tokio's semaphore holds at most usize::MAX >> 3 permits
        if self.max_concurrent_requests_per_connection == 0
            || self.max_concurrent_requests_per_connection > (1 << 20)
        {
            return Err(format!(
                "max_concurrent_requests_per_connection {} must be in 1..={}",
                self.max_concurrent_requests_per_connection,
                1 << 20
            ));
        }
        if self.shutdown_grace > MAX_SHUTDOWN_GRACE {
            return Err(format!(
                "shutdown_grace {:?} must be at most {MAX_SHUTDOWN_GRACE:?}",
                self.shutdown_grace
            ));
        }
        for (name, value) in [
            ("max_request_bytes_in_flight_per_connection", self.max_request_bytes_in_flight_per_connection),
            ("max_request_bytes_in_flight", self.max_request_bytes_in_flight),
        ] {
            if value == 0 || value > MAX_BYTE_BUDGET {
                return Err(format!("{name} {value} must be in 1..={MAX_BYTE_BUDGET}"));
            }
        }
        Ok(())
    }
}

/// Upper bound for [`Limits::shutdown_grace`] (keeps deadline arithmetic far from overflow).
pub const MAX_SHUTDOWN_GRACE: Duration = Duration::from_secs(24 * 60 * 60);

/// Byte budgets are semaphores with one permit per byte; tokio allows `usize::MAX >> 3` permits.
const MAX_BYTE_BUDGET: usize = usize::MAX >> 3;
