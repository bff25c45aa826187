//! Debian's containerd with its CRI plugin, on directories of the caller's own, for measuring
//! and testing beside `cox runtime`. The configuration is the one RUNTIME-NOTES.md records as
//! working on these machines (overlayfs, runc without systemd cgroups, no negative
//! oom_score_adj, no AppArmor, the standard CNI plugins, a local pause image).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The sandbox image containerd is configured with; import `pause.oci.tar` before pods run.
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

/// A running containerd; stopped (and its pods' processes killed) when dropped.
#[derive(Debug)]
pub struct Containerd {
    dir: PathBuf,
    child: Option<Child>,
}

impl Containerd {
    /// Starts containerd in the network namespace at `netns` (a path such as
    /// `/var/run/netns/NAME`), with its state under `dir` and pods on `pod_cidr`.
    pub fn start(dir: &Path, netns: &str, pod_cidr: &str) -> Result<Self> {
        std::fs::create_dir_all(dir.join("cni"))?;
        std::fs::create_dir_all(dir.join("certs.d"))?;
        let bridge = format!("ctrd{}", std::process::id() % 10_000);
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "containerd-net",
            "plugins": [
                {"type": "bridge", "bridge": bridge, "isGateway": true, "hairpinMode": true,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]],
                          "routes": [{"dst": "0.0.0.0/0"}], "dataDir": dir.join("ipam")}},
                {"type": "portmap", "capabilities": {"portMappings": true}},
            ],
        });
        std::fs::write(dir.join("cni/10-containerd.conflist"), conflist.to_string())?;
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
"#,
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            socket = dir.join("c.sock").display(),
            cni = dir.join("cni").display(),
            certs = dir.join("certs.d").display(),
        );
        std::fs::write(dir.join("config.toml"), config)?;
        let log = std::fs::File::create(dir.join("containerd.log"))?;
        let child = Command::new("nsenter")
            .arg(format!("--net={netns}"))
            .arg("/usr/bin/containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting containerd")?;
        let containerd = Containerd {
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !containerd.socket().exists() {
            if Instant::now() > deadline {
                bail!(
                    "containerd did not start: see {}",
                    dir.join("containerd.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(containerd)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("c.sock")
    }

    /// Imports an image archive into the namespace the CRI plugin uses.
    pub fn import(&self, archive: &Path) -> Result<()> {
        let output = Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(["-n", "k8s.io", "images", "import"])
            .arg(archive)
            .output()
            .context("running ctr")?;
        if !output.status.success() {
            bail!(
                "ctr images import {}: {}",
                archive.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Stops containerd and kills the shims it left (they outlive it by design).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let state = self.dir.join("state").display().to_string();
        let _ = Command::new("pkill")
            .args(["-9", "-f", &format!("containerd-shim.*{state}")])
            .output();
        let _ = Command::new("pkill")
            .args([
                "-9",
                "-f",
                &format!("containerd-shim.*-address {}", self.socket().display()),
            ])
            .output();
        // Unmount what containerd mounted under its directories (rootfs, sandbox shm, netns).
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.dir.display().to_string();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            let _ = Command::new("umount").args(["-l", point]).output();
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop();
    }
}
