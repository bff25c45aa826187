//! Per-kind validation of built-in objects (after defaulting), with upstream's field paths and
//! messages. It covers what users most often get wrong: pods' containers, images, names,
//! ports, restart policies, workloads whose selector does not select their template, and
//! configuration keys; the less common kinds are in `kinds`. (Services: [`crate::service`].)

use serde_json::Value;

use crate::labels::Selector;
use crate::validation::{self, FieldError};

mod kinds;
mod update;

pub use update::{POD_UPDATE_FORBIDDEN, validate_update};

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];

fn port_in_range(errors: &mut Vec<FieldError>, path: &str, value: Option<&Value>, required: bool) {
    match value.and_then(Value::as_i64) {
        Some(p) if (1..=65535).contains(&p) => {}
        Some(p) => errors.push(FieldError::invalid_raw(
            path,
            p,
            "must be between 1 and 65535, inclusive",
        )),
        None if required => errors.push(FieldError::required(path, "")),
        None => {}
    }
}

fn containers(
    errors: &mut Vec<FieldError>,
    spec: &Value,
    list: &str,
    path: &str,
    names: &mut Vec<String>,
) {
    let Some(containers) = spec.get(list).and_then(Value::as_array) else {
        return;
    };
    for (i, c) in containers.iter().enumerate() {
        let at = |field: &str| format!("{path}.{list}[{i}].{field}");
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            errors.push(FieldError::required(&at("name"), ""));
        } else {
            for problem in validation::dns1123_label(name) {
                errors.push(FieldError::invalid(&at("name"), name, &problem));
            }
            if names.iter().any(|n| n == name) {
                errors.push(FieldError::duplicate(&at("name"), name));
            }
            names.push(name.to_owned());
        }
        if c.get("image")
            .and_then(Value::as_str)
            .is_none_or(|i| i.trim().is_empty())
        {
            errors.push(FieldError::required(&at("image"), ""));
        }
        if let Some(policy) = c.get("imagePullPolicy").and_then(Value::as_str)
            && !PULL_POLICIES.contains(&policy)
        {
            errors.push(FieldError::not_supported(
                &at("imagePullPolicy"),
                policy,
                PULL_POLICIES,
            ));
        }
        for (j, port) in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = |field: &str| format!("{path}.{list}[{i}].ports[{j}].{field}");
            port_in_range(
                errors,
                &at("containerPort"),
                port.get("containerPort"),
                true,
            );
            port_in_range(
                errors,
                &at("hostPort"),
                port.get("hostPort").filter(|p| p.as_i64() != Some(0)),
                false,
            );
            if let Some(protocol) = port.get("protocol").and_then(Value::as_str)
                && !PROTOCOLS.contains(&protocol)
            {
                errors.push(FieldError::not_supported(
                    &at("protocol"),
                    protocol,
                    PROTOCOLS,
                ));
            }
        }
        for (j, env) in c
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if env
                .get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                errors.push(FieldError::required(
                    &format!("{path}.{list}[{i}].env[{j}].name"),
                    "",
                ));
            }
        }
    }
}

/// A pod spec at `path` (`spec`, or `spec.template.spec` in workloads).
pub fn pod_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if spec
        .get("containers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        errors.push(FieldError::required(&format!("{path}.containers"), ""));
    }
    let mut names = Vec::new();
    containers(&mut errors, spec, "containers", path, &mut names);
    containers(&mut errors, spec, "initContainers", path, &mut names);
    if let Some(policy) = spec.get("restartPolicy").and_then(Value::as_str)
        && !RESTART_POLICIES.contains(&policy)
    {
        errors.push(FieldError::not_supported(
            &format!("{path}.restartPolicy"),
            policy,
            RESTART_POLICIES,
        ));
    }
    if let Some(policy) = spec.get("dnsPolicy").and_then(Value::as_str)
        && !DNS_POLICIES.contains(&policy)
    {
        errors.push(FieldError::not_supported(
            &format!("{path}.dnsPolicy"),
            policy,
            DNS_POLICIES,
        ));
    }
    let mut volumes = Vec::new();
    for (i, volume) in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = volume.get("name").and_then(Value::as_str).unwrap_or("");
        let at = format!("{path}.volumes[{i}].name");
        if name.is_empty() {
            errors.push(FieldError::required(&at, ""));
        } else if volumes.contains(&name) {
            errors.push(FieldError::duplicate(&at, name));
        } else {
            volumes.push(name);
        }
    }
    if let Some(grace) = spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        && grace < 0
    {
        errors.push(FieldError::invalid_raw(
            &format!("{path}.terminationGracePeriodSeconds"),
            grace,
            "must be greater than or equal to 0",
        ));
    }
    errors
}

/// A workload's selector must be set, valid, and select its own template.
fn workload(object: &Value, kind: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let template_labels = object.pointer("/spec/template/metadata/labels");
    let selector = object.pointer("/spec/selector");
    // A ReplicationController's selector defaults to its template's labels; a Job's is made
    // on create (`defaults::job_create`), so an update without one is refused here.
    if kind != "ReplicationController" {
        match selector {
            None | Some(Value::Null) => errors.push(FieldError::required("spec.selector", "")),
            Some(selector) => match Selector::from_label_selector(selector) {
                Err(problem) => errors.push(FieldError::invalid(
                    "spec.selector",
                    &selector.to_string(),
                    &problem,
                )),
                Ok(parsed) if parsed.is_everything() => {
                    errors.push(FieldError::invalid(
                        "spec.selector",
                        "{}",
                        "empty selector is invalid for deployment",
                    ));
                }
                Ok(parsed) if !parsed.matches_json(template_labels) => {
                    let shown = template_labels.map(ToString::to_string).unwrap_or_default();
                    errors.push(FieldError::invalid_raw(
                        "spec.template.metadata.labels",
                        shown,
                        "`selector` does not match template `labels`",
                    ));
                }
                Ok(_) => {}
            },
        }
    }
    if let Some(replicas) = object.pointer("/spec/replicas").and_then(Value::as_i64)
        && replicas < 0
    {
        errors.push(FieldError::invalid_raw(
            "spec.replicas",
            replicas,
            "must be greater than or equal to 0",
        ));
    }
    match object.pointer("/spec/template/spec") {
        Some(spec) => {
            errors.extend(pod_spec(spec, "spec.template.spec"));
            if kind == "Job"
                && let Some(policy) = spec.get("restartPolicy").and_then(Value::as_str)
                && !["OnFailure", "Never"].contains(&policy)
            {
                errors.push(FieldError::not_supported(
                    "spec.template.spec.restartPolicy",
                    policy,
                    &["OnFailure", "Never"],
                ));
            }
        }
        None => errors.push(FieldError::required("spec.template", "")),
    }
    errors
}

/// Keys of ConfigMap and Secret data.
fn config_keys(object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for field in ["data", "binaryData"] {
        for key in object
            .get(field)
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.keys())
        {
            let valid = !key.is_empty()
                && key.len() <= 253
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && key != "."
                && key != "..";
            if !valid {
                errors.push(FieldError::invalid(
                    &format!("{field}[{key}]"),
                    key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
    errors
}

/// Problems with `object`, a `group`/`kind` (after defaulting); empty when valid.
pub fn validate(group: &str, kind: &str, object: &Value) -> Vec<FieldError> {
    let mut errors = common(group, kind, object);
    if let Some(more) = kinds::validate(group, kind, object) {
        errors.extend(more);
    }
    errors
}

/// The kinds most used: pods, workloads, configuration.
fn common(group: &str, kind: &str, object: &Value) -> Vec<FieldError> {
    match (group, kind) {
        ("", "Pod") => object
            .get("spec")
            .map(|s| pod_spec(s, "spec"))
            .unwrap_or_else(|| vec![FieldError::required("spec", "")]),
        ("", "ConfigMap" | "Secret") => config_keys(object),
        ("", "ReplicationController")
        | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job") => workload(object, kind),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(group: &str, kind: &str, object: Value) -> Vec<String> {
        validate(group, kind, &object)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn pods() {
        assert!(
            messages(
                "",
                "Pod",
                json!({"spec": {"containers": [{"name": "web", "image": "nginx"}]}})
            )
            .is_empty()
        );
        assert_eq!(
            messages("", "Pod", json!({"spec": {}})),
            ["spec.containers: Required value"]
        );
        assert_eq!(
            messages(
                "",
                "Pod",
                json!({"spec": {"containers": [{"name": "web"}]}})
            ),
            ["spec.containers[0].image: Required value"]
        );
        assert_eq!(
            messages(
                "",
                "Pod",
                json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}})
            ),
            ["spec.containers[1].name: Duplicate value: \"a\""]
        );
        assert_eq!(
            messages(
                "",
                "Pod",
                json!({"spec": {"restartPolicy": "Sometimes", "containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 0}]}]}})
            ),
            [
                "spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ]
        );
        assert!(
            messages(
                "",
                "Pod",
                json!({"spec": {"containers": [{"name": "Web", "image": "x"}]}})
            )[0]
            .starts_with("spec.containers[0].name: Invalid value: \"Web\"")
        );
    }

    #[test]
    fn workloads_must_select_their_template() {
        let deploy = |selector: Value, labels: Value| json!({"spec": {"selector": selector, "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        assert!(
            messages(
                "apps",
                "Deployment",
                deploy(
                    json!({"matchLabels": {"app": "web"}}),
                    json!({"app": "web"})
                )
            )
            .is_empty()
        );
        let got = messages(
            "apps",
            "Deployment",
            deploy(json!({"matchLabels": {"app": "web"}}), json!({"app": "db"})),
        );
        assert_eq!(
            got,
            [
                "spec.template.metadata.labels: Invalid value: {\"app\":\"db\"}: `selector` does not match template `labels`"
            ]
        );
        assert_eq!(
            messages(
                "apps",
                "Deployment",
                json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}})
            ),
            ["spec.selector: Required value"]
        );
        let job = json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {"restartPolicy": "Always", "containers": [{"name": "a", "image": "x"}]}}}});
        assert_eq!(
            messages("batch", "Job", job),
            [
                "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
            ]
        );
    }

    #[test]
    fn config_keys_are_checked() {
        assert!(
            messages(
                "",
                "ConfigMap",
                json!({"data": {"game.properties": "x", "KEY_1": "y"}})
            )
            .is_empty()
        );
        assert_eq!(
            messages("", "ConfigMap", json!({"data": {"a/b": "x"}})).len(),
            1
        );
        assert_eq!(
            messages("", "Secret", json!({"data": {"..": "eA=="}})).len(),
            1
        );
    }
}
