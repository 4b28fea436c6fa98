//! Response messages (spec §4.2): encoding into frames, and decoding (for clients and tests).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

use crate::protocol::codec::{self, BytesMap, Reader, StringMultimap};
use crate::protocol::compression::Compression;
use crate::protocol::consistency::Consistency;
use crate::protocol::error::{ProtocolError, Result};
use crate::protocol::event::{Event, SchemaChange};
use crate::protocol::frame::{Direction, Frame, FrameFlags, FrameHeader, Opcode};
use crate::protocol::metadata::{PreparedMetadata, RowsMetadata};
use crate::protocol::request::{compress_body, decompress_body};

/// Most rows a decoded Rows result may claim when it has no columns (such rows take no bytes, so
/// the body length cannot bound them).
pub const MAX_ROWS_WITHOUT_COLUMNS: usize = 1 << 16;

/// ERROR codes (spec §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    ServerError = 0x0000,
    ProtocolError = 0x000A,
    AuthError = 0x0100,
    Unavailable = 0x1000,
    Overloaded = 0x1001,
    IsBootstrapping = 0x1002,
    TruncateError = 0x1003,
    WriteTimeout = 0x1100,
    ReadTimeout = 0x1200,
    ReadFailure = 0x1300,
    FunctionFailure = 0x1400,
    WriteFailure = 0x1500,
    SyntaxError = 0x2000,
    Unauthorized = 0x2100,
    Invalid = 0x2200,
    ConfigError = 0x2300,
    AlreadyExists = 0x2400,
    Unprepared = 0x2500,
}

impl ErrorCode {
    /// Decodes a wire code.
    pub fn from_code(code: i32) -> Result<Self> {
        use ErrorCode as E;
        Ok(match code {
            0x0000 => E::ServerError,
            0x000A => E::ProtocolError,
            0x0100 => E::AuthError,
            0x1000 => E::Unavailable,
            0x1001 => E::Overloaded,
            0x1002 => E::IsBootstrapping,
            0x1003 => E::TruncateError,
            0x1100 => E::WriteTimeout,
            0x1200 => E::ReadTimeout,
            0x1300 => E::ReadFailure,
            0x1400 => E::FunctionFailure,
            0x1500 => E::WriteFailure,
            0x2000 => E::SyntaxError,
            0x2100 => E::Unauthorized,
            0x2200 => E::Invalid,
            0x2300 => E::ConfigError,
            0x2400 => E::AlreadyExists,
            0x2500 => E::Unprepared,
            other => return Err(ProtocolError::UnknownCode { what: "error code", value: i64::from(other) }),
        })
    }
}

/// `<writeType>` of Write_timeout and Write_failure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WriteType {
    Simple,
    Batch,
    UnloggedBatch,
    Counter,
    BatchLog,
    Cas,
    View,
    Cdc,
    /// A type this crate does not know (decoded from a newer server).
    Other(String),
}

impl WriteType {
    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            WriteType::Simple => "SIMPLE",
            WriteType::Batch => "BATCH",
            WriteType::UnloggedBatch => "UNLOGGED_BATCH",
            WriteType::Counter => "COUNTER",
            WriteType::BatchLog => "BATCH_LOG",
            WriteType::Cas => "CAS",
            WriteType::View => "VIEW",
            WriteType::Cdc => "CDC",
            WriteType::Other(s) => s,
        }
    }

    fn from_wire(s: String) -> Self {
        match s.as_str() {
            "SIMPLE" => WriteType::Simple,
            "BATCH" => WriteType::Batch,
            "UNLOGGED_BATCH" => WriteType::UnloggedBatch,
            "COUNTER" => WriteType::Counter,
            "BATCH_LOG" => WriteType::BatchLog,
            "CAS" => WriteType::Cas,
            "VIEW" => WriteType::View,
            "CDC" => WriteType::Cdc,
            _ => WriteType::Other(s),
        }
    }
}

/// The error code plus the code-specific extra body (spec §9).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    ServerError,
    ProtocolError,
    AuthError,
    Unavailable {
        consistency: Consistency,
        required: i32,
        alive: i32,
    },
    Overloaded,
    IsBootstrapping,
    TruncateError,
    WriteTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        write_type: WriteType,
    },
    ReadTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        data_present: bool,
    },
    ReadFailure {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        num_failures: i32,
        data_present: bool,
    },
    FunctionFailure {
        keyspace: String,
        function: String,
        arg_types: Vec<String>,
    },
    WriteFailure {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        num_failures: i32,
        write_type: WriteType,
    },
    SyntaxError,
    Unauthorized,
    Invalid,
    ConfigError,
    /// `table` is empty when a keyspace already exists.
    AlreadyExists {
        keyspace: String,
        table: String,
    },
    /// The unknown prepared statement id.
    Unprepared {
        id: Bytes,
    },
}

impl ErrorKind {
    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        use ErrorCode as C;
        match self {
            ErrorKind::ServerError => C::ServerError,
            ErrorKind::ProtocolError => C::ProtocolError,
            ErrorKind::AuthError => C::AuthError,
            ErrorKind::Unavailable { .. } => C::Unavailable,
            ErrorKind::Overloaded => C::Overloaded,
            ErrorKind::IsBootstrapping => C::IsBootstrapping,
            ErrorKind::TruncateError => C::TruncateError,
            ErrorKind::WriteTimeout { .. } => C::WriteTimeout,
            ErrorKind::ReadTimeout { .. } => C::ReadTimeout,
            ErrorKind::ReadFailure { .. } => C::ReadFailure,
            ErrorKind::FunctionFailure { .. } => C::FunctionFailure,
            ErrorKind::WriteFailure { .. } => C::WriteFailure,
            ErrorKind::SyntaxError => C::SyntaxError,
            ErrorKind::Unauthorized => C::Unauthorized,
            ErrorKind::Invalid => C::Invalid,
            ErrorKind::ConfigError => C::ConfigError,
            ErrorKind::AlreadyExists { .. } => C::AlreadyExists,
            ErrorKind::Unprepared { .. } => C::Unprepared,
        }
    }
}

/// An ERROR message: `<code><message>[extra]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorResponse {
    pub kind: ErrorKind,
    /// Human-readable text. Encoding truncates it (at a character boundary) to the 65535 bytes a
    /// `[string]` can hold.
    pub message: String,
}

impl ErrorResponse {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorResponse { kind, message: message.into() }
    }

    fn encode(&self, out: &mut BytesMut) -> Result<()> {
        out.put_i32(self.kind.code() as i32);
        codec::put_string(out, truncate_to_boundary(&self.message, usize::from(u16::MAX)), "error message")?;
        match &self.kind {
            ErrorKind::Unavailable { consistency, required, alive } => {
                codec::put_consistency(out, *consistency);
                out.put_i32(*required);
                out.put_i32(*alive);
            }
            ErrorKind::WriteTimeout { consistency, received, block_for, write_type } => {
                codec::put_consistency(out, *consistency);
                out.put_i32(*received);
                out.put_i32(*block_for);
                codec::put_string(out, write_type.as_str(), "write type")?;
            }
            ErrorKind::ReadTimeout { consistency, received, block_for, data_present } => {
                codec::put_consistency(out, *consistency);
                out.put_i32(*received);
                out.put_i32(*block_for);
                out.put_u8(u8::from(*data_present));
            }
            ErrorKind::ReadFailure { consistency, received, block_for, num_failures, data_present } => {
                codec::put_consistency(out, *consistency);
                out.put_i32(*received);
                out.put_i32(*block_for);
                out.put_i32(*num_failures);
                out.put_u8(u8::from(*data_present));
            }
            ErrorKind::FunctionFailure { keyspace, function, arg_types } => {
                codec::put_string(out, keyspace, "keyspace")?;
                codec::put_string(out, function, "function name")?;
                codec::put_string_list(out, arg_types, "argument types")?;
            }
            ErrorKind::WriteFailure { consistency, received, block_for, num_failures, write_type } => {
                codec::put_consistency(out, *consistency);
                out.put_i32(*received);
                out.put_i32(*block_for);
                out.put_i32(*num_failures);
                codec::put_string(out, write_type.as_str(), "write type")?;
            }
            ErrorKind::AlreadyExists { keyspace, table } => {
                codec::put_string(out, keyspace, "keyspace")?;
                codec::put_string(out, table, "table")?;
            }
            ErrorKind::Unprepared { id } => codec::put_short_bytes(out, id, "prepared id")?,
            ErrorKind::ServerError
            | ErrorKind::ProtocolError
            | ErrorKind::AuthError
            | ErrorKind::Overloaded
            | ErrorKind::IsBootstrapping
            | ErrorKind::TruncateError
            | ErrorKind::SyntaxError
            | ErrorKind::Unauthorized
            | ErrorKind::Invalid
            | ErrorKind::ConfigError => {}
        }
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self> {
        use ErrorCode as C;
        let code = ErrorCode::from_code(r.read_int("error code")?)?;
        let message = r.read_string("error message")?;
        let kind = match code {
            C::ServerError => ErrorKind::ServerError,
            C::ProtocolError => ErrorKind::ProtocolError,
            C::AuthError => ErrorKind::AuthError,
            C::Unavailable => ErrorKind::Unavailable {
                consistency: r.read_consistency("consistency")?,
                required: r.read_int("required")?,
                alive: r.read_int("alive")?,
            },
            C::Overloaded => ErrorKind::Overloaded,
            C::IsBootstrapping => ErrorKind::IsBootstrapping,
            C::TruncateError => ErrorKind::TruncateError,
            C::WriteTimeout => ErrorKind::WriteTimeout {
                consistency: r.read_consistency("consistency")?,
                received: r.read_int("received")?,
                block_for: r.read_int("blockfor")?,
                write_type: WriteType::from_wire(r.read_string("write type")?),
            },
            C::ReadTimeout => ErrorKind::ReadTimeout {
                consistency: r.read_consistency("consistency")?,
                received: r.read_int("received")?,
                block_for: r.read_int("blockfor")?,
                data_present: r.read_byte("data present")? != 0,
            },
            C::ReadFailure => ErrorKind::ReadFailure {
                consistency: r.read_consistency("consistency")?,
                received: r.read_int("received")?,
                block_for: r.read_int("blockfor")?,
                num_failures: r.read_int("failures")?,
                data_present: r.read_byte("data present")? != 0,
            },
            C::FunctionFailure => ErrorKind::FunctionFailure {
                keyspace: r.read_string("keyspace")?,
                function: r.read_string("function name")?,
                arg_types: r.read_string_list("argument types")?,
            },
            C::WriteFailure => ErrorKind::WriteFailure {
                consistency: r.read_consistency("consistency")?,
                received: r.read_int("received")?,
                block_for: r.read_int("blockfor")?,
                num_failures: r.read_int("failures")?,
                write_type: WriteType::from_wire(r.read_string("write type")?),
            },
            C::SyntaxError => ErrorKind::SyntaxError,
            C::Unauthorized => ErrorKind::Unauthorized,
            C::Invalid => ErrorKind::Invalid,
            C::ConfigError => ErrorKind::ConfigError,
            C::AlreadyExists => ErrorKind::AlreadyExists {
                keyspace: r.read_string("keyspace")?,
                table: r.read_string("table")?,
            },
            C::Unprepared => ErrorKind::Unprepared { id: r.read_short_bytes("prepared id")? },
        };
        Ok(ErrorResponse { kind, message })
    }
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {:#06x}: {}", self.kind.code() as i32, self.message)
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate_to_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    s.get(..end).unwrap_or_default()
}

/// `<rows_count><rows_content>` of a Rows result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowsContent {
    /// Rows of cells; `None` is a null cell. Every row must have `column_count` cells.
    Rows(Vec<Vec<Option<Bytes>>>),
    /// Cells already serialized as `row_count * column_count` `[bytes]` (e.g. by the executor).
    Encoded { row_count: usize, bytes: Bytes },
}

impl RowsContent {
    /// Number of rows.
    pub fn row_count(&self) -> usize {
        match self {
            RowsContent::Rows(rows) => rows.len(),
            RowsContent::Encoded { row_count, .. } => *row_count,
        }
    }
}

/// A Rows result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows {
    pub metadata: RowsMetadata,
    pub rows: RowsContent,
}

impl Rows {
    fn encode(&self, out: &mut BytesMut) -> Result<()> {
        self.metadata.encode(out)?;
        out.put_i32(codec::int_len(self.rows.row_count(), "row count")?);
        match &self.rows {
            RowsContent::Rows(rows) => {
                for row in rows {
                    if row.len() != self.metadata.column_count {
                        return Err(ProtocolError::Invalid {
                            what: "rows",
                            reason: format!(
                                "a row has {} cells, metadata has {} columns",
                                row.len(),
                                self.metadata.column_count
                            ),
                        });
                    }
                    for cell in row {
                        codec::put_bytes(out, cell.as_deref(), "cell")?;
                    }
                }
            }
            RowsContent::Encoded { bytes, .. } => out.put_slice(bytes),
        }
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<Self> {
        let metadata = RowsMetadata::decode(r)?;
        let count = r.read_int("row count")?;
        let count = usize::try_from(count)
            .map_err(|_| ProtocolError::InvalidLength { what: "row count", length: i64::from(count) })?;
        let columns = metadata.column_count;
        // every cell is at least its 4-byte length
        let needed = count.saturating_mul(columns).saturating_mul(4);
        if (columns > 0 && needed > r.remaining()) || (columns == 0 && count > MAX_ROWS_WITHOUT_COLUMNS) {
            return Err(ProtocolError::Truncated { what: "rows content", needed, remaining: r.remaining() });
        }
        let mut rows = Vec::with_capacity(count);
        for _ in 0..count {
            let mut row = Vec::with_capacity(columns);
            for _ in 0..columns {
                row.push(r.read_bytes("cell")?);
            }
            rows.push(row);
        }
        Ok(Rows { metadata, rows: RowsContent::Rows(rows) })
    }
}

/// A Prepared result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub id: Bytes,
    pub metadata: PreparedMetadata,
    pub result_metadata: RowsMetadata,
}

/// RESULT `<kind>` codes (spec §4.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ResultKind {
    Void = 0x0001,
    Rows = 0x0002,
    SetKeyspace = 0x0003,
    Prepared = 0x0004,
    SchemaChange = 0x0005,
}

/// A RESULT message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultBody {
    Void,
    Rows(Rows),
    SetKeyspace(String),
    Prepared(Prepared),
    SchemaChange(SchemaChange),
}

impl ResultBody {
    /// The kind code.
    pub fn kind(&self) -> ResultKind {
        match self {
            ResultBody::Void => ResultKind::Void,
            ResultBody::Rows(_) => ResultKind::Rows,
            ResultBody::SetKeyspace(_) => ResultKind::SetKeyspace,
            ResultBody::Prepared(_) => ResultKind::Prepared,
            ResultBody::SchemaChange(_) => ResultKind::SchemaChange,
        }
    }

    fn encode(&self, out: &mut BytesMut) -> Result<()> {
        out.put_i32(self.kind() as i32);
        match self {
            ResultBody::Void => Ok(()),
            ResultBody::Rows(rows) => rows.encode(out),
            ResultBody::SetKeyspace(keyspace) => codec::put_string(out, keyspace, "keyspace"),
            ResultBody::Prepared(p) => {
                codec::put_short_bytes(out, &p.id, "prepared id")?;
                p.metadata.encode(out)?;
                p.result_metadata.encode(out)
            }
            ResultBody::SchemaChange(change) => change.encode(out),
        }
    }

    fn decode(r: &mut Reader) -> Result<Self> {
        let kind = r.read_int("result kind")?;
        Ok(match kind {
            0x0001 => ResultBody::Void,
            0x0002 => ResultBody::Rows(Rows::decode(r)?),
            0x0003 => ResultBody::SetKeyspace(r.read_string("keyspace")?),
            0x0004 => ResultBody::Prepared(Prepared {
                id: r.read_short_bytes("prepared id")?,
                metadata: PreparedMetadata::decode(r)?,
                result_metadata: RowsMetadata::decode(r)?,
            }),
            0x0005 => ResultBody::SchemaChange(SchemaChange::decode(r)?),
            other => return Err(ProtocolError::UnknownCode { what: "result kind", value: i64::from(other) }),
        })
    }
}

/// A response message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Error(ErrorResponse),
    Ready,
    /// AUTHENTICATE with the authenticator's class name.
    Authenticate {
        authenticator: String,
    },
    /// SUPPORTED: option name to supported values.
    Supported(StringMultimap),
    Result(ResultBody),
    Event(Event),
    AuthChallenge {
        token: Option<Bytes>,
    },
    AuthSuccess {
        token: Option<Bytes>,
    },
}

impl Response {
    /// An ERROR response.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Self {
        Response::Error(ErrorResponse::new(kind, message))
    }

    /// ERROR 0x0000 Server error.
    pub fn server_error(message: impl Into<String>) -> Self {
        Self::error(ErrorKind::ServerError, message)
    }

    /// ERROR 0x000A Protocol error.
    pub fn protocol_error(message: impl Into<String>) -> Self {
        Self::error(ErrorKind::ProtocolError, message)
    }

    /// ERROR 0x2200 Invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::error(ErrorKind::Invalid, message)
    }

    /// RESULT Void.
    pub fn void() -> Self {
        Response::Result(ResultBody::Void)
    }

    /// The opcode this response travels with.
    pub fn opcode(&self) -> Opcode {
        match self {
            Response::Error(_) => Opcode::Error,
            Response::Ready => Opcode::Ready,
            Response::Authenticate { .. } => Opcode::Authenticate,
            Response::Supported(_) => Opcode::Supported,
            Response::Result(_) => Opcode::Result,
            Response::Event(_) => Opcode::Event,
            Response::AuthChallenge { .. } => Opcode::AuthChallenge,
            Response::AuthSuccess { .. } => Opcode::AuthSuccess,
        }
    }

    /// Writes the message part of the body.
    pub fn encode_body(&self, out: &mut BytesMut) -> Result<()> {
        match self {
            Response::Error(e) => e.encode(out),
            Response::Ready => Ok(()),
            Response::Authenticate { authenticator } => {
                codec::put_string(out, authenticator, "authenticator")
            }
            Response::Supported(options) => codec::put_string_multimap(out, options, "supported options"),
            Response::Result(result) => result.encode(out),
            Response::Event(event) => event.encode(out),
            Response::AuthChallenge { token } | Response::AuthSuccess { token } => {
                codec::put_bytes(out, token.as_deref(), "auth token")
            }
        }
    }

    /// Reads the message part of a body. Trailing bytes are left in `r` (the spec lets servers
    /// append information clients should ignore).
    pub fn decode(opcode: Opcode, r: &mut Reader) -> Result<Self> {
        Ok(match opcode {
            Opcode::Error => Response::Error(ErrorResponse::decode(r)?),
            Opcode::Ready => Response::Ready,
            Opcode::Authenticate => Response::Authenticate { authenticator: r.read_string("authenticator")? },
            Opcode::Supported => Response::Supported(r.read_string_multimap("supported options")?),
            Opcode::Result => Response::Result(ResultBody::decode(r)?),
            Opcode::Event => Response::Event(Event::decode(r)?),
            Opcode::AuthChallenge => Response::AuthChallenge { token: r.read_bytes("auth token")? },
            Opcode::AuthSuccess => Response::AuthSuccess { token: r.read_bytes("auth token")? },
            other => return Err(ProtocolError::UnexpectedOpcode { opcode: other, direction: "response" }),
        })
    }
}

/// A response with its frame-level extras.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseEnvelope {
    pub response: Response,
    /// Tracing session id (flag 0x02), for requests that asked for tracing.
    pub tracing_id: Option<Uuid>,
    /// Warnings for the client (flag 0x08); empty means no flag.
    pub warnings: Vec<String>,
    /// Custom payload (flag 0x04).
    pub custom_payload: Option<BytesMap>,
}

impl From<Response> for ResponseEnvelope {
    fn from(response: Response) -> Self {
        ResponseEnvelope { response, tracing_id: None, warnings: Vec::new(), custom_payload: None }
    }
}

impl ResponseEnvelope {
    /// Adds a warning.
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// Sets the tracing id.
    pub fn with_tracing_id(mut self, id: Uuid) -> Self {
        self.tracing_id = Some(id);
        self
    }

    /// Encodes a whole response frame `[<tracing_id>][<warnings>][<custom_payload>]<message>`,
    /// compressing non-empty bodies when `compression` is given.
    pub fn encode(&self, stream: i16, compression: Option<Compression>) -> Result<Bytes> {
        let mut flags = FrameFlags::empty();
        let mut body = BytesMut::new();
        if let Some(id) = &self.tracing_id {
            flags.insert(FrameFlags::TRACING);
            codec::put_uuid(&mut body, id);
        }
        if !self.warnings.is_empty() {
            flags.insert(FrameFlags::WARNING);
            codec::put_string_list(&mut body, &self.warnings, "warnings")?;
        }
        if let Some(payload) = &self.custom_payload {
            flags.insert(FrameFlags::CUSTOM_PAYLOAD);
            codec::put_bytes_map(&mut body, payload, "custom payload")?;
        }
        self.response.encode_body(&mut body)?;
        let body = compress_body(&mut flags, body.freeze(), compression)?;
        let header = FrameHeader {
            direction: Direction::Response,
            flags,
            stream,
            opcode: self.response.opcode(),
            length: body.len(),
        };
        Frame { header, body }.encode()
    }

    /// Decodes a (decompressed) response body.
    pub fn decode(header: &FrameHeader, body: Bytes) -> Result<Self> {
        let mut r = Reader::new(body);
        let tracing_id =
            if header.flags.contains(FrameFlags::TRACING) { Some(r.read_uuid("tracing id")?) } else { None };
        let warnings = if header.flags.contains(FrameFlags::WARNING) {
            r.read_string_list("warnings")?
        } else {
            Vec::new()
        };
        let custom_payload = if header.flags.contains(FrameFlags::CUSTOM_PAYLOAD) {
            Some(r.read_bytes_map("custom payload")?)
        } else {
            None
        };
        let response = Response::decode(header.opcode, &mut r)?;
        Ok(ResponseEnvelope { response, tracing_id, warnings, custom_payload })
    }

    /// Decompresses (if flagged) and decodes a raw response frame body.
    pub fn decode_frame(
        header: &FrameHeader,
        raw_body: Bytes,
        compression: Option<Compression>,
        max_frame_bytes: usize,
    ) -> Result<Self> {
        Self::decode(header, decompress_body(header, raw_body, compression, max_frame_bytes)?)
    }
}
