//! A watch kept in a cache whose events say what to reconcile, as upstream's informers with
//! their event handlers: the handler sees each event together with the cache as it was
//! *before* the event, so it can tell an addition from an update and know the old object
//! (the old owner of a pod whose controller changed must hear about it too). Then the event
//! goes into the cache, and the handler's requests go to the controller, which reads the
//! cache while reconciling. The requests of a list's objects wait until the whole list is in
//! the cache (kube-runtime's store swaps a list in at its end).

use futures::future::{BoxFuture, FutureExt, Shared};
use futures::{Stream, StreamExt, stream};
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::ops::Deref;

/// A watch's cache (kube-runtime's [`Store`], which it derefs to) with a readiness that any
/// number of tasks may wait for at once.
///
/// `Store::wait_until_ready` is not such a wait: it polls a one-shot channel, which keeps the
/// waker of its last poller only. Reconciles run side by side, each with a waker of its own
/// (the controller's runner polls them separately), so when several waited for the same
/// cache, all but the last slept on after it filled, and their objects were never reconciled
/// again (a new leader's ReplicaSet or a Service's mirrored slices, now and then). Here the
/// one wait for the store is shared, and it wakes every task awaiting it.
pub struct Cache<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    ready: Shared<BoxFuture<'static, bool>>,
}

impl<K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static> Cache<K> {
    pub fn new(store: Store<K>) -> Self {
        let waited = store.clone();
        let ready = async move { waited.wait_until_ready().await.is_ok() }
            .boxed()
            .shared();
        Cache { store, ready }
    }

    /// Waits until the cache holds its first list; fails if its watch is gone before that.
    pub async fn wait_until_ready(&self) -> Result<(), Stopped> {
        if self.ready.clone().await {
            Ok(())
        } else {
            Err(Stopped)
        }
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Clone for Cache<K> {
    fn clone(&self) -> Self {
        Cache {
            store: self.store.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Debug for Cache<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("kind", &K::kind(&()))
            .field("objects", &self.store.state().len())
            .finish()
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Deref for Cache<K> {
    type Target = Store<K>;

    fn deref(&self) -> &Store<K> {
        &self.store
    }
}

/// A cache's watch ended before it filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cache's watch ended before it filled")]
pub struct Stopped;

/// Watches `api` into a new cache; returns the cache and the stream of reconcile requests
/// `handler` makes of each event. The stream must be polled (the controller does) for the
/// cache to fill.
pub fn watch<K, T, H>(
    api: Api<K>,
    handler: H,
) -> (Cache<K>, impl Stream<Item = ObjectRef<T>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    T: Resource<DynamicType = ()> + 'static,
    H: FnMut(&Event<K>, &Store<K>) -> Vec<ObjectRef<T>> + Send + 'static,
{
    watch_with(api, watcher::Config::default(), handler)
}

/// [`watch`] of the objects `config`'s selectors pick (e.g. one name in every namespace).
pub fn watch_with<K, T, H>(
    api: Api<K>,
    config: watcher::Config,
    mut handler: H,
) -> (Cache<K>, impl Stream<Item = ObjectRef<T>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    T: Resource<DynamicType = ()> + 'static,
    H: FnMut(&Event<K>, &Store<K>) -> Vec<ObjectRef<T>> + Send + 'static,
{
    let (reader, mut writer) = reflector::store::<K>();
    let cache = reader.clone();
    // The objects of a (re-)list reach the readable cache all at once, at `InitDone`: the
    // requests they make wait until then, or a reconcile could run before its object is in
    // the cache and find nothing to do.
    let mut listed: Vec<ObjectRef<T>> = Vec::new();
    let requests = watcher::watcher(api, config)
        .default_backoff()
        .modify(strip_managed_fields)
        .flat_map(move |event| {
            let requests = match event {
                Ok(event) => {
                    let mut requests = handler(&event, &cache);
                    writer.apply_watcher_event(&event);
                    match event {
                        Event::Init => {
                            listed.clear();
                            listed.append(&mut requests);
                        }
                        Event::InitApply(_) => listed.append(&mut requests),
                        Event::InitDone => requests.append(&mut listed),
                        Event::Apply(_) | Event::Delete(_) => {}
                    }
                    requests
                }
                Err(error) => {
                    tracing::warn!(%error, kind = %K::kind(&()), "watch failed; retrying");
                    Vec::new()
                }
            };
            stream::iter(requests)
        });
    (Cache::new(reader), requests)
}

/// Drops an object's managedFields before it is cached, as upstream's controllers and
/// scheduler do (`TransformStripManagedFields`): no reconciler reads them, and they are the
/// bulk of a small object's memory (a pod's run to a few kilobytes as a JSON tree).
pub fn strip_managed_fields<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// The object an event is about, with whether the cache held it (by UID) before: `None` for
/// the markers of a re-list.
pub fn object_of<K: Resource<DynamicType = ()> + Clone>(
    event: &Event<K>,
    cache: &Store<K>,
) -> Option<(Change, Option<std::sync::Arc<K>>)> {
    let (change, object) = match event {
        Event::Apply(object) | Event::InitApply(object) => (Change::Applied, object),
        Event::Delete(object) => (Change::Deleted, object),
        Event::Init | Event::InitDone => return None,
    };
    let old = cache
        .get(&ObjectRef::from_obj(object))
        .filter(|old| old.meta().uid == object.meta().uid);
    Some((change, old))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Applied,
    Deleted,
}

/// The controllers (of kind `O`, cached in `owners`) to sync after an event about a
/// dependent `D`: upstream's `addPod`/`updatePod`/`deletePod` (and the same for
/// ReplicaSets in the Deployment controller). The dependent's controller, and its old one
/// when that changed; for an orphan whose labels or controller changed, every controller in
/// its namespace whose selector (`selects`) matches it, which may adopt it. After a re-list,
/// every controller.
pub fn controllers_to_sync<D, O>(
    event: &Event<D>,
    cache: &Store<D>,
    owners: &Store<O>,
    selects: impl Fn(&O, &D) -> bool,
) -> Vec<ObjectRef<O>>
where
    D: Resource<DynamicType = ()> + Clone,
    O: Resource<DynamicType = ()> + Clone,
{
    let dependent = match event {
        Event::Apply(object) | Event::InitApply(object) | Event::Delete(object) => object,
        Event::InitDone => {
            return owners
                .state()
                .iter()
                .map(|o| ObjectRef::from_obj(&**o))
                .collect();
        }
        Event::Init => return Vec::new(),
    };
    let Some((change, old)) = object_of(event, cache) else {
        return Vec::new();
    };
    let namespace = dependent.meta().namespace.clone().unwrap_or_default();
    let request = |name: &str| ObjectRef::<O>::new(name).within(&namespace);
    let controller = crate::owner::controller_of_kind::<O>(dependent.meta());
    let mut requests = Vec::new();
    if change == Change::Deleted {
        requests.extend(controller.map(|c| request(&c.name)));
        return requests;
    }
    let old_controller = old
        .as_deref()
        .and_then(|o| crate::owner::controller_of_kind::<O>(o.meta()));
    if let Some(old_controller) = old_controller
        && controller.is_none_or(|c| c.uid != old_controller.uid)
    {
        requests.push(request(&old_controller.name));
    }
    match controller {
        Some(controller) => requests.push(request(&controller.name)),
        None => {
            let labels_changed = old
                .as_deref()
                .is_none_or(|o| o.meta().labels != dependent.meta().labels);
            if labels_changed || old_controller.is_some() {
                requests.extend(
                    owners
                        .state()
                        .iter()
                        .filter(|o| o.meta().namespace.as_deref() == Some(namespace.as_str()))
                        .filter(|o| selects(o, dependent))
                        .map(|o| ObjectRef::from_obj(&**o)),
                );
            }
        }
    }
    requests
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use std::time::Duration;

    /// Tasks waiting for a cache at the same time, each polled with its own waker as a
    /// controller's reconciles are, all go on once it fills. (With kube-runtime's
    /// `Store::wait_until_ready` only the last one to wait does.)
    #[tokio::test]
    async fn every_task_waiting_for_a_cache_goes_on_once_it_fills() {
        let (reader, mut writer) = reflector::store::<ConfigMap>();
        let cache = Cache::new(reader);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.wait_until_ready().await })
            })
            .collect();
        // Every waiter is parked before the cache fills.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()));
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitDone);
        for waiter in waiters {
            let woken = tokio::time::timeout(Duration::from_secs(5), waiter).await;
            assert!(
                matches!(woken, Ok(Ok(Ok(())))),
                "a waiter was not woken: {woken:?}"
            );
        }
    }

    #[tokio::test]
    async fn waiting_for_a_cache_whose_watch_is_gone_fails() {
        let (reader, writer) = reflector::store::<ConfigMap>();
        let cache = Cache::new(reader);
        drop(writer);
        assert_eq!(cache.wait_until_ready().await, Err(Stopped));
    }
}
