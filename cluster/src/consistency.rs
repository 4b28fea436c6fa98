//! Consistency levels and the arithmetic of a request's replica plan.
//!
//! A consistency level says how many replicas must answer before the coordinator answers the
//! client. This module decides, as Cassandra 4.0's `ConsistencyLevel` and `ReplicaPlans` do:
//!
//! * how many answers a level needs ([`ConsistencyLevel::block_for`]): quorum is
//!   `total rf / 2 + 1`; `LOCAL_QUORUM` uses the local datacenter's factor under
//!   NetworkTopologyStrategy and the total otherwise; `EACH_QUORUM` needs a quorum of every
//!   datacenter; `ALL` is the total factor; `ANY` needs one acknowledgement, which may be a hint;
//! * whether enough replicas are alive to try ([`plan_write`], [`plan_read`]): otherwise the
//!   request fails at once with `Unavailable`, before any message is sent. Only live replicas of
//!   the local datacenter count for the `LOCAL_*` levels; `EACH_QUORUM` checks every datacenter;
//! * which replicas to contact: a write goes to every live replica (all datacenters, even for
//!   `LOCAL_*`: the level only decides whom to wait for); a read goes to the `block_for` closest
//!   live replicas (local datacenter only for `LOCAL_*`, a quorum from each datacenter for
//!   `EACH_QUORUM`).
//!
//! Everything here is a pure function of plain values: liveness, locations and proximity are
//! passed in as closures (the failure detector, the snitch, the dynamic snitch's scores).

use std::collections::BTreeMap;
use std::fmt;

use crate::endpoint::{Endpoint, Location};
use crate::replication::ReplicationStrategy;

/// A consistency level, with its CQL native protocol code (v4, section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConsistencyLevel {
    /// A write is acknowledged once stored anywhere, a hint included (writes only).
    Any,
    /// One replica.
    One,
    /// Two replicas.
    Two,
    /// Three replicas.
    Three,
    /// A majority of all replicas.
    Quorum,
    /// Every replica.
    All,
    /// A majority of the coordinator's datacenter's replicas.
    LocalQuorum,
    /// A majority of the replicas of every datacenter.
    EachQuorum,
    /// Paxos over a majority of all replicas (lightweight transactions).
    Serial,
    /// Paxos over a majority of the local datacenter's replicas.
    LocalSerial,
    /// One replica of the local datacenter.
    LocalOne,
}

impl ConsistencyLevel {
    /// Every level, in protocol-code order.
    pub const ALL_LEVELS: [ConsistencyLevel; 11] = [
        ConsistencyLevel::Any,
        ConsistencyLevel::One,
        ConsistencyLevel::Two,
        ConsistencyLevel::Three,
        ConsistencyLevel::Quorum,
        ConsistencyLevel::All,
        ConsistencyLevel::LocalQuorum,
        ConsistencyLevel::EachQuorum,
        ConsistencyLevel::Serial,
        ConsistencyLevel::LocalSerial,
        ConsistencyLevel::LocalOne,
    ];

    /// The level with this protocol code; `None` for an unknown code.
    #[must_use]
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL_LEVELS.get(usize::from(code)).copied()
    }

    /// The protocol code (`ANY` = 0x0000 ... `LOCAL_ONE` = 0x000A).
    #[must_use]
    pub fn code(self) -> u16 {
        match self {
            ConsistencyLevel::Any => 0x0000,
            ConsistencyLevel::One => 0x0001,
            ConsistencyLevel::Two => 0x0002,
            ConsistencyLevel::Three => 0x0003,
            ConsistencyLevel::Quorum => 0x0004,
            ConsistencyLevel::All => 0x0005,
            ConsistencyLevel::LocalQuorum => 0x0006,
            ConsistencyLevel::EachQuorum => 0x0007,
            ConsistencyLevel::Serial => 0x0008,
            ConsistencyLevel::LocalSerial => 0x0009,
            ConsistencyLevel::LocalOne => 0x000A,
        }
    }

    /// The name used by Cassandra, the protocol's error messages and cqlsh (`LOCAL_QUORUM`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ConsistencyLevel::Any => "ANY",
            ConsistencyLevel::One => "ONE",
            ConsistencyLevel::Two => "TWO",
            ConsistencyLevel::Three => "THREE",
            ConsistencyLevel::Quorum => "QUORUM",
            ConsistencyLevel::All => "ALL",
            ConsistencyLevel::LocalQuorum => "LOCAL_QUORUM",
            ConsistencyLevel::EachQuorum => "EACH_QUORUM",
            ConsistencyLevel::Serial => "SERIAL",
            ConsistencyLevel::LocalSerial => "LOCAL_SERIAL",
            ConsistencyLevel::LocalOne => "LOCAL_ONE",
        }
    }

    /// The level with this name, case-insensitive (cqlsh's `CONSISTENCY local_quorum`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL_LEVELS.iter().copied().find(|cl| cl.name().eq_ignore_ascii_case(name))
    }

    /// Whether only the coordinator's datacenter counts (`LOCAL_ONE`, `LOCAL_QUORUM`,
    /// `LOCAL_SERIAL`).
    #[must_use]
    pub fn is_datacenter_local(self) -> bool {
        matches!(
            self,
            ConsistencyLevel::LocalOne | ConsistencyLevel::LocalQuorum | ConsistencyLevel::LocalSerial
        )
    }

    /// Whether this is a Paxos level (`SERIAL`, `LOCAL_SERIAL`).
    #[must_use]
    pub fn is_serial(self) -> bool {
        matches!(self, ConsistencyLevel::Serial | ConsistencyLevel::LocalSerial)
    }

    /// How many replicas must answer, as Cassandra's `ConsistencyLevel.blockFor`.
    ///
    /// `local_dc` is the coordinator's datacenter. Under NetworkTopologyStrategy a local datacenter
    /// with no replicas still needs 1 for `LOCAL_QUORUM` (and so is unavailable), as in Cassandra.
    /// For `EACH_QUORUM` this is the sum of [`ConsistencyLevel::block_for_per_dc`].
    #[must_use]
    pub fn block_for(self, strategy: &ReplicationStrategy, local_dc: &str) -> usize {
        match self {
            ConsistencyLevel::Any | ConsistencyLevel::One | ConsistencyLevel::LocalOne => 1,
            ConsistencyLevel::Two => 2,
            ConsistencyLevel::Three => 3,
            ConsistencyLevel::Quorum | ConsistencyLevel::Serial => quorum_for(strategy),
            ConsistencyLevel::All => strategy.replication_factor_total(),
            ConsistencyLevel::LocalQuorum | ConsistencyLevel::LocalSerial => {
                local_quorum_for(strategy, local_dc)
            }
            ConsistencyLevel::EachQuorum => Self::block_for_per_dc(strategy, local_dc).values().sum(),
        }
    }

    /// The quorum each datacenter must reach for `EACH_QUORUM` (Cassandra's `eachQuorumFor*`):
    /// under NetworkTopologyStrategy every datacenter with replicas, its own quorum; under the
    /// other strategies, the local datacenter with the overall quorum.
    #[must_use]
    pub fn block_for_per_dc(strategy: &ReplicationStrategy, local_dc: &str) -> BTreeMap<String, usize> {
        match strategy {
            ReplicationStrategy::NetworkTopology { dc_replication } => dc_replication
                .iter()
                .filter(|(_, rf)| **rf > 0)
                .map(|(dc, rf)| (dc.clone(), rf / 2 + 1))
                .collect(),
            _ => BTreeMap::from([(local_dc.to_owned(), quorum_for(strategy))]),
        }
    }
}

impl fmt::Display for ConsistencyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn quorum_for(strategy: &ReplicationStrategy) -> usize {
    strategy.replication_factor_total() / 2 + 1
}

fn local_quorum_for(strategy: &ReplicationStrategy, dc: &str) -> usize {
    if strategy.is_network_topology() {
        strategy.replication_factor_in(dc) / 2 + 1
    } else {
        quorum_for(strategy)
    }
}

/// The replicas of one request and how many must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaPlan {
    /// The level asked for.
    pub consistency: ConsistencyLevel,
    /// The natural replicas of the token, in placement order.
    pub natural: Vec<Endpoint>,
    /// The live natural replicas: placement order for writes; for reads, closest first (local
    /// datacenter first for `LOCAL_*`).
    pub live: Vec<Endpoint>,
    /// The replicas to send the request to.
    pub contacts: Vec<Endpoint>,
    /// Answers to wait for (local-datacenter answers for `LOCAL_*`; for `EACH_QUORUM` the sum of
    /// the per-datacenter quorums, which must each be met).
    pub block_for: usize,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Too few replicas are alive for the level: the protocol's Unavailable error. For `LOCAL_*`
    /// `alive` counts the local datacenter's live replicas; for `EACH_QUORUM` both numbers are the
    /// first failing datacenter's (in datacenter-name order).
    #[error("Cannot achieve consistency level {consistency} (required {required}, alive {alive})")]
    Unavailable {
        /// The level asked for.
        consistency: ConsistencyLevel,
        /// Replicas the level needs.
        required: usize,
        /// Replicas alive among those that count.
        alive: usize,
    },
    /// The level cannot be used for this kind of request (an `InvalidRequest` for the client).
    #[error("{0}")]
    Invalid(String),
}

/// Plans a write: every live natural replica is contacted; fails with `Unavailable` when the live
/// replicas cannot satisfy `cl`.
///
/// `ANY` always succeeds (with `block_for` 1): a hint stored by the coordinator satisfies it, so
/// even zero live replicas are enough. `SERIAL` and `LOCAL_SERIAL` are refused, as Cassandra
/// refuses them for non-conditional writes.
pub fn plan_write(
    cl: ConsistencyLevel,
    strategy: &ReplicationStrategy,
    natural: Vec<Endpoint>,
    is_alive: impl Fn(Endpoint) -> bool,
    location: impl Fn(Endpoint) -> Location,
    local_dc: &str,
) -> Result<ReplicaPlan, PlanError> {
    if cl.is_serial() {
        return Err(PlanError::Invalid("You must use conditional updates for serializable writes".into()));
    }
    let live: Vec<Endpoint> = natural.iter().copied().filter(|&ep| is_alive(ep)).collect();
    let block_for = cl.block_for(strategy, local_dc);
    check_available(cl, cl, strategy, &live, &location, local_dc, block_for)?;
    Ok(ReplicaPlan { consistency: cl, natural, contacts: live.clone(), live, block_for })
}

/// Plans a write while nodes join or leave: `pending` are the nodes that will replicate the
/// token once the move completes (see [`crate::streaming::plan::pending_replicas`]). They are
/// contacted too, and, as in Cassandra, each one raises the number of acknowledgements needed
/// (for `LOCAL_*` levels only those of the local datacenter; `ANY`, `ONE`-like hint-backed
/// levels keep their floor), so a level's guarantee holds in both the old and the new ring.
pub fn plan_write_with_pending(
    cl: ConsistencyLevel,
    strategy: &ReplicationStrategy,
    natural: Vec<Endpoint>,
    pending: Vec<Endpoint>,
    is_alive: impl Fn(Endpoint) -> bool,
    location: impl Fn(Endpoint) -> Location,
    local_dc: &str,
) -> Result<ReplicaPlan, PlanError> {
    let mut plan = plan_write(cl, strategy, natural, &is_alive, &location, local_dc)?;
    if pending.is_empty() || cl == ConsistencyLevel::Any {
        return Ok(plan);
    }
    let counted: Vec<Endpoint> = pending
        .iter()
        .copied()
        .filter(|&ep| !cl.is_datacenter_local() || location(ep).dc == local_dc)
        .filter(|ep| !plan.natural.contains(ep))
        .collect();
    let live_pending: Vec<Endpoint> =
        pending.iter().copied().filter(|ep| !plan.natural.contains(ep) && is_alive(*ep)).collect();
    plan.live.extend(live_pending.iter().copied());
    plan.contacts.extend(live_pending.iter().copied());
    if cl != ConsistencyLevel::EachQuorum {
        plan.block_for += counted.len();
        let alive =
            plan.live.iter().filter(|&&ep| !cl.is_datacenter_local() || location(ep).dc == local_dc).count();
        if alive < plan.block_for {
            return Err(PlanError::Unavailable { consistency: cl, required: plan.block_for, alive });
        }
    }
    Ok(plan)
}

/// Plans a read: the live replicas sorted by `proximity` (lower is closer; ties keep placement
/// order), of which the first `block_for` are contacted; fails with `Unavailable` when the live
/// replicas cannot satisfy `cl`.
///
/// For `LOCAL_*` the local datacenter's replicas sort first and only they are contacted; for
/// `EACH_QUORUM` under NetworkTopologyStrategy the closest quorum of every datacenter is
/// contacted. `SERIAL` / `LOCAL_SERIAL` are counted as `QUORUM` / `LOCAL_QUORUM` (the plan keeps
/// the level asked for). `ANY` is invalid for reads.
pub fn plan_read(
    cl: ConsistencyLevel,
    strategy: &ReplicationStrategy,
    natural: Vec<Endpoint>,
    is_alive: impl Fn(Endpoint) -> bool,
    location: impl Fn(Endpoint) -> Location,
    local_dc: &str,
    proximity: impl Fn(Endpoint) -> u32,
) -> Result<ReplicaPlan, PlanError> {
    let effective = match cl {
        ConsistencyLevel::Any => {
            return Err(PlanError::Invalid("ANY ConsistencyLevel is only supported for writes".into()));
        }
        ConsistencyLevel::Serial => ConsistencyLevel::Quorum,
        ConsistencyLevel::LocalSerial => ConsistencyLevel::LocalQuorum,
        other => other,
    };
    let local_only = effective.is_datacenter_local();
    let mut live: Vec<(bool, u32, Endpoint)> = natural
        .iter()
        .copied()
        .filter(|&ep| is_alive(ep))
        .map(|ep| (local_only && location(ep).dc != local_dc, proximity(ep), ep))
        .collect();
    // Stable: equal distances keep placement order.
    live.sort_by_key(|&(remote, distance, _)| (remote, distance));
    let live: Vec<Endpoint> = live.into_iter().map(|(_, _, ep)| ep).collect();

    let block_for = effective.block_for(strategy, local_dc);
    check_available(cl, effective, strategy, &live, &location, local_dc, block_for)?;

    let contacts = if effective == ConsistencyLevel::EachQuorum && strategy.is_network_topology() {
        let mut wanted = ConsistencyLevel::block_for_per_dc(strategy, local_dc);
        live.iter()
            .copied()
            .filter(|&ep| match wanted.get_mut(&location(ep).dc) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            })
            .collect()
    } else if local_only {
        live.iter().copied().filter(|&ep| location(ep).dc == local_dc).take(block_for).collect()
    } else {
        live.iter().copied().take(block_for).collect()
    };
    Ok(ReplicaPlan { consistency: cl, natural, live, contacts, block_for })
}

/// Cassandra's `assureSufficientLiveReplicas`: `reported` is the level named in the error,
/// `effective` the one whose rules apply.
fn check_available(
    reported: ConsistencyLevel,
    effective: ConsistencyLevel,
    strategy: &ReplicationStrategy,
    live: &[Endpoint],
    location: &impl Fn(Endpoint) -> Location,
    local_dc: &str,
    block_for: usize,
) -> Result<(), PlanError> {
    let unavailable = |required, alive| PlanError::Unavailable { consistency: reported, required, alive };
    let count_in = |dc: &str| live.iter().filter(|&&ep| location(ep).dc == dc).count();
    match effective {
        // The coordinator can always store a hint.
        ConsistencyLevel::Any => Ok(()),
        ConsistencyLevel::LocalOne | ConsistencyLevel::LocalQuorum | ConsistencyLevel::LocalSerial => {
            let alive = count_in(local_dc);
            if alive < block_for {
                return Err(unavailable(block_for, alive));
            }
            Ok(())
        }
        ConsistencyLevel::EachQuorum if strategy.is_network_topology() => {
            for (dc, required) in ConsistencyLevel::block_for_per_dc(strategy, local_dc) {
                let alive = count_in(&dc);
                if alive < required {
                    return Err(unavailable(required, alive));
                }
            }
            Ok(())
        }
        _ => {
            if live.len() < block_for {
                return Err(unavailable(block_for, live.len()));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};
    use ConsistencyLevel as CL;

    fn ep(n: u8) -> Endpoint {
        Endpoint(SocketAddr::from((Ipv4Addr::new(127, 0, 0, n), 7000)))
    }

    fn eps(ns: &[u8]) -> Vec<Endpoint> {
        ns.iter().map(|&n| ep(n)).collect()
    }

    fn simple(rf: usize) -> ReplicationStrategy {
        ReplicationStrategy::Simple { replication_factor: rf }
    }

    fn nts(dcs: &[(&str, usize)]) -> ReplicationStrategy {
        ReplicationStrategy::NetworkTopology {
            dc_replication: dcs.iter().map(|(dc, rf)| ((*dc).to_owned(), *rf)).collect(),
        }
    }

    /// Nodes 1-9 are in dc1, 10 and up in dc2.
    fn loc(e: Endpoint) -> Location {
        let std::net::IpAddr::V4(ip) = e.0.ip() else { unreachable!() };
        if ip.octets()[3] < 10 {
            Location::new("dc1", "r1")
        } else {
            Location::new("dc2", "r1")
        }
    }

    fn alive(ns: &'static [u8]) -> impl Fn(Endpoint) -> bool {
        move |e| ns.iter().any(|&n| ep(n) == e)
    }

    fn unavailable(consistency: CL, required: usize, alive: usize) -> PlanError {
        PlanError::Unavailable { consistency, required, alive }
    }

    #[test]
    fn codes_and_names_round_trip() {
        for (i, cl) in CL::ALL_LEVELS.iter().enumerate() {
            assert_eq!(usize::from(cl.code()), i);
            assert_eq!(CL::from_code(cl.code()), Some(*cl));
            assert_eq!(CL::from_name(cl.name()), Some(*cl));
            assert_eq!(CL::from_name(&cl.name().to_lowercase()), Some(*cl));
        }
        assert_eq!(CL::LocalQuorum.code(), 6);
        assert_eq!(CL::LocalOne.code(), 0x0A);
        assert_eq!(CL::from_code(0x000B), None);
        assert_eq!(CL::from_code(u16::MAX), None);
        assert_eq!(CL::LocalQuorum.to_string(), "LOCAL_QUORUM");
        assert_eq!(CL::from_name("QUORUMS"), None);
    }

    #[test]
    fn datacenter_local_levels() {
        let local: Vec<_> = CL::ALL_LEVELS.into_iter().filter(|cl| cl.is_datacenter_local()).collect();
        assert_eq!(local, vec![CL::LocalQuorum, CL::LocalSerial, CL::LocalOne]);
    }

    #[test]
    fn block_for_every_level_and_strategy() {
        // Columns: ANY ONE TWO THREE QUORUM ALL LOCAL_QUORUM EACH_QUORUM SERIAL LOCAL_SERIAL LOCAL_ONE
        let table: [(ReplicationStrategy, &str, [usize; 11]); 8] = [
            (simple(1), "dc1", [1, 1, 2, 3, 1, 1, 1, 1, 1, 1, 1]),
            (simple(2), "dc1", [1, 1, 2, 3, 2, 2, 2, 2, 2, 2, 1]),
            (simple(3), "dc1", [1, 1, 2, 3, 2, 3, 2, 2, 2, 2, 1]),
            (simple(5), "dc1", [1, 1, 2, 3, 3, 5, 3, 3, 3, 3, 1]),
            (nts(&[("dc1", 3), ("dc2", 2)]), "dc1", [1, 1, 2, 3, 3, 5, 2, 4, 3, 2, 1]),
            (nts(&[("dc1", 3), ("dc2", 2)]), "dc2", [1, 1, 2, 3, 3, 5, 2, 4, 3, 2, 1]),
            // A local dc without replicas: LOCAL_QUORUM needs 0 / 2 + 1.
            (nts(&[("dc1", 3), ("dc2", 2)]), "dc3", [1, 1, 2, 3, 3, 5, 1, 4, 3, 1, 1]),
            (ReplicationStrategy::Local, "dc1", [1, 1, 2, 3, 1, 1, 1, 1, 1, 1, 1]),
        ];
        for (strategy, local_dc, expected) in table {
            for (cl, want) in CL::ALL_LEVELS.into_iter().zip(expected) {
                assert_eq!(cl.block_for(&strategy, local_dc), want, "{cl} {strategy:?} local {local_dc}");
            }
        }
        let per_dc = CL::block_for_per_dc(&nts(&[("dc1", 3), ("dc2", 2), ("dc3", 0)]), "dc1");
        assert_eq!(per_dc, BTreeMap::from([("dc1".to_owned(), 2), ("dc2".to_owned(), 2)]));
        assert_eq!(CL::block_for_per_dc(&simple(3), "dc9"), BTreeMap::from([("dc9".to_owned(), 2)]));
    }

    #[test]
    fn quorum_write_with_one_of_three_alive_is_unavailable() {
        let r = plan_write(CL::Quorum, &simple(3), eps(&[1, 2, 3]), alive(&[2]), loc, "dc1");
        assert_eq!(r, Err(unavailable(CL::Quorum, 2, 1)));
        let plan = plan_write(CL::Quorum, &simple(3), eps(&[1, 2, 3]), alive(&[1, 3]), loc, "dc1").unwrap();
        assert_eq!(plan.contacts, eps(&[1, 3]));
        assert_eq!(plan.live, eps(&[1, 3]));
        assert_eq!(plan.natural, eps(&[1, 2, 3]));
        assert_eq!(plan.block_for, 2);
    }

    #[test]
    fn all_write_with_two_of_three_alive_is_unavailable() {
        let r = plan_write(CL::All, &simple(3), eps(&[1, 2, 3]), alive(&[1, 2]), loc, "dc1");
        assert_eq!(r, Err(unavailable(CL::All, 3, 2)));
        // Fewer nodes than the factor: ALL can never be met.
        let r = plan_write(CL::All, &simple(3), eps(&[1, 2]), alive(&[1, 2]), loc, "dc1");
        assert_eq!(r, Err(unavailable(CL::All, 3, 2)));
    }

    #[test]
    fn two_and_three_need_that_many_live_replicas() {
        let r = plan_write(CL::Three, &simple(3), eps(&[1, 2, 3]), alive(&[1, 2]), loc, "dc1");
        assert_eq!(r, Err(unavailable(CL::Three, 3, 2)));
        let r = plan_write(CL::Two, &simple(1), eps(&[1]), alive(&[1]), loc, "dc1");
        assert_eq!(r, Err(unavailable(CL::Two, 2, 1)));
        assert!(plan_write(CL::Two, &simple(3), eps(&[1, 2, 3]), alive(&[1, 2]), loc, "dc1").is_ok());
    }

    #[test]
    fn pending_replicas_are_contacted_and_raise_the_acknowledgements_needed() {
        let s = simple(3);
        // Node 4 is joining: QUORUM needs 2 + 1 of the 4.
        let plan = plan_write_with_pending(
            CL::Quorum,
            &s,
            eps(&[1, 2, 3]),
            eps(&[4]),
            alive(&[1, 2, 3, 4]),
            loc,
            "dc1",
        )
        .unwrap();
        assert_eq!(plan.contacts, eps(&[1, 2, 3, 4]));
        assert_eq!(plan.natural, eps(&[1, 2, 3]), "hints are for natural replicas only");
        assert_eq!(plan.block_for, 3);
        // Two natural replicas down: the old ring's quorum is already lost.
        let r =
            plan_write_with_pending(CL::Quorum, &s, eps(&[1, 2, 3]), eps(&[4]), alive(&[1, 4]), loc, "dc1");
        assert_eq!(r, Err(unavailable(CL::Quorum, 2, 1)));
        // One natural replica and the pending one down: 2 live of the 3 needed.
        let r =
            plan_write_with_pending(CL::Quorum, &s, eps(&[1, 2, 3]), eps(&[4]), alive(&[1, 2]), loc, "dc1");
        assert_eq!(r, Err(unavailable(CL::Quorum, 3, 2)));
        // A pending node that is down still counts in block_for, so QUORUM needs every other one.
        let plan = plan_write_with_pending(
            CL::Quorum,
            &s,
            eps(&[1, 2, 3]),
            eps(&[4]),
            alive(&[1, 2, 3]),
            loc,
            "dc1",
        )
        .unwrap();
        assert_eq!((plan.contacts.len(), plan.block_for), (3, 3));
        // ANY keeps its floor of one; no pending is the plain plan.
        let plan =
            plan_write_with_pending(CL::Any, &s, eps(&[1, 2, 3]), eps(&[4]), alive(&[]), loc, "dc1").unwrap();
        assert_eq!(plan.block_for, 1);
        let plain = plan_write(CL::One, &s, eps(&[1, 2, 3]), alive(&[1, 2, 3]), loc, "dc1").unwrap();
        let same =
            plan_write_with_pending(CL::One, &s, eps(&[1, 2, 3]), vec![], alive(&[1, 2, 3]), loc, "dc1");
        assert_eq!(same, Ok(plain));
    }

    #[test]
    fn any_write_succeeds_with_no_live_replica() {
        let plan = plan_write(CL::Any, &simple(3), eps(&[1, 2, 3]), alive(&[]), loc, "dc1").unwrap();
        assert!(plan.contacts.is_empty());
        assert_eq!(plan.block_for, 1);
    }

    #[test]
    fn local_quorum_write_counts_only_the_local_dc() {
        let s = nts(&[("dc1", 3), ("dc2", 3)]);
        let natural = eps(&[1, 10, 2, 11, 3, 12]);
        // dc1 has one live replica, dc2 three: five alive overall, but only one counts.
        let r = plan_write(CL::LocalQuorum, &s, natural.clone(), alive(&[1, 10, 11, 12]), loc, "dc1");
        assert_eq!(r, Err(unavailable(CL::LocalQuorum, 2, 1)));
        let r = plan_write(CL::LocalOne, &s, natural.clone(), alive(&[10, 11, 12]), loc, "dc1");
        assert_eq!(r, Err(unavailable(CL::LocalOne, 1, 0)));
        // Same liveness from dc2's point of view is fine, and every live replica is written.
        let plan = plan_write(CL::LocalQuorum, &s, natural, alive(&[1, 10, 11, 12]), loc, "dc2").unwrap();
        assert_eq!(plan.contacts, eps(&[1, 10, 11, 12]));
        assert_eq!(plan.block_for, 2);
    }

    #[test]
    fn each_quorum_write_reports_the_first_failing_dc() {
        let s = nts(&[("dc1", 3), ("dc2", 3)]);
        let natural = eps(&[1, 10, 2, 11, 3, 12]);
        let r = plan_write(CL::EachQuorum, &s, natural.clone(), alive(&[1, 2, 3, 10]), loc, "dc1");
        assert_eq!(r, Err(unavailable(CL::EachQuorum, 2, 1)));
        // Five alive is more than the total of 4, but dc1 has only one.
        let r = plan_write(CL::EachQuorum, &s, natural.clone(), alive(&[1, 10, 11, 12]), loc, "dc2");
        assert_eq!(r, Err(unavailable(CL::EachQuorum, 2, 1)));
        let plan = plan_write(CL::EachQuorum, &s, natural, alive(&[1, 2, 10, 11]), loc, "dc1").unwrap();
        assert_eq!(plan.block_for, 4);
    }

    #[test]
    fn serial_levels_are_invalid_for_plain_writes() {
        for cl in [CL::Serial, CL::LocalSerial] {
            let r = plan_write(cl, &simple(3), eps(&[1, 2, 3]), alive(&[1, 2, 3]), loc, "dc1");
            assert!(matches!(r, Err(PlanError::Invalid(_))), "{cl}");
        }
    }

    #[test]
    fn any_read_is_invalid() {
        let r = plan_read(CL::Any, &simple(3), eps(&[1, 2, 3]), alive(&[1, 2, 3]), loc, "dc1", |_| 0);
        assert!(matches!(r, Err(PlanError::Invalid(m)) if m.contains("ANY")));
    }

    #[test]
    fn read_contacts_the_closest_block_for_live_replicas() {
        let distance = |e: Endpoint| match e {
            e if e == ep(3) => 1,
            e if e == ep(1) => 5,
            _ => 9,
        };
        let plan =
            plan_read(CL::Quorum, &simple(3), eps(&[1, 2, 3]), alive(&[1, 2, 3]), loc, "dc1", distance)
                .unwrap();
        assert_eq!(plan.live, eps(&[3, 1, 2]));
        assert_eq!(plan.contacts, eps(&[3, 1]));
        assert_eq!(plan.block_for, 2);
        let plan =
            plan_read(CL::One, &simple(3), eps(&[1, 2, 3]), alive(&[1, 2]), loc, "dc1", distance).unwrap();
        assert_eq!(plan.contacts, eps(&[1]));
        // Equal distances keep placement order.
        let plan =
            plan_read(CL::Two, &simple(3), eps(&[2, 3, 1]), alive(&[1, 2, 3]), loc, "dc1", |_| 0).unwrap();
        assert_eq!(plan.contacts, eps(&[2, 3]));
    }

    #[test]
    fn quorum_read_with_one_of_three_alive_is_unavailable() {
        let r = plan_read(CL::Quorum, &simple(3), eps(&[1, 2, 3]), alive(&[3]), loc, "dc1", |_| 0);
        assert_eq!(r, Err(unavailable(CL::Quorum, 2, 1)));
        let r = plan_read(CL::All, &simple(3), eps(&[1, 2, 3]), alive(&[1, 3]), loc, "dc1", |_| 0);
        assert_eq!(r, Err(unavailable(CL::All, 3, 2)));
    }

    #[test]
    fn local_quorum_read_contacts_only_the_local_dc() {
        let s = nts(&[("dc1", 3), ("dc2", 3)]);
        let natural = eps(&[10, 1, 11, 2, 12, 3]);
        // The remote replicas are "closer" by score, but LOCAL_* sorts the local dc first.
        let distance = |e: Endpoint| if loc(e).dc == "dc2" { 0 } else { 10 };
        let plan = plan_read(
            CL::LocalQuorum,
            &s,
            natural.clone(),
            alive(&[1, 2, 3, 10, 11, 12]),
            loc,
            "dc1",
            distance,
        )
        .unwrap();
        assert_eq!(plan.live, eps(&[1, 2, 3, 10, 11, 12]));
        assert_eq!(plan.contacts, eps(&[1, 2]));
        assert_eq!(plan.block_for, 2);
        let r =
            plan_read(CL::LocalQuorum, &s, natural.clone(), alive(&[1, 10, 11, 12]), loc, "dc1", distance);
        assert_eq!(r, Err(unavailable(CL::LocalQuorum, 2, 1)));
        let plan =
            plan_read(CL::LocalOne, &s, natural.clone(), alive(&[3, 10]), loc, "dc1", distance).unwrap();
        assert_eq!(plan.contacts, eps(&[3]));
        // Not datacenter-local: the closest replicas win wherever they are.
        let plan =
            plan_read(CL::Quorum, &s, natural, alive(&[1, 2, 3, 10, 11, 12]), loc, "dc1", distance).unwrap();
        assert_eq!(plan.contacts, eps(&[10, 11, 12, 1]));
    }

    #[test]
    fn serial_reads_count_as_quorum_and_report_the_level_asked() {
        let s = nts(&[("dc1", 3), ("dc2", 2)]);
        let natural = eps(&[1, 2, 3, 10, 11]);
        let plan =
            plan_read(CL::Serial, &s, natural.clone(), alive(&[1, 2, 3, 10, 11]), loc, "dc1", |_| 0).unwrap();
        assert_eq!(plan.block_for, 3);
        assert_eq!(plan.consistency, CL::Serial);
        let r = plan_read(CL::LocalSerial, &s, natural, alive(&[1, 10, 11]), loc, "dc1", |_| 0);
        assert_eq!(r, Err(unavailable(CL::LocalSerial, 2, 1)));
    }

    #[test]
    fn each_quorum_read_contacts_a_quorum_in_every_dc() {
        let s = nts(&[("dc1", 3), ("dc2", 3)]);
        let natural = eps(&[1, 10, 2, 11, 3, 12]);
        let distance = |e: Endpoint| u32::from(e != ep(1));
        let plan = plan_read(
            CL::EachQuorum,
            &s,
            natural.clone(),
            alive(&[1, 2, 3, 10, 11, 12]),
            loc,
            "dc1",
            distance,
        )
        .unwrap();
        assert_eq!(plan.block_for, 4);
        assert_eq!(plan.contacts, eps(&[1, 10, 2, 11]));
        let r = plan_read(CL::EachQuorum, &s, natural, alive(&[1, 2, 3, 12]), loc, "dc1", distance);
        assert_eq!(r, Err(unavailable(CL::EachQuorum, 2, 1)));
        // Under SimpleStrategy EACH_QUORUM is a plain quorum.
        let plan = plan_read(CL::EachQuorum, &simple(3), eps(&[1, 2, 3]), alive(&[1, 2]), loc, "dc1", |_| 0)
            .unwrap();
        assert_eq!(plan.contacts, eps(&[1, 2]));
    }
}
