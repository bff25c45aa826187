//! The rules as the kernel takes them: each test makes its own network namespace, applies
//! rulesets there from a thread that entered it (so `nft` runs inside), and reads back
//! what the kernel holds. Traffic through the rules is tested end to end with real pods in
//! the `cox` crate's tests.

use std::net::Ipv4Addr;
use std::process::Command;

use cox_proxy::conntrack;
use cox_proxy::model::{Endpoint, Protocol, ServicePort};
use cox_proxy::nft::Table;
use cox_proxy::rules::{self, Networks};

/// A network namespace for one test, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("cox-proxy-{tag}-{}", std::process::id());
        let status = Command::new("ip").args(["netns", "add", &name]).status();
        assert!(status.is_ok_and(|s| s.success()), "ip netns add {name}");
        Self(name)
    }

    /// Runs `f` on a thread inside the namespace (processes it starts are inside too).
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = std::fs::File::open(&path).expect("open the namespace");
                    rustix::thread::move_into_link_name_space(
                        std::os::fd::AsFd::as_fd(&file),
                        Some(rustix::thread::LinkNameSpaceType::Network),
                    )
                    .expect("setns");
                    f()
                })
                .join()
                .expect("the namespace thread panicked")
        })
    }

    fn ip(&self, args: &[&str]) {
        let status = Command::new("ip").args(["-n", &self.0]).args(args).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "ip -n {} {args:?}",
            self.0
        );
    }

    /// A UDP server in the namespace on `address` answering every datagram with `answer`,
    /// for ten seconds of silence at most.
    fn udp_server(&self, address: &'static str, answer: &'static str) {
        let path = format!("/run/netns/{}", self.0);
        let (ready, bound) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open the namespace");
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&file),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
            let socket = std::net::UdpSocket::bind(address).expect("bind");
            socket
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .expect("timeout");
            ready.send(()).expect("tell");
            let mut buffer = [0u8; 64];
            while let Ok((_, peer)) = socket.recv_from(&mut buffer) {
                let _ = socket.send_to(answer.as_bytes(), peer);
            }
        });
        bound.recv().expect("the server started");
    }

    fn nft(&self, args: &[&str]) -> String {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.0, "nft"])
            .args(args)
            .output()
            .expect("run nft");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn networks() -> Networks {
    Networks {
        cluster_cidr: "10.42.0.0/16".into(),
        node_pod_cidr: "10.42.0.0/24".into(),
        service_cidr: "10.43.0.0/16".into(),
    }
}

fn port(name: &str, ip: [u8; 4], endpoints: &[[u8; 4]]) -> ServicePort {
    ServicePort {
        id: format!("default/{name}/tcp/http"),
        protocol: Protocol::Tcp,
        port: 80,
        cluster_ips: vec![Ipv4Addr::from(ip)],
        node_port: Some(31000),
        external_ips: vec![Ipv4Addr::new(192, 0, 2, 10)],
        local_only: false,
        affinity_seconds: None,
        endpoints: endpoints
            .iter()
            .map(|ip| Endpoint {
                ip: (*ip).into(),
                port: 8080,
                local: true,
            })
            .collect(),
    }
}

#[test]
fn full_and_incremental_syncs_are_accepted_and_leave_exactly_the_wanted_rules() {
    let netns = Netns::new("sync");
    let mut table = Table::new(networks());

    let mut sticky = port("sticky", [10, 43, 0, 8], &[[10, 42, 0, 5]]);
    sticky.affinity_seconds = Some(30);
    sticky.node_port = Some(31001);
    let mut local = port("local", [10, 43, 0, 9], &[[10, 42, 0, 6]]);
    local.node_port = Some(31002);
    local.local_only = true;
    let mut udp = port("dns", [10, 43, 0, 10], &[[10, 42, 0, 7]]);
    udp.protocol = Protocol::Udp;
    udp.id = "default/dns/udp/dns".into();
    udp.node_port = None;
    let first = vec![
        port("web", [10, 43, 0, 7], &[[10, 42, 0, 3], [10, 42, 0, 4]]),
        sticky,
        local,
        udp,
    ];
    let changed = netns.run(|| table.sync(rules::render(&first, &networks())));
    assert!(changed.expect("the first sync"));
    let listed = netns.nft(&["list", "table", "ip", "cox-proxy"]);
    assert!(
        listed.contains("10.43.0.7 . tcp . 80 : goto svc-default/web/tcp/http"),
        "{listed}"
    );
    assert!(listed.contains("dnat to 10.42.0.4:8080"), "{listed}");
    assert!(
        listed.contains("affinity-default/sticky/tcp/http__10.42.0.5/8080"),
        "{listed}"
    );

    // Nothing changed: nothing is sent.
    let again = netns.run(|| table.sync(rules::render(&first, &networks())));
    assert!(!again.expect("an idle sync"));

    // One endpoint gone, one Service without endpoints, the sticky one removed.
    let second = vec![
        port("web", [10, 43, 0, 7], &[[10, 42, 0, 3]]),
        port("empty", [10, 43, 0, 11], &[]),
    ];
    let changed = netns.run(|| table.sync(rules::render(&second, &networks())));
    assert!(changed.expect("the incremental sync"));
    let listed = netns.nft(&["list", "table", "ip", "cox-proxy"]);
    assert!(!listed.contains("10.42.0.4"), "{listed}");
    assert!(!listed.contains("sticky"), "{listed}");
    assert!(
        listed.contains("10.43.0.11 . tcp . 80 : goto reject-chain"),
        "{listed}"
    );

    // A fresh table object (a restarted proxy) replaces the table wholesale.
    let mut restarted = Table::new(networks());
    let changed = netns.run(|| restarted.sync(rules::render(&[], &networks())));
    assert!(changed.expect("the sync after a restart"));
    let listed = netns.nft(&["list", "table", "ip", "cox-proxy"]);
    assert!(!listed.contains("svc-"), "{listed}");
}

#[test]
fn a_ruleset_nft_refuses_is_an_error_and_the_next_sync_starts_over() {
    let netns = Netns::new("refused");
    let mut table = Table::new(networks());
    let mut bad = rules::render(&[], &networks());
    bad.chains
        .insert("svc-bad".into(), vec!["this is not a rule".into()]);
    let result = netns.run(|| table.sync(bad));
    assert!(result.is_err());
    let good = netns.run(|| table.sync(rules::render(&[], &networks())));
    assert!(good.expect("the sync after a failure"));
}

#[test]
fn a_udp_client_moves_to_the_new_endpoint_once_its_old_one_is_gone() {
    let node = Netns::new("udp");
    let pod = Netns::new("udp-pod");
    node.ip(&["link", "set", "lo", "up"]);
    node.ip(&[
        "link", "add", "v0", "type", "veth", "peer", "name", "eth0", "netns", &pod.0,
    ]);
    node.ip(&["addr", "add", "10.42.0.1/24", "dev", "v0"]);
    node.ip(&["link", "set", "v0", "up"]);
    node.ip(&["route", "add", "default", "via", "10.42.0.2"]);
    pod.ip(&["addr", "add", "10.42.0.2/24", "dev", "eth0"]);
    pod.ip(&["addr", "add", "10.42.0.3/24", "dev", "eth0"]);
    pod.ip(&["link", "set", "eth0", "up"]);
    pod.udp_server("10.42.0.2:5353", "old");
    pod.udp_server("10.42.0.3:5353", "new");
    let dns = |endpoint: [u8; 4]| ServicePort {
        id: "kube-system/dns/udp/dns".into(),
        protocol: Protocol::Udp,
        port: 53,
        cluster_ips: vec![Ipv4Addr::new(10, 43, 0, 53)],
        node_port: None,
        external_ips: vec![],
        local_only: false,
        affinity_seconds: None,
        endpoints: vec![Endpoint {
            ip: endpoint.into(),
            port: 5353,
            local: true,
        }],
    };
    let answers = node.run(move || {
        let mut table = Table::new(networks());
        let before = vec![dns([10, 42, 0, 2])];
        table
            .sync(rules::render(&before, &networks()))
            .expect("sync");
        // One client socket throughout: the same flow, as a resolver's would be.
        let client = std::net::UdpSocket::bind("10.42.0.1:40053").expect("bind");
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        client.connect("10.43.0.53:53").expect("connect");
        let ask = || {
            client.send(b"?").expect("send");
            let mut buffer = [0u8; 16];
            let n = client.recv(&mut buffer).unwrap_or(0);
            String::from_utf8_lossy(&buffer[..n]).into_owned()
        };
        let first = ask();
        let after = vec![dns([10, 42, 0, 3])];
        let stale = conntrack::stale_udp_flows(&before, &after);
        table
            .sync(rules::render(&after, &networks()))
            .expect("sync");
        conntrack::clear(&stale);
        (first, ask())
    });
    assert_eq!(answers, ("old".to_owned(), "new".to_owned()));
}
