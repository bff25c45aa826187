//! The node's Lease in `kube-node-lease`: the cheap heartbeat the node lifecycle controller
//! watches, renewed every quarter of its duration, as upstream's lease controller
//! (`component-helpers/apimachinery/lease`): ensure it exists (create on first sync), then
//! replace it from the last version written, so a renewal costs one request; on a conflict,
//! read it again.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::config::NodeConfig;

/// Attempts per renewal before giving up until the next interval (upstream's).
const MAX_UPDATE_RETRIES: usize = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(7);

/// The Lease as this renewal writes it: `base` (or a new one) held by the node, renewed `now`,
/// owned by the Node when it has no owner yet.
pub fn renewed(base: Option<&Lease>, config: &NodeConfig, node_uid: &str, now: Timestamp) -> Lease {
    let mut lease = base.cloned().unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            namespace: Some(crate::config::NODE_LEASE_NAMESPACE.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(config.name.clone()),
            lease_duration_seconds: Some(config.node_lease_duration_seconds),
            ..LeaseSpec::default()
        }),
    });
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.renew_time = Some(MicroTime(now));
    let owned = lease
        .metadata
        .owner_references
        .as_ref()
        .is_some_and(|owners| !owners.is_empty());
    if !owned && !node_uid.is_empty() {
        lease.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".to_owned(),
            kind: "Node".to_owned(),
            name: config.name.clone(),
            uid: node_uid.to_owned(),
            ..OwnerReference::default()
        }]);
    }
    lease
}

/// Keeps one node's Lease renewed.
#[derive(Debug)]
pub struct LeaseKeeper {
    api: Api<Lease>,
    config: NodeConfig,
    node_uid: String,
    /// What the last successful write returned: the base of the next renewal.
    latest: Option<Lease>,
}

impl LeaseKeeper {
    pub fn new(client: kube::Client, config: NodeConfig, node: &Node) -> Self {
        Self {
            api: Api::namespaced(client, crate::config::NODE_LEASE_NAMESPACE),
            node_uid: node.metadata.uid.clone().unwrap_or_default(),
            config,
            latest: None,
        }
    }

    /// Renews forever, every quarter of the lease duration (with upstream's 4% jitter).
    pub async fn run(mut self) {
        loop {
            self.sync().await;
            tokio::time::sleep(crate::jittered(self.config.lease_renew_interval(), 0.04)).await;
        }
    }

    /// One renewal: upstream's `sync`.
    pub async fn sync(&mut self) {
        if let Some(latest) = self.latest.clone() {
            match self.retry_update(latest).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::info!(node = %self.config.name, %error, "failed to update the lease from its last version, reading it again");
                }
            }
        }
        let (lease, created) = self.ensure().await;
        self.latest = Some(lease.clone());
        if !created && let Err(error) = self.retry_update(lease).await {
            tracing::warn!(node = %self.config.name, %error, "will retry updating the lease");
        }
    }

    /// Reads the Lease, creating it when missing; retried with back-off until it works.
    async fn ensure(&mut self) -> (Lease, bool) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.try_ensure().await {
                Ok(found) => return found,
                Err(error) => {
                    tracing::warn!(node = %self.config.name, %error, retry_in = ?backoff, "failed to ensure the node lease exists");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn try_ensure(&self) -> Result<(Lease, bool), kube::Error> {
        if let Some(lease) = self.api.get_opt(&self.config.name).await? {
            return Ok((lease, false));
        }
        let lease = renewed(None, &self.config, &self.node_uid, Timestamp::now());
        let created = self.api.create(&PostParams::default(), &lease).await?;
        Ok((created, true))
    }

    async fn retry_update(&mut self, mut base: Lease) -> Result<(), kube::Error> {
        let mut last_error = None;
        for _ in 0..MAX_UPDATE_RETRIES {
            let lease = renewed(Some(&base), &self.config, &self.node_uid, Timestamp::now());
            match self
                .api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await
            {
                Ok(written) => {
                    self.latest = Some(written);
                    return Ok(());
                }
                Err(error) => {
                    tracing::debug!(node = %self.config.name, %error, "failed to update the lease");
                    if matches!(&error, kube::Error::Api(status) if status.code == 409) {
                        base = self.ensure().await.0;
                    }
                    last_error = Some(error);
                }
            }
        }
        match last_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn config() -> NodeConfig {
        NodeConfig::new("node-1", IpAddr::from([10, 0, 0, 7]), "/x")
    }

    #[test]
    fn a_new_lease_is_held_by_and_owned_by_the_node() {
        let now = Timestamp::from_microsecond(1_700_000_000_123_456).unwrap();
        let lease = renewed(None, &config(), "uid-1", now);
        let value = serde_json::to_value(&lease).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": "node-1",
                    "namespace": "kube-node-lease",
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "uid-1"}
                    ]
                },
                "spec": {
                    "holderIdentity": "node-1",
                    "leaseDurationSeconds": 40,
                    "renewTime": "2023-11-14T22:13:20.123456Z"
                }
            })
        );
    }

    #[test]
    fn a_renewal_moves_only_the_renew_time() {
        let first = renewed(None, &config(), "uid-1", Timestamp::from_second(1).unwrap());
        let mut stored = first.clone();
        stored.metadata.resource_version = Some("42".into());
        stored.metadata.owner_references = Some(vec![OwnerReference {
            uid: "someone-else".into(),
            ..OwnerReference::default()
        }]);
        let later = Timestamp::from_second(11).unwrap();
        let second = renewed(Some(&stored), &config(), "uid-1", later);
        assert_eq!(second.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(
            second.spec.as_ref().unwrap().renew_time,
            Some(MicroTime(later))
        );
        assert_eq!(
            second.metadata.owner_references.unwrap()[0].uid,
            "someone-else"
        );
        // Without the Node's uid (not registered), no owner.
        let orphan = renewed(None, &config(), "", later);
        assert_eq!(orphan.metadata.owner_references, None);
    }
}
