//! The `pod-template-hash`: the suffix of a Deployment's ReplicaSet names and the label
//! that keeps their selectors apart. As upstream's `controller.ComputeHash`, it is FNV-1a
//! (32 bits) over the pod template, then over the collision count (when there is one, as
//! eight bytes: the count in little-endian and four zeros), printed in decimal and each digit
//! mapped through `SafeEncodeString`'s alphabet (no vowels, no confusable characters), so a
//! name looks like upstream's, e.g. `web-6d4b75cb6d`.
//!
//! Upstream hashes the Go structure's `spew` dump; here the JSON of the template's canonical
//! form ([`super::template::canonical`]: keys sorted, zero values dropped) stands in for it, so
//! the same template gives the same hash however it reached the API server, but not the hash
//! upstream would give. Nothing depends on that: the controller finds its ReplicaSets by
//! comparing templates, never by hash.

use k8s_openapi::api::core::v1::PodTemplateSpec;

/// The label (and selector key) a Deployment adds to each of its ReplicaSets.
pub const LABEL: &str = "pod-template-hash";

/// Upstream's `rand.SafeEncodeString` alphabet.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

fn fnv1a(mut hash: u32, bytes: &[u8]) -> u32 {
    for byte in bytes {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Maps every character of `text` into the safe alphabet.
fn safe_encode(text: &str) -> String {
    text.bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    // Serializing a JSON value to a byte vector cannot fail.
    let encoded = serde_json::to_vec(&super::template::canonical(template)).unwrap_or_default();
    let mut hash = fnv1a(FNV_OFFSET, &encoded);
    if let Some(count) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&count.to_le_bytes());
        hash = fnv1a(hash, &bytes);
    }
    safe_encode(&hash.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0x811c_9dc5);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xe40c_292c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn safe_encoding_maps_digits_as_upstream() {
        // '0' is byte 48, 48 % 27 = 21 -> '4'; '9' is 57 % 27 = 3 -> 'f'.
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn the_hash_is_stable_and_follows_the_template_and_collisions() {
        let a = pod_template_hash(&template("nginx:1"), None);
        assert_eq!(a, pod_template_hash(&template("nginx:1"), None));
        assert_ne!(a, pod_template_hash(&template("nginx:2"), None));
        assert_ne!(a, pod_template_hash(&template("nginx:1"), Some(1)));
        assert!(
            a.len() <= 10 && a.bytes().all(|b| ALPHABET.contains(&b)),
            "{a}"
        );
    }
}
