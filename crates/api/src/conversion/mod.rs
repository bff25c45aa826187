//! Resources served at more than one version keep one stored form, as upstream's storage
//! versions do: `autoscaling/v1` HorizontalPodAutoscalers are stored as `autoscaling/v2` ones,
//! `events.k8s.io/v1` Events as core `v1` ones. A request at another version is converted to
//! the stored form on the way in, and its answers back on the way out.

mod autoscaling;
mod events;

use serde_json::{Value, json};

use crate::registry::{self, Resource};

/// The resource `served`'s objects are stored as, when that is another version.
pub fn storage_of(served: &Resource) -> Option<&'static Resource> {
    match (served.group, served.version, served.plural) {
        ("autoscaling", "v1", "horizontalpodautoscalers") => {
            registry::find("autoscaling", "v2", "horizontalpodautoscalers")
        }
        ("events.k8s.io", "v1", "events") => registry::find("", "v1", "events"),
        _ => None,
    }
}

/// An object in `served`'s form, as it is stored. Objects of resources stored as served pass
/// unchanged.
pub fn to_storage(served: &Resource, object: Value) -> Value {
    let Some(storage) = storage_of(served) else {
        return object;
    };
    let mut converted = match (served.group, served.plural) {
        ("autoscaling", _) => autoscaling::v1_to_v2(object),
        ("events.k8s.io", _) => events::to_core(object),
        _ => object,
    };
    set_type(&mut converted, storage, storage.kind);
    converted
}

/// A stored object as `served` shows it.
pub fn from_storage(served: &Resource, object: Value) -> Value {
    if storage_of(served).is_none() {
        return object;
    }
    let mut converted = match (served.group, served.plural) {
        ("autoscaling", _) => autoscaling::v2_to_v1(object),
        ("events.k8s.io", _) => events::from_core(object),
        _ => object,
    };
    set_type(&mut converted, served, served.kind);
    converted
}

/// A list of stored objects (or a lone object: a watch event's, a delete's answer) as `served`
/// shows it. A `Status` passes unchanged.
pub fn answer_from_storage(served: &Resource, mut answer: Value) -> Value {
    if storage_of(served).is_none() || answer["kind"] == "Status" {
        return answer;
    }
    let is_list = answer["kind"]
        .as_str()
        .is_some_and(|kind| kind.ends_with("List"))
        && answer["items"].is_array();
    if !is_list {
        return from_storage(served, answer);
    }
    if let Some(items) = answer.get_mut("items").and_then(Value::as_array_mut) {
        for item in items.iter_mut() {
            *item = from_storage(served, item.take());
        }
    }
    set_type(&mut answer, served, &format!("{}List", served.kind));
    answer
}

fn set_type(object: &mut Value, resource: &Resource, kind: &str) {
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".into(), json!(resource.api_version()));
        map.insert("kind".into(), json!(kind));
    }
}

/// Moves `from` to `to` in an object (when present), keeping the value.
fn rename(object: &mut Value, from: &str, to: &str) {
    if let Some(map) = object.as_object_mut()
        && let Some(value) = map.remove(from)
    {
        map.insert(to.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_resources_with_another_storage_version_convert() {
        let configmaps = registry::find("", "v1", "configmaps").expect("registered");
        assert!(storage_of(configmaps).is_none());
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}});
        assert_eq!(to_storage(configmaps, object.clone()), object);
        let hpa_v2 = registry::find("autoscaling", "v2", "horizontalpodautoscalers").expect("v2");
        assert!(storage_of(hpa_v2).is_none());
        let hpa_v1 = registry::find("autoscaling", "v1", "horizontalpodautoscalers").expect("v1");
        assert_eq!(storage_of(hpa_v1).map(|r| r.version), Some("v2"));
    }

    #[test]
    fn lists_convert_item_by_item_and_statuses_pass() {
        let served = registry::find("events.k8s.io", "v1", "events").expect("registered");
        let list = json!({"apiVersion": "v1", "kind": "EventList", "metadata": {"resourceVersion": "5"},
                          "items": [{"apiVersion": "v1", "kind": "Event", "message": "hi"}]});
        let answer = answer_from_storage(served, list);
        assert_eq!(answer["apiVersion"], "events.k8s.io/v1");
        assert_eq!(answer["kind"], "EventList");
        assert_eq!(answer["items"][0]["note"], "hi");
        assert_eq!(answer["items"][0]["apiVersion"], "events.k8s.io/v1");
        let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Success"});
        assert_eq!(answer_from_storage(served, status.clone()), status);
    }
}
