//! The pod half of the kubelet: runs the pods bound to this node through a CRI runtime and
//! reports their status.
//!
//! A watch on the pods whose `spec.nodeName` is this node feeds one worker per pod (by UID). A
//! worker syncs when its pod changes and every second while it lives; when the pod is gone
//! from the API (or being deleted), it tears the pod down in the runtime. At start, sandboxes
//! of pods the API no longer has are removed.
//!
//! - [`config`]: the CRI sandbox and container configs for a pod.
//! - [`resources`]: requests and limits as cgroup settings; QoS classes.
//! - [`env`]: the environment (`env`, `envFrom`, `valueFrom`, `$(VAR)` expansion).
//! - [`status`]: the pod's status from what the runtime reports.
//! - [`events`]: the events `kubectl describe` shows.
//! - [`probes`]: liveness, readiness and startup probes.
//! - [`hooks`]: postStart and preStop hooks.
//! - [`volumes`]: emptyDir, hostPath, configMap, secret, downwardAPI and projected volumes.
//! - [`tokens`]: ServiceAccount tokens for `serviceAccountToken` projections.
//! - [`hosts`]: the pod's `/etc/hosts` (its own names and `hostAliases`).
//! - [`worker`]: one pod's convergence.

pub mod config;
pub mod env;
pub mod events;
pub mod hooks;
pub mod hosts;
pub mod probes;
pub mod pull_secrets;
pub mod resources;
pub mod status;
pub mod tokens;
pub mod volumes;
pub mod worker;

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::watch;

pub use config::{HostDns, PodDefaults};
use worker::{Context, Cri, PodState};

/// Why the pod half of the kubelet stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the container runtime: {0}")]
    Runtime(String),
    #[error("the API server: {0}")]
    Api(#[from] kube::Error),
}

/// What the pod half needs to know.
#[derive(Debug, Clone)]
pub struct PodOptions {
    pub node_name: String,
    pub node_ip: String,
    /// The CRI runtime's socket (`unix:///...`).
    pub runtime_endpoint: String,
    pub defaults: PodDefaults,
    /// Where the pod workers' figures go (the kubelet API serves them).
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

/// Connects to the runtime, retrying while its socket is not up yet.
async fn connect(endpoint: &str) -> Result<Cri, Error> {
    let mut delay = Duration::from_millis(50);
    let channel = loop {
        match cox_cri::connect(endpoint).await {
            Ok(channel) => break channel,
            Err(e) if delay > Duration::from_secs(5) => {
                return Err(Error::Runtime(format!("cannot reach {endpoint}: {e}")));
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    };
    let mut runtime =
        cox_cri::v1::runtime_service_client::RuntimeServiceClient::new(channel.clone());
    let version = runtime
        .version(cox_cri::v1::VersionRequest::default())
        .await
        .map_err(|s| Error::Runtime(format!("version: {}", s.message())))?
        .into_inner();
    Ok(Cri {
        runtime,
        images: cox_cri::v1::image_service_client::ImageServiceClient::new(channel),
        name: version.runtime_name,
    })
}

/// Runs the node's pods until the watch ends for good.
pub async fn run(client: kube::Client, options: PodOptions) -> Result<(), Error> {
    let cri = connect(&options.runtime_endpoint).await?;
    let context = Context {
        events: events::Events::new(client.clone(), &options.node_name),
        client: client.clone(),
        cri,
        defaults: options.defaults.clone(),
        node_name: options.node_name.clone(),
        node_ip: options.node_ip.clone(),
        metrics: options.metrics.clone(),
        tokens: std::sync::Arc::default(),
    };
    let pods: Api<Pod> = Api::all(client);
    let selector = format!("spec.nodeName={}", options.node_name);
    let mut stream = watcher(pods, watcher::Config::default().fields(&selector)).boxed();
    let mut workers: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut listed: Vec<String> = Vec::new();
    let mut cleaned = false;
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "pod watch failed; retrying");
                continue;
            }
        };
        match event {
            watcher::Event::Init => listed.clear(),
            watcher::Event::InitApply(pod) | watcher::Event::Apply(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                listed.push(uid.clone());
                deliver(&context, &mut workers, uid, Some(pod));
            }
            watcher::Event::Delete(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                if let Some(worker) = workers.remove(&uid) {
                    let _ = worker.send(None);
                }
            }
            watcher::Event::InitDone => {
                // Pods that vanished while the watch was away are torn down too.
                let gone: Vec<String> = workers
                    .keys()
                    .filter(|uid| !listed.contains(uid))
                    .cloned()
                    .collect();
                for uid in gone {
                    if let Some(worker) = workers.remove(&uid) {
                        let _ = worker.send(None);
                    }
                }
                if !cleaned {
                    cleaned = true;
                    remove_orphans(&context, &listed).await;
                }
            }
        }
    }
    Ok(())
}

/// Hands the pod to its worker, starting one for a new pod.
fn deliver(
    context: &Context,
    workers: &mut HashMap<String, watch::Sender<Option<Pod>>>,
    uid: String,
    pod: Option<Pod>,
) {
    if let Some(worker) = workers.get(&uid)
        && worker.send(pod.clone()).is_ok()
    {
        return;
    }
    let (sender, receiver) = watch::channel(pod);
    workers.insert(uid.clone(), sender);
    tokio::spawn(run_worker(context.clone(), uid, receiver));
}

/// One pod's loop: sync on every change and every second; tear down when the pod is gone.
async fn run_worker(context: Context, uid: String, mut pod: watch::Receiver<Option<Pod>>) {
    let mut state = PodState::default();
    let mut grace = 30;
    // Upstream's operation types: the first sync creates, a change updates, the timer syncs.
    let mut operation = "create";
    loop {
        let current = pod.borrow_and_update().clone();
        let Some(current) = current else {
            break;
        };
        grace = current
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(grace);
        let started = std::time::Instant::now();
        if let Err(e) = context.sync(&current, &mut state).await {
            tracing::warn!(pod = %uid, error = %e, "pod sync failed");
        }
        context.metrics.pod_synced(operation, started.elapsed());
        if current.metadata.deletion_timestamp.is_some() {
            return;
        }
        tokio::select! {
            changed = pod.changed() => {
                if changed.is_err() { break }
                operation = "update";
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => operation = "sync",
        }
    }
    if let Err(e) = context.tear_down(&uid, grace).await {
        tracing::warn!(pod = %uid, error = %e, "tearing the pod down failed");
    }
}

/// Removes sandboxes of pods the API server no longer has (after a restart of the kubelet).
async fn remove_orphans(context: &Context, known: &[String]) {
    let mut runtime = context.cri.runtime.clone();
    let Ok(response) = runtime
        .list_pod_sandbox(cox_cri::v1::ListPodSandboxRequest { filter: None })
        .await
    else {
        return;
    };
    for sandbox in response.into_inner().items {
        let Some(uid) = sandbox.labels.get(config::POD_UID) else {
            continue;
        };
        if !known.contains(uid) {
            tracing::info!(pod = %uid, "removing the sandbox of a pod the API server no longer has");
            if let Err(e) = context.tear_down(uid, 0).await {
                tracing::warn!(pod = %uid, error = %e, "removing an orphaned sandbox failed");
            }
        }
    }
}
