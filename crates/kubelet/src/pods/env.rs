//! A container's environment, as upstream's kubelet builds it: `envFrom` sources first, then
//! `env` in order, each `$(VAR)` expanded from the variables before it (and the Service
//! variables); then the Service variables the container did not set itself: for every Service
//! of the pod's namespace with a cluster IP (unless `enableServiceLinks: false`) and for the
//! `kubernetes` Service, `<NAME>_SERVICE_HOST`/`_PORT`/`_PORT_<PORT NAME>` and the Docker-link
//! style `<NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]`.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::api::{Api, ListParams};

/// The resolved variables, in order; an error names what could not be read.
pub async fn resolve(
    client: &kube::Client,
    pod: &Pod,
    container: &Container,
    node_ip: &str,
) -> Result<Vec<(String, String)>, String> {
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let service_vars = service_variables(client, pod, &namespace).await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, key: String, value: String| match env
        .iter_mut()
        .find(|(k, _)| *k == key)
    {
        Some(entry) => entry.1 = value,
        None => env.push((key, value)),
    };
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.clone().unwrap_or_default();
        if let Some(reference) = &source.config_map_ref {
            let optional = reference.optional.unwrap_or(false);
            match config_maps
                .get_opt(&reference.name)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(map) => {
                    for (key, value) in map.data.unwrap_or_default() {
                        set(&mut env, format!("{prefix}{key}"), value);
                    }
                }
                None if optional => {}
                None => return Err(format!("configmap \"{}\" not found", reference.name)),
            }
        }
        if let Some(reference) = &source.secret_ref {
            let optional = reference.optional.unwrap_or(false);
            match secrets
                .get_opt(&reference.name)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(secret) => {
                    for (key, value) in secret_data(&secret) {
                        set(&mut env, format!("{prefix}{key}"), value);
                    }
                }
                None if optional => {}
                None => return Err(format!("secret \"{}\" not found", reference.name)),
            }
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => {
                let scope: Vec<(String, String)> =
                    env.iter().chain(service_vars.iter()).cloned().collect();
                expand(var.value.as_deref().unwrap_or_default(), &scope)
            }
            Some(source) => {
                if let Some(field) = &source.field_ref {
                    field_value(pod, &field.field_path, node_ip)
                        .ok_or_else(|| format!("unsupported fieldRef {}", field.field_path))?
                } else if let Some(key) = &source.config_map_key_ref {
                    let optional = key.optional.unwrap_or(false);
                    let map = config_maps
                        .get_opt(&key.name)
                        .await
                        .map_err(|e| e.to_string())?;
                    match map.and_then(|m| m.data.unwrap_or_default().get(&key.key).cloned()) {
                        Some(value) => value,
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in ConfigMap {namespace}/{}",
                                key.key, key.name
                            ));
                        }
                    }
                } else if let Some(key) = &source.secret_key_ref {
                    let optional = key.optional.unwrap_or(false);
                    let secret = secrets
                        .get_opt(&key.name)
                        .await
                        .map_err(|e| e.to_string())?;
                    match secret.and_then(|s| secret_data(&s).get(&key.key).cloned()) {
                        Some(value) => value,
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in Secret {namespace}/{}",
                                key.key, key.name
                            ));
                        }
                    }
                } else if let Some(resource) = &source.resource_field_ref {
                    resource_value(container, &resource.resource)
                } else {
                    String::new()
                }
            }
        };
        set(&mut env, var.name.clone(), value);
    }
    for (key, value) in service_vars {
        if !env.iter().any(|(k, _)| *k == key) {
            env.push((key, value));
        }
    }
    Ok(env)
}

/// The Services whose variables the pod gets: its namespace's (with service links on), and
/// `default/kubernetes` whatever the setting (upstream's "master services").
async fn service_variables(
    client: &kube::Client,
    pod: &Pod,
    namespace: &str,
) -> Result<Vec<(String, String)>, String> {
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut services: Vec<Service> = Vec::new();
    if links {
        let api: Api<Service> = Api::namespaced(client.clone(), namespace);
        services = api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing services: {e}"))?
            .items;
    }
    if !links || namespace != "default" {
        let api: Api<Service> = Api::namespaced(client.clone(), "default");
        if let Some(kubernetes) = api
            .get_opt("kubernetes")
            .await
            .map_err(|e| format!("reading the kubernetes service: {e}"))?
        {
            services.push(kubernetes);
        }
    }
    Ok(service_env(&services))
}

/// The variables for `services` (upstream's `FromServices`), in a stable order.
pub fn service_env(services: &[Service]) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    let mut services: Vec<&Service> = services.iter().collect();
    services.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for service in services {
        let Some(spec) = &service.spec else { continue };
        let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| !ip.is_empty() && *ip != "None")
        else {
            continue;
        };
        let ports = spec.ports.clone().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        let name = env_name(service.metadata.name.as_deref().unwrap_or_default());
        vars.push((format!("{name}_SERVICE_HOST"), ip.to_owned()));
        vars.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
        for port in &ports {
            if let Some(port_name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                vars.push((
                    format!("{name}_SERVICE_PORT_{}", env_name(port_name)),
                    port.port.to_string(),
                ));
            }
        }
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_owned()
        };
        let protocol = |p: &k8s_openapi::api::core::v1::ServicePort| {
            p.protocol.clone().unwrap_or_else(|| "TCP".into())
        };
        let proto = protocol(first).to_lowercase();
        vars.push((
            format!("{name}_PORT"),
            format!("{proto}://{host}:{}", first.port),
        ));
        for port in &ports {
            let upper = protocol(port).to_uppercase();
            let lower = upper.to_lowercase();
            let prefix = format!("{name}_PORT_{}_{upper}", port.port);
            vars.push((prefix.clone(), format!("{lower}://{host}:{}", port.port)));
            vars.push((format!("{prefix}_PROTO"), lower));
            vars.push((format!("{prefix}_PORT"), port.port.to_string()));
            vars.push((format!("{prefix}_ADDR"), ip.to_owned()));
        }
    }
    vars
}

/// A Service or port name as a variable name: upper case, `-` as `_`.
fn env_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

fn secret_data(secret: &Secret) -> BTreeMap<String, String> {
    let mut data: BTreeMap<String, String> = secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, ByteString(v))| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    data.extend(secret.string_data.clone().unwrap_or_default());
    data
}

/// A downward-API field.
fn field_value(pod: &Pod, path: &str, node_ip: &str) -> Option<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let from_map = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key).cloned())
            .unwrap_or_default()
    };
    if let Some(key) = path
        .strip_prefix("metadata.labels['")
        .and_then(|k| k.strip_suffix("']"))
    {
        return Some(from_map(&meta.labels, key));
    }
    if let Some(key) = path
        .strip_prefix("metadata.annotations['")
        .and_then(|k| k.strip_suffix("']"))
    {
        return Some(from_map(&meta.annotations, key));
    }
    Some(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => node_ip.to_string(),
        "status.podIP" | "status.podIPs" => {
            status.and_then(|s| s.pod_ip.clone()).unwrap_or_default()
        }
        _ => return None,
    })
}

/// `limits.cpu` and friends, in the units upstream's divisor of 1 gives (cores rounded up,
/// bytes).
fn resource_value(container: &Container, resource: &str) -> String {
    let resources = container.resources.as_ref();
    let (kind, name) = resource.split_once('.').unwrap_or(("limits", resource));
    let map = match kind {
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => resources.and_then(|r| r.limits.as_ref()),
    };
    let Some(quantity) = map.and_then(|m| m.get(name)) else {
        return "0".into();
    };
    let value = if name == "cpu" {
        cox_api::quantity::milli_value(quantity).map(|m| (m + 999) / 1000)
    } else {
        cox_api::quantity::value(quantity)
    };
    value.unwrap_or(0).to_string()
}

/// Expands `$(NAME)` from earlier variables; `$$` escapes; unknown references stay as written.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(')
            && let Some(end) = body.find(')')
        {
            let name = &body[..end];
            match env.iter().find(|(k, _)| k == name) {
                Some((_, value)) => out.push_str(value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{Service, expand, service_env};

    #[test]
    fn expands_like_upstream() {
        let env = vec![("A".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env), "x-$(B)-$(A)-$");
    }

    #[test]
    fn services_become_variables_as_upstream_names_them() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "my-db", "namespace": "shop"},
            "spec": {"clusterIP": "10.43.0.20", "ports": [
                {"name": "sql", "port": 5432},
                {"name": "metrics-http", "port": 9187, "protocol": "TCP"},
            ]},
        }))
        .unwrap();
        let headless: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "peers"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]},
        }))
        .unwrap();
        let vars = service_env(&[service, headless]);
        let get = |k: &str| {
            vars.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("MY_DB_SERVICE_HOST"), Some("10.43.0.20"));
        assert_eq!(get("MY_DB_SERVICE_PORT"), Some("5432"));
        assert_eq!(get("MY_DB_SERVICE_PORT_METRICS_HTTP"), Some("9187"));
        assert_eq!(get("MY_DB_PORT"), Some("tcp://10.43.0.20:5432"));
        assert_eq!(get("MY_DB_PORT_9187_TCP"), Some("tcp://10.43.0.20:9187"));
        assert_eq!(get("MY_DB_PORT_9187_TCP_PROTO"), Some("tcp"));
        assert_eq!(get("MY_DB_PORT_9187_TCP_PORT"), Some("9187"));
        assert_eq!(get("MY_DB_PORT_9187_TCP_ADDR"), Some("10.43.0.20"));
        assert!(
            vars.iter().all(|(k, _)| !k.starts_with("PEERS")),
            "{vars:?}"
        );
    }
}
