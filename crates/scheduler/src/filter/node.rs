//! The filters that look at the node alone: upstream's `NodeUnschedulable`,
//! `TaintToleration` and `NodeAffinity` (with its PreFilter that narrows the search to the
//! nodes a `matchFields` term names). All three reject as unresolvable: evicting pods does
//! not change a node's labels or taints.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Pod, Taint};

use super::{Plugin, Rejection, Verdict};
use crate::cache::NodeView;
use crate::selectors::{self, RequiredNodeAffinity};

pub const UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// The taint a cordoned node is treated as having: tolerating it lets a pod onto the node
/// anyway (DaemonSet pods do).
pub const UNSCHEDULABLE_TAINT_KEY: &str = "node.kubernetes.io/unschedulable";
pub const AFFINITY_MISMATCH: &str = "node(s) didn't match Pod's node affinity/selector";
pub const AFFINITY_CONFLICT: &str = "pod affinity terms conflict";

/// `NodeUnschedulable`: a cordoned node (`spec.unschedulable`) takes only pods that tolerate
/// `node.kubernetes.io/unschedulable:NoSchedule`.
pub fn unschedulable(pod: &Pod, node: &NodeView<'_>) -> Verdict {
    let cordoned = node.node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
    let cordon_taint = Taint {
        key: UNSCHEDULABLE_TAINT_KEY.to_owned(),
        effect: "NoSchedule".to_owned(),
        value: None,
        time_added: None,
    };
    if cordoned && !selectors::any_tolerates(selectors::pod_tolerations(pod), &cordon_taint) {
        return Err(Rejection::unresolvable(
            Plugin::NodeUnschedulable,
            UNSCHEDULABLE,
        ));
    }
    Ok(())
}

/// `TaintToleration`: the node's first `NoSchedule` or `NoExecute` taint the pod does not
/// tolerate rejects it (`PreferNoSchedule` taints only lower the score).
pub fn taints(pod: &Pod, node: &NodeView<'_>) -> Verdict {
    let tolerations = selectors::pod_tolerations(pod);
    let untolerated = selectors::node_taints(node.node).iter().find(|taint| {
        matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !selectors::any_tolerates(tolerations, taint)
    });
    match untolerated {
        Some(taint) => Err(Rejection::unresolvable(
            Plugin::TaintToleration,
            format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key,
                taint.value.as_deref().unwrap_or("")
            ),
        )),
        None => Ok(()),
    }
}

/// `NodeAffinity`: `spec.nodeSelector` and the required node affinity must both match.
pub fn affinity(required: &RequiredNodeAffinity<'_>, node: &NodeView<'_>) -> Verdict {
    if required.matches(node.node) {
        Ok(())
    } else {
        Err(Rejection::unresolvable(
            Plugin::NodeAffinity,
            AFFINITY_MISMATCH,
        ))
    }
}

/// `NodeAffinity`'s PreFilter: when every required term names nodes through
/// `matchFields: metadata.name In`, only those nodes need trying (DaemonSet pods are pinned
/// this way). `None` means every node; terms naming no node in common reject the pod.
pub fn prefilter_node_names(
    required: &RequiredNodeAffinity<'_>,
) -> Result<Option<BTreeSet<String>>, Rejection> {
    let Some(terms) = required.terms() else {
        return Ok(None);
    };
    let mut names: Option<BTreeSet<String>> = None;
    for term in terms {
        let mut term_names: Option<BTreeSet<String>> = None;
        for field in term.match_fields.iter().flatten() {
            if field.key != "metadata.name" || field.operator != "In" {
                continue;
            }
            let values: BTreeSet<String> = field.values.iter().flatten().cloned().collect();
            term_names = Some(match term_names {
                None => values,
                Some(names) => names.intersection(&values).cloned().collect(),
            });
        }
        // A term without a name requirement lets every node through; terms are ORed.
        let Some(term_names) = term_names else {
            return Ok(None);
        };
        names.get_or_insert_default().extend(term_names);
    }
    match names {
        Some(names) if names.is_empty() => Err(Rejection::unresolvable(
            Plugin::NodeAffinity,
            AFFINITY_CONFLICT,
        )),
        names => Ok(names),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorTerm, PodSpec, Toleration,
    };

    use super::*;
    use crate::cache::NodePods;
    use crate::resources::Allocatable;
    use crate::selectors::tests::{expressions, node, requirement, taint, toleration};

    fn view<'a>(node: &'a Node, allocatable: &'a Allocatable, pods: &'a NodePods) -> NodeView<'a> {
        NodeView {
            node,
            allocatable,
            pods,
        }
    }

    fn tolerating(tolerations: Vec<Toleration>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                tolerations: Some(tolerations),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn with_required_terms(terms: Vec<NodeSelectorTerm>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                affinity: Some(Affinity {
                    node_affinity: Some(NodeAffinity {
                        required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                            node_selector_terms: terms,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn cordoned_nodes_take_only_pods_tolerating_the_cordon() {
        let (a, p) = (Allocatable::default(), NodePods::default());
        let mut cordoned = node("n1", &[]);
        cordoned.spec.get_or_insert_default().unschedulable = Some(true);
        let plain = node("n2", &[]);
        assert_eq!(
            unschedulable(&Pod::default(), &view(&cordoned, &a, &p)),
            Err(Rejection::unresolvable(
                Plugin::NodeUnschedulable,
                UNSCHEDULABLE
            ))
        );
        assert_eq!(
            unschedulable(&Pod::default(), &view(&plain, &a, &p)),
            Ok(())
        );
        let daemon = tolerating(vec![toleration(
            UNSCHEDULABLE_TAINT_KEY,
            "Exists",
            "",
            "NoSchedule",
        )]);
        assert_eq!(unschedulable(&daemon, &view(&cordoned, &a, &p)), Ok(()));
        let wrong_effect = tolerating(vec![toleration(
            UNSCHEDULABLE_TAINT_KEY,
            "Exists",
            "",
            "NoExecute",
        )]);
        assert!(unschedulable(&wrong_effect, &view(&cordoned, &a, &p)).is_err());
    }

    #[test]
    fn hard_taints_reject_with_the_first_untolerated_one() {
        let (a, p) = (Allocatable::default(), NodePods::default());
        let mut tainted = node("n1", &[]);
        tainted.spec.get_or_insert_default().taints = Some(vec![
            taint("soft", "x", "PreferNoSchedule"),
            taint("dedicated", "gpu", "NoSchedule"),
            taint("node-role.kubernetes.io/control-plane", "", "NoExecute"),
        ]);
        let rejected = |pod: &Pod| {
            taints(pod, &view(&tainted, &a, &p))
                .err()
                .map(|r| r.reasons)
        };
        assert_eq!(
            rejected(&Pod::default()),
            Some(vec![
                "node(s) had untolerated taint {dedicated: gpu}".to_owned()
            ])
        );
        let gpu = tolerating(vec![toleration("dedicated", "Equal", "gpu", "NoSchedule")]);
        assert_eq!(
            rejected(&gpu),
            Some(vec![
                "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
                    .to_owned()
            ])
        );
        let everything = tolerating(vec![toleration("", "Exists", "", "")]);
        assert_eq!(rejected(&everything), None);
    }

    #[test]
    fn node_affinity_rejects_nodes_that_do_not_match() {
        let (a, p) = (Allocatable::default(), NodePods::default());
        let pod = with_required_terms(vec![expressions(vec![requirement("zone", "In", &["a"])])]);
        let required = RequiredNodeAffinity::of(&pod);
        let in_a = node("n1", &[("zone", "a")]);
        let in_b = node("n2", &[("zone", "b")]);
        assert_eq!(affinity(&required, &view(&in_a, &a, &p)), Ok(()));
        assert_eq!(
            affinity(&required, &view(&in_b, &a, &p)),
            Err(Rejection::unresolvable(
                Plugin::NodeAffinity,
                AFFINITY_MISMATCH
            ))
        );
    }

    #[test]
    fn match_fields_narrow_the_nodes_to_try() {
        let named = |names: &[&str]| NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![requirement("metadata.name", "In", names)]),
        };
        let set = |names: &[&str]| Some(names.iter().map(|n| (*n).to_owned()).collect());
        let pod = with_required_terms(vec![named(&["n1"]), named(&["n2"])]);
        assert_eq!(
            prefilter_node_names(&RequiredNodeAffinity::of(&pod)),
            Ok(set(&["n1", "n2"]))
        );
        let open = with_required_terms(vec![
            named(&["n1"]),
            expressions(vec![requirement("zone", "Exists", &[])]),
        ]);
        assert_eq!(
            prefilter_node_names(&RequiredNodeAffinity::of(&open)),
            Ok(None)
        );
        let conflict = with_required_terms(vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![
                requirement("metadata.name", "In", &["n1"]),
                requirement("metadata.name", "In", &["n2"]),
            ]),
        }]);
        assert_eq!(
            prefilter_node_names(&RequiredNodeAffinity::of(&conflict)),
            Err(Rejection::unresolvable(
                Plugin::NodeAffinity,
                AFFINITY_CONFLICT
            ))
        );
        assert_eq!(
            prefilter_node_names(&RequiredNodeAffinity::of(&Pod::default())),
            Ok(None)
        );
    }
}
