//! The kubelet API's TLS: its serving certificate (signed by the cluster CA), and client
//! certificates required and verified against the cluster CA. Who a client is comes from its
//! certificate: the common name is the user, each organization a group.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// PEM-encoded credentials of the kubelet's HTTPS server.
#[derive(Debug, Clone)]
pub struct ServingCredentials {
    /// The serving certificate (and any chain).
    pub cert_pem: String,
    pub key_pem: String,
    /// The CA that signs the clients' certificates (the cluster CA).
    pub client_ca_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading the kubelet's {what}: {detail}")]
    Pem { what: &'static str, detail: String },
    #[error("the kubelet's tls configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("the kubelet's client verifier: {0}")]
    Verifier(String),
}

fn certificates(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            detail: "no certificate found".into(),
        });
    }
    Ok(certs)
}

/// The server configuration: HTTP/1.1 only (streams upgrade); client certificates of the
/// cluster CA are verified when presented.
pub fn server_config(credentials: &ServingCredentials) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(&credentials.client_ca_pem, "client CA")? {
        roots.add(cert)?;
    }
    // A certificate is optional: clients without one may present a bearer token instead.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let chain = certificates(&credentials.cert_pem, "serving certificate")?;
    let key = PrivateKeyDer::from_pem_slice(credentials.key_pem.as_bytes()).map_err(|e| {
        TlsError::Pem {
            what: "serving key",
            detail: e.to_string(),
        }
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The user and groups a verified client certificate names.
pub(super) fn user_of(cert: &CertificateDer<'_>) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    let subject = cert.subject();
    let user = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect();
    Some((user, groups))
}
