//! The RBAC authorizer: `system:masters` may do anything (upstream's privileged-group
//! short-circuit); everyone else is judged by `cox_api::rbac` against a snapshot of the
//! Roles, ClusterRoles and their bindings, taken from the watch caches and rebuilt only when
//! one of them has changed. Aggregated ClusterRoles get their rules in the snapshot, whether
//! or not the aggregation controller has written them back yet.

use std::sync::{Arc, RwLock};

use cox_api::rbac::{self, Attributes, Policy, UserInfo};
use cox_api::status::ApiError;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::authn::User;
use crate::request::ResourceRequest;
use crate::server::Authorizer;
use crate::watch_cache::{Cache, WatchCaches};

/// The group whose members skip RBAC.
const MASTERS: &str = "system:masters";

/// RBAC over the watch caches of the four kinds.
#[derive(Debug)]
pub struct Rbac {
    /// ClusterRoles, ClusterRoleBindings, Roles, RoleBindings.
    caches: [Arc<Cache>; 4],
    /// The snapshot and the caches' revisions it was taken at.
    snapshot: RwLock<(Vec<i64>, Arc<Policy>)>,
}

impl Rbac {
    /// `None` if the RBAC resources are not registered (they always are).
    pub fn new(caches: &WatchCaches) -> Option<Self> {
        let start = |plural: &str| {
            let resource = cox_api::registry::find("rbac.authorization.k8s.io", "v1", plural)?;
            caches.start(&resource.key(None, ""))
        };
        Some(Rbac {
            caches: [
                start("clusterroles")?,
                start("clusterrolebindings")?,
                start("roles")?,
                start("rolebindings")?,
            ],
            snapshot: RwLock::new((Vec::new(), Arc::new(Policy::default()))),
        })
    }

    /// The policy as the caches hold it now.
    pub fn policy(&self) -> Arc<Policy> {
        let revisions: Vec<i64> = self.caches.iter().map(|c| c.revision()).collect();
        if let Ok(snapshot) = self.snapshot.read()
            && snapshot.0 == revisions
        {
            return Arc::clone(&snapshot.1);
        }
        let mut policy = Policy::new(
            objects::<ClusterRole>(&self.caches[0]),
            objects::<ClusterRoleBinding>(&self.caches[1]),
            objects::<Role>(&self.caches[2]),
            objects::<RoleBinding>(&self.caches[3]),
        );
        let (_, errors) = rbac::aggregate_all(&mut policy.cluster_roles);
        for error in errors {
            tracing::debug!(%error, "a ClusterRole's aggregation rule");
        }
        let policy = Arc::new(policy);
        if let Ok(mut snapshot) = self.snapshot.write() {
            *snapshot = (revisions, Arc::clone(&policy));
        }
        policy
    }
}

/// Every object of a cache, as its k8s-openapi type (objects that do not parse are skipped).
fn objects<T: DeserializeOwned>(cache: &Cache) -> Vec<T> {
    cache
        .list("")
        .0
        .iter()
        .filter_map(|cached| serde_json::from_slice(&cached.json).ok())
        .collect()
}

/// The user as RBAC sees it.
pub fn user_info(user: &User) -> UserInfo {
    UserInfo {
        name: user.name.clone(),
        groups: user.groups.clone(),
    }
}

/// A resource request as RBAC sees it.
pub fn attributes(user: &User, request: &ResourceRequest) -> Attributes {
    let mut attributes = Attributes::resource(
        user_info(user),
        request.verb.clone(),
        request.group.clone(),
        request.resource.clone(),
    )
    .named(request.name.clone())
    .subresource(request.subresource.clone());
    if let Some(namespace) = &request.namespace {
        attributes = attributes.in_namespace(namespace.clone());
    }
    attributes
}

impl Authorizer for Rbac {
    fn allowed(&self, user: &User, request: &ResourceRequest) -> bool {
        user.in_group(MASTERS)
            || self
                .policy()
                .authorize(&attributes(user, request))
                .is_allowed()
    }

    fn rules_review(&self, user: &User, namespace: &str) -> serde_json::Value {
        let (rules, missing) = self
            .policy()
            .rules_for(&user_info(user), Some(namespace).filter(|n| !n.is_empty()));
        let mut resource_rules = Vec::new();
        let mut non_resource_rules = Vec::new();
        for rule in rules {
            match rule.non_resource_urls.as_ref().filter(|u| !u.is_empty()) {
                Some(urls) => {
                    non_resource_rules.push(json!({"verbs": rule.verbs, "nonResourceURLs": urls}))
                }
                None => {
                    let mut entry = json!({
                        "verbs": rule.verbs,
                        "apiGroups": rule.api_groups.clone().unwrap_or_default(),
                        "resources": rule.resources.clone().unwrap_or_default(),
                    });
                    if let Some(names) = rule.resource_names.as_ref().filter(|n| !n.is_empty()) {
                        entry["resourceNames"] = json!(names);
                    }
                    resource_rules.push(entry);
                }
            }
        }
        let mut status = json!({
            "resourceRules": resource_rules,
            "nonResourceRules": non_resource_rules,
            "incomplete": !missing.is_empty(),
        });
        if !missing.is_empty() {
            status["evaluationError"] = json!(missing.join(", "));
        }
        status
    }

    fn check_rbac_write(
        &self,
        user: &User,
        plural: &str,
        object: &serde_json::Value,
        old: Option<&serde_json::Value>,
    ) -> Result<(), ApiError> {
        if user.in_group(MASTERS) {
            return Ok(());
        }
        let policy = self.policy();
        let who = user_info(user);
        let bad = |e: serde_json::Error| ApiError::bad_request(e.to_string());
        match plural {
            "clusterroles" => {
                let role: ClusterRole = serde_json::from_value(object.clone()).map_err(bad)?;
                let old: Option<ClusterRole> =
                    old.and_then(|o| serde_json::from_value(o.clone()).ok());
                policy.check_cluster_role_write(&who, &role, old.as_ref())
            }
            "roles" => {
                let role: Role = serde_json::from_value(object.clone()).map_err(bad)?;
                let old: Option<Role> = old.and_then(|o| serde_json::from_value(o.clone()).ok());
                let namespace = role.metadata.namespace.clone().unwrap_or_default();
                policy.check_role_write(&who, &namespace, &role, old.as_ref())
            }
            "clusterrolebindings" => {
                let binding: ClusterRoleBinding =
                    serde_json::from_value(object.clone()).map_err(bad)?;
                let name = binding.metadata.name.clone().unwrap_or_default();
                policy.check_binding_write(&who, plural, None, &name, &binding.role_ref)
            }
            "rolebindings" => {
                let binding: RoleBinding = serde_json::from_value(object.clone()).map_err(bad)?;
                let name = binding.metadata.name.clone().unwrap_or_default();
                let namespace = binding.metadata.namespace.clone();
                policy.check_binding_write(
                    &who,
                    plural,
                    namespace.as_deref(),
                    &name,
                    &binding.role_ref,
                )
            }
            _ => Ok(()),
        }
    }

    fn allowed_path(&self, user: &User, verb: &str, path: &str) -> bool {
        user.in_group(MASTERS)
            || self
                .policy()
                .authorize(&Attributes::non_resource(user_info(user), verb, path))
                .is_allowed()
    }
}
