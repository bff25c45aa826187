//! Which pods back a Service, and on which ports: upstream's `ShouldPodBeInEndpoints`,
//! `podutil.FindPort` and the endpoint conditions (`ready`, `serving`, `terminating`) that
//! both the EndpointSlice and the Endpoints controllers derive from a pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::pods;

/// One service port as a pod serves it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    pub name: String,
    pub port: i32,
    pub protocol: String,
    pub app_protocol: Option<String>,
}

/// A pod backing a Service.
#[derive(Debug, Clone)]
pub struct Backend<'a> {
    pub pod: &'a Pod,
    pub ip: String,
    /// Ready to take new traffic (serving and not terminating, or the Service publishes
    /// addresses that are not ready).
    pub ready: bool,
    /// The pod's readiness, whether or not it is terminating.
    pub serving: bool,
    pub terminating: bool,
    /// `spec.hostname` when the pod's `spec.subdomain` names this Service.
    pub hostname: Option<String>,
    /// The Service's ports that resolve on this pod, sorted.
    pub ports: Vec<Port>,
}

/// The selector a Service picks its pods by; `None` for a Service without one (its
/// endpoints are someone else's to manage).
pub fn selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    service
        .spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

pub fn selects(service: &Service, pod: &Pod) -> bool {
    let (Some(selector), Some(labels)) = (selector(service), pod.metadata.labels.as_ref()) else {
        return false;
    };
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

fn publishes_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// Upstream's `ShouldPodBeInEndpoints`: pods with an IP that have not finished for good;
/// terminating ones only when `include_terminating`.
fn should_be_listed(pod: &Pod, include_terminating: bool) -> bool {
    let restart = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    match (pods::phase(pod), restart) {
        ("Failed" | "Succeeded", "Never") | ("Succeeded", "OnFailure") => return false,
        _ => {}
    }
    if pod.metadata.deletion_timestamp.is_some() && !include_terminating {
        return false;
    }
    pod_ip(pod).is_some()
}

fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()?
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
}

/// The container port a service port's `targetPort` names on this pod (upstream's
/// `FindPort`): a number as it is, a name looked up among the containers' ports of the
/// same protocol; no `targetPort` means the service port itself.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(number)) => Some(*number),
        Some(IntOrString::String(name)) => {
            if let Ok(number) = name.parse::<i32>() {
                return Some(number);
            }
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// The pods among `candidates` that back `service`, in a stable order (by pod name).
/// `include_terminating` is true for EndpointSlices, which list terminating pods with
/// their condition, and false for Endpoints, which drop them.
pub fn backends<'a>(
    service: &Service,
    candidates: impl IntoIterator<Item = &'a Pod>,
    include_terminating: bool,
) -> Vec<Backend<'a>> {
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    let publish_not_ready = publishes_not_ready(service);
    let mut backends: Vec<Backend<'a>> = candidates
        .into_iter()
        .filter(|pod| selects(service, pod))
        .filter(|pod| should_be_listed(pod, include_terminating || publish_not_ready))
        .filter_map(|pod| {
            let ip = pod_ip(pod)?.to_owned();
            let terminating = pod.metadata.deletion_timestamp.is_some();
            let serving = pods::is_ready(pod);
            let spec = pod.spec.as_ref();
            let hostname = spec
                .filter(|s| s.subdomain.as_deref() == Some(name))
                .and_then(|s| s.hostname.clone())
                .filter(|h| !h.is_empty());
            let mut resolved: Vec<Port> = ports
                .iter()
                .filter_map(|port| {
                    Some(Port {
                        name: port.name.clone().unwrap_or_default(),
                        port: find_port(pod, port)?,
                        protocol: port.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        app_protocol: port.app_protocol.clone(),
                    })
                })
                .collect();
            resolved.sort();
            Some(Backend {
                pod,
                ip,
                ready: publish_not_ready || (serving && !terminating),
                serving: publish_not_ready || serving,
                terminating,
                hostname,
                ports: resolved,
            })
        })
        .collect();
    backends.sort_by(|a, b| a.pod.metadata.name.cmp(&b.pod.metadata.name));
    backends
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(name: &str, ip: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                labels: Some([("app".to_owned(), "web".to_owned())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some("http".into()),
                        container_port: 8080,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some(ip.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn service(target: IntOrString) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_owned(), "web".to_owned())].into()),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(target),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_readiness_sets_the_conditions() {
        let ready = pod("a", "10.42.0.2", true);
        let not_ready = pod("b", "10.42.0.3", false);
        let mut other = pod("c", "10.42.0.4", true);
        other.metadata.labels = Some([("app".to_owned(), "db".to_owned())].into());
        let service = service(IntOrString::String("http".into()));
        let found = backends(&service, [&not_ready, &other, &ready], true);
        let summary: Vec<_> = found
            .iter()
            .map(|b| (b.ip.as_str(), b.ready, b.serving, b.ports[0].port))
            .collect();
        assert_eq!(
            summary,
            [
                ("10.42.0.2", true, true, 8080),
                ("10.42.0.3", false, false, 8080)
            ]
        );
    }

    #[test]
    fn terminating_pods_are_listed_only_when_asked_and_never_ready() {
        let mut going = pod("a", "10.42.0.2", true);
        going.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let service = service(IntOrString::Int(9000));
        let slices = backends(&service, [&going], true);
        assert_eq!(slices.len(), 1);
        assert!(slices[0].terminating && slices[0].serving && !slices[0].ready);
        assert!(backends(&service, [&going], false).is_empty());
    }

    #[test]
    fn finished_pods_and_pods_without_an_ip_are_left_out() {
        let mut done = pod("a", "10.42.0.2", false);
        if let Some(spec) = done.spec.as_mut() {
            spec.restart_policy = Some("Never".into());
        }
        if let Some(status) = done.status.as_mut() {
            status.phase = Some("Succeeded".into());
        }
        let mut pending = pod("b", "", false);
        if let Some(status) = pending.status.as_mut() {
            status.pod_ip = None;
        }
        let service = service(IntOrString::Int(9000));
        assert!(backends(&service, [&done, &pending], true).is_empty());
    }

    #[test]
    fn a_port_name_no_container_has_drops_that_port_only() {
        let service = service(IntOrString::String("metrics".into()));
        let pod = pod("a", "10.42.0.2", true);
        let found = backends(&service, [&pod], true);
        assert_eq!(found.len(), 1);
        assert!(found[0].ports.is_empty());
    }

    #[test]
    fn publish_not_ready_addresses_makes_every_pod_ready() {
        let mut service = service(IntOrString::Int(80));
        if let Some(spec) = service.spec.as_mut() {
            spec.publish_not_ready_addresses = Some(true);
        }
        let pod = pod("a", "10.42.0.2", false);
        let found = backends(&service, [&pod], false);
        assert!(found[0].ready);
    }
}
