//! ClusterRole aggregation: a ClusterRole with `aggregationRule.clusterRoleSelectors` has, as
//! its rules, those of every other ClusterRole whose labels a selector matches. This is how
//! `admin`, `edit` and `view` grow when a CRD's installer adds a role labelled
//! `rbac.authorization.k8s.io/aggregate-to-view: "true"`.
//!
//! The rules are written as upstream's controller writes them: selector by selector, matching
//! roles in name order, each rule once (the first time it is seen), so the result does not
//! depend on the order roles were listed in.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};

use super::rules::list;
use crate::labels::Selector;

/// A selector of an aggregation rule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("clusterrole {role:?}: aggregationRule.clusterRoleSelectors[{index}]: {message}")]
pub struct AggregationError {
    pub role: String,
    pub index: usize,
    pub message: String,
}

/// The rules `role` aggregates from `all` (the other ClusterRoles; `role` itself is skipped
/// if present), or `None` when `role` has no aggregation rule and keeps its own rules.
pub fn aggregated_rules<'a>(
    role: &ClusterRole,
    all: impl IntoIterator<Item = &'a ClusterRole>,
) -> Result<Option<Vec<PolicyRule>>, AggregationError> {
    let Some(aggregation) = &role.aggregation_rule else {
        return Ok(None);
    };
    let own_name = role.metadata.name.as_deref().unwrap_or_default();
    let error = |index, message| AggregationError {
        role: own_name.to_owned(),
        index,
        message,
    };
    let selectors = aggregation
        .cluster_role_selectors
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, selector)| {
            let json = serde_json::to_value(selector).map_err(|e| error(index, e.to_string()))?;
            Selector::from_label_selector(&json).map_err(|e| error(index, e))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut others: Vec<&ClusterRole> = all
        .into_iter()
        .filter(|r| r.metadata.name.as_deref().unwrap_or_default() != own_name)
        .collect();
    others.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));

    let no_labels = BTreeMap::new();
    let mut rules: Vec<PolicyRule> = Vec::new();
    for selector in &selectors {
        for other in &others {
            let labels = other.metadata.labels.as_ref().unwrap_or(&no_labels);
            if !selector.matches(labels) {
                continue;
            }
            for rule in other.rules.as_deref().unwrap_or_default() {
                if !rules.iter().any(|have| same_rule(have, rule)) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    Ok(Some(rules))
}

/// Brings every aggregated ClusterRole of `roles` up to date, as the controller does over
/// time: aggregated roles can aggregate others (`admin` takes `edit`'s, which takes
/// `view`'s), so passes repeat until nothing changes. Returns the names of the roles whose
/// rules changed. Selectors that do not parse leave their role as it was and are reported.
pub fn aggregate_all(
    roles: &mut BTreeMap<String, ClusterRole>,
) -> (BTreeSet<String>, Vec<AggregationError>) {
    let mut changed = BTreeSet::new();
    let mut errors = Vec::new();
    // Every pass settles at least one more level of nesting; a cycle of aggregated roles
    // may never settle, so the passes are bounded.
    for _ in 0..=roles.len() {
        errors.clear();
        let mut updates = Vec::new();
        for (name, role) in roles.iter() {
            match aggregated_rules(role, roles.values()) {
                Ok(Some(rules)) if !same_rules(list_of(role), &rules) => {
                    updates.push((name.clone(), rules));
                }
                Ok(_) => {}
                Err(error) => errors.push(error),
            }
        }
        if updates.is_empty() {
            break;
        }
        for (name, rules) in updates {
            if let Some(role) = roles.get_mut(&name) {
                role.rules = Some(rules);
                changed.insert(name);
            }
        }
    }
    (changed, errors)
}

fn list_of(role: &ClusterRole) -> &[PolicyRule] {
    role.rules.as_deref().unwrap_or_default()
}

fn same_rules(a: &[PolicyRule], b: &[PolicyRule]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_rule(x, y))
}

/// Equal as the API sees them: a missing list is an empty one.
pub(super) fn same_rule(a: &PolicyRule, b: &PolicyRule) -> bool {
    a.verbs == b.verbs
        && list(&a.api_groups) == list(&b.api_groups)
        && list(&a.resources) == list(&b.resources)
        && list(&a.resource_names) == list(&b.resource_names)
        && list(&a.non_resource_urls) == list(&b.non_resource_urls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::rules::tests::resource_rule;
    use k8s_openapi::api::rbac::v1::AggregationRule;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        LabelSelector, LabelSelectorRequirement, ObjectMeta,
    };

    fn role(name: &str, labels: &[(&str, &str)], rules: Vec<PolicyRule>) -> ClusterRole {
        ClusterRole {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            rules: Some(rules),
            aggregation_rule: None,
        }
    }

    fn match_label(key: &str) -> LabelSelector {
        LabelSelector {
            match_labels: Some([(key.to_owned(), "true".to_owned())].into()),
            match_expressions: None,
        }
    }

    fn aggregating(
        name: &str,
        labels: &[(&str, &str)],
        selectors: Vec<LabelSelector>,
    ) -> ClusterRole {
        ClusterRole {
            aggregation_rule: Some(AggregationRule {
                cluster_role_selectors: Some(selectors),
            }),
            rules: None,
            ..role(name, labels, Vec::new())
        }
    }

    #[test]
    fn union_in_name_order_without_duplicates_or_itself() {
        let pods = resource_rule(&["get"], &[""], &["pods"], &[]);
        let jobs = resource_rule(&["get"], &["batch"], &["jobs"], &[]);
        let crds = resource_rule(&["get"], &["example.com"], &["widgets"], &[]);
        let mut target = aggregating(
            "viewer",
            &[("x/view", "true")],
            vec![
                match_label("x/view"),
                LabelSelector {
                    match_labels: None,
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: "x/extra".to_owned(),
                        operator: "Exists".to_owned(),
                        values: None,
                    }]),
                },
            ],
        );
        target.rules = Some(vec![resource_rule(&["*"], &["*"], &["*"], &[])]);
        let all = [
            role(
                "z-jobs",
                &[("x/view", "true")],
                vec![jobs.clone(), pods.clone()],
            ),
            role("a-pods", &[("x/view", "true")], vec![pods.clone()]),
            role(
                "m-crds",
                &[("x/extra", "")],
                vec![crds.clone(), pods.clone()],
            ),
            role(
                "unlabelled",
                &[],
                vec![resource_rule(&["delete"], &[""], &["pods"], &[])],
            ),
            target.clone(),
        ];
        let rules = aggregated_rules(&target, &all).unwrap().unwrap();
        assert_eq!(rules, vec![pods, jobs, crds]);

        // Same result whatever the listing order.
        let reversed: Vec<_> = all.iter().rev().collect();
        assert_eq!(
            aggregated_rules(&target, reversed).unwrap().unwrap(),
            aggregated_rules(&target, &all).unwrap().unwrap()
        );

        // A plain role keeps its own rules.
        assert_eq!(aggregated_rules(&all[0], &all).unwrap(), None);
    }

    #[test]
    fn nested_aggregation_settles() {
        let get_pods = resource_rule(&["get"], &[""], &["pods"], &[]);
        let create_pods = resource_rule(&["create"], &[""], &["pods"], &[]);
        let mut roles: BTreeMap<String, ClusterRole> = [
            aggregating("admin", &[], vec![match_label("to-admin")]),
            aggregating(
                "edit",
                &[("to-admin", "true")],
                vec![match_label("to-edit")],
            ),
            aggregating("view", &[("to-edit", "true")], vec![match_label("to-view")]),
            role(
                "to-edit-rules",
                &[("to-edit", "true")],
                vec![create_pods.clone()],
            ),
            role(
                "to-view-rules",
                &[("to-view", "true")],
                vec![get_pods.clone()],
            ),
        ]
        .into_iter()
        .map(|r| (r.metadata.name.clone().unwrap_or_default(), r))
        .collect();
        let (changed, errors) = aggregate_all(&mut roles);
        assert!(errors.is_empty());
        assert_eq!(
            changed.into_iter().collect::<Vec<_>>(),
            ["admin", "edit", "view"]
        );
        assert_eq!(roles["view"].rules, Some(vec![get_pods.clone()]));
        assert_eq!(
            roles["edit"].rules,
            Some(vec![create_pods.clone(), get_pods.clone()])
        );
        assert_eq!(roles["admin"].rules, Some(vec![create_pods, get_pods]));
        // Settled: another run changes nothing.
        assert!(aggregate_all(&mut roles).0.is_empty());
    }

    #[test]
    fn bad_selector_is_an_error() {
        let bad = aggregating(
            "bad",
            &[],
            vec![LabelSelector {
                match_labels: None,
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "k".to_owned(),
                    operator: "Sometimes".to_owned(),
                    values: None,
                }]),
            }],
        );
        let error = aggregated_rules(&bad, []).unwrap_err();
        assert_eq!(error.role, "bad");
        assert_eq!(error.index, 0);
    }

    #[test]
    fn missing_and_empty_lists_are_the_same_rule() {
        let mut a = resource_rule(&["get"], &[""], &["pods"], &[]);
        let mut b = a.clone();
        a.resource_names = None;
        b.resource_names = Some(Vec::new());
        assert!(same_rule(&a, &b));
        b.verbs.push("list".to_owned());
        assert!(!same_rule(&a, &b));
    }
}
