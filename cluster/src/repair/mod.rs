//! Anti-entropy repair: replicas build Merkle trees of their token ranges, the node running the
//! repair compares them, and only the ranges where they differ are read from every replica,
//! merged, and written back to the replicas that were behind.
//!
//! - [`merkle`]: the tree (pure).
//! - [`plan`]: which ranges and replicas a repair covers (pure).
//! - [`validation`]: a replica's side: the VALIDATION verb's request and the tree built from
//!   a scan of the range.
//! - [`RepairService`] (here): runs sessions on a background thread, one at a time, and keeps
//!   their progress and a bounded history for `sibyltool repair` and `repair_admin list`
//!   ([`history`] keeps it across restarts).
//!
//! Unlike Cassandra, the differing ranges are not streamed between replica pairs as whole
//! SSTable sections: the repairing node reads the range from every replica (paged), merges each
//! partition by timestamp and writes the merged partition only to the replicas whose copy
//! differed. Bytes moved are therefore close to the diverged data (plus the neighbours that
//! share its Merkle leaves), and every repair is a full repair (`-full` is accepted and the
//! default).

pub mod history;
pub mod merkle;
pub mod plan;
pub mod validation;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use sibyl_engine::{DecoratedKey, Mutation, PartitionData, ScanCommand, ScanStart, Slice, TableId};
use uuid::Uuid;

use crate::batchlog::now_ms;
use crate::coordinator::Coordinator;
use crate::endpoint::Endpoint;
use crate::messaging::Verb;
use crate::repair::merkle::{MerkleTree, MAX_DEPTH};
pub use crate::repair::plan::{plan_ranges, RangePlan, RepairScope};
use crate::repair::validation::{build_tree, ValidationRequest};
use crate::replication::ReplicationStrategy;
use crate::resolver::{digest, merge_versions, repair_mutation};
use crate::verbs;

/// Partitions asked of each replica per page when syncing a differing range.
pub const SYNC_PAGE_PARTITIONS: usize = 256;
/// Mutations sent to a replica in one request when syncing.
pub const SYNC_BATCH_MUTATIONS: usize = 64;
/// Bytes of mutations sent to a replica in one request when syncing (about).
pub const SYNC_BATCH_BYTES: usize = 4 << 20;
/// How long a replica may take to build one range's tree. A replica that goes down fails the
/// session sooner: the wait checks the failure detector every [`LIVENESS_CHECK`].
pub const VALIDATION_TIMEOUT: Duration = Duration::from_secs(3600);
/// How often a waiting repair checks that its replicas are still alive.
pub const LIVENESS_CHECK: Duration = Duration::from_millis(200);
/// Finished sessions kept for `repair_admin list`.
pub const HISTORY: usize = 100;
/// Progress lines kept per session.
const MAX_EVENTS: usize = 10_000;

/// What to repair.
#[derive(Debug, Clone)]
pub struct RepairRequest {
    /// Keyspace name (for messages and history).
    pub keyspace: String,
    /// Its replication.
    pub strategy: ReplicationStrategy,
    /// Tables by name and id.
    pub tables: Vec<(String, TableId)>,
    /// Ranges to cover.
    pub scope: RepairScope,
}

/// A session's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairState {
    /// Still going.
    Running,
    /// Every range compared and synced.
    Succeeded,
    /// Stopped: the reason says what to do.
    Failed(String),
}

impl RepairState {
    /// `RUNNING`, `SUCCESS` or `FAILED`, as `repair_admin list` prints.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            RepairState::Running => "RUNNING",
            RepairState::Succeeded => "SUCCESS",
            RepairState::Failed(_) => "FAILED",
        }
    }
}

/// A session's progress and outcome.
#[derive(Debug, Clone)]
pub struct RepairSession {
    /// Session id.
    pub id: Uuid,
    /// Keyspace.
    pub keyspace: String,
    /// Tables.
    pub tables: Vec<String>,
    /// Scope asked for.
    pub scope: RepairScope,
    /// Start, milliseconds since the epoch.
    pub started_ms: i64,
    /// End, milliseconds since the epoch (0 while running).
    pub finished_ms: i64,
    /// State.
    pub state: RepairState,
    /// (range, table) pairs to compare.
    pub ranges_total: u64,
    /// Pairs compared and synced.
    pub ranges_done: u64,
    /// Sub-ranges (joined Merkle leaves) where replicas differed.
    pub mismatched_ranges: u64,
    /// Partitions written to at least one replica.
    pub partitions_repaired: u64,
    /// Bytes of differing ranges read from remote replicas.
    pub bytes_fetched: u64,
    /// Bytes of merged partitions sent to replicas that were behind.
    pub bytes_sent: u64,
    /// Progress lines, oldest first (at most 10,000).
    pub events: Vec<String>,
}

impl RepairSession {
    /// Percent of (range, table) pairs done.
    #[must_use]
    pub fn percent(&self) -> u64 {
        (self.ranges_done * 100).checked_div(self.ranges_total).unwrap_or(100)
    }
}

/// Runs repair sessions for one node.
#[derive(Debug)]
pub struct RepairService {
    coordinator: Arc<Coordinator>,
    sessions: Mutex<VecDeque<Arc<Mutex<RepairSession>>>>,
    history_file: Option<PathBuf>,
    /// Set by [`RepairService::cancel`]; one session runs at a time.
    cancel: AtomicBool,
}

impl RepairService {
    /// A service repairing through `coordinator` (its view, storage and messaging), keeping its
    /// history in memory only.
    #[must_use]
    pub fn new(coordinator: Arc<Coordinator>) -> Arc<RepairService> {
        Arc::new(RepairService {
            coordinator,
            sessions: Mutex::new(VecDeque::new()),
            history_file: None,
            cancel: AtomicBool::new(false),
        })
    }

    /// Like [`RepairService::new`], also recording finished sessions in `history_file` and
    /// loading the last [`HISTORY`] of them from it (damaged lines are skipped and logged).
    ///
    /// # Errors
    /// The file exists but cannot be read.
    pub fn with_history(
        coordinator: Arc<Coordinator>,
        history_file: &Path,
    ) -> std::io::Result<Arc<RepairService>> {
        let past = history::load(history_file, HISTORY)?;
        let sessions = past.into_iter().map(|s| Arc::new(Mutex::new(s))).collect();
        Ok(Arc::new(RepairService {
            coordinator,
            sessions: Mutex::new(sessions),
            history_file: Some(history_file.to_path_buf()),
            cancel: AtomicBool::new(false),
        }))
    }

    /// Plans `request` and starts it on a background thread; the session id.
    ///
    /// # Errors
    /// A repair is already running on this node, or the plan failed (see [`plan_ranges`]), or
    /// a replica is down (a repair needs every replica of every range).
    pub fn start(self: &Arc<Self>, request: RepairRequest) -> Result<Uuid, String> {
        let mut sessions = self.sessions.lock();
        if let Some(running) = sessions.iter().find(|s| s.lock().state == RepairState::Running) {
            return Err(format!(
                "repair session {} is still running; wait for it to finish",
                running.lock().id
            ));
        }
        if request.tables.is_empty() {
            return Err(format!("keyspace {} has no tables to repair", request.keyspace));
        }
        let view = self.coordinator.view();
        let local = self.coordinator.local();
        let ranges = plan_ranges(&view.ring, &request.strategy, local, request.scope)?;
        let dead: BTreeSet<Endpoint> = ranges
            .iter()
            .flat_map(|r| r.replicas.iter())
            .filter(|ep| !view.live.contains(ep))
            .copied()
            .collect();
        if !dead.is_empty() {
            return Err(format!(
                "Cannot proceed on repair because a neighbor ({}) is dead: session failed; bring it back or removenode it first",
                dead.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ));
        }
        let id = Uuid::new_v4();
        let session = Arc::new(Mutex::new(RepairSession {
            id,
            keyspace: request.keyspace.clone(),
            tables: request.tables.iter().map(|(n, _)| n.clone()).collect(),
            scope: request.scope,
            started_ms: now_ms(),
            finished_ms: 0,
            state: RepairState::Running,
            ranges_total: (ranges.len() * request.tables.len()) as u64,
            ranges_done: 0,
            mismatched_ranges: 0,
            partitions_repaired: 0,
            bytes_fetched: 0,
            bytes_sent: 0,
            events: Vec::new(),
        }));
        sessions.push_back(Arc::clone(&session));
        while sessions.len() > HISTORY {
            sessions.pop_front();
        }
        drop(sessions);
        self.cancel.store(false, Ordering::Relaxed);
        let this = Arc::clone(self);
        let for_thread = Arc::clone(&session);
        let spawned = std::thread::Builder::new().name("repair".into()).spawn(move || {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                this.run(&for_thread, &request, &ranges);
            }));
            if run.is_err() && for_thread.lock().state == RepairState::Running {
                this.finish(&for_thread, Err("the repair thread panicked (a bug: see the log)".into()));
            }
        });
        if let Err(e) = spawned {
            let reason = format!("cannot start the repair thread: {e}");
            self.finish(&session, Err(reason.clone()));
            return Err(reason);
        }
        Ok(id)
    }

    /// A session's current progress.
    #[must_use]
    pub fn session(&self, id: Uuid) -> Option<RepairSession> {
        self.sessions.lock().iter().find(|s| s.lock().id == id).map(|s| s.lock().clone())
    }

    /// Every kept session, oldest first (events left out).
    #[must_use]
    pub fn sessions(&self) -> Vec<RepairSession> {
        self.sessions
            .lock()
            .iter()
            .map(|s| {
                let s = s.lock();
                RepairSession { events: Vec::new(), ..s.clone() }
            })
            .collect()
    }

    /// Runs a session to the end; `start` has checked it.
    fn run(&self, session: &Mutex<RepairSession>, request: &RepairRequest, ranges: &[RangePlan]) {
        let id = session.lock().id;
        let event = |text: String| {
            tracing::info!(session = %id, "{text}");
            let mut s = session.lock();
            if s.events.len() < MAX_EVENTS {
                s.events.push(text);
            }
        };
        event(format!(
            "Starting repair command #{id}, repairing keyspace {} with {} ranges ({:?}) and tables {}",
            request.keyspace,
            ranges.len(),
            request.scope,
            session.lock().tables.join(", ")
        ));
        let outcome = (|| -> Result<(), String> {
            for range in ranges {
                for (name, table) in &request.tables {
                    self.check_cancelled()?;
                    let stats = self.repair_range(*table, range)?;
                    let (done, total, percent, streamed) = {
                        let mut s = session.lock();
                        s.ranges_done += 1;
                        s.mismatched_ranges += stats.mismatched;
                        s.partitions_repaired += stats.partitions;
                        s.bytes_fetched += stats.fetched;
                        s.bytes_sent += stats.sent;
                        (s.ranges_done, s.ranges_total, s.percent(), s.bytes_fetched + s.bytes_sent)
                    };
                    let what = if stats.mismatched == 0 {
                        "replicas are consistent".to_string()
                    } else {
                        format!(
                            "{} differing sub-ranges, {} partitions repaired, {} bytes fetched, {} bytes sent",
                            stats.mismatched, stats.partitions, stats.fetched, stats.sent
                        )
                    };
                    event(format!(
                        "Repair of ({}, {}] for {}.{name} on {} finished: {what} (progress: {percent}%, {done}/{total} ranges, {streamed} bytes streamed)",
                        range.start,
                        range.end,
                        request.keyspace,
                        range.replicas.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            Ok(())
        })();
        self.finish(session, outcome);
    }

    /// Ends a session: its last progress line (always kept, even past the cap) before its final
    /// state, so a poller that sees the state also sees the line; then the history file.
    fn finish(&self, session: &Mutex<RepairSession>, outcome: Result<(), String>) {
        let mut s = session.lock();
        let id = s.id;
        s.finished_ms = now_ms();
        let summary = format!(
            "{}/{} ranges, {} differing sub-ranges, {} partitions repaired, {} bytes streamed",
            s.ranges_done,
            s.ranges_total,
            s.mismatched_ranges,
            s.partitions_repaired,
            s.bytes_fetched.saturating_add(s.bytes_sent)
        );
        let (line, state) = match outcome {
            Ok(()) => {
                (format!("Repair command #{id} finished successfully: {summary}"), RepairState::Succeeded)
            }
            Err(reason) => {
                tracing::warn!(session = %id, %reason, "repair failed");
                (
                    format!("Repair command #{id} failed with error {reason} ({summary})"),
                    RepairState::Failed(reason),
                )
            }
        };
        tracing::info!(session = %id, "{line}");
        s.events.push(line);
        s.state = state;
        drop(s);
        self.cancel.store(false, Ordering::Relaxed);
        if let Some(path) = &self.history_file {
            let record = session.lock().clone();
            if let Err(e) = history::append(path, &record, HISTORY) {
                tracing::warn!(file = %path.display(), error = %e, "cannot record the repair session in the history file; repair_admin list will not show it after a restart");
            }
        }
    }

    /// Asks the running session to stop (`repair_admin cancel`); it fails with "cancelled" at
    /// its next step.
    ///
    /// # Errors
    /// No session with that id is running.
    pub fn cancel(&self, id: Uuid) -> Result<(), String> {
        let running = self.sessions.lock().iter().any(|s| {
            let s = s.lock();
            s.id == id && s.state == RepairState::Running
        });
        if !running {
            return Err(format!("no running repair session {id}"));
        }
        self.cancel.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn check_cancelled(&self) -> Result<(), String> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err("cancelled by repair_admin cancel".into());
        }
        Ok(())
    }

    /// Compares one range of one table across its replicas and syncs where they differ.
    fn repair_range(&self, table: TableId, range: &RangePlan) -> Result<RangeStats, String> {
        let mut stats = RangeStats::default();
        if range.replicas.len() < 2 {
            return Ok(stats);
        }
        let now_seconds = now_seconds();
        let req =
            ValidationRequest { table, start: range.start, end: range.end, depth: MAX_DEPTH, now_seconds };
        let storage = Arc::clone(self.coordinator.storage());
        let answers =
            self.ask(&range.replicas, verbs::VALIDATION, &req.encode(), VALIDATION_TIMEOUT, || {
                build_tree(storage.as_ref(), &req).map(|t| Bytes::from(t.encode()))
            })?;
        let mut trees: Vec<(Endpoint, MerkleTree)> = Vec::with_capacity(answers.len());
        for (ep, bytes) in answers {
            let tree = MerkleTree::decode(&bytes).map_err(|e| format!("validation from {ep}: {e}"))?;
            if (tree.start(), tree.end()) != (range.start, range.end) {
                return Err(format!("validation from {ep} covers another range"));
            }
            trees.push((ep, tree));
        }
        // Every pair's differing leaves, joined.
        let mut leaves: BTreeSet<usize> = BTreeSet::new();
        for i in 0..trees.len() {
            for j in i + 1..trees.len() {
                leaves.extend(trees[i].1.differing_leaves(&trees[j].1).map_err(|e| e.to_string())?);
            }
        }
        let Some((_, tree)) = trees.first() else { return Ok(stats) };
        let differing = tree.ranges_of_leaves(leaves);
        stats.mismatched = differing.len() as u64;
        for (start, end) in differing {
            self.sync(table, start, end, &range.replicas, now_seconds, &mut stats)?;
        }
        Ok(stats)
    }

    /// Reads `(start, end]` from every replica page by page, merges each partition, and writes
    /// the merged partition to the replicas whose copy differs.
    fn sync(
        &self,
        table: TableId,
        start: i64,
        end: i64,
        replicas: &[Endpoint],
        now_seconds: u32,
        stats: &mut RangeStats,
    ) -> Result<(), String> {
        for (first, last) in validation::unwrap(start, end) {
            let mut cursor = first;
            loop {
                let cmd = ScanCommand {
                    table,
                    start: cursor.clone(),
                    end: last,
                    slices: vec![Slice::all()],
                    partition_limit: SYNC_PAGE_PARTITIONS,
                    row_limit: usize::MAX,
                    now_seconds,
                };
                let storage = Arc::clone(self.coordinator.storage());
                let answers = self.ask(
                    replicas,
                    verbs::RANGE_READ,
                    &verbs::encode_scan(&cmd),
                    self.coordinator.timeouts().range,
                    || storage.scan(&cmd).map(|p| verbs::encode_partitions(&p)).map_err(|e| e.to_string()),
                )?;
                let mut pages: Vec<(Endpoint, Vec<PartitionData>)> = Vec::with_capacity(answers.len());
                for (ep, bytes) in answers {
                    if ep != self.coordinator.local() {
                        stats.fetched += bytes.len() as u64;
                    }
                    let parts = verbs::decode_partitions(&bytes)
                        .map_err(|e| format!("bad range answer from {ep}: {e}"))?;
                    pages.push((ep, parts));
                }
                // Partitions up to the smallest last key of a full page are complete on every
                // replica; later ones are asked again with the next page.
                let bound: Option<DecoratedKey> = pages
                    .iter()
                    .filter(|(_, p)| p.len() >= SYNC_PAGE_PARTITIONS)
                    .filter_map(|(_, p)| p.last().map(|x| x.key.clone()))
                    .min();
                let mut by_key: BTreeMap<DecoratedKey, Vec<(Endpoint, PartitionData)>> = BTreeMap::new();
                for (ep, parts) in pages {
                    for p in parts {
                        if bound.as_ref().is_none_or(|b| p.key <= *b) {
                            by_key.entry(p.key.clone()).or_default().push((ep, p));
                        }
                    }
                }
                let mut outgoing: BTreeMap<Endpoint, Vec<Mutation>> = BTreeMap::new();
                for versions in by_key.into_values() {
                    let merged = merge_versions(
                        versions.iter().map(|(_, p)| Some(p.clone())).collect(),
                        false,
                        usize::MAX,
                        now_seconds,
                    );
                    let Some(merged) = merged else { continue };
                    let want = digest(Some(&merged));
                    let mut repaired = false;
                    for ep in replicas {
                        let theirs = versions.iter().find(|(e, _)| e == ep).map(|(_, p)| p);
                        if digest(theirs) != want {
                            outgoing.entry(*ep).or_default().push(repair_mutation(table, &merged));
                            repaired = true;
                        }
                    }
                    stats.partitions += u64::from(repaired);
                }
                for (ep, mutations) in outgoing {
                    for batch in batches(mutations) {
                        self.send_mutations(ep, &batch, stats)?;
                    }
                }
                match bound {
                    Some(b) => cursor = ScanStart::AfterKey(b),
                    None => break,
                }
            }
        }
        Ok(())
    }

    fn send_mutations(&self, ep: Endpoint, batch: &[Mutation], stats: &mut RangeStats) -> Result<(), String> {
        if ep == self.coordinator.local() {
            return self
                .coordinator
                .storage()
                .apply(batch.to_vec())
                .map_err(|e| format!("applying a repair here: {e}"));
        }
        let payload = verbs::encode_mutations(batch);
        stats.sent += payload.len() as u64;
        self.ask(&[ep], verbs::MUTATION, &payload, self.coordinator.timeouts().write, || Ok(Bytes::new()))?;
        Ok(())
    }

    /// Sends `payload` to every remote endpoint of `to` and runs `local` for this node, then waits
    /// for every answer. Fails as soon as one fails, or an endpoint is seen down, or `timeout`
    /// passes.
    fn ask(
        &self,
        to: &[Endpoint],
        verb: Verb,
        payload: &Bytes,
        timeout: Duration,
        local: impl FnOnce() -> Result<Bytes, String>,
    ) -> Result<Vec<(Endpoint, Bytes)>, String> {
        let me = self.coordinator.local();
        let (tx, rx) = mpsc::sync_channel::<(Endpoint, Result<Bytes, String>)>(to.len().max(1));
        let remote: Vec<Endpoint> = to.iter().copied().filter(|ep| *ep != me).collect();
        if !remote.is_empty() {
            let messaging = self
                .coordinator
                .messaging_service()
                .ok_or_else(|| "internode messaging is not running on this node".to_string())?;
            for ep in &remote {
                let tx = tx.clone();
                let ep = *ep;
                messaging.send_request(
                    ep,
                    verb,
                    payload.clone(),
                    timeout,
                    Box::new(move |r| {
                        let answer = r.map(|resp| resp.payload).map_err(|e| e.to_string());
                        let _ = tx.send((ep, answer));
                    }),
                );
            }
        }
        let mut out = Vec::with_capacity(to.len());
        if to.contains(&me) {
            out.push((me, local().map_err(|e| format!("on this node ({me}): {e}"))?));
        }
        let deadline = Instant::now() + timeout;
        let mut pending: BTreeSet<Endpoint> = remote.into_iter().collect();
        let mut checked = Instant::now();
        while !pending.is_empty() {
            self.check_cancelled()?;
            match rx.recv_timeout(LIVENESS_CHECK) {
                Ok((ep, Ok(bytes))) => {
                    pending.remove(&ep);
                    out.push((ep, bytes));
                }
                Ok((ep, Err(e))) => return Err(format!("{} from {ep} failed: {e}", verbs::verb_name(verb))),
                Err(_) => {}
            }
            if pending.is_empty() || checked.elapsed() < LIVENESS_CHECK {
                continue;
            }
            checked = Instant::now();
            let view = self.coordinator.view();
            if let Some(dead) = pending.iter().find(|ep| !view.live.contains(ep)) {
                return Err(format!(
                    "Endpoint {dead} died while the repair waited for its {}: session failed; run the repair again once it is back",
                    verbs::verb_name(verb)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} timed out after {timeout:?} waiting for {}",
                    verbs::verb_name(verb),
                    pending.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok(out)
    }
}

/// Splits mutations into requests of at most [`SYNC_BATCH_MUTATIONS`] mutations and about
/// [`SYNC_BATCH_BYTES`] (a single larger mutation travels alone).
fn batches(mutations: Vec<Mutation>) -> Vec<Vec<Mutation>> {
    let mut out: Vec<Vec<Mutation>> = Vec::new();
    let mut bytes = 0usize;
    for m in mutations {
        let size = verbs::encode_mutations(std::slice::from_ref(&m)).len();
        match out.last_mut() {
            Some(last) if last.len() < SYNC_BATCH_MUTATIONS && bytes + size <= SYNC_BATCH_BYTES => {
                bytes += size;
                last.push(m);
            }
            _ => {
                bytes = size;
                out.push(vec![m]);
            }
        }
    }
    out
}

#[derive(Debug, Default)]
struct RangeStats {
    mismatched: u64,
    partitions: u64,
    fetched: u64,
    sent: u64,
}

/// Seconds since the epoch ("now" for TTL expiry in scans).
pub(crate) fn now_seconds() -> u32 {
    u32::try_from(now_ms() / 1000).unwrap_or(u32::MAX)
}
