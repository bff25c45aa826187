//! Graceful deletion of pods (upstream's `BeforeDelete` with the pod strategy's
//! `CheckGracefulDelete`): a pod on a node is not removed at once but marked with a
//! `deletionTimestamp` its grace period ahead, and the kubelet removes it (with a grace
//! period of 0) once its containers have stopped. A pod not on a node, or already finished,
//! goes at once. A second delete may only shorten a pending grace period.

use serde_json::Value;

/// What a DELETE of a pod does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Remove it now (or, with finalizers, mark it with a grace period of 0).
    Now,
    /// Mark it: `deletionTimestamp` now plus `seconds`, `deletionGracePeriodSeconds`.
    Mark { seconds: i64 },
    /// Already marked with a longer grace period: move the deadline to `seconds` after the
    /// mark's start (its timestamp less its grace period).
    Shorten { from: i64, to: i64 },
    /// Already marked, nothing shorter asked: leave it as it is.
    Pending,
}

fn int(value: &Value, pointer: &str) -> Option<i64> {
    value.pointer(pointer).and_then(Value::as_i64)
}

/// The decision for deleting `pod` with the request's `options` (`DeleteOptions`).
pub fn pod_deletion(pod: &Value, options: &Value) -> Deletion {
    let asked = int(options, "/gracePeriodSeconds").map(|s| s.max(0));
    let marked = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    if marked {
        let current = int(pod, "/metadata/deletionGracePeriodSeconds").unwrap_or(0);
        if current == 0 {
            return Deletion::Now;
        }
        return match asked {
            Some(to) if to < current => Deletion::Shorten { from: current, to },
            _ => Deletion::Pending,
        };
    }
    let mut seconds = asked
        .or_else(|| int(pod, "/spec/terminationGracePeriodSeconds"))
        .unwrap_or(0);
    let scheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    if !scheduled || matches!(phase, Some("Failed" | "Succeeded")) {
        seconds = 0;
    }
    if seconds > 0 {
        Deletion::Mark { seconds }
    } else {
        Deletion::Now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(node: &str, phase: &str) -> Value {
        json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 30},
            "status": {"phase": phase},
        })
    }

    #[test]
    fn a_running_pod_on_a_node_is_marked_for_its_grace_period_or_the_asked_one() {
        assert_eq!(
            pod_deletion(&pod("node-1", "Running"), &json!({})),
            Deletion::Mark { seconds: 30 }
        );
        assert_eq!(
            pod_deletion(&pod("node-1", "Running"), &json!({"gracePeriodSeconds": 5})),
            Deletion::Mark { seconds: 5 }
        );
        assert_eq!(
            pod_deletion(&pod("node-1", "Running"), &json!({"gracePeriodSeconds": 0})),
            Deletion::Now
        );
    }

    #[test]
    fn unscheduled_and_finished_pods_go_at_once() {
        assert_eq!(pod_deletion(&pod("", "Pending"), &json!({})), Deletion::Now);
        assert_eq!(
            pod_deletion(&pod("node-1", "Succeeded"), &json!({})),
            Deletion::Now
        );
        assert_eq!(
            pod_deletion(&pod("node-1", "Failed"), &json!({})),
            Deletion::Now
        );
    }

    #[test]
    fn a_marked_pod_only_gets_a_shorter_grace_period() {
        let mut marked = pod("node-1", "Running");
        marked["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:30Z");
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        assert_eq!(pod_deletion(&marked, &json!({})), Deletion::Pending);
        assert_eq!(
            pod_deletion(&marked, &json!({"gracePeriodSeconds": 60})),
            Deletion::Pending
        );
        assert_eq!(
            pod_deletion(&marked, &json!({"gracePeriodSeconds": 0})),
            Deletion::Shorten { from: 30, to: 0 }
        );
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        assert_eq!(pod_deletion(&marked, &json!({})), Deletion::Now);
    }
}
