//! Connection upgrades: recognising a WebSocket or SPDY upgrade request, answering it with
//! 101, opening the runtime's stream URL as a WebSocket, and relaying messages between two
//! WebSockets.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use super::{Body, HttpError, empty};

/// An upgraded connection, as the handler gets it.
pub(super) type Io = TokioIo<Upgraded>;

/// The runtime's end of a stream.
pub(super) type RuntimeSocket =
    WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The upgrade a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Upgrade {
    /// `Upgrade: websocket`, with the key and the offered subprotocols in order.
    WebSocket {
        key: String,
        protocols: Vec<String>,
    },
    /// `Upgrade: SPDY/3.1`, with the offered `X-Stream-Protocol-Version`s in order.
    Spdy {
        protocols: Vec<String>,
    },
    None,
}

/// Every value of a (possibly repeated) comma-separated header.
fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

pub(super) fn upgrade_of(headers: &HeaderMap) -> Upgrade {
    let connection = list(headers, header::CONNECTION.as_str());
    if !connection.iter().any(|c| c.eq_ignore_ascii_case("upgrade")) {
        return Upgrade::None;
    }
    let upgrade = list(headers, header::UPGRADE.as_str());
    if upgrade.iter().any(|u| u.eq_ignore_ascii_case("websocket")) {
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if key.is_empty() {
            return Upgrade::None;
        }
        return Upgrade::WebSocket {
            key,
            protocols: list(headers, header::SEC_WEBSOCKET_PROTOCOL.as_str()),
        };
    }
    if upgrade
        .iter()
        .any(|u| u.eq_ignore_ascii_case(cox_cri::spdy::UPGRADE))
    {
        return Upgrade::Spdy {
            protocols: list(headers, "x-stream-protocol-version"),
        };
    }
    Upgrade::None
}

/// The first of `supported` (the server's preference) that the client offered.
pub(super) fn negotiate<'a>(offered: &[String], supported: &[&'a str]) -> Option<&'a str> {
    supported
        .iter()
        .copied()
        .find(|s| offered.iter().any(|o| o == s))
}

/// A SPDY handshake that found no common protocol (upstream words it so, with 403).
pub(super) fn no_common_protocol(offered: &[String], supported: &[&str]) -> HttpError {
    HttpError::new(
        StatusCode::FORBIDDEN,
        format!(
            "unable to upgrade: unable to negotiate protocol: client supports {:?}, server supports {:?}",
            offered, supported
        ),
    )
}

/// 101 for a WebSocket upgrade, with the chosen subprotocol.
pub(super) fn websocket_switch(key: &str, protocol: Option<&str>) -> Response<Body> {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
}

/// 101 for a SPDY upgrade, echoing the chosen stream protocol.
pub(super) fn spdy_switch(protocol: &str) -> Response<Body> {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        header::UPGRADE,
        HeaderValue::from_static(cox_cri::spdy::UPGRADE),
    );
    if let Ok(value) = HeaderValue::from_str(protocol) {
        headers.insert("x-stream-protocol-version", value);
    }
    response
}

/// Runs `serve` on the connection once the 101 has gone out.
pub(super) fn on_upgrade<F, Fut>(request: &mut Request<Incoming>, serve: F)
where
    F: FnOnce(Io) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => serve(TokioIo::new(upgraded)).await,
            Err(error) => tracing::debug!(%error, "a connection upgrade failed"),
        }
    });
}

/// The server side of a WebSocket over an upgraded connection.
pub(super) async fn accept_websocket<S>(io: S) -> WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    WebSocketStream::from_raw_socket(io, Role::Server, None).await
}

/// Opens a runtime's stream URL (`http://...`) as a WebSocket offering `protocols`; returns the
/// socket and the protocol the runtime chose.
pub(super) async fn open_runtime(
    url: &str,
    protocols: &[&str],
) -> Result<(RuntimeSocket, Option<String>), HttpError> {
    let ws_url = match url.strip_prefix("http://") {
        Some(rest) => format!("ws://{rest}"),
        None => url.to_owned(),
    };
    let failed = |detail: String| {
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("error dialing backend: {detail}"),
        )
    };
    let mut request = ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| failed(e.to_string()))?;
    if !protocols.is_empty() {
        let offered =
            HeaderValue::from_str(&protocols.join(", ")).map_err(|e| failed(e.to_string()))?;
        request
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, offered);
    }
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let chosen = response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((socket, chosen))
}

/// Relays messages between the client's WebSocket and the runtime's until either closes;
/// pings are answered on each side by the socket itself, not carried across.
pub(super) async fn relay<C>(client: WebSocketStream<C>, runtime: RuntimeSocket)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let (mut to_client, mut from_client) = client.split();
    let (mut to_runtime, mut from_runtime) = runtime.split();
    // Reads the client until its close (or its end), also once the runtime is gone: leaving
    // its messages unread would make closing the connection reset it, and a reset loses what
    // the client had yet to read of the output.
    let upstream = async {
        let mut runtime_open = true;
        while let Some(Ok(message)) = from_client.next().await {
            let forwarded = match message {
                Message::Binary(_) => Some(message),
                // The Python client writes strings as text messages; upstream reads any
                // message as channel-prefixed bytes.
                Message::Text(text) => Some(Message::Binary(Bytes::from(
                    text.as_str().as_bytes().to_vec(),
                ))),
                Message::Close(_) => break,
                _ => None,
            };
            if let Some(message) = forwarded.filter(|_| runtime_open) {
                runtime_open = to_runtime.send(message).await.is_ok();
            }
        }
        let _ = to_runtime.close().await;
    };
    let downstream = async {
        // Clients read a close without a code (1005) as a failure: the stream ended normally
        // unless the runtime said otherwise.
        let mut close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        while let Some(Ok(message)) = from_runtime.next().await {
            let delivered = match message {
                Message::Binary(_) | Message::Text(_) => to_client.send(message).await.is_ok(),
                Message::Close(frame) => {
                    close = frame.unwrap_or(close);
                    break;
                }
                _ => true,
            };
            if !delivered {
                return;
            }
        }
        let _ = to_client.send(Message::Close(Some(close))).await;
        let _ = to_client.flush().await;
    };
    // The runtime's end ends the stream, once the client has answered the close (or not, in
    // time). A client that stops sending (its side closed, or a read error) may still be
    // reading: what the runtime has yet to send is delivered, and sending fails at once if
    // the client is gone.
    tokio::pin!(upstream, downstream);
    tokio::select! {
        () = &mut downstream => {
            let _ = tokio::time::timeout(CLOSE_WAIT, &mut upstream).await;
        }
        () = &mut upstream => downstream.await,
    }
}

/// How long an ended stream waits for the client's close in reply.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn upgrades_are_recognised() {
        let ws = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            (
                "sec-websocket-protocol",
                "v5.channel.k8s.io, v4.channel.k8s.io",
            ),
        ]);
        assert_eq!(
            upgrade_of(&ws),
            Upgrade::WebSocket {
                key: "dGhlIHNhbXBsZSBub25jZQ==".into(),
                protocols: vec!["v5.channel.k8s.io".into(), "v4.channel.k8s.io".into()],
            }
        );
        let spdy = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v4.channel.k8s.io"),
            ("x-stream-protocol-version", "v3.channel.k8s.io"),
        ]);
        let Upgrade::Spdy { protocols } = upgrade_of(&spdy) else {
            panic!("not SPDY");
        };
        assert_eq!(
            negotiate(
                &protocols,
                &[
                    "v5.channel.k8s.io",
                    "v3.channel.k8s.io",
                    "v4.channel.k8s.io"
                ]
            ),
            Some("v3.channel.k8s.io")
        );
        assert_eq!(
            upgrade_of(&headers(&[("upgrade", "websocket")])),
            Upgrade::None
        );
    }

    #[test]
    fn the_websocket_accept_key_is_rfc6455s() {
        let response = websocket_switch("dGhlIHNhbXBsZSBub25jZQ==", Some("v5.channel.k8s.io"));
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            response.headers()[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            response.headers()[header::SEC_WEBSOCKET_PROTOCOL],
            "v5.channel.k8s.io"
        );
    }
}
