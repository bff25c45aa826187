//! The REST verbs on stored resources: get, list, create, update, patch, delete,
//! deletecollection (watch is in [`crate::watch`]). Each reads and writes the store with
//! compare-and-swap on the revision, so concurrent writers get 409s, never lost updates.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use cox_api::conversion;
use cox_api::deletion::{self, Mark, Plan};
use cox_api::fields::{self, FieldSelector};
use cox_api::labels::Selector;
use cox_api::patch::{self, PatchType};
use cox_api::registry::Resource;
use cox_api::status::{self, ApiError};
use cox_store::{Error as StoreError, KeyValue, LastChange, ListOptions, Revision, Store};
use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::http::{self as h, Body};
use crate::objects::{self, UpdateScope};
use crate::request::{Query, ResourceRequest};
use crate::scale;
use crate::services::{Services, Taken};

/// A change to a `scale` subresource.
#[derive(Debug, Clone)]
pub enum ScaleChange {
    Replace(Value),
    Patch(PatchType, Bytes),
}

/// How many times a write that raced with another is retried before giving up with 409.
const MAX_RETRIES: usize = 16;
/// Between looks for a new namespace's `default` ServiceAccount, which its controller is
/// about to make (upstream waits 100–200 ms, ten times; we look twenty times, as tests on a
/// loaded machine showed the controller can take longer).
const SERVICE_ACCOUNT_RETRY: Duration = Duration::from_millis(150);

/// Maps a store failure onto the API's errors.
pub fn store_error(resource: &Resource, name: &str, err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound { .. } => ApiError::not_found(resource.group, resource.plural, name),
        StoreError::AlreadyExists { .. } => {
            ApiError::already_exists(resource.group, resource.plural, name)
        }
        StoreError::Conflict { .. } => {
            ApiError::conflict(resource.group, resource.plural, name, ApiError::MODIFIED)
        }
        StoreError::Compacted {
            requested,
            compacted,
        } => ApiError::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        StoreError::FutureRevision { requested, current } => ApiError::timeout(format!(
            "Too large resource version: {requested}, current: {current}"
        )),
        StoreError::TooLarge { .. } => ApiError::too_large(cox_store::MAX_WRITE_BYTES),
        other => ApiError::internal(other.to_string()),
    }
}

/// The decoded object of a stored version, with its resourceVersion.
pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    objects::set_resource_version(&mut object, kv.mod_revision);
    Ok(object)
}

fn encode(object: &Value) -> Result<Bytes, ApiError> {
    serde_json::to_vec(object)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(format!("encoding an object: {e}")))
}

fn dry_run(query: &Query) -> Result<bool, ApiError> {
    match query.all("dryRun") {
        [] => Ok(false),
        [all] if all == "All" => Ok(true),
        other => Err(ApiError::bad_request(format!(
            "unsupported dry run option: {}",
            other.join(",")
        ))),
    }
}

/// The selectors of a list, watch or deletecollection.
#[derive(Debug, Clone)]
pub struct Filter {
    pub labels: Selector,
    pub fields: FieldSelector,
    group: &'static str,
    resource: &'static str,
}

impl Filter {
    pub fn from_query(resource: &Resource, query: &Query) -> Result<Self, ApiError> {
        let labels = Selector::parse(query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        fields
            .check_supported(resource.group, resource.plural)
            .map_err(ApiError::bad_request)?;
        Ok(Self {
            labels,
            fields,
            group: resource.group,
            resource: resource.plural,
        })
    }

    /// Matches an object of the watch cache (its labels and fields extracted once).
    pub fn matches_cached(&self, object: &crate::watch_cache::Cached) -> bool {
        self.labels.matches(&object.labels)
            && (self.fields.is_everything() || self.fields.matches(&object.fields))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches_json(object.pointer("/metadata/labels"))
            && (self.fields.is_everything()
                || self
                    .fields
                    .matches(&fields::fields_of(self.group, self.resource, object)))
    }
}

/// The continue token: where the next page starts, and the revision of the whole list.
/// Encoded as upstream encodes it, so its shape is familiar: base64 of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<key after the prefix>"}`.
fn encode_continue(revision: i64, last_key: &str, prefix: &str) -> String {
    let start = last_key.strip_prefix(prefix).unwrap_or(last_key);
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": format!("{start}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str, prefix: &str) -> Result<(i64, String), ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&raw).map_err(|_| invalid())?;
    let revision = value
        .get("rv")
        .and_then(Value::as_i64)
        .ok_or_else(invalid)?;
    let start = value
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    let start = start.strip_suffix('\u{0}').unwrap_or(start);
    if start.contains("..") || start.starts_with('/') {
        return Err(invalid());
    }
    Ok((revision, format!("{prefix}{start}")))
}

/// The API's handlers over one store.
#[derive(Debug, Clone)]
pub struct Rest {
    pub store: Arc<dyn Store>,
    pub services: Arc<Services>,
    pub caches: Arc<crate::watch_cache::WatchCaches>,
}

/// Strips what list items do not carry (upstream lists omit each item's apiVersion and kind).
fn as_list_item(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    object
}

impl Rest {
    fn key(resource: &Resource, request: &ResourceRequest) -> String {
        resource.key(request.namespace.as_deref(), &request.name)
    }

    async fn current(
        &self,
        resource: &Resource,
        request: &ResourceRequest,
    ) -> Result<KeyValue, ApiError> {
        self.store
            .get(&Self::key(resource, request), None)
            .await
            .map_err(|e| store_error(resource, &request.name, e))?
            .ok_or_else(|| ApiError::not_found(resource.group, resource.plural, &request.name))
    }

    pub async fn get(
        &self,
        resource: &Resource,
        request: &ResourceRequest,
    ) -> Result<Value, ApiError> {
        decode(&self.current(resource, request).await?)
    }

    /// A list, one page of it with `limit`, filtered by the selectors, at one revision.
    pub async fn list(
        &self,
        resource: &Resource,
        request: &ResourceRequest,
        query: &Query,
    ) -> Result<Value, ApiError> {
        let filter = Filter::from_query(resource, query)?;
        let prefix = resource.key(request.namespace.as_deref(), "");
        // resourceVersion=0 means any recent state will do: the watch cache's. Like upstream,
        // such a list is not paginated. A list of the current state is served from it too,
        // once it is known to be current.
        if let Some((cache, floor)) = self.cache_for_list(resource, &prefix, query).await {
            let (objects, revision) = cache.list(&prefix);
            let revision = revision.max(floor);
            let items: Vec<Value> = objects
                .iter()
                .filter(|o| filter.matches_cached(o))
                .map(|o| as_list_item(o.value()))
                .collect();
            return Ok(json!({
                "kind": format!("{}List", resource.kind),
                "apiVersion": resource.api_version(),
                "metadata": {"resourceVersion": revision.to_string()},
                "items": items,
            }));
        }
        let (limit, mut revision, mut start_after) = self.page_request(query, &prefix).await?;
        let mut items = Vec::new();
        let mut continue_token = None;
        loop {
            let want = limit.map(|l| l - items.len());
            let page = match self
                .store
                .list(
                    &prefix,
                    ListOptions {
                        start_after: start_after.clone(),
                        limit: want,
                        revision,
                    },
                )
                .await
            {
                Ok(page) => page,
                Err(StoreError::Compacted { .. }) if query.get("continue").is_some() => {
                    return Err(ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    ));
                }
                Err(err) => return Err(store_error(resource, "", err)),
            };
            revision = Some(page.revision);
            let last = page.kvs.last().map(|kv| kv.key.clone());
            for kv in &page.kvs {
                let object = decode(kv)?;
                if filter.matches(&object) {
                    items.push(as_list_item(object));
                }
            }
            let full = limit.is_some_and(|l| items.len() >= l);
            match (page.more, last) {
                (true, Some(last)) if full => {
                    continue_token = Some(encode_continue(page.revision, &last, &prefix));
                    break;
                }
                (true, Some(last)) => start_after = Some(last),
                _ => break,
            }
        }
        let mut metadata = json!({"resourceVersion": revision.unwrap_or(0).to_string()});
        if let Some(token) = continue_token {
            metadata["continue"] = json!(token);
        }
        Ok(json!({
            "kind": format!("{}List", resource.kind),
            "apiVersion": resource.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// The watch cache to serve a list from, and the revision its answer is at least at;
    /// `None` when the list must read the store.
    ///
    /// `resourceVersion=0` takes the cache as it is. A list of the current state (no
    /// `resourceVersion`, no paging) takes it once it holds every change under `prefix` up to
    /// the store's current revision: the store tells the newest such change, and the list
    /// waits (briefly) for the cache to apply it. Upstream serves these lists from its cache
    /// the same way (`ConsistentListFromCache`), asking etcd for a progress notification
    /// where this asks the store; a store that cannot tell is read instead.
    async fn cache_for_list(
        &self,
        resource: &Resource,
        prefix: &str,
        query: &Query,
    ) -> Option<(Arc<crate::watch_cache::Cache>, Revision)> {
        if query.get("continue").is_some_and(|c| !c.is_empty()) {
            return None;
        }
        let paged = query
            .get("limit")
            .is_some_and(|l| !l.is_empty() && l != "0");
        let consistent = match query.get("resourceVersion") {
            Some("0") => false,
            None | Some("") if !paged => true,
            _ => return None,
        };
        let cache = self.caches.get(&resource.key(None, "")).await?;
        if !consistent {
            return Some((cache, 0));
        }
        let current = self.store.current_revision().await.ok()?;
        let cached = cache.revision();
        if cached >= current {
            return Some((cache, current));
        }
        match self.store.last_change(prefix, cached, current).await.ok()? {
            LastChange::None => Some((cache, current)),
            // The change is on its way from the store's watch.
            LastChange::At(revision) => cache
                .wait_for(revision, Duration::from_secs(1))
                .await
                .then_some((cache, current)),
            LastChange::Unknown => None,
        }
    }

    /// A list without selectors as JSON bytes, spliced from the stored (or cached) encodings
    /// instead of decoding and re-encoding every object: the common `GET .../pods`. `None`
    /// when the request needs the general path (selectors, or an object whose encoding this
    /// cannot splice).
    pub async fn list_bytes(
        &self,
        resource: &Resource,
        request: &ResourceRequest,
        query: &Query,
    ) -> Result<Option<Bytes>, ApiError> {
        let filter = Filter::from_query(resource, query)?;
        if !filter.labels.is_everything() || !filter.fields.is_everything() {
            return Ok(None);
        }
        let prefix = resource.key(request.namespace.as_deref(), "");
        if let Some((cache, floor)) = self.cache_for_list(resource, &prefix, query).await {
            let (objects, revision) = cache.list(&prefix);
            let items: Vec<Bytes> = objects.iter().map(|o| o.json.clone()).collect();
            return Ok(Some(list_document(
                resource,
                revision.max(floor),
                None,
                &items,
            )));
        }
        let (limit, revision, start_after) = self.page_request(query, &prefix).await?;
        let page = match self
            .store
            .list(
                &prefix,
                ListOptions {
                    start_after,
                    limit,
                    revision,
                },
            )
            .await
        {
            Ok(page) => page,
            // The general path words the expired-continue answer.
            Err(StoreError::Compacted { .. }) => return Ok(None),
            Err(err) => return Err(store_error(resource, "", err)),
        };
        let mut items = Vec::with_capacity(page.kvs.len());
        for kv in &page.kvs {
            match splice_resource_version(&kv.value, kv.mod_revision) {
                Some(bytes) => items.push(bytes),
                None => return Ok(None),
            }
        }
        let continue_token = match (page.more, page.kvs.last()) {
            (true, Some(last)) => Some(encode_continue(page.revision, &last.key, &prefix)),
            _ => None,
        };
        Ok(Some(list_document(
            resource,
            page.revision,
            continue_token,
            &items,
        )))
    }

    /// What page of `prefix` a list asks for: its `limit` (0 and absent mean all), and where
    /// and at which revision it starts, from its `continue` token or its `resourceVersion`.
    async fn page_request(
        &self,
        query: &Query,
        prefix: &str,
    ) -> Result<(Option<usize>, Option<i64>, Option<String>), ApiError> {
        let limit: Option<usize> = match query.get("limit") {
            None | Some("") => None,
            Some(limit) => Some(limit.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid limit {limit:?}: must be a non-negative integer"
                ))
            })?),
        }
        .filter(|&l| l > 0);
        match query.get("continue").filter(|c| !c.is_empty()) {
            Some(token) => {
                let (revision, start) = decode_continue(token, prefix)?;
                Ok((limit, Some(revision), Some(start)))
            }
            None => Ok((limit, self.requested_revision(query).await?, None)),
        }
    }

    /// The revision a list must be served at, from `resourceVersion` and
    /// `resourceVersionMatch`; `None` for the latest.
    async fn requested_revision(&self, query: &Query) -> Result<Option<i64>, ApiError> {
        let rv = query.get("resourceVersion").unwrap_or("");
        let parse = || {
            rv.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "resourceVersion: Invalid value: {rv:?}: must be a non-negative integer"
                ))
            })
        };
        match query.get("resourceVersionMatch").unwrap_or("") {
            "Exact" => {
                if rv.is_empty() || rv == "0" {
                    return Err(ApiError::bad_request(
                        "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                    ));
                }
                Ok(Some(parse()?))
            }
            "" | "NotOlderThan" => {
                if !rv.is_empty() && rv != "0" {
                    let wanted = parse()?;
                    let current = self
                        .store
                        .current_revision()
                        .await
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    if wanted > current {
                        return Err(ApiError::timeout(format!(
                            "Too large resource version: {wanted}, current: {current}"
                        )));
                    }
                }
                Ok(None)
            }
            other => Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
            ))),
        }
    }

    /// Upstream's ServiceAccount admission for a new pod: its account must exist (the
    /// `default` one is given about three seconds to appear, as its controller makes it in a
    /// new namespace; upstream gives it one to two), the pod
    /// gets the account's `imagePullSecrets` when it names none, and the `kube-api-access-*`
    /// volume with a bound token unless the pod or the account opts out. Mirror pods are
    /// left alone.
    async fn admit_service_account(
        &self,
        namespace: &str,
        pod: &mut Value,
    ) -> Result<(), ApiError> {
        let account_name = objects::str_at(pod, "/spec/serviceAccountName").to_owned();
        let mirror = pod
            .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
            .is_some();
        if account_name.is_empty() || mirror {
            return Ok(());
        }
        let key = format!("/registry/serviceaccounts/{namespace}/{account_name}");
        let attempts = if account_name == "default" { 20 } else { 1 };
        let mut account = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(SERVICE_ACCOUNT_RETRY).await;
            }
            account = self
                .admission_lookup("/registry/serviceaccounts/", &key)
                .await?;
            if account.is_some() {
                break;
            }
        }
        let Some(account) = account else {
            // Named as upstream's admission names it: the generated name is not made yet.
            let name = match objects::str_at(pod, "/metadata/generateName") {
                "" => objects::str_at(pod, "/metadata/name"),
                prefix => prefix,
            };
            return Err(ApiError::forbidden_because(
                "",
                "pods",
                name,
                &format!(
                    "error looking up service account {namespace}/{account_name}: \
                     serviceaccount \"{account_name}\" not found"
                ),
            ));
        };
        let Some(spec) = pod.get_mut("spec") else {
            return Ok(());
        };
        let has_secrets = spec["imagePullSecrets"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        let secrets = &account["imagePullSecrets"];
        if !has_secrets && secrets.as_array().is_some_and(|s| !s.is_empty()) {
            spec["imagePullSecrets"] = secrets.clone();
        }
        let suffix = objects::generate_name("");
        cox_api::service_account::add_api_access_volume(
            spec,
            account["automountServiceAccountToken"].as_bool(),
            &suffix,
        );
        Ok(())
    }

    /// A core/v1 object (`namespace` empty for cluster-scoped kinds), as a GET reads it.
    pub async fn get_core(
        &self,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let resource = cox_api::registry::find("", "v1", plural)
            .ok_or_else(|| ApiError::internal(format!("{plural} are not registered")))?;
        let request = ResourceRequest {
            version: "v1".into(),
            namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
            resource: plural.to_owned(),
            name: name.to_owned(),
            verb: "get".into(),
            ..Default::default()
        };
        self.get(resource, &request).await
    }

    /// The object stored under `key` (of the resource stored under `prefix`) for admission's
    /// look-ups: from the watch cache when it has it, else from the store, as upstream's
    /// admission reads its informers and falls back to a live read on a miss.
    async fn admission_lookup(&self, prefix: &str, key: &str) -> Result<Option<Value>, ApiError> {
        if let Some(cache) = self.caches.start(prefix)
            && cache.is_ready()
            && let Some(cached) = cache.object(key)
        {
            return Ok(Some(cached.value()));
        }
        let found = self
            .store
            .get(key, None)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(found.map(|kv| serde_json::from_slice(&kv.value).unwrap_or_default()))
    }

    /// Fails unless the namespace exists and is not being deleted.
    async fn check_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        let key = format!("/registry/namespaces/{namespace}");
        let Some(object) = self.admission_lookup("/registry/namespaces/", &key).await? else {
            return Err(ApiError::not_found("", "namespaces", namespace));
        };
        if objects::str_at(&object, "/status/phase") == "Terminating" {
            let mut err = ApiError::forbidden("", "create", "", "namespaces", namespace, None, "");
            err.message = format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            );
            return Err(err);
        }
        Ok(())
    }

    pub async fn create(
        &self,
        resource: &Resource,
        request: &ResourceRequest,
        query: &Query,
        mut object: Value,
    ) -> Result<Written, ApiError> {
        objects::prepare_create(resource, request.namespace.as_deref(), &mut object)?;
        if resource.plural == "namespaces" {
            default_namespace(&mut object);
        } else if resource.group.is_empty() && resource.plural == "pods" {
            cox_api::defaults::pod_create(&mut object);
        } else {
            cox_api::defaults::apply(resource.group, resource.kind, &mut object);
        }
        cox_api::strict::prune_unknown(
            resource.group,
            resource.version,
            resource.kind,
            &mut object,
        );
        cox_api::go_json::normalize(resource.group, resource.version, resource.kind, &mut object);
        // Admission's changes below (a pod's account and tolerations, its token volume, a
        // Service's addresses) are not the writer's, as upstream.
        crate::managed::record(resource, request, query, None, &mut object);
        if resource.group.is_empty() && resource.plural == "pods" {
            cox_api::defaults::pod_admission(&mut object);
        } else if resource.group == "batch" && resource.plural == "jobs" {
            cox_api::defaults::job_create(&mut object);
        }
        check_valid(resource, &object)?;
        let name = objects::str_at(&object, "/metadata/name").to_owned();
        if let Some(namespace) = request.namespace.as_deref() {
            self.check_namespace(namespace).await?;
            if resource.group.is_empty() && resource.plural == "pods" {
                self.admit_service_account(namespace, &mut object).await?;
            }
        }
        let dry = dry_run(query)?;
        let key = resource.key(request.namespace.as_deref(), &name);
        // A Service is looked for before its addresses are allocated; for everything else the
        // store's create answers that the name is taken.
        if !dry
            && is_service(resource)
            && self
                .store
                .get(&key, None)
                .await
                .map_err(|e| store_error(resource, &name, e))?
                .is_some()
        {
            // Answer before allocating anything for an object that cannot be created.
            return Err(ApiError::already_exists(
                resource.group,
                resource.plural,
                &name,
            ));
        }
        let taken = if is_service(resource) {
            self.services.prepare_create(&mut object).await?
        } else {
            Taken::default()
        };
        if dry {
            self.services.release(&taken).await;
            return Ok(Written { object, json: None });
        }
        let stored = encode(&object)?;
        let written = self.store.create(&key, stored.clone()).await;
        match written {
            Ok(revision) => {
                objects::set_resource_version(&mut object, revision);
                let json = splice_resource_version(&stored, revision);
                Ok(Written { object, json })
            }
            Err(err) => {
                self.services.release(&taken).await;
                Err(store_error(resource, &name, err))
            }
        }
    }

    /// PUT: replaces the object (its status, on `/status`).
    pub async fn update(
        &self,
        resource: &Resource,
        request: &ResourceRequest,
        query: &Query,
        object: Value,
    ) -> Result<Written, ApiError> {
        let wanted_rv = objects::str_at(&object, "/metadata/resourceVersion").to_owned();
        self.guarded_update(
            resource,
            request,
            query,
            !wanted_rv.is_empty(),
            move |old, _| {
                if !wanted_rv.is_empty()
                    && objects::str_at(old, "/metadata/resourceVersion") != wanted_rv
                {
                    return Err(None);
                }
                Ok(object.clone())
            },
        )
        .await
    }

    /// PATCH with JSON patch or merge patch.
    /// PATCH of a `resource` object, the patch written against `served`'s form of it (the
    /// same resource, or another version stored as `resource`); answers the stored form.
    /// `check` judges the patched object against the one it replaces before it is stored.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        resource: &Resource,
        served: &'static Resource,
        request: &ResourceRequest,
        query: &Query,
        patch_type: PatchType,
        body: Bytes,
        check: Option<&PatchCheck<'_>>,
    ) -> Result<Written, ApiError> {
        let group = served.group;
        let version = served.version;
        let kind = served.kind;
        let name = request.name.clone();
        self.guarded_update(resource, request, query, false, move |stored, _| {
            let view = conversion::from_storage(served, stored.clone());
            let old = &view;
            let patched = match patch_type {
                PatchType::Json => patch::json_patch(old, &body),
                PatchType::Merge => patch::merge_patch(old, &body),
                PatchType::StrategicMerge => {
                    let patched = strategic_merge(old, &body, group, version, kind)?;
                    check_patched_types(served, &patched).map_err(Some)?;
                    let patched = conversion::to_storage(served, patched);
                    if let Some(check) = check {
                        check(&patched, stored).map_err(Some)?;
                    }
                    return Ok(patched);
                }
                PatchType::Apply => unreachable_patch(),
            };
            let patched = patched.map_err(|e| Some(patch_error(group, kind, &name, e)))?;
            check_patched_types(served, &patched).map_err(Some)?;
            // A resourceVersion in the patch is a precondition.
            let wanted = objects::str_at(&patched, "/metadata/resourceVersion");
            if !wanted.is_empty() && wanted != objects::str_at(old, "/metadata/resourceVersion") {
                return Err(None);
            }
            let patched = conversion::to_storage(served, patched);
            if let Some(check) = check {
                check(&patched, stored).map_err(Some)?;
            }
            Ok(patched)
        })
        .await
    }

    /// GET of the `scale` subresource.
    pub async fn get_scale(
        &self,
        resource: &Resource,
        request: &ResourceRequest,
    ) -> Result<Value, ApiError> {
        Ok(scale::scale_of(
            resource,
            &self.get(resource, request).await?,
        ))
    }

    /// PUT (a whole Scale) or PATCH (of the Scale view) of the `scale` subresource: changes the
    /// object's `spec.replicas`; answers the new Scale.
    pub async fn change_scale(
        &self,
        resource: &Resource,
        request: &ResourceRequest,
        query: &Query,
        change: ScaleChange,
    ) -> Result<Value, ApiError> {
        let pinned = matches!(&change, ScaleChange::Replace(scale) if !objects::str_at(scale, "/metadata/resourceVersion").is_empty());
        let group = resource.group;
        let name = request.name.clone();
        let updated = self
            .guarded_update(resource, request, query, pinned, move |old, _| {
                let scale = match &change {
                    ScaleChange::Replace(scale) => scale.clone(),
                    ScaleChange::Patch(patch_type, body) => {
                        let view = scale::scale_of(resource, old);
                        match patch_type {
                            PatchType::Json => patch::json_patch(&view, body),
                            _ => patch::merge_patch(&view, body),
                        }
                        .map_err(|e| Some(patch_error(group, "Scale", &name, e)))?
                    }
                };
                let new = scale::apply_scale(old, &scale).map_err(Some)?;
                let wanted = objects::str_at(&new, "/metadata/resourceVersion");
                if wanted != objects::str_at(old, "/metadata/resourceVersion") {
                    return Err(None);
                }
                Ok(new)
            })
            .await?;
        Ok(scale::scale_of(resource, &updated.object))
    }

    /// `pods/<name>/binding`: assigns the pod to a node, once (as the scheduler does).
    pub async fn bind(
        &self,
        pods: &Resource,
        request: &ResourceRequest,
        query: &Query,
        binding: &Value,
    ) -> Result<Value, ApiError> {
        let node = objects::str_at(binding, "/target/name").to_owned();
        if node.is_empty() {
            let errors = [cox_api::validation::FieldError::required("target.name", "")];
            return Err(ApiError::invalid("", "Binding", &request.name, &errors));
        }
        let annotations = binding.pointer("/metadata/annotations").cloned();
        let name = request.name.clone();
        self.guarded_update(pods, request, query, false, move |old, _| {
            let bound = objects::str_at(old, "/spec/nodeName");
            if !bound.is_empty() {
                return Err(Some(ApiError::conflict(
                    "",
                    "pods",
                    &name,
                    &format!("pod {name} is already assigned to node \"{bound}\""),
                )));
            }
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Err(Some(ApiError::conflict(
                    "",
                    "pods",
                    &name,
                    &format!("pod {name} is being deleted, cannot be assigned to a host"),
                )));
            }
            let mut new = old.clone();
            new["spec"]["nodeName"] = json!(node);
            set_pod_scheduled(&mut new);
            if let Some(Value::Object(extra)) = &annotations {
                for (key, value) in extra {
                    new["metadata"]["annotations"][key] = value.clone();
                }
            }
            Ok(new)
        })
        .await?;
        Ok(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        )
    }

    /// `pods/<name>/eviction`: deletes the pod unless a PodDisruptionBudget selecting it
    /// allows no disruption now (429, as upstream, so that drains retry).
    pub async fn evict(
        &self,
        pods: &Resource,
        request: &ResourceRequest,
        query: &Query,
        eviction: &Value,
    ) -> Result<Value, ApiError> {
        let pod = self.get(pods, request).await?;
        let namespace = request.namespace.clone().unwrap_or_default();
        if let Some(budgets) = cox_api::registry::find("policy", "v1", "poddisruptionbudgets") {
            let list = self
                .store
                .list(&budgets.key(Some(&namespace), ""), ListOptions::default())
                .await
                .map_err(|e| store_error(budgets, "", e))?;
            for kv in &list.kvs {
                let budget = decode(kv)?;
                let selector = budget
                    .pointer("/spec/selector")
                    .cloned()
                    .unwrap_or(Value::Null);
                let selects = cox_api::labels::Selector::from_label_selector(&selector)
                    .is_ok_and(|s| s.matches_json(pod.pointer("/metadata/labels")));
                if !selects {
                    continue;
                }
                let allowed = budget
                    .pointer("/status/disruptionsAllowed")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let observed = budget
                    .pointer("/status/observedGeneration")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let generation = budget
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if allowed < 1 || observed < generation {
                    let mut error = ApiError::too_many_requests(10);
                    error.message =
                        "Cannot evict pod as it would violate the pod's disruption budget.".into();
                    return Err(error);
                }
            }
        }
        let options = eviction
            .get("deleteOptions")
            .cloned()
            .unwrap_or_else(|| json!({}));
        self.delete(pods, request, query, &options).await?;
        Ok(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        )
    }

    /// PUT of `namespaces/<name>/finalize`: only `spec.finalizers` changes (the namespace
    /// controller removes its finalizer there once the namespace is empty).
    pub async fn finalize_namespace(
        &self,
        resource: &Resource,
        request: &ResourceRequest,
        query: &Query,
        object: Value,
    ) -> Result<Value, ApiError> {
        let finalizers = object
            .pointer("/spec/finalizers")
            .cloned()
            .unwrap_or_else(|| json!([]));
        self.guarded_update(resource, request, query, false, move |old, _| {
            let mut new = old.clone();
            new["spec"]["finalizers"] = finalizers.clone();
            Ok(new)
        })
        .await
        .map(|written| written.object)
    }

    /// Reads, changes and writes back with compare-and-swap, retrying when another write got
    /// in between (unless the client pinned the version: then that is its 409).
    async fn guarded_update<F>(
        &self,
        resource: &Resource,
        request: &ResourceRequest,
        query: &Query,
        pinned: bool,
        change: F,
    ) -> Result<Written, ApiError>
    where
        F: Fn(&Value, &KeyValue) -> Result<Value, Option<ApiError>>,
    {
        let scope = if request.subresource == "status" {
            UpdateScope::Status
        } else {
            UpdateScope::Main
        };
        let dry = dry_run(query)?;
        let conflict = || {
            ApiError::conflict(
                resource.group,
                resource.plural,
                &request.name,
                ApiError::MODIFIED,
            )
        };
        for _ in 0..MAX_RETRIES {
            let current = self.current(resource, request).await?;
            let old = decode(&current)?;
            let mut new = change(&old, &current).map_err(|e| e.unwrap_or_else(conflict))?;
            objects::prepare_update(resource, &old, &mut new, scope)?;
            if scope == UpdateScope::Main {
                cox_api::defaults::apply(resource.group, resource.kind, &mut new);
                cox_api::strict::prune_unknown(
                    resource.group,
                    resource.version,
                    resource.kind,
                    &mut new,
                );
                check_valid(resource, &new)?;
            }
            cox_api::go_json::normalize(resource.group, resource.version, resource.kind, &mut new);
            // A PUT or PATCH of the main resource; not a binding, which writes the pod too.
            let users_update = matches!(request.verb.as_str(), "update" | "patch");
            if scope == UpdateScope::Main && request.subresource.is_empty() && users_update {
                check_valid_update(resource, &old, &new)?;
            }
            crate::managed::record(resource, request, query, Some(&old), &mut new);
            let (taken, freed) = if is_service(resource) && scope == UpdateScope::Main {
                self.services.prepare_update(&old, &mut new).await?
            } else {
                (Taken::default(), Taken::default())
            };
            let mut unchanged = old.clone();
            if let Some(metadata) = unchanged.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.remove("resourceVersion");
            }
            if new == unchanged || dry {
                self.services.release(&taken).await;
                objects::set_resource_version(&mut new, current.mod_revision);
                return Ok(Written {
                    object: new,
                    json: None,
                });
            }
            let stored = encode(&new)?;
            let written = self
                .store
                .update(&current.key, stored.clone(), current.mod_revision)
                .await;
            if written.is_err() {
                self.services.release(&taken).await;
            }
            match written {
                Ok(revision) => {
                    self.services.release(&freed).await;
                    objects::set_resource_version(&mut new, revision);
                    if finalized(resource, &new) {
                        // Marked for deletion and nothing holds it any more: it goes now. A
                        // write that got in between keeps it until that writer finishes.
                        match self.store.delete(&current.key, Some(revision)).await {
                            Ok(_) if is_service(resource) => {
                                self.services.release(&Services::taken_by(&new)).await
                            }
                            Ok(_)
                            | Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => {}
                            Err(err) => return Err(store_error(resource, &request.name, err)),
                        }
                    }
                    let json = splice_resource_version(&stored, revision);
                    return Ok(Written { object: new, json });
                }
                Err(StoreError::Conflict { .. }) if !pinned => continue,
                Err(err) => return Err(store_error(resource, &request.name, err)),
            }
        }
        Err(conflict())
    }

    /// DELETE of one object, as [`deletion::plan`] decides: removed now, or kept marked
    /// (`deletionTimestamp`, the propagation policy's finalizer, a pod's grace period,
    /// namespaces Terminating) until its finalizers are gone. Returns the answer's code and
    /// body.
    pub async fn delete(
        &self,
        resource: &Resource,
        request: &ResourceRequest,
        query: &Query,
        options: &Value,
    ) -> Result<(StatusCode, Value), ApiError> {
        // Checked before the object is looked up, as upstream's handler does.
        let choices = deletion::Options::parse(options)?;
        let dry = dry_run(query)?
            || options
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
        for _ in 0..MAX_RETRIES {
            let current = self.current(resource, request).await?;
            let object = decode(&current)?;
            check_preconditions(resource, &request.name, &object, options)?;
            match deletion::plan(resource, &object, options, &choices) {
                Plan::Pending => return Ok((StatusCode::OK, object)),
                Plan::Keep { mark, finalizers } => {
                    let mut marked = object.clone();
                    apply_mark(&mut marked, mark, finalizers);
                    if resource.group.is_empty() && resource.plural == "namespaces" {
                        marked["status"]["phase"] = json!("Terminating");
                    }
                    // Upstream answers 202 when dependents were asked to go
                    // (`orphanDependents: false`) and the object is still there.
                    let code = if choices.orphan_dependents == Some(false) {
                        StatusCode::ACCEPTED
                    } else {
                        StatusCode::OK
                    };
                    if marked == object || dry {
                        return Ok((code, marked));
                    }
                    if let Some(metadata) =
                        marked.get_mut("metadata").and_then(Value::as_object_mut)
                    {
                        metadata.remove("resourceVersion");
                    }
                    match self
                        .store
                        .update(&current.key, encode(&marked)?, current.mod_revision)
                        .await
                    {
                        Ok(revision) => {
                            objects::set_resource_version(&mut marked, revision);
                            return Ok((code, marked));
                        }
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(err) => return Err(store_error(resource, &request.name, err)),
                    }
                }
                Plan::Remove => {}
            }
            if dry {
                return Ok((StatusCode::OK, object));
            }
            match self
                .store
                .delete(&current.key, Some(current.mod_revision))
                .await
            {
                Ok(_) => {
                    if is_service(resource) {
                        self.services.release(&Services::taken_by(&object)).await;
                    }
                    let uid = objects::str_at(&object, "/metadata/uid");
                    return Ok((
                        StatusCode::OK,
                        status::success(resource.group, resource.plural, &request.name, uid),
                    ));
                }
                Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => continue,
                Err(err) => return Err(store_error(resource, &request.name, err)),
            }
        }
        Err(ApiError::conflict(
            resource.group,
            resource.plural,
            &request.name,
            ApiError::MODIFIED,
        ))
    }

    /// DELETE of a collection: every object the selectors match, each as [`Rest::delete`]
    /// with the same options; answers the list deleted.
    pub async fn delete_collection(
        &self,
        resource: &Resource,
        request: &ResourceRequest,
        query: &Query,
        options: &Value,
    ) -> Result<Value, ApiError> {
        // Bad options are refused before anything is listed, even when nothing matches.
        deletion::Options::parse(options)?;
        let mut list_query = query.clone();
        list_query.remove("limit");
        list_query.remove("continue");
        let list = self.list(resource, request, &list_query).await?;
        let mut deleted = Vec::new();
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            let name = objects::str_at(&item, "/metadata/name").to_owned();
            let namespace = item
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let one = ResourceRequest {
                name,
                namespace,
                ..request.clone()
            };
            match self.delete(resource, &one, query, options).await {
                Ok(_) => deleted.push(item),
                Err(err) if err.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        Ok(json!({
            "kind": format!("{}List", resource.kind),
            "apiVersion": resource.api_version(),
            "metadata": {"resourceVersion": list["metadata"]["resourceVersion"].clone()},
            "items": deleted,
        }))
    }
}

/// True when an object marked for deletion has no finalizer left (for namespaces, neither in
/// `metadata.finalizers` nor in `spec.finalizers`) and no grace period is running (a pod
/// whose finalizers go before its containers have stopped waits for its kubelet, as
/// upstream's `shouldDeleteDuringUpdate`).
fn finalized(resource: &Resource, object: &Value) -> bool {
    let grace_running = object
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|seconds| seconds > 0);
    let empty = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    };
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
        && !grace_running
        && empty("/metadata/finalizers")
        && (resource.plural != "namespaces" || empty("/spec/finalizers"))
}

/// Marks `object` for deletion as `mark` says, with `finalizers` when they change. The
/// first mark also bumps a tracked `generation`, as upstream does, so that controllers see
/// the change.
fn apply_mark(object: &mut Value, mark: Mark, finalizers: Option<Vec<String>>) {
    let now = objects::now();
    let stamp = objects::str_at(object, "/metadata/deletionTimestamp").to_owned();
    let (timestamp, seconds) = match mark {
        Mark::Grace { seconds } => (objects::add_seconds(&now, seconds), seconds),
        Mark::Shorten { from, to } => (objects::add_seconds(&stamp, to - from), to),
        // A deadline already passed stands; a later one (or none) becomes now.
        Mark::Finalizing if objects::is_future(&stamp) == Some(false) => (Some(stamp.clone()), 0),
        Mark::Finalizing => (None, 0),
    };
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if stamp.is_empty()
        && let Some(generation) = metadata.get("generation").and_then(Value::as_i64)
        && generation > 0
    {
        metadata.insert("generation".into(), json!(generation + 1));
    }
    metadata.insert(
        "deletionTimestamp".into(),
        Value::String(timestamp.unwrap_or(now)),
    );
    metadata.insert("deletionGracePeriodSeconds".into(), json!(seconds));
    if let Some(finalizers) = finalizers {
        metadata.insert("finalizers".into(), json!(finalizers));
    }
}

/// `stored` with `"resourceVersion":"<revision>"` as the first key of its top-level
/// `metadata`. Objects are stored without it, encoded by serde_json with sorted keys, so
/// `metadata` follows only `apiVersion` and `kind` (plain strings): the first `"metadata":{`
/// is the top-level one. Anything else is refused (`None`) and takes the decoding path.
pub(crate) fn splice_resource_version(stored: &[u8], revision: i64) -> Option<Bytes> {
    const KEY: &[u8] = b"\"metadata\":{";
    let at = stored.windows(KEY.len()).position(|w| w == KEY)?;
    let before = &stored[..at];
    // Only the opening brace of the object itself may come before it.
    if before.first() != Some(&b'{') || before[1..].contains(&b'{') {
        return None;
    }
    let insert = format!("\"resourceVersion\":\"{revision}\"");
    let rest = &stored[at + KEY.len()..];
    let mut out = Vec::with_capacity(stored.len() + insert.len() + 1);
    out.extend_from_slice(&stored[..at + KEY.len()]);
    out.extend_from_slice(insert.as_bytes());
    if rest.first() != Some(&b'}') {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    Some(Bytes::from(out))
}

/// A created or updated object, and (when it was stored) its JSON with the resourceVersion
/// spliced into the stored encoding: the answer, without encoding the object a second time.
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    pub json: Option<Bytes>,
}

/// A `<Kind>List` document around already-encoded items.
fn list_document(
    resource: &Resource,
    revision: i64,
    continue_token: Option<String>,
    items: &[Bytes],
) -> Bytes {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    let head = format!(
        "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
        resource.kind,
        resource.api_version(),
        metadata
    );
    let size = head.len() + items.iter().map(|i| i.len() + 1).sum::<usize>() + 2;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(head.as_bytes());
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

/// Per-kind validation, answered as upstream's 422.
fn check_valid(resource: &Resource, object: &Value) -> Result<(), ApiError> {
    let errors = cox_api::validate::validate(resource.group, resource.kind, object);
    if errors.is_empty() {
        return Ok(());
    }
    let name = objects::str_at(object, "/metadata/name");
    Err(ApiError::invalid(
        resource.group,
        resource.kind,
        name,
        &errors,
    ))
}

/// What an update of the main resource may not change (`validate_update`). The stored object
/// is judged as this server now defaults and writes it, so that one stored by an older
/// version is not taken for a change.
fn check_valid_update(resource: &Resource, old: &Value, new: &Value) -> Result<(), ApiError> {
    let mut before = old.clone();
    cox_api::defaults::apply(resource.group, resource.kind, &mut before);
    cox_api::go_json::normalize(resource.group, resource.version, resource.kind, &mut before);
    let errors = cox_api::validate::validate_update(resource.group, resource.kind, &before, new);
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        resource.group,
        resource.kind,
        objects::str_at(new, "/metadata/name"),
        &errors,
    ))
}

fn is_service(resource: &Resource) -> bool {
    resource.group.is_empty() && resource.plural == "services"
}

/// A strategic merge patch of a built-in kind (the schema gives its lists' merge keys); a kind
/// the schema does not know gets upstream's 415.
fn strategic_merge(
    old: &Value,
    body: &[u8],
    group: &str,
    version: &str,
    kind: &str,
) -> Result<Value, Option<ApiError>> {
    let Some(api_kind) = cox_api::schema::kind(group, version, kind) else {
        return Err(Some(ApiError::unsupported_media_type(
            "application/strategic-merge-patch+json",
        )));
    };
    let patch: Value = serde_json::from_slice(body).map_err(|e| {
        Some(ApiError::bad_request(format!(
            "the patch is not valid JSON: {e}"
        )))
    })?;
    let patched = cox_api::strategic_merge::apply(old, &patch, api_kind.message).map_err(|e| {
        let mut error = match e.http_status() {
            400 => ApiError::bad_request(e.to_string()),
            422 => ApiError::invalid(group, kind, objects::str_at(old, "/metadata/name"), &[]),
            _ => ApiError::internal(e.to_string()),
        };
        error.message = e.to_string();
        Some(error)
    })?;
    // A resourceVersion in the patch is a precondition.
    let wanted = objects::str_at(&patched, "/metadata/resourceVersion");
    if !wanted.is_empty() && wanted != objects::str_at(old, "/metadata/resourceVersion") {
        return Err(None);
    }
    Ok(patched)
}

fn unreachable_patch() -> Result<Value, patch::PatchError> {
    Err(patch::PatchError::Apply(
        "this patch type is answered before it is applied".into(),
    ))
}

/// A patch whose result its Go type cannot hold (`"replicas": "3"`), refused as upstream
/// refuses it: the patched object shown as an invalid `patch`.
fn check_patched_types(served: &Resource, patched: &Value) -> Result<(), ApiError> {
    let Some(error) =
        cox_api::go_decode::type_error(served.group, served.version, served.kind, patched)
    else {
        return Ok(());
    };
    let shown = serde_json::to_string(patched).unwrap_or_default();
    Err(ApiError::invalid(
        "",
        "",
        "",
        &[cox_api::validation::FieldError::invalid(
            "patch", &shown, &error,
        )],
    ))
}

fn patch_error(group: &str, kind: &str, name: &str, err: patch::PatchError) -> ApiError {
    match err {
        patch::PatchError::Decode(message) => ApiError::bad_request(message),
        patch::PatchError::Apply(message) => {
            let mut error = ApiError::invalid(group, kind, name, &[]);
            error.message = message;
            error
        }
    }
}

/// `preconditions.uid` and `preconditions.resourceVersion` of a DeleteOptions.
fn check_preconditions(
    resource: &Resource,
    name: &str,
    object: &Value,
    options: &Value,
) -> Result<(), ApiError> {
    let conflict =
        |detail: String| ApiError::conflict(resource.group, resource.plural, name, &detail);
    if let Some(uid) = options
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
    {
        let actual = objects::str_at(object, "/metadata/uid");
        if uid != actual {
            return Err(conflict(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
            )));
        }
    }
    if let Some(rv) = options
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
    {
        let actual = objects::str_at(object, "/metadata/resourceVersion");
        if rv != actual {
            return Err(conflict(format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
            )));
        }
    }
    Ok(())
}

/// What upstream's namespace strategy fills in: the `kubernetes` finalizer and phase Active.
pub fn default_namespace(object: &mut Value) {
    if object.pointer("/spec/finalizers").is_none() {
        object["spec"] = json!({"finalizers": ["kubernetes"]});
    }
    object["status"] = json!({"phase": "Active"});
    let name = objects::str_at(object, "/metadata/name").to_owned();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = metadata.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert("kubernetes.io/metadata.name".into(), Value::String(name));
        }
    }
}

/// A judgement of a patched object (first) against the stored one it replaces.
pub type PatchCheck<'a> = dyn Fn(&Value, &Value) -> Result<(), ApiError> + Sync + 'a;

/// Builds the response for an object answer.
pub fn respond(status: StatusCode, object: &Value) -> Response<Body> {
    h::json(status, object)
}

/// Binding a pod marks it scheduled, as upstream's binding storage does: the `PodScheduled`
/// condition becomes True (replacing an earlier Unschedulable verdict).
fn set_pod_scheduled(pod: &mut Value) {
    let scheduled = json!({
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": objects::now(),
    });
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    let conditions = &mut pod["status"]["conditions"];
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    if let Some(list) = conditions.as_array_mut() {
        list.retain(|c| c["type"] != "PodScheduled");
        list.push(scheduled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_versions_are_spliced_into_stored_objects() {
        let stored = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{}}"#;
        let spliced = splice_resource_version(stored, 42).unwrap();
        let value: Value = serde_json::from_slice(&spliced).unwrap();
        assert_eq!(
            value["metadata"],
            json!({"name": "a", "resourceVersion": "42"})
        );
        let empty =
            splice_resource_version(br#"{"apiVersion":"v1","kind":"Pod","metadata":{}}"#, 7)
                .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&empty).unwrap()["metadata"],
            json!({"resourceVersion": "7"})
        );
        // A metadata key that is not the top-level one is refused, not mangled.
        assert!(splice_resource_version(br#"{"data":{"metadata":{}},"metadata":{}}"#, 1).is_none());
        assert!(splice_resource_version(br#"{"apiVersion":"v1"}"#, 1).is_none());
        let pods = cox_api::registry::find("", "v1", "pods").unwrap();
        let doc = list_document(
            pods,
            9,
            Some("t".into()),
            &[
                Bytes::from_static(b"{\"a\":1}"),
                Bytes::from_static(b"{\"b\":2}"),
            ],
        );
        let value: Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(
            value,
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "9", "continue": "t"}, "items": [{"a": 1}, {"b": 2}]})
        );
    }

    #[test]
    fn objects_go_when_their_last_finalizer_does_unless_a_grace_period_runs() {
        let pods = cox_api::registry::find("", "v1", "pods").unwrap();
        let marked = |grace: i64, finalizers: Value| {
            json!({"metadata": {
                "name": "p",
                "deletionTimestamp": "2026-01-01T00:00:00Z",
                "deletionGracePeriodSeconds": grace,
                "finalizers": finalizers,
            }})
        };
        assert!(finalized(pods, &marked(0, json!([]))));
        assert!(!finalized(pods, &marked(0, json!(["orphan"]))));
        assert!(!finalized(pods, &marked(30, json!([]))));
        assert!(!finalized(pods, &json!({"metadata": {"name": "p"}})));
        let namespaces = cox_api::registry::find("", "v1", "namespaces").unwrap();
        let mut namespace = marked(0, json!([]));
        namespace["spec"] = json!({"finalizers": ["kubernetes"]});
        assert!(!finalized(namespaces, &namespace));
        namespace["spec"] = json!({"finalizers": []});
        assert!(finalized(namespaces, &namespace));
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let token = encode_continue(42, "/registry/pods/ns/web-7", "/registry/pods/");
        let (revision, start) = decode_continue(&token, "/registry/pods/").unwrap();
        assert_eq!((revision, start.as_str()), (42, "/registry/pods/ns/web-7"));
        assert!(decode_continue("!!!", "/registry/pods/").is_err());
        let escape = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"../secrets/x"}"#);
        assert!(decode_continue(&escape, "/registry/pods/").is_err());
    }
}
