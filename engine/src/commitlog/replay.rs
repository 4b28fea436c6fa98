//! Commit log replay at startup.
//!
//! Every segment left in the directory is read oldest first and each valid record is handed to
//! the caller. Damage is classified:
//!
//! * a bad record with no valid record after it in the newest segment is a **torn tail** (the
//!   process or machine died mid-write): replay stops there and reports it;
//! * anything else (a bad record followed by valid ones, a bad record in an older segment, a bad
//!   header, a record whose payload does not decode) is **corruption**: replay fails with the
//!   segment and offset, unless `ignore_errors` is set (Cassandra's
//!   `commitlog_ignore_replay_errors`), in which case the damage is logged, skipped up to the
//!   next valid record, and counted in the report.

use std::path::{Path, PathBuf};

use std::collections::HashMap;

use super::segment::{self, Body, Frame, Position, SegmentId};
use crate::error::{Error, Result};
use crate::ids::TableId;
use crate::serialization::{decode_record, decode_update, Mutation};

/// What replay found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Segment files read.
    pub segments: usize,
    /// Records handed to the caller.
    pub records: u64,
    /// The newest segment id seen (the next log must start after it).
    pub last_segment: Option<SegmentId>,
    /// A torn tail: file, offset where valid data ends, and bytes discarded after it.
    pub torn_tail: Option<(PathBuf, u64, u64)>,
    /// Damage skipped because `ignore_errors` was set: file, offset, reason.
    pub skipped: Vec<(PathBuf, u64, String)>,
}

/// A record the caller could not use.
#[derive(Debug)]
pub enum RecordError {
    /// The payload passed its checksum but does not decode: treated as corruption.
    Undecodable(String),
    /// Applying failed for a reason unrelated to the log's bytes; replay stops.
    Fatal(Error),
}

/// What the records of one segment have defined so far.
struct SegmentState {
    version: u8,
    timestamp_base: i64,
    tables: HashMap<u32, TableId>,
}

impl SegmentState {
    /// Decodes one record into the mutations it holds (none for a `define` record).
    fn decode(&mut self, payload: &[u8], max_payload: usize) -> std::result::Result<Vec<Mutation>, String> {
        if self.version < segment::VERSION {
            return match segment::inflate_legacy(self.version, payload, max_payload) {
                Ok(p) => decode_record(&p).map_err(|e| e.to_string()),
                // Development builds wrote uncompressed version 3 mutations into version 2
                // segments; their first byte is the compressed marker.
                Err(inflate_error) => decode_record(payload).map_err(|_| inflate_error),
            };
        }
        match segment::parse_body(payload, max_payload)? {
            Body::Define { ordinal, table } => match self.tables.insert(ordinal, table) {
                Some(other) if other != table => {
                    Err(format!("table ordinal {ordinal} defined twice ({other} and {table})"))
                }
                _ => Ok(Vec::new()),
            },
            Body::Update { ordinal, base_delta, content } => {
                let table = *self.tables.get(&ordinal).ok_or_else(|| {
                    format!("record refers to table ordinal {ordinal}, which no earlier record of the segment defines (its definition was damaged)")
                })?;
                let update = decode_update(&content, self.timestamp_base.wrapping_add(base_delta))
                    .map_err(|e| e.to_string())?;
                Ok(vec![Mutation { table, update }])
            }
            Body::Plain(content) => decode_record(&content).map_err(|e| e.to_string()),
        }
    }
}

/// Replays every segment in `dir` through `apply`, decoding each record into the mutations it
/// holds.
pub fn replay(
    dir: &Path,
    ignore_errors: bool,
    mut apply: impl FnMut(Position, Vec<Mutation>) -> std::result::Result<(), RecordError>,
) -> Result<ReplayReport> {
    let mut report = ReplayReport::default();
    if !dir.exists() {
        return Ok(report);
    }
    let segments = segment::list_segments(dir).map_err(|e| Error::io(dir, e))?;
    // The segments after the last one holding a record are spares the allocator prepared ahead
    // of time (or were being created at a crash): a torn record at the end of the last segment
    // with records is still the end of the log, not damage in its middle.
    let mut last_with_records = 0;
    for (i, (_, path)) in segments.iter().enumerate().rev() {
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        if holds_records(&data) {
            last_with_records = i;
            break;
        }
    }
    for (i, (id, path)) in segments.into_iter().enumerate() {
        let newest = i >= last_with_records;
        report.segments += 1;
        report.last_segment = Some(id);
        let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let (version, timestamp_base) = match segment::check_header(&data, id) {
            Ok(header) => header,
            Err(reason) => {
                let records_follow = holds_records(&data);
                if newest && !records_follow {
                    // The node died while creating this segment: no record was ever written to it.
                    tracing::warn!(file = %path.display(), %reason, "newest commit log segment has an incomplete header and no records; ignoring it");
                    report.torn_tail = Some((path.clone(), 0, data.len() as u64));
                    continue;
                }
                damaged(&mut report, ignore_errors, &path, 0, reason)?;
                continue;
            }
        };
        let max_payload = data.len();
        let mut state = SegmentState { version, timestamp_base, tables: HashMap::new() };
        let mut offset = segment::header_bytes(version);
        loop {
            match segment::read_frame(&data, offset, max_payload, version) {
                Frame::End => {
                    if let Some(next) =
                        segment::find_next_valid_record(&data, offset + 1, max_payload, version)
                    {
                        let reason = "zeroed bytes in the middle of the segment, valid records follow";
                        damaged(&mut report, ignore_errors, &path, offset as u64, reason.into())?;
                        offset = next;
                        continue;
                    }
                    break;
                }
                Frame::Record { payload, next } => {
                    let pos = Position { segment: id, offset: offset as u32 };
                    let applied = match state.decode(payload, max_payload) {
                        Ok(mutations) if mutations.is_empty() => Ok(false),
                        Ok(mutations) => apply(pos, mutations).map(|()| true),
                        Err(reason) => Err(RecordError::Undecodable(reason)),
                    };
                    match applied {
                        Ok(true) => report.records += 1,
                        Ok(false) => {}
                        Err(RecordError::Fatal(e)) => return Err(e),
                        Err(RecordError::Undecodable(reason)) => {
                            damaged(&mut report, ignore_errors, &path, offset as u64, reason)?;
                        }
                    }
                    offset = next;
                }
                Frame::Bad { reason } => {
                    match segment::find_next_valid_record(&data, offset + 1, max_payload, version) {
                        None if newest => {
                            let dropped = data[offset..].iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                            tracing::warn!(
                                file = %path.display(), offset, dropped_bytes = dropped, %reason,
                                "commit log ends in a torn record (a crash during a write); the partial record is discarded, it was never acknowledged"
                            );
                            report.torn_tail = Some((path.clone(), offset as u64, dropped as u64));
                            break;
                        }
                        None => {
                            damaged(&mut report, ignore_errors, &path, offset as u64, reason)?;
                            break;
                        }
                        Some(next) => {
                            damaged(&mut report, ignore_errors, &path, offset as u64, reason)?;
                            offset = next;
                        }
                    }
                }
            }
        }
    }
    Ok(report)
}

/// Whether a segment's bytes hold any valid record, whatever its (possibly damaged) header says
/// its version is.
fn holds_records(data: &[u8]) -> bool {
    [segment::VERSION, segment::VERSION_1]
        .into_iter()
        .any(|v| segment::find_next_valid_record(data, 0, data.len(), v).is_some())
}

fn damaged(report: &mut ReplayReport, ignore: bool, path: &Path, offset: u64, reason: String) -> Result<()> {
    if !ignore {
        return Err(Error::corruption(
            path,
            offset,
            format!("{reason}; the commit log is damaged before its end. Restore the file, or start with commitlog_ignore_replay_errors: true to skip the damaged part (writes in it are lost)"),
        ));
    }
    tracing::error!(file = %path.display(), offset, %reason, "skipping damaged commit log data because commitlog_ignore_replay_errors is set");
    report.skipped.push((path.to_path_buf(), offset, reason));
    Ok(())
}
