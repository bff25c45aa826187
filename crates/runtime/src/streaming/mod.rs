//! The streaming server: how CRI `Exec` and `PortForward` are carried out.
//!
//! As the CRI prescribes, those calls do not stream themselves: they answer with a URL on this
//! server, holding a single-use token that expires after a minute. The client (the kubelet, or
//! `cox crictl`) opens that URL as a WebSocket speaking the channel protocol of
//! `cox_cri::streaming`, and the stream runs there.

mod attach;
mod exec;
mod portforward;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

use crate::runtime::{Runtime, lock};

/// How long a URL handed out by `Exec` or `PortForward` stays valid.
const TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// How long a closed stream waits for the peer's close in reply.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// After our close was sent, reads the WebSocket until the peer's close (or its end, or
/// [`CLOSE_WAIT`]). Dropping a connection with unread data makes the kernel reset it, and a
/// reset throws away what the peer had not yet read of ours: the end of the output.
pub(super) async fn await_close<S, E>(incoming: &mut S)
where
    S: futures::Stream<Item = Result<tokio_tungstenite::tungstenite::Message, E>> + Unpin,
{
    use futures::StreamExt;
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(message)) = incoming.next().await {
            if message.is_close() {
                break;
            }
        }
    })
    .await;
}

/// A stream a client may open once.
#[derive(Debug, Clone)]
pub enum Pending {
    Exec {
        container_id: String,
        cmd: Vec<String>,
        tty: bool,
        stdin: bool,
    },
    Attach {
        container_id: String,
        stdin: bool,
    },
    PortForward {
        sandbox_id: String,
        ports: Vec<u16>,
    },
}

/// The server's address and its outstanding tokens.
#[derive(Debug)]
pub struct StreamServer {
    address: SocketAddr,
    pending: Mutex<HashMap<String, (Pending, Instant)>>,
}

impl StreamServer {
    /// Listens on `address` (port 0 picks one).
    pub async fn bind(address: SocketAddr) -> std::io::Result<(Arc<Self>, TcpListener)> {
        let listener = TcpListener::bind(address).await?;
        let server = StreamServer {
            address: listener.local_addr()?,
            pending: Mutex::new(HashMap::new()),
        };
        Ok((Arc::new(server), listener))
    }

    /// Registers a stream and returns the URL that opens it.
    pub fn url(&self, pending: Pending) -> String {
        let kind = match pending {
            Pending::Exec { .. } => "exec",
            Pending::Attach { .. } => "attach",
            Pending::PortForward { .. } => "portforward",
        };
        let token = crate::runtime::new_id();
        let mut map = lock(&self.pending);
        map.retain(|_, (_, created)| created.elapsed() < TOKEN_LIFETIME);
        map.insert(token.clone(), (pending, Instant::now()));
        format!("http://{}/{kind}/{token}", self.address)
    }

    /// Takes the stream a request path names, if its token is valid.
    fn take(&self, path: &str) -> Option<Pending> {
        let token = path.rsplit('/').next()?;
        let (pending, created) = lock(&self.pending).remove(token)?;
        (created.elapsed() < TOKEN_LIFETIME).then_some(pending)
    }

    /// Accepts streams until the listener fails.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, runtime: Arc<Runtime>) {
        loop {
            let (socket, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "streaming server accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let server = self.clone();
            let runtime = runtime.clone();
            tokio::spawn(async move {
                if let Err(e) = server.handle(socket, runtime).await {
                    tracing::debug!(error = %e, "stream ended with an error");
                }
            });
        }
    }

    // The handshake callback's error type is tungstenite's, large or not.
    #[allow(clippy::result_large_err)]
    async fn handle(&self, socket: TcpStream, runtime: Arc<Runtime>) -> anyhow::Result<()> {
        let _ = socket.set_nodelay(true);
        let mut chosen: Option<(Pending, &'static str, String)> = None;
        let callback =
            |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
                let offered = request
                    .headers()
                    .get("Sec-WebSocket-Protocol")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let Some(protocol) = cox_cri::streaming::negotiate(offered) else {
                    return Err(reject(
                        StatusCode::BAD_REQUEST,
                        "no supported channel protocol offered",
                    ));
                };
                let Some(pending) = self.take(request.uri().path()) else {
                    return Err(reject(StatusCode::NOT_FOUND, "unknown or expired stream"));
                };
                response
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
                let query = request.uri().query().unwrap_or_default().to_string();
                chosen = Some((pending, protocol, query));
                Ok(response)
            };
        let socket = tokio_tungstenite::accept_hdr_async(socket, callback).await?;
        let Some((pending, protocol, query)) = chosen else {
            return Ok(());
        };
        match pending {
            Pending::Exec {
                container_id,
                cmd,
                tty,
                stdin,
            } => exec::run(socket, protocol, &runtime, &container_id, &cmd, tty, stdin).await,
            Pending::Attach {
                container_id,
                stdin,
            } => attach::run(socket, protocol, &runtime, &container_id, stdin).await,
            Pending::PortForward { sandbox_id, ports } => {
                let ports = ports_from_query(&query).unwrap_or(ports);
                portforward::run(socket, protocol, &runtime, &sandbox_id, &ports).await
            }
        }
    }
}

fn reject(status: StatusCode, message: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(message.to_string()));
    *response.status_mut() = status;
    response
}

/// `?port=80&port=443`, as the kubelet's port-forward URLs carry them.
fn ports_from_query(query: &str) -> Option<Vec<u16>> {
    let ports: Vec<u16> = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("port="))
        .filter_map(|p| p.parse().ok())
        .collect();
    (!ports.is_empty()).then_some(ports)
}
