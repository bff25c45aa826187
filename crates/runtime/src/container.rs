//! Containers: an overlayfs root on the image's layers, an OCI bundle, and a shim that runs it
//! with runc.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cox_cri::v1;

use crate::runtime::{
    ContainerRecord, Result, Runtime, RuntimeError, lock, new_id, now_nanos, save,
};
use crate::shim::{EXIT_FILE, ExitRecord};
use crate::spec::{self, PodContext};
use crate::teardown;

/// How long to wait for a container to die after SIGKILL before calling it stuck.
const KILL_WAIT: Duration = Duration::from_secs(10);

impl Runtime {
    /// `CreateContainer`: the rootfs, the bundle, and a shim that has run `runc create`.
    pub fn create_container(
        &self,
        sandbox_id: &str,
        config: v1::ContainerConfig,
    ) -> Result<String> {
        let metadata = config.metadata.as_ref().ok_or_else(|| {
            RuntimeError::InvalidArgument("container config has no metadata".into())
        })?;
        if metadata.name.is_empty() {
            return Err(RuntimeError::InvalidArgument(
                "container metadata.name is required".into(),
            ));
        }
        let sandbox = self.sandbox(sandbox_id)?;
        let sandbox = lock(&sandbox).clone();
        if sandbox.state != v1::PodSandboxState::SandboxReady as i32 {
            return Err(RuntimeError::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                sandbox.id
            )));
        }
        for existing in self.containers_of(&sandbox.id) {
            let existing = self.container(&existing)?;
            let existing = lock(&existing);
            if existing.config.metadata.as_ref() == Some(metadata) {
                return Err(RuntimeError::AlreadyExists(format!(
                    "container {} attempt {} already exists in the pod as {}",
                    metadata.name, metadata.attempt, existing.id
                )));
            }
        }
        let image_name = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        if image_name.is_empty() {
            return Err(RuntimeError::InvalidArgument(
                "container config names no image".into(),
            ));
        }
        let image = self
            .images
            .resolve(&image_name)?
            .ok_or_else(|| RuntimeError::NotFound(format!("image {image_name:?} not found")))?;

        let id = new_id();
        let dir = self.container_dir(&id);
        let log_path = if sandbox.config.log_directory.is_empty() || config.log_path.is_empty() {
            String::new()
        } else {
            Path::new(&sandbox.config.log_directory)
                .join(&config.log_path)
                .display()
                .to_string()
        };
        let record = ContainerRecord {
            id: id.clone(),
            sandbox_id: sandbox.id.clone(),
            image_ref: image_name,
            image_id: image.id.clone(),
            created_at: now_nanos(),
            started_at: 0,
            pid: 0,
            log_path,
            stop_signal: image.config.config.stop_signal.clone(),
            cgroups_path: format!("{}/{}", sandbox.cgroup_parent, &id),
            config,
            start_error: None,
        };
        let created = fs::create_dir_all(&dir)
            .map_err(RuntimeError::from)
            .and_then(|()| self.mount_rootfs(&dir, &image))
            .and_then(|()| self.write_bundle(&dir, &record, &sandbox, &image))
            .and_then(|()| match self.start_shim(&dir, &record) {
                Ok(pid) => Ok((pid, None)),
                // runc makes the process at create; containerd only at start, so a command
                // missing from the image is a start error there. Kept for StartContainer.
                Err(StartShimError::NoCommand(message)) => {
                    self.runc(&["delete", "--force", &id]).ok();
                    Ok((0, Some(message)))
                }
                Err(StartShimError::Runtime(e)) => Err(e),
            });
        match created {
            Ok((pid, start_error)) => {
                let record = ContainerRecord {
                    pid,
                    start_error,
                    ..record
                };
                save(&dir.join("container.json"), &record)?;
                self.events.watch(&id, &dir);
                let sandbox_id = record.sandbox_id.clone();
                lock(&self.containers).insert(id.clone(), Arc::new(Mutex::new(record)));
                self.announce(
                    &id,
                    &sandbox_id,
                    v1::ContainerEventType::ContainerCreatedEvent,
                );
                Ok(id)
            }
            Err(e) => {
                self.runc(&["delete", "--force", &id]).ok();
                teardown::remove_dir_carefully(&dir);
                Err(e)
            }
        }
    }

    /// Mounts overlayfs at `<dir>/rootfs`: the image's layers below, a fresh upper directory.
    fn mount_rootfs(&self, dir: &Path, image: &crate::images::ImageRecord) -> Result<()> {
        for sub in ["rootfs", "upper", "work"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        // overlayfs lists lower layers top first.
        let lower: Vec<String> = image
            .layers
            .iter()
            .rev()
            .map(|l| self.images.snapshot_path(&l.diff_id).display().to_string())
            .collect();
        let lower = if lower.is_empty() {
            // An image without layers still needs a lower directory.
            fs::create_dir_all(dir.join("empty"))?;
            dir.join("empty").display().to_string()
        } else {
            lower.join(":")
        };
        let options = format!(
            "lowerdir={lower},upperdir={},workdir={}",
            dir.join("upper").display(),
            dir.join("work").display()
        );
        rustix::mount::mount(
            "overlay",
            dir.join("rootfs"),
            "overlay",
            rustix::mount::MountFlags::empty(),
            Some(
                std::ffi::CString::new(options)
                    .map_err(|e| RuntimeError::Internal(e.to_string()))?
                    .as_c_str(),
            ),
        )
        .map_err(|e| RuntimeError::Internal(format!("mounting the container's rootfs: {e}")))
    }

    fn write_bundle(
        &self,
        dir: &Path,
        record: &ContainerRecord,
        sandbox: &crate::runtime::SandboxRecord,
        image: &crate::images::ImageRecord,
    ) -> Result<()> {
        let paths = self.pod_paths(sandbox);
        // The container's own namespace options decide, as the CRI says; the pod's are the
        // fallback. POD mode joins the pod's shared pid namespace, when the pod made one.
        let pod_options = sandbox
            .config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref());
        let options = record
            .config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref())
            .or(pod_options);
        let host_pid = options.is_some_and(|o| o.pid == v1::NamespaceMode::Node as i32);
        let pod_pid = options.is_none_or(|o| o.pid == v1::NamespaceMode::Pod as i32);
        let context = PodContext {
            net_ns: paths.net.as_deref(),
            uts_ns: Some(&paths.uts),
            ipc_ns: Some(&paths.ipc),
            pid_ns: paths.pid.as_deref().filter(|_| pod_pid),
            etc_files: vec![
                ("/etc/resolv.conf", paths.resolv.as_path()),
                ("/etc/hosts", paths.hosts.as_path()),
                ("/etc/hostname", paths.hostname.as_path()),
            ],
            host_pid,
        };
        let spec = spec::generate(
            &record.config,
            &image.config.config,
            &context,
            dir.join("rootfs").as_path(),
            &record.cgroups_path,
        )
        .map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?;
        let bytes =
            serde_json::to_vec_pretty(&spec).map_err(|e| RuntimeError::Internal(e.to_string()))?;
        fs::write(dir.join("config.json"), bytes)?;
        if !record.log_path.is_empty()
            && let Some(parent) = Path::new(&record.log_path).parent()
        {
            fs::create_dir_all(parent)?;
        }
        Ok(())
    }

    /// Starts the container's shim and waits for its word on `runc create`.
    fn start_shim(
        &self,
        dir: &Path,
        record: &ContainerRecord,
    ) -> std::result::Result<i32, StartShimError> {
        let mut command = Command::new(&self.config.shim);
        command
            .arg("shim")
            .arg("--id")
            .arg(&record.id)
            .arg("--bundle")
            .arg(dir)
            .arg("--runc")
            .arg(&self.config.runc)
            .arg("--runc-root")
            .arg(self.config.root.join("runc"))
            .arg("--log-max-bytes")
            .arg(self.config.log_max_bytes.to_string())
            .arg("--log-max-files")
            .arg(self.config.log_max_files.to_string());
        if !record.log_path.is_empty() {
            command.arg("--log-path").arg(&record.log_path);
        }
        command
            .arg("--attach-socket")
            .arg(self.attach_socket(&record.id));
        if record.config.stdin {
            command.arg("--stdin");
        }
        if record.config.stdin_once {
            command.arg("--stdin-once");
        }
        // Its own process group, so signals meant for the runtime's group don't reach it.
        use std::os::unix::process::CommandExt;
        let shim_log = fs::File::create(dir.join("shim.log")).map_err(RuntimeError::from)?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(shim_log)
            .process_group(0)
            .spawn()
            .map_err(|e| {
                RuntimeError::Internal(format!(
                    "cannot start the shim {}: {e}",
                    self.config.shim.display()
                ))
            })?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout)
                .read_line(&mut line)
                .map_err(RuntimeError::from)?;
        }
        let line = line.trim();
        if let Some(pid) = line.strip_prefix("created ") {
            // The shim lives on; reap it in the background when it ends.
            std::thread::spawn(move || child.wait());
            return pid
                .parse()
                .map_err(|_| RuntimeError::Internal(format!("shim reported pid {pid:?}")).into());
        }
        let _ = child.wait();
        let message = line.strip_prefix("error ").unwrap_or(line);
        if message.contains("executable file not found")
            || message.contains("no such file or directory")
        {
            return Err(StartShimError::NoCommand(message.to_owned()));
        }
        Err(RuntimeError::Internal(format!("creating the container: {message}")).into())
    }

    /// Runs `runc --root <ours> <args>`; returns its combined error output on failure.
    pub(crate) fn runc(&self, args: &[&str]) -> Result<()> {
        let output = Command::new(&self.config.runc)
            .arg("--root")
            .arg(self.config.root.join("runc"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                RuntimeError::Internal(format!("cannot run {}: {e}", self.config.runc.display()))
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(RuntimeError::Internal(format!(
                "runc {}: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// `StartContainer`.
    pub fn start_container(&self, id: &str) -> Result<()> {
        let container = self.container(id)?;
        let mut record = lock(&container);
        if record.started_at != 0 {
            return Err(RuntimeError::FailedPrecondition(format!(
                "container {} was already started",
                record.id
            )));
        }
        if let Some(error) = &record.start_error {
            // As containerd records a container whose task could not be made.
            let exit = ExitRecord {
                exit_code: 128,
                finished_at: now_nanos(),
                oom_killed: false,
                start_error: Some(error.clone()),
            };
            let dir = self.container_dir(&record.id);
            let bytes =
                serde_json::to_vec(&exit).map_err(|e| RuntimeError::Internal(e.to_string()))?;
            fs::write(dir.join(crate::shim::EXIT_FILE), bytes)?;
            return Err(RuntimeError::Internal(format!(
                "failed to start container {}: {error}",
                record.id
            )));
        }
        self.runc(&["start", &record.id])?;
        record.started_at = now_nanos();
        save(
            &self.container_dir(&record.id).join("container.json"),
            &*record,
        )?;
        let (id, sandbox_id) = (record.id.clone(), record.sandbox_id.clone());
        drop(record);
        self.announce_started(&id, &sandbox_id);
        Ok(())
    }

    /// `StopContainer`: the image's stop signal, `timeout` seconds, then SIGKILL.
    pub fn stop_container(&self, id: &str, timeout: i64) -> Result<()> {
        let container = match self.container(id) {
            Ok(container) => container,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let record = lock(&container).clone();
        let dir = self.container_dir(&record.id);
        if exit_record(&dir).is_some() || !process_alive(record.pid) {
            // It ended on its own; the exit watch may not have announced it yet.
            self.container_exited(&record.id);
            return Ok(());
        }
        if record.started_at == 0 {
            // Created, never started: its process waits on runc's fifo; killing it is enough.
            self.kill(&record, rustix::process::Signal::KILL);
            self.wait_exit(&dir, record.pid, KILL_WAIT);
            return Ok(());
        }
        if timeout > 0 {
            self.kill(&record, stop_signal(&record.stop_signal));
            if self.wait_exit(&dir, record.pid, Duration::from_secs(timeout as u64)) {
                self.container_exited(&record.id);
                return Ok(());
            }
        }
        self.kill(&record, rustix::process::Signal::KILL);
        if self.wait_exit(&dir, record.pid, KILL_WAIT) {
            self.container_exited(&record.id);
            Ok(())
        } else {
            Err(RuntimeError::DeadlineExceeded(format!(
                "container {} did not exit after SIGKILL",
                record.id
            )))
        }
    }

    fn kill(&self, record: &ContainerRecord, signal: rustix::process::Signal) {
        if let Some(pid) = rustix::process::Pid::from_raw(record.pid) {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }

    /// Waits until the shim records the exit (or, if the shim is gone, the process is).
    fn wait_exit(&self, dir: &Path, pid: i32, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if exit_record(dir).is_some() {
                return true;
            }
            if !process_alive(pid) {
                // Give the shim a moment to write the record of a process that just ended.
                std::thread::sleep(Duration::from_millis(20));
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `RemoveContainer`: kills it if running, then removes runc's state, the rootfs and the
    /// bundle. The log file stays (the kubelet owns log directories).
    pub fn remove_container(&self, id: &str) -> Result<()> {
        let container = match self.container(id) {
            Ok(container) => container,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let id = lock(&container).id.clone();
        self.stop_container(&id, 0)?;
        let record = lock(&container).clone();
        if let Err(e) = self.runc(&["delete", "--force", &record.id])
            && !e.to_string().contains("does not exist")
        {
            tracing::warn!(container = %record.id, error = %e, "runc delete failed");
        }
        if let Err(e) = crate::cgroups::remove(&record.cgroups_path) {
            tracing::warn!(container = %record.id, error = %e, "container cgroup not removed");
        }
        teardown::remove_dir_carefully(&self.container_dir(&record.id));
        lock(&self.containers).remove(&record.id);
        self.announce_deleted(&record.id, &record.sandbox_id);
        Ok(())
    }

    /// `ContainerStatus`.
    pub fn container_status(&self, id: &str) -> Result<v1::ContainerStatus> {
        let container = self.container(id)?;
        let record = lock(&container).clone();
        Ok(self.status_of(&record))
    }

    fn status_of(&self, record: &ContainerRecord) -> v1::ContainerStatus {
        let dir = self.container_dir(&record.id);
        let exit = exit_record(&dir).or_else(|| {
            // A started container whose process is gone without an exit record lost its shim.
            (record.started_at != 0 && !process_alive(record.pid)).then(|| ExitRecord {
                exit_code: 255,
                finished_at: now_nanos(),
                oom_killed: false,
                start_error: None,
            })
        });
        let (state, finished_at, exit_code, reason) = match &exit {
            Some(exit) => {
                let reason = if exit.start_error.is_some() {
                    "StartError"
                } else if exit.oom_killed {
                    "OOMKilled"
                } else if exit.exit_code == 0 {
                    "Completed"
                } else {
                    "Error"
                };
                (
                    v1::ContainerState::ContainerExited,
                    exit.finished_at,
                    exit.exit_code,
                    reason,
                )
            }
            None if record.started_at != 0 => (v1::ContainerState::ContainerRunning, 0, 0, ""),
            None => (v1::ContainerState::ContainerCreated, 0, 0, ""),
        };
        let image_ref = self
            .images
            .list()
            .ok()
            .and_then(|images| images.into_iter().find(|i| i.id == record.image_id))
            .and_then(|i| i.repo_digests.first().cloned())
            .unwrap_or_else(|| record.image_id.to_string());
        v1::ContainerStatus {
            id: record.id.clone(),
            metadata: record.config.metadata.clone(),
            state: state as i32,
            created_at: record.created_at,
            started_at: record.started_at,
            finished_at,
            exit_code,
            image: record.config.image.clone(),
            image_ref,
            reason: reason.to_string(),
            message: exit
                .as_ref()
                .and_then(|exit| exit.start_error.clone())
                .unwrap_or_default(),
            labels: record.config.labels.clone(),
            annotations: record.config.annotations.clone(),
            mounts: record.config.mounts.clone(),
            log_path: record.log_path.clone(),
            resources: record
                .config
                .linux
                .as_ref()
                .map(|l| v1::ContainerResources {
                    linux: l.resources.clone(),
                    windows: None,
                }),
            image_id: record.image_id.to_string(),
            user: None,
        }
    }

    /// `ListContainers`.
    pub fn list_containers(&self, filter: Option<&v1::ContainerFilter>) -> Vec<v1::Container> {
        let containers: Vec<_> = lock(&self.containers).values().cloned().collect();
        containers
            .iter()
            .map(|c| lock(c).clone())
            .map(|record| (self.status_of(&record), record))
            .filter(|(status, record)| {
                let Some(filter) = filter else { return true };
                (filter.id.is_empty() || record.id.starts_with(&filter.id))
                    && (filter.pod_sandbox_id.is_empty()
                        || record.sandbox_id.starts_with(&filter.pod_sandbox_id))
                    && filter
                        .state
                        .as_ref()
                        .is_none_or(|s| s.state == status.state)
                    && filter
                        .label_selector
                        .iter()
                        .all(|(k, v)| record.config.labels.get(k) == Some(v))
            })
            .map(|(status, record)| v1::Container {
                id: record.id.clone(),
                pod_sandbox_id: record.sandbox_id.clone(),
                metadata: record.config.metadata.clone(),
                image: record.config.image.clone(),
                image_ref: status.image_ref.clone(),
                state: status.state,
                created_at: record.created_at,
                labels: record.config.labels.clone(),
                annotations: record.config.annotations.clone(),
                image_id: record.image_id.to_string(),
            })
            .collect()
    }

    /// `ExecSync`: runs `cmd` in the container and collects its output.
    pub fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout: i64,
    ) -> Result<v1::ExecSyncResponse> {
        if cmd.is_empty() {
            return Err(RuntimeError::InvalidArgument("exec needs a command".into()));
        }
        let container = self.container(id)?;
        let record = lock(&container).clone();
        let dir = self.container_dir(&record.id);
        if record.started_at == 0 || exit_record(&dir).is_some() {
            return Err(RuntimeError::FailedPrecondition(format!(
                "container {} is not running",
                record.id
            )));
        }
        let mut child = Command::new(&self.config.runc)
            .arg("--root")
            .arg(self.config.root.join("runc"))
            .arg("exec")
            .arg(&record.id)
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().map(reader_thread);
        let stderr = child.stderr.take().map(reader_thread);
        let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_secs(timeout as u64));
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RuntimeError::DeadlineExceeded(format!(
                    "command {cmd:?} timed out after {timeout}s"
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let stdout = stdout.and_then(|t| t.join().ok()).unwrap_or_default();
        let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
        let exit_code = status.code().unwrap_or(255);
        // runc reports a command that cannot start with its own message and status 255.
        if exit_code == 255 {
            let text = String::from_utf8_lossy(&stderr);
            if text.contains("exec failed") || text.contains("executable file not found") {
                return Err(RuntimeError::InvalidArgument(format!(
                    "cannot exec {cmd:?} in container {}: {}",
                    record.id,
                    text.trim()
                )));
            }
        }
        Ok(v1::ExecSyncResponse {
            stdout,
            stderr,
            exit_code,
        })
    }

    /// The full ID of a running container (for streams), or why it is not running.
    pub fn running_container(&self, id: &str) -> Result<String> {
        let container = self.container(id)?;
        let record = lock(&container).clone();
        if record.started_at == 0 || exit_record(&self.container_dir(&record.id)).is_some() {
            return Err(RuntimeError::FailedPrecondition(format!(
                "container {} is not running",
                record.id
            )));
        }
        Ok(record.id)
    }

    /// `ReopenContainerLog`: asks the shim to open its log file anew.
    pub fn reopen_container_log(&self, id: &str) -> Result<()> {
        let container = self.container(id)?;
        let record = lock(&container).clone();
        let dir = self.container_dir(&record.id);
        if exit_record(&dir).is_some() || record.started_at == 0 {
            return Err(RuntimeError::FailedPrecondition(format!(
                "container {} is not running",
                record.id
            )));
        }
        if record.log_path.is_empty() {
            // Its output goes nowhere, so there is nothing to reopen (and its shim, which
            // writes no log, does not expect the signal).
            return Ok(());
        }
        let shim = shim_pid(&dir)
            .ok_or_else(|| RuntimeError::Internal(format!("the shim of {} is gone", record.id)))?;
        rustix::process::kill_process(shim, rustix::process::Signal::USR1)
            .map_err(|e| RuntimeError::Internal(format!("signalling the shim: {e}")))?;
        // The shim reopens on its own thread; wait until the file exists again.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !Path::new(&record.log_path).exists() {
            if Instant::now() >= deadline {
                return Err(RuntimeError::Internal(format!(
                    "the shim of {} did not reopen its log {}",
                    record.id, record.log_path
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// `UpdateContainerResources`: applies new limits with `runc update`.
    pub fn update_container_resources(
        &self,
        id: &str,
        resources: &v1::LinuxContainerResources,
    ) -> Result<()> {
        let container = self.container(id)?;
        let mut record = lock(&container);
        let mut update = serde_json::json!({});
        spec::resources_from_cri(resources, &mut update);
        let file = self.container_dir(&record.id).join("resources.json");
        fs::write(&file, update.to_string())?;
        let file_arg = file.display().to_string();
        self.runc(&["update", "--resources", &file_arg, &record.id])?;
        if let Some(linux) = record.config.linux.as_mut() {
            linux.resources = Some(resources.clone());
        }
        save(
            &self.container_dir(&record.id).join("container.json"),
            &*record,
        )?;
        Ok(())
    }

    /// The container's cgroup and when its stats were read, for `ContainerStats`.
    pub fn container_stats(&self, id: &str) -> Result<v1::ContainerStats> {
        let container = self.container(id)?;
        let record = lock(&container).clone();
        Ok(self.stats_of(&record))
    }

    pub(crate) fn stats_of(&self, record: &ContainerRecord) -> v1::ContainerStats {
        let now = now_nanos();
        let usage = crate::cgroups::usage(&record.cgroups_path).unwrap_or_default();
        let upper = self.container_dir(&record.id).join("upper");
        let (bytes, inodes) = disk_usage(&upper);
        v1::ContainerStats {
            attributes: Some(v1::ContainerAttributes {
                id: record.id.clone(),
                metadata: record.config.metadata.clone(),
                labels: record.config.labels.clone(),
                annotations: record.config.annotations.clone(),
            }),
            cpu: Some(usage.cpu(now)),
            memory: Some(usage.memory(now)),
            writable_layer: Some(v1::FilesystemUsage {
                timestamp: now,
                fs_id: Some(v1::FilesystemIdentifier {
                    mountpoint: upper.display().to_string(),
                }),
                used_bytes: Some(v1::UInt64Value { value: bytes }),
                inodes_used: Some(v1::UInt64Value { value: inodes }),
            }),
            swap: None,
        }
    }

    /// Drops records of containers whose directories vanished, after a restart.
    pub fn container_ids(&self) -> Vec<String> {
        lock(&self.containers).keys().cloned().collect()
    }

    /// After a restart: watches every container's bundle for its exit again. A started
    /// container that has not ended counts as announced running; one that ended while the
    /// runtime was away as announced stopped (nobody could be subscribed to hear it).
    pub(crate) fn recover_exit_watches(&self) {
        let containers: Vec<_> = lock(&self.containers).values().cloned().collect();
        for container in containers {
            let record = lock(&container).clone();
            let dir = self.container_dir(&record.id);
            self.events.watch(&record.id, &dir);
            // Looked at after the watch is in place, so that no exit falls in between.
            if record.started_at != 0 {
                self.events
                    .recovered(&record.id, exit_record(&dir).is_some());
            }
        }
    }

    /// Containers whose exit record is there.
    pub(crate) fn exited_containers(&self) -> Vec<String> {
        self.container_ids()
            .into_iter()
            .filter(|id| exit_record(&self.container_dir(id)).is_some())
            .collect()
    }
}

fn reader_thread(
    mut source: impl std::io::Read + Send + 'static,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = source.read_to_end(&mut buffer);
        buffer
    })
}

/// The shim's exit record in a container directory, if the process has ended.
pub(crate) fn exit_record(dir: &Path) -> Option<ExitRecord> {
    let bytes = fs::read(dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn process_alive(pid: i32) -> bool {
    match rustix::process::Pid::from_raw(pid) {
        Some(pid) => rustix::process::test_kill_process(pid).is_ok(),
        None => false,
    }
}

/// The shim of a container: the parent of its first process.
fn shim_pid(dir: &Path) -> Option<rustix::process::Pid> {
    let pid: i32 = fs::read_to_string(dir.join(crate::shim::PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let parent: i32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()?;
    rustix::process::Pid::from_raw(parent)
}

/// A signal by name (`SIGQUIT`, `QUIT`, `3`); SIGTERM when empty or unknown.
fn stop_signal(name: &str) -> rustix::process::Signal {
    use rustix::process::Signal;
    let name = name.trim().to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    match name {
        "HUP" | "1" => Signal::HUP,
        "INT" | "2" => Signal::INT,
        "QUIT" | "3" => Signal::QUIT,
        "KILL" | "9" => Signal::KILL,
        "USR1" | "10" => Signal::USR1,
        "USR2" | "12" => Signal::USR2,
        "WINCH" | "28" => Signal::WINCH,
        _ => Signal::TERM,
    }
}

/// Bytes and inodes used under `dir`.
fn disk_usage(dir: &Path) -> (u64, u64) {
    let mut bytes = 0;
    let mut inodes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            inodes += 1;
            if let Ok(meta) = entry.metadata() {
                if meta.is_dir() {
                    stack.push(entry.path());
                } else {
                    bytes += meta.len();
                }
            }
        }
    }
    (bytes, inodes)
}

/// Why a shim could not create its container.
enum StartShimError {
    /// The container's command is not in the image: the error is kept for `StartContainer`.
    NoCommand(String),
    Runtime(RuntimeError),
}

impl From<RuntimeError> for StartShimError {
    fn from(e: RuntimeError) -> Self {
        StartShimError::Runtime(e)
    }
}
