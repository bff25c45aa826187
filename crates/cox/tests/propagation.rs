//! Deletion propagation with the real kubectl against a control-plane-only `cox server`:
//! `--cascade=orphan` leaves a ReplicaSet's pods without their owner, `--cascade=foreground`
//! keeps the ReplicaSet (marked, with `foregroundDeletion`) until its pods are gone,
//! `--cascade=background` removes it at once and its pods after. Without a policy each
//! resource's default applies (ReplicationControllers orphan); bad options are refused; a
//! collection delete honours the policy too. Without a node the pods stay Pending, which is
//! all the collector needs.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod cluster;

use std::time::{Duration, Instant};

use cluster::Cluster;
use serde_json::{Value, json};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn get(cluster: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    json(&cluster.ok(&all))
}

fn wait_until(cluster: &Cluster, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; server log:\n{}",
            cluster.server_log()
        );
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// A workload of `kind` (`ReplicaSet` or `ReplicationController`) with two pods labelled
/// `app=<name>`.
fn workload(kind: &str, name: &str) -> String {
    let (api_version, selector) = if kind == "ReplicaSet" {
        ("apps/v1", json!({"matchLabels": {"app": name}}))
    } else {
        ("v1", json!({"app": name}))
    };
    json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": selector,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.22-cox"}]},
            },
        },
    })
    .to_string()
}

/// Creates the workload and waits for its two pods; returns their names.
fn create_workload(cluster: &Cluster, kind: &str, name: &str) -> Vec<String> {
    let path = cluster.file(&format!("{name}.json"), &workload(kind, name));
    cluster.ok(&["create", "-f", &path]);
    wait_until(cluster, &format!("the pods of {name}"), || {
        pods(cluster, name).len() == 2
    });
    pods(cluster, name).into_iter().map(|(n, _)| n).collect()
}

/// The pods labelled `app=<app>`: name, and the UIDs of their owners.
fn pods(cluster: &Cluster, app: &str) -> Vec<(String, Vec<String>)> {
    let list = get(cluster, &["pods", "-l", &format!("app={app}")]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pod| {
            let owners = pod["metadata"]["ownerReferences"]
                .as_array()
                .map(|refs| {
                    refs.iter()
                        .map(|r| r["uid"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            (pod["metadata"]["name"].as_str().unwrap().to_owned(), owners)
        })
        .collect()
}

fn exists(cluster: &Cluster, kind: &str, name: &str) -> bool {
    cluster.kubectl(&["get", kind, name]).status.success()
}

#[test]
fn cascade_orphan_foreground_and_background_as_upstream() {
    let cluster = Cluster::start();

    // Orphan: kubectl waits for the ReplicaSet to go; its pods stay, without the reference.
    let orphans = create_workload(&cluster, "ReplicaSet", "orphaner");
    cluster.ok(&["delete", "replicaset", "orphaner", "--cascade=orphan"]);
    assert!(!exists(&cluster, "replicaset", "orphaner"));
    let left = pods(&cluster, "orphaner");
    assert_eq!(
        left.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        orphans,
        "the orphaned pods stay"
    );
    assert!(left.iter().all(|(_, owners)| owners.is_empty()), "{left:?}");

    // Foreground: the ReplicaSet stays, marked, while a pod of its is held by a finalizer
    // of the test's; it goes once its pods have.
    let held = create_workload(&cluster, "ReplicaSet", "front");
    cluster.ok(&[
        "patch",
        "pod",
        &held[0],
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    cluster.ok(&[
        "delete",
        "replicaset",
        "front",
        "--cascade=foreground",
        "--wait=false",
    ]);
    let marked = get(&cluster, &["replicaset", "front"]);
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "{marked}"
    );
    assert_eq!(
        marked["metadata"]["finalizers"],
        json!(["foregroundDeletion"]),
        "{marked}"
    );
    wait_until(&cluster, "the free pod to go", || {
        pods(&cluster, "front").len() == 1
    });
    assert!(
        exists(&cluster, "replicaset", "front"),
        "the ReplicaSet waits for its held pod"
    );
    cluster.ok(&[
        "patch",
        "pod",
        &held[0],
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    wait_until(&cluster, "the ReplicaSet and its pods to go", || {
        !exists(&cluster, "replicaset", "front") && pods(&cluster, "front").is_empty()
    });

    // Background (kubectl's default): the ReplicaSet goes at once, its pods after.
    create_workload(&cluster, "ReplicaSet", "back");
    cluster.ok(&["delete", "replicaset", "back", "--wait=false"]);
    assert!(!exists(&cluster, "replicaset", "back"));
    wait_until(&cluster, "the background pods to go", || {
        pods(&cluster, "back").is_empty()
    });

    // No policy: a ReplicationController's default (core/v1) orphans its pods.
    create_workload(&cluster, "ReplicationController", "legacy");
    cluster.ok(&[
        "delete",
        "--raw",
        "/api/v1/namespaces/default/replicationcontrollers/legacy",
    ]);
    wait_until(&cluster, "the ReplicationController to go", || {
        !exists(&cluster, "replicationcontroller", "legacy")
    });
    let legacy = pods(&cluster, "legacy");
    assert_eq!(legacy.len(), 2, "{legacy:?}");
    assert!(
        legacy.iter().all(|(_, owners)| owners.is_empty()),
        "{legacy:?}"
    );
}

#[test]
fn bad_delete_options_are_refused_and_collections_honour_the_policy() {
    let cluster = Cluster::start();
    cluster.ok(&["create", "configmap", "plain"]);
    let delete = |path: &str, body: &str| {
        json(&cluster.curl_admin(
            &[
                "-X",
                "DELETE",
                "-H",
                "Content-Type: application/json",
                "-d",
                body,
            ],
            path,
        ))
    };

    let both = delete(
        "/api/v1/namespaces/default/configmaps/plain",
        r#"{"orphanDependents":true,"propagationPolicy":"Foreground"}"#,
    );
    assert_eq!(both["code"], 422, "{both}");
    assert_eq!(
        both["message"],
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"Foreground\": orphanDependents and deletionPropagation cannot be both set"
    );
    let unknown = cluster.fails(&[
        "delete",
        "--raw",
        "/api/v1/namespaces/default/configmaps/plain?propagationPolicy=Sideways",
    ]);
    assert!(
        unknown.contains("Unsupported value: \"Sideways\""),
        "{unknown}"
    );
    // Refused before the object was looked at: it is still there.
    assert!(exists(&cluster, "configmap", "plain"));

    // A collection delete with `Orphan`: every ReplicaSet goes, their pods stay.
    create_workload(&cluster, "ReplicaSet", "one");
    create_workload(&cluster, "ReplicaSet", "two");
    let deleted = delete(
        "/apis/apps/v1/namespaces/default/replicasets",
        r#"{"propagationPolicy":"Orphan"}"#,
    );
    assert_eq!(deleted["kind"], "ReplicaSetList", "{deleted}");
    wait_until(&cluster, "the ReplicaSets to go", || {
        get(&cluster, &["replicasets"])["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
    for app in ["one", "two"] {
        let left = pods(&cluster, app);
        assert_eq!(left.len(), 2, "{app}: {left:?}");
        assert!(
            left.iter().all(|(_, owners)| owners.is_empty()),
            "{app}: {left:?}"
        );
    }
}
