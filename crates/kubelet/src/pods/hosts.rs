//! The pod's `/etc/hosts`, which the kubelet writes and mounts into every container (as
//! upstream's `etc-hosts` file): the localhost entries, the pod's own address under its
//! hostname (and its fully qualified name when it has a subdomain), then the pod's
//! `hostAliases`. Host-network pods get the node's file plus their aliases.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

const HEADER: &str = "# Kubernetes-managed hosts file.\n";
const LOCAL: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n";

/// The file's contents for `pod` at `pod_ip`.
pub fn contents(pod: &Pod, pod_ip: Option<&str>, cluster_domain: &str, node_hosts: &str) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut out = String::new();
    if spec.host_network.unwrap_or(false) {
        out.push_str(node_hosts);
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    } else {
        out.push_str(HEADER);
        out.push_str(LOCAL);
        let name = pod.metadata.name.clone().unwrap_or_default();
        let hostname = spec.hostname.clone().unwrap_or(name);
        if let Some(ip) = pod_ip.filter(|ip| !ip.is_empty()) {
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
            match spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
                Some(subdomain) => {
                    let _ = writeln!(
                        out,
                        "{ip}\t{hostname}.{subdomain}.{namespace}.svc.{cluster_domain}\t{hostname}"
                    );
                }
                None => {
                    let _ = writeln!(out, "{ip}\t{hostname}");
                }
            }
        }
    }
    let aliases = spec.host_aliases.unwrap_or_default();
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for alias in aliases {
            let names = alias.hostnames.unwrap_or_default();
            if names.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{}\t{}", alias.ip, names.join("\t"));
        }
    }
    out
}

/// Writes the file under the pod's directory (atomically) and returns its path.
pub fn write(pods_root: &Path, pod: &Pod, contents: &str) -> std::io::Result<PathBuf> {
    let uid = pod.metadata.uid.as_deref().unwrap_or("unknown");
    let dir = pods_root.join(uid);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("etc-hosts");
    let temporary = dir.join(".etc-hosts.tmp");
    std::fs::write(&temporary, contents)?;
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{HostAlias, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(spec: PodSpec) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        }
    }

    #[test]
    fn the_pod_is_listed_under_its_hostname_and_fqdn_then_its_aliases() {
        let pod = pod(PodSpec {
            hostname: Some("db".into()),
            subdomain: Some("backend".into()),
            host_aliases: Some(vec![HostAlias {
                ip: "10.1.2.3".into(),
                hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
            }]),
            ..Default::default()
        });
        let text = contents(&pod, Some("10.42.0.9"), "cluster.local", "");
        assert!(text.starts_with(HEADER), "{text}");
        assert!(text.contains("127.0.0.1\tlocalhost\n"), "{text}");
        assert!(
            text.contains("10.42.0.9\tdb.backend.shop.svc.cluster.local\tdb\n"),
            "{text}"
        );
        assert!(
            text.ends_with("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"),
            "{text}"
        );
    }

    #[test]
    fn host_network_pods_keep_the_nodes_file() {
        let pod = pod(PodSpec {
            host_network: Some(true),
            ..Default::default()
        });
        let text = contents(&pod, Some("192.0.2.1"), "cluster.local", "127.0.0.1 node\n");
        assert_eq!(text, "127.0.0.1 node\n");
    }
}
