//! Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds, with
//! the semantics of upstream's server side (`strategicpatch.StrategicMergeMapPatch`): what
//! `kubectl apply`, `edit`, `set image`, `rollout restart` and `patch` send.
//!
//! Objects merge key by key and `null` deletes a key. A list merges when its field has the
//! `merge` strategy: lists of objects element by element on the field's merge key, lists of
//! scalars as sets; other lists are replaced. The directives: `$patch` (`replace` or `delete`
//! an object; in a list element, `delete` that element or `replace` the list),
//! `$setElementOrder/<list>`, `$retainKeys`, `$deleteFromPrimitiveList/<list>`. Strategies and
//! merge keys come from [`crate::schema`].
//!
//! Upstream then decodes the result into the typed object, which drops what its types lack:
//! `null`s and leftover directive keys. The result here is cleared of them too. Fields the
//! schema does not know are kept, under the default rules (objects merge, lists are replaced).

mod fields;
mod lists;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::schema::{self, Strategy};
use fields::Ty;
use lists::{
    Shape, bad_arg_type, check_order, element_shape, merge_list, normalize_order, partition,
};

const DIRECTIVE: &str = "$patch";
const DELETE: &str = "delete";
const REPLACE: &str = "replace";
const MERGE: &str = "merge";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Why a strategic merge patch could not be applied, worded as upstream words it (Go's `%v`
/// for the values quoted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmpError {
    #[error("json: cannot unmarshal {found} into Go value of type map[string]interface {{}}")]
    PatchNotAnObject { found: &'static str },
    #[error("the object to patch is not a JSON object")]
    OriginalNotAnObject,
    #[error("no message {0} in the schema")]
    UnknownMessage(String),
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType { directive: String, map: String },
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey { map: String, key: String },
    #[error("cannot merge lists without merge key for {field}")]
    NoMergeKeyDeclared { field: String },
    #[error("expected a {expected}, but received a {found}")]
    BadArgType {
        expected: &'static str,
        found: &'static str,
    },
    #[error("value for key {index} is not a map")]
    NotAMap { index: usize },
    #[error("lists of lists are not supported")]
    ListOfLists,
    #[error("list element types are not identical: {lists}")]
    MixedElementTypes { lists: String },
    #[error("no elements in any of the given slices")]
    NoElements,
    #[error("invalid patch format of primitive list")]
    PrimitiveListFormat,
    #[error("invalid patch format of retainKeys")]
    RetainKeysFormat,
    #[error("invalid patch format of setElementOrder list")]
    SetElementOrderFormat,
    #[error("the order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}")]
    SetElementOrderMismatch { patch: String, order: String },
}

impl SmpError {
    /// The HTTP status upstream's API server answers with: 400 for a malformed patch document
    /// or directive, 422 for lists of lists, and 500 for the rest, which upstream returns as
    /// plain errors (`metav1.Status` with an empty reason).
    pub fn http_status(&self) -> u16 {
        match self {
            SmpError::PatchNotAnObject { .. }
            | SmpError::PrimitiveListFormat
            | SmpError::RetainKeysFormat
            | SmpError::SetElementOrderFormat => 400,
            SmpError::ListOfLists => 422,
            _ => 500,
        }
    }
}

/// Applies `patch` to `original`, both JSON objects of the kind whose top-level protobuf
/// message is `message` (a full proto name from [`schema::kind`]), with upstream's strategic
/// merge semantics. A `null` patch changes nothing, as upstream decodes it to an empty one.
pub fn apply(original: &Value, patch: &Value, message: &str) -> Result<Value, SmpError> {
    let message =
        schema::message(message).ok_or_else(|| SmpError::UnknownMessage(message.to_owned()))?;
    let Value::Object(original) = original else {
        return Err(SmpError::OriginalNotAnObject);
    };
    let patch = match patch {
        Value::Object(patch) => patch.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(SmpError::PatchNotAnObject {
                found: json_type(other),
            });
        }
    };
    merge_map(original.clone(), patch, Ty::Message(message)).map(Value::Object)
}

/// Merges the object `patch` into the object `original`, of type `ty` (upstream's `mergeMap`).
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ty: Ty,
) -> Result<Map<String, Value>, SmpError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some(REPLACE) => {
                patch.remove(DIRECTIVE);
                Ok(match replacement(Value::Object(patch), ty) {
                    Value::Object(replaced) => replaced,
                    _ => Map::new(),
                })
            }
            Some(DELETE) => Ok(Map::new()),
            _ => Err(SmpError::BadPatchType {
                directive: go_format(directive),
                map: go_format(&Value::Object(patch.clone())),
            }),
        };
    }
    retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch, ty)?;
    // Deletions from lists go after the rest of the patch, so a list merged in the same patch
    // is merged first. (Upstream takes the keys in Go's random map order.)
    let mut deletions = Vec::new();
    for (key, value) in patch {
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            let list = directive_target(&key, DELETE_FROM_PRIMITIVE_LIST)
                .ok_or(SmpError::PrimitiveListFormat)?;
            deletions.push((list.to_owned(), value));
        } else if key.starts_with('$') && !ty.has_field(&key) {
            // Upstream stores an unknown directive and the typed decode drops it.
            continue;
        } else {
            merge_entry(&mut original, key, value, ty, false)?;
        }
    }
    for (key, value) in deletions {
        merge_entry(&mut original, key, value, ty, true)?;
    }
    Ok(original)
}

/// Merges the patch's `value` for `key` into `original`. With `delete_list`, `value` lists the
/// scalars to delete from the list `key`.
fn merge_entry(
    original: &mut Map<String, Value>,
    key: String,
    value: Value,
    ty: Ty,
    delete_list: bool,
) -> Result<(), SmpError> {
    if value.is_null() {
        original.remove(&key);
        return Ok(());
    }
    let field = ty.field(&key);
    let Some(slot) = original.get_mut(&key) else {
        // Nothing to delete from; anything else is stored as sent, less its directives.
        if !delete_list && let Some(fresh) = stored(value, field.ty, true) {
            original.insert(key, fresh);
        }
        return Ok(());
    };
    let current = slot.take();
    let merged = match (current, value) {
        (current, value) if Shape::of(&current) != Shape::of(&value) => {
            if delete_list {
                Some(current)
            } else {
                stored(value, field.ty, true)
            }
        }
        (Value::Object(current), Value::Object(value)) => {
            Some(if field.strategy == Strategy::Replace {
                replacement(Value::Object(value), field.ty)
            } else {
                Value::Object(merge_map(current, value, field.ty)?)
            })
        }
        (Value::Array(current), Value::Array(value)) => {
            Some(if field.strategy.merges() || delete_list {
                Value::Array(merge_list(current, value, field, delete_list)?.items)
            } else {
                replacement(Value::Array(value), field.ty)
            })
        }
        (_, scalar) => Some(scalar),
    };
    match merged {
        Some(merged) => *slot = merged,
        None => {
            original.remove(&key);
        }
    }
    Ok(())
}

/// Applies a `$retainKeys` directive: the original keeps only the keys listed, and the patch
/// may set no others.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), SmpError> {
    let Some(keys) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(keys) = keys else {
        return Err(SmpError::RetainKeysFormat);
    };
    let retained = |key: &str| keys.iter().any(|k| k.as_str() == Some(key));
    let stray = patch.iter().any(|(key, value)| {
        !value.is_null()
            && !key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            && !key.starts_with(SET_ELEMENT_ORDER)
            && !retained(key)
    });
    if stray {
        return Err(SmpError::RetainKeysFormat);
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

/// Merges each list named by a `$setElementOrder/<list>` directive and orders it: the listed
/// elements in the directive's order, the server's others placed among them by the server's
/// order (upstream's `mergePatchIntoOriginal`).
fn merge_ordered_lists(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    ty: Ty,
) -> Result<(), SmpError> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive in directives {
        let Some(order) = patch.remove(&directive) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(bad_arg_type(Shape::Array, &order));
        };
        let key = directive_target(&directive, SET_ELEMENT_ORDER)
            .ok_or(SmpError::SetElementOrderFormat)?;
        let original_list = list_at(original, key)?;
        let patch_list = list_at(patch, key)?;
        let field = ty.field(key);
        check_order(
            patch_list.as_deref().unwrap_or_default(),
            &order,
            field.merge_key,
        )?;
        let shape = element_shape(&[
            original_list.as_deref().unwrap_or_default(),
            patch_list.as_deref().unwrap_or_default(),
        ]);
        let (merged, backing) = match (original_list, patch_list) {
            (None, None) => continue,
            (Some(original_list), None) => (original_list.clone(), original_list),
            (None, Some(patch_list)) => match stored(Value::Array(patch_list), field.ty, true) {
                Some(Value::Array(items)) => (items, Vec::new()),
                _ => (Vec::new(), Vec::new()),
            },
            (Some(original_list), Some(patch_list)) => {
                if field.strategy.merges() {
                    let merged = merge_list(original_list, patch_list, field, false)?;
                    (merged.items, merged.backing)
                } else {
                    match replacement(Value::Array(patch_list), field.ty) {
                        Value::Array(items) => (items, original_list),
                        _ => (Vec::new(), original_list),
                    }
                }
            }
        };
        let (in_order, server_only) = partition(merged, &order, field.merge_key)?;
        let by_key = shape? == Shape::Object;
        let items = normalize_order(
            in_order,
            server_only,
            &order,
            &backing,
            field.merge_key,
            by_key,
        )?;
        let key = key.to_owned();
        patch.remove(&key);
        original.insert(key, Value::Array(items));
    }
    Ok(())
}

/// The list at `key`, if any.
fn list_at(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<Value>>, SmpError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(other) => Err(bad_arg_type(Shape::Array, other)),
    }
}

/// The list a `<prefix>/<list>` directive names.
fn directive_target<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    key.split_once('/')
        .and_then(|(head, list)| (head == prefix).then_some(list))
}

/// A patch value that replaces the original's whole: upstream stores it as sent, and the typed
/// decode drops its `null`s and directive keys.
fn replacement(value: Value, ty: Ty) -> Value {
    stored(value, ty, false).unwrap_or_default()
}

/// A patch value as it ends up stored. With `drop_directed`, as where the original has nothing
/// to merge into: upstream then also drops every object carrying a `$patch` directive
/// (`removeDirectives`), `None` when that is `value` itself.
fn stored(value: Value, ty: Ty, drop_directed: bool) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if drop_directed && map.contains_key(DIRECTIVE) {
                return None;
            }
            if matches!(ty, Ty::Opaque) {
                return Some(Value::Object(map));
            }
            let mut kept = Map::new();
            for (key, item) in map {
                if item.is_null() || (key.starts_with('$') && !ty.has_field(&key)) {
                    continue;
                }
                let field = ty.field(&key);
                if let Some(item) = stored(item, field.ty, drop_directed) {
                    kept.insert(key, item);
                }
            }
            Some(Value::Object(kept))
        }
        // Nulls in lists stay: upstream keeps them, and the typed decode makes them zero values.
        Value::Array(items) => Some(Value::Array(
            items
                .into_iter()
                .filter_map(|item| stored(item, ty, drop_directed))
                .collect(),
        )),
        scalar => Some(scalar),
    }
}

/// The JSON type of `value` as Go's decoder names it in errors.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    }
}

/// `value` as Go's `fmt` prints a decoded JSON value with `%v`, for upstream's error messages.
fn go_format(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), go_float),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_format).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_format(v)))
                .collect();
            format!("map[{}]", entries.join(" "))
        }
    }
}

/// A `float64` as `%v` prints it: the shortest digits, in exponent form from 1e+06 up and
/// below 1e-04.
fn go_float(f: f64) -> String {
    let scientific = format!("{f:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return f.to_string();
    };
    let exponent: i32 = exponent.parse().unwrap_or_default();
    if (-4..6).contains(&exponent) {
        return f.to_string();
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}
