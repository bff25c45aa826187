//! The built-in load balancer (k3s's `servicelb`): a Service of type LoadBalancer with no
//! `loadBalancerClass` gets the addresses of the ready nodes as its
//! `status.loadBalancer.ingress` (ExternalIP where a node has one, else InternalIP), and
//! every node's proxy answers on them. With an address pool (`--servicelb-address-pool`),
//! each such Service gets an address of its own from the pool instead: the one it has, else
//! its `spec.loadBalancerIP` when that is free, else the lowest free one (none while the
//! pool is used up, with an `AllocationFailed` event); the proxy answers on it, and routing it to a node is the network's
//! business. Services with a class belong to another controller and are left alone; a
//! Service that stops being a LoadBalancer loses the ingress it got.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Node, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::backoff::Backoff;

#[derive(Debug, thiserror::Error)]
#[error("service {service}: writing its load-balancer status: {source}")]
pub struct Error {
    service: String,
    #[source]
    source: kube::Error,
}

struct Context {
    client: Client,
    events: crate::events::Recorder,
    nodes: crate::informer::Cache<Node>,
    services: Store<Service>,
    pool: Option<Pool>,
    backoff: Backoff,
}

/// The addresses load balancers may get, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool(Vec<std::net::Ipv4Addr>);

impl Pool {
    /// `FIRST-LAST` or `ADDRESS/BITS` (at most 65,536 addresses), IPv4.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not FIRST-LAST or ADDRESS/BITS (IPv4)");
        let (first, last) = if let Some((first, last)) = text.split_once('-') {
            let first: std::net::Ipv4Addr = first.trim().parse().map_err(|_| bad())?;
            let last: std::net::Ipv4Addr = last.trim().parse().map_err(|_| bad())?;
            (u32::from(first), u32::from(last))
        } else {
            let (address, bits) = text.split_once('/').ok_or_else(bad)?;
            let address: std::net::Ipv4Addr = address.parse().map_err(|_| bad())?;
            let bits: u32 = bits.parse().map_err(|_| bad())?;
            if bits > 32 {
                return Err(bad());
            }
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            let network = u32::from(address) & mask;
            (network, network | !mask)
        };
        if last < first || last - first >= 65_536 {
            return Err(format!(
                "{text:?}: an empty range, or more than 65,536 addresses"
            ));
        }
        Ok(Self((first..=last).map(std::net::Ipv4Addr::from).collect()))
    }

    fn contains(&self, ip: &str) -> bool {
        ip.parse().is_ok_and(|ip| self.0.contains(&ip))
    }

    /// The address for a Service that has `current` ingress IPs and asks for `requested`,
    /// when the other Services hold `taken`.
    fn choose(
        &self,
        current: &[String],
        requested: Option<&str>,
        taken: &std::collections::HashSet<String>,
    ) -> Option<String> {
        let free = |ip: &str| self.contains(ip) && !taken.contains(ip);
        if let Some(kept) = current.iter().find(|ip| free(ip)) {
            return Some(kept.clone());
        }
        if let Some(requested) = requested.filter(|ip| !ip.is_empty()) {
            return free(requested).then(|| requested.to_owned());
        }
        self.0
            .iter()
            .map(std::net::Ipv4Addr::to_string)
            .find(|ip| !taken.contains(ip))
    }
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The addresses of the ready nodes, sorted: each node's ExternalIP if it has one, else
/// its InternalIP.
pub fn node_addresses(nodes: &[Arc<Node>]) -> Vec<String> {
    let mut ips: Vec<String> = nodes
        .iter()
        .filter(|n| node_ready(n))
        .filter_map(|node| {
            let addresses = node.status.as_ref()?.addresses.as_ref()?;
            let of = |kind: &str| {
                addresses
                    .iter()
                    .find(|a| a.type_ == kind)
                    .map(|a| a.address.clone())
            };
            of("ExternalIP").or_else(|| of("InternalIP"))
        })
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// Whether this controller serves `service`.
fn is_ours(service: &Service) -> bool {
    let spec = service.spec.as_ref();
    spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
        && spec.and_then(|s| s.load_balancer_class.as_ref()).is_none()
}

fn current_ingress(service: &Service) -> Vec<LoadBalancerIngress> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default()
}

/// How often a Service waiting for a pool address looks again.
const POOL_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    if ctx.nodes.wait_until_ready().await.is_err() {
        return Ok(Action::await_change());
    }
    let current = current_ingress(&service);
    // Set when the pool had no address for this Service: it is looked at again later, since
    // the deletion that frees one may reach this controller's cache after the wake-up it
    // causes.
    let mut waiting_for_pool = false;
    let wanted: Vec<LoadBalancerIngress> = if is_ours(&service) {
        let addresses = match &ctx.pool {
            None => node_addresses(&ctx.nodes.state()),
            Some(pool) => {
                let uid = service.metadata.uid.as_deref();
                let taken: std::collections::HashSet<String> = ctx
                    .services
                    .state()
                    .iter()
                    .filter(|other| other.metadata.uid.as_deref() != uid && is_ours(other))
                    .flat_map(|other| current_ingress(other))
                    .filter_map(|ingress| ingress.ip)
                    .collect();
                let current: Vec<String> = current.iter().filter_map(|i| i.ip.clone()).collect();
                let requested = service
                    .spec
                    .as_ref()
                    .and_then(|s| s.load_balancer_ip.as_deref());
                let chosen = pool.choose(&current, requested, &taken);
                if chosen.is_none() && current.is_empty() {
                    let message = match requested.filter(|ip| !ip.is_empty()) {
                        Some(ip) => format!("loadBalancerIP {ip} is taken or not in the pool"),
                        None => "no address left in the load-balancer pool".to_owned(),
                    };
                    ctx.events
                        .warning(&*service, "AllocationFailed", &message)
                        .await;
                    waiting_for_pool = true;
                }
                chosen.into_iter().collect()
            }
        };
        addresses
            .into_iter()
            .map(|ip| LoadBalancerIngress {
                ip: Some(ip),
                ip_mode: Some("VIP".into()),
                ..Default::default()
            })
            .collect()
    } else if service.spec.as_ref().and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
        Vec::new()
    } else {
        // Another class's load balancer: its controller writes the status.
        return Ok(Action::await_change());
    };
    if waiting_for_pool {
        return Ok(Action::requeue(POOL_RETRY));
    }
    if current == wanted {
        return Ok(Action::await_change());
    }
    let key = format!(
        "{}/{}",
        service.namespace().unwrap_or_default(),
        service.name_any()
    );
    let api: Api<Service> =
        Api::namespaced(ctx.client.clone(), &service.namespace().unwrap_or_default());
    let patch = json!({"status": {"loadBalancer": {"ingress": wanted}}});
    api.patch_status(
        &service.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(|source| Error {
        service: key.clone(),
        source,
    })?;
    ctx.backoff.succeeded(&key);
    Ok(Action::await_change())
}

fn error_policy(service: Arc<Service>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "service load balancer");
    Action::requeue(ctx.backoff.failed(&service.name_any()))
}

/// Runs the controller until its watches end; `pool`, when given, is where addresses come
/// from instead of the nodes.
pub async fn run(client: Client, pool: Option<Pool>) {
    let controller = Controller::new(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let services = controller.store();
    let cached = services.clone();
    let (nodes, node_requests) = crate::informer::watch(
        Api::<Node>::all(client.clone()),
        move |event: &Event<Node>, _: &Store<Node>| match event {
            Event::Init => Vec::new(),
            _ => services
                .state()
                .iter()
                .filter(|s| is_ours(s))
                .map(|s| ObjectRef::from_obj(&**s))
                .collect(),
        },
    );
    // A deleted Service frees its pool address for one still waiting; the controller's own
    // watch wakes it for changes only.
    let waiting = cached.clone();
    let (_, deletions) = crate::informer::watch(
        Api::<Service>::all(client.clone()),
        move |event: &Event<Service>, _: &Store<Service>| match event {
            Event::Delete(_) => waiting
                .state()
                .iter()
                .filter(|s| is_ours(s) && current_ingress(s).is_empty())
                .map(|s| ObjectRef::from_obj(&**s))
                .collect(),
            _ => Vec::new(),
        },
    );
    let ctx = Arc::new(Context {
        events: crate::events::Recorder::new(client.clone(), "service-lb-controller"),
        client,
        nodes,
        services: cached,
        pool,
        backoff: Backoff::default(),
    });
    controller
        .reconcile_on(futures::stream::select(node_requests, deletions))
        .run(reconcile, error_policy, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_parse_as_ranges_or_networks() {
        let range = Pool::parse("198.51.100.10-198.51.100.12").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(range.0.len(), 3);
        let network = Pool::parse("198.51.100.0/30").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            network.0.first().map(ToString::to_string).as_deref(),
            Some("198.51.100.0")
        );
        assert_eq!(network.0.len(), 4);
        assert!(Pool::parse("198.51.100.12-198.51.100.10").is_err());
        assert!(Pool::parse("10.0.0.0/8").is_err());
        assert!(Pool::parse("nonsense").is_err());
    }

    #[test]
    fn a_service_keeps_its_address_gets_the_one_it_asks_for_or_the_lowest_free() {
        let pool = Pool::parse("198.51.100.10-198.51.100.12").unwrap_or_else(|e| panic!("{e}"));
        let taken: std::collections::HashSet<String> = ["198.51.100.10".to_owned()].into();
        let kept = pool.choose(&["198.51.100.12".into()], None, &taken);
        assert_eq!(kept.as_deref(), Some("198.51.100.12"));
        assert_eq!(
            pool.choose(&[], None, &taken).as_deref(),
            Some("198.51.100.11")
        );
        let asked = pool.choose(&[], Some("198.51.100.12"), &taken);
        assert_eq!(asked.as_deref(), Some("198.51.100.12"));
        assert_eq!(pool.choose(&[], Some("198.51.100.10"), &taken), None);
        let all: std::collections::HashSet<String> =
            pool.0.iter().map(ToString::to_string).collect();
        assert_eq!(pool.choose(&[], None, &all), None);
    }
}
