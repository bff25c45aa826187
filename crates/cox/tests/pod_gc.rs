//! The pod garbage collector with the real kubectl against a control-plane-only
//! `cox server` (a Node object made by hand stands in for a node; no kubelet runs): pods
//! bound to a node that does not exist go after the quarantine, those on a node that exists
//! stay until it is deleted, and finished pods beyond `terminated-pod-gc-threshold` (set
//! through `--kube-controller-manager-arg`, as with k3s) go oldest first. The hidden
//! `--pod-gc-period 1` shortens the passes (and so the quarantine) from upstream's 20 s.
//! Finished Jobs with `ttlSecondsAfterFinished` go after it (the TTL-after-finished
//! controller), those without stay.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod cluster;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cluster::Cluster;
use serde_json::json;

fn wait_until(cluster: &Cluster, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; server log:\n{}",
            cluster.server_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn create(cluster: &Cluster, name: &str, object: &serde_json::Value) {
    let path = cluster.file(&format!("{name}.json"), &object.to_string());
    cluster.ok(&["create", "-f", &path]);
}

fn pod_on(cluster: &Cluster, name: &str, node: &str) {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "image": "busybox"}],
        },
    });
    create(cluster, name, &pod);
}

fn pod_names(cluster: &Cluster) -> BTreeSet<String> {
    cluster
        .ok(&["get", "pods", "-o", "jsonpath={.items[*].metadata.name}"])
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn pods_of_missing_nodes_and_finished_pods_over_the_threshold_are_collected() {
    let cluster = Cluster::start_and(&[
        "--pod-gc-period",
        "1",
        "--kube-controller-manager-arg",
        "terminated-pod-gc-threshold=2",
    ]);
    create(
        &cluster,
        "node-x",
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-x"}}),
    );

    // Bound to a node that never existed: collected once the quarantine is over.
    pod_on(&cluster, "on-ghost", "ghost");
    pod_on(&cluster, "on-node", "node-x");
    wait_until(&cluster, "the orphaned pod to go", || {
        pod_names(&cluster) == set(&["on-node"])
    });

    // Finished pods: the two oldest of four go, the unfinished one stays.
    for name in ["done-1", "done-2", "done-3", "done-4"] {
        pod_on(&cluster, name, "node-x");
    }
    for name in ["done-1", "done-2", "done-3", "done-4"] {
        cluster.ok(&[
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Succeeded"}}"#,
        ]);
    }
    wait_until(&cluster, "the oldest finished pods to go", || {
        pod_names(&cluster) == set(&["on-node", "done-3", "done-4"])
    });

    // The node goes: its pods follow.
    cluster.ok(&["delete", "node", "node-x"]);
    wait_until(&cluster, "the pods of the deleted node to go", || {
        pod_names(&cluster).is_empty()
    });
}

/// A Job marked finished by hand (no Job controller runs here), as the Job controller would.
fn finish_job(cluster: &Cluster, name: &str) {
    let now = cluster.ok(&[
        "get",
        "job",
        name,
        "-o",
        "jsonpath={.metadata.creationTimestamp}",
    ]);
    let status = json!({"status": {
        "startTime": now, "completionTime": now, "succeeded": 1,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
            {"type": "Complete", "status": "True", "lastTransitionTime": now},
        ],
    }});
    cluster.ok(&[
        "patch",
        "job",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
}

#[test]
fn finished_jobs_go_after_their_ttl() {
    let cluster = Cluster::start();
    for (name, ttl) in [("short", Some(2)), ("kept", None)] {
        let mut job = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox:1.36"}]}}},
        });
        if let Some(ttl) = ttl {
            job["spec"]["ttlSecondsAfterFinished"] = json!(ttl);
        }
        create(&cluster, name, &job);
        finish_job(&cluster, name);
    }
    wait_until(&cluster, "the job with a TTL to go", || {
        !cluster.kubectl(&["get", "job", "short"]).status.success()
    });
    assert!(
        cluster.kubectl(&["get", "job", "kept"]).status.success(),
        "a finished job without a TTL stays"
    );
}
