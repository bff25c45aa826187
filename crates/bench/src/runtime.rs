//! `cox bench runtime`: how long a pod takes to start and to go away.
//!
//! For each target, pods are started one after another: a sandbox (network namespace, CNI
//! bridge + loopback) and one busybox container in it, running. Start latency is from the first
//! call to a running container; teardown is stop plus remove of the whole pod. Targets, all in
//! one run, in one network namespace of the benchmark's own:
//!
//! - `raw`: the floor. The same steps by hand with nothing around them: `unshare` for the
//!   namespace, the CNI plugins, an overlay mount, `runc run -d` of the same OCI spec.
//! - `cox`: `cox runtime` over CRI gRPC (RunPodSandbox, CreateContainer, StartContainer;
//!   StopPodSandbox, RemovePodSandbox).
//! - `containerd`: Debian's containerd with its CRI plugin, the same calls, when installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cox_cri::v1;
use cox_cri::v1::image_service_client::ImageServiceClient;
use cox_cri::v1::runtime_service_client::RuntimeServiceClient;
use cox_runtime::cni::NetworkConfig;
use cox_runtime::images::{ImageStore, archive};
use serde_json::json;

use crate::stats::{Latencies, ratio};

#[derive(Debug, Clone)]
pub struct Config {
    /// The `cox` binary, run as `cox runtime` (and as each container's shim).
    pub cox_binary: PathBuf,
    /// Where `busybox.oci.tar` and `pause.oci.tar` are (`dev/build-images` makes them).
    pub images: PathBuf,
    pub pods: usize,
    /// Measure only these targets: raw, cox, containerd.
    pub only: Vec<String>,
}

impl Config {
    pub fn full(cox_binary: PathBuf, images: PathBuf) -> Self {
        Config {
            cox_binary,
            images,
            pods: 50,
            only: Vec::new(),
        }
    }

    /// A few pods: checks that the benchmark runs; the figures mean little.
    pub fn smoke(cox_binary: PathBuf, images: PathBuf) -> Self {
        Config {
            pods: 3,
            ..Config::full(cox_binary, images)
        }
    }

    fn wants(&self, target: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|t| t == target)
    }
}

/// One target's figures.
#[derive(Debug, Clone)]
pub struct Figures {
    pub target: &'static str,
    pub start: Latencies,
    pub teardown: Latencies,
}

const IMAGE: &str = "docker.io/library/busybox:1.36";
const COMMAND: &[&str] = &["sleep", "3600"];

/// Runs the benchmark and prints its table.
pub async fn run(config: &Config) -> Result<Vec<Figures>> {
    let bench = Bench::new()?;
    let mut results = Vec::new();
    if config.wants("raw") {
        results.push(bench.raw_on_own_thread(config)?);
    }
    if config.wants("cox") {
        results.push(bench.cox(config).await.context("cox runtime")?);
    }
    if config.wants("containerd") {
        if Path::new("/usr/bin/containerd").exists() {
            results.push(bench.containerd(config).await.context("containerd")?);
        } else {
            println!("containerd is not installed: skipping that target");
        }
    }
    print(&results, config.pods);
    Ok(results)
}

/// The raw floor alone (sandbox + container by hand, `config.pods` times one after another),
/// in a network namespace and directory of its own: the runtime's own start time, for
/// benchmarks that judge more than the runtime against it (`cox bench pods`).
pub fn raw_floor(config: &Config) -> Result<Figures> {
    Bench::new()?.raw_on_own_thread(config)
}

fn print(results: &[Figures], pods: usize) {
    let floor = results.iter().find(|f| f.target == "raw");
    println!(
        "pod start (sandbox + one container running) and teardown, {pods} pods one after another"
    );
    println!(
        "{:<12} {:>10} {:>10} {:>8} {:>12} {:>12} {:>8}",
        "target", "start p50", "start p99", "vs raw", "teardown p50", "teardown p99", "vs raw"
    );
    for figures in results {
        let (start_ratio, stop_ratio) = match floor {
            Some(floor) => (
                ratio(figures.start.ms(0.5), floor.start.ms(0.5)),
                ratio(figures.teardown.ms(0.5), floor.teardown.ms(0.5)),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<12} {:>8.1}ms {:>8.1}ms {:>8} {:>10.1}ms {:>10.1}ms {:>8}",
            figures.target,
            figures.start.ms(0.5),
            figures.start.ms(0.99),
            start_ratio,
            figures.teardown.ms(0.5),
            figures.teardown.ms(0.99),
            stop_ratio,
        );
    }
}

/// The benchmark's network namespace and scratch directory; both go when it drops.
struct Bench {
    netns: String,
    dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Result<Self> {
        let netns = format!("cox-bench-rt-{}", std::process::id());
        check(Command::new("ip").args(["netns", "add", &netns]))?;
        let bench = Bench {
            netns,
            dir: tempfile::Builder::new().prefix("cox-bench-rt").tempdir()?,
        };
        check(Command::new("ip").args(["-n", &bench.netns, "link", "set", "lo", "up"]))?;
        Ok(bench)
    }

    fn netns_path(&self) -> String {
        format!("/var/run/netns/{}", self.netns)
    }

    /// A command run inside the benchmark's network namespace (and nothing else of it).
    fn in_netns(&self, program: &Path) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.netns_path()))
            .arg(program);
        command
    }

    /// [`Bench::raw`] on a thread of its own: it enters the benchmark's network namespace.
    fn raw_on_own_thread(&self, config: &Config) -> Result<Figures> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.raw(config))
                .join()
                .map_err(|_| anyhow::anyhow!("the raw target panicked"))
        })?
        .context("the raw floor")
    }

    /// The floor: the runtime's essential steps by hand.
    fn raw(&self, config: &Config) -> Result<Figures> {
        let root = self.dir.path().join("raw");
        let store = ImageStore::open(root.join("images"))?;
        let image = archive::import(&store, &config.images.join("busybox.oci.tar"))?
            .into_iter()
            .next()
            .context("no image in the busybox archive")?;
        let lower: Vec<String> = image
            .layers
            .iter()
            .rev()
            .map(|l| store.snapshot_path(&l.diff_id).display().to_string())
            .collect();
        let network = NetworkConfig {
            bin_dir: PathBuf::from("/usr/lib/cni"),
            bridge: "coxraw0".into(),
            pod_cidr: "10.87.0.0/24".into(),
            state_dir: root.join("cni"),
        };
        let runc_root = root.join("runc");
        let container_config = v1::ContainerConfig {
            command: COMMAND.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let mut figures = Figures {
            target: "raw",
            start: Latencies::new(),
            teardown: Latencies::new(),
        };
        // The CNI plugins run in the benchmark's namespace, as the runtimes' do.
        let _inside = EnterNetns::new(&self.netns_path())?;
        for i in 0..config.pods {
            let id = format!("raw{i}");
            let pod = root.join(&id);
            std::fs::create_dir_all(pod.join("rootfs"))?;
            std::fs::create_dir_all(pod.join("upper"))?;
            std::fs::create_dir_all(pod.join("work"))?;
            let net = pod.join("net");
            std::fs::write(&net, b"")?;

            let started = Instant::now();
            check(
                Command::new("unshare")
                    .arg(format!("--net={}", net.display()))
                    .arg("true"),
            )?;
            let (result, _ip) = network.add(&id, &net, &[])?;
            check(
                Command::new("mount")
                    .args(["-t", "overlay", "overlay", "-o"])
                    .arg(format!(
                        "lowerdir={},upperdir={},workdir={}",
                        lower.join(":"),
                        pod.join("upper").display(),
                        pod.join("work").display()
                    ))
                    .arg(pod.join("rootfs")),
            )?;
            let context = cox_runtime::spec::PodContext {
                net_ns: Some(&net),
                uts_ns: None,
                ipc_ns: None,
                pid_ns: None,
                etc_files: Vec::new(),
                host_pid: false,
            };
            let spec = cox_runtime::spec::generate(
                &container_config,
                &image.config.config,
                &context,
                &pod.join("rootfs"),
                &format!("/cox-bench/{id}"),
            )?;
            std::fs::write(pod.join("config.json"), spec.to_string())?;
            check(
                Command::new("runc")
                    .arg("--root")
                    .arg(&runc_root)
                    .args(["run", "--detach", "--bundle"])
                    .arg(&pod)
                    .arg(&id)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )?;
            figures.start.record(started.elapsed());

            let stopping = Instant::now();
            check(
                Command::new("runc")
                    .arg("--root")
                    .arg(&runc_root)
                    .args(["kill", &id, "KILL"]),
            )?;
            wait_stopped(&runc_root, &id)?;
            check(
                Command::new("runc")
                    .arg("--root")
                    .arg(&runc_root)
                    .args(["delete", &id]),
            )?;
            network.remove(&id, &net, Some(&result), &[])?;
            check(Command::new("umount").arg(&net))?;
            check(Command::new("umount").arg(pod.join("rootfs")))?;
            std::fs::remove_dir_all(&pod)?;
            figures.teardown.record(stopping.elapsed());
        }
        let _ = Command::new("rmdir")
            .args(glob_cgroups("cox-bench"))
            .output();
        Ok(figures)
    }

    /// `cox runtime` over CRI.
    async fn cox(&self, config: &Config) -> Result<Figures> {
        let data = self.dir.path().join("cox");
        check(
            Command::new(&config.cox_binary)
                .args(["images", "--data-dir"])
                .arg(&data)
                .arg("import")
                .arg(config.images.join("busybox.oci.tar"))
                .stdout(Stdio::null()),
        )?;
        let socket = data.join("agent/runtime/cri.sock");
        let child = self
            .in_netns(&config.cox_binary)
            .args(["runtime", "--data-dir"])
            .arg(&data)
            .args(["--pod-cidr", "10.86.0.0/24", "--bridge", "coxbench0"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(
                self.dir.path().join("cox-runtime.log"),
            )?)
            .spawn()?;
        let _runtime = KillOnDrop(child);
        let figures = drive_cri("cox", &socket, config.pods, None).await?;
        Ok(figures)
    }

    /// Debian's containerd, with its CRI plugin, on directories of the benchmark's own.
    async fn containerd(&self, config: &Config) -> Result<Figures> {
        let home =
            crate::containerd::Home::new(self.dir.path().join("ctrd"), &self.netns, "10.85.0.0/24");
        // Starting containerd and importing images wait on processes: off the async runtime.
        let netns = self.netns_path();
        let images = config.images.clone();
        let containerd = tokio::task::spawn_blocking(move || {
            let containerd = crate::containerd::Containerd::start(home, &netns)?;
            for archive in ["pause.oci.tar", "busybox.oci.tar"] {
                containerd.home().import(&images.join(archive))?;
            }
            anyhow::Ok(containerd)
        })
        .await??;
        drive_cri("containerd", &containerd.home().socket(), config.pods, None).await
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.netns])
            .output();
    }
}

/// Starts and tears down `pods` pods through a CRI runtime's socket.
async fn drive_cri(
    target: &'static str,
    socket: &Path,
    pods: usize,
    _handler: Option<&str>,
) -> Result<Figures> {
    let endpoint = socket.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let channel = loop {
        match cox_cri::connect(&endpoint).await {
            Ok(channel) => break channel,
            Err(e) if Instant::now() > deadline => {
                bail!("{target} did not answer on {endpoint}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let mut runtime = RuntimeServiceClient::new(channel.clone());
    let mut images = ImageServiceClient::new(channel);
    let image = images
        .image_status(v1::ImageStatusRequest {
            image: Some(v1::ImageSpec {
                image: IMAGE.into(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await?
        .into_inner()
        .image
        .with_context(|| format!("{target} does not have {IMAGE}"))?;
    let mut figures = Figures {
        target,
        start: Latencies::new(),
        teardown: Latencies::new(),
    };
    for i in 0..pods {
        let pod_config = v1::PodSandboxConfig {
            metadata: Some(v1::PodSandboxMetadata {
                name: format!("bench-{i}"),
                namespace: "bench".into(),
                uid: format!("bench-uid-{i}"),
                attempt: 0,
            }),
            hostname: format!("bench-{i}"),
            // As the kubelet asks for a pod that does not share its process namespace.
            linux: Some(v1::LinuxPodSandboxConfig {
                security_context: Some(v1::LinuxSandboxSecurityContext {
                    namespace_options: Some(v1::NamespaceOption {
                        pid: v1::NamespaceMode::Container as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let container_config = v1::ContainerConfig {
            metadata: Some(v1::ContainerMetadata {
                name: "sleep".into(),
                attempt: 0,
            }),
            image: Some(v1::ImageSpec {
                image: image.id.clone(),
                ..Default::default()
            }),
            command: COMMAND.iter().map(|s| s.to_string()).collect(),
            linux: Some(v1::LinuxContainerConfig::default()),
            ..Default::default()
        };
        let started = Instant::now();
        let sandbox = runtime
            .run_pod_sandbox(v1::RunPodSandboxRequest {
                config: Some(pod_config.clone()),
                runtime_handler: String::new(),
            })
            .await?
            .into_inner()
            .pod_sandbox_id;
        let container = runtime
            .create_container(v1::CreateContainerRequest {
                pod_sandbox_id: sandbox.clone(),
                config: Some(container_config),
                sandbox_config: Some(pod_config),
            })
            .await?
            .into_inner()
            .container_id;
        runtime
            .start_container(v1::StartContainerRequest {
                container_id: container,
            })
            .await?;
        figures.start.record(started.elapsed());

        let stopping = Instant::now();
        runtime
            .stop_pod_sandbox(v1::StopPodSandboxRequest {
                pod_sandbox_id: sandbox.clone(),
            })
            .await?;
        runtime
            .remove_pod_sandbox(v1::RemovePodSandboxRequest {
                pod_sandbox_id: sandbox,
            })
            .await?;
        figures.teardown.record(stopping.elapsed());
    }
    Ok(figures)
}

fn check(command: &mut Command) -> Result<()> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn wait_stopped(runc_root: &Path, id: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = Command::new("runc")
            .arg("--root")
            .arg(runc_root)
            .args(["state", id])
            .output()?;
        let state: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or(json!({}));
        if state["status"] == "stopped" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("container {id} did not stop");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The benchmark's own cgroup directories, to remove after the raw target.
fn glob_cgroups(name: &str) -> Vec<String> {
    [
        "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer", "systemd",
    ]
    .iter()
    .map(|c| format!("/sys/fs/cgroup/{c}/{name}"))
    .filter(|p| Path::new(p).is_dir())
    .collect()
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the current thread in another network namespace until dropped.
struct EnterNetns {
    original: std::fs::File,
}

impl EnterNetns {
    fn new(path: &str) -> Result<Self> {
        let original = std::fs::File::open("/proc/thread-self/ns/net")?;
        let target = std::fs::File::open(path)?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&target),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .context("entering the benchmark's network namespace")?;
        Ok(EnterNetns { original })
    }
}

impl Drop for EnterNetns {
    fn drop(&mut self) {
        let _ = rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&self.original),
            Some(rustix::thread::LinkNameSpaceType::Network),
        );
    }
}
