//! The end-to-end harness: a `cox server` in its own network namespace and temporary data
//! directory, driven by the real kubectl run inside that namespace. Dropping the cluster stops
//! the server and deletes the namespace, so tests run side by side and leave the host clean.

#![allow(dead_code)] // Each test binary uses a different part of this module.

#[path = "../common/images.rs"]
pub mod images;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The real kubectl: the dispatcher on PATH, or one of the versioned binaries beside it.
pub const KUBECTL: &str = "kubectl";
pub const VERSIONED_KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";

pub struct Cluster {
    pub netns: String,
    pub dir: tempfile::TempDir,
    server: Option<Child>,
    /// Whether the server runs its node agent (the container runtime and the kubelet).
    agent: bool,
    /// More `cox server` flags.
    extra_args: Vec<String>,
    /// Whether the network namespace is this cluster's own (not a [`Cluster::peer`]'s).
    owns_netns: bool,
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

impl Cluster {
    /// Starts a control-plane-only server (`--disable-agent`) and waits until it answers.
    pub fn start() -> Self {
        Self::start_as(false, &[])
    }

    /// As [`Cluster::start`], with more `cox server` flags.
    pub fn start_and(extra_args: &[&str]) -> Self {
        Self::start_as(false, extra_args)
    }

    /// Starts a server with its node agent: the runtime and the kubelet run pods. The test
    /// images (`dev/build-images`) are imported from `<data-dir>/agent/images` at start.
    pub fn start_with_agent() -> Self {
        Self::start_as(true, &[])
    }

    /// As [`Cluster::start_with_agent`], with more `cox server` flags.
    pub fn start_with_agent_and(extra_args: &[&str]) -> Self {
        Self::start_as(true, extra_args)
    }

    /// A control-plane-only cluster whose server is not started yet: the test sets up what
    /// it needs in the namespace first, then calls [`Cluster::start_server`].
    pub fn unstarted(extra_args: &[&str]) -> Self {
        Self::new(false, extra_args)
    }

    /// Another control-plane-only server in this cluster's network namespace, with a data
    /// directory of its own, started with `extra_args` (e.g. the same `--datastore-endpoint`
    /// and another `--https-listen-port`).
    pub fn peer(&self, extra_args: &[&str]) -> Self {
        let mut peer = Self {
            netns: self.netns.clone(),
            dir: tempfile::tempdir().expect("temporary directory"),
            server: None,
            agent: false,
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
            owns_netns: false,
        };
        peer.start_server();
        peer
    }

    fn new(agent: bool, extra_args: &[&str]) -> Self {
        let netns = format!(
            "cox-e2e-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run(Command::new("ip").args(["netns", "add", &netns]));
        let dir = tempfile::tempdir().expect("temporary directory");
        let cluster = Self {
            netns,
            dir,
            server: None,
            agent,
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
            owns_netns: true,
        };
        run(Command::new("ip").args(["-n", &cluster.netns, "link", "set", "lo", "up"]));
        cluster
    }

    fn start_as(agent: bool, extra_args: &[&str]) -> Self {
        let mut cluster = Self::new(agent, extra_args);
        if agent {
            let images = cluster.data_dir().join("agent/images");
            std::fs::create_dir_all(&images).expect("images dir");
            let built = images::images_dir();
            for name in ["busybox.oci.tar", "nginx.oci.tar"] {
                std::fs::copy(built.join(name), images.join(name)).expect("copying a test image");
            }
        }
        cluster.start_server();
        cluster
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The node's resolver settings the cluster gets: a search domain, and a nameserver at
    /// 127.0.0.53 inside the cluster's namespace, where nothing answers unless the test
    /// starts a resolver of its own there: no test can reach a real resolver.
    pub fn resolv_conf(&self) -> PathBuf {
        let path = self.dir.path().join("resolv.conf");
        if !path.exists() {
            std::fs::write(&path, "search example.test\nnameserver 127.0.0.53\n")
                .expect("writing resolv.conf");
        }
        path
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// (Re)starts the server on the same data directory.
    pub fn start_server(&mut self) {
        let _ = std::fs::remove_file(self.kubeconfig());
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("server log");
        let mut command = if self.agent {
            // nsenter enters only the network namespace: the runtime's mounts stay visible to
            // the test (and to a restarted server), which `ip netns exec` would hide.
            let mut command = Command::new("nsenter");
            command
                .arg(format!("--net=/var/run/netns/{}", self.netns))
                .args([env!("CARGO_BIN_EXE_cox"), "server"])
                .args(["--node-name", "node-1", "--pod-log-dir"])
                .arg(self.dir.path().join("pod-logs"))
                .arg("--resolv-conf")
                .arg(self.resolv_conf());
            command
        } else {
            let mut command = Command::new("ip");
            command
                .args([
                    "netns",
                    "exec",
                    &self.netns,
                    env!("CARGO_BIN_EXE_cox"),
                    "server",
                ])
                .arg("--disable-agent");
            command
        };
        let child = command
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--write-kubeconfig")
            .arg(self.kubeconfig())
            .args(["--bind-address", "127.0.0.1", "--node-ip", "127.0.0.1"])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("server log"))
            .stderr(log)
            .spawn()
            .expect("starting cox server");
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.kubeconfig().exists()
                && self.kubectl(&["get", "--raw", "/readyz"]).status.success()
            {
                return;
            }
            if let Some(server) = self.server.as_mut()
                && let Ok(Some(status)) = server.try_wait()
            {
                panic!("cox server exited with {status}:\n{}", self.server_log());
            }
            assert!(
                Instant::now() < deadline,
                "cox server did not become ready:\n{}",
                self.server_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop_server(&mut self) {
        if let Some(mut server) = self.server.take() {
            // `ip netns exec` execs the server, so this is the server's pid.
            let pid = server.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            // Wait for it to exit (a reaping thread reports it), SIGKILL after 10 s.
            let (exited, exit) = std::sync::mpsc::channel();
            let reaper = std::thread::spawn(move || {
                let _ = server.wait();
                let _ = exited.send(());
            });
            if exit.recv_timeout(Duration::from_secs(10)).is_err() {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
            let _ = reaper.join();
        }
    }

    /// Kills the server with SIGKILL, as a crash would: it cleans nothing up.
    pub fn kill_server(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs a kubectl (by path) inside the cluster's network namespace.
    pub fn kubectl_with(&self, kubectl: &Path, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(kubectl)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("running kubectl (is it installed?)")
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with(Path::new(KUBECTL), args)
    }

    /// Runs kubectl and returns its standard output, failing the test if it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns its standard error.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            !output.status.success(),
            "kubectl {args:?} should have failed but printed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Writes a file in the cluster's directory and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("writing a test file");
        path.display().to_string()
    }

    /// curl inside the cluster's network namespace as the admin (client certificate), against
    /// `path` on the API server; returns what curl printed.
    pub fn curl_admin(&self, args: &[&str], path: &str) -> String {
        String::from_utf8_lossy(&self.curl_admin_bytes(args, path)).into_owned()
    }

    /// [`Cluster::curl_admin`], the answer's bytes as they came.
    pub fn curl_admin_bytes(&self, args: &[&str], path: &str) -> Vec<u8> {
        let tls = self.data_dir().join("server/tls");
        let (cert, key, ca) = (
            tls.join("admin.crt"),
            tls.join("admin.key"),
            tls.join("ca.crt"),
        );
        let url = format!("https://127.0.0.1:6443{path}");
        let mut all = vec![
            "-s",
            "--cert",
            path_str(&cert),
            "--key",
            path_str(&key),
            "--cacert",
            path_str(&ca),
        ];
        all.extend_from_slice(args);
        all.push(&url);
        self.exec("curl", &all).stdout
    }

    /// Gives the cluster's namespace what a real host has: a second address (192.0.2.1)
    /// and a default route through a gateway, 192.0.2.254, in a namespace of its own (the
    /// "outside": [`Cluster::exec_outside`]). The gateway forwards nothing, so packets that
    /// took the default route would vanish: a prompt refusal shows the node's own rules
    /// turned them away.
    pub fn add_uplink(&self) {
        let outside = self.outside_netns();
        run(Command::new("ip").args(["netns", "add", &outside]));
        let ip = |args: &[&str]| run(Command::new("ip").args(["-n", &self.netns]).args(args));
        let out = |args: &[&str]| run(Command::new("ip").args(["-n", &outside]).args(args));
        ip(&[
            "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns", &outside,
        ]);
        ip(&["addr", "add", "192.0.2.1/24", "dev", "uplink"]);
        out(&["addr", "add", "192.0.2.254/24", "dev", "eth0"]);
        out(&["link", "set", "eth0", "up"]);
        out(&["link", "set", "lo", "up"]);
        ip(&["link", "set", "uplink", "up"]);
        ip(&[
            "route",
            "add",
            "default",
            "via",
            "192.0.2.254",
            "dev",
            "uplink",
        ]);
    }

    fn outside_netns(&self) -> String {
        format!("{}-out", self.netns)
    }

    /// Runs a command on the "outside" host [`Cluster::add_uplink`] made (192.0.2.254).
    pub fn exec_outside(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.outside_netns(), program])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"))
    }

    /// A kubeconfig for this cluster that authenticates with `token` only (no client
    /// certificate), e.g. a ServiceAccount's.
    pub fn token_kubeconfig(&self, name: &str, token: &str) -> PathBuf {
        let field = |path: &str| {
            self.ok(&[
                "config",
                "view",
                "--raw",
                "-o",
                &format!("jsonpath={{.clusters[0].cluster.{path}}}"),
            ])
        };
        let (server, ca) = (field("server"), field("certificate-authority-data"));
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
        );
        std::fs::write(&path, text).expect("writing a kubeconfig");
        path
    }

    /// Runs kubectl with another kubeconfig (see [`Cluster::token_kubeconfig`]).
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        let mut all = vec!["--kubeconfig", path_str(kubeconfig)];
        all.extend_from_slice(args);
        self.exec("kubectl", &all)
    }

    /// Runs a command inside the cluster's network namespace.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.netns, program])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"))
    }
}

/// Waits until `check` holds, polling; fails the test after `limit`.
pub fn wait_until(what: &str, limit: Duration, check: impl FnMut() -> bool) {
    wait_until_or_explain(what, limit, check, String::new);
}

/// [`wait_until`], failing with what `explain` tells (objects, logs) on a timeout.
pub fn wait_until_or_explain(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> bool,
    explain: impl FnOnce() -> String,
) {
    let deadline = Instant::now() + limit;
    while !check() {
        if Instant::now() >= deadline {
            panic!("timed out waiting for {what}\n{}", explain());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Moves the calling thread (only) into network namespace `name`, so that sockets it opens
/// reach the cluster's 127.0.0.1.
pub fn enter_netns(name: &str) {
    let path = format!("/var/run/netns/{name}");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&file),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .unwrap_or_else(|e| panic!("entering {name}: {e}"));
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

impl Cluster {
    /// Pod sandboxes the node's runtime holds.
    pub fn sandboxes(&self) -> String {
        let socket = self.data_dir().join("agent/runtime/cri.sock");
        let output = Command::new(env!("CARGO_BIN_EXE_cox"))
            .arg("crictl")
            .arg("--runtime-endpoint")
            .arg(format!("unix://{}", socket.display()))
            .args(["pods", "-q"])
            .output();
        output
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Removes every pod the way a user would (the kubelet tears each down), waiting until
    /// the runtime holds none; then, whatever a failed test left, by force.
    fn remove_pods(&mut self) {
        let _ = self.kubectl(&[
            "delete",
            "pods",
            "--all",
            "--all-namespaces",
            "--wait=false",
        ]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.sandboxes().trim().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        let socket = self.data_dir().join("agent/runtime/cri.sock");
        let _ = Command::new(env!("CARGO_BIN_EXE_cox"))
            .arg("crictl")
            .arg("--runtime-endpoint")
            .arg(format!("unix://{}", socket.display()))
            .args(["--timeout", "60s", "rmp", "--all", "--force"])
            .output();
    }

    /// After the server stopped: containers runc still knows, the pods' cgroups, mounts.
    fn force_clean(&self) {
        cox_bench::cleanup::force_clean(&self.data_dir().join("agent/runtime"), self.dir.path());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.agent {
            self.remove_pods();
        }
        self.stop_server();
        if self.agent {
            self.force_clean();
        }
        if !self.owns_netns {
            return;
        }
        for netns in [self.netns.clone(), self.outside_netns()] {
            let _ = Command::new("ip")
                .args(["netns", "del", &netns])
                .stderr(Stdio::null())
                .status();
        }
    }
}
