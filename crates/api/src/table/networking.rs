//! Printers of `networking.k8s.io`: Ingress, IngressClass and NetworkPolicy.

use serde_json::Value;

use super::cells::{self, items, optional_text, text};
use super::core::service::load_balancer_addresses;
use super::{AGE, Column, NAME, Printer};

pub(super) const INGRESS: Printer = Printer::new(INGRESS_COLUMNS, ingress);
pub(super) const INGRESS_CLASS: Printer = Printer::new(INGRESS_CLASS_COLUMNS, ingress_class);
pub(super) const NETWORK_POLICY: Printer = Printer::new(NETWORK_POLICY_COLUMNS, network_policy);

const INGRESS_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Class",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    Column::string(
        "Hosts",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    Column::string(
        "Address",
        "Address is a list containing ingress points for the load-balancer",
    ),
    Column::string("Ports", "Ports of TLS configurations that open"),
    AGE,
];

const INGRESS_CLASS_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Controller",
        "Controller that is responsible for handling this class",
    ),
    Column::string(
        "Parameters",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

const NETWORK_POLICY_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Pod-Selector",
        "Selects the pods to which this NetworkPolicy object applies.  The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods.  In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.",
    ),
    AGE,
];

/// Class is `spec.ingressClassName` only; the older annotation is not read. Address is never
/// shortened: the server prints the wide form.
fn ingress(object: &Value, now: i64) -> Vec<Value> {
    let addresses: Vec<&str> = load_balancer_addresses(object).into_iter().collect();
    let ports = if items(object, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    cells![
        cells::name(object),
        optional_text(object, "/spec/ingressClassName").unwrap_or("<none>"),
        hosts(items(object, "/spec/rules")),
        addresses.join(","),
        ports,
        cells::age(object, now),
    ]
}

/// Upstream's `formatHosts`: the first three hosts, then how many more rules there are (hostless
/// ones included); `*` when no rule names a host.
fn hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut shown: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if shown.len() == MAX {
            more = true;
        }
        let host = text(rule, "/host");
        if !more && !host.is_empty() {
            shown.push(host);
        }
    }
    if shown.is_empty() {
        return "*".to_owned();
    }
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - MAX)
    } else {
        joined
    }
}

fn ingress_class(object: &Value, now: i64) -> Vec<Value> {
    let parameters = match object.pointer("/spec/parameters").filter(|p| p.is_object()) {
        None => "<none>".to_owned(),
        Some(parameters) => {
            let kind = text(parameters, "/kind");
            let name = text(parameters, "/name");
            match optional_text(parameters, "/apiGroup") {
                Some(group) => format!("{kind}.{group}/{name}"),
                None => format!("{kind}/{name}"),
            }
        }
    };
    cells![
        cells::name(object),
        text(object, "/spec/controller"),
        parameters,
        cells::age(object, now),
    ]
}

fn network_policy(object: &Value, now: i64) -> Vec<Value> {
    // The pod selector is a struct, not a pointer, upstream: absent reads as empty, all pods.
    let selector = object
        .pointer("/spec/podSelector")
        .filter(|s| !s.is_null())
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    cells![
        cells::name(object),
        cells::format_label_selector(Some(&selector)),
        cells::age(object, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago};
    use serde_json::json;

    #[test]
    fn prints_ingresses() {
        let cases = [
            (
                json!({"spec": {"ingressClassName": "nginx",
                                "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}],
                                "tls": [{"hosts": ["a.example.com"]}]},
                       "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.5"},
                                                               {"hostname": "lb.example.com"}]}}}),
                json!([
                    "web",
                    "nginx",
                    "a.example.com,b.example.com",
                    "203.0.113.5,lb.example.com",
                    "80, 443",
                    "9m"
                ]),
            ),
            (
                json!({"metadata": {"annotations": {"kubernetes.io/ingress.class": "old"}},
                       "spec": {"defaultBackend": {"service": {"name": "web"}}}}),
                json!(["web", "<none>", "*", "", "80", "9m"]),
            ),
        ];
        for (mut object, want) in cases {
            object["metadata"]["name"] = json!("web");
            object["metadata"]["creationTimestamp"] = json!(minutes_ago(9));
            assert_eq!(Value::from(ingress(&object, NOW)), want, "{object}");
        }
    }

    #[test]
    fn formats_hosts() {
        let rules =
            |hosts: &[&str]| -> Vec<Value> { hosts.iter().map(|h| json!({"host": h})).collect() };
        let cases = [
            (rules(&[]), "*"),
            (rules(&["", ""]), "*"),
            (rules(&["a", "", "b"]), "a,b"),
            (rules(&["a", "b", "c"]), "a,b,c"),
            (rules(&["a", "b", "c", "d", ""]), "a,b,c + 2 more..."),
            (rules(&["", "a", "b", "c"]), "a,b,c"),
        ];
        for (rules, want) in cases {
            assert_eq!(hosts(&rules), want, "{rules:?}");
        }
    }

    #[test]
    fn prints_ingress_classes_and_network_policies() {
        let meta = json!({"name": "x", "creationTimestamp": minutes_ago(9)});
        let cases = [
            (
                INGRESS_CLASS,
                json!({"metadata": meta, "spec": {"controller": "k8s.io/ingress-nginx",
                    "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters",
                                   "name": "external-lb"}}}),
                json!([
                    "x",
                    "k8s.io/ingress-nginx",
                    "IngressParameters.k8s.example.com/external-lb",
                    "9m"
                ]),
            ),
            (
                INGRESS_CLASS,
                json!({"metadata": meta, "spec": {"controller": "c",
                    "parameters": {"kind": "ConfigMap", "name": "p"}}}),
                json!(["x", "c", "ConfigMap/p", "9m"]),
            ),
            (
                INGRESS_CLASS,
                json!({"metadata": meta, "spec": {"controller": "c"}}),
                json!(["x", "c", "<none>", "9m"]),
            ),
            (
                NETWORK_POLICY,
                json!({"metadata": meta, "spec": {"podSelector": {"matchLabels": {"role": "db"}}}}),
                json!(["x", "role=db", "9m"]),
            ),
            (
                NETWORK_POLICY,
                json!({"metadata": meta, "spec": {"podSelector": {}}}),
                json!(["x", "<none>", "9m"]),
            ),
        ];
        for (printer, object, want) in cases {
            assert_eq!(Value::from((printer.cells)(&object, NOW)), want, "{object}");
        }
    }
}
