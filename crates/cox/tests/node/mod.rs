//! The runtime harness: a CRI runtime (`cox runtime`, or containerd to compare with) in its own
//! network namespace and temporary data dir, driven with `cox crictl` as a user would. The pod
//! bridge, pod addresses and every packet stay inside that namespace. Dropping the node removes
//! every pod (through the runtime), stops the runtime, and then cleans what could be left: shims,
//! runc containers, mounts, files outside the data dir, the namespace.

#![allow(dead_code)] // Each test binary uses a different part of this module.

pub mod containerd;
#[path = "../common/images.rs"]
mod images;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub const COX: &str = env!("CARGO_BIN_EXE_cox");

/// `NamespaceMode::CONTAINER`, for `namespace_options.pid`: what the kubelet sends for a pod
/// (and each of its containers) that does not share its process namespace.
pub const PID_PER_CONTAINER: i32 = 1;

pub use images::images_dir;

/// The CRI runtime a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `cox runtime`, ours.
    Cox,
    /// `cox runtime` running its containers with crun instead of runc.
    CoxCrun,
    /// Debian's containerd with its CRI plugin, the reference.
    Containerd,
}

impl Backend {
    /// The OCI runtime binary the backend runs containers with.
    pub fn oci(self) -> &'static str {
        match self {
            Backend::CoxCrun => "crun",
            Backend::Cox | Backend::Containerd => "runc",
        }
    }

    /// Whether this is `cox runtime` (with either OCI runtime).
    pub fn is_cox(self) -> bool {
        matches!(self, Backend::Cox | Backend::CoxCrun)
    }

    /// The start of every pod IP the backend's network config hands out.
    pub fn pod_ip_prefix(self) -> &'static str {
        match self {
            Backend::Cox | Backend::CoxCrun => "10.88.0.",
            Backend::Containerd => "10.89.0.",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Cox => "cox runtime",
            Backend::CoxCrun => "cox runtime (crun)",
            Backend::Containerd => "containerd",
        })
    }
}

pub struct Node {
    pub backend: Backend,
    pub netns: String,
    pub dir: tempfile::TempDir,
    runtime: Option<Child>,
}

pub fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// crun needs the controllers a hybrid cgroup layout leaves on its v2 hierarchy moved to v1
/// ones, which `cox runtime --runc crun` does when it starts. Done here once, before any
/// runtime of this test binary starts, so that containerd and runc running beside the crun
/// tests never see the host's layout change under them.
fn settle_cgroup_layout() {
    static SETTLED: std::sync::Once = std::sync::Once::new();
    SETTLED.call_once(|| {
        // If it cannot be done, the crun tests fail (crun refuses); the others need none of it.
        if let Err(e) = cox_runtime::cgroups::bind_unified_controllers_to_v1() {
            eprintln!("preparing the cgroup layout crun needs: {e}");
        }
    });
}

impl Node {
    /// A namespace and data dir with `backend` serving and the test images imported.
    pub fn start(backend: Backend) -> Self {
        settle_cgroup_layout();
        let netns = format!(
            "cox-rt-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run(Command::new("ip").args(["netns", "add", &netns]));
        let mut node = Node {
            backend,
            netns,
            dir: tempfile::tempdir().expect("temporary directory"),
            runtime: None,
        };
        run(Command::new("ip").args(["-n", &node.netns, "link", "set", "lo", "up"]));
        let images = images_dir();
        match backend {
            Backend::Cox | Backend::CoxCrun => {
                let mut import = Command::new(COX);
                import
                    .args(["images", "--data-dir"])
                    .arg(node.data_dir())
                    .arg("import");
                for name in ["busybox.oci.tar", "nginx.oci.tar"] {
                    import.arg(images.join(name));
                }
                run(&mut import);
                node.start_runtime();
            }
            Backend::Containerd => {
                node.containerd().write_config().expect("containerd config");
                node.start_runtime();
                // The pause image is the sandbox image the config names.
                for name in ["pause.oci.tar", "busybox.oci.tar", "nginx.oci.tar"] {
                    node.containerd()
                        .import(&images.join(name))
                        .expect("importing into containerd");
                }
            }
        }
        node
    }

    /// The built-in runtime's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The built-in runtime's own directory in its data dir.
    pub fn root(&self) -> PathBuf {
        self.data_dir().join("agent/runtime")
    }

    /// containerd's directory and paths.
    pub fn containerd(&self) -> containerd::Home {
        containerd::Home::new(
            self.dir.path().join("containerd"),
            &self.netns,
            containerd::POD_CIDR,
        )
    }

    pub fn socket(&self) -> PathBuf {
        match self.backend {
            Backend::Cox | Backend::CoxCrun => self.root().join("cri.sock"),
            Backend::Containerd => self.containerd().socket(),
        }
    }

    /// The runc root the runtime's containers are in.
    pub fn runc_root(&self) -> PathBuf {
        match self.backend {
            Backend::Cox | Backend::CoxCrun => self.root().join("runc"),
            Backend::Containerd => self.containerd().runc_root(),
        }
    }

    /// The memory cgroup a pod's containers are under (no `cgroup_parent` given).
    pub fn pod_cgroup(&self, pod: &str) -> PathBuf {
        let memory = Path::new("/sys/fs/cgroup/memory");
        match self.backend {
            Backend::Cox | Backend::CoxCrun => {
                memory.join("cox").join(format!("pod-{}", &pod[..16]))
            }
            // containerd puts every container, sandboxes too, at /NAMESPACE/ID.
            Backend::Containerd => memory.join("k8s.io").join(pod),
        }
    }

    /// The runtime's directories for a pod, present while the pod exists.
    pub fn pod_dirs(&self, pod: &str) -> Vec<PathBuf> {
        match self.backend {
            Backend::Cox | Backend::CoxCrun => vec![self.root().join("pods").join(pod)],
            Backend::Containerd => self.containerd().pod_dirs(pod),
        }
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.path().join("pod-logs")
    }

    /// Starts (or restarts) the runtime on the same dirs and waits until it answers CRI calls.
    /// Fails the test if it exits or stays silent.
    pub fn start_runtime(&mut self) {
        self.start_runtime_with(&[]);
    }

    /// Starts the runtime with extra flags (for `cox runtime`).
    pub fn start_runtime_with(&mut self, flags: &[&str]) {
        let _ = std::fs::remove_file(self.socket());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("runtime.log"))
            .expect("runtime log");
        // nsenter, not `ip netns exec`: that would also give the runtime a private mount
        // namespace, hiding its mounts from a restarted runtime and from the checks here.
        let mut command = Command::new("nsenter");
        command.arg(format!("--net=/var/run/netns/{}", self.netns));
        match self.backend {
            Backend::Cox | Backend::CoxCrun => {
                command
                    .args([COX, "runtime", "--data-dir"])
                    .arg(self.data_dir())
                    .args(["--pod-cidr", "10.88.0.0/24", "--runc", self.backend.oci()])
                    .args(flags);
            }
            Backend::Containerd => {
                let containerd = self.containerd().command();
                command
                    .arg(containerd.get_program())
                    .args(containerd.get_args());
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.backend));
        self.runtime = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.crictl_output(&["version"]).status.success() {
                return;
            }
            if let Some(Ok(Some(status))) = self.runtime.as_mut().map(Child::try_wait) {
                self.runtime = None;
                panic!(
                    "{} exited ({status}) before answering:\n{}",
                    self.backend,
                    self.runtime_log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not answer:\n{}", self.backend, self.runtime_log());
    }

    /// Kills the runtime (SIGKILL: a crash, not a clean stop).
    pub fn kill_runtime(&mut self) {
        if let Some(mut child) = self.runtime.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the runtime: SIGTERM, and SIGKILL if it is still there after a few seconds.
    pub fn stop_runtime(&mut self) {
        let Some(child) = self.runtime.as_mut() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .output();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                self.runtime = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill_runtime();
    }

    pub fn runtime_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("runtime.log")).unwrap_or_default()
    }

    /// Runs `cox crictl ARGS` in the node's network namespace, where the runtime's streaming
    /// server listens.
    pub fn crictl_output(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", self.netns))
            .arg(COX)
            .arg("crictl")
            .arg("--runtime-endpoint")
            .arg(format!("unix://{}", self.socket().display()))
            .args(["--timeout", "30s"])
            .args(args)
            .output()
            .expect("running cox crictl")
    }

    /// Runs `cox crictl ARGS`, which must succeed; returns its stdout.
    pub fn crictl(&self, args: &[&str]) -> String {
        let output = self.crictl_output(args);
        assert!(
            output.status.success(),
            "crictl {args:?} failed: {}\nruntime log:\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.runtime_log()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Writes a JSON config file for crictl and returns its path.
    pub fn config_file(&self, name: &str, value: &serde_json::Value) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, value.to_string()).expect("writing a config file");
        path.display().to_string()
    }

    /// A pod config named `name`, logging under the node's log dir. Like the kubelet's for a
    /// pod without `shareProcessNamespace`, it asks for a PID namespace per container: the CRI
    /// default (`POD`, the zero value) is one for the whole pod.
    pub fn pod_config(&self, name: &str) -> String {
        self.config_file(
            &format!("{name}-pod.json"),
            &serde_json::json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
                "hostname": name,
                "log_directory": self.logs().join(name),
                "linux": {"security_context": {"namespace_options": {"pid": PID_PER_CONTAINER}}}
            }),
        )
    }

    /// Runs a command inside the node's network namespace.
    pub fn in_netns(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    /// Fetches `url` from inside the namespace, retrying for a few seconds.
    pub fn http_get(&self, url: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let output = self.in_netns(&["curl", "-sS", "--max-time", "2", url]);
            if output.status.success() {
                return String::from_utf8_lossy(&output.stdout).into_owned();
            }
            if Instant::now() > deadline {
                panic!("GET {url}: {}", String::from_utf8_lossy(&output.stderr));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Mount points under the data dir.
    pub fn mounts(&self) -> Vec<String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let dir = self.dir.path().display().to_string();
        info.lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&dir))
            .map(str::to_string)
            .collect()
    }

    /// Containers the runtime's runc (or crun) root still holds.
    pub fn runc_containers(&self) -> Vec<String> {
        let output = Command::new(self.backend.oci())
            .arg("--root")
            .arg(self.runc_root())
            .args(["list", "-q"])
            .output()
            .expect("runc list");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.runtime.is_some() {
            let _ = self.crictl_output(&["rmp", "--all", "--force"]);
        }
        self.stop_runtime();
        // What a failed test may have left: shims, containers (and so cgroups), mounts, files.
        if self.backend == Backend::Containerd {
            self.containerd().kill_shims();
        }
        for id in self.runc_containers() {
            let _ = Command::new(self.backend.oci())
                .arg("--root")
                .arg(self.runc_root())
                .args(["delete", "--force", &id])
                .output();
        }
        if self.backend == Backend::Containerd {
            self.containerd().remove_outside_files();
        }
        for point in self.mounts().iter().rev() {
            let _ = Command::new("umount").args(["-l", point]).output();
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.netns])
            .output();
    }
}
