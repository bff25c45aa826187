//! The node agent's configuration: what `cox server` and `cox agent` pass from their flags.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Taint;

use crate::eviction::EvictionThresholds;

/// The Kubernetes version this kubelet reports (`nodeInfo.kubeletVersion`, the VERSION column
/// of `kubectl get nodes`): the API server's `gitVersion`, as upstream's kubelet and API server
/// of one release report the same.
pub const KUBELET_VERSION: &str = "v1.33.0+cox";

/// The namespace of node Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// One node's agent configuration. [`NodeConfig::new`] fills upstream's defaults.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The Node's name (`--node-name`; upstream: the host name, lower-cased). Also its
    /// `kubernetes.io/hostname` label and its `Hostname` address.
    pub name: String,
    /// `--node-ip`: the `InternalIP` address.
    pub node_ip: IpAddr,
    /// `--node-label`s: on top of (and overriding) the labels the kubelet sets itself.
    pub labels: BTreeMap<String, String>,
    /// `--node-taint`s (see [`crate::parse_taints`]); set when the Node is created.
    pub taints: Vec<Taint>,
    /// A server's node: labelled `node-role.kubernetes.io/control-plane` and `.../master`,
    /// as k3s does.
    pub control_plane: bool,
    /// `spec.podCIDR` (and `podCIDRs`), when this node's pod range is known.
    pub pod_cidr: Option<String>,
    /// `--max-pods`: the `pods` capacity.
    pub max_pods: u32,
    /// The kubelet API's port, reported in `daemonEndpoints`.
    pub kubelet_port: u16,
    /// The node's data directory: `ephemeral-storage` and the `nodefs` signals are its file
    /// system's.
    pub data_dir: PathBuf,
    /// `--eviction-hard` and the transition period.
    pub eviction: EvictionThresholds,
    /// How often the node status is computed (`--node-status-update-frequency`).
    pub node_status_update_frequency: Duration,
    /// How often an unchanged status is posted anyway (`nodeStatusReportFrequency`): the
    /// Lease carries the heartbeat in between.
    pub node_status_report_frequency: Duration,
    /// The Lease's `leaseDurationSeconds` (`nodeLeaseDurationSeconds`); it is renewed every
    /// quarter of it.
    pub node_lease_duration_seconds: i32,
}

impl NodeConfig {
    /// A configuration with upstream's defaults: 110 pods, port 10250, status every 10 s
    /// (posted at least every 5 min), a 40 s Lease, the default eviction thresholds.
    pub fn new(name: impl Into<String>, node_ip: IpAddr, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            node_ip,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            control_plane: false,
            pod_cidr: None,
            max_pods: 110,
            kubelet_port: 10250,
            data_dir: data_dir.into(),
            eviction: EvictionThresholds::default(),
            node_status_update_frequency: Duration::from_secs(10),
            node_status_report_frequency: Duration::from_secs(5 * 60),
            node_lease_duration_seconds: 40,
        }
    }

    /// How often the Lease is renewed: a quarter of its duration, as upstream.
    pub fn lease_renew_interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.node_lease_duration_seconds.unsigned_abs())) / 4
    }

    /// Problems the API server would refuse the Node or Lease for, found before trying.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = cox_api::validation::dns1123_subdomain(&self.name)
            .into_iter()
            .map(|p| format!("node name {:?}: {p}", self.name))
            .collect();
        if self.node_lease_duration_seconds <= 0 {
            problems.push("the node lease duration must be positive".to_owned());
        }
        if self.node_status_update_frequency.is_zero() {
            problems.push("the node status update frequency must be positive".to_owned());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_upstreams() {
        let config = NodeConfig::new("node-1", IpAddr::from([10, 0, 0, 1]), "/var/lib/cox");
        assert_eq!(config.max_pods, 110);
        assert_eq!(config.kubelet_port, 10250);
        assert_eq!(config.node_lease_duration_seconds, 40);
        assert_eq!(config.lease_renew_interval(), Duration::from_secs(10));
        assert_eq!(config.node_status_update_frequency, Duration::from_secs(10));
        assert!(config.problems().is_empty());
        let bad = NodeConfig::new("Node_1", IpAddr::from([10, 0, 0, 1]), "/x");
        assert_eq!(bad.problems().len(), 1, "{:?}", bad.problems());
    }
}
