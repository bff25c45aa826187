//! The paths of a group-version and their operations, as upstream's documents list them: for
//! each resource of the [`registry`] its collection, object, all-namespaces, watch and
//! subresource paths, each operation with upstream's `operationId`, parameters, request body,
//! answers, `x-kubernetes-action` and `x-kubernetes-group-version-kind`. kubectl reads the
//! PATCH operation of a kind: its `fieldValidation` parameter (server-side field validation is
//! supported) and its request content types (strategic merge patch is accepted).

use serde_json::{Map, Value, json};

use super::kinds::{self, API_RESOURCE_LIST, DELETE_OPTIONS, PATCH, STATUS, WATCH_EVENT};
use super::{Dialect, schemas::gvk};
use crate::registry::{self, Resource, Subresource};

/// The answers of one object, of a list or watch, of logs, of a connection.
const OBJECT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const LIST_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
const LOG_TYPES: &[&str] = &[
    "text/plain",
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const ANY_TYPE: &[&str] = &["*/*"];
/// The bodies of PATCH: kubectl apply uses strategic merge only when it is listed.
pub(super) const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

const OK: (&str, &str) = ("200", "OK");
const CREATED: (&str, &str) = ("201", "Created");
const ACCEPTED: (&str, &str) = ("202", "Accepted");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Put,
    Post,
    Patch,
    Delete,
}

impl Method {
    fn key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::Patch => "patch",
            Method::Delete => "delete",
        }
    }

    /// The method of a registry verb on a connect subresource.
    fn of_verb(verb: &str) -> Option<Method> {
        match verb {
            "get" => Some(Method::Get),
            "update" => Some(Method::Put),
            "create" => Some(Method::Post),
            "patch" => Some(Method::Patch),
            "delete" => Some(Method::Delete),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Param {
    name: &'static str,
    in_path: bool,
    /// `string`, `boolean` or `integer`.
    ty: &'static str,
    description: String,
}

fn query(name: &'static str, ty: &'static str, description: &str) -> Param {
    Param {
        name,
        in_path: false,
        ty,
        description: description.to_owned(),
    }
}

fn path_param(name: &'static str, description: String) -> Param {
    Param {
        name,
        in_path: true,
        ty: "string",
        description,
    }
}

/// What an operation answers: a schema, or text (logs, connections).
#[derive(Debug)]
enum Answer {
    Schema(String, &'static [&'static str]),
    Text(&'static [&'static str]),
}

#[derive(Debug)]
struct Body {
    schema: String,
    content_types: &'static [&'static str],
    required: bool,
}

/// An operation's `x-kubernetes-group-version-kind`: group (`""` for core), version, kind.
type Gvk = Option<(&'static str, &'static str, &'static str)>;

#[derive(Debug)]
struct Operation {
    method: Method,
    id: String,
    description: String,
    /// `x-kubernetes-action`: get, list, watch, watchlist, post, put, patch, delete,
    /// deletecollection, connect; `None` for a group-version's root.
    action: Option<&'static str>,
    gvk: Gvk,
    params: Vec<Param>,
    body: Option<Body>,
    answer: Answer,
    codes: &'static [(&'static str, &'static str)],
}

#[derive(Debug)]
struct PathItem {
    path: String,
    params: Vec<Param>,
    operations: Vec<Operation>,
}

/// The paths of `group` (`""` for core) at `version`, in `dialect`'s shape; empty when the
/// group-version is not served.
pub(super) fn group_version_paths(
    dialect: Dialect,
    group: &str,
    version: &str,
) -> Map<String, Value> {
    let tag = tag(group, version);
    let mut out = Map::new();
    let resources: Vec<&Resource> = registry::group_version(group, version).collect();
    let Some(first) = resources.first() else {
        return out;
    };
    let mut items = vec![root(first)];
    for resource in resources {
        items.extend(resource_paths(resource));
    }
    for item in items {
        out.insert(item.path.clone(), render_path(dialect, &tag, &item));
    }
    out
}

/// `/api/v1/`, `/apis/apps/v1/`: the group-version's resources.
fn root(resource: &Resource) -> PathItem {
    PathItem {
        path: format!("{}/", prefix(resource)),
        params: Vec::new(),
        operations: vec![Operation {
            method: Method::Get,
            id: format!("get{}APIResources", id_group_version(resource)),
            description: "get available resources".into(),
            action: None,
            gvk: None,
            params: Vec::new(),
            body: None,
            answer: Answer::Schema(API_RESOURCE_LIST.into(), OBJECT_TYPES),
            codes: &[OK],
        }],
    }
}

/// `/api/v1` or `/apis/<group>/<version>`.
fn prefix(resource: &Resource) -> String {
    if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    }
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`: the group-version in operation ids.
fn id_group_version(resource: &Resource) -> String {
    let group = if resource.group.is_empty() {
        "Core".to_owned()
    } else {
        group_words(resource.group).map(capitalize).collect()
    };
    format!("{group}{}", capitalize(resource.version))
}

/// `core_v1`, `apps_v1`, `rbacAuthorization_v1`: the operations' tag.
fn tag(group: &str, version: &str) -> String {
    if group.is_empty() {
        return format!("core_{version}");
    }
    let mut words = group_words(group);
    let first = words.next().unwrap_or_default().to_owned();
    let rest: String = words.map(capitalize).collect();
    format!("{first}{rest}_{version}")
}

fn group_words(group: &str) -> impl Iterator<Item = &str> {
    group.strip_suffix(".k8s.io").unwrap_or(group).split('.')
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// `a Pod`, `an Ingress`, `Endpoints`: upstream's article for a kind (none for plurals).
fn with_article(kind: &str) -> String {
    if kind.ends_with('s') && !kind.ends_with("ss") {
        return kind.to_owned();
    }
    let vowel = kind
        .chars()
        .next()
        .is_some_and(|c| "AEIOUaeiou".contains(c));
    format!("{} {kind}", if vowel { "an" } else { "a" })
}

/// The schema of a kind. A kind without a type gets a name no schema has, so that the test of
/// every reference resolving tells.
fn schema_of(group: &str, version: &str, kind: &str) -> String {
    kinds::find(group, version, kind)
        .map(|k| (k.schema_name)().into_owned())
        .unwrap_or_else(|| format!("missing.{group}.{version}.{kind}"))
}

fn list_schema_of(resource: &Resource) -> String {
    kinds::find(resource.group, resource.version, resource.kind)
        .and_then(|k| k.list_schema_name())
        .unwrap_or_else(|| format!("missing.{}List", resource.kind))
}

/// The parts of a resource's operation ids: `read` + `CoreV1` + `Namespaced` + `Pod` + `Status`.
struct Names {
    group_version: String,
    scope: &'static str,
    kind: &'static str,
}

impl Names {
    fn of(r: &Resource) -> Names {
        Names {
            group_version: id_group_version(r),
            scope: if r.namespaced { "Namespaced" } else { "" },
            kind: r.kind,
        }
    }

    /// `readCoreV1NamespacedPodStatus`.
    fn id(&self, verb: &str, suffix: &str) -> String {
        let Names {
            group_version,
            scope,
            kind,
        } = self;
        format!("{verb}{group_version}{scope}{kind}{suffix}")
    }

    /// `connectCoreV1GetNamespacedPodExec`.
    fn connect_id(&self, method: Method, suffix: &str) -> String {
        let Names {
            group_version,
            scope,
            kind,
        } = self;
        let method = capitalize(method.key());
        format!("connect{group_version}{method}{scope}{kind}{suffix}")
    }

    /// `listCoreV1PodForAllNamespaces`, `deleteCoreV1CollectionNamespacedPod`: ids with a
    /// word between the group-version and the scope, or without the scope.
    fn id_with(&self, verb: &str, middle: &str, scoped: bool, suffix: &str) -> String {
        let scope = if scoped { self.scope } else { "" };
        let Names {
            group_version,
            kind,
            ..
        } = self;
        format!("{verb}{group_version}{middle}{scope}{kind}{suffix}")
    }
}

/// Every path of one resource.
fn resource_paths(r: &'static Resource) -> Vec<PathItem> {
    let prefix = prefix(r);
    let names = Names::of(r);
    let kind = r.kind;
    let gvk = Some((r.group, r.version, kind));
    let schema = schema_of(r.group, r.version, kind);
    let namespace_part = if r.namespaced {
        "namespaces/{namespace}/"
    } else {
        ""
    };
    let collection = format!("{prefix}/{namespace_part}{}", r.plural);
    let object = format!("{collection}/{{name}}");
    let mut scope_params = Vec::new();
    if r.namespaced {
        scope_params.push(namespace());
    }
    scope_params.push(pretty());
    let with_name = |name_of: &str| {
        let mut params = vec![path_param("name", format!("name of the {name_of}"))];
        params.extend(scope_params.iter().cloned());
        params
    };
    let mut items = Vec::new();

    let mut operations = Vec::new();
    if r.allows("list") {
        operations.push(list(names.id("list", ""), r, gvk, list_params()));
    }
    if r.allows("create") {
        operations.push(create(
            names.id("create", ""),
            format!("create {}", with_article(kind)),
            gvk,
            &schema,
        ));
    }
    if r.allows("deletecollection") {
        operations.push(Operation {
            method: Method::Delete,
            id: names.id_with("delete", "Collection", true, ""),
            description: format!("delete collection of {kind}"),
            action: Some("deletecollection"),
            gvk,
            params: delete_collection_params(),
            body: Some(delete_body()),
            answer: Answer::Schema(STATUS.into(), OBJECT_TYPES),
            codes: &[OK],
        });
    }
    if !operations.is_empty() {
        items.push(PathItem {
            path: collection,
            params: scope_params.clone(),
            operations,
        });
    }

    let mut operations = Vec::new();
    if r.allows("get") {
        operations.push(read(
            names.id("read", ""),
            format!("the specified {kind}"),
            gvk,
            &schema,
        ));
    }
    if r.allows("update") {
        let what = format!("the specified {kind}");
        operations.push(replace(names.id("replace", ""), what, gvk, &schema));
    }
    if r.allows("patch") {
        let what = format!("the specified {kind}");
        operations.push(patch(names.id("patch", ""), what, gvk, &schema));
    }
    if r.allows("delete") {
        operations.push(Operation {
            method: Method::Delete,
            id: names.id("delete", ""),
            description: format!("delete {}", with_article(kind)),
            action: Some("delete"),
            gvk,
            params: delete_params(),
            body: Some(delete_body()),
            answer: Answer::Schema(STATUS.into(), OBJECT_TYPES),
            codes: &[OK, ACCEPTED],
        });
    }
    if !operations.is_empty() {
        items.push(PathItem {
            path: object.clone(),
            params: with_name(kind),
            operations,
        });
    }

    if r.namespaced && r.allows("list") {
        let mut params = list_params();
        params.push(pretty());
        let id = names.id_with("list", "", false, "ForAllNamespaces");
        items.push(PathItem {
            path: format!("{prefix}/{}", r.plural),
            params,
            operations: vec![list(id, r, gvk, Vec::new())],
        });
    }

    if r.allows("watch") {
        let watch_collection = format!("{prefix}/watch/{namespace_part}{}", r.plural);
        let mut params = list_params();
        params.extend(scope_params.iter().cloned());
        items.push(PathItem {
            path: watch_collection.clone(),
            params,
            operations: vec![watch_list(names.id("watch", "List"), gvk)],
        });
        let mut params = list_params();
        params.extend(with_name(kind));
        items.push(PathItem {
            path: format!("{watch_collection}/{{name}}"),
            params,
            operations: vec![Operation {
                method: Method::Get,
                id: names.id("watch", ""),
                description: format!(
                    "watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."
                ),
                action: Some("watch"),
                gvk,
                params: Vec::new(),
                body: None,
                answer: Answer::Schema(WATCH_EVENT.into(), LIST_TYPES),
                codes: &[OK],
            }],
        });
        if r.namespaced {
            let mut params = list_params();
            params.push(pretty());
            let id = names.id_with("watch", "", false, "ListForAllNamespaces");
            items.push(PathItem {
                path: format!("{prefix}/watch/{}", r.plural),
                params,
                operations: vec![watch_list(id, gvk)],
            });
        }
    }

    for sub in r.subresources {
        let params = with_name(sub.kind);
        items.extend(subresource_paths(r, sub, &object, &params, &names));
    }
    items
}

/// The paths of one subresource of `r`, under the object path `object`; `params` are the
/// object path's.
fn subresource_paths(
    r: &'static Resource,
    sub: &'static Subresource,
    object: &str,
    params: &[Param],
    names: &Names,
) -> Vec<PathItem> {
    let path = format!("{object}/{}", sub.name);
    let suffix = capitalize(sub.name);
    let (group, version) = if sub.version.is_empty() {
        (r.group, r.version)
    } else {
        (sub.group, sub.version)
    };
    let gvk = Some((group, version, sub.kind));
    let kind = r.kind;
    match sub.name {
        "attach" | "exec" | "portforward" | "proxy" => {
            let mut params = params.to_vec();
            params.retain(|p| p.name != "pretty");
            params.extend(connect_params(sub.name));
            let connect = |path: String, suffix: &str, params: Vec<Param>| PathItem {
                path,
                params,
                operations: sub
                    .verbs
                    .iter()
                    .filter_map(|verb| Method::of_verb(verb))
                    .map(|method| Operation {
                        method,
                        id: names.connect_id(method, suffix),
                        description: format!(
                            "connect {} requests to {} of {kind}",
                            method.key().to_ascii_uppercase(),
                            sub.name
                        ),
                        action: Some("connect"),
                        gvk,
                        params: Vec::new(),
                        body: None,
                        answer: Answer::Text(ANY_TYPE),
                        codes: &[OK],
                    })
                    .collect(),
            };
            let mut items = vec![connect(path.clone(), &suffix, params.clone())];
            if sub.name == "proxy" {
                params.retain(|p| p.name != "path");
                params.push(path_param("path", "path to the resource".into()));
                items.push(connect(
                    format!("{path}/{{path}}"),
                    &format!("{suffix}WithPath"),
                    params,
                ));
            }
            items
        }
        "log" => vec![PathItem {
            path,
            params: params.to_vec(),
            operations: vec![Operation {
                method: Method::Get,
                id: names.id("read", &suffix),
                description: format!("read log of the specified {kind}"),
                action: Some("get"),
                gvk,
                params: log_params(),
                body: None,
                answer: Answer::Text(LOG_TYPES),
                codes: &[OK],
            }],
        }],
        _ => {
            let schema = schema_of(group, version, sub.kind);
            let what = format!("{} of the specified {kind}", sub.name);
            let operations = sub
                .verbs
                .iter()
                .filter_map(|verb| match *verb {
                    "get" => Some(read(names.id("read", &suffix), what.clone(), gvk, &schema)),
                    "update" => Some(replace(
                        names.id("replace", &suffix),
                        what.clone(),
                        gvk,
                        &schema,
                    )),
                    "patch" => Some(patch(
                        names.id("patch", &suffix),
                        what.clone(),
                        gvk,
                        &schema,
                    )),
                    "create" => Some(create(
                        names.id("create", &suffix),
                        format!("create {} of {}", sub.name, with_article(kind)),
                        gvk,
                        &schema,
                    )),
                    _ => None,
                })
                .collect();
            vec![PathItem {
                path,
                params: params.to_vec(),
                operations,
            }]
        }
    }
}

fn list(id: String, r: &Resource, gvk: Gvk, params: Vec<Param>) -> Operation {
    Operation {
        method: Method::Get,
        id,
        description: format!("list or watch objects of kind {}", r.kind),
        action: Some("list"),
        gvk,
        params,
        body: None,
        answer: Answer::Schema(list_schema_of(r), LIST_TYPES),
        codes: &[OK],
    }
}

fn watch_list(id: String, gvk: Gvk) -> Operation {
    let kind = gvk.map(|(_, _, kind)| kind).unwrap_or_default();
    Operation {
        method: Method::Get,
        id,
        description: format!(
            "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
        ),
        action: Some("watchlist"),
        gvk,
        params: Vec::new(),
        body: None,
        answer: Answer::Schema(WATCH_EVENT.into(), LIST_TYPES),
        codes: &[OK],
    }
}

/// `what` is `the specified Pod` or `status of the specified Pod`.
fn read(id: String, what: String, gvk: Gvk, schema: &str) -> Operation {
    Operation {
        method: Method::Get,
        id,
        description: format!("read {what}"),
        action: Some("get"),
        gvk,
        params: Vec::new(),
        body: None,
        answer: Answer::Schema(schema.to_owned(), OBJECT_TYPES),
        codes: &[OK],
    }
}

fn create(id: String, description: String, gvk: Gvk, schema: &str) -> Operation {
    Operation {
        method: Method::Post,
        id,
        description,
        action: Some("post"),
        gvk,
        params: write_params(),
        body: Some(object_body(schema)),
        answer: Answer::Schema(schema.to_owned(), OBJECT_TYPES),
        codes: &[OK, CREATED, ACCEPTED],
    }
}

fn replace(id: String, what: String, gvk: Gvk, schema: &str) -> Operation {
    Operation {
        method: Method::Put,
        id,
        description: format!("replace {what}"),
        action: Some("put"),
        gvk,
        params: write_params(),
        body: Some(object_body(schema)),
        answer: Answer::Schema(schema.to_owned(), OBJECT_TYPES),
        codes: &[OK, CREATED],
    }
}

fn patch(id: String, what: String, gvk: Gvk, schema: &str) -> Operation {
    let mut params = write_params();
    for param in &mut params {
        if param.name == "fieldManager" {
            param.description = FIELD_MANAGER_PATCH.into();
        }
    }
    params.push(query("force", "boolean", FORCE));
    Operation {
        method: Method::Patch,
        id,
        description: format!("partially update {what}"),
        action: Some("patch"),
        gvk,
        params,
        body: Some(Body {
            schema: PATCH.into(),
            content_types: PATCH_TYPES,
            required: true,
        }),
        answer: Answer::Schema(schema.to_owned(), OBJECT_TYPES),
        codes: &[OK, CREATED],
    }
}

fn object_body(schema: &str) -> Body {
    Body {
        schema: schema.to_owned(),
        content_types: ANY_TYPE,
        required: true,
    }
}

fn delete_body() -> Body {
    Body {
        schema: DELETE_OPTIONS.into(),
        content_types: ANY_TYPE,
        required: false,
    }
}

// Parameters, with upstream's descriptions.

fn pretty() -> Param {
    query("pretty", "string", PRETTY)
}

fn namespace() -> Param {
    path_param(
        "namespace",
        "object name and auth scope, such as for teams and projects".into(),
    )
}

/// The parameters of list and watch.
fn list_params() -> Vec<Param> {
    vec![
        query("allowWatchBookmarks", "boolean", ALLOW_WATCH_BOOKMARKS),
        query("continue", "string", CONTINUE),
        query("fieldSelector", "string", FIELD_SELECTOR),
        query("labelSelector", "string", LABEL_SELECTOR),
        query("limit", "integer", LIMIT),
        query("resourceVersion", "string", RESOURCE_VERSION),
        query("resourceVersionMatch", "string", RESOURCE_VERSION_MATCH),
        query("sendInitialEvents", "boolean", SEND_INITIAL_EVENTS),
        query("timeoutSeconds", "integer", TIMEOUT_SECONDS),
        query("watch", "boolean", WATCH),
    ]
}

/// The parameters of create and update (patch adds `force`).
fn write_params() -> Vec<Param> {
    vec![
        query("dryRun", "string", DRY_RUN),
        query("fieldManager", "string", FIELD_MANAGER),
        query("fieldValidation", "string", FIELD_VALIDATION),
    ]
}

fn delete_params() -> Vec<Param> {
    vec![
        query("dryRun", "string", DRY_RUN),
        query("gracePeriodSeconds", "integer", GRACE_PERIOD_SECONDS),
        query(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "boolean",
            IGNORE_STORE_READ_ERROR,
        ),
        query("orphanDependents", "boolean", ORPHAN_DEPENDENTS),
        query("propagationPolicy", "string", PROPAGATION_POLICY),
    ]
}

fn delete_collection_params() -> Vec<Param> {
    let mut params = delete_params();
    params.extend(
        list_params()
            .into_iter()
            .filter(|p| !matches!(p.name, "allowWatchBookmarks" | "watch")),
    );
    params
}

fn log_params() -> Vec<Param> {
    vec![
        query(
            "container",
            "string",
            "The container for which to stream logs. Defaults to only container if there is one container in the pod.",
        ),
        query(
            "follow",
            "boolean",
            "Follow the log stream of the pod. Defaults to false.",
        ),
        query(
            "insecureSkipTLSVerifyBackend",
            "boolean",
            "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the serving certificate of the backend it is connecting to.  This will make the HTTPS connection between the apiserver and the backend insecure. This means the apiserver cannot verify the log data it is receiving came from the real kubelet.  If the kubelet is configured to verify the apiserver's TLS credentials, it does not mean the connection to the real kubelet is vulnerable to a man in the middle attack (e.g. an attacker could not intercept the actual log data coming from the real kubelet).",
        ),
        query(
            "limitBytes",
            "integer",
            "If set, the number of bytes to read from the server before terminating the log output. This may not display a complete final line of logging, and may return slightly more or slightly less than the specified limit.",
        ),
        query(
            "previous",
            "boolean",
            "Return previous terminated container logs. Defaults to false.",
        ),
        query(
            "sinceSeconds",
            "integer",
            "A relative time in seconds before the current time from which to show logs. If this value precedes the time a pod was started, only logs since the pod start will be returned. If this value is in the future, no logs will be returned. Only one of sinceSeconds or sinceTime may be specified.",
        ),
        query(
            "tailLines",
            "integer",
            "If set, the number of lines from the end of the logs to show. If not specified, logs are shown from the creation of the container or sinceSeconds or sinceTime",
        ),
        query(
            "timestamps",
            "boolean",
            "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false.",
        ),
    ]
}

/// The query parameters of a connect subresource.
fn connect_params(subresource: &str) -> Vec<Param> {
    match subresource {
        "exec" => vec![
            query(
                "command",
                "string",
                "Command is the remote command to execute. argv array. Not executed within a shell.",
            ),
            query(
                "container",
                "string",
                "Container in which to execute the command. Defaults to only container if there is only one container in the pod.",
            ),
            query(
                "stderr",
                "boolean",
                "Redirect the standard error stream of the pod for this call.",
            ),
            query(
                "stdin",
                "boolean",
                "Redirect the standard input stream of the pod for this call. Defaults to false.",
            ),
            query(
                "stdout",
                "boolean",
                "Redirect the standard output stream of the pod for this call.",
            ),
            query(
                "tty",
                "boolean",
                "TTY if true indicates that a tty will be allocated for the exec call. Defaults to false.",
            ),
        ],
        "attach" => vec![
            query(
                "container",
                "string",
                "The container in which to execute the command. Defaults to only container if there is only one container in the pod.",
            ),
            query(
                "stderr",
                "boolean",
                "Stderr if true indicates that stderr is to be redirected for the attach call. Defaults to true.",
            ),
            query(
                "stdin",
                "boolean",
                "Stdin if true, redirects the standard input stream of the pod for this call. Defaults to false.",
            ),
            query(
                "stdout",
                "boolean",
                "Stdout if true indicates that stdout is to be redirected for the attach call. Defaults to true.",
            ),
            query(
                "tty",
                "boolean",
                "TTY if true indicates that a tty will be allocated for the attach call. This is passed through the container runtime so the tty is allocated on the worker node by the container runtime. Defaults to false.",
            ),
        ],
        "portforward" => vec![query(
            "ports",
            "integer",
            "List of ports to forward Required when using WebSockets",
        )],
        "proxy" => vec![query(
            "path",
            "string",
            "Path is the URL path to use for the current proxy request.",
        )],
        _ => Vec::new(),
    }
}

const PRETTY: &str = "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).";
const ALLOW_WATCH_BOOKMARKS: &str = "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.";
const CONTINUE: &str = "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token. If the client needs a consistent list, it must restart their list without the continue field. Otherwise, the client may send another list request with the token received with the 410 error, the server will respond with a list starting from the next key, but from the latest snapshot, which is inconsistent from the previous list results - objects that are created, modified, or deleted after the first list request will be included in the response, as long as their keys are after the \"next key\".\n\nThis field is not supported when watch is true. Clients may start a watch from the last resourceVersion value returned by the server and not miss any modifications.";
const FIELD_SELECTOR: &str =
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.";
const LABEL_SELECTOR: &str =
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.";
const LIMIT: &str = "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available. Servers may choose not to support the limit argument and will return all of the available results. If limit is specified and the continue field is empty, clients may assume that no more results are available. This field is not supported if watch is true.\n\nThe server guarantees that the objects returned when using continue will be identical to issuing a single list call without a limit - that is, no objects created, modified, or deleted after the first request is issued will be included in any subsequent continued requests. This is sometimes referred to as a consistent snapshot, and ensures that a client that is using limit to receive smaller chunks of a very large result can ensure they see all possible objects. If objects are updated during a chunked list the version of the object that was present at the time the first list result was calculated is returned.";
const RESOURCE_VERSION: &str = "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset";
const RESOURCE_VERSION_MATCH: &str = "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset";
const SEND_INITIAL_EVENTS: &str = "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent. The bookmark will report the ResourceVersion (RV) corresponding to the set of objects, and be marked with `\"k8s.io/initial-events-end\": \"true\"` annotation. Afterwards, the watch stream will proceed as usual, sending watch events corresponding to changes (subsequent to the RV) to objects watched.\n\nWhen `sendInitialEvents` option is set, we require `resourceVersionMatch` option to also be set. The semantic of the watch request is as following: - `resourceVersionMatch` = NotOlderThan\n  is interpreted as \"data at least as new as the provided `resourceVersion`\"\n  and the bookmark event is send when the state is synced\n  to a `resourceVersion` at least as fresh as the one provided by the ListOptions.\n  If `resourceVersion` is unset, this is interpreted as \"consistent read\" and the\n  bookmark event is send when the state is synced at least to the moment\n  when request started being processed.\n- `resourceVersionMatch` set to any other value or unset\n  Invalid error is returned.\n\nDefaults to true if `resourceVersion=\"\"` or `resourceVersion=\"0\"` (for backward compatibility reasons) and to false otherwise.";
const TIMEOUT_SECONDS: &str = "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.";
const WATCH: &str = "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.";
const DRY_RUN: &str = "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed";
const FIELD_MANAGER: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.";
const FIELD_MANAGER_PATCH: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).";
const FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";
const FORCE: &str = "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.";
const GRACE_PERIOD_SECONDS: &str = "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.";
const IGNORE_STORE_READ_ERROR: &str = "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error. A resource is considered corrupt if it can not be retrieved from the underlying storage successfully because of a) its data can not be transformed e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe deletion ignores finalizer constraints, skips precondition checks, and removes the object from the storage. WARNING: This may potentially break the cluster if the workload associated with the resource being unsafe-deleted relies on normal deletion flow. Use only if you REALLY know what you are doing. The default value is false, and the user must opt in to enable it";
const ORPHAN_DEPENDENTS: &str = "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.";
const PROPAGATION_POLICY: &str = "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.";

// Rendering, in each dialect.

fn render_path(dialect: Dialect, tag: &str, item: &PathItem) -> Value {
    let mut out = Map::new();
    if !item.params.is_empty() {
        out.insert("parameters".into(), render_params(dialect, &item.params));
    }
    for operation in &item.operations {
        out.insert(
            operation.method.key().into(),
            render_operation(dialect, tag, operation),
        );
    }
    Value::Object(out)
}

/// Parameters sorted by name, as upstream lists them.
fn render_params(dialect: Dialect, params: &[Param]) -> Value {
    let mut params: Vec<&Param> = params.iter().collect();
    params.sort_by_key(|p| p.name);
    let rendered = params
        .into_iter()
        .map(|p| {
            let mut out = json!({
                "description": p.description,
                "in": if p.in_path { "path" } else { "query" },
                "name": p.name,
            });
            if p.in_path {
                out["required"] = true.into();
            }
            let schema = json!({"type": p.ty, "uniqueItems": true});
            match dialect {
                Dialect::V3 => out["schema"] = schema,
                Dialect::V2 => {
                    out["type"] = p.ty.into();
                    out["uniqueItems"] = true.into();
                }
            }
            out
        })
        .collect();
    Value::Array(rendered)
}

fn render_operation(dialect: Dialect, tag: &str, op: &Operation) -> Value {
    let mut out = json!({
        "description": op.description,
        "operationId": op.id,
        "tags": [tag],
    });
    if let Some(action) = op.action {
        out["x-kubernetes-action"] = action.into();
    }
    if let Some((group, version, kind)) = op.gvk {
        out["x-kubernetes-group-version-kind"] = gvk(group, version, kind);
    }
    let (answer_schema, answer_types) = match &op.answer {
        Answer::Schema(name, types) => (dialect.schema_ref(name), *types),
        Answer::Text(types) => (json!({"type": "string"}), *types),
    };
    let mut responses = Map::new();
    for (code, description) in op.codes {
        let response = match dialect {
            Dialect::V3 => {
                let content: Map<String, Value> = answer_types
                    .iter()
                    .map(|t| ((*t).to_owned(), json!({"schema": answer_schema})))
                    .collect();
                json!({"content": content, "description": description})
            }
            Dialect::V2 => json!({"description": description, "schema": answer_schema}),
        };
        responses.insert((*code).to_owned(), response);
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    out["responses"] = Value::Object(responses);

    let mut params = render_params(dialect, &op.params);
    match dialect {
        Dialect::V3 => {
            if let Some(body) = &op.body {
                let content: Map<String, Value> = body
                    .content_types
                    .iter()
                    .map(|t| {
                        (
                            (*t).to_owned(),
                            json!({"schema": dialect.schema_ref(&body.schema)}),
                        )
                    })
                    .collect();
                let mut request = json!({"content": content});
                if body.required {
                    request["required"] = true.into();
                }
                out["requestBody"] = request;
            }
        }
        Dialect::V2 => {
            if let (Some(body), Value::Array(list)) = (&op.body, &mut params) {
                let mut param = json!({
                    "in": "body",
                    "name": "body",
                    "schema": dialect.schema_ref(&body.schema),
                });
                if body.required {
                    param["required"] = true.into();
                }
                list.insert(0, param);
            }
            let consumes = op.body.as_ref().map_or(ANY_TYPE, |b| b.content_types);
            out["consumes"] = json!(consumes);
            out["produces"] = json!(answer_types);
            out["schemes"] = json!(["https"]);
        }
    }
    if params.as_array().is_some_and(|p| !p.is_empty()) {
        out["parameters"] = params;
    }
    out
}
