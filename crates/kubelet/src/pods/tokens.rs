//! ServiceAccount tokens for `serviceAccountToken` projections, as upstream's kubelet manages
//! them: requested from the API server (TokenRequest) bound to the pod, kept per pod,
//! audience and lifetime, and requested again once 80% of the lifetime (or a day) has passed,
//! so the file in the volume is renewed in place long before the token expires.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, PostParams};

/// A token is renewed at the latest after this long, however long it lives.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    fetched: Instant,
    lifetime: Duration,
}

impl Cached {
    fn fresh(&self) -> bool {
        let age = self.fetched.elapsed();
        age < self.lifetime.mul_f64(0.8) && age < MAX_AGE
    }
}

/// The tokens of the node's pods: (pod UID, audience, lifetime) → token.
#[derive(Debug, Default)]
pub struct Tokens(Mutex<HashMap<(String, String, i64), Cached>>);

impl Tokens {
    /// The pod's token for `audience` (empty: the API server's) and `expiration_seconds`.
    pub async fn get(
        &self,
        client: &kube::Client,
        pod: &Pod,
        audience: &str,
        expiration_seconds: i64,
    ) -> Result<String, String> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = (uid.clone(), audience.to_string(), expiration_seconds);
        if let Ok(cache) = self.0.lock()
            && let Some(cached) = cache.get(&key).filter(|c| c.fresh())
        {
            return Ok(cached.token.clone());
        }
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let account = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.as_deref())
            .filter(|n| !n.is_empty())
            .unwrap_or("default");
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: if audience.is_empty() {
                    Vec::new()
                } else {
                    vec![audience.to_string()]
                },
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: Some(uid),
                }),
            },
            ..Default::default()
        };
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        let answer: TokenRequest = accounts
            .create_subresource("token", account, &PostParams::default(), &request)
            .await
            .map_err(|e| format!("requesting a token of service account {account:?}: {e}"))?;
        let token = answer.status.map(|s| s.token).unwrap_or_default();
        if let Ok(mut cache) = self.0.lock() {
            cache.insert(
                key,
                Cached {
                    token: token.clone(),
                    fetched: Instant::now(),
                    lifetime: Duration::from_secs(u64::try_from(expiration_seconds).unwrap_or(0)),
                },
            );
        }
        Ok(token)
    }

    /// Drops a pod's tokens once it is gone.
    pub fn forget(&self, uid: &str) {
        if let Ok(mut cache) = self.0.lock() {
            cache.retain(|(pod, _, _), _| pod != uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_at_eighty_percent_of_their_life() {
        let cached = |age: u64, lifetime: u64| Cached {
            token: String::new(),
            fetched: Instant::now()
                .checked_sub(Duration::from_secs(age))
                .unwrap_or_else(Instant::now),
            lifetime: Duration::from_secs(lifetime),
        };
        assert!(cached(0, 3607).fresh());
        assert!(cached(2800, 3607).fresh());
        assert!(!cached(2900, 3607).fresh());
        assert!(!cached(25 * 3600, 30 * 24 * 3600).fresh(), "a day at most");
    }
}
