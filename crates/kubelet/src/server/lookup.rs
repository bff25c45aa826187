//! Finding what a request names: the pod (from the API server, as the kubelet's pod manager
//! would have it) and its container or sandbox in the runtime, by the labels the kubelet put
//! on them.

use std::collections::HashMap;

use cox_cri::v1;
use cox_cri::v1::runtime_service_client::RuntimeServiceClient;
use http::StatusCode;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::sync::OnceCell;
use tonic::transport::Channel;

use super::HttpError;
use crate::pods::config::{CONTAINER_NAME, POD_UID};

/// The API server and the runtime, as the server's handlers reach them.
pub(super) struct Lookup {
    client: kube::Client,
    node_name: String,
    runtime_endpoint: String,
    channel: OnceCell<Channel>,
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookup")
            .field("node_name", &self.node_name)
            .field("runtime_endpoint", &self.runtime_endpoint)
            .finish_non_exhaustive()
    }
}

/// A runtime error as upstream's streaming handlers answer it: NotFound is 404, the rest 500.
pub(super) fn runtime_error(status: &tonic::Status) -> HttpError {
    let code = match status.code() {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange => StatusCode::BAD_REQUEST,
        tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    HttpError::new(code, status.message().to_owned())
}

impl Lookup {
    pub fn new(client: kube::Client, node_name: String, runtime_endpoint: String) -> Self {
        Self {
            client,
            node_name,
            runtime_endpoint,
            channel: OnceCell::new(),
        }
    }

    /// This node's name.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// A client of the runtime; the channel is made on first use (the runtime may start after
    /// the server).
    pub async fn runtime(&self) -> Result<RuntimeServiceClient<Channel>, HttpError> {
        let channel = self
            .channel
            .get_or_try_init(|| cox_cri::connect(&self.runtime_endpoint))
            .await
            .map_err(|e| {
                HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the container runtime at {}: {e}", self.runtime_endpoint),
                )
            })?;
        Ok(RuntimeServiceClient::new(channel.clone()))
    }

    /// The pod `namespace/name` if it is on this node; `missing` is the message otherwise.
    pub async fn pod(&self, namespace: &str, name: &str, missing: &str) -> Result<Pod, HttpError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let pod = api.get_opt(name).await.map_err(|e| {
            HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading pod {namespace}/{name}: {e}"),
            )
        })?;
        match pod {
            Some(pod)
                if pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
                    == Some(self.node_name.as_str()) =>
            {
                Ok(pod)
            }
            _ => Err(HttpError::new(StatusCode::NOT_FOUND, missing.to_owned())),
        }
    }

    /// The running container `name` of `pod` (its newest attempt).
    pub async fn running_container(&self, pod: &Pod, name: &str) -> Result<String, HttpError> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let filter = v1::ContainerFilter {
            state: Some(v1::ContainerStateValue {
                state: v1::ContainerState::ContainerRunning as i32,
            }),
            label_selector: HashMap::from([
                (POD_UID.to_owned(), uid),
                (CONTAINER_NAME.to_owned(), name.to_owned()),
            ]),
            ..Default::default()
        };
        let containers = self
            .runtime()
            .await?
            .list_containers(v1::ListContainersRequest {
                filter: Some(filter),
            })
            .await
            .map_err(|s| runtime_error(&s))?
            .into_inner()
            .containers;
        containers
            .into_iter()
            .max_by_key(|c| c.created_at)
            .map(|c| c.id)
            .ok_or_else(|| {
                HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("container not found ({name:?})"),
                )
            })
    }

    /// The pod's ready sandbox.
    pub async fn sandbox(&self, pod: &Pod) -> Result<String, HttpError> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let filter = v1::PodSandboxFilter {
            state: Some(v1::PodSandboxStateValue {
                state: v1::PodSandboxState::SandboxReady as i32,
            }),
            label_selector: HashMap::from([(POD_UID.to_owned(), uid)]),
            ..Default::default()
        };
        let sandboxes = self
            .runtime()
            .await?
            .list_pod_sandbox(v1::ListPodSandboxRequest {
                filter: Some(filter),
            })
            .await
            .map_err(|s| runtime_error(&s))?
            .into_inner()
            .items;
        sandboxes
            .into_iter()
            .max_by_key(|s| s.created_at)
            .map(|s| s.id)
            .ok_or_else(|| {
                let name = pod.metadata.name.as_deref().unwrap_or_default();
                HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("pod not found ({name:?})"),
                )
            })
    }

    /// The runtime's status of a container.
    pub async fn container_status(&self, id: &str) -> Result<v1::ContainerStatus, HttpError> {
        self.runtime()
            .await?
            .container_status(v1::ContainerStatusRequest {
                container_id: id.to_owned(),
                verbose: false,
            })
            .await
            .map_err(|s| runtime_error(&s))?
            .into_inner()
            .status
            .ok_or_else(|| {
                HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the runtime has no status for container {id}"),
                )
            })
    }
}
