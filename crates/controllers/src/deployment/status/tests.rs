//! Deployment status and conditions.

use super::*;
use crate::deployment::rollout::tests::{deployment, rs};
use k8s_openapi::api::apps::v1::ReplicaSetCondition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn with_deadline(mut d: Deployment, seconds: i32) -> Deployment {
    if let Some(spec) = d.spec.as_mut() {
        spec.progress_deadline_seconds = Some(seconds);
    }
    d
}

fn reason<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a str> {
    get_condition(status, type_)?.reason.as_deref()
}

fn pct(text: &str) -> IntOrString {
    IntOrString::String(text.into())
}

#[test]
fn counts_and_availability() {
    let d = deployment(4, pct("25%"), pct("25%"));
    let old = rs("old", 2, 2, 1);
    let new = rs("new", 3, 1, 2);
    let status = calculate(&[&old, &new], Some(&new), &d, at(10));
    assert_eq!(status.replicas, Some(5));
    assert_eq!(status.updated_replicas, Some(3));
    assert_eq!(status.available_replicas, Some(3));
    assert_eq!(status.unavailable_replicas, Some(2));
    assert_eq!(status.observed_generation, Some(1));
    // 3 available >= 4 - 1.
    assert_eq!(reason(&status, AVAILABLE), Some(MINIMUM_REPLICAS_AVAILABLE));

    let new = rs("new", 3, 0, 2);
    let status = calculate(&[&old, &new], Some(&new), &d, at(10));
    assert_eq!(
        reason(&status, AVAILABLE),
        Some(MINIMUM_REPLICAS_UNAVAILABLE)
    );
    assert_eq!(
        get_condition(&status, AVAILABLE).map(|c| c.status.as_str()),
        Some("False")
    );
}

#[test]
fn an_unchanged_condition_keeps_its_times() {
    let mut status = DeploymentStatus::default();
    set_condition(
        &mut status,
        condition(AVAILABLE, "True", "A", "m".into(), at(1)),
    );
    set_condition(
        &mut status,
        condition(AVAILABLE, "True", "A", "other".into(), at(5)),
    );
    let kept = get_condition(&status, AVAILABLE).cloned();
    assert_eq!(kept.as_ref().and_then(|c| c.message.as_deref()), Some("m"));
    set_condition(
        &mut status,
        condition(AVAILABLE, "True", "B", "m".into(), at(9)),
    );
    let changed = get_condition(&status, AVAILABLE).cloned();
    assert_eq!(
        changed
            .as_ref()
            .and_then(|c| c.last_transition_time.clone()),
        Some(Time(at(1))),
        "same status: the transition time stays"
    );
    assert_eq!(changed.and_then(|c| c.last_update_time), Some(Time(at(9))));
}

#[test]
fn progressing_moves_through_updated_complete_and_timed_out() {
    let mut d = with_deadline(deployment(2, pct("25%"), pct("25%")), 60);
    let mut current = DeploymentStatus::default();
    set_condition(
        &mut current,
        condition(
            PROGRESSING,
            "True",
            NEW_REPLICA_SET,
            "Created".into(),
            at(0),
        ),
    );
    d.status = Some(current.clone());

    // A new pod became available: progress.
    let old = rs("old", 1, 1, 1);
    let new = rs("web-abc", 2, 1, 2);
    let status = rollout(&[&old, &new], Some(&new), &d, at(30));
    assert_eq!(reason(&status, PROGRESSING), Some(REPLICA_SET_UPDATED));
    assert_eq!(
        get_condition(&status, PROGRESSING).and_then(|c| c.message.as_deref()),
        Some("ReplicaSet \"web-abc\" is progressing.")
    );

    // Nothing moved for longer than the deadline.
    let mut stuck = d.clone();
    stuck.status = Some(status.clone());
    let status = rollout(&[&old, &new], Some(&new), &stuck, at(200));
    assert_eq!(reason(&status, PROGRESSING), Some(TIMED_OUT));
    assert_eq!(
        get_condition(&status, PROGRESSING).map(|c| c.status.as_str()),
        Some("False")
    );

    // Everything updated and available.
    let new = rs("web-abc", 2, 2, 2);
    let status = rollout(&[&new], Some(&new), &d, at(40));
    assert_eq!(reason(&status, PROGRESSING), Some(NEW_RS_AVAILABLE));
    assert!(complete(&d, &status));
}

#[test]
fn a_stuck_rollout_is_checked_again_at_its_deadline() {
    let mut d = with_deadline(deployment(2, pct("25%"), pct("25%")), 60);
    let mut current = DeploymentStatus::default();
    set_condition(
        &mut current,
        condition(
            PROGRESSING,
            "True",
            REPLICA_SET_UPDATED,
            "m".into(),
            at(100),
        ),
    );
    d.status = Some(current.clone());
    assert_eq!(
        progress_check_in(&d, &current, at(130)),
        Some(Duration::from_secs(31))
    );
    assert_eq!(
        progress_check_in(&d, &current, at(160)),
        Some(Duration::ZERO)
    );
    let no_deadline = deployment(2, pct("25%"), pct("25%"));
    assert_eq!(progress_check_in(&no_deadline, &current, at(130)), None);
}

#[test]
fn pausing_and_resuming_set_unknown_progress() {
    let mut d = with_deadline(deployment(2, pct("25%"), pct("25%")), 600);
    if let Some(spec) = d.spec.as_mut() {
        spec.paused = Some(true);
    }
    let paused = paused_condition(&d, at(1));
    assert_eq!(
        paused.as_ref().and_then(|s| reason(s, PROGRESSING)),
        Some(PAUSED)
    );
    d.status = paused;
    assert!(paused_condition(&d, at(2)).is_none(), "already recorded");
    if let Some(spec) = d.spec.as_mut() {
        spec.paused = Some(false);
    }
    let resumed = paused_condition(&d, at(3));
    assert_eq!(
        resumed.as_ref().and_then(|s| reason(s, PROGRESSING)),
        Some(RESUMED)
    );
}

#[test]
fn replica_failures_are_copied_from_the_new_replica_set_first() {
    let d = deployment(2, pct("25%"), pct("25%"));
    let failing = |name: &str, message: &str| {
        let mut set = rs(name, 2, 0, 1);
        if let Some(status) = set.status.as_mut() {
            status.conditions = Some(vec![ReplicaSetCondition {
                type_: REPLICA_FAILURE.into(),
                status: "True".into(),
                reason: Some("FailedCreate".into()),
                message: Some(message.into()),
                last_transition_time: None,
            }]);
        }
        set
    };
    let old = failing("old", "old failure");
    let new = failing("new", "new failure");
    let status = rollout(&[&old, &new], Some(&new), &d, at(1));
    assert_eq!(
        get_condition(&status, REPLICA_FAILURE).and_then(|c| c.message.as_deref()),
        Some("new failure")
    );
    let healthy = rs("new", 2, 2, 1);
    let status = rollout(&[&healthy], Some(&healthy), &d, at(1));
    assert!(get_condition(&status, REPLICA_FAILURE).is_none());
}
