use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::schemas::{json_fields, proto_name};
use super::*;
use crate::registry::{self, RESOURCES};
use crate::schema;

fn core_v1() -> &'static Value {
    v3_document("", "v1").expect("api/v1 is served")
}

fn apps_v1() -> &'static Value {
    v3_document("apps", "v1").expect("apis/apps/v1 is served")
}

fn schema_of<'a>(document: &'a Value, name: &str) -> &'a Value {
    let schemas = document
        .pointer("/components/schemas")
        .or_else(|| document.get("definitions"))
        .expect("a document with schemas");
    schemas
        .get(name)
        .unwrap_or_else(|| panic!("no schema {name}"))
}

fn property<'a>(document: &'a Value, schema: &str, name: &str) -> &'a Value {
    schema_of(document, schema)
        .pointer(&format!("/properties/{name}"))
        .unwrap_or_else(|| panic!("{schema} has no property {name}"))
}

fn operation<'a>(document: &'a Value, path: &str, method: &str) -> &'a Value {
    document["paths"]
        .get(path)
        .unwrap_or_else(|| panic!("no path {path}"))
        .get(method)
        .unwrap_or_else(|| panic!("no {method} on {path}"))
}

fn param_names(operation: &Value) -> Vec<&str> {
    operation["parameters"]
        .as_array()
        .map(|params| params.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default()
}

/// Every document served: each v3 document and the v2 document.
fn every_document() -> Vec<(String, &'static Value)> {
    let mut out: Vec<(String, &'static Value)> = super::v3::documents()
        .by_path
        .iter()
        .map(|(path, document)| (format!("v3 {path}"), document))
        .collect();
    out.push(("v2".into(), v2_document()));
    out
}

#[test]
fn index_lists_every_served_group_version_with_its_url() {
    let index = v3_index();
    let paths = index["paths"].as_object().expect("paths");
    for path in [
        "api/v1",
        "apis/apps/v1",
        "apis/autoscaling/v2",
        "apis/autoscaling/v1",
    ] {
        let url = paths
            .get(path)
            .and_then(|p| p["serverRelativeURL"].as_str())
            .unwrap_or_else(|| panic!("index has no {path}"));
        let hash = url
            .strip_prefix(&format!("/openapi/v3/{path}?hash="))
            .unwrap_or_else(|| panic!("{path}: {url}"));
        assert_eq!(hash.len(), 32, "{url}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{url}");
    }
    let served = schemas::served_group_versions().len();
    assert_eq!(paths.len(), served);
    for (group, version) in schemas::served_group_versions() {
        assert!(v3_document(group, version).is_some(), "{group}/{version}");
    }
    assert!(v3_document("apps", "v1beta1").is_none());
    assert!(v3_document("", "v2").is_none());
    assert!(v3_document("example.com", "v1").is_none());
}

#[test]
fn hashes_tell_documents_apart_and_are_stable() {
    let a = json!({"openapi": "3.0.0", "paths": {}});
    let b = json!({"openapi": "3.0.0", "paths": {"/x": {}}});
    assert_eq!(document_hash(&a), document_hash(&a.clone()));
    assert_ne!(document_hash(&a), document_hash(&b));
    let index = v3_index();
    let urls: BTreeSet<&str> = index["paths"]
        .as_object()
        .expect("paths")
        .values()
        .filter_map(|p| p["serverRelativeURL"].as_str())
        .map(|url| url.rsplit_once("hash=").map_or(url, |(_, hash)| hash))
        .collect();
    assert_eq!(urls.len(), schemas::served_group_versions().len());
}

#[test]
fn documents_are_openapi_3_with_upstream_info() {
    for (group, version) in schemas::served_group_versions() {
        let document = v3_document(group, version).expect("served");
        assert_eq!(document["openapi"], "3.0.0");
        assert_eq!(
            document["info"],
            json!({"title": "Kubernetes", "version": "v1.33.0"})
        );
        assert!(document["components"]["schemas"].is_object());
    }
    let v2 = v2_document();
    assert_eq!(v2["swagger"], "2.0");
    assert!(v2["definitions"].is_object());
}

#[test]
fn pod_paths_have_upstream_operations() {
    let doc = core_v1();
    let object = "/api/v1/namespaces/{namespace}/pods/{name}";
    let cases = [
        ("get", "readCoreV1NamespacedPod", "get"),
        ("put", "replaceCoreV1NamespacedPod", "put"),
        ("patch", "patchCoreV1NamespacedPod", "patch"),
        ("delete", "deleteCoreV1NamespacedPod", "delete"),
    ];
    for (method, id, action) in cases {
        let op = operation(doc, object, method);
        assert_eq!(op["operationId"], id, "{method}");
        assert_eq!(op["x-kubernetes-action"], action, "{method}");
        assert_eq!(
            op["x-kubernetes-group-version-kind"],
            json!({"group": "", "kind": "Pod", "version": "v1"})
        );
    }
    assert!(doc["paths"][object].get("post").is_none());
    let path_params = param_names(&doc["paths"][object]);
    assert_eq!(path_params, ["name", "namespace", "pretty"]);

    let collection = "/api/v1/namespaces/{namespace}/pods";
    let list = operation(doc, collection, "get");
    assert_eq!(list["operationId"], "listCoreV1NamespacedPod");
    assert_eq!(list["x-kubernetes-action"], "list");
    assert!(param_names(list).contains(&"labelSelector"));
    assert_eq!(
        list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodList"
    );
    let create = operation(doc, collection, "post");
    assert_eq!(create["operationId"], "createCoreV1NamespacedPod");
    assert_eq!(
        create["requestBody"]["content"]["*/*"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Pod"
    );
    assert_eq!(
        param_names(create),
        ["dryRun", "fieldManager", "fieldValidation"]
    );
    let delete_collection = operation(doc, collection, "delete");
    assert_eq!(
        delete_collection["operationId"],
        "deleteCoreV1CollectionNamespacedPod"
    );
    assert_eq!(delete_collection["x-kubernetes-action"], "deletecollection");

    let all = operation(doc, "/api/v1/pods", "get");
    assert_eq!(all["operationId"], "listCoreV1PodForAllNamespaces");
    let watch = operation(
        doc,
        "/api/v1/watch/namespaces/{namespace}/pods/{name}",
        "get",
    );
    assert_eq!(watch["operationId"], "watchCoreV1NamespacedPod");
    assert_eq!(watch["x-kubernetes-action"], "watch");

    let ids: &[(&str, &str, &str)] = &[
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/status",
            "patch",
            "patchCoreV1NamespacedPodStatus",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            "get",
            "readCoreV1NamespacedPodLog",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            "get",
            "connectCoreV1GetNamespacedPodExec",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            "post",
            "connectCoreV1PostNamespacedPodExec",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}",
            "put",
            "connectCoreV1PutNamespacedPodProxyWithPath",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
            "post",
            "createCoreV1NamespacedPodEviction",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers",
            "patch",
            "patchCoreV1NamespacedPodEphemeralcontainers",
        ),
        (
            "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            "post",
            "createCoreV1NamespacedServiceAccountToken",
        ),
        (
            "/api/v1/namespaces/{name}/finalize",
            "put",
            "replaceCoreV1NamespaceFinalize",
        ),
        ("/api/v1/nodes/{name}", "get", "readCoreV1Node"),
        ("/api/v1/watch/nodes", "get", "watchCoreV1NodeList"),
        (
            "/api/v1/namespaces/{namespace}/bindings",
            "post",
            "createCoreV1NamespacedBinding",
        ),
        ("/api/v1/", "get", "getCoreV1APIResources"),
    ];
    for (path, method, id) in ids {
        assert_eq!(
            operation(doc, path, method)["operationId"],
            *id,
            "{method} {path}"
        );
    }
    let eviction = operation(
        doc,
        "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
        "post",
    );
    assert_eq!(
        eviction["x-kubernetes-group-version-kind"],
        json!({"group": "policy", "kind": "Eviction", "version": "v1"})
    );
    assert!(
        doc["paths"]
            .get("/api/v1/namespaces/{namespace}/bindings/{name}")
            .is_none()
    );
}

#[test]
fn patch_of_deployments_takes_every_patch_type_and_validates_fields() {
    let doc = apps_v1();
    let path = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}";
    let patch = operation(doc, path, "patch");
    assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
    let content = patch["requestBody"]["content"]
        .as_object()
        .expect("patch content");
    let types: Vec<&str> = content.keys().map(String::as_str).collect();
    assert_eq!(
        types,
        [
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ]
    );
    for body in content.values() {
        assert_eq!(
            body["schema"]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
        );
    }
    let field_validation = patch["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "fieldValidation")
        .expect("fieldValidation");
    assert_eq!(field_validation["in"], "query");
    assert_eq!(field_validation["schema"]["type"], "string");
    assert_eq!(
        param_names(patch),
        ["dryRun", "fieldManager", "fieldValidation", "force"]
    );
    let ok = &patch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(ok, "#/components/schemas/io.k8s.api.apps.v1.Deployment");
    let scale = operation(doc, &format!("{path}/scale"), "patch");
    assert_eq!(scale["operationId"], "patchAppsV1NamespacedDeploymentScale");
    assert_eq!(
        scale["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
    );
    schema_of(doc, "io.k8s.api.autoscaling.v1.Scale");
}

/// kubectl looks for the PATCH operation of an object's kind (by its group-version-kind, in any
/// path of the group-version's document) and takes server-side field validation as supported
/// when it has a `fieldValidation` query parameter; apply uses strategic merge when the
/// operation accepts it. A PATCH without them makes kubectl validate on the client or use merge
/// patch, so every PATCH operation of a kind needs both.
#[test]
fn every_patchable_kind_validates_fields_and_takes_strategic_merge() {
    for r in RESOURCES.iter().filter(|r| r.allows("patch")) {
        let doc = v3_document(r.group, r.version).expect("served");
        let gvk = json!({"group": r.group, "kind": r.kind, "version": r.version});
        let patches: Vec<&Value> = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .filter_map(|item| item.get("patch"))
            .filter(|op| op["x-kubernetes-group-version-kind"] == gvk)
            .collect();
        assert!(!patches.is_empty(), "{} has no PATCH", r.kind);
        for op in patches {
            let id = &op["operationId"];
            assert!(param_names(op).contains(&"fieldValidation"), "{id}");
            let strategic = &op["requestBody"]["content"]["application/strategic-merge-patch+json"];
            assert!(strategic.is_object(), "{id}");
        }
    }
}

/// `kubectl explain` finds a resource's kind on the GET or POST of its collection path (the
/// cluster-wide one first), then the schema carrying that kind.
#[test]
fn explain_finds_the_schema_of_every_listed_resource() {
    for r in RESOURCES.iter().filter(|r| r.allows("list")) {
        let doc = v3_document(r.group, r.version).expect("served");
        let prefix = if r.group.is_empty() {
            format!("/api/{}", r.version)
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        let cluster = format!("{prefix}/{}", r.plural);
        let namespaced = format!("{prefix}/namespaces/{{namespace}}/{}", r.plural);
        let item = doc["paths"]
            .get(&cluster)
            .or_else(|| doc["paths"].get(&namespaced))
            .unwrap_or_else(|| panic!("no collection path for {}", r.plural));
        let op = item
            .get("get")
            .or_else(|| item.get("post"))
            .expect("get or post");
        let gvk = &op["x-kubernetes-group-version-kind"];
        assert_eq!(
            gvk,
            &json!({"group": r.group, "kind": r.kind, "version": r.version})
        );
        let holders: Vec<&String> = doc["components"]["schemas"]
            .as_object()
            .expect("schemas")
            .iter()
            .filter(|(_, s)| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|gvks| gvks.contains(gvk))
            })
            .map(|(name, _)| name)
            .collect();
        assert_eq!(holders.len(), 1, "{gvk}: {holders:?}");
    }
}

#[test]
fn kinds_carry_their_group_version_kind() {
    let doc = core_v1();
    let cases = [
        (
            "io.k8s.api.core.v1.Pod",
            json!([{"group": "", "kind": "Pod", "version": "v1"}]),
        ),
        (
            "io.k8s.api.core.v1.PodList",
            json!([{"group": "", "kind": "PodList", "version": "v1"}]),
        ),
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
            json!([{"group": "", "kind": "Status", "version": "v1"}]),
        ),
    ];
    for (name, want) in cases {
        assert_eq!(
            schema_of(doc, name)["x-kubernetes-group-version-kind"],
            want,
            "{name}"
        );
    }
    let deployment = schema_of(apps_v1(), "io.k8s.api.apps.v1.Deployment");
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    let pod_spec = schema_of(doc, "io.k8s.api.core.v1.PodSpec");
    assert!(pod_spec.get("x-kubernetes-group-version-kind").is_none());
    let delete_options = schema_of(doc, "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions");
    let gvks = delete_options["x-kubernetes-group-version-kind"]
        .as_array()
        .expect("gvks");
    assert!(gvks.contains(&json!({"group": "apps", "kind": "DeleteOptions", "version": "v1"})));
    assert!(gvks.contains(&json!({"group": "", "kind": "DeleteOptions", "version": "v1"})));
}

#[test]
fn fields_carry_upstream_patch_and_list_markers() {
    let documents = [
        ("v3 api/v1", core_v1()),
        ("v3 apis/apps/v1", apps_v1()),
        ("v2", v2_document()),
    ];
    for (name, doc) in documents {
        let containers = property(doc, "io.k8s.api.core.v1.PodSpec", "containers");
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name", "{name}");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge", "{name}");
        assert_eq!(containers["x-kubernetes-list-type"], "map", "{name}");
        assert_eq!(
            containers["x-kubernetes-list-map-keys"],
            json!(["name"]),
            "{name}"
        );
        let volumes = property(doc, "io.k8s.api.core.v1.PodSpec", "volumes");
        assert_eq!(
            volumes["x-kubernetes-patch-strategy"], "merge,retainKeys",
            "{name}"
        );
        assert_eq!(volumes["x-kubernetes-patch-merge-key"], "name", "{name}");
        let ports = property(doc, "io.k8s.api.core.v1.Container", "ports");
        assert_eq!(
            ports["x-kubernetes-patch-merge-key"], "containerPort",
            "{name}"
        );
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"]),
            "{name}"
        );
        let args = property(doc, "io.k8s.api.core.v1.Container", "args");
        assert_eq!(args["x-kubernetes-list-type"], "atomic", "{name}");
        assert!(args.get("x-kubernetes-patch-strategy").is_none(), "{name}");
        let image = property(doc, "io.k8s.api.core.v1.Container", "image");
        let markers = image
            .as_object()
            .expect("image")
            .keys()
            .filter(|k| k.starts_with("x-kubernetes-"))
            .count();
        assert_eq!(markers, 0, "{name}");
        let finalizers = property(
            doc,
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "finalizers",
        );
        assert_eq!(finalizers["x-kubernetes-list-type"], "set", "{name}");
        let owners = property(
            doc,
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "ownerReferences",
        );
        assert_eq!(owners["x-kubernetes-patch-merge-key"], "uid", "{name}");
        // A message's `+structType` is the schema's map type.
        let owner = schema_of(doc, "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference");
        assert_eq!(owner["x-kubernetes-map-type"], "atomic", "{name}");
        // Markers of an inlined message's fields: `Volume` inlines `VolumeSource`.
        let projected = property(doc, "io.k8s.api.core.v1.Volume", "projected");
        assert!(projected.get("description").is_some(), "{name}");
        let node_selector = property(doc, "io.k8s.api.core.v1.PodSpec", "nodeSelector");
        assert_eq!(node_selector["x-kubernetes-map-type"], "atomic", "{name}");
    }
    let apps = apps_v1();
    let strategy = property(apps, "io.k8s.api.apps.v1.DeploymentSpec", "strategy");
    assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    let selector = property(core_v1(), "io.k8s.api.core.v1.ServiceSpec", "selector");
    assert_eq!(selector["x-kubernetes-map-type"], "atomic");
}

#[test]
fn schemas_have_descriptions_types_and_required_fields() {
    let doc = core_v1();
    let containers = property(doc, "io.k8s.api.core.v1.PodSpec", "containers");
    let description = containers["description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("List of containers belonging to the pod."),
        "{description}"
    );
    assert_eq!(containers["type"], "array");
    assert_eq!(
        containers["items"],
        json!({"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"})
    );
    let pod_spec = schema_of(doc, "io.k8s.api.core.v1.PodSpec");
    assert_eq!(pod_spec["required"], json!(["containers"]));
    assert_eq!(pod_spec["type"], "object");
    assert!(
        pod_spec["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    let container = schema_of(doc, "io.k8s.api.core.v1.Container");
    assert_eq!(container["required"], json!(["name"]));
    // A reference with a description is wrapped in `allOf`, as `kubectl explain` reads it.
    let spec = property(doc, "io.k8s.api.core.v1.Pod", "spec");
    assert_eq!(
        spec["allOf"],
        json!([{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}])
    );
    assert!(spec.get("$ref").is_none());
    assert!(
        spec["description"]
            .as_str()
            .is_some_and(|d| d.contains("Specification"))
    );
    // k8s-openapi requires metadata; upstream does not.
    let pod = schema_of(doc, "io.k8s.api.core.v1.Pod");
    assert!(pod.get("required").is_none(), "{}", pod["required"]);
    let binding = schema_of(doc, "io.k8s.api.core.v1.Binding");
    assert_eq!(binding["required"], json!(["target"]));
    let pod_list = schema_of(doc, "io.k8s.api.core.v1.PodList");
    assert_eq!(pod_list["required"], json!(["items"]));
    let items = &pod_list["properties"]["items"];
    assert_eq!(
        items["items"],
        json!({"$ref": "#/components/schemas/io.k8s.api.core.v1.Pod"})
    );
}

#[test]
fn special_types_have_upstream_shapes() {
    let v3 = core_v1();
    let int_or_string = schema_of(v3, "io.k8s.apimachinery.pkg.util.intstr.IntOrString");
    assert_eq!(int_or_string["format"], "int-or-string");
    assert_eq!(
        int_or_string["oneOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    assert!(int_or_string.get("x-kubernetes-int-or-string").is_none());
    assert!(int_or_string["description"].is_string());
    let quantity = schema_of(v3, "io.k8s.apimachinery.pkg.api.resource.Quantity");
    assert_eq!(
        quantity["oneOf"],
        json!([{"type": "string"}, {"type": "number"}])
    );
    assert!(quantity.get("x-kubernetes-int-or-string").is_none());
    let time = schema_of(v3, "io.k8s.apimachinery.pkg.apis.meta.v1.Time");
    assert_eq!(
        (&time["type"], &time["format"]),
        (&json!("string"), &json!("date-time"))
    );
    let raw = schema_of(apps_v1(), "io.k8s.apimachinery.pkg.runtime.RawExtension");
    assert_eq!(raw["type"], "object");

    let v2 = v2_document();
    let int_or_string = schema_of(v2, "io.k8s.apimachinery.pkg.util.intstr.IntOrString");
    assert_eq!(int_or_string["type"], "string");
    assert_eq!(int_or_string["format"], "int-or-string");
    let quantity = schema_of(v2, "io.k8s.apimachinery.pkg.api.resource.Quantity");
    assert_eq!(quantity["type"], "string");
    assert!(quantity.get("oneOf").is_none());
}

#[test]
fn every_ref_resolves_within_its_document() {
    for (name, doc) in every_document() {
        let (prefix, schemas) = match doc.get("definitions") {
            Some(definitions) => ("#/definitions/", definitions),
            None => ("#/components/schemas/", &doc["components"]["schemas"]),
        };
        let mut refs = Vec::new();
        raw_refs(doc, &mut refs);
        assert!(!refs.is_empty(), "{name}");
        for reference in refs {
            let target = reference
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{name}: {reference} is not under {prefix}"));
            assert!(
                schemas.get(target).is_some(),
                "{name}: {reference} does not resolve"
            );
        }
        // Only what the paths reach: no schema of another group-version's kinds.
        if name == "v3 apis/apps/v1" {
            assert!(schemas.get("io.k8s.api.batch.v1.Job").is_none());
        }
    }
}

fn raw_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                match (key.as_str(), child.as_str()) {
                    ("$ref", Some(reference)) => out.push(reference),
                    _ => raw_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| raw_refs(item, out)),
        _ => {}
    }
}

#[test]
fn v2_document_has_swagger_shapes() {
    let doc = v2_document();
    let path = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}";
    let patch = operation(doc, path, "patch");
    let consumes: Vec<&str> = patch["consumes"]
        .as_array()
        .expect("consumes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(consumes, paths::PATCH_TYPES);
    let params = patch["parameters"].as_array().expect("parameters");
    let body = params.iter().find(|p| p["in"] == "body").expect("body");
    assert_eq!(
        body["schema"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
    );
    let field_validation = params
        .iter()
        .find(|p| p["name"] == "fieldValidation")
        .expect("fieldValidation");
    assert_eq!(
        (&field_validation["in"], &field_validation["type"]),
        (&json!("query"), &json!("string"))
    );
    assert_eq!(
        patch["responses"]["200"]["schema"]["$ref"],
        "#/definitions/io.k8s.api.apps.v1.Deployment"
    );
    // Swagger 2.0 keeps a reference's description beside it, as upstream's v2 document does.
    let spec = property(doc, "io.k8s.api.core.v1.Pod", "spec");
    assert_eq!(spec["$ref"], "#/definitions/io.k8s.api.core.v1.PodSpec");
    assert!(spec["description"].is_string());
    assert!(spec.get("allOf").is_none());
    // Every group-version's paths are in the one document.
    for r in RESOURCES {
        let prefix = if r.group.is_empty() {
            format!("/api/{}/", r.version)
        } else {
            format!("/apis/{}/{}/", r.group, r.version)
        };
        assert!(doc["paths"].get(&prefix).is_some(), "{prefix}");
    }
}

#[test]
fn operation_ids_are_unique() {
    let mut seen = BTreeSet::new();
    for item in v2_document()["paths"].as_object().expect("paths").values() {
        for (method, op) in item.as_object().expect("path item") {
            if method == "parameters" {
                continue;
            }
            let id = op["operationId"].as_str().expect("operationId");
            assert!(seen.insert(id.to_owned()), "{id} twice");
        }
    }
    let ids = [
        "patchRbacAuthorizationV1ClusterRole",
        "listNetworkingV1NamespacedIngress",
        "readAutoscalingV2NamespacedHorizontalPodAutoscalerStatus",
        "watchDiscoveryV1EndpointSliceListForAllNamespaces",
        "deleteEventsV1CollectionNamespacedEvent",
        "readAppsV1NamespacedDeploymentScale",
    ];
    for id in ids {
        assert!(seen.contains(id), "{id}");
    }
}

#[test]
fn every_served_kind_has_a_type() {
    for r in RESOURCES {
        assert!(
            kinds::find(r.group, r.version, r.kind).is_some(),
            "{}/{} {}",
            r.group,
            r.version,
            r.kind
        );
        for sub in r.subresources {
            if matches!(
                sub.name,
                "attach" | "exec" | "portforward" | "proxy" | "log"
            ) {
                continue;
            }
            let (group, version) = if sub.version.is_empty() {
                (r.group, r.version)
            } else {
                (sub.group, sub.version)
            };
            assert!(
                kinds::find(group, version, sub.kind).is_some(),
                "{}/{}: {group}/{version} {}",
                r.plural,
                sub.name,
                sub.kind
            );
        }
    }
    assert!(registry::find("", "v1", "pods").is_some());
}

/// The markers come from the protobuf message of each schema: a schema without one would
/// silently lose them.
#[test]
fn every_object_schema_has_a_protobuf_message() {
    assert_eq!(
        proto_name("io.k8s.api.core.v1.Pod").as_deref(),
        Some("k8s.io.api.core.v1.Pod")
    );
    assert_eq!(
        proto_name("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON").as_deref(),
        Some("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON")
    );
    let doc = v2_document();
    for (name, definition) in doc["definitions"].as_object().expect("definitions") {
        if definition.get("properties").is_none() {
            continue;
        }
        let proto = proto_name(name).unwrap_or_default();
        let message = schema::message(&proto).unwrap_or_else(|| panic!("{name}: no {proto}"));
        let mut fields = BTreeMap::new();
        json_fields(message, &mut fields);
        for property in definition["properties"]
            .as_object()
            .expect("properties")
            .keys()
        {
            // Protobuf messages leave out `TypeMeta`.
            let type_meta = matches!(property.as_str(), "apiVersion" | "kind");
            assert!(
                fields.contains_key(property.as_str()) || type_meta,
                "{name}.{property} is not a field of {proto}"
            );
        }
    }
}

/// The fields of one protobuf message: (field number, wire type, payload); a varint's payload
/// is its value in little-endian bytes.
fn proto_fields(mut bytes: &[u8]) -> Vec<(u64, u8, Vec<u8>)> {
    fn varint(bytes: &mut &[u8]) -> u64 {
        let mut value = 0;
        for shift in (0..64).step_by(7) {
            let (byte, rest) = bytes.split_first().expect("a varint");
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes);
        let wire = (key & 7) as u8;
        let payload = match wire {
            0 => varint(&mut bytes).to_le_bytes().to_vec(),
            2 => {
                let len = usize::try_from(varint(&mut bytes)).expect("length");
                let (payload, rest) = bytes.split_at(len);
                bytes = rest;
                payload.to_vec()
            }
            other => panic!("wire type {other}"),
        };
        out.push((key >> 3, wire, payload));
    }
    out
}

fn proto_field(bytes: &[u8], number: u64) -> Vec<Vec<u8>> {
    proto_fields(bytes)
        .into_iter()
        .filter(|(n, _, _)| *n == number)
        .map(|(_, _, payload)| payload)
        .collect()
}

fn proto_string(bytes: &[u8], number: u64) -> String {
    let payload = proto_field(bytes, number).pop().unwrap_or_default();
    String::from_utf8(payload).expect("utf-8")
}

/// The value (field 2) of the `Named…` entry called `name` among `entries`.
fn proto_named(entries: Vec<Vec<u8>>, name: &str) -> Vec<u8> {
    entries
        .into_iter()
        .find(|entry| proto_string(entry, 1) == name)
        .and_then(|entry| proto_field(&entry, 2).pop())
        .unwrap_or_else(|| panic!("no entry {name}"))
}

#[test]
fn v2_protobuf_carries_the_document() {
    let document = v2_document_protobuf();
    assert_eq!(proto_string(document, 1), "2.0");
    let info = proto_field(document, 2).pop().expect("info");
    assert_eq!(proto_string(&info, 2), "v1.33.0");

    // definitions (9) → NamedSchema (1) → Schema
    let definitions = proto_field(document, 9).pop().expect("definitions");
    let pod = proto_named(proto_field(&definitions, 1), "io.k8s.api.core.v1.Pod");
    assert!(proto_string(&pod, 4).starts_with("Pod is a collection of containers"));
    let gvk = proto_named(proto_field(&pod, 31), "x-kubernetes-group-version-kind");
    let yaml: Value = serde_json::from_str(&proto_string(&gvk, 2)).expect("JSON, which is YAML");
    assert_eq!(yaml, json!([{"group": "", "kind": "Pod", "version": "v1"}]));
    // properties (25) → spec: a reference with its description.
    let properties = proto_field(&pod, 25).pop().expect("properties");
    let spec = proto_named(proto_field(&properties, 1), "spec");
    assert_eq!(
        proto_string(&spec, 1),
        "#/definitions/io.k8s.api.core.v1.PodSpec"
    );
    assert!(!proto_string(&spec, 4).is_empty());
    let pod_spec = proto_named(proto_field(&definitions, 1), "io.k8s.api.core.v1.PodSpec");
    assert_eq!(proto_field(&pod_spec, 19), [b"containers".to_vec()]);
    let properties = proto_field(&pod_spec, 25).pop().expect("properties");
    let containers = proto_named(proto_field(&properties, 1), "containers");
    let ty = proto_field(&containers, 22).pop().expect("type");
    assert_eq!(proto_string(&ty, 1), "array");
    let merge_key = proto_named(proto_field(&containers, 31), "x-kubernetes-patch-merge-key");
    assert_eq!(proto_string(&merge_key, 2), "\"name\"");

    // paths (8) → NamedPathItem (2) → PathItem.patch (8) → Operation
    let paths = proto_field(document, 8).pop().expect("paths");
    let item = proto_named(
        proto_field(&paths, 2),
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    );
    let patch = proto_field(&item, 8).pop().expect("patch");
    assert_eq!(proto_string(&patch, 5), "patchAppsV1NamespacedDeployment");
    let consumes: Vec<String> = proto_field(&patch, 7)
        .into_iter()
        .map(|c| String::from_utf8(c).expect("utf-8"))
        .collect();
    assert_eq!(consumes, paths::PATCH_TYPES);
    // parameters (8) → ParametersItem.parameter (1) → Parameter.non_body_parameter (2) →
    // query_parameter_sub_schema (3) → name (4)
    let query_names: Vec<String> = proto_field(&patch, 8)
        .iter()
        .flat_map(|item| proto_field(item, 1))
        .flat_map(|param| proto_field(&param, 2))
        .flat_map(|non_body| proto_field(&non_body, 3))
        .map(|query| proto_string(&query, 4))
        .collect();
    assert_eq!(
        query_names,
        ["dryRun", "fieldManager", "fieldValidation", "force"]
    );
    let action = proto_named(proto_field(&patch, 13), "x-kubernetes-action");
    assert_eq!(proto_string(&action, 2), "\"patch\"");
}
