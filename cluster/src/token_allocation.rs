//! Choosing a joining node's tokens so that ownership stays even, in the spirit of Cassandra's
//! `allocate_tokens_for_local_replication_factor`: a pure function of the ring and the keyspace
//! replication the operator names.
//!
//! Greedy, one token at a time: every current range's midpoint is a candidate, and the one that
//! leaves the members' effective ownership (under the replication given) with the smallest
//! variance wins. Then each token is moved, in two passes, to the candidate that gives the
//! smallest max/min ownership. Random tokens leave some nodes owning far more than others with few vnodes;
//! this keeps the spread small as the cluster grows one node at a time.
//!
//! Bootstrap calls it when `allocate_tokens_for_local_replication_factor` is set
//! ([`crate::service::ClusterService::choose_tokens`]).

use crate::endpoint::{Endpoint, Location};
use crate::replication::ReplicationStrategy;
use crate::ring::{range_size, TokenMetadata, MIN_TOKEN};

/// `num_tokens` tokens for `node` (at `location`) joining `ring`, balancing effective ownership
/// under `strategy`. On an empty ring the tokens are evenly spaced.
#[must_use]
pub fn allocate_tokens(
    ring: &TokenMetadata,
    strategy: &ReplicationStrategy,
    node: Endpoint,
    location: &Location,
    num_tokens: usize,
) -> Vec<i64> {
    if ring.is_empty() {
        let step = u64::MAX / num_tokens.max(1) as u64;
        return (0..num_tokens as u64)
            .map(|i| (i.wrapping_mul(step) as i64).wrapping_add(i64::MIN / 2 + 1))
            .collect();
    }
    // While the ring has no more nodes than replicas, every node replicates everything under
    // the real factor, so it cannot tell placements apart: balance for the largest factor that
    // can, so the first nodes' tokens interleave and later joins start from an even ring.
    let members = ring.endpoints().len() + 1;
    let lowered;
    let strategy = match strategy {
        ReplicationStrategy::Simple { replication_factor } if *replication_factor >= members => {
            lowered = ReplicationStrategy::Simple { replication_factor: (members - 1).max(1) };
            &lowered
        }
        other => other,
    };
    let mut tm = ring.clone();
    tm.set_location(node, location.clone());
    // Greedy placement by variance: while the node has few tokens it owns least whatever is
    // chosen, so the spread (max/min) cannot guide these first steps.
    let mut mine: Vec<i64> = Vec::with_capacity(num_tokens);
    for _ in 0..num_tokens {
        let Some(token) = best_candidate(&tm, strategy, node, &mine, |own| (variance(own), 0.0)) else {
            break;
        };
        mine.push(token);
        tm.update_normal_tokens(node, &mine);
    }
    // Refinement: each token in turn is moved to wherever the spread, then the variance, is
    // smallest (staying put is a candidate).
    for _ in 0..REFINE_ROUNDS {
        for i in 0..mine.len() {
            let mut others = mine.clone();
            let current = others.remove(i);
            tm.update_normal_tokens(node, &others);
            let score = |own: &[f64]| (spread(own), variance(own));
            let moved = best_candidate(&tm, strategy, node, &others, score);
            let keep = evaluate(&tm, strategy, node, &others, current, score);
            mine[i] = match moved {
                Some(t) if evaluate(&tm, strategy, node, &others, t, score) < keep => t,
                _ => current,
            };
            tm.update_normal_tokens(node, &mine);
        }
    }
    mine.sort_unstable();
    mine
}

/// Passes of the refinement over the node's tokens.
const REFINE_ROUNDS: usize = 2;

/// The midpoint of a current range that gives the lowest `score` of the members' effective
/// ownership once `node` holds `mine` plus it.
fn best_candidate(
    tm: &TokenMetadata,
    strategy: &ReplicationStrategy,
    node: Endpoint,
    mine: &[i64],
    score: impl Fn(&[f64]) -> (f64, f64),
) -> Option<i64> {
    let mut best: Option<((f64, f64), i64)> = None;
    for ((start, end), _) in tm.primary_ranges() {
        let half = range_size(start, end) / 2;
        let candidate = start.wrapping_add(u64::try_from(half).unwrap_or(u64::MAX) as i64);
        if candidate == MIN_TOKEN || candidate == start || tm.endpoint_of(candidate).is_some() {
            continue;
        }
        let s = evaluate(tm, strategy, node, mine, candidate, &score);
        if best.is_none_or(|(b, _)| s < b) {
            best = Some((s, candidate));
        }
    }
    best.map(|(_, t)| t)
}

fn evaluate(
    tm: &TokenMetadata,
    strategy: &ReplicationStrategy,
    node: Endpoint,
    mine: &[i64],
    candidate: i64,
    score: impl Fn(&[f64]) -> (f64, f64),
) -> (f64, f64) {
    let mut trial = tm.clone();
    let mut tokens = mine.to_vec();
    tokens.push(candidate);
    trial.update_normal_tokens(node, &tokens);
    score(&trial.effective_ownership(strategy).into_values().collect::<Vec<f64>>())
}

fn spread(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    if min > 0.0 {
        max / min
    } else {
        f64::INFINITY
    }
}

fn variance(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / values.len() as f64
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rand::SeedableRng;

    use super::*;
    use crate::ring::random_tokens;

    fn ep(i: u8) -> Endpoint {
        Endpoint(std::net::SocketAddr::from(([127, 0, 0, i], 7000)))
    }

    /// max/min effective ownership among the members.
    fn spread(tm: &TokenMetadata, strategy: &ReplicationStrategy) -> f64 {
        let own: Vec<f64> = tm.effective_ownership(strategy).into_values().collect();
        let max = own.iter().copied().fold(f64::MIN, f64::max);
        let min = own.iter().copied().fold(f64::MAX, f64::min);
        max / min
    }

    /// Grows a cluster from 3 to 6 nodes of 16 tokens, with the allocator and with random tokens
    /// from the same start, and compares the spread of ownership at each size.
    #[test]
    fn growing_one_node_at_a_time_keeps_ownership_even() {
        for rf in [1usize, 3] {
            let strategy = ReplicationStrategy::Simple { replication_factor: rf };
            let mut rng = rand::rngs::StdRng::seed_from_u64(42);
            let mut base = TokenMetadata::new();
            let mut taken = BTreeSet::new();
            for i in 1..=3u8 {
                let t = random_tokens(16, &mut rng, &taken);
                taken.extend(t.iter().copied());
                base.update_normal_tokens(ep(i), &t);
            }
            let (mut allocated, mut random) = (base.clone(), base);
            for i in 4..=6u8 {
                let t = allocate_tokens(&allocated, &strategy, ep(i), &Location::default(), 16);
                assert_eq!(t.len(), 16);
                assert!(t.iter().all(|x| allocated.endpoint_of(*x).is_none()), "a token taken twice");
                allocated.update_normal_tokens(ep(i), &t);
                let r = random_tokens(16, &mut rng, &taken);
                taken.extend(r.iter().copied());
                random.update_normal_tokens(ep(i), &r);
                let (a, r) = (spread(&allocated, &strategy), spread(&random, &strategy));
                println!("RF {rf}, {i} nodes: max/min ownership {a:.3} allocated, {r:.3} random");
                assert!(a < 1.2, "RF {rf}, {i} nodes: spread {a:.3}");
                assert!(a <= r, "RF {rf}, {i} nodes: allocated {a:.3} is worse than random {r:.3}");
            }
            // The new node owns close to its share.
            let own = allocated.effective_ownership(&strategy);
            let share = rf.min(6) as f64 / 6.0;
            assert!((own[&ep(6)] - share).abs() < share * 0.15, "RF {rf}: node 6 owns {}", own[&ep(6)]);
        }
    }

    /// A cluster started from one random node, every later node allocated for RF 3 (as the
    /// launcher builds one): the first joins, which own everything under RF 3, must still
    /// interleave, or no later join can even the ring out.
    #[test]
    fn a_cluster_grown_from_one_node_stays_even_for_rf3() {
        let strategy = ReplicationStrategy::Simple { replication_factor: 3 };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut tm = TokenMetadata::new();
        tm.update_normal_tokens(ep(1), &random_tokens(16, &mut rng, &BTreeSet::new()));
        for i in 2..=5u8 {
            let t = allocate_tokens(&tm, &strategy, ep(i), &Location::default(), 16);
            tm.update_normal_tokens(ep(i), &t);
            let s = spread(&tm, &strategy);
            println!("RF 3 from one node, {i} nodes: max/min ownership {s:.3}");
            if i >= 4 {
                assert!(s < 1.25, "{i} nodes: spread {s:.3}");
            }
        }
    }

    #[test]
    fn an_empty_ring_gets_evenly_spaced_tokens() {
        let t = allocate_tokens(
            &TokenMetadata::new(),
            &ReplicationStrategy::Simple { replication_factor: 1 },
            ep(1),
            &Location::default(),
            4,
        );
        assert_eq!(t.len(), 4);
        let mut tm = TokenMetadata::new();
        tm.update_normal_tokens(ep(1), &t);
        let sizes: Vec<u128> = tm.primary_ranges().iter().map(|((s, e), _)| range_size(*s, *e)).collect();
        let (max, min) = (sizes.iter().max().unwrap(), sizes.iter().min().unwrap());
        assert!(max - min <= 8, "{sizes:?}");
    }
}
