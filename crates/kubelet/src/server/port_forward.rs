//! `/portForward/<namespace>/<pod>`: connections to the pod's ports, through the runtime's
//! port-forward streams (CRI `PortForward`). Three client protocols:
//!
//! - SPDY (`Upgrade: SPDY/3.1`, `portforward.k8s.io`; kubectl ≤ 1.30 and its fallback), and the
//!   same SPDY inside a WebSocket (`SPDY/3.1+portforward.k8s.io`; kubectl ≥ 1.31): per local
//!   connection the client opens an `error` and a `data` stream with the same `requestid`
//!   and `port`; each pair gets its own runtime stream. The client's FIN on the data stream
//!   is a half-close, passed on to the pod; the pod's close ends the pair, after its data.
//! - WebSocket channels (`v4.channel.k8s.io`; kube-rs, the Python client): the ports are in the
//!   query, and the client's socket is relayed to the runtime's, which speaks the same framing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cox_cri::spdy::{self as frames, Frame};
use cox_cri::streaming::{self, CLOSE};
use cox_cri::v1;
use futures::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;

use super::lookup::{Lookup, runtime_error};
use super::spdy::{self, Session};
use super::upgrade::{self, Upgrade};
use super::{Body, HttpError, Query};

/// The SPDY stream protocol of port-forward.
const SPDY_PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol that carries SPDY.
const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// WebSocket subprotocols of the channel framing, most preferred first.
const CHANNEL_PROTOCOLS: &[&str] = &[streaming::V4, SPDY_PROTOCOL, streaming::V1];
/// How long the pod may go on answering a client that is done sending, when the runtime's
/// stream cannot carry the half-close to it (before v5): upstream's runtimes wait as long.
const ANSWER_GRACE: Duration = Duration::from_secs(1);

/// Ports from `port=80,443` (repeatable).
fn ports(query: &Query) -> Result<Vec<u16>, HttpError> {
    query
        .all("port")
        .iter()
        .flat_map(|p| p.split(','))
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.trim()
                .parse::<u16>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    HttpError::new(
                        StatusCode::BAD_REQUEST,
                        format!("unable to parse {p:?} as a port"),
                    )
                })
        })
        .collect()
}

pub(super) async fn port_forward(
    lookup: Arc<Lookup>,
    namespace: &str,
    pod_name: &str,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, HttpError> {
    let query = Query::parse(request.uri().query());
    let ports = ports(&query)?;
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
    let sandbox = lookup.sandbox(&pod).await?;
    match upgrade {
        Upgrade::WebSocket { key, protocols } if protocols.iter().any(|p| p == TUNNEL_PROTOCOL) => {
            let response = upgrade::websocket_switch(&key, Some(TUNNEL_PROTOCOL));
            upgrade::on_upgrade(&mut request, move |io| async move {
                let socket = upgrade::accept_websocket(io).await;
                serve_spdy(spdy::over_websocket(socket), lookup, sandbox).await;
            });
            Ok(response)
        }
        Upgrade::WebSocket { key, protocols } => {
            if ports.is_empty() {
                return Err(HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "query parameter \"port\" is required",
                ));
            }
            let answer = if protocols.is_empty() {
                None
            } else {
                Some(
                    upgrade::negotiate(&protocols, CHANNEL_PROTOCOLS).ok_or_else(|| {
                        upgrade::no_common_protocol(&protocols, CHANNEL_PROTOCOLS)
                    })?,
                )
            };
            let url = runtime_url(&lookup, &sandbox, &ports).await?;
            let (runtime_socket, _) = upgrade::open_runtime(&url, streaming::PROTOCOLS).await?;
            let response = upgrade::websocket_switch(&key, answer);
            upgrade::on_upgrade(&mut request, move |io| async move {
                let client = upgrade::accept_websocket(io).await;
                upgrade::relay(client, runtime_socket).await;
            });
            Ok(response)
        }
        Upgrade::Spdy { protocols } => {
            if !protocols.iter().any(|p| p == SPDY_PROTOCOL) {
                return Err(upgrade::no_common_protocol(&protocols, &[SPDY_PROTOCOL]));
            }
            let response = upgrade::spdy_switch(SPDY_PROTOCOL);
            upgrade::on_upgrade(&mut request, move |io| async move {
                serve_spdy(spdy::over_io(io), lookup, sandbox).await;
            });
            Ok(response)
        }
        Upgrade::None => Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "Upgrade request required",
        )),
    }
}

async fn runtime_url(lookup: &Lookup, sandbox: &str, ports: &[u16]) -> Result<String, HttpError> {
    Ok(lookup
        .runtime()
        .await?
        .port_forward(v1::PortForwardRequest {
            pod_sandbox_id: sandbox.to_owned(),
            port: ports.iter().map(|p| i32::from(*p)).collect(),
        })
        .await
        .map_err(|s| runtime_error(&s))?
        .into_inner()
        .url)
}

/// One local connection's streams, as they arrive.
#[derive(Debug, Default)]
struct Pair {
    error: Option<u32>,
    data: Option<u32>,
    port: u16,
}

/// What a forwarder gets of its client's data stream.
#[derive(Debug)]
struct Inbound {
    /// The client's data, in order; dropped at the client's FIN.
    data: Option<mpsc::Sender<Bytes>>,
    /// Told when the client resets the stream, or the connection ends: the forwarder stops.
    /// The forwarder holds the other reference while it runs.
    reset: Arc<Notify>,
}

/// Serves a SPDY port-forward connection: pairs the client's streams and starts a forwarder
/// for each pair.
async fn serve_spdy(mut session: Session, lookup: Arc<Lookup>, sandbox: String) {
    let out = session.outgoing.clone();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut forwarders: HashMap<u32, Inbound> = HashMap::new();
    while let Some(frame) = session.incoming.recv().await {
        match frame {
            Frame::SynStream {
                stream, headers, ..
            } => {
                let _ = out
                    .send(Frame::SynReply {
                        stream,
                        fin: false,
                        headers: Vec::new(),
                    })
                    .await;
                let port = frames::header(&headers, "port").and_then(|p| p.parse::<u16>().ok());
                let (Some(port), Some(kind)) = (port, frames::header(&headers, "streamtype"))
                else {
                    let _ = out
                        .send(Frame::RstStream {
                            stream,
                            status: frames::PROTOCOL_ERROR,
                        })
                        .await;
                    continue;
                };
                let request = frames::header(&headers, "requestid")
                    .map_or_else(|| stream.to_string(), str::to_owned);
                let pair = pairs.entry(request.clone()).or_default();
                pair.port = port;
                match kind {
                    "error" => pair.error = Some(stream),
                    "data" => pair.data = Some(stream),
                    _ => {}
                }
                if let Pair {
                    error: Some(error),
                    data: Some(data),
                    port,
                } = *pair
                {
                    pairs.remove(&request);
                    forwarders.retain(|_, forwarder| Arc::strong_count(&forwarder.reset) > 1);
                    let (sender, receiver) = mpsc::channel(16);
                    let reset = Arc::new(Notify::new());
                    forwarders.insert(
                        data,
                        Inbound {
                            data: Some(sender),
                            reset: reset.clone(),
                        },
                    );
                    let forwarder = Forwarder {
                        port,
                        data,
                        error,
                        out: out.clone(),
                    };
                    let (lookup, sandbox) = (lookup.clone(), sandbox.clone());
                    tokio::spawn(async move {
                        forwarder.run(&lookup, &sandbox, receiver, &reset).await;
                    });
                }
            }
            Frame::Data { stream, fin, data } => {
                let Some(forwarder) = forwarders.get_mut(&stream) else {
                    continue;
                };
                if let Some(sender) = &forwarder.data
                    && !data.is_empty()
                    && sender.send(data).await.is_err()
                {
                    forwarder.data = None;
                }
                if fin {
                    // A half-close: the forwarder passes it on to the pod and goes on.
                    forwarder.data = None;
                }
            }
            Frame::RstStream { stream, .. } => {
                if let Some(forwarder) = forwarders.remove(&stream) {
                    forwarder.reset.notify_one();
                }
            }
            Frame::GoAway { .. } => break,
            _ => {}
        }
    }
    for forwarder in forwarders.values() {
        forwarder.reset.notify_one();
    }
}

/// One local connection carried to one runtime port-forward stream.
#[derive(Debug)]
struct Forwarder {
    port: u16,
    data: u32,
    error: u32,
    out: mpsc::Sender<Frame>,
}

impl Forwarder {
    async fn run(
        self,
        lookup: &Lookup,
        sandbox: &str,
        from_client: mpsc::Receiver<Bytes>,
        reset: &Notify,
    ) {
        let failure = tokio::select! {
            carried = self.carry(lookup, sandbox, from_client) => match carried {
                Ok(message) => message,
                Err(error) => error.message,
            },
            () = reset.notified() => String::new(),
        };
        if !failure.is_empty() {
            let _ = self.out.send(Frame::data(self.error, failure, false)).await;
        }
        let _ = self
            .out
            .send(Frame::data(self.data, Bytes::new(), true))
            .await;
        let _ = self
            .out
            .send(Frame::data(self.error, Bytes::new(), true))
            .await;
    }

    /// Relays both ways until the runtime ends the stream, each way on its own so that neither
    /// waits for the other; returns what the runtime reported on the error channel. The
    /// client's end of sending goes to the pod as a half-close (v5), or leaves the pod
    /// [`ANSWER_GRACE`] to finish its answer.
    async fn carry(
        &self,
        lookup: &Lookup,
        sandbox: &str,
        mut from_client: mpsc::Receiver<Bytes>,
    ) -> Result<String, HttpError> {
        let url = runtime_url(lookup, sandbox, &[self.port]).await?;
        let (socket, protocol) = upgrade::open_runtime(&url, streaming::PROTOCOLS).await?;
        let half_closes = protocol.as_deref() == Some(streaming::V5);
        let (mut sink, mut from_runtime) = socket.split();
        let to_pod = async {
            while let Some(data) = from_client.recv().await {
                let frame = streaming::frame(0, &data);
                if sink.send(Message::binary(frame)).await.is_err() {
                    // The runtime is ending the stream, which `from_pod` sees through; the
                    // client's data goes nowhere meanwhile.
                    while from_client.recv().await.is_some() {}
                    std::future::pending::<()>().await;
                }
            }
            if half_closes && sink.send(Message::binary(vec![CLOSE, 0])).await.is_ok() {
                // The pod's close ends the stream.
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(ANSWER_GRACE).await;
        };
        let from_pod = async {
            // The first message on each channel is the port number, not data.
            let mut seen = [false; 2];
            while let Some(Ok(message)) = from_runtime.next().await {
                let bytes = match message {
                    Message::Binary(bytes) => bytes,
                    Message::Close(_) => break,
                    _ => continue,
                };
                let Some((channel, data)) = streaming::parse(&bytes) else {
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
                    // The runtime could not reach the port: this connection is over.
                    return String::from_utf8_lossy(data).into_owned();
                }
                let frame = Frame::data(self.data, Bytes::copy_from_slice(data), false);
                if self.out.send(frame).await.is_err() {
                    break;
                }
            }
            String::new()
        };
        let failure = tokio::select! {
            failure = from_pod => failure,
            () = to_pod => String::new(),
        };
        let _ = sink.close().await;
        Ok(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_query() {
        assert_eq!(
            ports(&Query::parse(Some("port=80%2C443&port=8080"))).unwrap(),
            vec![80, 443, 8080]
        );
        assert_eq!(ports(&Query::parse(None)).unwrap(), Vec::<u16>::new());
        assert_eq!(
            ports(&Query::parse(Some("port=http"))).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
