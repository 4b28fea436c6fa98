//! Frame body compression (spec §5), negotiated by the STARTUP option `COMPRESSION`.
//!
//! * `lz4`: a 4-byte big-endian uncompressed length followed by one raw lz4 block (not the lz4
//!   frame format, and not lz4_flex's little-endian size prefix).
//! * `snappy`: one raw snappy block (`snap::raw`), whose varint header carries the length.
//!
//! Decompression never allocates more than the frame limit: the announced uncompressed length
//! is checked first (and, for lz4, against the largest ratio lz4 can reach).

use bytes::Bytes;

use crate::protocol::error::{ProtocolError, Result};

/// lz4 cannot expand more than about 255:1 (each extra length byte adds at most 255 bytes of
/// output); a header claiming more than this is a lie and is refused before allocating.
const LZ4_MAX_RATIO: usize = 255;

/// A negotiated compression algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Lz4,
    Snappy,
}

impl Compression {
    /// Algorithms the server advertises in SUPPORTED, in preference order.
    pub const SUPPORTED: [Compression; 2] = [Compression::Lz4, Compression::Snappy];

    /// The STARTUP / SUPPORTED name.
    pub const fn name(self) -> &'static str {
        match self {
            Compression::Lz4 => "lz4",
            Compression::Snappy => "snappy",
        }
    }

    /// Parses the STARTUP `COMPRESSION` value, case-insensitively as Cassandra does.
    pub fn from_startup_option(name: &str) -> Result<Self> {
        Compression::SUPPORTED
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| ProtocolError::UnknownCompression { name: name.to_owned() })
    }

    /// Compresses a frame body.
    pub fn compress(self, input: &[u8]) -> Result<Bytes> {
        match self {
            Compression::Lz4 => {
                let len = u32::try_from(input.len()).ok().filter(|l| i32::try_from(*l).is_ok()).ok_or_else(
                    || ProtocolError::Compression {
                        algorithm: "lz4",
                        reason: format!("input of {} bytes is too large", input.len()),
                    },
                )?;
                let block = lz4_flex::block::compress(input);
                let mut out = Vec::with_capacity(block.len().saturating_add(4));
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&block);
                Ok(Bytes::from(out))
            }
            Compression::Snappy => snap::raw::Encoder::new()
                .compress_vec(input)
                .map(Bytes::from)
                .map_err(|e| ProtocolError::Compression { algorithm: "snappy", reason: e.to_string() }),
        }
    }

    /// Decompresses a frame body whose uncompressed size must not exceed `max_uncompressed_bytes`.
    pub fn decompress(self, input: &[u8], max_uncompressed_bytes: usize) -> Result<Bytes> {
        match self {
            Compression::Lz4 => {
                let err = |reason: String| ProtocolError::Decompression { algorithm: "lz4", reason };
                let (len, block) = match input {
                    [a, b, c, d, block @ ..] => (i32::from_be_bytes([*a, *b, *c, *d]), block),
                    _ => {
                        return Err(err(format!("body of {} bytes has no 4-byte length prefix", input.len())))
                    }
                };
                let len =
                    usize::try_from(len).map_err(|_| err(format!("negative uncompressed length {len}")))?;
                if len > max_uncompressed_bytes {
                    return Err(err(format!(
                        "uncompressed length {len} exceeds native_transport_max_frame_size {max_uncompressed_bytes}"
                    )));
                }
                if len > block.len().saturating_mul(LZ4_MAX_RATIO).saturating_add(16) {
                    return Err(err(format!(
                        "uncompressed length {len} is impossible for a {}-byte lz4 block",
                        block.len()
                    )));
                }
                let out = lz4_flex::block::decompress(block, len).map_err(|e| err(e.to_string()))?;
                if out.len() != len {
                    return Err(err(format!("block decompressed to {} bytes, header says {len}", out.len())));
                }
                Ok(Bytes::from(out))
            }
            Compression::Snappy => {
                let err = |reason: String| ProtocolError::Decompression { algorithm: "snappy", reason };
                let len = snap::raw::decompress_len(input).map_err(|e| err(e.to_string()))?;
                if len > max_uncompressed_bytes {
                    return Err(err(format!(
                        "uncompressed length {len} exceeds native_transport_max_frame_size {max_uncompressed_bytes}"
                    )));
                }
                snap::raw::Decoder::new()
                    .decompress_vec(input)
                    .map(Bytes::from)
                    .map_err(|e| err(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..2000u32 {
            v.extend_from_slice(format!("row {i} value {}\n", i % 7).as_bytes());
        }
        v
    }

    #[test]
    fn both_algorithms_round_trip() {
        for c in Compression::SUPPORTED {
            for input in [sample(), Vec::new(), vec![7u8]] {
                let compressed = c.compress(&input).unwrap();
                assert_eq!(&c.decompress(&compressed, 1 << 20).unwrap()[..], &input[..], "{c:?}");
            }
        }
    }

    #[test]
    fn lz4_body_is_big_endian_length_plus_raw_block() {
        let input = sample();
        let body = Compression::Lz4.compress(&input).unwrap();
        assert_eq!(&body[..4], &(input.len() as u32).to_be_bytes());
        // the rest is a plain lz4 block, readable by any block decoder
        assert_eq!(lz4_flex::block::decompress(&body[4..], input.len()).unwrap(), input);
    }

    #[test]
    fn lz4_refuses_lying_lengths_before_allocating() {
        let body = Compression::Lz4.compress(b"hello hello hello").unwrap();
        let mut lie = body.to_vec();
        lie[..4].copy_from_slice(&(i32::MAX).to_be_bytes());
        let err = Compression::Lz4.decompress(&lie, 16 << 20).unwrap_err();
        assert!(err.to_string().contains("exceeds native_transport_max_frame_size"), "{err}");
        lie[..4].copy_from_slice(&(1_000_000i32).to_be_bytes());
        let err = Compression::Lz4.decompress(&lie, 16 << 20).unwrap_err();
        assert!(err.to_string().contains("impossible"), "{err}");
        lie[..4].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(Compression::Lz4.decompress(&lie, 16 << 20).is_err());
        // a length that is too large but plausible: output is shorter than announced
        lie[..4].copy_from_slice(&(40i32).to_be_bytes());
        assert!(Compression::Lz4.decompress(&lie, 16 << 20).is_err());
        assert!(Compression::Lz4.decompress(&[0, 0], 16 << 20).is_err());
    }

    #[test]
    fn snappy_refuses_oversize_and_garbage() {
        let input = sample();
        let body = Compression::Snappy.compress(&input).unwrap();
        let err = Compression::Snappy.decompress(&body, 100).unwrap_err();
        assert!(err.to_string().contains("exceeds"), "{err}");
        assert!(Compression::Snappy.decompress(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], 1 << 20).is_err());
    }

    #[test]
    fn startup_names_are_case_insensitive() {
        assert_eq!(Compression::from_startup_option("LZ4").unwrap(), Compression::Lz4);
        assert_eq!(Compression::from_startup_option("snappy").unwrap(), Compression::Snappy);
        let err = Compression::from_startup_option("zstd").unwrap_err();
        assert_eq!(err.to_string(), "unknown compression algorithm \"zstd\"; supported: lz4, snappy");
    }
}
