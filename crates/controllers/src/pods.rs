//! What workload controllers need to know about a pod (upstream's `podutil` and
//! `controller.IsPodActive`), and the pod a controller creates from its template
//! (upstream's `GetPodFromTemplate`).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Not finished (Succeeded or Failed) and not being deleted: a pod that counts as a replica.
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// When the pod's Ready condition last turned True, if it is True now.
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let ready = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (ready.status == "True").then(|| ready.last_transition_time.as_ref().map(|t| t.0))
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// How long until a ready pod has been ready for `min_ready_seconds` (upstream's
/// `IsPodAvailable`, strictly after): zero when it is available now, `None` when it is not
/// ready.
pub fn until_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<Duration> {
    let since = ready_since(pod)?;
    if min_ready_seconds <= 0 {
        return Some(Duration::ZERO);
    }
    let Some(since) = since else {
        // Ready without a transition time: upstream never counts it available.
        return None;
    };
    let available_at = since
        .as_nanosecond()
        .saturating_add(i128::from(min_ready_seconds) * 1_000_000_000);
    let now = now.as_nanosecond();
    if available_at < now {
        Some(Duration::ZERO)
    } else {
        let left = u64::try_from(available_at - now).unwrap_or(u64::MAX);
        // Strictly after: one more nanosecond than the difference.
        Some(Duration::from_nanos(left.saturating_add(1)))
    }
}

pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    until_available(pod, min_ready_seconds, now) == Some(Duration::ZERO)
}

/// The highest restart count among the pod's containers (and its restartable init
/// containers, which restart like them).
pub fn max_restarts(pod: &Pod) -> i32 {
    let Some(status) = pod.status.as_ref() else {
        return 0;
    };
    status
        .container_statuses
        .iter()
        .chain(status.init_container_statuses.iter())
        .flatten()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
}

/// The pod a controller creates from `template`: the template's labels, annotations and
/// finalizers, `generateName` `<owner>-` (the API server adds five random characters), and
/// the controller reference.
pub fn from_template(template: &PodTemplateSpec, owner: OwnerReference, namespace: &str) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", owner.name)),
            namespace: Some(namespace.to_owned()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    /// A pod for tests: `phase`, on `node` (empty: unscheduled), Ready since `ready_at`
    /// seconds after the epoch (if given), created `created` seconds after the epoch.
    pub fn pod(name: &str, phase: &str, node: &str, ready_at: Option<i64>, created: i64) -> Pod {
        let at = |s: i64| Time(Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH));
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                creation_timestamp: Some(at(created)),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_owned()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_at.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(at(t)),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn availability_waits_min_ready_seconds_strictly() {
        let ready = pod("a", "Running", "n", Some(100), 0);
        let at = |s| Timestamp::from_second(s).unwrap_or(Timestamp::UNIX_EPOCH);
        assert!(is_available(&ready, 0, at(100)));
        assert!(!is_available(&ready, 10, at(110)), "not strictly after");
        assert!(is_available(&ready, 10, at(111)));
        assert_eq!(
            until_available(&ready, 10, at(105)),
            Some(Duration::from_nanos(5_000_000_001))
        );
        let not_ready = pod("b", "Running", "n", None, 0);
        assert_eq!(until_available(&not_ready, 0, at(200)), None);
    }

    #[test]
    fn finished_or_deleted_pods_are_not_active() {
        assert!(is_active(&pod("a", "Running", "n", None, 0)));
        assert!(is_active(&pod("a", "Pending", "", None, 0)));
        assert!(!is_active(&pod("a", "Succeeded", "n", None, 0)));
        assert!(!is_active(&pod("a", "Failed", "n", None, 0)));
        let mut deleting = pod("a", "Running", "n", None, 0);
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert!(!is_active(&deleting));
    }
}
