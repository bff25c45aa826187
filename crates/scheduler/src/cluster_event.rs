//! Changes in the cluster that may let a pod that did not fit fit now (upstream's
//! `ClusterEvent`s). Node updates are classified the way upstream does, so that the status
//! heartbeats a kubelet sends every few seconds wake nobody.

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::cache::PodInfo;
use crate::resources::{self, Resources};
use crate::selectors;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    NodeAdded,
    NodeChanged(NodeChange),
    NodeDeleted,
    AssignedPodAdded,
    AssignedPodChanged(PodChange),
    AssignedPodDeleted,
}

/// What changed in a node, as far as scheduling cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeChange {
    pub labels: bool,
    /// Taints or `spec.unschedulable` (upstream's `UpdateNodeTaint` covers both).
    pub taints: bool,
    pub allocatable: bool,
}

/// What changed in a pod bound to a node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodChange {
    pub labels: bool,
    /// Some request went down, leaving room on the node.
    pub scaled_down: bool,
}

/// The event a node update makes, `None` when nothing scheduling looks at changed.
pub fn node_changed(old: &Node, new: &Node) -> Option<ClusterEvent> {
    let unschedulable = |n: &Node| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
    let allocatable = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    let change = NodeChange {
        labels: old.metadata.labels != new.metadata.labels,
        taints: selectors::node_taints(old) != selectors::node_taints(new)
            || unschedulable(old) != unschedulable(new),
        allocatable: allocatable(old) != allocatable(new),
    };
    (change != NodeChange::default()).then_some(ClusterEvent::NodeChanged(change))
}

/// The event an update of a bound pod makes, `None` when nothing scheduling looks at changed.
pub fn assigned_pod_changed(old: &PodInfo, new: &Pod) -> Option<ClusterEvent> {
    let new_requests = resources::pod_requests(new);
    let change = PodChange {
        labels: old.pod.metadata.labels != new.metadata.labels,
        scaled_down: decreased(&old.requests, &new_requests),
    };
    (change != PodChange::default()).then_some(ClusterEvent::AssignedPodChanged(change))
}

fn decreased(old: &Resources, new: &Resources) -> bool {
    new.milli_cpu < old.milli_cpu
        || new.memory < old.memory
        || new.ephemeral_storage < old.ephemeral_storage
        || old
            .scalar
            .iter()
            .any(|(name, amount)| new.get(name) < *amount)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};

    use super::*;
    use crate::cache::tests::{node_with, pod};
    use crate::selectors::tests::taint;

    #[test]
    fn heartbeats_change_nothing_that_matters() {
        let old = node_with("n1", &[("cpu", "2")]);
        let mut new = old.clone();
        new.status
            .get_or_insert_with(NodeStatus::default)
            .conditions = Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        }]);
        assert_eq!(node_changed(&old, &new), None);
    }

    #[test]
    fn labels_taints_and_allocatable_are_told_apart() {
        let old = node_with("n1", &[("cpu", "2")]);
        let mut labelled = old.clone();
        labelled
            .metadata
            .labels
            .get_or_insert_default()
            .insert("zone".into(), "a".into());
        assert_eq!(
            node_changed(&old, &labelled),
            Some(ClusterEvent::NodeChanged(NodeChange {
                labels: true,
                ..Default::default()
            }))
        );
        let mut tainted = old.clone();
        tainted.spec.get_or_insert_default().taints = Some(vec![taint("k", "v", "NoSchedule")]);
        let mut cordoned = old.clone();
        cordoned.spec.get_or_insert_default().unschedulable = Some(true);
        for new in [tainted, cordoned] {
            assert_eq!(
                node_changed(&old, &new),
                Some(ClusterEvent::NodeChanged(NodeChange {
                    taints: true,
                    ..Default::default()
                }))
            );
        }
        let bigger = node_with("n1", &[("cpu", "4")]);
        assert_eq!(
            node_changed(&old, &bigger),
            Some(ClusterEvent::NodeChanged(NodeChange {
                allocatable: true,
                ..Default::default()
            }))
        );
    }

    #[test]
    fn bound_pods_report_scale_downs_and_label_changes() {
        let old = PodInfo::new(Arc::new(pod("a", &[("cpu", "1")])));
        assert_eq!(assigned_pod_changed(&old, &pod("a", &[("cpu", "1")])), None);
        assert_eq!(
            assigned_pod_changed(&old, &pod("a", &[("cpu", "500m")])),
            Some(ClusterEvent::AssignedPodChanged(PodChange {
                scaled_down: true,
                ..Default::default()
            }))
        );
        assert_eq!(assigned_pod_changed(&old, &pod("a", &[("cpu", "2")])), None);
        let mut relabelled = pod("a", &[("cpu", "1")]);
        relabelled.metadata.labels = Some([("app".to_owned(), "web".to_owned())].into());
        assert_eq!(
            assigned_pod_changed(&old, &relabelled),
            Some(ClusterEvent::AssignedPodChanged(PodChange {
                labels: true,
                ..Default::default()
            }))
        );
    }
}
