//! Role-based access control as upstream's RBAC authorizer decides it, as plain functions over
//! the `rbac.authorization.k8s.io/v1` objects (k8s-openapi's types), with no I/O: the API
//! server keeps a [`Policy`] snapshot up to date from its watches and asks it.
//!
//! - [`attributes`]: what is judged: the user, the verb, and a resource or a plain path.
//! - [`rules`]: whether one `PolicyRule` allows a request (wildcards, subresources, names,
//!   non-resource URLs).
//! - [`authorize`]: [`Policy`], the snapshot of roles and bindings, and its [`Decision`]s.
//! - [`aggregation`]: the rules of aggregated ClusterRoles (`admin`, `edit`, `view`).
//! - [`escalation`]: nobody grants what they do not hold: coverage of rules, the checks of
//!   role and binding writes, and their Forbidden errors.
//! - [`bootstrap`]: the default roles and bindings a server creates at start.

pub mod aggregation;
pub mod attributes;
pub mod authorize;
pub mod bootstrap;
pub mod escalation;
pub mod rules;

pub use aggregation::{AggregationError, aggregate_all, aggregated_rules};
pub use attributes::{Attributes, ResourceAttributes, Target, UserInfo};
pub use authorize::{Decision, Policy, service_account_user, subject_matches};
pub use escalation::{covers, escalation_allowed};
pub use rules::{rule_allows, rules_allow};
