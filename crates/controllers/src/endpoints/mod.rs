//! The endpoint controllers: for every Service with a selector, the EndpointSlices
//! ([`slices`], upstream's `endpointslice-controller`) and the Endpoints object ([`legacy`],
//! upstream's `endpoint-controller`) listing the pods behind it ([`backends`]); for a Service
//! without one, EndpointSlices mirroring its hand-written Endpoints (upstream's
//! `endpointslicemirroring-controller`). Upstream runs three controllers; here one sync of a
//! Service writes all of it, from one pod cache.
//!
//! A sync is requested by changes to the Service, to a pod it selects (before or after the
//! change), and to its slices or Endpoints (so that a hand edit or deletion is undone). When
//! a Service goes, its slices go with it through their owner reference; its Endpoints, which
//! have none, are deleted here.

pub mod backends;
pub mod legacy;
pub mod slices;

use std::sync::Arc;

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};

use crate::api_errors;
use crate::backoff::Backoff;
use crate::informer;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("service {service}: {action}: {source}")]
    Api {
        service: String,
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("a cache stopped")]
    CacheStopped,
}

/// How often a Service without selector is mirrored again when nothing changed.
const MIRROR_RESYNC: std::time::Duration = std::time::Duration::from_secs(20);

struct Context {
    client: Client,
    pods: informer::Cache<Pod>,
    slices: informer::Cache<EndpointSlice>,
    endpoints: informer::Cache<Endpoints>,
    backoff: Backoff,
}

async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    for ready in [
        ctx.pods.wait_until_ready().await,
        ctx.slices.wait_until_ready().await,
        ctx.endpoints.wait_until_ready().await,
    ] {
        ready.map_err(|_| Error::CacheStopped)?;
    }
    if service.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let describe = format!("{namespace}/{name}");
    let api_error = |action: &str| {
        let service = describe.clone();
        let action = action.to_owned();
        move |source| Error::Api {
            service,
            action,
            source,
        }
    };
    if backends::selector(&service).is_some() {
        let pods: Vec<Arc<Pod>> = ctx
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
            .collect();
        let listed = backends::backends(&service, pods.iter().map(|p| &**p), true);
        sync_slices(
            &ctx,
            &service,
            slices::MANAGED_BY,
            slices::desired(&service, &listed),
        )
        .await
        .map_err(api_error("writing endpoint slices"))?;
        let ready_only = backends::backends(&service, pods.iter().map(|p| &**p), false);
        sync_endpoints(&ctx, legacy::desired(&service, &ready_only))
            .await
            .map_err(api_error("writing endpoints"))?;
    } else {
        // Read from the API rather than the cache: this sync runs again every
        // `MIRROR_RESYNC` to repair what the cache may have missed, which a cached read would
        // not (a kube-dns without slices, now and then, under load in CI).
        let written: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &namespace);
        let mirrored = written
            .get_opt(&name)
            .await
            .map_err(api_error("reading endpoints"))?
            .map(|e| slices::mirrored(&service, &e))
            .unwrap_or_default();
        sync_slices(&ctx, &service, slices::MIRRORED_BY, mirrored)
            .await
            .map_err(api_error("mirroring endpoints"))?;
        ctx.backoff.succeeded(&describe);
        // A Service without selector (kube-dns, `kubernetes`) is looked at again now and
        // then, as upstream's informers resync: its Endpoints are written by someone else,
        // and a missed change would leave its slices stale for good.
        return Ok(Action::requeue(MIRROR_RESYNC));
    }
    ctx.backoff.succeeded(&describe);
    Ok(Action::await_change())
}

async fn sync_slices(
    ctx: &Context,
    service: &Service,
    manager: &str,
    wanted: Vec<EndpointSlice>,
) -> Result<(), kube::Error> {
    let existing: Vec<Arc<EndpointSlice>> = ctx
        .slices
        .state()
        .into_iter()
        .filter(|s| slices::is_managed_for(s, service, manager))
        .collect();
    let existing: Vec<&EndpointSlice> = existing.iter().map(|s| &**s).collect();
    let plan = slices::plan(&existing, wanted);
    let api: Api<EndpointSlice> =
        Api::namespaced(ctx.client.clone(), &service.namespace().unwrap_or_default());
    for slice in &plan.create {
        api.create(&PostParams::default(), slice).await?;
    }
    for slice in &plan.update {
        api.replace(&slice.name_any(), &PostParams::default(), slice)
            .await?;
    }
    for name in &plan.delete {
        match api.delete(name, &DeleteParams::default()).await {
            Err(e) if api_errors::is_not_found(&e) => {}
            other => {
                other?;
            }
        }
    }
    Ok(())
}

async fn sync_endpoints(ctx: &Context, mut wanted: Endpoints) -> Result<(), kube::Error> {
    let namespace = wanted.metadata.namespace.clone().unwrap_or_default();
    let name = wanted.name_any();
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &namespace);
    match ctx.endpoints.get(&ObjectRef::new(&name).within(&namespace)) {
        Some(existing) if legacy::same(&existing, &wanted) => Ok(()),
        Some(existing) => {
            let mut metadata = existing.metadata.clone();
            metadata.labels = wanted.metadata.labels.take();
            wanted.metadata = metadata;
            api.replace(&name, &PostParams::default(), &wanted)
                .await
                .map(drop)
        }
        None => match api.create(&PostParams::default(), &wanted).await {
            // Our cache was behind: the next event brings it and syncs again.
            Err(e) if api_errors::is_already_exists(&e) => Ok(()),
            other => other.map(drop),
        },
    }
}

fn error_policy(service: Arc<Service>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!(
        "{}/{}",
        service.namespace().unwrap_or_default(),
        service.name_any()
    );
    let delay = ctx.backoff.failed(&key);
    if matches!(error, Error::Api { source, .. } if api_errors::is_conflict(source)) {
        tracing::debug!(%error, "endpoint controller: conflict, retrying");
    } else {
        tracing::warn!(%error, ?delay, "endpoint controller");
    }
    Action::requeue(delay)
}

/// The services to sync after a pod event: those in its namespace that select it now or
/// selected it before.
fn on_pod_event(event: &Event<Pod>, cache: &Store<Pod>, services: &Store<Service>) -> Vec<Ref> {
    let pod = match event {
        Event::Apply(pod) | Event::InitApply(pod) | Event::Delete(pod) => pod,
        Event::InitDone => return every(services),
        Event::Init => return Vec::new(),
    };
    let old = informer::object_of(event, cache).and_then(|(_, old)| old);
    services
        .state()
        .iter()
        .filter(|s| s.metadata.namespace == pod.metadata.namespace)
        .filter(|s| {
            backends::selects(s, pod) || old.as_deref().is_some_and(|o| backends::selects(s, o))
        })
        .map(|s| ObjectRef::from_obj(&**s))
        .collect()
}

type Ref = ObjectRef<Service>;

fn every(services: &Store<Service>) -> Vec<Ref> {
    services
        .state()
        .iter()
        .map(|s| ObjectRef::from_obj(&**s))
        .collect()
}

/// The service a slice or an Endpoints object belongs to. Asked for whether or not the
/// service is in the cache yet (at start it may not be): a sync of a service that does not
/// exist does nothing.
fn owning_service(namespace: Option<&str>, name: Option<&str>) -> Vec<Ref> {
    match (namespace, name) {
        (Some(namespace), Some(name)) => vec![ObjectRef::new(name).within(namespace)],
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
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let services = controller.store();
    let (pods, pod_requests) = {
        let services = services.clone();
        pods.subscribe(move |event, cache| on_pod_event(event, cache, &services))
    };
    let (slices, slice_requests) = informer::watch(
        Api::<EndpointSlice>::all(client.clone()),
        move |event: &Event<EndpointSlice>, _: &Store<EndpointSlice>| match event {
            Event::Apply(s) | Event::InitApply(s) | Event::Delete(s) => {
                let service = s.labels().get(slices::SERVICE_NAME_LABEL);
                owning_service(s.namespace().as_deref(), service.map(String::as_str))
            }
            _ => Vec::new(),
        },
    );
    let (endpoints, endpoints_requests) = informer::watch(
        Api::<Endpoints>::all(client.clone()),
        move |event: &Event<Endpoints>, _: &Store<Endpoints>| match event {
            Event::Apply(e) | Event::InitApply(e) | Event::Delete(e) => {
                owning_service(e.namespace().as_deref(), e.metadata.name.as_deref())
            }
            _ => Vec::new(),
        },
    );
    // The controller's own watch wakes it for changes only; a deleted Service's Endpoints
    // are deleted here, when its deletion is heard of.
    let deleting = client.clone();
    let (_, deletions) = informer::watch(
        Api::<Service>::all(client.clone()),
        move |event: &Event<Service>, _: &Store<Service>| {
            if let Event::Delete(service) = event {
                tokio::spawn(delete_endpoints_of(
                    deleting.clone(),
                    ObjectRef::from_obj(service),
                ));
            }
            Vec::<Ref>::new()
        },
    );
    let requests = stream::select_all([
        pod_requests.boxed(),
        slice_requests.boxed(),
        endpoints_requests.boxed(),
        deletions.boxed(),
    ]);
    let ctx = Arc::new(Context {
        client: client.clone(),
        pods,
        slices,
        endpoints,
        backoff: Backoff::default(),
    });
    // Built when the future first runs (see the Deployment controller's `run`).
    async move {
        controller
            .reconcile_on(requests)
            .run(reconcile, error_policy, ctx)
            .for_each(|_| std::future::ready(()))
            .await;
    }
}

/// A Service is gone: its Endpoints go too (slices follow their owner reference), as
/// upstream's endpoint controller deletes them.
async fn delete_endpoints_of(client: Client, gone: Ref) {
    let Some(namespace) = gone.namespace.as_deref() else {
        return;
    };
    let api: Api<Endpoints> = Api::namespaced(client, namespace);
    match api.delete(&gone.name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(e) if api_errors::is_not_found(&e) => {}
        Err(error) => {
            tracing::warn!(%error, service = %gone, "deleting the endpoints of a deleted service")
        }
    }
}
