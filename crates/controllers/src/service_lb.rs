//! The built-in load balancer (k3s's `servicelb`): a Service of type LoadBalancer with no
//! `loadBalancerClass` gets the addresses of the ready nodes as its
//! `status.loadBalancer.ingress` (ExternalIP where a node has one, else InternalIP), and
//! every node's proxy answers on them. Services with a class belong to another controller
//! and are left alone; a Service that stops being a LoadBalancer loses the ingress it got.

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
    nodes: Store<Node>,
    backoff: Backoff,
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

async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, Error> {
    if ctx.nodes.wait_until_ready().await.is_err() {
        return Ok(Action::await_change());
    }
    let current = current_ingress(&service);
    let wanted: Vec<LoadBalancerIngress> = if is_ours(&service) {
        node_addresses(&ctx.nodes.state())
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

/// Runs the controller until its watches end.
pub async fn run(client: Client) {
    let controller = Controller::new(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let services = controller.store();
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
    let ctx = Arc::new(Context {
        client,
        nodes,
        backoff: Backoff::default(),
    });
    controller
        .reconcile_on(node_requests)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
}
