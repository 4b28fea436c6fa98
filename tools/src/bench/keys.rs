//! Keys and values: how a key index becomes key bytes, how values are generated so a read can
//! check them, and which keys a database holds.

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Keys are the key index as zero-padded decimal of a fixed width (db_bench's format), so key
/// order equals index order for RocksDB and fjall.
#[derive(Debug, Clone, Copy)]
pub struct KeyFormat {
    size: usize,
}

impl KeyFormat {
    /// Keys of `size` bytes.
    #[must_use]
    pub fn new(size: usize) -> KeyFormat {
        KeyFormat { size }
    }

    /// Writes key `index` into `out` (resized to the key size).
    pub fn write(&self, index: u64, out: &mut Vec<u8>) {
        out.clear();
        out.resize(self.size, b'0');
        let mut rest = index;
        for b in out.iter_mut().rev() {
            if rest == 0 {
                break;
            }
            *b = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        assert_eq!(rest, 0, "key index {index} does not fit {} digits", self.size);
    }
}

/// Values are windows into a buffer of db_bench-like data (each 100 bytes: 50 random printable
/// bytes, then repeated, so about half compressible). The window of a write is a hash of the
/// key index and the write's version, so a read can recompute what it must find.
#[derive(Debug, Clone)]
pub struct ValueSource {
    data: Vec<u8>,
    size: usize,
}

impl ValueSource {
    /// Values of `size` bytes drawn from a buffer built from `seed`.
    #[must_use]
    pub fn new(size: usize, seed: u64) -> ValueSource {
        let len = (1 << 20).max(2 * size);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut data = Vec::with_capacity(len + 100);
        while data.len() < len {
            let piece: Vec<u8> = (0..50).map(|_| b' ' + rng.random_range(0..95u8)).collect();
            data.extend_from_slice(&piece);
            data.extend_from_slice(&piece);
        }
        ValueSource { data, size }
    }

    /// The value written to key `index` by the write of `version`.
    #[must_use]
    pub fn value(&self, index: u64, version: u32) -> &[u8] {
        let windows = (self.data.len() - self.size + 1) as u64;
        let start = (mix(index ^ (u64::from(version) << 32)) % windows) as usize;
        &self.data[start..start + self.size]
    }
}

/// SplitMix64's finaliser: a cheap, well-spread hash.
#[must_use]
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The last version written to each key of one database (0 = never written).
#[derive(Debug, Clone)]
pub struct KeyState {
    versions: Vec<u32>,
    live: u64,
    next_version: u32,
}

impl KeyState {
    /// An empty database of keys `0..num`.
    pub fn new(num: u64) -> Result<KeyState> {
        let n = usize::try_from(num).context("--num too large for this machine")?;
        Ok(KeyState { versions: vec![0; n], live: 0, next_version: 1 })
    }

    /// Records a write of key `index` and returns its version.
    pub fn record_write(&mut self, index: u64) -> Result<u32> {
        let v = self.next_version;
        self.next_version = v.checked_add(1).context("more than 2^32 writes to one database")?;
        let slot = usize::try_from(index).ok().and_then(|i| self.versions.get_mut(i));
        let slot = slot.with_context(|| format!("key index {index} out of range"))?;
        if *slot == 0 {
            self.live += 1;
        }
        *slot = v;
        Ok(v)
    }

    /// The version key `index` holds, if it was written.
    #[must_use]
    pub fn version(&self, index: u64) -> Option<u32> {
        let v = *usize::try_from(index).ok().and_then(|i| self.versions.get(i))?;
        (v != 0).then_some(v)
    }

    /// Keys written at least once.
    #[must_use]
    pub fn live(&self) -> u64 {
        self.live
    }

    /// Indexes of the keys written at least once, ascending.
    #[must_use]
    pub fn existing(&self) -> Vec<u64> {
        (0u64..).zip(&self.versions).filter(|(_, v)| **v != 0).map(|(i, _)| i).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_zero_padded_decimal_in_index_order() {
        let f = KeyFormat::new(8);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        f.write(42, &mut a);
        assert_eq!(a, b"00000042");
        f.write(100, &mut b);
        assert!(a < b);
        f.write(0, &mut a);
        assert_eq!(a, b"00000000");
    }

    #[test]
    fn values_are_reproducible_and_differ_by_version() {
        let s = ValueSource::new(100, 7);
        assert_eq!(s.value(5, 1), ValueSource::new(100, 7).value(5, 1));
        assert_eq!(s.value(5, 1).len(), 100);
        assert_ne!(s.value(5, 1), s.value(5, 2));
    }

    #[test]
    fn key_state_counts_distinct_live_keys() {
        let mut k = KeyState::new(10).unwrap();
        let v1 = k.record_write(3).unwrap();
        let v2 = k.record_write(3).unwrap();
        k.record_write(9).unwrap();
        assert!(v2 > v1);
        assert_eq!(k.version(3), Some(v2));
        assert_eq!(k.version(4), None);
        assert_eq!(k.live(), 2);
        assert_eq!(k.existing(), vec![3, 9]);
        assert!(k.record_write(10).is_err());
    }
}
