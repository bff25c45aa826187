//! Every built-in resource the API serves: its group, version, kind, names, scope, verbs,
//! subresources, and where it is stored. Discovery, routing and storage all read this one
//! table, so a resource is added in exactly one place.
//!
//! Facts are upstream Kubernetes 1.33's, as its discovery documents report them.

/// A subresource, e.g. `deployments/scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    /// The kind answered; group and version empty when they are the parent's.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One resource in one group-version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// The key segment after `/registry/` (upstream's etcd layout); versions of one resource
    /// share it.
    pub storage: &'static str,
}

impl Resource {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The store key of one object, or (with `name` empty) the prefix of a namespace's or the
    /// whole resource's objects.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) if name.is_empty() => format!("/registry/{}/{ns}/", self.storage),
            (true, Some(ns)) => format!("/registry/{}/{ns}/{name}", self.storage),
            (_, _) if name.is_empty() => format!("/registry/{}/", self.storage),
            (_, _) => format!("/registry/{}/{name}", self.storage),
        }
    }

    /// True for resources with an object in the store (not `bindings`, `componentstatuses`).
    pub fn is_stored(&self) -> bool {
        !self.storage.is_empty()
    }
}

const ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const GPU: &[&str] = &["get", "patch", "update"];
const PROXY: &[&str] = &["create", "delete", "get", "patch", "update"];
const CONNECT: &[&str] = &["create", "get"];
const CATEGORY_ALL: &[&str] = &["all"];

const fn status(kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        group: "",
        version: "",
        kind,
        verbs: GPU,
    }
}

const SCALE: Subresource = Subresource {
    name: "scale",
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
    verbs: GPU,
};

const fn sub(
    name: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        group: "",
        version: "",
        kind,
        verbs,
    }
}

/// A resource with every verb, no short names, categories or subresources, stored under its
/// plural; the fields that differ are set with struct update syntax.
const fn plain(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> Resource {
    Resource {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short_names: &[],
        categories: &[],
        verbs: ALL,
        subresources: &[],
        storage: plural,
    }
}

/// A review: created to be answered, never stored (`storage` empty).
const fn review(
    group: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> Resource {
    let singular = plural;
    Resource {
        verbs: &["create"],
        storage: "",
        ..plain(group, "v1", plural, singular, kind, namespaced)
    }
}

/// Every resource served, in discovery order: groups in upstream's priority order, resources
/// alphabetical within a group-version.
pub static RESOURCES: &[Resource] = &[
    // core/v1
    Resource {
        verbs: &["create"],
        storage: "",
        ..plain("", "v1", "bindings", "binding", "Binding", true)
    },
    Resource {
        short_names: &["cs"],
        verbs: &["get", "list"],
        storage: "",
        ..plain(
            "",
            "v1",
            "componentstatuses",
            "componentstatus",
            "ComponentStatus",
            false,
        )
    },
    Resource {
        short_names: &["cm"],
        ..plain("", "v1", "configmaps", "configmap", "ConfigMap", true)
    },
    Resource {
        short_names: &["ep"],
        storage: "services/endpoints",
        ..plain("", "v1", "endpoints", "endpoints", "Endpoints", true)
    },
    Resource {
        short_names: &["ev"],
        ..plain("", "v1", "events", "event", "Event", true)
    },
    Resource {
        short_names: &["limits"],
        ..plain("", "v1", "limitranges", "limitrange", "LimitRange", true)
    },
    Resource {
        short_names: &["ns"],
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        subresources: &[
            sub("finalize", "Namespace", &["update"]),
            status("Namespace"),
        ],
        ..plain("", "v1", "namespaces", "namespace", "Namespace", false)
    },
    Resource {
        short_names: &["no"],
        subresources: &[sub("proxy", "NodeProxyOptions", PROXY), status("Node")],
        storage: "minions",
        ..plain("", "v1", "nodes", "node", "Node", false)
    },
    Resource {
        short_names: &["pvc"],
        subresources: &[status("PersistentVolumeClaim")],
        ..plain(
            "",
            "v1",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            "PersistentVolumeClaim",
            true,
        )
    },
    Resource {
        short_names: &["pv"],
        subresources: &[status("PersistentVolume")],
        ..plain(
            "",
            "v1",
            "persistentvolumes",
            "persistentvolume",
            "PersistentVolume",
            false,
        )
    },
    Resource {
        short_names: &["po"],
        categories: CATEGORY_ALL,
        subresources: &[
            sub("attach", "PodAttachOptions", CONNECT),
            sub("binding", "Binding", &["create"]),
            sub("ephemeralcontainers", "Pod", GPU),
            Subresource {
                name: "eviction",
                group: "policy",
                version: "v1",
                kind: "Eviction",
                verbs: &["create"],
            },
            sub("exec", "PodExecOptions", CONNECT),
            sub("log", "Pod", &["get"]),
            sub("portforward", "PodPortForwardOptions", CONNECT),
            sub("proxy", "PodProxyOptions", PROXY),
            sub("resize", "Pod", GPU),
            status("Pod"),
        ],
        ..plain("", "v1", "pods", "pod", "Pod", true)
    },
    plain("", "v1", "podtemplates", "podtemplate", "PodTemplate", true),
    Resource {
        short_names: &["rc"],
        categories: CATEGORY_ALL,
        subresources: &[SCALE, status("ReplicationController")],
        storage: "controllers",
        ..plain(
            "",
            "v1",
            "replicationcontrollers",
            "replicationcontroller",
            "ReplicationController",
            true,
        )
    },
    Resource {
        short_names: &["quota"],
        subresources: &[status("ResourceQuota")],
        ..plain(
            "",
            "v1",
            "resourcequotas",
            "resourcequota",
            "ResourceQuota",
            true,
        )
    },
    plain("", "v1", "secrets", "secret", "Secret", true),
    Resource {
        short_names: &["sa"],
        subresources: &[Subresource {
            name: "token",
            group: "authentication.k8s.io",
            version: "v1",
            kind: "TokenRequest",
            verbs: &["create"],
        }],
        ..plain(
            "",
            "v1",
            "serviceaccounts",
            "serviceaccount",
            "ServiceAccount",
            true,
        )
    },
    Resource {
        short_names: &["svc"],
        categories: CATEGORY_ALL,
        subresources: &[
            sub("proxy", "ServiceProxyOptions", PROXY),
            status("Service"),
        ],
        storage: "services/specs",
        ..plain("", "v1", "services", "service", "Service", true)
    },
    // apps/v1
    plain(
        "apps",
        "v1",
        "controllerrevisions",
        "controllerrevision",
        "ControllerRevision",
        true,
    ),
    Resource {
        short_names: &["ds"],
        categories: CATEGORY_ALL,
        subresources: &[status("DaemonSet")],
        ..plain("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true)
    },
    Resource {
        short_names: &["deploy"],
        categories: CATEGORY_ALL,
        subresources: &[SCALE, status("Deployment")],
        ..plain(
            "apps",
            "v1",
            "deployments",
            "deployment",
            "Deployment",
            true,
        )
    },
    Resource {
        short_names: &["rs"],
        categories: CATEGORY_ALL,
        subresources: &[SCALE, status("ReplicaSet")],
        ..plain(
            "apps",
            "v1",
            "replicasets",
            "replicaset",
            "ReplicaSet",
            true,
        )
    },
    Resource {
        short_names: &["sts"],
        categories: CATEGORY_ALL,
        subresources: &[SCALE, status("StatefulSet")],
        ..plain(
            "apps",
            "v1",
            "statefulsets",
            "statefulset",
            "StatefulSet",
            true,
        )
    },
    // events.k8s.io/v1: the same stored events as core/v1.
    Resource {
        short_names: &["ev"],
        ..plain("events.k8s.io", "v1", "events", "event", "Event", true)
    },
    // authentication.k8s.io/v1 and authorization.k8s.io/v1: reviews, answered, never stored
    review(
        "authentication.k8s.io",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    ),
    review(
        "authentication.k8s.io",
        "tokenreviews",
        "TokenReview",
        false,
    ),
    review(
        "authorization.k8s.io",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
    ),
    review(
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
    ),
    review(
        "authorization.k8s.io",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
    ),
    review(
        "authorization.k8s.io",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
    ),
    // autoscaling: v2 preferred; both versions share the stored objects.
    Resource {
        short_names: &["hpa"],
        categories: CATEGORY_ALL,
        subresources: &[status("HorizontalPodAutoscaler")],
        ..plain(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            "HorizontalPodAutoscaler",
            true,
        )
    },
    Resource {
        short_names: &["hpa"],
        categories: CATEGORY_ALL,
        subresources: &[status("HorizontalPodAutoscaler")],
        ..plain(
            "autoscaling",
            "v1",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            "HorizontalPodAutoscaler",
            true,
        )
    },
    // batch/v1
    Resource {
        short_names: &["cj"],
        categories: CATEGORY_ALL,
        subresources: &[status("CronJob")],
        ..plain("batch", "v1", "cronjobs", "cronjob", "CronJob", true)
    },
    Resource {
        categories: CATEGORY_ALL,
        subresources: &[status("Job")],
        ..plain("batch", "v1", "jobs", "job", "Job", true)
    },
    // networking.k8s.io/v1
    plain(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "ingressclass",
        "IngressClass",
        false,
    ),
    Resource {
        short_names: &["ing"],
        subresources: &[status("Ingress")],
        storage: "ingress",
        ..plain(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "ingress",
            "Ingress",
            true,
        )
    },
    Resource {
        short_names: &["netpol"],
        ..plain(
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "networkpolicy",
            "NetworkPolicy",
            true,
        )
    },
    // policy/v1
    Resource {
        short_names: &["pdb"],
        subresources: &[status("PodDisruptionBudget")],
        ..plain(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            "PodDisruptionBudget",
            true,
        )
    },
    // rbac.authorization.k8s.io/v1
    plain(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
    ),
    plain(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
    ),
    plain(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
    ),
    plain(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
    ),
    // storage.k8s.io/v1
    Resource {
        short_names: &["sc"],
        ..plain(
            "storage.k8s.io",
            "v1",
            "storageclasses",
            "storageclass",
            "StorageClass",
            false,
        )
    },
    // scheduling.k8s.io/v1
    Resource {
        short_names: &["pc"],
        ..plain(
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            "priorityclass",
            "PriorityClass",
            false,
        )
    },
    // coordination.k8s.io/v1
    plain(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
    ),
    // discovery.k8s.io/v1
    plain(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
    ),
];

/// The named groups in the order `/apis` lists them, each with its versions, preferred first.
pub static GROUPS: &[(&str, &[&str])] = &[
    ("apps", &["v1"]),
    ("events.k8s.io", &["v1"]),
    ("authentication.k8s.io", &["v1"]),
    ("authorization.k8s.io", &["v1"]),
    ("autoscaling", &["v2", "v1"]),
    ("batch", &["v1"]),
    ("networking.k8s.io", &["v1"]),
    ("policy", &["v1"]),
    ("rbac.authorization.k8s.io", &["v1"]),
    ("storage.k8s.io", &["v1"]),
    ("scheduling.k8s.io", &["v1"]),
    ("coordination.k8s.io", &["v1"]),
    ("discovery.k8s.io", &["v1"]),
];

/// The resource served at `/apis/<group>/<version>/<plural>` (core: group "").
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Every resource of one group-version, in discovery order.
pub fn group_version(group: &str, version: &str) -> impl Iterator<Item = &'static Resource> {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// True when the server serves this group-version.
pub fn serves(group: &str, version: &str) -> bool {
    group_version(group, version).next().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_served_group_version_is_listed_and_every_listed_one_is_served() {
        let listed: BTreeSet<(&str, &str)> = GROUPS
            .iter()
            .flat_map(|(g, versions)| versions.iter().map(move |v| (*g, *v)))
            .chain([("", "v1")])
            .collect();
        let served: BTreeSet<(&str, &str)> =
            RESOURCES.iter().map(|r| (r.group, r.version)).collect();
        assert_eq!(listed, served);
    }

    #[test]
    fn resources_are_unique_and_sorted_within_a_group_version() {
        for (group, versions) in GROUPS.iter().copied().chain([("", &["v1"][..])]) {
            for version in versions {
                let plurals: Vec<&str> = group_version(group, version).map(|r| r.plural).collect();
                let mut sorted = plurals.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(plurals, sorted, "{group}/{version}");
            }
        }
    }

    #[test]
    fn storage_keys_follow_upstream_layout() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(
            pods.key(Some("default"), "web"),
            "/registry/pods/default/web"
        );
        assert_eq!(pods.key(Some("default"), ""), "/registry/pods/default/");
        assert_eq!(pods.key(None, ""), "/registry/pods/");
        let services = find("", "v1", "services").unwrap();
        assert_eq!(
            services.key(Some("ns"), "a"),
            "/registry/services/specs/ns/a"
        );
        let nodes = find("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key(None, "n1"), "/registry/minions/n1");
        let v1 = find("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        let v2 = find("autoscaling", "v2", "horizontalpodautoscalers").unwrap();
        assert_eq!(v1.key(Some("a"), "b"), v2.key(Some("a"), "b"));
        assert!(!find("", "v1", "bindings").unwrap().is_stored());
    }

    #[test]
    fn no_two_stored_resources_of_different_kinds_share_a_prefix() {
        // A prefix of another's would make one resource's list return the other's objects.
        let stored: Vec<&Resource> = RESOURCES.iter().filter(|r| r.is_stored()).collect();
        for a in &stored {
            for b in &stored {
                if a.kind != b.kind {
                    let (pa, pb) = (a.key(None, ""), b.key(None, ""));
                    assert!(!pa.starts_with(&pb), "{pa} is under {pb}");
                }
            }
        }
    }
}
