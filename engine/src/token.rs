//! Partition tokens compatible with Apache Cassandra's `Murmur3Partitioner`.
//!
//! A partition key is hashed with MurmurHash3_x64_128 (seed 0) and the first
//! 64-bit half of the hash, read as a signed integer, is the key's token.
//!
//! # Why not the `murmur3` crate
//!
//! Cassandra's `MurmurHash.hash3_x64_128` is not bit-for-bit the reference C
//! implementation: when it mixes in the trailing `len % 16` bytes it reads
//! them as Java `byte`s, which are signed, and widens them to `long` with
//! sign extension before shifting. The reference code and the `murmur3`
//! crate zero-extend them instead. The two agree on every key whose tail
//! bytes are all below `0x80`, but a key with a tail byte `>= 0x80` gets a
//! different hash, hence a different token, and would be stored on the
//! wrong replicas. Cassandra and every driver sign-extend, so we do the
//! same, in a small implementation of our own.

use std::fmt;

const C1: u64 = 0x87c3_7b91_1142_53d5;
const C2: u64 = 0x4cf5_ad43_2745_937f;

/// Final avalanche mix of MurmurHash3 (`fmix64`).
#[inline]
fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[inline]
fn mix_k1(k1: u64) -> u64 {
    k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2)
}

#[inline]
fn mix_k2(k2: u64) -> u64 {
    k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1)
}

/// Reads the little-endian `u64` at `chunk[at..at + 8]`.
#[inline]
fn read_u64_le(chunk: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&chunk[at..at + 8]);
    u64::from_le_bytes(buf)
}

/// MurmurHash3_x64_128 exactly as Apache Cassandra's
/// `MurmurHash.hash3_x64_128` computes it, returning `(h1, h2)`.
///
/// Unlike the reference C code, the bytes of the tail (the final
/// `data.len() % 16` bytes) are sign-extended to 64 bits before being
/// shifted into place, as Java does with its signed `byte`. The 16-byte
/// blocks are read as two little-endian `u64`s. The partitioner uses seed 0.
#[must_use]
pub fn murmur3_x64_128(data: &[u8], seed: u64) -> (u64, u64) {
    let mut h1 = seed;
    let mut h2 = seed;

    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let k1 = read_u64_le(block, 0);
        let k2 = read_u64_le(block, 8);

        h1 ^= mix_k1(k1);
        h1 = h1.rotate_left(27).wrapping_add(h2).wrapping_mul(5).wrapping_add(0x52dc_e729);

        h2 ^= mix_k2(k2);
        h2 = h2.rotate_left(31).wrapping_add(h1).wrapping_mul(5).wrapping_add(0x3849_5ab5);
    }

    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k1: u64 = 0;
        let mut k2: u64 = 0;
        for (i, &byte) in tail.iter().enumerate() {
            // Java: `((long) key.get(offset + i)) << shift`, i.e. a signed
            // byte sign-extended to 64 bits. XOR is order-independent, so the
            // bytes can be folded in ascending order.
            let widened = i64::from(byte as i8) as u64;
            if i < 8 {
                k1 ^= widened << (8 * i);
            } else {
                k2 ^= widened << (8 * (i - 8));
            }
        }
        if tail.len() > 8 {
            h2 ^= mix_k2(k2);
        }
        h1 ^= mix_k1(k1);
    }

    // Java XORs in the length as a (non-negative) long.
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;

    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);

    h1 = fmix(h1);
    h2 = fmix(h2);

    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);

    (h1, h2)
}

/// A `Murmur3Partitioner` token: a position on the signed 64-bit ring.
///
/// Ordering is the signed ordering of the inner value, as in Cassandra.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub i64);

impl Token {
    /// The minimum token, `i64::MIN`. Only the empty key maps to it; no
    /// hash does, because Cassandra remaps a hash of `i64::MIN` to `MAX`.
    pub const MIN: Token = Token(i64::MIN);

    /// The maximum token, `i64::MAX`.
    pub const MAX: Token = Token(i64::MAX);

    /// Token of a serialized partition key, as `Murmur3Partitioner` computes it.
    ///
    /// The empty key gets [`Token::MIN`]. Otherwise the token is the first
    /// half (`h1`) of [`murmur3_x64_128`] with seed 0, read as `i64`, except
    /// that `i64::MIN` becomes `i64::MAX` (Cassandra's `normalize`).
    ///
    /// For a multi-column partition key pass the output of
    /// [`composite_partition_key`]; a single-column key is hashed as its raw
    /// serialized value.
    #[must_use]
    pub fn of_key(key: &[u8]) -> Token {
        Self::of_key_with_hash(key).0
    }

    /// Like [`Token::of_key`], but also returns the full 128-bit hash
    /// `(h1, h2)` so callers such as the bloom filter need not hash again.
    ///
    /// For the empty key the token is [`Token::MIN`] and the hash is that of
    /// the empty slice.
    #[must_use]
    pub fn of_key_with_hash(key: &[u8]) -> (Token, (u64, u64)) {
        let hash = murmur3_x64_128(key, 0);
        let token = if key.is_empty() { Token::MIN } else { Self::from_h1(hash.0) };
        (token, hash)
    }

    /// Cassandra's `normalize`: `h1` as a signed value, `MIN` mapped to `MAX`.
    fn from_h1(h1: u64) -> Token {
        let value = h1 as i64;
        if value == i64::MIN {
            Token::MAX
        } else {
            Token(value)
        }
    }

    /// Big-endian bytes whose unsigned lexicographic order equals the signed
    /// order of the tokens: the value with its sign bit flipped.
    #[must_use]
    pub fn to_be_sortable_bytes(self) -> [u8; 8] {
        ((self.0 as u64) ^ (1 << 63)).to_be_bytes()
    }

    /// Inverse of [`Token::to_be_sortable_bytes`].
    #[must_use]
    pub fn from_be_sortable_bytes(b: [u8; 8]) -> Token {
        Token((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
    }
}

impl fmt::Display for Token {
    /// Prints the signed value, as Cassandra's `token()` function does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Serializes a multi-column partition key the way Cassandra's
/// `CompositeType` does: for each component a 2-byte big-endian length, the
/// component bytes, then one `0x00` end-of-component byte.
///
/// # Panics
///
/// Panics if any component is longer than 65535 bytes. Checking that bound
/// (and rejecting the write with a proper error) is the caller's job.
#[must_use]
pub fn composite_partition_key(components: &[&[u8]]) -> Vec<u8> {
    let total: usize = components.iter().map(|c| c.len() + 3).sum();
    let mut out = Vec::with_capacity(total);
    for component in components {
        assert!(
            component.len() <= usize::from(u16::MAX),
            "partition key component of {} bytes exceeds 65535",
            component.len()
        );
        // Lossless: bounded by the assertion above.
        out.extend_from_slice(&(component.len() as u16).to_be_bytes());
        out.extend_from_slice(component);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        assert_eq!(s.len() % 2, 0, "odd-length hex {s:?}");
        let nibble = |c: u8| match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("bad hex digit {c:?}"),
        };
        s.as_bytes().chunks(2).map(|p| (nibble(p[0]) << 4) | nibble(p[1])).collect()
    }

    /// Every row of /work/shared/reference/murmur3_token_vectors.md
    /// (python cassandra-driver 3.30.1 `cassandra.murmur3.murmur3`).
    const VECTORS: &[(&str, i64)] = &[
        ("61", -8839064797231613815),
        ("68656c6c6f", -3758069500696749310),
        ("00000001", -4069959284402364209),
        ("000000000000002a", 8623491988607824794),
        ("80", -5284281814142962636),
        ("ffffffffffffff", 4860178782003914630),
        ("808182838485868788898a8b8c8d8e8f", 7217206371623098675),
        ("636166c3a92dc3bc", -8406076253023918852),
        ("f0f1f2f3f4f5f6f7f8f9fafbfcfdfe", -7737243313669454511),
        ("c384c396c39cc3a4c3b6c3bcc39fe697a5e69cace8aa9ee38386e382ade382b9e38388", 6947472914468703113),
        ("813ca062ab9d090fa063cd042b6f7fb77e3aa15c4c668742f0b1b4ce8478e8485623dde364", -7802401393939618131),
        ("f05e9ab1f66f9939c5a28d479538f37fda36c49b6743ab0f1973c158752f2e8d4cc2", -1778630262560465777),
        ("432f899120ba6cfb93fe37731592da56526822b3759890da5cb6", -3213029051671626304),
        ("6aea0466366fae2923476b1848c4a31f612ef67de94835d9", -3958176695454883777),
        ("b33cf02bbf67272efe23907ad6a952141da89e6df747133949161e633e37", -5997772920567649853),
        (
            "7637f0b2f759a79cf8c32aa496aedce1ed68edb5a50e3a7bd850e8f9a811d69e6ca66db64604",
            -3845085391926263309,
        ),
        ("3e54fa3e740435898b6a3cd3d067fb90979a096291859023ec99d1eea80706", 5044602230689021255),
        ("0dfbf80df36a180f33c7d84b0152e145787bec35", 2305821830522718420),
        ("c1", 5282381597563046967),
        ("84749259dea201c17662638b0e", -324406387427805299),
        ("c2754abbeef37af4290b7add3a798f8ff3c7d43bf6e6f0e4", 1923842071718261759),
        ("9b00e97c56e1341b0abf36b3a21948acf351aaca51cbf27349", -3288744380849955327),
        ("a9b7509f66529d8144b57c1c5f1e02566db639b0", -9027500362616203549),
        ("d888138f9317972683ed6bd2378baa", 8117861687371528944),
        ("72c1bf82a44105a9b71df9e277a50a", -2649048463184841878),
        ("1d1f", -6748691701804654744),
        ("3f590f313451e397", -2668610413880259246),
        ("43728af4244a2deaa3ba3305c467c9dd13c658fbca74f50681e5e9b63b026b", 8516839763176407420),
        ("228be3a9ab85828c8a", 2344575986930687490),
        ("b8e8e7cb914d6446b1a404f87f0b2d3e1f74d77050e7954684", 7577182602804676958),
        ("98357c75a33d0d8d55004459", -8688809766375539455),
        ("4d49242ae42236b324bde43bdc6f76fdfa41814a70e58a844700f03180c55ae7679bfa", 5067794231362004781),
        ("f8e71547a723f7fa9f127e4b", -1838659217618080514),
        ("c0e66dbc88d7f26a3ae311b31522e8ee9071ff2d77bf5aa96df710eb29f25933", 6111777892963534229),
        ("29f3d76481e07a5d106d4ef2ede88a4538b9b0418c3b18", 6431493159371846793),
        ("e3", -2408865558115793133),
        ("769306027b1ac7", 6840961292307027373),
        ("ce17abd608b177e8e4d8a1568627867d7d073ee2f3c079", 525306352231918634),
        ("72eccf09adcd701cf7ea1d785e65893f8bab164d0b01e34954ff32f465c25c9dbfdcd710", -1560841069608950451),
        ("79f21f2e021505d24d72", 6860654585300242383),
    ];

    #[test]
    fn tokens_match_cassandra_vectors() {
        assert_eq!(VECTORS.len(), 40);
        let mismatches: Vec<String> = VECTORS
            .iter()
            .filter_map(|&(key, want)| {
                let got = Token::of_key(&hex(key));
                (got != Token(want)).then(|| format!("{key}: got {got}, want {want}"))
            })
            .collect();
        assert!(mismatches.is_empty(), "mismatches:\n{}", mismatches.join("\n"));
    }

    #[test]
    fn of_key_with_hash_agrees_with_of_key_and_raw_hash() {
        for &(key, want) in VECTORS {
            let bytes = hex(key);
            let (token, hash) = Token::of_key_with_hash(&bytes);
            assert_eq!(token, Token(want));
            assert_eq!(hash, murmur3_x64_128(&bytes, 0));
            assert_eq!(hash.0 as i64, want, "h1 is the token for {key}");
        }
    }

    #[test]
    fn empty_key_gets_min_token_and_empty_slice_hash() {
        assert_eq!(Token::of_key(&[]), Token::MIN);
        let (token, hash) = Token::of_key_with_hash(&[]);
        assert_eq!(token, Token::MIN);
        // Hash of the empty input with seed 0 is all zeros in MurmurHash3.
        assert_eq!(hash, murmur3_x64_128(&[], 0));
        assert_eq!(hash, (0, 0));
    }

    #[test]
    fn hash_of_i64_min_normalizes_to_max() {
        assert_eq!(Token::from_h1(i64::MIN as u64), Token::MAX);
        assert_eq!(Token::from_h1(i64::MAX as u64), Token::MAX);
        assert_eq!(Token::from_h1(u64::MAX), Token(-1));
        assert_eq!(Token::from_h1(0), Token(0));
    }

    #[test]
    fn high_tail_bytes_are_sign_extended() {
        // Zero-extending the single tail byte 0x80 (as the reference C code
        // does) gives a different token from Cassandra's -5284281814142962636.
        let (h1, _) = murmur3_x64_128(&[0x80], 0);
        assert_eq!(h1 as i64, -5284281814142962636);
        let zero_extended = {
            let mut h1: u64 = 0;
            let mut h2: u64 = 0;
            h1 ^= mix_k1(0x80);
            h1 ^= 1;
            h2 ^= 1;
            h1 = h1.wrapping_add(h2);
            h2 = h2.wrapping_add(h1);
            h1 = fmix(h1);
            h2 = fmix(h2);
            h1.wrapping_add(h2)
        };
        assert_ne!(zero_extended, h1);
    }

    #[test]
    fn sortable_bytes_order_matches_signed_order() {
        let mut values = vec![
            i64::MIN,
            i64::MIN + 1,
            -(1 << 40),
            -256,
            -255,
            -2,
            -1,
            0,
            1,
            2,
            255,
            256,
            1 << 40,
            i64::MAX - 1,
            i64::MAX,
        ];
        values.extend(VECTORS.iter().map(|&(_, t)| t));
        let tokens: Vec<Token> = values.into_iter().map(Token).collect();
        for a in &tokens {
            for b in &tokens {
                assert_eq!(a.cmp(b), a.to_be_sortable_bytes().cmp(&b.to_be_sortable_bytes()), "{a} vs {b}");
            }
        }
        assert_eq!(Token::MIN.to_be_sortable_bytes(), [0; 8]);
        assert_eq!(Token::MAX.to_be_sortable_bytes(), [0xff; 8]);
        assert_eq!(Token(0).to_be_sortable_bytes(), [0x80, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn sortable_bytes_round_trip() {
        for v in [i64::MIN, -1, 0, 1, 42, -8839064797231613815, i64::MAX] {
            let t = Token(v);
            assert_eq!(Token::from_be_sortable_bytes(t.to_be_sortable_bytes()), t);
        }
    }

    #[test]
    fn display_prints_signed_value() {
        assert_eq!(Token(-42).to_string(), "-42");
        assert_eq!(Token::MIN.to_string(), i64::MIN.to_string());
    }

    #[test]
    fn composite_key_is_length_prefixed_and_zero_terminated() {
        let key = composite_partition_key(&[b"ab", &[], &[0xff]]);
        assert_eq!(key, hex("00026162000000000001ff00"));
        assert_eq!(composite_partition_key(&[]), Vec::<u8>::new());

        // An int and a text component, as for PRIMARY KEY ((id, name), ...).
        let id = 1i32.to_be_bytes();
        let key = composite_partition_key(&[&id, b"hello"]);
        assert_eq!(key, hex("00040000000100000568656c6c6f00"));
        // The token is the hash of the whole serialized composite, which
        // differs from the token of either component on its own.
        let token = Token::of_key(&key);
        assert_ne!(token, Token::of_key(&id));
        assert_ne!(token, Token::of_key(b"hello"));
    }

    #[test]
    fn composite_key_accepts_65535_byte_component() {
        let big = vec![7u8; 65535];
        let key = composite_partition_key(&[&big]);
        assert_eq!(key.len(), 65538);
        assert_eq!(&key[..2], &[0xff, 0xff]);
        assert_eq!(key[65537], 0);
    }

    #[test]
    #[should_panic(expected = "exceeds 65535")]
    fn composite_key_rejects_oversized_component() {
        let big = vec![0u8; 65536];
        let _ = composite_partition_key(&[&big]);
    }
}
