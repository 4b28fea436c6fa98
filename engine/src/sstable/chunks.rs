//! Compressed chunks of `Data.db` and their map, `CompressionInfo.db`.
//!
//! The partitions of an SSTable form one logical, uncompressed byte stream. It is cut into
//! chunks of `chunk_size` bytes (the last may be shorter); each chunk is stored lz4-compressed
//! (or raw, when compression would not shrink it) with its own CRC, so any position of the
//! stream is reached by decompressing one chunk.
//!
//! ```text
//! Data.db            := magic "SBLD" | version u8 (1 to 3) | reserved [0;3]
//!                       | [timestamp_base i64le (versions 2 and 3)] | chunk*
//! chunk              := stored_len u32le (bit 31 set: stored raw) | crc32 u32le of stored bytes | stored bytes
//! CompressionInfo.db := magic "SBLC" | version u8 (=1) | reserved [0;3] | chunk_size u32le
//!                       | uncompressed_len u64le | data_file_len u64le | chunk_count u32le
//!                       | chunk_offset u64le * chunk_count | crc32 u32le of everything before
//! ```

use crate::codec::{crc32, DecodeError, DecodeResult, Reader};

/// Magic of the data file.
pub const DATA_MAGIC: &[u8; 4] = b"SBLD";
/// Bytes before the first chunk in version 1 (the fewest of any version).
pub const DATA_HEADER_BYTES: u64 = 8;
/// The `Data.db` version written today: rows at encoding version 3 (`serialization`), with
/// the timestamp base after the version, and a live partition header with nothing in it
/// stored as zero bytes. Version 2 held encoding 2; version 1 encoding 1 and no base.
pub const DATA_VERSION: u8 = 3;
/// Bytes before the first chunk in versions 2 and 3.
pub const DATA_HEADER_BYTES_V2: u64 = 16;
const INFO_MAGIC: &[u8; 4] = b"SBLC";
const VERSION: u8 = 1;
const RAW_FLAG: u32 = 1 << 31;
/// Largest chunk size accepted.
pub const MAX_CHUNK_SIZE: u32 = 1 << 24;

/// The chunk map of one data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkMap {
    /// Uncompressed bytes per chunk.
    pub chunk_size: u32,
    /// Length of the logical stream.
    pub uncompressed_len: u64,
    /// Length of `Data.db`.
    pub data_file_len: u64,
    /// File offset of each chunk.
    pub offsets: Vec<u64>,
}

impl ChunkMap {
    /// Encodes `CompressionInfo.db`.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40 + self.offsets.len() * 8);
        out.extend_from_slice(INFO_MAGIC);
        out.extend_from_slice(&[VERSION, 0, 0, 0]);
        out.extend_from_slice(&self.chunk_size.to_le_bytes());
        out.extend_from_slice(&self.uncompressed_len.to_le_bytes());
        out.extend_from_slice(&self.data_file_len.to_le_bytes());
        out.extend_from_slice(&(self.offsets.len() as u32).to_le_bytes());
        for o in &self.offsets {
            out.extend_from_slice(&o.to_le_bytes());
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and validates `CompressionInfo.db`.
    pub fn decode(bytes: &[u8]) -> DecodeResult<ChunkMap> {
        if bytes.len() < 36 {
            return Err(DecodeError { offset: 0, reason: "compression info too short".into() });
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if &body[..4] != INFO_MAGIC {
            return Err(DecodeError { offset: 0, reason: "bad magic, not a compression info file".into() });
        }
        if body[4] != VERSION {
            return Err(DecodeError {
                offset: 4,
                reason: format!("unsupported compression info version {}", body[4]),
            });
        }
        if crc32(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(DecodeError {
                offset: body.len(),
                reason: "compression info checksum mismatch".into(),
            });
        }
        let mut r = Reader::new(body);
        r.bytes(8)?;
        let chunk_size = r.u32()?;
        let uncompressed_len = r.u64()?;
        let data_file_len = r.u64()?;
        let count = r.u32()? as usize;
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(r.error(format!("chunk size {chunk_size} out of range")));
        }
        if count > r.remaining() / 8 || count as u64 != uncompressed_len.div_ceil(u64::from(chunk_size)) {
            return Err(r.error(format!("chunk count {count} inconsistent with the stream length")));
        }
        let mut offsets = Vec::with_capacity(count);
        for _ in 0..count {
            let o = r.u64()?;
            if offsets.last().is_some_and(|p| *p >= o) || o < DATA_HEADER_BYTES || o >= data_file_len {
                return Err(r.error("chunk offsets out of order or outside the data file"));
            }
            offsets.push(o);
        }
        if !r.is_empty() {
            return Err(r.error("trailing bytes in compression info"));
        }
        Ok(ChunkMap { chunk_size, uncompressed_len, data_file_len, offsets })
    }

    /// Uncompressed length of chunk `i`.
    #[must_use]
    pub fn chunk_len(&self, i: usize) -> usize {
        let start = i as u64 * u64::from(self.chunk_size);
        (self.uncompressed_len - start).min(u64::from(self.chunk_size)) as usize
    }

    /// Decodes chunk `i` from the data file's bytes into `out`. The error offset is the chunk's
    /// file offset.
    pub fn read_chunk(&self, data: &[u8], i: usize, out: &mut Vec<u8>) -> Result<(), (u64, String)> {
        let start = self.offsets[i];
        let end = self.offsets.get(i + 1).copied().unwrap_or(self.data_file_len);
        if data.len() as u64 != self.data_file_len {
            return Err((0, format!("data file is {} bytes, expected {}", data.len(), self.data_file_len)));
        }
        let frame = &data[start as usize..end as usize];
        if frame.len() < 8 {
            return Err((start, "chunk frame too short".into()));
        }
        let word = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let stored = &frame[8..];
        if (word & !RAW_FLAG) as usize != stored.len() {
            return Err((start, "chunk length disagrees with the chunk map".into()));
        }
        if crc32(stored) != crc {
            return Err((start, "chunk checksum mismatch".into()));
        }
        let len = self.chunk_len(i);
        out.clear();
        if word & RAW_FLAG != 0 {
            if stored.len() != len {
                return Err((start, "raw chunk has the wrong length".into()));
            }
            out.extend_from_slice(stored);
        } else {
            out.resize(len, 0);
            match lz4_flex::block::decompress_into(stored, out) {
                Ok(n) if n == len => {}
                Ok(n) => return Err((start, format!("chunk decompressed to {n} bytes, expected {len}"))),
                Err(e) => return Err((start, format!("chunk does not decompress: {e}"))),
            }
        }
        Ok(())
    }
}

/// Encodes one chunk frame (compressing when that helps).
pub fn encode_chunk(raw: &[u8], out: &mut Vec<u8>) {
    let compressed = lz4_flex::block::compress(raw);
    let (flag, stored): (u32, &[u8]) =
        if compressed.len() < raw.len() { (0, &compressed) } else { (RAW_FLAG, raw) };
    out.extend_from_slice(&(stored.len() as u32 | flag).to_le_bytes());
    out.extend_from_slice(&crc32(stored).to_le_bytes());
    out.extend_from_slice(stored);
}
