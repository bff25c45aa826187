//! A Deployment's status and conditions, as plain functions (upstream's `calculateStatus`,
//! `syncRolloutStatus`, `requeueStuckDeployment`, `checkPausedConditions` and the condition
//! helpers of `deployment_util.go`).
//!
//! - `Available`: True with `MinimumReplicasAvailable` while at least
//!   `replicas - maxUnavailable` pods are available, else False with
//!   `MinimumReplicasUnavailable`.
//! - `Progressing` (only with a `progressDeadlineSeconds`): `NewReplicaSetCreated` /
//!   `FoundNewReplicaSet` when the rollout starts, `ReplicaSetUpdated` each time it moves,
//!   `NewReplicaSetAvailable` when complete, False with `ProgressDeadlineExceeded` when it
//!   has not moved for the deadline; Unknown with `DeploymentPaused` / `DeploymentResumed`.
//! - `ReplicaFailure`: copied from the ReplicaSets (the new one's first).

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::rollout::{self, available, desired, ready, status_replicas};

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
pub const NEW_REPLICA_SET: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// A condition with both times `now`.
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Sets a condition; one with the same status and reason already there is left as it is,
/// and a status that does not change keeps its transition time (upstream's
/// `SetDeploymentCondition`).
pub fn set_condition(status: &mut DeploymentStatus, mut new: DeploymentCondition) {
    if let Some(current) = get_condition(status, &new.type_) {
        if current.status == new.status && current.reason == new.reason {
            return;
        }
        if current.status == new.status {
            new.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &new.type_);
    status.conditions.get_or_insert_with(Vec::new).push(new);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
    }
}

fn nonzero(value: i32) -> Option<i32> {
    (value != 0).then_some(value)
}

/// The status as upstream writes it (zero counts and no conditions are absent), for
/// comparing what is stored with what was computed.
pub fn normalized(status: &DeploymentStatus) -> DeploymentStatus {
    let mut status = status.clone();
    for count in [
        &mut status.replicas,
        &mut status.updated_replicas,
        &mut status.ready_replicas,
        &mut status.available_replicas,
        &mut status.unavailable_replicas,
        &mut status.terminating_replicas,
    ] {
        *count = count.and_then(nonzero);
    }
    if status.observed_generation == Some(0) {
        status.observed_generation = None;
    }
    if status.conditions.as_ref().is_some_and(Vec::is_empty) {
        status.conditions = None;
    }
    status
}

pub fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|s| s != i32::MAX)
}

fn progress_deadline(d: &Deployment) -> Duration {
    let seconds = d
        .spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .unwrap_or(0);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

fn replicas_of(status: &DeploymentStatus) -> (i32, i32, i32, i32) {
    (
        status.replicas.unwrap_or(0),
        status.updated_replicas.unwrap_or(0),
        status.ready_replicas.unwrap_or(0),
        status.available_replicas.unwrap_or(0),
    )
}

/// The counts and the `Available` condition (upstream's `calculateStatus`). `all` may
/// include the new ReplicaSet.
pub fn calculate(
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let available_replicas: i32 = all.iter().map(|rs| available(rs)).sum();
    let total = rollout::total_replicas(all.iter().copied());
    let current = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all.iter().map(|rs| status_replicas(rs)).sum()),
        updated_replicas: Some(new.map_or(0, status_replicas)),
        ready_replicas: Some(all.iter().map(|rs| ready(rs)).sum()),
        available_replicas: Some(available_replicas),
        unavailable_replicas: Some((total - available_replicas).max(0)),
        collision_count: current.collision_count,
        conditions: current.conditions.clone(),
        terminating_replicas: None,
    };
    let minimum = desired(d) - rollout::max_unavailable(d);
    let available_condition = if available_replicas >= minimum {
        condition(
            AVAILABLE,
            "True",
            MINIMUM_REPLICAS_AVAILABLE,
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        condition(
            AVAILABLE,
            "False",
            MINIMUM_REPLICAS_UNAVAILABLE,
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set_condition(&mut status, available_condition);
    normalized(&status)
}

/// All desired replicas updated and available, no old ones left, the spec observed.
pub fn complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let (replicas, updated, _, available) = replicas_of(status);
    let want = desired(d);
    updated == want
        && replicas == want
        && available == want
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Whether `new` shows progress over the Deployment's current status: more updated, fewer
/// old, more ready or more available replicas.
pub fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let (old_replicas, old_updated, old_ready, old_available) = replicas_of(&old);
    let (replicas, updated, ready, available) = replicas_of(new);
    updated > old_updated
        || (replicas - updated) < (old_replicas - old_updated)
        || ready > old_ready
        || available > old_available
}

/// Whether the last progress is older than the deadline (upstream's `DeploymentTimedOut`).
pub fn timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(condition) = get_condition(status, PROGRESSING) else {
        return false;
    };
    match condition.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => condition.last_update_time.as_ref().is_some_and(|from| {
            let deadline = from.0.as_nanosecond() + progress_deadline(d).as_nanos() as i128;
            deadline < now.as_nanosecond()
        }),
    }
}

/// The status during a rollout, with the `Progressing` and `ReplicaFailure` conditions
/// (upstream's `syncRolloutStatus`, without the write).
pub fn rollout(
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let mut status = calculate(all, new, d, now);
    let current_status = d.status.clone().unwrap_or_default();
    if !has_progress_deadline(d) {
        remove_condition(&mut status, PROGRESSING);
    }
    let current = get_condition(&current_status, PROGRESSING);
    let (replicas, updated, _, _) = replicas_of(&status);
    let already_complete = replicas == updated
        && current.is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    let name = d.metadata.name.as_deref().unwrap_or("");
    let subject = match new.and_then(|rs| rs.metadata.name.as_deref()) {
        Some(rs) => format!("ReplicaSet {rs:?}"),
        None => format!("Deployment {name:?}"),
    };
    if has_progress_deadline(d) && !already_complete {
        if complete(d, &status) {
            let message = format!("{subject} has successfully progressed.");
            set_condition(
                &mut status,
                condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message, now),
            );
        } else if progressing(d, &status) {
            let mut updated = condition(
                PROGRESSING,
                "True",
                REPLICA_SET_UPDATED,
                format!("{subject} is progressing."),
                now,
            );
            // Progress refreshes the update time even with the same reason.
            if let Some(current) = current {
                if current.status == "True" {
                    updated.last_transition_time = current.last_transition_time.clone();
                }
                remove_condition(&mut status, PROGRESSING);
            }
            set_condition(&mut status, updated);
        } else if timed_out(d, &status, now) {
            let message = format!("{subject} has timed out progressing.");
            set_condition(
                &mut status,
                condition(PROGRESSING, "False", TIMED_OUT, message, now),
            );
        }
    }
    match replica_failure(all, new) {
        Some(failure) => set_condition(&mut status, failure),
        None => remove_condition(&mut status, REPLICA_FAILURE),
    }
    normalized(&status)
}

/// The first `ReplicaFailure` of the new ReplicaSet, else of any ReplicaSet.
fn replica_failure(all: &[&ReplicaSet], new: Option<&ReplicaSet>) -> Option<DeploymentCondition> {
    let failure = |rs: &ReplicaSet| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == REPLICA_FAILURE)
            .map(|c| DeploymentCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            })
    };
    new.and_then(failure)
        .or_else(|| all.iter().find_map(|rs| failure(rs)))
}

/// When to look again for a progress check (upstream's `requeueStuckDeployment`): the
/// moment the deadline passes since the last progress, if the rollout is neither complete
/// nor timed out.
pub fn progress_check_in(
    d: &Deployment,
    status: &DeploymentStatus,
    now: Timestamp,
) -> Option<Duration> {
    let current_status = d.status.clone().unwrap_or_default();
    let current = get_condition(&current_status, PROGRESSING)?;
    if !has_progress_deadline(d)
        || complete(d, status)
        || current.reason.as_deref() == Some(TIMED_OUT)
    {
        return None;
    }
    let from = current.last_update_time.as_ref()?.0.as_nanosecond();
    let due = from + progress_deadline(d).as_nanos() as i128;
    let left = u64::try_from(due - now.as_nanosecond()).unwrap_or(0);
    // A second more, against clock skew (as upstream); at once if under a second.
    let left = Duration::from_nanos(left);
    Some(if left < Duration::from_secs(1) {
        Duration::ZERO
    } else {
        left + Duration::from_secs(1)
    })
}

/// The `Progressing` condition a pause or resume sets, if it changes (upstream's
/// `checkPausedConditions`): `None` when nothing is to be written.
pub fn paused_condition(d: &Deployment, now: Timestamp) -> Option<DeploymentStatus> {
    if !has_progress_deadline(d) {
        return None;
    }
    let mut status = d.status.clone().unwrap_or_default();
    let current = get_condition(&status, PROGRESSING);
    if current.is_some_and(|c| c.reason.as_deref() == Some(TIMED_OUT)) {
        return None;
    }
    let paused_set = current.is_some_and(|c| c.reason.as_deref() == Some(PAUSED));
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let new = if paused && !paused_set {
        condition(
            PROGRESSING,
            "Unknown",
            PAUSED,
            "Deployment is paused".into(),
            now,
        )
    } else if !paused && paused_set {
        condition(
            PROGRESSING,
            "Unknown",
            RESUMED,
            "Deployment is resumed".into(),
            now,
        )
    } else {
        return None;
    };
    set_condition(&mut status, new);
    Some(status)
}

#[cfg(test)]
mod tests;
