//! The pod subresources served by the pod's kubelet: `log` streams the kubelet's answer
//! through; `exec`, `attach` and `portforward` forward the client's upgrade request (WebSocket
//! or SPDY) to the kubelet and, once it switched protocols, splice the two connections, as
//! upstream's upgrade-aware proxy does. The options, the container and the kubelet's address
//! are `cox_api::pod_connect`'s.

use bytes::Bytes;
use cox_api::pod_connect::{self, LogOptions, StreamOptions};
use cox_api::registry::{self, Resource};
use cox_api::status::{ApiError, Reason};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use serde_json::Value;

use crate::http::{self as h, Body};
use crate::kubelet::KubeletClient;
use crate::request::{Query, ResourceRequest};
use crate::rest::Rest;

/// Headers of an upgrade request that the kubelet must see.
const UPGRADE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
];

/// Headers of the kubelet's 101 that the client must see.
const SWITCH_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
];

/// What a connect request needs from the server.
#[derive(Debug, Clone, Copy)]
pub struct Backends<'a> {
    pub rest: &'a Rest,
    pub kubelets: &'a KubeletClient,
}

impl Backends<'_> {
    async fn pod(&self, pods: &Resource, request: &ResourceRequest) -> Result<Value, ApiError> {
        let pod_request = ResourceRequest {
            subresource: String::new(),
            verb: "get".into(),
            rest: Vec::new(),
            ..request.clone()
        };
        self.rest.get(pods, &pod_request).await
    }

    /// The kubelet of `node`: its address and port.
    async fn kubelet(&self, node: &str) -> Result<(String, u16), ApiError> {
        let nodes = registry::find("", "v1", "nodes")
            .ok_or_else(|| ApiError::internal("nodes are not registered"))?;
        let request = ResourceRequest {
            version: "v1".into(),
            resource: "nodes".into(),
            name: node.to_owned(),
            verb: "get".into(),
            ..Default::default()
        };
        let node_object = self.rest.get(nodes, &request).await?;
        pod_connect::kubelet_endpoint(&node_object).ok_or_else(|| {
            ApiError::internal(format!("no preferred addresses found for node {node}"))
        })
    }
}

/// `GET pods/<name>/log`.
pub async fn log(
    backends: Backends<'_>,
    pods: &Resource,
    request: &ResourceRequest,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let options = LogOptions::parse(&request.name, |key| query.get(key))?;
    let pod = backends.pod(pods, request).await?;
    let container = pod_connect::container_for(&pod, &request.name, options.container.as_deref())?;
    let Some(node) = pod_connect::node_name(&pod) else {
        // Upstream answers a pod on no node yet with an empty log.
        return Ok(h::stream("text/plain", futures::stream::empty()));
    };
    let (host, port) = backends.kubelet(node).await?;
    let namespace = request.namespace.as_deref().unwrap_or("default");
    let path = with_query(
        format!("/containerLogs/{namespace}/{}/{container}", request.name),
        &options.kubelet_query(),
    );
    let kubelet_request = Request::get(path)
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let response = backends.kubelets.send(&host, port, kubelet_request).await?;
    let status = response.status();
    if !status.is_success() {
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(kubelet_error(status, &request.name, &body));
    }
    Ok(h::stream("text/plain", body_stream(response.into_body())))
}

/// A kubelet's error answer as upstream's `GenericHttpResponseChecker` reports it.
fn kubelet_error(status: StatusCode, pod: &str, body: &[u8]) -> ApiError {
    let text = String::from_utf8_lossy(body).trim_end().to_owned();
    match status {
        StatusCode::BAD_REQUEST => ApiError::bad_request(text),
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::internal(text),
        StatusCode::NOT_FOUND => ApiError {
            code: 404,
            reason: Reason::NotFound,
            message: format!("the server could not find the requested resource ( pods/log {pod})"),
            details: None,
        },
        other => ApiError {
            code: other.as_u16(),
            reason: Reason::InternalError,
            message: format!(
                "an error on the server ({text}) has prevented the request from succeeding ( pods/log {pod})"
            ),
            details: None,
        },
    }
}

/// The body's data as it arrives, ending at the first error.
fn body_stream(mut body: Incoming) -> impl futures::Stream<Item = Bytes> + Send + Sync + 'static {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data()
                && sender.send(data).await.is_err()
            {
                break;
            }
        }
    });
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

fn with_query(path: String, query: &str) -> String {
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

/// `pods/<name>/exec`, `attach` and `portforward`, GET (WebSocket) or POST (SPDY).
pub async fn connect(
    backends: Backends<'_>,
    pods: &Resource,
    request: &ResourceRequest,
    query: &Query,
    http_request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let pod = backends.pod(pods, request).await?;
    let namespace = request.namespace.as_deref().unwrap_or("default");
    let name = &request.name;
    let path = match request.subresource.as_str() {
        "portforward" => {
            let query = pod_connect::port_forward_query(query.all("ports"))?;
            with_query(format!("/portForward/{namespace}/{name}"), &query)
        }
        kind => {
            let options =
                StreamOptions::parse(|key| query.get(key), |key| query.all(key).to_vec())?;
            let container = pod_connect::container_for(&pod, name, options.container.as_deref())?;
            with_query(
                format!("/{kind}/{namespace}/{name}/{container}"),
                &options.kubelet_query(),
            )
        }
    };
    let node = pod_connect::node_name(&pod).ok_or_else(|| pod_connect::no_host(name))?;
    let (host, port) = backends.kubelet(node).await?;
    proxy_upgrade(backends.kubelets, &host, port, path, http_request).await
}

/// Forwards an upgrade request to the kubelet; on 101, splices the connections.
async fn proxy_upgrade(
    kubelets: &KubeletClient,
    host: &str,
    port: u16,
    path: String,
    mut client_request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let mut builder = Request::builder()
        .method(client_request.method().clone())
        .uri(path);
    for name in UPGRADE_HEADERS {
        for value in client_request.headers().get_all(*name) {
            builder = builder.header(*name, value.clone());
        }
    }
    let kubelet_request = builder
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut response = kubelets.send(host, port, kubelet_request).await?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The kubelet's refusal, passed through as upstream's proxy does.
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut answer = Response::new(http_body_util::Full::new(body).boxed());
        *answer.status_mut() = status;
        if let Some(content_type) = content_type {
            answer
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        return Ok(answer);
    }
    let mut answer = Response::new(Empty::new().boxed());
    *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for name in SWITCH_HEADERS {
        for value in response.headers().get_all(*name) {
            answer.headers_mut().append(*name, value.clone());
        }
    }
    if !answer.headers().contains_key(header::CONNECTION) {
        answer
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    }
    h::splice_upgrades(
        hyper::upgrade::on(&mut client_request),
        hyper::upgrade::on(&mut response),
        "kubelet",
    );
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_errors_read_as_upstreams() {
        let error = kubelet_error(
            StatusCode::BAD_REQUEST,
            "p",
            b"container \"c\" in pod \"p\" is waiting to start: ContainerCreating\n",
        );
        assert_eq!(
            (error.code, error.reason, error.message.as_str()),
            (
                400,
                Reason::BadRequest,
                "container \"c\" in pod \"p\" is waiting to start: ContainerCreating"
            )
        );
        let error = kubelet_error(StatusCode::NOT_FOUND, "p", b"pod \"p\" does not exist");
        assert_eq!(
            error.message,
            "the server could not find the requested resource ( pods/log p)"
        );
        assert_eq!(
            kubelet_error(StatusCode::INTERNAL_SERVER_ERROR, "p", b"x").code,
            500
        );
    }
}
