//! `Table` answers: what `kubectl get` asks for (`Accept: application/json;as=Table;v=v1;
//! g=meta.k8s.io`), for gets, lists and watches. The rows are printed by `cox_api::table`.

use bytes::Bytes;
use cox_api::registry::Resource;
use cox_api::table::{self, IncludeObject};
use futures::{Stream, StreamExt};
use http::HeaderValue;
use serde_json::{Value, json};

pub const CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// True when the client's Accept asks for a Table (v1 or v1beta1) before anything else it
/// accepts; a client that prefers plain JSON gets plain JSON.
pub fn wanted(accept: Option<&HeaderValue>) -> bool {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    accept.split(',').next().is_some_and(|first| {
        let params: Vec<&str> = first.split(';').map(str::trim).collect();
        params.contains(&"as=Table")
            && params.contains(&"g=meta.k8s.io")
            && (params.contains(&"v=v1") || params.contains(&"v=v1beta1"))
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The Table of `objects` (each complete, with apiVersion and kind).
pub fn table(
    resource: &Resource,
    objects: &[Value],
    include: IncludeObject,
    metadata: Value,
) -> Value {
    table::table(
        resource.group,
        resource.plural,
        objects,
        include,
        now(),
        metadata,
    )
}

/// The Table of a list answer (whose items lack apiVersion and kind, as upstream lists do).
pub fn from_list(resource: &Resource, mut list: Value, include: IncludeObject) -> Value {
    let metadata = list.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let items: Vec<Value> = list
        .get_mut("items")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default()
        .into_iter()
        .map(|mut item| {
            if let Some(map) = item.as_object_mut() {
                map.insert("apiVersion".into(), json!(resource.api_version()));
                map.insert("kind".into(), json!(resource.kind));
            }
            item
        })
        .collect();
    table(resource, &items, include, metadata)
}

/// Turns a watch's encoded events into events whose objects are one-row Tables; only the first
/// carries the column definitions, as upstream sends them.
pub fn watch_rows(
    resource: &'static Resource,
    include: IncludeObject,
    events: impl Stream<Item = Bytes> + Send + Sync + 'static,
) -> impl Stream<Item = Bytes> + Send + Sync + 'static {
    let mut first = true;
    events.map(move |line| {
        let Ok(mut event) = serde_json::from_slice::<Value>(&line) else {
            return line;
        };
        let kind = event["type"].as_str().unwrap_or("").to_owned();
        if kind == "ERROR" || kind == "BOOKMARK" {
            return line;
        }
        let object = event["object"].take();
        let metadata = json!({"resourceVersion": object.pointer("/metadata/resourceVersion").cloned().unwrap_or_default()});
        let mut table = table(resource, &[object], include, metadata);
        if !first {
            table["columnDefinitions"] = Value::Null;
        }
        first = false;
        event["object"] = table;
        let mut bytes = serde_json::to_vec(&event).unwrap_or_default();
        bytes.push(b'\n');
        Bytes::from(bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_negotiation() {
        let kubectl = HeaderValue::from_static(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        );
        assert!(wanted(Some(&kubectl)));
        assert!(!wanted(Some(&HeaderValue::from_static("application/json"))));
        assert!(!wanted(None));
    }

    #[test]
    fn list_items_regain_their_type_for_printing() {
        let pods = cox_api::registry::find("", "v1", "pods").unwrap();
        let list = json!({"metadata": {"resourceVersion": "9"}, "items": [{"metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"containers": [{"name": "c"}]}}]});
        let table = from_list(pods, list, IncludeObject::Object);
        assert_eq!(table["kind"], "Table");
        assert_eq!(table["metadata"]["resourceVersion"], "9");
        assert_eq!(table["rows"][0]["cells"][0], "a");
        assert_eq!(table["rows"][0]["object"]["kind"], "Pod");
        assert_eq!(table["columnDefinitions"][0]["name"], "Name");
    }
}
