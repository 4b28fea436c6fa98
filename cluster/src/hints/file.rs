//! Hints files: header, record framing and a bounded reader. Grammar and worked example:
//! `docs/format/hints.md`.
//!
//! ```text
//! file    := header record*
//! header  := magic "SBHT" | version u8 (=1) | reserved [0;3] | host_id 16 | created_ms u64le
//!            | crc32 u32le (of the 32 bytes before)
//! record  := len u32le | crc32(len bytes) u32le | payload (len bytes) | crc32(payload) u32le
//! payload := created_ms u64le | gc_grace_seconds u32le | mutation (the engine's encoding)
//! ```
//!
//! Files are append-only and not preallocated: the data ends where the file ends. A record cut
//! short by the end of the file is a torn tail (the node died mid-append) and ends the file
//! quietly; any other damage is corruption, reported with the file and offset.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use sibyl_engine::codec::crc32;
use sibyl_engine::Mutation;
use uuid::Uuid;

/// Magic bytes at the start of every hints file.
pub const MAGIC: &[u8; 4] = b"SBHT";
/// Current hints file format version.
pub const VERSION: u8 = 1;
/// Bytes of the file header.
pub const HEADER_BYTES: usize = 36;
/// Framing bytes around each record payload.
pub const FRAME_OVERHEAD: usize = 12;
/// Largest record payload read back: a hint must fit in one internode message.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// One hint: a mutation a replica missed, and when the coordinator stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hint {
    /// Wall-clock milliseconds when the hint was written.
    pub created_ms: i64,
    /// The smallest `gc_grace_seconds` of the mutation's table when it was written: a hint
    /// older than this is dropped, because replaying it could resurrect data whose tombstone
    /// has already been purged elsewhere (Cassandra's hint TTL).
    pub gc_grace_seconds: u32,
    /// What the replica missed.
    pub mutation: Mutation,
}

impl Hint {
    /// Whether the hint may still be delivered at `now_ms`.
    #[must_use]
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.created_ms.saturating_add(i64::from(self.gc_grace_seconds) * 1000) > now_ms
    }

    /// The record payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.created_ms.to_le_bytes());
        out.extend_from_slice(&self.gc_grace_seconds.to_le_bytes());
        self.mutation.encode(out);
    }

    /// Decodes a record payload; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Hint, String> {
        if bytes.len() < 12 {
            return Err(format!("hint of {} bytes is shorter than its 12-byte prefix", bytes.len()));
        }
        let (created, rest) = bytes.split_at(8);
        let (grace, mutation) = rest.split_at(4);
        let created_ms = i64::from_le_bytes(created.try_into().map_err(|_| "short hint".to_string())?);
        let gc_grace_seconds = u32::from_le_bytes(grace.try_into().map_err(|_| "short hint".to_string())?);
        let mutation = Mutation::decode(mutation).map_err(|e| format!("hint mutation: {e}"))?;
        Ok(Hint { created_ms, gc_grace_seconds, mutation })
    }
}

/// File name of a hints file: `<host id>-<created ms>-<version>.hints`, like Cassandra's.
#[must_use]
pub fn file_name(host: Uuid, created_ms: i64) -> String {
    format!("{host}-{created_ms}-{VERSION}.hints")
}

/// Parses a hints file name into (host id, created ms).
#[must_use]
pub fn parse_file_name(name: &str) -> Option<(Uuid, i64)> {
    let stem = name.strip_suffix(".hints")?;
    let (rest, version) = stem.rsplit_once('-')?;
    version.parse::<u8>().ok()?;
    let (host, created) = rest.rsplit_once('-')?;
    Some((host.parse().ok()?, created.parse().ok()?))
}

/// Encodes a file header.
#[must_use]
pub fn encode_header(host: Uuid, created_ms: i64) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..4].copy_from_slice(MAGIC);
    h[4] = VERSION;
    h[8..24].copy_from_slice(host.as_bytes());
    h[24..32].copy_from_slice(&created_ms.to_le_bytes());
    let crc = crc32(&h[..32]);
    h[32..36].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends one framed record: the commit log's framing (`len | crc(len) | payload |
/// crc(payload)`), shared so the two formats cannot drift apart.
pub use sibyl_engine::commitlog::segment::encode_record;

/// Why a hints file cannot be read (further).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A checksum or length does not hold: the rest of the file cannot be trusted.
    #[error("{path}: corrupt hints file at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the bad header or record starts.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
}

/// Reads the hints of one file in order, one record in memory at a time.
#[derive(Debug)]
pub struct HintsReader {
    path: PathBuf,
    input: BufReader<File>,
    /// Bytes of the file when opened (records are never read past it).
    len: u64,
    /// Offset of the next record.
    offset: u64,
    host: Uuid,
    created_ms: i64,
}

impl HintsReader {
    /// Opens `path` and checks its header.
    pub fn open(path: &Path) -> Result<HintsReader, FileError> {
        let io = |source| FileError::Io { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut input = BufReader::with_capacity(64 << 10, file);
        let corrupt = |reason: String| FileError::Corrupt { path: path.to_path_buf(), offset: 0, reason };
        if len < HEADER_BYTES as u64 {
            return Err(corrupt(format!("{len} bytes is shorter than the {HEADER_BYTES}-byte header")));
        }
        let mut h = [0u8; HEADER_BYTES];
        input.read_exact(&mut h).map_err(io)?;
        if &h[..4] != MAGIC {
            return Err(corrupt("not a hints file (bad magic)".into()));
        }
        if h[4] != VERSION {
            return Err(corrupt(format!("hints format version {} (this node reads {VERSION})", h[4])));
        }
        let stored = u32::from_le_bytes([h[32], h[33], h[34], h[35]]);
        if crc32(&h[..32]) != stored {
            return Err(corrupt("header checksum mismatch".into()));
        }
        let mut host = [0u8; 16];
        host.copy_from_slice(&h[8..24]);
        let mut created = [0u8; 8];
        created.copy_from_slice(&h[24..32]);
        Ok(HintsReader {
            path: path.to_path_buf(),
            input,
            len,
            offset: HEADER_BYTES as u64,
            host: Uuid::from_bytes(host),
            created_ms: i64::from_le_bytes(created),
        })
    }

    /// The host the hints are for.
    #[must_use]
    pub fn host(&self) -> Uuid {
        self.host
    }

    /// When the file was created.
    #[must_use]
    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }

    /// Offset of the next record.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Skips to `offset`, a record boundary an earlier reader reported.
    pub fn seek_to(&mut self, offset: u64) -> Result<(), FileError> {
        while self.offset < offset {
            if self.next_hint()?.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// The next hint; `Ok(None)` at the end of the data (including a torn last record).
    pub fn next_hint(&mut self) -> Result<Option<Hint>, FileError> {
        let at = self.offset;
        let remaining = self.len - at;
        if remaining == 0 {
            return Ok(None);
        }
        let corrupt = |reason: String| FileError::Corrupt { path: self.path.clone(), offset: at, reason };
        if remaining < FRAME_OVERHEAD as u64 {
            tracing::warn!(file = %self.path.display(), offset = at, "torn hint record at the end of the file (the node stopped mid-write); ignoring {remaining} bytes");
            return Ok(None);
        }
        let mut head = [0u8; 8];
        self.input
            .read_exact(&mut head)
            .map_err(|source| FileError::Io { path: self.path.clone(), source })?;
        let len_bytes = [head[0], head[1], head[2], head[3]];
        let len_crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if crc32(&len_bytes) != len_crc {
            return Err(corrupt("record length checksum mismatch".into()));
        }
        let len = u32::from_le_bytes(len_bytes) as usize;
        if len == 0 || len > MAX_RECORD_BYTES {
            return Err(corrupt(format!("record length {len} outside 1..={MAX_RECORD_BYTES}")));
        }
        if (len + FRAME_OVERHEAD) as u64 > remaining {
            tracing::warn!(file = %self.path.display(), offset = at, "torn hint record at the end of the file (the node stopped mid-write); ignoring {remaining} bytes");
            self.offset = self.len;
            return Ok(None);
        }
        let mut payload = vec![0u8; len + 4];
        self.input
            .read_exact(&mut payload)
            .map_err(|source| FileError::Io { path: self.path.clone(), source })?;
        let crc = u32::from_le_bytes([payload[len], payload[len + 1], payload[len + 2], payload[len + 3]]);
        payload.truncate(len);
        if crc32(&payload) != crc {
            return Err(corrupt("record payload checksum mismatch".into()));
        }
        let hint = Hint::decode(&payload).map_err(corrupt)?;
        self.offset = at + (len + FRAME_OVERHEAD) as u64;
        Ok(Some(hint))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
    use std::io::Write;

    use bytes::Bytes;
    use sibyl_engine::{PartitionUpdate, TableId};

    use super::*;

    fn hint(i: u8) -> Hint {
        Hint {
            created_ms: 1_700_000_000_000 + i64::from(i),
            gc_grace_seconds: 864_000,
            mutation: Mutation {
                table: TableId(Uuid::from_u128(7)),
                update: PartitionUpdate::new(Bytes::from(vec![i; 3])),
            },
        }
    }

    fn write_file(path: &Path, hints: &[Hint]) -> Vec<u64> {
        let mut bytes = encode_header(Uuid::from_u128(9), 5).to_vec();
        let mut offsets = Vec::new();
        for h in hints {
            offsets.push(bytes.len() as u64);
            let mut p = Vec::new();
            h.encode(&mut p);
            encode_record(&p, &mut bytes);
        }
        std::fs::File::create(path).unwrap().write_all(&bytes).unwrap();
        offsets
    }

    fn read_all(path: &Path) -> Result<Vec<Hint>, FileError> {
        let mut r = HintsReader::open(path)?;
        let mut out = Vec::new();
        while let Some(h) = r.next_hint()? {
            out.push(h);
        }
        Ok(out)
    }

    #[test]
    fn names_round_trip() {
        let host = Uuid::from_u128(0xabc);
        assert_eq!(parse_file_name(&file_name(host, 1234)), Some((host, 1234)));
        assert_eq!(parse_file_name("x.hints"), None);
        assert_eq!(parse_file_name("CommitLog-1-1.log"), None);
    }

    #[test]
    fn hints_round_trip_and_a_torn_tail_ends_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.hints");
        let hints: Vec<Hint> = (0..5).map(hint).collect();
        write_file(&path, &hints);
        assert_eq!(read_all(&path).unwrap(), hints);
        let r = HintsReader::open(&path).unwrap();
        assert_eq!((r.host(), r.created_ms()), (Uuid::from_u128(9), 5));
        // Cut the last record in half: the first four remain.
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 10).unwrap();
        assert_eq!(read_all(&path).unwrap(), hints[..4]);
    }

    #[test]
    fn damage_is_reported_with_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.hints");
        let hints: Vec<Hint> = (0..3).map(hint).collect();
        let offsets = write_file(&path, &hints);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[offsets[1] as usize + 10] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let mut r = HintsReader::open(&path).unwrap();
        assert_eq!(r.next_hint().unwrap(), Some(hints[0].clone()));
        match r.next_hint() {
            Err(FileError::Corrupt { offset, path: p, .. }) => {
                assert_eq!(offset, offsets[1]);
                assert_eq!(p, path);
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        // A huge length with a valid length CRC is refused before anything is allocated.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = offsets[0] as usize;
        let huge = u32::MAX.to_le_bytes();
        bytes[at..at + 4].copy_from_slice(&huge);
        bytes[at + 4..at + 8].copy_from_slice(&crc32(&huge).to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(read_all(&path), Err(FileError::Corrupt { offset, .. }) if offset == offsets[0]));
        // A bad header.
        bytes[33] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(HintsReader::open(&path), Err(FileError::Corrupt { offset: 0, .. })));
    }

    #[test]
    fn liveness_follows_gc_grace() {
        let h = Hint { gc_grace_seconds: 10, ..hint(1) };
        assert!(h.is_live(h.created_ms + 9_999));
        assert!(!h.is_live(h.created_ms + 10_000));
    }
}
