//! The engine's caches, both within a byte budget and shared by all tables: the chunk cache
//! (decompressed SSTable chunks, Cassandra's `file_cache_size`) and the key cache (where a
//! partition starts in an SSTable, Cassandra's `key_cache_size`).
//!
//! Without the chunk cache every read that touches an SSTable decompresses a whole chunk (16 KiB
//! by default). Without the key cache every read of an SSTable binary-searches its index summary
//! and scans up to 16 entries of `Index.db`: a third of a point read in a profile of 1M keys.
//!
//! Both are split into shards so concurrent readers rarely meet on a lock, and evict with CLOCK
//! (second chance): an entry read since the hand last passed survives one more round. SSTables
//! get an engine-unique id when they are opened ([`Caches::register`]), so entries of deleted
//! SSTables are never served again and simply age out.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::partition::DecoratedKey;
use crate::sstable::index::IndexEntry;

const SHARDS: usize = 16;

/// Hit and size statistics of a cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found their entry.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Bytes held (for the key cache, an estimate of each entry's footprint).
    pub size_bytes: u64,
    /// The budget.
    pub capacity_bytes: u64,
    /// Entries held.
    pub entries: u64,
}

impl CacheStats {
    /// Hits over lookups (0 when there were none).
    #[must_use]
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

#[derive(Debug)]
struct Shard<K, V> {
    map: HashMap<K, Entry<V>>,
    clock: VecDeque<K>,
    bytes: usize,
}

impl<K, V> Default for Shard<K, V> {
    fn default() -> Self {
        Shard { map: HashMap::new(), clock: VecDeque::new(), bytes: 0 }
    }
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    weight: usize,
    referenced: bool,
}

/// A sharded CLOCK cache of `V` by `K`, each entry weighing what its inserter says, within a
/// byte budget.
#[derive(Debug)]
struct ClockCache<K, V> {
    shards: Vec<Mutex<Shard<K, V>>>,
    shard_capacity: usize,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K: Hash + Eq + Clone, V: Clone> ClockCache<K, V> {
    fn new(capacity: usize) -> Self {
        ClockCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity: capacity / SHARDS,
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn is_enabled(&self) -> bool {
        self.shard_capacity > 0
    }

    /// The shard of an entry whose well-spread hash is `spread`.
    fn shard(&self, spread: u64) -> &Mutex<Shard<K, V>> {
        &self.shards[(spread >> 59) as usize % SHARDS]
    }

    fn get(&self, key: &K, spread: u64) -> Option<V> {
        self.get_if(key, spread, |_| true)
    }

    /// The value of `key` if `accept` takes it (a miss otherwise).
    fn get_if(&self, key: &K, spread: u64, accept: impl FnOnce(&V) -> bool) -> Option<V> {
        if !self.is_enabled() {
            return None;
        }
        let mut shard = self.shard(spread).lock();
        match shard.map.get_mut(key).filter(|e| accept(&e.value)) {
            Some(e) => {
                e.referenced = true;
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(e.value.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Caches `value`, evicting others to stay within the budget. An entry heavier than a
    /// shard's share of the budget is not cached.
    fn insert(&self, key: K, spread: u64, value: V, weight: usize) {
        if !self.is_enabled() || weight > self.shard_capacity {
            return;
        }
        let mut shard = self.shard(spread).lock();
        if shard.map.contains_key(&key) {
            return;
        }
        // CLOCK: each pass either evicts or clears a reference bit, so this ends within two
        // rounds of the queue.
        let mut budget = shard.clock.len() * 2 + 1;
        while shard.bytes + weight > self.shard_capacity && budget > 0 {
            budget -= 1;
            let Some(victim) = shard.clock.pop_front() else { break };
            let keep = match shard.map.get_mut(&victim) {
                Some(e) if e.referenced => {
                    e.referenced = false;
                    true
                }
                Some(_) => false,
                None => continue,
            };
            if keep {
                shard.clock.push_back(victim);
            } else if let Some(e) = shard.map.remove(&victim) {
                shard.bytes -= e.weight;
            }
        }
        if shard.bytes + weight > self.shard_capacity {
            return;
        }
        shard.bytes += weight;
        shard.map.insert(key.clone(), Entry { value, weight, referenced: false });
        shard.clock.push_back(key);
    }

    fn stats(&self) -> CacheStats {
        let (mut bytes, mut entries) = (0u64, 0u64);
        for s in &self.shards {
            let s = s.lock();
            bytes += s.bytes as u64;
            entries += s.map.len() as u64;
        }
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            size_bytes: bytes,
            capacity_bytes: self.capacity as u64,
            entries,
        }
    }
}

/// A shared cache of decompressed chunks, by SSTable id and chunk index.
#[derive(Debug)]
pub struct ChunkCache(ClockCache<(u64, u32), Arc<Vec<u8>>>);

/// Spreads an SSTable id and chunk index over the shards; the mix keeps neighbouring chunks apart.
fn chunk_spread(sstable: u64, chunk: u32) -> u64 {
    sstable.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(chunk).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

impl ChunkCache {
    /// A cache holding at most `capacity_bytes` of chunks (0 disables it).
    #[must_use]
    pub fn new(capacity_bytes: usize) -> ChunkCache {
        ChunkCache(ClockCache::new(capacity_bytes))
    }

    /// Whether the cache holds anything at all.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.0.is_enabled()
    }

    /// The chunk `chunk` of SSTable `sstable`, if cached.
    pub fn get(&self, sstable: u64, chunk: u32) -> Option<Arc<Vec<u8>>> {
        self.0.get(&(sstable, chunk), chunk_spread(sstable, chunk))
    }

    /// Caches a decompressed chunk, evicting others to stay within the budget. A chunk larger
    /// than a shard's share of the budget is not cached.
    pub fn insert(&self, sstable: u64, chunk: u32, data: Arc<Vec<u8>>) {
        let weight = data.capacity().max(data.len());
        self.0.insert((sstable, chunk), chunk_spread(sstable, chunk), data, weight);
    }

    /// Statistics.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        self.0.stats()
    }
}

/// Bytes a key cache entry costs besides its key: the map slot, the CLOCK queue's copy of its
/// slot and the index entry (position, length, empty row index).
const KEY_ENTRY_OVERHEAD: usize = 100;

/// A shared cache of where narrow partitions start in each SSTable (their index entries), by
/// SSTable id and partition token; the entry's own key is compared on a hit, so two keys with
/// one token never mix (the first one cached keeps the slot). Wide partitions (with a row
/// index) are not cached: their reads cost far more than the lookup.
#[derive(Debug)]
pub struct KeyCache(ClockCache<(u64, i64), IndexEntry>);

/// Spreads an SSTable id and token over the shards (the token is already a good hash).
fn key_spread(sstable: u64, token: i64) -> u64 {
    (token as u64) ^ sstable.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl KeyCache {
    /// A cache of at most about `capacity_bytes` (0 disables it).
    #[must_use]
    pub fn new(capacity_bytes: usize) -> KeyCache {
        KeyCache(ClockCache::new(capacity_bytes))
    }

    /// Whether the cache holds anything at all.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.0.is_enabled()
    }

    /// The index entry of `key` in SSTable `sstable`, if cached.
    pub fn get(&self, sstable: u64, key: &DecoratedKey) -> Option<IndexEntry> {
        let token = key.token.0;
        self.0.get_if(&(sstable, token), key_spread(sstable, token), |e| e.key.key == key.key)
    }

    /// Caches the index entry of a narrow partition (wide ones are left out).
    pub fn insert(&self, sstable: u64, entry: &IndexEntry) {
        if !entry.blocks.is_empty() {
            return;
        }
        let token = entry.key.token.0;
        let weight = entry.key.key.len() + KEY_ENTRY_OVERHEAD;
        self.0.insert((sstable, token), key_spread(sstable, token), entry.clone(), weight);
    }

    /// Statistics.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        self.0.stats()
    }
}

/// The engine's caches, handed to every SSTable it opens.
#[derive(Debug, Clone)]
pub struct Caches {
    /// Decompressed chunks.
    pub chunks: Arc<ChunkCache>,
    /// Partition index entries.
    pub keys: Arc<KeyCache>,
    next_id: Arc<AtomicU64>,
}

impl Caches {
    /// Caches within `chunk_bytes` and `key_bytes` (0 disables either).
    #[must_use]
    pub fn new(chunk_bytes: usize, key_bytes: usize) -> Caches {
        Caches {
            chunks: Arc::new(ChunkCache::new(chunk_bytes)),
            keys: Arc::new(KeyCache::new(key_bytes)),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Whether either cache holds anything.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.chunks.is_enabled() || self.keys.is_enabled()
    }

    /// A fresh id for an SSTable that is being opened.
    pub fn register(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(n: usize) -> Arc<Vec<u8>> {
        Arc::new(vec![0u8; n])
    }

    #[test]
    fn hits_after_insert_and_stays_within_budget() {
        let c = ChunkCache::new(16 * 4096);
        assert!(c.get(1, 0).is_none());
        c.insert(1, 0, chunk(1024));
        assert!(c.get(1, 0).is_some());
        for i in 0..10_000u32 {
            c.insert(2, i, chunk(1024));
            assert!(c.stats().size_bytes <= 16 * 4096);
        }
        let s = c.stats();
        assert_eq!((s.hits, s.misses), (1, 1));
        assert!(s.entries > 0);
    }

    #[test]
    fn recently_read_chunks_survive_a_scan_of_cold_ones() {
        // One shard's worth: find keys that land in the same shard as the hot one.
        let c = ChunkCache::new(SHARDS * 4 * 1024);
        c.insert(7, 0, chunk(1024));
        let hot_shard = std::ptr::from_ref(c.0.shard(chunk_spread(7, 0)));
        let cold: Vec<u32> = (1..100_000u32)
            .filter(|i| std::ptr::eq(c.0.shard(chunk_spread(7, *i)), hot_shard))
            .take(40)
            .collect();
        for i in cold {
            assert!(c.get(7, 0).is_some(), "hot chunk evicted before cold chunk {i}");
            c.insert(7, i, chunk(1024));
        }
    }

    #[test]
    fn a_zero_budget_disables_the_cache() {
        let c = ChunkCache::new(0);
        c.insert(1, 0, chunk(10));
        assert!(c.get(1, 0).is_none());
        assert_eq!(c.stats().misses, 0);
    }

    fn entry(key: &str, blocks: usize) -> IndexEntry {
        IndexEntry {
            key: DecoratedKey::new(bytes::Bytes::copy_from_slice(key.as_bytes())),
            position: 7,
            length: 9,
            blocks: (0..blocks)
                .map(|i| crate::sstable::index::RowIndexBlock {
                    first: bytes::Bytes::from(vec![i as u8]),
                    last: bytes::Bytes::from(vec![i as u8]),
                    offset: i as u64,
                    width: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn the_key_cache_serves_narrow_entries_per_sstable_within_its_budget() {
        let c = KeyCache::new(SHARDS * 4096);
        let e = entry("k1", 0);
        assert!(c.get(1, &e.key).is_none());
        c.insert(1, &e);
        assert_eq!(c.get(1, &e.key), Some(e.clone()));
        // Another SSTable's entry for the same key is another entry.
        assert!(c.get(2, &e.key).is_none());
        // A key that shares the token is not served the cached entry.
        let twin = DecoratedKey { token: e.key.token, key: bytes::Bytes::from_static(b"twin") };
        assert!(c.get(1, &twin).is_none());
        // Wide partitions are not cached.
        let wide = entry("wide", 3);
        c.insert(1, &wide);
        assert!(c.get(1, &wide.key).is_none());
        for i in 0..10_000 {
            c.insert(3, &entry(&format!("key{i}"), 0));
            assert!(c.stats().size_bytes <= (SHARDS * 4096) as u64);
        }
        let s = c.stats();
        assert!(s.entries > 100 && s.hits == 1 && s.misses == 4, "{s:?}");
        assert!(!KeyCache::new(0).is_enabled());
    }
}
