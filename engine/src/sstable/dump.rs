//! A human-readable dump of an SSTable's contents, in the spirit of Cassandra's `sstabledump`:
//! for operators inspecting files and for golden tests that a person can review.

use std::fmt::Write as _;
use std::sync::Arc;

use super::SsTable;
use crate::cell::{Cell, DeletionTime};
use crate::clustering::Slice;
use crate::error::Result;
use crate::row::Row;
use crate::sstable::SsTableRows;

fn bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() || c == ' ') => format!("{s:?}"),
        _ => format!("0x{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
    }
}

fn deletion(d: &DeletionTime) -> String {
    format!("deleted_at={} local_deletion_time={}", d.marked_for_delete_at, d.local_deletion_time)
}

fn cell(c: &Cell) -> String {
    let mut s = format!("column={}", c.column.0);
    if let Some(p) = &c.path {
        let _ = write!(s, " path={}", bytes(p));
    }
    let _ = write!(s, " ts={}", c.timestamp);
    if c.is_tombstone() {
        let _ = write!(s, " tombstone local_deletion_time={}", c.local_deletion_time);
    } else {
        if c.is_expiring() {
            let _ = write!(s, " ttl={} expires_at={}", c.ttl, c.local_deletion_time);
        }
        let _ = write!(s, " value={}", bytes(&c.value));
    }
    s
}

fn row(out: &mut String, label: &str, r: &Row) {
    let _ = write!(out, "  {label}");
    if !r.clustering.is_empty() {
        let _ = write!(out, " clustering={}", bytes(&r.clustering));
    }
    if !r.liveness.is_empty() {
        let _ = write!(out, " marker_ts={}", r.liveness.timestamp);
        if r.liveness.is_expiring() {
            let _ =
                write!(out, " marker_ttl={} expires_at={}", r.liveness.ttl, r.liveness.local_expiration_time);
        }
    }
    if !r.deletion.is_live() {
        let _ = write!(out, " row {}", deletion(&r.deletion));
    }
    out.push('\n');
    for (col, d) in &r.complex_deletions {
        let _ = writeln!(out, "    collection column={} {}", col.0, deletion(d));
    }
    for c in &r.cells {
        let _ = writeln!(out, "    cell {}", cell(c));
    }
}

/// Renders every partition, row and cell of the SSTable as text.
pub fn dump(table: &Arc<SsTable>) -> Result<String> {
    let s = table.stats();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sstable generation={} partitions={} rows={} cells={} tombstones={} timestamps=[{}, {}] tokens=[{}, {}]",
        table.descriptor().generation,
        s.partition_count,
        s.row_count,
        s.cell_count,
        s.tombstone_count,
        s.min_timestamp,
        s.max_timestamp,
        s.min_token,
        s.max_token
    );
    for key in table.keys()? {
        let Some(entry) = table.find(&key)? else { continue };
        let (header, start) = table.read_header(&entry)?;
        let _ = write!(out, "partition key={} token={}", bytes(&key.key), key.token);
        if !header.deletion.is_live() {
            let _ = write!(out, " {}", deletion(&header.deletion));
        }
        out.push('\n');
        if let Some(st) = &header.static_row {
            row(&mut out, "static", st);
        }
        for rt in &header.range_tombstones {
            let _ = writeln!(
                out,
                "  range_tombstone [{} .. {}] {}",
                bytes(&rt.slice.start.0),
                bytes(&rt.slice.end.0),
                deletion(&rt.deletion)
            );
        }
        let mut rows = SsTableRows::new(start, entry, Slice::all(), false);
        while let Some(r) = rows.next_row()? {
            row(&mut out, "row", &r);
        }
    }
    Ok(out)
}
