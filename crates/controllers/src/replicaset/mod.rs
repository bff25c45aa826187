//! The replica controller: upstream's `replicaset-controller`
//! (`pkg/controller/replicaset/replica_set.go`), run once for ReplicaSets and once for
//! ReplicationControllers (upstream's `replication-controller` is the same code).
//!
//! A sync ([`reconcile`]): claim the active pods of the namespace (keep the ones it controls
//! and its selector matches, adopt matching orphans, release the ones that stopped
//! matching); unless creations or deletions it asked for are still on their way to its pod
//! cache ([`crate::expectations`]), create or delete pods to reach `spec.replicas`
//! ([`manage`]); then write the status ([`status`]).
//!
//! Its pod cache is its own watch ([`crate::informer`]); pod events are handled as upstream's
//! `addPod`/`updatePod`/`deletePod`: they lower expectations and queue the pod's controller
//! (old and new, when it changed) or, for an orphan, every set whose selector matches it.

pub mod kind;
mod manage;
pub mod ranking;
pub mod status;

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use tokio::time::Instant;

pub use kind::{ReplicaKind, ReplicaStatus};

use crate::backoff::Backoff;
use crate::events::Recorder;
use crate::expectations::{self, Expectations};
use crate::informer::{self, Change};
use crate::{api_errors, claim, owner, pods};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{object}: {action}: {source}")]
    Api {
        object: String,
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("{object}: claiming pods: {source}")]
    Claim {
        object: String,
        #[source]
        source: claim::Error,
    },
    #[error("{object} has no pod template")]
    NoTemplate { object: String },
    #[error("{object}: {failed} of {attempted} pod operations failed, first: {source}")]
    Pods {
        object: String,
        failed: usize,
        attempted: usize,
        #[source]
        source: kube::Error,
    },
    #[error("the pod cache stopped")]
    CacheStopped,
}

impl Error {
    /// What the `ReplicaFailure` condition says: the API's own message, as upstream's.
    fn condition_message(&self) -> String {
        match self {
            Error::Api { source, .. } | Error::Pods { source, .. } => api_errors::message(source),
            other => other.to_string(),
        }
    }
}

pub(crate) struct Context<K: ReplicaKind> {
    client: Client,
    pods: informer::Cache<Pod>,
    sets: Store<K>,
    expectations: Arc<Expectations>,
    backoff: Backoff,
    events: Recorder,
}

/// `Kind namespace/name`, for errors and logs.
fn describe<K: ReplicaKind>(set: &K) -> String {
    format!(
        "{} {}/{}",
        K::kind(&()),
        set.namespace().unwrap_or_default(),
        set.name_any()
    )
}

async fn reconcile<K: ReplicaKind>(set: Arc<K>, ctx: Arc<Context<K>>) -> Result<Action, Error> {
    ctx.pods
        .wait_until_ready()
        .await
        .map_err(|_| Error::CacheStopped)?;
    let object = describe(&*set);
    let uid = set.meta().uid.clone().unwrap_or_default();
    let namespace = set.namespace().unwrap_or_default();
    let in_namespace: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .collect();
    let cached: HashSet<&str> = in_namespace
        .iter()
        .filter_map(|p| p.metadata.uid.as_deref())
        .collect();
    let expectation = ctx
        .expectations
        .status(&uid, Instant::now(), |pod| cached.contains(pod));
    let active: Vec<Arc<Pod>> = in_namespace
        .iter()
        .filter(|p| pods::is_active(p))
        .cloned()
        .collect();
    let selector = set.selector();
    let owned = claim::claim(&ctx.client, &*set, active, |pod: &Pod| {
        selector.matches(pod.labels())
    })
    .await
    .map_err(|source| Error::Claim {
        object: object.clone(),
        source,
    })?;

    let failure = if expectation == expectations::Status::Satisfied
        && set.meta().deletion_timestamp.is_none()
    {
        manage::replicas(&ctx, &set, &owned).await.err()
    } else {
        None
    };

    let now = Timestamp::now();
    let failure_message = failure.as_ref().map(Error::condition_message);
    let observed = status::Observed {
        previous: set.replica_status(),
        generation: set.meta().generation.unwrap_or(0),
        desired: set.replicas(),
        min_ready_seconds: set.min_ready_seconds(),
        template_labels: set
            .template()
            .and_then(|t| t.metadata.as_ref()?.labels.as_ref()),
        pods: &owned,
        failure: failure_message.as_deref(),
    };
    let status = status::calculate(&observed, now);
    if status != set.replica_status() {
        let mut updated = (*set).clone();
        updated.set_replica_status(status);
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
        api.replace_status(&set.name_any(), &PostParams::default(), &updated)
            .await
            .map_err(|source| Error::Api {
                object: object.clone(),
                action: "updating status".into(),
                source,
            })?;
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    let mut next = status::next_availability_check(&owned, set.min_ready_seconds(), now);
    if let expectations::Status::Waiting(left) = expectation {
        next = Some(next.map_or(left, |n| n.min(left)));
    }
    ctx.backoff.succeeded(&uid);
    Ok(next.map_or_else(Action::await_change, Action::requeue))
}

fn error_policy<K: ReplicaKind>(set: Arc<K>, error: &Error, ctx: Arc<Context<K>>) -> Action {
    let delay = ctx
        .backoff
        .failed(set.meta().uid.as_deref().unwrap_or_default());
    let conflict = matches!(error, Error::Api { source, .. } if api_errors::is_conflict(source));
    if conflict {
        tracing::debug!(%error, "replica controller: conflict, retrying");
    } else {
        tracing::warn!(%error, ?delay, "replica controller");
    }
    Action::requeue(delay)
}

/// Upstream's pod event handlers: what a pod event tells the expectations (a pod appearing
/// with a controller of kind `K` is a creation seen; one gone or being deleted, a deletion
/// seen), and which sets to sync. Sees the cache before the event.
fn on_pod_event<K: ReplicaKind>(
    event: &Event<Pod>,
    cache: &Store<Pod>,
    sets: &Store<K>,
    expectations: &Expectations,
) -> Vec<ObjectRef<K>> {
    if let Some((change, old)) = informer::object_of(event, cache)
        && let Event::Apply(pod) | Event::InitApply(pod) | Event::Delete(pod) = event
        && let Some(controller) = owner::controller_of_kind::<K>(&pod.metadata)
    {
        if change == Change::Deleted || pod.metadata.deletion_timestamp.is_some() {
            let uid = pod.metadata.uid.as_deref().unwrap_or_default();
            expectations.deletion_observed(&controller.uid, uid);
        } else if old.is_none() {
            expectations.creation_observed(&controller.uid);
        }
    }
    informer::controllers_to_sync(event, cache, sets, |set: &K, pod: &Pod| {
        set.selector().matches(pod.labels())
    })
}

/// The controller for kind `K`, reading pods through the shared `pods` informer; runs until
/// its watches end.
pub fn run<K: ReplicaKind>(
    client: Client,
    pods: &mut informer::Shared<Pod>,
) -> impl std::future::Future<Output = ()> + use<K> {
    let controller = Controller::new(Api::<K>::all(client.clone()), watcher::Config::default());
    let sets = controller.store();
    let expectations = Arc::new(Expectations::default());
    let (pods, requests) = {
        let sets = sets.clone();
        let expectations = Arc::clone(&expectations);
        pods.subscribe(move |event, cache| on_pod_event(event, cache, &sets, &expectations))
    };
    let ctx = Arc::new(Context {
        events: Recorder::new(client.clone(), K::COMPONENT),
        client,
        pods,
        sets,
        expectations,
        backoff: Backoff::default(),
    });
    let cleanup = Arc::clone(&ctx);
    // Built when the future first runs (see the Deployment controller's `run`).
    async move {
        controller
            .reconcile_on(requests)
            .run(reconcile::<K>, error_policy::<K>, ctx)
            .for_each(move |result| {
                if let Err(kube::runtime::controller::Error::ObjectNotFound(_)) = result {
                    // A set was deleted: forget what was expected of sets that are gone.
                    let alive: HashSet<String> = cleanup
                        .sets
                        .state()
                        .iter()
                        .filter_map(|s| s.meta().uid.clone())
                        .collect();
                    cleanup
                        .expectations
                        .retain_owners(|uid| alive.contains(uid));
                }
                std::future::ready(())
            })
            .await
    }
}
