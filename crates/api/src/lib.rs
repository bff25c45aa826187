//! Coxswain's API core: the Kubernetes API's rules as plain functions over data, with no I/O
//! and no async runtime, so each is tested with plain data.
//!
//! - [`registry`]: every built-in resource served, with its names, scope, verbs, subresources
//!   and storage key.
//! - [`defaults`]: upstream's defaults for built-in kinds.
//! - [`labels`], [`fields`]: label and field selectors.
//! - [`managed_fields`]: `metadata.managedFields`, which manager set which fields.
//! - [`validation`]: field errors and the name rules; [`validate`]: per-kind checks.
//! - [`status`]: API errors as `metav1.Status`; [`strict`]: server-side field validation.
//! - [`service`]: Services' defaults and validation.
//! - [`service_account`]: bound ServiceAccount tokens (claims, checks, TokenRequest) and the
//!   pods' `kube-api-access-*` volume.
//! - [`patch`]: JSON patch and merge patch.
//! - [`deletion`]: what a DELETE does: the propagation policy's finalizers, combined with
//!   pods' [`graceful`] deletion; remove now or keep marked.
//! - [`pod_connect`]: the pod subresources handed on to the kubelet (`log`, `exec`, `attach`,
//!   `portforward`): their options, the container, the kubelet's address and URL.
//! - [`proxy`]: the `proxy` subresources of Services, Pods and Nodes: the name, the backend
//!   (a ready endpoint, the Pod's IP), the path, and redirects rewritten under the proxy path.
//! - [`prometheus`]: the text format of the components' `/metrics`.
//! - [`strategic_merge`]: strategic merge patch, from the patch markers in [`schema`].
//! - [`openapi`]: the OpenAPI v2 and v3 documents kubectl reads for apply, validation, explain.
//! - [`protobuf`]: Kubernetes protobuf bodies to JSON, from [`schema`].
//! - [`table`]: server-side printing, the `Table` `kubectl get` shows.
//! - [`rbac`]: RBAC: rules, the authorizer over a snapshot of roles and bindings, aggregated
//!   ClusterRoles, escalation checks, and the default policy.
//! - [`quantity`]: resource quantities as whole units and millis, as the scheduler and the
//!   kubelet read requests and limits.
//! - [`schema`]: the protobuf messages of the built-in API: tags, JSON names, patch markers, kinds.

pub mod conversion;
pub mod defaults;
pub mod deletion;
pub mod fields;
pub mod go_decode;
pub mod go_json;
pub mod graceful;
pub mod json_paths;
pub mod labels;
pub mod managed_fields;
pub mod openapi;
pub mod patch;
pub mod pod_connect;
pub mod prometheus;
pub mod protobuf;
pub mod proxy;
pub mod quantity;
pub mod rbac;
pub mod registry;
pub mod reviews;
pub mod schema;
pub mod service;
pub mod service_account;
pub mod status;
pub mod strategic_merge;
pub mod strict;
pub mod table;
pub mod validate;
pub mod validation;
