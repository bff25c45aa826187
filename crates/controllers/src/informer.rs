//! A watch kept in a cache whose events say what to reconcile, as upstream's informers with
//! their event handlers: the handler sees each event together with the cache as it was
//! *before* the event, so it can tell an addition from an update and know the old object
//! (the old owner of a pod whose controller changed must hear about it too). Then the event
//! goes into the cache, and the handler's requests go to the controller, which reads the
//! cache while reconciling. The requests of a list's objects wait until the whole list is in
//! the cache (kube-runtime's store swaps a list in at its end).

use futures::{Stream, StreamExt, stream};
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// Watches `api` into a new cache; returns the cache and the stream of reconcile requests
/// `handler` makes of each event. The stream must be polled (the controller does) for the
/// cache to fill.
pub fn watch<K, T, H>(
    api: Api<K>,
    handler: H,
) -> (Store<K>, impl Stream<Item = ObjectRef<T>> + Send + 'static)
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
) -> (Store<K>, impl Stream<Item = ObjectRef<T>> + Send + 'static)
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
    (reader, requests)
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
