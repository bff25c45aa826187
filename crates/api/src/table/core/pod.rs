//! The Pod printer: READY, STATUS and RESTARTS summarize the containers as upstream's
//! `printPod` does, including init and sidecar containers, scheduling gates and deletion.

use serde_json::{Value, json};

use crate::table::cells::{self, condition_is_true, int, items, text};
use crate::table::{AGE, Column, NAME, Printer, age};

pub(in crate::table) const POD: Printer = Printer {
    conditions: Some(conditions),
    ..Printer::new(POD_COLUMNS, pod_cells)
};

const POD_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    Column::string("Status", "The aggregate status of the containers in this pod."),
    Column::string("Restarts", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
    AGE,
    Column::string("IP", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.").wide(),
    Column::string("Node", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename").wide(),
    Column::string("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.").wide(),
    Column::string("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates").wide(),
];

/// Upstream marks rows of finished pods as Completed, which `kubectl get` uses to hide them
/// when asked to.
fn conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match text(pod, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{
        "type": "Completed",
        "status": "True",
        "reason": reason,
        "message": message,
    }]))
}

/// The summary of a pod's containers.
#[derive(Debug, Default)]
struct Summary {
    ready: i64,
    restarts: i64,
    /// When a counted container last terminated, in nanoseconds since the epoch.
    last_restart: Option<i128>,
}

impl Summary {
    fn count_restarts(&mut self, status: &Value) {
        self.restarts += int(status, "/restartCount");
        let finished = age::timestamp(status.pointer("/lastState/terminated/finishedAt"));
        if finished > self.last_restart {
            self.last_restart = finished;
        }
    }
}

fn pod_cells(pod: &Value, now: i64) -> Vec<Value> {
    let phase = text(pod, "/status/phase");
    let status_reason = text(pod, "/status/reason");
    let conditions = items(pod, "/status/conditions");
    let init_specs = items(pod, "/spec/initContainers");
    // Sidecars (restartable init containers) count among the pod's containers.
    let is_sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| text(c, "/name") == name && text(c, "/restartPolicy") == "Always")
    };
    let sidecars = init_specs
        .iter()
        .filter(|c| text(c, "/restartPolicy") == "Always")
        .count();
    let total = items(pod, "/spec/containers").len() + sidecars;

    let mut reason = if status_reason.is_empty() {
        phase.to_owned()
    } else {
        status_reason.to_owned()
    };
    let gated = conditions
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".to_owned();
    }

    // Every init container's restarts count while the pod initializes; once it has, only the
    // sidecars' do.
    let mut all = Summary::default();
    let mut sidecar = Summary::default();
    let mut initializing = false;
    for (i, status) in items(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        all.count_restarts(status);
        let restartable = is_sidecar(text(status, "/name"));
        if restartable {
            sidecar.count_restarts(status);
        }
        let terminated = status
            .pointer("/state/terminated")
            .filter(|t| t.is_object());
        if let Some(terminated) = terminated
            && int(terminated, "/exitCode") == 0
        {
            continue;
        }
        if restartable && cells::optional_bool(status, "/started") == Some(true) {
            if status.get("ready").and_then(Value::as_bool) == Some(true) {
                sidecar.ready += 1;
            }
            continue;
        }
        let waiting = text(status, "/state/waiting/reason");
        reason = if let Some(terminated) = terminated {
            match text(terminated, "/reason") {
                "" if int(terminated, "/signal") != 0 => {
                    format!("Init:Signal:{}", int(terminated, "/signal"))
                }
                "" => format!("Init:ExitCode:{}", int(terminated, "/exitCode")),
                why => format!("Init:{why}"),
            }
        } else if !waiting.is_empty() && waiting != "PodInitializing" {
            format!("Init:{waiting}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    let mut summary = Summary {
        ready: sidecar.ready,
        ..all
    };
    if !initializing || condition_is_true(conditions, "Initialized") {
        summary = sidecar;
        let mut has_running = false;
        // The first container's state is looked at last, so it decides the reason.
        for status in items(pod, "/status/containerStatuses").iter().rev() {
            summary.count_restarts(status);
            let waiting = text(status, "/state/waiting/reason");
            let terminated = status
                .pointer("/state/terminated")
                .filter(|t| t.is_object());
            if !waiting.is_empty() {
                reason = waiting.to_owned();
            } else if let Some(terminated) = terminated {
                reason = match text(terminated, "/reason") {
                    "" if int(terminated, "/signal") != 0 => {
                        format!("Signal:{}", int(terminated, "/signal"))
                    }
                    "" => format!("ExitCode:{}", int(terminated, "/exitCode")),
                    why => why.to_owned(),
                };
            } else if status.get("ready").and_then(Value::as_bool) == Some(true)
                && status
                    .pointer("/state/running")
                    .is_some_and(Value::is_object)
            {
                has_running = true;
                summary.ready += 1;
            }
        }
        // A pod whose first container completed while others still run is still running.
        if reason == "Completed" && has_running {
            reason = if condition_is_true_anywhere(conditions, "Ready") {
                "Running".to_owned()
            } else {
                "NotReady".to_owned()
            };
        }
    }

    if cells::is_deleting(pod) && status_reason == "NodeLost" {
        reason = "Unknown".to_owned();
    } else if cells::is_deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_owned();
    }

    let restarts = match summary.last_restart {
        Some(last) if summary.restarts != 0 => {
            let ago = age::human_duration(age::duration(i128::from(now) * 1_000_000_000, last));
            format!("{} ({ago} ago)", summary.restarts)
        }
        _ => summary.restarts.to_string(),
    };

    cells![
        cells::name(pod),
        format!("{}/{total}", summary.ready),
        reason,
        restarts,
        cells::age(pod, now),
        or_none(pod_ip(pod)),
        or_none(text(pod, "/spec/nodeName")),
        or_none(text(pod, "/status/nominatedNodeName")),
        readiness_gates(pod, conditions),
    ]
}

/// Upstream's `hasPodReadyCondition`: any Ready condition that is True, not just the first.
fn condition_is_true_anywhere(conditions: &[Value], kind: &str) -> bool {
    conditions
        .iter()
        .any(|c| text(c, "/type") == kind && text(c, "/status") == "True")
}

/// The first pod IP. Upstream reads `podIPs` after conversion, which puts `podIP` first when
/// the two disagree or `podIPs` is empty.
fn pod_ip(pod: &Value) -> &str {
    match text(pod, "/status/podIP") {
        "" => items(pod, "/status/podIPs")
            .first()
            .map_or("", |ip| text(ip, "/ip")),
        ip => ip,
    }
}

/// `true/total` over the readiness gates: a gate counts when the first condition of its type
/// is True.
fn readiness_gates(pod: &Value, conditions: &[Value]) -> String {
    let gates = items(pod, "/spec/readinessGates");
    if gates.is_empty() {
        return "<none>".to_owned();
    }
    let passed = gates
        .iter()
        .filter(|gate| condition_is_true(conditions, text(gate, "/conditionType")))
        .count();
    format!("{passed}/{}", gates.len())
}

fn or_none(value: &str) -> &str {
    if value.is_empty() { "<none>" } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago, seconds_ago};

    fn running(name: &str) -> Value {
        json!({"name": name, "ready": true, "restartCount": 0, "started": true,
               "state": {"running": {"startedAt": minutes_ago(10)}}})
    }

    fn waiting(name: &str, reason: &str, restarts: i64) -> Value {
        json!({"name": name, "ready": false, "restartCount": restarts,
               "state": {"waiting": {"reason": reason}}})
    }

    fn terminated(name: &str, reason: &str, exit_code: i64) -> Value {
        json!({"name": name, "ready": false, "restartCount": 0,
               "state": {"terminated": {"reason": reason, "exitCode": exit_code}}})
    }

    /// A pod created ten minutes ago with one container `app` (plus `extra` containers).
    fn pod_with(spec: Value, status: Value) -> Value {
        json!({
            "metadata": {"name": "p", "creationTimestamp": minutes_ago(10)},
            "spec": spec,
            "status": status,
        })
    }

    fn one_container() -> Value {
        json!({"containers": [{"name": "app", "image": "nginx"}]})
    }

    #[test]
    fn summarizes_ready_status_and_restarts() {
        let crash_looping = json!({
            "name": "app", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": minutes_ago(5)}},
        });
        let init_spec = json!({
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "app", "image": "nginx"}],
        });
        let cases: Vec<(&str, Value, Value, [&str; 3])> = vec![
            (
                "running",
                one_container(),
                json!({"phase": "Running", "containerStatuses": [running("app")]}),
                ["1/1", "Running", "0"],
            ),
            (
                "pending, not scheduled",
                one_container(),
                json!({"phase": "Pending"}),
                ["0/1", "Pending", "0"],
            ),
            (
                "container creating",
                one_container(),
                json!({"phase": "Pending",
                       "containerStatuses": [waiting("app", "ContainerCreating", 0)]}),
                ["0/1", "ContainerCreating", "0"],
            ),
            (
                "crash loop with the last restart's age",
                one_container(),
                json!({"phase": "Running", "containerStatuses": [crash_looping]}),
                ["0/1", "CrashLoopBackOff", "4 (5m ago)"],
            ),
            (
                "completed",
                one_container(),
                json!({"phase": "Succeeded",
                       "containerStatuses": [terminated("app", "Completed", 0)]}),
                ["0/1", "Completed", "0"],
            ),
            (
                "terminated without a reason, by signal",
                one_container(),
                json!({"phase": "Failed", "containerStatuses": [
                    {"name": "app", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
                ["0/1", "Signal:9", "0"],
            ),
            (
                "terminated without a reason, by exit code",
                one_container(),
                json!({"phase": "Failed", "containerStatuses": [
                    {"name": "app", "state": {"terminated": {"exitCode": 3}}}]}),
                ["0/1", "ExitCode:3", "0"],
            ),
            (
                "evicted",
                one_container(),
                json!({"phase": "Failed", "reason": "Evicted",
                       "message": "The node was low on resource: memory."}),
                ["0/1", "Evicted", "0"],
            ),
            (
                "init container running",
                init_spec.clone(),
                json!({"phase": "Pending",
                       "initContainerStatuses": [
                           {"name": "init", "state": {"running": {}}, "restartCount": 0}],
                       "containerStatuses": [waiting("app", "PodInitializing", 0)]}),
                ["0/1", "Init:0/1", "0"],
            ),
            (
                "init container failed",
                init_spec.clone(),
                json!({"phase": "Pending",
                       "initContainerStatuses": [terminated("init", "Error", 1)],
                       "containerStatuses": [waiting("app", "PodInitializing", 0)]}),
                ["0/1", "Init:Error", "0"],
            ),
            (
                "init container crash looping",
                init_spec.clone(),
                json!({"phase": "Pending",
                       "initContainerStatuses": [waiting("init", "CrashLoopBackOff", 3)],
                       "containerStatuses": [waiting("app", "PodInitializing", 0)]}),
                ["0/1", "Init:CrashLoopBackOff", "3"],
            ),
            (
                "init container killed by a signal",
                init_spec.clone(),
                json!({"phase": "Pending",
                       "initContainerStatuses": [
                           {"name": "init", "state": {"terminated": {"exitCode": 2, "signal": 15}}}]}),
                ["0/1", "Init:Signal:15", "0"],
            ),
            (
                "init done, app running: init restarts no longer count",
                init_spec,
                json!({"phase": "Running",
                       "conditions": [{"type": "Initialized", "status": "True"}],
                       "initContainerStatuses": [{"name": "init", "restartCount": 2,
                           "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}],
                       "containerStatuses": [running("app")]}),
                ["1/1", "Running", "0"],
            ),
            (
                "scheduling gated",
                one_container(),
                json!({"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
                ["0/1", "SchedulingGated", "0"],
            ),
            (
                "first container completed, sidecar-like second still running and ready",
                json!({"containers": [{"name": "job"}, {"name": "proxy"}]}),
                json!({"phase": "Running",
                       "conditions": [{"type": "Ready", "status": "False"},
                                      {"type": "Ready", "status": "True"}],
                       "containerStatuses": [terminated("job", "Completed", 0), running("proxy")]}),
                ["1/2", "Running", "0"],
            ),
            (
                "first container completed, second running, pod not ready",
                json!({"containers": [{"name": "job"}, {"name": "proxy"}]}),
                json!({"phase": "Running",
                       "containerStatuses": [terminated("job", "Completed", 0), running("proxy")]}),
                ["1/2", "NotReady", "0"],
            ),
            (
                "first container's state wins over later ones",
                json!({"containers": [{"name": "a"}, {"name": "b"}]}),
                json!({"phase": "Running",
                       "containerStatuses": [waiting("a", "ImagePullBackOff", 0),
                                             waiting("b", "CrashLoopBackOff", 1)]}),
                ["0/2", "ImagePullBackOff", "1"],
            ),
        ];
        for (case, spec, status, [ready, reason, restarts]) in cases {
            let cells = (POD.cells)(&pod_with(spec, status), NOW);
            assert_eq!(cells[1], ready, "{case}: READY");
            assert_eq!(cells[2], reason, "{case}: STATUS");
            assert_eq!(cells[3], restarts, "{case}: RESTARTS");
        }
    }

    #[test]
    fn sidecars_count_as_containers_and_keep_their_restarts() {
        let spec = json!({
            "initContainers": [{"name": "mesh", "restartPolicy": "Always"}, {"name": "setup"}],
            "containers": [{"name": "app"}],
        });
        let status = json!({
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [
                {"name": "mesh", "started": true, "ready": true, "restartCount": 2,
                 "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": seconds_ago(90)}}},
                {"name": "setup", "restartCount": 1,
                 "state": {"terminated": {"reason": "Completed", "exitCode": 0}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": seconds_ago(30)}}},
            ],
            "containerStatuses": [running("app")],
        });
        let cells = (POD.cells)(&pod_with(spec, status), NOW);
        assert_eq!(cells[1], "2/2");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[3], "2 (90s ago)");
    }

    #[test]
    fn deletion_shows_terminating_or_unknown() {
        let deleting = |phase: &str, reason: &str| {
            json!({
                "metadata": {"name": "p", "creationTimestamp": minutes_ago(10),
                             "deletionTimestamp": minutes_ago(1)},
                "spec": one_container(),
                "status": {"phase": phase, "reason": reason,
                           "containerStatuses": [running("app")]},
            })
        };
        let cases = [
            (deleting("Running", ""), "Terminating"),
            (deleting("Running", "NodeLost"), "Unknown"),
            (deleting("Succeeded", ""), "Succeeded"),
            (deleting("Failed", ""), "Failed"),
        ];
        for (pod, want) in cases {
            assert_eq!((POD.cells)(&pod, NOW)[2], want, "{pod}");
        }
    }

    #[test]
    fn wide_cells() {
        let pod = json!({
            "metadata": {"name": "web", "creationTimestamp": minutes_ago(150)},
            "spec": {"containers": [{"name": "app"}], "nodeName": "node-1",
                     "readinessGates": [{"conditionType": "example.com/lb"},
                                        {"conditionType": "example.com/dns"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.5",
                       "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
                       "conditions": [{"type": "example.com/lb", "status": "True"},
                                      {"type": "example.com/dns", "status": "False"},
                                      {"type": "example.com/dns", "status": "True"}],
                       "containerStatuses": [running("app")]},
        });
        let want = json!([
            "web", "1/1", "Running", "0", "150m", "10.0.0.5", "node-1", "<none>", "1/2"
        ]);
        assert_eq!(Value::from((POD.cells)(&pod, NOW)), want);

        let bare = json!({"metadata": {"name": "new"}, "spec": one_container()});
        let want = json!([
            "new",
            "0/1",
            "",
            "0",
            "<unknown>",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ]);
        assert_eq!(Value::from((POD.cells)(&bare, NOW)), want);

        let only_ips = json!({"status": {"podIPs": [{"ip": "fd00::7"}],
                                         "nominatedNodeName": "node-2"}});
        let cells = (POD.cells)(&only_ips, NOW);
        assert_eq!(cells[5], "fd00::7");
        assert_eq!(cells[7], "node-2");
    }

    #[test]
    fn finished_pods_carry_a_completed_condition() {
        let cases = [
            ("Succeeded", Some("The pod has completed successfully.")),
            ("Failed", Some("The pod failed.")),
            ("Running", None),
        ];
        for (phase, message) in cases {
            let got = conditions(&json!({"status": {"phase": phase}}));
            let want = message.map(
                |m| json!([{"type": "Completed", "status": "True", "reason": phase, "message": m}]),
            );
            assert_eq!(got, want, "{phase}");
        }
    }
}
