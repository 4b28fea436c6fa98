//! Commit log segment files: header, record framing, and the reader used by replay.
//! Grammar and worked example: `docs/format/commitlog.md`.
//!
//! ```text
//! segment  := header record* zero-fill
//! header   := magic "SBCL" | version u8 (3) | reserved [0;3] | segment_id u64le
//!             | timestamp_base i64le | crc32 u32le (of the 24 bytes before)
//! record   := len varint (>= 1) | len_check u16le (low half of crc32(len bytes)) | body (len bytes)
//!             | crc32(body) u32le
//! body     := 0x04 define   | ordinal varint | table_id (16)          names a table for this segment
//!           | 0x02 update   | ordinal varint | base_delta varint | update      one partition update
//!           | 0x03 update   | ordinal varint | base_delta varint | compressed
//!           | 0x00 plain    | payload (a batch or a mutation that names its tables)
//!           | 0x01 plain    | compressed
//! compressed := uncompressed_len varint | lz4 block
//! ```
//! A table's records refer to it by a small ordinal that a `define` record earlier in the same
//! segment maps to its 16-byte id, and an update's timestamps are stored relative to the
//! segment's `timestamp_base` (a recent write timestamp when the segment was created), so a small
//! write carries about 8 bytes of framing instead of 29.
//!
//! Segments of versions 1 and 2 (20-byte header, no base; `len u32le | crc32(len) u32le |
//! payload | crc32(payload) u32le` records whose payloads name their tables, version 2 payloads
//! possibly `0x03 | uncompressed_len varint | lz4 block`) are still replayed.

use std::path::{Path, PathBuf};

use crate::codec::{crc32, put_varint, Reader};
use crate::ids::TableId;

/// Magic bytes at the start of every segment.
pub const MAGIC: &[u8; 4] = b"SBCL";
/// Segment format version written today.
pub const VERSION: u8 = 3;
/// Version 1: 20-byte header, 12 bytes of framing per record, payloads name their tables.
pub const VERSION_1: u8 = 1;
/// Version 2: version 1 whose payloads may be lz4-compressed.
pub const VERSION_2: u8 = 2;
/// First byte of a compressed payload in a version 2 segment.
pub const LEGACY_COMPRESSED_PAYLOAD: u8 = 0x03;
/// Bytes of a version 3 segment header.
pub const HEADER_BYTES: usize = 28;
/// Bytes of a version 1 or 2 segment header.
pub const LEGACY_HEADER_BYTES: usize = 20;
/// Framing bytes around each version 1 or 2 record payload (also the hints files' framing).
pub const FRAME_OVERHEAD: usize = 12;

/// Record kinds of version 3 (the first byte of a record's body).
pub mod kind {
    /// Bit: the content is `uncompressed_len varint | lz4 block`.
    pub const COMPRESSED: u8 = 0x01;
    /// A payload that names its tables: a batch, or a mutation.
    pub const PLAIN: u8 = 0x00;
    /// One partition update of the table an ordinal names.
    pub const UPDATE: u8 = 0x02;
    /// Maps an ordinal to a table id for the rest of the segment.
    pub const DEFINE: u8 = 0x04;
}

/// Numeric id of a segment; ids increase with time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u64);

/// A position in the commit log: a segment and a byte offset inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Segment.
    pub segment: SegmentId,
    /// Byte offset.
    pub offset: u32,
}

impl Position {
    /// Before every record ever written.
    pub const ZERO: Position = Position { segment: SegmentId(0), offset: 0 };
}

/// File name of a segment: `CommitLog-<version>-<id>.log`, like Cassandra's.
#[must_use]
pub fn file_name(version: u8, id: SegmentId) -> String {
    format!("CommitLog-{version}-{}.log", id.0)
}

/// Parses a segment file name, returning its id.
#[must_use]
pub fn parse_file_name(name: &str) -> Option<SegmentId> {
    let rest = name.strip_prefix("CommitLog-")?.strip_suffix(".log")?;
    let (version, id) = rest.split_once('-')?;
    version.parse::<u8>().ok()?;
    id.parse::<u64>().ok().map(SegmentId)
}

/// Bytes of the header of a segment of `version`.
#[must_use]
pub fn header_bytes(version: u8) -> usize {
    if version >= VERSION {
        HEADER_BYTES
    } else {
        LEGACY_HEADER_BYTES
    }
}

/// Encodes a version 3 segment header.
#[must_use]
pub fn encode_header(id: SegmentId, timestamp_base: i64) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..4].copy_from_slice(MAGIC);
    h[4] = VERSION;
    h[8..16].copy_from_slice(&id.0.to_le_bytes());
    h[16..24].copy_from_slice(&timestamp_base.to_le_bytes());
    let crc = crc32(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Encodes a version 1 or 2 segment header (what older binaries wrote; for tests and fixtures).
#[must_use]
pub fn encode_legacy_header(version: u8, id: SegmentId) -> [u8; LEGACY_HEADER_BYTES] {
    let mut h = [0u8; LEGACY_HEADER_BYTES];
    h[..4].copy_from_slice(MAGIC);
    h[4] = version;
    h[8..16].copy_from_slice(&id.0.to_le_bytes());
    let crc = crc32(&h[..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

/// `content` as `uncompressed_len varint | lz4 block`, if that is smaller.
#[must_use]
pub fn deflate(content: &[u8]) -> Option<Vec<u8>> {
    let compressed = lz4_flex::block::compress(content);
    let mut out = Vec::with_capacity(compressed.len() + 5);
    put_varint(&mut out, content.len() as u64);
    out.extend_from_slice(&compressed);
    (out.len() < content.len()).then_some(out)
}

/// Inflates `uncompressed_len varint | lz4 block`, bounding the claimed length by `max` before
/// allocating and requiring the block to inflate to exactly that length.
pub fn inflate(compressed: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let mut r = Reader::new(compressed);
    let len = r.varint().map_err(|e| format!("compressed record: {e}"))?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| (1..=max).contains(l))
        .ok_or_else(|| format!("compressed record claims {len} bytes, outside 1..={max}"))?;
    let mut out = vec![0u8; len];
    match lz4_flex::block::decompress_into(&compressed[r.position()..], &mut out) {
        Ok(n) if n == len => Ok(out),
        Ok(n) => Err(format!("compressed record inflates to {n} bytes, not the {len} it claims")),
        Err(e) => Err(format!("compressed record does not inflate: {e}")),
    }
}

/// The payload a record of a version 1 or 2 segment carries: compressed payloads of version 2
/// segments are inflated (at most `max_payload` bytes); anything else is returned as it is.
///
/// A version 2 payload starting with 0x03 is ambiguous: development builds wrote mutations of
/// version 3 there uncompressed when lz4 could not shrink them. The caller tries the payload as
/// it is when inflating fails (see `replay`).
pub fn inflate_legacy(
    version: u8,
    payload: &[u8],
    max_payload: usize,
) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    if version != VERSION_2 || payload.first() != Some(&LEGACY_COMPRESSED_PAYLOAD) {
        return Ok(std::borrow::Cow::Borrowed(payload));
    }
    inflate(&payload[1..], max_payload).map(std::borrow::Cow::Owned)
}

/// Appends one version 1/2 framed record (`len u32le | crc32(len) | payload | crc32(payload)`);
/// hints files use this framing too.
pub fn encode_record(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let len_bytes = len.to_le_bytes();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc32(&len_bytes).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32(payload).to_le_bytes());
}

/// The low half of the CRC32 of a version 3 record's length bytes: rejects a damaged or stray
/// length before anything is read or checksummed with it.
fn len_check(len_bytes: &[u8]) -> u16 {
    (crc32(len_bytes) & 0xffff) as u16
}

/// Appends one version 3 record whose body is the concatenation of `parts`.
pub fn encode_frame(parts: &[&[u8]], out: &mut Vec<u8>) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let start = out.len();
    put_varint(out, len as u64);
    let check = len_check(&out[start..]);
    out.extend_from_slice(&check.to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    for p in parts {
        hasher.update(p);
        out.extend_from_slice(p);
    }
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
}

/// The bytes a version 3 record with a body of `body_len` bytes takes.
#[must_use]
pub fn frame_len(body_len: usize) -> usize {
    crate::codec::varint_len(body_len as u64) + 2 + body_len + 4
}

/// Appends a `define` record body: `ordinal` names `table` for the rest of the segment.
pub fn encode_define(ordinal: u32, table: TableId, out: &mut Vec<u8>) {
    out.push(kind::DEFINE);
    put_varint(out, u64::from(ordinal));
    out.extend_from_slice(table.as_bytes());
}

/// Appends the head of an `update` record body (the content follows it).
pub fn encode_update_head(ordinal: u32, base_delta: i64, compressed: bool, out: &mut Vec<u8>) {
    out.push(if compressed { kind::UPDATE | kind::COMPRESSED } else { kind::UPDATE });
    put_varint(out, u64::from(ordinal));
    put_varint(out, ((base_delta << 1) ^ (base_delta >> 63)) as u64);
}

/// A version 3 record body, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// `ordinal` names `table` for the rest of the segment.
    Define {
        /// The ordinal.
        ordinal: u32,
        /// The table.
        table: TableId,
    },
    /// A partition update of the table `ordinal` names; its timestamps are relative to the
    /// segment base plus `base_delta`.
    Update {
        /// The table's ordinal in this segment.
        ordinal: u32,
        /// Distance of the update's base from the segment's timestamp base.
        base_delta: i64,
        /// The update (inflated if it was stored compressed).
        content: std::borrow::Cow<'a, [u8]>,
    },
    /// A payload naming its own tables (a batch or a mutation), inflated.
    Plain(std::borrow::Cow<'a, [u8]>),
}

/// Parses a version 3 record body; `max` bounds inflated sizes.
pub fn parse_body(body: &[u8], max: usize) -> Result<Body<'_>, String> {
    let mut r = Reader::new(body);
    let k = r.u8().map_err(|e| e.to_string())?;
    let content = |r: &Reader<'_>| -> Result<std::borrow::Cow<'_, [u8]>, String> {
        let rest = &body[r.position()..];
        if k & kind::COMPRESSED != 0 {
            inflate(rest, max).map(std::borrow::Cow::Owned)
        } else if rest.is_empty() {
            Err("record has no content".into())
        } else {
            Ok(std::borrow::Cow::Borrowed(rest))
        }
    };
    match k {
        kind::DEFINE => {
            let ordinal = r.varint_u32().map_err(|e| e.to_string())?;
            let id = r.bytes(16).map_err(|e| e.to_string())?;
            if !r.is_empty() {
                return Err("trailing bytes after a table definition".into());
            }
            let mut b = [0u8; 16];
            b.copy_from_slice(id);
            Ok(Body::Define { ordinal, table: TableId(uuid::Uuid::from_bytes(b)) })
        }
        k if k & !kind::COMPRESSED == kind::UPDATE => {
            let ordinal = r.varint_u32().map_err(|e| e.to_string())?;
            let z = r.varint().map_err(|e| e.to_string())?;
            let base_delta = ((z >> 1) as i64) ^ -((z & 1) as i64);
            Ok(Body::Update { ordinal, base_delta, content: content(&r)? })
        }
        k if k & !kind::COMPRESSED == kind::PLAIN => Ok(Body::Plain(content(&r)?)),
        other => Err(format!("unknown record kind 0x{other:02x}")),
    }
}

/// What the reader found at one offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A valid record; the next one starts at `next`.
    Record {
        /// The payload.
        payload: &'a [u8],
        /// Offset of the following frame.
        next: usize,
    },
    /// Zero-fill: the end of written data.
    End,
    /// A damaged or partial frame.
    Bad {
        /// Why.
        reason: String,
    },
}

/// Reads the frame at `offset` of the bytes of a segment of `version`.
#[must_use]
pub fn read_frame(data: &[u8], offset: usize, max_payload: usize, version: u8) -> Frame<'_> {
    if version >= VERSION {
        read_frame_v3(data, offset, max_payload)
    } else {
        read_legacy_frame(data, offset, max_payload)
    }
}

fn read_frame_v3(data: &[u8], offset: usize, max_payload: usize) -> Frame<'_> {
    let Some(rest) = data.get(offset..).filter(|r| !r.is_empty()) else {
        return Frame::End;
    };
    if rest[0] == 0 {
        // A record's length is at least 1, so a zero byte is where writing stopped.
        return Frame::End;
    }
    let mut r = Reader::new(rest);
    let len = match r.varint() {
        Ok(len) => len,
        Err(_) => return Frame::Bad { reason: "record length is not a valid varint".into() },
    };
    let head = r.position();
    if rest.len() < head + 2 {
        return Frame::Bad { reason: "record header runs past the end of the file".into() };
    }
    if u16::from_le_bytes([rest[head], rest[head + 1]]) != len_check(&rest[..head]) {
        return Frame::Bad { reason: "record length fails its check".into() };
    }
    let len = match usize::try_from(len) {
        Ok(len) if (1..=max_payload).contains(&len) && crate::codec::varint_len(len as u64) == head => len,
        _ => return Frame::Bad { reason: format!("record length {len} outside 1..={max_payload}") },
    };
    let body_start = head + 2;
    if rest.len() < body_start + len + 4 {
        return Frame::Bad { reason: format!("record of {len} bytes runs past the end of the file") };
    }
    let payload = &rest[body_start..body_start + len];
    let c = &rest[body_start + len..body_start + len + 4];
    if crc32(payload) != u32::from_le_bytes([c[0], c[1], c[2], c[3]]) {
        return Frame::Bad { reason: "record body fails its checksum".into() };
    }
    Frame::Record { payload, next: offset + body_start + len + 4 }
}

fn read_legacy_frame(data: &[u8], offset: usize, max_payload: usize) -> Frame<'_> {
    if offset >= data.len() {
        return Frame::End;
    }
    let rest = &data[offset..];
    if rest.len() < 8 {
        return if rest.iter().all(|&b| b == 0) {
            Frame::End
        } else {
            Frame::Bad { reason: format!("{} stray bytes where a record header should be", rest.len()) }
        };
    }
    let len_bytes = [rest[0], rest[1], rest[2], rest[3]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    let len_crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len == 0 && len_crc == 0 {
        return Frame::End;
    }
    if crc32(&len_bytes) != len_crc {
        return Frame::Bad { reason: "record length fails its checksum".into() };
    }
    if len == 0 || len > max_payload {
        return Frame::Bad { reason: format!("record length {len} outside 1..={max_payload}") };
    }
    if rest.len() < 8 + len + 4 {
        return Frame::Bad { reason: format!("record of {len} bytes runs past the end of the file") };
    }
    let payload = &rest[8..8 + len];
    let crc = u32::from_le_bytes([rest[8 + len], rest[9 + len], rest[10 + len], rest[11 + len]]);
    if crc32(payload) != crc {
        return Frame::Bad { reason: "record payload fails its checksum".into() };
    }
    Frame::Record { payload, next: offset + 8 + len + 4 }
}

/// The first offset after `from` where a valid record starts, if any. Used to tell a torn
/// tail (nothing valid follows) from damage in the middle of the log (valid records follow).
/// Zero bytes are skipped without parsing, and a candidate length must pass its check before its
/// body is checksummed, so scanning damaged bytes costs little more than reading them.
#[must_use]
pub fn find_next_valid_record(data: &[u8], from: usize, max_payload: usize, version: u8) -> Option<usize> {
    let mut p = from;
    while p < data.len() {
        if data[p] == 0 && (version >= VERSION || data[p..].starts_with(&[0u8; 8])) {
            p += 1;
            continue;
        }
        if let Frame::Record { .. } = read_frame(data, p, max_payload, version) {
            return Some(p);
        }
        p += 1;
    }
    None
}

/// Checks a segment header and returns the segment's version and timestamp base (0 before
/// version 3); `Err` names what is wrong.
pub fn check_header(data: &[u8], expected: SegmentId) -> Result<(u8, i64), String> {
    if data.len() < 5 {
        return Err(format!("file is {} bytes, shorter than the segment header", data.len()));
    }
    if &data[..4] != MAGIC {
        return Err("bad magic, not a Sibyl commit log segment".into());
    }
    let version = data[4];
    if !(VERSION_1..=VERSION).contains(&version) {
        return Err(format!("unsupported segment version {version} (this binary reads 1 to {VERSION})"));
    }
    let len = header_bytes(version);
    if data.len() < len {
        return Err(format!("file is {} bytes, shorter than the segment header", data.len()));
    }
    let stored = u32::from_le_bytes([data[len - 4], data[len - 3], data[len - 2], data[len - 1]]);
    if crc32(&data[..len - 4]) != stored {
        return Err("segment header fails its checksum".into());
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&data[8..16]);
    let id = u64::from_le_bytes(id);
    if id != expected.0 {
        return Err(format!("header names segment {id} but the file name says {}", expected.0));
    }
    let base = if version >= VERSION {
        let mut b = [0u8; 8];
        b.copy_from_slice(&data[16..24]);
        i64::from_le_bytes(b)
    } else {
        0
    };
    Ok((version, base))
}

/// Lists the segment files in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> std::io::Result<Vec<(SegmentId, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_file_name) {
            out.push((id, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        assert_eq!(parse_file_name(&file_name(VERSION, SegmentId(42))), Some(SegmentId(42)));
        assert_eq!(parse_file_name(&file_name(VERSION_2, SegmentId(42))), Some(SegmentId(42)));
        assert_eq!(parse_file_name("CommitLog-1-x.log"), None);
        assert_eq!(parse_file_name("other.log"), None);
    }

    #[test]
    fn frames_read_back_and_zero_fill_ends_the_segment() {
        let mut data = encode_header(SegmentId(7), -5).to_vec();
        encode_frame(&[b"hel", b"lo"], &mut data);
        encode_frame(&[&[b'w'; 300]], &mut data);
        assert_eq!(data.len(), HEADER_BYTES + frame_len(5) + frame_len(300));
        data.extend_from_slice(&[0u8; 64]);
        assert_eq!(check_header(&data, SegmentId(7)), Ok((VERSION, -5)));
        let Frame::Record { payload, next } = read_frame(&data, HEADER_BYTES, 1 << 20, VERSION) else {
            panic!()
        };
        assert_eq!(payload, b"hello");
        let Frame::Record { payload, next } = read_frame(&data, next, 1 << 20, VERSION) else { panic!() };
        assert_eq!(payload, &[b'w'; 300][..]);
        assert_eq!(read_frame(&data, next, 1 << 20, VERSION), Frame::End);
        assert!(check_header(&data, SegmentId(8)).is_err());
        // A length over the bound is refused before it is used.
        assert!(matches!(read_frame(&data, HEADER_BYTES + frame_len(5), 299, VERSION), Frame::Bad { .. }));
    }

    #[test]
    fn legacy_frames_still_read() {
        let mut data = encode_legacy_header(VERSION_1, SegmentId(3)).to_vec();
        encode_record(b"hello", &mut data);
        data.extend_from_slice(&[0u8; 16]);
        assert_eq!(check_header(&data, SegmentId(3)), Ok((VERSION_1, 0)));
        let Frame::Record { payload, next } = read_frame(&data, LEGACY_HEADER_BYTES, 1 << 20, VERSION_1)
        else {
            panic!()
        };
        assert_eq!(payload, b"hello");
        assert_eq!(read_frame(&data, next, 1 << 20, VERSION_1), Frame::End);
    }

    #[test]
    fn damaged_frame_is_bad_and_the_scan_finds_the_next_good_one() {
        for version in [VERSION_1, VERSION] {
            let mut data = if version == VERSION {
                encode_header(SegmentId(1), 0).to_vec()
            } else {
                encode_legacy_header(version, SegmentId(1)).to_vec()
            };
            let first = data.len();
            let frame = |p: &[u8], out: &mut Vec<u8>| {
                if version == VERSION {
                    encode_frame(&[p], out)
                } else {
                    encode_record(p, out)
                }
            };
            frame(b"first", &mut data);
            let second = data.len();
            frame(b"second", &mut data);
            data[first + 5] ^= 0xff;
            assert!(matches!(read_frame(&data, first, 1 << 20, version), Frame::Bad { .. }));
            assert_eq!(find_next_valid_record(&data, first + 1, 1 << 20, version), Some(second));
            assert_eq!(find_next_valid_record(&data, second + 1, 1 << 20, version), None);
        }
    }

    #[test]
    fn every_damaged_length_is_caught_by_its_check() {
        let mut data = encode_header(SegmentId(1), 0).to_vec();
        encode_frame(&[&[7u8; 200]], &mut data);
        for mask in 1..=255u8 {
            for at in [HEADER_BYTES, HEADER_BYTES + 1] {
                let mut bad = data.clone();
                bad[at] ^= mask;
                assert!(
                    !matches!(read_frame(&bad, HEADER_BYTES, 1 << 20, VERSION), Frame::Record { .. }),
                    "mask {mask:#x} at {at}"
                );
            }
        }
    }

    #[test]
    fn bodies_parse_by_kind() {
        let table = TableId(uuid::Uuid::from_u128(0xabc));
        let mut def = Vec::new();
        encode_define(7, table, &mut def);
        assert_eq!(parse_body(&def, 1 << 20), Ok(Body::Define { ordinal: 7, table }));
        let mut update = Vec::new();
        encode_update_head(7, -1234, false, &mut update);
        update.extend_from_slice(b"content");
        assert_eq!(
            parse_body(&update, 1 << 20),
            Ok(Body::Update {
                ordinal: 7,
                base_delta: -1234,
                content: std::borrow::Cow::Borrowed(b"content")
            })
        );
        let content: Vec<u8> = b"a mutation ".iter().copied().cycle().take(300).collect();
        let small = deflate(&content).unwrap();
        let mut packed = Vec::new();
        encode_update_head(1, 5, true, &mut packed);
        packed.extend_from_slice(&small);
        assert_eq!(
            parse_body(&packed, 1 << 20),
            Ok(Body::Update { ordinal: 1, base_delta: 5, content: std::borrow::Cow::Owned(content.clone()) })
        );
        let mut plain = vec![kind::PLAIN | kind::COMPRESSED];
        plain.extend_from_slice(&small);
        assert_eq!(parse_body(&plain, 1 << 20), Ok(Body::Plain(std::borrow::Cow::Owned(content))));
        assert!(parse_body(&[0x08, 1], 1 << 20).unwrap_err().contains("unknown record kind"));
        assert!(parse_body(&[kind::PLAIN], 1 << 20).is_err());
        assert!(parse_body(&def[..10], 1 << 20).is_err());
        def.push(0);
        assert!(parse_body(&def, 1 << 20).is_err());
    }

    #[test]
    fn compressed_content_is_bounded_and_must_inflate_exactly() {
        let content: Vec<u8> = b"a mutation ".iter().copied().cycle().take(300).collect();
        let small = deflate(&content).unwrap();
        assert_eq!(inflate(&small, 1 << 20).unwrap(), content);
        assert_eq!(deflate(&[1, 7, 3, 9, 4]), None);
        let err = inflate(&small, 100).unwrap_err();
        assert!(err.contains("outside 1..=100"), "{err}");
        let mut lying = Vec::new();
        put_varint(&mut lying, 301);
        lying.extend_from_slice(&small[2..]);
        assert!(inflate(&lying, 1 << 20).unwrap_err().contains("not the 301"));
        let mut broken = small.clone();
        broken.truncate(small.len() - 3);
        assert!(inflate(&broken, 1 << 20).is_err());
        // Version 2 payloads: 0x03 marks compression; other payloads pass through.
        let mut legacy = vec![LEGACY_COMPRESSED_PAYLOAD];
        legacy.extend_from_slice(&small);
        assert_eq!(inflate_legacy(VERSION_2, &legacy, 1 << 20).unwrap(), &content[..]);
        assert_eq!(inflate_legacy(VERSION_1, &legacy, 1 << 20).unwrap(), &legacy[..]);
        assert_eq!(inflate_legacy(VERSION_2, &content, 1 << 20).unwrap(), &content[..]);
    }
}
