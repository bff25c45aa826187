//! The default policy an API server creates at start, as upstream's (`kubectl get
//! clusterroles` shows the same roles with the same rules): `cluster-admin`, the aggregated
//! user-facing roles `admin`, `edit` and `view`, and the `system:` roles of the components,
//! with their bindings. Controller-specific roles (`system:controller:*`) are left out: our
//! controllers run under one identity.
//!
//! Every object carries the `kubernetes.io/bootstrapping: rbac-defaults` label and the
//! `rbac.authorization.kubernetes.io/autoupdate: "true"` annotation: the server re-creates
//! and reconciles what carries the annotation, and leaves alone what a user set to `false`.

mod cluster_roles;

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::aggregation::aggregate_all;
use super::authorize::Policy;
use super::escalation::RBAC_GROUP;

pub use cluster_roles::cluster_roles;

/// The label on every default object.
pub const BOOTSTRAPPING_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");

/// The annotation that lets the server reconcile a default object; `"false"` keeps a user's
/// changes.
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";

const KUBE_SYSTEM: &str = "kube-system";
const CONTROLLER_MANAGER: &str = "system:kube-controller-manager";
const SCHEDULER: &str = "system:kube-scheduler";

/// A rule under construction; lists are sorted when it is built, as upstream's builder does,
/// so the objects read the same as upstream's.
#[derive(Debug, Clone)]
struct Rule(PolicyRule);

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

fn sorted(items: &[&str]) -> Option<Vec<String>> {
    let mut items: Vec<String> = items.iter().map(|s| (*s).to_owned()).collect();
    items.sort();
    items.dedup();
    Some(items)
}

fn rule(verbs: &[&str]) -> Rule {
    Rule(PolicyRule {
        verbs: sorted(verbs).unwrap_or_default(),
        ..PolicyRule::default()
    })
}

impl Rule {
    fn groups(mut self, groups: &[&str]) -> Self {
        self.0.api_groups = sorted(groups);
        self
    }

    fn resources(mut self, resources: &[&str]) -> Self {
        self.0.resources = sorted(resources);
        self
    }

    fn names(mut self, names: &[&str]) -> Self {
        self.0.resource_names = sorted(names);
        self
    }

    fn urls(mut self, urls: &[&str]) -> Self {
        self.0.non_resource_urls = sorted(urls);
        self
    }
}

fn metadata(namespace: Option<&str>, name: &str, extra_labels: &[(&str, &str)]) -> ObjectMeta {
    let mut labels: BTreeMap<String, String> = extra_labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.insert(
        BOOTSTRAPPING_LABEL.0.to_owned(),
        BOOTSTRAPPING_LABEL.1.to_owned(),
    );
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels),
        annotations: Some([(AUTOUPDATE_ANNOTATION.to_owned(), "true".to_owned())].into()),
        ..ObjectMeta::default()
    }
}

fn rules(rules: Vec<Rule>) -> Option<Vec<PolicyRule>> {
    Some(rules.into_iter().map(|r| r.0).collect())
}

/// Who a binding names.
enum To<'a> {
    User(&'a str),
    Group(&'a str),
    ServiceAccount(&'a str, &'a str),
}

fn subjects(to: &[To]) -> Option<Vec<Subject>> {
    if to.is_empty() {
        return None;
    }
    let subject = |kind: &str, name: &str, namespace: Option<&str>| Subject {
        api_group: namespace.is_none().then(|| RBAC_GROUP.to_owned()),
        kind: kind.to_owned(),
        name: name.to_owned(),
        namespace: namespace.map(str::to_owned),
    };
    Some(
        to.iter()
            .map(|to| match to {
                To::User(name) => subject("User", name, None),
                To::Group(name) => subject("Group", name, None),
                To::ServiceAccount(namespace, name) => {
                    subject("ServiceAccount", name, Some(namespace))
                }
            })
            .collect(),
    )
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: RBAC_GROUP.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
    }
}

/// A ClusterRoleBinding named after the ClusterRole it binds, as all upstream's are.
fn cluster_binding(role: &str, to: &[To]) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: metadata(None, role, &[]),
        role_ref: role_ref("ClusterRole", role),
        subjects: subjects(to),
    }
}

/// The default ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<ClusterRoleBinding> {
    use To::{Group, ServiceAccount, User};
    vec![
        cluster_binding("cluster-admin", &[Group("system:masters")]),
        cluster_binding("system:monitoring", &[Group("system:monitoring")]),
        cluster_binding("system:discovery", &[Group("system:authenticated")]),
        cluster_binding("system:basic-user", &[Group("system:authenticated")]),
        cluster_binding(
            "system:public-info-viewer",
            &[
                Group("system:authenticated"),
                Group("system:unauthenticated"),
            ],
        ),
        cluster_binding("system:node-proxier", &[User("system:kube-proxy")]),
        cluster_binding(CONTROLLER_MANAGER, &[User(CONTROLLER_MANAGER)]),
        cluster_binding(
            "system:kube-dns",
            &[ServiceAccount(KUBE_SYSTEM, "kube-dns")],
        ),
        cluster_binding(SCHEDULER, &[User(SCHEDULER)]),
        cluster_binding("system:volume-scheduler", &[User(SCHEDULER)]),
        // No subjects: nodes are authorized by the Node authorizer upstream; the binding
        // exists so that an administrator can add `system:nodes` back.
        cluster_binding("system:node", &[]),
        cluster_binding(
            "system:service-account-issuer-discovery",
            &[Group("system:serviceaccounts")],
        ),
    ]
}

/// The default Roles, all in `kube-system`: reading the authentication ConfigMap that
/// delegating servers read, and the leader-election Leases of the controller manager and the
/// scheduler.
pub fn roles() -> Vec<Role> {
    let leases = || {
        rules(vec![
            rule(&["create", "get", "list", "update", "watch"])
                .groups(&["coordination.k8s.io"])
                .resources(&["leases"]),
            rule(&["create", "get", "list", "update", "watch"])
                .groups(&["coordination.k8s.io"])
                .resources(&["leasecandidates"]),
        ])
    };
    let role = |name: &str, rules| Role {
        metadata: metadata(Some(KUBE_SYSTEM), name, &[]),
        rules,
    };
    vec![
        role(
            "extension-apiserver-authentication-reader",
            rules(vec![
                rule(READ)
                    .groups(&[""])
                    .resources(&["configmaps"])
                    .names(&["extension-apiserver-authentication"]),
            ]),
        ),
        role("system::leader-locking-kube-controller-manager", leases()),
        role("system::leader-locking-kube-scheduler", leases()),
    ]
}

/// The bindings of [`roles`].
pub fn role_bindings() -> Vec<RoleBinding> {
    use To::{ServiceAccount, User};
    let binding = |name: &str, role: &str, to: &[To]| RoleBinding {
        metadata: metadata(Some(KUBE_SYSTEM), name, &[]),
        role_ref: role_ref("Role", role),
        subjects: subjects(to),
    };
    vec![
        binding(
            "system::extension-apiserver-authentication-reader",
            "extension-apiserver-authentication-reader",
            &[User(CONTROLLER_MANAGER), User(SCHEDULER)],
        ),
        binding(
            "system::leader-locking-kube-controller-manager",
            "system::leader-locking-kube-controller-manager",
            &[
                User(CONTROLLER_MANAGER),
                ServiceAccount(KUBE_SYSTEM, "kube-controller-manager"),
                ServiceAccount(KUBE_SYSTEM, "leader-election-controller"),
            ],
        ),
        binding(
            "system::leader-locking-kube-scheduler",
            "system::leader-locking-kube-scheduler",
            &[
                User(SCHEDULER),
                ServiceAccount(KUBE_SYSTEM, "kube-scheduler"),
            ],
        ),
    ]
}

/// The whole default policy with the aggregated roles filled in, as a fresh cluster has it
/// once the aggregation controller has run.
pub fn policy() -> Policy {
    let mut cluster_roles: BTreeMap<String, ClusterRole> = cluster_roles()
        .into_iter()
        .map(|r| (r.metadata.name.clone().unwrap_or_default(), r))
        .collect();
    // The default selectors are plain `matchLabels`; they always parse.
    let _ = aggregate_all(&mut cluster_roles);
    Policy::new(
        cluster_roles.into_values(),
        cluster_role_bindings(),
        roles(),
        role_bindings(),
    )
}

#[cfg(test)]
mod tests;
