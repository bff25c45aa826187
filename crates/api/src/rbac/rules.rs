//! Whether one `PolicyRule` allows a request, with upstream's wildcards:
//!
//! - `verbs` and `apiGroups`: `*` is any.
//! - `resources`: `*` is any resource and subresource; `pods/log` is that subresource only;
//!   `*/scale` is that subresource of any resource. A plain `pods` never reaches `pods/log`,
//!   and `pods/*` is no wildcard (upstream matches it literally).
//! - `resourceNames`: empty is every object; otherwise the request must name one of them, so
//!   such a rule never allows a request without a name (`create`, `list`, `watch`,
//!   `deletecollection` of a collection).
//! - `nonResourceURLs`: only for requests outside the resource tree; `*` is any path and a
//!   trailing `*` a prefix (`/apis/*` reaches `/apis/apps/v1`, not `/apis`).

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::attributes::{Attributes, Target};

const ALL: &str = "*";

/// Whether any of `rules` allows the request.
pub fn rules_allow(attributes: &Attributes, rules: &[PolicyRule]) -> bool {
    rules.iter().any(|rule| rule_allows(attributes, rule))
}

/// Whether `rule` allows the request.
pub fn rule_allows(attributes: &Attributes, rule: &PolicyRule) -> bool {
    if !verb_matches(rule, &attributes.verb) {
        return false;
    }
    match &attributes.target {
        Target::Resource(request) => {
            let combined = if request.subresource.is_empty() {
                request.resource.clone()
            } else {
                format!("{}/{}", request.resource, request.subresource)
            };
            group_matches(rule, &request.api_group)
                && resource_matches(rule, &combined, &request.subresource)
                && name_matches(rule, &request.name)
        }
        Target::NonResource { path } => url_matches(rule, path),
    }
}

/// The list, `None` read as empty (the API treats a missing list and `[]` alike).
pub(super) fn list(field: &Option<Vec<String>>) -> &[String] {
    field.as_deref().unwrap_or_default()
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == ALL || v == verb)
}

fn group_matches(rule: &PolicyRule, group: &str) -> bool {
    list(&rule.api_groups)
        .iter()
        .any(|g| g == ALL || g == group)
}

/// `combined` is `resource` or `resource/subresource`.
fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    list(&rule.resources).iter().any(|r| {
        r == ALL
            || r == combined
            || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
    })
}

fn name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = list(&rule.resource_names);
    names.is_empty() || names.iter().any(|n| n == name)
}

fn url_matches(rule: &PolicyRule, path: &str) -> bool {
    list(&rule.non_resource_urls)
        .iter()
        .any(|url| url_covers(url, path))
}

/// Whether the rule's URL `pattern` reaches `path`: equal, `*`, or a trailing-`*` prefix.
pub(super) fn url_covers(pattern: &str, path: &str) -> bool {
    pattern == ALL
        || pattern == path
        || (pattern.ends_with('*') && path.starts_with(pattern.trim_end_matches('*')))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::rbac::attributes::UserInfo;

    fn strings(items: &[&str]) -> Option<Vec<String>> {
        (!items.is_empty()).then(|| items.iter().map(|s| (*s).to_owned()).collect())
    }

    /// A resource rule, for tests across the module.
    pub(in crate::rbac) fn resource_rule(
        verbs: &[&str],
        groups: &[&str],
        resources: &[&str],
        names: &[&str],
    ) -> PolicyRule {
        PolicyRule {
            verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
            api_groups: strings(groups),
            resources: strings(resources),
            resource_names: strings(names),
            non_resource_urls: None,
        }
    }

    pub(in crate::rbac) fn url_rule(verbs: &[&str], urls: &[&str]) -> PolicyRule {
        PolicyRule {
            verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
            non_resource_urls: strings(urls),
            ..PolicyRule::default()
        }
    }

    fn someone() -> UserInfo {
        UserInfo::new("alice", &[])
    }

    fn request(verb: &str, group: &str, resource: &str) -> Attributes {
        Attributes::resource(someone(), verb, group, resource).in_namespace("default")
    }

    #[test]
    fn verbs_and_groups_with_wildcards() {
        let rule = resource_rule(&["get", "list"], &["", "apps"], &["deployments"], &[]);
        assert!(rule_allows(&request("get", "apps", "deployments"), &rule));
        assert!(rule_allows(&request("list", "", "deployments"), &rule));
        assert!(!rule_allows(
            &request("delete", "apps", "deployments"),
            &rule
        ));
        assert!(!rule_allows(&request("get", "batch", "deployments"), &rule));

        let any = resource_rule(&["*"], &["*"], &["*"], &[]);
        assert!(rule_allows(
            &request("escalate", "rbac.authorization.k8s.io", "roles"),
            &any
        ));
        assert!(rule_allows(
            &request("get", "", "pods").subresource("log"),
            &any
        ));
        // A rule without groups allows nothing.
        let no_groups = resource_rule(&["*"], &[], &["*"], &[]);
        assert!(!rule_allows(&request("get", "", "pods"), &no_groups));
    }

    #[test]
    fn subresources() {
        let pods = resource_rule(&["get"], &[""], &["pods"], &[]);
        let log = request("get", "", "pods").subresource("log");
        assert!(rule_allows(&request("get", "", "pods"), &pods));
        assert!(!rule_allows(&log, &pods), "pods does not reach pods/log");

        let pods_log = resource_rule(&["get"], &[""], &["pods/log"], &[]);
        assert!(rule_allows(&log, &pods_log));
        assert!(!rule_allows(&request("get", "", "pods"), &pods_log));
        assert!(!rule_allows(
            &request("get", "", "pods").subresource("exec"),
            &pods_log
        ));

        let any_scale = resource_rule(&["get"], &["*"], &["*/scale"], &[]);
        assert!(rule_allows(
            &request("get", "apps", "deployments").subresource("scale"),
            &any_scale
        ));
        assert!(!rule_allows(
            &request("get", "apps", "deployments"),
            &any_scale
        ));
        assert!(!rule_allows(
            &request("get", "apps", "deployments").subresource("status"),
            &any_scale
        ));

        // `pods/*` is matched literally upstream, so it is no wildcard for subresources.
        let pods_star = resource_rule(&["get"], &[""], &["pods/*"], &[]);
        assert!(!rule_allows(&log, &pods_star));
        assert!(!rule_allows(&request("get", "", "pods"), &pods_star));
    }

    #[test]
    fn resource_names() {
        let named = resource_rule(&["*"], &[""], &["configmaps"], &["cluster-info"]);
        let get = |name: &str| request("get", "", "configmaps").named(name);
        assert!(rule_allows(&get("cluster-info"), &named));
        assert!(!rule_allows(&get("other"), &named));
        for verb in ["create", "list", "watch", "deletecollection"] {
            assert!(
                !rule_allows(&request(verb, "", "configmaps"), &named),
                "{verb} without a name"
            );
        }
        let unnamed = resource_rule(&["list"], &[""], &["configmaps"], &[]);
        assert!(rule_allows(&request("list", "", "configmaps"), &unnamed));
        assert!(!rule_allows(&get("anything"), &unnamed));
    }

    #[test]
    fn non_resource_urls() {
        let path = |p: &str| Attributes::non_resource(someone(), "get", p);
        let rule = url_rule(&["get"], &["/healthz", "/apis/*"]);
        assert!(rule_allows(&path("/healthz"), &rule));
        assert!(!rule_allows(&path("/healthz/etcd"), &rule));
        assert!(rule_allows(&path("/apis/apps/v1"), &rule));
        assert!(rule_allows(&path("/apis/"), &rule));
        assert!(!rule_allows(&path("/apis"), &rule));
        assert!(!rule_allows(
            &Attributes::non_resource(someone(), "post", "/healthz"),
            &rule
        ));
        assert!(rule_allows(&path("/anything"), &url_rule(&["get"], &["*"])));

        // URL rules never reach resources, and resource rules never reach paths.
        let everything = resource_rule(&["*"], &["*"], &["*"], &[]);
        assert!(!rule_allows(&path("/healthz"), &everything));
        assert!(!rule_allows(
            &request("get", "", "pods"),
            &url_rule(&["*"], &["*"])
        ));
    }
}
