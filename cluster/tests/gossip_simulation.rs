//! A seeded, deterministic simulation of five gossipers: virtual time, a simulated network with
//! latency, loss and partitions, nodes that stop and restart. No sockets, threads or real time.
//!
//! Every check runs [`SEEDS`] seeds and names the failing one; `SIBYL_SEED=<n>` reruns only it and
//! `SIBYL_SEED_COUNT=<n>` runs seeds 1..=n (the bounds below held for 2000 seeds; the observed
//! maxima are printed with `--nocapture`). Messages cross the network as bytes (encode, then decode
//! on delivery), so the codec is exercised on every hop.
//!
//! Where the bounds come from, with the threshold 8 and 1 s heartbeats: a silent node is convicted
//! `8 * ln 10 * mean ≈ 18.4-20 s` after the last heartbeat advance an observer saw, at its next tick
//! (up to 1 s later); that last advance reaches observers up to a few seconds after the node went
//! silent, and longer across a partition, where stale-but-newer heartbeats keep trickling between
//! nodes that have not talked to each other for a while.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sibyl_cluster::endpoint::Endpoint;
use sibyl_cluster::failure_detector::PHI_FACTOR;
use sibyl_cluster::gossip::{ApplicationState, GossipEvent, GossipMessage, Gossiper, GOSSIP_INTERVAL};

const NODES: usize = 5;
/// Nodes 0 and 1 are the seeds of everyone.
const SEED_NODES: [usize; 2] = [0, 1];
const SEEDS: u64 = 20;
const PHI_CONVICT_THRESHOLD: f64 = 8.0;
const CLUSTER: &str = "Sim Cluster";

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

fn endpoint(node: usize) -> Endpoint {
    Endpoint(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, node as u8 + 1)), 7000))
}

fn node_of(endpoint: Endpoint) -> usize {
    match endpoint.0.ip() {
        IpAddr::V4(ip) => usize::from(ip.octets()[3]) - 1,
        IpAddr::V6(_) => unreachable!("the simulation only uses IPv4"),
    }
}

/// How the simulated network behaves.
#[derive(Debug, Clone, Copy)]
struct Network {
    latency_min_ms: u64,
    latency_max_ms: u64,
    loss: f64,
}

const CALM: Network = Network { latency_min_ms: 1, latency_max_ms: 20, loss: 0.0 };
const JITTERY: Network = Network { latency_min_ms: 1, latency_max_ms: 50, loss: 0.01 };

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Tick { node: usize, incarnation: u64 },
    Deliver { from: usize, to: usize, bytes: Vec<u8> },
}

struct Node {
    gossiper: Option<Gossiper>,
    rng: StdRng,
    generation: i32,
    /// Bumped at every stop and restart, so ticks scheduled for an old incarnation are dropped.
    incarnation: u64,
    /// Every event the node's gossiper reported, with when.
    events: Vec<(Duration, GossipEvent)>,
}

struct Sim {
    now: Duration,
    network: Network,
    rng: StdRng,
    nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<(Duration, u64, Action)>>,
    sequence: u64,
    /// Partition side of each node; messages between different sides are lost.
    side: [u8; NODES],
    delivered: u64,
    /// Highest phi any node computed for a live peer at one of its ticks.
    max_live_phi: f64,
}

fn initial_states(node: usize, release: &str, schema: &str) -> Vec<(ApplicationState, String)> {
    let token = (node as i64 - 2) * (i64::MAX / 5);
    vec![
        (ApplicationState::Status, format!("NORMAL,{token}")),
        (ApplicationState::Tokens, token.to_string()),
        (ApplicationState::HostId, format!("00000000-0000-4000-8000-00000000000{node}")),
        (ApplicationState::Dc, "dc1".to_owned()),
        (ApplicationState::Rack, format!("rack{}", node % 2)),
        (ApplicationState::RpcAddress, endpoint(node).0.ip().to_string()),
        (ApplicationState::NativePort, "9042".to_owned()),
        (ApplicationState::Schema, schema.to_owned()),
        (ApplicationState::Load, "0".to_owned()),
        (ApplicationState::ReleaseVersion, release.to_owned()),
    ]
}

impl Sim {
    fn new(seed: u64, network: Network) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let nodes = (0..NODES)
            .map(|i| Node {
                gossiper: None,
                rng: StdRng::seed_from_u64(rng.random()),
                generation: 1_700_000_000 + i as i32,
                incarnation: 0,
                events: Vec::new(),
            })
            .collect();
        let mut sim = Sim {
            now: Duration::ZERO,
            network,
            rng,
            nodes,
            queue: BinaryHeap::new(),
            sequence: 0,
            side: [0; NODES],
            delivered: 0,
            max_live_phi: 0.0,
        };
        for node in 0..NODES {
            sim.start(node, "0.1.0", "schema-0");
        }
        sim
    }

    fn schedule(&mut self, at: Duration, action: Action) {
        self.sequence += 1;
        self.queue.push(Reverse((at, self.sequence, action)));
    }

    /// Starts (or restarts) a node with a fresh gossiper and its first tick within a second.
    fn start(&mut self, node: usize, release: &str, schema: &str) {
        let seeds = SEED_NODES.iter().map(|s| endpoint(*s)).collect();
        let n = &mut self.nodes[node];
        let mut gossiper = Gossiper::new(endpoint(node), CLUSTER, n.generation, seeds, PHI_CONVICT_THRESHOLD);
        for (state, value) in initial_states(node, release, schema) {
            gossiper.set_local_state(state, value).unwrap();
        }
        n.gossiper = Some(gossiper);
        n.incarnation += 1;
        let incarnation = n.incarnation;
        let offset = ms(self.rng.random_range(0..1000));
        self.schedule(self.now + offset, Action::Tick { node, incarnation });
    }

    fn stop(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.gossiper = None;
        n.incarnation += 1;
    }

    fn restart(&mut self, node: usize, release: &str, schema: &str) {
        self.nodes[node].generation += 1;
        self.start(node, release, schema);
    }

    fn running(&self, node: usize) -> bool {
        self.nodes[node].gossiper.is_some()
    }

    fn gossiper(&self, node: usize) -> &Gossiper {
        self.nodes[node].gossiper.as_ref().unwrap()
    }

    fn gossiper_mut(&mut self, node: usize) -> &mut Gossiper {
        self.nodes[node].gossiper.as_mut().unwrap()
    }

    fn partition(&mut self, minority: &[usize]) {
        self.side = [0; NODES];
        for node in minority {
            self.side[*node] = 1;
        }
    }

    fn heal(&mut self) {
        self.side = [0; NODES];
    }

    fn send(&mut self, from: usize, to: Endpoint, message: &GossipMessage) {
        if self.rng.random::<f64>() < self.network.loss {
            return;
        }
        let latency = ms(self.rng.random_range(self.network.latency_min_ms..=self.network.latency_max_ms));
        let bytes = message.to_bytes();
        self.schedule(self.now + latency, Action::Deliver { from, to: node_of(to), bytes });
    }

    fn collect_events(&mut self, node: usize) {
        let now = self.now;
        let n = &mut self.nodes[node];
        if let Some(gossiper) = n.gossiper.as_mut() {
            n.events.extend(gossiper.drain_events().into_iter().map(|event| (now, event)));
        }
    }

    /// Runs one action; false when nothing is left to do.
    fn step(&mut self) -> bool {
        let Some(Reverse((at, _, action))) = self.queue.pop() else {
            return false;
        };
        assert!(at >= self.now, "time went backwards");
        self.now = at;
        match action {
            Action::Tick { node, incarnation } => {
                if self.nodes[node].incarnation != incarnation || !self.running(node) {
                    return true;
                }
                let now = self.now;
                let n = &mut self.nodes[node];
                let gossiper = n.gossiper.as_mut().unwrap();
                let out = gossiper.tick(now, &mut n.rng);
                for peer in gossiper.live_endpoints() {
                    self.max_live_phi = self.max_live_phi.max(gossiper.phi(peer, now));
                }
                for (to, message) in out {
                    self.send(node, to, &message);
                }
                self.collect_events(node);
                self.schedule(now + GOSSIP_INTERVAL, Action::Tick { node, incarnation });
            }
            Action::Deliver { from, to, bytes } => {
                if !self.running(to) || self.side[from] != self.side[to] {
                    return true;
                }
                self.delivered += 1;
                let message = GossipMessage::decode(&bytes).expect("every message sent decodes");
                let now = self.now;
                let replies = self.gossiper_mut(to).step(endpoint(from), message, now);
                for (reply_to, reply) in replies {
                    self.send(to, reply_to, &reply);
                }
                self.collect_events(to);
            }
        }
        true
    }

    /// Runs until `done` holds (checked after every action) or `until`; returns when it held.
    fn run_until(&mut self, until: Duration, mut done: impl FnMut(&Sim) -> bool) -> Option<Duration> {
        if done(self) {
            return Some(self.now);
        }
        while self.queue.peek().is_some_and(|Reverse((at, _, _))| *at <= until) {
            self.step();
            if done(self) {
                return Some(self.now);
            }
        }
        self.now = self.now.max(until);
        None
    }

    fn run_to(&mut self, until: Duration) {
        let _ = self.run_until(until, |_| false);
    }

    /// Every running node knows every running node's generation and application states exactly
    /// (same values and versions) and sees it live.
    fn converged(&self) -> bool {
        let running: Vec<usize> = (0..NODES).filter(|n| self.running(*n)).collect();
        running.iter().all(|&i| {
            running.iter().all(|&j| {
                if i == j {
                    return true;
                }
                let theirs = self.gossiper(j).endpoint_state(endpoint(j)).unwrap();
                let seen = self.gossiper(i).endpoint_state(endpoint(j));
                self.gossiper(i).is_alive(endpoint(j))
                    && seen.is_some_and(|seen| {
                        seen.heartbeat.generation == theirs.heartbeat.generation
                            && seen.states == theirs.states
                    })
            })
        })
    }

    fn down_events(&self, observer: usize) -> impl Iterator<Item = (Duration, Endpoint, f64)> + '_ {
        self.nodes[observer].events.iter().filter_map(|(at, event)| match event {
            GossipEvent::Down { endpoint, phi } => Some((*at, *endpoint, *phi)),
            _ => None,
        })
    }
}

/// The seeds to run: `SIBYL_SEED` alone if set, else 1..=`SIBYL_SEED_COUNT` (default [`SEEDS`]).
fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("SIBYL_SEED") {
        return vec![seed.parse().expect("SIBYL_SEED must be a number")];
    }
    let count = std::env::var("SIBYL_SEED_COUNT")
        .map_or(SEEDS, |n| n.parse().expect("SIBYL_SEED_COUNT must be a number"));
    (1..=count).collect()
}

/// Runs `check` for every seed; panics naming the first failing seed. Returns each seed's
/// measurement.
fn for_each_seed(name: &str, mut check: impl FnMut(u64) -> Result<Duration, String>) -> Vec<Duration> {
    let mut measured = Vec::new();
    for seed in seeds() {
        eprintln!("{name}: seed {seed}");
        match check(seed) {
            Ok(value) => measured.push(value),
            Err(why) => panic!("{name}: seed {seed} failed: {why}\n  rerun with SIBYL_SEED={seed}"),
        }
    }
    let max = measured.iter().max().copied().unwrap_or_default();
    eprintln!("{name}: observed max {max:?} over {} seeds", measured.len());
    measured
}

/// Starts a cluster and lets it converge (itself a checked property).
fn converged_cluster(seed: u64, network: Network) -> Result<Sim, String> {
    let mut sim = Sim::new(seed, network);
    match sim.run_until(secs(10), Sim::converged) {
        Some(_) => Ok(sim),
        None => Err("the cluster did not converge within 10 s".to_owned()),
    }
}

fn no_down_events(sim: &Sim) -> Result<(), String> {
    for node in 0..NODES {
        if let Some((at, endpoint, phi)) = sim.down_events(node).next() {
            return Err(format!("node {node} convicted {endpoint} at {at:?} with phi {phi:.2}"));
        }
    }
    Ok(())
}

#[test]
fn gossip_converges_within_ten_seconds_of_start() {
    for_each_seed("converge", |seed| {
        let mut sim = Sim::new(seed, CALM);
        let at = sim.run_until(secs(10), Sim::converged).ok_or("not converged within 10 s")?;
        no_down_events(&sim)?;
        for node in 0..NODES {
            let joined =
                sim.nodes[node].events.iter().filter(|(_, e)| matches!(e, GossipEvent::Joined(_))).count();
            let up = sim.nodes[node].events.iter().filter(|(_, e)| matches!(e, GossipEvent::Up(_))).count();
            if joined != NODES - 1 || up != NODES - 1 {
                return Err(format!("node {node} saw {joined} joins and {up} ups"));
            }
        }
        Ok(at)
    });
}

#[test]
fn a_stopped_node_is_convicted_by_every_other_node_within_30_seconds() {
    let bound = secs(30);
    for_each_seed("stopped node convicted", |seed| {
        let mut sim = converged_cluster(seed, CALM)?;
        // Late enough that the detector has a few dozen intervals, not just its 2 s seed.
        let stop_at = secs(30) + ms(sim.rng.random_range(0..10_000));
        sim.run_to(stop_at);
        let victim = sim.rng.random_range(0..NODES);
        let stopped_at = sim.now;
        sim.stop(victim);
        let all_convicted = |sim: &Sim| {
            (0..NODES)
                .filter(|n| *n != victim)
                .all(|n| sim.down_events(n).any(|(_, e, _)| e == endpoint(victim)))
        };
        let at = sim
            .run_until(stopped_at + secs(60), all_convicted)
            .ok_or_else(|| format!("node {victim} not convicted by everyone within 60 s"))?;
        let took = at - stopped_at;
        if took > bound {
            return Err(format!("node {victim} convicted by everyone only after {took:?}"));
        }
        for observer in (0..NODES).filter(|n| *n != victim) {
            let downs: Vec<_> = sim.down_events(observer).collect();
            if downs.len() != 1 || downs[0].1 != endpoint(victim) {
                return Err(format!("node {observer} convicted {downs:?}, expected only node {victim}"));
            }
            // Conviction at the first tick after phi crossed the threshold.
            let (down_at, _, phi) = downs[0];
            let fd = sim.gossiper(observer).failure_detector();
            let last = fd.last_arrival(endpoint(victim)).unwrap();
            let mean = fd.mean_interval(endpoint(victim)).unwrap();
            let crossing = last + mean.mul_f64(PHI_CONVICT_THRESHOLD / PHI_FACTOR);
            if down_at < crossing
                || down_at > crossing + GOSSIP_INTERVAL + ms(1)
                || phi <= PHI_CONVICT_THRESHOLD
            {
                return Err(format!(
                    "node {observer}: down at {down_at:?} (phi {phi:.3}), threshold crossed at {crossing:?} \
                     (last heartbeat {last:?}, mean interval {mean:?})"
                ));
            }
        }
        Ok(took)
    });
}

#[test]
fn a_partitioned_node_is_convicted_on_both_sides_and_comes_back_up_after_heal() {
    let mut heal_times = Vec::new();
    for_each_seed("partition convicted", |seed| {
        let mut sim = converged_cluster(seed, CALM)?;
        let partition_at = secs(30) + ms(sim.rng.random_range(0..10_000));
        sim.run_to(partition_at);
        // One node, or two (which keep gossiping with each other), cut from the rest.
        let first = sim.rng.random_range(0..NODES);
        let mut minority = vec![first];
        if sim.rng.random_bool(0.5) {
            minority.push((first + 1 + sim.rng.random_range(0..NODES - 1)) % NODES);
        }
        let partitioned_at = sim.now;
        sim.partition(&minority);
        let cut = |a: usize, b: usize| minority.contains(&a) != minority.contains(&b);
        let both_sides_convicted = |sim: &Sim| {
            (0..NODES)
                .all(|a| (0..NODES).all(|b| cut(a, b) != sim.gossiper(a).is_alive(endpoint(b)) || a == b))
        };
        // 45 s, not 30: within each side, relayed stale heartbeats can restart an observer's clock
        // (observed up to 40 s over 2000 seeds).
        let at = sim
            .run_until(partitioned_at + secs(45), both_sides_convicted)
            .ok_or_else(|| format!("partition {minority:?} not convicted on both sides within 45 s"))?;
        sim.run_to(at + secs(5));
        let healed_at = sim.now;
        sim.heal();
        let up_at = sim
            .run_until(healed_at + secs(5), Sim::converged)
            .ok_or_else(|| format!("partition {minority:?} not back UP everywhere within 5 s of heal"))?;
        heal_times.push(up_at - healed_at);
        Ok(at - partitioned_at)
    });
    let max = heal_times.iter().max().copied().unwrap_or_default();
    eprintln!("partition healed: observed max {max:?} from heal to everyone UP");
}

#[test]
fn no_node_is_falsely_convicted_under_jitter_and_loss_over_ten_minutes() {
    for_each_seed("no false conviction", |seed| {
        let mut sim = converged_cluster(seed, JITTERY)?;
        sim.run_to(secs(600));
        no_down_events(&sim)?;
        if !sim.converged() {
            return Err("not converged after 10 minutes".to_owned());
        }
        eprintln!(
            "  {} messages delivered, highest phi of a live peer at a tick {:.2} (threshold {PHI_CONVICT_THRESHOLD})",
            sim.delivered, sim.max_live_phi
        );
        Ok(sim.now)
    });
}

#[test]
fn a_restarted_node_is_seen_with_its_new_generation_and_states_by_all() {
    for_each_seed("restart seen", |seed| {
        let mut sim = converged_cluster(seed, CALM)?;
        sim.run_to(secs(12));
        let node = sim.rng.random_range(0..NODES);
        sim.stop(node);
        // Down for 1 to 40 s: restarts before and after the others convict it.
        let downtime = ms(sim.rng.random_range(1000..40_000));
        sim.run_to(sim.now + downtime);
        let restarted_at = sim.now;
        let old_generation = sim.nodes[node].generation;
        sim.restart(node, "0.2.0", "schema-0");
        let at = sim
            .run_until(restarted_at + secs(10), Sim::converged)
            .ok_or_else(|| format!("node {node} restarted after {downtime:?} not seen by all within 10 s"))?;
        for observer in (0..NODES).filter(|n| *n != node) {
            let seen = sim.gossiper(observer).endpoint_state(endpoint(node)).unwrap();
            if seen.heartbeat.generation != old_generation + 1
                || seen.value(ApplicationState::ReleaseVersion) != Some("0.2.0")
            {
                return Err(format!("node {observer} sees {seen:?}"));
            }
            let restarted = sim.nodes[observer]
                .events
                .iter()
                .any(|(t, e)| *t >= restarted_at && *e == GossipEvent::Restarted(endpoint(node)));
            if !restarted {
                return Err(format!("node {observer} reported no restart of node {node}"));
            }
        }
        Ok(at - restarted_at)
    });
}

#[test]
fn a_schema_change_reaches_every_node_within_five_seconds() {
    for_each_seed("schema change", |seed| {
        let mut sim = converged_cluster(seed, CALM)?;
        let change_at = secs(12) + ms(sim.rng.random_range(0..1000));
        sim.run_to(change_at);
        let node = sim.rng.random_range(0..NODES);
        let changed_at = sim.now;
        sim.gossiper_mut(node).set_local_state(ApplicationState::Schema, "schema-1".to_owned()).unwrap();
        let everyone_has_it = |sim: &Sim| {
            (0..NODES).all(|n| {
                sim.gossiper(n).endpoint_state(endpoint(node)).unwrap().value(ApplicationState::Schema)
                    == Some("schema-1")
            })
        };
        let at = sim
            .run_until(changed_at + secs(5), everyone_has_it)
            .ok_or_else(|| format!("the schema change on node {node} did not reach everyone within 5 s"))?;
        for observer in (0..NODES).filter(|n| *n != node) {
            let changed = sim.nodes[observer].events.iter().any(|(_, e)| {
                *e == GossipEvent::StateChanged {
                    endpoint: endpoint(node),
                    state: ApplicationState::Schema,
                    value: "schema-1".to_owned(),
                }
            });
            if !changed {
                return Err(format!("node {observer} reported no schema change"));
            }
        }
        Ok(at - changed_at)
    });
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let run = |seed| {
        let mut sim = Sim::new(seed, JITTERY);
        sim.run_to(secs(30));
        let events: Vec<_> = sim.nodes.iter().map(|n| n.events.clone()).collect();
        (sim.delivered, events)
    };
    for seed in seeds().into_iter().take(3) {
        eprintln!("replay: seed {seed}");
        assert_eq!(run(seed), run(seed), "seed {seed}");
    }
}
