//! `cox bench services`: the service proxy and the cluster DNS, each beside a baseline
//! measured in the same run.
//!
//! - Programming latency: with N Services (two endpoints each) in the proxy's table, one
//!   endpoint changes; the time from the change to `nft` having committed the new rules
//!   (rendering included). Baseline: rebuilding the whole table for the same change.
//! - Traffic: a TCP echo server in a "pod" network namespace behind a veth; round trips on
//!   one connection, and new connections (connect, one exchange, close), to the pod's IP
//!   straight and through a ClusterIP. The pod IP is the floor.
//! - DNS: A queries for random Service names over UDP against the cluster DNS holding N
//!   Services. Baseline: a UDP echo server on loopback (the cost of the round trip alone).
//!
//! Everything runs in network namespaces the benchmark makes and deletes.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cleanup::ip;
use cox_dns::proto::op::{Message, Query};
use cox_dns::proto::rr::{Name, RecordType};
use cox_proxy::model::{Endpoint, Protocol, ServicePort};
use cox_proxy::nft::Table;
use cox_proxy::rules::{self, Networks};
use rand::Rng;

use crate::stats::{Latencies, ratio};

#[derive(Debug, Clone)]
pub struct Config {
    /// Numbers of Services to program.
    pub service_counts: Vec<usize>,
    /// Endpoint changes timed at each count.
    pub changes: usize,
    /// Round trips on one connection, per target.
    pub round_trips: usize,
    /// New connections, per target.
    pub connections: usize,
    /// DNS queries, per target.
    pub dns_queries: usize,
    /// Services in the DNS zone.
    pub dns_services: usize,
}

impl Config {
    pub fn smoke() -> Self {
        Self {
            service_counts: vec![100],
            changes: 10,
            round_trips: 300,
            connections: 50,
            dns_queries: 500,
            dns_services: 100,
        }
    }

    pub fn full() -> Self {
        Self {
            service_counts: vec![1_000, 10_000],
            changes: 100,
            round_trips: 20_000,
            connections: 2_000,
            dns_queries: 50_000,
            dns_services: 10_000,
        }
    }
}

/// A network namespace of the benchmark's, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(role: &str) -> Result<Self> {
        let name = format!("cox-bench-{role}-{}", std::process::id());
        ip(&["netns", "add", &name])?;
        let netns = Self(name);
        netns.ip(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    fn ip(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["-n", self.0.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Runs `f` on a new thread inside the namespace.
    fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> std::thread::JoinHandle<Result<T>> {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&file),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .context("entering the benchmark's network namespace")?;
            f()
        })
    }

    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
        self.spawn(f)
            .join()
            .map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))?
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

fn networks() -> Networks {
    Networks {
        cluster_cidr: "10.42.0.0/16".into(),
        node_pod_cidr: "10.42.0.0/24".into(),
        service_cidr: "10.43.0.0/16".into(),
    }
}

/// Service `i` of the synthetic set: ClusterIP 10.43.x.y, two endpoints.
fn synthetic_port(i: usize, generation: u32) -> ServicePort {
    let n = u32::try_from(i).unwrap_or(0) + 256;
    let endpoint = |k: u32| Endpoint {
        ip: Ipv4Addr::from(0x0a2a_0000 + ((n * 2 + k + generation) % 60_000) + 2),
        port: 8080,
        local: true,
    };
    ServicePort {
        id: format!("bench/svc-{i}/tcp/http"),
        protocol: Protocol::Tcp,
        port: 80,
        cluster_ips: vec![Ipv4Addr::from(0x0a2b_0000 + n)],
        node_port: None,
        external_ips: Vec::new(),
        local_only: false,
        affinity_seconds: None,
        endpoints: vec![endpoint(0), endpoint(1)],
    }
}

/// Programming latency at `count` Services: (initial sync, incremental, full rebuild).
fn programming(count: usize, changes: usize) -> Result<(Duration, Latencies, Latencies)> {
    let netns = Netns::new("rules")?;
    netns.run(move || {
        let mut ports: Vec<ServicePort> = (0..count).map(|i| synthetic_port(i, 0)).collect();
        let mut table = Table::new(networks());
        let started = Instant::now();
        table.sync(rules::render(&ports, &networks()))?;
        let initial = started.elapsed();
        let mut rng = rand::rng();
        let (mut incremental, mut rebuild) = (Latencies::new(), Latencies::new());
        for change in 0..changes {
            let i = rng.random_range(0..count);
            let generation = u32::try_from(change).unwrap_or(0) + 1;
            ports[i] = synthetic_port(i, generation);
            let started = Instant::now();
            table.sync(rules::render(&ports, &networks()))?;
            incremental.record(started.elapsed());
            // The baseline: the same state, written as a whole new table.
            if change % 4 == 0 {
                let mut fresh = Table::new(networks());
                let started = Instant::now();
                fresh.sync(rules::render(&ports, &networks()))?;
                rebuild.record(started.elapsed());
            }
        }
        Ok((initial, incremental, rebuild))
    })
}

const MESSAGE: usize = 64;

/// A TCP echo server in `pod`, answering each `MESSAGE`-byte message until the client
/// closes.
fn echo_server(pod: &Netns) -> Result<()> {
    let (ready, listening) = std::sync::mpsc::channel();
    let _server = pod.spawn(move || {
        let listener = TcpListener::bind("0.0.0.0:8080")?;
        let _ = ready.send(());
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut buffer = [0u8; MESSAGE];
                while stream.read_exact(&mut buffer).is_ok() {
                    if stream.write_all(&buffer).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(())
    });
    listening
        .recv_timeout(Duration::from_secs(5))
        .context("the echo server did not start")
}

fn exchange(stream: &mut TcpStream) -> Result<()> {
    let mut buffer = [7u8; MESSAGE];
    stream.write_all(&buffer)?;
    stream.read_exact(&mut buffer)?;
    Ok(())
}

/// Round trips on one connection to `target`, then new connections.
fn traffic(
    target: SocketAddr,
    round_trips: usize,
    connections: usize,
) -> Result<(Latencies, Latencies, f64)> {
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(2))
        .with_context(|| format!("connecting to {target}"))?;
    stream.set_nodelay(true)?;
    let mut trips = Latencies::new();
    for _ in 0..round_trips {
        let started = Instant::now();
        exchange(&mut stream)?;
        trips.record(started.elapsed());
    }
    drop(stream);
    let mut connects = Latencies::new();
    let all = Instant::now();
    for _ in 0..connections {
        let started = Instant::now();
        let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
        stream.set_nodelay(true)?;
        exchange(&mut stream)?;
        drop(stream);
        connects.record(started.elapsed());
    }
    let per_second = connections as f64 / all.elapsed().as_secs_f64().max(1e-9);
    Ok((trips, connects, per_second))
}

/// Pod IP and ClusterIP traffic, alternating twice so that drift hits both alike.
fn traffic_figures(config: &Config) -> Result<()> {
    let node = Netns::new("node")?;
    let pod = Netns::new("pod")?;
    node.ip(&[
        "link",
        "add",
        "cox-bench0",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &pod.0,
    ])?;
    node.ip(&["addr", "add", "10.42.0.1/24", "dev", "cox-bench0"])?;
    node.ip(&["link", "set", "cox-bench0", "up"])?;
    // A node has a default route; connecting to a ClusterIP needs one before the DNAT.
    node.ip(&["route", "add", "default", "via", "10.42.0.2"])?;
    pod.ip(&["addr", "add", "10.42.0.2/24", "dev", "eth0"])?;
    pod.ip(&["link", "set", "eth0", "up"])?;
    pod.ip(&["route", "add", "default", "via", "10.42.0.1"])?;
    echo_server(&pod)?;
    let service = ServicePort {
        id: "bench/echo/tcp/echo".into(),
        protocol: Protocol::Tcp,
        port: 80,
        cluster_ips: vec![Ipv4Addr::new(10, 43, 0, 100)],
        node_port: None,
        external_ips: Vec::new(),
        local_only: false,
        affinity_seconds: None,
        endpoints: vec![Endpoint {
            ip: Ipv4Addr::new(10, 42, 0, 2),
            port: 8080,
            local: true,
        }],
    };
    node.run(move || {
        Table::new(networks()).sync(rules::render(&[service], &networks()))?;
        Ok(())
    })?;
    let pod_ip: SocketAddr = "10.42.0.2:8080".parse()?;
    let cluster_ip: SocketAddr = "10.43.0.100:80".parse()?;
    let (round_trips, connections) = (config.round_trips / 2, config.connections / 2);
    let results = node.run(move || {
        let mut direct = (Latencies::new(), Latencies::new(), 0.0);
        let mut through = (Latencies::new(), Latencies::new(), 0.0);
        for _ in 0..2 {
            for (target, into) in [(pod_ip, &mut direct), (cluster_ip, &mut through)] {
                let (trips, connects, rate) = traffic(target, round_trips, connections)?;
                into.0.merge(&trips);
                into.1.merge(&connects);
                into.2 += rate / 2.0;
            }
        }
        Ok((direct, through))
    })?;
    let (direct, through) = results;
    println!("traffic (64-byte echo, TCP)     pod IP      ClusterIP   ratio");
    for (what, quantile) in [("round trip p50", 0.5), ("round trip p99", 0.99)] {
        let (a, b) = (
            direct.0.ms(quantile) * 1000.0,
            through.0.ms(quantile) * 1000.0,
        );
        println!("  {what:<28} {a:>7.0} µs  {b:>7.0} µs  {}", ratio(b, a));
    }
    for (what, quantile) in [("new connection p50", 0.5), ("new connection p99", 0.99)] {
        let (a, b) = (
            direct.1.ms(quantile) * 1000.0,
            through.1.ms(quantile) * 1000.0,
        );
        println!("  {what:<28} {a:>7.0} µs  {b:>7.0} µs  {}", ratio(b, a));
    }
    println!(
        "  {:<28} {:>7.0} /s   {:>7.0} /s   {}",
        "connections per second",
        direct.2,
        through.2,
        ratio(through.2, direct.2)
    );
    Ok(())
}

/// A zone of `count` Services `svc-<i>.bench`, and the server answering from it.
async fn dns_server(
    count: usize,
) -> Result<(SocketAddr, tokio::sync::watch::Sender<Arc<cox_dns::Zone>>)> {
    let domain = cox_dns::ClusterDomain::parse("cluster.local")?;
    let services: Vec<k8s_openapi::api::core::v1::Service> = (0..count)
        .map(|i| {
            let n = u32::try_from(i).unwrap_or(0) + 256;
            let ip = Ipv4Addr::from(0x0a2b_0000 + n).to_string();
            serde_json::from_value(serde_json::json!({
                "metadata": {"namespace": "bench", "name": format!("svc-{i}")},
                "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "http", "port": 80}]},
            }))
        })
        .collect::<Result<_, _>>()?;
    let zone = cox_dns::Zone::build(&domain, &services, &[], 1);
    let config = cox_dns::DnsConfig {
        listen: vec!["127.0.0.1:0".parse()?],
        cluster_domain: "cluster.local".into(),
        upstreams: Vec::new(),
    };
    let server = cox_dns::Server::bind(&config).await?;
    let address = server
        .local_addrs()
        .first()
        .copied()
        .context("the DNS server bound nothing")?;
    let (zones, receiver) = tokio::sync::watch::channel(Arc::new(zone));
    tokio::spawn(server.serve(receiver, std::future::pending()));
    Ok((address, zones))
}

/// A UDP echo server on loopback: the floor of a query's round trip.
fn udp_echo() -> Result<SocketAddr> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let address = socket.local_addr()?;
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1500];
        while let Ok((n, peer)) = socket.recv_from(&mut buffer) {
            let _ = socket.send_to(&buffer[..n], peer);
        }
    });
    Ok(address)
}

/// `queries` A queries for random Service names, from 4 clients at once: latencies and
/// queries per second.
fn query_load(server: SocketAddr, services: usize, queries: usize) -> Result<(Latencies, f64)> {
    const CLIENTS: usize = 4;
    let started = Instant::now();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || -> Result<Latencies> {
                let socket = UdpSocket::bind("127.0.0.1:0")?;
                socket.set_read_timeout(Some(Duration::from_secs(2)))?;
                socket.connect(server)?;
                let mut rng = rand::rng();
                let mut latencies = Latencies::new();
                let mut answer = [0u8; 1500];
                for id in 0..queries / CLIENTS {
                    let name = format!(
                        "svc-{}.bench.svc.cluster.local.",
                        rng.random_range(0..services)
                    );
                    let mut message = Message::query();
                    message.metadata.id = u16::try_from(id % 65_536).unwrap_or(0);
                    message
                        .queries
                        .push(Query::query(Name::from_ascii(&name)?, RecordType::A));
                    let bytes = message.to_vec()?;
                    let sent = Instant::now();
                    socket.send(&bytes)?;
                    socket.recv(&mut answer).context("no answer")?;
                    latencies.record(sent.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut all = Latencies::new();
    for handle in handles {
        let latencies = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a DNS client panicked"))??;
        all.merge(&latencies);
    }
    let per_second = all.count() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    Ok((all, per_second))
}

pub async fn run(config: &Config) -> Result<()> {
    println!("service programming (one endpoint change → rules live in the kernel)");
    println!(
        "  services   first sync   incremental p50 / p99      full rebuild p50 / p99    ratio p50"
    );
    for &count in &config.service_counts {
        let changes = config.changes;
        let (initial, incremental, rebuild) =
            tokio::task::spawn_blocking(move || programming(count, changes)).await??;
        println!(
            "  {count:>8}   {:>8.1} ms   {:>8.2} / {:>8.2} ms      {:>8.2} / {:>8.2} ms     {}",
            initial.as_secs_f64() * 1000.0,
            incremental.ms(0.5),
            incremental.ms(0.99),
            rebuild.ms(0.5),
            rebuild.ms(0.99),
            ratio(incremental.ms(0.5), rebuild.ms(0.5)),
        );
    }
    let traffic_config = config.clone();
    tokio::task::spawn_blocking(move || traffic_figures(&traffic_config)).await??;

    let (dns, _zone) = dns_server(config.dns_services).await?;
    let echo = udp_echo()?;
    let (services, queries) = (config.dns_services, config.dns_queries);
    let (ours, floor) = tokio::task::spawn_blocking(move || -> Result<_> {
        Ok((
            query_load(dns, services, queries)?,
            query_load(echo, services, queries)?,
        ))
    })
    .await??;
    println!("cluster DNS ({services} Services, A queries over UDP, 4 clients)");
    println!("                       cox-dns     UDP echo (floor)   ratio");
    println!(
        "  queries per second {:>9.0}   {:>9.0}          {}",
        ours.1,
        floor.1,
        ratio(ours.1, floor.1)
    );
    for (what, quantile) in [("p50", 0.5), ("p99", 0.99)] {
        println!(
            "  latency {what}        {:>6.0} µs   {:>6.0} µs          {}",
            ours.0.ms(quantile) * 1000.0,
            floor.0.ms(quantile) * 1000.0,
            ratio(ours.0.ms(quantile), floor.0.ms(quantile))
        );
    }
    Ok(())
}
