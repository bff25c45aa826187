//! The default ClusterRoles and their rules: API facts (what upstream's roles grant), laid
//! out one role a function-call, in name order.

use k8s_openapi::api::rbac::v1::{AggregationRule, ClusterRole};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{READ, READ_WRITE, Rule, WRITE, metadata, rule, rules};

const CORE: &str = "";
const APPS: &str = "apps";
const AUTHENTICATION: &str = "authentication.k8s.io";
const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTOSCALING: &str = "autoscaling";
const BATCH: &str = "batch";
const CERTIFICATES: &str = "certificates.k8s.io";
const COORDINATION: &str = "coordination.k8s.io";
const DISCOVERY: &str = "discovery.k8s.io";
const EVENTS: &str = "events.k8s.io";
const EXTENSIONS: &str = "extensions";
const NETWORKING: &str = "networking.k8s.io";
const NODE: &str = "node.k8s.io";
const POLICY: &str = "policy";
const RBAC: &str = "rbac.authorization.k8s.io";
const STORAGE: &str = "storage.k8s.io";

/// The labels that feed `admin`, `edit` and `view`.
const TO_ADMIN: (&str, &str) = ("rbac.authorization.k8s.io/aggregate-to-admin", "true");
const TO_EDIT: (&str, &str) = ("rbac.authorization.k8s.io/aggregate-to-edit", "true");
const TO_VIEW: (&str, &str) = ("rbac.authorization.k8s.io/aggregate-to-view", "true");

fn role(name: &str, role_rules: Vec<Rule>) -> ClusterRole {
    labelled(name, &[], role_rules)
}

fn labelled(name: &str, labels: &[(&str, &str)], role_rules: Vec<Rule>) -> ClusterRole {
    ClusterRole {
        metadata: metadata(None, name, labels),
        rules: rules(role_rules),
        aggregation_rule: None,
    }
}

/// A role whose rules are those of the roles carrying `gathers`; it starts without rules
/// (the aggregation fills them in).
fn aggregated(name: &str, labels: &[(&str, &str)], gathers: (&str, &str)) -> ClusterRole {
    ClusterRole {
        metadata: metadata(None, name, labels),
        rules: None,
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: Some(vec![LabelSelector {
                match_labels: Some([(gathers.0.to_owned(), gathers.1.to_owned())].into()),
                match_expressions: None,
            }]),
        }),
    }
}

/// `create`, `update` and `patch` of events in both event groups.
fn events() -> Rule {
    rule(&["create", "update", "patch"])
        .groups(&[CORE, EVENTS])
        .resources(&["events"])
}

/// Approving CSRs for one signer.
fn approver(signer: &str) -> Rule {
    rule(&["approve"])
        .groups(&[CERTIFICATES])
        .resources(&["signers"])
        .names(&[signer])
}

/// The default ClusterRoles, as created (the aggregated ones without rules).
pub fn cluster_roles() -> Vec<ClusterRole> {
    vec![
        aggregated("admin", &[], TO_ADMIN),
        role(
            "cluster-admin",
            vec![
                rule(&["*"]).groups(&["*"]).resources(&["*"]),
                rule(&["*"]).urls(&["*"]),
            ],
        ),
        aggregated("edit", &[TO_ADMIN], TO_EDIT),
        aggregate_to_admin(),
        aggregate_to_edit(),
        aggregate_to_view(),
        role(
            "system:auth-delegator",
            vec![
                rule(&["create"])
                    .groups(&[AUTHENTICATION])
                    .resources(&["tokenreviews"]),
                rule(&["create"])
                    .groups(&[AUTHORIZATION])
                    .resources(&["subjectaccessreviews"]),
            ],
        ),
        role(
            "system:basic-user",
            vec![
                rule(&["create"])
                    .groups(&[AUTHORIZATION])
                    .resources(&["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                rule(&["create"])
                    .groups(&[AUTHENTICATION])
                    .resources(&["selfsubjectreviews"]),
            ],
        ),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![
                rule(&["create"])
                    .groups(&[CERTIFICATES])
                    .resources(&["certificatesigningrequests/nodeclient"]),
            ],
        ),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![
                rule(&["create"])
                    .groups(&[CERTIFICATES])
                    .resources(&["certificatesigningrequests/selfnodeclient"]),
            ],
        ),
        role(
            "system:certificates.k8s.io:kube-apiserver-client-approver",
            vec![approver("kubernetes.io/kube-apiserver-client")],
        ),
        role(
            "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
            vec![approver("kubernetes.io/kube-apiserver-client-kubelet")],
        ),
        role(
            "system:certificates.k8s.io:kubelet-serving-approver",
            vec![approver("kubernetes.io/kubelet-serving")],
        ),
        role(
            "system:certificates.k8s.io:legacy-unknown-approver",
            vec![approver("kubernetes.io/legacy-unknown")],
        ),
        role(
            "system:discovery",
            vec![rule(&["get"]).urls(&[
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ])],
        ),
        role(
            "system:heapster",
            vec![
                rule(READ)
                    .groups(&[CORE])
                    .resources(&["events", "namespaces", "nodes", "pods"]),
                rule(READ).groups(&[EXTENSIONS]).resources(&["deployments"]),
            ],
        ),
        role(
            "system:kube-aggregator",
            vec![
                rule(READ)
                    .groups(&[CORE])
                    .resources(&["endpoints", "services"]),
            ],
        ),
        kube_controller_manager(),
        role(
            "system:kube-dns",
            vec![
                rule(&["list", "watch"])
                    .groups(&[CORE])
                    .resources(&["endpoints", "services"]),
            ],
        ),
        kube_scheduler(),
        role(
            "system:kubelet-api-admin",
            vec![
                rule(READ).groups(&[CORE]).resources(&["nodes"]),
                rule(&["proxy"]).groups(&[CORE]).resources(&["nodes"]),
                rule(&["*"]).groups(&[CORE]).resources(&[
                    "nodes/log",
                    "nodes/metrics",
                    "nodes/proxy",
                    "nodes/stats",
                ]),
            ],
        ),
        role(
            "system:monitoring",
            vec![rule(&["get"]).urls(&[
                "/healthz",
                "/healthz/*",
                "/livez",
                "/livez/*",
                "/metrics",
                "/metrics/slis",
                "/readyz",
                "/readyz/*",
            ])],
        ),
        node(),
        role(
            "system:node-bootstrapper",
            vec![
                rule(&["create", "get", "list", "watch"])
                    .groups(&[CERTIFICATES])
                    .resources(&["certificatesigningrequests"]),
            ],
        ),
        role(
            "system:node-problem-detector",
            vec![
                rule(&["get"]).groups(&[CORE]).resources(&["nodes"]),
                rule(&["patch"])
                    .groups(&[CORE])
                    .resources(&["nodes/status"]),
                events(),
            ],
        ),
        role(
            "system:node-proxier",
            vec![
                rule(&["list", "watch"])
                    .groups(&[CORE])
                    .resources(&["endpoints", "services"]),
                rule(READ).groups(&[CORE]).resources(&["nodes"]),
                events(),
                rule(&["list", "watch"])
                    .groups(&[DISCOVERY])
                    .resources(&["endpointslices"]),
            ],
        ),
        role(
            "system:persistent-volume-provisioner",
            vec![
                rule(&["create", "delete", "get", "list", "watch"])
                    .groups(&[CORE])
                    .resources(&["persistentvolumes"]),
                rule(&["get", "list", "update", "watch"])
                    .groups(&[CORE])
                    .resources(&["persistentvolumeclaims"]),
                rule(READ).groups(&[STORAGE]).resources(&["storageclasses"]),
                rule(&["watch"]).groups(&[CORE]).resources(&["events"]),
                events(),
            ],
        ),
        role(
            "system:public-info-viewer",
            vec![rule(&["get"]).urls(&["/healthz", "/livez", "/readyz", "/version", "/version/"])],
        ),
        role(
            "system:service-account-issuer-discovery",
            vec![rule(&["get"]).urls(&["/.well-known/openid-configuration", "/openid/v1/jwks"])],
        ),
        role(
            "system:volume-scheduler",
            vec![
                rule(&["get", "list", "patch", "update", "watch"])
                    .groups(&[CORE])
                    .resources(&["persistentvolumes"]),
                rule(READ).groups(&[STORAGE]).resources(&["storageclasses"]),
                rule(&["get", "list", "patch", "update", "watch"])
                    .groups(&[CORE])
                    .resources(&["persistentvolumeclaims"]),
            ],
        ),
        aggregated("view", &[TO_EDIT], TO_VIEW),
    ]
}

/// What `admin` has beyond `edit`: managing Roles and RoleBindings in the namespace.
fn aggregate_to_admin() -> ClusterRole {
    labelled(
        "system:aggregate-to-admin",
        &[TO_ADMIN],
        vec![
            rule(&["create"])
                .groups(&[AUTHORIZATION])
                .resources(&["localsubjectaccessreviews"]),
            rule(READ_WRITE)
                .groups(&[RBAC])
                .resources(&["rolebindings", "roles"]),
        ],
    )
}

/// What `edit` has beyond `view`: writing workloads and their configuration, secrets
/// included, and reaching into pods; not quotas, limits, or Roles.
fn aggregate_to_edit() -> ClusterRole {
    labelled(
        "system:aggregate-to-edit",
        &[TO_EDIT],
        vec![
            rule(READ).groups(&[CORE]).resources(&[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ]),
            rule(&["impersonate"])
                .groups(&[CORE])
                .resources(&["serviceaccounts"]),
            rule(WRITE).groups(&[CORE]).resources(&[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ]),
            rule(&["create"])
                .groups(&[CORE])
                .resources(&["pods/eviction"]),
            rule(WRITE).groups(&[CORE]).resources(&[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ]),
            rule(&["create"])
                .groups(&[CORE])
                .resources(&["serviceaccounts/token"]),
            rule(WRITE).groups(&[APPS]).resources(&[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ]),
            rule(WRITE)
                .groups(&[AUTOSCALING])
                .resources(&["horizontalpodautoscalers"]),
            rule(WRITE)
                .groups(&[BATCH])
                .resources(&["cronjobs", "jobs"]),
            rule(WRITE).groups(&[EXTENSIONS]).resources(&[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "ingresses",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
            ]),
            rule(WRITE)
                .groups(&[POLICY])
                .resources(&["poddisruptionbudgets"]),
            rule(WRITE)
                .groups(&[NETWORKING])
                .resources(&["ingresses", "networkpolicies"]),
            rule(READ_WRITE)
                .groups(&[COORDINATION])
                .resources(&["leases"]),
        ],
    )
}

/// `view`: reading what a namespace runs, without secrets (or anything that leads to them).
fn aggregate_to_view() -> ClusterRole {
    labelled(
        "system:aggregate-to-view",
        &[TO_VIEW],
        vec![
            rule(READ).groups(&[CORE]).resources(&[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ]),
            rule(READ).groups(&[CORE]).resources(&[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ]),
            // Reading namespaces in a namespace is reading that one: how users learn which
            // namespaces they may see.
            rule(READ).groups(&[CORE]).resources(&["namespaces"]),
            rule(READ)
                .groups(&[DISCOVERY])
                .resources(&["endpointslices"]),
            rule(READ).groups(&[APPS]).resources(&[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ]),
            rule(READ).groups(&[AUTOSCALING]).resources(&[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ]),
            rule(READ).groups(&[BATCH]).resources(&[
                "cronjobs",
                "cronjobs/status",
                "jobs",
                "jobs/status",
            ]),
            rule(READ).groups(&[EXTENSIONS]).resources(&[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
            ]),
            rule(READ)
                .groups(&[POLICY])
                .resources(&["poddisruptionbudgets", "poddisruptionbudgets/status"]),
            rule(READ).groups(&[NETWORKING]).resources(&[
                "ingresses",
                "ingresses/status",
                "networkpolicies",
            ]),
        ],
    )
}

/// The controller manager's own identity: enough to start its informers (list and watch of
/// everything), hold its Lease, and mint the service accounts and tokens the controllers
/// run as upstream.
fn kube_controller_manager() -> ClusterRole {
    role(
        "system:kube-controller-manager",
        vec![
            events(),
            rule(&["create"])
                .groups(&[COORDINATION])
                .resources(&["leases"]),
            rule(&["get", "update"])
                .groups(&[COORDINATION])
                .resources(&["leases"])
                .names(&["kube-controller-manager"]),
            rule(&["create"])
                .groups(&[CORE])
                .resources(&["secrets", "serviceaccounts"]),
            rule(&["delete"]).groups(&[CORE]).resources(&["secrets"]),
            rule(&["get"]).groups(&[CORE]).resources(&[
                "configmaps",
                "namespaces",
                "secrets",
                "serviceaccounts",
            ]),
            rule(&["update"])
                .groups(&[CORE])
                .resources(&["secrets", "serviceaccounts"]),
            rule(&["create"])
                .groups(&[AUTHENTICATION])
                .resources(&["tokenreviews"]),
            rule(&["create"])
                .groups(&[AUTHORIZATION])
                .resources(&["subjectaccessreviews"]),
            rule(&["list", "watch"]).groups(&["*"]).resources(&["*"]),
            rule(&["create"])
                .groups(&[CORE])
                .resources(&["serviceaccounts/token"]),
        ],
    )
}

/// What the scheduler reads to place pods, and the binding it writes.
fn kube_scheduler() -> ClusterRole {
    role(
        "system:kube-scheduler",
        vec![
            events(),
            rule(&["create"])
                .groups(&[COORDINATION])
                .resources(&["leases"]),
            rule(&["get", "update"])
                .groups(&[COORDINATION])
                .resources(&["leases"])
                .names(&["kube-scheduler"]),
            rule(READ).groups(&[CORE]).resources(&["nodes"]),
            rule(&["delete", "get", "list", "watch"])
                .groups(&[CORE])
                .resources(&["pods"]),
            rule(&["create"])
                .groups(&[CORE])
                .resources(&["bindings", "pods/binding"]),
            rule(&["patch", "update"])
                .groups(&[CORE])
                .resources(&["pods/status"]),
            rule(READ)
                .groups(&[CORE])
                .resources(&["replicationcontrollers", "services"]),
            rule(READ)
                .groups(&[APPS, EXTENSIONS])
                .resources(&["replicasets"]),
            rule(READ).groups(&[APPS]).resources(&["statefulsets"]),
            rule(READ)
                .groups(&[POLICY])
                .resources(&["poddisruptionbudgets"]),
            rule(READ)
                .groups(&[CORE])
                .resources(&["persistentvolumeclaims", "persistentvolumes"]),
            rule(&["create"])
                .groups(&[AUTHENTICATION])
                .resources(&["tokenreviews"]),
            rule(&["create"])
                .groups(&[AUTHORIZATION])
                .resources(&["subjectaccessreviews"]),
            rule(READ).groups(&[STORAGE]).resources(&["csinodes"]),
            rule(READ).groups(&[CORE]).resources(&["namespaces"]),
            rule(READ).groups(&[STORAGE]).resources(&["csidrivers"]),
            rule(READ)
                .groups(&[STORAGE])
                .resources(&["csistoragecapacities"]),
        ],
    )
}

/// What a kubelet needs: register and update its Node, read the pods and what they mount,
/// write pod status and events, hold its Lease, and ask for certificates and tokens.
fn node() -> ClusterRole {
    role(
        "system:node",
        vec![
            rule(&["create"])
                .groups(&[AUTHENTICATION])
                .resources(&["tokenreviews"]),
            rule(&["create"])
                .groups(&[AUTHORIZATION])
                .resources(&["localsubjectaccessreviews", "subjectaccessreviews"]),
            rule(READ).groups(&[CORE]).resources(&["services"]),
            rule(&["create", "get", "list", "watch"])
                .groups(&[CORE])
                .resources(&["nodes"]),
            rule(&["patch", "update"])
                .groups(&[CORE])
                .resources(&["nodes/status"]),
            rule(&["patch", "update"])
                .groups(&[CORE])
                .resources(&["nodes"]),
            rule(&["create", "patch", "update"])
                .groups(&[CORE])
                .resources(&["events"]),
            rule(READ).groups(&[CORE]).resources(&["pods"]),
            // Mirror pods of static pods.
            rule(&["create", "delete"])
                .groups(&[CORE])
                .resources(&["pods"]),
            rule(&["patch", "update"])
                .groups(&[CORE])
                .resources(&["pods/status"]),
            rule(&["create"])
                .groups(&[CORE])
                .resources(&["pods/eviction"]),
            rule(READ)
                .groups(&[CORE])
                .resources(&["configmaps", "secrets"]),
            rule(&["get"])
                .groups(&[CORE])
                .resources(&["persistentvolumeclaims", "persistentvolumes"]),
            rule(&["get"]).groups(&[CORE]).resources(&["endpoints"]),
            rule(&["create", "get", "list", "watch"])
                .groups(&[CERTIFICATES])
                .resources(&["certificatesigningrequests"]),
            rule(&["create", "delete", "get", "patch", "update"])
                .groups(&[COORDINATION])
                .resources(&["leases"]),
            rule(&["get"])
                .groups(&[STORAGE])
                .resources(&["volumeattachments"]),
            rule(&["create"])
                .groups(&[CORE])
                .resources(&["serviceaccounts/token"]),
            rule(&["get", "patch", "update"])
                .groups(&[CORE])
                .resources(&["persistentvolumeclaims/status"]),
            rule(READ).groups(&[STORAGE]).resources(&["csidrivers"]),
            rule(&["create", "delete", "get", "patch", "update"])
                .groups(&[STORAGE])
                .resources(&["csinodes"]),
            rule(READ).groups(&[NODE]).resources(&["runtimeclasses"]),
        ],
    )
}
