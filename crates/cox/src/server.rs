//! `cox server`: the control plane: the store and the API server (controllers and node
//! components join here as they land; see the README's status section).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cox_apiserver::authn::Tokens;
use cox_apiserver::bootstrap::{self, KubernetesService};
use cox_apiserver::sa_tokens::TokenSigner;
use cox_apiserver::tls::{ClusterCerts, ServingNames};
use cox_apiserver::{ApiServer, Config, kubeconfig};
use cox_controllers::leader::{Election, Timing};
use cox_store::Store;
use cox_store::etcd::EtcdStore;
use cox_store::sqlite::{SqliteOptions, SqliteStore};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the server keeps its state.
    #[arg(long, default_value = "/var/lib/cox")]
    data_dir: PathBuf,
    /// etcd endpoints (`http://host:2379`, comma separated) to keep state in instead of the
    /// embedded SQLite store.
    #[arg(long, value_delimiter = ',')]
    datastore_endpoint: Vec<String>,
    /// The port the API server serves HTTPS on.
    #[arg(long, default_value_t = 6443)]
    https_listen_port: u16,
    /// The address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// This node's IP: in the serving certificate and the `kubernetes` endpoints. Default:
    /// the address of the default route's interface, or 127.0.0.1.
    #[arg(long)]
    node_ip: Option<IpAddr>,
    /// Where to write the admin kubeconfig.
    #[arg(long, default_value = "/etc/cox/cox.yaml")]
    write_kubeconfig: PathBuf,
    /// Services' virtual IP range; its first address is the `kubernetes` Service's.
    #[arg(long, default_value = "10.43.0.0/16")]
    service_cidr: String,
    /// The node port range of NodePort and LoadBalancer Services.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: String,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// Bearer tokens, upstream's CSV format: `token,user,uid,"group1,group2"`.
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Addresses for LoadBalancer Services (`FIRST-LAST` or `ADDRESS/BITS`), one each,
    /// instead of the nodes' addresses.
    #[arg(long)]
    servicelb_address_pool: Option<String>,
    /// A flag for the controller manager, `NAME=VALUE` as k3s passes them to
    /// kube-controller-manager (repeatable). Supported: `terminated-pod-gc-threshold`.
    #[arg(long = "kube-controller-manager-arg", value_name = "NAME=VALUE")]
    kube_controller_manager_arg: Vec<String>,
    /// Seconds between the pod garbage collector's passes; a missing node's pods wait twice
    /// as long. Upstream's fixed 20; for tests.
    #[arg(long, default_value_t = 20, hide = true)]
    pod_gc_period: u64,
    /// Run the control plane only: no container runtime and no kubelet on this machine.
    #[arg(long)]
    disable_agent: bool,
    #[command(flatten)]
    agent: crate::agent::AgentArgs,
}

/// An IPv4 CIDR (`10.43.0.0/16`), its network address normalized.
fn parse_cidr(cidr: &str) -> Result<(Ipv4Addr, u8)> {
    let (network, bits) = cidr
        .split_once('/')
        .context("--service-cidr must be ADDRESS/BITS")?;
    let network: Ipv4Addr = network.parse().context("--service-cidr address")?;
    let bits: u8 = bits.parse().context("--service-cidr prefix length")?;
    if !(8..=30).contains(&bits) {
        bail!("--service-cidr {cidr}: the prefix length must be between 8 and 30");
    }
    let mask = u32::MAX << (32 - u32::from(bits));
    Ok((Ipv4Addr::from(u32::from(network) & mask), bits))
}

/// The pod garbage collector's settings from the `--kube-controller-manager-arg` flags (the
/// one supported: `terminated-pod-gc-threshold`; the others are refused rather than ignored).
fn pod_gc_settings(
    args: &[String],
    period_seconds: u64,
) -> Result<cox_controllers::pod_gc::Settings> {
    let mut settings = cox_controllers::pod_gc::Settings {
        period: std::time::Duration::from_secs(period_seconds.max(1)),
        ..Default::default()
    };
    for arg in args {
        let (name, value) = arg
            .trim_start_matches('-')
            .split_once('=')
            .with_context(|| format!("--kube-controller-manager-arg {arg:?}: not NAME=VALUE"))?;
        match name {
            "terminated-pod-gc-threshold" => {
                let threshold: i64 = value.parse().with_context(|| {
                    format!("--kube-controller-manager-arg {arg:?}: not a number")
                })?;
                // Upstream disables the threshold at 0 or below.
                settings.terminated_threshold = usize::try_from(threshold).unwrap_or(0);
            }
            other => bail!(
                "--kube-controller-manager-arg {arg:?}: {other} is not supported (supported: terminated-pod-gc-threshold)"
            ),
        }
    }
    Ok(settings)
}

/// `LOW-HIGH`
fn parse_port_range(range: &str) -> Result<(u16, u16)> {
    let (low, high) = range
        .split_once('-')
        .context("--service-node-port-range must be LOW-HIGH")?;
    let (low, high): (u16, u16) = (low.parse()?, high.parse()?);
    if low == 0 || low > high {
        bail!("--service-node-port-range {range} is empty");
    }
    Ok((low, high))
}

/// The local address the kernel would use for the default route, found without sending
/// anything (connecting a UDP socket only selects a route); 127.0.0.1 without one.
fn detect_node_ip() -> IpAddr {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| {
            socket.connect("10.255.255.255:9")?;
            socket.local_addr()
        })
        .map(|addr| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

pub async fn run(args: Args) -> Result<()> {
    let store: Arc<dyn Store> = if args.datastore_endpoint.is_empty() {
        let dir = args.data_dir.join("server").join("db");
        let store = SqliteStore::open(&dir, SqliteOptions::default())
            .await
            .with_context(|| format!("opening the store in {}", dir.display()))?;
        tracing::info!(path = %dir.display(), "embedded SQLite store open");
        Arc::new(store)
    } else {
        let store = EtcdStore::connect(&args.datastore_endpoint)
            .await
            .with_context(|| format!("connecting to etcd at {:?}", args.datastore_endpoint))?;
        tracing::info!(endpoints = ?args.datastore_endpoint, "etcd store connected");
        Arc::new(store)
    };

    let node_ip = args.node_ip.unwrap_or_else(detect_node_ip);
    let service_network = parse_cidr(&args.service_cidr)?;
    let node_ports = parse_port_range(&args.service_node_port_range)?;
    let pod_gc = pod_gc_settings(&args.kube_controller_manager_arg, args.pod_gc_period)?;
    // The first address of the range is the `kubernetes` Service's.
    let service_ip = IpAddr::V4(Ipv4Addr::from(u32::from(service_network.0) + 1));
    let names = ServingNames::standard(node_ip, service_ip, &hostname(), &args.cluster_domain);
    let tls_dir = args.data_dir.join("server").join("tls");
    // Key generation and file writes: off the async runtime.
    let certs = {
        let dir = tls_dir.clone();
        tokio::task::spawn_blocking(move || ClusterCerts::load_or_create(&dir, &names)).await?
    }
    .with_context(|| format!("preparing certificates in {}", tls_dir.display()))?;
    let tokens = match &args.token_auth_file {
        Some(path) => Tokens::load(path).with_context(|| format!("reading {}", path.display()))?,
        None => Tokens::default(),
    };
    let signer = {
        let (dir, domain) = (tls_dir.clone(), args.cluster_domain.clone());
        tokio::task::spawn_blocking(move || TokenSigner::load_or_create(&dir, &domain)).await?
    }
    .context("preparing the service account key")?;
    let config = Config {
        advertise_address: format!("{node_ip}:{}", args.https_listen_port),
        certs: certs.clone(),
        tokens,
        signer: Arc::new(signer),
        service_network,
        node_ports,
    };
    let server = ApiServer::new(store, config);
    bootstrap::run(
        server.rest(),
        &KubernetesService {
            cluster_ip: service_ip,
            endpoint_ip: node_ip,
            port: args.https_listen_port,
        },
    )
    .await
    .context("creating the default namespaces and the kubernetes service")?;
    bootstrap::dns_service(server.rest(), args.agent.cluster_dns()?)
        .await
        .context("creating the kube-dns service")?;
    bootstrap::rbac_defaults(server.rest())
        .await
        .context("creating the default RBAC roles and bindings")?;

    let listen = SocketAddr::new(args.bind_address, args.https_listen_port);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let url = format!("https://127.0.0.1:{}", args.https_listen_port);
    kubeconfig::write(&certs, &url, &args.write_kubeconfig)
        .with_context(|| format!("writing {}", args.write_kubeconfig.display()))?;
    tracing::info!(%listen, kubeconfig = %args.write_kubeconfig.display(), "API server ready");

    // The controller manager is a client of the API like any other, with its own credentials.
    let controller_kubeconfig = args.data_dir.join("server/cred/controller.kubeconfig");
    let controller_cert = certs
        .client_cert("system:kube-controller-manager", &["system:masters"])
        .context("making the controller manager's certificate")?;
    kubeconfig::write_for(&certs, &controller_cert, &url, &controller_kubeconfig)
        .with_context(|| format!("writing {}", controller_kubeconfig.display()))?;
    let load_balancer_pool = args
        .servicelb_address_pool
        .as_deref()
        .map(cox_controllers::service_lb::Pool::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--servicelb-address-pool: {e}"))?;
    let options = cox_controllers::Options {
        load_balancer_pool,
        root_ca: Some(certs.ca.cert_pem.clone()),
        pod_gc,
    };
    // Of several servers on one store, only the holder of a component's Lease runs it.
    let identity = cox_controllers::leader::identity(&hostname());
    let (stop_components, components_stopped) = tokio::sync::watch::channel(false);
    let controllers = tokio::spawn(run_controllers(
        controller_kubeconfig,
        options,
        identity.clone(),
        components_stopped.clone(),
    ));

    // The scheduler, likewise: an API client with its own credentials.
    let scheduler_kubeconfig = args.data_dir.join("server/cred/scheduler.kubeconfig");
    let scheduler_cert = certs
        .client_cert("system:kube-scheduler", &["system:masters"])
        .context("making the scheduler's certificate")?;
    kubeconfig::write_for(&certs, &scheduler_cert, &url, &scheduler_kubeconfig)
        .with_context(|| format!("writing {}", scheduler_kubeconfig.display()))?;
    let scheduler = tokio::spawn(run_scheduler(
        scheduler_kubeconfig,
        identity,
        components_stopped,
    ));

    // The node agent (runtime and kubelet), unless this server is control plane only.
    let (stop_agent, agent_stopped) = tokio::sync::watch::channel(false);
    let agent = if args.disable_agent {
        None
    } else {
        let kubelet = args.data_dir.join("agent/kubelet.kubeconfig");
        let name = args.agent.node_name();
        let cert = certs
            .client_cert(
                &format!("system:node:{name}"),
                &["system:nodes", "system:masters"],
            )
            .context("making the kubelet's certificate")?;
        kubeconfig::write_for(&certs, &cert, &url, &kubelet)
            .with_context(|| format!("writing {}", kubelet.display()))?;
        let mut kubelet_names = ServingNames {
            ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST), node_ip],
            dns: vec!["localhost".into(), name.clone()],
        };
        kubelet_names.ips.dedup();
        let serving = certs
            .kubelet_serving_cert(&name, &kubelet_names)
            .context("making the kubelet's serving certificate")?;
        let setup = crate::agent::Agent {
            data_dir: args.data_dir.clone(),
            node_ip,
            kubeconfig: kubelet,
            cluster_domain: args.cluster_domain.clone(),
            service_cidr: args.service_cidr.clone(),
            control_plane: true,
            kubelet_credentials: cox_kubelet::server::ServingCredentials {
                cert_pem: serving.cert_pem,
                key_pem: serving.key_pem,
                client_ca_pem: certs.ca.cert_pem.clone(),
            },
        };
        Some(crate::agent::start(setup, &args.agent, agent_stopped).await?)
    };

    server
        .serve(listener, async {
            if let Err(err) = shutdown_signal().await {
                tracing::error!(error = %err, "waiting for a shutdown signal");
            }
            // While the API still answers, the components stop and hand their Leases back,
            // so that a restarted server need not wait them out.
            let _ = stop_components.send(true);
            let stopped = async {
                let _ = controllers.await;
                let _ = scheduler.await;
            };
            if tokio::time::timeout(std::time::Duration::from_secs(5), stopped)
                .await
                .is_err()
            {
                tracing::warn!("the controllers and the scheduler did not stop within 5 s");
            }
        })
        .await?;
    let _ = stop_agent.send(true);
    if let Some(agent) = agent {
        agent.stop().await;
    }
    tracing::info!("shutting down");
    Ok(())
}

/// A client of the API server from a component's kubeconfig. The component names itself in
/// its User-Agent as upstream's do (`kube-scheduler/...`), which makes it the manager of the
/// fields it writes.
pub(crate) async fn client_from(
    kubeconfig: &std::path::Path,
    component: &str,
) -> Result<kube::Client> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let mut config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await?;
    let agent = format!("{component}/v{} (coxswain)", env!("CARGO_PKG_VERSION"));
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_str(&agent)?,
    ));
    Ok(kube::Client::try_from(config)?)
}

/// Completes when `stopped` says so (or its sender is gone).
pub(crate) async fn until_stopped(mut stopped: tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

async fn run_controllers(
    kubeconfig: PathBuf,
    options: cox_controllers::Options,
    identity: String,
    stopped: tokio::sync::watch::Receiver<bool>,
) {
    let client = match client_from(&kubeconfig, "kube-controller-manager").await {
        Ok(client) => client,
        Err(err) => return tracing::error!(error = %err, "starting the controllers"),
    };
    let election = Election::new(
        client.clone(),
        "kube-controller-manager",
        &identity,
        Timing::default(),
    );
    election
        .run(
            move || cox_controllers::run(client.clone(), options.clone()),
            until_stopped(stopped),
        )
        .await;
}

async fn run_scheduler(
    kubeconfig: PathBuf,
    identity: String,
    stopped: tokio::sync::watch::Receiver<bool>,
) {
    let client = match client_from(&kubeconfig, "kube-scheduler").await {
        Ok(client) => client,
        Err(err) => return tracing::error!(error = %err, "starting the scheduler"),
    };
    let election = Election::new(
        client.clone(),
        "kube-scheduler",
        &identity,
        Timing::default(),
    );
    election
        .run(
            move || {
                let client = client.clone();
                async move {
                    if let Err(err) = cox_scheduler::run(client).await {
                        tracing::error!(error = %err, "the scheduler stopped");
                    }
                }
            },
            until_stopped(stopped),
        )
        .await;
}

pub(crate) async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_manager_args_set_the_pod_gc_threshold_or_are_refused() {
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let default = pod_gc_settings(&[], 20).unwrap();
        assert_eq!(default.terminated_threshold, 12_500);
        assert_eq!(default.period, std::time::Duration::from_secs(20));
        let set = pod_gc_settings(&args(&["terminated-pod-gc-threshold=10"]), 1).unwrap();
        assert_eq!(set.terminated_threshold, 10);
        let dashed = pod_gc_settings(&args(&["--terminated-pod-gc-threshold=-1"]), 1).unwrap();
        assert_eq!(dashed.terminated_threshold, 0);
        assert!(pod_gc_settings(&args(&["terminated-pod-gc-threshold=many"]), 1).is_err());
        assert!(pod_gc_settings(&args(&["node-monitor-period=5s"]), 1).is_err());
        assert!(pod_gc_settings(&args(&["terminated-pod-gc-threshold"]), 1).is_err());
    }
}
