//! The pod garbage collector (upstream's `pod-garbage-collector`, `pkg/controller/podgc`):
//! deletes the pods no kubelet will ever remove. Every pass (20 s by default) over the
//! cached pods and nodes it force-deletes (grace period 0):
//!
//! - finished pods (Succeeded, Failed) beyond `--terminated-pod-gc-threshold`, evicted ones
//!   first, then the oldest;
//! - terminating pods on a node that is not ready and tainted
//!   `node.kubernetes.io/out-of-service`;
//! - pods bound to a node that no longer exists, once the node has been missing for the
//!   quarantine (twice the pass period: 40 s by default) and the API confirms it is gone;
//! - terminating pods that were never scheduled.
//!
//! A pod not yet finished is first marked Failed (orphans with a `DisruptionTarget`
//! condition), as upstream does: no kubelet is left to say how it ended.

pub mod select;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::Event;
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::api_errors;
use select::Quarantine;

/// Upstream's default `--terminated-pod-gc-threshold`.
pub const DEFAULT_TERMINATED_THRESHOLD: usize = 12_500;
/// Upstream's pass period; the quarantine is twice as long, as upstream's (20 s and 40 s).
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(20);

/// Settings of the pod garbage collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How many finished pods may stay; 0 keeps them all.
    pub terminated_threshold: usize,
    /// How often it looks; a missing node is quarantined for twice as long.
    pub period: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            terminated_threshold: DEFAULT_TERMINATED_THRESHOLD,
            period: DEFAULT_PERIOD,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{what} pod {namespace}/{name}: {source}")]
pub struct Error {
    what: &'static str,
    namespace: String,
    name: String,
    #[source]
    source: kube::Error,
}

/// Why a pod is collected, for the log and the condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Terminated,
    OutOfService,
    Orphaned,
    UnscheduledTerminating,
}

struct Collector {
    client: Client,
    pods: crate::informer::Cache<Pod>,
    nodes: crate::informer::Cache<Node>,
    settings: Settings,
    quarantine: Quarantine,
}

impl Collector {
    async fn pass(&mut self) {
        let pods = self.pods.state();
        let nodes = self.nodes.state();
        let mut doomed: Vec<(Arc<Pod>, Reason)> = Vec::new();
        doomed.extend(
            select::terminated_over_threshold(&pods, self.settings.terminated_threshold)
                .into_iter()
                .map(|p| (p, Reason::Terminated)),
        );
        doomed.extend(
            select::terminating_out_of_service(&pods, &nodes)
                .into_iter()
                .map(|p| (p, Reason::OutOfService)),
        );
        let missing = select::missing_nodes(&pods, &nodes);
        let due = self.quarantine.due(
            &missing,
            std::time::Instant::now(),
            self.settings.period * 2,
        );
        let gone = self.confirm_gone(due).await;
        doomed.extend(
            select::orphaned(&pods, &gone)
                .into_iter()
                .map(|p| (p, Reason::Orphaned)),
        );
        doomed.extend(
            select::unscheduled_terminating(&pods)
                .into_iter()
                .map(|p| (p, Reason::UnscheduledTerminating)),
        );
        let mut done = HashSet::new();
        for (pod, reason) in doomed {
            // A pod picked for two reasons goes once.
            if !done.insert(pod.metadata.uid.clone()) {
                continue;
            }
            match self.fail_and_delete(&pod, reason).await {
                Ok(()) => {
                    tracing::info!(namespace = ?pod.namespace(), pod = %pod.name_any(), ?reason, "force-deleted a pod")
                }
                Err(error) => tracing::warn!(%error, "pod garbage collector"),
            }
        }
    }

    /// The names among `candidates` the API has no node of (a failed look-up is tried again
    /// after another quarantine).
    async fn confirm_gone(&self, candidates: Vec<String>) -> HashSet<String> {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut gone = HashSet::new();
        for name in candidates {
            match api.get_opt(&name).await {
                Ok(None) => {
                    gone.insert(name);
                }
                Ok(Some(_)) => {}
                Err(error) => {
                    tracing::warn!(%error, node = %name, "pod garbage collector: looking up a node")
                }
            }
        }
        gone
    }

    /// Marks the pod Failed unless it finished, then deletes it with a grace period of 0.
    async fn fail_and_delete(&self, pod: &Pod, reason: Reason) -> Result<(), Error> {
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let error = |what, source| Error {
            what,
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        if !select::is_terminated(pod) {
            let mut status = json!({"phase": "Failed"});
            if reason == Reason::Orphaned {
                status["conditions"] = json!([{
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "DeletionByPodGC",
                    "message": "PodGC: node no longer exists",
                    "lastTransitionTime": Time(Timestamp::now()),
                }]);
            }
            let patch = json!({"metadata": {"uid": pod.metadata.uid}, "status": status});
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                Ok(_) => {}
                Err(e) if api_errors::is_not_found(&e) => return Ok(()),
                Err(source) => return Err(error("marking failed", source)),
            }
        }
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => Ok(()),
            // Gone already, or replaced by another pod of the same name.
            Err(e) if api_errors::is_not_found(&e) || api_errors::is_conflict(&e) => Ok(()),
            Err(source) => Err(error("deleting", source)),
        }
    }
}

/// Keeps a cache of every `K` filled (no reconcile requests of its own).
fn cache<K>(api: Api<K>) -> (crate::informer::Cache<K>, impl futures::Future<Output = ()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, events) =
        crate::informer::watch(api, |_: &Event<K>, _: &Store<K>| Vec::<ObjectRef<K>>::new());
    (store, events.for_each(|_| std::future::ready(())))
}

/// Runs the collector until the process ends, reading pods from the shared `pods`
/// informer.
pub async fn run(client: Client, settings: Settings, pods: crate::informer::Cache<Pod>) {
    let (nodes, fill_nodes) = cache(Api::<Node>::all(client.clone()));
    let mut collector = Collector {
        client,
        pods,
        nodes,
        settings,
        quarantine: Quarantine::default(),
    };
    let passes = async move {
        // Nothing is judged before both caches have listed once.
        if collector.pods.wait_until_ready().await.is_err()
            || collector.nodes.wait_until_ready().await.is_err()
        {
            return;
        }
        let mut ticks = tokio::time::interval(collector.settings.period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            collector.pass().await;
        }
    };
    tokio::join!(fill_nodes, passes);
}
