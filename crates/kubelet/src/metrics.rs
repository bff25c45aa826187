//! The kubelet's `/metrics`, under upstream's names: what runs on the node (read from the
//! runtime when scraped), how long pods take to start, how long pod syncs take, and how many
//! pods and containers were started.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use cox_api::prometheus::{self, Histogram};

/// Upstream's buckets for pod start durations (seconds).
const POD_START_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0, 240.0,
    300.0, 360.0, 480.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0,
];
/// Prometheus's default buckets, which upstream's pod worker histogram uses.
const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug)]
struct Inner {
    pod_start: Histogram,
    pod_worker: BTreeMap<&'static str, Histogram>,
    started_pods: u64,
    started_containers: BTreeMap<&'static str, u64>,
}

/// The kubelet's own figures, shared by the pod workers and the API.
#[derive(Debug)]
pub struct Metrics(Mutex<Inner>);

impl Default for Metrics {
    fn default() -> Self {
        Metrics(Mutex::new(Inner {
            pod_start: Histogram::new(POD_START_BUCKETS),
            pod_worker: BTreeMap::new(),
            started_pods: 0,
            started_containers: BTreeMap::new(),
        }))
    }
}

/// What the runtime holds when scraped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Running {
    /// Pods whose sandbox is ready.
    pub pods: usize,
    /// Containers by state: `created`, `running`, `exited`, `unknown`.
    pub containers: BTreeMap<&'static str, usize>,
}

impl Metrics {
    /// From the kubelet first seeing a pod to the pod running.
    pub fn pod_started(&self, took: Duration) {
        if let Ok(mut inner) = self.0.lock() {
            inner.pod_start.observe(took.as_secs_f64());
        }
    }

    /// One pod sync; `operation` is `create` (the first), `update` (after a change) or `sync`.
    pub fn pod_synced(&self, operation: &'static str, took: Duration) {
        if let Ok(mut inner) = self.0.lock() {
            inner
                .pod_worker
                .entry(operation)
                .or_insert_with(|| Histogram::new(DEFAULT_BUCKETS))
                .observe(took.as_secs_f64());
        }
    }

    pub fn sandbox_started(&self) {
        if let Ok(mut inner) = self.0.lock() {
            inner.started_pods += 1;
        }
    }

    /// A container started; `kind` is `container` or `init_container`.
    pub fn container_started(&self, kind: &'static str) {
        if let Ok(mut inner) = self.0.lock() {
            *inner.started_containers.entry(kind).or_default() += 1;
        }
    }

    /// The text of `/metrics`.
    pub fn render(&self, node: &str, running: &Running) -> String {
        let mut out = String::new();
        prometheus::header(
            &mut out,
            "kubelet_node_name",
            "The node's name. The count is always 1.",
            "gauge",
        );
        prometheus::sample(
            &mut out,
            "kubelet_node_name",
            &format!("node=\"{node}\""),
            1,
        );
        prometheus::header(
            &mut out,
            "kubelet_running_pods",
            "Number of pods that have a running pod sandbox",
            "gauge",
        );
        prometheus::sample(&mut out, "kubelet_running_pods", "", running.pods);
        prometheus::header(
            &mut out,
            "kubelet_running_containers",
            "Number of containers currently running",
            "gauge",
        );
        for (state, count) in &running.containers {
            let labels = format!("container_state=\"{state}\"");
            prometheus::sample(&mut out, "kubelet_running_containers", &labels, count);
        }
        let Ok(inner) = self.0.lock() else { return out };
        prometheus::header(
            &mut out,
            "kubelet_pod_start_duration_seconds",
            "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
            "histogram",
        );
        inner
            .pod_start
            .write(&mut out, "kubelet_pod_start_duration_seconds", "");
        prometheus::header(
            &mut out,
            "kubelet_pod_worker_duration_seconds",
            "Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync",
            "histogram",
        );
        for (operation, histogram) in &inner.pod_worker {
            let labels = format!("operation_type=\"{operation}\"");
            histogram.write(&mut out, "kubelet_pod_worker_duration_seconds", &labels);
        }
        prometheus::header(
            &mut out,
            "kubelet_started_pods_total",
            "Cumulative number of pods started",
            "counter",
        );
        prometheus::sample(
            &mut out,
            "kubelet_started_pods_total",
            "",
            inner.started_pods,
        );
        prometheus::header(
            &mut out,
            "kubelet_started_containers_total",
            "Cumulative number of containers started",
            "counter",
        );
        for (kind, count) in &inner.started_containers {
            let labels = format!("container_type=\"{kind}\"");
            prometheus::sample(&mut out, "kubelet_started_containers_total", &labels, count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_upstreams_names() {
        let metrics = Metrics::default();
        metrics.pod_started(Duration::from_millis(700));
        metrics.pod_synced("create", Duration::from_millis(30));
        metrics.sandbox_started();
        metrics.container_started("container");
        metrics.container_started("init_container");
        let running = Running {
            pods: 2,
            containers: BTreeMap::from([("running", 3), ("exited", 1)]),
        };
        let text = metrics.render("node-1", &running);
        for line in [
            "kubelet_node_name{node=\"node-1\"} 1",
            "kubelet_running_pods 2",
            "kubelet_running_containers{container_state=\"running\"} 3",
            "kubelet_running_containers{container_state=\"exited\"} 1",
            "kubelet_pod_start_duration_seconds_bucket{le=\"0.5\"} 0",
            "kubelet_pod_start_duration_seconds_bucket{le=\"1\"} 1",
            "kubelet_pod_worker_duration_seconds_count{operation_type=\"create\"} 1",
            "kubelet_started_pods_total 1",
            "kubelet_started_containers_total{container_type=\"init_container\"} 1",
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "{line} missing:\n{text}"
            );
        }
    }
}
