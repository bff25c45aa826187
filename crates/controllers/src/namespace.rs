//! The namespace controller (upstream's `namespace-controller`): when a namespace is marked
//! for deletion, delete every namespaced object in it, and once none is left, remove the
//! `kubernetes` finalizer through `/finalize`; the API server then removes the namespace.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{Discovery, Scope, verbs};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

/// The finalizer this controller owns (`spec.finalizers` of a Namespace).
pub const FINALIZER: &str = "kubernetes";

/// Whether objects belong in the namespace: it is Active and not being deleted. The
/// controllers that put objects in every namespace skip the others, so that this one can
/// empty them.
pub fn is_active(namespace: &Namespace) -> bool {
    namespace.metadata.deletion_timestamp.is_none()
        && namespace
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_none_or(|phase| phase == "Active")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("namespace {namespace}: {source}")]
    Api {
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

struct Context {
    client: Client,
}

/// How soon to look again while objects are still going away (pods wait for their grace period).
const RECHECK: Duration = Duration::from_secs(1);

async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = namespace.name_any();
    let api_error = |source| Error::Api {
        namespace: name.clone(),
        source,
    };
    if namespace.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let finalizers = namespace
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    // Everything namespaced that can be deleted as a collection, as discovery says today.
    let discovery = Discovery::new(ctx.client.clone())
        .run()
        .await
        .map_err(api_error)?;
    let mut remaining = 0;
    for group in discovery.groups() {
        for (resource, capabilities) in group.recommended_resources() {
            if capabilities.scope != Scope::Namespaced
                || !capabilities.supports_operation(verbs::DELETE_COLLECTION)
                || !capabilities.supports_operation(verbs::LIST)
            {
                continue;
            }
            let api: Api<DynamicObject> =
                Api::namespaced_with(ctx.client.clone(), &name, &resource);
            let left = api
                .list_metadata(&ListParams::default())
                .await
                .map_err(api_error)?;
            if left.items.is_empty() {
                continue;
            }
            remaining += left.items.len();
            api.delete_collection(&DeleteParams::background(), &ListParams::default())
                .await
                .map_err(api_error)?;
            tracing::debug!(namespace = %name, resource = %resource.plural, count = left.items.len(), "deleting");
        }
    }
    if remaining > 0 {
        return Ok(Action::requeue(RECHECK));
    }
    let mut finalized = (*namespace).clone();
    if let Some(spec) = finalized.spec.as_mut() {
        spec.finalizers = Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
    }
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    namespaces
        .replace_subresource("finalize", &name, &PostParams::default(), &finalized)
        .await
        .map_err(api_error)?;
    tracing::info!(namespace = %name, "namespace emptied and finalized");
    Ok(Action::await_change())
}

fn error_policy(_namespace: Arc<Namespace>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "namespace controller");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the controller until its watch ends.
pub async fn run(client: Client) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    Controller::new(namespaces, watcher::Config::default())
        .run(reconcile, error_policy, Arc::new(Context { client }))
        .for_each(|_| async {})
        .await;
}
