//! An exec stream: `runc exec` in the container, its stdio carried over the WebSocket.
//!
//! Without a terminal the process gets pipes and `runc exec` waits for it. With one, runc makes
//! a pseudo-terminal inside the container and hands its controlling side to us over a unix
//! socket (`--console-socket`, the descriptor passed as SCM_RIGHTS); runc only does that when it
//! detaches (`-d`), so the process is then handed to the runtime, a child subreaper, which waits
//! for it by pid. Resize frames set the terminal's window size.

use std::os::fd::OwnedFd;
use std::process::Stdio;

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

    let outcome = match start(runtime, container_id, cmd, tty, stdin).await {
        Ok(process) => process.pump(&mut incoming, &out).await,
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
    Ok(())
}

/// How the exec'd process is waited for.
enum Waiting {
    /// `runc exec` stays its parent and reports its exit.
    Runc(tokio::process::Child),
    /// Detached: the runtime (a subreaper) inherited it.
    Orphan(rustix::process::Pid),
}

impl Waiting {
    async fn wait(&mut self) -> Result<i32> {
        match self {
            Waiting::Runc(child) => Ok(child.wait().await?.code().unwrap_or(128 + 9)),
            Waiting::Orphan(pid) => {
                let pid = *pid;
                tokio::task::spawn_blocking(move || -> Result<i32> {
                    loop {
                        match rustix::process::waitpid(
                            Some(pid),
                            rustix::process::WaitOptions::empty(),
                        ) {
                            Ok(Some((_, status))) => {
                                if let Some(code) = status.exit_status() {
                                    return Ok(code);
                                }
                                if let Some(signal) = status.terminating_signal() {
                                    return Ok(128 + signal);
                                }
                            }
                            Ok(None) | Err(rustix::io::Errno::INTR) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                })
                .await?
            }
        }
    }

    async fn kill(&mut self) {
        match self {
            Waiting::Runc(child) => {
                let _ = child.start_kill();
            }
            Waiting::Orphan(pid) => {
                let _ = rustix::process::kill_process(*pid, rustix::process::Signal::KILL);
            }
        }
    }
}

/// A started `runc exec`.
struct Process {
    child: Waiting,
    input: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    outputs: Vec<(u8, Box<dyn AsyncRead + Send + Unpin>)>,
    /// The terminal's controlling side, for resizes.
    terminal: Option<OwnedFd>,
    /// The console socket's directory, removed when done.
    _scratch: Option<tempfile::TempDir>,
}

async fn start(
    runtime: &Runtime,
    container_id: &str,
    cmd: &[String],
    tty: bool,
    stdin: bool,
) -> Result<Process> {
    let container = runtime.container(container_id)?;
    let id = lock(&container).id.clone();
    let mut command = tokio::process::Command::new(&runtime.config.runc);
    command
        .arg("--root")
        .arg(runtime.config.root.join("runc"))
        .arg("exec");
    let mut scratch = None;
    let mut console = None;
    if tty {
        // Socket paths are limited to 108 bytes: keep it short, under the runtime's root.
        let dir = tempfile::Builder::new()
            .prefix("x")
            .tempdir_in(&runtime.config.root)
            .context("making the console socket's directory")?;
        let path = dir.path().join("c.sock");
        console =
            Some(tokio::net::UnixListener::bind(&path).context("binding the console socket")?);
        // As containerd does, a terminal gets a TERM.
        command
            .args([
                "--env",
                "TERM=xterm",
                "--detach",
                "--tty",
                "--console-socket",
            ])
            .arg(&path)
            .arg("--pid-file")
            .arg(dir.path().join("pid"));
        scratch = Some(dir);
    }
    command.arg(&id).args(cmd).kill_on_drop(true);
    command.stdin(if stdin && !tty {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    command.stdout(if tty { Stdio::null() } else { Stdio::piped() });
    command.stderr(Stdio::piped());
    let mut child = command.spawn().context("running runc exec")?;

    if let Some(listener) = console {
        let terminal = tokio::select! {
            accepted = listener.accept() => receive_terminal(accepted?.0).await?,
            status = child.wait() => {
                let mut message = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut message).await;
                }
                anyhow::bail!("runc exec failed ({}): {}", status?, message.trim());
            }
        };
        let status = child.wait().await?;
        let pid_file = scratch
            .as_ref()
            .map(|d| d.path().join("pid"))
            .unwrap_or_default();
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
            .with_context(|| format!("runc exec ({status}) wrote no pid"))?;
        let reader = tokio::fs::File::from_std(std::fs::File::from(terminal.try_clone()?));
        let writer = tokio::fs::File::from_std(std::fs::File::from(terminal.try_clone()?));
        let outputs: Vec<(u8, Box<dyn AsyncRead + Send + Unpin>)> =
            vec![(STDOUT, Box::new(reader))];
        return Ok(Process {
            child: Waiting::Orphan(pid),
            input: stdin.then(|| Box::new(writer) as Box<dyn AsyncWrite + Send + Unpin>),
            outputs,
            terminal: Some(terminal),
            _scratch: scratch,
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
        child: Waiting::Runc(child),
        input,
        outputs,
        terminal: None,
        _scratch: scratch,
    })
}

/// Receives the terminal descriptor runc sends over the console socket.
async fn receive_terminal(stream: tokio::net::UnixStream) -> Result<OwnedFd> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    tokio::task::spawn_blocking(move || -> Result<OwnedFd> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
        let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut ancillary = RecvAncillaryBuffer::new(&mut space);
        let mut name = [0u8; 256];
        recvmsg(
            &stream,
            &mut [std::io::IoSliceMut::new(&mut name)],
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
        anyhow::bail!("runc sent no terminal over the console socket")
    })
    .await?
}

impl Process {
    /// Carries the streams until the process ends and its output is drained; returns its exit
    /// code.
    async fn pump(
        mut self,
        incoming: &mut futures::stream::SplitStream<Socket>,
        out: &mpsc::Sender<Message>,
    ) -> Result<i32> {
        let copiers: Vec<_> = self
            .outputs
            .drain(..)
            .map(|(channel, mut reader)| {
                let out = out.clone();
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
                    }
                })
            })
            .collect();
        let mut input = self.input.take();
        let terminal = self.terminal.take();
        let mut client_gone = false;
        let status = loop {
            tokio::select! {
                status = self.child.wait() => break status?,
                message = incoming.next(), if !client_gone => match message {
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
                        Some((RESIZE, bytes)) => resize(terminal.as_ref(), bytes),
                        Some((CLOSE, [STDIN])) => input = None,
                        _ => {}
                    },
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        // The client went away: nobody is left to read the output.
                        client_gone = true;
                        self.child.kill().await;
                    }
                    Some(Ok(_)) => {}
                },
            }
        };
        drop(input);
        drop(terminal);
        for copier in copiers {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), copier).await;
        }
        Ok(status)
    }
}

fn resize(terminal: Option<&OwnedFd>, bytes: &[u8]) {
    let (Some(terminal), Ok(size)) = (
        terminal,
        serde_json::from_slice::<streaming::TerminalSize>(bytes),
    ) else {
        return;
    };
    let winsize = rustix::termios::Winsize {
        ws_row: size.height,
        ws_col: size.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let _ = rustix::termios::tcsetwinsize(terminal, winsize);
}
