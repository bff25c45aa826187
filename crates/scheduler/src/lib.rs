//! Coxswain's scheduler (upstream's `kube-scheduler` with its default profile), a client of
//! the API server only. It watches pods, nodes and namespaces, and for each pending pod that
//! names it (`spec.schedulerName: default-scheduler`, no `spec.nodeName`, not being deleted,
//! no scheduling gates) filters the nodes, scores those that fit and binds the pod to the
//! best through `pods/binding`; when none fits it sets `PodScheduled=False` (reason
//! `Unschedulable`, upstream's message) and records a `FailedScheduling` event, then tries
//! again when the cluster changes in a way that may help.
//!
//! - [`scheduler`]: the state machine (events in, [`scheduler::Action`]s out), no I/O;
//! - [`cache`] and [`queue`]: upstream's scheduler cache (with assumed pods) and queue;
//! - [`schedule`], [`filter`], [`score`], [`preemption`]: one attempt, as pure functions;
//! - [`api`]: the writes to the API server.
//!
//! Not done: leader election (run one scheduler per cluster), preemption itself (only its
//! message), the scores of pod topology spread, inter-pod affinity and image locality, the
//! volume filters, event series aggregation.

pub mod api;
pub mod cache;
pub mod cluster_event;
pub mod filter;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod schedule;
pub mod scheduler;
pub mod score;
pub mod selectors;

use std::pin::pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::scheduler::{Action, REASON_SCHEDULER_ERROR, REASON_UNSCHEDULABLE, Scheduler};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the {resource} watch ended")]
    WatchEnded { resource: &'static str },
    #[error("{action} pod {pod}: {source}")]
    Api {
        action: &'static str,
        pod: String,
        #[source]
        source: kube::Error,
    },
}

/// At most this many bindings and reports under way at once; the scheduler waits for one to
/// finish before deciding more.
const MAX_IN_FLIGHT: usize = 64;

/// Upstream's informers only hold pods that may still run.
const NOT_FINISHED: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// How an API task ended, for the scheduler's books.
#[derive(Debug)]
enum Outcome {
    Bound { key: String },
    BindingFailed { key: String },
    Reported,
}

/// Runs the scheduler until one of its watches ends (they retry on errors, so in practice
/// until the task is dropped).
pub async fn run(client: Client) -> Result<(), Error> {
    let hostname = tokio::task::spawn_blocking(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned())
    })
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_else(|| "localhost".to_owned());
    let writer = api::Writer::new(client.clone(), &hostname);
    let mut pods = pin!(watch::<Pod>(&client, Some(NOT_FINISHED)));
    let mut nodes = pin!(watch::<Node>(&client, None));
    let mut namespaces = pin!(watch::<Namespace>(&client, None));
    let mut scheduler = Scheduler::default();
    let mut tasks: JoinSet<Outcome> = JoinSet::new();
    let mut rng = StdRng::from_os_rng();
    tracing::info!("scheduler started");
    loop {
        let deadline = scheduler.next_deadline();
        let can_decide = scheduler.has_work() && tasks.len() < MAX_IN_FLIGHT;
        tokio::select! {
            biased;
            event = pods.next() => match event {
                Some(Ok(event)) => scheduler.on_pod_event(event, Instant::now()),
                Some(Err(error)) => tracing::warn!(%error, "watching pods"),
                None => return Err(Error::WatchEnded { resource: "pods" }),
            },
            event = nodes.next() => match event {
                Some(Ok(event)) => scheduler.on_node_event(event, Instant::now()),
                Some(Err(error)) => tracing::warn!(%error, "watching nodes"),
                None => return Err(Error::WatchEnded { resource: "nodes" }),
            },
            event = namespaces.next() => match event {
                Some(Ok(event)) => scheduler.on_namespace_event(event),
                Some(Err(error)) => tracing::warn!(%error, "watching namespaces"),
                None => return Err(Error::WatchEnded { resource: "namespaces" }),
            },
            Some(done) = tasks.join_next() => match done {
                Ok(Outcome::Bound { key }) => scheduler.bound(&key),
                Ok(Outcome::BindingFailed { key }) => scheduler.binding_failed(&key, Instant::now()),
                Ok(Outcome::Reported) => {}
                Err(error) => tracing::error!(%error, "a scheduler task failed"),
            },
            () = sleep_until(deadline), if deadline.is_some() => scheduler.flush(Instant::now()),
            () = std::future::ready(()), if can_decide => {
                if let Some(action) = scheduler.schedule_next(Instant::now(), &mut rng) {
                    tasks.spawn(perform(writer.clone(), action));
                }
            }
        }
    }
}

fn watch<K>(
    client: &Client,
    fields: Option<&str>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + use<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let mut config = watcher::Config::default();
    if let Some(fields) = fields {
        config = config.fields(fields);
    }
    // Without managedFields, as upstream's scheduler caches objects: it never reads them.
    watcher(Api::<K>::all(client.clone()), config)
        .default_backoff()
        .modify(|object: &mut K| object.meta_mut().managed_fields = None)
}

async fn sleep_until(deadline: Option<Instant>) {
    let deadline = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
    tokio::time::sleep_until(deadline).await;
}

/// Carries out a decision against the API server; failures are logged (and a failed binding
/// reported), never fatal.
async fn perform(writer: api::Writer, action: Action) -> Outcome {
    match action {
        Action::Bind { pod, node } => {
            let key = cache::pod_key(&pod);
            let (namespace, name) = (
                pod.metadata.namespace.as_deref().unwrap_or(""),
                pod.metadata.name.as_deref().unwrap_or(""),
            );
            match writer.bind(&pod, &node).await {
                Ok(()) => {
                    tracing::debug!(pod = %format!("{namespace}/{name}"), %node, "bound");
                    let note = format!("Successfully assigned {namespace}/{name} to {node}");
                    if let Err(error) = writer
                        .record(&pod, "Normal", "Scheduled", "Binding", &note)
                        .await
                    {
                        tracing::warn!(%error, "recording the Scheduled event");
                    }
                    Outcome::Bound { key }
                }
                Err(error) => {
                    tracing::warn!(pod = %format!("{namespace}/{name}"), %node, %error, "binding failed");
                    if !api::is_not_found(&error) {
                        let message = format!(
                            "binding rejected: running Bind plugin \"DefaultBinder\": {}",
                            api::api_message(&error)
                        );
                        report(&writer, &pod, REASON_SCHEDULER_ERROR, &message).await;
                    }
                    Outcome::BindingFailed { key }
                }
            }
        }
        Action::ReportUnschedulable { pod, message } => {
            report(&writer, &pod, REASON_UNSCHEDULABLE, &message).await;
            Outcome::Reported
        }
    }
}

/// Upstream's failure handling: a `FailedScheduling` warning and the `PodScheduled` condition.
async fn report(writer: &api::Writer, pod: &Pod, reason: &str, message: &str) {
    if let Err(error) = writer
        .record(pod, "Warning", "FailedScheduling", "Scheduling", message)
        .await
    {
        tracing::warn!(%error, "recording the FailedScheduling event");
    }
    if let Err(error) = writer.set_unscheduled(pod, reason, message).await {
        tracing::warn!(%error, "reporting an unschedulable pod");
    }
}
