//! `cox crictl` commands run end to end against the fake runtime: parsed from a command line,
//! sent over gRPC on a unix socket, printed into captured output.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser as _;

use super::fake_runtime::{FakeRuntime, Served};
use super::output::{Captured, Terminal};
use super::session::Session;
use super::{CommandExit, Crictl, dispatch};
use crate::v1::{ContainerEventResponse, ContainerEventType, ContainerState, ExecSyncResponse};

/// What a command did: its result, stdout and stderr.
struct Outcome {
    result: anyhow::Result<()>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    /// The stdout of a command that must have succeeded.
    fn ok(self) -> String {
        if let Err(error) = &self.result {
            panic!("command failed: {error:#}\nstderr: {}", self.stderr);
        }
        self.stdout
    }

    /// The one-line error of a command that must have failed.
    fn error(self) -> String {
        match self.result {
            Ok(()) => panic!("command succeeded: {}", self.stdout),
            Err(error) => super::one_line(&error),
        }
    }
}

async fn crictl(served: &Served, args: &[&str]) -> Outcome {
    crictl_with_timeout(served, "2s", args).await
}

async fn crictl_with_timeout(served: &Served, timeout: &str, args: &[&str]) -> Outcome {
    let mut line = vec!["crictl", "-r", &served.endpoint, "--timeout", timeout];
    line.extend_from_slice(args);
    let cli = Crictl::try_parse_from(line).expect("a valid command line");
    let captured = Arc::new(Mutex::new(Captured::default()));
    let mut session = Session::new(
        cli.runtime_endpoint,
        cli.image_endpoint,
        cli.timeout,
        cli.debug,
    )
    .with_terminal(Terminal::Captured(captured.clone()));
    let result = dispatch(&mut session, cli.command).await;
    let captured = captured.lock().expect("output");
    Outcome {
        result,
        stdout: String::from_utf8_lossy(&captured.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&captured.stderr).into_owned(),
    }
}

fn pod_config(served: &Served, name: &str) -> String {
    let logs = served.path(&format!("logs-{name}"));
    std::fs::create_dir_all(&logs).expect("a log directory");
    served
        .file(
            &format!("{name}-pod.json"),
            &serde_json::json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
                "log_directory": logs,
                "labels": {"app": name}
            })
            .to_string(),
        )
        .display()
        .to_string()
}

fn container_config(served: &Served, name: &str) -> String {
    served
        .file(
            &format!("{name}-container.json"),
            &serde_json::json!({
                "metadata": {"name": name},
                "image": {"image": "docker.io/library/busybox:latest"},
                "command": ["sleep", "inf"],
                "log_path": format!("{name}/0.log")
            })
            .to_string(),
        )
        .display()
        .to_string()
}

/// Starts a pod and a running container in it; returns their IDs.
async fn running_container(served: &Served, name: &str) -> (String, String) {
    let pod_file = pod_config(served, name);
    let pod = crictl(served, &["runp", &pod_file])
        .await
        .ok()
        .trim()
        .to_string();
    let container_file = container_config(served, name);
    let container = crictl(served, &["create", &pod[..5], &container_file, &pod_file])
        .await
        .ok()
        .trim()
        .to_string();
    crictl(served, &["start", &container]).await.ok();
    (pod, container)
}

#[tokio::test]
async fn version_prints_like_crictl() {
    let served = FakeRuntime::serve("version").await;
    let out = crictl(&served, &["version"]).await.ok();
    assert_eq!(
        out,
        "Version:  0.1.0\nRuntimeName:  fake\nRuntimeVersion:  1.2.3\nRuntimeApiVersion:  v1\n"
    );
}

#[tokio::test]
async fn calls_time_out_with_a_grpc_deadline_error() {
    let served = FakeRuntime::serve("timeout").await;
    served.runtime.state().slow_version = true;
    let error = crictl_with_timeout(&served, "200ms", &["version"])
        .await
        .error();
    assert_eq!(
        error,
        "getting the runtime version: rpc error: code = DeadlineExceeded desc = context deadline exceeded"
    );
}

#[tokio::test]
async fn pod_lifecycle_by_id_prefix() {
    let served = FakeRuntime::serve("pods").await;
    let web_config = pod_config(&served, "web");
    let web = crictl(&served, &["runp", &web_config]).await.ok();
    let web = web.trim().to_string();
    assert_eq!(web.len(), 64, "runp prints the new pod's ID: {web:?}");
    let db_config = pod_config(&served, "db");
    let db = crictl(&served, &["runp", "--runtime", "runc", &db_config])
        .await
        .ok();
    let db = db.trim().to_string();

    let table = crictl(&served, &["pods"]).await.ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("POD ID              CREATED"),
        "{table}"
    );
    assert!(lines[1].starts_with(&db[..13]), "newest first: {table}");
    assert!(lines[1].ends_with("runc"), "{table}");
    assert!(lines[2].contains("Ready               web                 default             0                   (default)"), "{table}");

    assert_eq!(
        crictl(&served, &["pods", "-q", "--name", "^w"]).await.ok(),
        format!("{web}\n")
    );
    assert_eq!(
        crictl(&served, &["pods", "--label", "app=db", "-q"])
            .await
            .ok(),
        format!("{db}\n")
    );

    // One hex digit is shared by both IDs, two are not.
    let ambiguous = crictl(&served, &["stopp", &web[..1]]).await.error();
    assert!(
        ambiguous.starts_with(&format!(
            "pod sandbox ID prefix \"{}\" is ambiguous: it matches ",
            &web[..1]
        )),
        "{ambiguous}"
    );
    let prefix = &web[..2];
    assert_eq!(
        crictl(&served, &["stopp", prefix]).await.ok(),
        format!("Stopped sandbox {prefix}\n")
    );
    assert!(
        served
            .runtime
            .state()
            .calls
            .contains(&format!("StopPodSandbox {web}")),
        "the runtime got the full ID"
    );
    assert_eq!(
        crictl(&served, &["pods", "-s", "notready", "-q"])
            .await
            .ok(),
        format!("{web}\n")
    );

    let running = crictl(&served, &["rmp", &db[..2]]).await.error();
    assert_eq!(
        running,
        format!(
            "pod sandbox \"{}\" is running, please stop it first",
            &db[..2]
        )
    );
    assert_eq!(
        crictl(&served, &["rmp", "-f", &db[..2], prefix]).await.ok(),
        format!(
            "Stopped sandbox {}\nRemoved sandbox {}\nRemoved sandbox {prefix}\n",
            &db[..2],
            &db[..2]
        )
    );
    assert_eq!(crictl(&served, &["pods", "-q"]).await.ok(), "");
    assert_eq!(
        crictl(&served, &["stopp", "ffff"]).await.error(),
        "no pod sandbox found with ID or ID prefix \"ffff\""
    );
}

#[tokio::test]
async fn inspectp_embeds_the_info_map() {
    let served = FakeRuntime::serve("inspectp").await;
    let config = pod_config(&served, "web");
    let pod = crictl(&served, &["runp", &config])
        .await
        .ok()
        .trim()
        .to_string();
    let text = crictl(&served, &["inspectp", &pod[..3]]).await.ok();
    let document: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(document["info"]["pid"], 4242);
    assert_eq!(document["status"]["id"], pod.as_str());
    assert_eq!(document["status"]["state"], "SANDBOX_READY");
    assert_eq!(document["status"]["network"]["ip"], "10.88.0.7");
    assert_eq!(document["status"]["metadata"]["uid"], "uid-web");
    assert!(document["status"]["linux"].is_null());
    let created = document["status"]["createdAt"].as_str().expect("a time");
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
    // Keys are sorted, as Go's encoding/json writes maps.
    let info_at = text.find("\"info\"").expect("info");
    let status_at = text.find("\"status\"").expect("status");
    assert!(info_at < status_at, "{text}");

    let table = crictl(&served, &["inspectp", "-o", "table", &pod])
        .await
        .ok();
    assert!(table.starts_with(&format!("ID: {pod}\nName: web\nUID: uid-web\nNamespace: default\nAttempt: 0\nStatus: SANDBOX_READY\n")), "{table}");
    assert!(
        table.contains("IP Addresses: 10.88.0.7\nLabels:\n\tapp -> web\n"),
        "{table}"
    );

    let yaml = crictl(&served, &["inspectp", "-o", "yaml", "-q"])
        .await
        .ok();
    assert!(
        yaml.starts_with("status:\n  annotations: {}\n  createdAt: "),
        "{yaml}"
    );
}

#[tokio::test]
async fn container_lifecycle_by_id_prefix() {
    let served = FakeRuntime::serve("containers").await;
    let (pod, container) = running_container(&served, "web").await;
    assert_eq!(container.len(), 64, "create prints the new container's ID");
    assert!(
        served
            .runtime
            .state()
            .calls
            .contains(&format!("StartContainer {container}")),
        "start got the full ID"
    );
    assert!(
        !served
            .runtime
            .state()
            .calls
            .iter()
            .any(|call| call.starts_with("PullImage")),
        "create does not pull unless asked, as crictl"
    );

    let table = crictl(&served, &["ps"]).await.ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("CONTAINER           IMAGE"), "{table}");
    assert!(
        lines[0].ends_with("POD ID              POD                 NAMESPACE"),
        "{table}"
    );
    assert!(lines[1].starts_with(&container[..13]), "{table}");
    assert!(
        lines[1].contains("docker.io/library/busybox:latest"),
        "{table}"
    );
    assert!(
        lines[1].contains(&format!("{}       web                 default", &pod[..13])),
        "{table}"
    );

    let json = crictl(&served, &["ps", "-o", "json", "-p", &pod[..2]])
        .await
        .ok();
    let listing: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(listing["containers"][0]["state"], "CONTAINER_RUNNING");
    assert_eq!(listing["containers"][0]["podSandboxId"], pod.as_str());
    assert!(
        listing["containers"][0]["createdAt"].is_string(),
        "int64 as string"
    );
    assert!(
        json.find("\"id\"") < json.find("\"podSandboxId\""),
        "protobuf field order"
    );

    let document: serde_json::Value =
        serde_json::from_str(&crictl(&served, &["inspect", &container[..2]]).await.ok())
            .expect("JSON");
    assert_eq!(document["info"]["pid"], 99);
    assert_eq!(document["note"], "quoted");
    assert_eq!(document["status"]["state"], "CONTAINER_RUNNING");
    assert_eq!(document["status"]["finishedAt"], "0001-01-01T00:00:00Z");
    assert!(document["status"]["resources"].is_null());

    assert_eq!(
        crictl(&served, &["stop", "-t", "7", &container[..2]])
            .await
            .ok(),
        format!("{}\n", &container[..2])
    );
    assert!(
        served
            .runtime
            .state()
            .calls
            .contains(&format!("StopContainer {container} 7"))
    );
    assert_eq!(
        crictl(&served, &["ps", "-q"]).await.ok(),
        "",
        "only running by default"
    );
    assert_eq!(
        crictl(&served, &["ps", "-q", "-a"]).await.ok(),
        format!("{container}\n")
    );
    assert_eq!(
        crictl(&served, &["ps", "-q", "--state", "exited"])
            .await
            .ok(),
        format!("{container}\n")
    );
    let table = crictl(&served, &["inspect", "-o", "table", &container])
        .await
        .ok();
    assert!(table.contains("State: CONTAINER_EXITED\n"), "{table}");
    assert!(table.contains("Exit Code: 137\n"), "{table}");

    assert_eq!(
        crictl(&served, &["rm", &container[..2]]).await.ok(),
        format!("{}\n", &container[..2])
    );
    assert_eq!(
        crictl(&served, &["inspect", &container[..2]]).await.error(),
        format!(
            "no container found with ID or ID prefix \"{}\"",
            &container[..2]
        )
    );
}

#[tokio::test]
async fn rm_refuses_running_containers_unless_forced_and_removes_logs() {
    let served = FakeRuntime::serve("rm").await;
    let (_, container) = running_container(&served, "web").await;
    let log = served.path("logs-web/web/0.log");
    std::fs::create_dir_all(log.parent().expect("a directory")).expect("creates");
    std::fs::write(&log, "x").expect("writes");
    std::fs::write(log.with_extension("log.20240501"), "x").expect("writes");

    let error = crictl(&served, &["rm", &container]).await.error();
    assert_eq!(
        error,
        format!("container \"{container}\" is running, please stop it first")
    );
    assert_eq!(
        crictl(&served, &["rm", "-f", &container]).await.ok(),
        format!("{container}\n{container}\n"),
        "stopped, then removed, as crictl prints"
    );
    assert!(!log.exists());
    assert!(!log.with_extension("log.20240501").exists());
}

#[tokio::test]
async fn exec_writes_both_streams_and_passes_on_the_exit_code() {
    let served = FakeRuntime::serve("exec").await;
    let (_, container) = running_container(&served, "web").await;
    served.runtime.state().exec = ExecSyncResponse {
        stdout: b"hello\n".to_vec(),
        stderr: b"warning\n".to_vec(),
        exit_code: 0,
    };
    let outcome = crictl(
        &served,
        &["exec", &container[..2], "sh", "-c", "echo hello"],
    )
    .await;
    assert_eq!(outcome.stderr, "warning\n");
    assert_eq!(outcome.ok(), "hello\n");
    assert!(
        served
            .runtime
            .state()
            .calls
            .contains(&format!("ExecSync {container} 0 sh -c echo hello"))
    );

    served.runtime.state().exec.exit_code = 3;
    let outcome = crictl(&served, &["exec", "--timeout", "5", &container, "false"]).await;
    let exit = outcome
        .result
        .as_ref()
        .err()
        .and_then(|error| error.downcast_ref::<CommandExit>())
        .map(|exit| exit.0);
    assert_eq!(exit, Some(3));
    assert!(
        served
            .runtime
            .state()
            .calls
            .contains(&format!("ExecSync {container} 5 false"))
    );
}

const LOG: &str = "\
2024-05-01T10:00:00.000000001Z stdout P hello \n\
2024-05-01T10:00:00.000000002Z stdout F world\n\
2024-05-01T10:00:01Z stderr F oops\n\
2024-05-01T10:00:02Z stdout F bye\n";

#[tokio::test]
async fn logs_read_the_log_path() {
    let served = FakeRuntime::serve("logs").await;
    let (_, container) = running_container(&served, "web").await;
    let log = served.path("logs-web/web/0.log");
    std::fs::create_dir_all(log.parent().expect("a directory")).expect("creates");
    std::fs::write(&log, LOG).expect("writes");

    let outcome = crictl(&served, &["logs", &container[..2]]).await;
    assert_eq!(outcome.stderr, "oops\n");
    assert_eq!(outcome.ok(), "hello world\nbye\n");

    let outcome = crictl(&served, &["logs", "-t", "--tail", "1", &container]).await;
    assert_eq!(outcome.ok(), "2024-05-01T10:00:02.000000000Z bye\n");

    let outcome = crictl(
        &served,
        &[
            "logs",
            "--since",
            "2024-05-01T10:00:01Z",
            "-s",
            "stdout",
            &container,
        ],
    )
    .await;
    assert_eq!(outcome.stderr, "");
    assert_eq!(outcome.ok(), "bye\n");

    let error = crictl(&served, &["logs", "-p", &container]).await.error();
    assert_eq!(error, "previous terminated container web not found");
}

#[tokio::test]
async fn logs_follow_until_the_container_stops() {
    let served = FakeRuntime::serve("follow").await;
    let (_, container) = running_container(&served, "web").await;
    let log = served.path("logs-web/web/0.log");
    std::fs::create_dir_all(log.parent().expect("a directory")).expect("creates");
    std::fs::write(&log, "2024-05-01T10:00:00Z stdout F first\n").expect("writes");

    let runtime = served.runtime.clone();
    let writer_log = log.clone();
    let writer = tokio::spawn(async move {
        let append = |text: &str| {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&writer_log)
                .expect("opens the log");
            std::io::Write::write_all(&mut file, text.as_bytes()).expect("appends");
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        // A partial record, and for a while not even its line break.
        append("2024-05-01T10:00:01Z stdout P sec");
        tokio::time::sleep(Duration::from_millis(300)).await;
        append("\n2024-05-01T10:00:02Z stdout F ond\n");
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Rotation: the file is renamed away and a new one created.
        std::fs::rename(&writer_log, writer_log.with_extension("log.1")).expect("rotates");
        std::fs::write(&writer_log, "2024-05-01T10:00:03Z stderr F third\n").expect("recreates");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut state = runtime.state();
        for container in &mut state.containers {
            container.state = ContainerState::ContainerExited as i32;
        }
    });
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        crictl(&served, &["logs", "-f", &container]),
    )
    .await
    .expect("following ends when the container stops");
    writer.await.expect("the writer finishes");
    assert_eq!(outcome.stderr, "third\n");
    assert_eq!(outcome.ok(), "first\nsecond\n");
}

#[tokio::test]
async fn images_pull_list_inspect_and_remove() {
    let served = FakeRuntime::serve("images").await;
    let pulled = crictl(&served, &["pull", "docker.io/library/busybox:latest"])
        .await
        .ok();
    let id = served.runtime.state().images[0].id.clone();
    assert_eq!(pulled, format!("Image is up to date for {id}\n"));

    let table = crictl(&served, &["images"]).await.ok();
    let bare = id.trim_start_matches("sha256:");
    assert_eq!(
        table,
        format!(
            "IMAGE                       TAG                 IMAGE ID            SIZE\n\
             docker.io/library/busybox   latest              {}       4.26MB\n",
            &bare[..13]
        )
    );
    assert_eq!(
        crictl(&served, &["images", "-q"]).await.ok(),
        format!("{id}\n")
    );

    let document: serde_json::Value =
        serde_json::from_str(&crictl(&served, &["inspecti", &bare[..3]]).await.ok()).expect("JSON");
    assert_eq!(document["status"]["id"], id.as_str());
    assert_eq!(document["status"]["size"], "4261574");

    let error = crictl(&served, &["pull", "example.com/missing:1"])
        .await
        .error();
    assert_eq!(
        error, "pulling image: failed to resolve reference \"example.com/missing:1\"",
        "Unknown codes are left out, as crictl"
    );

    assert_eq!(
        crictl(&served, &["rmi", &bare[..3]]).await.ok(),
        "Deleted: docker.io/library/busybox:latest\n"
    );
    assert!(
        served
            .runtime
            .state()
            .calls
            .contains(&format!("RemoveImage {id}"))
    );
    assert_eq!(
        crictl(&served, &["rmi", "busybox:nope"]).await.error(),
        "no such image busybox:nope"
    );
}

#[tokio::test]
async fn create_with_pull_pulls_first() {
    let served = FakeRuntime::serve("with-pull").await;
    let pod_file = pod_config(&served, "web");
    let pod = crictl(&served, &["runp", &pod_file])
        .await
        .ok()
        .trim()
        .to_string();
    let container_file = container_config(&served, "web");
    crictl(
        &served,
        &["create", "--with-pull", &pod, &container_file, &pod_file],
    )
    .await
    .ok();
    let calls = served.runtime.state().calls.clone();
    let pull = calls
        .iter()
        .position(|call| call == "PullImage docker.io/library/busybox:latest");
    let create = calls
        .iter()
        .position(|call| call.starts_with("CreateContainer"));
    assert!(pull.is_some() && pull < create, "{calls:?}");
}

#[tokio::test]
async fn info_and_imagefsinfo_documents() {
    let served = FakeRuntime::serve("info").await;
    let text = crictl(&served, &["info"]).await.ok();
    let document: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(document["status"]["conditions"][0]["type"], "RuntimeReady");
    assert_eq!(document["config"]["root"], "/var/lib/fake");
    assert_eq!(
        document["runtimeHandlers"][0]["features"]["recursive_read_only_mounts"],
        true
    );
    assert_eq!(document["features"]["supplemental_groups_policy"], true);

    let text = crictl(&served, &["imagefsinfo"]).await.ok();
    let document: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        document["status"]["imageFilesystems"][0]["fsId"]["mountpoint"],
        "/var/lib/fake/images"
    );
    assert_eq!(
        document["status"]["imageFilesystems"][0]["usedBytes"]["value"],
        "1000000"
    );
}

#[tokio::test]
async fn events_print_each_event_until_the_stream_ends() {
    let served = FakeRuntime::serve("events").await;
    let event = |id: &str, kind: ContainerEventType| ContainerEventResponse {
        container_id: id.into(),
        container_event_type: kind as i32,
        created_at: 1_700_000_000_000_000_001,
        ..Default::default()
    };
    served.runtime.state().events = vec![
        event("p1", ContainerEventType::ContainerCreatedEvent),
        event("c1", ContainerEventType::ContainerStoppedEvent),
    ];
    let text = crictl(&served, &["events"]).await.ok();
    let events: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("one JSON document per event");
    assert_eq!(events.len(), 2, "{text}");
    assert_eq!(events[0]["containerId"], "p1");
    assert_eq!(events[0]["containerEventType"], "CONTAINER_CREATED_EVENT");
    assert_eq!(events[1]["containerEventType"], "CONTAINER_STOPPED_EVENT");
    assert_eq!(events[1]["createdAt"], "1700000000000000001");

    let yaml = crictl(&served, &["events", "-o", "yaml"]).await.ok();
    assert_eq!(yaml.matches("containerEventType: ").count(), 2, "{yaml}");

    served.runtime.state().events_end = Some(tonic::Status::unimplemented(
        "method GetContainerEvents not implemented",
    ));
    let error = crictl(&served, &["events"]).await.error();
    assert_eq!(
        error,
        "getting container events: rpc error: code = Unimplemented desc = method GetContainerEvents not implemented"
    );
}

#[tokio::test]
async fn stats_sample_twice() {
    let served = FakeRuntime::serve("stats").await;
    let (_, container) = running_container(&served, "web").await;
    let table = crictl(&served, &["stats", "-s", "0", &container[..2]])
        .await
        .ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "CONTAINER           NAME                CPU %               MEM                 DISK                INODES              SWAP"
    );
    assert!(
        lines[1].starts_with(&format!("{}       web                 ", &container[..13])),
        "{table}"
    );
    assert!(lines[1].contains("5MB"), "{table}");
    let json = crictl(&served, &["stats", "-o", "json"]).await.ok();
    let document: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(document["stats"][0]["attributes"]["id"], container.as_str());
}

#[tokio::test]
async fn bad_config_files_are_reported() {
    let served = FakeRuntime::serve("configs").await;
    let broken = served.file("broken.json", "{\"metadata\": ");
    let error = crictl(&served, &["runp", &broken.display().to_string()])
        .await
        .error();
    assert!(
        error.starts_with(&format!(
            "load podSandboxConfig: {}: invalid JSON",
            broken.display()
        )),
        "{error}"
    );
    let nameless = served.file("nameless.json", r#"{"metadata": {"namespace": "default"}}"#);
    let error = crictl(&served, &["runp", &nameless.display().to_string()])
        .await
        .error();
    assert!(
        error.starts_with("load podSandboxConfig: name or namespace is not in metadata"),
        "{error}"
    );
}
