//! Serving: TLS with optional client certificates, HTTP/1.1 and HTTP/2, then for each
//! request authentication → authorization → routing → the handler, with every error answered
//! as a `Status`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use cox_api::conversion;
use cox_api::patch::PatchType;
use cox_api::registry::{self, Resource};
use cox_api::status::ApiError;
use cox_store::Store;
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::authn::{self, Tokens, User};
use crate::http::{self as h, Body};
use crate::metrics::Metrics;
use crate::request::{self, Query, ResourceRequest, Route};
use crate::rest::{self, Rest};
use crate::tls::{self, ClusterCerts};
use crate::{discovery, openapi, pod_connect, proxy, tables, watch};

/// HTTP/2 streams one connection may have open (upstream's --http2-max-streams-per-connection
/// is of the same order).
const MAX_STREAMS_PER_CONNECTION: u32 = 1000;

/// The Kubernetes minor version served; kubectl's dispatcher picks its client by it.
pub const KUBERNETES_MINOR: &str = "33";
pub const GIT_VERSION: &str = "v1.33.0+cox";

/// Decides whether a user may do something. RBAC will implement this; today only
/// [`MastersOnly`] exists.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    fn allowed(&self, user: &User, request: &ResourceRequest) -> bool;

    /// A request for a path that is no resource (`/healthz`, `/version`, `/metrics`).
    fn allowed_path(&self, user: &User, verb: &str, path: &str) -> bool;

    /// The status of a SelfSubjectRulesReview: what `user` may do in `namespace`
    /// (`kubectl auth can-i --list`). By default: nothing known, `incomplete`.
    fn rules_review(&self, _user: &User, _namespace: &str) -> serde_json::Value {
        json!({"resourceRules": [], "nonResourceRules": [], "incomplete": true})
    }

    /// Whether `user` may write `object` (a Role, ClusterRole or binding of `plural`) as
    /// it is about to be stored, `old` being the stored one: nobody grants what they do
    /// not hold. By default there is nothing to check.
    fn check_rbac_write(
        &self,
        _user: &User,
        _plural: &str,
        _object: &serde_json::Value,
        _old: Option<&serde_json::Value>,
    ) -> Result<(), ApiError> {
        Ok(())
    }
}

/// `system:masters` may do anything; others may only ask about themselves (until RBAC lands).
#[derive(Debug, Clone, Copy, Default)]
pub struct MastersOnly;

impl Authorizer for MastersOnly {
    fn allowed(&self, user: &User, request: &ResourceRequest) -> bool {
        // Anyone may ask about themselves (upstream's `system:basic-user`).
        let about_self = request.verb == "create"
            && request.resource.starts_with("selfsubject")
            && matches!(
                request.group.as_str(),
                "authentication.k8s.io" | "authorization.k8s.io"
            );
        about_self || user.in_group("system:masters")
    }

    fn allowed_path(&self, user: &User, _verb: &str, _path: &str) -> bool {
        user.in_group("system:masters")
    }
}

/// What the server needs besides the store.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ip:port` clients are told to reach the server at (discovery's serverAddress).
    pub advertise_address: String,
    pub certs: ClusterCerts,
    pub tokens: Tokens,
    /// Signs and checks ServiceAccount tokens.
    pub signer: Arc<crate::sa_tokens::TokenSigner>,
    /// The Services' virtual IP range (`--service-cidr`).
    pub service_network: (std::net::Ipv4Addr, u8),
    /// The node port range (`--service-node-port-range`).
    pub node_ports: (u16, u16),
}

#[derive(Debug)]
struct State {
    rest: Rest,
    /// Pods' logs and streams are their kubelets'.
    kubelets: crate::kubelet::KubeletClient,
    /// Services' and pods' `proxy` subresources reach the backends through this.
    proxies: proxy::ProxyClient,
    config: Config,
    authorizer: Box<dyn Authorizer>,
    metrics: Metrics,
}

/// The API server.
#[derive(Debug, Clone)]
pub struct ApiServer {
    state: Arc<State>,
}

impl ApiServer {
    pub fn new(store: Arc<dyn Store>, config: Config) -> Self {
        let (network, prefix) = config.service_network;
        let services = Arc::new(crate::services::Services::new(
            store.clone(),
            network,
            prefix,
            config.node_ports,
        ));
        let caches = Arc::new(crate::watch_cache::WatchCaches::new(store.clone()));
        caches.start_all();
        let authorizer: Box<dyn Authorizer> = match crate::rbac::Rbac::new(&caches) {
            Some(rbac) => Box::new(rbac),
            None => Box::new(MastersOnly),
        };
        Self {
            state: Arc::new(State {
                rest: Rest {
                    caches,
                    store,
                    services,
                },
                kubelets: crate::kubelet::KubeletClient::new(config.certs.clone()),
                proxies: proxy::ProxyClient::default(),
                config,
                authorizer,
                metrics: Metrics::default(),
            }),
        }
    }

    pub fn rest(&self) -> &Rest {
        &self.state.rest
    }

    /// Serves HTTPS on `listener` until `shutdown` completes.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), crate::tls::TlsError> {
        let acceptor = TlsAcceptor::from(Arc::new(self.state.config.certs.server_config()?));
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                () = &mut shutdown => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "accepting a connection");
                        continue;
                    }
                },
            };
            // Small answers and watch events must leave at once, not wait on Nagle's algorithm
            // for the client's delayed ACK (a 40 ms stall per response).
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, error = %err, "setting TCP_NODELAY");
            }
            let acceptor = acceptor.clone();
            let state = Arc::clone(&self.state);
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(err) => {
                        tracing::debug!(%peer, error = %err, "TLS handshake failed");
                        return;
                    }
                };
                let cert_user = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(tls::user_of)
                    .map(|(name, groups)| User { name, groups });
                let service = service_fn(move |request| {
                    let state = Arc::clone(&state);
                    let cert_user = cert_user.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            handle(&state, cert_user, peer, request).await,
                        )
                    }
                });
                let mut builder =
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                // Each watch is a stream; informers and kubectl multiplex many on one connection.
                // Large lists are megabytes: flow-control windows grow with the connection's
                // bandwidth instead of stalling every 64 KiB.
                builder
                    .http2()
                    .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
                    .adaptive_window(true);
                if let Err(err) = builder
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await
                {
                    tracing::debug!(%peer, error = %err, "connection ended");
                }
            });
        }
    }
}

async fn handle(
    state: &State,
    cert_user: Option<User>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    let method = request.method().clone();
    let query = Query::parse(request.uri().query());
    let route = request::route(&method, request.uri().path(), query.flag("watch"));
    let (verb, resource) = match &route {
        Route::Resource(r) => (r.verb.clone(), r.resource.clone()),
        _ => (method.as_str().to_ascii_lowercase(), String::new()),
    };
    // A proxy's answer is the backend's, never re-encoded.
    let protobuf = h::prefers_protobuf(request.headers().get(header::ACCEPT))
        && !matches!(&route, Route::Resource(r) if r.subresource == "proxy");
    let mut response = match respond(state, cert_user, peer, route, query, request).await {
        Ok(response) => response,
        Err(err) => h::error(&err),
    };
    if protobuf {
        response = h::into_protobuf(response, verb == "watch").await;
    }
    let status = response.status();
    state
        .metrics
        .record(&verb, &resource, status.as_u16(), started.elapsed());
    tracing::debug!(%peer, %method, %verb, %resource, code = status.as_u16(), "request");
    response
}

/// Roles, ClusterRoles and their bindings, whose writes are checked for escalation.
fn is_rbac(resource: &Resource) -> bool {
    resource.group == "rbac.authorization.k8s.io"
}

/// A review (`kubectl auth whoami`, `kubectl auth can-i`, a TokenReview), answered.
async fn review(
    state: &State,
    user: &User,
    resource: &'static cox_api::registry::Resource,
    request: &ResourceRequest,
    http_request: Request<Incoming>,
    content_type: &str,
) -> Result<Response<Body>, ApiError> {
    if request.verb != "create" {
        return Err(ApiError::method_not_supported(
            resource.group,
            resource.plural,
            &request.verb,
        ));
    }
    let body = h::read_body(http_request.into_body()).await?;
    let body = h::decode_object(&body, content_type)?;
    let token_user = match body.pointer("/spec/token").and_then(Value::as_str) {
        Some(token) if resource.plural == "tokenreviews" => match state.config.tokens.user(token) {
            Some(found) => Some(found.clone()),
            None => crate::sa_tokens::authenticate(&state.rest, &state.config.signer, token).await,
        },
        _ => None,
    };
    let reviewer = crate::reviews::Reviewer {
        authorizer: state.authorizer.as_ref(),
        token_user,
    };
    let answer = crate::reviews::answer(
        &reviewer,
        resource,
        user,
        request.namespace.as_deref(),
        &body,
    )?;
    Ok(rest::respond(StatusCode::CREATED, &answer))
}

async fn authenticate(
    state: &State,
    cert_user: Option<User>,
    request: &Request<Incoming>,
) -> Result<User, ApiError> {
    if let Some(user) = cert_user {
        return Ok(user);
    }
    let Some(token) = authn::bearer(request.headers().get(header::AUTHORIZATION)) else {
        return Ok(User::anonymous());
    };
    if let Some(user) = state.config.tokens.user(token) {
        return Ok(user.clone());
    }
    crate::sa_tokens::authenticate(&state.rest, &state.config.signer, token)
        .await
        .ok_or_else(ApiError::unauthorized)
}

async fn respond(
    state: &State,
    cert_user: Option<User>,
    peer: SocketAddr,
    route: Route,
    query: Query,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let user = authenticate(state, cert_user, &request).await?;
    let user = crate::impersonation::apply(state.authorizer.as_ref(), user, request.headers())?;
    match &route {
        Route::Health(_) => return Ok(h::text(StatusCode::OK, "ok")),
        Route::Version => return Ok(h::json(StatusCode::OK, &version())),
        _ if user.is_anonymous() => return Err(ApiError::unauthorized()),
        Route::Resource(_) | Route::Unknown => {}
        // Discovery, the OpenAPI documents and metrics are paths, not resources: RBAC's
        // nonResourceURLs decide (`system:discovery` lets every authenticated user discover).
        _ => {
            let path = request.uri().path();
            let verb = request.method().as_str().to_ascii_lowercase();
            if !state.authorizer.allowed_path(&user, &verb, path) {
                return Err(ApiError::forbidden_path(&user.name, &verb, path));
            }
        }
    }
    let accept = request.headers().get(header::ACCEPT).cloned();
    let aggregated = h::wants_aggregated_discovery(accept.as_ref());
    let discovery_answer = |value: Option<Value>,
                            aggregated_value: Option<Value>|
     -> Result<Response<Body>, ApiError> {
        match (aggregated, aggregated_value, value) {
            (true, Some(value), _) => Ok(h::json_with_type(
                StatusCode::OK,
                &value,
                h::AGGREGATED_DISCOVERY,
            )),
            (_, _, Some(value)) => Ok(h::json(StatusCode::OK, &value)),
            _ => Err(ApiError::no_route()),
        }
    };
    match route {
        Route::Metrics => Ok(state.metrics.response()),
        Route::OpenApiV2 => openapi::v2(accept.as_ref()).await,
        Route::OpenApiV3Index => openapi::v3_index().await,
        Route::OpenApiV3 { group, version } => openapi::v3(group, version).await,
        Route::CoreVersions => discovery_answer(
            Some(discovery::core_versions(&state.config.advertise_address)),
            Some(discovery::aggregated(true)),
        ),
        Route::Groups => discovery_answer(
            Some(discovery::groups()),
            Some(discovery::aggregated(false)),
        ),
        Route::Group(group) => discovery_answer(discovery::group(&group), None),
        Route::Resources { group, version } => {
            discovery_answer(discovery::resources(&group, &version), None)
        }
        Route::Resource(resource_request) => {
            if !state.authorizer.allowed(&user, &resource_request) {
                return Err(ApiError::forbidden(
                    &user.name,
                    &resource_request.verb,
                    &resource_request.group,
                    &resource_request.resource,
                    &resource_request.name,
                    resource_request.namespace.as_deref(),
                    "",
                ));
            }
            resource(state, &user, resource_request, query, peer, request).await
        }
        Route::Unknown | Route::Health(_) | Route::Version => Err(ApiError::no_route()),
    }
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", other => other }),
    })
}

/// Finds the resource and checks the request fits its scope and verbs.
fn resolve(request: &ResourceRequest) -> Result<&'static Resource, ApiError> {
    let found = registry::find(&request.group, &request.version, &request.resource);
    let Some(resource) = found else {
        // `/namespaces/<ns>/finalize|status` arrive as resource "finalize"/"status" of a
        // namespace; anything else is simply not served.
        return Err(ApiError::no_route());
    };
    if !resource.namespaced && request.namespace.is_some() {
        return Err(ApiError::no_route());
    }
    let verbs = match request.subresource.as_str() {
        "" => resource.verbs,
        name => match resource.subresource(name) {
            Some(sub) => sub.verbs,
            None => return Err(ApiError::no_route()),
        },
    };
    // OPTIONS has no verb (upstream's request info leaves it empty); the proxy forwards it.
    let proxied_options = request.subresource == "proxy" && request.verb.is_empty();
    if !verbs.contains(&request.verb.as_str()) && !proxied_options {
        return Err(ApiError::method_not_supported(
            resource.group,
            resource.plural,
            &request.verb,
        ));
    }
    if !matches!(
        request.subresource.as_str(),
        "" | "status"
            | "scale"
            | "finalize"
            | "binding"
            | "eviction"
            | "log"
            | "exec"
            | "attach"
            | "portforward"
            | "proxy"
            | "token"
    ) {
        return Err(ApiError::method_not_supported(
            resource.group,
            &format!("{}/{}", resource.plural, request.subresource),
            &request.verb,
        ));
    }
    if resource.namespaced
        && request.namespace.is_none()
        && !matches!(request.verb.as_str(), "list" | "watch")
    {
        return Err(ApiError::no_route());
    }
    let answered = resource.plural == "bindings" || resource.plural.ends_with("reviews");
    if !resource.is_stored() && !answered {
        return Err(ApiError::method_not_supported(
            resource.group,
            resource.plural,
            &request.verb,
        ));
    }
    Ok(resource)
}

/// Namespaces' own subresources arrive as `/namespaces/<name>/<sub>`, which routing reads as a
/// resource inside a namespace; turn them back into subresources of the namespace.
fn namespace_subresource(mut request: ResourceRequest) -> ResourceRequest {
    if request.group.is_empty()
        && matches!(request.resource.as_str(), "status" | "finalize")
        && request.name.is_empty()
        && let Some(namespace) = request.namespace.take()
    {
        request.subresource = request.resource.clone();
        request.resource = "namespaces".into();
        request.name = namespace;
    }
    request
}

async fn resource(
    state: &State,
    user: &User,
    request: ResourceRequest,
    mut query: Query,
    peer: SocketAddr,
    http_request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let request = namespace_subresource(request);
    let resource = resolve(&request)?;
    if matches!(request.verb.as_str(), "create" | "update" | "patch") {
        let user_agent = http_request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        crate::managed::choose_manager(&request, &mut query, user_agent)?;
    }
    // A version stored as another (autoscaling/v1 HPAs, events.k8s.io Events): the request runs
    // against the stored one, its body and answers converted.
    let served = resource;
    let resource = conversion::storage_of(served).unwrap_or(served);
    let converts = !std::ptr::eq(served, resource);
    let rest = &state.rest;
    let content_type = h::media_type(http_request.headers().get(header::CONTENT_TYPE));
    let table = match tables::wanted(http_request.headers().get(header::ACCEPT)) {
        true => Some(
            cox_api::table::IncludeObject::parse(query.get("includeObject"))
                .map_err(ApiError::bad_request)?,
        ),
        false => None,
    };
    if !resource.is_stored() && resource.plural.ends_with("reviews") {
        return review(state, user, resource, &request, http_request, &content_type).await;
    }
    // `pods/<name>/binding`, and the older `bindings` resource named after the pod.
    if request.subresource == "binding"
        || (resource.plural == "bindings" && request.verb == "create")
    {
        let body = h::read_body(http_request.into_body()).await?;
        let binding = h::decode_object(&body, &content_type)?;
        let pods = registry::find("", "v1", "pods")
            .ok_or_else(|| ApiError::internal("pods are not registered"))?;
        let pod_name = match request.name.as_str() {
            "" => binding
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            name => name.to_owned(),
        };
        let pod_request = ResourceRequest {
            resource: "pods".into(),
            name: pod_name,
            subresource: String::new(),
            ..request
        };
        let status = rest.bind(pods, &pod_request, &query, &binding).await?;
        return Ok(rest::respond(StatusCode::CREATED, &status));
    }
    if request.subresource == "token" && resource.plural == "serviceaccounts" {
        let body = h::read_body(http_request.into_body()).await?;
        let token_request = h::decode_object(&body, &content_type)?;
        let namespace = request.namespace.as_deref().unwrap_or("default");
        let answer = crate::sa_tokens::create_token(
            rest,
            &state.config.signer,
            namespace,
            &request.name,
            &token_request,
        )
        .await?;
        return Ok(rest::respond(StatusCode::CREATED, &answer));
    }
    if request.subresource == "eviction" {
        let body = h::read_body(http_request.into_body()).await?;
        let eviction = if body.is_empty() {
            json!({})
        } else {
            h::decode_object(&body, &content_type)?
        };
        let status = rest.evict(resource, &request, &query, &eviction).await?;
        return Ok(rest::respond(StatusCode::CREATED, &status));
    }
    if request.subresource == "finalize" {
        let body = h::read_body(http_request.into_body()).await?;
        let object = h::decode_object(&body, &content_type)?;
        let done = rest
            .finalize_namespace(resource, &request, &query, object)
            .await?;
        return Ok(rest::respond(StatusCode::OK, &done));
    }
    if request.subresource == "scale" {
        return scale(rest, resource, request, query, http_request, &content_type).await;
    }
    let backends = pod_connect::Backends {
        rest,
        kubelets: &state.kubelets,
    };
    match request.subresource.as_str() {
        "log" => return pod_connect::log(backends, resource, &request, &query).await,
        "exec" | "attach" | "portforward" => {
            return pod_connect::connect(backends, resource, &request, &query, http_request).await;
        }
        "proxy" => {
            return proxy::serve(
                rest,
                &state.proxies,
                &state.kubelets,
                resource,
                &request,
                peer,
                http_request,
            )
            .await;
        }
        _ => {}
    }
    match request.verb.as_str() {
        "get" => {
            let object = rest.get(resource, &request).await?;
            match table {
                Some(include) => {
                    let metadata = json!({"resourceVersion": object.pointer("/metadata/resourceVersion").cloned().unwrap_or_default()});
                    let table = tables::table(resource, &[object], include, metadata);
                    Ok(h::json_with_type(
                        StatusCode::OK,
                        &table,
                        tables::CONTENT_TYPE,
                    ))
                }
                None => Ok(rest::respond(
                    StatusCode::OK,
                    &conversion::from_storage(served, object),
                )),
            }
        }
        "list" => {
            if table.is_none()
                && !converts
                && let Some(bytes) = rest.list_bytes(resource, &request, &query).await?
            {
                return Ok(h::raw_json(StatusCode::OK, bytes));
            }
            let list = rest.list(resource, &request, &query).await?;
            match table {
                Some(include) => {
                    let table = tables::from_list(resource, list, include);
                    Ok(h::json_with_type(
                        StatusCode::OK,
                        &table,
                        tables::CONTENT_TYPE,
                    ))
                }
                None => Ok(rest::respond(
                    StatusCode::OK,
                    &conversion::answer_from_storage(served, list),
                )),
            }
        }
        "watch" => {
            let events = watch::start(rest, resource, &request, &query).await?;
            match table {
                Some(include) => Ok(h::stream(
                    h::JSON,
                    tables::watch_rows(resource, include, tokio_stream_of(events)),
                )),
                None if converts => Ok(h::stream(
                    h::JSON,
                    converted_events(served, tokio_stream_of(events)),
                )),
                None => Ok(h::stream(h::JSON, tokio_stream_of(events))),
            }
        }
        "create" => {
            let body = h::read_body(http_request.into_body()).await?;
            let object = h::decode_object(&body, &content_type)?;
            check_types(served, &object)?;
            let warnings = check_fields(served, &query, &object, false, &body, &content_type)?;
            let object = conversion::to_storage(served, object);
            if is_rbac(resource) {
                let mut object = object.clone();
                if let (Some(namespace), Some(meta)) =
                    (&request.namespace, object.get_mut("metadata"))
                {
                    meta["namespace"] = json!(namespace);
                }
                state
                    .authorizer
                    .check_rbac_write(user, resource.plural, &object, None)?;
            }
            let created = rest.create(resource, &request, &query, object).await?;
            let status = if query.all("dryRun").is_empty() {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(with_warnings(answer(status, served, created), &warnings))
        }
        "update" => {
            let body = h::read_body(http_request.into_body()).await?;
            let object = h::decode_object(&body, &content_type)?;
            check_types(served, &object)?;
            let warnings = check_fields(served, &query, &object, false, &body, &content_type)?;
            let object = conversion::to_storage(served, object);
            if is_rbac(resource) {
                let old = rest.get(resource, &request).await.ok();
                let mut object = object.clone();
                if let (Some(namespace), Some(meta)) =
                    (&request.namespace, object.get_mut("metadata"))
                {
                    meta["namespace"] = json!(namespace);
                }
                state
                    .authorizer
                    .check_rbac_write(user, resource.plural, &object, old.as_ref())?;
            }
            let updated = rest.update(resource, &request, &query, object).await?;
            Ok(with_warnings(
                answer(StatusCode::OK, served, updated),
                &warnings,
            ))
        }
        "patch" => {
            let body = h::read_body(http_request.into_body()).await?;
            match PatchType::from_content_type(&content_type) {
                Some(
                    patch_type @ (PatchType::Json | PatchType::Merge | PatchType::StrategicMerge),
                ) => {
                    let warnings = match (patch_type, serde_json::from_slice::<Value>(&body)) {
                        (PatchType::Merge | PatchType::StrategicMerge, Ok(patch)) => {
                            check_fields(served, &query, &patch, true, &body, &content_type)?
                        }
                        _ => Vec::new(),
                    };
                    // A role or binding as the patch would leave it is judged against the
                    // object it replaces, in the same attempt that stores it.
                    let escalation = |new: &Value, old: &Value| {
                        state
                            .authorizer
                            .check_rbac_write(user, resource.plural, new, Some(old))
                    };
                    let check: Option<&rest::PatchCheck<'_>> =
                        is_rbac(resource).then_some(&escalation);
                    let patched = rest
                        .patch(resource, served, &request, &query, patch_type, body, check)
                        .await?;
                    Ok(with_warnings(
                        answer(StatusCode::OK, served, patched),
                        &warnings,
                    ))
                }
                _ => Err(ApiError::unsupported_media_type(&content_type)),
            }
        }
        "delete" | "deletecollection" => {
            let body = h::read_body(http_request.into_body()).await?;
            let options = if body.is_empty() {
                cox_api::deletion::options_from_query(|key| query.get(key).map(str::to_owned))?
            } else {
                h::decode_object(&body, "application/json")?
            };
            if request.verb == "delete" {
                let (status, answer) = rest.delete(resource, &request, &query, &options).await?;
                Ok(rest::respond(
                    status,
                    &conversion::answer_from_storage(served, answer),
                ))
            } else {
                let answer = rest
                    .delete_collection(resource, &request, &query, &options)
                    .await?;
                Ok(rest::respond(
                    StatusCode::OK,
                    &conversion::answer_from_storage(served, answer),
                ))
            }
        }
        _ => Err(ApiError::method_not_supported(
            resource.group,
            resource.plural,
            &request.verb,
        )),
    }
}

/// The answer to a create, update or patch: the stored encoding when the object was served at
/// its stored version and written, else the object encoded (at the served version).
fn answer(status: StatusCode, served: &'static Resource, written: rest::Written) -> Response<Body> {
    match written.json {
        Some(json) if conversion::storage_of(served).is_none() => h::raw_json(status, json),
        _ => rest::respond(status, &conversion::from_storage(served, written.object)),
    }
}

async fn scale(
    rest: &Rest,
    resource: &Resource,
    request: ResourceRequest,
    query: Query,
    http_request: Request<Incoming>,
    content_type: &str,
) -> Result<Response<Body>, ApiError> {
    let change = match request.verb.as_str() {
        "get" => {
            return Ok(rest::respond(
                StatusCode::OK,
                &rest.get_scale(resource, &request).await?,
            ));
        }
        "update" => {
            let body = h::read_body(http_request.into_body()).await?;
            rest::ScaleChange::Replace(h::decode_object(&body, content_type)?)
        }
        "patch" => {
            let body = h::read_body(http_request.into_body()).await?;
            match PatchType::from_content_type(content_type) {
                // A Scale has no lists, so a strategic merge patch is a merge patch here.
                Some(PatchType::Merge | PatchType::StrategicMerge) => {
                    rest::ScaleChange::Patch(PatchType::Merge, body)
                }
                Some(PatchType::Json) => rest::ScaleChange::Patch(PatchType::Json, body),
                _ => return Err(ApiError::unsupported_media_type(content_type)),
            }
        }
        verb => {
            return Err(ApiError::method_not_supported(
                resource.group,
                &format!("{}/scale", resource.plural),
                verb,
            ));
        }
    };
    Ok(rest::respond(
        StatusCode::OK,
        &rest
            .change_scale(resource, &request, &query, change)
            .await?,
    ))
}

/// Server-side field validation of a body (or a merge patch): unknown fields are a 400 with
/// `fieldValidation=Strict`, warnings with `Warn` (the default), nothing with `Ignore`.
/// A body whose values its Go type cannot hold (`"replicas": "3"`): 400, in upstream's words.
fn check_types(resource: &Resource, object: &Value) -> Result<(), ApiError> {
    let (version, kind) = (resource.version, resource.kind);
    match cox_api::go_decode::type_error(resource.group, version, kind, object) {
        Some(error) => Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {error}"
        ))),
        None => Ok(()),
    }
}

fn check_fields(
    resource: &Resource,
    query: &Query,
    object: &Value,
    patch: bool,
    body: &[u8],
    content_type: &str,
) -> Result<Vec<String>, ApiError> {
    use cox_api::strict::{self, FieldValidation};
    let mode =
        FieldValidation::parse(query.get("fieldValidation")).map_err(ApiError::bad_request)?;
    if mode == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let (group, version, kind) = (resource.group, resource.version, resource.kind);
    let unknown = if patch {
        strict::unknown_patch_fields(group, version, kind, object)
    } else {
        strict::unknown_fields(group, version, kind, object)
    };
    // Repeated keys only exist in the JSON text; a decoded body has kept the last one.
    let duplicates =
        if content_type == h::JSON || content_type.ends_with("+json") || content_type.is_empty() {
            strict::duplicate_fields(body)
        } else {
            Vec::new()
        };
    if unknown.is_empty() && duplicates.is_empty() {
        return Ok(Vec::new());
    }
    if mode == FieldValidation::Strict {
        return Err(ApiError::bad_request(strict::strict_message_with(
            &unknown,
            &duplicates,
        )));
    }
    Ok(strict::problems(&unknown, &duplicates))
}

/// Adds `Warning: 299 - "..."` headers, as upstream reports warnings.
fn with_warnings(mut response: Response<Body>, warnings: &[String]) -> Response<Body> {
    for warning in warnings {
        let escaped = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = http::HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// A watch's JSON lines with each object as `served` shows it.
fn converted_events(
    served: &'static Resource,
    lines: impl futures::Stream<Item = bytes::Bytes> + Send + Sync + 'static,
) -> impl futures::Stream<Item = bytes::Bytes> + Send + Sync + 'static {
    use futures::StreamExt;
    lines.map(move |line| {
        let Ok(mut event) = serde_json::from_slice::<Value>(&line) else {
            return line;
        };
        let object = event["object"].take();
        event["object"] = conversion::answer_from_storage(served, object);
        let mut bytes = serde_json::to_vec(&event).unwrap_or_default();
        bytes.push(b'\n');
        bytes::Bytes::from(bytes)
    })
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) -> impl futures::Stream<Item = bytes::Bytes> + Send + Sync + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
