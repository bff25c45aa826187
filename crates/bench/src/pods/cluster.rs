//! The benchmark's cluster: `cox server` with its node agent, in a network namespace and a
//! data directory of the benchmark's own, the images already imported (pre-pulled).
//!
//! The agent programs nftables and a bridge, so the server never runs in the host's network
//! namespace: it is started with `nsenter --net` (only the network namespace, so the runtime's
//! mounts stay visible to the cleanup here). Its API server listens on the namespace's
//! 127.0.0.1, so the benchmark's client runs on a thread that entered the namespace too.
//!
//! Cleanup, also after an error: pods and deployments are removed through the API (the
//! kubelet tears each pod down) and whatever sandbox is left through the CRI; then the server
//! stops; then what a crash could leave is removed by force (runc containers, the pods'
//! cgroups, mounts under the data directory); then the namespace and the directory go.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cleanup::ip;
use cox_cri::v1;
use cox_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams};

/// The node's name, and the namespace the benchmark's objects live in.
pub const NODE: &str = "node-1";
pub const NAMESPACE: &str = "default";
/// The images dropped into `<data-dir>/agent/images`, imported when the server starts.
const IMAGES: [&str; 2] = ["busybox.oci.tar", "pause.oci.tar"];

#[derive(Debug)]
pub struct Cluster {
    netns: String,
    dir: tempfile::TempDir,
    server: Option<Child>,
}

impl Cluster {
    /// Makes the namespace and the data directory, and starts the server in them.
    pub fn start(cox_binary: &Path, images: &Path) -> Result<Self> {
        let netns = format!("cox-bench-pods-{}", std::process::id());
        ip(&["netns", "add", &netns])?;
        // From here on, dropping the cluster undoes whatever was done.
        let mut cluster = Cluster {
            netns,
            dir: tempfile::Builder::new()
                .prefix("cox-bench-pods")
                .tempdir()?,
            server: None,
        };
        ip(&["-n", &cluster.netns, "link", "set", "lo", "up"])?;
        let seeded = cluster.data_dir().join("agent/images");
        std::fs::create_dir_all(&seeded)?;
        for name in IMAGES {
            std::fs::copy(images.join(name), seeded.join(name)).with_context(|| {
                format!(
                    "copying {} (does `dev/build-images {}` run?)",
                    images.join(name).display(),
                    images.display()
                )
            })?;
        }
        // A resolver nobody answers at: the benchmark's pods never reach a real one.
        let resolv_conf = cluster.dir.path().join("resolv.conf");
        std::fs::write(&resolv_conf, "nameserver 127.0.0.53\n")?;
        let log = std::fs::File::create(cluster.log_path())?;
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", cluster.netns))
            .arg(cox_binary)
            .arg("server")
            .args(["--node-name", NODE, "--pod-log-dir"])
            .arg(cluster.dir.path().join("pod-logs"))
            .arg("--resolv-conf")
            .arg(&resolv_conf)
            .arg("--data-dir")
            .arg(cluster.data_dir())
            .arg("--write-kubeconfig")
            .arg(cluster.kubeconfig())
            .args(["--bind-address", "127.0.0.1", "--node-ip", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} server", cox_binary.display()))?;
        cluster.server = Some(child);
        Ok(cluster)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn cri_endpoint(&self) -> String {
        format!(
            "unix://{}",
            self.data_dir().join("agent/runtime/cri.sock").display()
        )
    }

    /// The end of the server's log, for errors.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Runs `work` with a client of the server once the node is Ready, then removes every
    /// pod and deployment (also when `work` failed). Blocks: `work` runs on a thread of its
    /// own inside the cluster's network namespace, on a runtime of that thread.
    pub fn session<T, F, Fut>(&mut self, work: F) -> Result<T>
    where
        T: Send,
        F: FnOnce(kube::Client) -> Fut + Send,
        Fut: Future<Output = Result<T>>,
    {
        let netns_path = format!("/var/run/netns/{}", self.netns);
        let (kubeconfig, endpoint) = (self.kubeconfig(), self.cri_endpoint());
        let outcome: Result<T> = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    enter_netns(&netns_path)?;
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async {
                        let client = connect(&kubeconfig).await?;
                        let worked = work(client.clone()).await;
                        let cleaned = async {
                            remove_workloads(&client).await?;
                            remove_sandboxes(&endpoint).await
                        }
                        .await;
                        let value = worked?;
                        cleaned.context("removing the benchmark's pods")?;
                        Ok(value)
                    })
                })
                .join()
                .map_err(|_| anyhow::anyhow!("the benchmark's client thread panicked"))?
        });
        outcome.map_err(|e| {
            e.context(format!(
                "the server's log ends with:\n{}\n--",
                self.log_tail()
            ))
        })
    }

    /// Stops the server: SIGTERM, SIGKILL after 10 s. `nsenter` execs the server, so the
    /// child's pid is the server's.
    fn stop_server(&mut self) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        let pid = server.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(server.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = server.kill();
                let _ = server.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// After the server stopped: containers runc still knows, the pods' cgroups, mounts
    /// under the directory. Nothing is left when the pods were removed through the API; this
    /// is for a benchmark that failed half-way.
    fn force_clean(&self) {
        crate::cleanup::force_clean(&self.data_dir().join("agent/runtime"), self.dir.path());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_server();
        self.force_clean();
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

/// Moves the calling thread (only) into the network namespace at `path`.
fn enter_netns(path: &str) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {path}"))?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&file),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .context("entering the cluster's network namespace")
}

/// A client from the admin kubeconfig, once the API server is ready and the node is Ready.
async fn connect(kubeconfig: &Path) -> Result<kube::Client> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = loop {
        if let Ok(client) = try_connect(kubeconfig).await {
            break client;
        }
        if Instant::now() > deadline {
            bail!("cox server did not become ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let nodes: Api<Node> = Api::all(client.clone());
    loop {
        let node = nodes.get_opt(NODE).await?;
        let ready = node
            .and_then(|n| n.status)
            .and_then(|s| s.conditions)
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            return Ok(client);
        }
        if Instant::now() > deadline {
            bail!("node {NODE} did not become Ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn try_connect(kubeconfig: &Path) -> Result<kube::Client> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let request = http::Request::get("/readyz").body(Vec::new())?;
    client.request_text(request).await?;
    Ok(client)
}

/// Deletes every deployment and pod of the benchmark's namespace and waits until the API
/// holds none: the kubelet removes a pod from the API once it has torn it down.
pub async fn remove_workloads(client: &kube::Client) -> Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let everything = ListParams::default();
    deployments
        .delete_collection(&DeleteParams::background(), &everything)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    for round in 0.. {
        // Again now and then: a ReplicaSet not yet collected may have made new ones.
        if round % 10 == 0 {
            pods.delete_collection(&DeleteParams::default(), &everything)
                .await?;
        }
        let left = pods.list_metadata(&everything).await?.items.len();
        if left == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{left} pods still there after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Waits until the runtime holds no sandbox; removes through the CRI any still there after
/// 30 s.
async fn remove_sandboxes(cri_endpoint: &str) -> Result<()> {
    let channel = cox_cri::connect(cri_endpoint).await?;
    let mut runtime = RuntimeServiceClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sandboxes = runtime
            .list_pod_sandbox(v1::ListPodSandboxRequest { filter: None })
            .await?
            .into_inner()
            .items;
        if sandboxes.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let left = sandboxes.len();
            for sandbox in sandboxes {
                let id = sandbox.id;
                let _ = runtime
                    .stop_pod_sandbox(v1::StopPodSandboxRequest {
                        pod_sandbox_id: id.clone(),
                    })
                    .await;
                let _ = runtime
                    .remove_pod_sandbox(v1::RemovePodSandboxRequest { pod_sandbox_id: id })
                    .await;
            }
            bail!("{left} sandboxes still there after their pods went; removed by force");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
