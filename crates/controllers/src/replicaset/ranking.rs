//! Which pods go first when a controller scales down: upstream's `ActivePodsWithRanks` order
//! (`pkg/controller/controller_utils.go`) with `getPodsRankedByRelatedPodsOnSameNode`
//! (`pkg/controller/replicaset/replica_set.go`), with the `PodDeletionCost` and
//! `LogarithmicScaleDown` behaviour upstream has on by default. Earlier in the order is
//! deleted first:
//!
//! 1. unscheduled before scheduled;
//! 2. Pending before Unknown before Running;
//! 3. not ready before ready;
//! 4. lower `controller.kubernetes.io/pod-deletion-cost` first;
//! 5. more related pods on the same node first (spreads what stays);
//! 6. of two ready pods, the more recently ready first (compared by the base-2 logarithm of
//!    how long, so pods of a similar age are ordered by UID: a random but stable pick);
//! 7. more container restarts first;
//! 8. the more recently created first (again by logarithmic age, then UID).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::pods;

/// The annotation that orders deletions among otherwise equal pods.
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The `count` pods of `candidates` to delete. `related` are the pods of every ReplicaSet
/// with the same controller (the same Deployment), this one's included; they decide how
/// crowded each node is.
pub fn pods_to_delete(
    candidates: &[Arc<Pod>],
    related: &[Arc<Pod>],
    count: usize,
    now: Timestamp,
) -> Vec<Arc<Pod>> {
    if count >= candidates.len() {
        return candidates.to_vec();
    }
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for pod in related.iter().filter(|p| pods::is_active(p)) {
        *on_node.entry(node_of(pod)).or_default() += 1;
    }
    let mut ranked: Vec<(usize, &Arc<Pod>)> = candidates
        .iter()
        .map(|pod| (on_node.get(node_of(pod)).copied().unwrap_or(0), pod))
        .collect();
    ranked.sort_by(|(rank_a, a), (rank_b, b)| order(a, *rank_a, b, *rank_b, now));
    ranked
        .into_iter()
        .take(count)
        .map(|(_, pod)| Arc::clone(pod))
        .collect()
}

fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match pods::phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

/// The order of the module doc: `Less` means `a` is deleted before `b`.
fn order(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize, now: Timestamp) -> Ordering {
    let (node_a, node_b) = (node_of(a), node_of(b));
    if node_a != node_b && (node_a.is_empty() || node_b.is_empty()) {
        return if node_a.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let by_phase = phase_ordinal(a).cmp(&phase_ordinal(b));
    if by_phase != Ordering::Equal {
        return by_phase;
    }
    let (ready_a, ready_b) = (pods::ready_since(a), pods::ready_since(b));
    if ready_a.is_some() != ready_b.is_some() {
        return if ready_a.is_none() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let by_cost = deletion_cost(a).cmp(&deletion_cost(b));
    if by_cost != Ordering::Equal {
        return by_cost;
    }
    if rank_a != rank_b {
        return rank_b.cmp(&rank_a);
    }
    if let (Some(since_a), Some(since_b)) = (ready_a, ready_b)
        && since_a != since_b
    {
        return newer_first(since_a, since_b, now, uid(a), uid(b));
    }
    let by_restarts = pods::max_restarts(b).cmp(&pods::max_restarts(a));
    if by_restarts != Ordering::Equal {
        return by_restarts;
    }
    let (created_a, created_b) = (
        a.metadata.creation_timestamp.as_ref().map(|t| t.0),
        b.metadata.creation_timestamp.as_ref().map(|t| t.0),
    );
    if created_a != created_b {
        return newer_first(created_a, created_b, now, uid(a), uid(b));
    }
    Ordering::Equal
}

/// Newer before older, a missing time before any; times within the same power-of-two age
/// bucket are ordered by UID instead.
fn newer_first(
    a: Option<Timestamp>,
    b: Option<Timestamp>,
    now: Timestamp,
    uid_a: &str,
    uid_b: &str,
) -> Ordering {
    let (Some(a), Some(b)) = (a, b) else {
        return if a.is_none() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    };
    let bucket = |t: Timestamp| -> i64 {
        let age = now.as_nanosecond() - t.as_nanosecond();
        if age > 0 {
            // floor(log2(age)); i128 has 128 bits.
            127 - i64::from(age.leading_zeros())
        } else {
            -1
        }
    };
    match bucket(a).cmp(&bucket(b)) {
        Ordering::Equal => uid_a.cmp(uid_b),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::pod;
    use k8s_openapi::api::core::v1::ContainerStatus;

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn deletes_the_least_useful_pods_first() {
        let now = at(100_000);
        let candidates: Vec<Arc<Pod>> = vec![
            Arc::new(pod("ready-old", "Running", "n1", Some(10), 0)),
            Arc::new(pod("running-not-ready", "Running", "n1", None, 0)),
            Arc::new(pod("unscheduled", "Pending", "", None, 0)),
            Arc::new(pod("pending", "Pending", "n1", None, 0)),
            Arc::new(pod("unknown", "Unknown", "n1", None, 0)),
            Arc::new(pod("ready-new", "Running", "n1", Some(99_000), 0)),
        ];
        let order = names(&pods_to_delete(&candidates, &[], 5, now));
        assert_eq!(
            order,
            [
                "unscheduled",
                "pending",
                "unknown",
                "running-not-ready",
                "ready-new"
            ]
        );
    }

    #[test]
    fn all_candidates_when_deleting_at_least_as_many() {
        let candidates = vec![Arc::new(pod("a", "Running", "n", None, 0))];
        assert_eq!(pods_to_delete(&candidates, &[], 3, at(1)).len(), 1);
    }

    #[test]
    fn deletion_cost_then_crowded_nodes() {
        let now = at(1000);
        let mut cheap = pod("cheap", "Running", "n1", Some(10), 0);
        cheap.metadata.annotations = Some(
            [(DELETION_COST.to_owned(), "-5".to_owned())]
                .into_iter()
                .collect(),
        );
        let candidates = vec![
            Arc::new(pod("alone", "Running", "n2", Some(10), 0)),
            Arc::new(pod("crowded", "Running", "n1", Some(10), 0)),
            Arc::new(cheap),
        ];
        let related: Vec<Arc<Pod>> = vec![
            Arc::new(pod("x", "Running", "n1", Some(10), 0)),
            Arc::new(pod("y", "Running", "n1", Some(10), 0)),
            Arc::new(pod("z", "Running", "n2", Some(10), 0)),
        ];
        assert_eq!(
            names(&pods_to_delete(&candidates, &related, 2, now)),
            ["cheap", "crowded"]
        );
    }

    #[test]
    fn restarts_then_newest_created() {
        let now = at(1_000_000);
        let mut restarted = pod("restarted", "Running", "n", None, 10);
        if let Some(status) = restarted.status.as_mut() {
            status.container_statuses = Some(vec![ContainerStatus {
                name: "c".into(),
                restart_count: 4,
                ..Default::default()
            }]);
        }
        let candidates = vec![
            Arc::new(pod("old", "Running", "n", None, 10)),
            Arc::new(pod("new", "Running", "n", None, 900_000)),
            Arc::new(restarted),
        ];
        assert_eq!(
            names(&pods_to_delete(&candidates, &[], 2, now)),
            ["restarted", "new"]
        );
    }

    #[test]
    fn similar_ages_are_ordered_by_uid() {
        let now = at(10_000);
        // 1000 s and 1010 s old: the same power-of-two bucket of nanoseconds.
        let candidates = vec![
            Arc::new(pod("b", "Running", "n", None, 9_000)),
            Arc::new(pod("a", "Running", "n", None, 8_990)),
        ];
        assert_eq!(names(&pods_to_delete(&candidates, &[], 1, now)), ["a"]);
    }
}
