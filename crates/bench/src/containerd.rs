//! Debian's containerd (1.6, with its CRI plugin) as a node's runtime, so that the runtime's
//! tests and benchmark run the same flows against a reference implementation, with the
//! configuration RUNTIME-NOTES.md records as working on these machines. Whatever containerd can be told to keep
//! in the node's directory is kept there: root, state, sockets, the runc root, the CNI config
//! and IP allocations, the pods' network namespace mounts. What it always writes elsewhere
//! (shim sockets in `/run/containerd/s`, libcni's result cache in `/var/lib/cni/results`) is
//! removed at teardown by [`Home::remove_outside_files`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub const BINARY: &str = "/usr/bin/containerd";
/// The bridge the CNI config makes in the node's namespace (the built-in runtime's is `cox0`).
pub const BRIDGE: &str = "ctrd0";
/// The containerd namespace the CRI plugin keeps its pods, containers and images in.
const NAMESPACE: &str = "k8s.io";
const SANDBOX_IMAGE: &str = "registry.k8s.io/pause:3.10";
const SHIM: &str = "containerd-shim-runc-v2";
const SHIM_SOCKETS: &str = "/run/containerd/s/";
const CNI_RESULTS: &str = "/var/lib/cni/results";
/// The network name go-cni gives the loopback it adds to every pod.
const LOOPBACK_NETWORK: &str = "cni-loopback";

/// One containerd's directory, and the CNI network name that is its own.
#[derive(Debug)]
pub struct Home {
    dir: PathBuf,
    network: String,
    pod_cidr: String,
}

impl Home {
    /// `network` names the CNI network and so its cache entries; it must be unique on the host.
    pub fn new(dir: PathBuf, network: &str, pod_cidr: &str) -> Self {
        Home {
            dir,
            network: network.to_string(),
            pod_cidr: pod_cidr.to_string(),
        }
    }

    /// The CRI (and containerd API) socket. Kept short: unix socket paths end at 107 bytes,
    /// and containerd adds `.ttrpc` for a second one.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("c.sock")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The runc root of the CRI namespace (the runc options' `Root`, plus the namespace).
    pub fn runc_root(&self) -> PathBuf {
        self.dir.join("runc").join(NAMESPACE)
    }

    fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// The shims' bundle directories, one per container and sandbox the shims know.
    fn tasks(&self) -> PathBuf {
        self.state()
            .join("io.containerd.runtime.v2.task")
            .join(NAMESPACE)
    }

    /// Directories that hold a pod sandbox's files while it exists.
    pub fn pod_dirs(&self, pod: &str) -> Vec<PathBuf> {
        vec![
            self.root()
                .join("io.containerd.grpc.v1.cri/sandboxes")
                .join(pod),
            self.state()
                .join("io.containerd.grpc.v1.cri/sandboxes")
                .join(pod),
            self.tasks().join(pod),
        ]
    }

    /// Writes containerd's config and the CNI network config.
    pub fn write_config(&self) -> Result<()> {
        let socket = self.socket();
        if socket.as_os_str().len() + ".ttrpc".len() >= 108 {
            bail!(
                "socket path too long for a unix socket: {}",
                socket.display()
            );
        }
        for dir in ["cni", "certs.d"] {
            std::fs::create_dir_all(self.dir.join(dir)).context("containerd directories")?;
        }
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": self.network,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.pod_cidr}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": self.dir.join("ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": true}},
            ],
        });
        std::fs::write(self.dir.join("cni/10-pods.conflist"), conflist.to_string())
            .context("writing the CNI config")?;
        let path = |p: PathBuf| -> Result<String> {
            let text = p.display().to_string();
            if text.contains(['"', '\\']) {
                bail!("path needs TOML escaping: {text}");
            }
            Ok(text)
        };
        // Plugins left out: `opt` would create /opt/containerd; the other snapshotters only
        // probe and log why they cannot work here.
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  # Root here lacks CAP_SYS_RESOURCE: no negative oom_score_adj (runc would fail).
  restrict_oom_score_adj = true
  disable_apparmor = true
  # Pod network namespaces are mounted under the state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "{runc}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
"#,
            root = path(self.root())?,
            state = path(self.state())?,
            socket = path(socket)?,
            runc = path(self.dir.join("runc"))?,
            cni = path(self.dir.join("cni"))?,
            certs = path(self.dir.join("certs.d"))?,
        );
        std::fs::write(self.config(), config).context("writing containerd's config")
    }

    /// The command that runs containerd (to be run inside the node's network namespace).
    pub fn command(&self) -> Command {
        let mut command = Command::new(BINARY);
        command.arg("--config").arg(self.config());
        command
    }

    /// Imports an image archive where the CRI plugin sees it.
    pub fn import(&self, archive: &Path) -> Result<()> {
        let output = Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(["-n", NAMESPACE, "images", "import"])
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

    /// Shims serving this containerd (found by the `-address` they were started with): they
    /// outlive containerd by design.
    pub fn shims(&self) -> Vec<u32> {
        let socket = self.socket();
        let socket = socket.as_os_str().as_encoded_bytes();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                let is_shim = args.first().is_some_and(|a| a.ends_with(SHIM.as_bytes()));
                let ours = args
                    .windows(2)
                    .any(|w| w[0] == b"-address" && w[1] == socket);
                (is_shim && ours).then_some(pid)
            })
            .collect()
    }

    /// Kills the shims left serving this containerd. Their containers live on: runc deletes
    /// them after this.
    pub fn kill_shims(&self) {
        let pids: Vec<String> = self.shims().iter().map(u32::to_string).collect();
        if !pids.is_empty() {
            let _ = Command::new("kill").arg("-KILL").args(&pids).output();
        }
    }

    /// Removes what this containerd's shims and CNI calls left outside its directory: shim
    /// sockets of killed shims, and cached CNI results of pods never torn down. Both exist only
    /// when a pod was not removed through the runtime.
    pub fn remove_outside_files(&self) {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(self.tasks())
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = entry.file_name().to_string_lossy().into_owned();
            // The bundle records the shim's socket: unix:///run/containerd/s/HASH.
            if let Ok(address) = std::fs::read_to_string(entry.path().join("address"))
                && let Some(path) = address.trim().strip_prefix("unix://")
                && path.starts_with(SHIM_SOCKETS)
            {
                let _ = std::fs::remove_file(path);
            }
            ids.push(id);
        }
        let ours = format!("{}-", self.network);
        for entry in std::fs::read_dir(CNI_RESULTS)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let loopback = ids
                .iter()
                .any(|id| name.starts_with(&format!("{LOOPBACK_NETWORK}-{id}-")));
            if name.starts_with(&ours) || loopback {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A containerd running in a network namespace; stopped, with its shims and leftovers, when
/// dropped.
#[derive(Debug)]
pub struct Containerd {
    home: Home,
    child: Option<Child>,
}

impl Containerd {
    /// Writes the configuration and starts containerd in the network namespace at `netns`
    /// (a path such as `/var/run/netns/NAME`); returns once it answers on its socket.
    pub fn start(home: Home, netns: &str) -> Result<Self> {
        home.write_config()?;
        let log = std::fs::File::create(home.dir.join("containerd.log"))?;
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={netns}"))
            .arg(BINARY)
            .arg("--config")
            .arg(home.config())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = command.spawn().context("starting containerd")?;
        let mut containerd = Containerd {
            home,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !containerd.home.socket().exists() {
            if let Some(child) = containerd.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!("containerd exited ({status}) before answering");
            }
            if Instant::now() > deadline {
                bail!("containerd did not start in 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(containerd)
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    /// Stops containerd, then what it leaves running or written by design: shims, their
    /// sockets, CNI result files, and mounts under its directory.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.home.kill_shims();
        self.home.remove_outside_files();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.home.dir.display().to_string();
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
