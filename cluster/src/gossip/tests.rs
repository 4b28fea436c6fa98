//! Unit tests of the gossiper, driven by hand, message by message.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn ep(n: u8) -> Endpoint {
    Endpoint(format!("127.0.0.{n}:7000").parse().unwrap())
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn state(generation: i32, heartbeat: i32, apps: &[(ApplicationState, &str, i32)]) -> EndpointState {
    let mut state = EndpointState::new(HeartbeatState { generation, version: heartbeat });
    for (app, value, version) in apps {
        state.states.insert(*app, VersionedValue { value: (*value).to_owned(), version: *version });
    }
    state
}

fn gossiper(n: u8, seeds: &[u8]) -> Gossiper {
    Gossiper::new(ep(n), "Test Cluster", 100, seeds.iter().map(|s| ep(*s)).collect(), 8.0)
}

/// Delivers `ack2` states to `g` as if from `from`.
fn feed(g: &mut Gossiper, states: Vec<(Endpoint, EndpointState)>, now: Duration) {
    let replies = g.step(ep(99), GossipMessage::Ack2 { states }, now);
    assert!(replies.is_empty());
}

/// Runs messages between the gossipers in `nodes` (indexed by last address byte - 1) until none
/// are left.
fn deliver_all(nodes: &mut [Gossiper], mut pending: Vec<(Endpoint, Endpoint, GossipMessage)>, now: Duration) {
    while let Some((from, to, message)) = pending.pop() {
        let index = nodes.iter().position(|g| g.local() == to).unwrap();
        let bytes = message.to_bytes();
        let message = GossipMessage::decode(&bytes).unwrap();
        for (next_to, reply) in nodes[index].step(from, message, now) {
            pending.push((to, next_to, reply));
        }
    }
}

fn tick_all(nodes: &mut [Gossiper], now: Duration, rng: &mut StdRng) {
    for i in 0..nodes.len() {
        let from = nodes[i].local();
        let out = nodes[i].tick(now, rng);
        let pending = out.into_iter().map(|(to, m)| (from, to, m)).collect();
        deliver_all(nodes, pending, now);
    }
}

#[test]
fn two_nodes_learn_each_other_through_the_seed_and_come_up_on_the_next_heartbeat() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut nodes = vec![gossiper(1, &[1]), gossiper(2, &[1])];
    nodes[0].set_local_state(ApplicationState::Dc, "dc1".into()).unwrap();
    nodes[1].set_local_state(ApplicationState::Rack, "r2".into()).unwrap();
    tick_all(&mut nodes, secs(1), &mut rng);
    // Both now know each other, but nobody is up until a heartbeat advances.
    assert_eq!(nodes[0].endpoints(), vec![ep(1), ep(2)]);
    assert_eq!(nodes[0].unreachable_endpoints(), vec![ep(2)]);
    let events = nodes[0].drain_events();
    assert_eq!(
        events,
        vec![
            GossipEvent::Joined(ep(2)),
            GossipEvent::StateChanged { endpoint: ep(2), state: ApplicationState::Rack, value: "r2".into() },
        ]
    );
    tick_all(&mut nodes, secs(2), &mut rng);
    tick_all(&mut nodes, secs(3), &mut rng);
    for g in &nodes {
        assert_eq!(g.live_endpoints().len(), 1, "{:?}", g.local());
        assert!(g.unreachable_endpoints().is_empty());
    }
    assert_eq!(nodes[0].drain_events(), vec![GossipEvent::Up(ep(2))]);
    assert_eq!(nodes[1].endpoint_state(ep(1)).unwrap().value(ApplicationState::Dc), Some("dc1"));
    assert_eq!(nodes[0].endpoint_state(ep(2)).unwrap().value(ApplicationState::Rack), Some("r2"));
    assert_eq!(nodes[0].endpoint_state(ep(2)), nodes[1].endpoint_state(ep(2)));
}

#[test]
fn heartbeats_and_local_states_share_one_version_counter() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut g = gossiper(1, &[]);
    g.set_local_state(ApplicationState::Status, "NORMAL,1".into()).unwrap();
    let _ = g.tick(secs(1), &mut rng);
    g.set_local_state(ApplicationState::Schema, "s1".into()).unwrap();
    let _ = g.tick(secs(2), &mut rng);
    let local = g.endpoint_state(ep(1)).unwrap();
    assert_eq!(local.states[&ApplicationState::Status].version, 1);
    assert_eq!(local.states[&ApplicationState::Schema].version, 3);
    assert_eq!(local.heartbeat.version, 4);
    assert_eq!(local.max_version(), 4);
}

#[test]
fn oversized_local_values_are_refused() {
    let mut g = gossiper(1, &[]);
    let err = g.set_local_state(ApplicationState::Tokens, "x".repeat(MAX_VALUE_BYTES + 1)).unwrap_err();
    assert!(matches!(err, GossipError::ValueTooLarge { len_bytes, .. } if len_bytes == MAX_VALUE_BYTES + 1));
    g.set_local_state(ApplicationState::Tokens, "x".repeat(MAX_VALUE_BYTES)).unwrap();
}

#[test]
fn a_syn_from_another_cluster_is_ignored() {
    let mut g = gossiper(1, &[]);
    let syn = GossipMessage::Syn {
        cluster_name: "Other".into(),
        digests: vec![GossipDigest { endpoint: ep(2), generation: 1, max_version: 5 }],
    };
    assert!(g.step(ep(2), syn, secs(1)).is_empty());
    assert_eq!(g.endpoints(), vec![ep(1)]);
}

#[test]
fn examine_follows_cassandras_rules_for_generations_and_versions() {
    let mut g = gossiper(1, &[]);
    let s = ApplicationState::Schema;
    feed(
        &mut g,
        vec![
            (ep(2), state(10, 5, &[(s, "a", 3)])),
            (ep(3), state(10, 5, &[(s, "a", 3)])),
            (ep(4), state(10, 5, &[(s, "a", 3)])),
            (ep(5), state(10, 5, &[(s, "a", 3)])),
            (ep(6), state(10, 5, &[(s, "a", 3)])),
        ],
        secs(1),
    );
    let digest =
        |n: u8, generation: i32, max_version: i32| GossipDigest { endpoint: ep(n), generation, max_version };
    let syn = GossipMessage::Syn {
        cluster_name: "Test Cluster".into(),
        digests: vec![
            digest(2, 10, 5), // same: nothing
            digest(3, 11, 1), // newer generation there: request everything
            digest(4, 9, 50), // older generation there: send everything
            digest(5, 10, 9), // newer version there: request above our 5
            digest(6, 10, 4), // older version there: send above 4 (the heartbeat)
            digest(7, 1, 1),  // unknown here: request everything
                              // ep(1), ourselves, not mentioned: sent in full
        ],
    };
    let replies = g.step(ep(2), syn, secs(1));
    let [(to, GossipMessage::Ack { digests, states })] = replies.as_slice() else {
        panic!("expected one ack, got {replies:?}");
    };
    assert_eq!(*to, ep(2));
    assert_eq!(digests, &vec![digest(3, 11, 0), digest(5, 10, 5), digest(7, 1, 0)]);
    // Then, beyond Cassandra, the endpoints the SYN did not mention: ourselves here.
    assert_eq!(
        states,
        &vec![(ep(4), state(10, 5, &[(s, "a", 3)])), (ep(6), state(10, 5, &[])), (ep(1), state(100, 0, &[])),]
    );
}

#[test]
fn a_repeated_digest_is_answered_once() {
    let mut g = gossiper(1, &[]);
    feed(&mut g, vec![(ep(2), state(10, 5, &[]))], secs(1));
    let old = GossipDigest { endpoint: ep(2), generation: 10, max_version: 1 };
    let unknown = GossipDigest { endpoint: ep(3), generation: 1, max_version: 1 };
    let syn =
        GossipMessage::Syn { cluster_name: "Test Cluster".into(), digests: vec![old, unknown, old, unknown] };
    let replies = g.step(ep(2), syn, secs(1));
    let [(_, GossipMessage::Ack { digests, states })] = replies.as_slice() else { panic!("{replies:?}") };
    assert_eq!(digests.len(), 1);
    assert_eq!(states.iter().map(|(e, _)| *e).collect::<Vec<_>>(), vec![ep(2), ep(1)]);
}

#[test]
fn an_ack_is_applied_and_answered_with_the_requested_states() {
    let mut g = gossiper(1, &[]);
    g.set_local_state(ApplicationState::Load, "10".into()).unwrap(); // version 1
    g.set_local_state(ApplicationState::Schema, "s".into()).unwrap(); // version 2
    let ack = GossipMessage::Ack {
        digests: vec![
            GossipDigest { endpoint: ep(1), generation: 100, max_version: 1 },
            GossipDigest { endpoint: ep(8), generation: 1, max_version: 0 }, // unknown: skipped
        ],
        states: vec![(ep(2), state(3, 1, &[(ApplicationState::Dc, "dc2", 1)]))],
    };
    let replies = g.step(ep(2), ack, secs(1));
    let expected = state(100, 0, &[(ApplicationState::Schema, "s", 2)]);
    assert_eq!(replies, vec![(ep(2), GossipMessage::Ack2 { states: vec![(ep(1), expected)] })]);
    assert_eq!(g.endpoint_state(ep(2)).unwrap().value(ApplicationState::Dc), Some("dc2"));
}

#[test]
fn an_empty_syn_is_a_shadow_round_and_gets_every_state() {
    let mut g = gossiper(1, &[]);
    feed(&mut g, vec![(ep(2), state(3, 1, &[]))], secs(1));
    let replies =
        g.step(ep(9), GossipMessage::Syn { cluster_name: "Test Cluster".into(), digests: vec![] }, secs(1));
    let [(_, GossipMessage::Ack { digests, states })] = replies.as_slice() else { panic!("{replies:?}") };
    assert!(digests.is_empty());
    assert_eq!(states.iter().map(|(e, _)| *e).collect::<Vec<_>>(), vec![ep(1), ep(2)]);
}

#[test]
fn same_generation_keeps_the_higher_version_of_each_state() {
    let mut g = gossiper(1, &[]);
    let (s, l, d) = (ApplicationState::Schema, ApplicationState::Load, ApplicationState::Dc);
    feed(&mut g, vec![(ep(2), state(10, 5, &[(s, "new", 4), (l, "old", 2)]))], secs(1));
    g.drain_events();
    // Older schema, newer load, a new DC, an older heartbeat.
    feed(&mut g, vec![(ep(2), state(10, 3, &[(s, "stale", 3), (l, "fresh", 6), (d, "dc", 6)]))], secs(2));
    let known = g.endpoint_state(ep(2)).unwrap();
    assert_eq!(known, &state(10, 5, &[(s, "new", 4), (l, "fresh", 6), (d, "dc", 6)]));
    assert_eq!(
        g.drain_events(),
        vec![
            GossipEvent::StateChanged { endpoint: ep(2), state: l, value: "fresh".into() },
            GossipEvent::StateChanged { endpoint: ep(2), state: d, value: "dc".into() },
        ]
    );
    // An older heartbeat neither reports to the failure detector nor brings the endpoint up.
    assert!(!g.is_alive(ep(2)));
    assert_eq!(g.failure_detector().last_arrival(ep(2)), Some(secs(1)));
    // A newer one does both.
    feed(&mut g, vec![(ep(2), state(10, 7, &[]))], secs(3));
    assert!(g.is_alive(ep(2)));
    assert_eq!(g.failure_detector().last_arrival(ep(2)), Some(secs(3)));
    assert_eq!(g.drain_events(), vec![GossipEvent::Up(ep(2))]);
}

#[test]
fn a_newer_generation_replaces_the_state_and_an_older_one_is_ignored() {
    let mut g = gossiper(1, &[]);
    let (s, r) = (ApplicationState::Schema, ApplicationState::ReleaseVersion);
    feed(&mut g, vec![(ep(2), state(10, 50, &[(s, "a", 40), (r, "1.0", 1)]))], secs(1));
    feed(&mut g, vec![(ep(2), state(10, 51, &[]))], secs(2));
    assert!(g.is_alive(ep(2)));
    g.drain_events();
    // Restart: the version numbers start again and the old states are gone.
    feed(&mut g, vec![(ep(2), state(11, 2, &[(r, "1.1", 1)]))], secs(3));
    assert_eq!(g.endpoint_state(ep(2)).unwrap(), &state(11, 2, &[(r, "1.1", 1)]));
    assert_eq!(
        g.drain_events(),
        vec![
            GossipEvent::Restarted(ep(2)),
            GossipEvent::StateChanged { endpoint: ep(2), state: r, value: "1.1".into() },
        ]
    );
    assert!(g.is_alive(ep(2)));
    // Late gossip about the old incarnation changes nothing.
    feed(&mut g, vec![(ep(2), state(10, 99, &[(s, "b", 98)]))], secs(4));
    assert_eq!(g.endpoint_state(ep(2)).unwrap(), &state(11, 2, &[(r, "1.1", 1)]));
    assert!(g.drain_events().is_empty());
}

#[test]
fn gossip_about_ourselves_is_ignored() {
    let mut g = gossiper(1, &[]);
    feed(&mut g, vec![(ep(1), state(500, 500, &[(ApplicationState::Status, "LEFT", 500)]))], secs(1));
    assert_eq!(g.endpoint_state(ep(1)).unwrap(), &state(100, 0, &[]));
}

#[test]
fn a_silent_endpoint_is_convicted_and_comes_back_up_when_its_heartbeat_advances() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut g = gossiper(1, &[]);
    // Heartbeats of ep(2) every second for 100 s, with our ticks in between.
    for i in 0..100u64 {
        feed(&mut g, vec![(ep(2), state(10, i as i32 + 1, &[]))], secs(i));
        let _ = g.tick(secs(i) + Duration::from_millis(500), &mut rng);
    }
    assert!(g.is_alive(ep(2)));
    g.drain_events();
    let last = secs(99);
    let mut down_at = None;
    for i in 1..40u64 {
        let now = last + Duration::from_millis(500) + secs(i);
        let _ = g.tick(now, &mut rng);
        if let Some(GossipEvent::Down { endpoint, phi }) = g.drain_events().pop() {
            assert_eq!(endpoint, ep(2));
            assert!(phi > 8.0);
            down_at = Some(now - last);
            break;
        }
    }
    // mean ~ 1.01 s (one 2 s seed among 100 intervals): 8 ln 10 * 1.01 = 18.6 s, next tick 19.5 s.
    assert_eq!(down_at, Some(Duration::from_millis(19_500)));
    assert!(!g.is_alive(ep(2)));
    assert_eq!(g.unreachable_endpoints(), vec![ep(2)]);
    assert_eq!(g.downtime(ep(2), last + secs(30)), Some(Duration::from_millis(10_500)));
    // It comes back (same generation): UP on the first newer heartbeat.
    feed(&mut g, vec![(ep(2), state(10, 200, &[]))], last + secs(30));
    assert!(g.is_alive(ep(2)));
    assert_eq!(g.drain_events(), vec![GossipEvent::Up(ep(2))]);
}

#[test]
fn tick_gossips_to_a_seed_and_an_unreachable_member_when_nobody_is_live() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut g = gossiper(1, &[1, 2]);
    feed(&mut g, vec![(ep(3), state(10, 1, &[]))], secs(1));
    let out = g.tick(secs(2), &mut rng);
    let targets: Vec<Endpoint> = out.iter().map(|(to, _)| *to).collect();
    // unreachable / (live + 1) = 1: always to ep(3); no live member: always to the seed ep(2).
    assert_eq!(targets, vec![ep(3), ep(2)]);
    let GossipMessage::Syn { digests, .. } = &out[0].1 else { panic!() };
    let mut described: Vec<Endpoint> = digests.iter().map(|d| d.endpoint).collect();
    described.sort();
    assert_eq!(described, vec![ep(1), ep(3)]);
    // A lone seed with nobody else known sends nothing.
    assert!(gossiper(1, &[1]).tick(secs(1), &mut rng).is_empty());
}

#[test]
fn pending_events_are_bounded_and_drops_are_counted() {
    let mut g = gossiper(1, &[]);
    for i in 0..(MAX_PENDING_EVENTS as i32 + 10) {
        feed(&mut g, vec![(ep(2), state(10, 1, &[(ApplicationState::Load, "x", i + 1)]))], secs(1));
    }
    // Joined + one StateChanged per update.
    assert_eq!(g.dropped_events(), 11);
    let events = g.drain_events();
    assert_eq!(events.len(), MAX_PENDING_EVENTS);
    assert!(matches!(events[0], GossipEvent::StateChanged { .. }));
    assert!(g.drain_events().is_empty());
}

#[test]
fn a_removed_endpoint_is_quarantined_then_may_come_back() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut g = gossiper(1, &[2]);
    feed(&mut g, vec![(ep(2), state(10, 1, &[]))], secs(1));
    g.remove_endpoint(ep(2), secs(2));
    assert_eq!(g.endpoints(), vec![ep(1)]);
    assert!(g.seeds().is_empty());
    assert_eq!(g.phi(ep(2), secs(3)), 0.0);
    feed(&mut g, vec![(ep(2), state(10, 2, &[]))], secs(30));
    assert_eq!(g.endpoints(), vec![ep(1)]);
    let _ = g.tick(secs(2) + QUARANTINE_DELAY + secs(1), &mut rng);
    feed(&mut g, vec![(ep(2), state(10, 3, &[]))], secs(70));
    assert_eq!(g.endpoints(), vec![ep(1), ep(2)]);
    // Removing ourselves is refused.
    g.remove_endpoint(ep(1), secs(71));
    assert!(g.endpoint_state(ep(1)).is_some());
}

#[test]
fn the_seed_list_excludes_ourselves() {
    assert_eq!(gossiper(1, &[1, 2, 3]).seeds(), vec![ep(2), ep(3)]);
}

#[test]
fn arbitrary_messages_never_panic_and_replies_always_encode() {
    use rand::Rng;
    let seed = std::env::var("SIBYL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7u64);
    eprintln!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut g = gossiper(1, &[2, 3]);
    let mut now = Duration::ZERO;
    let random_state = |rng: &mut StdRng| {
        let mut s = state(rng.random_range(-2..3), rng.random_range(0..20), &[]);
        for _ in 0..rng.random_range(0..4) {
            let app = ApplicationState::ALL[rng.random_range(0..ApplicationState::ALL.len())];
            let value = VersionedValue {
                value: format!("v{}", rng.random_range(0..5)),
                version: rng.random_range(0..20),
            };
            s.states.insert(app, value);
        }
        s
    };
    for _ in 0..5000 {
        now += Duration::from_millis(rng.random_range(0..3000));
        let from = ep(rng.random_range(1..8));
        let digests: Vec<GossipDigest> = (0..rng.random_range(0..6))
            .map(|_| GossipDigest {
                endpoint: ep(rng.random_range(1..8)),
                generation: rng.random_range(-2..3),
                max_version: rng.random_range(0..20),
            })
            .collect();
        let states: Vec<(Endpoint, EndpointState)> = (0..rng.random_range(0..4))
            .map(|_| (ep(rng.random_range(1..8)), random_state(&mut rng)))
            .collect();
        let message = match rng.random_range(0..4) {
            0 => GossipMessage::Syn { cluster_name: "Test Cluster".into(), digests },
            1 => GossipMessage::Ack { digests, states },
            2 => GossipMessage::Ack2 { states },
            _ => {
                for (_, syn) in g.tick(now, &mut rng) {
                    let _ = syn.to_bytes();
                }
                continue;
            }
        };
        for (_, reply) in g.step(from, message, now) {
            let bytes = reply.to_bytes();
            assert_eq!(GossipMessage::decode(&bytes).unwrap(), reply);
        }
        // Every known endpoint but ourselves is exactly one of live and unreachable.
        let live = g.live_endpoints();
        let unreachable = g.unreachable_endpoints();
        for endpoint in g.endpoints().into_iter().filter(|e| *e != ep(1)) {
            assert!(live.contains(&endpoint) != unreachable.contains(&endpoint), "{endpoint}");
        }
        assert_eq!(live.len() + unreachable.len() + 1, g.endpoints().len());
        g.drain_events();
    }
}

#[test]
fn a_state_set_for_a_dead_endpoint_spreads_without_bringing_it_back() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut nodes = vec![gossiper(1, &[1]), gossiper(2, &[1]), gossiper(3, &[1])];
    for node in &mut nodes {
        node.set_local_state(ApplicationState::Status, "NORMAL".into()).unwrap();
    }
    for s in 1..=5 {
        tick_all(&mut nodes, secs(s), &mut rng);
    }
    assert!(nodes[0].is_alive(ep(3)) && nodes[1].is_alive(ep(3)));
    // Node 3 dies; node 1 announces its removal on its behalf.
    nodes.truncate(2);
    let mut alive = nodes;
    assert!(alive[0].set_remote_state(ep(3), ApplicationState::Status, "removing,x".into()));
    assert!(
        !alive[0].set_remote_state(ep(1), ApplicationState::Status, "removing,x".into()),
        "not ourselves"
    );
    assert!(!alive[0].set_remote_state(ep(9), ApplicationState::Status, "removing,x".into()), "not unknown");
    let heartbeat = alive[0].endpoint_state(ep(3)).unwrap().heartbeat;
    alive[1].drain_events();
    for s in 6..=8 {
        for i in 0..2 {
            let from = alive[i].local();
            // Messages to the dead node are lost.
            let out = alive[i].tick(secs(s), &mut rng).into_iter().filter(|(to, _)| *to != ep(3));
            let pending = out.map(|(to, m)| (from, to, m)).collect();
            deliver_all(&mut alive, pending, secs(s));
        }
    }
    assert_eq!(alive[1].endpoint_state(ep(3)).unwrap().value(ApplicationState::Status), Some("removing,x"));
    assert_eq!(
        alive[1].endpoint_state(ep(3)).unwrap().heartbeat,
        heartbeat,
        "no newer heartbeat than node 1 had"
    );
    let events = alive[1].drain_events();
    assert!(events.iter().any(|e| matches!(e, GossipEvent::StateChanged { endpoint, value, .. } if *endpoint == ep(3) && value == "removing,x")));
    assert!(!events.iter().any(|e| matches!(e, GossipEvent::Up(x) if *x == ep(3))));
}

#[test]
fn a_node_learns_which_peers_have_seen_its_announcement_from_their_digests() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut nodes = vec![gossiper(1, &[1]), gossiper(2, &[1]), gossiper(3, &[1])];
    for s in 1..=3 {
        tick_all(&mut nodes, secs(s), &mut rng);
    }
    nodes[2].set_local_state(ApplicationState::Status, "BOOT".into()).unwrap();
    let version = nodes[2].local_version(ApplicationState::Status).unwrap();
    assert!(!nodes[2].has_seen(ep(1), version) && !nodes[2].has_seen(ep(2), version));
    let mut s = 4;
    while !(nodes[2].has_seen(ep(1), version) && nodes[2].has_seen(ep(2), version)) {
        assert!(s < 60, "peers never showed they saw the announcement");
        tick_all(&mut nodes, secs(s), &mut rng);
        s += 1;
    }
    // What node 3 was told matches what the peers hold.
    for peer in [0, 1] {
        assert_eq!(nodes[peer].endpoint_state(ep(3)).unwrap().value(ApplicationState::Status), Some("BOOT"));
    }
    assert_eq!(nodes[2].local_version(ApplicationState::Load), None);
}
