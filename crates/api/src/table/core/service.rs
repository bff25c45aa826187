//! The Service and Endpoints printers.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::table::cells::{self, int, items, text};
use crate::table::{AGE, Column, NAME, Printer};

pub(in crate::table) const SERVICE: Printer = Printer::new(SERVICE_COLUMNS, service);
pub(in crate::table) const ENDPOINTS: Printer = Printer::new(ENDPOINTS_COLUMNS, endpoints);

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Type", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types"),
    Column::string("Cluster-IP", "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"),
    Column::string("External-IP", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system."),
    Column::string("Port(s)", "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"),
    AGE,
    Column::string("Selector", "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/").wide(),
];

const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Endpoints",
        "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
    ),
    AGE,
];

fn service(object: &Value, now: i64) -> Vec<Value> {
    // The type defaults to ClusterIP.
    let kind = match text(object, "/spec/type") {
        "" => "ClusterIP",
        kind => kind,
    };
    // Upstream fills `clusterIPs` from `clusterIP` when it stores a service.
    let cluster_ip = match items(object, "/spec/clusterIPs").first() {
        Some(ip) => ip.as_str().unwrap_or_default(),
        None => match text(object, "/spec/clusterIP") {
            "" => "<none>",
            ip => ip,
        },
    };
    let ports: Vec<String> = items(object, "/spec/ports")
        .iter()
        .map(|port| {
            let protocol = match text(port, "/protocol") {
                "" => "TCP",
                protocol => protocol,
            };
            let number = int(port, "/port");
            match int(port, "/nodePort") {
                node_port if node_port > 0 => format!("{number}:{node_port}/{protocol}"),
                _ => format!("{number}/{protocol}"),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_owned()
    } else {
        ports.join(",")
    };
    cells![
        cells::name(object),
        kind,
        cluster_ip,
        external_ip(object, kind),
        ports,
        cells::age(object, now),
        cells::format_labels(object.pointer("/spec/selector")),
    ]
}

/// The External-IP cell, never shortened: the server prints the wide form.
fn external_ip(object: &Value, kind: &str) -> String {
    let external: Vec<&str> = items(object, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match kind {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_owned(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let mut shown: Vec<&str> = load_balancer_addresses(object).into_iter().collect();
            if external.is_empty() && shown.is_empty() {
                return "<pending>".to_owned();
            }
            shown.extend(external);
            shown.join(",")
        }
        "ExternalName" => text(object, "/spec/externalName").to_owned(),
        _ => "<unknown>".to_owned(),
    }
}

/// The load balancer's addresses (each ingress point's IP, else its hostname), sorted and
/// without duplicates. Ingresses report theirs the same way.
pub(in crate::table) fn load_balancer_addresses(object: &Value) -> BTreeSet<&str> {
    items(object, "/status/loadBalancer/ingress")
        .iter()
        .filter_map(
            |point| match (text(point, "/ip"), text(point, "/hostname")) {
                ("", "") => None,
                ("", hostname) => Some(hostname),
                (ip, _) => Some(ip),
            },
        )
        .collect()
}

fn endpoints(object: &Value, now: i64) -> Vec<Value> {
    cells![
        cells::name(object),
        format_endpoints(object),
        cells::age(object, now),
    ]
}

/// Upstream's `formatEndpoints`: the first three ready addresses (with each port, as
/// `ip:port`), then how many more there are.
fn format_endpoints(object: &Value) -> String {
    const MAX: usize = 3;
    let subsets = items(object, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    let mut shown: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for subset in subsets {
        let addresses = items(subset, "/addresses");
        let ports = items(subset, "/ports");
        // A headless service's endpoints may have no ports: addresses alone.
        let ports: Vec<Option<i64>> = if ports.is_empty() {
            vec![None]
        } else {
            ports.iter().map(|p| Some(int(p, "/port"))).collect()
        };
        for port in ports {
            count += addresses.len();
            for address in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                let ip = text(address, "/ip");
                shown.push(match port {
                    None => ip.to_owned(),
                    Some(port) if ip.contains(':') => format!("[{ip}]:{port}"),
                    Some(port) => format!("{ip}:{port}"),
                });
            }
        }
    }
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago};
    use serde_json::json;

    fn service_with(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "svc", "creationTimestamp": minutes_ago(30)},
               "spec": spec, "status": status})
    }

    #[test]
    fn prints_services_by_type() {
        let lb_status = json!({"loadBalancer": {"ingress": [
            {"hostname": "lb.example.com"}, {"ip": "203.0.113.9"}, {"ip": "203.0.113.9"}]}});
        let cases = [
            (
                json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                       "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                       "selector": {"app": "web", "a": "b"}}),
                json!({}),
                json!([
                    "svc",
                    "ClusterIP",
                    "10.96.0.10",
                    "<none>",
                    "80/TCP,53/UDP",
                    "30m",
                    "a=b,app=web"
                ]),
            ),
            (
                json!({"type": "NodePort", "clusterIPs": ["10.96.0.11"],
                       "externalIPs": ["192.0.2.1", "192.0.2.2"],
                       "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
                json!({}),
                json!([
                    "svc",
                    "NodePort",
                    "10.96.0.11",
                    "192.0.2.1,192.0.2.2",
                    "80:30080/TCP",
                    "30m",
                    "<none>"
                ]),
            ),
            (
                json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"],
                       "ports": [{"port": 443, "nodePort": 31443}]}),
                json!({}),
                json!([
                    "svc",
                    "LoadBalancer",
                    "10.96.0.12",
                    "<pending>",
                    "443:31443/TCP",
                    "30m",
                    "<none>"
                ]),
            ),
            (
                json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"]}),
                lb_status.clone(),
                json!([
                    "svc",
                    "LoadBalancer",
                    "10.96.0.12",
                    "203.0.113.9,lb.example.com",
                    "<none>",
                    "30m",
                    "<none>"
                ]),
            ),
            (
                json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"],
                       "externalIPs": ["192.0.2.1"]}),
                lb_status,
                json!([
                    "svc",
                    "LoadBalancer",
                    "10.96.0.12",
                    "203.0.113.9,lb.example.com,192.0.2.1",
                    "<none>",
                    "30m",
                    "<none>"
                ]),
            ),
            (
                json!({"type": "ExternalName", "externalName": "db.example.com"}),
                json!({}),
                json!([
                    "svc",
                    "ExternalName",
                    "<none>",
                    "db.example.com",
                    "<none>",
                    "30m",
                    "<none>"
                ]),
            ),
            (
                json!({"clusterIP": "None", "ports": [{"port": 5432}]}),
                json!({}),
                json!([
                    "svc",
                    "ClusterIP",
                    "None",
                    "<none>",
                    "5432/TCP",
                    "30m",
                    "<none>"
                ]),
            ),
        ];
        for (spec, status, want) in cases {
            let svc = service_with(spec, status);
            assert_eq!(Value::from(service(&svc, NOW)), want, "{svc}");
        }
    }

    #[test]
    fn formats_endpoints() {
        let cases = [
            (json!({}), "<none>"),
            (json!({"subsets": [{}]}), ""),
            (
                json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                                    "ports": [{"port": 8080}]}]}),
                "10.0.0.1:8080,10.0.0.2:8080",
            ),
            (
                json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::2"}],
                                    "notReadyAddresses": [{"ip": "10.0.0.9"}],
                                    "ports": [{"port": 80}, {"port": 443}]}]}),
                "10.0.0.1:80,[fd00::2]:80,10.0.0.1:443 + 1 more...",
            ),
            (
                json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}]},
                                   {"addresses": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.3"},
                                                  {"ip": "10.0.0.4"}, {"ip": "10.0.0.5"}]}]}),
                "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...",
            ),
        ];
        for (object, want) in cases {
            assert_eq!(format_endpoints(&object), want, "{object}");
        }
    }
}
