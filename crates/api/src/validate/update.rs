//! What an update may not change, as upstream's `ValidateUpdate` of each kind refuses it: a
//! workload's selector, a running pod's spec beyond its images and a few more, a Job's
//! template, the data of an immutable ConfigMap or Secret, a binding's role.

use serde_json::Value;

use crate::validation::FieldError;

/// What upstream says when a pod update changes more than it may.
pub const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than \
    `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,\
    `spec.tolerations` (only additions to existing tolerations),\
    `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// The problems of replacing `old` by `new` (both of kind `kind` of `group`, both valid on
/// their own).
pub fn validate_update(group: &str, kind: &str, old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match (group, kind) {
        ("", "Pod") => errors.extend(pod(old, new)),
        ("", "ConfigMap") => errors.extend(immutable_data(old, new, &["data", "binaryData"])),
        ("", "Secret") => {
            errors.extend(unchanged(old, new, "type"));
            errors.extend(immutable_data(old, new, &["data", "stringData"]));
        }
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => {
            errors.extend(unchanged(old, new, "spec.selector"));
        }
        ("apps", "StatefulSet") => {
            errors.extend(unchanged(old, new, "spec.selector"));
            errors.extend(stateful_set(old, new));
        }
        ("batch", "Job") => errors.extend(job(old, new)),
        ("", "PersistentVolumeClaim") => errors.extend(claim(old, new)),
        ("", "PersistentVolume") => errors.extend(volume(old, new)),
        ("", "Node") => errors.extend(node(old, new)),
        ("", "Service") => errors.extend(load_balancer_class(old, new)),
        ("", "ResourceQuota") => errors.extend(quota_scopes(old, new)),
        ("storage.k8s.io", "StorageClass") => errors.extend(storage_class(old, new)),
        ("scheduling.k8s.io", "PriorityClass") => {
            if at(old, "value") != at(new, "value") {
                errors.push(FieldError::forbidden(
                    "value",
                    "may not be changed in an update.",
                ));
            }
            errors.extend(unchanged(old, new, "preemptionPolicy"));
        }
        ("discovery.k8s.io", "EndpointSlice") => errors.extend(unchanged(old, new, "addressType")),
        ("networking.k8s.io", "IngressClass") => {
            errors.extend(unchanged(old, new, "spec.controller"));
        }
        ("apps", "ControllerRevision") => errors.extend(unchanged(old, new, "data")),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding")
            if at(old, "roleRef") != at(new, "roleRef") =>
        {
            errors.push(FieldError::invalid_raw(
                "roleRef",
                shown(at(new, "roleRef")),
                "cannot change roleRef",
            ));
        }
        _ => {}
    }
    errors
}

/// The value at a dotted path (`spec.selector`), `Null` when absent.
fn at<'a>(object: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .try_fold(object, |value, key| value.get(key))
        .unwrap_or(&Value::Null)
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    }
}

/// `field is immutable` when the value at `path` changed.
fn unchanged(old: &Value, new: &Value, path: &str) -> Option<FieldError> {
    let (before, after) = (at(old, path), at(new, path));
    (before != after).then(|| FieldError::invalid_raw(path, shown(after), "field is immutable"))
}

/// `spec[key]` set back to what `before` has there (absent if it had none): a change
/// upstream allows, taken out of the comparison of the two specs.
fn keep_old(spec: &mut serde_json::Map<String, Value>, before: &Value, key: &str) {
    match before.get(key) {
        Some(value) => {
            spec.insert(key.into(), value.clone());
        }
        None => {
            spec.remove(key);
        }
    }
}

/// `error` reported at `field`: upstream names some fields without their `spec.` prefix.
fn reported_at(mut error: FieldError, field: &str) -> FieldError {
    field.clone_into(&mut error.field);
    error
}

/// A ConfigMap's or Secret's data once it is `immutable: true`.
fn immutable_data(old: &Value, new: &Value, fields: &[&str]) -> Vec<FieldError> {
    const DETAIL: &str = "field is immutable when `immutable` is set";
    if old["immutable"] != true {
        return Vec::new();
    }
    let mut errors = Vec::new();
    if new["immutable"] != true {
        errors.push(FieldError::forbidden("immutable", DETAIL));
    }
    for field in fields {
        if at(old, field) != at(new, field) {
            errors.push(FieldError::forbidden(field, DETAIL));
        }
    }
    errors
}

/// A pod's spec may change only in its containers' images, its active deadline, added
/// tolerations, a negative grace period set to 1, and removed scheduling gates.
fn pod(old: &Value, new: &Value) -> Option<FieldError> {
    let (Some(before), Some(after)) = (old.get("spec"), new.get("spec")) else {
        return None;
    };
    let mut allowed = after.clone();
    for list in ["containers", "initContainers"] {
        let (Some(theirs), Some(ours)) = (
            before.get(list).and_then(Value::as_array),
            allowed.get_mut(list).and_then(Value::as_array_mut),
        ) else {
            continue;
        };
        if theirs.len() != ours.len() {
            continue;
        }
        for (was, is) in theirs.iter().zip(ours.iter_mut()) {
            if let (Some(image), Some(map)) = (was.get("image"), is.as_object_mut()) {
                map.insert("image".into(), image.clone());
            }
        }
    }
    let spec = allowed.as_object_mut()?;
    let mut take_old = |key: &str| keep_old(spec, before, key);
    take_old("activeDeadlineSeconds");
    let list = |spec: &Value, key: &str| -> Vec<Value> {
        spec.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (old_tolerations, new_tolerations) =
        (list(before, "tolerations"), list(after, "tolerations"));
    if old_tolerations.iter().all(|t| new_tolerations.contains(t)) {
        take_old("tolerations");
    }
    let (old_gates, new_gates) = (
        list(before, "schedulingGates"),
        list(after, "schedulingGates"),
    );
    if new_gates.iter().all(|g| old_gates.contains(g)) {
        take_old("schedulingGates");
    }
    let old_grace = before
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    let new_grace = after
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    if old_grace.is_some_and(|g| g < 0) && new_grace == Some(1) {
        take_old("terminationGracePeriodSeconds");
    }
    (&allowed != before).then(|| FieldError::forbidden("spec", POD_UPDATE_FORBIDDEN))
}

/// A claim's spec is fixed but for its `volumeName` (set once, by the volume controller),
/// a `storageClassName` set where there was none, and, once bound, its storage request
/// (never below the capacity it has) and volume attributes class.
fn claim(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let (before, after) = (at(old, "spec"), at(new, "spec"));
    let mut allowed = after.clone();
    if let Some(spec) = allowed.as_object_mut() {
        let mut take_old = |key: &str| keep_old(spec, before, key);
        if at(before, "volumeName").as_str().unwrap_or("").is_empty() {
            take_old("volumeName");
        }
        let class_annotation = old
            .pointer("/metadata/annotations")
            .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class"));
        let new_class = after.get("storageClassName");
        if before.get("storageClassName").is_none()
            && new_class.is_some()
            && class_annotation.is_none_or(|a| Some(a) == new_class)
        {
            take_old("storageClassName");
        }
        take_old("volumeAttributesClassName");
        if at(old, "status.phase") == "Bound"
            && let Some(requests) = spec
                .get_mut("resources")
                .and_then(|r| r.get_mut("requests"))
                .and_then(Value::as_object_mut)
        {
            match at(before, "resources.requests.storage") {
                Value::Null => requests.remove("storage"),
                storage => requests.insert("storage".into(), storage.clone()),
            };
        }
    }
    if &allowed != before {
        errors.push(FieldError::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and \
             volumeAttributesClassName for bound claims",
        ));
    }
    let storage = |object: &Value, path: &str| -> i64 {
        serde_json::from_value(at(object, path).clone())
            .ok()
            .and_then(|q| crate::quantity::value(&q))
            .unwrap_or(0)
    };
    let (old_size, new_size) = (
        storage(old, "spec.resources.requests.storage"),
        storage(new, "spec.resources.requests.storage"),
    );
    // Upstream's RecoverVolumeExpansionFailure (on by default in 1.33) lets a request shrink
    // back, but not to the capacity the claim has.
    if new_size < old_size && new_size <= storage(old, "status.capacity.storage") {
        errors.push(FieldError::forbidden(
            "spec.resources.requests.storage",
            "field can not be less than status.capacity",
        ));
    }
    errors.extend(unchanged(old, new, "spec.volumeMode").map(|e| reported_at(e, "volumeMode")));
    if !at(before, "volumeAttributesClassName").is_null() {
        match at(after, "volumeAttributesClassName") {
            Value::Null => errors.push(FieldError::forbidden(
                "spec.volumeAttributesClassName",
                "update from non-nil value to nil is forbidden",
            )),
            Value::String(name) if name.is_empty() => errors.push(FieldError::forbidden(
                "spec.volumeAttributesClassName",
                "update from non-nil value to an empty string is forbidden",
            )),
            _ => {}
        }
    }
    errors
}

/// A volume's source never changes (but for a CSI volume's expansion secret, which may be
/// set once), nor its mode, nor its node affinity once it has one.
fn volume(old: &Value, new: &Value) -> Vec<FieldError> {
    let source = |object: &Value| -> Value {
        let mut spec = at(object, "spec").clone();
        if let Some(map) = spec.as_object_mut() {
            map.retain(|key, _| !super::kinds::VOLUME_SETTINGS.contains(&key.as_str()));
        }
        spec
    };
    let (before, mut after) = (source(old), source(new));
    if at(&before, "csi.controllerExpandSecretRef").is_null()
        && let Some(csi) = after.get_mut("csi").and_then(Value::as_object_mut)
    {
        csi.remove("controllerExpandSecretRef");
    }
    let mut errors = Vec::new();
    if before != after {
        errors.push(FieldError::forbidden(
            "spec.persistentvolumesource",
            "spec.persistentvolumesource is immutable after creation",
        ));
    }
    errors.extend(unchanged(old, new, "spec.volumeMode").map(|e| reported_at(e, "volumeMode")));
    if !at(old, "spec.nodeAffinity").is_null() {
        errors.extend(
            unchanged(old, new, "spec.nodeAffinity").map(|e| reported_at(e, "nodeAffinity")),
        );
    }
    if !at(old, "spec.volumeAttributesClassName").is_null()
        && at(new, "spec.volumeAttributesClassName").is_null()
    {
        errors.push(FieldError::forbidden(
            "spec.volumeAttributesClassName",
            "update from non-nil value to nil is forbidden",
        ));
    }
    errors
}

/// A node's pod ranges and provider ID may be set once, then never change.
fn node(old: &Value, new: &Value) -> Vec<FieldError> {
    const CIDR: &str = "node updates may not change podCIDR except from \"\" to valid";
    let mut errors = Vec::new();
    let ranges = |object: &Value| -> Vec<Value> {
        at(object, "spec.podCIDRs")
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let (before, after) = (ranges(old), ranges(new));
    if !before.is_empty() {
        if before.len() != after.len() {
            errors.push(FieldError::forbidden("spec.podCIDRs", CIDR));
        } else {
            for _ in before.iter().zip(&after).filter(|(was, is)| was != is) {
                errors.push(FieldError::forbidden("spec.podCIDRs", CIDR));
            }
        }
    }
    let provider = at(old, "spec.providerID").as_str().unwrap_or("");
    if !provider.is_empty() && at(new, "spec.providerID").as_str() != Some(provider) {
        errors.push(FieldError::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    errors
}

/// A LoadBalancer Service keeps its load-balancer class.
fn load_balancer_class(old: &Value, new: &Value) -> Option<FieldError> {
    let balanced = |object: &Value| at(object, "spec.type") == "LoadBalancer";
    let (before, after) = (
        at(old, "spec.loadBalancerClass"),
        at(new, "spec.loadBalancerClass"),
    );
    (balanced(old) && balanced(new) && before != after).then(|| {
        FieldError::invalid_raw(
            "spec.loadBalancerClass",
            shown(after),
            "may not change once set",
        )
    })
}

/// A quota's scopes, as a set, never change.
fn quota_scopes(old: &Value, new: &Value) -> Option<FieldError> {
    let scopes = |object: &Value| -> std::collections::BTreeSet<String> {
        at(object, "spec.scopes")
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    (scopes(old) != scopes(new)).then(|| {
        FieldError::invalid_raw(
            "spec.scopes",
            shown(at(new, "spec.scopes")),
            "field is immutable",
        )
    })
}

/// A StorageClass's parameters, provisioner, reclaim policy and binding mode never change.
fn storage_class(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> = ["parameters", "provisioner", "reclaimPolicy"]
        .into_iter()
        .filter(|field| at(old, field) != at(new, field))
        .map(|field| FieldError::forbidden(field, &format!("updates to {field} are forbidden.")))
        .collect();
    errors.extend(unchanged(old, new, "volumeBindingMode"));
    errors
}

/// A StatefulSet's spec may change only in the fields upstream lists.
fn stateful_set(old: &Value, new: &Value) -> Option<FieldError> {
    const MUTABLE: &[&str] = &[
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "revisionHistoryLimit",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
        // Checked on its own, with its own message.
        "selector",
    ];
    let strip = |spec: &Value| -> Value {
        let mut spec = spec.clone();
        if let Some(map) = spec.as_object_mut() {
            map.retain(|key, _| !MUTABLE.contains(&key.as_str()));
        }
        spec
    };
    (strip(at(old, "spec")) != strip(at(new, "spec"))).then(|| {
        FieldError::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', \
             'template', 'updateStrategy', 'revisionHistoryLimit', \
             'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        )
    })
}

/// A Job's selector, completion mode and failure policy never change; its template only in
/// its scheduling directives, labels and annotations, and only while it is suspended and has
/// not started; its completions only for an Indexed Job scaled with its parallelism.
fn job(old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> = [
        "spec.selector",
        "spec.completionMode",
        "spec.podFailurePolicy",
    ]
    .into_iter()
    .filter_map(|path| unchanged(old, new, path))
    .collect();
    let elastic = at(new, "spec.completionMode") == "Indexed"
        && at(new, "spec.completions") == at(new, "spec.parallelism");
    if !elastic && let Some(error) = unchanged(old, new, "spec.completions") {
        errors.push(error);
    }
    let suspended_unstarted =
        at(old, "spec.suspend") == true && at(old, "status.startTime").is_null();
    let mut template = at(new, "spec.template").clone();
    if suspended_unstarted {
        let before = at(old, "spec.template");
        for path in [
            "metadata.labels",
            "metadata.annotations",
            "spec.nodeSelector",
            "spec.affinity",
            "spec.tolerations",
            "spec.schedulingGates",
        ] {
            let (parent, key) = path.split_once('.').unwrap_or(("", path));
            if let Some(map) = template.get_mut(parent).and_then(Value::as_object_mut) {
                match before.get(parent).and_then(|p| p.get(key)) {
                    Some(value) => {
                        map.insert(key.into(), value.clone());
                    }
                    None => {
                        map.remove(key);
                    }
                }
            }
        }
    }
    if &template != at(old, "spec.template") {
        errors.push(FieldError::invalid_raw(
            "spec.template",
            "core.PodTemplateSpec{...}",
            "field is immutable",
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(group: &str, kind: &str, old: &Value, new: &Value) -> Vec<String> {
        validate_update(group, kind, old, new)
            .iter()
            .map(|e| format!("{}: {}", e.field, e.body()))
            .collect()
    }

    #[test]
    fn a_workloads_selector_never_changes() {
        let old = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "replicas": 1}});
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        assert!(messages("apps", "Deployment", &old, &new).is_empty());
        new["spec"]["selector"] = json!({"matchLabels": {"app": "b"}});
        assert_eq!(
            messages("apps", "Deployment", &old, &new),
            ["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"b\"}}: field is immutable"]
        );
    }

    #[test]
    fn a_pod_changes_only_its_images_deadline_and_added_tolerations() {
        let old = json!({"spec": {
            "containers": [{"name": "a", "image": "x:1"}],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "restartPolicy": "Always"
        }});
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("x:2");
        new["spec"]["activeDeadlineSeconds"] = json!(30);
        new["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "j", "operator": "Exists"}));
        assert!(messages("", "Pod", &old, &new).is_empty());

        let mut env = new.clone();
        env["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}]);
        assert_eq!(
            messages("", "Pod", &old, &env),
            [format!("spec: Forbidden: {POD_UPDATE_FORBIDDEN}")]
        );
        let mut fewer = new.clone();
        fewer["spec"]["tolerations"] = json!([]);
        assert_eq!(messages("", "Pod", &old, &fewer).len(), 1);
    }

    #[test]
    fn immutable_configmaps_and_secrets_keep_their_data() {
        let old = json!({"immutable": true, "data": {"a": "1"}});
        let mut new = old.clone();
        new["data"]["a"] = json!("2");
        assert_eq!(
            messages("", "ConfigMap", &old, &new),
            ["data: Forbidden: field is immutable when `immutable` is set"]
        );
        let mutable = json!({"data": {"a": "1"}});
        assert!(messages("", "ConfigMap", &mutable, &new).is_empty());
        let secret = json!({"type": "Opaque"});
        let retyped = json!({"type": "kubernetes.io/tls"});
        assert_eq!(
            messages("", "Secret", &secret, &retyped),
            ["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );
    }

    #[test]
    fn a_jobs_template_changes_only_while_suspended_before_it_starts() {
        let old = json!({"spec": {
            "selector": {"matchLabels": {"u": "1"}},
            "completions": 1,
            "suspend": true,
            "template": {"metadata": {"labels": {"u": "1"}},
                         "spec": {"containers": [{"name": "a", "image": "x"}]}}
        }});
        let mut placed = old.clone();
        placed["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        assert!(messages("batch", "Job", &old, &placed).is_empty());
        let mut started = old.clone();
        started["status"]["startTime"] = json!("2025-01-01T00:00:00Z");
        assert_eq!(
            messages("batch", "Job", &started, &placed),
            ["spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable"]
        );
        let mut imaged = old.clone();
        imaged["spec"]["template"]["spec"]["containers"][0]["image"] = json!("y");
        assert_eq!(messages("batch", "Job", &old, &imaged).len(), 1);
        let mut more = old.clone();
        more["spec"]["completions"] = json!(2);
        assert_eq!(
            messages("batch", "Job", &old, &more),
            ["spec.completions: Invalid value: 2: field is immutable"]
        );
    }

    #[test]
    fn a_bindings_role_and_a_stateful_sets_other_fields_never_change() {
        let old = json!({"roleRef": {"kind": "Role", "name": "a"}});
        let new = json!({"roleRef": {"kind": "Role", "name": "b"}});
        assert_eq!(
            messages("rbac.authorization.k8s.io", "RoleBinding", &old, &new),
            ["roleRef: Invalid value: {\"kind\":\"Role\",\"name\":\"b\"}: cannot change roleRef"]
        );
        let set = json!({"spec": {"serviceName": "s", "replicas": 1}});
        let mut scaled = set.clone();
        scaled["spec"]["replicas"] = json!(2);
        assert!(messages("apps", "StatefulSet", &set, &scaled).is_empty());
        scaled["spec"]["serviceName"] = json!("t");
        assert_eq!(messages("apps", "StatefulSet", &set, &scaled).len(), 1);
    }

    #[test]
    fn a_claim_changes_its_request_only_once_bound_and_never_below_its_capacity() {
        let pending = json!({
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Pending"}
        });
        let mut new = pending.clone();
        new["spec"]["volumeName"] = json!("pv-1");
        new["spec"]["storageClassName"] = json!("local-path");
        assert!(messages("", "PersistentVolumeClaim", &pending, &new).is_empty());
        new["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        let forbidden = "spec: Forbidden: spec is immutable after creation except \
                         resources.requests and volumeAttributesClassName for bound claims";
        assert_eq!(
            messages("", "PersistentVolumeClaim", &pending, &new),
            [forbidden]
        );
        let mut bound = pending.clone();
        bound["spec"]["volumeName"] = json!("pv-1");
        bound["spec"]["storageClassName"] = json!("local-path");
        bound["status"] = json!({"phase": "Bound", "capacity": {"storage": "1Gi"}});
        let mut grown = bound.clone();
        grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(messages("", "PersistentVolumeClaim", &bound, &grown).is_empty());
        let mut shrunk = bound.clone();
        shrunk["spec"]["resources"]["requests"]["storage"] = json!("512Mi");
        assert_eq!(
            messages("", "PersistentVolumeClaim", &bound, &shrunk),
            [
                "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
            ]
        );
        let mut renamed = bound.clone();
        renamed["spec"]["volumeName"] = json!("pv-2");
        renamed["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(
            messages("", "PersistentVolumeClaim", &bound, &renamed),
            [forbidden]
        );
    }

    #[test]
    fn a_volumes_source_and_a_classes_settings_never_change() {
        let pv = json!({"spec": {"hostPath": {"path": "/data"}, "capacity": {"storage": "1Gi"},
                                 "persistentVolumeReclaimPolicy": "Retain"}});
        let mut new = pv.clone();
        new["spec"]["capacity"]["storage"] = json!("2Gi");
        new["spec"]["claimRef"] = json!({"name": "c", "namespace": "default"});
        assert!(messages("", "PersistentVolume", &pv, &new).is_empty());
        new["spec"]["hostPath"]["path"] = json!("/other");
        assert_eq!(
            messages("", "PersistentVolume", &pv, &new),
            [
                "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation"
            ]
        );

        let class = json!({"provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
                           "volumeBindingMode": "WaitForFirstConsumer", "parameters": {"a": "b"}});
        let mut new = class.clone();
        new["allowVolumeExpansion"] = json!(true);
        assert!(messages("storage.k8s.io", "StorageClass", &class, &new).is_empty());
        new["parameters"] = json!({"a": "c"});
        new["reclaimPolicy"] = json!("Retain");
        new["volumeBindingMode"] = json!("Immediate");
        assert_eq!(
            messages("storage.k8s.io", "StorageClass", &class, &new),
            [
                "parameters: Forbidden: updates to parameters are forbidden.",
                "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
                "volumeBindingMode: Invalid value: \"Immediate\": field is immutable",
            ]
        );

        let priority = json!({"value": 1000, "preemptionPolicy": "PreemptLowerPriority"});
        let mut new = priority.clone();
        new["description"] = json!("important");
        assert!(messages("scheduling.k8s.io", "PriorityClass", &priority, &new).is_empty());
        new["value"] = json!(2000);
        assert_eq!(
            messages("scheduling.k8s.io", "PriorityClass", &priority, &new),
            ["value: Forbidden: may not be changed in an update."]
        );
    }

    #[test]
    fn set_once_fields_of_nodes_slices_and_services() {
        let node = json!({"spec": {}});
        let mut new = node.clone();
        new["spec"]["podCIDRs"] = json!(["10.42.0.0/24"]);
        new["spec"]["podCIDR"] = json!("10.42.0.0/24");
        assert!(messages("", "Node", &node, &new).is_empty());
        let mut moved = new.clone();
        moved["spec"]["podCIDRs"] = json!(["10.42.1.0/24"]);
        assert_eq!(
            messages("", "Node", &new, &moved),
            [
                "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"
            ]
        );

        let slice = json!({"addressType": "IPv4", "endpoints": []});
        let mut new = slice.clone();
        new["addressType"] = json!("IPv6");
        assert_eq!(
            messages("discovery.k8s.io", "EndpointSlice", &slice, &new),
            ["addressType: Invalid value: \"IPv6\": field is immutable"]
        );

        let service = json!({"spec": {"type": "LoadBalancer", "loadBalancerClass": "a.io/lb"}});
        let mut new = service.clone();
        new["spec"]["loadBalancerClass"] = json!("b.io/lb");
        assert_eq!(
            messages("", "Service", &service, &new),
            ["spec.loadBalancerClass: Invalid value: \"b.io/lb\": may not change once set"]
        );
        new["spec"]["type"] = json!("ClusterIP");
        new["spec"]
            .as_object_mut()
            .unwrap()
            .remove("loadBalancerClass");
        assert!(messages("", "Service", &service, &new).is_empty());
    }
}
