//! The error type of the type system and value codecs.

use thiserror::Error;

/// Everything that can go wrong when parsing types, decoding values or converting text forms.
///
/// Messages are meant for the client: where Cassandra has a well-known message for the same
/// problem (`Expected 4 or 0 byte int (3)`) the message is the same.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TypeError {
    /// Bytes that are not a valid serialized value of the type (Cassandra's `MarshalException`).
    #[error("{0}")]
    Marshal(String),
    /// A byte-comparable encoding that is not a valid encoding for the type: corrupt storage.
    #[error("Invalid byte-comparable {ty} value: {msg}")]
    Comparable {
        /// The type the bytes were decoded as.
        ty: String,
        /// What is wrong.
        msg: String,
    },
    /// CQL type text that cannot be parsed, or a type that is not allowed (e.g. a non-frozen
    /// collection inside a collection).
    #[error("{0}")]
    InvalidType(String),
    /// A string form (timestamp, date, time, duration, inet, uuid, ...) that cannot be converted.
    #[error("{0}")]
    InvalidLiteral(String),
    /// A [`crate::types::Value`] that is not a valid value of the type it is used with (wrong
    /// variant, unsorted set, tuple of the wrong arity, ...).
    #[error("{0}")]
    InvalidValue(String),
    /// A type or value nested deeper than [`crate::types::MAX_DEPTH`] levels.
    #[error("Type or value nested deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A result that cannot be represented (a date or timeuuid outside its range, ...).
    #[error("{0}")]
    OutOfRange(String),
}

pub(crate) fn marshal(msg: impl Into<String>) -> TypeError {
    TypeError::Marshal(msg.into())
}

pub(crate) fn literal(msg: impl Into<String>) -> TypeError {
    TypeError::InvalidLiteral(msg.into())
}
