//! What upstream's `DefaultPreemption` PostFilter says when no node fits. Preemption itself
//! (evicting lower-priority pods to make room) is not implemented; this module only works
//! out upstream's message: nodes rejected as unresolvable are not worth preempting on;
//! on the others, the pods of lower priority are the possible victims, and the node is a
//! candidate if the pod would fit once they are all gone.
//!
//! Where upstream would find a candidate (and then preempt), the message has no preemption
//! part: the pod stays pending here, and the condition says only why no node fits now.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use crate::cache::NodeView;
use crate::filter::{self, CycleState, Rejection};
use crate::schedule::Diagnosis;

pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const NEVER: &str = "preemption: not eligible due to preemptionPolicy=Never.";

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// The PostFilter message for a pod that fits nowhere, given each judged node's rejection
/// (`state` is `None` when the PreFilter rejected the pod).
pub fn post_filter_message(
    pod: &Pod,
    rejections: &BTreeMap<String, Rejection>,
    nodes: &[NodeView<'_>],
    state: Option<&CycleState<'_>>,
) -> Option<String> {
    let never = pod
        .spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref())
        == Some("Never");
    if never {
        return Some(NEVER.to_owned());
    }
    let incoming = priority(pod);
    let mut reasons = BTreeMap::new();
    for node in nodes {
        let Some(rejection) = rejections.get(node.name()) else {
            continue;
        };
        if rejection.unresolvable {
            continue;
        }
        let victims: Vec<&str> = node
            .pods
            .pods
            .iter()
            .filter(|(_, placed)| priority(&placed.pod) < incoming)
            .map(|(key, _)| key.as_str())
            .collect();
        if victims.is_empty() {
            reasons.insert(node.name().to_owned(), vec![NO_VICTIMS.to_owned()]);
            continue;
        }
        let state = state?;
        let emptied = node.pods.without(victims);
        let without_victims = NodeView {
            pods: &emptied,
            ..*node
        };
        match filter::filter(state, &without_victims) {
            // A candidate: upstream would preempt.
            Ok(()) => return None,
            Err(rejection) => {
                reasons.insert(node.name().to_owned(), rejection.reasons);
            }
        }
    }
    let diagnosis = Diagnosis {
        num_all_nodes: nodes.len(),
        reasons,
        others: vec![NOT_HELPFUL.to_owned()],
        prefilter_message: None,
    };
    Some(format!("preemption: {}", diagnosis.summary()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::Cache;
    use crate::cache::tests::{node_with, pod};
    use crate::filter::{NamespaceLabels, Plugin, prefilter};

    fn prioritized(name: &str, requests: &[(&str, &str)], priority: i32) -> Pod {
        let mut p = pod(name, requests);
        p.spec.get_or_insert_default().priority = Some(priority);
        p
    }

    fn message(cache: &Cache, incoming: &Pod) -> Option<String> {
        let nodes = cache.nodes();
        let state = prefilter(incoming, &nodes, &NamespaceLabels::new()).ok();
        let rejections: BTreeMap<String, Rejection> = nodes
            .iter()
            .filter_map(|n| {
                let state = state.as_ref()?;
                filter::filter(state, n)
                    .err()
                    .map(|r| (n.name().to_owned(), r))
            })
            .collect();
        post_filter_message(incoming, &rejections, &nodes, state.as_ref())
    }

    fn full_node(placed_priority: i32) -> Cache {
        let mut cache = Cache::default();
        cache.set_node(Arc::new(node_with("n1", &[("cpu", "1"), ("pods", "10")])));
        cache.add_pod(
            Arc::new(prioritized("low", &[("cpu", "1")], placed_priority)),
            "n1",
        );
        cache
    }

    #[test]
    fn equal_priorities_leave_no_victims() {
        let cache = full_node(0);
        assert_eq!(
            message(&cache, &prioritized("p", &[("cpu", "500m")], 0)).as_deref(),
            Some(
                "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
            )
        );
    }

    #[test]
    fn a_node_that_would_fit_without_its_victims_is_a_candidate() {
        let cache = full_node(-10);
        assert_eq!(
            message(&cache, &prioritized("p", &[("cpu", "500m")], 0)),
            None
        );
        // Too big even for the empty node: the filter's reason stays.
        assert_eq!(
            message(&cache, &prioritized("p", &[("cpu", "2")], 0)).as_deref(),
            Some("preemption: 0/1 nodes are available: 1 Insufficient cpu.")
        );
    }

    #[test]
    fn unresolvable_nodes_and_never_policies() {
        let cache = full_node(0);
        let mut rejections = BTreeMap::new();
        rejections.insert(
            "n1".to_owned(),
            Rejection::unresolvable(Plugin::NodeAffinity, "x"),
        );
        let nodes = cache.nodes();
        let p = pod("p", &[]);
        assert_eq!(
            post_filter_message(&p, &rejections, &nodes, None).as_deref(),
            Some(
                "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
            )
        );
        let mut never = pod("p", &[]);
        never.spec.get_or_insert_default().preemption_policy = Some("Never".into());
        assert_eq!(
            post_filter_message(&never, &rejections, &nodes, None).as_deref(),
            Some(NEVER)
        );
    }
}
