//! A CRI runtime held in memory and served on a unix socket, so that `cox crictl`'s commands
//! are tested end to end: over gRPC, with IDs resolved by listing and output as printed. It
//! accepts only full IDs, as a strict runtime would.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::timestamps;
use crate::v1::image_service_server::{ImageService, ImageServiceServer};
use crate::v1::runtime_service_server::{RuntimeService, RuntimeServiceServer};
use crate::v1::*;

/// What the fake runtime holds and what it was asked.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) pods: Vec<PodSandbox>,
    pub(crate) containers: Vec<ContainerStatus>,
    pub(crate) container_pods: HashMap<String, String>,
    pub(crate) images: Vec<Image>,
    /// The answer to every `ExecSync`.
    pub(crate) exec: ExecSyncResponse,
    /// What `GetContainerEvents` streams, then how the stream ends (cleanly if `None`).
    pub(crate) events: Vec<ContainerEventResponse>,
    pub(crate) events_end: Option<Status>,
    /// Whether `Version` takes longer than any test's timeout.
    pub(crate) slow_version: bool,
    /// Calls received, as `method id`.
    pub(crate) calls: Vec<String>,
    next: u64,
}

impl State {
    fn new_id(&mut self, kind: u8) -> String {
        self.next += 1;
        // IDs of one kind share their first hex digit, so that one-digit prefixes are
        // ambiguous and two-digit ones are not.
        format!("{kind:x}{:x}{}", self.next, "0123456789abcdef".repeat(4))[..64].to_string()
    }

    fn record(&mut self, call: impl Into<String>) {
        self.calls.push(call.into());
    }
}

/// The runtime; clones share one state.
#[derive(Debug, Clone, Default)]
pub(crate) struct FakeRuntime {
    pub(crate) state: Arc<Mutex<State>>,
}

/// A fake runtime serving on a socket in its own directory, stopped when dropped.
#[derive(Debug)]
pub(crate) struct Served {
    pub(crate) runtime: FakeRuntime,
    pub(crate) directory: PathBuf,
    pub(crate) endpoint: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

impl FakeRuntime {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Serves on `<a new directory>/cri.sock`.
    pub(crate) async fn serve(name: &str) -> Served {
        let directory = std::env::temp_dir().join(format!(
            "cox-crictl-{name}-{}-{}",
            std::process::id(),
            timestamps::now_nanos()
        ));
        std::fs::create_dir_all(&directory).expect("a test directory");
        let socket = directory.join("cri.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("a socket");
        let incoming = Box::pin(futures::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(|(stream, _)| stream);
            Some((accepted, listener))
        }));
        let runtime = FakeRuntime::default();
        let router = tonic::transport::Server::builder()
            .add_service(RuntimeServiceServer::new(runtime.clone()))
            .add_service(ImageServiceServer::new(runtime.clone()));
        let server = tokio::spawn(async move {
            let _ = router.serve_with_incoming(incoming).await;
        });
        Served {
            runtime,
            endpoint: format!("unix://{}", socket.display()),
            directory,
            server,
        }
    }
}

impl Served {
    /// Writes a file in the test directory, returning its path.
    pub(crate) fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.directory.join(name);
        std::fs::write(&path, contents).expect("a test file");
        path
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.directory.join(name)
    }
}

fn not_found(kind: &str, id: &str) -> Status {
    Status::not_found(format!("{kind} {id:?} not found"))
}

fn labels_match(selector: &HashMap<String, String>, labels: &HashMap<String, String>) -> bool {
    selector
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

fn container_of(status: &ContainerStatus, pod: &str) -> Container {
    Container {
        id: status.id.clone(),
        pod_sandbox_id: pod.to_string(),
        metadata: status.metadata.clone(),
        image: status.image.clone(),
        image_ref: status.image_ref.clone(),
        state: status.state,
        created_at: status.created_at,
        labels: status.labels.clone(),
        annotations: status.annotations.clone(),
        image_id: status.image_id.clone(),
    }
}

fn image_matches(image: &Image, reference: &str) -> bool {
    image.id == reference || image.repo_tags.iter().any(|tag| tag == reference)
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl RuntimeService for FakeRuntime {
    async fn version(&self, _: Request<VersionRequest>) -> Reply<VersionResponse> {
        let slow = self.state().slow_version;
        if slow {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Ok(Response::new(VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "fake".into(),
            runtime_version: "1.2.3".into(),
            runtime_api_version: "v1".into(),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        request: Request<RunPodSandboxRequest>,
    ) -> Reply<RunPodSandboxResponse> {
        let request = request.into_inner();
        let config = request.config.unwrap_or_default();
        let mut state = self.state();
        let id = state.new_id(0xa);
        state.record(format!("RunPodSandbox {id}"));
        state.pods.push(PodSandbox {
            id: id.clone(),
            metadata: config.metadata,
            state: PodSandboxState::SandboxReady as i32,
            created_at: timestamps::now_nanos(),
            labels: config.labels,
            annotations: config.annotations,
            runtime_handler: request.runtime_handler,
        });
        Ok(Response::new(RunPodSandboxResponse { pod_sandbox_id: id }))
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<StopPodSandboxRequest>,
    ) -> Reply<StopPodSandboxResponse> {
        let id = request.into_inner().pod_sandbox_id;
        let mut state = self.state();
        state.record(format!("StopPodSandbox {id}"));
        let pod = state
            .pods
            .iter_mut()
            .find(|pod| pod.id == id)
            .ok_or_else(|| not_found("pod sandbox", &id))?;
        pod.state = PodSandboxState::SandboxNotready as i32;
        Ok(Response::new(StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<RemovePodSandboxRequest>,
    ) -> Reply<RemovePodSandboxResponse> {
        let id = request.into_inner().pod_sandbox_id;
        let mut state = self.state();
        state.record(format!("RemovePodSandbox {id}"));
        let before = state.pods.len();
        state.pods.retain(|pod| pod.id != id);
        if state.pods.len() == before {
            return Err(not_found("pod sandbox", &id));
        }
        Ok(Response::new(RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<PodSandboxStatusRequest>,
    ) -> Reply<PodSandboxStatusResponse> {
        let request = request.into_inner();
        let state = self.state();
        let pod = state
            .pods
            .iter()
            .find(|pod| pod.id == request.pod_sandbox_id)
            .ok_or_else(|| not_found("pod sandbox", &request.pod_sandbox_id))?;
        let info = if request.verbose {
            HashMap::from([(
                "info".to_string(),
                r#"{"pid": 4242, "image": "pause"}"#.to_string(),
            )])
        } else {
            HashMap::new()
        };
        Ok(Response::new(PodSandboxStatusResponse {
            status: Some(PodSandboxStatus {
                id: pod.id.clone(),
                metadata: pod.metadata.clone(),
                state: pod.state,
                created_at: pod.created_at,
                network: Some(PodSandboxNetworkStatus {
                    ip: "10.88.0.7".into(),
                    additional_ips: Vec::new(),
                }),
                linux: None,
                labels: pod.labels.clone(),
                annotations: pod.annotations.clone(),
                runtime_handler: pod.runtime_handler.clone(),
            }),
            info,
            containers_statuses: Vec::new(),
            timestamp: 0,
        }))
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<ListPodSandboxRequest>,
    ) -> Reply<ListPodSandboxResponse> {
        let filter = request.into_inner().filter.unwrap_or_default();
        let state = self.state();
        let items = state
            .pods
            .iter()
            .filter(|pod| filter.id.is_empty() || pod.id == filter.id)
            .filter(|pod| filter.state.as_ref().is_none_or(|s| s.state == pod.state))
            .filter(|pod| labels_match(&filter.label_selector, &pod.labels))
            .cloned()
            .collect();
        Ok(Response::new(ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        request: Request<CreateContainerRequest>,
    ) -> Reply<CreateContainerResponse> {
        let request = request.into_inner();
        let mut state = self.state();
        if !state
            .pods
            .iter()
            .any(|pod| pod.id == request.pod_sandbox_id)
        {
            return Err(not_found("pod sandbox", &request.pod_sandbox_id));
        }
        let config = request.config.unwrap_or_default();
        let sandbox = request.sandbox_config.unwrap_or_default();
        let id = state.new_id(0xc);
        state.record(format!("CreateContainer {id}"));
        let log_path = if sandbox.log_directory.is_empty() || config.log_path.is_empty() {
            String::new()
        } else {
            Path::new(&sandbox.log_directory)
                .join(&config.log_path)
                .display()
                .to_string()
        };
        let mut labels = config.labels;
        if let Some(metadata) = &sandbox.metadata {
            labels.insert("io.kubernetes.pod.name".into(), metadata.name.clone());
            labels.insert(
                "io.kubernetes.pod.namespace".into(),
                metadata.namespace.clone(),
            );
        }
        state.containers.push(ContainerStatus {
            id: id.clone(),
            metadata: config.metadata,
            state: ContainerState::ContainerCreated as i32,
            created_at: timestamps::now_nanos(),
            image: config.image,
            image_ref: "sha256:feedface".into(),
            labels,
            annotations: config.annotations,
            log_path,
            ..ContainerStatus::default()
        });
        state
            .container_pods
            .insert(id.clone(), request.pod_sandbox_id);
        Ok(Response::new(CreateContainerResponse { container_id: id }))
    }

    async fn start_container(
        &self,
        request: Request<StartContainerRequest>,
    ) -> Reply<StartContainerResponse> {
        let id = request.into_inner().container_id;
        let mut state = self.state();
        state.record(format!("StartContainer {id}"));
        let container = state
            .containers
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| not_found("container", &id))?;
        container.state = ContainerState::ContainerRunning as i32;
        container.started_at = timestamps::now_nanos();
        Ok(Response::new(StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        request: Request<StopContainerRequest>,
    ) -> Reply<StopContainerResponse> {
        let request = request.into_inner();
        let mut state = self.state();
        state.record(format!(
            "StopContainer {} {}",
            request.container_id, request.timeout
        ));
        let container = state
            .containers
            .iter_mut()
            .find(|c| c.id == request.container_id)
            .ok_or_else(|| not_found("container", &request.container_id))?;
        container.state = ContainerState::ContainerExited as i32;
        container.finished_at = timestamps::now_nanos();
        container.exit_code = 137;
        Ok(Response::new(StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        request: Request<RemoveContainerRequest>,
    ) -> Reply<RemoveContainerResponse> {
        let id = request.into_inner().container_id;
        let mut state = self.state();
        state.record(format!("RemoveContainer {id}"));
        let before = state.containers.len();
        state.containers.retain(|c| c.id != id);
        if state.containers.len() == before {
            return Err(not_found("container", &id));
        }
        Ok(Response::new(RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        request: Request<ListContainersRequest>,
    ) -> Reply<ListContainersResponse> {
        let filter = request.into_inner().filter.unwrap_or_default();
        let state = self.state();
        let containers = state
            .containers
            .iter()
            .map(|status| {
                let pod = state
                    .container_pods
                    .get(&status.id)
                    .cloned()
                    .unwrap_or_default();
                container_of(status, &pod)
            })
            .filter(|c| filter.id.is_empty() || c.id == filter.id)
            .filter(|c| {
                filter.pod_sandbox_id.is_empty() || c.pod_sandbox_id == filter.pod_sandbox_id
            })
            .filter(|c| filter.state.as_ref().is_none_or(|s| s.state == c.state))
            .filter(|c| labels_match(&filter.label_selector, &c.labels))
            .collect();
        Ok(Response::new(ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        request: Request<ContainerStatusRequest>,
    ) -> Reply<ContainerStatusResponse> {
        let request = request.into_inner();
        let state = self.state();
        let status = state
            .containers
            .iter()
            .find(|c| c.id == request.container_id)
            .ok_or_else(|| not_found("container", &request.container_id))?;
        let info = if request.verbose {
            HashMap::from([
                (
                    "info".to_string(),
                    r#"{"pid": 99, "sandboxID": "x"}"#.to_string(),
                ),
                ("note".to_string(), "\"quoted\"".to_string()),
            ])
        } else {
            HashMap::new()
        };
        Ok(Response::new(ContainerStatusResponse {
            status: Some(status.clone()),
            info,
        }))
    }

    async fn update_container_resources(
        &self,
        _: Request<UpdateContainerResourcesRequest>,
    ) -> Reply<UpdateContainerResourcesResponse> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn reopen_container_log(
        &self,
        request: Request<ReopenContainerLogRequest>,
    ) -> Reply<ReopenContainerLogResponse> {
        let id = request.into_inner().container_id;
        self.state().record(format!("ReopenContainerLog {id}"));
        Ok(Response::new(ReopenContainerLogResponse {}))
    }

    async fn exec_sync(&self, request: Request<ExecSyncRequest>) -> Reply<ExecSyncResponse> {
        let request = request.into_inner();
        let mut state = self.state();
        if !state
            .containers
            .iter()
            .any(|c| c.id == request.container_id)
        {
            return Err(not_found("container", &request.container_id));
        }
        state.record(format!(
            "ExecSync {} {} {}",
            request.container_id,
            request.timeout,
            request.cmd.join(" ")
        ));
        Ok(Response::new(state.exec.clone()))
    }

    async fn exec(&self, _: Request<ExecRequest>) -> Reply<ExecResponse> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn attach(&self, _: Request<AttachRequest>) -> Reply<AttachResponse> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn port_forward(&self, _: Request<PortForwardRequest>) -> Reply<PortForwardResponse> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn container_stats(
        &self,
        _: Request<ContainerStatsRequest>,
    ) -> Reply<ContainerStatsResponse> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn list_container_stats(
        &self,
        request: Request<ListContainerStatsRequest>,
    ) -> Reply<ListContainerStatsResponse> {
        let filter = request.into_inner().filter.unwrap_or_default();
        let state = self.state();
        let now = timestamps::now_nanos();
        let stats = state
            .containers
            .iter()
            .filter(|c| filter.id.is_empty() || c.id == filter.id)
            .map(|c| ContainerStats {
                attributes: Some(ContainerAttributes {
                    id: c.id.clone(),
                    metadata: c.metadata.clone(),
                    labels: c.labels.clone(),
                    annotations: HashMap::new(),
                }),
                cpu: Some(CpuUsage {
                    timestamp: now,
                    usage_core_nano_seconds: Some(UInt64Value {
                        value: u64::try_from(now).unwrap_or(0) / 4,
                    }),
                    usage_nano_cores: None,
                }),
                memory: Some(MemoryUsage {
                    timestamp: now,
                    working_set_bytes: Some(UInt64Value { value: 5_000_000 }),
                    ..MemoryUsage::default()
                }),
                writable_layer: None,
                swap: None,
            })
            .collect();
        Ok(Response::new(ListContainerStatsResponse { stats }))
    }

    async fn pod_sandbox_stats(
        &self,
        _: Request<PodSandboxStatsRequest>,
    ) -> Reply<PodSandboxStatsResponse> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn list_pod_sandbox_stats(
        &self,
        _: Request<ListPodSandboxStatsRequest>,
    ) -> Reply<ListPodSandboxStatsResponse> {
        Ok(Response::new(ListPodSandboxStatsResponse {
            stats: Vec::new(),
        }))
    }

    async fn update_runtime_config(
        &self,
        _: Request<UpdateRuntimeConfigRequest>,
    ) -> Reply<UpdateRuntimeConfigResponse> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn status(&self, request: Request<StatusRequest>) -> Reply<StatusResponse> {
        let verbose = request.into_inner().verbose;
        let condition = |kind: &str| RuntimeCondition {
            r#type: kind.to_string(),
            status: true,
            reason: String::new(),
            message: String::new(),
        };
        Ok(Response::new(StatusResponse {
            status: Some(RuntimeStatus {
                conditions: vec![condition("RuntimeReady"), condition("NetworkReady")],
            }),
            info: if verbose {
                HashMap::from([(
                    "config".to_string(),
                    r#"{"root": "/var/lib/fake"}"#.to_string(),
                )])
            } else {
                HashMap::new()
            },
            runtime_handlers: vec![RuntimeHandler {
                name: String::new(),
                features: Some(RuntimeHandlerFeatures {
                    recursive_read_only_mounts: true,
                    user_namespaces: false,
                }),
            }],
            features: Some(RuntimeFeatures {
                supplemental_groups_policy: true,
            }),
        }))
    }

    async fn checkpoint_container(
        &self,
        _: Request<CheckpointContainerRequest>,
    ) -> Reply<CheckpointContainerResponse> {
        Err(Status::unimplemented("not in the fake"))
    }

    type GetContainerEventsStream =
        futures::stream::Iter<std::vec::IntoIter<Result<ContainerEventResponse, Status>>>;

    async fn get_container_events(
        &self,
        _: Request<GetEventsRequest>,
    ) -> Reply<Self::GetContainerEventsStream> {
        let mut state = self.state();
        state.record("GetContainerEvents");
        let mut items: Vec<_> = state.events.iter().cloned().map(Ok).collect();
        items.extend(state.events_end.clone().map(Err));
        Ok(Response::new(futures::stream::iter(items)))
    }

    async fn list_metric_descriptors(
        &self,
        _: Request<ListMetricDescriptorsRequest>,
    ) -> Reply<ListMetricDescriptorsResponse> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _: Request<ListPodSandboxMetricsRequest>,
    ) -> Reply<ListPodSandboxMetricsResponse> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn runtime_config(
        &self,
        _: Request<RuntimeConfigRequest>,
    ) -> Reply<RuntimeConfigResponse> {
        Err(Status::unimplemented("not in the fake"))
    }
}

#[tonic::async_trait]
impl ImageService for FakeRuntime {
    async fn list_images(&self, request: Request<ListImagesRequest>) -> Reply<ListImagesResponse> {
        let reference = request
            .into_inner()
            .filter
            .and_then(|filter| filter.image)
            .map(|spec| spec.image)
            .unwrap_or_default();
        let state = self.state();
        let images = state
            .images
            .iter()
            .filter(|image| reference.is_empty() || image_matches(image, &reference))
            .cloned()
            .collect();
        Ok(Response::new(ListImagesResponse { images }))
    }

    async fn image_status(
        &self,
        request: Request<ImageStatusRequest>,
    ) -> Reply<ImageStatusResponse> {
        let reference = request.into_inner().image.unwrap_or_default().image;
        let state = self.state();
        let image = state
            .images
            .iter()
            .find(|image| image_matches(image, &reference))
            .cloned();
        Ok(Response::new(ImageStatusResponse {
            image,
            info: HashMap::new(),
        }))
    }

    async fn pull_image(&self, request: Request<PullImageRequest>) -> Reply<PullImageResponse> {
        let reference = request.into_inner().image.unwrap_or_default().image;
        if reference.contains("missing") {
            return Err(Status::unknown(format!(
                "failed to resolve reference {reference:?}"
            )));
        }
        let mut state = self.state();
        state.record(format!("PullImage {reference}"));
        if let Some(image) = state
            .images
            .iter()
            .find(|image| image_matches(image, &reference))
        {
            return Ok(Response::new(PullImageResponse {
                image_ref: image.id.clone(),
            }));
        }
        let id = format!("sha256:{}", state.new_id(0xe));
        state.images.push(Image {
            id: id.clone(),
            repo_tags: vec![reference],
            repo_digests: Vec::new(),
            size: 4_261_574,
            ..Image::default()
        });
        Ok(Response::new(PullImageResponse { image_ref: id }))
    }

    async fn remove_image(
        &self,
        request: Request<RemoveImageRequest>,
    ) -> Reply<RemoveImageResponse> {
        let reference = request.into_inner().image.unwrap_or_default().image;
        let mut state = self.state();
        state.record(format!("RemoveImage {reference}"));
        state
            .images
            .retain(|image| !image_matches(image, &reference));
        Ok(Response::new(RemoveImageResponse {}))
    }

    async fn image_fs_info(&self, _: Request<ImageFsInfoRequest>) -> Reply<ImageFsInfoResponse> {
        Ok(Response::new(ImageFsInfoResponse {
            image_filesystems: vec![FilesystemUsage {
                timestamp: 1,
                fs_id: Some(FilesystemIdentifier {
                    mountpoint: "/var/lib/fake/images".into(),
                }),
                used_bytes: Some(UInt64Value { value: 1_000_000 }),
                inodes_used: Some(UInt64Value { value: 7 }),
            }],
            container_filesystems: Vec::new(),
        }))
    }
}
