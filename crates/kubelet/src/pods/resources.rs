//! Requests and limits as the runtime applies them, and the pod's QoS class, as upstream's
//! kubelet computes them: CPU requests become cgroup shares (1024 per core, at least 2), CPU
//! limits a CFS quota over a 100 ms period, memory limits the cgroup's limit.

use cox_api::quantity::{milli_value, value};
use cox_cri::v1;
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

const CPU_PERIOD_US: i64 = 100_000;
const MIN_SHARES: i64 = 2;
const SHARES_PER_CPU: i64 = 1024;

fn request<'a>(container: &'a Container, resource: &str) -> Option<&'a Quantity> {
    let resources = container.resources.as_ref()?;
    resources
        .requests
        .as_ref()
        .and_then(|r| r.get(resource))
        // A limit without a request is also the request, as upstream defaults it.
        .or_else(|| resources.limits.as_ref().and_then(|l| l.get(resource)))
}

fn limit<'a>(container: &'a Container, resource: &str) -> Option<&'a Quantity> {
    container.resources.as_ref()?.limits.as_ref()?.get(resource)
}

/// The container's cgroup settings for the runtime.
pub fn container_resources(container: &Container) -> v1::LinuxContainerResources {
    let cpu_request = request(container, "cpu").and_then(milli_value).unwrap_or(0);
    let cpu_limit = limit(container, "cpu").and_then(milli_value).unwrap_or(0);
    let memory_limit = limit(container, "memory").and_then(value).unwrap_or(0);
    let shares = if cpu_request > 0 {
        (cpu_request * SHARES_PER_CPU / 1000).max(MIN_SHARES)
    } else {
        MIN_SHARES
    };
    v1::LinuxContainerResources {
        cpu_shares: shares,
        cpu_period: if cpu_limit > 0 { CPU_PERIOD_US } else { 0 },
        cpu_quota: if cpu_limit > 0 {
            (cpu_limit * CPU_PERIOD_US / 1000).max(1000)
        } else {
            0
        },
        memory_limit_in_bytes: memory_limit,
        ..Default::default()
    }
}

/// Upstream's QoS class: Guaranteed when every container has equal CPU and memory requests and
/// limits, BestEffort when none has any, Burstable otherwise.
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = &pod.spec else {
        return "BestEffort";
    };
    let containers: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let any = containers.iter().any(|c| {
        c.resources.as_ref().is_some_and(|r| {
            r.requests.as_ref().is_some_and(|m| !m.is_empty())
                || r.limits.as_ref().is_some_and(|m| !m.is_empty())
        })
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|resource| {
            let limit = limit(c, resource);
            let request = request(c, resource);
            limit.is_some() && request.map(|q| &q.0) == limit.map(|q| &q.0)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The pod's cgroup, under the QoS class's, as upstream's cgroupfs driver names them.
pub fn pod_cgroup(pod: &Pod, uid: &str) -> String {
    match qos_class(pod) {
        "Guaranteed" => format!("/kubepods/pod{uid}"),
        "Burstable" => format!("/kubepods/burstable/pod{uid}"),
        _ => format!("/kubepods/besteffort/pod{uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
    use std::collections::BTreeMap;

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let map = |pairs: &[(&str, &str)]| -> Option<BTreeMap<String, Quantity>> {
            (!pairs.is_empty()).then(|| {
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect()
            })
        };
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: map(requests),
                limits: map(limits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn cgroup_settings_follow_requests_and_limits() {
        let resources = container_resources(&container(
            &[("cpu", "250m")],
            &[("cpu", "500m"), ("memory", "64Mi")],
        ));
        assert_eq!(resources.cpu_shares, 256);
        assert_eq!(resources.cpu_quota, 50_000);
        assert_eq!(resources.cpu_period, 100_000);
        assert_eq!(resources.memory_limit_in_bytes, 64 * 1024 * 1024);
        let none = container_resources(&container(&[], &[]));
        assert_eq!(
            (none.cpu_shares, none.cpu_quota, none.memory_limit_in_bytes),
            (2, 0, 0)
        );
    }

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(&pod(vec![container(&[], &[])])), "BestEffort");
        let guaranteed = container(&[], &[("cpu", "1"), ("memory", "1Gi")]);
        assert_eq!(qos_class(&pod(vec![guaranteed])), "Guaranteed");
        let burstable = container(&[("cpu", "100m")], &[]);
        assert_eq!(qos_class(&pod(vec![burstable])), "Burstable");
        assert!(pod_cgroup(&pod(vec![container(&[], &[])]), "u1").ends_with("besteffort/podu1"));
    }
}
