//! Field selectors (`?fieldSelector=`, `kubectl --field-selector`): `a=b`, `a==b`, `a!=b`
//! joined by commas, with `\` escapes; and, per resource, the fields upstream lets you select
//! on (anything else is a 400).

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub field: String,
    pub value: String,
    pub negated: bool,
}

/// A conjunction of terms; empty selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    pub terms: Vec<Term>,
}

impl FieldSelector {
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in split_unescaped(input, ',') {
            if part.is_empty() {
                continue;
            }
            let (field, value, negated) = if let Some((f, v)) = split_operator(&part, "!=") {
                (f, v, true)
            } else if let Some((f, v)) = split_operator(&part, "==") {
                (f, v, false)
            } else if let Some((f, v)) = split_operator(&part, "=") {
                (f, v, false)
            } else {
                return Err(format!(
                    "invalid selector: '{input}'; can't understand '{part}'"
                ));
            };
            terms.push(Term {
                field: unescape(&field),
                value: unescape(&value),
                negated,
            });
        }
        Ok(Self { terms })
    }

    pub fn is_everything(&self) -> bool {
        self.terms.is_empty()
    }

    /// Checks every field is one `resource` supports, as upstream does before listing.
    pub fn check_supported(&self, group: &str, resource: &str) -> Result<(), String> {
        let supported = supported_fields(group, resource);
        for term in &self.terms {
            if !supported.contains(&term.field.as_str()) {
                return Err(format!("field label not supported: {}", term.field));
            }
        }
        Ok(())
    }

    pub fn matches(&self, fields: &BTreeMap<&'static str, String>) -> bool {
        self.terms.iter().all(|term| {
            let value = fields
                .get(term.field.as_str())
                .map(String::as_str)
                .unwrap_or("");
            (value == term.value) != term.negated
        })
    }
}

/// Splits on `separator` where it is not escaped by a backslash; keeps escapes in the parts.
fn split_unescaped(input: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in input.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            parts.push(String::new());
            continue;
        }
        if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

/// Splits `term` at the first unescaped `operator`.
fn split_operator(term: &str, operator: &str) -> Option<(String, String)> {
    let bytes = term.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if term[i..].starts_with(operator) {
            // "a!=b" must not be read as "a!" "=" "b".
            if operator == "=" && i > 0 && bytes[i - 1] == b'!' {
                return None;
            }
            return Some((term[..i].to_owned(), term[i + operator.len()..].to_owned()));
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The fields upstream supports in field selectors for a resource (besides these, nothing).
pub fn supported_fields(group: &str, resource: &str) -> &'static [&'static str] {
    match (group, resource) {
        ("", "pods") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "secrets") => &["metadata.name", "metadata.namespace", "type"],
        ("", "namespaces") => &["metadata.name", "metadata.namespace", "status.phase"],
        ("", "nodes") => &["metadata.name", "metadata.namespace", "spec.unschedulable"],
        ("", "replicationcontrollers") | ("apps", "replicasets") => {
            &["metadata.name", "metadata.namespace", "status.replicas"]
        }
        ("batch", "jobs") => &["metadata.name", "metadata.namespace", "status.successful"],
        _ => &["metadata.name", "metadata.namespace"],
    }
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The parts of an object [`fields_of`] and label selectors read (its labels and
/// resourceVersion too), for decoding only those.
pub fn selected_paths(group: &str, resource: &str) -> crate::json_paths::Paths {
    let fields = supported_fields(group, resource).iter().copied();
    crate::json_paths::Paths::new(
        ["metadata.labels", "metadata.resourceVersion"]
            .into_iter()
            .chain(fields),
    )
}

/// The value at a dotted path (`spec.nodeName`).
fn dotted<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(object, |value, key| value.get(key))
}

/// The selectable fields of `object`, a `resource` of `group`, as strings. Reads only what
/// [`selected_paths`] names.
pub fn fields_of(group: &str, resource: &str, object: &Value) -> BTreeMap<&'static str, String> {
    let mut fields = BTreeMap::new();
    for &field in supported_fields(group, resource) {
        let value = match (resource, field) {
            // Upstream's `source` field of events is the reporting component's name.
            ("events", "source") => text(object.pointer("/source/component")),
            ("events", "reportingComponent") => text(object.get("reportingComponent")),
            ("pods", "spec.hostNetwork") => text(Some(
                object
                    .pointer("/spec/hostNetwork")
                    .unwrap_or(&Value::Bool(false)),
            )),
            ("nodes", "spec.unschedulable") => text(Some(
                object
                    .pointer("/spec/unschedulable")
                    .unwrap_or(&Value::Bool(false)),
            )),
            ("jobs", "status.successful")
            | ("replicationcontrollers", "status.replicas")
            | ("replicasets", "status.replicas") => {
                text(Some(dotted(object, field).unwrap_or(&Value::from(0))))
            }
            _ => text(dotted(object, field)),
        };
        fields.insert(field, value);
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_operators_and_escapes() {
        let s = FieldSelector::parse("metadata.name=web,status.phase!=Running,spec.nodeName==n1")
            .unwrap();
        assert_eq!(
            s.terms,
            [
                Term {
                    field: "metadata.name".into(),
                    value: "web".into(),
                    negated: false
                },
                Term {
                    field: "status.phase".into(),
                    value: "Running".into(),
                    negated: true
                },
                Term {
                    field: "spec.nodeName".into(),
                    value: "n1".into(),
                    negated: false
                },
            ]
        );
        let escaped = FieldSelector::parse(r"metadata.name=a\,b\=c").unwrap();
        assert_eq!(escaped.terms[0].value, "a,b=c");
        assert!(FieldSelector::parse("").unwrap().is_everything());
        assert!(FieldSelector::parse("metadata.name").is_err());
    }

    #[test]
    fn matches_pod_fields() {
        let pod = json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always"},
            "status": {"phase": "Running"}
        });
        let fields = fields_of("", "pods", &pod);
        let cases = [
            ("spec.nodeName=n1", true),
            ("spec.nodeName=n2", false),
            ("status.phase!=Running", false),
            ("status.phase!=Pending,metadata.namespace=default", true),
            ("spec.hostNetwork=false", true),
            ("status.podIP=", true),
        ];
        for (selector, want) in cases {
            assert_eq!(
                FieldSelector::parse(selector).unwrap().matches(&fields),
                want,
                "{selector}"
            );
        }
    }

    #[test]
    fn unsupported_fields_are_refused() {
        let s = FieldSelector::parse("spec.nodeName=n1").unwrap();
        assert!(s.check_supported("", "pods").is_ok());
        assert_eq!(
            s.check_supported("", "configmaps").unwrap_err(),
            "field label not supported: spec.nodeName"
        );
        let event = json!({"involvedObject": {"name": "web", "kind": "Pod"}, "source": {"component": "kubelet"}});
        let fields = fields_of("", "events", &event);
        assert!(
            FieldSelector::parse("involvedObject.name=web,source=kubelet")
                .unwrap()
                .matches(&fields)
        );
    }

    #[test]
    fn selected_paths_hold_every_selectable_field() {
        let pod = json!({
            "metadata": {"name": "p", "namespace": "n", "labels": {"a": "b"}, "uid": "u"},
            "spec": {"nodeName": "n1", "restartPolicy": "Never", "schedulerName": "s",
                     "serviceAccountName": "sa", "hostNetwork": true, "containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIP": "10.42.0.5", "nominatedNodeName": "n2"}
        });
        let event = json!({
            "metadata": {"name": "e", "namespace": "n"},
            "involvedObject": {"kind": "Pod", "namespace": "n", "name": "p", "uid": "u",
                               "apiVersion": "v1", "resourceVersion": "5", "fieldPath": "spec"},
            "reason": "Started", "reportingComponent": "kubelet",
            "source": {"component": "kubelet", "host": "n1"}, "type": "Normal", "message": "m"
        });
        for (resource, object) in [("pods", pod), ("events", event)] {
            let full = fields_of("", resource, &object);
            let json = serde_json::to_vec(&object).unwrap();
            let selected = selected_paths("", resource).decode(&json).unwrap();
            assert_eq!(fields_of("", resource, &selected), full, "{resource}");
            assert!(full.values().all(|v| !v.is_empty()), "{resource}: {full:?}");
            assert_eq!(
                selected.pointer("/metadata/labels"),
                object.pointer("/metadata/labels")
            );
        }
    }
}
