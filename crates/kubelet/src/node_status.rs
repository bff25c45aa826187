//! The Node's status as upstream's status setters build it: capacity and allocatable, addresses,
//! daemon endpoints, node info, and the MemoryPressure, DiskPressure, PIDPressure and Ready
//! conditions, each with a heartbeat that moves on every sync and a transition time that moves
//! only when the condition's status does. Plain functions over data; the agent reads the machine
//! and talks to the API server.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus, NodeSwapStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::config::{KUBELET_VERSION, NodeConfig};
use crate::eviction::Pressure;
use crate::machine::Machine;
use crate::quantity::{binary_si, decimal_si, hugepage_resource};

pub const MEMORY_PRESSURE: &str = "MemoryPressure";
pub const DISK_PRESSURE: &str = "DiskPressure";
pub const PID_PRESSURE: &str = "PIDPressure";
pub const READY: &str = "Ready";

/// The conditions this kubelet owns, in the order upstream's setters add them.
pub const OWN_CONDITIONS: [&str; 4] = [MEMORY_PRESSURE, DISK_PRESSURE, PID_PRESSURE, READY];

/// The container runtime this node reports (`containerRuntimeVersion`).
pub const RUNTIME_VERSION: &str = concat!("cox://", env!("CARGO_PKG_VERSION"));

/// What a sync knows beyond the configuration and the machine's fixed facts.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The node file system's size in bytes: `ephemeral-storage`.
    pub storage_capacity: u64,
    pub pressure: Pressure,
    /// Why the node is not ready (runtime, network, ...); empty when it is.
    pub not_ready: Vec<String>,
}

/// `now` as the API's `Time` keeps it: whole seconds.
pub fn time(now: Timestamp) -> Time {
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// The status to report, from the stored one (`existing`), as upstream's `setNodeStatus`
/// updates the Node it read: resources others advertise and conditions others own are kept.
pub fn desired_status(
    existing: Option<&NodeStatus>,
    config: &NodeConfig,
    machine: &Machine,
    observed: &Observed,
    now: Timestamp,
) -> NodeStatus {
    let mut status = existing.cloned().unwrap_or_default();
    let (capacity, allocatable) = resources(config, machine, observed.storage_capacity);
    let mut all_capacity = status.capacity.take().unwrap_or_default();
    let mut all_allocatable = status.allocatable.take().unwrap_or_default();
    // Resources someone else advertises (device plugins, extended resources) stay as they are.
    for (name, value) in &all_capacity {
        if !capacity.contains_key(name) {
            all_allocatable
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
    }
    all_capacity.extend(capacity);
    all_allocatable.extend(allocatable);

    let mut not_ready = observed.not_ready.clone();
    let missing: Vec<&str> = ["cpu", "memory", "pods"]
        .into_iter()
        .filter(|name| !all_capacity.contains_key(*name))
        .collect();
    if !missing.is_empty() {
        not_ready.push(format!(
            "missing node capacity for resources: {}",
            missing.join(", ")
        ));
    }
    status.capacity = Some(all_capacity);
    status.allocatable = Some(all_allocatable);
    status.addresses = Some(addresses(config));
    status.daemon_endpoints = Some(NodeDaemonEndpoints {
        kubelet_endpoint: Some(DaemonEndpoint {
            port: i32::from(config.kubelet_port),
        }),
    });
    status.node_info = Some(node_info(machine));
    let mut conditions = status.conditions.take().unwrap_or_default();
    set_conditions(&mut conditions, observed.pressure, &not_ready, &time(now));
    status.conditions = Some(conditions);
    status
}

/// Capacity and allocatable of the resources the kubelet reports: allocatable is capacity
/// less the hard eviction reservation, and memory less preallocated huge pages.
fn resources(
    config: &NodeConfig,
    machine: &Machine,
    storage_capacity: u64,
) -> (BTreeMap<String, Quantity>, BTreeMap<String, Quantity>) {
    let (memory_reserved, storage_reserved) = config
        .eviction
        .reservation(machine.memory_bytes, storage_capacity);
    let hugepages_total: u64 = machine.hugepages.iter().map(|(_, bytes)| bytes).sum();
    let mut capacity = BTreeMap::from([
        ("cpu".to_owned(), decimal_si(machine.cpus)),
        ("memory".to_owned(), binary_si(machine.memory_bytes)),
        ("ephemeral-storage".to_owned(), binary_si(storage_capacity)),
        ("pods".to_owned(), decimal_si(u64::from(config.max_pods))),
    ]);
    let mut allocatable = capacity.clone();
    allocatable.insert(
        "memory".to_owned(),
        binary_si(
            machine
                .memory_bytes
                .saturating_sub(memory_reserved)
                .saturating_sub(hugepages_total),
        ),
    );
    allocatable.insert(
        "ephemeral-storage".to_owned(),
        binary_si(storage_capacity.saturating_sub(storage_reserved)),
    );
    for (page_size, bytes) in &machine.hugepages {
        let name = hugepage_resource(*page_size);
        capacity.insert(name.clone(), binary_si(*bytes));
        allocatable.insert(name, binary_si(*bytes));
    }
    (capacity, allocatable)
}

/// `InternalIP` from `--node-ip`, then `Hostname`, as upstream without a cloud provider.
fn addresses(config: &NodeConfig) -> Vec<NodeAddress> {
    vec![
        NodeAddress {
            type_: "InternalIP".to_owned(),
            address: config.node_ip.to_string(),
        },
        NodeAddress {
            type_: "Hostname".to_owned(),
            address: config.name.clone(),
        },
    ]
}

fn node_info(machine: &Machine) -> NodeSystemInfo {
    NodeSystemInfo {
        architecture: crate::go_arch().to_owned(),
        boot_id: machine.boot_id.clone(),
        container_runtime_version: RUNTIME_VERSION.to_owned(),
        kernel_version: machine.kernel_version.clone(),
        // Upstream still fills the deprecated field: DisableNodeKubeProxyVersion is off in 1.33.
        kube_proxy_version: KUBELET_VERSION.to_owned(),
        kubelet_version: KUBELET_VERSION.to_owned(),
        machine_id: machine.machine_id.clone(),
        operating_system: "linux".to_owned(),
        os_image: machine.os_image.clone(),
        swap: Some(NodeSwapStatus {
            capacity: Some(i64::try_from(machine.swap_bytes).unwrap_or(i64::MAX)),
        }),
        system_uuid: machine.system_uuid.clone(),
    }
}

/// A condition's status, reason and message for each state, in upstream's words.
struct Wording {
    kind: &'static str,
    bad: (&'static str, &'static str),
    good: (&'static str, &'static str),
}

const PRESSURE_WORDING: [Wording; 3] = [
    Wording {
        kind: MEMORY_PRESSURE,
        bad: (
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available",
        ),
        good: (
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
    },
    Wording {
        kind: DISK_PRESSURE,
        bad: ("KubeletHasDiskPressure", "kubelet has disk pressure"),
        good: ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    },
    Wording {
        kind: PID_PRESSURE,
        bad: (
            "KubeletHasInsufficientPID",
            "kubelet has insufficient PID available",
        ),
        good: (
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
    },
];

/// Updates this kubelet's conditions in place (others' are left alone; missing ones are
/// appended in upstream's order), as upstream's condition setters: every condition gets a
/// fresh heartbeat; its transition time moves only when its status changes.
pub fn set_conditions(
    conditions: &mut Vec<NodeCondition>,
    pressure: Pressure,
    not_ready: &[String],
    now: &Time,
) {
    let pressures = [pressure.memory, pressure.disk, pressure.pid];
    for (wording, under_pressure) in PRESSURE_WORDING.iter().zip(pressures) {
        let (status, (reason, message)) = if under_pressure {
            ("True", wording.bad)
        } else {
            ("False", wording.good)
        };
        set_condition(
            conditions,
            wording.kind,
            status,
            reason,
            message.to_owned(),
            now,
        );
    }
    let (status, reason, message) = match not_ready {
        [] => (
            "True",
            "KubeletReady",
            "kubelet is posting ready status".to_owned(),
        ),
        // Upstream aggregates the errors: one alone, several as `[a, b]`.
        [one] => ("False", "KubeletNotReady", one.clone()),
        many => ("False", "KubeletNotReady", format!("[{}]", many.join(", "))),
    };
    set_condition(conditions, READY, status, reason, message, now);
}

fn set_condition(
    conditions: &mut Vec<NodeCondition>,
    kind: &str,
    status: &str,
    reason: &str,
    message: String,
    now: &Time,
) {
    let index = match conditions.iter().position(|c| c.type_ == kind) {
        Some(index) => index,
        None => {
            conditions.push(NodeCondition {
                type_: kind.to_owned(),
                ..NodeCondition::default()
            });
            conditions.len() - 1
        }
    };
    let Some(condition) = conditions.get_mut(index) else {
        return;
    };
    condition.last_heartbeat_time = Some(now.clone());
    if condition.status != status || condition.last_transition_time.is_none() {
        condition.last_transition_time = Some(now.clone());
    }
    condition.status = status.to_owned();
    condition.reason = Some(reason.to_owned());
    condition.message = Some(message);
}

/// Whether `new` differs from `old` in anything but heartbeats (upstream's
/// `nodeStatusHasChanged`): only then, or when a report is due, is the status posted.
pub fn status_changed(old: &NodeStatus, new: &NodeStatus) -> bool {
    let without_heartbeats = |status: &NodeStatus| {
        let mut conditions = status.conditions.clone().unwrap_or_default();
        conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
        for condition in &mut conditions {
            condition.last_heartbeat_time = None;
        }
        NodeStatus {
            conditions: Some(conditions),
            ..status.clone()
        }
    };
    without_heartbeats(old) != without_heartbeats(new)
}

/// The events upstream's kubelet records when its conditions change (first set included):
/// reason and message, e.g. `NodeReady`, "Node node-1 status is now: NodeReady".
pub fn condition_events(
    node: &str,
    old: Option<&NodeStatus>,
    new: &NodeStatus,
) -> Vec<(String, String)> {
    let status_of = |status: Option<&NodeStatus>, kind: &str| {
        status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == kind))
            .map(|c| c.status.clone())
    };
    let words = [
        ("Ready", "NodeReady", "NodeNotReady"),
        (
            "MemoryPressure",
            "NodeHasInsufficientMemory",
            "NodeHasSufficientMemory",
        ),
        (
            "DiskPressure",
            "NodeHasDiskPressure",
            "NodeHasNoDiskPressure",
        ),
        (
            "PIDPressure",
            "NodeHasInsufficientPID",
            "NodeHasSufficientPID",
        ),
    ];
    words
        .iter()
        .filter_map(|(kind, when_true, otherwise)| {
            let now = status_of(Some(new), kind)?;
            if status_of(old, kind).as_ref() == Some(&now) {
                return None;
            }
            let reason = if now == "True" { when_true } else { otherwise };
            Some((
                (*reason).to_string(),
                format!("Node {node} status is now: {reason}"),
            ))
        })
        .collect()
}

/// The strategic merge patch of `nodes/status` that posts `new`: this kubelet's conditions
/// (merged by type, so others' stay), resources (merged by name), and the addresses, which
/// replace the stored list when they changed, as upstream's kubelet patches them (their merge
/// key, `type`, is not unique).
pub fn status_patch(old: Option<&NodeStatus>, new: &NodeStatus) -> Value {
    let own: Vec<&NodeCondition> = new
        .conditions
        .iter()
        .flatten()
        .filter(|c| OWN_CONDITIONS.contains(&c.type_.as_str()))
        .collect();
    let mut addresses = serde_json::to_value(&new.addresses).unwrap_or(Value::Null);
    let old_addresses = old.and_then(|o| o.addresses.as_ref());
    if old_addresses.is_some_and(|a| !a.is_empty())
        && old_addresses != new.addresses.as_ref()
        && let Value::Array(list) = &mut addresses
    {
        list.push(json!({"$patch": "replace"}));
    }
    json!({
        "status": {
            "capacity": new.capacity,
            "allocatable": new.allocatable,
            "addresses": addresses,
            "conditions": own,
            "daemonEndpoints": new.daemon_endpoints,
            "nodeInfo": new.node_info,
        }
    })
}

#[cfg(test)]
mod events_tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeCondition;

    fn status(conditions: &[(&str, &str)]) -> NodeStatus {
        NodeStatus {
            conditions: Some(
                conditions
                    .iter()
                    .map(|(kind, status)| NodeCondition {
                        type_: (*kind).into(),
                        status: (*status).into(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn condition_changes_become_upstreams_events() {
        let first = status(&[("MemoryPressure", "False"), ("Ready", "True")]);
        let events = condition_events("node-1", None, &first);
        assert_eq!(
            events,
            [
                (
                    "NodeReady".to_string(),
                    "Node node-1 status is now: NodeReady".to_string()
                ),
                (
                    "NodeHasSufficientMemory".to_string(),
                    "Node node-1 status is now: NodeHasSufficientMemory".to_string()
                ),
            ]
        );
        assert!(condition_events("node-1", Some(&first), &first).is_empty());
        let later = status(&[("MemoryPressure", "True"), ("Ready", "False")]);
        let reasons: Vec<String> = condition_events("node-1", Some(&first), &later)
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(reasons, ["NodeNotReady", "NodeHasInsufficientMemory"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn config() -> NodeConfig {
        NodeConfig::new("node-1", IpAddr::from([10, 0, 0, 7]), "/var/lib/cox")
    }

    fn machine() -> Machine {
        Machine {
            cpus: 2,
            memory_bytes: 24_684_084 * 1024,
            swap_bytes: 0,
            hugepages: vec![(2 << 20, 4 << 20), (1 << 30, 0)],
            machine_id: "m".into(),
            system_uuid: "u".into(),
            boot_id: "b".into(),
            kernel_version: "6.1.0".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
        }
    }

    fn observed() -> Observed {
        Observed {
            storage_capacity: 105_088_212_992,
            ..Observed::default()
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).unwrap()
    }

    fn condition<'a>(status: &'a NodeStatus, kind: &str) -> &'a NodeCondition {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind)
            .unwrap()
    }

    fn quantity(map: &Option<BTreeMap<String, Quantity>>, name: &str) -> String {
        map.as_ref().unwrap()[name].0.clone()
    }

    #[test]
    fn capacity_and_allocatable_as_upstream() {
        let status = desired_status(None, &config(), &machine(), &observed(), at(0));
        let capacity = &status.capacity;
        let allocatable = &status.allocatable;
        assert_eq!(quantity(capacity, "cpu"), "2");
        assert_eq!(quantity(capacity, "memory"), "24684084Ki");
        assert_eq!(quantity(capacity, "pods"), "110");
        assert_eq!(quantity(capacity, "ephemeral-storage"), "102625208Ki");
        assert_eq!(quantity(capacity, "hugepages-2Mi"), "4Mi");
        assert_eq!(quantity(capacity, "hugepages-1Gi"), "0");
        assert_eq!(quantity(allocatable, "cpu"), "2");
        assert_eq!(quantity(allocatable, "pods"), "110");
        // Less 100Mi (memory.available) and the 4Mi of huge pages.
        assert_eq!(
            quantity(allocatable, "memory"),
            format!("{}Ki", 24_684_084 - 100 * 1024 - 4 * 1024)
        );
        // Less 10% (nodefs.available) as upstream rounds it: a plain number.
        assert_eq!(quantity(allocatable, "ephemeral-storage"), "94579391537");
        assert_eq!(quantity(allocatable, "hugepages-2Mi"), "4Mi");
    }

    #[test]
    fn addresses_endpoints_and_node_info() {
        let status = desired_status(None, &config(), &machine(), &observed(), at(0));
        let addresses: Vec<(String, String)> = status
            .addresses
            .unwrap()
            .into_iter()
            .map(|a| (a.type_, a.address))
            .collect();
        assert_eq!(
            addresses,
            [
                ("InternalIP".to_owned(), "10.0.0.7".to_owned()),
                ("Hostname".to_owned(), "node-1".to_owned())
            ]
        );
        assert_eq!(
            status
                .daemon_endpoints
                .unwrap()
                .kubelet_endpoint
                .unwrap()
                .port,
            10250
        );
        let info = status.node_info.unwrap();
        assert_eq!(info.kubelet_version, KUBELET_VERSION);
        assert_eq!(info.kube_proxy_version, KUBELET_VERSION);
        assert_eq!(info.container_runtime_version, "cox://0.1.0");
        assert_eq!(info.operating_system, "linux");
        assert_eq!(info.os_image, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(info.architecture, crate::go_arch());
        assert_eq!(info.swap.unwrap().capacity, Some(0));
    }

    #[test]
    fn first_conditions_in_upstreams_order_and_words() {
        let status = desired_status(None, &config(), &machine(), &observed(), at(0));
        let got: Vec<(&str, &str, &str, &str)> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| {
                (
                    c.type_.as_str(),
                    c.status.as_str(),
                    c.reason.as_deref().unwrap(),
                    c.message.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available"
                ),
                (
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure"
                ),
                (
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available"
                ),
                (
                    "Ready",
                    "True",
                    "KubeletReady",
                    "kubelet is posting ready status"
                ),
            ]
        );
        for c in status.conditions.iter().flatten() {
            assert_eq!(c.last_heartbeat_time, Some(time(at(0))));
            assert_eq!(c.last_transition_time, Some(time(at(0))));
        }
    }

    #[test]
    fn transition_times_move_only_when_status_changes() {
        let (config, machine) = (config(), machine());
        let first = desired_status(None, &config, &machine, &observed(), at(0));

        // Same state later: heartbeats move, transitions stay, and nothing counts as changed.
        let second = desired_status(Some(&first), &config, &machine, &observed(), at(10));
        let ready = condition(&second, READY);
        assert_eq!(ready.last_heartbeat_time, Some(time(at(10))));
        assert_eq!(ready.last_transition_time, Some(time(at(0))));
        assert!(!status_changed(&first, &second));

        // Memory pressure: that condition transitions, the others do not.
        let pressured = Observed {
            pressure: Pressure {
                memory: true,
                ..Pressure::default()
            },
            ..observed()
        };
        let third = desired_status(Some(&second), &config, &machine, &pressured, at(20));
        let memory = condition(&third, MEMORY_PRESSURE);
        assert_eq!(memory.status, "True");
        assert_eq!(
            memory.reason.as_deref(),
            Some("KubeletHasInsufficientMemory")
        );
        assert_eq!(
            memory.message.as_deref(),
            Some("kubelet has insufficient memory available")
        );
        assert_eq!(memory.last_transition_time, Some(time(at(20))));
        assert_eq!(
            condition(&third, DISK_PRESSURE).last_transition_time,
            Some(time(at(0)))
        );
        assert!(status_changed(&second, &third));

        // Not ready, with upstream's aggregated message.
        let broken = Observed {
            not_ready: vec![
                "container runtime is down".into(),
                "network plugin returns error".into(),
            ],
            ..observed()
        };
        let fourth = desired_status(Some(&third), &config, &machine, &broken, at(30));
        let ready = condition(&fourth, READY);
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("KubeletNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("[container runtime is down, network plugin returns error]")
        );
        assert_eq!(ready.last_transition_time, Some(time(at(30))));
        assert_eq!(
            condition(&fourth, MEMORY_PRESSURE).last_transition_time,
            Some(time(at(30))),
            "memory pressure ended"
        );

        // Ready again: a new transition.
        let fifth = desired_status(Some(&fourth), &config, &machine, &observed(), at(40));
        assert_eq!(condition(&fifth, READY).status, "True");
        assert_eq!(
            condition(&fifth, READY).last_transition_time,
            Some(time(at(40)))
        );
    }

    #[test]
    fn others_conditions_and_resources_are_kept() {
        let mut existing = NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "NetworkUnavailable".into(),
                status: "False".into(),
                reason: Some("RouteCreated".into()),
                ..NodeCondition::default()
            }]),
            capacity: Some(BTreeMap::from([(
                "example.com/gpu".to_owned(),
                Quantity("2".into()),
            )])),
            ..NodeStatus::default()
        };
        existing.allocatable = existing.capacity.clone();
        let status = desired_status(Some(&existing), &config(), &machine(), &observed(), at(0));
        let kinds: Vec<&str> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(
            kinds,
            [
                "NetworkUnavailable",
                "MemoryPressure",
                "DiskPressure",
                "PIDPressure",
                "Ready"
            ]
        );
        assert_eq!(quantity(&status.capacity, "example.com/gpu"), "2");
        assert_eq!(quantity(&status.allocatable, "example.com/gpu"), "2");
        // The patch carries only this kubelet's conditions.
        let patch = status_patch(Some(&existing), &status);
        let patched: Vec<&str> = patch["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(patched, OWN_CONDITIONS);
    }

    #[test]
    fn a_missing_capacity_makes_the_node_not_ready() {
        let mut conditions = Vec::new();
        set_conditions(
            &mut conditions,
            Pressure::default(),
            &["missing node capacity for resources: cpu".to_owned()],
            &time(at(0)),
        );
        let ready = conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(
            ready.message.as_deref(),
            Some("missing node capacity for resources: cpu")
        );
    }

    #[test]
    fn changed_addresses_replace_the_stored_list() {
        let status = desired_status(None, &config(), &machine(), &observed(), at(0));
        let patch = status_patch(Some(&status), &status);
        assert_eq!(patch["status"]["addresses"].as_array().unwrap().len(), 2);
        let mut moved = config();
        moved.node_ip = IpAddr::from([10, 0, 0, 8]);
        let new = desired_status(Some(&status), &moved, &machine(), &observed(), at(10));
        assert!(status_changed(&status, &new));
        let patch = status_patch(Some(&status), &new);
        assert_eq!(
            patch["status"]["addresses"],
            json!([
                {"type": "InternalIP", "address": "10.0.0.8"},
                {"type": "Hostname", "address": "node-1"},
                {"$patch": "replace"}
            ])
        );
    }
}
