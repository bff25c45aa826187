//! Which pods the pod garbage collector deletes, as plain functions over the cached pods and
//! nodes (upstream's `gcTerminated`, `gcTerminating`, `gcOrphaned` and
//! `gcUnscheduledTerminating`), and the quarantine of node names that pods are bound to but
//! the node cache lacks.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};

/// The taint an administrator puts on a node that is down for good, so that its terminating
/// pods may go without the kubelet's word.
pub const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Finished: Succeeded or Failed.
pub fn is_terminated(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Evicted by a kubelet (Failed with reason `Evicted`): these go first, before finished pods
/// a controller may still look at.
fn is_evicted(pod: &Pod) -> bool {
    phase(pod) == "Failed"
        && pod.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted")
}

/// The finished pods over `threshold`, evicted ones first, then the oldest (by creation,
/// then name). A threshold of 0 keeps every finished pod.
pub fn terminated_over_threshold(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut finished: Vec<Arc<Pod>> = pods.iter().filter(|p| is_terminated(p)).cloned().collect();
    let excess = finished.len().saturating_sub(threshold);
    if excess == 0 {
        return Vec::new();
    }
    finished.sort_by(|a, b| {
        is_evicted(b)
            .cmp(&is_evicted(a))
            .then_with(|| {
                let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
                created(a).cmp(&created(b))
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    finished.truncate(excess);
    finished
}

/// Pods being deleted that were never scheduled: no kubelet will ever finish them.
pub fn unscheduled_terminating(pods: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some() && node_name(p).is_empty())
        .cloned()
        .collect()
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Pods being deleted on a node that is not ready and is tainted out of service: its
/// kubelet will not finish them.
pub fn terminating_out_of_service(pods: &[Arc<Pod>], nodes: &[Arc<Node>]) -> Vec<Arc<Pod>> {
    let out_of_service: HashSet<&str> = nodes
        .iter()
        .filter(|n| !is_ready(n))
        .filter(|n| {
            n.spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .into_iter()
                .flatten()
                .any(|t| t.key == OUT_OF_SERVICE_TAINT)
        })
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some())
        .filter(|p| out_of_service.contains(node_name(p)))
        .cloned()
        .collect()
}

/// The node names pods are bound to that no cached node has.
pub fn missing_nodes(pods: &[Arc<Pod>], nodes: &[Arc<Node>]) -> HashSet<String> {
    let known: HashSet<&str> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    pods.iter()
        .map(|p| node_name(p))
        .filter(|n| !n.is_empty() && !known.contains(n))
        .map(str::to_owned)
        .collect()
}

/// The pods bound to one of `gone` (nodes confirmed deleted).
pub fn orphaned(pods: &[Arc<Pod>], gone: &HashSet<String>) -> Vec<Arc<Pod>> {
    pods.iter()
        .filter(|p| gone.contains(node_name(p)))
        .cloned()
        .collect()
}

/// Node names missing from the cache wait out a quarantine before the API is asked whether
/// they are really gone: a node the cache has not seen yet (it registered a moment ago) must
/// not cost its pods.
#[derive(Debug, Default)]
pub struct Quarantine {
    since: HashMap<String, Instant>,
}

impl Quarantine {
    /// Records the names missing at `now` (forgetting the others); returns those missing for
    /// `period` or longer, which leave the quarantine (a name still missing after the API
    /// check starts a new one).
    pub fn due(
        &mut self,
        missing: &HashSet<String>,
        now: Instant,
        period: Duration,
    ) -> Vec<String> {
        self.since.retain(|name, _| missing.contains(name));
        for name in missing {
            self.since.entry(name.clone()).or_insert(now);
        }
        let due: Vec<String> = self
            .since
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= period)
            .map(|(name, _)| name.clone())
            .collect();
        for name in &due {
            self.since.remove(name);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        NodeCondition, NodeSpec, NodeStatus, PodSpec, PodStatus, Taint,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn pod(name: &str, node: &str, phase: &str, created: i64) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Timestamp::from_second(created).ok().map(Time),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.into()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..PodStatus::default()
            }),
        })
    }

    fn deleting(pod: &Arc<Pod>) -> Arc<Pod> {
        let mut pod = (**pod).clone();
        pod.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        Arc::new(pod)
    }

    fn node(name: &str, ready: bool, taint: Option<&str>) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: taint.map(|key| {
                    vec![Taint {
                        key: key.into(),
                        effect: "NoExecute".into(),
                        ..Taint::default()
                    }]
                }),
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..NodeCondition::default()
                }]),
                ..NodeStatus::default()
            }),
        })
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<&str> {
        pods.iter()
            .filter_map(|p| p.metadata.name.as_deref())
            .collect()
    }

    #[test]
    fn finished_pods_over_the_threshold_go_evicted_then_oldest_first() {
        let mut evicted = (*pod("evicted", "n", "Failed", 50)).clone();
        if let Some(status) = evicted.status.as_mut() {
            status.reason = Some("Evicted".into());
        }
        let pods = vec![
            pod("new", "n", "Succeeded", 30),
            pod("old", "n", "Failed", 10),
            pod("running", "n", "Running", 1),
            pod("b-mid", "n", "Succeeded", 20),
            pod("a-mid", "n", "Succeeded", 20),
            Arc::new(evicted),
        ];
        assert_eq!(
            names(&terminated_over_threshold(&pods, 5)),
            Vec::<&str>::new()
        );
        assert_eq!(
            names(&terminated_over_threshold(&pods, 3)),
            ["evicted", "old"]
        );
        assert_eq!(
            names(&terminated_over_threshold(&pods, 1)),
            ["evicted", "old", "a-mid", "b-mid"]
        );
        assert!(terminated_over_threshold(&pods, 0).is_empty());
    }

    #[test]
    fn terminating_pods_go_when_unscheduled_or_on_an_out_of_service_node() {
        let pods = vec![
            deleting(&pod("unscheduled", "", "Pending", 1)),
            pod("pending", "", "Pending", 1),
            deleting(&pod("on-dead", "dead", "Running", 1)),
            deleting(&pod("on-slow", "slow", "Running", 1)),
            pod("running-on-dead", "dead", "Running", 1),
        ];
        assert_eq!(names(&unscheduled_terminating(&pods)), ["unscheduled"]);
        let nodes = vec![
            node("dead", false, Some(OUT_OF_SERVICE_TAINT)),
            // Not ready but not declared out of service: its kubelet may come back.
            node("slow", false, None),
        ];
        assert_eq!(
            names(&terminating_out_of_service(&pods, &nodes)),
            ["on-dead"]
        );
        let tainted_but_ready = vec![node("dead", true, Some(OUT_OF_SERVICE_TAINT))];
        assert!(terminating_out_of_service(&pods, &tainted_but_ready).is_empty());
    }

    #[test]
    fn pods_on_missing_nodes_are_orphans_once_the_nodes_are_confirmed_gone() {
        let pods = vec![
            pod("a", "gone", "Running", 1),
            pod("b", "here", "Running", 1),
            pod("c", "", "Pending", 1),
        ];
        let nodes = vec![node("here", true, None)];
        let missing = missing_nodes(&pods, &nodes);
        assert_eq!(missing, HashSet::from(["gone".to_owned()]));
        assert_eq!(names(&orphaned(&pods, &missing)), ["a"]);
    }

    #[test]
    fn missing_nodes_wait_out_the_quarantine() {
        let period = Duration::from_secs(40);
        let start = Instant::now();
        let mut quarantine = Quarantine::default();
        let gone = HashSet::from(["gone".to_owned()]);
        assert!(quarantine.due(&gone, start, period).is_empty());
        assert!(
            quarantine
                .due(&gone, start + Duration::from_secs(20), period)
                .is_empty()
        );
        assert_eq!(quarantine.due(&gone, start + period, period), ["gone"]);
        // Checked once; still missing later starts a new quarantine.
        assert!(quarantine.due(&gone, start + period, period).is_empty());
        // A name that shows up again is forgotten.
        let later = start + period + Duration::from_secs(10);
        assert!(quarantine.due(&gone, later, period).is_empty());
        assert!(quarantine.due(&HashSet::new(), later, period).is_empty());
        assert!(quarantine.due(&gone, later + period, period).is_empty());
    }
}
