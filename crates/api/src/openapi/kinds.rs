//! The k8s-openapi type behind each kind the documents describe: every kind of the registry's
//! resources and subresources (connect subresources aside: their operations answer plain
//! strings), and the meta kinds operations use. A kind served without a type here would have
//! operations referring to a schema that does not exist; a test holds the two tables together.

use std::borrow::Cow;

use k8s_openapi::api::{
    apps::v1 as apps, authentication::v1 as authentication, authorization::v1 as authorization,
    autoscaling::v1 as autoscaling_v1, autoscaling::v2 as autoscaling_v2, batch::v1 as batch,
    coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
    events::v1 as events, networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::{ListableResource, Resource};
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// A kind and its k8s-openapi type.
#[derive(Debug, Clone, Copy)]
pub(super) struct KindType {
    /// `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The kind of its list, e.g. `PodList`; `None` for kinds without one (`Scale`, `Eviction`).
    pub list_kind: Option<&'static str>,
    /// The schema's name, e.g. `io.k8s.api.core.v1.Pod`.
    pub schema_name: fn() -> Cow<'static, str>,
    /// Adds the kind's schema, and every schema it refers to, to a generator's definitions.
    pub generate: fn(&mut SchemaGenerator) -> Schema,
}

impl KindType {
    const fn of<T: Resource + JsonSchema>() -> KindType {
        KindType {
            group: T::GROUP,
            version: T::VERSION,
            kind: T::KIND,
            list_kind: None,
            schema_name: T::schema_name,
            generate: subschema::<T>,
        }
    }

    const fn listable<T: ListableResource + JsonSchema>() -> KindType {
        KindType {
            list_kind: Some(T::LIST_KIND),
            ..KindType::of::<T>()
        }
    }

    /// The schema's name of the kind's list, e.g. `io.k8s.api.core.v1.PodList`, as upstream
    /// names it.
    pub fn list_schema_name(&self) -> Option<String> {
        self.list_kind
            .map(|_| format!("{}List", (self.schema_name)()))
    }
}

fn subschema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// Every kind with a type, in the registry's order.
pub(super) static KIND_TYPES: &[KindType] = &[
    KindType::of::<core::Binding>(),
    KindType::listable::<core::ComponentStatus>(),
    KindType::listable::<core::ConfigMap>(),
    KindType::listable::<core::Endpoints>(),
    KindType::listable::<core::Event>(),
    KindType::listable::<core::LimitRange>(),
    KindType::listable::<core::Namespace>(),
    KindType::listable::<core::Node>(),
    KindType::listable::<core::PersistentVolumeClaim>(),
    KindType::listable::<core::PersistentVolume>(),
    KindType::listable::<core::Pod>(),
    KindType::listable::<core::PodTemplate>(),
    KindType::listable::<core::ReplicationController>(),
    KindType::listable::<core::ResourceQuota>(),
    KindType::listable::<core::Secret>(),
    KindType::listable::<core::ServiceAccount>(),
    KindType::listable::<core::Service>(),
    KindType::of::<meta::Status>(),
    KindType::listable::<apps::ControllerRevision>(),
    KindType::listable::<apps::DaemonSet>(),
    KindType::listable::<apps::Deployment>(),
    KindType::listable::<apps::ReplicaSet>(),
    KindType::listable::<apps::StatefulSet>(),
    KindType::listable::<events::Event>(),
    KindType::of::<authentication::SelfSubjectReview>(),
    KindType::of::<authentication::TokenReview>(),
    KindType::of::<authorization::LocalSubjectAccessReview>(),
    KindType::of::<authorization::SelfSubjectAccessReview>(),
    KindType::of::<authorization::SelfSubjectRulesReview>(),
    KindType::of::<authorization::SubjectAccessReview>(),
    KindType::listable::<autoscaling_v2::HorizontalPodAutoscaler>(),
    KindType::listable::<autoscaling_v1::HorizontalPodAutoscaler>(),
    KindType::of::<autoscaling_v1::Scale>(),
    KindType::listable::<batch::CronJob>(),
    KindType::listable::<batch::Job>(),
    KindType::listable::<networking::IngressClass>(),
    KindType::listable::<networking::Ingress>(),
    KindType::listable::<networking::NetworkPolicy>(),
    KindType::listable::<policy::PodDisruptionBudget>(),
    KindType::of::<policy::Eviction>(),
    KindType::listable::<rbac::ClusterRoleBinding>(),
    KindType::listable::<rbac::ClusterRole>(),
    KindType::listable::<rbac::RoleBinding>(),
    KindType::listable::<rbac::Role>(),
    KindType::listable::<storage::StorageClass>(),
    KindType::listable::<scheduling::PriorityClass>(),
    KindType::listable::<coordination::Lease>(),
    KindType::listable::<discovery::EndpointSlice>(),
    KindType::of::<authentication::TokenRequest>(),
];

/// The type of `kind` in `group` (`""` for core) at `version`.
pub(super) fn find(group: &str, version: &str, kind: &str) -> Option<&'static KindType> {
    KIND_TYPES
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

/// The schemas that operations use besides the kinds': the body of deletes, watch events, the
/// body of patches, the answer of a group-version's root.
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(super) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(super) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";

/// Adds the schemas named by the constants above to a generator's definitions.
pub(super) fn generate_meta(generator: &mut SchemaGenerator) {
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::WatchEvent<()>>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::APIResourceList>();
}
