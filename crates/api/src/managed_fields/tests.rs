use serde_json::{Value, json};

use super::*;

const CONFIG_MAP: &str = "k8s.io.api.core.v1.ConfigMap";
const DEPLOYMENT: &str = "k8s.io.api.apps.v1.Deployment";

fn operation<'a>(manager: &'a str, time: &'a str) -> Operation<'a> {
    Operation {
        manager,
        api_version: "v1",
        subresource: "",
        time,
    }
}

fn no_other_version(_: &Value, _: &str) -> Option<Value> {
    None
}

/// The object as the server stores it after a create by `manager`.
fn created(message: &str, mut object: Value, op: &Operation, scope: Scope) -> Value {
    object["metadata"]["uid"] = json!("u-1");
    object["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
    object["metadata"]["resourceVersion"] = json!("5");
    record(None, &mut object, message, op, scope, &no_other_version);
    object
}

fn entries(object: &Value) -> &Vec<Value> {
    object["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
}

fn config_map(data: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"},
        "data": data,
    })
}

#[test]
fn a_create_owns_what_it_set_but_the_server_owned_metadata() {
    let object = created(
        CONFIG_MAP,
        config_map(json!({"a": "1"})),
        &operation("kubectl-create", "2025-01-01T00:00:00Z"),
        Scope::Whole,
    );
    assert_eq!(
        object["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2025-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:a": {}}},
        }])
    );
}

#[test]
fn fields_move_to_the_manager_that_changes_them_and_go_with_removals() {
    let first = created(
        CONFIG_MAP,
        config_map(json!({"a": "1", "b": "2"})),
        &operation("kubectl-create", "2025-01-01T00:00:00Z"),
        Scope::Whole,
    );
    // Another manager changes `a` and adds a label.
    let mut second = first.clone();
    second["data"]["a"] = json!("changed");
    second["metadata"]["labels"] = json!({"tier": "web"});
    record(
        Some(&first),
        &mut second,
        CONFIG_MAP,
        &operation("kubectl-edit", "2025-01-01T00:01:00Z"),
        Scope::Whole,
        &no_other_version,
    );
    let found = entries(&second);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0]["manager"], "kubectl-create");
    assert_eq!(
        found[0]["fieldsV1"],
        json!({"f:data": {".": {}, "f:b": {}}}),
        "`a` left its first manager"
    );
    assert_eq!(found[0]["time"], "2025-01-01T00:00:00Z");
    assert_eq!(found[1]["manager"], "kubectl-edit");
    assert_eq!(
        found[1]["fieldsV1"],
        json!({"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:tier": {}}}})
    );
    // Removing `b` leaves the first manager the map itself.
    let mut third = second.clone();
    third["data"] = json!({"a": "changed"});
    record(
        Some(&second),
        &mut third,
        CONFIG_MAP,
        &operation("kubectl-edit", "2025-01-01T00:02:00Z"),
        Scope::Whole,
        &no_other_version,
    );
    let found = entries(&third);
    assert_eq!(found[0]["fieldsV1"], json!({"f:data": {}}), "{found:#?}");
    // A removal alone gives no fields, so the time stays.
    assert_eq!(found[1]["time"], "2025-01-01T00:01:00Z");
    // Removing the map removes the first manager's last field, and with it its entry.
    let mut fourth = third.clone();
    fourth.as_object_mut().map(|o| o.remove("data"));
    record(
        Some(&third),
        &mut fourth,
        CONFIG_MAP,
        &operation("kubectl-edit", "2025-01-01T00:03:00Z"),
        Scope::Whole,
        &no_other_version,
    );
    let found = entries(&fourth);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["manager"], "kubectl-edit");
    assert_eq!(
        found[0]["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:tier": {}}}})
    );
}

#[test]
fn a_write_that_changes_nothing_changes_no_entry() {
    let first = created(
        CONFIG_MAP,
        config_map(json!({"a": "1"})),
        &operation("kubectl-create", "2025-01-01T00:00:00Z"),
        Scope::Whole,
    );
    let mut again = first.clone();
    record(
        Some(&first),
        &mut again,
        CONFIG_MAP,
        &operation("other", "2025-01-02T00:00:00Z"),
        Scope::Whole,
        &no_other_version,
    );
    assert_eq!(again, first);
}

#[test]
fn a_deployment_created_by_kubectl() {
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}, "creationTimestamp": null},
                "spec": {
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "resources": {},
                    }],
                    "restartPolicy": "Always",
                },
            },
        },
        "status": {},
    });
    let object = created(
        DEPLOYMENT,
        deployment,
        &Operation {
            api_version: "apps/v1",
            ..operation("kubectl-create", "2025-01-01T00:00:00Z")
        },
        Scope::NotStatus,
    );
    let fields = &entries(&object)[0]["fieldsV1"];
    assert_eq!(
        fields,
        &json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                // A label selector is atomic.
                "f:selector": {},
                // Go holds the strategy by value, so an empty Deployment has one already: no
                // ".", as upstream.
                "f:strategy": {
                    "f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}},
                    "f:type": {},
                },
                "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {
                        "f:containers": {
                            "k:{\"name\":\"nginx\"}": {
                                ".": {},
                                "f:image": {},
                                "f:name": {},
                                "f:ports": {
                                    ".": {},
                                    "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                        ".": {},
                                        "f:containerPort": {},
                                        "f:protocol": {},
                                    },
                                },
                                "f:resources": {},
                            },
                        },
                        "f:restartPolicy": {},
                    },
                },
            },
        })
    );
}

#[test]
fn the_status_subresource_owns_only_status_and_the_main_resource_never_does() {
    let first = created(
        DEPLOYMENT,
        json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 1},
            "status": {"replicas": 3},
        }),
        &Operation {
            api_version: "apps/v1",
            ..operation("kubectl-create", "2025-01-01T00:00:00Z")
        },
        Scope::NotStatus,
    );
    assert_eq!(
        entries(&first)[0]["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    let mut second = first.clone();
    second["status"]["readyReplicas"] = json!(1);
    second["metadata"]["annotations"] = json!({"x": "y"});
    record(
        Some(&first),
        &mut second,
        DEPLOYMENT,
        &Operation {
            api_version: "apps/v1",
            subresource: "status",
            ..operation("kube-controller-manager", "2025-01-01T00:00:01Z")
        },
        Scope::OnlyStatus,
        &no_other_version,
    );
    let found = entries(&second);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[1]["subresource"], "status");
    assert_eq!(
        found[1]["fieldsV1"],
        json!({"f:status": {"f:readyReplicas": {}}})
    );
}

#[test]
fn requests_may_replace_or_clear_entries_but_not_break_them() {
    let first = created(
        CONFIG_MAP,
        config_map(json!({"a": "1"})),
        &operation("kubectl-create", "2025-01-01T00:00:00Z"),
        Scope::Whole,
    );
    // Invalid entries in the request: the stored ones stay.
    let mut invalid = first.clone();
    invalid["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Bogus"}]);
    record(
        Some(&first),
        &mut invalid,
        CONFIG_MAP,
        &operation("kubectl-edit", "2025-01-01T00:01:00Z"),
        Scope::Whole,
        &no_other_version,
    );
    assert_eq!(invalid, first);
    // `[]` clears them, and an update does not start them again.
    let mut cleared = first.clone();
    cleared["metadata"]["managedFields"] = json!([]);
    record(
        Some(&first),
        &mut cleared,
        CONFIG_MAP,
        &operation("kubectl-edit", "2025-01-01T00:01:00Z"),
        Scope::Whole,
        &no_other_version,
    );
    assert_eq!(cleared["metadata"].get("managedFields"), None);
    let mut later = cleared.clone();
    later["data"]["b"] = json!("2");
    record(
        Some(&cleared),
        &mut later,
        CONFIG_MAP,
        &operation("kubectl-edit", "2025-01-01T00:02:00Z"),
        Scope::Whole,
        &no_other_version,
    );
    assert_eq!(later["metadata"].get("managedFields"), None);
    // Valid entries of its own replace the stored ones.
    let mut replaced = first.clone();
    replaced["metadata"]["managedFields"] = json!([{
        "manager": "someone", "operation": "Update", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}},
    }]);
    record(
        Some(&first),
        &mut replaced,
        CONFIG_MAP,
        &operation("kubectl-edit", "2025-01-01T00:01:00Z"),
        Scope::Whole,
        &no_other_version,
    );
    let found = entries(&replaced);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["manager"], "someone");
}

#[test]
fn the_oldest_update_managers_beyond_ten_become_ancient_changes() {
    let mut object = created(
        CONFIG_MAP,
        config_map(json!({"k0": "v"})),
        &operation("m0", "2025-01-01T00:00:00Z"),
        Scope::Whole,
    );
    for i in 1..12 {
        let old = object.clone();
        object["data"][format!("k{i}")] = json!("v");
        let manager = format!("m{i}");
        let time = format!("2025-01-01T00:00:{i:02}Z");
        record(
            Some(&old),
            &mut object,
            CONFIG_MAP,
            &operation(&manager, &time),
            Scope::Whole,
            &no_other_version,
        );
    }
    let found = entries(&object);
    assert_eq!(found.len(), 10, "{found:#?}");
    let ancient = found
        .iter()
        .find(|e| e["manager"] == ANCIENT_CHANGES)
        .expect("ancient-changes");
    // m0, m1 and m2 merged: twelve managers down to ten.
    assert_eq!(
        ancient["fieldsV1"],
        json!({"f:data": {".": {}, "f:k0": {}, "f:k1": {}, "f:k2": {}}})
    );
    assert!(!found.iter().any(|e| e["manager"] == "m1"));
    assert!(found.iter().any(|e| e["manager"] == "m3"));
}

#[test]
fn managers_come_from_the_field_manager_or_the_user_agent() {
    assert_eq!(
        manager(Some("kubectl-edit"), "kubectl/v1.33.0 (linux/amd64)"),
        "kubectl-edit"
    );
    assert_eq!(manager(None, "kubectl/v1.33.0 (linux/amd64)"), "kubectl");
    assert_eq!(manager(Some(""), "Go-http-client/2.0"), "Go-http-client");
    assert_eq!(manager(None, ""), "unknown");
    assert!(check_manager("kubectl-create").is_ok());
    assert!(check_manager(&"m".repeat(129)).is_err());
    assert!(check_manager("bad\u{7}name").is_err());
}

#[test]
fn empty_objects_hold_what_go_always_writes() {
    let pod = zero("k8s.io.api.core.v1.Pod");
    assert_eq!(pod["spec"]["containers"], Value::Null);
    assert!(pod["metadata"].is_object() && pod["status"].is_object());
    // The pod spec's optional lists are left out.
    assert_eq!(pod["spec"].get("volumes"), None);
    let deployment = zero(DEPLOYMENT);
    assert!(deployment["spec"]["template"]["spec"].is_object());
}
