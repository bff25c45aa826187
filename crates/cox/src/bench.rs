//! `cox bench`: the project's benchmarks (crate `cox-bench`).

use std::path::PathBuf;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// The store: SQLite and etcd backends beside raw etcd.
    Store {
        /// Small sizes: checks that the benchmark runs, in seconds; the figures mean little.
        #[arg(long)]
        smoke: bool,
        /// The etcd binary to run for the etcd backend and the baseline.
        #[arg(long, default_value = "etcd")]
        etcd_binary: PathBuf,
        /// Measure only these targets: sqlite, etcd, raw-etcd, raw-etcd-cas.
        #[arg(long, value_delimiter = ',')]
        targets: Vec<String>,
    },
    /// The container runtime: pod start and teardown beside raw runc + CNI and containerd.
    Runtime {
        /// A few pods: checks that the benchmark runs; the figures mean little.
        #[arg(long)]
        smoke: bool,
        /// Where busybox.oci.tar and pause.oci.tar are (`dev/build-images` makes them).
        #[arg(long, default_value = "target/images")]
        images: PathBuf,
        /// Measure only these targets: raw, cox, containerd.
        #[arg(long, value_delimiter = ',')]
        targets: Vec<String>,
    },
    /// Pod start-up through a real single-node cluster (create → Running and → Ready, one
    /// after another and in a burst; a Deployment's rollout) beside the runtime's raw start.
    Pods {
        /// A few pods: checks that the benchmark runs; the figures mean little.
        #[arg(long)]
        smoke: bool,
        /// Where busybox.oci.tar and pause.oci.tar are (`dev/build-images` makes them).
        #[arg(long, default_value = "target/images")]
        images: PathBuf,
        /// The `cox` binary to run as the server (default: this one).
        #[arg(long)]
        cox_binary: Option<PathBuf>,
        /// Pods per start-up phase (default: 100; 5 with --smoke).
        #[arg(long)]
        pods: Option<usize>,
        /// The pods' readiness probe period in seconds (default 1; 0: no probe): every
        /// running pod's probe is a `runc exec`, so this sets the load the node carries beside
        /// the starts.
        #[arg(long)]
        probe_period: Option<i32>,
    },
    /// Services: proxy rule programming at 1,000 and 10,000 Services, traffic through a
    /// ClusterIP beside the pod IP, cluster DNS queries beside a UDP echo.
    Services {
        /// Small sizes: checks that the benchmark runs; the figures mean little.
        #[arg(long)]
        smoke: bool,
    },
    /// The API server over HTTPS: creates, gets, lists, watch fan-out, memory.
    Api {
        /// Small sizes: checks that the benchmark runs; the figures mean little.
        #[arg(long)]
        smoke: bool,
    },
}

pub async fn run(args: Args) -> Result<()> {
    match args.what {
        What::Store {
            smoke,
            etcd_binary,
            targets,
        } => {
            let mut config = if smoke {
                cox_bench::store::Config::smoke()
            } else {
                cox_bench::store::Config::full()
            };
            config.etcd_binary = etcd_binary;
            config.only = targets;
            cox_bench::store::run(&config).await?;
        }
        What::Runtime {
            smoke,
            images,
            targets,
        } => {
            let binary = std::env::current_exe()?;
            let mut config = if smoke {
                cox_bench::runtime::Config::smoke(binary, images)
            } else {
                cox_bench::runtime::Config::full(binary, images)
            };
            config.only = targets;
            cox_bench::runtime::run(&config).await?;
        }
        What::Pods {
            smoke,
            images,
            cox_binary,
            pods,
            probe_period,
        } => {
            let binary = match cox_binary {
                Some(binary) => binary,
                None => std::env::current_exe()?,
            };
            let mut config = if smoke {
                cox_bench::pods::Config::smoke(binary, images)
            } else {
                cox_bench::pods::Config::full(binary, images)
            };
            if let Some(pods) = pods {
                config.pods = pods;
                config.in_flight = pods;
            }
            if let Some(period) = probe_period {
                config.probe_period_seconds = period;
            }
            cox_bench::pods::run(&config).await?;
        }
        What::Services { smoke } => {
            let config = if smoke {
                cox_bench::services::Config::smoke()
            } else {
                cox_bench::services::Config::full()
            };
            cox_bench::services::run(&config).await?;
        }
        What::Api { smoke } => {
            let binary = std::env::current_exe()?;
            let config = if smoke {
                cox_bench::api::Config::smoke(binary)
            } else {
                cox_bench::api::Config::full(binary)
            };
            cox_bench::api::run(&config).await?;
        }
    }
    Ok(())
}
