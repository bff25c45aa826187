//! The Deployment controller: upstream's `deployment-controller`
//! (`pkg/controller/deployment`). A Deployment runs its pods through ReplicaSets, one per pod
//! template, named `<deployment>-<pod-template-hash>`; the ReplicaSet controller does the
//! pods.
//!
//! A sync ([`reconcile`], upstream's `syncDeployment`), in upstream's order of precedence:
//! claim the ReplicaSets the selector matches; a Deployment being deleted only gets its
//! status; a pause or resume sets the `Progressing` condition; a paused Deployment, or a
//! scaling event (a new `spec.replicas`), scales its ReplicaSets without rolling; otherwise
//! a step of its strategy, `RollingUpdate` or `Recreate` ([`sync`]). Rollbacks need nothing
//! here: `kubectl rollout undo` copies an old ReplicaSet's template into the Deployment, and
//! that ReplicaSet becomes the new one again, with the next revision.
//!
//! It watches Deployments, its own cache of ReplicaSets (events handled as upstream's
//! `addReplicaSet`/`updateReplicaSet`/`deleteReplicaSet`), and pod deletions, which a
//! Recreate rollout waits for.

pub mod hash;
pub mod revision;
pub mod rollout;
pub mod status;
mod sync;
pub mod template;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};

use cox_api::labels::Selector;

use crate::backoff::Backoff;
use crate::events::Recorder;
use crate::informer;
use crate::{api_errors, claim, owner};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{object}: {action}: {source}")]
    Api {
        object: String,
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("{object}: claiming replica sets: {source}")]
    Claim {
        object: String,
        #[source]
        source: claim::Error,
    },
    #[error("{object}: {message}")]
    Invalid { object: String, message: String },
    #[error("the replica set or pod cache stopped")]
    CacheStopped,
}

pub(crate) struct Context {
    client: Client,
    sets: informer::Cache<ReplicaSet>,
    pods: informer::Cache<Pod>,
    events: Recorder,
    backoff: Backoff,
}

/// The Deployment's selector; `None` for the empty selector, which selects everything and
/// which upstream refuses to act on.
fn selector(d: &Deployment) -> Option<Selector> {
    let selector = &d.spec.as_ref()?.selector;
    let json = serde_json::to_value(selector).ok()?;
    Selector::from_label_selector(&json)
        .ok()
        .filter(|s| !s.is_everything())
}

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.sets
        .wait_until_ready()
        .await
        .map_err(|_| Error::CacheStopped)?;
    ctx.pods
        .wait_until_ready()
        .await
        .map_err(|_| Error::CacheStopped)?;
    let object = format!(
        "Deployment {}/{}",
        d.namespace().unwrap_or_default(),
        d.name_any()
    );
    let namespace = d.namespace().unwrap_or_default();
    let Some(selector) = selector(&d) else {
        ctx.events
            .warning(
                &*d,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            .await;
        let observed = d.status.as_ref().and_then(|s| s.observed_generation);
        if observed.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
            let mut updated = (*d).clone();
            updated
                .status
                .get_or_insert_with(Default::default)
                .observed_generation = d.metadata.generation;
            Api::<Deployment>::namespaced(ctx.client.clone(), &namespace)
                .replace_status(&d.name_any(), &PostParams::default(), &updated)
                .await
                .map_err(|source| Error::Api {
                    object,
                    action: "updating status".into(),
                    source,
                })?;
        }
        return Ok(Action::await_change());
    };

    let candidates: Vec<Arc<ReplicaSet>> = ctx
        .sets
        .state()
        .into_iter()
        .filter(|rs| rs.namespace().as_deref() == Some(namespace.as_str()))
        .collect();
    let sets = claim::claim(&ctx.client, &*d, candidates, |rs: &ReplicaSet| {
        selector.matches(rs.labels())
    })
    .await
    .map_err(|source| Error::Claim {
        object: object.clone(),
        source,
    })?;
    let sets: Vec<ReplicaSet> = sets.iter().map(|rs| (**rs).clone()).collect();
    let mut sync = sync::Sync::new(&ctx, (*d).clone(), sets);

    if d.metadata.deletion_timestamp.is_some() {
        sync.sync_status_only().await?;
        return Ok(Action::await_change());
    }
    sync.check_paused_conditions().await?;
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    if paused || sync.is_scaling_event().await? {
        sync.sync_scale().await?;
    } else {
        match rollout::strategy_type(&d) {
            "Recreate" => {
                let pods = pods_of(&ctx, &d, &selector, &sync.sets);
                sync.rollout_recreate(&pods).await?;
            }
            "RollingUpdate" => sync.rollout_rolling().await?,
            other => {
                return Err(Error::Invalid {
                    object,
                    message: format!("unexpected deployment strategy type: {other}"),
                });
            }
        }
    }
    ctx.backoff
        .succeeded(d.metadata.uid.as_deref().unwrap_or_default());
    Ok(sync
        .requeue
        .map_or_else(Action::await_change, Action::requeue))
}

/// The pods of the Deployment's ReplicaSets (upstream's `getPodMapForDeployment`).
fn pods_of(
    ctx: &Context,
    d: &Deployment,
    selector: &Selector,
    sets: &[ReplicaSet],
) -> Vec<Arc<Pod>> {
    let uids: Vec<&str> = sets
        .iter()
        .filter_map(|rs| rs.metadata.uid.as_deref())
        .collect();
    ctx.pods
        .state()
        .into_iter()
        .filter(|p| p.namespace() == d.namespace() && selector.matches(p.labels()))
        .filter(|p| {
            owner::controller_of(&p.metadata).is_some_and(|c| uids.contains(&c.uid.as_str()))
        })
        .collect()
}

fn error_policy(d: Arc<Deployment>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx
        .backoff
        .failed(d.metadata.uid.as_deref().unwrap_or_default());
    let conflict = matches!(error, Error::Api { source, .. } if api_errors::is_conflict(source));
    if conflict {
        tracing::debug!(%error, "deployment controller: conflict, retrying");
    } else {
        tracing::warn!(%error, ?delay, "deployment controller");
    }
    Action::requeue(delay)
}

/// Recreate rollouts wait for old pods to go: a deleted pod of a ReplicaSet of a Recreate
/// Deployment queues that Deployment (upstream's `deletePod`).
fn on_pod_event(
    event: &Event<Pod>,
    sets: &Store<ReplicaSet>,
    deployments: &Store<Deployment>,
) -> Vec<ObjectRef<Deployment>> {
    let Event::Delete(pod) = event else {
        return Vec::new();
    };
    let namespace = pod.namespace().unwrap_or_default();
    let Some(rs_ref) = owner::controller_of_kind::<ReplicaSet>(&pod.metadata) else {
        return Vec::new();
    };
    let Some(rs) = sets.get(&ObjectRef::new(&rs_ref.name).within(&namespace)) else {
        return Vec::new();
    };
    let Some(d_ref) = owner::controller_of_kind::<Deployment>(&rs.metadata) else {
        return Vec::new();
    };
    let request = ObjectRef::new(&d_ref.name).within(&namespace);
    match deployments.get(&request) {
        Some(d) if rollout::strategy_type(&d) == "Recreate" => vec![request],
        _ => Vec::new(),
    }
}

/// The controller, reading pods through the shared `pods` informer; runs until its watches
/// end.
pub fn run(
    client: Client,
    pods: &mut informer::Shared<Pod>,
) -> impl std::future::Future<Output = ()> + use<> {
    let controller = Controller::new(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    );
    let deployments = controller.store();
    let (sets, set_requests) = {
        let deployments = deployments.clone();
        informer::watch(
            Api::<ReplicaSet>::all(client.clone()),
            move |event, cache| {
                informer::controllers_to_sync(
                    event,
                    cache,
                    &deployments,
                    |d: &Deployment, rs: &ReplicaSet| {
                        selector(d).is_some_and(|s| s.matches(rs.labels()))
                    },
                )
            },
        )
    };
    let (pods, pod_requests) = {
        let (deployments, sets) = (deployments.clone(), sets.clone());
        pods.subscribe(move |event, _cache| on_pod_event(event, &sets, &deployments))
    };
    let ctx = Arc::new(Context {
        events: Recorder::new(client.clone(), "deployment-controller"),
        client,
        sets,
        pods,
        backoff: Backoff::default(),
    });
    // The controller's stream is built when the future first runs, as an `async fn`'s body
    // would be: built ahead, a new leader's controller sometimes never reconciled.
    async move {
        controller
            .reconcile_on(set_requests)
            .reconcile_on(pod_requests)
            .run(reconcile, error_policy, ctx)
            .for_each(|_| std::future::ready(()))
            .await;
    }
}
