//! Binary encodings of rows, partition headers and mutations, shared by the commit log and
//! SSTables. Grammar of both versions in `docs/format/rows.md`.
//!
//! Version 1 stores every timestamp and deletion at fixed width. Version 2 (written today)
//! stores timestamps as zigzag varints relative to a base (the SSTable's or the mutation's
//! smallest timestamp), lets a cell share the timestamp before it in its row, and marks a live
//! partition header and an empty collection-deletion list with flag bits, as Cassandra's
//! 3.0 storage format does. Version 1 is still read everywhere it was written.
//!
//! ```text
//! version 1
//! deletion   := marked_for_delete_at i64le | local_deletion_time u32le
//! row        := clustering:lenbytes | flags u8 | [liveness] | [deletion] | cells | complex
//!   flags: 0x01 has liveness, 0x02 has deletion, 0x04 liveness has ttl
//!   liveness := timestamp i64le | [ttl varint | local_expiration_time varint]
//!   cells    := count varint | cell*
//!   complex  := count varint | (column varint | deletion)*
//! cell       := flags u8 | column varint | [path:lenbytes] | timestamp i64le | [ttl varint]
//!               | [local_deletion_time varint] | value:lenbytes
//!   flags: 0x01 has path, 0x02 has ttl, 0x04 has local_deletion_time
//! header     := deletion | has_static u8 | [row] | rt_count varint | (start:lenbytes end:lenbytes deletion)*
//! mutation   := version u8 (=1) | table_id 16 bytes | key:lenbytes | header | row_count varint | row*
//! lenbytes   := len varint | bytes
//!
//! version 2 (ts := zigzag varint of timestamp - base, wrapping)
//! deletion2  := ts | local_deletion_time varint
//! row2       := clustering:lenbytes | flags u8 | [ts | [ttl varint | local_expiration_time varint]]
//!               | [deletion2] | count varint | cell2* | [count varint | (column varint | deletion2)*]
//!   flags: 0x01 has liveness, 0x02 has deletion, 0x04 liveness has ttl, 0x08 has collection deletions
//! cell2      := flags u8 | column varint | [path:lenbytes] | [ts] | [ttl varint]
//!               | [local_deletion_time varint] | value:lenbytes
//!   flags: 0x01 has path, 0x02 has ttl, 0x04 has local_deletion_time, 0x08 same timestamp as
//!          the previous one in the row (the base, then the liveness timestamp, then each
//!          cell's): ts omitted
//! header2    := flags u8 | [deletion2] | [row2] | [rt_count varint | (start:lenbytes end:lenbytes deletion2)*]
//!   flags: 0x01 partition deleted, 0x02 has static row, 0x04 has range tombstones
//! mutation2  := version u8 (=3; 2 marks a batch record) | table_id 16 bytes | key:lenbytes | base zigzag varint | header2
//!               | row_count varint | row2*
//! ```

use bytes::Bytes;

use crate::cell::{Cell, DeletionTime, LivenessInfo, NO_DELETION_TIME, NO_TTL};
use crate::clustering::{Bound, Slice, MAX_CLUSTERING_BYTES};
use crate::codec::{put_len_prefixed, put_varint, DecodeResult, Reader};
use crate::ids::{ColumnId, TableId};
use crate::partition::{PartitionHeader, PartitionUpdate, RangeTombstone, MAX_PARTITION_KEY_BYTES};
use crate::row::Row;

/// Version byte of the mutation encoding written today: row encoding version 2 (see the module
/// docs; the byte 2 marks a batch record, so mutations skip it). Version 1 is still decoded.
pub const MUTATION_VERSION: u8 = 3;
/// First byte of a commit log record holding several mutations applied atomically (a logged
/// batch): `2 | count varint | (len varint | mutation)*`.
pub const BATCH_RECORD: u8 = 2;
/// Most mutations in one batch record.
pub const MAX_BATCH_MUTATIONS: usize = 65_535;
/// Largest single cell value (Cassandra's practical limit is 2 GiB; we bound at 256 MiB).
pub const MAX_VALUE_BYTES: usize = 256 << 20;

const ROW_HAS_LIVENESS: u8 = 0x01;
const ROW_HAS_DELETION: u8 = 0x02;
const ROW_LIVENESS_TTL: u8 = 0x04;
const CELL_HAS_PATH: u8 = 0x01;
const CELL_HAS_TTL: u8 = 0x02;
const CELL_HAS_LDT: u8 = 0x04;
/// Version 2: the row carries collection deletions (else their count is omitted).
const ROW_HAS_COMPLEX: u8 = 0x08;
/// Version 3: the row's clustering is the empty key of a table without clustering columns
/// ([`crate::clustering::empty_key`]) and is not stored.
pub const ROW_EMPTY_CLUSTERING: u8 = 0x10;
/// Version 2: the cell's timestamp equals the previous timestamp of its row and is omitted.
const CELL_SAME_TIMESTAMP: u8 = 0x08;
const HEADER_DELETED: u8 = 0x01;
const HEADER_HAS_STATIC: u8 = 0x02;
const HEADER_HAS_RANGE_TOMBSTONES: u8 = 0x04;

/// How rows and partition headers are encoded (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowEncoding {
    /// Fixed-width timestamps and deletions (mutation version 1, `Data.db` version 1, and the
    /// internode read responses).
    V1,
    /// Timestamps as zigzag varints relative to `base`.
    V2 {
        /// Subtracted from every timestamp before it is encoded.
        base: i64,
    },
    /// Encoding 2 with the row flags before the clustering, which the flag
    /// [`ROW_EMPTY_CLUSTERING`] omits for a table without clustering columns (`Data.db`
    /// version 3, commit log update records).
    V3 {
        /// Subtracted from every timestamp before it is encoded.
        base: i64,
    },
}

fn put_timestamp(out: &mut Vec<u8>, ts: i64, base: i64) {
    let d = ts.wrapping_sub(base);
    put_varint(out, ((d << 1) ^ (d >> 63)) as u64);
}

fn read_timestamp(r: &mut Reader<'_>, base: i64) -> DecodeResult<i64> {
    let z = r.varint()?;
    let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
    Ok(d.wrapping_add(base))
}

/// A write of one partition of one table: the unit logged and applied atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    /// Target table.
    pub table: TableId,
    /// What to write.
    pub update: PartitionUpdate,
}

impl Mutation {
    /// Encodes the mutation (commit-log payload) at [`MUTATION_VERSION`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(MUTATION_VERSION);
        out.extend_from_slice(self.table.as_bytes());
        put_len_prefixed(out, &self.update.key);
        let base = update_base(&self.update);
        put_timestamp(out, base, 0);
        encode_update_rows(&self.update, RowEncoding::V2 { base }, out);
    }

    /// Encodes the mutation at version 1 (what older commit logs, hints and peers hold).
    pub fn encode_v1(&self, out: &mut Vec<u8>) {
        out.push(1);
        out.extend_from_slice(self.table.as_bytes());
        put_len_prefixed(out, &self.update.key);
        encode_header(&self.update.header, out);
        put_varint(out, self.update.rows.len() as u64);
        for row in &self.update.rows {
            encode_row(row, out);
        }
    }

    /// Decodes a mutation of version 1 or 2; never panics on any input.
    pub fn decode(bytes: &[u8]) -> DecodeResult<Mutation> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != 1 && version != MUTATION_VERSION {
            return Err(r.error(format!("unknown mutation version {version}")));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(r.bytes(16)?);
        let table = TableId(uuid::Uuid::from_bytes(id));
        let key = Bytes::copy_from_slice(r.len_prefixed(MAX_PARTITION_KEY_BYTES)?);
        let encoding =
            if version == 1 { RowEncoding::V1 } else { RowEncoding::V2 { base: read_timestamp(&mut r, 0)? } };
        Ok(Mutation { table, update: decode_update_rows(&mut r, key, encoding)? })
    }
}

/// The timestamp an update's encoding 2 is relative to: its smallest (0 if it has none).
#[must_use]
pub fn update_base(update: &PartitionUpdate) -> i64 {
    let min = update.rows.iter().fold(update.header.min_timestamp(), |m, r| m.min(r.min_timestamp()));
    if min == i64::MAX {
        0
    } else {
        min
    }
}

fn encode_update_rows(update: &PartitionUpdate, encoding: RowEncoding, out: &mut Vec<u8>) {
    encode_header_with(&update.header, encoding, out);
    put_varint(out, update.rows.len() as u64);
    for row in &update.rows {
        encode_row_with(row, encoding, out);
    }
}

fn decode_update_rows(
    r: &mut Reader<'_>,
    key: Bytes,
    encoding: RowEncoding,
) -> DecodeResult<PartitionUpdate> {
    let header = decode_header_with(r, encoding)?;
    let n = r.count(2)?;
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        rows.push(decode_row_with(r, encoding)?);
    }
    if !r.is_empty() {
        return Err(r.error("trailing bytes after mutation"));
    }
    Ok(PartitionUpdate { key, header, rows })
}

/// Encodes a partition update without its table and base, as a commit log `update` record
/// carries it (`partition_key:lenbytes | header2 | row_count varint | row3*`), relative to
/// [`update_base`], which it returns.
pub fn encode_update(update: &PartitionUpdate, out: &mut Vec<u8>) -> i64 {
    put_len_prefixed(out, &update.key);
    let base = update_base(update);
    encode_update_rows(update, RowEncoding::V3 { base }, out);
    base
}

/// Decodes what [`encode_update`] wrote, given its base; never panics on any input.
pub fn decode_update(bytes: &[u8], base: i64) -> DecodeResult<PartitionUpdate> {
    let mut r = Reader::new(bytes);
    let key = Bytes::copy_from_slice(r.len_prefixed(MAX_PARTITION_KEY_BYTES)?);
    decode_update_rows(&mut r, key, RowEncoding::V3 { base })
}

/// Encodes several mutations as one commit log record: replay applies all of them or, if the
/// record is torn or damaged, none.
pub fn encode_batch(mutations: &[Mutation], out: &mut Vec<u8>) {
    assert!(mutations.len() <= MAX_BATCH_MUTATIONS, "batch of {} mutations", mutations.len());
    out.push(BATCH_RECORD);
    put_varint(out, mutations.len() as u64);
    let mut one = Vec::new();
    for m in mutations {
        one.clear();
        m.encode(&mut one);
        put_len_prefixed(out, &one);
    }
}

/// Decodes a commit log record: one mutation, or a batch of them.
pub fn decode_record(bytes: &[u8]) -> DecodeResult<Vec<Mutation>> {
    match bytes.first() {
        Some(&BATCH_RECORD) => {
            let mut r = Reader::new(bytes);
            r.u8()?;
            let n = r.count(1)?;
            if n > MAX_BATCH_MUTATIONS {
                return Err(r.error(format!("batch record of {n} mutations exceeds {MAX_BATCH_MUTATIONS}")));
            }
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let m = r.len_prefixed(bytes.len())?;
                out.push(Mutation::decode(m)?);
            }
            if !r.is_empty() {
                return Err(r.error("trailing bytes after batch record"));
            }
            Ok(out)
        }
        _ => Ok(vec![Mutation::decode(bytes)?]),
    }
}

fn encode_deletion(d: &DeletionTime, encoding: RowEncoding, out: &mut Vec<u8>) {
    match encoding {
        RowEncoding::V1 => {
            out.extend_from_slice(&d.marked_for_delete_at.to_le_bytes());
            out.extend_from_slice(&d.local_deletion_time.to_le_bytes());
        }
        RowEncoding::V2 { base } | RowEncoding::V3 { base } => {
            put_timestamp(out, d.marked_for_delete_at, base);
            put_varint(out, u64::from(d.local_deletion_time));
        }
    }
}

fn decode_deletion(r: &mut Reader<'_>, encoding: RowEncoding) -> DecodeResult<DeletionTime> {
    Ok(match encoding {
        RowEncoding::V1 => DeletionTime { marked_for_delete_at: r.i64()?, local_deletion_time: r.u32()? },
        RowEncoding::V2 { base } | RowEncoding::V3 { base } => DeletionTime {
            marked_for_delete_at: read_timestamp(r, base)?,
            local_deletion_time: r.varint_u32()?,
        },
    })
}

/// What a version 2 cell's shared timestamp refers to before the row has any: the base (a
/// mutation's base is its smallest timestamp, usually every cell's).
fn first_previous(encoding: RowEncoding) -> Option<i64> {
    match encoding {
        RowEncoding::V1 => None,
        RowEncoding::V2 { base } | RowEncoding::V3 { base } => Some(base),
    }
}

fn put_fixed_or_delta(out: &mut Vec<u8>, ts: i64, encoding: RowEncoding) {
    match encoding {
        RowEncoding::V1 => out.extend_from_slice(&ts.to_le_bytes()),
        RowEncoding::V2 { base } | RowEncoding::V3 { base } => put_timestamp(out, ts, base),
    }
}

fn read_fixed_or_delta(r: &mut Reader<'_>, encoding: RowEncoding) -> DecodeResult<i64> {
    match encoding {
        RowEncoding::V1 => r.i64(),
        RowEncoding::V2 { base } | RowEncoding::V3 { base } => read_timestamp(r, base),
    }
}

/// Encodes a row at version 1 (internode read responses).
pub fn encode_row(row: &Row, out: &mut Vec<u8>) {
    encode_row_with(row, RowEncoding::V1, out);
}

/// Encodes a row.
pub fn encode_row_with(row: &Row, encoding: RowEncoding, out: &mut Vec<u8>) {
    let v2 = encoding != RowEncoding::V1;
    let v3 = matches!(encoding, RowEncoding::V3 { .. });
    if !v3 {
        put_len_prefixed(out, &row.clustering);
    }
    let mut flags = 0u8;
    if !row.liveness.is_empty() {
        flags |= ROW_HAS_LIVENESS;
        if row.liveness.is_expiring() {
            flags |= ROW_LIVENESS_TTL;
        }
    }
    if !row.deletion.is_live() {
        flags |= ROW_HAS_DELETION;
    }
    if v2 && !row.complex_deletions.is_empty() {
        flags |= ROW_HAS_COMPLEX;
    }
    let empty_clustering = row.clustering[..] == [crate::clustering::KEY_END];
    if v3 && empty_clustering {
        flags |= ROW_EMPTY_CLUSTERING;
    }
    out.push(flags);
    if v3 && !empty_clustering {
        put_len_prefixed(out, &row.clustering);
    }
    let mut previous = first_previous(encoding);
    if flags & ROW_HAS_LIVENESS != 0 {
        put_fixed_or_delta(out, row.liveness.timestamp, encoding);
        previous = Some(row.liveness.timestamp);
        if flags & ROW_LIVENESS_TTL != 0 {
            put_varint(out, u64::from(row.liveness.ttl));
            put_varint(out, u64::from(row.liveness.local_expiration_time));
        }
    }
    if flags & ROW_HAS_DELETION != 0 {
        encode_deletion(&row.deletion, encoding, out);
    }
    put_varint(out, row.cells.len() as u64);
    for c in &row.cells {
        let mut f = 0u8;
        if c.path.is_some() {
            f |= CELL_HAS_PATH;
        }
        if c.ttl != NO_TTL {
            f |= CELL_HAS_TTL;
        }
        if c.local_deletion_time != NO_DELETION_TIME {
            f |= CELL_HAS_LDT;
        }
        if v2 && previous == Some(c.timestamp) {
            f |= CELL_SAME_TIMESTAMP;
        }
        out.push(f);
        put_varint(out, u64::from(c.column.0));
        if let Some(p) = &c.path {
            put_len_prefixed(out, p);
        }
        if f & CELL_SAME_TIMESTAMP == 0 {
            put_fixed_or_delta(out, c.timestamp, encoding);
        }
        previous = Some(c.timestamp);
        if f & CELL_HAS_TTL != 0 {
            put_varint(out, u64::from(c.ttl));
        }
        if f & CELL_HAS_LDT != 0 {
            put_varint(out, u64::from(c.local_deletion_time));
        }
        put_len_prefixed(out, &c.value);
    }
    if !v2 || flags & ROW_HAS_COMPLEX != 0 {
        put_varint(out, row.complex_deletions.len() as u64);
        for (col, d) in &row.complex_deletions {
            put_varint(out, u64::from(col.0));
            encode_deletion(d, encoding, out);
        }
    }
}

/// Decodes a row of version 1 (internode read responses).
pub fn decode_row(r: &mut Reader<'_>) -> DecodeResult<Row> {
    decode_row_with(r, RowEncoding::V1)
}

/// Decodes a row, validating the invariants the rest of the engine relies on (sorted unique
/// cells, consistent ttl/deletion fields).
pub fn decode_row_with(r: &mut Reader<'_>, encoding: RowEncoding) -> DecodeResult<Row> {
    let v2 = encoding != RowEncoding::V1;
    let v3 = matches!(encoding, RowEncoding::V3 { .. });
    let read_clustering = |r: &mut Reader<'_>| -> DecodeResult<Bytes> {
        Ok(Bytes::copy_from_slice(r.len_prefixed(MAX_CLUSTERING_BYTES)?))
    };
    let clustering = if v3 { Bytes::new() } else { read_clustering(r)? };
    let flags = r.u8()?;
    let known = ROW_HAS_LIVENESS
        | ROW_HAS_DELETION
        | ROW_LIVENESS_TTL
        | if v2 { ROW_HAS_COMPLEX } else { 0 }
        | if v3 { ROW_EMPTY_CLUSTERING } else { 0 };
    if flags & !known != 0 {
        return Err(r.error(format!("unknown row flags {flags:#x}")));
    }
    let clustering = match (v3, flags & ROW_EMPTY_CLUSTERING != 0) {
        (false, _) => clustering,
        (true, true) => crate::clustering::empty_key(),
        (true, false) => read_clustering(r)?,
    };
    if flags & ROW_LIVENESS_TTL != 0 && flags & ROW_HAS_LIVENESS == 0 {
        return Err(r.error("row marker ttl without a row marker"));
    }
    let mut row = Row::new(clustering);
    let mut previous = first_previous(encoding);
    if flags & ROW_HAS_LIVENESS != 0 {
        row.liveness = LivenessInfo::new(read_fixed_or_delta(r, encoding)?);
        previous = Some(row.liveness.timestamp);
        if flags & ROW_LIVENESS_TTL != 0 {
            row.liveness.ttl = r.varint_u32()?;
            row.liveness.local_expiration_time = r.varint_u32()?;
            if row.liveness.ttl == NO_TTL {
                return Err(r.error("expiring row marker with zero ttl"));
            }
        }
    }
    if flags & ROW_HAS_DELETION != 0 {
        row.deletion = decode_deletion(r, encoding)?;
    }
    let n = r.count(if v2 { 3 } else { 11 })?;
    row.cells.reserve(n);
    let cell_flags = CELL_HAS_PATH | CELL_HAS_TTL | CELL_HAS_LDT | if v2 { CELL_SAME_TIMESTAMP } else { 0 };
    for _ in 0..n {
        let f = r.u8()?;
        if f & !cell_flags != 0 {
            return Err(r.error(format!("unknown cell flags {f:#x}")));
        }
        let column = ColumnId(r.varint_u32()?);
        let path = if f & CELL_HAS_PATH != 0 {
            Some(Bytes::copy_from_slice(r.len_prefixed(MAX_VALUE_BYTES)?))
        } else {
            None
        };
        let timestamp = if f & CELL_SAME_TIMESTAMP != 0 {
            previous.ok_or_else(|| r.error("cell shares the previous timestamp in encoding 1"))?
        } else {
            read_fixed_or_delta(r, encoding)?
        };
        previous = Some(timestamp);
        let ttl = if f & CELL_HAS_TTL != 0 { r.varint_u32()? } else { NO_TTL };
        let local_deletion_time = if f & CELL_HAS_LDT != 0 { r.varint_u32()? } else { NO_DELETION_TIME };
        if (ttl != NO_TTL) && local_deletion_time == NO_DELETION_TIME {
            return Err(r.error("cell has a ttl but no expiration time"));
        }
        let value = Bytes::copy_from_slice(r.len_prefixed(MAX_VALUE_BYTES)?);
        let cell = Cell { column, path, timestamp, ttl, local_deletion_time, value };
        if let Some(prev) = row.cells.last() {
            if prev.identity() >= cell.identity() {
                return Err(r.error("cells out of order"));
            }
        }
        row.cells.push(cell);
    }
    if !v2 || flags & ROW_HAS_COMPLEX != 0 {
        let n = r.count(if v2 { 3 } else { 13 })?;
        if v2 && n == 0 {
            return Err(r.error("collection deletion flag with no collection deletions"));
        }
        row.complex_deletions.reserve(n);
        for _ in 0..n {
            let col = ColumnId(r.varint_u32()?);
            let d = decode_deletion(r, encoding)?;
            if row.complex_deletions.last().is_some_and(|(c, _)| *c >= col) {
                return Err(r.error("collection deletions out of order"));
            }
            row.complex_deletions.push((col, d));
        }
    }
    Ok(row)
}

/// Encodes partition-level state at version 1 (internode read responses).
pub fn encode_header(h: &PartitionHeader, out: &mut Vec<u8>) {
    encode_header_with(h, RowEncoding::V1, out);
}

/// Encodes partition-level state.
pub fn encode_header_with(h: &PartitionHeader, encoding: RowEncoding, out: &mut Vec<u8>) {
    if encoding == RowEncoding::V1 {
        encode_deletion(&h.deletion, encoding, out);
        match &h.static_row {
            Some(row) => {
                out.push(1);
                encode_row_with(row, encoding, out);
            }
            None => out.push(0),
        }
        put_varint(out, h.range_tombstones.len() as u64);
    } else {
        let mut flags = 0u8;
        if !h.deletion.is_live() {
            flags |= HEADER_DELETED;
        }
        if h.static_row.is_some() {
            flags |= HEADER_HAS_STATIC;
        }
        if !h.range_tombstones.is_empty() {
            flags |= HEADER_HAS_RANGE_TOMBSTONES;
        }
        out.push(flags);
        if flags & HEADER_DELETED != 0 {
            encode_deletion(&h.deletion, encoding, out);
        }
        if let Some(row) = &h.static_row {
            encode_row_with(row, encoding, out);
        }
        if flags & HEADER_HAS_RANGE_TOMBSTONES != 0 {
            put_varint(out, h.range_tombstones.len() as u64);
        }
    }
    for rt in &h.range_tombstones {
        put_len_prefixed(out, &rt.slice.start.0);
        put_len_prefixed(out, &rt.slice.end.0);
        encode_deletion(&rt.deletion, encoding, out);
    }
}

/// Decodes partition-level state of version 1 (internode read responses).
pub fn decode_header(r: &mut Reader<'_>) -> DecodeResult<PartitionHeader> {
    decode_header_with(r, RowEncoding::V1)
}

/// Decodes partition-level state.
pub fn decode_header_with(r: &mut Reader<'_>, encoding: RowEncoding) -> DecodeResult<PartitionHeader> {
    let (deletion, static_row, n) = if encoding == RowEncoding::V1 {
        let deletion = decode_deletion(r, encoding)?;
        let static_row = match r.u8()? {
            0 => None,
            1 => Some(decode_row_with(r, encoding)?),
            other => return Err(r.error(format!("bad static-row flag {other}"))),
        };
        (deletion, static_row, r.count(14)?)
    } else {
        let flags = r.u8()?;
        if flags & !(HEADER_DELETED | HEADER_HAS_STATIC | HEADER_HAS_RANGE_TOMBSTONES) != 0 {
            return Err(r.error(format!("unknown partition header flags {flags:#x}")));
        }
        let deletion =
            if flags & HEADER_DELETED != 0 { decode_deletion(r, encoding)? } else { DeletionTime::LIVE };
        let static_row =
            if flags & HEADER_HAS_STATIC != 0 { Some(decode_row_with(r, encoding)?) } else { None };
        let n = if flags & HEADER_HAS_RANGE_TOMBSTONES != 0 {
            let n = r.count(4)?;
            if n == 0 {
                return Err(r.error("range tombstone flag with no range tombstones"));
            }
            n
        } else {
            0
        };
        (deletion, static_row, n)
    };
    let mut range_tombstones = Vec::with_capacity(n);
    for _ in 0..n {
        let start = r.len_prefixed(MAX_CLUSTERING_BYTES)?;
        let end = r.len_prefixed(MAX_CLUSTERING_BYTES)?;
        if !Bound::is_valid(start) || !Bound::is_valid(end) {
            return Err(r.error("malformed range tombstone bound"));
        }
        let slice =
            Slice { start: Bound(Bytes::copy_from_slice(start)), end: Bound(Bytes::copy_from_slice(end)) };
        range_tombstones.push(RangeTombstone { slice, deletion: decode_deletion(r, encoding)? });
    }
    Ok(PartitionHeader { deletion, static_row, range_tombstones })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clustering::{ClusteringBuilder, Order};

    pub(crate) fn sample_mutation() -> Mutation {
        let mut b = ClusteringBuilder::new();
        b.push(b"ck", Order::Ascending);
        let mut row = Row::new(b.key());
        row.liveness = LivenessInfo::expiring(10, 60, 1000);
        row.add_cell(Cell::live(ColumnId(1), 10, Bytes::from_static(b"value")));
        row.add_cell(Cell::tombstone(ColumnId(2), 11, 1000));
        row.add_cell(
            Cell::expiring(ColumnId(3), 12, Bytes::from_static(b"e"), 5, 1000)
                .with_path(Bytes::from_static(b"k")),
        );
        row.add_complex_deletion(ColumnId(3), DeletionTime::new(9, 1000));
        let mut del = Row::new(b.key());
        del.deletion = DeletionTime::new(3, 999);
        let mut header = PartitionHeader { deletion: DeletionTime::new(1, 900), ..Default::default() };
        let mut st = Row::new(Bytes::new());
        st.add_cell(Cell::live(ColumnId(9), 4, Bytes::from_static(b"s")));
        header.static_row = Some(st);
        header
            .range_tombstones
            .push(RangeTombstone { slice: Slice::prefix(&b), deletion: DeletionTime::new(2, 950) });
        Mutation {
            table: TableId(uuid::Uuid::from_u128(0x1234)),
            update: PartitionUpdate { key: Bytes::from_static(b"pk"), header, rows: vec![row, del] },
        }
    }

    #[test]
    fn mutations_round_trip() {
        let m = sample_mutation();
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out[0], MUTATION_VERSION);
        assert_eq!(Mutation::decode(&out).unwrap(), m);
        let mut v1 = Vec::new();
        m.encode_v1(&mut v1);
        assert_eq!(v1[0], 1);
        assert_eq!(Mutation::decode(&v1).unwrap(), m, "version 1 still decodes");
        assert!(out.len() < v1.len(), "version 2 rows are smaller: {} against {}", out.len(), v1.len());
    }

    /// Version 2's compact forms: a live header is one byte, a cell sharing the row marker's
    /// timestamp stores none, and timestamps near the base take one or two bytes.
    #[test]
    fn version_2_rows_are_compact_and_exact_at_the_extremes() {
        let mut row = Row::new(Bytes::new());
        row.liveness = LivenessInfo::new(1_700_000_000_000_000);
        row.add_cell(Cell::live(ColumnId(1), 1_700_000_000_000_000, Bytes::from_static(b"v")));
        row.add_cell(Cell::live(ColumnId(2), 1_700_000_000_000_100, Bytes::from_static(b"w")));
        let encoding = RowEncoding::V2 { base: 1_700_000_000_000_000 };
        let mut out = Vec::new();
        encode_row_with(&row, encoding, &mut out);
        // clustering, flags, ts 0, count, (flags, column, "v"), (flags, column, ts 200 as 2 bytes, "w")
        assert_eq!(out.len(), 1 + 1 + 1 + 1 + (1 + 1 + 2) + (1 + 1 + 2 + 2), "{out:02x?}");
        assert_eq!(decode_row_with(&mut Reader::new(&out), encoding).unwrap(), row);
        // Without a row marker, a cell at the base stores no timestamp either.
        let mut bare = Row::new(Bytes::new());
        bare.add_cell(Cell::live(ColumnId(1), 1_700_000_000_000_000, Bytes::from_static(b"v")));
        let mut out = Vec::new();
        encode_row_with(&bare, encoding, &mut out);
        assert_eq!(out, [0, 0, 1, CELL_SAME_TIMESTAMP, 1, 1, b'v']);
        assert_eq!(decode_row_with(&mut Reader::new(&out), encoding).unwrap(), bare);
        let mut header = Vec::new();
        encode_header_with(&PartitionHeader::default(), encoding, &mut header);
        assert_eq!(header, [0], "a live partition header is one flag byte");
        // Timestamps far from the base, deletions at the limits: wrapping arithmetic is exact.
        for ts in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX] {
            for base in [i64::MIN, 0, 1_700_000_000_000_000, i64::MAX] {
                let mut r = Row::new(Bytes::new());
                r.liveness = LivenessInfo::new(ts);
                r.deletion = DeletionTime { marked_for_delete_at: ts, local_deletion_time: u32::MAX - 1 };
                r.add_cell(Cell::tombstone(ColumnId(3), ts, u32::MAX - 1));
                r.add_complex_deletion(ColumnId(4), DeletionTime::new(ts, 0));
                let encoding = RowEncoding::V2 { base };
                let mut out = Vec::new();
                encode_row_with(&r, encoding, &mut out);
                assert_eq!(
                    decode_row_with(&mut Reader::new(&out), encoding).unwrap(),
                    r,
                    "ts {ts} base {base}"
                );
            }
        }
    }

    #[test]
    fn version_2_rejects_flags_that_promise_what_is_not_there() {
        let encoding = RowEncoding::V2 { base: 0 };
        // A collection-deletion flag with an empty list.
        let bad_complex = [0u8, ROW_HAS_COMPLEX, 0, 0];
        assert!(decode_row_with(&mut Reader::new(&bad_complex), encoding).is_err());
        // Unknown header flags, and a range-tombstone flag with none.
        assert!(decode_header_with(&mut Reader::new(&[0x80]), encoding).is_err());
        assert!(decode_header_with(&mut Reader::new(&[HEADER_HAS_RANGE_TOMBSTONES, 0]), encoding).is_err());
        // Version 2's flags mean nothing in version 1.
        let v2_flag = [0u8, ROW_HAS_COMPLEX, 0, 0];
        assert!(decode_row(&mut Reader::new(&v2_flag)).is_err());
    }

    /// Version 3 puts the flags first and stores no clustering for a table without clustering
    /// columns; other clusterings (and the static row's empty one) follow the flags.
    #[test]
    fn version_3_rows_omit_the_empty_clustering_key() {
        let base = 1_700_000_000_000_000;
        let (v2, v3) = (RowEncoding::V2 { base }, RowEncoding::V3 { base });
        for clustering in [
            crate::clustering::empty_key(),
            Bytes::new(),
            Bytes::from_static(&[0x40, 0x80, 0x00, 0x01, 0x38]),
        ] {
            let mut row = Row::new(clustering.clone());
            row.add_cell(Cell::live(ColumnId(1), base + 7, Bytes::from_static(b"value")));
            let (mut a, mut b) = (Vec::new(), Vec::new());
            encode_row_with(&row, v2, &mut a);
            encode_row_with(&row, v3, &mut b);
            assert_eq!(decode_row_with(&mut Reader::new(&b), v3).unwrap(), row, "{clustering:02x?}");
            let saved = if clustering[..] == [crate::clustering::KEY_END] { 2 } else { 0 };
            assert_eq!(a.len(), b.len() + saved, "{clustering:02x?}");
        }
        // The flag means nothing before version 3.
        let flagged = [ROW_EMPTY_CLUSTERING, 0];
        assert!(decode_row_with(&mut Reader::new(&flagged), v3).is_ok());
        assert!(decode_row_with(&mut Reader::new(&[0, ROW_EMPTY_CLUSTERING, 0]), v2).is_err());
        // Updates in the commit log use version 3 and round-trip.
        let update = sample_mutation().update;
        let mut out = Vec::new();
        let base = encode_update(&update, &mut out);
        assert_eq!(decode_update(&out, base).unwrap(), update);
        for len in 0..out.len() {
            assert!(decode_update(&out[..len], base).is_err(), "truncation at {len} decoded");
        }
    }

    #[test]
    fn every_truncation_and_many_byte_flips_decode_without_panicking() {
        let m = sample_mutation();
        let mut v2 = Vec::new();
        m.encode(&mut v2);
        let mut v1 = Vec::new();
        m.encode_v1(&mut v1);
        for out in [v2, v1] {
            for len in 0..out.len() {
                assert!(Mutation::decode(&out[..len]).is_err(), "truncation at {len} decoded");
            }
            for i in 0..out.len() {
                for x in [0x01u8, 0x80, 0xff] {
                    let mut bad = out.clone();
                    bad[i] ^= x;
                    let _ = Mutation::decode(&bad);
                }
            }
        }
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;
    use crate::row::Row;

    fn mutation(i: u8) -> Mutation {
        let mut row = Row::new(crate::clustering::empty_key());
        row.add_cell(crate::cell::Cell::live(crate::ids::ColumnId(1), 5, Bytes::from(vec![i; 3])));
        Mutation {
            table: TableId(uuid::Uuid::from_u128(u128::from(i))),
            update: PartitionUpdate::new(Bytes::from(vec![i])).with_row(row),
        }
    }

    #[test]
    fn batch_records_round_trip_and_single_records_still_decode() {
        let batch = vec![mutation(1), mutation(2), mutation(3)];
        let mut out = Vec::new();
        encode_batch(&batch, &mut out);
        assert_eq!(decode_record(&out).unwrap(), batch);
        let mut one = Vec::new();
        batch[0].encode(&mut one);
        assert_eq!(decode_record(&one).unwrap(), vec![batch[0].clone()]);
        for cut in 0..out.len() {
            assert!(decode_record(&out[..cut]).is_err(), "truncated at {cut}");
        }
    }
}
