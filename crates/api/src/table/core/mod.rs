//! Printers of the core (`""`) group. The kinds with more involved cells have their own
//! modules; the simple ones are here.

pub(super) mod event;
pub(super) mod node;
pub(super) mod pod;
pub(super) mod service;
pub(super) mod volume;

use serde_json::Value;

use super::cells::{self, count, int, text};
use super::{AGE, CONTAINERS, Column, IMAGES, NAME, Printer, quantity};

pub(in crate::table) const NAMESPACE: Printer = Printer::new(NAMESPACE_COLUMNS, namespace);
pub(in crate::table) const CONFIG_MAP: Printer = Printer::new(CONFIG_MAP_COLUMNS, config_map);
pub(in crate::table) const SECRET: Printer = Printer::new(SECRET_COLUMNS, secret);
pub(in crate::table) const SERVICE_ACCOUNT: Printer =
    Printer::new(SERVICE_ACCOUNT_COLUMNS, service_account);
pub(in crate::table) const POD_TEMPLATE: Printer = Printer::new(POD_TEMPLATE_COLUMNS, pod_template);
pub(in crate::table) const REPLICATION_CONTROLLER: Printer =
    Printer::new(REPLICATION_CONTROLLER_COLUMNS, replication_controller);
pub(in crate::table) const RESOURCE_QUOTA: Printer =
    Printer::new(RESOURCE_QUOTA_COLUMNS, resource_quota);

const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Status", "The status of the namespace"),
    AGE,
];

fn namespace(object: &Value, now: i64) -> Vec<Value> {
    // A namespace's phase defaults to Active.
    let phase = match text(object, "/status/phase") {
        "" => "Active",
        phase => phase,
    };
    cells![cells::name(object), phase, cells::age(object, now)]
}

const CONFIG_MAP_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Data",
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
    ),
    AGE,
];

/// Data counts both maps; the cell is a number although the column is a string.
fn config_map(object: &Value, now: i64) -> Vec<Value> {
    let data = count(object, "/data") + count(object, "/binaryData");
    cells![cells::name(object), data, cells::age(object, now)]
}

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Type",
        "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
    ),
    Column::string(
        "Data",
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
    ),
    AGE,
];

fn secret(object: &Value, now: i64) -> Vec<Value> {
    // A secret's type defaults to Opaque.
    let kind = match text(object, "/type") {
        "" => "Opaque",
        kind => kind,
    };
    cells![
        cells::name(object),
        kind,
        count(object, "/data"),
        cells::age(object, now),
    ]
}

const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Secrets",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret",
    ),
    AGE,
];

fn service_account(object: &Value, now: i64) -> Vec<Value> {
    cells![
        cells::name(object),
        count(object, "/secrets"),
        cells::age(object, now),
    ]
}

const POD_TEMPLATE_COLUMNS: &[Column] = &[
    NAME,
    CONTAINERS,
    IMAGES,
    Column::string("Pod Labels", "The labels for the pod template."),
];

/// The one printer without an Age column.
fn pod_template(object: &Value, _now: i64) -> Vec<Value> {
    let template = object.get("template").unwrap_or(&Value::Null);
    let (names, images) = cells::container_cells(template.get("spec").unwrap_or(&Value::Null));
    cells![
        cells::name(object),
        names,
        images,
        cells::format_labels(template.pointer("/metadata/labels")),
    ]
}

const REPLICATION_CONTROLLER_COLUMNS: &[Column] = &[
    NAME,
    Column::integer("Desired", "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"),
    Column::integer("Current", "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"),
    Column::integer("Ready", "The number of ready replicas for this replication controller."),
    AGE,
    CONTAINERS.wide(),
    IMAGES.wide(),
    Column::string("Selector", "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
];

fn replication_controller(object: &Value, now: i64) -> Vec<Value> {
    // Replicas default to 1, and an empty selector to the template's labels.
    let desired = cells::optional_int(object, "/spec/replicas").unwrap_or(1);
    let template = object.pointer("/spec/template").unwrap_or(&Value::Null);
    let template_labels = template
        .pointer("/metadata/labels")
        .filter(|l| l.is_object());
    let selector = match object.pointer("/spec/selector") {
        Some(Value::Object(map)) if !map.is_empty() => object.pointer("/spec/selector"),
        _ => template_labels,
    };
    let (names, images) = cells::container_cells(template.get("spec").unwrap_or(&Value::Null));
    cells![
        cells::name(object),
        desired,
        int(object, "/status/replicas"),
        int(object, "/status/readyReplicas"),
        cells::age(object, now),
        names,
        images,
        cells::format_labels(selector),
    ]
}

const RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Request",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    Column::string(
        "Limit",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

/// `name: used/hard` for each resource of `status.hard`, in name order; `limits.*` resources
/// in the Limit column, all others in the Request column.
fn resource_quota(object: &Value, now: i64) -> Vec<Value> {
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    if let Some(hard) = object.pointer("/status/hard").and_then(Value::as_object) {
        let used = object.pointer("/status/used");
        let mut resources: Vec<(&String, &Value)> = hard.iter().collect();
        resources.sort_by(|a, b| a.0.cmp(b.0));
        for (resource, hard) in resources {
            let entry = format!(
                "{resource}: {}/{}",
                quantity::or_zero(used.and_then(|u| u.get(resource))),
                quantity::or_zero(Some(hard)),
            );
            let mut pieces = resource.split('.');
            let is_limit = pieces.next() == Some("limits") && pieces.next().is_some();
            if is_limit {
                limits.push(entry);
            } else {
                requests.push(entry);
            }
        }
    }
    cells![
        cells::name(object),
        requests.join(", "),
        limits.join(", "),
        cells::age(object, now),
    ]
}

/// The Containers and Images cells of a workload's pod template (`spec.template`).
pub(in crate::table) fn template_containers(object: &Value, pointer: &str) -> (String, String) {
    cells::container_cells(object.pointer(pointer).unwrap_or(&Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::table::tests::{NOW, minutes_ago as created};

    #[test]
    fn counts_config_map_and_secret_data() {
        let cases = [
            (
                CONFIG_MAP,
                json!({"metadata": {"name": "c", "creationTimestamp": created(5)},
                       "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
                json!(["c", 3, "5m"]),
            ),
            (
                CONFIG_MAP,
                json!({"metadata": {"name": "empty", "creationTimestamp": created(5)}}),
                json!(["empty", 0, "5m"]),
            ),
            (
                SECRET,
                json!({"metadata": {"name": "s", "creationTimestamp": created(60)},
                       "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}),
                json!(["s", "kubernetes.io/tls", 2, "60m"]),
            ),
            (
                SECRET,
                json!({"metadata": {"name": "plain", "creationTimestamp": created(60)},
                       "data": {"k": ""}, "stringData": {"x": "y"}}),
                json!(["plain", "Opaque", 1, "60m"]),
            ),
            (
                SERVICE_ACCOUNT,
                json!({"metadata": {"name": "default", "creationTimestamp": created(2)},
                       "secrets": [{"name": "token"}]}),
                json!(["default", 1, "2m"]),
            ),
            (
                NAMESPACE,
                json!({"metadata": {"name": "gone", "creationTimestamp": created(2)},
                       "status": {"phase": "Terminating"}}),
                json!(["gone", "Terminating", "2m"]),
            ),
            (
                NAMESPACE,
                json!({"metadata": {"name": "new"}}),
                json!(["new", "Active", "<unknown>"]),
            ),
        ];
        for (printer, object, want) in cases {
            assert_eq!(Value::from((printer.cells)(&object, NOW)), want, "{object}");
        }
    }

    #[test]
    fn prints_templates_and_replication_controllers() {
        let template = json!({
            "metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [
                {"name": "web", "image": "nginx:1.27"},
                {"name": "log", "image": "busybox"},
            ]},
        });
        let cases = [
            (
                POD_TEMPLATE,
                json!({"metadata": {"name": "t"}, "template": template}),
                json!(["t", "web,log", "nginx:1.27,busybox", "app=web,tier=front"]),
            ),
            (
                REPLICATION_CONTROLLER,
                json!({"metadata": {"name": "rc", "creationTimestamp": created(10)},
                       "spec": {"replicas": 3, "selector": {"app": "web"}, "template": template},
                       "status": {"replicas": 3, "readyReplicas": 2}}),
                json!([
                    "rc",
                    3,
                    3,
                    2,
                    "10m",
                    "web,log",
                    "nginx:1.27,busybox",
                    "app=web"
                ]),
            ),
            (
                REPLICATION_CONTROLLER,
                json!({"metadata": {"name": "defaults", "creationTimestamp": created(10)},
                       "spec": {"template": template}}),
                json!([
                    "defaults",
                    1,
                    0,
                    0,
                    "10m",
                    "web,log",
                    "nginx:1.27,busybox",
                    "app=web,tier=front"
                ]),
            ),
            (
                REPLICATION_CONTROLLER,
                json!({"metadata": {"name": "bare", "creationTimestamp": created(10)},
                       "spec": {"replicas": 0}}),
                json!(["bare", 0, 0, 0, "10m", "", "", "<none>"]),
            ),
        ];
        for (printer, object, want) in cases {
            assert_eq!(Value::from((printer.cells)(&object, NOW)), want, "{object}");
        }
    }

    #[test]
    fn splits_resource_quota_into_requests_and_limits() {
        let quota = json!({
            "metadata": {"name": "q", "creationTimestamp": created(3)},
            "status": {
                "hard": {"pods": "10", "limits.cpu": "2", "requests.memory": "1024Mi",
                         "limits.memory": "2Gi", "count/deployments.apps": "5", "limits": "1"},
                "used": {"pods": "3", "limits.cpu": "500m", "requests.memory": "512Mi"},
            },
        });
        let want = json!([
            "q",
            "count/deployments.apps: 0/5, limits: 0/1, pods: 3/10, requests.memory: 512Mi/1Gi",
            "limits.cpu: 500m/2, limits.memory: 0/2Gi",
            "3m",
        ]);
        assert_eq!(Value::from(resource_quota(&quota, NOW)), want);
        let empty = json!({"metadata": {"name": "e", "creationTimestamp": created(3)}});
        assert_eq!(
            Value::from(resource_quota(&empty, NOW)),
            json!(["e", "", "", "3m"])
        );
    }
}
