//! The status the replica controller reports, from the pods it owns: upstream's
//! `calculateStatus` (`pkg/controller/replicaset/replica_set_utils.go`).
//!
//! `replicas` counts the active pods it owns, `fullyLabeledReplicas` those that carry every
//! label of the template, `readyReplicas` the ready ones, `availableReplicas` those ready for
//! at least `minReadySeconds`. A failed create or delete sets the `ReplicaFailure` condition
//! (reason `FailedCreate` or `FailedDelete`, the error as message); the next sync without
//! error removes it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::kind::{Condition, ReplicaStatus};
use crate::pods;

pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// What the status is computed from.
#[derive(Debug)]
pub struct Observed<'a> {
    pub previous: ReplicaStatus,
    pub generation: i64,
    pub desired: i32,
    pub min_ready_seconds: i32,
    pub template_labels: Option<&'a BTreeMap<String, String>>,
    /// The active pods the controller owns.
    pub pods: &'a [Arc<Pod>],
    /// The error of this sync's creates or deletes.
    pub failure: Option<&'a str>,
}

pub fn calculate(observed: &Observed<'_>, now: Timestamp) -> ReplicaStatus {
    let mut status = observed.previous.clone();
    let owned = observed.pods;
    let template = observed.template_labels;
    status.replicas = count(owned.iter());
    status.fully_labeled_replicas = count(owned.iter().filter(|pod| {
        let labels = pod.metadata.labels.as_ref();
        template
            .into_iter()
            .flatten()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    }));
    status.ready_replicas = count(owned.iter().filter(|pod| pods::is_ready(pod)));
    status.available_replicas = count(
        owned
            .iter()
            .filter(|pod| pods::is_available(pod, observed.min_ready_seconds, now)),
    );
    status.observed_generation = observed.generation;
    let has_failure = status.conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match observed.failure {
        Some(message) if !has_failure => {
            let diff = i64::try_from(owned.len()).unwrap_or(i64::MAX) - i64::from(observed.desired);
            let reason = match diff {
                d if d < 0 => "FailedCreate",
                d if d > 0 => "FailedDelete",
                _ => "",
            };
            status.conditions.push(Condition {
                type_: REPLICA_FAILURE.into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_transition_time: Some(Time(now)),
            });
        }
        None if has_failure => status.conditions.retain(|c| c.type_ != REPLICA_FAILURE),
        _ => {}
    }
    status
}

fn count<T>(items: impl Iterator<Item = T>) -> i32 {
    i32::try_from(items.count()).unwrap_or(i32::MAX)
}

/// When to look again so that pods now ready count as available once `minReadySeconds`
/// have passed (upstream requeues for the same reason).
pub fn next_availability_check(
    owned: &[Arc<Pod>],
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<Duration> {
    owned
        .iter()
        .filter_map(|pod| pods::until_available(pod, min_ready_seconds, now))
        .filter(|d| !d.is_zero())
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::pod;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn counts_labeled_ready_and_available_pods() {
        let template = labels(&[("app", "web"), ("tier", "front")]);
        let mut full = pod("full", "Running", "n", Some(100), 0);
        full.metadata.labels = Some(template.clone());
        let mut partial = pod("partial", "Running", "n", Some(195), 0);
        partial.metadata.labels = Some(labels(&[("app", "web")]));
        let owned = vec![
            Arc::new(full),
            Arc::new(partial),
            Arc::new(pod("starting", "Pending", "n", None, 0)),
        ];
        let now = Timestamp::from_second(200).unwrap_or(Timestamp::UNIX_EPOCH);
        let observed = Observed {
            previous: ReplicaStatus::default(),
            generation: 4,
            desired: 3,
            min_ready_seconds: 10,
            template_labels: Some(&template),
            pods: &owned,
            failure: None,
        };
        let status = calculate(&observed, now);
        assert_eq!(
            (
                status.replicas,
                status.fully_labeled_replicas,
                status.ready_replicas,
                status.available_replicas,
                status.observed_generation
            ),
            (3, 1, 2, 1, 4)
        );
        assert_eq!(
            next_availability_check(&owned, 10, now),
            Some(Duration::from_nanos(5_000_000_001))
        );
    }

    #[test]
    fn a_failed_create_sets_replica_failure_until_a_clean_sync() {
        let owned = vec![Arc::new(pod("a", "Running", "n", None, 0))];
        let now = Timestamp::UNIX_EPOCH;
        let mut observed = Observed {
            previous: ReplicaStatus::default(),
            generation: 1,
            desired: 3,
            min_ready_seconds: 0,
            template_labels: None,
            pods: &owned,
            failure: Some("pods \"web-\" is forbidden: exceeded quota"),
        };
        let failed = calculate(&observed, now);
        assert_eq!(failed.conditions.len(), 1);
        assert_eq!(failed.conditions[0].reason.as_deref(), Some("FailedCreate"));
        assert_eq!(failed.conditions[0].status, "True");

        observed.previous = failed.clone();
        observed.failure = Some("another error");
        assert_eq!(calculate(&observed, now).conditions, failed.conditions);

        observed.failure = None;
        assert!(calculate(&observed, now).conditions.is_empty());
    }
}
