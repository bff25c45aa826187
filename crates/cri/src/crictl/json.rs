//! A JSON document whose key order is ours to choose, printed as crictl prints documents:
//! JSON indented by two spaces, or YAML. crictl prints list responses in protobuf field order
//! (`ps -o json`) and status documents with keys sorted (`inspect`), so order must not depend
//! on `serde_json`'s feature flags.

use std::fmt::Write as _;

/// A JSON value; objects keep their entries in the order given.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// A number, already written out.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
    /// A message field that was not set: left out when printed (protobuf's JSON leaves unset
    /// message fields out).
    Absent,
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub(crate) fn object<K: Into<String>>(entries: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Object(
            entries
                .into_iter()
                .map(|(key, value)| (key.into(), value))
                .collect(),
        )
    }

    /// This value with every object's keys sorted, as Go's `encoding/json` writes maps.
    pub(crate) fn sorted(self) -> Json {
        match self {
            Json::Array(items) => Json::Array(items.into_iter().map(Json::sorted).collect()),
            Json::Object(mut entries) => {
                entries.sort_by(|(a, _), (b, _)| a.cmp(b));
                Json::Object(
                    entries
                        .into_iter()
                        .map(|(key, value)| (key, value.sorted()))
                        .collect(),
                )
            }
            other => other,
        }
    }

    /// The value of `key` in an object.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        match self {
            Json::Object(entries) => entries
                .iter_mut()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value),
            _ => None,
        }
    }

    /// Sets `key` in an object, replacing its value or appending it.
    pub(crate) fn set(&mut self, key: &str, value: Json) {
        if let Some(slot) = self.get_mut(key) {
            *slot = value;
        } else if let Json::Object(entries) = self {
            entries.push((key.to_string(), value));
        }
    }

    /// Turns the unset message fields at the top of an object into `null`, as crictl's
    /// `inspect` output shows them.
    pub(crate) fn absent_as_null(self) -> Json {
        match self {
            Json::Object(entries) => Json::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| match value {
                        Json::Absent => (key, Json::Null),
                        value => (key, value),
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    /// Indented JSON (two spaces), without a trailing newline.
    pub(crate) fn to_pretty(&self) -> String {
        let mut text = String::new();
        write_json(&mut text, self, 0);
        text
    }

    /// YAML as `sigs.k8s.io/yaml` writes a JSON document: block style, sequences not indented
    /// under their key. Ends with a newline.
    pub(crate) fn to_yaml(&self) -> String {
        let mut text = String::new();
        match self {
            Json::Object(entries) if has_present(entries) => {
                write_yaml_object(&mut text, entries, 0)
            }
            Json::Array(items) if !items.is_empty() => write_yaml_array(&mut text, items, 0),
            scalar => {
                text.push_str(&yaml_inline(scalar));
                text.push('\n');
            }
        }
        text
    }
}

impl From<serde_json::Value> for Json {
    fn from(value: serde_json::Value) -> Json {
        match value {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(b),
            serde_json::Value::Number(n) => Json::Number(n.to_string()),
            serde_json::Value::String(s) => Json::String(s),
            serde_json::Value::Array(items) => {
                Json::Array(items.into_iter().map(Json::from).collect())
            }
            serde_json::Value::Object(map) => Json::Object(
                map.into_iter()
                    .map(|(key, value)| (key, Json::from(value)))
                    .collect(),
            ),
        }
    }
}

fn has_present(entries: &[(String, Json)]) -> bool {
    entries.iter().any(|(_, value)| *value != Json::Absent)
}

fn quote(text: &str) -> String {
    // Serializing a string cannot fail; the fallback is never used.
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{}\"", text.escape_default()))
}

fn indent(text: &mut String, level: usize) {
    text.extend(std::iter::repeat_n(' ', level * 2));
}

fn write_json(text: &mut String, value: &Json, level: usize) {
    match value {
        Json::Null | Json::Absent => text.push_str("null"),
        Json::Bool(b) => text.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => text.push_str(n),
        Json::String(s) => text.push_str(&quote(s)),
        Json::Array(items) => {
            if items.is_empty() {
                text.push_str("[]");
                return;
            }
            text.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    text.push(',');
                }
                text.push('\n');
                indent(text, level + 1);
                write_json(text, item, level + 1);
            }
            text.push('\n');
            indent(text, level);
            text.push(']');
        }
        Json::Object(entries) => {
            let present: Vec<&(String, Json)> = entries
                .iter()
                .filter(|(_, value)| *value != Json::Absent)
                .collect();
            if present.is_empty() {
                text.push_str("{}");
                return;
            }
            text.push('{');
            for (index, (key, item)) in present.into_iter().enumerate() {
                if index > 0 {
                    text.push(',');
                }
                text.push('\n');
                indent(text, level + 1);
                text.push_str(&quote(key));
                text.push_str(": ");
                write_json(text, item, level + 1);
            }
            text.push('\n');
            indent(text, level);
            text.push('}');
        }
    }
}

/// Whether `text` can be written as a plain YAML scalar and still read back as this string.
fn yaml_plain_ok(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if text.starts_with(' ') || text.ends_with(' ') {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if text.contains(": ") || text.contains(" #") || text.ends_with(':') {
        return false;
    }
    if text.chars().any(|c| c.is_control()) {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    ) {
        return false;
    }
    // Anything that might be read as a number stays quoted.
    let numeric_start = first.is_ascii_digit() || first == '+' || first == '.';
    !numeric_start
}

fn yaml_scalar_string(text: &str) -> String {
    if yaml_plain_ok(text) {
        text.to_string()
    } else {
        // A JSON string is a valid YAML double-quoted scalar.
        quote(text)
    }
}

/// A value that fits on its key's line: scalars and empty collections.
fn yaml_inline(value: &Json) -> String {
    match value {
        Json::Null | Json::Absent => "null".to_string(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.clone(),
        Json::String(s) => yaml_scalar_string(s),
        Json::Array(_) => "[]".to_string(),
        Json::Object(_) => "{}".to_string(),
    }
}

fn yaml_is_block(value: &Json) -> bool {
    match value {
        Json::Array(items) => !items.is_empty(),
        Json::Object(entries) => has_present(entries),
        _ => false,
    }
}

/// Indents a new line, unless the line holds just a sequence item's "- ": the first entry of
/// an item shares that line.
fn start_line(text: &mut String, level: usize) {
    if !text.ends_with("- ") {
        indent(text, level);
    }
}

fn write_yaml_object(text: &mut String, entries: &[(String, Json)], level: usize) {
    for (key, value) in entries {
        if *value == Json::Absent {
            continue;
        }
        start_line(text, level);
        let _ = write!(text, "{}:", yaml_scalar_string(key));
        match value {
            Json::Object(inner) if has_present(inner) => {
                text.push('\n');
                write_yaml_object(text, inner, level + 1);
            }
            Json::Array(items) if !items.is_empty() => {
                text.push('\n');
                write_yaml_array(text, items, level);
            }
            scalar => {
                text.push(' ');
                text.push_str(&yaml_inline(scalar));
                text.push('\n');
            }
        }
    }
}

fn write_yaml_array(text: &mut String, items: &[Json], level: usize) {
    for item in items {
        start_line(text, level);
        text.push_str("- ");
        match item {
            Json::Object(entries) if yaml_is_block(item) => {
                write_yaml_object(text, entries, level + 1);
            }
            Json::Array(inner) if !inner.is_empty() => {
                write_yaml_array(text, inner, level + 1);
            }
            scalar => {
                text.push_str(&yaml_inline(scalar));
                text.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Json {
        Json::object([
            ("id", Json::String("abc".into())),
            (
                "labels",
                Json::object([("app", Json::String("web".into()))]),
            ),
            ("empty", Json::Array(vec![])),
            ("none", Json::Object(vec![])),
            ("unset", Json::Absent),
            (
                "items",
                Json::Array(vec![
                    Json::object([
                        ("name", Json::String("a".into())),
                        ("port", Json::Number("80".into())),
                    ]),
                    Json::String("true".into()),
                ]),
            ),
            ("createdAt", Json::String("1714557600000000000".into())),
        ])
    }

    #[test]
    fn pretty_json_like_go() {
        let expected = r#"{
  "id": "abc",
  "labels": {
    "app": "web"
  },
  "empty": [],
  "none": {},
  "items": [
    {
      "name": "a",
      "port": 80
    },
    "true"
  ],
  "createdAt": "1714557600000000000"
}"#;
        assert_eq!(sample().to_pretty(), expected);
    }

    #[test]
    fn sorting_and_nulls() {
        let sorted = sample().sorted().absent_as_null();
        let Json::Object(entries) = &sorted else {
            panic!("an object")
        };
        let keys: Vec<&str> = entries.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "createdAt",
                "empty",
                "id",
                "items",
                "labels",
                "none",
                "unset"
            ]
        );
        assert!(sorted.to_pretty().contains("\"unset\": null"));
    }

    #[test]
    fn yaml_blocks_and_quoting() {
        let expected = "\
id: abc
labels:
  app: web
empty: []
none: {}
items:
- name: a
  port: 80
- \"true\"
createdAt: \"1714557600000000000\"
";
        assert_eq!(sample().to_yaml(), expected);
    }

    #[test]
    fn yaml_nested_sequences_and_odd_strings() {
        let doc = Json::object([(
            "a",
            Json::Array(vec![
                Json::Array(vec![Json::Number("1".into())]),
                Json::object([("b", Json::object([("c", Json::String("x: y".into()))]))]),
                Json::String(String::new()),
            ]),
        )]);
        let expected = "\
a:
- - 1
- b:
    c: \"x: y\"
- \"\"
";
        assert_eq!(doc.to_yaml(), expected);
    }

    #[test]
    fn converts_from_serde_values() {
        let value = serde_json::json!({"b": [1, "x", null, true], "a": {}});
        let json = Json::from(value).sorted();
        assert_eq!(
            json.to_pretty(),
            "{\n  \"a\": {},\n  \"b\": [\n    1,\n    \"x\",\n    null,\n    true\n  ]\n}"
        );
    }
}
