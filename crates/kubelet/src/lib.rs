//! Coxswain's kubelet, a kube-rs client of the API server as upstream's kubelet is. Its node
//! half registers the Node, keeps its status (capacity, allocatable, addresses, node info, the
//! pressure and Ready conditions) and renews its Lease in `kube-node-lease`
//! ([`run_node_agent`]); its pod half ([`pods::run`]) runs the pods bound to the node through a
//! CRI runtime and reports their status. `cox server` starts both.
//!
//! - [`config`]: [`NodeConfig`], with upstream's defaults.
//! - [`taints`]: `--node-taint` and `--node-label` values, parsed with upstream's rules.
//! - [`registration`]: creating the Node, or reconciling the one a previous run left.
//! - [`node_status`]: the status as upstream's setters build it (pure).
//! - [`eviction`]: hard eviction thresholds: pressure conditions and the allocatable reservation.
//! - [`machine`]: what the machine has and uses, read from `/proc`, `/sys` and `statvfs`.
//! - [`lease`]: the node Lease's renewal.
//! - `agent`: the loops that tie them together.
//! - [`pods`]: the pods bound to this node, run through the CRI.
//! - [`server`]: the kubelet's HTTPS API (logs, exec, attach, port-forward) for the API server.

mod agent;
pub mod config;
pub mod eviction;
pub mod lease;
pub mod machine;
pub mod metrics;
pub mod node_status;
pub mod pods;
mod quantity;
pub mod registration;
pub mod server;
pub mod taints;

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

pub use config::{KUBELET_VERSION, NodeConfig};
pub use eviction::{EvictionThresholds, Threshold};
pub use taints::{ParseError, parse_labels, parse_taint, parse_taints};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid node configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Machine(#[from] machine::MachineError),
    #[error("registering node {node}: {source}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("a blocking read failed: {0}")]
    Blocking(#[from] tokio::task::JoinError),
}

/// Runs the node agent until `shutdown` completes: registers the Node (retrying with back-off
/// until the API server answers), then keeps posting its status and renewing its Lease. Stopping
/// stops the renewals, so the node lifecycle controller sees the node go away after the Lease's
/// duration, as with upstream's kubelet. Errors only for a bad configuration, an unreadable
/// machine, or a registration the API server refuses for good.
pub async fn run_node_agent(
    client: kube::Client,
    config: NodeConfig,
    shutdown: impl Future,
) -> Result<(), Error> {
    let problems = config.problems();
    if !problems.is_empty() {
        return Err(Error::Config(problems.join("; ")));
    }
    let name = config.name.clone();
    tokio::select! {
        result = agent::run(client, config) => result,
        _ = shutdown => {
            tracing::info!(node = %name, "node agent stopped");
            Ok(())
        }
    }
}

/// The architecture as Go (and so Kubernetes) names it: `amd64`, `arm64`, ...
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// `interval` stretched by a random share of up to `max_factor` of it (upstream's
/// `wait.Jitter`), so that thousands of nodes do not all write in the same instant.
pub(crate) fn jittered(interval: Duration, max_factor: f64) -> Duration {
    // Each `RandomState` is freshly keyed: a random number without a dependency for it.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let share = (random >> 11) as f64 / (1u64 << 53) as f64;
    interval.mul_f64(1.0 + share * max_factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_factor() {
        let interval = Duration::from_secs(10);
        for _ in 0..100 {
            let got = jittered(interval, 0.04);
            assert!(
                got >= interval && got <= Duration::from_millis(10_400),
                "{got:?}"
            );
        }
    }

    #[test]
    fn architecture_in_gos_words() {
        let arch = go_arch();
        assert!(!arch.is_empty());
        if cfg!(target_arch = "x86_64") {
            assert_eq!(arch, "amd64");
        }
    }

    /// `cox server` spawns the agent on its runtime: the future must be `Send`.
    #[test]
    fn the_agent_can_be_spawned() {
        fn spawnable<F: Future + Send + 'static>(_: &F) {}
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let client =
            kube::Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().unwrap()))
                .unwrap();
        let node = NodeConfig::new("n", std::net::IpAddr::from([127, 0, 0, 1]), "/tmp");
        spawnable(&run_node_agent(client, node, std::future::pending::<()>()));
    }

    #[tokio::test]
    async fn a_bad_configuration_is_refused_before_any_request() {
        // A client for an address nothing listens on: it must never be used.
        let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let node = NodeConfig::new("Bad_Name", std::net::IpAddr::from([127, 0, 0, 1]), "/tmp");
        let result = run_node_agent(client, node, std::future::pending::<()>()).await;
        assert!(matches!(result, Err(Error::Config(_))), "{result:?}");
    }
}
