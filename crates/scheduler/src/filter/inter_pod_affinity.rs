//! Upstream's `InterPodAffinity` filter, for the required terms. A node passes when:
//! - every pod affinity term of the pod finds a matching pod in the node's topology domain
//!   (the node's value of the term's `topologyKey`), unless no pod anywhere matches and the
//!   pod matches its own terms (the first pod of a group that wants to be together);
//! - no pod anti-affinity term of the pod finds a matching pod in the node's domain;
//! - no pod already placed has an anti-affinity term that matches the pod within its domain.
//!
//! A term selects pods by label selector in its namespaces: the listed ones plus those its
//! `namespaceSelector` selects, or the pod's own namespace when it gives neither.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cox_api::labels::Selector;
use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm};

use super::{NamespaceLabels, Plugin, Rejection, Verdict};
use crate::cache::NodeView;
use crate::selectors;

pub const AFFINITY_MISMATCH: &str = "node(s) didn't match pod affinity rules";
pub const ANTI_AFFINITY_MISMATCH: &str = "node(s) didn't match pod anti-affinity rules";
pub const EXISTING_ANTI_AFFINITY_MISMATCH: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// A pod affinity term, ready to match pods.
#[derive(Debug)]
pub struct AffinityTerm {
    namespaces: BTreeSet<String>,
    namespace_selector: Selector,
    selector: Selector,
    topology_key: String,
}

impl AffinityTerm {
    pub fn new(owner: &Pod, term: &PodAffinityTerm) -> Self {
        let listed: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
        let namespaces = if listed.is_empty() && term.namespace_selector.is_none() {
            owner.metadata.namespace.iter().cloned().collect()
        } else {
            listed
        };
        Self {
            namespaces,
            namespace_selector: selectors::label_selector(term.namespace_selector.as_ref()),
            selector: selectors::label_selector(term.label_selector.as_ref()),
            topology_key: term.topology_key.clone(),
        }
    }

    /// Whether the term selects `pod`, whose namespace has `namespace_labels`.
    pub fn matches(&self, pod: &Pod, namespace_labels: &BTreeMap<String, String>) -> bool {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
        (self.namespaces.contains(namespace) || self.namespace_selector.matches(namespace_labels))
            && self.selector.matches(selectors::labels(&pod.metadata))
    }
}

/// The required terms of a pod's affinity (`anti = false`) or anti-affinity.
fn required_terms(pod: &Pod, anti: bool) -> Vec<AffinityTerm> {
    let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
    let terms = if anti {
        affinity
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
    } else {
        affinity
            .and_then(|a| a.pod_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
    };
    terms
        .into_iter()
        .flatten()
        .map(|term| AffinityTerm::new(pod, term))
        .collect()
}

/// Matching pods per topology domain (`topologyKey`, value).
type DomainCounts = HashMap<(String, String), usize>;

/// The counts the filter needs, computed once over every node (upstream's PreFilter).
#[derive(Debug, Default)]
pub struct State {
    affinity_terms: Vec<AffinityTerm>,
    anti_affinity_terms: Vec<AffinityTerm>,
    /// Pods matching the pod's affinity terms, by domain.
    affinity_counts: DomainCounts,
    /// Pods matching the pod's anti-affinity terms, by domain.
    anti_affinity_counts: DomainCounts,
    /// Domains where a placed pod's anti-affinity term matches the pod.
    existing_anti_affinity_counts: DomainCounts,
    /// The pod matches all of its own affinity terms.
    matches_own_affinity: bool,
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

pub fn prefilter(pod: &Pod, nodes: &[NodeView<'_>], namespaces: &NamespaceLabels) -> State {
    let namespace_labels = |p: &Pod| {
        p.metadata
            .namespace
            .as_ref()
            .and_then(|ns| namespaces.get(ns))
            .unwrap_or(&NO_LABELS)
    };
    let own_namespace_labels = namespace_labels(pod);
    let mut state = State {
        affinity_terms: required_terms(pod, false),
        anti_affinity_terms: required_terms(pod, true),
        ..State::default()
    };
    state.matches_own_affinity = !state.affinity_terms.is_empty()
        && state
            .affinity_terms
            .iter()
            .all(|term| term.matches(pod, own_namespace_labels));
    let has_own_terms = !state.affinity_terms.is_empty() || !state.anti_affinity_terms.is_empty();
    for node in nodes {
        // Most pods have no affinity: only placed pods with anti-affinity matter to them.
        if !has_own_terms && node.pods.with_required_anti_affinity == 0 {
            continue;
        }
        let labels = node.labels();
        for placed in node.pods.pods.values() {
            let placed_namespace_labels = namespace_labels(&placed.pod);
            count(
                &mut state.affinity_counts,
                &state.affinity_terms,
                labels,
                |term| term.matches(&placed.pod, placed_namespace_labels),
            );
            count(
                &mut state.anti_affinity_counts,
                &state.anti_affinity_terms,
                labels,
                |term| term.matches(&placed.pod, placed_namespace_labels),
            );
            if placed.has_required_anti_affinity() {
                let terms = required_terms(&placed.pod, true);
                count(
                    &mut state.existing_anti_affinity_counts,
                    &terms,
                    labels,
                    |term| term.matches(pod, own_namespace_labels),
                );
            }
        }
    }
    state
}

/// Adds one to the domain of every term that matches, on a node that has the term's key.
fn count(
    counts: &mut DomainCounts,
    terms: &[AffinityTerm],
    node_labels: &BTreeMap<String, String>,
    matches: impl Fn(&AffinityTerm) -> bool,
) {
    for term in terms {
        if let Some(value) = node_labels.get(&term.topology_key)
            && matches(term)
        {
            *counts
                .entry((term.topology_key.clone(), value.clone()))
                .or_default() += 1;
        }
    }
}

pub fn filter(state: &State, node: &NodeView<'_>) -> Verdict {
    let labels = node.labels();
    if !satisfies_affinity(state, labels) {
        return Err(Rejection::unresolvable(
            Plugin::InterPodAffinity,
            AFFINITY_MISMATCH,
        ));
    }
    let anti_affinity_hit = state.anti_affinity_terms.iter().any(|term| {
        labels.get(&term.topology_key).is_some_and(|value| {
            domain_count(&state.anti_affinity_counts, &term.topology_key, value) > 0
        })
    });
    if anti_affinity_hit {
        return rejected(ANTI_AFFINITY_MISMATCH);
    }
    let existing_hit = labels
        .iter()
        .any(|(key, value)| domain_count(&state.existing_anti_affinity_counts, key, value) > 0);
    if existing_hit {
        return rejected(EXISTING_ANTI_AFFINITY_MISMATCH);
    }
    Ok(())
}

fn rejected(reason: &str) -> Verdict {
    Err(Rejection::resolvable(
        Plugin::InterPodAffinity,
        vec![reason.to_owned()],
    ))
}

fn satisfies_affinity(state: &State, labels: &BTreeMap<String, String>) -> bool {
    let mut pods_exist = true;
    for term in &state.affinity_terms {
        let Some(value) = labels.get(&term.topology_key) else {
            // The node must have every term's topology key.
            return false;
        };
        if domain_count(&state.affinity_counts, &term.topology_key, value) == 0 {
            pods_exist = false;
        }
    }
    // The first pod of a group with affinity to itself may go anywhere that has the keys.
    pods_exist || (state.affinity_counts.is_empty() && state.matches_own_affinity)
}

fn domain_count(counts: &DomainCounts, key: &str, value: &str) -> usize {
    counts
        .get(&(key.to_owned(), value.to_owned()))
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{Affinity, PodAffinity, PodAntiAffinity};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    use super::*;
    use crate::cache::Cache;
    use crate::cache::tests::pod;
    use crate::selectors::tests::node;

    const ZONE: &str = "topology.kubernetes.io/zone";

    fn labelled(name: &str, app: &str) -> Pod {
        let mut p = pod(name, &[]);
        p.metadata.labels = Some([("app".to_owned(), app.to_owned())].into());
        p
    }

    fn term(app: &str, key: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_labels: Some([("app".to_owned(), app.to_owned())].into()),
                ..Default::default()
            }),
            topology_key: key.into(),
            ..Default::default()
        }
    }

    fn with_affinity(
        mut p: Pod,
        affinity: Vec<PodAffinityTerm>,
        anti: Vec<PodAffinityTerm>,
    ) -> Pod {
        p.spec.get_or_insert_default().affinity = Some(Affinity {
            pod_affinity: (!affinity.is_empty()).then(|| PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(affinity),
                ..Default::default()
            }),
            pod_anti_affinity: (!anti.is_empty()).then(|| PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(anti),
                ..Default::default()
            }),
            ..Default::default()
        });
        p
    }

    /// Three nodes: n1 and n2 in zone a, n3 in zone b; `placed` pods by node name.
    fn cluster(placed: Vec<(&str, Pod)>) -> Cache {
        let mut cache = Cache::default();
        for (name, zone) in [("n1", "a"), ("n2", "a"), ("n3", "b")] {
            let n = node(name, &[(ZONE, zone), ("kubernetes.io/hostname", name)]);
            cache.set_node(Arc::new(n));
        }
        cache.set_node(Arc::new(node("bare", &[])));
        for (name, p) in placed {
            cache.add_pod(Arc::new(p), name);
        }
        cache
    }

    /// The names of the nodes that pass, or each node's rejection reason.
    fn judge(
        cache: &Cache,
        pod: &Pod,
        namespaces: &NamespaceLabels,
    ) -> Vec<(String, &'static str)> {
        let nodes = cache.nodes();
        let state = prefilter(pod, &nodes, namespaces);
        nodes
            .iter()
            .map(|n| {
                let verdict = match filter(&state, n) {
                    Ok(()) => "ok",
                    Err(r) if r.reasons[0] == AFFINITY_MISMATCH => "affinity",
                    Err(r) if r.reasons[0] == ANTI_AFFINITY_MISMATCH => "anti",
                    Err(_) => "existing",
                };
                (n.name().to_owned(), verdict)
            })
            .collect()
    }

    fn verdicts(pairs: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
        pairs.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect()
    }

    #[test]
    fn affinity_wants_a_matching_pod_in_the_same_domain() {
        let cache = cluster(vec![("n1", labelled("db", "db"))]);
        let web = with_affinity(labelled("web", "web"), vec![term("db", ZONE)], vec![]);
        assert_eq!(
            judge(&cache, &web, &NamespaceLabels::new()),
            verdicts(&[
                ("bare", "affinity"),
                ("n1", "ok"),
                ("n2", "ok"),
                ("n3", "affinity")
            ])
        );
    }

    #[test]
    fn the_first_pod_of_a_self_affine_group_goes_anywhere_with_the_key() {
        let cache = cluster(vec![]);
        let first = with_affinity(labelled("w1", "web"), vec![term("web", ZONE)], vec![]);
        assert_eq!(
            judge(&cache, &first, &NamespaceLabels::new()),
            verdicts(&[
                ("bare", "affinity"),
                ("n1", "ok"),
                ("n2", "ok"),
                ("n3", "ok")
            ])
        );
        // Not when it wants pods other than its own kind.
        let lonely = with_affinity(labelled("w1", "web"), vec![term("db", ZONE)], vec![]);
        assert!(
            judge(&cache, &lonely, &NamespaceLabels::new())
                .iter()
                .all(|(_, v)| *v == "affinity")
        );
    }

    #[test]
    fn anti_affinity_keeps_away_from_matching_pods_in_the_domain() {
        let cache = cluster(vec![("n1", labelled("w1", "web"))]);
        let second = with_affinity(labelled("w2", "web"), vec![], vec![term("web", ZONE)]);
        assert_eq!(
            judge(&cache, &second, &NamespaceLabels::new()),
            verdicts(&[("bare", "ok"), ("n1", "anti"), ("n2", "anti"), ("n3", "ok")])
        );
    }

    #[test]
    fn placed_pods_anti_affinity_keeps_the_pod_away() {
        let loner = with_affinity(
            labelled("loner", "loner"),
            vec![],
            vec![term("web", "kubernetes.io/hostname")],
        );
        let cache = cluster(vec![("n2", loner)]);
        let web = labelled("web", "web");
        assert_eq!(
            judge(&cache, &web, &NamespaceLabels::new()),
            verdicts(&[
                ("bare", "ok"),
                ("n1", "ok"),
                ("n2", "existing"),
                ("n3", "ok")
            ])
        );
    }

    #[test]
    fn terms_look_in_their_namespaces() {
        let mut elsewhere = labelled("db", "db");
        elsewhere.metadata.namespace = Some("data".into());
        let cache = cluster(vec![("n3", elsewhere)]);
        let same_namespace = with_affinity(labelled("web", "web"), vec![term("db", ZONE)], vec![]);
        let none_ok = judge(&cache, &same_namespace, &NamespaceLabels::new());
        assert!(none_ok.iter().all(|(_, v)| *v == "affinity"), "{none_ok:?}");

        let listed = PodAffinityTerm {
            namespaces: Some(vec!["data".into()]),
            ..term("db", ZONE)
        };
        let web = with_affinity(labelled("web", "web"), vec![listed], vec![]);
        assert_eq!(
            judge(&cache, &web, &NamespaceLabels::new())[3],
            ("n3".to_owned(), "ok")
        );

        let by_selector = PodAffinityTerm {
            namespace_selector: Some(LabelSelector {
                match_labels: Some([("team".to_owned(), "data".to_owned())].into()),
                ..Default::default()
            }),
            ..term("db", ZONE)
        };
        let web = with_affinity(labelled("web", "web"), vec![by_selector], vec![]);
        let namespaces: NamespaceLabels = [(
            "data".to_owned(),
            [("team".to_owned(), "data".to_owned())].into(),
        )]
        .into();
        assert_eq!(judge(&cache, &web, &namespaces)[3], ("n3".to_owned(), "ok"));
        assert_eq!(
            judge(&cache, &web, &NamespaceLabels::new())[3],
            ("n3".to_owned(), "affinity")
        );
    }
}
