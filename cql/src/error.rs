//! The CQL layer's error type. Each variant maps to one native-protocol error code, and the
//! protocol boundary ([`crate::server`]) is the only place that turns it into code and text.

use crate::protocol::Consistency;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, named for what the client should do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The statement does not parse: fix its text at `line:column`.
    #[error("line {line}:{column} {message}")]
    Syntax {
        /// 1-based line.
        line: u32,
        /// 0-based column.
        column: u32,
        /// What was found and expected.
        message: String,
    },
    /// The statement parses but is not valid against the schema or CQL's rules.
    #[error("{0}")]
    Invalid(String),
    /// A DDL statement's options are wrong (protocol code `Config_error`).
    #[error("{0}")]
    Config(String),
    /// The keyspace or table already exists (CREATE without IF NOT EXISTS).
    #[error("{}", already_exists_message(keyspace, table))]
    AlreadyExists {
        /// Keyspace.
        keyspace: String,
        /// Table, or empty for a keyspace.
        table: String,
    },
    /// The prepared statement id is unknown: prepare it again.
    #[error("Prepared query with ID {} not found (either the query was not prepared on this host (maybe the host has been restarted?) or you have prepared too many queries and it has been evicted from the internal cache)", hex(id))]
    Unprepared {
        /// The id the client sent.
        id: Vec<u8>,
    },
    /// Not enough replicas are alive for the consistency level: retry later or lower it.
    #[error("Cannot achieve consistency level {consistency}")]
    Unavailable {
        /// Requested consistency.
        consistency: Consistency,
        /// Replicas required.
        required: i32,
        /// Replicas alive.
        alive: i32,
    },
    /// The request is not allowed for this client.
    #[error("{0}")]
    Unauthorized(String),
    /// The node is overloaded: back off and retry.
    #[error("{0}")]
    Overloaded(String),
    /// A read scanned too many tombstones (`tombstone_failure_threshold`).
    #[error("{0}")]
    ReadFailure(String),
    /// The storage engine failed; the message says how (I/O, corruption with file and offset,
    /// poisoned commit log). The client may retry; the operator must look at the node's log.
    #[error("{0}")]
    Storage(#[from] sibyl_engine::Error),
    /// Coordinating the request with the replicas failed (timeout, replica failure,
    /// overload); the variant inside says which and what the client may do.
    #[error("{0}")]
    Cluster(sibyl_cluster::Error),
    /// A bug or an unexpected internal state; logged with details.
    #[error("{0}")]
    Server(String),
}

impl From<sibyl_cluster::Error> for Error {
    fn from(e: sibyl_cluster::Error) -> Error {
        match e {
            sibyl_cluster::Error::Unavailable { consistency, required, alive } => Error::Unavailable {
                consistency: crate::protocol::Consistency::from_code(consistency.code())
                    .unwrap_or(crate::protocol::Consistency::One),
                required: i32::try_from(required).unwrap_or(i32::MAX),
                alive: i32::try_from(alive).unwrap_or(i32::MAX),
            },
            sibyl_cluster::Error::Invalid(m) => Error::Invalid(m),
            sibyl_cluster::Error::Overloaded(m) => Error::Overloaded(m),
            sibyl_cluster::Error::Storage(s) => Error::Storage(s),
            other => Error::Cluster(other),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn already_exists_message(keyspace: &str, table: &str) -> String {
    if table.is_empty() {
        format!("Keyspace {keyspace} already exists")
    } else {
        format!("Object {keyspace}.{table} already exists")
    }
}

impl Error {
    /// An [`Error::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::Invalid(message.into())
    }

    /// An [`Error::Config`].
    pub fn config(message: impl Into<String>) -> Error {
        Error::Config(message.into())
    }
}
