//! The kubelet's node half against a real `cox server`: the node agent (`cox-kubelet`) runs in
//! the test, inside the cluster's network namespace, and the real kubectl checks what a user
//! sees: the Node Ready with its roles, labels, taints, resources, addresses and node info, and
//! its Lease renewed while the agent runs and no longer once it stops.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod cluster;

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cluster::Cluster;
use cox_kubelet::{NodeConfig, parse_taints, run_node_agent};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

const NODE: &str = "rower-1";

/// A node agent on a thread of its own inside the cluster's network namespace (so that its
/// client reaches the server's 127.0.0.1), until stopped or dropped.
struct Agent {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Agent {
    fn start(cluster: &Cluster, config: NodeConfig) -> Self {
        let netns = cluster.netns.clone();
        let kubeconfig = cluster.kubeconfig();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            cluster::enter_netns(&netns);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let client = client(kubeconfig).await;
                run_node_agent(client, config, stopped)
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stops the agent and returns what it returned.
    fn stop(mut self) -> Result<(), String> {
        self.stop.take();
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Dropping the sender completes the agent's shutdown future.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn client(kubeconfig: PathBuf) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Polls `check` until it returns something, failing after `timeout`.
fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn node_config(cluster: &Cluster) -> NodeConfig {
    let mut config = NodeConfig::new(
        NODE,
        "127.0.0.1".parse().unwrap(),
        cluster.dir.path().join("agent"),
    );
    config.control_plane = true;
    config.labels.insert("team".into(), "rowing".into());
    config.taints = parse_taints(&["dedicated=infra:NoSchedule"]).unwrap();
    config.pod_cidr = Some("10.42.0.0/24".into());
    // Computed every second rather than every 10 s, so that the test sees many syncs that
    // must not post an unchanged status. The Lease keeps upstream's 40 s, renewed every 10 s.
    config.node_status_update_frequency = Duration::from_secs(1);
    config
}

fn condition<'a>(node: &'a Value, kind: &str) -> &'a Value {
    node["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} condition in {node}"))
}

fn renew_time(cluster: &Cluster) -> String {
    let lease = json(&cluster.ok(&["get", "lease", "-n", "kube-node-lease", NODE, "-o", "json"]));
    lease["spec"]["renewTime"].as_str().unwrap().to_owned()
}

#[test]
fn node_agent_registers_reports_status_and_renews_its_lease() {
    let cluster = Cluster::start();
    let version = json(&cluster.ok(&["version", "-o", "json"]));
    let git_version = version["serverVersion"]["gitVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = Agent::start(&cluster, node_config(&cluster));

    // `kubectl get nodes`: Ready, a server's roles, the API server's version.
    let row = wait_for("the node to be Ready", Duration::from_secs(30), || {
        let out = cluster.kubectl(&["get", "nodes", "--no-headers"]);
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        out.lines()
            .find(|l| l.starts_with(NODE) && l.split_whitespace().nth(1) == Some("Ready"))
            .map(str::to_owned)
    });
    let fields: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(fields.len(), 5, "{row}");
    assert_eq!(fields[2], "control-plane,master", "{row}");
    assert_eq!(fields[4], git_version, "{row}");
    let header = cluster.ok(&["get", "nodes"]);
    assert!(
        header.starts_with("NAME") && header.contains("ROLES"),
        "{header}"
    );

    // The Node as stored.
    let node = json(&cluster.ok(&["get", "node", NODE, "-o", "json"]));
    let labels = &node["metadata"]["labels"];
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    for (key, value) in [
        ("kubernetes.io/hostname", NODE),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", arch),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", arch),
        ("node-role.kubernetes.io/control-plane", "true"),
        ("node-role.kubernetes.io/master", "true"),
        ("team", "rowing"),
    ] {
        assert_eq!(labels[key], value, "label {key} in {labels}");
    }
    assert_eq!(
        node["metadata"]["annotations"]["volumes.kubernetes.io/controller-managed-attach-detach"],
        "true"
    );
    let spec = &node["spec"];
    assert_eq!(spec["podCIDR"], "10.42.0.0/24");
    assert_eq!(spec["podCIDRs"][0], "10.42.0.0/24");
    assert_eq!(
        spec["taints"],
        serde_json::json!([{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}])
    );

    let status = &node["status"];
    let cpus = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    assert_eq!(status["capacity"]["cpu"], cpus.to_string());
    assert_eq!(status["capacity"]["pods"], "110");
    let mem_total_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(status["capacity"]["memory"], format!("{mem_total_kib}Ki"));
    // The hard eviction threshold (memory.available < 100Mi) is held back.
    assert_eq!(
        status["allocatable"]["memory"],
        format!("{}Ki", mem_total_kib - 100 * 1024)
    );
    for resource in [
        "cpu",
        "memory",
        "pods",
        "ephemeral-storage",
        "hugepages-2Mi",
    ] {
        assert!(
            status["capacity"][resource].is_string() && status["allocatable"][resource].is_string(),
            "{resource} in {status}"
        );
    }
    assert_ne!(
        status["capacity"]["ephemeral-storage"], status["allocatable"]["ephemeral-storage"],
        "nodefs.available < 10% is held back"
    );
    assert_eq!(
        status["addresses"],
        serde_json::json!([
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": NODE}
        ])
    );
    assert_eq!(status["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
    let info = &status["nodeInfo"];
    assert_eq!(info["kubeletVersion"], git_version.as_str());
    assert_eq!(info["kubeProxyVersion"], git_version.as_str());
    assert_eq!(info["operatingSystem"], "linux");
    assert_eq!(info["architecture"], arch);
    assert!(
        info["containerRuntimeVersion"]
            .as_str()
            .unwrap()
            .starts_with("cox://")
    );
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(info["bootID"], boot_id.trim());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(info["kernelVersion"], kernel.trim());
    if let Ok(machine_id) = std::fs::read_to_string("/etc/machine-id") {
        assert_eq!(info["machineID"], machine_id.trim());
    }
    assert!(!info["osImage"].as_str().unwrap().is_empty());

    let ready = condition(&node, "Ready");
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["reason"], "KubeletReady");
    assert_eq!(ready["message"], "kubelet is posting ready status");
    for (kind, good, bad) in [
        (
            "MemoryPressure",
            "KubeletHasSufficientMemory",
            "KubeletHasInsufficientMemory",
        ),
        (
            "DiskPressure",
            "KubeletHasNoDiskPressure",
            "KubeletHasDiskPressure",
        ),
        (
            "PIDPressure",
            "KubeletHasSufficientPID",
            "KubeletHasInsufficientPID",
        ),
    ] {
        // Computed from this machine's real figures: either is right, with its own reason.
        let c = condition(&node, kind);
        let want = if c["status"] == "False" { good } else { bad };
        assert_eq!(c["reason"], want, "{c}");
        assert!(c["lastTransitionTime"].is_string() && c["lastHeartbeatTime"].is_string());
    }
    let kinds: Vec<&str> = node["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    );
    let first_transition = ready["lastTransitionTime"].clone();
    let uid = node["metadata"]["uid"].clone();

    let yaml = cluster.ok(&["get", "node", NODE, "-o", "yaml"]);
    for line in [
        "kubernetes.io/hostname: rower-1",
        "node-role.kubernetes.io/control-plane: \"true\"",
        "kubeletVersion: v1.33",
        "type: InternalIP",
    ] {
        assert!(yaml.contains(line), "{line} missing from:\n{yaml}");
    }

    // `kubectl describe node`: the roles, the taint, the conditions, the kubelet's events.
    wait_for("the NodeReady event", Duration::from_secs(10), || {
        cluster
            .ok(&["describe", "node", NODE])
            .contains("NodeReady")
            .then_some(())
    });
    let describe = cluster.ok(&["describe", "node", NODE]);
    // Compared with runs of spaces made one: the column widths are kubectl's business.
    let words = describe.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "Roles: control-plane,master",
        "Taints: dedicated=infra:NoSchedule",
        "Ready True",
        "KubeletReady kubelet is posting ready status",
        "PodCIDR: 10.42.0.0/24",
        "InternalIP: 127.0.0.1 Hostname: rower-1",
        "HolderIdentity: rower-1",
        "Kubelet Version: v1.33",
        "Normal Starting",
        "Starting kubelet.",
        "Normal NodeHasSufficientMemory",
        &format!("Node {NODE} status is now: NodeHasSufficientMemory"),
        // NodeHasNoDiskPressure, or NodeHasDiskPressure on a full disk: the host's business.
        "DiskPressure",
        "NodeHasSufficientPID",
        "NodeAllocatableEnforced",
    ] {
        assert!(words.contains(want), "{want} missing from:\n{describe}");
    }

    // The Lease: held and owned by the node, upstream's duration, renewed every 10 s.
    let lease = json(&cluster.ok(&["get", "lease", "-n", "kube-node-lease", NODE, "-o", "json"]));
    assert_eq!(lease["spec"]["holderIdentity"], NODE);
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    let owner = &lease["metadata"]["ownerReferences"][0];
    assert_eq!(owner["apiVersion"], "v1");
    assert_eq!(owner["kind"], "Node");
    assert_eq!(owner["name"], NODE);
    assert_eq!(owner["uid"], uid);
    let first_renewal = lease["spec"]["renewTime"].as_str().unwrap().to_owned();
    // MicroTime: microseconds.
    assert_eq!(
        first_renewal.rsplit('.').next().map(str::len),
        Some("123456Z".len()),
        "{first_renewal}"
    );
    let listed = cluster.ok(&["get", "lease", "-n", "kube-node-lease", NODE]);
    assert!(
        listed
            .lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().take(2).eq([NODE, NODE])),
        "{listed}"
    );
    // The status as last posted (the first sync after registration posts once more).
    let node = json(&cluster.ok(&["get", "node", NODE, "-o", "json"]));
    let first_heartbeat = condition(&node, "Ready")["lastHeartbeatTime"].clone();
    let second_renewal = wait_for("the lease to be renewed", Duration::from_secs(20), || {
        Some(renew_time(&cluster)).filter(|t| *t != first_renewal)
    });
    assert!(second_renewal > first_renewal);

    // Meanwhile the status was computed every second but, unchanged, not posted again: the
    // Lease carries the heartbeat.
    let node = json(&cluster.ok(&["get", "node", NODE, "-o", "json"]));
    if kinds_unchanged(&node) {
        assert_eq!(
            condition(&node, "Ready")["lastHeartbeatTime"],
            first_heartbeat
        );
    }

    // Stopped, the agent renews no more. Absence can only be shown by waiting longer than
    // the renewal interval (10 s).
    agent.stop().unwrap();
    let last = renew_time(&cluster);
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(
        renew_time(&cluster),
        last,
        "the lease was renewed after the agent stopped"
    );

    // Started again (a kubelet restart with a new `--node-label`): the same Node, updated.
    let mut config = node_config(&cluster);
    config.labels.insert("shift".into(), "night".into());
    let agent = Agent::start(&cluster, config);
    let node = wait_for("the new label", Duration::from_secs(30), || {
        let node = json(&cluster.ok(&["get", "node", NODE, "-o", "json"]));
        let heartbeat_moved = condition(&node, "Ready")["lastHeartbeatTime"] != first_heartbeat;
        (node["metadata"]["labels"]["shift"] == "night" && heartbeat_moved).then_some(node)
    });
    assert_eq!(node["metadata"]["uid"], uid);
    assert_eq!(node["metadata"]["labels"]["team"], "rowing");
    let ready = condition(&node, "Ready");
    assert_eq!(ready["status"], "True");
    assert_eq!(
        ready["lastTransitionTime"], first_transition,
        "Ready did not change, so neither did its transition time"
    );
    let renewal = wait_for(
        "the lease to be renewed again",
        Duration::from_secs(20),
        || Some(renew_time(&cluster)).filter(|t| *t != last),
    );
    assert!(renewal > last);
    drop(agent);
}

/// Whether the pressure conditions still read as when first seen (a real pressure change, say
/// the disk filling past its threshold meanwhile, would rightly post a new status).
fn kinds_unchanged(node: &Value) -> bool {
    ["MemoryPressure", "DiskPressure", "PIDPressure"]
        .iter()
        .all(|kind| {
            condition(node, kind)["lastTransitionTime"]
                == condition(node, "Ready")["lastTransitionTime"]
        })
}
