//! The token ring: which node holds which Murmur3 tokens, and who owns what.
//!
//! Tokens are Murmur3Partitioner tokens (`i64`). The ownable range is `[i64::MIN + 1, i64::MAX]`;
//! `i64::MIN` is the partitioner's minimum token, which bounds ranges but is never assigned to a
//! node (partition keys never hash to it either: Murmur3 maps that hash to `i64::MAX`).
//!
//! A partition with token `t` is owned by the node holding the smallest token `>= t`, wrapping
//! round to the first token of the ring, as Cassandra's `TokenMetadata.firstToken` and
//! `ringIterator` decide. Each node's tokens therefore define its *primary ranges*
//! `(predecessor, token]`; replication strategies (`crate::replication`) then walk the ring from a
//! token to pick further replicas.
//!
//! [`TokenMetadata`] is a plain value: the coordinator owns one, updates it from gossip and hands
//! `&TokenMetadata` to the pure placement functions. Ownership arithmetic is done in integers
//! (`u128`), never in `i64` differences that overflow across the wrap-around.

use std::collections::{BTreeMap, BTreeSet};

use crate::endpoint::{Endpoint, Location};
use crate::replication::ReplicationStrategy;

/// The partitioner's minimum token: bounds ranges, never owned by a node.
pub const MIN_TOKEN: i64 = i64::MIN;

/// The greatest token.
pub const MAX_TOKEN: i64 = i64::MAX;

/// Number of ownable tokens, `[i64::MIN + 1, i64::MAX]`: `2^64 - 1`.
pub const TOKEN_SPACE: u128 = (1u128 << 64) - 1;

/// Number of ownable tokens in the range `(start, end]`.
///
/// `start == end` is the whole ring (a ring of one token), as in Cassandra's `Range`. A range with
/// `end < start` wraps round past `i64::MAX` (and skips [`MIN_TOKEN`], which is never owned).
#[must_use]
pub fn range_size(start: i64, end: i64) -> u128 {
    let diff = i128::from(end) - i128::from(start);
    match diff {
        0 => TOKEN_SPACE,
        // diff is in (0, 2^64) here, so the conversion is exact.
        d if d > 0 => d.unsigned_abs(),
        // Wrapping: the whole space less the tokens in (end, start].
        d => TOKEN_SPACE - d.unsigned_abs().min(TOKEN_SPACE),
    }
}

/// Which endpoints hold which tokens, and where the endpoints are (datacenter and rack).
///
/// Only endpoints holding at least one token are members of the ring: [`TokenMetadata::endpoints`],
/// [`TokenMetadata::dcs`] and replica placement see those alone. Locations may be recorded for any
/// endpoint, before or after it holds tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenMetadata {
    token_to_endpoint: BTreeMap<i64, Endpoint>,
    endpoint_to_tokens: BTreeMap<Endpoint, BTreeSet<i64>>,
    locations: BTreeMap<Endpoint, Location>,
    default_location: Location,
}

impl TokenMetadata {
    /// An empty ring.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `tokens` the endpoint's tokens, replacing the ones it had.
    ///
    /// A token already held by another endpoint moves to `ep`, as in Cassandra (where a node that
    /// takes over a dead node's tokens wins them); an endpoint left with no tokens leaves the ring.
    /// [`MIN_TOKEN`] is never owned and is skipped. An empty `tokens` removes the endpoint's tokens
    /// (its recorded location is kept).
    pub fn update_normal_tokens(&mut self, ep: Endpoint, tokens: &[i64]) {
        self.remove_tokens_of(ep);
        let mut mine = BTreeSet::new();
        for &token in tokens {
            if token == MIN_TOKEN {
                continue;
            }
            if let Some(previous) = self.token_to_endpoint.insert(token, ep) {
                if previous != ep {
                    self.take_token_from(previous, token);
                }
            }
            mine.insert(token);
        }
        if !mine.is_empty() {
            self.endpoint_to_tokens.insert(ep, mine);
        }
    }

    /// Removes the endpoint from the ring: its tokens and its recorded location.
    pub fn remove_endpoint(&mut self, ep: Endpoint) {
        self.remove_tokens_of(ep);
        self.locations.remove(&ep);
    }

    fn remove_tokens_of(&mut self, ep: Endpoint) {
        if let Some(old) = self.endpoint_to_tokens.remove(&ep) {
            for token in old {
                self.token_to_endpoint.remove(&token);
            }
        }
    }

    fn take_token_from(&mut self, previous: Endpoint, token: i64) {
        if let Some(tokens) = self.endpoint_to_tokens.get_mut(&previous) {
            tokens.remove(&token);
            if tokens.is_empty() {
                self.endpoint_to_tokens.remove(&previous);
            }
        }
    }

    /// Records the endpoint's datacenter and rack (from the snitch or gossip).
    pub fn set_location(&mut self, ep: Endpoint, location: Location) {
        self.locations.insert(ep, location);
    }

    /// The endpoint's location: the recorded one, or `datacenter1` / `rack1` when none was
    /// recorded (Cassandra's `SimpleSnitch` default). Never fails, so placement can always decide.
    #[must_use]
    pub fn location(&self, ep: Endpoint) -> &Location {
        self.locations.get(&ep).unwrap_or(&self.default_location)
    }

    /// The endpoint's recorded location, `None` when none was recorded.
    #[must_use]
    pub fn known_location(&self, ep: Endpoint) -> Option<&Location> {
        self.locations.get(&ep)
    }

    /// Endpoints holding at least one token, sorted.
    #[must_use]
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.endpoint_to_tokens.keys().copied().collect()
    }

    /// Whether the endpoint holds at least one token.
    #[must_use]
    pub fn is_member(&self, ep: Endpoint) -> bool {
        self.endpoint_to_tokens.contains_key(&ep)
    }

    /// The endpoint's tokens, sorted (empty if it holds none).
    #[must_use]
    pub fn tokens_of(&self, ep: Endpoint) -> Vec<i64> {
        self.endpoint_to_tokens.get(&ep).map(|t| t.iter().copied().collect()).unwrap_or_default()
    }

    /// Every token of the ring, sorted.
    #[must_use]
    pub fn sorted_tokens(&self) -> Vec<i64> {
        self.token_to_endpoint.keys().copied().collect()
    }

    /// The endpoint holding exactly this token.
    #[must_use]
    pub fn endpoint_of(&self, token: i64) -> Option<Endpoint> {
        self.token_to_endpoint.get(&token).copied()
    }

    /// Every token of the ring once, with its endpoint, starting at the first token `>= start` and
    /// wrapping round (Cassandra's `ringIterator` without the minimum token).
    pub fn ring_iter(&self, start: i64) -> impl Iterator<Item = (i64, Endpoint)> + '_ {
        self.token_to_endpoint
            .range(start..)
            .chain(self.token_to_endpoint.range(..start))
            .map(|(&token, &ep)| (token, ep))
    }

    /// The token ending the primary range that holds `token`: the first ring token `>= token`,
    /// wrapping round (Cassandra's `TokenMetadata.firstToken`). `None` for an empty ring.
    #[must_use]
    pub fn first_token(&self, token: i64) -> Option<i64> {
        self.ring_iter(token).next().map(|(t, _)| t)
    }

    /// The ring token before `token` (wrapping round); `token` itself in a ring of one token.
    /// `None` for an empty ring.
    #[must_use]
    pub fn predecessor(&self, token: i64) -> Option<i64> {
        self.token_to_endpoint
            .range(..token)
            .next_back()
            .or_else(|| self.token_to_endpoint.iter().next_back())
            .map(|(&t, _)| t)
    }

    /// The endpoint whose primary range holds `token` (the first replica under SimpleStrategy).
    #[must_use]
    pub fn primary_range_owner(&self, token: i64) -> Option<Endpoint> {
        self.ring_iter(token).next().map(|(_, ep)| ep)
    }

    /// Whether the ring holds no token.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.token_to_endpoint.is_empty()
    }

    /// The ring's members by datacenter, then rack; endpoints sorted.
    #[must_use]
    pub fn dcs(&self) -> BTreeMap<String, BTreeMap<String, Vec<Endpoint>>> {
        let mut dcs: BTreeMap<String, BTreeMap<String, Vec<Endpoint>>> = BTreeMap::new();
        for &ep in self.endpoint_to_tokens.keys() {
            let location = self.location(ep);
            dcs.entry(location.dc.clone()).or_default().entry(location.rack.clone()).or_default().push(ep);
        }
        dcs
    }

    /// For each datacenter with members: (number of members, number of racks).
    pub(crate) fn dc_sizes(&self) -> BTreeMap<&str, (usize, usize)> {
        let mut racks: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        let mut nodes: BTreeMap<&str, usize> = BTreeMap::new();
        for &ep in self.endpoint_to_tokens.keys() {
            let location = self.location(ep);
            racks.entry(location.dc.as_str()).or_default().insert(location.rack.as_str());
            *nodes.entry(location.dc.as_str()).or_default() += 1;
        }
        nodes.into_iter().map(|(dc, n)| (dc, (n, racks.get(dc).map_or(0, BTreeSet::len)))).collect()
    }

    /// The endpoint's primary ranges `(start exclusive, end inclusive]`, one per token, sorted by
    /// end. In a ring of one token the single range is `(t, t]`: the whole ring.
    #[must_use]
    pub fn ranges_of(&self, ep: Endpoint) -> Vec<(i64, i64)> {
        let Some(tokens) = self.endpoint_to_tokens.get(&ep) else {
            return Vec::new();
        };
        tokens.iter().filter_map(|&end| self.predecessor(end).map(|start| (start, end))).collect()
    }

    /// Every primary range of the ring with its owner, `((start, end], endpoint)`, sorted by end.
    #[must_use]
    pub fn primary_ranges(&self) -> Vec<((i64, i64), Endpoint)> {
        let Some((&last, _)) = self.token_to_endpoint.iter().next_back() else {
            return Vec::new();
        };
        let mut start = last;
        let mut out = Vec::with_capacity(self.token_to_endpoint.len());
        for (&end, &ep) in &self.token_to_endpoint {
            out.push(((start, end), ep));
            start = end;
        }
        out
    }

    /// Each member's fraction of the token space by primary ranges, like `nodetool status`'s
    /// "Owns" without a keyspace. Sums to 1 (within floating-point rounding) for a non-empty ring.
    ///
    /// Cassandra divides by `2^64 - 2`; we divide by the exact number of ownable tokens
    /// ([`TOKEN_SPACE`]), a difference far below what any display shows.
    #[must_use]
    pub fn ownership(&self) -> BTreeMap<Endpoint, f64> {
        let mut owned: BTreeMap<Endpoint, u128> = BTreeMap::new();
        for ((start, end), ep) in self.primary_ranges() {
            *owned.entry(ep).or_default() += range_size(start, end);
        }
        owned.into_iter().map(|(ep, n)| (ep, fraction(n))).collect()
    }

    /// Each member's fraction of the ring it holds a replica of under `strategy`, like
    /// `nodetool status <keyspace>`'s "Owns (effective)". Sums to the number of replicas each range
    /// gets (the replication factor, capped by the nodes available in each datacenter).
    ///
    /// Every member appears, with 0 if it replicates nothing. Under `LocalStrategy` every value is
    /// 0: such data is not spread over the ring.
    #[must_use]
    pub fn effective_ownership(&self, strategy: &ReplicationStrategy) -> BTreeMap<Endpoint, f64> {
        let mut owned: BTreeMap<Endpoint, u128> = self.endpoint_to_tokens.keys().map(|&ep| (ep, 0)).collect();
        for ((start, end), _) in self.primary_ranges() {
            let size = range_size(start, end);
            for replica in strategy.calculate_natural_replicas(end, self) {
                *owned.entry(replica).or_default() += size;
            }
        }
        owned.into_iter().map(|(ep, n)| (ep, fraction(n))).collect()
    }
}

/// `n / TOKEN_SPACE` as a float. `n` may exceed the space only through summing (never here).
#[allow(clippy::cast_precision_loss, reason = "a fraction for display; 53 bits are plenty")]
fn fraction(n: u128) -> f64 {
    n as f64 / TOKEN_SPACE as f64
}

/// `num_tokens` distinct random tokens, none equal to [`MIN_TOKEN`] nor in `taken`, sorted.
///
/// Like Cassandra's random token allocation (`num_tokens` without an allocation strategy). The
/// caller bounds `num_tokens` (Cassandra allows at most 1536 per node); the token space is so large
/// that collisions are rare and each draw is retried.
pub fn random_tokens(num_tokens: usize, rng: &mut impl rand::Rng, taken: &BTreeSet<i64>) -> Vec<i64> {
    let mut chosen = BTreeSet::new();
    while chosen.len() < num_tokens {
        let token: i64 = rng.random();
        if token != MIN_TOKEN && !taken.contains(&token) {
            chosen.insert(token);
        }
    }
    chosen.into_iter().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::net::{Ipv4Addr, SocketAddr};

    fn ep(n: u8) -> Endpoint {
        Endpoint(SocketAddr::from((Ipv4Addr::new(127, 0, 0, n), 7000)))
    }

    fn seed() -> u64 {
        let seed =
            std::env::var("SIBYL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u64>);
        eprintln!("seed {seed}");
        seed
    }

    fn sum(m: &BTreeMap<Endpoint, f64>) -> f64 {
        m.values().sum()
    }

    #[test]
    fn range_size_handles_wrap_and_extremes() {
        assert_eq!(range_size(0, 10), 10);
        assert_eq!(range_size(5, 5), TOKEN_SPACE);
        assert_eq!(range_size(MIN_TOKEN, MAX_TOKEN), TOKEN_SPACE);
        assert_eq!(range_size(MIN_TOKEN + 1, MAX_TOKEN), TOKEN_SPACE - 1);
        // (MAX, MIN+1] holds only MIN+1: MIN is never owned.
        assert_eq!(range_size(MAX_TOKEN, MIN_TOKEN + 1), 1);
        assert_eq!(range_size(10, 0), TOKEN_SPACE - 10);
        assert_eq!(range_size(10, 0) + range_size(0, 10), TOKEN_SPACE);
    }

    #[test]
    fn ownership_of_hand_built_ring_sums_to_one() {
        let mut tm = TokenMetadata::new();
        tm.update_normal_tokens(ep(1), &[-6_000_000_000_000_000_000, 0]);
        tm.update_normal_tokens(ep(2), &[-3_000_000_000_000_000_000]);
        tm.update_normal_tokens(ep(3), &[3_000_000_000_000_000_000, 9_000_000_000_000_000_000]);
        let own = tm.ownership();
        assert_eq!(own.len(), 3);
        assert!((sum(&own) - 1.0).abs() < 1e-12, "{own:?}");
        // ep2: (-6e18, -3e18] = 3e18 tokens.
        let expected = 3e18 / TOKEN_SPACE as f64;
        assert!((own[&ep(2)] - expected).abs() < 1e-12);
    }

    #[test]
    fn wrap_around_range_belongs_to_the_first_token() {
        let mut tm = TokenMetadata::new();
        tm.update_normal_tokens(ep(1), &[MIN_TOKEN + 1]);
        tm.update_normal_tokens(ep(2), &[0]);
        // ep1 owns (0, MAX] plus MIN+1: 2^63 tokens; ep2 owns (MIN+1, 0]: 2^63 - 1 tokens.
        assert_eq!(tm.ranges_of(ep(1)), vec![(0, MIN_TOKEN + 1)]);
        assert_eq!(tm.ranges_of(ep(2)), vec![(MIN_TOKEN + 1, 0)]);
        let own = tm.ownership();
        assert!((own[&ep(1)] - 0.5).abs() < 1e-12);
        assert!((own[&ep(2)] - 0.5).abs() < 1e-12);
        assert!((sum(&own) - 1.0).abs() < 1e-15);
        // Tokens past the last ring token wrap round to the first.
        assert_eq!(tm.primary_range_owner(MAX_TOKEN), Some(ep(1)));
        assert_eq!(tm.primary_range_owner(1), Some(ep(1)));
        assert_eq!(tm.primary_range_owner(0), Some(ep(2)));
        assert_eq!(tm.primary_range_owner(MIN_TOKEN), Some(ep(1)));
    }

    #[test]
    fn extreme_tokens_do_not_overflow() {
        let mut tm = TokenMetadata::new();
        tm.update_normal_tokens(ep(1), &[MIN_TOKEN + 1]);
        tm.update_normal_tokens(ep(2), &[MAX_TOKEN]);
        let own = tm.ownership();
        // ep2 owns (MIN+1, MAX]: all but one token; ep1 owns just MIN+1.
        assert!((own[&ep(2)] - 1.0).abs() < 1e-15);
        assert!(own[&ep(1)] > 0.0 && own[&ep(1)] < 1e-18);
    }

    #[test]
    fn single_token_owns_everything() {
        let mut tm = TokenMetadata::new();
        tm.update_normal_tokens(ep(1), &[42]);
        assert_eq!(tm.ranges_of(ep(1)), vec![(42, 42)]);
        assert_eq!(tm.ownership()[&ep(1)], 1.0);
        assert!(TokenMetadata::new().ownership().is_empty());
    }

    #[test]
    fn ring_iter_starts_at_first_token_at_or_after_start_and_wraps() {
        let mut tm = TokenMetadata::new();
        tm.update_normal_tokens(ep(1), &[100, 400]);
        tm.update_normal_tokens(ep(2), &[200]);
        tm.update_normal_tokens(ep(3), &[300]);
        let order = |start| tm.ring_iter(start).collect::<Vec<_>>();
        assert_eq!(order(150), vec![(200, ep(2)), (300, ep(3)), (400, ep(1)), (100, ep(1))]);
        assert_eq!(order(200), vec![(200, ep(2)), (300, ep(3)), (400, ep(1)), (100, ep(1))]);
        assert_eq!(order(401), vec![(100, ep(1)), (200, ep(2)), (300, ep(3)), (400, ep(1))]);
        assert_eq!(order(MIN_TOKEN), order(401));
        assert_eq!(tm.first_token(401), Some(100));
        assert_eq!(tm.predecessor(100), Some(400));
        assert_eq!(tm.predecessor(300), Some(200));
        assert!(TokenMetadata::new().ring_iter(0).next().is_none());
    }

    #[test]
    fn updating_tokens_replaces_and_moves_them() {
        let mut tm = TokenMetadata::new();
        tm.update_normal_tokens(ep(1), &[10, 20]);
        tm.update_normal_tokens(ep(2), &[30]);
        tm.update_normal_tokens(ep(1), &[15, 30, MIN_TOKEN]);
        assert_eq!(tm.tokens_of(ep(1)), vec![15, 30]);
        // ep2 lost its only token to ep1, so it left the ring.
        assert_eq!(tm.endpoints(), vec![ep(1)]);
        assert_eq!(tm.sorted_tokens(), vec![15, 30]);
        tm.update_normal_tokens(ep(3), &[40]);
        tm.remove_endpoint(ep(1));
        assert_eq!(tm.endpoints(), vec![ep(3)]);
        assert_eq!(tm.sorted_tokens(), vec![40]);
        tm.update_normal_tokens(ep(3), &[]);
        assert!(tm.is_empty());
    }

    #[test]
    fn locations_default_to_datacenter1_rack1_and_group_into_dcs() {
        let mut tm = TokenMetadata::new();
        tm.update_normal_tokens(ep(1), &[1]);
        tm.update_normal_tokens(ep(2), &[2]);
        tm.update_normal_tokens(ep(3), &[3]);
        tm.set_location(ep(2), Location::new("dc2", "r1"));
        tm.set_location(ep(3), Location::new("dc2", "r2"));
        tm.set_location(ep(9), Location::new("dc3", "r1")); // no tokens: not a member
        assert_eq!(tm.location(ep(1)), &Location::default());
        assert_eq!(tm.known_location(ep(1)), None);
        let dcs = tm.dcs();
        assert_eq!(dcs.keys().collect::<Vec<_>>(), vec!["datacenter1", "dc2"]);
        assert_eq!(dcs["datacenter1"]["rack1"], vec![ep(1)]);
        assert_eq!(dcs["dc2"]["r1"], vec![ep(2)]);
        assert_eq!(dcs["dc2"]["r2"], vec![ep(3)]);
        assert_eq!(tm.dc_sizes()["dc2"], (2, 2));
    }

    #[test]
    fn random_tokens_are_distinct_sorted_and_avoid_min_and_taken() {
        let seed = seed();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let taken: BTreeSet<i64> = random_tokens(64, &mut rng, &BTreeSet::new()).into_iter().collect();
        let tokens = random_tokens(256, &mut rng, &taken);
        assert_eq!(tokens.len(), 256);
        assert!(tokens.windows(2).all(|w| w[0] < w[1]));
        assert!(tokens.iter().all(|t| *t != MIN_TOKEN && !taken.contains(t)));

        // An rng that yields MIN and already-taken tokens first: both are skipped.
        struct Scripted(Vec<u64>);
        impl rand::RngCore for Scripted {
            fn next_u32(&mut self) -> u32 {
                self.next_u64() as u32
            }
            fn next_u64(&mut self) -> u64 {
                self.0.remove(0)
            }
            fn fill_bytes(&mut self, dst: &mut [u8]) {
                rand::rand_core::impls::fill_bytes_via_next(self, dst);
            }
        }
        let mut scripted = Scripted(vec![i64::MIN as u64, 5, 5, 7, 3]);
        assert_eq!(random_tokens(2, &mut scripted, &BTreeSet::from([5])), vec![3, 7]);
    }

    #[test]
    fn ownership_of_random_rings_sums_to_one() {
        let seed = seed();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for nodes in 1..=12u8 {
            let mut tm = TokenMetadata::new();
            let mut taken = BTreeSet::new();
            for n in 1..=nodes {
                let tokens = random_tokens(16, &mut rng, &taken);
                taken.extend(tokens.iter().copied());
                tm.update_normal_tokens(ep(n), &tokens);
            }
            let own = tm.ownership();
            assert_eq!(own.len(), usize::from(nodes));
            assert!((sum(&own) - 1.0).abs() < 1e-9, "seed {seed}: {own:?}");
            let total: u128 = tm.primary_ranges().iter().map(|((s, e), _)| range_size(*s, *e)).sum();
            assert_eq!(total, TOKEN_SPACE, "seed {seed}");
        }
    }
}
