//! Opens an SSTable and reads partitions and rows from it.
//!
//! Reads go through memory maps of the finished, fsynced `Data.db` and `Index.db`. A read may
//! page-fault, so it must run on a blocking thread, never on an async worker (the engine's API
//! is synchronous for that reason).

use std::ops::Bound as RangeBound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::Mmap;

use super::bloom::BloomFilter;
use super::chunks::{ChunkMap, DATA_HEADER_BYTES, DATA_HEADER_BYTES_V2, DATA_MAGIC, DATA_VERSION};
use super::index::{
    IndexCursor, IndexEntry, HEADER_BYTES as INDEX_HEADER_BYTES, MAGIC as INDEX_MAGIC, TRAILER_BYTES,
    VERSION as INDEX_VERSION,
};
use super::stats::Stats;
use super::{Component, Descriptor};
use crate::clustering::Slice;
use crate::codec::{DecodeError, Reader};
use crate::error::{Error, Result};
use crate::partition::{DecoratedKey, PartitionHeader, MAX_PARTITION_KEY_BYTES};
use crate::row::Row;
use crate::serialization::{decode_header_with, decode_row_with, RowEncoding};

/// Every this many index entries, one is kept in memory for binary search.
const SUMMARY_INTERVAL: usize = 16;
/// Largest encoded partition header (static row and range tombstones) accepted.
const MAX_HEADER_BYTES: u64 = 256 << 20;
/// Largest encoded row accepted.
const MAX_ROW_BYTES: u64 = 512 << 20;

/// An open, immutable SSTable.
#[derive(Debug)]
pub struct SsTable {
    desc: Descriptor,
    data: Mmap,
    index: Mmap,
    /// Format version of `Index.db` (1 stores tokens, 2 does not, 3 neither positions, 4 is
    /// sparse and stores both).
    index_version: u8,
    /// Offset in `Index.db` where the entries end (before the checksum of versions 3 and 4).
    index_end: usize,
    /// How `Data.db` encodes rows (its version 1 or 2, with its timestamp base).
    row_encoding: RowEncoding,
    chunks: ChunkMap,
    filter: BloomFilter,
    stats: Stats,
    summary: Vec<(DecoratedKey, IndexCursor)>,
    partition_sizes: crate::metrics::HistogramSnapshot,
    size_on_disk: u64,
    created_at_seconds: u32,
    /// Chunks decompressed by reads (for tests and statistics).
    chunks_read: AtomicU64,
    /// The engine's caches and this SSTable's id in them.
    cache: std::sync::OnceLock<(crate::cache::Caches, u64)>,
}

fn map(path: &std::path::Path) -> Result<Mmap> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: SSTable files are immutable once their TOC exists: nothing writes or truncates
    // them while they are mapped. Compaction unlinks the files of replaced SSTables while readers
    // may still hold the map; on Unix the mapping stays valid until it is dropped.
    #[allow(unsafe_code)]
    let m = unsafe { Mmap::map(&f) }.map_err(|e| Error::io(path, e))?;
    Ok(m)
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn corrupt(path: PathBuf, base: u64) -> impl Fn(DecodeError) -> Error {
    move |e| Error::corruption(path.clone(), base + e.offset as u64, e.reason)
}

impl SsTable {
    /// Opens and verifies an SSTable whose TOC exists.
    pub fn open(desc: Descriptor) -> Result<SsTable> {
        let toc_path = desc.path(Component::Toc);
        let toc = read_file(&toc_path)?;
        let toc = String::from_utf8_lossy(&toc);
        for c in Component::ALL {
            if !toc.lines().any(|l| l == c.suffix()) {
                return Err(Error::corruption(&toc_path, 0, format!("TOC does not list {}", c.suffix())));
            }
        }
        let stats_path = desc.path(Component::Statistics);
        let stats = Stats::decode(&read_file(&stats_path)?).map_err(corrupt(stats_path, 0))?;
        let info_path = desc.path(Component::CompressionInfo);
        let chunks = ChunkMap::decode(&read_file(&info_path)?).map_err(corrupt(info_path, 0))?;
        let filter_path = desc.path(Component::Filter);
        let filter = BloomFilter::decode(&read_file(&filter_path)?)
            .map_err(|e| Error::corruption(&filter_path, e.offset as u64, e.reason))?;
        let data_path = desc.path(Component::Data);
        let data = map(&data_path)?;
        if data.len() as u64 != chunks.data_file_len || data.len() < DATA_HEADER_BYTES as usize {
            return Err(Error::corruption(
                &data_path,
                data.len() as u64,
                format!(
                    "data file is {} bytes but its compression info expects {}",
                    data.len(),
                    chunks.data_file_len
                ),
            ));
        }
        if &data[..4] != DATA_MAGIC || !(1..=DATA_VERSION).contains(&data[4]) {
            return Err(Error::corruption(&data_path, 0, "bad magic or unsupported version"));
        }
        let row_encoding = if data[4] == 1 {
            RowEncoding::V1
        } else {
            let header_end = DATA_HEADER_BYTES_V2 as usize;
            let first_chunk = chunks.offsets.first().map_or(data.len() as u64, |o| *o);
            if data.len() < header_end || first_chunk < DATA_HEADER_BYTES_V2 {
                return Err(Error::corruption(&data_path, 8, "data file header cut short"));
            }
            let mut base = [0u8; 8];
            base.copy_from_slice(&data[8..header_end]);
            let base = i64::from_le_bytes(base);
            if data[4] == 2 {
                RowEncoding::V2 { base }
            } else {
                RowEncoding::V3 { base }
            }
        };
        let index_path = desc.path(Component::Index);
        let index = map(&index_path)?;
        if index.len() < INDEX_HEADER_BYTES
            || &index[..4] != INDEX_MAGIC
            || !(1..=INDEX_VERSION).contains(&index[4])
        {
            return Err(Error::corruption(&index_path, 0, "bad magic or unsupported version"));
        }
        let index_version = index[4];
        let index_end = if index_version >= 3 {
            let Some(end) = index.len().checked_sub(TRAILER_BYTES).filter(|e| *e >= INDEX_HEADER_BYTES)
            else {
                return Err(Error::corruption(
                    &index_path,
                    0,
                    "index file shorter than its header and checksum",
                ));
            };
            let mut stored = [0u8; TRAILER_BYTES];
            stored.copy_from_slice(&index[end..]);
            if crate::codec::crc32(&index[..end]) != u32::from_le_bytes(stored) {
                return Err(Error::corruption(&index_path, end as u64, "index checksum mismatch"));
            }
            end
        } else {
            index.len()
        };
        let sparse = index_version >= 4;
        let mut summary = Vec::with_capacity(stats.partition_count as usize / SUMMARY_INTERVAL + 1);
        let mut cursor = IndexCursor { offset: INDEX_HEADER_BYTES, position: 0 };
        let mut count = 0u64;
        let mut previous: Option<DecoratedKey> = None;
        let mut partition_sizes = crate::metrics::HistogramSnapshot::default();
        while cursor.offset < index_end {
            let (entry, next) = IndexEntry::decode_at(&index[..index_end], index_version, cursor, true)
                .map_err(|e| Error::corruption(&index_path, e.offset as u64, e.reason))?;
            let offset = cursor.offset;
            let bad = |reason: &str| Err(Error::corruption(&index_path, offset as u64, reason.to_string()));
            if previous.as_ref().is_some_and(|p| *p >= entry.key) {
                return bad("index entries out of order");
            }
            if entry.position.checked_add(entry.length).is_none_or(|end| end > chunks.uncompressed_len) {
                return bad("index entry points past the data");
            }
            if sparse {
                // Entries are sparse: each starts at or after the end of the one before (the
                // first at the start of the stream), and stores the token of its key.
                if entry.position < cursor.position || (count == 0 && entry.position != 0) {
                    return bad("index entry overlaps the partition before it");
                }
                if entry.key.token != crate::token::Token::of_key(&entry.key.key) {
                    return bad("index entry token is not its key's");
                }
            } else {
                partition_sizes.record(entry.length);
            }
            if (count as usize).is_multiple_of(SUMMARY_INTERVAL) {
                summary.push((entry.key.clone(), IndexCursor { offset, position: entry.position }));
            }
            previous = Some(entry.key);
            count += 1;
            cursor = next;
        }
        let offset = cursor.offset;
        if sparse {
            partition_sizes = stats.partition_sizes.clone();
            if count > stats.partition_count || (count == 0 && chunks.uncompressed_len > 0) {
                return Err(Error::corruption(
                    &index_path,
                    offset as u64,
                    format!(
                        "index holds {count} entries for {} partitions in a {}-byte data stream",
                        stats.partition_count, chunks.uncompressed_len
                    ),
                ));
            }
        } else if index_version == 3 && cursor.position != chunks.uncompressed_len {
            return Err(Error::corruption(
                &index_path,
                offset as u64,
                format!(
                    "index entries cover {} bytes of a {}-byte data stream",
                    cursor.position, chunks.uncompressed_len
                ),
            ));
        }
        if !sparse && count != stats.partition_count {
            return Err(Error::corruption(
                &index_path,
                offset as u64,
                format!("index holds {count} partitions but the statistics say {}", stats.partition_count),
            ));
        }
        let size_on_disk = Component::ALL
            .iter()
            .filter_map(|c| std::fs::metadata(desc.path(*c)).ok())
            .map(|m| m.len())
            .sum();
        let created_at_seconds = std::fs::metadata(&data_path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        Ok(SsTable {
            desc,
            created_at_seconds,
            data,
            index,
            index_version,
            index_end,
            row_encoding,
            chunks,
            filter,
            stats,
            summary,
            partition_sizes,
            size_on_disk,
            chunks_read: AtomicU64::new(0),
            cache: std::sync::OnceLock::new(),
        })
    }

    /// Its descriptor.
    #[must_use]
    pub fn descriptor(&self) -> &Descriptor {
        &self.desc
    }

    /// Its statistics.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// When `Data.db` was last written, in seconds since the epoch (0 if unknown).
    #[must_use]
    pub fn created_at_seconds(&self) -> u32 {
        self.created_at_seconds
    }

    /// Uncompressed partition sizes, from the index.
    #[must_use]
    pub fn partition_sizes(&self) -> &crate::metrics::HistogramSnapshot {
        &self.partition_sizes
    }

    /// Bytes of all its component files.
    #[must_use]
    pub fn size_on_disk(&self) -> u64 {
        self.size_on_disk
    }

    /// Serves this SSTable's chunks and index entries through `caches` from now on.
    pub fn attach_cache(&self, caches: &crate::cache::Caches) {
        if caches.is_enabled() {
            let _ = self.cache.set((caches.clone(), caches.register()));
        }
    }

    /// Chunks decompressed by reads so far (chunk cache hits are not counted).
    #[must_use]
    pub fn chunks_read(&self) -> u64 {
        self.chunks_read.load(Ordering::Relaxed)
    }

    /// Whether the partition may be here (token range and bloom filter).
    #[must_use]
    pub fn may_contain(&self, key: &DecoratedKey, bloom_hash: u64) -> bool {
        key.token >= self.stats.min_token
            && key.token <= self.stats.max_token
            && self.filter.may_contain_hash(bloom_hash)
    }

    /// A decode failure in `Index.db` (the path is only built on this error path).
    fn index_corruption(&self, e: DecodeError) -> Error {
        Error::corruption(self.desc.path(Component::Index), e.offset as u64, e.reason)
    }

    /// Finds a partition's index entry (through the key cache when it is attached).
    pub fn find(self: &Arc<Self>, key: &DecoratedKey) -> Result<Option<IndexEntry>> {
        let Some((caches, id)) = self.cache.get().filter(|(c, _)| c.keys.is_enabled()) else {
            return self.find_in_index(key);
        };
        if let Some(entry) = caches.keys.get(*id, key) {
            return Ok(Some(entry));
        }
        let found = self.find_in_index(key)?;
        if let Some(entry) = &found {
            caches.keys.insert(*id, entry);
        }
        Ok(found)
    }

    /// Finds a partition's index entry: the summary, then at most `SUMMARY_INTERVAL` entries
    /// of `Index.db`, then (a sparse index) the partitions of the data stream between the last
    /// entry before the key and the next one, usually one chunk.
    fn find_in_index(self: &Arc<Self>, key: &DecoratedKey) -> Result<Option<IndexEntry>> {
        let i = self.summary.partition_point(|(k, _)| k <= key);
        if i == 0 {
            return Ok(None);
        }
        let entries = self.entries();
        let mut cursor = self.summary[i - 1].1;
        let end = self.summary.get(i).map_or(self.index_end, |(_, c)| c.offset);
        if self.index_version < 4 {
            // Dense: the key, if here, has an entry between this summary entry and the next.
            // Compare keys for equality only, so versions 2 and 3 (no stored tokens) need no
            // hashing here.
            while cursor.offset < end {
                let (found, next) = IndexEntry::key_matches_at(entries, self.index_version, cursor, &key.key)
                    .map_err(|e| self.index_corruption(e))?;
                if found {
                    return self.entry_here(cursor).map(Some);
                }
                cursor = next;
            }
            return Ok(None);
        }
        // The last entry at or before the key (the summary entry is one; entries store tokens,
        // so this hashes nothing).
        let mut before = cursor;
        while cursor.offset < end {
            let (ordering, next) = IndexEntry::compare_at(entries, self.index_version, cursor, key)
                .map_err(|e| self.index_corruption(e))?;
            match ordering {
                std::cmp::Ordering::Equal => return self.entry_here(cursor).map(Some),
                std::cmp::Ordering::Greater => break,
                std::cmp::Ordering::Less => before = cursor,
            }
            cursor = next;
        }
        let (position, length, after) = self.extent_at(before)?;
        let limit = self.next_entry_position(after)?;
        let mut data = DataCursor::new(Arc::clone(self), position + length, limit, true);
        let mut scratch = Vec::new();
        while data.pos < limit {
            let start = data.pos;
            let length = data.skip_partition(&mut scratch)?;
            if scratch[..] == key.key[..] {
                return Ok(Some(IndexEntry {
                    key: key.clone(),
                    position: start,
                    length,
                    blocks: Vec::new(),
                }));
            }
        }
        Ok(None)
    }

    /// The whole entry at `cursor`.
    fn entry_here(&self, cursor: IndexCursor) -> Result<IndexEntry> {
        IndexEntry::decode_at(self.entries(), self.index_version, cursor, false)
            .map(|(e, _)| e)
            .map_err(|e| self.index_corruption(e))
    }

    /// Position and length of the partition of the entry at `cursor`, and the cursor after it.
    fn extent_at(&self, cursor: IndexCursor) -> Result<(u64, u64, IndexCursor)> {
        IndexEntry::extent_at(self.entries(), self.index_version, cursor)
            .map_err(|e| self.index_corruption(e))
    }

    /// The data position of the entry at `cursor`, or the end of the stream past the last.
    fn next_entry_position(&self, cursor: IndexCursor) -> Result<u64> {
        if cursor.offset >= self.index_end {
            return Ok(self.chunks.uncompressed_len);
        }
        Ok(self.extent_at(cursor)?.0)
    }

    /// The entries of `Index.db` (without the checksum of versions 3 and 4).
    fn entries(&self) -> &[u8] {
        &self.index[..self.index_end]
    }

    /// Cursor at the first partition inside `start` (past the last partition if none).
    pub fn seek(self: &Arc<Self>, start: RangeBound<&DecoratedKey>) -> Result<IndexCursor> {
        let end = IndexCursor { offset: self.index_end, position: self.chunks.uncompressed_len };
        let (RangeBound::Included(k) | RangeBound::Excluded(k)) = start else {
            return Ok(IndexCursor { offset: INDEX_HEADER_BYTES, position: 0 });
        };
        let inside = |ordering: std::cmp::Ordering| match start {
            RangeBound::Included(_) => ordering != std::cmp::Ordering::Less,
            _ => ordering == std::cmp::Ordering::Greater,
        };
        let i = self.summary.partition_point(|(s, _)| s <= k).saturating_sub(1);
        let Some((_, mut cursor)) = self.summary.get(i).cloned() else { return Ok(end) };
        // The first entry inside; `cursor` then also carries the end of the last one before it.
        let mut any_before = false;
        while cursor.offset < self.index_end {
            let (ordering, next) = IndexEntry::compare_at(self.entries(), self.index_version, cursor, k)
                .map_err(|e| self.index_corruption(e))?;
            if inside(ordering) {
                break;
            }
            any_before = true;
            cursor = next;
        }
        if !any_before {
            return Ok(cursor);
        }
        // Partitions without an entry between the last entry before and the first inside (none
        // in a dense index): the first of them inside starts the walk.
        let limit = self.next_entry_position(cursor)?;
        let mut data = DataCursor::new(Arc::clone(self), cursor.position, limit, true);
        let mut scratch = Vec::new();
        while data.pos < limit {
            let start_pos = data.pos;
            data.skip_partition(&mut scratch)?;
            let token = crate::token::Token::of_key(&scratch);
            if inside(token.cmp(&k.token).then_with(|| scratch[..].cmp(&k.key[..]))) {
                return Ok(IndexCursor { offset: cursor.offset, position: start_pos });
            }
        }
        Ok(IndexCursor { offset: cursor.offset, position: limit })
    }

    /// The partition at `cursor` (from [`SsTable::seek`] or a previous call) and the cursor of
    /// the next one; `None` past the last partition. A partition without an index entry is
    /// read from the data: `chunk` carries the chunk last decompressed (a [`RowCursor`] of
    /// this SSTable, as [`SsTable::read_header_after`] takes) and is replaced by this read's;
    /// chunks are added to the chunk cache when `populate_cache` is set.
    pub fn entry_at(
        self: &Arc<Self>,
        cursor: IndexCursor,
        chunk: &mut Option<RowCursor>,
        populate_cache: bool,
    ) -> Result<Option<(IndexEntry, IndexCursor)>> {
        let limit = if cursor.offset < self.index_end {
            let (position, _, _) = self.extent_at(cursor)?;
            if position == cursor.position {
                return IndexEntry::decode_at(self.entries(), self.index_version, cursor, false)
                    .map(Some)
                    .map_err(|e| self.index_corruption(e));
            }
            if position < cursor.position {
                return Err(self.index_corruption(DecodeError {
                    offset: cursor.offset,
                    reason: "index entry starts inside the partition before it".into(),
                }));
            }
            position
        } else if cursor.position >= self.chunks.uncompressed_len {
            return Ok(None);
        } else {
            self.chunks.uncompressed_len
        };
        let mut data = DataCursor::new(Arc::clone(self), cursor.position, limit, populate_cache);
        if let Some(p) = chunk.as_ref().filter(|p| Arc::ptr_eq(&p.cursor.table, self)) {
            data.chunk_index = p.cursor.chunk_index;
            data.chunk = Arc::clone(&p.cursor.chunk);
        }
        let mut key = Vec::new();
        let length = data.skip_partition(&mut key)?;
        *chunk = Some(RowCursor { cursor: data, rows_start: cursor.position });
        let entry = IndexEntry {
            key: DecoratedKey::new(bytes::Bytes::from(key)),
            position: cursor.position,
            length,
            blocks: Vec::new(),
        };
        Ok(Some((entry, IndexCursor { offset: cursor.offset, position: cursor.position + length })))
    }

    /// Every partition key in order (for verification and tools).
    pub fn keys(self: &Arc<Self>) -> Result<Vec<DecoratedKey>> {
        let mut out = Vec::with_capacity(self.stats.partition_count as usize);
        let mut cursor = IndexCursor { offset: INDEX_HEADER_BYTES, position: 0 };
        let mut chunk = None;
        while let Some((e, next)) = self.entry_at(cursor, &mut chunk, false)? {
            out.push(e.key);
            cursor = next;
        }
        Ok(out)
    }

    /// Reads a partition's header; returns it and a cursor positioned at its first row entry
    /// (keeping the chunk it already decompressed), to hand to [`SsTableRows::new`].
    pub fn read_header(self: &Arc<Self>, entry: &IndexEntry) -> Result<(PartitionHeader, RowCursor)> {
        self.read_header_after(entry, None)
    }

    /// Like [`SsTable::read_header`], reusing the chunk `previous` (a cursor of this SSTable)
    /// has decompressed when the partition starts in it: a scan reads neighbouring partitions
    /// without decompressing their shared chunk again.
    pub fn read_header_after(
        self: &Arc<Self>,
        entry: &IndexEntry,
        previous: Option<&RowCursor>,
    ) -> Result<(PartitionHeader, RowCursor)> {
        self.read_header_with(entry, previous, true)
    }

    /// [`SsTable::read_header_after`] for compaction: chunks found in the chunk cache are used,
    /// but the chunks it decompresses are not added to it.
    pub fn read_header_uncached(
        self: &Arc<Self>,
        entry: &IndexEntry,
        previous: Option<&RowCursor>,
    ) -> Result<(PartitionHeader, RowCursor)> {
        self.read_header_with(entry, previous, false)
    }

    fn read_header_with(
        self: &Arc<Self>,
        entry: &IndexEntry,
        previous: Option<&RowCursor>,
        populate_cache: bool,
    ) -> Result<(PartitionHeader, RowCursor)> {
        let end = entry.position + entry.length;
        let mut c = DataCursor::new(Arc::clone(self), entry.position, end, populate_cache);
        if let Some(p) = previous.filter(|p| Arc::ptr_eq(&p.cursor.table, self)) {
            c.chunk_index = p.cursor.chunk_index;
            c.chunk = Arc::clone(&p.cursor.chunk);
        }
        let key = c.read_len_prefixed(MAX_PARTITION_KEY_BYTES as u64)?;
        if key != entry.key.key {
            return Err(c.corruption("partition key in the data does not match the index"));
        }
        let header_bytes = c.read_len_prefixed(MAX_HEADER_BYTES)?;
        let mut r = Reader::new(&header_bytes);
        let header = if header_bytes.is_empty() && matches!(self.row_encoding, RowEncoding::V3 { .. }) {
            PartitionHeader::default()
        } else {
            decode_header_with(&mut r, self.row_encoding).map_err(|e| c.corruption(&e.to_string()))?
        };
        if !r.is_empty() {
            return Err(c.corruption("trailing bytes after the partition header"));
        }
        let rows_start = c.pos;
        Ok((header, RowCursor { cursor: c, rows_start }))
    }
}

/// A position at the first row of a partition, with the chunk there already decompressed.
#[derive(Debug, Clone)]
pub struct RowCursor {
    cursor: DataCursor,
    rows_start: u64,
}

/// A cursor over the uncompressed data stream, decompressing one chunk at a time.
#[derive(Debug, Clone)]
struct DataCursor {
    table: Arc<SsTable>,
    pos: u64,
    end: u64,
    chunk_index: usize,
    /// The decompressed chunk, shared by clones of the cursor.
    chunk: Arc<Vec<u8>>,
    /// Whether chunks it decompresses go into the chunk cache (not for compaction, whose
    /// one-pass reads would evict what readers use).
    populate_cache: bool,
}

impl DataCursor {
    fn new(table: Arc<SsTable>, pos: u64, end: u64, populate_cache: bool) -> DataCursor {
        DataCursor { table, pos, end, chunk_index: usize::MAX, chunk: Arc::new(Vec::new()), populate_cache }
    }

    fn corruption(&self, reason: &str) -> Error {
        Error::corruption(
            self.table.desc.path(Component::Data),
            self.pos,
            format!("{reason} (offset is in the uncompressed stream)"),
        )
    }

    fn load(&mut self, index: usize) -> Result<()> {
        if self.chunk_index == index {
            return Ok(());
        }
        if index >= self.table.chunks.offsets.len() {
            return Err(self.corruption("read past the last chunk"));
        }
        let t = Arc::clone(&self.table);
        let cache = t.cache.get().map(|(c, id)| (&c.chunks, id));
        let chunk_no = u32::try_from(index).unwrap_or(u32::MAX);
        if let Some((cache, id)) = cache {
            if let Some(chunk) = cache.get(*id, chunk_no) {
                self.chunk = chunk;
                self.chunk_index = index;
                return Ok(());
            }
        }
        self.table.chunks_read.fetch_add(1, Ordering::Relaxed);
        self.chunk_index = usize::MAX;
        // Reuse the buffer when no clone shares it.
        let buf = match Arc::get_mut(&mut self.chunk) {
            Some(v) => v,
            None => {
                self.chunk = Arc::new(Vec::new());
                Arc::make_mut(&mut self.chunk)
            }
        };
        t.chunks
            .read_chunk(&t.data, index, buf)
            .map_err(|(offset, reason)| Error::corruption(t.desc.path(Component::Data), offset, reason))?;
        self.chunk_index = index;
        if let Some((cache, id)) = cache.filter(|_| self.populate_cache) {
            cache.insert(*id, chunk_no, Arc::clone(&self.chunk));
        }
        Ok(())
    }

    fn read_into(&mut self, out: &mut Vec<u8>, mut len: u64) -> Result<()> {
        if self.pos + len > self.end {
            return Err(self.corruption("length runs past the end of the partition"));
        }
        let size = u64::from(self.table.chunks.chunk_size);
        while len > 0 {
            self.load((self.pos / size) as usize)?;
            let within = (self.pos % size) as usize;
            let available = self.chunk.len().saturating_sub(within);
            if available == 0 {
                return Err(self.corruption("chunk shorter than the chunk map says"));
            }
            let take = (available as u64).min(len) as usize;
            out.extend_from_slice(&self.chunk[within..within + take]);
            self.pos += take as u64;
            len -= take as u64;
        }
        Ok(())
    }

    fn read_byte(&mut self) -> Result<u8> {
        if self.pos >= self.end {
            return Err(self.corruption("length runs past the end of the partition"));
        }
        let size = u64::from(self.table.chunks.chunk_size);
        self.load((self.pos / size) as usize)?;
        let within = (self.pos % size) as usize;
        let Some(&b) = self.chunk.get(within) else {
            return Err(self.corruption("chunk shorter than the chunk map says"));
        };
        self.pos += 1;
        Ok(b)
    }

    fn read_varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.read_byte()?;
            if i == 9 && b > 1 {
                return Err(self.corruption("varint overflows 64 bits"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.corruption("varint longer than 10 bytes"))
    }

    fn read_len_prefixed(&mut self, max: u64) -> Result<Vec<u8>> {
        let len = self.read_varint()?;
        if len > max || self.pos + len > self.end {
            return Err(self.corruption(&format!("length {len} exceeds the limit or the partition")));
        }
        let mut out = Vec::with_capacity(len as usize);
        self.read_into(&mut out, len)?;
        Ok(out)
    }

    /// Moves `len` bytes on without reading them.
    fn skip(&mut self, len: u64, max: u64) -> Result<()> {
        if len > max || self.pos + len > self.end {
            return Err(self.corruption(&format!("length {len} exceeds the limit or the partition")));
        }
        self.pos += len;
        Ok(())
    }

    /// Reads the key of the partition starting here into `key` and moves past the partition
    /// (its header and row entries are skipped by their lengths); returns its length.
    fn skip_partition(&mut self, key: &mut Vec<u8>) -> Result<u64> {
        if let Some(length) = self.skip_partition_in_chunk(key)? {
            self.pos += length;
            return Ok(length);
        }
        let start = self.pos;
        let len = self.read_varint()?;
        if len > MAX_PARTITION_KEY_BYTES as u64 || self.pos + len > self.end {
            return Err(self.corruption(&format!("partition key length {len} is out of bounds")));
        }
        key.clear();
        self.read_into(key, len)?;
        let header = self.read_varint()?;
        self.skip(header, MAX_HEADER_BYTES)?;
        loop {
            let row = self.read_varint()?;
            if row == 0 {
                return Ok(self.pos - start);
            }
            self.skip(row, MAX_ROW_BYTES)?;
        }
    }

    /// [`Self::skip_partition`] for a partition that lies whole inside the loaded chunk,
    /// parsed from the chunk's bytes in place: `None` (nothing consumed) when it does not, or
    /// when anything in it is out of bounds, for the byte-by-byte path to read or report.
    fn skip_partition_in_chunk(&mut self, key: &mut Vec<u8>) -> Result<Option<u64>> {
        let size = u64::from(self.table.chunks.chunk_size);
        self.load((self.pos / size) as usize)?;
        let within = (self.pos % size) as usize;
        let until_end = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX);
        let Some(bytes) = self.chunk.get(within..self.chunk.len().min(within.saturating_add(until_end)))
        else {
            return Ok(None);
        };
        let mut r = Reader::new(bytes);
        let parsed = (|| -> crate::codec::DecodeResult<()> {
            let k = r.len_prefixed(MAX_PARTITION_KEY_BYTES)?;
            key.clear();
            key.extend_from_slice(k);
            r.len_prefixed(MAX_HEADER_BYTES as usize)?;
            loop {
                let row = r.len(MAX_ROW_BYTES as usize)?;
                if row == 0 {
                    return Ok(());
                }
                r.bytes(row)?;
            }
        })();
        Ok(parsed.ok().map(|()| r.position() as u64))
    }

    /// The next row entry, or `None` at the partition's end marker.
    fn next_row(&mut self) -> Result<Option<Row>> {
        let bytes = self.read_len_prefixed(MAX_ROW_BYTES)?;
        if bytes.is_empty() {
            return Ok(None);
        }
        let mut r = Reader::new(&bytes);
        let row =
            decode_row_with(&mut r, self.table.row_encoding).map_err(|e| self.corruption(&e.to_string()))?;
        if !r.is_empty() {
            return Err(self.corruption("trailing bytes after a row"));
        }
        Ok(Some(row))
    }
}

/// Rows of one partition of one SSTable inside a slice, forward or reversed, reading only the
/// row-index blocks the slice needs and holding at most one block in memory.
#[derive(Debug)]
pub struct SsTableRows {
    cursor: DataCursor,
    entry: IndexEntry,
    slice: Slice,
    reversed: bool,
    done: bool,
    /// Reversed reads: rows of the current block, popped from the end.
    buffer: Vec<Row>,
    /// Reversed reads over a row index: the next block to load (counting down).
    next_block: Option<usize>,
    rows_start: u64,
    last: Option<bytes::Bytes>,
}

impl SsTableRows {
    /// Starts reading `entry`'s rows inside `slice` from the cursor [`SsTable::read_header`]
    /// returned.
    pub fn new(start: RowCursor, entry: IndexEntry, slice: Slice, reversed: bool) -> SsTableRows {
        let RowCursor { mut cursor, rows_start } = start;
        let mut done = slice.is_empty();
        let mut next_block = None;
        if !entry.blocks.is_empty() {
            if reversed {
                let n = entry.blocks.partition_point(|b| b.first.as_ref() < slice.end.0.as_ref());
                if n == 0 {
                    done = true;
                } else {
                    next_block = Some(n - 1);
                }
            } else {
                let b = entry.blocks.partition_point(|b| b.last.as_ref() < slice.start.0.as_ref());
                match entry.blocks.get(b) {
                    Some(block) => cursor.pos = entry.position + block.offset,
                    None => done = true,
                }
            }
        }
        SsTableRows {
            cursor,
            entry,
            slice,
            reversed,
            done,
            buffer: Vec::new(),
            next_block,
            rows_start,
            last: None,
        }
    }

    /// The next row inside the slice.
    pub fn next_row(&mut self) -> Result<Option<Row>> {
        let row = if self.reversed { self.next_reversed()? } else { self.next_forward()? };
        if let Some(r) = &row {
            let ordered = self.last.as_ref().is_none_or(|l| {
                if self.reversed {
                    *l > r.clustering
                } else {
                    *l < r.clustering
                }
            });
            if !ordered {
                return Err(self.cursor.corruption("rows out of clustering order"));
            }
            self.last = Some(r.clustering.clone());
        }
        Ok(row)
    }

    fn next_forward(&mut self) -> Result<Option<Row>> {
        while !self.done {
            match self.cursor.next_row()? {
                None => self.done = true,
                Some(row) if row.clustering.as_ref() < self.slice.start.0.as_ref() => {}
                Some(row) if row.clustering.as_ref() > self.slice.end.0.as_ref() => self.done = true,
                Some(row) => return Ok(Some(row)),
            }
        }
        Ok(None)
    }

    fn next_reversed(&mut self) -> Result<Option<Row>> {
        loop {
            if let Some(row) = self.buffer.pop() {
                return Ok(Some(row));
            }
            if self.done {
                return Ok(None);
            }
            if self.entry.blocks.is_empty() {
                // A narrow partition (under one block): read it whole.
                self.cursor.pos = self.rows_start;
                while let Some(row) = self.cursor.next_row()? {
                    if self.slice.contains(&row.clustering) {
                        self.buffer.push(row);
                    }
                }
                self.done = true;
                continue;
            }
            let Some(b) = self.next_block else {
                self.done = true;
                continue;
            };
            let block = self.entry.blocks[b].clone();
            self.cursor.pos = self.entry.position + block.offset;
            let block_end = self.cursor.pos + block.width;
            while self.cursor.pos < block_end {
                match self.cursor.next_row()? {
                    Some(row) => {
                        if self.slice.contains(&row.clustering) {
                            self.buffer.push(row);
                        }
                    }
                    None => return Err(self.cursor.corruption("partition ends inside a row-index block")),
                }
            }
            self.next_block = match b.checked_sub(1) {
                Some(prev) if self.entry.blocks[prev].last.as_ref() > self.slice.start.0.as_ref() => {
                    Some(prev)
                }
                _ => None,
            };
            if self.next_block.is_none() {
                self.done = true;
            }
        }
    }
}
