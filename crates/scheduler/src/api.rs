//! The scheduler's writes to the API server, as upstream's makes them: the binding
//! (`pods/binding`), the `PodScheduled` condition (a strategic merge patch of `pods/status`,
//! sent only when it changes), and events shaped as upstream's `events.k8s.io` recorder
//! writes them (`reportingController: default-scheduler`, an `action`, an `eventTime`; read
//! through `core/v1` they carry `involvedObject` and `message`).

use k8s_openapi::api::core::v1::{Binding, Event, EventSource, ObjectReference, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::Error;
use crate::scheduler::SCHEDULER_NAME;

/// Upstream truncates event notes to the API's limit (1 KiB).
const NOTE_LENGTH_LIMIT: usize = 1024;

/// A pod's namespace and name.
fn pod_ref(pod: &Pod) -> (&str, &str) {
    (
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or(""),
    )
}

/// Whether the API said the object is gone.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// The API's own message for an error, as upstream quotes it.
pub fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

#[derive(Clone)]
pub struct Writer {
    client: Client,
    /// `default-scheduler-<hostname>`, upstream's `reportingInstance`.
    instance: String,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub fn new(client: Client, hostname: &str) -> Self {
        Self {
            client,
            instance: format!("{SCHEDULER_NAME}-{hostname}"),
        }
    }

    fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    pub async fn bind(&self, pod: &Pod, node: &str) -> Result<(), kube::Error> {
        let (namespace, name) = pod_ref(pod);
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.to_owned()),
                ..Default::default()
            },
        };
        self.pods(namespace)
            .create_subresource::<Binding, Value>("binding", name, &PostParams::default(), &binding)
            .await?;
        Ok(())
    }

    /// Sets `PodScheduled=False` with `reason` and `message`, unless the pod says so already.
    pub async fn set_unscheduled(
        &self,
        pod: &Pod,
        reason: &str,
        message: &str,
    ) -> Result<(), Error> {
        let (namespace, name) = pod_ref(pod);
        let current = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
        let Some(patch) = unscheduled_patch(current, reason, message, Timestamp::now()) else {
            return Ok(());
        };
        self.pods(namespace)
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .map_err(|source| Error::Api {
                action: "setting the PodScheduled condition of",
                pod: format!("{namespace}/{name}"),
                source,
            })?;
        Ok(())
    }

    /// Records an event about the pod, as upstream's scheduler does.
    pub async fn record(
        &self,
        pod: &Pod,
        type_: &str,
        reason: &str,
        action: &str,
        note: &str,
    ) -> Result<(), Error> {
        let (namespace, name) = pod_ref(pod);
        let event = event(
            pod,
            type_,
            reason,
            action,
            note,
            &self.instance,
            Timestamp::now(),
        );
        Api::<Event>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &event)
            .await
            .map_err(|source| Error::Api {
                action: "recording an event for",
                pod: format!("{namespace}/{name}"),
                source,
            })?;
        Ok(())
    }
}

/// The status patch that sets `PodScheduled=False`, `None` when the condition says so already.
/// The transition time moves only when the status does.
pub fn unscheduled_patch(
    current: Option<&PodCondition>,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> Option<Value> {
    let unchanged = current.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message)
    });
    if unchanged {
        return None;
    }
    let transition = current
        .filter(|c| c.status == "False")
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Some(json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": reason,
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": transition,
    }]}}))
}

/// An event about `pod`, named `<pod>.<time in hex nanoseconds>` as upstream's recorder names
/// them.
pub fn event(
    pod: &Pod,
    type_: &str,
    reason: &str,
    action: &str,
    note: &str,
    instance: &str,
    now: Timestamp,
) -> Event {
    let (namespace, name) = pod_ref(pod);
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path: None,
        },
        type_: Some(type_.to_owned()),
        reason: Some(reason.to_owned()),
        action: Some(action.to_owned()),
        message: Some(truncate_note(note)),
        event_time: Some(MicroTime(now)),
        reporting_component: Some(SCHEDULER_NAME.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        source: Some(EventSource::default()),
        ..Default::default()
    }
}

/// Upstream's `truncateMessage`: notes over the limit are cut and end with ` ...`.
fn truncate_note(note: &str) -> String {
    if note.len() <= NOTE_LENGTH_LIMIT {
        return note.to_owned();
    }
    const SUFFIX: &str = " ...";
    let mut end = NOTE_LENGTH_LIMIT - SUFFIX.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{SUFFIX}", &note[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::pod;

    fn condition(status: &str, reason: &str, message: &str) -> PodCondition {
        PodCondition {
            type_: "PodScheduled".into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some(Time(Timestamp::UNIX_EPOCH)),
            ..Default::default()
        }
    }

    #[test]
    fn the_condition_is_patched_only_when_it_changes() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let same = condition("False", "Unschedulable", "0/1 nodes are available: x.");
        assert_eq!(
            unscheduled_patch(
                Some(&same),
                "Unschedulable",
                "0/1 nodes are available: x.",
                now
            ),
            None
        );
        let patch = unscheduled_patch(Some(&same), "Unschedulable", "other", now).unwrap();
        let sent = &patch["status"]["conditions"][0];
        assert_eq!(sent["message"], "other");
        // Still False: the transition time stays.
        assert_eq!(sent["lastTransitionTime"], "1970-01-01T00:00:00Z");
        assert_eq!(sent["lastProbeTime"], Value::Null);
        let gated = condition("True", "", "");
        let patch = unscheduled_patch(Some(&gated), "Unschedulable", "m", now).unwrap();
        assert_eq!(
            patch["status"]["conditions"][0]["lastTransitionTime"],
            "2023-11-14T22:13:20Z"
        );
        assert!(unscheduled_patch(None, "Unschedulable", "m", now).is_some());
    }

    #[test]
    fn events_look_like_upstream_scheduler_events() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let p = pod("web", &[]);
        let e = event(
            &p,
            "Normal",
            "Scheduled",
            "Binding",
            "Successfully assigned default/web to n1",
            "default-scheduler-host",
            now,
        );
        assert_eq!(e.metadata.name.as_deref(), Some("web.17979cfe362a0000"));
        assert_eq!(e.involved_object.uid.as_deref(), Some("uid-web"));
        assert_eq!(e.reporting_component.as_deref(), Some("default-scheduler"));
        assert_eq!(e.action.as_deref(), Some("Binding"));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["source"], json!({}));
        assert_eq!(json["eventTime"], "2023-11-14T22:13:20.000000Z");
    }

    #[test]
    fn long_notes_are_truncated_as_upstream() {
        let long = "é".repeat(600);
        let cut = truncate_note(&long);
        assert!(cut.len() <= NOTE_LENGTH_LIMIT);
        assert!(cut.ends_with(" ..."));
        assert_eq!(truncate_note("short"), "short");
    }
}
