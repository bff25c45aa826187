//! What the schema says about a JSON key: the type of its value and its patch markers. Go's
//! embedded structs (`inline` fields) are looked through, as upstream's struct lookup does, so
//! `hostPath` is found in a `Volume` through its inlined `VolumeSource`.

use crate::schema::{self, Field, Kind, MapValue, Message, Strategy};

use crate::schema::OPAQUE;

/// The type of a JSON value, as far as the schema knows it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ty {
    /// An object holding this message's fields.
    Message(&'static Message),
    /// A protobuf map (a Go map): any key, every value of one type.
    Map(MapValue),
    /// A value replaced whole: see [`OPAQUE`].
    Opaque,
    /// A scalar, or a field the schema does not have: maps merge, lists are replaced.
    Unknown,
}

/// A key's value type and patch markers.
#[derive(Debug, Clone, Copy)]
pub(super) struct FieldMeta {
    /// The value's type; for a list, its elements' type.
    pub ty: Ty,
    pub strategy: Strategy,
    /// `+patchMergeKey`; empty when unset.
    pub merge_key: &'static str,
    /// The key's JSON name, for error messages; empty when the schema does not know it.
    pub json: &'static str,
}

impl FieldMeta {
    const UNKNOWN: FieldMeta = FieldMeta {
        ty: Ty::Unknown,
        strategy: Strategy::Default,
        merge_key: "",
        json: "",
    };

    /// A value of type `ty` without markers, such as a Go map's value.
    fn of_type(ty: Ty) -> FieldMeta {
        FieldMeta {
            ty,
            strategy: replaced_if_opaque(ty, Strategy::Default),
            ..FieldMeta::UNKNOWN
        }
    }

    fn of_field(field: &'static Field) -> FieldMeta {
        let ty = match field.kind {
            Kind::Scalar(_) => Ty::Unknown,
            Kind::Message(name) => Ty::message(name),
            Kind::Map { value, .. } => Ty::Map(value),
        };
        let strategy = if field.repeated {
            field.patch.strategy
        } else {
            replaced_if_opaque(ty, field.patch.strategy)
        };
        FieldMeta {
            ty,
            strategy,
            merge_key: field.patch.merge_key,
            json: field.json,
        }
    }
}

fn replaced_if_opaque(ty: Ty, strategy: Strategy) -> Strategy {
    match ty {
        Ty::Opaque => Strategy::Replace,
        _ => strategy,
    }
}

impl Ty {
    /// The message named `name` (a full proto name).
    pub(super) fn message(name: &str) -> Ty {
        if OPAQUE.contains(&name) {
            return Ty::Opaque;
        }
        schema::message(name).map_or(Ty::Unknown, Ty::Message)
    }

    /// What the schema says about `key` in a value of this type.
    pub(super) fn field(self, key: &str) -> FieldMeta {
        match self {
            Ty::Message(message) => {
                find_field(message, key).map_or(FieldMeta::UNKNOWN, FieldMeta::of_field)
            }
            Ty::Map(MapValue::Message(name)) => FieldMeta::of_type(Ty::message(name)),
            Ty::Map(MapValue::Scalar(_)) | Ty::Opaque | Ty::Unknown => FieldMeta::UNKNOWN,
        }
    }

    /// Whether `key` is a field of this type, so a key such as a JSON schema's `$ref` is not
    /// mistaken for a patch directive.
    pub(super) fn has_field(self, key: &str) -> bool {
        match self {
            Ty::Message(message) => find_field(message, key).is_some(),
            Ty::Map(_) | Ty::Opaque | Ty::Unknown => false,
        }
    }
}

fn find_field(message: &'static Message, json: &str) -> Option<&'static Field> {
    message.resolve_json(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(message: &str, path: &[&str]) -> FieldMeta {
        let mut ty = Ty::message(message);
        let mut meta = FieldMeta::UNKNOWN;
        for key in path {
            meta = ty.field(key);
            ty = meta.ty;
        }
        meta
    }

    #[test]
    fn keys_resolve_through_the_schema() {
        const POD: &str = "k8s.io.api.core.v1.Pod";
        const DEPLOYMENT: &str = "k8s.io.api.apps.v1.Deployment";
        // (message, path, strategy, merge key, JSON name)
        let cases: &[(&str, &[&str], Strategy, &str, &str)] = &[
            (
                POD,
                &["spec", "containers"],
                Strategy::Merge,
                "name",
                "containers",
            ),
            (
                POD,
                &["spec", "containers", "ports"],
                Strategy::Merge,
                "containerPort",
                "ports",
            ),
            (
                POD,
                &["spec", "volumes"],
                Strategy::MergeRetainKeys,
                "name",
                "volumes",
            ),
            // Inlined: `VolumeSource` in `Volume`, `EphemeralContainerCommon` in
            // `EphemeralContainer`.
            (
                POD,
                &["spec", "volumes", "hostPath", "path"],
                Strategy::Default,
                "",
                "path",
            ),
            (
                POD,
                &["spec", "ephemeralContainers", "env"],
                Strategy::Merge,
                "name",
                "env",
            ),
            (
                POD,
                &["metadata", "finalizers"],
                Strategy::Merge,
                "",
                "finalizers",
            ),
            // A Go map's values, and an opaque message in one.
            (
                POD,
                &["metadata", "labels", "app"],
                Strategy::Default,
                "",
                "",
            ),
            (
                POD,
                &["spec", "containers", "resources", "limits", "cpu"],
                Strategy::Replace,
                "",
                "",
            ),
            (
                DEPLOYMENT,
                &["spec", "strategy"],
                Strategy::RetainKeys,
                "",
                "strategy",
            ),
            (
                DEPLOYMENT,
                &["spec", "strategy", "rollingUpdate", "maxSurge"],
                Strategy::Replace,
                "",
                "maxSurge",
            ),
            (DEPLOYMENT, &["spec", "nope"], Strategy::Default, "", ""),
            (
                DEPLOYMENT,
                &["spec", "nope", "deeper"],
                Strategy::Default,
                "",
                "",
            ),
        ];
        for (message, path, strategy, merge_key, json) in cases {
            let got = meta(message, path);
            assert_eq!(
                (got.strategy, got.merge_key, got.json),
                (*strategy, *merge_key, *json),
                "{message} {path:?}"
            );
        }
    }

    #[test]
    fn directive_like_field_names_are_fields() {
        let props =
            Ty::message("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps");
        assert!(props.has_field("$ref"));
        assert!(!props.has_field("$patch"));
        assert!(!Ty::Unknown.has_field("$ref"));
    }
}
