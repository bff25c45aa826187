//! Joins what `k8s_pb` and `k8s_openapi` read into the table `emit` writes, and reports every
//! name that had to be derived rather than found, and everything left out.
//!
//! k8s-pb 0.9.0 has the protos of a later Kubernetes than the one served (1.33), so the
//! served release is what k8s-openapi's module for it describes:
//!
//! - A package is included when k8s-openapi's served module has the same module path.
//! - A message is kept when the served release describes it, or it belongs to apimachinery
//!   (`TypeMeta`, `Unknown`, the options), or it is the `...List` of a served kind, or a kept
//!   message holds it. Messages that only older or later releases serve are left out.
//! - A field that k8s-openapi has only in a later release is left out.
//! - A message is named by the k8s-openapi definition of the same name up to case (prost
//!   renames `PodIP` to `PodIp`), else by its doc comment's first word when that matches, else
//!   by its Rust name.
//! - A field's JSON name is that of the k8s-openapi field whose Rust or JSON name matches
//!   (`pod_ip` is `podIP`, `ref` is `$ref`), else the lowerCamelCase of its Rust name. A
//!   message field with no match whose message's fields all match is inlined (Go's
//!   `json:",inline"`: `LocalObjectReference` in `ConfigMapKeySelector`).
//! - The kinds are k8s-openapi's `Resource` impls, the `...List` messages of those kinds, and
//!   the `meta.k8s.io/v1` kinds in `META_KINDS`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{Context, Result, bail};

use crate::k8s_openapi::{Definition, OpenApi};
use crate::k8s_pb::{Module, PbField, PbMapValue, PbMessage, PbScalar, PbType, TypeRef};

/// The kinds of `meta.k8s.io/v1` without a `Resource` impl in k8s-openapi, as upstream's
/// `apimachinery/pkg/apis/meta/v1/register.go` registers them (the options types,
/// `AddMetaToScheme`, and the watch event of every group version).
const META_KINDS: &[&str] = &[
    "CreateOptions",
    "DeleteOptions",
    "GetOptions",
    "ListOptions",
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
    "PatchOptions",
    "TableOptions",
    "UpdateOptions",
    "WatchEvent",
];
const META_MODULE: &[&str] = &["apimachinery", "pkg", "apis", "meta", "v1"];
const META_GROUP: &str = "meta.k8s.io";

/// Deeper than any inlining upstream (`NamedRuleWithOperations` inlines `RuleWithOperations`,
/// which inlines `Rule`); bounds the search on recursive messages.
const MAX_INLINE_DEPTH: usize = 4;

/// The generated table.
pub struct Schema {
    /// Sorted by name.
    pub messages: Vec<Message>,
    /// Sorted by group, version and kind.
    pub kinds: Vec<ApiKind>,
}

pub struct Message {
    /// The full proto name, e.g. `k8s.io.api.core.v1.Pod`.
    pub name: String,
    /// `+structType` of the message.
    pub struct_type: Option<String>,
    /// Sorted by tag.
    pub fields: Vec<Field>,
    /// Whether its fields' [`Field::held`] are known (from `xtask/go-layout.txt`).
    pub go_layout: bool,
}

pub struct Field {
    pub tag: u32,
    /// Empty when `inline`.
    pub json: String,
    /// The message's fields are inlined in the JSON object holding this field.
    pub inline: bool,
    pub kind: Kind,
    pub repeated: bool,
    pub patch: Patch,
    /// Required in OpenAPI: Go writes it even when it holds its zero value.
    pub required: bool,
    /// How upstream's Go type holds it, when known.
    pub held: Option<Held>,
}

/// How upstream's Go type holds a field; see `xtask/go-layout.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    OmitEmpty,
    Pointer,
    PointerOrNull,
    Zero,
    ListOrNull,
    Struct,
}

pub enum Kind {
    Scalar(PbScalar),
    Message(String),
    Map { key: PbScalar, value: MapValue },
}

pub enum MapValue {
    Scalar(PbScalar),
    Message(String),
}

/// A field's markers, as written upstream.
#[derive(Default)]
pub struct Patch {
    pub strategy: Option<String>,
    pub merge_key: Option<String>,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub map_type: Option<String>,
    pub struct_type: Option<String>,
}

pub struct ApiKind {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub message: String,
}

/// Builds the table from k8s-pb's messages, k8s-openapi's served release and its later ones.
pub fn build(pb: &[PbMessage], served: &OpenApi, later: &[OpenApi]) -> Result<(Schema, String)> {
    let mut report = Report::default();
    let included: BTreeMap<TypeRef, &PbMessage> = pb
        .iter()
        .filter(|m| served.modules.contains_key(&m.module))
        .map(|m| (type_ref(m), m))
        .collect();
    report.list(
        "k8s-pb packages left out (not in the served release)",
        pb.iter()
            .filter(|m| !served.modules.contains_key(&m.module))
            .map(|m| package(&m.module))
            .collect::<BTreeSet<_>>(),
    );

    let named: BTreeMap<TypeRef, (String, NameSource)> = included
        .iter()
        .map(|(r, m)| (r.clone(), proto_name(m, served, later)))
        .collect();
    let names: BTreeMap<TypeRef, String> = named
        .iter()
        .map(|(r, (name, _))| (r.clone(), name.clone()))
        .collect();
    let sources = json_sources(&included, served, later)?;

    let (fields, later_fields) = decide_fields(&included, &sources)?;
    let kept = reachable(&included, &fields, served);
    report.list(
        "k8s-pb messages left out (the served release does not serve them)",
        names
            .iter()
            .filter(|(r, _)| !kept.contains(*r))
            .map(|(_, name)| name.clone()),
    );
    report.list(
        "fields left out (k8s-openapi has them only in a later release)",
        later_fields
            .into_iter()
            .filter(|(r, _)| kept.contains(*r))
            .map(|(r, field)| format!("{}.{field}", names[r])),
    );

    let messages = messages(&kept, &included, &names, &fields, &mut report)?;
    report.list(
        "k8s-openapi fields without a k8s-pb field",
        openapi_only_fields(&kept, &names, &fields, &sources, served),
    );
    for (source, title) in [
        (
            NameSource::Doc,
            "messages named by their doc comment's first word, not their Rust name",
        ),
        (
            NameSource::Rust,
            "messages named by their Rust name, unconfirmed by k8s-openapi or docs",
        ),
    ] {
        report.list(
            title,
            kept.iter()
                .filter(|r| named[*r].1 == source)
                .map(|r| names[r].clone()),
        );
    }

    let kinds = kinds(&kept, &included, &names, served, &mut report)?;
    Ok((Schema { messages, kinds }, report.text))
}

/// Each message's fields with their JSON names decided, without those of later releases,
/// which come second as `(message, Rust field name)`.
fn decide_fields<'a>(
    included: &'a BTreeMap<TypeRef, &PbMessage>,
    sources: &BTreeMap<TypeRef, JsonSource>,
) -> Result<(FieldsByMessage<'a>, Vec<(&'a TypeRef, String)>)> {
    let mut fields = BTreeMap::new();
    let mut later_fields = Vec::new();
    for (r, message) in included {
        let source = sources.get(r);
        let mut kept = Vec::new();
        for field in &message.fields {
            let json = match source {
                None => Json::Camel,
                Some(source) => match source.lookup(field)? {
                    Match::Json(json, required) => Json::Name(json, required),
                    Match::Later => {
                        later_fields.push((r, field.rust_name.clone()));
                        continue;
                    }
                    Match::None if inlines(source, field, included, MAX_INLINE_DEPTH)? => {
                        Json::Inline
                    }
                    Match::None => Json::Fallback,
                },
            };
            kept.push((field, json));
        }
        fields.insert(r, kept);
    }
    Ok((fields, later_fields))
}

/// The kept messages, sorted by name, with their fields sorted by tag.
fn messages(
    kept: &BTreeSet<TypeRef>,
    included: &BTreeMap<TypeRef, &PbMessage>,
    names: &BTreeMap<TypeRef, String>,
    fields: &FieldsByMessage,
    report: &mut Report,
) -> Result<Vec<Message>> {
    let mut messages = Vec::new();
    let mut fallbacks = Vec::new();
    let mut inlined = Vec::new();
    let mut undescribed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in kept {
        let name = &names[r];
        let mut out = Vec::new();
        for (field, json) in &fields[r] {
            let (json, inline, required) = match json {
                Json::Name(json, required) => (json.clone(), false, *required),
                Json::Inline => {
                    inlined.push(format!("{name} field {} ({})", field.tag, field.rust_name));
                    (String::new(), true, false)
                }
                Json::Fallback => {
                    let json = lower_camel_case(&field.rust_name);
                    fallbacks.push(format!("{name}.{json}"));
                    (json, false, false)
                }
                Json::Camel => {
                    let json = lower_camel_case(&field.rust_name);
                    undescribed.entry(name).or_default().push(json.clone());
                    (json, false, false)
                }
            };
            let what = || format!("{name} field {}", field.tag);
            let kind = kind(&field.ty, names).with_context(what)?;
            let patch = patch(&field.docs).with_context(what)?;
            out.push(Field {
                tag: field.tag,
                json,
                inline,
                kind,
                repeated: field.repeated,
                patch,
                required,
                held: None,
            });
        }
        out.sort_by_key(|f| f.tag);
        if let Some(pair) = out.windows(2).find(|w| w[0].tag == w[1].tag) {
            bail!("{name}: tag {} used twice", pair[0].tag);
        }
        let struct_type = granularity(&markers(&included[r].docs), "structType")?;
        messages.push(Message {
            name: name.clone(),
            struct_type,
            fields: out,
            go_layout: false,
        });
    }
    messages.sort_by(|a, b| a.name.cmp(&b.name));
    report.list("fields inlined in their message's JSON object", inlined);
    report.list(
        "fields with a lowerCamelCase JSON name (no k8s-openapi field matches)",
        fallbacks,
    );
    report.list(
        "messages k8s-openapi does not describe as an object: lowerCamelCase JSON names",
        undescribed
            .into_iter()
            .map(|(name, fields)| format!("{name}: {}", fields.join(", "))),
    );
    Ok(messages)
}

fn type_ref(message: &PbMessage) -> TypeRef {
    TypeRef {
        module: message.module.clone(),
        rust_name: message.rust_name.clone(),
    }
}

/// `k8s.io.api.core.v1` for `api::core::v1`.
fn package(module: &Module) -> String {
    format!("k8s.io.{}", module.join("."))
}

/// Where a message's proto name comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NameSource {
    OpenApi,
    /// The doc comment's first word, which differs from the Rust name in case.
    Doc,
    /// The Rust name, which the doc comment's first word confirms.
    Confirmed,
    /// The Rust name, unconfirmed.
    Rust,
}

/// The message's full proto name. prost dropped the case of acronyms (`PodIp`); k8s-openapi's
/// definitions and Go doc comments, which open with the type's name, keep it.
fn proto_name(message: &PbMessage, served: &OpenApi, later: &[OpenApi]) -> (String, NameSource) {
    let definition = std::iter::once(served)
        .chain(later)
        .find_map(|openapi| openapi.find(&message.module, &message.rust_name));
    let first_word = message
        .docs
        .first()
        .and_then(|line| line.split_whitespace().next());
    let (name, source) = match (definition, first_word) {
        (Some(definition), _) => (definition.name.as_str(), NameSource::OpenApi),
        (None, Some(word)) if word == message.rust_name => (word, NameSource::Confirmed),
        (None, Some(word)) if word.eq_ignore_ascii_case(&message.rust_name) => {
            (word, NameSource::Doc)
        }
        (None, _) => (message.rust_name.as_str(), NameSource::Rust),
    };
    (format!("{}.{name}", package(&message.module)), source)
}

/// Where a message's fields take their JSON names from: its k8s-openapi object in the served
/// release, or the object it is inlined in; with the same objects in later releases, to tell
/// the fields added there.
#[derive(Clone)]
struct JsonSource<'a> {
    served: &'a Definition,
    later: Vec<&'a Definition>,
}

enum Match {
    /// The JSON name, and whether the field is required.
    Json(String, bool),
    /// Only in a later release.
    Later,
    None,
}

/// Each message's fields, with their JSON names decided.
type FieldsByMessage<'a> = BTreeMap<&'a TypeRef, Vec<(&'a PbField, Json)>>;

/// A kept field's JSON name, decided.
enum Json {
    /// The JSON name, and whether the field is required.
    Name(String, bool),
    Inline,
    /// The message has a k8s-openapi object, without this field.
    Fallback,
    /// The message has no k8s-openapi object.
    Camel,
}

impl JsonSource<'_> {
    fn lookup(&self, field: &PbField) -> Result<Match> {
        if let Some((json, rust)) = json_name(self.served, field)? {
            let required = self.served.required.contains(&rust);
            return Ok(Match::Json(json, required));
        }
        for definition in &self.later {
            if json_name(definition, field)?.is_some() {
                return Ok(Match::Later);
            }
        }
        Ok(Match::None)
    }
}

/// Each message's JSON source: its own k8s-openapi object, else the object of a message that
/// inlines it (`VolumeSource` takes `Volume`'s).
fn json_sources<'a>(
    included: &BTreeMap<TypeRef, &PbMessage>,
    served: &'a OpenApi,
    later: &'a [OpenApi],
) -> Result<BTreeMap<TypeRef, JsonSource<'a>>> {
    let mut sources = BTreeMap::new();
    for r in included.keys() {
        if let Some(definition) = served.find(&r.module, &r.rust_name).filter(|d| d.object) {
            let later = later
                .iter()
                .filter_map(|openapi| openapi.find(&r.module, &r.rust_name))
                .filter(|d| d.object)
                .collect();
            sources.insert(
                r.clone(),
                JsonSource {
                    served: definition,
                    later,
                },
            );
        }
    }
    let mut queue: Vec<(TypeRef, JsonSource)> = sources
        .iter()
        .map(|(r, s)| (r.clone(), s.clone()))
        .collect();
    while let Some((r, source)) = queue.pop() {
        for field in &included[&r].fields {
            let PbType::Message(inner) = &field.ty else {
                continue;
            };
            if matches!(source.lookup(field)?, Match::None)
                && inlines(&source, field, included, MAX_INLINE_DEPTH)?
                && !sources.contains_key(inner)
            {
                sources.insert(inner.clone(), source.clone());
                queue.push((inner.clone(), source.clone()));
            }
        }
    }
    Ok(sources)
}

/// Whether `field` is a message inlined in the JSON object `source` describes: a single
/// message whose fields all find their JSON names there, directly or by inlining in turn.
fn inlines(
    source: &JsonSource,
    field: &PbField,
    included: &BTreeMap<TypeRef, &PbMessage>,
    depth: usize,
) -> Result<bool> {
    let PbType::Message(inner) = &field.ty else {
        return Ok(false);
    };
    let Some(message) = included.get(inner) else {
        return Ok(false);
    };
    if field.repeated || depth == 0 {
        return Ok(false);
    }
    let mut any = false;
    for field in &message.fields {
        match source.lookup(field)? {
            Match::Json(..) => any = true,
            Match::Later => {}
            Match::None if inlines(source, field, included, depth - 1)? => any = true,
            Match::None => return Ok(false),
        }
    }
    Ok(any)
}

/// The messages the served release has: those k8s-openapi describes, apimachinery's, the
/// lists of served kinds, and every message one of those holds.
fn reachable(
    included: &BTreeMap<TypeRef, &PbMessage>,
    fields: &FieldsByMessage,
    served: &OpenApi,
) -> BTreeSet<TypeRef> {
    let is_kind = |r: &TypeRef| {
        served
            .find(&r.module, &r.rust_name)
            .is_some_and(|d| d.resource.is_some())
    };
    let mut queue: Vec<&TypeRef> = included
        .iter()
        .filter(|(r, m)| {
            served.find(&r.module, &r.rust_name).is_some()
                || r.module.first().is_some_and(|m| m == "apimachinery")
                || list_item(m).is_some_and(&is_kind)
        })
        .map(|(r, _)| r)
        .collect();
    let mut kept = BTreeSet::new();
    while let Some(r) = queue.pop() {
        if !kept.insert(r.clone()) {
            continue;
        }
        for (field, _) in fields.get(r).into_iter().flatten() {
            if let PbType::Message(inner)
            | PbType::Map {
                value: PbMapValue::Message(inner),
                ..
            } = &field.ty
                && let Some((inner, _)) = included.get_key_value(inner)
            {
                queue.push(inner);
            }
        }
    }
    kept
}

/// The item message of a `...List` message.
fn list_item(message: &PbMessage) -> Option<&TypeRef> {
    if !message.rust_name.ends_with("List") {
        return None;
    }
    let items = message
        .fields
        .iter()
        .find(|f| f.rust_name == "items" && f.repeated)?;
    match &items.ty {
        PbType::Message(r) => Some(r),
        _ => None,
    }
}

/// The JSON name of `field` in `definition`, with its k8s-openapi Rust name: the one whose
/// Rust name or JSON name is the field's name, ignoring case, underscores and punctuation
/// (`pod_ip`, `type_` and `$ref`).
fn json_name(definition: &Definition, field: &PbField) -> Result<Option<(String, String)>> {
    let wanted = squash(&field.rust_name);
    let matches: BTreeSet<(&String, &String)> = definition
        .json_names
        .iter()
        .filter(|(rust, json)| squash(rust) == wanted || squash(json) == wanted)
        .map(|(rust, json)| (json, rust))
        .collect();
    match matches.len() {
        0 => Ok(None),
        1 => Ok(matches
            .into_iter()
            .next()
            .map(|(json, rust)| (json.clone(), rust.clone()))),
        _ => bail!(
            "{}.{}: several JSON names match: {matches:?}",
            definition.name,
            field.rust_name
        ),
    }
}

fn squash(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `pod_ip` as `podIp`: the fallback when k8s-openapi has no JSON name.
fn lower_camel_case(rust_name: &str) -> String {
    let mut out = String::new();
    for (i, part) in rust_name.split('_').filter(|p| !p.is_empty()).enumerate() {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            if i == 0 {
                out.push(first);
            } else {
                out.push(first.to_ascii_uppercase());
            }
            out.extend(chars);
        }
    }
    out
}

/// The k8s-openapi fields of kept messages that no k8s-pb field took, through inlined
/// messages too. `apiVersion` and `kind` travel in the protobuf envelope, not the message.
fn openapi_only_fields(
    kept: &BTreeSet<TypeRef>,
    names: &BTreeMap<TypeRef, String>,
    fields: &FieldsByMessage,
    sources: &BTreeMap<TypeRef, JsonSource>,
    served: &OpenApi,
) -> Vec<String> {
    let mut out = Vec::new();
    for r in kept {
        let Some(definition) = served.find(&r.module, &r.rust_name).filter(|d| d.object) else {
            continue;
        };
        // The JSON names taken by this message and by those it inlines.
        let mut taken = BTreeSet::new();
        let mut queue = vec![r];
        while let Some(r) = queue.pop() {
            for (field, json) in fields.get(r).into_iter().flatten() {
                match (json, &field.ty) {
                    (Json::Name(json, _), _) => {
                        taken.insert(json.as_str());
                    }
                    (Json::Inline, PbType::Message(inner)) if sources.contains_key(inner) => {
                        queue.extend(sources.get_key_value(inner).map(|(k, _)| k));
                    }
                    _ => {}
                }
            }
        }
        for json in definition.json_names.values() {
            if !taken.contains(json.as_str()) && !matches!(json.as_str(), "apiVersion" | "kind") {
                out.push(format!("{}.{json}", names[r]));
            }
        }
    }
    out
}

fn kind(ty: &PbType, names: &BTreeMap<TypeRef, String>) -> Result<Kind> {
    let name = |r: &TypeRef| {
        names.get(r).cloned().with_context(|| {
            format!(
                "refers to {}::{}, which is not in the table",
                r.module.join("::"),
                r.rust_name
            )
        })
    };
    Ok(match ty {
        PbType::Scalar(s) => Kind::Scalar(*s),
        PbType::Message(r) => Kind::Message(name(r)?),
        PbType::Map { key, value } => Kind::Map {
            key: *key,
            value: match value {
                PbMapValue::Scalar(s) => MapValue::Scalar(*s),
                PbMapValue::Message(r) => MapValue::Message(name(r)?),
            },
        },
    })
}

/// The `+key=value` markers of a doc comment.
fn markers(docs: &[String]) -> Vec<(&str, &str)> {
    docs.iter()
        .filter_map(|line| line.strip_prefix('+'))
        .map(|marker| marker.split_once('=').unwrap_or((marker, "")))
        .map(|(key, value)| (key.trim(), value.trim()))
        .collect()
}

/// The one value of marker `key`, checked against `allowed` (anything when empty).
fn single(markers: &[(&str, &str)], key: &str, allowed: &[&str]) -> Result<Option<String>> {
    let values: BTreeSet<&str> = markers
        .iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .collect();
    let mut values = values.into_iter();
    let value = values.next();
    if let Some(other) = values.next() {
        bail!("+{key} is both {value:?} and {other:?}");
    }
    match value {
        Some(value) if !allowed.is_empty() && !allowed.contains(&value) => {
            bail!("unknown +{key}={value}")
        }
        value => Ok(value.map(str::to_owned)),
    }
}

fn granularity(markers: &[(&str, &str)], key: &str) -> Result<Option<String>> {
    single(markers, key, &["atomic", "granular"])
}

fn patch(docs: &[String]) -> Result<Patch> {
    let markers = markers(docs);
    let strategies = ["merge", "replace", "retainKeys", "merge,retainKeys"];
    let patch = Patch {
        strategy: single(&markers, "patchStrategy", &strategies)?,
        merge_key: single(&markers, "patchMergeKey", &[])?,
        list_type: single(&markers, "listType", &["atomic", "set", "map"])?,
        list_map_keys: markers
            .iter()
            .filter(|(k, _)| *k == "listMapKey")
            .map(|(_, v)| (*v).to_owned())
            .collect(),
        map_type: granularity(&markers, "mapType")?,
        struct_type: granularity(&markers, "structType")?,
    };
    if !patch.list_map_keys.is_empty() && patch.list_type.as_deref() != Some("map") {
        bail!("+listMapKey without +listType=map");
    }
    Ok(patch)
}

/// The kinds: k8s-openapi's resources, their lists, and `META_KINDS`.
fn kinds(
    kept: &BTreeSet<TypeRef>,
    included: &BTreeMap<TypeRef, &PbMessage>,
    names: &BTreeMap<TypeRef, String>,
    served: &OpenApi,
    report: &mut Report,
) -> Result<Vec<ApiKind>> {
    let mut kinds: BTreeMap<(String, String, String), String> = BTreeMap::new();
    let mut missing = Vec::new();
    for (module, definitions) in &served.modules {
        for definition in definitions {
            let Some((group, version, kind)) = &definition.resource else {
                continue;
            };
            let message = kept.iter().find(|r| {
                &r.module == module && r.rust_name.eq_ignore_ascii_case(&definition.name)
            });
            match message {
                Some(r) => {
                    kinds.insert(
                        (group.clone(), version.clone(), kind.clone()),
                        names[r].clone(),
                    );
                }
                None => missing.push(format!("{group}/{version} {kind}")),
            }
        }
    }
    report.list("served kinds without a k8s-pb message", missing);

    let kind_of = |r: &TypeRef| {
        let (group, version, _) = served.find(&r.module, &r.rust_name)?.resource.as_ref()?;
        Some((group.clone(), version.clone()))
    };
    for r in kept {
        let name = &names[r];
        let kind = name.rsplit('.').next().unwrap_or_default().to_owned();
        if r.module == META_MODULE {
            if META_KINDS.contains(&kind.as_str()) {
                kinds.insert((META_GROUP.to_owned(), "v1".to_owned(), kind), name.clone());
            }
        } else if let Some((group, version)) = list_item(included[r]).and_then(kind_of) {
            kinds.insert((group, version, kind), name.clone());
        }
    }
    for kind in META_KINDS {
        if !kinds.keys().any(|(g, _, k)| g == META_GROUP && k == kind) {
            bail!("{META_GROUP} kind {kind} has no message");
        }
    }
    Ok(kinds
        .into_iter()
        .map(|((group, version, kind), message)| ApiKind {
            group,
            version,
            kind,
            message,
        })
        .collect())
}

/// What the generator derived rather than found, and what it left out.
#[derive(Default)]
struct Report {
    text: String,
}

impl Report {
    fn list(&mut self, title: &str, items: impl IntoIterator<Item = String>) {
        let items: Vec<String> = items.into_iter().collect();
        let _ = writeln!(self.text, "{title}: {}", items.len());
        for item in items {
            let _ = writeln!(self.text, "  {item}");
        }
    }
}
