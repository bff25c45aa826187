//! CRI messages as protobuf's canonical JSON, the form crictl prints (`protojson` with
//! `EmitDefaultValues`): lowerCamelCase field names, 64-bit integers as strings, enums by
//! name, unset message fields left out, zero values and empty lists kept, map keys sorted.
//!
//! The generated CRI types derive `serde::Serialize` with their Rust field names and enums as
//! plain `i32`s; [`to_json`] serializes them through a serializer that applies protobuf's JSON
//! rules instead. Which `i32` fields are enums is the one thing the types do not tell, so
//! [`enum_name`] lists them (every `enumeration` field of `runtime.v1`).

use serde::Serialize;
use serde::ser::{self, Impossible};

use super::json::Json;
use crate::v1;

/// `message` as protobuf JSON.
pub(crate) fn to_json<T: Serialize + ?Sized>(message: &T) -> Result<Json, Error> {
    message.serialize(ProtoJson)
}

/// A failure to serialize; the CRI types never cause one, but serde's contract requires it.
#[derive(Debug, thiserror::Error)]
#[error("encode as protobuf JSON: {0}")]
pub(crate) struct Error(String);

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        Error(message.to_string())
    }
}

/// The protobuf name of the enum value in field `field` of message `message`, for every
/// enum-typed field of CRI v1. `None` for other fields and for values this client does not
/// know (protobuf JSON prints those as numbers).
pub(crate) fn enum_name(message: &str, field: &str, value: i32) -> Option<&'static str> {
    fn name<E: TryFrom<i32>>(value: i32, as_str: fn(&E) -> &'static str) -> Option<&'static str> {
        E::try_from(value).ok().map(|e| as_str(&e))
    }
    match (message, field) {
        ("PortMapping", "protocol") => name(value, v1::Protocol::as_str_name),
        ("Mount", "propagation") => name(value, v1::MountPropagation::as_str_name),
        ("UserNamespace", "mode")
        | ("NamespaceOption", "network" | "pid" | "ipc")
        | ("WindowsNamespaceOption", "network") => name(value, v1::NamespaceMode::as_str_name),
        (
            "LinuxSandboxSecurityContext" | "LinuxContainerSecurityContext",
            "supplemental_groups_policy",
        ) => name(value, v1::SupplementalGroupsPolicy::as_str_name),
        ("SecurityProfile", "profile_type") => {
            name(value, v1::security_profile::ProfileType::as_str_name)
        }
        ("PodSandboxStatus" | "PodSandboxStateValue" | "PodSandbox", "state") => {
            name(value, v1::PodSandboxState::as_str_name)
        }
        ("ContainerStateValue" | "Container" | "ContainerStatus", "state") => {
            name(value, v1::ContainerState::as_str_name)
        }
        ("ContainerEventResponse", "container_event_type") => {
            name(value, v1::ContainerEventType::as_str_name)
        }
        ("Metric", "metric_type") => name(value, v1::MetricType::as_str_name),
        ("LinuxRuntimeConfiguration", "cgroup_driver") => {
            name(value, v1::CgroupDriver::as_str_name)
        }
        _ => None,
    }
}

/// A protobuf field name's JSON name: `pod_sandbox_id` → `podSandboxId`.
pub(crate) fn json_name(field: &str) -> String {
    let mut name = String::with_capacity(field.len());
    let mut upper_next = false;
    for c in field.chars() {
        if c == '_' {
            upper_next = true;
        } else if upper_next {
            name.push(c.to_ascii_uppercase());
            upper_next = false;
        } else {
            name.push(c);
        }
    }
    name
}

struct ProtoJson;

fn number(value: impl ToString) -> Result<Json, Error> {
    Ok(Json::Number(value.to_string()))
}

fn float(value: f64) -> Result<Json, Error> {
    Ok(if value.is_nan() {
        Json::String("NaN".to_string())
    } else if value.is_infinite() {
        Json::String(if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string())
    } else {
        Json::Number(value.to_string())
    })
}

impl ser::Serializer for ProtoJson {
    type Ok = Json;
    type Error = Error;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Impossible<Json, Error>;
    type SerializeMap = Map;
    type SerializeStruct = Message;
    type SerializeStructVariant = Impossible<Json, Error>;

    fn serialize_bool(self, v: bool) -> Result<Json, Error> {
        Ok(Json::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Json, Error> {
        number(v)
    }
    fn serialize_i16(self, v: i16) -> Result<Json, Error> {
        number(v)
    }
    fn serialize_i32(self, v: i32) -> Result<Json, Error> {
        number(v)
    }
    // 64-bit integers are strings in protobuf JSON.
    fn serialize_i64(self, v: i64) -> Result<Json, Error> {
        Ok(Json::String(v.to_string()))
    }
    fn serialize_u8(self, v: u8) -> Result<Json, Error> {
        number(v)
    }
    fn serialize_u16(self, v: u16) -> Result<Json, Error> {
        number(v)
    }
    fn serialize_u32(self, v: u32) -> Result<Json, Error> {
        number(v)
    }
    fn serialize_u64(self, v: u64) -> Result<Json, Error> {
        Ok(Json::String(v.to_string()))
    }
    fn serialize_f32(self, v: f32) -> Result<Json, Error> {
        float(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Json, Error> {
        float(v)
    }
    fn serialize_char(self, v: char) -> Result<Json, Error> {
        Ok(Json::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Json, Error> {
        Ok(Json::String(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Json, Error> {
        Ok(Json::Array(
            v.iter().map(|b| Json::Number(b.to_string())).collect(),
        ))
    }
    fn serialize_none(self) -> Result<Json, Error> {
        Ok(Json::Absent)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Json, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Json, Error> {
        Ok(Json::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Json, Error> {
        Ok(Json::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Json, Error> {
        Ok(Json::String(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Json, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Json, Error> {
        Ok(Json::Object(vec![(
            json_name(variant),
            value.serialize(self)?,
        )]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq, Error> {
        Ok(Seq(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Seq, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(ser::Error::custom(format!(
            "unexpected tuple variant in {name}"
        )))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Map, Error> {
        Ok(Map {
            entries: Vec::new(),
            key: None,
        })
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Message, Error> {
        Ok(Message {
            name,
            fields: Vec::with_capacity(len),
        })
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(ser::Error::custom(format!(
            "unexpected struct variant in {name}"
        )))
    }
}

struct Seq(Vec<Json>);

impl Seq {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let item = match value.serialize(ProtoJson)? {
            Json::Absent => Json::Null,
            item => item,
        };
        self.0.push(item);
        Ok(())
    }
}

impl ser::SerializeSeq for Seq {
    type Ok = Json;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<Json, Error> {
        Ok(Json::Array(self.0))
    }
}

impl ser::SerializeTuple for Seq {
    type Ok = Json;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<Json, Error> {
        Ok(Json::Array(self.0))
    }
}

impl ser::SerializeTupleStruct for Seq {
    type Ok = Json;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<Json, Error> {
        Ok(Json::Array(self.0))
    }
}

/// A protobuf map: keys are kept as written and sorted, as protojson does.
struct Map {
    entries: Vec<(String, Json)>,
    key: Option<String>,
}

impl ser::SerializeMap for Map {
    type Ok = Json;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        let key = match key.serialize(ProtoJson)? {
            Json::String(text) | Json::Number(text) => text,
            Json::Bool(b) => b.to_string(),
            other => return Err(ser::Error::custom(format!("unsupported map key {other:?}"))),
        };
        self.key = Some(key);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| <Error as ser::Error>::custom("map value without a key"))?;
        let value = match value.serialize(ProtoJson)? {
            Json::Absent => Json::Null,
            value => value,
        };
        self.entries.push((key, value));
        Ok(())
    }
    fn end(mut self) -> Result<Json, Error> {
        self.entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        Ok(Json::Object(self.entries))
    }
}

/// A protobuf message: field names in JSON form, enum fields by name.
struct Message {
    name: &'static str,
    fields: Vec<(String, Json)>,
}

impl ser::SerializeStruct for Message {
    type Ok = Json;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let mut value = value.serialize(ProtoJson)?;
        if let Json::Number(text) = &value
            && let Ok(number) = text.parse::<i32>()
            && let Some(name) = enum_name(self.name, key, number)
        {
            value = Json::String(name.to_string());
        }
        self.fields.push((json_name(key), value));
        Ok(())
    }
    fn end(self) -> Result<Json, Error> {
        Ok(Json::Object(self.fields))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn field_names() {
        assert_eq!(json_name("pod_sandbox_id"), "podSandboxId");
        assert_eq!(json_name("usage_core_nano_seconds"), "usageCoreNanoSeconds");
        assert_eq!(json_name("id"), "id");
        assert_eq!(json_name("type"), "type");
    }

    #[test]
    fn container_as_protobuf_json() {
        let container = v1::Container {
            id: "c1".into(),
            pod_sandbox_id: "p1".into(),
            metadata: Some(v1::ContainerMetadata {
                name: "web".into(),
                attempt: 2,
            }),
            image: None,
            image_ref: "sha256:abc".into(),
            state: v1::ContainerState::ContainerRunning as i32,
            created_at: 1_714_557_600_000_000_000,
            labels: HashMap::from([
                ("z".to_string(), "1".to_string()),
                ("a".to_string(), "2".to_string()),
            ]),
            annotations: HashMap::new(),
            image_id: String::new(),
        };
        let json = to_json(&v1::ListContainersResponse {
            containers: vec![container],
        })
        .expect("serializes");
        let expected = r#"{
  "containers": [
    {
      "id": "c1",
      "podSandboxId": "p1",
      "metadata": {
        "name": "web",
        "attempt": 2
      },
      "imageRef": "sha256:abc",
      "state": "CONTAINER_RUNNING",
      "createdAt": "1714557600000000000",
      "labels": {
        "a": "2",
        "z": "1"
      },
      "annotations": {},
      "imageId": ""
    }
  ]
}"#;
        assert_eq!(json.to_pretty(), expected);
    }

    #[test]
    fn enums_in_nested_messages_and_unknown_values() {
        let status = v1::ContainerStatus {
            state: 42,
            mounts: vec![v1::Mount {
                propagation: v1::MountPropagation::PropagationBidirectional as i32,
                ..Default::default()
            }],
            ..Default::default()
        };
        let json = to_json(&status).expect("serializes");
        let text = json.to_pretty();
        assert!(text.contains("\"state\": 42"), "{text}");
        assert!(
            text.contains("\"propagation\": \"PROPAGATION_BIDIRECTIONAL\""),
            "{text}"
        );
        assert!(text.contains("\"exitCode\": 0"), "{text}");
        assert!(
            !text.contains("\"resources\""),
            "unset messages are left out: {text}"
        );

        let pod = v1::PodSandbox {
            state: v1::PodSandboxState::SandboxNotready as i32,
            ..Default::default()
        };
        let text = to_json(&pod).expect("serializes").to_pretty();
        assert!(text.contains("\"state\": \"SANDBOX_NOTREADY\""), "{text}");
    }

    #[test]
    fn unsigned_64_bit_values_are_strings() {
        let image = v1::Image {
            id: "sha256:1".into(),
            size: 1234,
            uid: Some(v1::Int64Value { value: 0 }),
            ..Default::default()
        };
        let text = to_json(&image).expect("serializes").to_pretty();
        assert!(text.contains("\"size\": \"1234\""), "{text}");
        assert!(
            text.contains("\"uid\": {\n    \"value\": \"0\"\n  }"),
            "{text}"
        );
        assert!(text.contains("\"repoTags\": []"), "{text}");
    }
}
