//! The service account controller (upstream's `serviceaccount-controller`): every active
//! namespace has a ServiceAccount named `default`, the one pods run as when they name none.
//! It is created when a namespace appears and again when it is deleted; a namespace being
//! deleted is left alone, so that the namespace controller can empty it.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};

use crate::api_errors;
use crate::backoff::Backoff;

/// The ServiceAccount every namespace gets.
pub const DEFAULT: &str = "default";

#[derive(Debug, thiserror::Error)]
#[error("namespace {namespace}: creating its default service account: {source}")]
pub struct Error {
    namespace: String,
    #[source]
    source: kube::Error,
}

struct Context {
    client: Client,
    /// The `default` ServiceAccounts, in every namespace.
    accounts: crate::informer::Cache<ServiceAccount>,
    backoff: Backoff,
}

async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = namespace.name_any();
    // Judged only against a filled cache, or every account would look missing.
    if ctx.accounts.wait_until_ready().await.is_err() {
        return Ok(Action::await_change());
    }
    if !crate::namespace::is_active(&namespace)
        || ctx
            .accounts
            .get(&ObjectRef::new(DEFAULT).within(&name))
            .is_some()
    {
        ctx.backoff.succeeded(&name);
        return Ok(Action::await_change());
    }
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT.to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    match api.create(&PostParams::default(), &account).await {
        Ok(_) => tracing::info!(namespace = %name, "created the default service account"),
        // The cache was behind, or the namespace is going away: nothing to do.
        Err(e)
            if api_errors::is_already_exists(&e)
                || api_errors::is_not_found(&e)
                || api_errors::is_namespace_terminating(&e) => {}
        Err(source) => {
            return Err(Error {
                namespace: name,
                source,
            });
        }
    }
    ctx.backoff.succeeded(&name);
    Ok(Action::await_change())
}

fn error_policy(namespace: Arc<Namespace>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "service account controller");
    Action::requeue(ctx.backoff.failed(&namespace.name_any()))
}

/// Runs the controller until its watches end.
pub async fn run(client: Client) {
    let controller = Controller::new(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    );
    // A deleted `default` account brings its namespace back for another look.
    let (accounts, deletions) = crate::informer::watch_with(
        Api::<ServiceAccount>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={DEFAULT}")),
        |event: &Event<ServiceAccount>, _: &Store<ServiceAccount>| match event {
            Event::Delete(account) => account
                .namespace()
                .map(|ns| vec![ObjectRef::<Namespace>::new(&ns)])
                .unwrap_or_default(),
            _ => Vec::new(),
        },
    );
    let ctx = Arc::new(Context {
        client,
        accounts,
        backoff: Backoff::default(),
    });
    controller
        .reconcile_on(deletions)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
}
