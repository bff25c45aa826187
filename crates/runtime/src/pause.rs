//! The process that holds a pod's shared pid namespace (`NamespaceMode::POD`, Kubernetes'
//! `shareProcessNamespace`).
//!
//! The other namespaces a pod shares outlive their processes through bind mounts, but a pid
//! namespace whose first process has died takes no new processes. So a pod that shares one gets
//! a small first process, `cox pause`, started by util-linux `unshare --pid=<file> --fork
//! --kill-child` (which also bind-mounts the namespace at `<file>`, the path containers join).
//! As the namespace's init it reaps the orphans of the pod's containers. It ends when the
//! sandbox stops (SIGKILL), and the kernel then kills whatever the namespace still holds, as
//! upstream's pause container does.

use std::fs;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};

/// `cox pause`: writes its pid as the host sees it to stdout, one line, then reaps children
/// forever, asleep until a child ends.
pub fn run() -> io::Result<()> {
    // Registered first: a SIGCHLD from then on wakes the loop below, even one that arrives
    // while it is reaping.
    let mut children_ended = signal_hook::iterator::Signals::new([signal_hook::consts::SIGCHLD])?;
    // /proc is the host's (no new mount namespace), so /proc/self names the host's pid, where
    // getpid() would say 1.
    let host_pid = fs::read_link("/proc/self")?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{}", host_pid.display())?;
    stdout.flush()?;
    drop(stdout);
    loop {
        // Every child that has ended, then sleep until the next one does.
        while let Ok(Some(_)) = rustix::process::wait(WaitOptions::NOHANG) {}
        let _ = children_ended.forever().next();
    }
}

/// Starts a pause process in a new pid namespace bind-mounted at `ns_file` (an existing empty
/// file); returns its pid once it has reported it. `cox` is the binary with the `pause`
/// command.
pub fn start(cox: &Path, ns_file: &Path) -> io::Result<i32> {
    let mut child = Command::new("unshare")
        .arg(format!("--pid={}", ns_file.display()))
        .args(["--fork", "--kill-child"])
        .arg(cox)
        .arg("pause")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a signal to the runtime's group is not the pod's.
        .process_group(0)
        .spawn()
        .map_err(|e| io::Error::other(format!("cannot run unshare (util-linux): {e}")))?;
    // One line, or the end of the pipe if it did not get that far.
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        io::BufReader::new(stdout).read_line(&mut line)?;
    }
    if let Ok(pid) = line.trim().parse::<i32>() {
        // `unshare` waits for the pause process for as long as it lives; someone must reap
        // it then.
        std::thread::spawn(move || child.wait());
        return Ok(pid);
    }
    let _ = child.kill();
    let status = child.wait()?;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    Err(io::Error::other(format!(
        "the pod's pid namespace holder exited ({status}): {}",
        stderr.trim()
    )))
}

/// Kills the pause process `pid` if it still holds the namespace at `ns_file` (a pid reused by
/// another process is left alone), and with it every process in the namespace.
pub fn stop(pid: i32, ns_file: &Path) {
    let (Ok(ours), Ok(theirs)) = (
        fs::metadata(ns_file),
        fs::metadata(format!("/proc/{pid}/ns/pid")),
    ) else {
        return;
    };
    if ours.ino() != theirs.ino() || ours.dev() != theirs.dev() {
        return;
    }
    if let Some(pid) = Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
    }
    // Wait for it to go, so that the namespace's processes are gone when the sandbox is
    // reported stopped.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}/ns/pid")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}
