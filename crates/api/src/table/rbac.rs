//! The RoleBinding and ClusterRoleBinding printers (`rbac.authorization.k8s.io`). Roles and
//! ClusterRoles have no printer upstream: they get the default table.

use serde_json::Value;

use super::cells::{self, items, text};
use super::{AGE, Column, NAME, Printer};

pub(super) const ROLE_BINDING: Printer = Printer::new(ROLE_BINDING_COLUMNS, binding);
pub(super) const CLUSTER_ROLE_BINDING: Printer =
    Printer::new(CLUSTER_ROLE_BINDING_COLUMNS, binding);

const ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Role",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    ),
    AGE,
    Column::string("Users", "Users in the roleBinding").wide(),
    Column::string("Groups", "Groups in the roleBinding").wide(),
    Column::string("ServiceAccounts", "ServiceAccounts in the roleBinding").wide(),
];

const CLUSTER_ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Role",
        "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    ),
    AGE,
    Column::string("Users", "Users in the clusterRoleBinding").wide(),
    Column::string("Groups", "Groups in the clusterRoleBinding").wide(),
    Column::string(
        "ServiceAccounts",
        "ServiceAccounts in the clusterRoleBinding",
    )
    .wide(),
];

/// The role, then the subjects by kind: users, groups, and service accounts as
/// `namespace/name`, each joined with `, `; subjects of other kinds are not shown.
fn binding(object: &Value, now: i64) -> Vec<Value> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in items(object, "/subjects") {
        let name = text(subject, "/name");
        match text(subject, "/kind") {
            "User" => users.push(name.to_owned()),
            "Group" => groups.push(name.to_owned()),
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{name}", text(subject, "/namespace")));
            }
            _ => {}
        }
    }
    cells![
        cells::name(object),
        format!(
            "{}/{}",
            text(object, "/roleRef/kind"),
            text(object, "/roleRef/name")
        ),
        cells::age(object, now),
        users.join(", "),
        groups.join(", "),
        service_accounts.join(", "),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago};
    use serde_json::json;

    #[test]
    fn splits_subjects_by_kind() {
        let object = json!({
            "metadata": {"name": "admins", "creationTimestamp": minutes_ago(60 * 24 * 10)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "admin"},
            "subjects": [
                {"kind": "User", "name": "alice"},
                {"kind": "Group", "name": "system:masters"},
                {"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"},
                {"kind": "User", "name": "bob"},
                {"kind": "Robot", "name": "r2"},
            ],
        });
        let want = json!([
            "admins",
            "ClusterRole/admin",
            "10d",
            "alice, bob",
            "system:masters",
            "ci/deployer"
        ]);
        assert_eq!(Value::from(binding(&object, NOW)), want);
        let empty = json!({"metadata": {"name": "e"}, "roleRef": {"kind": "Role", "name": "r"}});
        assert_eq!(
            Value::from(binding(&empty, NOW)),
            json!(["e", "Role/r", "<unknown>", "", "", ""])
        );
    }
}
