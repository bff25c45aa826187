//! Patches as upstream applies them to built-in objects: JSON patch (RFC 6902) and JSON merge
//! patch (RFC 7386). Strategic merge patch is not implemented yet; the API server answers 415
//! for it rather than guess at its list semantics.

use serde_json::Value;

/// The patch types of the `Content-Type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    StrategicMerge,
    Apply,
}

impl PatchType {
    pub fn from_content_type(media_type: &str) -> Option<Self> {
        match media_type {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Why a patch could not be applied; the API server answers these with 422 or 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("the patch is not valid JSON: {0}")]
    Decode(String),
    #[error("{0}")]
    Apply(String),
}

/// Applies a JSON patch (a list of operations) to `object`.
pub fn json_patch(object: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let patch: json_patch::Patch =
        serde_json::from_slice(patch).map_err(|e| PatchError::Decode(e.to_string()))?;
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch).map_err(|e| PatchError::Apply(e.to_string()))?;
    Ok(patched)
}

/// Applies a JSON merge patch: objects merge, `null` deletes, everything else replaces.
pub fn merge_patch(object: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let patch: Value =
        serde_json::from_slice(patch).map_err(|e| PatchError::Decode(e.to_string()))?;
    if !patch.is_object() {
        return Err(PatchError::Apply(
            "a merge patch must be a JSON object".into(),
        ));
    }
    let mut patched = object.clone();
    json_patch::merge(&mut patched, &patch);
    Ok(patched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_merges_objects_and_deletes_nulls() {
        let object = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"x": "y"}, "list": [1, 2]});
        let patched = merge_patch(
            &object,
            br#"{"metadata":{"labels":{"a":null,"c":"3"}},"list":[3]}"#,
        )
        .unwrap();
        assert_eq!(
            patched,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "data": {"x": "y"}, "list": [3]})
        );
        assert!(merge_patch(&object, b"[1]").is_err());
        assert!(matches!(
            merge_patch(&object, b"{"),
            Err(PatchError::Decode(_))
        ));
    }

    #[test]
    fn json_patch_operations() {
        let object = json!({"spec": {"containers": [{"name": "a"}]}, "metadata": {"annotations": {"x": "1"}}});
        let patch = br#"[
            {"op": "add", "path": "/spec/containers/-", "value": {"name": "b"}},
            {"op": "replace", "path": "/metadata/annotations/x", "value": "2"},
            {"op": "test", "path": "/spec/containers/0/name", "value": "a"}
        ]"#;
        let patched = json_patch(&object, patch).unwrap();
        assert_eq!(patched["spec"]["containers"][1]["name"], "b");
        assert_eq!(patched["metadata"]["annotations"]["x"], "2");
        let failing = br#"[{"op": "test", "path": "/spec/containers/0/name", "value": "zzz"}]"#;
        assert!(matches!(
            json_patch(&object, failing),
            Err(PatchError::Apply(_))
        ));
        assert!(matches!(
            json_patch(&object, br#"[{"op": "remove", "path": "/nope"}]"#),
            Err(PatchError::Apply(_))
        ));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json"),
            Some(PatchType::Merge)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }
}
