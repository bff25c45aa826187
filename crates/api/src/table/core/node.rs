//! The Node printer: readiness, roles from labels, versions and addresses.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::table::cells::{self, items, text};
use crate::table::{AGE, Column, NAME, Printer};

pub(in crate::table) const NODE: Printer = Printer::new(NODE_COLUMNS, node);

const NODE_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Status", "The status of the node"),
    Column::string("Roles", "The roles of the node"),
    AGE,
    Column::string("Version", "Kubelet Version reported by the node."),
    Column::string("Internal-IP", "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).").wide(),
    Column::string("External-IP", "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).").wide(),
    Column::string("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).").wide(),
    Column::string("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).").wide(),
    Column::string("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).").wide(),
];

const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
const ROLE_LABEL: &str = "kubernetes.io/role";

fn node(object: &Value, now: i64) -> Vec<Value> {
    let info = |field: &str| match text(object, &format!("/status/nodeInfo/{field}")) {
        "" => "<unknown>",
        value => value,
    };
    cells![
        cells::name(object),
        status(object),
        roles(object),
        cells::age(object, now),
        text(object, "/status/nodeInfo/kubeletVersion"),
        address(object, "InternalIP"),
        address(object, "ExternalIP"),
        info("osImage"),
        info("kernelVersion"),
        info("containerRuntimeVersion"),
    ]
}

/// `Ready`, `NotReady` or `Unknown` from the Ready condition (the last one when repeated), then
/// `SchedulingDisabled` when cordoned.
fn status(object: &Value) -> String {
    let ready = items(object, "/status/conditions")
        .iter()
        .rfind(|c| text(c, "/type") == "Ready");
    let mut status = match ready {
        Some(c) if text(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }
    .to_owned();
    if cells::optional_bool(object, "/spec/unschedulable") == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

/// The roles named by `node-role.kubernetes.io/<role>` label keys and by the value of the
/// `kubernetes.io/role` label, sorted; `<none>` without any.
fn roles(object: &Value) -> String {
    let Some(labels) = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
    else {
        return "<none>".to_owned();
    };
    let mut roles = BTreeSet::new();
    for (key, value) in labels {
        if let Some(role) = key.strip_prefix(ROLE_LABEL_PREFIX) {
            if !role.is_empty() {
                roles.insert(role);
            }
        } else if key == ROLE_LABEL
            && let Some(role) = value.as_str().filter(|r| !r.is_empty())
        {
            roles.insert(role);
        }
    }
    if roles.is_empty() {
        return "<none>".to_owned();
    }
    roles.into_iter().collect::<Vec<_>>().join(",")
}

/// The first address of a type, `<none>` without one.
fn address<'a>(object: &'a Value, kind: &str) -> &'a str {
    items(object, "/status/addresses")
        .iter()
        .find(|a| text(a, "/type") == kind)
        .map_or("<none>", |a| text(a, "/address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago};
    use serde_json::json;

    fn node_with(labels: Value, unschedulable: bool, conditions: Value) -> Value {
        json!({
            "metadata": {"name": "n1", "creationTimestamp": minutes_ago(60 * 24 * 3),
                         "labels": labels},
            "spec": {"unschedulable": unschedulable},
            "status": {"conditions": conditions},
        })
    }

    #[test]
    fn status_follows_the_ready_condition() {
        let ready = json!([{"type": "MemoryPressure", "status": "False"},
                           {"type": "Ready", "status": "True"}]);
        let cases = [
            (false, ready.clone(), "Ready"),
            (true, ready, "Ready,SchedulingDisabled"),
            (
                false,
                json!([{"type": "Ready", "status": "False"}]),
                "NotReady",
            ),
            (
                false,
                json!([{"type": "Ready", "status": "Unknown"}]),
                "NotReady",
            ),
            (
                false,
                json!([{"type": "Ready", "status": "True"}, {"type": "Ready", "status": "False"}]),
                "NotReady",
            ),
            (false, json!([]), "Unknown"),
            (true, json!([]), "Unknown,SchedulingDisabled"),
        ];
        for (unschedulable, conditions, want) in cases {
            let node = node_with(json!({}), unschedulable, conditions);
            assert_eq!(status(&node), want, "{node}");
        }
    }

    #[test]
    fn roles_come_from_labels() {
        let cases = [
            (
                json!({"node-role.kubernetes.io/control-plane": "",
                       "node-role.kubernetes.io/master": ""}),
                "control-plane,master",
            ),
            (
                json!({"kubernetes.io/role": "worker", "node-role.kubernetes.io/worker": "",
                       "node-role.kubernetes.io/": "x"}),
                "worker",
            ),
            (json!({"kubernetes.io/role": ""}), "<none>"),
            (json!({"kubernetes.io/hostname": "n1"}), "<none>"),
        ];
        for (labels, want) in cases {
            let node = node_with(labels, false, json!([]));
            assert_eq!(roles(&node), want, "{node}");
        }
    }

    #[test]
    fn prints_versions_and_addresses() {
        let node = json!({
            "metadata": {"name": "n1", "creationTimestamp": minutes_ago(60 * 24 * 3),
                         "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "n1"},
                              {"type": "InternalIP", "address": "192.168.1.10"},
                              {"type": "InternalIP", "address": "192.168.1.11"}],
                "nodeInfo": {"kubeletVersion": "v1.33.3", "osImage": "Debian GNU/Linux 12",
                             "kernelVersion": "6.1.0", "containerRuntimeVersion": ""},
            },
        });
        let want = json!([
            "n1",
            "Ready",
            "control-plane",
            "3d",
            "v1.33.3",
            "192.168.1.10",
            "<none>",
            "Debian GNU/Linux 12",
            "6.1.0",
            "<unknown>"
        ]);
        assert_eq!(Value::from(node_cells(&node)), want);
    }

    fn node_cells(object: &Value) -> Vec<Value> {
        (NODE.cells)(object, NOW)
    }
}
