//! Benchmarks behind `cox bench`. Each one measures our component and, in the same run on
//! the same machine, the baseline it is judged against, and prints both with their ratio:
//! these machines are shared and noisy, so only figures taken side by side compare.

pub mod api;
pub mod cleanup;
pub mod containerd;
pub mod pods;
pub mod runtime;
pub mod services;
pub mod stats;
pub mod store;
