//! The RBAC authorizer: `system:masters` may do anything (upstream's privileged-group
//! short-circuit); everyone else is judged by `cox_api::rbac` against a snapshot of the
//! Roles, ClusterRoles and their bindings, taken from the watch caches and rebuilt only when
//! one of them has changed. Aggregated ClusterRoles get their rules in the snapshot, whether
//! or not the aggregation controller has written them back yet.

use std::sync::{Arc, RwLock};

use cox_api::rbac::{self, Attributes, Policy, UserInfo};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;

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
        user.in_group(MASTERS) || self.policy().authorize(&attributes(user, request)).is_allowed()
    }

    fn allowed_path(&self, user: &User, verb: &str, path: &str) -> bool {
        user.in_group(MASTERS)
            || self
                .policy()
                .authorize(&Attributes::non_resource(user_info(user), verb, path))
                .is_allowed()
    }
}
