//! The protobuf schema of the built-in API: every message with its fields' tags, protobuf types
//! and JSON names, the upstream patch and list markers of each field, and the message of each
//! kind. The codec between Kubernetes protobuf and JSON and the strategic merge patch read it.
//!
//! The table is static data in `generated.rs`, written by `cargo run -p xtask -- gen-schema`
//! from the sources of `k8s-pb` (tags, protobuf types, markers) and `k8s-openapi` (JSON names,
//! kinds) for Kubernetes 1.33.

#[rustfmt::skip]
mod generated;

/// A protobuf message.
#[derive(Debug)]
pub struct Message {
    /// The full proto name, e.g. `k8s.io.api.core.v1.Pod`.
    pub name: &'static str,
    /// The fields, sorted by tag.
    pub fields: &'static [Field],
    /// `+structType` of the message: whether server-side apply replaces it whole.
    pub struct_type: Granularity,
    /// Whether its fields' [`Field::held`] are known: they are for the messages of the kinds
    /// served, not for the few others (CustomResourceDefinition, APIService).
    pub go_layout: bool,
}

/// A field of a [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub tag: u32,
    /// The name in JSON, e.g. `podIP`; empty when `inline`.
    pub json: &'static str,
    /// The field's message is inlined in the JSON object of the message holding it (Go's
    /// `json:",inline"`): its fields' JSON names are this message's, e.g. `LocalObjectReference`'s
    /// `name` in `ConfigMapKeySelector`.
    pub inline: bool,
    pub kind: Kind,
    /// A list: the field may occur several times on the wire. Never set for maps.
    pub repeated: bool,
    pub patch: Patch,
    /// Required in OpenAPI. Go writes such a field even when it holds its zero value, so it is
    /// part of the JSON of an empty object (a list as `null`).
    pub required: bool,
    /// How upstream's Go type holds the field; meaningful where the message's
    /// [`Message::go_layout`] is known.
    pub held: Held,
}

/// How upstream's Go type holds a field, which decides the JSON Go writes of it (see
/// [`crate::go_json`]) and what a protobuf body's zero value means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// A value, list or map tagged `omitempty`: left out of JSON when zero or empty.
    OmitEmpty,
    /// A pointer tagged `omitempty`: left out when unset; a zero value that is set is kept.
    Pointer,
    /// A pointer without `omitempty`: `null` when unset.
    PointerOrNull,
    /// A value without `omitempty`: written even when zero.
    Zero,
    /// A list, map or bytes without `omitempty`: `null` when unset.
    ListOrNull,
    /// A struct held by value: always written, `{}` when empty (a time as `null`).
    Struct,
}

/// A field's protobuf type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Scalar(Scalar),
    /// A message, by full proto name: see [`message`].
    Message(&'static str),
    Map {
        key: Scalar,
        value: MapValue,
    },
}

/// The protobuf scalar types the API uses. The API has no enums: enumerated values are
/// strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Double,
    Float,
}

/// The value type of a map field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapValue {
    Scalar(Scalar),
    /// A message, by full proto name.
    Message(&'static str),
}

/// A field's upstream markers: `+patchStrategy`, `+patchMergeKey` (strategic merge patch),
/// `+listType`, `+listMapKey`, `+mapType`, `+structType` (server-side apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patch {
    pub strategy: Strategy,
    /// The key of a list merged by [`Strategy::Merge`], e.g. `name`; empty when unset.
    pub merge_key: &'static str,
    pub list_type: ListType,
    /// The keys of a [`ListType::Map`] list.
    pub list_map_keys: &'static [&'static str],
    pub map_type: Granularity,
    pub struct_type: Granularity,
}

/// `+patchStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// No marker: lists are replaced, maps and messages merged.
    Default,
    /// `merge`: lists are merged, by [`Patch::merge_key`] for lists of messages.
    Merge,
    /// `replace`: the value is replaced whole.
    Replace,
    /// `retainKeys`: fields absent from the patch are cleared.
    RetainKeys,
    /// `merge,retainKeys`.
    MergeRetainKeys,
}

impl Strategy {
    /// Whether lists under this strategy are merged rather than replaced.
    pub fn merges(self) -> bool {
        matches!(self, Strategy::Merge | Strategy::MergeRetainKeys)
    }

    /// Whether the patch's keys are the only ones kept.
    pub fn retains_keys(self) -> bool {
        matches!(self, Strategy::RetainKeys | Strategy::MergeRetainKeys)
    }
}

/// `+listType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    Unspecified,
    Atomic,
    Set,
    Map,
}

/// `+mapType` and `+structType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Unspecified,
    Atomic,
    Granular,
}

/// A kind served by the API and the message it is encoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiKind {
    /// `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The full proto name of its message.
    pub message: &'static str,
}

impl Patch {
    /// No markers.
    pub const NONE: Patch = Patch {
        strategy: Strategy::Default,
        merge_key: "",
        list_type: ListType::Unspecified,
        list_map_keys: &[],
        map_type: Granularity::Unspecified,
        struct_type: Granularity::Unspecified,
    };
}

/// The message named `name` (a full proto name such as `k8s.io.api.core.v1.Pod`).
pub fn message(name: &str) -> Option<&'static Message> {
    let index = generated::MESSAGES
        .binary_search_by(|m| m.name.cmp(name))
        .ok()?;
    generated::MESSAGES.get(index)
}

/// Every message, sorted by name.
pub fn messages() -> &'static [Message] {
    generated::MESSAGES
}

/// The kind `kind` of `group` (`""` for the core group) at `version`.
pub fn kind(group: &str, version: &str, kind: &str) -> Option<&'static ApiKind> {
    let index = generated::KINDS
        .binary_search_by(|k| (k.group, k.version, k.kind).cmp(&(group, version, kind)))
        .ok()?;
    generated::KINDS.get(index)
}

/// Every kind, sorted by group, version and kind.
pub fn kinds() -> &'static [ApiKind] {
    generated::KINDS
}

// Messages whose JSON upstream writes by hand, by full proto name.
pub const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
pub const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
pub const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
pub const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
pub const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
pub const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
pub const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";
pub const OBJECT_META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Messages whose JSON is not an object of their fields but a string, a number or raw JSON
/// (Time, Quantity, IntOrString, ...): validation does not look into them and patches replace
/// them whole.
pub const OPAQUE: &[&str] = &[
    TIME,
    MICRO_TIME,
    DURATION,
    FIELDS_V1,
    QUANTITY,
    INT_OR_STRING,
    RAW_EXTENSION,
    // CustomResourceDefinition schemas: raw JSON, or a schema that may also be a list or a bool.
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
];

impl Message {
    /// The field named `json` in this message's JSON object, looking through inlined messages
    /// (Go's embedded structs: `hostPath` is found in a `Volume` through its `VolumeSource`).
    pub fn resolve_json(&self, json: &str) -> Option<&'static Field> {
        self.field_by_json(json).or_else(|| {
            self.fields
                .iter()
                .filter(|f| f.inline)
                .find_map(|f| match f.kind {
                    Kind::Message(name) => message(name).and_then(|m| m.resolve_json(json)),
                    Kind::Scalar(_) | Kind::Map { .. } => None,
                })
        })
    }

    /// The field with protobuf tag `tag`.
    pub fn field_by_tag(&self, tag: u32) -> Option<&'static Field> {
        let index = self.fields.binary_search_by_key(&tag, |f| f.tag).ok()?;
        self.fields.get(index)
    }

    /// The field named `json` in JSON.
    pub fn field_by_json(&self, json: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| !f.inline && f.json == json)
    }

    // The builders below keep `generated.rs` to one short line per field.

    const fn new(name: &'static str, fields: &'static [Field]) -> Message {
        Message {
            name,
            fields,
            struct_type: Granularity::Unspecified,
            go_layout: false,
        }
    }

    const fn go_layout(mut self) -> Message {
        self.go_layout = true;
        self
    }

    const fn struct_type(mut self, granularity: Granularity) -> Message {
        self.struct_type = granularity;
        self
    }
}

impl Field {
    const fn new(tag: u32, json: &'static str, kind: Kind) -> Field {
        Field {
            tag,
            json,
            inline: false,
            kind,
            repeated: false,
            patch: Patch::NONE,
            required: false,
            held: Held::OmitEmpty,
        }
    }

    const fn held(mut self, held: Held) -> Field {
        self.held = held;
        self
    }

    const fn required(mut self) -> Field {
        self.required = true;
        self
    }

    const fn inline(mut self) -> Field {
        self.inline = true;
        self
    }

    const fn repeated(mut self) -> Field {
        self.repeated = true;
        self
    }

    const fn strategy(mut self, strategy: Strategy) -> Field {
        self.patch.strategy = strategy;
        self
    }

    const fn merge_key(mut self, key: &'static str) -> Field {
        self.patch.merge_key = key;
        self
    }

    const fn list_type(mut self, list_type: ListType) -> Field {
        self.patch.list_type = list_type;
        self
    }

    const fn list_map_keys(mut self, keys: &'static [&'static str]) -> Field {
        self.patch.list_map_keys = keys;
        self
    }

    const fn map_type(mut self, granularity: Granularity) -> Field {
        self.patch.map_type = granularity;
        self
    }

    const fn struct_type(mut self, granularity: Granularity) -> Field {
        self.patch.struct_type = granularity;
        self
    }
}

impl ApiKind {
    const fn new(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        message: &'static str,
    ) -> ApiKind {
        ApiKind {
            group,
            version,
            kind,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full proto name of `short`, written `<package>.<Message>` with a short package.
    fn full(short: &str) -> String {
        let (package, name) = short
            .split_once('.')
            .expect("a short name is package.Message");
        let package = match package {
            "core" => "k8s.io.api.core.v1",
            "apps" => "k8s.io.api.apps.v1",
            "networking" => "k8s.io.api.networking.v1",
            "rbac" => "k8s.io.api.rbac.v1",
            "autoscaling" => "k8s.io.api.autoscaling.v1",
            "meta" => "k8s.io.apimachinery.pkg.apis.meta.v1",
            "intstr" => "k8s.io.apimachinery.pkg.util.intstr",
            "resource" => "k8s.io.apimachinery.pkg.api.resource",
            "runtime" => "k8s.io.apimachinery.pkg.runtime",
            "apiextensions" => "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1",
            "apiregistration" => "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1",
            other => panic!("no short name for package {other}"),
        };
        format!("{package}.{name}")
    }

    fn message_named(short: &str) -> &'static Message {
        message(&full(short)).unwrap_or_else(|| panic!("no message {short}"))
    }

    fn field(short: &str, json: &str) -> &'static Field {
        let m = message_named(short);
        m.field_by_json(json)
            .unwrap_or_else(|| panic!("{short} has no field {json}"))
    }

    /// A field's expected type, with messages by short name.
    #[derive(Debug)]
    enum Want {
        S(Scalar),
        Msg(&'static str),
        /// A map from strings.
        Map(Scalar),
    }

    impl Want {
        fn is(&self, kind: Kind) -> bool {
            match (self, kind) {
                (Want::S(want), Kind::Scalar(got)) => *want == got,
                (Want::Msg(want), Kind::Message(got)) => full(want) == got,
                (Want::Map(want), Kind::Map { key, value }) => {
                    key == Scalar::String && value == MapValue::Scalar(*want)
                }
                _ => false,
            }
        }
    }

    #[test]
    fn fields_have_upstream_tags_json_names_and_types() {
        use Scalar::{Bytes, Int32, Int64, String};
        use Want::{Map, Msg, S};
        // (message, JSON name, tag, type, repeated)
        let cases: &[(&str, &str, u32, Want, bool)] = &[
            ("core.Pod", "metadata", 1, Msg("meta.ObjectMeta"), false),
            ("core.Pod", "spec", 2, Msg("core.PodSpec"), false),
            ("core.Pod", "status", 3, Msg("core.PodStatus"), false),
            ("core.PodStatus", "podIP", 6, S(String), false),
            ("core.PodStatus", "podIPs", 12, Msg("core.PodIP"), true),
            ("core.ServiceSpec", "clusterIP", 3, S(String), false),
            ("core.PodSecurityContext", "fsGroup", 5, S(Int64), false),
            ("core.ConfigMap", "data", 2, Map(String), false),
            ("core.ConfigMap", "binaryData", 3, Map(Bytes), false),
            ("core.Secret", "data", 2, Map(Bytes), false),
            ("core.Secret", "stringData", 4, Map(String), false),
            ("meta.ObjectMeta", "finalizers", 14, S(String), true),
            (
                "meta.ObjectMeta",
                "creationTimestamp",
                8,
                Msg("meta.Time"),
                false,
            ),
            (
                "apps.RollingUpdateDeployment",
                "maxSurge",
                2,
                Msg("intstr.IntOrString"),
                false,
            ),
            ("intstr.IntOrString", "type", 1, S(Int64), false),
            ("intstr.IntOrString", "intVal", 2, S(Int32), false),
            ("intstr.IntOrString", "strVal", 3, S(String), false),
            ("resource.Quantity", "string", 1, S(String), false),
            ("meta.Time", "seconds", 1, S(Int64), false),
            ("meta.Time", "nanos", 2, S(Int32), false),
            ("meta.MicroTime", "seconds", 1, S(Int64), false),
            ("meta.MicroTime", "nanos", 2, S(Int32), false),
            ("runtime.RawExtension", "raw", 1, S(Bytes), false),
            // JSON names from k8s-openapi, where the proto field name alone would mislead.
            ("apiextensions.JSONSchemaProps", "$ref", 3, S(String), false),
        ];
        for (short, json, tag, want, repeated) in cases {
            let f = field(short, json);
            assert_eq!((f.tag, f.repeated), (*tag, *repeated), "{short}.{json}");
            assert!(
                want.is(f.kind),
                "{short}.{json} is {:?}, not {want:?}",
                f.kind
            );
            let by_tag = message_named(short).field_by_tag(*tag);
            assert_eq!(by_tag.map(|f| f.json), Some(*json), "{short} tag {tag}");
        }
    }

    #[test]
    fn messages_have_exactly_their_fields() {
        let cases: &[(&str, &[&str])] = &[
            ("core.Pod", &["metadata", "spec", "status"]),
            ("intstr.IntOrString", &["type", "intVal", "strVal"]),
            ("resource.Quantity", &["string"]),
            ("meta.Time", &["seconds", "nanos"]),
            ("meta.MicroTime", &["seconds", "nanos"]),
            ("runtime.RawExtension", &["raw"]),
            (
                "runtime.Unknown",
                &["typeMeta", "raw", "contentEncoding", "contentType"],
            ),
        ];
        for (short, fields) in cases {
            let names: Vec<&str> = message_named(short).fields.iter().map(|f| f.json).collect();
            assert_eq!(&names, fields, "{short}");
        }
    }

    /// A field's markers other than `+mapType` and `+structType`.
    const fn markers(
        strategy: Strategy,
        merge_key: &'static str,
        list_type: ListType,
        list_map_keys: &'static [&'static str],
    ) -> Patch {
        Patch {
            strategy,
            merge_key,
            list_type,
            list_map_keys,
            ..Patch::NONE
        }
    }

    #[test]
    fn fields_carry_their_patch_markers() {
        use ListType::{Atomic, Map, Set, Unspecified};
        use Strategy::{Default, Merge, MergeRetainKeys, RetainKeys};
        let container_ports = markers(Merge, "containerPort", Map, &["containerPort", "protocol"]);
        let cases: &[(&str, &str, Patch)] = &[
            ("core.Container", "ports", container_ports),
            (
                "core.Container",
                "env",
                markers(Merge, "name", Map, &["name"]),
            ),
            (
                "core.Container",
                "volumeMounts",
                markers(Merge, "mountPath", Map, &["mountPath"]),
            ),
            ("core.Container", "args", markers(Default, "", Atomic, &[])),
            ("core.Container", "image", Patch::NONE),
            (
                "core.ServiceSpec",
                "ports",
                markers(Merge, "port", Map, &["port", "protocol"]),
            ),
            (
                "core.PodSpec",
                "volumes",
                markers(MergeRetainKeys, "name", Map, &["name"]),
            ),
            (
                "core.PodSpec",
                "containers",
                markers(Merge, "name", Map, &["name"]),
            ),
            (
                "meta.ObjectMeta",
                "ownerReferences",
                markers(Merge, "uid", Map, &["uid"]),
            ),
            (
                "meta.ObjectMeta",
                "finalizers",
                markers(Merge, "", Set, &[]),
            ),
            (
                "apps.DeploymentSpec",
                "strategy",
                markers(RetainKeys, "", Unspecified, &[]),
            ),
        ];
        for (short, json, patch) in cases {
            assert_eq!(field(short, json).patch, *patch, "{short}.{json}");
        }
        let selector = field("core.ServiceSpec", "selector").patch;
        assert_eq!(selector.map_type, Granularity::Atomic);
        let key_selector = message_named("core.ConfigMapKeySelector");
        assert_eq!(key_selector.struct_type, Granularity::Atomic);
    }

    #[test]
    fn inlined_messages_have_no_json_name() {
        // (message, tag, inlined message, a JSON field of the inlined message)
        let cases: &[(&str, u32, &str, &str)] = &[
            (
                "core.ConfigMapKeySelector",
                1,
                "core.LocalObjectReference",
                "name",
            ),
            ("core.Volume", 2, "core.VolumeSource", "configMap"),
            (
                "core.EphemeralContainer",
                1,
                "core.EphemeralContainerCommon",
                "image",
            ),
            ("core.Probe", 1, "core.ProbeHandler", "httpGet"),
        ];
        for (short, tag, inlined, json) in cases {
            let m = message_named(short);
            let f = m
                .field_by_tag(*tag)
                .unwrap_or_else(|| panic!("{short} has no tag {tag}"));
            assert!(f.inline && f.json.is_empty(), "{short} tag {tag}");
            assert!(Want::Msg(inlined).is(f.kind), "{short} tag {tag}");
            assert!(
                m.field_by_json(json).is_none(),
                "{short}.{json} is {inlined}'s"
            );
            assert!(
                message_named(inlined).field_by_json(json).is_some(),
                "{inlined}.{json}"
            );
        }
    }

    #[test]
    fn kinds_name_their_messages() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("apps", "v1", "Deployment", Some("apps.Deployment")),
            ("", "v1", "ConfigMap", Some("core.ConfigMap")),
            ("", "v1", "PodList", Some("core.PodList")),
            ("", "v1", "Status", Some("meta.Status")),
            ("autoscaling", "v1", "Scale", Some("autoscaling.Scale")),
            (
                "meta.k8s.io",
                "v1",
                "DeleteOptions",
                Some("meta.DeleteOptions"),
            ),
            (
                "networking.k8s.io",
                "v1",
                "IngressList",
                Some("networking.IngressList"),
            ),
            (
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRole",
                Some("rbac.ClusterRole"),
            ),
            (
                "apiregistration.k8s.io",
                "v1",
                "APIService",
                Some("apiregistration.APIService"),
            ),
            (
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                Some("apiextensions.CustomResourceDefinition"),
            ),
            // Not served by 1.33: removed long ago, or only from a later release.
            ("apps", "v1beta1", "Deployment", None),
            ("networking.k8s.io", "v1beta1", "Ingress", None),
            ("storage.k8s.io", "v1", "VolumeAttributesClass", None),
            // Not kinds.
            ("", "v1", "PodSpec", None),
            ("", "v1", "PodTemplateSpec", None),
        ];
        for (group, version, kind_name, want) in cases {
            let got = kind(group, version, kind_name).map(|k| k.message);
            assert_eq!(
                got,
                want.map(full).as_deref(),
                "{group}/{version} {kind_name}"
            );
        }
    }

    #[test]
    fn fields_of_later_releases_are_left_out() {
        // Added in 1.34, after the served 1.33.
        assert!(
            message_named("core.PodSpec")
                .field_by_json("hostnameOverride")
                .is_none()
        );
        assert!(
            message_named("core.Container")
                .field_by_json("restartPolicyRules")
                .is_none()
        );
        assert!(message(&full("core.ContainerRestartRule")).is_none());
    }

    #[test]
    fn table_is_sorted_and_closed() {
        let sorted = messages().windows(2).all(|w| w[0].name < w[1].name);
        assert!(sorted, "messages sorted and unique");
        for m in messages() {
            let sorted = m.fields.windows(2).all(|w| w[0].tag < w[1].tag);
            assert!(sorted, "{} tags sorted and unique", m.name);
            for f in m.fields {
                let what = format!("{} tag {}", m.name, f.tag);
                if let Kind::Message(name)
                | Kind::Map {
                    value: MapValue::Message(name),
                    ..
                } = f.kind
                {
                    assert!(message(name).is_some(), "{what} refers to missing {name}");
                }
                assert_eq!(f.inline, f.json.is_empty(), "{what}");
                assert!(!(f.inline && f.repeated), "{what}");
                assert!(
                    !(f.repeated && matches!(f.kind, Kind::Map { .. })),
                    "{what}"
                );
                let p = f.patch;
                assert!(p.merge_key.is_empty() || p.strategy.merges(), "{what}");
                assert!(
                    p.list_map_keys.is_empty() || p.list_type == ListType::Map,
                    "{what}"
                );
            }
            let mut json: Vec<&str> = m.fields.iter().map(|f| f.json).collect();
            json.retain(|j| !j.is_empty());
            json.sort_unstable();
            assert!(
                json.windows(2).all(|w| w[0] < w[1]),
                "{} JSON names unique",
                m.name
            );
        }
        let key = |k: &ApiKind| (k.group, k.version, k.kind);
        assert!(
            kinds().windows(2).all(|w| key(&w[0]) < key(&w[1])),
            "kinds sorted and unique"
        );
        for k in kinds() {
            assert!(message(k.message).is_some(), "{} has no message", k.message);
        }
    }

    #[test]
    fn strategies_tell_merging_and_retaining() {
        let cases = [
            (Strategy::Default, false, false),
            (Strategy::Merge, true, false),
            (Strategy::Replace, false, false),
            (Strategy::RetainKeys, false, true),
            (Strategy::MergeRetainKeys, true, true),
        ];
        for (strategy, merges, retains_keys) in cases {
            let got = (strategy.merges(), strategy.retains_keys());
            assert_eq!(got, (merges, retains_keys), "{strategy:?}");
        }
    }
}
