//! Services as the tutorial uses them, with the real kubectl against `cox server` and its
//! node agent: endpoints follow the pods, a ClusterIP balances over every ready replica,
//! scaling changes where traffic goes, node ports answer on the node, a LoadBalancer
//! Service gets an address, and what nothing serves is refused at once. The traffic stays
//! inside the test's network namespace (pods, the bridge, 127.0.0.1).

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod cluster;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cluster::Cluster;
use serde_json::Value;

const BUSYBOX: &str = "busybox:1.36";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn wait_until(cluster: &Cluster, what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; server log:\n{}",
            cluster.server_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A Deployment of `replicas` busybox web servers answering with their pod's name on the
/// container port named `http` (8080).
fn echo_deployment(name: &str, replicas: u32) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {BUSYBOX}
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe:
          tcpSocket: {{port: http}}
          periodSeconds: 1
"#
    )
}

const CLIENT: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: client
    image: busybox:1.36
    command: ["sleep", "3600"]
"#;

/// `wget` from inside pod `pod`: the body, or `None` when the request failed.
fn fetch_from(cluster: &Cluster, pod: &str, url: &str) -> Option<String> {
    let output = cluster.kubectl(&["exec", pod, "--", "timeout", "3", "wget", "-qO-", url]);
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// What `wget` from pod `pod` says when the request fails, and how long it took.
fn refused_from(cluster: &Cluster, pod: &str, url: &str) -> (String, Duration) {
    let started = Instant::now();
    let output = cluster.kubectl(&["exec", pod, "--", "timeout", "5", "wget", "-qO-", url]);
    assert!(!output.status.success(), "{url} answered");
    (
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

/// The ready endpoint addresses of `service` in its EndpointSlices.
fn ready_addresses(cluster: &Cluster, service: &str) -> BTreeSet<String> {
    let label = format!("kubernetes.io/service-name={service}");
    let slices = json(&cluster.ok(&["get", "endpointslices", "-l", &label, "-o", "json"]));
    let mut ready = BTreeSet::new();
    for slice in slices["items"].as_array().unwrap() {
        for endpoint in slice["endpoints"].as_array().into_iter().flatten() {
            if endpoint["conditions"]["ready"] == Value::Bool(true) {
                ready.insert(endpoint["addresses"][0].as_str().unwrap().to_owned());
            }
        }
    }
    ready
}

fn pod_ips(cluster: &Cluster, selector: &str) -> BTreeSet<String> {
    let pods = json(&cluster.ok(&["get", "pods", "-l", selector, "-o", "json"]));
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_owned))
        .collect()
}

fn pod_names(cluster: &Cluster, selector: &str) -> BTreeSet<String> {
    cluster
        .ok(&[
            "get",
            "pods",
            "-l",
            selector,
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The pod names that answer `url` from `pod` over `tries` requests.
fn answering(cluster: &Cluster, pod: &str, url: &str, tries: usize) -> BTreeSet<String> {
    (0..tries)
        .filter_map(|_| fetch_from(cluster, pod, url))
        .collect()
}

fn start() -> Cluster {
    start_with(&[])
}

fn start_with(args: &[&str]) -> Cluster {
    let cluster = Cluster::start_with_agent_and(args);
    cluster.add_uplink();
    wait_until(
        &cluster,
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
    cluster
}

#[test]
fn a_cluster_ip_service_balances_over_ready_pods_and_follows_scaling() {
    let cluster = start();
    let web = cluster.file("web.yaml", &echo_deployment("web", 3));
    cluster.ok(&["apply", "-f", &web]);
    let client = cluster.file("client.yaml", CLIENT);
    cluster.ok(&["apply", "-f", &client]);
    cluster.ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=http",
    ]);
    let rollout = cluster.kubectl(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert!(rollout.status.success(), "{}", cluster.server_log());
    cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/client",
        "--timeout=60s",
    ]);

    // The endpoints list exactly the ready pods, on the named port's number.
    wait_until(
        &cluster,
        "three ready endpoints",
        Duration::from_secs(20),
        || {
            ready_addresses(&cluster, "web") == pod_ips(&cluster, "app=web")
                && ready_addresses(&cluster, "web").len() == 3
        },
    );
    let endpoints = json(&cluster.ok(&["get", "endpoints", "web", "-o", "json"]));
    assert_eq!(endpoints["subsets"][0]["ports"][0]["port"], 8080);
    assert_eq!(
        endpoints["subsets"][0]["addresses"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "{endpoints}"
    );
    let slice = cluster.ok(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
        "-o",
        "jsonpath={.items[0].metadata.labels.endpointslice\\.kubernetes\\.io/managed-by} {.items[0].metadata.ownerReferences[0].kind}",
    ]);
    assert_eq!(slice, "endpointslice-controller.k8s.io Service");

    // Requests to the ClusterIP reach every replica.
    let ip = cluster.ok(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    let url = format!("http://{ip}/");
    let replicas = pod_names(&cluster, "app=web");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen != replicas && Instant::now() < deadline {
        seen.extend(answering(&cluster, "client", &url, 6));
    }
    assert_eq!(seen, replicas, "replicas that answered through {url}");
    // Pod to pod, without the Service.
    let direct = pod_ips(&cluster, "app=web").into_iter().next().unwrap();
    assert!(fetch_from(&cluster, "client", &format!("http://{direct}:8080/")).is_some());

    // ClientIP affinity: the client sticks to one replica.
    cluster.ok(&[
        "patch",
        "service",
        "web",
        "-p",
        r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
    ]);
    wait_until(&cluster, "affinity", Duration::from_secs(20), || {
        answering(&cluster, "client", &url, 6).len() == 1
    });
    cluster.ok(&[
        "patch",
        "service",
        "web",
        "-p",
        r#"{"spec":{"sessionAffinity":"None"}}"#,
    ]);

    // Scaled down to one: the endpoints follow, and only that pod answers.
    cluster.ok(&["scale", "deployment", "web", "--replicas=1"]);
    wait_until(
        &cluster,
        "one ready endpoint",
        Duration::from_secs(30),
        || ready_addresses(&cluster, "web").len() == 1 && pod_names(&cluster, "app=web").len() == 1,
    );
    let remaining = pod_names(&cluster, "app=web");
    let answered = answering(&cluster, "client", &url, 8);
    assert_eq!(answered, remaining, "after scaling to one");
    // Hairpin: the last pod reaches itself through its Service.
    let last = remaining.iter().next().unwrap().clone();
    assert_eq!(
        fetch_from(&cluster, &last, &url).as_deref(),
        Some(last.as_str())
    );

    // A Service without selector, with hand-written Endpoints: mirrored into a slice and
    // proxied like any other.
    let last_ip = pod_ips(&cluster, "app=web").into_iter().next().unwrap();
    let manual = cluster.file(
        "manual.yaml",
        &format!(
            r#"
apiVersion: v1
kind: Service
metadata: {{name: manual}}
spec:
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: manual}}
subsets:
- addresses: [{{ip: "{last_ip}"}}]
  ports: [{{name: http, port: 8080}}]
"#
        ),
    );
    cluster.ok(&["apply", "-f", &manual]);
    let manual_ip = cluster.ok(&[
        "get",
        "service",
        "manual",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    wait_until(
        &cluster,
        "the manual service",
        Duration::from_secs(20),
        || {
            fetch_from(&cluster, "client", &format!("http://{manual_ip}/")).as_deref()
                == Some(last.as_str())
        },
    );
    let mirrored = cluster.ok(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=manual",
        "-o",
        "jsonpath={.items[0].metadata.labels.endpointslice\\.kubernetes\\.io/managed-by}",
    ]);
    assert_eq!(mirrored, "endpointslicemirroring-controller.k8s.io");

    // A NodePort answers on the node (127.0.0.1 here) from outside the pods.
    cluster.ok(&[
        "patch",
        "service",
        "web",
        "-p",
        r#"{"spec":{"type":"NodePort","ports":[{"port":80,"targetPort":"http","nodePort":31000}]}}"#,
    ]);
    for node in ["127.0.0.1", "192.0.2.1"] {
        wait_until(&cluster, "the node port", Duration::from_secs(20), || {
            let url = format!("http://{node}:31000/");
            let out = cluster.exec("curl", &["-sf", "--max-time", "2", &url]);
            String::from_utf8_lossy(&out.stdout).trim() == last
        });
    }
    // From a pod too, at the node's address.
    let from_pod = fetch_from(&cluster, "client", "http://192.0.2.1:31000/");
    assert_eq!(from_pod.as_deref(), Some(last.as_str()));

    // No endpoints: refused at once, not left to time out.
    cluster.ok(&["scale", "deployment", "web", "--replicas=0"]);
    // (A terminating pod still serves until it is gone, as upstream's proxy keeps sending
    // to serving endpoints while none is ready.)
    wait_until(&cluster, "no endpoints", Duration::from_secs(30), || {
        let slices = json(&cluster.ok(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "json",
        ]));
        let listed = slices["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["endpoints"].as_array())
            .map(Vec::len)
            .sum::<usize>();
        pod_names(&cluster, "app=web").is_empty() && listed == 0
    });
    let (error, took) = refused_from(&cluster, "client", &url);
    let table = cluster.exec("nft", &["list", "table", "ip", "cox-proxy"]);
    assert!(
        error.contains("refused") && took < Duration::from_secs(4),
        "{error} after {took:?}; {}\n{}",
        String::from_utf8_lossy(&table.stdout),
        cluster.ok(&["get", "endpointslices", "-o", "yaml"])
    );
    let out = cluster.exec(
        "curl",
        &["-s", "--max-time", "3", "http://127.0.0.1:31000/"],
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "curl: connection refused expected"
    );
    // An address of the service range that no Service has, and another node's pod range.
    for unowned in ["http://10.43.254.254/", "http://10.42.7.7/"] {
        let (error, took) = refused_from(&cluster, "client", unowned);
        assert!(error.contains("refused"), "{unowned}: {error}");
        assert!(took < Duration::from_secs(4), "{unowned}: {took:?}");
    }

    cluster.ok(&["delete", "deployment", "web"]);
    cluster.ok(&["delete", "service", "web"]);
    wait_until(
        &cluster,
        "the endpoints to go",
        Duration::from_secs(20),
        || {
            cluster
                .ok(&[
                    "get",
                    "endpoints,endpointslices",
                    "-l",
                    "app=web",
                    "-o",
                    "name",
                ])
                .trim()
                .is_empty()
                && cluster.kubectl(&["get", "endpoints", "web"]).status.code() == Some(1)
        },
    );
}

#[test]
fn a_load_balancer_service_gets_the_nodes_address_and_answers_there() {
    let cluster = start();
    let web = cluster.file("web.yaml", &echo_deployment("lb", 1));
    cluster.ok(&["apply", "-f", &web]);
    cluster.ok(&[
        "expose",
        "deployment",
        "lb",
        "--type=LoadBalancer",
        "--port=8088",
        "--target-port=8080",
    ]);
    let rollout = cluster.kubectl(&["rollout", "status", "deployment/lb", "--timeout=90s"]);
    assert!(rollout.status.success(), "{}", cluster.server_log());
    wait_until(&cluster, "an external IP", Duration::from_secs(20), || {
        cluster.ok(&[
            "get",
            "service",
            "lb",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ]) == "127.0.0.1"
    });
    let listed = cluster.ok(&["get", "service", "lb"]);
    assert!(listed.contains("127.0.0.1"), "{listed}");
    let pod = pod_names(&cluster, "app=lb").into_iter().next().unwrap();
    wait_until(
        &cluster,
        "the load balancer to answer",
        Duration::from_secs(20),
        || {
            let out = cluster.exec(
                "curl",
                &["-sf", "--max-time", "2", "http://127.0.0.1:8088/"],
            );
            String::from_utf8_lossy(&out.stdout).trim() == pod
        },
    );

    let answered = port_forward_service(&cluster, &format!("pod/{pod}"), 8080);
    assert_eq!(answered, pod, "port-forward");

    // Another class's load balancer is not ours to fill.
    let other = cluster.file(
        "other.yaml",
        r#"
apiVersion: v1
kind: Service
metadata: {name: other}
spec:
  type: LoadBalancer
  loadBalancerClass: example.com/other
  selector: {app: lb}
  ports: [{port: 8089, targetPort: 8080}]
"#,
    );
    cluster.ok(&["apply", "-f", &other]);
    // Nothing to wait for: the controller writes nothing for another class. A second here
    // gives it the time it takes for ours.
    std::thread::sleep(Duration::from_secs(1));
    let other = cluster.ok(&[
        "get",
        "service",
        "other",
        "-o",
        "jsonpath={.status.loadBalancer}",
    ]);
    assert!(!other.contains("127.0.0.1"), "{other}");
    cluster.ok(&["delete", "deployment", "lb"]);
}

/// A pod the headless Service `web-headless` lists under its own name: `db-0`.
const NAMED: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: named, labels: {app: web}}
spec:
  hostname: db-0
  subdomain: web-headless
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: busybox:1.36
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{name: http, containerPort: 8080}]
  - name: sidecar
    image: busybox:1.36
    command: ["sleep", "3600"]
"#;

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: elsewhere}
spec:
  type: ExternalName
  externalName: db.example.test
"#;

const ALIASED_CLIENT: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 0
  hostAliases: [{ip: 192.0.2.80, hostnames: [foo.local, bar.local]}]
  containers:
  - name: client
    image: busybox:1.36
    # The kubelet expands $(VAR) from the environment before the shell sees it.
    command: ["sh", "-c", "echo $(KUBERNETES_SERVICE_HOST) > /tmp/api; exec sleep 3600"]
"#;

/// `nslookup NAME` from the client pod through its resolv.conf: the output, and whether
/// it found an answer.
fn nslookup(cluster: &Cluster, name: &str) -> (String, bool) {
    let output = cluster.kubectl(&["exec", "client", "--", "timeout", "5", "nslookup", name]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (text, output.status.success())
}

/// The node's resolver, as the test plays it: on 127.0.0.53:53 (UDP) in the cluster's
/// namespace, `db.example.test` is 192.0.2.7 and every other name does not exist.
fn fake_upstream_resolver(cluster: &Cluster) {
    use cox_dns::proto::op::{Message, ResponseCode};
    use cox_dns::proto::rr::rdata::A;
    use cox_dns::proto::rr::{RData, Record, RecordType};
    let netns = cluster.netns.clone();
    let (bound, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        cluster::enter_netns(&netns);
        let socket = std::net::UdpSocket::bind("127.0.0.53:53").unwrap();
        bound.send(()).unwrap();
        let mut buffer = [0u8; 1500];
        // Ends with the namespace (the socket errors once it is gone) or the test process.
        while let Ok((n, peer)) = socket.recv_from(&mut buffer) {
            let Ok(request) = Message::from_vec(&buffer[..n]) else {
                continue;
            };
            let mut response = Message::response(request.metadata.id, request.metadata.op_code);
            response.metadata.recursion_desired = request.metadata.recursion_desired;
            response.metadata.recursion_available = true;
            response.queries = request.queries.clone();
            match request.queries.first() {
                Some(q) if q.name().to_ascii() == "db.example.test." => {
                    if q.query_type() == RecordType::A {
                        let data = RData::A(A(std::net::Ipv4Addr::new(192, 0, 2, 7)));
                        response
                            .answers
                            .push(Record::from_rdata(q.name().clone(), 60, data));
                    }
                }
                _ => response.metadata.response_code = ResponseCode::NXDomain,
            }
            if let Ok(bytes) = response.to_vec() {
                let _ = socket.send_to(&bytes, peer);
            }
        }
    });
    ready.recv().unwrap();
}

#[test]
fn pods_find_services_and_each_other_by_name() {
    let cluster = start();
    fake_upstream_resolver(&cluster);
    let web = cluster.file("web.yaml", &echo_deployment("web", 2));
    cluster.ok(&["apply", "-f", &web]);
    for (name, manifest) in [
        ("named.yaml", NAMED),
        ("services.yaml", SERVICES),
        ("client.yaml", ALIASED_CLIENT),
    ] {
        let file = cluster.file(name, manifest);
        cluster.ok(&["apply", "-f", &file]);
    }
    cluster.ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=http",
    ]);
    let rollout = cluster.kubectl(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert!(rollout.status.success(), "{}", cluster.server_log());
    cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/client",
        "pod/named",
        "--timeout=60s",
    ]);

    // The pod's resolver and hosts file, as the kubelet writes them.
    let resolv = cluster.ok(&["exec", "client", "--", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 10.43.0.10"), "{resolv}");
    assert!(
        resolv.contains(
            "search default.svc.cluster.local svc.cluster.local cluster.local example.test"
        ),
        "{resolv}"
    );
    assert!(resolv.contains("options ndots:5"), "{resolv}");
    let hosts = cluster.ok(&["exec", "client", "--", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains("192.0.2.80\tfoo.local\tbar.local"),
        "{hosts}"
    );
    let named_ip = cluster.ok(&["get", "pod", "named", "-o", "jsonpath={.status.podIP}"]);
    let named_hosts = cluster.ok(&["exec", "named", "-c", "web", "--", "cat", "/etc/hosts"]);
    assert!(
        named_hosts.contains(&format!(
            "{named_ip}\tdb-0.web-headless.default.svc.cluster.local\tdb-0"
        )),
        "{named_hosts}"
    );

    // The Service variables, and $(VAR) in the command.
    let env = cluster.ok(&["exec", "client", "--", "env"]);
    assert!(env.contains("KUBERNETES_SERVICE_HOST=10.43.0.1\n"), "{env}");
    assert!(
        env.contains("KUBERNETES_PORT=tcp://10.43.0.1:443\n"),
        "{env}"
    );
    assert!(env.contains("KUBERNETES_SERVICE_PORT_HTTPS=443\n"), "{env}");
    let api = cluster.ok(&["exec", "client", "--", "cat", "/tmp/api"]);
    assert_eq!(api.trim(), "10.43.0.1");

    // Within a pod, over localhost: the sidecar reaches its neighbour container.
    let local = cluster.ok(&[
        "exec",
        "named",
        "-c",
        "sidecar",
        "--",
        "timeout",
        "3",
        "wget",
        "-qO-",
        "http://localhost:8080/",
    ]);
    assert_eq!(local.trim(), "db-0");

    // The tutorial's requests, by short and by full name.
    // Each answers with its host name: the named pod's is `db-0`.
    let mut names = pod_names(&cluster, "app=web");
    assert!(names.remove("named"));
    names.insert("db-0".to_owned());
    for url in ["http://web/", "http://web.default.svc.cluster.local/"] {
        let deadline = Instant::now() + Duration::from_secs(60);
        let who = loop {
            let output =
                cluster.kubectl(&["exec", "client", "--", "timeout", "3", "wget", "-qO-", url]);
            if output.status.success() {
                break String::from_utf8_lossy(&output.stdout).trim().to_owned();
            }
            if Instant::now() > deadline {
                let (lookup, _) = nslookup(&cluster, "web.default.svc.cluster.local");
                let table = cluster.exec("nft", &["list", "table", "ip", "cox-proxy"]);
                let dns = cluster.kubectl(&[
                    "get",
                    "endpoints",
                    "kube-dns",
                    "-n",
                    "kube-system",
                    "-o",
                    "yaml",
                ]);
                // The server's own account of the endpoints controller and of failures.
                let log = cluster.server_log();
                let log: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("endpoint") || l.contains("WARN") || l.contains("ERROR"))
                    .collect();
                panic!(
                    "{url}: {}\nnslookup: {lookup}\n{}\nkube-dns endpoints: {}{}\n{}\nserver log:\n{}",
                    String::from_utf8_lossy(&output.stderr),
                    cluster.ok(&["get", "endpointslices", "-A", "-o", "wide"]),
                    String::from_utf8_lossy(&dns.stdout),
                    String::from_utf8_lossy(&dns.stderr),
                    String::from_utf8_lossy(&table.stdout),
                    log[log.len().saturating_sub(60)..].join("\n"),
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        };
        assert!(
            names.contains(&who),
            "{url} answered {who:?}, not one of {names:?}"
        );
    }

    // A headless Service resolves to its pods; a pod it lists by hostname, to that pod.
    let ips = pod_ips(&cluster, "app=web");
    let (text, found) = nslookup(&cluster, "web-headless.default.svc.cluster.local");
    assert!(found, "{text}");
    for ip in &ips {
        assert!(text.contains(ip.as_str()), "{ip} missing from: {text}");
    }
    let (text, found) = nslookup(&cluster, "db-0.web-headless.default.svc.cluster.local");
    assert!(found && text.contains(&named_ip), "{text}");
    // Pod A records by dashed address.
    let dashed = format!("{}.default.pod.cluster.local", named_ip.replace('.', "-"));
    let (text, found) = nslookup(&cluster, &dashed);
    assert!(found && text.contains(&named_ip), "{text}");
    // ExternalName: a CNAME, no proxying; its target resolved by the node's resolver.
    let (text, _) = nslookup(&cluster, "elsewhere.default.svc.cluster.local");
    assert!(text.contains("canonical name = db.example.test"), "{text}");
    assert!(text.contains("192.0.2.7"), "{text}");
    // Names outside the cluster go to the node's resolver, through the search path too.
    // (busybox's nslookup exits 1 here: the AAAA lookups found nothing anywhere.)
    let (text, _) = nslookup(&cluster, "db");
    assert!(
        text.contains("Name:\tdb.example.test\nAddress: 192.0.2.7"),
        "{text}"
    );
    // Names nobody has.
    let (text, found) = nslookup(&cluster, "nothing.default.svc.cluster.local");
    assert!(!found && text.contains("NXDOMAIN"), "{text}");

    // `kubectl port-forward service/web` reaches one of its pods.
    let answered = port_forward_service(&cluster, "service/web", 80);
    assert!(
        names.contains(&answered),
        "port-forward answered {answered:?}"
    );

    // `kubectl cluster-info` lists the DNS Service, and the link it prints is a proxy path.
    let info = cluster.ok(&["cluster-info"]);
    assert!(
        info.contains("CoreDNS")
            && info.contains("/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy"),
        "{info}"
    );
}

/// `kubectl port-forward TARGET :PORT`, then one request through the local port it picked;
/// the body.
fn port_forward_service(cluster: &Cluster, target: &str, port: u16) -> String {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    let mut forward = Command::new("ip")
        .args(["netns", "exec", &cluster.netns, cluster::KUBECTL])
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(["port-forward", target, &format!(":{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = forward.stdout.take().unwrap();
    let (said, heard) = std::sync::mpsc::channel();
    // Reads to the end: kubectl writes a line for every connection, and dies of SIGPIPE if
    // nobody reads them.
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buffer = [0u8; 256];
        let mut told = false;
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&seen).into_owned();
            // "Forwarding from 127.0.0.1:<local> -> <remote>"
            if !told
                && let Some(rest) = text.split("Forwarding from 127.0.0.1:").nth(1)
                && let Some(local) = rest.split(' ').next()
                && rest.contains('\n')
            {
                let _ = said.send(local.to_owned());
                told = true;
            }
        }
    });
    let local = heard.recv_timeout(Duration::from_secs(30));
    let body = local.map(|local| {
        let url = format!("http://127.0.0.1:{local}/");
        let out = cluster.exec("curl", &["-sS", "--max-time", "5", &url]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    });
    let _ = forward.kill();
    let _ = forward.wait();
    body.unwrap_or_else(|_| panic!("kubectl port-forward {target} never listened"))
}

/// A web server answering `/cgi-bin/ip` with the client address it sees.
const SOURCE: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: source}
spec:
  replicas: 1
  selector: {matchLabels: {app: source}}
  template:
    metadata: {labels: {app: source}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: busybox:1.36
        command:
        - sh
        - -c
        - |
          mkdir -p /www/cgi-bin
          printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho $REMOTE_ADDR\n' > /www/cgi-bin/ip
          chmod +x /www/cgi-bin/ip
          exec httpd -f -p 8080 -h /www
        ports: [{containerPort: 8080}]
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 1
"#;

#[test]
fn external_traffic_policy_local_keeps_the_clients_address() {
    let cluster = start();
    let source = cluster.file("source.yaml", SOURCE);
    cluster.ok(&["apply", "-f", &source]);
    cluster.ok(&[
        "create",
        "service",
        "nodeport",
        "source",
        "--tcp=80:8080",
        "--node-port=31001",
    ]);
    let rollout = cluster.kubectl(&["rollout", "status", "deployment/source", "--timeout=90s"]);
    assert!(rollout.status.success(), "{}", cluster.server_log());
    // From another host (192.0.2.254) to the node's address.
    let seen = || {
        let out = cluster.exec_outside(
            "curl",
            &[
                "-sf",
                "--max-time",
                "3",
                "http://192.0.2.1:31001/cgi-bin/ip",
            ],
        );
        // httpd listens on IPv6 too, so it writes IPv4 clients as `[::ffff:a.b.c.d]`.
        let text = String::from_utf8_lossy(&out.stdout);
        let text = text.trim();
        text.strip_prefix("[::ffff:")
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text)
            .to_owned()
    };
    // Cluster: masqueraded, the pod sees the node's address on the pod network.
    let mut cluster_policy = String::new();
    wait_until(&cluster, "the node port", Duration::from_secs(30), || {
        cluster_policy = seen();
        !cluster_policy.is_empty()
    });
    assert_eq!(cluster_policy, "10.42.0.1");
    // Local: the client's own address.
    cluster.ok(&[
        "patch",
        "service",
        "source",
        "-p",
        r#"{"spec":{"externalTrafficPolicy":"Local"}}"#,
    ]);
    wait_until(
        &cluster,
        "the client's address",
        Duration::from_secs(30),
        || seen() == "192.0.2.254",
    );
}

#[test]
fn load_balancers_take_addresses_from_a_configured_pool() {
    let cluster = start_with(&["--servicelb-address-pool", "198.51.100.10-198.51.100.11"]);
    let web = cluster.file("web.yaml", &echo_deployment("pool", 1));
    cluster.ok(&["apply", "-f", &web]);
    let rollout = cluster.kubectl(&["rollout", "status", "deployment/pool", "--timeout=90s"]);
    assert!(rollout.status.success(), "{}", cluster.server_log());
    let ingress = |name: &str| {
        cluster.ok(&[
            "get",
            "service",
            name,
            "-o",
            "jsonpath={.status.loadBalancer.ingress[*].ip}",
        ])
    };
    for (name, port) in [("first", "8081"), ("second", "8082"), ("third", "8083")] {
        cluster.ok(&[
            "expose",
            "deployment",
            "pool",
            "--name",
            name,
            "--type=LoadBalancer",
            &format!("--port={port}"),
            "--target-port=8080",
        ]);
        // One at a time, so that which gets which address is known.
        if name != "third" {
            wait_until(&cluster, "an address", Duration::from_secs(20), || {
                !ingress(name).is_empty()
            });
        }
    }
    assert_eq!(ingress("first"), "198.51.100.10");
    assert_eq!(ingress("second"), "198.51.100.11");
    // The pool is used up: the third waits, and says why.
    wait_until(
        &cluster,
        "the AllocationFailed event",
        Duration::from_secs(20),
        || {
            !cluster
                .ok(&[
                    "get",
                    "events",
                    "--field-selector",
                    "reason=AllocationFailed,involvedObject.name=third",
                    "-o",
                    "name",
                ])
                .trim()
                .is_empty()
        },
    );
    assert_eq!(ingress("third"), "");
    // Freed by the first: the third takes it.
    cluster.ok(&["delete", "service", "first"]);
    wait_until(
        &cluster,
        "the freed address",
        Duration::from_secs(20),
        || ingress("third") == "198.51.100.10",
    );
    // The outside reaches it through the node.
    let route = cluster.exec_outside(
        "ip",
        &["route", "add", "198.51.100.0/24", "via", "192.0.2.1"],
    );
    assert!(route.status.success());
    let pod = pod_names(&cluster, "app=pool").into_iter().next().unwrap();
    wait_until(
        &cluster,
        "the pool address to answer",
        Duration::from_secs(20),
        || {
            let out = cluster.exec_outside(
                "curl",
                &["-sf", "--max-time", "2", "http://198.51.100.10:8083/"],
            );
            String::from_utf8_lossy(&out.stdout).trim() == pod
        },
    );
}
