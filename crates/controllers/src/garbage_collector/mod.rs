//! The garbage collector (upstream's `garbage-collector-controller`,
//! `pkg/controller/garbagecollector`): deletes objects whose owners are gone.
//!
//! It watches the metadata of every resource that can be listed, watched and deleted (but
//! events), into a [`graph::Graph`] of owner references. An object that references an owner
//! the graph does not hold, or whose owner was deleted, is looked at: each owner is checked
//! against the API (by UID: an object of the same name is another owner); if none is left
//! the object is deleted in the background (its own dependents follow the same way), and if
//! some are, only the references to the missing ones are removed.
//!
//! Owners deleted with a collector finalizer are handled as upstream does: with `orphan`,
//! the references to them are removed from their dependents, then the finalizer; with
//! `foregroundDeletion`, their dependents are deleted first and the finalizer removed once
//! none that blocks is left. (The API server adds these finalizers for the `Orphan` and
//! `Foreground` propagation policies, and for resources whose default is to orphan; an
//! object created with them works the same.)
//!
//! Nothing is deleted before every watch has listed once, so that a dependent listed before
//! its owner is not taken for an orphan; the API check before each deletion covers the rest.

pub mod graph;
mod queue;
mod watches;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::stream::SelectAll;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use serde_json::json;

use crate::api_errors;
use crate::backoff::Backoff;
use graph::{Decision, FOREGROUND, Graph, Node, ORPHAN, OwnerState};
use queue::Queue;
use watches::Watches;

/// How often discovery runs again, to watch resources added since (custom resources).
const REDISCOVER: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("discovering the API's resources: {0}")]
    Discovery(#[source] kube::Error),
    #[error("owner kind {kind} of {api_version} is not served (yet)")]
    UnknownKind { api_version: String, kind: String },
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
}

/// A watched resource.
#[derive(Debug, Clone)]
struct Watched {
    resource: ApiResource,
    namespaced: bool,
}

struct Collector {
    client: Client,
    graph: Mutex<Graph>,
    resources: Mutex<Vec<Watched>>,
    discovery: Mutex<Option<Arc<Discovery>>>,
    queue: Queue,
    backoff: Backoff,
}

impl Collector {
    fn graph<T>(&self, f: impl FnOnce(&mut Graph) -> T) -> T {
        f(&mut self.graph.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn watched(&self, index: usize) -> Option<Watched> {
        self.resources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(index)
            .cloned()
    }

    fn api(&self, watched: &Watched, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace.filter(|_| watched.namespaced) {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &watched.resource),
            None => Api::all_with(self.client.clone(), &watched.resource),
        }
    }

    /// Looks at one object: settles a collector finalizer on it, or its owners.
    async fn process(&self, uid: &str) -> Result<(), Error> {
        let Some(node) = self.graph(|g| g.get(uid).cloned()) else {
            return Ok(());
        };
        if node.deleting {
            if node.has_finalizer(ORPHAN) {
                return self.orphan_dependents(uid, &node).await;
            }
            if node.has_finalizer(FOREGROUND) {
                return self.delete_dependents(uid, &node).await;
            }
            return Ok(());
        }
        if node.owners.is_empty() {
            return Ok(());
        }
        let mut states = Vec::new();
        for owner in &node.owners {
            states.push((owner.uid.clone(), self.owner_state(&node, owner).await?));
        }
        let has_dependents = self.graph(|g| !g.dependents_of(uid).is_empty());
        match graph::decide(&states, has_dependents) {
            Decision::Keep => Ok(()),
            Decision::RemoveReferences(gone) => self.remove_references(uid, &node, &gone).await,
            Decision::Delete { foreground } => self.delete(uid, &node, foreground).await,
        }
    }

    /// Whether an owner exists: the graph first, then the API (the graph may lag).
    async fn owner_state(
        &self,
        node: &Node,
        owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    ) -> Result<OwnerState, Error> {
        let known = self.graph(|g| g.get(&owner.uid).map(Node::deleting_dependents));
        match known {
            Some(true) => return Ok(OwnerState::WaitingForDependents),
            Some(false) => return Ok(OwnerState::Solid),
            None => {}
        }
        let discovery = self
            .discovery
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (group, version) = match owner.api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", owner.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &owner.kind);
        let Some((resource, caps)) = discovery.and_then(|d| d.resolve_gvk(&gvk)) else {
            // Perhaps a kind the next discovery finds: retried, never taken for gone (as
            // upstream's `restMappingError`).
            return Err(Error::UnknownKind {
                api_version: owner.api_version.clone(),
                kind: owner.kind.clone(),
            });
        };
        let api: Api<DynamicObject> = match (&caps.scope, node.namespace.as_deref()) {
            (Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(self.client.clone(), ns, &resource)
            }
            (Scope::Namespaced, None) => {
                // A cluster-scoped object cannot have a namespaced owner.
                return Ok(OwnerState::Dangling);
            }
            (Scope::Cluster, _) => Api::all_with(self.client.clone(), &resource),
        };
        match api.get_metadata_opt(&owner.name).await {
            Ok(Some(found)) if found.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
                let waiting = found.metadata.deletion_timestamp.is_some()
                    && found
                        .metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == FOREGROUND);
                Ok(if waiting {
                    OwnerState::WaitingForDependents
                } else {
                    OwnerState::Solid
                })
            }
            Ok(_) => Ok(OwnerState::Dangling),
            Err(source) => Err(Error::Api {
                what: format!("looking up {} {}", owner.kind, owner.name),
                source,
            }),
        }
    }

    async fn delete(&self, uid: &str, node: &Node, foreground: bool) -> Result<(), Error> {
        let Some(watched) = self.watched(node.resource) else {
            return Ok(());
        };
        let params = DeleteParams {
            propagation_policy: Some(if foreground {
                PropagationPolicy::Foreground
            } else {
                PropagationPolicy::Background
            }),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let api = self.api(&watched, node.namespace.as_deref());
        match api.delete(&node.name, &params).await {
            Ok(_) => {
                tracing::info!(kind = %watched.resource.kind, namespace = ?node.namespace, name = %node.name, "deleted: its owners are gone");
                Ok(())
            }
            // Gone already, or replaced: nothing to collect.
            Err(e) if api_errors::is_not_found(&e) || api_errors::is_conflict(&e) => Ok(()),
            Err(source) => Err(Error::Api {
                what: format!("deleting {} {}", watched.resource.kind, node.name),
                source,
            }),
        }
    }

    /// Rewrites the object's owner references without `gone` (a merge patch pinned to the
    /// version read, as upstream's).
    async fn remove_references(
        &self,
        uid: &str,
        node: &Node,
        gone: &[String],
    ) -> Result<(), Error> {
        let Some(watched) = self.watched(node.resource) else {
            return Ok(());
        };
        let remaining: Vec<_> = node
            .owners
            .iter()
            .filter(|o| !gone.contains(&o.uid))
            .collect();
        let patch = json!({
            "metadata": {
                "ownerReferences": remaining,
                "uid": uid,
                "resourceVersion": node.resource_version,
            }
        });
        let api = self.api(&watched, node.namespace.as_deref());
        match api
            .patch(&node.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if api_errors::is_not_found(&e) => Ok(()),
            Err(source) => Err(Error::Api {
                what: format!(
                    "removing owner references of {} {}",
                    watched.resource.kind, node.name
                ),
                source,
            }),
        }
    }

    /// Removes `finalizer` from the object (pinned to the version read).
    async fn remove_finalizer(&self, uid: &str, node: &Node, finalizer: &str) -> Result<(), Error> {
        let Some(watched) = self.watched(node.resource) else {
            return Ok(());
        };
        let remaining: Vec<&String> = node.finalizers.iter().filter(|f| *f != finalizer).collect();
        let patch = json!({
            "metadata": {
                "finalizers": remaining,
                "uid": uid,
                "resourceVersion": node.resource_version,
            }
        });
        let api = self.api(&watched, node.namespace.as_deref());
        match api
            .patch(&node.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if api_errors::is_not_found(&e) => Ok(()),
            Err(source) => Err(Error::Api {
                what: format!("removing the {finalizer} finalizer of {}", node.name),
                source,
            }),
        }
    }

    /// `orphan`: the dependents lose their references to the owner, then the owner its
    /// finalizer (upstream's `orphanDependents`).
    async fn orphan_dependents(&self, uid: &str, owner: &Node) -> Result<(), Error> {
        for dependent in self.graph(|g| g.dependents_of(uid)) {
            if let Some(node) = self.graph(|g| g.get(&dependent).cloned()) {
                self.remove_references(&dependent, &node, &[uid.to_owned()])
                    .await?;
            }
        }
        self.remove_finalizer(uid, owner, ORPHAN).await
    }

    /// `foregroundDeletion`: deletes the dependents; once none that blocks its owner's
    /// deletion is left, removes the finalizer (upstream's `processDeletingDependentsItem`).
    async fn delete_dependents(&self, uid: &str, owner: &Node) -> Result<(), Error> {
        let dependents: Vec<(String, Node)> = self.graph(|g| {
            g.dependents_of(uid)
                .into_iter()
                .filter_map(|d| g.get(&d).cloned().map(|n| (d, n)))
                .collect()
        });
        let blocking = dependents.iter().any(|(_, node)| {
            node.owners
                .iter()
                .any(|o| o.uid == uid && o.block_owner_deletion == Some(true))
        });
        if !blocking {
            return self.remove_finalizer(uid, owner, FOREGROUND).await;
        }
        for (dependent, node) in dependents.iter().filter(|(_, n)| !n.deleting) {
            // Those with owners of their own go the same way, in the foreground.
            let has_dependents = self.graph(|g| !g.dependents_of(dependent).is_empty());
            self.delete(dependent, node, has_dependents).await?;
        }
        Ok(())
    }
}

/// Looks at queued objects, once every resource was listed; failures go back in the queue
/// after a back-off.
async fn work(collector: Arc<Collector>, mut synced: tokio::sync::watch::Receiver<bool>) {
    if synced.wait_for(|s| *s).await.is_err() {
        return;
    }
    loop {
        let uid = collector.queue.pop().await;
        match collector.process(&uid).await {
            Ok(()) => collector.backoff.succeeded(&uid),
            Err(error) => {
                let delay = collector.backoff.failed(&uid);
                tracing::warn!(%error, ?delay, "garbage collector");
                let collector = Arc::clone(&collector);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    collector.queue.push(uid);
                });
            }
        }
    }
}

/// Runs the collector until the process ends.
pub async fn run(client: Client) {
    let collector = Arc::new(Collector {
        client,
        graph: Mutex::new(Graph::default()),
        resources: Mutex::new(Vec::new()),
        discovery: Mutex::new(None),
        queue: Queue::default(),
        backoff: Backoff::default(),
    });
    let (synced, synced_rx) = tokio::sync::watch::channel(false);
    let watches = Watches {
        collector: Arc::clone(&collector),
        streams: SelectAll::new(),
        watched: HashMap::new(),
        relisting: HashMap::new(),
        unsynced: HashSet::new(),
        synced,
    };
    tokio::join!(work(collector, synced_rx), watches.run());
}
