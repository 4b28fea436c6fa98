//! Measuring what reaches the disk: the allocated size of a directory tree and the bytes this
//! process has written.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};

/// Allocated bytes (`st_blocks * 512`) of every file under `dir`. Files and directories that
/// vanish during the walk (compaction deletes them concurrently) are skipped.
pub fn dir_size_bytes(dir: &Path) -> Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut total = 0;
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        let path = entry.path();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
        };
        if meta.is_dir() {
            total += dir_size_bytes(&path)?;
        } else {
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}

/// Bytes this process (all its threads) has caused to be written to storage so far:
/// `write_bytes` of `/proc/self/io`, counted by the kernel when a page is dirtied (so page
/// granular, and independent of when writeback happens). Pages of files deleted before they
/// were written back (a WAL segment dropped after a flush) still count: they were written by
/// the engine, even if the kernel never had to put them on the device. `None` where the kernel
/// does not provide it.
pub fn process_write_bytes() -> Result<Option<u64>> {
    let text = match std::fs::read_to_string("/proc/self/io") {
        Ok(t) => t,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied) => return Ok(None),
        Err(e) => return Err(e).context("reading /proc/self/io"),
    };
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("write_bytes:") {
            let n = v.trim().parse().with_context(|| format!("parsing /proc/self/io line {line:?}"))?;
            return Ok(Some(n));
        }
    }
    Ok(None)
}
