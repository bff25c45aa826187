//! Coxswain's development tasks, run as `cargo run -p xtask -- <task>`.
//!
//! - `gen-schema [--check]`: generates `crates/api/src/schema/generated.rs`, the table of every
//!   protobuf message of the built-in API (tags, JSON names, kinds, patch markers), from the
//!   sources of the pinned `k8s-pb` and `k8s-openapi` crates. `--check` fails instead of writing
//!   when the committed file differs.

mod emit;
mod go_layout;
mod k8s_openapi;
mod k8s_pb;
mod schema;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

/// The generated file, relative to the workspace root.
const GENERATED: &str = "crates/api/src/schema/generated.rs";

/// The crates the table is generated from, at the versions it describes.
const K8S_PB: (&str, &str) = ("k8s-pb", "0.9.0");
const K8S_OPENAPI: (&str, &str) = ("k8s-openapi", "0.29.0");

/// The Kubernetes release served: `k8s-openapi`'s module for it bounds the API versions,
/// messages and fields in the table. Its modules for later releases tell which fields `k8s-pb`,
/// which follows a later release, has from them.
const SERVED: (u32, u32) = (1, 33);

const USAGE: &str = "usage: cargo run -p xtask -- gen-schema [--check]";

fn main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["gen-schema"] => gen_schema(false),
        ["gen-schema", "--check"] => gen_schema(true),
        _ => {
            eprintln!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}

fn gen_schema(check: bool) -> Result<ExitCode> {
    let root = workspace_root()?;
    let sources = locate_sources(&root)?;
    let messages = k8s_pb::read(&sources.k8s_pb.join("src"))?;
    let releases = k8s_openapi::releases(&sources.k8s_openapi.join("src"))?;
    let (served, later): (Vec<_>, Vec<_>) = releases
        .into_iter()
        .filter(|(release, _)| *release >= SERVED)
        .partition(|(release, _)| *release == SERVED);
    let served = served
        .first()
        .with_context(|| format!("k8s-openapi has no release {SERVED:?}"))?;
    let served = k8s_openapi::read(&served.1)?;
    let later = later
        .iter()
        .map(|(_, dir)| k8s_openapi::read(dir))
        .collect::<Result<Vec<_>>>()?;
    let (mut schema, mut report) = schema::build(&messages, &served, &later)?;
    let layout_path = root.join(go_layout::PATH);
    let layout = std::fs::read_to_string(&layout_path)
        .with_context(|| format!("reading {}", layout_path.display()))?;
    let (unlisted, unused) = go_layout::apply(&mut schema.messages, &go_layout::parse(&layout)?)?;
    for (title, names) in [
        (
            "messages without a Go layout (their JSON is left as written)",
            unlisted,
        ),
        ("Go layouts of messages the schema leaves out", unused),
    ] {
        let names: Vec<String> = names.into_iter().collect();
        report.push_str(&format!(
            "{title}: {}\n  {}\n",
            names.len(),
            names.join(" ")
        ));
    }
    let text = emit::render(&schema);

    let path = root.join(GENERATED);
    if check {
        let committed = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if committed != text {
            eprintln!("{GENERATED} is out of date: run `cargo run -p xtask -- gen-schema`");
            return Ok(ExitCode::FAILURE);
        }
        eprintln!("{GENERATED} is up to date");
    } else {
        // What was derived rather than found, and what was left out: worth a look on upgrades.
        eprint!("{report}");
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {GENERATED} ({} bytes)", text.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// The workspace root: this crate's parent directory.
fn workspace_root() -> Result<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .context("xtask's manifest directory has no parent")
}

/// Where cargo unpacked the two source crates.
struct Sources {
    k8s_pb: PathBuf,
    k8s_openapi: PathBuf,
}

/// Asks `cargo metadata` for the source directories of the two crates. They are optional
/// dependencies of xtask behind the `upstream-sources` feature, so they are resolved (and
/// downloaded if need be) here but never compiled.
fn locate_sources(root: &Path) -> Result<Sources> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--features",
            "xtask/upstream-sources",
        ])
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parsing cargo metadata's output")?;
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata lists no packages")?;
    let find = |(name, version): (&str, &str)| -> Result<PathBuf> {
        let package = packages
            .iter()
            .find(|p| p["name"] == name && p["version"] == version)
            .with_context(|| format!("cargo metadata does not list {name} {version}"))?;
        let manifest = package["manifest_path"]
            .as_str()
            .with_context(|| format!("{name} {version} has no manifest_path"))?;
        Path::new(manifest)
            .parent()
            .map(Path::to_path_buf)
            .with_context(|| format!("{name}'s manifest path {manifest} has no parent"))
    };
    Ok(Sources {
        k8s_pb: find(K8S_PB)?,
        k8s_openapi: find(K8S_OPENAPI)?,
    })
}
