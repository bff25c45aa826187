//! The `proxy` subresources of Services, Pods and Nodes: the request goes, its body streamed,
//! to a ready endpoint of the Service, to the Pod's IP, or to the Node's kubelet (with the API
//! server's client certificate, as for logs and exec), over HTTP/1.1 or HTTPS (the backend's
//! certificate unverified, as upstream's proxy transport leaves it), and the answer streams
//! back, redirects rewritten to stay under the proxy path; an upgrade request (a WebSocket) is
//! spliced to the backend once it switched protocols. One connection per request. What the
//! name, the endpoints and the paths mean is `cox_api::proxy`'s. Unlike upstream, links inside
//! HTML answers are not rewritten.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cox_api::proxy::{self, Location, ProxyName, Scheme};
use cox_api::registry::{self, Resource};
use cox_api::status::ApiError;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::http::{self as h, Body};
use crate::kubelet::KubeletClient;
use crate::request::{Query, ResourceRequest};
use crate::rest::Rest;

/// How long connecting to a backend may take (the dialer of upstream's proxy transport).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a backend's TLS handshake may take (upstream's transport defaults).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The methods forwarded (upstream's `proxyMethods`, and PATCH, which its discovery lists).
const METHODS: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// Headers about one connection, which a proxy does not pass on (Go's reverse proxy's list).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// CORS answers of a backend, which upstream drops: they would speak for the API server.
const CORS_HEADERS: &[&str] = &[
    "access-control-allow-credentials",
    "access-control-allow-headers",
    "access-control-allow-methods",
    "access-control-allow-origin",
];

/// The API server's client of proxied backends.
#[derive(Debug, Default)]
pub struct ProxyClient {
    /// Made on first HTTPS use.
    tls: OnceLock<Arc<rustls::ClientConfig>>,
}

/// Accepts whatever certificate the backend presents, as upstream's proxy transport does
/// (`InsecureSkipVerify`: backends are reached by IP, with certificates of their own making),
/// but still checks that the backend holds its key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl ProxyClient {
    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, ApiError> {
        if let Some(config) = self.tls.get() {
            return Ok(config.clone());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ApiError::internal(format!("the proxy's TLS configuration: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(self.tls.get_or_init(|| Arc::new(config)).clone())
    }

    /// An HTTP/1.1 connection to the backend, able to upgrade.
    async fn connect(&self, location: &Location) -> Result<SendRequest<Incoming>, ApiError> {
        let address = location.address;
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| proxy::unreachable(format!("dial tcp {address}: i/o timeout")))?
            .map_err(|e| proxy::unreachable(format!("dial tcp {address}: connect: {e}")))?;
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, %address, "setting TCP_NODELAY");
        }
        match location.scheme {
            Scheme::Http => handshake(TokioIo::new(tcp)).await,
            Scheme::Https => {
                let connector = TlsConnector::from(self.tls()?);
                let tls = tokio::time::timeout(
                    TLS_HANDSHAKE_TIMEOUT,
                    connector.connect(ServerName::from(address.ip()), tcp),
                )
                .await
                .map_err(|_| proxy::unreachable("net/http: TLS handshake timeout"))?
                .map_err(|e| proxy::unreachable(format!("tls: {e}")))?;
                handshake(TokioIo::new(tls)).await
            }
        }
    }
}

async fn handshake<T>(io: TokioIo<T>) -> Result<SendRequest<Incoming>, ApiError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(proxy::unreachable)?;
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%error, "a proxied connection ended");
        }
    });
    Ok(sender)
}

/// `services/<name>/proxy/...` and `pods/<name>/proxy/...`, any method.
pub async fn serve(
    rest: &Rest,
    client: &ProxyClient,
    kubelets: &KubeletClient,
    resource: &Resource,
    request: &ResourceRequest,
    peer: SocketAddr,
    mut http_request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let method = http_request.method().clone();
    if !METHODS.contains(&method) {
        return Err(ApiError::method_not_supported(
            resource.group,
            &format!("{}/proxy", resource.plural),
            method.as_str(),
        ));
    }
    let name = ProxyName::parse(&request.name, resource.singular)?;
    let namespace = request.namespace.as_deref().unwrap_or("default");
    let location = match resource.plural {
        "services" => service_backend(rest, namespace, &request.name, &name).await?,
        "nodes" => node_location(rest, &name).await?,
        _ => proxy::pod_location(&get(rest, "pods", namespace, &name.name).await?, &name)?,
    };
    let raw_path = http_request.uri().path().to_owned();
    let raw_query = http_request.uri().query().map(str::to_owned);
    let (prefix, subpath) = proxy::split_path(&raw_path, resource.plural, &request.name)
        .ok_or_else(ApiError::no_route)?;
    let path = proxy::backend_path(subpath);
    if path.is_empty() && matches!(method, Method::GET | Method::HEAD) {
        // Upstream's answer to a proxy path without its trailing slash.
        return Ok(redirect(&format!(
            "{raw_path}/{}",
            raw_query.map(|q| format!("?{q}")).unwrap_or_default()
        )));
    }
    let target = format!(
        "{}{}",
        if path.is_empty() { "/" } else { &path },
        raw_query.map(|q| format!("?{q}")).unwrap_or_default()
    );
    let upgrade = is_upgrade(http_request.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut http_request));
    let host = http_request
        .headers()
        .get(header::HOST)
        .cloned()
        .or_else(|| {
            let authority = http_request.uri().authority()?;
            HeaderValue::from_str(authority.as_str()).ok()
        });
    let backend_host = location.address.to_string();
    let (parts, body) = http_request.into_parts();
    let mut backend_request = Request::new(body);
    *backend_request.method_mut() = method;
    *backend_request.uri_mut() = target
        .parse()
        .map_err(|e| ApiError::bad_request(format!("the proxied path {target:?}: {e}")))?;
    *backend_request.headers_mut() = backend_headers(
        &parts.headers,
        upgrade,
        host.clone()
            .or_else(|| HeaderValue::from_str(&backend_host).ok()),
        peer,
        &proxy::forwarded_uri(prefix, &path),
    );
    let response = if resource.plural == "nodes" {
        // A kubelet wants the API server's client certificate, and its own is verified.
        let host = location.address.ip().to_string();
        kubelets
            .send(&host, location.address.port(), backend_request)
            .await?
    } else {
        let mut sender = client.connect(&location).await?;
        sender
            .send_request(backend_request)
            .await
            .map_err(proxy::unreachable)?
    };
    let request_host = host
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let relayed = |response| relay(response, &backend_host, &request_host, prefix);
    match client_upgrade {
        Some(from_client) => upgraded(from_client, response, relayed),
        None => Ok(relayed(response)),
    }
}

/// The backend of `nodes/<id>/proxy`: the node's kubelet, over HTTPS, at the port named in
/// the id or else the one the Node reports.
async fn node_location(rest: &Rest, name: &ProxyName) -> Result<Location, ApiError> {
    let node = get(rest, "nodes", "", &name.name).await?;
    let (host, port) = cox_api::pod_connect::kubelet_endpoint(&node)
        .ok_or_else(|| proxy::unreachable(format!("node {} has no address", name.name)))?;
    let port = match name.port.as_str() {
        "" => port,
        named => named
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid port {named:?} for a node")))?,
    };
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| proxy::unreachable(format!("node address {host:?} is not an IP")))?;
    Ok(Location {
        address: SocketAddr::new(ip, port),
        scheme: Scheme::Https,
    })
}

/// The backend of `services/<id>/proxy`: a ready endpoint, picked at random, of the requested
/// port among the Service's EndpointSlices or, without any, its Endpoints object, and only an
/// address that really is one of its Pod's IPs.
async fn service_backend(
    rest: &Rest,
    namespace: &str,
    id: &str,
    name: &ProxyName,
) -> Result<Location, ApiError> {
    let service = get(rest, "services", namespace, &name.name).await?;
    let port_name = proxy::service_port_name(&service, &name.port)?;
    let mut groups = proxy::endpoint_slice_groups(
        &endpoint_slices(rest, namespace, &name.name).await?,
        &port_name,
    );
    if groups.is_empty() {
        match get(rest, "endpoints", namespace, &name.name).await {
            Ok(endpoints) => groups = proxy::endpoints_groups(&endpoints, &port_name),
            Err(error) if error.code == 404 => {}
            Err(error) => return Err(error),
        }
    }
    if groups.is_empty() {
        return Err(proxy::no_endpoints(&name.name));
    }
    for endpoint in proxy::trial_order(&groups, |n| rand::random_range(0..n)) {
        let Some(pod_name) = endpoint.pod_in(namespace) else {
            tracing::debug!(ip = %endpoint.ip, service = %name.name, "an endpoint without a pod of the service's namespace is skipped");
            continue;
        };
        match get(rest, "pods", namespace, pod_name).await {
            Ok(pod) if proxy::pod_has_ip(&pod, &endpoint.ip) => {
                return endpoint.location(name.scheme);
            }
            Ok(_) => {
                tracing::debug!(ip = %endpoint.ip, pod = pod_name, "an endpoint that is not its pod's IP is skipped");
            }
            Err(error) => {
                tracing::debug!(ip = %endpoint.ip, pod = pod_name, %error, "an endpoint whose pod is unreadable is skipped");
            }
        }
    }
    Err(proxy::no_endpoints(id))
}

async fn get(rest: &Rest, resource: &str, namespace: &str, name: &str) -> Result<Value, ApiError> {
    rest.get_core(resource, namespace, name).await
}

/// The Service's EndpointSlices (`kubernetes.io/service-name=<name>`), read from the store so
/// that one just written is seen.
async fn endpoint_slices(
    rest: &Rest,
    namespace: &str,
    service: &str,
) -> Result<Vec<Value>, ApiError> {
    let slices = registry::find("discovery.k8s.io", "v1", "endpointslices")
        .ok_or_else(|| ApiError::internal("endpointslices are not registered"))?;
    let request = ResourceRequest {
        group: "discovery.k8s.io".into(),
        version: "v1".into(),
        namespace: Some(namespace.to_owned()),
        resource: "endpointslices".into(),
        verb: "list".into(),
        ..Default::default()
    };
    let query = Query::parse(Some(&format!(
        "labelSelector=kubernetes.io%2Fservice-name%3D{}",
        cox_api::pod_connect::encode(service)
    )));
    let mut list = rest.list(slices, &request, &query).await?;
    Ok(match list["items"].take() {
        Value::Array(items) => items,
        _ => Vec::new(),
    })
}

/// The headers the backend gets: the client's, less hop-by-hop ones and the client's
/// credentials (upstream's authentication and impersonation drop them too), with the Host the
/// client addressed and upstream's `X-Forwarded-For` and `X-Forwarded-Uri`.
fn backend_headers(
    client: &HeaderMap,
    upgrade: bool,
    host: Option<HeaderValue>,
    peer: SocketAddr,
    forwarded_uri: &str,
) -> HeaderMap {
    let mut headers = passed_on(client, upgrade);
    headers.remove(header::AUTHORIZATION);
    let impersonation: Vec<_> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("impersonate-"))
        .cloned()
        .collect();
    for name in impersonation {
        headers.remove(name);
    }
    if let Some(host) = host {
        headers.insert(header::HOST, host);
    }
    let prior: Vec<&str> = client
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let forwarded_for = match prior.as_slice() {
        [] => peer.ip().to_string(),
        _ => format!("{}, {}", prior.join(", "), peer.ip()),
    };
    for (name, value) in [
        ("x-forwarded-for", forwarded_for.as_str()),
        ("x-forwarded-uri", forwarded_uri),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    headers
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// The headers a proxy passes on: all but the hop-by-hop ones and those `Connection` names;
/// an upgrade keeps `Connection` and `Upgrade`, which ask the backend to switch.
fn passed_on(headers: &HeaderMap, upgrade: bool) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .collect();
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name_text = name.as_str();
        let switching = upgrade && matches!(name_text, "connection" | "upgrade");
        let dropped = HOP_BY_HOP.contains(&name_text) || named.iter().any(|n| n == name_text);
        if switching || !dropped {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

/// The backend's answer, its body streamed: hop-by-hop and CORS headers dropped, a redirect's
/// `Location` rewritten to stay under the proxy path.
fn relay(
    response: Response<Incoming>,
    backend_host: &str,
    request_host: &str,
    prefix: &str,
) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let mut headers = passed_on(&parts.headers, false);
    for name in CORS_HEADERS {
        headers.remove(*name);
    }
    if let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
        let rewritten = proxy::rewrite_location(location, backend_host, request_host, prefix);
        if let Ok(value) = HeaderValue::from_str(&rewritten) {
            headers.insert(header::LOCATION, value);
        }
    }
    let mut answer = Response::new(h::streamed(body));
    *answer.status_mut() = parts.status;
    *answer.headers_mut() = headers;
    answer
}

/// The answer to an upgrade request: on 101 the backend's switch, the connections spliced once
/// the client switched too; a refusal (4xx, 5xx) passed through; anything else an error, as
/// upstream's upgrade-aware proxy answers.
fn upgraded(
    from_client: hyper::upgrade::OnUpgrade,
    mut response: Response<Incoming>,
    relayed: impl FnOnce(Response<Incoming>) -> Response<Body>,
) -> Result<Response<Body>, ApiError> {
    let status = response.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let mut answer = Response::new(Empty::new().boxed());
        *answer.status_mut() = status;
        *answer.headers_mut() = response.headers().clone();
        h::splice_upgrades(
            from_client,
            hyper::upgrade::on(&mut response),
            "proxied backend",
        );
        return Ok(answer);
    }
    if status.as_u16() < 400 {
        return Err(ApiError::internal(format!(
            "invalid upgrade response: status code {}",
            status.as_u16()
        )));
    }
    Ok(relayed(response))
}

fn redirect(location: &str) -> Response<Body> {
    let mut answer = Response::new(Empty::new().boxed());
    *answer.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(value) = HeaderValue::from_str(location) {
        answer.headers_mut().insert(header::LOCATION, value);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-trace"),
            ("keep-alive", "timeout=5"),
            ("x-trace", "1"),
            ("transfer-encoding", "chunked"),
            ("accept", "text/html"),
            ("upgrade", "websocket"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        let kept = passed_on(&headers, false);
        let names: Vec<&str> = kept.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["accept"]);
        assert!(!is_upgrade(&headers));
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(is_upgrade(&headers));
        let kept = passed_on(&headers, true);
        let mut names: Vec<&str> = kept.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "connection", "upgrade", "x-trace"]);
    }

    #[test]
    fn the_backend_gets_no_credentials_and_learns_who_asked() {
        let mut client = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer secret"),
            ("impersonate-user", "someone"),
            ("impersonate-extra-scopes", "x"),
            ("x-forwarded-for", "192.0.2.1"),
            ("host", "127.0.0.1:6443"),
            ("accept", "*/*"),
        ] {
            client.append(name, HeaderValue::from_static(value));
        }
        let headers = backend_headers(
            &client,
            false,
            Some(HeaderValue::from_static("127.0.0.1:6443")),
            "10.0.0.7:5555".parse().unwrap(),
            "/api/v1/namespaces/d/pods/p/proxy/x",
        );
        let mut names: Vec<&str> = headers.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["accept", "host", "x-forwarded-for", "x-forwarded-uri"]
        );
        assert_eq!(headers["x-forwarded-for"], "192.0.2.1, 10.0.0.7");
        assert_eq!(
            headers["x-forwarded-uri"],
            "/api/v1/namespaces/d/pods/p/proxy/x"
        );
    }
}
