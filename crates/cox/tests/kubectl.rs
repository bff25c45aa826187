//! The API server as a user meets it: the real kubectl against `cox server`, each test with
//! its own cluster (network namespace, data directory).

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod cluster;

use std::path::Path;
use std::process::{Command, Stdio};

use cluster::{Cluster, VERSIONED_KUBECTL_DIR};
use serde_json::Value;

const CONFIGMAP: &str = r#"{
  "apiVersion": "v1", "kind": "ConfigMap",
  "metadata": {"name": "settings", "labels": {"app": "web"}},
  "data": {"color": "blue"}
}"#;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn kubectl_sees_a_kubernetes_1_33_server_with_its_defaults() {
    let cluster = Cluster::start();
    let version = json(&cluster.ok(&["version", "-o", "json"]));
    assert_eq!(version["serverVersion"]["major"], "1");
    assert_eq!(version["serverVersion"]["minor"], "33");

    let namespaces = cluster.ok(&["get", "namespaces", "-o", "name"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            namespaces.contains(&format!("namespace/{ns}")),
            "{namespaces}"
        );
    }
    let ns = json(&cluster.ok(&["get", "namespace", "default", "-o", "json"]));
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["spec"]["finalizers"][0], "kubernetes");

    let svc = json(&cluster.ok(&["get", "service", "kubernetes", "-o", "json"]));
    assert_eq!(svc["spec"]["clusterIP"], "10.43.0.1");
    assert_eq!(svc["spec"]["ports"][0]["port"], 443);
    let ep = json(&cluster.ok(&["get", "endpoints", "kubernetes", "-o", "json"]));
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "127.0.0.1");
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 6443);

    let resources = cluster.ok(&["api-resources", "--no-headers"]);
    let deployments = resources
        .lines()
        .find(|l| l.starts_with("deployments "))
        .unwrap_or("");
    let fields: Vec<&str> = deployments.split_whitespace().collect();
    assert_eq!(
        fields,
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    let versions = cluster.ok(&["api-versions"]);
    for gv in [
        "v1",
        "apps/v1",
        "autoscaling/v2",
        "autoscaling/v1",
        "batch/v1",
        "networking.k8s.io/v1",
        "rbac.authorization.k8s.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "{gv} missing from {versions}"
        );
    }
    let info = cluster.ok(&["cluster-info"]);
    assert!(
        info.contains("is running at https://127.0.0.1:6443"),
        "{info}"
    );
}

#[test]
fn create_get_label_annotate_patch_and_delete() {
    let cluster = Cluster::start();
    let cm = cluster.file("cm.json", CONFIGMAP);
    assert!(
        cluster
            .ok(&["create", "-f", &cm, "--validate=false"])
            .contains("configmap/settings created")
    );
    let got = json(&cluster.ok(&["get", "configmap", "settings", "-o", "json"]));
    assert_eq!(got["data"]["color"], "blue");
    assert_eq!(got["metadata"]["namespace"], "default");
    assert_eq!(got["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(
        got["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let first_rv: i64 = got["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    cluster.ok(&["label", "configmap", "settings", "tier=front"]);
    cluster.ok(&["annotate", "configmap", "settings", "note=hello"]);
    cluster.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/data/color","value":"red"}]"#,
    ]);
    cluster.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"size":"L"}}"#,
    ]);
    let got = json(&cluster.ok(&["get", "configmap", "settings", "-o", "json"]));
    assert_eq!(got["metadata"]["labels"]["tier"], "front");
    assert_eq!(got["metadata"]["annotations"]["note"], "hello");
    assert_eq!(
        got["data"],
        serde_json::json!({"color": "red", "size": "L"})
    );
    let rv: i64 = got["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        rv >= first_rv + 4,
        "every change took a new resourceVersion: {first_rv} -> {rv}"
    );

    assert_eq!(
        cluster
            .ok(&["get", "configmaps", "-l", "tier=front", "-o", "name"])
            .trim(),
        "configmap/settings"
    );
    // (The namespace's `kube-root-ca.crt`, published by a controller, may be listed.)
    let others = cluster.ok(&["get", "configmaps", "-l", "tier!=front", "-o", "name"]);
    assert!(
        others
            .lines()
            .all(|name| name == "configmap/kube-root-ca.crt"),
        "{others}"
    );
    assert_eq!(
        cluster
            .ok(&["get", "configmaps", "-l", "app in (web,db)", "-o", "name"])
            .trim(),
        "configmap/settings"
    );
    assert!(
        cluster
            .ok(&["get", "configmaps", "--show-labels"])
            .contains("app=web,tier=front")
    );
    assert_eq!(
        cluster
            .ok(&[
                "get",
                "configmaps",
                "-A",
                "--field-selector",
                "metadata.name=settings",
                "-o",
                "name"
            ])
            .trim(),
        "configmap/settings"
    );
    let jsonpath = cluster.ok(&[
        "get",
        "configmap",
        "settings",
        "-o",
        "jsonpath={.data.size}",
    ]);
    assert_eq!(jsonpath, "L");

    assert!(
        cluster
            .ok(&["delete", "configmap", "settings"])
            .contains("configmap \"settings\" deleted")
    );
    let err = cluster.fails(&["get", "configmap", "settings"]);
    assert!(err.contains("configmaps \"settings\" not found"), "{err}");
}

#[test]
fn namespaces_scope_objects_and_must_exist() {
    let cluster = Cluster::start();
    let ns = cluster.file(
        "ns.json",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"}}"#,
    );
    cluster.ok(&["create", "-f", &ns, "--validate=false"]);
    let cm = cluster.file("cm.json", CONFIGMAP);
    cluster.ok(&["create", "-f", &cm, "-n", "team-a", "--validate=false"]);
    cluster.ok(&["create", "-f", &cm, "--validate=false"]);
    let all = cluster.ok(&["get", "configmaps", "-A", "--no-headers"]);
    assert_eq!(
        all.lines().filter(|l| l.contains("settings")).count(),
        2,
        "{all}"
    );
    let err = cluster.fails(&["create", "-f", &cm, "-n", "missing", "--validate=false"]);
    assert!(err.contains("namespaces \"missing\" not found"), "{err}");
    let err = cluster.fails(&["create", "-f", &cm, "--validate=false"]);
    assert!(
        err.contains("AlreadyExists") && err.contains("configmaps \"settings\" already exists"),
        "{err}"
    );
}

#[test]
fn watch_streams_every_change() {
    let cluster = Cluster::start();
    // Watching from the list's revision: every change after it arrives, however soon the
    // changes follow, so nothing here waits for the watch to be established.
    let list = json(&cluster.ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps"]));
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut watcher = Command::new("ip")
        .args(["netns", "exec", &cluster.netns, "kubectl", "--kubeconfig"])
        .arg(cluster.kubeconfig())
        .args([
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cm = cluster.file("cm.json", CONFIGMAP);
    cluster.ok(&["create", "-f", &cm, "--validate=false"]);
    cluster.ok(&["label", "configmap", "settings", "x=y"]);
    cluster.ok(&["delete", "configmap", "settings"]);
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut events = Vec::new();
    while events.len() < 3 && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            let event = json(&line);
            let rv: i64 = event["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            events.push((
                event["type"].as_str().unwrap().to_owned(),
                event["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                rv,
            ));
        }
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|(t, n, _)| (t.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("ADDED", "settings"),
            ("MODIFIED", "settings"),
            ("DELETED", "settings")
        ],
        "{events:?}"
    );
    assert!(
        events.windows(2).all(|w| w[0].2 < w[1].2),
        "resourceVersions increase: {events:?}"
    );
}

#[test]
fn bad_requests_get_upstream_statuses() {
    let cluster = Cluster::start();
    let bad_name = cluster.file(
        "bad.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#,
    );
    let err = cluster.fails(&["create", "-f", &bad_name, "--validate=false"]);
    assert!(
        err.contains(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{err}"
    );

    let err = cluster.fails(&["get", "frobnicators"]);
    assert!(
        err.contains("the server doesn't have a resource type \"frobnicators\""),
        "{err}"
    );

    let malformed = cluster.file("malformed.json", "{not json");
    let err = cluster.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        &malformed,
    ]);
    assert!(err.contains("could not be decoded as JSON"), "{err}");

    let wrong_kind = cluster.file(
        "wrong.json",
        r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#,
    );
    let err = cluster.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
        "-f",
        &wrong_kind,
    ]);
    assert!(err.contains("does not match the expected kind"), "{err}");

    // A value its Go type cannot hold: refused as upstream's decoder refuses it, on create and
    // in a patch's result; nothing is stored.
    let wrong_type = cluster.file(
        "wrong-type.json",
        r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"typed"},
            "spec":{"replicas":"3","selector":{"matchLabels":{"a":"b"}},
                    "template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}"#,
    );
    let err = cluster.fails(&["create", "-f", &wrong_type, "--validate=false"]);
    assert!(
        err.contains(r#"Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"#),
        "{err}"
    );
    cluster.fails(&["get", "deployment", "typed"]);
    cluster.ok(&["create", "configmap", "typed"]);
    let err = cluster.fails(&[
        "patch",
        "configmap",
        "typed",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"a":1}}}"#,
    ]);
    assert!(
        err.contains("json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"),
        "{err}"
    );

    // Over the 3 MiB request limit.
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"x":"{}"}}}}"#,
        "a".repeat(3 * 1024 * 1024 + 10)
    );
    let big = cluster.file("big.json", &big);
    let err = cluster.fails(&["create", "-f", &big, "--validate=false"]);
    assert!(err.contains("Request entity too large"), "{err}");

    // A stale resourceVersion is a conflict.
    let cm = cluster.file("cm.json", CONFIGMAP);
    cluster.ok(&["create", "-f", &cm, "--validate=false"]);
    let mut stale = json(&cluster.ok(&["get", "configmap", "settings", "-o", "json"]));
    cluster.ok(&["label", "configmap", "settings", "moved=on"]);
    stale["data"]["color"] = Value::from("green");
    let stale = cluster.file("stale.json", &stale.to_string());
    let err = cluster.fails(&["replace", "-f", &stale, "--validate=false"]);
    assert!(
        err.contains(
            "Operation cannot be fulfilled on configmaps \"settings\": the object has been modified"
        ),
        "{err}"
    );

    // Without credentials: 401 as a Status, except for health and version.
    let anonymous = cluster.exec("curl", &["-sk", "https://127.0.0.1:6443/api/v1/namespaces"]);
    let status = json(&String::from_utf8_lossy(&anonymous.stdout));
    assert_eq!(
        (status["code"].as_i64(), status["reason"].as_str()),
        (Some(401), Some("Unauthorized"))
    );
    let ready = cluster.exec("curl", &["-sk", "https://127.0.0.1:6443/readyz"]);
    assert_eq!(String::from_utf8_lossy(&ready.stdout), "ok");
    let version = cluster.exec("curl", &["-sk", "https://127.0.0.1:6443/version"]);
    assert_eq!(
        json(&String::from_utf8_lossy(&version.stdout))["minor"],
        "33"
    );

    // The server is still healthy after all that.
    cluster.ok(&["get", "namespaces"]);
}

#[test]
fn server_side_dry_run_persists_nothing() {
    let cluster = Cluster::start();
    let cm = cluster.file("cm.json", CONFIGMAP);
    let out = cluster.ok(&["create", "-f", &cm, "--validate=false", "--dry-run=server"]);
    assert!(
        out.contains("configmap/settings created (server dry run)"),
        "{out}"
    );
    cluster.fails(&["get", "configmap", "settings"]);
    cluster.ok(&["create", "-f", &cm, "--validate=false"]);
    cluster.ok(&["delete", "configmap", "settings", "--dry-run=server"]);
    cluster.ok(&["get", "configmap", "settings"]);
}

#[test]
fn lists_page_through_every_object() {
    let cluster = Cluster::start();
    let items: Vec<String> = (0..30)
        .map(|i| {
            format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i:02}"}}}}"#)
        })
        .collect();
    let list = cluster.file(
        "list.json",
        &format!(
            r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#,
            items.join(",")
        ),
    );
    cluster.ok(&["create", "-f", &list, "--validate=false"]);
    let names = cluster.ok(&["get", "configmaps", "--chunk-size=7", "-o", "name"]);
    let names: Vec<&str> = names
        .lines()
        .filter(|l| l.starts_with("configmap/cm-"))
        .collect();
    let want: Vec<String> = (0..30).map(|i| format!("configmap/cm-{i:02}")).collect();
    assert_eq!(names, want);
    cluster.ok(&["delete", "configmaps", "--all"]);
    assert_eq!(
        cluster
            .ok(&["get", "configmaps", "-o", "name"])
            .lines()
            .filter(|l| l.contains("cm-"))
            .count(),
        0
    );

    // A list of the current state (no resourceVersion, no paging; served from the watch
    // cache once it is current) reads every write acknowledged before it: each new object,
    // and each deletion, in the list that follows.
    let path = "/api/v1/namespaces/default/configmaps";
    for i in 0..15 {
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"fresh-{i}"}}}}"#
        );
        let created = json(&cluster.curl_admin(
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-d",
                &body,
            ],
            path,
        ));
        let written: i64 = created["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse().ok())
            .unwrap_or_else(|| panic!("{created}"));
        let list = json(&cluster.curl_admin(&[], path));
        let names: Vec<&str> = list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["metadata"]["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            names.contains(&format!("fresh-{i}").as_str()),
            "list {i} lacks its write: {names:?}"
        );
        let at: i64 = list["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse().ok())
            .unwrap_or_default();
        assert!(
            at >= written,
            "the list is at {at}, before the write at {written}"
        );
        if i % 2 == 1 {
            cluster.curl_admin(&["-X", "DELETE"], &format!("{path}/fresh-{i}"));
            let list = cluster.curl_admin(&[], path);
            assert!(
                !list.contains(&format!("\"fresh-{i}\"")),
                "a deleted object is still listed"
            );
        }
    }
}

#[test]
fn state_and_certificates_survive_a_restart() {
    let mut cluster = Cluster::start();
    let cm = cluster.file("cm.json", CONFIGMAP);
    cluster.ok(&["create", "-f", &cm, "--validate=false"]);
    let before = std::fs::read_to_string(cluster.data_dir().join("server/tls/ca.crt")).unwrap();
    cluster.stop_server();
    cluster.start_server();
    let after = std::fs::read_to_string(cluster.data_dir().join("server/tls/ca.crt")).unwrap();
    assert_eq!(before, after, "the cluster CA is kept");
    let got = json(&cluster.ok(&["get", "configmap", "settings", "-o", "json"]));
    assert_eq!(got["data"]["color"], "blue");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(cluster.kubeconfig())
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn every_installed_kubectl_from_1_28_to_1_33_works() {
    let cluster = Cluster::start();
    let mut tried = 0;
    for minor in 28..=33 {
        let kubectl = Path::new(VERSIONED_KUBECTL_DIR).join(format!("kubectl.1.{minor}"));
        assert!(
            kubectl.exists(),
            "{} is missing: the tests need kubectl 1.28 to 1.33",
            kubectl.display()
        );
        let name = format!("from-1-{minor}");
        let cm = cluster.file(
            &format!("{name}.json"),
            &format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"v":"{minor}"}}}}"#),
        );
        let run = |args: &[&str]| {
            let output = cluster.kubectl_with(&kubectl, args);
            assert!(
                output.status.success(),
                "kubectl 1.{minor} {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        assert!(run(&["get", "namespaces"]).contains("kube-system"));
        run(&["create", "-f", &cm, "--validate=false"]);
        assert!(
            run(&["get", "configmap", &name, "-o", "yaml"]).contains(&format!("v: \"{minor}\""))
        );
        run(&["label", "configmap", &name, "by=test"]);
        run(&["delete", "configmap", &name]);
        tried += 1;
    }
    assert_eq!(tried, 6);
}

#[test]
fn scale_subresource_changes_replicas() {
    let cluster = Cluster::start();
    let deploy = cluster.file(
        "deploy.json",
        r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
            "spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},
                    "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}}}"#,
    );
    cluster.ok(&["create", "-f", &deploy, "--validate=false"]);
    assert!(
        cluster
            .ok(&["scale", "deployment", "web", "--replicas=5"])
            .contains("deployment.apps/web scaled")
    );
    let got = json(&cluster.ok(&["get", "deployment", "web", "-o", "json"]));
    assert_eq!(got["spec"]["replicas"], 5);
    assert_eq!(
        got["metadata"]["generation"], 2,
        "a spec change bumps the generation"
    );
    let scale = json(&cluster.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ]));
    assert_eq!(
        (scale["kind"].as_str(), scale["apiVersion"].as_str()),
        (Some("Scale"), Some("autoscaling/v1"))
    );
    assert_eq!(scale["spec"]["replicas"], 5);
    assert_eq!(scale["status"]["selector"], "app=web");
    // --current-replicas is a precondition kubectl checks against the Scale.
    let err = cluster.fails(&[
        "scale",
        "deployment",
        "web",
        "--current-replicas=2",
        "--replicas=3",
    ]);
    assert!(err.contains("Expected replicas to be 2, was 5"), "{err}");
}

#[test]
fn services_get_defaults_addresses_and_node_ports() {
    let cluster = Cluster::start();
    let svc = |name: &str, spec: &str| {
        cluster.file(
            &format!("{name}.json"),
            &format!(r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"{name}"}},"spec":{spec}}}"#),
        )
    };
    let web = svc("web", r#"{"selector":{"app":"web"},"ports":[{"port":80}]}"#);
    cluster.ok(&["create", "-f", &web, "--validate=false"]);
    let got = json(&cluster.ok(&["get", "service", "web", "-o", "json"]));
    let ip = got["spec"]["clusterIP"].as_str().unwrap().to_owned();
    assert!(ip.starts_with("10.43.") && ip != "10.43.0.1", "{ip}");
    assert_eq!(got["spec"]["clusterIPs"][0], ip.as_str());
    assert_eq!(got["spec"]["type"], "ClusterIP");
    assert_eq!(got["spec"]["ports"][0]["targetPort"], 80);
    assert_eq!(got["spec"]["ports"][0]["protocol"], "TCP");
    assert_eq!(got["spec"]["sessionAffinity"], "None");

    // A replace without the cluster IP keeps it; changing it is refused.
    let replaced = cluster.file(
        "web2.json",
        &serde_json::json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080}]}
        })
        .to_string(),
    );
    cluster.ok(&["replace", "-f", &replaced, "--validate=false"]);
    let got = json(&cluster.ok(&["get", "service", "web", "-o", "json"]));
    assert_eq!(got["spec"]["clusterIP"], ip.as_str());
    assert_eq!(got["spec"]["ports"][0]["port"], 8080);
    let err = cluster.fails(&[
        "patch",
        "service",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"clusterIP":"10.43.7.7"}}"#,
    ]);
    assert!(err.contains("may not change once set"), "{err}");

    // Node ports: a requested one is taken once; released on delete.
    let np = svc(
        "np",
        r#"{"type":"NodePort","selector":{"app":"web"},"ports":[{"port":80,"nodePort":31000}]}"#,
    );
    cluster.ok(&["create", "-f", &np, "--validate=false"]);
    let other = svc(
        "np2",
        r#"{"type":"NodePort","selector":{"app":"web"},"ports":[{"port":80,"nodePort":31000}]}"#,
    );
    let err = cluster.fails(&["create", "-f", &other, "--validate=false"]);
    assert!(
        err.contains(
            "spec.ports[0].nodePort: Invalid value: 31000: provided port is already allocated"
        ),
        "{err}"
    );
    cluster.ok(&["delete", "service", "np"]);
    cluster.ok(&["create", "-f", &other, "--validate=false"]);

    // Switching a Service to NodePort allocates a node port in the range.
    cluster.ok(&[
        "patch",
        "service",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"type":"NodePort"}}"#,
    ]);
    let got = json(&cluster.ok(&["get", "service", "web", "-o", "json"]));
    let port = got["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&port), "{port}");
    assert_eq!(got["spec"]["externalTrafficPolicy"], "Cluster");

    // A requested cluster IP that is taken is refused with upstream's message.
    let taken = svc(
        "taken",
        &format!(r#"{{"clusterIP":"{ip}","ports":[{{"port":80}}]}}"#),
    );
    let err = cluster.fails(&["create", "-f", &taken, "--validate=false"]);
    assert!(
        err.contains(&format!(
            "failed to allocate IP {ip}: provided IP address is already allocated"
        )),
        "{err}"
    );

    // Invalid specs are 422 with field causes.
    let bad = svc("bad", r#"{"ports":[{"port":70000}]}"#);
    let err = cluster.fails(&["create", "-f", &bad, "--validate=false"]);
    assert!(
        err.contains("spec.ports[0].port: Invalid value: 70000"),
        "{err}"
    );

    // Headless and ExternalName get no address.
    let headless = svc(
        "headless",
        r#"{"clusterIP":"None","selector":{"app":"web"},"ports":[{"port":80}]}"#,
    );
    cluster.ok(&["create", "-f", &headless, "--validate=false"]);
    assert_eq!(
        json(&cluster.ok(&["get", "service", "headless", "-o", "json"]))["spec"]["clusterIP"],
        "None"
    );
    let external = svc(
        "ext",
        r#"{"type":"ExternalName","externalName":"db.example.com"}"#,
    );
    cluster.ok(&["create", "-f", &external, "--validate=false"]);
    assert!(
        json(&cluster.ok(&["get", "service", "ext", "-o", "json"]))["spec"]
            .get("clusterIP")
            .is_none()
    );

    // Addresses survive a restart: the rebuilt range still holds them.
    let mut cluster = cluster;
    cluster.stop_server();
    cluster.start_server();
    let err = cluster.fails(&["create", "-f", &taken, "--validate=false"]);
    assert!(err.contains("already allocated"), "{err}");
}

/// The API benchmark runs end to end (small sizes) against the real binary, and every watch
/// event arrives: the benchmark must not rot between the runs that print real figures.
#[test]
fn api_benchmark_runs() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = cox_bench::api::Config::smoke(std::path::PathBuf::from(env!("CARGO_BIN_EXE_cox")));
    let report = runtime.block_on(cox_bench::api::run(&config)).unwrap();
    assert_eq!(report.listed, config.pods);
    assert_eq!(report.watch_delivered, report.watch_expected);
    assert!(report.configmaps.per_sec > 0.0 && report.rss_idle > 0 && report.rss_loaded > 0);
}

/// kubectl 1.32+ sends these typed creates as protobuf, and asks for protobuf answers first:
/// it decodes our protobuf objects and `Status` errors.
#[test]
fn typed_create_commands_work() {
    let cluster = Cluster::start();
    cluster.ok(&["create", "namespace", "team-b"]);
    let created = json(&cluster.ok(&[
        "create",
        "configmap",
        "c1",
        "-n",
        "team-b",
        "--from-literal=a=b",
        "--from-literal=x=y",
        "-o",
        "json",
    ]));
    let cm = json(&cluster.ok(&["get", "configmap", "c1", "-n", "team-b", "-o", "json"]));
    assert_eq!(cm["data"], serde_json::json!({"a": "b", "x": "y"}));
    assert_eq!(
        created, cm,
        "the protobuf answer kubectl decoded is the object"
    );
    let again = cluster.kubectl(&["create", "configmap", "c1", "-n", "team-b"]);
    assert_eq!(
        String::from_utf8_lossy(&again.stderr).trim(),
        "error: failed to create configmap: configmaps \"c1\" already exists"
    );
    let created = json(&cluster.ok(&["create", "deployment", "pb", "--image=nginx", "-o", "json"]));
    let stored = json(&cluster.ok(&["get", "deployment", "pb", "-o", "json"]));
    // Go prints what it decoded, so zero values and empty structs differ in form; the values
    // (int-or-strings, times, nested lists) must not.
    for pointer in [
        "/metadata/uid",
        "/metadata/creationTimestamp",
        "/metadata/labels",
        "/spec/replicas",
        "/spec/selector",
        "/spec/strategy",
        "/spec/progressDeadlineSeconds",
        "/spec/revisionHistoryLimit",
        "/spec/template/metadata/labels",
        "/spec/template/spec/containers/0/name",
        "/spec/template/spec/containers/0/image",
        "/spec/template/spec/containers/0/imagePullPolicy",
        "/spec/template/spec/terminationGracePeriodSeconds",
        "/spec/template/spec/dnsPolicy",
    ] {
        assert!(stored.pointer(pointer).is_some(), "{pointer} in {stored}");
        assert_eq!(
            created.pointer(pointer),
            stored.pointer(pointer),
            "{pointer}"
        );
    }
    cluster.ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        "--from-literal=pw=hunter2",
    ]);
    let secret = json(&cluster.ok(&["get", "secret", "s1", "-o", "json"]));
    assert_eq!(secret["data"]["pw"], "aHVudGVyMg==");
    cluster.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ]);
    let deploy = json(&cluster.ok(&["get", "deployment", "web", "-o", "json"]));
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
    assert_eq!(deploy["spec"]["selector"]["matchLabels"]["app"], "web");
    // Go's zero values in the protobuf body are not kept; what Go always writes is there.
    let spec = &deploy["spec"];
    assert!(spec.get("paused").is_none(), "{spec}");
    assert!(spec.get("minReadySeconds").is_none(), "{spec}");
    assert!(spec["template"]["spec"].get("hostIPC").is_none(), "{spec}");
    assert!(
        spec["template"]["spec"].get("enableServiceLinks").is_none(),
        "{spec}"
    );
    assert!(
        spec["template"]["metadata"].get("generation").is_none(),
        "{spec}"
    );
    assert_eq!(
        spec["template"]["metadata"]["creationTimestamp"],
        serde_json::Value::Null
    );
    assert!(
        spec["template"]["metadata"]
            .get("creationTimestamp")
            .is_some()
    );
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["resources"],
        serde_json::json!({})
    );
    cluster.ok(&["create", "service", "nodeport", "np", "--tcp=80:8080"]);
    let svc = json(&cluster.ok(&["get", "service", "np", "-o", "json"]));
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    assert!(svc["spec"]["ports"][0]["nodePort"].as_u64().is_some());
    cluster.ok(&["create", "job", "j1", "--image=busybox", "--", "echo", "hi"]);
    let job = json(&cluster.ok(&["get", "job", "j1", "-o", "json"]));
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["echo", "hi"])
    );
    // The Job's selector and its template's labels are made from its uid, as upstream.
    let uid = job["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        job["spec"]["selector"],
        serde_json::json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"],
        serde_json::json!({"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
                           "batch.kubernetes.io/job-name": "j1", "job-name": "j1"})
    );
    assert_eq!(job["spec"]["manualSelector"], false);
    cluster.ok(&["create", "serviceaccount", "sa1"]);
    cluster.ok(&["create", "role", "r1", "--verb=get", "--resource=pods"]);
    cluster.ok(&[
        "create",
        "rolebinding",
        "rb1",
        "--role=r1",
        "--serviceaccount=default:sa1",
    ]);
    cluster.ok(&[
        "autoscale",
        "deployment",
        "web",
        "--min=1",
        "--max=3",
        "--cpu-percent=50",
    ]);
    let hpa = json(&cluster.ok(&["get", "hpa", "web", "-o", "json"]));
    assert_eq!(hpa["spec"]["maxReplicas"], 3);
    // A garbled protobuf body is a 400, and the server carries on.
    let garbage = cluster.file("garbage.pb", "k8s\u{0}\u{0a}\u{50}\u{01}");
    let raw = cluster.curl_admin(
        &[
            "-H",
            "Content-Type: application/vnd.kubernetes.protobuf",
            "--data-binary",
            &format!("@{garbage}"),
        ],
        "/api/v1/namespaces/default/configmaps",
    );
    let status = json(&raw);
    assert_eq!(
        (status["code"].as_i64(), status["reason"].as_str()),
        (Some(400), Some("BadRequest")),
        "{status}"
    );
    cluster.ok(&["get", "namespaces"]);
}

/// Clients that put protobuf first in `Accept` get objects, lists, `Status` errors and watch
/// events in protobuf; others get JSON.
#[test]
fn answers_are_protobuf_when_asked_for_first() {
    let cluster = Cluster::start();
    cluster.ok(&["create", "configmap", "pb", "--from-literal=k=v"]);
    let protobuf = ["-H", "Accept: application/vnd.kubernetes.protobuf, */*"];
    let decode = |bytes: &[u8]| {
        cox_api::protobuf::decode(bytes).unwrap_or_else(|e| {
            panic!(
                "not a protobuf answer ({e}): {}",
                String::from_utf8_lossy(bytes)
            )
        })
    };

    let object =
        decode(&cluster.curl_admin_bytes(&protobuf, "/api/v1/namespaces/default/configmaps/pb"));
    assert_eq!(object["kind"], "ConfigMap");
    assert_eq!(object["data"], serde_json::json!({"k": "v"}));
    let list =
        decode(&cluster.curl_admin_bytes(&protobuf, "/api/v1/namespaces/default/configmaps"));
    assert_eq!(list["kind"], "ConfigMapList");
    assert!(
        list["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["metadata"]["name"] == "pb")),
        "{list}"
    );
    let missing =
        decode(&cluster.curl_admin_bytes(&protobuf, "/api/v1/namespaces/default/configmaps/nope"));
    assert_eq!(
        (
            missing["kind"].as_str(),
            missing["reason"].as_str(),
            missing["code"].as_i64()
        ),
        (Some("Status"), Some("NotFound"), Some(404)),
        "{missing}"
    );
    // JSON first, or no protobuf at all: JSON.
    let answer = cluster.curl_admin(
        &[
            "-H",
            "Accept: application/json, application/vnd.kubernetes.protobuf",
        ],
        "/api/v1/namespaces/default/configmaps/pb",
    );
    assert_eq!(json(&answer)["metadata"]["name"], "pb");
    // Something with no protobuf form stays JSON.
    let version = cluster.curl_admin(&protobuf, "/version");
    assert!(json(&version)["gitVersion"].is_string(), "{version}");

    // A watch: length-prefixed WatchEvents, each object an envelope of its own.
    let stream = cluster.curl_admin_bytes(
        &protobuf,
        "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1&fieldSelector=metadata.name%3Dpb",
    );
    let mut events = Vec::new();
    let mut rest = &stream[..];
    while rest.len() >= 4 {
        let length = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        assert!(rest.len() >= 4 + length, "a cut frame");
        events.push(rest[4..4 + length].to_vec());
        rest = &rest[4 + length..];
    }
    assert!(rest.is_empty(), "bytes after the last frame");
    let first = events.first().expect("the watch sends the object first");
    // WatchEvent: type (1) "ADDED", then object (2), a RawExtension whose raw (1) is the body.
    assert!(first.starts_with(b"\x0a\x05ADDED\x12"), "{first:?}");
    let magic = first
        .windows(4)
        .position(|w| w == b"k8s\0")
        .expect("the object's envelope");
    assert_eq!(decode(&first[magic..])["metadata"]["name"], "pb");
}

/// A resource served at two versions keeps one stored form: each version reads and writes
/// its own shape, and what one version cannot say survives a round trip through it.
#[test]
fn versions_of_one_resource_convert_both_ways() {
    let cluster = Cluster::start();
    let get = |what: &str| json(&cluster.ok(&["get", what, "-o", "json"]));

    // autoscaling/v1's CPU target is v2's CPU utilization metric.
    cluster.ok(&["create", "deployment", "web", "--image=nginx"]);
    cluster.ok(&[
        "autoscale",
        "deployment",
        "web",
        "--max=3",
        "--cpu-percent=50",
    ]);
    let v1 = get("horizontalpodautoscalers.v1.autoscaling/web");
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50, "{v1}");
    let v2 = get("horizontalpodautoscalers.v2.autoscaling/web");
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"],
        serde_json::json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 50}}}]),
        "{v2}"
    );
    assert!(v2["spec"].get("targetCPUUtilizationPercentage").is_none());
    // A patch written against v1 applies to v1's view.
    cluster.ok(&[
        "patch",
        "horizontalpodautoscalers.v1.autoscaling",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"targetCPUUtilizationPercentage":70}}"#,
    ]);
    let v2 = get("horizontalpodautoscalers.v2.autoscaling/web");
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    let listed = json(&cluster.ok(&[
        "get",
        "horizontalpodautoscalers.v1.autoscaling",
        "-o",
        "json",
    ]));
    assert_eq!(
        listed["items"][0]["spec"]["targetCPUUtilizationPercentage"],
        70
    );
    assert_eq!(listed["items"][0]["apiVersion"], "autoscaling/v1");

    // A v2 HPA with a metric and a behaviour v1 has no fields for: a v1 client's read and
    // write back (as `kubectl edit` through v1 would) keeps them.
    let manifest = cluster.file(
        "hpa-v2.yaml",
        r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: mem}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {name: memory, target: {type: AverageValue, averageValue: 100Mi}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 60}
"#,
    );
    cluster.ok(&["create", "-f", &manifest]);
    let v2 = get("horizontalpodautoscalers.v2.autoscaling/mem");
    assert_eq!(
        v2["spec"]["behavior"]["scaleUp"]["policies"][0],
        serde_json::json!({"type": "Pods", "value": 4, "periodSeconds": 15}),
        "a given behaviour is filled in: {v2}"
    );
    let mut v1 = get("horizontalpodautoscalers.v1.autoscaling/mem");
    let annotations = &v1["metadata"]["annotations"];
    assert!(
        annotations["autoscaling.alpha.kubernetes.io/metrics"]
            .as_str()
            .is_some_and(|m| m.contains("memory")),
        "{v1}"
    );
    assert!(
        v1["spec"].get("targetCPUUtilizationPercentage").is_none(),
        "{v1}"
    );
    v1["spec"]["maxReplicas"] = serde_json::json!(6);
    let edited = cluster.file("hpa-v1.json", &v1.to_string());
    cluster.ok(&["replace", "-f", &edited]);
    let v2 = get("horizontalpodautoscalers.v2.autoscaling/mem");
    assert_eq!(v2["spec"]["maxReplicas"], 6);
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["name"], "memory",
        "{v2}"
    );
    assert_eq!(
        v2["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        60
    );
    assert!(
        v2["metadata"]["annotations"].is_null(),
        "the annotations were lifted back out: {v2}"
    );
    // A watch through v1 sends v1 objects.
    let stream = cluster.curl_admin(
        &[],
        "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers?watch=true&timeoutSeconds=1&fieldSelector=metadata.name%3Dweb",
    );
    let event = json(stream.lines().next().expect("an event"));
    assert_eq!(event["object"]["apiVersion"], "autoscaling/v1");
    assert_eq!(
        event["object"]["spec"]["targetCPUUtilizationPercentage"],
        70
    );

    // Events: core v1's fields are events.k8s.io/v1's under other names, both ways.
    let core = cluster.file(
        "event.yaml",
        r#"
apiVersion: v1
kind: Event
metadata: {name: core-event}
involvedObject: {kind: Deployment, name: web, namespace: default}
reason: Tested
message: written as core v1
type: Normal
source: {component: tester}
count: 2
"#,
    );
    cluster.ok(&["create", "-f", &core]);
    let new = get("events.v1.events.k8s.io/core-event");
    assert_eq!(new["apiVersion"], "events.k8s.io/v1");
    assert_eq!(new["note"], "written as core v1");
    assert_eq!(new["regarding"]["name"], "web");
    assert_eq!(new["deprecatedCount"], 2);
    assert_eq!(new["deprecatedSource"]["component"], "tester");
    let modern = cluster.file(
        "event-new.yaml",
        r#"
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: new-event}
eventTime: "2024-01-01T00:00:00.000000Z"
reportingController: example.com/tester
reportingInstance: tester-1
action: Testing
reason: Tested
regarding: {kind: Deployment, name: web, namespace: default}
note: written as events.k8s.io/v1
type: Normal
"#,
    );
    cluster.ok(&["create", "-f", &modern]);
    let core = get("events.v1./new-event");
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["message"], "written as events.k8s.io/v1");
    assert_eq!(core["involvedObject"]["kind"], "Deployment");
    assert_eq!(core["reportingComponent"], "example.com/tester");
}

#[test]
fn get_prints_upstream_columns() {
    let cluster = Cluster::start();
    let out = cluster.ok(&["get", "service", "kubernetes"]);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert_eq!(
        &lines[1][..5],
        ["kubernetes", "ClusterIP", "10.43.0.1", "<none>", "443/TCP"]
    );
    let wide = cluster.ok(&["get", "service", "kubernetes", "-o", "wide"]);
    assert!(wide.lines().next().unwrap().ends_with("SELECTOR"), "{wide}");
    cluster.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=3",
    ]);
    // The deployment controller makes the ReplicaSet and its pods at once; with no node
    // (this server runs no agent) none becomes ready: 3 up to date, none available.
    cluster.ok(&[
        "wait",
        "--for=jsonpath={.status.updatedReplicas}=3",
        "deployment/web",
        "--timeout=30s",
    ]);
    let out = cluster.ok(&["get", "deployments"]);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(&lines[1][..4], ["web", "0/3", "3", "0"]);
    let ns = cluster.ok(&["get", "namespaces", "--no-headers"]);
    assert!(
        ns.lines()
            .any(|l| l.split_whitespace().take(2).eq(["kube-system", "Active"])),
        "{ns}"
    );
    let all = cluster.ok(&["get", "all"]);
    assert!(
        all.contains("service/kubernetes") && all.contains("deployment.apps/web"),
        "{all}"
    );
}

#[test]
fn pods_and_workloads_get_upstream_defaults_and_validation() {
    let cluster = Cluster::start();
    cluster.ok(&["run", "web", "--image=nginx:1.27", "--port=80"]);
    // There is no node: the scheduler marks the pod unschedulable. Wait for that write, so
    // the GET and the LIST below see the same version.
    cluster.ok(&[
        "wait",
        "--for=condition=PodScheduled=false",
        "pod/web",
        "--timeout=30s",
    ]);
    let pod = json(&cluster.ok(&["get", "pod", "web", "-o", "json"]));
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(pod["status"]["qosClass"], "BestEffort");
    assert_eq!(pod["spec"]["restartPolicy"], "Always");
    assert_eq!(pod["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    assert_eq!(
        pod["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(pod["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
    // A plain JSON list (spliced from the stored bytes) carries the same object, with its
    // resourceVersion, as a GET.
    let list = json(&cluster.ok(&["get", "--raw", "/api/v1/namespaces/default/pods"]));
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == "web")
        .unwrap()
        .clone();
    assert_eq!(
        item["metadata"]["resourceVersion"],
        pod["metadata"]["resourceVersion"]
    );
    assert_eq!(item["spec"], pod["spec"]);
    let row: Vec<String> = cluster
        .ok(&["get", "pod", "web", "--no-headers"])
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(&row[..4], ["web", "0/1", "Pending", "0"]);

    let no_image = cluster.file("bad-pod.json", r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bad"},"spec":{"containers":[{"name":"c"}]}}"#);
    let err = cluster.fails(&["create", "-f", &no_image, "--validate=false"]);
    assert!(
        err.contains("Pod \"bad\" is invalid: spec.containers[0].image: Required value"),
        "{err}"
    );

    let mismatch = cluster.file(
        "bad-deploy.json",
        r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"bad"},
            "spec":{"selector":{"matchLabels":{"app":"a"}},
                    "template":{"metadata":{"labels":{"app":"b"}},"spec":{"containers":[{"name":"c","image":"x"}]}}}}"#,
    );
    let err = cluster.fails(&["create", "-f", &mismatch, "--validate=false"]);
    assert!(
        err.contains("`selector` does not match template `labels`"),
        "{err}"
    );

    cluster.ok(&["create", "deployment", "web", "--image=nginx"]);
    let deploy = json(&cluster.ok(&["get", "deployment", "web", "-o", "json"]));
    assert_eq!(
        deploy["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        "25%"
    );
    assert_eq!(deploy["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(deploy["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
    cluster.ok(&["create", "secret", "generic", "s", "--from-literal=a=b"]);
    assert_eq!(
        json(&cluster.ok(&["get", "secret", "s", "-o", "json"]))["type"],
        "Opaque"
    );

    // The less common kinds are validated too, each with upstream's words.
    let cases = [
        (
            r#"{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"cj"},"spec":{"schedule":"every day",
                "jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"x"}]}}}}}}"#,
            r#"The CronJob "cj" is invalid: spec.schedule: Invalid value: "every day": expected exactly 5 fields, found 2: every day"#,
        ),
        (
            r#"{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"pdb"},"spec":{"minAvailable":1,"maxUnavailable":1}}"#,
            "minAvailable and maxUnavailable cannot be both set",
        ),
        (
            r#"{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"ing"},"spec":{"rules":[{"http":{"paths":[
                {"path":"/","backend":{"service":{"name":"web","port":{"number":80}}}}]}}]}}"#,
            "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
        ),
        (
            r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"r"},"rules":[{"apiGroups":[""],"resources":["pods"]}]}"#,
            "rules[0].verbs: Required value: verbs must contain at least one value",
        ),
        (
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"tls"},"type":"kubernetes.io/tls","data":{"tls.crt":"eA=="}}"#,
            r#"The Secret "tls" is invalid: data[tls.key]: Required value"#,
        ),
    ];
    for (i, (manifest, want)) in cases.iter().enumerate() {
        let file = cluster.file(&format!("invalid-{i}.json"), manifest);
        let err = cluster.fails(&["create", "-f", &file, "--validate=false"]);
        assert!(err.contains(want), "want {want:?} in {err}");
    }
}

#[test]
fn deleting_a_namespace_deletes_its_contents_then_the_namespace() {
    let cluster = Cluster::start();
    cluster.ok(&["create", "namespace", "doomed"]);
    cluster.ok(&[
        "create",
        "configmap",
        "a",
        "-n",
        "doomed",
        "--from-literal=x=y",
    ]);
    cluster.ok(&["create", "deployment", "d", "-n", "doomed", "--image=nginx"]);
    cluster.ok(&[
        "create",
        "service",
        "clusterip",
        "s",
        "-n",
        "doomed",
        "--tcp=80:80",
    ]);
    let ip = json(&cluster.ok(&["get", "service", "s", "-n", "doomed", "-o", "json"]))["spec"]["clusterIP"].as_str().unwrap().to_owned();
    // kubectl waits for the namespace to be gone (its default --wait).
    assert!(
        cluster
            .ok(&["delete", "namespace", "doomed", "--timeout=60s"])
            .contains("namespace \"doomed\" deleted")
    );
    let err = cluster.fails(&["get", "namespace", "doomed"]);
    assert!(err.contains("namespaces \"doomed\" not found"), "{err}");
    for kind in ["configmaps", "deployments", "services"] {
        assert_eq!(
            cluster
                .ok(&["get", kind, "-n", "doomed", "-o", "name"])
                .trim(),
            "",
            "{kind} left behind"
        );
    }
    // The Service's address went back to the range with it.
    cluster.ok(&["create", "namespace", "again"]);
    let reuse = cluster.file("reuse.json", &format!(r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"r","namespace":"again"}},"spec":{{"clusterIP":"{ip}","ports":[{{"port":80}}]}}}}"#));
    cluster.ok(&["create", "-f", &reuse, "--validate=false"]);
    // Objects cannot be created in a namespace being deleted; other namespaces are untouched.
    assert!(
        cluster
            .ok(&["get", "namespaces", "-o", "name"])
            .contains("namespace/default")
    );
}

#[test]
fn field_validation_strict_warn_and_ignore() {
    let cluster = Cluster::start();
    let body = cluster.file(
        "pod.json",
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"NAME"},"spec":{"containers":[{"name":"c","image":"x","arg":["y"]}]}}"#,
    );
    let post = |name: &str, validation: &str| {
        let data = std::fs::read_to_string(&body)
            .unwrap()
            .replace("NAME", name);
        let path = cluster.file(&format!("{name}.json"), &data);
        cluster.curl_admin(
            &[
                "-i",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &format!("@{path}"),
            ],
            &format!("/api/v1/namespaces/default/pods{validation}"),
        )
    };
    let strict = post("strict", "?fieldValidation=Strict");
    assert!(strict.starts_with("HTTP/2 400"), "{strict}");
    assert!(
        strict.contains(r#"strict decoding error: unknown field \"spec.containers[0].arg\""#),
        "{strict}"
    );
    let warn = post("warned", "");
    assert!(warn.starts_with("HTTP/2 201"), "{warn}");
    assert!(
        warn.to_ascii_lowercase()
            .contains(r#"warning: 299 - "unknown field \"spec.containers[0].arg\"""#),
        "{warn}"
    );
    let ignore = post("ignored", "?fieldValidation=Ignore");
    assert!(
        ignore.starts_with("HTTP/2 201") && !ignore.to_ascii_lowercase().contains("warning:"),
        "{ignore}"
    );
    // A key given twice is reported too (the JSON decoder would keep the last silently).
    let twice = cluster.file(
        "twice.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"twice","name":"again"},"data":{}}"#,
    );
    let out = cluster.curl_admin(
        &[
            "-i",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &format!("@{twice}"),
        ],
        "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
    );
    assert!(
        out.starts_with("HTTP/2 400") && out.contains(r#"duplicate field \"metadata.name\""#),
        "{out}"
    );
    // The unknown field is dropped, as upstream's typed decoding drops it.
    let pod = json(&cluster.ok(&["get", "pod", "warned", "-o", "json"]));
    assert!(pod["spec"]["containers"][0].get("arg").is_none(), "{pod}");
}

#[test]
fn apply_edit_patch_and_explain_work_with_openapi() {
    let cluster = Cluster::start();
    let deployment = |replicas: u32, web_image: &str, env: &str, second: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n      - name: web\n        image: {web_image}\n        env: {env}\n      - name: {second}\n        image: busybox\n"
        )
    };
    let first = cluster.file(
        "app1.yaml",
        &deployment(
            2,
            "nginx:1.27",
            r#"[{name: A, value: "1"}, {name: B, value: "2"}]"#,
            "sidecar",
        ),
    );
    let second = cluster.file(
        "app2.yaml",
        &deployment(
            3,
            "nginx:1.28",
            r#"[{name: A, value: "1"}, {name: C, value: "3"}]"#,
            "logger",
        ),
    );
    // No --validate=false: kubectl reads the OpenAPI documents and validates on the server.
    assert!(
        cluster
            .ok(&["apply", "-f", &first])
            .contains("deployment.apps/web created")
    );
    assert!(
        cluster
            .ok(&["apply", "-f", &second])
            .contains("deployment.apps/web configured")
    );
    let got = json(&cluster.ok(&["get", "deployment", "web", "-o", "json"]));
    let containers = &got["spec"]["template"]["spec"]["containers"];
    let names: Vec<&str> = containers
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["web", "logger"],
        "the removed container is gone, the new one added"
    );
    assert_eq!(containers[0]["image"], "nginx:1.28");
    assert_eq!(
        containers[0]["env"],
        serde_json::json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"}])
    );
    assert_eq!(got["spec"]["replicas"], 3);

    // A strategic merge patch touches only the named container.
    cluster.ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.29"}]}}}}"#,
    ]);
    cluster.ok(&["set", "image", "deployment/web", "logger=busybox:2"]);
    let got = json(&cluster.ok(&["get", "deployment", "web", "-o", "json"]));
    let images: Vec<&str> = got["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, ["nginx:1.29", "busybox:2"]);

    // kubectl edit with EDITOR set to a script.
    let editor = cluster.file(
        "editor.sh",
        "#!/bin/sh\nsed -i 's/replicas: 3/replicas: 4/' \"$1\"\n",
    );
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let output = Command::new("ip")
        .args(["netns", "exec", &cluster.netns, "kubectl", "--kubeconfig"])
        .arg(cluster.kubeconfig())
        .args(["edit", "deployment", "web"])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        json(&cluster.ok(&["get", "deployment", "web", "-o", "json"]))["spec"]["replicas"],
        4
    );

    // Server-side validation: an unknown field is refused with upstream's message.
    let bad = cluster.file(
        "bad.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"dataa":{"a":"b"}}"#,
    );
    let err = cluster.fails(&["create", "-f", &bad, "--validate=strict"]);
    assert!(
        err.contains(r#"strict decoding error: unknown field "dataa""#),
        "{err}"
    );

    let explained = cluster.ok(&["explain", "pod.spec.containers"]);
    assert!(
        explained.contains("FIELD: containers <[]Container>"),
        "{explained}"
    );
    assert!(
        explained.contains("List of containers belonging to the pod"),
        "{explained}"
    );
    cluster.ok(&["rollout", "restart", "deployment/web"]);
    let annotations = json(&cluster.ok(&["get", "deployment", "web", "-o", "json"]))["spec"]["template"]["metadata"]["annotations"].clone();
    assert!(
        annotations
            .get("kubectl.kubernetes.io/restartedAt")
            .is_some(),
        "{annotations}"
    );
}

#[test]
fn pods_bind_once_and_evictions_respect_disruption_budgets() {
    let cluster = Cluster::start();
    cluster.ok(&["run", "web", "--image=nginx", "--labels=app=web"]);
    cluster.ok(&["run", "free", "--image=nginx", "--labels=app=free"]);
    let binding = cluster.file("binding.json", r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"web"},"target":{"apiVersion":"v1","kind":"Node","name":"node-1"}}"#);
    cluster.ok(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/web/binding",
        "-f",
        &binding,
    ]);
    assert_eq!(
        json(&cluster.ok(&["get", "pod", "web", "-o", "json"]))["spec"]["nodeName"],
        "node-1"
    );
    let err = cluster.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/web/binding",
        "-f",
        &binding,
    ]);
    assert!(
        err.contains("pod web is already assigned to node \\\"node-1\\\"")
            || err.contains("already assigned to node"),
        "{err}"
    );

    cluster.ok(&[
        "create",
        "poddisruptionbudget",
        "web",
        "--selector=app=web",
        "--min-available=1",
    ]);
    let evict = |pod: &str| {
        let body = cluster.file(
            &format!("evict-{pod}.json"),
            &format!(
                r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}"}}}}"#
            ),
        );
        cluster.kubectl(&[
            "create",
            "--raw",
            &format!("/api/v1/namespaces/default/pods/{pod}/eviction"),
            "-f",
            &body,
        ])
    };
    let refused = evict("web");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("Cannot evict pod as it would violate the pod's disruption budget"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    cluster.ok(&["get", "pod", "web"]);
    assert!(evict("free").status.success());
    cluster.fails(&["get", "pod", "free"]);
}

#[test]
fn yaml_request_bodies_are_accepted() {
    let cluster = Cluster::start();
    let yaml = cluster.file(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  answer: \"42\"\n",
    );
    let out = cluster.curl_admin(
        &[
            "-H",
            "Content-Type: application/yaml",
            "--data-binary",
            &format!("@{yaml}"),
        ],
        "/api/v1/namespaces/default/configmaps",
    );
    let created = json(&out);
    assert_eq!(created["data"]["answer"], "42", "{created}");
    assert_eq!(
        json(&cluster.ok(&["get", "configmap", "from-yaml", "-o", "json"]))["data"]["answer"],
        "42"
    );
}

/// `metadata.managedFields` as `kubectl get --show-managed-fields` shows it: each writer's
/// fields, moving to whoever changes them, per subresource; a named `--field-manager`
/// checked; entries cleared by `[]` and not started again by an update.
#[test]
fn managed_fields_record_who_set_what() {
    let cluster = Cluster::start();
    let entries = |kind: &str, name: &str| -> Vec<Value> {
        let object = json(&cluster.ok(&["get", kind, name, "-o", "json", "--show-managed-fields"]));
        object["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let by = |entries: &[Value], manager: &str| -> Value {
        entries
            .iter()
            .find(|e| e["manager"] == manager)
            .cloned()
            .unwrap_or_else(|| panic!("no entry of {manager}: {entries:#?}"))
    };
    cluster.ok(&[
        "create",
        "configmap",
        "mf",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]);
    let created = entries("configmap", "mf");
    assert_eq!(created.len(), 1, "{created:#?}");
    let entry = &created[0];
    assert_eq!(entry["manager"], "kubectl-create");
    assert_eq!(entry["operation"], "Update");
    assert_eq!(entry["apiVersion"], "v1");
    assert_eq!(entry["fieldsType"], "FieldsV1");
    assert!(
        entry["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{entry}"
    );
    assert_eq!(
        entry["fieldsV1"],
        json(r#"{"f:data": {".": {}, "f:a": {}, "f:b": {}}}"#)
    );
    // Plain `get -o yaml` hides them, as kubectl does.
    assert!(
        !cluster
            .ok(&["get", "configmap", "mf", "-o", "yaml"])
            .contains("managedFields")
    );

    cluster.ok(&["label", "configmap", "mf", "tier=web"]);
    cluster.ok(&[
        "patch",
        "configmap",
        "mf",
        "-p",
        r#"{"data":{"a":"changed"}}"#,
        "--field-manager=tuner",
    ]);
    let now = entries("configmap", "mf");
    assert_eq!(
        by(&now, "kubectl-label")["fieldsV1"],
        json(r#"{"f:metadata": {"f:labels": {".": {}, "f:tier": {}}}}"#)
    );
    assert_eq!(
        by(&now, "tuner")["fieldsV1"],
        json(r#"{"f:data": {"f:a": {}}}"#)
    );
    assert_eq!(
        by(&now, "kubectl-create")["fieldsV1"],
        json(r#"{"f:data": {".": {}, "f:b": {}}}"#),
        "the changed field left its first manager"
    );

    // A named manager is checked: at most 128 bytes.
    let long = format!("--field-manager={}", "m".repeat(129));
    let err = cluster.fails(&["create", "configmap", "other", "--from-literal=a=1", &long]);
    assert!(
        err.contains(r#"CreateOptions.meta.k8s.io "" is invalid: fieldManager: Too long"#),
        "{err}"
    );

    // Subresources have entries of their own; the main resource never owns status.
    let deploy = cluster.file(
        "deploy.json",
        r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
            "spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},
                    "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx"}]}}},
            "status":{"replicas":7}}"#,
    );
    cluster.ok(&["create", "-f", &deploy]);
    cluster.ok(&["scale", "deployment", "web", "--replicas=3"]);
    let now = entries("deployment", "web");
    let created = by(&now, "kubectl-create");
    assert!(created["fieldsV1"].get("f:status").is_none(), "{created}");
    assert_eq!(
        created["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
            ["f:image"],
        json("{}"),
        "{created}"
    );
    let scaled = now
        .iter()
        .find(|e| e["subresource"] == "scale")
        .unwrap_or_else(|| panic!("no scale entry: {now:#?}"));
    assert_eq!(
        scaled["fieldsV1"],
        json(r#"{"f:spec": {"f:replicas": {}}}"#)
    );
    assert!(
        created["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
        "replicas moved to the scale entry: {created}"
    );

    // `[]` clears them, and an update does not start them again.
    cluster.ok(&[
        "patch",
        "configmap",
        "mf",
        "--type=merge",
        "-p",
        r#"{"metadata":{"managedFields":[]}}"#,
    ]);
    assert!(entries("configmap", "mf").is_empty());
    cluster.ok(&["annotate", "configmap", "mf", "note=x"]);
    assert!(entries("configmap", "mf").is_empty());
}

/// A pod naming a ServiceAccount that does not exist is refused, as upstream's admission
/// refuses it; the first pod of a new namespace waits for the `default` account its
/// controller makes. What admission adds is not the writer's in managedFields.
#[test]
fn pods_need_their_service_account() {
    let cluster = Cluster::start();
    let ghost = r#"{"spec":{"serviceAccountName":"ghost"}}"#;
    let err = cluster.fails(&["run", "p", "--image=nginx", "--overrides", ghost]);
    assert!(
        err.contains(
            r#"pods "p" is forbidden: error looking up service account default/ghost: serviceaccount "ghost" not found"#
        ),
        "{err}"
    );
    cluster.ok(&["create", "serviceaccount", "ghost"]);
    cluster.ok(&["run", "p", "--image=nginx", "--overrides", ghost]);

    cluster.ok(&["create", "namespace", "fresh"]);
    cluster.ok(&["run", "q", "-n", "fresh", "--image=nginx"]);
    let pod = json(&cluster.ok(&[
        "get",
        "pod",
        "q",
        "-n",
        "fresh",
        "-o",
        "json",
        "--show-managed-fields",
    ]));
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    let entries = pod["metadata"]["managedFields"].as_array().unwrap();
    let entry = entries
        .iter()
        .find(|e| e["manager"] == "kubectl-run")
        .unwrap_or_else(|| panic!("no entry of kubectl-run: {entries:#?}"));
    let spec = &entry["fieldsV1"]["f:spec"];
    assert!(spec.get("f:containers").is_some(), "{spec}");
    assert!(
        spec.get("f:restartPolicy").is_some(),
        "defaults are the writer's: {spec}"
    );
    for admitted in [
        "f:serviceAccountName",
        "f:tolerations",
        "f:priority",
        "f:volumes",
    ] {
        assert!(
            spec.get(admitted).is_none(),
            "{admitted} is admission's: {spec}"
        );
    }
}

/// What an update may not change is refused with upstream's 422, and what it may change goes
/// through: a Deployment's selector, a pod's spec beyond its images, an immutable ConfigMap.
/// `create -f`, `get -o wide`, `describe` and `delete -f --wait` of one object of every kind
/// the API serves, as a user would try each: kubectl's describers read typed objects and
/// crash on a missing default (a PriorityClass's `preemptionPolicy` did).
#[test]
fn every_kind_is_created_listed_described_and_deleted() {
    let cluster = Cluster::start();
    cluster.ok(&["create", "namespace", "kinds"]);
    let manifest = cluster.file("kinds.yaml", include_str!("kinds.yaml"));
    let created = cluster.ok(&["create", "-f", &manifest]);
    let names = cluster.ok(&["get", "-f", &manifest, "-o", "name"]);
    let names: Vec<&str> = names.lines().collect();
    assert_eq!(names.len(), created.lines().count(), "{created}");
    assert!(names.len() >= 35, "{names:?}");
    let wide = cluster.ok(&["get", "-f", &manifest, "-o", "wide"]);
    assert!(wide.contains("PreemptLowerPriority"), "{wide}");
    for name in &names {
        let described = cluster.ok(&["describe", "-n", "kinds", name]);
        assert!(described.starts_with("Name:"), "{name}: {described}");
    }
    let class = cluster.ok(&["describe", "priorityclass", "kinds-pc"]);
    assert!(
        class.contains("PreemptionPolicy:  PreemptLowerPriority"),
        "{class}"
    );
    cluster.ok(&["delete", "-f", &manifest, "--wait=true"]);
    let left = cluster.kubectl(&["get", "-f", &manifest, "-o", "name"]);
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn updates_may_not_change_what_upstream_keeps_fixed() {
    let cluster = Cluster::start();
    cluster.ok(&["create", "deployment", "web", "--image=nginx"]);
    let err = cluster.fails(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}}}}}"#,
    ]);
    assert!(
        err.contains(r#"The Deployment "web" is invalid: spec.selector: Invalid value"#)
            && err.contains("field is immutable"),
        "{err}"
    );
    cluster.ok(&["scale", "deployment", "web", "--replicas=2"]);

    cluster.ok(&["run", "p", "--image=nginx:1.25"]);
    cluster.ok(&["set", "image", "pod/p", "p=nginx:1.26"]);
    let err = cluster.fails(&["set", "env", "pod/p", "A=1"]);
    assert!(
        err.contains(r#"Pod "p" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"#),
        "{err}"
    );
    cluster.ok(&["label", "pod", "p", "tier=web"]);

    cluster.ok(&["create", "configmap", "fixed", "--from-literal=a=1"]);
    cluster.ok(&[
        "patch",
        "configmap",
        "fixed",
        "--type=merge",
        "-p",
        r#"{"immutable":true}"#,
    ]);
    let err = cluster.fails(&[
        "patch",
        "configmap",
        "fixed",
        "--type=merge",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ]);
    assert!(
        err.contains("data: Forbidden: field is immutable when `immutable` is set"),
        "{err}"
    );
    let manifest = cluster.file(
        "storage.yaml",
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: slow}\n\
         provisioner: example.com/disk\nparameters: {speed: slow}\n---\n\
         apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\n\
         spec: {accessModes: [ReadWriteOnce], storageClassName: slow, \
         resources: {requests: {storage: 1Gi}}}\n",
    );
    cluster.ok(&["create", "-f", &manifest]);
    let err = cluster.fails(&[
        "patch",
        "storageclass",
        "slow",
        "-p",
        r#"{"parameters":{"speed":"fast"}}"#,
    ]);
    assert!(
        err.contains(r#"The StorageClass "slow" is invalid: parameters: Forbidden: updates to parameters are forbidden."#),
        "{err}"
    );
    cluster.ok(&["label", "storageclass", "slow", "tier=cold"]);
    // A claim not yet bound may not grow either.
    let err = cluster.fails(&[
        "patch",
        "pvc",
        "data",
        "-p",
        r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#,
    ]);
    assert!(
        err.contains("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"),
        "{err}"
    );
}
