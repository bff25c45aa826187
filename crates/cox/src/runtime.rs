//! `cox runtime` (the container runtime served as CRI), `cox shim` (one per container, started
//! by the runtime) and `cox images` (the image store, offline).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use cox_runtime::images::{ImageStore, archive};
use cox_runtime::{Runtime, RuntimeConfig};

/// How the runtime runs containers: flags of `cox runtime`, `cox server` and `cox images`.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeOptions {
    /// The OCI runtime binary.
    #[arg(long, default_value = "runc")]
    runc: PathBuf,
    /// Where the CNI plugins are.
    #[arg(long, default_value = "/usr/lib/cni")]
    cni_bin_dir: PathBuf,
    /// The node's pod bridge.
    #[arg(long, default_value = "cox0")]
    bridge: String,
    /// Registry mirrors and credentials, in k3s's registries.yaml shape.
    #[arg(long, default_value = "/etc/cox/registries.yaml")]
    private_registry: PathBuf,
}

impl RuntimeOptions {
    /// The runtime's configuration, its state under `<data_dir>/agent/runtime`.
    pub fn config(&self, data_dir: &std::path::Path, pod_cidr: &str) -> Result<RuntimeConfig> {
        let shim = std::env::current_exe().context("finding the cox binary for the shim")?;
        let mut config = RuntimeConfig::new(&data_dir.join("agent/runtime"), shim);
        config.runc = self.runc.clone();
        config.network.bin_dir = self.cni_bin_dir.clone();
        config.network.pod_cidr = pod_cidr.to_string();
        config.network.bridge = self.bridge.clone();
        config.registries = self.private_registry.clone();
        Ok(config)
    }
}

/// Flags shared by everything that opens the runtime's state.
#[derive(Debug, clap::Args)]
pub struct RuntimeFlags {
    /// Where Coxswain keeps its state; the runtime's is under `<data-dir>/agent/runtime`.
    #[arg(long, default_value = "/var/lib/cox")]
    data_dir: PathBuf,
    /// This node's pod address range.
    #[arg(long, default_value = "10.42.0.0/24")]
    pod_cidr: String,
    #[command(flatten)]
    options: RuntimeOptions,
}

impl RuntimeFlags {
    fn config(&self) -> Result<RuntimeConfig> {
        self.options.config(&self.data_dir, &self.pod_cidr)
    }
}

/// Opens the runtime, imports `<data_dir>/agent/images/*.tar` it has not seen, and serves CRI
/// on its socket until `shutdown`.
pub async fn serve(
    config: RuntimeConfig,
    data_dir: &std::path::Path,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<()> {
    let socket = config.socket();
    let runtime = Arc::new(tokio::task::spawn_blocking(move || Runtime::open(config)).await??);
    let images_dir = data_dir.join("agent/images");
    let store = runtime.images().clone();
    for (path, outcome) in
        tokio::task::spawn_blocking(move || archive::import_dir(&store, &images_dir)).await?
    {
        match outcome {
            Ok(n) => tracing::info!(archive = %path.display(), images = n, "imported"),
            Err(e) => tracing::warn!(archive = %path.display(), error = %e, "import failed"),
        }
    }
    tracing::info!(socket = %socket.display(), "serving CRI");
    cox_runtime::server::serve(runtime, &socket, shutdown).await
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    flags: RuntimeFlags,
}

/// `cox runtime`: imports `<data-dir>/agent/images/*.tar`, then serves CRI until SIGTERM or
/// SIGINT. Containers keep running when it stops.
pub async fn run(args: Args) -> Result<()> {
    let config = args.flags.config()?;
    let shutdown = async {
        if let Err(e) = crate::server::shutdown_signal().await {
            tracing::error!(error = %e, "waiting for a shutdown signal");
        }
    };
    serve(config, &args.flags.data_dir, shutdown).await
}

#[derive(Debug, clap::Args)]
pub struct ShimArgs {
    #[arg(long)]
    id: String,
    #[arg(long)]
    bundle: PathBuf,
    #[arg(long)]
    runc: PathBuf,
    #[arg(long)]
    runc_root: PathBuf,
    #[arg(long)]
    log_path: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    log_max_bytes: u64,
    #[arg(long, default_value_t = 1)]
    log_max_files: usize,
    #[arg(long)]
    attach_socket: Option<PathBuf>,
    #[arg(long)]
    stdin: bool,
    #[arg(long)]
    stdin_once: bool,
}

/// `cox shim`: runs without tokio, to its container's end.
pub fn shim(args: ShimArgs) -> i32 {
    cox_runtime::shim::run(&cox_runtime::shim::ShimOptions {
        id: args.id,
        bundle: args.bundle,
        runc: args.runc,
        runc_root: args.runc_root,
        log_path: args.log_path,
        log_max_bytes: args.log_max_bytes,
        log_max_files: args.log_max_files,
        attach_socket: args.attach_socket,
        stdin: args.stdin,
        stdin_once: args.stdin_once,
    })
}

#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    flags: RuntimeFlags,
    #[command(subcommand)]
    command: ImagesCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ImagesCommand {
    /// Import OCI or `docker save` archives.
    Import { files: Vec<PathBuf> },
    /// Pull an image from its registry (or a mirror in the registries file), showing progress.
    Pull { image: String },
    /// List images.
    #[command(alias = "ls")]
    List,
    /// Show an image's record as JSON.
    Inspect { image: String },
    /// Remove images not used by any container.
    #[command(alias = "rmi")]
    Rm { images: Vec<String> },
}

/// `cox images`: works on the store directly, so it also works while no runtime runs.
pub fn images(args: ImagesArgs) -> Result<()> {
    let config = args.flags.config()?;
    let store = ImageStore::open(config.root.join("images"))
        .with_context(|| format!("opening the image store under {}", config.root.display()))?;
    match args.command {
        ImagesCommand::Import { files } => {
            anyhow::ensure!(!files.is_empty(), "name at least one archive to import");
            for file in files {
                let images = archive::import(&store, &file)
                    .with_context(|| format!("importing {}", file.display()))?;
                for image in images {
                    let name = image
                        .repo_tags
                        .first()
                        .cloned()
                        .unwrap_or_else(|| image.id.to_string());
                    println!("imported {name} ({})", image.id);
                }
            }
        }
        ImagesCommand::Pull { image } => {
            let reference = cox_runtime::images::Reference::parse(&image)?;
            let registries = cox_runtime::images::registries::Registries::load(&config.registries)?;
            let progress = Progress::default();
            let record = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(cox_runtime::images::registry::pull(
                    &store,
                    &registries,
                    &reference,
                    None,
                    |update| progress.show(&update),
                ))?;
            progress.finish();
            println!("pulled {reference} ({})", record.id);
        }
        ImagesCommand::List => {
            println!(
                "{:<50} {:<20} {:<15} {:>10}",
                "IMAGE", "TAG", "IMAGE ID", "SIZE"
            );
            for image in store.list()? {
                let id = &image.id.hex()[..13];
                let size = format!("{:.1}MB", image.size as f64 / 1_000_000.0);
                if image.repo_tags.is_empty() {
                    println!("{:<50} {:<20} {id:<15} {size:>10}", "<none>", "<none>");
                }
                for tag in &image.repo_tags {
                    let (name, tag) = tag.rsplit_once(':').unwrap_or((tag, ""));
                    println!("{name:<50} {tag:<20} {id:<15} {size:>10}");
                }
            }
        }
        ImagesCommand::Inspect { image } => {
            let record = store
                .resolve(&image)?
                .with_context(|| format!("image {image:?} not found"))?;
            println!("{}", serde_json::to_string_pretty(&record)?);
        }
        ImagesCommand::Rm { images } => {
            let in_use = containers_using_images(&config.root)?;
            for image in images {
                let removed = store.remove(&image, &in_use)?;
                println!("Deleted: {}", removed.id);
            }
        }
    }
    Ok(())
}

/// The images the runtime's containers use, read from its records on disk.
fn containers_using_images(
    root: &std::path::Path,
) -> Result<Vec<(cox_runtime::digest::Digest, String)>> {
    let mut used = Vec::new();
    let Ok(entries) = std::fs::read_dir(root.join("containers")) else {
        return Ok(used);
    };
    for entry in entries.flatten() {
        let Ok(bytes) = std::fs::read(entry.path().join("container.json")) else {
            continue;
        };
        if let Ok(record) = serde_json::from_slice::<cox_runtime::runtime::ContainerRecord>(&bytes)
        {
            used.push((record.image_id, record.id));
        }
    }
    Ok(used)
}

/// A progress bar per blob on stderr, redrawn in place when stderr is a terminal and printed
/// once per finished blob otherwise.
#[derive(Debug, Default)]
struct Progress {
    blobs: std::sync::Mutex<Vec<(String, u64, u64)>>,
}

impl Progress {
    fn show(&self, update: &cox_runtime::images::registry::PullProgress) {
        use std::io::{IsTerminal, Write};
        let mut blobs = self.blobs.lock().unwrap_or_else(|e| e.into_inner());
        let short = update.digest.hex()[..12].to_string();
        let finished = update.total > 0 && update.downloaded >= update.total;
        match blobs.iter_mut().find(|(digest, _, _)| *digest == short) {
            Some(entry) => {
                let was_finished = entry.2 > 0 && entry.1 >= entry.2;
                entry.1 = update.downloaded;
                entry.2 = update.total;
                if !std::io::stderr().is_terminal() {
                    if finished && !was_finished {
                        eprintln!("{short}: done ({})", bytes(update.total));
                    }
                    return;
                }
            }
            None => blobs.push((short, update.downloaded, update.total)),
        }
        if !std::io::stderr().is_terminal() {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        // Move up over the previous drawing, then draw every blob's line again.
        if blobs.len() > 1 {
            let _ = write!(stderr, "\x1b[{}F", blobs.len() - 1);
        } else {
            let _ = write!(stderr, "\r");
        }
        for (index, (digest, done, total)) in blobs.iter().enumerate() {
            let width = 30;
            let filled = (*done * width).checked_div(*total).unwrap_or(0).min(width) as usize;
            let bar = format!(
                "{}{}",
                "=".repeat(filled),
                " ".repeat(width as usize - filled)
            );
            let _ = write!(
                stderr,
                "\x1b[2K{digest}: [{bar}] {} / {}",
                bytes(*done),
                bytes(*total)
            );
            if index + 1 < blobs.len() {
                let _ = writeln!(stderr);
            }
        }
        let _ = stderr.flush();
    }

    fn finish(&self) {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
