//! Request messages (spec §4.1): decoding from untrusted frames, and encoding (for clients and
//! tests).

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::codec::{self, BindValue, BytesMap, Reader, StringMap};
use crate::protocol::compression::Compression;
use crate::protocol::consistency::Consistency;
use crate::protocol::error::{ProtocolError, Result};
use crate::protocol::event::EventType;
use crate::protocol::frame::{Direction, Frame, FrameFlags, FrameHeader, Opcode};
use crate::protocol::limits::Limits;

/// `<flags>` bits of `<query_parameters>` (spec §4.1.4).
pub mod query_flags {
    pub const VALUES: u8 = 0x01;
    pub const SKIP_METADATA: u8 = 0x02;
    pub const PAGE_SIZE: u8 = 0x04;
    pub const WITH_PAGING_STATE: u8 = 0x08;
    pub const WITH_SERIAL_CONSISTENCY: u8 = 0x10;
    pub const WITH_DEFAULT_TIMESTAMP: u8 = 0x20;
    pub const WITH_NAMES_FOR_VALUES: u8 = 0x40;
}

/// Bind values of a QUERY, EXECUTE or batch statement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Values {
    /// The Values flag (0x01) is not set.
    #[default]
    None,
    /// Values by position.
    Positional(Vec<BindValue>),
    /// Values by marker name (flag 0x40).
    Named(Vec<(String, BindValue)>),
}

impl Values {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::None => 0,
            Values::Positional(v) => v.len(),
            Values::Named(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads `<n>` values, each preceded by a `[string]` name when `named`.
    fn decode(r: &mut Reader, named: bool, budget: &mut ValueBudget) -> Result<Self> {
        let n = usize::from(r.read_short("value count")?);
        budget.take(n)?;
        if named {
            // a name is at least 2 bytes, a value at least 4
            let mut values = Vec::with_capacity(r.capacity_for(n, 6));
            for _ in 0..n {
                let name = r.read_string("value name")?;
                values.push((name, r.read_value("bind value")?));
            }
            Ok(Values::Named(values))
        } else {
            let mut values = Vec::with_capacity(r.capacity_for(n, 4));
            for _ in 0..n {
                values.push(r.read_value("bind value")?);
            }
            Ok(Values::Positional(values))
        }
    }

    /// Writes `<n>` and the values (names included for `Named`); `None` writes `n = 0`.
    fn encode(&self, out: &mut BytesMut) -> Result<()> {
        out.put_u16(codec::short_len(self.len(), "value count")?);
        match self {
            Values::None => {}
            Values::Positional(values) => {
                for v in values {
                    codec::put_value(out, v, "bind value")?;
                }
            }
            Values::Named(values) => {
                for (name, v) in values {
                    codec::put_string(out, name, "value name")?;
                    codec::put_value(out, v, "bind value")?;
                }
            }
        }
        Ok(())
    }
}

/// Counts values across a request against [`Limits::max_values_per_request`].
struct ValueBudget {
    used: usize,
    max: usize,
}

impl ValueBudget {
    fn take(&mut self, n: usize) -> Result<()> {
        self.used = self.used.saturating_add(n);
        if self.used > self.max {
            return Err(ProtocolError::TooMany {
                what: "bind values in one request",
                count: self.used,
                max: self.max,
            });
        }
        Ok(())
    }
}

/// `<query_parameters>` of QUERY and EXECUTE (spec §4.1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParameters {
    pub consistency: Consistency,
    pub values: Values,
    /// Skip_metadata (0x02): the result should carry No_metadata.
    pub skip_metadata: bool,
    /// Page_size (0x04), in rows. A value <= 0 means no paging (as in Cassandra).
    pub page_size: Option<i32>,
    /// With_paging_state (0x08); a null `[bytes]` decodes as `None`.
    pub paging_state: Option<Bytes>,
    /// With serial consistency (0x10); `None` means SERIAL.
    pub serial_consistency: Option<Consistency>,
    /// With default timestamp (0x20), microseconds.
    pub timestamp: Option<i64>,
}

impl QueryParameters {
    /// Parameters with a consistency level and nothing else.
    pub fn new(consistency: Consistency) -> Self {
        QueryParameters {
            consistency,
            values: Values::None,
            skip_metadata: false,
            page_size: None,
            paging_state: None,
            serial_consistency: None,
            timestamp: None,
        }
    }

    fn flags(&self) -> u8 {
        use query_flags::*;
        let mut flags = 0;
        match self.values {
            Values::None => {}
            Values::Positional(_) => flags |= VALUES,
            Values::Named(_) => flags |= VALUES | WITH_NAMES_FOR_VALUES,
        }
        if self.skip_metadata {
            flags |= SKIP_METADATA;
        }
        if self.page_size.is_some() {
            flags |= PAGE_SIZE;
        }
        if self.paging_state.is_some() {
            flags |= WITH_PAGING_STATE;
        }
        if self.serial_consistency.is_some() {
            flags |= WITH_SERIAL_CONSISTENCY;
        }
        if self.timestamp.is_some() {
            flags |= WITH_DEFAULT_TIMESTAMP;
        }
        flags
    }

    fn decode(r: &mut Reader, budget: &mut ValueBudget) -> Result<Self> {
        use query_flags::*;
        let consistency = r.read_consistency("consistency")?;
        let flags = r.read_byte("query flags")?;
        let values = if flags & VALUES != 0 {
            Values::decode(r, flags & WITH_NAMES_FOR_VALUES != 0, budget)?
        } else {
            Values::None
        };
        let page_size = if flags & PAGE_SIZE != 0 { Some(r.read_int("page size")?) } else { None };
        let paging_state = if flags & WITH_PAGING_STATE != 0 { r.read_bytes("paging state")? } else { None };
        let serial_consistency = if flags & WITH_SERIAL_CONSISTENCY != 0 {
            Some(r.read_consistency("serial consistency")?)
        } else {
            None
        };
        let timestamp = if flags & WITH_DEFAULT_TIMESTAMP != 0 { Some(read_timestamp(r)?) } else { None };
        Ok(QueryParameters {
            consistency,
            values,
            skip_metadata: flags & SKIP_METADATA != 0,
            page_size,
            paging_state,
            serial_consistency,
            timestamp,
        })
    }

    fn encode(&self, out: &mut BytesMut) -> Result<()> {
        codec::put_consistency(out, self.consistency);
        out.put_u8(self.flags());
        if !matches!(self.values, Values::None) {
            self.values.encode(out)?;
        }
        if let Some(page_size) = self.page_size {
            out.put_i32(page_size);
        }
        if let Some(state) = &self.paging_state {
            codec::put_bytes(out, Some(state), "paging state")?;
        }
        if let Some(serial) = self.serial_consistency {
            codec::put_consistency(out, serial);
        }
        if let Some(ts) = self.timestamp {
            out.put_i64(ts);
        }
        Ok(())
    }
}

/// Default timestamps: Cassandra refuses only `i64::MIN` (its "no timestamp" sentinel); the spec
/// says negative values are forbidden but Cassandra accepts them, and so do we.
fn read_timestamp(r: &mut Reader) -> Result<i64> {
    let ts = r.read_long("default timestamp")?;
    if ts == i64::MIN {
        return Err(ProtocolError::Invalid {
            what: "default timestamp",
            reason: format!("out of bound timestamp, must be in [{}, {}] (got {ts})", i64::MIN + 1, i64::MAX),
        });
    }
    Ok(ts)
}

/// BATCH `<type>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BatchKind {
    Logged = 0,
    Unlogged = 1,
    Counter = 2,
}

impl BatchKind {
    fn from_code(code: u8) -> Result<Self> {
        match code {
            0 => Ok(BatchKind::Logged),
            1 => Ok(BatchKind::Unlogged),
            2 => Ok(BatchKind::Counter),
            other => Err(ProtocolError::UnknownCode { what: "batch type", value: i64::from(other) }),
        }
    }
}

/// `<kind><string_or_id>` of one batch statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchQuery {
    /// kind 0: a query string.
    Query(String),
    /// kind 1: a prepared statement id.
    Prepared(Bytes),
}

/// One statement of a BATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchStatement {
    pub query: BatchQuery,
    /// Always `Positional` (possibly empty) when decoded. Encoding `None` writes zero values;
    /// `Named` is refused (BATCH cannot carry names, see CASSANDRA-10246).
    pub values: Values,
}

/// A BATCH request (spec §4.1.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub kind: BatchKind,
    pub statements: Vec<BatchStatement>,
    pub consistency: Consistency,
    pub serial_consistency: Option<Consistency>,
    pub timestamp: Option<i64>,
}

impl Batch {
    fn decode(r: &mut Reader, limits: &Limits, budget: &mut ValueBudget) -> Result<Self> {
        use query_flags::*;
        let kind = BatchKind::from_code(r.read_byte("batch type")?)?;
        let n = usize::from(r.read_short("batch statement count")?);
        if n > limits.max_batch_statements {
            return Err(ProtocolError::TooMany {
                what: "batch statements",
                count: n,
                max: limits.max_batch_statements,
            });
        }
        // kind byte + ([long string] or [short bytes]) + value count: at least 5 bytes each
        let mut statements = Vec::with_capacity(r.capacity_for(n, 5));
        for _ in 0..n {
            let query = match r.read_byte("batch statement kind")? {
                0 => BatchQuery::Query(r.read_long_string("batch query")?),
                1 => BatchQuery::Prepared(r.read_short_bytes("batch prepared id")?),
                other => {
                    return Err(ProtocolError::UnknownCode {
                        what: "batch statement kind",
                        value: i64::from(other),
                    })
                }
            };
            // Values are read without names, as Cassandra does: the names flag comes after the
            // statements, which is why the spec calls flag 0x40 unimplementable for BATCH.
            let values = Values::decode(r, false, budget)?;
            statements.push(BatchStatement { query, values });
        }
        let consistency = r.read_consistency("batch consistency")?;
        let flags = r.read_byte("batch flags")?;
        if flags & 0x0F != 0 {
            return Err(ProtocolError::Invalid {
                what: "batch flags",
                reason: format!("{flags:#04x} has one of the 4 low bits set, which must be 0 for BATCH"),
            });
        }
        if flags & WITH_NAMES_FOR_VALUES != 0 {
            return Err(ProtocolError::Invalid {
                what: "batch flags",
                reason: "named values (0x40) are not supported in BATCH (see CASSANDRA-10246)".into(),
            });
        }
        let serial_consistency = if flags & WITH_SERIAL_CONSISTENCY != 0 {
            Some(r.read_consistency("batch serial consistency")?)
        } else {
            None
        };
        let timestamp = if flags & WITH_DEFAULT_TIMESTAMP != 0 { Some(read_timestamp(r)?) } else { None };
        Ok(Batch { kind, statements, consistency, serial_consistency, timestamp })
    }

    fn encode(&self, out: &mut BytesMut) -> Result<()> {
        use query_flags::*;
        out.put_u8(self.kind as u8);
        out.put_u16(codec::short_len(self.statements.len(), "batch statement count")?);
        for s in &self.statements {
            match &s.query {
                BatchQuery::Query(q) => {
                    out.put_u8(0);
                    codec::put_long_string(out, q, "batch query")?;
                }
                BatchQuery::Prepared(id) => {
                    out.put_u8(1);
                    codec::put_short_bytes(out, id, "batch prepared id")?;
                }
            }
            if matches!(s.values, Values::Named(_)) {
                return Err(ProtocolError::Invalid {
                    what: "batch",
                    reason: "named values are not supported in BATCH (see CASSANDRA-10246)".into(),
                });
            }
            s.values.encode(out)?;
        }
        codec::put_consistency(out, self.consistency);
        let mut flags = 0;
        if self.serial_consistency.is_some() {
            flags |= WITH_SERIAL_CONSISTENCY;
        }
        if self.timestamp.is_some() {
            flags |= WITH_DEFAULT_TIMESTAMP;
        }
        out.put_u8(flags);
        if let Some(serial) = self.serial_consistency {
            codec::put_consistency(out, serial);
        }
        if let Some(ts) = self.timestamp {
            out.put_i64(ts);
        }
        Ok(())
    }
}

/// A request message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// STARTUP with its options (`CQL_VERSION`, `COMPRESSION`, driver keys...).
    Startup(StringMap),
    /// OPTIONS.
    Options,
    /// QUERY.
    Query { query: String, params: QueryParameters },
    /// PREPARE.
    Prepare { query: String },
    /// EXECUTE of a prepared statement id.
    Execute { id: Bytes, params: QueryParameters },
    /// BATCH.
    Batch(Batch),
    /// REGISTER for event types.
    Register { events: Vec<EventType> },
    /// AUTH_RESPONSE with its SASL token (may be null).
    AuthResponse { token: Option<Bytes> },
}

impl Request {
    /// The opcode this request travels with.
    pub fn opcode(&self) -> Opcode {
        match self {
            Request::Startup(_) => Opcode::Startup,
            Request::Options => Opcode::Options,
            Request::Query { .. } => Opcode::Query,
            Request::Prepare { .. } => Opcode::Prepare,
            Request::Execute { .. } => Opcode::Execute,
            Request::Batch(_) => Opcode::Batch,
            Request::Register { .. } => Opcode::Register,
            Request::AuthResponse { .. } => Opcode::AuthResponse,
        }
    }

    /// Decodes the message part of a body; the caller checks that nothing trails it.
    pub fn decode(opcode: Opcode, r: &mut Reader, limits: &Limits) -> Result<Self> {
        let mut budget = ValueBudget { used: 0, max: limits.max_values_per_request };
        Ok(match opcode {
            Opcode::Startup => Request::Startup(r.read_string_map("STARTUP options")?),
            Opcode::Options => Request::Options,
            Opcode::Query => {
                let query = r.read_long_string("query string")?;
                Request::Query { query, params: QueryParameters::decode(r, &mut budget)? }
            }
            Opcode::Prepare => Request::Prepare { query: r.read_long_string("query string")? },
            Opcode::Execute => {
                let id = r.read_short_bytes("prepared id")?;
                Request::Execute { id, params: QueryParameters::decode(r, &mut budget)? }
            }
            Opcode::Batch => Request::Batch(Batch::decode(r, limits, &mut budget)?),
            Opcode::Register => {
                let names = r.read_string_list("event types")?;
                let events = names.iter().map(|n| EventType::from_name(n)).collect::<Result<Vec<_>>>()?;
                Request::Register { events }
            }
            Opcode::AuthResponse => Request::AuthResponse { token: r.read_bytes("auth token")? },
            other => return Err(ProtocolError::UnexpectedOpcode { opcode: other, direction: "request" }),
        })
    }

    /// Writes the message part of a body.
    pub fn encode_body(&self, out: &mut BytesMut) -> Result<()> {
        match self {
            Request::Startup(options) => codec::put_string_map(out, options, "STARTUP options"),
            Request::Options => Ok(()),
            Request::Query { query, params } => {
                codec::put_long_string(out, query, "query string")?;
                params.encode(out)
            }
            Request::Prepare { query } => codec::put_long_string(out, query, "query string"),
            Request::Execute { id, params } => {
                codec::put_short_bytes(out, id, "prepared id")?;
                params.encode(out)
            }
            Request::Batch(batch) => batch.encode(out),
            Request::Register { events } => {
                let names: Vec<&str> = events.iter().map(|e| e.name()).collect();
                codec::put_string_list(out, &names, "event types")
            }
            Request::AuthResponse { token } => codec::put_bytes(out, token.as_deref(), "auth token"),
        }
    }
}

/// A request with its frame-level context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestEnvelope {
    /// Stream id; the response must carry the same one.
    pub stream: i16,
    /// The client asked for tracing (flag 0x02). Only QUERY, PREPARE and EXECUTE support it.
    pub tracing: bool,
    /// The custom payload (flag 0x04), ignored by a standard query handler.
    pub custom_payload: Option<BytesMap>,
    pub request: Request,
}

impl RequestEnvelope {
    /// A request on `stream` without tracing or custom payload.
    pub fn new(stream: i16, request: Request) -> Self {
        RequestEnvelope { stream, tracing: false, custom_payload: None, request }
    }

    /// Decodes a (decompressed) request body: `[<custom_payload>]<message>` with nothing after.
    /// In requests the tracing flag carries no tracing id.
    pub fn decode(header: &FrameHeader, body: Bytes, limits: &Limits) -> Result<Self> {
        let mut r = Reader::new(body);
        let custom_payload = if header.flags.contains(FrameFlags::CUSTOM_PAYLOAD) {
            Some(r.read_bytes_map("custom payload")?)
        } else {
            None
        };
        let request = Request::decode(header.opcode, &mut r, limits)?;
        r.expect_end(header.opcode)?;
        Ok(RequestEnvelope {
            stream: header.stream,
            tracing: header.flags.contains(FrameFlags::TRACING),
            custom_payload,
            request,
        })
    }

    /// Decompresses (if flagged) and decodes a raw request frame body.
    pub fn decode_frame(
        header: &FrameHeader,
        raw_body: Bytes,
        compression: Option<Compression>,
        limits: &Limits,
    ) -> Result<Self> {
        let body = decompress_body(header, raw_body, compression, limits.max_frame_bytes)?;
        Self::decode(header, body, limits)
    }

    /// Encodes a whole request frame. STARTUP and empty bodies are never compressed.
    pub fn encode(&self, compression: Option<Compression>) -> Result<Bytes> {
        let mut body = BytesMut::new();
        let mut flags = FrameFlags::empty();
        if self.tracing {
            flags.insert(FrameFlags::TRACING);
        }
        if let Some(payload) = &self.custom_payload {
            flags.insert(FrameFlags::CUSTOM_PAYLOAD);
            codec::put_bytes_map(&mut body, payload, "custom payload")?;
        }
        self.request.encode_body(&mut body)?;
        let compression = compression.filter(|_| !matches!(self.request, Request::Startup(_)));
        let body = compress_body(&mut flags, body.freeze(), compression)?;
        let header = FrameHeader {
            direction: Direction::Request,
            flags,
            stream: self.stream,
            opcode: self.request.opcode(),
            length: body.len(),
        };
        Frame { header, body }.encode()
    }
}

/// Decompresses a body if its header has the compression flag.
pub(crate) fn decompress_body(
    header: &FrameHeader,
    raw: Bytes,
    compression: Option<Compression>,
    max_frame_bytes: usize,
) -> Result<Bytes> {
    if !header.flags.contains(FrameFlags::COMPRESSION) {
        return Ok(raw);
    }
    match compression {
        Some(c) => c.decompress(&raw, max_frame_bytes),
        None => Err(ProtocolError::CompressionNotNegotiated),
    }
}

/// Compresses a non-empty body and sets the flag; returns it unchanged otherwise.
pub(crate) fn compress_body(
    flags: &mut FrameFlags,
    body: Bytes,
    compression: Option<Compression>,
) -> Result<Bytes> {
    match compression {
        Some(c) if !body.is_empty() => {
            flags.insert(FrameFlags::COMPRESSION);
            c.compress(&body)
        }
        _ => Ok(body),
    }
}
