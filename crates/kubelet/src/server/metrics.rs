//! `GET /metrics`: the kubelet's figures, with what the runtime runs read at scrape time.

use std::collections::BTreeMap;

use cox_cri::v1;
use http::{HeaderValue, Response, StatusCode, header};

use super::lookup::{Lookup, runtime_error};
use super::{Body, HttpError, text};
use crate::metrics::{Metrics, Running};

pub(super) async fn metrics(
    lookup: &Lookup,
    metrics: &Metrics,
) -> Result<Response<Body>, HttpError> {
    let mut runtime = lookup.runtime().await?;
    let sandboxes = runtime
        .list_pod_sandbox(v1::ListPodSandboxRequest { filter: None })
        .await
        .map_err(|s| runtime_error(&s))?
        .into_inner()
        .items;
    let containers = runtime
        .list_containers(v1::ListContainersRequest { filter: None })
        .await
        .map_err(|s| runtime_error(&s))?
        .into_inner()
        .containers;
    let mut running = Running {
        pods: sandboxes
            .iter()
            .filter(|s| s.state == v1::PodSandboxState::SandboxReady as i32)
            .count(),
        containers: BTreeMap::new(),
    };
    for container in containers {
        let state = match v1::ContainerState::try_from(container.state) {
            Ok(v1::ContainerState::ContainerCreated) => "created",
            Ok(v1::ContainerState::ContainerRunning) => "running",
            Ok(v1::ContainerState::ContainerExited) => "exited",
            _ => "unknown",
        };
        *running.containers.entry(state).or_default() += 1;
    }
    let mut response = text(StatusCode::OK, metrics.render(lookup.node_name(), &running));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(cox_api::prometheus::CONTENT_TYPE),
    );
    Ok(response)
}
