//! The StorageClass printer (`storage.k8s.io`).

use serde_json::Value;

use super::cells::{self, annotation, optional_bool, optional_text, text};
use super::{AGE, Column, NAME, Printer};

pub(super) const STORAGE_CLASS: Printer = Printer::new(STORAGE_CLASS_COLUMNS, storage_class);

const STORAGE_CLASS_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Provisioner",
        "provisioner indicates the type of the provisioner.",
    ),
    Column::string(
        "ReclaimPolicy",
        "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.",
    ),
    Column::string(
        "VolumeBindingMode",
        "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.",
    ),
    Column::string(
        "AllowVolumeExpansion",
        "allowVolumeExpansion shows whether the storage class allow volume expand.",
    ),
    AGE,
];

/// The annotations that mark the default class, current and beta.
const DEFAULT_CLASS_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

/// The default class's name says so. AllowVolumeExpansion is a boolean although its column is
/// a string, as upstream's.
fn storage_class(object: &Value, now: i64) -> Vec<Value> {
    let is_default = DEFAULT_CLASS_ANNOTATIONS
        .iter()
        .any(|key| annotation(object, key) == Some("true"));
    let name = if is_default {
        format!("{} (default)", cells::name(object))
    } else {
        cells::name(object).to_owned()
    };
    cells![
        name,
        text(object, "/provisioner"),
        optional_text(object, "/reclaimPolicy").unwrap_or("Delete"),
        optional_text(object, "/volumeBindingMode").unwrap_or("Immediate"),
        optional_bool(object, "/allowVolumeExpansion").unwrap_or(false),
        cells::age(object, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago};
    use serde_json::json;

    #[test]
    fn prints_classes_and_marks_the_default() {
        let cases = [
            (
                json!({"storageclass.kubernetes.io/is-default-class": "true"}),
                json!({"provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
                       "volumeBindingMode": "WaitForFirstConsumer"}),
                json!([
                    "local (default)",
                    "rancher.io/local-path",
                    "Delete",
                    "WaitForFirstConsumer",
                    false,
                    "5m"
                ]),
            ),
            (
                json!({"storageclass.beta.kubernetes.io/is-default-class": "true"}),
                json!({"provisioner": "p", "reclaimPolicy": "Retain",
                       "allowVolumeExpansion": true}),
                json!(["local (default)", "p", "Retain", "Immediate", true, "5m"]),
            ),
            (
                json!({"storageclass.kubernetes.io/is-default-class": "false"}),
                json!({"provisioner": "p"}),
                json!(["local", "p", "Delete", "Immediate", false, "5m"]),
            ),
        ];
        for (annotations, fields, want) in cases {
            let mut object = fields;
            object["metadata"] = json!({"name": "local", "creationTimestamp": minutes_ago(5),
                                        "annotations": annotations});
            assert_eq!(Value::from(storage_class(&object, NOW)), want, "{object}");
        }
    }
}
