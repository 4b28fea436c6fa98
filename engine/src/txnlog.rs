//! Compaction transaction logs: how a compaction replaces its input SSTables with its outputs
//! atomically across a crash (Cassandra's `LifecycleTransaction` and its `.log` files).
//!
//! A log lives in the table directory as `txn-<id>.log`, one record per line:
//!
//! ```text
//! line   := record "|" crc32 of record as 8 lowercase hex digits "\n"
//! record := "SIBYL-TXN 1"          first line: magic and format version
//!         | "REMOVE <generation>"  an input, deleted once the transaction commits
//!         | "ADD <generation>"     an output, written only after this line is durable
//!         | "COMMIT"               the commit point
//! ```
//!
//! The protocol, each step durable (fsynced) before the next:
//! 1. create the log with the header and one `REMOVE` per input;
//! 2. for each output: append `ADD g`, then write SSTable `g` (its TOC last);
//! 3. append `COMMIT`; swap the view;
//! 4. delete the inputs' files, then the log.
//!
//! At open, before SSTables are loaded, [`recover`] finishes or undoes every log left behind: with
//! a `COMMIT` it deletes the `REMOVE` generations (the outputs are complete), without one it
//! deletes the `ADD` generations (the inputs are untouched). Either way exactly one of the two sets
//! stays live. Only the last line may be torn (each line is fsynced before the next is written);
//! a bad line with valid lines after it is corruption, reported with the file and offset.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::codec::crc32;
use crate::commitlog::sync_dir;
use crate::error::{Error, Result};
use crate::ids::Generation;
use crate::sstable::Descriptor;

const HEADER: &str = "SIBYL-TXN 1";
/// Largest log accepted at recovery (a task has at most a few thousand inputs and outputs).
const MAX_LOG_BYTES: u64 = 16 << 20;

/// An open transaction log.
#[derive(Debug)]
pub struct TxnLog {
    path: PathBuf,
    dir: PathBuf,
    file: File,
    finished: bool,
}

fn line(record: &str) -> String {
    format!("{record}|{:08x}\n", crc32(record.as_bytes()))
}

impl TxnLog {
    /// Path of log `id` in `dir`.
    #[must_use]
    pub fn path(dir: &Path, id: u64) -> PathBuf {
        dir.join(format!("txn-{id}.log"))
    }

    /// Step 1: creates `txn-<id>.log` naming the inputs, durably.
    pub fn begin(dir: &Path, id: u64, inputs: &[Generation]) -> Result<TxnLog> {
        let path = TxnLog::path(dir, id);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut log = TxnLog { path, dir: dir.to_path_buf(), file, finished: false };
        let mut text = line(HEADER);
        for g in inputs {
            text.push_str(&line(&format!("REMOVE {}", g.0)));
        }
        log.append(&text)?;
        sync_dir(dir)?;
        Ok(log)
    }

    fn append(&mut self, text: &str) -> Result<()> {
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Step 2: records an output before its files are created.
    pub fn add(&mut self, generation: Generation) -> Result<()> {
        self.append(&line(&format!("ADD {}", generation.0)))
    }

    /// Step 3: the commit point. After this returns, a crash keeps the outputs.
    pub fn commit(&mut self) -> Result<()> {
        self.append(&line("COMMIT"))
    }

    /// Step 4: deletes the inputs' files, then the log.
    pub fn finish(self, inputs: &[Descriptor]) -> Result<()> {
        self.delete_then_close(inputs)
    }

    /// Undoes an uncommitted transaction: deletes the outputs' files, then the log.
    pub fn abort(self, outputs: &[Descriptor]) -> Result<()> {
        self.delete_then_close(outputs)
    }

    fn delete_then_close(mut self, doomed: &[Descriptor]) -> Result<()> {
        for d in doomed {
            d.delete_files().map_err(|e| Error::io(&d.dir, e))?;
        }
        sync_dir(&self.dir)?;
        self.finished = true;
        std::fs::remove_file(&self.path).map_err(|e| Error::io(&self.path, e))?;
        sync_dir(&self.dir)
    }
}

impl Drop for TxnLog {
    fn drop(&mut self) {
        if !self.finished {
            tracing::warn!(log = %self.path.display(), "a compaction transaction was left unfinished; it is completed or undone at the next open");
        }
    }
}

/// What a log on disk says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLog {
    /// Inputs.
    pub remove: Vec<Generation>,
    /// Outputs.
    pub add: Vec<Generation>,
    /// Whether `COMMIT` was reached.
    pub committed: bool,
    /// Whether the last line was torn (incomplete or failing its checksum).
    pub torn_tail: bool,
}

/// Parses a log's bytes. Only the last line may be bad; a bad line before a good one is an error
/// at that line's offset.
pub fn parse(bytes: &[u8]) -> std::result::Result<ParsedLog, (u64, String)> {
    let mut out = ParsedLog { remove: Vec::new(), add: Vec::new(), committed: false, torn_tail: false };
    let mut offset = 0usize;
    let mut first = true;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            out.torn_tail = true; // a line whose write did not finish
            break;
        };
        let good = std::str::from_utf8(&rest[..end]).ok().and_then(|l| {
            let (record, crc) = l.rsplit_once('|')?;
            (u32::from_str_radix(crc, 16).ok()? == crc32(record.as_bytes())).then_some(record)
        });
        let Some(record) = good else {
            if offset + end + 1 == bytes.len() {
                out.torn_tail = true;
                break;
            }
            return Err((offset as u64, "transaction log line fails its checksum".into()));
        };
        if first {
            if record != HEADER {
                return Err((
                    offset as u64,
                    format!("not a transaction log or unsupported version: {record:?}"),
                ));
            }
            first = false;
        } else if record == "COMMIT" {
            out.committed = true;
        } else {
            let generation = |s: &str| {
                s.parse::<u64>()
                    .map(Generation)
                    .map_err(|_| (offset as u64, format!("bad generation in {record:?}")))
            };
            match record.split_once(' ') {
                Some(("REMOVE", g)) => out.remove.push(generation(g)?),
                Some(("ADD", g)) => out.add.push(generation(g)?),
                _ => return Err((offset as u64, format!("unknown transaction log record {record:?}"))),
            }
        }
        offset += end + 1;
    }
    Ok(out)
}

/// Completes or undoes every transaction log in `dir`; returns how many were found.
pub fn recover(dir: &Path) -> Result<usize> {
    let mut logs = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("txn-") && name.ends_with(".log") {
            logs.push(e.path());
        }
    }
    logs.sort();
    for path in &logs {
        let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
        if len > MAX_LOG_BYTES {
            return Err(Error::corruption(
                path,
                0,
                format!("transaction log of {len} bytes exceeds {MAX_LOG_BYTES}"),
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let parsed = parse(&bytes).map_err(|(offset, reason)| Error::corruption(path, offset, reason))?;
        let delete = if parsed.committed { &parsed.remove } else { &parsed.add };
        for g in delete {
            Descriptor { dir: dir.to_path_buf(), generation: *g }
                .delete_files()
                .map_err(|e| Error::io(dir, e))?;
        }
        sync_dir(dir)?;
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
        sync_dir(dir)?;
        tracing::info!(
            log = %path.display(),
            committed = parsed.committed,
            deleted = ?delete.iter().map(|g| g.0).collect::<Vec<_>>(),
            "finished a compaction interrupted by a crash: {}",
            if parsed.committed { "kept its outputs, deleted its inputs" } else { "kept its inputs, deleted its partial outputs" }
        );
    }
    Ok(logs.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn text(records: &[&str]) -> Vec<u8> {
        records.iter().map(|r| line(r)).collect::<String>().into_bytes()
    }

    #[test]
    fn parses_a_committed_log() {
        let p = parse(&text(&[HEADER, "REMOVE 1", "REMOVE 2", "ADD 7", "COMMIT"])).unwrap();
        assert_eq!(p.remove, vec![Generation(1), Generation(2)]);
        assert_eq!(p.add, vec![Generation(7)]);
        assert!(p.committed && !p.torn_tail);
    }

    #[test]
    fn a_torn_last_line_is_not_a_commit() {
        let mut b = text(&[HEADER, "REMOVE 1", "ADD 7"]);
        b.extend_from_slice(b"COMM");
        let p = parse(&b).unwrap();
        assert!(!p.committed && p.torn_tail);
        let mut b = text(&[HEADER, "REMOVE 1", "ADD 7"]);
        b.extend_from_slice(b"COMMIT|00000000\n");
        let p = parse(&b).unwrap();
        assert!(!p.committed && p.torn_tail);
    }

    #[test]
    fn a_bad_line_before_good_ones_is_corruption_with_its_offset() {
        let mut b = text(&[HEADER, "REMOVE 1"]);
        let at = b.len();
        b.extend_from_slice(b"ADD 7|deadbeef\n");
        b.extend_from_slice(&text(&["COMMIT"]));
        let (offset, reason) = parse(&b).unwrap_err();
        assert_eq!(offset, at as u64);
        assert!(reason.contains("checksum"), "{reason}");
        assert!(parse(&text(&["SIBYL-TXN 9"])).is_err());
    }
}
