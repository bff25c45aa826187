//! `kubectl logs`, `exec`, `attach` and `port-forward` through the API server: the real
//! kubectl against `cox server` with its node agent, the API server proxying to the kubelet's
//! HTTPS API (port 10250 in the cluster's network namespace), the kubelet to the runtime.
//! kubectl 1.33 speaks WebSocket (v5 channels for exec and attach, SPDY tunnelled in a
//! WebSocket for port-forward); kubectl 1.28 speaks SPDY for both.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod cluster;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cluster::{Cluster, KUBECTL, VERSIONED_KUBECTL_DIR, wait_until};

fn jsonpath(cluster: &Cluster, object: &str, path: &str) -> String {
    let output = cluster.kubectl(&["get", object, "-o", &format!("jsonpath={path}")]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A kubectl in the cluster's network namespace, with `input` on its standard input, killed
/// if it has not finished within `limit`.
fn kubectl_with_input(
    cluster: &Cluster,
    kubectl: &Path,
    args: &[&str],
    input: &[u8],
    limit: Duration,
) -> Output {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &cluster.netns])
        .arg(kubectl)
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .arg("--cache-dir")
        .arg(cluster.dir.path().join("cache"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = wait_with_deadline(child, limit, &format!("kubectl {args:?}"));
    let _ = writer.join();
    output
}

/// Waits for a child, killing it (and failing) after `limit`.
fn wait_with_deadline(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("{what} did not finish in {limit:?}:\n{}", text(&output));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kubectl_version(minor: u32) -> PathBuf {
    let path = Path::new(VERSIONED_KUBECTL_DIR).join(format!("kubectl.1.{minor}"));
    assert!(path.exists(), "{} is missing", path.display());
    path
}

fn start() -> Cluster {
    let cluster = Cluster::start_with_agent();
    wait_until("the node to be Ready", Duration::from_secs(30), || {
        jsonpath(
            &cluster,
            "node/node-1",
            "{.status.conditions[?(@.type=='Ready')].status}",
        ) == "True"
    });
    cluster
}

/// The digest of a 3 MB file of random bytes put where nginx serves it (`/big`).
fn add_big_file(cluster: &Cluster, pod: &str) -> String {
    let made = cluster.ok(&[
        "exec",
        pod,
        "--",
        "sh",
        "-c",
        "head -c 3000000 /dev/urandom > /usr/share/nginx/html/big && sha256sum /usr/share/nginx/html/big",
    ]);
    made.split_whitespace().next().unwrap().to_owned()
}

fn run_nginx(cluster: &Cluster, name: &str) {
    cluster.ok(&["run", name, "--image=nginx:1.22-cox"]);
    let ready = cluster.kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("pod/{name}"),
        "--timeout=60s",
    ]);
    assert!(
        ready.status.success(),
        "{name} never Ready: {}\n{}",
        text(&ready),
        cluster.server_log()
    );
}

fn wait_for_phase(cluster: &Cluster, pod: &str, phase: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while jsonpath(cluster, &format!("pod/{pod}"), "{.status.phase}") != phase {
        assert!(
            Instant::now() < deadline,
            "{pod} never {phase}: {}\n{}",
            cluster.ok(&["get", "pod", pod, "-o", "yaml"]),
            cluster.server_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Exec: a command's output, its exit code, and standard input.
fn check_exec(cluster: &Cluster, kubectl: &Path, pod: &str) {
    let no_input = Duration::from_secs(30);
    let hostname = kubectl_with_input(
        cluster,
        kubectl,
        &["exec", pod, "--", "cat", "/etc/hostname"],
        b"",
        no_input,
    );
    assert!(hostname.status.success(), "{}", text(&hostname));
    assert_eq!(String::from_utf8_lossy(&hostname.stdout).trim(), pod);

    let failing = kubectl_with_input(
        cluster,
        kubectl,
        &[
            "exec",
            pod,
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        b"",
        no_input,
    );
    assert_eq!(failing.status.code(), Some(3), "{}", text(&failing));
    assert_eq!(String::from_utf8_lossy(&failing.stdout), "out\n");
    assert!(
        String::from_utf8_lossy(&failing.stderr).contains("err"),
        "{}",
        text(&failing)
    );

    let input = b"first line\nsecond line\n";
    let echoed = kubectl_with_input(
        cluster,
        kubectl,
        &["exec", "-i", pod, "--", "sh", "-c", "cat; echo done"],
        input,
        no_input,
    );
    assert!(echoed.status.success(), "{}", text(&echoed));
    assert_eq!(
        String::from_utf8_lossy(&echoed.stdout),
        "first line\nsecond line\ndone\n"
    );

    let missing = kubectl_with_input(
        cluster,
        kubectl,
        &["exec", pod, "-c", "nope", "--", "true"],
        b"",
        no_input,
    );
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("container nope is not valid for pod"),
        "{}",
        text(&missing)
    );
}

/// Exec output of megabytes arrives byte for byte.
fn check_exec_bulk(cluster: &Cluster, kubectl: &Path, pod: &str, big: &str) {
    let command = format!(
        "ip netns exec {} {} --kubeconfig {} exec {pod} -- cat /usr/share/nginx/html/big | sha256sum",
        cluster.netns,
        kubectl.display(),
        cluster.kubeconfig().display()
    );
    let output = Command::new("sh").args(["-c", &command]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .next(),
        Some(big),
        "{}",
        text(&output)
    );
}

/// `attach -i`: input to a container's own standard input, its output back, until it exits.
fn check_attach(cluster: &Cluster, kubectl: &Path, pod: &str) {
    let manifest = cluster.file(
        &format!("{pod}.yaml"),
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: {pod}}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox:1.36
    stdin: true
    stdinOnce: true
    command: ["sh", "-c", "read x; echo got=$x"]
"#
        ),
    );
    cluster.ok(&["apply", "-f", &manifest]);
    wait_for_phase(cluster, pod, "Running");
    let attached = kubectl_with_input(
        cluster,
        kubectl,
        &["attach", "-i", pod],
        b"hello\n",
        Duration::from_secs(30),
    );
    assert!(
        String::from_utf8_lossy(&attached.stdout).contains("got=hello"),
        "{}\n{}",
        text(&attached),
        cluster.server_log()
    );
    wait_for_phase(cluster, pod, "Succeeded");
}

/// `exec -it`: a terminal in the container, its input typed on a terminal of ours (`script`
/// gives kubectl one, sized 40x100: the container's terminal gets that size).
fn check_terminal(cluster: &Cluster, kubectl: &Path, pod: &str) {
    let command = format!(
        "stty rows 40 cols 100; ip netns exec {} {} --kubeconfig {} exec -it {pod} -- sh -c 'tty; stty size; read x; echo got=$x'",
        cluster.netns,
        kubectl.display(),
        cluster.kubeconfig().display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Type once the shell is up (it printed its terminal); the terminal turns the carriage
    // return into a newline.
    let mut stdout = child.stdout.take().unwrap();
    let (shown, screen_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 || shown.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&screen).contains("/dev/pts/") {
        match screen_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(bytes) => screen.extend_from_slice(&bytes),
            Err(_) => assert!(
                Instant::now() < deadline,
                "no terminal: {}",
                String::from_utf8_lossy(&screen)
            ),
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello\r").unwrap();
    let mut output = wait_with_deadline(child, Duration::from_secs(30), "kubectl exec -it");
    drop(stdin);
    while let Ok(bytes) = screen_rx.recv_timeout(Duration::from_secs(1)) {
        screen.extend_from_slice(&bytes);
    }
    output.stdout = screen;
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success()
            && screen.contains("/dev/pts/")
            && screen.contains("40 100")
            && screen.contains("got=hello"),
        "{}",
        text(&output)
    );
}

/// Port-forward: two connections in turn through one `kubectl port-forward`, each served by
/// nginx in the pod.
fn check_port_forward(cluster: &Cluster, kubectl: &Path, pod: &str, local: u16, big: &str) {
    let mut forward = start_port_forward(cluster, kubectl, pod, local, 80);
    // Megabytes, byte for byte.
    let fetched = cluster.exec(
        "sh",
        &[
            "-c",
            &format!("curl -sS --max-time 30 http://127.0.0.1:{local}/big | sha256sum"),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&fetched.stdout)
            .split_whitespace()
            .next(),
        Some(big),
        "{}",
        text(&fetched)
    );
    for attempt in 0..2 {
        let page = cluster.exec(
            "curl",
            &[
                "-sS",
                "--max-time",
                "10",
                &format!("http://127.0.0.1:{local}/"),
            ],
        );
        assert!(
            String::from_utf8_lossy(&page.stdout).contains("Welcome to nginx!"),
            "connection {attempt}: {}\n{}",
            text(&page),
            cluster.server_log()
        );
    }
    assert!(
        forward.try_wait().unwrap().is_none(),
        "port-forward exited after serving"
    );
    let _ = forward.kill();
    let _ = forward.wait();
}

/// Port-forward to a port nothing listens on: the connection fails and kubectl says why.
fn check_port_forward_refused(cluster: &Cluster, kubectl: &Path, pod: &str, local: u16) {
    let mut forward = start_port_forward(cluster, kubectl, pod, local, 81);
    let page = cluster.exec(
        "curl",
        &[
            "-sS",
            "--max-time",
            "10",
            &format!("http://127.0.0.1:{local}/"),
        ],
    );
    assert!(!page.status.success(), "{}", text(&page));
    let _ = forward.kill();
    let output = forward.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("error forwarding port 81"),
        "{}",
        text(&output)
    );
}

/// `kubectl port-forward pod/<pod> <local>:<remote>`, once it listens.
fn start_port_forward(
    cluster: &Cluster,
    kubectl: &Path,
    pod: &str,
    local: u16,
    remote: u16,
) -> Child {
    let mapping = format!("{local}:{remote}");
    let mut forward = Command::new("ip")
        .args(["netns", "exec", &cluster.netns])
        .arg(kubectl)
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .arg("--cache-dir")
        .arg(cluster.dir.path().join("cache"))
        .args(["port-forward", &format!("pod/{pod}"), &mapping])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // kubectl prints "Forwarding from 127.0.0.1:<local> -> 80" once it listens.
    let mut stdout = forward.stdout.take().unwrap();
    let (said, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buffer = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buffer[..n]);
            if String::from_utf8_lossy(&seen).contains("Forwarding from") {
                let _ = said.send(());
            }
        }
    });
    if heard.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = forward.kill();
        let output = forward.wait_with_output().unwrap();
        panic!("port-forward never listened:\n{}", text(&output));
    }
    forward
}

#[test]
fn kubectl_logs_prints_tails_timestamps_and_follows_until_the_container_exits() {
    let cluster = start();
    cluster.ok(&[
        "run",
        "printer",
        "--image=busybox:1.36",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line $i; done; sleep 1; echo oops >&2",
    ]);
    wait_for_phase(&cluster, "printer", "Succeeded");
    let all = cluster.ok(&["logs", "printer"]);
    assert_eq!(all, "line 1\nline 2\nline 3\nline 4\nline 5\noops\n");
    assert_eq!(
        cluster.ok(&["logs", "printer", "--tail=2"]),
        "line 5\noops\n"
    );
    assert_eq!(
        cluster.ok(&["logs", "printer", "-c", "printer", "--limit-bytes=9"]),
        "line 1\nli"
    );
    let stamped = cluster.ok(&["logs", "printer", "--timestamps", "--tail=1"]);
    let (stamp, line) = stamped.trim_end().split_once(' ').unwrap();
    assert_eq!(line, "oops");
    assert!(
        stamp.len() >= 20 && stamp.ends_with('Z') && stamp.contains('T'),
        "{stamped}"
    );
    // The same through the raw API, and upstream's errors.
    assert_eq!(
        cluster.ok(&[
            "get",
            "--raw",
            "/api/v1/namespaces/default/pods/printer/log?tailLines=1"
        ]),
        "oops\n"
    );
    let negative = cluster.fails(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/printer/log?tailLines=-1",
    ]);
    assert!(
        negative.contains("must be greater than or equal to 0"),
        "{negative}"
    );
    assert_eq!(cluster.ok(&["logs", "printer", "--since=1h"]), all);
    let previous = cluster.fails(&["logs", "printer", "--previous"]);
    assert!(
        previous.contains("previous terminated container \"printer\" in pod \"printer\" not found"),
        "{previous}"
    );

    // Two containers: the API server wants a name.
    let manifest = cluster.file(
        "two.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: two}
spec:
  restartPolicy: Never
  containers:
  - {name: a, image: "busybox:1.36", command: ["sh", "-c", "echo from a"]}
  - {name: b, image: "busybox:1.36", command: ["sh", "-c", "echo from b"]}
"#,
    );
    cluster.ok(&["apply", "-f", &manifest]);
    let unnamed = cluster.fails(&["get", "--raw", "/api/v1/namespaces/default/pods/two/log"]);
    assert!(
        unnamed.contains("a container name must be specified for pod two, choose one of: [a b]"),
        "{unnamed}"
    );
    wait_for_phase(&cluster, "two", "Succeeded");
    assert_eq!(cluster.ok(&["logs", "two", "-c", "b"]), "from b\n");

    // Following: the stream ends when the container exits.
    cluster.ok(&[
        "run",
        "ticker",
        "--image=busybox:1.36",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4; do echo tick $i; sleep 1; done",
    ]);
    wait_until("the ticker to run", Duration::from_secs(60), || {
        jsonpath(&cluster, "pod/ticker", "{.status.phase}") == "Running"
            && cluster.kubectl(&["logs", "ticker"]).status.success()
    });
    let followed = kubectl_with_input(
        &cluster,
        Path::new(KUBECTL),
        &["logs", "-f", "ticker"],
        b"",
        Duration::from_secs(30),
    );
    assert!(followed.status.success(), "{}", text(&followed));
    assert_eq!(
        String::from_utf8_lossy(&followed.stdout),
        "tick 1\ntick 2\ntick 3\ntick 4\n"
    );

    // A restarted container's last attempt: `--previous`.
    cluster.ok(&[
        "run",
        "restarter",
        "--image=busybox:1.36",
        "--",
        "sh",
        "-c",
        "echo attempt; exit 1",
    ]);
    wait_until("a restart", Duration::from_secs(60), || {
        jsonpath(
            &cluster,
            "pod/restarter",
            "{.status.containerStatuses[0].restartCount}",
        )
        .parse::<u32>()
        .is_ok_and(|n| n >= 1)
    });
    assert_eq!(
        cluster.ok(&["logs", "restarter", "--previous"]),
        "attempt\n"
    );

    // kubectl 1.28 reads the same logs.
    let old = kubectl_with_input(
        &cluster,
        &kubectl_version(28),
        &["logs", "printer", "--tail=1"],
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(
        String::from_utf8_lossy(&old.stdout),
        "oops\n",
        "{}",
        text(&old)
    );
}

#[test]
fn kubectl_exec_and_port_forward_over_websockets() {
    let cluster = start();
    run_nginx(&cluster, "web");
    let big = add_big_file(&cluster, "web");
    check_exec(&cluster, Path::new(KUBECTL), "web");
    check_exec_bulk(&cluster, Path::new(KUBECTL), "web", &big);
    // kubectl's fallback with WebSockets turned off: SPDY, offering v5 first.
    let fallback = Command::new("ip")
        .args(["netns", "exec", &cluster.netns, KUBECTL, "--kubeconfig"])
        .arg(cluster.kubeconfig())
        .args(["exec", "web", "--", "sh", "-c", "hostname; exit 3"])
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        .output()
        .unwrap();
    assert_eq!(fallback.status.code(), Some(3), "{}", text(&fallback));
    assert_eq!(String::from_utf8_lossy(&fallback.stdout), "web\n");
    check_terminal(&cluster, Path::new(KUBECTL), "web");
    check_attach(&cluster, Path::new(KUBECTL), "reader");
    check_port_forward(&cluster, Path::new(KUBECTL), "web", 18080, &big);
    check_port_forward_refused(&cluster, Path::new(KUBECTL), "web", 18090);
}

/// kubectl 1.28 and 1.29 speak SPDY for everything; 1.30 WebSocket for exec and SPDY for
/// port-forward; 1.31 and 1.32 as 1.33.
#[test]
fn kubectl_1_28_to_1_32_exec_attach_and_port_forward() {
    let cluster = start();
    run_nginx(&cluster, "web");
    let big = add_big_file(&cluster, "web");
    for minor in 28..=32u16 {
        let kubectl = kubectl_version(u32::from(minor));
        check_exec(&cluster, &kubectl, "web");
        check_exec_bulk(&cluster, &kubectl, "web", &big);
        check_port_forward(&cluster, &kubectl, "web", 18000 + minor, &big);
    }
    let kubectl = kubectl_version(28);
    check_terminal(&cluster, &kubectl, "web");
    check_attach(&cluster, &kubectl, "reader");
}

/// An HTTP/1.0 request on a connection the client half-closes once the request is written
/// (`shutdown(Write)`, as HTTP/1.0 clients and `nc -N` do), from the cluster's network
/// namespace; returns all the answer up to the server's close, or how reading it failed.
fn half_closed_request(cluster: &Cluster, port: u16) -> Result<String, std::io::Error> {
    let netns = cluster.netns.clone();
    std::thread::spawn(move || {
        cluster::enter_netns(&netns);
        let mut connection = std::net::TcpStream::connect(("127.0.0.1", port))?;
        connection.set_read_timeout(Some(Duration::from_secs(10)))?;
        connection.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
        connection.shutdown(std::net::Shutdown::Write)?;
        let mut answer = Vec::new();
        connection.read_to_end(&mut answer)?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    })
    .join()
    .unwrap()
}

/// A pod whose server closes each connection right after answering (busybox `httpd`, an
/// HTTP/1.0-style server): the answer written before the close reaches the local client, and
/// the local connection then ends cleanly, for every connection of one `kubectl port-forward`.
/// And a client that half-closes after its request (regression: the kubelet took the client's
/// end of sending for the end of the connection and closed it before the pod answered, so the
/// client read nothing): the pod reads the end of the request and its answer still arrives.
/// Over the WebSocket tunnel (the default kubectl) and SPDY (kubectl 1.30).
#[test]
fn port_forward_keeps_the_answer_when_the_pod_closes_or_the_client_half_closes() {
    let cluster = start();
    let manifest = cluster.file(
        "echo.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: echo}
spec:
  containers:
  - name: web
    image: busybox:1.36
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
"#,
    );
    cluster.ok(&["apply", "-f", &manifest]);
    let ready = cluster.kubectl(&["wait", "--for=condition=Ready", "pod/echo", "--timeout=60s"]);
    assert!(
        ready.status.success(),
        "echo never Ready: {}\n{}",
        text(&ready),
        cluster.server_log()
    );
    for (kubectl, local) in [
        (PathBuf::from(KUBECTL), 18100),
        (kubectl_version(30), 18130),
    ] {
        let mut forward = start_port_forward(&cluster, &kubectl, "echo", local, 8080);
        for attempt in 0..2 {
            let page = cluster.exec(
                "curl",
                &[
                    "-sS",
                    "--max-time",
                    "10",
                    &format!("http://127.0.0.1:{local}/"),
                ],
            );
            assert!(
                page.status.success() && String::from_utf8_lossy(&page.stdout) == "echo\n",
                "{}, connection {attempt}: {}\n{}",
                kubectl.display(),
                text(&page),
                cluster.server_log()
            );
        }
        let answer = half_closed_request(&cluster, local);
        assert!(
            answer
                .as_ref()
                .is_ok_and(|a| a.starts_with("HTTP/1.") && a.ends_with("\r\n\r\necho\n")),
            "{}, a half-closed request: {answer:?}",
            kubectl.display()
        );
        assert!(
            forward.try_wait().unwrap().is_none(),
            "port-forward exited after serving"
        );
        let _ = forward.kill();
        let _ = forward.wait();
    }
}

#[test]
fn the_kubelet_api_authenticates_and_authorizes_and_unbound_pods_have_no_streams() {
    let cluster = start();
    // The kubelet's port: its certificate is the cluster CA's; clients show one of the CA's
    // or a bearer token.
    let tls = cluster.data_dir().join("server/tls");
    let (cert, key, ca) = (
        tls.join("admin.crt"),
        tls.join("admin.key"),
        tls.join("ca.crt"),
    );
    let url = "https://127.0.0.1:10250/healthz";
    let code = |extra: &[&str], url: &str| {
        let mut args = vec!["-sS", "-o", "/dev/null", "-w", "%{http_code}"];
        args.extend_from_slice(&["--cacert", ca.to_str().unwrap()]);
        args.extend_from_slice(extra);
        args.push(url);
        String::from_utf8_lossy(&cluster.exec("curl", &args).stdout).into_owned()
    };
    assert_eq!(code(&[], url), "401", "no certificate, no token");

    // A ServiceAccount's token: authenticated by a TokenReview, authorized by RBAC on the
    // Node's subresources (`nodes/metrics` here, not `nodes/proxy`).
    cluster.ok(&["create", "serviceaccount", "scraper"]);
    let token = cluster.ok(&["create", "token", "scraper"]);
    let bearer = format!("Authorization: Bearer {}", token.trim());
    let metrics = "https://127.0.0.1:10250/metrics";
    assert_eq!(code(&["-H", &bearer], metrics), "403", "no role yet");
    cluster.ok(&[
        "create",
        "clusterrole",
        "node-metrics",
        "--verb=get",
        "--resource=nodes/metrics",
    ]);
    cluster.ok(&[
        "create",
        "clusterrolebinding",
        "scraper",
        "--clusterrole=node-metrics",
        "--serviceaccount=default:scraper",
    ]);
    // The kubelet keeps a denial for 30 s, as upstream's.
    wait_until("the binding to apply", Duration::from_secs(60), || {
        code(&["-H", &bearer], metrics) == "200"
    });
    assert_eq!(
        code(&["-H", &bearer], url),
        "403",
        "nodes/proxy is another matter"
    );
    let wrong = "Authorization: Bearer not-a-token";
    assert_eq!(code(&["-H", wrong], metrics), "401");

    let admin = cluster.exec(
        "curl",
        &[
            "-sS",
            "--cacert",
            ca.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            url,
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&admin.stdout),
        "ok",
        "{}",
        text(&admin)
    );

    // A node selector nothing matches keeps the pod unscheduled.
    let manifest = cluster.file(
        "pending.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: pending}
spec:
  nodeSelector: {nowhere: "true"}
  containers:
  - {name: main, image: "busybox:1.36", command: ["sleep", "600"]}
"#,
    );
    cluster.ok(&["apply", "-f", &manifest]);
    let exec = cluster.fails(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/pending/exec?command=true&stdout=true",
    ]);
    assert!(
        exec.contains("pod pending does not have a host assigned"),
        "{exec}"
    );
    assert_eq!(cluster.ok(&["logs", "pending"]), "");
}

/// The official Python client (from the project's virtual environment, made by
/// dev/install-deps): exec over `v4.channel.k8s.io` (text messages for stdin), the WebSocket
/// port-forward protocol, logs.
#[test]
fn python_client_exec_port_forward_and_logs() {
    let cluster = start();
    run_nginx(&cluster, "web");
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = here.join("../../target/python/bin/python3");
    assert!(
        python.exists(),
        "{} is missing: run dev/install-deps",
        python.display()
    );
    let script = here.join("tests/python/streams.py");
    let output = cluster.exec(
        "timeout",
        &[
            "120",
            python.to_str().unwrap(),
            script.to_str().unwrap(),
            cluster.kubeconfig().to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success()
            && String::from_utf8_lossy(&output.stdout)
                .contains("python streams: 6 passed, 0 failed"),
        "{}\n{}",
        text(&output),
        cluster.server_log()
    );
}

/// kube-rs (Rust): exec with output, exit status and standard input, logs, and port-forward
/// (its WebSocket port-forward protocol), against nginx in a pod.
#[test]
fn kube_rs_exec_logs_and_port_forward() {
    use futures::StreamExt as _;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, AttachParams, LogParams};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let cluster = start();
    run_nginx(&cluster, "web");
    let netns = cluster.netns.clone();
    let kubeconfig = cluster.kubeconfig();
    std::thread::spawn(move || {
        // The client reaches 127.0.0.1 inside the cluster's namespace.
        cluster::enter_netns(&netns);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let config = kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .unwrap();
            let pods: Api<Pod> = Api::default_namespaced(kube::Client::try_from(config).unwrap());

            // Exec: output, and the exit status on the error channel.
            let mut process = pods
                .exec(
                    "web",
                    ["sh", "-c", "cat /etc/hostname; exit 3"],
                    &AttachParams::default().stderr(false),
                )
                .await
                .unwrap();
            let mut output = String::new();
            process
                .stdout()
                .unwrap()
                .read_to_string(&mut output)
                .await
                .unwrap();
            assert_eq!(output.trim(), "web");
            let status = process.take_status().unwrap().await.unwrap();
            assert_eq!(status.status.as_deref(), Some("Failure"), "{status:?}");
            assert_eq!(
                status.reason.as_deref(),
                Some("NonZeroExitCode"),
                "{status:?}"
            );
            process.join().await.unwrap();

            // Standard input.
            let mut reader = pods
                .exec(
                    "web",
                    ["sh", "-c", "read x; echo got=$x"],
                    &AttachParams::default().stdin(true).stderr(false),
                )
                .await
                .unwrap();
            reader.stdin().unwrap().write_all(b"hello\n").await.unwrap();
            let mut echoed = String::new();
            reader
                .stdout()
                .unwrap()
                .read_to_string(&mut echoed)
                .await
                .unwrap();
            assert_eq!(echoed.trim(), "got=hello");
            reader.join().await.unwrap();

            // Port-forward to nginx, then nginx's log of that request.
            let mut forwarder = pods.portforward("web", &[80]).await.unwrap();
            let mut stream = forwarder.take_stream(80).unwrap();
            stream
                .write_all(b"GET /from-kube-rs HTTP/1.0\r\n\r\n")
                .await
                .unwrap();
            let mut page = Vec::new();
            stream.read_to_end(&mut page).await.unwrap();
            assert!(
                String::from_utf8_lossy(&page).starts_with("HTTP/1.1 404"),
                "{}",
                String::from_utf8_lossy(&page)
            );
            drop(stream);
            // (nginx closed the connection, which ends the stream; kube-rs's `join` would
            // then report its own late close message as an error.)
            forwarder.abort();
            let logs = pods.logs("web", &LogParams::default()).await.unwrap();
            assert!(
                logs.contains("\"GET /from-kube-rs HTTP/1.0\" 404"),
                "{logs}"
            );
            let mut lines = futures::AsyncBufReadExt::lines(
                pods.log_stream(
                    "web",
                    &LogParams {
                        tail_lines: Some(1),
                        ..LogParams::default()
                    },
                )
                .await
                .unwrap(),
            );
            let last = lines.next().await.unwrap().unwrap();
            assert!(last.contains("/from-kube-rs"), "{last}");
        });
    })
    .join()
    .unwrap();
}
