//! One pod's worker: converges the runtime to the pod's spec through the CRI, and writes back
//! the pod's status. It runs whenever the pod changes, and every second while it lives (that is
//! how container exits, back-offs and readiness are noticed).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cox_cri::v1;
use cox_cri::v1::image_service_client::ImageServiceClient;
use cox_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use tonic::transport::Channel;

use super::config::{self, CONTAINER_NAME, POD_UID, PodDefaults};
use super::env;
use super::events::Events;
use super::status::{self, ContainerView, Observed};

/// Upstream's container restart back-off: 10 s, doubling, at most 5 minutes.
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The CRI runtime, through its two services.
#[derive(Debug, Clone)]
pub struct Cri {
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
    /// The runtime's name, for container IDs (`cox://...`).
    pub name: String,
}

/// What one worker keeps between syncs.
#[derive(Debug, Default)]
pub struct PodState {
    /// Per container: when it may next restart, and the back-off after that.
    backoff: HashMap<String, (Instant, Duration)>,
    /// Per container: why it is waiting, when the kubelet knows (image pulls, config errors).
    waiting: HashMap<String, (String, String)>,
    probes: super::probes::Probes,
    /// When the pod's volumes were last refreshed (ConfigMap and Secret contents).
    volumes_refreshed: Option<Instant>,
    /// When this worker first saw the pod, until its start is reported.
    first_seen: Option<Instant>,
    start_reported: bool,
}

/// How often projected volume contents are refreshed from the API.
const VOLUME_REFRESH: Duration = Duration::from_secs(2);

/// The pod's restart policy (upstream's default: `Always`).
fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// The pod's sandbox, as a container's sync needs it.
#[derive(Debug, Clone, Copy)]
struct Sandbox<'a> {
    id: &'a str,
    pod_ip: Option<&'a str>,
}

/// Everything a worker needs.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub cri: Cri,
    pub defaults: PodDefaults,
    pub node_name: String,
    pub node_ip: String,
    pub events: Events,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The pods' ServiceAccount tokens.
    pub tokens: std::sync::Arc<super::tokens::Tokens>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("node_name", &self.node_name)
            .field("runtime", &self.cri.name)
            .finish_non_exhaustive()
    }
}

type Result<T> = std::result::Result<T, super::Error>;

fn cri_error(what: &str) -> impl Fn(tonic::Status) -> super::Error + '_ {
    move |status| super::Error::Runtime(format!("{what}: {}", status.message()))
}

impl Context {
    /// The sandboxes the runtime has for a pod, newest first.
    async fn sandboxes(&self, uid: &str) -> Result<Vec<v1::PodSandbox>> {
        let mut runtime = self.cri.runtime.clone();
        let mut items = runtime
            .list_pod_sandbox(v1::ListPodSandboxRequest {
                filter: Some(v1::PodSandboxFilter {
                    label_selector: HashMap::from([(POD_UID.to_string(), uid.to_string())]),
                    ..Default::default()
                }),
            })
            .await
            .map_err(cri_error("listing pod sandboxes"))?
            .into_inner()
            .items;
        items.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(items)
    }

    /// The containers of a sandbox, newest first.
    async fn containers(&self, sandbox: &str) -> Result<Vec<v1::Container>> {
        let mut runtime = self.cri.runtime.clone();
        let mut containers = runtime
            .list_containers(v1::ListContainersRequest {
                filter: Some(v1::ContainerFilter {
                    pod_sandbox_id: sandbox.to_string(),
                    ..Default::default()
                }),
            })
            .await
            .map_err(cri_error("listing containers"))?
            .into_inner()
            .containers;
        containers.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        Ok(containers)
    }

    async fn container_status(&self, id: &str) -> Result<v1::ContainerStatus> {
        let mut runtime = self.cri.runtime.clone();
        runtime
            .container_status(v1::ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })
            .await
            .map_err(cri_error("reading a container's status"))?
            .into_inner()
            .status
            .ok_or_else(|| super::Error::Runtime("the runtime returned no container status".into()))
    }

    /// Stops and removes everything the runtime has for pod `uid` (`grace` seconds for the
    /// containers' stop signal).
    pub async fn tear_down(&self, uid: &str, grace: i64) -> Result<()> {
        let mut runtime = self.cri.runtime.clone();
        for sandbox in self.sandboxes(uid).await? {
            for container in self.containers(&sandbox.id).await? {
                if container.state == v1::ContainerState::ContainerRunning as i32 {
                    runtime
                        .stop_container(v1::StopContainerRequest {
                            container_id: container.id.clone(),
                            timeout: grace,
                        })
                        .await
                        .map_err(cri_error("stopping a container"))?;
                }
            }
            runtime
                .stop_pod_sandbox(v1::StopPodSandboxRequest {
                    pod_sandbox_id: sandbox.id.clone(),
                })
                .await
                .map_err(cri_error("stopping a pod sandbox"))?;
            runtime
                .remove_pod_sandbox(v1::RemovePodSandboxRequest {
                    pod_sandbox_id: sandbox.id,
                })
                .await
                .map_err(cri_error("removing a pod sandbox"))?;
        }
        super::volumes::tear_down(&self.defaults.pods_root, uid);
        self.tokens.forget(uid);
        Ok(())
    }

    /// Brings the runtime to the pod's spec, then writes the pod's status.
    pub async fn sync(&self, pod: &Pod, state: &mut PodState) -> Result<()> {
        let (namespace, name, uid) = config::identity(pod);
        state.first_seen.get_or_insert_with(Instant::now);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        if pod.metadata.deletion_timestamp.is_some() {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .or_else(|| {
                    pod.spec
                        .as_ref()
                        .and_then(|s| s.termination_grace_period_seconds)
                })
                .unwrap_or(30);
            self.stop_with_hooks(pod, &uid).await?;
            self.tear_down(&uid, grace).await?;
            // The kubelet ends a graceful deletion once the pod is gone from the node.
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(kube::api::Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            let _ = pods.delete(&name, &params).await;
            return Ok(());
        }
        let finished = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        let sandbox = self.ensure_sandbox(pod, &uid, finished).await?;
        if !finished
            && state
                .volumes_refreshed
                .is_none_or(|t| t.elapsed() >= VOLUME_REFRESH)
        {
            // ConfigMap and Secret contents reach running containers by this refresh.
            if let Err(e) =
                super::volumes::set_up(&self.client, &self.tokens, &self.defaults.pods_root, pod)
                    .await
            {
                tracing::debug!(pod = %uid, error = %e, "volumes not refreshed");
            }
            state.volumes_refreshed = Some(Instant::now());
        }
        let mut observed = Observed {
            pod_ip: None,
            host_ip: self.node_ip.clone(),
            runtime_name: self.cri.name.clone(),
            containers: HashMap::new(),
        };
        if let Some(sandbox) = &sandbox {
            let mut runtime = self.cri.runtime.clone();
            let status = runtime
                .pod_sandbox_status(v1::PodSandboxStatusRequest {
                    pod_sandbox_id: sandbox.clone(),
                    verbose: false,
                })
                .await
                .map_err(cri_error("reading the sandbox's status"))?
                .into_inner();
            observed.pod_ip = status
                .status
                .and_then(|s| s.network)
                .map(|n| n.ip)
                .filter(|ip| !ip.is_empty())
                .or_else(|| {
                    pod.spec
                        .as_ref()
                        .and_then(|s| s.host_network)
                        .filter(|host| *host)
                        .map(|_| self.node_ip.clone())
                });
            let containers = self.containers(sandbox).await?;
            let live: Vec<String> = containers.iter().map(|c| c.id.clone()).collect();
            state.probes.keep_only(&live);
            let pod_ip = observed.pod_ip.clone();
            let sandbox = Sandbox {
                id: sandbox,
                pod_ip: pod_ip.as_deref(),
            };
            let initialized = self
                .sync_init_containers(pod, sandbox, &containers, state, finished, &mut observed)
                .await?;
            let policy = restart_policy(pod);
            for container in pod.spec.iter().flat_map(|s| s.containers.iter()) {
                let view = if initialized {
                    self.sync_container(
                        pod,
                        sandbox,
                        container,
                        &containers,
                        state,
                        finished,
                        policy,
                    )
                    .await?
                } else {
                    // Upstream's reason for containers that wait for the init containers.
                    ContainerView {
                        waiting: Some(("PodInitializing".into(), String::new())),
                        ..self.observe_container(container, &containers).await?
                    }
                };
                observed.containers.insert(container.name.clone(), view);
            }
        }
        let new_status = status::pod_status(pod, &observed);
        if !state.start_reported && new_status.phase.as_deref() == Some("Running") {
            state.start_reported = true;
            let first_seen = state.first_seen.unwrap_or_else(Instant::now);
            self.metrics.pod_started(first_seen.elapsed());
        }
        let changed =
            serde_json::to_value(&new_status).ok() != serde_json::to_value(&pod.status).ok();
        if changed {
            let patch = serde_json::json!({"status": new_status});
            pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(super::Error::Api)?;
        }
        Ok(())
    }

    /// The pod's ready sandbox, made if needed (none for a finished pod that has none).
    async fn ensure_sandbox(&self, pod: &Pod, uid: &str, finished: bool) -> Result<Option<String>> {
        let sandboxes = self.sandboxes(uid).await?;
        if let Some(ready) = sandboxes
            .iter()
            .find(|s| s.state == v1::PodSandboxState::SandboxReady as i32)
        {
            return Ok(Some(ready.id.clone()));
        }
        if finished {
            return Ok(sandboxes.first().map(|s| s.id.clone()));
        }
        let attempt = u32::try_from(sandboxes.len()).unwrap_or(u32::MAX);
        let sandbox_config = config::sandbox_config(&self.defaults, pod, attempt);
        let mut runtime = self.cri.runtime.clone();
        let id = runtime
            .run_pod_sandbox(v1::RunPodSandboxRequest {
                config: Some(sandbox_config),
                runtime_handler: String::new(),
            })
            .await
            .map_err(cri_error("creating the pod sandbox"))?
            .into_inner()
            .pod_sandbox_id;
        self.metrics.sandbox_started();
        Ok(Some(id))
    }

    /// Runs the init containers in order, each to success before the next starts, as
    /// upstream does; a sidecar (an init container with `restartPolicy: Always`) needs only to
    /// be running, and keeps being restarted. Returns whether the pod is initialized, so the
    /// regular containers may start. Once a regular container exists in the sandbox, the init
    /// containers are not run again (only sidecars are kept up).
    async fn sync_init_containers(
        &self,
        pod: &Pod,
        sandbox: Sandbox<'_>,
        containers: &[v1::Container],
        state: &mut PodState,
        finished: bool,
        observed: &mut Observed,
    ) -> Result<bool> {
        let Some(spec) = &pod.spec else {
            return Ok(true);
        };
        let regular_started = containers.iter().any(|c| {
            spec.containers
                .iter()
                .any(|r| c.labels.get(CONTAINER_NAME) == Some(&r.name))
        });
        let mut initialized = true;
        for init in spec.init_containers.iter().flatten() {
            let sidecar = init.restart_policy.as_deref() == Some("Always");
            if !initialized || regular_started && !sidecar {
                let view = self.observe_container(init, containers).await?;
                observed.containers.insert(init.name.clone(), view);
                continue;
            }
            let policy = match (sidecar, restart_policy(pod)) {
                (true, _) => "Always",
                (false, "Never") => "Never",
                (false, _) => "OnFailure",
            };
            let view = self
                .sync_container(pod, sandbox, init, containers, state, finished, policy)
                .await?;
            let current = view.current.as_ref();
            let done = if sidecar {
                current.is_some_and(|c| c.state == v1::ContainerState::ContainerRunning as i32)
            } else {
                current.is_some_and(|c| {
                    c.state == v1::ContainerState::ContainerExited as i32 && c.exit_code == 0
                })
            };
            initialized &= done;
            observed.containers.insert(init.name.clone(), view);
        }
        Ok(initialized)
    }

    /// What the runtime has of one container: its newest attempt and the one before.
    async fn observe_container(
        &self,
        container: &Container,
        containers: &[v1::Container],
    ) -> Result<ContainerView> {
        let mine: Vec<&v1::Container> = containers
            .iter()
            .filter(|c| c.labels.get(CONTAINER_NAME) == Some(&container.name))
            .collect();
        let mut view = ContainerView::default();
        if let Some(latest) = mine.first() {
            view.current = Some(self.container_status(&latest.id).await?);
            view.restart_count = latest
                .metadata
                .as_ref()
                .map(|m| i32::try_from(m.attempt).unwrap_or(i32::MAX))
                .unwrap_or(0);
            if let Some(previous) = mine.get(1) {
                view.previous = Some(self.container_status(&previous.id).await?);
            }
        }
        Ok(view)
    }

    /// Converges one container: starts it, restarts it by `policy` (with back-off), or leaves
    /// it; returns what the status needs.
    #[allow(clippy::too_many_arguments)]
    async fn sync_container(
        &self,
        pod: &Pod,
        sandbox: Sandbox<'_>,
        container: &Container,
        containers: &[v1::Container],
        state: &mut PodState,
        finished: bool,
        policy: &str,
    ) -> Result<ContainerView> {
        let mut view = self.observe_container(container, containers).await?;
        let current_state = view.current.as_ref().map(|c| c.state);
        let start_attempt = match current_state {
            Some(s) if s == v1::ContainerState::ContainerRunning as i32 => {
                state.waiting.remove(&container.name);
                self.probe(pod, container, &mut view, state, sandbox.pod_ip)
                    .await;
                return Ok(view);
            }
            Some(s) if s == v1::ContainerState::ContainerCreated as i32 => {
                // Created but not started (a restart of the kubelet in between): start it.
                let id = view
                    .current
                    .as_ref()
                    .map(|c| c.id.clone())
                    .unwrap_or_default();
                self.start(pod, container, &id, sandbox.pod_ip).await?;
                view.current = Some(self.container_status(&id).await?);
                return Ok(view);
            }
            Some(_) => {
                let exit = view.current.as_ref().map(|c| c.exit_code).unwrap_or(0);
                let restart = !finished
                    && match policy {
                        "Never" => false,
                        "OnFailure" => exit != 0,
                        _ => true,
                    };
                if !restart {
                    return Ok(view);
                }
                let (next, delay) = state
                    .backoff
                    .get(&container.name)
                    .copied()
                    .unwrap_or((Instant::now(), BACKOFF_START));
                if Instant::now() < next {
                    let message = format!(
                        "back-off {}s restarting failed container={} pod={}_{}({})",
                        delay.as_secs() / 2,
                        container.name,
                        pod.metadata.name.as_deref().unwrap_or_default(),
                        pod.metadata.namespace.as_deref().unwrap_or_default(),
                        pod.metadata.uid.as_deref().unwrap_or_default()
                    );
                    if state.waiting.get(&container.name).map(|w| w.0.as_str())
                        != Some("CrashLoopBackOff")
                    {
                        self.events
                            .warning(
                                pod,
                                "BackOff",
                                &format!(
                                    "Back-off restarting failed container {} in pod {}",
                                    container.name,
                                    pod.metadata.name.as_deref().unwrap_or_default()
                                ),
                            )
                            .await;
                    }
                    state
                        .waiting
                        .insert(container.name.clone(), ("CrashLoopBackOff".into(), message));
                    view.waiting = state.waiting.get(&container.name).cloned();
                    return Ok(view);
                }
                state.backoff.insert(
                    container.name.clone(),
                    (Instant::now() + delay, (delay * 2).min(BACKOFF_MAX)),
                );
                u32::try_from(view.restart_count).unwrap_or(0) + 1
            }
            // A finished pod starts nothing new.
            None if finished => return Ok(view),
            None => 0,
        };
        match self
            .create_and_start(pod, sandbox, container, start_attempt, state)
            .await
        {
            Ok(id) => {
                let init = pod
                    .spec
                    .iter()
                    .flat_map(|s| s.init_containers.iter().flatten())
                    .any(|c| c.name == container.name);
                self.metrics
                    .container_started(if init { "init_container" } else { "container" });
                state.waiting.remove(&container.name);
                view.previous = view.current.take();
                view.current = Some(self.container_status(&id).await?);
                view.restart_count = i32::try_from(start_attempt).unwrap_or(i32::MAX);
            }
            Err(reason) => {
                if reason.0 == "ErrImagePull" {
                    let delay = state
                        .backoff
                        .get(&container.name)
                        .map_or(BACKOFF_START, |b| b.1);
                    state.backoff.insert(
                        container.name.clone(),
                        (Instant::now() + delay, (delay * 2).min(BACKOFF_MAX)),
                    );
                }
                state.waiting.insert(container.name.clone(), reason);
                view.waiting = state.waiting.get(&container.name).cloned();
            }
        }
        Ok(view)
    }

    /// Runs the running container's probes: readiness into the view, a failed liveness or
    /// startup probe kills the container (the restart policy brings it back).
    async fn probe(
        &self,
        pod: &Pod,
        container: &Container,
        view: &mut ContainerView,
        state: &mut PodState,
        pod_ip: Option<&str>,
    ) {
        let Some(current) = &view.current else { return };
        if container.liveness_probe.is_none()
            && container.readiness_probe.is_none()
            && container.startup_probe.is_none()
        {
            return;
        }
        let now_ns = jiff::Timestamp::now().as_nanosecond();
        let age = u64::try_from(now_ns - i128::from(current.started_at)).unwrap_or(0);
        let started = Instant::now()
            .checked_sub(Duration::from_nanos(age))
            .unwrap_or_else(Instant::now);
        let verdict = state
            .probes
            .check(&self.cri, container, &current.id, started, pod_ip)
            .await;
        view.ready = Some(verdict.ready);
        for message in &verdict.unhealthy {
            self.events.warning(pod, "Unhealthy", message).await;
        }
        if let Some(reason) = verdict.kill {
            self.events.normal(pod, "Killing", &reason).await;
            self.stop_container(pod, container, &current.id, pod_ip, true)
                .await;
            view.ready = Some(false);
        }
    }

    /// Pulls (by the pull policy), creates and starts a container; on failure, the waiting
    /// reason and message upstream's kubelet shows.
    async fn create_and_start(
        &self,
        pod: &Pod,
        sandbox: Sandbox<'_>,
        container: &Container,
        attempt: u32,
        state: &PodState,
    ) -> std::result::Result<String, (String, String)> {
        let image = container.image.clone().unwrap_or_default();
        let image_ref = self.ensure_image(pod, container, &image, state).await?;
        let env = env::resolve(&self.client, pod, container, &self.node_ip)
            .await
            .map_err(|e| ("CreateContainerConfigError".to_string(), e))?;
        let volumes =
            super::volumes::set_up(&self.client, &self.tokens, &self.defaults.pods_root, pod)
                .await
                .map_err(|e| ("CreateContainerConfigError".to_string(), e))?;
        let mut mounts = super::volumes::mounts(container, &volumes)
            .map_err(|e| ("CreateContainerConfigError".to_string(), e))?;
        if !mounts.iter().any(|m| m.container_path == "/etc/hosts") {
            let node_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            let text = super::hosts::contents(
                pod,
                sandbox.pod_ip,
                &self.defaults.cluster_domain,
                &node_hosts,
            );
            let path = super::hosts::write(&self.defaults.pods_root, pod, &text)
                .map_err(|e| ("CreateContainerConfigError".to_string(), e.to_string()))?;
            mounts.push(v1::Mount {
                container_path: "/etc/hosts".into(),
                host_path: path.display().to_string(),
                ..Default::default()
            });
        }
        let mut container_config =
            config::container_config(pod, container, &image_ref, attempt, env);
        container_config.mounts = mounts;
        let sandbox_config = config::sandbox_config(&self.defaults, pod, 0);
        let mut runtime = self.cri.runtime.clone();
        let id = runtime
            .create_container(v1::CreateContainerRequest {
                pod_sandbox_id: sandbox.id.to_string(),
                config: Some(container_config),
                sandbox_config: Some(sandbox_config),
            })
            .await
            .map_err(|s| {
                let message = s.message().to_string();
                let pod = pod.clone();
                let events = self.events.clone();
                let warning = format!("Error: {message}");
                tokio::spawn(async move { events.warning(&pod, "Failed", &warning).await });
                ("CreateContainerError".to_string(), message)
            })?
            .into_inner()
            .container_id;
        self.events
            .normal(
                pod,
                "Created",
                &format!("Created container: {}", container.name),
            )
            .await;
        self.start(pod, container, &id, sandbox.pod_ip)
            .await
            .map_err(|e| {
                let message = e.to_string();
                match message.split_once("PostStartHookError: ") {
                    Some((_, hook)) => ("PostStartHookError".to_string(), hook.to_string()),
                    None => ("RunContainerError".to_string(), message),
                }
            })?;
        Ok(id)
    }

    async fn start(
        &self,
        pod: &Pod,
        container: &Container,
        id: &str,
        pod_ip: Option<&str>,
    ) -> Result<()> {
        let mut runtime = self.cri.runtime.clone();
        runtime
            .start_container(v1::StartContainerRequest {
                container_id: id.to_string(),
            })
            .await
            .map_err(cri_error("starting a container"))?;
        self.events
            .normal(
                pod,
                "Started",
                &format!("Started container {}", container.name),
            )
            .await;
        let post_start = container
            .lifecycle
            .as_ref()
            .and_then(|l| l.post_start.as_ref());
        if let Some(handler) = post_start {
            let limit = Duration::from_secs(120);
            if let Err(message) =
                super::hooks::run(&self.cri, handler, container, id, pod_ip, limit).await
            {
                let text = format!(
                    "PostStartHook failed for container {:?}: {message}",
                    container.name
                );
                self.events.warning(pod, "FailedPostStartHook", &text).await;
                self.stop_container(pod, container, id, pod_ip, false).await;
                return Err(super::Error::Runtime(format!(
                    "PostStartHookError: {message}"
                )));
            }
        }
        Ok(())
    }

    /// Stops a running container: its preStop hook first (when `pre_stop`), within the
    /// pod's grace period, then the stop signal with what is left of it.
    async fn stop_container(
        &self,
        pod: &Pod,
        container: &Container,
        id: &str,
        pod_ip: Option<&str>,
        pre_stop: bool,
    ) {
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
            .max(0);
        let started = Instant::now();
        let hook = container
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .filter(|_| pre_stop);
        if let Some(handler) = hook {
            let limit = Duration::from_secs(u64::try_from(grace).unwrap_or(0));
            if let Err(message) =
                super::hooks::run(&self.cri, handler, container, id, pod_ip, limit).await
            {
                let text = format!(
                    "PreStopHook failed for container {:?}: {message}",
                    container.name
                );
                self.events.warning(pod, "FailedPreStopHook", &text).await;
            }
        }
        let spent = i64::try_from(started.elapsed().as_secs()).unwrap_or(i64::MAX);
        let mut runtime = self.cri.runtime.clone();
        let _ = runtime
            .stop_container(v1::StopContainerRequest {
                container_id: id.to_string(),
                timeout: grace.saturating_sub(spent).max(2),
            })
            .await;
    }

    /// Runs the preStop hooks of the pod's running containers, all at once, and stops
    /// those containers; the teardown that follows finds them stopped.
    async fn stop_with_hooks(&self, pod: &Pod, uid: &str) -> Result<()> {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut stops = Vec::new();
        for sandbox in self.sandboxes(uid).await? {
            let pod_ip = self.sandbox_ip(&sandbox.id).await;
            for running in self.containers(&sandbox.id).await? {
                if running.state != v1::ContainerState::ContainerRunning as i32 {
                    continue;
                }
                let name = running.metadata.as_ref().map(|m| m.name.clone());
                let Some(container) = spec
                    .containers
                    .iter()
                    .find(|c| Some(&c.name) == name.as_ref())
                    .filter(|c| c.lifecycle.as_ref().is_some_and(|l| l.pre_stop.is_some()))
                else {
                    continue;
                };
                let pod_ip = pod_ip.clone();
                stops.push(async move {
                    self.stop_container(pod, container, &running.id, pod_ip.as_deref(), true)
                        .await;
                });
            }
        }
        futures::future::join_all(stops).await;
        Ok(())
    }

    /// The sandbox's IP, if the runtime reports one.
    async fn sandbox_ip(&self, sandbox: &str) -> Option<String> {
        let mut runtime = self.cri.runtime.clone();
        let status = runtime
            .pod_sandbox_status(v1::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox.to_string(),
                verbose: false,
            })
            .await
            .ok()?
            .into_inner()
            .status?;
        status.network.map(|n| n.ip).filter(|ip| !ip.is_empty())
    }

    /// The registry credentials for `image` from the pod's `imagePullSecrets`; Secrets that
    /// are missing or unusable are reported in an event, and the pull goes on without them.
    async fn pull_credentials(&self, pod: &Pod, image: &str) -> Vec<v1::AuthConfig> {
        let names: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.image_pull_secrets.iter().flatten())
            .map(|r| r.name.clone())
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() {
            return Vec::new();
        }
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let mut credentials = Vec::new();
        let mut unusable = Vec::new();
        for name in names {
            let parsed = match secrets.get(&name).await {
                Ok(secret) => super::pull_secrets::parse(&secret),
                Err(e) => Err(e.to_string()),
            };
            match parsed {
                Ok(found) => credentials.extend(found),
                Err(why) => {
                    tracing::debug!(secret = %name, %why, "image pull secret not used");
                    unusable.push(format!("{namespace}/{name}"));
                }
            }
        }
        if !unusable.is_empty() {
            let message = format!(
                "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                unusable.join(", ")
            );
            self.events
                .warning(pod, "FailedToRetrieveImagePullSecret", &message)
                .await;
        }
        super::pull_secrets::for_image(&credentials, image)
    }

    /// Makes the image present by the container's pull policy; returns the image to run.
    async fn ensure_image(
        &self,
        pod: &Pod,
        container: &Container,
        image: &str,
        state: &PodState,
    ) -> std::result::Result<String, (String, String)> {
        let mut images = self.cri.images.clone();
        let present = images
            .image_status(v1::ImageStatusRequest {
                image: Some(v1::ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .map_err(|s| ("ErrImagePull".to_string(), s.message().to_string()))?
            .into_inner()
            .image;
        let policy = container
            .image_pull_policy
            .as_deref()
            .unwrap_or("IfNotPresent");
        match (&present, policy) {
            (Some(found), "IfNotPresent" | "Never") => return Ok(found.id.clone()),
            (None, "Never") => {
                return Err((
                    "ErrImageNeverPull".into(),
                    format!("Container image \"{image}\" is not present with pull policy of Never"),
                ));
            }
            _ => {}
        }
        // After a failed pull, wait out the back-off as ImagePullBackOff.
        if let Some((reason, _)) = state.waiting.get(&container.name)
            && (reason == "ErrImagePull" || reason == "ImagePullBackOff")
            && let Some((next, _)) = state.backoff.get(&container.name)
            && Instant::now() < *next
        {
            return Err((
                "ImagePullBackOff".into(),
                format!("Back-off pulling image \"{image}\""),
            ));
        }
        self.events
            .normal(pod, "Pulling", &format!("Pulling image \"{image}\""))
            .await;
        let started = Instant::now();
        // Without matching credentials the pull goes without; with them, each is tried in
        // turn until one works, as upstream's kubelet does.
        let credentials = self.pull_credentials(pod, image).await;
        let attempts: Vec<Option<v1::AuthConfig>> = if credentials.is_empty() {
            vec![None]
        } else {
            credentials.into_iter().map(Some).collect()
        };
        let mut pulled = Err(tonic::Status::internal("no pull attempted"));
        for auth in attempts {
            pulled = images
                .pull_image(v1::PullImageRequest {
                    image: Some(v1::ImageSpec {
                        image: image.to_string(),
                        ..Default::default()
                    }),
                    auth,
                    sandbox_config: None,
                })
                .await;
            if pulled.is_ok() {
                break;
            }
        }
        match pulled {
            Ok(response) => {
                self.events
                    .normal(
                        pod,
                        "Pulled",
                        &format!(
                            "Successfully pulled image \"{image}\" in {:.3}s",
                            started.elapsed().as_secs_f64()
                        ),
                    )
                    .await;
                Ok(response.into_inner().image_ref)
            }
            Err(status) => {
                let message = format!("Failed to pull image \"{image}\": {}", status.message());
                self.events.warning(pod, "Failed", &message).await;
                Err(("ErrImagePull".into(), message))
            }
        }
    }
}
