//! Escalation prevention: nobody grants what they do not hold. Writing a Role or ClusterRole,
//! or a binding, is refused unless the writer's own rules (in the namespace of the object,
//! or cluster-wide for cluster objects) cover every rule it would grant, with three ways
//! around it, as upstream:
//!
//! - members of `system:masters` may grant anything;
//! - the `escalate` verb on `roles`/`clusterroles` lets its holder write any role;
//! - the `bind` verb on a role lets its holder bind that role to anyone.
//!
//! Coverage is decided on atomic pieces: every requested rule is broken into rules of one
//! verb, one group, one resource and at most one name (or one verb and one URL), and each
//! piece must be covered by a single rule of the owner's.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role, RoleRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::attributes::{Attributes, UserInfo};
use super::authorize::{Policy, resolution_errors};
use super::rules::{list, url_covers};
use crate::status::ApiError;

/// The API group of the RBAC kinds.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The group whose members are trusted with anything (upstream's "privileged" group).
pub const MASTERS_GROUP: &str = "system:masters";

const ALL: &str = "*";

/// Whether `owner` covers all of `requested`; otherwise the atomic pieces it does not cover,
/// in the order they were found.
pub fn covers(owner: &[PolicyRule], requested: &[PolicyRule]) -> Result<(), Vec<PolicyRule>> {
    let uncovered: Vec<PolicyRule> = requested
        .iter()
        .flat_map(breakdown)
        .filter(|piece| !owner.iter().any(|rule| rule_covers(rule, piece)))
        .collect();
    if uncovered.is_empty() {
        Ok(())
    } else {
        Err(uncovered)
    }
}

/// `rule` as rules of one verb, one API group, one resource and at most one resource name,
/// then rules of one verb and one non-resource URL. Their union allows exactly what `rule`
/// allows (a rule without groups or resources breaks into nothing, as it allows nothing).
pub fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| Some(vec![s.clone()]);
    let names = list(&rule.resource_names);
    let mut pieces = Vec::new();
    for group in list(&rule.api_groups) {
        for resource in list(&rule.resources) {
            for verb in &rule.verbs {
                let piece = PolicyRule {
                    verbs: vec![verb.clone()],
                    api_groups: one(group),
                    resources: one(resource),
                    ..PolicyRule::default()
                };
                if names.is_empty() {
                    pieces.push(piece);
                } else {
                    pieces.extend(names.iter().map(|name| PolicyRule {
                        resource_names: one(name),
                        ..piece.clone()
                    }));
                }
            }
        }
    }
    for url in list(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            pieces.push(PolicyRule {
                verbs: vec![verb.clone()],
                non_resource_urls: one(url),
                ..PolicyRule::default()
            });
        }
    }
    pieces
}

/// Whether one owner rule covers one atomic piece from [`breakdown`].
fn rule_covers(owner: &PolicyRule, piece: &PolicyRule) -> bool {
    let has_all = |set: &[String], wanted: &[String]| wanted.iter().all(|w| set.contains(w));
    let star_or_all =
        |set: &[String], wanted: &[String]| set.iter().any(|s| s == ALL) || has_all(set, wanted);
    let owner_names = list(&owner.resource_names);
    let piece_names = list(&piece.resource_names);
    let names = if piece_names.is_empty() {
        // A piece for every object needs a rule for every object.
        owner_names.is_empty()
    } else {
        owner_names.is_empty() || has_all(owner_names, piece_names)
    };
    star_or_all(&owner.verbs, &piece.verbs)
        && star_or_all(list(&owner.api_groups), list(&piece.api_groups))
        && resources_covered(list(&owner.resources), list(&piece.resources))
        && list(&piece.non_resource_urls).iter().all(|url| {
            list(&owner.non_resource_urls)
                .iter()
                .any(|o| url_covers(o, url))
        })
        && names
}

/// `*` covers any resource, `*/status` any resource's `status`, otherwise exact names.
fn resources_covered(owner: &[String], wanted: &[String]) -> bool {
    if owner.iter().any(|r| r == ALL) {
        return true;
    }
    wanted.iter().all(|resource| {
        owner.contains(resource)
            || resource
                .split_once('/')
                .is_some_and(|(_, sub)| owner.iter().any(|o| o.strip_prefix("*/") == Some(sub)))
    })
}

/// A rule as upstream prints it in escalation messages:
/// `{APIGroups:["apps"], Resources:["deployments"], Verbs:["create" "delete"]}`.
pub fn compact_string(rule: &PolicyRule) -> String {
    let fields = [
        ("APIGroups", list(&rule.api_groups)),
        ("Resources", list(&rule.resources)),
        ("NonResourceURLs", list(&rule.non_resource_urls)),
        ("ResourceNames", list(&rule.resource_names)),
        ("Verbs", rule.verbs.as_slice()),
    ];
    let parts: Vec<String> = fields
        .iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(label, values)| format!("{label}:{}", quoted_list(values)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// `["a" "b"]`: a list of strings as Go's `%q` prints it, which is what clients have seen.
fn quoted_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// The missing pieces, readable: pieces on the same group and resource (and nothing else)
/// merged into one rule with all their verbs, each description once, sorted.
fn describe_missing(missing: &[PolicyRule]) -> Vec<String> {
    let mut simple: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    let mut descriptions = BTreeSet::new();
    for rule in missing {
        match (list(&rule.api_groups), list(&rule.resources)) {
            ([group], [resource])
                if list(&rule.resource_names).is_empty()
                    && list(&rule.non_resource_urls).is_empty() =>
            {
                simple
                    .entry((group, resource))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
            _ => {
                descriptions.insert(compact_string(rule));
            }
        }
    }
    for ((group, resource), verbs) in simple {
        descriptions.insert(compact_string(&PolicyRule {
            api_groups: Some(vec![group.to_owned()]),
            resources: Some(vec![resource.to_owned()]),
            verbs,
            ..PolicyRule::default()
        }));
    }
    descriptions.into_iter().collect()
}

/// Why a grant is refused. The key phrase, "is attempting to grant RBAC permissions not
/// currently held", is upstream's and what clients and tests look for; the missing rules
/// follow, one a line.
pub fn not_held_message(user: &UserInfo, missing: &[PolicyRule], unresolved: &[String]) -> String {
    let mut message = format!(
        "user {:?} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        quoted_list(&user.groups),
        describe_missing(missing).join("\n")
    );
    if let Some(errors) = resolution_errors(unresolved) {
        message.push_str(&format!(
            "; some of the user's bindings could not be resolved: {errors}"
        ));
    }
    message
}

/// Whether `user` may grant anything without checks.
pub fn escalation_allowed(user: &UserInfo) -> bool {
    user.in_group(MASTERS_GROUP)
}

/// The rules that stand for every permission, which setting an aggregation rule requires
/// (an aggregated role can gather anything).
pub fn full_authority() -> Vec<PolicyRule> {
    let all = || Some(vec![ALL.to_owned()]);
    vec![
        PolicyRule {
            verbs: vec![ALL.to_owned()],
            api_groups: all(),
            resources: all(),
            ..PolicyRule::default()
        },
        PolicyRule {
            verbs: vec![ALL.to_owned()],
            non_resource_urls: all(),
            ..PolicyRule::default()
        },
    ]
}

/// Whether an update only touches what the garbage collector writes (owner references,
/// finalizers) or bookkeeping (managed fields): such updates are never an escalation, so
/// the collector can remove dependents' finalizers on roles it could not have written.
fn only_gc_fields_change<T: Clone + PartialEq>(
    new: &T,
    old: &T,
    metadata: impl Fn(&mut T) -> &mut ObjectMeta,
) -> bool {
    let mut stomped = new.clone();
    let mut old_copy = old.clone();
    let old_meta = metadata(&mut old_copy).clone();
    let meta = metadata(&mut stomped);
    meta.owner_references = old_meta.owner_references;
    meta.finalizers = old_meta.finalizers;
    meta.managed_fields = old_meta.managed_fields;
    meta.self_link = old_meta.self_link;
    &stomped == old
}

impl Policy {
    /// Whether the writer's own rules in `namespace` cover `rules`; the refusal's message
    /// otherwise (see [`not_held_message`]).
    pub fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        namespace: Option<&str>,
        rules: &[PolicyRule],
    ) -> Result<(), String> {
        let (held, unresolved) = self.rules_for(user, namespace);
        covers(&held, rules).map_err(|missing| not_held_message(user, &missing, &unresolved))
    }

    /// Whether `user` may write the role named `name` of `resource` (`roles` or
    /// `clusterroles`) without the coverage check: `system:masters`, or `escalate` on it.
    /// `name` is the one in the request's URL, so empty for a create, as upstream.
    fn may_escalate(
        &self,
        user: &UserInfo,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        if escalation_allowed(user) {
            return true;
        }
        let mut escalate =
            Attributes::resource(user.clone(), "escalate", RBAC_GROUP, resource).named(name);
        if let Some(namespace) = namespace {
            escalate = escalate.in_namespace(namespace);
        }
        self.authorize(&escalate).is_allowed()
    }

    /// The check of a create (`old` is `None`) or an update of a ClusterRole by `user`.
    /// Setting or keeping an aggregation rule needs every permission, as the role can
    /// gather anything.
    pub fn check_cluster_role_write(
        &self,
        user: &UserInfo,
        role: &ClusterRole,
        old: Option<&ClusterRole>,
    ) -> Result<(), ApiError> {
        let name = role.metadata.name.as_deref().unwrap_or_default();
        let url_name = if old.is_some() { name } else { "" };
        if self.may_escalate(user, "clusterroles", None, url_name) {
            return Ok(());
        }
        if old.is_some_and(|old| only_gc_fields_change(role, old, |r| &mut r.metadata)) {
            return Ok(());
        }
        let refuse = |why: &str| ApiError::forbidden_because(RBAC_GROUP, "clusterroles", name, why);
        self.confirm_no_escalation(user, None, role.rules.as_deref().unwrap_or_default())
            .map_err(|why| refuse(&why))?;
        let aggregates = |r: &ClusterRole| {
            r.aggregation_rule.as_ref().is_some_and(|a| {
                !a.cluster_role_selectors
                    .as_deref()
                    .unwrap_or_default()
                    .is_empty()
            })
        };
        if (aggregates(role) || old.is_some_and(aggregates))
            && self
                .confirm_no_escalation(user, None, &full_authority())
                .is_err()
        {
            return Err(refuse(
                "must have cluster-admin privileges to use the aggregationRule",
            ));
        }
        Ok(())
    }

    /// The check of a create (`old` is `None`) or an update of a Role in `namespace`.
    pub fn check_role_write(
        &self,
        user: &UserInfo,
        namespace: &str,
        role: &Role,
        old: Option<&Role>,
    ) -> Result<(), ApiError> {
        let name = role.metadata.name.as_deref().unwrap_or_default();
        let url_name = if old.is_some() { name } else { "" };
        if self.may_escalate(user, "roles", Some(namespace), url_name) {
            return Ok(());
        }
        if old.is_some_and(|old| only_gc_fields_change(role, old, |r| &mut r.metadata)) {
            return Ok(());
        }
        self.confirm_no_escalation(
            user,
            Some(namespace),
            role.rules.as_deref().unwrap_or_default(),
        )
        .map_err(|why| ApiError::forbidden_because(RBAC_GROUP, "roles", name, &why))
    }

    /// The check of a write of a binding named `name` that grants `role_ref`: a RoleBinding
    /// (`resource` `rolebindings`, in `namespace`) or a ClusterRoleBinding
    /// (`clusterrolebindings`, `namespace` `None`). Allowed with `bind` on the role, or when
    /// the writer holds every rule of it there; a role that does not exist is 404, as
    /// upstream answers.
    pub fn check_binding_write(
        &self,
        user: &UserInfo,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        role_ref: &RoleRef,
    ) -> Result<(), ApiError> {
        if escalation_allowed(user) {
            return Ok(());
        }
        if bind_attributes(user, role_ref, namespace)
            .is_some_and(|bind| self.authorize(&bind).is_allowed())
        {
            return Ok(());
        }
        let rules = self
            .role_ref_rules(role_ref, namespace.unwrap_or_default())
            .map_err(|error| match role_ref.kind.as_str() {
                "ClusterRole" => ApiError::not_found(RBAC_GROUP, "clusterrole", &role_ref.name),
                "Role" => ApiError::not_found(RBAC_GROUP, "role", &role_ref.name),
                _ => ApiError::bad_request(error),
            })?;
        self.confirm_no_escalation(user, namespace, rules)
            .map_err(|why| ApiError::forbidden_because(RBAC_GROUP, resource, name, &why))
    }
}

/// The `bind` request that lets `user` bind `role_ref` in `namespace` (or cluster-wide),
/// or `None` for a reference to something that is no role.
pub fn bind_attributes(
    user: &UserInfo,
    role_ref: &RoleRef,
    namespace: Option<&str>,
) -> Option<Attributes> {
    let resource = match role_ref.kind.as_str() {
        "ClusterRole" => "clusterroles",
        "Role" => "roles",
        _ => return None,
    };
    let bind = Attributes::resource(user.clone(), "bind", role_ref.api_group.clone(), resource)
        .named(role_ref.name.clone());
    Some(match namespace {
        Some(namespace) => bind.in_namespace(namespace),
        None => bind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::rules::tests::{resource_rule, url_rule};
    use k8s_openapi::api::rbac::v1::{AggregationRule, ClusterRoleBinding, RoleBinding, Subject};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    #[test]
    fn breakdown_is_atomic() {
        let rule = resource_rule(&["get", "list"], &["", "apps"], &["pods"], &["a", "b"]);
        let pieces = breakdown(&rule);
        assert_eq!(pieces.len(), 8);
        assert!(pieces.iter().all(|p| p.verbs.len() == 1
            && list(&p.api_groups).len() == 1
            && list(&p.resources).len() == 1
            && list(&p.resource_names).len() == 1));
        assert_eq!(
            breakdown(&url_rule(&["get", "post"], &["/a", "/b"])).len(),
            4
        );
        assert!(breakdown(&resource_rule(&["get"], &[], &["pods"], &[])).is_empty());
    }

    #[test]
    fn covered() {
        let cases: &[(Vec<PolicyRule>, Vec<PolicyRule>)] = &[
            // Identical.
            (
                vec![resource_rule(&["get"], &[""], &["pods"], &[])],
                vec![resource_rule(&["get"], &[""], &["pods"], &[])],
            ),
            // Stars cover everything of their field.
            (
                vec![resource_rule(&["*"], &["*"], &["*"], &[])],
                vec![resource_rule(
                    &["delete", "escalate"],
                    &["apps", ""],
                    &["deployments/scale", "secrets"],
                    &["x"],
                )],
            ),
            // Split across owner rules, piece by piece.
            (
                vec![
                    resource_rule(&["get"], &[""], &["pods"], &[]),
                    resource_rule(&["list"], &[""], &["pods"], &[]),
                ],
                vec![resource_rule(&["get", "list"], &[""], &["pods"], &[])],
            ),
            // `*/status` covers any resource's status.
            (
                vec![resource_rule(&["get"], &[""], &["*/status"], &[])],
                vec![resource_rule(
                    &["get"],
                    &[""],
                    &["pods/status", "nodes/status"],
                    &[],
                )],
            ),
            // An owner rule for every object covers named ones; names cover those names.
            (
                vec![
                    resource_rule(&["get"], &[""], &["secrets"], &[]),
                    resource_rule(&["update"], &[""], &["configmaps"], &["a", "b"]),
                ],
                vec![
                    resource_rule(&["get"], &[""], &["secrets"], &["token"]),
                    resource_rule(&["update"], &[""], &["configmaps"], &["b"]),
                ],
            ),
            // URL prefixes.
            (
                vec![url_rule(&["get"], &["/apis/*"])],
                vec![url_rule(&["get"], &["/apis/apps", "/apis/*"])],
            ),
            // Nothing requested.
            (vec![], vec![]),
        ];
        for (owner, requested) in cases {
            assert_eq!(
                covers(owner, requested),
                Ok(()),
                "{owner:?} should cover {requested:?}"
            );
        }
    }

    #[test]
    fn not_covered() {
        let pods_get = resource_rule(&["get"], &[""], &["pods"], &[]);
        let cases: &[(Vec<PolicyRule>, PolicyRule, Vec<PolicyRule>)] = &[
            // Another verb.
            (
                vec![pods_get.clone()],
                resource_rule(&["get", "delete"], &[""], &["pods"], &[]),
                vec![resource_rule(&["delete"], &[""], &["pods"], &[])],
            ),
            // A resource does not cover its subresources.
            (
                vec![pods_get.clone()],
                resource_rule(&["get"], &[""], &["pods/log"], &[]),
                vec![resource_rule(&["get"], &[""], &["pods/log"], &[])],
            ),
            // Names do not cover every object.
            (
                vec![resource_rule(&["get"], &[""], &["secrets"], &["a"])],
                resource_rule(&["get"], &[""], &["secrets"], &["a", "b"]),
                vec![resource_rule(&["get"], &[""], &["secrets"], &["b"])],
            ),
            (
                vec![resource_rule(&["get"], &[""], &["secrets"], &["a"])],
                resource_rule(&["get"], &[""], &["secrets"], &[]),
                vec![resource_rule(&["get"], &[""], &["secrets"], &[])],
            ),
            // Resource rules do not cover URLs.
            (
                vec![resource_rule(&["*"], &["*"], &["*"], &[])],
                url_rule(&["get"], &["/healthz"]),
                vec![url_rule(&["get"], &["/healthz"])],
            ),
            // A star requested is not covered by a list.
            (
                vec![pods_get.clone()],
                resource_rule(&["get"], &[""], &["*"], &[]),
                vec![resource_rule(&["get"], &[""], &["*"], &[])],
            ),
        ];
        for (owner, requested, missing) in cases {
            assert_eq!(
                covers(owner, std::slice::from_ref(requested)),
                Err(missing.clone()),
                "{owner:?} against {requested:?}"
            );
        }
    }

    #[test]
    fn compact_strings_as_upstream_prints_them() {
        assert_eq!(
            compact_string(&resource_rule(&["get", "list"], &[""], &["pods"], &["a"])),
            r#"{APIGroups:[""], Resources:["pods"], ResourceNames:["a"], Verbs:["get" "list"]}"#
        );
        assert_eq!(
            compact_string(&url_rule(&["get"], &["/healthz"])),
            r#"{NonResourceURLs:["/healthz"], Verbs:["get"]}"#
        );
    }

    #[test]
    fn message_merges_verbs_per_resource() {
        let user = UserInfo::new("bob", &["system:authenticated", "devs"]);
        let missing = [
            resource_rule(&["get"], &[""], &["pods"], &[]),
            resource_rule(&["list"], &[""], &["pods"], &[]),
            resource_rule(&["get"], &[""], &["secrets"], &["x"]),
        ];
        assert_eq!(
            not_held_message(&user, &missing, &[]),
            "user \"bob\" (groups=[\"system:authenticated\" \"devs\"]) is attempting to grant RBAC permissions not currently held:\n\
             {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\" \"list\"]}\n\
             {APIGroups:[\"\"], Resources:[\"secrets\"], ResourceNames:[\"x\"], Verbs:[\"get\"]}"
        );
    }

    fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: namespace.map(str::to_owned),
            ..ObjectMeta::default()
        }
    }

    fn user_subject(name: &str) -> Subject {
        Subject {
            kind: "User".to_owned(),
            name: name.to_owned(),
            api_group: Some(RBAC_GROUP.to_owned()),
            namespace: None,
        }
    }

    fn cluster_role_ref(name: &str) -> RoleRef {
        RoleRef {
            api_group: RBAC_GROUP.to_owned(),
            kind: "ClusterRole".to_owned(),
            name: name.to_owned(),
        }
    }

    /// alice may read pods and manage roles in `team`; `escalator` may escalate roles there;
    /// `binder` may bind the `secret-reader` ClusterRole there.
    fn team_policy() -> Policy {
        let cluster_role = |name: &str, rules| ClusterRole {
            metadata: meta(None, name),
            rules: Some(rules),
            aggregation_rule: None,
        };
        let role_binding = |name: &str, role: &str, user: &str| RoleBinding {
            metadata: meta(Some("team"), name),
            role_ref: cluster_role_ref(role),
            subjects: Some(vec![user_subject(user)]),
        };
        Policy::new(
            [
                cluster_role(
                    "pod-reader",
                    vec![
                        resource_rule(&["get", "list"], &[""], &["pods"], &[]),
                        resource_rule(
                            &["get", "create", "update"],
                            &[RBAC_GROUP],
                            &["roles", "rolebindings"],
                            &[],
                        ),
                    ],
                ),
                cluster_role(
                    "secret-reader",
                    vec![resource_rule(&["get"], &[""], &["secrets"], &[])],
                ),
                cluster_role(
                    "escalator",
                    vec![resource_rule(
                        &["escalate", "create"],
                        &[RBAC_GROUP],
                        &["roles"],
                        &[],
                    )],
                ),
                cluster_role(
                    "binder",
                    vec![resource_rule(
                        &["bind"],
                        &[RBAC_GROUP],
                        &["clusterroles"],
                        &["secret-reader"],
                    )],
                ),
            ],
            [ClusterRoleBinding {
                metadata: meta(None, "carl-everywhere"),
                role_ref: cluster_role_ref("pod-reader"),
                subjects: Some(vec![user_subject("carl")]),
            }],
            [],
            [
                role_binding("alice", "pod-reader", "alice"),
                role_binding("escalator", "escalator", "eve"),
                role_binding("binder", "binder", "bert"),
                role_binding("binder-reads", "pod-reader", "bert"),
            ],
        )
    }

    fn role(rules: Vec<PolicyRule>) -> Role {
        Role {
            metadata: meta(Some("team"), "r"),
            rules: Some(rules),
        }
    }

    #[test]
    fn role_writes() {
        let policy = team_policy();
        let alice = UserInfo::new("alice", &["system:authenticated"]);
        let held = role(vec![resource_rule(&["get"], &[""], &["pods"], &[])]);
        assert_eq!(policy.check_role_write(&alice, "team", &held, None), Ok(()));

        let more = role(vec![resource_rule(
            &["get", "delete"],
            &[""],
            &["pods"],
            &[],
        )]);
        let error = policy
            .check_role_write(&alice, "team", &more, None)
            .unwrap_err();
        assert_eq!(error.code, 403);
        assert_eq!(
            error.message,
            "roles.rbac.authorization.k8s.io \"r\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) \
             is attempting to grant RBAC permissions not currently held:\n\
             {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}"
        );
        // What alice holds in `team` she does not hold elsewhere.
        assert!(
            policy
                .check_role_write(&alice, "other", &held, None)
                .is_err()
        );

        // `escalate` and system:masters skip the check.
        let eve = UserInfo::new("eve", &[]);
        assert_eq!(policy.check_role_write(&eve, "team", &more, None), Ok(()));
        let admin = UserInfo::new("admin", &[MASTERS_GROUP]);
        assert_eq!(
            policy.check_role_write(&admin, "other", &more, None),
            Ok(())
        );

        // An update that only touches finalizers is no grant.
        let mut finalized = more.clone();
        finalized.metadata.finalizers = Some(vec!["example.com/keep".to_owned()]);
        assert_eq!(
            policy.check_role_write(&alice, "team", &finalized, Some(&more)),
            Ok(())
        );
    }

    #[test]
    fn cluster_role_writes_and_aggregation_rules() {
        let policy = team_policy();
        // carl holds pod-reader cluster-wide.
        let carl = UserInfo::new("carl", &[]);
        let reader = ClusterRole {
            metadata: meta(None, "mine"),
            rules: Some(vec![resource_rule(&["list"], &[""], &["pods"], &[])]),
            aggregation_rule: None,
        };
        assert_eq!(
            policy.check_cluster_role_write(&carl, &reader, None),
            Ok(())
        );
        // alice holds it only in `team`, which is not enough for a cluster object.
        let alice = UserInfo::new("alice", &[]);
        assert!(
            policy
                .check_cluster_role_write(&alice, &reader, None)
                .is_err()
        );

        let aggregated = ClusterRole {
            aggregation_rule: Some(AggregationRule {
                cluster_role_selectors: Some(vec![LabelSelector::default()]),
            }),
            ..reader.clone()
        };
        let error = policy
            .check_cluster_role_write(&carl, &aggregated, None)
            .unwrap_err();
        assert_eq!(
            error.message,
            "clusterroles.rbac.authorization.k8s.io \"mine\" is forbidden: must have cluster-admin privileges to use the aggregationRule"
        );
        // Dropping the aggregation rule of an existing role is checked the same way.
        assert!(
            policy
                .check_cluster_role_write(&carl, &reader, Some(&aggregated))
                .is_err()
        );
        let admin = UserInfo::new("admin", &[MASTERS_GROUP]);
        assert_eq!(
            policy.check_cluster_role_write(&admin, &aggregated, None),
            Ok(())
        );
    }

    #[test]
    fn binding_writes() {
        let policy = team_policy();
        let alice = UserInfo::new("alice", &[]);
        let bert = UserInfo::new("bert", &[]);
        let write = |user: &UserInfo, role: &str, namespace: Option<&str>| {
            let resource = if namespace.is_some() {
                "rolebindings"
            } else {
                "clusterrolebindings"
            };
            policy.check_binding_write(user, resource, namespace, "b", &cluster_role_ref(role))
        };
        // alice holds pod-reader in team, so she may hand it out there.
        assert_eq!(write(&alice, "pod-reader", Some("team")), Ok(()));
        // Not secret-reader, which she does not hold...
        let error = write(&alice, "secret-reader", Some("team")).unwrap_err();
        assert_eq!(error.code, 403);
        assert!(error.message.starts_with(
            "rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user \"alice\""
        ));
        assert!(
            error
                .message
                .contains("is attempting to grant RBAC permissions not currently held")
        );
        // ...which bert may bind, by `bind`, though he does not hold it.
        assert_eq!(write(&bert, "secret-reader", Some("team")), Ok(()));
        assert!(write(&bert, "secret-reader", Some("other")).is_err());
        assert!(write(&bert, "secret-reader", None).is_err());
        // A role that does not exist.
        let error = write(&alice, "nope", Some("team")).unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (
                404,
                "clusterrole.rbac.authorization.k8s.io \"nope\" not found"
            )
        );
    }
}
