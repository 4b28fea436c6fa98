//! Which token ranges a repair covers and which replicas take part in each: a pure function of
//! the ring, the keyspace's replication and the operator's options.

use crate::endpoint::Endpoint;
use crate::repair::merkle::in_range;
use crate::replication::ReplicationStrategy;
use crate::ring::TokenMetadata;
use sibyl_engine::Token;

/// What `sibyltool repair` was asked to cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairScope {
    /// Every range this node replicates (the default).
    All,
    /// `-pr`: only the ranges this node is primary for (its own tokens' ranges). Running it on
    /// every node repairs each range once.
    PrimaryRange,
    /// `-st <start> -et <end>`: the subrange `(start, end]`, cut where ring tokens fall inside it.
    Subrange(i64, i64),
}

/// One range to repair and the replicas to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePlan {
    /// Start (exclusive).
    pub start: i64,
    /// End (inclusive).
    pub end: i64,
    /// The range's replicas, this node among them.
    pub replicas: Vec<Endpoint>,
}

/// The ranges `scope` covers with their replicas, in ring order. Every range includes `local`
/// among its replicas (a node repairs only what it holds, as in Cassandra).
///
/// # Errors
/// A message for the operator: an empty ring, an empty subrange, or a subrange that includes
/// ranges this node does not replicate.
pub fn plan_ranges(
    ring: &TokenMetadata,
    strategy: &ReplicationStrategy,
    local: Endpoint,
    scope: RepairScope,
) -> Result<Vec<RangePlan>, String> {
    if ring.is_empty() {
        return Err("the ring is empty: this node has not joined yet".into());
    }
    let replicas = |end: i64| strategy.natural_replicas(end, ring, local);
    let pieces: Vec<(i64, i64)> = match scope {
        RepairScope::All => ring
            .primary_ranges()
            .into_iter()
            .map(|(r, _)| r)
            .filter(|(_, end)| replicas(*end).contains(&local))
            .collect(),
        RepairScope::PrimaryRange => ring.ranges_of(local),
        RepairScope::Subrange(start, end) => {
            if start == end {
                return Err(format!("-st and -et are both {start}: the subrange is empty"));
            }
            let mut cuts: Vec<i64> = ring
                .sorted_tokens()
                .into_iter()
                .filter(|t| *t != end && in_range(Token(*t), start, end))
                .collect();
            cuts.sort_by_key(|t| t.wrapping_sub(start) as u64);
            let mut pieces = Vec::with_capacity(cuts.len() + 1);
            let mut at = start;
            for t in cuts {
                pieces.push((at, t));
                at = t;
            }
            pieces.push((at, end));
            if let Some((s, e)) = pieces.iter().find(|(_, e)| !replicas(*e).contains(&local)) {
                return Err(format!(
                    "the subrange ({start}, {end}] includes ({s}, {e}], which this node does not replicate; \
                     repair it from one of its replicas ({})",
                    replicas(*e).iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ));
            }
            pieces
        }
    };
    Ok(pieces.into_iter().map(|(start, end)| RangePlan { start, end, replicas: replicas(end) }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(i: u8) -> Endpoint {
        Endpoint(std::net::SocketAddr::from(([127, 0, 0, i], 7000)))
    }

    /// Four nodes with tokens 100, 200, 300, 400.
    fn ring() -> TokenMetadata {
        let mut tm = TokenMetadata::new();
        for i in 1..=4u8 {
            tm.update_normal_tokens(ep(i), &[i64::from(i) * 100]);
        }
        tm
    }

    #[test]
    fn all_ranges_are_those_the_node_replicates() {
        let rf2 = ReplicationStrategy::Simple { replication_factor: 2 };
        let plan = plan_ranges(&ring(), &rf2, ep(2), RepairScope::All).unwrap();
        // Node 2 (token 200) holds (100, 200] as primary and (400, 100] as the next replica.
        let ranges: Vec<(i64, i64)> = plan.iter().map(|p| (p.start, p.end)).collect();
        assert_eq!(ranges, vec![(400, 100), (100, 200)]);
        assert_eq!(plan[0].replicas, vec![ep(1), ep(2)]);
        assert_eq!(plan[1].replicas, vec![ep(2), ep(3)]);
        let pr = plan_ranges(&ring(), &rf2, ep(2), RepairScope::PrimaryRange).unwrap();
        assert_eq!(pr, vec![RangePlan { start: 100, end: 200, replicas: vec![ep(2), ep(3)] }]);
    }

    #[test]
    fn a_subrange_is_cut_at_ring_tokens_and_must_be_replicated_here() {
        let rf2 = ReplicationStrategy::Simple { replication_factor: 2 };
        let plan = plan_ranges(&ring(), &rf2, ep(2), RepairScope::Subrange(50, 150)).unwrap();
        let ranges: Vec<(i64, i64)> = plan.iter().map(|p| (p.start, p.end)).collect();
        assert_eq!(ranges, vec![(50, 100), (100, 150)]);
        // Ending on a ring token does not add an empty piece.
        let plan = plan_ranges(&ring(), &rf2, ep(2), RepairScope::Subrange(120, 200)).unwrap();
        assert_eq!(plan.len(), 1);
        let err = plan_ranges(&ring(), &rf2, ep(2), RepairScope::Subrange(150, 250)).unwrap_err();
        assert!(err.contains("(200, 250]"), "{err}");
        assert!(plan_ranges(&ring(), &rf2, ep(2), RepairScope::Subrange(7, 7)).is_err());
        // A wrapping subrange.
        let plan = plan_ranges(&ring(), &rf2, ep(1), RepairScope::Subrange(350, 50)).unwrap();
        let ranges: Vec<(i64, i64)> = plan.iter().map(|p| (p.start, p.end)).collect();
        assert_eq!(ranges, vec![(350, 400), (400, 50)]);
        assert!(plan_ranges(&TokenMetadata::new(), &rf2, ep(1), RepairScope::All).is_err());
    }
}
