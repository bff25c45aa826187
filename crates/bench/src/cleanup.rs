//! Removing by force what a node's runtime can leave behind when a run stops half-way: the
//! containers runc still knows, the pods' cgroups (their processes killed first), and mounts
//! under a directory. Shared by the benchmarks and the end-to-end tests' clusters.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long killed processes get to leave their cgroup before it is given up on.
const CGROUP_EMPTY_WAIT: Duration = Duration::from_secs(5);

/// Runs `ip ARGS...`; an error carries its message.
pub fn ip(args: &[&str]) -> Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !output.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Everything of the runtime whose state is under `runtime_root` (`<data-dir>/agent/runtime`)
/// that is still there, and every mount under `mounts_under`.
pub fn force_clean(runtime_root: &Path, mounts_under: &Path) {
    let runc = runtime_root.join("runc");
    let listed = Command::new("runc")
        .arg("--root")
        .arg(&runc)
        .args(["list", "-q"])
        .output();
    for id in listed
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
        .lines()
    {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&runc)
            .args(["delete", "--force", id])
            .output();
    }
    for parent in recorded_cgroups(&runtime_root.join("pods")) {
        remove_cgroup(&parent);
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = mounts_under.display().to_string();
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    // Deepest first: a mount inside another goes before it.
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = Command::new("umount").args(["-l", point]).output();
    }
}

/// The cgroup parents of the pods the runtime recorded (`pods/*/sandbox.json`).
fn recorded_cgroups(pods: &Path) -> Vec<String> {
    let mut parents = BTreeSet::new();
    for entry in std::fs::read_dir(pods).into_iter().flatten().flatten() {
        let Ok(record) = std::fs::read(entry.path().join("sandbox.json")) else {
            continue;
        };
        let Ok(record) = serde_json::from_slice::<serde_json::Value>(&record) else {
            continue;
        };
        if let Some(parent) = record["cgroup_parent"].as_str() {
            parents.insert(parent.to_string());
        }
    }
    parents.into_iter().collect()
}

/// The directories of a cgroup tree, deepest first.
fn cgroup_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.to_path_buf()];
    let mut next = 0;
    while let Some(dir) = dirs.get(next).cloned() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(entry.path());
            }
        }
        next += 1;
    }
    dirs.reverse();
    dirs
}

/// Kills what is left in a pod's cgroup, in every hierarchy, and removes it once its
/// processes are gone (a cgroup with processes cannot be removed).
fn remove_cgroup(parent: &str) {
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let root = hierarchy.path().join(parent.trim_start_matches('/'));
        let deadline = Instant::now() + CGROUP_EMPTY_WAIT;
        while root.is_dir() {
            for dir in cgroup_dirs(&root) {
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
                let _ = std::fs::remove_dir(&dir);
            }
            if Instant::now() > deadline {
                break;
            }
            if root.is_dir() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
