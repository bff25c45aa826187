//! Watches: newline-delimited JSON events (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`,
//! `ERROR`), streamed from the watch cache until the client leaves or `timeoutSeconds` runs out.
//!
//! With `resourceVersion` empty or `0` the current state comes first as ADDED events; with a
//! revision, every change after it. Selector transitions follow upstream: an object that starts
//! matching is ADDED, one that stops matching is DELETED. A revision older than the cache's
//! history is answered with an `ERROR` event carrying 410 Expired, as upstream's cacher does.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use cox_api::registry::Resource;
use cox_api::status::ApiError;
use cox_store::EventKind;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::request::{Query, ResourceRequest};
use crate::rest::{Filter, Rest};
use crate::watch_cache::{Cached, CachedEvent, TooOld};

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

/// An event line around an object encoded once, in the cache.
fn cached_line(event_type: &str, object: &Cached) -> Bytes {
    let mut bytes = BytesMut::with_capacity(object.json.len() + 32);
    bytes.put_slice(b"{\"type\":\"");
    bytes.put_slice(event_type.as_bytes());
    bytes.put_slice(b"\",\"object\":");
    bytes.put_slice(&object.json);
    bytes.put_slice(b"}\n");
    bytes.freeze()
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

/// The watch event type a cached change becomes for this filter, if any.
fn translate(event: &CachedEvent, filter: &Filter) -> Option<&'static str> {
    let prev_matches = event
        .prev
        .as_ref()
        .is_some_and(|p| filter.matches_cached(p));
    match event.kind {
        EventKind::Put => {
            let matches = filter.matches_cached(&event.object);
            match (event.created || event.prev.is_none(), prev_matches, matches) {
                (true, _, true) => Some("ADDED"),
                (false, true, true) => Some("MODIFIED"),
                (false, false, true) => Some("ADDED"),
                (false, true, false) => Some("DELETED"),
                _ => None,
            }
        }
        EventKind::Delete => prev_matches.then_some("DELETED"),
    }
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
    let after = if rv.is_empty() || rv == "0" || send_initial {
        None
    } else {
        Some(rv.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: {rv:?}: must be a non-negative integer"
            ))
        })?)
    };
    let cache = rest
        .caches
        .get(&resource.key(None, ""))
        .await
        .ok_or_else(|| ApiError::timeout("the watch cache of this resource is not ready"))?;
    let (tx, rx) = mpsc::channel(BUFFER);
    let subscription = match cache.subscribe(&resource.key(request.namespace.as_deref(), ""), after)
    {
        Ok(subscription) => subscription,
        Err(TooOld::Before { oldest }) => {
            let expired = ApiError::expired(format!(
                "too old resource version: {} ({oldest})",
                after.unwrap_or(0)
            ));
            let _ = tx.send(line("ERROR", &expired.to_status())).await;
            return Ok(rx);
        }
    };
    tokio::spawn(async move {
        let mut seen = subscription.revision;
        for object in &subscription.snapshot {
            if filter.matches_cached(object) && tx.send(cached_line("ADDED", object)).await.is_err()
            {
                return;
            }
        }
        if send_initial && bookmarks && tx.send(bookmark(resource, seen, true)).await.is_err() {
            return;
        }
        for event in &subscription.backlog {
            if let Some(kind) = translate(event, &filter)
                && tx.send(cached_line(kind, &event.object)).await.is_err()
            {
                return;
            }
        }
        let mut live = subscription.live;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                () = &mut deadline => return,
                () = tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    if tx.send(bookmark(resource, seen, false)).await.is_err() {
                        return;
                    }
                }
                next = live.recv() => {
                    let event: Arc<CachedEvent> = match next {
                        Ok(event) => event,
                        // Too slow, or the cache started over: end the watch; the client
                        // re-watches from its last revision.
                        Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                    };
                    if event.revision <= seen {
                        continue;
                    }
                    seen = event.revision;
                    if let Some(kind) = translate(&event, &filter)
                        && tx.send(cached_line(kind, &event.object)).await.is_err()
                    {
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

    fn cached(rev: i64, labels: Value) -> Arc<Cached> {
        let object = json!({"metadata": {"name": "a", "labels": labels, "resourceVersion": rev.to_string()}});
        let resource = cox_api::registry::find("", "v1", "configmaps").unwrap();
        Arc::new(Cached::new(
            "/registry/configmaps/ns/a".into(),
            rev,
            &object,
            resource,
        ))
    }

    #[test]
    fn selector_transitions_become_added_and_deleted() {
        let resource = cox_api::registry::find("", "v1", "configmaps").unwrap();
        let filter =
            Filter::from_query(resource, &Query::parse(Some("labelSelector=app%3Dweb"))).unwrap();
        let (web, other) = (json!({"app": "web"}), json!({"app": "db"}));
        let event = |kind, created, prev: Option<Arc<Cached>>, now: Arc<Cached>| CachedEvent {
            kind,
            revision: now.revision,
            created,
            object: now,
            prev,
        };
        let put = EventKind::Put;
        let cases = [
            (
                event(put, true, None, cached(5, web.clone())),
                Some("ADDED"),
            ),
            (event(put, true, None, cached(5, other.clone())), None),
            (
                event(
                    put,
                    false,
                    Some(cached(5, web.clone())),
                    cached(6, web.clone()),
                ),
                Some("MODIFIED"),
            ),
            (
                event(
                    put,
                    false,
                    Some(cached(5, other.clone())),
                    cached(6, web.clone()),
                ),
                Some("ADDED"),
            ),
            (
                event(
                    put,
                    false,
                    Some(cached(5, web.clone())),
                    cached(6, other.clone()),
                ),
                Some("DELETED"),
            ),
            (
                event(
                    put,
                    false,
                    Some(cached(5, other.clone())),
                    cached(6, other.clone()),
                ),
                None,
            ),
            (
                event(
                    EventKind::Delete,
                    false,
                    Some(cached(6, web.clone())),
                    cached(7, web.clone()),
                ),
                Some("DELETED"),
            ),
            (
                event(
                    EventKind::Delete,
                    false,
                    Some(cached(6, other.clone())),
                    cached(7, other),
                ),
                None,
            ),
        ];
        for (i, (event, want)) in cases.into_iter().enumerate() {
            assert_eq!(translate(&event, &filter), want, "case {i}");
        }
        let line = cached_line("ADDED", &cached(9, web));
        let decoded: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            (
                decoded["type"].as_str(),
                decoded["object"]["metadata"]["resourceVersion"].as_str()
            ),
            (Some("ADDED"), Some("9"))
        );
    }
}
