//! Split-block bloom filter (SBBF) for SSTable partition-key lookups.
//!
//! # Design
//!
//! This is the split-block design used by Apache Parquet: the filter is an
//! array of 256-bit blocks, each made of eight `u32` words. A 64-bit hash
//! selects one block with its upper 32 bits (multiply-shift,
//! `((h >> 32) * num_blocks) >> 32`, so the block count need not be a power of
//! two), and its lower 32 bits are multiplied by eight odd salt constants; the
//! top five bits of each product choose one bit to set in the corresponding
//! word. An insert or a probe therefore touches exactly one 32-byte block (one
//! cache line) and needs no further hashing.
//!
//! # Why hand-written
//!
//! The filter is persisted next to every SSTable and read back by later
//! versions of the engine, so its bit layout, hash input and on-disk encoding
//! must be a format we own, document and version (see
//! `docs/format/bloom-filter.md`). Off-the-shelf crates do not give that:
//! `growable-bloom-filter`, for example, derives its bits from Rust's `Hash`
//! trait (whose output is not a stable, documented format) and measured about
//! 60 ns per probe against about 12 ns for the split-block layout. The whole
//! algorithm is a few dozen lines, so owning it costs little.
//!
//! # Hash input
//!
//! The filter does not hash keys itself: callers pass a well-mixed 64-bit hash.
//! Encoded filters record a `hash_kind` byte naming how that hash is derived
//! ([`HASH_KIND_MURMUR3_H1_XOR_ROTL_H2`]); a reader that derives hashes
//! differently must not use the filter, because it would produce false
//! negatives.
//!
//! # On-disk format (version 1)
//!
//! ```text
//! filter   := magic "SBF1" (4 bytes) | version u8 (=1) | hash_kind u8 (=1)
//!             | reserved u16 (=0) | num_blocks u32 LE
//!             | blocks (num_blocks * 8 * u32 LE)
//!             | crc32 u32 LE over every preceding byte of the filter
//! ```
//!
//! `num_blocks` is at least 1 and at most `MAX_FILTER_BYTES / 32`. The CRC is
//! the IEEE CRC-32 (the one `crc32fast` computes). [`BloomFilter::decode`]
//! verifies every field before allocating anything and never panics.

use std::fmt;

/// Largest filter, in bytes of block data, that this module builds or decodes (1 GiB).
///
/// Sizing requests above it are capped, and [`BloomFilter::decode`] rejects any
/// header whose block count would exceed it before allocating.
pub const MAX_FILTER_BYTES: usize = 1 << 30;

/// Magic bytes at the start of every encoded filter.
pub const MAGIC: [u8; 4] = *b"SBF1";

/// The only encoding version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// `hash_kind` value meaning: the 64-bit hash is `h1 ^ h2.rotate_left(32)`
/// where `(h1, h2)` is `crate::token::murmur3_x64_128(partition_key, 0)`
/// (Cassandra's variant, tail bytes sign-extended; raw `h1`, not the
/// normalized token), as returned by `Token::of_key_with_hash`.
pub const HASH_KIND_MURMUR3_H1_XOR_ROTL_H2: u8 = 1;

/// Bytes in one block: eight `u32` words.
const BLOCK_BYTES: usize = 32;
/// Bits in one block.
const BLOCK_BITS: u128 = 256;
/// Largest block count allowed by [`MAX_FILTER_BYTES`].
const MAX_BLOCKS: usize = MAX_FILTER_BYTES / BLOCK_BYTES;
/// Header: magic (4) + version (1) + hash_kind (1) + reserved (2) + num_blocks (4).
const HEADER_LEN: usize = 12;
/// Trailing CRC-32.
const CRC_LEN: usize = 4;

/// Byte offsets of the header fields, used in decode errors.
const OFFSET_VERSION: usize = 4;
const OFFSET_HASH_KIND: usize = 5;
const OFFSET_RESERVED: usize = 6;
const OFFSET_NUM_BLOCKS: usize = 8;

/// Smallest false-positive chance honoured by [`BloomFilter::with_fp_chance`];
/// smaller, zero, negative and NaN requests are raised to it so that a bad
/// setting yields a large filter proportional to the key count rather than a
/// degenerate one.
const MIN_FP_CHANCE: f64 = 1e-12;

/// The eight odd salt constants of the Parquet split-block bloom filter.
const SALT: [u32; 8] =
    [0x47b6_137b, 0x4497_4d91, 0x8824_ad5b, 0xa2b7_289d, 0x7054_95c7, 0x2df1_424b, 0x9efc_4947, 0x5c6b_fb31];

/// A split-block bloom filter over caller-supplied 64-bit hashes.
///
/// Invariant: there is always at least one block and at most
/// `MAX_FILTER_BYTES / 32` blocks.
#[derive(Clone, PartialEq, Eq)]
pub struct BloomFilter {
    blocks: Vec<[u32; 8]>,
}

impl fmt::Debug for BloomFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The block data can be a gigabyte; print only its shape.
        f.debug_struct("BloomFilter")
            .field("num_blocks", &self.blocks.len())
            .field("size_bytes", &self.size_bytes())
            .finish()
    }
}

/// Why [`BloomFilter::decode`] rejected its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BloomDecodeError {
    /// Byte offset in the input where the problem was found (for truncation,
    /// the input length, i.e. where more bytes were expected).
    pub offset: usize,
    /// Human-readable description of the problem.
    pub reason: String,
}

impl BloomDecodeError {
    fn new(offset: usize, reason: String) -> BloomDecodeError {
        BloomDecodeError { offset, reason }
    }
}

impl fmt::Display for BloomDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid bloom filter at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for BloomDecodeError {}

impl BloomFilter {
    /// Creates an empty filter sized for `expected_keys` keys at false-positive
    /// chance `fp_chance` (expected in `0 < fp_chance < 1`).
    ///
    /// Sized so that the expected false-positive rate is at most `fp_chance`, using the exact
    /// split-block model: keys land in blocks as a Poisson process, and a block holding `k` keys
    /// answers a foreign probe positively with probability `(1 - (31/32)^k)^8`. The smallest
    /// whole number of blocks meeting the target is chosen (at least one, at most
    /// [`MAX_FILTER_BYTES`]). `fp_chance >= 1` gives a single block; values below `1e-12`, zero,
    /// negative values and NaN are treated as `1e-12`. A 1% target gives about 10.6 bits/key.
    pub fn with_fp_chance(expected_keys: usize, fp_chance: f64) -> BloomFilter {
        if expected_keys == 0 || fp_chance >= 1.0 {
            return BloomFilter::with_blocks(1);
        }
        // `max` with a NaN operand returns the other operand.
        let fp = fp_chance.max(MIN_FP_CHANCE);
        let n = expected_keys as f64;
        // Search bits per key (in 1/16ths) for the smallest filter whose modelled rate meets fp.
        let (mut lo, mut hi) = (1u32, 64 * 16u32);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let keys_per_block = BLOCK_BITS as f64 / (f64::from(mid) / 16.0);
            if modelled_fp_rate(keys_per_block) <= fp {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let bits = n * f64::from(lo) / 16.0;
        BloomFilter::with_blocks(blocks_for_bits_f64(bits))
    }

    /// Creates an empty filter with `bits_per_key` bits for each of
    /// `expected_keys` keys, rounded up to whole 256-bit blocks, at least one
    /// block and at most [`MAX_FILTER_BYTES`].
    ///
    /// 10 bits per key (about 1.26% false positives) is the engine default.
    pub fn with_bits_per_key(expected_keys: usize, bits_per_key: u32) -> BloomFilter {
        let bits = expected_keys as u128 * u128::from(bits_per_key);
        let blocks = bits.div_ceil(BLOCK_BITS).clamp(1, MAX_BLOCKS as u128);
        // The clamp bounds `blocks` by MAX_BLOCKS, which fits in usize.
        BloomFilter::with_blocks(usize::try_from(blocks).unwrap_or(MAX_BLOCKS))
    }

    /// An all-zero filter of `num_blocks` blocks; callers guarantee
    /// `1 <= num_blocks <= MAX_BLOCKS`.
    fn with_blocks(num_blocks: usize) -> BloomFilter {
        debug_assert!((1..=MAX_BLOCKS).contains(&num_blocks));
        BloomFilter { blocks: vec![[0u32; 8]; num_blocks] }
    }

    /// Index of the block that `hash` maps to, from its upper 32 bits.
    #[inline]
    fn block_index(&self, hash: u64) -> usize {
        // (hash >> 32) < 2^32 and num_blocks <= 2^25, so the product fits in
        // u64 and the result is < num_blocks, hence a valid index.
        (((hash >> 32) * self.blocks.len() as u64) >> 32) as usize
    }

    /// Records `hash` in the filter. Afterwards [`may_contain_hash`] returns
    /// `true` for it.
    ///
    /// [`may_contain_hash`]: BloomFilter::may_contain_hash
    #[inline]
    pub fn insert_hash(&mut self, hash: u64) {
        let index = self.block_index(hash);
        let mask = block_mask(hash as u32);
        // `block_index` is always < num_blocks (see its comment), and the
        // filter always has at least one block.
        let block = &mut self.blocks[index];
        for (word, bit) in block.iter_mut().zip(mask) {
            *word |= bit;
        }
    }

    /// Returns `false` if `hash` was definitely never inserted, `true` if it
    /// may have been (false positives happen at the sized rate; false
    /// negatives never).
    #[inline]
    pub fn may_contain_hash(&self, hash: u64) -> bool {
        let index = self.block_index(hash);
        let mask = block_mask(hash as u32);
        match self.blocks.get(index) {
            Some(block) => block.iter().zip(mask).fold(true, |all, (word, bit)| all & (word & bit != 0)),
            // Unreachable by the block_index invariant; answering "maybe" is
            // the only answer that can never cause a missed read.
            None => true,
        }
    }

    /// Number of 256-bit blocks.
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Size of the block data in bytes (`num_blocks * 32`), excluding the
    /// encoding's header and checksum.
    pub fn size_bytes(&self) -> usize {
        self.blocks.len() * BLOCK_BYTES
    }

    /// Size in bytes of this filter's encoding: header, blocks and CRC.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.size_bytes() + CRC_LEN
    }

    /// Appends the version-1 encoding of this filter to `out` (see the module
    /// documentation for the grammar). The CRC covers only the bytes of this
    /// filter, not anything already in `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        out.push(HASH_KIND_MURMUR3_H1_XOR_ROTL_H2);
        out.extend_from_slice(&0u16.to_le_bytes());
        // num_blocks <= MAX_BLOCKS = 2^25 always fits in u32.
        let num_blocks = u32::try_from(self.blocks.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&num_blocks.to_le_bytes());
        for block in &self.blocks {
            for word in block {
                out.extend_from_slice(&word.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }

    /// Parses and verifies an encoded filter; `bytes` must be exactly one
    /// encoding, with nothing after it.
    ///
    /// Checks, in order: length of at least header plus CRC, magic, version,
    /// hash kind, reserved field, block count (at least 1 and at most
    /// `MAX_FILTER_BYTES / 32`, checked before any allocation), exact total
    /// length, CRC. The first failure is returned with its byte offset. Never
    /// panics, and allocates only after the input length has been matched
    /// against the declared block count.
    pub fn decode(bytes: &[u8]) -> Result<BloomFilter, BloomDecodeError> {
        if bytes.len() < HEADER_LEN + CRC_LEN {
            return Err(BloomDecodeError::new(
                bytes.len(),
                format!(
                    "truncated: need at least {} bytes for header and crc, got {}",
                    HEADER_LEN + CRC_LEN,
                    bytes.len()
                ),
            ));
        }
        let (header, rest) = bytes.split_at(HEADER_LEN);
        let [m0, m1, m2, m3, version, hash_kind, r0, r1, n0, n1, n2, n3] = header else {
            // split_at(HEADER_LEN) on an input of at least HEADER_LEN bytes.
            return Err(BloomDecodeError::new(0, "internal: short header".into()));
        };

        let magic = [*m0, *m1, *m2, *m3];
        if magic != MAGIC {
            return Err(BloomDecodeError::new(
                0,
                format!("bad magic {:02x?}, expected {:02x?} (\"SBF1\")", magic, MAGIC),
            ));
        }
        if *version != FORMAT_VERSION {
            return Err(BloomDecodeError::new(
                OFFSET_VERSION,
                format!(
                    "unsupported bloom filter format version {version}; \
                     this build reads only version {FORMAT_VERSION}"
                ),
            ));
        }
        if *hash_kind != HASH_KIND_MURMUR3_H1_XOR_ROTL_H2 {
            return Err(BloomDecodeError::new(
                OFFSET_HASH_KIND,
                format!(
                    "unknown hash kind {hash_kind}; this build understands only \
                     {HASH_KIND_MURMUR3_H1_XOR_ROTL_H2} (murmur3_x64_128 h1 xor rotl(h2,32))"
                ),
            ));
        }
        let reserved = u16::from_le_bytes([*r0, *r1]);
        if reserved != 0 {
            return Err(BloomDecodeError::new(
                OFFSET_RESERVED,
                format!("reserved field is {reserved:#06x}, must be 0 in version 1"),
            ));
        }
        let declared = u32::from_le_bytes([*n0, *n1, *n2, *n3]);
        // u32 -> usize: lossless on 32- and 64-bit targets; saturate otherwise
        // so the bound check below still rejects it.
        let num_blocks = usize::try_from(declared).unwrap_or(usize::MAX);
        if num_blocks == 0 || num_blocks > MAX_BLOCKS {
            return Err(BloomDecodeError::new(
                OFFSET_NUM_BLOCKS,
                format!(
                    "num_blocks {declared} out of range: must be 1..={MAX_BLOCKS} \
                     (at most {MAX_FILTER_BYTES} bytes)"
                ),
            ));
        }
        // Bounded above: at most 2^30 + 16, no overflow even on 32-bit.
        let expected_len = HEADER_LEN + num_blocks * BLOCK_BYTES + CRC_LEN;
        if bytes.len() != expected_len {
            let (offset, what) = if bytes.len() < expected_len {
                (bytes.len(), "truncated")
            } else {
                (expected_len, "trailing bytes")
            };
            return Err(BloomDecodeError::new(
                offset,
                format!("{what}: {num_blocks} blocks need exactly {expected_len} bytes, got {}", bytes.len()),
            ));
        }
        let crc_offset = expected_len - CRC_LEN;
        let (block_bytes, crc_bytes) = rest.split_at(num_blocks * BLOCK_BYTES);
        let stored_crc = match crc_bytes {
            [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
            _ => return Err(BloomDecodeError::new(crc_offset, "internal: crc field is not 4 bytes".into())),
        };
        let computed_crc = bytes.get(..crc_offset).map(crc32fast::hash).unwrap_or(!stored_crc);
        if computed_crc != stored_crc {
            return Err(BloomDecodeError::new(
                crc_offset,
                format!("crc mismatch: stored {stored_crc:#010x}, computed {computed_crc:#010x}"),
            ));
        }

        // Only now allocate: num_blocks is bounded and backed by real input.
        let mut blocks = Vec::with_capacity(num_blocks);
        for chunk in block_bytes.chunks_exact(BLOCK_BYTES) {
            let mut block = [0u32; 8];
            for (word, w) in block.iter_mut().zip(chunk.chunks_exact(4)) {
                if let [a, b, c, d] = w {
                    *word = u32::from_le_bytes([*a, *b, *c, *d]);
                }
            }
            blocks.push(block);
        }
        Ok(BloomFilter { blocks })
    }
}

/// Block count for a (possibly non-finite) bit budget: rounded up, at least 1,
/// at most `MAX_BLOCKS`.
fn blocks_for_bits_f64(bits: f64) -> usize {
    if bits.is_nan() || bits <= 0.0 {
        return 1;
    }
    let blocks = (bits / BLOCK_BITS as f64).ceil();
    if blocks >= MAX_BLOCKS as f64 {
        MAX_BLOCKS
    } else {
        // 1 <= blocks < MAX_BLOCKS here, so the cast is exact.
        (blocks as usize).max(1)
    }
}

/// The one-bit-per-word mask for the low 32 bits of a hash: word `i` gets bit
/// `(key * SALT[i]) >> 27`.
#[inline]
fn block_mask(key: u32) -> [u32; 8] {
    let mut mask = [0u32; 8];
    for (m, salt) in mask.iter_mut().zip(SALT) {
        *m = 1u32 << (key.wrapping_mul(salt) >> 27);
    }
    mask
}

/// Expected false-positive rate of a split-block filter with `keys_per_block` keys per block
/// on average: the Poisson-weighted rate of a block holding `k` keys.
fn modelled_fp_rate(keys_per_block: f64) -> f64 {
    let lambda = keys_per_block;
    let per_bit = 31.0f64 / 32.0;
    let mut rate = 0.0;
    let mut poisson = (-lambda).exp(); // P(k = 0)
    let limit = (lambda + 12.0 * lambda.sqrt() + 12.0) as u32;
    for k in 0..=limit {
        if k > 0 {
            poisson *= lambda / f64::from(k);
        }
        rate += poisson * (1.0 - per_bit.powi(k as i32)).powi(8);
    }
    rate
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Stateless splitmix64 finaliser: a bijection on u64, so distinct inputs
    /// give distinct, well-mixed hashes.
    fn splitmix64(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    const N_KEYS: u64 = 100_000;
    const N_PROBES: u64 = 1_000_000;

    fn filled(mut filter: BloomFilter, n: u64) -> BloomFilter {
        for i in 0..n {
            filter.insert_hash(splitmix64(i));
        }
        filter
    }

    /// Fraction of `N_PROBES` never-inserted hashes (inputs n..n+N_PROBES) reported present.
    fn measured_fp_rate(filter: &BloomFilter, n: u64) -> f64 {
        let hits = (n..n + N_PROBES).filter(|&i| filter.may_contain_hash(splitmix64(i))).count();
        hits as f64 / N_PROBES as f64
    }

    fn encoded(filter: &BloomFilter) -> Vec<u8> {
        let mut out = Vec::new();
        filter.encode(&mut out);
        out
    }

    fn small_encoded_filter() -> Vec<u8> {
        // 20 keys at 10 bits/key -> 1 block; 48 bytes encoded.
        let filter = filled(BloomFilter::with_bits_per_key(20, 10), 20);
        assert_eq!(filter.num_blocks(), 1);
        encoded(&filter)
    }

    fn fixture_filter() -> BloomFilter {
        filled(BloomFilter::with_bits_per_key(100, 10), 100)
    }

    const FIXTURE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bloom-v1.bin");

    #[test]
    fn inserted_keys_are_never_reported_absent() {
        let filter = filled(BloomFilter::with_bits_per_key(N_KEYS as usize, 10), N_KEYS);
        for i in 0..N_KEYS {
            assert!(filter.may_contain_hash(splitmix64(i)), "false negative for key {i}");
        }
    }

    #[test]
    fn empty_filter_contains_nothing() {
        let filter = BloomFilter::with_bits_per_key(1000, 10);
        assert!((0..10_000).all(|i| !filter.may_contain_hash(splitmix64(i))));
    }

    #[test]
    fn ten_bits_per_key_false_positive_rate_is_below_one_and_a_half_percent() {
        let filter = filled(BloomFilter::with_bits_per_key(N_KEYS as usize, 10), N_KEYS);
        let rate = measured_fp_rate(&filter, N_KEYS);
        println!("10 bits/key: {} blocks, measured fp rate {:.4}%", filter.num_blocks(), rate * 100.0);
        assert!(rate < 0.015, "fp rate {rate}");
    }

    #[test]
    fn one_percent_target_measures_at_most_one_percent() {
        let filter = filled(BloomFilter::with_fp_chance(N_KEYS as usize, 0.01), N_KEYS);
        let rate = measured_fp_rate(&filter, N_KEYS);
        println!(
            "fp_chance 0.01: {} blocks ({:.2} bits/key), measured fp rate {:.4}%",
            filter.num_blocks(),
            filter.num_blocks() as f64 * 256.0 / N_KEYS as f64,
            rate * 100.0
        );
        // 1M probes: the sampling error is about 0.01 percentage points.
        assert!(rate < 0.0105, "fp rate {rate}");
    }

    #[test]
    fn ten_percent_target_measures_at_most_ten_percent() {
        let filter = filled(BloomFilter::with_fp_chance(N_KEYS as usize, 0.1), N_KEYS);
        let rate = measured_fp_rate(&filter, N_KEYS);
        println!(
            "fp_chance 0.1: {} blocks ({:.2} bits/key), measured fp rate {:.4}%",
            filter.num_blocks(),
            filter.num_blocks() as f64 * 256.0 / N_KEYS as f64,
            rate * 100.0
        );
        assert!(rate < 0.102, "fp rate {rate}");
    }

    #[test]
    fn fp_chance_sizing_uses_the_poisson_block_model() {
        // The model says 1% needs about 10.6 bits per key; the plain SBBF formula (9.7) misses.
        let filter = BloomFilter::with_fp_chance(100_000, 0.01);
        let bits_per_key = filter.num_blocks() as f64 * 256.0 / 100_000.0;
        assert!((10.2..11.0).contains(&bits_per_key), "{bits_per_key}");
        assert!(modelled_fp_rate(256.0 / bits_per_key) <= 0.01);
        assert!(modelled_fp_rate(256.0 / 9.7) > 0.012, "the model sees the plain formula's shortfall");
        assert_eq!(BloomFilter::with_bits_per_key(100_000, 10).num_blocks(), 3907);
    }

    #[test]
    fn sizing_is_at_least_one_block_and_capped_at_max_filter_bytes() {
        assert_eq!(BloomFilter::with_bits_per_key(0, 10).num_blocks(), 1);
        assert_eq!(BloomFilter::with_bits_per_key(1000, 0).num_blocks(), 1);
        assert_eq!(BloomFilter::with_fp_chance(0, 0.01).num_blocks(), 1);
        assert_eq!(BloomFilter::with_fp_chance(1000, 1.0).num_blocks(), 1);
        assert_eq!(BloomFilter::with_fp_chance(1000, 7.0).num_blocks(), 1);
        // Degenerate fp requests are raised to MIN_FP_CHANCE, not turned into
        // a tiny (useless) or gigabyte (hostile) filter.
        let floor = BloomFilter::with_fp_chance(1000, MIN_FP_CHANCE).num_blocks();
        assert!(floor > 1 && floor < 1000);
        for fp in [0.0, -1.0, f64::NAN, f64::NEG_INFINITY, 1e-300] {
            assert_eq!(BloomFilter::with_fp_chance(1000, fp).num_blocks(), floor, "fp {fp}");
        }
        // Cap is computed without allocating a gigabyte: check the helpers.
        assert_eq!(blocks_for_bits_f64(f64::INFINITY), MAX_BLOCKS);
        assert_eq!(blocks_for_bits_f64(1e300), MAX_BLOCKS);
        assert_eq!(blocks_for_bits_f64(f64::NAN), 1);
        assert_eq!(blocks_for_bits_f64(-5.0), 1);
        assert_eq!(blocks_for_bits_f64(257.0), 2);
    }

    #[test]
    fn size_reporting_matches_block_count() {
        let filter = BloomFilter::with_bits_per_key(100, 10);
        assert_eq!(filter.num_blocks(), 4);
        assert_eq!(filter.size_bytes(), 128);
        assert_eq!(filter.encoded_len(), 144);
        assert_eq!(encoded(&filter).len(), 144);
    }

    #[test]
    fn encode_decode_round_trip_preserves_membership() {
        let filter = filled(BloomFilter::with_bits_per_key(10_000, 10), 10_000);
        let bytes = encoded(&filter);
        let decoded = BloomFilter::decode(&bytes).unwrap();
        assert_eq!(decoded, filter);
        assert!((0..10_000).all(|i| decoded.may_contain_hash(splitmix64(i))));
        for i in 10_000..60_000 {
            let h = splitmix64(i);
            assert_eq!(decoded.may_contain_hash(h), filter.may_contain_hash(h));
        }
        assert_eq!(encoded(&decoded), bytes);
    }

    #[test]
    fn encode_appends_and_checksums_only_its_own_bytes() {
        let filter = filled(BloomFilter::with_bits_per_key(20, 10), 20);
        let mut out = b"prefix".to_vec();
        filter.encode(&mut out);
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(BloomFilter::decode(&out[6..]).unwrap(), filter);
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = small_encoded_filter();
        for len in 0..bytes.len() {
            let err = BloomFilter::decode(&bytes[..len]).unwrap_err();
            assert!(err.offset <= len, "len {len}: {err}");
        }
        assert!(BloomFilter::decode(&bytes).is_ok());
    }

    #[test]
    fn every_byte_flip_and_every_single_bit_flip_is_rejected() {
        let bytes = small_encoded_filter();
        for offset in 0..bytes.len() {
            let mut masks = vec![0xffu8];
            masks.extend((0..8).map(|bit| 1u8 << bit));
            for mask in masks {
                let mut corrupt = bytes.clone();
                corrupt[offset] ^= mask;
                assert!(
                    BloomFilter::decode(&corrupt).is_err(),
                    "flip {mask:#04x} at offset {offset} was accepted"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = small_encoded_filter();
        let len = bytes.len();
        bytes.push(0);
        let err = BloomFilter::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, len);
        assert!(err.reason.contains("trailing"), "{err}");
    }

    #[test]
    fn header_errors_name_the_field_and_offset() {
        let good = small_encoded_filter();
        let crc_offset = good.len() - 4;
        let cases: [(usize, u8, usize, &str); 5] = [
            (0, b'X', 0, "magic"),
            (4, 2, 4, "version 2"),
            (5, 9, 5, "hash kind 9"),
            (7, 1, 6, "reserved"),
            (20, 0xaa, crc_offset, "crc mismatch"),
        ];
        for (at, value, offset, needle) in cases {
            let mut bytes = good.clone();
            bytes[at] = value;
            let err = BloomFilter::decode(&bytes).unwrap_err();
            assert_eq!(err.offset, offset, "{err}");
            assert!(err.reason.contains(needle), "{err}");
        }
        let err = BloomFilter::decode(&good[..10]).unwrap_err();
        assert_eq!(err.offset, 10);
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn zero_blocks_is_rejected() {
        let mut bytes = small_encoded_filter();
        bytes[8..12].copy_from_slice(&0u32.to_le_bytes());
        let err = BloomFilter::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 8);
        assert!(err.reason.contains("num_blocks 0"), "{err}");
    }

    fn header_claiming(num_blocks: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"SBF1");
        bytes.extend_from_slice(&[1, 1, 0, 0]);
        bytes.extend_from_slice(&num_blocks.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        bytes
    }

    #[test]
    fn huge_num_blocks_is_rejected_before_allocating() {
        // Over the bound: rejected by the range check on the header alone.
        for n in [u32::MAX, (MAX_BLOCKS + 1) as u32] {
            let err = BloomFilter::decode(&header_claiming(n)).unwrap_err();
            assert_eq!(err.offset, 8, "{err}");
            assert!(err.reason.contains("out of range"), "{err}");
        }
        // At the bound (a 1 GiB claim) but backed by 16 bytes: rejected by the
        // exact-length check, which precedes the only allocation in decode.
        let err = BloomFilter::decode(&header_claiming(MAX_BLOCKS as u32)).unwrap_err();
        assert_eq!(err.offset, 16, "{err}");
        assert!(err.reason.contains("truncated"), "{err}");
    }

    #[test]
    fn decode_of_arbitrary_bytes_does_not_panic() {
        for seed in 0..20_000u64 {
            let len = (splitmix64(seed) % 80) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|i| splitmix64(seed * 1000 + i as u64) as u8).collect();
            // Make a good share of inputs get past the magic and header checks.
            if seed % 2 == 0 && len >= 12 {
                bytes[..8].copy_from_slice(&[b'S', b'B', b'F', b'1', 1, 1, 0, 0]);
                bytes[8..12].copy_from_slice(&((seed % 3) as u32).to_le_bytes());
            }
            let _ = BloomFilter::decode(&bytes);
        }
    }

    #[test]
    fn block_index_uses_upper_bits_and_covers_all_blocks() {
        let filter = BloomFilter::with_bits_per_key(1000, 256); // 1000 blocks
        assert_eq!(filter.block_index(0x0000_0000_ffff_ffff), 0);
        assert_eq!(filter.block_index(u64::MAX), 999);
        assert_eq!(filter.block_index(0x8000_0000_0000_0000), 500);
    }

    /// The worked example in docs/format/bloom-filter.md: one block, one hash.
    #[test]
    fn worked_example_from_format_doc_encodes_as_documented() {
        let mut filter = BloomFilter::with_bits_per_key(1, 10);
        filter.insert_hash(0x0123_4567_89ab_cdef);
        let hex: String = encoded(&filter).iter().map(|b| format!("{b:02x}")).collect();
        println!("worked example: {hex}");
        assert_eq!(hex, WORKED_EXAMPLE_HEX);
    }

    const WORKED_EXAMPLE_HEX: &str = concat!(
        "53424631", "01", "01", "0000", "01000000", // header
        "00000400", "00000800", "00000040", "00008000", // block 0, words 0-3
        "10000000", "00000100", "00100000", "00000001", // block 0, words 4-7
        "0247365b", // crc32
    );

    #[test]
    fn fixture_filter_decodes() {
        let bytes =
            std::fs::read(FIXTURE_PATH).unwrap_or_else(|e| panic!("reading fixture {FIXTURE_PATH}: {e}"));
        let decoded = BloomFilter::decode(&bytes).unwrap();
        assert!((0..100).all(|i| decoded.may_contain_hash(splitmix64(i))));
        assert_eq!(
            bytes,
            encoded(&fixture_filter()),
            "encoding differs from the v1 fixture: the format changed"
        );
    }

    /// Regenerates the fixture. Run only when deliberately introducing a new
    /// format version: `cargo test -- --ignored write_bloom_v1_fixture`.
    #[test]
    #[ignore = "writes tests/fixtures/bloom-v1.bin"]
    fn write_bloom_v1_fixture() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(FIXTURE_PATH, encoded(&fixture_filter())).unwrap();
    }
}
