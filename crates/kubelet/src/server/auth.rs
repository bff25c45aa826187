//! Who may use the kubelet's API, decided as upstream's kubelet does in its webhook mode: a
//! client certificate of the cluster CA names the user and groups; without one, a bearer token
//! is checked by a TokenReview; then the API server says, by a SubjectAccessReview, whether
//! that user may `<verb>` the subresource of this Node the path stands for (`nodes/metrics`,
//! `nodes/log`, `nodes/proxy`, ...). Members of `system:masters` skip the review (the API
//! server would allow them anyway). Answers are cached as upstream's defaults: allowed 5
//! minutes, denied 30 seconds, token reviews 2 minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::Method;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

const ALLOWED_TTL: Duration = Duration::from_secs(300);
const DENIED_TTL: Duration = Duration::from_secs(30);
const TOKEN_TTL: Duration = Duration::from_secs(120);

/// The group whose members skip the review.
const MASTERS: &str = "system:masters";

/// An authenticated user of the kubelet's API.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

/// The API verb and the Node subresource a request stands for, by upstream's rules: the
/// verb from the HTTP method, the subresource from the path's first segment.
pub fn attributes(method: &Method, path: &str) -> (&'static str, &'static str) {
    let verb = match *method {
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "get",
    };
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let subresource = match first {
        "stats" => "stats",
        "metrics" => "metrics",
        "logs" => "log",
        "checkpoint" => "checkpoint",
        _ => "proxy",
    };
    (verb, subresource)
}

type Decisions = HashMap<(User, &'static str, &'static str), (bool, Instant)>;

/// The kubelet's authenticator and authorizer, asking the API server.
pub struct Auth {
    client: kube::Client,
    node: String,
    decisions: Mutex<Decisions>,
    tokens: Mutex<HashMap<String, (Option<User>, Instant)>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Auth {
    pub fn new(client: kube::Client, node: &str) -> Self {
        Auth {
            client,
            node: node.to_string(),
            decisions: Mutex::default(),
            tokens: Mutex::default(),
        }
    }

    /// The user of a request: its verified certificate's, else its bearer token's.
    pub async fn authenticate(
        &self,
        certificate: Option<User>,
        bearer: Option<&str>,
    ) -> Option<User> {
        if certificate.is_some() {
            return certificate;
        }
        let token = bearer?;
        if let Ok(tokens) = self.tokens.lock()
            && let Some((user, at)) = tokens.get(token)
            && at.elapsed() < TOKEN_TTL
        {
            return user.clone();
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let answer = match api.create(&PostParams::default(), &review).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::debug!(error = %e, "kubelet API: a token review failed");
                return None;
            }
        };
        let user = answer
            .status
            .filter(|s| s.authenticated == Some(true))
            .and_then(|s| s.user)
            .map(|u| User {
                name: u.username.unwrap_or_default(),
                groups: u.groups.unwrap_or_default(),
            });
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.retain(|_, (_, at)| at.elapsed() < TOKEN_TTL);
            tokens.insert(token.to_string(), (user.clone(), Instant::now()));
        }
        user
    }

    /// Whether `user` may `verb` `nodes/<subresource>` of this node.
    pub async fn authorize(
        &self,
        user: &User,
        verb: &'static str,
        subresource: &'static str,
    ) -> bool {
        if user.groups.iter().any(|g| g == MASTERS) {
            return true;
        }
        let key = (user.clone(), verb, subresource);
        if let Ok(decisions) = self.decisions.lock()
            && let Some((allowed, at)) = decisions.get(&key)
            && at.elapsed() < if *allowed { ALLOWED_TTL } else { DENIED_TTL }
        {
            return *allowed;
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.name.clone()),
                groups: Some(user.groups.clone()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.to_string()),
                    version: Some("v1".to_string()),
                    resource: Some("nodes".to_string()),
                    subresource: Some(subresource.to_string()),
                    name: Some(self.node.clone()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let allowed = match api.create(&PostParams::default(), &review).await {
            Ok(answer) => answer.status.is_some_and(|s| s.allowed),
            Err(e) => {
                tracing::debug!(error = %e, "kubelet API: an access review failed");
                return false;
            }
        };
        if let Ok(mut decisions) = self.decisions.lock() {
            decisions.insert(key, (allowed, Instant::now()));
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_methods_map_to_upstreams_attributes() {
        assert_eq!(attributes(&Method::GET, "/metrics"), ("get", "metrics"));
        assert_eq!(
            attributes(&Method::GET, "/metrics/cadvisor"),
            ("get", "metrics")
        );
        assert_eq!(attributes(&Method::GET, "/stats/summary"), ("get", "stats"));
        assert_eq!(attributes(&Method::GET, "/logs/"), ("get", "log"));
        assert_eq!(
            attributes(&Method::POST, "/exec/ns/pod/c"),
            ("create", "proxy")
        );
        assert_eq!(
            attributes(&Method::GET, "/containerLogs/ns/pod/c"),
            ("get", "proxy")
        );
        assert_eq!(attributes(&Method::GET, "/healthz"), ("get", "proxy"));
    }
}
