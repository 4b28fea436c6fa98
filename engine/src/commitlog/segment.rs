//! Commit log segment files: header, record framing, and the reader used by replay.
//! Grammar and worked example: `docs/format/commitlog.md`.
//!
//! ```text
//! segment := header record* zero-fill
//! header  := magic "SBCL" | version u8 (1 or 2) | reserved [0;3] | segment_id u64le | crc32 u32le (of the 16 bytes before)
//! record  := len u32le | crc32(len bytes) u32le | payload (len bytes) | crc32(payload) u32le
//! ```
//! Version 2 segments (written with `commitlog_compression`) may hold compressed payloads:
//! `0x03 | uncompressed_len varint | lz4 block`, inflated by [`inflate`] before replay hands
//! them on. Version 1 is written without compression, so older binaries still read it.
//! A record with `len == 0` and a zero length-CRC marks the end of written data: segments are
//! preallocated and zero-filled, and the writer never leaves gaps.

use std::path::{Path, PathBuf};

use crate::codec::crc32;

/// Magic bytes at the start of every segment.
pub const MAGIC: &[u8; 4] = b"SBCL";
/// Segment format version written without compression.
pub const VERSION: u8 = 1;
/// Segment format version whose records may be lz4-compressed.
pub const VERSION_COMPRESSED: u8 = 2;
/// First byte of a compressed payload (mutations start with their version 1, batches with 2).
pub const COMPRESSED_PAYLOAD: u8 = 0x03;
/// Bytes of the segment header.
pub const HEADER_BYTES: usize = 20;
/// Framing bytes around each record payload.
pub const FRAME_OVERHEAD: usize = 12;

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

/// Encodes a segment header.
#[must_use]
pub fn encode_header(version: u8, id: SegmentId) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..4].copy_from_slice(MAGIC);
    h[4] = version;
    h[8..16].copy_from_slice(&id.0.to_le_bytes());
    let crc = crc32(&h[..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

/// `payload` as a compressed payload, if lz4 shrinks it; for version 2 segments.
#[must_use]
pub fn deflate(payload: &[u8]) -> Option<Vec<u8>> {
    let compressed = lz4_flex::block::compress(payload);
    let mut out = Vec::with_capacity(compressed.len() + 6);
    out.push(COMPRESSED_PAYLOAD);
    crate::codec::put_varint(&mut out, payload.len() as u64);
    out.extend_from_slice(&compressed);
    (out.len() < payload.len()).then_some(out)
}

/// The payload a record of a segment of `version` carries: compressed payloads of version 2
/// segments are inflated (at most `max_payload` bytes); anything else is returned as it is.
pub fn inflate(
    version: u8,
    payload: &[u8],
    max_payload: usize,
) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    if version < VERSION_COMPRESSED || payload.first() != Some(&COMPRESSED_PAYLOAD) {
        return Ok(std::borrow::Cow::Borrowed(payload));
    }
    let mut r = crate::codec::Reader::new(&payload[1..]);
    let len = r.varint().map_err(|e| format!("compressed record: {e}"))?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| (1..=max_payload).contains(l))
        .ok_or_else(|| format!("compressed record claims {len} bytes, outside 1..={max_payload}"))?;
    let mut out = vec![0u8; len];
    match lz4_flex::block::decompress_into(&payload[1 + r.position()..], &mut out) {
        Ok(n) if n == len => Ok(std::borrow::Cow::Owned(out)),
        Ok(n) => Err(format!("compressed record inflates to {n} bytes, not the {len} it claims")),
        Err(e) => Err(format!("compressed record does not inflate: {e}")),
    }
}

/// Appends one framed record.
pub fn encode_record(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let len_bytes = len.to_le_bytes();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc32(&len_bytes).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32(payload).to_le_bytes());
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

/// Reads the frame at `offset` of a segment's bytes.
#[must_use]
pub fn read_frame(data: &[u8], offset: usize, max_payload: usize) -> Frame<'_> {
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
#[must_use]
pub fn find_next_valid_record(data: &[u8], from: usize, max_payload: usize) -> Option<usize> {
    let mut p = from;
    while p + FRAME_OVERHEAD < data.len() {
        if data[p] == 0 && data[p..].len() >= 8 && data[p..p + 8] == [0u8; 8] {
            p += 1;
            continue;
        }
        if let Frame::Record { .. } = read_frame(data, p, max_payload) {
            return Some(p);
        }
        p += 1;
    }
    None
}

/// Checks a segment header and returns its version; `Err` names what is wrong.
pub fn check_header(data: &[u8], expected: SegmentId) -> Result<u8, String> {
    if data.len() < HEADER_BYTES {
        return Err(format!("file is {} bytes, shorter than the segment header", data.len()));
    }
    if &data[..4] != MAGIC {
        return Err("bad magic, not a Sibyl commit log segment".into());
    }
    if data[4] != VERSION && data[4] != VERSION_COMPRESSED {
        return Err(format!(
            "unsupported segment version {} (this binary reads {VERSION} and {VERSION_COMPRESSED})",
            data[4]
        ));
    }
    let stored = u32::from_le_bytes([data[16], data[17], data[18], data[19]]);
    if crc32(&data[..16]) != stored {
        return Err("segment header fails its checksum".into());
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&data[8..16]);
    let id = u64::from_le_bytes(id);
    if id != expected.0 {
        return Err(format!("header names segment {id} but the file name says {}", expected.0));
    }
    Ok(data[4])
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
        assert_eq!(parse_file_name(&file_name(VERSION_COMPRESSED, SegmentId(42))), Some(SegmentId(42)));
        assert_eq!(parse_file_name("CommitLog-1-x.log"), None);
        assert_eq!(parse_file_name("other.log"), None);
    }

    #[test]
    fn frames_read_back_and_zero_fill_ends_the_segment() {
        let mut data = encode_header(VERSION, SegmentId(7)).to_vec();
        encode_record(b"hello", &mut data);
        encode_record(b"world!", &mut data);
        data.extend_from_slice(&[0u8; 64]);
        assert_eq!(check_header(&data, SegmentId(7)), Ok(VERSION));
        let Frame::Record { payload, next } = read_frame(&data, HEADER_BYTES, 1 << 20) else { panic!() };
        assert_eq!(payload, b"hello");
        let Frame::Record { payload, next } = read_frame(&data, next, 1 << 20) else { panic!() };
        assert_eq!(payload, b"world!");
        assert_eq!(read_frame(&data, next, 1 << 20), Frame::End);
        assert!(check_header(&data, SegmentId(8)).is_err());
    }

    #[test]
    fn damaged_frame_is_bad_and_the_scan_finds_the_next_good_one() {
        let mut data = encode_header(VERSION, SegmentId(1)).to_vec();
        encode_record(b"first", &mut data);
        let second = data.len();
        encode_record(b"second", &mut data);
        data[HEADER_BYTES + 9] ^= 0xff;
        assert!(matches!(read_frame(&data, HEADER_BYTES, 1 << 20), Frame::Bad { .. }));
        assert_eq!(find_next_valid_record(&data, HEADER_BYTES + 1, 1 << 20), Some(second));
        assert_eq!(find_next_valid_record(&data, second + 1, 1 << 20), None);
    }

    #[test]
    fn compressed_payloads_inflate_only_in_version_2_segments() {
        let payload: Vec<u8> = b"a mutation ".iter().copied().cycle().take(300).collect();
        let small = deflate(&payload).unwrap();
        assert!(small.len() < payload.len() && small[0] == COMPRESSED_PAYLOAD);
        assert_eq!(inflate(VERSION_COMPRESSED, &small, 1 << 20).unwrap(), &payload[..]);
        // In a version 1 segment the bytes are what they are (replay then rejects them).
        assert_eq!(inflate(VERSION, &small, 1 << 20).unwrap(), &small[..]);
        // Plain payloads pass through version 2 segments too.
        assert_eq!(inflate(VERSION_COMPRESSED, &payload[..20], 1 << 20).unwrap(), &payload[..20]);
        // Incompressible bytes are left alone.
        assert_eq!(deflate(&[1, 7, 3, 9, 4]), None);
        // A claimed length is bounded before anything is allocated, and must match.
        let err = inflate(VERSION_COMPRESSED, &small, 100).unwrap_err();
        assert!(err.contains("outside 1..=100"), "{err}");
        let mut lying = vec![COMPRESSED_PAYLOAD];
        crate::codec::put_varint(&mut lying, 301);
        lying.extend_from_slice(&small[1 + 2..]);
        assert!(inflate(VERSION_COMPRESSED, &lying, 1 << 20).unwrap_err().contains("not the 301"));
        let mut broken = small.clone();
        broken.truncate(small.len() - 3);
        assert!(inflate(VERSION_COMPRESSED, &broken, 1 << 20).is_err());
    }
}
