//! Workloads as the tutorial runs them, with the real kubectl against `cox server` and its
//! node agent: a Deployment rolls out, scales, heals, rolls to a new template and back, and
//! pauses; a bare ReplicaSet adopts and releases pods by its selector and never overshoots;
//! a ReplicationController keeps its count; a Recreate Deployment replaces all its pods.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod cluster;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cluster::Cluster;
use serde_json::Value;

const NGINX: &str = "nginx:1.22-cox";
/// The same image by its fully qualified reference: a different template, so a new
/// ReplicaSet, with nothing to pull.
const NGINX_QUALIFIED: &str = "docker.io/library/nginx:1.22-cox";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn get(cluster: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    json(&cluster.ok(&all))
}

fn wait_until(cluster: &Cluster, what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; server log:\n{}",
            cluster.server_log()
        );
        std::thread::sleep(Duration::from_millis(150));
    }
}

fn wait_for_node(cluster: &Cluster) {
    wait_until(
        cluster,
        "the node to be Ready",
        Duration::from_secs(30),
        || {
            cluster.ok(&[
                "get",
                "node",
                "node-1",
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            ]) == "True"
        },
    );
}

/// `kubectl rollout status`, which must report success.
fn rolled_out(cluster: &Cluster, deployment: &str) {
    let output = cluster.kubectl(&["rollout", "status", deployment, "--timeout=90s"]);
    assert!(
        output.status.success(),
        "rollout of {deployment} did not finish: {}{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        cluster.server_log()
    );
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.contains("successfully rolled out"), "{out}");
}

/// The pods `selector` matches: (name, ready, image of the first container).
fn pods(cluster: &Cluster, selector: &str) -> Vec<(String, bool, String)> {
    let list = get(cluster, &["pods", "-l", selector]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pod| {
            let ready = pod["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (
                pod["metadata"]["name"].as_str().unwrap().to_owned(),
                ready,
                pod["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

fn ready_pods(cluster: &Cluster, selector: &str) -> usize {
    pods(cluster, selector).iter().filter(|p| p.1).count()
}

/// The Deployment's ReplicaSets: name -> (spec.replicas, revision annotation).
fn replica_sets(cluster: &Cluster, selector: &str) -> Vec<(String, i64, String)> {
    let list = get(cluster, &["replicasets", "-l", selector]);
    let mut sets: Vec<(String, i64, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rs| {
            (
                rs["metadata"]["name"].as_str().unwrap().to_owned(),
                rs["spec"]["replicas"].as_i64().unwrap(),
                rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect();
    sets.sort_by(|a, b| a.2.cmp(&b.2));
    sets
}

fn condition_reason(object: &Value, type_: &str) -> String {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["reason"].as_str())
        .unwrap_or("")
        .to_owned()
}

/// Revisions `kubectl rollout history` lists.
fn history(cluster: &Cluster, deployment: &str) -> Vec<String> {
    let out = cluster.ok(&["rollout", "history", deployment]);
    out.lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Deletes every workload and pod and waits until the node's runtime has no pod left.
/// Without this the cluster's teardown fights the controllers, which recreate the pods the
/// teardown removes from the runtime behind the API's back, and takes tens of seconds.
fn delete_workloads(cluster: &Cluster) {
    cluster.ok(&[
        "delete",
        "deployments,replicasets,replicationcontrollers,pods",
        "--all",
        "--wait=false",
    ]);
    let socket = cluster.data_dir().join("agent/runtime/cri.sock");
    wait_until(cluster, "the pods to go", Duration::from_secs(60), || {
        let sandboxes = std::process::Command::new(env!("CARGO_BIN_EXE_cox"))
            .arg("crictl")
            .arg("--runtime-endpoint")
            .arg(format!("unix://{}", socket.display()))
            .args(["pods", "-q"])
            .output()
            .unwrap();
        cluster.ok(&["get", "pods", "-o", "name"]).trim().is_empty()
            && String::from_utf8_lossy(&sandboxes.stdout).trim().is_empty()
    });
}

#[test]
fn a_deployment_rolls_out_scales_heals_rolls_back_and_pauses() {
    let cluster = Cluster::start_with_agent();
    wait_for_node(&cluster);

    cluster.ok(&[
        "create",
        "deployment",
        "web",
        &format!("--image={NGINX}"),
        "--replicas=3",
    ]);
    rolled_out(&cluster, "deployment/web");
    assert_eq!(ready_pods(&cluster, "app=web"), 3);
    let sets = replica_sets(&cluster, "app=web");
    assert_eq!(sets.len(), 1, "{sets:?}");
    let (first_rs, replicas, revision) = sets[0].clone();
    assert_eq!((replicas, revision.as_str()), (3, "1"));
    let hash = first_rs.strip_prefix("web-").unwrap();
    let rs = get(&cluster, &["replicaset", &first_rs]);
    assert_eq!(rs["metadata"]["labels"]["pod-template-hash"], hash);
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash
    );
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"],
        "3"
    );
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"],
        "4"
    );
    let owner = &rs["metadata"]["ownerReferences"][0];
    assert_eq!(
        (
            owner["kind"].as_str(),
            owner["controller"].as_bool(),
            owner["blockOwnerDeletion"].as_bool()
        ),
        (Some("Deployment"), Some(true), Some(true))
    );
    assert_eq!(rs["status"]["readyReplicas"], 3);
    assert_eq!(rs["status"]["availableReplicas"], 3);
    assert_eq!(rs["status"]["fullyLabeledReplicas"], 3);
    for (name, _, _) in pods(&cluster, "app=web") {
        let suffix = name.strip_prefix(&format!("{first_rs}-")).unwrap_or("");
        assert_eq!(suffix.len(), 5, "pod {name} is named <rs>-<5 characters>");
    }
    let deploy = get(&cluster, &["deployment", "web"]);
    assert_eq!(
        deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(
        condition_reason(&deploy, "Available"),
        "MinimumReplicasAvailable"
    );
    assert_eq!(
        condition_reason(&deploy, "Progressing"),
        "NewReplicaSetAvailable"
    );
    assert_eq!(
        deploy["status"]["observedGeneration"],
        deploy["metadata"]["generation"]
    );
    let events = cluster.ok(&["describe", "deployment", "web"]);
    assert!(
        events.contains(&format!("Scaled up replica set {first_rs} to 3")),
        "{events}"
    );

    // Scale.
    cluster.ok(&["scale", "deployment", "web", "--replicas=5"]);
    rolled_out(&cluster, "deployment/web");
    wait_until(&cluster, "5 ready pods", Duration::from_secs(60), || {
        ready_pods(&cluster, "app=web") == 5
    });
    assert_eq!(replica_sets(&cluster, "app=web")[0].1, 5);

    // A deleted pod is replaced.
    let victim = pods(&cluster, "app=web")[0].0.clone();
    cluster.ok(&["delete", "pod", &victim, "--wait=false"]);
    wait_until(
        &cluster,
        "the pod to be replaced",
        Duration::from_secs(60),
        || {
            let now = pods(&cluster, "app=web");
            now.len() == 5 && now.iter().all(|p| p.1 && p.0 != victim)
        },
    );

    // A new template rolls out to a new ReplicaSet.
    cluster.ok(&[
        "set",
        "image",
        "deployment/web",
        &format!("nginx={NGINX_QUALIFIED}"),
    ]);
    rolled_out(&cluster, "deployment/web");
    wait_until(
        &cluster,
        "the old pods to go",
        Duration::from_secs(60),
        || {
            let now = pods(&cluster, "app=web");
            now.len() == 5 && now.iter().all(|p| p.1 && p.2 == NGINX_QUALIFIED)
        },
    );
    let sets = replica_sets(&cluster, "app=web");
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert_eq!((sets[0].1, sets[0].2.as_str()), (0, "1"), "{sets:?}");
    assert_eq!((sets[1].1, sets[1].2.as_str()), (5, "2"), "{sets:?}");
    assert_eq!(history(&cluster, "deployment/web"), ["1", "2"]);

    // Undo: back to the first ReplicaSet, which takes the next revision.
    cluster.ok(&["rollout", "undo", "deployment/web"]);
    rolled_out(&cluster, "deployment/web");
    wait_until(
        &cluster,
        "the first template's pods",
        Duration::from_secs(60),
        || {
            let now = pods(&cluster, "app=web");
            now.len() == 5 && now.iter().all(|p| p.1 && p.2 == NGINX)
        },
    );
    let sets = replica_sets(&cluster, "app=web");
    let back = sets.iter().find(|s| s.0 == first_rs).unwrap();
    assert_eq!((back.1, back.2.as_str()), (5, "3"), "{sets:?}");
    assert_eq!(history(&cluster, "deployment/web"), ["2", "3"]);
    let rs = get(&cluster, &["replicaset", &first_rs]);
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"],
        "1"
    );

    // Paused: a template change waits for the resume.
    cluster.ok(&["rollout", "pause", "deployment/web"]);
    cluster.ok(&[
        "set",
        "image",
        "deployment/web",
        &format!("nginx={NGINX_QUALIFIED}"),
    ]);
    wait_until(
        &cluster,
        "the pause to be observed",
        Duration::from_secs(30),
        || {
            let deploy = get(&cluster, &["deployment", "web"]);
            deploy["status"]["observedGeneration"] == deploy["metadata"]["generation"]
                && condition_reason(&deploy, "Progressing") == "DeploymentPaused"
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        pods(&cluster, "app=web").iter().all(|p| p.2 == NGINX),
        "nothing rolls while paused"
    );
    let err = cluster.fails(&["rollout", "undo", "deployment/web"]);
    assert!(
        err.contains("you cannot rollback a paused deployment"),
        "{err}"
    );
    cluster.ok(&["rollout", "resume", "deployment/web"]);
    rolled_out(&cluster, "deployment/web");
    wait_until(
        &cluster,
        "the resumed rollout",
        Duration::from_secs(60),
        || {
            let now = pods(&cluster, "app=web");
            now.len() == 5 && now.iter().all(|p| p.1 && p.2 == NGINX_QUALIFIED)
        },
    );
    assert_eq!(history(&cluster, "deployment/web"), ["3", "4"]);

    // Deleting the Deployment takes its ReplicaSets and their pods with it.
    cluster.ok(&["delete", "deployment", "web"]);
    wait_until(
        &cluster,
        "the dependents to go",
        Duration::from_secs(60),
        || replica_sets(&cluster, "app=web").is_empty() && pods(&cluster, "app=web").is_empty(),
    );
    delete_workloads(&cluster);
}

#[test]
fn replica_sets_adopt_release_and_never_overshoot() {
    let cluster = Cluster::start_with_agent();
    wait_for_node(&cluster);

    // An orphan that matches is adopted and counts.
    cluster.ok(&[
        "run",
        "stray",
        &format!("--image={NGINX}"),
        "--labels=app=cache",
    ]);
    let manifest = cluster.file(
        "rs.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {{name: cache}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: cache}}}}\n  template:\n    metadata: {{labels: {{app: cache}}}}\n    spec:\n      containers: [{{name: c, image: \"{NGINX}\"}}]\n"
        ),
    );
    cluster.ok(&["apply", "-f", &manifest]);
    wait_until(
        &cluster,
        "2 ready replicas",
        Duration::from_secs(60),
        || get(&cluster, &["replicaset", "cache"])["status"]["readyReplicas"] == 2,
    );
    let stray = get(&cluster, &["pod", "stray"]);
    assert_eq!(stray["metadata"]["ownerReferences"][0]["name"], "cache");
    assert_eq!(pods(&cluster, "app=cache").len(), 2, "the orphan counted");

    // A pod relabelled out of the selector is released and replaced.
    cluster.ok(&["label", "pod", "stray", "app=gone", "--overwrite"]);
    wait_until(&cluster, "the release", Duration::from_secs(30), || {
        get(&cluster, &["pod", "stray"])["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(Vec::is_empty)
    });
    wait_until(&cluster, "a replacement", Duration::from_secs(60), || {
        ready_pods(&cluster, "app=cache") == 2
    });

    // Scaling up quickly never creates more than asked for, even while the watch lags.
    cluster.ok(&["scale", "replicaset", "cache", "--replicas=8"]);
    let mut seen = BTreeSet::new();
    wait_until(
        &cluster,
        "8 ready replicas",
        Duration::from_secs(90),
        || {
            let now = pods(&cluster, "app=cache");
            assert!(now.len() <= 8, "overshoot: {now:?}");
            seen.extend(now.iter().map(|p| p.0.clone()));
            now.iter().filter(|p| p.1).count() == 8
        },
    );
    assert_eq!(seen.len(), 8, "no pod created and deleted again: {seen:?}");
    cluster.ok(&["scale", "replicaset", "cache", "--replicas=3"]);
    wait_until(&cluster, "3 replicas", Duration::from_secs(60), || {
        pods(&cluster, "app=cache").len() == 3
    });
    let rs = get(&cluster, &["replicaset", "cache"]);
    assert_eq!(rs["status"]["replicas"], 3);
    assert_eq!(
        rs["status"]["observedGeneration"],
        rs["metadata"]["generation"]
    );

    // A ReplicationController keeps its count too.
    let rc = cluster.file(
        "rc.yaml",
        &format!(
            "apiVersion: v1\nkind: ReplicationController\nmetadata: {{name: legacy}}\nspec:\n  replicas: 2\n  selector: {{app: legacy}}\n  template:\n    metadata: {{labels: {{app: legacy}}}}\n    spec:\n      containers: [{{name: c, image: \"{NGINX}\"}}]\n"
        ),
    );
    cluster.ok(&["apply", "-f", &rc]);
    wait_until(
        &cluster,
        "the controller's pods",
        Duration::from_secs(60),
        || get(&cluster, &["rc", "legacy"])["status"]["readyReplicas"] == 2,
    );
    let victim = pods(&cluster, "app=legacy")[0].0.clone();
    cluster.ok(&["delete", "pod", &victim, "--wait=false"]);
    wait_until(&cluster, "the replacement", Duration::from_secs(60), || {
        let now = pods(&cluster, "app=legacy");
        now.len() == 2 && now.iter().all(|p| p.1 && p.0 != victim)
    });

    // A rollout that cannot progress (its image cannot be pulled) exceeds its deadline, and
    // `kubectl rollout status` says so.
    let stuck = cluster.file(
        "stuck.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: stuck}\nspec:\n  replicas: 1\n  progressDeadlineSeconds: 2\n  selector: {matchLabels: {app: stuck}}\n  template:\n    metadata: {labels: {app: stuck}}\n    spec:\n      containers: [{name: c, image: \"registry.invalid/none:1\"}]\n",
    );
    cluster.ok(&["apply", "-f", &stuck]);
    let err = cluster.fails(&["rollout", "status", "deployment/stuck", "--timeout=60s"]);
    assert!(
        err.contains("deployment \"stuck\" exceeded its progress deadline"),
        "{err}"
    );
    let deploy = get(&cluster, &["deployment", "stuck"]);
    assert_eq!(
        condition_reason(&deploy, "Progressing"),
        "ProgressDeadlineExceeded"
    );
    assert_eq!(
        condition_reason(&deploy, "Available"),
        "MinimumReplicasUnavailable"
    );

    // Recreate: all old pods go before any new one starts.
    cluster.ok(&[
        "create",
        "deployment",
        "batch",
        &format!("--image={NGINX}"),
        "--replicas=2",
    ]);
    cluster.ok(&[
        "patch",
        "deployment",
        "batch",
        "-p",
        r#"{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}"#,
    ]);
    rolled_out(&cluster, "deployment/batch");
    cluster.ok(&[
        "set",
        "image",
        "deployment/batch",
        &format!("nginx={NGINX_QUALIFIED}"),
    ]);
    rolled_out(&cluster, "deployment/batch");
    wait_until(
        &cluster,
        "the recreated pods",
        Duration::from_secs(60),
        || {
            let now = pods(&cluster, "app=batch");
            now.len() == 2 && now.iter().all(|p| p.1 && p.2 == NGINX_QUALIFIED)
        },
    );
    delete_workloads(&cluster);
}

/// A ConfigMap `name` owned by `owners` (name, UID, blockOwnerDeletion), with `finalizers`.
fn config_map(name: &str, owners: &[(&str, &str, bool)], finalizers: &[&str]) -> String {
    let owners: Vec<Value> = owners
        .iter()
        .map(|(owner, uid, block)| {
            serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid,
                "blockOwnerDeletion": block,
            })
        })
        .collect();
    serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "ownerReferences": owners, "finalizers": finalizers},
    })
    .to_string()
}

fn create(cluster: &Cluster, name: &str, body: &str) -> String {
    let path = cluster.file(&format!("{name}.json"), body);
    cluster.ok(&["create", "-f", &path, "-o", "jsonpath={.metadata.uid}"])
}

fn exists(cluster: &Cluster, name: &str) -> bool {
    cluster
        .kubectl(&["get", "configmap", name])
        .status
        .success()
}

#[test]
fn the_garbage_collector_deletes_orphans_and_honours_orphan_and_foreground_finalizers() {
    let cluster = Cluster::start();

    // Background: the owner goes, then its dependents; a dependent with another owner left
    // only loses the reference.
    let owner = create(&cluster, "owner", &config_map("owner", &[], &[]));
    let other = create(&cluster, "other", &config_map("other", &[], &[]));
    let child = create(
        &cluster,
        "child",
        &config_map("child", &[("owner", &owner, false)], &[]),
    );
    create(
        &cluster,
        "grandchild",
        &config_map("grandchild", &[("child", &child, false)], &[]),
    );
    create(
        &cluster,
        "shared",
        &config_map(
            "shared",
            &[("owner", &owner, false), ("other", &other, false)],
            &[],
        ),
    );
    cluster.ok(&["delete", "configmap", "owner"]);
    wait_until(
        &cluster,
        "the dependents to go",
        Duration::from_secs(30),
        || !exists(&cluster, "child") && !exists(&cluster, "grandchild"),
    );
    wait_until(
        &cluster,
        "the dangling reference to go",
        Duration::from_secs(30),
        || {
            let shared = get(&cluster, &["configmap", "shared"]);
            shared["metadata"]["ownerReferences"]
                .as_array()
                .map(Vec::len)
                == Some(1)
        },
    );
    // A dependent whose owner never existed goes too.
    create(
        &cluster,
        "stray",
        &config_map(
            "stray",
            &[("ghost", "00000000-0000-0000-0000-000000000000", false)],
            &[],
        ),
    );
    wait_until(
        &cluster,
        "the stray dependent to go",
        Duration::from_secs(30),
        || !exists(&cluster, "stray"),
    );

    // Orphan: the dependents stay, without the reference; then the owner goes. (Deleted
    // without a propagation policy, so the finalizer the owner was created with stands:
    // kubectl's own delete would send `Background`, which removes it.)
    let owner = create(&cluster, "keeper", &config_map("keeper", &[], &["orphan"]));
    create(
        &cluster,
        "kept",
        &config_map("kept", &[("keeper", &owner, true)], &[]),
    );
    cluster.ok(&[
        "delete",
        "--raw",
        "/api/v1/namespaces/default/configmaps/keeper",
    ]);
    wait_until(&cluster, "the owner to go", Duration::from_secs(30), || {
        !exists(&cluster, "keeper")
    });
    let kept = get(&cluster, &["configmap", "kept"]);
    assert!(
        kept["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{kept}"
    );

    // Foreground: the blocking dependents go first, then the owner.
    let owner = create(
        &cluster,
        "front",
        &config_map("front", &[], &["foregroundDeletion"]),
    );
    create(
        &cluster,
        "blocker",
        &config_map("blocker", &[("front", &owner, true)], &[]),
    );
    cluster.ok(&[
        "delete",
        "--raw",
        "/api/v1/namespaces/default/configmaps/front",
    ]);
    wait_until(
        &cluster,
        "the owner and its dependent to go",
        Duration::from_secs(30),
        || !exists(&cluster, "front") && !exists(&cluster, "blocker"),
    );
}
