//! Registering the Node, as upstream's `registerWithAPIServer`: create it with its labels,
//! taints, pod CIDR and a first status; if it already exists (a restart), keep it and bring its
//! kubelet-owned labels and annotation up to date. Retried with back-off until the API server
//! answers.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeSpec, NodeStatus};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::config::NodeConfig;
use crate::{Error, go_arch};

pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_OS: &str = "kubernetes.io/os";
pub const LABEL_ARCH: &str = "kubernetes.io/arch";
pub const LABEL_BETA_OS: &str = "beta.kubernetes.io/os";
pub const LABEL_BETA_ARCH: &str = "beta.kubernetes.io/arch";
pub const LABEL_CONTROL_PLANE: &str = "node-role.kubernetes.io/control-plane";
pub const LABEL_MASTER: &str = "node-role.kubernetes.io/master";
/// Upstream's kubelet sets it when the attach/detach controller manages the node's volumes
/// (its default).
pub const ANNOTATION_ATTACH_DETACH: &str = "volumes.kubernetes.io/controller-managed-attach-detach";

/// The first pause between attempts; it doubles up to [`MAX_BACKOFF`] (upstream's numbers).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(7);

/// The labels upstream's kubelet owns (`updateDefaultLabels`): on a restart it sets them back.
fn default_labels(config: &NodeConfig) -> BTreeMap<String, String> {
    [
        (LABEL_HOSTNAME, config.name.as_str()),
        (LABEL_OS, "linux"),
        (LABEL_ARCH, go_arch()),
        (LABEL_BETA_OS, "linux"),
        (LABEL_BETA_ARCH, go_arch()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Every label the node agent sets: the defaults, a server's role labels (k3s's), then the
/// configured ones, which win (upstream: `--node-labels` override the defaults).
pub fn node_labels(config: &NodeConfig) -> BTreeMap<String, String> {
    let mut labels = default_labels(config);
    if config.control_plane {
        for role in [LABEL_CONTROL_PLANE, LABEL_MASTER] {
            labels.insert(role.to_owned(), "true".to_owned());
        }
    }
    labels.extend(config.labels.clone());
    labels
}

/// The Node to create (upstream's `initialNode`), with its first status.
pub fn initial_node(config: &NodeConfig, status: NodeStatus) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(node_labels(config)),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_ATTACH_DETACH.to_owned(),
                "true".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: (!config.taints.is_empty()).then(|| config.taints.clone()),
            pod_cidr: config.pod_cidr.clone(),
            pod_cidrs: config.pod_cidr.clone().map(|cidr| vec![cidr]),
            ..NodeSpec::default()
        }),
        status: Some(status),
    }
}

/// The merge patch that reconciles an existing Node with this agent (`None` when nothing is
/// to change): upstream's default labels and attach/detach annotation, k3s's role and
/// `--node-label` labels (set again on every start; taints are only set at creation, as
/// upstream and k3s do), and the pod CIDR when the Node has none yet (it cannot change once
/// set).
pub fn reconcile_patch(existing: &Node, config: &NodeConfig) -> Option<Value> {
    let empty = BTreeMap::new();
    let labels = existing.metadata.labels.as_ref().unwrap_or(&empty);
    let annotations = existing.metadata.annotations.as_ref().unwrap_or(&empty);
    let label_changes: BTreeMap<String, String> = node_labels(config)
        .into_iter()
        .filter(|(k, v)| labels.get(k) != Some(v))
        .collect();
    let mut patch = json!({});
    if !label_changes.is_empty() {
        patch["metadata"]["labels"] = json!(label_changes);
    }
    if annotations
        .get(ANNOTATION_ATTACH_DETACH)
        .map(String::as_str)
        != Some("true")
    {
        patch["metadata"]["annotations"] = json!({ANNOTATION_ATTACH_DETACH: "true"});
    }
    let has_cidr = existing
        .spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .is_some_and(|c| !c.is_empty());
    if let Some(cidr) = config.pod_cidr.as_ref().filter(|_| !has_cidr) {
        patch["spec"] = json!({"podCIDR": cidr, "podCIDRs": [cidr]});
    }
    (patch != json!({})).then_some(patch)
}

/// Whether an API answer means trying again may succeed: the API server is not there yet,
/// overloaded, or not ready to authorize us. Anything else (an invalid Node, say) is final.
fn retryable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => {
            status.code >= 500 || matches!(status.code, 401 | 403 | 409 | 429)
        }
        _ => true,
    }
}

/// Registers the Node, retrying with back-off while the API server does not answer (or answers
/// that it cannot yet), and returns it as stored.
pub async fn register(
    api: &Api<Node>,
    config: &NodeConfig,
    status: NodeStatus,
) -> Result<Node, Error> {
    let node = initial_node(config, status);
    let mut backoff = FIRST_BACKOFF;
    loop {
        match try_register(api, config, &node).await {
            Ok(node) => return Ok(node),
            Err(source) if retryable(&source) => {
                tracing::warn!(node = %config.name, error = %source, retry_in = ?backoff, "unable to register the node");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(source) => {
                return Err(Error::Register {
                    node: config.name.clone(),
                    source,
                });
            }
        }
    }
}

async fn try_register(
    api: &Api<Node>,
    config: &NodeConfig,
    node: &Node,
) -> Result<Node, kube::Error> {
    match api.create(&PostParams::default(), node).await {
        Ok(created) => {
            tracing::info!(node = %config.name, "node registered");
            return Ok(created);
        }
        Err(kube::Error::Api(status)) if status.code == 409 && status.reason == "AlreadyExists" => {
        }
        Err(e) => return Err(e),
    }
    let existing = api.get(&config.name).await?;
    tracing::info!(node = %config.name, "node was previously registered");
    match reconcile_patch(&existing, config) {
        Some(patch) => {
            api.patch(&config.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
        None => Ok(existing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn config() -> NodeConfig {
        let mut config = NodeConfig::new("node-1", IpAddr::from([10, 0, 0, 7]), "/x");
        config.control_plane = true;
        config.labels.insert("team".into(), "rowing".into());
        config.labels.insert(LABEL_MASTER.into(), "false".into());
        config.taints = crate::parse_taints(&["dedicated=infra:NoSchedule"]).unwrap();
        config.pod_cidr = Some("10.42.0.0/24".into());
        config
    }

    #[test]
    fn initial_node_has_upstreams_labels_k3s_roles_taints_and_cidr() {
        let node = initial_node(&config(), NodeStatus::default());
        let labels = node.metadata.labels.unwrap();
        let arch = go_arch();
        for (key, value) in [
            (LABEL_HOSTNAME, "node-1"),
            (LABEL_OS, "linux"),
            (LABEL_ARCH, arch),
            (LABEL_BETA_OS, "linux"),
            (LABEL_BETA_ARCH, arch),
            (LABEL_CONTROL_PLANE, "true"),
            // A configured label overrides what the agent would set.
            (LABEL_MASTER, "false"),
            ("team", "rowing"),
        ] {
            assert_eq!(labels.get(key).map(String::as_str), Some(value), "{key}");
        }
        assert_eq!(labels.len(), 8);
        let spec = node.spec.unwrap();
        assert_eq!(spec.taints.unwrap()[0].key, "dedicated");
        assert_eq!(spec.pod_cidr.as_deref(), Some("10.42.0.0/24"));
        assert_eq!(spec.pod_cidrs, Some(vec!["10.42.0.0/24".to_owned()]));
        assert_eq!(
            node.metadata.annotations.unwrap()[ANNOTATION_ATTACH_DETACH],
            "true"
        );

        let worker = NodeConfig::new("w", IpAddr::from([10, 0, 0, 8]), "/x");
        let node = initial_node(&worker, NodeStatus::default());
        let labels = node.metadata.labels.unwrap();
        assert!(!labels.contains_key(LABEL_CONTROL_PLANE));
        assert_eq!(labels.len(), 5);
        assert_eq!(node.spec.unwrap().taints, None);
    }

    #[test]
    fn a_restart_restores_owned_labels_and_leaves_the_rest() {
        let config = config();
        let mut existing = initial_node(&config, NodeStatus::default());
        assert_eq!(reconcile_patch(&existing, &config), None);

        let labels = existing.metadata.labels.as_mut().unwrap();
        labels.insert(LABEL_OS.into(), "windows".into());
        labels.remove("team");
        labels.insert("added-by-user".into(), "yes".into());
        existing.metadata.annotations = None;
        existing.spec = None;
        let patch = reconcile_patch(&existing, &config).unwrap();
        assert_eq!(
            patch,
            json!({
                "metadata": {
                    "labels": {LABEL_OS: "linux", "team": "rowing"},
                    "annotations": {ANNOTATION_ATTACH_DETACH: "true"},
                },
                "spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"]},
            })
        );
    }

    #[test]
    fn only_answers_that_may_change_are_retried() {
        let api = |code: u16| {
            kube::Error::Api(
                kube::core::Status::failure("x", "Reason")
                    .with_code(code)
                    .boxed(),
            )
        };
        for code in [500, 503, 429, 403, 401, 409] {
            assert!(retryable(&api(code)), "{code}");
        }
        for code in [400, 404, 422] {
            assert!(!retryable(&api(code)), "{code}");
        }
    }
}
