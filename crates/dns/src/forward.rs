//! The forwarder: questions outside the cluster's zones go to the upstream resolvers, one
//! after the other until one answers, over the transport the client used.

use hickory_proto::op::{Message, MessageType};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream gets to answer before the next is tried.
pub(crate) const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The transport a query came in on, and so the one it is forwarded on: a UDP answer that
/// an upstream truncated is passed back truncated, and the client retries over TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("no upstream resolver is configured")]
    NoUpstreams,
    #[error("every upstream resolver failed; the last, {upstream}: {reason}")]
    AllFailed {
        upstream: SocketAddr,
        reason: AttemptError,
    },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AttemptError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {}s", UPSTREAM_TIMEOUT.as_secs())]
    Timeout,
    #[error("cannot encode the query: {0}")]
    Encode(#[from] hickory_proto::ProtoError),
}

/// An upstream's answer: the message, and its bytes as received but with the client's ID.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) message: Message,
    pub(crate) bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub(crate) struct Forwarder {
    upstreams: Arc<[SocketAddr]>,
    timeout: Duration,
}

impl Forwarder {
    pub(crate) fn new(upstreams: Vec<SocketAddr>) -> Self {
        Self {
            upstreams: upstreams.into(),
            timeout: UPSTREAM_TIMEOUT,
        }
    }

    pub(crate) fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// Asks the upstreams `request`'s question. Each attempt carries a fresh random ID (and,
    /// over UDP, comes from a fresh port), and only a response with that ID and the same
    /// question is taken, so a spoofed or stale packet is ignored.
    pub(crate) async fn exchange(
        &self,
        request: &Message,
        transport: Transport,
    ) -> Result<Reply, Error> {
        let mut last = None;
        for &upstream in self.upstreams.iter() {
            let attempt = self.attempt(request, upstream, transport);
            let result = match tokio::time::timeout(self.timeout, attempt).await {
                Ok(result) => result,
                Err(_) => Err(AttemptError::Timeout),
            };
            match result {
                Ok(reply) => return Ok(reply),
                Err(reason) => {
                    tracing::debug!(%upstream, %reason, "upstream resolver failed");
                    last = Some((upstream, reason));
                }
            }
        }
        match last {
            Some((upstream, reason)) => Err(Error::AllFailed { upstream, reason }),
            None => Err(Error::NoUpstreams),
        }
    }

    async fn attempt(
        &self,
        request: &Message,
        upstream: SocketAddr,
        transport: Transport,
    ) -> Result<Reply, AttemptError> {
        let mut query = request.clone();
        query.metadata.id = rand::random();
        let bytes = query.to_vec()?;
        match transport {
            Transport::Udp => {
                let local: SocketAddr = match upstream {
                    SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                    SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
                };
                let socket = UdpSocket::bind(local).await?;
                socket.connect(upstream).await?;
                socket.send(&bytes).await?;
                let mut buf = vec![0; usize::from(u16::MAX)];
                loop {
                    let len = socket.recv(&mut buf).await?;
                    if let Some(reply) = accept(&buf[..len], &query, request.metadata.id) {
                        return Ok(reply);
                    }
                }
            }
            Transport::Tcp => {
                let mut stream = TcpStream::connect(upstream).await?;
                let len = u16::try_from(bytes.len()).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "query too long")
                })?;
                let mut framed = Vec::with_capacity(bytes.len() + 2);
                framed.extend_from_slice(&len.to_be_bytes());
                framed.extend_from_slice(&bytes);
                stream.write_all(&framed).await?;
                loop {
                    let len = stream.read_u16().await?;
                    let mut buf = vec![0; usize::from(len)];
                    stream.read_exact(&mut buf).await?;
                    if let Some(reply) = accept(&buf, &query, request.metadata.id) {
                        return Ok(reply);
                    }
                }
            }
        }
    }
}

/// The reply in `bytes` if it answers `query` (same ID, a response, same question), with
/// the ID put back to the client's.
fn accept(bytes: &[u8], query: &Message, client_id: u16) -> Option<Reply> {
    let mut message = Message::from_vec(bytes).ok()?;
    if message.metadata.id != query.metadata.id
        || message.metadata.message_type != MessageType::Response
        || message.queries != query.queries
    {
        return None;
    }
    message.metadata.id = client_id;
    let mut bytes = bytes.to_vec();
    bytes
        .get_mut(..2)?
        .copy_from_slice(&client_id.to_be_bytes());
    Some(Reply { message, bytes })
}
