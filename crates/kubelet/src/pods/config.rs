//! A pod as the CRI sees it: the sandbox config and each container's config, built from the Pod
//! object as upstream's kubelet builds them (labels and annotations included, which is how the
//! kubelet finds its pods and containers again in the runtime).

use std::collections::HashMap;

use cox_cri::v1;
use k8s_openapi::api::core::v1::{Container, Pod};

use super::resources;

/// Labels the kubelet puts on sandboxes and containers.
pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Annotation carrying a container's restart count.
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";

/// What the kubelet knows about where pods live on this node.
#[derive(Debug, Clone)]
pub struct PodDefaults {
    /// Where pod log directories go (`/var/log/pods` upstream).
    pub log_root: std::path::PathBuf,
    /// The cluster DNS server (`--cluster-dns`).
    pub cluster_dns: String,
    /// The cluster domain (`--cluster-domain`).
    pub cluster_domain: String,
    /// Where pods' volumes are set up (`<kubelet dir>/pods`).
    pub pods_root: std::path::PathBuf,
    /// The node's resolver settings (`--resolv-conf`): what `dnsPolicy: Default` pods get,
    /// and the search domains appended for `ClusterFirst` ones.
    pub host_dns: HostDns,
}

/// A resolv.conf's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostDns {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl HostDns {
    /// Reads resolv.conf syntax: `nameserver`, `search` (the last one wins, as in libc),
    /// `domain`, `options`; comments and other lines ignored.
    pub fn parse(text: &str) -> Self {
        let mut dns = Self::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => dns.nameservers.extend(words.next().map(str::to_owned)),
                Some("search" | "domain") => dns.searches = words.map(str::to_owned).collect(),
                Some("options") => dns.options.extend(words.map(str::to_owned)),
                _ => {}
            }
        }
        dns
    }
}

/// The pod's identity: namespace, name, uid.
pub fn identity(pod: &Pod) -> (String, String, String) {
    (
        pod.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        pod.metadata.name.clone().unwrap_or_default(),
        pod.metadata.uid.clone().unwrap_or_default(),
    )
}

/// The pod's log directory: `<root>/<namespace>_<name>_<uid>`, as upstream lays it out.
pub fn log_directory(defaults: &PodDefaults, pod: &Pod) -> std::path::PathBuf {
    let (namespace, name, uid) = identity(pod);
    defaults.log_root.join(format!("{namespace}_{name}_{uid}"))
}

fn labels_of(pod: &Pod) -> HashMap<String, String> {
    let (namespace, name, uid) = identity(pod);
    let mut labels: HashMap<String, String> = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.insert(POD_NAME.into(), name);
    labels.insert(POD_NAMESPACE.into(), namespace);
    labels.insert(POD_UID.into(), uid);
    labels
}

/// The sandbox config for a pod (`attempt` counts sandboxes made for it before).
pub fn sandbox_config(defaults: &PodDefaults, pod: &Pod, attempt: u32) -> v1::PodSandboxConfig {
    let (namespace, name, uid) = identity(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let node = |host: Option<bool>| {
        if host.unwrap_or(false) {
            v1::NamespaceMode::Node as i32
        } else {
            v1::NamespaceMode::Pod as i32
        }
    };
    let pid = if spec.host_pid.unwrap_or(false) {
        v1::NamespaceMode::Node as i32
    } else if spec.share_process_namespace.unwrap_or(false) {
        v1::NamespaceMode::Pod as i32
    } else {
        v1::NamespaceMode::Container as i32
    };
    let hostname = spec
        .hostname
        .clone()
        .unwrap_or_else(|| name.chars().take(63).collect());
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| v1::PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => v1::Protocol::Udp as i32,
                Some("SCTP") => v1::Protocol::Sctp as i32,
                _ => v1::Protocol::Tcp as i32,
            },
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let annotations: HashMap<String, String> = pod
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name,
            uid: uid.clone(),
            namespace: namespace.clone(),
            attempt,
        }),
        hostname,
        log_directory: log_directory(defaults, pod).display().to_string(),
        dns_config: Some(dns_config(defaults, pod, &namespace)),
        port_mappings,
        labels: labels_of(pod),
        annotations,
        linux: Some(v1::LinuxPodSandboxConfig {
            cgroup_parent: resources::pod_cgroup(pod, &uid),
            security_context: Some(v1::LinuxSandboxSecurityContext {
                namespace_options: Some(v1::NamespaceOption {
                    network: node(spec.host_network),
                    pid,
                    ipc: node(spec.host_ipc),
                    target_id: String::new(),
                    userns_options: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        windows: None,
    }
}

fn expanded(words: Option<&[String]>, env: &[(String, String)]) -> Vec<String> {
    words
        .unwrap_or_default()
        .iter()
        .map(|word| super::env::expand(word, env))
        .collect()
}

/// The pod's DNS settings by its `dnsPolicy`, as upstream's kubelet computes them.
fn dns_config(defaults: &PodDefaults, pod: &Pod, namespace: &str) -> v1::DnsConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let host_network = spec.host_network.unwrap_or(false);
    let cluster = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    };
    let mut config = v1::DnsConfig::default();
    let host = &defaults.host_dns;
    if cluster {
        let domain = &defaults.cluster_domain;
        config.servers = vec![defaults.cluster_dns.clone()];
        config.searches = vec![
            format!("{namespace}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.clone(),
        ];
        config.searches.extend(host.searches.iter().cloned());
        config.options = vec!["ndots:5".into()];
    } else if policy == "Default" || (host_network && policy == "ClusterFirst") {
        config.servers = host.nameservers.clone();
        config.searches = host.searches.clone();
        config.options = host.options.clone();
    }
    if let Some(extra) = &spec.dns_config {
        config
            .servers
            .extend(extra.nameservers.clone().unwrap_or_default());
        config
            .searches
            .extend(extra.searches.clone().unwrap_or_default());
        for option in extra.options.iter().flatten() {
            let Some(name) = &option.name else { continue };
            config
                .options
                .retain(|o| o.split(':').next() != Some(name.as_str()));
            config.options.push(match &option.value {
                Some(value) => format!("{name}:{value}"),
                None => name.clone(),
            });
        }
    }
    // Upstream keeps at most 32 search domains.
    config.searches.truncate(32);
    config
}

/// The container config for `container` of `pod` (its `attempt`-th start), with the
/// environment already resolved.
pub fn container_config(
    pod: &Pod,
    container: &Container,
    image: &str,
    attempt: u32,
    env: Vec<(String, String)>,
) -> v1::ContainerConfig {
    let (namespace, name, uid) = identity(pod);
    let mut labels = HashMap::new();
    labels.insert(POD_NAME.to_string(), name);
    labels.insert(POD_NAMESPACE.to_string(), namespace);
    labels.insert(POD_UID.to_string(), uid);
    labels.insert(CONTAINER_NAME.to_string(), container.name.clone());
    let mut annotations = HashMap::new();
    annotations.insert(RESTART_COUNT.to_string(), attempt.to_string());
    let security = container.security_context.as_ref();
    let spec = pod.spec.clone().unwrap_or_default();
    let pid = if spec.host_pid.unwrap_or(false) {
        v1::NamespaceMode::Node as i32
    } else if spec.share_process_namespace.unwrap_or(false) {
        v1::NamespaceMode::Pod as i32
    } else {
        v1::NamespaceMode::Container as i32
    };
    let capabilities = security
        .and_then(|s| s.capabilities.as_ref())
        .map(|c| v1::Capability {
            add_capabilities: c.add.clone().unwrap_or_default(),
            drop_capabilities: c.drop.clone().unwrap_or_default(),
            add_ambient_capabilities: Vec::new(),
        });
    let pod_security = spec.security_context.clone().unwrap_or_default();
    let run_as_user = security
        .and_then(|s| s.run_as_user)
        .or(pod_security.run_as_user)
        .map(|value| v1::Int64Value { value });
    let run_as_group = security
        .and_then(|s| s.run_as_group)
        .or(pod_security.run_as_group)
        .map(|value| v1::Int64Value { value });
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: container.name.clone(),
            attempt,
        }),
        image: Some(v1::ImageSpec {
            image: image.to_string(),
            ..Default::default()
        }),
        // `$(VAR)` in the command and arguments: from the container's environment.
        command: expanded(container.command.as_deref(), &env),
        args: expanded(container.args.as_deref(), &env),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: env
            .into_iter()
            .map(|(key, value)| v1::KeyValue { key, value })
            .collect(),
        log_path: format!("{}/{attempt}.log", container.name),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        labels,
        annotations,
        linux: Some(v1::LinuxContainerConfig {
            resources: Some(resources::container_resources(container)),
            security_context: Some(v1::LinuxContainerSecurityContext {
                capabilities,
                privileged: security.and_then(|s| s.privileged).unwrap_or(false),
                namespace_options: Some(v1::NamespaceOption {
                    network: if spec.host_network.unwrap_or(false) {
                        v1::NamespaceMode::Node as i32
                    } else {
                        v1::NamespaceMode::Pod as i32
                    },
                    pid,
                    ipc: v1::NamespaceMode::Pod as i32,
                    target_id: String::new(),
                    userns_options: None,
                }),
                run_as_user,
                run_as_group,
                readonly_rootfs: security
                    .and_then(|s| s.read_only_root_filesystem)
                    .unwrap_or(false),
                supplemental_groups: pod_security.supplemental_groups.clone().unwrap_or_default(),
                no_new_privs: security
                    .and_then(|s| s.allow_privilege_escalation)
                    .is_some_and(|allowed| !allowed),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn defaults() -> PodDefaults {
        PodDefaults {
            log_root: "/var/log/pods".into(),
            cluster_dns: "10.43.0.10".into(),
            cluster_domain: "cluster.local".into(),
            pods_root: "/var/lib/cox/pods".into(),
            host_dns: HostDns::parse(
                "# the node's\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0 ; x\n",
            ),
        }
    }

    fn pod(policy: &str, host_network: bool) -> Pod {
        Pod {
            spec: Some(PodSpec {
                dns_policy: Some(policy.into()),
                host_network: Some(host_network),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn resolv_conf_is_read_as_libc_reads_it() {
        let dns = HostDns::parse(
            "domain a.example\nsearch b.example c.example\nnameserver 1.2.3.4 # x\nnameserver 5.6.7.8\noptions ndots:2 rotate\n",
        );
        assert_eq!(dns.nameservers, ["1.2.3.4", "5.6.7.8"]);
        assert_eq!(dns.searches, ["b.example", "c.example"]);
        assert_eq!(dns.options, ["ndots:2", "rotate"]);
    }

    #[test]
    fn each_dns_policy_gets_upstreams_settings() {
        let cluster = dns_config(&defaults(), &pod("ClusterFirst", false), "shop");
        assert_eq!(cluster.servers, ["10.43.0.10"]);
        assert_eq!(
            cluster.searches,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(cluster.options, ["ndots:5"]);

        let node = dns_config(&defaults(), &pod("Default", false), "shop");
        assert_eq!(node.servers, ["192.0.2.53"]);
        assert_eq!(node.searches, ["corp.example"]);
        assert_eq!(node.options, ["edns0"]);

        // ClusterFirst falls back to the node's settings on the host network.
        let host = dns_config(&defaults(), &pod("ClusterFirst", true), "shop");
        assert_eq!(host.servers, ["192.0.2.53"]);
        let with_host = dns_config(&defaults(), &pod("ClusterFirstWithHostNet", true), "shop");
        assert_eq!(with_host.servers, ["10.43.0.10"]);

        let none = dns_config(&defaults(), &pod("None", false), "shop");
        assert!(none.servers.is_empty() && none.searches.is_empty());
    }
}
