//! The CQL native protocol, version 4: frame codec and connection server.
//!
//! Everything here follows `reference/native_protocol_v4.spec`; what real drivers send (and the
//! pitfalls they trip over) is in `reference/driver-notes.md`.
//!
//! # Layers
//!
//! * [`frame`]: the 9-byte header (`version`, `flags`, `stream`, `opcode`, `length`).
//! * [`codec`]: the spec's notations (`[int]`, `[string]`, `[value]`, `[string map]`, ...) as a
//!   bounds-checked [`codec::Reader`] and `put_*` writers.
//! * [`request`] / [`response`]: the messages, decoded from and encoded to frame bodies, wrapped
//!   in [`RequestEnvelope`] / [`ResponseEnvelope`] with the frame-level extras (tracing, warnings,
//!   custom payload).
//! * [`metadata`], [`event`], [`consistency`]: the types messages are made of.
//! * [`compression`]: lz4 and snappy bodies.
//! * [`server`] + [`connection`]: the tokio TCP server calling a [`Handler`].
//!
//! # Connection lifecycle
//!
//! 1. **Accept.** [`serve`] accepts a TCP connection unless `max_connections` are open; an
//!    excess connection is answered ERROR Overloaded (0x1001) on the stream of its first frame
//!    and closed.
//! 2. **Framing.** The reader accumulates bytes and looks at the version byte first: anything
//!    but `0x04` is answered, as soon as the stream id has arrived, with ERROR 0x000A
//!    `Invalid or unsupported protocol version (N); supported versions are (4/v4)` in a `0x84`
//!    frame on the same stream, and the connection is closed; this is how drivers that start at
//!    v5 or a DSE version step down to v4. A response direction byte (`0x84`) from a client is
//!    also a protocol error. Then the header is decoded and the body length is checked against
//!    `max_frame_bytes` before any body buffer is reserved.
//! 3. **Handshake.** OPTIONS (allowed at any time) is answered with SUPPORTED:
//!    `CQL_VERSION: [3.4.5]`, `COMPRESSION: [lz4, snappy]`, `PROTOCOL_VERSIONS: [4/v4]`.
//!    STARTUP must carry `CQL_VERSION` (any value), may carry `COMPRESSION` (`lz4` / `snappy`, any
//!    case) and unknown keys are ignored; it is answered READY, never compressed. Any request
//!    other than OPTIONS and STARTUP before READY gets a protocol error (the connection stays
//!    open). A second STARTUP is a protocol error too.
//! 4. **Requests.** After READY, each request first waits for one of
//!    `max_concurrent_requests_per_connection` slots, is then decompressed (when flag 0x01 is set)
//!    and decoded, and then waits until its body bytes fit both request byte budgets (per
//!    connection and server-wide). While it waits the reader reads nothing more, so TCP pushes
//!    back on the client instead of the server queueing without bound. Then it runs as its own
//!    task calling [`Handler::handle`]. Responses go out as soon as they are ready, in any
//!    order, matched to requests by stream id; they are compressed (flag 0x01) when compression
//!    was negotiated and the body is not empty. A handler panic is caught and answered Server error
//!    (0x0000). REGISTER is answered READY by the server, which from then on pushes matching
//!    events from the [`EventBus`] as EVENT frames on stream -1.
//! 5. **Violations.** A frame that cannot be decoded (unknown opcode, wrong direction, oversize
//!    or negative length, body shorter than its elements or with trailing bytes, corrupt
//!    compressed data, unknown consistency, ...) is answered with ERROR 0x000A carrying the
//!    decoder's message, on the frame's stream (0 if unreadable), and the connection is closed
//!    after in-flight requests finish. Other connections are unaffected.
//! 6. **Close.** On client EOF, violation or server shutdown, the reader stops; in-flight
//!    requests get up to `shutdown_grace` to finish, their responses are flushed, and the socket
//!    is closed. [`serve`] returns once every connection is closed.
//!
//! # Limits
//!
//! See [`Limits`]: `max_frame_bytes` (16 MiB, Cassandra's `native_transport_max_frame_size`,
//! applied to compressed and decompressed bodies), `max_connections` (1024),
//! `max_concurrent_requests_per_connection` (1024), `max_request_bytes_in_flight_per_connection`
//! (64 MiB, like Cassandra's `native_transport_max_request_data_in_flight_per_ip`),
//! `max_request_bytes_in_flight` (256 MiB over all connections, like
//! `native_transport_max_request_data_in_flight`), `max_values_per_request` (65535),
//! `max_batch_statements` (65535) and `shutdown_grace` (10 s). Internally the outbound queue per
//! connection holds 128 frames, the event buffer per subscriber [`server::DEFAULT_EVENT_BUFFER`]
//! events (a slower connection skips events rather than buffering more), and column types nest
//! at most [`metadata::MAX_TYPE_DEPTH`] deep.
//!
//! # Not implemented
//!
//! Authentication (AUTHENTICATE / AUTH_CHALLENGE / AUTH_SUCCESS are encodable, but the server
//! always answers STARTUP with READY; AUTH_RESPONSE after READY reaches the handler), named values
//! in BATCH (the spec itself says they cannot work, CASSANDRA-10246), and `THROW_ON_OVERLOAD` /
//! `NO_COMPACT` (accepted and ignored).
//!
//! # Deliberate choices where Cassandra or the spec leave room
//!
//! * Any decode failure closes the connection after the error frame (Cassandra keeps a
//!   connection open when only the body of a well-framed request is bad). Requests before STARTUP
//!   and a bad STARTUP are answered without closing.
//! * Request bodies must be consumed exactly (trailing bytes are an error); response decoding
//!   ignores trailing bytes, as the spec asks of clients.
//! * A default timestamp of `i64::MIN` is refused; other negative timestamps are accepted, as
//!   Cassandra does (the spec says negative values are forbidden).
//! * Outgoing frames are not limited by `max_frame_bytes` (as in Cassandra), only by the header's
//!   `[int]` length; ERROR messages longer than 65535 bytes are truncated.
//! * Tests include a test-only counting global allocator (`robustness_tests`), the one piece of
//!   `unsafe` (allowed locally); drop that module if the host crate has its own allocator.

#![deny(clippy::indexing_slicing)]

pub mod codec;
pub mod compression;
pub mod connection;
pub mod consistency;
pub mod error;
pub mod event;
pub mod frame;
pub mod limits;
pub mod metadata;
pub mod request;
pub mod response;
pub mod server;

#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod response_tests;
#[cfg(test)]
mod robustness_tests;
#[cfg(test)]
mod server_tests;

pub use codec::{BindValue, BytesMap, StringMap, StringMultimap};
pub use compression::Compression;
pub use connection::ConnectionState;
pub use consistency::Consistency;
pub use error::ProtocolError;
pub use event::{
    Event, EventType, SchemaChange, SchemaChangeTarget, SchemaChangeType, StatusChangeType,
    TopologyChangeType,
};
pub use frame::{Direction, Frame, FrameFlags, FrameHeader, Opcode};
pub use limits::Limits;
pub use metadata::{ColumnSpec, ColumnType, PreparedMetadata, RowsMetadata};
pub use request::{
    Batch, BatchKind, BatchQuery, BatchStatement, QueryParameters, Request, RequestEnvelope, Values,
};
pub use response::{
    ErrorCode, ErrorKind, ErrorResponse, Prepared, Response, ResponseEnvelope, ResultBody, Rows, RowsContent,
    WriteType,
};
pub use server::{serve, EventBus, Handler};
