//! Keeping `metadata.managedFields` on writes: who the writer is, at which version and on which
//! subresource, and what it may own. The bookkeeping itself is [`cox_api::managed_fields`].

use cox_api::conversion;
use cox_api::managed_fields::{self, Operation, Scope};
use cox_api::registry::{self, Resource};
use cox_api::status::ApiError;
use serde_json::Value;

use crate::objects;
use crate::request::{Query, ResourceRequest};

/// The manager of the server's own writes (bootstrap objects), as upstream's loopback client
/// names itself.
const SERVER: &str = "kube-apiserver";

/// Sets the request's `fieldManager` to the writer's manager: the one it named (checked as
/// upstream checks it: a 422 about the request's options), else its User-Agent's first part.
pub fn choose_manager(
    request: &ResourceRequest,
    query: &mut Query,
    user_agent: &str,
) -> Result<(), ApiError> {
    let named = query.get("fieldManager").map(str::to_owned);
    if let Some(named) = named.as_deref() {
        managed_fields::check_manager(named).map_err(|e| {
            let options = match request.verb.as_str() {
                "create" => "CreateOptions",
                "patch" => "PatchOptions",
                _ => "UpdateOptions",
            };
            ApiError::invalid("meta.k8s.io", options, "", &[e])
        })?;
    }
    query.set(
        "fieldManager",
        &managed_fields::manager(named.as_deref(), user_agent),
    );
    Ok(())
}

/// Records a create (`old` is `None`), update or patch of `resource` (stored form) in `new`'s
/// managedFields, judged at the version the request was served at. Other writes through the
/// REST layer (bindings, evictions, finalizers, deletion marks) leave them alone, as upstream.
pub fn record(
    resource: &Resource,
    request: &ResourceRequest,
    query: &Query,
    old: Option<&Value>,
    new: &mut Value,
) {
    let tracked = match request.verb.as_str() {
        "create" => request.subresource.is_empty(),
        "update" | "patch" => matches!(request.subresource.as_str(), "" | "status" | "scale"),
        _ => false,
    };
    if !tracked {
        return;
    }
    let served = registry::find(&request.group, &request.version, resource.plural)
        .filter(|served| conversion::storage_of(served).is_some())
        .unwrap_or(resource);
    let Some(kind) = cox_api::schema::kind(served.group, served.version, served.kind) else {
        return;
    };
    let scope = if request.subresource == "status" {
        Scope::OnlyStatus
    } else if resource.subresource("status").is_some() {
        Scope::NotStatus
    } else {
        Scope::Whole
    };
    let api_version = served.api_version();
    let time = objects::now();
    let operation = Operation {
        manager: query.get("fieldManager").unwrap_or(SERVER),
        api_version: &api_version,
        subresource: &request.subresource,
        time: &time,
    };
    let at_version = |object: &Value, api_version: &str| -> Option<Value> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let target = registry::find(group, version, resource.plural)?;
        let stored = conversion::to_storage(served, object.clone());
        Some(conversion::from_storage(target, stored))
    };
    let message = kind.message;
    if conversion::storage_of(served).is_none() {
        managed_fields::record(old, new, message, &operation, scope, &at_version);
        return;
    }
    // Served at another version than stored: both objects as the request saw them.
    let old = old.map(|old| conversion::from_storage(served, old.clone()));
    let mut view = conversion::from_storage(served, new.clone());
    managed_fields::record(
        old.as_ref(),
        &mut view,
        message,
        &operation,
        scope,
        &at_version,
    );
    let entries = view.pointer("/metadata/managedFields").cloned();
    managed_fields::set_entries(new, entries);
}
