//! Writes one SSTable from partitions given in order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use bytes::Bytes;

use super::bloom::BloomFilter;
use super::chunks::{encode_chunk, ChunkMap, DATA_HEADER_BYTES_V2, DATA_MAGIC, DATA_VERSION};
use super::index::{
    IndexEntry, RowIndexBlock, HEADER_BYTES as INDEX_HEADER_BYTES, MAGIC as INDEX_MAGIC,
    VERSION as INDEX_VERSION,
};
use super::stats::Stats;
use super::{bloom_hash, Component, Descriptor};
use crate::codec::{put_len_prefixed, put_varint};
use crate::commitlog::{sync_dir, Position};
use crate::error::{Error, Result};
use crate::partition::{DecoratedKey, PartitionHeader};
use crate::row::Row;
use crate::serialization::{encode_header_with, encode_row_with, RowEncoding};

/// Knobs for writing.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Uncompressed bytes per chunk (`chunk_length_in_kb`).
    pub chunk_size: u32,
    /// Row bytes per row-index block (`column_index_size`).
    pub row_index_block_bytes: u32,
    /// Bloom filter false-positive chance (`bloom_filter_fp_chance`).
    pub bloom_fp_chance: f64,
    /// Timestamps are stored as varint distances from this base: the smallest timestamp the
    /// SSTable will hold, when known (a memtable's, a compaction's inputs'), keeps them short.
    /// Any value is correct.
    pub timestamp_base: i64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            chunk_size: 16 * 1024,
            row_index_block_bytes: 16 * 1024,
            bloom_fp_chance: 0.01,
            timestamp_base: 0,
        }
    }
}

#[derive(Debug)]
struct OpenPartition {
    entry: IndexEntry,
    block: Option<RowIndexBlock>,
    last_clustering: Option<Bytes>,
    cells: u64,
}

/// Streams partitions into a new SSTable. Nothing is visible until [`SsTableWriter::finish`]
/// publishes the TOC; dropping the writer without finishing deletes the partial files.
#[derive(Debug)]
pub struct SsTableWriter {
    desc: Descriptor,
    options: WriterOptions,
    data: BufWriter<File>,
    data_file_len: u64,
    chunk: Vec<u8>,
    stream_pos: u64,
    offsets: Vec<u64>,
    index: BufWriter<File>,
    /// Checksum of everything written to `Index.db`, appended at the end.
    index_crc: crc32fast::Hasher,
    /// Data stream position where the next partition starts (partitions are contiguous).
    next_position: u64,
    /// Chunk in which the last indexed partition starts.
    last_indexed_chunk: Option<u64>,
    scratch: Vec<u8>,
    hashes: Vec<u64>,
    stats: Stats,
    open: Option<OpenPartition>,
    last_key: Option<DecoratedKey>,
    finished: bool,
}

fn create(path: PathBuf) -> Result<BufWriter<File>> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    Ok(BufWriter::with_capacity(256 * 1024, f))
}

impl SsTableWriter {
    /// Creates the component files of a new generation.
    pub fn create(desc: Descriptor, options: WriterOptions) -> Result<SsTableWriter> {
        assert!(options.chunk_size > 0 && options.chunk_size <= super::chunks::MAX_CHUNK_SIZE);
        let mut data = create(desc.path(Component::Data))?;
        let mut index = create(desc.path(Component::Index))?;
        let data_path = desc.path(Component::Data);
        data.write_all(DATA_MAGIC)
            .and_then(|()| data.write_all(&[DATA_VERSION, 0, 0, 0]))
            .and_then(|()| data.write_all(&options.timestamp_base.to_le_bytes()))
            .map_err(|e| Error::io(&data_path, e))?;
        let index_path = desc.path(Component::Index);
        let mut index_crc = crc32fast::Hasher::new();
        let index_header = [INDEX_VERSION, 0, 0, 0];
        index_crc.update(INDEX_MAGIC);
        index_crc.update(&index_header);
        index
            .write_all(INDEX_MAGIC)
            .and_then(|()| index.write_all(&index_header))
            .map_err(|e| Error::io(&index_path, e))?;
        debug_assert_eq!(INDEX_HEADER_BYTES, 8);
        Ok(SsTableWriter {
            desc,
            options,
            data,
            data_file_len: DATA_HEADER_BYTES_V2,
            chunk: Vec::new(),
            stream_pos: 0,
            offsets: Vec::new(),
            index,
            index_crc,
            next_position: 0,
            last_indexed_chunk: None,
            scratch: Vec::new(),
            hashes: Vec::new(),
            stats: Stats::default(),
            open: None,
            last_key: None,
            finished: false,
        })
    }

    /// The descriptor being written.
    #[must_use]
    pub fn descriptor(&self) -> &Descriptor {
        &self.desc
    }

    fn encoding(&self) -> RowEncoding {
        RowEncoding::V3 { base: self.options.timestamp_base }
    }

    fn write_stream(&mut self, mut bytes: &[u8]) -> Result<()> {
        let size = self.options.chunk_size as usize;
        while !bytes.is_empty() {
            let take = (size - self.chunk.len()).min(bytes.len());
            self.chunk.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            self.stream_pos += take as u64;
            if self.chunk.len() == size {
                self.emit_chunk()?;
            }
        }
        Ok(())
    }

    fn emit_chunk(&mut self) -> Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let mut frame = Vec::with_capacity(self.chunk.len() + 8);
        encode_chunk(&self.chunk, &mut frame);
        self.offsets.push(self.data_file_len);
        self.data.write_all(&frame).map_err(|e| Error::io(self.desc.path(Component::Data), e))?;
        self.data_file_len += frame.len() as u64;
        self.chunk.clear();
        Ok(())
    }

    fn note_row_stats(&mut self, row: &Row) {
        self.stats.note_timestamp(row.liveness.timestamp);
        if row.liveness.is_expiring() {
            self.stats.note_local_deletion_time(row.liveness.local_expiration_time);
        } else if !row.liveness.is_empty() {
            self.stats.has_non_expiring_data = true;
        }
        if let Some(open) = self.open.as_mut() {
            open.cells += row.cells.len() as u64;
        }
        if !row.deletion.is_live() {
            self.stats.note_timestamp(row.deletion.marked_for_delete_at);
            self.stats.note_local_deletion_time(row.deletion.local_deletion_time);
            self.stats.tombstone_count += 1;
        }
        for (_, d) in &row.complex_deletions {
            self.stats.note_timestamp(d.marked_for_delete_at);
            self.stats.note_local_deletion_time(d.local_deletion_time);
            self.stats.tombstone_count += 1;
        }
        for c in &row.cells {
            self.stats.cell_count += 1;
            self.stats.note_timestamp(c.timestamp);
            self.stats.note_local_deletion_time(c.local_deletion_time);
            if c.local_deletion_time == crate::cell::NO_DELETION_TIME {
                self.stats.has_non_expiring_data = true;
            }
            if c.is_tombstone() {
                self.stats.tombstone_count += 1;
            }
        }
    }

    /// Starts a partition; keys must be given in increasing order.
    pub fn begin_partition(&mut self, key: &DecoratedKey, header: &PartitionHeader) -> Result<()> {
        assert!(self.open.is_none(), "begin_partition while a partition is open");
        assert!(self.last_key.as_ref().is_none_or(|k| k < key), "partitions must be written in order");
        if self.stats.partition_count == 0 {
            self.stats.min_token = key.token;
            self.stats.first_key = key.key.clone();
        }
        self.stats.max_token = key.token;
        self.stats.last_key = key.key.clone();
        self.stats.partition_count += 1;
        self.hashes.push(bloom_hash(&key.key));
        if !header.deletion.is_live() {
            self.stats.note_timestamp(header.deletion.marked_for_delete_at);
            self.stats.note_local_deletion_time(header.deletion.local_deletion_time);
            self.stats.tombstone_count += 1;
        }
        for rt in &header.range_tombstones {
            self.stats.note_timestamp(rt.deletion.marked_for_delete_at);
            self.stats.note_local_deletion_time(rt.deletion.local_deletion_time);
            self.stats.tombstone_count += 1;
        }
        if let Some(s) = &header.static_row {
            self.note_row_stats(s);
        }
        let position = self.stream_pos;
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        put_len_prefixed(&mut buf, &key.key);
        // A live header with nothing in it is stored as zero bytes (Data.db version 3).
        let mut h = Vec::new();
        if *header != PartitionHeader::default() {
            encode_header_with(header, self.encoding(), &mut h);
        }
        put_len_prefixed(&mut buf, &h);
        self.write_stream(&buf)?;
        self.scratch = buf;
        self.open = Some(OpenPartition {
            entry: IndexEntry { key: key.clone(), position, length: 0, blocks: Vec::new() },
            block: None,
            last_clustering: None,
            cells: 0,
        });
        Ok(())
    }

    /// Adds a row to the open partition; clustering keys must increase.
    pub fn add_row(&mut self, row: &Row) -> Result<()> {
        let block_bytes = u64::from(self.options.row_index_block_bytes);
        let Some(open) = self.open.as_mut() else { panic!("add_row without an open partition") };
        assert!(
            open.last_clustering.as_ref().is_none_or(|c| *c < row.clustering),
            "rows must be written in clustering order"
        );
        let start_rel = self.stream_pos - open.entry.position;
        let block = open.block.get_or_insert_with(|| RowIndexBlock {
            first: row.clustering.clone(),
            last: row.clustering.clone(),
            offset: start_rel,
            width: 0,
        });
        block.last = row.clustering.clone();
        open.last_clustering = Some(row.clustering.clone());
        let mut body = Vec::with_capacity(row.size_bytes());
        encode_row_with(row, self.encoding(), &mut body);
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        put_varint(&mut buf, body.len() as u64);
        buf.extend_from_slice(&body);
        self.write_stream(&buf)?;
        self.scratch = buf;
        self.stats.row_count += 1;
        self.note_row_stats(row);
        if let Some(open) = self.open.as_mut() {
            let end_rel = self.stream_pos - open.entry.position;
            if let Some(b) = open.block.as_mut() {
                b.width = end_rel - b.offset;
                if b.width >= block_bytes {
                    if let Some(done) = open.block.take() {
                        open.entry.blocks.push(done);
                    }
                }
            }
        }
        Ok(())
    }

    /// Closes the open partition and writes its index entry.
    pub fn end_partition(&mut self) -> Result<()> {
        self.write_stream(&[0])?;
        let Some(mut open) = self.open.take() else { panic!("end_partition without an open partition") };
        if let Some(b) = open.block.take() {
            open.entry.blocks.push(b);
        }
        if open.entry.blocks.len() < 2 {
            open.entry.blocks.clear();
        }
        open.entry.length = self.stream_pos - open.entry.position;
        self.stats.cells_per_partition.record(open.cells);
        self.stats.partition_sizes.record(open.entry.length);
        assert_eq!(open.entry.position, self.next_position, "partitions are contiguous in the stream");
        self.next_position = self.stream_pos;
        // The index is sparse: the first partition that starts in each chunk, and every
        // partition with a row index (readers find the others by scanning one chunk).
        let chunk = open.entry.position / u64::from(self.options.chunk_size);
        if !open.entry.blocks.is_empty() || self.last_indexed_chunk != Some(chunk) {
            self.last_indexed_chunk = Some(chunk);
            let mut buf = Vec::new();
            open.entry.encode(&mut buf);
            self.index_crc.update(&buf);
            self.index.write_all(&buf).map_err(|e| Error::io(self.desc.path(Component::Index), e))?;
        }
        self.last_key = Some(open.entry.key);
        Ok(())
    }

    /// Number of partitions written so far.
    #[must_use]
    pub fn partition_count(&self) -> u64 {
        self.stats.partition_count
    }

    /// Bytes of `Data.db` written so far (compressed), for splitting outputs by size.
    #[must_use]
    pub fn data_bytes(&self) -> u64 {
        self.data_file_len
    }

    /// Bytes of the uncompressed stream written so far.
    #[must_use]
    pub fn uncompressed_bytes(&self) -> u64 {
        self.stream_pos
    }

    /// Writes the remaining components, fsyncs everything and publishes the TOC.
    pub fn finish(mut self, commitlog_upper: Position, level: u32) -> Result<Stats> {
        assert!(self.open.is_none(), "finish with a partition open");
        self.emit_chunk()?;
        let map = ChunkMap {
            chunk_size: self.options.chunk_size,
            uncompressed_len: self.stream_pos,
            data_file_len: self.data_file_len,
            offsets: std::mem::take(&mut self.offsets),
        };
        self.stats.commitlog_upper = commitlog_upper;
        self.stats.level = level;
        self.stats.uncompressed_bytes = self.stream_pos;
        self.stats.shrink_drop_times();
        let mut filter = BloomFilter::with_fp_chance(self.hashes.len().max(1), self.options.bloom_fp_chance);
        for h in &self.hashes {
            filter.insert_hash(*h);
        }
        let mut filter_bytes = Vec::with_capacity(filter.encoded_len());
        filter.encode(&mut filter_bytes);
        let index_crc = std::mem::take(&mut self.index_crc).finalize();
        self.index
            .write_all(&index_crc.to_le_bytes())
            .map_err(|e| Error::io(self.desc.path(Component::Index), e))?;
        for (stream, c) in [(&mut self.data, Component::Data), (&mut self.index, Component::Index)] {
            let path = self.desc.path(c);
            stream.flush().map_err(|e| Error::io(&path, e))?;
            stream.get_ref().sync_all().map_err(|e| Error::io(&path, e))?;
        }
        write_synced(&self.desc.path(Component::CompressionInfo), &map.encode())?;
        write_synced(&self.desc.path(Component::Filter), &filter_bytes)?;
        write_synced(&self.desc.path(Component::Statistics), &self.stats.encode())?;
        sync_dir(&self.desc.dir)?;
        let toc: String = Component::ALL.iter().map(|c| format!("{}\n", c.suffix())).collect();
        let tmp = self.desc.toc_tmp_path();
        write_synced(&tmp, toc.as_bytes())?;
        let toc_path = self.desc.path(Component::Toc);
        std::fs::rename(&tmp, &toc_path).map_err(|e| Error::io(&toc_path, e))?;
        sync_dir(&self.desc.dir)?;
        self.finished = true;
        Ok(self.stats.clone())
    }
}

impl Drop for SsTableWriter {
    fn drop(&mut self) {
        if !self.finished {
            if let Err(e) = self.desc.delete_files() {
                tracing::warn!(error = %e, generation = self.desc.generation.0, "could not delete an abandoned SSTable; it will be removed at next open");
            }
        }
    }
}

/// Writes a whole file and fsyncs it.
pub fn write_synced(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| Error::io(path, e))
}
