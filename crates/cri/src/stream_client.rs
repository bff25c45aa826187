//! The client side of exec and port-forward streams (see [`crate::streaming`]): what `cox
//! crictl exec -it` and `cox crictl port-forward` use on the URL the runtime hands out.

use anyhow::{Context, Result, bail};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::streaming::{self, CLOSE, ERROR, RESIZE, STDERR, STDIN, STDOUT, TerminalSize};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a stream URL (`http://...` as runtimes answer) as a WebSocket speaking the channel
/// protocol; returns the socket and the protocol the server chose.
pub async fn open(url: &str) -> Result<(Socket, String)> {
    let url = match url.strip_prefix("http://") {
        Some(rest) => format!("ws://{rest}"),
        None => match url.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => url.to_string(),
        },
    };
    let mut request = url.as_str().into_client_request().context("stream URL")?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(&streaming::PROTOCOLS.join(", ")).context("protocol header")?,
    );
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("opening the stream at {url}"))?;
    let protocol = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(streaming::V1)
        .to_string();
    Ok((socket, protocol))
}

/// Puts the local terminal in raw mode while alive (for `exec -t`), restoring it on drop.
struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    fn enter() -> Self {
        let stdin = std::io::stdin();
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                saved,
            );
        }
    }
}

fn local_size() -> Option<TerminalSize> {
    let size = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (size.ws_col > 0).then_some(TerminalSize {
        width: size.ws_col,
        height: size.ws_row,
    })
}

/// Runs an exec (or attach) stream with this process's stdio; returns the remote exit code.
pub async fn exec(url: &str, stdin: bool, tty: bool) -> Result<i32> {
    let (socket, protocol) = open(url).await?;
    let (mut sink, mut incoming) = socket.split();
    let _raw = tty.then(RawMode::enter);
    let (frames, mut to_send) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    if tty && let Some(size) = local_size() {
        let _ = frames
            .send(streaming::frame(RESIZE, &serde_json::to_vec(&size)?))
            .await;
    }
    if tty {
        let frames = frames.clone();
        tokio::spawn(async move {
            let Ok(mut changes) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            else {
                return;
            };
            while changes.recv().await.is_some() {
                if let Some(size) = local_size()
                    && let Ok(json) = serde_json::to_vec(&size)
                    && frames.send(streaming::frame(RESIZE, &json)).await.is_err()
                {
                    return;
                }
            }
        });
    }
    if stdin {
        let frames = frames.clone();
        let closes = protocol == streaming::V5;
        tokio::spawn(async move {
            let mut input = tokio::io::stdin();
            let mut buffer = vec![0u8; 16 * 1024];
            while let Ok(n) = input.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                if frames
                    .send(streaming::frame(STDIN, &buffer[..n]))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if closes {
                let _ = frames.send(vec![CLOSE, STDIN]).await;
            }
        });
    }
    drop(frames);
    let sender = tokio::spawn(async move {
        while let Some(frame) = to_send.recv().await {
            if sink.send(Message::binary(frame)).await.is_err() {
                break;
            }
        }
    });
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let mut code = 0;
    while let Some(message) = incoming.next().await {
        let data = match message.context("reading the stream")? {
            Message::Binary(data) => data,
            Message::Close(_) => break,
            _ => continue,
        };
        match streaming::parse(&data) {
            Some((STDOUT, bytes)) => {
                stdout.write_all(bytes).await?;
                stdout.flush().await?;
            }
            Some((STDERR, bytes)) => {
                stderr.write_all(bytes).await?;
                stderr.flush().await?;
            }
            Some((ERROR, bytes)) if !bytes.is_empty() => {
                if streaming::has_status(&protocol) {
                    let status: serde_json::Value =
                        serde_json::from_slice(bytes).context("the stream's status")?;
                    match streaming::exit_code(&status) {
                        Some(exit) => code = exit,
                        None => bail!(
                            "{}",
                            status["message"].as_str().unwrap_or("the stream failed")
                        ),
                    }
                } else {
                    bail!("{}", String::from_utf8_lossy(bytes));
                }
            }
            _ => {}
        }
    }
    sender.abort();
    Ok(code)
}

/// Carries one local connection to `port` in the pod over a port-forward stream.
pub async fn forward(url: &str, port: u16, connection: tokio::net::TcpStream) -> Result<()> {
    let url = format!(
        "{url}{}port={port}",
        if url.contains('?') { '&' } else { '?' }
    );
    let (socket, protocol) = open(&url).await?;
    // Over v5 the local client's end of sending is passed on as a half-close (`[255, 0]`),
    // and the pod's answer still comes back; older protocols can only close.
    let half_closes = protocol == streaming::V5;
    let (mut sink, mut incoming) = socket.split();
    let (mut read, mut write) = connection.into_split();
    let upstream = tokio::spawn(async move {
        let mut buffer = vec![0u8; 32 * 1024];
        while let Ok(n) = read.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            if sink
                .send(Message::binary(streaming::frame(0, &buffer[..n])))
                .await
                .is_err()
            {
                break;
            }
        }
        if half_closes && sink.send(Message::binary(vec![255, 0])).await.is_ok() {
            // The pod's close ends the stream; the sink stays open until then.
            std::future::pending::<()>().await;
        }
        let _ = sink.close().await;
    });
    // The first frame on each channel is the port preamble, not data.
    let mut seen = [false; 2];
    while let Some(Ok(message)) = incoming.next().await {
        let Message::Binary(data) = message else {
            if matches!(message, Message::Close(_)) {
                break;
            }
            continue;
        };
        let Some((channel, bytes)) = streaming::parse(&data) else {
            continue;
        };
        let Some(first) = seen.get_mut(usize::from(channel)) else {
            continue;
        };
        if !*first {
            *first = true;
            continue;
        }
        if channel == 1 {
            bail!("{}", String::from_utf8_lossy(bytes));
        }
        if write.write_all(bytes).await.is_err() {
            break;
        }
    }
    upstream.abort();
    Ok(())
}
