//! Which servers a pull asks, and with what credentials and TLS settings: the registries
//! configuration in k3s's `registries.yaml` shape.
//!
//! ```yaml
//! mirrors:
//!   docker.io:                      # a registry host, or "*" for every registry without its own
//!     endpoint: ["http://127.0.0.1:5000", "https://mirror.example.com"]
//!     rewrite: {"^library/(.*)": "dockerhub/$1"}   # repository rewrites at these endpoints
//! configs:
//!   mirror.example.com:             # an endpoint host (or "*")
//!     auth: {username: u, password: p}            # or auth: base64(u:p), or identitytoken
//!     tls: {ca_file: /etc/ca.pem, insecure_skip_verify: false, cert_file: ..., key_file: ...}
//! ```
//!
//! A pull tries the mirror endpoints in order and then the registry itself (`https://<host>`,
//! with `docker.io` served by `registry-1.docker.io`), unless a mirror endpoint already is the
//! registry's own host: listing `http://127.0.0.1:5000` as the mirror of `127.0.0.1:5000` is how
//! a plain-HTTP registry is configured.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use super::reference::{DEFAULT_REGISTRY, Reference};
use super::store::ImageError;

/// The host that serves `docker.io`.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

/// The key of the mirror and config entries that apply to every registry without its own.
pub const WILDCARD: &str = "*";

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Registries {
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    #[serde(default)]
    pub configs: BTreeMap<String, HostConfig>,
}

/// The mirrors of one registry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Mirror {
    /// `http://host:port`, `https://host/prefix`, or `host:port` (https).
    #[serde(default)]
    pub endpoint: Vec<String>,
    /// Regular expression over the repository to its replacement (`$1` etc.), applied at the
    /// mirror endpoints only; the first pattern (in sorted order) that matches wins.
    #[serde(default)]
    pub rewrite: BTreeMap<String, String>,
}

/// Credentials and TLS settings for one endpoint host.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HostConfig {
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// Credentials as the file spells them: a user name and password, their base64 `auth`
/// (`user:password`), or an identity (OAuth2 refresh) token.
#[derive(Clone, Default, Deserialize)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default, alias = "identity_token")]
    pub identitytoken: Option<String>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field(
                "identitytoken",
                &self.identitytoken.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl AuthConfig {
    /// What these settings amount to, or why they make no sense.
    pub fn credentials(&self) -> Result<Option<Credentials>, String> {
        if let Some(token) = self.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken(token.clone())));
        }
        if let Some(encoded) = self.auth.as_ref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| format!("auth is not base64: {e}"))?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| "auth is not UTF-8 text".to_string())?;
            let Some((username, password)) = decoded.split_once(':') else {
                return Err("auth must encode user:password".to_string());
            };
            return Ok(Some(Credentials::Basic {
                username: username.to_string(),
                password: password.to_string(),
            }));
        }
        match (&self.username, &self.password) {
            (None, None) => Ok(None),
            (username, password) => Ok(Some(Credentials::Basic {
                username: username.clone().unwrap_or_default(),
                password: password.clone().unwrap_or_default(),
            })),
        }
    }
}

/// How to talk TLS to one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
pub struct TlsConfig {
    /// Extra root certificates (PEM), trusted besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain (PEM), with `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Accepts any server certificate: for tests and self-signed registries only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// How a pull proves who it is to a registry.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Credentials {
    /// A user name and password (or access token as the password): sent as basic auth to the
    /// registry or to its token service.
    Basic { username: String, password: String },
    /// An OAuth2 refresh token, exchanged at the registry's token service.
    IdentityToken(String),
    /// A bearer token to send to the registry as it is.
    RegistryToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            Credentials::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

/// One server to ask for an image, with everything needed to ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// `host` or `host:port`.
    pub host: String,
    /// The API root, ending in `/v2`.
    pub path: String,
    /// The repository at this endpoint (after any rewrite).
    pub repository: String,
    /// Whether this is another server than the registry the reference names. Credentials given
    /// with a pull go to the registry only; mirrors use their configured ones.
    pub mirror: bool,
    /// The credentials configured for this host.
    pub credentials: Option<Credentials>,
    pub tls: TlsConfig,
}

impl Endpoint {
    /// `https://host/v2/<repository>/<kind>/<object>`, e.g. kind `manifests` and object a tag.
    pub fn url(&self, kind: &str, object: &str) -> String {
        format!(
            "{}://{}{}/{}/{kind}/{object}",
            self.scheme, self.host, self.path, self.repository
        )
    }
}

impl Registries {
    /// Reads the configuration at `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Registries, ImageError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Registries::default()),
            Err(e) => {
                return Err(ImageError::Io(io::Error::new(
                    e.kind(),
                    format!("reading {}: {e}", path.display()),
                )));
            }
        };
        Registries::from_yaml(&text)
            .map_err(|e| ImageError::invalid(format!("{}: {e}", path.display())))
    }

    /// Parses and checks a configuration.
    pub fn from_yaml(text: &str) -> Result<Registries, String> {
        if text.trim().is_empty() {
            return Ok(Registries::default());
        }
        let registries: Registries =
            serde_yaml_ng::from_str(text).map_err(|e| format!("invalid registries config: {e}"))?;
        registries.check()?;
        Ok(registries)
    }

    /// Everything that can be wrong beyond the YAML's shape, found now rather than mid-pull.
    fn check(&self) -> Result<(), String> {
        for (registry, mirror) in &self.mirrors {
            for endpoint in &mirror.endpoint {
                parse_endpoint(endpoint)
                    .map_err(|e| format!("mirrors.{registry:?}: endpoint {endpoint:?}: {e}"))?;
            }
            for pattern in mirror.rewrite.keys() {
                regex::Regex::new(pattern)
                    .map_err(|e| format!("mirrors.{registry:?}: rewrite {pattern:?}: {e}"))?;
            }
        }
        for (host, config) in &self.configs {
            if let Some(auth) = &config.auth {
                auth.credentials()
                    .map_err(|e| format!("configs.{host:?}.auth: {e}"))?;
            }
            if let Some(tls) = &config.tls
                && tls.cert_file.is_some() != tls.key_file.is_some()
            {
                return Err(format!(
                    "configs.{host:?}.tls: cert_file and key_file go together"
                ));
            }
        }
        Ok(())
    }

    /// The settings for an endpoint host: its own entry, else the wildcard's.
    pub fn host_config(&self, host: &str) -> Option<&HostConfig> {
        self.configs
            .get(host)
            .or_else(|| self.configs.get(WILDCARD))
    }

    /// The TLS settings for `host`.
    pub fn tls_for(&self, host: &str) -> TlsConfig {
        self.host_config(host)
            .and_then(|c| c.tls.clone())
            .unwrap_or_default()
    }

    fn credentials_for(&self, host: &str) -> Option<Credentials> {
        let auth = self.host_config(host)?.auth.as_ref()?;
        auth.credentials().ok().flatten()
    }

    /// The servers to try for `reference`, in order: its mirrors (the registry's own entry, else
    /// the wildcard's), then the registry itself.
    pub fn endpoints(&self, reference: &Reference) -> Vec<Endpoint> {
        let registry = reference.registry.as_str();
        let own_host = if registry == DEFAULT_REGISTRY {
            DOCKER_HUB_HOST
        } else {
            registry
        };
        let mut endpoints: Vec<Endpoint> = Vec::new();
        if let Some(mirror) = self
            .mirrors
            .get(registry)
            .or_else(|| self.mirrors.get(WILDCARD))
        {
            let rewritten = rewrite(&mirror.rewrite, &reference.repository);
            for text in &mirror.endpoint {
                let Ok((scheme, host, path)) = parse_endpoint(text) else {
                    continue;
                };
                let is_registry = host == own_host || host == registry;
                let credentials = self.credentials_for(&host).or_else(|| {
                    is_registry
                        .then(|| self.credentials_for(registry))
                        .flatten()
                });
                let endpoint = Endpoint {
                    scheme,
                    tls: self.tls_for(&host),
                    host,
                    path,
                    repository: match is_registry {
                        true => reference.repository.clone(),
                        false => rewritten.clone(),
                    },
                    mirror: !is_registry,
                    credentials,
                };
                if !endpoints.contains(&endpoint) {
                    endpoints.push(endpoint);
                }
            }
        }
        if !endpoints.iter().any(|e| !e.mirror) {
            endpoints.push(Endpoint {
                scheme: Scheme::Https,
                host: own_host.to_string(),
                path: "/v2".to_string(),
                repository: reference.repository.clone(),
                mirror: false,
                credentials: self
                    .credentials_for(own_host)
                    .or_else(|| self.credentials_for(registry)),
                tls: match self.configs.get(own_host) {
                    Some(_) => self.tls_for(own_host),
                    None => self.tls_for(registry),
                },
            });
        }
        endpoints
    }
}

/// `repository` after the first rewrite rule that matches it.
fn rewrite(rules: &BTreeMap<String, String>, repository: &str) -> String {
    for (pattern, replacement) in rules {
        let Ok(regex) = regex::Regex::new(pattern) else {
            continue;
        };
        if regex.is_match(repository) {
            return regex.replace(repository, replacement.as_str()).into_owned();
        }
    }
    repository.to_string()
}

/// Splits `http://host:port/prefix` into scheme, host and API root (`/prefix/v2`); without a
/// scheme the endpoint is https.
fn parse_endpoint(text: &str) -> Result<(Scheme, String, String), String> {
    let (scheme, rest) = match text.split_once("://") {
        Some(("http", rest)) => (Scheme::Http, rest),
        Some(("https", rest)) => (Scheme::Https, rest),
        Some((other, _)) => return Err(format!("scheme {other:?} is not http or https")),
        None => (Scheme::Https, text),
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if host.is_empty() || host.contains(['?', '#', '@', ' ']) {
        return Err("no valid host".to_string());
    }
    if path.contains(['?', '#']) {
        return Err("a query or fragment has no place in an endpoint".to_string());
    }
    let path = if path.ends_with("/v2") {
        path.to_string()
    } else {
        format!("{path}/v2")
    };
    Ok((scheme, host.to_string(), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> Reference {
        Reference::parse(text).expect("valid reference")
    }

    fn urls(endpoints: &[Endpoint]) -> Vec<String> {
        endpoints.iter().map(|e| e.url("manifests", "1")).collect()
    }

    const CONFIG: &str = r#"
mirrors:
  docker.io:
    endpoint:
      - "http://127.0.0.1:5000"
      - "mirror.example.com/cache/"
      - "https://registry-1.docker.io"
    rewrite:
      "^library/(.*)$": "hub/$1"
  "127.0.0.1:5001":
    endpoint: ["http://127.0.0.1:5001"]
  "*":
    endpoint: ["https://catch-all.example.com:8443"]
configs:
  mirror.example.com:
    auth: {username: alice, password: secret}
    tls: {ca_file: /etc/mirror-ca.pem}
  "127.0.0.1:5001":
    auth: {auth: Ym9iOmh1bnRlcjI=}
  registry-1.docker.io:
    auth: {identitytoken: refresh-me}
  "*":
    tls: {insecure_skip_verify: true}
"#;

    #[test]
    fn parses_the_k3s_shape() {
        let registries = Registries::from_yaml(CONFIG).expect("valid config");
        assert_eq!(registries.mirrors.len(), 3);
        let auth = registries.configs["127.0.0.1:5001"]
            .auth
            .as_ref()
            .expect("auth");
        assert_eq!(
            auth.credentials(),
            Ok(Some(Credentials::Basic {
                username: "bob".into(),
                password: "hunter2".into()
            }))
        );
        assert!(
            !format!("{auth:?}").contains("Ym9i"),
            "secrets stay out of Debug"
        );
        let empty = Registries::from_yaml("  \n").expect("empty is fine");
        assert!(empty.mirrors.is_empty() && empty.configs.is_empty());
    }

    #[test]
    fn rejects_bad_configs_clearly() {
        let cases = [
            ("mirrors: [1, 2]", "invalid registries config"),
            ("mirrors: {a: {endpoint: [\"ftp://x\"]}}", "scheme \"ftp\""),
            ("mirrors: {a: {endpoint: [\"http://\"]}}", "no valid host"),
            ("mirrors: {a: {rewrite: {\"(\": x}}}", "rewrite \"(\""),
            ("configs: {a: {auth: {auth: \"!!\"}}}", "not base64"),
            ("configs: {a: {auth: {auth: \"Ym9i\"}}}", "user:password"),
            ("configs: {a: {tls: {cert_file: /c.pem}}}", "go together"),
        ];
        for (yaml, want) in cases {
            let error = Registries::from_yaml(yaml).expect_err(yaml);
            assert!(error.contains(want), "{yaml}: {error}");
        }
    }

    #[test]
    fn load_treats_a_missing_file_as_empty_and_names_a_bad_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = Registries::load(&dir.path().join("none.yaml")).expect("missing is empty");
        assert!(missing.mirrors.is_empty());
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "mirrors: [").expect("write");
        let error = Registries::load(&bad).expect_err("bad YAML").to_string();
        assert!(error.contains("bad.yaml") && error.contains("invalid registries config"));
    }

    #[test]
    fn orders_mirrors_before_the_registry() {
        let registries = Registries::from_yaml(CONFIG).expect("valid config");
        let cases: [(&str, &[&str]); 5] = [
            (
                "busybox:1.36",
                &[
                    "http://127.0.0.1:5000/v2/hub/busybox/manifests/1",
                    "https://mirror.example.com/cache/v2/hub/busybox/manifests/1",
                    // The registry itself never gets the mirrors' rewrite.
                    "https://registry-1.docker.io/v2/library/busybox/manifests/1",
                ],
            ),
            (
                "127.0.0.1:5001/app:v1",
                &["http://127.0.0.1:5001/v2/app/manifests/1"],
            ),
            (
                "quay.io/org/app:v1",
                &[
                    "https://catch-all.example.com:8443/v2/org/app/manifests/1",
                    "https://quay.io/v2/org/app/manifests/1",
                ],
            ),
            (
                "127.0.0.1:5001/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                &["http://127.0.0.1:5001/v2/app/manifests/1"],
            ),
            ("ghcr.io/x/y", &[]),
        ];
        for (image, want) in cases {
            let got = urls(&registries.endpoints(&reference(image)));
            if want.is_empty() {
                assert_eq!(
                    got.len(),
                    2,
                    "{image}: wildcard mirror then ghcr.io: {got:?}"
                );
            } else {
                assert_eq!(got, want, "{image}");
            }
        }
        let none = Registries::default().endpoints(&reference("busybox"));
        assert_eq!(
            urls(&none),
            ["https://registry-1.docker.io/v2/library/busybox/manifests/1"]
        );
        assert!(!none[0].mirror);
    }

    #[test]
    fn endpoints_carry_their_hosts_settings() {
        let registries = Registries::from_yaml(CONFIG).expect("valid config");
        let endpoints = registries.endpoints(&reference("busybox"));
        let [local, mirror, hub] = endpoints.as_slice() else {
            panic!("three endpoints: {endpoints:?}");
        };
        assert_eq!((local.scheme, local.mirror), (Scheme::Http, true));
        assert_eq!(local.credentials, None);
        assert!(
            local.tls.insecure_skip_verify,
            "the wildcard config applies"
        );
        assert_eq!(
            mirror.credentials,
            Some(Credentials::Basic {
                username: "alice".into(),
                password: "secret".into()
            })
        );
        assert_eq!(
            mirror.tls.ca_file.as_deref(),
            Some(Path::new("/etc/mirror-ca.pem"))
        );
        assert!(!mirror.tls.insecure_skip_verify);
        assert!(!hub.mirror);
        assert_eq!(
            hub.credentials,
            Some(Credentials::IdentityToken("refresh-me".into()))
        );
        let own = registries.endpoints(&reference("127.0.0.1:5001/app"));
        assert!(
            !own[0].mirror,
            "a registry listed as its own mirror is the registry"
        );
        assert!(matches!(
            own[0].credentials,
            Some(Credentials::Basic { .. })
        ));
    }
}
