//! The cluster layer's one error type, named for what the caller (the CQL layer, and through it
//! the client) should do.

use crate::consistency::ConsistencyLevel;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Kinds of write, as the protocol's WriteTimeout reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteType {
    /// A single-partition write.
    Simple,
    /// A logged batch.
    Batch,
    /// An unlogged batch or a multi-partition write.
    UnloggedBatch,
    /// Storing a logged batch in the batchlog (nothing of the batch was applied yet).
    BatchLog,
}

impl WriteType {
    /// The protocol's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            WriteType::Simple => "SIMPLE",
            WriteType::Batch => "BATCH",
            WriteType::UnloggedBatch => "UNLOGGED_BATCH",
            WriteType::BatchLog => "BATCH_LOG",
        }
    }
}

/// What went wrong coordinating a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Too few replicas are known alive for the level: retry later or lower the level.
    #[error("Cannot achieve consistency level {} (required {required}, alive {alive})", consistency.name())]
    Unavailable {
        /// The level asked for.
        consistency: ConsistencyLevel,
        /// Replicas the level needs.
        required: usize,
        /// Replicas alive.
        alive: usize,
    },
    /// Replicas did not acknowledge a write in `write_request_timeout`. The write may still be
    /// applied on some replicas; retrying is safe because writes are idempotent.
    #[error("Operation timed out - received only {received} responses of {block_for} required ({} write at {})", write_type.name(), consistency.name())]
    WriteTimeout {
        /// The level asked for.
        consistency: ConsistencyLevel,
        /// Acknowledgements received.
        received: usize,
        /// Acknowledgements required.
        block_for: usize,
        /// What kind of write.
        write_type: WriteType,
    },
    /// Replicas did not answer a read in `read_request_timeout`: retry.
    #[error("Operation timed out - received only {received} responses of {block_for} required (read at {})", consistency.name())]
    ReadTimeout {
        /// The level asked for.
        consistency: ConsistencyLevel,
        /// Answers received.
        received: usize,
        /// Answers required.
        block_for: usize,
        /// Whether the data (not only digests) was among them.
        data_present: bool,
    },
    /// Replicas answered with failures (e.g. an unknown table while schema propagates).
    #[error("Operation failed - received {received} responses and {failures} failures ({reason})")]
    Failure {
        /// The level asked for.
        consistency: ConsistencyLevel,
        /// Successful answers.
        received: usize,
        /// Answers required.
        block_for: usize,
        /// Failed answers.
        failures: usize,
        /// Whether it was a write.
        write: bool,
        /// The first failure's reason.
        reason: String,
    },
    /// The request is invalid for the cluster (e.g. ANY for a read, a bad replication option).
    #[error("{0}")]
    Invalid(String),
    /// This node is overloaded (outbound queues or in-flight limits): back off and retry.
    #[error("{0}")]
    Overloaded(String),
    /// Local storage failed.
    #[error(transparent)]
    Storage(#[from] sibyl_engine::Error),
}
