//! Binary encodings of rows, partition headers and mutations, shared by the commit log and
//! SSTables. Grammar in `docs/format/rows.md`.
//!
//! ```text
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
//! ```

use bytes::Bytes;

use crate::cell::{Cell, DeletionTime, LivenessInfo, NO_DELETION_TIME, NO_TTL};
use crate::clustering::{Bound, Slice, MAX_CLUSTERING_BYTES};
use crate::codec::{put_len_prefixed, put_varint, DecodeResult, Reader};
use crate::ids::{ColumnId, TableId};
use crate::partition::{PartitionHeader, PartitionUpdate, RangeTombstone, MAX_PARTITION_KEY_BYTES};
use crate::row::Row;

/// Version byte of the mutation encoding.
pub const MUTATION_VERSION: u8 = 1;
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

/// A write of one partition of one table: the unit logged and applied atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    /// Target table.
    pub table: TableId,
    /// What to write.
    pub update: PartitionUpdate,
}

impl Mutation {
    /// Encodes the mutation (commit-log payload).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(MUTATION_VERSION);
        out.extend_from_slice(self.table.as_bytes());
        put_len_prefixed(out, &self.update.key);
        encode_header(&self.update.header, out);
        put_varint(out, self.update.rows.len() as u64);
        for row in &self.update.rows {
            encode_row(row, out);
        }
    }

    /// Decodes a mutation; never panics on any input.
    pub fn decode(bytes: &[u8]) -> DecodeResult<Mutation> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != MUTATION_VERSION {
            return Err(r.error(format!("unknown mutation version {version}")));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(r.bytes(16)?);
        let table = TableId(uuid::Uuid::from_bytes(id));
        let key = Bytes::copy_from_slice(r.len_prefixed(MAX_PARTITION_KEY_BYTES)?);
        let header = decode_header(&mut r)?;
        let n = r.count(2)?;
        let mut rows = Vec::with_capacity(n);
        for _ in 0..n {
            rows.push(decode_row(&mut r)?);
        }
        if !r.is_empty() {
            return Err(r.error("trailing bytes after mutation"));
        }
        Ok(Mutation { table, update: PartitionUpdate { key, header, rows } })
    }
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

fn encode_deletion(d: &DeletionTime, out: &mut Vec<u8>) {
    out.extend_from_slice(&d.marked_for_delete_at.to_le_bytes());
    out.extend_from_slice(&d.local_deletion_time.to_le_bytes());
}

fn decode_deletion(r: &mut Reader<'_>) -> DecodeResult<DeletionTime> {
    Ok(DeletionTime { marked_for_delete_at: r.i64()?, local_deletion_time: r.u32()? })
}

/// Encodes a row.
pub fn encode_row(row: &Row, out: &mut Vec<u8>) {
    put_len_prefixed(out, &row.clustering);
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
    out.push(flags);
    if flags & ROW_HAS_LIVENESS != 0 {
        out.extend_from_slice(&row.liveness.timestamp.to_le_bytes());
        if flags & ROW_LIVENESS_TTL != 0 {
            put_varint(out, u64::from(row.liveness.ttl));
            put_varint(out, u64::from(row.liveness.local_expiration_time));
        }
    }
    if flags & ROW_HAS_DELETION != 0 {
        encode_deletion(&row.deletion, out);
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
        out.push(f);
        put_varint(out, u64::from(c.column.0));
        if let Some(p) = &c.path {
            put_len_prefixed(out, p);
        }
        out.extend_from_slice(&c.timestamp.to_le_bytes());
        if f & CELL_HAS_TTL != 0 {
            put_varint(out, u64::from(c.ttl));
        }
        if f & CELL_HAS_LDT != 0 {
            put_varint(out, u64::from(c.local_deletion_time));
        }
        put_len_prefixed(out, &c.value);
    }
    put_varint(out, row.complex_deletions.len() as u64);
    for (col, d) in &row.complex_deletions {
        put_varint(out, u64::from(col.0));
        encode_deletion(d, out);
    }
}

/// Decodes a row, validating the invariants the rest of the engine relies on (sorted unique
/// cells, consistent ttl/deletion fields).
pub fn decode_row(r: &mut Reader<'_>) -> DecodeResult<Row> {
    let clustering = Bytes::copy_from_slice(r.len_prefixed(MAX_CLUSTERING_BYTES)?);
    let flags = r.u8()?;
    if flags & !(ROW_HAS_LIVENESS | ROW_HAS_DELETION | ROW_LIVENESS_TTL) != 0 {
        return Err(r.error(format!("unknown row flags {flags:#x}")));
    }
    let mut row = Row::new(clustering);
    if flags & ROW_HAS_LIVENESS != 0 {
        row.liveness = LivenessInfo::new(r.i64()?);
        if flags & ROW_LIVENESS_TTL != 0 {
            row.liveness.ttl = r.varint_u32()?;
            row.liveness.local_expiration_time = r.varint_u32()?;
            if row.liveness.ttl == NO_TTL {
                return Err(r.error("expiring row marker with zero ttl"));
            }
        }
    }
    if flags & ROW_HAS_DELETION != 0 {
        row.deletion = decode_deletion(r)?;
    }
    let n = r.count(11)?;
    row.cells.reserve(n);
    for _ in 0..n {
        let f = r.u8()?;
        if f & !(CELL_HAS_PATH | CELL_HAS_TTL | CELL_HAS_LDT) != 0 {
            return Err(r.error(format!("unknown cell flags {f:#x}")));
        }
        let column = ColumnId(r.varint_u32()?);
        let path = if f & CELL_HAS_PATH != 0 {
            Some(Bytes::copy_from_slice(r.len_prefixed(MAX_VALUE_BYTES)?))
        } else {
            None
        };
        let timestamp = r.i64()?;
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
    let n = r.count(13)?;
    row.complex_deletions.reserve(n);
    for _ in 0..n {
        let col = ColumnId(r.varint_u32()?);
        let d = decode_deletion(r)?;
        if row.complex_deletions.last().is_some_and(|(c, _)| *c >= col) {
            return Err(r.error("collection deletions out of order"));
        }
        row.complex_deletions.push((col, d));
    }
    Ok(row)
}

/// Encodes partition-level state.
pub fn encode_header(h: &PartitionHeader, out: &mut Vec<u8>) {
    encode_deletion(&h.deletion, out);
    match &h.static_row {
        Some(row) => {
            out.push(1);
            encode_row(row, out);
        }
        None => out.push(0),
    }
    put_varint(out, h.range_tombstones.len() as u64);
    for rt in &h.range_tombstones {
        put_len_prefixed(out, &rt.slice.start.0);
        put_len_prefixed(out, &rt.slice.end.0);
        encode_deletion(&rt.deletion, out);
    }
}

/// Decodes partition-level state.
pub fn decode_header(r: &mut Reader<'_>) -> DecodeResult<PartitionHeader> {
    let deletion = decode_deletion(r)?;
    let static_row = match r.u8()? {
        0 => None,
        1 => Some(decode_row(r)?),
        other => return Err(r.error(format!("bad static-row flag {other}"))),
    };
    let n = r.count(14)?;
    let mut range_tombstones = Vec::with_capacity(n);
    for _ in 0..n {
        let start = r.len_prefixed(MAX_CLUSTERING_BYTES)?;
        let end = r.len_prefixed(MAX_CLUSTERING_BYTES)?;
        if !Bound::is_valid(start) || !Bound::is_valid(end) {
            return Err(r.error("malformed range tombstone bound"));
        }
        let slice =
            Slice { start: Bound(Bytes::copy_from_slice(start)), end: Bound(Bytes::copy_from_slice(end)) };
        range_tombstones.push(RangeTombstone { slice, deletion: decode_deletion(r)? });
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
        assert_eq!(Mutation::decode(&out).unwrap(), m);
    }

    #[test]
    fn every_truncation_and_many_byte_flips_decode_without_panicking() {
        let m = sample_mutation();
        let mut out = Vec::new();
        m.encode(&mut out);
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
