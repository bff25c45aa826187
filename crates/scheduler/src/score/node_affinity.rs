//! Upstream's `NodeAffinity` score: the sum of the weights of the pod's
//! `preferredDuringSchedulingIgnoredDuringExecution` terms the node matches (empty and
//! zero-weight terms never count), normalized so the best node gets the maximum.

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::selectors;

pub fn score(pod: &Pod, node: &Node) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .into_iter()
        .flatten()
        .filter(|term| term.weight != 0)
        .filter(|term| selectors::term_matches(&term.preference, node) == Some(true))
        .map(|term| i64::from(term.weight))
        .sum()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, PodSpec, PreferredSchedulingTerm};

    use super::*;
    use crate::selectors::tests::{expressions, node, requirement};

    #[test]
    fn sums_the_weights_of_matching_preferences() {
        let prefer = |weight, key: &str| PreferredSchedulingTerm {
            weight,
            preference: expressions(vec![requirement(key, "Exists", &[])]),
        };
        let pod = Pod {
            spec: Some(PodSpec {
                affinity: Some(Affinity {
                    node_affinity: Some(NodeAffinity {
                        preferred_during_scheduling_ignored_during_execution: Some(vec![
                            prefer(10, "ssd"),
                            prefer(5, "gpu"),
                            prefer(0, "zone"),
                        ]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            score(&pod, &node("n", &[("ssd", ""), ("gpu", ""), ("zone", "a")])),
            15
        );
        assert_eq!(score(&pod, &node("n", &[("gpu", "")])), 5);
        assert_eq!(score(&pod, &node("n", &[])), 0);
        assert_eq!(score(&Pod::default(), &node("n", &[("ssd", "")])), 0);
    }
}
