//! Commit log segment files: header, record framing, and the reader used by replay.
//! Grammar and worked example: `docs/format/commitlog.md`.
//!
//! ```text
//! segment := header record* zero-fill
//! header  := magic "SBCL" | version u8 (=1) | reserved [0;3] | segment_id u64le | crc32 u32le (of the 16 bytes before)
//! record  := len u32le | crc32(len bytes) u32le | payload (len bytes) | crc32(payload) u32le
//! ```
//! A record with `len == 0` and a zero length-CRC marks the end of written data: segments are
//! preallocated and zero-filled, and the writer never leaves gaps.

use std::path::{Path, PathBuf};

use crate::codec::crc32;

/// Magic bytes at the start of every segment.
pub const MAGIC: &[u8; 4] = b"SBCL";
/// Current segment format version.
pub const VERSION: u8 = 1;
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
pub fn file_name(id: SegmentId) -> String {
    format!("CommitLog-{VERSION}-{}.log", id.0)
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
pub fn encode_header(id: SegmentId) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..4].copy_from_slice(MAGIC);
    h[4] = VERSION;
    h[8..16].copy_from_slice(&id.0.to_le_bytes());
    let crc = crc32(&h[..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
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

/// Checks a segment header; `Err` names what is wrong.
pub fn check_header(data: &[u8], expected: SegmentId) -> Result<(), String> {
    if data.len() < HEADER_BYTES {
        return Err(format!("file is {} bytes, shorter than the segment header", data.len()));
    }
    if &data[..4] != MAGIC {
        return Err("bad magic, not a Sibyl commit log segment".into());
    }
    if data[4] != VERSION {
        return Err(format!("unsupported segment version {}", data[4]));
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
    Ok(())
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
        assert_eq!(parse_file_name(&file_name(SegmentId(42))), Some(SegmentId(42)));
        assert_eq!(parse_file_name("CommitLog-1-x.log"), None);
        assert_eq!(parse_file_name("other.log"), None);
    }

    #[test]
    fn frames_read_back_and_zero_fill_ends_the_segment() {
        let mut data = encode_header(SegmentId(7)).to_vec();
        encode_record(b"hello", &mut data);
        encode_record(b"world!", &mut data);
        data.extend_from_slice(&[0u8; 64]);
        check_header(&data, SegmentId(7)).unwrap();
        let Frame::Record { payload, next } = read_frame(&data, HEADER_BYTES, 1 << 20) else { panic!() };
        assert_eq!(payload, b"hello");
        let Frame::Record { payload, next } = read_frame(&data, next, 1 << 20) else { panic!() };
        assert_eq!(payload, b"world!");
        assert_eq!(read_frame(&data, next, 1 << 20), Frame::End);
        assert!(check_header(&data, SegmentId(8)).is_err());
    }

    #[test]
    fn damaged_frame_is_bad_and_the_scan_finds_the_next_good_one() {
        let mut data = encode_header(SegmentId(1)).to_vec();
        encode_record(b"first", &mut data);
        let second = data.len();
        encode_record(b"second", &mut data);
        data[HEADER_BYTES + 9] ^= 0xff;
        assert!(matches!(read_frame(&data, HEADER_BYTES, 1 << 20), Frame::Bad { .. }));
        assert_eq!(find_next_valid_record(&data, HEADER_BYTES + 1, 1 << 20), Some(second));
        assert_eq!(find_next_valid_record(&data, second + 1, 1 << 20), None);
    }
}
