use std::collections::BTreeSet;

use super::*;
use crate::rbac::attributes::{Attributes, UserInfo};
use crate::rbac::authorize::service_account_user;

const AUTHENTICATED: &str = "system:authenticated";

fn member_of(group: &str) -> UserInfo {
    UserInfo::new("someone", &[group, AUTHENTICATED])
}

fn allowed(policy: &Policy, attributes: Attributes) -> bool {
    policy.authorize(&attributes).is_allowed()
}

/// A policy with a user bound to one ClusterRole in `team`.
fn with_role_in_team(role: &str, user: &str) -> Policy {
    let mut policy = policy();
    policy.insert_role_binding(RoleBinding {
        metadata: ObjectMeta {
            name: Some(format!("{user}-{role}")),
            namespace: Some("team".to_owned()),
            ..ObjectMeta::default()
        },
        role_ref: role_ref("ClusterRole", role),
        subjects: subjects(&[To::User(user)]),
    });
    policy
}

#[test]
fn names_are_unique_and_objects_marked() {
    let names: Vec<String> = cluster_roles()
        .iter()
        .map(|r| r.metadata.name.clone().unwrap_or_default())
        .collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
    for required in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:aggregate-to-admin",
        "system:aggregate-to-edit",
        "system:aggregate-to-view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
        "system:monitoring",
        "system:node",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:node-proxier",
    ] {
        assert!(
            unique.contains(&required.to_owned()),
            "{required} is missing"
        );
    }

    let metas = cluster_roles()
        .into_iter()
        .map(|r| r.metadata)
        .chain(cluster_role_bindings().into_iter().map(|b| b.metadata))
        .chain(roles().into_iter().map(|r| r.metadata))
        .chain(role_bindings().into_iter().map(|b| b.metadata));
    for meta in metas {
        let labels = meta.labels.unwrap_or_default();
        assert_eq!(
            labels.get(BOOTSTRAPPING_LABEL.0).map(String::as_str),
            Some(BOOTSTRAPPING_LABEL.1)
        );
        let annotations = meta.annotations.unwrap_or_default();
        assert_eq!(
            annotations.get(AUTOUPDATE_ANNOTATION).map(String::as_str),
            Some("true")
        );
    }

    // Every binding's role exists.
    let policy = policy();
    for binding in cluster_role_bindings() {
        assert!(
            policy.role_ref_rules(&binding.role_ref, "").is_ok(),
            "{binding:?}"
        );
    }
    for binding in role_bindings() {
        assert!(
            policy
                .role_ref_rules(&binding.role_ref, KUBE_SYSTEM)
                .is_ok(),
            "{binding:?}"
        );
    }
}

#[test]
fn serialized_as_upstream() {
    let view = cluster_roles()
        .into_iter()
        .find(|r| r.metadata.name.as_deref() == Some("view"))
        .map(|r| serde_json::to_value(r).unwrap_or_default());
    assert_eq!(
        view,
        Some(serde_json::json!({
            "aggregationRule": {"clusterRoleSelectors": [
                {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}
            ]},
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
                "labels": {
                    "kubernetes.io/bootstrapping": "rbac-defaults",
                    "rbac.authorization.k8s.io/aggregate-to-edit": "true"
                },
                "name": "view"
            }
        }))
    );
    let discovery = cluster_roles()
        .into_iter()
        .find(|r| r.metadata.name.as_deref() == Some("system:basic-user"))
        .map(|r| serde_json::to_value(r.rules).unwrap_or_default());
    assert_eq!(
        discovery,
        Some(serde_json::json!([
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                "verbs": ["create"]
            },
            {
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["selfsubjectreviews"],
                "verbs": ["create"]
            }
        ]))
    );
}

#[test]
fn masters_may_do_anything() {
    let policy = policy();
    let admin = UserInfo::new("system:admin", &["system:masters", AUTHENTICATED]);
    assert_eq!(
        policy
            .authorize(&Attributes::resource(admin.clone(), "delete", "", "nodes").named("n1"))
            .reason(),
        r#"RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters""#
    );
    assert!(allowed(
        &policy,
        Attributes::resource(admin.clone(), "escalate", "example.com", "widgets")
            .in_namespace("x")
            .subresource("status")
    ));
    assert!(allowed(
        &policy,
        Attributes::non_resource(admin, "post", "/anything/at/all")
    ));
}

#[test]
fn aggregated_roles_are_filled_in() {
    let policy = policy();
    let rules = |name: &str| policy.cluster_roles[name].rules.clone().unwrap_or_default();
    let view = rules("view");
    assert_eq!(view, rules("system:aggregate-to-view"));
    // edit = view's rules (through `view`'s label) and its own; admin = edit's and its own.
    assert_eq!(
        rules("edit").len(),
        rules("system:aggregate-to-edit").len() + view.len()
    );
    assert_eq!(
        rules("admin").len(),
        rules("edit").len() + rules("system:aggregate-to-admin").len()
    );
}

#[test]
fn view_reads_but_not_secrets() {
    let policy = with_role_in_team("view", "vera");
    let vera = UserInfo::new("vera", &[AUTHENTICATED]);
    let request = |verb: &str, group: &str, resource: &str| {
        Attributes::resource(vera.clone(), verb, group, resource).in_namespace("team")
    };
    assert!(allowed(&policy, request("get", "", "pods").named("web")));
    assert!(allowed(&policy, request("list", "apps", "deployments")));
    assert!(allowed(
        &policy,
        request("get", "", "pods").named("web").subresource("log")
    ));
    assert!(!allowed(
        &policy,
        request("get", "", "secrets").named("token")
    ));
    assert!(!allowed(&policy, request("list", "", "secrets")));
    assert!(!allowed(
        &policy,
        request("delete", "", "pods").named("web")
    ));
    assert!(!allowed(
        &policy,
        request("create", "", "pods")
            .named("web")
            .subresource("exec")
    ));
    // Only in the namespace of the binding.
    let elsewhere = Attributes::resource(vera, "get", "", "pods")
        .in_namespace("other")
        .named("web");
    assert!(!allowed(&policy, elsewhere));
}

#[test]
fn edit_writes_workloads_admin_writes_roles() {
    let policy = with_role_in_team("edit", "ed");
    let ed = UserInfo::new("ed", &[AUTHENTICATED]);
    let request = |verb: &str, group: &str, resource: &str| {
        Attributes::resource(ed.clone(), verb, group, resource).in_namespace("team")
    };
    assert!(allowed(&policy, request("create", "apps", "deployments")));
    assert!(allowed(
        &policy,
        request("patch", "apps", "deployments")
            .named("web")
            .subresource("scale")
    ));
    assert!(allowed(
        &policy,
        request("get", "", "secrets").named("token")
    ));
    assert!(allowed(
        &policy,
        request("create", "", "pods")
            .named("web")
            .subresource("exec")
    ));
    assert!(allowed(
        &policy,
        request("get", "apps", "deployments").named("web")
    ));
    assert!(!allowed(
        &policy,
        request("create", "rbac.authorization.k8s.io", "roles")
    ));
    assert!(!allowed(
        &policy,
        request("update", "", "resourcequotas").named("q")
    ));

    let policy = with_role_in_team("admin", "ada");
    let ada = UserInfo::new("ada", &[AUTHENTICATED]);
    let roles = Attributes::resource(ada.clone(), "create", "rbac.authorization.k8s.io", "roles")
        .in_namespace("team");
    assert!(allowed(&policy, roles));
    assert!(allowed(
        &policy,
        Attributes::resource(ada, "delete", "apps", "deployments")
            .in_namespace("team")
            .named("web")
    ));
}

#[test]
fn every_authenticated_user_discovers_and_reviews_itself() {
    let policy = policy();
    let anyone = member_of(AUTHENTICATED);
    for path in [
        "/version",
        "/api",
        "/api/v1",
        "/apis",
        "/apis/apps/v1",
        "/openapi/v3",
        "/healthz",
    ] {
        assert!(
            allowed(
                &policy,
                Attributes::non_resource(anyone.clone(), "get", path)
            ),
            "{path}"
        );
    }
    assert!(!allowed(
        &policy,
        Attributes::non_resource(anyone.clone(), "get", "/metrics")
    ));
    assert!(!allowed(
        &policy,
        Attributes::non_resource(anyone.clone(), "post", "/api")
    ));
    assert_eq!(
        policy
            .authorize(&Attributes::resource(
                anyone.clone(),
                "create",
                "authorization.k8s.io",
                "selfsubjectaccessreviews"
            ))
            .reason(),
        r#"RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user" to Group "system:authenticated""#
    );
    assert!(allowed(
        &policy,
        Attributes::resource(
            anyone.clone(),
            "create",
            "authentication.k8s.io",
            "selfsubjectreviews"
        )
    ));
    assert!(!allowed(
        &policy,
        Attributes::resource(anyone, "list", "", "pods")
    ));

    // The unauthenticated see the public information, and no API.
    let anonymous = UserInfo::new("system:anonymous", &["system:unauthenticated"]);
    assert!(allowed(
        &policy,
        Attributes::non_resource(anonymous.clone(), "get", "/version")
    ));
    assert!(allowed(
        &policy,
        Attributes::non_resource(anonymous.clone(), "get", "/readyz")
    ));
    assert!(!allowed(
        &policy,
        Attributes::non_resource(anonymous, "get", "/api")
    ));
}

#[test]
fn components_have_their_roles() {
    let policy = policy();
    let monitor = member_of("system:monitoring");
    assert!(allowed(
        &policy,
        Attributes::non_resource(monitor.clone(), "get", "/metrics")
    ));
    assert!(allowed(
        &policy,
        Attributes::non_resource(monitor, "get", "/livez/etcd")
    ));

    let scheduler = UserInfo::new("system:kube-scheduler", &[AUTHENTICATED]);
    let bind = Attributes::resource(scheduler.clone(), "create", "", "pods")
        .in_namespace("x")
        .named("web")
        .subresource("binding");
    assert!(allowed(&policy, bind));
    let lease = |name: &str| {
        Attributes::resource(scheduler.clone(), "update", "coordination.k8s.io", "leases")
            .in_namespace(KUBE_SYSTEM)
            .named(name)
    };
    assert!(allowed(&policy, lease("kube-scheduler")));
    assert!(!allowed(
        &policy,
        Attributes::resource(scheduler.clone(), "delete", "", "nodes").named("n")
    ));

    let controllers = UserInfo::new("system:kube-controller-manager", &[AUTHENTICATED]);
    assert!(allowed(
        &policy,
        Attributes::resource(controllers.clone(), "watch", "apps", "replicasets")
    ));
    assert!(allowed(
        &policy,
        Attributes::resource(controllers, "update", "coordination.k8s.io", "leases")
            .in_namespace(KUBE_SYSTEM)
            .named("kube-controller-manager")
    ));

    let proxy = UserInfo::new("system:kube-proxy", &[AUTHENTICATED]);
    assert!(allowed(
        &policy,
        Attributes::resource(proxy.clone(), "watch", "discovery.k8s.io", "endpointslices")
    ));
    assert!(!allowed(
        &policy,
        Attributes::resource(proxy, "list", "", "secrets")
    ));

    let dns = UserInfo::new(
        service_account_user(KUBE_SYSTEM, "kube-dns"),
        &[AUTHENTICATED],
    );
    assert!(allowed(
        &policy,
        Attributes::resource(dns, "watch", "", "services")
    ));

    // system:node is bound to nobody by default (upstream's Node authorizer serves nodes).
    let kubelet = UserInfo::new("system:node:n1", &["system:nodes", AUTHENTICATED]);
    assert!(!allowed(
        &policy,
        Attributes::resource(kubelet.clone(), "get", "", "pods")
    ));
    let mut with_nodes = policy.clone();
    if let Some(binding) = with_nodes.cluster_role_bindings.get_mut("system:node") {
        binding.subjects = subjects(&[To::Group("system:nodes")]);
    }
    assert!(allowed(
        &with_nodes,
        Attributes::resource(kubelet.clone(), "patch", "", "nodes")
            .named("n1")
            .subresource("status")
    ));
    assert!(allowed(
        &with_nodes,
        Attributes::resource(kubelet, "get", "", "secrets")
            .in_namespace("x")
            .named("pull")
    ));
}

#[test]
fn every_default_object_passes_validation() {
    let check = |kind: &str, object: serde_json::Value| {
        let errors = crate::validate::validate("rbac.authorization.k8s.io", kind, &object);
        assert!(
            errors.is_empty(),
            "{kind} {}: {errors:?}",
            object["metadata"]["name"]
        );
    };
    for role in cluster_roles() {
        check("ClusterRole", serde_json::to_value(role).expect("JSON"));
    }
    for role in roles() {
        check("Role", serde_json::to_value(role).expect("JSON"));
    }
    for binding in cluster_role_bindings() {
        check(
            "ClusterRoleBinding",
            serde_json::to_value(binding).expect("JSON"),
        );
    }
    for binding in role_bindings() {
        check("RoleBinding", serde_json::to_value(binding).expect("JSON"));
    }
}
