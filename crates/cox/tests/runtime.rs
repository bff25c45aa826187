//! The container runtime end to end, as a user drives it: `cox images import`, `cox runtime`,
//! and `cox crictl` (runp, create, start, exec, logs, stop, rm, events), with real runc, overlayfs
//! and CNI inside a network namespace of the test's own. Each flow runs twice: against `cox
//! runtime` and against Debian's containerd, the reference, driven by the same `cox crictl`
//! commands; the main flows run a third time with `cox runtime` driving crun instead of runc.
//! What crictl has no command for (ReopenContainerLog) is called over the CRI directly, as the
//! kubelet calls it.

mod node;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cox_cri::v1::runtime_service_client::RuntimeServiceClient;

use node::{Backend, Node};
use serde_json::json;

#[test]
fn nginx_serves_on_the_pod_ip_with_exec_and_logs_and_leaves_nothing_behind_cox() {
    nginx_serves_on_the_pod_ip_with_exec_and_logs_and_leaves_nothing_behind(Backend::Cox);
}

#[test]
fn nginx_serves_on_the_pod_ip_with_exec_and_logs_and_leaves_nothing_behind_containerd() {
    nginx_serves_on_the_pod_ip_with_exec_and_logs_and_leaves_nothing_behind(Backend::Containerd);
}

#[test]
fn nginx_serves_on_the_pod_ip_with_exec_and_logs_and_leaves_nothing_behind_crun() {
    nginx_serves_on_the_pod_ip_with_exec_and_logs_and_leaves_nothing_behind(Backend::CoxCrun);
}

#[test]
fn a_memory_limit_kills_an_over_allocating_container_as_oomkilled_cox() {
    a_memory_limit_kills_an_over_allocating_container_as_oomkilled(Backend::Cox);
}

#[test]
fn a_memory_limit_kills_an_over_allocating_container_as_oomkilled_crun() {
    a_memory_limit_kills_an_over_allocating_container_as_oomkilled(Backend::CoxCrun);
}

#[test]
fn a_memory_limit_kills_an_over_allocating_container_as_oomkilled_containerd() {
    a_memory_limit_kills_an_over_allocating_container_as_oomkilled(Backend::Containerd);
}

#[test]
fn containers_keep_running_across_a_runtime_crash_and_are_listed_after_restart_cox() {
    containers_keep_running_across_a_runtime_crash_and_are_listed_after_restart(Backend::Cox);
}

#[test]
fn containers_keep_running_across_a_runtime_crash_and_are_listed_after_restart_crun() {
    containers_keep_running_across_a_runtime_crash_and_are_listed_after_restart(Backend::CoxCrun);
}

#[test]
fn containers_keep_running_across_a_runtime_crash_and_are_listed_after_restart_containerd() {
    containers_keep_running_across_a_runtime_crash_and_are_listed_after_restart(
        Backend::Containerd,
    );
}

#[test]
fn bad_input_gets_clear_errors_and_leaves_nothing_behind_cox() {
    bad_input_gets_clear_errors_and_leaves_nothing_behind(Backend::Cox);
}

#[test]
fn bad_input_gets_clear_errors_and_leaves_nothing_behind_containerd() {
    bad_input_gets_clear_errors_and_leaves_nothing_behind(Backend::Containerd);
}

#[test]
fn reopen_container_log_sends_output_to_a_new_file_after_rotation_cox() {
    reopen_container_log_sends_output_to_a_new_file_after_rotation(Backend::Cox);
}

#[test]
fn reopen_container_log_sends_output_to_a_new_file_after_rotation_containerd() {
    reopen_container_log_sends_output_to_a_new_file_after_rotation(Backend::Containerd);
}

/// Debian's containerd (1.6) predates container events: only ours is checked for them.
#[test]
fn container_events_stream_every_change_in_order_cox() {
    container_events_stream_every_change_in_order();
}

#[test]
fn container_events_are_unimplemented_in_containerd_1_6_containerd() {
    let node = Node::start(Backend::Containerd);
    let output = node.crictl_output(&["events"]);
    assert!(!output.status.success(), "containerd 1.6 streams no events");
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("getting container events: rpc error: code = Unimplemented"),
        "{message}"
    );
}

/// Creates and starts a container from `config` in `pod`; returns its ID.
fn start_container(
    node: &Node,
    pod: &str,
    pod_config: &str,
    name: &str,
    config: serde_json::Value,
) -> String {
    let file = node.config_file(&format!("{name}-container.json"), &config);
    let id = node
        .crictl(&["create", pod, &file, pod_config])
        .trim()
        .to_string();
    node.crictl(&["start", &id]);
    id
}

fn inspect(node: &Node, id: &str) -> serde_json::Value {
    serde_json::from_str(&node.crictl(&["inspect", id])).expect("inspect prints JSON")
}

fn pod_ip(node: &Node, pod: &str) -> String {
    let status: serde_json::Value =
        serde_json::from_str(&node.crictl(&["inspectp", pod])).expect("inspectp prints JSON");
    status["status"]["network"]["ip"]
        .as_str()
        .unwrap_or_else(|| panic!("no pod IP in {status}"))
        .to_string()
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn nginx_serves_on_the_pod_ip_with_exec_and_logs_and_leaves_nothing_behind(backend: Backend) {
    let node = Node::start(backend);
    let pod_config = node.pod_config("web");
    let pod = node.crictl(&["runp", &pod_config]).trim().to_string();
    assert_eq!(pod.len(), 64, "runp prints the pod ID: {pod:?}");
    let ip = pod_ip(&node, &pod);
    assert!(
        ip.starts_with(backend.pod_ip_prefix()),
        "pod IP {ip} from the node's pod range"
    );

    let nginx = start_container(
        &node,
        &pod,
        &pod_config,
        "nginx",
        json!({
            "metadata": {"name": "nginx"},
            "image": {"image": "nginx:1.22-cox"},
            "log_path": "nginx.log",
        }),
    );
    let page = node.http_get(&format!("http://{ip}/"));
    assert!(page.contains("Welcome to nginx!"), "{page}");
    // What the teardown checks below must see gone is there while the pod runs.
    let cgroup = node.pod_cgroup(&pod);
    assert!(cgroup.exists(), "pod cgroup {}", cgroup.display());
    // runc also makes it in the hybrid layout's cgroup v2 hierarchy, with no controllers.
    let unified = Path::new("/sys/fs/cgroup/unified").join(
        cgroup
            .strip_prefix("/sys/fs/cgroup/memory")
            .unwrap_or(&cgroup),
    );
    for dir in node.pod_dirs(&pod) {
        assert!(dir.exists(), "pod directory {}", dir.display());
    }

    let hostname = node.crictl(&["exec", &nginx, "cat", "/etc/hostname"]);
    assert_eq!(hostname.trim(), "web");
    let status = node.crictl_output(&["exec", &nginx, "sh", "-c", "exit 3"]);
    assert_eq!(
        status.status.code(),
        Some(3),
        "exec passes the exit code on"
    );

    // The access log goes to stdout, and so into the CRI log.
    wait_for("the access log line", || {
        node.crictl(&["logs", &nginx]).contains("GET / HTTP/1.1")
    });
    let raw = std::fs::read_to_string(node.logs().join("web/nginx.log")).expect("CRI log file");
    let first = raw
        .lines()
        .find(|l| l.contains("GET /"))
        .expect("a log entry");
    let fields: Vec<&str> = first.splitn(4, ' ').collect();
    assert_eq!(&fields[1..3], ["stdout", "F"], "CRI log format: {first}");

    let state = inspect(&node, &nginx);
    assert_eq!(
        state["status"]["state"],
        json!("CONTAINER_RUNNING"),
        "{state}"
    );
    let ps = node.crictl(&["ps"]);
    assert!(ps.contains(&nginx[..13]) && ps.contains("Running"), "{ps}");

    // nginx stops on SIGQUIT, its image's stop signal, well inside the grace period.
    let started = Instant::now();
    node.crictl(&["stop", "--timeout", "20", &nginx]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped by its stop signal, not SIGKILL"
    );
    let state = inspect(&node, &nginx);
    assert_eq!(
        state["status"]["state"],
        json!("CONTAINER_EXITED"),
        "{state}"
    );
    assert_eq!(
        state["status"]["exitCode"].as_i64().unwrap_or(-1),
        0,
        "{state}"
    );

    node.crictl(&["stopp", &pod]);
    node.crictl(&["rmp", &pod]);
    assert!(node.crictl(&["pods", "-q"]).trim().is_empty());
    assert!(node.mounts().is_empty(), "mounts left: {:?}", node.mounts());
    assert!(node.runc_containers().is_empty(), "runc containers left");
    let links = node.in_netns(&["ip", "-o", "link", "show", "type", "veth"]);
    assert!(
        String::from_utf8_lossy(&links.stdout).trim().is_empty(),
        "veth left behind"
    );
    assert!(!cgroup.exists(), "cgroup {} left behind", cgroup.display());
    assert!(
        !unified.exists(),
        "cgroup {} left behind",
        unified.display()
    );
    for dir in node.pod_dirs(&pod) {
        assert!(!dir.exists(), "pod directory {} left behind", dir.display());
    }
}

/// A memory limit kills an over-allocating container as OOMKilled; a running container's
/// limit can be raised in place (`cox crictl update`).
fn a_memory_limit_kills_an_over_allocating_container_as_oomkilled(backend: Backend) {
    let node = Node::start(backend);
    let pod_config = node.pod_config("hog");
    let pod = node.crictl(&["runp", &pod_config]).trim().to_string();
    let hog = start_container(
        &node,
        &pod,
        &pod_config,
        "hog",
        json!({
            "metadata": {"name": "hog"},
            "image": {"image": "busybox:1.36"},
            // The shell (the container's first process) reads 60 MB into a variable.
            "command": ["sh", "-c", "x=$(yes | head -c 60000000); echo survived; sleep 30"],
            "linux": {"resources": {"memory_limit_in_bytes": 16 * 1024 * 1024}},
        }),
    );
    wait_for("the container to exit", || {
        inspect(&node, &hog)["status"]["state"] == json!("CONTAINER_EXITED")
    });
    let status = inspect(&node, &hog);
    assert_eq!(status["status"]["reason"], json!("OOMKilled"), "{status}");
    assert_eq!(status["status"]["exitCode"].as_i64(), Some(137), "{status}");

    // A running container's limits change in place (UpdateContainerResources): it reads its
    // own cgroup's limit before and after.
    let grower = start_container(
        &node,
        &pod,
        &pod_config,
        "grower",
        json!({
            "metadata": {"name": "grower"},
            "image": {"image": "busybox:1.36"},
            "command": ["sleep", "60"],
            "linux": {"resources": {"memory_limit_in_bytes": 32 * 1024 * 1024}},
        }),
    );
    let limit = || {
        node.crictl(&[
            "exec",
            &grower,
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ])
        .trim()
        .to_string()
    };
    assert_eq!(limit(), (32 * 1024 * 1024).to_string());
    let updated = node.crictl(&[
        "update",
        "--memory",
        &(64 * 1024 * 1024).to_string(),
        &grower,
    ]);
    assert_eq!(updated.trim(), grower);
    assert_eq!(limit(), (64 * 1024 * 1024).to_string());
    node.crictl(&["rmp", "--force", &pod]);
}

fn containers_keep_running_across_a_runtime_crash_and_are_listed_after_restart(backend: Backend) {
    let mut node = Node::start(backend);
    let pod_config = node.pod_config("steady");
    let pod = node.crictl(&["runp", &pod_config]).trim().to_string();
    let ip = pod_ip(&node, &pod);
    let server = start_container(
        &node,
        &pod,
        &pod_config,
        "httpd",
        json!({
            "metadata": {"name": "httpd"},
            "image": {"image": "busybox:1.36"},
            "command": ["sh", "-c", "mkdir -p /www && echo steady > /www/index.html && exec httpd -f -p 8080 -h /www"],
            "log_path": "httpd.log",
            // containerd takes the container's PID namespace mode from here, cox runtime from
            // the pod's: both get it, as from the kubelet.
            "linux": {"security_context": {"namespace_options": {"pid": node::PID_PER_CONTAINER}}},
        }),
    );
    assert_eq!(
        node.http_get(&format!("http://{ip}:8080/")).trim(),
        "steady"
    );

    // containerd, like cox runtime, leaves its containers to shims that outlive it.
    node.kill_runtime();
    // With the runtime gone, the container still serves.
    assert_eq!(
        node.http_get(&format!("http://{ip}:8080/")).trim(),
        "steady"
    );
    node.start_runtime();

    let ps = node.crictl(&["ps", "-q"]);
    assert!(ps.contains(&server), "container listed after restart: {ps}");
    assert_eq!(
        inspect(&node, &server)["status"]["state"],
        json!("CONTAINER_RUNNING")
    );
    assert_eq!(
        node.crictl(&["exec", &server, "cat", "/www/index.html"])
            .trim(),
        "steady"
    );
    node.crictl(&["stop", "--timeout", "1", &server]);
    let status = inspect(&node, &server);
    assert_eq!(
        status["status"]["state"],
        json!("CONTAINER_EXITED"),
        "{status}"
    );
    assert_eq!(
        status["status"]["exitCode"].as_i64(),
        Some(137),
        "httpd ignores SIGTERM as pid 1"
    );
    node.crictl(&["rmp", "--force", &pod]);
    assert!(node.mounts().is_empty(), "mounts left: {:?}", node.mounts());
}

fn bad_input_gets_clear_errors_and_leaves_nothing_behind(backend: Backend) {
    let node = Node::start(backend);
    let pod_config = node.pod_config("bad");
    let pod = node.crictl(&["runp", &pod_config]).trim().to_string();

    let missing_image = node.config_file(
        "missing-image.json",
        &json!({"metadata": {"name": "x"}, "image": {"image": "nosuch:1"}}),
    );
    let output = node.crictl_output(&["create", "--no-pull", &pod, &missing_image, &pod_config]);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("not found") && message.contains("nosuch:1"),
        "{message}"
    );

    let missing_command = node.config_file(
        "missing-command.json",
        &json!({"metadata": {"name": "y"}, "image": {"image": "busybox:1.36"}, "command": ["/no/such/binary"]}),
    );
    // Created, then refused at start; the container is left exited with reason StartError
    // and exit code 128, so that the kubelet reports what upstream reports.
    let id = node
        .crictl(&["create", &pod, &missing_command, &pod_config])
        .trim()
        .to_string();
    let started = node.crictl_output(&["start", &id]);
    assert!(
        !started.status.success(),
        "starting a missing binary must fail"
    );
    let message = String::from_utf8_lossy(&started.stderr);
    assert!(
        message.contains("/no/such/binary"),
        "the error names the command: {message}"
    );
    let status = inspect(&node, &id);
    assert_eq!(
        status["status"]["state"],
        json!("CONTAINER_EXITED"),
        "{status}"
    );
    assert_eq!(status["status"]["reason"], json!("StartError"), "{status}");
    assert_eq!(status["status"]["exitCode"].as_i64(), Some(128), "{status}");
    assert!(
        status["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/no/such/binary")),
        "{status}"
    );
    node.crictl(&["rm", &id]);

    let no_metadata = node.config_file(
        "no-metadata.json",
        &json!({"image": {"image": "busybox:1.36"}}),
    );
    let output = node.crictl_output(&["create", &pod, &no_metadata, &pod_config]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("metadata"));

    let output = node.crictl_output(&["exec", "nosuchcontainer", "true"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("nosuchcontainer"));

    if backend.is_cox() {
        truncated_archives_do_not_import(&node);
    }

    node.crictl(&["rmp", "--force", &pod]);
    assert!(node.crictl(&["ps", "-a", "-q"]).trim().is_empty());
    assert!(node.mounts().is_empty(), "mounts left: {:?}", node.mounts());
    assert!(node.runc_containers().is_empty(), "runc containers left");
}

/// A truncated archive is refused by `cox images import`, and nothing is left in the store's
/// staging area.
fn truncated_archives_do_not_import(node: &Node) {
    let archive = std::fs::read(node::images_dir().join("busybox.oci.tar")).expect("archive");
    let truncated = node.dir.path().join("truncated.tar");
    std::fs::write(&truncated, &archive[..archive.len() / 2]).expect("write");
    let output = std::process::Command::new(node::COX)
        .args(["images", "--data-dir"])
        .arg(node.data_dir())
        .arg("import")
        .arg(&truncated)
        .output()
        .expect("cox images import");
    assert!(
        !output.status.success(),
        "a truncated archive must not import"
    );
    let staging = std::fs::read_dir(node.root().join("images/tmp"))
        .expect("tmp")
        .count();
    assert_eq!(staging, 0, "nothing left in staging");
}

#[test]
fn containers_of_a_pod_sharing_its_pid_namespace_see_and_signal_each_other_cox() {
    containers_of_a_pod_sharing_its_pid_namespace_see_and_signal_each_other(Backend::Cox);
}

#[test]
fn containers_of_a_pod_sharing_its_pid_namespace_see_and_signal_each_other_containerd() {
    containers_of_a_pod_sharing_its_pid_namespace_see_and_signal_each_other(Backend::Containerd);
}

/// `NamespaceMode::POD` for pid (Kubernetes' `shareProcessNamespace`): the pod's containers
/// share one pid namespace, whose first process is not theirs; one container sees and signals
/// another's processes; stopping the pod ends everything in the namespace.
fn containers_of_a_pod_sharing_its_pid_namespace_see_and_signal_each_other(backend: Backend) {
    let node = Node::start(backend);
    // Sleeps of lengths no other test's processes have (the backends' tests run side by side,
    // and the end checks that none of these outlived the pod).
    let base = match backend {
        Backend::Cox => 3610,
        Backend::Containerd => 3620,
        Backend::CoxCrun => 3630,
    };
    let (first, second, third) = (base + 1, base + 2, base + 3);
    let pod_config = node.config_file(
        "shared-pod.json",
        &json!({
            "metadata": {"name": "shared", "namespace": "default", "uid": "uid-shared"},
            "hostname": "shared",
            "log_directory": node.logs().join("shared"),
            "linux": {"security_context": {"namespace_options": {"pid": 0}}}
        }),
    );
    let pod = node.crictl(&["runp", &pod_config]).trim().to_string();
    let container = |name: &str, seconds: u32| {
        start_container(
            &node,
            &pod,
            &pod_config,
            name,
            json!({
                "metadata": {"name": name},
                "image": {"image": "busybox:1.36"},
                "command": ["sleep", seconds.to_string()],
                "linux": {"security_context": {"namespace_options": {"pid": 0}}},
            }),
        )
    };
    let sleeper = container("sleeper", first);
    let looker = container("looker", second);

    let ps = node.crictl(&["exec", &looker, "ps", "-o", "pid,args"]);
    let pid_of = |args: &str| {
        ps.lines()
            .find(|line| line.trim_end().ends_with(args))
            .and_then(|line| line.split_whitespace().next())
            .unwrap_or_else(|| panic!("no process {args:?} in the shared namespace:\n{ps}"))
            .to_string()
    };
    let sleeper_pid = pid_of(&format!("sleep {first}"));
    let looker_pid = pid_of(&format!("sleep {second}"));
    assert!(
        sleeper_pid != "1" && looker_pid != "1",
        "the namespace's first process is neither container's:\n{ps}"
    );

    // One container ends the other's process.
    node.crictl(&["exec", &looker, "kill", &sleeper_pid]);
    wait_for("the signalled container to exit", || {
        inspect(&node, &sleeper)["status"]["state"] == json!("CONTAINER_EXITED")
    });
    assert_eq!(
        inspect(&node, &looker)["status"]["state"],
        json!("CONTAINER_RUNNING")
    );

    // A container that asks for a pid namespace of its own does not see the others.
    let alone = start_container(
        &node,
        &pod,
        &pod_config,
        "alone",
        json!({
            "metadata": {"name": "alone"},
            "image": {"image": "busybox:1.36"},
            "command": ["sleep", third.to_string()],
            "linux": {"security_context": {"namespace_options": {"pid": node::PID_PER_CONTAINER}}},
        }),
    );
    let own = node.crictl(&["exec", &alone, "ps", "-o", "pid,args"]);
    assert!(
        !own.contains(&format!("sleep {second}")),
        "a container with its own pid namespace sees the pod's:\n{own}"
    );

    node.crictl(&["stopp", &pod]);
    let stray = std::process::Command::new("pgrep")
        .args(["-f", &format!("sleep ({first}|{second})$")])
        .output()
        .expect("pgrep");
    assert!(
        String::from_utf8_lossy(&stray.stdout).trim().is_empty(),
        "processes of the shared namespace outlived the pod"
    );
    node.crictl(&["rmp", &pod]);
    assert!(node.mounts().is_empty(), "mounts left: {:?}", node.mounts());
    assert!(node.runc_containers().is_empty(), "runc containers left");
    for dir in node.pod_dirs(&pod) {
        assert!(!dir.exists(), "pod directory {} left behind", dir.display());
    }
}

/// The runtime's CRI service, called directly (for what `cox crictl` has no command for).
struct Cri {
    tokio: tokio::runtime::Runtime,
    client: RuntimeServiceClient<tonic::transport::Channel>,
}

impl Cri {
    fn connect(node: &Node) -> Self {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let endpoint = format!("unix://{}", node.socket().display());
        let channel = tokio
            .block_on(cox_cri::connect(&endpoint))
            .expect("connecting to the runtime's CRI socket");
        Cri {
            tokio,
            client: RuntimeServiceClient::new(channel),
        }
    }

    fn reopen_container_log(&mut self, id: &str) -> Result<(), tonic::Status> {
        let request = cox_cri::v1::ReopenContainerLogRequest {
            container_id: id.to_string(),
        };
        self.tokio
            .block_on(self.client.reopen_container_log(request))
            .map(|_| ())
    }
}

/// The numbers of the `line N` entries of a CRI log file, each checked to be a complete
/// stdout entry in the CRI format (`<RFC3339Nano> stdout F line N`). A last line still being
/// written is left out.
fn numbered_lines(path: &Path) -> Vec<u64> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.split_inclusive('\n')
        .filter_map(|line| line.strip_suffix('\n'))
        .map(|line| {
            let fields: Vec<&str> = line.splitn(4, ' ').collect();
            assert_eq!(fields.len(), 4, "a CRI log entry: {line:?}");
            assert!(
                fields[0].parse::<jiff::Timestamp>().is_ok(),
                "an RFC 3339 time first: {line:?}"
            );
            assert_eq!(&fields[1..3], ["stdout", "F"], "{line:?}");
            fields[3]
                .strip_prefix("line ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("a numbered line: {line:?}"))
        })
        .collect()
}

/// The kubelet's log rotation: the log file is renamed, ReopenContainerLog is called, and the
/// container's output goes on in a new file at the old path, nothing lost.
fn reopen_container_log_sends_output_to_a_new_file_after_rotation(backend: Backend) {
    let node = Node::start(backend);
    let pod_config = node.pod_config("rotate");
    let pod = node.crictl(&["runp", &pod_config]).trim().to_string();
    let counter = start_container(
        &node,
        &pod,
        &pod_config,
        "counter",
        json!({
            "metadata": {"name": "counter"},
            "image": {"image": "busybox:1.36"},
            "command": ["sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.1; done"],
            "log_path": "counter.log",
        }),
    );
    let log = node.logs().join("rotate/counter.log");
    wait_for("lines in the log", || numbered_lines(&log).len() >= 3);

    // Renamed as the kubelet does (`<path>.<timestamp>`): the runtime still has it open, so
    // until the reopen its output keeps going there and nothing is at the path.
    let rotated = PathBuf::from(format!("{}.20240102-030405", log.display()));
    std::fs::rename(&log, &rotated).expect("renaming the log");
    let renamed = numbered_lines(&rotated).len();
    wait_for("more lines in the renamed file", || {
        numbered_lines(&rotated).len() >= renamed + 3
    });
    assert!(!log.exists(), "no new file before the reopen");

    let mut cri = Cri::connect(&node);
    cri.reopen_container_log(&counter)
        .expect("ReopenContainerLog of a running container");
    assert!(
        log.exists(),
        "a new file at the log path once the call returned"
    );
    wait_for("lines in the new file", || numbered_lines(&log).len() >= 3);
    let old = numbered_lines(&rotated);
    let seen = numbered_lines(&log).len();
    wait_for("more lines in the new file", || {
        numbered_lines(&log).len() >= seen + 3
    });
    assert_eq!(
        numbered_lines(&rotated),
        old,
        "the renamed file stopped growing"
    );
    // Every line is in one file or the other, in order: none lost or written twice.
    let all: Vec<u64> = old.iter().chain(&numbered_lines(&log)).copied().collect();
    let expected: Vec<u64> = (1..=all.len() as u64).collect();
    assert_eq!(all, expected);

    // A container that logs nothing has nothing to reopen: that is no error, and the runtime
    // still sees it end (ours: its shim survived to record the exit code).
    let quiet = start_container(
        &node,
        &pod,
        &pod_config,
        "quiet",
        json!({
            "metadata": {"name": "quiet"},
            "image": {"image": "busybox:1.36"},
            "command": ["sleep", "60"],
        }),
    );
    cri.reopen_container_log(&quiet)
        .expect("ReopenContainerLog of a container without a log");
    assert_eq!(
        inspect(&node, &quiet)["status"]["state"],
        json!("CONTAINER_RUNNING")
    );
    node.crictl(&["stop", "--timeout", "0", &quiet]);
    let status = inspect(&node, &quiet);
    assert_eq!(status["status"]["exitCode"], json!(137), "{status}");

    // A stopped container's log cannot be reopened. containerd answers with a plain error
    // (gRPC's Unknown); ours says why with FailedPrecondition. Both say it is not running.
    node.crictl(&["stop", "--timeout", "0", &counter]);
    let status = cri
        .reopen_container_log(&counter)
        .expect_err("reopening a stopped container's log");
    let expected = match backend {
        Backend::Cox | Backend::CoxCrun => tonic::Code::FailedPrecondition,
        Backend::Containerd => tonic::Code::Unknown,
    };
    assert_eq!(status.code(), expected, "{status:?}");
    assert!(status.message().contains("is not running"), "{status:?}");
    let status = cri
        .reopen_container_log(&"0".repeat(64))
        .expect_err("reopening a missing container's log");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    node.crictl(&["rmp", "--force", &pod]);
}

/// `cox crictl -D events -o json` running as a child, its events parsed as they come.
struct EventStream {
    child: Child,
    events: mpsc::Receiver<serde_json::Value>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl EventStream {
    /// Starts it and waits until it is subscribed (it says so on stderr when debugging).
    fn start(node: &Node) -> Self {
        let mut child = Command::new(node::COX)
            .arg("crictl")
            .arg("--runtime-endpoint")
            .arg(format!("unix://{}", node.socket().display()))
            .args(["--debug", "events", "--output", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting cox crictl events");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (subscribed_tx, subscribed) = mpsc::channel();
        let errors = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let collected = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("receiving container events") {
                    let _ = subscribed_tx.send(());
                }
                if let Ok(mut text) = collected.lock() {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        });
        let (sender, events) = mpsc::channel();
        std::thread::spawn(move || {
            let documents = serde_json::Deserializer::from_reader(stdout).into_iter();
            for document in documents.map_while(Result::ok) {
                if sender.send(document).is_err() {
                    return;
                }
            }
        });
        subscribed
            .recv_timeout(Duration::from_secs(20))
            .expect("cox crictl events subscribed");
        EventStream {
            child,
            events,
            stderr: errors,
        }
    }

    /// Waits for `cox crictl events` to end by itself; returns whether it succeeded and its
    /// stderr.
    fn finish(&mut self) -> (bool, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for cox crictl") {
                break status;
            }
            assert!(Instant::now() < deadline, "cox crictl events did not end");
            std::thread::sleep(Duration::from_millis(20));
        };
        // Its stderr reader sees the end of the pipe right after the exit.
        let mut stderr = String::new();
        wait_for("cox crictl's error message", || {
            stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
            stderr.contains("rpc error")
        });
        (status.success(), stderr)
    }

    /// The next event, within a deadline.
    fn next(&self) -> serde_json::Value {
        self.events
            .recv_timeout(Duration::from_secs(20))
            .expect("an event within 20 s")
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The statuses an event carries of the pod's containers: `(ID, state, exit code)` each.
fn container_states(event: &serde_json::Value) -> Vec<(String, String, i64)> {
    event["containersStatuses"]
        .as_array()
        .unwrap_or_else(|| panic!("containersStatuses is a list: {event}"))
        .iter()
        .map(|status| {
            (
                status["id"].as_str().unwrap_or_default().to_string(),
                status["state"].as_str().unwrap_or_default().to_string(),
                status["exitCode"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

/// A pod and two containers, one stopped and removed through the CRI, one that exits on its
/// own, then the pod stopped and removed: every change arrives, once, in order, with the pod's
/// and its containers' statuses as they are after it. A second subscriber sees the same.
fn container_events_stream_every_change_in_order() {
    let mut node = Node::start(Backend::Cox);
    let first = EventStream::start(&node);
    let mut second = EventStream::start(&node);
    let started = jiff::Timestamp::now().as_nanosecond();
    let pod_config = node.pod_config("watched");
    let pod = node.crictl(&["runp", &pod_config]).trim().to_string();
    let sleeper = start_container(
        &node,
        &pod,
        &pod_config,
        "sleeper",
        json!({
            "metadata": {"name": "sleeper"},
            "image": {"image": "busybox:1.36"},
            "command": ["sleep", "60"],
        }),
    );
    let quitter = start_container(
        &node,
        &pod,
        &pod_config,
        "quitter",
        json!({
            "metadata": {"name": "quitter"},
            "image": {"image": "busybox:1.36"},
            "command": ["sh", "-c", "sleep 0.5; exit 3"],
        }),
    );

    let mut received = Vec::new();
    let mut expect = |stream: &EventStream, kind: &str, id: &str| {
        let event = stream.next();
        assert_eq!(
            (
                event["containerEventType"].as_str(),
                event["containerId"].as_str()
            ),
            (Some(kind), Some(id)),
            "{event:#}"
        );
        let at: i128 = event["createdAt"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("createdAt in nanoseconds: {event}"));
        assert!(
            at >= started && at <= jiff::Timestamp::now().as_nanosecond(),
            "{event}"
        );
        received.push(event.clone());
        event
    };
    let created = "CONTAINER_CREATED_EVENT";
    let running = "CONTAINER_STARTED_EVENT";
    let stopped = "CONTAINER_STOPPED_EVENT";
    let deleted = "CONTAINER_DELETED_EVENT";

    // A pod's own events carry its ID, as containerd's do.
    for kind in [created, running] {
        let event = expect(&first, kind, &pod);
        assert_eq!(event["podSandboxStatus"]["id"], json!(pod), "{event:#}");
        assert_eq!(event["podSandboxStatus"]["state"], json!("SANDBOX_READY"));
        assert!(container_states(&event).is_empty(), "{event:#}");
    }
    let event = expect(&first, created, &sleeper);
    assert_eq!(event["podSandboxStatus"]["id"], json!(pod), "{event:#}");
    assert_eq!(
        container_states(&event),
        [(sleeper.clone(), "CONTAINER_CREATED".into(), 0)]
    );
    let event = expect(&first, running, &sleeper);
    assert_eq!(
        container_states(&event),
        [(sleeper.clone(), "CONTAINER_RUNNING".into(), 0)]
    );
    expect(&first, created, &quitter);
    expect(&first, running, &quitter);
    // Nobody asked it to stop: the runtime noticed.
    let event = expect(&first, stopped, &quitter);
    let states = container_states(&event);
    assert!(
        states.contains(&(quitter.clone(), "CONTAINER_EXITED".into(), 3)),
        "{event:#}"
    );
    assert!(
        states.contains(&(sleeper.clone(), "CONTAINER_RUNNING".into(), 0)),
        "{event:#}"
    );

    node.crictl(&["stop", "--timeout", "0", &sleeper]);
    let event = expect(&first, stopped, &sleeper);
    assert!(
        container_states(&event).contains(&(sleeper.clone(), "CONTAINER_EXITED".into(), 137)),
        "{event:#}"
    );
    node.crictl(&["rm", &sleeper]);
    let event = expect(&first, deleted, &sleeper);
    assert_eq!(
        container_states(&event),
        [(quitter.clone(), "CONTAINER_EXITED".into(), 3)],
        "the deleted container is gone from the statuses"
    );
    node.crictl(&["stopp", &pod]);
    let event = expect(&first, stopped, &pod);
    assert_eq!(
        event["podSandboxStatus"]["state"],
        json!("SANDBOX_NOTREADY")
    );
    node.crictl(&["rmp", &pod]);
    let event = expect(&first, deleted, &quitter);
    assert!(container_states(&event).is_empty(), "{event:#}");
    let event = expect(&first, deleted, &pod);
    assert!(
        event.get("podSandboxStatus").is_none(),
        "a removed pod has no status: {event:#}"
    );

    // Nothing else came (the quitter's stop, seen by the exit watch and by the pod's stop,
    // is announced once).
    assert!(
        first
            .events
            .recv_timeout(Duration::from_millis(500))
            .is_err(),
        "no further events"
    );
    let kinds = |events: &[serde_json::Value]| -> Vec<(String, String)> {
        events
            .iter()
            .map(|e| {
                (
                    e["containerEventType"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    e["containerId"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let others: Vec<serde_json::Value> = (0..received.len()).map(|_| second.next()).collect();
    assert_eq!(
        kinds(&others),
        kinds(&received),
        "every subscriber sees every event"
    );

    // Streams that never end by themselves do not hold up the runtime's shutdown (it would be
    // killed after 10 s): they end with UNAVAILABLE.
    let stopping = Instant::now();
    node.stop_runtime();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "the runtime took {:?} to stop",
        stopping.elapsed()
    );
    let (succeeded, stderr) = second.finish();
    assert!(!succeeded, "{stderr}");
    assert!(
        stderr.contains(
            "getting container events: rpc error: code = Unavailable desc = the runtime is shutting down"
        ),
        "{stderr}"
    );
}
