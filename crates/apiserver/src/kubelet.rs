//! Calling a node's kubelet: HTTPS (HTTP/1.1, so that streams can upgrade) to the address and
//! port its Node reports, the kubelet's certificate verified against the cluster CA, the API
//! server's own client certificate presented. One connection per request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cox_api::status::ApiError;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::tls::ClusterCerts;

/// How long connecting to a kubelet may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The API server's client of kubelets.
#[derive(Debug)]
pub struct KubeletClient {
    certs: ClusterCerts,
    /// Made on first use: generating the client certificate takes a moment.
    config: Mutex<Option<Arc<rustls::ClientConfig>>>,
}

fn unreachable(host: &str, port: u16, detail: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!(
        "error dialing backend: dial tcp {host}:{port}: {detail}"
    ))
}

impl KubeletClient {
    pub fn new(certs: ClusterCerts) -> Self {
        Self {
            certs,
            config: Mutex::new(None),
        }
    }

    fn config(&self) -> Result<Arc<rustls::ClientConfig>, ApiError> {
        let mut config = self
            .config
            .lock()
            .map_err(|_| ApiError::internal("the kubelet client's configuration lock"))?;
        if let Some(config) = config.as_ref() {
            return Ok(config.clone());
        }
        let made = Arc::new(
            self.certs
                .kubelet_client_config()
                .map_err(|e| ApiError::internal(format!("the kubelet client: {e}")))?,
        );
        *config = Some(made.clone());
        Ok(made)
    }

    /// Sends `request` (its URI the path and query) to the kubelet at `host:port`; the
    /// connection supports upgrades.
    pub async fn send<B>(
        &self,
        host: &str,
        port: u16,
        mut request: Request<B>,
    ) -> Result<Response<Incoming>, ApiError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let connector = TlsConnector::from(self.config()?);
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| unreachable(host, port, format!("invalid host: {e}")))?;
        let connect = async {
            let tcp = TcpStream::connect((host, port)).await?;
            tcp.set_nodelay(true)?;
            connector.connect(name, tcp).await
        };
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| unreachable(host, port, "i/o timeout"))?
            .map_err(|e| unreachable(host, port, e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| unreachable(host, port, e))?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "a kubelet connection ended");
            }
        });
        if let Ok(value) = http::HeaderValue::from_str(&format!("{host}:{port}")) {
            request.headers_mut().insert(http::header::HOST, value);
        }
        sender
            .send_request(request)
            .await
            .map_err(|e| ApiError::internal(format!("the kubelet at {host}:{port}: {e}")))
    }
}
