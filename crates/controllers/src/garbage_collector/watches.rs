//! The watches that feed the garbage collector's graph: the metadata of every resource that
//! can be listed, watched and deleted, one watch each, added as discovery finds resources.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};

use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::discovery::{ApiCapabilities, Discovery, Scope, verbs};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use super::graph::Node;
use super::{Collector, Error, REDISCOVER, Watched};

/// The metadata a watch event carries, as a graph node of resource `index`.
pub(super) fn node_of(
    index: usize,
    object: &PartialObjectMeta<DynamicObject>,
) -> Option<(String, Node)> {
    let meta = &object.metadata;
    let uid = meta.uid.clone()?;
    Some((
        uid,
        Node {
            resource: index,
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
            resource_version: meta.resource_version.clone(),
            owners: meta.owner_references.clone().unwrap_or_default(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
        },
    ))
}

/// Every resource to watch, as discovery lists them now (events excepted: nothing owns
/// them that upstream collects).
async fn discover(
    client: &Client,
) -> Result<(Discovery, Vec<(ApiResource, ApiCapabilities)>), Error> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(Error::Discovery)?;
    let mut resources = Vec::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            let usable = [verbs::LIST, verbs::WATCH, verbs::DELETE]
                .iter()
                .all(|v| caps.supports_operation(v));
            if usable && resource.plural != "events" {
                resources.push((resource, caps));
            }
        }
    }
    Ok((discovery, resources))
}

pub(super) type Events = BoxStream<
    'static,
    (
        usize,
        Result<Event<PartialObjectMeta<DynamicObject>>, watcher::Error>,
    ),
>;

/// The watches feeding the graph: one per resource, added as discovery finds resources.
pub(super) struct Watches {
    pub(super) collector: Arc<Collector>,
    pub(super) streams: SelectAll<Events>,
    /// `apiVersion/plural` to the resource's index.
    pub(super) watched: HashMap<String, usize>,
    /// Per resource being re-listed: the UIDs listed so far.
    pub(super) relisting: HashMap<usize, HashSet<String>>,
    /// Resources not listed once yet; the collector acts once none is left.
    pub(super) unsynced: HashSet<usize>,
    pub(super) synced: tokio::sync::watch::Sender<bool>,
}

impl Watches {
    async fn discover(&mut self) {
        let (discovery, resources) = match discover(&self.collector.client).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "garbage collector");
                return;
            }
        };
        *self
            .collector
            .discovery
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(discovery));
        for (resource, caps) in resources {
            let key = format!("{}/{}", resource.api_version, resource.plural);
            if self.watched.contains_key(&key) {
                continue;
            }
            let index = {
                let mut list = self
                    .collector
                    .resources
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                list.push(Watched {
                    resource: resource.clone(),
                    namespaced: caps.scope == Scope::Namespaced,
                });
                list.len() - 1
            };
            self.watched.insert(key, index);
            self.unsynced.insert(index);
            // Metadata only: the graph needs no more.
            let api: Api<PartialObjectMeta<DynamicObject>> =
                Api::all_with(self.collector.client.clone(), &resource);
            self.streams.push(
                watcher::watcher(api, watcher::Config::default())
                    .default_backoff()
                    .map(move |event| (index, event))
                    .boxed(),
            );
        }
    }

    /// Applies a watch event to the graph; returns the UIDs to look at.
    fn handle(
        &mut self,
        index: usize,
        event: Result<Event<PartialObjectMeta<DynamicObject>>, watcher::Error>,
    ) -> Vec<String> {
        let collector = &self.collector;
        match event {
            Ok(Event::Apply(object)) => node_of(index, &object)
                .map(|(uid, node)| collector.graph(|g| g.apply(&uid, node)))
                .unwrap_or_default(),
            Ok(Event::InitApply(object)) => match node_of(index, &object) {
                Some((uid, node)) => {
                    self.relisting.entry(index).or_default().insert(uid.clone());
                    collector.graph(|g| g.apply(&uid, node))
                }
                None => Vec::new(),
            },
            Ok(Event::Delete(object)) => object
                .metadata
                .uid
                .as_deref()
                .map(|uid| collector.graph(|g| g.delete(uid)))
                .unwrap_or_default(),
            Ok(Event::Init) => {
                self.relisting.insert(index, HashSet::new());
                Vec::new()
            }
            Ok(Event::InitDone) => {
                let listed = self.relisting.remove(&index).unwrap_or_default();
                if self.unsynced.remove(&index) && self.unsynced.is_empty() {
                    let _ = self.synced.send(true);
                }
                collector.graph(|g| g.retain_listed(index, &listed))
            }
            Err(error) => {
                tracing::debug!(%error, "garbage collector watch; retrying");
                Vec::new()
            }
        }
    }

    pub(super) async fn run(mut self) {
        let mut rediscover = tokio::time::interval(REDISCOVER);
        loop {
            tokio::select! {
                _ = rediscover.tick() => self.discover().await,
                Some((index, event)) = self.streams.next() => {
                    for uid in self.handle(index, event) {
                        self.collector.queue.push(uid);
                    }
                }
            }
        }
    }
}
