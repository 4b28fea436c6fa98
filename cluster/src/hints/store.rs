//! The hints directory: per target host, a queue of closed files and one file being written.
//!
//! Appends go straight to the file (one `write`, so a killed process loses nothing); a sync
//! every `hints_flush_period` makes them durable against power loss, as Cassandra's hints
//! flush does. A file is closed (synced and queued for delivery) when it reaches
//! `max_hints_file_size` or when the dispatcher wants to deliver it; delivery never reads the
//! file being written.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use uuid::Uuid;

use super::file::{encode_header, encode_record, file_name, parse_file_name, Hint, HEADER_BYTES};

/// Counters of the hints service (`sibyltool info`, `/metrics`).
#[derive(Debug, Default)]
pub struct HintCounters {
    /// Hints written (Cassandra's `TotalHints`).
    pub written: AtomicU64,
    /// Hints not written because the host's hints reached `max_hints_size_per_host`.
    pub dropped_size: AtomicU64,
    /// Hints not written because the replica was down longer than `max_hint_window`.
    pub dropped_window: AtomicU64,
    /// Hints delivered and acknowledged (`HintsSucceeded`).
    pub delivered: AtomicU64,
    /// Hints whose delivery failed or timed out; they are retried (`HintsFailed`).
    pub failed: AtomicU64,
    /// Hints dropped at delivery because they were older than their table's gc_grace.
    pub expired: AtomicU64,
    /// Hints files found damaged and discarded after delivering what preceded the damage.
    pub corrupt_files: AtomicU64,
}

/// A snapshot of [`HintCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HintStats {
    /// See [`HintCounters::written`].
    pub written: u64,
    /// See [`HintCounters::dropped_size`].
    pub dropped_size: u64,
    /// See [`HintCounters::dropped_window`].
    pub dropped_window: u64,
    /// See [`HintCounters::delivered`].
    pub delivered: u64,
    /// See [`HintCounters::failed`].
    pub failed: u64,
    /// See [`HintCounters::expired`].
    pub expired: u64,
    /// See [`HintCounters::corrupt_files`].
    pub corrupt_files: u64,
    /// Bytes of hints on disk now.
    pub bytes_on_disk: u64,
}

/// The hints waiting for one host (`sibyltool listpendinghints`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingHints {
    /// The host the hints are for.
    pub host: Uuid,
    /// Files holding them.
    pub files: usize,
    /// Their bytes on disk.
    pub bytes: u64,
    /// Creation time of the oldest file (ms since the epoch).
    pub oldest_ms: i64,
    /// Creation time of the newest file.
    pub newest_ms: i64,
}

#[derive(Debug)]
struct ClosedFile {
    path: PathBuf,
    bytes: u64,
    created_ms: i64,
}

#[derive(Debug)]
struct Writer {
    file: File,
    path: PathBuf,
    bytes: u64,
    created_ms: i64,
    unsynced: bool,
}

#[derive(Debug, Default)]
struct HostFiles {
    closed: VecDeque<ClosedFile>,
    writer: Option<Writer>,
    bytes: u64,
    last_created_ms: i64,
}

/// The hints directory of one node.
#[derive(Debug)]
pub struct HintsStore {
    dir: PathBuf,
    max_file_bytes: u64,
    max_host_bytes: u64,
    hosts: Mutex<BTreeMap<Uuid, HostFiles>>,
    counters: HintCounters,
}

impl HintsStore {
    /// Opens (creating it if needed) the hints directory and queues the files found there for
    /// delivery. `max_host_bytes` 0 means no per-host cap.
    pub fn open(dir: &Path, max_file_bytes: u64, max_host_bytes: u64) -> std::io::Result<HintsStore> {
        std::fs::create_dir_all(dir)?;
        let mut hosts: BTreeMap<Uuid, HostFiles> = BTreeMap::new();
        let mut found = 0usize;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some((host, created_ms)) = name.to_str().and_then(parse_file_name) else { continue };
            let bytes = entry.metadata()?.len();
            if bytes <= HEADER_BYTES as u64 {
                // Created but never written to (or torn while creating): nothing to deliver.
                tracing::info!(file = %entry.path().display(), "removing an empty hints file");
                std::fs::remove_file(entry.path())?;
                continue;
            }
            let h = hosts.entry(host).or_default();
            h.closed.push_back(ClosedFile { path: entry.path(), bytes, created_ms });
            h.bytes += bytes;
            h.last_created_ms = h.last_created_ms.max(created_ms);
            found += 1;
        }
        for h in hosts.values_mut() {
            h.closed.make_contiguous().sort_by_key(|f| f.created_ms);
        }
        if found > 0 {
            tracing::info!(files = found, hosts = hosts.len(), dir = %dir.display(), "hints found on disk; they will be delivered when their hosts are up");
        }
        Ok(HintsStore {
            dir: dir.to_path_buf(),
            max_file_bytes: max_file_bytes.max(HEADER_BYTES as u64 + 1),
            max_host_bytes,
            hosts: Mutex::new(hosts),
            counters: HintCounters::default(),
        })
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The counters.
    #[must_use]
    pub fn counters(&self) -> &HintCounters {
        &self.counters
    }

    /// Appends hints for `host`. Returns how many were stored: fewer than given when the
    /// host's hints reached the per-host cap.
    pub fn write(&self, host: Uuid, hints: &[Hint], now_ms: i64) -> std::io::Result<usize> {
        let mut buf = Vec::new();
        let mut payload = Vec::new();
        let mut hosts = self.hosts.lock();
        let h = hosts.entry(host).or_default();
        let mut stored = 0;
        for hint in hints {
            payload.clear();
            hint.encode(&mut payload);
            buf.clear();
            encode_record(&payload, &mut buf);
            let len = buf.len() as u64;
            if self.max_host_bytes > 0 && h.bytes + len > self.max_host_bytes {
                self.counters.dropped_size.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let full = h.writer.as_ref().is_some_and(|w| w.bytes + len > self.max_file_bytes);
            if full {
                Self::close_writer(h)?;
            }
            if h.writer.is_none() {
                let created_ms = now_ms.max(h.last_created_ms + 1);
                h.last_created_ms = created_ms;
                let path = self.dir.join(file_name(host, created_ms));
                let mut file = OpenOptions::new().create_new(true).append(true).open(&path)?;
                file.write_all(&encode_header(host, created_ms))?;
                h.bytes += HEADER_BYTES as u64;
                h.writer =
                    Some(Writer { file, path, bytes: HEADER_BYTES as u64, created_ms, unsynced: true });
            }
            let Some(w) = h.writer.as_mut() else { continue };
            w.file.write_all(&buf)?;
            w.bytes += len;
            w.unsynced = true;
            h.bytes += len;
            stored += 1;
        }
        self.counters.written.fetch_add(stored as u64, Ordering::Relaxed);
        Ok(stored)
    }

    fn close_writer(h: &mut HostFiles) -> std::io::Result<()> {
        if let Some(w) = h.writer.take() {
            if w.unsynced {
                w.file.sync_data()?;
            }
            h.closed.push_back(ClosedFile { path: w.path, bytes: w.bytes, created_ms: w.created_ms });
        }
        Ok(())
    }

    /// Makes every append so far durable (the `hints_flush_period` tick). The syncs run
    /// outside the lock, so writers are not held up by them.
    pub fn sync(&self) -> std::io::Result<()> {
        let files: Vec<File> = {
            let mut hosts = self.hosts.lock();
            hosts
                .values_mut()
                .filter_map(|h| h.writer.as_mut())
                .filter(|w| w.unsynced)
                .filter_map(|w| {
                    w.unsynced = false;
                    w.file.try_clone().ok()
                })
                .collect()
        };
        for f in files {
            f.sync_data()?;
        }
        Ok(())
    }

    /// Hosts with hints waiting.
    #[must_use]
    pub fn hosts(&self) -> Vec<Uuid> {
        self.hosts.lock().iter().filter(|(_, h)| h.bytes > 0).map(|(k, _)| *k).collect()
    }

    /// The oldest file of `host` to deliver; closes the file being written when nothing else
    /// is queued.
    pub fn next_file(&self, host: Uuid) -> std::io::Result<Option<PathBuf>> {
        let mut hosts = self.hosts.lock();
        let Some(h) = hosts.get_mut(&host) else { return Ok(None) };
        if h.closed.is_empty() && h.writer.as_ref().is_some_and(|w| w.bytes > HEADER_BYTES as u64) {
            Self::close_writer(h)?;
        }
        Ok(h.closed.front().map(|f| f.path.clone()))
    }

    /// Whether `path` is still queued for `host` (a truncate may have removed it).
    #[must_use]
    pub fn is_queued(&self, host: Uuid, path: &Path) -> bool {
        self.hosts.lock().get(&host).is_some_and(|h| h.closed.iter().any(|f| f.path == path))
    }

    /// Removes a delivered (or discarded) file.
    pub fn remove(&self, host: Uuid, path: &Path) -> std::io::Result<()> {
        let mut hosts = self.hosts.lock();
        let Some(h) = hosts.get_mut(&host) else { return Ok(()) };
        let Some(i) = h.closed.iter().position(|f| f.path == path) else { return Ok(()) };
        if let Some(f) = h.closed.remove(i) {
            h.bytes = h.bytes.saturating_sub(f.bytes);
            remove_if_present(&f.path)?;
        }
        Ok(())
    }

    /// Deletes the hints of `host`, or of every host (`sibyltool truncatehints`). Returns the
    /// files and bytes removed.
    pub fn truncate(&self, host: Option<Uuid>) -> std::io::Result<(usize, u64)> {
        let mut hosts = self.hosts.lock();
        let targets: Vec<Uuid> = match host {
            Some(h) => vec![h],
            None => hosts.keys().copied().collect(),
        };
        let (mut files, mut bytes) = (0, 0);
        for t in targets {
            let Some(mut h) = hosts.remove(&t) else { continue };
            if let Some(w) = h.writer.take() {
                h.closed.push_back(ClosedFile { path: w.path, bytes: w.bytes, created_ms: w.created_ms });
            }
            for f in h.closed {
                remove_if_present(&f.path)?;
                files += 1;
                bytes += f.bytes;
            }
            // Keep the creation-time high-water mark so new file names stay unique.
            hosts.insert(t, HostFiles { last_created_ms: h.last_created_ms, ..HostFiles::default() });
        }
        Ok((files, bytes))
    }

    /// What waits for each host.
    #[must_use]
    pub fn pending(&self) -> Vec<PendingHints> {
        let hosts = self.hosts.lock();
        hosts
            .iter()
            .filter(|(_, h)| h.bytes > 0)
            .map(|(host, h)| {
                let created =
                    h.closed.iter().map(|f| f.created_ms).chain(h.writer.iter().map(|w| w.created_ms));
                let (oldest_ms, newest_ms) =
                    created.fold((i64::MAX, i64::MIN), |(lo, hi), c| (lo.min(c), hi.max(c)));
                PendingHints {
                    host: *host,
                    files: h.closed.len() + usize::from(h.writer.is_some()),
                    bytes: h.bytes,
                    oldest_ms,
                    newest_ms,
                }
            })
            .collect()
    }

    /// A snapshot of the counters and the bytes on disk.
    #[must_use]
    pub fn stats(&self) -> HintStats {
        let c = &self.counters;
        HintStats {
            written: c.written.load(Ordering::Relaxed),
            dropped_size: c.dropped_size.load(Ordering::Relaxed),
            dropped_window: c.dropped_window.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            expired: c.expired.load(Ordering::Relaxed),
            corrupt_files: c.corrupt_files.load(Ordering::Relaxed),
            bytes_on_disk: self.hosts.lock().values().map(|h| h.bytes).sum(),
        }
    }
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
    use bytes::Bytes;
    use sibyl_engine::{Mutation, PartitionUpdate, TableId};

    use super::super::file::HintsReader;
    use super::*;

    fn hint(i: u32) -> Hint {
        Hint {
            created_ms: 1000,
            gc_grace_seconds: 10,
            mutation: Mutation {
                table: TableId(Uuid::from_u128(7)),
                update: PartitionUpdate::new(Bytes::copy_from_slice(&i.to_be_bytes())),
            },
        }
    }

    fn read(path: &Path) -> Vec<Hint> {
        let mut r = HintsReader::open(path).unwrap();
        let mut v = Vec::new();
        while let Some(h) = r.next_hint().unwrap() {
            v.push(h);
        }
        v
    }

    #[test]
    fn files_roll_queue_in_order_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let host = Uuid::from_u128(1);
        let store = HintsStore::open(dir.path(), 200, 0).unwrap();
        let hints: Vec<Hint> = (0..20).map(hint).collect();
        assert_eq!(store.write(host, &hints, 5).unwrap(), 20);
        store.sync().unwrap();
        let pending = store.pending();
        assert_eq!(pending.len(), 1);
        assert!(pending[0].files > 3, "200-byte files roll: {pending:?}");
        drop(store);
        // Reopened: every hint comes back, in the order written.
        let store = HintsStore::open(dir.path(), 200, 0).unwrap();
        let mut got = Vec::new();
        while let Some(path) = store.next_file(host).unwrap() {
            got.extend(read(&path));
            store.remove(host, &path).unwrap();
        }
        assert_eq!(got, hints);
        assert!(store.pending().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_per_host_cap_drops_hints_and_truncate_frees_them() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let store = HintsStore::open(dir.path(), 1 << 20, 300).unwrap();
        let stored = store.write(a, &(0..20).map(hint).collect::<Vec<_>>(), 5).unwrap();
        assert!(stored > 0 && stored < 20, "{stored}");
        assert_eq!(store.stats().dropped_size, 20 - stored as u64);
        assert!(store.stats().bytes_on_disk <= 300);
        assert_eq!(store.write(b, &[hint(1)], 5).unwrap(), 1);
        let (files, _) = store.truncate(Some(a)).unwrap();
        assert_eq!(files, 1);
        assert_eq!(store.hosts(), vec![b]);
        // a's cap is free again.
        assert_eq!(store.write(a, &[hint(2)], 5).unwrap(), 1);
        store.truncate(None).unwrap();
        assert!(store.hosts().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_empty_file_left_by_a_crash_is_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let host = Uuid::from_u128(3);
        std::fs::write(dir.path().join(file_name(host, 9)), encode_header(host, 9)).unwrap();
        let store = HintsStore::open(dir.path(), 1 << 20, 0).unwrap();
        assert!(store.pending().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
