//! The Event printer, for core/v1 events and events.k8s.io/v1 events alike: upstream prints
//! both from the same internal object, so the events.k8s.io names of fields (`regarding`,
//! `note`, `deprecatedCount`, ...) are read where the core ones are absent.

use serde_json::Value;

use crate::table::cells::{self, text};
use crate::table::{Column, NAME, Printer, age};

pub(in crate::table) const EVENT: Printer = Printer::new(EVENT_COLUMNS, event);

const EVENT_COLUMNS: &[Column] = &[
    Column::string("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    Column::string("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    Column::string("Reason", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
    Column::string("Object", "The object that this event is about."),
    Column::string("Subobject", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.").wide(),
    Column::string("Source", "The component reporting this event. Should be a short machine understandable string.").wide(),
    Column::string("Message", "A human-readable description of the status of this operation."),
    Column::string("First Seen", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)").wide(),
    Column::string("Count", "The number of times this event has occurred.").wide(),
    NAME.wide(),
];

/// A field under its core/v1 name, else under its events.k8s.io/v1 name.
fn field<'a>(object: &'a Value, core: &str, events: &str) -> Option<&'a Value> {
    object
        .get(core)
        .filter(|v| !v.is_null())
        .or_else(|| object.get(events))
        .filter(|v| !v.is_null())
}

fn field_text<'a>(object: &'a Value, core: &str, events: &str) -> &'a str {
    field(object, core, events)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn event(object: &Value, now: i64) -> Vec<Value> {
    let first_timestamp = field(object, "firstTimestamp", "deprecatedFirstTimestamp");
    let first_seen = if age::timestamp(first_timestamp).is_some() {
        age::since(first_timestamp, now)
    } else {
        age::since(object.get("eventTime"), now)
    };
    let last_timestamp = field(object, "lastTimestamp", "deprecatedLastTimestamp");
    let mut last_seen = if age::timestamp(last_timestamp).is_some() {
        age::since(last_timestamp, now)
    } else {
        first_seen.clone()
    };
    let mut count = field(object, "count", "deprecatedCount")
        .and_then(Value::as_i64)
        .unwrap_or_default();
    match object.get("series").filter(|s| s.is_object()) {
        Some(series) => {
            last_seen = age::since(series.get("lastObservedTime"), now);
            count = cells::int(series, "/count");
        }
        // Singleton events of the new API have no count.
        None if count == 0 => count = 1,
        None => {}
    }
    let involved = field(object, "involvedObject", "regarding").unwrap_or(&Value::Null);
    let kind = text(involved, "/kind").to_lowercase();
    let target = match text(involved, "/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let source = field(object, "source", "deprecatedSource").unwrap_or(&Value::Null);
    let component = first_non_empty(
        text(source, "/component"),
        field_text(object, "reportingComponent", "reportingController"),
    );
    let instance = first_non_empty(text(source, "/host"), text(object, "/reportingInstance"));
    let source = if instance.is_empty() {
        component.to_owned()
    } else {
        format!("{component}, {instance}")
    };
    cells![
        last_seen,
        text(object, "/type"),
        text(object, "/reason"),
        target,
        text(involved, "/fieldPath"),
        source,
        field_text(object, "message", "note").trim(),
        first_seen,
        count,
        cells::name(object),
    ]
}

fn first_non_empty<'a>(first: &'a str, second: &'a str) -> &'a str {
    if first.is_empty() { second } else { first }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago, seconds_ago};
    use serde_json::json;

    #[test]
    fn prints_core_and_events_api_events() {
        let cases = [
            (
                "core event with timestamps and a count",
                json!({
                    "metadata": {"name": "web.17c", "namespace": "default"},
                    "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
                    "reason": "BackOff", "type": "Warning",
                    "message": "  Back-off restarting failed container\n",
                    "source": {"component": "kubelet", "host": "node-1"},
                    "firstTimestamp": minutes_ago(30), "lastTimestamp": minutes_ago(2),
                    "count": 7,
                }),
                json!([
                    "2m",
                    "Warning",
                    "BackOff",
                    "pod/web",
                    "spec.containers{app}",
                    "kubelet, node-1",
                    "Back-off restarting failed container",
                    "30m",
                    7,
                    "web.17c"
                ]),
            ),
            (
                "core event without timestamps but an eventTime, and no count",
                json!({
                    "metadata": {"name": "e2"},
                    "involvedObject": {"kind": "Node"},
                    "reason": "Starting", "type": "Normal", "message": "Starting kubelet.",
                    "eventTime": "2024-05-01T11:59:29.500000Z",
                    "reportingComponent": "kubelet", "reportingInstance": "node-1",
                }),
                json!([
                    "30s",
                    "Normal",
                    "Starting",
                    "node",
                    "",
                    "kubelet, node-1",
                    "Starting kubelet.",
                    "30s",
                    1,
                    "e2"
                ]),
            ),
            (
                "events.k8s.io event in a series",
                json!({
                    "apiVersion": "events.k8s.io/v1",
                    "metadata": {"name": "e3"},
                    "regarding": {"kind": "Deployment", "name": "web"},
                    "reason": "ScalingReplicaSet", "type": "Normal", "note": "Scaled up",
                    "eventTime": seconds_ago(600),
                    "series": {"count": 4, "lastObservedTime": seconds_ago(5)},
                    "reportingController": "deployment-controller",
                    "reportingInstance": "",
                }),
                json!([
                    "5s",
                    "Normal",
                    "ScalingReplicaSet",
                    "deployment/web",
                    "",
                    "deployment-controller",
                    "Scaled up",
                    "10m",
                    4,
                    "e3"
                ]),
            ),
            (
                "events.k8s.io event with the deprecated fields",
                json!({
                    "metadata": {"name": "e4"},
                    "regarding": {"kind": "Pod", "name": "p"},
                    "note": "pulled", "reason": "Pulled", "type": "Normal",
                    "deprecatedFirstTimestamp": minutes_ago(3),
                    "deprecatedCount": 2,
                    "deprecatedSource": {"component": "kubelet"},
                }),
                json!([
                    "3m", "Normal", "Pulled", "pod/p", "", "kubelet", "pulled", "3m", 2, "e4"
                ]),
            ),
            (
                "no times at all",
                json!({"metadata": {"name": "e5"}}),
                json!(["<unknown>", "", "", "", "", "", "", "<unknown>", 1, "e5"]),
            ),
        ];
        for (case, object, want) in cases {
            assert_eq!(Value::from(event(&object, NOW)), want, "{case}");
        }
    }
}
