//! Reading CRI messages from JSON the way crictl does: every field optional.
//!
//! The generated CRI types derive `Deserialize`, but serde requires every non-`Option` field to be
//! present, while crictl's config files (and protobuf's JSON rules) let any field be left out,
//! meaning its zero value. [`from_value`] feeds a JSON value through a deserializer that answers
//! each field the type asks for but the document lacks with that field's zero value, chosen by
//! the type's own hint (`deserialize_string` gets `""`, `deserialize_seq` gets `[]`, a nested
//! struct gets all of its fields missing, and so on). No field list is written by hand.

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::Value;

/// Deserializes `T` from `value`, treating every missing field as its zero value.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    T::deserialize(Node::Present(value))
}

/// A JSON value, or the absence of one (a field the document left out).
enum Node {
    Present(Value),
    Missing,
}

type Error = serde_json::Error;

impl<'de> Deserializer<'de> for Node {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Missing => visitor.visit_unit(),
            Node::Present(Value::Array(items)) => visitor.visit_seq(Items(items.into_iter())),
            Node::Present(Value::Object(map)) => visitor.visit_map(Fields::new(map, &[])),
            Node::Present(other) => other.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Node::Missing | Node::Present(Value::Null) => {
                visitor.visit_map(Fields::new(serde_json::Map::new(), fields))
            }
            Node::Present(Value::Object(map)) => visitor.visit_map(Fields::new(map, fields)),
            Node::Present(other) => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Missing | Node::Present(Value::Null) => visitor.visit_none(),
            present => visitor.visit_some(present),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Missing | Node::Present(Value::Null) => {
                visitor.visit_seq(Items(Vec::new().into_iter()))
            }
            Node::Present(Value::Array(items)) => visitor.visit_seq(Items(items.into_iter())),
            // Protobuf's JSON form writes `bytes` fields as base64 strings; take them as text.
            Node::Present(Value::String(text)) => visitor.visit_seq(Items(
                text.bytes()
                    .map(Value::from)
                    .collect::<Vec<_>>()
                    .into_iter(),
            )),
            Node::Present(other) => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Missing | Node::Present(Value::Null) => {
                visitor.visit_map(Fields::new(serde_json::Map::new(), &[]))
            }
            Node::Present(Value::Object(map)) => visitor.visit_map(Fields::new(map, &[])),
            Node::Present(other) => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Missing | Node::Present(Value::Null) => visitor.visit_str(""),
            Node::Present(other) => other.deserialize_string(visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Missing | Node::Present(Value::Null) => visitor.visit_bool(false),
            Node::Present(other) => other.deserialize_bool(visitor),
        }
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_integer(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_integer(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_integer(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_integer(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Missing | Node::Present(Value::Null) => visitor.visit_f64(0.0),
            Node::Present(other) => other.deserialize_f64(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Node::Missing => Err(de::Error::custom(format!("missing value for {name}"))),
            Node::Present(other) => other.deserialize_enum(name, variants, visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i128 u8 u16 u128 f32 char bytes byte_buf unit unit_struct newtype_struct
        tuple tuple_struct identifier ignored_any
    }
}

impl Node {
    /// Integers may be written as numbers or, as protobuf's JSON form does for 64-bit ones, as
    /// strings.
    fn deserialize_integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Missing | Node::Present(Value::Null) => visitor.visit_i64(0),
            Node::Present(Value::String(text)) => match text.parse::<i64>() {
                Ok(number) => visitor.visit_i64(number),
                Err(_) => Err(de::Error::invalid_value(
                    de::Unexpected::Str(&text),
                    &"an integer",
                )),
            },
            Node::Present(other) => other.deserialize_any(visitor),
        }
    }
}

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

impl<'de> IntoDeserializer<'de, Error> for Node {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|value| seed.deserialize(Node::Present(value)))
            .transpose()
    }
}

/// The entries of a JSON object, followed by every expected field the object lacks.
struct Fields {
    entries: Vec<(String, Node)>,
    next: usize,
    value: Option<Node>,
}

impl Fields {
    fn new(map: serde_json::Map<String, Value>, expected: &'static [&'static str]) -> Self {
        let missing: Vec<(String, Node)> = expected
            .iter()
            .filter(|field| !map.contains_key(**field))
            .map(|field| (field.to_string(), Node::Missing))
            .collect();
        let mut entries: Vec<(String, Node)> = map
            .into_iter()
            .map(|(key, value)| (key, Node::Present(value)))
            .collect();
        entries.extend(missing);
        Fields {
            entries,
            next: 0,
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Fields {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(entry) = self.entries.get_mut(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let key = std::mem::take(&mut entry.0);
        self.value = Some(std::mem::replace(&mut entry.1, Node::Missing));
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(node) => seed.deserialize(node),
            None => Err(de::Error::custom("value requested before its key")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{ContainerConfig, PodSandboxConfig};

    #[test]
    fn fills_missing_fields_with_zero_values() {
        let config: PodSandboxConfig = from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "log_directory": "/tmp/logs",
            "port_mappings": [{"container_port": 80, "host_port": 8080}],
            "labels": {"app": "web"}
        }))
        .expect("config parses");
        let metadata = config.metadata.expect("metadata");
        assert_eq!(metadata.name, "web");
        assert_eq!(metadata.attempt, 0);
        assert_eq!(config.log_directory, "/tmp/logs");
        assert_eq!(config.port_mappings[0].host_port, 8080);
        assert_eq!(config.port_mappings[0].host_ip, "");
        assert_eq!(config.labels.get("app").map(String::as_str), Some("web"));
        assert!(config.linux.is_none());
        assert!(config.annotations.is_empty());
    }

    #[test]
    fn nested_messages_and_bad_types() {
        let config: ContainerConfig = from_value(serde_json::json!({
            "metadata": {"name": "c"},
            "image": {"image": "busybox"},
            "command": ["sh", "-c", "echo hi"],
            "envs": [{"key": "A", "value": "1"}],
            "linux": {"resources": {"memory_limit_in_bytes": "33554432"}}
        }))
        .expect("config parses");
        assert_eq!(config.command.len(), 3);
        let resources = config
            .linux
            .and_then(|linux| linux.resources)
            .expect("resources");
        assert_eq!(resources.memory_limit_in_bytes, 33_554_432);
        assert_eq!(resources.cpu_shares, 0);

        let bad = from_value::<ContainerConfig>(serde_json::json!({"command": "sh"}));
        assert!(bad.is_err(), "a string where a list belongs is an error");
    }
}
