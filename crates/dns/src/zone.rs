//! The cluster zone: every name the server answers for itself, held as an index from owner
//! name to records (built from Services and EndpointSlices in `build`), and [`Zone::answer`],
//! which turns one question into a response or a "not ours" without any I/O.

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The TTL of every record the zone serves (and the SOA's negative-caching TTL): CoreDNS's
/// default for the kubernetes plugin.
pub const TTL: u32 = 5;

/// How many CNAMEs inside the zone an answer follows before it stops (CoreDNS stops at 8).
const MAX_CNAME_CHAIN: usize = 8;

/// The cluster domain (`cluster.local`), kept lowercase and fully qualified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDomain(Name);

impl ClusterDomain {
    /// Parses a domain such as `cluster.local` or `cluster.local.`.
    pub fn parse(domain: &str) -> Result<Self, crate::Error> {
        let invalid = |reason: String| crate::Error::ClusterDomain {
            domain: domain.to_string(),
            reason,
        };
        let trimmed = domain.strip_suffix('.').unwrap_or(domain);
        if trimmed.is_empty() {
            return Err(invalid("the root cannot be the cluster domain".to_string()));
        }
        let mut name = Name::from_ascii(trimmed)
            .map_err(|e| invalid(e.to_string()))?
            .to_lowercase();
        name.set_fqdn(true);
        Ok(Self(name))
    }

    /// The domain as a fully qualified name.
    pub fn name(&self) -> &Name {
        &self.0
    }
}

/// What the server should do with a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The name is not in a zone this server owns (or is a reverse name of an address it does
    /// not know): ask the upstream resolvers.
    Forward,
    /// The server answers itself.
    Local(Response),
}

/// A response's code and sections, without the header and question (the server adds those).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub code: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// The target of an ExternalName's CNAME when it lies outside the cluster domain: the
    /// server may resolve it upstream for the question's type and add those answers.
    pub chase: Option<Name>,
}

impl Response {
    fn new(code: ResponseCode, authoritative: bool) -> Self {
        Self {
            code,
            authoritative,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            chase: None,
        }
    }
}

/// A snapshot of the cluster's names. Cheap to read concurrently; rebuilt whole on change.
#[derive(Debug, Clone)]
pub struct Zone {
    pub(crate) domain: ClusterDomain,
    /// False until the Services and EndpointSlices were listed once: until then names in the
    /// cluster domain get SERVFAIL rather than an NXDOMAIN that clients would cache.
    pub(crate) synced: bool,
    /// Every existing name in the zone (empty non-terminals too, with no records), lowercase.
    /// `Name`'s `Hash` and `Eq` ignore case, so a question's name is looked up as it is.
    pub(crate) names: HashMap<Name, Vec<Record>>,
    /// Address → the names whose PTR records point back from it.
    pub(crate) reverse: HashMap<IpAddr, Vec<Name>>,
    pub(crate) soa: Record,
}

impl Zone {
    /// A zone that has not seen the cluster yet: names in the cluster domain get SERVFAIL,
    /// everything else is forwarded.
    pub fn unsynced(domain: &ClusterDomain) -> Self {
        let mut zone = crate::build::Builder::new(domain, 0).finish();
        zone.synced = false;
        zone
    }

    /// The cluster domain this zone serves.
    pub fn domain(&self) -> &ClusterDomain {
        &self.domain
    }

    /// Answers one question.
    pub fn answer(&self, query: &Query) -> Answer {
        let name = query.name();
        if self.domain.0.zone_of(name) {
            return Answer::Local(self.answer_cluster_name(query));
        }
        if query.query_type() == RecordType::PTR
            && query.query_class() == DNSClass::IN
            && let Some(response) = self.answer_reverse(name)
        {
            return Answer::Local(response);
        }
        Answer::Forward
    }

    fn answer_cluster_name(&self, query: &Query) -> Response {
        if !self.synced {
            return Response::new(ResponseCode::ServFail, false);
        }
        if query.query_class() != DNSClass::IN {
            return Response::new(ResponseCode::Refused, false);
        }
        let (name, qtype) = (query.name(), query.query_type());
        let mut response = Response::new(ResponseCode::NoError, true);
        if let Some(records) = self.names.get(name) {
            self.collect(name, records, qtype, &mut response);
        } else if let Some(pod) = self.pod_name(name) {
            match (pod, qtype) {
                (PodName::Address(IpAddr::V4(ip)), RecordType::A | RecordType::ANY) => response
                    .answers
                    .push(Record::from_rdata(name.clone(), TTL, RData::A(A(ip)))),
                (PodName::Address(IpAddr::V6(ip)), RecordType::AAAA | RecordType::ANY) => response
                    .answers
                    .push(Record::from_rdata(name.clone(), TTL, RData::AAAA(AAAA(ip)))),
                (PodName::Address(_) | PodName::Namespace, _) => {}
                (PodName::Invalid, _) => response.code = ResponseCode::NXDomain,
            }
        } else {
            response.code = ResponseCode::NXDomain;
        }
        if response.answers.is_empty() {
            response.authorities.push(self.soa.clone());
        }
        response
    }

    /// Adds the records of `name` of type `qtype` to the answers (a CNAME for any type,
    /// followed inside the zone), and for SRV answers the addresses of their targets to the
    /// additional section.
    fn collect(&self, name: &Name, records: &[Record], qtype: RecordType, out: &mut Response) {
        let mut owner = name;
        let mut records = records;
        // The names followed so far, to stop at a loop (allocates only when following).
        let mut visited = Vec::new();
        for _ in 0..MAX_CNAME_CHAIN {
            let mut cname = None;
            for record in records {
                let rtype = record.record_type();
                if rtype == qtype || qtype == RecordType::ANY || rtype == RecordType::CNAME {
                    let mut record = record.clone();
                    // The question's spelling, as the client asked (0x20 case randomization).
                    record.name = owner.clone();
                    out.answers.push(record);
                }
                if let RData::CNAME(target) = &record.data {
                    cname = Some(&target.0);
                }
            }
            let Some(target) = cname else { break };
            if matches!(qtype, RecordType::CNAME | RecordType::ANY) {
                break;
            }
            visited.push(owner);
            if visited.contains(&target) {
                break;
            }
            if !self.domain.0.zone_of(target) {
                out.chase = Some(target.clone());
                break;
            }
            let Some(next) = self.names.get(target) else {
                break;
            };
            owner = target;
            records = next;
        }
        if qtype == RecordType::SRV {
            self.add_srv_addresses(out);
        }
    }

    fn add_srv_addresses(&self, out: &mut Response) {
        let mut seen = HashSet::new();
        for answer in &out.answers {
            let RData::SRV(srv) = &answer.data else {
                continue;
            };
            if !seen.insert(&srv.target) {
                continue;
            }
            let Some(records) = self.names.get(&srv.target) else {
                continue;
            };
            out.additionals.extend(
                records
                    .iter()
                    .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
                    .cloned(),
            );
        }
    }

    /// `<a-b-c-d>.<namespace>.pod.<domain>` (CoreDNS's "pods insecure": the address is read
    /// from the name, whatever pods exist) and `<namespace>.pod.<domain>`.
    fn pod_name(&self, name: &Name) -> Option<PodName> {
        let depth = usize::from(self.domain.0.num_labels());
        let labels = usize::from(name.num_labels());
        let label = |i: usize| name.iter().nth(i).unwrap_or_default();
        if labels == depth + 2 && label(1).eq_ignore_ascii_case(b"pod") {
            // Every namespace has pod names below it, so it exists (NODATA, never NXDOMAIN).
            return Some(PodName::Namespace);
        }
        if labels != depth + 3 || !label(2).eq_ignore_ascii_case(b"pod") {
            return None;
        }
        Some(
            parse_dashed_address(label(0))
                .map(PodName::Address)
                .unwrap_or(PodName::Invalid),
        )
    }

    fn answer_reverse(&self, name: &Name) -> Option<Response> {
        let net = name.parse_arpa_name().ok()?;
        if net.prefix_len() != net.max_prefix_len() {
            return None;
        }
        let targets = self.reverse.get(&net.addr())?;
        let mut response = Response::new(ResponseCode::NoError, true);
        response.answers = targets
            .iter()
            .map(|target| Record::from_rdata(name.clone(), TTL, RData::PTR(PTR(target.clone()))))
            .collect();
        Some(response)
    }
}

enum PodName {
    Address(IpAddr),
    Namespace,
    Invalid,
}

/// The label CoreDNS gives an address: `10-1-2-3`, or for IPv6 the colons dashed
/// (`fd00--1`).
pub(crate) fn dashed_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string().replace('.', "-"),
        IpAddr::V6(ip) => ip.to_string().replace(':', "-"),
    }
}

/// The inverse of [`dashed_address`], as CoreDNS reads pod names: three dashes and no
/// double dash make an IPv4 address, anything else is tried as IPv6.
fn parse_dashed_address(label: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(label).ok()?;
    let dashes = text.bytes().filter(|&b| b == b'-').count();
    if dashes == 3 && !text.contains("--") {
        text.replace('-', ".")
            .parse::<Ipv4Addr>()
            .ok()
            .map(IpAddr::V4)
    } else {
        text.replace('-', ":")
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6)
    }
}

/// The zone's SOA, as CoreDNS writes it: `ns.dns.<domain>`, `hostmaster.<domain>`.
pub(crate) fn soa(domain: &Name, serial: u32) -> Record {
    let child = |labels: &[&str]| {
        labels
            .iter()
            .rev()
            .try_fold(domain.clone(), |name, label| name.prepend_label(*label))
            .unwrap_or_else(|_| domain.clone())
    };
    let soa = SOA::new(
        child(&["ns", "dns"]),
        child(&["hostmaster"]),
        serial,
        7200,
        1800,
        86400,
        TTL,
    );
    Record::from_rdata(domain.clone(), TTL, RData::SOA(soa))
}
