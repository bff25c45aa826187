//! The annotations a Deployment keeps on itself and its ReplicaSets (upstream's
//! `pkg/controller/deployment/util/deployment_util.go`):
//!
//! - `deployment.kubernetes.io/revision`: the rollout sequence number. The new ReplicaSet
//!   gets one more than the highest of the old ones; the Deployment copies its new
//!   ReplicaSet's. A ReplicaSet brought back by a rollback gets a new number and remembers
//!   its old ones in `deployment.kubernetes.io/revision-history`.
//! - `deployment.kubernetes.io/desired-replicas` and `max-replicas`: `spec.replicas` and
//!   `spec.replicas + maxSurge` when the ReplicaSet was last scaled by the Deployment; a
//!   difference from the Deployment's current values marks a scaling event, and
//!   `max-replicas` gives each ReplicaSet its share when scaling proportionally.
//!
//! The Deployment's other annotations are copied to its new ReplicaSet (so
//! `kubernetes.io/change-cause` shows in `kubectl rollout history`), except these and
//! `kubectl.kubernetes.io/last-applied-configuration`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The annotation extensions/v1beta1 rollbacks used; never copied.
const DEPRECATED_ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";

/// Upstream keeps `revision-history` under about 2000 characters.
pub const MAX_HISTORY_CHARS: usize = 2000;

fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED
            | REVISION
            | REVISION_HISTORY
            | DESIRED_REPLICAS
            | MAX_REPLICAS
            | DEPRECATED_ROLLBACK_TO
    )
}

fn annotation<'a>(annotations: Option<&'a BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    annotations?.get(key).map(String::as_str)
}

/// The revision of a ReplicaSet or Deployment: 0 without the annotation, an error when it
/// is not a number.
pub fn revision(
    annotations: Option<&BTreeMap<String, String>>,
) -> Result<i64, std::num::ParseIntError> {
    annotation(annotations, REVISION).map_or(Ok(0), str::parse)
}

/// The highest revision among `sets`, skipping unparsable ones.
pub fn max_revision<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    sets.into_iter()
        .filter_map(|rs| revision(rs.metadata.annotations.as_ref()).ok())
        .max()
        .unwrap_or(0)
        .max(0)
}

pub fn desired_replicas(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs.metadata.annotations.as_ref(), DESIRED_REPLICAS)?
        .parse()
        .ok()
}

pub fn max_replicas(rs: &ReplicaSet) -> Option<i32> {
    annotation(rs.metadata.annotations.as_ref(), MAX_REPLICAS)?
        .parse()
        .ok()
}

/// Whether `rs` already records `desired` and `max` replicas.
pub fn replicas_annotations_current(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.as_ref();
    annotation(annotations, DESIRED_REPLICAS) == Some(desired.to_string().as_str())
        && annotation(annotations, MAX_REPLICAS) == Some(max.to_string().as_str())
}

pub fn set_replicas_annotations(
    annotations: &mut BTreeMap<String, String>,
    desired: i32,
    max: i32,
) {
    annotations.insert(DESIRED_REPLICAS.into(), desired.to_string());
    annotations.insert(MAX_REPLICAS.into(), max.to_string());
}

/// Brings the new ReplicaSet's annotations up to date (upstream's
/// `SetNewReplicaSetAnnotations`): the Deployment's copyable annotations, the revision
/// `new_revision` if its own is lower (recording the old one in the history), and for a
/// ReplicaSet about to be created the replicas annotations. Returns whether anything changed.
pub fn update_new_replica_set_annotations(
    deployment: &Deployment,
    annotations: &mut BTreeMap<String, String>,
    new_revision: i64,
    replicas: Option<(i32, i32)>,
) -> bool {
    let mut changed = false;
    for (key, value) in deployment.metadata.annotations.iter().flatten() {
        if skip_copy(key) || annotations.get(key) == Some(value) {
            continue;
        }
        annotations.insert(key.clone(), value.clone());
        changed = true;
    }
    let old = annotations.get(REVISION).cloned();
    let old_number = match old.as_deref().map(str::parse::<i64>) {
        None => 0,
        Some(Ok(number)) => number,
        // Upstream leaves a ReplicaSet with a garbled revision alone.
        Some(Err(_)) => return changed,
    };
    if old_number < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            append_history(annotations, &old);
        }
    }
    if let Some((desired, max)) = replicas {
        let before = annotations.clone();
        set_replicas_annotations(annotations, desired, max);
        changed |= *annotations != before;
    }
    changed
}

/// Appends `old` to `revision-history`, dropping the oldest entries to stay within
/// [`MAX_HISTORY_CHARS`].
fn append_history(annotations: &mut BTreeMap<String, String>, old: &str) {
    let history = annotations
        .get(REVISION_HISTORY)
        .cloned()
        .unwrap_or_default();
    if history.is_empty() {
        annotations.insert(REVISION_HISTORY.into(), old.to_owned());
        return;
    }
    let mut entries: Vec<&str> = history.split(',').collect();
    let mut length = history.len() + old.len() + 1;
    let mut start = 0;
    while length > MAX_HISTORY_CHARS && start < entries.len() {
        length -= entries[start].len() + 1;
        start += 1;
    }
    if length <= MAX_HISTORY_CHARS {
        entries.drain(..start);
        entries.push(old);
        annotations.insert(REVISION_HISTORY.into(), entries.join(","));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn deployment(annotations: &[(&str, &str)]) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                annotations: Some(map(annotations)),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_new_replica_set_gets_the_next_revision_and_the_copyable_annotations() {
        let d = deployment(&[
            ("kubernetes.io/change-cause", "kubectl set image"),
            (REVISION, "7"),
            (LAST_APPLIED, "{}"),
        ]);
        let mut annotations = BTreeMap::new();
        assert!(update_new_replica_set_annotations(
            &d,
            &mut annotations,
            3,
            Some((4, 5))
        ));
        assert_eq!(
            annotations,
            map(&[
                ("kubernetes.io/change-cause", "kubectl set image"),
                (REVISION, "3"),
                (DESIRED_REPLICAS, "4"),
                (MAX_REPLICAS, "5"),
            ])
        );
        assert!(!update_new_replica_set_annotations(
            &d,
            &mut annotations,
            3,
            None
        ));
    }

    #[test]
    fn a_rolled_back_replica_set_keeps_its_old_revisions() {
        let d = deployment(&[]);
        let mut annotations = map(&[(REVISION, "1")]);
        assert!(update_new_replica_set_annotations(
            &d,
            &mut annotations,
            3,
            None
        ));
        assert_eq!(annotations[REVISION], "3");
        assert_eq!(annotations[REVISION_HISTORY], "1");
        assert!(update_new_replica_set_annotations(
            &d,
            &mut annotations,
            5,
            None
        ));
        assert_eq!(annotations[REVISION_HISTORY], "1,3");
        // Never lowered.
        assert!(!update_new_replica_set_annotations(
            &d,
            &mut annotations,
            2,
            None
        ));
        assert_eq!(annotations[REVISION], "5");
    }

    #[test]
    fn the_history_stays_bounded() {
        let mut annotations = map(&[(REVISION_HISTORY, &"1,".repeat(999)), (REVISION, "2")]);
        annotations.insert(REVISION_HISTORY.into(), format!("{}1", "1,".repeat(999)));
        append_history(&mut annotations, "12345");
        let history = &annotations[REVISION_HISTORY];
        assert!(history.len() <= MAX_HISTORY_CHARS);
        assert!(history.ends_with(",12345"));
    }

    #[test]
    fn revisions_parse_and_the_highest_wins() {
        let rs = |revision: &str| ReplicaSet {
            metadata: ObjectMeta {
                annotations: Some(map(&[(REVISION, revision)])),
                ..Default::default()
            },
            ..Default::default()
        };
        let sets = [rs("2"), rs("x"), rs("10"), ReplicaSet::default()];
        assert_eq!(max_revision(&sets), 10);
        assert!(revision(sets[1].metadata.annotations.as_ref()).is_err());
        assert_eq!(revision(None), Ok(0));
    }
}
