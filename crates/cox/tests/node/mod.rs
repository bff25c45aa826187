//! The runtime harness: `cox runtime` in its own network namespace and temporary data dir,
//! driven with `cox crictl` as a user would. The pod bridge, pod addresses and every packet
//! stay inside that namespace. Dropping the node removes every pod (through the runtime), stops
//! the runtime, and then checks and cleans what could be left: runc containers, mounts, cgroups,
//! the namespace.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub const COX: &str = env!("CARGO_BIN_EXE_cox");

/// The offline test images, built by `dev/build-images` once per test run.
pub fn images_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("target/images");
    let status = Command::new(root.join("dev/build-images"))
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .expect("running dev/build-images");
    assert!(status.success(), "dev/build-images failed");
    dir
}

pub struct Node {
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

impl Node {
    /// A namespace and data dir with the test images imported, and the runtime serving.
    pub fn start() -> Self {
        let netns = format!(
            "cox-rt-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run(Command::new("ip").args(["netns", "add", &netns]));
        let node = Node {
            netns,
            dir: tempfile::tempdir().expect("temporary directory"),
            runtime: None,
        };
        run(Command::new("ip").args(["-n", &node.netns, "link", "set", "lo", "up"]));
        let images = images_dir();
        let mut import = Command::new(COX);
        import
            .args(["images", "--data-dir"])
            .arg(node.data_dir())
            .arg("import");
        for name in ["busybox.oci.tar", "nginx.oci.tar"] {
            import.arg(images.join(name));
        }
        run(&mut import);
        let mut node = node;
        node.start_runtime();
        node
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn root(&self) -> PathBuf {
        self.data_dir().join("agent/runtime")
    }

    pub fn socket(&self) -> PathBuf {
        self.root().join("cri.sock")
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.path().join("pod-logs")
    }

    /// Starts (or restarts) `cox runtime` on the same data dir and waits for its socket.
    pub fn start_runtime(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("runtime.log"))
            .expect("runtime log");
        // nsenter, not `ip netns exec`: that would also give the runtime a private mount
        // namespace, hiding its mounts from a restarted runtime and from the checks here.
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", self.netns))
            .args([COX, "runtime", "--data-dir"])
            .arg(self.data_dir())
            .args(["--pod-cidr", "10.88.0.0/24"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting cox runtime");
        self.runtime = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.crictl_output(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("cox runtime did not answer:\n{}", self.runtime_log());
    }

    /// Kills the runtime (SIGKILL: a crash, not a clean stop).
    pub fn kill_runtime(&mut self) {
        if let Some(mut child) = self.runtime.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn runtime_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("runtime.log")).unwrap_or_default()
    }

    pub fn crictl_output(&self, args: &[&str]) -> Output {
        Command::new(COX)
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

    /// A pod config named `name`, logging under the node's log dir.
    pub fn pod_config(&self, name: &str) -> String {
        self.config_file(
            &format!("{name}-pod.json"),
            &serde_json::json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
                "hostname": name,
                "log_directory": self.logs().join(name),
                "linux": {}
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

    /// runc containers the runtime's runc root still holds.
    pub fn runc_containers(&self) -> Vec<String> {
        let output = Command::new("runc")
            .arg("--root")
            .arg(self.root().join("runc"))
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
        self.kill_runtime();
        // What a failed test may have left: containers, mounts, cgroups.
        for id in self.runc_containers() {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(self.root().join("runc"))
                .args(["delete", "--force", &id])
                .output();
        }
        for point in self.mounts().iter().rev() {
            let _ = Command::new("umount").args(["-l", point]).output();
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.netns])
            .output();
    }
}
