//! Resource accounting as upstream's scheduler does it (`framework.Resource`,
//! `resourcehelper.PodRequests`): what a pod asks for, what a node can give.

use std::collections::BTreeMap;

use cox_api::quantity;
use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
pub const PODS: &str = "pods";

/// What upstream counts for a container without a CPU request when spreading by score
/// (`DefaultMilliCPURequest`), so that many request-less pods do not pile onto one node.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Likewise for memory (`DefaultMemoryRequest`, 200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of the resources the scheduler accounts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Extended resources (`example.com/gpu`), hugepages and attachable volumes, in whole units.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// Reads a resource list; names the scheduler does not account for are skipped, as upstream.
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Self {
        let mut resources = Self::default();
        for (name, amount) in list {
            match name.as_str() {
                CPU => resources.milli_cpu = quantity::milli_value(amount).unwrap_or(0),
                MEMORY => resources.memory = quantity::value(amount).unwrap_or(0),
                EPHEMERAL_STORAGE => {
                    resources.ephemeral_storage = quantity::value(amount).unwrap_or(0);
                }
                _ if is_scalar(name) => {
                    resources
                        .scalar
                        .insert(name.clone(), quantity::value(amount).unwrap_or(0));
                }
                _ => {}
            }
        }
        resources
    }

    pub fn add(&mut self, other: &Self) {
        self.combine(other, i64::saturating_add);
    }

    pub fn subtract(&mut self, other: &Self) {
        self.combine(other, i64::saturating_sub);
    }

    /// Raises every amount to at least `other`'s.
    pub fn raise_to(&mut self, other: &Self) {
        self.combine(other, i64::max);
    }

    fn combine(&mut self, other: &Self, op: fn(i64, i64) -> i64) {
        self.milli_cpu = op(self.milli_cpu, other.milli_cpu);
        self.memory = op(self.memory, other.memory);
        self.ephemeral_storage = op(self.ephemeral_storage, other.ephemeral_storage);
        for (name, amount) in &other.scalar {
            let mine = self.scalar.entry(name.clone()).or_insert(0);
            *mine = op(*mine, *amount);
        }
    }

    /// Whether the pod asks for nothing (then only the pod count limits it).
    pub fn is_empty(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    /// The amount of a named resource (`cpu` in millicores).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            CPU => self.milli_cpu,
            MEMORY => self.memory,
            EPHEMERAL_STORAGE => self.ephemeral_storage,
            _ => self.scalar.get(name).copied().unwrap_or(0),
        }
    }
}

/// Upstream's `IsScalarResourceName`: extended resources (a domain-qualified name outside
/// `kubernetes.io`), prefixed native ones, hugepages and attachable volumes.
pub fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || (name.contains('/') && !name.starts_with("requests."))
}

/// What a node offers pods: `status.allocatable`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocatable {
    pub resources: Resources,
    /// How many pods the node takes (`pods`); 0 when the node does not say, as upstream.
    pub pods: i64,
}

pub fn allocatable(node: &Node) -> Allocatable {
    let Some(list) = node.status.as_ref().and_then(|s| s.allocatable.as_ref()) else {
        return Allocatable::default();
    };
    Allocatable {
        resources: Resources::from_list(list),
        pods: list.get(PODS).and_then(quantity::value).unwrap_or_default(),
    }
}

/// What a pod requests (upstream's `PodRequests`): the sum over its containers and sidecars
/// (init containers with `restartPolicy: Always`), raised to what any init container needs
/// while it runs beside the sidecars started before it, plus `spec.overhead`.
pub fn pod_requests(pod: &Pod) -> Resources {
    requests_with(pod, container_requests)
}

/// [`pod_requests`] with upstream's defaults for containers that set no CPU or memory
/// request ([`DEFAULT_MILLI_CPU_REQUEST`], [`DEFAULT_MEMORY_REQUEST`]); only CPU and memory
/// are meaningful. Used to score, never to filter.
pub fn pod_non_zero_requests(pod: &Pod) -> Resources {
    requests_with(pod, |container| {
        let mut requests = container_requests(container);
        let list = container
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref());
        if !list.is_some_and(|l| l.contains_key(CPU)) {
            requests.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !list.is_some_and(|l| l.contains_key(MEMORY)) {
            requests.memory = DEFAULT_MEMORY_REQUEST;
        }
        requests
    })
}

fn container_requests(container: &Container) -> Resources {
    container
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .map(Resources::from_list)
        .unwrap_or_default()
}

fn requests_with(pod: &Pod, per_container: impl Fn(&Container) -> Resources) -> Resources {
    let Some(spec) = &pod.spec else {
        return Resources::default();
    };
    let mut total = Resources::default();
    for container in &spec.containers {
        total.add(&per_container(container));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for container in spec.init_containers.iter().flatten() {
        let requests = per_container(container);
        let while_running = if is_sidecar(container) {
            total.add(&requests);
            sidecars.add(&requests);
            sidecars.clone()
        } else {
            let mut with_sidecars = requests;
            with_sidecars.add(&sidecars);
            with_sidecars
        };
        init_peak.raise_to(&while_running);
    }
    total.raise_to(&init_peak);
    if let Some(overhead) = &spec.overhead {
        total.add(&Resources::from_list(overhead));
    }
    total
}

/// A restartable init container: it keeps running beside the pod's containers.
pub fn is_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

#[cfg(test)]
pub(crate) mod tests {
    use k8s_openapi::api::core::v1::{NodeStatus, PodSpec, ResourceRequirements};

    use super::*;

    pub(crate) fn list(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
            .collect()
    }

    pub(crate) fn container(requests: &[(&str, &str)]) -> Container {
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: Some(list(requests)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: Some(init),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn sidecar(requests: &[(&str, &str)]) -> Container {
        Container {
            restart_policy: Some("Always".into()),
            ..container(requests)
        }
    }

    #[test]
    fn containers_add_up_and_init_containers_raise_the_peak() {
        // Upstream's documented example: init 2 CPU/1G and 2 CPU/3G; containers 2+1 CPU, 1G+1G.
        let p = pod(
            vec![
                container(&[("cpu", "2"), ("memory", "1G")]),
                container(&[("cpu", "1"), ("memory", "1G")]),
            ],
            vec![
                container(&[("cpu", "2"), ("memory", "1G")]),
                container(&[("cpu", "2"), ("memory", "3G")]),
            ],
        );
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 3000);
        assert_eq!(r.memory, 3_000_000_000);
    }

    #[test]
    fn sidecars_add_to_the_pod_and_to_later_init_containers() {
        let p = pod(
            vec![container(&[("cpu", "1")])],
            vec![
                sidecar(&[("cpu", "500m")]),
                container(&[("cpu", "2")]),
                sidecar(&[("cpu", "250m")]),
            ],
        );
        // Running: 1 + 0.5 + 0.25; the plain init container runs beside the first sidecar.
        assert_eq!(pod_requests(&p).milli_cpu, 2500);
        let small_init = pod(
            vec![container(&[("cpu", "1")])],
            vec![sidecar(&[("cpu", "500m")]), container(&[("cpu", "100m")])],
        );
        assert_eq!(pod_requests(&small_init).milli_cpu, 1500);
    }

    #[test]
    fn overhead_and_extended_resources_count() {
        let mut p = pod(
            vec![container(&[
                ("example.com/gpu", "2"),
                ("hugepages-2Mi", "4Mi"),
                ("unknown", "5"),
            ])],
            vec![],
        );
        if let Some(spec) = p.spec.as_mut() {
            spec.overhead = Some(list(&[("cpu", "250m"), ("memory", "120Mi")]));
        }
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 250);
        assert_eq!(r.memory, 120 << 20);
        assert_eq!(r.scalar.get("example.com/gpu"), Some(&2));
        assert_eq!(r.scalar.get("hugepages-2Mi"), Some(&(4 << 20)));
        assert!(!r.scalar.contains_key("unknown"));
    }

    #[test]
    fn non_zero_requests_default_only_missing_cpu_and_memory() {
        let p = pod(
            vec![
                container(&[]),
                container(&[("cpu", "0"), ("memory", "1Gi")]),
            ],
            vec![],
        );
        let r = pod_non_zero_requests(&p);
        assert_eq!(r.milli_cpu, DEFAULT_MILLI_CPU_REQUEST);
        assert_eq!(r.memory, DEFAULT_MEMORY_REQUEST + (1 << 30));
        assert!(pod_requests(&p).milli_cpu == 0);
    }

    #[test]
    fn allocatable_reads_the_node_status() {
        let node = Node {
            status: Some(NodeStatus {
                allocatable: Some(list(&[
                    ("cpu", "4"),
                    ("memory", "8Gi"),
                    ("pods", "110"),
                    ("ephemeral-storage", "10Gi"),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let a = allocatable(&node);
        assert_eq!(a.pods, 110);
        assert_eq!(a.resources.milli_cpu, 4000);
        assert_eq!(a.resources.memory, 8 << 30);
        assert_eq!(a.resources.ephemeral_storage, 10 << 30);
        assert_eq!(allocatable(&Node::default()), Allocatable::default());
    }
}
