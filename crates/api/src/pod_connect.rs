//! The pod subresources the API server hands on to the pod's kubelet — `log`, `exec`,
//! `attach`, `portforward` — as upstream's pod registry words them: reading the options from
//! the query, validating them, choosing the container, finding the kubelet's address on the
//! Node, and the kubelet URL each becomes (upstream's `LogLocation`, `ExecLocation`,
//! `AttachLocation`, `PortForwardLocation`).

use serde_json::Value;

use crate::status::ApiError;
use crate::validation::FieldError;

/// The kubelet's port when the Node does not say (upstream's `ports.KubeletPort`).
pub const DEFAULT_KUBELET_PORT: u16 = 10250;

/// A boolean query parameter as Go's `strconv.ParseBool` reads it; absent is false.
fn parse_bool(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("") => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(ApiError::bad_request(format!(
            "{name}: strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

fn parse_int(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "{name}: strconv.ParseInt: parsing {text:?}: invalid syntax"
            ))
        }),
    }
}

/// `PodLogOptions`, from the query of `GET pods/<name>/log`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub since_seconds: Option<i64>,
    /// RFC 3339, as given.
    pub since_time: Option<String>,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
}

impl LogOptions {
    /// Reads the options (`get` answers a query parameter's first value) and validates them
    /// as upstream's `ValidatePodLogOptions` does.
    pub fn parse<'a>(pod: &str, get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, ApiError> {
        let options = Self {
            container: get("container")
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            follow: parse_bool("follow", get("follow"))?,
            previous: parse_bool("previous", get("previous"))?,
            timestamps: parse_bool("timestamps", get("timestamps"))?,
            since_seconds: parse_int("sinceSeconds", get("sinceSeconds"))?,
            since_time: get("sinceTime")
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
            tail_lines: parse_int("tailLines", get("tailLines"))?,
            limit_bytes: parse_int("limitBytes", get("limitBytes"))?,
        };
        let mut errors = Vec::new();
        if let Some(lines) = options.tail_lines.filter(|l| *l < 0) {
            errors.push(FieldError::invalid_raw(
                "tailLines",
                lines,
                "must be greater than or equal to 0",
            ));
        }
        if let Some(bytes) = options.limit_bytes.filter(|b| *b < 1) {
            errors.push(FieldError::invalid_raw(
                "limitBytes",
                bytes,
                "must be greater than 0",
            ));
        }
        if options.since_seconds.is_some() && options.since_time.is_some() {
            errors.push(FieldError::forbidden(
                "",
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            ));
        }
        if let Some(seconds) = options.since_seconds.filter(|s| *s < 1) {
            errors.push(FieldError::invalid_raw(
                "sinceSeconds",
                seconds,
                "must be greater than 0",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid("", "PodLogOptions", pod, &errors));
        }
        Ok(options)
    }

    /// The kubelet's `/containerLogs/<namespace>/<pod>/<container>` query for these options.
    pub fn kubelet_query(&self) -> String {
        let mut query = Query::default();
        for (flag, name) in [
            (self.follow, "follow"),
            (self.previous, "previous"),
            (self.timestamps, "timestamps"),
        ] {
            if flag {
                query.add(name, "true");
            }
        }
        if let Some(seconds) = self.since_seconds {
            query.add("sinceSeconds", &seconds.to_string());
        }
        if let Some(time) = &self.since_time {
            query.add("sinceTime", time);
        }
        if let Some(lines) = self.tail_lines {
            query.add("tailLines", &lines.to_string());
        }
        if let Some(bytes) = self.limit_bytes {
            query.add("limitBytes", &bytes.to_string());
        }
        query.0
    }
}

/// `PodExecOptions` and `PodAttachOptions` (`command` is empty for attach).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub command: Vec<String>,
}

impl StreamOptions {
    /// Reads the options; `all` answers every value of a query parameter.
    pub fn parse<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        all: impl Fn(&str) -> Vec<String>,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            container: get("container")
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            stdin: parse_bool("stdin", get("stdin"))?,
            stdout: parse_bool("stdout", get("stdout"))?,
            stderr: parse_bool("stderr", get("stderr"))?,
            tty: parse_bool("tty", get("tty"))?,
            command: all("command"),
        })
    }

    /// The kubelet's `/exec/...` or `/attach/...` query (upstream's `streamParams`).
    pub fn kubelet_query(&self) -> String {
        let mut query = Query::default();
        for (flag, name) in [
            (self.stdin, "input"),
            (self.stdout, "output"),
            (self.stderr, "error"),
            (self.tty, "tty"),
        ] {
            if flag {
                query.add(name, "1");
            }
        }
        for part in &self.command {
            query.add("command", part);
        }
        query.0
    }
}

/// The kubelet's `/portForward/...` query: the requested ports (`ports`, repeated or comma
/// separated) as upstream hands them on, `port=80,443`.
pub fn port_forward_query(ports: &[String]) -> Result<String, ApiError> {
    let mut numbers = Vec::new();
    for port in ports
        .iter()
        .flat_map(|p| p.split(','))
        .filter(|p| !p.is_empty())
    {
        match port.trim().parse::<u16>() {
            Ok(number) if number > 0 => numbers.push(number.to_string()),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "ports: strconv.ParseInt: parsing {port:?}: invalid syntax"
                )));
            }
        }
    }
    let mut query = Query::default();
    if !numbers.is_empty() {
        query.add("port", &numbers.join(","));
    }
    Ok(query.0)
}

/// The names of a pod's containers: init, regular, then ephemeral (upstream's
/// `VisitContainers` order).
fn container_names(pod: &Value) -> Vec<String> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|list| {
            pod["spec"][list]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
        })
        .collect()
}

/// The container a request is for (upstream's `validateContainer`): the requested one if the
/// pod has it, else the pod's only container.
pub fn container_for(
    pod: &Value,
    pod_name: &str,
    requested: Option<&str>,
) -> Result<String, ApiError> {
    let names = container_names(pod);
    match requested {
        Some(name) if names.iter().any(|n| n == name) => Ok(name.to_owned()),
        Some(name) => Err(ApiError::bad_request(format!(
            "container {name} is not valid for pod {pod_name}"
        ))),
        None => {
            let regular: Vec<&str> = pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str())
                .collect();
            match regular.as_slice() {
                [only] => Ok((*only).to_owned()),
                [] => Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {pod_name}"
                ))),
                _ => Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    names.join(" ")
                ))),
            }
        }
    }
}

/// The node a pod is bound to, if any.
pub fn node_name(pod: &Value) -> Option<&str> {
    pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
}

/// The error for a stream to a pod that is not on a node yet.
pub fn no_host(pod_name: &str) -> ApiError {
    ApiError::bad_request(format!("pod {pod_name} does not have a host assigned"))
}

/// Where a Node's kubelet listens: its `InternalIP` (else `Hostname`, else `ExternalIP`)
/// address and `status.daemonEndpoints.kubeletEndpoint.Port`.
pub fn kubelet_endpoint(node: &Value) -> Option<(String, u16)> {
    let addresses = node["status"]["addresses"].as_array()?;
    let address = ["InternalIP", "Hostname", "ExternalIP"]
        .iter()
        .find_map(|kind| {
            addresses
                .iter()
                .find(|a| a["type"] == *kind)
                .and_then(|a| a["address"].as_str())
                .filter(|a| !a.is_empty())
        })?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Some((address.to_owned(), port))
}

/// A query string, percent-encoded as Go's `url.Values.Encode` does.
#[derive(Debug, Default)]
struct Query(String);

impl Query {
    fn add(&mut self, name: &str, value: &str) {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        self.0.push_str(&encode(name));
        self.0.push('=');
        self.0.push_str(&encode(value));
    }
}

/// Percent-encodes a query component (`url.QueryEscape`: spaces become `+`).
pub fn encode(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    for byte in component.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    fn query(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn log_options_are_read_validated_and_handed_on() {
        let q = query(&[
            ("container", "web"),
            ("follow", "true"),
            ("tailLines", "10"),
            ("timestamps", "1"),
        ]);
        let options = LogOptions::parse("p", |k| q.get(k).copied()).unwrap();
        assert_eq!(options.container.as_deref(), Some("web"));
        assert_eq!(
            options.kubelet_query(),
            "follow=true&timestamps=true&tailLines=10"
        );
        let q = query(&[("sinceTime", "2024-01-01T00:00:00Z"), ("limitBytes", "5")]);
        assert_eq!(
            LogOptions::parse("p", |k| q.get(k).copied())
                .unwrap()
                .kubelet_query(),
            "sinceTime=2024-01-01T00%3A00%3A00Z&limitBytes=5"
        );
    }

    #[test]
    fn bad_log_options_are_refused_as_upstream_words_it() {
        for (pairs, code, message) in [
            (
                vec![("tailLines", "-1")],
                422,
                "PodLogOptions \"p\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                vec![("limitBytes", "0")],
                422,
                "PodLogOptions \"p\" is invalid: limitBytes: Invalid value: 0: must be greater than 0",
            ),
            (
                vec![("sinceSeconds", "0")],
                422,
                "PodLogOptions \"p\" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0",
            ),
            (
                vec![("tailLines", "x")],
                400,
                "tailLines: strconv.ParseInt: parsing \"x\": invalid syntax",
            ),
            (
                vec![("follow", "yes")],
                400,
                "follow: strconv.ParseBool: parsing \"yes\": invalid syntax",
            ),
        ] {
            let q: HashMap<&str, &str> = pairs.into_iter().collect();
            let error = LogOptions::parse("p", |k| q.get(k).copied()).unwrap_err();
            assert_eq!((error.code, error.message.as_str()), (code, message));
        }
        let q = query(&[("sinceTime", "2024-01-01T00:00:00Z"), ("sinceSeconds", "5")]);
        let error = LogOptions::parse("p", |k| q.get(k).copied()).unwrap_err();
        assert!(
            error
                .message
                .contains("at most one of `sinceTime` or `sinceSeconds`")
        );
    }

    #[test]
    fn the_container_is_the_requested_or_the_only_one() {
        let one = json!({"spec": {"containers": [{"name": "web"}]}});
        assert_eq!(container_for(&one, "p", None).unwrap(), "web");
        assert_eq!(container_for(&one, "p", Some("web")).unwrap(), "web");
        assert_eq!(
            container_for(&one, "p", Some("db")).unwrap_err().message,
            "container db is not valid for pod p"
        );
        let two = json!({"spec": {
            "initContainers": [{"name": "setup"}],
            "containers": [{"name": "a"}, {"name": "b"}],
        }});
        let error = container_for(&two, "p", None).unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (
                400,
                "a container name must be specified for pod p, choose one of: [setup a b]"
            )
        );
        assert_eq!(container_for(&two, "p", Some("setup")).unwrap(), "setup");
        let none = json!({"spec": {"containers": []}});
        assert_eq!(
            container_for(&none, "p", None).unwrap_err().message,
            "a container name must be specified for pod p"
        );
    }

    #[test]
    fn exec_options_become_the_kubelets_query() {
        let q = query(&[("stdin", "true"), ("stdout", "true"), ("tty", "false")]);
        let options = StreamOptions::parse(
            |k| q.get(k).copied(),
            |k| {
                if k == "command" {
                    vec!["sh".into(), "-c".into(), "echo a&b".into()]
                } else {
                    Vec::new()
                }
            },
        )
        .unwrap();
        assert_eq!(
            options.kubelet_query(),
            "input=1&output=1&command=sh&command=-c&command=echo+a%26b"
        );
        assert_eq!(
            port_forward_query(&["80".into(), "443,8080".into()]).unwrap(),
            "port=80%2C443%2C8080"
        );
        assert_eq!(port_forward_query(&[]).unwrap(), "");
        assert_eq!(port_forward_query(&["x".into()]).unwrap_err().code, 400);
    }

    #[test]
    fn the_kubelet_is_at_the_nodes_internal_ip() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10255}},
        }});
        assert_eq!(kubelet_endpoint(&node), Some(("10.0.0.5".into(), 10255)));
        let bare = json!({"status": {"addresses": [{"type": "Hostname", "address": "n"}]}});
        assert_eq!(
            kubelet_endpoint(&bare),
            Some(("n".into(), DEFAULT_KUBELET_PORT))
        );
        assert_eq!(kubelet_endpoint(&json!({})), None);
    }
}
