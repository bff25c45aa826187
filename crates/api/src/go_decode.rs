//! What upstream's JSON decoder refuses: a value of the wrong JSON type for its field (a
//! string for `spec.replicas`, a number for a label). Upstream decodes every body into its Go
//! type and answers such a body with Go's `json: cannot unmarshal string into Go struct field
//! DeploymentSpec.spec.replicas of type int32`; this module finds the first such field by
//! walking the body against the message table in [`crate::schema`].
//!
//! Go's type names come from the proto messages (`v1.DeploymentSpec`, `[]v1.Container`,
//! `map[string]string`); where Go uses a named type (`v1.Protocol`, `v1.ResourceList`) the
//! message names the type it is made of (`string`, `map[string]resource.Quantity`).
//! Time, Quantity, IntOrString and the other hand-encoded values are not looked into.

use serde_json::{Map, Value};

use crate::schema::{self, Field, Kind, MapValue, Message, OPAQUE, Scalar};

/// Go's message for the first value of `object` (a `kind` of `group`/`version`) its field's
/// type cannot hold; `None` when every value fits, or for kinds the table does not know.
pub fn type_error(group: &str, version: &str, kind: &str, object: &Value) -> Option<String> {
    let message = schema::kind(group, version, kind).and_then(|k| schema::message(k.message))?;
    let map = object.as_object()?;
    let mut path = Vec::new();
    check_message(message, map, &mut path).err()
}

fn check_message<'a>(
    message: &'static Message,
    map: &'a Map<String, Value>,
    path: &mut Vec<&'a str>,
) -> Result<(), String> {
    for (key, value) in map {
        // Unknown fields are field validation's to report.
        let Some(field) = message.resolve_json(key) else {
            continue;
        };
        path.push(key);
        check_field(message, field, value, path)?;
        path.pop();
    }
    Ok(())
}

fn check_field<'a>(
    owner: &'static Message,
    field: &Field,
    value: &'a Value,
    path: &mut Vec<&'a str>,
) -> Result<(), String> {
    // Go reads `null` as the zero value of anything.
    if value.is_null() {
        return Ok(());
    }
    if let Kind::Map { value: entry, .. } = field.kind {
        let Some(entries) = value.as_object() else {
            return refuse(owner, path, found(value), &map_type(entry));
        };
        for entry_value in entries.values().filter(|v| !v.is_null()) {
            match entry {
                MapValue::Scalar(scalar) => {
                    if let Some(found) = scalar_mismatch(scalar, entry_value) {
                        return refuse(owner, path, found, scalar_type(scalar));
                    }
                }
                MapValue::Message(name) => {
                    check_single(owner, Kind::Message(name), entry_value, path)?
                }
            }
        }
        return Ok(());
    }
    if field.repeated {
        let Some(items) = value.as_array() else {
            let go_type = format!("[]{}", single_type(field.kind));
            return refuse(owner, path, found(value), &go_type);
        };
        for item in items.iter().filter(|v| !v.is_null()) {
            check_single(owner, field.kind, item, path)?;
        }
        return Ok(());
    }
    check_single(owner, field.kind, value, path)
}

fn check_single<'a>(
    owner: &'static Message,
    kind: Kind,
    value: &'a Value,
    path: &mut Vec<&'a str>,
) -> Result<(), String> {
    match kind {
        Kind::Scalar(scalar) => match scalar_mismatch(scalar, value) {
            Some(found) => refuse(owner, path, found, &single_type(kind)),
            None => Ok(()),
        },
        Kind::Message(name) if OPAQUE.contains(&name) => Ok(()),
        Kind::Message(name) => {
            let Some(map) = value.as_object() else {
                return refuse(owner, path, found(value), &single_type(kind));
            };
            match schema::message(name) {
                Some(message) => check_message(message, map, path),
                None => Ok(()),
            }
        }
        Kind::Map { .. } => Ok(()),
    }
}

/// Go's error for `found` at `path`, a field of `owner` of type `go_type`.
fn refuse(owner: &Message, path: &[&str], found: String, go_type: &str) -> Result<(), String> {
    Err(format!(
        "json: cannot unmarshal {found} into Go struct field {}.{} of type {go_type}",
        short_name(owner.name),
        path.join(".")
    ))
}

/// How Go names what it found, when `value` does not fit `scalar`.
fn scalar_mismatch(scalar: Scalar, value: &Value) -> Option<String> {
    match (scalar, value) {
        (Scalar::String | Scalar::Bytes, Value::String(_))
        | (Scalar::Bool, Value::Bool(_))
        | (Scalar::Double | Scalar::Float, Value::Number(_)) => None,
        (Scalar::Int32, Value::Number(n)) => match n.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => None,
            _ => Some(format!("number {n}")),
        },
        (Scalar::Int64, Value::Number(n)) => match n.as_i64() {
            Some(_) => None,
            None => Some(format!("number {n}")),
        },
        (_, other) => Some(found(other)),
    }
}

/// What Go calls a JSON value it cannot store.
fn found(value: &Value) -> String {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
    .to_owned()
}

fn scalar_type(scalar: Scalar) -> &'static str {
    match scalar {
        Scalar::String => "string",
        Scalar::Bytes => "[]uint8",
        Scalar::Bool => "bool",
        Scalar::Int32 => "int32",
        Scalar::Int64 => "int64",
        Scalar::Double => "float64",
        Scalar::Float => "float32",
    }
}

fn single_type(kind: Kind) -> String {
    match kind {
        Kind::Scalar(scalar) => scalar_type(scalar).to_owned(),
        Kind::Message(name) => go_type(name),
        Kind::Map { value, .. } => map_type(value),
    }
}

fn map_type(value: MapValue) -> String {
    match value {
        MapValue::Scalar(scalar) => format!("map[string]{}", scalar_type(scalar)),
        MapValue::Message(name) => format!("map[string]{}", go_type(name)),
    }
}

/// `k8s.io.api.apps.v1.DeploymentSpec` as Go prints its type: `v1.DeploymentSpec`.
fn go_type(message: &str) -> String {
    let mut parts = message.rsplit('.');
    let name = parts.next().unwrap_or(message);
    match parts.next() {
        Some(package) => format!("{package}.{name}"),
        None => name.to_owned(),
    }
}

/// The type's name alone, as Go names the struct holding a field: `DeploymentSpec`.
fn short_name(message: &str) -> &str {
    message.rsplit('.').next().unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(spec: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": spec})
    }

    #[test]
    fn wrong_types_are_named_as_go_names_them() {
        let cases = [
            (
                deployment(json!({"replicas": "3"})),
                "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
            ),
            (
                deployment(json!({"replicas": 1.5})),
                "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32",
            ),
            (
                deployment(json!({"template": {"spec": {"containers": {"name": "c"}}}})),
                "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type []v1.Container",
            ),
            (
                deployment(
                    json!({"template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": "80"}]}]}}}),
                ),
                "json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": 1}}}),
                "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "c"}),
                "json: cannot unmarshal string into Go struct field ConfigMap.metadata of type v1.ObjectMeta",
            ),
            (
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "i"},
                       "spec": {"controller": "x/y", "parameters": {"kind": "K", "name": true}}}),
                "json: cannot unmarshal bool into Go struct field IngressClassParametersReference.spec.parameters.name of type string",
            ),
        ];
        for (object, want) in cases {
            let kind = object["kind"].as_str().unwrap();
            let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
                Some((g, v)) => (g, v),
                None => ("", "v1"),
            };
            assert_eq!(
                type_error(group, version, kind, &object).as_deref(),
                Some(want),
                "{object}"
            );
        }
    }

    #[test]
    fn fitting_values_nulls_and_hand_encoded_ones_pass() {
        let object = deployment(json!({
            "replicas": 3, "paused": null, "selector": {"matchLabels": {"a": "b"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {"metadata": {"creationTimestamp": null, "labels": {"a": "b"}},
                         "spec": {"containers": [{"name": "c", "image": "i",
                                  "resources": {"limits": {"cpu": 1, "memory": "1Gi"}}}]}}
        }));
        assert_eq!(type_error("apps", "v1", "Deployment", &object), None);
        // Unknown fields are not this check's to report.
        let object = deployment(json!({"bogus": "x", "replicas": 2}));
        assert_eq!(type_error("apps", "v1", "Deployment", &object), None);
        assert_eq!(type_error("example.com", "v1", "Widget", &object), None);
    }
}
