//! The server on loopback sockets: a hand-built zone, a fake upstream resolver in the test,
//! queries over UDP and TCP as a resolver sends them.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod common;

use common::{query, service, slice, zone};
use cox_dns::proto::op::{Edns, Message, MessageType, ResponseCode};
use cox_dns::proto::rr::rdata::A;
use cox_dns::proto::rr::{RData, Record, RecordType};
use cox_dns::{ClusterDomain, DnsConfig, Server, Zone};
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::time::timeout;

/// Longer than any answer takes, upstream timeouts included.
const PATIENCE: Duration = Duration::from_secs(10);

async fn start(zone: Zone, upstreams: Vec<SocketAddr>) -> (SocketAddr, watch::Sender<Arc<Zone>>) {
    let config = DnsConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        cluster_domain: "cluster.local".to_string(),
        upstreams,
    };
    let server = Server::bind(&config).await.unwrap();
    let addr = server.local_addrs()[0];
    let (zone_tx, zone_rx) = watch::channel(Arc::new(zone));
    tokio::spawn(server.serve(zone_rx, std::future::pending()));
    (addr, zone_tx)
}

/// A resolver that knows `example.test` (A 192.0.2.7) and `big.test` (100 A records, too many
/// for UDP: truncated there), and nothing else. UDP and TCP on the same port.
async fn fake_upstream() -> SocketAddr {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0; 65535];
        loop {
            let (len, peer) = udp.recv_from(&mut buf).await.unwrap();
            let reply = fake_answer(&buf[..len], true);
            udp.send_to(&reply, peer).await.unwrap();
        }
    });
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = tcp.accept().await.unwrap();
            tokio::spawn(async move {
                let len = stream.read_u16().await.unwrap();
                let mut packet = vec![0; usize::from(len)];
                stream.read_exact(&mut packet).await.unwrap();
                let reply = fake_answer(&packet, false);
                stream.write_u16(reply.len() as u16).await.unwrap();
                stream.write_all(&reply).await.unwrap();
            });
        }
    });
    addr
}

fn fake_answer(packet: &[u8], udp: bool) -> Vec<u8> {
    let request = Message::from_vec(packet).unwrap();
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.queries = request.queries.clone();
    let question = &request.queries[0];
    let a = |last: u8| {
        let data = RData::A(A(Ipv4Addr::new(192, 0, 2, last)));
        Record::from_rdata(question.name().clone(), 60, data)
    };
    match (question.name().to_ascii().as_str(), question.query_type()) {
        ("example.test.", RecordType::A) => response.answers.push(a(7)),
        ("big.test.", RecordType::A) if udp => response.metadata.truncation = true,
        ("big.test.", RecordType::A) => response.answers.extend((1..=100).map(a)),
        _ => response.metadata.response_code = ResponseCode::NXDomain,
    }
    response.to_vec().unwrap()
}

fn question(name: &str, qtype: RecordType) -> Message {
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(query(name, qtype));
    message
}

async fn ask_udp(server: SocketAddr, request: &Message) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server).await.unwrap();
    socket.send(&request.to_vec().unwrap()).await.unwrap();
    let response = receive_udp(&socket).await;
    assert_eq!(response.metadata.id, request.metadata.id);
    assert_eq!(response.metadata.message_type, MessageType::Response);
    assert_eq!(response.queries, request.queries);
    response
}

async fn receive_udp(socket: &UdpSocket) -> Message {
    let mut buf = vec![0; 65535];
    let len = timeout(PATIENCE, socket.recv(&mut buf))
        .await
        .expect("an answer in time")
        .unwrap();
    Message::from_vec(&buf[..len]).unwrap()
}

async fn ask_tcp(server: SocketAddr, request: &Message) -> Message {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let response = exchange_tcp(&mut stream, &request.to_vec().unwrap()).await;
    assert_eq!(response.metadata.id, request.metadata.id);
    assert_eq!(response.queries, request.queries);
    response
}

async fn exchange_tcp(stream: &mut TcpStream, packet: &[u8]) -> Message {
    stream.write_u16(packet.len() as u16).await.unwrap();
    stream.write_all(packet).await.unwrap();
    let len = timeout(PATIENCE, stream.read_u16())
        .await
        .expect("an answer in time")
        .unwrap();
    let mut buf = vec![0; usize::from(len)];
    stream.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn addresses(message: &Message) -> Vec<String> {
    let mut addresses: Vec<String> = message
        .answers
        .iter()
        .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
        .map(|r| r.data.to_string())
        .collect();
    addresses.sort();
    addresses
}

#[tokio::test]
async fn answers_cluster_names_over_udp_and_tcp() {
    let (server, _zone) = start(zone(), Vec::new()).await;
    for over_tcp in [false, true] {
        let ask = |request: Message| async move {
            match over_tcp {
                false => ask_udp(server, &request).await,
                true => ask_tcp(server, &request).await,
            }
        };
        let response = ask(question("web.default.svc.cluster.local.", RecordType::A)).await;
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert!(response.metadata.authoritative);
        assert!(response.metadata.recursion_available);
        assert!(response.metadata.recursion_desired);
        assert_eq!(addresses(&response), ["10.43.0.20"]);
        assert_eq!(response.answers[0].ttl, 5);

        let response = ask(question(
            "_pg._tcp.db.default.svc.cluster.local.",
            RecordType::SRV,
        ))
        .await;
        assert_eq!(response.answers.len(), 2);
        assert_eq!(response.additionals.len(), 2);

        let response = ask(question("20.0.43.10.in-addr.arpa.", RecordType::PTR)).await;
        assert_eq!(
            response.answers[0].data.to_string(),
            "web.default.svc.cluster.local."
        );

        let response = ask(question("nope.default.svc.cluster.local.", RecordType::A)).await;
        assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
        assert!(response.answers.is_empty());
        assert_eq!(response.authorities[0].record_type(), RecordType::SOA);
    }
}

#[tokio::test]
async fn forwards_other_names_upstream() {
    let upstream = fake_upstream().await;
    let (server, _zone) = start(zone(), vec![upstream]).await;
    let request = question("example.test.", RecordType::A);
    assert_eq!(addresses(&ask_udp(server, &request).await), ["192.0.2.7"]);
    assert_eq!(addresses(&ask_tcp(server, &request).await), ["192.0.2.7"]);
    let response = ask_udp(server, &question("unknown.test.", RecordType::A)).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    // A reverse name of no cluster address is not ours either.
    let response = ask_udp(
        server,
        &question("1.2.0.192.in-addr.arpa.", RecordType::PTR),
    )
    .await;
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    assert!(!response.metadata.authoritative);
}

#[tokio::test]
async fn external_names_are_resolved_through_the_upstream() {
    let upstream = fake_upstream().await;
    let (server, _zone) = start(zone(), vec![upstream]).await;
    let response = ask_udp(
        server,
        &question("ext.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert_eq!(response.answers[0].data.to_string(), "example.test.");
    assert_eq!(addresses(&response), ["192.0.2.7"]);
}

#[tokio::test]
async fn a_silent_upstream_is_skipped_after_its_timeout() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let upstream = fake_upstream().await;
    let (server, _zone) = start(zone(), vec![silent.local_addr().unwrap(), upstream]).await;
    let started = tokio::time::Instant::now();
    let response = ask_udp(server, &question("example.test.", RecordType::A)).await;
    assert_eq!(addresses(&response), ["192.0.2.7"]);
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn servfail_when_no_upstream_answers() {
    let closed = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    for upstreams in [vec![closed], Vec::new()] {
        let (server, _zone) = start(zone(), upstreams).await;
        let request = question("example.test.", RecordType::A);
        let response = ask_udp(server, &request).await;
        assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
        let response = ask_tcp(server, &request).await;
        assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
    }
}

#[tokio::test]
async fn large_udp_answers_are_truncated() {
    let domain = ClusterDomain::parse("cluster.local").unwrap();
    let endpoints: Vec<_> = (1..=60)
        .map(|i| json!({"addresses": [format!("10.42.1.{i}")]}))
        .collect();
    let services = [service("default", "many", json!({"clusterIP": "None"}))];
    let slices = [slice(
        "default",
        "many",
        "many-1",
        "IPv4",
        json!(endpoints),
        json!([]),
    )];
    let upstream = fake_upstream().await;
    let (server, _zone) = start(Zone::build(&domain, &services, &slices, 1), vec![upstream]).await;

    let plain = question("many.default.svc.cluster.local.", RecordType::A);
    let response = ask_udp(server, &plain).await;
    assert!(response.metadata.truncation);
    assert!(response.answers.is_empty());
    assert_eq!(ask_tcp(server, &plain).await.answers.len(), 60);

    // A client that takes more over UDP gets it all, and our EDNS back.
    let mut edns = plain.clone();
    edns.set_edns(Edns::new().set_max_payload(4096).clone());
    let response = ask_udp(server, &edns).await;
    assert!(!response.metadata.truncation);
    assert_eq!(response.answers.len(), 60);
    assert_eq!(response.edns.as_ref().map(Edns::max_payload), Some(1232));

    // An upstream's truncated UDP answer is passed back; over TCP it is whole.
    let big = question("big.test.", RecordType::A);
    assert!(ask_udp(server, &big).await.metadata.truncation);
    assert_eq!(ask_tcp(server, &big).await.answers.len(), 100);
}

#[tokio::test]
async fn bad_packets_do_not_stop_the_server() {
    let (server, _zone) = start(zone(), Vec::new()).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server).await.unwrap();

    // Too short for a header, and a response: dropped without an answer (the next thing
    // received is the answer to the good query after them).
    socket.send(&[0x12]).await.unwrap();
    let mut response = question("web.default.svc.cluster.local.", RecordType::A);
    response.metadata.message_type = MessageType::Response;
    socket.send(&response.to_vec().unwrap()).await.unwrap();
    // A header promising a question that is not there: FORMERR with its ID.
    let header = [0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    socket.send(&header).await.unwrap();
    let formerr = receive_udp(&socket).await;
    assert_eq!(formerr.metadata.id, 0xabcd);
    assert_eq!(formerr.metadata.response_code, ResponseCode::FormErr);
    // Two questions in one query: FORMERR too.
    let mut two = question("web.default.svc.cluster.local.", RecordType::A);
    two.add_query(query("db.default.svc.cluster.local.", RecordType::A));
    socket.send(&two.to_vec().unwrap()).await.unwrap();
    assert_eq!(
        receive_udp(&socket).await.metadata.response_code,
        ResponseCode::FormErr
    );

    let good = question("web.default.svc.cluster.local.", RecordType::A);
    socket.send(&good.to_vec().unwrap()).await.unwrap();
    let answer = receive_udp(&socket).await;
    assert_eq!(answer.metadata.id, good.metadata.id);
    assert_eq!(addresses(&answer), ["10.43.0.20"]);

    // Over TCP: garbage gets FORMERR and the connection goes on; a half-sent message and a
    // hang-up leave the server serving.
    let mut stream = TcpStream::connect(server).await.unwrap();
    let formerr = exchange_tcp(&mut stream, &header).await;
    assert_eq!(formerr.metadata.response_code, ResponseCode::FormErr);
    let answer = exchange_tcp(&mut stream, &good.to_vec().unwrap()).await;
    assert_eq!(addresses(&answer), ["10.43.0.20"]);
    let mut half = TcpStream::connect(server).await.unwrap();
    half.write_all(&[0, 40, 1, 2, 3]).await.unwrap();
    drop(half);
    assert_eq!(addresses(&ask_tcp(server, &good).await), ["10.43.0.20"]);
    assert_eq!(addresses(&ask_udp(server, &good).await), ["10.43.0.20"]);
}

#[tokio::test]
async fn answers_from_the_latest_zone() {
    let domain = ClusterDomain::parse("cluster.local").unwrap();
    let (server, zone_tx) = start(Zone::build(&domain, [], [], 1), Vec::new()).await;
    let request = question("web.default.svc.cluster.local.", RecordType::A);
    let response = ask_udp(server, &request).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NXDomain);
    zone_tx.send_replace(Arc::new(zone()));
    assert_eq!(addresses(&ask_udp(server, &request).await), ["10.43.0.20"]);
}

/// An API server that lists `common::objects()` and fails every watch (the watches retry
/// with back-off; the caches stay as listed).
async fn api_server(
    request: http::Request<kube::client::Body>,
) -> Result<http::Response<kube::client::Body>, std::convert::Infallible> {
    let (services, slices) = common::objects();
    let watch = request
        .uri()
        .query()
        .is_some_and(|q| q.contains("watch=true"));
    let list = |kind: &str, items: Vec<serde_json::Value>| json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "7"}, "items": items});
    let body = match (request.uri().path(), watch) {
        ("/api/v1/services", false) => list(
            "ServiceList",
            services
                .iter()
                .map(|s| serde_json::to_value(s).unwrap())
                .collect(),
        ),
        ("/apis/discovery.k8s.io/v1/endpointslices", false) => list(
            "EndpointSliceList",
            slices
                .iter()
                .map(|s| serde_json::to_value(s).unwrap())
                .collect(),
        ),
        _ => {
            let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": "no watching here", "reason": "InternalError", "code": 500});
            let response = http::Response::builder()
                .status(500)
                .body(serde_json::to_vec(&status).unwrap().into())
                .unwrap();
            return Ok(response);
        }
    };
    Ok(http::Response::new(
        serde_json::to_vec(&body).unwrap().into(),
    ))
}

#[tokio::test]
async fn serve_cluster_answers_from_the_api_servers_objects() {
    let config = DnsConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        cluster_domain: "cluster.local".to_string(),
        upstreams: Vec::new(),
    };
    let server = Server::bind(&config).await.unwrap();
    let addr = server.local_addrs()[0];
    let client = kube::Client::new(tower::service_fn(api_server), "default");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let domain = ClusterDomain::parse("cluster.local").unwrap();
    let serving = tokio::spawn(async move {
        let stop = async {
            let _ = stop_rx.await;
        };
        cox_dns::serve_cluster(server, client, &domain, stop).await
    });

    // SERVFAIL until the caches are filled, then the listed objects' records.
    let request = question("db.default.svc.cluster.local.", RecordType::A);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let response = loop {
        let response = ask_udp(addr, &request).await;
        if response.metadata.response_code != ResponseCode::ServFail {
            break response;
        }
        assert!(tokio::time::Instant::now() < deadline, "still SERVFAIL");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(addresses(&response), ["10.42.0.5", "10.42.0.6"]);
    let response = ask_tcp(
        addr,
        &question("web.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(addresses(&response), ["10.43.0.20"]);

    stop_tx.send(()).unwrap();
    timeout(PATIENCE, serving).await.unwrap().unwrap().unwrap();
}
