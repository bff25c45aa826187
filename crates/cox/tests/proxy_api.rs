//! `services/<name>/proxy` and `pods/<name>/proxy` through the real kubectl (and curl,
//! `openssl s_client`, `kubectl proxy`). Most of it runs against a control-plane-only
//! `cox server`, where no pods run, so the backends are the test's own, inside the cluster's
//! network namespace at an address added to its loopback device: an HTTP server on a thread of
//! this test, and `openssl s_server` for HTTPS. A Pod object whose status claims that address
//! stands for the pod; selector-less Services with hand-made EndpointSlices or Endpoints point
//! at it. The last test proxies to a real nginx pod on a server with its node agent.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod cluster;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::Cluster;

/// The pod's address: global unicast (upstream refuses to proxy to loopback or link-local pod
/// IPs), from TEST-NET-1, so it is nobody's.
const POD_IP: &str = "192.0.2.10";
const HTTP_PORT: u16 = 8080;
const HTTPS_PORT: u16 = 8443;

const SERVICE: &str = "/api/v1/namespaces/default/services";
const POD: &str = "/api/v1/namespaces/default/pods";

/// A request as the backend received it.
struct Received {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// What the echo answer says about the request.
    fn echo(&self) -> String {
        let mut text = format!("method: {}\ntarget: {}\n", self.method, self.target);
        for name in [
            "host",
            "x-forwarded-for",
            "x-forwarded-uri",
            "authorization",
            "impersonate-user",
        ] {
            if let Some(value) = self.header(name) {
                text.push_str(&format!("{name}: {value}\n"));
            }
        }
        text.push_str(&format!("body: {}\n", String::from_utf8_lossy(&self.body)));
        text
    }
}

fn read_request(reader: &mut impl BufRead) -> std::io::Result<Received> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_owned();
    let target = words.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let mut received = Received {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if let Some(length) = received.header("content-length") {
        let mut body = vec![0; length.parse().unwrap_or(0)];
        reader.read_exact(&mut body)?;
        received.body = body;
    } else if received.header("transfer-encoding") == Some("chunked") {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                let mut end = String::new();
                reader.read_line(&mut end)?;
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            received.body.extend_from_slice(&chunk[..size]);
        }
    }
    Ok(received)
}

/// One connection to the HTTP backend: `/ws` upgrades and echoes a line, `/redirect` and
/// `/redirect-absolute` redirect, `/slow` sends a first chunk and the rest only once the
/// test releases it; anything else is echoed as text.
fn serve_one(stream: TcpStream, release: &Mutex<Receiver<()>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let request = read_request(&mut reader)?;
    let path = request.target.split('?').next().unwrap_or("").to_owned();
    let local = writer.local_addr()?;
    match path.as_str() {
        "/ws" if request.header("upgrade") == Some("echo") => {
            writer.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
            )?;
            let mut line = String::new();
            reader.read_line(&mut line)?;
            writer.write_all(format!("echo: {line}").as_bytes())?;
        }
        "/redirect" | "/redirect-absolute" => {
            let location = match path.as_str() {
                "/redirect" => "/landed".to_owned(),
                _ => format!("http://{local}/abs"),
            };
            writer.write_all(
                format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )?;
        }
        "/slow" => {
            writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nfirst\n\r\n")?;
            writer.flush()?;
            let _ = release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30));
            writer.write_all(b"7\r\nsecond\n\r\n0\r\n\r\n")?;
        }
        _ => {
            let body = request.echo();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Backend: echo\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
                body.len()
            );
            writer.write_all(head.as_bytes())?;
            if request.method != "HEAD" {
                writer.write_all(body.as_bytes())?;
            }
        }
    }
    writer.flush()
}

/// Adds the pod's address to the namespace and starts the HTTP backend there; the sender
/// releases `/slow` answers.
fn start_backend(cluster: &Cluster) -> Sender<()> {
    let added = cluster.exec("ip", &["addr", "add", &format!("{POD_IP}/32"), "dev", "lo"]);
    assert!(added.status.success(), "{added:?}");
    let (listening, ready) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let netns = cluster.netns.clone();
    std::thread::spawn(move || {
        cluster::enter_netns(&netns);
        let listener = TcpListener::bind((POD_IP, HTTP_PORT)).unwrap();
        listening.send(()).unwrap();
        for stream in listener.incoming().flatten() {
            let released = released.clone();
            std::thread::spawn(move || {
                let _ = serve_one(stream, &released);
            });
        }
    });
    ready
        .recv_timeout(Duration::from_secs(10))
        .expect("the backend listens");
    release
}

/// The Pod `web-0` at the backend's address, a selector-less Service `web` (ports `http` 80 →
/// 8080, `https` 443 → 8443) and its EndpointSlice.
fn create_backend_objects(cluster: &Cluster) {
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: web-0}}
spec:
  containers:
  - name: web
    image: nginx
    ports: [{{containerPort: {HTTP_PORT}, name: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  ports:
  - {{name: http, port: 80, targetPort: {HTTP_PORT}}}
  - {{name: https, port: 443, targetPort: {HTTPS_PORT}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abcde
  labels: {{kubernetes.io/service-name: web}}
addressType: IPv4
ports:
- {{name: http, port: {HTTP_PORT}, protocol: TCP}}
- {{name: https, port: {HTTPS_PORT}, protocol: TCP}}
endpoints:
- addresses: ["{POD_IP}"]
  conditions: {{ready: true}}
  targetRef: {{kind: Pod, namespace: default, name: web-0}}
- addresses: ["192.0.2.99"]
  conditions: {{ready: false}}
  targetRef: {{kind: Pod, namespace: default, name: web-1}}
"#
    );
    cluster.ok(&["apply", "-f", &cluster.file("backend.yaml", &manifest)]);
    cluster.ok(&[
        "patch",
        "pod",
        "web-0",
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(r#"{{"status":{{"podIP":"{POD_IP}","podIPs":[{{"ip":"{POD_IP}"}}]}}}}"#),
    ]);
}

fn raw(cluster: &Cluster, path: &str) -> String {
    cluster.ok(&["get", "--raw", path])
}

fn raw_fails(cluster: &Cluster, path: &str) -> String {
    cluster.fails(&["get", "--raw", path])
}

fn assert_has(text: &str, wanted: &str) {
    assert!(text.contains(wanted), "{wanted:?} not in:\n{text}");
}

#[test]
fn kubectl_reaches_services_and_pods_through_their_proxy_subresources() {
    let cluster = Cluster::start();
    let _release = start_backend(&cluster);
    create_backend_objects(&cluster);

    // Discovery lists both subresources with upstream's verbs.
    let discovery: serde_json::Value = serde_json::from_str(&raw(&cluster, "/api/v1")).unwrap();
    for name in ["services/proxy", "pods/proxy"] {
        let entry = discovery["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not in discovery"));
        assert_eq!(
            entry["verbs"],
            serde_json::json!(["create", "delete", "get", "patch", "update"])
        );
    }

    // A Service by port name, by port number, with the scheme; the path and query pass on.
    for name in ["web:http", "web:80", "http:web:http"] {
        let echoed = raw(
            &cluster,
            &format!("{SERVICE}/{name}/proxy/some/path?x=1&y=a+b"),
        );
        assert_has(&echoed, "method: GET\ntarget: /some/path?x=1&y=a+b\n");
        assert_has(
            &echoed,
            &format!("x-forwarded-uri: {SERVICE}/{name}/proxy/some/path\n"),
        );
        assert_has(&echoed, "x-forwarded-for: 127.0.0.1\n");
    }
    // A Pod by port number, and by default at its first container port.
    for name in ["web-0:8080", "web-0", "http:web-0:8080"] {
        let echoed = raw(&cluster, &format!("{POD}/{name}/proxy/p/"));
        assert_has(&echoed, "method: GET\ntarget: /p/\n");
    }
    // The root, and paths cleaned as upstream cleans them.
    assert_has(
        &raw(&cluster, &format!("{SERVICE}/web:http/proxy/")),
        "target: /\n",
    );
    assert_has(
        &cluster.curl_admin(
            &["--path-as-is"],
            &format!("{SERVICE}/web:http/proxy/a//b/../../../c"),
        ),
        "target: /c\n",
    );

    // Every method, with its body.
    let body = cluster.file("body.txt", "hello backend");
    let posted = cluster.ok(&[
        "create",
        "--raw",
        &format!("{POD}/web-0:8080/proxy/things"),
        "-f",
        &body,
    ]);
    assert_has(&posted, "method: POST\ntarget: /things\n");
    assert_has(&posted, "body: hello backend\n");
    let replaced = cluster.ok(&[
        "replace",
        "--raw",
        &format!("{SERVICE}/web:http/proxy/things/1"),
        "-f",
        &body,
    ]);
    assert_has(&replaced, "method: PUT\ntarget: /things/1\n");
    assert_has(&replaced, "body: hello backend\n");
    let deleted = cluster.ok(&[
        "delete",
        "--raw",
        &format!("{SERVICE}/web:http/proxy/things/1"),
    ]);
    assert_has(&deleted, "method: DELETE\n");
    for method in ["PATCH", "OPTIONS"] {
        let echoed = cluster.curl_admin(
            &["-X", method, "--data", "x=1"],
            &format!("{POD}/web-0/proxy/m"),
        );
        assert_has(&echoed, &format!("method: {method}\ntarget: /m\n"));
        assert_has(&echoed, "body: x=1\n");
    }
    let head = cluster
        .curl_admin(&["-I"], &format!("{POD}/web-0/proxy/h"))
        .to_ascii_lowercase();
    assert_has(&head, "x-backend: echo");

    // The backend's headers come back, but not its CORS answers; the client's credentials
    // do not reach the backend.
    let answer = cluster
        .curl_admin(
            &[
                "-i",
                "-H",
                "Authorization: Bearer not-for-the-backend",
                // Acting as another member of system:masters, who may read the Service.
                "-H",
                "Impersonate-User: nobody",
                "-H",
                "Impersonate-Group: system:masters",
            ],
            &format!("{SERVICE}/web:http/proxy/headers"),
        )
        .to_ascii_lowercase();
    assert_has(&answer, "x-backend: echo");
    assert!(!answer.contains("access-control-allow-origin"), "{answer}");
    assert!(!answer.contains("authorization:"), "{answer}");
    assert!(!answer.contains("impersonate-user:"), "{answer}");
    assert!(!answer.contains("impersonate-group:"), "{answer}");

    // Redirects stay under the proxy path; a proxy path without its slash gets one.
    let redirected = cluster
        .curl_admin(&["-i"], &format!("{SERVICE}/web:http/proxy/redirect"))
        .to_ascii_lowercase();
    assert_has(&redirected, " 302");
    assert_has(
        &redirected,
        &format!("location: {SERVICE}/web:http/proxy/landed"),
    );
    let absolute = cluster
        .curl_admin(&["-i"], &format!("{POD}/web-0/proxy/redirect-absolute"))
        .to_ascii_lowercase();
    assert_has(&absolute, &format!("location: {POD}/web-0/proxy/abs"));
    let slashless = cluster
        .curl_admin(&["-i"], &format!("{SERVICE}/web:http/proxy?a=b"))
        .to_ascii_lowercase();
    assert_has(&slashless, " 301");
    assert_has(
        &slashless,
        &format!("location: {SERVICE}/web:http/proxy/?a=b"),
    );

    // An Endpoints object serves when there is no EndpointSlice.
    let legacy = format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: legacy}}
spec:
  ports: [{{port: 80, targetPort: {HTTP_PORT}}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: legacy}}
subsets:
- addresses: [{{ip: "{POD_IP}", targetRef: {{kind: Pod, namespace: default, name: web-0}}}}]
  ports: [{{port: {HTTP_PORT}}}]
"#
    );
    cluster.ok(&["apply", "-f", &cluster.file("legacy.yaml", &legacy)]);
    assert_has(
        &raw(&cluster, &format!("{SERVICE}/legacy/proxy/old")),
        "target: /old\n",
    );

    // Errors, as upstream words them.
    let empty = r#"apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: stray}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: stray-abcde
  labels: {kubernetes.io/service-name: stray}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: ["192.0.2.10"]
---
apiVersion: v1
kind: Pod
metadata: {name: no-ip}
spec:
  containers: [{name: c, image: nginx}]
"#;
    cluster.ok(&["apply", "-f", &cluster.file("errors.yaml", empty)]);
    for (path, wanted) in [
        (
            format!("{SERVICE}/missing/proxy/"),
            r#"Error from server (NotFound): services "missing" not found"#.to_owned(),
        ),
        (
            format!("{SERVICE}/empty:http/proxy/"),
            r#"Error from server (ServiceUnavailable): no endpoints available for service "empty""#
                .to_owned(),
        ),
        // An address that is not a pod's is never proxied to.
        (
            format!("{SERVICE}/stray:http/proxy/"),
            r#"Error from server (ServiceUnavailable): no endpoints available for service "stray:http""#
                .to_owned(),
        ),
        (
            format!("{SERVICE}/web:81/proxy/"),
            r#"Error from server (ServiceUnavailable): no service port 81 found for service "web""#
                .to_owned(),
        ),
        (
            format!("{SERVICE}/ftp:web:http/proxy/"),
            r#"Error from server (BadRequest): invalid service request "ftp:web:http""#.to_owned(),
        ),
        (
            format!("{POD}/missing/proxy/"),
            r#"Error from server (NotFound): pods "missing" not found"#.to_owned(),
        ),
        (
            format!("{POD}/no-ip/proxy/"),
            "Error from server (BadRequest): address not allowed".to_owned(),
        ),
        (
            format!("{POD}/web-0:9999/proxy/"),
            format!(
                "Error from server (ServiceUnavailable): error trying to reach service: dial tcp {POD_IP}:9999: connect:"
            ),
        ),
    ] {
        assert_has(&raw_fails(&cluster, &path), &wanted);
    }
}

/// Reads a child's standard output on a thread, line by line.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Waits for a line containing `wanted`, returning it; fails after `limit`.
fn wait_for_line(lines: &Receiver<String>, wanted: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(wanted) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line with {wanted:?} in {limit:?}; saw {seen:?}"),
        }
    }
}

/// A process in the cluster's network namespace, killed when dropped.
struct InNetns(Child);

impl InNetns {
    fn spawn(cluster: &Cluster, program: &str, args: &[&str], dir: &std::path::Path) -> Self {
        let child = Command::new("ip")
            .args(["netns", "exec", &cluster.netns, program])
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        Self(child)
    }
}

impl Drop for InNetns {
    fn drop(&mut self) {
        // `ip netns exec` execs the program: this is its pid.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_proxy_streams_upgrades_speaks_https_and_serves_kubectl_proxy() {
    let cluster = Cluster::start();
    let release = start_backend(&cluster);
    create_backend_objects(&cluster);
    let dir = cluster.dir.path().to_owned();

    // HTTPS to a backend with a self-signed certificate, which the proxy does not verify.
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=backend",
            "-keyout",
            "backend.key",
            "-out",
            "backend.crt",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    std::fs::write(dir.join("hello.txt"), "hello over tls\n").unwrap();
    let _tls_backend = InNetns::spawn(
        &cluster,
        "openssl",
        &[
            "s_server",
            "-accept",
            &format!("{POD_IP}:{HTTPS_PORT}"),
            "-cert",
            "backend.crt",
            "-key",
            "backend.key",
            "-WWW",
            "-quiet",
        ],
        &dir,
    );
    for path in [
        format!("{SERVICE}/https:web:https/proxy/hello.txt"),
        format!("{SERVICE}/https:web:443/proxy/hello.txt"),
        format!("{POD}/https:web-0:{HTTPS_PORT}/proxy/hello.txt"),
    ] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let output = cluster.kubectl(&["get", "--raw", &path]);
            if output.status.success() {
                assert_eq!(String::from_utf8_lossy(&output.stdout), "hello over tls\n");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // The answer streams: its first part arrives while the backend still holds the rest.
    let tls = cluster.data_dir().join("server/tls");
    let admin = |file: &str| tls.join(file).display().to_string();
    let mut slow = InNetns::spawn(
        &cluster,
        "curl",
        &[
            "-sN",
            "--cert",
            &admin("admin.crt"),
            "--key",
            &admin("admin.key"),
            "--cacert",
            &admin("ca.crt"),
            &format!("https://127.0.0.1:6443{SERVICE}/web:http/proxy/slow"),
        ],
        &dir,
    );
    let lines = lines_of(&mut slow.0);
    wait_for_line(&lines, "first", Duration::from_secs(20));
    release.send(()).unwrap();
    wait_for_line(&lines, "second", Duration::from_secs(20));

    // An upgrade request switches protocols through the proxy, and the bytes flow both ways.
    let mut upgrade = InNetns::spawn(
        &cluster,
        "openssl",
        &[
            "s_client",
            "-quiet",
            "-connect",
            "127.0.0.1:6443",
            "-cert",
            &admin("admin.crt"),
            "-key",
            &admin("admin.key"),
            "-CAfile",
            &admin("ca.crt"),
        ],
        &dir,
    );
    let lines = lines_of(&mut upgrade.0);
    let mut stdin = upgrade.0.stdin.take().unwrap();
    write!(
        stdin,
        "GET {POD}/web-0/proxy/ws HTTP/1.1\r\nHost: 127.0.0.1:6443\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"
    )
    .unwrap();
    stdin.flush().unwrap();
    wait_for_line(&lines, "101 Switching Protocols", Duration::from_secs(20));
    stdin.write_all(b"ping through the proxy\n").unwrap();
    stdin.flush().unwrap();
    wait_for_line(
        &lines,
        "echo: ping through the proxy",
        Duration::from_secs(20),
    );

    // `kubectl proxy` in front of the API server: the path goes through verbatim.
    let mut kubectl_proxy = InNetns::spawn(
        &cluster,
        "kubectl",
        &[
            "--kubeconfig",
            &cluster.kubeconfig().display().to_string(),
            "proxy",
            "--port=0",
        ],
        &dir,
    );
    let lines = lines_of(&mut kubectl_proxy.0);
    let serving = wait_for_line(&lines, "Starting to serve on", Duration::from_secs(20));
    let address = serving.rsplit(' ').next().unwrap().trim().to_owned();
    let through = cluster.exec(
        "curl",
        &[
            "-s",
            &format!("http://{address}{SERVICE}/web:http/proxy/via-kubectl-proxy?q=1"),
        ],
    );
    let echoed = String::from_utf8_lossy(&through.stdout);
    assert_has(&echoed, "method: GET\ntarget: /via-kubectl-proxy?q=1\n");
    assert_has(
        &echoed,
        &format!("x-forwarded-uri: {SERVICE}/web:http/proxy/via-kubectl-proxy\n"),
    );
}

fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Real containers: nginx in a pod of a server with its node agent, through the pod's proxy
/// and a Service's.
#[test]
fn a_running_nginx_answers_through_the_pod_and_service_proxies() {
    let cluster = Cluster::start_with_agent();
    let jsonpath = |object: &str, path: &str| {
        let output = cluster.kubectl(&["get", object, "-o", &format!("jsonpath={path}")]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    wait_until("the node to be Ready", Duration::from_secs(30), || {
        jsonpath(
            "node/node-1",
            "{.status.conditions[?(@.type=='Ready')].status}",
        ) == "True"
    });
    cluster.ok(&["run", "web", "--image=nginx:1.22-cox", "--port=80"]);
    let ready = cluster.kubectl(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"]);
    assert!(ready.status.success(), "{}", cluster.server_log());
    let pod_ip = jsonpath("pod/web", "{.status.podIP}");

    assert_has(
        &raw(&cluster, &format!("{POD}/web/proxy/")),
        "Welcome to nginx!",
    );
    // Megabytes, byte for byte; and nginx's own 404 passes through.
    let made = cluster.ok(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "head -c 3000000 /dev/urandom > /usr/share/nginx/html/big && sha256sum /usr/share/nginx/html/big",
    ]);
    let digest = made.split_whitespace().next().unwrap().to_owned();
    let tls = cluster.data_dir().join("server/tls");
    let curl = format!(
        "curl -sS --cert {} --key {} --cacert {} https://127.0.0.1:6443",
        tls.join("admin.crt").display(),
        tls.join("admin.key").display(),
        tls.join("ca.crt").display()
    );
    let fetched = cluster.exec(
        "sh",
        &["-c", &format!("{curl}{POD}/web:80/proxy/big | sha256sum")],
    );
    assert_eq!(
        String::from_utf8_lossy(&fetched.stdout)
            .split_whitespace()
            .next(),
        Some(digest.as_str())
    );
    let missing = cluster.exec(
        "sh",
        &[
            "-c",
            &format!("{curl}{POD}/web/proxy/nope -o /dev/null -w '%{{http_code}}'"),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&missing.stdout), "404");

    // No controller keeps EndpointSlices yet: this one is made by hand, for the pod.
    let service = format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  ports: [{{name: http, port: 8000, targetPort: 80}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abcde
  labels: {{kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{{name: http, port: 80, protocol: TCP}}]
endpoints:
- addresses: ["{pod_ip}"]
  targetRef: {{kind: Pod, namespace: default, name: web}}
"#
    );
    cluster.ok(&["apply", "-f", &cluster.file("service.yaml", &service)]);
    for name in ["web:http", "web:8000"] {
        assert_has(
            &raw(&cluster, &format!("{SERVICE}/{name}/proxy/")),
            "Welcome to nginx!",
        );
    }
}
