//! Events about pods and the node, as upstream's kubelet records them (core/v1 Events, source
//! `kubelet`), so that `kubectl describe pod` and `kubectl describe node` show them.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, PostParams};

/// Events waiting to be written, at most (upstream's recorder drops beyond its queue too).
const QUEUE: usize = 1000;

/// Where events are recorded from. Recording only queues the event: one task writes them in
/// order, so that a pod's start does not wait on its events' writes (as upstream's recorder).
#[derive(Clone)]
pub struct Events {
    queue: tokio::sync::mpsc::Sender<Event>,
    node: String,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Events {
    /// Starts the writer task (on the current tokio runtime).
    pub fn new(client: kube::Client, node: &str) -> Self {
        let (queue, pending) = tokio::sync::mpsc::channel(QUEUE);
        tokio::spawn(write_in_order(client, pending));
        Events {
            queue,
            node: node.to_string(),
        }
    }

    pub async fn normal(&self, pod: &Pod, reason: &str, message: &str) {
        self.record(pod, "Normal", reason, message).await;
    }

    pub async fn warning(&self, pod: &Pod, reason: &str, message: &str) {
        self.record(pod, "Warning", reason, message).await;
    }

    /// A Normal event about the node itself. As upstream's kubelet, the reference's UID is
    /// the node's name, and the event lives in `default` (the node has no namespace).
    pub async fn node(&self, reason: &str, message: &str) {
        let reference = ObjectReference {
            kind: Some("Node".into()),
            name: Some(self.node.clone()),
            uid: Some(self.node.clone()),
            ..Default::default()
        };
        self.record_about(reference, "default", "Normal", reason, message)
            .await;
    }

    async fn record(&self, pod: &Pod, kind: &str, reason: &str, message: &str) {
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: pod.metadata.name.clone(),
            namespace: Some(namespace.clone()),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path: None,
        };
        self.record_about(reference, &namespace, kind, reason, message)
            .await;
    }

    /// Best effort: an event that cannot be written is logged, never an error of the object's.
    async fn record_about(
        &self,
        involved_object: ObjectReference,
        namespace: &str,
        kind: &str,
        reason: &str,
        message: &str,
    ) {
        let name = involved_object.name.clone().unwrap_or_default();
        let now = jiff::Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("{name}.")),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            involved_object,
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(kind.into()),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some(self.node.clone()),
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            count: Some(1),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.node.clone()),
            action: None,
            related: None,
            series: None,
        };
        if self.queue.try_send(event).is_err() {
            tracing::debug!(reason, "event dropped: the queue is full");
        }
    }
}

/// Writes queued events one after another; best effort, as a failed write is only logged.
async fn write_in_order(client: kube::Client, mut pending: tokio::sync::mpsc::Receiver<Event>) {
    while let Some(event) = pending.recv().await {
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
        if let Err(e) = events.create(&PostParams::default(), &event).await {
            let reason = event.reason.as_deref().unwrap_or_default();
            tracing::debug!(error = %e, reason, "event not recorded");
        }
    }
}
