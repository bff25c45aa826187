//! `/openapi/v2` and `/openapi/v3`: the documents `cox_api::openapi` builds, encoded once and
//! kept, since kubectl fetches them before every `create -f`, `apply` and `explain`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use cox_api::status::ApiError;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::http::Body;

fn respond(bytes: Bytes, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(bytes).boxed());
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn encoded(key: &str, make: impl FnOnce() -> Option<Bytes>) -> Option<Bytes> {
    static CACHE: OnceLock<Mutex<HashMap<String, Bytes>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(bytes) = cache.lock().ok().and_then(|c| c.get(key).cloned()) {
        return Some(bytes);
    }
    let bytes = make()?;
    if let Ok(mut cache) = cache.lock() {
        cache.insert(key.to_owned(), bytes.clone());
    }
    Some(bytes)
}

/// True when the client asks for the protobuf v2 document (kubectl up to 1.28 does).
fn wants_protobuf(accept: Option<&HeaderValue>) -> bool {
    accept
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("protobuf"))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("building the OpenAPI document: {e}")))
}

pub async fn v2(accept: Option<&HeaderValue>) -> Result<Response<Body>, ApiError> {
    if wants_protobuf(accept) {
        let bytes = blocking(|| {
            encoded("v2.pb", || {
                Some(Bytes::from_static(cox_api::openapi::v2_document_protobuf()))
            })
        })
        .await?;
        return Ok(respond(
            bytes.unwrap_or_default(),
            cox_api::openapi::V2_PROTOBUF_CONTENT_TYPE,
        ));
    }
    let bytes = blocking(|| {
        encoded("v2", || {
            serde_json::to_vec(cox_api::openapi::v2_document())
                .ok()
                .map(Bytes::from)
        })
    })
    .await?;
    Ok(respond(bytes.unwrap_or_default(), "application/json"))
}

pub async fn v3_index() -> Result<Response<Body>, ApiError> {
    let bytes = blocking(|| {
        encoded("v3", || {
            serde_json::to_vec(&cox_api::openapi::v3_index())
                .ok()
                .map(Bytes::from)
        })
    })
    .await?;
    Ok(respond(bytes.unwrap_or_default(), "application/json"))
}

pub async fn v3(group: String, version: String) -> Result<Response<Body>, ApiError> {
    let key = format!("v3/{group}/{version}");
    let bytes = blocking(move || {
        encoded(&key, || {
            let document = cox_api::openapi::v3_document(&group, &version)?;
            serde_json::to_vec(document).ok().map(Bytes::from)
        })
    })
    .await?;
    bytes
        .map(|bytes| respond(bytes, "application/json"))
        .ok_or_else(ApiError::no_route)
}
