//! The rollout arithmetic, table-driven where upstream's tests are.

use super::*;
use k8s_openapi::api::apps::v1::{
    DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

pub fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(surge),
                    max_unavailable: Some(unavailable),
                }),
            }),
            ..Default::default()
        }),
        status: None,
    }
}

pub fn recreate(replicas: i32) -> Deployment {
    let mut d = deployment(replicas, IntOrString::Int(0), IntOrString::Int(0));
    if let Some(spec) = d.spec.as_mut() {
        spec.strategy = Some(DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        });
    }
    d
}

/// A ReplicaSet created `created` seconds after the epoch.
pub fn rs(name: &str, replicas: i32, available: i32, created: i64) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            creation_timestamp: Some(Time(
                Timestamp::from_second(created).unwrap_or(Timestamp::UNIX_EPOCH),
            )),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            ..Default::default()
        }),
        status: Some(ReplicaSetStatus {
            replicas,
            available_replicas: Some(available),
            ready_replicas: Some(available),
            ..Default::default()
        }),
    }
}

fn annotated(mut rs: ReplicaSet, key: &str, value: &str) -> ReplicaSet {
    rs.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(key.into(), value.into());
    rs
}

fn pct(text: &str) -> IntOrString {
    IntOrString::String(text.into())
}

#[test]
fn fenceposts_round_surge_up_and_unavailability_down() {
    let cases = [
        // (surge, unavailable, desired) -> (surge, unavailable)
        (pct("25%"), pct("25%"), 3, (1, 0)),
        (pct("25%"), pct("25%"), 10, (3, 2)),
        (pct("0%"), pct("1%"), 2, (0, 1)),
        (pct("1%"), pct("25%"), 2, (1, 0)),
        (IntOrString::Int(0), IntOrString::Int(0), 5, (0, 1)),
        (IntOrString::Int(2), pct("50%"), 5, (2, 2)),
    ];
    for (surge, unavailable, desired, expected) in cases {
        assert_eq!(
            resolve_fenceposts(Some(&surge), Some(&unavailable), desired),
            Ok(expected),
            "{surge:?} {unavailable:?} of {desired}"
        );
    }
    assert!(scaled_value(&IntOrString::String("25".into()), 4, true).is_err());
}

#[test]
fn max_unavailable_never_exceeds_replicas_and_recreate_has_no_budget() {
    let d = deployment(2, IntOrString::Int(0), IntOrString::Int(5));
    assert_eq!(max_unavailable(&d), 2);
    assert_eq!(max_surge(&recreate(3)), 0);
    assert_eq!(max_unavailable(&recreate(3)), 0);
    assert_eq!(max_unavailable(&deployment(0, pct("25%"), pct("25%"))), 0);
}

#[test]
fn the_new_replica_set_grows_within_the_surge() {
    let d = deployment(10, IntOrString::Int(3), IntOrString::Int(2));
    let old = rs("old", 10, 10, 1);
    let new = rs("new", 0, 0, 2);
    // 10 + 3 allowed, 10 running: the new one may have 3.
    assert_eq!(new_replicas(&d, &[&old, &new], &new), Ok(3));
    let new = rs("new", 3, 0, 2);
    assert_eq!(new_replicas(&d, &[&old, &new], &new), Ok(3), "at the cap");
    let old = rs("old", 2, 2, 1);
    let new = rs("new", 9, 9, 2);
    assert_eq!(
        new_replicas(&d, &[&old, &new], &new),
        Ok(10),
        "never beyond replicas"
    );
    assert_eq!(new_replicas(&recreate(4), &[&new], &new), Ok(4));
}

#[test]
fn old_replica_sets_shrink_only_above_the_availability_floor() {
    // Upstream's example: 10 replicas, maxUnavailable 2, maxSurge 3.
    let d = deployment(10, IntOrString::Int(3), IntOrString::Int(2));
    let old = rs("old", 10, 10, 1);
    let new = rs("new", 3, 0, 2);
    // 13 pods, at least 8 available, 3 new ones not available: 13 - 8 - 3 = 2.
    assert_eq!(max_scaled_down(&d, &[&old, &new], &new), 2);
    assert_eq!(scale_down_old(&d, &[&old, &new], &[&old]), vec![(0, 8)]);
    // The new pods crash-loop and an old one fails: no room at all.
    let new = rs("new", 5, 0, 2);
    let old = rs("old", 8, 7, 1);
    assert_eq!(max_scaled_down(&d, &[&old, &new], &new), 0);
}

#[test]
fn unhealthy_old_replicas_go_first_oldest_first() {
    let older = rs("older", 3, 1, 1);
    let old = rs("old", 4, 4, 2);
    let newer = rs("newer", 2, 0, 3);
    assert_eq!(
        cleanup_unhealthy(&[&newer, &old, &older], 3),
        vec![(2, 1), (0, 1)]
    );
    assert_eq!(cleanup_unhealthy(&[&newer, &old, &older], 1), vec![(2, 2)]);
}

#[test]
fn scale_down_takes_the_oldest_first() {
    let d = deployment(4, IntOrString::Int(1), IntOrString::Int(1));
    let a = rs("a", 2, 2, 1);
    let b = rs("b", 2, 2, 2);
    let new = rs("new", 1, 1, 3);
    // 5 available, floor 3: two may go, both from the oldest.
    assert_eq!(scale_down_old(&d, &[&a, &b, &new], &[&b, &a]), vec![(1, 0)]);
}

#[test]
fn only_one_active_replica_set_takes_the_whole_deployment() {
    let new = rs("new", 0, 0, 3);
    let old = rs("old", 3, 3, 1);
    let idle = rs("idle", 0, 0, 2);
    let found = find_active_or_latest(Some(&new), &[&old, &idle]);
    assert_eq!(found.and_then(|r| r.metadata.name.as_deref()), Some("old"));
    let new_active = rs("new", 1, 0, 3);
    assert!(find_active_or_latest(Some(&new_active), &[&old]).is_none());
    let idle2 = rs("idle2", 0, 0, 5);
    let found = find_active_or_latest(None, &[&idle, &idle2]);
    assert_eq!(
        found.and_then(|r| r.metadata.name.as_deref()),
        Some("idle2")
    );
}

#[test]
fn a_saturated_new_replica_set_has_everything_available_and_recorded() {
    let d = deployment(3, pct("25%"), pct("25%"));
    let new = annotated(rs("new", 3, 3, 1), revision::DESIRED_REPLICAS, "3");
    assert!(is_saturated(&d, &new));
    assert!(!is_saturated(&d, &rs("new", 3, 3, 1)), "not recorded");
    let partly = annotated(rs("new", 3, 2, 1), revision::DESIRED_REPLICAS, "3");
    assert!(!is_saturated(&d, &partly));
}

#[test]
fn scaling_mid_rollout_is_proportional() {
    // Upstream's example: 10 replicas (maxSurge 3) mid-rollout, scaled to 20.
    let d = deployment(20, IntOrString::Int(3), IntOrString::Int(2));
    let old = annotated(rs("old", 8, 8, 1), revision::MAX_REPLICAS, "13");
    let new = annotated(rs("new", 5, 0, 2), revision::MAX_REPLICAS, "13");
    let (plan, operation) = proportional_scale(&d, &[&old, &new]);
    assert_eq!(operation, "up");
    // 23 allowed, 13 running: 10 to add; old 8*23/13 = 14 (+6), new 5*23/13 = 9 (+4).
    let mut sizes: Vec<(usize, i32)> = plan;
    sizes.sort_unstable();
    assert_eq!(sizes, vec![(0, 14), (1, 9)]);

    let d = deployment(5, IntOrString::Int(1), IntOrString::Int(0));
    let old = annotated(rs("old", 8, 8, 1), revision::MAX_REPLICAS, "11");
    let new = annotated(rs("new", 3, 0, 2), revision::MAX_REPLICAS, "11");
    let (plan, operation) = proportional_scale(&d, &[&old, &new]);
    assert_eq!(operation, "down");
    let total: i32 = plan.iter().map(|(_, size)| size).sum();
    assert_eq!(total, 6, "replicas + maxSurge");
}
