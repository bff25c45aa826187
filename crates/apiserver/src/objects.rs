//! Object metadata on the way in: what a create fills in and checks, what an update may and
//! may not change, as upstream's generic registry does it (`BeforeCreate`, `BeforeUpdate`, the
//! status strategies).

use cox_api::registry::Resource;
use cox_api::status::ApiError;
use cox_api::validation::{self, FieldError};
use rand::Rng;
use serde_json::{Map, Value, json};

/// Resources whose spec changes bump `metadata.generation`.
const GENERATION_TRACKED: &[&str] = &[
    "daemonsets",
    "deployments",
    "replicasets",
    "statefulsets",
    "replicationcontrollers",
    "jobs",
    "cronjobs",
    "horizontalpodautoscalers",
    "ingresses",
    "networkpolicies",
    "poddisruptionbudgets",
    "pods",
];

/// Now, as Kubernetes writes timestamps (RFC 3339, seconds, UTC).
pub fn now() -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// The time `seconds` after `timestamp` (an RFC 3339 time as [`now`] writes them), in the
/// same format; `None` if `timestamp` is not one.
pub fn add_seconds(timestamp: &str, seconds: i64) -> Option<String> {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let parsed =
        time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
            .ok()?;
    (parsed + time::Duration::seconds(seconds))
        .format(&format)
        .ok()
}

/// Whether `timestamp` (RFC 3339) is later than now; `None` if it is not a timestamp.
pub fn is_future(timestamp: &str) -> Option<bool> {
    let parsed =
        time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
            .ok()?;
    Some(parsed > time::OffsetDateTime::now_utc())
}

pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `prefix` plus five random characters from upstream's alphabet (no vowels, no look-alikes).
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

fn metadata_mut(object: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let map = object
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the object must be a JSON object"))?;
    let metadata = map.entry("metadata").or_insert_with(|| json!({}));
    if metadata.is_null() {
        *metadata = json!({});
    }
    metadata
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

pub fn str_at<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Sets `metadata.resourceVersion` (objects are stored without it; the store's revision is it).
pub fn set_resource_version(object: &mut Value, revision: i64) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
}

/// Checks the object's `apiVersion` and `kind` against the resource and fills them in.
fn check_type(resource: &Resource, object: &mut Value) -> Result<(), ApiError> {
    let api_version = resource.api_version();
    let given_version = str_at(object, "/apiVersion");
    if !given_version.is_empty() && given_version != api_version {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({given_version}) does not match the expected API version ({api_version})"
        )));
    }
    let given_kind = str_at(object, "/kind");
    if !given_kind.is_empty() && given_kind != resource.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({given_kind}) does not match the expected kind ({})",
            resource.kind
        )));
    }
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(api_version));
        map.insert("kind".into(), Value::String(resource.kind.to_owned()));
    }
    Ok(())
}

/// The rule a resource's names follow.
fn name_problems(resource: &Resource, name: &str) -> Vec<String> {
    match resource.plural {
        "namespaces" => validation::dns1123_label(name),
        "services" => validation::dns1035_label(name),
        "roles" | "rolebindings" | "clusterroles" | "clusterrolebindings" => {
            if name == "." || name == ".." {
                vec![format!("may not be '{name}'")]
            } else if name.contains('/') || name.contains('%') {
                vec![format!(
                    "may not contain '{}'",
                    if name.contains('/') { "/" } else { "%" }
                )]
            } else {
                Vec::new()
            }
        }
        _ => validation::dns1123_subdomain(name),
    }
}

/// Labels and annotations: keys are qualified names, label values follow the label rule.
fn metadata_problems(metadata: &Map<String, Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, check_values) in [("labels", true), ("annotations", false)] {
        let Some(map) = metadata.get(field) else {
            continue;
        };
        if map.is_null() {
            continue;
        }
        let Some(map) = map.as_object() else {
            errors.push(FieldError::invalid(
                &format!("metadata.{field}"),
                "",
                "must be a map of strings",
            ));
            continue;
        };
        for (key, value) in map {
            let path = format!("metadata.{field}");
            for problem in validation::qualified_name(key) {
                errors.push(FieldError::invalid(&path, key, &problem));
            }
            let Some(value) = value.as_str() else {
                errors.push(FieldError::invalid(&path, key, "values must be strings"));
                continue;
            };
            if check_values {
                for problem in validation::label_value(value) {
                    errors.push(FieldError::invalid(&path, value, &problem));
                }
            }
        }
    }
    errors
}

/// Fills in and checks a new object's metadata. `namespace` is the request's.
pub fn prepare_create(
    resource: &Resource,
    namespace: Option<&str>,
    object: &mut Value,
) -> Result<(), ApiError> {
    check_type(resource, object)?;
    let metadata = metadata_mut(object)?;
    if resource.namespaced {
        let given = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        match namespace {
            Some(ns) if given.is_empty() || given == ns => {
                metadata.insert("namespace".into(), Value::String(ns.to_owned()));
            }
            Some(_) => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            None => {
                return Err(ApiError::bad_request(
                    "the namespace of the object is required",
                ));
            }
        }
    } else {
        metadata.remove("namespace");
    }
    let mut name = metadata
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if name.is_empty() {
        let prefix = metadata
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !prefix.is_empty() {
            name = generate_name(prefix);
            metadata.insert("name".into(), Value::String(name.clone()));
        }
    }
    if metadata
        .get("resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|rv| !rv.is_empty())
    {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let mut errors = Vec::new();
    if name.is_empty() {
        errors.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for problem in name_problems(resource, &name) {
            errors.push(FieldError::invalid("metadata.name", &name, &problem));
        }
    }
    errors.extend(metadata_problems(metadata));
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            resource.group,
            resource.kind,
            &name,
            &errors,
        ));
    }
    metadata.insert("uid".into(), Value::String(new_uid()));
    metadata.insert("creationTimestamp".into(), Value::String(now()));
    metadata.remove("deletionTimestamp");
    metadata.remove("deletionGracePeriodSeconds");
    metadata.remove("resourceVersion");
    if GENERATION_TRACKED.contains(&resource.plural) {
        metadata.insert("generation".into(), json!(1));
    } else {
        metadata.remove("generation");
    }
    Ok(())
}

/// What part of the object an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateScope {
    /// The main resource: everything but status (when the resource has a status subresource).
    Main,
    /// The status subresource: only status.
    Status,
}

/// Merges an update into the stored object's identity: what the client may not change is taken
/// from `old`; status or spec changes are dropped as the scope says; generation is bumped when
/// the spec changed.
pub fn prepare_update(
    resource: &Resource,
    old: &Value,
    new: &mut Value,
    scope: UpdateScope,
) -> Result<(), ApiError> {
    check_type(resource, new)?;
    let old_name = str_at(old, "/metadata/name").to_owned();
    let new_name = str_at(new, "/metadata/name").to_owned();
    if !new_name.is_empty() && new_name != old_name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({new_name}) does not match the name on the URL ({old_name})"
        )));
    }
    let given_ns = str_at(new, "/metadata/namespace").to_owned();
    let old_ns = str_at(old, "/metadata/namespace").to_owned();
    if resource.namespaced && !given_ns.is_empty() && given_ns != old_ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let has_status = resource.subresource("status").is_some();
    if scope == UpdateScope::Status {
        // Only status changes: everything else is the stored object's.
        let status = new.get("status").cloned();
        *new = old.clone();
        if let Some(map) = new.as_object_mut() {
            match status {
                Some(status) => map.insert("status".into(), status),
                None => map.remove("status"),
            };
        }
        // The stored form never carries the resourceVersion (the store's revision is it).
        metadata_mut(new)?.remove("resourceVersion");
        return Ok(());
    }
    if has_status && let Some(map) = new.as_object_mut() {
        match old.get("status") {
            Some(status) => map.insert("status".into(), status.clone()),
            None => map.remove("status"),
        };
    }
    let old_metadata = old
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let metadata = metadata_mut(new)?;
    metadata.insert("name".into(), Value::String(old_name.clone()));
    if resource.namespaced {
        metadata.insert("namespace".into(), Value::String(old_ns));
    }
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_metadata.get(field) {
            Some(value) => metadata.insert(field.into(), value.clone()),
            None => metadata.remove(field),
        };
    }
    metadata.remove("resourceVersion");
    let errors = metadata_problems(metadata);
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            resource.group,
            resource.kind,
            &old_name,
            &errors,
        ));
    }
    if GENERATION_TRACKED.contains(&resource.plural) && spec_changed(old, new) {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if let Some(metadata) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("generation".into(), json!(generation + 1));
        }
    }
    Ok(())
}

/// Everything but metadata and status: what counts as the spec for generation.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove("metadata");
            map.remove("status");
        }
        v
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cox_api::registry::find;

    #[test]
    fn create_fills_identity_and_checks_names() {
        let cm = find("", "v1", "configmaps").unwrap();
        let mut object = json!({"metadata": {"name": "settings"}, "data": {"a": "1"}});
        prepare_create(cm, Some("default"), &mut object).unwrap();
        assert_eq!(object["kind"], "ConfigMap");
        assert_eq!(object["apiVersion"], "v1");
        assert_eq!(object["metadata"]["namespace"], "default");
        assert_eq!(str_at(&object, "/metadata/uid").len(), 36);
        assert!(str_at(&object, "/metadata/creationTimestamp").ends_with('Z'));
        assert!(object["metadata"].get("generation").is_none());

        let mut bad = json!({"metadata": {"name": "Bad_Name"}});
        let err = prepare_create(cm, Some("default"), &mut bad).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message.starts_with(
                "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
            ),
            "{}",
            err.message
        );

        let mut generated = json!({"metadata": {"generateName": "web-"}});
        prepare_create(cm, Some("ns"), &mut generated).unwrap();
        let name = str_at(&generated, "/metadata/name");
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");

        let mut nameless = json!({"metadata": {}});
        assert_eq!(
            prepare_create(cm, Some("ns"), &mut nameless)
                .unwrap_err()
                .code,
            422
        );
    }

    #[test]
    fn create_refuses_mismatches() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let cases = [
            json!({"apiVersion": "v1", "kind": "Deployment", "metadata": {"name": "a"}}),
            json!({"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "a"}}),
            json!({"metadata": {"name": "a", "namespace": "other"}}),
            json!({"metadata": {"name": "a", "resourceVersion": "5"}}),
        ];
        for mut case in cases {
            let err = prepare_create(deploy, Some("ns"), &mut case).unwrap_err();
            assert_eq!(err.code, 400, "{}", err.message);
        }
        let mut ok = json!({"metadata": {"name": "a"}, "spec": {}});
        prepare_create(deploy, Some("ns"), &mut ok).unwrap();
        assert_eq!(ok["metadata"]["generation"], 1);
    }

    #[test]
    fn services_and_namespaces_have_stricter_names() {
        let svc = find("", "v1", "services").unwrap();
        let mut object = json!({"metadata": {"name": "1web"}});
        assert_eq!(
            prepare_create(svc, Some("ns"), &mut object)
                .unwrap_err()
                .code,
            422
        );
        let ns = find("", "v1", "namespaces").unwrap();
        let mut object = json!({"metadata": {"name": "a.b", "namespace": "x"}});
        assert_eq!(prepare_create(ns, None, &mut object).unwrap_err().code, 422);
        let mut object = json!({"metadata": {"name": "team-a", "namespace": "x"}});
        prepare_create(ns, None, &mut object).unwrap();
        assert!(object["metadata"].get("namespace").is_none());
    }

    #[test]
    fn a_status_update_stores_no_resource_version() {
        let pods = find("", "v1", "pods").unwrap();
        let mut old = json!({"metadata": {"name": "web"}, "spec": {}});
        prepare_create(pods, Some("ns"), &mut old).unwrap();
        // What the store hands back carries the revision as its resourceVersion.
        old["metadata"]["resourceVersion"] = json!("21");
        let mut new = json!({"metadata": {"name": "web", "resourceVersion": "21"}, "status": {"phase": "Pending"}});
        prepare_update(pods, &old, &mut new, UpdateScope::Status).unwrap();
        assert_eq!(new["status"]["phase"], "Pending");
        assert!(
            new["metadata"].get("resourceVersion").is_none(),
            "the stored form must not carry a stale resourceVersion: {new}"
        );
    }

    #[test]
    fn update_keeps_identity_bumps_generation_and_respects_status() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let mut old = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
        prepare_create(deploy, Some("ns"), &mut old).unwrap();

        let mut new = json!({"metadata": {"name": "web", "uid": "forged", "labels": {"a": "b"}}, "spec": {"replicas": 3}, "status": {"replicas": 9}});
        prepare_update(deploy, &old, &mut new, UpdateScope::Main).unwrap();
        assert_eq!(new["metadata"]["uid"], old["metadata"]["uid"]);
        assert_eq!(new["metadata"]["generation"], 2);
        assert_eq!(
            new["status"]["replicas"], 1,
            "status changes are ignored on the main resource"
        );
        assert_eq!(new["metadata"]["labels"]["a"], "b");

        let mut labels_only = new.clone();
        labels_only["metadata"]["labels"]["c"] = json!("d");
        prepare_update(deploy, &new, &mut labels_only, UpdateScope::Main).unwrap();
        assert_eq!(
            labels_only["metadata"]["generation"], 2,
            "metadata changes do not bump generation"
        );

        let mut status = json!({"metadata": {"name": "web"}, "spec": {"replicas": 100}, "status": {"replicas": 3}});
        prepare_update(deploy, &new, &mut status, UpdateScope::Status).unwrap();
        assert_eq!(
            status["spec"]["replicas"], 3,
            "spec changes are ignored on status"
        );
        assert_eq!(status["status"]["replicas"], 3);

        let mut renamed = json!({"metadata": {"name": "other"}});
        assert_eq!(
            prepare_update(deploy, &old, &mut renamed, UpdateScope::Main)
                .unwrap_err()
                .code,
            400
        );
    }
}
