//! The scheduler as a user meets it: Node objects (no kubelet yet: nodes are only API
//! objects here) and pods created with the real kubectl against `cox server`; the scheduler
//! binds each pod to a node that fits, or says why none does, as upstream's does.

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

/// A node as a kubelet would register it: labels, taints, and its capacity as allocatable.
fn node(name: &str, labels: Value, taints: Value, cpu: &str, memory: &str) -> Value {
    let resources = json!({"cpu": cpu, "memory": memory, "pods": "110"});
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints},
        "status": {"capacity": resources, "allocatable": resources}
    })
}

/// A pod with one container requesting `cpu`, and `spec` merged into its spec.
fn pod(name: &str, cpu: &str, spec: Value) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{
            "name": "app", "image": "nginx",
            "resources": {"requests": {"cpu": cpu}}
        }]}
    });
    if let (Some(into), Value::Object(extra)) = (pod["spec"].as_object_mut(), spec) {
        into.extend(extra);
    }
    pod
}

/// Creates the objects with kubectl, as one List.
fn create(cluster: &Cluster, file: &str, items: Vec<Value>) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    let path = cluster.file(file, &list.to_string());
    cluster.ok(&["create", "-f", &path]);
}

/// Polls kubectl until `check` returns something, for at most 10 s.
fn wait_for<T>(cluster: &Cluster, what: &str, check: impl Fn(&Cluster) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = check(cluster) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; server log:\n{}",
            cluster.server_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn node_name_of(cluster: &Cluster, pod: &str) -> Option<String> {
    let name = cluster.ok(&["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"]);
    (!name.is_empty()).then_some(name)
}

fn wait_until_bound(cluster: &Cluster, pod: &str) -> String {
    wait_for(cluster, &format!("pod {pod} to be bound"), |c| {
        node_name_of(c, pod)
    })
}

/// The pod's `PodScheduled` condition, once it has one.
fn scheduled_condition(cluster: &Cluster, pod: &str) -> Option<Value> {
    let got = json(&cluster.ok(&["get", "pod", pod, "-o", "json"]));
    got["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .cloned()
}

/// The events about `pod` with `reason`.
fn events(cluster: &Cluster, pod: &str, reason: &str) -> Vec<Value> {
    let selector = format!("involvedObject.name={pod},reason={reason}");
    let list = json(&cluster.ok(&["get", "events", "--field-selector", &selector, "-o", "json"]));
    list["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn pods_go_to_nodes_their_selectors_tolerations_and_requests_allow() {
    let cluster = Cluster::start();
    let gpu_taint = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
    create(
        &cluster,
        "nodes.json",
        vec![
            node("small", json!({"disk": "ssd"}), json!([]), "1", "1Gi"),
            node("big", json!({"disk": "ssd"}), json!([]), "4", "8Gi"),
            node("hdd", json!({"disk": "hdd"}), json!([]), "8", "8Gi"),
            node(
                "gpu",
                json!({"disk": "ssd", "gpu": "yes"}),
                gpu_taint,
                "8",
                "8Gi",
            ),
        ],
    );
    let gpu_toleration =
        json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
    create(
        &cluster,
        "pods.json",
        vec![
            // Only `big` has an SSD, room for 3 CPUs and no taint.
            pod("web", "3", json!({"nodeSelector": {"disk": "ssd"}})),
            // Only `gpu` has the label; the pod tolerates its taint.
            pod(
                "trainer",
                "1",
                json!({"nodeSelector": {"gpu": "yes"}, "tolerations": gpu_toleration}),
            ),
            // Required node affinity: anything but an SSD.
            pod(
                "batch",
                "100m",
                json!({"affinity": {"nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}
                    ]}
                }}}),
            ),
        ],
    );
    assert_eq!(wait_until_bound(&cluster, "web"), "big");
    assert_eq!(wait_until_bound(&cluster, "trainer"), "gpu");
    assert_eq!(wait_until_bound(&cluster, "batch"), "hdd");

    let scheduled = wait_for(&cluster, "the Scheduled event", |c| {
        events(c, "web", "Scheduled").into_iter().next()
    });
    assert_eq!(scheduled["type"], "Normal");
    assert_eq!(
        scheduled["message"],
        "Successfully assigned default/web to big"
    );
    assert_eq!(scheduled["reportingComponent"], "default-scheduler");
    assert_eq!(scheduled["action"], "Binding");
    assert_eq!(scheduled["involvedObject"]["kind"], "Pod");
    let listed = cluster.ok(&["get", "events"]);
    assert!(
        listed.contains("Successfully assigned default/batch to hdd"),
        "{listed}"
    );

    // `big` has 1 CPU left: a pod asking for 2 waits; one asking for 1 fits.
    create(
        &cluster,
        "more.json",
        vec![
            pod("too-big", "2", json!({"nodeSelector": {"disk": "ssd"}})),
            pod("fits", "1", json!({"nodeSelector": {"disk": "ssd"}})),
        ],
    );
    assert!(["small", "big"].contains(&wait_until_bound(&cluster, "fits").as_str()));
    wait_for(&cluster, "too-big to be reported unschedulable", |c| {
        scheduled_condition(c, "too-big")
    });
    assert_eq!(node_name_of(&cluster, "too-big"), None);
}

#[test]
fn an_unschedulable_pod_says_why_then_goes_to_a_node_that_appears() {
    let cluster = Cluster::start();
    create(
        &cluster,
        "nodes.json",
        vec![
            node("n1", json!({"disk": "hdd"}), json!([]), "8", "8Gi"),
            node("n2", json!({"disk": "ssd"}), json!([]), "1", "8Gi"),
            node("n3", json!({"disk": "ssd"}), json!([]), "1", "8Gi"),
        ],
    );
    create(
        &cluster,
        "pod.json",
        vec![pod("db", "2", json!({"nodeSelector": {"disk": "ssd"}}))],
    );
    let expected = "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
                    2 Insufficient cpu. preemption: 0/3 nodes are available: \
                    1 Preemption is not helpful for scheduling, \
                    2 No preemption victims found for incoming pod.";

    let condition = wait_for(&cluster, "the PodScheduled condition", |c| {
        scheduled_condition(c, "db")
    });
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], "Unschedulable");
    assert_eq!(condition["message"], expected);
    assert!(condition["lastTransitionTime"].is_string(), "{condition}");

    let failed = wait_for(&cluster, "the FailedScheduling event", |c| {
        events(c, "db", "FailedScheduling").into_iter().next()
    });
    assert_eq!(failed["type"], "Warning");
    assert_eq!(failed["message"], expected);
    assert_eq!(failed["reportingComponent"], "default-scheduler");
    assert_eq!(failed["action"], "Scheduling");
    let listed = cluster.ok(&["get", "events"]);
    assert!(listed.contains("FailedScheduling"), "{listed}");
    assert_eq!(node_name_of(&cluster, "db"), None);

    // A node that fits appears: the scheduler tries again and binds the pod there.
    create(
        &cluster,
        "n4.json",
        vec![node("n4", json!({"disk": "ssd"}), json!([]), "4", "8Gi")],
    );
    assert_eq!(wait_until_bound(&cluster, "db"), "n4");
}

#[test]
fn cordons_and_pod_anti_affinity_keep_pods_apart() {
    let cluster = Cluster::start();
    let host = |name: &str| json!({"kubernetes.io/hostname": name});
    create(
        &cluster,
        "nodes.json",
        vec![
            node("a", host("a"), json!([]), "4", "8Gi"),
            node("b", host("b"), json!([]), "4", "8Gi"),
        ],
    );
    cluster.ok(&["cordon", "b"]);
    let apart = json!({"affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"tier": "cache"}},
            "topologyKey": "kubernetes.io/hostname"
        }]
    }}});
    let mut first = pod("cache-1", "100m", apart.clone());
    first["metadata"]["labels"]["tier"] = json!("cache");
    let mut second = pod("cache-2", "100m", apart);
    second["metadata"]["labels"]["tier"] = json!("cache");
    create(&cluster, "first.json", vec![first]);
    assert_eq!(wait_until_bound(&cluster, "cache-1"), "a");

    create(&cluster, "second.json", vec![second]);
    let condition = wait_for(&cluster, "cache-2 to be reported unschedulable", |c| {
        scheduled_condition(c, "cache-2")
    });
    assert_eq!(
        condition["message"],
        "0/2 nodes are available: 1 node(s) didn't match pod anti-affinity rules, \
         1 node(s) were unschedulable. preemption: 0/2 nodes are available: \
         1 No preemption victims found for incoming pod, \
         1 Preemption is not helpful for scheduling."
    );
    // Uncordoning `b` lets the second pod go there, away from the first.
    cluster.ok(&["uncordon", "b"]);
    assert_eq!(wait_until_bound(&cluster, "cache-2"), "b");
}
