//! Upstream's resource scores, over CPU and memory with weight 1 each:
//! - `NodeResourcesFit` with `LeastAllocated`: the share of allocatable left free once the
//!   pod is placed, counting upstream's defaults for missing requests, so request-less pods
//!   spread too;
//! - `NodeResourcesBalancedAllocation`: how evenly CPU and memory would be used (one minus
//!   the standard deviation of the used fractions), from the real requests; skipped for pods
//!   that request neither, as upstream does since 1.32.

use crate::cache::NodeView;
use crate::resources::{CPU, MEMORY, Resources};

use super::MAX_NODE_SCORE;

const SCORED: [&str; 2] = [CPU, MEMORY];

/// `LeastAllocated` from the pod's requests with defaults for missing CPU and memory.
pub fn least_allocated(non_zero_requests: &Resources, node: &NodeView<'_>) -> i64 {
    let mut total = 0;
    let mut weights = 0;
    for name in SCORED {
        let allocatable = node.allocatable.resources.get(name);
        if allocatable == 0 {
            continue;
        }
        let requested = node.pods.non_zero_requested.get(name) + non_zero_requests.get(name);
        total += if requested > allocatable {
            0
        } else {
            (allocatable - requested) * MAX_NODE_SCORE / allocatable
        };
        weights += 1;
    }
    if weights == 0 { 0 } else { total / weights }
}

/// Whether the balanced allocation score applies: the pod requests CPU or memory.
pub fn balanced_allocation_applies(requests: &Resources) -> bool {
    SCORED.iter().any(|name| requests.get(name) != 0)
}

/// `BalancedAllocation` from the pod's real requests.
pub fn balanced_allocation(requests: &Resources, node: &NodeView<'_>) -> i64 {
    let fractions: Vec<f64> = SCORED
        .iter()
        .filter_map(|name| {
            let allocatable = node.allocatable.resources.get(name);
            if allocatable == 0 {
                return None;
            }
            let requested = node.pods.requested.get(name) + requests.get(name);
            Some((requested as f64 / allocatable as f64).min(1.0))
        })
        .collect();
    let deviation = match fractions.as_slice() {
        [a, b] => ((a - b) / 2.0).abs(),
        _ => 0.0,
    };
    ((1.0 - deviation) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::Cache;
    use crate::cache::tests::{node_with, pod};
    use crate::resources::{pod_non_zero_requests, pod_requests};

    fn cache(allocatable: &[(&str, &str)], bound: &[(&str, &str)]) -> Cache {
        let mut cache = Cache::default();
        cache.set_node(Arc::new(node_with("n1", allocatable)));
        cache.add_pod(Arc::new(pod("placed", bound)), "n1");
        cache
    }

    #[test]
    fn least_allocated_prefers_free_nodes() {
        let c = cache(
            &[("cpu", "4"), ("memory", "4Gi")],
            &[("cpu", "1"), ("memory", "1Gi")],
        );
        let p = pod("new", &[("cpu", "1"), ("memory", "1Gi")]);
        // Half of each left free.
        assert_eq!(
            least_allocated(&pod_non_zero_requests(&p), &c.nodes()[0]),
            50
        );
        let too_big = pod("new", &[("cpu", "8"), ("memory", "1Gi")]);
        assert_eq!(
            least_allocated(&pod_non_zero_requests(&too_big), &c.nodes()[0]),
            25
        );
    }

    #[test]
    fn least_allocated_counts_defaults_for_request_less_pods() {
        let c = cache(&[("cpu", "1"), ("memory", "1000Mi")], &[]);
        let p = pod("new", &[]);
        // Two request-less pods: 200m of 1 CPU (80 free), 400Mi of 1000Mi (60 free).
        assert_eq!(
            least_allocated(&pod_non_zero_requests(&p), &c.nodes()[0]),
            70
        );
    }

    #[test]
    fn balanced_allocation_prefers_even_use() {
        let c = cache(&[("cpu", "4"), ("memory", "4Gi")], &[("cpu", "1")]);
        let even = pod("new", &[("cpu", "1"), ("memory", "2Gi")]);
        assert_eq!(
            balanced_allocation(&pod_requests(&even), &c.nodes()[0]),
            100
        );
        let lopsided = pod("new", &[("cpu", "3")]);
        // CPU fully used (1.0), memory unused (0.0): deviation 0.5.
        assert_eq!(
            balanced_allocation(&pod_requests(&lopsided), &c.nodes()[0]),
            50
        );
        assert!(!balanced_allocation_applies(&pod_requests(&pod(
            "new",
            &[]
        ))));
        assert!(balanced_allocation_applies(&pod_requests(&even)));
    }
}
