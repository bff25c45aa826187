//! Matching pods to nodes and to other pods: node selector terms (upstream's
//! `component-helpers/scheduling/corev1/nodeaffinity`), taints and tolerations (upstream's
//! `Toleration.ToleratesTaint`) and label selectors (through `cox-api`'s selectors).

use std::collections::BTreeMap;

use cox_api::labels::Selector;
use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// An object's labels, empty when it has none.
pub fn labels(meta: &ObjectMeta) -> &BTreeMap<String, String> {
    meta.labels.as_ref().unwrap_or(&NO_LABELS)
}

pub fn node_name(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or("")
}

/// The node a pod is bound to, if any.
pub fn pod_node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

pub fn node_taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
}

pub fn pod_tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

/// A pod's `metav1.LabelSelector` as a selector: absent selects nothing, `{}` everything, as
/// upstream's `LabelSelectorAsSelector`. A selector that does not parse selects nothing.
pub fn label_selector(selector: Option<&LabelSelector>) -> Selector {
    let Some(selector) = selector else {
        return Selector::nothing();
    };
    serde_json::to_value(selector)
        .ok()
        .and_then(|json| Selector::from_label_selector(&json).ok())
        .unwrap_or_else(Selector::nothing)
}

/// Whether the toleration tolerates the taint: same effect (or any, when the toleration names
/// none), same key (or any), and the same value for `Equal` (the default operator).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        "Exists" => true,
        _ => false,
    }
}

pub fn any_tolerates(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// Whether a node selector term matches a node: every `matchExpressions` requirement against
/// the labels and every `matchFields` requirement against `metadata.name`. `None` when the
/// term is malformed (upstream skips such terms) or empty (it selects no node).
pub fn term_matches(term: &NodeSelectorTerm, node: &Node) -> Option<bool> {
    let expressions = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if expressions.is_empty() && fields.is_empty() {
        return None;
    }
    let node_labels = labels(&node.metadata);
    let mut matches = true;
    for requirement in expressions {
        matches &= label_requirement_matches(requirement, node_labels)?;
    }
    for requirement in fields {
        matches &= field_requirement_matches(requirement, node_name(node))?;
    }
    Some(matches)
}

/// Whether any of the terms (they are ORed) matches; malformed terms never match.
pub fn any_term_matches(terms: &[NodeSelectorTerm], node: &Node) -> bool {
    terms
        .iter()
        .any(|term| term_matches(term, node) == Some(true))
}

/// One `matchExpressions` requirement against a node's labels; `None` when malformed.
fn label_requirement_matches(
    requirement: &NodeSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> Option<bool> {
    let values = requirement.values.as_deref().unwrap_or(&[]);
    let value = labels.get(&requirement.key);
    match requirement.operator.as_str() {
        "In" if !values.is_empty() => Some(value.is_some_and(|v| values.contains(v))),
        "NotIn" if !values.is_empty() => Some(!value.is_some_and(|v| values.contains(v))),
        "Exists" if values.is_empty() => Some(value.is_some()),
        "DoesNotExist" if values.is_empty() => Some(value.is_none()),
        operator @ ("Gt" | "Lt") if values.len() == 1 => {
            let bound: i64 = values[0].parse().ok()?;
            let Some(have) = value.and_then(|v| v.parse::<i64>().ok()) else {
                return Some(false);
            };
            Some(if operator == "Gt" {
                have > bound
            } else {
                have < bound
            })
        }
        _ => None,
    }
}

/// One `matchFields` requirement: only `metadata.name` with `In` or `NotIn` and exactly one
/// value is valid, as upstream.
fn field_requirement_matches(requirement: &NodeSelectorRequirement, name: &str) -> Option<bool> {
    let values = requirement.values.as_deref().unwrap_or(&[]);
    if requirement.key != "metadata.name" || values.len() != 1 {
        return None;
    }
    match requirement.operator.as_str() {
        "In" => Some(values[0] == name),
        "NotIn" => Some(values[0] != name),
        _ => None,
    }
}

/// A pod's hard node constraints together, upstream's `GetRequiredNodeAffinity`:
/// `spec.nodeSelector` and the `requiredDuringSchedulingIgnoredDuringExecution` node affinity.
#[derive(Debug, Clone, Default)]
pub struct RequiredNodeAffinity<'a> {
    node_selector: Option<&'a BTreeMap<String, String>>,
    /// `None` when the pod has no required node affinity (every node matches).
    terms: Option<&'a [NodeSelectorTerm]>,
}

impl<'a> RequiredNodeAffinity<'a> {
    pub fn of(pod: &'a Pod) -> Self {
        let spec = pod.spec.as_ref();
        Self {
            node_selector: spec.and_then(|s| s.node_selector.as_ref()),
            terms: spec
                .and_then(|s| s.affinity.as_ref())
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .map(|selector| selector.node_selector_terms.as_slice()),
        }
    }

    pub fn terms(&self) -> Option<&'a [NodeSelectorTerm]> {
        self.terms
    }

    pub fn matches(&self, node: &Node) -> bool {
        let node_labels = labels(&node.metadata);
        let selector_matches = self
            .node_selector
            .into_iter()
            .flatten()
            .all(|(key, value)| node_labels.get(key) == Some(value));
        selector_matches && self.terms.is_none_or(|terms| any_term_matches(terms, node))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeSelector, NodeSpec, PodSpec};

    use super::*;

    pub(crate) fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            ..Default::default()
        }
    }

    pub(crate) fn requirement(
        key: &str,
        operator: &str,
        values: &[&str],
    ) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).into()).collect()),
        }
    }

    pub(crate) fn expressions(requirements: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(requirements),
            match_fields: None,
        }
    }

    pub(crate) fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: (!value.is_empty()).then(|| value.into()),
            effect: effect.into(),
            time_added: None,
        }
    }

    pub(crate) fn toleration(key: &str, operator: &str, value: &str, effect: &str) -> Toleration {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Toleration {
            key: some(key),
            operator: some(operator),
            value: some(value),
            effect: some(effect),
            toleration_seconds: None,
        }
    }

    #[test]
    fn label_requirements_follow_upstream_operators() {
        let n = node("n1", &[("zone", "a"), ("cores", "8")]);
        let cases = [
            (requirement("zone", "In", &["a", "b"]), Some(true)),
            (requirement("zone", "In", &["b"]), Some(false)),
            (requirement("zone", "NotIn", &["b"]), Some(true)),
            (requirement("missing", "NotIn", &["b"]), Some(true)),
            (requirement("zone", "Exists", &[]), Some(true)),
            (requirement("zone", "DoesNotExist", &[]), Some(false)),
            (requirement("missing", "DoesNotExist", &[]), Some(true)),
            (requirement("cores", "Gt", &["4"]), Some(true)),
            (requirement("cores", "Lt", &["4"]), Some(false)),
            (requirement("zone", "Gt", &["4"]), Some(false)),
            (requirement("missing", "Lt", &["4"]), Some(false)),
            // Malformed: upstream drops the whole term.
            (requirement("zone", "In", &[]), None),
            (requirement("zone", "Exists", &["a"]), None),
            (requirement("cores", "Gt", &["four"]), None),
            (requirement("cores", "Gt", &["1", "2"]), None),
            (requirement("zone", "Equals", &["a"]), None),
        ];
        for (req, expected) in cases {
            let term = expressions(vec![req.clone()]);
            assert_eq!(term_matches(&term, &n), expected, "{req:?}");
        }
    }

    #[test]
    fn field_requirements_match_only_the_node_name() {
        let n = node("n1", &[]);
        let fields = |req| NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req]),
        };
        let name = "metadata.name";
        assert_eq!(
            term_matches(&fields(requirement(name, "In", &["n1"])), &n),
            Some(true)
        );
        assert_eq!(
            term_matches(&fields(requirement(name, "In", &["n2"])), &n),
            Some(false)
        );
        assert_eq!(
            term_matches(&fields(requirement(name, "NotIn", &["n2"])), &n),
            Some(true)
        );
        assert_eq!(
            term_matches(&fields(requirement(name, "In", &["n1", "n2"])), &n),
            None
        );
        assert_eq!(
            term_matches(&fields(requirement("metadata.uid", "In", &["x"])), &n),
            None
        );
        assert_eq!(
            term_matches(&fields(requirement(name, "Exists", &[])), &n),
            None
        );
    }

    #[test]
    fn terms_are_ored_and_empty_or_malformed_terms_match_nothing() {
        let n = node("n1", &[("zone", "a")]);
        let good = expressions(vec![requirement("zone", "In", &["a"])]);
        let bad = expressions(vec![requirement("zone", "In", &[])]);
        let empty = NodeSelectorTerm::default();
        assert!(any_term_matches(&[bad.clone(), good.clone()], &n));
        assert!(!any_term_matches(&[bad, empty], &n));
        assert!(!any_term_matches(&[], &n));
        // Within a term, requirements are ANDed.
        let both = expressions(vec![
            requirement("zone", "In", &["a"]),
            requirement("disk", "Exists", &[]),
        ]);
        assert!(!any_term_matches(&[both], &n));
    }

    #[test]
    fn required_node_affinity_combines_node_selector_and_terms() {
        let mut pod = Pod {
            spec: Some(PodSpec {
                node_selector: Some([("disk".to_owned(), "ssd".to_owned())].into()),
                affinity: Some(Affinity {
                    node_affinity: Some(NodeAffinity {
                        required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                            node_selector_terms: vec![expressions(vec![requirement(
                                "zone",
                                "In",
                                &["a"],
                            )])],
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let both = node("n1", &[("disk", "ssd"), ("zone", "a")]);
        let selector_only = node("n2", &[("disk", "ssd"), ("zone", "b")]);
        let terms_only = node("n3", &[("zone", "a")]);
        let required = RequiredNodeAffinity::of(&pod);
        assert!(required.matches(&both));
        assert!(!required.matches(&selector_only));
        assert!(!required.matches(&terms_only));
        if let Some(spec) = pod.spec.as_mut() {
            spec.affinity = None;
        }
        assert!(RequiredNodeAffinity::of(&pod).matches(&selector_only));
        assert!(RequiredNodeAffinity::of(&Pod::default()).matches(&terms_only));
    }

    #[test]
    fn tolerations_match_by_key_value_and_effect() {
        let t = taint("dedicated", "gpu", "NoSchedule");
        let cases = [
            (toleration("dedicated", "Equal", "gpu", "NoSchedule"), true),
            (toleration("dedicated", "", "gpu", ""), true),
            (toleration("dedicated", "Equal", "cpu", "NoSchedule"), false),
            (toleration("dedicated", "Exists", "", "NoSchedule"), true),
            (toleration("dedicated", "Exists", "", "NoExecute"), false),
            (toleration("", "Exists", "", ""), true),
            (toleration("other", "Exists", "", ""), false),
            (toleration("dedicated", "Gt", "1", ""), false),
        ];
        for (tol, expected) in cases {
            assert_eq!(tolerates(&tol, &t), expected, "{tol:?}");
        }
        let no_value = taint("node-role.kubernetes.io/control-plane", "", "NoSchedule");
        let equal_empty = toleration("node-role.kubernetes.io/control-plane", "", "", "");
        assert!(tolerates(&equal_empty, &no_value));
    }

    #[test]
    fn label_selectors_select_nothing_when_absent_and_everything_when_empty() {
        let web: BTreeMap<String, String> = [("app".to_owned(), "web".to_owned())].into();
        assert!(!label_selector(None).matches(&web));
        assert!(label_selector(Some(&LabelSelector::default())).matches(&web));
        let app_web = LabelSelector {
            match_labels: Some(web.clone()),
            ..Default::default()
        };
        assert!(label_selector(Some(&app_web)).matches(&web));
        assert!(!label_selector(Some(&app_web)).matches(&BTreeMap::new()));
    }
}
