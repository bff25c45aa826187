//! The PersistentVolume and PersistentVolumeClaim printers.

use serde_json::Value;

use crate::table::cells::{self, annotation, items, optional_text, text};
use crate::table::{AGE, Column, NAME, Printer, quantity};

pub(in crate::table) const PERSISTENT_VOLUME: Printer =
    Printer::new(PERSISTENT_VOLUME_COLUMNS, persistent_volume);
pub(in crate::table) const PERSISTENT_VOLUME_CLAIM: Printer =
    Printer::new(PERSISTENT_VOLUME_CLAIM_COLUMNS, persistent_volume_claim);

const PERSISTENT_VOLUME_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Capacity", "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"),
    Column::string("Access Modes", "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"),
    Column::string("Reclaim Policy", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming"),
    Column::string("Status", "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"),
    Column::string("Claim", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"),
    Column::string("StorageClass", "StorageClass of the pv"),
    Column::string("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
    Column::string("Reason", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
    AGE,
    Column::string("VolumeMode", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.").wide(),
];

const PERSISTENT_VOLUME_CLAIM_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Status", "phase represents the current phase of PersistentVolumeClaim."),
    Column::string("Volume", "volumeName is the binding reference to the PersistentVolume backing this claim."),
    Column::string("Capacity", "capacity represents the actual resources of the underlying volume."),
    Column::string("Access Modes", "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"),
    Column::string("StorageClass", "StorageClass of the pvc"),
    Column::string("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
    AGE,
    Column::string("VolumeMode", "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.").wide(),
];

/// The storage class annotation that predates `storageClassName` and still wins over it.
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// Terminating while being deleted, else the phase (which defaults to Pending).
fn phase(object: &Value) -> &str {
    if cells::is_deleting(object) {
        return "Terminating";
    }
    match text(object, "/status/phase") {
        "" => "Pending",
        phase => phase,
    }
}

/// The volume mode, which defaults to Filesystem.
fn volume_mode(object: &Value) -> &str {
    optional_text(object, "/spec/volumeMode").unwrap_or("Filesystem")
}

fn volume_attributes_class(object: &Value) -> &str {
    optional_text(object, "/spec/volumeAttributesClassName").unwrap_or("<unset>")
}

fn persistent_volume(object: &Value, now: i64) -> Vec<Value> {
    let claim = match object.pointer("/spec/claimRef").filter(|c| c.is_object()) {
        Some(claim) => format!("{}/{}", text(claim, "/namespace"), text(claim, "/name")),
        None => String::new(),
    };
    // The reclaim policy defaults to Retain.
    let reclaim_policy = match text(object, "/spec/persistentVolumeReclaimPolicy") {
        "" => "Retain",
        policy => policy,
    };
    let storage_class = annotation(object, BETA_STORAGE_CLASS)
        .unwrap_or_else(|| text(object, "/spec/storageClassName"));
    cells![
        cells::name(object),
        quantity::or_zero(object.pointer("/spec/capacity/storage")),
        cells::access_modes(items(object, "/spec/accessModes")),
        reclaim_policy,
        phase(object),
        claim,
        storage_class,
        volume_attributes_class(object),
        text(object, "/status/reason"),
        cells::age(object, now),
        volume_mode(object),
    ]
}

fn persistent_volume_claim(object: &Value, now: i64) -> Vec<Value> {
    let volume = text(object, "/spec/volumeName");
    // Capacity and access modes are the bound volume's, shown once bound.
    let (capacity, access_modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity::or_zero(object.pointer("/status/capacity/storage")),
            cells::access_modes(items(object, "/status/accessModes")),
        )
    };
    let storage_class = annotation(object, BETA_STORAGE_CLASS)
        .or_else(|| optional_text(object, "/spec/storageClassName"))
        .unwrap_or_default();
    cells![
        cells::name(object),
        phase(object),
        volume,
        capacity,
        access_modes,
        storage_class,
        volume_attributes_class(object),
        cells::age(object, now),
        volume_mode(object),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago};
    use serde_json::json;

    #[test]
    fn prints_persistent_volumes() {
        let cases = [
            (
                json!({
                    "metadata": {"name": "pv1", "creationTimestamp": minutes_ago(5)},
                    "spec": {"capacity": {"storage": "10240Mi"},
                             "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                             "persistentVolumeReclaimPolicy": "Delete",
                             "claimRef": {"namespace": "default", "name": "data"},
                             "storageClassName": "standard", "volumeMode": "Block"},
                    "status": {"phase": "Bound"},
                }),
                json!([
                    "pv1",
                    "10Gi",
                    "RWO,ROX",
                    "Delete",
                    "Bound",
                    "default/data",
                    "standard",
                    "<unset>",
                    "",
                    "5m",
                    "Block"
                ]),
            ),
            (
                json!({
                    "metadata": {"name": "pv2", "creationTimestamp": minutes_ago(5),
                                 "deletionTimestamp": minutes_ago(1),
                                 "annotations": {"volume.beta.kubernetes.io/storage-class": "old"}},
                    "spec": {"storageClassName": "new", "volumeAttributesClassName": "gold"},
                    "status": {"phase": "Failed", "reason": "Recycler failed"},
                }),
                json!([
                    "pv2",
                    "0",
                    "",
                    "Retain",
                    "Terminating",
                    "",
                    "old",
                    "gold",
                    "Recycler failed",
                    "5m",
                    "Filesystem"
                ]),
            ),
        ];
        for (object, want) in cases {
            assert_eq!(
                Value::from(persistent_volume(&object, NOW)),
                want,
                "{object}"
            );
        }
    }

    #[test]
    fn prints_persistent_volume_claims() {
        let cases = [
            (
                json!({
                    "metadata": {"name": "data", "creationTimestamp": minutes_ago(5)},
                    "spec": {"volumeName": "pv1", "storageClassName": "standard",
                             "resources": {"requests": {"storage": "1Gi"}}},
                    "status": {"phase": "Bound", "capacity": {"storage": "10Gi"},
                               "accessModes": ["ReadWriteOnce"]},
                }),
                json!([
                    "data",
                    "Bound",
                    "pv1",
                    "10Gi",
                    "RWO",
                    "standard",
                    "<unset>",
                    "5m",
                    "Filesystem"
                ]),
            ),
            (
                json!({
                    "metadata": {"name": "waiting", "creationTimestamp": minutes_ago(5)},
                    "spec": {"resources": {"requests": {"storage": "1Gi"}}},
                    "status": {"accessModes": ["ReadWriteOnce"]},
                }),
                json!([
                    "waiting",
                    "Pending",
                    "",
                    "",
                    "",
                    "",
                    "<unset>",
                    "5m",
                    "Filesystem"
                ]),
            ),
        ];
        for (object, want) in cases {
            assert_eq!(
                Value::from(persistent_volume_claim(&object, NOW)),
                want,
                "{object}"
            );
        }
    }
}
