//! What the proxy needs to know of each Service port, read off Services and their
//! EndpointSlices: the addresses it answers on, and the endpoints traffic may go to
//! (upstream's `ServicePort` and `Endpoint` views in `pkg/proxy`).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// Upstream's default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
const DEFAULT_AFFINITY_SECONDS: i32 = 10800;

/// One port of one Service, as the proxy serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `namespace/name/protocol/port-name` (the port number when the port has no name).
    pub id: String,
    pub protocol: Protocol,
    pub port: u16,
    pub cluster_ips: Vec<Ipv4Addr>,
    pub node_port: Option<u16>,
    /// Load-balancer ingress IPs and `spec.externalIPs`: addresses outside the cluster
    /// treated as the node ports are.
    pub external_ips: Vec<Ipv4Addr>,
    /// `externalTrafficPolicy: Local`: outside traffic only to this node's endpoints.
    pub local_only: bool,
    /// `sessionAffinity: ClientIP`, with its timeout in seconds.
    pub affinity_seconds: Option<u32>,
    /// Where traffic goes (see [`usable`]), sorted.
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn parse(value: Option<&str>) -> Option<Self> {
        match value.unwrap_or("TCP") {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            "SCTP" => Some(Self::Sctp),
            _ => None,
        }
    }

    /// The name nftables uses.
    pub fn nft(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// On this node (for `externalTrafficPolicy: Local`).
    pub local: bool,
}

/// An endpoint as a slice lists it, before the choice of which ones to use.
#[derive(Debug, Clone)]
struct Listed {
    endpoint: Endpoint,
    ready: bool,
    serving: bool,
    terminating: bool,
}

/// Upstream's choice of endpoints: the ready ones; when none is ready, the ones still
/// serving while terminating (so that a rolling update does not drop connections).
fn usable(listed: Vec<Listed>) -> Vec<Endpoint> {
    let ready: Vec<Endpoint> = listed
        .iter()
        .filter(|l| l.ready)
        .map(|l| l.endpoint.clone())
        .collect();
    let mut chosen = if ready.is_empty() {
        listed
            .into_iter()
            .filter(|l| l.serving && l.terminating)
            .map(|l| l.endpoint)
            .collect()
    } else {
        ready
    };
    chosen.sort();
    chosen.dedup();
    chosen
}

/// The Service ports to program, from every Service and slice, in a stable order. Headless
/// and ExternalName Services, and Services without a cluster IP, are not proxied.
pub fn service_ports(
    services: &[impl Borrow<Service>],
    slices: &[impl Borrow<EndpointSlice>],
    node_name: &str,
) -> Vec<ServicePort> {
    // The slices of each service, by namespace/name.
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices.iter().map(Borrow::borrow) {
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"));
        if let (Some(namespace), Some(service)) = (&slice.metadata.namespace, service)
            && slice.address_type == "IPv4"
        {
            by_service
                .entry((namespace.clone(), service.clone()))
                .or_default()
                .push(slice);
        }
    }
    let mut ports = Vec::new();
    for service in services.iter().map(Borrow::borrow) {
        let (Some(namespace), Some(name)) = (&service.metadata.namespace, &service.metadata.name)
        else {
            continue;
        };
        let Some(spec) = &service.spec else { continue };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let cluster_ips: Vec<Ipv4Addr> = spec
            .cluster_ips
            .iter()
            .flatten()
            .chain(spec.cluster_ip.iter())
            .filter_map(|ip| ip.parse().ok())
            .fold(Vec::new(), |mut ips, ip| {
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
                ips
            });
        if cluster_ips.is_empty() {
            continue;
        }
        let ingress = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        let mut external_ips: Vec<Ipv4Addr> = spec
            .external_ips
            .iter()
            .flatten()
            .chain(ingress.into_iter().flatten().filter_map(|i| i.ip.as_ref()))
            .filter_map(|ip| ip.parse().ok())
            .collect();
        external_ips.sort();
        external_ips.dedup();
        let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            let seconds = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .unwrap_or(DEFAULT_AFFINITY_SECONDS);
            u32::try_from(seconds).unwrap_or(1).max(1)
        });
        let local_only = spec.external_traffic_policy.as_deref() == Some("Local");
        let slices = by_service
            .get(&(namespace.clone(), name.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for port in spec.ports.iter().flatten() {
            let (Some(protocol), Ok(number)) = (
                Protocol::parse(port.protocol.as_deref()),
                u16::try_from(port.port),
            ) else {
                continue;
            };
            let port_name = port.name.clone().unwrap_or_default();
            let label = if port_name.is_empty() {
                number.to_string()
            } else {
                port_name.clone()
            };
            ports.push(ServicePort {
                id: format!("{namespace}/{name}/{}/{label}", protocol.nft()),
                protocol,
                port: number,
                cluster_ips: cluster_ips.clone(),
                node_port: port
                    .node_port
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p != 0),
                external_ips: external_ips.clone(),
                local_only,
                affinity_seconds,
                endpoints: usable(listed(slices, &port_name, protocol, node_name)),
            });
        }
    }
    ports.sort_by(|a, b| a.id.cmp(&b.id));
    ports
}

/// The endpoints the slices list for the service port named `port_name`.
fn listed(
    slices: &[&EndpointSlice],
    port_name: &str,
    protocol: Protocol,
    node_name: &str,
) -> Vec<Listed> {
    let mut listed = Vec::new();
    for slice in slices {
        let port = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port_name
                && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
        });
        let Some(number) = port
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.clone().unwrap_or_default();
            // Unset `ready` means ready; unset `serving` means as `ready`.
            let ready = conditions.ready.unwrap_or(true);
            let serving = conditions.serving.unwrap_or(ready);
            let terminating = conditions.terminating.unwrap_or(false);
            let local = endpoint.node_name.as_deref() == Some(node_name);
            for address in &endpoint.addresses {
                if let Ok(ip) = address.parse() {
                    listed.push(Listed {
                        endpoint: Endpoint {
                            ip,
                            port: number,
                            local,
                        },
                        ready,
                        serving,
                        terminating,
                    });
                }
            }
        }
    }
    listed
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort as Port, ServiceSpec};
    use k8s_openapi::api::discovery::v1::{
        Endpoint as SliceEndpoint, EndpointConditions, EndpointPort,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn service(name: &str, cluster_ip: &str) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(cluster_ip.into()),
                ports: Some(vec![Port {
                    name: Some("http".into()),
                    port: 80,
                    node_port: Some(31000),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn slice(service: &str, endpoints: &[(&str, bool, bool)]) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some(format!("{service}-x")),
                namespace: Some("default".into()),
                labels: Some([("kubernetes.io/service-name".into(), service.into())].into()),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: endpoints
                .iter()
                .map(|(ip, ready, terminating)| SliceEndpoint {
                    addresses: vec![(*ip).into()],
                    conditions: Some(EndpointConditions {
                        ready: Some(*ready),
                        serving: Some(true),
                        terminating: Some(*terminating),
                    }),
                    node_name: Some("node-1".into()),
                    ..Default::default()
                })
                .collect(),
            ports: Some(vec![EndpointPort {
                name: Some("http".into()),
                port: Some(8080),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
        }
    }

    #[test]
    fn ready_endpoints_are_used_and_terminating_ones_only_when_none_is_ready() {
        let services = [service("web", "10.43.0.7")];
        let both = [slice(
            "web",
            &[("10.42.0.3", true, false), ("10.42.0.4", false, true)],
        )];
        let ports = service_ports(&services, &both, "node-1");
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].id, "default/web/tcp/http");
        assert_eq!(ports[0].node_port, Some(31000));
        let ips: Vec<String> = ports[0]
            .endpoints
            .iter()
            .map(|e| e.ip.to_string())
            .collect();
        assert_eq!(ips, ["10.42.0.3"]);
        assert!(ports[0].endpoints[0].local);

        let terminating = [slice("web", &[("10.42.0.4", false, true)])];
        let ports = service_ports(&services, &terminating, "node-1");
        assert_eq!(ports[0].endpoints.len(), 1);
    }

    #[test]
    fn headless_and_external_name_services_are_not_proxied() {
        let mut external = service("ext", "");
        if let Some(spec) = external.spec.as_mut() {
            spec.type_ = Some("ExternalName".into());
        }
        let services = [service("headless", "None"), external];
        assert!(service_ports(&services, &[] as &[EndpointSlice], "node-1").is_empty());
    }

    #[test]
    fn slices_of_other_services_or_ports_are_ignored() {
        let services = [service("web", "10.43.0.7")];
        let mut other_port = slice("web", &[("10.42.0.5", true, false)]);
        if let Some(ports) = other_port.ports.as_mut() {
            ports[0].name = Some("metrics".into());
        }
        let slices = [slice("db", &[("10.42.0.3", true, false)]), other_port];
        let ports = service_ports(&services, &slices, "node-1");
        assert!(ports[0].endpoints.is_empty());
    }
}
