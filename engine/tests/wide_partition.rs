//! One partition with millions of rows: a slice from its middle reads a few chunks through the
//! row index, and neither that read nor a major compaction of the whole partition holds more
//! than a bounded amount of memory (measured by an allocation probe around the call).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use bytes::Bytes;
use common::{ck, options, NOW};
use sibyl_engine::{
    Bound, Cell, ColumnId, Engine, LivenessInfo, Mutation, PartitionUpdate, ReadCommand, Row, Slice, TableId,
    TableOptions,
};

/// Counts the bytes allocated by the whole process and their high-water mark.
mod alloc_probe {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static CURRENT: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    pub struct Probe;

    fn grew(by: usize) {
        let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }

    fn shrank(by: usize) {
        CURRENT.fetch_sub(by, Ordering::Relaxed);
    }

    #[allow(unsafe_code)]
    // SAFETY: every call is forwarded to the system allocator with the caller's guarantees;
    // the probe only counts sizes.
    unsafe impl GlobalAlloc for Probe {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded with the caller's guarantees.
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                grew(layout.size());
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded with the caller's guarantees.
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                grew(layout.size());
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            shrank(layout.size());
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: forwarded with the caller's guarantees.
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                shrank(layout.size());
                grew(new_size);
            }
            p
        }
    }

    /// Runs `f` and returns its result with the most bytes allocated at any moment during it,
    /// above what was allocated when it started (other threads included).
    pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
        let base = CURRENT.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let out = f();
        (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
    }
}

#[global_allocator]
static PROBE: alloc_probe::Probe = alloc_probe::Probe;

const ROWS: i64 = 2_000_000;
const BATCH: i64 = 5_000;
const TABLE: TableId = TableId(uuid::Uuid::from_u128(7));
const CACHE_BYTES: usize = 4 << 20;

/// 32 bytes that do not compress much: the partition is as big on disk as in rows.
fn value(i: i64) -> Bytes {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(32);
    for _ in 0..4 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    Bytes::from(v)
}

fn chunk_lookups(engine: &Engine) -> u64 {
    let s = engine.chunk_cache_stats();
    s.hits + s.misses
}

#[test]
fn a_partition_of_millions_of_rows_is_read_and_compacted_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.commitlog_sync = sibyl_engine::SyncMode::Periodic { period: std::time::Duration::from_secs(10) };
    o.chunk_cache_bytes = CACHE_BYTES;
    o.concurrent_compactors = 0;
    let engine = Engine::open(o).unwrap();
    let mut t = TableOptions::new(TABLE, "ks", "wide");
    t.memtable_flush_size_bytes = 24 << 20;
    engine.create_table(t).unwrap();
    let key = Bytes::from_static(b"the-wide-one");

    // Written in clustering order, as a time series would be; the memtable flushes on its own
    // every 24 MiB, so the partition spans several SSTables.
    for start in (0..ROWS).step_by(BATCH as usize) {
        let mut update = PartitionUpdate::new(key.clone());
        for i in start..start + BATCH {
            let mut row = Row::new(ck(i));
            row.liveness = LivenessInfo::new(10);
            row.add_cell(Cell::live(ColumnId(1), 10, value(i)));
            update.rows.push(row);
        }
        engine.apply(Mutation { table: TABLE, update }).unwrap();
    }
    engine.flush(TABLE).unwrap();
    let stats = engine.table_stats(TABLE).unwrap();
    let on_disk = stats.live_disk_bytes;
    assert!(stats.sstable_count >= 3, "the partition should span several SSTables: {stats:?}");
    assert!(on_disk > 60 << 20, "the partition should be large: {on_disk} bytes");

    // A slice of 100 rows from the middle: only the chunks under it are read.
    let middle = ROWS / 2 + 12_345;
    let slice = Slice { start: Bound::before_key(&ck(middle)), end: Bound::before_key(&ck(middle + 100)) };
    let cmd = ReadCommand {
        table: TABLE,
        key: key.clone(),
        slices: vec![slice],
        reversed: false,
        row_limit: usize::MAX,
        now_seconds: NOW,
    };
    let before = chunk_lookups(&engine);
    let (data, peak) = alloc_probe::peak_during(|| engine.read(&cmd).unwrap().unwrap());
    let chunks = chunk_lookups(&engine) - before;
    let total_chunks = on_disk / 16_384;
    let sstables = stats.sstable_count as u64;
    println!("slice read over {sstables} SSTables: {chunk_lookups} chunk lookups of about {total_chunks}; peak {peak} bytes", chunk_lookups = chunks);
    assert_eq!(data.rows.len(), 100);
    for (n, row) in data.rows.iter().enumerate() {
        let i = middle + n as i64;
        assert_eq!(row.clustering, ck(i));
        assert_eq!(row.cells[0].value, value(i));
    }
    // Each SSTable holding the partition costs its header's chunk and, at most, the chunk where
    // its rows cross the slice; the slice itself lies in one or two chunks.
    assert!(chunks <= 4 * sstables, "a 100-row slice read {chunks} chunks from {sstables} SSTables");
    // What a read holds: each SSTable's row index entry (one block bound per 16 KiB of rows,
    // about 1/500 of the partition) and the chunks it decompressed, not the partition.
    assert!(peak < 4 << 20, "a 100-row slice held {peak} bytes at its peak");

    // Reading the slice in reverse also finds it through the row index.
    let reversed = ReadCommand { reversed: true, row_limit: 10, ..cmd.clone() };
    let before = chunk_lookups(&engine);
    let data = engine.read(&reversed).unwrap().unwrap();
    assert_eq!(data.rows.first().map(|r| r.clustering.clone()), Some(ck(middle + 99)));
    let chunks = chunk_lookups(&engine) - before;
    assert!(chunks <= 4 * sstables, "a reversed slice read {chunks} chunks from {sstables} SSTables");

    // A major compaction streams the partition: its memory is bounded by the chunk cache and a
    // few rows, not by the partition's size.
    let ((), peak) = alloc_probe::peak_during(|| engine.compact(TABLE).unwrap());
    let stats = engine.table_stats(TABLE).unwrap();
    println!(
        "major compaction of {on_disk} bytes: peak {peak} bytes, {} SSTables after",
        stats.sstable_count
    );
    assert_eq!(stats.sstable_count, 1);
    assert!(
        peak < CACHE_BYTES + (16 << 20),
        "compacting a {on_disk}-byte partition held {peak} bytes at its peak"
    );

    // Everything is still there, and the middle slice still reads a few chunks.
    let before = chunk_lookups(&engine);
    let data = engine.read(&cmd).unwrap().unwrap();
    assert_eq!(data.rows.len(), 100);
    assert_eq!(data.rows[0].clustering, ck(middle));
    let chunks = chunk_lookups(&engine) - before;
    println!("slice read after the major compaction: {chunks} chunk lookups");
    assert!(chunks <= 4, "a 100-row slice read {chunks} chunks from one SSTable");
    let last = ReadCommand {
        slices: vec![Slice { start: Bound::before_key(&ck(ROWS - 1)), end: Bound::top() }],
        ..cmd
    };
    let data = engine.read(&last).unwrap().unwrap();
    assert_eq!(data.rows.len(), 1);
    assert_eq!(data.rows[0].cells[0].value, value(ROWS - 1));
}
