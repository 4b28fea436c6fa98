//! Ring changes run by one node: bootstrap (and replace), decommission and removenode.
//!
//! Each follows Cassandra's sequence, with the gossiped STATUS telling the other nodes what to
//! do meanwhile (see [`crate::service::RingStatus`]):
//!
//! - **Bootstrap**: announce `BOOT` with the chosen tokens; wait `ring_delay` so every
//!   coordinator has seen it and sends it the writes of its future ranges (pending ranges); ask
//!   one current replica of each gained range to stream it ([`crate::streaming`]); announce
//!   `NORMAL`. A replacement does the same with `BOOT_REPLACE,<dead address>` and the dead
//!   node's tokens.
//! - **Decommission**: announce `LEAVING`; wait `ring_delay`; stream each range this node
//!   replicates to the node that becomes its replica; announce `LEFT`. Writes reach both the
//!   leaving node and the new replicas until then.
//! - **Removenode**: for a dead node, announce `removing,<host id>` in *its* gossip state; each
//!   range it replicated is streamed by a live replica to the node that becomes its replica;
//!   announce `removed,<host id>`.
//!
//! The plan of what moves is pure ([`crate::streaming::plan`]); this module does the waiting,
//! the gossip announcements and the requests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sibyl_engine::TableId;
use uuid::Uuid;

use crate::endpoint::Endpoint;
use crate::gossip::ApplicationState;
use crate::messaging::Verb;
use crate::replication::ReplicationStrategy;
use crate::service::{ClusterService, Inner, RingStatus, GOSSIP_INTERVAL};
use crate::streaming::plan::{future_ring, plan_transfers, Transfer};
use crate::streaming::{self, StreamOperation, StreamRequest, STREAM_DATA_TIMEOUT};
use crate::verbs;

/// How long one STREAM_REQUEST may take; a source that goes down fails it sooner (checked every
/// [`LIVENESS_CHECK`]).
pub const STREAM_REQUEST_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// How often a waiting operation checks that the nodes it waits on are alive.
pub const LIVENESS_CHECK: Duration = Duration::from_millis(200);

/// Decides when a node an operation waits on has *gone down*: it must have been seen up first.
///
/// A node's liveness verdict lags its restart: a source that was itself restarted, or that
/// failed to connect to the target while the target was down, still holds it down for up to a
/// reconnect backoff after the target asks it to stream. Failing the stream at once would fail
/// the retry the operator just started; only an up-then-down change (or the request's own
/// timeout) fails it. Feed it this node's verdicts only (the coordinator view's live set), not
/// other evidence such as an answered request: a stale "down" after an answered request would
/// read as a fresh failure.
#[derive(Debug, Default)]
pub struct WentDown {
    seen_up: bool,
}

impl WentDown {
    /// Records one liveness observation; true when the node was up before and is down now.
    pub fn observe(&mut self, live: bool) -> bool {
        if live {
            self.seen_up = true;
        }
        self.seen_up && !live
    }
}

/// This node's place in the ring (`netstats` prints it as `Mode:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Started, not yet a member (before bootstrap).
    Starting,
    /// Bootstrapping or replacing (UJ).
    Joining,
    /// A member.
    Normal,
    /// Decommissioning (UL).
    Leaving,
    /// Decommissioned: out of the ring; the process is about to stop.
    Decommissioned,
}

impl Mode {
    /// Cassandra's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Mode::Starting => "STARTING",
            Mode::Joining => "JOINING",
            Mode::Normal => "NORMAL",
            Mode::Leaving => "LEAVING",
            Mode::Decommissioned => "DECOMMISSIONED",
        }
    }
}

/// A keyspace's replication and tables: what a ring change streams.
#[derive(Debug, Clone)]
pub struct KeyspaceTables {
    /// Keyspace name (for messages).
    pub keyspace: String,
    /// Its replication.
    pub strategy: ReplicationStrategy,
    /// Its tables.
    pub tables: Vec<TableId>,
}

/// A removenode's progress (`sibyltool removenode status`).
#[derive(Debug, Clone)]
pub struct RemovalProgress {
    /// The dead node's host id.
    pub host_id: Uuid,
    /// Its address.
    pub endpoint: Endpoint,
    /// Streams (source, target, keyspace) to run.
    pub streams_total: usize,
    /// Streams done.
    pub streams_done: usize,
    /// `RUNNING`, `COMPLETED` or `FAILED: reason`.
    pub state: String,
}

/// Settings of a ring change.
#[derive(Debug, Clone)]
pub struct MoveSettings {
    /// How long to wait after announcing a change before moving data, so that every coordinator
    /// sends writes to the pending replicas (Cassandra's `ring_delay_ms`, 30 s).
    pub ring_delay: Duration,
    /// Refuse to start while another node joins or leaves (Cassandra's
    /// `cassandra.consistent.rangemovement`).
    pub consistent_range_movement: bool,
}

/// One stream to run: from `source` to `target`, of some tables over some ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StreamTask {
    source: Endpoint,
    target: Endpoint,
    keyspace: String,
    tables: Vec<TableId>,
    ranges: Vec<(i64, i64)>,
}

/// Groups transfers into one stream per (source, target): the source is the first live one of
/// each transfer's sources (the handing-over replica when alive). Fails naming a range no live
/// node holds.
fn group_streams(
    ks: &KeyspaceTables,
    transfers: &[Transfer],
    is_alive: impl Fn(Endpoint) -> bool,
) -> Result<Vec<StreamTask>, String> {
    let mut grouped: BTreeMap<(Endpoint, Endpoint), Vec<(i64, i64)>> = BTreeMap::new();
    for t in transfers {
        let Some(source) = t.sources.iter().copied().find(|s| *s != t.target && is_alive(*s)) else {
            return Err(format!(
                "no live replica holds range ({}, {}] of keyspace {} (replicas {:?}); bring one up and retry",
                t.start, t.end, ks.keyspace, t.sources
            ));
        };
        grouped.entry((source, t.target)).or_default().push((t.start, t.end));
    }
    Ok(grouped
        .into_iter()
        .map(|((source, target), ranges)| StreamTask {
            source,
            target,
            keyspace: ks.keyspace.clone(),
            tables: ks.tables.clone(),
            ranges,
        })
        .collect())
}

impl Inner {
    /// Sends `payload` to `to` and waits for the answer, failing early if `to` goes down
    /// ([`WentDown`]).
    fn request_blocking(
        &self,
        to: Endpoint,
        verb: Verb,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, String> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.messaging.send_request(
            to,
            verb,
            payload,
            timeout,
            Box::new(move |r| {
                let _ = tx.send(r.map(|resp| resp.payload).map_err(|e| e.to_string()));
            }),
        );
        let deadline = Instant::now() + timeout + Duration::from_secs(1);
        let mut went_down = WentDown::default();
        loop {
            match rx.recv_timeout(LIVENESS_CHECK) {
                Ok(answer) => return answer,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(format!("{to} did not answer")),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if went_down.observe(self.coordinator.view().live.contains(&to)) {
                        return Err(format!("{to} went down"));
                    }
                    if Instant::now() >= deadline {
                        return Err(format!("{to} did not answer in {timeout:?}"));
                    }
                }
            }
        }
    }

    /// Streams what `request` asks from this node's storage to its target (the STREAM_REQUEST
    /// handler, and a decommissioning node's own streams).
    pub(crate) fn stream_to(&self, request: &StreamRequest) -> Result<(), String> {
        let target = request.target;
        let local = self.config.local;
        let storage = self.coordinator.storage();
        // Only this node's verdict on the target changing from up to down cancels the stream.
        // The verdict may still be "down" from before the target (re)started while batches are
        // answered; feeding an answered batch in as "up" made that stale verdict look like a
        // fresh failure and cancelled a healthy stream (seen in CI). A target that dies while the
        // verdict is stale fails the delivery itself: retries, then the request's timeout.
        let went_down = parking_lot::Mutex::new(WentDown::default());
        let deliver = |payload: Bytes| -> Result<(), String> {
            if target == local {
                return streaming::receive(&self.streams, storage.as_ref(), local, &payload);
            }
            self.request_blocking(target, verbs::STREAM_DATA, payload, STREAM_DATA_TIMEOUT).map(|_| ())
        };
        let cancelled = || -> Option<String> {
            (target != local && went_down.lock().observe(self.coordinator.view().live.contains(&target)))
                .then(|| format!("the target {target} went down"))
        };
        self.streams.send(storage.as_ref(), request, &deliver, &cancelled)
    }

    /// Runs one stream: locally when this node is the source, else by STREAM_REQUEST.
    fn run_stream(&self, task: &StreamTask, operation: StreamOperation) -> Result<(), String> {
        let request = StreamRequest {
            session: Uuid::new_v4(),
            operation,
            target: task.target,
            tables: task.tables.clone(),
            ranges: task.ranges.clone(),
        };
        let result = if task.source == self.config.local {
            self.stream_to(&request)
        } else {
            self.request_blocking(
                task.source,
                verbs::STREAM_REQUEST,
                request.encode(),
                STREAM_REQUEST_TIMEOUT,
            )
            .map(|_| ())
        };
        if task.target == self.config.local {
            self.streams.finish_receiving(request.session, &result);
        }
        result.map_err(|e| {
            format!(
                "streaming keyspace {} from {} to {} ({} ranges) failed: {e}",
                task.keyspace,
                task.source,
                task.target,
                task.ranges.len()
            )
        })
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock() = mode;
        tracing::info!(mode = mode.name(), "node mode changed");
    }

    fn announce(&self, state: ApplicationState, value: String) {
        if let Err(e) = self.gossiper.lock().set_local_state(state, value) {
            tracing::error!(?state, error = %e, "cannot gossip a local state");
        }
    }

    /// Waits, up to `limit`, until every other live member's gossip shows it has our current
    /// STATUS: from then on the writes it coordinates reach our pending ranges. Returns the
    /// members that did not show it in time.
    fn wait_until_status_seen(&self, limit: Duration) -> Vec<Endpoint> {
        let start = Instant::now();
        loop {
            let view = self.coordinator.view();
            let unconfirmed: Vec<Endpoint> = {
                let g = self.gossiper.lock();
                let Some(version) = g.local_version(ApplicationState::Status) else { return Vec::new() };
                view.ring
                    .endpoints()
                    .into_iter()
                    .filter(|ep| *ep != self.config.local && view.live.contains(ep))
                    .filter(|ep| !g.has_seen(*ep, version))
                    .collect()
            };
            if unconfirmed.is_empty() || start.elapsed() >= limit {
                return unconfirmed;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `ring_delay`, then [`Inner::wait_until_status_seen`]: Cassandra only sleeps
    /// `ring_delay` and hopes gossip has spread; Sibyl also waits for every live member to
    /// show, in its gossip digests, that it has the announcement.
    fn announce_wait(&self, settings: &MoveSettings) {
        std::thread::sleep(settings.ring_delay);
        let unconfirmed = self.wait_until_status_seen(settings.ring_delay.max(Duration::from_secs(30)));
        if !unconfirmed.is_empty() {
            tracing::warn!(
                nodes = ?unconfirmed,
                "these nodes have not shown they know of this ring change; writes they coordinate may miss the new replicas until they do: run repair afterwards"
            );
        }
    }

    /// Other nodes joining or leaving, as `address (STATUS)`.
    fn moving_nodes(&self) -> Vec<String> {
        let view = self.coordinator.view();
        view.joining
            .keys()
            .map(|e| format!("{e} (joining)"))
            .chain(view.leaving.iter().map(|e| format!("{e} (leaving)")))
            .filter(|s| !s.starts_with(&self.config.local.to_string()))
            .collect()
    }
}

impl ClusterService {
    /// This node's mode.
    #[must_use]
    pub fn mode(&self) -> Mode {
        *self.inner.mode.lock()
    }

    /// This node's streams (`netstats`, `setstreamthroughput`).
    #[must_use]
    pub fn streams(&self) -> &streaming::StreamManager {
        &self.inner.streams
    }

    /// The removenode this node runs or ran last.
    #[must_use]
    pub fn removal(&self) -> Option<RemovalProgress> {
        self.inner.removal.lock().clone()
    }

    /// Waits until gossip has taught this node the ring: at least one other node is NORMAL and
    /// up, and no new endpoint appeared for two gossip rounds (Cassandra's shadow round).
    ///
    /// # Errors
    /// No member heard of within `timeout`: the seeds are wrong or unreachable.
    pub fn wait_for_ring(&self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        let mut last_count = 0;
        let mut stable_since = Instant::now();
        let mut logged = Instant::now();
        loop {
            let (normal, count) = {
                let g = self.inner.gossiper.lock();
                let normal = g.live_endpoints().into_iter().any(|ep| {
                    g.endpoint_state(ep)
                        .and_then(|s| s.value(ApplicationState::Status))
                        .is_some_and(|v| RingStatus::parse(v) == RingStatus::Normal)
                });
                (normal, g.endpoints().len())
            };
            if count != last_count {
                last_count = count;
                stable_since = Instant::now();
            }
            if normal && stable_since.elapsed() >= GOSSIP_INTERVAL * 2 {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(format!(
                    "no member of the cluster answered within {timeout:?}: check seed_provider {:?} and that a seed is up",
                    self.inner.config.seeds
                ));
            }
            if logged.elapsed() >= Duration::from_secs(5) {
                tracing::info!(known_endpoints = count, "waiting to hear the ring from the seeds");
                logged = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every live NORMAL node gossips this node's schema version (the schema pull
    /// runs from the gossip task). Returns whether they agree.
    #[must_use]
    pub fn wait_for_schema(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            let ours = self.inner.hooks.schema_version().to_string();
            let agreed = {
                let g = self.inner.gossiper.lock();
                g.live_endpoints().into_iter().all(|ep| {
                    let Some(s) = g.endpoint_state(ep) else { return true };
                    let normal = s
                        .value(ApplicationState::Status)
                        .is_some_and(|v| RingStatus::parse(v) == RingStatus::Normal);
                    !normal || s.value(ApplicationState::Schema) == Some(ours.as_str())
                })
            };
            if agreed {
                return true;
            }
            if start.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Tokens for this node to bootstrap with: balanced by
    /// [`crate::token_allocation::allocate_tokens`] for `allocate_for_rf` (Cassandra's
    /// `allocate_tokens_for_local_replication_factor`), else random.
    #[must_use]
    pub fn choose_tokens(&self, num_tokens: usize, allocate_for_rf: Option<usize>) -> Vec<i64> {
        let view = self.inner.coordinator.view();
        match allocate_for_rf {
            Some(rf) => crate::token_allocation::allocate_tokens(
                &view.ring,
                &ReplicationStrategy::Simple { replication_factor: rf.max(1) },
                self.inner.config.local,
                &self.inner.config.location,
                num_tokens,
            ),
            None => {
                let taken: BTreeSet<i64> = view.ring.sorted_tokens().into_iter().collect();
                crate::ring::random_tokens(num_tokens, &mut rand::rng(), &taken)
            }
        }
    }

    /// The tokens of the dead node at `address` that this node will replace.
    ///
    /// # Errors
    /// The address is not a member, or is alive (Cassandra refuses to replace a live node).
    pub fn replaced_tokens(&self, address: std::net::IpAddr) -> Result<(Endpoint, Vec<i64>), String> {
        let view = self.inner.coordinator.view();
        let Some(dead) = view.ring.endpoints().into_iter().find(|e| e.0.ip() == address) else {
            return Err(format!("cannot replace {address}: it is not a member of the ring"));
        };
        if view.live.contains(&dead) {
            return Err(format!(
                "cannot replace {address}: it is alive; only a dead node can be replaced (stop it first)"
            ));
        }
        Ok((dead, view.ring.tokens_of(dead)))
    }

    /// Joins the ring with `tokens`: announces BOOT (or BOOT_REPLACE of `replacing`), waits
    /// `ring_delay`, streams every range the node gains in `keyspaces` from a current replica,
    /// and announces NORMAL.
    ///
    /// # Errors
    /// Another node is moving (with `consistent_range_movement`), or a stream failed: the node
    /// stays out of the ring, and running the bootstrap again (restarting the node) retries it.
    pub fn bootstrap(
        &self,
        tokens: &[i64],
        replacing: Option<Endpoint>,
        keyspaces: &[KeyspaceTables],
        settings: &MoveSettings,
    ) -> Result<(), String> {
        let inner = &self.inner;
        let local = inner.config.local;
        // A cluster without replicated tables has nothing to stream: a new cluster's nodes
        // join at once, together.
        let nothing = replacing.is_none() && keyspaces.iter().all(|k| k.tables.is_empty());
        let moving = inner.moving_nodes();
        if settings.consistent_range_movement && !moving.is_empty() && !nothing {
            return Err(format!(
                "other nodes are joining or leaving ({}); bootstrapping now could miss data. Wait for them, or set consistent_rangemovement: false",
                moving.join(", ")
            ));
        }
        inner.set_mode(Mode::Joining);
        let operation =
            if replacing.is_some() { StreamOperation::Replace } else { StreamOperation::Bootstrap };
        let joined = tokens.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        inner.announce(ApplicationState::Tokens, joined);
        inner.announce(
            ApplicationState::Status,
            match replacing {
                Some(dead) => format!("BOOT_REPLACE,{}", dead.0),
                None => "BOOT".into(),
            },
        );
        inner.coordinator.update_view(|v| {
            v.ring.set_location(local, inner.config.location.clone());
            v.joining.insert(local, tokens.to_vec());
        });
        if nothing {
            tracing::info!(tokens = tokens.len(), "JOINING: no replicated table yet, nothing to stream");
        } else {
            tracing::info!(tokens = tokens.len(), ?replacing, ring_delay = ?settings.ring_delay, "JOINING: waiting for the ring to learn of this node before streaming");
            inner.announce_wait(settings);
        }
        let view = inner.coordinator.view();
        let future = future_ring(&view.ring, &[(local, tokens.to_vec())], &BTreeSet::new());
        let mut tasks = Vec::new();
        for ks in keyspaces {
            let transfers: Vec<Transfer> = plan_transfers(&ks.strategy, &view.ring, &future)
                .into_iter()
                .filter(|t| t.target == local)
                .collect();
            tasks.extend(group_streams(ks, &transfers, |ep| view.live.contains(&ep))?);
        }
        tracing::info!(streams = tasks.len(), "JOINING: streaming the ranges this node gains");
        for task in &tasks {
            if let Err(e) = inner.run_stream(task, operation) {
                inner.set_mode(Mode::Starting);
                return Err(e);
            }
        }
        inner.announce(ApplicationState::Status, "NORMAL".into());
        inner.coordinator.update_view(|v| {
            v.joining.remove(&local);
            v.ring.update_normal_tokens(local, tokens);
        });
        if let Some(dead) = replacing {
            inner.forget_replaced(dead);
            tracing::info!(replaced = %dead, "this node replaced a dead node");
        }
        inner.set_mode(Mode::Normal);
        tracing::info!("NORMAL: bootstrap completed");
        Ok(())
    }

    /// Hands this node's ranges to the nodes that replicate them next and leaves the ring
    /// (the caller stops the process afterwards).
    ///
    /// # Errors
    /// The node is not NORMAL, another node is moving, too few nodes would remain for a
    /// keyspace's replication, or a stream failed (the node then returns to NORMAL).
    pub fn decommission(&self, keyspaces: &[KeyspaceTables], settings: &MoveSettings) -> Result<(), String> {
        let inner = &self.inner;
        let local = inner.config.local;
        if self.mode() != Mode::Normal {
            return Err(format!("cannot decommission a node in mode {}", self.mode().name()));
        }
        let moving = inner.moving_nodes();
        if settings.consistent_range_movement && !moving.is_empty() {
            return Err(format!("other nodes are joining or leaving ({}); wait for them", moving.join(", ")));
        }
        let view = inner.coordinator.view();
        let future = future_ring(&view.ring, &[], &BTreeSet::from([local]));
        for ks in keyspaces {
            let dcs = future.dcs();
            let short = match &ks.strategy {
                ReplicationStrategy::Simple { replication_factor } => {
                    (future.endpoints().len() < *replication_factor).then(|| future.endpoints().len())
                }
                ReplicationStrategy::NetworkTopology { dc_replication } => dc_replication
                    .iter()
                    .find(|(dc, rf)| {
                        dcs.get(*dc).map_or(0, |racks| racks.values().map(Vec::len).sum()) < **rf
                    })
                    .map(|(dc, _)| dcs.get(dc).map_or(0, |r| r.values().map(Vec::len).sum())),
                ReplicationStrategy::Local => None,
            };
            if let Some(left) = short {
                return Err(format!(
                    "Not enough live nodes to maintain replication factor in keyspace {} (RF {}, {left} nodes would remain). Perform a forceful decommission to ignore.",
                    ks.keyspace,
                    ks.strategy.replication_factor_total()
                ));
            }
        }
        inner.set_mode(Mode::Leaving);
        inner.announce(ApplicationState::Status, "LEAVING".into());
        inner.coordinator.update_view(|v| {
            v.leaving.insert(local);
        });
        tracing::info!(ring_delay = ?settings.ring_delay, "LEAVING: waiting for the ring to learn of the decommission");
        inner.announce_wait(settings);
        let result = (|| {
            let view = inner.coordinator.view();
            let mut tasks = Vec::new();
            for ks in keyspaces {
                let transfers: Vec<Transfer> = plan_transfers(&ks.strategy, &view.ring, &future)
                    .into_iter()
                    .map(|mut t| {
                        // The leaving node holds every range it hands over: it is the source.
                        t.sources.retain(|s| *s == local);
                        t
                    })
                    .filter(|t| !t.sources.is_empty())
                    .collect();
                tasks.extend(group_streams(ks, &transfers, |ep| ep == local)?);
            }
            tracing::info!(
                streams = tasks.len(),
                "LEAVING: streaming this node's ranges to their new replicas"
            );
            for task in &tasks {
                inner.run_stream(task, StreamOperation::Decommission)?;
            }
            Ok::<(), String>(())
        })();
        if let Err(e) = result {
            inner.announce(ApplicationState::Status, "NORMAL".into());
            inner.coordinator.update_view(|v| {
                v.leaving.remove(&local);
            });
            inner.set_mode(Mode::Normal);
            return Err(format!("decommission failed, the node stays in the ring: {e}"));
        }
        inner.announce(ApplicationState::Status, "LEFT".into());
        inner.coordinator.update_view(|v| {
            v.leaving.remove(&local);
            v.ring.remove_endpoint(local);
        });
        inner.set_mode(Mode::Decommissioned);
        // Let gossip carry LEFT before the process stops.
        std::thread::sleep(GOSSIP_INTERVAL * 3);
        tracing::info!("DECOMMISSIONED: this node left the ring");
        Ok(())
    }

    /// Removes the dead node with `host_id`: its ranges are streamed from live replicas to the
    /// nodes that replicate them next, then it leaves the ring (`removed`).
    ///
    /// # Errors
    /// Unknown host id, the node is this one or alive, another removal runs, or a stream failed.
    pub fn removenode(
        &self,
        host_id: Uuid,
        keyspaces: &[KeyspaceTables],
        settings: &MoveSettings,
    ) -> Result<(), String> {
        let inner = &self.inner;
        let local = inner.config.local;
        if host_id == inner.config.host_id {
            return Err("Cannot remove self".into());
        }
        let view = inner.coordinator.view();
        let Some(dead) = view.endpoint_of(host_id).filter(|e| view.ring.is_member(*e)) else {
            return Err(format!("Host ID not found: {host_id}"));
        };
        if dead == local {
            return Err("Cannot remove self".into());
        }
        if view.live.contains(&dead) {
            return Err(format!(
                "Node {dead} is alive and owns this ID. Use decommission command to remove it from the ring"
            ));
        }
        {
            let mut removal = inner.removal.lock();
            if removal.as_ref().is_some_and(|r| r.state == "RUNNING") {
                return Err("a removenode is already running on this node; see removenode status".into());
            }
            *removal = Some(RemovalProgress {
                host_id,
                endpoint: dead,
                streams_total: 0,
                streams_done: 0,
                state: "RUNNING".into(),
            });
        }
        let set_state = |state: String| {
            if let Some(r) = inner.removal.lock().as_mut() {
                r.state = state;
            }
        };
        if !inner.gossiper.lock().set_remote_state(
            dead,
            ApplicationState::Status,
            format!("removing,{host_id}"),
        ) {
            set_state("FAILED: gossip does not know the node".into());
            return Err(format!("gossip does not know {dead}"));
        }
        inner.coordinator.update_view(|v| {
            v.leaving.insert(dead);
        });
        tracing::info!(endpoint = %dead, %host_id, ring_delay = ?settings.ring_delay, "removenode: waiting for the ring to learn of the removal, then restreaming the dead node's ranges");
        // Writes reach the new replicas once coordinators have seen `removing`.
        std::thread::sleep(settings.ring_delay);
        let future = future_ring(&view.ring, &[], &BTreeSet::from([dead]));
        let result = (|| {
            let live = inner.coordinator.view().live;
            let mut tasks = Vec::new();
            for ks in keyspaces {
                let transfers = plan_transfers(&ks.strategy, &view.ring, &future);
                tasks.extend(group_streams(ks, &transfers, |ep| ep != dead && live.contains(&ep))?);
            }
            if let Some(r) = inner.removal.lock().as_mut() {
                r.streams_total = tasks.len();
            }
            for task in &tasks {
                inner.run_stream(task, StreamOperation::RemoveNode)?;
                if let Some(r) = inner.removal.lock().as_mut() {
                    r.streams_done += 1;
                }
            }
            Ok::<(), String>(())
        })();
        if let Err(e) = result {
            // Back to NORMAL in the dead node's state: the removal can be run again.
            inner.gossiper.lock().set_remote_state(dead, ApplicationState::Status, "NORMAL".into());
            inner.coordinator.update_view(|v| {
                v.leaving.remove(&dead);
            });
            set_state(format!("FAILED: {e}"));
            return Err(format!("removenode failed, {dead} stays in the ring: {e}"));
        }
        inner.gossiper.lock().set_remote_state(dead, ApplicationState::Status, format!("removed,{host_id}"));
        let events = inner.gossiper.lock().drain_events();
        inner.handle_events(events);
        set_state("COMPLETED".into());
        tracing::info!(endpoint = %dead, %host_id, "removenode completed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn a_node_goes_down_only_after_being_seen_up() {
        let mut w = WentDown::default();
        // Still held down from before it (re)started: not a failure, however long it lasts
        // (a stream's batches may be answered meanwhile; they are not verdicts).
        assert!(!w.observe(false));
        assert!(!w.observe(false));
        assert!(!w.observe(true));
        assert!(w.observe(false));
        assert!(!w.observe(true), "back up");
    }

    fn ep(i: u8) -> Endpoint {
        Endpoint(std::net::SocketAddr::from(([127, 0, 0, i], 7000)))
    }

    #[test]
    fn streams_are_grouped_per_source_and_target_from_the_first_live_source() {
        let ks = KeyspaceTables {
            keyspace: "ks".into(),
            strategy: ReplicationStrategy::Simple { replication_factor: 2 },
            tables: vec![TableId(Uuid::from_u128(1))],
        };
        let transfers = vec![
            Transfer { start: 0, end: 10, target: ep(9), sources: vec![ep(1), ep(2)] },
            Transfer { start: 20, end: 30, target: ep(9), sources: vec![ep(3), ep(2)] },
            Transfer { start: 40, end: 50, target: ep(9), sources: vec![ep(1), ep(3)] },
        ];
        let tasks = group_streams(&ks, &transfers, |e| e != ep(3)).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!((tasks[0].source, tasks[0].ranges.clone()), (ep(1), vec![(0, 10), (40, 50)]));
        assert_eq!((tasks[1].source, tasks[1].ranges.clone()), (ep(2), vec![(20, 30)]));
        let err = group_streams(&ks, &transfers, |e| e == ep(9)).unwrap_err();
        assert!(err.contains("no live replica holds range (0, 10] of keyspace ks"), "{err}");
    }
}
