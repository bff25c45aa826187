//! `cox`: Coxswain's single binary. Flags and wiring only; every component lives in its crate.

mod agent;
mod bench;
mod runtime;
mod server;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cox", version, about = "Coxswain: Kubernetes in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once at start; the server's flags are the big variant"
)]
enum Command {
    /// Run the control plane on this machine.
    Server(server::Args),
    /// Measure a component beside its baseline, in the same run.
    Bench(bench::Args),
    /// Run the container runtime alone, serving CRI on `<data-dir>/agent/runtime/cri.sock`.
    Runtime(runtime::Args),
    /// Manage the runtime's images: import archives, list, inspect, remove.
    Images(runtime::ImagesArgs),
    /// A CRI client with crictl's commands.
    Crictl(cox_cri::crictl::Crictl),
    /// One container's shim (started by the runtime, not by hand).
    #[command(hide = true)]
    Shim(runtime::ShimArgs),
    /// The first process of a pod's shared pid namespace (started by the runtime, not by
    /// hand): prints its pid, then reaps orphans.
    #[command(hide = true)]
    Pause,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line (with its causes), never a backtrace: this is what a user reads.
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        // The shim needs no async runtime: it stays small and single-purpose.
        Command::Shim(args) => std::process::exit(runtime::shim(args)),
        Command::Pause => Ok(cox_runtime::pause::run()?),
        Command::Images(args) => runtime::images(args),
        Command::Server(args) => block_on(server::run(args)),
        Command::Bench(args) => block_on(bench::run(args)),
        Command::Runtime(args) => block_on(runtime::run(args)),
        Command::Crictl(args) => block_on(cox_cri::crictl::run(args)),
    }
}

fn block_on(work: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(work);
    // Do not wait for blocking reads that never end (an interactive stream's stdin, say): the
    // work is done, and the process exits now.
    runtime.shutdown_background();
    result
}
