//! Registry credentials for a pod's image pulls, from the Secrets its `imagePullSecrets` name
//! (types `kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg`), matched to an image
//! as upstream's credential keyring does: the key's host (with `*` globs per dot-separated part)
//! and port must be the image's, and its path must prefix the image's repository. The most
//! specific keys come first; the kubelet tries each until a pull succeeds.

use std::collections::BTreeMap;

use cox_cri::v1;
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

/// The names Docker Hub goes by; a key for any of them serves every Docker Hub image.
const DOCKER_HUB: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// One registry key of a pull secret and its credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub key: String,
    pub auth: v1::AuthConfig,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The credentials a pull secret holds; an error says what is wrong with it.
pub fn parse(secret: &Secret) -> Result<Vec<Credential>, String> {
    let data = secret.data.as_ref();
    let field = |name: &str| data.and_then(|d| d.get(name)).map(|b| b.0.as_slice());
    let (entries, what) = match secret.type_.as_deref() {
        Some("kubernetes.io/dockerconfigjson") => {
            let raw = field(".dockerconfigjson").ok_or("no .dockerconfigjson key")?;
            let config: Value = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
            (config.get("auths").cloned(), ".dockerconfigjson")
        }
        Some("kubernetes.io/dockercfg") => {
            let raw = field(".dockercfg").ok_or("no .dockercfg key")?;
            (
                Some(serde_json::from_slice(raw).map_err(|e| e.to_string())?),
                ".dockercfg",
            )
        }
        other => return Err(format!("type {other:?} is not a registry credential")),
    };
    let Some(Value::Object(entries)) = entries else {
        return Err(format!("{what} holds no registry entries"));
    };
    let text = |entry: &Value, name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(entries
        .iter()
        .map(|(key, entry)| Credential {
            key: key.clone(),
            auth: v1::AuthConfig {
                username: text(entry, "username"),
                password: text(entry, "password"),
                auth: text(entry, "auth"),
                server_address: key.clone(),
                identity_token: text(entry, "identitytoken"),
                registry_token: text(entry, "registrytoken"),
            },
        })
        .collect())
}

/// An image's registry host (with port) and repository path, by Docker's rules: the first
/// component names a registry when it has a dot or a colon or is `localhost`.
pub fn registry_of(image: &str) -> (String, String) {
    let name = image.split('@').next().unwrap_or(image);
    // A tag is a colon after the last slash.
    let name = match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    };
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        Some(_) => ("docker.io".to_string(), name.to_string()),
        None => ("docker.io".to_string(), format!("library/{name}")),
    }
}

/// Whether `pattern` matches `text`, with `*` for any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

/// Whether a secret's registry key serves the image at `host`/`path`.
fn matches(key: &str, host: &str, path: &str) -> bool {
    let key = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let (key_host, key_path) = key.split_once('/').unwrap_or((key, ""));
    if DOCKER_HUB.contains(&key_host) {
        // Docker Hub keys carry an API path (`/v1/`), not a repository prefix.
        return DOCKER_HUB.contains(&host);
    }
    let split = |h: &str| -> (String, String) {
        match h.rsplit_once(':') {
            Some((name, port)) => (name.to_string(), port.to_string()),
            None => (h.to_string(), String::new()),
        }
    };
    let ((key_name, key_port), (name, port)) = (split(key_host), split(host));
    let key_parts: Vec<&str> = key_name.split('.').collect();
    let parts: Vec<&str> = name.split('.').collect();
    let host_matches = key_port == port
        && key_parts.len() == parts.len()
        && key_parts.iter().zip(&parts).all(|(k, p)| glob(k, p));
    let key_path = key_path.trim_end_matches('/');
    host_matches
        && (key_path.is_empty() || path == key_path || path.starts_with(&format!("{key_path}/")))
}

/// The credentials that serve `image`, most specific key first.
pub fn for_image(credentials: &[Credential], image: &str) -> Vec<v1::AuthConfig> {
    let (host, path) = registry_of(image);
    // Longer keys are more specific; a BTreeMap keeps the first credential per key.
    let mut found: BTreeMap<(std::cmp::Reverse<usize>, String), v1::AuthConfig> = BTreeMap::new();
    for credential in credentials {
        if matches(&credential.key, &host, &path) {
            found
                .entry((
                    std::cmp::Reverse(credential.key.len()),
                    credential.key.clone(),
                ))
                .or_insert_with(|| credential.auth.clone());
        }
    }
    found.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(type_: &str, key: &str, json: &str) -> Secret {
        Secret {
            type_: Some(type_.into()),
            data: Some(BTreeMap::from([(
                key.to_string(),
                ByteString(json.as_bytes().to_vec()),
            )])),
            ..Default::default()
        }
    }

    #[test]
    fn parses_both_secret_types() {
        let json = secret(
            "kubernetes.io/dockerconfigjson",
            ".dockerconfigjson",
            r#"{"auths": {"reg.example.com:5000": {"username": "u", "password": "p", "auth": "dTpw"}}}"#,
        );
        let parsed = parse(&json).expect("parses");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].key, "reg.example.com:5000");
        assert_eq!(parsed[0].auth.username, "u");
        assert_eq!(parsed[0].auth.password, "p");
        assert_eq!(parsed[0].auth.auth, "dTpw");

        let cfg = secret(
            "kubernetes.io/dockercfg",
            ".dockercfg",
            r#"{"https://index.docker.io/v1/": {"identitytoken": "tok"}}"#,
        );
        assert_eq!(parse(&cfg).expect("parses")[0].auth.identity_token, "tok");

        assert!(parse(&secret("Opaque", "x", "{}")).is_err());
        assert!(
            parse(&secret(
                "kubernetes.io/dockerconfigjson",
                ".dockerconfigjson",
                "["
            ))
            .is_err()
        );
        assert!(parse(&secret("kubernetes.io/dockerconfigjson", "other", "{}")).is_err());
    }

    #[test]
    fn images_name_their_registry() {
        let cases = [
            ("busybox", ("docker.io", "library/busybox")),
            ("busybox:1.36", ("docker.io", "library/busybox")),
            ("team/app@sha256:abc", ("docker.io", "team/app")),
            ("127.0.0.1:5001/team/app:v1", ("127.0.0.1:5001", "team/app")),
            ("localhost/app", ("localhost", "app")),
            ("reg.example.com/a/b/c:tag", ("reg.example.com", "a/b/c")),
        ];
        for (image, (host, path)) in cases {
            assert_eq!(
                registry_of(image),
                (host.to_string(), path.to_string()),
                "{image}"
            );
        }
    }

    #[test]
    fn keys_match_by_host_glob_port_and_path_prefix() {
        let yes = [
            ("reg.example.com", "reg.example.com", "a/b"),
            ("https://reg.example.com/", "reg.example.com", "a/b"),
            ("*.example.com", "reg.example.com", "a"),
            ("reg.example.com:5000", "reg.example.com:5000", "a"),
            ("reg.example.com/a", "reg.example.com", "a/b"),
            (
                "https://index.docker.io/v1/",
                "docker.io",
                "library/busybox",
            ),
            ("docker.io", "docker.io", "team/app"),
        ];
        for (key, host, path) in yes {
            assert!(matches(key, host, path), "{key} should match {host}/{path}");
        }
        let no = [
            ("reg.example.com", "other.example.com", "a"),
            ("*.example.com", "example.com", "a"),
            ("*.example.com", "a.b.example.com", "a"),
            ("reg.example.com:5000", "reg.example.com", "a"),
            ("reg.example.com", "reg.example.com:5000", "a"),
            ("reg.example.com/a", "reg.example.com", "ab"),
            ("https://index.docker.io/v1/", "reg.example.com", "a"),
        ];
        for (key, host, path) in no {
            assert!(
                !matches(key, host, path),
                "{key} should not match {host}/{path}"
            );
        }
    }

    #[test]
    fn the_most_specific_key_comes_first() {
        let credential = |key: &str, user: &str| Credential {
            key: key.into(),
            auth: v1::AuthConfig {
                username: user.into(),
                ..Default::default()
            },
        };
        let all = [
            credential("reg.example.com", "host"),
            credential("other.example.com", "other"),
            credential("reg.example.com/team", "team"),
        ];
        let found: Vec<String> = for_image(&all, "reg.example.com/team/app:1")
            .into_iter()
            .map(|a| a.username)
            .collect();
        assert_eq!(found, ["team", "host"]);
        assert!(for_image(&all, "busybox").is_empty());
    }
}
