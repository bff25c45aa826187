//! Server-side field validation (`fieldValidation=Strict|Warn|Ignore`): the fields of a body
//! that its kind does not have, found by walking it against the message table in
//! [`crate::schema`], reported with upstream's paths (`spec.containers[0].arg`).

use serde_json::Value;

use crate::schema::{self, Field, Kind, MapValue, Message, OPAQUE};

/// What the client asked for (`fieldValidation`); upstream's default is `Warn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some("Ignore") => Ok(Self::Ignore),
            Some(other) => Err(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            )),
        }
    }
}

fn resolve(message: &'static Message, key: &str) -> Option<&'static Field> {
    message.resolve_json(key)
}

/// Where a value sits in a document, as a chain back to its root: written out as upstream's
/// path (`spec.containers[0].arg`) only for a field that is reported, so walking a valid
/// body allocates no paths.
#[derive(Clone, Copy)]
enum At<'p> {
    Root,
    Key(&'p At<'p>, &'p str),
    /// A list's item (`[0]`) or a map's value (`[name]`).
    Item(&'p At<'p>, Subscript<'p>),
}

#[derive(Clone, Copy)]
enum Subscript<'p> {
    Index(usize),
    Key(&'p str),
}

impl At<'_> {
    fn render(&self) -> String {
        match self {
            At::Root => String::new(),
            At::Key(parent, key) => match parent.render() {
                path if path.is_empty() => (*key).to_owned(),
                path => format!("{path}.{key}"),
            },
            At::Item(parent, Subscript::Index(i)) => format!("{}[{i}]", parent.render()),
            At::Item(parent, Subscript::Key(k)) => format!("{}[{k}]", parent.render()),
        }
    }
}

fn walk_value(name: &str, value: &Value, at: &At<'_>, unknown: &mut Vec<String>) {
    if OPAQUE.contains(&name) || name.contains("apiextensions") {
        return;
    }
    if let (Some(message), Value::Object(_)) = (schema::message(name), value) {
        walk(message, value, at, unknown);
    }
}

fn walk(message: &'static Message, object: &Value, parent: &At<'_>, unknown: &mut Vec<String>) {
    let Some(map) = object.as_object() else {
        return;
    };
    let top = matches!(parent, At::Root);
    for (key, value) in map {
        if top && (key == "apiVersion" || key == "kind") {
            continue;
        }
        let at = At::Key(parent, key);
        let Some(field) = resolve(message, key) else {
            unknown.push(at.render());
            continue;
        };
        match field.kind {
            Kind::Message(name) => match value {
                Value::Array(items) if field.repeated => {
                    for (i, item) in items.iter().enumerate() {
                        walk_value(name, item, &At::Item(&at, Subscript::Index(i)), unknown);
                    }
                }
                other => walk_value(name, other, &at, unknown),
            },
            Kind::Map {
                value: MapValue::Message(name),
                ..
            } => {
                for (k, v) in value.as_object().into_iter().flatten() {
                    walk_value(name, v, &At::Item(&at, Subscript::Key(k)), unknown);
                }
            }
            _ => {}
        }
    }
}

/// The paths of fields `object` has that its kind does not; empty for kinds the table does
/// not know (custom resources are checked against their own schema elsewhere).
pub fn unknown_fields(group: &str, version: &str, kind: &str, object: &Value) -> Vec<String> {
    let Some(message) = schema::kind(group, version, kind).and_then(|k| schema::message(k.message))
    else {
        return Vec::new();
    };
    let mut unknown = Vec::new();
    walk(message, object, &At::Root, &mut unknown);
    unknown
}

fn prune_value(name: &str, value: &mut Value) {
    if OPAQUE.contains(&name) || name.contains("apiextensions") {
        return;
    }
    if let Some(message) = schema::message(name) {
        prune_message(message, value, false);
    }
}

fn prune_message(message: &'static Message, object: &mut Value, top: bool) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    map.retain(|key, _| {
        (top && (key == "apiVersion" || key == "kind")) || resolve(message, key).is_some()
    });
    for (key, value) in map.iter_mut() {
        let Some(field) = resolve(message, key) else {
            continue;
        };
        match field.kind {
            Kind::Message(name) => match value {
                Value::Array(items) if field.repeated => {
                    items.iter_mut().for_each(|item| prune_value(name, item))
                }
                other => prune_value(name, other),
            },
            Kind::Map {
                value: MapValue::Message(name),
                ..
            } => {
                if let Some(entries) = value.as_object_mut() {
                    entries.values_mut().for_each(|v| prune_value(name, v));
                }
            }
            _ => {}
        }
    }
}

/// Drops the fields `object` has that its kind does not, as upstream's typed decoding of
/// built-in kinds does (after warning or refusing, per `fieldValidation`).
pub fn prune_unknown(group: &str, version: &str, kind: &str, object: &mut Value) {
    if let Some(message) =
        schema::kind(group, version, kind).and_then(|k| schema::message(k.message))
    {
        prune_message(message, object, true);
    }
}

/// The fields of a merge or strategic merge patch its kind does not have (patch directives,
/// the `$`-keys, are not fields).
pub fn unknown_patch_fields(group: &str, version: &str, kind: &str, patch: &Value) -> Vec<String> {
    fn strip(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter(|(k, _)| !k.starts_with('$'))
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    unknown_fields(group, version, kind, &strip(patch))
}

/// Upstream's message for strict decoding failures.
pub fn strict_message(unknown: &[String]) -> String {
    strict_message_with(unknown, &[])
}

/// The problems one by one, as upstream words them (`Warning` headers carry each).
pub fn problems(unknown: &[String], duplicates: &[String]) -> Vec<String> {
    unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .chain(
            duplicates
                .iter()
                .map(|f| format!("duplicate field \"{f}\"")),
        )
        .collect()
}

/// Upstream's message for strict decoding failures of both kinds.
pub fn strict_message_with(unknown: &[String], duplicates: &[String]) -> String {
    format!(
        "strict decoding error: {}",
        problems(unknown, duplicates).join(", ")
    )
}

/// The paths of keys a JSON document repeats within one object (`spec.replicas` twice). A
/// JSON decoder keeps the last silently; strict validation reports them. A body that is not
/// JSON has none (decoding it fails elsewhere).
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    use crate::json_paths::Key;
    use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use std::borrow::Cow;
    use std::cell::RefCell;
    use std::collections::HashSet;

    struct Walk<'a> {
        at: At<'a>,
        found: &'a RefCell<Vec<String>>,
    }

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen: HashSet<Cow<'de, str>> = HashSet::new();
            while let Some(Key(key)) = map.next_key()? {
                let child = Walk {
                    at: At::Key(&self.at, &key),
                    found: self.found,
                };
                if seen.contains(&key) {
                    self.found.borrow_mut().push(child.at.render());
                }
                map.next_value_seed(child)?;
                seen.insert(key);
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while seq
                .next_element_seed(Walk {
                    at: At::Item(&self.at, Subscript::Index(i)),
                    found: self.found,
                })?
                .is_some()
            {
                i += 1;
            }
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }

    let found = RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    if (Walk {
        at: At::Root,
        found: &found,
    })
    .deserialize(&mut deserializer)
    .is_err()
    {
        return Vec::new();
    }
    found.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_unknown_fields_with_upstream_paths() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}, "bogus": 1},
            "spec": {
                "containers": [{"name": "c", "image": "x", "arg": ["y"], "resources": {"limits": {"cpu": "1"}}}],
                "volumes": [{"name": "v", "configMap": {"name": "cm", "items": [{"key": "k", "path": "p"}]}, "emptyDire": {}}],
            },
        });
        assert_eq!(
            unknown_fields("", "v1", "Pod", &pod),
            [
                "metadata.bogus",
                "spec.containers[0].arg",
                "spec.volumes[0].emptyDire"
            ]
        );
    }

    #[test]
    fn known_objects_have_none() {
        let deploy = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
                    "name": "web", "image": "nginx",
                    "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}],
                    "livenessProbe": {"httpGet": {"port": "http", "path": "/"}, "periodSeconds": 5},
                }]}},
            },
            "status": {"replicas": 1},
        });
        assert!(
            unknown_fields("apps", "v1", "Deployment", &deploy).is_empty(),
            "{:?}",
            unknown_fields("apps", "v1", "Deployment", &deploy)
        );
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}, "binaryData": {"x": "AA=="}});
        assert!(unknown_fields("", "v1", "ConfigMap", &cm).is_empty());
        assert!(unknown_fields("example.com", "v1", "Widget", &json!({"any": 1})).is_empty());
    }

    #[test]
    fn pruning_drops_exactly_the_unknown_fields() {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "bogus": 1, "annotations": {"any.key/x": "y"}},
            "spec": {"containers": [{"name": "c", "image": "x", "arg": ["y"], "resources": {"limits": {"cpu": "1"}}}]},
        });
        prune_unknown("", "v1", "Pod", &mut pod);
        assert_eq!(
            pod,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "annotations": {"any.key/x": "y"}},
                "spec": {"containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "1"}}}]},
            })
        );
    }

    #[test]
    fn duplicate_keys_are_found_with_their_paths() {
        let body = br#"{"kind":"Deployment","spec":{"replicas":1,"replicas":2,"template":{"spec":{"containers":[{"name":"a","name":"b"}]}}},"kind":"X"}"#;
        assert_eq!(
            duplicate_fields(body),
            [
                "spec.replicas",
                "spec.template.spec.containers[0].name",
                "kind"
            ]
        );
        assert!(
            duplicate_fields(br#"{"a":{"b":1},"c":{"b":1}}"#).is_empty(),
            "the same key in two objects is fine"
        );
        assert!(duplicate_fields(b"{not json").is_empty());
        assert_eq!(
            strict_message_with(&["x".into()], &["spec.replicas".into()]),
            "strict decoding error: unknown field \"x\", duplicate field \"spec.replicas\""
        );
    }

    #[test]
    fn patches_skip_directives() {
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "a", "imagee": "x"}]}});
        assert_eq!(
            unknown_patch_fields("", "v1", "Pod", &patch),
            ["spec.containers[0].imagee"]
        );
        assert_eq!(
            strict_message(&["a.b".into()]),
            "strict decoding error: unknown field \"a.b\""
        );
        assert_eq!(FieldValidation::parse(None), Ok(FieldValidation::Warn));
        assert!(FieldValidation::parse(Some("Loose")).is_err());
    }
}
