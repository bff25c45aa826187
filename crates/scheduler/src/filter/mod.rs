//! The filters of upstream's default profile, run in its order, each rejecting a node with
//! upstream's reason text: `NodeUnschedulable`, `TaintToleration`, `NodeAffinity`,
//! `NodePorts`, `NodeResourcesFit`, `PodTopologySpread`, `InterPodAffinity`. What they need
//! about the pod and the whole cluster is computed once per attempt by [`prefilter`]
//! (upstream's PreFilter), then [`filter`] judges one node.
//!
//! Not here: `NodeName` (the scheduler only takes pods without `spec.nodeName`), the volume
//! filters (`VolumeRestrictions`, `NodeVolumeLimits`, `VolumeBinding`, `VolumeZone`) and
//! `DynamicResources`, which have nothing to work on until persistent volumes land.

pub mod fit;
pub mod inter_pod_affinity;
pub mod node;
pub mod ports;
pub mod topology_spread;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::Pod;

use crate::cache::{HostPort, NodeView, host_ports};
use crate::cluster_event::ClusterEvent;
use crate::resources::{self, Resources};
use crate::selectors::RequiredNodeAffinity;

/// Every namespace's labels, for pod affinity terms with a `namespaceSelector`.
pub type NamespaceLabels = HashMap<String, BTreeMap<String, String>>;

/// The upstream plugin a rejection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Plugin {
    NodeUnschedulable,
    TaintToleration,
    NodeAffinity,
    NodePorts,
    NodeResourcesFit,
    PodTopologySpread,
    InterPodAffinity,
}

impl Plugin {
    /// Whether a change in the cluster may let a pod this plugin rejected fit now, from the
    /// events each upstream plugin registers (`EventsToRegister`).
    pub fn cares_about(self, event: &ClusterEvent) -> bool {
        use ClusterEvent as E;
        match (self, event) {
            (_, E::NodeAdded) => true,
            (Self::NodeUnschedulable | Self::TaintToleration, E::NodeChanged(change)) => {
                change.taints
            }
            (Self::NodeAffinity | Self::InterPodAffinity, E::NodeChanged(change)) => change.labels,
            (Self::NodeResourcesFit, E::NodeChanged(change)) => change.allocatable,
            (Self::PodTopologySpread, E::NodeChanged(change)) => change.labels || change.taints,
            (Self::PodTopologySpread, E::NodeDeleted) => true,
            (Self::NodePorts, E::AssignedPodDeleted) => true,
            (Self::NodeResourcesFit, E::AssignedPodDeleted) => true,
            (Self::NodeResourcesFit, E::AssignedPodChanged(change)) => change.scaled_down,
            (
                Self::PodTopologySpread | Self::InterPodAffinity,
                E::AssignedPodAdded | E::AssignedPodDeleted,
            ) => true,
            (Self::PodTopologySpread | Self::InterPodAffinity, E::AssignedPodChanged(change)) => {
                change.labels
            }
            _ => false,
        }
    }
}

/// Why a node cannot take the pod (upstream's `Unschedulable` status and its reasons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub plugin: Plugin,
    /// Upstream's `UnschedulableAndUnresolvable`: evicting pods from the node would not help,
    /// so preemption does not consider it.
    pub unresolvable: bool,
    pub reasons: Vec<String>,
}

impl Rejection {
    pub fn unresolvable(plugin: Plugin, reason: impl Into<String>) -> Self {
        Self {
            plugin,
            unresolvable: true,
            reasons: vec![reason.into()],
        }
    }

    pub fn resolvable(plugin: Plugin, reasons: Vec<String>) -> Self {
        Self {
            plugin,
            unresolvable: false,
            reasons,
        }
    }
}

pub type Verdict = Result<(), Rejection>;

/// What the filters and scores compute once per scheduling attempt (upstream's cycle state).
#[derive(Debug)]
pub struct CycleState<'a> {
    pub pod: &'a Pod,
    pub requests: Resources,
    /// The requests with upstream's defaults for missing CPU and memory, for scores.
    pub non_zero_requests: Resources,
    pub host_ports: Vec<HostPort>,
    pub required_affinity: RequiredNodeAffinity<'a>,
    /// The only nodes worth trying, when the node affinity names them (upstream's
    /// `PreFilterResult`); `None` means every node.
    pub node_names: Option<BTreeSet<String>>,
    pub topology_spread: topology_spread::State,
    pub inter_pod_affinity: inter_pod_affinity::State,
}

/// Upstream's PreFilter: everything about the pod and the cluster the filters need. Fails
/// only when no node could ever do (node affinity terms that name conflicting nodes).
pub fn prefilter<'a>(
    pod: &'a Pod,
    nodes: &[NodeView<'_>],
    namespaces: &NamespaceLabels,
) -> Result<CycleState<'a>, Rejection> {
    let required_affinity = RequiredNodeAffinity::of(pod);
    let node_names = node::prefilter_node_names(&required_affinity)?;
    Ok(CycleState {
        pod,
        requests: resources::pod_requests(pod),
        non_zero_requests: resources::pod_non_zero_requests(pod),
        host_ports: host_ports(pod),
        topology_spread: topology_spread::prefilter(pod, nodes, &required_affinity),
        inter_pod_affinity: inter_pod_affinity::prefilter(pod, nodes, namespaces),
        required_affinity,
        node_names,
    })
}

/// Runs the filters in upstream's order; the first to reject the node decides.
pub fn filter(state: &CycleState<'_>, node: &NodeView<'_>) -> Verdict {
    node::unschedulable(state.pod, node)?;
    node::taints(state.pod, node)?;
    node::affinity(&state.required_affinity, node)?;
    ports::filter(&state.host_ports, node)?;
    fit::filter(&state.requests, node)?;
    topology_spread::filter(&state.topology_spread, node)?;
    inter_pod_affinity::filter(&state.inter_pod_affinity, node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster_event::{NodeChange, PodChange};

    #[test]
    fn plugins_wake_on_the_events_upstream_registers() {
        let taints = ClusterEvent::NodeChanged(NodeChange {
            taints: true,
            ..Default::default()
        });
        let labels = ClusterEvent::NodeChanged(NodeChange {
            labels: true,
            ..Default::default()
        });
        let allocatable = ClusterEvent::NodeChanged(NodeChange {
            allocatable: true,
            ..Default::default()
        });
        let scaled_down = ClusterEvent::AssignedPodChanged(PodChange {
            scaled_down: true,
            ..Default::default()
        });
        assert!(Plugin::TaintToleration.cares_about(&taints));
        assert!(!Plugin::TaintToleration.cares_about(&labels));
        assert!(Plugin::NodeAffinity.cares_about(&labels));
        assert!(!Plugin::NodeAffinity.cares_about(&ClusterEvent::AssignedPodDeleted));
        assert!(Plugin::NodeResourcesFit.cares_about(&allocatable));
        assert!(Plugin::NodeResourcesFit.cares_about(&scaled_down));
        assert!(Plugin::NodeResourcesFit.cares_about(&ClusterEvent::AssignedPodDeleted));
        assert!(!Plugin::NodeResourcesFit.cares_about(&ClusterEvent::AssignedPodAdded));
        assert!(Plugin::InterPodAffinity.cares_about(&ClusterEvent::AssignedPodAdded));
        assert!(Plugin::PodTopologySpread.cares_about(&ClusterEvent::NodeDeleted));
        for plugin in [
            Plugin::NodeUnschedulable,
            Plugin::NodePorts,
            Plugin::NodeAffinity,
        ] {
            assert!(plugin.cares_about(&ClusterEvent::NodeAdded));
        }
    }
}
