//! `stats` and `statsp`: resource usage of containers and pods. The CPU percentage is the
//! usage between two samples `--seconds` apart, as crictl computes it.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;

use super::inspect::{self, ListFormat};
use super::output::{self, Table};
use super::session::Session;
use super::{filters, lookup, protojson};
use crate::v1::{
    ContainerStats, ContainerStatsFilter, CpuUsage, ListContainerStatsRequest,
    ListContainerStatsResponse, ListPodSandboxStatsRequest, ListPodSandboxStatsResponse,
    MemoryUsage, PodSandboxStats, PodSandboxStatsFilter,
};

/// How often `--watch` refreshes, as crictl.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// `cox crictl stats`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatsArgs {
    /// Only this container (ID or unique prefix); the same as --id
    #[arg(value_name = "ID")]
    container: Option<String>,
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Filter by container ID (or a unique prefix of it)
    #[arg(long)]
    id: Option<String>,
    /// Filter by pod ID (or a unique prefix of it)
    #[arg(short, long)]
    pod: Option<String>,
    /// Filter by key=value label
    #[arg(long)]
    label: Vec<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    output: ListFormat,
    /// Sample duration for CPU usage in seconds
    #[arg(short, long, default_value_t = 1)]
    seconds: u64,
    /// Watch resources
    #[arg(short, long)]
    watch: bool,
}

/// `cox crictl statsp`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatspArgs {
    /// Only this pod (ID or unique prefix); the same as --id
    #[arg(value_name = "ID")]
    pod: Option<String>,
    /// Filter by pod ID (or a unique prefix of it)
    #[arg(long)]
    id: Option<String>,
    /// Filter by key=value label
    #[arg(long)]
    label: Vec<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    output: ListFormat,
    /// Sample duration for CPU usage in seconds
    #[arg(short, long, default_value_t = 1)]
    seconds: u64,
    /// Watch pod resources
    #[arg(short, long)]
    watch: bool,
}

fn value(usage: Option<&crate::v1::UInt64Value>) -> u64 {
    usage.map_or(0, |usage| usage.value)
}

/// A CPU sample: when, and the CPU time used so far in nanoseconds.
#[derive(Debug, Clone, Copy, Default)]
struct CpuSample {
    timestamp: i64,
    used: u64,
}

fn cpu_sample(cpu: Option<&CpuUsage>) -> CpuSample {
    cpu.map_or_else(CpuSample::default, |cpu| CpuSample {
        timestamp: cpu.timestamp,
        used: value(cpu.usage_core_nano_seconds.as_ref()),
    })
}

/// CPU use between two samples in percent of one core; zero for a container not running.
fn cpu_percent(old: CpuSample, new: CpuSample) -> anyhow::Result<f64> {
    if new.used == 0 {
        return Ok(0.0);
    }
    let elapsed = new.timestamp.saturating_sub(old.timestamp);
    if elapsed == 0 {
        anyhow::bail!("cpu stat is not updated during sample");
    }
    Ok(new.used.saturating_sub(old.used) as f64 / elapsed as f64 * 100.0)
}

fn working_set(memory: Option<&MemoryUsage>) -> u64 {
    value(memory.and_then(|memory| memory.working_set_bytes.as_ref()))
}

/// The `stats` table from two samples. Containers without CPU and memory use (not running)
/// are left out unless `all`; containers new in the second sample are left out.
pub(crate) fn container_stats_table(
    old: &[ContainerStats],
    new: &[ContainerStats],
    all: bool,
) -> anyhow::Result<String> {
    let before: HashMap<&str, &ContainerStats> = old
        .iter()
        .filter_map(|stats| Some((stats.attributes.as_ref()?.id.as_str(), stats)))
        .collect();
    let mut table = Table::new();
    table.row([
        "CONTAINER",
        "NAME",
        "CPU %",
        "MEM",
        "DISK",
        "INODES",
        "SWAP",
    ]);
    for stats in new {
        let attributes = stats.attributes.clone().unwrap_or_default();
        let cpu = value(
            stats
                .cpu
                .as_ref()
                .and_then(|cpu| cpu.usage_core_nano_seconds.as_ref()),
        );
        let memory = working_set(stats.memory.as_ref());
        if !all && cpu == 0 && memory == 0 {
            continue;
        }
        let Some(old) = before.get(attributes.id.as_str()) else {
            continue;
        };
        let percent = cpu_percent(cpu_sample(old.cpu.as_ref()), cpu_sample(stats.cpu.as_ref()))?;
        let layer = stats.writable_layer.as_ref();
        let disk = value(layer.and_then(|layer| layer.used_bytes.as_ref()));
        let inodes = value(layer.and_then(|layer| layer.inodes_used.as_ref()));
        let swap = value(
            stats
                .swap
                .as_ref()
                .and_then(|swap| swap.swap_usage_bytes.as_ref()),
        );
        table.row([
            output::truncate_id(&attributes.id, ""),
            attributes
                .metadata
                .map(|metadata| metadata.name)
                .unwrap_or_default(),
            format!("{percent:.2}"),
            output::human_size(memory),
            output::human_size(disk),
            inodes.to_string(),
            output::human_size(swap),
        ]);
    }
    Ok(table.render())
}

/// The CPU sample and working set of a pod, from its Linux or Windows stats.
fn pod_usage(stats: &PodSandboxStats) -> anyhow::Result<(CpuSample, u64)> {
    match (&stats.linux, &stats.windows) {
        (Some(_), Some(_)) => anyhow::bail!(
            "pod {:?} has both linux and windows stats which is not supported",
            stats.attributes.as_ref().map_or("", |a| a.id.as_str())
        ),
        (Some(linux), None) => Ok((
            cpu_sample(linux.cpu.as_ref()),
            working_set(linux.memory.as_ref()),
        )),
        (None, Some(windows)) => Ok((
            windows
                .cpu
                .as_ref()
                .map_or_else(CpuSample::default, |cpu| CpuSample {
                    timestamp: cpu.timestamp,
                    used: value(cpu.usage_core_nano_seconds.as_ref()),
                }),
            value(
                windows
                    .memory
                    .as_ref()
                    .and_then(|memory| memory.working_set_bytes.as_ref()),
            ),
        )),
        (None, None) => Ok((CpuSample::default(), 0)),
    }
}

/// The `statsp` table from two samples.
pub(crate) fn pod_stats_table(
    old: &[PodSandboxStats],
    new: &[PodSandboxStats],
) -> anyhow::Result<String> {
    let before: HashMap<&str, &PodSandboxStats> = old
        .iter()
        .filter_map(|stats| Some((stats.attributes.as_ref()?.id.as_str(), stats)))
        .collect();
    let mut table = Table::new();
    table.row(["POD", "POD ID", "CPU %", "MEM"]);
    for stats in new {
        let attributes = stats.attributes.clone().unwrap_or_default();
        let (cpu, memory) = pod_usage(stats)?;
        if cpu.used == 0 && memory == 0 {
            continue;
        }
        let Some(old) = before.get(attributes.id.as_str()) else {
            continue;
        };
        let (old_cpu, _) = pod_usage(old)?;
        let percent = cpu_percent(old_cpu, cpu)?;
        table.row([
            attributes
                .metadata
                .map(|metadata| metadata.name)
                .unwrap_or_default(),
            output::truncate_id(&attributes.id, ""),
            format!("{percent:.2}"),
            output::human_size(memory),
        ]);
    }
    Ok(table.render())
}

/// Clears the terminal before a `--watch` refresh.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";

async fn container_stats(
    session: &mut Session,
    filter: &ContainerStatsFilter,
) -> anyhow::Result<Vec<ContainerStats>> {
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    let mut stats = deadline
        .call(
            client.list_container_stats(deadline.request(ListContainerStatsRequest {
                filter: Some(filter.clone()),
            })),
        )
        .await?
        .stats;
    stats.sort_by(|a, b| {
        let id = |s: &ContainerStats| {
            s.attributes
                .as_ref()
                .map(|a| a.id.clone())
                .unwrap_or_default()
        };
        id(a).cmp(&id(b))
    });
    Ok(stats)
}

/// Runs `stats`.
pub(crate) async fn stats(session: &mut Session, args: StatsArgs) -> anyhow::Result<()> {
    let id = match args.id.as_deref().or(args.container.as_deref()) {
        Some(prefix) if !prefix.is_empty() => lookup::container_id(session, prefix).await?,
        _ => String::new(),
    };
    let pod = match args.pod.as_deref() {
        Some(prefix) if !prefix.is_empty() => lookup::pod_id(session, prefix).await?,
        _ => String::new(),
    };
    let filter = ContainerStatsFilter {
        id,
        pod_sandbox_id: pod,
        label_selector: filters::parse_labels(&args.label)?,
    };
    let sample = Duration::from_secs(args.seconds);
    let display = async {
        loop {
            let first = container_stats(session, &filter)
                .await
                .context("get container stats")?;
            let text = match args.output {
                ListFormat::Json | ListFormat::Yaml => inspect::render_list(
                    protojson::to_json(&ListContainerStatsResponse { stats: first })?,
                    args.output,
                ),
                ListFormat::Table => {
                    tokio::time::sleep(sample).await;
                    let second = container_stats(session, &filter)
                        .await
                        .context("get container stats")?;
                    container_stats_table(&first, &second, args.all)?
                }
            };
            if args.watch && args.output == ListFormat::Table {
                session.print(CLEAR_SCREEN)?;
            }
            session.print(text)?;
            if !args.watch {
                return anyhow::Ok(());
            }
            tokio::time::sleep(WATCH_INTERVAL).await;
        }
    };
    tokio::select! {
        result = display => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

async fn pod_stats(
    session: &mut Session,
    filter: &PodSandboxStatsFilter,
) -> anyhow::Result<Vec<PodSandboxStats>> {
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    let mut stats = deadline
        .call(
            client.list_pod_sandbox_stats(deadline.request(ListPodSandboxStatsRequest {
                filter: Some(filter.clone()),
            })),
        )
        .await
        .context("list pod sandbox stats")?
        .stats;
    stats.sort_by(|a, b| {
        let id = |s: &PodSandboxStats| {
            s.attributes
                .as_ref()
                .map(|a| a.id.clone())
                .unwrap_or_default()
        };
        id(a).cmp(&id(b))
    });
    Ok(stats)
}

/// Runs `statsp`.
pub(crate) async fn statsp(session: &mut Session, args: StatspArgs) -> anyhow::Result<()> {
    let id = match args.id.as_deref().or(args.pod.as_deref()) {
        Some(prefix) if !prefix.is_empty() => lookup::pod_id(session, prefix).await?,
        _ => String::new(),
    };
    let filter = PodSandboxStatsFilter {
        id,
        label_selector: filters::parse_labels(&args.label)?,
    };
    let sample = Duration::from_secs(args.seconds);
    let display = async {
        loop {
            let first = pod_stats(session, &filter).await.context("get pod stats")?;
            let text = match args.output {
                ListFormat::Json | ListFormat::Yaml => inspect::render_list(
                    protojson::to_json(&ListPodSandboxStatsResponse { stats: first })?,
                    args.output,
                ),
                ListFormat::Table => {
                    tokio::time::sleep(sample).await;
                    let second = pod_stats(session, &filter).await.context("get pod stats")?;
                    pod_stats_table(&first, &second)?
                }
            };
            if args.watch && args.output == ListFormat::Table {
                session.print(CLEAR_SCREEN)?;
            }
            session.print(text)?;
            if !args.watch {
                return anyhow::Ok(());
            }
            tokio::time::sleep(WATCH_INTERVAL).await;
        }
    };
    tokio::select! {
        result = display => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{
        ContainerAttributes, ContainerMetadata, FilesystemUsage, LinuxPodSandboxStats,
        PodSandboxAttributes, PodSandboxMetadata, SwapUsage, UInt64Value,
    };

    const SECOND: i64 = 1_000_000_000;

    fn sample(id: &str, at: i64, cpu_nanos: u64, memory: u64) -> ContainerStats {
        ContainerStats {
            attributes: Some(ContainerAttributes {
                id: id.to_string(),
                metadata: Some(ContainerMetadata {
                    name: format!("{id}-name"),
                    attempt: 0,
                }),
                ..ContainerAttributes::default()
            }),
            cpu: Some(CpuUsage {
                timestamp: at,
                usage_core_nano_seconds: Some(UInt64Value { value: cpu_nanos }),
                usage_nano_cores: None,
            }),
            memory: Some(MemoryUsage {
                timestamp: at,
                working_set_bytes: Some(UInt64Value { value: memory }),
                ..MemoryUsage::default()
            }),
            writable_layer: Some(FilesystemUsage {
                timestamp: at,
                fs_id: None,
                used_bytes: Some(UInt64Value { value: 40_960 }),
                inodes_used: Some(UInt64Value { value: 12 }),
            }),
            swap: Some(SwapUsage {
                timestamp: at,
                swap_available_bytes: None,
                swap_usage_bytes: Some(UInt64Value { value: 0 }),
            }),
        }
    }

    #[test]
    fn container_stats_table_matches_crictl() {
        let old = vec![
            sample("0123456789abcdef", 0, 1_000_000_000, 10_000_000),
            sample("stopped", 0, 0, 0),
        ];
        let new = vec![
            sample("0123456789abcdef", SECOND, 1_250_000_000, 12_345_678),
            sample("stopped", SECOND, 0, 0),
            sample("brand-new", SECOND, 5, 5),
        ];
        let expected = "\
CONTAINER           NAME                    CPU %               MEM                 DISK                INODES              SWAP
0123456789abc       0123456789abcdef-name   25.00               12.35MB             40.96kB             12                  0B
";
        assert_eq!(
            container_stats_table(&old, &new, false).expect("renders"),
            expected
        );
        let all = container_stats_table(&old, &new, true).expect("renders");
        assert!(all.contains("stopped             stopped-name"), "{all}");
        assert!(all.contains("0.00"), "{all}");
        assert!(!all.contains("brand-new"), "{all}");
    }

    #[test]
    fn unchanged_cpu_timestamps_are_an_error() {
        let old = vec![sample("c", SECOND, 10, 1)];
        let new = vec![sample("c", SECOND, 20, 1)];
        let error = container_stats_table(&old, &new, false).expect_err("no progress");
        assert_eq!(error.to_string(), "cpu stat is not updated during sample");
    }

    #[test]
    fn pod_stats_table_matches_crictl() {
        let pod = |at: i64, cpu: u64| PodSandboxStats {
            attributes: Some(PodSandboxAttributes {
                id: "fedcba9876543210".into(),
                metadata: Some(PodSandboxMetadata {
                    name: "web".into(),
                    ..PodSandboxMetadata::default()
                }),
                ..PodSandboxAttributes::default()
            }),
            linux: Some(LinuxPodSandboxStats {
                cpu: Some(CpuUsage {
                    timestamp: at,
                    usage_core_nano_seconds: Some(UInt64Value { value: cpu }),
                    usage_nano_cores: None,
                }),
                memory: Some(MemoryUsage {
                    working_set_bytes: Some(UInt64Value { value: 2_000_000 }),
                    ..MemoryUsage::default()
                }),
                ..LinuxPodSandboxStats::default()
            }),
            windows: None,
        };
        let text =
            pod_stats_table(&[pod(0, 0)], &[pod(2 * SECOND, 1_000_000_000)]).expect("renders");
        let expected = "\
POD                 POD ID              CPU %               MEM
web                 fedcba9876543       50.00               2MB
";
        assert_eq!(text, expected);
    }
}
