//! The cluster's side: Services and EndpointSlices watched through the API server into
//! caches, and the zone rebuilt from them whenever they change.

use crate::server::Server;
use crate::zone::{ClusterDomain, Zone};
use crate::{DnsConfig, Error};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, watch};

/// After a change, how long to wait for more before rebuilding, so a burst of events (a
/// re-list, a rollout) costs one rebuild.
const DEBOUNCE: Duration = Duration::from_millis(20);
/// The wait is also at least this many times the last rebuild's duration, so that constant
/// churn in a large cluster (10,000 Services take on the order of 100 ms) keeps rebuilding
/// to a third of a core at most.
const REBUILD_SPACING: u32 = 2;

/// Serves the cluster DNS for `config` until `stop` resolves, answering from Services and
/// EndpointSlices watched through `client`: [`Server::bind`], then [`serve_cluster`].
pub async fn run(
    client: Client,
    config: DnsConfig,
    stop: impl Future<Output = ()>,
) -> Result<(), Error> {
    let domain = ClusterDomain::parse(&config.cluster_domain)?;
    let server = Server::bind(&config).await?;
    serve_cluster(server, client, &domain, stop).await
}

/// Serves on `server`'s sockets until `stop` resolves, answering names in `domain` from
/// Services and EndpointSlices watched through `client`. Until both have been listed once,
/// names in the cluster domain get SERVFAIL (other names are forwarded from the start).
pub async fn serve_cluster(
    server: Server,
    client: Client,
    domain: &ClusterDomain,
    stop: impl Future<Output = ()>,
) -> Result<(), Error> {
    let (zone_tx, zone_rx) = watch::channel(Arc::new(Zone::unsynced(domain)));
    let changed = Notify::new();
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let services_watch = follow(
        reflector::reflector(services_writer, watch_all::<Service>(&client)),
        &changed,
    );
    let slices_watch = follow(
        reflector::reflector(slices_writer, watch_all::<EndpointSlice>(&client)),
        &changed,
    );
    let rebuild = keep_zone_current(domain, &services, &slices, &changed, &zone_tx);
    tokio::select! {
        () = server.serve(zone_rx, stop) => Ok(()),
        () = services_watch => Err(Error::WatchEnded { kind: "Service" }),
        () = slices_watch => Err(Error::WatchEnded { kind: "EndpointSlice" }),
        () = rebuild => Err(Error::WatchEnded { kind: "Service or EndpointSlice" }),
    }
}

/// Every object of kind `K`, retried with back-off, without the metadata DNS never reads
/// (managed fields, annotations such as last-applied-configuration), which would only
/// swell the caches.
fn watch_all<K>(
    client: &Client,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + use<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    let config = watcher::Config::default().any_semantic();
    watcher::watcher(Api::<K>::all(client.clone()), config)
        .default_backoff()
        .modify(|object: &mut K| {
            let meta = object.meta_mut();
            meta.managed_fields = None;
            meta.annotations = None;
        })
}

/// Drives a watch stream (which fills its cache), noting each change.
async fn follow<K>(
    stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    changed: &Notify,
) {
    stream
        .for_each(|event| {
            match event {
                Ok(_) => changed.notify_one(),
                Err(error) => tracing::warn!(%error, "cluster DNS watch failed; retrying"),
            }
            futures::future::ready(())
        })
        .await;
}

/// Publishes a zone once both caches are filled, then again after each change. The build
/// runs off the async runtime (it takes a while in a large cluster). Returns only if a
/// cache's writer is gone.
async fn keep_zone_current(
    domain: &ClusterDomain,
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
    changed: &Notify,
    zone: &watch::Sender<Arc<Zone>>,
) {
    if services.wait_until_ready().await.is_err() || slices.wait_until_ready().await.is_err() {
        return;
    }
    loop {
        let started = tokio::time::Instant::now();
        let (all_services, all_slices) = (services.state(), slices.state());
        let (service_count, slice_count) = (all_services.len(), all_slices.len());
        let serial = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        let domain = domain.clone();
        let built = tokio::task::spawn_blocking(move || {
            let services = all_services.iter().map(|s| &**s);
            let slices = all_slices.iter().map(|s| &**s);
            Zone::build(&domain, services, slices, serial)
        })
        .await;
        let elapsed = started.elapsed();
        match built {
            Ok(built) => {
                tracing::debug!(
                    services = service_count,
                    endpoint_slices = slice_count,
                    names = built.names.len(),
                    ?elapsed,
                    "cluster DNS zone rebuilt"
                );
                let old = zone.send_replace(Arc::new(built));
                // The old zone may be large: freed off the async runtime too.
                tokio::task::spawn_blocking(move || drop(old));
            }
            Err(error) => tracing::error!(%error, "cluster DNS zone rebuild failed"),
        }
        changed.notified().await;
        tokio::time::sleep(DEBOUNCE.max(elapsed * REBUILD_SPACING)).await;
    }
}
