//! The JSON that upstream's Go types make of an object: what a client reads back after a
//! write. Upstream decodes every body into its Go struct and encodes the struct again, so:
//!
//! - a value tagged `omitempty` (`paused`, `hostNetwork`, `minReadySeconds`) disappears when
//!   it is zero, empty or `null`;
//! - a pointer (`replicas`, `runAsUser`, `storageClassName`) keeps a zero value that was set;
//! - a struct held by value is always there: `strategy: {}`, `resources: {}`, a template's
//!   `creationTimestamp: null`, a pod condition's `lastProbeTime: null`;
//! - a field without `omitempty` is always there, at its zero value (`rules: null`).
//!
//! How each field is held comes from the schema ([`crate::schema::Held`]). Messages whose Go
//! layout the schema does not know are left as written, and so are the values whose JSON is
//! not an object of fields (times, quantities, raw extensions).
//!
//! A protobuf body needs this most: Go writes every field it holds by value to protobuf, even
//! when zero, so `paused: false` arrives in every Deployment kubectl sends.

use serde_json::{Map, Value};

use crate::schema::{
    self, DURATION, Held, INT_OR_STRING, Kind, MICRO_TIME, MapValue, Message, OBJECT_META, OPAQUE,
    QUANTITY, Scalar, TIME,
};

/// Deeper than any API object nests; deeper values are left as they are.
const MAX_DEPTH: usize = 64;

/// Gives a built-in kind's object the JSON Go would write of it. Kinds the schema does not
/// know are left alone.
pub fn normalize(group: &str, version: &str, kind: &str, object: &mut Value) {
    if let Some(message) =
        schema::kind(group, version, kind).and_then(|k| schema::message(k.message))
        && let Some(map) = object.as_object_mut()
    {
        normalize_message(message, map, 0);
    }
}

/// The JSON Go writes of an empty value of the message `name`: `{}` with the fields Go always
/// writes, or the zero form of a time, quantity or the like.
pub fn empty(name: &str) -> Value {
    empty_at(name, 0)
}

fn empty_at(name: &str, depth: usize) -> Value {
    match name {
        QUANTITY => Value::String("0".into()),
        INT_OR_STRING => Value::from(0),
        DURATION => Value::String("0s".into()),
        // A zero time, a raw extension, FieldsV1.
        TIME | MICRO_TIME => Value::Null,
        _ if OPAQUE.contains(&name) => Value::Null,
        _ => {
            let mut map = Map::new();
            if let Some(message) = schema::message(name) {
                normalize_message(message, &mut map, depth);
            }
            Value::Object(map)
        }
    }
}

fn normalize_message(message: &'static Message, map: &mut Map<String, Value>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    for field in message.fields {
        if field.inline {
            // An embedded struct: its fields live in this same JSON object.
            if let Kind::Message(name) = field.kind
                && let Some(inner) = schema::message(name)
            {
                normalize_message(inner, map, depth + 1);
            }
            continue;
        }
        if message.name == OBJECT_META && field.json == "managedFields" {
            // Go tells an empty list from none here (`[]` asks for no entries); the field
            // manager reads the field and writes it, so it is left as the request has it.
            continue;
        }
        let held = message.go_layout.then_some(field.held);
        if map.get(field.json).is_some_and(Value::is_null) && held.is_some() {
            // Go reads `null` as the zero value: the same as leaving the field out.
            map.remove(field.json);
        }
        match map.get_mut(field.json) {
            Some(value) => {
                if held == Some(Held::OmitEmpty) && is_empty(value) {
                    map.remove(field.json);
                } else {
                    normalize_children(field.kind, field.repeated, value, depth);
                }
            }
            None => {
                if let Some(zero) = held.and_then(|held| absent(held, field.kind, depth)) {
                    map.insert(field.json.to_owned(), zero);
                }
            }
        }
    }
}

/// What Go writes of a field it holds as `held` when it is unset, if anything.
fn absent(held: Held, kind: Kind, depth: usize) -> Option<Value> {
    match held {
        Held::OmitEmpty | Held::Pointer => None,
        Held::PointerOrNull | Held::ListOrNull => Some(Value::Null),
        Held::Zero => Some(match kind {
            Kind::Scalar(Scalar::String) => Value::String(String::new()),
            Kind::Scalar(Scalar::Bool) => Value::Bool(false),
            Kind::Scalar(Scalar::Bytes) | Kind::Map { .. } => Value::Null,
            Kind::Scalar(_) => Value::from(0),
            Kind::Message(name) => empty_at(name, depth + 1),
        }),
        Held::Struct => Some(match kind {
            Kind::Message(name) => empty_at(name, depth + 1),
            Kind::Scalar(_) | Kind::Map { .. } => Value::Null,
        }),
    }
}

/// Zero, empty or unset, as `omitempty` judges.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
    }
}

fn normalize_children(kind: Kind, repeated: bool, value: &mut Value, depth: usize) {
    let name = match kind {
        Kind::Message(name) => name,
        Kind::Map {
            value: MapValue::Message(name),
            ..
        } => {
            if let Some(entries) = value.as_object_mut() {
                for entry in entries.values_mut() {
                    normalize_value(name, entry, depth);
                }
            }
            return;
        }
        Kind::Scalar(_) | Kind::Map { .. } => return,
    };
    match value {
        Value::Array(items) if repeated => {
            for item in items {
                normalize_value(name, item, depth);
            }
        }
        other => normalize_value(name, other, depth),
    }
}

fn normalize_value(name: &str, value: &mut Value, depth: usize) {
    if OPAQUE.contains(&name) {
        return;
    }
    if let (Some(message), Some(map)) = (schema::message(name), value.as_object_mut()) {
        normalize_message(message, map, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(mut object: Value) -> Value {
        normalize("apps", "v1", "Deployment", &mut object);
        object
    }

    #[test]
    fn values_tagged_omitempty_leave_when_zero_and_pointers_keep_a_set_zero() {
        let got = deployment(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "generation": 0, "namespace": ""},
            "spec": {
                "replicas": 0, "paused": false, "minReadySeconds": 0,
                "revisionHistoryLimit": null,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {
                    "hostIPC": false,
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "c", "image": "i", "stdin": false, "args": []}]
                }}
            }
        }));
        assert_eq!(
            got,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "creationTimestamp": null},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "strategy": {},
                    "template": {
                        "metadata": {"creationTimestamp": null},
                        "spec": {
                            "terminationGracePeriodSeconds": 0,
                            "containers": [{"name": "c", "image": "i", "resources": {}}]
                        }
                    }
                },
                "status": {}
            })
        );
    }

    #[test]
    fn fields_without_omitempty_are_written_at_their_zero_value() {
        let mut role = json!({"metadata": {"name": "r"}});
        normalize("rbac.authorization.k8s.io", "v1", "ClusterRole", &mut role);
        assert_eq!(
            role,
            json!({"metadata": {"name": "r", "creationTimestamp": null}, "rules": null})
        );

        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{
            "name": "c", "ports": [{"protocol": "TCP"}],
            "readinessProbe": {"grpc": {"port": 9000}}
        }]}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        normalize("", "v1", "Pod", &mut pod);
        let container = &pod["spec"]["containers"][0];
        assert_eq!(
            container["ports"],
            json!([{"protocol": "TCP", "containerPort": 0}])
        );
        assert_eq!(
            container["readinessProbe"]["grpc"],
            json!({"port": 9000, "service": null})
        );
        assert_eq!(
            pod["status"]["conditions"][0],
            json!({"type": "Ready", "status": "True",
                   "lastProbeTime": null, "lastTransitionTime": null})
        );
    }

    #[test]
    fn a_set_empty_string_of_a_pointer_stays() {
        let mut claim = json!({"metadata": {"name": "c"}, "spec": {"storageClassName": ""}});
        normalize("", "v1", "PersistentVolumeClaim", &mut claim);
        assert_eq!(claim["spec"]["storageClassName"], json!(""));
        assert_eq!(claim["spec"]["resources"], json!({}));
    }

    #[test]
    fn empty_objects_are_as_go_writes_a_zero_struct() {
        assert_eq!(
            empty("k8s.io.api.apps.v1.Deployment"),
            json!({
                "metadata": {"creationTimestamp": null},
                "spec": {
                    "selector": null,
                    "strategy": {},
                    "template": {
                        "metadata": {"creationTimestamp": null},
                        "spec": {"containers": null}
                    }
                },
                "status": {}
            })
        );
        assert_eq!(empty(QUANTITY), json!("0"));
        assert_eq!(empty(TIME), Value::Null);
        assert_eq!(empty(MICRO_TIME), Value::Null);
    }

    #[test]
    fn unknown_layouts_and_opaque_values_are_left_as_written() {
        let mut crd = json!({"spec": {"preserveUnknownFields": false, "names": {"kind": ""}}});
        let before = crd.clone();
        normalize(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            &mut crd,
        );
        assert_eq!(crd, before);

        let mut revision = json!({"metadata": {"name": "r"}, "data": {"spec": {"paused": false}},
                                  "revision": 1});
        normalize("apps", "v1", "ControllerRevision", &mut revision);
        assert_eq!(revision["data"], json!({"spec": {"paused": false}}));
    }
}
