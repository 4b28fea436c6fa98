//! The engine's one error type. Variants are named for what the caller must do.

use std::path::PathBuf;

use crate::TableId;

/// Everything that can go wrong inside the storage engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed; the path says where. Usually retryable after the
    /// operator fixes the disk (space, permissions).
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the call touched.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Bytes on disk failed a checksum or did not parse. Not retryable: the operator must restore
    /// the file (or, for the commit log, restart with `commitlog_ignore_replay_errors`).
    #[error("corruption in {} at offset {offset}: {reason}", file.display())]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset in the file where the damage was detected.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// An fsync failed earlier; the engine refuses all further writes (retrying an fsync can
    /// silently lose data). Restart the node after fixing the disk.
    #[error("writes refused: the commit log is poisoned after a failed fsync ({reason}); fix the disk and restart the node")]
    Poisoned {
        /// The original failure.
        reason: String,
    },
    /// The request names a table this engine does not have.
    #[error("unknown table {0}")]
    UnknownTable(TableId),
    /// `create_table` for an id that already exists.
    #[error("table {0} already exists")]
    TableExists(TableId),
    /// The request itself is invalid (too large, malformed bounds); fix the request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A compaction was stopped (`nodetool stop`, a major compaction taking over, or shutdown);
    /// its inputs stay live and it is picked again later.
    #[error("compaction of {keyspace}.{table} was stopped")]
    CompactionStopped {
        /// Keyspace.
        keyspace: String,
        /// Table.
        table: String,
    },
    /// The engine was closed.
    #[error("the engine is closed")]
    Closed,
}

/// Shorthand used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }

    /// A corruption error from a decode failure inside `file`, at `base` plus the decoder's
    /// offset.
    pub fn corruption(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Error {
        Error::Corruption { file: file.into(), offset, reason: reason.into() }
    }
}
