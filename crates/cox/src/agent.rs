//! The node agent that `cox server` (and later `cox agent`) runs: the container runtime, served
//! as CRI on its socket, the kubelet (the Node, its Lease, and the pods bound to it) and the
//! service proxy, clients of the API server with the kubelet's certificate.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The agent's flags, k3s's names.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// This node's name (default: the host name).
    #[arg(long)]
    node_name: Option<String>,
    /// Labels for the Node, `key=value`, repeatable.
    #[arg(long)]
    node_label: Vec<String>,
    /// Taints for the Node, `key=value:Effect`, repeatable.
    #[arg(long)]
    node_taint: Vec<String>,
    /// The pods' address range; this node takes its first /24.
    #[arg(long, default_value = "10.42.0.0/16")]
    cluster_cidr: String,
    /// The cluster DNS server pods are given.
    #[arg(long, default_value = "10.43.0.10")]
    cluster_dns: String,
    /// The resolver settings `dnsPolicy: Default` pods get, and where the cluster DNS
    /// forwards names outside the cluster (k3s's flag).
    #[arg(long, default_value = "/etc/resolv.conf")]
    resolv_conf: PathBuf,
    /// Where pods' log directories go.
    #[arg(long, default_value = "/var/log/pods", hide = true)]
    pod_log_dir: PathBuf,
    #[command(flatten)]
    runtime: crate::runtime::RuntimeOptions,
}

impl AgentArgs {
    pub fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_lowercase())
                .unwrap_or_else(|_| "localhost".into())
        })
    }

    /// The cluster DNS server's address (the `kube-dns` Service's ClusterIP).
    pub fn cluster_dns(&self) -> Result<IpAddr> {
        self.cluster_dns
            .parse()
            .context("--cluster-dns must be an IP address")
    }

    /// This node's pod range: the first /24 of the cluster's.
    fn pod_cidr(&self) -> Result<String> {
        let (network, _) = self
            .cluster_cidr
            .split_once('/')
            .context("--cluster-cidr must be ADDRESS/BITS")?;
        let network: std::net::Ipv4Addr = network.parse().context("--cluster-cidr address")?;
        Ok(format!("{network}/24"))
    }
}

/// What the server decided for the agent.
#[derive(Debug)]
pub struct Agent {
    pub data_dir: PathBuf,
    pub node_ip: IpAddr,
    /// The kubelet's kubeconfig.
    pub kubeconfig: PathBuf,
    pub cluster_domain: String,
    /// The ClusterIP range, for the proxy's rules.
    pub service_cidr: String,
    pub control_plane: bool,
    /// The kubelet API's serving certificate and the CA of its clients.
    pub kubelet_credentials: cox_kubelet::server::ServingCredentials,
}

/// The agent's running parts.
#[derive(Debug)]
pub struct Running {
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops the kubelet's loops and the runtime's server. Containers keep running.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the runtime and the kubelet; they run until `stopped` turns true.
pub async fn start(
    agent: Agent,
    args: &AgentArgs,
    stopped: watch::Receiver<bool>,
) -> Result<Running> {
    let pod_cidr = args.pod_cidr()?;
    let name = args.node_name();
    let config = args.runtime.config(&agent.data_dir, &pod_cidr)?;
    let endpoint = format!("unix://{}", config.socket().display());
    let until_stopped = crate::server::until_stopped;
    let data_dir = agent.data_dir.clone();
    let runtime_stop = until_stopped(stopped.clone());
    let runtime = tokio::spawn(async move {
        if let Err(e) = crate::runtime::serve(config, &data_dir, runtime_stop).await {
            tracing::error!(error = %format!("{e:#}"), "the container runtime stopped");
        }
    });

    let client = crate::server::client_from(&agent.kubeconfig, "kubelet").await?;
    let mut node =
        cox_kubelet::NodeConfig::new(&name, agent.node_ip, agent.data_dir.join("agent/kubelet"));
    node.control_plane = agent.control_plane;
    node.pod_cidr = Some(pod_cidr.clone());
    node.taints = cox_kubelet::parse_taints(&args.node_taint).context("--node-taint")?;
    node.labels = cox_kubelet::parse_labels(&args.node_label).context("--node-label")?;
    // The kubelet's figures: the pod workers record them, its API serves them.
    let metrics = std::sync::Arc::new(cox_kubelet::metrics::Metrics::default());
    let serving = cox_kubelet::server::ServerConfig {
        address: std::net::SocketAddr::new(IpAddr::from([0, 0, 0, 0]), node.kubelet_port),
        credentials: agent.kubelet_credentials.clone(),
        node_name: name.clone(),
        runtime_endpoint: endpoint.clone(),
        metrics: metrics.clone(),
    };
    let (api_client, api_stop) = (client.clone(), until_stopped(stopped.clone()));
    let kubelet_api = tokio::spawn(async move {
        if let Err(e) = cox_kubelet::server::serve(api_client, serving, api_stop).await {
            tracing::error!(error = %e, "the kubelet's API stopped");
        }
    });
    let node_client = client.clone();
    let node_stop = until_stopped(stopped.clone());
    let node_agent = tokio::spawn(async move {
        if let Err(e) = cox_kubelet::run_node_agent(node_client, node, node_stop).await {
            tracing::error!(error = %e, "the kubelet's node agent stopped");
        }
    });

    let resolv_conf = std::fs::read_to_string(&args.resolv_conf)
        .with_context(|| format!("reading --resolv-conf {}", args.resolv_conf.display()))?;
    let host_dns = cox_kubelet::pods::HostDns::parse(&resolv_conf);

    let proxy_config = cox_proxy::ProxyConfig {
        node_name: name.clone(),
        networks: cox_proxy::Networks {
            cluster_cidr: args.cluster_cidr.clone(),
            node_pod_cidr: pod_cidr.clone(),
            service_cidr: agent.service_cidr.clone(),
        },
        min_sync_interval: std::time::Duration::from_millis(10),
    };
    let (proxy_client, proxy_stop) = (client.clone(), until_stopped(stopped.clone()));
    let proxy = tokio::spawn(async move {
        if let Err(e) = cox_proxy::run(proxy_client, proxy_config, proxy_stop).await {
            tracing::error!(error = %format!("{e:#}"), "the service proxy stopped");
        }
    });

    let dns = start_dns(
        &client,
        &agent,
        &name,
        &resolv_conf,
        until_stopped(stopped.clone()),
    )
    .await?;

    let options = cox_kubelet::pods::PodOptions {
        node_name: name,
        node_ip: agent.node_ip.to_string(),
        runtime_endpoint: endpoint,
        defaults: cox_kubelet::pods::PodDefaults {
            log_root: args.pod_log_dir.clone(),
            cluster_dns: args.cluster_dns.clone(),
            cluster_domain: agent.cluster_domain.clone(),
            pods_root: agent.data_dir.join("agent/kubelet/pods"),
            host_dns: host_dns.clone(),
        },
        metrics,
    };
    let pods = tokio::spawn(async move {
        if let Err(e) = cox_kubelet::pods::run(client, options).await {
            tracing::error!(error = %e, "the kubelet's pod workers stopped");
        }
    });
    Ok(Running {
        tasks: vec![pods, dns, proxy, kubelet_api, node_agent, runtime],
    })
}

/// The port the cluster DNS serves on, at the node's address; the `kube-dns` Service
/// forwards to it.
const DNS_PORT: u16 = 53;

/// Binds the cluster DNS on this node's address (so a port conflict stops the start with a
/// clear error), publishes that address as the `kube-dns` Service's Endpoints, and serves.
async fn start_dns(
    client: &kube::Client,
    agent: &Agent,
    node_name: &str,
    resolv_conf: &str,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<()>> {
    let config = cox_dns::DnsConfig {
        listen: vec![std::net::SocketAddr::new(agent.node_ip, DNS_PORT)],
        cluster_domain: agent.cluster_domain.clone(),
        upstreams: cox_dns::upstreams_from_resolv_conf(resolv_conf),
    };
    let server = cox_dns::Server::bind(&config)
        .await
        .context("starting the cluster DNS")?;
    let domain = cox_dns::ClusterDomain::parse(&agent.cluster_domain)?;
    let (dns_client, publish_client) = (client.clone(), client.clone());
    let (node_ip, node_name) = (agent.node_ip, node_name.to_owned());
    Ok(tokio::spawn(async move {
        tokio::spawn(cox_dns::publish_endpoints(
            publish_client,
            node_ip,
            DNS_PORT,
            node_name,
        ));
        if let Err(e) = cox_dns::serve_cluster(server, dns_client, &domain, stop).await {
            tracing::error!(error = %e, "the cluster DNS stopped");
        }
    }))
}
