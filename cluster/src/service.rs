//! The cluster service: one node's membership, wired to sockets.
//!
//! It owns the [`MessagingService`] and the [`Gossiper`], and does three things:
//! 1. Gossip: every `GOSSIP_INTERVAL` it ticks the gossiper and sends what it asks; gossip
//!    events update the coordinator's [`ClusterView`] (tokens, data center and rack, who is
//!    alive) and reach the CQL layer through [`ClusterHooks`] (system.peers rows, client
//!    events).
//! 2. Replica work: MUTATION, READ and RANGE_READ from coordinators run on blocking threads
//!    (bounded by `MAX_CONCURRENT_REPLICA_REQUESTS`; beyond it a request fails at once as
//!    overloaded, so a slow disk cannot queue unbounded work).
//! 3. Schema: a schema change is pushed to every live node (SCHEMA_PUSH); the SCHEMA gossip
//!    state carries each node's schema version, and a node that sees another version pulls
//!    that node's whole schema (SCHEMA_PULL) and merges it. Schema rows reconcile by timestamp
//!    like any data, so merging in any order converges.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sibyl_engine::Mutation;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::coordinator::Coordinator;
use crate::endpoint::{Endpoint, Location};
use crate::gossip::{ApplicationState, GossipEvent, GossipMessage, Gossiper};
use crate::hints::HintTarget;
use crate::messaging::{InboundHandler, MessagingConfig, MessagingService, Responder, Verb};
use crate::streaming::StreamManager;
use crate::verbs::{self, ReadRequest, ReadResponse};

/// How often gossip runs (Cassandra: one second).
pub const GOSSIP_INTERVAL: Duration = Duration::from_secs(1);
/// Replica requests executing at once on this node.
pub const MAX_CONCURRENT_REPLICA_REQUESTS: usize = 256;
/// Consecutive failed connection attempts after which a node gossip still believes alive is
/// treated as down (see [`connection_verdicts`]).
pub const CONNECT_FAILURES_TO_MARK_DOWN: u32 = 2;
/// A node whose schema differs is asked for its schema at most this often.
pub const SCHEMA_PULL_INTERVAL: Duration = Duration::from_secs(5);
/// How long a node that left the ring stays in gossip (as LEFT or removed) so that every node
/// hears of it, before it is forgotten and quarantined (Cassandra keeps it days; a small
/// cluster's gossip converges in seconds).
pub const EVICT_DELAY: Duration = Duration::from_secs(30);

/// What the cluster layer asks of the layer above (the CQL executor).
pub trait ClusterHooks: Send + Sync + std::fmt::Debug {
    /// This node's schema version.
    fn schema_version(&self) -> Uuid;
    /// This node's schema as mutations of its schema tables (user keyspaces only).
    fn schema_mutations(&self) -> Result<Vec<Mutation>, String>;
    /// Merges schema mutations received from another node.
    fn merge_schema(&self, mutations: Vec<Mutation>) -> Result<(), String>;
    /// Another node appeared or changed (for `system.peers`).
    fn peer_changed(&self, peer: &PeerInfo);
    /// Another node went up or down (for client STATUS_CHANGE events).
    fn peer_status(&self, peer: &PeerInfo, up: bool);
    /// Another node left the ring: decommissioned, removed, or replaced (for `system.peers` and
    /// client TOPOLOGY_CHANGE REMOVED_NODE events).
    fn peer_removed(&self, peer: &PeerInfo) {
        let _ = peer;
    }
}

/// A node's place in the ring, from its gossiped STATUS (Cassandra's values; Cassandra also
/// appends the tokens, which Sibyl gossips in TOKENS alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingStatus {
    /// `NORMAL`: a member serving its ranges.
    Normal,
    /// `BOOT`: bootstrapping; a pending replica of its future ranges.
    Joining,
    /// `BOOT_REPLACE,<address>`: bootstrapping to take over a dead node's tokens.
    Replacing(Endpoint),
    /// `LEAVING`: decommissioning; still a replica, its ranges' next replicas are pending.
    Leaving,
    /// `LEFT`: decommissioned and gone.
    Left,
    /// `removing,<host id>`: a dead node whose ranges are being restreamed (set by the node
    /// running removenode).
    Removing,
    /// `removed,<host id>`: a dead node taken out of the ring.
    Removed,
    /// Anything else (`shutdown`, or nothing gossiped yet).
    Other,
}

impl RingStatus {
    /// Parses a STATUS value.
    #[must_use]
    pub fn parse(value: &str) -> RingStatus {
        let mut parts = value.splitn(2, ',');
        let kind = parts.next().unwrap_or_default();
        let arg = parts.next().unwrap_or_default();
        match kind {
            "NORMAL" => RingStatus::Normal,
            "BOOT" => RingStatus::Joining,
            "BOOT_REPLACE" => arg.parse().map_or(RingStatus::Other, |a| RingStatus::Replacing(Endpoint(a))),
            "LEAVING" => RingStatus::Leaving,
            "LEFT" => RingStatus::Left,
            "removing" => RingStatus::Removing,
            "removed" => RingStatus::Removed,
            _ => RingStatus::Other,
        }
    }

    /// Whether the node is out of the ring for good.
    #[must_use]
    pub fn is_gone(&self) -> bool {
        matches!(self, RingStatus::Left | RingStatus::Removed)
    }
}

/// Another node as gossip describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// Its listen address and storage port.
    pub endpoint: Endpoint,
    /// Host id.
    pub host_id: Option<Uuid>,
    /// Data center and rack.
    pub location: Location,
    /// Address for CQL clients.
    pub rpc_address: Option<std::net::IpAddr>,
    /// CQL port.
    pub native_port: Option<u16>,
    /// Tokens.
    pub tokens: Vec<i64>,
    /// Schema version.
    pub schema_version: Option<Uuid>,
    /// Release version.
    pub release_version: Option<String>,
    /// `NORMAL`, `LEAVING`, ...
    pub status: String,
    /// Data size in bytes (LOAD).
    pub load_bytes: f64,
    /// Whether gossip believes it alive.
    pub up: bool,
    /// Its gossip generation (start time): of two nodes claiming a token, the later one holds
    /// it, as in Cassandra (a replacement over the node it replaced).
    pub generation: i32,
}

/// One endpoint as `gossipinfo` shows it.
#[derive(Debug, Clone)]
pub struct GossipInfo {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its generation.
    pub generation: i32,
    /// Its heartbeat version.
    pub heartbeat: i32,
    /// (state name, value, version).
    pub states: Vec<(String, String, i32)>,
}

/// Settings of the cluster service (from the node's yaml).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `cluster_name`: nodes of other clusters are refused.
    pub cluster_name: String,
    /// `listen_address` and `storage_port`.
    pub local: Endpoint,
    /// Data center and rack.
    pub location: Location,
    /// Seeds (`seed_provider`).
    pub seeds: Vec<Endpoint>,
    /// `phi_convict_threshold`.
    pub phi_convict_threshold: f64,
    /// This node's host id.
    pub host_id: Uuid,
    /// This node's tokens.
    pub tokens: Vec<i64>,
    /// Address and port for CQL clients.
    pub rpc_address: std::net::IpAddr,
    /// CQL port.
    pub native_port: u16,
    /// Reported release version.
    pub release_version: String,
    /// Gossip generation (seconds since the epoch at start, increasing across restarts).
    pub generation: i32,
    /// Whether the node is a member already: it announces NORMAL with its tokens at once.
    /// A node that must bootstrap (or replace a dead node) starts without either and calls
    /// [`ClusterService::bootstrap`].
    pub normal: bool,
    /// `stream_throughput_outbound`, bytes per second (0 = unlimited).
    pub stream_throughput_bytes_per_sec: u64,
}

/// The running cluster service of a node.
#[derive(Debug, Clone)]
pub struct ClusterService {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: ClusterConfig,
    pub(crate) coordinator: Arc<Coordinator>,
    pub(crate) hooks: Arc<dyn ClusterHooks>,
    pub(crate) gossiper: Mutex<Gossiper>,
    pub(crate) messaging: MessagingService,
    started: Instant,
    replica_slots: Arc<Semaphore>,
    last_pull: Mutex<HashMap<Endpoint, Instant>>,
    peers: Mutex<HashMap<Endpoint, PeerInfo>>,
    /// Nodes this node cannot connect to (see [`connection_verdicts`]).
    unreachable: Mutex<HashSet<Endpoint>>,
    /// Streams to and from this node.
    pub(crate) streams: Arc<StreamManager>,
    /// This node's own place in the ring.
    pub(crate) mode: Mutex<crate::operations::Mode>,
    /// Nodes that left the ring, and when gossip forgets them (see [`EVICT_DELAY`]).
    evict: Mutex<HashMap<Endpoint, Instant>>,
    /// The removenode this node runs or ran last.
    pub(crate) removal: Mutex<Option<crate::operations::RemovalProgress>>,
}

#[derive(Debug)]
struct Handler {
    inner: std::sync::OnceLock<std::sync::Weak<Inner>>,
}

impl InboundHandler for Handler {
    fn handle(&self, from: Endpoint, verb: Verb, payload: Bytes, responder: Responder) {
        let Some(inner) = self.inner.get().and_then(std::sync::Weak::upgrade) else {
            responder.fail("node is starting or stopping");
            return;
        };
        inner.handle(from, verb, payload, responder);
    }
}

impl ClusterService {
    /// Binds the storage port, starts gossip and serves replica requests. Must run inside a
    /// tokio runtime.
    pub async fn start(
        config: ClusterConfig,
        coordinator: Arc<Coordinator>,
        hooks: Arc<dyn ClusterHooks>,
    ) -> std::io::Result<ClusterService> {
        Self::start_on(config, coordinator, hooks, None).await
    }

    /// Like [`ClusterService::start`], serving internode messages on `listener` when given
    /// (see [`MessagingService::start_on`]).
    pub async fn start_on(
        config: ClusterConfig,
        coordinator: Arc<Coordinator>,
        hooks: Arc<dyn ClusterHooks>,
        listener: Option<std::net::TcpListener>,
    ) -> std::io::Result<ClusterService> {
        let handler = Arc::new(Handler { inner: std::sync::OnceLock::new() });
        let messaging_config = MessagingConfig::new(config.local, config.cluster_name.clone());
        let dyn_handler: Arc<dyn InboundHandler> = handler.clone();
        let messaging = MessagingService::start_on(messaging_config, dyn_handler, listener)?;
        coordinator.attach_messaging(messaging.clone());
        let mut gossiper = Gossiper::new(
            config.local,
            config.cluster_name.clone(),
            config.generation,
            config.seeds.clone(),
            config.phi_convict_threshold,
        );
        let tokens: Vec<String> = config.tokens.iter().map(i64::to_string).collect();
        set_state(&mut gossiper, ApplicationState::HostId, config.host_id.to_string());
        set_state(&mut gossiper, ApplicationState::Dc, config.location.dc.clone());
        set_state(&mut gossiper, ApplicationState::Rack, config.location.rack.clone());
        set_state(&mut gossiper, ApplicationState::RpcAddress, config.rpc_address.to_string());
        set_state(&mut gossiper, ApplicationState::NativePort, config.native_port.to_string());
        set_state(&mut gossiper, ApplicationState::ReleaseVersion, config.release_version.clone());
        set_state(&mut gossiper, ApplicationState::Schema, hooks.schema_version().to_string());
        if config.normal {
            set_state(&mut gossiper, ApplicationState::Tokens, tokens.join(","));
            set_state(&mut gossiper, ApplicationState::Status, "NORMAL".into());
        } else {
            // Not a member yet: our own ring holds nobody until gossip teaches it.
            coordinator.update_view(|v| v.ring.remove_endpoint(config.local));
        }
        let streams = Arc::new(StreamManager::new(config.stream_throughput_bytes_per_sec));
        let mode =
            if config.normal { crate::operations::Mode::Normal } else { crate::operations::Mode::Starting };
        let inner = Arc::new(Inner {
            config,
            coordinator,
            hooks,
            gossiper: Mutex::new(gossiper),
            messaging,
            started: Instant::now(),
            replica_slots: Arc::new(Semaphore::new(MAX_CONCURRENT_REPLICA_REQUESTS)),
            last_pull: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            unreachable: Mutex::new(HashSet::new()),
            streams,
            mode: Mutex::new(mode),
            evict: Mutex::new(HashMap::new()),
            removal: Mutex::new(None),
        });
        let _ = handler.inner.set(Arc::downgrade(&inner));
        if let Some(hints) = inner.coordinator.hints() {
            let target = Arc::new(Delivery {
                coordinator: Arc::downgrade(&inner.coordinator),
                messaging: inner.messaging.clone(),
            });
            hints.start_dispatcher(target);
        }
        tracing::info!(endpoint = %inner.config.local, seeds = ?inner.config.seeds, "cluster service started");
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut rng = StdRng::from_os_rng();
            let mut interval = tokio::time::interval(GOSSIP_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                inner.gossip_round(&mut rng);
            }
        });
        Ok(ClusterService { inner })
    }

    /// The messaging service (stats, the test filter hook).
    #[must_use]
    pub fn messaging(&self) -> &MessagingService {
        &self.inner.messaging
    }

    /// The coordinator.
    #[must_use]
    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.inner.coordinator
    }

    /// Every other node known, as gossip describes it.
    #[must_use]
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut v: Vec<PeerInfo> = self.inner.peers.lock().values().cloned().collect();
        v.sort_by_key(|p| p.endpoint);
        v
    }

    /// Gossip's view of every endpoint, for `gossipinfo`.
    #[must_use]
    pub fn gossip_info(&self) -> Vec<GossipInfo> {
        let g = self.inner.gossiper.lock();
        let mut out = Vec::new();
        for ep in g.endpoints() {
            if let Some(s) = g.endpoint_state(ep) {
                let states = s
                    .states
                    .iter()
                    .map(|(k, v)| (format!("{k:?}").to_uppercase(), v.value.clone(), v.version))
                    .collect();
                out.push(GossipInfo {
                    endpoint: ep,
                    generation: s.heartbeat.generation,
                    heartbeat: s.heartbeat.version,
                    states,
                });
            }
        }
        out
    }

    /// Updates this node's LOAD (bytes on disk) in gossip.
    pub fn set_load(&self, bytes: u64) {
        set_state(&mut self.inner.gossiper.lock(), ApplicationState::Load, format!("{bytes}"));
    }

    /// Announces a schema change: pushes it to every live node now; the gossiped version
    /// follows on the next round.
    pub fn announce_schema(&self, mutations: &[Mutation]) {
        self.inner.coordinator.push_schema(mutations);
        let version = self.inner.hooks.schema_version().to_string();
        set_state(&mut self.inner.gossiper.lock(), ApplicationState::Schema, version);
    }

    /// Stops hint delivery, batchlog replay and messaging (the node is shutting down).
    pub fn shutdown(&self) {
        if let Some(hints) = self.inner.coordinator.hints() {
            hints.shutdown();
        }
        if let Some(batchlog) = self.inner.coordinator.batchlog() {
            batchlog.shutdown();
        }
        self.inner.messaging.shutdown();
    }
}

impl Inner {
    pub(crate) fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Forgets the nodes that left the ring [`EVICT_DELAY`] ago.
    fn evict_departed(&self) {
        let due: Vec<Endpoint> = {
            let mut evict = self.evict.lock();
            let due: Vec<Endpoint> =
                evict.iter().filter(|(_, at)| at.elapsed() >= EVICT_DELAY).map(|(e, _)| *e).collect();
            for ep in &due {
                evict.remove(ep);
            }
            due
        };
        if due.is_empty() {
            return;
        }
        let now = self.now();
        let mut g = self.gossiper.lock();
        for ep in due {
            g.remove_endpoint(ep, now);
        }
    }

    pub(crate) fn send_gossip(&self, out: Vec<(Endpoint, GossipMessage)>) {
        for (to, msg) in out {
            let verb = match msg {
                GossipMessage::Syn { .. } => verbs::GOSSIP_SYN,
                GossipMessage::Ack { .. } => verbs::GOSSIP_ACK,
                GossipMessage::Ack2 { .. } => verbs::GOSSIP_ACK2,
            };
            let mut bytes = Vec::new();
            msg.encode(&mut bytes);
            self.messaging.send_one_way(to, verb, Bytes::from(bytes), GOSSIP_INTERVAL);
        }
    }

    fn gossip_round(self: &Arc<Self>, rng: &mut StdRng) {
        let version = self.hooks.schema_version().to_string();
        let (out, events) = {
            let mut g = self.gossiper.lock();
            let current = g
                .endpoint_state(self.config.local)
                .and_then(|s| s.states.get(&ApplicationState::Schema))
                .map(|v| v.value.clone());
            if current.as_deref() != Some(version.as_str()) {
                set_state(&mut g, ApplicationState::Schema, version.clone());
            }
            let out = g.tick(self.now(), rng);
            (out, g.drain_events())
        };
        self.send_gossip(out);
        self.handle_events(events);
        self.check_connections();
        self.check_schema_agreement(&version);
        self.evict_departed();
    }

    /// Applies [`connection_verdicts`]: nodes this node cannot connect to are down for its
    /// requests, and up again once a connection succeeds.
    fn check_connections(&self) {
        let failures: HashMap<Endpoint, u32> =
            self.messaging.stats().peers.iter().map(|(ep, s)| (*ep, s.connect_failures)).collect();
        let (down, up) = {
            let mut unreachable = self.unreachable.lock();
            let verdicts = connection_verdicts(&unreachable, &failures);
            for ep in &verdicts.0 {
                unreachable.insert(*ep);
            }
            for ep in &verdicts.1 {
                unreachable.remove(ep);
            }
            verdicts
        };
        for ep in down {
            tracing::info!(endpoint = %ep, "endpoint is now DOWN: {CONNECT_FAILURES_TO_MARK_DOWN} connection attempts in a row failed (the process is gone or the network is cut)");
            self.handle_events(vec![GossipEvent::Down { endpoint: ep, phi: 0.0 }]);
        }
        for ep in up {
            tracing::info!(endpoint = %ep, "endpoint is reachable again");
            self.handle_events(vec![GossipEvent::Up(ep)]);
        }
    }

    /// Pulls the schema from live nodes whose version differs from ours (rate-limited).
    fn check_schema_agreement(self: &Arc<Self>, ours: &str) {
        let differing: Vec<Endpoint> = {
            let g = self.gossiper.lock();
            g.live_endpoints()
                .into_iter()
                .filter(|ep| *ep != self.config.local)
                .filter(|ep| {
                    g.endpoint_state(*ep)
                        .and_then(|s| s.states.get(&ApplicationState::Schema))
                        .is_some_and(|v| v.value != ours)
                })
                .collect()
        };
        for ep in differing {
            {
                let mut last = self.last_pull.lock();
                if last.get(&ep).is_some_and(|t| t.elapsed() < SCHEMA_PULL_INTERVAL) {
                    continue;
                }
                last.insert(ep, Instant::now());
            }
            let weak = Arc::downgrade(self);
            tracing::info!(peer = %ep, "schema versions differ; pulling the peer's schema");
            self.messaging.send_request(
                ep,
                verbs::SCHEMA_PULL,
                Bytes::new(),
                Duration::from_secs(10),
                Box::new(move |r| {
                    let Some(inner) = weak.upgrade() else { return };
                    match r {
                        Ok(resp) => match verbs::decode_mutations(&resp.payload) {
                            Ok(m) => {
                                let hooks = Arc::clone(&inner.hooks);
                                std::thread::spawn(move || {
                                    if let Err(e) = hooks.merge_schema(m) {
                                        tracing::error!(peer = %ep, error = %e, "cannot merge the schema pulled from a peer");
                                    }
                                });
                            }
                            Err(e) => tracing::warn!(peer = %ep, error = %e, "bad schema pull response"),
                        },
                        Err(e) => tracing::debug!(peer = %ep, error = %e, "schema pull failed; will retry"),
                    }
                }),
            );
        }
    }

    fn peer_info(g: &Gossiper, ep: Endpoint, unreachable: &HashSet<Endpoint>) -> Option<PeerInfo> {
        let s = g.endpoint_state(ep)?;
        let get = |a: ApplicationState| s.states.get(&a).map(|v| v.value.clone());
        let location = Location {
            dc: get(ApplicationState::Dc).unwrap_or_else(|| Location::default().dc),
            rack: get(ApplicationState::Rack).unwrap_or_else(|| Location::default().rack),
        };
        Some(PeerInfo {
            endpoint: ep,
            host_id: get(ApplicationState::HostId).and_then(|v| v.parse().ok()),
            location,
            rpc_address: get(ApplicationState::RpcAddress).and_then(|v| v.parse().ok()),
            native_port: get(ApplicationState::NativePort).and_then(|v| v.parse().ok()),
            tokens: get(ApplicationState::Tokens)
                .map(|v| v.split(',').filter_map(|t| t.parse().ok()).collect())
                .unwrap_or_default(),
            schema_version: get(ApplicationState::Schema).and_then(|v| v.parse().ok()),
            release_version: get(ApplicationState::ReleaseVersion),
            status: get(ApplicationState::Status).unwrap_or_default(),
            load_bytes: get(ApplicationState::Load).and_then(|v| v.parse().ok()).unwrap_or(0.0),
            up: g.is_alive(ep) && !unreachable.contains(&ep),
            generation: s.heartbeat.generation,
        })
    }

    pub(crate) fn handle_events(&self, events: Vec<GossipEvent>) {
        if events.is_empty() {
            return;
        }
        let mut changed: Vec<Endpoint> = Vec::new();
        let mut status: Vec<Endpoint> = Vec::new();
        for e in events {
            match e {
                GossipEvent::Joined(ep) | GossipEvent::Restarted(ep) => changed.push(ep),
                GossipEvent::StateChanged { endpoint, .. } => changed.push(endpoint),
                GossipEvent::Up(ep) => {
                    changed.push(ep);
                    status.push(ep);
                }
                GossipEvent::Down { endpoint, .. } => {
                    changed.push(endpoint);
                    status.push(endpoint);
                }
            }
        }
        changed.retain(|ep| *ep != self.config.local);
        changed.sort();
        changed.dedup();
        let infos: Vec<PeerInfo> = {
            let unreachable = self.unreachable.lock().clone();
            let g = self.gossiper.lock();
            changed.iter().filter_map(|ep| Self::peer_info(&g, *ep, &unreachable)).collect()
        };
        let mut gone: Vec<PeerInfo> = Vec::new();
        let generations: HashMap<Endpoint, i32> = {
            let g = self.gossiper.lock();
            g.endpoints()
                .into_iter()
                .filter_map(|ep| g.endpoint_state(ep).map(|s| (ep, s.heartbeat.generation)))
                .collect()
        };
        self.coordinator.update_view(|view| {
            let members_before = view.ring.endpoints();
            for p in &infos {
                let status = RingStatus::parse(&p.status);
                if status.is_gone() {
                    view.ring.remove_endpoint(p.endpoint);
                    view.joining.remove(&p.endpoint);
                    view.leaving.remove(&p.endpoint);
                    view.live.remove(&p.endpoint);
                    view.host_ids.remove(&p.endpoint);
                    gone.push(p.clone());
                    continue;
                }
                if let Some(host) = p.host_id {
                    view.host_ids.insert(p.endpoint, host);
                }
                match status {
                    RingStatus::Normal if !p.tokens.is_empty() => {
                        // A token another node holds moves only to a later incarnation: a
                        // replacement keeps its dead node's tokens whatever order gossip
                        // delivers the two states in.
                        let tokens: Vec<i64> = p
                            .tokens
                            .iter()
                            .copied()
                            .filter(|t| match view.ring.endpoint_of(*t) {
                                Some(owner) if owner != p.endpoint => {
                                    generations.get(&owner).is_none_or(|g| *g < p.generation)
                                }
                                _ => true,
                            })
                            .collect();
                        view.ring.set_location(p.endpoint, p.location.clone());
                        view.ring.update_normal_tokens(p.endpoint, &tokens);
                        view.joining.remove(&p.endpoint);
                        view.leaving.remove(&p.endpoint);
                        if tokens.is_empty() {
                            // Every token of it is held by a later node: it was replaced.
                            view.live.remove(&p.endpoint);
                            view.host_ids.remove(&p.endpoint);
                            gone.push(p.clone());
                            continue;
                        }
                    }
                    RingStatus::Joining | RingStatus::Replacing(_) if !p.tokens.is_empty() => {
                        view.ring.set_location(p.endpoint, p.location.clone());
                        view.joining.insert(p.endpoint, p.tokens.clone());
                    }
                    RingStatus::Leaving | RingStatus::Removing if view.ring.is_member(p.endpoint) => {
                        view.leaving.insert(p.endpoint);
                    }
                    _ => {}
                }
                if p.up {
                    view.live.insert(p.endpoint);
                } else {
                    view.live.remove(&p.endpoint);
                }
            }
            // A node whose every token another node took (it was replaced) left the ring.
            for ep in members_before {
                if !view.ring.is_member(ep)
                    && ep != self.config.local
                    && !gone.iter().any(|g| g.endpoint == ep)
                {
                    view.leaving.remove(&ep);
                    view.live.remove(&ep);
                    view.host_ids.remove(&ep);
                    if let Some(p) = self.peers.lock().get(&ep) {
                        gone.push(p.clone());
                    }
                }
            }
        });
        if !gone.is_empty() {
            self.departed(&gone);
        }
        let mut peers = self.peers.lock();
        let mut flipped = Vec::new();
        for p in &infos {
            if gone.iter().any(|g| g.endpoint == p.endpoint) {
                continue;
            }
            let before = peers.insert(p.endpoint, p.clone());
            if before.as_ref().is_none_or(|b| peer_row_differs(b, p)) {
                self.hooks.peer_changed(p);
            }
            if status.contains(&p.endpoint) && before.as_ref().is_none_or(|b| b.up != p.up) {
                flipped.push(p.clone());
            }
        }
        drop(peers);
        if let Some(hints) = self.coordinator.hints() {
            if flipped.iter().any(|p| p.up) {
                // A node came back: deliver what it missed.
                hints.wake();
            }
        }
        for p in flipped {
            self.hooks.peer_status(&p, p.up);
        }
    }

    /// The dead node this node replaced leaves every view of ours.
    pub(crate) fn forget_replaced(&self, dead: Endpoint) {
        self.coordinator.update_view(|v| {
            v.ring.remove_endpoint(dead);
            v.live.remove(&dead);
            v.host_ids.remove(&dead);
        });
        let known = self.peers.lock().get(&dead).cloned();
        if let Some(p) = known {
            self.departed(&[p]);
        }
    }

    /// Nodes that left the ring: out of `system.peers` (clients get REMOVED_NODE), their hints
    /// dropped, and forgotten by gossip after [`EVICT_DELAY`].
    pub(crate) fn departed(&self, gone: &[PeerInfo]) {
        for p in gone {
            let known = self.peers.lock().remove(&p.endpoint).is_some();
            self.evict.lock().entry(p.endpoint).or_insert_with(Instant::now);
            if !known {
                continue;
            }
            tracing::info!(endpoint = %p.endpoint, host_id = ?p.host_id, status = %p.status, "node left the ring");
            if let (Some(hints), Some(host)) = (self.coordinator.hints(), p.host_id) {
                match hints.store().truncate(Some(host)) {
                    Ok((files, bytes)) if files > 0 => {
                        tracing::info!(host = %host, files, bytes, "dropped the hints of a node that left the ring");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(host = %host, error = %e, "cannot drop the hints of a node that left the ring")
                    }
                }
            }
            self.hooks.peer_removed(p);
        }
    }

    fn handle(self: Arc<Self>, from: Endpoint, verb: Verb, payload: Bytes, responder: Responder) {
        match verb {
            verbs::GOSSIP_SYN | verbs::GOSSIP_ACK | verbs::GOSSIP_ACK2 => {
                let msg = match GossipMessage::decode(&payload) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(peer = %from, error = %e, "dropping a malformed gossip message");
                        return;
                    }
                };
                let (out, events) = {
                    let mut g = self.gossiper.lock();
                    let out = g.step(from, msg, self.now());
                    (out, g.drain_events())
                };
                self.send_gossip(out);
                self.handle_events(events);
            }
            verbs::MUTATION
            | verbs::HINT
            | verbs::READ
            | verbs::RANGE_READ
            | verbs::VALIDATION
            | verbs::BATCH_STORE
            | verbs::BATCH_REMOVE
            | verbs::STREAM_REQUEST
            | verbs::STREAM_DATA
            | verbs::SCHEMA_PUSH
            | verbs::SCHEMA_PULL => {
                let Ok(permit) = Arc::clone(&self.replica_slots).try_acquire_owned() else {
                    responder.fail(format!(
                        "{} is overloaded: {MAX_CONCURRENT_REPLICA_REQUESTS} replica requests in flight",
                        self.config.local
                    ));
                    return;
                };
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    match self.replica_work(from, verb, &payload) {
                        Ok(Some(answer)) => responder.respond(answer),
                        Ok(None) => {}
                        Err(reason) => {
                            tracing::debug!(peer = %from, verb = verbs::verb_name(verb), %reason, "replica request failed");
                            responder.fail(reason);
                        }
                    }
                });
            }
            other => {
                tracing::warn!(peer = %from, verb = other.0, "unknown verb");
                responder.fail(format!("unknown verb {}", other.0));
            }
        }
    }

    /// Runs a replica request on a blocking thread; `Ok(None)` for one-way messages.
    fn replica_work(&self, from: Endpoint, verb: Verb, payload: &[u8]) -> Result<Option<Bytes>, String> {
        let storage = self.coordinator.storage();
        match verb {
            verbs::MUTATION => {
                let m = verbs::decode_mutations(payload).map_err(|e| format!("bad mutation: {e}"))?;
                storage.apply(m).map_err(|e| e.to_string())?;
                Ok(Some(Bytes::new()))
            }
            verbs::HINT => {
                let m = verbs::decode_mutations(payload).map_err(|e| format!("bad hint: {e}"))?;
                match storage.apply(m) {
                    Ok(()) => {}
                    Err(sibyl_engine::Error::UnknownTable(_)) => {
                        // A table dropped since the hint was written: its hints can never apply
                        // and are dropped, as Cassandra does; the others apply one by one.
                        let m = verbs::decode_mutations(payload).map_err(|e| format!("bad hint: {e}"))?;
                        for one in m {
                            match storage.apply(vec![one]) {
                                Ok(()) | Err(sibyl_engine::Error::UnknownTable(_)) => {}
                                Err(e) => return Err(e.to_string()),
                            }
                        }
                    }
                    Err(e) => return Err(e.to_string()),
                }
                Ok(Some(Bytes::new()))
            }
            verbs::READ => {
                let req = ReadRequest::decode(payload).map_err(|e| format!("bad read: {e}"))?;
                let data = storage.read(&req.command).map_err(|e| e.to_string())?;
                let rsp = if req.digest_only {
                    ReadResponse::Digest(crate::resolver::digest(data.as_ref()))
                } else {
                    ReadResponse::Data(data)
                };
                Ok(Some(rsp.encode()))
            }
            verbs::RANGE_READ => {
                let cmd = verbs::decode_scan(payload).map_err(|e| format!("bad range read: {e}"))?;
                let parts = storage.scan(&cmd).map_err(|e| e.to_string())?;
                Ok(Some(verbs::encode_partitions(&parts)))
            }
            verbs::VALIDATION => {
                let req = crate::repair::validation::ValidationRequest::decode(payload)?;
                let tree = crate::repair::validation::build_tree(storage.as_ref(), &req)?;
                Ok(Some(Bytes::from(tree.encode())))
            }
            verbs::BATCH_STORE => {
                let batch = crate::batchlog::decode_store(payload)?;
                let log = self.coordinator.batchlog().ok_or("this node keeps no batchlog")?;
                log.store(&batch).map_err(|e| format!("cannot store batch {}: {e}", batch.id))?;
                Ok(Some(Bytes::new()))
            }
            verbs::BATCH_REMOVE => {
                let id = crate::batchlog::decode_remove(payload)?;
                if let Some(log) = self.coordinator.batchlog() {
                    log.remove(id);
                }
                Ok(None)
            }
            verbs::STREAM_REQUEST => {
                let request = crate::streaming::StreamRequest::decode(payload)?;
                self.stream_to(&request)?;
                Ok(Some(Bytes::new()))
            }
            verbs::STREAM_DATA => {
                crate::streaming::receive(&self.streams, storage.as_ref(), from, payload)?;
                Ok(Some(Bytes::new()))
            }
            verbs::SCHEMA_PUSH => {
                let m = verbs::decode_mutations(payload).map_err(|e| format!("bad schema push: {e}"))?;
                self.hooks.merge_schema(m)?;
                Ok(None)
            }
            verbs::SCHEMA_PULL => Ok(Some(verbs::encode_mutations(&self.hooks.schema_mutations()?))),
            _ => Err("unknown verb".into()),
        }
    }
}

/// Hint delivery through this node's view and messaging.
#[derive(Debug)]
struct Delivery {
    coordinator: std::sync::Weak<Coordinator>,
    messaging: MessagingService,
}

impl HintTarget for Delivery {
    fn endpoint_of(&self, host: Uuid) -> Option<(Endpoint, bool)> {
        let view = self.coordinator.upgrade()?.view();
        let ep = view.endpoint_of(host)?;
        Some((ep, view.live.contains(&ep)))
    }

    fn ring_size(&self) -> usize {
        self.coordinator.upgrade().map_or(1, |c| c.view().ring.endpoints().len())
    }

    fn deliver(&self, to: Endpoint, page: &[Mutation], timeout: Duration) -> Result<(), String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.messaging.send_request(
            to,
            verbs::HINT,
            verbs::encode_mutations(page),
            timeout,
            Box::new(move |r| {
                let _ = tx.send(r.map(|_| ()).map_err(|e| e.to_string()));
            }),
        );
        rx.recv_timeout(timeout + Duration::from_secs(1)).unwrap_or_else(|_| Err("no answer".into()))
    }
}

fn peer_row_differs(a: &PeerInfo, b: &PeerInfo) -> bool {
    a.host_id != b.host_id
        || a.location != b.location
        || a.rpc_address != b.rpc_address
        || a.native_port != b.native_port
        || a.tokens != b.tokens
        || a.schema_version != b.schema_version
        || a.release_version != b.release_version
        || a.status != b.status
}

fn set_state(g: &mut Gossiper, state: ApplicationState, value: String) {
    if let Err(e) = g.set_local_state(state, value) {
        tracing::error!(?state, error = %e, "cannot gossip a local state");
    }
}

/// Decides which nodes the connection layer says are down or back: a node becomes
/// unreachable after [`CONNECT_FAILURES_TO_MARK_DOWN`] failed connection attempts in a row, and
/// reachable again once an attempt succeeds. Returns (newly unreachable, reachable again).
///
/// Phi-accrual alone needs about 18 s of silence to convict a node at the default threshold;
/// a refused connection says at once that no process listens there, and a timed-out one that
/// this node cannot reach it, whatever gossip heard through others. Sibyl uses both (Cassandra
/// uses only the failure detector and speculative retry).
#[must_use]
pub fn connection_verdicts(
    unreachable: &HashSet<Endpoint>,
    failures: &HashMap<Endpoint, u32>,
) -> (Vec<Endpoint>, Vec<Endpoint>) {
    let mut down: Vec<Endpoint> = failures
        .iter()
        .filter(|(ep, n)| **n >= CONNECT_FAILURES_TO_MARK_DOWN && !unreachable.contains(ep))
        .map(|(ep, _)| *ep)
        .collect();
    let mut up: Vec<Endpoint> =
        unreachable.iter().filter(|ep| failures.get(ep).is_some_and(|n| *n == 0)).copied().collect();
    down.sort();
    up.sort();
    (down, up)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(i: u8) -> Endpoint {
        Endpoint(std::net::SocketAddr::from(([127, 0, 0, i], 7000)))
    }

    #[test]
    fn repeated_connection_failures_mark_down_and_a_success_marks_up() {
        let none = HashSet::new();
        let f = HashMap::from([(ep(1), 1), (ep(2), CONNECT_FAILURES_TO_MARK_DOWN), (ep(3), 0)]);
        assert_eq!(connection_verdicts(&none, &f), (vec![ep(2)], vec![]));
        let down = HashSet::from([ep(2)]);
        assert_eq!(connection_verdicts(&down, &f), (vec![], vec![]));
        let healed = HashMap::from([(ep(2), 0)]);
        assert_eq!(connection_verdicts(&down, &healed), (vec![], vec![ep(2)]));
        // No connection attempt yet: no verdict either way.
        assert_eq!(connection_verdicts(&down, &HashMap::new()), (vec![], vec![]));
    }
}
