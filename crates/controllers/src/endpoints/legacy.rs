//! The Endpoints object of a Service (upstream's `endpoint-controller`), named as the
//! Service: one subset per distinct set of ports, ready pods under `addresses`, the others
//! under `notReadyAddresses`; terminating pods left out. Deprecated upstream in favour of
//! EndpointSlices, but `kubectl get endpoints` and older clients still read it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::backends::{Backend, Port};

/// The Endpoints `service` should have.
pub fn desired(service: &Service, backends: &[Backend<'_>]) -> Endpoints {
    let mut groups: BTreeMap<&[Port], (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    let headless = super::backends::is_headless(service);
    for backend in backends {
        // A pod none of the service's ports resolve on serves nothing, unless the service
        // is headless without ports (then the addresses alone are the point).
        let has_ports = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .is_some_and(|p| !p.is_empty());
        if backend.ports.is_empty() && (has_ports || !headless) {
            continue;
        }
        let (ready, not_ready) = groups.entry(backend.ports.as_slice()).or_default();
        let address = address(backend);
        if backend.ready {
            ready.push(address);
        } else {
            not_ready.push(address);
        }
    }
    let subsets: Vec<EndpointSubset> = groups
        .into_iter()
        .map(|(ports, (ready, not_ready))| EndpointSubset {
            addresses: (!ready.is_empty()).then_some(ready),
            not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
            ports: (!ports.is_empty()).then(|| {
                ports
                    .iter()
                    .map(|p| EndpointPort {
                        name: (!p.name.is_empty()).then(|| p.name.clone()),
                        port: p.port,
                        protocol: Some(p.protocol.clone()),
                        app_protocol: p.app_protocol.clone(),
                    })
                    .collect()
            }),
        })
        .collect();
    Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            labels: Some(super::slices::labels(service)),
            ..Default::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    }
}

fn address(backend: &Backend<'_>) -> EndpointAddress {
    let pod = backend.pod;
    EndpointAddress {
        ip: backend.ip.clone(),
        hostname: backend.hostname.clone(),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
    }
}

/// Whether `existing` already says what `wanted` says.
pub fn same(existing: &Endpoints, wanted: &Endpoints) -> bool {
    let subsets = |e: &Endpoints| e.subsets.clone().filter(|s| !s.is_empty());
    subsets(existing) == subsets(wanted) && existing.metadata.labels == wanted.metadata.labels
}
