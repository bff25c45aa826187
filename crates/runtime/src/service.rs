//! The CRI gRPC services over the runtime: each call runs the runtime's blocking operation on
//! tokio's blocking pool and maps its error to a gRPC status.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use cox_cri::v1::{
    self, image_service_server::ImageService, runtime_service_server::RuntimeService,
};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::runtime::{Runtime, RuntimeError};
use crate::streaming::{Pending, StreamServer};

/// The runtime as the CRI's `RuntimeService` and `ImageService`.
#[derive(Debug, Clone)]
pub struct CriService {
    runtime: Arc<Runtime>,
    puller: Arc<crate::pull::Pulls>,
    streams: Arc<StreamServer>,
    /// Turns true when the server shuts down, ending event streams.
    stopping: watch::Receiver<bool>,
}

impl CriService {
    pub fn new(
        runtime: Arc<Runtime>,
        streams: Arc<StreamServer>,
        stopping: watch::Receiver<bool>,
    ) -> Result<Self, RuntimeError> {
        let puller = Arc::new(crate::pull::Pulls::new(&runtime)?);
        Ok(CriService {
            runtime,
            puller,
            streams,
            stopping,
        })
    }

    /// Runs `work` on the blocking pool with the runtime.
    async fn blocking<T, F>(&self, work: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Runtime) -> Result<T, RuntimeError> + Send + 'static,
    {
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || work(&runtime))
            .await
            .map_err(|e| Status::internal(format!("runtime task failed: {e}")))?
            .map_err(status)
    }
}

/// The gRPC status for a runtime error.
pub fn status(error: RuntimeError) -> Status {
    match error {
        RuntimeError::NotFound(m) => Status::not_found(m),
        RuntimeError::InvalidArgument(m) => Status::invalid_argument(m),
        RuntimeError::FailedPrecondition(m) => Status::failed_precondition(m),
        RuntimeError::AlreadyExists(m) => Status::already_exists(m),
        RuntimeError::DeadlineExceeded(m) => Status::deadline_exceeded(m),
        RuntimeError::Internal(m) => Status::internal(m),
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn unsupported(what: &str) -> Status {
    Status::unimplemented(format!("{what} is not supported by the cox runtime yet"))
}

#[tonic::async_trait]
impl RuntimeService for CriService {
    async fn version(&self, _request: Request<v1::VersionRequest>) -> Reply<v1::VersionResponse> {
        Ok(Response::new(v1::VersionResponse {
            version: "0.1.0".to_string(),
            runtime_name: "cox".to_string(),
            runtime_version: env!("CARGO_PKG_VERSION").to_string(),
            runtime_api_version: cox_cri::API_VERSION.to_string(),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        request: Request<v1::RunPodSandboxRequest>,
    ) -> Reply<v1::RunPodSandboxResponse> {
        let request = request.into_inner();
        let config = request
            .config
            .ok_or_else(|| Status::invalid_argument("RunPodSandbox needs a config"))?;
        let handler = request.runtime_handler;
        let pod_sandbox_id = self
            .blocking(move |rt| rt.run_pod_sandbox(config, &handler))
            .await?;
        Ok(Response::new(v1::RunPodSandboxResponse { pod_sandbox_id }))
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<v1::StopPodSandboxRequest>,
    ) -> Reply<v1::StopPodSandboxResponse> {
        let id = request.into_inner().pod_sandbox_id;
        self.blocking(move |rt| rt.stop_pod_sandbox(&id)).await?;
        Ok(Response::new(v1::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<v1::RemovePodSandboxRequest>,
    ) -> Reply<v1::RemovePodSandboxResponse> {
        let id = request.into_inner().pod_sandbox_id;
        self.blocking(move |rt| rt.remove_pod_sandbox(&id)).await?;
        Ok(Response::new(v1::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<v1::PodSandboxStatusRequest>,
    ) -> Reply<v1::PodSandboxStatusResponse> {
        let id = request.into_inner().pod_sandbox_id;
        let status = self.blocking(move |rt| rt.pod_sandbox_status(&id)).await?;
        Ok(Response::new(v1::PodSandboxStatusResponse {
            status: Some(status),
            info: HashMap::new(),
            containers_statuses: Vec::new(),
            timestamp: 0,
        }))
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<v1::ListPodSandboxRequest>,
    ) -> Reply<v1::ListPodSandboxResponse> {
        let filter = request.into_inner().filter;
        let items = self
            .blocking(move |rt| Ok(rt.list_pod_sandboxes(filter.as_ref())))
            .await?;
        Ok(Response::new(v1::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        request: Request<v1::CreateContainerRequest>,
    ) -> Reply<v1::CreateContainerResponse> {
        let request = request.into_inner();
        let config = request
            .config
            .ok_or_else(|| Status::invalid_argument("CreateContainer needs a config"))?;
        let sandbox = request.pod_sandbox_id;
        let container_id = self
            .blocking(move |rt| rt.create_container(&sandbox, config))
            .await?;
        Ok(Response::new(v1::CreateContainerResponse { container_id }))
    }

    async fn start_container(
        &self,
        request: Request<v1::StartContainerRequest>,
    ) -> Reply<v1::StartContainerResponse> {
        let id = request.into_inner().container_id;
        self.blocking(move |rt| rt.start_container(&id)).await?;
        Ok(Response::new(v1::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        request: Request<v1::StopContainerRequest>,
    ) -> Reply<v1::StopContainerResponse> {
        let request = request.into_inner();
        let (id, timeout) = (request.container_id, request.timeout);
        self.blocking(move |rt| rt.stop_container(&id, timeout))
            .await?;
        Ok(Response::new(v1::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        request: Request<v1::RemoveContainerRequest>,
    ) -> Reply<v1::RemoveContainerResponse> {
        let id = request.into_inner().container_id;
        self.blocking(move |rt| rt.remove_container(&id)).await?;
        Ok(Response::new(v1::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        request: Request<v1::ListContainersRequest>,
    ) -> Reply<v1::ListContainersResponse> {
        let filter = request.into_inner().filter;
        let containers = self
            .blocking(move |rt| Ok(rt.list_containers(filter.as_ref())))
            .await?;
        Ok(Response::new(v1::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        request: Request<v1::ContainerStatusRequest>,
    ) -> Reply<v1::ContainerStatusResponse> {
        let id = request.into_inner().container_id;
        let status = self.blocking(move |rt| rt.container_status(&id)).await?;
        Ok(Response::new(v1::ContainerStatusResponse {
            status: Some(status),
            info: HashMap::new(),
        }))
    }

    async fn update_container_resources(
        &self,
        request: Request<v1::UpdateContainerResourcesRequest>,
    ) -> Reply<v1::UpdateContainerResourcesResponse> {
        let request = request.into_inner();
        let id = request.container_id;
        let resources = request.linux.ok_or_else(|| {
            Status::invalid_argument("UpdateContainerResources needs linux resources")
        })?;
        self.blocking(move |rt| rt.update_container_resources(&id, &resources))
            .await?;
        Ok(Response::new(v1::UpdateContainerResourcesResponse {}))
    }

    async fn reopen_container_log(
        &self,
        request: Request<v1::ReopenContainerLogRequest>,
    ) -> Reply<v1::ReopenContainerLogResponse> {
        let id = request.into_inner().container_id;
        self.blocking(move |rt| rt.reopen_container_log(&id))
            .await?;
        Ok(Response::new(v1::ReopenContainerLogResponse {}))
    }

    async fn exec_sync(
        &self,
        request: Request<v1::ExecSyncRequest>,
    ) -> Reply<v1::ExecSyncResponse> {
        let request = request.into_inner();
        let response = self
            .blocking(move |rt| rt.exec_sync(&request.container_id, &request.cmd, request.timeout))
            .await?;
        Ok(Response::new(response))
    }

    async fn exec(&self, request: Request<v1::ExecRequest>) -> Reply<v1::ExecResponse> {
        let request = request.into_inner();
        if request.cmd.is_empty() {
            return Err(Status::invalid_argument("exec needs a command"));
        }
        if !(request.stdin || request.stdout || request.stderr) {
            return Err(Status::invalid_argument(
                "one of stdin, stdout and stderr must be set",
            ));
        }
        if request.tty && request.stderr {
            return Err(Status::invalid_argument(
                "tty and stderr cannot both be set",
            ));
        }
        let id = request.container_id.clone();
        let container_id = self.blocking(move |rt| rt.running_container(&id)).await?;
        let url = self.streams.url(Pending::Exec {
            container_id,
            cmd: request.cmd,
            tty: request.tty,
            stdin: request.stdin,
        });
        Ok(Response::new(v1::ExecResponse { url }))
    }

    async fn attach(&self, request: Request<v1::AttachRequest>) -> Reply<v1::AttachResponse> {
        let request = request.into_inner();
        if !(request.stdin || request.stdout || request.stderr) {
            return Err(Status::invalid_argument(
                "one of stdin, stdout and stderr must be set",
            ));
        }
        let id = request.container_id.clone();
        let container_id = self.blocking(move |rt| rt.running_container(&id)).await?;
        let url = self.streams.url(Pending::Attach {
            container_id,
            stdin: request.stdin,
        });
        Ok(Response::new(v1::AttachResponse { url }))
    }

    async fn port_forward(
        &self,
        request: Request<v1::PortForwardRequest>,
    ) -> Reply<v1::PortForwardResponse> {
        let request = request.into_inner();
        let ports = request
            .port
            .iter()
            .map(|p| {
                u16::try_from(*p).map_err(|_| Status::invalid_argument(format!("invalid port {p}")))
            })
            .collect::<Result<Vec<u16>, Status>>()?;
        let id = request.pod_sandbox_id;
        let sandbox_id = self
            .blocking(move |rt| Ok(rt.pod_sandbox_status(&id)?.id))
            .await?;
        let url = self.streams.url(Pending::PortForward { sandbox_id, ports });
        Ok(Response::new(v1::PortForwardResponse { url }))
    }

    async fn container_stats(
        &self,
        request: Request<v1::ContainerStatsRequest>,
    ) -> Reply<v1::ContainerStatsResponse> {
        let id = request.into_inner().container_id;
        let stats = self.blocking(move |rt| rt.container_stats(&id)).await?;
        Ok(Response::new(v1::ContainerStatsResponse {
            stats: Some(stats),
        }))
    }

    async fn list_container_stats(
        &self,
        request: Request<v1::ListContainerStatsRequest>,
    ) -> Reply<v1::ListContainerStatsResponse> {
        let filter = request.into_inner().filter;
        let stats = self
            .blocking(move |rt| {
                let filter = filter.map(|f| v1::ContainerFilter {
                    id: f.id,
                    pod_sandbox_id: f.pod_sandbox_id,
                    label_selector: f.label_selector,
                    state: None,
                });
                let ids: Vec<String> = rt
                    .list_containers(filter.as_ref())
                    .into_iter()
                    .map(|c| c.id)
                    .collect();
                Ok(ids
                    .iter()
                    .filter_map(|id| rt.container_stats(id).ok())
                    .collect())
            })
            .await?;
        Ok(Response::new(v1::ListContainerStatsResponse { stats }))
    }

    async fn pod_sandbox_stats(
        &self,
        request: Request<v1::PodSandboxStatsRequest>,
    ) -> Reply<v1::PodSandboxStatsResponse> {
        let id = request.into_inner().pod_sandbox_id;
        let stats = self.blocking(move |rt| rt.pod_sandbox_stats(&id)).await?;
        Ok(Response::new(v1::PodSandboxStatsResponse {
            stats: Some(stats),
        }))
    }

    async fn list_pod_sandbox_stats(
        &self,
        request: Request<v1::ListPodSandboxStatsRequest>,
    ) -> Reply<v1::ListPodSandboxStatsResponse> {
        let filter = request.into_inner().filter;
        let stats = self
            .blocking(move |rt| {
                let filter = filter.map(|f| v1::PodSandboxFilter {
                    id: f.id,
                    label_selector: f.label_selector,
                    state: None,
                });
                let ids: Vec<String> = rt
                    .list_pod_sandboxes(filter.as_ref())
                    .into_iter()
                    .map(|s| s.id)
                    .collect();
                Ok(ids
                    .iter()
                    .filter_map(|id| rt.pod_sandbox_stats(id).ok())
                    .collect())
            })
            .await?;
        Ok(Response::new(v1::ListPodSandboxStatsResponse { stats }))
    }

    async fn update_runtime_config(
        &self,
        _request: Request<v1::UpdateRuntimeConfigRequest>,
    ) -> Reply<v1::UpdateRuntimeConfigResponse> {
        // The pod CIDR comes from the runtime's own configuration; nothing to change.
        Ok(Response::new(v1::UpdateRuntimeConfigResponse {}))
    }

    async fn status(&self, request: Request<v1::StatusRequest>) -> Reply<v1::StatusResponse> {
        let verbose = request.into_inner().verbose;
        let network_ready = self
            .runtime
            .config()
            .network
            .bin_dir
            .join("bridge")
            .is_file();
        let condition = |kind: &str, ok: bool, reason: &str| v1::RuntimeCondition {
            r#type: kind.to_string(),
            status: ok,
            reason: if ok {
                String::new()
            } else {
                reason.to_string()
            },
            message: String::new(),
        };
        let mut info = HashMap::new();
        if verbose {
            let config = self.runtime.config();
            info.insert(
                "config".to_string(),
                serde_json::json!({
                    "root": config.root,
                    "runtime": config.runc,
                    "cniBinDir": config.network.bin_dir,
                    "podCIDR": config.network.pod_cidr,
                    "bridge": config.network.bridge,
                })
                .to_string(),
            );
        }
        Ok(Response::new(v1::StatusResponse {
            status: Some(v1::RuntimeStatus {
                conditions: vec![
                    condition("RuntimeReady", true, ""),
                    condition("NetworkReady", network_ready, "NetworkPluginNotReady"),
                ],
            }),
            info,
            runtime_handlers: Vec::new(),
            features: None,
        }))
    }

    async fn checkpoint_container(
        &self,
        _request: Request<v1::CheckpointContainerRequest>,
    ) -> Reply<v1::CheckpointContainerResponse> {
        Err(unsupported("CheckpointContainer"))
    }

    type GetContainerEventsStream =
        Pin<Box<dyn futures::Stream<Item = Result<v1::ContainerEventResponse, Status>> + Send>>;

    async fn get_container_events(
        &self,
        _request: Request<v1::GetEventsRequest>,
    ) -> Reply<Self::GetContainerEventsStream> {
        let mut stopping = self.stopping.clone();
        let stopped = async move {
            // A dropped sender means the server is gone too.
            let _ = stopping.wait_for(|stopping| *stopping).await;
        };
        let events = crate::events::stream(self.runtime.subscribe_events(), stopped);
        Ok(Response::new(Box::pin(events)))
    }

    async fn list_metric_descriptors(
        &self,
        _request: Request<v1::ListMetricDescriptorsRequest>,
    ) -> Reply<v1::ListMetricDescriptorsResponse> {
        Ok(Response::new(v1::ListMetricDescriptorsResponse {
            descriptors: Vec::new(),
        }))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _request: Request<v1::ListPodSandboxMetricsRequest>,
    ) -> Reply<v1::ListPodSandboxMetricsResponse> {
        Ok(Response::new(v1::ListPodSandboxMetricsResponse {
            pod_metrics: Vec::new(),
        }))
    }

    async fn runtime_config(
        &self,
        _request: Request<v1::RuntimeConfigRequest>,
    ) -> Reply<v1::RuntimeConfigResponse> {
        Ok(Response::new(v1::RuntimeConfigResponse {
            linux: Some(v1::LinuxRuntimeConfiguration {
                cgroup_driver: v1::CgroupDriver::Cgroupfs as i32,
            }),
        }))
    }
}

/// An image record as the CRI describes images.
fn cri_image(record: &crate::images::ImageRecord) -> v1::Image {
    let user = record
        .config
        .config
        .user
        .split(':')
        .next()
        .unwrap_or_default();
    let (uid, username) = match user.parse::<i64>() {
        Ok(uid) => (Some(v1::Int64Value { value: uid }), String::new()),
        Err(_) => (None, user.to_string()),
    };
    v1::Image {
        id: record.id.to_string(),
        repo_tags: record.repo_tags.clone(),
        repo_digests: record.repo_digests.clone(),
        size: record.size,
        uid,
        username,
        spec: None,
        pinned: false,
    }
}

#[tonic::async_trait]
impl ImageService for CriService {
    async fn list_images(
        &self,
        request: Request<v1::ListImagesRequest>,
    ) -> Reply<v1::ListImagesResponse> {
        let wanted = request
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|i| i.image);
        let images = self
            .blocking(move |rt| {
                let all = rt.images().list()?;
                Ok(match wanted.filter(|w| !w.is_empty()) {
                    Some(wanted) => rt.images().resolve(&wanted)?.into_iter().collect(),
                    None => all,
                })
            })
            .await?;
        Ok(Response::new(v1::ListImagesResponse {
            images: images.iter().map(cri_image).collect(),
        }))
    }

    async fn image_status(
        &self,
        request: Request<v1::ImageStatusRequest>,
    ) -> Reply<v1::ImageStatusResponse> {
        let request = request.into_inner();
        let name = request.image.map(|i| i.image).unwrap_or_default();
        let verbose = request.verbose;
        let found = self
            .blocking(move |rt| Ok(rt.images().resolve(&name)?))
            .await?;
        let mut info = HashMap::new();
        if let (true, Some(record)) = (verbose, &found) {
            info.insert(
                "info".to_string(),
                serde_json::json!({"imageSpec": record.config, "layers": record.layers})
                    .to_string(),
            );
        }
        // An image that is not there is not an error: the status is simply empty.
        Ok(Response::new(v1::ImageStatusResponse {
            image: found.as_ref().map(cri_image),
            info,
        }))
    }

    async fn pull_image(
        &self,
        request: Request<v1::PullImageRequest>,
    ) -> Reply<v1::PullImageResponse> {
        let request = request.into_inner();
        let name = request.image.map(|i| i.image).unwrap_or_default();
        let auth = request.auth;
        let record = self.puller.pull(&name, auth).await.map_err(status)?;
        Ok(Response::new(v1::PullImageResponse {
            image_ref: record.id.to_string(),
        }))
    }

    async fn remove_image(
        &self,
        request: Request<v1::RemoveImageRequest>,
    ) -> Reply<v1::RemoveImageResponse> {
        let name = request
            .into_inner()
            .image
            .map(|i| i.image)
            .unwrap_or_default();
        self.blocking(move |rt| {
            let in_use = rt.images_in_use();
            match rt.images().remove(&name, &in_use) {
                // Removing an image that is not there succeeds, as the CRI asks.
                Err(crate::images::ImageError::NotFound(_)) => Ok(()),
                other => other.map(|_| ()).map_err(RuntimeError::from),
            }
        })
        .await?;
        Ok(Response::new(v1::RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _request: Request<v1::ImageFsInfoRequest>,
    ) -> Reply<v1::ImageFsInfoResponse> {
        let root = self.runtime.images().root().to_path_buf();
        let usage = self
            .blocking(move |_| {
                let stat = rustix::fs::statvfs(&root)
                    .map_err(|e| RuntimeError::Internal(e.to_string()))?;
                Ok(v1::FilesystemUsage {
                    timestamp: crate::runtime::now_nanos(),
                    fs_id: Some(v1::FilesystemIdentifier {
                        mountpoint: root.display().to_string(),
                    }),
                    used_bytes: Some(v1::UInt64Value {
                        value: (stat.f_blocks - stat.f_bfree) * stat.f_frsize,
                    }),
                    inodes_used: Some(v1::UInt64Value {
                        value: stat.f_files - stat.f_ffree,
                    }),
                })
            })
            .await?;
        Ok(Response::new(v1::ImageFsInfoResponse {
            image_filesystems: vec![usage],
            container_filesystems: Vec::new(),
        }))
    }
}
