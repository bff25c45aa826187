//! An exec stream: `runc exec` in the container, its stdio carried over the WebSocket.
//!
//! Without a terminal the process gets pipes. With one, runc makes a pseudo-terminal inside
//! the container and copies between it and runc's own stdio; we give runc a terminal of ours
//! (a pty pair: runc gets the follower side, we keep the controller), so the process sees a
//! real terminal end to end. A resize sets our terminal's size and tells runc (SIGWINCH), which
//! passes it on. The first size is known before the process starts (see [`first_size`]), so
//! it never sees a terminal of no size. Either way `runc exec` stays the process's parent and
//! exits with its status.

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use cox_cri::streaming::{self, CLOSE, ERROR, RESIZE, STDERR, STDIN, STDOUT};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::runtime::{Runtime, lock};

type Socket = WebSocketStream<TcpStream>;

/// How long an ended process's output may stay silent before it counts as drained.
const DRAIN_IDLE: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a terminal exec waits for the client's first terminal size before it starts the
/// process without one.
const FIRST_SIZE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// What the client's side of the WebSocket yields.
type Incoming = Option<Result<Message, tokio_tungstenite::tungstenite::Error>>;

pub(super) async fn run(
    socket: Socket,
    protocol: &'static str,
    runtime: &Runtime,
    container_id: &str,
    cmd: &[String],
    tty: bool,
    stdin: bool,
) -> Result<()> {
    let (mut sink, mut incoming) = socket.split();
    let (out, mut outgoing) = mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let mut held = Vec::new();
    let size = if tty {
        first_size(&mut incoming, &mut held).await
    } else {
        None
    };
    let outcome = match start(runtime, container_id, cmd, tty.then_some(size), stdin).await {
        Ok(process) => process.pump(&mut incoming, held, &out).await,
        Err(e) => Err(e),
    };
    let status = match &outcome {
        Ok(code) => streaming::exit_status(*code),
        Err(e) => streaming::failure_status(&format!("{e:#}")),
    };
    let report = if streaming::has_status(protocol) {
        status.to_string().into_bytes()
    } else {
        status["message"]
            .as_str()
            .unwrap_or_default()
            .as_bytes()
            .to_vec()
    };
    if outcome
        .as_ref()
        .map_or(true, |code| *code != 0 || streaming::has_status(protocol))
    {
        let _ = out
            .send(Message::binary(streaming::frame(ERROR, &report)))
            .await;
    }
    let _ = out.send(Message::Close(None)).await;
    drop(out);
    let _ = writer.await;
    super::await_close(&mut incoming).await;
    Ok(())
}

/// Reads what the client sends first until its terminal's size, which kubectl sends as soon
/// as the stream opens, but which may trail it through the proxies. A process started before
/// it would find a terminal of no size (busybox `stty size` then fails). Other frames read on
/// the way are kept in `held`, for the pump; a client that sends no size costs
/// [`FIRST_SIZE_WAIT`].
async fn first_size(
    incoming: &mut futures::stream::SplitStream<Socket>,
    held: &mut Vec<Incoming>,
) -> Option<streaming::TerminalSize> {
    let deadline = tokio::time::Instant::now() + FIRST_SIZE_WAIT;
    loop {
        let next = tokio::time::timeout_at(deadline, incoming.next())
            .await
            .ok()?;
        if let Some(Ok(Message::Binary(data))) = &next
            && let Some((RESIZE, bytes)) = streaming::parse(data)
            && let Ok(size) = serde_json::from_slice(bytes)
        {
            return Some(size);
        }
        let ended = !matches!(next, Some(Ok(ref message)) if !message.is_close());
        held.push(next);
        if ended {
            return None;
        }
    }
}

/// A started `runc exec`.
struct Process {
    child: tokio::process::Child,
    input: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    outputs: Vec<(u8, Box<dyn AsyncRead + Send + Unpin>)>,
    /// The terminal's controlling side, for resizes.
    terminal: Option<OwnedFd>,
    /// The process description given to runc, removed with this.
    _spec: Option<SpecFile>,
}

/// Starts the process; `terminal` is `Some` for a terminal, with its first size if known.
async fn start(
    runtime: &Runtime,
    container_id: &str,
    cmd: &[String],
    terminal: Option<Option<streaming::TerminalSize>>,
    stdin: bool,
) -> Result<Process> {
    let container = runtime.container(container_id)?;
    let id = lock(&container).id.clone();
    let mut command = tokio::process::Command::new(&runtime.config.runc);
    command
        .arg("--root")
        .arg(runtime.config.root.join("runc"))
        .arg("exec");
    let mut spec = None;
    let terminal = if let Some(size) = terminal {
        let (controller, follower) = open_pty()?;
        if let Some(size) = size {
            // runc copies its terminal's size to the container's once the process runs...
            rustix::termios::tcsetwinsize(&controller, winsize(size))
                .context("sizing the terminal")?;
        }
        // ...and sets `consoleSize` before it does.
        let file = SpecFile::write(&runtime.container_dir(&id), cmd, size)?;
        command.arg("--process").arg(&file.0);
        spec = Some(file);
        command
            .stdin(follower.try_clone()?)
            .stdout(follower.try_clone()?)
            .stderr(follower);
        Some(controller)
    } else {
        command.stdin(if stdin { Stdio::piped() } else { Stdio::null() });
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        None
    };
    command.arg(&id);
    if spec.is_none() {
        command.args(cmd);
    }
    command.kill_on_drop(true);
    let mut child = command.spawn().context("running runc exec")?;
    // The follower side now lives only in runc: when runc exits, reads on ours end.
    drop(command);
    if let Some(terminal) = terminal {
        let reader = tokio::fs::File::from_std(std::fs::File::from(terminal.try_clone()?));
        let writer = tokio::fs::File::from_std(std::fs::File::from(terminal.try_clone()?));
        let outputs: Vec<(u8, Box<dyn AsyncRead + Send + Unpin>)> =
            vec![(STDOUT, Box::new(reader))];
        return Ok(Process {
            child,
            input: stdin.then(|| Box::new(writer) as Box<dyn AsyncWrite + Send + Unpin>),
            outputs,
            terminal: Some(terminal),
            _spec: spec,
        });
    }
    let mut outputs: Vec<(u8, Box<dyn AsyncRead + Send + Unpin>)> = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        outputs.push((STDOUT, Box::new(stdout)));
    }
    if let Some(stderr) = child.stderr.take() {
        outputs.push((STDERR, Box::new(stderr)));
    }
    let input = child
        .stdin
        .take()
        .map(|stdin| Box::new(stdin) as Box<dyn AsyncWrite + Send + Unpin>);
    Ok(Process {
        child,
        input,
        outputs,
        terminal: None,
        _spec: None,
    })
}

/// A terminal process's description for `runc exec --process`: the container's own process
/// (user, environment, working directory, capabilities, limits), running `cmd` on a terminal
/// of the given size, with a TERM as containerd gives one. Removed when dropped.
struct SpecFile(std::path::PathBuf);

impl SpecFile {
    fn write(
        bundle: &std::path::Path,
        cmd: &[String],
        size: Option<streaming::TerminalSize>,
    ) -> Result<SpecFile> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let config = std::fs::read(bundle.join("config.json"))
            .with_context(|| format!("reading {}/config.json", bundle.display()))?;
        let mut process = serde_json::from_slice::<serde_json::Value>(&config)?
            .get_mut("process")
            .map(serde_json::Value::take)
            .filter(serde_json::Value::is_object)
            .context("the container's config.json has no process")?;
        process["args"] = serde_json::json!(cmd);
        process["terminal"] = true.into();
        match process
            .get_mut("env")
            .and_then(serde_json::Value::as_array_mut)
        {
            Some(env) => env.push("TERM=xterm".into()),
            None => process["env"] = serde_json::json!(["TERM=xterm"]),
        }
        if let Some(size) = size {
            process["consoleSize"] =
                serde_json::json!({"height": size.height, "width": size.width});
        }
        let path = bundle.join(format!(
            "exec-{}.json",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, serde_json::to_vec(&process)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(SpecFile(path))
    }
}

impl Drop for SpecFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A pseudo-terminal pair: (controller, follower).
fn open_pty() -> Result<(OwnedFd, std::fs::File)> {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
        .context("opening a pseudo-terminal")?;
    grantpt(&controller)?;
    unlockpt(&controller)?;
    let name = ptsname(&controller, Vec::new())?;
    let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(name.as_bytes()));
    use std::os::unix::fs::OpenOptionsExt;
    let follower = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    Ok((controller, follower))
}

impl Process {
    /// Carries the streams until the process ends and its output is drained; returns its exit
    /// code.
    async fn pump(
        mut self,
        incoming: &mut futures::stream::SplitStream<Socket>,
        held: Vec<Incoming>,
        out: &mpsc::Sender<Message>,
    ) -> Result<i32> {
        // Frames the copiers have passed on, to tell draining output from none.
        let forwarded = Arc::new(AtomicU64::new(0));
        let copiers: Vec<_> = self
            .outputs
            .drain(..)
            .map(|(channel, mut reader)| {
                let out = out.clone();
                let forwarded = Arc::clone(&forwarded);
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 32 * 1024];
                    // A terminal reports EIO once the process side has closed: that is its end.
                    while let Ok(n) = reader.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        let frame = streaming::frame(channel, &buffer[..n]);
                        if out.send(Message::binary(frame)).await.is_err() {
                            break;
                        }
                        forwarded.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let mut input = self.input.take();
        let terminal = self.terminal.take();
        let mut client_gone = false;
        let runc = self.child.id();
        // What was read before the process started goes first.
        let mut held = held.into_iter();
        let status = loop {
            let message = match held.next() {
                Some(message) => message,
                None => tokio::select! {
                    status = self.child.wait() => break status?.code().unwrap_or(128 + 9),
                    message = incoming.next(), if !client_gone => message,
                },
            };
            match message {
                Some(Ok(Message::Binary(data))) => match streaming::parse(&data) {
                    Some((STDIN, bytes)) => {
                        if let Some(writer) = input.as_mut() {
                            if writer.write_all(bytes).await.is_err() {
                                input = None;
                            } else {
                                let _ = writer.flush().await;
                            }
                        }
                    }
                    Some((RESIZE, bytes)) => resize(terminal.as_ref(), runc, bytes),
                    Some((CLOSE, [STDIN])) => input = None,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    // The client went away: nobody is left to read the output.
                    client_gone = true;
                    let _ = self.child.start_kill();
                }
                Some(Ok(_)) => {}
            }
        };
        drop(input);
        drop(terminal);
        // The output is drained for as long as it flows (a slow client takes its time); a
        // process left in the background that keeps it open but silent is not waited for.
        // Copiers are stopped before the status goes out, so that it comes after every frame.
        for mut copier in copiers {
            loop {
                let before = forwarded.load(Ordering::Relaxed);
                match tokio::time::timeout(DRAIN_IDLE, &mut copier).await {
                    Ok(_) => break,
                    Err(_) if forwarded.load(Ordering::Relaxed) != before => {}
                    Err(_) => {
                        copier.abort();
                        let _ = copier.await;
                        break;
                    }
                }
            }
        }
        Ok(status)
    }
}

fn resize(terminal: Option<&OwnedFd>, runc: Option<u32>, bytes: &[u8]) {
    let (Some(terminal), Ok(size)) = (
        terminal,
        serde_json::from_slice::<streaming::TerminalSize>(bytes),
    ) else {
        return;
    };
    let _ = rustix::termios::tcsetwinsize(terminal, winsize(size));
    // runc passes its terminal's new size on to the container's when it gets SIGWINCH.
    if let Some(pid) = runc.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::WINCH);
    }
}

fn winsize(size: streaming::TerminalSize) -> rustix::termios::Winsize {
    rustix::termios::Winsize {
        ws_row: size.height,
        ws_col: size.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}
