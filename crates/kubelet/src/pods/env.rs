//! A container's environment, as upstream's kubelet builds it: `envFrom` sources first, then
//! `env` in order, each `$(VAR)` expanded from the variables before it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::api::Api;

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
            None => expand(var.value.as_deref().unwrap_or_default(), &env),
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
    Ok(env)
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
    use super::expand;

    #[test]
    fn expands_like_upstream() {
        let env = vec![("A".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env), "x-$(B)-$(A)-$");
    }
}
