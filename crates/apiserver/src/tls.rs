//! The cluster's certificates: a CA made on first start, the API server's serving certificate
//! and the admin client certificate, all kept under `<data-dir>/server/tls/` and reused on
//! later starts; and the rustls configuration that serves them and verifies client
//! certificates against the CA.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("generating {what}: {source}")]
    Generate {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("reading {path}: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
}

type Result<T> = std::result::Result<T, TlsError>;

/// What the serving certificate must be valid for.
#[derive(Debug, Clone)]
pub struct ServingNames {
    pub ips: Vec<IpAddr>,
    pub dns: Vec<String>,
}

impl ServingNames {
    /// Upstream's set: 127.0.0.1, the node IP, the first service IP, the hostname and the
    /// `kubernetes` service's names.
    pub fn standard(
        node_ip: IpAddr,
        service_ip: IpAddr,
        hostname: &str,
        cluster_domain: &str,
    ) -> Self {
        let mut ips = vec![IpAddr::from([127, 0, 0, 1]), node_ip, service_ip];
        ips.dedup();
        let dns = vec![
            "localhost".to_owned(),
            hostname.to_owned(),
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
            format!("kubernetes.default.svc.{cluster_domain}"),
        ];
        Self { ips, dns }
    }
}

/// A certificate and its key, as PEM.
#[derive(Debug, Clone)]
pub struct KeyedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The cluster's certificates.
#[derive(Debug, Clone)]
pub struct ClusterCerts {
    pub ca: KeyedCert,
    pub serving: KeyedCert,
    pub admin: KeyedCert,
    pub dir: PathBuf,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> TlsError {
    move |source| TlsError::Io { context, source }
}

fn generate(what: &str) -> impl FnOnce(rcgen::Error) -> TlsError + '_ {
    move |source| TlsError::Generate {
        what: what.to_owned(),
        source,
    }
}

pub(crate) fn write_private(path: &Path, contents: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("writing {}", path.display())))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(format!("writing {}", path.display())))
}

fn read_pair(dir: &Path, name: &str) -> Result<Option<KeyedCert>> {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    if !cert.exists() || !key.exists() {
        return Ok(None);
    }
    Ok(Some(KeyedCert {
        cert_pem: fs::read_to_string(&cert).map_err(io(format!("reading {}", cert.display())))?,
        key_pem: fs::read_to_string(&key).map_err(io(format!("reading {}", key.display())))?,
    }))
}

fn write_pair(dir: &Path, name: &str, pair: &KeyedCert) -> Result<()> {
    write_private(&dir.join(format!("{name}.key")), &pair.key_pem)?;
    write_private(&dir.join(format!("{name}.crt")), &pair.cert_pem)
}

fn validity(params: &mut CertificateParams, years: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365 * years);
}

impl ClusterCerts {
    /// Loads the certificates from `dir`, making whatever is missing. The CA, once made, is
    /// never replaced (every client trusts it); the serving certificate is remade when the
    /// names it must cover changed.
    pub fn load_or_create(dir: &Path, names: &ServingNames) -> Result<Self> {
        fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let ca = match read_pair(dir, "ca")? {
            Some(ca) => ca,
            None => {
                let ca = make_ca()?;
                write_pair(dir, "ca", &ca)?;
                ca
            }
        };
        let serving = match read_pair(dir, "serving")? {
            Some(serving) if covers(&serving.cert_pem, names) => serving,
            _ => {
                let serving = make_serving(&ca, names)?;
                write_pair(dir, "serving", &serving)?;
                serving
            }
        };
        let admin = match read_pair(dir, "admin")? {
            Some(admin) => admin,
            None => {
                let admin = make_client(&ca, "system:admin", &["system:masters"])?;
                write_pair(dir, "admin", &admin)?;
                admin
            }
        };
        Ok(Self {
            ca,
            serving,
            admin,
            dir: dir.to_owned(),
        })
    }

    /// A client certificate for `user` in `groups`, signed by the cluster CA.
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<KeyedCert> {
        make_client(&self.ca, user, groups)
    }

    /// A kubelet's serving certificate (`system:node:<node>`), signed by the cluster CA, for
    /// the node's addresses and names; the API server verifies it when it calls the kubelet.
    pub fn kubelet_serving_cert(&self, node: &str, names: &ServingNames) -> Result<KeyedCert> {
        make_serving_as(&self.ca, &format!("system:node:{node}"), names)
    }

    /// The API server's TLS client configuration for kubelets: their certificates verified
    /// against the cluster CA, and a client certificate of its own
    /// (`kube-apiserver-kubelet-client`, in `system:masters`).
    pub fn kubelet_client_config(&self) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs(&self.ca.cert_pem, &self.dir.join("ca.crt"))? {
            roots.add(cert)?;
        }
        let client = make_client(
            &self.ca,
            "kube-apiserver-kubelet-client",
            &["system:masters"],
        )?;
        let chain = certs(
            &client.cert_pem,
            Path::new("kube-apiserver-kubelet-client.crt"),
        )?;
        let key = PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).map_err(|e| {
            TlsError::Parse {
                path: PathBuf::from("kube-apiserver-kubelet-client.key"),
                detail: e.to_string(),
            }
        })?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The rustls configuration: our serving certificate, HTTP/2 and HTTP/1.1, and client
    /// certificates verified against the CA when offered (anonymous requests are let through
    /// to authentication, which decides).
    pub fn server_config(&self) -> Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs(&self.ca.cert_pem, &self.dir.join("ca.crt"))? {
            roots.add(cert)?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))?;
        let chain = certs(&self.serving.cert_pem, &self.dir.join("serving.crt"))?;
        let key = PrivateKeyDer::from_pem_slice(self.serving.key_pem.as_bytes()).map_err(|e| {
            TlsError::Parse {
                path: self.dir.join("serving.key"),
                detail: e.to_string(),
            }
        })?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn certs(pem: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Parse {
            path: path.to_owned(),
            detail: e.to_string(),
        })
}

fn make_ca() -> Result<KeyedCert> {
    let key = KeyPair::generate().map_err(generate("the cluster CA key"))?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "cox-ca");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, 10);
    let cert = params
        .self_signed(&key)
        .map_err(generate("the cluster CA"))?;
    Ok(KeyedCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn issuer(ca: &KeyedCert) -> Result<Issuer<'static, KeyPair>> {
    let key = KeyPair::from_pem(&ca.key_pem).map_err(generate("loading the CA key"))?;
    Issuer::from_ca_cert_pem(&ca.cert_pem, key).map_err(generate("loading the CA"))
}

fn make_serving(ca: &KeyedCert, names: &ServingNames) -> Result<KeyedCert> {
    make_serving_as(ca, "kube-apiserver", names)
}

fn make_serving_as(ca: &KeyedCert, common_name: &str, names: &ServingNames) -> Result<KeyedCert> {
    let key = KeyPair::generate().map_err(generate("the serving key"))?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.subject_alt_names = names
        .ips
        .iter()
        .map(|ip| SanType::IpAddress(*ip))
        .chain(
            names
                .dns
                .iter()
                .filter_map(|d| d.clone().try_into().ok().map(SanType::DnsName)),
        )
        .collect();
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut params, 1);
    let cert = params
        .signed_by(&key, &issuer(ca)?)
        .map_err(generate("the serving certificate"))?;
    Ok(KeyedCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn make_client(ca: &KeyedCert, user: &str, groups: &[&str]) -> Result<KeyedCert> {
    let key = KeyPair::generate().map_err(generate("a client key"))?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, user);
    for group in groups {
        name.push(DnType::OrganizationName, *group);
    }
    params.distinguished_name = name;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    validity(&mut params, 1);
    let cert = params
        .signed_by(&key, &issuer(ca)?)
        .map_err(generate("a client certificate"))?;
    Ok(KeyedCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// True when the certificate's names include every wanted one.
fn covers(cert_pem: &str, names: &ServingNames) -> bool {
    let Ok(der) = CertificateDer::from_pem_slice(cert_pem.as_bytes()) else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return false;
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    let mut ips = Vec::new();
    let mut dns = Vec::new();
    for name in &san.value.general_names {
        match name {
            x509_parser::extensions::GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => ips.push(IpAddr::from(
                    <[u8; 4]>::try_from(*bytes).unwrap_or_default(),
                )),
                16 => ips.push(IpAddr::from(
                    <[u8; 16]>::try_from(*bytes).unwrap_or_default(),
                )),
                _ => {}
            },
            x509_parser::extensions::GeneralName::DNSName(name) => dns.push(name.to_string()),
            _ => {}
        }
    }
    names.ips.iter().all(|ip| ips.contains(ip)) && names.dns.iter().all(|d| dns.contains(d))
}

/// The user a verified client certificate names: CN is the user, each O a group (as
/// upstream's x509 authenticator reads it).
pub fn user_of(cert: &CertificateDer<'_>) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    let subject = cert.subject();
    let user = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect();
    Some((user, groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ServingNames {
        ServingNames::standard(
            IpAddr::from([10, 0, 0, 5]),
            IpAddr::from([10, 43, 0, 1]),
            "node1",
            "cluster.local",
        )
    }

    #[test]
    fn certificates_are_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = ClusterCerts::load_or_create(dir.path(), &names()).unwrap();
        let again = ClusterCerts::load_or_create(dir.path(), &names()).unwrap();
        assert_eq!(first.ca.cert_pem, again.ca.cert_pem);
        assert_eq!(first.serving.cert_pem, again.serving.cert_pem);
        assert_eq!(first.admin.cert_pem, again.admin.cert_pem);
        assert!(first.server_config().is_ok());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(dir.path().join("ca.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn serving_certificate_covers_the_names_and_is_remade_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let first = ClusterCerts::load_or_create(dir.path(), &names()).unwrap();
        assert!(covers(&first.serving.cert_pem, &names()));
        let mut more = names();
        more.ips.push(IpAddr::from([192, 168, 1, 9]));
        assert!(!covers(&first.serving.cert_pem, &more));
        let second = ClusterCerts::load_or_create(dir.path(), &more).unwrap();
        assert_ne!(first.serving.cert_pem, second.serving.cert_pem);
        assert_eq!(first.ca.cert_pem, second.ca.cert_pem, "the CA stays");
    }

    #[test]
    fn admin_certificate_names_system_masters() {
        let dir = tempfile::tempdir().unwrap();
        let certs = ClusterCerts::load_or_create(dir.path(), &names()).unwrap();
        let der = CertificateDer::from_pem_slice(certs.admin.cert_pem.as_bytes()).unwrap();
        let (user, groups) = user_of(&der).unwrap();
        assert_eq!(user, "system:admin");
        assert_eq!(groups, ["system:masters"]);
    }
}
