//! Services and EndpointSlices → the zone's records, by the rules of upstream's "Kubernetes
//! DNS-Based Service Discovery" as CoreDNS's kubernetes plugin applies them.

use crate::zone::{ClusterDomain, TTL, Zone, dashed_address, soa};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, SRV};
use hickory_proto::rr::{Label, Name, RData, Record};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::HashMap;
use std::net::IpAddr;

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

impl Zone {
    /// The zone for these Services and EndpointSlices. `serial` goes into the SOA (CoreDNS
    /// uses the time of the last change). Objects with names that make no DNS name are
    /// skipped.
    pub fn build<'a>(
        domain: &ClusterDomain,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
        serial: u32,
    ) -> Zone {
        let mut slices_by_service: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
        for slice in slices {
            let meta = &slice.metadata;
            let service = meta.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL));
            if let (Some(namespace), Some(service)) = (meta.namespace.as_deref(), service) {
                slices_by_service
                    .entry((namespace, service.as_str()))
                    .or_default()
                    .push(slice);
            }
        }
        let mut builder = Builder::new(domain, serial);
        for service in services {
            let (Some(namespace), Some(name)) = (
                service.metadata.namespace.as_deref(),
                service.metadata.name.as_deref(),
            ) else {
                continue;
            };
            let slices = slices_by_service
                .get(&(namespace, name))
                .map(Vec::as_slice)
                .unwrap_or_default();
            builder.add_service(namespace, name, service, slices);
        }
        builder.finish()
    }
}

pub(crate) struct Builder {
    domain: ClusterDomain,
    svc: Name,
    names: HashMap<Name, Vec<Record>>,
    reverse: HashMap<IpAddr, Vec<Name>>,
    soa: Record,
}

impl Builder {
    pub(crate) fn new(domain: &ClusterDomain, serial: u32) -> Self {
        let apex = domain.name().clone();
        let soa = soa(&apex, serial);
        let svc = child(&apex, "svc").unwrap_or_else(|| apex.clone());
        let mut builder = Self {
            domain: domain.clone(),
            svc: svc.clone(),
            names: HashMap::new(),
            reverse: HashMap::new(),
            soa: soa.clone(),
        };
        builder.names.insert(apex.clone(), vec![soa]);
        builder.node(svc);
        if let Some(pod) = child(&apex, "pod") {
            builder.node(pod);
        }
        builder
    }

    pub(crate) fn finish(self) -> Zone {
        Zone {
            domain: self.domain,
            synced: true,
            names: self.names,
            reverse: self.reverse,
            soa: self.soa,
        }
    }

    fn add_service(
        &mut self,
        namespace: &str,
        name: &str,
        service: &Service,
        slices: &[&EndpointSlice],
    ) {
        let Some(fqdn) = child(&self.svc, namespace).and_then(|ns| child(&ns, name)) else {
            return;
        };
        self.node(fqdn.clone());
        let Some(spec) = &service.spec else { return };
        if spec.type_.as_deref() == Some("ExternalName") {
            self.add_external_name(&fqdn, spec.external_name.as_deref());
        } else if spec.cluster_ip.as_deref() == Some("None") {
            let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
            self.add_headless(&fqdn, slices, publish_not_ready);
        } else {
            self.add_cluster_ips(&fqdn, spec);
        }
    }

    /// A normal Service: its ClusterIPs, an SRV per named port pointing at the Service's
    /// name, and PTRs back from the ClusterIPs.
    fn add_cluster_ips(&mut self, fqdn: &Name, spec: &ServiceSpec) {
        let ips = match spec.cluster_ips.as_deref() {
            Some(ips) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
            _ => spec.cluster_ip.as_deref().into_iter().collect::<Vec<_>>(),
        };
        for ip in ips.into_iter().filter_map(|ip| ip.parse::<IpAddr>().ok()) {
            self.add_address(fqdn, ip);
            self.add_ptr(ip, fqdn);
        }
        for port in spec.ports.iter().flatten() {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let Some(srv_name) = srv_name(fqdn, port.name.as_deref(), protocol) else {
                continue;
            };
            let Ok(number) = u16::try_from(port.port) else {
                continue;
            };
            self.add_srvs(srv_name, vec![(fqdn.clone(), number)]);
        }
    }

    /// A headless Service: the addresses of its (ready) endpoints under its name and under a
    /// name per endpoint, an SRV per endpoint and named port, and PTRs back from the
    /// addresses to the endpoints' names.
    fn add_headless(&mut self, fqdn: &Name, slices: &[&EndpointSlice], publish_not_ready: bool) {
        let mut srvs: HashMap<Name, Vec<(Name, u16)>> = HashMap::new();
        for slice in slices {
            if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
                continue;
            }
            for endpoint in &slice.endpoints {
                let ready = endpoint.conditions.as_ref().and_then(|c| c.ready) != Some(false);
                if !ready && !publish_not_ready {
                    continue;
                }
                for ip in endpoint.addresses.iter().filter_map(|a| a.parse().ok()) {
                    let label = match endpoint.hostname.as_deref() {
                        Some(hostname) if !hostname.is_empty() => hostname.to_string(),
                        _ => dashed_address(ip),
                    };
                    let Some(endpoint_name) = child(fqdn, &label) else {
                        continue;
                    };
                    self.add_address(fqdn, ip);
                    self.add_address(&endpoint_name, ip);
                    self.add_ptr(ip, &endpoint_name);
                    for port in slice.ports.iter().flatten() {
                        let protocol = port.protocol.as_deref().unwrap_or("TCP");
                        let name = srv_name(fqdn, port.name.as_deref(), protocol);
                        let number = port.port.and_then(|p| u16::try_from(p).ok());
                        if let (Some(name), Some(number)) = (name, number) {
                            let targets = srvs.entry(name).or_default();
                            if !targets.contains(&(endpoint_name.clone(), number)) {
                                targets.push((endpoint_name.clone(), number));
                            }
                        }
                    }
                }
            }
        }
        for (name, targets) in srvs {
            self.add_srvs(name, targets);
        }
    }

    /// An ExternalName Service: a CNAME to the external name (none when that is an address,
    /// as CoreDNS).
    fn add_external_name(&mut self, fqdn: &Name, external: Option<&str>) {
        let Some(external) = external.filter(|e| e.parse::<IpAddr>().is_err()) else {
            return;
        };
        let Ok(mut target) = Name::from_ascii(external.strip_suffix('.').unwrap_or(external))
        else {
            return;
        };
        target.set_fqdn(true);
        let record = Record::from_rdata(fqdn.clone(), TTL, RData::CNAME(CNAME(target)));
        self.node(fqdn.clone()).push(record);
    }

    /// SRV records at `name`, priority 0 and CoreDNS's weights: 100 shared among the targets
    /// (`100 / n`, at least 1).
    fn add_srvs(&mut self, name: Name, targets: Vec<(Name, u16)>) {
        let count = u16::try_from(targets.len()).unwrap_or(u16::MAX).max(1);
        let weight = (100 / count).max(1);
        let node = self.node(name.clone());
        for (target, port) in targets {
            let srv = SRV::new(0, weight, port, target);
            node.push(Record::from_rdata(name.clone(), TTL, RData::SRV(srv)));
        }
    }

    fn add_address(&mut self, name: &Name, ip: IpAddr) {
        let data = match ip {
            IpAddr::V4(ip) => RData::A(A(ip)),
            IpAddr::V6(ip) => RData::AAAA(AAAA(ip)),
        };
        let node = self.node(name.clone());
        if !node.iter().any(|r| r.data == data) {
            node.push(Record::from_rdata(name.clone(), TTL, data));
        }
    }

    fn add_ptr(&mut self, ip: IpAddr, name: &Name) {
        let names = self.reverse.entry(ip).or_default();
        if !names.contains(name) {
            names.push(name.clone());
        }
    }

    /// The records of `name`, which exists from now on, and so do its ancestors up to the
    /// cluster domain (as empty non-terminals, which answer NODATA rather than NXDOMAIN).
    fn node(&mut self, name: Name) -> &mut Vec<Record> {
        if !self.names.contains_key(&name) {
            let mut parent = name.base_name();
            while parent.num_labels() > self.domain.name().num_labels()
                && !self.names.contains_key(&parent)
            {
                let next = parent.base_name();
                self.names.insert(parent, Vec::new());
                parent = next;
            }
        }
        self.names.entry(name).or_default()
    }
}

/// `_<port>._<protocol>.<service>`, for named ports only.
fn srv_name(service: &Name, port: Option<&str>, protocol: &str) -> Option<Name> {
    let port = port.filter(|p| !p.is_empty())?;
    let protocol = child(service, &format!("_{}", protocol.to_ascii_lowercase()))?;
    child(&protocol, &format!("_{port}"))
}

/// `label.parent`, lowercase; `None` when the label cannot be one (too long, empty).
fn child(parent: &Name, label: &str) -> Option<Name> {
    if label.is_empty() {
        return None;
    }
    let label = Label::from_raw_bytes(label.to_ascii_lowercase().as_bytes()).ok()?;
    parent.prepend_label(label).ok()
}
