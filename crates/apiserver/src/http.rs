//! Bodies in and out: the request size limit, decoding by content type, and responses (JSON
//! objects, `Status` errors, streams, bodies relayed from backends, spliced upgrades).

use std::convert::Infallible;

use bytes::Bytes;
use cox_api::status::ApiError;
use futures::Stream;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use serde_json::Value;

pub type Body = BoxBody<Bytes, Infallible>;

/// Upstream's limit on request bodies.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

pub const JSON: &str = "application/json";
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const PROTOBUF_WATCH: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] with 413.
pub async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err)
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::too_large(MAX_BODY_BYTES))
        }
        Err(err) => Err(ApiError::bad_request(format!(
            "reading the request body: {err}"
        ))),
    }
}

/// The media type of a `Content-Type` value, without parameters.
pub fn media_type(content_type: Option<&HeaderValue>) -> String {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Decodes a JSON (or YAML-as-JSON) body into a JSON object.
pub fn decode_object(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    match content_type {
        "" | "application/json" | "*/*" => {}
        "application/vnd.kubernetes.protobuf" => {
            return cox_api::protobuf::decode(body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the body of the request could not be decoded as protobuf: {e}"
                ))
            });
        }
        "application/yaml" => {
            let value: Value = serde_yaml_ng::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the body of the request could not be decoded as YAML: {e}"
                ))
            })?;
            if !value.is_object() {
                return Err(ApiError::bad_request(
                    "the body of the request must be an object",
                ));
            }
            return Ok(value);
        }
        other if other.ends_with("+json") => {}
        other => return Err(ApiError::unsupported_media_type(other)),
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    Ok(value)
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn json(status: StatusCode, value: &Value) -> Response<Body> {
    json_with_type(status, value, JSON)
}

pub fn json_with_type(status: StatusCode, value: &Value, content_type: &str) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// An answer already encoded as JSON.
pub fn raw_json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub fn error(err: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json(status, &err.to_status());
    if let Some(seconds) = err.retry_after_seconds() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A streamed body (watches): each item is sent as it comes.
pub fn stream(
    content_type: &'static str,
    chunks: impl Stream<Item = Bytes> + Send + Sync + 'static,
) -> Response<Body> {
    use futures::StreamExt;
    let frames = chunks.map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    response
}

/// A body received from a backend, passed on frame by frame as it arrives. A backend that
/// fails mid-body ends it early: when the answer had a `Content-Length`, the server then
/// breaks the connection rather than pretend the body was whole.
pub fn streamed(body: Incoming) -> Body {
    BodyExt::boxed(Relayed(body))
}

#[derive(Debug)]
struct Relayed(Incoming);

impl hyper::body::Body for Relayed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match std::pin::Pin::new(&mut self.0).poll_frame(cx) {
            std::task::Poll::Ready(Some(Err(error))) => {
                tracing::debug!(%error, "a relayed body ended early");
                std::task::Poll::Ready(None)
            }
            std::task::Poll::Ready(Some(Ok(frame))) => std::task::Poll::Ready(Some(Ok(frame))),
            std::task::Poll::Ready(None) => std::task::Poll::Ready(None),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.0.size_hint()
    }
}

/// Once both sides of an upgrade have switched protocols, copies bytes between them until
/// either ends; `what` names the backend in logs.
pub fn splice_upgrades(
    client: hyper::upgrade::OnUpgrade,
    backend: hyper::upgrade::OnUpgrade,
    what: &'static str,
) {
    tokio::spawn(async move {
        let (client, backend) = match tokio::try_join!(client, backend) {
            Ok(both) => both,
            Err(error) => {
                tracing::debug!(%error, what, "an upgrade failed");
                return;
            }
        };
        let mut client = hyper_util::rt::TokioIo::new(client);
        let mut backend = hyper_util::rt::TokioIo::new(backend);
        if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
            tracing::debug!(%error, what, "an upgraded connection ended");
        }
    });
}

/// Whether the client's `Accept` names protobuf before anything else it takes: JSON, a
/// wildcard, or YAML. Forms with `as=` (Tables, aggregated discovery) are JSON answers.
pub fn prefers_protobuf(accept: Option<&HeaderValue>) -> bool {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let params: Vec<&str> = parts.collect();
        if params.iter().any(|p| p.starts_with("as=") || *p == "q=0") {
            continue;
        }
        match media.as_str() {
            PROTOBUF => return true,
            JSON | "application/*" | "*/*" | "application/yaml" => return false,
            _ => {}
        }
    }
    false
}

/// The answer in protobuf, for a client that prefers it: a JSON object (a `Status` error too)
/// becomes a protobuf body, a watch's JSON lines protobuf frames. Anything without a protobuf
/// form (no kind, or a kind without a message) stays as it was.
pub async fn into_protobuf(response: Response<Body>, watch: bool) -> Response<Body> {
    use futures::StreamExt;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == JSON);
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    if watch {
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROTOBUF_WATCH),
        );
        let frames = http_body_util::BodyStream::new(body)
            .map(|frame| {
                let Ok(frame) = frame;
                let Ok(data) = frame.into_data() else {
                    return None;
                };
                let event: Value = serde_json::from_slice(&data).ok()?;
                let kind = event["type"].as_str().unwrap_or_default();
                match cox_api::protobuf::encode_watch_event(kind, &event["object"]) {
                    Ok(bytes) => Some(Ok::<_, Infallible>(Frame::data(Bytes::from(bytes)))),
                    Err(error) => {
                        // Ending the watch makes the client list again, rather than miss
                        // an event.
                        tracing::warn!(%error, "a watch event has no protobuf form; ending");
                        None
                    }
                }
            })
            .take_while(|frame| std::future::ready(frame.is_some()))
            .filter_map(std::future::ready);
        return Response::from_parts(parts, BodyExt::boxed(StreamBody::new(frames)));
    }
    let Ok(collected) = body.collect().await;
    let bytes = collected.to_bytes();
    let encoded = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|object| cox_api::protobuf::encode(&object).ok());
    match encoded {
        Some(encoded) => {
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, full(encoded))
        }
        None => Response::from_parts(parts, full(bytes)),
    }
}

/// True when the client asked for aggregated discovery (`as=APIGroupDiscoveryList`, v2).
pub fn wants_aggregated_discovery(accept: Option<&HeaderValue>) -> bool {
    accept.and_then(|v| v.to_str().ok()).is_some_and(|accept| {
        accept.split(',').any(|part| {
            let params: Vec<&str> = part.split(';').map(str::trim).collect();
            params.contains(&"as=APIGroupDiscoveryList")
                && params.contains(&"g=apidiscovery.k8s.io")
                && params.contains(&"v=v2")
        })
    })
}

/// The content type of an aggregated discovery answer.
pub const AGGREGATED_DISCOVERY: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_is_chosen_only_when_named_first() {
        let prefers =
            |accept: &'static str| prefers_protobuf(Some(&HeaderValue::from_static(accept)));
        // client-go with protobuf, and kubectl's typed creates.
        assert!(prefers("application/vnd.kubernetes.protobuf, */*"));
        assert!(prefers(
            "application/vnd.kubernetes.protobuf,application/json"
        ));
        assert!(!prefers(
            "application/json, application/vnd.kubernetes.protobuf"
        ));
        assert!(!prefers("*/*"));
        assert!(!prefers(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!prefers(
            "application/vnd.kubernetes.protobuf;q=0,application/json"
        ));
        assert!(!prefers_protobuf(None));
    }

    #[test]
    fn aggregated_discovery_negotiation() {
        let kubectl = HeaderValue::from_static(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
        );
        assert!(wants_aggregated_discovery(Some(&kubectl)));
        assert!(!wants_aggregated_discovery(Some(
            &HeaderValue::from_static("application/json")
        )));
        assert!(!wants_aggregated_discovery(None));
    }

    #[test]
    fn body_decoding() {
        assert!(decode_object(br#"{"a":1}"#, "application/json").is_ok());
        assert_eq!(
            decode_object(b"{", "application/json").unwrap_err().code,
            400
        );
        assert_eq!(
            decode_object(b"[1]", "application/json").unwrap_err().code,
            400
        );
        assert_eq!(decode_object(b"x", "text/plain").unwrap_err().code, 415);
        let yaml = decode_object(
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: \"1\"}\n",
            "application/yaml",
        )
        .unwrap();
        assert_eq!(yaml["data"]["a"], "1");
        assert_eq!(
            decode_object(b"a: [", "application/yaml").unwrap_err().code,
            400
        );
        assert_eq!(
            decode_object(b"- 1", "application/yaml").unwrap_err().code,
            400
        );
        assert_eq!(
            decode_object(b"x", "application/vnd.kubernetes.protobuf")
                .unwrap_err()
                .code,
            400
        );
    }
}
