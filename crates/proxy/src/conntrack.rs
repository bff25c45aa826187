//! Stale UDP flows: conntrack remembers where a UDP "connection" was DNATed, so without help
//! a client that keeps its source port (a resolver, a game, a metrics agent) keeps talking to
//! an endpoint after it is gone. After each sync the proxy deletes, as upstream's does:
//! - flows to a Service address that were DNATed to an endpoint the port no longer has;
//! - flows to a node port DNATed to such an endpoint;
//! - all flows to a Service address whose port had no endpoints and now has some (packets
//!   sent while there were none may have left entries that would keep being rejected).
//!
//! It runs `conntrack` (conntrack-tools); without it, stale flows age out by themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::process::Command;

use crate::model::{Protocol, ServicePort};

/// Flows to delete.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flow {
    /// UDP flows to `address` (any port) DNATed to `endpoint`.
    ToAddressVia {
        address: Ipv4Addr,
        endpoint: Ipv4Addr,
    },
    /// UDP flows to any local address on `node_port` DNATed to `endpoint`.
    ToNodePortVia { node_port: u16, endpoint: Ipv4Addr },
    /// Every UDP flow to `address`.
    ToAddress { address: Ipv4Addr },
}

impl Flow {
    /// `conntrack` arguments that delete these flows.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["-D".into(), "-p".into(), "udp".into()];
        match self {
            Flow::ToAddressVia { address, endpoint } => args.extend([
                "--orig-dst".into(),
                address.to_string(),
                "--dst-nat".into(),
                endpoint.to_string(),
            ]),
            Flow::ToNodePortVia {
                node_port,
                endpoint,
            } => args.extend([
                "--orig-port-dst".into(),
                node_port.to_string(),
                "--dst-nat".into(),
                endpoint.to_string(),
            ]),
            Flow::ToAddress { address } => {
                args.extend(["--orig-dst".into(), address.to_string()]);
            }
        }
        args
    }
}

/// The flows made stale by going from `old` to `new`.
pub fn stale_udp_flows(old: &[ServicePort], new: &[ServicePort]) -> BTreeSet<Flow> {
    let udp = |ports: &[ServicePort]| -> BTreeMap<String, ServicePort> {
        ports
            .iter()
            .filter(|p| p.protocol == Protocol::Udp)
            .map(|p| (p.id.clone(), p.clone()))
            .collect()
    };
    let (old, new) = (udp(old), udp(new));
    let mut flows = BTreeSet::new();
    for (id, before) in &old {
        let after = new.get(id);
        let kept: BTreeSet<Ipv4Addr> = after
            .map(|p| p.endpoints.iter().map(|e| e.ip).collect())
            .unwrap_or_default();
        for endpoint in before.endpoints.iter().map(|e| e.ip) {
            if kept.contains(&endpoint) {
                continue;
            }
            for &address in before.cluster_ips.iter().chain(&before.external_ips) {
                flows.insert(Flow::ToAddressVia { address, endpoint });
            }
            if let Some(node_port) = before.node_port {
                flows.insert(Flow::ToNodePortVia {
                    node_port,
                    endpoint,
                });
            }
        }
    }
    for (id, after) in &new {
        let had_none = old.get(id).is_none_or(|p| p.endpoints.is_empty());
        if had_none && !after.endpoints.is_empty() {
            for &address in after.cluster_ips.iter().chain(&after.external_ips) {
                flows.insert(Flow::ToAddress { address });
            }
        }
    }
    flows
}

/// Deletes `flows`; problems are logged (once for a missing `conntrack`), never fatal.
pub fn clear(flows: &BTreeSet<Flow>) {
    for flow in flows {
        match Command::new("conntrack").args(flow.args()).output() {
            // Exit 1 with "0 flow entries have been deleted" is the common case.
            Ok(output)
                if output.status.success()
                    || String::from_utf8_lossy(&output.stderr).contains("flow entries") => {}
            Ok(output) => tracing::warn!(
                ?flow,
                error = %String::from_utf8_lossy(&output.stderr).trim(),
                "proxy: clearing stale UDP flows failed"
            ),
            Err(error) => {
                static MISSING: std::sync::Once = std::sync::Once::new();
                MISSING.call_once(|| {
                    tracing::warn!(%error, "proxy: cannot run conntrack; stale UDP flows will age out instead");
                });
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;

    fn dns(endpoints: &[[u8; 4]]) -> ServicePort {
        ServicePort {
            id: "kube-system/kube-dns/udp/dns".into(),
            protocol: Protocol::Udp,
            port: 53,
            cluster_ips: vec![Ipv4Addr::new(10, 43, 0, 10)],
            node_port: Some(30053),
            external_ips: vec![],
            local_only: false,
            affinity_seconds: None,
            endpoints: endpoints
                .iter()
                .map(|ip| Endpoint {
                    ip: (*ip).into(),
                    port: 53,
                    local: true,
                })
                .collect(),
        }
    }

    #[test]
    fn a_removed_udp_endpoint_clears_its_flows_and_a_first_endpoint_clears_the_address() {
        let gone = stale_udp_flows(
            &[dns(&[[10, 42, 0, 5], [10, 42, 0, 6]])],
            &[dns(&[[10, 42, 0, 6]])],
        );
        let endpoint = Ipv4Addr::new(10, 42, 0, 5);
        assert_eq!(
            gone.into_iter().collect::<Vec<_>>(),
            [
                Flow::ToAddressVia {
                    address: Ipv4Addr::new(10, 43, 0, 10),
                    endpoint
                },
                Flow::ToNodePortVia {
                    node_port: 30053,
                    endpoint
                },
            ]
        );
        let first = stale_udp_flows(&[dns(&[])], &[dns(&[[10, 42, 0, 6]])]);
        assert_eq!(
            first.into_iter().collect::<Vec<_>>(),
            [Flow::ToAddress {
                address: Ipv4Addr::new(10, 43, 0, 10)
            }]
        );
        // TCP needs nothing: its connections end on their own.
        let mut tcp = dns(&[[10, 42, 0, 5]]);
        tcp.protocol = Protocol::Tcp;
        assert!(stale_udp_flows(&[tcp], &[]).is_empty());
        assert!(stale_udp_flows(&[dns(&[[10, 42, 0, 6]])], &[dns(&[[10, 42, 0, 6]])]).is_empty());
    }
}
