//! Cassandra's gossip as a pure state machine: who is in the cluster, what they announce, who is up.
//!
//! Each node holds an [`EndpointState`] per endpoint it knows (itself included) and spreads them
//! epidemically. The caller drives a [`Gossiper`] with two inputs and reads its outputs:
//! - [`Gossiper::tick`] every [`GOSSIP_INTERVAL`] (Cassandra's `GossipTask`): bump our heartbeat,
//!   send a SYN to a random live peer, maybe to an unreachable one, maybe to a seed, then convict
//!   with the failure detector whoever has been silent too long;
//! - [`Gossiper::step`] for each message received; it returns the messages to send back;
//! - [`Gossiper::drain_events`] for what changed (joins, UP/DOWN, state changes, restarts).
//!
//! Nothing here touches a socket, a clock or a thread: `now` is a monotonic [`Duration`] and the
//! randomness is the caller's `Rng`, so a seeded simulation replays any run exactly.
//!
//! # A round (Cassandra's three-way handshake)
//! 1. A → B `Syn`: digests `(endpoint, generation, max_version)` for every endpoint A knows,
//!    in random order, as Cassandra's `makeRandomGossipDigest` does.
//! 2. B examines each digest (Cassandra's `examineGossiper`), against its own state for it:
//!    - unknown to B, or B's generation is older: B requests everything, digest `(ep, gen, 0)`;
//!    - B's generation is newer: B sends its whole state for it;
//!    - same generation: B requests what is above its own max version, or sends what is above A's;
//!    - beyond Cassandra: B also sends the whole state of every endpoint A did not mention.
//!
//!    B → A `Ack { digests: requests, states: what B has newer }`.
//! 3. A applies the states, then A → B `Ack2` with the states above each requested version; B
//!    applies them.
//!
//! Why the extra rule: in Cassandra's rounds, a node learns of an endpoint only from the digests
//! of SYNs it *receives*; a node that talks only to seeds waits until some peer happens to pick it.
//! Cassandra covers that with a startup shadow round and the peers saved in `system.peers`. Here
//! the first exchange with any peer teaches the whole ring, at no cost once everyone knows
//! everyone (the digests then list every endpoint). It also makes an empty SYN (Cassandra's shadow
//! round request) get every state we know.
//!
//! # Applying a remote state
//! - Our own endpoint is never overwritten by gossip.
//! - Unknown endpoint: adopt the state ([`GossipEvent::Joined`] and a
//!   [`GossipEvent::StateChanged`] per application state) and report it to the failure detector.
//! - Newer generation: the node restarted; its state is replaced entirely
//!   ([`GossipEvent::Restarted`], then `StateChanged` for every state, as Cassandra's `onJoin`).
//! - Same generation: keep, per application state and for the heartbeat, the higher version.
//! - Older generation: ignored.
//!
//! The failure detector hears of an endpoint whenever its heartbeat advances: a higher heartbeat
//! version in the generation we hold, or a newer generation (a node that restarts while DOWN has
//! its interval history cleared first, as Cassandra does).
//!
//! # UP and DOWN
//! Every known endpoint other than ourselves is either live or unreachable. Conviction by the
//! failure detector during a tick moves a live endpoint to unreachable ([`GossipEvent::Down`]).
//! An unreachable endpoint comes UP ([`GossipEvent::Up`]) when we see its heartbeat advance.
//! Cassandra instead marks alive after an ECHO round trip to the node; a heartbeat that advanced
//! since we last looked proves the same thing (the node ran recently) without another verb. For
//! the same reason an endpoint we *just learned of* starts unreachable and comes UP on its next
//! advance: a third party's old state for a dead node must not make it look alive.
//!
//! # What we leave out (for now)
//! Cassandra's fat-client and dead-state expiry, the generation sanity check against wall-clock
//! time, shutdown announcements and the partitioner check: they need ring state or a wall clock
//! and belong to the layers above.

mod messages;
mod state;

pub use messages::{
    GossipDigest, GossipMessage, MAX_APPLICATION_STATES, MAX_CLUSTER_NAME_BYTES, MAX_ENDPOINTS,
    MAX_VALUE_BYTES,
};
pub use state::{ApplicationState, EndpointState, HeartbeatState, VersionGenerator, VersionedValue};

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

use crate::endpoint::Endpoint;
use crate::failure_detector::FailureDetector;

/// How often the caller should call [`Gossiper::tick`] (Cassandra's `intervalInMillis`).
pub const GOSSIP_INTERVAL: Duration = Duration::from_millis(1000);

/// How long gossip about a removed endpoint is ignored, so peers that have not heard of the
/// removal cannot bring it back (Cassandra's `QUARANTINE_DELAY`, twice the 30 s `RING_DELAY`).
pub const QUARANTINE_DELAY: Duration = Duration::from_secs(60);

/// Most events kept until [`Gossiper::drain_events`]; older ones are dropped and counted.
pub const MAX_PENDING_EVENTS: usize = 10_000;

/// What the caller did wrong when asking gossip to do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GossipError {
    /// The value would not fit in a gossip message: announce something smaller.
    #[error("{state:?} value of {len_bytes} bytes exceeds the gossip limit of {max_bytes} bytes")]
    ValueTooLarge {
        /// The state being set.
        state: ApplicationState,
        /// Its size.
        len_bytes: usize,
        /// [`MAX_VALUE_BYTES`].
        max_bytes: usize,
    },
}

/// Something the layers above may need to act on.
#[derive(Debug, Clone, PartialEq)]
pub enum GossipEvent {
    /// We learned of an endpoint for the first time (it starts unreachable until it heartbeats).
    Joined(Endpoint),
    /// An unreachable endpoint's heartbeat advanced: it is live again.
    Up(Endpoint),
    /// The failure detector convicted a live endpoint.
    Down {
        /// The endpoint.
        endpoint: Endpoint,
        /// Its phi when convicted.
        phi: f64,
    },
    /// A remote endpoint's application state changed (also sent for every state at join and
    /// restart).
    StateChanged {
        /// The endpoint.
        endpoint: Endpoint,
        /// Which state.
        state: ApplicationState,
        /// Its new value.
        value: String,
    },
    /// A known endpoint came back with a newer generation; its old state was replaced.
    Restarted(Endpoint),
}

/// One node's gossip state machine.
#[derive(Debug)]
pub struct Gossiper {
    local: Endpoint,
    cluster_name: String,
    /// Seed endpoints other than ourselves.
    seeds: BTreeSet<Endpoint>,
    endpoint_states: BTreeMap<Endpoint, EndpointState>,
    /// Known endpoints we believe up (never ourselves).
    live: BTreeSet<Endpoint>,
    /// Known endpoints we believe down, with when they went (or were learned) down.
    unreachable: BTreeMap<Endpoint, Duration>,
    /// Removed endpoints and until when gossip about them is ignored.
    quarantined: BTreeMap<Endpoint, Duration>,
    detector: FailureDetector,
    versions: VersionGenerator,
    events: VecDeque<GossipEvent>,
    dropped_events: u64,
    /// Per peer, the highest version of *our* state its gossip showed it has (from the digests
    /// it sends us): what it has certainly seen of our announcements.
    seen_by: BTreeMap<Endpoint, i32>,
}

impl Gossiper {
    /// A gossiper for `local` in cluster `cluster_name`, started at `generation` (normally the
    /// start time in seconds; it must grow across restarts), contacting `seeds` to join.
    ///
    /// # Panics
    /// If `cluster_name` is longer than [`MAX_CLUSTER_NAME_BYTES`] or `phi_convict_threshold` is
    /// not positive (configuration checks these first).
    #[must_use]
    pub fn new(
        local: Endpoint,
        cluster_name: impl Into<String>,
        generation: i32,
        seeds: Vec<Endpoint>,
        phi_convict_threshold: f64,
    ) -> Gossiper {
        let cluster_name = cluster_name.into();
        assert!(
            cluster_name.len() <= MAX_CLUSTER_NAME_BYTES,
            "cluster name longer than {MAX_CLUSTER_NAME_BYTES} bytes"
        );
        let mut endpoint_states = BTreeMap::new();
        endpoint_states.insert(local, EndpointState::new(HeartbeatState { generation, version: 0 }));
        Gossiper {
            local,
            cluster_name,
            seeds: seeds.into_iter().filter(|seed| *seed != local).collect(),
            endpoint_states,
            live: BTreeSet::new(),
            unreachable: BTreeMap::new(),
            quarantined: BTreeMap::new(),
            detector: FailureDetector::new(phi_convict_threshold),
            versions: VersionGenerator::new(),
            events: VecDeque::new(),
            dropped_events: 0,
            seen_by: BTreeMap::new(),
        }
    }

    /// Our endpoint.
    #[must_use]
    pub fn local(&self) -> Endpoint {
        self.local
    }

    /// Our cluster name.
    #[must_use]
    pub fn cluster_name(&self) -> &str {
        &self.cluster_name
    }

    /// The seeds we may contact (ourselves excluded).
    #[must_use]
    pub fn seeds(&self) -> Vec<Endpoint> {
        self.seeds.iter().copied().collect()
    }

    /// Announces a new value for one of our application states; it takes the next version.
    pub fn set_local_state(&mut self, state: ApplicationState, value: String) -> Result<(), GossipError> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(GossipError::ValueTooLarge {
                state,
                len_bytes: value.len(),
                max_bytes: MAX_VALUE_BYTES,
            });
        }
        let version = self.versions.next_version();
        self.local_state_mut().states.insert(state, VersionedValue { value, version });
        Ok(())
    }

    fn local_state_mut(&mut self) -> &mut EndpointState {
        match self.endpoint_states.get_mut(&self.local) {
            Some(state) => state,
            None => unreachable!("the local endpoint state is created in new() and never removed"),
        }
    }

    /// One gossip round (Cassandra's `GossipTask`), to be called every [`GOSSIP_INTERVAL`]:
    /// returns the SYNs to send.
    pub fn tick(&mut self, now: Duration, rng: &mut impl Rng) -> Vec<(Endpoint, GossipMessage)> {
        let version = self.versions.next_version();
        self.local_state_mut().heartbeat.version = version;

        let mut digests: Vec<GossipDigest> = self
            .endpoint_states
            .iter()
            .map(|(endpoint, state)| GossipDigest {
                endpoint: *endpoint,
                generation: state.heartbeat.generation,
                max_version: state.max_version(),
            })
            .collect();
        digests.shuffle(rng);
        let syn = GossipMessage::Syn { cluster_name: self.cluster_name.clone(), digests };

        let mut out = Vec::new();
        // To a random live member.
        let live: Vec<Endpoint> = self.live.iter().copied().collect();
        let mut gossiped_to_seed = false;
        if let Some(to) = live.choose(rng) {
            gossiped_to_seed = self.seeds.contains(to);
            out.push((*to, syn.clone()));
        }
        // To an unreachable member, with probability unreachable / (live + 1), to see if it is back.
        if !self.unreachable.is_empty() {
            let probability = self.unreachable.len() as f64 / (self.live.len() as f64 + 1.0);
            if rng.random::<f64>() < probability {
                let unreachable: Vec<Endpoint> = self.unreachable.keys().copied().collect();
                if let Some(to) = unreachable.choose(rng) {
                    out.push((*to, syn.clone()));
                }
            }
        }
        // To a seed if the live member was not one, or we see fewer live members than seeds:
        // keeps groups of nodes from gossiping only among themselves (CASSANDRA-150).
        if (!gossiped_to_seed || self.live.len() < self.seeds.len()) && !self.seeds.is_empty() {
            let seeds: Vec<Endpoint> = self.seeds.iter().copied().collect();
            let send = if self.live.is_empty() {
                true
            } else {
                let probability = seeds.len() as f64 / (self.live.len() + self.unreachable.len()) as f64;
                rng.random::<f64>() <= probability
            };
            if send {
                if let Some(to) = seeds.choose(rng) {
                    out.push((*to, syn));
                }
            }
        }

        self.status_check(now);
        out
    }

    /// Convicts silent live endpoints and ends expired quarantines (Cassandra's `doStatusCheck`).
    fn status_check(&mut self, now: Duration) {
        let endpoints: Vec<Endpoint> =
            self.endpoint_states.keys().copied().filter(|endpoint| *endpoint != self.local).collect();
        for endpoint in endpoints {
            if self.detector.interpret(endpoint, now) && self.live.contains(&endpoint) {
                let phi = self.detector.phi(endpoint, now);
                self.mark_dead(endpoint, phi, now);
            }
        }
        self.quarantined.retain(|_, until| *until > now);
    }

    /// Handles a message from `from`; returns the replies.
    pub fn step(
        &mut self,
        from: Endpoint,
        message: GossipMessage,
        now: Duration,
    ) -> Vec<(Endpoint, GossipMessage)> {
        match message {
            GossipMessage::Syn { cluster_name, digests } => {
                if cluster_name != self.cluster_name {
                    tracing::warn!(
                        %from,
                        their_cluster = %cluster_name,
                        our_cluster = %self.cluster_name,
                        "ignoring gossip from another cluster"
                    );
                    return Vec::new();
                }
                self.note_seen(from, &digests);
                vec![(from, self.examine(&digests))]
            }
            GossipMessage::Ack { digests, states } => {
                self.note_seen(from, &digests);
                self.apply_states(states, now);
                let states = digests
                    .iter()
                    .filter_map(|digest| {
                        let state = self.endpoint_states.get(&digest.endpoint)?;
                        Some((digest.endpoint, state.newer_than(digest.max_version)?))
                    })
                    .collect();
                vec![(from, GossipMessage::Ack2 { states })]
            }
            GossipMessage::Ack2 { states } => {
                self.apply_states(states, now);
                Vec::new()
            }
        }
    }

    /// Records how much of our state `from` has, from its digests of our endpoint (a SYN's
    /// digest, or an ACK's request "everything above v", which says it has v).
    fn note_seen(&mut self, from: Endpoint, digests: &[GossipDigest]) {
        let generation = self.local_state_mut().heartbeat.generation;
        let seen = digests
            .iter()
            .filter(|d| d.endpoint == self.local && d.generation == generation)
            .map(|d| d.max_version)
            .max();
        if let Some(version) = seen {
            let entry = self.seen_by.entry(from).or_insert(version);
            *entry = (*entry).max(version);
        }
    }

    /// The version of our application state `state` (`None` if never set).
    #[must_use]
    pub fn local_version(&self, state: ApplicationState) -> Option<i32> {
        self.endpoint_states.get(&self.local).and_then(|s| s.states.get(&state)).map(|v| v.version)
    }

    /// Whether `peer`'s gossip has shown that it holds our state up to `version` (so it has
    /// seen an announcement made at that version).
    #[must_use]
    pub fn has_seen(&self, peer: Endpoint, version: i32) -> bool {
        self.seen_by.get(&peer).is_some_and(|v| *v >= version)
    }

    /// Cassandra's `examineGossiper`, plus the endpoints the SYN did not mention (module docs).
    fn examine(&self, digests: &[GossipDigest]) -> GossipMessage {
        let mut requests = Vec::new();
        let mut states = Vec::new();
        // Each endpoint is answered once, so the ACK's lists stay within MAX_ENDPOINTS even when a
        // SYN repeats a digest.
        let mut mentioned = BTreeSet::new();
        for digest in digests {
            if !mentioned.insert(digest.endpoint) {
                continue;
            }
            let Some(local) = self.endpoint_states.get(&digest.endpoint) else {
                requests.push(GossipDigest { max_version: 0, ..*digest });
                continue;
            };
            let local_generation = local.heartbeat.generation;
            let local_max = local.max_version();
            if digest.generation > local_generation {
                requests.push(GossipDigest { max_version: 0, ..*digest });
            } else if digest.generation < local_generation {
                states.push((digest.endpoint, local.clone()));
            } else if digest.max_version > local_max {
                requests.push(GossipDigest { max_version: local_max, ..*digest });
            } else if digest.max_version < local_max {
                if let Some(newer) = local.newer_than(digest.max_version) {
                    states.push((digest.endpoint, newer));
                }
            }
        }
        // Beyond Cassandra: whatever the SYN did not mention, its sender has never heard of.
        for (endpoint, state) in &self.endpoint_states {
            if !mentioned.contains(endpoint) {
                states.push((*endpoint, state.clone()));
            }
        }
        assert!(requests.len() <= MAX_ENDPOINTS && states.len() <= MAX_ENDPOINTS);
        GossipMessage::Ack { digests: requests, states }
    }

    fn apply_states(&mut self, states: Vec<(Endpoint, EndpointState)>, now: Duration) {
        for (endpoint, remote) in states {
            self.apply_state(endpoint, remote, now);
        }
    }

    /// Cassandra's `applyStateLocally` with `notifyFailureDetector` (see the module docs).
    fn apply_state(&mut self, endpoint: Endpoint, remote: EndpointState, now: Duration) {
        if endpoint == self.local {
            return;
        }
        if self.quarantined.get(&endpoint).is_some_and(|until| *until > now) {
            tracing::trace!(%endpoint, "ignoring gossip about a quarantined endpoint");
            return;
        }
        let Some(local) = self.endpoint_states.get_mut(&endpoint) else {
            self.join(endpoint, remote, now);
            return;
        };
        let local_generation = local.heartbeat.generation;
        let remote_generation = remote.heartbeat.generation;
        if remote_generation > local_generation {
            self.restart(endpoint, remote, now);
            return;
        }
        if remote_generation < local_generation {
            tracing::trace!(%endpoint, local_generation, remote_generation, "ignoring an older generation");
            return;
        }
        let mut changed = Vec::new();
        for (state, value) in remote.states {
            let newer = local.states.get(&state).is_none_or(|current| value.version > current.version);
            if newer {
                changed.push(GossipEvent::StateChanged { endpoint, state, value: value.value.clone() });
                local.states.insert(state, value);
            }
        }
        let heartbeat_advanced = remote.heartbeat.version > local.heartbeat.version;
        if heartbeat_advanced {
            local.heartbeat = remote.heartbeat;
        }
        for event in changed {
            self.push_event(event);
        }
        if heartbeat_advanced {
            let phi = self.detector.phi(endpoint, now);
            self.detector.report(endpoint, now);
            if !self.live.contains(&endpoint) {
                self.mark_alive(endpoint, phi);
            }
        }
    }

    fn join(&mut self, endpoint: Endpoint, remote: EndpointState, now: Duration) {
        if self.endpoint_states.len() >= MAX_ENDPOINTS {
            tracing::warn!(%endpoint, limit = MAX_ENDPOINTS, "ignoring a new endpoint: too many endpoints");
            return;
        }
        tracing::info!(%endpoint, generation = remote.heartbeat.generation, "endpoint is now part of the cluster");
        self.detector.report(endpoint, now);
        self.push_event(GossipEvent::Joined(endpoint));
        self.push_state_events(endpoint, &remote);
        self.endpoint_states.insert(endpoint, remote);
        self.unreachable.insert(endpoint, now);
    }

    fn restart(&mut self, endpoint: Endpoint, remote: EndpointState, now: Duration) {
        let was_alive = self.live.contains(&endpoint);
        tracing::info!(%endpoint, generation = remote.heartbeat.generation, was_alive, "endpoint has restarted");
        let phi = self.detector.phi(endpoint, now);
        if !was_alive {
            // Relearn its intervals: the old ones describe the previous incarnation.
            self.detector.remove(endpoint);
        }
        self.detector.report(endpoint, now);
        self.push_event(GossipEvent::Restarted(endpoint));
        self.push_state_events(endpoint, &remote);
        self.endpoint_states.insert(endpoint, remote);
        if !was_alive {
            self.mark_alive(endpoint, phi);
        }
    }

    fn push_state_events(&mut self, endpoint: Endpoint, state: &EndpointState) {
        for (app, value) in &state.states {
            self.push_event(GossipEvent::StateChanged { endpoint, state: *app, value: value.value.clone() });
        }
    }

    fn mark_alive(&mut self, endpoint: Endpoint, phi: f64) {
        tracing::info!(
            %endpoint,
            phi,
            phi_convict_threshold = self.detector.phi_convict_threshold(),
            "endpoint is now UP"
        );
        self.unreachable.remove(&endpoint);
        self.live.insert(endpoint);
        self.push_event(GossipEvent::Up(endpoint));
    }

    fn mark_dead(&mut self, endpoint: Endpoint, phi: f64, now: Duration) {
        tracing::info!(
            %endpoint,
            phi,
            phi_convict_threshold = self.detector.phi_convict_threshold(),
            "endpoint is now DOWN"
        );
        self.live.remove(&endpoint);
        self.unreachable.insert(endpoint, now);
        self.push_event(GossipEvent::Down { endpoint, phi });
    }

    fn push_event(&mut self, event: GossipEvent) {
        if self.events.len() == MAX_PENDING_EVENTS {
            self.events.pop_front();
            self.dropped_events += 1;
        }
        self.events.push_back(event);
        assert!(self.events.len() <= MAX_PENDING_EVENTS);
    }

    /// Takes the events since the last call, oldest first.
    pub fn drain_events(&mut self) -> Vec<GossipEvent> {
        self.events.drain(..).collect()
    }

    /// How many events were dropped because nobody drained them (see [`MAX_PENDING_EVENTS`]).
    #[must_use]
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// Forgets `endpoint` (it left the ring) and ignores gossip about it for
    /// [`QUARANTINE_DELAY`], so peers that still know it cannot bring it back. Removing ourselves
    /// does nothing.
    pub fn remove_endpoint(&mut self, endpoint: Endpoint, now: Duration) {
        if endpoint == self.local {
            tracing::warn!(%endpoint, "refusing to remove the local endpoint from gossip");
            return;
        }
        tracing::info!(%endpoint, "removing endpoint from gossip");
        self.endpoint_states.remove(&endpoint);
        self.live.remove(&endpoint);
        self.unreachable.remove(&endpoint);
        self.seeds.remove(&endpoint);
        self.detector.remove(endpoint);
        self.quarantined.insert(endpoint, now + QUARANTINE_DELAY);
    }

    /// Sets an application state of *another* endpoint, as the node running a removenode does
    /// for the dead node it removes (Cassandra's `advertiseRemoving`). The value takes a
    /// version above every version of that endpoint's state, within its generation, so every
    /// node adopts it through normal gossip; the heartbeat is untouched, so nobody thinks the
    /// endpoint came back. Returns false (and does nothing) for ourselves or an unknown endpoint.
    pub fn set_remote_state(&mut self, endpoint: Endpoint, state: ApplicationState, value: String) -> bool {
        if endpoint == self.local || value.len() > MAX_VALUE_BYTES {
            return false;
        }
        let Some(remote) = self.endpoint_states.get_mut(&endpoint) else { return false };
        let version = remote.max_version().saturating_add(1);
        remote.states.insert(state, VersionedValue { value: value.clone(), version });
        self.push_event(GossipEvent::StateChanged { endpoint, state, value });
        true
    }

    /// What we know of `endpoint`.
    #[must_use]
    pub fn endpoint_state(&self, endpoint: Endpoint) -> Option<&EndpointState> {
        self.endpoint_states.get(&endpoint)
    }

    /// Every endpoint we know, ourselves included, in address order.
    #[must_use]
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.endpoint_states.keys().copied().collect()
    }

    /// Endpoints we believe up, ourselves excluded (Cassandra's `liveEndpoints`).
    #[must_use]
    pub fn live_endpoints(&self) -> Vec<Endpoint> {
        self.live.iter().copied().collect()
    }

    /// Endpoints we know but believe down.
    #[must_use]
    pub fn unreachable_endpoints(&self) -> Vec<Endpoint> {
        self.unreachable.keys().copied().collect()
    }

    /// Whether `endpoint` is up as far as we know; we are always up to ourselves.
    #[must_use]
    pub fn is_alive(&self, endpoint: Endpoint) -> bool {
        endpoint == self.local || self.live.contains(&endpoint)
    }

    /// How long `endpoint` has been unreachable at `now` (`None` if live or unknown).
    #[must_use]
    pub fn downtime(&self, endpoint: Endpoint, now: Duration) -> Option<Duration> {
        self.unreachable.get(&endpoint).map(|since| now.saturating_sub(*since))
    }

    /// The failure detector's phi for `endpoint` at `now` (0 if never heard of).
    #[must_use]
    pub fn phi(&self, endpoint: Endpoint, now: Duration) -> f64 {
        self.detector.phi(endpoint, now)
    }

    /// The failure detector, for status tools and tests.
    #[must_use]
    pub fn failure_detector(&self) -> &FailureDetector {
        &self.detector
    }
}

#[cfg(test)]
mod tests;
