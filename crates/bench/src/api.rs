//! `cox bench api`: the API server over HTTPS, as clients use it.
//!
//! Starts the real `cox server` as a child process (its own data directory, a free loopback
//! port) and talks HTTP/2 to it with the admin client certificate: creates of 10,000
//! configmaps and 10,000 pods with N concurrent clients (throughput, p50/p99), gets, LIST of
//! every pod, watch fan-out (every watcher must get every event), and the server's RSS idle
//! and after the load. The baseline, measured in the same run, is the embedded store alone
//! doing the same creates at the same concurrency: what the API layer costs on top of it.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use cox_store::Store;
use cox_store::sqlite::{SqliteOptions, SqliteStore};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};

use crate::stats::{Latencies, mib, ratio};

#[derive(Debug, Clone)]
pub struct Config {
    /// The `cox` binary to run as the server.
    pub server_binary: PathBuf,
    pub configmaps: usize,
    pub pods: usize,
    pub clients: usize,
    pub gets: usize,
    pub list_repeats: usize,
    pub watchers: usize,
    pub watch_events: usize,
    pub watch_rate: u32,
}

impl Config {
    pub fn full(server_binary: PathBuf) -> Self {
        Self {
            server_binary,
            configmaps: 10_000,
            pods: 10_000,
            clients: 64,
            gets: 10_000,
            list_repeats: 10,
            watchers: 1000,
            watch_events: 200,
            watch_rate: 100,
        }
    }

    /// Everything once, small (for the test suite).
    pub fn smoke(server_binary: PathBuf) -> Self {
        Self {
            server_binary,
            configmaps: 200,
            pods: 200,
            clients: 8,
            gets: 200,
            list_repeats: 2,
            watchers: 20,
            watch_events: 10,
            watch_rate: 100,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Throughput {
    pub ops: usize,
    pub per_sec: f64,
    pub latency: Latencies,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub configmaps: Throughput,
    pub pods: Throughput,
    /// The server's CPU time (all threads, user and system) per create: a figure the shared
    /// machine's noise moves far less than throughput.
    pub configmap_cpu: Duration,
    pub pod_cpu: Duration,
    pub store_baseline: Throughput,
    pub gets: Throughput,
    pub list: Latencies,
    pub listed: usize,
    pub watch_delivered: u64,
    pub watch_expected: u64,
    pub watch_delay: Latencies,
    pub rss_idle: u64,
    pub rss_loaded: u64,
}

/// The server under test; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(binary: &Path) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = Command::new(binary)
            .arg("server")
            // The API server alone: this benchmark's pods must not run (nor touch the host's
            // network), only be stored and served.
            .arg("--disable-agent")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--write-kubeconfig")
            .arg(dir.path().join("kubeconfig"))
            .args(["--bind-address", "127.0.0.1", "--node-ip", "127.0.0.1"])
            .arg("--https-listen-port")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            dir,
        })
    }

    fn tls(&self) -> Result<Arc<rustls::ClientConfig>> {
        let tls = self.dir.path().join("data/server/tls");
        let read =
            |name: &str| std::fs::read(tls.join(name)).with_context(|| format!("reading {name}"));
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&read("ca.crt")?) {
            roots.add(cert?)?;
        }
        let chain =
            CertificateDer::pem_slice_iter(&read("admin.crt")?).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(&read("admin.key")?)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// The CPU time the server has used so far, all threads, user and system, from /proc.
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // After the command name, in parentheses that may hold anything: the state (field
        // 3), ..., utime (field 14) and stime (15), in clock ticks.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ticks: u64 = after_name
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse::<u64>().ok())
            .sum();
        let per_second = rustix::param::clock_ticks_per_second().max(1);
        Duration::from_secs_f64(ticks as f64 / per_second as f64)
    }

    /// The server's resident memory, from /proc.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    }
}

/// One HTTP/2 connection; requests on it are multiplexed.
#[derive(Clone)]
struct Client {
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    async fn connect(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Result<Self> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from("127.0.0.1")?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await?;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .adaptive_window(true)
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(connection);
        Ok(Self { sender })
    }

    async fn request(
        &mut self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, hyper::body::Incoming)> {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = http::Request::builder()
            .method(method)
            .uri(format!("https://127.0.0.1{path}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(body))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        Ok((response.status().as_u16(), response.into_body()))
    }

    /// A request whose whole answer is read; fails unless the status is `want`.
    async fn call(
        &mut self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
        want: u16,
    ) -> Result<Bytes> {
        let (status, body) = self.request(method, path, body).await?;
        let bytes = body.collect().await?.to_bytes();
        if status != want {
            bail!("{path}: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(bytes)
    }
}

async fn wait_ready(server: &mut Server) -> Result<Arc<rustls::ClientConfig>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            let log =
                std::fs::read_to_string(server.dir.path().join("server.log")).unwrap_or_default();
            bail!("cox server exited with {status}:\n{log}");
        }
        if server.dir.path().join("kubeconfig").exists()
            && let Ok(tls) = server.tls()
            && let Ok(mut client) = Client::connect(server.addr, tls.clone()).await
            && client
                .call(http::Method::GET, "/readyz", None, 200)
                .await
                .is_ok()
        {
            return Ok(tls);
        }
        if Instant::now() > deadline {
            bail!("cox server did not become ready within 30s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn configmap(i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{i:06}"), "labels": {"bench": "api"}}, "data": {"key": "x".repeat(256)}})
}

/// A pod for a scheduler that is not running: the server has no nodes, and the default
/// scheduler would mark each pod unschedulable and record an event for it, writes of its own
/// that would compete with the API's for the two cores. Upstream's scheduler leaves such pods
/// alone too; so does ours.
fn pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i:06}"), "labels": {"app": "bench", "shard": (i % 10).to_string()}},
        "spec": {"schedulerName": "cox-bench-none",
                 "containers": [{"name": "app", "image": "registry.local/bench:1", "ports": [{"containerPort": 8080}],
                                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}
    })
}

/// `count` operations from `concurrency` workers, each timed from the moment its future is
/// awaited (what `op` does before returning the future, such as building the request, is not).
async fn workers<F, Fut>(concurrency: usize, count: usize, op: F) -> Result<Throughput>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latency = Latencies::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(latency);
                }
                let operation = op(worker, i);
                let began = Instant::now();
                operation.await?;
                latency.record(began.elapsed());
            }
        }));
    }
    let mut latency = Latencies::new();
    for task in tasks {
        latency.merge(&task.await??);
    }
    Ok(Throughput {
        ops: count,
        per_sec: count as f64 / start.elapsed().as_secs_f64(),
        latency,
    })
}

/// `count` requests from `concurrency` clients spread over the connections.
async fn load<F>(
    clients: &[Client],
    concurrency: usize,
    count: usize,
    request: F,
) -> Result<Throughput>
where
    F: Fn(usize) -> (http::Method, String, Option<Value>, u16) + Send + Sync + 'static,
{
    let clients = clients.to_vec();
    workers(concurrency, count, move |worker, i| {
        let mut client = clients[worker % clients.len()].clone();
        let (method, path, body, want) = request(i);
        async move {
            client
                .call(method, &path, body.as_ref(), want)
                .await
                .map(|_| ())
        }
    })
    .await
}

/// The same creates straight into an embedded store: the floor under the API.
async fn store_baseline(count: usize, concurrency: usize) -> Result<Throughput> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).await?);
    workers(concurrency, count, move |_, i| {
        let store = store.clone();
        let value = Bytes::from(configmap(i).to_string());
        async move {
            store
                .create(&format!("/registry/configmaps/default/cm-{i:06}"), value)
                .await?;
            Ok(())
        }
    })
    .await
}

/// Watchers on the configmaps of namespace `default`; events created at a steady rate, each
/// carrying its creation time; every watcher must see every one.
async fn fan_out(
    clients: &[Client],
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    config: &Config,
) -> Result<(u64, Latencies)> {
    let base = Instant::now();
    let mut client = clients[0].clone();
    let list: Value = serde_json::from_slice(
        &client
            .call(
                http::Method::GET,
                "/api/v1/namespaces/kube-public/configmaps",
                None,
                200,
            )
            .await?,
    )?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_owned();
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel::<()>(config.watchers);
    // Watchers get connections of their own, 100 streams each.
    let mut watch_connections = Vec::new();
    for _ in 0..config.watchers.div_ceil(100) {
        watch_connections.push(Client::connect(addr, tls.clone()).await?);
    }
    let mut watchers = Vec::new();
    for w in 0..config.watchers {
        let mut client = watch_connections[w % watch_connections.len()].clone();
        let path =
            format!("/api/v1/namespaces/kube-public/configmaps?watch=true&resourceVersion={rv}");
        let (status, mut body) = client.request(http::Method::GET, &path, None).await?;
        if status != 200 {
            bail!("watch answered {status}");
        }
        let (ready_tx, total) = (ready_tx.clone(), config.watch_events + 1);
        watchers.push(tokio::spawn(async move {
            let mut delay = Latencies::new();
            let mut pending = Vec::new();
            let mut seen = 0;
            // Every event must arrive within two minutes, or the watcher stops counting.
            let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
            while seen < total {
                let Ok(frame) = tokio::time::timeout_at(give_up, body.frame()).await else {
                    break;
                };
                let Some(Ok(frame)) = frame else { break };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                pending.extend_from_slice(&data);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let received = base.elapsed().as_micros();
                    let event: Value = serde_json::from_slice(&line).unwrap_or_default();
                    if seen == 0 {
                        let _ = ready_tx.send(()).await;
                    } else if let Some(sent) = event
                        .pointer("/object/data/sent")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<u128>().ok())
                    {
                        let micros =
                            u64::try_from(received.saturating_sub(sent)).unwrap_or(u64::MAX);
                        delay.record(Duration::from_micros(micros));
                    }
                    seen += 1;
                }
            }
            delay
        }));
    }
    drop(ready_tx);
    let stamp = |name: String| json!({"metadata": {"name": name}, "data": {"sent": base.elapsed().as_micros().to_string()}});
    client
        .call(
            http::Method::POST,
            "/api/v1/namespaces/kube-public/configmaps",
            Some(&stamp("warm-up".into())),
            201,
        )
        .await?;
    for _ in 0..config.watchers {
        if tokio::time::timeout(Duration::from_secs(60), ready.recv())
            .await
            .is_err()
        {
            bail!("not every watcher saw the warm-up event within 60s");
        }
    }
    let interval = Duration::from_secs_f64(1.0 / f64::from(config.watch_rate.max(1)));
    let start = tokio::time::Instant::now();
    let mut writes = Vec::new();
    for i in 0..config.watch_events {
        tokio::time::sleep_until(start + interval * i as u32).await;
        let mut client = clients[i % clients.len()].clone();
        let body = stamp(format!("event-{i:06}"));
        writes.push(tokio::spawn(async move {
            client
                .call(
                    http::Method::POST,
                    "/api/v1/namespaces/kube-public/configmaps",
                    Some(&body),
                    201,
                )
                .await
        }));
    }
    for write in writes {
        write.await??;
    }
    let mut delay = Latencies::new();
    for watcher in watchers {
        delay.merge(&watcher.await?);
    }
    Ok((delay.count(), delay))
}

pub async fn run(config: &Config) -> Result<Report> {
    let mut server = Server::start(&config.server_binary)?;
    let tls = wait_ready(&mut server).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = server.rss();
    println!(
        "cox bench api: cox server pid {}, {} clients over HTTP/2 with client certificates",
        server.child.id(),
        config.clients
    );
    println!("server RSS idle: {}", mib(rss_idle));
    let mut connections = Vec::new();
    for _ in 0..(config.clients / 16).max(1) {
        connections.push(Client::connect(server.addr, tls.clone()).await?);
    }
    let row = |what: &str, t: &Throughput| {
        println!(
            "{what:<28} {:>7} ops  {:>8.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            t.ops,
            t.per_sec,
            t.latency.ms(0.5),
            t.latency.ms(0.99)
        );
    };
    let cpu_row = |what: &str, cpu: Duration| {
        println!(
            "{what:<28} server CPU {:>6.0} µs per create",
            cpu.as_secs_f64() * 1e6
        );
    };
    let cpu_before = server.cpu();
    let configmaps = load(&connections, config.clients, config.configmaps, |i| {
        (
            http::Method::POST,
            "/api/v1/namespaces/default/configmaps".into(),
            Some(configmap(i)),
            201,
        )
    })
    .await?;
    let configmap_cpu = settled_cpu(&server, cpu_before).await / count(config.configmaps);
    row("create configmaps", &configmaps);
    cpu_row("", configmap_cpu);
    let cpu_before = server.cpu();
    let pods = load(&connections, config.clients, config.pods, |i| {
        (
            http::Method::POST,
            "/api/v1/namespaces/default/pods".into(),
            Some(pod(i)),
            201,
        )
    })
    .await?;
    let pod_cpu = settled_cpu(&server, cpu_before).await / count(config.pods);
    row("create pods", &pods);
    cpu_row("", pod_cpu);
    let store_baseline = store_baseline(config.configmaps, config.clients).await?;
    row("baseline: store creates", &store_baseline);
    let pod_count = config.pods;
    let gets = load(&connections, config.clients, config.gets, move |i| {
        (
            http::Method::GET,
            format!("/api/v1/namespaces/default/pods/pod-{:06}", i % pod_count),
            None,
            200,
        )
    })
    .await?;
    row("get pod", &gets);
    let mut list = Latencies::new();
    let mut listed = 0;
    let mut client = connections[0].clone();
    for _ in 0..config.list_repeats {
        let began = Instant::now();
        let body = client
            .call(
                http::Method::GET,
                "/api/v1/namespaces/default/pods",
                None,
                200,
            )
            .await?;
        list.record(began.elapsed());
        let value: Value = serde_json::from_slice(&body)?;
        listed = value["items"].as_array().map_or(0, Vec::len);
    }
    println!(
        "list all {listed} pods            p50 {:>7.1} ms  p99 {:>7.1} ms",
        list.ms(0.5),
        list.ms(0.99)
    );
    let rss_loaded = server.rss();
    println!(
        "server RSS with {} pods and {} configmaps: {}",
        config.pods,
        config.configmaps,
        mib(rss_loaded)
    );
    let (watch_delivered, watch_delay) =
        fan_out(&connections, server.addr, tls.clone(), config).await?;
    let watch_expected = (config.watchers * config.watch_events) as u64;
    println!(
        "watch fan-out: {} watchers x {} events at {}/s: {watch_delivered}/{watch_expected} delivered, delay p50 {:.2} ms p99 {:.2} ms",
        config.watchers,
        config.watch_events,
        config.watch_rate,
        watch_delay.ms(0.5),
        watch_delay.ms(0.99)
    );
    println!(
        "\n== summary: API creates {:.0}/s vs the store alone {:.0}/s = {} (p99 {:.1} vs {:.1} ms)",
        configmaps.per_sec,
        store_baseline.per_sec,
        ratio(configmaps.per_sec, store_baseline.per_sec),
        configmaps.latency.ms(0.99),
        store_baseline.latency.ms(0.99)
    );
    Ok(Report {
        configmaps,
        pods,
        configmap_cpu,
        pod_cpu,
        store_baseline,
        gets,
        list,
        listed,
        watch_delivered,
        watch_expected,
        watch_delay,
        rss_idle,
        rss_loaded,
    })
}

/// The server's CPU time since `before`, once the work a phase set off (watch events, the
/// controllers' informers) has been done: a second later.
async fn settled_cpu(server: &Server, before: Duration) -> Duration {
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.cpu().saturating_sub(before)
}

/// `n` as a divisor of a duration.
fn count(n: usize) -> u32 {
    u32::try_from(n.max(1)).unwrap_or(u32::MAX)
}
