//! The commit log: one append-only log shared by every table, cut into fixed-size segments.
//!
//! A write appends its encoded partition update as one CRC-framed record (see [`segment`]; the
//! first record of a table in a segment is preceded by a small record naming the table) with a
//! positioned `write` into the page cache, so a killed process loses nothing; durability
//! against power loss comes from the sync thread's `fdatasync`:
//!
//! * `periodic`: writes are acknowledged at once, the sync thread syncs every `period`;
//! * `batch`: a write waits until a sync covers it; the sync thread starts a sync as soon as
//!   anything is pending, so writers that arrive during a sync share the next one;
//! * `group`: like batch, but the sync thread waits `window` after the first pending write to
//!   gather more writers per sync (fewer, larger syncs; higher latency).
//!
//! A failed sync poisons the log: every waiter and every later append gets
//! [`Error::Poisoned`](crate::Error::Poisoned); the sync is never retried (the kernel may have
//! dropped the dirty pages, so a retry that "succeeds" would be a lie).
//!
//! An allocator thread keeps the next segment created, preallocated and fsynced ahead of time,
//! so the writer that fills the active segment switches to it at once instead of stalling every
//! writer on file creation (Cassandra's segment allocator does the same). If the allocator cannot
//! create it, the writers that need it fail with the I/O error instead of waiting forever.
//!
//! Each segment remembers, per table, the end of the last record it holds for that table. When a
//! table's memtable is flushed up to a position, [`CommitLog::mark_flushed`] forgets the table in
//! older segments; a segment no table needs any more is deleted.

pub mod replay;
pub mod segment;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::ids::TableId;
pub use segment::{Position, SegmentId};

/// When the commit log is synced to disk (`commitlog_sync` in the yaml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Acknowledge at once; sync every `period` (`commitlog_sync_period`).
    Periodic {
        /// Time between syncs.
        period: Duration,
    },
    /// Acknowledge after a sync that covers the write; syncs run back to back.
    Batch,
    /// Acknowledge after a sync; wait `window` (`commitlog_sync_group_window`) to gather writers.
    Group {
        /// Gathering window.
        window: Duration,
    },
}

/// Commit log settings.
#[derive(Debug, Clone)]
pub struct CommitLogOptions {
    /// Directory of the segment files (`commitlog_directory`).
    pub dir: PathBuf,
    /// Size of each segment (`commitlog_segment_size`).
    pub segment_size_bytes: u32,
    /// Sync mode (`commitlog_sync`).
    pub sync: SyncMode,
    /// lz4-compress each record that it shrinks (`commitlog_compression: LZ4Compressor`).
    pub compression: bool,
    /// Timestamp base of the first segment: a write timestamp the first writes are likely near
    /// (the engine passes its clock's time). Later segments take the last write's.
    pub timestamp_base: i64,
}

impl CommitLogOptions {
    /// Largest record payload: half a segment, as Cassandra's `max_mutation_size`.
    #[must_use]
    pub fn max_record_bytes(&self) -> usize {
        (self.segment_size_bytes as usize - segment::HEADER_BYTES) / 2
    }
}

/// Where one appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Position of the record's first byte (replay compares this with flushed positions).
    pub start: Position,
    /// Position just past the record (a sync must reach it before the write is durable).
    pub end: Position,
}

#[derive(Debug)]
struct Segment {
    id: SegmentId,
    path: PathBuf,
    file: Arc<File>,
    /// Per table: end offset of the last record written for it.
    dirty: HashMap<TableId, u32>,
    /// Per table: the ordinal its `define` record gave it in this segment.
    ordinals: HashMap<TableId, u32>,
    /// Update timestamps are stored relative to this (from the header).
    timestamp_base: i64,
}

#[derive(Debug)]
struct State {
    active: Segment,
    offset: u32,
    /// Segments that are full; kept until no table needs them.
    closed: BTreeMap<SegmentId, Segment>,
    /// Full segments whose last bytes have not been synced yet.
    unsynced: Vec<Arc<File>>,
    written: Position,
    frame: Vec<u8>,
    /// Scratch for record heads.
    head: Vec<u8>,
    /// The base of the last update appended: the timestamp base of the next segment the
    /// allocator creates.
    recent_timestamp: i64,
    /// The next segment, created ahead of time by the allocator thread so that a writer that
    /// fills the active segment does not stall every writer on file creation and fsyncs.
    spare: Option<Segment>,
    /// Why the allocator could not create the spare, for the writer that needs it.
    spare_error: Option<String>,
}

#[derive(Debug)]
struct Synced {
    position: Position,
    poisoned: Option<String>,
}

#[derive(Debug)]
struct Shared {
    options: CommitLogOptions,
    state: Mutex<State>,
    pending: Condvar,
    synced: Mutex<Synced>,
    synced_changed: Condvar,
    poisoned: AtomicBool,
    shutdown: AtomicBool,
    /// Wakes the allocator thread when the spare segment was taken.
    spare_needed: Condvar,
    /// Wakes a writer waiting for the spare segment.
    spare_ready: Condvar,
}

/// The commit log writer. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct CommitLog {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// How long a writer waits for the allocator to provide the next segment.
const SPARE_WAIT: Duration = Duration::from_secs(30);

impl CommitLog {
    /// Starts a log in `options.dir` whose first segment is `first_segment` (greater than any
    /// segment replayed before), and starts the sync thread.
    pub fn open(options: CommitLogOptions, first_segment: SegmentId) -> Result<CommitLog> {
        assert!(options.segment_size_bytes as usize > segment::HEADER_BYTES * 4, "segment too small");
        std::fs::create_dir_all(&options.dir).map_err(|e| Error::io(&options.dir, e))?;
        let timestamp_base = options.timestamp_base;
        let active = create_segment(&options, first_segment, timestamp_base)?;
        let start = Position { segment: first_segment, offset: segment::HEADER_BYTES as u32 };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                active,
                offset: start.offset,
                closed: BTreeMap::new(),
                unsynced: Vec::new(),
                written: start,
                frame: Vec::new(),
                head: Vec::new(),
                recent_timestamp: timestamp_base,
                spare: None,
                spare_error: None,
            }),
            options,
            pending: Condvar::new(),
            synced: Mutex::new(Synced { position: start, poisoned: None }),
            synced_changed: Condvar::new(),
            poisoned: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            spare_needed: Condvar::new(),
            spare_ready: Condvar::new(),
        });
        let log = CommitLog { shared: Arc::clone(&shared), threads: Mutex::new(Vec::new()) };
        for (name, body) in
            [("commitlog-sync", sync_loop as fn(&Shared)), ("commitlog-allocator", allocate_loop)]
        {
            let thread_shared = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || body(&thread_shared))
                .map_err(|e| Error::io(name, e))?;
            log.threads.lock().push(handle);
        }
        Ok(log)
    }

    /// The configured options.
    #[must_use]
    pub fn options(&self) -> &CommitLogOptions {
        &self.shared.options
    }

    /// Appends one partition update of `table` (`update` as [`crate::serialization::encode_update`]
    /// wrote it, relative to `base`). Does not wait for durability: see [`Self::wait_durable`].
    pub fn append(&self, table: TableId, base: i64, update: &[u8]) -> Result<Appended> {
        self.check_record(update.len())?;
        // Compressed outside the lock, so writers compress in parallel.
        let compressed = if self.shared.options.compression { segment::deflate(update) } else { None };
        let content = compressed.as_deref().unwrap_or(update);
        // Room for a define record and the update's head, whatever the segment holds.
        let worst = segment::frame_len(1 + 5 + 16) + segment::frame_len(1 + 5 + 10 + content.len());
        let mut st = self.shared.state.lock();
        if st.offset as usize + worst > self.shared.options.segment_size_bytes as usize {
            self.roll(&mut st)?;
        }
        let State { frame, head, active, recent_timestamp, .. } = &mut *st;
        *recent_timestamp = base;
        frame.clear();
        let next = active.ordinals.len() as u32;
        let ordinal = *active.ordinals.entry(table).or_insert_with(|| {
            head.clear();
            segment::encode_define(next, table, head);
            segment::encode_frame(&[head], frame);
            next
        });
        let define_len = frame.len() as u32;
        let defined = define_len > 0;
        head.clear();
        segment::encode_update_head(
            ordinal,
            base.wrapping_sub(active.timestamp_base),
            compressed.is_some(),
            head,
        );
        segment::encode_frame(&[head, content], frame);
        let written = self.write(&mut st, &[table], define_len);
        if written.is_err() && defined {
            // The define record was not written: the next record of the table must write it.
            st.active.ordinals.remove(&table);
        }
        written
    }

    /// Appends one record that holds writes to several tables (a logged batch), as a payload
    /// that names its tables: every table keeps the segment until it is flushed past the record.
    pub fn append_for(&self, tables: &[TableId], payload: &[u8]) -> Result<Appended> {
        self.check_record(payload.len())?;
        let compressed = if self.shared.options.compression { segment::deflate(payload) } else { None };
        let (k, content) = match &compressed {
            Some(c) => (segment::kind::PLAIN | segment::kind::COMPRESSED, &c[..]),
            None => (segment::kind::PLAIN, payload),
        };
        let mut st = self.shared.state.lock();
        if st.offset as usize + segment::frame_len(1 + content.len())
            > self.shared.options.segment_size_bytes as usize
        {
            self.roll(&mut st)?;
        }
        st.frame.clear();
        let State { frame, .. } = &mut *st;
        segment::encode_frame(&[&[k], content], frame);
        self.write(&mut st, tables, 0)
    }

    fn check_record(&self, len: usize) -> Result<()> {
        self.check_poisoned()?;
        let max = self.shared.options.max_record_bytes();
        if len == 0 || len > max {
            return Err(Error::InvalidRequest(format!(
                "mutation of {len} bytes is larger than the maximum of {max} bytes (half of commitlog_segment_size)"
            )));
        }
        Ok(())
    }

    /// Writes the frames in `st.frame` at the end of the active segment; the record for `tables`
    /// starts `skip` bytes into them (after a define record).
    fn write(
        &self,
        st: &mut parking_lot::MutexGuard<'_, State>,
        tables: &[TableId],
        skip: u32,
    ) -> Result<Appended> {
        let State { frame, active, offset, .. } = &mut **st;
        active.file.write_all_at(frame, u64::from(*offset)).map_err(|e| Error::io(&active.path, e))?;
        let start = Position { segment: active.id, offset: *offset + skip };
        *offset += frame.len() as u32;
        let end = Position { segment: active.id, offset: *offset };
        for table in tables {
            active.dirty.insert(*table, end.offset);
        }
        st.written = end;
        if !matches!(self.shared.options.sync, SyncMode::Periodic { .. }) {
            self.shared.pending.notify_one();
        }
        Ok(Appended { start, end })
    }

    /// Blocks until the record ending at `end` is durable under the sync mode (returns at once
    /// in periodic mode), or fails if the log is poisoned.
    pub fn wait_durable(&self, end: Position) -> Result<()> {
        if matches!(self.shared.options.sync, SyncMode::Periodic { .. }) {
            return self.check_poisoned();
        }
        let mut s = self.shared.synced.lock();
        loop {
            if let Some(reason) = &s.poisoned {
                return Err(Error::Poisoned { reason: reason.clone() });
            }
            if s.position >= end {
                return Ok(());
            }
            self.shared.synced_changed.wait(&mut s);
        }
    }

    /// Syncs everything written so far, whatever the mode (used by flush and close).
    pub fn sync_now(&self) -> Result<()> {
        let end = self.current_position();
        {
            let st = self.shared.state.lock();
            let files: Vec<Arc<File>> =
                st.unsynced.iter().cloned().chain(std::iter::once(Arc::clone(&st.active.file))).collect();
            drop(st);
            for f in files {
                if let Err(e) = f.sync_data() {
                    poison(&self.shared, format!("fdatasync failed: {e}"));
                    return self.check_poisoned();
                }
            }
        }
        let mut s = self.shared.synced.lock();
        if s.position < end {
            s.position = end;
        }
        self.shared.synced_changed.notify_all();
        Ok(())
    }

    /// The position the next record will get: every record before it has `start` below it.
    #[must_use]
    pub fn current_position(&self) -> Position {
        self.shared.state.lock().written
    }

    /// Records that every record of `table` starting before `upto` is in an SSTable, and deletes
    /// segments no table needs any more. Returns how many segments were deleted.
    pub fn mark_flushed(&self, table: TableId, upto: Position) -> Result<usize> {
        let mut st = self.shared.state.lock();
        let forget = |seg: &mut Segment| {
            if seg.id < upto.segment || seg.dirty.get(&table).is_some_and(|end| *end <= upto.offset) {
                seg.dirty.remove(&table);
            }
        };
        st.closed.values_mut().for_each(forget);
        forget(&mut st.active);
        self.delete_clean(&mut st)
    }

    /// Forgets a dropped table everywhere.
    pub fn forget_table(&self, table: TableId) -> Result<usize> {
        let mut st = self.shared.state.lock();
        st.closed.values_mut().for_each(|s| {
            s.dirty.remove(&table);
        });
        st.active.dirty.remove(&table);
        self.delete_clean(&mut st)
    }

    fn delete_clean(&self, st: &mut State) -> Result<usize> {
        let clean: Vec<SegmentId> =
            st.closed.iter().filter(|(_, s)| s.dirty.is_empty()).map(|(id, _)| *id).collect();
        for id in &clean {
            if let Some(seg) = st.closed.remove(id) {
                st.unsynced.retain(|f| !Arc::ptr_eq(f, &seg.file));
                std::fs::remove_file(&seg.path).map_err(|e| Error::io(&seg.path, e))?;
                tracing::debug!(segment = id.0, "deleted commit log segment, all its tables are flushed");
            }
        }
        Ok(clean.len())
    }

    /// Bytes held by all segments on disk.
    #[must_use]
    pub fn total_size_bytes(&self) -> u64 {
        let st = self.shared.state.lock();
        (st.closed.len() as u64 + 1) * u64::from(self.shared.options.segment_size_bytes)
    }

    /// Tables that still need the oldest segment: flushing them lets it be deleted.
    #[must_use]
    pub fn tables_pinning_oldest_segment(&self) -> Vec<TableId> {
        let st = self.shared.state.lock();
        st.closed.values().next().map(|s| s.dirty.keys().copied().collect()).unwrap_or_default()
    }

    /// Number of segment files.
    #[must_use]
    pub fn segment_count(&self) -> usize {
        self.shared.state.lock().closed.len() + 1
    }

    /// Whether a failed sync has poisoned the log.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::Acquire)
    }

    fn check_poisoned(&self) -> Result<()> {
        if self.is_poisoned() {
            let reason = self.shared.synced.lock().poisoned.clone().unwrap_or_default();
            return Err(Error::Poisoned { reason });
        }
        Ok(())
    }

    /// Makes the spare segment the active one, waiting for the allocator if it is not ready.
    fn roll(&self, st: &mut parking_lot::MutexGuard<'_, State>) -> Result<()> {
        let deadline = std::time::Instant::now() + SPARE_WAIT;
        loop {
            if let Some(seg) = st.spare.take() {
                let old = std::mem::replace(&mut st.active, seg);
                st.unsynced.push(Arc::clone(&old.file));
                st.closed.insert(old.id, old);
                st.offset = segment::HEADER_BYTES as u32;
                self.shared.spare_needed.notify_one();
                return Ok(());
            }
            let dir = &self.shared.options.dir;
            if let Some(reason) = st.spare_error.take() {
                self.shared.spare_needed.notify_one();
                return Err(Error::io(dir, std::io::Error::other(reason)));
            }
            if self.shared.shutdown.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            self.shared.spare_needed.notify_one();
            if self.shared.spare_ready.wait_until(st, deadline).timed_out() {
                return Err(Error::io(
                    dir,
                    std::io::Error::other("timed out waiting for a new commit log segment"),
                ));
            }
        }
    }

    fn stop_threads(&self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.pending.notify_all();
        self.shared.spare_needed.notify_all();
        self.shared.spare_ready.notify_all();
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
    }

    /// Syncs what was written and stops the sync thread.
    pub fn close(&self) -> Result<()> {
        let result = if self.is_poisoned() { self.check_poisoned() } else { self.sync_now() };
        self.stop_threads();
        result
    }

    /// Test hook: poison the log as a failed fsync would.
    #[doc(hidden)]
    pub fn poison_for_test(&self, reason: &str) {
        poison(&self.shared, reason.to_string());
    }
}

impl Drop for CommitLog {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

fn poison(shared: &Shared, reason: String) {
    tracing::error!(%reason, "commit log poisoned: refusing all further writes; fix the disk and restart the node");
    shared.poisoned.store(true, Ordering::Release);
    let mut s = shared.synced.lock();
    if s.poisoned.is_none() {
        s.poisoned = Some(reason);
    }
    shared.synced_changed.notify_all();
}

fn sync_loop(shared: &Shared) {
    loop {
        {
            let mut st = shared.state.lock();
            match shared.options.sync {
                SyncMode::Periodic { period } => {
                    if !shared.shutdown.load(Ordering::Acquire) {
                        shared.pending.wait_for(&mut st, period);
                    }
                }
                SyncMode::Batch | SyncMode::Group { .. } => {
                    while st.written <= shared.synced.lock().position
                        && !shared.shutdown.load(Ordering::Acquire)
                    {
                        shared.pending.wait_for(&mut st, Duration::from_millis(100));
                    }
                }
            }
        }
        if let SyncMode::Group { window } = shared.options.sync {
            if !shared.shutdown.load(Ordering::Acquire) {
                std::thread::sleep(window);
            }
        }
        if shared.poisoned.load(Ordering::Acquire) {
            return;
        }
        let (target, files) = {
            let mut st = shared.state.lock();
            let mut files: Vec<Arc<File>> = std::mem::take(&mut st.unsynced);
            files.push(Arc::clone(&st.active.file));
            (st.written, files)
        };
        if target > shared.synced.lock().position {
            for f in &files {
                if let Err(e) = f.sync_data() {
                    poison(shared, format!("fdatasync of the commit log failed: {e}"));
                    return;
                }
            }
            let mut s = shared.synced.lock();
            if s.position < target {
                s.position = target;
            }
            shared.synced_changed.notify_all();
        }
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
    }
}

/// Keeps one spare segment ready: whenever the spare was taken, creates the next one.
fn allocate_loop(shared: &Shared) {
    loop {
        let (id, base) = {
            let mut st = shared.state.lock();
            while (st.spare.is_some() || st.spare_error.is_some()) && !shared.shutdown.load(Ordering::Acquire)
            {
                shared.spare_needed.wait_for(&mut st, Duration::from_secs(1));
            }
            if shared.shutdown.load(Ordering::Acquire) {
                return;
            }
            // While there is no spare the active segment cannot change, so this id is free.
            (SegmentId(st.active.id.0 + 1), st.recent_timestamp)
        };
        let created = create_segment(&shared.options, id, base);
        let mut st = shared.state.lock();
        match created {
            Ok(seg) => st.spare = Some(seg),
            Err(e) => {
                tracing::error!(error = %e, "cannot create the next commit log segment; writes that need it fail until it can be created");
                st.spare_error = Some(e.to_string());
            }
        }
        shared.spare_ready.notify_all();
    }
}

fn create_segment(options: &CommitLogOptions, id: SegmentId, timestamp_base: i64) -> Result<Segment> {
    let (dir, size) = (&options.dir, options.segment_size_bytes);
    let path = dir.join(segment::file_name(segment::VERSION, id));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    // Preallocate so later fdatasyncs need not update file metadata; fall back to a sparse file.
    if rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, u64::from(size)).is_err() {
        file.set_len(u64::from(size)).map_err(|e| Error::io(&path, e))?;
    }
    file.write_all_at(&segment::encode_header(id, timestamp_base), 0).map_err(|e| Error::io(&path, e))?;
    file.sync_all().map_err(|e| Error::io(&path, e))?;
    sync_dir(dir)?;
    Ok(Segment {
        id,
        path,
        file: Arc::new(file),
        dirty: HashMap::new(),
        ordinals: HashMap::new(),
        timestamp_base,
    })
}

/// fsyncs a directory so entries created or renamed in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}
