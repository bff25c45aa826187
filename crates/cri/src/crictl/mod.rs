//! `cox crictl`: a client of any CRI runtime with the commands, flags and output of upstream's
//! `crictl` (kubernetes-sigs/cri-tools), for inspecting and driving a node's runtime by hand.
//!
//! Code map: this file holds the command line and the dispatch; `session` the connection,
//! timeouts and gRPC error wording; one file per family of commands (`pods`, `containers`,
//! `images`, `stats`, `logs`, `info`, `events`); `lookup` and `filters` find objects by ID prefix, label
//! and name; `output`, `json`, `protojson`, `inspect` and `timestamps` produce crictl's text.
//!
//! Unlike crictl, IDs are resolved here (a unique prefix of a listed ID is accepted), so that
//! prefixes work against runtimes that only accept full IDs.

mod attach;
#[cfg(test)]
mod command_tests;
mod config;
mod containers;
mod events;
#[cfg(test)]
mod fake_runtime;
mod filters;
mod images;
mod info;
mod inspect;
mod json;
mod logs;
mod lookup;
mod output;
mod pods;
mod portforward;
mod protojson;
mod session;
mod stats;
mod timestamps;

use std::io::Write as _;
use std::time::Duration;

use session::Session;

/// Where Coxswain's runtime serves CRI.
pub(crate) const DEFAULT_RUNTIME_ENDPOINT: &str = "unix:///var/lib/cox/agent/runtime/cri.sock";

/// crictl's default for connecting and for each call.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// `cox crictl`'s command line: crictl's global flags, then a command.
#[derive(Debug, clap::Parser)]
pub struct Crictl {
    /// Endpoint of the CRI container runtime service
    #[arg(
        short = 'r',
        long,
        env = "CONTAINER_RUNTIME_ENDPOINT",
        default_value = DEFAULT_RUNTIME_ENDPOINT
    )]
    runtime_endpoint: String,

    /// Endpoint of the CRI image manager service (default: the runtime endpoint)
    #[arg(short = 'i', long, env = "IMAGE_SERVICE_ENDPOINT")]
    image_endpoint: Option<String>,

    /// Timeout of connecting to the server and of each call (e.g. 2s, 20s); 0 or less is the
    /// default
    #[arg(
        short = 't',
        long,
        default_value = "2s",
        value_parser = timestamps::parse_timeout,
        allow_negative_numbers = true
    )]
    timeout: Duration,

    /// Enable debug mode
    #[arg(short = 'D', long)]
    debug: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Display runtime version information
    Version,
    /// Display information of the container runtime
    Info(info::InfoArgs),
    /// List images
    #[command(visible_aliases = ["image", "img"])]
    Images(images::ImagesArgs),
    /// Pull an image from a registry
    Pull(images::PullArgs),
    /// Remove one or more images
    Rmi(images::RmiArgs),
    /// Return the status of one or more images
    Inspecti(images::InspectiArgs),
    /// Return image filesystem info
    Imagefsinfo(images::ImageFsInfoArgs),
    /// List pods
    Pods(pods::PodsArgs),
    /// Run a new pod
    Runp(pods::RunpArgs),
    /// Stop one or more running pods
    Stopp(pods::StoppArgs),
    /// Remove one or more pods
    Rmp(pods::RmpArgs),
    /// Display the status of one or more pods
    Inspectp(pods::InspectpArgs),
    /// List containers
    Ps(containers::PsArgs),
    /// Create a new container
    Create(containers::CreateArgs),
    /// Start one or more created containers
    Start(containers::StartArgs),
    /// Stop one or more running containers
    Stop(containers::StopArgs),
    /// Remove one or more containers
    Rm(containers::RmArgs),
    /// Display the status of one or more containers
    Inspect(containers::InspectArgs),
    /// Update one or more running containers' resources
    Update(containers::UpdateArgs),
    /// Run a command in a running container
    Exec(containers::ExecArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Forward local ports to a pod
    PortForward(portforward::PortForwardArgs),
    /// Attach to a running container
    Attach(attach::AttachArgs),
    /// List container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// List pod statistics
    Statsp(stats::StatspArgs),
    /// Stream the events of containers
    #[command(visible_alias = "event")]
    Events(events::EventsArgs),
}

/// A command ran a process in a container that exited with this non-zero code; `run` ends
/// this process with the same code, as crictl does.
#[derive(Debug, thiserror::Error)]
#[error("command exited with code {0}")]
pub(crate) struct CommandExit(pub(crate) i32);

/// Runs one crictl command.
///
/// Errors come back as one line (the causes joined with `: `). Output cut short by a closed
/// pipe (`cox crictl ps | head -1`) is not an error. `exec` ends the process with the exit code
/// of the command it ran when that is not zero.
pub async fn run(cli: Crictl) -> anyhow::Result<()> {
    let mut session = Session::new(
        cli.runtime_endpoint,
        cli.image_endpoint,
        cli.timeout,
        cli.debug,
    );
    match dispatch(&mut session, cli.command).await {
        Ok(()) => Ok(()),
        Err(error) if is_broken_pipe(&error) => Ok(()),
        Err(error) => {
            if let Some(CommandExit(code)) = error.downcast_ref::<CommandExit>() {
                let _ = std::io::stdout().flush();
                let _ = std::io::stderr().flush();
                std::process::exit(*code);
            }
            Err(anyhow::anyhow!("{}", one_line(&error)))
        }
    }
}

/// The error and its causes joined with `: `, leaving out a cause that repeats the one before
/// it (transport errors often wrap an I/O error that says the same).
fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn dispatch(session: &mut Session, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Version => info::version(session).await,
        Command::Info(args) => info::info(session, args).await,
        Command::Images(args) => images::images(session, args).await,
        Command::Pull(args) => images::pull(session, args).await,
        Command::Rmi(args) => images::rmi(session, args).await,
        Command::Inspecti(args) => images::inspecti(session, args).await,
        Command::Imagefsinfo(args) => images::imagefsinfo(session, args).await,
        Command::Pods(args) => pods::pods(session, args).await,
        Command::Runp(args) => pods::runp(session, args).await,
        Command::Stopp(args) => pods::stopp(session, args).await,
        Command::Rmp(args) => pods::rmp(session, args).await,
        Command::Inspectp(args) => pods::inspectp(session, args).await,
        Command::Ps(args) => containers::ps(session, args).await,
        Command::Update(args) => containers::update(session, args).await,
        Command::Create(args) => containers::create(session, args).await,
        Command::Start(args) => containers::start(session, args).await,
        Command::Stop(args) => containers::stop(session, args).await,
        Command::Rm(args) => containers::rm(session, args).await,
        Command::Inspect(args) => containers::inspect(session, args).await,
        Command::Exec(args) => containers::exec(session, args).await,
        Command::Logs(args) => logs::run(session, args).await,
        Command::PortForward(args) => portforward::run(session, args).await,
        Command::Attach(args) => attach::run(session, args).await,
        Command::Stats(args) => stats::stats(session, args).await,
        Command::Statsp(args) => stats::statsp(session, args).await,
        Command::Events(args) => events::run(session, args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;

    #[test]
    fn command_line_is_consistent() {
        Crictl::command().debug_assert();
    }

    /// The `cox` binary embeds `Crictl` as a subcommand.
    #[derive(Debug, clap::Parser)]
    struct Cox {
        #[command(subcommand)]
        command: CoxCommand,
    }

    #[derive(Debug, clap::Subcommand)]
    enum CoxCommand {
        Crictl(Crictl),
    }

    fn parse(args: &[&str]) -> Result<Crictl, clap::Error> {
        let mut full = vec!["cox", "crictl"];
        full.extend_from_slice(args);
        Cox::try_parse_from(full).map(|cox| match cox.command {
            CoxCommand::Crictl(crictl) => crictl,
        })
    }

    #[test]
    fn global_flags_and_defaults() {
        let cli = parse(&["ps"]).expect("parses");
        assert_eq!(cli.timeout, DEFAULT_TIMEOUT);
        assert!(!cli.debug);
        // The environment may set CONTAINER_RUNTIME_ENDPOINT; the flag wins either way.
        let cli =
            parse(&["-r", "unix:///run/x.sock", "-t", "10s", "-D", "version"]).expect("parses");
        assert_eq!(cli.runtime_endpoint, "unix:///run/x.sock");
        assert_eq!(cli.timeout, Duration::from_secs(10));
        assert!(cli.debug);
        assert!(matches!(cli.command, Command::Version));
        let cli = parse(&["--timeout", "0", "version"]).expect("parses");
        assert_eq!(cli.timeout, DEFAULT_TIMEOUT);
        assert!(
            parse(&["--timeout", "5", "version"]).is_err(),
            "a unit is required"
        );
    }

    #[test]
    fn commands_take_crictls_short_flags() {
        let cli = parse(&[
            "ps", "-a", "-q", "-p", "abc", "-s", "exited", "-n", "2", "-o", "json",
        ])
        .expect("parses");
        assert!(matches!(cli.command, Command::Ps(_)));
        parse(&[
            "pods",
            "--name",
            "web",
            "--namespace",
            "default",
            "--label",
            "a=b",
            "-l",
            "-v",
        ])
        .expect("parses");
        parse(&["images", "--digests", "-q", "busybox"]).expect("parses");
        parse(&["img"]).expect("alias");
        parse(&["rmp", "-a"]).expect("rmp -a needs no IDs");
        assert!(parse(&["rmp"]).is_err(), "rmp needs IDs or -a");
        parse(&["rm", "-fa"]).expect("combined short flags");
        parse(&["stop", "-t", "30", "abc"]).expect("stop timeout");
        parse(&["logs", "-f", "-t", "--tail", "10", "--since", "5m", "abc"]).expect("parses");
        assert!(
            parse(&["logs", "--tail", "1", "--stream", "stdout", "abc"]).is_err(),
            "--tail and --stream are mutually exclusive"
        );
        parse(&["runp", "-r", "runc", "-T", "30s", "pod.json"]).expect("parses");
        parse(&[
            "create",
            "--with-pull",
            "--pt",
            "1m",
            "pod",
            "c.json",
            "p.json",
        ])
        .expect("parses");
        assert!(
            parse(&[
                "create",
                "--with-pull",
                "--no-pull",
                "pod",
                "c.json",
                "p.json"
            ])
            .is_err()
        );
        parse(&["stats", "-a", "-s", "2", "-o", "json"]).expect("parses");
        parse(&["inspect", "-o", "yaml", "abc", "def"]).expect("parses");
        parse(&["inspectp", "-o", "table", "-q"]).expect("parses");
        parse(&["pull", "--creds", "u:p", "-a", "k=v", "busybox"]).expect("parses");
        parse(&["rmi", "--prune"]).expect("parses");
        parse(&["info", "-o", "yaml"]).expect("parses");
        parse(&["events", "-o", "yaml"]).expect("parses");
        parse(&["event"]).expect("alias");
        assert!(
            parse(&["events", "-o", "go-template"]).is_err(),
            "no Go templates"
        );
    }

    #[test]
    fn exec_takes_the_command_verbatim() {
        let cli =
            parse(&["exec", "--timeout", "5", "abc", "sh", "-c", "echo -n hi"]).expect("parses");
        let Command::Exec(args) = cli.command else {
            panic!("exec")
        };
        assert_eq!(args.container, "abc");
        assert_eq!(args.command, ["sh", "-c", "echo -n hi"]);
        parse(&["exec", "-it", "abc", "sh"]).expect("interactive exec parses");
        assert!(parse(&["exec", "abc"]).is_err(), "a command is required");
    }

    #[tokio::test]
    async fn errors_are_one_line() {
        let cli = parse(&["-r", "unix:///nonexistent/cri.sock", "ps"]).expect("parses");
        let error = run(cli).await.expect_err("no runtime");
        let message = error.to_string();
        assert!(error.source().is_none(), "the causes are in the message");
        assert!(!message.contains('\n'), "{message}");
        assert_eq!(
            message,
            "listing containers: connect to the runtime endpoint \"unix:///nonexistent/cri.sock\": \
             transport error: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn broken_pipes_are_recognised_through_context() {
        let error = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing output");
        assert!(is_broken_pipe(&error));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
