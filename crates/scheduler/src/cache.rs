//! The scheduler's view of the cluster (upstream's scheduler cache): nodes, and per node the
//! pods bound to it with their requests and host ports summed, kept up to date from watch
//! events. Pods the scheduler has decided to bind but whose binding it has not yet seen come
//! back through the watch are *assumed*: they count on their node straight away, so the next
//! decision does not give their room to another pod.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::resources::{self, Allocatable, Resources};
use crate::selectors;

/// The key the scheduler knows a pod by: its UID (a pod recreated under the same name is
/// another pod), or `namespace/name` for objects without one.
pub fn pod_key(pod: &Pod) -> String {
    match &pod.metadata.uid {
        Some(uid) if !uid.is_empty() => uid.clone(),
        _ => format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or("")
        ),
    }
}

/// A host port a container asks for, normalized as upstream's `HostPortInfo` does: no IP
/// means every address (`0.0.0.0`), no protocol means TCP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

pub const ALL_ADDRESSES: &str = "0.0.0.0";

/// The host ports of a pod's containers and sidecars (ports without `hostPort` take none).
pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| resources::is_sidecar(c));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|port| {
            let host_port = port.host_port.filter(|p| *p > 0)?;
            let nonempty = |s: &Option<String>, default: &str| {
                s.as_deref()
                    .filter(|s| !s.is_empty())
                    .unwrap_or(default)
                    .to_owned()
            };
            Some(HostPort {
                ip: nonempty(&port.host_ip, ALL_ADDRESSES),
                protocol: nonempty(&port.protocol, "TCP"),
                port: host_port,
            })
        })
        .collect()
}

/// A pod bound (or assumed bound) to a node, with what the filters need computed once.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub requests: Resources,
    pub non_zero_requests: Resources,
    pub host_ports: Vec<HostPort>,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Self {
        Self {
            requests: resources::pod_requests(&pod),
            non_zero_requests: resources::pod_non_zero_requests(&pod),
            host_ports: host_ports(&pod),
            pod,
        }
    }

    /// Whether the pod has required pod anti-affinity terms (other pods must keep away).
    pub fn has_required_anti_affinity(&self) -> bool {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .is_some_and(|terms| !terms.is_empty())
    }
}

/// The pods on one node and what they take of it.
#[derive(Debug, Default, Clone)]
pub struct NodePods {
    pub pods: BTreeMap<String, Arc<PodInfo>>,
    /// The sum of the pods' requests.
    pub requested: Resources,
    /// The same with upstream's defaults for missing CPU and memory requests (for scores).
    pub non_zero_requested: Resources,
    /// Host ports in use, each with the number of containers using it.
    used_ports: HashMap<HostPort, usize>,
    /// How many of the pods have required pod anti-affinity terms.
    pub with_required_anti_affinity: usize,
}

impl NodePods {
    fn add(&mut self, key: String, info: Arc<PodInfo>) {
        self.requested.add(&info.requests);
        self.non_zero_requested.add(&info.non_zero_requests);
        for port in &info.host_ports {
            *self.used_ports.entry(port.clone()).or_default() += 1;
        }
        if info.has_required_anti_affinity() {
            self.with_required_anti_affinity += 1;
        }
        self.pods.insert(key, info);
    }

    fn remove(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let info = self.pods.remove(key)?;
        if info.has_required_anti_affinity() {
            self.with_required_anti_affinity -= 1;
        }
        self.requested.subtract(&info.requests);
        self.non_zero_requested.subtract(&info.non_zero_requests);
        for port in &info.host_ports {
            if let Some(count) = self.used_ports.get_mut(port) {
                *count -= 1;
                if *count == 0 {
                    self.used_ports.remove(port);
                }
            }
        }
        Some(info)
    }

    /// The same pods but `keys` (what the node would hold once they are evicted).
    pub fn without<'k>(&self, keys: impl IntoIterator<Item = &'k str>) -> Self {
        let mut rest = self.clone();
        for key in keys {
            rest.remove(key);
        }
        rest
    }

    /// Upstream's `HostPortInfo.CheckConflict`: a wanted port on every address conflicts
    /// with that protocol and port on any address; one on a specific address conflicts with
    /// the same address or with every address.
    pub fn port_conflicts(&self, wanted: &HostPort) -> bool {
        if wanted.ip == ALL_ADDRESSES {
            return self
                .used_ports
                .keys()
                .any(|used| used.protocol == wanted.protocol && used.port == wanted.port);
        }
        let everywhere = HostPort {
            ip: ALL_ADDRESSES.to_owned(),
            ..wanted.clone()
        };
        self.used_ports.contains_key(wanted) || self.used_ports.contains_key(&everywhere)
    }
}

/// A node as the filters and scores see it.
#[derive(Debug, Clone, Copy)]
pub struct NodeView<'a> {
    pub node: &'a Node,
    pub allocatable: &'a Allocatable,
    pub pods: &'a NodePods,
}

impl NodeView<'_> {
    pub fn name(&self) -> &str {
        selectors::node_name(self.node)
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        selectors::labels(&self.node.metadata)
    }
}

#[derive(Debug)]
struct NodeEntry {
    node: Arc<Node>,
    allocatable: Allocatable,
}

static NO_PODS: std::sync::LazyLock<NodePods> = std::sync::LazyLock::new(NodePods::default);

#[derive(Debug, Default)]
pub struct Cache {
    nodes: BTreeMap<String, NodeEntry>,
    /// Bound pods by node name; a node may hold pods before the scheduler has seen it.
    pods_by_node: HashMap<String, NodePods>,
    /// The node of each bound pod, by pod key.
    pod_nodes: HashMap<String, String>,
    assumed: HashSet<String>,
}

impl Cache {
    /// Adds or replaces a node; returns the one it replaced.
    pub fn set_node(&mut self, node: Arc<Node>) -> Option<Arc<Node>> {
        let name = selectors::node_name(&node).to_owned();
        let entry = NodeEntry {
            allocatable: resources::allocatable(&node),
            node,
        };
        self.nodes.insert(name, entry).map(|old| old.node)
    }

    pub fn remove_node(&mut self, name: &str) -> Option<Arc<Node>> {
        self.nodes.remove(name).map(|entry| entry.node)
    }

    pub fn node_names(&self) -> impl Iterator<Item = &String> {
        self.nodes.keys()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Every node, in name order.
    pub fn nodes(&self) -> Vec<NodeView<'_>> {
        self.nodes
            .iter()
            .map(|(name, entry)| NodeView {
                node: &entry.node,
                allocatable: &entry.allocatable,
                pods: self.pods_by_node.get(name).unwrap_or(&NO_PODS),
            })
            .collect()
    }

    /// Records a pod bound to `node`, replacing what the cache held for it (confirming it,
    /// if it was assumed).
    pub fn add_pod(&mut self, pod: Arc<Pod>, node: &str) {
        let key = pod_key(&pod);
        self.remove_pod(&key);
        let info = Arc::new(PodInfo::new(pod));
        self.pods_by_node
            .entry(node.to_owned())
            .or_default()
            .add(key.clone(), info);
        self.pod_nodes.insert(key, node.to_owned());
    }

    /// Forgets a bound or assumed pod.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        self.assumed.remove(key);
        let node = self.pod_nodes.remove(key)?;
        let pods = self.pods_by_node.get_mut(&node)?;
        let removed = pods.remove(key);
        if pods.pods.is_empty() {
            self.pods_by_node.remove(&node);
        }
        removed
    }

    /// A bound or assumed pod.
    pub fn pod(&self, key: &str) -> Option<&Arc<PodInfo>> {
        let node = self.pod_nodes.get(key)?;
        self.pods_by_node.get(node)?.pods.get(key)
    }

    pub fn has_pod(&self, key: &str) -> bool {
        self.pod_nodes.contains_key(key)
    }

    /// The keys of every bound or assumed pod.
    pub fn pod_keys(&self) -> impl Iterator<Item = &String> {
        self.pod_nodes.keys()
    }

    /// Counts `pod` on `node` until its binding is seen or fails.
    pub fn assume(&mut self, pod: &Pod, node: &str) {
        let mut bound = pod.clone();
        bound.spec.get_or_insert_default().node_name = Some(node.to_owned());
        let key = pod_key(pod);
        self.add_pod(Arc::new(bound), node);
        self.assumed.insert(key);
    }

    /// Whether the pod is counted on a node but its binding is not seen yet.
    pub fn is_assumed(&self, key: &str) -> bool {
        self.assumed.contains(key)
    }

    /// Undoes [`Cache::assume`] after a failed binding.
    pub fn forget(&mut self, key: &str) {
        if self.assumed.contains(key) {
            self.remove_pod(key);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use k8s_openapi::api::core::v1::{Container, ContainerPort, NodeStatus, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::resources::tests::{container, list};

    /// A pod in `default` with one container requesting `requests`.
    pub(crate) fn pod(name: &str, requests: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![container(requests)],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub(crate) fn with_host_port(mut pod: Pod, port: i32, protocol: &str, ip: &str) -> Pod {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        if let Some(spec) = pod.spec.as_mut() {
            spec.containers.push(Container {
                name: format!("port-{port}"),
                ports: Some(vec![ContainerPort {
                    container_port: 80,
                    host_port: Some(port),
                    protocol: some(protocol),
                    host_ip: some(ip),
                    ..Default::default()
                }]),
                ..Default::default()
            });
        }
        pod
    }

    pub(crate) fn node_with(name: &str, allocatable: &[(&str, &str)]) -> Node {
        Node {
            status: Some(NodeStatus {
                allocatable: Some(list(allocatable)),
                ..Default::default()
            }),
            ..crate::selectors::tests::node(name, &[])
        }
    }

    #[test]
    fn bound_pods_add_up_on_their_node_and_go_away() {
        let mut cache = Cache::default();
        cache.set_node(Arc::new(node_with("n1", &[("cpu", "2")])));
        cache.add_pod(Arc::new(pod("a", &[("cpu", "500m")])), "n1");
        cache.add_pod(Arc::new(pod("b", &[("cpu", "250m")])), "n1");
        // Seeing the same pod again replaces it rather than counting it twice.
        cache.add_pod(Arc::new(pod("b", &[("cpu", "250m")])), "n1");
        let nodes = cache.nodes();
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].pods.requested.milli_cpu, 750);
        assert_eq!(nodes[0].pods.pods.len(), 2);
        assert_eq!(nodes[0].allocatable.resources.milli_cpu, 2000);
        cache.remove_pod("uid-a");
        assert_eq!(cache.nodes()[0].pods.requested.milli_cpu, 250);
    }

    #[test]
    fn pods_on_unknown_nodes_wait_for_their_node() {
        let mut cache = Cache::default();
        cache.add_pod(Arc::new(pod("a", &[("cpu", "1")])), "later");
        assert!(cache.nodes().is_empty());
        cache.set_node(Arc::new(node_with("later", &[])));
        assert_eq!(cache.nodes()[0].pods.requested.milli_cpu, 1000);
    }

    #[test]
    fn assumed_pods_count_until_confirmed_or_forgotten() {
        let mut cache = Cache::default();
        cache.set_node(Arc::new(node_with("n1", &[])));
        let p = pod("a", &[("memory", "1Gi")]);
        cache.assume(&p, "n1");
        assert!(cache.is_assumed("uid-a"));
        assert_eq!(cache.nodes()[0].pods.requested.memory, 1 << 30);
        cache.forget("uid-a");
        assert_eq!(cache.nodes()[0].pods.requested.memory, 0);

        cache.assume(&p, "n1");
        cache.add_pod(Arc::new(p), "n1");
        assert!(!cache.is_assumed("uid-a"));
        cache.forget("uid-a");
        assert_eq!(cache.nodes()[0].pods.requested.memory, 1 << 30);
    }

    #[test]
    fn host_ports_conflict_as_upstream() {
        let mut pods = NodePods::default();
        let used = with_host_port(pod("a", &[]), 8080, "", "10.0.0.1");
        pods.add("a".into(), Arc::new(PodInfo::new(Arc::new(used))));
        let port = |ip: &str, protocol: &str| HostPort {
            ip: ip.into(),
            protocol: protocol.into(),
            port: 8080,
        };
        assert!(pods.port_conflicts(&port("10.0.0.1", "TCP")));
        assert!(pods.port_conflicts(&port(ALL_ADDRESSES, "TCP")));
        assert!(!pods.port_conflicts(&port("10.0.0.2", "TCP")));
        assert!(!pods.port_conflicts(&port("10.0.0.1", "UDP")));

        let everywhere = with_host_port(pod("b", &[]), 9090, "UDP", "");
        pods.add("b".into(), Arc::new(PodInfo::new(Arc::new(everywhere))));
        let udp = HostPort {
            ip: "10.0.0.9".into(),
            protocol: "UDP".into(),
            port: 9090,
        };
        assert!(pods.port_conflicts(&udp));
        pods.remove("b");
        assert!(!pods.port_conflicts(&udp));
    }

    #[test]
    fn host_ports_skip_ports_without_host_port() {
        let p = with_host_port(pod("a", &[]), 0, "", "");
        assert!(host_ports(&p).is_empty());
        let p = with_host_port(pod("a", &[]), 80, "", "");
        assert_eq!(
            host_ports(&p),
            vec![HostPort {
                ip: ALL_ADDRESSES.into(),
                protocol: "TCP".into(),
                port: 80
            }]
        );
    }
}
