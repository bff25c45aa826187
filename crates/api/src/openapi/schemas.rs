//! The component schemas: k8s-openapi's schemas of the served kinds (upstream's descriptions,
//! types and required fields) reshaped as upstream serves them. Added here: the patch and list
//! markers of every field (`x-kubernetes-patch-strategy`, `-patch-merge-key`, `-list-type`,
//! `-list-map-keys`, `-map-type`) from the protobuf [`schema`](crate::schema), the
//! `x-kubernetes-group-version-kind` of every kind, the list kinds (k8s-openapi has one generic
//! `List<T>`), and upstream's shapes of `IntOrString` and `Quantity`.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::Dialect;
use super::kinds::{self, KIND_TYPES};
use crate::registry;
use crate::schema::{self, Field, Granularity, ListType, Strategy};

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// Every schema the documents may refer to, by name, in `dialect`'s shape.
pub(super) fn definitions(dialect: Dialect) -> Map<String, Value> {
    let settings = match dialect {
        // OpenAPI 3.0: no `$schema`, and a reference with a description becomes
        // `allOf: [{$ref}]` (schemars' `RemoveRefSiblings`; `ref_siblings_to_all_of` again below,
        // after markers are added).
        Dialect::V3 => SchemaSettings::openapi3().with(|s| s.meta_schema = None),
        // Upstream's v2 document keeps a reference's description beside the `$ref`.
        Dialect::V2 => SchemaSettings::draft07().with(|s| {
            s.meta_schema = None;
            s.transforms.clear();
        }),
    };
    let mut generator = settings.into_generator();
    for kind in KIND_TYPES {
        (kind.generate)(&mut generator);
    }
    kinds::generate_meta(&mut generator);
    let mut definitions = generator.take_definitions(true);

    for kind in KIND_TYPES {
        if let (Some(name), Some(list_kind)) = (kind.list_schema_name(), kind.list_kind) {
            let item = (kind.schema_name)();
            definitions.insert(name, list_schema(dialect, list_kind, &item));
        }
    }
    reshape_special_types(dialect, &mut definitions);
    let group_version_kinds = group_version_kinds();
    for (name, definition) in definitions.iter_mut() {
        add_markers(name, definition);
        drop_required_metadata(definition);
        if let Some(gvks) = group_version_kinds.get(name.as_str()) {
            let gvks = gvks.iter().map(|(g, v, k)| gvk(g, v, k)).collect();
            definition["x-kubernetes-group-version-kind"] = Value::Array(gvks);
        }
        if dialect == Dialect::V3 {
            ref_siblings_to_all_of(definition);
        }
    }
    definitions
}

/// `{"group", "kind", "version"}`, as both schemas and operations write a kind.
pub(super) fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

/// A list kind's schema, as upstream's `PodList` and the like.
fn list_schema(dialect: Dialect, list_kind: &str, item: &str) -> Value {
    let kind = list_kind.strip_suffix("List").unwrap_or(list_kind);
    json!({
        "description": format!("{list_kind} is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string",
            },
            "items": {
                "description": format!("List of {kind} objects."),
                "type": "array",
                "items": dialect.schema_ref(item),
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string",
            },
            "metadata": {
                "$ref": dialect.ref_to(LIST_META),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "required": ["items"],
    })
}

/// k8s-openapi describes `IntOrString` and `Quantity` with `x-kubernetes-int-or-string`, the
/// marker of custom resources' schemas; upstream's documents give them types.
fn reshape_special_types(dialect: Dialect, definitions: &mut Map<String, Value>) {
    let (int_or_string, quantity) = match dialect {
        Dialect::V3 => (
            json!({
                "format": "int-or-string",
                "oneOf": [{"type": "integer"}, {"type": "string"}],
            }),
            json!({"oneOf": [{"type": "string"}, {"type": "number"}]}),
        ),
        Dialect::V2 => (
            json!({"format": "int-or-string", "type": "string"}),
            json!({"type": "string"}),
        ),
    };
    for (name, mut shape) in [(INT_OR_STRING, int_or_string), (QUANTITY, quantity)] {
        if let Some(definition) = definitions.get_mut(name) {
            if let Some(description) = definition.get("description") {
                shape["description"] = description.clone();
            }
            *definition = shape;
        }
    }
}

/// The protobuf message of schema `name`: `io.k8s.api.core.v1.Pod` is
/// `k8s.io.api.core.v1.Pod`, `io.k8s.apiextensions-apiserver.…` is
/// `k8s.io.apiextensions_apiserver.…`.
pub(super) fn proto_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix("io.k8s.")?;
    Some(format!("k8s.io.{}", rest.replace('-', "_")))
}

/// Every JSON field of `message`, those of inlined messages included.
pub(super) fn json_fields(
    message: &'static schema::Message,
    out: &mut BTreeMap<&'static str, &'static Field>,
) {
    for field in message.fields {
        if field.inline {
            if let schema::Kind::Message(inlined) = field.kind
                && let Some(inlined) = schema::message(inlined)
            {
                json_fields(inlined, out);
            }
        } else {
            out.insert(field.json, field);
        }
    }
}

/// Puts the markers of schema `name`'s message and fields on the schema and its properties.
fn add_markers(name: &str, definition: &mut Value) {
    let Some(message) = proto_name(name).and_then(|proto| schema::message(&proto)) else {
        return;
    };
    let Some(object) = definition.as_object_mut() else {
        return;
    };
    if let Some(granularity) = granularity(message.struct_type) {
        object.insert("x-kubernetes-map-type".into(), granularity.into());
    }
    let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    let mut fields = BTreeMap::new();
    json_fields(message, &mut fields);
    for (json, property) in properties.iter_mut() {
        let (Some(field), Some(property)) = (fields.get(json.as_str()), property.as_object_mut())
        else {
            continue;
        };
        let patch = field.patch;
        let strategy = match patch.strategy {
            Strategy::Default => None,
            Strategy::Merge => Some("merge"),
            Strategy::Replace => Some("replace"),
            Strategy::RetainKeys => Some("retainKeys"),
            Strategy::MergeRetainKeys => Some("merge,retainKeys"),
        };
        if let Some(strategy) = strategy {
            property.insert("x-kubernetes-patch-strategy".into(), strategy.into());
        }
        if !patch.merge_key.is_empty() {
            property.insert(
                "x-kubernetes-patch-merge-key".into(),
                patch.merge_key.into(),
            );
        }
        let list_type = match patch.list_type {
            ListType::Unspecified => None,
            ListType::Atomic => Some("atomic"),
            ListType::Set => Some("set"),
            ListType::Map => Some("map"),
        };
        if let Some(list_type) = list_type {
            property.insert("x-kubernetes-list-type".into(), list_type.into());
        }
        if !patch.list_map_keys.is_empty() {
            property.insert(
                "x-kubernetes-list-map-keys".into(),
                patch.list_map_keys.into(),
            );
        }
        // Upstream writes both `+mapType` and a field's `+structType` as the map type.
        if let Some(granularity) = granularity(patch.map_type).or(granularity(patch.struct_type)) {
            property.insert("x-kubernetes-map-type".into(), granularity.into());
        }
    }
}

fn granularity(granularity: Granularity) -> Option<&'static str> {
    match granularity {
        Granularity::Unspecified => None,
        Granularity::Atomic => Some("atomic"),
        Granularity::Granular => Some("granular"),
    }
}

/// k8s-openapi requires `metadata` of every kind (its field is not an `Option`); upstream never
/// does, and `kubectl explain` would print it as required.
fn drop_required_metadata(definition: &mut Value) {
    let metadata_ref = definition
        .pointer("/properties/metadata")
        .map(|metadata| {
            let mut refs = Vec::new();
            collect_ref_names(metadata, &mut refs);
            refs.iter().any(|r| r == OBJECT_META || r == LIST_META)
        })
        .unwrap_or(false);
    if !metadata_ref {
        return;
    }
    let Some(object) = definition.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(required)) = object.get_mut("required") {
        required.retain(|r| r != "metadata");
        if required.is_empty() {
            object.remove("required");
        }
    }
}

/// The group-version-kinds of each kind's schema, by schema name. `DeleteOptions` and
/// `WatchEvent` are kinds of every group-version, as upstream lists them.
fn group_version_kinds() -> BTreeMap<String, Vec<(&'static str, &'static str, &'static str)>> {
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for kind in KIND_TYPES {
        let entry = out.entry((kind.schema_name)().into_owned()).or_default();
        entry.push((kind.group, kind.version, kind.kind));
        if let (Some(name), Some(list_kind)) = (kind.list_schema_name(), kind.list_kind) {
            out.entry(name)
                .or_default()
                .push((kind.group, kind.version, list_kind));
        }
    }
    for (schema_name, kind) in [
        (kinds::DELETE_OPTIONS, "DeleteOptions"),
        (kinds::WATCH_EVENT, "WatchEvent"),
    ] {
        let entry = out.entry(schema_name.to_owned()).or_default();
        for (group, version) in served_group_versions() {
            entry.push((group, version, kind));
        }
    }
    out
}

/// Every served group-version, core first, sorted within named groups as upstream sorts its
/// `DeleteOptions` kinds.
pub(super) fn served_group_versions() -> Vec<(&'static str, &'static str)> {
    let mut named: Vec<(&str, &str)> = registry::GROUPS
        .iter()
        .flat_map(|(group, versions)| versions.iter().map(move |v| (*group, *v)))
        .collect();
    named.sort_unstable();
    let mut out = vec![("", "v1")];
    out.extend(named);
    out
}

/// The names of the schemas `value` refers to, in order, repeats included.
pub(super) fn collect_ref_names(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                if key == "$ref"
                    && let Some(reference) = child.as_str()
                    && let Some((_, name)) = reference.rsplit_once('/')
                {
                    out.push(name.to_owned());
                } else {
                    collect_ref_names(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_ref_names(item, out)),
        _ => {}
    }
}

/// OpenAPI 3.0 ignores the siblings of `$ref`; upstream wraps a reference that has any
/// (a description, a marker) in `allOf`, which `kubectl explain` and apply's patch markers read.
fn ref_siblings_to_all_of(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for child in object.values_mut() {
                ref_siblings_to_all_of(child);
            }
            if object.len() > 1
                && let Some(reference) = object.remove("$ref")
            {
                object.insert("allOf".into(), json!([{"$ref": reference}]));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(ref_siblings_to_all_of),
        _ => {}
    }
}

/// The schemas of `definitions` that `roots` refers to, directly or through other schemas.
pub(super) fn reachable(roots: &Value, definitions: &Map<String, Value>) -> Map<String, Value> {
    let mut pending = Vec::new();
    collect_ref_names(roots, &mut pending);
    let mut out = Map::new();
    while let Some(name) = pending.pop() {
        if out.contains_key(&name) {
            continue;
        }
        if let Some(definition) = definitions.get(&name) {
            collect_ref_names(definition, &mut pending);
            out.insert(name, definition.clone());
        }
    }
    out
}
