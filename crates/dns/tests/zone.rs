//! The zone's answers, question by question, without sockets.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod common;

use common::{query, service, slice, zone};
use cox_dns::proto::op::ResponseCode;
use cox_dns::proto::rr::{Name, Record, RecordType};
use cox_dns::{Answer, ClusterDomain, Response, Zone};
use serde_json::json;

fn local(zone: &Zone, name: &str, qtype: RecordType) -> Response {
    match zone.answer(&query(name, qtype)) {
        Answer::Local(response) => response,
        Answer::Forward => panic!("{name} {qtype} was forwarded"),
    }
}

/// Records as zone-file lines, sorted (the zone promises no order).
fn lines(records: &[Record]) -> Vec<String> {
    let mut lines: Vec<String> = records.iter().map(ToString::to_string).collect();
    lines.sort();
    lines
}

const SOA: &str =
    "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 5";

#[test]
fn answers_each_record_kind() {
    let zone = zone();
    let cases: &[(&str, RecordType, &[&str])] = &[
        // A normal Service: its ClusterIPs, by family.
        (
            "web.default.svc.cluster.local.",
            RecordType::A,
            &["web.default.svc.cluster.local. 5 IN A 10.43.0.20"],
        ),
        (
            "web.default.svc.cluster.local.",
            RecordType::AAAA,
            &["web.default.svc.cluster.local. 5 IN AAAA fd00:43::20"],
        ),
        // SRV per named port, lowercased protocol, pointing at the Service.
        (
            "_http._tcp.web.default.svc.cluster.local.",
            RecordType::SRV,
            &[
                "_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local.",
            ],
        ),
        (
            "_dns._udp.web.default.svc.cluster.local.",
            RecordType::SRV,
            &[
                "_dns._udp.web.default.svc.cluster.local. 5 IN SRV 0 100 53 web.default.svc.cluster.local.",
            ],
        ),
        // Headless: ready endpoints only; a missing condition counts as ready.
        (
            "db.default.svc.cluster.local.",
            RecordType::A,
            &[
                "db.default.svc.cluster.local. 5 IN A 10.42.0.5",
                "db.default.svc.cluster.local. 5 IN A 10.42.0.6",
            ],
        ),
        (
            "db-all.default.svc.cluster.local.",
            RecordType::A,
            &[
                "db-all.default.svc.cluster.local. 5 IN A 10.42.0.5",
                "db-all.default.svc.cluster.local. 5 IN A 10.42.0.6",
                "db-all.default.svc.cluster.local. 5 IN A 10.42.0.7",
            ],
        ),
        // Headless SRV: one per endpoint, weight 100 / n, target hostname or dashed address.
        (
            "_pg._tcp.db.default.svc.cluster.local.",
            RecordType::SRV,
            &[
                "_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 10-42-0-6.db.default.svc.cluster.local.",
                "_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 db-0.db.default.svc.cluster.local.",
            ],
        ),
        // Endpoint names.
        (
            "db-0.db.default.svc.cluster.local.",
            RecordType::A,
            &["db-0.db.default.svc.cluster.local. 5 IN A 10.42.0.5"],
        ),
        (
            "10-42-0-6.db.default.svc.cluster.local.",
            RecordType::A,
            &["10-42-0-6.db.default.svc.cluster.local. 5 IN A 10.42.0.6"],
        ),
        (
            "10-42-0-7.db-all.default.svc.cluster.local.",
            RecordType::A,
            &["10-42-0-7.db-all.default.svc.cluster.local. 5 IN A 10.42.0.7"],
        ),
        // Pods: the address is read from the name.
        (
            "10-42-1-7.default.pod.cluster.local.",
            RecordType::A,
            &["10-42-1-7.default.pod.cluster.local. 5 IN A 10.42.1.7"],
        ),
        (
            "fd00-42--7.anywhere.pod.cluster.local.",
            RecordType::AAAA,
            &["fd00-42--7.anywhere.pod.cluster.local. 5 IN AAAA fd00:42::7"],
        ),
        // ExternalName: a CNAME, whatever the type asked.
        (
            "ext.default.svc.cluster.local.",
            RecordType::CNAME,
            &["ext.default.svc.cluster.local. 5 IN CNAME example.test."],
        ),
        // An ExternalName into the cluster domain is followed there.
        (
            "alias.default.svc.cluster.local.",
            RecordType::A,
            &[
                "alias.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
                "web.default.svc.cluster.local. 5 IN A 10.43.0.20",
            ],
        ),
        // PTR for ClusterIPs and headless endpoints.
        (
            "20.0.43.10.in-addr.arpa.",
            RecordType::PTR,
            &["20.0.43.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."],
        ),
        (
            "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa.",
            RecordType::PTR,
            &[
                "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa. 5 IN PTR web.default.svc.cluster.local.",
            ],
        ),
        (
            "5.0.42.10.in-addr.arpa.",
            RecordType::PTR,
            &[
                "5.0.42.10.in-addr.arpa. 5 IN PTR db-0.db-all.default.svc.cluster.local.",
                "5.0.42.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local.",
            ],
        ),
        (
            "1.1.43.10.in-addr.arpa.",
            RecordType::PTR,
            &["1.1.43.10.in-addr.arpa. 5 IN PTR api.other.svc.cluster.local."],
        ),
        // The apex's SOA.
        ("cluster.local.", RecordType::SOA, &[SOA]),
    ];
    for (name, qtype, expected) in cases {
        let response = local(&zone, name, *qtype);
        assert_eq!(response.code, ResponseCode::NoError, "{name} {qtype}");
        assert!(response.authoritative, "{name} {qtype}");
        assert_eq!(lines(&response.answers), *expected, "{name} {qtype}");
        assert!(response.authorities.is_empty(), "{name} {qtype}");
    }
}

#[test]
fn srv_answers_carry_the_targets_addresses() {
    let zone = zone();
    let response = local(
        &zone,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        lines(&response.additionals),
        [
            "web.default.svc.cluster.local. 5 IN A 10.43.0.20",
            "web.default.svc.cluster.local. 5 IN AAAA fd00:43::20",
        ]
    );
    let response = local(
        &zone,
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        lines(&response.additionals),
        [
            "10-42-0-6.db.default.svc.cluster.local. 5 IN A 10.42.0.6",
            "db-0.db.default.svc.cluster.local. 5 IN A 10.42.0.5",
        ]
    );
}

#[test]
fn missing_names_are_nxdomain_and_missing_types_nodata_with_the_soa() {
    let zone = zone();
    let cases: &[(&str, RecordType, ResponseCode)] = &[
        (
            "nope.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "web.nowhere.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "nowhere.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "anything.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "_x._tcp.web.default.svc.cluster.local.",
            RecordType::SRV,
            ResponseCode::NXDomain,
        ),
        (
            "_9000._tcp.web.default.svc.cluster.local.",
            RecordType::SRV,
            ResponseCode::NXDomain,
        ),
        (
            "a.b.web.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "db-9.db.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        // Not ready, not published.
        (
            "10-42-0-7.db.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        // A slice whose Service is gone.
        (
            "10-42-9-9.gone.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "not-an-ip.default.pod.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "1-2-3.default.pod.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "x.10-42-1-7.default.pod.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        // Existing names without the type asked.
        (
            "web.default.svc.cluster.local.",
            RecordType::TXT,
            ResponseCode::NoError,
        ),
        (
            "_http._tcp.web.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        (
            "_tcp.web.default.svc.cluster.local.",
            RecordType::SRV,
            ResponseCode::NoError,
        ),
        (
            "api.other.svc.cluster.local.",
            RecordType::AAAA,
            ResponseCode::NoError,
        ),
        (
            "pending.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        (
            "lonely.default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        (
            "default.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        (
            "other.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        ("svc.cluster.local.", RecordType::A, ResponseCode::NoError),
        ("pod.cluster.local.", RecordType::A, ResponseCode::NoError),
        (
            "anywhere.pod.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        (
            "10-42-1-7.default.pod.cluster.local.",
            RecordType::AAAA,
            ResponseCode::NoError,
        ),
        ("cluster.local.", RecordType::NS, ResponseCode::NoError),
        ("cluster.local.", RecordType::A, ResponseCode::NoError),
    ];
    for (name, qtype, code) in cases {
        let response = local(&zone, name, *qtype);
        assert_eq!(response.code, *code, "{name} {qtype}");
        assert!(
            response.answers.is_empty(),
            "{name} {qtype}: {:?}",
            response.answers
        );
        assert_eq!(lines(&response.authorities), [SOA], "{name} {qtype}");
        assert!(response.authoritative, "{name} {qtype}");
    }
}

#[test]
fn names_are_case_insensitive_and_answered_as_asked() {
    let zone = zone();
    let response = local(&zone, "WeB.DeFault.SVC.Cluster.LOCAL.", RecordType::A);
    assert_eq!(
        lines(&response.answers),
        ["WeB.DeFault.SVC.Cluster.LOCAL. 5 IN A 10.43.0.20"]
    );
    let response = local(
        &zone,
        "_HTTP._TCP.web.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(response.answers.len(), 1);
    let response = local(&zone, "10-42-1-7.DEFAULT.POD.cluster.local.", RecordType::A);
    assert_eq!(response.answers.len(), 1);
    let response = local(&zone, "20.0.43.10.IN-ADDR.ARPA.", RecordType::PTR);
    assert_eq!(response.answers.len(), 1);
}

#[test]
fn external_names_out_of_the_domain_are_left_to_chase() {
    let zone = zone();
    let response = local(&zone, "ext.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        lines(&response.answers),
        ["ext.default.svc.cluster.local. 5 IN CNAME example.test."]
    );
    assert_eq!(
        response.chase,
        Some(Name::from_ascii("example.test.").unwrap())
    );
    // Asked for the CNAME itself, there is nothing to chase.
    let response = local(&zone, "ext.default.svc.cluster.local.", RecordType::CNAME);
    assert_eq!(response.chase, None);
    // Followed inside the zone, nothing either.
    let response = local(&zone, "alias.default.svc.cluster.local.", RecordType::A);
    assert_eq!(response.chase, None);
}

#[test]
fn other_names_are_forwarded() {
    let zone = zone();
    for (name, qtype) in [
        ("example.test.", RecordType::A),
        ("cluster.local.example.test.", RecordType::A),
        ("local.", RecordType::SOA),
        // Reverse names of addresses the cluster does not know.
        ("1.2.0.192.in-addr.arpa.", RecordType::PTR),
        ("43.10.in-addr.arpa.", RecordType::PTR),
        // Reverse names of known addresses, but not PTR.
        ("20.0.43.10.in-addr.arpa.", RecordType::A),
    ] {
        assert_eq!(
            zone.answer(&query(name, qtype)),
            Answer::Forward,
            "{name} {qtype}"
        );
    }
}

#[test]
fn an_unsynced_zone_fails_cluster_names_and_forwards_the_rest() {
    let domain = ClusterDomain::parse("cluster.local").unwrap();
    let zone = Zone::unsynced(&domain);
    let response = local(&zone, "web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(response.code, ResponseCode::ServFail);
    assert!(response.answers.is_empty() && response.authorities.is_empty());
    assert_eq!(
        zone.answer(&query("example.test.", RecordType::A)),
        Answer::Forward
    );
}

#[test]
fn other_cluster_domains() {
    let domain = ClusterDomain::parse("K8s.Example.").unwrap();
    assert_eq!(domain.name().to_string(), "k8s.example.");
    let services = [service(
        "default",
        "web",
        json!({"clusterIP": "10.43.0.20"}),
    )];
    let zone = Zone::build(&domain, &services, [], 1);
    let response = local(&zone, "web.default.svc.k8s.example.", RecordType::A);
    assert_eq!(
        lines(&response.answers),
        ["web.default.svc.k8s.example. 5 IN A 10.43.0.20"]
    );
    assert_eq!(
        zone.answer(&query("web.default.svc.cluster.local.", RecordType::A)),
        Answer::Forward
    );
    for bad in ["", ".", "a..b", &"x".repeat(64)] {
        assert!(ClusterDomain::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn dual_stack_headless_endpoints_share_their_hostname() {
    let domain = ClusterDomain::parse("cluster.local").unwrap();
    let services = [service(
        "default",
        "db",
        json!({"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}),
    )];
    let port = json!([{"name": "pg", "port": 5432}]);
    let slices = [
        slice(
            "default",
            "db",
            "db-v4",
            "IPv4",
            json!([{"addresses": ["10.42.0.5"], "hostname": "db-0"}]),
            port.clone(),
        ),
        slice(
            "default",
            "db",
            "db-v6",
            "IPv6",
            json!([{"addresses": ["fd00:42::5"], "hostname": "db-0"}]),
            port,
        ),
    ];
    let zone = Zone::build(&domain, &services, &slices, 1);
    let a = local(&zone, "db-0.db.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        lines(&a.answers),
        ["db-0.db.default.svc.cluster.local. 5 IN A 10.42.0.5"]
    );
    let aaaa = local(
        &zone,
        "db-0.db.default.svc.cluster.local.",
        RecordType::AAAA,
    );
    assert_eq!(
        lines(&aaaa.answers),
        ["db-0.db.default.svc.cluster.local. 5 IN AAAA fd00:42::5"]
    );
    // One target and port: one SRV, with both families in the additional section.
    let srv = local(
        &zone,
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        lines(&srv.answers),
        [
            "_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 5432 db-0.db.default.svc.cluster.local."
        ]
    );
    assert_eq!(srv.additionals.len(), 2);
}

#[test]
fn external_name_loops_end() {
    let domain = ClusterDomain::parse("cluster.local").unwrap();
    let services = [
        service(
            "default",
            "a",
            json!({"type": "ExternalName", "externalName": "b.default.svc.cluster.local"}),
        ),
        service(
            "default",
            "b",
            json!({"type": "ExternalName", "externalName": "a.default.svc.cluster.local"}),
        ),
    ];
    let zone = Zone::build(&domain, &services, [], 1);
    let response = local(&zone, "a.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        lines(&response.answers),
        [
            "a.default.svc.cluster.local. 5 IN CNAME b.default.svc.cluster.local.",
            "b.default.svc.cluster.local. 5 IN CNAME a.default.svc.cluster.local.",
        ]
    );
    assert_eq!(response.chase, None);
}
