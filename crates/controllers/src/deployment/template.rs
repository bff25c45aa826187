//! Which ReplicaSet runs a Deployment's current pod template: the one whose template equals
//! it, the `pod-template-hash` label aside (upstream's `EqualIgnoreHash`). Comparing
//! templates, not hashes, is what makes `kubectl rollout undo` (which copies an old
//! ReplicaSet's template back into the Deployment) bring that ReplicaSet back.
//!
//! Equality is upstream's semantic equality of Go structures, where a field that is not a
//! pointer is the same absent or zero. So the JSON is compared in a [`canonical`] form without
//! nulls, empty maps and lists, `false`, `0` and `""`: the same template reaches the API server
//! both ways (kubectl's JSON leaves zero values out, protobuf bodies carry them). The pointer
//! fields of a pod template whose zero means something else than their absence (`runAsUser:
//! 0` is root, an absent one the image's user) keep their zeros.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

use super::hash;

/// Pointer fields of a pod template where zero is not the same as absent.
const ZERO_MEANS_SOMETHING: &[&str] = &[
    "activeDeadlineSeconds",
    "allowPrivilegeEscalation",
    "automountServiceAccountToken",
    "fsGroup",
    "hostUsers",
    "priority",
    "runAsGroup",
    "runAsUser",
    "terminationGracePeriodSeconds",
];

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Drops nulls, zero scalars (but for [`ZERO_MEANS_SOMETHING`]), empty objects and empty
/// lists, recursively; whether anything is left.
fn prune(value: &mut Value) -> bool {
    match value {
        Value::Null => false,
        Value::Object(map) => {
            map.retain(|key, v| {
                if is_zero(v) {
                    return ZERO_MEANS_SOMETHING.contains(&key.as_str());
                }
                prune(v)
            });
            !map.is_empty()
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                prune(item);
            }
            !items.is_empty()
        }
        _ => true,
    }
}

/// The template as compared and hashed: without the hash label, and pruned as the module
/// doc says.
pub fn canonical(template: &PodTemplateSpec) -> Value {
    let mut value = serde_json::to_value(template).unwrap_or_default();
    if let Some(labels) = value
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(hash::LABEL);
    }
    prune(&mut value);
    value
}

pub fn equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    canonical(a) == canonical(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, PodSecurityContext, PodSpec, ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn template(image: &str, labels: &[(&str, &str)]) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "nginx".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn the_hash_label_and_empty_fields_do_not_count() {
        let deployment = template("nginx:1", &[("app", "web")]);
        let mut replica_set = template("nginx:1", &[("app", "web"), (hash::LABEL, "abc")]);
        if let Some(spec) = replica_set.spec.as_mut() {
            spec.containers[0].resources = Some(ResourceRequirements::default());
        }
        assert!(equal_ignoring_hash(&deployment, &replica_set));
        assert!(!equal_ignoring_hash(
            &deployment,
            &template("nginx:2", &[("app", "web")])
        ));
        assert!(!equal_ignoring_hash(
            &deployment,
            &template("nginx:1", &[("app", "db")])
        ));
        // Zero values as a protobuf body carries them, absent as kubectl's JSON has them.
        let mut explicit = deployment.clone();
        if let Some(spec) = explicit.spec.as_mut() {
            spec.containers[0].stdin = Some(false);
            spec.host_ipc = Some(false);
        }
        if let Some(meta) = explicit.metadata.as_mut() {
            meta.generation = Some(0);
        }
        assert!(equal_ignoring_hash(&deployment, &explicit));
        // Zero that means something: root is not the image's user.
        let mut root = deployment.clone();
        if let Some(spec) = root.spec.as_mut() {
            spec.security_context = Some(PodSecurityContext {
                run_as_user: Some(0),
                ..Default::default()
            });
        }
        assert!(!equal_ignoring_hash(&deployment, &root));
        // Only a hash label: the same as no labels.
        assert!(equal_ignoring_hash(
            &template("x", &[]),
            &template("x", &[(hash::LABEL, "abc")])
        ));
    }
}
