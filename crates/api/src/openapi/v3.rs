//! The OpenAPI 3.0 documents: one per served group-version, with the paths of its resources and
//! only the schemas those reach, and the index that lists them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::{Dialect, RELEASE, bearer_token_scheme, document_hash, paths, schemas};

#[derive(Debug)]
pub(super) struct Documents {
    /// The answer of `GET /openapi/v3`.
    pub index: Value,
    /// Each document by its path under `/openapi/v3/`, e.g. `api/v1`, `apis/apps/v1`.
    pub by_path: BTreeMap<String, Value>,
}

/// `api/v1` or `apis/<group>/<version>`.
pub(super) fn path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

pub(super) fn documents() -> &'static Documents {
    static DOCUMENTS: OnceLock<Documents> = OnceLock::new();
    DOCUMENTS.get_or_init(build)
}

fn build() -> Documents {
    let definitions = schemas::definitions(Dialect::V3);
    let mut by_path = BTreeMap::new();
    let mut index = Map::new();
    for (group, version) in schemas::served_group_versions() {
        let paths = Value::Object(paths::group_version_paths(Dialect::V3, group, version));
        let reached = schemas::reachable(&paths, &definitions);
        let document = json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": RELEASE},
            "paths": paths,
            "components": {
                "schemas": reached,
                "securitySchemes": {"BearerToken": bearer_token_scheme()},
            },
            "security": [{"BearerToken": []}],
        });
        let path = path(group, version);
        let url = format!("/openapi/v3/{path}?hash={}", document_hash(&document));
        index.insert(path.clone(), json!({"serverRelativeURL": url}));
        by_path.insert(path, document);
    }
    Documents {
        index: json!({"paths": index}),
        by_path,
    }
}
