//! Controller references: the one `metadata.ownerReferences` entry with `controller: true`
//! says which object manages another. A controller claims the objects its selector matches:
//! it keeps the ones it controls, adopts matching orphans and releases the ones it controls
//! that stopped matching, as upstream's `BaseControllerRefManager.ClaimObject`
//! (`pkg/controller/controller_ref_manager.go`). The decision is [`claim`]; the patches that
//! carry it out are [`adopt_patch`] and [`release_patch`] (strategic merge patches, keyed by
//! the owner's UID, as upstream sends them).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use serde_json::{Value, json};

/// The reference to the object's controller, if it has one.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_deref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Whether the object's controller is the object with UID `owner_uid`.
pub fn is_controlled_by(meta: &ObjectMeta, owner_uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == owner_uid)
}

/// Whether `reference` points at an object of kind `K`.
pub fn refers_to<K: Resource<DynamicType = ()>>(reference: &OwnerReference) -> bool {
    reference.kind == K::kind(&()) && reference.api_version == K::api_version(&())
}

/// The object's controller, if it is of kind `K`.
pub fn controller_of_kind<K: Resource<DynamicType = ()>>(
    meta: &ObjectMeta,
) -> Option<&OwnerReference> {
    controller_of(meta).filter(|r| refers_to::<K>(r))
}

/// The reference a controller puts on what it creates or adopts (upstream's
/// `metav1.NewControllerRef`): `controller` and `blockOwnerDeletion` both true.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// What a controller does with an object it looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// It controls the object and its selector matches: the object counts as its own.
    Keep,
    /// An orphan its selector matches: take it (then it counts as its own).
    Adopt,
    /// It controls the object but its selector no longer matches: let it go.
    Release,
    /// Someone else's, or not a match, or either side is going away.
    Ignore,
}

/// Decides what `owner` does with `object`, given whether its selector matches the object.
pub fn claim(owner: &ObjectMeta, object: &ObjectMeta, matches: bool) -> Claim {
    let owner_deleting = owner.deletion_timestamp.is_some();
    match controller_of(object) {
        Some(reference) if Some(&reference.uid) != owner.uid.as_ref() => Claim::Ignore,
        Some(_) if matches => Claim::Keep,
        // A controller being deleted keeps its hands off, so its dependents go with it.
        Some(_) if owner_deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None if owner_deleting
            || !matches
            || object.deletion_timestamp.is_some()
            || owner.namespace != object.namespace =>
        {
            Claim::Ignore
        }
        None => Claim::Adopt,
    }
}

/// The strategic merge patch that makes `owner` the controller of the object with UID
/// `object_uid` (the UID is there so that a patch for an object since replaced fails).
pub fn adopt_patch(owner: &OwnerReference, object_uid: &str) -> Value {
    json!({"metadata": {"ownerReferences": [owner], "uid": object_uid}})
}

/// The strategic merge patch that removes the reference to the owner with UID `owner_uid`.
pub fn release_patch(owner_uid: &str, object_uid: &str) -> Value {
    json!({
        "metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
            "uid": object_uid,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn meta(uid: &str, controller: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            uid: Some(uid.into()),
            namespace: Some("default".into()),
            owner_references: controller.map(|c| {
                vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "ReplicaSet".into(),
                    name: "rs".into(),
                    uid: c.into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            ..Default::default()
        }
    }

    fn deleting(mut meta: ObjectMeta) -> ObjectMeta {
        meta.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        meta
    }

    #[test]
    fn claims_as_upstream_controller_ref_manager() {
        let owner = meta("rs-uid", None);
        let cases = [
            (
                "ours, matching",
                meta("p", Some("rs-uid")),
                true,
                Claim::Keep,
            ),
            (
                "ours, no longer matching",
                meta("p", Some("rs-uid")),
                false,
                Claim::Release,
            ),
            (
                "someone else's",
                meta("p", Some("other")),
                true,
                Claim::Ignore,
            ),
            ("matching orphan", meta("p", None), true, Claim::Adopt),
            ("orphan not matching", meta("p", None), false, Claim::Ignore),
            (
                "orphan being deleted",
                deleting(meta("p", None)),
                true,
                Claim::Ignore,
            ),
        ];
        for (what, object, matches, expected) in cases {
            assert_eq!(claim(&owner, &object, matches), expected, "{what}");
        }
        let mut elsewhere = meta("p", None);
        elsewhere.namespace = Some("other".into());
        assert_eq!(claim(&owner, &elsewhere, true), Claim::Ignore);
    }

    #[test]
    fn an_owner_being_deleted_neither_adopts_nor_releases() {
        let owner = deleting(meta("rs-uid", None));
        assert_eq!(claim(&owner, &meta("p", None), true), Claim::Ignore);
        assert_eq!(
            claim(&owner, &meta("p", Some("rs-uid")), false),
            Claim::Ignore
        );
        assert_eq!(claim(&owner, &meta("p", Some("rs-uid")), true), Claim::Keep);
    }

    #[test]
    fn controller_ref_names_the_kind_and_blocks_deletion() {
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web-abc".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let reference = controller_ref(&rs);
        assert_eq!(reference.api_version, "apps/v1");
        assert_eq!(reference.kind, "ReplicaSet");
        assert_eq!(reference.uid, "u1");
        assert_eq!(reference.controller, Some(true));
        assert_eq!(reference.block_owner_deletion, Some(true));
        let patch = release_patch("u1", "pod-uid");
        assert_eq!(patch["metadata"]["ownerReferences"][0]["$patch"], "delete");
        assert_eq!(
            adopt_patch(&reference, "pod-uid")["metadata"]["uid"],
            "pod-uid"
        );
    }
}
