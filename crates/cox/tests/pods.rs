//! Pods that run: `cox server` with its node agent (runtime, kubelet, scheduler), driven with
//! the real kubectl as the tutorial does. The node registers and is Ready, `kubectl run` gives a
//! Running pod with an IP that serves, a crashing container goes into CrashLoopBackOff with
//! its restarts counted, env comes from ConfigMaps and Secrets, and deleting a pod removes it
//! from the runtime.

mod cluster;

use std::time::{Duration, Instant};

use cluster::{Cluster, wait_until};

fn jsonpath(cluster: &Cluster, object: &str, path: &str) -> String {
    let output = cluster.kubectl(&["get", object, "-o", &format!("jsonpath={path}")]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn kubectl_run_gives_a_running_pod_that_serves_restarts_and_goes_away() {
    let cluster = Cluster::start_with_agent();
    wait_until("the node to be Ready", Duration::from_secs(30), || {
        jsonpath(
            &cluster,
            "node/node-1",
            "{.status.conditions[?(@.type=='Ready')].status}",
        ) == "True"
    });

    let created = cluster.kubectl(&["run", "my-nginx", "--image=nginx:1.22-cox"]);
    assert!(created.status.success(), "{created:?}");
    let ready = cluster.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/my-nginx",
        "--timeout=60s",
    ]);
    assert!(
        ready.status.success(),
        "pod never Ready: {}\n{}",
        String::from_utf8_lossy(&ready.stderr),
        cluster.server_log()
    );
    assert_eq!(
        jsonpath(&cluster, "pod/my-nginx", "{.status.phase}"),
        "Running"
    );
    assert_eq!(
        jsonpath(&cluster, "pod/my-nginx", "{.spec.nodeName}"),
        "node-1"
    );
    let ip = jsonpath(&cluster, "pod/my-nginx", "{.status.podIP}");
    assert!(
        ip.starts_with("10.42.0."),
        "pod IP {ip:?} from the node's range"
    );
    let page = cluster.exec(
        "curl",
        &["-sS", "--max-time", "5", &format!("http://{ip}/")],
    );
    assert!(
        String::from_utf8_lossy(&page.stdout).contains("Welcome to nginx!"),
        "{page:?}"
    );
    let container_id = jsonpath(
        &cluster,
        "pod/my-nginx",
        "{.status.containerStatuses[0].containerID}",
    );
    assert!(container_id.starts_with("cox://"), "{container_id}");
    let describe = cluster.kubectl(&["describe", "pod", "my-nginx"]);
    let describe = String::from_utf8_lossy(&describe.stdout);
    for expected in [
        "Scheduled",
        "Created",
        "Started",
        "Successfully assigned default/my-nginx to node-1",
    ] {
        assert!(
            describe.contains(expected),
            "describe lacks {expected}:\n{describe}"
        );
    }

    // A container that keeps failing is restarted with back-off.
    let crasher = cluster.kubectl(&[
        "run",
        "crasher",
        "--image=busybox:1.36",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert!(crasher.status.success());
    wait_until(
        "restarts of the crashing container",
        Duration::from_secs(60),
        || {
            jsonpath(
                &cluster,
                "pod/crasher",
                "{.status.containerStatuses[0].restartCount}",
            )
            .parse::<u32>()
            .is_ok_and(|n| n >= 1)
        },
    );
    wait_until("CrashLoopBackOff", Duration::from_secs(60), || {
        jsonpath(
            &cluster,
            "pod/crasher",
            "{.status.containerStatuses[0].state.waiting.reason}",
        ) == "CrashLoopBackOff"
    });
    assert_eq!(
        jsonpath(
            &cluster,
            "pod/crasher",
            "{.status.containerStatuses[0].lastState.terminated.exitCode}"
        ),
        "3"
    );

    // A command the image lacks fails at start, as upstream reports it: the last state is
    // terminated with reason StartError and exit code 128, the container waits to be retried.
    cluster.ok(&[
        "run",
        "no-command",
        "--image=busybox:1.36",
        "--command",
        "--",
        "/no/such/binary",
    ]);
    wait_until("the start error", Duration::from_secs(60), || {
        jsonpath(
            &cluster,
            "pod/no-command",
            "{.status.containerStatuses[0].lastState.terminated.reason}",
        ) == "StartError"
    });
    let status = jsonpath(
        &cluster,
        "pod/no-command",
        "{.status.containerStatuses[0].lastState.terminated.exitCode} \
         {.status.containerStatuses[0].state.waiting.reason}",
    );
    assert!(
        status == "128 RunContainerError" || status == "128 CrashLoopBackOff",
        "{status}"
    );

    // Deleting pods removes them from the runtime.
    let deleted = cluster.kubectl(&["delete", "pod", "my-nginx", "crasher", "no-command"]);
    assert!(deleted.status.success());
    wait_until("the sandboxes to go", Duration::from_secs(30), || {
        cluster.sandboxes().trim().is_empty()
    });
}

#[test]
fn env_comes_from_values_configmaps_secrets_and_the_downward_api() {
    let cluster = Cluster::start_with_agent();
    let manifest = cluster.file(
        "env.yaml",
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {GREETING: hello, MODE: fast}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {PASSWORD: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: env-test, labels: {app: env}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "echo G=$GREETING M=$CFG_MODE P=$PASSWORD N=$POD_NAME A=$APP X=$EXPANDED"]
    envFrom:
    - configMapRef: {name: settings}
    - prefix: CFG_
      configMapRef: {name: settings}
    env:
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: PASSWORD}}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: APP
      valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
    - name: EXPANDED
      value: "$(GREETING)-world"
"#,
    );
    cluster.ok(&["apply", "-f", &manifest]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while jsonpath(&cluster, "pod/env-test", "{.status.phase}") != "Succeeded" {
        assert!(
            Instant::now() < deadline,
            "the pod never succeeded: {}\n{}",
            cluster.ok(&["get", "pod", "env-test", "-o", "yaml"]),
            cluster.server_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let uid = jsonpath(&cluster, "pod/env-test", "{.metadata.uid}");
    let log = cluster
        .dir
        .path()
        .join("pod-logs")
        .join(format!("default_env-test_{uid}"))
        .join("main/0.log");
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(
        text.contains("G=hello M=fast P=s3cret N=env-test A=env X=hello-world"),
        "{text}"
    );
    assert_eq!(
        jsonpath(
            &cluster,
            "pod/env-test",
            "{.status.containerStatuses[0].state.terminated.reason}"
        ),
        "Completed"
    );
}

#[test]
fn probes_drive_readiness_and_restart_unhealthy_containers() {
    let cluster = Cluster::start_with_agent();
    let manifest = cluster.file(
        "probes.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: ready-flip}
spec:
  containers:
  - name: web
    image: busybox:1.36
    command: ["sh", "-c", "mkdir -p /w; (sleep 2; touch /w/ready; sleep 10; rm /w/ready) & exec httpd -f -p 8080 -h /w"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /ready, port: http}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {name: liveness}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox:1.36
    command: ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 600"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 2
"#,
    );
    cluster.ok(&["apply", "-f", &manifest]);
    let ready = || {
        jsonpath(
            &cluster,
            "pod/ready-flip",
            "{.status.containerStatuses[0].ready}",
        )
    };
    // The container's readiness and the pod's Ready condition are read
    // together, so the window closing between two reads cannot fail this.
    wait_until(
        "the readiness probe to pass and the pod to be Ready",
        Duration::from_secs(30),
        || {
            jsonpath(
                &cluster,
                "pod/ready-flip",
                "{.status.containerStatuses[0].ready} {.status.conditions[?(@.type=='Ready')].status}",
            ) == "true True"
        },
    );
    wait_until(
        "the readiness probe to fail again",
        Duration::from_secs(30),
        || ready() == "false",
    );
    assert_eq!(
        jsonpath(&cluster, "pod/ready-flip", "{.status.phase}"),
        "Running",
        "an unready container keeps running"
    );

    wait_until(
        "a restart after failed liveness probes",
        Duration::from_secs(60),
        || {
            jsonpath(
                &cluster,
                "pod/liveness",
                "{.status.containerStatuses[0].restartCount}",
            )
            .parse::<u32>()
            .is_ok_and(|n| n >= 1)
        },
    );
    let events = cluster.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=liveness",
    ]);
    assert!(
        events.contains("Unhealthy") && events.contains("failed liveness probe"),
        "{events}"
    );
}

/// Runs a command in a pod's container through the node's runtime.
fn crictl_exec(cluster: &Cluster, pod: &str, command: &[&str]) -> std::process::Output {
    let id = jsonpath(
        cluster,
        &format!("pod/{pod}"),
        "{.status.containerStatuses[0].containerID}",
    );
    let id = id.trim_start_matches("cox://").to_string();
    let socket = cluster.data_dir().join("agent/runtime/cri.sock");
    std::process::Command::new(env!("CARGO_BIN_EXE_cox"))
        .arg("crictl")
        .arg("--runtime-endpoint")
        .arg(format!("unix://{}", socket.display()))
        .arg("exec")
        .arg(&id)
        .args(command)
        .output()
        .expect("cox crictl exec")
}

#[test]
fn volumes_mount_and_configmap_files_change_in_place() {
    let cluster = Cluster::start_with_agent();
    let host_dir = cluster.dir.path().join("host-data");
    let manifest = cluster.file(
        "volumes.yaml",
        &format!(
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: app-config}}
data: {{greeting: hello, other: x}}
---
apiVersion: v1
kind: Secret
metadata: {{name: app-secret}}
stringData: {{token: s3cret}}
---
apiVersion: v1
kind: Pod
metadata: {{name: volumes, labels: {{tier: web}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "echo scratch > /scratch/file; sleep 600"]
    volumeMounts:
    - {{name: config, mountPath: /etc/config}}
    - {{name: secret, mountPath: /etc/secret, readOnly: true}}
    - {{name: scratch, mountPath: /scratch}}
    - {{name: memory, mountPath: /fast}}
    - {{name: host, mountPath: /host}}
    - {{name: host, mountPath: /host-sub, subPath: nested}}
    - {{name: info, mountPath: /etc/podinfo}}
  volumes:
  - name: config
    configMap: {{name: app-config, items: [{{key: greeting, path: greeting.txt}}]}}
  - name: secret
    secret: {{secretName: app-secret}}
  - name: scratch
    emptyDir: {{}}
  - name: memory
    emptyDir: {{medium: Memory}}
  - name: host
    hostPath: {{path: {host}, type: DirectoryOrCreate}}
  - name: info
    downwardAPI: {{items: [{{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}]}}
"#,
            host = host_dir.display()
        ),
    );
    cluster.ok(&["apply", "-f", &manifest]);
    let ready = cluster.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/volumes",
        "--timeout=60s",
    ]);
    assert!(
        ready.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&ready.stderr),
        cluster.server_log()
    );
    let read = |path: &str| {
        let output = crictl_exec(&cluster, "volumes", &["cat", path]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(read("/etc/config/greeting.txt"), "hello");
    assert_eq!(read("/etc/secret/token"), "s3cret");
    assert_eq!(read("/etc/podinfo/labels"), "tier=\"web\"");
    assert_eq!(read("/scratch/file"), "scratch\n");
    assert!(
        host_dir.is_dir(),
        "DirectoryOrCreate made the host directory"
    );
    assert!(
        host_dir.join("nested").is_dir(),
        "a subPath is made on first use"
    );
    let written = crictl_exec(
        &cluster,
        "volumes",
        &["sh", "-c", "echo from-pod > /host/out"],
    );
    assert!(written.status.success());
    assert_eq!(
        std::fs::read_to_string(host_dir.join("out")).expect("host file"),
        "from-pod\n"
    );
    let denied = crictl_exec(
        &cluster,
        "volumes",
        &["sh", "-c", "echo x > /etc/secret/token"],
    );
    assert!(!denied.status.success(), "a readOnly mount refuses writes");
    let mounts = crictl_exec(&cluster, "volumes", &["cat", "/proc/mounts"]);
    let mounts = String::from_utf8_lossy(&mounts.stdout);
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(" /fast ") && l.starts_with("tmpfs")),
        "{mounts}"
    );

    // A new ConfigMap reaches the running container's file, without a restart.
    let updated = cluster.file(
        "config2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {greeting: bonjour, other: x}\n",
    );
    cluster.ok(&["apply", "-f", &updated]);
    wait_until(
        "the file to change in place",
        Duration::from_secs(20),
        || read("/etc/config/greeting.txt") == "bonjour",
    );
    assert_eq!(
        jsonpath(
            &cluster,
            "pod/volumes",
            "{.status.containerStatuses[0].restartCount}"
        ),
        "0"
    );
}

#[test]
fn a_deleted_pod_terminates_gracefully_and_the_kubelet_removes_it() {
    let cluster = Cluster::start_with_agent();
    let manifest = cluster.file(
        "stubborn.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: forced}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
"#,
    );
    cluster.ok(&["apply", "-f", &manifest]);
    cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/stubborn",
        "pod/forced",
        "--timeout=60s",
    ]);

    // Marked, not removed: the grace period runs while the container ignores SIGTERM.
    let started = Instant::now();
    cluster.ok(&["delete", "pod", "stubborn", "--wait=false"]);
    assert_eq!(
        jsonpath(
            &cluster,
            "pod/stubborn",
            "{.metadata.deletionGracePeriodSeconds}"
        ),
        "3"
    );
    assert!(!jsonpath(&cluster, "pod/stubborn", "{.metadata.deletionTimestamp}").is_empty());
    let listed = cluster.ok(&["get", "pod", "stubborn"]);
    assert!(listed.contains("Terminating"), "{listed}");
    // A longer grace period asked later changes nothing.
    cluster.ok(&[
        "delete",
        "pod",
        "stubborn",
        "--wait=false",
        "--grace-period=60",
    ]);
    assert_eq!(
        jsonpath(
            &cluster,
            "pod/stubborn",
            "{.metadata.deletionGracePeriodSeconds}"
        ),
        "3"
    );
    wait_until("the pod to be removed", Duration::from_secs(30), || {
        !cluster
            .kubectl(&["get", "pod", "stubborn"])
            .status
            .success()
    });
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "removed before its grace period: {:?}",
        started.elapsed()
    );

    // --force --grace-period=0 removes the object at once; the kubelet cleans up after.
    cluster.ok(&[
        "delete",
        "pod",
        "forced",
        "--force",
        "--grace-period=0",
        "--wait=false",
    ]);
    assert!(!cluster.kubectl(&["get", "pod", "forced"]).status.success());
    wait_until("the sandboxes to go", Duration::from_secs(30), || {
        cluster.sandboxes().trim().is_empty()
    });
}

#[test]
fn post_start_and_pre_stop_hooks_run_and_a_failing_post_start_kills_the_container() {
    let cluster = Cluster::start_with_agent();
    let out = cluster.dir.path().join("hooks");
    let manifest = cluster.file(
        "hooked.yaml",
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: hooked}}
spec:
  terminationGracePeriodSeconds: 5
  volumes: [{{name: out, hostPath: {{path: "{}", type: DirectoryOrCreate}}}}]
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
    volumeMounts: [{{name: out, mountPath: /out}}]
    lifecycle:
      postStart: {{exec: {{command: ["sh", "-c", "echo started > /out/post-start"]}}}}
      preStop: {{exec: {{command: ["sh", "-c", "echo stopping > /out/pre-stop"]}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: badhook}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
    lifecycle:
      postStart: {{exec: {{command: ["false"]}}}}
"#,
            out.display()
        ),
    );
    cluster.ok(&["apply", "-f", &manifest]);
    cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/hooked",
        "--timeout=60s",
    ]);
    let started = std::fs::read_to_string(out.join("post-start")).unwrap_or_default();
    assert_eq!(started.trim(), "started");
    assert!(!out.join("pre-stop").exists());
    // kubectl delete waits until the kubelet has stopped and removed the pod.
    cluster.ok(&["delete", "pod", "hooked", "--timeout=60s"]);
    let stopping = std::fs::read_to_string(out.join("pre-stop")).unwrap_or_default();
    assert_eq!(stopping.trim(), "stopping");

    wait_until("the failed hook's event", Duration::from_secs(60), || {
        cluster
            .ok(&[
                "get",
                "events",
                "--field-selector",
                "reason=FailedPostStartHook,involvedObject.name=badhook",
                "-o",
                "name",
            ])
            .lines()
            .count()
            > 0
    });
    let listed = cluster.ok(&["get", "pod", "badhook"]);
    assert!(
        !listed.contains("Running") || listed.contains("0/1"),
        "{listed}"
    );
}

#[test]
fn init_containers_run_in_order_before_the_app_and_sidecars_keep_running() {
    let cluster = Cluster::start_with_agent();
    let manifest = cluster.file(
        "init.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: ordered}
spec:
  volumes: [{name: work, emptyDir: {}}]
  initContainers:
  - name: first
    image: busybox:1.36
    command: ["sh", "-c", "echo one >> /work/log"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: second
    image: busybox:1.36
    command: ["sh", "-c", "sleep 1; echo two >> /work/log"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: app
    image: busybox:1.36
    command: ["sh", "-c", "echo app >> /work/log; cat /work/log; exec sleep 3600"]
    volumeMounts: [{name: work, mountPath: /work}]
---
apiVersion: v1
kind: Pod
metadata: {name: init-fails-once}
spec:
  restartPolicy: Never
  initContainers:
  - name: broken
    image: busybox:1.36
    command: ["sh", "-c", "exit 3"]
  containers:
  - name: app
    image: busybox:1.36
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: init-loops}
spec:
  initContainers:
  - name: broken
    image: busybox:1.36
    command: ["sh", "-c", "exit 1"]
  containers:
  - name: app
    image: busybox:1.36
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: with-sidecar}
spec:
  shareProcessNamespace: true
  initContainers:
  - name: web
    image: busybox:1.36
    restartPolicy: Always
    command: ["sh", "-c", "mkdir -p /w; echo up > /w/index.html; exec httpd -f -p 8080 -h /w"]
  containers:
  - name: app
    image: busybox:1.36
    command: ["sh", "-c", "wget -q -O /tmp/got http://127.0.0.1:8080/ && cat /tmp/got && exec sleep 3600"]
"#,
    );
    cluster.ok(&["apply", "-f", &manifest]);

    // Each init container completes before the next one and the app start.
    cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/ordered",
        "--timeout=60s",
    ]);
    let logs = cluster.ok(&["logs", "ordered"]);
    assert_eq!(logs, "one\ntwo\napp\n");
    assert_eq!(
        jsonpath(
            &cluster,
            "pod/ordered",
            "{.status.initContainerStatuses[*].state.terminated.reason}"
        ),
        "Completed Completed"
    );
    assert_eq!(
        jsonpath(
            &cluster,
            "pod/ordered",
            "{.status.conditions[?(@.type=='Initialized')].status}"
        ),
        "True"
    );
    let listed = cluster.ok(&["get", "pod", "ordered", "--no-headers"]);
    assert!(
        listed.contains("1/1") && listed.contains("Running"),
        "{listed}"
    );

    // With restartPolicy Never a failed init container fails the pod; the app never starts.
    wait_until("the pod to fail", Duration::from_secs(60), || {
        jsonpath(&cluster, "pod/init-fails-once", "{.status.phase}") == "Failed"
    });
    let listed = cluster.ok(&["get", "pod", "init-fails-once", "--no-headers"]);
    assert!(listed.contains("Init:Error"), "{listed}");
    assert_eq!(
        jsonpath(
            &cluster,
            "pod/init-fails-once",
            "{.status.containerStatuses[0].state.waiting.reason}"
        ),
        "PodInitializing"
    );

    // Otherwise it is restarted with back-off, and the pod stays initializing.
    wait_until(
        "the init container to restart",
        Duration::from_secs(60),
        || {
            jsonpath(
                &cluster,
                "pod/init-loops",
                "{.status.initContainerStatuses[0].restartCount}",
            )
            .parse::<u32>()
            .is_ok_and(|n| n >= 1)
        },
    );
    wait_until("Init:CrashLoopBackOff", Duration::from_secs(30), || {
        cluster
            .ok(&["get", "pod", "init-loops", "--no-headers"])
            .contains("Init:CrashLoopBackOff")
    });
    assert_eq!(
        jsonpath(&cluster, "pod/init-loops", "{.status.phase}"),
        "Pending"
    );
    let condition = jsonpath(
        &cluster,
        "pod/init-loops",
        "{.status.conditions[?(@.type=='Initialized')].message}",
    );
    assert_eq!(condition, "containers with incomplete status: [broken]");

    // A sidecar is started first and keeps running beside the app, which reaches it.
    cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/with-sidecar",
        "--timeout=60s",
    ]);
    wait_until(
        "the app to reach its sidecar",
        Duration::from_secs(30),
        || {
            cluster
                .kubectl(&["logs", "with-sidecar", "-c", "app"])
                .stdout
                .starts_with(b"up")
        },
    );
    let listed = cluster.ok(&["get", "pod", "with-sidecar", "--no-headers"]);
    assert!(
        listed.contains("2/2") && listed.contains("Running"),
        "{listed}"
    );
    assert_eq!(cluster.ok(&["logs", "with-sidecar", "-c", "web"]), "");
    // The pod shares its process namespace: the app sees its sidecar's server.
    let processes = cluster.ok(&[
        "exec",
        "with-sidecar",
        "-c",
        "app",
        "--",
        "ps",
        "-o",
        "args",
    ]);
    assert!(
        processes.contains("httpd -f -p 8080"),
        "the sidecar's process is not visible to the app:\n{processes}"
    );

    // Every pod has its ServiceAccount's credentials, and the token is the account's.
    let credentials = "/var/run/secrets/kubernetes.io/serviceaccount";
    assert_eq!(
        cluster.ok(&[
            "exec",
            "ordered",
            "--",
            "cat",
            &format!("{credentials}/namespace")
        ]),
        "default"
    );
    let ca = cluster.ok(&[
        "exec",
        "ordered",
        "--",
        "cat",
        &format!("{credentials}/ca.crt"),
    ]);
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    let token = cluster.ok(&[
        "exec",
        "ordered",
        "--",
        "cat",
        &format!("{credentials}/token"),
    ]);
    let as_pod = cluster.token_kubeconfig("pod", &token);
    let whoami = cluster.kubectl_as(
        &as_pod,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        "system:serviceaccount:default:default",
        "{whoami:?}"
    );

    // The kubelet's figures, through the API server's node proxy.
    assert_eq!(
        cluster.ok(&["get", "--raw", "/api/v1/nodes/node-1/proxy/healthz"]),
        "ok"
    );
    let metrics = cluster.ok(&["get", "--raw", "/api/v1/nodes/node-1/proxy/metrics"]);
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from:\n{metrics}"))
    };
    assert!(value("kubelet_node_name{node=\"node-1\"}") == 1.0);
    assert!(value("kubelet_running_pods") >= 3.0, "{metrics}");
    assert!(value("kubelet_running_containers{container_state=\"running\"}") >= 3.0);
    assert!(value("kubelet_started_containers_total{container_type=\"init_container\"}") >= 4.0);
    assert!(value("kubelet_pod_start_duration_seconds_count") >= 2.0);
    assert!(value("kubelet_pod_worker_duration_seconds_count{operation_type=\"sync\"}") >= 1.0);
}

/// A private registry inside the cluster's namespace: a real docker-registry on
/// 127.0.0.1:5000 holding busybox as `team/busybox:private`, behind a front on 127.0.0.1:5001
/// that demands basic authentication (`puller:s3cret`).
struct PrivateRegistry {
    dir: tempfile::TempDir,
    front: std::process::Child,
}

impl PrivateRegistry {
    const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dev/test-registry");
    const FRONT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/auth_proxy.py");

    fn start(cluster: &Cluster) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().display().to_string();
        let started = cluster.exec(Self::SCRIPT, &["start", &data, "5000"]);
        assert!(started.status.success(), "{started:?}");
        let archive = cluster::images::images_dir().join("busybox.oci.tar");
        let pushed = cluster.exec(
            Self::SCRIPT,
            &[
                "push",
                &archive.display().to_string(),
                "team/busybox:private",
                "5000",
            ],
        );
        assert!(pushed.status.success(), "{pushed:?}");
        let mut front = std::process::Command::new("ip")
            .args(["netns", "exec", &cluster.netns, "python3", Self::FRONT])
            .args(["5001", "http://127.0.0.1:5000", "puller:s3cret"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("starting the registry front");
        let mut line = String::new();
        let stdout = front.stdout.take().expect("front's stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("reading the front's first line");
        assert_eq!(line.trim(), "ready", "the registry front did not start");
        Self { dir, front }
    }
}

impl Drop for PrivateRegistry {
    fn drop(&mut self) {
        let _ = self.front.kill();
        let _ = self.front.wait();
        let _ = std::process::Command::new(Self::SCRIPT)
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

#[test]
fn image_pull_secrets_authenticate_pulls_from_a_private_registry() {
    let config = tempfile::tempdir().expect("tempdir");
    let registries = config.path().join("registries.yaml");
    std::fs::write(
        &registries,
        "mirrors:\n  \"127.0.0.1:5001\":\n    endpoint: [\"http://127.0.0.1:5001\"]\n",
    )
    .expect("writing registries.yaml");
    let cluster =
        Cluster::start_with_agent_and(&["--private-registry", &registries.display().to_string()]);
    let _registry = PrivateRegistry::start(&cluster);
    cluster.ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "--docker-server=127.0.0.1:5001",
        "--docker-username=puller",
        "--docker-password=s3cret",
    ]);
    cluster.ok(&[
        "create",
        "secret",
        "docker-registry",
        "wrongcred",
        "--docker-server=127.0.0.1:5001",
        "--docker-username=puller",
        "--docker-password=guess",
    ]);
    let pod = |name: &str, secrets: &str| {
        format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  imagePullSecrets: {secrets}
  containers:
  - name: app
    image: 127.0.0.1:5001/team/busybox:private
    command: ["sleep", "3600"]
"#
        )
    };
    let waiting = |name: &str| {
        jsonpath(
            &cluster,
            &format!("pod/{name}"),
            "{.status.containerStatuses[0].state.waiting.reason}",
        )
    };

    // Without credentials, or with wrong ones, the registry refuses the pull.
    let refused = format!(
        "{}---{}",
        pod("no-secret", "[]"),
        pod("wrong-secret", "[{name: wrongcred}]")
    );
    cluster.ok(&["apply", "-f", &cluster.file("refused.yaml", &refused)]);
    for name in ["no-secret", "wrong-secret"] {
        wait_until("the pull to be refused", Duration::from_secs(60), || {
            matches!(waiting(name).as_str(), "ErrImagePull" | "ImagePullBackOff")
        });
    }
    let message = jsonpath(
        &cluster,
        "pod/wrong-secret",
        "{.status.containerStatuses[0].state.waiting.message}",
    );
    assert!(
        message.contains("127.0.0.1:5001/team/busybox:private"),
        "{message}"
    );

    // A missing secret is reported, and the good one beside it lets the pull through.
    let allowed = pod("with-secret", "[{name: missing}, {name: regcred}]");
    cluster.ok(&["apply", "-f", &cluster.file("allowed.yaml", &allowed)]);
    cluster.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/with-secret",
        "--timeout=60s",
    ]);
    let events = cluster.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=with-secret",
    ]);
    assert!(
        events.contains("FailedToRetrieveImagePullSecret") && events.contains("default/missing"),
        "{events}"
    );
    assert!(events.contains("Successfully pulled image"), "{events}");

    // A pod without pull secrets gets its ServiceAccount's.
    cluster.ok(&["create", "serviceaccount", "puller"]);
    cluster.ok(&[
        "patch",
        "serviceaccount",
        "puller",
        "-p",
        r#"{"imagePullSecrets": [{"name": "regcred"}]}"#,
    ]);
    cluster.ok(&[
        "run",
        "by-account",
        "--image=127.0.0.1:5001/team/busybox:private",
        "--overrides",
        r#"{"spec": {"serviceAccountName": "puller"}}"#,
        "--",
        "sleep",
        "3600",
    ]);
    assert_eq!(
        jsonpath(
            &cluster,
            "pod/by-account",
            "{.spec.imagePullSecrets[*].name}"
        ),
        "regcred"
    );
}
