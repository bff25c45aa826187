//! Coxswain's container runtime: the CRI implemented on runc, overlayfs and CNI.
//!
//! - [`images`]: references, the on-disk image store, archive import, registry pulls.
//! - [`runtime`]: the runtime's state and records; [`sandbox`] and [`container`] its
//!   operations; [`spec`] the OCI spec for a container; [`cni`] pod networking.
//! - [`shim`]: the per-container process (`cox shim`) that owns a container's stdio and exit.
//! - [`events`]: container events (`GetContainerEvents`) and how exits are noticed.
//! - [`service`] and [`server`]: the CRI gRPC services on a unix socket.

pub mod attach;
pub mod cgroups;
pub mod cni;
pub mod container;
pub mod digest;
pub mod events;
pub mod images;
pub mod logs;
pub mod pause;
pub mod pull;
pub mod runtime;
pub mod sandbox;
pub mod server;
pub mod service;
pub mod shim;
pub mod spec;
pub mod streaming;
pub mod teardown;

pub use runtime::{Runtime, RuntimeConfig, RuntimeError};
