//! The EndpointSlice printer (`discovery.k8s.io`).

use serde_json::Value;

use super::cells::{self, items, text};
use super::{AGE, Column, NAME, Printer};

pub(super) const ENDPOINT_SLICE: Printer = Printer::new(ENDPOINT_SLICE_COLUMNS, endpoint_slice);

const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "AddressType",
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.",
    ),
    Column::string(
        "Ports",
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.",
    ),
    Column::string(
        "Endpoints",
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.",
    ),
    AGE,
];

/// At most this many ports or addresses are shown, then how many more there are.
const MAX: usize = 3;

fn endpoint_slice(object: &Value, now: i64) -> Vec<Value> {
    // A port without a number shows its name. Upstream's `*` for a port without either never
    // shows: reading a slice back defaults an absent name to "".
    let ports: Vec<String> = items(object, "/ports")
        .iter()
        .map(|port| match port.get("port").and_then(Value::as_i64) {
            Some(number) => number.to_string(),
            None => text(port, "/name").to_owned(),
        })
        .collect();
    let addresses: Vec<String> = items(object, "/endpoints")
        .iter()
        .flat_map(|endpoint| items(endpoint, "/addresses"))
        .map(|address| address.as_str().unwrap_or_default().to_owned())
        .collect();
    cells![
        cells::name(object),
        text(object, "/addressType"),
        first_few(&ports),
        first_few(&addresses),
        cells::age(object, now),
    ]
}

fn first_few(list: &[String]) -> String {
    let shown = &list[..list.len().min(MAX)];
    cells::list_with_more(shown, list.len() > MAX, list.len(), MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago};
    use serde_json::json;

    #[test]
    fn prints_ports_and_addresses() {
        let cases = [
            (
                json!({"addressType": "IPv4",
                       "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
                       "endpoints": [{"addresses": ["192.168.1.10"], "conditions": {"ready": true}}]}),
                json!(["kubernetes", "IPv4", "6443", "192.168.1.10", "4m"]),
            ),
            (
                json!({"addressType": "IPv6",
                       "ports": [{"port": 80}, {"name": "metrics"}, {"port": 443}, {"port": 8080}],
                       "endpoints": [{"addresses": ["fd00::1", "fd00::2"]},
                                     {"addresses": ["fd00::3"], "conditions": {"ready": false}},
                                     {"addresses": ["fd00::4"]}]}),
                json!([
                    "kubernetes",
                    "IPv6",
                    "80,metrics,443 + 1 more...",
                    "fd00::1,fd00::2,fd00::3 + 1 more...",
                    "4m"
                ]),
            ),
            (
                json!({"addressType": "FQDN", "ports": [{"protocol": "TCP"}], "endpoints": []}),
                json!(["kubernetes", "FQDN", "<unset>", "<unset>", "4m"]),
            ),
        ];
        for (mut object, want) in cases {
            object["metadata"] = json!({"name": "kubernetes", "creationTimestamp": minutes_ago(4)});
            assert_eq!(Value::from(endpoint_slice(&object, NOW)), want, "{object}");
        }
    }
}
