//! Upstream's `TaintToleration` score: the number of `PreferNoSchedule` taints the pod does
//! not tolerate (only tolerations for that effect, or for any effect, count); fewer is
//! better, so the caller normalizes it reversed.

use k8s_openapi::api::core::v1::Pod;

use crate::cache::NodeView;
use crate::selectors;

pub fn score(pod: &Pod, node: &NodeView<'_>) -> i64 {
    let tolerations: Vec<_> = selectors::pod_tolerations(pod)
        .iter()
        .filter(|t| matches!(t.effect.as_deref(), None | Some("" | "PreferNoSchedule")))
        .cloned()
        .collect();
    let untolerated = selectors::node_taints(node.node)
        .iter()
        .filter(|taint| taint.effect == "PreferNoSchedule")
        .filter(|taint| !selectors::any_tolerates(&tolerations, taint))
        .count();
    i64::try_from(untolerated).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodSpec;

    use super::*;
    use crate::cache::NodePods;
    use crate::resources::Allocatable;
    use crate::selectors::tests::{node, taint, toleration};

    #[test]
    fn counts_untolerated_prefer_no_schedule_taints() {
        let mut n = node("n1", &[]);
        n.spec.get_or_insert_default().taints = Some(vec![
            taint("a", "", "PreferNoSchedule"),
            taint("b", "", "PreferNoSchedule"),
            taint("c", "", "NoSchedule"),
        ]);
        let (allocatable, pods) = (Allocatable::default(), NodePods::default());
        let view = NodeView {
            node: &n,
            allocatable: &allocatable,
            pods: &pods,
        };
        let tolerating = |tolerations| Pod {
            spec: Some(PodSpec {
                tolerations: Some(tolerations),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(score(&Pod::default(), &view), 2);
        assert_eq!(
            score(&tolerating(vec![toleration("a", "Exists", "", "")]), &view),
            1
        );
        let soft = toleration("b", "Exists", "", "PreferNoSchedule");
        assert_eq!(score(&tolerating(vec![soft]), &view), 1);
        // A toleration for another effect does not count.
        let hard = toleration("a", "Exists", "", "NoSchedule");
        assert_eq!(score(&tolerating(vec![hard]), &view), 2);
    }
}
