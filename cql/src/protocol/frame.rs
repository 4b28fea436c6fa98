//! The 9-byte frame header of protocol v4 (spec §2) and whole-frame encoding.
//!
//! ```text
//!  0         8        16        24        32         40
//!  +---------+---------+---------+---------+---------+
//!  | version |  flags  |      stream       | opcode  |
//!  +---------+---------+---------+---------+---------+
//!  |                length                 |
//!  +---------+---------+---------+---------+
//! ```
//!
//! `version` is `0x04` for requests and `0x84` for responses; `length` is the body length, which
//! [`FrameHeader::decode`] checks against the configured maximum before anyone allocates a body.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::error::{ProtocolError, Result};

/// The only protocol version this crate speaks.
pub const PROTOCOL_VERSION: u8 = 4;
/// The most significant bit of the version byte: set for responses.
pub const RESPONSE_BIT: u8 = 0x80;
/// Mask selecting the version number from the version byte.
pub const VERSION_MASK: u8 = 0x7F;
/// Size of the frame header in bytes.
pub const HEADER_LEN: usize = 9;
/// Stream id of server-initiated EVENT frames (spec §2.3, §4.2.6).
pub const EVENT_STREAM_ID: i16 = -1;
/// Default body limit, Cassandra's `native_transport_max_frame_size` (16 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// Largest body length the header can express (the length field is a signed `[int]`).
pub const MAX_ENCODABLE_BODY_BYTES: usize = i32::MAX as usize;

/// Direction of a frame, encoded in the most significant bit of the version byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Direction {
    /// Client to server (`0x04`).
    Request = 0x00,
    /// Server to client (`0x84`).
    Response = 0x80,
}

impl Direction {
    /// The version byte for v4 frames of this direction.
    pub const fn version_byte(self) -> u8 {
        PROTOCOL_VERSION | self as u8
    }

    const fn name(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}

/// The header flags byte (spec §2.2). Unknown bits other than USE_BETA are ignored.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FrameFlags(u8);

impl FrameFlags {
    /// 0x01: the body is compressed with the algorithm negotiated in STARTUP.
    pub const COMPRESSION: FrameFlags = FrameFlags(0x01);
    /// 0x02: tracing requested (request) / tracing id first in the body (response).
    pub const TRACING: FrameFlags = FrameFlags(0x02);
    /// 0x04: a `[bytes map]` custom payload precedes the message.
    pub const CUSTOM_PAYLOAD: FrameFlags = FrameFlags(0x04);
    /// 0x08: a `[string list]` of warnings precedes the message (responses only).
    pub const WARNING: FrameFlags = FrameFlags(0x08);
    /// 0x10: USE_BETA, defined by v5; a protocol error for v4.
    pub const USE_BETA: FrameFlags = FrameFlags(0x10);

    /// No flags.
    pub const fn empty() -> Self {
        FrameFlags(0)
    }

    /// Flags from the raw byte.
    pub const fn from_bits(bits: u8) -> Self {
        FrameFlags(bits)
    }

    /// The raw byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: FrameFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Set the bits of `other`.
    pub fn insert(&mut self, other: FrameFlags) {
        self.0 |= other.0;
    }

    /// Clear the bits of `other`.
    pub fn remove(&mut self, other: FrameFlags) {
        self.0 &= !other.0;
    }
}

impl fmt::Debug for FrameFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::COMPRESSION, "COMPRESSION"),
            (Self::TRACING, "TRACING"),
            (Self::CUSTOM_PAYLOAD, "CUSTOM_PAYLOAD"),
            (Self::WARNING, "WARNING"),
            (Self::USE_BETA, "USE_BETA"),
        ];
        write!(f, "FrameFlags({:#04x}", self.0)?;
        for (flag, name) in names {
            if self.contains(flag) {
                write!(f, " {name}")?;
            }
        }
        write!(f, ")")
    }
}

/// Message opcodes (spec §2.4). There is no 0x04 in v4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    Error = 0x00,
    Startup = 0x01,
    Ready = 0x02,
    Authenticate = 0x03,
    Options = 0x05,
    Supported = 0x06,
    Query = 0x07,
    Result = 0x08,
    Prepare = 0x09,
    Execute = 0x0A,
    Register = 0x0B,
    Event = 0x0C,
    Batch = 0x0D,
    AuthChallenge = 0x0E,
    AuthResponse = 0x0F,
    AuthSuccess = 0x10,
}

impl Opcode {
    /// The wire code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// Decode a wire code.
    pub fn from_code(code: u8) -> Result<Self> {
        Ok(match code {
            0x00 => Opcode::Error,
            0x01 => Opcode::Startup,
            0x02 => Opcode::Ready,
            0x03 => Opcode::Authenticate,
            0x05 => Opcode::Options,
            0x06 => Opcode::Supported,
            0x07 => Opcode::Query,
            0x08 => Opcode::Result,
            0x09 => Opcode::Prepare,
            0x0A => Opcode::Execute,
            0x0B => Opcode::Register,
            0x0C => Opcode::Event,
            0x0D => Opcode::Batch,
            0x0E => Opcode::AuthChallenge,
            0x0F => Opcode::AuthResponse,
            0x10 => Opcode::AuthSuccess,
            other => return Err(ProtocolError::UnknownOpcode { opcode: other }),
        })
    }

    /// The direction this opcode travels in.
    pub const fn direction(self) -> Direction {
        match self {
            Opcode::Startup
            | Opcode::Options
            | Opcode::Query
            | Opcode::Prepare
            | Opcode::Execute
            | Opcode::Register
            | Opcode::Batch
            | Opcode::AuthResponse => Direction::Request,
            Opcode::Error
            | Opcode::Ready
            | Opcode::Authenticate
            | Opcode::Supported
            | Opcode::Result
            | Opcode::Event
            | Opcode::AuthChallenge
            | Opcode::AuthSuccess => Direction::Response,
        }
    }

    /// The spec's upper-case name (`QUERY`, `AUTH_RESPONSE`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Opcode::Error => "ERROR",
            Opcode::Startup => "STARTUP",
            Opcode::Ready => "READY",
            Opcode::Authenticate => "AUTHENTICATE",
            Opcode::Options => "OPTIONS",
            Opcode::Supported => "SUPPORTED",
            Opcode::Query => "QUERY",
            Opcode::Result => "RESULT",
            Opcode::Prepare => "PREPARE",
            Opcode::Execute => "EXECUTE",
            Opcode::Register => "REGISTER",
            Opcode::Event => "EVENT",
            Opcode::Batch => "BATCH",
            Opcode::AuthChallenge => "AUTH_CHALLENGE",
            Opcode::AuthResponse => "AUTH_RESPONSE",
            Opcode::AuthSuccess => "AUTH_SUCCESS",
        }
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded, validated frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub direction: Direction,
    pub flags: FrameFlags,
    pub stream: i16,
    pub opcode: Opcode,
    /// Body length in bytes, already checked against the frame limit.
    pub length: usize,
}

impl FrameHeader {
    /// Checks a version byte: the version must be 4 and the direction bit must match `expected`.
    pub fn check_version(version_byte: u8, expected: Direction) -> Result<()> {
        let version = version_byte & VERSION_MASK;
        if version != PROTOCOL_VERSION {
            return Err(ProtocolError::UnsupportedVersion { version });
        }
        let got = if version_byte & RESPONSE_BIT != 0 { Direction::Response } else { Direction::Request };
        if got != expected {
            return Err(ProtocolError::WrongDirection {
                version_byte,
                got: got.name(),
                expected: expected.name(),
            });
        }
        Ok(())
    }

    /// Decodes the first [`HEADER_LEN`] bytes of `buf`.
    ///
    /// Checks, in order: version (and direction), flags (USE_BETA is an error), opcode (known and
    /// travelling in `expected` direction) and length (non-negative, at most `max_frame_bytes`).
    /// Nothing is allocated.
    pub fn decode(buf: &[u8], expected: Direction, max_frame_bytes: usize) -> Result<Self> {
        let header = buf.get(..HEADER_LEN).ok_or(ProtocolError::Truncated {
            what: "frame header",
            needed: HEADER_LEN,
            remaining: buf.len(),
        })?;
        let [version_byte, flags, s0, s1, opcode, l0, l1, l2, l3] = <[u8; HEADER_LEN]>::try_from(header)
            .map_err(|_| ProtocolError::Truncated {
                what: "frame header",
                needed: HEADER_LEN,
                remaining: header.len(),
            })?;
        Self::check_version(version_byte, expected)?;
        let flags = FrameFlags::from_bits(flags);
        if flags.contains(FrameFlags::USE_BETA) {
            return Err(ProtocolError::BetaFlag);
        }
        let opcode = Opcode::from_code(opcode)?;
        if opcode.direction() != expected {
            return Err(ProtocolError::UnexpectedOpcode { opcode, direction: expected.name() });
        }
        let length = i32::from_be_bytes([l0, l1, l2, l3]);
        let length = usize::try_from(length).map_err(|_| ProtocolError::NegativeFrameLength { length })?;
        if length > max_frame_bytes {
            return Err(ProtocolError::FrameTooLarge { length: length as u64, max: max_frame_bytes });
        }
        Ok(FrameHeader { direction: expected, flags, stream: i16::from_be_bytes([s0, s1]), opcode, length })
    }

    /// The stream id of a possibly invalid header, for addressing an error reply.
    ///
    /// Protocol versions 1 and 2 used a one-byte stream id at offset 2; all later versions (and
    /// the DSE versions 0x41/0x42) use two bytes at offset 2. Returns `None` until enough bytes
    /// have arrived.
    pub fn peek_stream(buf: &[u8]) -> Option<i16> {
        let version = buf.first()? & VERSION_MASK;
        if version == 1 || version == 2 {
            let stream = *buf.get(2)?;
            Some(i16::from(i8::from_be_bytes([stream])))
        } else {
            let s0 = *buf.get(2)?;
            let s1 = *buf.get(3)?;
            Some(i16::from_be_bytes([s0, s1]))
        }
    }

    /// Appends the 9 header bytes.
    pub fn encode(&self, out: &mut BytesMut) -> Result<()> {
        let length = i32::try_from(self.length).map_err(|_| ProtocolError::EncodeTooLong {
            what: "frame body",
            length: self.length,
            max: MAX_ENCODABLE_BODY_BYTES,
        })?;
        out.reserve(HEADER_LEN);
        out.put_u8(self.direction.version_byte());
        out.put_u8(self.flags.bits());
        out.put_i16(self.stream);
        out.put_u8(self.opcode.code());
        out.put_i32(length);
        Ok(())
    }
}

/// A whole frame: header plus (possibly still compressed) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: FrameHeader,
    pub body: Bytes,
}

impl Frame {
    /// Header and body as one contiguous buffer ready for the socket.
    pub fn encode(&self) -> Result<Bytes> {
        let mut header = self.header;
        header.length = self.body.len();
        let mut out = BytesMut::with_capacity(HEADER_LEN.saturating_add(self.body.len()));
        header.encode(&mut out)?;
        out.extend_from_slice(&self.body);
        Ok(out.freeze())
    }

    /// Decodes one complete frame from the front of `buf`: `Ok(None)` if more bytes are needed.
    /// On success the frame's bytes are removed from `buf`.
    pub fn decode(buf: &mut BytesMut, expected: Direction, max_frame_bytes: usize) -> Result<Option<Frame>> {
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let header = FrameHeader::decode(buf, expected, max_frame_bytes)?;
        let total = HEADER_LEN.saturating_add(header.length);
        if buf.len() < total {
            return Ok(None);
        }
        let mut frame = buf.split_to(total);
        let body = frame.split_off(HEADER_LEN).freeze();
        Ok(Some(Frame { header, body }))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn header_bytes(version: u8, flags: u8, stream: i16, opcode: u8, length: i32) -> Vec<u8> {
        let mut v = vec![version, flags];
        v.extend_from_slice(&stream.to_be_bytes());
        v.push(opcode);
        v.extend_from_slice(&length.to_be_bytes());
        v
    }

    #[test]
    fn decodes_request_header_fields() {
        let bytes = header_bytes(0x04, 0x05, 300, 0x07, 42);
        let h = FrameHeader::decode(&bytes, Direction::Request, 100).unwrap();
        assert_eq!(h.direction, Direction::Request);
        assert!(h.flags.contains(FrameFlags::COMPRESSION));
        assert!(h.flags.contains(FrameFlags::CUSTOM_PAYLOAD));
        assert!(!h.flags.contains(FrameFlags::TRACING));
        assert_eq!(h.stream, 300);
        assert_eq!(h.opcode, Opcode::Query);
        assert_eq!(h.length, 42);
        let mut out = BytesMut::new();
        h.encode(&mut out).unwrap();
        assert_eq!(&out[..], &bytes[..]);
    }

    #[test]
    fn opcodes_round_trip_and_0x04_is_unknown() {
        for code in 0u8..=0xFF {
            match Opcode::from_code(code) {
                Ok(op) => assert_eq!(op.code(), code),
                Err(e) => assert_eq!(e, ProtocolError::UnknownOpcode { opcode: code }),
            }
        }
        assert!(Opcode::from_code(0x04).is_err());
        assert!(Opcode::from_code(0x11).is_err());
        assert_eq!(Opcode::AuthSuccess.code(), 0x10);
    }

    #[test]
    fn rejects_unsupported_versions_with_driver_text() {
        for version in [0x42u8, 0x41, 5, 3, 65, 1, 2] {
            let bytes = header_bytes(version, 0, 7, 0x05, 0);
            let err = FrameHeader::decode(&bytes, Direction::Request, 100).unwrap_err();
            let expected = version & 0x7F;
            assert_eq!(err, ProtocolError::UnsupportedVersion { version: expected });
            assert_eq!(
                err.to_string(),
                format!(
                    "Invalid or unsupported protocol version ({expected}); supported versions are (4/v4)"
                )
            );
        }
    }

    #[test]
    fn rejects_response_direction_from_client() {
        let bytes = header_bytes(0x84, 0, 1, 0x05, 0);
        let err = FrameHeader::decode(&bytes, Direction::Request, 100).unwrap_err();
        assert!(matches!(err, ProtocolError::WrongDirection { version_byte: 0x84, .. }), "{err}");
        // and a request opcode in a response frame
        let bytes = header_bytes(0x84, 0, 1, 0x07, 0);
        let err = FrameHeader::decode(&bytes, Direction::Response, 100).unwrap_err();
        assert!(matches!(err, ProtocolError::UnexpectedOpcode { opcode: Opcode::Query, .. }), "{err}");
    }

    #[test]
    fn rejects_negative_and_oversize_lengths_before_allocating() {
        let bytes = header_bytes(0x04, 0, 1, 0x07, -5);
        assert_eq!(
            FrameHeader::decode(&bytes, Direction::Request, 100).unwrap_err(),
            ProtocolError::NegativeFrameLength { length: -5 }
        );
        let bytes = header_bytes(0x04, 0, 1, 0x07, 20_000_000);
        let err = FrameHeader::decode(&bytes, Direction::Request, DEFAULT_MAX_FRAME_BYTES).unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame body length 20000000 exceeds native_transport_max_frame_size 16777216"
        );
        // exactly the limit is fine
        let bytes = header_bytes(0x04, 0, 1, 0x07, 100);
        assert_eq!(FrameHeader::decode(&bytes, Direction::Request, 100).unwrap().length, 100);
    }

    #[test]
    fn rejects_beta_flag_and_ignores_unknown_flags() {
        let bytes = header_bytes(0x04, 0x10, 1, 0x05, 0);
        assert_eq!(
            FrameHeader::decode(&bytes, Direction::Request, 100).unwrap_err(),
            ProtocolError::BetaFlag
        );
        let bytes = header_bytes(0x04, 0xE0, 1, 0x05, 0);
        assert!(FrameHeader::decode(&bytes, Direction::Request, 100).is_ok());
    }

    #[test]
    fn peek_stream_handles_old_and_new_layouts() {
        assert_eq!(FrameHeader::peek_stream(&[0x42, 0, 0x01, 0x02]), Some(0x0102));
        assert_eq!(FrameHeader::peek_stream(&[0x42, 0, 0x01]), None);
        assert_eq!(FrameHeader::peek_stream(&[0x02, 0, 0xFF]), Some(-1));
        assert_eq!(FrameHeader::peek_stream(&[0x01, 0, 0x05]), Some(5));
        assert_eq!(FrameHeader::peek_stream(&[]), None);
    }

    #[test]
    fn frame_decode_waits_for_complete_frames() {
        let mut bytes = header_bytes(0x04, 0, 9, 0x05, 3);
        bytes.extend_from_slice(b"abcX");
        for cut in 0..12 {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(Frame::decode(&mut buf, Direction::Request, 100).unwrap(), None);
        }
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = Frame::decode(&mut buf, Direction::Request, 100).unwrap().unwrap();
        assert_eq!(&frame.body[..], b"abc");
        assert_eq!(&buf[..], b"X");
        assert_eq!(&frame.encode().unwrap()[..], &bytes[..12]);
    }
}
