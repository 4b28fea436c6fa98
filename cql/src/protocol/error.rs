//! The one error type for everything that can go wrong while decoding or encoding protocol bytes.
//!
//! Every variant says what was wrong in words a client developer can act on; the server turns any
//! of them into an ERROR frame with code 0x000A (protocol error) and closes the connection.

use crate::protocol::frame::Opcode;

/// A decode or encode failure of the native protocol. Bytes from the network never panic: every
/// malformed input ends up as one of these values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The version byte names a protocol version other than 4. The text is what drivers look for
    /// to step down (`unsupported protocol version`), see `driver-notes.md`.
    #[error("Invalid or unsupported protocol version ({version}); supported versions are (4/v4)")]
    UnsupportedVersion { version: u8 },

    /// The direction bit of the version byte is wrong (a client sent a response frame, or a
    /// server sent a request frame).
    #[error("invalid frame direction: version byte {version_byte:#04x} is a {got} frame, expected a {expected} frame")]
    WrongDirection { version_byte: u8, got: &'static str, expected: &'static str },

    /// The header announces a body longer than the configured limit.
    #[error("frame body length {length} exceeds native_transport_max_frame_size {max}")]
    FrameTooLarge { length: u64, max: usize },

    /// The header announces a negative body length.
    #[error("negative frame body length {length}")]
    NegativeFrameLength { length: i32 },

    /// The opcode byte is not one of the spec's opcodes.
    #[error("unknown opcode {opcode:#04x}")]
    UnknownOpcode { opcode: u8 },

    /// A known opcode in the wrong direction (e.g. a client sending READY).
    #[error("unexpected opcode {opcode} in a {direction} frame")]
    UnexpectedOpcode { opcode: Opcode, direction: &'static str },

    /// The USE_BETA flag (0x10) is set: v4 is not a beta version.
    #[error("beta flag 0x10 set, but protocol version 4 is not a beta version")]
    BetaFlag,

    /// Fewer bytes remain than an element needs.
    #[error("truncated {what}: needs {needed} bytes but only {remaining} remain")]
    Truncated { what: &'static str, needed: usize, remaining: usize },

    /// A length prefix is invalid (negative where not allowed, or below -2 for a `[value]`).
    #[error("invalid length {length} for {what}")]
    InvalidLength { what: &'static str, length: i64 },

    /// A string is not valid UTF-8.
    #[error("invalid UTF-8 in {what}")]
    InvalidUtf8 { what: &'static str },

    /// A count is above a configured or structural limit.
    #[error("too many {what}: {count} exceeds the limit of {max}")]
    TooMany { what: &'static str, count: usize, max: usize },

    /// A consistency code outside ANY (0x0000) ..= LOCAL_ONE (0x000A).
    #[error("unknown consistency level code {code:#06x}")]
    UnknownConsistency { code: u16 },

    /// An enumerated code (batch type, result kind, column type id, error code, ...) is unknown.
    #[error("unknown {what} {value:#x}")]
    UnknownCode { what: &'static str, value: i64 },

    /// An enumerated string (event type, schema change target, ...) is unknown.
    #[error("unknown {what} {value:?}")]
    UnknownName { what: &'static str, value: String },

    /// A request body has bytes left over after its last element.
    #[error("{remaining} unexpected trailing bytes after the {opcode} body")]
    TrailingBytes { opcode: Opcode, remaining: usize },

    /// A column type nests deeper than the decoder allows (stack protection).
    #[error("column type nesting exceeds the maximum depth {max}")]
    TypeTooDeep { max: usize },

    /// STARTUP asked for a compression algorithm the server does not implement.
    #[error("unknown compression algorithm {name:?}; supported: lz4, snappy")]
    UnknownCompression { name: String },

    /// A frame has the compression flag but no compression was negotiated in STARTUP.
    #[error("frame has the compression flag 0x01 but no compression was negotiated in STARTUP")]
    CompressionNotNegotiated,

    /// A compressed body could not be decompressed (corrupt data or a lying length).
    #[error("{algorithm} decompression failed: {reason}")]
    Decompression { algorithm: &'static str, reason: String },

    /// The compressor failed (should not happen for sane inputs).
    #[error("{algorithm} compression failed: {reason}")]
    Compression { algorithm: &'static str, reason: String },

    /// A value is too long for its length prefix when encoding.
    #[error("cannot encode {what}: length {length} exceeds the maximum {max}")]
    EncodeTooLong { what: &'static str, length: usize, max: usize },

    /// Anything else that is structurally wrong, with a description.
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
}

/// Result alias for protocol encode/decode.
pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;
