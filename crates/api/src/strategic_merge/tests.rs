use serde_json::{Value, json};

use super::*;

fn message(group: &str, version: &str, kind: &str) -> &'static str {
    schema::kind(group, version, kind)
        .unwrap_or_else(|| panic!("no kind {group}/{version} {kind}"))
        .message
}

fn deployment() -> &'static str {
    message("apps", "v1", "Deployment")
}

fn pod() -> &'static str {
    message("", "v1", "Pod")
}

/// A Deployment whose pod template has `spec`.
fn deployment_with(spec: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec}}
    })
}

/// A patch of a Deployment's pod template spec.
fn template_patch(spec: Value) -> Value {
    json!({"spec": {"template": {"spec": spec}}})
}

/// A Pod with `spec`.
fn pod_with(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

struct Case {
    name: &'static str,
    message: &'static str,
    original: Value,
    patch: Value,
    want: Value,
}

fn check(cases: Vec<Case>) {
    for case in cases {
        let got = apply(&case.original, &case.patch, case.message);
        assert_eq!(got.as_ref(), Ok(&case.want), "{}", case.name);
    }
}

#[test]
fn kubectl_commands_give_upstreams_result() {
    let containers = json!([
        {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "sidecar", "image": "busybox:1"}
    ]);
    check(vec![
        Case {
            // The second `kubectl apply`: container `logger` added and `sidecar` removed, env `C`
            // added and `B` removed, as kubectl's three-way patch says it.
            name: "apply",
            message: deployment(),
            original: deployment_with(json!({"containers": containers})),
            patch: json!({"spec": {"replicas": 2, "template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "logger"}],
                "containers": [
                    {
                        "name": "web",
                        "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                        "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}]
                    },
                    {"name": "logger", "image": "fluentd:1"},
                    {"$patch": "delete", "name": "sidecar"}
                ]
            }}}}),
            want: {
                let mut want = deployment_with(json!({"containers": [
                    {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]},
                    {"name": "logger", "image": "fluentd:1"}
                ]}));
                want["spec"]["replicas"] = json!(2);
                want
            },
        },
        Case {
            name: "set image",
            message: deployment(),
            original: deployment_with(json!({"containers": containers})),
            patch: template_patch(
                json!({"containers": [{"name": "sidecar", "image": "busybox:2"}]}),
            ),
            want: deployment_with(json!({"containers": [
                {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "sidecar", "image": "busybox:2"}
            ]})),
        },
        Case {
            // `kubectl edit` sends a two-way patch, with the order of the list it touched.
            name: "edit",
            message: deployment(),
            original: deployment_with(json!({"containers": containers})),
            patch: template_patch(json!({
                "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                "containers": [{"name": "web", "image": "nginx:2", "env": [{"name": "B", "value": null}]}]
            })),
            want: deployment_with(json!({"containers": [
                {"name": "web", "image": "nginx:2", "env": [{"name": "A", "value": "1"}, {"name": "B"}]},
                {"name": "sidecar", "image": "busybox:1"}
            ]})),
        },
        Case {
            name: "rollout restart",
            message: deployment(),
            original: deployment_with(json!({"containers": containers})),
            patch: json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"
            }}}}}),
            want: {
                let mut want = deployment_with(json!({"containers": containers}));
                want["spec"]["template"]["metadata"]["annotations"] =
                    json!({"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"});
                want
            },
        },
    ]);
}

#[test]
fn lists_merge_on_their_merge_key() {
    let port_80 = json!({"containerPort": 80, "name": "http", "protocol": "TCP"});
    check(vec![
        Case {
            name: "container port changed in place, on containerPort",
            message: pod(),
            original: pod_with(json!({"containers": [{"name": "c", "ports": [port_80]}]})),
            patch: json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "name": "web"}]}]}}),
            want: pod_with(json!({"containers": [{"name": "c", "ports": [
                {"containerPort": 80, "name": "web", "protocol": "TCP"}
            ]}]})),
        },
        Case {
            // Without `$setElementOrder`, upstream puts an element the original lacks before
            // the original's.
            name: "container port added",
            message: pod(),
            original: pod_with(json!({"containers": [{"name": "c", "ports": [port_80]}]})),
            patch: json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 443, "name": "https"}]}]}}),
            want: pod_with(json!({"containers": [{"name": "c", "ports": [
                {"containerPort": 443, "name": "https"},
                port_80
            ]}]})),
        },
        Case {
            name: "service port changed in place, on port",
            message: message("", "v1", "Service"),
            original: json!({"spec": {"ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
            ]}}),
            patch: json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
            want: json!({"spec": {"ports": [
                {"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
            ]}}),
        },
        Case {
            name: "volume mounts on mountPath",
            message: pod(),
            original: pod_with(json!({"containers": [{"name": "c", "volumeMounts": [
                {"name": "data", "mountPath": "/data"}
            ]}]})),
            patch: json!({"spec": {"containers": [{"name": "c", "volumeMounts": [
                {"mountPath": "/data", "readOnly": true}
            ]}]}}),
            want: pod_with(json!({"containers": [{"name": "c", "volumeMounts": [
                {"name": "data", "mountPath": "/data", "readOnly": true}
            ]}]})),
        },
        Case {
            name: "owner references on uid",
            message: pod(),
            original: json!({"metadata": {"ownerReferences": [
                {"uid": "u1", "kind": "ReplicaSet", "name": "rs", "controller": true}
            ]}}),
            patch: json!({"metadata": {"ownerReferences": [{"uid": "u1", "blockOwnerDeletion": true}]}}),
            want: json!({"metadata": {"ownerReferences": [
                {"uid": "u1", "kind": "ReplicaSet", "name": "rs", "controller": true, "blockOwnerDeletion": true}
            ]}}),
        },
        Case {
            name: "conditions on type",
            message: pod(),
            original: json!({"status": {"conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "Initialized", "status": "True"}
            ]}}),
            patch: json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            want: json!({"status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Initialized", "status": "True"}
            ]}}),
        },
        Case {
            // `EphemeralContainer` inlines `EphemeralContainerCommon`, which declares `env`.
            name: "merge key found through an inlined message",
            message: pod(),
            original: pod_with(
                json!({"ephemeralContainers": [{"name": "debug", "env": [{"name": "A", "value": "1"}]}]}),
            ),
            patch: json!({"spec": {"ephemeralContainers": [{"name": "debug", "env": [{"name": "A", "value": "2"}]}]}}),
            want: pod_with(
                json!({"ephemeralContainers": [{"name": "debug", "env": [{"name": "A", "value": "2"}]}]}),
            ),
        },
        Case {
            // Upstream's "preserve the order from the patch in a merging list 2".
            name: "patch order kept among the original's elements",
            message: pod(),
            original: pod_with(json!({"containers": [{"name": "c", "env": [
                {"name": "1"}, {"name": "2", "value": "b"}, {"name": "3"}
            ]}]})),
            patch: json!({"spec": {"containers": [{"name": "c", "env": [
                {"name": "3", "value": "c"}, {"name": "1", "value": "a"}
            ]}]}}),
            want: pod_with(json!({"containers": [{"name": "c", "env": [
                {"name": "2", "value": "b"}, {"name": "3", "value": "c"}, {"name": "1", "value": "a"}
            ]}]})),
        },
    ]);
}

#[test]
fn set_element_order_places_server_only_elements_as_upstream() {
    let env = |names: Value| pod_with(json!({"containers": [{"name": "c", "env": names}]}));
    check(vec![
        Case {
            // Upstream's "add map and delete map from merging list": `4` was added on the
            // server; upstream's deletion and append in place leave it before `3`.
            name: "added and deleted, server-only element last seen in place",
            message: pod(),
            original: env(
                json!([{"name": "1"}, {"name": "2", "value": "b"}, {"name": "4", "value": "c"}]),
            ),
            patch: json!({"spec": {"containers": [{"name": "c",
                "$setElementOrder/env": [{"name": "2"}, {"name": "3"}],
                "env": [{"name": "3"}, {"$patch": "delete", "name": "1"}]
            }]}}),
            want: env(
                json!([{"name": "2", "value": "b"}, {"name": "4", "value": "c"}, {"name": "3"}]),
            ),
        },
        Case {
            // Upstream's "add map and delete map from merging list with conflict".
            name: "server-only element first",
            message: pod(),
            original: env(json!([{"name": "1", "value": "a"}, {"name": "4", "value": "c"}])),
            patch: json!({"spec": {"containers": [{"name": "c",
                "$setElementOrder/env": [{"name": "2"}, {"name": "3"}],
                "env": [{"name": "2"}, {"name": "3"}, {"$patch": "delete", "name": "1"}]
            }]}}),
            want: env(json!([{"name": "4", "value": "c"}, {"name": "2"}, {"name": "3"}])),
        },
        Case {
            name: "server-only element between kept ones",
            message: pod(),
            original: env(json!([{"name": "A"}, {"name": "X"}, {"name": "B"}])),
            patch: json!({"spec": {"containers": [{"name": "c",
                "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                "env": [{"name": "C"}, {"$patch": "delete", "name": "B"}]
            }]}}),
            want: env(json!([{"name": "A"}, {"name": "X"}, {"name": "C"}])),
        },
        Case {
            name: "reorder without content",
            message: pod(),
            original: env(json!([{"name": "A"}, {"name": "B"}])),
            patch: json!({"spec": {"containers": [{"name": "c",
                "$setElementOrder/env": [{"name": "B"}, {"name": "A"}]
            }]}}),
            want: env(json!([{"name": "B"}, {"name": "A"}])),
        },
        Case {
            // Upstream's "$setElementOrder contains item that is not present in the list".
            name: "order naming an element nowhere",
            message: pod(),
            original: env(json!([{"name": "1"}, {"name": "3"}])),
            patch: json!({"spec": {"containers": [{"name": "c",
                "$setElementOrder/env": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
                "env": [{"name": "3", "value": "3"}, {"name": "1", "value": "1"}]
            }]}}),
            want: env(json!([{"name": "3", "value": "3"}, {"name": "1", "value": "1"}])),
        },
        Case {
            name: "list the original lacks, less its deletions",
            message: pod(),
            original: pod_with(json!({"containers": [{"name": "c"}]})),
            patch: json!({"spec": {"containers": [{"name": "c",
                "$setElementOrder/env": [{"name": "A"}],
                "env": [{"name": "A", "value": "1"}, {"$patch": "delete", "name": "B"}]
            }]}}),
            want: env(json!([{"name": "A", "value": "1"}])),
        },
    ]);
}

#[test]
fn scalar_lists_merge_as_sets() {
    let finalizers = |list: Value| json!({"metadata": {"name": "p", "finalizers": list}});
    check(vec![
        Case {
            name: "union",
            message: pod(),
            original: finalizers(json!(["a", "b"])),
            patch: finalizers(json!(["b", "c"])),
            want: finalizers(json!(["a", "b", "c"])),
        },
        Case {
            name: "new value first",
            message: pod(),
            original: finalizers(json!(["a"])),
            patch: finalizers(json!(["c"])),
            want: finalizers(json!(["c", "a"])),
        },
        Case {
            name: "deleteFromPrimitiveList",
            message: pod(),
            original: finalizers(json!(["a", "b", "c"])),
            patch: json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}}),
            want: finalizers(json!(["a", "c"])),
        },
        Case {
            // Upstream's "add and delete items in lists of scalars".
            name: "deleteFromPrimitiveList with an addition and an order",
            message: pod(),
            original: finalizers(json!(["a", "b", "c"])),
            patch: json!({"metadata": {
                "$setElementOrder/finalizers": ["a", "b", "d"],
                "$deleteFromPrimitiveList/finalizers": ["c"],
                "finalizers": ["d"]
            }}),
            want: finalizers(json!(["a", "b", "d"])),
        },
        Case {
            name: "deleteFromPrimitiveList on a missing list adds nothing",
            message: pod(),
            original: json!({"metadata": {"name": "p"}}),
            patch: json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            want: json!({"metadata": {"name": "p"}}),
        },
        Case {
            // Upstream deletes from a list of any strategy.
            name: "deleteFromPrimitiveList on a list without the merge strategy",
            message: pod(),
            original: pod_with(json!({"containers": [{"name": "c", "args": ["-a", "-b"]}]})),
            patch: json!({"spec": {"containers": [{"name": "c", "$deleteFromPrimitiveList/args": ["-a"]}]}}),
            want: pod_with(json!({"containers": [{"name": "c", "args": ["-b"]}]})),
        },
    ]);
}

#[test]
fn directives() {
    check(vec![
        Case {
            name: "$patch: replace on a map",
            message: pod(),
            original: json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            patch: json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            want: json!({"metadata": {"labels": {"c": "3"}}}),
        },
        Case {
            name: "$patch: replace on a list",
            message: pod(),
            original: pod_with(
                json!({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}),
            ),
            patch: json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "z"}]}}),
            want: pod_with(json!({"containers": [{"name": "only", "image": "z"}]})),
        },
        Case {
            name: "$patch: delete on a map leaves it empty",
            message: deployment(),
            original: json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}}}),
            patch: json!({"spec": {"strategy": {"$patch": "delete"}}}),
            want: json!({"spec": {"strategy": {}}}),
        },
        Case {
            name: "$patch: delete removes every element with the key",
            message: pod(),
            original: pod_with(json!({"containers": [{"name": "c", "env": [
                {"name": "1"}, {"name": "1"}, {"name": "2", "value": "a"}, {"name": "3"}
            ]}]})),
            patch: json!({"spec": {"containers": [{"name": "c", "env": [{"$patch": "delete", "name": "1"}]}]}}),
            want: pod_with(
                json!({"containers": [{"name": "c", "env": [{"name": "2", "value": "a"}, {"name": "3"}]}]}),
            ),
        },
        Case {
            // `kubectl apply` switching a volume's source.
            name: "$retainKeys on a volume",
            message: pod(),
            original: pod_with(json!({"volumes": [
                {"name": "data", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "c"}}
            ]})),
            patch: json!({"spec": {
                "$setElementOrder/volumes": [{"name": "data"}, {"name": "cfg"}],
                "volumes": [{"$retainKeys": ["hostPath", "name"], "name": "data", "hostPath": {"path": "/x"}}]
            }}),
            want: pod_with(json!({"volumes": [
                {"name": "data", "hostPath": {"path": "/x"}},
                {"name": "cfg", "configMap": {"name": "c"}}
            ]})),
        },
        Case {
            name: "$retainKeys on a Deployment's strategy",
            message: deployment(),
            original: json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}}}),
            patch: json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
            want: json!({"spec": {"strategy": {"type": "Recreate"}}}),
        },
        Case {
            name: "unknown directive keys are dropped",
            message: pod(),
            original: json!({"metadata": {"name": "p"}}),
            patch: json!({"metadata": {"$unknown": 1, "labels": {"a": "1"}}}),
            want: json!({"metadata": {"name": "p", "labels": {"a": "1"}}}),
        },
    ]);
}

#[test]
fn maps_and_replaced_values() {
    check(vec![
        Case {
            name: "labels merge",
            message: pod(),
            original: json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            patch: json!({"metadata": {"labels": {"b": "3", "c": "4"}}}),
            want: json!({"metadata": {"labels": {"a": "1", "b": "3", "c": "4"}}}),
        },
        Case {
            name: "null deletes a label",
            message: pod(),
            original: json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            patch: json!({"metadata": {"labels": {"a": null}}}),
            want: json!({"metadata": {"labels": {"b": "2"}}}),
        },
        Case {
            name: "nulls where the original has nothing are dropped",
            message: pod(),
            original: json!({"metadata": {"name": "p"}}),
            patch: json!({"metadata": {"labels": {"a": null, "b": "1"}, "annotations": null}}),
            want: json!({"metadata": {"name": "p", "labels": {"b": "1"}}}),
        },
        Case {
            name: "quantities merge by resource name",
            message: pod(),
            original: pod_with(
                json!({"containers": [{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}),
            ),
            patch: json!({"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "2"}}}]}}),
            want: pod_with(
                json!({"containers": [{"name": "c", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}]}),
            ),
        },
        Case {
            name: "unknown fields merge as maps, their lists are replaced",
            message: deployment(),
            original: json!({"spec": {"extra": {"a": 1, "list": [1, 2], "deep": {"x": 1}}}}),
            patch: json!({"spec": {"extra": {"b": 2, "list": [3], "deep": {"y": 2}}}}),
            want: json!({"spec": {"extra": {"a": 1, "b": 2, "list": [3], "deep": {"x": 1, "y": 2}}}}),
        },
        Case {
            name: "args replaced",
            message: pod(),
            original: pod_with(json!({"containers": [{"name": "c", "args": ["-a", "-b"]}]})),
            patch: json!({"spec": {"containers": [{"name": "c", "args": ["-c"]}]}}),
            want: pod_with(json!({"containers": [{"name": "c", "args": ["-c"]}]})),
        },
        Case {
            name: "tolerations replaced",
            message: pod(),
            original: pod_with(
                json!({"tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]}),
            ),
            patch: json!({"spec": {"tolerations": [{"key": "a", "effect": "NoSchedule"}]}}),
            want: pod_with(json!({"tolerations": [{"key": "a", "effect": "NoSchedule"}]})),
        },
        Case {
            name: "RawExtension replaced whole",
            message: message("apps", "v1", "ControllerRevision"),
            original: json!({"data": {"spec": {"a": 1, "b": 2}}, "revision": 1}),
            patch: json!({"data": {"spec": {"c": 3}}}),
            want: json!({"data": {"spec": {"c": 3}}, "revision": 1}),
        },
        Case {
            name: "a value of another type replaces",
            message: deployment(),
            original: json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1}}}}),
            patch: json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": "50%"}}}}),
            want: json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": "50%"}}}}),
        },
        Case {
            name: "null patch changes nothing",
            message: pod(),
            original: json!({"metadata": {"name": "p"}}),
            patch: Value::Null,
            want: json!({"metadata": {"name": "p"}}),
        },
    ]);
}

#[test]
fn malformed_patches_are_refused() {
    let mut original =
        pod_with(json!({"containers": [{"name": "c", "env": [{"name": "A"}]}], "volumes": []}));
    // Where the original has no labels, upstream drops a patch's `$patch` object unread.
    original["metadata"]["labels"] = json!({"a": "1"});
    let containers = |c: Value| json!({"spec": {"containers": c}});
    let cases: Vec<(&str, Value, SmpError)> = vec![
        (
            "patch not an object",
            json!([1]),
            SmpError::PatchNotAnObject { found: "array" },
        ),
        (
            "patch a string",
            json!("x"),
            SmpError::PatchNotAnObject { found: "string" },
        ),
        (
            "delete without the merge key",
            containers(json!([{"$patch": "delete", "image": "x"}])),
            SmpError::NoMergeKey {
                map: "map[$patch:delete image:x]".into(),
                key: "name".into(),
            },
        ),
        (
            "element without the merge key",
            containers(json!([{"image": "x"}])),
            SmpError::NoMergeKey {
                map: "map[image:x]".into(),
                key: "name".into(),
            },
        ),
        (
            "unknown directive in a map",
            json!({"metadata": {"labels": {"$patch": "merge"}}}),
            SmpError::BadPatchType {
                directive: "merge".into(),
                map: "map[$patch:merge]".into(),
            },
        ),
        (
            "merge directive in a list",
            containers(json!([{"$patch": "merge"}])),
            SmpError::MergeDirectiveInList,
        ),
        (
            "unknown directive in a list",
            containers(json!([{"$patch": "nope", "name": "c"}])),
            SmpError::BadPatchType {
                directive: "nope".into(),
                map: "map[$patch:nope name:c]".into(),
            },
        ),
        (
            "order not matching the patch list",
            containers(
                json!([{"name": "c", "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                "env": [{"name": "B"}, {"name": "A"}]}]),
            ),
            SmpError::SetElementOrderMismatch {
                patch: "[map[name:B] map[name:A]]".into(),
                order: "[map[name:A] map[name:B]]".into(),
            },
        ),
        (
            "order not a list",
            json!({"spec": {"$setElementOrder/containers": "c"}}),
            SmpError::BadArgType {
                expected: "[]interface {}",
                found: "string",
            },
        ),
        (
            "order naming no list",
            json!({"spec": {"$setElementOrder": []}}),
            SmpError::SetElementOrderFormat,
        ),
        (
            "deletion naming no list",
            json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
            SmpError::PrimitiveListFormat,
        ),
        (
            "retainKeys not a list",
            json!({"spec": {"$retainKeys": "a"}}),
            SmpError::RetainKeysFormat,
        ),
        (
            "retainKeys missing a patched key",
            json!({"spec": {"$retainKeys": ["volumes"], "hostname": "h"}}),
            SmpError::RetainKeysFormat,
        ),
        (
            "list of lists",
            json!({"spec": {"volumes": [["a"]]}}),
            SmpError::ListOfLists,
        ),
        (
            "mixed element types",
            json!({"spec": {"containers": ["c"]}}),
            SmpError::MixedElementTypes {
                lists: "[[map[env:[map[name:A]] name:c]] [c]]".into(),
            },
        ),
    ];
    for (name, patch, want) in cases {
        assert_eq!(apply(&original, &patch, pod()), Err(want), "{name}");
    }
    assert_eq!(
        apply(&original, &json!({}), "k8s.io.api.core.v1.Nope"),
        Err(SmpError::UnknownMessage("k8s.io.api.core.v1.Nope".into()))
    );
    assert_eq!(
        apply(&json!([]), &json!({}), pod()),
        Err(SmpError::OriginalNotAnObject)
    );
}

#[test]
fn errors_map_to_upstreams_status_codes() {
    let cases = [
        (SmpError::PatchNotAnObject { found: "array" }, 400),
        (SmpError::SetElementOrderFormat, 400),
        (SmpError::RetainKeysFormat, 400),
        (SmpError::PrimitiveListFormat, 400),
        (SmpError::ListOfLists, 422),
        (SmpError::MergeDirectiveInList, 500),
        (
            SmpError::NoMergeKey {
                map: "map[]".into(),
                key: "name".into(),
            },
            500,
        ),
    ];
    for (error, status) in cases {
        assert_eq!(error.http_status(), status, "{error}");
    }
}

#[test]
fn values_print_as_gos_percent_v() {
    let cases = [
        (json!(80), "80"),
        (json!(1.5), "1.5"),
        (json!(-2), "-2"),
        (json!(123456), "123456"),
        (json!(1000000), "1e+06"),
        (json!(1234567), "1.234567e+06"),
        (json!(0.0001), "0.0001"),
        (json!(0.00001), "1e-05"),
        (json!(null), "<nil>"),
        (json!(true), "true"),
        (
            json!({"b": [1, "x"], "a": {"c": null}}),
            "map[a:map[c:<nil>] b:[1 x]]",
        ),
    ];
    for (value, want) in cases {
        assert_eq!(go_format(&value), want, "{value}");
    }
}
