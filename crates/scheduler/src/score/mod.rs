//! Scoring the nodes that passed the filters, as upstream's default profile does: each
//! plugin scores every node from 0 to 100 (normalizing its raw scores where upstream does),
//! the scores are weighted and summed, and the best node wins, ties broken at random.
//!
//! Implemented, with upstream's weights: `TaintToleration` (3), `NodeAffinity` (2),
//! `NodeResourcesFit` with the `LeastAllocated` strategy (1) and
//! `NodeResourcesBalancedAllocation` (1). Not yet: `PodTopologySpread` (2),
//! `InterPodAffinity` (2), `ImageLocality` (1) and `VolumeBinding` (1).

pub mod node_affinity;
pub mod resources;
pub mod taints;

use rand::Rng;

use crate::cache::NodeView;
use crate::filter::CycleState;

/// The best score a plugin gives a node.
pub const MAX_NODE_SCORE: i64 = 100;

const TAINT_TOLERATION_WEIGHT: i64 = 3;
const NODE_AFFINITY_WEIGHT: i64 = 2;
const RESOURCES_FIT_WEIGHT: i64 = 1;
const BALANCED_ALLOCATION_WEIGHT: i64 = 1;

/// Each node's total score, in the order of `nodes`.
pub fn score(state: &CycleState<'_>, nodes: &[NodeView<'_>]) -> Vec<i64> {
    let mut taints: Vec<i64> = nodes.iter().map(|n| taints::score(state.pod, n)).collect();
    normalize(&mut taints, true);
    let mut affinity: Vec<i64> = nodes
        .iter()
        .map(|n| node_affinity::score(state.pod, n.node))
        .collect();
    normalize(&mut affinity, false);
    let balanced_applies = resources::balanced_allocation_applies(&state.requests);
    nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let balanced = if balanced_applies {
                resources::balanced_allocation(&state.requests, node)
            } else {
                0
            };
            TAINT_TOLERATION_WEIGHT * taints[i]
                + NODE_AFFINITY_WEIGHT * affinity[i]
                + RESOURCES_FIT_WEIGHT * resources::least_allocated(&state.non_zero_requests, node)
                + BALANCED_ALLOCATION_WEIGHT * balanced
        })
        .collect()
}

/// Upstream's `DefaultNormalizeScore`: scales raw scores so the highest becomes
/// [`MAX_NODE_SCORE`]; `reverse` turns it around (a lower raw score is better). All zeros
/// stay zeros, or all become the maximum when reversed.
pub fn normalize(scores: &mut [i64], reverse: bool) {
    let highest = scores.iter().copied().max().unwrap_or(0).max(0);
    for score in scores.iter_mut() {
        let scaled = if highest == 0 {
            0
        } else {
            MAX_NODE_SCORE * *score / highest
        };
        *score = if reverse {
            MAX_NODE_SCORE - scaled
        } else {
            scaled
        };
    }
}

/// The index of a highest total, chosen uniformly at random among equals (upstream's
/// `selectHost`); `None` for no nodes.
pub fn select_best(totals: &[i64], rng: &mut impl Rng) -> Option<usize> {
    let best = *totals.iter().max()?;
    let tied: Vec<usize> = (0..totals.len()).filter(|&i| totals[i] == best).collect();
    tied.get(rng.random_range(0..tied.len())).copied()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn normalizing_scales_to_the_highest_and_reverses() {
        let mut raw = vec![0, 5, 10];
        normalize(&mut raw, false);
        assert_eq!(raw, [0, 50, 100]);
        let mut raw = vec![0, 1, 2];
        normalize(&mut raw, true);
        assert_eq!(raw, [100, 50, 0]);
        let mut zeros = vec![0, 0];
        normalize(&mut zeros, true);
        assert_eq!(zeros, [100, 100]);
        let mut zeros = vec![0, 0];
        normalize(&mut zeros, false);
        assert_eq!(zeros, [0, 0]);
    }

    #[test]
    fn the_best_total_wins_and_ties_are_broken_at_random() {
        let mut rng = StdRng::seed_from_u64(7);
        assert_eq!(select_best(&[1, 9, 3], &mut rng), Some(1));
        assert_eq!(select_best(&[], &mut rng), None);
        let mut seen = [false; 3];
        for _ in 0..200 {
            if let Some(i) = select_best(&[5, 2, 5], &mut rng) {
                seen[i] = true;
            }
        }
        assert_eq!(seen, [true, false, true]);
    }
}
