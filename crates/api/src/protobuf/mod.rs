//! Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`) to JSON, generically,
//! from the message table in [`crate::schema`]; the way back is in [`encode`].
//!
//! A body is the magic `k8s\0` and a `runtime.Unknown`: the object's `apiVersion` and `kind`,
//! and its encoding as the kind's message. Fields become JSON by their table entries, with the
//! types whose JSON differs from their message made to look as upstream's JSON does: `Time`
//! and `MicroTime` as RFC 3339 strings, `Quantity` as its string, `IntOrString` as a number or
//! a string, `RawExtension` and `FieldsV1` as the JSON they carry, `bytes` as base64.
//!
//! Go writes fields that are not pointers to protobuf even when empty, where its JSON leaves
//! them out. The fields of messages whose Go layout the schema knows are decoded as they come,
//! and [`crate::go_json`] then gives the object the JSON Go writes of it (a pointer's empty
//! string is kept, a value's is not). Elsewhere empty strings and zero times are left out.

use base64::Engine;
use serde_json::{Map, Value};

mod encode;

pub use encode::{EncodeError, encode, encode_watch_event};

use crate::schema::{self, Field, Kind, MapValue, Message, Scalar};
pub(crate) use crate::schema::{
    DURATION, FIELDS_V1, INT_OR_STRING, MICRO_TIME, QUANTITY, RAW_EXTENSION, TIME,
};

/// The first bytes of every Kubernetes protobuf body.
pub const MAGIC: &[u8] = b"k8s\0";

/// Deeper nesting than any API object has; deeper input is refused, not recursed into.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the body does not start with the Kubernetes protobuf magic number")]
    NoMagic,
    #[error("truncated or malformed protobuf: {0}")]
    Malformed(&'static str),
    #[error("no kind {kind:?} is registered for version {api_version:?} in protobuf")]
    UnknownKind { api_version: String, kind: String },
    #[error("field {field} of {message}: {detail}")]
    Field {
        message: String,
        field: String,
        detail: String,
    },
}

/// A protobuf wire reader.
struct Reader<'a> {
    bytes: &'a [u8],
}

enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .bytes
                .split_first()
                .ok_or(DecodeError::Malformed("varint past the end"))?;
            self.bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed("varint longer than 10 bytes"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.bytes.len() {
            return Err(DecodeError::Malformed("length past the end"));
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    /// The next field: its tag and value.
    fn field(&mut self) -> Result<Option<(u32, Wire<'a>)>, DecodeError> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag =
            u32::try_from(key >> 3).map_err(|_| DecodeError::Malformed("tag out of range"))?;
        if tag == 0 {
            return Err(DecodeError::Malformed("tag 0"));
        }
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(
                self.take(8)?
                    .try_into()
                    .map_err(|_| DecodeError::Malformed("fixed64"))?,
            )),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| DecodeError::Malformed("length out of range"))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(
                self.take(4)?
                    .try_into()
                    .map_err(|_| DecodeError::Malformed("fixed32"))?,
            )),
            _ => return Err(DecodeError::Malformed("unsupported wire type")),
        };
        Ok(Some((tag, wire)))
    }
}

fn field_error(message: &Message, field: &Field, detail: &str) -> DecodeError {
    DecodeError::Field {
        message: message.name.to_owned(),
        field: field.json.to_owned(),
        detail: detail.to_owned(),
    }
}

fn scalar(scalar: Scalar, wire: &Wire<'_>) -> Result<Value, &'static str> {
    Ok(match (scalar, wire) {
        (Scalar::String, Wire::Bytes(bytes)) => Value::String(
            std::str::from_utf8(bytes)
                .map_err(|_| "a string that is not UTF-8")?
                .to_owned(),
        ),
        (Scalar::Bytes, Wire::Bytes(bytes)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        (Scalar::Bool, Wire::Varint(v)) => Value::Bool(*v != 0),
        // Two's complement, as protobuf writes negative int32s in ten bytes.
        (Scalar::Int32, Wire::Varint(v)) => Value::from(*v as i64 as i32),
        (Scalar::Int64, Wire::Varint(v)) => Value::from(*v as i64),
        (Scalar::Double, Wire::Fixed64(v)) => {
            serde_json::Number::from_f64(f64::from_bits(*v)).map_or(Value::Null, Value::Number)
        }
        (Scalar::Float, Wire::Fixed32(v)) => {
            serde_json::Number::from_f64(f64::from(f32::from_bits(*v)))
                .map_or(Value::Null, Value::Number)
        }
        _ => return Err("wrong wire type"),
    })
}

/// Scalars of a packed repeated field.
fn packed(kind: Scalar, mut bytes: &[u8]) -> Result<Vec<Value>, &'static str> {
    let mut values = Vec::new();
    let mut reader = Reader { bytes };
    while !reader.bytes.is_empty() {
        let wire = match kind {
            Scalar::Double => Wire::Fixed64(u64::from_le_bytes(
                reader
                    .take(8)
                    .map_err(|_| "packed")?
                    .try_into()
                    .map_err(|_| "packed")?,
            )),
            Scalar::Float => Wire::Fixed32(u32::from_le_bytes(
                reader
                    .take(4)
                    .map_err(|_| "packed")?
                    .try_into()
                    .map_err(|_| "packed")?,
            )),
            _ => Wire::Varint(reader.varint().map_err(|_| "packed")?),
        };
        values.push(scalar(kind, &wire)?);
    }
    bytes = reader.bytes;
    debug_assert!(bytes.is_empty());
    Ok(values)
}

/// RFC 3339 in UTC, as upstream's JSON writes `Time` (seconds) and `MicroTime`
/// (microseconds).
fn rfc3339(seconds: i64, nanos: i64, micro: bool) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if micro {
        format!(
            "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{:06}Z",
            nanos / 1000
        )
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    }
}

/// Go's `time.Duration` string (`1h2m3.5s`), as `metav1.Duration` is written in JSON.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let (h, m) = (n / 3_600_000_000_000, n / 60_000_000_000 % 60);
    let s = (n % 60_000_000_000) as f64 / 1e9;
    let mut out = sign.to_owned();
    if h > 0 {
        out += &format!("{h}h");
    }
    if h > 0 || m > 0 {
        out += &format!("{m}m");
    }
    out += &format!("{s}s");
    out
}

/// The JSON of one message-typed value.
fn message_value(name: &str, bytes: &[u8], depth: usize) -> Result<Option<Value>, DecodeError> {
    let message =
        schema::message(name).ok_or(DecodeError::Malformed("a message missing from the schema"))?;
    let object = decode_message(message, bytes, depth + 1)?;
    let get = |key: &str| object.get(key);
    Ok(match name {
        TIME | MICRO_TIME => {
            let seconds = get("seconds").and_then(Value::as_i64).unwrap_or(0);
            let nanos = get("nanos").and_then(Value::as_i64).unwrap_or(0);
            (seconds != 0 || nanos != 0)
                .then(|| Value::String(rfc3339(seconds, nanos, name == MICRO_TIME)))
        }
        QUANTITY => get("string").cloned(),
        INT_OR_STRING => Some(match get("type").and_then(Value::as_i64) {
            Some(1) => get("strVal")
                .cloned()
                .unwrap_or_else(|| Value::String(String::new())),
            _ => get("intVal").cloned().unwrap_or_else(|| Value::from(0)),
        }),
        RAW_EXTENSION | FIELDS_V1 => {
            let raw = get("raw")
                .or_else(|| get("Raw"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let raw = base64::engine::general_purpose::STANDARD
                .decode(raw)
                .unwrap_or_default();
            if raw.is_empty() {
                None
            } else {
                Some(
                    serde_json::from_slice(&raw).map_err(|_| {
                        DecodeError::Malformed("an embedded object that is not JSON")
                    })?,
                )
            }
        }
        DURATION => Some(Value::String(go_duration(
            get("duration").and_then(Value::as_i64).unwrap_or(0),
        ))),
        _ => Some(Value::Object(object)),
    })
}

fn decode_message(
    message: &Message,
    bytes: &[u8],
    depth: usize,
) -> Result<Map<String, Value>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::Malformed("nested too deeply"));
    }
    let mut object = Map::new();
    let mut reader = Reader { bytes };
    while let Some((tag, wire)) = reader.field()? {
        // Unknown fields are skipped, as protobuf readers do.
        let Some(field) = message.field_by_tag(tag) else {
            continue;
        };
        match field.kind {
            Kind::Scalar(kind) => {
                let values = match (&wire, field.repeated, kind) {
                    (Wire::Bytes(bytes), true, k)
                        if !matches!(k, Scalar::String | Scalar::Bytes) =>
                    {
                        packed(k, bytes).map_err(|e| field_error(message, field, e))?
                    }
                    _ => vec![scalar(kind, &wire).map_err(|e| field_error(message, field, e))?],
                };
                for value in values {
                    put(&mut object, message, field, value);
                }
            }
            Kind::Message(name) => {
                let Wire::Bytes(bytes) = wire else {
                    return Err(field_error(message, field, "wrong wire type"));
                };
                let value = message_value(name, bytes, depth)?;
                if field.inline {
                    if let Some(Value::Object(inner)) = value {
                        object.extend(inner);
                    }
                } else if let Some(value) = value {
                    put(&mut object, message, field, value);
                } else if field.repeated {
                    put(&mut object, message, field, Value::Null);
                }
            }
            Kind::Map { key, value } => {
                let Wire::Bytes(entry) = wire else {
                    return Err(field_error(message, field, "wrong wire type"));
                };
                let (k, v) = map_entry(key, value, entry, depth).map_err(|e| match e {
                    DecodeError::Malformed(detail) => field_error(message, field, detail),
                    other => other,
                })?;
                let map = object
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(k, v);
                }
            }
        }
    }
    Ok(object)
}

fn put(object: &mut Map<String, Value>, message: &Message, field: &Field, value: Value) {
    if field.repeated {
        match object
            .entry(field.json)
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(items) => items.push(value),
            other => *other = Value::Array(vec![value]),
        }
    } else if message.go_layout || value.as_str() != Some("") {
        object.insert(field.json.to_owned(), value);
    }
}

fn map_entry(
    key: Scalar,
    value: MapValue,
    bytes: &[u8],
    depth: usize,
) -> Result<(String, Value), DecodeError> {
    let mut reader = Reader { bytes };
    let (mut k, mut v) = (String::new(), Value::Null);
    while let Some((tag, wire)) = reader.field()? {
        match tag {
            1 => {
                k = match scalar(key, &wire).map_err(DecodeError::Malformed)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
            }
            2 => {
                v = match (value, wire) {
                    (MapValue::Scalar(kind), wire) => {
                        scalar(kind, &wire).map_err(DecodeError::Malformed)?
                    }
                    (MapValue::Message(name), Wire::Bytes(bytes)) => {
                        message_value(name, bytes, depth)?.unwrap_or(Value::Null)
                    }
                    _ => return Err(DecodeError::Malformed("wrong wire type in a map value")),
                };
            }
            _ => {}
        }
    }
    if v.is_null() {
        v = match value {
            MapValue::Scalar(Scalar::String | Scalar::Bytes) => Value::String(String::new()),
            _ => v,
        };
    }
    Ok((k, v))
}

/// Decodes a protobuf request body into the JSON object it stands for (with `apiVersion` and
/// `kind`).
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    let unknown = body.strip_prefix(MAGIC).ok_or(DecodeError::NoMagic)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    let mut reader = Reader { bytes: unknown };
    while let Some((tag, wire)) = reader.field()? {
        match (tag, wire) {
            (1, Wire::Bytes(type_meta)) => {
                let mut meta = Reader { bytes: type_meta };
                while let Some((tag, wire)) = meta.field()? {
                    let Wire::Bytes(text) = wire else { continue };
                    let text = std::str::from_utf8(text)
                        .map_err(|_| DecodeError::Malformed("typeMeta is not UTF-8"))?;
                    match tag {
                        1 => api_version = text.to_owned(),
                        2 => kind = text.to_owned(),
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(bytes)) => raw = bytes,
            _ => {}
        }
    }
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version.as_str()),
    };
    let api_kind = schema::kind(group, version, &kind).ok_or_else(|| DecodeError::UnknownKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    })?;
    let message = schema::message(api_kind.message)
        .ok_or(DecodeError::Malformed("a kind whose message is missing"))?;
    let mut object = decode_message(message, raw, 0)?;
    object.insert("apiVersion".into(), Value::String(api_version.clone()));
    object.insert("kind".into(), Value::String(kind.clone()));
    let mut object = Value::Object(object);
    crate::go_json::normalize(group, version, &kind, &mut object);
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A tiny protobuf writer for building test bodies.
    fn key(tag: u32, wire: u8) -> Vec<u8> {
        varint(u64::from(tag) << 3 | u64::from(wire))
    }
    fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }
    fn bytes(tag: u32, data: &[u8]) -> Vec<u8> {
        let mut out = key(tag, 2);
        out.extend(varint(data.len() as u64));
        out.extend_from_slice(data);
        out
    }
    fn int(tag: u32, v: i64) -> Vec<u8> {
        let mut out = key(tag, 0);
        out.extend(varint(v as u64));
        out
    }
    fn body(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [bytes(1, api_version.as_bytes()), bytes(2, kind.as_bytes())].concat();
        let unknown = [
            bytes(1, &type_meta),
            bytes(2, raw),
            bytes(4, b"application/vnd.kubernetes.protobuf"),
        ]
        .concat();
        [MAGIC, &unknown].concat()
    }

    #[test]
    fn decodes_a_configmap_as_kubectl_sends_it() {
        // ObjectMeta: name (1), creationTimestamp (8) zero, labels (11) map.
        let time = bytes(8, &[]);
        let label = bytes(11, &[bytes(1, b"app"), bytes(2, b"web")].concat());
        let meta = [bytes(1, b"settings"), bytes(2, b""), time, label].concat();
        let data = bytes(2, &[bytes(1, b"color"), bytes(2, b"blue")].concat());
        let binary = bytes(3, &[bytes(1, b"blob"), bytes(2, &[0, 1, 2])].concat());
        let raw = [bytes(1, &meta), data, binary].concat();
        let object = decode(&body("v1", "ConfigMap", &raw)).unwrap();
        assert_eq!(
            object,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": "settings", "labels": {"app": "web"}, "creationTimestamp": null
                },
                "data": {"color": "blue"},
                "binaryData": {"blob": "AAEC"},
            })
        );
    }

    #[test]
    fn special_types_look_like_their_json() {
        // A Deployment: replicas (spec 1), a container port (IntOrString in a Service is the
        // usual case; here: strategy.rollingUpdate.maxSurge), a creation time.
        let time = bytes(8, &[int(1, 1_700_000_000), int(2, 0)].concat());
        let meta = [bytes(1, b"web"), time].concat();
        let max_surge = bytes(2, &[int(1, 1), bytes(3, b"25%")].concat());
        let max_unavailable = bytes(1, &[int(1, 0), int(2, 1)].concat());
        let rolling = bytes(2, &[max_unavailable, max_surge].concat());
        let strategy = bytes(4, &[bytes(1, b"RollingUpdate"), rolling].concat());
        let spec = [int(1, 3), strategy].concat();
        let raw = [bytes(1, &meta), bytes(2, &spec)].concat();
        let object = decode(&body("apps/v1", "Deployment", &raw)).unwrap();
        assert_eq!(
            object["metadata"]["creationTimestamp"],
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(object["spec"]["replicas"], 3);
        assert_eq!(
            object["spec"]["strategy"]["rollingUpdate"],
            json!({"maxSurge": "25%", "maxUnavailable": 1})
        );
    }

    #[test]
    fn quantities_and_repeated_messages() {
        // A Pod with two containers, one with a cpu request.
        let quantity = bytes(1, b"100m");
        let requests = bytes(2, &[bytes(1, b"cpu"), bytes(2, &quantity)].concat());
        let resources = bytes(8, &requests);
        let c1 = bytes(2, &[bytes(1, b"a"), bytes(2, b"img"), resources].concat());
        let c2 = bytes(2, &[bytes(1, b"b"), bytes(2, b"img2")].concat());
        let raw = [bytes(1, &bytes(1, b"p")), bytes(2, &[c1, c2].concat())].concat();
        let object = decode(&body("v1", "Pod", &raw)).unwrap();
        assert_eq!(
            object["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "100m"
        );
        assert_eq!(object["spec"]["containers"][1]["name"], "b");
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        assert_eq!(decode(b"{}"), Err(DecodeError::NoMagic));
        assert!(matches!(
            decode(&body("v1", "Frobnicator", &[])),
            Err(DecodeError::UnknownKind { .. })
        ));
        assert!(matches!(
            decode(&[MAGIC, &[0x0a, 0x50, 0x01]].concat()),
            Err(DecodeError::Malformed(_))
        ));
        // Every prefix of a valid body, and pseudo-random bytes after the magic.
        let valid = body("v1", "ConfigMap", &bytes(1, &bytes(1, b"x")));
        for end in 0..valid.len() {
            let _ = decode(&valid[..end]);
        }
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let len = (state % 64) as usize;
            let mut input = MAGIC.to_vec();
            for _ in 0..len {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                input.push((state >> 33) as u8);
            }
            let _ = decode(&input);
        }
        // Nesting deeper than any object is refused.
        let mut deep = bytes(1, b"x");
        for _ in 0..200 {
            deep = bytes(1, &deep);
        }
        assert!(decode(&body("v1", "ConfigMap", &deep)).is_err());
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(rfc3339(0, 0, false), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400, 0, false), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339(1_700_000_000, 123_456_789, true),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(go_duration(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(0), "0s");
    }
}
