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

use super::segment::{self, Frame, Position, SegmentId};
use crate::error::{Error, Result};

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

/// Replays every segment in `dir` through `apply`.
pub fn replay(
    dir: &Path,
    ignore_errors: bool,
    mut apply: impl FnMut(Position, &[u8]) -> std::result::Result<(), RecordError>,
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
        if segment::find_next_valid_record(&data, 0, data.len()).is_some() {
            last_with_records = i;
            break;
        }
    }
    for (i, (id, path)) in segments.into_iter().enumerate() {
        let newest = i >= last_with_records;
        report.segments += 1;
        report.last_segment = Some(id);
        let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let version = match segment::check_header(&data, id) {
            Ok(version) => version,
            Err(reason) => {
                let records_follow = segment::find_next_valid_record(&data, 0, data.len()).is_some();
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
        let mut offset = segment::HEADER_BYTES;
        loop {
            match segment::read_frame(&data, offset, max_payload) {
                Frame::End => {
                    if let Some(next) = segment::find_next_valid_record(&data, offset + 1, max_payload) {
                        let reason = "zeroed bytes in the middle of the segment, valid records follow";
                        damaged(&mut report, ignore_errors, &path, offset as u64, reason.into())?;
                        offset = next;
                        continue;
                    }
                    break;
                }
                Frame::Record { payload, next } => {
                    let pos = Position { segment: id, offset: offset as u32 };
                    let applied = segment::inflate(version, payload, max_payload)
                        .map_err(RecordError::Undecodable)
                        .and_then(|payload| apply(pos, &payload));
                    match applied {
                        Ok(()) => report.records += 1,
                        Err(RecordError::Fatal(e)) => return Err(e),
                        Err(RecordError::Undecodable(reason)) => {
                            damaged(&mut report, ignore_errors, &path, offset as u64, reason)?;
                        }
                    }
                    offset = next;
                }
                Frame::Bad { reason } => {
                    match segment::find_next_valid_record(&data, offset + 1, max_payload) {
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
