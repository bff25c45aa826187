//! Upstream's `NodePorts`: a pod's host ports must be free on the node. Evicting the pods
//! that hold them could free them, so the rejection is resolvable.

use super::{Plugin, Rejection, Verdict};
use crate::cache::{HostPort, NodeView};

pub const PORTS_IN_USE: &str = "node(s) didn't have free ports for the requested pod ports";

pub fn filter(wanted: &[HostPort], node: &NodeView<'_>) -> Verdict {
    if wanted.iter().any(|port| node.pods.port_conflicts(port)) {
        return Err(Rejection::resolvable(
            Plugin::NodePorts,
            vec![PORTS_IN_USE.to_owned()],
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::tests::{node_with, pod, with_host_port};
    use crate::cache::{Cache, host_ports};

    #[test]
    fn a_host_port_in_use_on_the_node_rejects_it() {
        let mut cache = Cache::default();
        cache.set_node(Arc::new(node_with("n1", &[])));
        cache.add_pod(
            Arc::new(with_host_port(pod("web", &[]), 80, "TCP", "")),
            "n1",
        );
        let nodes = cache.nodes();
        let same = host_ports(&with_host_port(pod("b", &[]), 80, "", "10.0.0.1"));
        let other = host_ports(&with_host_port(pod("c", &[]), 81, "", ""));
        let udp = host_ports(&with_host_port(pod("d", &[]), 80, "UDP", ""));
        assert_eq!(
            filter(&same, &nodes[0]),
            Err(Rejection::resolvable(
                Plugin::NodePorts,
                vec![PORTS_IN_USE.into()]
            ))
        );
        assert_eq!(filter(&other, &nodes[0]), Ok(()));
        assert_eq!(filter(&udp, &nodes[0]), Ok(()));
        assert_eq!(filter(&[], &nodes[0]), Ok(()));
    }
}
