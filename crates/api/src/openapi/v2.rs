//! The Swagger 2.0 document: every served path and every schema in one document, as older
//! kubectl and other clients read it from `/openapi/v2`, in JSON or (`v2_proto`) protobuf.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::{Dialect, RELEASE, bearer_token_scheme, paths, schemas, v2_proto};

pub(super) fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

pub(super) fn protobuf() -> &'static [u8] {
    static PROTOBUF: OnceLock<Vec<u8>> = OnceLock::new();
    PROTOBUF.get_or_init(|| v2_proto::encode(document()))
}

fn build() -> Value {
    let definitions = schemas::definitions(Dialect::V2);
    let mut all_paths = Map::new();
    for (group, version) in schemas::served_group_versions() {
        all_paths.extend(paths::group_version_paths(Dialect::V2, group, version));
    }
    let all_paths = Value::Object(all_paths);
    let reached = schemas::reachable(&all_paths, &definitions);
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": RELEASE},
        "paths": all_paths,
        "definitions": reached,
        "securityDefinitions": {"BearerToken": bearer_token_scheme()},
        "security": [{"BearerToken": []}],
    })
}
