//! Container commands: `ps`, `create`, `start`, `stop`, `rm`, `inspect`, `exec`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::filters::{self, NamePattern};
use super::images::{self, PullAuthArgs};
use super::inspect::{self, ListFormat, StatusFormat};
use super::json::Json;
use super::output::{self, Table};
use super::session::{Deadline, Session};
use super::timestamps::{self, parse_optional_duration};
use super::{CommandExit, lookup, protojson};
use crate::v1::{
    Container, ContainerFilter, ContainerState, ContainerStateValue, ContainerStatus,
    ContainerStatusRequest, ContainerStatusResponse, CreateContainerRequest, ExecSyncRequest,
    ListContainersRequest, ListContainersResponse, RemoveContainerRequest, StartContainerRequest,
    StopContainerRequest,
};

/// The label the kubelet puts the pod's name in.
const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
/// The label the kubelet puts the pod's namespace in.
const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";

/// Filters shared by `ps` and `inspect`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ContainerFilterArgs {
    /// Filter by container name regular expression pattern
    #[arg(long)]
    name: Option<String>,
    /// Filter by pod namespace regular expression pattern
    #[arg(long)]
    namespace: Option<String>,
    /// Filter by pod ID (or a prefix of it)
    #[arg(short, long)]
    pod: Option<String>,
    /// Filter by container image
    #[arg(long)]
    image: Option<String>,
    /// Filter by container state (created, running, exited or unknown)
    #[arg(short, long)]
    state: Option<String>,
    /// Filter by key=value label
    #[arg(long)]
    label: Vec<String>,
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Show the most recently created container (includes all states)
    #[arg(short, long)]
    latest: bool,
    /// Show last n recently created containers (includes all states). Set 0 for unlimited.
    #[arg(short = 'n', long, default_value_t = 0)]
    last: usize,
}

/// `cox crictl ps`.
#[derive(Debug, clap::Args)]
pub(crate) struct PsArgs {
    /// Filter by container ID (or a prefix of it)
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    filter: ContainerFilterArgs,
    /// Show verbose information for containers
    #[arg(short, long)]
    verbose: bool,
    /// Only display container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    output: ListFormat,
    /// Show output without truncating the ID
    #[arg(long)]
    no_trunc: bool,
    /// Show image path instead of image id
    #[arg(short, long)]
    resolve_image_path: bool,
}

/// `cox crictl create`.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// The pod to create the container in: its ID or a unique prefix
    #[arg(value_name = "POD")]
    pod: String,
    /// The container config (JSON)
    #[arg(value_name = "CONTAINER-CONFIG.json")]
    container_config: PathBuf,
    /// The config the pod was created with (JSON)
    #[arg(value_name = "POD-CONFIG.json")]
    pod_config: PathBuf,
    /// Do not pull the image on container creation (the default)
    #[arg(long, conflicts_with = "with_pull")]
    no_pull: bool,
    /// Pull the image on container creation
    #[arg(long)]
    with_pull: bool,
    /// Time to wait for the request to complete before cancelling it (e.g. 30s)
    #[arg(short = 'T', long, value_parser = parse_optional_duration, default_value = "0")]
    cancel_timeout: Duration,
    #[command(flatten)]
    auth: PullAuthArgs,
}

/// `cox crictl start`.
#[derive(Debug, clap::Args)]
pub(crate) struct StartArgs {
    /// The containers: IDs or unique prefixes
    #[arg(value_name = "CONTAINER-ID", required = true)]
    containers: Vec<String>,
}

/// `cox crictl stop`.
#[derive(Debug, clap::Args)]
pub(crate) struct StopArgs {
    /// The containers: IDs or unique prefixes
    #[arg(value_name = "CONTAINER-ID")]
    containers: Vec<String>,
    /// Seconds to wait to kill the container after a graceful stop is requested
    #[arg(short, long, default_value_t = 0)]
    timeout: u32,
    /// Stop all running containers
    #[arg(short, long)]
    all: bool,
}

/// `cox crictl update`: new resource limits for running containers (UpdateContainerResources).
#[derive(Debug, clap::Args)]
pub(crate) struct UpdateArgs {
    /// The containers: IDs or unique prefixes
    #[arg(value_name = "CONTAINER-ID", required = true)]
    containers: Vec<String>,
    /// CPU CFS period, in microseconds
    #[arg(long, default_value_t = 0)]
    cpu_period: i64,
    /// CPU CFS quota, in microseconds
    #[arg(long, default_value_t = 0)]
    cpu_quota: i64,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share", default_value_t = 0)]
    cpu_shares: i64,
    /// CPUs to run on (0-3, 0,1)
    #[arg(long, default_value = "")]
    cpuset_cpus: String,
    /// Memory nodes to use (0-3, 0,1)
    #[arg(long, default_value = "")]
    cpuset_mems: String,
    /// Memory limit, in bytes
    #[arg(long, default_value_t = 0)]
    memory: i64,
}

pub(crate) async fn update(session: &mut Session, args: UpdateArgs) -> anyhow::Result<()> {
    let ids = lookup::container_ids(session, &args.containers).await?;
    let resources = crate::v1::LinuxContainerResources {
        cpu_period: args.cpu_period,
        cpu_quota: args.cpu_quota,
        cpu_shares: args.cpu_shares,
        cpuset_cpus: args.cpuset_cpus,
        cpuset_mems: args.cpuset_mems,
        memory_limit_in_bytes: args.memory,
        ..Default::default()
    };
    for id in ids {
        session
            .runtime()
            .await?
            .update_container_resources(crate::v1::UpdateContainerResourcesRequest {
                container_id: id.clone(),
                linux: Some(resources.clone()),
                ..Default::default()
            })
            .await
            .with_context(|| format!("updating container {id:?}"))?;
        session.print(format!("{id}\n"))?;
    }
    Ok(())
}

/// `cox crictl rm`.
#[derive(Debug, clap::Args)]
pub(crate) struct RmArgs {
    /// The containers: IDs or unique prefixes
    #[arg(value_name = "CONTAINER-ID", required_unless_present = "all")]
    containers: Vec<String>,
    /// Force removal of the container, disregarding if running
    #[arg(short, long)]
    force: bool,
    /// Preserve the container log file and its rotations
    #[arg(short, long)]
    keep_logs: bool,
    /// Remove all containers
    #[arg(short, long)]
    all: bool,
}

/// `cox crictl inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// The containers: IDs or unique prefixes (all matching the filters if none)
    #[arg(value_name = "CONTAINER-ID")]
    containers: Vec<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value = "json")]
    output: StatusFormat,
    /// Do not show verbose information
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    filter: ContainerFilterArgs,
}

/// `cox crictl exec`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExecArgs {
    /// Run the command synchronously (the only way this client runs commands)
    #[arg(short, long)]
    sync: bool,
    /// Timeout in seconds
    #[arg(long, default_value_t = 0)]
    timeout: u32,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Keep STDIN open
    #[arg(short, long)]
    interactive: bool,
    /// The container: its ID or a unique prefix
    #[arg(value_name = "CONTAINER-ID")]
    pub(crate) container: String,
    /// The command and its arguments
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub(crate) command: Vec<String>,
}

fn parse_state(state: Option<&str>) -> anyhow::Result<Option<ContainerState>> {
    match state.map(str::to_lowercase).as_deref() {
        None | Some("") => Ok(None),
        Some("created") => Ok(Some(ContainerState::ContainerCreated)),
        Some("running") => Ok(Some(ContainerState::ContainerRunning)),
        Some("exited") => Ok(Some(ContainerState::ContainerExited)),
        Some("unknown") => Ok(Some(ContainerState::ContainerUnknown)),
        Some(_) => anyhow::bail!("--state should be one of created, running, exited or unknown"),
    }
}

/// The state the runtime is asked to filter by: running only, unless `--all`, `--state`,
/// `--latest` or `--last` say otherwise.
fn state_filter(filter: &ContainerFilterArgs) -> anyhow::Result<Option<ContainerState>> {
    let state = parse_state(filter.state.as_deref())?;
    if filter.latest || filter.last > 0 {
        return Ok(None);
    }
    Ok(match state {
        Some(state) => Some(state),
        None if filter.all => None,
        None => Some(ContainerState::ContainerRunning),
    })
}

fn label<'a>(labels: &'a HashMap<String, String>, key: &str) -> &'a str {
    labels.get(key).map_or("unknown", String::as_str)
}

/// What the client-side filters keep of a listing, newest first.
pub(crate) fn select_containers(
    mut containers: Vec<Container>,
    id_prefix: Option<&str>,
    pod_prefix: Option<&str>,
    name: Option<&NamePattern>,
    namespace: Option<&NamePattern>,
    latest: bool,
    last: usize,
) -> Vec<Container> {
    containers.retain(|container| {
        let Some(metadata) = &container.metadata else {
            return false;
        };
        id_prefix.is_none_or(|prefix| container.id.starts_with(prefix))
            && pod_prefix.is_none_or(|prefix| container.pod_sandbox_id.starts_with(prefix))
            && filters::pattern_matches(name, &metadata.name)
            && filters::pattern_matches(namespace, label(&container.labels, POD_NAMESPACE_LABEL))
    });
    containers.sort_by_key(|container| std::cmp::Reverse(container.created_at));
    let keep = filters::keep_count(containers.len(), latest, last);
    containers.truncate(keep);
    containers
}

fn image_of(container: &Container) -> &str {
    container
        .image
        .as_ref()
        .map_or("", |image| image.image.as_str())
}

/// The containers the runtime lists for `filter`, with ID, pod and image filters applied here.
pub(crate) async fn list_containers(
    session: &mut Session,
    id_prefix: Option<&str>,
    filter: &ContainerFilterArgs,
) -> anyhow::Result<Vec<Container>> {
    let state = state_filter(filter)?;
    let labels = filters::parse_labels(&filter.label)?;
    let name = filters::optional_pattern(filter.name.as_deref())?;
    let namespace = filters::optional_pattern(filter.namespace.as_deref())?;
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    let request = ListContainersRequest {
        filter: Some(ContainerFilter {
            id: String::new(),
            state: state.map(|state| ContainerStateValue {
                state: state as i32,
            }),
            pod_sandbox_id: String::new(),
            label_selector: labels,
        }),
    };
    let mut containers = deadline
        .call(client.list_containers(deadline.request(request)))
        .await
        .map_err(|error| anyhow::anyhow!("call list containers RPC: {error}"))?
        .containers;
    if let Some(image) = filter.image.as_deref().filter(|image| !image.is_empty()) {
        containers = keep_image(session, containers, image).await?;
    }
    Ok(select_containers(
        containers,
        id_prefix.filter(|prefix| !prefix.is_empty()),
        filter.pod.as_deref().filter(|prefix| !prefix.is_empty()),
        name.as_ref(),
        namespace.as_ref(),
        filter.latest,
        filter.last,
    ))
}

/// The containers whose image is `image` (compared by image ID, as crictl does).
async fn keep_image(
    session: &mut Session,
    containers: Vec<Container>,
    image: &str,
) -> anyhow::Result<Vec<Container>> {
    let (wanted, _) = lookup::image_status(session, image, false)
        .await
        .context("check image match")?;
    let Some(wanted) = wanted else {
        return Ok(Vec::new());
    };
    let mut ids: HashMap<String, Option<String>> = HashMap::new();
    let mut kept = Vec::new();
    for container in containers {
        let reference = image_of(&container).to_string();
        if !ids.contains_key(&reference) {
            let (status, _) = lookup::image_status(session, &reference, false)
                .await
                .context("check image match")?;
            ids.insert(reference.clone(), status.map(|image| image.id));
        }
        if ids.get(&reference).and_then(Option::as_deref) == Some(wanted.id.as_str()) {
            kept.push(container);
        }
    }
    Ok(kept)
}

/// Whether `reference` is a digest (`sha256:<64 hex>`), which the kubelet uses as the image of
/// the containers it creates.
pub(crate) fn is_digest(reference: &str) -> bool {
    let Some((algorithm, hex)) = reference.split_once(':') else {
        return false;
    };
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == length
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The image column: a digest is shown as a truncated ID, as crictl does.
fn image_column(image: &str, no_trunc: bool) -> String {
    if !no_trunc
        && is_digest(image)
        && let Some((algorithm, _)) = image.split_once(':')
    {
        return output::truncate_id(image, &format!("{algorithm}:"));
    }
    image.to_string()
}

/// The `ps` table. `images` maps image references to what to show instead (for
/// `--resolve-image-path`).
pub(crate) fn containers_table(
    containers: &[Container],
    now_nanos: i64,
    no_trunc: bool,
    images: &HashMap<String, String>,
) -> anyhow::Result<String> {
    let mut table = Table::new();
    table.row([
        "CONTAINER",
        "IMAGE",
        "CREATED",
        "STATE",
        "NAME",
        "ATTEMPT",
        "POD ID",
        "POD",
        "NAMESPACE",
    ]);
    for container in containers {
        let metadata = container.metadata.clone().unwrap_or_default();
        let (id, pod_id) = if no_trunc {
            (container.id.clone(), container.pod_sandbox_id.clone())
        } else {
            (
                output::truncate_id(&container.id, ""),
                output::truncate_id(&container.pod_sandbox_id, ""),
            )
        };
        let image = image_of(container);
        let image = match images.get(image) {
            Some(resolved) => resolved.clone(),
            None => image_column(image, no_trunc),
        };
        table.row([
            id,
            image,
            output::ago(container.created_at, now_nanos),
            output::container_state_name(container.state)?.to_string(),
            metadata.name,
            metadata.attempt.to_string(),
            pod_id,
            label(&container.labels, POD_NAME_LABEL).to_string(),
            label(&container.labels, POD_NAMESPACE_LABEL).to_string(),
        ]);
    }
    Ok(table.render())
}

/// `ps --verbose`: one block per container.
pub(crate) fn containers_verbose(
    containers: &[Container],
    now_nanos: i64,
) -> anyhow::Result<String> {
    let mut text = String::new();
    for container in containers {
        let _ = writeln!(text, "ID: {}", container.id);
        let _ = writeln!(text, "PodID: {}", container.pod_sandbox_id);
        let _ = writeln!(
            text,
            "Namespace: {}",
            label(&container.labels, POD_NAMESPACE_LABEL)
        );
        if let Some(metadata) = &container.metadata {
            if !metadata.name.is_empty() {
                let _ = writeln!(text, "Name: {}", metadata.name);
            }
            let _ = writeln!(text, "Attempt: {}", metadata.attempt);
        }
        let _ = writeln!(
            text,
            "State: {}",
            output::container_state_name(container.state)?
        );
        if let Some(image) = &container.image {
            let _ = writeln!(text, "Image: {}", image.image);
        }
        let _ = writeln!(
            text,
            "Created: {}",
            output::ago(container.created_at, now_nanos)
        );
        output::write_sorted_map(&mut text, "Labels", &container.labels);
        output::write_sorted_map(&mut text, "Annotations", &container.annotations);
        text.push('\n');
    }
    Ok(text)
}

/// Runs `ps`.
pub(crate) async fn ps(session: &mut Session, args: PsArgs) -> anyhow::Result<()> {
    let containers = list_containers(session, args.id.as_deref(), &args.filter)
        .await
        .context("listing containers")?;
    let text = match args.output {
        ListFormat::Json | ListFormat::Yaml => inspect::render_list(
            protojson::to_json(&ListContainersResponse { containers })?,
            args.output,
        ),
        ListFormat::Table if args.quiet => containers
            .iter()
            .map(|container| format!("{}\n", container.id))
            .collect(),
        ListFormat::Table if args.verbose => {
            containers_verbose(&containers, timestamps::now_nanos())?
        }
        ListFormat::Table => {
            let mut images = HashMap::new();
            if args.resolve_image_path {
                for container in &containers {
                    let image = image_of(container).to_string();
                    if images.contains_key(&image) {
                        continue;
                    }
                    let (status, _) = lookup::image_status(session, &image, false)
                        .await
                        .context("failed to fetch repo image")?;
                    let shown = status
                        .and_then(|status| status.repo_tags.into_iter().next())
                        .unwrap_or_else(|| image.clone());
                    images.insert(image, shown);
                }
            }
            containers_table(&containers, timestamps::now_nanos(), args.no_trunc, &images)?
        }
    };
    session.print(text)?;
    Ok(())
}

/// Runs `create`.
pub(crate) async fn create(session: &mut Session, args: CreateArgs) -> anyhow::Result<()> {
    session.override_timeout(args.cancel_timeout);
    let pod_id = lookup::pod_id(session, &args.pod).await?;
    let config = super::config::load_container_config(&args.container_config)
        .await
        .context("creating container")?;
    let pod_config = super::config::load_pod_config(&args.pod_config)
        .await
        .context("creating container")?;
    // As crictl without a config file: no pull unless asked for.
    if args.with_pull && !args.no_pull {
        let auth = args.auth.auth_config()?;
        let image = config.image.clone().unwrap_or_default();
        let mut references = vec![image.image.clone()];
        for mount in &config.mounts {
            if let Some(mounted) = mount.image.as_ref().filter(|spec| !spec.image.is_empty()) {
                output::info(format_args!(
                    "Pulling image {} to be mounted to container path: {}",
                    mounted.image, mount.container_path
                ));
                references.push(mounted.image.clone());
            }
        }
        output::info(format_args!("Pulling container image: {}", image.image));
        for reference in references {
            images::pull_image(
                session,
                &reference,
                auth.clone(),
                Some(pod_config.clone()),
                image.annotations.clone(),
                args.auth.pull_timeout,
            )
            .await
            .context("creating container")?;
        }
    }
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    let response = deadline
        .call(
            client.create_container(deadline.request(CreateContainerRequest {
                pod_sandbox_id: pod_id,
                config: Some(config),
                sandbox_config: Some(pod_config),
            })),
        )
        .await
        .context("creating container")?;
    session.print(format!("{}\n", response.container_id))?;
    Ok(())
}

/// Runs `start`.
pub(crate) async fn start(session: &mut Session, args: StartArgs) -> anyhow::Result<()> {
    let ids = lookup::container_ids(session, &args.containers).await?;
    for (id, shown) in ids.iter().zip(&args.containers) {
        let mut client = session.runtime().await?;
        let deadline = session.deadline();
        deadline
            .call(
                client.start_container(deadline.request(StartContainerRequest {
                    container_id: id.clone(),
                })),
            )
            .await
            .with_context(|| format!("starting the container {shown:?}"))?;
        session.print(format!("{shown}\n"))?;
    }
    Ok(())
}

async fn stop_container(
    session: &mut Session,
    id: &str,
    shown: &str,
    timeout: u32,
) -> anyhow::Result<()> {
    let mut client = session.runtime().await?;
    // The runtime may take the whole grace period, so the call gets that on top.
    let deadline = Deadline::after(session.timeout() + Duration::from_secs(u64::from(timeout)));
    deadline
        .call(
            client.stop_container(deadline.request(StopContainerRequest {
                container_id: id.to_string(),
                timeout: i64::from(timeout),
            })),
        )
        .await?;
    session.print(format!("{shown}\n"))?;
    Ok(())
}

/// Runs `stop`.
pub(crate) async fn stop(session: &mut Session, args: StopArgs) -> anyhow::Result<()> {
    let targets: Vec<(String, String)> = if args.all {
        if !args.containers.is_empty() {
            anyhow::bail!("cannot specify CONTAINER-ID(s) when using --all");
        }
        let filter = ContainerFilterArgs {
            state: Some("running".to_string()),
            ..ContainerFilterArgs::default()
        };
        let running = list_containers(session, None, &filter)
            .await
            .context("listing containers")?;
        if running.is_empty() {
            session.print("No running containers found.\n")?;
            return Ok(());
        }
        running
            .into_iter()
            .map(|container| (container.id.clone(), container.id))
            .collect()
    } else {
        if args.containers.is_empty() {
            anyhow::bail!("you must specify at least one CONTAINER-ID or use --all");
        }
        let ids = lookup::container_ids(session, &args.containers).await?;
        ids.into_iter()
            .zip(args.containers.iter().cloned())
            .collect()
    };
    for (id, shown) in &targets {
        stop_container(session, id, shown, args.timeout)
            .await
            .with_context(|| format!("stopping the container {shown:?}"))?;
    }
    Ok(())
}

/// Runs `rm`.
pub(crate) async fn rm(session: &mut Session, args: RmArgs) -> anyhow::Result<()> {
    let targets: Vec<(String, String)> = if args.all {
        lookup::all_containers(session)
            .await?
            .into_iter()
            .map(|container| (container.id.clone(), container.id))
            .collect()
    } else {
        let ids = lookup::container_ids(session, &args.containers).await?;
        ids.into_iter()
            .zip(args.containers.iter().cloned())
            .collect()
    };
    if targets.is_empty() {
        output::info("No containers to remove");
        return Ok(());
    }
    let mut failures = Vec::new();
    for (id, shown) in &targets {
        if let Err(error) = remove_container(session, id, shown, &args).await {
            failures.push(format!("{error:#}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", failures.join("; "))
    }
}

async fn remove_container(
    session: &mut Session,
    id: &str,
    shown: &str,
    args: &RmArgs,
) -> anyhow::Result<()> {
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    let status = deadline
        .call(
            client.container_status(deadline.request(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })),
        )
        .await
        .with_context(|| format!("getting container status {shown:?}"))?
        .status
        .unwrap_or_default();
    if status.state == ContainerState::ContainerRunning as i32 {
        if !args.force {
            anyhow::bail!("container {shown:?} is running, please stop it first");
        }
        stop_container(session, id, shown, 0)
            .await
            .with_context(|| format!("stopping the container {shown:?}"))?;
    }
    deadline
        .call(
            client.remove_container(deadline.request(RemoveContainerRequest {
                container_id: id.to_string(),
            })),
        )
        .await
        .with_context(|| format!("removing container {shown:?}"))?;
    session.print(format!("{shown}\n"))?;
    if !args.keep_logs && !status.log_path.is_empty() {
        let log_path = PathBuf::from(&status.log_path);
        let failures = tokio::task::spawn_blocking(move || remove_log_files(&log_path))
            .await
            .context("removing log files")?;
        for (path, error) in failures {
            output::warn(format_args!(
                "removing log file {} for container {shown:?} failed: {error}",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Removes a container's log file and its rotations (`<log>.<suffix>`), as crictl's `rm` does.
/// Returns what could not be removed; files already gone are not a failure.
pub(crate) fn remove_log_files(log_path: &Path) -> Vec<(PathBuf, std::io::Error)> {
    let mut paths = Vec::new();
    if let (Some(directory), Some(name)) = (log_path.parent(), log_path.file_name()) {
        let rotation_prefix = format!("{}.", name.to_string_lossy());
        if let Ok(entries) = std::fs::read_dir(directory) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&rotation_prefix)
                {
                    paths.push(entry.path());
                }
            }
        }
    }
    paths.sort();
    paths.push(log_path.to_path_buf());
    paths
        .into_iter()
        .filter_map(|path| match std::fs::remove_file(&path) {
            Ok(()) => None,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => Some((path, error)),
        })
        .collect()
}

/// A container status as `inspect` prints it: protobuf JSON, unset messages as `null`, times
/// in RFC 3339 (Go's zero time for a start or finish that has not happened).
pub(crate) fn container_status_json(status: &ContainerStatus) -> anyhow::Result<Json> {
    let mut json = protojson::to_json(status)?.absent_as_null();
    let state = ContainerState::try_from(status.state).ok();
    let started = if state != Some(ContainerState::ContainerCreated) {
        timestamps::rfc3339_nano(status.started_at)
    } else {
        timestamps::GO_ZERO_TIME.to_string()
    };
    let finished = match state {
        Some(ContainerState::ContainerExited) => timestamps::rfc3339_nano(status.finished_at),
        Some(ContainerState::ContainerUnknown) if status.finished_at > 0 => {
            timestamps::rfc3339_nano(status.finished_at)
        }
        _ => timestamps::GO_ZERO_TIME.to_string(),
    };
    json.set(
        "createdAt",
        Json::String(timestamps::rfc3339_nano(status.created_at)),
    );
    json.set("startedAt", Json::String(started));
    json.set("finishedAt", Json::String(finished));
    Ok(json)
}

/// `inspect -o table`.
pub(crate) fn container_status_table(
    response: &ContainerStatusResponse,
    verbose: bool,
    now_nanos: i64,
) -> String {
    let status = response.status.clone().unwrap_or_default();
    let mut text = String::new();
    let _ = writeln!(text, "ID: {}", status.id);
    if let Some(metadata) = &status.metadata {
        if !metadata.name.is_empty() {
            let _ = writeln!(text, "Name: {}", metadata.name);
        }
        if metadata.attempt != 0 {
            let _ = writeln!(text, "Attempt: {}", metadata.attempt);
        }
    }
    let _ = writeln!(
        text,
        "State: {}",
        output::container_state_proto_name(status.state)
    );
    let _ = writeln!(
        text,
        "Created: {}",
        output::ago(status.created_at, now_nanos)
    );
    if status.state != ContainerState::ContainerCreated as i32 {
        let _ = writeln!(
            text,
            "Started: {}",
            output::ago(status.started_at, now_nanos)
        );
    }
    if status.state == ContainerState::ContainerExited as i32 {
        if status.finished_at > 0 {
            let _ = writeln!(
                text,
                "Finished: {}",
                output::ago(status.finished_at, now_nanos)
            );
        }
        let _ = writeln!(text, "Exit Code: {}", status.exit_code);
    }
    output::write_sorted_map(&mut text, "Labels", &status.labels);
    output::write_sorted_map(&mut text, "Annotations", &status.annotations);
    if verbose {
        let _ = writeln!(text, "Info: {}", super::pods::go_map(&response.info));
    }
    text
}

/// Runs `inspect`.
pub(crate) async fn inspect(session: &mut Session, args: InspectArgs) -> anyhow::Result<()> {
    let ids = if args.containers.is_empty() {
        let containers = list_containers(session, None, &args.filter)
            .await
            .context("listing containers")?;
        if containers.is_empty() {
            anyhow::bail!("no IDs provided or nothing found per filter");
        }
        containers
            .into_iter()
            .map(|container| container.id)
            .collect()
    } else {
        lookup::container_ids(session, &args.containers).await?
    };
    let verbose = !args.quiet;
    let mut documents = Vec::new();
    let mut tables = String::new();
    for id in &ids {
        let mut client = session.runtime().await?;
        let deadline = session.deadline();
        let response = deadline
            .call(
                client.container_status(deadline.request(ContainerStatusRequest {
                    container_id: id.clone(),
                    verbose,
                })),
            )
            .await
            .context("get the status of containers: get container status")?;
        if args.output == StatusFormat::Table {
            tables.push_str(&container_status_table(
                &response,
                verbose,
                timestamps::now_nanos(),
            ));
        } else {
            let status = response.status.clone().unwrap_or_default();
            documents.push(inspect::status_document(
                Some(container_status_json(&status)?),
                Vec::new(),
                &response.info,
            ));
        }
    }
    if args.output == StatusFormat::Table {
        session.print(tables)?;
    } else {
        session.print(inspect::render_documents(documents, args.output))?;
    }
    Ok(())
}

/// Runs `exec`: the command runs to its end (`ExecSync`), its output is written to stdout and
/// stderr, and its exit code becomes this process's. With `-i` or `-t` it runs as a stream
/// (`Exec`, then the runtime's streaming URL), with this terminal attached.
pub(crate) async fn exec(session: &mut Session, args: ExecArgs) -> anyhow::Result<()> {
    let id = lookup::container_id(session, &args.container).await?;
    if args.interactive || args.tty {
        let mut client = session.runtime().await?;
        let response = session
            .deadline()
            .call(
                client.exec(session.deadline().request(crate::v1::ExecRequest {
                    container_id: id,
                    cmd: args.command,
                    tty: args.tty,
                    stdin: args.interactive,
                    stdout: true,
                    stderr: !args.tty,
                })),
            )
            .await
            .with_context(|| format!("execing command in container {}", args.container))?;
        let code = crate::stream_client::exec(&response.url, args.interactive, args.tty).await?;
        if code != 0 {
            return Err(CommandExit(code).into());
        }
        return Ok(());
    }
    // `--sync` is accepted for crictl's command lines; without -i/-t every exec is synchronous.
    let _ = args.sync;
    let mut client = session.runtime().await?;
    let deadline = if args.timeout == 0 {
        Deadline::none()
    } else {
        Deadline::after(session.timeout() + Duration::from_secs(u64::from(args.timeout)))
    };
    let response = deadline
        .call(client.exec_sync(deadline.request(ExecSyncRequest {
            container_id: id,
            cmd: args.command,
            timeout: i64::from(args.timeout),
        })))
        .await
        .with_context(|| {
            format!(
                "execing command in container {} synchronously",
                args.container
            )
        })?;
    session.print(&response.stdout)?;
    session.terminal().eprint(&response.stderr)?;
    if response.exit_code != 0 {
        return Err(CommandExit(response.exit_code).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{ContainerMetadata, ImageSpec};

    const SECOND: i64 = 1_000_000_000;
    const DIGEST: &str = "sha256:4dd1b3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2";

    fn container(id: &str, pod: &str, name: &str, image: &str, created_seconds: i64) -> Container {
        Container {
            id: id.to_string(),
            pod_sandbox_id: pod.to_string(),
            metadata: Some(ContainerMetadata {
                name: name.to_string(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: image.to_string(),
                ..ImageSpec::default()
            }),
            image_ref: String::new(),
            state: ContainerState::ContainerRunning as i32,
            created_at: created_seconds * SECOND,
            labels: HashMap::from([
                (POD_NAME_LABEL.to_string(), format!("{name}-pod")),
                (POD_NAMESPACE_LABEL.to_string(), "default".to_string()),
            ]),
            annotations: HashMap::new(),
            image_id: String::new(),
        }
    }

    #[test]
    fn ps_table_matches_crictl() {
        let mut exited = container(
            "aaaa1111bbbb2222cccc",
            "pppp1111qqqq2222",
            "sidecar",
            "docker.io/library/busybox:latest",
            0,
        );
        exited.state = ContainerState::ContainerExited as i32;
        exited.labels.clear();
        let containers = vec![
            container("0123456789abcdef", "fedcba9876543210", "web", DIGEST, 100),
            exited,
        ];
        let text =
            containers_table(&containers, 160 * SECOND, false, &HashMap::new()).expect("renders");
        let expected = "\
CONTAINER           IMAGE                              CREATED              STATE               NAME                ATTEMPT             POD ID              POD                 NAMESPACE
0123456789abc       4dd1b3b4c5d6e                      About a minute ago   Running             web                 0                   fedcba9876543       web-pod             default
aaaa1111bbbb2       docker.io/library/busybox:latest   2 minutes ago        Exited              sidecar             0                   pppp1111qqqq2       unknown             unknown
";
        assert_eq!(text, expected);

        let resolved = HashMap::from([(DIGEST.to_string(), "nginx:1.27".to_string())]);
        let text =
            containers_table(&containers[..1], 160 * SECOND, true, &resolved).expect("renders");
        assert!(text.contains("0123456789abcdef    nginx:1.27"), "{text}");
    }

    #[test]
    fn ps_verbose() {
        let text = containers_verbose(&[container("c1", "p1", "web", "busybox", 0)], 5 * SECOND)
            .expect("renders");
        let expected = "\
ID: c1
PodID: p1
Namespace: default
Name: web
Attempt: 0
State: Running
Image: busybox
Created: 5 seconds ago
Labels:
\tio.kubernetes.pod.name -> web-pod
\tio.kubernetes.pod.namespace -> default

";
        assert_eq!(text, expected);
    }

    #[test]
    fn selection_by_prefix_pod_and_patterns() {
        let containers = vec![
            container("c1aaa", "p1", "web", "x", 1),
            container("c1bbb", "p2", "db", "x", 3),
            container("c2ccc", "p1", "web-sidecar", "x", 2),
        ];
        let ids = |selected: Vec<Container>| -> Vec<String> {
            selected.into_iter().map(|c| c.id).collect()
        };
        assert_eq!(
            ids(select_containers(
                containers.clone(),
                None,
                None,
                None,
                None,
                false,
                0
            )),
            ["c1bbb", "c2ccc", "c1aaa"]
        );
        assert_eq!(
            ids(select_containers(
                containers.clone(),
                Some("c1"),
                None,
                None,
                None,
                false,
                0
            )),
            ["c1bbb", "c1aaa"]
        );
        assert_eq!(
            ids(select_containers(
                containers.clone(),
                None,
                Some("p1"),
                None,
                None,
                true,
                0
            )),
            ["c2ccc"]
        );
        let web = NamePattern::new("^web$").expect("pattern");
        assert_eq!(
            ids(select_containers(
                containers,
                None,
                None,
                Some(&web),
                None,
                false,
                0
            )),
            ["c1aaa"]
        );
    }

    #[test]
    fn state_filters_follow_crictl() {
        let running = Some(ContainerState::ContainerRunning);
        let base = ContainerFilterArgs::default();
        assert_eq!(state_filter(&base).expect("valid"), running);
        let all = ContainerFilterArgs {
            all: true,
            ..base.clone()
        };
        assert_eq!(state_filter(&all).expect("valid"), None);
        let exited = ContainerFilterArgs {
            state: Some("Exited".into()),
            ..base.clone()
        };
        assert_eq!(
            state_filter(&exited).expect("valid"),
            Some(ContainerState::ContainerExited)
        );
        let latest = ContainerFilterArgs {
            state: Some("exited".into()),
            latest: true,
            ..base.clone()
        };
        assert_eq!(state_filter(&latest).expect("valid"), None);
        let bad = ContainerFilterArgs {
            state: Some("paused".into()),
            ..base
        };
        assert_eq!(
            state_filter(&bad).expect_err("invalid").to_string(),
            "--state should be one of created, running, exited or unknown"
        );
    }

    #[test]
    fn digests() {
        assert!(is_digest(DIGEST));
        assert!(!is_digest("sha256:abc"));
        assert!(!is_digest("busybox:latest"));
        assert!(!is_digest(&DIGEST.to_uppercase()));
        assert_eq!(image_column(DIGEST, false), "4dd1b3b4c5d6e");
        assert_eq!(image_column(DIGEST, true), DIGEST);
    }

    #[test]
    fn container_status_document_times() {
        let created = ContainerStatus {
            id: "c1".into(),
            state: ContainerState::ContainerCreated as i32,
            created_at: 1_714_557_600 * SECOND,
            ..ContainerStatus::default()
        };
        let text = container_status_json(&created)
            .expect("encodes")
            .sorted()
            .to_pretty();
        assert!(
            text.contains("\"createdAt\": \"2024-05-01T10:00:00Z\""),
            "{text}"
        );
        assert!(
            text.contains("\"startedAt\": \"0001-01-01T00:00:00Z\""),
            "{text}"
        );
        assert!(
            text.contains("\"finishedAt\": \"0001-01-01T00:00:00Z\""),
            "{text}"
        );
        assert!(text.contains("\"state\": \"CONTAINER_CREATED\""), "{text}");
        assert!(text.contains("\"resources\": null"), "{text}");

        let exited = ContainerStatus {
            state: ContainerState::ContainerExited as i32,
            started_at: 1_714_557_601 * SECOND,
            finished_at: 1_714_557_602 * SECOND + 250_000_000,
            exit_code: 3,
            ..created
        };
        let text = container_status_json(&exited).expect("encodes").to_pretty();
        assert!(
            text.contains("\"startedAt\": \"2024-05-01T10:00:01Z\""),
            "{text}"
        );
        assert!(
            text.contains("\"finishedAt\": \"2024-05-01T10:00:02.25Z\""),
            "{text}"
        );
        assert!(text.contains("\"exitCode\": 3"), "{text}");
    }

    #[test]
    fn container_status_as_a_table() {
        let response = ContainerStatusResponse {
            status: Some(ContainerStatus {
                id: "c1".into(),
                metadata: Some(ContainerMetadata {
                    name: "web".into(),
                    attempt: 1,
                }),
                state: ContainerState::ContainerExited as i32,
                created_at: 0,
                started_at: 60 * SECOND,
                finished_at: 170 * SECOND,
                exit_code: 137,
                ..ContainerStatus::default()
            }),
            info: HashMap::from([("pid".to_string(), "42".to_string())]),
        };
        let expected = "\
ID: c1
Name: web
Attempt: 1
State: CONTAINER_EXITED
Created: 3 minutes ago
Started: 2 minutes ago
Finished: 10 seconds ago
Exit Code: 137
Info: map[pid:42]
";
        assert_eq!(
            container_status_table(&response, true, 180 * SECOND),
            expected
        );
    }

    #[test]
    fn log_files_and_rotations_are_removed() {
        let dir = std::env::temp_dir().join(format!(
            "cox-crictl-rm-{}-{}",
            std::process::id(),
            timestamps::now_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for name in ["0.log", "0.log.20240501-100000", "0.log.1.gz", "1.log"] {
            std::fs::write(dir.join(name), "x").expect("writes");
        }
        let failures = remove_log_files(&dir.join("0.log"));
        assert!(failures.is_empty(), "{failures:?}");
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("lists")
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["1.log"]);
        assert!(remove_log_files(&dir.join("gone.log")).is_empty());
        std::fs::remove_dir_all(dir).expect("cleans up");
    }
}
