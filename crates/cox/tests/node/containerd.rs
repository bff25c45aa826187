//! containerd as a node's runtime: the one implementation lives in `cox_bench::containerd`, which
//! the runtime benchmark uses too.

pub use cox_bench::containerd::*;

/// Pods get their addresses from here (the built-in runtime uses 10.88.0.0/24).
pub const POD_CIDR: &str = "10.89.0.0/24";
