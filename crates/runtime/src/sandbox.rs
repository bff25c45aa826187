//! Pod sandboxes: the namespaces a pod's containers share, its network, and its files.
//!
//! A sandbox needs no process of its own, unless its containers share a pid namespace. Its
//! network, UTS and IPC namespaces are kept alive by bind mounts on files in the pod's directory
//! (made by util-linux's `unshare`, which also sets the hostname inside the new UTS namespace);
//! containers join them by path. A shared pid namespace needs a live first process: see
//! [`crate::pause`]. Networking comes from CNI (see [`crate::cni`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use cox_cri::v1::{self, ContainerEventType};

use crate::cni::PortMapping;
use crate::runtime::{Result, Runtime, RuntimeError, SandboxRecord, lock, new_id, now_nanos, save};
use crate::teardown;

/// `NamespaceMode::NODE`: share the host's namespace.
const NODE: i32 = v1::NamespaceMode::Node as i32;
/// `NamespaceMode::POD`: one namespace for the pod's containers (the CRI's default).
const POD: i32 = v1::NamespaceMode::Pod as i32;

impl Runtime {
    /// `RunPodSandbox`: creates the namespaces, connects the network, writes the pod's files.
    /// On failure everything done so far is undone.
    pub fn run_pod_sandbox(&self, config: v1::PodSandboxConfig, handler: &str) -> Result<String> {
        let metadata = config.metadata.as_ref().ok_or_else(|| {
            RuntimeError::InvalidArgument("sandbox config has no metadata".into())
        })?;
        if metadata.name.is_empty() {
            return Err(RuntimeError::InvalidArgument(
                "sandbox metadata.name is required".into(),
            ));
        }
        if !handler.is_empty() && handler != "runc" {
            return Err(RuntimeError::InvalidArgument(format!(
                "unknown runtime handler {handler:?}: only \"runc\" is configured"
            )));
        }
        // One live sandbox per (name, namespace, uid, attempt), as containerd enforces.
        for existing in lock(&self.sandboxes).values() {
            let existing = lock(existing);
            if existing.config.metadata.as_ref() == Some(metadata) {
                return Err(RuntimeError::AlreadyExists(format!(
                    "pod sandbox {}/{} attempt {} already exists as {}",
                    metadata.namespace, metadata.name, metadata.attempt, existing.id
                )));
            }
        }
        let id = new_id();
        let dir = self.pod_dir(&id);
        fs::create_dir_all(dir.join("ns"))?;
        let options = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref());
        let host_network = options.is_some_and(|o| o.network == NODE);
        // No options at all is POD mode for pid too, as the CRI's zero value says.
        let shared_pid = options.is_none_or(|o| o.pid == POD);
        let ports: Vec<PortMapping> = config
            .port_mappings
            .iter()
            .filter(|p| p.host_port > 0)
            .map(|p| PortMapping {
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: match p.protocol {
                    1 => "udp",
                    2 => "sctp",
                    _ => "tcp",
                }
                .to_string(),
                host_ip: p.host_ip.clone(),
            })
            .collect();
        let cgroup_parent = config
            .linux
            .as_ref()
            .map(|l| l.cgroup_parent.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| format!("/cox/pod-{}", &id[..16]));
        let mut record = SandboxRecord {
            id: id.clone(),
            config,
            created_at: now_nanos(),
            state: v1::PodSandboxState::SandboxNotready as i32,
            ip: String::new(),
            cni_result: serde_json::Value::Null,
            ports,
            cgroup_parent,
            host_network,
            runtime_handler: handler.to_string(),
            pause_pid: 0,
        };
        match self.set_up_sandbox(&dir, &mut record, shared_pid) {
            Ok(()) => {
                record.state = v1::PodSandboxState::SandboxReady as i32;
                save(&dir.join("sandbox.json"), &record)?;
                lock(&self.sandboxes).insert(id.clone(), Arc::new(Mutex::new(record)));
                // As containerd: a pod's own events carry its ID as the container's.
                self.announce(&id, &id, ContainerEventType::ContainerCreatedEvent);
                self.announce(&id, &id, ContainerEventType::ContainerStartedEvent);
                Ok(id)
            }
            Err(e) => {
                self.stop_pause(&record);
                self.tear_down_network(&record);
                teardown::remove_dir_carefully(&dir);
                Err(e)
            }
        }
    }

    fn set_up_sandbox(
        &self,
        dir: &Path,
        record: &mut SandboxRecord,
        shared_pid: bool,
    ) -> Result<()> {
        let hostname = hostname_of(&record.config);
        let ns = dir.join("ns");
        let mut unshare = Command::new("unshare");
        for kind in ["uts", "ipc"]
            .into_iter()
            .chain((!record.host_network).then_some("net"))
        {
            fs::write(ns.join(kind), b"")?;
            unshare.arg(format!("--{kind}={}", ns.join(kind).display()));
        }
        let output = unshare
            .arg("hostname")
            .arg(&hostname)
            .output()
            .map_err(|e| RuntimeError::Internal(format!("cannot run unshare (util-linux): {e}")))?;
        if !output.status.success() {
            return Err(RuntimeError::Internal(format!(
                "creating the pod's namespaces: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        if shared_pid {
            fs::write(ns.join("pid"), b"")?;
            record.pause_pid =
                crate::pause::start(&self.config.shim, &ns.join("pid")).map_err(|e| {
                    RuntimeError::Internal(format!("creating the pod's pid namespace: {e}"))
                })?;
        }
        fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
        fs::write(
            dir.join("resolv.conf"),
            resolv_conf(record.config.dns_config.as_ref()),
        )?;
        if !record.host_network {
            let (result, ip) = self
                .config
                .network
                .add(&record.id, &ns.join("net"), &record.ports)
                .map_err(|e| RuntimeError::Internal(e.to_string()))?;
            record.cni_result = result;
            record.ip = ip.unwrap_or_default();
        }
        fs::write(dir.join("hosts"), hosts_file(&record.ip, &hostname))?;
        Ok(())
    }

    /// CNI DEL, then the network namespace goes. Errors are logged: DEL must be retried by a
    /// later stop or remove, not block it.
    fn tear_down_network(&self, record: &SandboxRecord) {
        let net = self.pod_dir(&record.id).join("ns/net");
        if !record.host_network
            && record.cni_result != serde_json::Value::Null
            && let Err(e) = self.config.network.remove(
                &record.id,
                &net,
                Some(&record.cni_result),
                &record.ports,
            )
        {
            tracing::warn!(sandbox = %record.id, error = %e, "CNI DEL failed");
        }
        for kind in ["net", "uts", "ipc", "pid"] {
            let path = self.pod_dir(&record.id).join("ns").join(kind);
            if let Err(e) = teardown::unmount(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot unmount namespace");
            }
        }
    }

    /// Ends the process holding the pod's pid namespace, and so every process left in it.
    fn stop_pause(&self, record: &SandboxRecord) {
        if record.pause_pid > 0 {
            crate::pause::stop(record.pause_pid, &self.pod_dir(&record.id).join("ns/pid"));
        }
    }

    /// `StopPodSandbox`: stops every container of the pod (no grace: the kubelet stops them
    /// gracefully first), then takes the network down. Repeating it is harmless.
    pub fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let sandbox = match self.sandbox(id) {
            Ok(sandbox) => sandbox,
            // Stopping what is not there succeeds, as the CRI asks.
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let sandbox_id = lock(&sandbox).id.clone();
        for container in self.containers_of(&sandbox_id) {
            self.stop_container(&container, 0)?;
        }
        let mut record = lock(&sandbox);
        if record.state == v1::PodSandboxState::SandboxReady as i32 {
            self.stop_pause(&record);
            self.tear_down_network(&record);
            record.state = v1::PodSandboxState::SandboxNotready as i32;
            save(&self.pod_dir(&record.id).join("sandbox.json"), &*record)?;
            drop(record);
            self.announce(
                &sandbox_id,
                &sandbox_id,
                ContainerEventType::ContainerStoppedEvent,
            );
        }
        Ok(())
    }

    /// `RemovePodSandbox`: stops it if needed, removes its containers, its cgroup and its files.
    pub fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let sandbox = match self.sandbox(id) {
            Ok(sandbox) => sandbox,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let sandbox_id = lock(&sandbox).id.clone();
        self.stop_pod_sandbox(&sandbox_id)?;
        for container in self.containers_of(&sandbox_id) {
            self.remove_container(&container)?;
        }
        let record = lock(&sandbox).clone();
        if let Err(e) = crate::cgroups::remove(&record.cgroup_parent) {
            tracing::warn!(sandbox = %record.id, error = %e, "pod cgroup not removed");
        }
        teardown::remove_dir_carefully(&self.pod_dir(&record.id));
        lock(&self.sandboxes).remove(&record.id);
        self.announce(
            &record.id,
            &record.id,
            ContainerEventType::ContainerDeletedEvent,
        );
        Ok(())
    }

    /// IDs of the containers in a sandbox.
    pub(crate) fn containers_of(&self, sandbox_id: &str) -> Vec<String> {
        lock(&self.containers)
            .values()
            .filter_map(|c| {
                let c = lock(c);
                (c.sandbox_id == sandbox_id).then(|| c.id.clone())
            })
            .collect()
    }

    /// `PodSandboxStatus`.
    pub fn pod_sandbox_status(&self, id: &str) -> Result<v1::PodSandboxStatus> {
        let sandbox = self.sandbox(id)?;
        let record = lock(&sandbox);
        Ok(sandbox_status(&record))
    }

    /// `ListPodSandbox`.
    pub fn list_pod_sandboxes(&self, filter: Option<&v1::PodSandboxFilter>) -> Vec<v1::PodSandbox> {
        let sandboxes: Vec<_> = lock(&self.sandboxes).values().cloned().collect();
        sandboxes
            .iter()
            .map(|s| lock(s).clone())
            .filter(|record| {
                let Some(filter) = filter else { return true };
                (filter.id.is_empty() || record.id.starts_with(&filter.id))
                    && filter
                        .state
                        .as_ref()
                        .is_none_or(|s| s.state == record.state)
                    && filter
                        .label_selector
                        .iter()
                        .all(|(k, v)| record.config.labels.get(k) == Some(v))
            })
            .map(|record| v1::PodSandbox {
                id: record.id.clone(),
                metadata: record.config.metadata.clone(),
                state: record.state,
                created_at: record.created_at,
                labels: record.config.labels.clone(),
                annotations: record.config.annotations.clone(),
                runtime_handler: record.runtime_handler.clone(),
            })
            .collect()
    }

    /// `PodSandboxStats`: the pod's cgroup, its network (read through one of its containers'
    /// processes), and each container's own figures.
    pub fn pod_sandbox_stats(&self, id: &str) -> Result<v1::PodSandboxStats> {
        let sandbox = self.sandbox(id)?;
        let record = lock(&sandbox).clone();
        let now = now_nanos();
        let usage = crate::cgroups::usage(&record.cgroup_parent).unwrap_or_default();
        let containers: Vec<_> = self
            .containers_of(&record.id)
            .iter()
            .filter_map(|id| self.container(id).ok())
            .map(|c| lock(&c).clone())
            .collect();
        let network = containers
            .iter()
            .filter(|c| c.pid > 0)
            .find_map(|c| fs::read_to_string(format!("/proc/{}/net/dev", c.pid)).ok())
            .map(|text| crate::cgroups::network_usage(&text, now));
        Ok(v1::PodSandboxStats {
            attributes: Some(v1::PodSandboxAttributes {
                id: record.id.clone(),
                metadata: record.config.metadata.clone(),
                labels: record.config.labels.clone(),
                annotations: record.config.annotations.clone(),
            }),
            linux: Some(v1::LinuxPodSandboxStats {
                cpu: Some(usage.cpu(now)),
                memory: Some(usage.memory(now)),
                network,
                process: Some(v1::ProcessUsage {
                    timestamp: now,
                    process_count: crate::cgroups::process_count(&record.cgroup_parent)
                        .map(|value| v1::UInt64Value { value }),
                }),
                containers: containers.iter().map(|c| self.stats_of(c)).collect(),
            }),
            windows: None,
        })
    }

    /// Paths a container of this pod needs: its namespaces and /etc files.
    pub(crate) fn pod_paths(&self, record: &SandboxRecord) -> PodPaths {
        let dir = self.pod_dir(&record.id);
        PodPaths {
            net: (!record.host_network).then(|| dir.join("ns/net")),
            uts: dir.join("ns/uts"),
            ipc: dir.join("ns/ipc"),
            pid: (record.pause_pid > 0).then(|| dir.join("ns/pid")),
            resolv: dir.join("resolv.conf"),
            hosts: dir.join("hosts"),
            hostname: dir.join("hostname"),
        }
    }
}

/// Files and namespaces of a pod, for its containers' specs.
#[derive(Debug)]
pub(crate) struct PodPaths {
    pub net: Option<PathBuf>,
    pub uts: PathBuf,
    pub ipc: PathBuf,
    /// The shared pid namespace, for a pod in `NamespaceMode::POD`.
    pub pid: Option<PathBuf>,
    pub resolv: PathBuf,
    pub hosts: PathBuf,
    pub hostname: PathBuf,
}

fn sandbox_status(record: &SandboxRecord) -> v1::PodSandboxStatus {
    let options = record
        .config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone());
    v1::PodSandboxStatus {
        id: record.id.clone(),
        metadata: record.config.metadata.clone(),
        state: record.state,
        created_at: record.created_at,
        network: Some(v1::PodSandboxNetworkStatus {
            ip: record.ip.clone(),
            additional_ips: Vec::new(),
        }),
        linux: Some(v1::LinuxPodSandboxStatus {
            namespaces: Some(v1::Namespace { options }),
        }),
        labels: record.config.labels.clone(),
        annotations: record.config.annotations.clone(),
        runtime_handler: record.runtime_handler.clone(),
    }
}

fn hostname_of(config: &v1::PodSandboxConfig) -> String {
    if !config.hostname.is_empty() {
        return config.hostname.clone();
    }
    config
        .metadata
        .as_ref()
        .map(|m| m.name.chars().take(63).collect())
        .unwrap_or_else(|| "pod".to_string())
}

/// The pod's resolv.conf: from its DNS config, or the node's own.
fn resolv_conf(dns: Option<&v1::DnsConfig>) -> String {
    let Some(dns) =
        dns.filter(|d| !d.servers.is_empty() || !d.searches.is_empty() || !d.options.is_empty())
    else {
        return fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    };
    let mut text = String::new();
    if !dns.searches.is_empty() {
        text.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    for server in &dns.servers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    if !dns.options.is_empty() {
        text.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    text
}

fn hosts_file(ip: &str, hostname: &str) -> String {
    let mut text = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if !ip.is_empty() {
        text.push_str(&format!("{ip}\t{hostname}\n"));
    }
    text
}
