//! What a ring change moves (pure): which token ranges each node gains, and from whom.
//!
//! A change is two rings: the *current* one (the normal nodes) and the *future* one (joining
//! nodes added with their tokens, leaving or removed nodes taken out, a replaced node's tokens
//! moved to its replacement). Under a replication strategy every token has a replica set in
//! each ring; a node in the future set but not in the current one *gains* that token and must
//! receive its data from a current replica before it serves reads.
//!
//! The tokens of both rings cut the ring into pieces `(previous, token]` on which both replica
//! sets are constant, so computing the change per piece is exact. Adjacent pieces with the same
//! target and sources are merged.
//!
//! The same function answers bootstrap (the joining node's gains), decommission (what the
//! leaving node hands to whom), removenode and replace; and [`pending_replicas`] tells the
//! coordinator which extra nodes must receive writes while data moves (Cassandra's pending
//! ranges).

use std::collections::BTreeSet;

use crate::endpoint::Endpoint;
use crate::replication::ReplicationStrategy;
use crate::ring::{TokenMetadata, MIN_TOKEN};

/// One range a node gains, and the nodes that hold it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Range start (exclusive).
    pub start: i64,
    /// Range end (inclusive); `end < start` wraps round the ring.
    pub end: i64,
    /// The node gaining the range.
    pub target: Endpoint,
    /// The current replicas of the range: first those that will no longer hold it (the
    /// leaving or replaced node: Cassandra's "strict" source, whose copy is the one being
    /// handed over), then the others in placement order.
    pub sources: Vec<Endpoint>,
}

/// The ring a change leads to: `current` with `joining` nodes' tokens added (a token held by
/// another node moves, as a replacement takes its dead node's tokens) and `leaving` nodes
/// removed.
#[must_use]
pub fn future_ring(
    current: &TokenMetadata,
    joining: &[(Endpoint, Vec<i64>)],
    leaving: &BTreeSet<Endpoint>,
) -> TokenMetadata {
    let mut future = current.clone();
    for ep in leaving {
        future.remove_endpoint(*ep);
        if let Some(location) = current.known_location(*ep) {
            // Keep the location: a leaving node may still be asked about.
            future.set_location(*ep, location.clone());
        }
    }
    for (ep, tokens) in joining {
        future.update_normal_tokens(*ep, tokens);
    }
    future
}

/// Every range some node gains when the ring goes from `current` to `future`.
#[must_use]
pub fn plan_transfers(
    strategy: &ReplicationStrategy,
    current: &TokenMetadata,
    future: &TokenMetadata,
) -> Vec<Transfer> {
    let tokens: BTreeSet<i64> = current
        .sorted_tokens()
        .into_iter()
        .chain(future.sorted_tokens())
        .filter(|t| *t != MIN_TOKEN)
        .collect();
    let Some(&last) = tokens.iter().next_back() else { return Vec::new() };
    let mut out: Vec<Transfer> = Vec::new();
    let mut start = last;
    for &end in &tokens {
        let now = strategy.calculate_natural_replicas(end, current);
        let then = strategy.calculate_natural_replicas(end, future);
        let mut sources: Vec<Endpoint> = now.iter().copied().filter(|ep| !then.contains(ep)).collect();
        sources.extend(now.iter().copied().filter(|ep| then.contains(ep)));
        for target in then.iter().copied().filter(|ep| !now.contains(ep)) {
            let merged = out.iter_mut().rev().find(|t| t.target == target).is_some_and(|t| {
                if t.end == start && t.sources == sources {
                    t.end = end;
                    true
                } else {
                    false
                }
            });
            if !merged {
                out.push(Transfer { start, end, target, sources: sources.clone() });
            }
        }
        start = end;
    }
    out
}

/// The nodes that will replicate `token` once the change completes but do not now: writes go
/// to them too (and count towards the level, as Cassandra's pending endpoints do), so that what
/// they stream plus what they are sent meanwhile is everything.
#[must_use]
pub fn pending_replicas(
    strategy: &ReplicationStrategy,
    token: i64,
    current: &TokenMetadata,
    future: &TokenMetadata,
) -> Vec<Endpoint> {
    let now = strategy.calculate_natural_replicas(token, current);
    strategy.calculate_natural_replicas(token, future).into_iter().filter(|ep| !now.contains(ep)).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::collections::BTreeMap;

    use rand::SeedableRng;

    use super::*;
    use crate::ring::{random_tokens, range_size, TOKEN_SPACE};

    fn ep(i: u8) -> Endpoint {
        Endpoint(std::net::SocketAddr::from(([127, 0, 0, i], 7000)))
    }

    fn ring(nodes: &[(u8, Vec<i64>)]) -> TokenMetadata {
        let mut tm = TokenMetadata::new();
        for (i, tokens) in nodes {
            tm.update_normal_tokens(ep(*i), tokens);
        }
        tm
    }

    fn simple(rf: usize) -> ReplicationStrategy {
        ReplicationStrategy::Simple { replication_factor: rf }
    }

    /// Total tokens each target gains.
    fn gained(transfers: &[Transfer]) -> BTreeMap<Endpoint, u128> {
        let mut out = BTreeMap::new();
        for t in transfers {
            *out.entry(t.target).or_default() += range_size(t.start, t.end);
        }
        out
    }

    #[test]
    fn a_joining_node_gains_exactly_its_future_ranges_from_their_current_owners() {
        let current = ring(&[(1, vec![0]), (2, vec![100]), (3, vec![200])]);
        let future = future_ring(&current, &[(ep(4), vec![50])], &BTreeSet::new());
        let transfers = plan_transfers(&simple(1), &current, &future);
        // Node 4 takes (0, 50] from node 2, which held (0, 100].
        assert_eq!(transfers, vec![Transfer { start: 0, end: 50, target: ep(4), sources: vec![ep(2)] }]);
        assert_eq!(pending_replicas(&simple(1), 25, &current, &future), vec![ep(4)]);
        assert!(pending_replicas(&simple(1), 75, &current, &future).is_empty());
    }

    #[test]
    fn with_rf3_a_joining_node_gains_rf_ranges_and_the_handing_over_replica_comes_first() {
        let current = ring(&[(1, vec![0]), (2, vec![100]), (3, vec![200]), (4, vec![300])]);
        let future = future_ring(&current, &[(ep(5), vec![50])], &BTreeSet::new());
        let transfers = plan_transfers(&simple(3), &current, &future);
        let for5: Vec<&Transfer> = transfers.iter().filter(|t| t.target == ep(5)).collect();
        assert_eq!(transfers.len(), for5.len(), "only the joining node gains");
        // Node 5 replicates (200, 300], (300, 0], (0, 50]: the ranges whose third replica it becomes.
        let total: u128 = for5.iter().map(|t| range_size(t.start, t.end)).sum();
        assert_eq!(total, range_size(200, 50));
        for t in &for5 {
            let now = simple(3).calculate_natural_replicas(t.end, &current);
            assert_eq!(t.sources.len(), 3);
            assert!(now.iter().all(|r| t.sources.contains(r)));
            // The replica dropping out of the set is the strict source.
            let then = simple(3).calculate_natural_replicas(t.end, &future);
            assert!(!then.contains(&t.sources[0]));
        }
    }

    #[test]
    fn a_leaving_node_hands_every_range_it_held_to_new_replicas() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut current = TokenMetadata::new();
        let mut taken = BTreeSet::new();
        for i in 1..=5 {
            let tokens = random_tokens(8, &mut rng, &taken);
            taken.extend(tokens.iter().copied());
            current.update_normal_tokens(ep(i), &tokens);
        }
        let strategy = simple(3);
        let leaving = BTreeSet::from([ep(3)]);
        let future = future_ring(&current, &[], &leaving);
        let transfers = plan_transfers(&strategy, &current, &future);
        // Every range node 3 replicated gains exactly one new replica, sourced first from node 3.
        let held: u128 =
            current.effective_ownership(&strategy)[&ep(3)].mul_add(TOKEN_SPACE as f64, 0.0) as u128;
        let moved: u128 = transfers.iter().map(|t| range_size(t.start, t.end)).sum();
        let diff = held.abs_diff(moved);
        assert!(diff < TOKEN_SPACE / 1_000_000, "held {held} moved {moved}");
        for t in &transfers {
            assert_eq!(t.sources[0], ep(3));
            assert_ne!(t.target, ep(3));
        }
        assert!(gained(&transfers).keys().all(|e| *e != ep(3)));
    }

    #[test]
    fn a_replacement_takes_over_the_dead_nodes_tokens_and_ranges() {
        let current = ring(&[(1, vec![0]), (2, vec![100]), (3, vec![200])]);
        let future = future_ring(&current, &[(ep(9), vec![100])], &BTreeSet::new());
        assert!(!future.is_member(ep(2)));
        let transfers = plan_transfers(&simple(2), &current, &future);
        // Node 2 replicated (0, 100] and (200, 0] (as second replica); node 9 gains both.
        assert_eq!(gained(&transfers), BTreeMap::from([(ep(9), range_size(200, 100))]));
        assert!(transfers.iter().all(|t| t.sources[0] == ep(2)));
    }

    #[test]
    fn no_change_moves_nothing_and_an_empty_ring_moves_nothing() {
        let current = ring(&[(1, vec![0]), (2, vec![100])]);
        assert!(plan_transfers(&simple(2), &current, &current).is_empty());
        let empty = TokenMetadata::new();
        assert!(plan_transfers(&simple(1), &empty, &empty).is_empty());
        assert!(pending_replicas(&simple(1), 5, &current, &current).is_empty());
    }
}
