//! A watch kept in a cache whose events say what to reconcile, as upstream's informers with
//! their event handlers: the handler sees each event together with the cache as it was
//! *before* the event, so it can tell an addition from an update and know the old object
//! (the old owner of a pod whose controller changed must hear about it too). Then the event
//! goes into the cache, and the handler's requests go to the controller, which reads the
//! cache while reconciling. The requests of a list's objects wait until the whole list is in
//! the cache (kube-runtime's store swaps a list in at its end).

use futures::future::{self, BoxFuture, FutureExt};
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
    ready: future::Shared<BoxFuture<'static, bool>>,
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
                    hold_listed(&event, &mut listed, &mut requests);
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

/// What a subscriber does with one event: run its handler (against the cache before the
/// event) and return the delivery of its requests, made once the event is in the cache.
type Subscriber<K> = Box<dyn FnMut(&Event<K>, &Store<K>) -> Delivery + Send>;
type Delivery = Box<dyn FnOnce() + Send>;

/// One watch of every `K`, shared by all the controllers that read it, as upstream's shared
/// informers: one cache and one decoded object per event, however many controllers listen
/// (five controllers each watching every pod held five copies of each). Each subscriber's
/// handler sees every event with the cache as it was before the event, exactly as with
/// [`watch`]; its requests arrive once the event is in the cache, and a list's once the
/// whole list is.
pub struct Shared<K: Resource<DynamicType = ()> + Clone + 'static> {
    api: Api<K>,
    cache: Cache<K>,
    writer: reflector::store::Writer<K>,
    subscribers: Vec<Subscriber<K>>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Debug for Shared<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("kind", &K::kind(&()))
            .field("subscribers", &self.subscribers.len())
            .finish()
    }
}

impl<K> Shared<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    pub fn new(api: Api<K>) -> Self {
        let (reader, writer) = reflector::store::<K>();
        Shared {
            api,
            cache: Cache::new(reader),
            writer,
            subscribers: Vec::new(),
        }
    }

    /// The shared cache, for a reader that makes no requests of its own.
    pub fn cache(&self) -> Cache<K> {
        self.cache.clone()
    }

    /// Adds a subscriber: returns the shared cache and the stream of the requests `handler`
    /// makes of each event.
    pub fn subscribe<T, H>(
        &mut self,
        mut handler: H,
    ) -> (
        Cache<K>,
        impl Stream<Item = ObjectRef<T>> + Send + 'static + use<K, T, H>,
    )
    where
        T: Resource<DynamicType = ()> + 'static,
        H: FnMut(&Event<K>, &Store<K>) -> Vec<ObjectRef<T>> + Send + 'static,
    {
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        let mut listed: Vec<ObjectRef<T>> = Vec::new();
        self.subscribers.push(Box::new(move |event, cache| {
            let mut requests = handler(event, cache);
            hold_listed(event, &mut listed, &mut requests);
            let sender = sender.clone();
            Box::new(move || {
                for request in requests {
                    // A controller that stopped takes no more requests.
                    let _ = sender.unbounded_send(request);
                }
            })
        }));
        (self.cache.clone(), receiver)
    }

    /// Watches until the process ends, feeding the cache and every subscriber.
    pub async fn run(mut self) {
        let mut events = watcher::watcher(self.api.clone(), watcher::Config::default())
            .default_backoff()
            .modify(strip_managed_fields)
            .boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => self.dispatch(&event),
                Err(error) => {
                    tracing::warn!(%error, kind = %K::kind(&()), "watch failed; retrying");
                }
            }
        }
    }

    /// One event: every subscriber's handler against the cache as it was, then the event
    /// into the cache, then the requests out.
    fn dispatch(&mut self, event: &Event<K>) {
        let deliveries: Vec<Delivery> = self
            .subscribers
            .iter_mut()
            .map(|subscriber| subscriber(event, &self.cache))
            .collect();
        self.writer.apply_watcher_event(event);
        for deliver in deliveries {
            deliver();
        }
    }
}

/// Holds back the requests of a (re-)list's objects until the list is done (they reach the
/// readable cache all at once, at `InitDone`), then releases them with `InitDone`'s.
fn hold_listed<K, T>(
    event: &Event<K>,
    listed: &mut Vec<ObjectRef<T>>,
    requests: &mut Vec<ObjectRef<T>>,
) where
    T: Resource<DynamicType = ()>,
{
    match event {
        Event::Init => {
            listed.clear();
            listed.append(requests);
        }
        Event::InitApply(_) => listed.append(requests),
        Event::InitDone => requests.append(listed),
        Event::Apply(_) | Event::Delete(_) => {}
    }
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
    use futures::FutureExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
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

    fn config_map(name: &str, value: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                ..ObjectMeta::default()
            },
            data: Some([("k".to_owned(), value.to_owned())].into()),
            ..ConfigMap::default()
        }
    }

    /// The names of the requests waiting in `requests`.
    fn waiting(requests: &mut (impl Stream<Item = ObjectRef<ConfigMap>> + Unpin)) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(Some(request)) = requests.next().now_or_never() {
            out.push(request.name);
        }
        out
    }

    #[tokio::test]
    async fn subscribers_share_one_cache_and_each_sees_it_as_it_was_before_the_event() {
        let config = kube::Config::new("https://127.0.0.1:1".parse().expect("a URL"));
        let client = kube::Client::try_from(config).expect("a client that never connects");
        let mut shared = Shared::new(Api::<ConfigMap>::all(client));
        // One asks for additions only (objects the cache did not hold before the event), the
        // other for every object an event is about.
        let (first_cache, additions) =
            shared.subscribe(|event, cache| match (object_of(event, cache), event) {
                (Some((Change::Applied, None)), Event::Apply(o) | Event::InitApply(o)) => {
                    vec![ObjectRef::from_obj(o)]
                }
                _ => Vec::new(),
            });
        let (second_cache, everything) = shared.subscribe(|event, _| match event {
            Event::Apply(o) | Event::InitApply(o) | Event::Delete(o) => {
                vec![ObjectRef::from_obj(o)]
            }
            Event::Init | Event::InitDone => Vec::new(),
        });
        let (mut additions, mut everything) = (Box::pin(additions), Box::pin(everything));

        // A list's requests wait for its end, when its objects are in the cache.
        shared.dispatch(&Event::Init);
        shared.dispatch(&Event::InitApply(config_map("a", "1")));
        assert!(waiting(&mut additions).is_empty() && waiting(&mut everything).is_empty());
        shared.dispatch(&Event::InitDone);
        assert_eq!(waiting(&mut additions), ["a"]);
        assert_eq!(waiting(&mut everything), ["a"]);
        assert_eq!(first_cache.state().len(), 1);

        // A change of a cached object is no addition; a new object is.
        shared.dispatch(&Event::Apply(config_map("a", "2")));
        shared.dispatch(&Event::Apply(config_map("b", "1")));
        assert_eq!(waiting(&mut additions), ["b"]);
        assert_eq!(waiting(&mut everything), ["a", "b"]);

        // One cache for both, holding each event by the time its requests arrive.
        assert_eq!(second_cache.state().len(), 2);
        let a = second_cache
            .get(&ObjectRef::new("a").within("default"))
            .expect("a cached");
        assert_eq!(
            a.data.as_ref().and_then(|d| d.get("k")).map(String::as_str),
            Some("2")
        );
        assert_eq!(first_cache.state().len(), 2);
    }
}
