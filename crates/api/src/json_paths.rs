//! Decoding only some paths of a JSON document. The watch cache needs an object's labels,
//! resourceVersion and selectable fields, not the whole tree: reading the rest as
//! `IgnoredAny` scans it without building (and then freeing) a `Value` for every field.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// A set of dotted paths (`metadata.labels`, `spec.nodeName`) as a tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paths {
    /// Everything under this node is wanted.
    whole: bool,
    children: BTreeMap<String, Paths>,
}

impl Paths {
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Self {
        let mut root = Self::default();
        for path in paths {
            let mut node = &mut root;
            for segment in path.split('.') {
                node = node.children.entry(segment.to_owned()).or_default();
            }
            node.whole = true;
            node.children.clear();
        }
        root
    }

    /// The document with only the wanted paths: objects on the way keep only the wanted
    /// keys; a wanted path's value is decoded whole. Where the document has something other
    /// than an object on the way to a wanted path, that part is `null`. Malformed JSON is an
    /// error, as for a full decode.
    pub fn decode(&self, json: &[u8]) -> serde_json::Result<Value> {
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let value = Pruned(self).deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }
}

struct Pruned<'a>(&'a Paths);

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.0.whole {
            return de::Deserialize::deserialize(deserializer);
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Key(key)) = map.next_key()? {
            match self.0.children.get(key.as_ref()) {
                Some(wanted) => {
                    let value = map.next_value_seed(Pruned(wanted))?;
                    out.insert(key.into_owned(), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// An object's key, borrowed from the input where it has no escapes.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }

            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }

            fn visit_string<E>(self, key: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_only_the_wanted_paths() {
        let paths = Paths::new([
            "metadata.labels",
            "metadata.resourceVersion",
            "spec.nodeName",
        ]);
        let doc = json!({
            "apiVersion": "v1",
            "metadata": {"name": "p", "labels": {"app": "web", "tier": {"odd": [1, 2]}}, "uid": "u"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"}
        });
        let got = paths.decode(&serde_json::to_vec(&doc).unwrap()).unwrap();
        assert_eq!(
            got,
            json!({"metadata": {"labels": {"app": "web", "tier": {"odd": [1, 2]}}}, "spec": {"nodeName": "n1"}})
        );
    }

    #[test]
    fn escaped_keys_and_odd_shapes() {
        let paths = Paths::new(["spec.nodeName", "a\"b"]);
        let got = paths
            .decode(br#"{"spec": [1, {"nodeName": "x"}], "a\"b": {"c": 1}, "d": "e"}"#)
            .unwrap();
        assert_eq!(got, json!({"spec": null, "a\"b": {"c": 1}}));
        // A shorter path covers a longer one given before it.
        let paths = Paths::new(["spec.nodeName", "spec"]);
        let got = paths
            .decode(br#"{"spec": {"nodeName": "n", "x": 1}}"#)
            .unwrap();
        assert_eq!(got, json!({"spec": {"nodeName": "n", "x": 1}}));
    }

    #[test]
    fn malformed_input_is_an_error() {
        let paths = Paths::new(["metadata.labels"]);
        for bad in [
            &br#"{"metadata": {"labels": {"a": }}}"#[..],
            br#"{"other": [1, 2"#,
            br#"{"metadata": {}} trailing"#,
            b"",
        ] {
            assert!(
                paths.decode(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
