//! `events.k8s.io/v1` Events and core `v1` ones: the same objects, some fields under other
//! names (the newer API's `deprecated*` fields are the core API's originals).

use serde_json::Value;

use super::rename;

/// `events.k8s.io/v1` name, core `v1` name.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

pub(super) fn to_core(mut event: Value) -> Value {
    for (new, core) in RENAMED {
        rename(&mut event, new, core);
    }
    event
}

pub(super) fn from_core(mut event: Value) -> Value {
    for (new, core) in RENAMED {
        rename(&mut event, core, new);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_move_to_their_names_and_back() {
        let core = json!({
            "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": "Started", "message": "Started container", "source": {"component": "kubelet"},
            "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:01Z",
            "count": 2, "type": "Normal", "reportingComponent": "kubelet", "reportingInstance": "n1",
        });
        let new = from_core(core.clone());
        assert_eq!(new["regarding"]["name"], "p");
        assert_eq!(new["note"], "Started container");
        assert_eq!(new["deprecatedSource"]["component"], "kubelet");
        assert_eq!(new["deprecatedCount"], 2);
        assert_eq!(new["reportingController"], "kubelet");
        assert_eq!(new["reportingInstance"], "n1");
        assert!(new.get("involvedObject").is_none() && new.get("message").is_none());
        assert_eq!(to_core(new), core);
    }
}
