//! The cluster DNS: upstream's "Kubernetes DNS-Based Service Discovery" as CoreDNS's
//! `kubernetes` plugin serves it (`pods insecure`, `endpoint_pod_names` off, TTL 5), with
//! every other name forwarded to the node's resolvers.
//!
//! Served from Services and EndpointSlices, in the cluster domain `<domain>`:
//!
//! - `<svc>.<ns>.svc.<domain>`: A/AAAA of the ClusterIPs; for a headless Service, of its
//!   ready endpoints (all of them with `publishNotReadyAddresses`); a CNAME for an
//!   ExternalName Service (its target resolved upstream and added when it lies outside the
//!   cluster domain).
//! - `_<port>._<proto>.<svc>.<ns>.svc.<domain>`: SRV per named port, pointing at the Service
//!   or, headless, at each endpoint, with the targets' addresses in the additional section.
//! - `<hostname or a-b-c-d>.<svc>.<ns>.svc.<domain>`: a headless Service's endpoints.
//! - `<a-b-c-d>.<ns>.pod.<domain>`: the address read from the name, whatever pods exist.
//! - PTR for ClusterIPs and headless endpoints' addresses; other reverse names are forwarded.
//!
//! Other names in the domain get NXDOMAIN, names without the type asked NODATA, both with
//! the zone's SOA. `<ns>.svc.<domain>` exists while the namespace has a Service, and every
//! `<ns>.pod.<domain>` exists (pod names below it always do).
//!
//! Use: [`run`] binds the configured addresses and serves from the cluster's objects;
//! [`Server::bind`] then [`serve_cluster`] does the same in two steps (bind errors first);
//! [`Server::serve`] serves a hand-made [`Zone`] without any API server (tests, benchmarks).
//! [`publish_endpoints`] writes the `kube-dns` Endpoints that point at a node's server.
//!
//! Decisions: the zone ([`Zone`]) is pure data rebuilt whole from the watch caches on change
//! (debounced) and swapped in behind an `Arc`, so a query costs a hash lookup and never
//! waits on the API server; `Zone::answer` has no I/O and is where the rules are tested.
//! Forwarding keeps the client's transport (a truncated UDP answer is passed back for the
//! client to retry over TCP), tries the upstreams in order with 2 s each, and answers
//! SERVFAIL when all fail. Wire format is `hickory-proto`'s; the sockets are our own small
//! loops.

mod build;
mod cluster;
mod endpoints;
mod forward;
mod resolv_conf;
mod server;
mod zone;

pub use cluster::{run, serve_cluster};
pub use endpoints::publish_endpoints;
pub use resolv_conf::upstreams_from_resolv_conf;
pub use server::Server;
pub use zone::{Answer, ClusterDomain, Response, TTL, Zone};

/// The `hickory-proto` this crate speaks (its `Query`, `Name`, `Record` are in the API).
pub use hickory_proto as proto;

use std::net::SocketAddr;

/// Kubernetes' default cluster domain.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// Where and how the cluster DNS serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Each address is served over UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// `cluster.local` unless the cluster says otherwise.
    pub cluster_domain: String,
    /// Resolvers for every name outside the cluster, tried in order (usually
    /// [`upstreams_from_resolv_conf`] of the node's `/etc/resolv.conf`). Any that is one of
    /// the listen addresses is ignored.
    pub upstreams: Vec<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid cluster domain {domain:?}: {reason}")]
    ClusterDomain { domain: String, reason: String },
    #[error("no address to serve DNS on")]
    NoListenAddress,
    #[error("cannot bind {transport} {addr} for DNS: {source}")]
    Bind {
        addr: SocketAddr,
        transport: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the watch of {kind} ended")]
    WatchEnded { kind: &'static str },
}
