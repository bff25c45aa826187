//! Pod start-up latency as upstream's density test measures it: each pod's create request is
//! timed from just before it is sent; a watch on the pods notes when each is first seen
//! Running (`status.phase`) and first seen Ready (the `Ready` condition `True`), and, to show
//! where the time goes, first seen bound to the node (`spec.nodeName`, the scheduler's part).
//! The times are when the watch event reached the benchmark, so they include the API server's
//! watch delivery, as a user's `kubectl get -w` would see it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use tokio::sync::Notify;

use super::cluster::NAMESPACE;
use crate::stats::Latencies;

/// How the pods are created.
#[derive(Debug, Clone, Copy)]
pub enum Pacing {
    /// Each pod once the one before is Ready: the path's own latency, no queueing.
    OneByOne,
    /// All at once, this many create requests in flight: the kubelet and the runtime face
    /// the whole batch together.
    Burst { in_flight: usize },
}

/// Create → scheduled, create → Running and create → Ready of every pod.
#[derive(Debug, Clone)]
pub struct Startup {
    pub scheduled: Latencies,
    pub running: Latencies,
    pub ready: Latencies,
}

/// What the watch saw of one pod.
#[derive(Debug, Default, Clone, Copy)]
struct Times {
    created: Option<Instant>,
    scheduled: Option<Instant>,
    running: Option<Instant>,
    ready: Option<Instant>,
}

/// Creates `count` pods named `<run>-<i>` from `template` (labelled `run=<run>`) at
/// `pacing` and times their start-up; fails if not all are Ready within `timeout`.
pub async fn measure(
    client: &kube::Client,
    run: &str,
    count: usize,
    template: &serde_json::Value,
    pacing: Pacing,
    timeout: Duration,
) -> Result<Startup> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let selector = format!("{}={run}", super::RUN_LABEL);
    let mut events = watcher(pods.clone(), watcher::Config::default().labels(&selector)).boxed();
    // The watch is in place before the first create, so no transition is missed.
    while let Some(event) = events.try_next().await? {
        if matches!(event, watcher::Event::InitDone) {
            break;
        }
    }
    let times: RefCell<HashMap<String, Times>> = RefCell::default();
    let progress = Notify::new();
    let names: Vec<String> = (0..count).map(|i| format!("{run}-{i}")).collect();

    let create = |name: String| {
        let (pods, times) = (&pods, &times);
        let mut pod = template.clone();
        pod["metadata"]["name"] = name.clone().into();
        pod["metadata"]["labels"][super::RUN_LABEL] = run.into();
        async move {
            let pod: Pod = serde_json::from_value(pod)?;
            times.borrow_mut().entry(name.clone()).or_default().created = Some(Instant::now());
            pods.create(&PostParams::default(), &pod)
                .await
                .with_context(|| format!("creating pod {name}"))?;
            anyhow::Ok(())
        }
    };
    let creates = async {
        match pacing {
            Pacing::OneByOne => {
                for name in &names {
                    create(name.clone()).await?;
                    loop {
                        let notified = progress.notified();
                        if times.borrow().get(name).is_some_and(|t| t.ready.is_some()) {
                            break;
                        }
                        notified.await;
                    }
                }
            }
            Pacing::Burst { in_flight } => {
                futures::stream::iter(names.iter().cloned().map(create))
                    .buffer_unordered(in_flight.max(1))
                    .try_collect::<Vec<()>>()
                    .await?;
            }
        }
        anyhow::Ok(())
    };
    let follow = async {
        while let Some(event) = events.next().await {
            let pod = match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => pod,
                // A restarted watch lists the pods again; nothing is lost but time.
                Ok(_) | Err(_) => continue,
            };
            let seen = Instant::now();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let mut all = times.borrow_mut();
            let entry = all.entry(name).or_default();
            let bound = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
            if entry.scheduled.is_none() && bound {
                entry.scheduled = Some(seen);
            }
            if entry.running.is_none() && phase(&pod) == Some("Running") {
                entry.running = Some(seen);
            }
            if entry.ready.is_none() && is_ready(&pod) {
                entry.ready = Some(seen);
                progress.notify_waiters();
            }
            if all.values().filter(|t| t.ready.is_some()).count() >= count {
                break;
            }
        }
        anyhow::Ok(())
    };
    let both = async { futures::try_join!(creates, follow) };
    match tokio::time::timeout(timeout, both).await {
        Ok(outcome) => {
            outcome?;
        }
        Err(_) => {
            let ready = times
                .borrow()
                .values()
                .filter(|t| t.ready.is_some())
                .count();
            bail!(
                "{run}: only {ready} of {count} pods Ready after {}s",
                timeout.as_secs()
            );
        }
    }
    figures(&times.borrow(), &names)
}

fn figures(times: &HashMap<String, Times>, names: &[String]) -> Result<Startup> {
    let mut startup = Startup {
        scheduled: Latencies::new(),
        running: Latencies::new(),
        ready: Latencies::new(),
    };
    for name in names {
        let t = times
            .get(name)
            .with_context(|| format!("pod {name} never seen"))?;
        let created = t
            .created
            .with_context(|| format!("pod {name} not created"))?;
        // A pod Ready in the same event it became Running was Running by then, and one
        // Running in the same event it was bound was bound by then.
        let running = t
            .running
            .or(t.ready)
            .with_context(|| format!("pod {name} never seen Running"))?;
        startup
            .scheduled
            .record(t.scheduled.unwrap_or(running).duration_since(created));
        let ready = t
            .ready
            .with_context(|| format!("pod {name} never seen Ready"))?;
        startup.running.record(running.duration_since(created));
        startup.ready.record(ready.duration_since(created));
    }
    Ok(startup)
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
