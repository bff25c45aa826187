//! The kubelet's own HTTPS API (port 10250 upstream), what the API server calls for `kubectl
//! logs`, `exec`, `attach` and `port-forward`, and what scrapers read `/metrics` from.
//! Clients present a certificate from the cluster CA or a bearer token (a TokenReview says
//! whose); the API server authorizes each request by a SubjectAccessReview on the Node's
//! subresource ([`auth`]).
//!
//! - `GET /healthz`
//! - `GET /metrics` ([`metrics`](crate::metrics): running pods and containers, pod start and
//!   sync durations, pods and containers started)
//! - `GET /containerLogs/<namespace>/<pod>/<container>` ([`logs`], read with [`cri_log`])
//! - `/exec/<namespace>/<pod>/<container>`, `/attach/...` ([`exec`])
//! - `/portForward/<namespace>/<pod>` ([`port_forward`], SPDY sessions in [`spdy`])
//!
//! Pods are read from the API server and their containers found in the runtime by the
//! kubelet's labels ([`lookup`]); streams are the runtime's, carried across ([`upgrade`]).

mod auth;
pub mod cri_log;
mod exec;
mod logs;
mod lookup;
mod metrics;
mod port_forward;
mod query;
mod spdy;
pub mod tls;
mod upgrade;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use lookup::Lookup;
use query::Query;
pub use tls::ServingCredentials;

type Body = BoxBody<Bytes, Infallible>;

/// What the server needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen (upstream: `0.0.0.0:10250`).
    pub address: SocketAddr,
    pub credentials: ServingCredentials,
    /// This node: only its pods are served.
    pub node_name: String,
    /// The CRI runtime's socket (`unix:///...`).
    pub runtime_endpoint: String,
    /// The figures `/metrics` serves, shared with the pod workers.
    pub metrics: Arc<crate::metrics::Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("listening on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// An error answered as upstream's kubelet answers it: a status and a plain-text message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn response(&self) -> Response<Body> {
        text(self.status, format!("{}\n", self.message))
    }
}

fn empty() -> Body {
    Empty::new().boxed()
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A streamed `text/plain` answer and the sender that feeds it; dropping the sender ends it.
fn streamed() -> (mpsc::Sender<Bytes>, Response<Body>) {
    let (sender, mut receiver) = mpsc::channel::<Bytes>(16);
    let frames = futures::stream::poll_fn(move |cx| {
        receiver
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| Ok::<_, Infallible>(Frame::data(chunk))))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    (sender, response)
}

/// Serves the kubelet API until `shutdown` completes.
pub async fn serve(
    client: kube::Client,
    config: ServerConfig,
    shutdown: impl Future,
) -> Result<(), ServeError> {
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(&config.credentials)?));
    let listener = TcpListener::bind(config.address)
        .await
        .map_err(|source| ServeError::Bind {
            address: config.address,
            source,
        })?;
    tracing::info!(address = %config.address, "kubelet API ready");
    let authorizer = Arc::new(auth::Auth::new(client.clone(), &config.node_name));
    let lookup = Arc::new(Lookup::new(
        client,
        config.node_name.clone(),
        config.runtime_endpoint.clone(),
    ));
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "kubelet API: accepting a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, lookup) = (acceptor.clone(), lookup.clone());
        let metrics = config.metrics.clone();
        let authorizer = authorizer.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(error) => {
                    tracing::debug!(%peer, %error, "kubelet API: TLS handshake failed");
                    return;
                }
            };
            let user = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(tls::user_of);
            let service = service_fn(move |request| {
                let (lookup, user, metrics) = (lookup.clone(), user.clone(), metrics.clone());
                let authorizer = authorizer.clone();
                async move {
                    Ok::<_, Infallible>(handle(lookup, metrics, &authorizer, user, request).await)
                }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades()
                .await
            {
                tracing::debug!(%peer, %error, "kubelet API: connection ended");
            }
        });
    }
}

async fn handle(
    lookup: Arc<Lookup>,
    figures: Arc<crate::metrics::Metrics>,
    authorizer: &auth::Auth,
    user: Option<(String, Vec<String>)>,
    request: Request<Incoming>,
) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let certificate = user.map(|(name, groups)| auth::User { name, groups });
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(user) = authorizer.authenticate(certificate, bearer).await else {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized\n".into());
    };
    let (verb, subresource) = auth::attributes(&method, &path);
    if !authorizer.authorize(&user, verb, subresource).await {
        return text(
            StatusCode::FORBIDDEN,
            format!(
                "Forbidden (user={}, verb={verb}, resource=nodes, subresource={subresource})\n",
                user.name
            ),
        );
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let result = match (&method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => Ok(text(StatusCode::OK, "ok".into())),
        (&Method::GET, ["metrics"]) => metrics::metrics(&lookup, &figures).await,
        (&Method::GET, ["containerLogs", namespace, pod, container]) => {
            let query = Query::parse(request.uri().query());
            logs::container_logs(lookup, namespace, pod, container, &query).await
        }
        (&Method::GET | &Method::POST, ["exec", namespace, pod, container])
        | (&Method::GET | &Method::POST, ["exec", namespace, pod, _, container]) => {
            let (namespace, pod, container) = (
                (*namespace).to_owned(),
                (*pod).to_owned(),
                (*container).to_owned(),
            );
            exec::exec(
                lookup,
                exec::Kind::Exec,
                &namespace,
                &pod,
                &container,
                request,
            )
            .await
        }
        (&Method::GET | &Method::POST, ["attach", namespace, pod, container])
        | (&Method::GET | &Method::POST, ["attach", namespace, pod, _, container]) => {
            let (namespace, pod, container) = (
                (*namespace).to_owned(),
                (*pod).to_owned(),
                (*container).to_owned(),
            );
            exec::exec(
                lookup,
                exec::Kind::Attach,
                &namespace,
                &pod,
                &container,
                request,
            )
            .await
        }
        (&Method::GET | &Method::POST, ["portForward", namespace, pod])
        | (&Method::GET | &Method::POST, ["portForward", namespace, pod, _]) => {
            let (namespace, pod) = ((*namespace).to_owned(), (*pod).to_owned());
            port_forward::port_forward(lookup, &namespace, &pod, request).await
        }
        _ => Err(HttpError::new(StatusCode::NOT_FOUND, "404 page not found")),
    };
    let response = result.unwrap_or_else(|error| error.response());
    tracing::debug!(%method, %path, code = response.status().as_u16(), "kubelet API request");
    response
}
