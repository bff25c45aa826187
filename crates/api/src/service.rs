//! Services: upstream's defaults and validation for `spec` (the parts that need no cluster
//! state; address allocation is the API server's).

use serde_json::{Value, json};

use crate::validation::{self, FieldError};

pub const TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];

/// `spec.type`, defaulted.
pub fn service_type(service: &Value) -> &str {
    service
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or("ClusterIP")
}

/// True for types that get node ports.
pub fn wants_node_ports(service: &Value) -> bool {
    matches!(service_type(service), "NodePort" | "LoadBalancer")
}

/// True when the Service has a cluster IP to allocate (not ExternalName, not headless).
pub fn wants_cluster_ip(service: &Value) -> bool {
    service_type(service) != "ExternalName"
        && service.pointer("/spec/clusterIP").and_then(Value::as_str) != Some("None")
}

/// Upstream's defaults (`SetDefaults_Service` and the registry's create preparation), except
/// addresses.
pub fn default_service(service: &mut Value) {
    if !service.is_object() {
        return;
    }
    if !service.get("spec").is_some_and(Value::is_object) {
        service["spec"] = json!({});
    }
    let kind = service_type(service).to_owned();
    let spec = &mut service["spec"];
    spec["type"] = json!(kind);
    if spec
        .get("sessionAffinity")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        spec["sessionAffinity"] = json!("None");
    }
    if spec["sessionAffinity"] == "ClientIP"
        && spec
            .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
            .is_none()
    {
        spec["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": 10800}});
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        // An item that is no object is left to the type checks, which refuse it.
        for port in ports.iter_mut().filter(|port| port.is_object()) {
            if port
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                port["protocol"] = json!("TCP");
            }
            // Go holds the target port by value: zero and "" are unset.
            let unset = port
                .get("targetPort")
                .is_none_or(|t| t.is_null() || t == 0 || t == "");
            if unset && let Some(number) = port.get("port").cloned() {
                port["targetPort"] = number;
            }
        }
    }
    if kind != "ExternalName" && spec.get("internalTrafficPolicy").is_none_or(Value::is_null) {
        spec["internalTrafficPolicy"] = json!("Cluster");
    }
    if matches!(kind.as_str(), "NodePort" | "LoadBalancer")
        && spec.get("externalTrafficPolicy").is_none_or(Value::is_null)
    {
        spec["externalTrafficPolicy"] = json!("Cluster");
    }
    if kind == "LoadBalancer"
        && spec
            .get("allocateLoadBalancerNodePorts")
            .is_none_or(Value::is_null)
    {
        spec["allocateLoadBalancerNodePorts"] = json!(true);
    }
    if kind != "ExternalName" {
        if spec.get("ipFamilyPolicy").is_none_or(Value::is_null) {
            spec["ipFamilyPolicy"] = json!("SingleStack");
        }
        if spec.get("ipFamilies").is_none_or(Value::is_null) {
            spec["ipFamilies"] = json!(["IPv4"]);
        }
    }
    if service.get("status").is_none_or(Value::is_null) {
        service["status"] = json!({"loadBalancer": {}});
    }
}

/// Upstream's checks of `spec`, given the node port range.
pub fn validate_service(service: &Value, node_ports: (u16, u16)) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let kind = service_type(service);
    if !TYPES.contains(&kind) {
        errors.push(FieldError::not_supported("spec.type", kind, TYPES));
        return errors;
    }
    let ports = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let headless = service.pointer("/spec/clusterIP").and_then(Value::as_str) == Some("None");
    if kind == "ExternalName" {
        let name = service
            .pointer("/spec/externalName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.is_empty() {
            errors.push(FieldError::required("spec.externalName", ""));
        } else {
            for problem in validation::dns1123_subdomain(name.trim_end_matches('.')) {
                errors.push(FieldError::invalid("spec.externalName", name, &problem));
            }
        }
    } else if ports.is_empty() && !headless {
        errors.push(FieldError::required("spec.ports", ""));
    }
    let mut names = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let path = |field: &str| format!("spec.ports[{i}].{field}");
        let name = port.get("name").and_then(Value::as_str).unwrap_or("");
        if ports.len() > 1 && name.is_empty() {
            errors.push(FieldError::required(&path("name"), ""));
        } else if !name.is_empty() {
            for problem in validation::dns1123_label(name) {
                errors.push(FieldError::invalid(&path("name"), name, &problem));
            }
            if names.contains(&name) {
                errors.push(FieldError::duplicate(&path("name"), name));
            }
            names.push(name);
        }
        match port.get("port").and_then(Value::as_i64) {
            Some(number) if (1..=65535).contains(&number) => {}
            Some(number) => errors.push(FieldError::invalid_raw(
                &path("port"),
                number,
                "must be between 1 and 65535, inclusive",
            )),
            None => errors.push(FieldError::required(&path("port"), "")),
        }
        let protocol = port
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP");
        if !PROTOCOLS.contains(&protocol) {
            errors.push(FieldError::not_supported(
                &path("protocol"),
                protocol,
                PROTOCOLS,
            ));
        }
        match port.get("targetPort") {
            Some(Value::Number(n)) if !n.as_i64().is_some_and(|n| (1..=65535).contains(&n)) => {
                errors.push(FieldError::invalid_raw(
                    &path("targetPort"),
                    n,
                    "must be between 1 and 65535, inclusive",
                ));
            }
            Some(Value::String(s)) if s.is_empty() || s.len() > 15 => {
                errors.push(FieldError::invalid(
                    &path("targetPort"),
                    s,
                    "must be no more than 15 characters",
                ));
            }
            _ => {}
        }
        if let Some(node_port) = port
            .get("nodePort")
            .and_then(Value::as_i64)
            .filter(|&p| p != 0)
        {
            if !matches!(kind, "NodePort" | "LoadBalancer") {
                errors.push(FieldError::forbidden(
                    &path("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else if node_port < i64::from(node_ports.0) || node_port > i64::from(node_ports.1) {
                errors.push(FieldError::invalid_raw(
                    &path("nodePort"),
                    node_port,
                    &format!(
                        "provided port is not in the valid range. The range of valid ports is {}-{}",
                        node_ports.0, node_ports.1
                    ),
                ));
            }
        }
    }
    if let Some(affinity) = service
        .pointer("/spec/sessionAffinity")
        .and_then(Value::as_str)
        && !["None", "ClientIP", ""].contains(&affinity)
    {
        errors.push(FieldError::not_supported(
            "spec.sessionAffinity",
            affinity,
            &["ClientIP", "None"],
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzz run: a port that is no object panicked (the type checks refuse it
    /// before defaulting, so only a direct caller could reach it).
    #[test]
    fn ports_that_are_no_objects_are_left_alone() {
        let mut svc = json!({"spec": {"ports": [true, {"port": 80}]}});
        default_service(&mut svc);
        assert_eq!(svc["spec"]["ports"][0], json!(true));
        assert_eq!(svc["spec"]["ports"][1]["protocol"], "TCP");
    }

    #[test]
    fn defaults_follow_upstream() {
        let mut svc = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}});
        default_service(&mut svc);
        let spec = &svc["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));

        let mut lb = json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 443, "targetPort": "https"}]}});
        default_service(&mut lb);
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(
            lb["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
            10800
        );
        assert_eq!(lb["spec"]["ports"][0]["targetPort"], "https");
    }

    #[test]
    fn validation_messages() {
        let range = (30000, 32767);
        let cases: &[(Value, &[&str])] = &[
            (json!({"spec": {"ports": [{"port": 80}]}}), &[]),
            (json!({"spec": {}}), &["spec.ports: Required value"]),
            (json!({"spec": {"clusterIP": "None"}}), &[]),
            (
                json!({"spec": {"ports": [{"port": 70000}]}}),
                &[
                    "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
                ],
            ),
            (
                json!({"spec": {"ports": [{"port": 80}, {"port": 81}]}}),
                &[
                    "spec.ports[0].name: Required value",
                    "spec.ports[1].name: Required value",
                ],
            ),
            (
                json!({"spec": {"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]}}),
                &["spec.ports[1].name: Duplicate value: \"a\""],
            ),
            (
                json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}}),
                &[
                    "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
                ],
            ),
            (
                json!({"spec": {"type": "Magic", "ports": [{"port": 80}]}}),
                &[
                    "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"NodePort\", \"LoadBalancer\", \"ExternalName\"",
                ],
            ),
            (
                json!({"spec": {"type": "ExternalName"}}),
                &["spec.externalName: Required value"],
            ),
            (
                json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
                &[],
            ),
            (
                json!({"spec": {"ports": [{"port": 80, "protocol": "ICMP"}]}}),
                &[
                    "spec.ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
                ],
            ),
        ];
        for (service, want) in cases {
            let got: Vec<String> = validate_service(service, range)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, *want, "{service}");
        }
    }
}
