//! Property tests over everything that parses client input (and the protobuf encoder of
//! answers): protobuf bodies, JSON and merge
//! patches, strategic merge patches, label and field selectors, and the watch/field checks.
//! Arbitrary input must give a result or an error, never a panic. This is the short fuzz run
//! kept in CI; `PROPTEST_CASES` raises the count for a longer one.

use cox_api::fields::FieldSelector;
use cox_api::labels::Selector;
use proptest::prelude::*;
use serde_json::{Value, json};

/// JSON biased towards the keys and directives the patch engines give meaning to.
fn json_value() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "metadata",
        "labels",
        "name",
        "spec",
        "containers",
        "env",
        "image",
        "ports",
        "containerPort",
        "volumes",
        "emptyDir",
        "hostPath",
        "finalizers",
        "$patch",
        "$retainKeys",
        "$setElementOrder/containers",
        "$deleteFromPrimitiveList/finalizers",
        "template",
        "value",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec!["replace", "delete", "merge", "a", "", "web"])
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone().prop_map(str::to_owned), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "b"}, "finalizers": ["x"]},
        "spec": {
            "containers": [{"name": "web", "image": "nginx", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]}],
            "volumes": [{"name": "v", "emptyDir": {}}],
        },
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn protobuf_bodies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut body = b"k8s\0".to_vec();
        body.extend(bytes);
        let _ = cox_api::protobuf::decode(&body);
    }

    /// Whatever JSON an answer holds, encoding it gives bytes or an error; what encodes
    /// decodes again.
    #[test]
    fn protobuf_encoding_never_panics(body in json_value()) {
        let mut object = json!({"apiVersion": "v1", "kind": "Pod"});
        if let (Some(object), Value::Object(body)) = (object.as_object_mut(), body) {
            object.extend(body);
            object.insert("apiVersion".into(), json!("v1"));
            object.insert("kind".into(), json!("Pod"));
        }
        if let Ok(encoded) = cox_api::protobuf::encode(&object) {
            prop_assert!(cox_api::protobuf::decode(&encoded).is_ok());
        }
    }

    #[test]
    fn strategic_merge_never_panics(patch in json_value()) {
        let _ = cox_api::strategic_merge::apply(&pod(), &patch, "k8s.io.api.core.v1.Pod");
    }

    #[test]
    fn merge_and_json_patches_never_panic(patch in json_value()) {
        let bytes = serde_json::to_vec(&patch).unwrap_or_default();
        let _ = cox_api::patch::merge_patch(&pod(), &bytes);
        let _ = cox_api::patch::json_patch(&pod(), &bytes);
    }

    #[test]
    fn field_checks_never_panic(object in json_value()) {
        let _ = cox_api::strict::unknown_fields("", "v1", "Pod", &object);
        let mut pruned = object.clone();
        cox_api::strict::prune_unknown("apps", "v1", "Deployment", &mut pruned);
        let _ = cox_api::validate::validate("", "Pod", &object);
        let mut defaulted = object.clone();
        cox_api::defaults::apply("apps", "Deployment", &mut defaulted);
        let mut pod = object.clone();
        cox_api::defaults::pod_create(&mut pod);
        cox_api::defaults::pod_admission(&mut pod);
        for (group, kind) in [("", "LimitRange"), ("networking.k8s.io", "NetworkPolicy"),
                              ("discovery.k8s.io", "EndpointSlice"), ("", "Endpoints"),
                              ("networking.k8s.io", "IngressClass")] {
            let mut defaulted = object.clone();
            cox_api::defaults::apply(group, kind, &mut defaulted);
        }
        for (group, kind) in [("", "Pod"), ("apps", "Deployment"), ("", "Node"),
                              ("", "PersistentVolumeClaim"), ("", "PersistentVolume")] {
            let _ = cox_api::go_decode::type_error(group, "v1", kind, &object);
            let _ = cox_api::validate::validate_update(group, kind, &crate::pod(), &object);
            let _ = cox_api::validate::validate_update(group, kind, &object, &crate::pod());
        }
        let bytes = serde_json::to_vec(&object).unwrap_or_default();
        let _ = cox_api::strict::duplicate_fields(&bytes);
        let selected = cox_api::fields::selected_paths("", "pods").decode(&bytes);
        prop_assert!(selected.is_ok());
        let mut service = object;
        cox_api::service::default_service(&mut service);
        let _ = cox_api::service::validate_service(&service, (30000, 32767));
    }

    #[test]
    fn selectors_never_panic(text in "[a-z=!,() .\\-_/0-9<>]{0,40}") {
        if let Ok(selector) = Selector::parse(&text) {
            // A parsed selector prints to one that parses to the same thing.
            let again = Selector::parse(&selector.to_string());
            prop_assert_eq!(again.ok(), Some(selector));
        }
        let _ = FieldSelector::parse(&text);
    }
}
