//! Pod sandbox commands: `pods`, `runp`, `stopp`, `rmp`, `inspectp`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use super::filters::{self, NamePattern};
use super::inspect::{self, ListFormat, StatusFormat};
use super::json::Json;
use super::output::{self, Table};
use super::session::Session;
use super::timestamps::{self, parse_optional_duration};
use super::{lookup, protojson};
use crate::v1::{
    ListPodSandboxRequest, ListPodSandboxResponse, PodSandbox, PodSandboxFilter, PodSandboxState,
    PodSandboxStateValue, PodSandboxStatus, PodSandboxStatusRequest, PodSandboxStatusResponse,
    RemovePodSandboxRequest, RunPodSandboxRequest, StopPodSandboxRequest,
};

/// Filters shared by `pods` and `inspectp`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct PodFilterArgs {
    /// Filter by pod name regular expression pattern
    #[arg(long)]
    name: Option<String>,
    /// Filter by pod namespace regular expression pattern
    #[arg(long)]
    namespace: Option<String>,
    /// Filter by pod state (ready or notready)
    #[arg(short, long)]
    state: Option<String>,
    /// Filter by key=value label
    #[arg(long)]
    label: Vec<String>,
    /// Show the most recently created pod
    #[arg(short, long)]
    latest: bool,
    /// Show last n recently created pods. Set 0 for unlimited
    #[arg(short = 'n', long, default_value_t = 0)]
    last: usize,
}

/// `cox crictl pods`.
#[derive(Debug, clap::Args)]
pub(crate) struct PodsArgs {
    /// Filter by pod ID (or a prefix of it)
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    filter: PodFilterArgs,
    /// Show verbose info for pods
    #[arg(short, long)]
    verbose: bool,
    /// List only pod IDs
    #[arg(short, long)]
    quiet: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    output: ListFormat,
    /// Show output without truncating the ID
    #[arg(long)]
    no_trunc: bool,
}

/// `cox crictl runp`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunpArgs {
    /// The pod config (JSON)
    #[arg(value_name = "POD-CONFIG.json")]
    config: PathBuf,
    /// Runtime handler to use. Available options are defined by the container runtime.
    #[arg(short, long)]
    runtime: Option<String>,
    /// Time to wait for the request to complete before cancelling it (e.g. 30s)
    #[arg(short = 'T', long, value_parser = parse_optional_duration, default_value = "0")]
    cancel_timeout: Duration,
}

/// `cox crictl stopp`.
#[derive(Debug, clap::Args)]
pub(crate) struct StoppArgs {
    /// The pods: IDs or unique prefixes
    #[arg(value_name = "POD-ID", required = true)]
    pods: Vec<String>,
}

/// `cox crictl rmp`.
#[derive(Debug, clap::Args)]
pub(crate) struct RmpArgs {
    /// The pods: IDs or unique prefixes
    #[arg(value_name = "POD-ID", required_unless_present = "all")]
    pods: Vec<String>,
    /// Force removal of the pod sandbox, disregarding if running
    #[arg(short, long)]
    force: bool,
    /// Remove all pods
    #[arg(short, long)]
    all: bool,
}

/// `cox crictl inspectp`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectpArgs {
    /// The pods: IDs or unique prefixes (all matching the filters if none)
    #[arg(value_name = "POD-ID")]
    pods: Vec<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value = "json")]
    output: StatusFormat,
    /// Do not show verbose information
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    filter: PodFilterArgs,
}

fn parse_state(state: Option<&str>) -> anyhow::Result<Option<PodSandboxState>> {
    match state.map(str::to_lowercase).as_deref() {
        None | Some("") => Ok(None),
        Some("ready") => Ok(Some(PodSandboxState::SandboxReady)),
        Some("notready") => Ok(Some(PodSandboxState::SandboxNotready)),
        Some(_) => anyhow::bail!("--state should be ready or notready"),
    }
}

/// What the client-side filters keep of a listing, newest first.
pub(crate) fn select_pods(
    mut pods: Vec<PodSandbox>,
    id_prefix: Option<&str>,
    name: Option<&NamePattern>,
    namespace: Option<&NamePattern>,
    latest: bool,
    last: usize,
) -> Vec<PodSandbox> {
    pods.retain(|pod| {
        let Some(metadata) = &pod.metadata else {
            return false;
        };
        id_prefix.is_none_or(|prefix| pod.id.starts_with(prefix))
            && filters::pattern_matches(name, &metadata.name)
            && filters::pattern_matches(namespace, &metadata.namespace)
    });
    pods.sort_by_key(|pod| std::cmp::Reverse(pod.created_at));
    let keep = filters::keep_count(pods.len(), latest, last);
    pods.truncate(keep);
    pods
}

/// The pods the runtime lists for `filter`, with `id_prefix` applied here.
pub(crate) async fn list_pods(
    session: &mut Session,
    id_prefix: Option<&str>,
    filter: &PodFilterArgs,
) -> anyhow::Result<Vec<PodSandbox>> {
    let state = parse_state(filter.state.as_deref())?;
    let labels = filters::parse_labels(&filter.label)?;
    let name = filters::optional_pattern(filter.name.as_deref())?;
    let namespace = filters::optional_pattern(filter.namespace.as_deref())?;
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    let request = ListPodSandboxRequest {
        filter: Some(PodSandboxFilter {
            id: String::new(),
            state: state.map(|state| PodSandboxStateValue {
                state: state as i32,
            }),
            label_selector: labels,
        }),
    };
    let items = deadline
        .call(client.list_pod_sandbox(deadline.request(request)))
        .await
        .map_err(|error| anyhow::anyhow!("call list sandboxes RPC: {error}"))?
        .items;
    Ok(select_pods(
        items,
        id_prefix.filter(|prefix| !prefix.is_empty()),
        name.as_ref(),
        namespace.as_ref(),
        filter.latest,
        filter.last,
    ))
}

fn runtime_handler(handler: &str) -> &str {
    if handler.is_empty() {
        "(default)"
    } else {
        handler
    }
}

/// The `pods` table.
pub(crate) fn pods_table(
    pods: &[PodSandbox],
    now_nanos: i64,
    no_trunc: bool,
) -> anyhow::Result<String> {
    let mut table = Table::new();
    table.row([
        "POD ID",
        "CREATED",
        "STATE",
        "NAME",
        "NAMESPACE",
        "ATTEMPT",
        "RUNTIME",
    ]);
    for pod in pods {
        let metadata = pod.metadata.clone().unwrap_or_default();
        let id = if no_trunc {
            pod.id.clone()
        } else {
            output::truncate_id(&pod.id, "")
        };
        table.row([
            id,
            output::ago(pod.created_at, now_nanos),
            output::pod_state_name(pod.state)?.to_string(),
            metadata.name,
            metadata.namespace,
            metadata.attempt.to_string(),
            runtime_handler(&pod.runtime_handler).to_string(),
        ]);
    }
    Ok(table.render())
}

/// `pods --verbose`: one block per pod.
pub(crate) fn pods_verbose(pods: &[PodSandbox]) -> anyhow::Result<String> {
    let mut text = String::new();
    for pod in pods {
        let _ = writeln!(text, "ID: {}", pod.id);
        if let Some(metadata) = &pod.metadata {
            if !metadata.name.is_empty() {
                let _ = writeln!(text, "Name: {}", metadata.name);
            }
            if !metadata.uid.is_empty() {
                let _ = writeln!(text, "UID: {}", metadata.uid);
            }
            if !metadata.namespace.is_empty() {
                let _ = writeln!(text, "Namespace: {}", metadata.namespace);
            }
            if metadata.attempt != 0 {
                let _ = writeln!(text, "Attempt: {}", metadata.attempt);
            }
        }
        let _ = writeln!(text, "Status: {}", output::pod_state_name(pod.state)?);
        let _ = writeln!(
            text,
            "Created: {}",
            timestamps::go_time_string(pod.created_at)
        );
        output::write_sorted_map(&mut text, "Labels", &pod.labels);
        output::write_sorted_map(&mut text, "Annotations", &pod.annotations);
        let _ = writeln!(text, "Runtime: {}", runtime_handler(&pod.runtime_handler));
        text.push('\n');
    }
    Ok(text)
}

/// Runs `pods`.
pub(crate) async fn pods(session: &mut Session, args: PodsArgs) -> anyhow::Result<()> {
    let pods = list_pods(session, args.id.as_deref(), &args.filter)
        .await
        .context("listing pod sandboxes")?;
    let text = match args.output {
        ListFormat::Json | ListFormat::Yaml => inspect::render_list(
            protojson::to_json(&ListPodSandboxResponse { items: pods })?,
            args.output,
        ),
        ListFormat::Table if args.quiet => pods.iter().map(|pod| format!("{}\n", pod.id)).collect(),
        ListFormat::Table if args.verbose => pods_verbose(&pods)?,
        ListFormat::Table => pods_table(&pods, timestamps::now_nanos(), args.no_trunc)?,
    };
    session.print(text)?;
    Ok(())
}

/// Runs `runp`.
pub(crate) async fn runp(session: &mut Session, args: RunpArgs) -> anyhow::Result<()> {
    session.override_timeout(args.cancel_timeout);
    let config = super::config::load_pod_config(&args.config)
        .await
        .context("load podSandboxConfig")?;
    let mut client = session.runtime().await?;
    // Sandboxes get twice the usual time, as in crictl's client.
    let deadline = super::session::Deadline::after(session.timeout() * 2);
    let response = deadline
        .call(
            client.run_pod_sandbox(deadline.request(RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: args.runtime.unwrap_or_default(),
            })),
        )
        .await
        .context("run pod sandbox")?;
    session.print(format!("{}\n", response.pod_sandbox_id))?;
    Ok(())
}

async fn stop_pod(session: &mut Session, id: &str, shown: &str) -> anyhow::Result<()> {
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    deadline
        .call(
            client.stop_pod_sandbox(deadline.request(StopPodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            })),
        )
        .await?;
    session.print(format!("Stopped sandbox {shown}\n"))?;
    Ok(())
}

/// Runs `stopp`.
pub(crate) async fn stopp(session: &mut Session, args: StoppArgs) -> anyhow::Result<()> {
    let ids = lookup::pod_ids(session, &args.pods).await?;
    for (id, shown) in ids.iter().zip(&args.pods) {
        stop_pod(session, id, shown)
            .await
            .with_context(|| format!("stopping the pod sandbox {shown:?}"))?;
    }
    Ok(())
}

/// Runs `rmp`.
pub(crate) async fn rmp(session: &mut Session, args: RmpArgs) -> anyhow::Result<()> {
    let targets: Vec<(String, String)> = if args.all {
        lookup::all_pods(session)
            .await?
            .into_iter()
            .map(|pod| (pod.id.clone(), pod.id))
            .collect()
    } else {
        let ids = lookup::pod_ids(session, &args.pods).await?;
        ids.into_iter().zip(args.pods.iter().cloned()).collect()
    };
    if targets.is_empty() {
        output::info("No pods to remove");
        return Ok(());
    }
    let mut failures = Vec::new();
    for (id, shown) in &targets {
        if let Err(error) = remove_pod(session, id, shown, args.force).await {
            failures.push(format!("{error:#}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", failures.join("; "))
    }
}

async fn remove_pod(
    session: &mut Session,
    id: &str,
    shown: &str,
    force: bool,
) -> anyhow::Result<()> {
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    let status = deadline
        .call(
            client.pod_sandbox_status(deadline.request(PodSandboxStatusRequest {
                pod_sandbox_id: id.to_string(),
                verbose: false,
            })),
        )
        .await
        .with_context(|| format!("getting sandbox status of pod {shown:?}"))?;
    let ready = status
        .status
        .is_some_and(|status| status.state == PodSandboxState::SandboxReady as i32);
    if ready {
        if !force {
            anyhow::bail!("pod sandbox {shown:?} is running, please stop it first");
        }
        stop_pod(session, id, shown)
            .await
            .with_context(|| format!("stopping the pod sandbox {shown:?} failed"))?;
    }
    deadline
        .call(
            client.remove_pod_sandbox(deadline.request(RemovePodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            })),
        )
        .await
        .with_context(|| format!("removing the pod sandbox {shown:?}"))?;
    session.print(format!("Removed sandbox {shown}\n"))?;
    Ok(())
}

/// A pod status as `inspectp` prints it: protobuf JSON, unset messages as `null`, the
/// creation time in RFC 3339.
pub(crate) fn pod_status_json(status: &PodSandboxStatus) -> anyhow::Result<Json> {
    let mut json = protojson::to_json(status)?.absent_as_null();
    json.set(
        "createdAt",
        Json::String(timestamps::rfc3339_nano(status.created_at)),
    );
    Ok(json)
}

/// `inspectp -o table`.
pub(crate) fn pod_status_table(response: &PodSandboxStatusResponse, verbose: bool) -> String {
    let status = response.status.clone().unwrap_or_default();
    let mut text = String::new();
    let _ = writeln!(text, "ID: {}", status.id);
    if let Some(metadata) = &status.metadata {
        if !metadata.name.is_empty() {
            let _ = writeln!(text, "Name: {}", metadata.name);
        }
        if !metadata.uid.is_empty() {
            let _ = writeln!(text, "UID: {}", metadata.uid);
        }
        if !metadata.namespace.is_empty() {
            let _ = writeln!(text, "Namespace: {}", metadata.namespace);
        }
        let _ = writeln!(text, "Attempt: {}", metadata.attempt);
    }
    let _ = writeln!(
        text,
        "Status: {}",
        output::pod_state_proto_name(status.state)
    );
    let _ = writeln!(
        text,
        "Created: {}",
        timestamps::go_time_string(status.created_at)
    );
    if let Some(network) = &status.network {
        let _ = writeln!(text, "IP Addresses: {}", network.ip);
        for additional in &network.additional_ips {
            let _ = writeln!(text, "Additional IP: {}", additional.ip);
        }
    }
    output::write_sorted_map(&mut text, "Labels", &status.labels);
    output::write_sorted_map(&mut text, "Annotations", &status.annotations);
    if verbose {
        let _ = writeln!(text, "Info: {}", go_map(&response.info));
    }
    text
}

/// A string map as Go's `%v` prints it: `map[a:1 b:2]`.
pub(crate) fn go_map(map: &std::collections::HashMap<String, String>) -> String {
    let mut entries: Vec<(&String, &String)> = map.iter().collect();
    entries.sort();
    let inner: Vec<String> = entries
        .into_iter()
        .map(|(key, value)| format!("{key}:{value}"))
        .collect();
    format!("map[{}]", inner.join(" "))
}

/// Runs `inspectp`.
pub(crate) async fn inspectp(session: &mut Session, args: InspectpArgs) -> anyhow::Result<()> {
    let ids = if args.pods.is_empty() {
        let pods = list_pods(session, None, &args.filter)
            .await
            .context("listing pod sandboxes")?;
        if pods.is_empty() {
            anyhow::bail!("no IDs provided or nothing found per filter");
        }
        pods.into_iter().map(|pod| pod.id).collect()
    } else {
        lookup::pod_ids(session, &args.pods).await?
    };
    let verbose = !args.quiet;
    let mut documents = Vec::new();
    let mut tables = String::new();
    for id in &ids {
        let mut client = session.runtime().await?;
        let deadline = session.deadline();
        let response = deadline
            .call(
                client.pod_sandbox_status(deadline.request(PodSandboxStatusRequest {
                    pod_sandbox_id: id.clone(),
                    verbose,
                })),
            )
            .await
            .context("get the status of pod sandboxes: get pod sandbox status")?;
        if args.output == StatusFormat::Table {
            tables.push_str(&pod_status_table(&response, verbose));
        } else {
            let status = response.status.clone().unwrap_or_default();
            documents.push(inspect::status_document(
                Some(pod_status_json(&status)?),
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::v1::PodSandboxMetadata;

    const SECOND: i64 = 1_000_000_000;

    fn pod(id: &str, name: &str, namespace: &str, created_seconds: i64) -> PodSandbox {
        PodSandbox {
            id: id.to_string(),
            metadata: Some(PodSandboxMetadata {
                name: name.to_string(),
                uid: format!("uid-{name}"),
                namespace: namespace.to_string(),
                attempt: 0,
            }),
            state: PodSandboxState::SandboxReady as i32,
            created_at: created_seconds * SECOND,
            labels: HashMap::new(),
            annotations: HashMap::new(),
            runtime_handler: String::new(),
        }
    }

    fn ids(pods: &[PodSandbox]) -> Vec<&str> {
        pods.iter().map(|pod| pod.id.as_str()).collect()
    }

    #[test]
    fn selection_filters_sorts_newest_first_and_truncates() {
        let pods = vec![
            pod("aaa111", "web", "default", 10),
            pod("bbb222", "db", "default", 30),
            pod("aaa333", "web-2", "kube-system", 20),
            PodSandbox {
                metadata: None,
                ..pod("ccc", "x", "y", 40)
            },
        ];
        assert_eq!(
            ids(&select_pods(pods.clone(), None, None, None, false, 0)),
            ["bbb222", "aaa333", "aaa111"]
        );
        assert_eq!(
            ids(&select_pods(
                pods.clone(),
                Some("aaa"),
                None,
                None,
                false,
                0
            )),
            ["aaa333", "aaa111"]
        );
        let web = NamePattern::new("^web").expect("pattern");
        let system = NamePattern::new("system").expect("pattern");
        assert_eq!(
            ids(&select_pods(
                pods.clone(),
                None,
                Some(&web),
                Some(&system),
                false,
                0
            )),
            ["aaa333"]
        );
        assert_eq!(
            ids(&select_pods(pods.clone(), None, None, None, true, 0)),
            ["bbb222"]
        );
        assert_eq!(
            ids(&select_pods(pods, None, None, None, false, 2)),
            ["bbb222", "aaa333"]
        );
    }

    #[test]
    fn pods_table_matches_crictl() {
        let mut notready = pod("0123456789abcdef0123", "web", "default", 100);
        notready.state = PodSandboxState::SandboxNotready as i32;
        notready.runtime_handler = "runc".into();
        if let Some(metadata) = notready.metadata.as_mut() {
            metadata.attempt = 1;
        }
        let pods = vec![pod("fedcba9876543210", "db", "kube-system", 0), notready];
        let text = pods_table(&pods, 220 * SECOND, false).expect("renders");
        let expected = "\
POD ID              CREATED             STATE               NAME                NAMESPACE           ATTEMPT             RUNTIME
fedcba9876543       3 minutes ago       Ready               db                  kube-system         0                   (default)
0123456789abc       2 minutes ago       NotReady            web                 default             1                   runc
";
        assert_eq!(text, expected);
        let untruncated = pods_table(&pods[..1], 220 * SECOND, true).expect("renders");
        assert!(untruncated.contains("fedcba9876543210   "), "{untruncated}");
    }

    #[test]
    fn verbose_pods() {
        let mut web = pod("p1", "web", "default", 1_714_557_600);
        web.labels.insert("b".into(), "2".into());
        web.labels.insert("a".into(), "1".into());
        let text = pods_verbose(&[web]).expect("renders");
        let expected = "\
ID: p1
Name: web
UID: uid-web
Namespace: default
Status: Ready
Created: 2024-05-01 10:00:00 +0000 UTC
Labels:
\ta -> 1
\tb -> 2
Runtime: (default)

";
        assert_eq!(text, expected);
    }

    #[test]
    fn states_parse_case_insensitively() {
        assert_eq!(
            parse_state(Some("Ready")).ok().flatten(),
            Some(PodSandboxState::SandboxReady)
        );
        assert_eq!(
            parse_state(Some("NOTREADY")).ok().flatten(),
            Some(PodSandboxState::SandboxNotready)
        );
        assert!(parse_state(None).expect("none").is_none());
        let error = parse_state(Some("running")).expect_err("invalid");
        assert_eq!(error.to_string(), "--state should be ready or notready");
    }

    #[test]
    fn pod_status_document() {
        let status = PodSandboxStatus {
            id: "p1".into(),
            created_at: 1_714_557_600 * SECOND + 5,
            state: PodSandboxState::SandboxReady as i32,
            ..PodSandboxStatus::default()
        };
        let json = pod_status_json(&status).expect("encodes").sorted();
        let text = json.to_pretty();
        assert!(
            text.contains("\"createdAt\": \"2024-05-01T10:00:00.000000005Z\""),
            "{text}"
        );
        assert!(text.contains("\"state\": \"SANDBOX_READY\""), "{text}");
        assert!(text.contains("\"network\": null"), "{text}");
        assert!(text.contains("\"labels\": {}"), "{text}");
    }

    #[test]
    fn go_maps() {
        let map = HashMap::from([
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "1".to_string()),
        ]);
        assert_eq!(go_map(&map), "map[a:1 b:2]");
        assert_eq!(go_map(&HashMap::new()), "map[]");
    }
}
