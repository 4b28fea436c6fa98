//! The chunk cache: decompressed SSTable chunks kept in memory, within a byte budget.
//!
//! Without it every read that touches an SSTable decompresses a whole chunk (16 KiB by
//! default). The cache is shared by all tables of the engine (Cassandra's `file_cache_size`),
//! split into shards so concurrent readers rarely meet on a lock, and evicts with CLOCK (second
//! chance): an entry read since the hand last passed survives one more round. SSTables get a
//! process-unique id when they are opened, so entries of deleted SSTables are never served
//! again and simply age out.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

const SHARDS: usize = 16;

/// Hit and size statistics of the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found the chunk.
    pub hits: u64,
    /// Lookups that did not (the chunk was decompressed).
    pub misses: u64,
    /// Bytes of chunks held.
    pub size_bytes: u64,
    /// The budget.
    pub capacity_bytes: u64,
    /// Chunks held.
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

type Key = (u64, u32);

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<Key, Entry>,
    clock: VecDeque<Key>,
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    data: Arc<Vec<u8>>,
    referenced: bool,
}

/// A shared cache of decompressed chunks.
#[derive(Debug)]
pub struct ChunkCache {
    shards: Vec<Mutex<Shard>>,
    shard_capacity: usize,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    next_id: AtomicU64,
}

impl ChunkCache {
    /// A cache holding at most `capacity_bytes` of chunks (0 disables it).
    #[must_use]
    pub fn new(capacity_bytes: usize) -> ChunkCache {
        ChunkCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity: capacity_bytes / SHARDS,
            capacity: capacity_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        }
    }

    /// Whether the cache holds anything at all.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.shard_capacity > 0
    }

    /// A fresh id for an SSTable that is being opened.
    pub fn register(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn shard(&self, key: Key) -> &Mutex<Shard> {
        // Spread by chunk index and SSTable id; the mix keeps neighbouring chunks apart.
        let h =
            key.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(key.1).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        &self.shards[(h >> 59) as usize % SHARDS]
    }

    /// The chunk `chunk` of SSTable `sstable`, if cached.
    pub fn get(&self, sstable: u64, chunk: u32) -> Option<Arc<Vec<u8>>> {
        if !self.is_enabled() {
            return None;
        }
        let key = (sstable, chunk);
        let mut shard = self.shard(key).lock();
        match shard.map.get_mut(&key) {
            Some(e) => {
                e.referenced = true;
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(Arc::clone(&e.data))
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Caches a decompressed chunk, evicting others to stay within the budget. A chunk larger
    /// than a shard's share of the budget is not cached.
    pub fn insert(&self, sstable: u64, chunk: u32, data: Arc<Vec<u8>>) {
        let size = data.capacity().max(data.len());
        if !self.is_enabled() || size > self.shard_capacity {
            return;
        }
        let key = (sstable, chunk);
        let mut shard = self.shard(key).lock();
        if shard.map.contains_key(&key) {
            return;
        }
        // CLOCK: each pass either evicts or clears a reference bit, so this ends within two
        // rounds of the queue.
        let mut budget = shard.clock.len() * 2 + 1;
        while shard.bytes + size > self.shard_capacity && budget > 0 {
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
                shard.bytes -= e.data.capacity().max(e.data.len());
            }
        }
        if shard.bytes + size > self.shard_capacity {
            return;
        }
        shard.bytes += size;
        shard.map.insert(key, Entry { data, referenced: false });
        shard.clock.push_back(key);
    }

    /// Statistics.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
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
        let hot_shard = std::ptr::from_ref(c.shard((7, 0)));
        let cold: Vec<u32> =
            (1..100_000u32).filter(|i| std::ptr::eq(c.shard((7, *i)), hot_shard)).take(40).collect();
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
}
