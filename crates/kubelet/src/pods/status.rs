//! The pod's status from what the runtime reports, as upstream's kubelet writes it: phase,
//! conditions, addresses, and a status per container (state, last state, restarts, IDs).

use std::collections::HashMap;

use cox_cri::v1;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::resources::qos_class;

/// What the kubelet knows of one container of the pod.
#[derive(Debug, Clone, Default)]
pub struct ContainerView {
    /// The newest attempt, if one was created.
    pub current: Option<v1::ContainerStatus>,
    /// The attempt before it, if it ended.
    pub previous: Option<v1::ContainerStatus>,
    pub restart_count: i32,
    /// Why it is not running, when the kubelet knows better than the runtime
    /// (`ContainerCreating`, `ErrImagePull`, `CrashLoopBackOff`, ...).
    pub waiting: Option<(String, String)>,
    /// What its probes say of readiness; `None`: not probed yet (just started), so ready
    /// whenever it runs unless it has a readiness or startup probe, which must pass first.
    pub ready: Option<bool>,
}

/// What the kubelet observed of a pod.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub pod_ip: Option<String>,
    pub host_ip: String,
    /// The runtime's name for container IDs (`containerd://...`, `cox://...`).
    pub runtime_name: String,
    pub containers: HashMap<String, ContainerView>,
}

fn time(nanos: i64) -> Option<Time> {
    (nanos > 0)
        .then(|| jiff::Timestamp::from_nanosecond(i128::from(nanos)).ok())
        .flatten()
        .map(|t| Time(t.round(jiff::Unit::Second).unwrap_or(t)))
}

/// The Kubernetes state of a CRI container status.
fn state_of(status: &v1::ContainerStatus, runtime: &str) -> ContainerState {
    let container_id = format!("{runtime}://{}", status.id);
    match v1::ContainerState::try_from(status.state) {
        Ok(v1::ContainerState::ContainerRunning) => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: time(status.started_at),
            }),
            ..Default::default()
        },
        Ok(v1::ContainerState::ContainerExited) => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: status.exit_code,
                reason: Some(if status.reason.is_empty() {
                    if status.exit_code == 0 {
                        "Completed"
                    } else {
                        "Error"
                    }
                    .to_string()
                } else {
                    status.reason.clone()
                }),
                message: (!status.message.is_empty()).then(|| status.message.clone()),
                started_at: time(status.started_at),
                finished_at: time(status.finished_at),
                container_id: Some(container_id),
                signal: None,
            }),
            ..Default::default()
        },
        _ => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ContainerCreating".into()),
                message: None,
            }),
            ..Default::default()
        },
    }
}

/// The status of each container, in the pod's order.
fn container_statuses(pod: &Pod, observed: &Observed) -> Vec<ContainerStatus> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let default_waiting = if spec.init_containers.as_ref().is_some_and(|i| !i.is_empty()) {
        "PodInitializing"
    } else {
        "ContainerCreating"
    };
    spec.containers
        .iter()
        .map(|container| container_status(container, observed, default_waiting, false))
        .collect()
}

/// The status of each init container, in the pod's order.
fn init_container_statuses(pod: &Pod, observed: &Observed) -> Option<Vec<ContainerStatus>> {
    let init = pod.spec.as_ref()?.init_containers.as_ref()?;
    let statuses = init
        .iter()
        .map(|container| container_status(container, observed, "PodInitializing", true))
        .collect::<Vec<_>>();
    (!statuses.is_empty()).then_some(statuses)
}

/// Whether an init container is a sidecar: one that keeps running beside the others.
fn is_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

/// One container's status; `waiting_reason` when nothing of it exists yet.
fn container_status(
    container: &Container,
    observed: &Observed,
    waiting_reason: &str,
    init: bool,
) -> ContainerStatus {
    let view = observed
        .containers
        .get(&container.name)
        .cloned()
        .unwrap_or_default();
    let mut state = match &view.current {
        Some(current) => state_of(current, &observed.runtime_name),
        None => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(waiting_reason.into()),
                message: None,
            }),
            ..Default::default()
        },
    };
    if let Some((reason, message)) = &view.waiting
        && state.running.is_none()
    {
        state = ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: (!message.is_empty()).then(|| message.clone()),
            }),
            ..Default::default()
        };
    }
    let last_state = match (&view.current, &view.previous) {
        // A current attempt that ended but is waiting to restart is the last state.
        (Some(current), _)
            if state.waiting.is_some()
                && current.state == v1::ContainerState::ContainerExited as i32 =>
        {
            Some(state_of(current, &observed.runtime_name))
        }
        (_, Some(previous)) => Some(state_of(previous, &observed.runtime_name)),
        _ => None,
    };
    let running = state.running.is_some();
    // An init container that ran to completion counts as ready, as upstream reports it.
    let completed = init
        && !is_sidecar(container)
        && state.terminated.as_ref().is_some_and(|t| t.exit_code == 0);
    // A container with a readiness or startup probe is not ready until the probe passed.
    let unprobed = container.readiness_probe.is_none() && container.startup_probe.is_none();
    let ready = running && view.ready.unwrap_or(unprobed) || completed;
    ContainerStatus {
        name: container.name.clone(),
        image: container.image.clone().unwrap_or_default(),
        image_id: view
            .current
            .as_ref()
            .map(|c| c.image_ref.clone())
            .unwrap_or_default(),
        container_id: view
            .current
            .as_ref()
            .map(|c| format!("{}://{}", observed.runtime_name, c.id)),
        ready,
        started: Some(running),
        restart_count: view.restart_count,
        state: Some(state),
        last_state: Some(last_state.unwrap_or_default()),
        ..Default::default()
    }
}

/// How far the init containers are.
#[derive(Debug, PartialEq, Eq)]
enum Initialization {
    Done,
    /// These have not completed (or, for sidecars, are not running) yet.
    Pending(Vec<String>),
    /// One failed and the pod's restart policy (`Never`) will not run it again.
    Failed,
}

fn initialization(
    pod: &Pod,
    init: &[ContainerStatus],
    regular: &[ContainerStatus],
) -> Initialization {
    let Some(spec) = &pod.spec else {
        return Initialization::Done;
    };
    // Regular containers that ran mean the init containers completed in this sandbox.
    let regular_ran = regular.iter().any(|s| {
        s.state
            .as_ref()
            .is_some_and(|st| st.running.is_some() || st.terminated.is_some())
    });
    let never = spec.restart_policy.as_deref() == Some("Never");
    let mut incomplete = Vec::new();
    for (container, status) in spec.init_containers.iter().flatten().zip(init) {
        let state = status.state.as_ref();
        let terminated = state.and_then(|s| s.terminated.as_ref());
        let done = if is_sidecar(container) {
            status.started == Some(true) || regular_ran
        } else {
            regular_ran || terminated.is_some_and(|t| t.exit_code == 0)
        };
        if !done && never && !is_sidecar(container) && terminated.is_some_and(|t| t.exit_code != 0)
        {
            return Initialization::Failed;
        }
        if !done {
            incomplete.push(container.name.clone());
        }
    }
    if incomplete.is_empty() {
        Initialization::Done
    } else {
        Initialization::Pending(incomplete)
    }
}

/// The phase, by upstream's rules: Pending until every container has started once; Succeeded
/// or Failed when every container has ended and none will restart; Running otherwise.
fn phase(pod: &Pod, statuses: &[ContainerStatus]) -> &'static str {
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let terminated: Vec<&ContainerStateTerminated> = statuses
        .iter()
        .filter_map(|s| s.state.as_ref()?.terminated.as_ref())
        .collect();
    let running = statuses
        .iter()
        .filter(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()))
        .count();
    let ever_started = statuses.iter().all(|s| {
        let state = s.state.as_ref();
        state.is_some_and(|st| st.running.is_some() || st.terminated.is_some())
            || s.last_state
                .as_ref()
                .is_some_and(|st| st.terminated.is_some())
    });
    if !statuses.is_empty() && terminated.len() == statuses.len() {
        let all_ok = terminated.iter().all(|t| t.exit_code == 0);
        match policy {
            "Never" => return if all_ok { "Succeeded" } else { "Failed" },
            "OnFailure" if all_ok => return "Succeeded",
            _ => {}
        }
    }
    if running > 0 || ever_started && !statuses.is_empty() {
        "Running"
    } else {
        "Pending"
    }
}

fn condition(
    kind: &str,
    ok: bool,
    reason: Option<&str>,
    previous: Option<&PodStatus>,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    // The transition time changes only when the status does.
    let kept = previous
        .and_then(|p| p.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == kind))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone());
    PodCondition {
        type_: kind.to_string(),
        status: status.to_string(),
        reason: reason.filter(|_| !ok).map(str::to_string),
        last_transition_time: kept.or_else(|| {
            Some(Time(
                jiff::Timestamp::now()
                    .round(jiff::Unit::Second)
                    .unwrap_or_else(|_| jiff::Timestamp::now()),
            ))
        }),
        last_probe_time: None,
        message: None,
        observed_generation: None,
    }
}

/// `Initialized`, with upstream's reason and message while init containers are incomplete.
fn initialized_condition(
    initialization: &Initialization,
    previous: Option<&PodStatus>,
) -> PodCondition {
    match initialization {
        Initialization::Done => condition("Initialized", true, None, previous),
        Initialization::Pending(names) => PodCondition {
            message: Some(format!(
                "containers with incomplete status: [{}]",
                names.join(" ")
            )),
            ..condition(
                "Initialized",
                false,
                Some("ContainersNotInitialized"),
                previous,
            )
        },
        Initialization::Failed => condition("Initialized", false, Some("PodFailed"), previous),
    }
}

/// The pod's status now.
pub fn pod_status(pod: &Pod, observed: &Observed) -> PodStatus {
    let previous = pod.status.as_ref();
    let statuses = container_statuses(pod, observed);
    let init_statuses = init_container_statuses(pod, observed);
    let initialization = initialization(pod, init_statuses.as_deref().unwrap_or(&[]), &statuses);
    let phase = match initialization {
        Initialization::Done => phase(pod, &statuses),
        Initialization::Pending(_) => "Pending",
        Initialization::Failed => "Failed",
    };
    // Sidecars count towards readiness beside the regular containers, as upstream.
    let sidecars_ready = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .zip(init_statuses.iter().flatten())
        .filter(|(c, _)| is_sidecar(c))
        .all(|(_, s)| s.ready);
    let all_ready = !statuses.is_empty() && statuses.iter().all(|s| s.ready) && sidecars_ready;
    let scheduled = previous
        .and_then(|p| p.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled").cloned())
        .unwrap_or_else(|| condition("PodScheduled", true, None, None));
    let finished = phase == "Succeeded" || phase == "Failed";
    let ready_reason = if finished {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let conditions = vec![
        condition(
            "PodReadyToStartContainers",
            observed.pod_ip.is_some() || finished,
            None,
            previous,
        ),
        initialized_condition(&initialization, previous),
        condition("Ready", all_ready, Some(ready_reason), previous),
        condition("ContainersReady", all_ready, Some(ready_reason), previous),
        scheduled,
    ];
    let pod_ip = observed.pod_ip.clone().filter(|ip| !ip.is_empty());
    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions),
        host_ip: Some(observed.host_ip.clone()),
        host_ips: Some(vec![HostIP {
            ip: observed.host_ip.clone(),
        }]),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time: previous.and_then(|p| p.start_time.clone()).or_else(|| {
            Some(Time(
                jiff::Timestamp::now()
                    .round(jiff::Unit::Second)
                    .unwrap_or_else(|_| jiff::Timestamp::now()),
            ))
        }),
        container_statuses: Some(statuses),
        init_container_statuses: init_statuses,
        qos_class: Some(qos_class(pod).to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn pod(policy: &str) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some("busybox".into()),
                    ..Default::default()
                }],
                restart_policy: Some(policy.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn cri(state: v1::ContainerState, exit_code: i32) -> v1::ContainerStatus {
        v1::ContainerStatus {
            id: "abc".into(),
            state: state as i32,
            exit_code,
            started_at: 1_700_000_000_000_000_000,
            finished_at: if state == v1::ContainerState::ContainerExited {
                1_700_000_001_000_000_000
            } else {
                0
            },
            image_ref: "sha256:1".into(),
            ..Default::default()
        }
    }

    fn observed(view: ContainerView) -> Observed {
        Observed {
            pod_ip: Some("10.42.0.5".into()),
            host_ip: "192.168.1.2".into(),
            runtime_name: "cox".into(),
            containers: HashMap::from([("app".to_string(), view)]),
        }
    }

    #[test]
    fn running_pod_is_ready_with_ips() {
        let status = pod_status(
            &pod("Always"),
            &observed(ContainerView {
                current: Some(cri(v1::ContainerState::ContainerRunning, 0)),
                ..Default::default()
            }),
        );
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.42.0.5"));
        let container = &status.container_statuses.as_ref().expect("statuses")[0];
        assert!(container.ready);
        assert_eq!(container.container_id.as_deref(), Some("cox://abc"));
        let ready = status
            .conditions
            .as_ref()
            .expect("conditions")
            .iter()
            .find(|c| c.type_ == "Ready")
            .cloned();
        assert_eq!(ready.map(|c| c.status), Some("True".to_string()));
    }

    /// Regression: a container started in this sync (its probes not run yet) was reported
    /// ready at once, before its readiness probe had ever passed.
    #[test]
    fn a_just_started_container_with_a_readiness_probe_is_not_ready() {
        let mut probed = pod("Always");
        if let Some(spec) = probed.spec.as_mut() {
            spec.containers[0].readiness_probe = Some(Default::default());
        }
        let just_started = ContainerView {
            current: Some(cri(v1::ContainerState::ContainerRunning, 0)),
            ..Default::default()
        };
        let status = pod_status(&probed, &observed(just_started.clone()));
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let container = &status.container_statuses.as_ref().expect("statuses")[0];
        assert!(!container.ready, "not ready before the probe passed");

        let passed = ContainerView {
            ready: Some(true),
            ..just_started
        };
        let status = pod_status(&probed, &observed(passed));
        assert!(status.container_statuses.expect("statuses")[0].ready);
    }

    #[test]
    fn phases_follow_the_restart_policy() {
        let exited = |code| ContainerView {
            current: Some(cri(v1::ContainerState::ContainerExited, code)),
            ..Default::default()
        };
        assert_eq!(
            pod_status(&pod("Never"), &observed(exited(0)))
                .phase
                .as_deref(),
            Some("Succeeded")
        );
        assert_eq!(
            pod_status(&pod("Never"), &observed(exited(1)))
                .phase
                .as_deref(),
            Some("Failed")
        );
        assert_eq!(
            pod_status(&pod("OnFailure"), &observed(exited(0)))
                .phase
                .as_deref(),
            Some("Succeeded")
        );
        assert_eq!(
            pod_status(&pod("Always"), &observed(exited(0)))
                .phase
                .as_deref(),
            Some("Running")
        );
        let waiting = ContainerView {
            waiting: Some(("ErrImagePull".into(), "no such image".into())),
            ..Default::default()
        };
        let status = pod_status(&pod("Always"), &observed(waiting));
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        let state = status.container_statuses.expect("statuses")[0]
            .state
            .clone()
            .expect("state");
        assert_eq!(
            state.waiting.and_then(|w| w.reason).as_deref(),
            Some("ErrImagePull")
        );
    }

    #[test]
    fn a_crash_looping_container_shows_its_last_termination() {
        let view = ContainerView {
            current: Some(cri(v1::ContainerState::ContainerExited, 2)),
            restart_count: 3,
            waiting: Some((
                "CrashLoopBackOff".into(),
                "back-off 40s restarting failed container".into(),
            )),
            ..Default::default()
        };
        let status = pod_status(&pod("Always"), &observed(view));
        let container = &status.container_statuses.expect("statuses")[0];
        assert_eq!(container.restart_count, 3);
        let waiting = container
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref());
        assert_eq!(waiting, Some("CrashLoopBackOff"));
        let last = container
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code);
        assert_eq!(last, Some(2));
    }
    fn with_init(policy: &str, sidecar: bool) -> Pod {
        let mut pod = pod(policy);
        if let Some(spec) = pod.spec.as_mut() {
            spec.init_containers = Some(vec![
                Container {
                    name: "setup".into(),
                    ..Default::default()
                },
                Container {
                    name: "proxy".into(),
                    restart_policy: sidecar.then(|| "Always".to_string()),
                    ..Default::default()
                },
            ]);
        }
        pod
    }

    fn condition_of(status: &PodStatus, kind: &str) -> PodCondition {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind)
            .cloned()
            .expect("condition")
    }

    #[test]
    fn init_containers_hold_the_pod_pending_until_they_complete() {
        let mut seen = observed(ContainerView::default());
        seen.containers.insert(
            "setup".into(),
            ContainerView {
                current: Some(cri(v1::ContainerState::ContainerExited, 0)),
                ..Default::default()
            },
        );
        seen.containers.insert(
            "proxy".into(),
            ContainerView {
                current: Some(cri(v1::ContainerState::ContainerRunning, 0)),
                ..Default::default()
            },
        );
        let status = pod_status(&with_init("Always", false), &seen);
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        let initialized = condition_of(&status, "Initialized");
        assert_eq!(initialized.status, "False");
        assert_eq!(
            initialized.reason.as_deref(),
            Some("ContainersNotInitialized")
        );
        assert_eq!(
            initialized.message.as_deref(),
            Some("containers with incomplete status: [proxy]")
        );
        let init = status.init_container_statuses.expect("init statuses");
        assert!(init[0].ready, "a completed init container reports ready");
        assert_eq!(
            status.container_statuses.expect("statuses")[0]
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref()),
            Some("PodInitializing")
        );

        // The same running container as a sidecar completes the initialization.
        let status = pod_status(&with_init("Always", true), &seen);
        assert_eq!(condition_of(&status, "Initialized").status, "True");
        assert_eq!(
            status.phase.as_deref(),
            Some("Pending"),
            "app not started yet"
        );
    }

    #[test]
    fn a_failed_init_container_fails_a_never_restarting_pod_only() {
        let mut seen = observed(ContainerView::default());
        seen.containers.insert(
            "setup".into(),
            ContainerView {
                current: Some(cri(v1::ContainerState::ContainerExited, 3)),
                ..Default::default()
            },
        );
        let status = pod_status(&with_init("Never", false), &seen);
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        assert_eq!(condition_of(&status, "Initialized").status, "False");
        let status = pod_status(&with_init("Always", false), &seen);
        assert_eq!(status.phase.as_deref(), Some("Pending"));
    }
}
