//! The node agent's loops: register the Node, then keep its status and its Lease up to date.
//! Status is computed every `node_status_update_frequency` but posted, as upstream's kubelet
//! does since node Leases carry the heartbeat, only when it changed (ignoring heartbeat times)
//! or when `node_status_report_frequency` has passed since the last post.

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, GetParams, Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;

use crate::config::NodeConfig;
use crate::eviction::PressureTracker;
use crate::lease::LeaseKeeper;
use crate::machine::{Host, Machine};
use crate::node_status::{
    Observed, condition_events, desired_status, status_changed, status_patch,
};
use crate::pods::events::Events;
use crate::registration::{LABEL_ARCH, LABEL_OS, register};
use crate::{Error, go_arch, jittered};

/// Attempts per status sync (upstream's `nodeStatusUpdateRetry`).
const STATUS_UPDATE_RETRIES: usize = 5;

/// Registers the Node and runs the status and Lease loops; returns only on a registration the
/// API server refuses for good, or when the machine cannot be read at start.
pub async fn run(client: kube::Client, config: NodeConfig) -> Result<(), Error> {
    let host = Host::default();
    let machine = {
        let host = host.clone();
        tokio::task::spawn_blocking(move || host.machine()).await??
    };
    tracing::info!(node = %config.name, cpus = machine.cpus, memory = machine.memory_bytes, "machine read");
    let mut status = StatusSyncer {
        api: Api::all(client.clone()),
        config: config.clone(),
        host,
        machine,
        tracker: PressureTracker::default(),
        observed: Observed::default(),
        last_report: None,
        events: Events::new(client.clone(), &config.name),
    };
    status.observe().await?;
    let first = desired_status(
        None,
        &status.config,
        &status.machine,
        &status.observed,
        Timestamp::now(),
    );
    let node = register(&status.api, &config, first).await?;
    // As upstream's kubelet announces itself; the condition events follow the first post.
    status.events.node("Starting", "Starting kubelet.").await;
    status
        .events
        .node(
            "NodeAllocatableEnforced",
            "Updated Node Allocatable limit across pods",
        )
        .await;
    if let Some(registered) = &node.status {
        for (reason, message) in condition_events(&config.name, None, registered) {
            status.events.node(&reason, &message).await;
        }
    }
    let lease = LeaseKeeper::new(client, config, &node);
    tokio::join!(lease.run(), status.run());
    Ok(())
}

/// Computes and posts the node's status.
struct StatusSyncer {
    api: Api<Node>,
    config: NodeConfig,
    host: Host,
    machine: Machine,
    tracker: PressureTracker,
    observed: Observed,
    /// When the status was last posted.
    last_report: Option<Instant>,
    events: Events,
}

impl StatusSyncer {
    async fn run(mut self) {
        loop {
            if let Err(error) = self.observe().await {
                tracing::warn!(node = %self.config.name, %error, "reading the node's usage; keeping the last figures");
            }
            if let Err(error) = self.sync().await {
                tracing::warn!(node = %self.config.name, %error, "updating the node status");
            }
            tokio::time::sleep(jittered(self.config.node_status_update_frequency, 0.04)).await;
        }
    }

    /// Reads the figures the eviction thresholds watch and updates the pressures.
    async fn observe(&mut self) -> Result<(), Error> {
        let usage = {
            let (host, machine, dir) = (
                self.host.clone(),
                self.machine.clone(),
                self.config.data_dir.clone(),
            );
            tokio::task::spawn_blocking(move || host.usage(&machine, &dir)).await??
        };
        self.observed.storage_capacity = usage.fs.capacity;
        self.observed.pressure = self.tracker.observe(
            &self.config.eviction,
            &self.machine,
            &usage,
            Instant::now().into_std(),
        );
        Ok(())
    }

    /// One status sync (upstream's `updateNodeStatus`): read the Node (first from the API
    /// server's cache), compute its status, and post it if changed or due.
    async fn sync(&mut self) -> Result<(), kube::Error> {
        let mut last_error = None;
        for attempt in 0..STATUS_UPDATE_RETRIES {
            match self.try_sync(attempt == 0).await {
                Ok(()) => return Ok(()),
                Err(error) => {
                    tracing::debug!(node = %self.config.name, attempt, %error, "node status update failed");
                    last_error = Some(error);
                }
            }
        }
        match last_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    async fn try_sync(&mut self, from_cache: bool) -> Result<(), kube::Error> {
        let params = if from_cache {
            GetParams::any()
        } else {
            GetParams::default()
        };
        let node = self.api.get_with(&self.config.name, &params).await?;
        self.ensure_required_labels(&node).await?;
        let old = node.status.as_ref();
        let new = desired_status(
            old,
            &self.config,
            &self.machine,
            &self.observed,
            Timestamp::now(),
        );
        let now = Instant::now();
        let due = self
            .last_report
            .is_none_or(|at| now >= at + self.config.node_status_report_frequency);
        let changed = old.is_none_or(|old| status_changed(old, &new));
        if !due && !changed {
            return Ok(());
        }
        let patch = status_patch(old, &new);
        self.api
            .patch_status(
                &self.config.name,
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await?;
        self.last_report = Some(now);
        for (reason, message) in condition_events(&self.config.name, old, &new) {
            self.events.node(&reason, &message).await;
        }
        tracing::debug!(node = %self.config.name, changed, "node status posted");
        Ok(())
    }

    /// Sets the OS and architecture labels back if someone changed them, as upstream checks on
    /// every sync (the scheduler and DaemonSets select on them).
    async fn ensure_required_labels(&self, node: &Node) -> Result<(), kube::Error> {
        let labels = node.metadata.labels.as_ref();
        let wrong = |key: &str, value: &str| {
            labels.and_then(|l| l.get(key)).map(String::as_str) != Some(value)
        };
        if wrong(LABEL_OS, "linux") || wrong(LABEL_ARCH, go_arch()) {
            let patch = json!({"metadata": {"labels": {LABEL_OS: "linux", LABEL_ARCH: go_arch()}}});
            self.api
                .patch(
                    &self.config.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
        Ok(())
    }
}
