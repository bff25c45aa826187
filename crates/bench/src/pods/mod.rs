//! `cox bench pods`: pod start-up through the whole cluster, as a user sees it: the API
//! server, the scheduler, the kubelet, the runtime, and the status written back.
//!
//! One run, in this order:
//!
//! 1. The floor: the runtime's own raw start time, `cox bench runtime`'s `raw` target
//!    (sandbox and container by hand: `unshare`, CNI, overlay, `runc run -d`), as many pods
//!    one after another, before the cluster starts so nothing competes with it.
//! 2. A real single-node cluster ([`cluster`]): `cox server` and its agent in a network
//!    namespace of the benchmark's own, the busybox and pause images pre-pulled.
//! 3. Pod start-up ([`startup`]): busybox `sleep 3600` pods with an exec readiness probe
//!    (`true`), create → Running and create → Ready, p50/p99/max: once one after another (the
//!    path's own latency), once all created in a burst (upstream's density test; the node
//!    faces the whole batch together).
//! 4. A Deployment ([`rollout`]): time until all replicas are available, then the rolling
//!    update after a template change, to completion.
//!
//! Upstream's SLO is p99 ≤ 5 s for create → Running (images pre-pulled, stateless pods).

pub mod cluster;
pub mod rollout;
pub mod startup;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use crate::stats::{Latencies, ratio};
use cluster::Cluster;
use rollout::Rollout;
use startup::{Pacing, Startup};

/// The label that groups one phase's pods.
const RUN_LABEL: &str = "bench.coxswain.dev/run";

#[derive(Debug, Clone)]
pub struct Config {
    /// The `cox` binary, run as `cox server` (and as each container's shim).
    pub cox_binary: PathBuf,
    /// Where `busybox.oci.tar` and `pause.oci.tar` are (`dev/build-images` makes them).
    pub images: PathBuf,
    /// Pods per start-up phase (and raw starts for the floor).
    pub pods: usize,
    /// Create requests in flight at once in the burst.
    pub in_flight: usize,
    /// The Deployment's replicas.
    pub replicas: i32,
    /// The readiness probe's period; 0: no probe (upstream's density pods have none), so a
    /// pod is Ready as it runs.
    pub probe_period_seconds: i32,
    /// How long one phase may take before the benchmark gives up.
    pub timeout: Duration,
}

impl Config {
    pub fn full(cox_binary: PathBuf, images: PathBuf) -> Self {
        Config {
            cox_binary,
            images,
            pods: 100,
            in_flight: 100,
            replicas: 30,
            probe_period_seconds: 1,
            timeout: Duration::from_secs(600),
        }
    }

    /// A few pods: checks that the benchmark runs; the figures mean little.
    pub fn smoke(cox_binary: PathBuf, images: PathBuf) -> Self {
        Config {
            pods: 5,
            in_flight: 5,
            replicas: 3,
            timeout: Duration::from_secs(120),
            ..Config::full(cox_binary, images)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    /// The runtime's raw start, by hand.
    pub raw: Latencies,
    pub one_by_one: Startup,
    pub burst: Startup,
    pub rollout: Rollout,
}

/// Runs the benchmark and prints its table.
pub async fn run(config: &Config) -> Result<Report> {
    let owned = config.clone();
    // Every step waits on processes or runs on a thread of its own: off the async runtime.
    let report = tokio::task::spawn_blocking(move || measure(&owned)).await??;
    print(&report, config);
    Ok(report)
}

fn measure(config: &Config) -> Result<Report> {
    let floor = crate::runtime::Config {
        pods: config.pods,
        ..crate::runtime::Config::full(config.cox_binary.clone(), config.images.clone())
    };
    let raw = crate::runtime::raw_floor(&floor)?.start;

    let mut cluster = Cluster::start(&config.cox_binary, &config.images)?;
    let template = pod_template(config);
    let (pods, timeout) = (config.pods, config.timeout);
    let (one_by_one, burst, rollout) = cluster.session(|client| async move {
        let one_by_one =
            startup::measure(&client, "one", pods, &template, Pacing::OneByOne, timeout)
                .await
                .context("pods one after another")?;
        cluster::remove_workloads(&client).await?;
        let burst = Pacing::Burst {
            in_flight: config.in_flight,
        };
        let burst = startup::measure(&client, "burst", pods, &template, burst, timeout)
            .await
            .context("a burst of pods")?;
        cluster::remove_workloads(&client).await?;
        let rollout = rollout::measure(&client, config.replicas, &template, timeout)
            .await
            .context("the deployment")?;
        Ok((one_by_one, burst, rollout))
    })?;
    Ok(Report {
        raw,
        one_by_one,
        burst,
        rollout,
    })
}

/// The benchmark's pods: busybox sleeping, ready as soon as an exec probe says so. One
/// second of grace: `sleep` as PID 1 ignores SIGTERM, and removal between phases should not
/// wait 30 s for it.
fn pod_template(config: &Config) -> serde_json::Value {
    let mut template = json!({
        "metadata": {"labels": {}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "sleep",
                "image": "busybox:1.36",
                "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"],
                "readinessProbe": {
                    "exec": {"command": ["true"]},
                    "periodSeconds": config.probe_period_seconds,
                },
            }],
        },
    });
    if config.probe_period_seconds <= 0
        && let Some(container) = template["spec"]["containers"][0].as_object_mut()
    {
        container.remove("readinessProbe");
    }
    template
}

fn print(report: &Report, config: &Config) {
    let probe = match config.probe_period_seconds {
        period if period > 0 => format!("exec readiness probe every {period}s"),
        _ => "no readiness probe".to_string(),
    };
    println!(
        "pod start-up on one node (cox server and its agent): busybox `sleep 3600` pre-pulled, \
         {probe}; times from the create request to the watch event"
    );
    println!(
        "{:<30} {:>5} {:>9} {:>9} {:>9} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "",
        "pods",
        "run p50",
        "run p99",
        "run max",
        "p50/raw",
        "p99/raw",
        "ready p50",
        "ready p99",
        "ready max",
        "bound p50",
        "bound p99",
    );
    let raw = &report.raw;
    println!(
        "{:<30} {:>5} {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>7} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "raw start (runc + CNI by hand)",
        raw.count(),
        raw.ms(0.5),
        raw.ms(0.99),
        raw.max_ms(),
        "1.00x",
        "1.00x",
        "-",
        "-",
        "-",
        "-",
        "-",
    );
    let burst = format!("burst ({} in flight)", config.in_flight);
    for (label, startup) in [
        ("one after another", &report.one_by_one),
        (burst.as_str(), &report.burst),
    ] {
        println!(
            "{:<30} {:>5} {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>7} {:>7} {:>7.1}ms {:>7.1}ms {:>7.1}ms \
             {:>7.1}ms {:>7.1}ms",
            label,
            startup.running.count(),
            startup.running.ms(0.5),
            startup.running.ms(0.99),
            startup.running.max_ms(),
            ratio(startup.running.ms(0.5), raw.ms(0.5)),
            ratio(startup.running.ms(0.99), raw.ms(0.99)),
            startup.ready.ms(0.5),
            startup.ready.ms(0.99),
            startup.ready.max_ms(),
            startup.scheduled.ms(0.5),
            startup.scheduled.ms(0.99),
        );
    }
    let rollout = &report.rollout;
    println!(
        "deployment of {} replicas: all available {:.2}s after create; rolling update \
         (template change, maxSurge/maxUnavailable 25%) complete {:.2}s after the change",
        rollout.replicas,
        rollout.available.as_secs_f64(),
        rollout.updated.as_secs_f64()
    );
}
