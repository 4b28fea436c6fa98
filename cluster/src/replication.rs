//! Replication strategies: how many replicas a keyspace keeps, and on which nodes.
//!
//! Placement must be exactly Cassandra 4.0's, in Cassandra's order, because drivers route by it
//! (token-aware policies compute the same replicas) and because a mixed understanding of who holds
//! a range would lose data. The first replica is the primary-range owner under `SimpleStrategy`;
//! the order matters for read routing and for `nodetool getendpoints`-style output.
//!
//! * `SimpleStrategy`: walk the ring from the token, taking distinct endpoints until the
//!   replication factor is met (or the ring is exhausted).
//! * `NetworkTopologyStrategy`: one walk of the ring from the token, filling every datacenter at
//!   once (Cassandra's `NetworkTopologyStrategy.calculateNaturalReplicas` with its
//!   `DatacenterEndpoints` helper). Per datacenter: the factor is capped by its node count; an
//!   endpoint on a rack not seen yet (racks are `(dc, rack)` pairs) is always taken; an endpoint on
//!   a seen rack is taken at once only while "rack repeats" remain, where the number of repeats is
//!   `rf - racks in the dc` (so when there are at least `rf` racks, replicas land on distinct
//!   racks). Datacenters with factor 0, absent from the options, or without nodes are ignored.
//! * `LocalStrategy`: data stays on the node that holds it (system keyspaces).
//!   [`ReplicationStrategy::calculate_natural_replicas`] returns no endpoint for it, since the
//!   ring does not know which node is "local"; use [`ReplicationStrategy::natural_replicas`] with
//!   the local endpoint to get `[local]`.

use std::collections::{BTreeMap, HashSet};

use crate::endpoint::Endpoint;
use crate::ring::TokenMetadata;

/// Package of Cassandra's strategies: a bare class name is resolved in it.
pub const STRATEGY_PACKAGE: &str = "org.apache.cassandra.locator.";

/// The option naming SimpleStrategy's factor.
pub const REPLICATION_FACTOR: &str = "replication_factor";

/// Why replication options were refused (CQL turns these into `ConfigurationException`s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicationError {
    /// The class is not a strategy Sibyl knows.
    #[error("Unable to find replication strategy class '{0}'")]
    UnknownClass(String),
    /// SimpleStrategy without its factor.
    #[error("SimpleStrategy requires a replication_factor strategy option.")]
    MissingReplicationFactor,
    /// A factor that is not a non-negative integer (transient replication, `3/1`, is not
    /// supported).
    #[error("Replication factor must be non-negative integer; found {value} for option {option}")]
    InvalidReplicationFactor {
        /// The option's key.
        option: String,
        /// The value given.
        value: String,
    },
    /// An option the strategy does not take.
    #[error("Unrecognized strategy option {{{option}}} passed to {class}")]
    UnrecognizedOption {
        /// The option's key.
        option: String,
        /// The strategy's short class name.
        class: &'static str,
    },
    /// `replication_factor` given to NetworkTopologyStrategy. Cassandra 4.0 expands it to every
    /// known datacenter before building the strategy; the caller must do that expansion.
    #[error("replication_factor is an option for SimpleStrategy, not NetworkTopologyStrategy")]
    ReplicationFactorForNetworkTopology,
    /// NetworkTopologyStrategy without any datacenter.
    #[error("Configuration for at least one datacenter must be present")]
    NoDatacenter,
}

/// A keyspace's replication strategy and factors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationStrategy {
    /// Data stays on the node that holds it (system keyspaces); factor 1.
    Local,
    /// Replicas are the next distinct endpoints on the ring, regardless of topology.
    Simple {
        /// Number of replicas.
        replication_factor: usize,
    },
    /// Replicas per datacenter, spread over racks.
    NetworkTopology {
        /// Replicas per datacenter. Datacenters absent or with 0 hold no replica.
        dc_replication: BTreeMap<String, usize>,
    },
}

impl ReplicationStrategy {
    /// Builds a strategy from a CQL `replication` map's class and options.
    ///
    /// `class` is a Cassandra class name, short (`SimpleStrategy`) or full
    /// (`org.apache.cassandra.locator.SimpleStrategy`), case-sensitive as in Cassandra. The key
    /// `class` in `options` is ignored. SimpleStrategy needs `replication_factor` and takes nothing
    /// else; NetworkTopologyStrategy takes one factor per datacenter (datacenters given 0 are
    /// dropped, as Cassandra 4.0 does) and refuses `replication_factor`; LocalStrategy ignores
    /// options.
    pub fn from_options(class: &str, options: &BTreeMap<String, String>) -> Result<Self, ReplicationError> {
        let short = class.strip_prefix(STRATEGY_PACKAGE).unwrap_or(class);
        let options = options.iter().filter(|(k, _)| k.as_str() != "class");
        match short {
            "LocalStrategy" => Ok(ReplicationStrategy::Local),
            "SimpleStrategy" => {
                let mut replication_factor = None;
                for (key, value) in options {
                    if key != REPLICATION_FACTOR {
                        return Err(ReplicationError::UnrecognizedOption {
                            option: key.clone(),
                            class: "SimpleStrategy",
                        });
                    }
                    replication_factor = Some(parse_factor(key, value)?);
                }
                let replication_factor =
                    replication_factor.ok_or(ReplicationError::MissingReplicationFactor)?;
                Ok(ReplicationStrategy::Simple { replication_factor })
            }
            "NetworkTopologyStrategy" => {
                let mut dc_replication = BTreeMap::new();
                let mut any = false;
                for (dc, value) in options {
                    if dc.eq_ignore_ascii_case(REPLICATION_FACTOR) {
                        return Err(ReplicationError::ReplicationFactorForNetworkTopology);
                    }
                    any = true;
                    let rf = parse_factor(dc, value)?;
                    if rf > 0 {
                        dc_replication.insert(dc.clone(), rf);
                    }
                }
                if !any {
                    return Err(ReplicationError::NoDatacenter);
                }
                Ok(ReplicationStrategy::NetworkTopology { dc_replication })
            }
            _ => Err(ReplicationError::UnknownClass(class.to_owned())),
        }
    }

    /// The full Cassandra class name, as `system_schema.keyspaces` shows it.
    #[must_use]
    pub fn class_name(&self) -> &'static str {
        match self {
            ReplicationStrategy::Local => "org.apache.cassandra.locator.LocalStrategy",
            ReplicationStrategy::Simple { .. } => "org.apache.cassandra.locator.SimpleStrategy",
            ReplicationStrategy::NetworkTopology { .. } => {
                "org.apache.cassandra.locator.NetworkTopologyStrategy"
            }
        }
    }

    /// Total number of replicas: 1 for Local, the factor for Simple, the sum over datacenters
    /// for NetworkTopology (Cassandra's `getReplicationFactor().allReplicas`).
    #[must_use]
    pub fn replication_factor_total(&self) -> usize {
        match self {
            ReplicationStrategy::Local => 1,
            ReplicationStrategy::Simple { replication_factor } => *replication_factor,
            ReplicationStrategy::NetworkTopology { dc_replication } => dc_replication.values().sum(),
        }
    }

    /// Replicas in datacenter `dc`. For NetworkTopology the configured factor (0 if absent);
    /// Simple and Local know no datacenters and answer their total, which is what Cassandra's
    /// `localQuorumFor` uses for them.
    #[must_use]
    pub fn replication_factor_in(&self, dc: &str) -> usize {
        match self {
            ReplicationStrategy::NetworkTopology { dc_replication } => {
                dc_replication.get(dc).copied().unwrap_or(0)
            }
            _ => self.replication_factor_total(),
        }
    }

    /// Whether this is NetworkTopologyStrategy (the only strategy whose factors are per
    /// datacenter).
    #[must_use]
    pub fn is_network_topology(&self) -> bool {
        matches!(self, ReplicationStrategy::NetworkTopology { .. })
    }

    /// The replicas of the partitions with `token`, in Cassandra's order (primary first).
    ///
    /// Empty for an empty ring, and for `Local` (see [`ReplicationStrategy::natural_replicas`]).
    #[must_use]
    pub fn calculate_natural_replicas(&self, token: i64, tm: &TokenMetadata) -> Vec<Endpoint> {
        match self {
            ReplicationStrategy::Local => Vec::new(),
            ReplicationStrategy::Simple { replication_factor } => {
                simple_replicas(*replication_factor, token, tm)
            }
            ReplicationStrategy::NetworkTopology { dc_replication } => {
                nts_replicas(dc_replication, token, tm)
            }
        }
    }

    /// Like [`ReplicationStrategy::calculate_natural_replicas`], but `Local` answers `[local]`.
    #[must_use]
    pub fn natural_replicas(&self, token: i64, tm: &TokenMetadata, local: Endpoint) -> Vec<Endpoint> {
        match self {
            ReplicationStrategy::Local => vec![local],
            _ => self.calculate_natural_replicas(token, tm),
        }
    }
}

fn parse_factor(option: &str, value: &str) -> Result<usize, ReplicationError> {
    // Only plain decimal digits, as Java's Integer.parseInt would accept without a sign.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_factor(option, value));
    }
    value.parse::<u32>().map(|rf| rf as usize).map_err(|_| invalid_factor(option, value))
}

fn invalid_factor(option: &str, value: &str) -> ReplicationError {
    ReplicationError::InvalidReplicationFactor { option: option.to_owned(), value: value.to_owned() }
}

fn simple_replicas(rf: usize, token: i64, tm: &TokenMetadata) -> Vec<Endpoint> {
    let mut replicas: Vec<Endpoint> = Vec::with_capacity(rf);
    for (_, ep) in tm.ring_iter(token) {
        if replicas.len() >= rf {
            break;
        }
        if !replicas.contains(&ep) {
            replicas.push(ep);
        }
    }
    replicas
}

/// Progress of one datacenter during the ring walk (Cassandra's `DatacenterEndpoints`).
struct DcFill {
    /// Replicas still to place here.
    rf_left: usize,
    /// Endpoints on already-seen racks that may still be taken; may start negative (more racks
    /// than the factor), in which case none are.
    rack_repeats_left: i64,
}

fn nts_replicas(dc_replication: &BTreeMap<String, usize>, token: i64, tm: &TokenMetadata) -> Vec<Endpoint> {
    let sizes = tm.dc_sizes();
    let mut fills: BTreeMap<&str, DcFill> = BTreeMap::new();
    for (dc, &rf) in dc_replication {
        let Some(&(nodes, racks)) = sizes.get(dc.as_str()) else { continue };
        if rf == 0 || nodes == 0 {
            continue;
        }
        let rack_repeats_left =
            i64::try_from(rf).unwrap_or(i64::MAX) - i64::try_from(racks).unwrap_or(i64::MAX);
        fills.insert(dc.as_str(), DcFill { rf_left: rf.min(nodes), rack_repeats_left });
    }
    let mut dcs_to_fill = fills.len();
    let mut replicas: Vec<Endpoint> = Vec::with_capacity(dc_replication.values().sum());
    let mut seen_racks: HashSet<(&str, &str)> = HashSet::new();
    for (_, ep) in tm.ring_iter(token) {
        if dcs_to_fill == 0 {
            break;
        }
        let location = tm.location(ep);
        let Some(fill) = fills.get_mut(location.dc.as_str()) else { continue };
        if fill.rf_left == 0 || replicas.contains(&ep) {
            continue;
        }
        if seen_racks.insert((location.dc.as_str(), location.rack.as_str())) {
            // First endpoint met on this rack: always taken.
        } else if fill.rack_repeats_left > 0 {
            // A rack already used, taken because the dc has fewer racks than its factor.
            fill.rack_repeats_left -= 1;
        } else {
            continue;
        }
        replicas.push(ep);
        fill.rf_left -= 1;
        if fill.rf_left == 0 {
            dcs_to_fill -= 1;
        }
    }
    replicas
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;
    use crate::endpoint::Location;
    use crate::ring::random_tokens;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeSet;
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

    /// A ring from `(node, token, dc, rack)` rows.
    fn ring(rows: &[(u8, i64, &str, &str)]) -> TokenMetadata {
        let mut tokens: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
        let mut tm = TokenMetadata::new();
        for &(n, token, dc, rack) in rows {
            tokens.entry(n).or_default().push(token);
            tm.set_location(ep(n), Location::new(dc, rack));
        }
        for (n, t) in tokens {
            tm.update_normal_tokens(ep(n), &t);
        }
        tm
    }

    fn nts(dcs: &[(&str, usize)]) -> ReplicationStrategy {
        ReplicationStrategy::NetworkTopology {
            dc_replication: dcs.iter().map(|(dc, rf)| ((*dc).to_owned(), *rf)).collect(),
        }
    }

    fn eps(ns: &[u8]) -> Vec<Endpoint> {
        ns.iter().map(|&n| ep(n)).collect()
    }

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn from_options_accepts_short_and_full_class_names() {
        let simple = ReplicationStrategy::Simple { replication_factor: 3 };
        let o = opts(&[("class", "SimpleStrategy"), ("replication_factor", "3")]);
        assert_eq!(ReplicationStrategy::from_options("SimpleStrategy", &o), Ok(simple.clone()));
        assert_eq!(
            ReplicationStrategy::from_options("org.apache.cassandra.locator.SimpleStrategy", &o),
            Ok(simple)
        );
        let o = opts(&[("dc1", "3"), ("dc2", "2"), ("dc3", "0")]);
        let expected = nts(&[("dc1", 3), ("dc2", 2)]);
        assert_eq!(ReplicationStrategy::from_options("NetworkTopologyStrategy", &o), Ok(expected.clone()));
        assert_eq!(
            ReplicationStrategy::from_options("org.apache.cassandra.locator.NetworkTopologyStrategy", &o),
            Ok(expected)
        );
        assert_eq!(
            ReplicationStrategy::from_options("LocalStrategy", &BTreeMap::new()),
            Ok(ReplicationStrategy::Local)
        );
    }

    #[test]
    fn from_options_refuses_bad_options_clearly() {
        use ReplicationError as E;
        let from = ReplicationStrategy::from_options;
        assert_eq!(from("SimpleStrategy", &opts(&[])), Err(E::MissingReplicationFactor));
        for bad in ["-1", "three", "", "3/1", " 3", "99999999999"] {
            assert_eq!(
                from("SimpleStrategy", &opts(&[("replication_factor", bad)])),
                Err(E::InvalidReplicationFactor { option: "replication_factor".into(), value: bad.into() }),
            );
        }
        assert_eq!(
            from("NetworkTopologyStrategy", &opts(&[("dc1", "x")])),
            Err(E::InvalidReplicationFactor { option: "dc1".into(), value: "x".into() })
        );
        assert_eq!(
            from("SimpleStrategy", &opts(&[("replication_factor", "1"), ("dc1", "1")])),
            Err(E::UnrecognizedOption { option: "dc1".into(), class: "SimpleStrategy" })
        );
        assert_eq!(
            from("NetworkTopologyStrategy", &opts(&[("replication_factor", "3")])),
            Err(E::ReplicationFactorForNetworkTopology)
        );
        assert_eq!(from("NetworkTopologyStrategy", &opts(&[("class", "x")])), Err(E::NoDatacenter));
        assert_eq!(from("simplestrategy", &opts(&[])), Err(E::UnknownClass("simplestrategy".into())));
        assert_eq!(
            from("com.example.SimpleStrategy", &opts(&[])),
            Err(E::UnknownClass("com.example.SimpleStrategy".into()))
        );
        let msg = from("SimpleStrategy", &opts(&[])).unwrap_err().to_string();
        assert!(msg.contains("replication_factor"), "{msg}");
    }

    #[test]
    fn replication_factors() {
        let s = nts(&[("dc1", 3), ("dc2", 2)]);
        assert_eq!(s.replication_factor_total(), 5);
        assert_eq!(s.replication_factor_in("dc1"), 3);
        assert_eq!(s.replication_factor_in("dc9"), 0);
        let simple = ReplicationStrategy::Simple { replication_factor: 2 };
        assert_eq!(simple.replication_factor_total(), 2);
        assert_eq!(simple.replication_factor_in("dc1"), 2);
        assert_eq!(ReplicationStrategy::Local.replication_factor_total(), 1);
    }

    #[test]
    fn simple_strategy_walks_the_ring_taking_distinct_endpoints() {
        let tm = ring(&[
            (1, 100, "dc1", "r1"),
            (2, 200, "dc1", "r1"),
            (1, 300, "dc1", "r1"),
            (3, 400, "dc2", "r1"),
        ]);
        let s = |rf| ReplicationStrategy::Simple { replication_factor: rf };
        assert_eq!(s(3).calculate_natural_replicas(150, &tm), eps(&[2, 1, 3]));
        assert_eq!(s(2).calculate_natural_replicas(250, &tm), eps(&[1, 3]));
        // Wraps round past the last token.
        assert_eq!(s(2).calculate_natural_replicas(401, &tm), eps(&[1, 2]));
        assert_eq!(s(3).calculate_natural_replicas(400, &tm), eps(&[3, 1, 2]));
        // More replicas than nodes: every node once.
        assert_eq!(s(5).calculate_natural_replicas(0, &tm), eps(&[1, 2, 3]));
        assert_eq!(s(0).calculate_natural_replicas(0, &tm), eps(&[]));
        assert!(s(3).calculate_natural_replicas(0, &TokenMetadata::new()).is_empty());
    }

    #[test]
    fn local_strategy_is_the_local_node() {
        let tm = ring(&[(1, 100, "dc1", "r1")]);
        assert!(ReplicationStrategy::Local.calculate_natural_replicas(5, &tm).is_empty());
        assert_eq!(ReplicationStrategy::Local.natural_replicas(5, &tm, ep(9)), eps(&[9]));
        let simple = ReplicationStrategy::Simple { replication_factor: 1 };
        assert_eq!(simple.natural_replicas(5, &tm, ep(9)), eps(&[1]));
    }

    #[test]
    fn nts_three_racks_six_nodes_rf3_puts_one_replica_per_rack() {
        let tm = ring(&[
            (1, 100, "dc1", "r1"),
            (2, 200, "dc1", "r1"),
            (3, 300, "dc1", "r2"),
            (4, 400, "dc1", "r2"),
            (5, 500, "dc1", "r3"),
            (6, 600, "dc1", "r3"),
        ]);
        let s = nts(&[("dc1", 3)]);
        // From 200: n2 (r1), n3 (r2), n4 skipped (r2 seen, no repeats since 3 racks >= rf), n5 (r3).
        assert_eq!(s.calculate_natural_replicas(150, &tm), eps(&[2, 3, 5]));
        assert_eq!(s.calculate_natural_replicas(650, &tm), eps(&[1, 3, 5]));
        assert_eq!(s.calculate_natural_replicas(350, &tm), eps(&[4, 5, 1]));
        assert_eq!(s.calculate_natural_replicas(600, &tm), eps(&[6, 1, 3]));
    }

    #[test]
    fn nts_more_racks_than_rf_uses_distinct_racks() {
        let tm = ring(&[
            (1, 100, "dc1", "r1"),
            (5, 150, "dc1", "r1"),
            (2, 200, "dc1", "r2"),
            (3, 300, "dc1", "r3"),
            (4, 400, "dc1", "r4"),
        ]);
        let s = nts(&[("dc1", 2)]);
        assert_eq!(s.calculate_natural_replicas(120, &tm), eps(&[5, 2]));
        assert_eq!(s.calculate_natural_replicas(50, &tm), eps(&[1, 2]));
        assert_eq!(s.calculate_natural_replicas(350, &tm), eps(&[4, 1]));
    }

    #[test]
    fn nts_fewer_racks_than_rf_takes_the_first_rack_repeats_met() {
        // Two racks, rf 3: one repeat allowed. Cassandra 4.0 takes a repeat as soon as it is met
        // (acceptableRackRepeats), so n2 comes before n4; n3 is refused (repeats used up).
        let tm = ring(&[
            (1, 100, "dc1", "r1"),
            (2, 200, "dc1", "r1"),
            (3, 300, "dc1", "r1"),
            (4, 400, "dc1", "r2"),
        ]);
        let s = nts(&[("dc1", 3)]);
        assert_eq!(s.calculate_natural_replicas(50, &tm), eps(&[1, 2, 4]));
        // From 400: n4 (r2), n1 (r1, new), n2 (repeat) .
        assert_eq!(s.calculate_natural_replicas(350, &tm), eps(&[4, 1, 2]));
        // From 300: n3 (r1), n4 (r2), n1 (repeat).
        assert_eq!(s.calculate_natural_replicas(300, &tm), eps(&[3, 4, 1]));
    }

    #[test]
    fn nts_rack_repeat_skips_an_endpoint_already_chosen() {
        // Vnodes: n1 appears twice; the second time it is not a repeat to spend.
        let tm = ring(&[(1, 100, "dc1", "r1"), (1, 200, "dc1", "r1"), (2, 300, "dc1", "r1")]);
        assert_eq!(nts(&[("dc1", 2)]).calculate_natural_replicas(50, &tm), eps(&[1, 2]));
    }

    #[test]
    fn nts_two_dcs_fill_in_one_walk_in_ring_order() {
        let tm = ring(&[
            (1, 100, "dc1", "r1"),
            (4, 200, "dc2", "r1"),
            (2, 300, "dc1", "r2"),
            (5, 400, "dc2", "r1"),
            (3, 500, "dc1", "r3"),
            (6, 600, "dc2", "r2"),
        ]);
        // dc2's rack r1 is not dc1's r1. dc2 has 2 racks for rf 2: n5 (r1 repeat) is refused.
        let s = nts(&[("dc1", 2), ("dc2", 2)]);
        assert_eq!(s.calculate_natural_replicas(0, &tm), eps(&[1, 4, 2, 6]));
        assert_eq!(s.calculate_natural_replicas(250, &tm), eps(&[2, 5, 3, 6]));
        let s = nts(&[("dc1", 1), ("dc2", 3)]);
        assert_eq!(s.calculate_natural_replicas(450, &tm), eps(&[3, 6, 4, 5]));
    }

    #[test]
    fn nts_rf_above_node_count_takes_every_node_of_the_dc() {
        let tm = ring(&[(1, 100, "dc1", "r1"), (2, 200, "dc1", "r2"), (3, 300, "dc2", "r1")]);
        let s = nts(&[("dc1", 3), ("dc2", 1)]);
        assert_eq!(s.calculate_natural_replicas(150, &tm), eps(&[2, 3, 1]));
        let s = nts(&[("dc1", 5)]);
        assert_eq!(s.calculate_natural_replicas(250, &tm), eps(&[1, 2]));
    }

    #[test]
    fn nts_ignores_dcs_with_rf_zero_absent_or_empty() {
        let tm = ring(&[
            (1, 100, "dc1", "r1"),
            (2, 200, "dc2", "r1"),
            (3, 300, "dc1", "r2"),
            (4, 400, "dc3", "r1"),
        ]);
        let s = nts(&[("dc1", 2), ("dc2", 0), ("dc9", 3)]);
        assert_eq!(s.calculate_natural_replicas(150, &tm), eps(&[3, 1]));
        assert!(nts(&[("dc2", 0)]).calculate_natural_replicas(150, &tm).is_empty());
        assert!(nts(&[("dc1", 3)]).calculate_natural_replicas(0, &TokenMetadata::new()).is_empty());
    }

    #[test]
    fn nts_nodes_without_location_are_in_datacenter1_rack1() {
        let mut tm = TokenMetadata::new();
        tm.update_normal_tokens(ep(1), &[100]);
        tm.update_normal_tokens(ep(2), &[200]);
        let s = nts(&[("datacenter1", 3)]);
        assert_eq!(s.calculate_natural_replicas(150, &tm), eps(&[2, 1]));
    }

    #[test]
    fn effective_ownership_sums_to_replicas_per_range() {
        let tm = ring(&[
            (1, -4_000_000_000_000_000_000, "dc1", "r1"),
            (2, -1_000_000_000_000_000_000, "dc1", "r2"),
            (3, 2_000_000_000_000_000_000, "dc1", "r3"),
            (4, 5_000_000_000_000_000_000, "dc2", "r1"),
        ]);
        let total = |s: &ReplicationStrategy| tm.effective_ownership(s).values().sum::<f64>();
        assert!((total(&ReplicationStrategy::Simple { replication_factor: 3 }) - 3.0).abs() < 1e-9);
        assert!((total(&ReplicationStrategy::Simple { replication_factor: 9 }) - 4.0).abs() < 1e-9);
        assert!((total(&nts(&[("dc1", 2), ("dc2", 1)])) - 3.0).abs() < 1e-9);
        // dc2 has one node: it holds a replica of the whole ring.
        let own = tm.effective_ownership(&nts(&[("dc1", 2), ("dc2", 1)]));
        assert!((own[&ep(4)] - 1.0).abs() < 1e-12);
        let own = tm.effective_ownership(&nts(&[("dc1", 3)]));
        assert_eq!(own[&ep(4)], 0.0);
        assert!((own[&ep(1)] - 1.0).abs() < 1e-12);
        assert!(tm.effective_ownership(&ReplicationStrategy::Local).values().all(|v| *v == 0.0));
    }

    /// Random multi-dc, multi-rack rings with vnodes, built from a printed seed.
    fn random_ring(rng: &mut impl Rng) -> (TokenMetadata, BTreeMap<String, usize>) {
        let mut tm = TokenMetadata::new();
        let mut taken = BTreeSet::new();
        let mut node = 0u8;
        let mut dc_replication = BTreeMap::new();
        for dc in 0..rng.random_range(1..=3) {
            let dc_name = format!("dc{dc}");
            let racks = rng.random_range(1..=4);
            for _ in 0..rng.random_range(1..=8) {
                node += 1;
                let rack = format!("r{}", rng.random_range(0..racks));
                let tokens = random_tokens(rng.random_range(1..=8), rng, &taken);
                taken.extend(tokens.iter().copied());
                tm.set_location(ep(node), Location::new(dc_name.clone(), rack));
                tm.update_normal_tokens(ep(node), &tokens);
            }
            if rng.random_bool(0.9) {
                dc_replication.insert(dc_name, rng.random_range(0..=5));
            }
        }
        (tm, dc_replication)
    }

    #[test]
    fn nts_property_distinct_counts_per_dc_and_distinct_racks() {
        let seed = seed();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for case in 0..300 {
            let (tm, dc_replication) = random_ring(&mut rng);
            let strategy = ReplicationStrategy::NetworkTopology { dc_replication: dc_replication.clone() };
            let dcs = tm.dcs();
            for _ in 0..20 {
                let token: i64 = rng.random();
                let replicas = strategy.calculate_natural_replicas(token, &tm);
                let ctx = format!("seed {seed} case {case} token {token} {dc_replication:?} -> {replicas:?}");
                let unique: BTreeSet<_> = replicas.iter().collect();
                assert_eq!(unique.len(), replicas.len(), "duplicates: {ctx}");
                for (dc, racks) in &dcs {
                    let rf = dc_replication.get(dc).copied().unwrap_or(0);
                    let nodes: usize = racks.values().map(Vec::len).sum();
                    let in_dc: Vec<_> = replicas.iter().filter(|e| &tm.location(**e).dc == dc).collect();
                    assert_eq!(in_dc.len(), rf.min(nodes), "count in {dc}: {ctx}");
                    let racks_used: BTreeSet<_> = in_dc.iter().map(|e| &tm.location(**e).rack).collect();
                    if racks.len() >= rf {
                        assert_eq!(racks_used.len(), in_dc.len(), "rack repeat in {dc}: {ctx}");
                    } else {
                        assert_eq!(racks_used.len(), racks.len(), "a rack left out in {dc}: {ctx}");
                    }
                }
                // Every replica of a dc is a member of that dc; none elsewhere.
                assert!(replicas
                    .iter()
                    .all(|e| dc_replication.get(&tm.location(*e).dc).is_some_and(|rf| *rf > 0)));
            }
        }
    }

    #[test]
    fn simple_property_first_replica_is_primary_owner_and_count_is_capped() {
        let seed = seed();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for case in 0..200 {
            let (tm, _) = random_ring(&mut rng);
            let rf = rng.random_range(1..=6);
            let strategy = ReplicationStrategy::Simple { replication_factor: rf };
            let token: i64 = rng.random();
            let replicas = strategy.calculate_natural_replicas(token, &tm);
            let ctx = format!("seed {seed} case {case} token {token} rf {rf}");
            assert_eq!(replicas.len(), rf.min(tm.endpoints().len()), "{ctx}");
            assert_eq!(replicas.first().copied(), tm.primary_range_owner(token), "{ctx}");
            assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), replicas.len(), "{ctx}");
        }
    }
}
