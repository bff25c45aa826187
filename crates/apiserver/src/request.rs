//! What a request asks for, read from its method, path and query as upstream's
//! `RequestInfoFactory` reads them.

use std::collections::HashMap;

/// The parts of a resource request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceRequest {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: String,
    pub subresource: String,
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// Path segments after the subresource (`pods/x/proxy/a/b`).
    pub rest: Vec<String>,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`
    Resources {
        group: String,
        version: String,
    },
    Resource(ResourceRequest),
    Health(&'static str),
    Version,
    Metrics,
    /// `/openapi/v2`
    OpenApiV2,
    /// `/openapi/v3`
    OpenApiV3Index,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`
    OpenApiV3 {
        group: String,
        version: String,
    },
    /// Anything else.
    Unknown,
}

/// Percent-decodes a query component (`+` is a space); a malformed escape stays as it is.
fn decode(component: &str) -> String {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let escaped = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match escaped {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query, decoded; a repeated key keeps every value in order.
#[derive(Debug, Clone, Default)]
pub struct Query(HashMap<String, Vec<String>>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            map.entry(decode(key)).or_default().push(decode(value));
        }
        Self(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    /// Replaces the values of `key` with `value`.
    pub fn set(&mut self, key: &str, value: &str) {
        self.0.insert(key.to_owned(), vec![value.to_owned()]);
    }

    pub fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }

    /// A boolean query parameter, read as upstream reads them (Go's `strconv.ParseBool`: the
    /// Python client sends `watch=True`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.get(key),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True")
        )
    }
}

/// Routes a request. `watch` is the query's watch flag.
pub fn route(method: &http::Method, path: &str, watch: bool) -> Route {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        ["healthz"] | ["healthz", ..] => Route::Health("healthz"),
        ["livez"] | ["livez", ..] => Route::Health("livez"),
        ["readyz"] | ["readyz", ..] => Route::Health("readyz"),
        ["version"] => Route::Version,
        ["metrics"] => Route::Metrics,
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", "api", version] => Route::OpenApiV3 {
            group: String::new(),
            version: (*version).to_owned(),
        },
        ["openapi", "v3", "apis", group, version] => Route::OpenApiV3 {
            group: (*group).to_owned(),
            version: (*version).to_owned(),
        },
        ["api"] => Route::CoreVersions,
        ["api", version] => Route::Resources {
            group: String::new(),
            version: (*version).to_owned(),
        },
        ["api", version, rest @ ..] => resource_route(method, "", version, rest, watch),
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group((*group).to_owned()),
        ["apis", group, version] => Route::Resources {
            group: (*group).to_owned(),
            version: (*version).to_owned(),
        },
        ["apis", group, version, rest @ ..] => resource_route(method, group, version, rest, watch),
        _ => Route::Unknown,
    }
}

fn resource_route(
    method: &http::Method,
    group: &str,
    version: &str,
    rest: &[&str],
    watch: bool,
) -> Route {
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let (namespace, rest) = match rest {
        // `/namespaces/<ns>/<resource>...`; `/namespaces/<name>` alone is the namespace itself.
        ["namespaces", ns, resource, rest @ ..] => (Some((*ns).to_owned()), {
            let mut parts = vec![*resource];
            parts.extend_from_slice(rest);
            parts
        }),
        _ => (None, rest.to_vec()),
    };
    let Some((resource, parts)) = parts_split(&rest) else {
        return Route::Unknown;
    };
    let name = parts.first().map(|s| (*s).to_owned()).unwrap_or_default();
    let subresource = parts.get(1).map(|s| (*s).to_owned()).unwrap_or_default();
    let rest: Vec<String> = parts.iter().skip(2).map(|s| (*s).to_owned()).collect();
    let verb = match *method {
        http::Method::GET | http::Method::HEAD if legacy_watch || (watch && name.is_empty()) => {
            "watch"
        }
        http::Method::GET | http::Method::HEAD if name.is_empty() => "list",
        // A watch of one object: `?watch=1&fieldSelector=metadata.name=x` is the usual form, but
        // `/watch/.../name` is too.
        http::Method::GET | http::Method::HEAD if legacy_watch => "watch",
        http::Method::GET | http::Method::HEAD => "get",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE if name.is_empty() => "deletecollection",
        http::Method::DELETE => "delete",
        _ => "",
    };
    Route::Resource(ResourceRequest {
        group: group.to_owned(),
        version: version.to_owned(),
        namespace,
        resource: resource.to_owned(),
        name,
        subresource,
        verb: verb.to_owned(),
        rest,
    })
}

fn parts_split<'a>(rest: &'a [&'a str]) -> Option<(&'a str, &'a [&'a str])> {
    let (first, parts) = rest.split_first()?;
    Some((first, parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn resource(method: Method, path: &str, watch: bool) -> ResourceRequest {
        match route(&method, path, watch) {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn routes_resource_paths() {
        let r = resource(Method::GET, "/api/v1/namespaces/default/pods/web", false);
        assert_eq!(
            (
                r.group.as_str(),
                r.version.as_str(),
                r.namespace.as_deref(),
                r.resource.as_str(),
                r.name.as_str(),
                r.verb.as_str()
            ),
            ("", "v1", Some("default"), "pods", "web", "get")
        );
        let r = resource(
            Method::GET,
            "/apis/apps/v1/namespaces/ns/deployments",
            false,
        );
        assert_eq!(
            (r.group.as_str(), r.resource.as_str(), r.verb.as_str()),
            ("apps", "deployments", "list")
        );
        let r = resource(Method::GET, "/apis/apps/v1/deployments", true);
        assert_eq!((r.namespace, r.verb.as_str()), (None, "watch"));
        let r = resource(Method::GET, "/api/v1/watch/namespaces/ns/configmaps", false);
        assert_eq!(
            (r.namespace.as_deref(), r.verb.as_str()),
            (Some("ns"), "watch")
        );
        let r = resource(
            Method::PUT,
            "/apis/apps/v1/namespaces/ns/deployments/web/scale",
            false,
        );
        assert_eq!(
            (r.name.as_str(), r.subresource.as_str(), r.verb.as_str()),
            ("web", "scale", "update")
        );
        let r = resource(
            Method::GET,
            "/api/v1/namespaces/ns/pods/web/proxy/a/b",
            false,
        );
        assert_eq!(
            (r.subresource.as_str(), r.rest.clone()),
            ("proxy", vec!["a".to_owned(), "b".to_owned()])
        );
        let r = resource(Method::DELETE, "/api/v1/namespaces/ns/configmaps", false);
        assert_eq!(r.verb, "deletecollection");
    }

    #[test]
    fn namespaces_are_cluster_scoped_objects() {
        let r = resource(Method::GET, "/api/v1/namespaces/kube-system", false);
        assert_eq!(
            (r.namespace, r.resource.as_str(), r.name.as_str()),
            (None, "namespaces", "kube-system")
        );
        let r = resource(Method::GET, "/api/v1/namespaces", false);
        assert_eq!(
            (r.resource.as_str(), r.verb.as_str()),
            ("namespaces", "list")
        );
        let r = resource(Method::PUT, "/api/v1/namespaces/x/finalize", false);
        assert_eq!(
            (r.namespace.as_deref(), r.resource.as_str()),
            (Some("x"), "finalize")
        );
    }

    #[test]
    fn routes_discovery_and_health() {
        assert_eq!(route(&Method::GET, "/api", false), Route::CoreVersions);
        assert_eq!(route(&Method::GET, "/apis/", false), Route::Groups);
        assert_eq!(
            route(&Method::GET, "/apis/apps", false),
            Route::Group("apps".into())
        );
        assert_eq!(
            route(&Method::GET, "/apis/apps/v1", false),
            Route::Resources {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        assert_eq!(
            route(&Method::GET, "/readyz", false),
            Route::Health("readyz")
        );
        assert_eq!(route(&Method::GET, "/version", false), Route::Version);
        assert_eq!(route(&Method::GET, "/nope", false), Route::Unknown);
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb%2Ctier+in+(a)&limit=500&watch=true&command=ls&command=-l",
        ));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert_eq!(q.get("limit"), Some("500"));
        assert!(q.flag("watch"));
        for (text, want) in [
            ("True", true),
            ("t", true),
            ("1", true),
            ("false", false),
            ("yes", false),
            ("", false),
        ] {
            assert_eq!(
                Query::parse(Some(&format!("watch={text}"))).flag("watch"),
                want,
                "{text}"
            );
        }
        assert_eq!(q.all("command"), ["ls", "-l"]);
        assert_eq!(Query::parse(Some("a=%zz&b=%")).get("a"), Some("%zz"));
    }
}
