//! The internode wire format: the connection preamble, the handshake reply and message frames.
//!
//! This module decides every byte that crosses a node-to-node socket, and nothing else: it is pure
//! (no sockets, no clocks), so every decoder here can be fuzzed and table-tested on its own.
//! `docs/internode.md` is the reference grammar, with a worked example.
//!
//! Decisions:
//! - All integers are big-endian, as in the rest of Cassandra's protocols.
//! - The preamble layout is frozen across protocol versions (only the frames that follow may change
//!   with the version), so a node can always name the peer it refuses, even when the peer speaks a
//!   version it does not know.
//! - The preamble and every frame carry a CRC32; a frame's length is checked against the receiver's
//!   `max_frame_bytes` before a single byte of the body is buffered for it.
//! - A decoder never panics and never allocates based on an unchecked length: on bytes it cannot
//!   accept it returns an error and the connection is closed by the caller.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{Buf, Bytes, BytesMut};

use super::{MessageId, MessageKind, Verb};
use crate::endpoint::Endpoint;

/// First four bytes of every internode connection: "SBYL".
pub const MAGIC: u32 = 0x5342_594C;
/// The protocol version this node speaks (and the only one it accepts).
pub const PROTOCOL_VERSION: u8 = 1;
/// Longest cluster name, in UTF-8 bytes, that the preamble can carry.
pub const MAX_CLUSTER_NAME_BYTES: usize = 255;
/// Largest possible preamble: magic, version, IPv6 endpoint, longest cluster name, CRC.
pub const MAX_PREAMBLE_BYTES: usize = 4 + 1 + 1 + 16 + 2 + 1 + MAX_CLUSTER_NAME_BYTES + 4;
/// Size of the handshake reply sent by the accepting side.
pub const HANDSHAKE_REPLY_BYTES: usize = 2;
/// Bytes before a frame's body: body length (u32) and body CRC32 (u32).
pub const FRAME_PREFIX_BYTES: usize = 8;
/// Bytes of a frame body before its payload: kind, verb, message id, expiry.
pub const FRAME_HEADER_BYTES: usize = 1 + 2 + 8 + 4;
/// Default bound on a frame's body length (header and payload): 64 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 64 * 1024 * 1024;

/// Why a preamble was not accepted by the decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PreambleError {
    /// The first four bytes are not [`MAGIC`]: the peer does not speak this protocol at all.
    #[error("bad magic {0:#010x}, expected {MAGIC:#010x}")]
    BadMagic(u32),
    /// The endpoint's address length is neither 4 (IPv4) nor 16 (IPv6).
    #[error("bad endpoint address length {0}")]
    BadAddressLength(u8),
    /// The cluster name is not UTF-8.
    #[error("cluster name is not UTF-8")]
    BadClusterName,
    /// The cluster name is longer than [`MAX_CLUSTER_NAME_BYTES`] (encoding side only).
    #[error("cluster name is {0} bytes, at most {MAX_CLUSTER_NAME_BYTES} allowed")]
    ClusterNameTooLong(usize),
    /// The preamble's CRC32 does not match its bytes.
    #[error("preamble CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc {
        /// CRC read from the wire.
        stored: u32,
        /// CRC computed over the received bytes.
        computed: u32,
    },
}

/// The first message on a connection, sent by the connecting side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preamble {
    /// Protocol version the connecting node speaks.
    pub version: u8,
    /// The connecting node's own listen endpoint (its identity, and where replies go).
    pub from: Endpoint,
    /// The connecting node's cluster name; connections across clusters are refused.
    pub cluster_name: String,
}

impl Preamble {
    /// Encodes the preamble, CRC included.
    pub fn encode(&self) -> Result<Vec<u8>, PreambleError> {
        let name = self.cluster_name.as_bytes();
        let name_len = u8::try_from(name.len()).map_err(|_| PreambleError::ClusterNameTooLong(name.len()))?;
        let mut out = Vec::with_capacity(MAX_PREAMBLE_BYTES);
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.push(self.version);
        encode_endpoint(self.from, &mut out);
        out.push(name_len);
        out.extend_from_slice(name);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        Ok(out)
    }

    /// Decodes a preamble from the start of `buf`.
    ///
    /// Returns `Ok(None)` while `buf` holds only a prefix of a preamble that is valid so far, and
    /// `Ok(Some((preamble, consumed_bytes)))` once it is complete. The magic is checked as soon as
    /// four bytes are there. At most [`MAX_PREAMBLE_BYTES`] are ever needed. The version is not
    /// judged here: the layout is the same for every version.
    pub fn decode(buf: &[u8]) -> Result<Option<(Preamble, usize)>, PreambleError> {
        let mut r = Reader::new(buf);
        let Some(magic) = r.u32() else { return Ok(None) };
        if magic != MAGIC {
            return Err(PreambleError::BadMagic(magic));
        }
        let Some(version) = r.u8() else { return Ok(None) };
        let Some(from) = decode_endpoint(&mut r)? else { return Ok(None) };
        let Some(name_len) = r.u8() else { return Ok(None) };
        let Some(name) = r.bytes(usize::from(name_len)) else { return Ok(None) };
        let covered = r.position();
        let Some(stored) = r.u32() else { return Ok(None) };
        let computed = crc32fast::hash(buf.get(..covered).unwrap_or_default());
        if stored != computed {
            return Err(PreambleError::BadCrc { stored, computed });
        }
        let cluster_name = std::str::from_utf8(name).map_err(|_| PreambleError::BadClusterName)?.to_owned();
        Ok(Some((Preamble { version, from, cluster_name }, r.position())))
    }
}

fn encode_endpoint(endpoint: Endpoint, out: &mut Vec<u8>) {
    match endpoint.0.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(16);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&endpoint.0.port().to_be_bytes());
}

fn decode_endpoint(r: &mut Reader<'_>) -> Result<Option<Endpoint>, PreambleError> {
    let Some(len) = r.u8() else { return Ok(None) };
    let ip = match len {
        4 => {
            let Some(b) = r.array::<4>() else { return Ok(None) };
            IpAddr::V4(Ipv4Addr::from(b))
        }
        16 => {
            let Some(b) = r.array::<16>() else { return Ok(None) };
            IpAddr::V6(Ipv6Addr::from(b))
        }
        other => return Err(PreambleError::BadAddressLength(other)),
    };
    let Some(port) = r.u16() else { return Ok(None) };
    Ok(Some(Endpoint(SocketAddr::new(ip, port))))
}

/// What the accepting side answers to a preamble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeOutcome {
    /// Frames may follow.
    Accepted,
    /// The connecting node's protocol version is not spoken here.
    RefusedVersion,
    /// The connecting node belongs to another cluster.
    RefusedClusterName,
    /// The accepting node has too many connections (or peers) already.
    RefusedOverloaded,
    /// The preamble was damaged (bad CRC or endpoint).
    RefusedMalformed,
}

impl HandshakeOutcome {
    /// The outcome's code on the wire.
    pub fn code(self) -> u8 {
        match self {
            HandshakeOutcome::Accepted => 0,
            HandshakeOutcome::RefusedVersion => 1,
            HandshakeOutcome::RefusedClusterName => 2,
            HandshakeOutcome::RefusedOverloaded => 3,
            HandshakeOutcome::RefusedMalformed => 4,
        }
    }

    /// The outcome for a wire code, if the code is known.
    pub fn from_code(code: u8) -> Option<HandshakeOutcome> {
        match code {
            0 => Some(HandshakeOutcome::Accepted),
            1 => Some(HandshakeOutcome::RefusedVersion),
            2 => Some(HandshakeOutcome::RefusedClusterName),
            3 => Some(HandshakeOutcome::RefusedOverloaded),
            4 => Some(HandshakeOutcome::RefusedMalformed),
            _ => None,
        }
    }
}

/// The accepting side's two-byte answer to a preamble: its own version and an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeReply {
    /// Protocol version the accepting node speaks.
    pub version: u8,
    /// Whether the connection is accepted, and if not why.
    pub outcome: HandshakeOutcome,
}

impl HandshakeReply {
    /// Encodes the reply.
    pub fn encode(self) -> [u8; HANDSHAKE_REPLY_BYTES] {
        [self.version, self.outcome.code()]
    }

    /// Decodes a reply; `None` for an unknown outcome code.
    pub fn decode(bytes: [u8; HANDSHAKE_REPLY_BYTES]) -> Option<HandshakeReply> {
        let [version, code] = bytes;
        HandshakeOutcome::from_code(code).map(|outcome| HandshakeReply { version, outcome })
    }
}

/// Why a frame was not accepted by the decoder; the connection is closed on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The body length exceeds the receiver's `max_frame_bytes`.
    #[error("frame body of {length} bytes exceeds max_frame_bytes {max}")]
    TooLarge {
        /// Length read from the wire.
        length: u32,
        /// The receiver's bound.
        max: u32,
    },
    /// The body length is shorter than the fixed frame header.
    #[error("frame body of {length} bytes is shorter than the {FRAME_HEADER_BYTES}-byte header")]
    TooShort {
        /// Length read from the wire.
        length: u32,
    },
    /// The body's CRC32 does not match.
    #[error("frame CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc {
        /// CRC read from the wire.
        stored: u32,
        /// CRC computed over the received body.
        computed: u32,
    },
    /// The kind byte is not a known [`MessageKind`] code.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
}

/// The fixed part of a frame body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Request, response, failure response or one-way.
    pub kind: MessageKind,
    /// The verb (for responses: the verb of the request answered).
    pub verb: Verb,
    /// Correlates a response with its request; 0 for one-way messages.
    pub id: MessageId,
    /// Milliseconds the message stays useful, counted from when it was written.
    pub expires_in_ms: u32,
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The fixed header.
    pub header: FrameHeader,
    /// The opaque payload (for failure responses: the UTF-8 reason).
    pub payload: Bytes,
}

impl FrameHeader {
    /// Encodes the frame prefix (length, CRC) and this header for a frame carrying `payload`.
    ///
    /// The payload itself follows these bytes on the wire. The caller checks the payload against
    /// the frame bound first (its own invariant: a frame body always fits in a u32).
    pub fn encode_with_prefix(&self, payload: &[u8]) -> [u8; FRAME_PREFIX_BYTES + FRAME_HEADER_BYTES] {
        let body_len = FRAME_HEADER_BYTES + payload.len();
        let body_len = u32::try_from(body_len);
        assert!(body_len.is_ok(), "frame body exceeds u32; callers bound payloads first");
        let body_len = body_len.unwrap_or(u32::MAX);
        let mut header = [0u8; FRAME_HEADER_BYTES];
        header[0] = self.kind.code();
        header[1..3].copy_from_slice(&self.verb.0.to_be_bytes());
        header[3..11].copy_from_slice(&self.id.0.to_be_bytes());
        header[11..15].copy_from_slice(&self.expires_in_ms.to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.update(payload);
        let crc = crc.finalize();
        let mut out = [0u8; FRAME_PREFIX_BYTES + FRAME_HEADER_BYTES];
        out[0..4].copy_from_slice(&body_len.to_be_bytes());
        out[4..8].copy_from_slice(&crc.to_be_bytes());
        out[8..].copy_from_slice(&header);
        out
    }

    /// Encodes a whole frame (prefix, header, payload) into one buffer.
    pub fn encode_frame(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(FRAME_PREFIX_BYTES + FRAME_HEADER_BYTES + payload.len());
        out.extend_from_slice(&self.encode_with_prefix(payload));
        out.extend_from_slice(payload);
        out
    }
}

/// Decodes one frame from the front of `buf`, consuming it.
///
/// Returns `Ok(None)` (consuming nothing) while the frame is incomplete; [`frame_bytes_needed`]
/// then says how many more bytes to wait for. The length is checked against `max_frame_bytes`
/// as soon as the prefix is there, so the caller never reserves more than that bound.
pub fn decode_frame(buf: &mut BytesMut, max_frame_bytes: u32) -> Result<Option<Frame>, FrameError> {
    let Some(length) = peek_u32(buf, 0) else { return Ok(None) };
    check_length(length, max_frame_bytes)?;
    let Some(stored) = peek_u32(buf, 4) else { return Ok(None) };
    let total = FRAME_PREFIX_BYTES + length as usize;
    let Some(body) = buf.get(FRAME_PREFIX_BYTES..total) else { return Ok(None) };
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(FrameError::BadCrc { stored, computed });
    }
    let kind_code = body.first().copied().unwrap_or_default();
    let kind = MessageKind::from_code(kind_code).ok_or(FrameError::UnknownKind(kind_code))?;
    buf.advance(FRAME_PREFIX_BYTES + 1);
    let verb = Verb(buf.get_u16());
    let id = MessageId(buf.get_u64());
    let expires_in_ms = buf.get_u32();
    let payload = buf.split_to(length as usize - FRAME_HEADER_BYTES).freeze();
    Ok(Some(Frame { header: FrameHeader { kind, verb, id, expires_in_ms }, payload }))
}

/// After [`decode_frame`] returned `Ok(None)`: how many more bytes the frame at the front of
/// `buf` needs (never more than the already checked length bound plus the prefix).
pub fn frame_bytes_needed(buf: &[u8]) -> usize {
    match peek_u32(buf, 0) {
        None => FRAME_PREFIX_BYTES - buf.len(),
        Some(length) => (FRAME_PREFIX_BYTES + length as usize).saturating_sub(buf.len()),
    }
}

fn check_length(length: u32, max_frame_bytes: u32) -> Result<(), FrameError> {
    if length > max_frame_bytes {
        return Err(FrameError::TooLarge { length, max: max_frame_bytes });
    }
    if (length as usize) < FRAME_HEADER_BYTES {
        return Err(FrameError::TooShort { length });
    }
    Ok(())
}

fn peek_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// A bounds-checked cursor over a byte slice: every read returns `None` past the end.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn position(&self) -> usize {
        self.pos
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(out)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    fn preamble() -> Preamble {
        Preamble {
            version: PROTOCOL_VERSION,
            from: Endpoint("127.0.0.2:7000".parse().unwrap()),
            cluster_name: "Test Cluster".to_owned(),
        }
    }

    #[test]
    fn preamble_round_trips_ipv4_and_ipv6() {
        for from in ["127.0.0.2:7000", "[::1]:7001"] {
            let p = Preamble { from: Endpoint(from.parse().unwrap()), ..preamble() };
            let bytes = p.encode().unwrap();
            assert_eq!(Preamble::decode(&bytes).unwrap(), Some((p, bytes.len())));
        }
    }

    #[test]
    fn preamble_matches_documented_example() {
        // The worked example in docs/internode.md.
        let bytes = preamble().encode().unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5342594c01047f0000021b580c5465737420436c7573746572e934a76e");
    }

    #[test]
    fn every_preamble_prefix_is_incomplete_not_an_error() {
        let bytes = preamble().encode().unwrap();
        for end in 0..bytes.len() {
            assert_eq!(Preamble::decode(&bytes[..end]), Ok(None), "prefix of {end} bytes");
        }
    }

    #[test]
    fn every_flipped_preamble_byte_is_detected() {
        let bytes = preamble().encode().unwrap();
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[at] ^= 1 << bit;
                match Preamble::decode(&damaged) {
                    Err(_) | Ok(None) => {}
                    Ok(Some((p, _))) => panic!("flip at {at} bit {bit} accepted as {p:?}"),
                }
            }
        }
    }

    #[test]
    fn wrong_magic_is_refused_after_four_bytes() {
        assert_eq!(Preamble::decode(b"GET "), Err(PreambleError::BadMagic(0x4745_5420)));
    }

    #[test]
    fn too_long_cluster_name_is_not_encoded() {
        let p = Preamble { cluster_name: "x".repeat(256), ..preamble() };
        assert_eq!(p.encode(), Err(PreambleError::ClusterNameTooLong(256)));
    }

    #[test]
    fn handshake_reply_round_trips() {
        for code in 0..=4 {
            let outcome = HandshakeOutcome::from_code(code).unwrap();
            let reply = HandshakeReply { version: PROTOCOL_VERSION, outcome };
            assert_eq!(HandshakeReply::decode(reply.encode()), Some(reply));
        }
        assert_eq!(HandshakeReply::decode([1, 200]), None);
    }

    fn header() -> FrameHeader {
        FrameHeader { kind: MessageKind::Request, verb: Verb(7), id: MessageId(42), expires_in_ms: 2000 }
    }

    #[test]
    fn frame_round_trips_and_leaves_following_bytes() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&header().encode_frame(b"hello"));
        buf.extend_from_slice(&[9, 9]);
        let frame = decode_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(frame, Frame { header: header(), payload: Bytes::from_static(b"hello") });
        assert_eq!(&buf[..], &[9, 9]);
    }

    #[test]
    fn frame_matches_documented_example() {
        let bytes = header().encode_frame(b"hello");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "00000014f4484a8c010007000000000000002a000007d068656c6c6f");
    }

    #[test]
    fn every_frame_prefix_is_incomplete_and_says_what_it_needs() {
        let bytes = header().encode_frame(b"hello");
        for end in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..end]);
            assert_eq!(decode_frame(&mut buf, 1024), Ok(None));
            assert_eq!(buf.len(), end, "nothing consumed");
            let needed = frame_bytes_needed(&buf);
            assert!(needed > 0 && end + needed <= bytes.len(), "end {end} needed {needed}");
        }
    }

    #[test]
    fn oversized_length_is_refused_before_the_body_arrives() {
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert_eq!(
            decode_frame(&mut buf, 1024),
            Err(FrameError::TooLarge { length: 0x7fff_ffff, max: 1024 })
        );
    }

    #[test]
    fn too_short_length_is_refused() {
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 0, 0, 0, 0][..]);
        assert_eq!(decode_frame(&mut buf, 1024), Err(FrameError::TooShort { length: 3 }));
    }

    #[test]
    fn every_flipped_body_bit_fails_the_crc() {
        let bytes = header().encode_frame(b"hello");
        for at in FRAME_PREFIX_BYTES..bytes.len() {
            for bit in 0..8 {
                let mut damaged = BytesMut::from(&bytes[..]);
                damaged[at] ^= 1 << bit;
                assert!(
                    matches!(decode_frame(&mut damaged, 1024), Err(FrameError::BadCrc { .. })),
                    "flip at {at} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn unknown_kind_with_good_crc_is_refused() {
        let mut bytes = header().encode_frame(b"");
        bytes[8] = 9;
        let crc = crc32fast::hash(&bytes[8..]);
        bytes[4..8].copy_from_slice(&crc.to_be_bytes());
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(decode_frame(&mut buf, 1024), Err(FrameError::UnknownKind(9)));
    }
}
