//! The batchlog: a logged batch that spans several partitions is applied in full eventually,
//! even if its coordinator dies half-way.
//!
//! Before applying a logged batch, the coordinator stores it on up to two other live nodes of its
//! data center (BATCH_STORE; this node itself when it is alone). After the batch reached its
//! consistency level, it asks them to forget it (BATCH_REMOVE, one-way). A node replays every
//! batch it has held for longer than twice `write_request_timeout` (its coordinator either
//! died or failed to apply it), through an injected apply function (the CQL layer writes each
//! keyspace's mutations at ONE, so unreachable replicas get hints), and deletes it once applied.
//!
//! One file per batch in `batchlog_directory`, written to a temporary name, synced and renamed
//! (and the directory synced) before the store is acknowledged, so a crash or power loss leaves
//! a whole batch or none:
//!
//! ```text
//! file      := magic "SBBL" | version u8 (=1) | id 16 | created_ms i64le | len u32le
//!              | payload (len bytes: the mutations, crate::verbs' mutation_req body)
//!              | crc32 u32le (of everything before it)
//! batch_store  := version u8 (=1) | id 16 | created_ms i64le | mutation_req body
//! batch_remove := version u8 (=1) | id 16
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use sibyl_engine::codec::crc32;
use sibyl_engine::Mutation;
use uuid::Uuid;

const MAGIC: &[u8; 4] = b"SBBL";
const VERSION: u8 = 1;
const HEADER: usize = 4 + 1 + 16 + 8 + 4;
/// Largest batch payload stored (a frame cannot carry more anyway).
pub const MAX_BATCH_BYTES: usize = 256 << 20;
/// How often stored batches are checked for replay (Cassandra's batchlog replay interval).
pub const REPLAY_INTERVAL: Duration = Duration::from_secs(10);

/// Applies a replayed batch's mutations; the CQL layer provides it (it knows each table's
/// keyspace and replication). Errors leave the batch for the next round.
/// It is given the batch's age too: mutations older than their table's `gc_grace_seconds` must
/// be dropped (their tombstones may be purged, and replaying them would resurrect data).
pub type ApplyFn = Arc<dyn Fn(Vec<Mutation>, Duration) -> Result<(), String> + Send + Sync>;

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct BatchlogCounters {
    /// Batches stored here for a coordinator.
    pub stored: AtomicU64,
    /// Batches removed after their coordinator applied them.
    pub removed: AtomicU64,
    /// Batches replayed by this node.
    pub replayed: AtomicU64,
    /// Replays that failed (retried later).
    pub replay_failures: AtomicU64,
    /// Damaged batch files set aside.
    pub corrupt: AtomicU64,
}

/// One node's stored batches.
pub struct Batchlog {
    dir: PathBuf,
    counters: BatchlogCounters,
    stop: AtomicBool,
    wake: (Mutex<bool>, Condvar),
}

impl std::fmt::Debug for Batchlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batchlog").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// A stored batch.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBatch {
    /// Batch id.
    pub id: Uuid,
    /// When the coordinator created it, ms since the epoch.
    pub created_ms: i64,
    /// The mutations, encoded as `crate::verbs::encode_mutations`.
    pub mutations: Bytes,
}

impl Batchlog {
    /// Opens (creating) `dir`; leftovers of interrupted writes are removed.
    ///
    /// # Errors
    /// The directory cannot be created or listed.
    pub fn open(dir: &Path) -> std::io::Result<Arc<Batchlog>> {
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(Arc::new(Batchlog {
            dir: dir.to_path_buf(),
            counters: BatchlogCounters::default(),
            stop: AtomicBool::new(false),
            wake: (Mutex::new(false), Condvar::new()),
        }))
    }

    /// Counters.
    #[must_use]
    pub fn counters(&self) -> &BatchlogCounters {
        &self.counters
    }

    fn path(&self, id: Uuid) -> PathBuf {
        self.dir.join(format!("{id}.batch"))
    }

    /// Stores a batch (replacing one with the same id).
    ///
    /// # Errors
    /// The file cannot be written, or the batch is too large.
    pub fn store(&self, batch: &StoredBatch) -> std::io::Result<()> {
        if batch.mutations.len() > MAX_BATCH_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("batch of {} bytes exceeds {MAX_BATCH_BYTES}", batch.mutations.len()),
            ));
        }
        let mut bytes = Vec::with_capacity(HEADER + batch.mutations.len() + 4);
        bytes.extend_from_slice(MAGIC);
        bytes.push(VERSION);
        bytes.extend_from_slice(batch.id.as_bytes());
        bytes.extend_from_slice(&batch.created_ms.to_le_bytes());
        bytes.extend_from_slice(&(batch.mutations.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&batch.mutations);
        let crc = crc32(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let tmp = self.dir.join(format!("{}.tmp", batch.id));
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.path(batch.id))?;
        // The rename reaches the disk before the batch is acknowledged.
        std::fs::File::open(&self.dir)?.sync_all()?;
        self.counters.stored.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Forgets a batch (its coordinator applied it). Unknown ids are ignored.
    pub fn remove(&self, id: Uuid) {
        if std::fs::remove_file(self.path(id)).is_ok() {
            self.counters.removed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Ids of the stored batches.
    #[must_use]
    pub fn pending(&self) -> Vec<Uuid> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out: Vec<Uuid> = entries
            .filter_map(|e| {
                let name = e.ok()?.file_name();
                name.to_str()?.strip_suffix(".batch")?.parse().ok()
            })
            .collect();
        out.sort();
        out
    }

    /// Reads a stored batch; `Ok(None)` if it is gone.
    ///
    /// # Errors
    /// The file is damaged: the message names it and the offset.
    pub fn load(&self, id: Uuid) -> Result<Option<StoredBatch>, String> {
        let path = self.path(id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        decode_file(&bytes)
            .map(Some)
            .map_err(|(offset, why)| format!("{} at offset {offset}: {why}", path.display()))
    }

    /// Replays every batch stored longer than `min_age` through `apply`, deleting each one
    /// applied. Damaged files are renamed `.corrupt` and reported. Returns batches replayed.
    pub fn replay_due(&self, min_age: Duration, now_ms: i64, apply: &ApplyFn) -> usize {
        let mut replayed = 0;
        for id in self.pending() {
            let batch = match self.load(id) {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "damaged batchlog file set aside (renamed .corrupt); its batch cannot be replayed");
                    let _ = std::fs::rename(self.path(id), self.dir.join(format!("{id}.corrupt")));
                    self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            if now_ms.saturating_sub(batch.created_ms)
                < i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX)
            {
                continue;
            }
            let mutations = match crate::verbs::decode_mutations(&batch.mutations) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(batch = %id, error = %e, "undecodable batch set aside");
                    let _ = std::fs::rename(self.path(id), self.dir.join(format!("{id}.corrupt")));
                    self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            let age =
                Duration::from_millis(u64::try_from(now_ms.saturating_sub(batch.created_ms)).unwrap_or(0));
            match apply(mutations, age) {
                Ok(()) => {
                    tracing::info!(batch = %id, age_ms = now_ms - batch.created_ms, "replayed a logged batch its coordinator did not finish");
                    self.counters.replayed.fetch_add(1, Ordering::Relaxed);
                    let _ = std::fs::remove_file(self.path(id));
                    replayed += 1;
                }
                Err(e) => {
                    tracing::warn!(batch = %id, error = %e, "batch replay failed; retrying next round");
                    self.counters.replay_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        replayed
    }

    /// Starts the `batchlog-replay` thread: every `interval`, replays batches older than
    /// `min_age` (twice the write timeout).
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start_replay(
        self: &Arc<Self>,
        apply: ApplyFn,
        interval: Duration,
        min_age: Duration,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let this = Arc::clone(self);
        std::thread::Builder::new().name("batchlog-replay".into()).spawn(move || {
            while !this.stop.load(Ordering::Relaxed) {
                {
                    let (lock, cv) = &this.wake;
                    let mut woken = lock.lock();
                    if !*woken {
                        cv.wait_for(&mut woken, interval);
                    }
                    *woken = false;
                }
                if this.stop.load(Ordering::Relaxed) {
                    break;
                }
                this.replay_due(min_age, now_ms(), &apply);
            }
        })
    }

    /// Stops the replay thread (it exits at its next wake-up, which this triggers).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let (lock, cv) = &self.wake;
        *lock.lock() = true;
        cv.notify_all();
    }
}

fn decode_file(bytes: &[u8]) -> Result<StoredBatch, (usize, String)> {
    if bytes.len() < HEADER + 4 {
        return Err((0, format!("{} bytes is shorter than a batch file", bytes.len())));
    }
    if &bytes[..4] != MAGIC {
        return Err((0, "not a batch file (bad magic)".into()));
    }
    if bytes[4] != VERSION {
        return Err((4, format!("unknown batch file version {}", bytes[4])));
    }
    let len = u32::from_le_bytes([bytes[29], bytes[30], bytes[31], bytes[32]]) as usize;
    if len > MAX_BATCH_BYTES || HEADER + len + 4 != bytes.len() {
        return Err((29, format!("payload length {len} does not match the file's {} bytes", bytes.len())));
    }
    let body = &bytes[..HEADER + len];
    let stored = u32::from_le_bytes([
        bytes[HEADER + len],
        bytes[HEADER + len + 1],
        bytes[HEADER + len + 2],
        bytes[HEADER + len + 3],
    ]);
    if crc32(body) != stored {
        return Err((HEADER + len, "checksum mismatch".into()));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[5..21]);
    let mut created = [0u8; 8];
    created.copy_from_slice(&bytes[21..29]);
    Ok(StoredBatch {
        id: Uuid::from_bytes(id),
        created_ms: i64::from_le_bytes(created),
        mutations: Bytes::copy_from_slice(&bytes[HEADER..HEADER + len]),
    })
}

/// The BATCH_STORE payload.
#[must_use]
pub fn encode_store(batch: &StoredBatch) -> Bytes {
    let mut out = Vec::with_capacity(25 + batch.mutations.len());
    out.push(VERSION);
    out.extend_from_slice(batch.id.as_bytes());
    out.extend_from_slice(&batch.created_ms.to_le_bytes());
    // The mutations' encoding starts with its own version byte; it is kept whole.
    out.extend_from_slice(&batch.mutations);
    out.into()
}

/// Parses a BATCH_STORE payload.
///
/// # Errors
/// What was wrong.
pub fn decode_store(bytes: &[u8]) -> Result<StoredBatch, String> {
    if bytes.len() < 25 || bytes[0] != VERSION {
        return Err("malformed batch store request".into());
    }
    let mutations = &bytes[25..];
    if mutations.len() > MAX_BATCH_BYTES {
        return Err(format!("batch of {} bytes exceeds {MAX_BATCH_BYTES}", mutations.len()));
    }
    // Refuse what could never be replayed now, not at replay time.
    crate::verbs::decode_mutations(mutations).map_err(|e| format!("bad batch: {e}"))?;
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[1..17]);
    let mut created = [0u8; 8];
    created.copy_from_slice(&bytes[17..25]);
    Ok(StoredBatch {
        id: Uuid::from_bytes(id),
        created_ms: i64::from_le_bytes(created),
        mutations: Bytes::copy_from_slice(mutations),
    })
}

/// The BATCH_REMOVE payload.
#[must_use]
pub fn encode_remove(id: Uuid) -> Bytes {
    let mut out = Vec::with_capacity(17);
    out.push(VERSION);
    out.extend_from_slice(id.as_bytes());
    out.into()
}

/// Parses a BATCH_REMOVE payload.
///
/// # Errors
/// What was wrong.
pub fn decode_remove(bytes: &[u8]) -> Result<Uuid, String> {
    if bytes.len() != 17 || bytes[0] != VERSION {
        return Err("malformed batch remove request".into());
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[1..]);
    Ok(Uuid::from_bytes(id))
}

/// Milliseconds since the epoch.
#[must_use]
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sibyl_engine::{PartitionUpdate, TableId};

    fn batch(n: u8, created_ms: i64) -> StoredBatch {
        let m: Vec<Mutation> = (0..3u8)
            .map(|i| Mutation {
                table: TableId(Uuid::from_u128(9)),
                update: PartitionUpdate::new(Bytes::copy_from_slice(&[n, i])),
            })
            .collect();
        StoredBatch {
            id: Uuid::from_u128(u128::from(n)),
            created_ms,
            mutations: crate::verbs::encode_mutations(&m),
        }
    }

    #[test]
    fn the_documented_example_is_the_encoding() {
        let dir = tempfile::tempdir().unwrap();
        let log = Batchlog::open(dir.path()).unwrap();
        let empty = crate::verbs::encode_mutations(&[]);
        assert_eq!(&empty[..], &[1, 0]);
        log.store(&StoredBatch { id: Uuid::from_u128(1), created_ms: 1_700_000_000_000, mutations: empty })
            .unwrap();
        let bytes = std::fs::read(dir.path().join(format!("{}.batch", Uuid::from_u128(1)))).unwrap();
        let mut want = b"SBBL\x01".to_vec();
        want.extend_from_slice(&[0; 15]);
        want.push(1);
        want.extend_from_slice(&[0x00, 0x68, 0xe5, 0xcf, 0x8b, 0x01, 0x00, 0x00]);
        want.extend_from_slice(&[2, 0, 0, 0, 1, 0]);
        assert_eq!(want.len(), 35);
        let crc = crc32(&want);
        want.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn batches_are_stored_loaded_removed_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = Batchlog::open(dir.path()).unwrap();
        log.store(&batch(1, 100)).unwrap();
        log.store(&batch(2, 200)).unwrap();
        std::fs::write(dir.path().join("x.tmp"), b"half").unwrap();
        let log = Batchlog::open(dir.path()).unwrap();
        assert!(!dir.path().join("x.tmp").exists(), "leftovers of interrupted writes are removed");
        assert_eq!(log.pending(), vec![Uuid::from_u128(1), Uuid::from_u128(2)]);
        assert_eq!(log.load(Uuid::from_u128(2)).unwrap(), Some(batch(2, 200)));
        log.remove(Uuid::from_u128(1));
        assert_eq!(log.pending(), vec![Uuid::from_u128(2)]);
        assert_eq!(log.load(Uuid::from_u128(1)).unwrap(), None);
    }

    #[test]
    fn only_old_enough_batches_replay_and_failures_stay() {
        let dir = tempfile::tempdir().unwrap();
        let log = Batchlog::open(dir.path()).unwrap();
        log.store(&batch(1, 1_000)).unwrap();
        log.store(&batch(2, 9_500)).unwrap();
        let seen: Arc<Mutex<Vec<usize>>> = Arc::default();
        let s = Arc::clone(&seen);
        let fail = Arc::new(AtomicBool::new(true));
        let f = Arc::clone(&fail);
        let apply: ApplyFn = Arc::new(move |m: Vec<Mutation>, _age| {
            if f.load(Ordering::Relaxed) {
                return Err("replicas down".into());
            }
            s.lock().push(m.len());
            Ok(())
        });
        assert_eq!(log.replay_due(Duration::from_secs(1), 10_000, &apply), 0);
        assert_eq!(log.pending().len(), 2, "a failed replay keeps the batch");
        fail.store(false, Ordering::Relaxed);
        assert_eq!(log.replay_due(Duration::from_secs(1), 10_000, &apply), 1, "batch 2 is too young");
        assert_eq!(*seen.lock(), vec![3]);
        assert_eq!(log.pending(), vec![Uuid::from_u128(2)]);
    }

    #[test]
    fn damaged_files_are_reported_with_offset_and_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let log = Batchlog::open(dir.path()).unwrap();
        log.store(&batch(1, 0)).unwrap();
        let path = dir.path().join(format!("{}.batch", Uuid::from_u128(1)));
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 6] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let err = log.load(Uuid::from_u128(1)).unwrap_err();
        assert!(err.contains("checksum") && err.contains("offset"), "{err}");
        let apply: ApplyFn = Arc::new(|_, _| Ok(()));
        assert_eq!(log.replay_due(Duration::ZERO, 1, &apply), 0);
        assert!(
            log.pending().is_empty() && dir.path().join(format!("{}.corrupt", Uuid::from_u128(1))).exists()
        );
        assert_eq!(log.counters().corrupt.load(Ordering::Relaxed), 1);
        // Lengths are checked before use.
        let mut huge = bytes.clone();
        huge[29..33].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_file(&huge).is_err());
        assert!(decode_store(&[1; 10]).is_err());
        assert_eq!(decode_store(&encode_store(&batch(3, 7))), Ok(batch(3, 7)));
        assert_eq!(decode_remove(&encode_remove(Uuid::from_u128(5))), Ok(Uuid::from_u128(5)));
    }
}
