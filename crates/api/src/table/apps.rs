//! Printers of the `apps` group: the workload controllers and their revisions.

use serde_json::Value;

use super::cells::{self, int, items, optional_int, text};
use super::core::template_containers;
use super::{AGE, CONTAINERS, Column, IMAGES, NAME, Printer};

pub(super) const DEPLOYMENT: Printer = Printer::new(DEPLOYMENT_COLUMNS, deployment);
pub(super) const REPLICA_SET: Printer = Printer::new(REPLICA_SET_COLUMNS, replica_set);
pub(super) const STATEFUL_SET: Printer = Printer::new(STATEFUL_SET_COLUMNS, stateful_set);
pub(super) const DAEMON_SET: Printer = Printer::new(DAEMON_SET_COLUMNS, daemon_set);
pub(super) const CONTROLLER_REVISION: Printer =
    Printer::new(CONTROLLER_REVISION_COLUMNS, controller_revision);

const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Ready", "Number of the pod with ready state"),
    Column::string("Up-to-date", "Total number of non-terminating pods targeted by this deployment that have the desired template spec."),
    Column::string("Available", "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment."),
    AGE,
    CONTAINERS.wide(),
    IMAGES.wide(),
    Column::string("Selector", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.").wide(),
];

const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::integer("Desired", "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"),
    Column::integer("Current", "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"),
    Column::integer("Ready", "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."),
    AGE,
    CONTAINERS.wide(),
    IMAGES.wide(),
    Column::string("Selector", "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
];

const STATEFUL_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Ready", "Number of the pod with ready state"),
    AGE,
    CONTAINERS.wide(),
    IMAGES.wide(),
];

const DAEMON_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::integer("Desired", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
    Column::integer("Current", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
    Column::integer("Ready", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
    Column::integer("Up-to-date", "The total number of nodes that are running updated daemon pod"),
    Column::integer("Available", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
    Column::string("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
    AGE,
    CONTAINERS.wide(),
    IMAGES.wide(),
    Column::string("Selector", "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
];

const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Controller", "Controller of the object"),
    Column::string(
        "Revision",
        "revision indicates the revision of the state represented by Data.",
    ),
    AGE,
];

/// The desired replicas, which default to 1.
fn replicas(object: &Value) -> i64 {
    optional_int(object, "/spec/replicas").unwrap_or(1)
}

/// Up-to-date and Available are numbers although their columns are strings, as upstream's.
fn deployment(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) = template_containers(object, "/spec/template/spec");
    cells![
        cells::name(object),
        format!(
            "{}/{}",
            int(object, "/status/readyReplicas"),
            replicas(object)
        ),
        int(object, "/status/updatedReplicas"),
        int(object, "/status/availableReplicas"),
        cells::age(object, now),
        names,
        images,
        cells::label_selector_string(object.pointer("/spec/selector")),
    ]
}

fn replica_set(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) = template_containers(object, "/spec/template/spec");
    cells![
        cells::name(object),
        replicas(object),
        int(object, "/status/replicas"),
        int(object, "/status/readyReplicas"),
        cells::age(object, now),
        names,
        images,
        cells::format_label_selector(object.pointer("/spec/selector")),
    ]
}

fn stateful_set(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) = template_containers(object, "/spec/template/spec");
    cells![
        cells::name(object),
        format!(
            "{}/{}",
            int(object, "/status/readyReplicas"),
            replicas(object)
        ),
        cells::age(object, now),
        names,
        images,
    ]
}

fn daemon_set(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) = template_containers(object, "/spec/template/spec");
    cells![
        cells::name(object),
        int(object, "/status/desiredNumberScheduled"),
        int(object, "/status/currentNumberScheduled"),
        int(object, "/status/numberReady"),
        int(object, "/status/updatedNumberScheduled"),
        int(object, "/status/numberAvailable"),
        cells::format_labels(object.pointer("/spec/template/spec/nodeSelector")),
        cells::age(object, now),
        names,
        images,
        cells::format_label_selector(object.pointer("/spec/selector")),
    ]
}

/// Revision is a number although its column is a string, as upstream's.
fn controller_revision(object: &Value, now: i64) -> Vec<Value> {
    cells![
        cells::name(object),
        controller(object),
        int(object, "/revision"),
        cells::age(object, now),
    ]
}

/// The controlling owner as `kind.group/name` in lower case (`statefulset.apps/web`), or
/// `<none>`.
fn controller(object: &Value) -> String {
    let Some(owner) = items(object, "/metadata/ownerReferences")
        .iter()
        .find(|o| cells::optional_bool(o, "/controller") == Some(true))
    else {
        return "<none>".to_owned();
    };
    let name = text(owner, "/name");
    let kind = text(owner, "/kind");
    // The group is the part of apiVersion before the slash; `v1` has none. Upstream fails the
    // whole request on an apiVersion with more than one slash; this prints it unchanged.
    let api_version = text(owner, "/apiVersion");
    let group = match api_version.split_once('/') {
        Some((group, version)) if !version.contains('/') => group,
        Some(_) => api_version,
        None => "",
    };
    let kind = match (kind, group) {
        ("", "") => return name.to_owned(),
        (kind, "") => kind.to_owned(),
        (kind, group) => format!("{kind}.{group}"),
    };
    format!("{}/{name}", kind.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago};
    use serde_json::json;

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "web", "image": "nginx:1.27"},
                                       {"name": "sidecar", "image": "envoy"}]}})
    }

    #[test]
    fn prints_deployments() {
        let cases = [
            (
                "rolled out",
                json!({"spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                                "template": template()},
                       "status": {"readyReplicas": 3, "updatedReplicas": 3,
                                  "availableReplicas": 3}}),
                json!([
                    "web",
                    "3/3",
                    3,
                    3,
                    "20m",
                    "web,sidecar",
                    "nginx:1.27,envoy",
                    "app=web"
                ]),
            ),
            (
                "rolling out",
                json!({"spec": {"replicas": 4, "template": template(),
                                "selector": {"matchExpressions": [
                                    {"key": "app", "operator": "In", "values": ["web"]}]}},
                       "status": {"readyReplicas": 2, "updatedReplicas": 1,
                                  "availableReplicas": 2}}),
                json!([
                    "web",
                    "2/4",
                    1,
                    2,
                    "20m",
                    "web,sidecar",
                    "nginx:1.27,envoy",
                    "app in (web)"
                ]),
            ),
            (
                "new, replicas defaulted, no selector",
                json!({"spec": {"template": template()}}),
                json!([
                    "web",
                    "0/1",
                    0,
                    0,
                    "20m",
                    "web,sidecar",
                    "nginx:1.27,envoy",
                    ""
                ]),
            ),
            (
                "scaled to zero",
                json!({"spec": {"replicas": 0, "selector": {}}}),
                json!(["web", "0/0", 0, 0, "20m", "", "", ""]),
            ),
        ];
        for (case, mut object, want) in cases {
            object["metadata"] = json!({"name": "web", "creationTimestamp": minutes_ago(20)});
            assert_eq!(Value::from(deployment(&object, NOW)), want, "{case}");
        }
    }

    #[test]
    fn prints_replica_stateful_and_daemon_sets() {
        let meta = json!({"name": "web", "creationTimestamp": minutes_ago(20)});
        let cases = [
            (
                REPLICA_SET,
                json!({"metadata": meta, "spec": {"replicas": 2, "template": template(),
                        "selector": {"matchLabels": {"app": "web", "pod-template-hash": "abc"}}},
                       "status": {"replicas": 2, "readyReplicas": 1}}),
                json!([
                    "web",
                    2,
                    2,
                    1,
                    "20m",
                    "web,sidecar",
                    "nginx:1.27,envoy",
                    "app=web,pod-template-hash=abc"
                ]),
            ),
            (
                REPLICA_SET,
                json!({"metadata": meta}),
                json!(["web", 1, 0, 0, "20m", "", "", "<none>"]),
            ),
            (
                STATEFUL_SET,
                json!({"metadata": meta, "spec": {"replicas": 3, "template": template()},
                       "status": {"readyReplicas": 1}}),
                json!(["web", "1/3", "20m", "web,sidecar", "nginx:1.27,envoy"]),
            ),
            (
                DAEMON_SET,
                json!({"metadata": meta,
                       "spec": {"selector": {"matchLabels": {"app": "web"}},
                                "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                                      "containers": [{"name": "agent", "image": "a:1"}]}}},
                       "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3,
                                  "numberReady": 2, "updatedNumberScheduled": 3,
                                  "numberAvailable": 2}}),
                json!([
                    "web",
                    3,
                    3,
                    2,
                    3,
                    2,
                    "kubernetes.io/os=linux",
                    "20m",
                    "agent",
                    "a:1",
                    "app=web"
                ]),
            ),
        ];
        for (printer, object, want) in cases {
            assert_eq!(Value::from((printer.cells)(&object, NOW)), want, "{object}");
        }
    }

    #[test]
    fn names_the_controller_of_a_revision() {
        let owner = |api_version: &str, kind: &str, controller: bool| {
            json!({"metadata": {"name": "web-7d4b9", "creationTimestamp": minutes_ago(20),
                                "ownerReferences": [{"apiVersion": api_version, "kind": kind,
                                                     "name": "web", "controller": controller}]},
                   "revision": 2})
        };
        let cases = [
            (
                owner("apps/v1", "StatefulSet", true),
                "statefulset.apps/web",
            ),
            (owner("v1", "Pod", true), "pod/web"),
            (owner("apps/v1", "DaemonSet", false), "<none>"),
            (owner("", "", true), "web"),
            (json!({"revision": 2}), "<none>"),
        ];
        for (object, want) in cases {
            let cells = controller_revision(&object, NOW);
            assert_eq!(cells[1], want, "{object}");
            assert_eq!(cells[2], 2, "{object}");
        }
    }
}
