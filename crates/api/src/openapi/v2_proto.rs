//! The Swagger 2.0 document in protobuf: gnostic's `openapi.v2.Document`, what `/openapi/v2`
//! answers to `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`. kubectl
//! 1.27 and 1.28 fetch it, in that form only, before every `create -f`, `apply -f` and
//! `explain`, and stop when it does not parse; later releases read it for client-side
//! validation and `explain --output plaintext-openapiv2`.
//!
//! Only the messages and fields the JSON document uses are written. Vendor extensions
//! (`x-kubernetes-*`) are gnostic's `NamedAny`s holding YAML; their JSON text is that YAML.

use serde_json::{Map, Value};

/// The encoding of `document`, the JSON Swagger 2.0 document.
pub(super) fn encode(document: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    string(&mut out, 1, str_of(document, "swagger"));
    if let Some(info) = document.get("info") {
        message(&mut out, 2, |m| {
            string(m, 1, str_of(info, "title"));
            string(m, 2, str_of(info, "version"));
        });
    }
    if let Some(paths) = document.get("paths").and_then(Value::as_object) {
        message(&mut out, 8, |m| {
            for (path, item) in paths {
                named(m, 2, path, |m| path_item(m, item));
            }
        });
    }
    if let Some(definitions) = document.get("definitions").and_then(Value::as_object) {
        message(&mut out, 9, |m| {
            for (name, definition) in definitions {
                named(m, 1, name, |m| schema(m, definition));
            }
        });
    }
    for requirement in array_of(document, "security") {
        message(&mut out, 12, |m| {
            for (name, scopes) in object_of(requirement) {
                named(m, 1, name, |m| {
                    message(m, 2, |m| {
                        for scope in scopes.as_array().into_iter().flatten() {
                            string(m, 1, scope.as_str().unwrap_or_default());
                        }
                    });
                });
            }
        });
    }
    if let Some(definitions) = document
        .get("securityDefinitions")
        .and_then(Value::as_object)
    {
        message(&mut out, 13, |m| {
            for (name, definition) in definitions {
                // `SecurityDefinitionsItem.api_key_security`: the only kind the API uses.
                named(m, 1, name, |m| {
                    message(m, 2, |m| {
                        string(m, 1, str_of(definition, "type"));
                        string(m, 2, str_of(definition, "name"));
                        string(m, 3, str_of(definition, "in"));
                        string(m, 4, str_of(definition, "description"));
                    });
                });
            }
        });
    }
    out
}

fn path_item(out: &mut Vec<u8>, item: &Value) {
    for (method, field) in [
        ("get", 2),
        ("put", 3),
        ("post", 4),
        ("delete", 5),
        ("options", 6),
        ("head", 7),
        ("patch", 8),
    ] {
        if let Some(operation) = item.get(method) {
            message(out, field, |m| self::operation(m, operation));
        }
    }
    for param in array_of(item, "parameters") {
        message(out, 9, |m| parameter(m, param));
    }
}

fn operation(out: &mut Vec<u8>, op: &Value) {
    strings(out, 1, array_of(op, "tags"));
    string(out, 3, str_of(op, "description"));
    string(out, 5, str_of(op, "operationId"));
    strings(out, 6, array_of(op, "produces"));
    strings(out, 7, array_of(op, "consumes"));
    for param in array_of(op, "parameters") {
        message(out, 8, |m| parameter(m, param));
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        message(out, 9, |m| {
            for (code, response) in responses {
                // `ResponseValue.response`
                named(m, 1, code, |m| {
                    message(m, 1, |m| {
                        string(m, 1, str_of(response, "description"));
                        if let Some(answer) = response.get("schema") {
                            // `SchemaItem.schema`
                            message(m, 2, |m| message(m, 1, |m| schema(m, answer)));
                        }
                    });
                });
            }
        });
    }
    strings(out, 10, array_of(op, "schemes"));
    extensions(out, 13, op);
}

/// A `ParametersItem`: a body parameter, or a query, path or header one.
fn parameter(out: &mut Vec<u8>, param: &Value) {
    let location = str_of(param, "in");
    message(out, 1, |m| {
        if location == "body" {
            message(m, 1, |m| {
                string(m, 1, str_of(param, "description"));
                string(m, 2, str_of(param, "name"));
                string(m, 3, location);
                boolean(m, 4, bool_of(param, "required"));
                if let Some(body) = param.get("schema") {
                    message(m, 5, |m| schema(m, body));
                }
            });
            return;
        }
        // The sub-schema's field in `NonBodyParameter`, and its `type` and `uniqueItems` fields.
        let (variant, ty, unique_items) = match location {
            "header" => (1, 5, 19),
            "formData" => (2, 6, 20),
            "path" => (4, 5, 19),
            _ => (3, 6, 20),
        };
        message(m, 2, |m| {
            message(m, variant, |m| {
                boolean(m, 1, bool_of(param, "required"));
                string(m, 2, location);
                string(m, 3, str_of(param, "description"));
                string(m, 4, str_of(param, "name"));
                string(m, ty, str_of(param, "type"));
                boolean(m, unique_items, bool_of(param, "uniqueItems"));
            });
        });
    });
}

fn schema(out: &mut Vec<u8>, schema: &Value) {
    string(out, 1, str_of(schema, "$ref"));
    string(out, 2, str_of(schema, "format"));
    string(out, 3, str_of(schema, "title"));
    string(out, 4, str_of(schema, "description"));
    boolean(out, 16, bool_of(schema, "uniqueItems"));
    strings(out, 19, array_of(schema, "required"));
    for value in array_of(schema, "enum") {
        message(out, 20, |m| any(m, value));
    }
    match schema.get("additionalProperties") {
        // `AdditionalPropertiesItem.boolean`, written even when false: it is a oneof.
        Some(Value::Bool(allowed)) => message(out, 21, |m| {
            key(m, 2, 0);
            m.push(u8::from(*allowed));
        }),
        Some(additional) => message(out, 21, |m| message(m, 1, |m| self::schema(m, additional))),
        None => {}
    }
    match schema.get("type") {
        Some(Value::String(ty)) => message(out, 22, |m| string(m, 1, ty)),
        Some(Value::Array(types)) => message(out, 22, |m| strings(m, 1, types)),
        _ => {}
    }
    match schema.get("items") {
        Some(Value::Array(items)) => message(out, 23, |m| {
            for item in items {
                message(m, 1, |m| self::schema(m, item));
            }
        }),
        Some(item) => message(out, 23, |m| message(m, 1, |m| self::schema(m, item))),
        None => {}
    }
    for part in array_of(schema, "allOf") {
        message(out, 24, |m| self::schema(m, part));
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        message(out, 25, |m| {
            for (name, property) in properties {
                named(m, 1, name, |m| self::schema(m, property));
            }
        });
    }
    boolean(out, 27, bool_of(schema, "readOnly"));
    extensions(out, 31, schema);
}

/// The `x-` keys of `object` as `NamedAny`s in field `field`.
fn extensions(out: &mut Vec<u8>, field: u32, object: &Value) {
    for (name, value) in object_of(object) {
        if name.starts_with("x-") {
            named(out, field, name, |m| any(m, value));
        }
    }
}

/// An `Any` holding `value` as YAML (JSON is YAML).
fn any(out: &mut Vec<u8>, value: &Value) {
    string(out, 2, &value.to_string());
}

// The protobuf wire format, as much as these messages need.

fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(out, u64::from(field) << 3 | u64::from(wire_type));
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A string field; empty strings are proto3's default and left out.
fn string(out: &mut Vec<u8>, field: u32, value: &str) {
    if !value.is_empty() {
        bytes(out, field, value.as_bytes());
    }
}

/// A repeated string field.
fn strings(out: &mut Vec<u8>, field: u32, values: &[Value]) {
    for value in values.iter().filter_map(Value::as_str) {
        bytes(out, field, value.as_bytes());
    }
}

/// A bool field; `false` is the default and left out.
fn boolean(out: &mut Vec<u8>, field: u32, value: bool) {
    if value {
        key(out, field, 0);
        out.push(1);
    }
}

/// A message field, written even when empty: a oneof's choice is its presence.
fn message(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    write(&mut inner);
    bytes(out, field, &inner);
}

/// One entry of gnostic's ordered maps: a `Named…` message with the key as field 1 and the
/// value as field 2.
fn named(out: &mut Vec<u8>, field: u32, name: &str, write: impl FnOnce(&mut Vec<u8>)) {
    message(out, field, |m| {
        string(m, 1, name);
        message(m, 2, write);
    });
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn bool_of(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn array_of<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn object_of(value: &Value) -> impl Iterator<Item = (&String, &Value)> {
    value.as_object().into_iter().flat_map(Map::iter)
}
