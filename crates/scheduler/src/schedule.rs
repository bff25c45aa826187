//! One scheduling attempt (upstream's `schedulePod`): run the PreFilter, filter the nodes
//! (starting where the last attempt stopped, and only until enough feasible nodes are found
//! in a large cluster), score the feasible ones and pick the best; or explain, in upstream's
//! words, why no node fits.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use rand::Rng;

use crate::cache::{Cache, NodeView};
use crate::filter::{self, CycleState, NamespaceLabels, Plugin, Rejection};
use crate::{preemption, score};

/// Upstream's `ErrNoNodesAvailable`.
pub const NO_NODES: &str = "no nodes available to schedule pods";

/// Why an attempt found no node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unschedulable {
    /// The cluster has no node at all.
    NoNodes,
    /// No node passed the filters.
    NoFit(Box<FitError>),
}

impl Unschedulable {
    /// The message upstream puts in the `PodScheduled` condition and the event.
    pub fn message(&self) -> String {
        match self {
            Self::NoNodes => NO_NODES.to_owned(),
            Self::NoFit(error) => error.message(),
        }
    }

    /// The plugins that rejected nodes: a change they care about may let the pod fit.
    pub fn plugins(&self) -> BTreeSet<Plugin> {
        match self {
            Self::NoNodes => BTreeSet::new(),
            Self::NoFit(error) => error.plugins.clone(),
        }
    }
}

/// The reasons nodes were rejected for, as upstream's `Diagnosis` keeps them to explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub num_all_nodes: usize,
    /// The reasons of the nodes judged one by one.
    pub reasons: BTreeMap<String, Vec<String>>,
    /// The reasons of every other node (those the PreFilter ruled out).
    pub others: Vec<String>,
    /// The PreFilter's message, when it rejected the pod outright.
    pub prefilter_message: Option<String>,
}

impl Diagnosis {
    /// Upstream's histogram: `N reason` for every reason, sorted as strings, joined.
    pub fn histogram(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for reason in self.reasons.values().flatten() {
            *counts.entry(reason).or_default() += 1;
        }
        let unjudged = self.num_all_nodes.saturating_sub(self.reasons.len());
        if unjudged > 0 {
            for reason in &self.others {
                *counts.entry(reason).or_default() += unjudged;
            }
        }
        let mut parts: Vec<String> = counts
            .into_iter()
            .map(|(reason, count)| format!("{count} {reason}"))
            .collect();
        parts.sort();
        parts.join(", ")
    }

    /// `0/N nodes are available: <reasons>.` (upstream's `FitError.Error()` without the
    /// PostFilter part).
    pub fn summary(&self) -> String {
        let mut message = format!("0/{} nodes are available:", self.num_all_nodes);
        let details = match &self.prefilter_message {
            Some(prefilter) => prefilter.clone(),
            None => self.histogram(),
        };
        if !details.is_empty() {
            message.push_str(&format!(" {details}."));
        }
        message
    }
}

/// No node fits: the diagnosis and what preemption would say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    pub diagnosis: Diagnosis,
    /// The PostFilter's message (`preemption: ...`); `None` where upstream would preempt.
    pub post_filter_message: Option<String>,
    /// The plugins that rejected nodes.
    pub plugins: BTreeSet<Plugin>,
}

impl FitError {
    pub fn message(&self) -> String {
        let mut message = self.diagnosis.summary();
        if let Some(post_filter) = &self.post_filter_message {
            message.push(' ');
            message.push_str(post_filter);
        }
        message
    }
}

/// Upstream's `numFeasibleNodesToFind` with the adaptive default percentage: every node in
/// clusters under 100 nodes, then a shrinking share (50% less 1% per 125 nodes, at least 5%),
/// never fewer than 100.
pub fn feasible_nodes_to_find(num_nodes: usize) -> usize {
    const MIN_FEASIBLE_NODES: usize = 100;
    if num_nodes < MIN_FEASIBLE_NODES {
        return num_nodes;
    }
    let percentage = 50usize.saturating_sub(num_nodes / 125).max(5);
    (num_nodes * percentage / 100).max(MIN_FEASIBLE_NODES)
}

/// Where the next attempt starts filtering, so that successive pods spread their searches.
#[derive(Debug, Default)]
pub struct Rotation {
    next_start: usize,
}

/// Finds a node for `pod`, or says why there is none.
pub fn schedule(
    pod: &Pod,
    cache: &Cache,
    namespaces: &NamespaceLabels,
    rotation: &mut Rotation,
    rng: &mut impl Rng,
) -> Result<String, Unschedulable> {
    let all_nodes = cache.nodes();
    if all_nodes.is_empty() {
        return Err(Unschedulable::NoNodes);
    }
    let num_all_nodes = all_nodes.len();
    let state = match filter::prefilter(pod, &all_nodes, namespaces) {
        Ok(state) => state,
        Err(rejection) => {
            let diagnosis = Diagnosis {
                num_all_nodes,
                reasons: BTreeMap::new(),
                prefilter_message: Some(rejection.reasons.join(", ")),
                others: rejection.reasons,
            };
            return Err(Unschedulable::NoFit(Box::new(FitError {
                post_filter_message: preemption::post_filter_message(
                    pod,
                    &BTreeMap::new(),
                    &all_nodes,
                    None,
                ),
                diagnosis,
                plugins: [rejection.plugin].into(),
            })));
        }
    };
    let mut plugins = BTreeSet::new();
    let mut others = Vec::new();
    let candidates: Vec<NodeView<'_>> = match &state.node_names {
        None => all_nodes.clone(),
        Some(names) => {
            plugins.insert(Plugin::NodeAffinity);
            others.push("node(s) didn't satisfy plugin(s) [NodeAffinity]".to_owned());
            all_nodes
                .iter()
                .filter(|n| names.contains(n.name()))
                .copied()
                .collect()
        }
    };
    let (feasible, rejections) = find_feasible(&state, &candidates, rotation);
    if feasible.is_empty() {
        plugins.extend(rejections.values().map(|r| r.plugin));
        let post_filter_message =
            preemption::post_filter_message(pod, &rejections, &all_nodes, Some(&state));
        let diagnosis = Diagnosis {
            num_all_nodes,
            reasons: rejections
                .into_iter()
                .map(|(node, rejection)| (node, rejection.reasons))
                .collect(),
            others,
            prefilter_message: None,
        };
        return Err(Unschedulable::NoFit(Box::new(FitError {
            diagnosis,
            post_filter_message,
            plugins,
        })));
    }
    let totals = score::score(&state, &feasible);
    let best = score::select_best(&totals, rng).unwrap_or(0);
    Ok(feasible[best].name().to_owned())
}

/// Filters the candidates from the rotation's start, stopping once enough fit.
fn find_feasible<'a>(
    state: &CycleState<'_>,
    candidates: &[NodeView<'a>],
    rotation: &mut Rotation,
) -> (Vec<NodeView<'a>>, BTreeMap<String, Rejection>) {
    let wanted = feasible_nodes_to_find(candidates.len());
    let mut feasible = Vec::new();
    let mut rejections = BTreeMap::new();
    let start = rotation.next_start % candidates.len().max(1);
    let mut processed = 0;
    for node in candidates.iter().cycle().skip(start).take(candidates.len()) {
        if feasible.len() >= wanted {
            break;
        }
        processed += 1;
        match filter::filter(state, node) {
            Ok(()) => feasible.push(*node),
            Err(rejection) => {
                rejections.insert(node.name().to_owned(), rejection);
            }
        }
    }
    rotation.next_start = (start + processed) % candidates.len().max(1);
    (feasible, rejections)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeSelector, NodeSelectorTerm};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::cache::tests::{node_with, pod};
    use crate::selectors::tests::{requirement, taint};

    const ROOMY: &[(&str, &str)] = &[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")];

    fn attempt(cache: &Cache, pod: &Pod) -> Result<String, Unschedulable> {
        let mut rng = StdRng::seed_from_u64(1);
        schedule(
            pod,
            cache,
            &NamespaceLabels::new(),
            &mut Rotation::default(),
            &mut rng,
        )
    }

    fn message(result: Result<String, Unschedulable>) -> String {
        match result {
            Ok(node) => panic!("scheduled to {node}"),
            Err(error) => error.message(),
        }
    }

    #[test]
    fn an_empty_cluster_has_no_nodes_available() {
        let result = attempt(&Cache::default(), &pod("p", &[]));
        assert_eq!(result, Err(Unschedulable::NoNodes));
        assert_eq!(message(result), "no nodes available to schedule pods");
    }

    #[test]
    fn the_pod_goes_to_the_node_with_the_most_room() {
        let mut cache = Cache::default();
        cache.set_node(Arc::new(node_with("busy", ROOMY)));
        cache.set_node(Arc::new(node_with("idle", ROOMY)));
        cache.add_pod(
            Arc::new(pod("placed", &[("cpu", "3"), ("memory", "6Gi")])),
            "busy",
        );
        assert_eq!(
            attempt(&cache, &pod("p", &[("cpu", "100m")])),
            Ok("idle".to_owned())
        );
    }

    #[test]
    fn the_message_counts_each_reason_in_upstream_shape() {
        let mut cache = Cache::default();
        let mut tainted = node_with("a", ROOMY);
        tainted.spec.get_or_insert_default().taints =
            Some(vec![taint("dedicated", "gpu", "NoSchedule")]);
        cache.set_node(Arc::new(tainted));
        cache.set_node(Arc::new(node_with("b", &[("cpu", "1"), ("pods", "110")])));
        cache.set_node(Arc::new(node_with("c", &[("cpu", "1"), ("pods", "110")])));
        assert_eq!(
            message(attempt(&cache, &pod("p", &[("cpu", "2")]))),
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, \
             2 Insufficient cpu. preemption: 0/3 nodes are available: \
             1 Preemption is not helpful for scheduling, \
             2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn node_names_in_match_fields_limit_the_search() {
        let mut cache = Cache::default();
        for name in ["n1", "n2", "n3"] {
            cache.set_node(Arc::new(node_with(name, &[("cpu", "1"), ("pods", "110")])));
        }
        let mut daemon = pod("d", &[("cpu", "2")]);
        daemon.spec.get_or_insert_default().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: None,
                        match_fields: Some(vec![requirement("metadata.name", "In", &["n2"])]),
                    }],
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(
            message(attempt(&cache, &daemon)),
            "0/3 nodes are available: 1 Insufficient cpu, \
             2 node(s) didn't satisfy plugin(s) [NodeAffinity]. \
             preemption: 0/3 nodes are available: \
             1 No preemption victims found for incoming pod, \
             2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn large_clusters_search_a_share_of_their_nodes() {
        assert_eq!(feasible_nodes_to_find(50), 50);
        assert_eq!(feasible_nodes_to_find(100), 100);
        assert_eq!(feasible_nodes_to_find(1000), 420);
        assert_eq!(feasible_nodes_to_find(5000), 500);
        assert_eq!(feasible_nodes_to_find(150), 100);
    }

    #[test]
    fn successive_attempts_start_where_the_last_stopped() {
        let mut cache = Cache::default();
        for i in 0..150 {
            cache.set_node(Arc::new(node_with(&format!("n{i:03}"), ROOMY)));
        }
        let mut rotation = Rotation::default();
        let mut rng = StdRng::seed_from_u64(1);
        let p = pod("p", &[]);
        schedule(&p, &cache, &NamespaceLabels::new(), &mut rotation, &mut rng).ok();
        assert_eq!(rotation.next_start, 100);
        schedule(&p, &cache, &NamespaceLabels::new(), &mut rotation, &mut rng).ok();
        assert_eq!(rotation.next_start, 50);
    }
}
