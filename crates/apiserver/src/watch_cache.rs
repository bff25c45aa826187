//! The watch cache: per resource, one store watch feeds an in-memory copy of every object
//! (decoded and encoded once) and a window of recent events. Watches are served from it (a
//! thousand watchers cost one store watch), and so are lists at `resourceVersion=0`, which is
//! what informers send. Lists that must be current (`resourceVersion` empty) still read the
//! store.
//!
//! Consistency: the cache holds the state at its `revision` exactly, since it applies the
//! store's events in order. A watcher subscribes under the same lock that applies events, so
//! what it is sent is the snapshot (or the history after its revision) followed by every later
//! event, without gaps or duplicates. If the store watch fails (compaction), the cache
//! re-lists and starts a new event stream; watchers of the old one see their stream end and
//! re-watch, as upstream's clients do.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use cox_api::json_paths::Paths;
use cox_api::registry::Resource;
use cox_store::{Event, EventKind, KeyValue, ListOptions, Revision, Store};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

/// Events kept for watchers resuming from a recent revision.
const HISTORY: usize = 10_000;
/// Events a watcher may fall behind before it is closed (it re-watches from where it was, and
/// [`HISTORY`] still holds them). The channel keeps this many slots per resource whether or
/// not anyone lags, so it is kept small: at 10,000 (16,384 slots) the channels of the idle
/// server's forty-odd resources held about 20 MiB. Upstream closes a watcher much sooner,
/// when its buffer of 10 events stays full.
const LAG: usize = 2_048;

/// One object as the cache holds it: encoded once, plus what selectors look at. The decoded
/// object itself is not kept (a `serde_json::Value` costs several times the encoded size).
#[derive(Debug)]
pub struct Cached {
    pub key: String,
    pub revision: Revision,
    /// The object, with its resourceVersion, encoded once for every watcher and list.
    pub json: Bytes,
    pub labels: BTreeMap<String, String>,
    /// The fields the resource supports in field selectors.
    pub fields: BTreeMap<&'static str, String>,
}

impl Cached {
    /// The entry of a stored object; `paths` are what selectors read of it
    /// ([`cox_api::fields::selected_paths`]), the only parts decoded.
    fn from_kv(kv: &KeyValue, resource: &Resource, paths: &Paths) -> Option<Arc<Self>> {
        let selected = paths.decode(&kv.value).ok()?;
        // The stored bytes with the revision spliced in, rather than encoded again, unless
        // they carry a resourceVersion of their own (a foreign writer's).
        let spliced = selected
            .pointer("/metadata/resourceVersion")
            .is_none()
            .then(|| crate::rest::splice_resource_version(&kv.value, kv.mod_revision))
            .flatten();
        if let Some(json) = spliced {
            return Some(Arc::new(Self::with_json(
                kv.key.clone(),
                kv.mod_revision,
                json,
                &selected,
                resource,
            )));
        }
        let mut object: Value = serde_json::from_slice(&kv.value).ok()?;
        crate::objects::set_resource_version(&mut object, kv.mod_revision);
        Some(Arc::new(Self::new(
            kv.key.clone(),
            kv.mod_revision,
            &object,
            resource,
        )))
    }

    pub fn new(key: String, revision: Revision, object: &Value, resource: &Resource) -> Self {
        let json = Bytes::from(serde_json::to_vec(object).unwrap_or_default());
        Self::with_json(key, revision, json, object, resource)
    }

    /// An entry whose encoding (`json`, with its resourceVersion) is already made.
    fn with_json(
        key: String,
        revision: Revision,
        json: Bytes,
        object: &Value,
        resource: &Resource,
    ) -> Self {
        Self {
            key,
            revision,
            json,
            labels: cox_api::labels::from_json(object.pointer("/metadata/labels")),
            fields: cox_api::fields::fields_of(resource.group, resource.plural, object),
        }
    }

    /// The object, decoded.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or_default()
    }
}

/// One change, as watchers get it.
#[derive(Debug)]
pub struct CachedEvent {
    pub kind: EventKind,
    pub revision: Revision,
    pub created: bool,
    /// The new version; for a delete, the deleted version stamped with the delete's revision.
    pub object: Arc<Cached>,
    pub prev: Option<Arc<Cached>>,
}

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<String, Arc<Cached>>,
    revision: Revision,
    history: VecDeque<Arc<CachedEvent>>,
    /// History covers the events after this revision.
    oldest: Revision,
    events: Option<broadcast::Sender<Arc<CachedEvent>>>,
}

/// What a new watcher starts from.
#[derive(Debug)]
pub struct Subscription {
    /// The objects at `revision` (for watches from "now" or "0"), or empty.
    pub snapshot: Vec<Arc<Cached>>,
    /// Events after the requested revision that happened before subscribing.
    pub backlog: Vec<Arc<CachedEvent>>,
    pub revision: Revision,
    pub live: broadcast::Receiver<Arc<CachedEvent>>,
}

/// Why a watch cannot start from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooOld {
    /// The requested revision is older than the cache's history.
    Before { oldest: Revision },
}

/// The store was closed.
#[derive(Debug)]
struct Closed;

/// The cache of one resource (one storage prefix).
#[derive(Debug)]
pub struct Cache {
    state: RwLock<State>,
    ready: watch::Receiver<bool>,
    /// The revision the cache is at, for those waiting for it to reach one.
    advanced: watch::Sender<Revision>,
    /// The resource whose objects these are (for its selectable fields).
    resource: &'static Resource,
    /// What selectors read of its objects.
    paths: Paths,
}

impl Cache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until the cache has loaded (at most `limit`); false if it has not.
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        let mut ready = self.ready.clone();
        tokio::time::timeout(limit, ready.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The revision the cache is at; it moves with every change of its objects.
    pub fn revision(&self) -> Revision {
        self.read().revision
    }

    /// Waits until the cache is at `revision` or later (at most `limit`); false if it is not.
    pub async fn wait_for(&self, revision: Revision, limit: Duration) -> bool {
        let mut advanced = self.advanced.subscribe();
        tokio::time::timeout(limit, advanced.wait_for(|at| *at >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The object stored under `key`, if the cache has it.
    pub fn object(&self, key: &str) -> Option<Arc<Cached>> {
        self.read().objects.get(key).map(Arc::clone)
    }

    /// Whether the cache has loaded.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// The objects under `prefix` and the revision they are at.
    pub fn list(&self, prefix: &str) -> (Vec<Arc<Cached>>, Revision) {
        let state = self.read();
        let objects = state
            .objects
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(_, object)| Arc::clone(object))
            .collect();
        (objects, state.revision)
    }

    /// Subscribes from "now" with the current objects (`after` None) or from revision `after`.
    pub fn subscribe(&self, prefix: &str, after: Option<Revision>) -> Result<Subscription, TooOld> {
        let state = self.read();
        let Some(sender) = state.events.as_ref() else {
            return Err(TooOld::Before {
                oldest: state.revision,
            });
        };
        let live = sender.subscribe();
        match after {
            None => {
                let snapshot = state
                    .objects
                    .range(prefix.to_owned()..)
                    .take_while(|(key, _)| key.starts_with(prefix))
                    .map(|(_, object)| Arc::clone(object))
                    .collect();
                Ok(Subscription {
                    snapshot,
                    backlog: Vec::new(),
                    revision: state.revision,
                    live,
                })
            }
            Some(after) if after < state.oldest => Err(TooOld::Before {
                oldest: state.oldest,
            }),
            Some(after) => {
                let backlog = state
                    .history
                    .iter()
                    .filter(|e| e.revision > after && e.object.key.starts_with(prefix))
                    .cloned()
                    .collect();
                Ok(Subscription {
                    snapshot: Vec::new(),
                    backlog,
                    revision: state.revision.max(after),
                    live,
                })
            }
        }
    }

    /// Loads everything under `prefix` from the store; returns the revision to watch after.
    async fn load(&self, store: &Arc<dyn Store>, prefix: &str) -> Result<Option<Revision>, Closed> {
        let list = match store.list(prefix, ListOptions::default()).await {
            Ok(list) => list,
            Err(cox_store::Error::Closed) => return Err(Closed),
            Err(err) => {
                tracing::warn!(%prefix, error = %err, "watch cache: listing");
                return Ok(None);
            }
        };
        let objects = list
            .kvs
            .iter()
            .filter_map(|kv| {
                let cached = Cached::from_kv(kv, self.resource, &self.paths)?;
                Some((kv.key.clone(), cached))
            })
            .collect();
        let (sender, _) = broadcast::channel(LAG);
        let mut state = self.write();
        *state = State {
            objects,
            revision: list.revision,
            history: VecDeque::new(),
            oldest: list.revision,
            events: Some(sender),
        };
        self.advanced.send_replace(list.revision);
        Ok(Some(list.revision))
    }

    fn apply(&self, event: &Event) {
        // Decoded before the lock is taken: readers wait only for the bookkeeping.
        let put = match event.kind {
            EventKind::Put => Cached::from_kv(&event.kv, self.resource, &self.paths),
            EventKind::Delete => None,
        };
        let mut state = self.write();
        let prev = state.objects.get(&event.kv.key).cloned();
        let cached = match event.kind {
            EventKind::Put => match put {
                Some(cached) => {
                    state
                        .objects
                        .insert(cached.key.clone(), Arc::clone(&cached));
                    cached
                }
                None => return,
            },
            EventKind::Delete => {
                state.objects.remove(&event.kv.key);
                let Some(prev) = prev.clone() else {
                    return;
                };
                let mut object = prev.value();
                crate::objects::set_resource_version(&mut object, event.revision());
                Arc::new(Cached::new(
                    prev.key.clone(),
                    event.revision(),
                    &object,
                    self.resource,
                ))
            }
        };
        let cached_event = Arc::new(CachedEvent {
            kind: event.kind,
            revision: event.revision(),
            created: event.is_create(),
            object: cached,
            prev,
        });
        state.revision = event.revision();
        self.advanced.send_replace(state.revision);
        state.history.push_back(Arc::clone(&cached_event));
        while state.history.len() > HISTORY {
            if let Some(dropped) = state.history.pop_front() {
                state.oldest = dropped.revision;
            }
        }
        if let Some(sender) = state.events.as_ref() {
            // No receivers is fine.
            let _ = sender.send(cached_event);
        }
    }

    /// Ends the current event stream (its watchers' streams close).
    fn reset(&self) {
        self.write().events = None;
    }
}

/// Keeps one cache per resource, fed for as long as the server runs.
async fn feed(
    cache: Arc<Cache>,
    store: Arc<dyn Store>,
    prefix: String,
    ready: watch::Sender<bool>,
) {
    loop {
        let revision = match cache.load(&store, &prefix).await {
            Ok(Some(revision)) => revision,
            Ok(None) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // The store is gone: so is the server this cache served.
            Err(Closed) => return,
        };
        let _ = ready.send(true);
        match store.watch(&prefix, revision).await {
            Ok(mut events) => {
                while let Some(event) = events.next().await {
                    match event {
                        Ok(event) => cache.apply(&event),
                        Err(err) => {
                            tracing::info!(%prefix, error = %err, "watch cache: store watch ended; re-listing");
                            break;
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(%prefix, error = %err, "watch cache: watching the store"),
        }
        cache.reset();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every resource's cache, created on first use.
#[derive(Debug)]
pub struct WatchCaches {
    store: Arc<dyn Store>,
    caches: Mutex<HashMap<String, Arc<Cache>>>,
}

impl WatchCaches {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            caches: Mutex::new(HashMap::new()),
        }
    }

    /// Starts the caches of every stored resource now, as upstream does at start, so that their
    /// history reaches back to the server's start.
    pub fn start_all(&self) {
        for resource in cox_api::registry::RESOURCES
            .iter()
            .filter(|r| r.is_stored())
        {
            let _ = self.start(&resource.key(None, ""));
        }
    }

    /// The cache of the resource stored under `prefix`, started if need be; it may not have
    /// loaded yet (its lists are then empty).
    pub fn start(&self, prefix: &str) -> Option<Arc<Cache>> {
        let mut caches = self
            .caches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(cache) = caches.get(prefix) {
            return Some(Arc::clone(cache));
        }
        // The first resource stored there (core events before events.k8s.io's).
        let resource = cox_api::registry::RESOURCES
            .iter()
            .find(|r| r.is_stored() && r.key(None, "") == prefix)?;
        let (ready_tx, ready) = watch::channel(false);
        let cache = Arc::new(Cache {
            state: RwLock::new(State::default()),
            ready,
            advanced: watch::channel(0).0,
            resource,
            paths: cox_api::fields::selected_paths(resource.group, resource.plural),
        });
        caches.insert(prefix.to_owned(), Arc::clone(&cache));
        tokio::spawn(feed(
            Arc::clone(&cache),
            Arc::clone(&self.store),
            prefix.to_owned(),
            ready_tx,
        ));
        Some(cache)
    }

    /// The cache of the resource stored under `prefix` (e.g. `/registry/pods/`), ready.
    pub async fn get(&self, prefix: &str) -> Option<Arc<Cache>> {
        let cache = self.start(prefix)?;
        cache
            .wait_ready(Duration::from_secs(30))
            .await
            .then_some(cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cox_store::sqlite::{SqliteOptions, SqliteStore};

    async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        (
            Arc::new(
                SqliteStore::open(dir.path(), SqliteOptions::default())
                    .await
                    .unwrap(),
            ),
            dir,
        )
    }

    fn value(name: &str, v: u32) -> Bytes {
        Bytes::from(serde_json::json!({"metadata": {"name": name}, "v": v}).to_string())
    }

    async fn eventually(mut check: impl FnMut() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not reached");
    }

    #[tokio::test]
    async fn mirrors_the_store_and_serves_history() {
        let (store, _dir) = store().await;
        let a = store
            .create("/registry/configmaps/ns/a", value("a", 1))
            .await
            .unwrap();
        let caches = WatchCaches::new(store.clone());
        let cache = caches.get("/registry/configmaps/").await.unwrap();
        let (objects, revision) = cache.list("/registry/configmaps/");
        assert_eq!((objects.len(), revision), (1, a));
        assert_eq!(
            objects[0].value()["metadata"]["resourceVersion"],
            a.to_string()
        );

        let from_now = cache.subscribe("/registry/configmaps/ns/", None).unwrap();
        assert_eq!(from_now.snapshot.len(), 1);
        let mut live = from_now.live;
        let a2 = store
            .update("/registry/configmaps/ns/a", value("a", 2), a)
            .await
            .unwrap();
        let b = store
            .create("/registry/configmaps/other/b", value("b", 1))
            .await
            .unwrap();
        let (_, deleted) = store
            .delete("/registry/configmaps/ns/a", None)
            .await
            .unwrap();
        let got: Vec<(EventKind, Revision)> = [
            live.recv().await.unwrap(),
            live.recv().await.unwrap(),
            live.recv().await.unwrap(),
        ]
        .iter()
        .map(|e| (e.kind, e.revision))
        .collect();
        assert_eq!(
            got,
            [
                (EventKind::Put, a2),
                (EventKind::Put, b),
                (EventKind::Delete, deleted)
            ]
        );

        eventually(|| cache.list("/registry/configmaps/").1 == deleted).await;
        // Resuming from a revision replays the history after it, for the prefix only.
        let resumed = cache
            .subscribe("/registry/configmaps/ns/", Some(a))
            .unwrap();
        let replayed: Vec<Revision> = resumed.backlog.iter().map(|e| e.revision).collect();
        assert_eq!(replayed, [a2, deleted]);
        let deleted_event = &resumed.backlog[1];
        assert_eq!(
            deleted_event.object.value()["v"],
            2,
            "a delete carries the deleted version"
        );
        assert_eq!(
            deleted_event.object.value()["metadata"]["resourceVersion"],
            deleted.to_string()
        );
        assert!(matches!(
            cache.subscribe("", Some(a - 1)),
            Err(TooOld::Before { .. })
        ));
        let (objects, _) = cache.list("/registry/configmaps/");
        assert_eq!(
            objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
            ["/registry/configmaps/other/b"]
        );
    }
}
