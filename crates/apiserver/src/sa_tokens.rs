//! Signing and verifying ServiceAccount tokens: JWTs (ES256) under a key of the server's own,
//! made at first start (`<data-dir>/server/tls/service-account.key`) and kept, so tokens stay
//! valid across restarts. Which claims a token carries and what makes it acceptable is
//! `cox_api::service_account`'s.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cox_api::service_account::{self, Claims, KubernetesClaims, ObjectRef};
use cox_api::status::ApiError;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

use crate::authn::User;
use crate::objects;
use crate::rest::Rest;

/// The file the signing key is kept in.
const KEY_FILE: &str = "service-account.key";

/// The key tokens are signed with, and the names that go into them.
pub struct TokenSigner {
    key: EcdsaKeyPair,
    /// The key's ID (`kid`): a digest of its public half.
    kid: String,
    /// `iss` of every token issued, and the only one accepted.
    pub issuer: String,
    /// The audiences a token gets when its request names none; a presented token must name
    /// one of them.
    pub audiences: Vec<String>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the service account key {0}")]
    Key(String),
}

impl TokenSigner {
    /// Loads the key from `dir`, making it on first start. The issuer and default audience
    /// is `https://kubernetes.default.svc.<cluster domain>`, as upstream's default.
    pub fn load_or_create(dir: &Path, cluster_domain: &str) -> Result<Self, SignerError> {
        let path = dir.join(KEY_FILE);
        let io = |context: String| move |source| SignerError::Io { context, source };
        let der = if path.exists() {
            let pem = std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
            PrivatePkcs8KeyDer::from_pem_slice(&pem)
                .map_err(|e| SignerError::Key(format!("in {}: {e}", path.display())))?
                .secret_pkcs8_der()
                .to_vec()
        } else {
            let document = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(|_| SignerError::Key("could not be generated".into()))?;
            let der = document.as_ref().to_vec();
            let pem = pem_encode("PRIVATE KEY", &der);
            crate::tls::write_private(&path, &pem)
                .map_err(|e| SignerError::Key(format!("could not be written: {e}")))?;
            der
        };
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
                .map_err(|e| SignerError::Key(format!("is not a P-256 key: {e}")))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        let issuer = format!("https://kubernetes.default.svc.{cluster_domain}");
        Ok(TokenSigner {
            kid: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            key,
            audiences: vec![issuer.clone()],
            issuer,
        })
    }

    /// The signed token of `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, SignerError> {
        let header = json!({"alg": "ES256", "kid": self.kid});
        let body = serde_json::to_vec(claims).map_err(|e| SignerError::Key(e.to_string()))?;
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(body)
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| SignerError::Key("could not sign".into()))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// The claims of a token this key signed; `None` for anything else (another key, a
    /// changed byte, not a JWT). Whether the claims are acceptable is the caller's question.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut parts = token.split('.');
        let (header, body, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header["alg"] != "ES256" || header["kid"] != self.kid.as_str() {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let signed = &token[..token.len() - parts_len(token)];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(signed.as_bytes(), &signature)
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
    }
}

/// `POST .../serviceaccounts/<name>/token`: a TokenRequest answered with a token for the
/// account, bound to the object the request names (which must exist, with that UID).
pub async fn create_token(
    rest: &Rest,
    signer: &TokenSigner,
    namespace: &str,
    name: &str,
    request: &Value,
) -> Result<Value, ApiError> {
    let spec = service_account::token_spec(name, request)?;
    let account = rest.get_core("serviceaccounts", namespace, name).await?;
    let mut kubernetes = KubernetesClaims {
        namespace: namespace.to_string(),
        serviceaccount: ObjectRef {
            name: name.to_string(),
            uid: objects::str_at(&account, "/metadata/uid").to_string(),
        },
        pod: None,
        secret: None,
        node: None,
    };
    if let Some((kind, bound_name, bound_uid)) = &spec.bound {
        let (plural, scope) = match kind.as_str() {
            "Pod" => ("pods", namespace),
            "Secret" => ("secrets", namespace),
            _ => ("nodes", ""),
        };
        let object = rest.get_core(plural, scope, bound_name).await?;
        let uid = objects::str_at(&object, "/metadata/uid").to_string();
        if !bound_uid.is_empty() && *bound_uid != uid {
            return Err(ApiError::conflict(
                "",
                plural,
                bound_name,
                &format!(
                    "the UID in the bound object reference ({bound_uid}) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
                ),
            ));
        }
        let reference = Some(ObjectRef {
            name: bound_name.clone(),
            uid,
        });
        match kind.as_str() {
            "Pod" => kubernetes.pod = reference,
            "Secret" => kubernetes.secret = reference,
            _ => kubernetes.node = reference,
        }
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let audiences = if spec.audiences.is_empty() {
        signer.audiences.clone()
    } else {
        spec.audiences.clone()
    };
    let claims = Claims {
        iss: signer.issuer.clone(),
        sub: service_account::user_name(namespace, name),
        aud: audiences.clone(),
        exp: now + spec.expiration_seconds,
        iat: now,
        nbf: now,
        jti: objects::new_uid(),
        kubernetes,
    };
    let token = signer
        .sign(&claims)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let expires = time::OffsetDateTime::from_unix_timestamp(claims.exp)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let mut answer = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": null},
        "spec": {"audiences": audiences, "expirationSeconds": spec.expiration_seconds, "boundObjectRef": null},
        "status": {"token": token, "expirationTimestamp": expires},
    });
    if let Some((kind, bound_name, bound_uid)) = spec.bound {
        answer["spec"]["boundObjectRef"] =
            json!({"kind": kind, "apiVersion": "v1", "name": bound_name, "uid": bound_uid});
    }
    Ok(answer)
}

/// The user a ServiceAccount token stands for, if this server signed it, it is within its
/// time and audience, and its account (and the pod or secret it is bound to) still exist
/// with the UIDs it names.
pub async fn authenticate(rest: &Rest, signer: &TokenSigner, token: &str) -> Option<User> {
    let claims = signer.verify(token)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err(why) = service_account::check_claims(&claims, &signer.issuer, &signer.audiences, now)
    {
        tracing::debug!(why, "a service account token was refused");
        return None;
    }
    let k = &claims.kubernetes;
    let live = |object: &Value, uid: &str| objects::str_at(object, "/metadata/uid") == uid;
    let account = rest
        .get_core("serviceaccounts", &k.namespace, &k.serviceaccount.name)
        .await
        .ok()?;
    if !live(&account, &k.serviceaccount.uid) {
        return None;
    }
    for (plural, bound) in [("pods", &k.pod), ("secrets", &k.secret)] {
        if let Some(bound) = bound {
            let object = rest
                .get_core(plural, &k.namespace, &bound.name)
                .await
                .ok()?;
            if !live(&object, &bound.uid) {
                return None;
            }
        }
    }
    Some(User {
        name: claims.sub.clone(),
        groups: service_account::groups(&k.namespace),
    })
}

/// The length of the signature part and its dot.
fn parts_len(token: &str) -> usize {
    token.rsplit('.').next().map_or(0, |s| s.len() + 1)
}

/// PEM text of `der` under `label`.
fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            iss: "https://kubernetes.default.svc.cluster.local".into(),
            sub: "system:serviceaccount:default:default".into(),
            aud: vec!["https://kubernetes.default.svc.cluster.local".into()],
            exp: 2,
            iat: 1,
            nbf: 1,
            jti: "j".into(),
            kubernetes: KubernetesClaims {
                namespace: "default".into(),
                serviceaccount: ObjectRef {
                    name: "default".into(),
                    uid: "u".into(),
                },
                pod: None,
                secret: None,
                node: None,
            },
        }
    }

    #[test]
    fn tokens_verify_across_reloads_and_not_when_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = TokenSigner::load_or_create(dir.path(), "cluster.local").expect("made");
        let token = signer.sign(&claims()).expect("signed");
        assert_eq!(signer.verify(&token), Some(claims()));

        let reloaded = TokenSigner::load_or_create(dir.path(), "cluster.local").expect("loaded");
        assert_eq!(reloaded.verify(&token), Some(claims()), "the key is kept");

        // A changed claim breaks the signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut forged = claims();
        forged.kubernetes.namespace = "kube-system".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
        assert_eq!(signer.verify(&parts.join(".")), None);

        let other_dir = tempfile::tempdir().expect("tempdir");
        let other = TokenSigner::load_or_create(other_dir.path(), "cluster.local").expect("made");
        assert_eq!(other.verify(&token), None, "another key's token");
        assert_eq!(signer.verify("not-a-jwt"), None);
        assert_eq!(signer.verify("a.b.c.d"), None);
    }
}
