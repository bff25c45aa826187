//! Serving: a UDP socket and a TCP listener (same port) per configured address; each query
//! is answered from the current zone or handed to the forwarder. Bad packets get FORMERR
//! or are dropped; nothing a client sends can stop the server.

use crate::forward::{Forwarder, Transport};
use crate::zone::{Answer, Response, Zone};
use crate::{DnsConfig, Error};
use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::Name;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The UDP payload size the server offers in EDNS and the most it sends over UDP, whatever
/// larger size a client offers (the DNS flag day 2020 value, safe from fragmentation).
const EDNS_PAYLOAD: u16 = 1232;
/// Largest UDP datagram read; longer queries arrive cut and get FORMERR.
const UDP_RECEIVE_BUFFER: usize = 4096;
/// Queries waiting for an upstream, per UDP socket; more are dropped (clients retry).
const MAX_UDP_UPSTREAM: usize = 256;
/// Open TCP connections per listener; more are closed at once.
const MAX_TCP_CONNECTIONS: usize = 256;
/// A TCP connection with no next query for this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The sockets of a DNS server, bound but not serving yet.
#[derive(Debug)]
pub struct Server {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
    forwarder: Forwarder,
}

impl Server {
    /// Binds UDP and then TCP on each of `config.listen` (port 0 picks one port for both).
    /// Upstreams that are one of these addresses are left out, so the server never forwards
    /// to itself.
    pub async fn bind(config: &DnsConfig) -> Result<Self, Error> {
        if config.listen.is_empty() {
            return Err(Error::NoListenAddress);
        }
        let (mut udp, mut tcp, mut bound) = (Vec::new(), Vec::new(), Vec::new());
        for &addr in &config.listen {
            let bind_error = |transport, source| Error::Bind {
                addr,
                transport,
                source,
            };
            let socket = UdpSocket::bind(addr)
                .await
                .map_err(|e| bind_error("udp", e))?;
            let local = socket.local_addr().map_err(|e| bind_error("udp", e))?;
            let listener = TcpListener::bind(local)
                .await
                .map_err(|e| bind_error("tcp", e))?;
            udp.push(socket);
            tcp.push(listener);
            bound.push(local);
        }
        let upstreams = config
            .upstreams
            .iter()
            .copied()
            .filter(|upstream| !bound.contains(upstream) && !config.listen.contains(upstream))
            .collect();
        Ok(Self {
            udp,
            tcp,
            forwarder: Forwarder::new(upstreams),
        })
    }

    /// The addresses bound, each for UDP and TCP alike.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Serves until `stop` resolves, answering from whichever zone `zone` holds at the time
    /// of each query.
    pub async fn serve(self, zone: watch::Receiver<Arc<Zone>>, stop: impl Future<Output = ()>) {
        tracing::info!(
            listen = ?self.local_addrs(),
            upstreams = ?self.forwarder.upstreams(),
            "cluster DNS serving"
        );
        let handler = Arc::new(Handler {
            zone,
            forwarder: self.forwarder,
        });
        let mut tasks = JoinSet::new();
        for socket in self.udp {
            tasks.spawn(serve_udp(Arc::new(socket), handler.clone()));
        }
        for listener in self.tcp {
            tasks.spawn(serve_tcp(listener, handler.clone()));
        }
        stop.await;
        tasks.shutdown().await;
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, handler: Arc<Handler>) {
    let mut buf = vec![0; UDP_RECEIVE_BUFFER];
    let mut upstream = JoinSet::new();
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buf) => received,
            Some(_) = upstream.join_next() => continue,
        };
        let (len, peer) = match received {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(%error, "udp receive failed");
                continue;
            }
        };
        match handler.step(&buf[..len], Transport::Udp) {
            Step::Reply(bytes) => send_udp(&socket, &bytes, peer).await,
            Step::Drop => {}
            Step::Upstream(job) if upstream.len() < MAX_UDP_UPSTREAM => {
                let (socket, handler) = (socket.clone(), handler.clone());
                upstream.spawn(async move {
                    if let Some(bytes) = handler.upstream(job, Transport::Udp).await {
                        send_udp(&socket, &bytes, peer).await;
                    }
                });
            }
            Step::Upstream(_) => tracing::debug!(%peer, "too many queries upstream; dropped"),
        }
    }
}

async fn send_udp(socket: &UdpSocket, bytes: &[u8], peer: SocketAddr) {
    if let Err(error) = socket.send_to(bytes, peer).await {
        tracing::debug!(%peer, %error, "udp send failed");
    }
}

async fn serve_tcp(listener: TcpListener, handler: Arc<Handler>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
        };
        match accepted {
            Ok((stream, _)) if connections.len() < MAX_TCP_CONNECTIONS => {
                connections.spawn(serve_connection(stream, handler.clone()));
            }
            Ok((_, peer)) => tracing::debug!(%peer, "too many tcp connections; closed"),
            Err(error) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(%error, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// DNS over TCP: length-prefixed messages, answered in order, until the client closes,
/// idles, or sends something that gets no answer.
async fn serve_connection(mut stream: TcpStream, handler: Arc<Handler>) {
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, stream.read_u16()).await else {
            return;
        };
        let mut packet = vec![0; usize::from(len)];
        let Ok(Ok(_)) = tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut packet)).await else {
            return;
        };
        let reply = match handler.step(&packet, Transport::Tcp) {
            Step::Reply(bytes) => bytes,
            Step::Upstream(job) => match handler.upstream(job, Transport::Tcp).await {
                Some(bytes) => bytes,
                None => return,
            },
            Step::Drop => return,
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        if !matches!(
            tokio::time::timeout(TCP_IDLE, stream.write_all(&framed)).await,
            Ok(Ok(()))
        ) {
            return;
        }
    }
}

struct Handler {
    zone: watch::Receiver<Arc<Zone>>,
    forwarder: Forwarder,
}

enum Step {
    Reply(Vec<u8>),
    Upstream(Box<Upstream>),
    Drop,
}

/// A query that needs an upstream resolver.
enum Upstream {
    /// Not ours: forwarded as it is.
    Forward(Message),
    /// Ours, a CNAME out of the cluster domain: its target resolved upstream.
    Chase {
        request: Message,
        response: Box<Response>,
        target: Name,
    },
}

impl Handler {
    /// What to do with one packet, as far as it can be done without waiting.
    fn step(&self, packet: &[u8], transport: Transport) -> Step {
        let request = match Message::from_vec(packet) {
            Ok(request) => request,
            Err(_) => return format_error(packet).map_or(Step::Drop, Step::Reply),
        };
        if request.metadata.message_type != MessageType::Query {
            return Step::Drop;
        }
        if request.metadata.op_code != OpCode::Query {
            return self.reply(&request, error_response(ResponseCode::NotImp), transport);
        }
        let [query] = request.queries.as_slice() else {
            return self.reply(&request, error_response(ResponseCode::FormErr), transport);
        };
        let zone = self.zone.borrow().clone();
        match zone.answer(query) {
            Answer::Forward => Step::Upstream(Box::new(Upstream::Forward(request))),
            Answer::Local(mut response) => match response.chase.take() {
                Some(target) => Step::Upstream(Box::new(Upstream::Chase {
                    request,
                    response: Box::new(response),
                    target,
                })),
                None => self.reply(&request, response, transport),
            },
        }
    }

    fn reply(&self, request: &Message, response: Response, transport: Transport) -> Step {
        encode(local_message(request, response), request, transport).map_or(Step::Drop, Step::Reply)
    }

    /// Finishes a query with the upstreams' help; SERVFAIL when none answers.
    async fn upstream(&self, job: Box<Upstream>, transport: Transport) -> Option<Vec<u8>> {
        match *job {
            Upstream::Forward(request) => {
                match self.forwarder.exchange(&request, transport).await {
                    Ok(reply) if reply.bytes.len() <= size_limit(&request, transport) => {
                        Some(reply.bytes)
                    }
                    Ok(reply) => encode(reply.message, &request, transport),
                    Err(error) => {
                        tracing::debug!(%error, query = ?request.queries, "forwarding failed");
                        let response = error_response(ResponseCode::ServFail);
                        encode(local_message(&request, response), &request, transport)
                    }
                }
            }
            Upstream::Chase {
                request,
                mut response,
                target,
            } => {
                let qtype = request.queries.first().map(Query::query_type)?;
                let mut query = Message::query();
                query.metadata.recursion_desired = true;
                query.add_query(Query::query(target, qtype));
                query.set_edns(advertised_edns());
                match self.forwarder.exchange(&query, transport).await {
                    Ok(reply) if reply.message.metadata.response_code == ResponseCode::NoError => {
                        response.answers.extend(reply.message.answers);
                    }
                    // The CNAME alone is still a true answer.
                    Ok(_) | Err(_) => {}
                }
                encode(local_message(&request, *response), &request, transport)
            }
        }
    }
}

fn error_response(code: ResponseCode) -> Response {
    Response {
        code,
        authoritative: false,
        answers: Vec::new(),
        authorities: Vec::new(),
        additionals: Vec::new(),
        chase: None,
    }
}

fn local_message(request: &Message, response: Response) -> Message {
    let mut message = Message::response(request.metadata.id, request.metadata.op_code);
    message.metadata = Metadata::response_from_request(&request.metadata);
    message.metadata.authoritative = response.authoritative;
    message.metadata.recursion_available = true;
    message.metadata.response_code = response.code;
    message.queries = request.queries.clone();
    message.answers = response.answers;
    message.authorities = response.authorities;
    message.additionals = response.additionals;
    if request.edns.is_some() {
        message.set_edns(advertised_edns());
    }
    message
}

fn advertised_edns() -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    edns
}

/// The most bytes an answer to `request` may take: 512 over UDP, or the client's EDNS size
/// (at most ours); a TCP message's limit.
fn size_limit(request: &Message, transport: Transport) -> usize {
    match transport {
        Transport::Udp => usize::from(request.max_payload().min(EDNS_PAYLOAD)),
        Transport::Tcp => usize::from(u16::MAX),
    }
}

/// `message` in wire format within the size limit: without the additional section if that
/// is enough, else truncated to header and question with the TC bit (the client retries over
/// TCP). `None` only if not even that encodes.
fn encode(mut message: Message, request: &Message, transport: Transport) -> Option<Vec<u8>> {
    let limit = size_limit(request, transport);
    match message.to_vec() {
        Ok(bytes) if bytes.len() <= limit => return Some(bytes),
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, "cannot encode a response");
            let failure = local_message(request, error_response(ResponseCode::ServFail));
            return failure.to_vec().ok();
        }
    }
    message.additionals.clear();
    if let Ok(bytes) = message.to_vec()
        && bytes.len() <= limit
    {
        return Some(bytes);
    }
    message.truncate().to_vec().ok()
}

/// FORMERR for a packet that does not parse but has a query's header, echoing its ID,
/// opcode and RD bit; `None` (drop it) for anything shorter or a response.
fn format_error(packet: &[u8]) -> Option<Vec<u8>> {
    let header = packet.get(..12)?;
    let flags = header[2];
    if flags & 0x80 != 0 {
        return None;
    }
    let mut reply = vec![0; 12];
    reply[..2].copy_from_slice(&header[..2]);
    // QR, the request's opcode and RD; RA; RCODE 1 (FORMERR); no records.
    reply[2] = 0x80 | (flags & 0x79);
    reply[3] = 0x80 | 0x01;
    Some(reply)
}
