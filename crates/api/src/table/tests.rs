//! Tests of the Table as a whole (shape, column definitions, `includeObject`, the default
//! table), and the clock the printers' tests share.

use serde_json::{Value, json};

use super::*;
use crate::registry;

/// The printers' tests run at 2024-05-01T12:00:00Z.
pub(super) const NOW: i64 = 1_714_564_800;

/// The RFC 3339 time `seconds` before [`NOW`].
pub(super) fn seconds_ago(seconds: i64) -> String {
    age::format_rfc3339(i128::from(NOW - seconds) * 1_000_000_000)
}

pub(super) fn minutes_ago(minutes: i64) -> String {
    seconds_ago(minutes * 60)
}

fn column_names(table: &Value) -> Vec<(String, i64)> {
    table["columnDefinitions"]
        .as_array()
        .map(|columns| {
            columns
                .iter()
                .map(|c| {
                    let name = c["name"].as_str().unwrap_or_default().to_owned();
                    (name, c["priority"].as_i64().unwrap_or(-1))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "uid": "u1",
                     "resourceVersion": "42", "creationTimestamp": minutes_ago(5),
                     "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}], "nodeName": "node-1"},
        "status": {"phase": "Running", "podIP": "10.0.0.5",
                   "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                                          "state": {"running": {}}}]},
    })
}

#[test]
fn pod_table_has_upstream_shape_and_columns() {
    let table = table(
        "",
        "pods",
        &[pod()],
        IncludeObject::Metadata,
        NOW,
        json!({"resourceVersion": "42", "continue": ""}),
    );
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(table["metadata"], json!({"resourceVersion": "42"}));
    let want: Vec<(String, i64)> = [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]
    .iter()
    .map(|(n, p)| ((*n).to_owned(), *p))
    .collect();
    assert_eq!(column_names(&table), want);
    let name = &table["columnDefinitions"][0];
    assert_eq!(name["type"], "string");
    assert_eq!(name["format"], "name");
    assert_eq!(name["description"], NAME_DESCRIPTION);
    let age = &table["columnDefinitions"][4];
    assert_eq!(age["format"], "");
    assert_eq!(age["description"], CREATION_TIMESTAMP_DESCRIPTION);
    // Every definition carries all five keys, empty or zero included.
    for column in table["columnDefinitions"].as_array().into_iter().flatten() {
        let keys: Vec<&String> = column
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys.len(), 5, "{column}");
    }
    assert_eq!(
        table["rows"][0]["cells"],
        json!([
            "web", "1/1", "Running", "0", "5m", "10.0.0.5", "node-1", "<none>", "<none>"
        ])
    );
    assert!(table["rows"][0].get("conditions").is_none());
}

#[test]
fn include_object_parses_as_upstream() {
    let cases: &[(Option<&str>, Result<IncludeObject, String>)] = &[
        (None, Ok(IncludeObject::Metadata)),
        (Some(""), Ok(IncludeObject::Metadata)),
        (Some("Metadata"), Ok(IncludeObject::Metadata)),
        (Some("Object"), Ok(IncludeObject::Object)),
        (Some("None"), Ok(IncludeObject::None)),
        (
            Some("object"),
            Err(
                "Unable to convert to Table as requested: includeObject: Invalid value: \
                 \"object\": must be 'Metadata', 'Object', 'None', or empty"
                    .to_owned(),
            ),
        ),
    ];
    for (value, want) in cases {
        assert_eq!(&IncludeObject::parse(*value), want, "{value:?}");
    }
}

#[test]
fn rows_carry_the_object_include_object_asks_for() {
    let object = pod();
    let partial = json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"].clone(),
    });
    let cases = [
        (IncludeObject::Metadata, partial),
        (IncludeObject::Object, object.clone()),
        (IncludeObject::None, Value::Null),
    ];
    for (include, want) in cases {
        let table = table(
            "",
            "pods",
            std::slice::from_ref(&object),
            include,
            NOW,
            json!({}),
        );
        let row = table["rows"][0].as_object().cloned().unwrap_or_default();
        assert_eq!(row.get("object"), Some(&want), "{include:?}");
    }
}

#[test]
fn finished_pod_rows_have_conditions() {
    let mut done = pod();
    done["status"] = json!({"phase": "Succeeded"});
    let table = table("", "pods", &[done], IncludeObject::None, NOW, json!({}));
    assert_eq!(table["rows"][0]["conditions"][0]["type"], "Completed");
    assert_eq!(table["rows"][0]["conditions"][0]["reason"], "Succeeded");
}

#[test]
fn kinds_without_a_printer_get_the_default_table() {
    let limit_range = json!({
        "metadata": {"name": "limits", "creationTimestamp": "2024-04-30T08:15:00Z"},
        "spec": {"limits": [{"type": "Container"}]},
    });
    for (group, resource) in [
        ("", "limitranges"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("example.com", "widgets"),
    ] {
        let table = table(
            group,
            resource,
            std::slice::from_ref(&limit_range),
            IncludeObject::Metadata,
            NOW,
            json!({"resourceVersion": "7", "remainingItemCount": 3}),
        );
        let columns = &table["columnDefinitions"];
        assert_eq!(columns[0]["name"], "Name", "{resource}");
        assert_eq!(columns[0]["format"], "name", "{resource}");
        assert_eq!(columns[1]["name"], "Created At", "{resource}");
        assert_eq!(columns[1]["type"], "date", "{resource}");
        assert_eq!(columns.as_array().map(Vec::len), Some(2), "{resource}");
        assert_eq!(
            table["rows"][0]["cells"],
            json!(["limits", "2024-04-30T08:15:00Z"]),
            "{resource}"
        );
        assert_eq!(
            table["metadata"],
            json!({"resourceVersion": "7", "remainingItemCount": 3})
        );
    }
    let unset = json!({"metadata": {"name": "new"}});
    let table = table(
        "",
        "limitranges",
        &[unset],
        IncludeObject::None,
        NOW,
        json!({}),
    );
    assert_eq!(
        table["rows"][0]["cells"],
        json!(["new", "0001-01-01T00:00:00Z"])
    );
}

#[test]
fn empty_lists_print_empty_rows_or_null_as_upstream() {
    let printed = table("", "pods", &[], IncludeObject::Metadata, NOW, json!({}));
    assert_eq!(printed["rows"], json!([]));
    let default = table(
        "",
        "limitranges",
        &[],
        IncludeObject::Metadata,
        NOW,
        json!({}),
    );
    assert_eq!(default["rows"], Value::Null);
}

/// Every kind upstream prints has its printer, under a resource the registry serves, with one
/// cell per column even for an empty object.
#[test]
fn every_printer_is_reachable_and_fills_its_columns() {
    let printed = [
        ("", "namespaces", 3),
        ("", "pods", 9),
        ("", "services", 7),
        ("", "endpoints", 3),
        ("", "configmaps", 3),
        ("", "secrets", 4),
        ("", "serviceaccounts", 3),
        ("", "nodes", 10),
        ("", "events", 10),
        ("", "persistentvolumes", 11),
        ("", "persistentvolumeclaims", 9),
        ("", "replicationcontrollers", 8),
        ("", "podtemplates", 4),
        ("", "resourcequotas", 4),
        ("apps", "deployments", 8),
        ("apps", "replicasets", 8),
        ("apps", "statefulsets", 5),
        ("apps", "daemonsets", 11),
        ("apps", "controllerrevisions", 4),
        ("batch", "jobs", 8),
        ("batch", "cronjobs", 10),
        ("autoscaling", "horizontalpodautoscalers", 7),
        ("coordination.k8s.io", "leases", 3),
        ("discovery.k8s.io", "endpointslices", 5),
        ("networking.k8s.io", "ingresses", 6),
        ("networking.k8s.io", "ingressclasses", 4),
        ("networking.k8s.io", "networkpolicies", 3),
        ("policy", "poddisruptionbudgets", 5),
        ("rbac.authorization.k8s.io", "rolebindings", 6),
        ("rbac.authorization.k8s.io", "clusterrolebindings", 6),
        ("storage.k8s.io", "storageclasses", 6),
        ("scheduling.k8s.io", "priorityclasses", 5),
        ("events.k8s.io", "events", 10),
    ];
    for (group, resource, columns) in printed {
        let served = registry::RESOURCES
            .iter()
            .any(|r| r.group == group && r.plural == resource);
        assert!(served, "{group}/{resource} is not in the registry");
        let printer = printer(group, resource);
        assert!(printer.is_some(), "{group}/{resource} has no printer");
        let printer = printer
            .copied()
            .map(|p| (p.columns.len(), (p.cells)(&json!({}), NOW).len()));
        assert_eq!(printer, Some((columns, columns)), "{group}/{resource}");
    }
    let with_printers = registry::RESOURCES
        .iter()
        .filter(|r| printer(r.group, r.plural).is_some())
        .map(|r| (r.group, r.plural))
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(with_printers.len(), printed.len());
}
