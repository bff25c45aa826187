//! Upstream's `NodeResourcesFit` filter: the pod's requests must fit in the node's
//! allocatable less what the pods already on it request, and the node must take one more pod.
//! Every shortfall is a reason of its own (`Insufficient cpu`, `Too many pods`). As in
//! Kubernetes 1.33, the rejection is resolvable even when the node is too small altogether
//! (1.34 made that case unresolvable).

use super::{Plugin, Rejection, Verdict};
use crate::cache::NodeView;
use crate::resources::{CPU, EPHEMERAL_STORAGE, MEMORY, Resources};

pub const TOO_MANY_PODS: &str = "Too many pods";

pub fn filter(requests: &Resources, node: &NodeView<'_>) -> Verdict {
    let reasons = insufficient(requests, node);
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Rejection::resolvable(Plugin::NodeResourcesFit, reasons))
    }
}

/// The reasons the pod does not fit, empty when it does.
pub fn insufficient(requests: &Resources, node: &NodeView<'_>) -> Vec<String> {
    let mut reasons = Vec::new();
    let pods_on_node = i64::try_from(node.pods.pods.len()).unwrap_or(i64::MAX);
    if pods_on_node + 1 > node.allocatable.pods {
        reasons.push(TOO_MANY_PODS.to_owned());
    }
    if requests.is_empty() {
        return reasons;
    }
    let allocatable = &node.allocatable.resources;
    let requested = &node.pods.requested;
    let named = [CPU, MEMORY, EPHEMERAL_STORAGE].into_iter();
    let scalar = requests.scalar.keys().map(String::as_str);
    for name in named.chain(scalar) {
        let wanted = requests.get(name);
        if wanted > 0 && wanted > allocatable.get(name) - requested.get(name) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::Cache;
    use crate::cache::tests::{node_with, pod};
    use crate::resources::pod_requests;

    fn cache_with(allocatable: &[(&str, &str)], bound: &[&[(&str, &str)]]) -> Cache {
        let mut cache = Cache::default();
        cache.set_node(Arc::new(node_with("n1", allocatable)));
        for (i, requests) in bound.iter().enumerate() {
            cache.add_pod(Arc::new(pod(&format!("p{i}"), requests)), "n1");
        }
        cache
    }

    fn reasons(cache: &Cache, requests: &[(&str, &str)]) -> Vec<String> {
        insufficient(&pod_requests(&pod("new", requests)), &cache.nodes()[0])
    }

    #[test]
    fn requests_must_fit_in_what_bound_pods_leave() {
        let cache = cache_with(
            &[("cpu", "2"), ("memory", "4Gi"), ("pods", "10")],
            &[&[("cpu", "1500m"), ("memory", "1Gi")]],
        );
        assert!(reasons(&cache, &[("cpu", "500m"), ("memory", "3Gi")]).is_empty());
        assert_eq!(reasons(&cache, &[("cpu", "501m")]), ["Insufficient cpu"]);
        assert_eq!(
            reasons(&cache, &[("cpu", "1"), ("memory", "4Gi")]),
            ["Insufficient cpu", "Insufficient memory"]
        );
    }

    #[test]
    fn the_pod_count_limits_even_pods_without_requests() {
        let cache = cache_with(&[("cpu", "2"), ("pods", "1")], &[&[]]);
        assert_eq!(reasons(&cache, &[]), [TOO_MANY_PODS]);
        assert_eq!(
            reasons(&cache, &[("cpu", "4")]),
            [TOO_MANY_PODS, "Insufficient cpu"]
        );
        // A node that states no pod capacity takes no pod, as upstream.
        let silent = cache_with(&[("cpu", "2")], &[]);
        assert_eq!(reasons(&silent, &[]), [TOO_MANY_PODS]);
    }

    #[test]
    fn ephemeral_storage_and_extended_resources_count() {
        let cache = cache_with(
            &[
                ("pods", "10"),
                ("ephemeral-storage", "1Gi"),
                ("example.com/gpu", "1"),
            ],
            &[&[("example.com/gpu", "1")]],
        );
        assert_eq!(
            reasons(
                &cache,
                &[("ephemeral-storage", "2Gi"), ("example.com/gpu", "1")]
            ),
            [
                "Insufficient ephemeral-storage",
                "Insufficient example.com/gpu"
            ]
        );
        assert_eq!(
            reasons(&cache, &[("example.com/fpga", "1")]),
            ["Insufficient example.com/fpga"]
        );
        assert_eq!(
            filter(
                &pod_requests(&pod("new", &[("example.com/gpu", "1")])),
                &cache.nodes()[0]
            ),
            Err(Rejection::resolvable(
                Plugin::NodeResourcesFit,
                vec!["Insufficient example.com/gpu".into()]
            ))
        );
    }
}
