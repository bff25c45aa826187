//! Reading the fields printers show, with Go's zero values for absent ones, and the cell
//! formats several kinds share: labels, label selectors, container lists, access modes.

use std::collections::BTreeSet;

use serde_json::Value;

use super::age;
use crate::labels::Selector;

/// The string at a JSON pointer, `""` when absent (Go's zero value).
pub(super) fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The string at a JSON pointer, `None` when absent or null (a Go `*string`).
pub(super) fn optional_text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// The integer at a JSON pointer, 0 when absent.
pub(super) fn int(object: &Value, pointer: &str) -> i64 {
    optional_int(object, pointer).unwrap_or_default()
}

/// The integer at a JSON pointer, `None` when absent or null (a Go `*int32`).
pub(super) fn optional_int(object: &Value, pointer: &str) -> Option<i64> {
    object.pointer(pointer).and_then(Value::as_i64)
}

/// The boolean at a JSON pointer, `None` when absent or null.
pub(super) fn optional_bool(object: &Value, pointer: &str) -> Option<bool> {
    object.pointer(pointer).and_then(Value::as_bool)
}

/// The list at a JSON pointer, empty when absent.
pub(super) fn items<'a>(object: &'a Value, pointer: &str) -> &'a [Value] {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The number of entries of the list or map at a JSON pointer (Go's `len`).
pub(super) fn count(object: &Value, pointer: &str) -> i64 {
    let len = match object.pointer(pointer) {
        Some(Value::Array(list)) => list.len(),
        Some(Value::Object(map)) => map.len(),
        _ => 0,
    };
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// True when the field is present and not null (a non-nil Go pointer).
pub(super) fn is_set(object: &Value, pointer: &str) -> bool {
    object.pointer(pointer).is_some_and(|v| !v.is_null())
}

pub(super) fn name(object: &Value) -> &str {
    text(object, "/metadata/name")
}

/// The Age cell.
pub(super) fn age(object: &Value, now: i64) -> String {
    age::since(object.pointer("/metadata/creationTimestamp"), now)
}

/// True once deletion has begun (`metadata.deletionTimestamp` set).
pub(super) fn is_deleting(object: &Value) -> bool {
    is_set(object, "/metadata/deletionTimestamp")
}

/// An annotation, `None` when absent (present but empty is `Some("")`).
pub(super) fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// A `type`-keyed condition's field: the first condition of that type, as upstream's helpers
/// look them up.
pub(super) fn first_condition<'a>(conditions: &'a [Value], kind: &str) -> Option<&'a Value> {
    conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

/// True when the first condition of that type has status `True`.
pub(super) fn condition_is_true(conditions: &[Value], kind: &str) -> bool {
    first_condition(conditions, kind).is_some_and(|c| text(c, "/status") == "True")
}

/// Upstream's `labels.FormatLabels`: sorted `k=v` pairs joined with `,`, `<none>` when empty.
pub(super) fn format_labels(map: Option<&Value>) -> String {
    let Some(map) = map.and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        return "<none>".to_owned();
    };
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// Upstream's `metav1.LabelSelectorAsSelector(selector).String()`: `""` for a null or empty
/// selector, `<invalid>` for one that does not convert (Deployment's Selector column).
pub(super) fn label_selector_string(selector: Option<&Value>) -> String {
    match Selector::from_label_selector(selector.unwrap_or(&Value::Null)) {
        Ok(selector) => selector.to_string(),
        Err(_) => "<invalid>".to_owned(),
    }
}

/// Upstream's `metav1.FormatLabelSelector`: as [`label_selector_string`], but `<none>` when
/// empty and `<error>` when invalid.
pub(super) fn format_label_selector(selector: Option<&Value>) -> String {
    match Selector::from_label_selector(selector.unwrap_or(&Value::Null)) {
        Ok(selector) => {
            let text = selector.to_string();
            if text.is_empty() {
                "<none>".to_owned()
            } else {
                text
            }
        }
        Err(_) => "<error>".to_owned(),
    }
}

/// Upstream's `layoutContainerCells`: the names and the images of a pod spec's containers, each
/// joined with `,`.
pub(super) fn container_cells(pod_spec: &Value) -> (String, String) {
    let containers = items(pod_spec, "/containers");
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// Upstream's `GetAccessModesAsString`: the distinct modes, abbreviated, in a fixed order.
pub(super) fn access_modes(modes: &[Value]) -> String {
    let present: BTreeSet<&str> = modes.iter().filter_map(Value::as_str).collect();
    let order = [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ];
    let shown: Vec<&str> = order
        .iter()
        .filter(|(mode, _)| present.contains(mode))
        .map(|(_, short)| *short)
        .collect();
    shown.join(",")
}

/// Upstream's `listWithMoreString`: the shown items joined with `,`, then ` + N more...` when
/// some were left out; `<unset>` when there is nothing to show.
pub(super) fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let joined = list.join(",");
    if more {
        return format!("{joined} + {} more...", count.saturating_sub(max));
    }
    if joined.is_empty() {
        "<unset>".to_owned()
    } else {
        joined
    }
}

/// An `IntOrString` as Go's `String()` prints it.
pub(super) fn int_or_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Go's `printBool`.
pub(super) fn bool_text(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_labels_sorted() {
        let cases = [
            (json!({"b": "2", "a": "1"}), "a=1,b=2"),
            (json!({}), "<none>"),
            (json!(null), "<none>"),
        ];
        for (labels, want) in cases {
            assert_eq!(format_labels(Some(&labels)), want, "{labels}");
        }
        assert_eq!(format_labels(None), "<none>");
    }

    #[test]
    fn formats_label_selectors() {
        let cases = [
            (json!({"matchLabels": {"app": "web"}}), "app=web", "app=web"),
            (
                json!({"matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["b", "a"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ]}),
                "!canary,tier in (a,b)",
                "!canary,tier in (a,b)",
            ),
            (
                json!({"matchExpressions": [{"key": "canary", "operator": "Exists"}]}),
                "canary",
                "canary",
            ),
            (json!({}), "<none>", ""),
            (json!(null), "<none>", ""),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Near"}]}),
                "<error>",
                "<invalid>",
            ),
        ];
        for (selector, formatted, plain) in cases {
            assert_eq!(
                format_label_selector(Some(&selector)),
                formatted,
                "{selector}"
            );
            assert_eq!(label_selector_string(Some(&selector)), plain, "{selector}");
        }
    }

    #[test]
    fn abbreviates_access_modes_in_fixed_order() {
        let cases = [
            (
                json!(["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"]),
                "RWO,RWX",
            ),
            (json!(["ReadWriteOncePod", "ReadOnlyMany"]), "ROX,RWOP"),
            (json!([]), ""),
        ];
        for (modes, want) in cases {
            let modes = modes.as_array().cloned().unwrap_or_default();
            assert_eq!(access_modes(&modes), want);
        }
    }

    #[test]
    fn lists_with_more() {
        let three: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let cases = [
            (three.clone(), false, 3, "a,b,c"),
            (three, true, 5, "a,b,c + 2 more..."),
            (Vec::new(), false, 0, "<unset>"),
        ];
        for (list, more, count, want) in cases {
            assert_eq!(list_with_more(&list, more, count, 3), want);
        }
    }
}
