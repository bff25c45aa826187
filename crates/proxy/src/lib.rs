//! Coxswain's service proxy (upstream's kube-proxy, nftables mode): watches Services and
//! EndpointSlices through the API server and keeps one nftables table, `cox-proxy`, saying
//! where their traffic goes. It never touches the host's other tables.
//!
//! - [`model`]: each Service port, with the endpoints its slices list and which to use.
//! - [`rules`]: the table's skeleton and the Service-dependent chains and map elements.
//! - [`nft`]: applying a ruleset in one transaction, changing only what differs.
//! - [`conntrack`]: deleting UDP flows that still point at endpoints gone.
//!
//! A sync runs after changes, at most every [`ProxyConfig::min_sync_interval`]; rules
//! stay in place when the proxy stops (connections keep flowing while it restarts), and
//! the next start replaces the table wholesale.

pub mod conntrack;
pub mod model;
pub mod nft;
pub mod rules;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::Notify;

pub use rules::Networks;

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub node_name: String,
    pub networks: Networks,
    /// The shortest time between two syncs (changes in between are batched).
    pub min_sync_interval: Duration,
}

/// Kernel settings the rules depend on, in this network namespace: DNAT of connections
/// from 127.0.0.1 (node ports on loopback) needs `route_localnet`; traffic between pods
/// on the bridge must pass through the rules (`bridge-nf-call-iptables`, when the
/// `br_netfilter` module is there) or replies to a Service's clients skip the un-DNAT.
fn set_sysctls() {
    for (path, value) in [
        ("/proc/sys/net/ipv4/conf/all/route_localnet", "1"),
        ("/proc/sys/net/bridge/bridge-nf-call-iptables", "1"),
    ] {
        if let Err(error) = std::fs::write(path, value) {
            tracing::warn!(path, %error, "cannot set a kernel setting the proxy relies on");
        }
    }
}

/// Watches `api` into a store; every change wakes `changed`.
fn watch<K>(api: Api<K>, changed: Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .for_each(move |event| {
            match event {
                Ok(_) => changed.notify_one(),
                Err(error) => tracing::warn!(%error, "proxy: watch failed; retrying"),
            }
            std::future::ready(())
        });
    tokio::spawn(stream);
    store
}

/// Runs the proxy until `stop` resolves.
pub async fn run(
    client: Client,
    config: ProxyConfig,
    stop: impl Future<Output = ()> + Send,
) -> Result<()> {
    set_sysctls();
    let changed = Arc::new(Notify::new());
    let services = watch(Api::<Service>::all(client.clone()), Arc::clone(&changed));
    let slices = watch(Api::<EndpointSlice>::all(client), Arc::clone(&changed));
    tokio::select! {
        () = stop => Ok(()),
        result = sync_forever(&config, &services, &slices, &changed) => {
            result.map(|never| match never {})
        }
    }
}

/// Syncs the rules after every change, at most every `min_sync_interval`.
async fn sync_forever(
    config: &ProxyConfig,
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
    changed: &Notify,
) -> Result<std::convert::Infallible> {
    services.wait_until_ready().await.context("service watch")?;
    slices.wait_until_ready().await.context("slice watch")?;
    let mut table = nft::Table::new(config.networks.clone());
    let mut applied: Vec<model::ServicePort> = Vec::new();
    loop {
        let started = std::time::Instant::now();
        let ports = model::service_ports(&services.state(), &slices.state(), &config.node_name);
        let wanted = rules::render(&ports, &config.networks);
        let stale = conntrack::stale_udp_flows(&applied, &ports);
        let (result, back) = tokio::task::spawn_blocking(move || {
            let result = table.sync(wanted);
            // Only once the new rules are in: a flow deleted before would come right back.
            if result.is_ok() {
                conntrack::clear(&stale);
            }
            (result, table)
        })
        .await
        .context("the nft task panicked")?;
        table = back;
        match result {
            Ok(synced) => {
                if synced {
                    tracing::debug!(ports = ports.len(), took = ?started.elapsed(), "proxy rules synced");
                }
                applied = ports;
            }
            Err(error) => {
                tracing::error!(%error, "proxy: programming nftables failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                changed.notify_one();
            }
        }
        tokio::time::sleep(config.min_sync_interval).await;
        changed.notified().await;
    }
}
