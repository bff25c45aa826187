//! ServiceAccount credentials as upstream issues them: the claims of a bound token
//! (TokenRequest), the checks a presented token must pass, the user it stands for, and the
//! `kube-api-access-*` volume the ServiceAccount admission gives pods so that in-cluster
//! clients find their token, the cluster CA and their namespace.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::status::ApiError;
use crate::validation::FieldError;

/// Where containers find their credentials.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The ConfigMap with the cluster CA that every namespace gets.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// A token's lifetime when the request names none (upstream: one hour).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest lifetime a TokenRequest may ask for (upstream: ten minutes).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The lifetime of the token in the admission's projected volume (upstream's 3607 s: the
/// extra seconds mark it as the kubelet-managed one).
pub const VOLUME_EXPIRATION_SECONDS: i64 = 3607;

/// The user name of a ServiceAccount.
pub fn user_name(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The groups of a ServiceAccount's user.
pub fn groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{namespace}"),
        "system:authenticated".to_string(),
    ]
}

/// An object a token is bound to, by name and UID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub name: String,
    pub uid: String,
}

/// The `kubernetes.io` claim: whose token it is, and what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    pub namespace: String,
    pub serviceaccount: ObjectRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
}

/// A bound token's claims (JWT, upstream's names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

/// What a TokenRequest asks for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    /// Empty: the API server's own audiences.
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
    /// The kind (`Pod`, `Secret`, `Node`), name and UID of the object to bind to.
    pub bound: Option<(String, String, String)>,
}

/// Reads and validates a TokenRequest body's `spec`, with upstream's rules and words.
pub fn token_spec(name: &str, request: &Value) -> Result<TokenSpec, ApiError> {
    let spec = &request["spec"];
    let mut errors = Vec::new();
    let expiration_seconds = spec["expirationSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    if expiration_seconds < MIN_EXPIRATION_SECONDS {
        errors.push(FieldError::invalid_raw(
            "spec.expirationSeconds",
            expiration_seconds,
            "may not specify a duration less than 10 minutes",
        ));
    } else if expiration_seconds > 1 << 32 {
        errors.push(FieldError::invalid_raw(
            "spec.expirationSeconds",
            expiration_seconds,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let audiences = spec["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let bound = match &spec["boundObjectRef"] {
        Value::Object(reference) => {
            let text = |key: &str| {
                reference
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let kind = text("kind");
            if !matches!(kind.as_str(), "Pod" | "Secret" | "Node") {
                errors.push(FieldError::invalid(
                    "spec.boundObjectRef.kind",
                    &kind,
                    "supported values: \"Pod\", \"Secret\", \"Node\"",
                ));
            }
            let api_version = text("apiVersion");
            if !api_version.is_empty() && api_version != "v1" {
                errors.push(FieldError::invalid(
                    "spec.boundObjectRef.apiVersion",
                    &api_version,
                    "supported values: \"v1\"",
                ));
            }
            Some((kind, text("name"), text("uid")))
        }
        _ => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            name,
            &errors,
        ));
    }
    Ok(TokenSpec {
        audiences,
        expiration_seconds,
        bound,
    })
}

/// Why a presented token is not accepted, before any object is looked up: issuer, audience,
/// time window. `now` in seconds since the epoch.
pub fn check_claims(
    claims: &Claims,
    issuer: &str,
    audiences: &[String],
    now: i64,
) -> Result<(), &'static str> {
    if claims.iss != issuer {
        return Err("the token was issued by someone else");
    }
    if !claims.aud.iter().any(|a| audiences.contains(a)) {
        return Err("the token is for another audience");
    }
    if now >= claims.exp {
        return Err("the token has expired");
    }
    if now < claims.nbf {
        return Err("the token is not valid yet");
    }
    let expected = user_name(
        &claims.kubernetes.namespace,
        &claims.kubernetes.serviceaccount.name,
    );
    if claims.sub != expected {
        return Err("the token's subject is not its service account");
    }
    Ok(())
}

/// The name prefix of the admission's credentials volume.
pub const API_ACCESS_VOLUME_PREFIX: &str = "kube-api-access-";

/// The ServiceAccount admission's volume for a new pod (its `spec` as JSON): unless the pod
/// or its account opts out (`automountServiceAccountToken: false`) or a container already
/// mounts something at [`MOUNT_PATH`], a projected volume `kube-api-access-<suffix>` with a
/// bound token, the cluster CA and the namespace, mounted read-only in every container.
pub fn add_api_access_volume(spec: &mut Value, account_automount: Option<bool>, suffix: &str) {
    let automount = spec["automountServiceAccountToken"]
        .as_bool()
        .or(account_automount)
        .unwrap_or(true);
    if !automount {
        return;
    }
    let name = format!("{API_ACCESS_VOLUME_PREFIX}{suffix}");
    let volume = json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": VOLUME_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIG_MAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    });
    let mount = json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH});
    let mut mounted_any = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers {
            let mounts = container
                .as_object_mut()
                .map(|c| c.entry("volumeMounts").or_insert_with(|| json!([])));
            let Some(Value::Array(mounts)) = mounts else {
                continue;
            };
            if mounts.iter().any(|m| m["mountPath"] == MOUNT_PATH) {
                continue;
            }
            mounts.push(mount.clone());
            mounted_any = true;
        }
    }
    if !mounted_any {
        return;
    }
    let volumes = spec
        .as_object_mut()
        .map(|s| s.entry("volumes").or_insert_with(|| json!([])));
    if let Some(Value::Array(volumes)) = volumes {
        volumes.push(volume);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            iss: "https://kubernetes.default.svc.cluster.local".into(),
            sub: "system:serviceaccount:default:builder".into(),
            aud: vec!["https://kubernetes.default.svc.cluster.local".into()],
            exp: 2_000,
            iat: 1_000,
            nbf: 1_000,
            jti: "id".into(),
            kubernetes: KubernetesClaims {
                namespace: "default".into(),
                serviceaccount: ObjectRef {
                    name: "builder".into(),
                    uid: "u1".into(),
                },
                pod: None,
                secret: None,
                node: None,
            },
        }
    }

    #[test]
    fn claims_serialize_under_upstreams_names() {
        let value = serde_json::to_value(claims()).expect("serializes");
        assert_eq!(value["kubernetes.io"]["serviceaccount"]["name"], "builder");
        assert!(value["kubernetes.io"].get("pod").is_none());
        let back: Claims = serde_json::from_value(value).expect("parses");
        assert_eq!(back, claims());
    }

    #[test]
    fn presented_claims_are_checked() {
        let issuer = "https://kubernetes.default.svc.cluster.local";
        let audiences = vec![issuer.to_string()];
        assert_eq!(check_claims(&claims(), issuer, &audiences, 1_500), Ok(()));
        assert!(check_claims(&claims(), "other", &audiences, 1_500).is_err());
        assert!(check_claims(&claims(), issuer, &["vault".into()], 1_500).is_err());
        assert!(check_claims(&claims(), issuer, &audiences, 2_000).is_err());
        assert!(check_claims(&claims(), issuer, &audiences, 999).is_err());
        let mut forged = claims();
        forged.sub = "system:serviceaccount:kube-system:admin".into();
        assert!(check_claims(&forged, issuer, &audiences, 1_500).is_err());
    }

    #[test]
    fn token_requests_are_validated() {
        let spec = token_spec("sa", &json!({"spec": {}})).expect("defaults");
        assert_eq!(spec.expiration_seconds, DEFAULT_EXPIRATION_SECONDS);
        assert!(spec.audiences.is_empty() && spec.bound.is_none());
        let short =
            token_spec("sa", &json!({"spec": {"expirationSeconds": 60}})).expect_err("too short");
        assert_eq!(short.code, 422);
        let bound = token_spec(
            "sa",
            &json!({"spec": {"audiences": ["a"], "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u"}}}),
        )
        .expect("bound");
        assert_eq!(bound.bound, Some(("Pod".into(), "p".into(), "u".into())));
        assert_eq!(bound.audiences, ["a"]);
        let wrong = token_spec(
            "sa",
            &json!({"spec": {"boundObjectRef": {"kind": "ConfigMap", "name": "c"}}}),
        )
        .expect_err("unsupported kind");
        assert_eq!(wrong.code, 422);
    }

    #[test]
    fn pods_get_the_api_access_volume_unless_they_opt_out() {
        let mut spec = json!({"containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "own", "mountPath": MOUNT_PATH}]}]});
        add_api_access_volume(&mut spec, None, "abcde");
        assert_eq!(spec["volumes"][0]["name"], "kube-api-access-abcde");
        assert_eq!(
            spec["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        assert_eq!(
            spec["containers"][0]["volumeMounts"][0]["mountPath"],
            MOUNT_PATH
        );
        assert_eq!(spec["containers"][0]["volumeMounts"][0]["readOnly"], true);
        assert_eq!(
            spec["containers"][1]["volumeMounts"]
                .as_array()
                .map(Vec::len),
            Some(1),
            "an existing mount at the path is left alone"
        );

        let mut off = json!({"automountServiceAccountToken": false, "containers": [{"name": "a"}]});
        add_api_access_volume(&mut off, Some(true), "x");
        assert!(off.get("volumes").is_none());
        let mut by_account = json!({"containers": [{"name": "a"}]});
        add_api_access_volume(&mut by_account, Some(false), "x");
        assert!(by_account.get("volumes").is_none());
        let mut pod_wins =
            json!({"automountServiceAccountToken": true, "containers": [{"name": "a"}]});
        add_api_access_volume(&mut pod_wins, Some(false), "x");
        assert!(pod_wins.get("volumes").is_some());
    }
}
