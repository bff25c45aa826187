//! What exists after start, as on upstream: the namespaces `default`, `kube-system`,
//! `kube-public` and `kube-node-lease`, the `kubernetes` Service with its Endpoints and
//! EndpointSlice pointing at this API server, and (as k3s's CoreDNS manifest makes it) the
//! `kube-dns` Service at the cluster DNS address, whose Endpoints the nodes' DNS servers
//! write. Written through the REST layer, so the same
//! defaulting and validation apply; re-running on every start keeps the endpoints current.

use std::net::IpAddr;

use cox_api::registry;
use cox_api::status::ApiError;
use serde_json::{Value, json};

use crate::request::{Query, ResourceRequest};
use crate::rest::Rest;

/// Where the `kubernetes` Service points.
#[derive(Debug, Clone)]
pub struct KubernetesService {
    pub cluster_ip: IpAddr,
    pub endpoint_ip: IpAddr,
    pub port: u16,
}

fn request(group: &str, resource: &str, namespace: Option<&str>, name: &str) -> ResourceRequest {
    ResourceRequest {
        group: group.into(),
        version: "v1".into(),
        namespace: namespace.map(str::to_owned),
        resource: resource.into(),
        name: name.into(),
        ..Default::default()
    }
}

/// Creates `object`, or replaces the stored one when `replace` and it differs.
async fn ensure(
    rest: &Rest,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: &str,
    object: Value,
    replace: bool,
) -> Result<(), ApiError> {
    let Some(found) = registry::find(group, "v1", resource) else {
        return Err(ApiError::internal(format!(
            "{resource} is not a known resource"
        )));
    };
    let query = Query::default();
    let req = request(group, resource, namespace, name);
    match rest.create(found, &req, &query, object.clone()).await {
        Ok(_) => Ok(()),
        Err(err) if err.code == 409 && replace => {
            rest.update(found, &req, &query, object).await.map(|_| ())
        }
        Err(err) if err.code == 409 => Ok(()),
        Err(err) => Err(err),
    }
}

/// Upstream's default RBAC policy: the roles and bindings `cox_api::rbac::bootstrap` lists,
/// created when missing (ones a user changed are left as they are).
pub async fn rbac_defaults(rest: &Rest) -> Result<(), ApiError> {
    use cox_api::rbac::bootstrap;
    let mut objects = Vec::new();
    for role in bootstrap::cluster_roles() {
        objects.push(default_object("clusterroles", &role.metadata, &role)?);
    }
    for binding in bootstrap::cluster_role_bindings() {
        objects.push(default_object(
            "clusterrolebindings",
            &binding.metadata,
            &binding,
        )?);
    }
    for role in bootstrap::roles() {
        objects.push(default_object("roles", &role.metadata, &role)?);
    }
    for binding in bootstrap::role_bindings() {
        objects.push(default_object("rolebindings", &binding.metadata, &binding)?);
    }
    for (resource, namespace, name, object) in objects {
        ensure(
            rest,
            "rbac.authorization.k8s.io",
            resource,
            namespace.as_deref(),
            &name,
            object,
            false,
        )
        .await?;
    }
    Ok(())
}

/// A default object of `resource` as `ensure` takes it: its namespace, name and JSON.
fn default_object(
    resource: &'static str,
    metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    object: &impl serde::Serialize,
) -> Result<(&'static str, Option<String>, String, Value), ApiError> {
    let json = serde_json::to_value(object).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((
        resource,
        metadata.namespace.clone(),
        metadata.name.clone().unwrap_or_default(),
        json,
    ))
}

pub async fn run(rest: &Rest, service: &KubernetesService) -> Result<(), ApiError> {
    // The ranges hold exactly what the stored Services use (repairs a crash mid-allocation).
    let services = registry::find("", "v1", "services")
        .ok_or_else(|| ApiError::internal("services are not registered"))?;
    let all = rest
        .list(services, &ResourceRequest::default(), &Query::default())
        .await?;
    let items = all["items"].as_array().cloned().unwrap_or_default();
    rest.services.rebuild(&items).await?;

    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure(
            rest,
            "",
            "namespaces",
            None,
            name,
            json!({"metadata": {"name": name}}),
            false,
        )
        .await?;
    }
    let ip = service.cluster_ip.to_string();
    let family = if service.cluster_ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    };
    let svc = json!({
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "clusterIPs": [ip],
            "ipFamilies": [family],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
            "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": service.port}],
        },
    });
    ensure(
        rest,
        "",
        "services",
        Some("default"),
        "kubernetes",
        svc,
        false,
    )
    .await?;
    let endpoint = service.endpoint_ip.to_string();
    let endpoints = json!({
        "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": endpoint}], "ports": [{"name": "https", "port": service.port, "protocol": "TCP"}]}],
    });
    ensure(
        rest,
        "",
        "endpoints",
        Some("default"),
        "kubernetes",
        endpoints,
        true,
    )
    .await?;
    let slice = json!({
        "metadata": {"name": "kubernetes", "labels": {
            "kubernetes.io/service-name": "kubernetes",
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        }},
        "addressType": if service.endpoint_ip.is_ipv4() { "IPv4" } else { "IPv6" },
        "endpoints": [{"addresses": [endpoint], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": service.port, "protocol": "TCP"}],
    });
    ensure(
        rest,
        "discovery.k8s.io",
        "endpointslices",
        Some("default"),
        "kubernetes",
        slice,
        true,
    )
    .await
}

/// The `kube-dns` Service in `kube-system` at `cluster_ip`, labelled as a cluster service so
/// that `kubectl cluster-info` lists it. It has no selector: the DNS server runs inside each
/// node's agent, which keeps the Service's Endpoints.
pub async fn dns_service(rest: &Rest, cluster_ip: IpAddr) -> Result<(), ApiError> {
    let ip = cluster_ip.to_string();
    let family = if cluster_ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let svc = json!({
        "metadata": {"name": "kube-dns", "labels": {
            "k8s-app": "kube-dns",
            "kubernetes.io/cluster-service": "true",
            "kubernetes.io/name": "CoreDNS",
        }},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "clusterIPs": [ip],
            "ipFamilies": [family],
            "ipFamilyPolicy": "SingleStack",
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
        },
    });
    ensure(
        rest,
        "",
        "services",
        Some("kube-system"),
        "kube-dns",
        svc,
        false,
    )
    .await
}
