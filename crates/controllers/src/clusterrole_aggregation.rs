//! The ClusterRole aggregation controller (upstream's `clusterrole-aggregation`): a
//! ClusterRole with an `aggregationRule` gets, as its `rules`, the union of the rules of every
//! ClusterRole its selectors match, so `admin`, `edit` and `view` grow with the roles labelled
//! `rbac.authorization.k8s.io/aggregate-to-*`. The union is `cox_api::rbac`'s; a change of any
//! ClusterRole brings every aggregated one back for another look.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};

use crate::backoff::Backoff;

#[derive(Debug, thiserror::Error)]
#[error("clusterrole {name}: writing its aggregated rules: {source}")]
pub struct Error {
    name: String,
    #[source]
    source: kube::Error,
}

struct Context {
    client: Client,
    roles: crate::informer::Cache<ClusterRole>,
    backoff: Backoff,
}

async fn reconcile(role: Arc<ClusterRole>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = role.name_any();
    // Aggregated from a filled cache only: a partial one would write back too few rules.
    if ctx.roles.wait_until_ready().await.is_err() {
        return Ok(Action::await_change());
    }
    let all = ctx.roles.state();
    let rules = match cox_api::rbac::aggregated_rules(&role, all.iter().map(AsRef::as_ref)) {
        Ok(Some(rules)) => rules,
        Ok(None) => return Ok(Action::await_change()),
        Err(error) => {
            tracing::warn!(%error, "a ClusterRole's aggregation rule");
            return Ok(Action::await_change());
        }
    };
    if role.rules.clone().unwrap_or_default() == rules {
        ctx.backoff.succeeded(&name);
        return Ok(Action::await_change());
    }
    let api: Api<ClusterRole> = Api::all(ctx.client.clone());
    // A merge patch replaces the list whole, as upstream's controller writes it.
    let patch = serde_json::json!({"rules": rules});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error {
            name: name.clone(),
            source,
        })?;
    ctx.backoff.succeeded(&name);
    Ok(Action::await_change())
}

fn error_policy(role: Arc<ClusterRole>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "clusterrole aggregation controller");
    Action::requeue(ctx.backoff.failed(&role.name_any()))
}

/// Runs the controller until its watches end.
pub async fn run(client: Client) {
    let api = Api::<ClusterRole>::all(client.clone());
    let controller = Controller::new(api.clone(), watcher::Config::default());
    // Any change of any ClusterRole may change what an aggregated one gathers. A (re-)list
    // asks again for every aggregated role it holds, once the whole list is in the cache:
    // the controller's own watch may have judged a role against a cache not yet filled.
    let (roles, changes) = crate::informer::watch_with(
        api,
        watcher::Config::default(),
        |event: &Event<ClusterRole>, store: &Store<ClusterRole>| match event {
            Event::Apply(_) | Event::Delete(_) => store
                .state()
                .iter()
                .filter(|r| r.aggregation_rule.is_some())
                .map(|r| ObjectRef::new(&r.name_any()))
                .collect(),
            Event::InitApply(role) if role.aggregation_rule.is_some() => {
                vec![ObjectRef::new(&role.name_any())]
            }
            _ => Vec::new(),
        },
    );
    let ctx = Arc::new(Context {
        client,
        roles,
        backoff: Backoff::default(),
    });
    controller
        .reconcile_on(changes)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
}
