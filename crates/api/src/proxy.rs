//! The `proxy` subresources of Services and Pods as upstream resolves them: the
//! `[scheme:]name[:port]` of the URL (`SplitSchemeNamePort`), where a request goes (the
//! Service's and the Pod's `ResourceLocation`: a ready endpoint of the Service that is really
//! its Pod, or the Pod's IP), the path the backend sees, and the `Location` of the backend's
//! redirects as the client must see it (the upgrade-aware handler and its rewriting
//! transport).

use std::net::{IpAddr, SocketAddr};

use serde_json::Value;

use crate::status::ApiError;

/// How the API server talks to the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// The port of a URL that names none.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

/// The name segment of a proxy URL: `name`, `name:port` or `scheme:name:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyName {
    /// `http` when the URL names none.
    pub scheme: Scheme,
    pub name: String,
    /// As given: a number, a name, or empty.
    pub port: String,
}

impl ProxyName {
    /// Reads `id` as upstream's `SplitSchemeNamePort` does; `kind` (`service`, `pod`) words
    /// the error.
    pub fn parse(id: &str, kind: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::bad_request(format!("invalid {kind} request {id:?}"));
        let parts: Vec<&str> = id.split(':').collect();
        let (scheme, name, port) = match parts.as_slice() {
            [name] => ("", *name, ""),
            [name, port] => ("", *name, *port),
            [scheme, name, port] => (*scheme, *name, *port),
            _ => return Err(invalid()),
        };
        let scheme = match scheme {
            "" | "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(invalid()),
        };
        if name.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            scheme,
            name: name.to_owned(),
            port: port.to_owned(),
        })
    }
}

/// Where a proxied request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub scheme: Scheme,
    pub address: SocketAddr,
}

/// The error of a backend that cannot be reached, as upstream's proxy transport words it.
pub fn unreachable(detail: impl std::fmt::Display) -> ApiError {
    ApiError::service_unavailable(format!("error trying to reach service: {detail}"))
}

/// `no endpoints available for service "web"`.
pub fn no_endpoints(service: &str) -> ApiError {
    ApiError::service_unavailable(format!("no endpoints available for service {service:?}"))
}

/// The name of the Service port `port` asks for: a number is looked up among the Service's
/// ports, a name (or nothing: the Service's one unnamed port) is taken as it is.
pub fn service_port_name(service: &Value, port: &str) -> Result<String, ApiError> {
    let Ok(number) = port.parse::<i64>() else {
        return Ok(port.to_owned());
    };
    service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_i64() == Some(number))
        .map(|p| p["name"].as_str().unwrap_or("").to_owned())
        .ok_or_else(|| {
            let name = service["metadata"]["name"].as_str().unwrap_or("");
            ApiError::service_unavailable(format!(
                "no service port {number} found for service {name:?}"
            ))
        })
}

/// One ready address of a Service, at the port the request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: String,
    pub port: u16,
    /// The object the address says it belongs to (`targetRef`): namespace and name.
    pub target: Option<(String, String)>,
}

impl Endpoint {
    fn new(ip: &Value, port: u16, target: &Value) -> Option<Self> {
        Some(Self {
            ip: ip.as_str()?.to_owned(),
            port,
            target: target["name"].as_str().map(|name| {
                (
                    target["namespace"].as_str().unwrap_or("").to_owned(),
                    name.to_owned(),
                )
            }),
        })
    }

    /// The Pod to check the address against before proxying to it (upstream's
    /// `isValidAddress`): the target, when it is in the Service's namespace. An address
    /// without one is never used, so the proxy reaches only Pods, never any address someone
    /// wrote into an Endpoints object.
    pub fn pod_in(&self, namespace: &str) -> Option<&str> {
        self.target
            .as_ref()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, name)| name.as_str())
    }

    pub fn location(&self, scheme: Scheme) -> Result<Location, ApiError> {
        let ip: IpAddr = self
            .ip
            .parse()
            .map_err(|_| unreachable(format!("dial tcp: address {}: invalid IP", self.ip)))?;
        Ok(Location {
            scheme,
            address: SocketAddr::new(ip, self.port),
        })
    }
}

fn port_number(value: &Value) -> Option<u16> {
    value.as_u64().and_then(|p| u16::try_from(p).ok())
}

/// The ready addresses of an `Endpoints` object that serve the Service port named
/// `port_name`: one group per subset.
pub fn endpoints_groups(endpoints: &Value, port_name: &str) -> Vec<Vec<Endpoint>> {
    let subsets = endpoints["subsets"].as_array().into_iter().flatten();
    subsets
        .filter_map(|subset| {
            let port = subset["ports"]
                .as_array()?
                .iter()
                .find(|p| p["name"].as_str().unwrap_or("") == port_name)
                .and_then(|p| port_number(&p["port"]))?;
            let group: Vec<Endpoint> = subset["addresses"]
                .as_array()?
                .iter()
                .filter_map(|a| Endpoint::new(&a["ip"], port, &a["targetRef"]))
                .collect();
            (!group.is_empty()).then_some(group)
        })
        .collect()
}

/// The same from a Service's `EndpointSlice`s: one group per slice, of the endpoints not
/// known to be unready (a missing `ready` condition means ready), each at its first address.
pub fn endpoint_slice_groups(slices: &[Value], port_name: &str) -> Vec<Vec<Endpoint>> {
    slices
        .iter()
        .filter(|slice| matches!(slice["addressType"].as_str(), Some("IPv4" | "IPv6")))
        .filter_map(|slice| {
            let port = slice["ports"]
                .as_array()?
                .iter()
                .find(|p| p["name"].as_str().unwrap_or("") == port_name)
                .and_then(|p| port_number(&p["port"]))?;
            let group: Vec<Endpoint> = slice["endpoints"]
                .as_array()?
                .iter()
                .filter(|e| e["conditions"]["ready"].as_bool() != Some(false))
                .filter_map(|e| Endpoint::new(&e["addresses"][0], port, &e["targetRef"]))
                .collect();
            (!group.is_empty()).then_some(group)
        })
        .collect()
}

/// The order upstream tries endpoints in: the groups from a random one on, each group's
/// addresses from a random one on. `random(n)` answers a number below `n`.
pub fn trial_order(
    groups: &[Vec<Endpoint>],
    mut random: impl FnMut(usize) -> usize,
) -> Vec<Endpoint> {
    let mut order = Vec::new();
    if groups.is_empty() {
        return order;
    }
    let first_group = random(groups.len()) % groups.len();
    for g in 0..groups.len() {
        let group = &groups[(first_group + g) % groups.len()];
        if group.is_empty() {
            continue;
        }
        let first = random(group.len()) % group.len();
        order.extend((0..group.len()).map(|i| group[(first + i) % group.len()].clone()));
    }
    order
}

/// Whether `ip` is one of the Pod's IPs.
pub fn pod_has_ip(pod: &Value, ip: &str) -> bool {
    pod["status"]["podIP"].as_str() == Some(ip)
        || pod["status"]["podIPs"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["ip"].as_str() == Some(ip))
}

/// Go's `IP.IsGlobalUnicast`: not unspecified, loopback, multicast, link-local or the
/// broadcast address.
fn is_global_unicast(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_multicast()
                || v4.is_link_local()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unicast_link_local())
        }
    }
}

/// The port numbers Go knows by name without `/etc/services` (its `net` package's table):
/// upstream dials `ip:name`, so a named pod port means the IANA service, not a container
/// port of that name.
const WELL_KNOWN_PORTS: &[(&str, u16)] = &[
    ("ftp", 21),
    ("ftps", 990),
    ("gopher", 70),
    ("http", 80),
    ("https", 443),
    ("imap2", 143),
    ("imap3", 220),
    ("imaps", 993),
    ("pop3", 110),
    ("pop3s", 995),
    ("smtp", 25),
    ("submissions", 465),
    ("ssh", 22),
    ("telnet", 23),
];

fn dial_port(port: &str, scheme: Scheme) -> Result<u16, ApiError> {
    if port.is_empty() {
        return Ok(scheme.default_port());
    }
    if port.bytes().all(|b| b.is_ascii_digit()) {
        return port
            .parse()
            .map_err(|_| unreachable(format!("dial tcp: address {port}: invalid port")));
    }
    WELL_KNOWN_PORTS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(port))
        .map(|(_, number)| *number)
        .ok_or_else(|| unreachable(format!("dial tcp: lookup tcp/{port}: unknown port")))
}

/// Where `pods/<name>/proxy` goes (upstream's pod `ResourceLocation`): the Pod's first IP,
/// which must be a global unicast address, at the requested port, else at the first port any
/// container declares, else at the scheme's.
pub fn pod_location(pod: &Value, name: &ProxyName) -> Result<Location, ApiError> {
    let mut port = name.port.clone();
    if port.is_empty()
        && let Some(declared) = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|c| c["ports"][0]["containerPort"].as_i64())
    {
        port = declared.to_string();
    }
    let ip = pod["status"]["podIPs"][0]["ip"]
        .as_str()
        .or_else(|| pod["status"]["podIP"].as_str())
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .filter(|ip| is_global_unicast(*ip))
        .ok_or_else(|| ApiError::bad_request("address not allowed"))?;
    Ok(Location {
        scheme: name.scheme,
        address: SocketAddr::new(ip, dial_port(&port, name.scheme)?),
    })
}

/// Splits a request's (undecoded) path at the end of `/<resource>/<name>/proxy`: the prefix
/// through `/proxy`, and what follows it (empty, or starting with `/`).
pub fn split_path<'a>(path: &'a str, resource: &str, name: &str) -> Option<(&'a str, &'a str)> {
    let marker = format!("/{resource}/{name}/proxy");
    path.match_indices(&marker).find_map(|(at, _)| {
        let end = at + marker.len();
        let rest = &path[end..];
        (rest.is_empty() || rest.starts_with('/')).then(|| (&path[..end], rest))
    })
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// A rooted path cleaned as Go's `path.Clean` does: no empty, `.` or `..` segments (`..` at
/// the root stays at the root).
fn clean(path: &[u8]) -> Vec<u8> {
    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in path.split(|b| *b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = Vec::with_capacity(path.len() + 1);
    for segment in &segments {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Percent-encodes a path as Go's `url.URL.EscapedPath` does.
fn escape_path(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b'&'
            | b'+'
            | b','
            | b'/'
            | b':'
            | b';'
            | b'='
            | b'@' => out.push(char::from(*byte)),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// The backend's path for `subpath` (what follows `.../proxy`, undecoded), as upstream builds
/// it: decoded, cleaned as `path.Join` cleans, a trailing slash kept, and encoded again as Go
/// encodes paths. Empty stays empty: upstream then redirects a GET to `.../proxy/`, and
/// sends any other method to `/`.
pub fn backend_path(subpath: &str) -> String {
    let decoded = percent_decode(subpath);
    if decoded.is_empty() {
        return String::new();
    }
    let mut cleaned = clean(&decoded);
    if decoded.ends_with(b"/") && !cleaned.ends_with(b"/") {
        cleaned.push(b'/');
    }
    escape_path(&cleaned)
}

/// `prefix` and `path` joined and cleaned as `path.Join` does, `path`'s trailing slash kept.
fn join(prefix: &str, path: &str) -> String {
    let mut cleaned = clean(format!("{prefix}/{path}").as_bytes());
    if path.ends_with('/') && !cleaned.ends_with(b"/") {
        cleaned.push(b'/');
    }
    String::from_utf8_lossy(&cleaned).into_owned()
}

/// The `X-Forwarded-Uri` the backend gets: the path the client asked for, as upstream's
/// proxy transport reports it.
pub fn forwarded_uri(prefix: &str, backend_path: &str) -> String {
    join(prefix, backend_path)
}

/// A backend's `Location` header as the client must see it (upstream's `rewriteURL`): a URL
/// on the backend's host, or on the host the client addressed, or an absolute path, is put
/// under `prefix` (`/api/v1/namespaces/<ns>/services/<name>/proxy`); anything else (another
/// host, a relative path) is left alone.
pub fn rewrite_location(location: &str, backend: &str, request_host: &str, prefix: &str) -> String {
    let (scheme_and_host, host, rest) = match location.find("//") {
        Some(0) => split_authority(location, 0),
        Some(at)
            if location[..at].ends_with(':')
                && location[..at - 1]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
                && location
                    .as_bytes()
                    .first()
                    .is_some_and(u8::is_ascii_alphabetic) =>
        {
            split_authority(location, at)
        }
        _ => ("", "", location),
    };
    if scheme_and_host.is_empty()
        && location
            .split(['/', '?', '#'])
            .next()
            .is_some_and(|first| first.contains(':'))
    {
        // An opaque URL (`mailto:...`): nothing to rewrite.
        return location.to_owned();
    }
    let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (path, tail) = rest.split_at(path_end);
    let other_host = !host.is_empty() && host != backend && host != request_host;
    if other_host || !path.starts_with('/') {
        return location.to_owned();
    }
    // The client's own host stays; the backend's goes, leaving a path on the server's.
    let kept = if !host.is_empty() && host == request_host {
        scheme_and_host
    } else {
        ""
    };
    if path.starts_with(prefix) {
        return format!("{kept}{path}{tail}");
    }
    format!("{kept}{}{tail}", join(prefix, path))
}

/// Splits `scheme://host/rest` (the `//` at `at`) into `scheme://host`, `host` and the rest.
fn split_authority(location: &str, at: usize) -> (&str, &str, &str) {
    let after = &location[at + 2..];
    let host_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let end = at + 2 + host_end;
    (&location[..end], &after[..host_end], &location[end..])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_read_as_split_scheme_name_port() {
        for (id, scheme, name, port) in [
            ("web", Scheme::Http, "web", ""),
            ("web:http", Scheme::Http, "web", "http"),
            ("web:8080", Scheme::Http, "web", "8080"),
            ("http:web:80", Scheme::Http, "web", "80"),
            ("https:web:443", Scheme::Https, "web", "443"),
            ("https:web:", Scheme::Https, "web", ""),
            (":web:1", Scheme::Http, "web", "1"),
        ] {
            let parsed = ProxyName::parse(id, "service").unwrap();
            assert_eq!(
                (parsed.scheme, parsed.name.as_str(), parsed.port.as_str()),
                (scheme, name, port),
                "{id}"
            );
        }
        for id in ["", ":80", "ftp:web:21", "a:b:c:d", "https::443"] {
            let error = ProxyName::parse(id, "pod").unwrap_err();
            assert_eq!(
                (error.code, error.message),
                (400, format!("invalid pod request {id:?}")),
                "{id}"
            );
        }
    }

    #[test]
    fn a_port_number_means_the_service_port_of_that_number() {
        let service = json!({
            "metadata": {"name": "web"},
            "spec": {"ports": [{"name": "http", "port": 80}, {"name": "admin", "port": 9000}]},
        });
        assert_eq!(service_port_name(&service, "9000").unwrap(), "admin");
        assert_eq!(service_port_name(&service, "http").unwrap(), "http");
        assert_eq!(service_port_name(&service, "").unwrap(), "");
        let error = service_port_name(&service, "81").unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (503, "no service port 81 found for service \"web\"")
        );
        let unnamed = json!({"spec": {"ports": [{"port": 80}]}});
        assert_eq!(service_port_name(&unnamed, "80").unwrap(), "");
    }

    fn endpoint(ip: &str, port: u16, pod: Option<&str>) -> Endpoint {
        Endpoint {
            ip: ip.into(),
            port,
            target: pod.map(|p| ("default".to_owned(), p.to_owned())),
        }
    }

    #[test]
    fn ready_endpoints_of_the_named_port() {
        let endpoints = json!({"subsets": [
            {
                "addresses": [{"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "namespace": "default", "name": "a"}}],
                "notReadyAddresses": [{"ip": "10.0.0.9"}],
                "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9000}],
            },
            {"addresses": [{"ip": "10.0.0.2"}], "ports": [{"name": "admin", "port": 9001}]},
            {"notReadyAddresses": [{"ip": "10.0.0.3"}], "ports": [{"name": "http", "port": 8080}]},
        ]});
        assert_eq!(
            endpoints_groups(&endpoints, "http"),
            vec![vec![endpoint("10.0.0.1", 8080, Some("a"))]]
        );
        assert_eq!(
            endpoints_groups(&endpoints, "admin"),
            vec![
                vec![endpoint("10.0.0.1", 9000, Some("a"))],
                vec![endpoint("10.0.0.2", 9001, None)]
            ]
        );
        assert!(endpoints_groups(&json!({}), "").is_empty());

        let slices = [
            json!({
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080}],
                "endpoints": [
                    {"addresses": ["10.0.0.1"], "targetRef": {"namespace": "default", "name": "a"}},
                    {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
                    {"addresses": ["10.0.0.3"], "conditions": {"ready": true}},
                ],
            }),
            json!({"addressType": "FQDN", "ports": [{"name": "http", "port": 80}],
                   "endpoints": [{"addresses": ["example.com"]}]}),
            json!({"addressType": "IPv4", "ports": [{"port": 80}],
                   "endpoints": [{"addresses": ["10.0.0.4"]}]}),
        ];
        assert_eq!(
            endpoint_slice_groups(&slices, "http"),
            vec![vec![
                endpoint("10.0.0.1", 8080, Some("a")),
                endpoint("10.0.0.3", 8080, None)
            ]]
        );
        assert_eq!(
            endpoint_slice_groups(&slices, ""),
            vec![vec![endpoint("10.0.0.4", 80, None)]]
        );
    }

    #[test]
    fn endpoints_are_tried_from_a_random_one_on() {
        let groups = vec![
            vec![endpoint("a", 1, None), endpoint("b", 1, None)],
            vec![endpoint("c", 1, None)],
        ];
        let ips = |order: Vec<Endpoint>| order.into_iter().map(|e| e.ip).collect::<Vec<_>>();
        assert_eq!(ips(trial_order(&groups, |_| 0)), ["a", "b", "c"]);
        assert_eq!(ips(trial_order(&groups, |_| 1)), ["c", "b", "a"]);
        assert!(trial_order(&[], |_| 0).is_empty());
    }

    #[test]
    fn only_addresses_of_pods_of_the_namespace_are_used() {
        let ready = endpoint("10.0.0.1", 80, Some("a"));
        assert_eq!(ready.pod_in("default"), Some("a"));
        assert_eq!(ready.pod_in("other"), None);
        assert_eq!(endpoint("10.0.0.1", 80, None).pod_in("default"), None);
        let pod = json!({"status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}});
        assert!(pod_has_ip(&pod, "10.0.0.1"));
        assert!(pod_has_ip(&pod, "fd00::1"));
        assert!(!pod_has_ip(&pod, "10.0.0.2"));
        assert_eq!(
            ready.location(Scheme::Https).unwrap(),
            Location {
                scheme: Scheme::Https,
                address: "10.0.0.1:80".parse().unwrap()
            }
        );
    }

    #[test]
    fn a_pod_is_reached_at_its_ip_and_port() {
        let pod = json!({
            "spec": {"containers": [{"name": "a"}, {"name": "b", "ports": [{"containerPort": 8080}]}]},
            "status": {"podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}]},
        });
        let at = |id: &str| {
            pod_location(&pod, &ProxyName::parse(id, "pod").unwrap()).map(|l| l.address.to_string())
        };
        assert_eq!(at("p").unwrap(), "10.1.0.5:8080");
        assert_eq!(at("p:9000").unwrap(), "10.1.0.5:9000");
        assert_eq!(at("p:http").unwrap(), "10.1.0.5:80");
        assert_eq!(at("https:p:https").unwrap(), "10.1.0.5:443");
        assert_eq!(
            at("p:metrics").unwrap_err().message,
            "error trying to reach service: dial tcp: lookup tcp/metrics: unknown port"
        );
        assert_eq!(at("p:70000").unwrap_err().code, 503);
        let bare = json!({"status": {"podIP": "fd00::5"}});
        let location = pod_location(&bare, &ProxyName::parse("https:p:", "pod").unwrap()).unwrap();
        assert_eq!(location.address.to_string(), "[fd00::5]:443");
        for status in [
            json!({}),
            json!({"podIP": "127.0.0.1"}),
            json!({"podIP": "169.254.0.1"}),
            json!({"podIP": "0.0.0.0"}),
            json!({"podIP": "::1"}),
            json!({"podIP": "fe80::1"}),
            json!({"podIP": "not-an-ip"}),
        ] {
            let error = pod_location(
                &json!({"status": status}),
                &ProxyName::parse("p", "pod").unwrap(),
            )
            .unwrap_err();
            assert_eq!(
                (error.code, error.message.as_str()),
                (400, "address not allowed"),
                "{status}"
            );
        }
    }

    #[test]
    fn paths_are_split_after_the_proxy_segment() {
        let path = "/api/v1/namespaces/default/services/web:http/proxy/a/b/";
        assert_eq!(
            split_path(path, "services", "web:http"),
            Some((
                "/api/v1/namespaces/default/services/web:http/proxy",
                "/a/b/"
            ))
        );
        assert_eq!(
            split_path("/api/v1/namespaces/x/pods/p/proxy", "pods", "p"),
            Some(("/api/v1/namespaces/x/pods/p/proxy", ""))
        );
        assert_eq!(
            split_path("/api/v1/namespaces/x/pods/p/proxyx", "pods", "p"),
            None
        );
    }

    #[test]
    fn backend_paths_are_cleaned_as_upstream_cleans_them() {
        for (subpath, want) in [
            ("", ""),
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("//a//b", "/a/b"),
            ("/a/./b/../c", "/a/c"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/%2e%2e/x", "/x"),
            ("/a%20b/c%2Fd", "/a%20b/c/d"),
            ("/q%3Fx", "/q%3Fx"),
            ("/a:b;c=d@e$f&g+h,i", "/a:b;c=d@e$f&g+h,i"),
            ("/(x)!", "/%28x%29%21"),
            ("/..", "/"),
            ("/../", "/"),
        ] {
            assert_eq!(backend_path(subpath), want, "{subpath}");
        }
        assert_eq!(
            forwarded_uri("/api/v1/namespaces/d/services/web/proxy", "/a/"),
            "/api/v1/namespaces/d/services/web/proxy/a/"
        );
        assert_eq!(
            forwarded_uri("/api/v1/namespaces/d/services/web/proxy", "/"),
            "/api/v1/namespaces/d/services/web/proxy/"
        );
    }

    #[test]
    fn redirects_stay_under_the_proxy_path() {
        let prefix = "/api/v1/namespaces/d/services/web/proxy";
        let rewrite =
            |location: &str| rewrite_location(location, "10.0.0.1:8080", "127.0.0.1:6443", prefix);
        for (location, want) in [
            ("/login", format!("{prefix}/login")),
            (
                "/login/?next=/x#top",
                format!("{prefix}/login/?next=/x#top"),
            ),
            ("http://10.0.0.1:8080/a/b", format!("{prefix}/a/b")),
            ("//10.0.0.1:8080/a", format!("{prefix}/a")),
            (
                "https://127.0.0.1:6443/a",
                format!("https://127.0.0.1:6443{prefix}/a"),
            ),
            (&format!("{prefix}/done"), format!("{prefix}/done")),
            ("http://example.com/a", "http://example.com/a".to_owned()),
            ("relative/path", "relative/path".to_owned()),
            ("http://10.0.0.1:8080", "http://10.0.0.1:8080".to_owned()),
            ("mailto:a@b.c", "mailto:a@b.c".to_owned()),
            ("/", format!("{prefix}/")),
        ] {
            assert_eq!(rewrite(location), want, "{location}");
        }
    }
}
