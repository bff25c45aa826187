//! The shim: one small process per container (`cox shim`), which outlives the runtime.
//!
//! It creates the container with `runc create`, becomes the parent of the container's first
//! process (it is a child subreaper, so the process is handed to it when runc exits), copies the
//! container's stdout and stderr into the CRI log, and when the process ends writes its exit
//! status to `exit.json` in the bundle. Because the shim, not the runtime, holds the container's
//! pipes and waits for it, the runtime can restart (or crash) while containers keep running; on
//! start it reads everything back from the bundles.
//!
//! The runtime learns the outcome of `runc create` from the shim's stdout: one line,
//! `created <pid>` or `error <message>`.

use std::fs;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rustix::process::{Pid, WaitOptions};
use serde::{Deserialize, Serialize};

use crate::attach;
use crate::logs::{self, LogWriter, Stream};

/// What one shim runs.
#[derive(Debug, Clone)]
pub struct ShimOptions {
    pub id: String,
    /// The OCI bundle: `config.json` and `rootfs`; the shim's files go here too.
    pub bundle: PathBuf,
    pub runc: PathBuf,
    pub runc_root: PathBuf,
    /// The CRI log file; none means output is discarded.
    pub log_path: Option<PathBuf>,
    pub log_max_bytes: u64,
    pub log_max_files: usize,
    /// Where attached clients connect (see [`crate::attach`]).
    pub attach_socket: Option<PathBuf>,
    /// Keep the container's stdin open for attached clients.
    pub stdin: bool,
    /// Close stdin when the first client that used it leaves.
    pub stdin_once: bool,
}

/// How a container's first process ended, as the shim recorded it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitRecord {
    pub exit_code: i32,
    /// Nanoseconds since the epoch.
    pub finished_at: i64,
    pub oom_killed: bool,
    /// Why the process never ran (`StartError`), with the error; none for a process that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_error: Option<String>,
}

/// The file a bundle's exit record is written to.
pub const EXIT_FILE: &str = "exit.json";
/// The file runc writes the container's pid to.
pub const PID_FILE: &str = "init.pid";
/// runc's own log, in JSON lines.
pub const RUNC_LOG: &str = "runc.log";

/// Runs the shim to its end; returns the process exit code.
pub fn run(options: &ShimOptions) -> i32 {
    match supervise(options) {
        Ok(()) => 0,
        Err(e) => {
            report(&format!("error {e}"));
            1
        }
    }
}

fn report(line: &str) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{}", line.replace('\n', " "));
    let _ = stdout.flush();
}

/// The container's output streams, as the shim reads them.
type Outputs = Vec<(Box<dyn io::Read + Send>, Stream)>;

fn supervise(options: &ShimOptions) -> io::Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    let bundle = &options.bundle;
    let terminal = fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|spec| spec["process"]["terminal"] == true);
    let mut create = Command::new(&options.runc);
    create
        .arg("--root")
        .arg(&options.runc_root)
        .arg("--log")
        .arg(bundle.join(RUNC_LOG))
        .arg("--log-format")
        .arg("json")
        .arg("create")
        .arg("--bundle")
        .arg(bundle)
        .arg("--pid-file")
        .arg(bundle.join(PID_FILE));

    let (outputs, input, console): (Outputs, Option<Box<dyn attach::WriteDebug>>, _) = if terminal {
        // runc hands the terminal's controlling side over a socket while it creates.
        // Socket paths are limited to 108 bytes: beside the (short) attach socket.
        let path = options
            .attach_socket
            .as_ref()
            .map(|p| p.with_extension("con"))
            .unwrap_or_else(|| bundle.join("console.sock"));
        let _ = fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path)?;
        create.arg("--console-socket").arg(&path);
        create
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let receiver = thread::spawn(move || receive_terminal(&listener));
        (Vec::new(), None, Some(receiver))
    } else {
        let (stdout_read, stdout_write) = io::pipe()?;
        let (stderr_read, stderr_write) = io::pipe()?;
        let input: Option<Box<dyn attach::WriteDebug>> = if options.stdin {
            let (stdin_read, stdin_write) = io::pipe()?;
            create.stdin(stdin_read);
            Some(Box::new(stdin_write))
        } else {
            create.stdin(Stdio::null());
            None
        };
        create.stdout(stdout_write).stderr(stderr_write);
        let outputs: Outputs = vec![
            (Box::new(stdout_read), Stream::Stdout),
            (Box::new(stderr_read), Stream::Stderr),
        ];
        (outputs, input, None)
    };
    let status = create.arg(&options.id).status()?;
    // Drop the pipe ends runc's command held, so the copiers see the container's end of file.
    drop(create);
    if !status.success() {
        return Err(io::Error::other(
            runc_error(bundle).unwrap_or_else(|| format!("runc create failed ({status})")),
        ));
    }
    let (mut outputs, input, terminal_fd) = match console {
        Some(receiver) => {
            let master = receiver
                .join()
                .map_err(|_| io::Error::other("the console receiver panicked"))??;
            let reader: Box<dyn io::Read + Send> = Box::new(fs::File::from(master.try_clone()?));
            let writer: Box<dyn attach::WriteDebug> = Box::new(fs::File::from(master.try_clone()?));
            let input = options.stdin.then_some(writer);
            (vec![(reader, Stream::Stdout)], input, Some(master))
        }
        None => (outputs, input, None),
    };
    let hub = attach::Hub::new(input, terminal_fd, options.stdin_once);
    if let Some(path) = &options.attach_socket {
        let _ = fs::remove_file(path);
        hub.serve(std::os::unix::net::UnixListener::bind(path)?);
    }
    let pid_text = fs::read_to_string(bundle.join(PID_FILE))?;
    let pid: i32 = pid_text
        .trim()
        .parse()
        .map_err(|_| io::Error::other(format!("runc wrote a bad pid {pid_text:?}")))?;
    let writer = match &options.log_path {
        Some(path) => Some(Arc::new(Mutex::new(LogWriter::open(
            path,
            options.log_max_bytes,
            options.log_max_files,
        )?))),
        None => None,
    };
    // Before the runtime hears of the container, so that a ReopenContainerLog right after
    // its start cannot meet SIGUSR1's default action (ending the shim).
    reopen_on_signal(writer.clone())?;
    report(&format!("created {pid}"));

    let copiers: Vec<_> = outputs
        .drain(..)
        .map(|(pipe, stream)| {
            let writer = writer.clone();
            let kind = match stream {
                Stream::Stdout => attach::STDOUT,
                Stream::Stderr => attach::STDERR,
            };
            let mut tee = attach::Tee {
                inner: pipe,
                hub: hub.clone(),
                kind,
            };
            thread::spawn(move || match writer {
                Some(writer) => {
                    let _ = logs::copy_lines(BufReader::new(tee), stream, &writer);
                }
                None => {
                    let _ = io::copy(&mut tee, &mut io::sink());
                }
            })
        })
        .collect();

    let exit_code = wait_for(pid)?;
    // The container's processes die with its first one (it has its own pid namespace), closing
    // the pipes; give the copiers a moment to drain what is left.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    for copier in copiers {
        while !copier.is_finished() && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
    hub.close_all();
    if let Some(path) = &options.attach_socket {
        let _ = fs::remove_file(path);
    }
    let record = ExitRecord {
        exit_code,
        finished_at: jiff::Timestamp::now().as_nanosecond() as i64,
        oom_killed: exit_code == 137 && oom_killed(bundle),
        start_error: None,
    };
    let staged = bundle.join(".exit.json.tmp");
    fs::write(
        &staged,
        serde_json::to_vec(&record).map_err(io::Error::other)?,
    )?;
    fs::rename(staged, bundle.join(EXIT_FILE))?;
    Ok(())
}

/// Reaps children until `pid` ends; returns its exit code (128 + signal if killed).
fn wait_for(pid: i32) -> io::Result<i32> {
    let target = Pid::from_raw(pid).ok_or_else(|| io::Error::other("pid 0"))?;
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((reaped, status))) if reaped == target => {
                if let Some(code) = status.exit_status() {
                    return Ok(code);
                }
                if let Some(signal) = status.terminating_signal() {
                    return Ok(128 + signal);
                }
            }
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Accepts runc's connection on the console socket and receives the terminal over it.
fn receive_terminal(
    listener: &std::os::unix::net::UnixListener,
) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
    let (stream, _) = listener.accept()?;
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut ancillary = RecvAncillaryBuffer::new(&mut space);
    let mut name = [0u8; 256];
    recvmsg(
        &stream,
        &mut [io::IoSliceMut::new(&mut name)],
        &mut ancillary,
        RecvFlags::empty(),
    )?;
    for message in ancillary.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    Err(io::Error::other(
        "runc sent no terminal over the console socket",
    ))
}

/// Reopens the log when the runtime sends SIGUSR1 (`ReopenContainerLog`); without a log the
/// signal is ignored.
fn reopen_on_signal(writer: Option<Arc<Mutex<LogWriter>>>) -> io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR1])?;
    thread::spawn(move || {
        for _ in signals.forever() {
            if let Some(Ok(mut writer)) = writer.as_ref().map(|w| w.lock()) {
                let _ = writer.reopen();
            }
        }
    });
    Ok(())
}

/// The last error runc logged, if any.
pub fn runc_error(bundle: &Path) -> Option<String> {
    let text = fs::read_to_string(bundle.join(RUNC_LOG)).ok()?;
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["level"] == "error")
        .filter_map(|entry| entry["msg"].as_str().map(str::to_string))
        .next_back()
}

/// Whether the kernel's OOM killer acted in the container's memory cgroup.
fn oom_killed(bundle: &Path) -> bool {
    let Some(cgroup) = fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|spec| spec["linux"]["cgroupsPath"].as_str().map(str::to_string))
    else {
        return false;
    };
    crate::cgroups::oom_kills(&cgroup) > 0
}
