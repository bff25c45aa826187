//! Watches: newline-delimited JSON events (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`,
//! `ERROR`), streamed until the client leaves or `timeoutSeconds` runs out.
//!
//! With `resourceVersion` empty or `0` the current state comes first as ADDED events; with a
//! revision, every change after it. Selector transitions follow upstream: an object that starts
//! matching is ADDED, one that stops matching is DELETED.

use std::time::Duration;

use bytes::Bytes;
use cox_api::registry::Resource;
use cox_api::status::ApiError;
use cox_store::{Error as StoreError, Event, EventKind};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::request::{Query, ResourceRequest};
use crate::rest::{Filter, Rest, decode, store_error};

/// Upstream's default: watches end after between 30 and 60 minutes; clients re-watch.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);
/// Encoded events buffered for a slow client before the watch waits for it.
const BUFFER: usize = 256;

fn line(event_type: &str, object: &Value) -> Bytes {
    let mut bytes =
        serde_json::to_vec(&json!({"type": event_type, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn bookmark(resource: &Resource, revision: i64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": resource.kind, "apiVersion": resource.api_version(), "metadata": metadata}),
    )
}

/// The watch event (type and object) a store event becomes for this filter, if any.
fn translate(event: &Event, filter: &Filter) -> Result<Option<(&'static str, Value)>, ApiError> {
    let prev = event.prev.as_ref().map(decode).transpose()?;
    let prev_matches = prev.as_ref().is_some_and(|p| filter.matches(p));
    Ok(match event.kind {
        EventKind::Put => {
            let object = decode(&event.kv)?;
            let matches = filter.matches(&object);
            match (event.is_create() || prev.is_none(), prev_matches, matches) {
                (true, _, true) => Some(("ADDED", object)),
                (false, true, true) => Some(("MODIFIED", object)),
                (false, false, true) => Some(("ADDED", object)),
                (false, true, false) => Some(("DELETED", object)),
                _ => None,
            }
        }
        EventKind::Delete => prev.filter(|_| prev_matches).map(|mut object| {
            crate::objects::set_resource_version(&mut object, event.revision());
            ("DELETED", object)
        }),
    })
}

/// Starts a watch and returns the stream of encoded events.
pub async fn start(
    rest: &Rest,
    resource: &'static Resource,
    request: &ResourceRequest,
    query: &Query,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let mut filter = Filter::from_query(resource, query)?;
    if !request.name.is_empty() {
        filter.fields.terms.push(cox_api::fields::Term {
            field: "metadata.name".into(),
            value: request.name.clone(),
            negated: false,
        });
    }
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let bookmarks = query.flag("allowWatchBookmarks");
    let send_initial = query.flag("sendInitialEvents");
    let rv = query.get("resourceVersion").unwrap_or("");
    let prefix = resource.key(request.namespace.as_deref(), "");

    // The initial state, for "" and "0" (and sendInitialEvents), read at one revision.
    let mut initial = Vec::new();
    let after = if rv.is_empty() || rv == "0" || send_initial {
        let list = rest
            .store
            .list(&prefix, Default::default())
            .await
            .map_err(|e| store_error(resource, "", e))?;
        for kv in &list.kvs {
            let object = decode(kv)?;
            if filter.matches(&object) {
                initial.push(line("ADDED", &object));
            }
        }
        list.revision
    } else {
        rv.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: {rv:?}: must be a non-negative integer"
            ))
        })?
    };
    let (tx, rx) = mpsc::channel(BUFFER);
    let store_watch = rest.store.watch(&prefix, after).await;
    let store = rest.store.clone();
    tokio::spawn(async move {
        let _store = store;
        let mut stream = match store_watch {
            Ok(stream) => stream,
            Err(err) => {
                let _ = tx
                    .send(line("ERROR", &store_error(resource, "", err).to_status()))
                    .await;
                return;
            }
        };
        for event in initial {
            if tx.send(event).await.is_err() {
                return;
            }
        }
        if send_initial && bookmarks && tx.send(bookmark(resource, after, true)).await.is_err() {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        let mut seen = after;
        loop {
            tokio::select! {
                () = &mut deadline => return,
                () = tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    if tx.send(bookmark(resource, seen, false)).await.is_err() {
                        return;
                    }
                }
                next = stream.next() => {
                    let encoded = match next {
                        None => return,
                        Some(Err(StoreError::Compacted { requested, compacted })) => line(
                            "ERROR",
                            &ApiError::expired(format!("too old resource version: {requested} ({compacted})")).to_status(),
                        ),
                        Some(Err(err)) => line("ERROR", &ApiError::internal(err.to_string()).to_status()),
                        Some(Ok(event)) => {
                            seen = event.revision();
                            match translate(&event, &filter) {
                                Ok(Some((kind, object))) => line(kind, &object),
                                Ok(None) => continue,
                                Err(err) => line("ERROR", &err.to_status()),
                            }
                        }
                    };
                    if tx.send(encoded).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Query;
    use cox_store::KeyValue;

    fn kv(rev: i64, create: i64, labels: Value) -> KeyValue {
        let object = json!({"metadata": {"name": "a", "labels": labels}});
        KeyValue {
            key: "/registry/configmaps/ns/a".into(),
            value: Bytes::from(serde_json::to_vec(&object).unwrap()),
            create_revision: create,
            mod_revision: rev,
        }
    }

    #[test]
    fn selector_transitions_become_added_and_deleted() {
        let resource = cox_api::registry::find("", "v1", "configmaps").unwrap();
        let filter =
            Filter::from_query(resource, &Query::parse(Some("labelSelector=app%3Dweb"))).unwrap();
        let web = json!({"app": "web"});
        let other = json!({"app": "db"});
        let put = |prev: Option<KeyValue>, now: KeyValue| Event {
            kind: EventKind::Put,
            kv: now,
            prev,
        };
        let cases = [
            (put(None, kv(5, 5, web.clone())), Some("ADDED")),
            (put(None, kv(5, 5, other.clone())), None),
            (
                put(Some(kv(5, 5, web.clone())), kv(6, 5, web.clone())),
                Some("MODIFIED"),
            ),
            (
                put(Some(kv(5, 5, other.clone())), kv(6, 5, web.clone())),
                Some("ADDED"),
            ),
            (
                put(Some(kv(5, 5, web.clone())), kv(6, 5, other.clone())),
                Some("DELETED"),
            ),
            (
                put(Some(kv(5, 5, other.clone())), kv(6, 5, other.clone())),
                None,
            ),
            (
                Event {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        value: Bytes::new(),
                        create_revision: 0,
                        ..kv(7, 0, json!({}))
                    },
                    prev: Some(kv(6, 5, web.clone())),
                },
                Some("DELETED"),
            ),
        ];
        for (i, (event, want)) in cases.into_iter().enumerate() {
            let got = translate(&event, &filter).unwrap();
            assert_eq!(got.as_ref().map(|(t, _)| *t), want, "case {i}");
            if let Some((_, object)) = got {
                assert_eq!(
                    object["metadata"]["resourceVersion"],
                    event.revision().to_string(),
                    "case {i}"
                );
            }
        }
    }
}
