//! The coordinator: any node runs a client's request against the replicas that own the data.
//!
//! Walk of a write ([`Coordinator::write`]): each mutation's token gives its natural replicas
//! (`replication`); the level and the live set give a [`ReplicaPlan`] (`consistency`), or
//! Unavailable before anything is sent; the mutations go to every live replica (MUTATION, or
//! straight to local storage for this node) and the call returns once `block_for` replicas
//! acknowledged, or fails with WriteTimeout after `write_request_timeout`.
//!
//! Walk of a read ([`Coordinator::read`]): the plan's contacts are the closest live replicas;
//! the first is asked for data and the others for digests. Matching digests answer at once. A
//! mismatch triggers a second round asking every contact for data; the versions are merged
//! (`resolver`) and the merged partition is written back to the replicas that differed
//! (blocking read repair) before the answer returns.
//!
//! Range scans ([`Coordinator::scan`]) split the token range at ring tokens, so that each piece
//! has one replica set (adjacent pieces with the same replicas merged), and ask `block_for`
//! replicas of each piece for data, in rounds of several pieces at once until the limits are
//! met. Multi-partition reads ([`Coordinator::read_many`]) run up to [`MAX_FANOUT`] reads at
//! once.
//!
//! Everything here is synchronous: the CQL executor calls it from a blocking thread, and it
//! waits for replicas on a condition variable. It never blocks a tokio worker.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use sibyl_engine::{Mutation, PartitionData, ReadCommand, ScanCommand, ScanStart, Token};
use uuid::Uuid;

use crate::batchlog::{self, Batchlog, StoredBatch};
use crate::consistency::{plan_read, plan_write_with_pending, ConsistencyLevel, PlanError, ReplicaPlan};
use crate::endpoint::{Endpoint, Location};
use crate::error::{Error, Result, WriteType};
use crate::hints::{HintDecision, HintsService};
use crate::messaging::{MessagingService, RequestError};
use crate::read_policy::{ReadLatencies, ReadPolicy, ReadRepair, SpeculativeRetry};
use crate::replication::ReplicationStrategy;
use crate::resolver::{digest, merge_ranges, merge_versions, repair_mutation};
use crate::ring::TokenMetadata;
use crate::storage::Storage;
use crate::verbs::{self, ReadRequest, ReadResponse};

/// Request timeouts (cassandra.yaml's `write_request_timeout`, `read_request_timeout`,
/// `range_request_timeout`).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Writes.
    pub write: Duration,
    /// Single-partition reads.
    pub read: Duration,
    /// Range scans (per piece of the ring).
    pub range: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            write: Duration::from_secs(2),
            read: Duration::from_secs(5),
            range: Duration::from_secs(10),
        }
    }
}

/// What this node knows of the cluster: the ring, where nodes are, and who is alive. Written by
/// the gossip task, read by every request.
#[derive(Debug, Clone)]
pub struct ClusterView {
    /// Tokens of every normal node.
    pub ring: TokenMetadata,
    /// Nodes currently believed alive (this node always is).
    pub live: HashSet<Endpoint>,
    /// Host ids of the nodes (hints are kept by host id, as in Cassandra).
    pub host_ids: HashMap<Endpoint, Uuid>,
    /// Since when each node not alive has been seen down (for `max_hint_window`).
    pub down_since: HashMap<Endpoint, Instant>,
    /// Nodes joining the ring (bootstrapping, or replacing a dead node) with the tokens they
    /// will hold: pending replicas of what those tokens will give them.
    pub joining: BTreeMap<Endpoint, Vec<i64>>,
    /// Normal nodes leaving the ring (decommissioning, or being removed): their ranges'
    /// future replicas are pending.
    pub leaving: BTreeSet<Endpoint>,
    /// The ring once every joining and leaving node is done; `None` when nothing moves.
    /// Recomputed by [`Coordinator::update_view`].
    pub future: Option<TokenMetadata>,
}

impl ClusterView {
    /// The endpoint holding `host`, if it is a member.
    #[must_use]
    pub fn endpoint_of(&self, host: Uuid) -> Option<Endpoint> {
        self.host_ids.iter().find(|(_, h)| **h == host).map(|(ep, _)| *ep)
    }
}

/// The coordinator of one node.
#[derive(Debug)]
pub struct Coordinator {
    local: Endpoint,
    local_location: Location,
    storage: Arc<dyn Storage>,
    view: RwLock<ClusterView>,
    messaging: OnceLock<MessagingService>,
    hints: OnceLock<Arc<HintsService>>,
    batchlog: OnceLock<Arc<Batchlog>>,
    timeouts: Timeouts,
    stats: Mutex<CoordinatorStats>,
    latencies: ReadLatencies,
}

/// Counters the admin endpoint reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoordinatorStats {
    /// Writes coordinated.
    pub writes: u64,
    /// Single-partition reads coordinated.
    pub reads: u64,
    /// Range scans coordinated.
    pub scans: u64,
    /// Requests refused as Unavailable.
    pub unavailables: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Reads whose digests disagreed.
    pub digest_mismatches: u64,
    /// Read repair mutations sent.
    pub read_repairs: u64,
    /// Extra replicas asked because the contacted ones were slow to answer.
    pub speculative_retries: u64,
}

/// Answers from replicas, collected by callbacks from the messaging threads.
struct Collector<T> {
    state: Mutex<Vec<(Endpoint, std::result::Result<T, String>)>>,
    changed: Condvar,
}

impl<T> Collector<T> {
    fn new() -> Arc<Collector<T>> {
        Arc::new(Collector { state: Mutex::new(Vec::new()), changed: Condvar::new() })
    }

    fn push(&self, from: Endpoint, answer: std::result::Result<T, String>) {
        self.state.lock().push((from, answer));
        self.changed.notify_all();
    }

    /// Waits until `done(answers)` or the deadline; returns the answers so far.
    fn wait(
        &self,
        deadline: Instant,
        done: impl Fn(&[(Endpoint, std::result::Result<T, String>)]) -> bool,
    ) -> Vec<(Endpoint, std::result::Result<T, String>)>
    where
        T: Clone,
    {
        let mut state = self.state.lock();
        while !done(&state) {
            if self.changed.wait_until(&mut state, deadline).timed_out() {
                break;
            }
        }
        state.clone()
    }
}

fn successes<T>(answers: &[(Endpoint, std::result::Result<T, String>)]) -> usize {
    answers.iter().filter(|(_, a)| a.is_ok()).count()
}

/// What a replica's silence reads as in the collected answers (`RequestError::Timeout`): not
/// an answer, so it counts toward a timeout, never toward a Failure.
const TIMED_OUT: &str = "request timed out";

/// Replicas that answered with an error (timeouts are silence, not failures).
fn failures<T>(answers: &[(Endpoint, std::result::Result<T, String>)]) -> usize {
    answers.iter().filter(|(_, a)| a.as_ref().is_err_and(|e| e != TIMED_OUT)).count()
}

/// The protocol's WriteFailure/ReadFailure: replicas answered with errors (not silence).
fn replica_failure<T>(
    cl: ConsistencyLevel,
    answers: &[(Endpoint, std::result::Result<T, String>)],
    block_for: usize,
    write: bool,
) -> Error {
    Error::Failure {
        consistency: cl,
        received: successes(answers),
        block_for,
        failures: failures(answers),
        write,
        reason: first_failure(answers),
    }
}

fn first_failure<T>(answers: &[(Endpoint, std::result::Result<T, String>)]) -> String {
    answers
        .iter()
        .find_map(|(from, a)| a.as_ref().err().filter(|e| *e != TIMED_OUT).map(|e| format!("{from}: {e}")))
        .unwrap_or_default()
}

impl Coordinator {
    /// A coordinator for `local`, which starts as the only node of its ring with `tokens`.
    pub fn new(
        local: Endpoint,
        local_location: Location,
        tokens: &[i64],
        storage: Arc<dyn Storage>,
        timeouts: Timeouts,
    ) -> Coordinator {
        let mut ring = TokenMetadata::new();
        ring.update_normal_tokens(local, tokens);
        ring.set_location(local, local_location.clone());
        let live = HashSet::from([local]);
        Coordinator {
            local,
            local_location,
            storage,
            view: RwLock::new(ClusterView {
                ring,
                live,
                host_ids: HashMap::new(),
                down_since: HashMap::new(),
                joining: BTreeMap::new(),
                leaving: BTreeSet::new(),
                future: None,
            }),
            messaging: OnceLock::new(),
            hints: OnceLock::new(),
            batchlog: OnceLock::new(),
            timeouts,
            stats: Mutex::new(CoordinatorStats::default()),
            latencies: ReadLatencies::default(),
        }
    }

    /// Connects the coordinator to the other nodes (once, when the cluster service starts).
    pub fn attach_messaging(&self, messaging: MessagingService) {
        if self.messaging.set(messaging).is_err() {
            tracing::warn!("messaging attached twice; keeping the first");
        }
    }

    /// Gives the coordinator a hints service (once, when the node starts); without one no
    /// hints are stored and ANY needs a live replica.
    pub fn attach_hints(&self, hints: Arc<HintsService>) {
        if self.hints.set(hints).is_err() {
            tracing::warn!("hints attached twice; keeping the first");
        }
    }

    /// Keeps logged batches for other coordinators and makes this one's logged batches durable
    /// before they are applied (once, at startup).
    pub fn attach_batchlog(&self, batchlog: Arc<Batchlog>) {
        if self.batchlog.set(batchlog).is_err() {
            tracing::warn!("batchlog attached twice; keeping the first");
        }
    }

    /// The batchlog, if attached.
    #[must_use]
    pub fn batchlog(&self) -> Option<&Arc<Batchlog>> {
        self.batchlog.get()
    }

    /// The hints service, if attached.
    #[must_use]
    pub fn hints(&self) -> Option<&Arc<HintsService>> {
        self.hints.get()
    }

    /// This node.
    #[must_use]
    pub fn local(&self) -> Endpoint {
        self.local
    }

    /// This node's data center and rack.
    #[must_use]
    pub fn local_location(&self) -> &Location {
        &self.local_location
    }

    /// A copy of the current view.
    #[must_use]
    pub fn view(&self) -> ClusterView {
        self.view.read().clone()
    }

    /// Changes the view (the gossip task does this).
    pub fn update_view(&self, f: impl FnOnce(&mut ClusterView)) {
        let mut v = self.view.write();
        f(&mut v);
        v.live.insert(self.local);
        // Downtime for max_hint_window: from when this node first saw the endpoint not alive.
        let now = Instant::now();
        let ClusterView { ring, live, down_since, .. } = &mut *v;
        down_since.retain(|ep, _| !live.contains(ep));
        for ep in ring.endpoints() {
            if !live.contains(&ep) {
                down_since.entry(ep).or_insert(now);
            }
        }
        // Pending ranges: the ring the joining and leaving nodes lead to.
        v.future = if v.joining.is_empty() && v.leaving.is_empty() {
            None
        } else {
            let joining: Vec<(Endpoint, Vec<i64>)> = v.joining.iter().map(|(e, t)| (*e, t.clone())).collect();
            Some(crate::streaming::plan::future_ring(&v.ring, &joining, &v.leaving))
        };
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> CoordinatorStats {
        *self.stats.lock()
    }

    /// Timeouts.
    #[must_use]
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Local storage.
    #[must_use]
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The replicas of `token` for a keyspace's strategy, in Cassandra's order.
    #[must_use]
    pub fn natural_replicas(&self, strategy: &ReplicationStrategy, token: Token) -> Vec<Endpoint> {
        strategy.natural_replicas(token.0, &self.view.read().ring, self.local)
    }

    fn location_of(view: &ClusterView, ep: Endpoint) -> Location {
        view.ring.location(ep).clone()
    }

    fn plan_write(
        &self,
        strategy: &ReplicationStrategy,
        cl: ConsistencyLevel,
        token: Token,
    ) -> Result<ReplicaPlan> {
        let natural = self.natural_replicas(strategy, token);
        let view = self.view.read();
        let pending = match &view.future {
            Some(future) if !matches!(strategy, ReplicationStrategy::Local) => {
                crate::streaming::plan::pending_replicas(strategy, token.0, &view.ring, future)
            }
            _ => Vec::new(),
        };
        let plan = plan_write_with_pending(
            cl,
            strategy,
            natural,
            pending,
            |ep| view.live.contains(&ep),
            |ep| Self::location_of(&view, ep),
            &self.local_location.dc,
        );
        self.plan_result(plan)
    }

    fn plan_read(
        &self,
        strategy: &ReplicationStrategy,
        cl: ConsistencyLevel,
        token: Token,
    ) -> Result<ReplicaPlan> {
        self.plan_result(self.try_plan_read(strategy, cl, token))
    }

    /// [`Coordinator::plan_read`] without counting an Unavailable.
    fn try_plan_read(
        &self,
        strategy: &ReplicationStrategy,
        cl: ConsistencyLevel,
        token: Token,
    ) -> std::result::Result<ReplicaPlan, PlanError> {
        let natural = self.natural_replicas(strategy, token);
        let view = self.view.read();
        let local = self.local;
        let local_dc = self.local_location.dc.clone();
        plan_read(
            cl,
            strategy,
            natural,
            |ep| view.live.contains(&ep),
            |ep| Self::location_of(&view, ep),
            &local_dc,
            |ep| {
                if ep == local {
                    0
                } else if Self::location_of(&view, ep).dc == local_dc {
                    1
                } else {
                    2
                }
            },
        )
    }

    fn plan_result(&self, plan: std::result::Result<ReplicaPlan, PlanError>) -> Result<ReplicaPlan> {
        match plan {
            Ok(p) => Ok(p),
            Err(PlanError::Unavailable { consistency, required, alive }) => {
                self.stats.lock().unavailables += 1;
                Err(Error::Unavailable { consistency, required, alive })
            }
            Err(PlanError::Invalid(m)) => Err(Error::Invalid(m)),
        }
    }

    /// The messaging service, once attached.
    #[must_use]
    pub fn messaging_service(&self) -> Option<&MessagingService> {
        self.messaging.get()
    }

    fn messaging(&self) -> Result<&MessagingService> {
        self.messaging
            .get()
            .ok_or_else(|| Error::Overloaded("internode messaging is not running on this node".into()))
    }

    /// Writes mutations at `cl`. Mutations with the same replicas travel together; the call
    /// returns when every group reached its level.
    ///
    /// Natural replicas that are down get a hint (see [`crate::hints`]), and so does a contacted
    /// replica that does not acknowledge in time. With ANY and no replica alive, a stored hint
    /// is the acknowledgement.
    pub fn write(
        &self,
        strategy: &ReplicationStrategy,
        mutations: Vec<Mutation>,
        cl: ConsistencyLevel,
        write_type: WriteType,
    ) -> Result<()> {
        self.stats.lock().writes += 1;
        let mut groups: BTreeMap<Vec<Endpoint>, (ReplicaPlan, Vec<Mutation>)> = BTreeMap::new();
        let mut hints: BTreeMap<Endpoint, (Arc<HintsService>, Uuid, Vec<Mutation>)> = BTreeMap::new();
        let mut hint_only = 0usize;
        // Plan everything first: Unavailable must come before anything is written.
        for m in mutations {
            let plan = self.plan_write(strategy, cl, Token::of_key(&m.update.key))?;
            let mut hinted = false;
            {
                let view = self.view.read();
                for ep in plan.natural.iter().filter(|e| !plan.live.contains(e)) {
                    if let Some((service, host)) = self.hint_target(&view, *ep, true) {
                        hints.entry(*ep).or_insert_with(|| (service, host, Vec::new())).2.push(m.clone());
                        hinted = true;
                    }
                }
            }
            if plan.contacts.is_empty() {
                // ANY with every replica down: only a hint can acknowledge it (Cassandra).
                if !hinted {
                    self.stats.lock().unavailables += 1;
                    return Err(Error::Unavailable { consistency: cl, required: 1, alive: 0 });
                }
                hint_only += 1;
                continue;
            }
            groups.entry(plan.contacts.clone()).or_insert_with(|| (plan, Vec::new())).1.push(m);
        }
        let deadline = Instant::now() + self.timeouts.write;
        let mut pending = Vec::new();
        for (contacts, (plan, group)) in groups {
            let collector: Arc<Collector<()>> = Collector::new();
            let remote: Vec<Endpoint> = contacts.iter().copied().filter(|e| *e != self.local).collect();
            if !remote.is_empty() {
                let payload = verbs::encode_mutations(&group);
                let messaging = self.messaging()?;
                // Kept for a hint if a replica does not acknowledge.
                let shared = self.hints.get().map(|_| Arc::new(group.clone()));
                for ep in remote {
                    let c = Arc::clone(&collector);
                    let on_timeout = shared.as_ref().and_then(|g| {
                        let (service, host) = self.hint_target(&self.view.read(), ep, false)?;
                        Some((service, host, Arc::clone(g), Arc::clone(&self.storage)))
                    });
                    messaging.send_request(
                        ep,
                        verbs::MUTATION,
                        payload.clone(),
                        self.timeouts.write,
                        Box::new(move |r| {
                            if let (Err(e), Some((service, host, group, storage))) = (&r, on_timeout) {
                                if hint_worthy(e) {
                                    service.write(host, &group, |t| gc_grace(storage.as_ref(), t));
                                }
                            }
                            c.push(ep, r.map(|_| ()).map_err(|e| request_error(&e)));
                        }),
                    );
                }
            }
            if contacts.contains(&self.local) {
                let r = self.storage.apply(group);
                if let Err(e) = &r {
                    tracing::error!(error = %e, "local write failed");
                }
                collector.push(self.local, r.map_err(|e| e.to_string()));
            }
            pending.push((plan, contacts.len(), collector));
        }
        let mut hint_only_stored = false;
        for (ep, (service, host, group)) in hints {
            let stored = service.write(host, &group, |t| gc_grace(self.storage.as_ref(), t));
            hint_only_stored |= stored;
            tracing::trace!(replica = %ep, mutations = group.len(), stored, "hinted a down replica");
        }
        if hint_only > 0 && !hint_only_stored {
            // The hint could not be written (disk error or the per-host cap): nothing holds
            // the write.
            self.stats.lock().timeouts += 1;
            return Err(Error::WriteTimeout { consistency: cl, received: 0, block_for: 1, write_type });
        }
        for (plan, sent, collector) in pending {
            let block_for = plan.block_for;
            let answers = collector.wait(deadline, |a| {
                successes(a) >= block_for || a.len() == sent || sent - failures(a) < block_for
            });
            let ok = successes(&answers);
            if ok >= block_for {
                continue;
            }
            if failures(&answers) > 0 && sent - failures(&answers) < block_for {
                return Err(replica_failure(cl, &answers, block_for, true));
            }
            self.stats.lock().timeouts += 1;
            return Err(Error::WriteTimeout { consistency: cl, received: ok, block_for, write_type });
        }
        Ok(())
    }

    /// The hints service and host id to hint `ep` with, if it gets hints now. `down` says
    /// whether the replica is down (its downtime counts against `max_hint_window`) or only
    /// failed to acknowledge.
    /// Writes a logged batch: `groups` are each keyspace's mutations with its replication.
    ///
    /// A batch touching more than one partition is first stored on up to two other live nodes
    /// of this data center (this node when it is alone), which replay it if this coordinator
    /// does not confirm it was applied (see [`crate::batchlog`]); then every group is written
    /// at `cl`, and the stored copies are removed. Unavailable comes before anything is stored.
    /// A WriteTimeout with write type BATCH_LOG means the batch could not be stored: nothing of
    /// it was applied and the copies stored are withdrawn (best effort; a copy whose removal is
    /// lost is replayed later). One with BATCH means the batch will be applied in full by a
    /// replay.
    pub fn write_logged(
        &self,
        groups: Vec<(ReplicationStrategy, Vec<Mutation>)>,
        cl: ConsistencyLevel,
    ) -> Result<()> {
        let partitions: HashSet<(sibyl_engine::TableId, &[u8])> =
            groups.iter().flat_map(|(_, g)| g.iter().map(|m| (m.table, &m.update.key[..]))).collect();
        let Some(log) = self.batchlog.get().filter(|_| partitions.len() > 1) else {
            for (strategy, group) in groups {
                self.write(&strategy, group, cl, WriteType::Batch)?;
            }
            return Ok(());
        };
        for (strategy, group) in &groups {
            for m in group {
                self.plan_write(strategy, cl, Token::of_key(&m.update.key))?;
            }
        }
        let all: Vec<Mutation> = groups.iter().flat_map(|(_, g)| g.iter().cloned()).collect();
        let batch = StoredBatch {
            id: Uuid::new_v4(),
            created_ms: batchlog::now_ms(),
            mutations: verbs::encode_mutations(&all),
        };
        let endpoints = self.batchlog_endpoints(batch.id);
        self.store_batch(log, &endpoints, &batch)?;
        for (strategy, group) in groups {
            self.write(&strategy, group, cl, WriteType::Batch)?;
        }
        self.remove_batch(log, &endpoints, batch.id);
        Ok(())
    }

    /// Tells the batch's holders to forget it (one-way; a lost removal means a harmless replay).
    fn remove_batch(&self, log: &Batchlog, endpoints: &[Endpoint], id: Uuid) {
        for ep in endpoints {
            if *ep == self.local {
                log.remove(id);
            } else if let Ok(m) = self.messaging() {
                m.send_one_way(*ep, verbs::BATCH_REMOVE, batchlog::encode_remove(id), self.timeouts.write);
            }
        }
    }

    /// Up to two live nodes of this data center other than this one, chosen by the batch id so
    /// that batches spread over the nodes; this node alone when no other is live.
    fn batchlog_endpoints(&self, id: Uuid) -> Vec<Endpoint> {
        let view = self.view.read();
        let mut others: Vec<Endpoint> = view
            .live
            .iter()
            .copied()
            .filter(|ep| *ep != self.local && Self::location_of(&view, *ep).dc == self.local_location.dc)
            .collect();
        if others.is_empty() {
            return vec![self.local];
        }
        others.sort();
        let start = (id.as_u128() % others.len() as u128) as usize;
        others.rotate_left(start);
        others.truncate(2);
        others
    }

    /// Stores `batch` on every endpoint, or fails with WriteTimeout (BATCH_LOG).
    fn store_batch(&self, log: &Batchlog, endpoints: &[Endpoint], batch: &StoredBatch) -> Result<()> {
        let level = if endpoints.len() > 1 { ConsistencyLevel::Two } else { ConsistencyLevel::One };
        let collector: Arc<Collector<()>> = Collector::new();
        let payload = batchlog::encode_store(batch);
        for ep in endpoints {
            if *ep == self.local {
                collector.push(self.local, log.store(batch).map_err(|e| e.to_string()));
                continue;
            }
            let c = Arc::clone(&collector);
            let ep = *ep;
            self.messaging()?.send_request(
                ep,
                verbs::BATCH_STORE,
                payload.clone(),
                self.timeouts.write,
                Box::new(move |r| c.push(ep, r.map(|_| ()).map_err(|e| request_error(&e)))),
            );
        }
        let answers = collector.wait(Instant::now() + self.timeouts.write, |a| a.len() == endpoints.len());
        let received = successes(&answers);
        if received < endpoints.len() {
            tracing::debug!(batch = %batch.id, received, reason = %first_failure(&answers), "batchlog store incomplete");
            // The copies that were stored are withdrawn (best effort): the client is told the
            // batch failed, so it should not be replayed behind its back.
            self.remove_batch(log, endpoints, batch.id);
            self.stats.lock().timeouts += 1;
            return Err(Error::WriteTimeout {
                consistency: level,
                received,
                block_for: endpoints.len(),
                write_type: WriteType::BatchLog,
            });
        }
        Ok(())
    }

    fn hint_target(&self, view: &ClusterView, ep: Endpoint, down: bool) -> Option<(Arc<HintsService>, Uuid)> {
        let service = self.hints.get()?;
        let Some(host) = view.host_ids.get(&ep) else {
            tracing::debug!(replica = %ep, "no host id known for a replica; cannot hint it");
            return None;
        };
        let downtime = if down {
            view.down_since.get(&ep).map_or(Duration::ZERO, Instant::elapsed)
        } else {
            Duration::ZERO
        };
        let dc = Self::location_of(view, ep).dc;
        match service.decide(&dc, downtime) {
            HintDecision::Hint => Some((Arc::clone(service), *host)),
            other => {
                tracing::trace!(replica = %ep, decision = ?other, "not hinting");
                None
            }
        }
    }

    /// Reads one partition at `cl`, following the table's `policy` (`read_repair`,
    /// `speculative_retry`).
    pub fn read(
        &self,
        strategy: &ReplicationStrategy,
        cmd: &ReadCommand,
        cl: ConsistencyLevel,
        policy: ReadPolicy,
    ) -> Result<Option<PartitionData>> {
        self.stats.lock().reads += 1;
        let token = Token::of_key(&cmd.key);
        let plan = self.plan_read(strategy, cl, token)?;
        let block_for = plan.block_for;
        let mut contacts = plan.contacts.clone();
        let started = Instant::now();
        let deadline = started + self.timeouts.read;
        let collector: Arc<Collector<ReadResponse>> = Collector::new();
        self.ask_replicas(&contacts, cmd, true, &collector)?;
        // Speculative retry: when the contacted replicas have not answered after the table's
        // `speculative_retry` delay (one is dead but not yet convicted, or slow), the next live
        // replica is asked too.
        if let Some(delay) = self.speculative_delay(cmd.table, policy.speculative_retry) {
            let spec_at = started + delay.min(self.timeouts.read);
            let sent = contacts.len();
            let answers = collector.wait(spec_at, |a| read_complete(a, block_for, sent));
            if !read_satisfied(&answers, block_for) {
                if let Some(extra) = plan.live.iter().copied().find(|e| !contacts.contains(e)) {
                    let data_missing = !has_data(&answers);
                    tracing::debug!(replica = %extra, data = data_missing, ?delay, "speculative read retry");
                    self.stats.lock().speculative_retries += 1;
                    self.send_read(extra, cmd, !data_missing, &collector)?;
                    contacts.push(extra);
                }
            }
        }
        let sent = contacts.len();
        let answers = collector.wait(deadline, |a| read_complete(a, block_for, sent));
        let data = answers.iter().find_map(|(_, a)| match a {
            Ok(ReadResponse::Data(d)) => Some(d.clone()),
            _ => None,
        });
        let ok = successes(&answers);
        if ok < block_for || data.is_none() {
            if failures(&answers) > 0 {
                return Err(replica_failure(cl, &answers, block_for, false));
            }
            self.stats.lock().timeouts += 1;
            return Err(Error::ReadTimeout {
                consistency: cl,
                received: ok,
                block_for,
                data_present: data.is_some(),
            });
        }
        let data = data.flatten();
        let expected = digest(data.as_ref());
        let agree = answers.iter().all(|(_, a)| match a {
            Ok(ReadResponse::Digest(d)) => *d == expected,
            _ => true,
        });
        if agree {
            self.latencies.record(cmd.table, started.elapsed(), Instant::now());
            return Ok(data);
        }
        self.stats.lock().digest_mismatches += 1;
        tracing::debug!(table = %cmd.table, "digest mismatch; reading data from every contacted replica");
        // The second round asks only the replicas that answered the first.
        let responded: Vec<Endpoint> = answers.iter().filter(|(_, a)| a.is_ok()).map(|(ep, _)| *ep).collect();
        let result = self.read_full_and_repair(cmd, cl, &responded, block_for, deadline, policy.read_repair);
        if result.is_ok() {
            self.latencies.record(cmd.table, started.elapsed(), Instant::now());
        }
        result
    }

    /// When a read of `table` asks one more replica, by the table's `speculative_retry`. Until
    /// the table has enough measured reads, a percentile stands at half the read timeout (as
    /// Cassandra starts it).
    fn speculative_delay(&self, table: sibyl_engine::TableId, policy: SpeculativeRetry) -> Option<Duration> {
        let latency = match policy.percentile() {
            Some(p) => self.latencies.percentile(table, p, self.timeouts.read / 2, Instant::now()),
            None => Duration::ZERO,
        };
        policy.delay(latency)
    }

    /// Asks every contact: the first for data and the others for digests when `digests`,
    /// else all for data. Remote requests go out before the local read, so they overlap.
    fn ask_replicas(
        &self,
        contacts: &[Endpoint],
        cmd: &ReadCommand,
        digests: bool,
        collector: &Arc<Collector<ReadResponse>>,
    ) -> Result<()> {
        let by_locality = contacts
            .iter()
            .enumerate()
            .filter(|(_, e)| **e != self.local)
            .chain(contacts.iter().enumerate().filter(|(_, e)| **e == self.local));
        for (i, ep) in by_locality {
            self.send_read(*ep, cmd, digests && i > 0, collector)?;
        }
        Ok(())
    }

    /// Asks one replica (this node: read on the calling thread) for data or a digest.
    fn send_read(
        &self,
        ep: Endpoint,
        cmd: &ReadCommand,
        digest_only: bool,
        collector: &Arc<Collector<ReadResponse>>,
    ) -> Result<()> {
        if ep == self.local {
            let r = self.storage.read(cmd).map(|d| {
                if digest_only {
                    ReadResponse::Digest(digest(d.as_ref()))
                } else {
                    ReadResponse::Data(d)
                }
            });
            collector.push(self.local, r.map_err(|e| e.to_string()));
            return Ok(());
        }
        let payload = ReadRequest { command: cmd.clone(), digest_only }.encode();
        let c = Arc::clone(collector);
        self.messaging()?.send_request(
            ep,
            verbs::READ,
            payload,
            self.timeouts.read,
            Box::new(move |r| {
                let answer = r.map_err(|e| request_error(&e)).and_then(|resp| {
                    ReadResponse::decode(&resp.payload).map_err(|e| format!("bad read response: {e}"))
                });
                c.push(ep, answer);
            }),
        );
        Ok(())
    }

    fn read_full_and_repair(
        &self,
        cmd: &ReadCommand,
        cl: ConsistencyLevel,
        contacts: &[Endpoint],
        block_for: usize,
        deadline: Instant,
        read_repair: ReadRepair,
    ) -> Result<Option<PartitionData>> {
        let collector: Arc<Collector<ReadResponse>> = Collector::new();
        self.ask_replicas(contacts, cmd, false, &collector)?;
        let answers = collector.wait(deadline, |a| a.len() == contacts.len());
        let versions: Vec<(Endpoint, Option<PartitionData>)> = answers
            .iter()
            .filter_map(|(ep, a)| match a {
                Ok(ReadResponse::Data(d)) => Some((*ep, d.clone())),
                _ => None,
            })
            .collect();
        if versions.len() < block_for {
            self.stats.lock().timeouts += 1;
            return Err(Error::ReadTimeout {
                consistency: cl,
                received: versions.len(),
                block_for,
                data_present: !versions.is_empty(),
            });
        }
        // Merge whole partitions (no row limit) so the repair carries everything the replicas
        // disagreed on, then apply the limit to the answer.
        let merged_all = merge_versions(
            versions.iter().map(|(_, d)| d.clone()).collect(),
            cmd.reversed,
            usize::MAX,
            cmd.now_seconds,
        );
        if let Some(merged) = &merged_all {
            let want = digest(Some(merged));
            let stale: Vec<Endpoint> =
                versions.iter().filter(|(_, d)| digest(d.as_ref()) != want).map(|(ep, _)| *ep).collect();
            if read_repair == ReadRepair::Blocking {
                self.repair(cmd, merged, &stale, deadline);
            } else if !stale.is_empty() {
                tracing::debug!(stale = stale.len(), "replicas disagree; read_repair is NONE, not repairing");
            }
        }
        Ok(merged_all
            .and_then(|m| merge_versions(vec![Some(m)], cmd.reversed, cmd.row_limit, cmd.now_seconds)))
    }

    /// Blocking read repair: writes the merged partition to the replicas that differed and
    /// waits for them (until the read's deadline; a failed repair does not fail the read).
    fn repair(&self, cmd: &ReadCommand, merged: &PartitionData, stale: &[Endpoint], deadline: Instant) {
        if stale.is_empty() {
            return;
        }
        let m = repair_mutation(cmd.table, merged);
        self.stats.lock().read_repairs += stale.len() as u64;
        let collector: Arc<Collector<()>> = Collector::new();
        for ep in stale {
            if *ep == self.local {
                let r = self.storage.apply(vec![m.clone()]);
                collector.push(self.local, r.map_err(|e| e.to_string()));
            } else if let Ok(messaging) = self.messaging() {
                let c = Arc::clone(&collector);
                let ep = *ep;
                messaging.send_request(
                    ep,
                    verbs::MUTATION,
                    verbs::encode_mutations(std::slice::from_ref(&m)),
                    self.timeouts.write,
                    Box::new(move |r| c.push(ep, r.map(|_| ()).map_err(|e| request_error(&e)))),
                );
            }
        }
        let answers = collector.wait(deadline, |a| a.len() == stale.len());
        if successes(&answers) < stale.len() {
            tracing::debug!(repaired = successes(&answers), stale = stale.len(), "read repair incomplete");
        }
    }

    /// Reads several partitions at `cl` (an `IN` restriction), at most [`MAX_FANOUT`] at once.
    /// The answers are in the order of `cmds`; each succeeds or fails on its own.
    pub fn read_many(
        &self,
        strategy: &ReplicationStrategy,
        cmds: &[ReadCommand],
        cl: ConsistencyLevel,
        policy: ReadPolicy,
    ) -> Vec<Result<Option<PartitionData>>> {
        fan_out(cmds.len(), MAX_FANOUT, |i| self.read(strategy, &cmds[i], cl, policy))
    }

    /// Scans a token range at `cl`.
    ///
    /// The range is cut at ring tokens, so that each piece has one replica set, and adjacent
    /// pieces whose live replicas are the same are merged back (with 3 nodes and RF 3 a full
    /// scan is one request per replica). Pieces are then fetched in rounds: one piece first,
    /// then as many at once as the rows seen so far suggest are needed to fill the limits
    /// (doubling while nothing was found), at most [`MAX_FANOUT`], as Cassandra's range
    /// command iterator does.
    pub fn scan(
        &self,
        strategy: &ReplicationStrategy,
        cmd: &ScanCommand,
        cl: ConsistencyLevel,
    ) -> Result<Vec<PartitionData>> {
        self.stats.lock().scans += 1;
        let start_token = match &cmd.start {
            ScanStart::TokenInclusive(t) | ScanStart::TokenExclusive(t) => *t,
            ScanStart::AfterKey(k) => k.token,
        };
        if start_token > cmd.end {
            return Ok(Vec::new());
        }
        let ends: Vec<Token> = if matches!(strategy, ReplicationStrategy::Local) {
            vec![cmd.end]
        } else {
            let view = self.view.read();
            let mut p: Vec<Token> = view
                .ring
                .sorted_tokens()
                .into_iter()
                .map(Token)
                .filter(|t| *t >= start_token && *t < cmd.end)
                .collect();
            p.push(cmd.end);
            p
        };
        let pieces = self.plan_pieces(strategy, cl, &ends);
        let mut out: Vec<PartitionData> = Vec::new();
        let mut rows_left = cmd.row_limit;
        let mut next = 0;
        let mut concurrency = 1;
        while next < pieces.len() && out.len() < cmd.partition_limit && rows_left > 0 {
            let round = &pieces[next..pieces.len().min(next + concurrency)];
            let commands: Vec<ScanCommand> = round
                .iter()
                .enumerate()
                .map(|(i, (end, _))| ScanCommand {
                    start: if next + i == 0 {
                        cmd.start.clone()
                    } else {
                        ScanStart::TokenExclusive(pieces[next + i - 1].0)
                    },
                    end: *end,
                    partition_limit: cmd.partition_limit - out.len(),
                    row_limit: rows_left,
                    ..cmd.clone()
                })
                .collect();
            let answers = fan_out(round.len(), MAX_FANOUT, |i| match &round[i].1 {
                Some(plan) => self.scan_piece(plan, &commands[i], cl),
                // Unavailable when planned: ask again, now that the piece is needed.
                None => self.scan_piece(&self.plan_read(strategy, cl, round[i].0)?, &commands[i], cl),
            });
            for found in answers {
                for p in found? {
                    if out.len() >= cmd.partition_limit || rows_left == 0 {
                        break;
                    }
                    rows_left = rows_left.saturating_sub(p.live_rows(cmd.now_seconds).count());
                    out.push(p);
                }
            }
            next += round.len();
            concurrency = next_concurrency(concurrency, next, out.len(), cmd.partition_limit - out.len());
        }
        // Whole partitions were kept; the last may hold more rows than were left.
        Ok(merge_ranges(vec![out], cmd.row_limit, cmd.partition_limit, cmd.now_seconds))
    }

    /// The replica plan of each ring piece (by its end token), adjacent pieces with the same
    /// live replicas merged into one. A piece without enough live replicas has no plan: it
    /// fails only if the scan gets to it (a LIMIT met earlier never needs it), as in Cassandra.
    fn plan_pieces(
        &self,
        strategy: &ReplicationStrategy,
        cl: ConsistencyLevel,
        ends: &[Token],
    ) -> Vec<(Token, Option<ReplicaPlan>)> {
        let mut pieces: Vec<(Token, Option<ReplicaPlan>)> = Vec::with_capacity(ends.len());
        for end in ends {
            let plan = self.try_plan_read(strategy, cl, *end).ok();
            match (pieces.last_mut(), &plan) {
                (Some((last_end, Some(last))), Some(p)) if same_replicas(&last.live, &p.live) => {
                    *last_end = *end;
                }
                _ => pieces.push((*end, plan)),
            }
        }
        pieces
    }

    /// Scans one piece of the ring (one replica set) at `cl`.
    fn scan_piece(
        &self,
        plan: &ReplicaPlan,
        cmd: &ScanCommand,
        cl: ConsistencyLevel,
    ) -> Result<Vec<PartitionData>> {
        let contacts = plan.contacts.clone();
        let block_for = plan.block_for;
        if contacts == [self.local] {
            return Ok(self.storage.scan(cmd)?);
        }
        let deadline = Instant::now() + self.timeouts.range;
        let collector: Arc<Collector<Vec<PartitionData>>> = Collector::new();
        let payload: Bytes = verbs::encode_scan(cmd);
        for ep in &contacts {
            if *ep == self.local {
                continue;
            }
            let c = Arc::clone(&collector);
            let ep = *ep;
            self.messaging()?.send_request(
                ep,
                verbs::RANGE_READ,
                payload.clone(),
                self.timeouts.range,
                Box::new(move |r| {
                    let answer = r.map_err(|e| request_error(&e)).and_then(|resp| {
                        verbs::decode_partitions(&resp.payload)
                            .map_err(|e| format!("bad range response: {e}"))
                    });
                    c.push(ep, answer);
                }),
            );
        }
        if contacts.contains(&self.local) {
            let r = self.storage.scan(cmd);
            collector.push(self.local, r.map_err(|e| e.to_string()));
        }
        let answers = collector.wait(deadline, |a| successes(a) >= block_for || a.len() == contacts.len());
        let ok: Vec<Vec<PartitionData>> =
            answers.iter().filter_map(|(_, a)| a.as_ref().ok().cloned()).collect();
        if ok.len() < block_for {
            if failures(&answers) > 0 {
                return Err(replica_failure(cl, &answers, block_for, false));
            }
            self.stats.lock().timeouts += 1;
            return Err(Error::ReadTimeout {
                consistency: cl,
                received: ok.len(),
                block_for,
                data_present: !ok.is_empty(),
            });
        }
        Ok(merge_ranges(ok, cmd.row_limit, cmd.partition_limit, cmd.now_seconds))
    }

    /// Sends `mutations` (a schema change) to every other live node, without waiting.
    pub fn push_schema(&self, mutations: &[Mutation]) {
        let Ok(messaging) = self.messaging() else { return };
        let payload = verbs::encode_mutations(mutations);
        let live: Vec<Endpoint> =
            self.view.read().live.iter().copied().filter(|e| *e != self.local).collect();
        for ep in live {
            messaging.send_one_way(ep, verbs::SCHEMA_PUSH, payload.clone(), self.timeouts.write);
        }
    }
}

/// Most partitions (of an `IN`) or ring pieces (of a scan) one request reads at once.
pub const MAX_FANOUT: usize = 16;

/// Runs `f(0..n)` on up to `concurrency` threads (the calling thread is one of them) and returns
/// the results in index order. The work is blocking (replica waits), so threads, not tasks.
fn fan_out<R: Send>(n: usize, concurrency: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let workers = concurrency.min(n);
    if workers <= 1 {
        return (0..n).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return done;
            }
            done.push((i, f(i)));
        }
    };
    std::thread::scope(|s| {
        // A thread that cannot be started leaves its share to the others.
        let handles: Vec<_> = (1..workers)
            .filter_map(|_| {
                std::thread::Builder::new().name("sibyl-fanout".into()).spawn_scoped(s, work).ok()
            })
            .collect();
        let mut all = work();
        for h in handles {
            match h.join() {
                Ok(done) => all.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    })
}

/// How many ring pieces the next round of a scan asks at once: enough, at the partitions per
/// piece seen so far, to fill what is left; twice as many as last time when nothing was found.
fn next_concurrency(previous: usize, queried: usize, found: usize, wanted: usize) -> usize {
    let estimate = if found == 0 {
        previous.saturating_mul(2)
    } else {
        // wanted / (found / queried), rounded up.
        wanted.saturating_mul(queried).div_ceil(found)
    };
    estimate.clamp(1, MAX_FANOUT)
}

/// Whether two live replica lists hold the same nodes.
fn same_replicas(a: &[Endpoint], b: &[Endpoint]) -> bool {
    a.len() == b.len() && a.iter().all(|e| b.contains(e))
}

type ReadAnswers = [(Endpoint, std::result::Result<ReadResponse, String>)];

fn has_data(a: &ReadAnswers) -> bool {
    a.iter().any(|(_, r)| matches!(r, Ok(ReadResponse::Data(_))))
}

/// Enough answers, one of them with the data.
fn read_satisfied(a: &ReadAnswers, block_for: usize) -> bool {
    successes(a) >= block_for && has_data(a)
}

/// Nothing more to wait for: satisfied, or every contacted replica answered.
fn read_complete(a: &ReadAnswers, block_for: usize, sent: usize) -> bool {
    read_satisfied(a, block_for) || a.len() == sent
}

fn request_error(e: &RequestError) -> String {
    e.to_string()
}

/// Whether a replica's failure to acknowledge a write earns it a hint: silence, a request that
/// could not be sent, or an error answer (e.g. overloaded); not this node shutting down.
fn hint_worthy(e: &RequestError) -> bool {
    matches!(e, RequestError::Timeout | RequestError::Overloaded | RequestError::Failed { .. })
}

/// Cassandra's default `gc_grace_seconds`, for tables the storage does not know.
const DEFAULT_GC_GRACE_SECONDS: u32 = 864_000;

fn gc_grace(storage: &dyn Storage, table: sibyl_engine::TableId) -> u32 {
    storage.gc_grace_seconds(table).unwrap_or(DEFAULT_GC_GRACE_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_out_returns_results_in_order_and_bounds_its_threads() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let got = fan_out(40, 4, |i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 10
        });
        assert_eq!(got, (0..40).map(|i| i * 10).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 4);
        assert_eq!(fan_out(0, 4, |i| i), Vec::<usize>::new());
        assert_eq!(fan_out(3, 1, |i| i), vec![0, 1, 2]);
    }

    #[test]
    fn scan_concurrency_follows_the_rows_seen_so_far() {
        // Nothing found yet: double.
        assert_eq!(next_concurrency(1, 1, 0, 100), 2);
        assert_eq!(next_concurrency(8, 15, 0, 100), MAX_FANOUT);
        // 10 partitions from 2 pieces, 20 wanted: 4 more pieces.
        assert_eq!(next_concurrency(2, 2, 10, 20), 4);
        // Rounded up, at least one, at most MAX_FANOUT.
        assert_eq!(next_concurrency(1, 3, 10, 1), 1);
        assert_eq!(next_concurrency(1, 3, 2, 5), 8);
        assert_eq!(next_concurrency(1, 1, 1, usize::MAX), MAX_FANOUT);
    }

    #[test]
    fn a_replica_timing_out_is_silence_not_a_failure() {
        assert_eq!(RequestError::Timeout.to_string(), TIMED_OUT);
        let ep = |i: u8| Endpoint(std::net::SocketAddr::from(([127, 0, 0, i], 7000)));
        let answers: Vec<(Endpoint, std::result::Result<(), String>)> = vec![
            (ep(1), Ok(())),
            (ep(2), Err(request_error(&RequestError::Timeout))),
            (ep(3), Err("overloaded".into())),
        ];
        assert_eq!((successes(&answers), failures(&answers)), (1, 1));
        assert_eq!(first_failure(&answers), "127.0.0.3:7000: overloaded");
    }

    #[test]
    fn replica_lists_compare_as_sets() {
        let a = Endpoint("127.0.0.1:7000".parse().unwrap_or_else(|_| unreachable!()));
        let b = Endpoint("127.0.0.2:7000".parse().unwrap_or_else(|_| unreachable!()));
        assert!(same_replicas(&[a, b], &[b, a]));
        assert!(!same_replicas(&[a], &[a, b]));
    }
}
