//! The root CA publisher (upstream's `root-ca-cert-publisher`): every active namespace has
//! a ConfigMap `kube-root-ca.crt` whose `ca.crt` is the cluster CA's certificate, so that
//! pods can verify the API server (projected service account volumes mount it). It is
//! created when a namespace appears, created again when deleted, and put back when edited;
//! a namespace being deleted is left alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};

use crate::api_errors;
use crate::backoff::Backoff;

/// The ConfigMap's name, as upstream's.
pub const CONFIG_MAP: &str = "kube-root-ca.crt";
/// The key that holds the certificate (PEM).
pub const KEY: &str = "ca.crt";
/// The annotation that says what the ConfigMap is for.
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// Upstream's description, word for word: clients and people read it.
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

#[derive(Debug, thiserror::Error)]
#[error("namespace {namespace}: publishing the root CA: {source}")]
pub struct Error {
    namespace: String,
    #[source]
    source: kube::Error,
}

struct Context {
    client: Client,
    /// The `kube-root-ca.crt` ConfigMaps, in every namespace.
    config_maps: crate::informer::Cache<ConfigMap>,
    ca_pem: String,
    backoff: Backoff,
}

/// The ConfigMap as it should be: `found` (if any) with the certificate and the description
/// put back; `None` when `found` already is.
pub fn desired(found: Option<&ConfigMap>, ca_pem: &str) -> Option<ConfigMap> {
    let data = BTreeMap::from([(KEY.to_owned(), ca_pem.to_owned())]);
    let described = |c: &ConfigMap| {
        c.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
            .is_some_and(|d| !d.is_empty())
    };
    if let Some(found) = found
        && found.data.as_ref() == Some(&data)
        && described(found)
    {
        return None;
    }
    let mut config_map = found.cloned().unwrap_or_else(|| ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONFIG_MAP.to_owned()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    });
    config_map.data = Some(data);
    config_map
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(DESCRIPTION_ANNOTATION.to_owned(), DESCRIPTION.to_owned());
    Some(config_map)
}

async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = namespace.name_any();
    // Judged only against a filled cache (upstream's controllers wait for their caches to
    // sync), or every ConfigMap would look missing.
    if !crate::namespace::is_active(&namespace) || ctx.config_maps.wait_until_ready().await.is_err()
    {
        return Ok(Action::await_change());
    }
    let found = ctx
        .config_maps
        .get(&ObjectRef::new(CONFIG_MAP).within(&name));
    let Some(wanted) = desired(found.as_deref(), &ctx.ca_pem) else {
        ctx.backoff.succeeded(&name);
        return Ok(Action::await_change());
    };
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &name);
    let written = if found.is_some() {
        // Pinned to the cached version: a conflict is retried with the newer one.
        api.replace(CONFIG_MAP, &PostParams::default(), &wanted)
            .await
    } else {
        api.create(&PostParams::default(), &wanted).await
    };
    match written {
        Ok(_) => tracing::info!(namespace = %name, "published the root CA"),
        // A namespace going away needs none.
        Err(e) if api_errors::is_namespace_terminating(&e) => {}
        Err(e) if found.is_none() && api_errors::is_not_found(&e) => {}
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
    tracing::warn!(%error, "root CA publisher");
    Action::requeue(ctx.backoff.failed(&namespace.name_any()))
}

/// Runs the publisher of `ca_pem` (the cluster CA's certificate) until its watches end.
pub async fn run(client: Client, ca_pem: String) {
    let controller = Controller::new(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    );
    // Any change to one of the ConfigMaps (an edit, a deletion) brings its namespace back.
    let (config_maps, changes) = crate::informer::watch_with(
        Api::<ConfigMap>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={CONFIG_MAP}")),
        |event: &Event<ConfigMap>, _: &Store<ConfigMap>| match event {
            Event::Apply(config_map) | Event::Delete(config_map) => config_map
                .namespace()
                .map(|ns| vec![ObjectRef::<Namespace>::new(&ns)])
                .unwrap_or_default(),
            _ => Vec::new(),
        },
    );
    let ctx = Arc::new(Context {
        client,
        config_maps,
        ca_pem,
        backoff: Backoff::default(),
    });
    controller
        .reconcile_on(changes)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_missing_config_map_is_made_with_the_certificate_and_description() {
        let made = desired(None, CA).expect("one to create");
        assert_eq!(made.metadata.name.as_deref(), Some(CONFIG_MAP));
        assert_eq!(
            made.data
                .as_ref()
                .and_then(|d| d.get(KEY))
                .map(String::as_str),
            Some(CA)
        );
        assert_eq!(
            made.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
                .map(String::as_str),
            Some(DESCRIPTION)
        );
        assert_eq!(desired(Some(&made), CA), None);
    }

    #[test]
    fn edits_are_put_back_and_other_metadata_kept() {
        let mut edited = desired(None, CA).expect("one to create");
        edited.metadata.resource_version = Some("7".into());
        edited.metadata.labels = Some(BTreeMap::from([("team".into(), "a".into())]));
        edited.data = Some(BTreeMap::from([
            (KEY.to_owned(), "tampered".to_owned()),
            ("extra".to_owned(), "x".to_owned()),
        ]));
        let fixed = desired(Some(&edited), CA).expect("a fix");
        assert_eq!(
            fixed.data,
            Some(BTreeMap::from([(KEY.to_owned(), CA.to_owned())]))
        );
        assert_eq!(fixed.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(fixed.metadata.labels, edited.metadata.labels);

        let mut undescribed = desired(None, CA).expect("one to create");
        undescribed.metadata.annotations = None;
        assert!(desired(Some(&undescribed), CA).is_some());
    }
}
