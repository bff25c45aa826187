//! What a Service write does beyond the generic rules: defaults and validation
//! (`cox_api::service`), cluster IP and node port allocation, the values an update may not
//! change, and giving addresses back when a Service goes away.

use std::net::Ipv4Addr;
use std::sync::Arc;

use cox_api::service;
use cox_api::status::ApiError;
use cox_api::validation::FieldError;
use cox_store::Store;
use serde_json::{Value, json};

use crate::allocator::{AllocError, Allocator};
use crate::objects::str_at;

/// Values a write took from the ranges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Taken {
    ips: Vec<u32>,
    ports: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Services {
    ips: Allocator,
    ports: Allocator,
    node_ports: (u16, u16),
}

fn invalid(name: &str, errors: &[FieldError]) -> ApiError {
    ApiError::invalid("", "Service", name, errors)
}

fn node_port_values(svc: &Value) -> Vec<u32> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter(|&p| p != 0)
                .filter_map(|p| u32::try_from(p).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn cluster_ip(svc: &Value) -> Option<Ipv4Addr> {
    str_at(svc, "/spec/clusterIP").parse().ok()
}

impl Services {
    pub fn new(
        store: Arc<dyn Store>,
        network: Ipv4Addr,
        prefix: u8,
        node_ports: (u16, u16),
    ) -> Self {
        Self {
            ips: Allocator::service_ips(store.clone(), network, prefix),
            ports: Allocator::node_ports(store, node_ports.0, node_ports.1),
            node_ports,
        }
    }

    /// What a stored Service holds of the ranges.
    pub fn taken_by(svc: &Value) -> Taken {
        Taken {
            ips: cluster_ip(svc).map(u32::from).into_iter().collect(),
            ports: node_port_values(svc),
        }
    }

    /// Gives values back (best effort: a failure leaves them taken until the next start's
    /// rebuild, never hands one out twice).
    pub async fn release(&self, taken: &Taken) {
        for ip in &taken.ips {
            if let Err(err) = self.ips.release(*ip).await {
                tracing::warn!(error = %err, ip = %Ipv4Addr::from(*ip), "releasing a cluster IP");
            }
        }
        for port in &taken.ports {
            if let Err(err) = self.ports.release(*port).await {
                tracing::warn!(error = %err, port, "releasing a node port");
            }
        }
    }

    /// Marks exactly what `services` hold as taken (at start).
    pub async fn rebuild(&self, services: &[Value]) -> Result<(), ApiError> {
        let mut ips = Vec::new();
        let mut ports = Vec::new();
        for svc in services {
            let taken = Self::taken_by(svc);
            ips.extend(taken.ips);
            ports.extend(taken.ports);
        }
        let internal =
            |e: AllocError| ApiError::internal(format!("rebuilding the service ranges: {e}"));
        self.ips.rebuild(&ips).await.map_err(internal)?;
        self.ports.rebuild(&ports).await.map_err(internal)
    }

    async fn take_ip(
        &self,
        name: &str,
        svc: &mut Value,
        taken: &mut Taken,
    ) -> Result<(), ApiError> {
        let requested = str_at(svc, "/spec/clusterIP").to_owned();
        let ip = if requested.is_empty() {
            let ip = self
                .ips
                .allocate_next()
                .await
                .map_err(|e| ApiError::internal(format!("allocating a cluster IP: {e}")))?;
            Ipv4Addr::from(ip)
        } else {
            let field = "spec.clusterIPs";
            let shown = format!("[]string{{\"{requested}\"}}");
            let ip: Ipv4Addr = requested.parse().map_err(|_| {
                invalid(
                    name,
                    &[FieldError::invalid_raw(
                        field,
                        &shown,
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    )],
                )
            })?;
            match self.ips.allocate(u32::from(ip)).await {
                Ok(()) => ip,
                Err(err @ (AllocError::Taken { .. } | AllocError::OutOfRange { .. })) => {
                    let detail = format!("failed to allocate IP {requested}: {err}");
                    return Err(invalid(
                        name,
                        &[FieldError::invalid_raw(field, &shown, &detail)],
                    ));
                }
                Err(err) => return Err(ApiError::internal(err.to_string())),
            }
        };
        taken.ips.push(u32::from(ip));
        svc["spec"]["clusterIP"] = json!(ip.to_string());
        svc["spec"]["clusterIPs"] = json!([ip.to_string()]);
        Ok(())
    }

    /// Allocates every node port `svc` asks for or lacks, skipping those in `keep`.
    async fn take_ports(
        &self,
        name: &str,
        svc: &mut Value,
        keep: &[u32],
        taken: &mut Taken,
    ) -> Result<(), ApiError> {
        let count = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for i in 0..count {
            let port = &mut svc["spec"]["ports"][i];
            let requested = port
                .get("nodePort")
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(0);
            if requested != 0 && keep.contains(&requested) {
                continue;
            }
            let number = if requested == 0 {
                self.ports
                    .allocate_next()
                    .await
                    .map_err(|e| ApiError::internal(format!("allocating a node port: {e}")))?
            } else {
                match self.ports.allocate(requested).await {
                    Ok(()) => requested,
                    Err(err @ (AllocError::Taken { .. } | AllocError::OutOfRange { .. })) => {
                        let field = format!("spec.ports[{i}].nodePort");
                        return Err(invalid(
                            name,
                            &[FieldError::invalid_raw(&field, requested, &err.to_string())],
                        ));
                    }
                    Err(err) => return Err(ApiError::internal(err.to_string())),
                }
            };
            taken.ports.push(number);
            port["nodePort"] = json!(number);
        }
        Ok(())
    }

    /// Defaults, validates and allocates for a new Service. Returns what it took, to give back
    /// if the Service is not written.
    pub async fn prepare_create(&self, svc: &mut Value) -> Result<Taken, ApiError> {
        let name = str_at(svc, "/metadata/name").to_owned();
        service::default_service(svc);
        let errors = service::validate_service(svc, self.node_ports);
        if !errors.is_empty() {
            return Err(invalid(&name, &errors));
        }
        let mut taken = Taken::default();
        let result = async {
            if service::wants_cluster_ip(svc) {
                self.take_ip(&name, svc, &mut taken).await?;
            } else if service::service_type(svc) != "ExternalName" {
                svc["spec"]["clusterIPs"] = json!(["None"]);
            }
            if service::wants_node_ports(svc) {
                self.take_ports(&name, svc, &[], &mut taken).await?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(taken),
            Err(err) => {
                self.release(&taken).await;
                Err(err)
            }
        }
    }

    /// Keeps allocated values across an update (a PUT or patch without them keeps them; one
    /// that changes the cluster IP is refused), validates, and allocates what the update adds.
    /// Returns (taken now: give back if the write fails, to give back once the write is done).
    pub async fn prepare_update(
        &self,
        old: &Value,
        new: &mut Value,
    ) -> Result<(Taken, Taken), ApiError> {
        let name = str_at(old, "/metadata/name").to_owned();
        service::default_service(new);
        let old_ip = str_at(old, "/spec/clusterIP").to_owned();
        let new_ip = str_at(new, "/spec/clusterIP").to_owned();
        let keeps_ip = service::wants_cluster_ip(new) || (new_ip.is_empty() && old_ip == "None");
        if keeps_ip && !old_ip.is_empty() {
            if new_ip.is_empty() {
                new["spec"]["clusterIP"] = json!(old_ip);
                new["spec"]["clusterIPs"] = old
                    .pointer("/spec/clusterIPs")
                    .cloned()
                    .unwrap_or_else(|| json!([old_ip]));
            } else if new_ip != old_ip {
                let shown = format!("[]string{{\"{new_ip}\"}}");
                return Err(invalid(
                    &name,
                    &[FieldError::invalid_raw(
                        "spec.clusterIPs[0]",
                        &shown,
                        "may not change once set",
                    )],
                ));
            }
        }
        // Node ports the update leaves out are kept, matched by port name, else number.
        if service::wants_node_ports(new) {
            let old_ports = old
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for port in ports.iter_mut() {
                    if port.get("nodePort").and_then(Value::as_u64).unwrap_or(0) != 0 {
                        continue;
                    }
                    let same = old_ports.iter().find(|o| {
                        let name = port.get("name").and_then(Value::as_str).unwrap_or("");
                        if name.is_empty() {
                            o.get("port") == port.get("port")
                                && o.get("protocol") == port.get("protocol")
                        } else {
                            o.get("name").and_then(Value::as_str) == Some(name)
                        }
                    });
                    if let Some(node_port) = same
                        .and_then(|o| o.get("nodePort"))
                        .filter(|p| p.as_u64().unwrap_or(0) != 0)
                    {
                        port["nodePort"] = node_port.clone();
                    }
                }
            }
        }
        let errors = service::validate_service(new, self.node_ports);
        if !errors.is_empty() {
            return Err(invalid(&name, &errors));
        }
        let before = Self::taken_by(old);
        let mut taken = Taken::default();
        let result = async {
            if service::wants_cluster_ip(new) && str_at(new, "/spec/clusterIP").is_empty() {
                self.take_ip(&name, new, &mut taken).await?;
            }
            if service::wants_node_ports(new) {
                self.take_ports(&name, new, &before.ports, &mut taken)
                    .await?;
            } else if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut)
            {
                for port in ports {
                    if let Some(map) = port.as_object_mut() {
                        map.remove("nodePort");
                    }
                }
            }
            if service::service_type(new) == "ExternalName"
                && let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
            {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            Ok(())
        }
        .await;
        if let Err(err) = result {
            self.release(&taken).await;
            return Err(err);
        }
        let after = Self::taken_by(new);
        let freed = Taken {
            ips: before
                .ips
                .iter()
                .copied()
                .filter(|ip| !after.ips.contains(ip))
                .collect(),
            ports: before
                .ports
                .iter()
                .copied()
                .filter(|p| !after.ports.contains(p))
                .collect(),
        };
        Ok((taken, freed))
    }
}
