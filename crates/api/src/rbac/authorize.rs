//! The RBAC authorizer over a snapshot of the four kinds. ClusterRoleBindings grant their role
//! everywhere; RoleBindings grant theirs only to requests in their own namespace, also when
//! they reference a ClusterRole (which is how one ClusterRole is reused per namespace).
//! Grants only add up: there is no deny rule, so a binding whose role is missing is skipped
//! (and named in the reason of a refusal, as upstream does).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::ControlFlow;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::attributes::{Attributes, UserInfo};
use super::rules::rule_allows;

/// The prefix of service accounts' user names: `system:serviceaccount:<namespace>:<name>`.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// The user name a ServiceAccount authenticates as.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
}

/// The verdict. RBAC never forbids by itself: `Deny` is upstream's "no opinion", so another
/// authorizer of a chain may still allow; the reason is empty unless bindings pointed at
/// roles that could not be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to Group "z"`.
    Allow {
        reason: String,
    },
    Deny {
        reason: String,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }

    pub fn reason(&self) -> &str {
        match self {
            Self::Allow { reason } | Self::Deny { reason } => reason,
        }
    }
}

/// A snapshot of every Role, ClusterRole and binding, keyed as the store keys them.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub cluster_roles: BTreeMap<String, ClusterRole>,
    pub cluster_role_bindings: BTreeMap<String, ClusterRoleBinding>,
    /// Keyed by (namespace, name).
    pub roles: BTreeMap<(String, String), Role>,
    /// Keyed by (namespace, name).
    pub role_bindings: BTreeMap<(String, String), RoleBinding>,
}

fn name_of(metadata: &ObjectMeta) -> String {
    metadata.name.clone().unwrap_or_default()
}

fn key_of(metadata: &ObjectMeta) -> (String, String) {
    (
        metadata.namespace.clone().unwrap_or_default(),
        name_of(metadata),
    )
}

/// Where a rule came from, for the reason of an allowed request.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    ClusterRoleBinding(&'a ClusterRoleBinding, &'a Subject),
    RoleBinding(&'a RoleBinding, &'a Subject),
}

impl fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (binding, role_ref, namespace, subject) = match self {
            Self::ClusterRoleBinding(b, s) => {
                let label = format!("ClusterRoleBinding {:?}", name_of(&b.metadata));
                (label, &b.role_ref, String::new(), *s)
            }
            Self::RoleBinding(b, s) => {
                let (namespace, name) = key_of(&b.metadata);
                let label = format!("RoleBinding {:?}", format!("{name}/{namespace}"));
                (label, &b.role_ref, namespace, *s)
            }
        };
        write!(
            f,
            "{binding} of {} {:?} to {}",
            role_ref.kind,
            role_ref.name,
            describe_subject(subject, &namespace)
        )
    }
}

/// `User "alice"`, `Group "g"`, `ServiceAccount "name/namespace"` (the binding's namespace
/// when the subject has none).
fn describe_subject(subject: &Subject, binding_namespace: &str) -> String {
    if subject.kind == "ServiceAccount" {
        let namespace = subject
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(binding_namespace);
        format!(
            "{} {:?}",
            subject.kind,
            format!("{}/{namespace}", subject.name)
        )
    } else {
        format!("{} {:?}", subject.kind, subject.name)
    }
}

/// Whether `subject` of a binding in `binding_namespace` (`""` for a ClusterRoleBinding) is
/// `user`. A ServiceAccount subject without a namespace means one in the binding's.
pub fn subject_matches(user: &UserInfo, subject: &Subject, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.in_group(&subject.name),
        "ServiceAccount" => {
            let namespace = subject
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            !namespace.is_empty()
                && user
                    .name
                    .strip_prefix(SERVICE_ACCOUNT_PREFIX)
                    .and_then(|rest| rest.split_once(':'))
                    == Some((namespace, subject.name.as_str()))
        }
        _ => false,
    }
}

fn first_match<'a>(
    user: &UserInfo,
    subjects: &'a Option<Vec<Subject>>,
    namespace: &str,
) -> Option<&'a Subject> {
    subjects
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|s| subject_matches(user, s, namespace))
}

/// One step of a walk over a user's rules.
enum Visit<'a> {
    Rule(Source<'a>, &'a PolicyRule),
    /// A binding whose role could not be resolved.
    Missing(String),
}

impl Policy {
    /// A snapshot from lists of the four kinds.
    pub fn new(
        cluster_roles: impl IntoIterator<Item = ClusterRole>,
        cluster_role_bindings: impl IntoIterator<Item = ClusterRoleBinding>,
        roles: impl IntoIterator<Item = Role>,
        role_bindings: impl IntoIterator<Item = RoleBinding>,
    ) -> Self {
        let mut policy = Self::default();
        cluster_roles
            .into_iter()
            .for_each(|r| policy.insert_cluster_role(r));
        cluster_role_bindings
            .into_iter()
            .for_each(|b| policy.insert_cluster_role_binding(b));
        roles.into_iter().for_each(|r| policy.insert_role(r));
        role_bindings
            .into_iter()
            .for_each(|b| policy.insert_role_binding(b));
        policy
    }

    /// Adds or replaces a ClusterRole (by name).
    pub fn insert_cluster_role(&mut self, role: ClusterRole) {
        self.cluster_roles.insert(name_of(&role.metadata), role);
    }

    pub fn insert_cluster_role_binding(&mut self, binding: ClusterRoleBinding) {
        self.cluster_role_bindings
            .insert(name_of(&binding.metadata), binding);
    }

    /// Adds or replaces a Role (by namespace and name).
    pub fn insert_role(&mut self, role: Role) {
        self.roles.insert(key_of(&role.metadata), role);
    }

    pub fn insert_role_binding(&mut self, binding: RoleBinding) {
        self.role_bindings
            .insert(key_of(&binding.metadata), binding);
    }

    /// Judges a request.
    pub fn authorize(&self, attributes: &Attributes) -> Decision {
        let mut missing = Vec::new();
        let mut allowed_by = None;
        self.visit(
            &attributes.user,
            attributes.namespace(),
            |visit| match visit {
                Visit::Rule(source, rule) if rule_allows(attributes, rule) => {
                    allowed_by = Some(source.to_string());
                    ControlFlow::Break(())
                }
                Visit::Rule(..) => ControlFlow::Continue(()),
                Visit::Missing(error) => {
                    missing.push(error);
                    ControlFlow::Continue(())
                }
            },
        );
        match allowed_by {
            Some(source) => Decision::Allow {
                reason: format!("RBAC: allowed by {source}"),
            },
            None => Decision::Deny {
                reason: resolution_errors(&missing)
                    .map(|e| format!("RBAC: {e}"))
                    .unwrap_or_default(),
            },
        }
    }

    /// Every rule that applies to `user` in `namespace` (`None`: the ClusterRoleBindings'
    /// only), and the bindings whose role is missing. This is what a user "holds" when the
    /// escalation check asks.
    pub fn rules_for(
        &self,
        user: &UserInfo,
        namespace: Option<&str>,
    ) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let mut missing = Vec::new();
        self.visit(user, namespace, |visit| {
            match visit {
                Visit::Rule(_, rule) => rules.push(rule.clone()),
                Visit::Missing(error) => missing.push(error),
            }
            ControlFlow::Continue(())
        });
        (rules, missing)
    }

    /// The rules a role reference grants in `binding_namespace` (`""` for a
    /// ClusterRoleBinding), or why there are none.
    pub fn role_ref_rules(
        &self,
        role_ref: &RoleRef,
        binding_namespace: &str,
    ) -> Result<&[PolicyRule], String> {
        let rules = match role_ref.kind.as_str() {
            "ClusterRole" => self
                .cluster_roles
                .get(&role_ref.name)
                .map(|r| &r.rules)
                .ok_or_else(|| not_found("clusterrole", &role_ref.name))?,
            "Role" => self
                .roles
                .get(&(binding_namespace.to_owned(), role_ref.name.clone()))
                .filter(|_| !binding_namespace.is_empty())
                .map(|r| &r.rules)
                .ok_or_else(|| not_found("role", &role_ref.name))?,
            other => return Err(format!("unsupported role reference kind: {other:?}")),
        };
        Ok(rules.as_deref().unwrap_or_default())
    }

    /// Walks the rules granted to `user`: the ClusterRoleBindings' first, then the
    /// RoleBindings' of `namespace`, each in name order, until `visitor` breaks.
    fn visit<'a>(
        &'a self,
        user: &UserInfo,
        namespace: Option<&str>,
        mut visitor: impl FnMut(Visit<'a>) -> ControlFlow<()>,
    ) {
        for binding in self.cluster_role_bindings.values() {
            let Some(subject) = first_match(user, &binding.subjects, "") else {
                continue;
            };
            let source = Source::ClusterRoleBinding(binding, subject);
            if self
                .visit_role(&binding.role_ref, "", source, &mut visitor)
                .is_break()
            {
                return;
            }
        }
        let Some(namespace) = namespace.filter(|n| !n.is_empty()) else {
            return;
        };
        let in_namespace = self
            .role_bindings
            .range((namespace.to_owned(), String::new())..)
            .take_while(|((ns, _), _)| ns == namespace);
        for (_, binding) in in_namespace {
            let Some(subject) = first_match(user, &binding.subjects, namespace) else {
                continue;
            };
            let source = Source::RoleBinding(binding, subject);
            if self
                .visit_role(&binding.role_ref, namespace, source, &mut visitor)
                .is_break()
            {
                return;
            }
        }
    }

    fn visit_role<'a>(
        &'a self,
        role_ref: &RoleRef,
        namespace: &str,
        source: Source<'a>,
        visitor: &mut impl FnMut(Visit<'a>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        match self.role_ref_rules(role_ref, namespace) {
            Ok(rules) => rules
                .iter()
                .try_for_each(|rule| visitor(Visit::Rule(source, rule))),
            Err(error) => visitor(Visit::Missing(error)),
        }
    }
}

/// How upstream's listers report a missing role: `clusterrole.rbac.authorization.k8s.io "x"
/// not found`.
fn not_found(kind: &str, name: &str) -> String {
    format!("{kind}.rbac.authorization.k8s.io {name:?} not found")
}

/// Several errors as upstream's aggregate prints them: one alone, more in brackets.
pub(super) fn resolution_errors(errors: &[String]) -> Option<String> {
    match errors {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(format!("[{}]", many.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::rules::tests::{resource_rule, url_rule};

    fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: namespace.map(str::to_owned),
            ..ObjectMeta::default()
        }
    }

    fn subject(kind: &str, name: &str, namespace: Option<&str>) -> Subject {
        Subject {
            kind: kind.to_owned(),
            name: name.to_owned(),
            namespace: namespace.map(str::to_owned),
            api_group: (kind != "ServiceAccount").then(|| "rbac.authorization.k8s.io".to_owned()),
        }
    }

    fn role_ref(kind: &str, name: &str) -> RoleRef {
        RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
        }
    }

    fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
        ClusterRole {
            metadata: meta(None, name),
            rules: Some(rules),
            aggregation_rule: None,
        }
    }

    fn cluster_binding(name: &str, role: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
        ClusterRoleBinding {
            metadata: meta(None, name),
            role_ref: role_ref("ClusterRole", role),
            subjects: Some(subjects),
        }
    }

    fn binding(namespace: &str, name: &str, role: RoleRef, subjects: Vec<Subject>) -> RoleBinding {
        RoleBinding {
            metadata: meta(Some(namespace), name),
            role_ref: role,
            subjects: Some(subjects),
        }
    }

    fn pod_reader() -> Vec<PolicyRule> {
        vec![resource_rule(&["get", "list"], &[""], &["pods"], &[])]
    }

    fn get_pods(user: UserInfo, namespace: &str) -> Attributes {
        Attributes::resource(user, "get", "", "pods")
            .in_namespace(namespace)
            .named("web")
    }

    #[test]
    fn cluster_role_binding_to_a_user_applies_everywhere() {
        let policy = Policy::new(
            [cluster_role("pod-reader", pod_reader())],
            [cluster_binding(
                "read-pods",
                "pod-reader",
                vec![subject("User", "alice", None)],
            )],
            [],
            [],
        );
        let alice = UserInfo::new("alice", &[]);
        let decision = policy.authorize(&get_pods(alice.clone(), "default"));
        assert_eq!(
            decision,
            Decision::Allow {
                reason: r#"RBAC: allowed by ClusterRoleBinding "read-pods" of ClusterRole "pod-reader" to User "alice""#.to_owned()
            }
        );
        assert!(
            policy
                .authorize(&get_pods(alice.clone(), "other"))
                .is_allowed()
        );
        let all_namespaces = Attributes::resource(alice.clone(), "list", "", "pods");
        assert!(policy.authorize(&all_namespaces).is_allowed());
        let delete = Attributes::resource(alice, "delete", "", "pods").in_namespace("default");
        assert_eq!(
            policy.authorize(&delete),
            Decision::Deny {
                reason: String::new()
            }
        );
        let bob = UserInfo::new("bob", &[]);
        assert!(!policy.authorize(&get_pods(bob, "default")).is_allowed());
    }

    #[test]
    fn group_subjects() {
        let policy = Policy::new(
            [cluster_role("pod-reader", pod_reader())],
            [cluster_binding(
                "readers",
                "pod-reader",
                vec![
                    subject("User", "nobody", None),
                    subject("Group", "devs", None),
                ],
            )],
            [],
            [],
        );
        let dev = UserInfo::new("carol", &["system:authenticated", "devs"]);
        assert_eq!(
            policy.authorize(&get_pods(dev, "default")).reason(),
            r#"RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "pod-reader" to Group "devs""#
        );
        let other = UserInfo::new("dave", &["system:authenticated"]);
        assert!(!policy.authorize(&get_pods(other, "default")).is_allowed());
    }

    #[test]
    fn service_account_subjects() {
        let sa = UserInfo::new(
            service_account_user("apps", "builder"),
            &["system:serviceaccounts", "system:serviceaccounts:apps"],
        );
        let policy = Policy::new(
            [cluster_role("pod-reader", pod_reader())],
            [cluster_binding(
                "builder",
                "pod-reader",
                vec![subject("ServiceAccount", "builder", Some("apps"))],
            )],
            [],
            [],
        );
        assert_eq!(
            policy.authorize(&get_pods(sa.clone(), "x")).reason(),
            r#"RBAC: allowed by ClusterRoleBinding "builder" of ClusterRole "pod-reader" to ServiceAccount "builder/apps""#
        );
        let namesake = UserInfo::new(service_account_user("other", "builder"), &[]);
        assert!(!policy.authorize(&get_pods(namesake, "x")).is_allowed());

        // In a ClusterRoleBinding, a ServiceAccount without namespace matches nobody.
        let vague = Policy::new(
            [cluster_role("pod-reader", pod_reader())],
            [cluster_binding(
                "vague",
                "pod-reader",
                vec![subject("ServiceAccount", "builder", None)],
            )],
            [],
            [],
        );
        assert!(!vague.authorize(&get_pods(sa.clone(), "apps")).is_allowed());

        // In a RoleBinding, it means one of the binding's namespace.
        let local = Policy::new(
            [],
            [],
            [Role {
                metadata: meta(Some("apps"), "pod-reader"),
                rules: Some(pod_reader()),
            }],
            [binding(
                "apps",
                "builder",
                role_ref("Role", "pod-reader"),
                vec![subject("ServiceAccount", "builder", None)],
            )],
        );
        assert_eq!(
            local.authorize(&get_pods(sa, "apps")).reason(),
            r#"RBAC: allowed by RoleBinding "builder/apps" of Role "pod-reader" to ServiceAccount "builder/apps""#
        );
    }

    #[test]
    fn role_binding_applies_only_in_its_namespace() {
        let policy = Policy::new(
            [],
            [],
            [
                Role {
                    metadata: meta(Some("team"), "pod-reader"),
                    rules: Some(pod_reader()),
                },
                Role {
                    metadata: meta(Some("elsewhere"), "pod-reader"),
                    rules: Some(pod_reader()),
                },
            ],
            [binding(
                "team",
                "alice-reads",
                role_ref("Role", "pod-reader"),
                vec![subject("User", "alice", None)],
            )],
        );
        let alice = UserInfo::new("alice", &[]);
        assert!(
            policy
                .authorize(&get_pods(alice.clone(), "team"))
                .is_allowed()
        );
        assert!(
            !policy
                .authorize(&get_pods(alice.clone(), "elsewhere"))
                .is_allowed()
        );
        let across = Attributes::resource(alice, "list", "", "pods");
        assert!(!policy.authorize(&across).is_allowed());
    }

    #[test]
    fn role_binding_to_a_cluster_role_is_limited_to_its_namespace() {
        let policy = Policy::new(
            [cluster_role(
                "reader",
                vec![
                    resource_rule(&["get"], &[""], &["pods", "nodes"], &[]),
                    url_rule(&["get"], &["/healthz"]),
                ],
            )],
            [],
            [],
            [binding(
                "team",
                "alice-reads",
                role_ref("ClusterRole", "reader"),
                vec![subject("User", "alice", None)],
            )],
        );
        let alice = UserInfo::new("alice", &[]);
        assert_eq!(
            policy.authorize(&get_pods(alice.clone(), "team")).reason(),
            r#"RBAC: allowed by RoleBinding "alice-reads/team" of ClusterRole "reader" to User "alice""#
        );
        assert!(
            !policy
                .authorize(&get_pods(alice.clone(), "other"))
                .is_allowed()
        );
        // Cluster-scoped resources and plain paths have no namespace: the binding never applies.
        let node = Attributes::resource(alice.clone(), "get", "", "nodes").named("n1");
        assert!(!policy.authorize(&node).is_allowed());
        let healthz = Attributes::non_resource(alice, "get", "/healthz");
        assert!(!policy.authorize(&healthz).is_allowed());
    }

    #[test]
    fn missing_roles_are_skipped_and_reported() {
        let policy = Policy::new(
            [cluster_role("pod-reader", pod_reader())],
            [
                cluster_binding("a-gone", "gone", vec![subject("User", "alice", None)]),
                cluster_binding(
                    "b-reads",
                    "pod-reader",
                    vec![subject("User", "alice", None)],
                ),
            ],
            [],
            [binding(
                "team",
                "local",
                role_ref("Role", "absent"),
                vec![subject("User", "alice", None)],
            )],
        );
        let alice = UserInfo::new("alice", &[]);
        assert!(
            policy
                .authorize(&get_pods(alice.clone(), "team"))
                .is_allowed()
        );
        let delete = Attributes::resource(alice.clone(), "delete", "", "pods").in_namespace("team");
        assert_eq!(
            policy.authorize(&delete).reason(),
            r#"RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, role.rbac.authorization.k8s.io "absent" not found]"#
        );
        let (rules, missing) = policy.rules_for(&alice, Some("team"));
        assert_eq!(rules, pod_reader());
        assert_eq!(missing.len(), 2);

        // A ClusterRoleBinding cannot reference a Role: there is no namespace to find it in.
        let mut odd = cluster_binding("odd", "pod-reader", vec![subject("User", "alice", None)]);
        odd.role_ref.kind = "Role".to_owned();
        let policy = Policy::new([], [odd], [], []);
        assert_eq!(
            policy.authorize(&get_pods(alice, "team")).reason(),
            r#"RBAC: role.rbac.authorization.k8s.io "pod-reader" not found"#
        );
    }
}
