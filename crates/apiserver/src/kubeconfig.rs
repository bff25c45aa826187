//! The admin kubeconfig (`--write-kubeconfig`, mode 0600): the cluster CA, the server URL and
//! the admin client certificate, inline.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;

use crate::tls::{ClusterCerts, KeyedCert};

/// The admin kubeconfig text for `server` (e.g. `https://127.0.0.1:6443`).
pub fn render(certs: &ClusterCerts, server: &str) -> String {
    render_for(certs, &certs.admin, server)
}

/// A kubeconfig for the holder of `client`.
pub fn render_for(certs: &ClusterCerts, client: &KeyedCert, server: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server}
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
        ca = b64(&certs.ca.cert_pem),
        cert = b64(&client.cert_pem),
        key = b64(&client.key_pem),
    )
}

/// Writes the admin kubeconfig to `path` with mode 0600, creating its directory.
pub fn write(certs: &ClusterCerts, server: &str, path: &Path) -> std::io::Result<()> {
    write_for(certs, &certs.admin, server, path)
}

/// Writes a kubeconfig for the holder of `client` to `path` with mode 0600.
pub fn write_for(
    certs: &ClusterCerts,
    client: &KeyedCert,
    server: &str,
    path: &Path,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(render_for(certs, client, server).as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
