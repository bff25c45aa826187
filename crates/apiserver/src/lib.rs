//! Coxswain's API server: the Kubernetes REST API over HTTPS, on the store.
//!
//! - [`tls`]: the cluster CA, serving and admin certificates; [`kubeconfig`]: the admin
//!   kubeconfig.
//! - [`server`]: TLS, HTTP/1.1 and HTTP/2, authentication ([`authn`]), authorization (the
//!   [`server::Authorizer`] trait), routing ([`request`]) and dispatch.
//! - [`discovery`]: legacy and aggregated discovery from `cox_api::registry`.
//! - [`rest`]: get, list, create, update, patch, delete, deletecollection; [`watch`]: watches,
//!   from the [`watch_cache`];
//!   [`objects`]: metadata rules of creates and updates.
//! - [`managed`]: `metadata.managedFields` on creates, updates and patches.
//! - [`scale`]: the `scale` subresource; [`services`]: Service defaults, validation and
//!   address allocation ([`allocator`]).
//! - [`tables`]: `Table` answers (`kubectl get`), printed by `cox_api::table`.
//! - [`bootstrap`]: the default namespaces and the `kubernetes` Service.
//! - [`metrics`]: the `/metrics` endpoint; [`openapi`]: the OpenAPI documents.
//! - [`pod_connect`]: pods' `log`, `exec`, `attach` and `portforward`, proxied to the pod's
//!   kubelet through the [`kubelet`] client.
//! - [`proxy`]: services' and pods' `proxy`, forwarded to a ready endpoint or the pod's IP.

pub mod allocator;
pub mod authn;
pub mod bootstrap;
pub mod discovery;
pub mod http;
pub mod impersonation;
pub mod kubeconfig;
pub mod kubelet;
pub mod managed;
pub mod metrics;
pub mod objects;
pub mod openapi;
pub mod pod_connect;
pub mod proxy;
pub mod rbac;
pub mod request;
pub mod rest;
pub mod reviews;
pub mod sa_tokens;
pub mod scale;
pub mod server;
pub mod services;
pub mod tables;
pub mod tls;
pub mod watch;
pub mod watch_cache;

pub use server::{ApiServer, Config};
