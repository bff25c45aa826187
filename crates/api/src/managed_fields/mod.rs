//! `metadata.managedFields`: which manager set which fields, as upstream's field manager keeps
//! it for every create, update and patch (the `Update` operation; server-side apply is later).
//!
//! A write is compared with the object it replaces (for a create: the kind's empty object, as
//! Go writes it — see [`zero`]). The fields it added or changed become its manager's, and are
//! taken from every other manager; the fields it removed are taken from all. A manager is
//! known by its name, the operation, the API version it wrote at and the subresource; its
//! entry's `time` moves only when the write gave it fields. As upstream:
//!
//! - the manager is the request's `fieldManager`, else its User-Agent up to the first `/`;
//! - `apiVersion`, `kind` and the metadata the server owns (name, namespace, uid,
//!   resourceVersion, generation, creationTimestamp, managedFields) are never anyone's;
//! - a write to the main resource does not own `status` when the kind has a status
//!   subresource, and a write to `status` owns nothing else;
//! - a request may replace the entries with valid ones of its own, or clear them with `[]`;
//!   invalid ones are ignored, and an object without entries gets none from an update;
//! - more than ten `Update` managers: the oldest are merged into `ancient-changes`.

mod compare;
mod set;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::validation::{ErrorKind, FieldError};

pub use compare::Comparison;
use compare::Type;
pub use set::FieldSet;

/// What upstream caps the `Update` managers at.
const MAX_UPDATE_MANAGERS: usize = 10;
/// The manager the oldest `Update` managers are merged into.
const ANCIENT_CHANGES: &str = "ancient-changes";
/// The longest `fieldManager` accepted.
pub const MAX_MANAGER_LENGTH: usize = 128;

/// One write, as its entry names it.
#[derive(Debug, Clone)]
pub struct Operation<'a> {
    /// The manager, already chosen (see [`manager`]).
    pub manager: &'a str,
    /// The group/version the request was served at, e.g. `apps/v1` or `v1`.
    pub api_version: &'a str,
    /// `""`, `status` or `scale`.
    pub subresource: &'a str,
    /// Now, as RFC 3339 in seconds (`2025-01-02T03:04:05Z`).
    pub time: &'a str,
}

/// The manager of a write: the `fieldManager` it named, else the first part of its
/// User-Agent, printable characters only and at most 128 of them; `unknown` if that leaves
/// nothing.
pub fn manager(field_manager: Option<&str>, user_agent: &str) -> String {
    if let Some(named) = field_manager.filter(|m| !m.is_empty()) {
        return named.to_owned();
    }
    let prefix = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if out.len() >= MAX_MANAGER_LENGTH {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        "unknown".to_owned()
    } else {
        out
    }
}

/// Checks a request's `fieldManager` as upstream does: at most 128 bytes, every character
/// printable.
pub fn check_manager(field_manager: &str) -> Result<(), FieldError> {
    if field_manager.len() > MAX_MANAGER_LENGTH {
        return Err(FieldError::new(
            ErrorKind::TooLong,
            "fieldManager",
            String::new(),
            &format!("may not be more than {MAX_MANAGER_LENGTH} bytes"),
        ));
    }
    if let Some((at, c)) = field_manager.char_indices().find(|(_, c)| c.is_control()) {
        return Err(FieldError::invalid(
            "fieldManager",
            field_manager,
            &format!("invalid character U+{:04X} (at position {at})", c as u32),
        ));
    }
    Ok(())
}

/// Which part of the object a write may own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole object.
    Whole,
    /// All but `status`: a write to a kind with a status subresource.
    NotStatus,
    /// Only `status`: a write to the status subresource.
    OnlyStatus,
}

/// Records the write that turns `old` (`None` for a create) into `new` in `new`'s
/// `metadata.managedFields`. Both objects are in the version the request was served at, of
/// the kind whose protobuf message is `message`. `at_version` gives an object at another
/// group/version of the same kind, for managers that wrote at one (`None` when there is no
/// such version: their entries are then kept as they are).
///
/// When the objects cannot be walked (a keyed list item without its key, say), the entries
/// are left as they were before the write, as upstream does.
pub fn record(
    old: Option<&Value>,
    new: &mut Value,
    message: &str,
    operation: &Operation,
    scope: Scope,
    at_version: &dyn Fn(&Value, &str) -> Option<Value>,
) {
    let live = old
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .map(|entries| decode(entries).unwrap_or_default())
        .unwrap_or_default();
    let requested = new.pointer("/metadata/managedFields").cloned();
    let managed = match requested {
        _ if !operation.subresource.is_empty() => live.clone(),
        Some(entries) if is_reset(&entries) => Managed::new(),
        Some(entries) => match decode(&entries) {
            Ok(managed) if !managed.is_empty() => managed,
            _ => live.clone(),
        },
        None => live.clone(),
    };
    set_entries(new, None);
    // An object that has no entries gets none from an update (only from a create).
    if managed.is_empty() && old.is_some() {
        return;
    }
    match updated(old, new, message, operation, scope, at_version, managed) {
        Ok(managed) => set_entries(new, encode(&managed)),
        Err(_) => set_entries(new, encode(&live)),
    }
}

/// Whether a request's entries ask for none: `[]`, or a single empty entry.
fn is_reset(entries: &Value) -> bool {
    match entries.as_array().map(Vec::as_slice) {
        Some([]) => true,
        Some([only]) => only.as_object().is_some_and(Map::is_empty),
        _ => false,
    }
}

/// Puts `entries` in `object`'s `metadata.managedFields`, or removes that field for `None`.
pub fn set_entries(object: &mut Value, entries: Option<Value>) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    match entries {
        Some(entries) => {
            metadata.insert("managedFields".to_owned(), entries);
        }
        None => {
            metadata.remove("managedFields");
        }
    }
}

/// A manager's identity: what its entry says but its fields and time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Identity {
    manager: String,
    operation: String,
    /// Empty for `Apply` entries, whose version is not part of who they are.
    api_version: String,
    subresource: String,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    fields: FieldSet,
    api_version: String,
    time: Option<String>,
}

type Managed = BTreeMap<Identity, Entry>;

fn decode(entries: &Value) -> Result<Managed, String> {
    let entries = entries.as_array().ok_or("managedFields is not a list")?;
    let mut managed = Managed::new();
    for (i, entry) in entries.iter().enumerate() {
        let text = |name: &str| entry.get(name).and_then(Value::as_str).unwrap_or_default();
        let operation = text("operation");
        if operation != "Apply" && operation != "Update" {
            return Err(format!(
                "operation must be `Apply` or `Update` in entry {i}"
            ));
        }
        let api_version = text("apiVersion");
        if api_version.is_empty() {
            return Err("apiVersion must not be empty".to_owned());
        }
        match text("fieldsType") {
            "FieldsV1" => {}
            "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
            other => {
                return Err(format!(
                    "invalid fieldsType {other:?} in managed fields entry {i}"
                ));
            }
        }
        let fields = match entry.get("fieldsV1") {
            Some(fields) => FieldSet::from_fields_v1(fields)?,
            None => FieldSet::new(),
        };
        let identity = Identity {
            manager: text("manager").to_owned(),
            operation: operation.to_owned(),
            api_version: if operation == "Apply" {
                String::new()
            } else {
                api_version.to_owned()
            },
            subresource: text("subresource").to_owned(),
        };
        let time = entry.get("time").and_then(Value::as_str).map(str::to_owned);
        managed.insert(
            identity,
            Entry {
                fields,
                api_version: api_version.to_owned(),
                time,
            },
        );
    }
    Ok(managed)
}

/// The entries as upstream lists them: by operation, then time (in seconds), manager, version
/// and subresource. `None` when there are none.
fn encode(managed: &Managed) -> Option<Value> {
    if managed.is_empty() {
        return None;
    }
    let mut entries: Vec<(&Identity, &Entry)> = managed.iter().collect();
    entries.sort_by(|(a, x), (b, y)| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| seconds(x).cmp(&seconds(y)))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| x.api_version.cmp(&y.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let encoded = entries
        .into_iter()
        .map(|(identity, entry)| {
            let mut out = Map::new();
            out.insert("manager".into(), json!(identity.manager));
            out.insert("operation".into(), json!(identity.operation));
            out.insert("apiVersion".into(), json!(entry.api_version));
            if let Some(time) = &entry.time {
                out.insert("time".into(), json!(time));
            }
            out.insert("fieldsType".into(), json!("FieldsV1"));
            out.insert("fieldsV1".into(), entry.fields.to_fields_v1());
            if !identity.subresource.is_empty() {
                out.insert("subresource".into(), json!(identity.subresource));
            }
            Value::Object(out)
        })
        .collect();
    Some(Value::Array(encoded))
}

fn seconds(entry: &Entry) -> i128 {
    entry
        .time
        .as_deref()
        .and_then(crate::table::parse_rfc3339)
        .map_or(0, |nanos| nanos.div_euclid(1_000_000_000))
}

/// The paths no manager owns.
fn server_owned() -> FieldSet {
    FieldSet::of([
        &["f:apiVersion"][..],
        &["f:kind"],
        &["f:metadata"],
        &["f:metadata", "f:name"],
        &["f:metadata", "f:namespace"],
        &["f:metadata", "f:creationTimestamp"],
        &["f:metadata", "f:selfLink"],
        &["f:metadata", "f:uid"],
        &["f:metadata", "f:clusterName"],
        &["f:metadata", "f:generation"],
        &["f:metadata", "f:managedFields"],
        &["f:metadata", "f:resourceVersion"],
    ])
}

/// What a write in `scope` may not own.
fn ignored(scope: Scope, object: &Value) -> FieldSet {
    match scope {
        Scope::Whole => FieldSet::new(),
        Scope::NotStatus => FieldSet::of([&["f:status"][..]]),
        Scope::OnlyStatus => {
            let mut set = FieldSet::new();
            if let Some(fields) = object.as_object() {
                for key in fields.keys().filter(|k| *k != "status") {
                    set.insert([format!("f:{key}")]);
                }
            }
            set
        }
    }
}

/// The comparison of two objects, without what the scope leaves out. The old object's
/// entries show up as removed; no manager owns them, so that takes nothing from anyone.
fn compared(old: &Value, new: &Value, ty: Type, ignore: &FieldSet) -> Result<Comparison, String> {
    let mut comparison = compare::compare(old, new, ty)?;
    comparison.added.subtract(ignore, true);
    comparison.modified.subtract(ignore, true);
    comparison.removed.subtract(ignore, true);
    Ok(comparison)
}

#[allow(clippy::too_many_arguments)]
fn updated(
    old: Option<&Value>,
    new: &Value,
    message: &str,
    operation: &Operation,
    scope: Scope,
    at_version: &dyn Fn(&Value, &str) -> Option<Value>,
    mut managed: Managed,
) -> Result<Managed, String> {
    let ty = Type::of_message(message);
    let empty;
    let old = match old {
        Some(old) => old,
        None => {
            empty = zero(message);
            &empty
        }
    };
    let mut ignore = ignored(scope, new);
    ignore.merge(&ignored(scope, old));
    let comparison = compared(old, new, ty, &ignore)?;
    // Every manager loses what this write changed or removed, each judged at its version.
    let mut other_versions: BTreeMap<String, Option<Comparison>> = BTreeMap::new();
    for entry in managed.values_mut() {
        let theirs = if entry.api_version == operation.api_version {
            &comparison
        } else {
            if !other_versions.contains_key(&entry.api_version) {
                let other = match (
                    at_version(old, &entry.api_version),
                    at_version(new, &entry.api_version),
                ) {
                    (Some(old), Some(new)) => Some(compared(&old, &new, ty, &ignore)?),
                    _ => None,
                };
                other_versions.insert(entry.api_version.clone(), other);
            }
            let Some(Some(theirs)) = other_versions.get(&entry.api_version) else {
                continue;
            };
            theirs
        };
        entry.fields.subtract(&theirs.modified, false);
        entry.fields.subtract(&theirs.added, false);
        entry.fields.subtract(&theirs.removed, false);
    }
    managed.retain(|_, entry| !entry.fields.is_empty());
    // This write's own fields (the comparison already left out what the scope ignores).
    let Comparison {
        mut modified,
        added,
        ..
    } = comparison;
    modified.merge(&added);
    let mut own = modified;
    own.subtract(&server_owned(), false);
    if !own.is_empty() {
        let identity = Identity {
            manager: operation.manager.to_owned(),
            operation: "Update".to_owned(),
            api_version: operation.api_version.to_owned(),
            subresource: operation.subresource.to_owned(),
        };
        if let Some(previous) = managed.get(&identity) {
            own.merge(&previous.fields);
        }
        let fields = own;
        managed.insert(
            identity,
            Entry {
                fields,
                api_version: operation.api_version.to_owned(),
                time: Some(operation.time.to_owned()),
            },
        );
    }
    cap_update_managers(&mut managed);
    Ok(managed)
}

/// Merges the oldest `Update` managers beyond ten into one `ancient-changes` manager per
/// version.
fn cap_update_managers(managed: &mut Managed) {
    let mut updaters: Vec<Identity> = managed
        .keys()
        .filter(|identity| identity.operation == "Update")
        .cloned()
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|a, b| {
        seconds(&managed[a])
            .cmp(&seconds(&managed[b]))
            .then_with(|| a.cmp(b))
    });
    let mut count = updaters.len();
    let mut first_of_version: BTreeMap<String, Identity> = BTreeMap::new();
    for identity in updaters {
        if count <= MAX_UPDATE_MANAGERS {
            break;
        }
        let version = managed[&identity].api_version.clone();
        let bucket = Identity {
            manager: ANCIENT_CHANGES.to_owned(),
            operation: "Update".to_owned(),
            api_version: version.clone(),
            subresource: String::new(),
        };
        let Some(first) = first_of_version.get(&version).cloned() else {
            first_of_version.insert(version, identity);
            continue;
        };
        if !managed.contains_key(&bucket)
            && let Some(moved) = managed.remove(&first)
        {
            managed.insert(bucket.clone(), moved);
        }
        if let Some(entry) = managed.remove(&identity)
            && let Some(merged) = managed.get_mut(&bucket)
        {
            merged.fields = entry.fields.union(&merged.fields);
            merged.time = entry.time;
        }
        count -= 1;
    }
}

/// How deep [`zero`] follows required messages (guards recursive schemas).
const ZERO_DEPTH: usize = 12;

/// The JSON of an empty object of a kind, as Go writes it ([`crate::go_json::empty`]). For a
/// kind whose Go layout is not known: each required field at its zero value (lists and maps as
/// `null`, messages empty), and `metadata`, `spec` and `status`, which the API's types hold by
/// value, present.
pub fn zero(message: &str) -> Value {
    match crate::schema::message(message) {
        Some(found) if found.go_layout => crate::go_json::empty(message),
        _ => zero_at(message, ZERO_DEPTH),
    }
}

fn zero_at(message: &str, depth: usize) -> Value {
    use crate::schema::{Kind, Scalar};
    let Some(found) = crate::schema::message(message) else {
        return Value::Object(Map::new());
    };
    let mut out = Map::new();
    if depth == 0 {
        return Value::Object(out);
    }
    for field in found.fields.iter().filter(|f| !f.inline) {
        let by_value = matches!(field.json, "metadata" | "spec" | "status")
            && matches!(field.kind, Kind::Message(_))
            && !field.repeated;
        if !field.required && !by_value {
            continue;
        }
        let value = match field.kind {
            _ if field.repeated => Value::Null,
            Kind::Map { .. } => Value::Null,
            Kind::Message(name) if crate::schema::OPAQUE.contains(&name) => Value::Null,
            Kind::Message(name) => zero_at(name, depth - 1),
            Kind::Scalar(Scalar::String | Scalar::Bytes) => json!(""),
            Kind::Scalar(Scalar::Bool) => json!(false),
            Kind::Scalar(_) => json!(0),
        };
        out.insert(field.json.to_owned(), value);
    }
    Value::Object(out)
}
