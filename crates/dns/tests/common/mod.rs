//! Objects for the tests: Services and EndpointSlices as the API server would hand them out,
//! and the zone built from them.

#![allow(dead_code, reason = "each test binary uses its own part")]

use cox_dns::proto::op::Query;
use cox_dns::proto::rr::{Name, RecordType};
use cox_dns::{ClusterDomain, Zone};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

pub fn service(namespace: &str, name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"namespace": namespace, "name": name},
        "spec": spec,
    }))
    .unwrap()
}

pub fn slice(
    namespace: &str,
    service: &str,
    name: &str,
    address_type: &str,
    endpoints: serde_json::Value,
    ports: serde_json::Value,
) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {
            "namespace": namespace,
            "name": name,
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": ports,
    }))
    .unwrap()
}

/// `web` (dual-stack ClusterIP, named and unnamed ports), `db` (headless, one endpoint with
/// a hostname, one without, one not ready), `db-all` (headless, publishNotReadyAddresses),
/// `ext` and `alias` (ExternalName, out of and into the cluster domain), `pending`
/// (ClusterIP not allocated yet), `lonely` (headless without slices); `other/api`; a slice
/// of FQDN endpoints and a slice of no Service.
pub fn objects() -> (Vec<Service>, Vec<EndpointSlice>) {
    let services = vec![
        service(
            "default",
            "web",
            json!({
                "clusterIP": "10.43.0.20",
                "clusterIPs": ["10.43.0.20", "fd00:43::20"],
                "ports": [
                    {"name": "http", "port": 80, "protocol": "TCP"},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"port": 9000},
                ],
            }),
        ),
        service(
            "default",
            "db",
            json!({"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}),
        ),
        service(
            "default",
            "db-all",
            json!({"clusterIP": "None", "publishNotReadyAddresses": true}),
        ),
        service(
            "default",
            "ext",
            json!({"type": "ExternalName", "externalName": "example.test"}),
        ),
        service(
            "default",
            "alias",
            json!({"type": "ExternalName", "externalName": "web.default.svc.cluster.local."}),
        ),
        service(
            "default",
            "pending",
            json!({"ports": [{"name": "http", "port": 80}]}),
        ),
        service("default", "lonely", json!({"clusterIP": "None"})),
        service(
            "other",
            "api",
            json!({"clusterIP": "10.43.1.1", "clusterIPs": ["10.43.1.1"]}),
        ),
    ];
    let db_endpoints = json!([
        {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
        {"addresses": ["10.42.0.6"]},
        {"addresses": ["10.42.0.7"], "conditions": {"ready": false}},
    ]);
    let slices = vec![
        slice(
            "default",
            "db",
            "db-abcde",
            "IPv4",
            db_endpoints.clone(),
            json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]),
        ),
        slice(
            "default",
            "db",
            "db-fqdn",
            "FQDN",
            json!([{"addresses": ["somewhere.test"]}]),
            json!([]),
        ),
        slice(
            "default",
            "db-all",
            "db-all-xyz",
            "IPv4",
            db_endpoints,
            json!([]),
        ),
        slice(
            "default",
            "gone",
            "gone-1",
            "IPv4",
            json!([{"addresses": ["10.42.9.9"]}]),
            json!([]),
        ),
    ];
    (services, slices)
}

pub fn zone() -> Zone {
    let (services, slices) = objects();
    let domain = ClusterDomain::parse("cluster.local").unwrap();
    Zone::build(&domain, &services, &slices, 7)
}

pub fn query(name: &str, qtype: RecordType) -> Query {
    Query::query(Name::from_ascii(name).unwrap(), qtype)
}
