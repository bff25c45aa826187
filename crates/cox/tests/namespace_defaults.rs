//! What every namespace gets, with the real kubectl against a control-plane-only
//! `cox server`: the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap holding
//! the cluster CA, created with the namespace, brought back when deleted or edited, and no
//! obstacle to deleting the namespace.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod cluster;

use std::time::{Duration, Instant};

use cluster::Cluster;

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

/// The UID of `kind/name` in `namespace`, if it exists.
fn uid(cluster: &Cluster, namespace: &str, kind: &str, name: &str) -> Option<String> {
    let output = cluster.kubectl(&[
        "get",
        kind,
        name,
        "-n",
        namespace,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn published_ca(cluster: &Cluster, namespace: &str) -> String {
    cluster.ok(&[
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        namespace,
        "-o",
        r"jsonpath={.data.ca\.crt}",
    ])
}

#[test]
fn every_namespace_gets_the_default_service_account_and_the_root_ca() {
    let cluster = Cluster::start();
    let ca = std::fs::read_to_string(cluster.data_dir().join("server/tls/ca.crt")).unwrap();

    // The namespaces made at start have them too.
    for namespace in ["default", "kube-system"] {
        wait_until(&cluster, &format!("the defaults of {namespace}"), || {
            uid(&cluster, namespace, "serviceaccount", "default").is_some()
                && uid(&cluster, namespace, "configmap", "kube-root-ca.crt").is_some()
        });
    }

    cluster.ok(&["create", "namespace", "team"]);
    wait_until(&cluster, "the new namespace's defaults", || {
        uid(&cluster, "team", "serviceaccount", "default").is_some()
            && uid(&cluster, "team", "configmap", "kube-root-ca.crt").is_some()
    });
    assert_eq!(published_ca(&cluster, "team"), ca);
    let description = cluster.ok(&[
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "team",
        "-o",
        r"jsonpath={.metadata.annotations.kubernetes\.io/description}",
    ]);
    assert!(
        description
            .starts_with("Contains a CA bundle that can be used to verify the kube-apiserver"),
        "{description}"
    );

    // Deleted: made again (a new object).
    let account = uid(&cluster, "team", "serviceaccount", "default").unwrap();
    cluster.ok(&["delete", "serviceaccount", "default", "-n", "team"]);
    wait_until(&cluster, "the service account to come back", || {
        uid(&cluster, "team", "serviceaccount", "default").is_some_and(|u| u != account)
    });
    let config_map = uid(&cluster, "team", "configmap", "kube-root-ca.crt").unwrap();
    cluster.ok(&["delete", "configmap", "kube-root-ca.crt", "-n", "team"]);
    wait_until(&cluster, "the root CA to come back", || {
        uid(&cluster, "team", "configmap", "kube-root-ca.crt").is_some_and(|u| u != config_map)
    });

    // Edited: put back.
    cluster.ok(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "team",
        "--type=merge",
        "-p",
        r#"{"data":{"ca.crt":"tampered"}}"#,
    ]);
    wait_until(&cluster, "the certificate to be restored", || {
        published_ca(&cluster, "team") == ca
    });

    // The namespace still goes (kubectl waits for it), and nothing is made in it after.
    cluster.ok(&["delete", "namespace", "team", "--timeout=60s"]);
    assert!(
        !cluster
            .kubectl(&["get", "namespace", "team"])
            .status
            .success()
    );
}
