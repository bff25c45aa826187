//! Two servers on one etcd (high availability): only the holder of the
//! `kube-controller-manager` and `kube-scheduler` Leases runs those components; when it stops,
//! the other server takes the Leases over and its controllers carry on: at once when the
//! holder hands them back on shutdown, after the lease duration when it crashed.

mod cluster;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cluster::{Cluster, wait_until, wait_until_or_explain};

const ENDPOINT: &str = "http://127.0.0.1:2379";

/// A real etcd inside the cluster's network namespace, on its loopback.
struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Etcd {
    fn start(cluster: &Cluster) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log");
        let child = Command::new("ip")
            .args(["netns", "exec", &cluster.netns, "etcd", "--name=default"])
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={ENDPOINT}"))
            .arg(format!("--advertise-client-urls={ENDPOINT}"))
            .args([
                "--listen-peer-urls=http://127.0.0.1:2380",
                "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                "--initial-cluster=default=http://127.0.0.1:2380",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log"))
            .stderr(log)
            .spawn()
            .expect("starting etcd (Debian's etcd-server)");
        let etcd = Etcd { child, _dir: dir };
        wait_until("etcd to answer", Duration::from_secs(20), || {
            cluster
                .exec("curl", &["-sf", &format!("{ENDPOINT}/health")])
                .status
                .success()
        });
        etcd
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn holder(cluster: &Cluster, lease: &str) -> String {
    let output = cluster.kubectl(&[
        "get",
        "lease",
        "-n",
        "kube-system",
        lease,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits until `cluster` shows `want` pods of the Deployment; on a timeout, fails with what
/// the objects and both servers' logs say.
fn wait_for_pods(servers: &[Cluster; 2], cluster: usize, want: usize) {
    wait_until_or_explain(
        &format!("{want} pods"),
        Duration::from_secs(30),
        || pods(&servers[cluster]) == want,
        || {
            let objects = servers[cluster].kubectl(&["get", "deploy,rs,pods", "-o", "yaml"]);
            format!(
                "--- objects:\n{}\n--- server {cluster}'s log:\n{}\n--- the other server's log:\n{}",
                String::from_utf8_lossy(&objects.stdout),
                servers[cluster].server_log(),
                servers[1 - cluster].server_log()
            )
        },
    );
}

fn pods(cluster: &Cluster) -> usize {
    cluster
        .ok(&["get", "pods", "-l", "app=web", "-o", "name"])
        .lines()
        .count()
}

#[test]
fn only_the_lease_holder_runs_the_controllers_and_the_other_takes_over() {
    let mut first = Cluster::unstarted(&["--datastore-endpoint", ENDPOINT]);
    let etcd = Etcd::start(&first);
    first.start_server();
    let second = first.peer(&[
        "--datastore-endpoint",
        ENDPOINT,
        "--https-listen-port",
        "6444",
    ]);
    let mut servers = [first, second];

    for lease in ["kube-controller-manager", "kube-scheduler"] {
        wait_until(lease, Duration::from_secs(30), || {
            !holder(&servers[1], lease).is_empty()
        });
    }
    // The holder is one server's identity, announced in its log, and the other's log
    // shows that it never led.
    let identity = holder(&servers[1], "kube-controller-manager");
    let leader = servers
        .iter()
        .position(|s| s.server_log().contains(&identity))
        .expect("the holder is one of the servers");
    let follower = 1 - leader;
    assert!(
        !servers[follower]
            .server_log()
            .contains("acquired the lease"),
        "both servers acquired a lease:\n{}",
        servers[follower].server_log()
    );
    assert_eq!(holder(&servers[1], "kube-scheduler"), identity);

    // Exactly the replicas asked for: two controller managers would overshoot.
    servers[follower].ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox:1.36",
        "--replicas=2",
    ]);
    wait_until("two pods", Duration::from_secs(30), || {
        pods(&servers[follower]) == 2
    });
    // Once the Deployment's status has caught up with both its pods, any second controller
    // manager would have made its own.
    wait_until("the deployment's status", Duration::from_secs(30), || {
        servers[follower].ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.status.observedGeneration}/{.metadata.generation} {.status.replicas}",
        ]) == "1/1 2"
    });
    assert_eq!(pods(&servers[follower]), 2, "more pods than replicas");

    // The leader stops (handing its Leases back); the follower takes over and acts.
    servers[leader].stop_server();
    wait_until(
        "the follower to take the lease",
        Duration::from_secs(60),
        || {
            let now = holder(&servers[follower], "kube-controller-manager");
            !now.is_empty() && now != identity
        },
    );
    let successor = holder(&servers[follower], "kube-controller-manager");
    assert!(
        servers[follower].server_log().contains(&successor),
        "the new holder is not the follower"
    );
    servers[follower].ok(&["scale", "deployment", "web", "--replicas=3"]);
    wait_for_pods(&servers, follower, 3);

    // The first leader comes back as a follower; the new leader crashes, handing nothing
    // back, and the Lease passes on only once it has expired.
    servers[leader].start_server();
    servers[follower].kill_server();
    wait_until(
        "the lease to pass on after expiry",
        Duration::from_secs(60),
        || {
            let now = holder(&servers[leader], "kube-controller-manager");
            !now.is_empty() && now != successor
        },
    );
    servers[leader].ok(&["scale", "deployment", "web", "--replicas=1"]);
    wait_for_pods(&servers, leader, 1);

    drop(servers);
    drop(etcd);
}
