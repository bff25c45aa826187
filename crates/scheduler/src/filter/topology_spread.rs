//! Upstream's `PodTopologySpread` filter, for the pod's `DoNotSchedule` constraints. For each
//! constraint, the pods matching its selector (in the pod's namespace, not being deleted) are
//! counted per domain (a value of `topologyKey`) over the eligible nodes: those with every
//! constraint's key that also pass the pod's node affinity (`nodeAffinityPolicy: Honor`, the
//! default) and, with `nodeTaintsPolicy: Honor`, its tolerations. A node passes when placing
//! the pod there keeps `count + self - global minimum <= maxSkew`; the minimum is 0 while
//! there are fewer domains than `minDomains`. `matchLabelKeys` adds the pod's own values of
//! those labels to the selector. Only the filter: spreading's score is not implemented.

use std::collections::{BTreeMap, HashMap};

use cox_api::labels::Selector;
use k8s_openapi::api::core::v1::{Node, Pod, TopologySpreadConstraint};

use super::{Plugin, Rejection, Verdict};
use crate::cache::NodeView;
use crate::selectors::{self, RequiredNodeAffinity};

pub const CONSTRAINTS_MISMATCH: &str = "node(s) didn't match pod topology spread constraints";
pub const MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

#[derive(Debug)]
struct Constraint {
    topology_key: String,
    max_skew: i64,
    min_domains: usize,
    selector: Selector,
    honor_node_affinity: bool,
    honor_taints: bool,
    /// Whether the pod itself matches the selector (it counts where it lands).
    selects_pod: bool,
    /// Matching pods per domain; every eligible domain is present, if only with 0.
    counts: HashMap<String, i64>,
}

impl Constraint {
    fn new(pod: &Pod, constraint: &TopologySpreadConstraint) -> Self {
        let selector = spread_selector(pod, constraint);
        Self {
            topology_key: constraint.topology_key.clone(),
            max_skew: i64::from(constraint.max_skew),
            min_domains: constraint
                .min_domains
                .and_then(|m| usize::try_from(m).ok())
                .unwrap_or(1),
            selects_pod: selector.matches(selectors::labels(&pod.metadata)),
            selector,
            honor_node_affinity: constraint.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_taints: constraint.node_taints_policy.as_deref() == Some("Honor"),
            counts: HashMap::new(),
        }
    }

    /// The smallest count over the domains, 0 while there are fewer than `minDomains`.
    fn global_minimum(&self) -> i64 {
        if self.counts.len() < self.min_domains {
            return 0;
        }
        self.counts.values().copied().min().unwrap_or(0)
    }

    fn counts_on(&self, pod: &Pod, node: &Node, required: &RequiredNodeAffinity<'_>) -> bool {
        if self.honor_node_affinity && !required.matches(node) {
            return false;
        }
        if self.honor_taints {
            let tolerations = selectors::pod_tolerations(pod);
            let untolerated = selectors::node_taints(node).iter().any(|taint| {
                matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
                    && !selectors::any_tolerates(tolerations, taint)
            });
            if untolerated {
                return false;
            }
        }
        true
    }
}

/// The constraint's label selector with `matchLabelKeys` merged in from the pod's labels.
fn spread_selector(pod: &Pod, constraint: &TopologySpreadConstraint) -> Selector {
    let Some(mut selector) = constraint.label_selector.clone() else {
        return Selector::nothing();
    };
    let pod_labels = selectors::labels(&pod.metadata);
    for key in constraint.match_label_keys.iter().flatten() {
        let Some(value) = pod_labels.get(key) else {
            continue;
        };
        let match_labels = selector.match_labels.get_or_insert_default();
        if match_labels
            .get(key)
            .is_some_and(|existing| existing != value)
        {
            // Both must hold, and they cannot.
            return Selector::nothing();
        }
        match_labels.insert(key.clone(), value.clone());
    }
    selectors::label_selector(Some(&selector))
}

/// The pod's hard constraints with their counts (upstream's PreFilter); empty when the pod
/// has none.
#[derive(Debug, Default)]
pub struct State {
    constraints: Vec<Constraint>,
}

pub fn prefilter(pod: &Pod, nodes: &[NodeView<'_>], required: &RequiredNodeAffinity<'_>) -> State {
    let mut constraints: Vec<Constraint> = pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.when_unsatisfiable == "DoNotSchedule")
        .map(|c| Constraint::new(pod, c))
        .collect();
    if constraints.is_empty() {
        return State::default();
    }
    let namespace = pod.metadata.namespace.as_deref();
    for node in nodes {
        let labels = node.labels();
        if !constraints
            .iter()
            .all(|c| labels.contains_key(&c.topology_key))
        {
            continue;
        }
        for constraint in &mut constraints {
            if !constraint.counts_on(pod, node.node, required) {
                continue;
            }
            let matching = count_matching(node, &constraint.selector, namespace);
            let domain = labels
                .get(&constraint.topology_key)
                .cloned()
                .unwrap_or_default();
            *constraint.counts.entry(domain).or_default() += matching;
        }
    }
    State { constraints }
}

fn count_matching(node: &NodeView<'_>, selector: &Selector, namespace: Option<&str>) -> i64 {
    let matching = node
        .pods
        .pods
        .values()
        .filter(|placed| {
            let meta = &placed.pod.metadata;
            meta.deletion_timestamp.is_none()
                && meta.namespace.as_deref() == namespace
                && selector.matches(selectors::labels(meta))
        })
        .count();
    i64::try_from(matching).unwrap_or(i64::MAX)
}

pub fn filter(state: &State, node: &NodeView<'_>) -> Verdict {
    let labels: &BTreeMap<String, String> = node.labels();
    for constraint in &state.constraints {
        let Some(domain) = labels.get(&constraint.topology_key) else {
            return Err(Rejection::unresolvable(
                Plugin::PodTopologySpread,
                MISSING_LABEL,
            ));
        };
        let here = constraint.counts.get(domain).copied().unwrap_or(0);
        let skew = here + i64::from(constraint.selects_pod) - constraint.global_minimum();
        if skew > constraint.max_skew {
            return Err(Rejection::resolvable(
                Plugin::PodTopologySpread,
                vec![CONSTRAINTS_MISMATCH.to_owned()],
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    use super::*;
    use crate::cache::Cache;
    use crate::cache::tests::pod;
    use crate::selectors::tests::{node, taint};

    const ZONE: &str = "topology.kubernetes.io/zone";

    fn web(name: &str) -> Pod {
        let mut p = pod(name, &[]);
        p.metadata.labels = Some(
            [
                ("app".to_owned(), "web".to_owned()),
                ("version".to_owned(), "v2".to_owned()),
            ]
            .into(),
        );
        p
    }

    fn spread(max_skew: i32) -> TopologySpreadConstraint {
        TopologySpreadConstraint {
            max_skew,
            topology_key: ZONE.into(),
            when_unsatisfiable: "DoNotSchedule".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some([("app".to_owned(), "web".to_owned())].into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn spreading(mut p: Pod, constraint: TopologySpreadConstraint) -> Pod {
        p.spec.get_or_insert_default().topology_spread_constraints = Some(vec![constraint]);
        p
    }

    /// Zones a (n1, n2) and b (n3), a node without a zone, and the given pods placed.
    fn cluster(placed: Vec<(&str, Pod)>) -> Cache {
        let mut cache = Cache::default();
        for (name, zone) in [("n1", "a"), ("n2", "a"), ("n3", "b")] {
            cache.set_node(Arc::new(node(name, &[(ZONE, zone)])));
        }
        cache.set_node(Arc::new(node("bare", &[])));
        for (name, p) in placed {
            cache.add_pod(Arc::new(p), name);
        }
        cache
    }

    fn passing(cache: &Cache, pod: &Pod) -> Vec<String> {
        let nodes = cache.nodes();
        let state = prefilter(pod, &nodes, &RequiredNodeAffinity::of(pod));
        nodes
            .iter()
            .filter(|n| filter(&state, n).is_ok())
            .map(|n| n.name().to_owned())
            .collect()
    }

    #[test]
    fn pods_go_where_the_skew_stays_within_max_skew() {
        let cache = cluster(vec![("n1", web("w1"))]);
        let next = spreading(web("w2"), spread(1));
        assert_eq!(passing(&cache, &next), ["n3"]);
        let loose = spreading(web("w2"), spread(2));
        assert_eq!(passing(&cache, &loose), ["n1", "n2", "n3"]);
    }

    #[test]
    fn nodes_without_the_key_are_rejected_as_unresolvable() {
        let cache = cluster(vec![]);
        let p = spreading(web("w1"), spread(1));
        let nodes = cache.nodes();
        let state = prefilter(&p, &nodes, &RequiredNodeAffinity::of(&p));
        assert_eq!(
            filter(&state, &nodes[0]),
            Err(Rejection::unresolvable(
                Plugin::PodTopologySpread,
                MISSING_LABEL
            ))
        );
    }

    #[test]
    fn min_domains_counts_missing_domains_as_empty() {
        let cache = cluster(vec![("n3", web("w1"))]);
        let p = spreading(
            web("w2"),
            TopologySpreadConstraint {
                min_domains: Some(3),
                ..spread(1)
            },
        );
        // Two domains of three: the minimum is 0, so zone b (1 + 1 - 0 > 1) is out.
        assert_eq!(passing(&cache, &p), ["n1", "n2"]);
    }

    #[test]
    fn match_label_keys_narrow_the_selector_to_the_pods_own_values() {
        let mut old = web("w1");
        old.metadata
            .labels
            .get_or_insert_default()
            .insert("version".into(), "v1".into());
        let cache = cluster(vec![("n1", old)]);
        let p = spreading(
            web("w2"),
            TopologySpreadConstraint {
                match_label_keys: Some(vec!["version".into()]),
                ..spread(1)
            },
        );
        assert_eq!(passing(&cache, &p), ["n1", "n2", "n3"]);
    }

    #[test]
    fn tainted_nodes_count_only_when_taints_are_honored() {
        let mut cache = cluster(vec![("n1", web("w1"))]);
        let mut tainted = node("n3", &[(ZONE, "b")]);
        tainted.spec.get_or_insert_default().taints = Some(vec![taint("k", "", "NoSchedule")]);
        cache.set_node(Arc::new(tainted));
        let ignore = spreading(web("w2"), spread(1));
        assert_eq!(passing(&cache, &ignore), ["n3"]);
        // Honoring taints leaves zone b out of the domains: zone a alone has the minimum, 1,
        // so zone a passes too (the taint filter, not this one, keeps the pod off n3).
        let honor = spreading(
            web("w2"),
            TopologySpreadConstraint {
                node_taints_policy: Some("Honor".into()),
                ..spread(1)
            },
        );
        assert_eq!(passing(&cache, &honor), ["n1", "n2", "n3"]);
    }

    #[test]
    fn schedule_anyway_constraints_do_not_filter() {
        let cache = cluster(vec![("n1", web("w1"))]);
        let soft = spreading(
            web("w2"),
            TopologySpreadConstraint {
                when_unsatisfiable: "ScheduleAnyway".into(),
                ..spread(1)
            },
        );
        assert_eq!(passing(&cache, &soft), ["bare", "n1", "n2", "n3"]);
    }
}
