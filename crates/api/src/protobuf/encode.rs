//! JSON objects to Kubernetes protobuf, generically, from the message table in
//! [`crate::schema`]: the answers for clients that ask for protobuf first.
//!
//! The inverse of the decoder beside it. An object becomes the magic `k8s\0` and a
//! `runtime.Unknown` holding its `apiVersion`, `kind` and its encoding as the kind's message; a
//! watch event becomes a length-prefixed `WatchEvent` whose object is such an envelope, as
//! upstream's protobuf watch stream frames them. Fields are written in tag order; fields absent
//! from the JSON are left out (a reader takes them as their zero value, as Go's JSON decoding
//! does); repeated scalars are not packed (the API's messages are proto2); map entries are
//! written sorted by key, as Go's marshalling does.

use base64::Engine;
use serde_json::{Map, Value};

use super::{
    DURATION, FIELDS_V1, INT_OR_STRING, MAGIC, MAX_DEPTH, MICRO_TIME, QUANTITY, RAW_EXTENSION, TIME,
};
use crate::schema::{self, Field, Kind, MapValue, Message, Scalar};

/// `apiextensions.k8s.io/v1` `JSON`: raw JSON in a `raw` field, as `RawExtension`.
const EXTENSIONS_JSON: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON";
const WATCH_EVENT: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("not a JSON object with apiVersion and kind")]
    NotAnObject,
    #[error("no kind {kind:?} is registered for version {api_version:?} in protobuf")]
    UnknownKind { api_version: String, kind: String },
    #[error("field {field} of {message}: {detail}")]
    Field {
        message: String,
        field: String,
        detail: String,
    },
    #[error("{0}")]
    Malformed(&'static str),
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn key(out: &mut Vec<u8>, tag: u32, wire: u8) {
    varint(out, u64::from(tag) << 3 | u64::from(wire));
}

fn length_delimited(out: &mut Vec<u8>, tag: u32, data: &[u8]) {
    key(out, tag, 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn varint_field(out: &mut Vec<u8>, tag: u32, value: u64) {
    key(out, tag, 0);
    varint(out, value);
}

/// Encodes an API object (with `apiVersion` and `kind`) as a protobuf body.
pub fn encode(object: &Value) -> Result<Vec<u8>, EncodeError> {
    let map = object.as_object().ok_or(EncodeError::NotAnObject)?;
    let text = |name: &str| map.get(name).and_then(Value::as_str);
    let (Some(api_version), Some(kind)) = (text("apiVersion"), text("kind")) else {
        return Err(EncodeError::NotAnObject);
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let unknown_kind = || EncodeError::UnknownKind {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
    };
    let api_kind = schema::kind(group, version, kind).ok_or_else(unknown_kind)?;
    let message = schema::message(api_kind.message).ok_or_else(unknown_kind)?;
    let raw = encode_message(message, map, 0)?;
    let mut type_meta = Vec::new();
    length_delimited(&mut type_meta, 1, api_version.as_bytes());
    length_delimited(&mut type_meta, 2, kind.as_bytes());
    let mut body = MAGIC.to_vec();
    length_delimited(&mut body, 1, &type_meta);
    length_delimited(&mut body, 2, &raw);
    // contentEncoding and contentType: empty, as upstream writes them.
    length_delimited(&mut body, 3, b"");
    length_delimited(&mut body, 4, b"");
    Ok(body)
}

/// One event of a protobuf watch stream: a 4-byte big-endian length, then a `WatchEvent`
/// whose object holds the object's protobuf body.
pub fn encode_watch_event(event_type: &str, object: &Value) -> Result<Vec<u8>, EncodeError> {
    debug_assert!(schema::message(WATCH_EVENT).is_some());
    let mut raw_extension = Vec::new();
    length_delimited(&mut raw_extension, 1, &encode(object)?);
    let mut event = Vec::new();
    length_delimited(&mut event, 1, event_type.as_bytes());
    length_delimited(&mut event, 2, &raw_extension);
    let length =
        u32::try_from(event.len()).map_err(|_| EncodeError::Malformed("event too large"))?;
    let mut frame = length.to_be_bytes().to_vec();
    frame.extend(event);
    Ok(frame)
}

fn field_error(message: &Message, field: &Field, detail: impl Into<String>) -> EncodeError {
    EncodeError::Field {
        message: message.name.to_owned(),
        field: field.json.to_owned(),
        detail: detail.into(),
    }
}

fn encode_message(
    message: &Message,
    object: &Map<String, Value>,
    depth: usize,
) -> Result<Vec<u8>, EncodeError> {
    if depth > MAX_DEPTH {
        return Err(EncodeError::Malformed("nested too deeply"));
    }
    let mut out = Vec::new();
    for field in message.fields {
        if field.inline {
            // An embedded Go struct: its fields are this object's.
            if let Kind::Message(name) = field.kind {
                let inner = schema::message(name)
                    .ok_or(EncodeError::Malformed("a message missing from the schema"))?;
                length_delimited(
                    &mut out,
                    field.tag,
                    &encode_message(inner, object, depth + 1)?,
                );
            }
            continue;
        }
        let Some(value) = object.get(field.json).filter(|v| !v.is_null()) else {
            continue;
        };
        let items: &[Value] = match (field.repeated, value) {
            (true, Value::Array(items)) => items,
            (true, _) => return Err(field_error(message, field, "a list was expected")),
            (false, _) => std::slice::from_ref(value),
        };
        for item in items {
            match field.kind {
                Kind::Scalar(scalar) => write_scalar(&mut out, field.tag, scalar, item)
                    .map_err(|detail| field_error(message, field, detail))?,
                Kind::Message(name) => {
                    let bytes = message_value(name, item, depth)?;
                    length_delimited(&mut out, field.tag, &bytes);
                }
                Kind::Map { key, value } => {
                    let Value::Object(entries) = item else {
                        return Err(field_error(message, field, "a map was expected"));
                    };
                    let mut sorted: Vec<(&String, &Value)> = entries.iter().collect();
                    sorted.sort_by(|a, b| a.0.cmp(b.0));
                    for (k, v) in sorted {
                        let entry = map_entry(key, value, k, v, depth)
                            .map_err(|detail| field_error(message, field, detail))?;
                        length_delimited(&mut out, field.tag, &entry);
                    }
                }
            }
        }
    }
    Ok(out)
}

fn map_entry(
    key: Scalar,
    value: MapValue,
    k: &str,
    v: &Value,
    depth: usize,
) -> Result<Vec<u8>, String> {
    let mut entry = Vec::new();
    let key_value = match key {
        Scalar::String => Value::String(k.to_owned()),
        _ => serde_json::from_str(k).map_err(|_| format!("map key {k:?} is not a number"))?,
    };
    write_scalar(&mut entry, 1, key, &key_value)?;
    match value {
        MapValue::Scalar(scalar) if !v.is_null() => write_scalar(&mut entry, 2, scalar, v)?,
        MapValue::Scalar(_) => {}
        MapValue::Message(name) => {
            let bytes = message_value(name, v, depth).map_err(|e| e.to_string())?;
            length_delimited(&mut entry, 2, &bytes);
        }
    }
    Ok(entry)
}

fn write_scalar(out: &mut Vec<u8>, tag: u32, scalar: Scalar, value: &Value) -> Result<(), String> {
    let integer = || {
        value
            .as_i64()
            .or_else(|| value.as_u64().and_then(|v| i64::try_from(v).ok()))
            .or_else(|| {
                value
                    .as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| format!("{value} is not an integer"))
    };
    match scalar {
        Scalar::String => {
            let text = value
                .as_str()
                .ok_or_else(|| format!("{value} is not a string"))?;
            length_delimited(out, tag, text.as_bytes());
        }
        Scalar::Bytes => {
            let text = value
                .as_str()
                .ok_or_else(|| format!("{value} is not base64 text"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("not base64: {e}"))?;
            length_delimited(out, tag, &bytes);
        }
        Scalar::Bool => {
            let flag = value
                .as_bool()
                .ok_or_else(|| format!("{value} is not a boolean"))?;
            varint_field(out, tag, u64::from(flag));
        }
        Scalar::Int32 => {
            let number = i32::try_from(integer()?).map_err(|_| format!("{value} exceeds int32"))?;
            // Sign-extended to 64 bits, as protobuf writes negative int32s.
            varint_field(out, tag, i64::from(number) as u64);
        }
        Scalar::Int64 => varint_field(out, tag, integer()? as u64),
        Scalar::Double => {
            let number = value
                .as_f64()
                .ok_or_else(|| format!("{value} is not a number"))?;
            key(out, tag, 1);
            out.extend(number.to_bits().to_le_bytes());
        }
        Scalar::Float => {
            let number = value
                .as_f64()
                .ok_or_else(|| format!("{value} is not a number"))?;
            key(out, tag, 5);
            out.extend((number as f32).to_bits().to_le_bytes());
        }
    }
    Ok(())
}

/// The encoding of one message-typed value; the types whose JSON is not an object of their
/// fields are made from their JSON form.
fn message_value(name: &str, value: &Value, depth: usize) -> Result<Vec<u8>, EncodeError> {
    let malformed = |detail: String| EncodeError::Field {
        message: name.to_owned(),
        field: String::new(),
        detail,
    };
    let mut out = Vec::new();
    match name {
        TIME | MICRO_TIME => {
            let text = value
                .as_str()
                .ok_or_else(|| malformed(format!("{value} is not a time")))?;
            let (seconds, nanos) = parse_rfc3339(text)
                .ok_or_else(|| malformed(format!("{text:?} is not an RFC 3339 time")))?;
            varint_field(&mut out, 1, seconds as u64);
            varint_field(&mut out, 2, i64::from(nanos) as u64);
        }
        QUANTITY => {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                _ => return Err(malformed(format!("{value} is not a quantity"))),
            };
            length_delimited(&mut out, 1, text.as_bytes());
        }
        INT_OR_STRING => match value {
            Value::String(text) => {
                varint_field(&mut out, 1, 1);
                length_delimited(&mut out, 3, text.as_bytes());
            }
            _ => {
                varint_field(&mut out, 1, 0);
                write_scalar(&mut out, 2, Scalar::Int32, value).map_err(malformed)?;
            }
        },
        RAW_EXTENSION | FIELDS_V1 | EXTENSIONS_JSON => {
            let raw = serde_json::to_vec(value).map_err(|e| malformed(e.to_string()))?;
            length_delimited(&mut out, 1, &raw);
        }
        DURATION => {
            let text = value
                .as_str()
                .ok_or_else(|| malformed(format!("{value} is not a duration")))?;
            let nanos = parse_go_duration(text)
                .ok_or_else(|| malformed(format!("{text:?} is not a duration")))?;
            varint_field(&mut out, 1, nanos as u64);
        }
        _ => {
            let message = schema::message(name)
                .ok_or(EncodeError::Malformed("a message missing from the schema"))?;
            let Value::Object(object) = value else {
                return Err(malformed(format!("{value} is not an object")));
            };
            out = encode_message(message, object, depth + 1)?;
        }
    }
    Ok(out)
}

/// Seconds since the epoch and nanoseconds of an RFC 3339 time, as protobuf's `Time` holds
/// them.
fn parse_rfc3339(text: &str) -> Option<(i64, i32)> {
    let nanos = crate::table::parse_rfc3339(text)?;
    let seconds = i64::try_from(nanos.div_euclid(crate::table::NANOS_PER_SECOND)).ok()?;
    let rest = i32::try_from(nanos.rem_euclid(crate::table::NANOS_PER_SECOND)).ok()?;
    Some((seconds, rest))
}

/// Nanoseconds of a Go `time.Duration` string (`1h2m3.5s`, `500ms`, `-1m`).
fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .bytes()
            .take_while(|b| !b.is_ascii_digit() && *b != b'.')
            .count();
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    let nanos = total.round() as i64;
    Some(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;
    use serde_json::json;

    /// `object` as Go writes it, which is what decoding gives back.
    fn as_go_writes(object: &Value) -> Value {
        let api_version = object["apiVersion"].as_str().unwrap_or("");
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let kind = object["kind"].as_str().unwrap_or("");
        let mut out = object.clone();
        crate::go_json::normalize(group, version, kind, &mut out);
        out
    }

    fn round_trip(object: Value) {
        let body = encode(&object).unwrap_or_else(|e| panic!("encoding {object}: {e}"));
        assert_eq!(decode(&body).expect("decodes"), as_go_writes(&object));
    }

    #[test]
    fn objects_survive_a_round_trip_through_the_decoder() {
        round_trip(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "default", "uid": "u-1",
                         "resourceVersion": "42", "creationTimestamp": "2023-11-14T22:13:20Z",
                         "labels": {"b": "2", "a": "1"}, "finalizers": ["x", "y"]},
            "data": {"color": "blue"},
            "binaryData": {"blob": "AAEC"},
        }));
        round_trip(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "generation": 3},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "c", "image": "nginx", "args": ["-g", "daemon off;"],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
                            "securityContext": {"runAsUser": -1, "privileged": false},
                        }],
                        "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}],
                        "terminationGracePeriodSeconds": 30,
                    },
                },
            },
            "status": {"conditions": [{"type": "Available", "status": "True",
                                       "lastUpdateTime": "2024-02-29T23:59:59Z"}]},
        }));
        round_trip(json!({
            "apiVersion": "v1", "kind": "Status", "metadata": {},
            "status": "Failure", "message": "configmaps \"x\" already exists",
            "reason": "AlreadyExists", "details": {"name": "x", "kind": "configmaps"},
            "code": 409,
        }));
        round_trip(json!({
            "apiVersion": "v1", "kind": "PodList",
            "metadata": {"resourceVersion": "7", "continue": "abc", "remainingItemCount": 3},
            "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}],
        }));
    }

    #[test]
    fn special_types_take_their_protobuf_form() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some((951_782_400, 0))
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123456+01:00"),
            Some((1_700_000_000, 123_456_000))
        );
        assert_eq!(parse_rfc3339("2023-13-14T23:13:20Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_go_duration("1h2m3.5s"), Some(3_723_500_000_000));
        assert_eq!(parse_go_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_go_duration("-1m"), Some(-60_000_000_000));
        assert_eq!(parse_go_duration("0s"), Some(0));
        assert_eq!(parse_go_duration("5 parsecs"), None);
        // An event's MicroTime keeps its microseconds.
        round_trip(json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"}, "eventTime": "2023-11-14T22:13:20.123456Z",
            "reason": "Started", "regarding": {"kind": "Pod", "name": "p"},
        }));
    }

    #[test]
    fn a_watch_event_is_framed_with_its_length() {
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        let frame = encode_watch_event("ADDED", &object).expect("encodes");
        let length = u32::from_be_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
        assert_eq!(length, frame.len() - 4);
        let event = &frame[4..];
        // type (1) = "ADDED"; object (2) = RawExtension { raw (1) = the object's body }.
        assert_eq!(&event[..7], b"\x0a\x05ADDED");
        let body = encode(&object).expect("encodes");
        assert!(event.ends_with(&body));
        assert_eq!(decode(&body).expect("decodes"), as_go_writes(&object));
    }

    #[test]
    fn what_cannot_be_encoded_is_an_error() {
        assert_eq!(encode(&json!([1])), Err(EncodeError::NotAnObject));
        assert_eq!(
            encode(&json!({"major": "1"})),
            Err(EncodeError::NotAnObject)
        );
        assert!(matches!(
            encode(&json!({"apiVersion": "v1", "kind": "Frobnicator"})),
            Err(EncodeError::UnknownKind { .. })
        ));
        let wrong = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 5}});
        assert!(matches!(encode(&wrong), Err(EncodeError::Field { .. })));
        let wrong =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"finalizers": "x"}});
        assert!(matches!(encode(&wrong), Err(EncodeError::Field { .. })));
    }
}
