//! `/exec/<namespace>/<pod>/<container>` and `/attach/...`: the runtime hands out a stream URL
//! (CRI `Exec` / `Attach`), and the client's upgraded connection is carried to it. A WebSocket
//! client (kubectl ≥ 1.30, `v5.channel.k8s.io` and older) is relayed message for message, the
//! runtime speaking the same channel protocol; a SPDY client (kubectl's fallback, and ≤ 1.29)
//! gets its streams (`error`, `stdin`, `stdout`, `stderr`, `resize`) translated to and from the
//! runtime's WebSocket channels.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cox_cri::spdy::Frame;
use cox_cri::streaming::{self, CLOSE, ERROR, RESIZE, STDERR, STDIN, STDOUT, TerminalSize};
use cox_cri::v1;
use futures::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::lookup::{Lookup, runtime_error};
use super::spdy::{self, Session};
use super::upgrade::{self, Upgrade};
use super::{Body, HttpError, Query};

/// How long a SPDY client has to open its streams (upstream's `streamCreationTimeout`).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Frames a SPDY client may send before all its streams are open (kept until they are).
const MAX_EARLY_FRAMES: usize = 64;

/// Exec or attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Exec,
    Attach,
}

/// The streams a request asks for (upstream's `remotecommand.Options`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Options {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    command: Vec<String>,
}

fn options(query: &Query) -> Result<Options, HttpError> {
    // The API server sends upstream's `input`/`output`/`error`; the longer names are accepted
    // too.
    let flag = |short: &str, long: &str| query.flag(short) || query.flag(long);
    let tty = flag("tty", "tty");
    let options = Options {
        stdin: flag("input", "stdin"),
        stdout: flag("output", "stdout"),
        // A terminal has no separate error output.
        stderr: flag("error", "stderr") && !tty,
        tty,
        command: query.all("command").to_vec(),
    };
    if !(options.stdin || options.stdout || options.stderr) {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    Ok(options)
}

/// The SPDY stream protocols served, most preferred first.
const SPDY_PROTOCOLS: &[&str] = streaming::PROTOCOLS;

pub(super) async fn exec(
    lookup: Arc<Lookup>,
    kind: Kind,
    namespace: &str,
    pod_name: &str,
    container: &str,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, HttpError> {
    let query = Query::parse(request.uri().query());
    let options = options(&query)?;
    let upgrade = upgrade::upgrade_of(request.headers());
    if upgrade == Upgrade::None {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "Upgrade request required",
        ));
    }
    let pod = lookup
        .pod(namespace, pod_name, "pod does not exist")
        .await?;
    let container_id = lookup.running_container(&pod, container).await?;
    let mut runtime = lookup.runtime().await?;
    let url = match kind {
        Kind::Exec => {
            runtime
                .exec(v1::ExecRequest {
                    container_id,
                    cmd: options.command.clone(),
                    tty: options.tty,
                    stdin: options.stdin,
                    stdout: options.stdout,
                    stderr: options.stderr,
                })
                .await
                .map_err(|s| runtime_error(&s))?
                .into_inner()
                .url
        }
        Kind::Attach => {
            runtime
                .attach(v1::AttachRequest {
                    container_id,
                    stdin: options.stdin,
                    tty: options.tty,
                    stdout: options.stdout,
                    stderr: options.stderr,
                })
                .await
                .map_err(|s| runtime_error(&s))?
                .into_inner()
                .url
        }
    };
    match upgrade {
        Upgrade::WebSocket { key, protocols } => {
            let offered: Vec<&str> = streaming::PROTOCOLS
                .iter()
                .copied()
                .filter(|p| protocols.iter().any(|o| o == p))
                .collect();
            // No subprotocol at all is the original `channel.k8s.io`.
            let to_runtime = if protocols.is_empty() {
                vec![streaming::V1]
            } else if offered.is_empty() {
                return Err(upgrade::no_common_protocol(
                    &protocols,
                    streaming::PROTOCOLS,
                ));
            } else {
                offered
            };
            let (runtime_socket, chosen) = upgrade::open_runtime(&url, &to_runtime).await?;
            let answer = if protocols.is_empty() { None } else { chosen };
            let response = upgrade::websocket_switch(&key, answer.as_deref());
            upgrade::on_upgrade(&mut request, move |io| async move {
                let client = upgrade::accept_websocket(io).await;
                upgrade::relay(client, runtime_socket).await;
            });
            Ok(response)
        }
        Upgrade::Spdy { protocols } => {
            let Some(protocol) = upgrade::negotiate(&protocols, SPDY_PROTOCOLS) else {
                return Err(upgrade::no_common_protocol(&protocols, SPDY_PROTOCOLS));
            };
            let response = upgrade::spdy_switch(protocol);
            upgrade::on_upgrade(&mut request, move |io| async move {
                let session = spdy::over_io(io);
                spdy_streams(session, protocol, &url, &options).await;
            });
            Ok(response)
        }
        Upgrade::None => Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "Upgrade request required",
        )),
    }
}

/// The SPDY streams of one exec or attach, by type.
#[derive(Debug, Default)]
struct Streams {
    by_type: HashMap<String, u32>,
}

impl Streams {
    fn id(&self, kind: &str) -> Option<u32> {
        self.by_type.get(kind).copied()
    }

    /// Whether every stream the options need is open (upstream's `waitForStreams`).
    fn complete(&self, options: &Options, protocol: &str) -> bool {
        let wanted = [
            ("error", protocol != streaming::V1),
            ("stdin", options.stdin),
            ("stdout", options.stdout),
            ("stderr", options.stderr),
            (
                "resize",
                options.tty && protocol != streaming::V1 && protocol != streaming::V2,
            ),
        ];
        wanted
            .iter()
            .all(|(kind, needed)| !needed || self.by_type.contains_key(*kind))
    }
}

/// Terminal sizes from a resize stream: JSON objects one after another.
#[derive(Debug, Default)]
struct Resizes {
    pending: Vec<u8>,
}

impl Resizes {
    fn push(&mut self, data: &[u8]) -> Vec<TerminalSize> {
        self.pending.extend_from_slice(data);
        let mut sizes = Vec::new();
        let mut consumed = 0;
        let mut decoder =
            serde_json::Deserializer::from_slice(&self.pending).into_iter::<TerminalSize>();
        while let Some(Ok(size)) = decoder.next() {
            sizes.push(size);
            consumed = decoder.byte_offset();
        }
        self.pending.drain(..consumed);
        sizes
    }
}

/// Runs an exec or attach for a SPDY client against the runtime's WebSocket.
async fn spdy_streams(mut session: Session, protocol: &'static str, url: &str, options: &Options) {
    let out = session.outgoing.clone();
    let mut streams = Streams::default();
    let mut early = Vec::new();
    let deadline = tokio::time::sleep(STREAM_CREATION_TIMEOUT);
    tokio::pin!(deadline);
    while !streams.complete(options, protocol) {
        tokio::select! {
            frame = session.incoming.recv() => match frame {
                Some(Frame::SynStream { stream, headers, .. }) => {
                    let _ = out.send(Frame::SynReply { stream, fin: false, headers: Vec::new() }).await;
                    if let Some(kind) = cox_cri::spdy::header(&headers, "streamtype") {
                        streams.by_type.insert(kind.to_owned(), stream);
                    }
                }
                Some(_) if early.len() >= MAX_EARLY_FRAMES => {
                    tracing::debug!("a SPDY client sent too much before opening its streams");
                    return;
                }
                Some(frame) => early.push(frame),
                None => return,
            },
            () = &mut deadline => {
                tracing::debug!("a SPDY client did not open its streams in time");
                return;
            }
        }
    }
    let status = match upgrade::open_runtime(url, &[streaming::V5]).await {
        Ok((socket, _)) => run_spdy(&mut session, &streams, early, socket).await,
        Err(error) => streaming::failure_status(&error.message),
    };
    finish(&out, &streams, protocol, &status).await;
}

/// Turns the client's SPDY frames into the runtime's channel messages.
#[derive(Debug)]
struct Translator<'a> {
    streams: &'a Streams,
    resizes: Resizes,
}

impl Translator<'_> {
    fn translate(&mut self, frame: Frame) -> Vec<Vec<u8>> {
        let Frame::Data { stream, fin, data } = frame else {
            return Vec::new();
        };
        if Some(stream) == self.streams.id("stdin") {
            let mut messages = Vec::new();
            if !data.is_empty() {
                messages.push(streaming::frame(STDIN, &data));
            }
            if fin {
                messages.push(vec![CLOSE, STDIN]);
            }
            messages
        } else if Some(stream) == self.streams.id("resize") {
            self.resizes
                .push(&data)
                .into_iter()
                .filter_map(|size| serde_json::to_vec(&size).ok())
                .map(|json| streaming::frame(RESIZE, &json))
                .collect()
        } else {
            Vec::new()
        }
    }
}

/// Carries the streams until the runtime ends; returns the final status.
async fn run_spdy(
    session: &mut Session,
    streams: &Streams,
    early: Vec<Frame>,
    socket: upgrade::RuntimeSocket,
) -> Value {
    let out = session.outgoing.clone();
    let (mut sink, mut from_runtime) = socket.split();
    let mut translator = Translator {
        streams,
        resizes: Resizes::default(),
    };
    let mut status = streaming::exit_status(0);
    let mut to_runtime: Vec<Vec<u8>> = early
        .into_iter()
        .flat_map(|frame| translator.translate(frame))
        .collect();
    loop {
        for message in to_runtime.drain(..) {
            if sink.send(Message::binary(message)).await.is_err() {
                break;
            }
        }
        tokio::select! {
            frame = session.incoming.recv() => match frame {
                Some(Frame::SynStream { stream, .. }) => {
                    let _ = out.send(Frame::SynReply { stream, fin: false, headers: Vec::new() }).await;
                }
                Some(frame) => to_runtime = translator.translate(frame),
                // The client is gone: end the runtime's stream.
                None => break,
            },
            message = from_runtime.next() => match message {
                Some(Ok(Message::Binary(data))) => {
                    let Some((channel, bytes)) = streaming::parse(&data) else {
                        continue;
                    };
                    let target = match channel {
                        STDOUT => streams.id("stdout"),
                        STDERR => streams.id("stderr"),
                        ERROR => {
                            if let Ok(value) = serde_json::from_slice(bytes) {
                                status = value;
                            }
                            None
                        }
                        _ => None,
                    };
                    if let Some(stream) = target
                        && !bytes.is_empty()
                        && out
                            .send(Frame::data(stream, Bytes::copy_from_slice(bytes), false))
                            .await
                            .is_err()
                    {
                        break;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = sink.close().await;
    status
}

/// Ends the output streams and reports the status on the error stream, as upstream's v4
/// server does: nothing on success, the `Status` otherwise (its message before v4).
async fn finish(
    out: &tokio::sync::mpsc::Sender<Frame>,
    streams: &Streams,
    protocol: &str,
    status: &Value,
) {
    for kind in ["stdout", "stderr"] {
        if let Some(stream) = streams.id(kind) {
            let _ = out.send(Frame::data(stream, Bytes::new(), true)).await;
        }
    }
    if let Some(stream) = streams.id("error") {
        if status["status"] != "Success" {
            let report = if streaming::has_status(protocol) {
                status.to_string().into_bytes()
            } else {
                status["message"]
                    .as_str()
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec()
            };
            let _ = out.send(Frame::data(stream, report, false)).await;
        }
        let _ = out.send(Frame::data(stream, Bytes::new(), true)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_need_a_stream_and_a_terminal_has_no_stderr() {
        let got = options(&Query::parse(Some(
            "command=sh&command=-c&input=1&output=1&error=1&tty=1",
        )))
        .unwrap();
        assert_eq!(
            got,
            Options {
                stdin: true,
                stdout: true,
                stderr: false,
                tty: true,
                command: vec!["sh".into(), "-c".into()],
            }
        );
        let error = options(&Query::parse(Some("command=ls"))).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(options(&Query::parse(Some("stdout=true"))).is_ok());
    }

    #[test]
    fn streams_are_complete_when_every_needed_one_is_open() {
        let options = Options {
            stdout: true,
            tty: true,
            ..Default::default()
        };
        let mut streams = Streams::default();
        streams.by_type.insert("error".into(), 1);
        streams.by_type.insert("stdout".into(), 3);
        assert!(!streams.complete(&options, streaming::V4));
        assert!(
            streams.complete(&options, streaming::V2),
            "v2 has no resize stream"
        );
        streams.by_type.insert("resize".into(), 5);
        assert!(streams.complete(&options, streaming::V4));
    }

    #[test]
    fn resize_streams_carry_json_objects_back_to_back() {
        let mut resizes = Resizes::default();
        assert_eq!(resizes.push(br#"{"Width":80,"Hei"#), vec![]);
        assert_eq!(
            resizes.push(b"ght\":24}\n{\"Width\":100,\"Height\":40}\n"),
            vec![
                TerminalSize {
                    width: 80,
                    height: 24
                },
                TerminalSize {
                    width: 100,
                    height: 40
                }
            ]
        );
        assert!(resizes.pending.iter().all(u8::is_ascii_whitespace));
    }
}
