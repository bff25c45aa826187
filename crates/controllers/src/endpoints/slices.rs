//! The EndpointSlices a Service's pods make (upstream's `endpointslice-controller`): the
//! pods grouped by the ports they serve, at most [`MAX_PER_SLICE`] to a slice, one address
//! family; a Service without pods keeps one empty placeholder slice. Each slice is named
//! `<service>-<random>`, labelled with the service's name and this controller as its manager,
//! and controlled by the Service (so the garbage collector removes it with the Service).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Endpoints, ObjectReference, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::backends::{Backend, Port, is_headless};
use crate::owner;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// The manager of slices mirrored from hand-written Endpoints.
pub const MIRRORED_BY: &str = "endpointslicemirroring-controller.k8s.io";
/// On an Endpoints object: do not mirror it into EndpointSlices.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_PER_SLICE: usize = 100;

/// The labels every slice (and the Endpoints object) of `service` carries: the service's
/// own, plus the headless marker.
pub fn labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    labels.remove(HEADLESS_LABEL);
    if is_headless(service) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels
}

/// The slices `service` should have, without names: `backends` grouped by their ports.
pub fn desired(service: &Service, backends: &[Backend<'_>]) -> Vec<EndpointSlice> {
    let mut groups: BTreeMap<&[Port], Vec<Endpoint>> = BTreeMap::new();
    for backend in backends.iter().filter(|b| is_ipv4(&b.ip)) {
        groups
            .entry(backend.ports.as_slice())
            .or_default()
            .push(endpoint(backend));
    }
    let mut slices = Vec::new();
    for (ports, endpoints) in groups {
        for chunk in endpoints.chunks(MAX_PER_SLICE) {
            slices.push(slice(service, MANAGED_BY, ports, chunk.to_vec()));
        }
    }
    if slices.is_empty() {
        slices.push(slice(service, MANAGED_BY, &[], Vec::new()));
    }
    slices
}

/// The slices mirroring the hand-written Endpoints of a Service without a selector
/// (upstream's `endpointslicemirroring-controller`): one per subset, IPv4 addresses only.
pub fn mirrored(service: &Service, endpoints: &Endpoints) -> Vec<EndpointSlice> {
    let skip = endpoints
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.get(SKIP_MIRROR_LABEL).is_some_and(|v| v == "true"));
    if skip {
        return Vec::new();
    }
    let mut slices = Vec::new();
    for subset in endpoints.subsets.iter().flatten() {
        let mut ports: Vec<Port> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| Port {
                name: p.name.clone().unwrap_or_default(),
                port: p.port,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        ports.sort();
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        let listed: Vec<Endpoint> = ready
            .chain(not_ready)
            .filter(|(a, _)| is_ipv4(&a.ip))
            .map(|(address, ready)| Endpoint {
                addresses: vec![address.ip.clone()],
                conditions: Some(EndpointConditions {
                    ready: Some(ready),
                    serving: Some(ready),
                    terminating: Some(false),
                }),
                hostname: address.hostname.clone(),
                node_name: address.node_name.clone(),
                target_ref: address.target_ref.clone(),
                ..Default::default()
            })
            .collect();
        for chunk in listed.chunks(MAX_PER_SLICE) {
            slices.push(slice(service, MIRRORED_BY, &ports, chunk.to_vec()));
        }
    }
    slices
}

fn is_ipv4(ip: &str) -> bool {
    ip.parse::<std::net::Ipv4Addr>().is_ok()
}

fn endpoint(backend: &Backend<'_>) -> Endpoint {
    let pod = backend.pod;
    Endpoint {
        addresses: vec![backend.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(backend.ready),
            serving: Some(backend.serving),
            terminating: Some(backend.terminating),
        }),
        hostname: backend.hostname.clone(),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn slice(
    service: &Service,
    manager: &str,
    ports: &[Port],
    endpoints: Vec<Endpoint>,
) -> EndpointSlice {
    let name = service.metadata.name.clone().unwrap_or_default();
    let mut labels = labels(service);
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), manager.into());
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: service.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![owner::controller_ref(service)]),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints,
        ports: (!ports.is_empty()).then(|| {
            ports
                .iter()
                .map(|p| EndpointPort {
                    name: Some(p.name.clone()),
                    port: Some(p.port),
                    protocol: Some(p.protocol.clone()),
                    app_protocol: p.app_protocol.clone(),
                })
                .collect()
        }),
    }
}

/// Whether `existing` already says what `wanted` says (the fields this controller writes).
pub fn same(existing: &EndpointSlice, wanted: &EndpointSlice) -> bool {
    existing.address_type == wanted.address_type
        && existing.endpoints == wanted.endpoints
        && existing.ports == wanted.ports
        && existing.metadata.labels == wanted.metadata.labels
}

/// Whether `slice` is one `manager` manages for `service`.
pub fn is_managed_for(slice: &EndpointSlice, service: &Service, manager: &str) -> bool {
    let labels = slice.metadata.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    slice.metadata.namespace == service.metadata.namespace
        && label(SERVICE_NAME_LABEL) == service.metadata.name.as_deref()
        && label(MANAGED_BY_LABEL) == Some(manager)
}

/// What to do to go from `existing` to `wanted`: each wanted slice takes over an existing
/// one with the same ports where there is one (kept as it is when nothing changed), the
/// rest are created, and existing slices left over are deleted.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<String>,
}

pub fn plan(existing: &[&EndpointSlice], wanted: Vec<EndpointSlice>) -> Plan {
    let mut plan = Plan::default();
    let mut unused: Vec<&EndpointSlice> = existing.to_vec();
    let mut remaining = Vec::new();
    // Unchanged slices first, so that an update never steals a slice that is already right.
    for slice in wanted {
        match unused.iter().position(|e| same(e, &slice)) {
            Some(i) => {
                unused.swap_remove(i);
            }
            None => remaining.push(slice),
        }
    }
    for mut slice in remaining {
        match unused.iter().position(|e| e.ports == slice.ports) {
            Some(i) => {
                let old = unused.swap_remove(i);
                let mut metadata = old.metadata.clone();
                metadata.labels = slice.metadata.labels.take();
                metadata.owner_references = slice.metadata.owner_references.take();
                slice.metadata = metadata;
                plan.update.push(slice);
            }
            None => plan.create.push(slice),
        }
    }
    plan.delete = unused
        .into_iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(mut slice: EndpointSlice, name: &str) -> EndpointSlice {
        slice.metadata.name = Some(name.into());
        slice
    }

    fn wanted(ports: &[i32], ips: &[&str]) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta::default(),
            address_type: "IPv4".into(),
            endpoints: ips
                .iter()
                .map(|ip| Endpoint {
                    addresses: vec![(*ip).into()],
                    ..Default::default()
                })
                .collect(),
            ports: Some(
                ports
                    .iter()
                    .map(|p| EndpointPort {
                        port: Some(*p),
                        ..Default::default()
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn unchanged_slices_stay_changed_ones_are_updated_in_place_and_extra_ones_go() {
        let a = named(wanted(&[80], &["10.42.0.2"]), "web-a");
        let b = named(wanted(&[81], &["10.42.0.3"]), "web-b");
        let c = named(wanted(&[82], &["10.42.0.4"]), "web-c");
        let plan = plan(
            &[&a, &b, &c],
            vec![
                wanted(&[80], &["10.42.0.2"]),
                wanted(&[81], &["10.42.0.3", "10.42.0.5"]),
                wanted(&[83], &["10.42.0.6"]),
            ],
        );
        let updated: Vec<_> = plan
            .update
            .iter()
            .map(|s| s.metadata.name.clone())
            .collect();
        assert_eq!(updated, [Some("web-b".to_owned())]);
        assert_eq!(plan.update[0].endpoints.len(), 2);
        assert_eq!(plan.create.len(), 1);
        assert_eq!(plan.delete, ["web-c"]);
    }

    #[test]
    fn nothing_to_do_when_every_slice_is_right() {
        let a = named(wanted(&[80], &["10.42.0.2"]), "web-a");
        let plan = plan(&[&a], vec![wanted(&[80], &["10.42.0.2"])]);
        assert!(plan.create.is_empty() && plan.update.is_empty() && plan.delete.is_empty());
    }
}
