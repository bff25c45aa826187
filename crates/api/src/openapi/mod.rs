//! The OpenAPI documents of the API, shaped as upstream's API server serves them, for kubectl:
//! `create -f`, `apply -f` and `edit` read them to learn that the server validates fields
//! (`fieldValidation` on a kind's PATCH operation), that a kind takes strategic merge patch
//! (its PATCH content types) and how its lists merge (the schemas' patch markers); `explain`
//! prints the schemas' descriptions, types and required fields.
//!
//! - `GET /openapi/v3`: [`v3_index`], the served group-versions, each with the URL of its
//!   document and the document's hash.
//! - `GET /openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`: [`v3_document`], one
//!   group-version's paths and every schema they reach.
//! - `GET /openapi/v2`: [`v2_document`], every path and schema in Swagger 2.0; in protobuf,
//!   [`v2_document_protobuf`], which kubectl 1.27 and 1.28 fetch before `create`, `apply` and
//!   `explain`.
//!
//! The schemas are k8s-openapi's (`schemas`), the paths the [`registry`](crate::registry)'s
//! (`paths`). Generating them is not free, so each document is built once, on first use.

mod kinds;
mod paths;
mod schemas;
mod v2;
mod v2_proto;
mod v3;

#[cfg(test)]
mod tests;

use serde_json::{Value, json};

/// The Kubernetes release whose API the documents describe.
const RELEASE: &str = "v1.33.0";

/// The OpenAPI version a document is written in; they differ in where schemas live and in how
/// a reference carries a description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// Swagger 2.0: `#/definitions/`, a `$ref` with sibling keys.
    V2,
    /// OpenAPI 3.0: `#/components/schemas/`, `allOf: [{$ref}]` beside sibling keys.
    V3,
}

impl Dialect {
    fn ref_to(self, name: &str) -> String {
        match self {
            Dialect::V2 => format!("#/definitions/{name}"),
            Dialect::V3 => format!("#/components/schemas/{name}"),
        }
    }

    fn schema_ref(self, name: &str) -> Value {
        json!({"$ref": self.ref_to(name)})
    }
}

/// `GET /openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL":
/// "/openapi/v3/api/v1?hash=<HASH>"}, "apis/apps/v1": {...}, ...}}`. The hash changes whenever
/// the document does; kubectl caches documents by their URL.
pub fn v3_index() -> Value {
    v3::documents().index.clone()
}

/// `GET /openapi/v3/api/v1` (`group` empty) or `/openapi/v3/apis/<group>/<version>`: one
/// group-version's document, or `None` when the group-version is not served.
pub fn v3_document(group: &str, version: &str) -> Option<&'static Value> {
    v3::documents().by_path.get(&v3::path(group, version))
}

/// `GET /openapi/v2`: the whole Swagger 2.0 document.
pub fn v2_document() -> &'static Value {
    v2::document()
}

/// `GET /openapi/v2` with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`:
/// the same document as gnostic's `openapi.v2.Document`. Answer it with the content type
/// [`V2_PROTOBUF_CONTENT_TYPE`].
pub fn v2_document_protobuf() -> &'static [u8] {
    v2::protobuf()
}

/// The `Content-Type` of [`v2_document_protobuf`]'s answer, as upstream writes it: Go's MIME
/// parser, in kubectl, refuses the `@` of the form clients ask for.
pub const V2_PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The `BearerToken` security scheme every operation uses, as upstream's documents say.
fn bearer_token_scheme() -> Value {
    json!({
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    })
}

/// A stable digest of a document, in upper-case hex as upstream writes its (SHA-512) hashes:
/// 128-bit FNV-1a over its JSON. It only tells versions of a document apart; nothing trusts it.
fn document_hash(document: &Value) -> String {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let hash = document.to_string().bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u128::from(byte)).wrapping_mul(PRIME)
    });
    format!("{hash:032X}")
}
