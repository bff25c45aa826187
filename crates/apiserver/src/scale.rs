//! The `scale` subresource of deployments, replicasets, statefulsets and
//! replicationcontrollers: an `autoscaling/v1` `Scale` view of the object's replica count, as
//! `kubectl scale` and autoscalers use it.

use cox_api::labels::Selector;
use cox_api::registry::Resource;
use cox_api::status::ApiError;
use cox_api::validation::FieldError;
use serde_json::{Value, json};

/// The label selector of the scaled object, as upstream writes it in `status.selector`.
fn selector(resource: &Resource, object: &Value) -> String {
    let Some(selector) = object.pointer("/spec/selector") else {
        return String::new();
    };
    if resource.plural == "replicationcontrollers" {
        // A plain map of labels, rendered as equality requirements.
        let structured = json!({"matchLabels": selector});
        return Selector::from_label_selector(&structured)
            .map(|s| s.to_string())
            .unwrap_or_default();
    }
    Selector::from_label_selector(selector)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// The `Scale` of `object` (which carries its resourceVersion).
pub fn scale_of(resource: &Resource, object: &Value) -> Value {
    let metadata = object.get("metadata").cloned().unwrap_or_default();
    let mut scale_metadata = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(value) = metadata.get(field) {
            scale_metadata[field] = value.clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_metadata,
        "spec": {"replicas": object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": object.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector(resource, object),
        },
    })
}

/// `object` with the replica count of `scale`; checks the Scale as upstream validates it.
pub fn apply_scale(object: &Value, scale: &Value) -> Result<Value, ApiError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = scale.get("kind").and_then(Value::as_str).unwrap_or("Scale");
    if kind != "Scale" {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind (Scale)"
        )));
    }
    let replicas = match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => 0,
        Some(value) => value
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("spec.replicas must be an integer"))?,
    };
    if replicas < 0 {
        let errors = [FieldError::invalid_raw(
            "spec.replicas",
            replicas,
            "must be greater than or equal to 0",
        )];
        return Err(ApiError::invalid("autoscaling", "Scale", name, &errors));
    }
    let mut updated = object.clone();
    updated["spec"]["replicas"] = json!(replicas);
    // The Scale's resourceVersion, if given, is a precondition on the object.
    let wanted = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !wanted.is_empty() {
        updated["metadata"]["resourceVersion"] = json!(wanted);
    }
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cox_api::registry::find;

    #[test]
    fn scale_view_of_a_deployment() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let object = json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "7", "labels": {"x": "y"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]}},
            "status": {"replicas": 2},
        });
        let scale = scale_of(deploy, &object);
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(scale["status"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=web,tier in (a,b)");
        assert_eq!(scale["metadata"]["resourceVersion"], "7");
        assert!(scale["metadata"].get("labels").is_none());

        let updated = apply_scale(&object, &json!({"spec": {"replicas": 5}})).unwrap();
        assert_eq!(updated["spec"]["replicas"], 5);
        assert_eq!(updated["spec"]["selector"], object["spec"]["selector"]);
        assert_eq!(
            apply_scale(&object, &json!({"spec": {"replicas": -1}}))
                .unwrap_err()
                .code,
            422
        );
        assert_eq!(
            apply_scale(&object, &json!({"spec": {"replicas": "x"}}))
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn replication_controller_selector_is_a_map() {
        let rc = find("", "v1", "replicationcontrollers").unwrap();
        let object = json!({"metadata": {"name": "rc"}, "spec": {"replicas": 1, "selector": {"app": "web"}}});
        assert_eq!(scale_of(rc, &object)["status"]["selector"], "app=web");
    }
}
