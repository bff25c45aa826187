//! Validation of the less common kinds: what upstream refuses in CronJobs, autoscalers,
//! disruption budgets, ingresses, network policies, priority and storage classes, leases,
//! volumes and claims, quotas and limit ranges, typed Secrets, RBAC objects and
//! EndpointSlices, with upstream's field paths and messages.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use super::{PROTOCOLS, pod_spec, port_in_range};
use crate::labels::Selector;
use crate::validation::{self, FieldError};

type Errors = Vec<FieldError>;

fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

fn int(object: &Value, pointer: &str) -> Option<i64> {
    object.pointer(pointer).and_then(Value::as_i64)
}

fn require_text(errors: &mut Errors, object: &Value, pointer: &str, field: &str) {
    if text(object, pointer).is_none_or(str::is_empty) {
        errors.push(FieldError::required(field, ""));
    }
}

fn one_of(errors: &mut Errors, object: &Value, pointer: &str, field: &str, allowed: &[&str]) {
    if let Some(value) = text(object, pointer)
        && !allowed.contains(&value)
    {
        errors.push(FieldError::not_supported(field, value, allowed));
    }
}

fn at_least(errors: &mut Errors, object: &Value, pointer: &str, field: &str, minimum: i64) {
    if let Some(value) = int(object, pointer)
        && value < minimum
    {
        let detail = match minimum {
            0 => "must be greater than or equal to 0".to_owned(),
            1 => "must be greater than 0".to_owned(),
            n => format!("must be greater than or equal to {n}"),
        };
        errors.push(FieldError::invalid_raw(field, value, &detail));
    }
}

fn selector(errors: &mut Errors, object: &Value, pointer: &str, field: &str) {
    if let Some(selector) = object.pointer(pointer).filter(|s| !s.is_null())
        && let Err(problem) = Selector::from_label_selector(selector)
    {
        errors.push(FieldError::invalid(field, &selector.to_string(), &problem));
    }
}

/// A quantity that must parse and not be negative.
fn quantity(errors: &mut Errors, value: &Value, field: &str) {
    let shown = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match crate::quantity::value(&Quantity(shown.clone())) {
        None => errors.push(FieldError::invalid(
            field,
            &shown,
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        )),
        Some(n) if n < 0 => errors.push(FieldError::invalid(
            field,
            &shown,
            "must be greater than or equal to 0",
        )),
        Some(_) => {}
    }
}

fn quantities(errors: &mut Errors, object: &Value, pointer: &str, field: &str) {
    if let Some(map) = object.pointer(pointer).and_then(Value::as_object) {
        for (name, value) in map {
            quantity(errors, value, &format!("{field}[{name}]"));
        }
    }
}

fn items<'a>(object: &'a Value, pointer: &str) -> &'a [Value] {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Problems with a less common kind; `None` for the kinds this module does not cover.
pub(super) fn validate(group: &str, kind: &str, object: &Value) -> Option<Errors> {
    let mut errors = Vec::new();
    match (group, kind) {
        ("batch", "CronJob") => cron_job(&mut errors, object),
        ("autoscaling", "HorizontalPodAutoscaler") => autoscaler(&mut errors, object),
        ("policy", "PodDisruptionBudget") => disruption_budget(&mut errors, object),
        ("networking.k8s.io", "Ingress") => ingress(&mut errors, object),
        ("networking.k8s.io", "IngressClass") => {
            require_text(&mut errors, object, "/spec/controller", "spec.controller");
        }
        ("networking.k8s.io", "NetworkPolicy") => network_policy(&mut errors, object),
        ("scheduling.k8s.io", "PriorityClass") => priority_class(&mut errors, object),
        ("storage.k8s.io", "StorageClass") => {
            require_text(&mut errors, object, "/provisioner", "provisioner");
            one_of(
                &mut errors,
                object,
                "/reclaimPolicy",
                "reclaimPolicy",
                &["Delete", "Retain"],
            );
            one_of(
                &mut errors,
                object,
                "/volumeBindingMode",
                "volumeBindingMode",
                &["Immediate", "WaitForFirstConsumer"],
            );
        }
        ("coordination.k8s.io", "Lease") => {
            at_least(
                &mut errors,
                object,
                "/spec/leaseDurationSeconds",
                "spec.leaseDurationSeconds",
                1,
            );
            at_least(
                &mut errors,
                object,
                "/spec/leaseTransitions",
                "spec.leaseTransitions",
                0,
            );
        }
        ("", "PersistentVolumeClaim") => claim(&mut errors, object),
        ("", "PersistentVolume") => volume(&mut errors, object),
        ("", "ResourceQuota") => {
            quantities(&mut errors, object, "/spec/hard", "spec.hard");
        }
        ("", "LimitRange") => limit_range(&mut errors, object),
        ("", "Secret") => secret(&mut errors, object),
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => {
            rules(&mut errors, object, kind == "Role");
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            binding(&mut errors, object, kind == "ClusterRoleBinding");
        }
        ("discovery.k8s.io", "EndpointSlice") => endpoint_slice(&mut errors, object),
        _ => return None,
    }
    Some(errors)
}

fn cron_job(errors: &mut Errors, object: &Value) {
    match text(object, "/spec/schedule") {
        None | Some("") => errors.push(FieldError::required("spec.schedule", "")),
        Some(schedule) => {
            if let Err(problem) = cron_schedule(schedule) {
                errors.push(FieldError::invalid("spec.schedule", schedule, &problem));
            }
        }
    }
    one_of(
        errors,
        object,
        "/spec/concurrencyPolicy",
        "spec.concurrencyPolicy",
        &["Allow", "Forbid", "Replace"],
    );
    for (pointer, field) in [
        (
            "/spec/startingDeadlineSeconds",
            "spec.startingDeadlineSeconds",
        ),
        (
            "/spec/successfulJobsHistoryLimit",
            "spec.successfulJobsHistoryLimit",
        ),
        (
            "/spec/failedJobsHistoryLimit",
            "spec.failedJobsHistoryLimit",
        ),
    ] {
        at_least(errors, object, pointer, field, 0);
    }
    match object.pointer("/spec/jobTemplate/spec/template/spec") {
        Some(spec) => {
            let path = "spec.jobTemplate.spec.template.spec";
            errors.extend(pod_spec(spec, path));
            if let Some(policy) = spec.get("restartPolicy").and_then(Value::as_str)
                && !["OnFailure", "Never"].contains(&policy)
            {
                errors.push(FieldError::not_supported(
                    &format!("{path}.restartPolicy"),
                    policy,
                    &["OnFailure", "Never"],
                ));
            }
        }
        None => errors.push(FieldError::required("spec.jobTemplate.spec.template", "")),
    }
}

/// A standard cron schedule: five fields (minute, hour, day of month, month, day of week) of
/// numbers, names, ranges, steps and lists, or one of the `@` descriptors; an optional
/// `TZ=`/`CRON_TZ=` prefix.
fn cron_schedule(schedule: &str) -> Result<(), String> {
    let mut spec = schedule.trim();
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        spec = spec
            .split_once(' ')
            .map(|(_, rest)| rest.trim())
            .unwrap_or("");
    }
    if spec.starts_with('@') {
        return match spec {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(()),
            _ if spec.starts_with("@every ") => Ok(()),
            _ => Err(format!("unrecognized descriptor: {spec}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: {spec}",
            fields.len()
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(i64, i64, &[&str], i64); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (field, (min, max, names, first)) in fields.iter().zip(bounds) {
        for part in field.split(',') {
            cron_part(part, min, max, names, first)?;
        }
    }
    Ok(())
}

fn cron_part(part: &str, min: i64, max: i64, names: &[&str], first: i64) -> Result<(), String> {
    let number = |text: &str| -> Result<i64, String> {
        if let Some(index) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(index as i64 + first);
        }
        text.parse::<i64>().map_err(|_| {
            format!(
                "failed to parse int from {text}: strconv.Atoi: parsing {text:?}: invalid syntax"
            )
        })
    };
    let (range, step) = match part.split_once('/') {
        Some((range, step)) => (range, Some(number(step)?)),
        None => (part, None),
    };
    if step.is_some_and(|s| s <= 0) {
        return Err(format!("step of range should be a positive number: {part}"));
    }
    let (start, end) = match range {
        "*" | "?" => (min, max),
        _ => match range.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let n = number(range)?;
                (n, n)
            }
        },
    };
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {part}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {part}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {part}"
        ));
    }
    Ok(())
}

fn autoscaler(errors: &mut Errors, object: &Value) {
    require_text(
        errors,
        object,
        "/spec/scaleTargetRef/kind",
        "spec.scaleTargetRef.kind",
    );
    require_text(
        errors,
        object,
        "/spec/scaleTargetRef/name",
        "spec.scaleTargetRef.name",
    );
    let min = int(object, "/spec/minReplicas").unwrap_or(1);
    at_least(errors, object, "/spec/minReplicas", "spec.minReplicas", 1);
    match int(object, "/spec/maxReplicas") {
        None => errors.push(FieldError::required("spec.maxReplicas", "")),
        Some(max) if max < min => errors.push(FieldError::invalid_raw(
            "spec.maxReplicas",
            max,
            "must be greater than or equal to `minReplicas`",
        )),
        Some(_) => {}
    }
    const TYPES: &[&str] = &[
        "Object",
        "Pods",
        "Resource",
        "ContainerResource",
        "External",
    ];
    for (i, metric) in items(object, "/spec/metrics").iter().enumerate() {
        let path = format!("spec.metrics[{i}]");
        let Some(kind) = metric["type"].as_str() else {
            errors.push(FieldError::required(&format!("{path}.type"), ""));
            continue;
        };
        if !TYPES.contains(&kind) {
            errors.push(FieldError::not_supported(
                &format!("{path}.type"),
                kind,
                TYPES,
            ));
            continue;
        }
        let mut chars = kind.chars();
        let source: String = chars
            .next()
            .map(|c| c.to_ascii_lowercase())
            .into_iter()
            .chain(chars)
            .collect();
        let target = &metric[&source]["target"];
        if !metric[&source].is_object() {
            errors.push(FieldError::required(
                &format!("{path}.{source}"),
                &format!("must populate information for the given metric source (type {kind})"),
            ));
            continue;
        }
        if matches!(kind, "Resource" | "ContainerResource")
            && metric[&source]["name"].as_str().is_none_or(str::is_empty)
        {
            errors.push(FieldError::required(
                &format!("{path}.{source}.name"),
                "must specify a resource name",
            ));
        }
        let target_path = format!("{path}.{source}.target");
        match target["type"].as_str() {
            None => errors.push(FieldError::required(
                &format!("{target_path}.type"),
                "must specify a metric target type",
            )),
            Some(t) if !["Utilization", "Value", "AverageValue"].contains(&t) => {
                errors.push(FieldError::not_supported(
                    &format!("{target_path}.type"),
                    t,
                    &["Utilization", "Value", "AverageValue"],
                ))
            }
            Some(_) => {}
        }
        if let Some(utilization) = target["averageUtilization"].as_i64()
            && utilization <= 0
        {
            errors.push(FieldError::invalid_raw(
                &format!("{target_path}.averageUtilization"),
                utilization,
                "must be greater than 0",
            ));
        }
    }
}

/// An int-or-percent that must not be negative nor above 100%.
fn int_or_percent(errors: &mut Errors, value: &Value, field: &str) {
    match value {
        Value::Number(n) if n.as_i64().is_some_and(|n| n < 0) => errors.push(
            FieldError::invalid_raw(field, n, "must be greater than or equal to 0"),
        ),
        Value::String(s) => match s.strip_suffix('%').map(str::parse::<i64>) {
            Some(Ok(p)) if p > 100 => errors.push(FieldError::invalid(field, s, "must not be greater than 100%")),
            Some(Ok(p)) if p < 0 => errors.push(FieldError::invalid(field, s, "must be greater than or equal to 0")),
            Some(Ok(_)) => {}
            _ => errors.push(FieldError::invalid(
                field,
                s,
                "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            )),
        },
        _ => {}
    }
}

fn disruption_budget(errors: &mut Errors, object: &Value) {
    let min = object
        .pointer("/spec/minAvailable")
        .filter(|v| !v.is_null());
    let max = object
        .pointer("/spec/maxUnavailable")
        .filter(|v| !v.is_null());
    if min.is_some() && max.is_some() {
        errors.push(FieldError::invalid_raw(
            "spec",
            object["spec"].to_string(),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    if let Some(min) = min {
        int_or_percent(errors, min, "spec.minAvailable");
    }
    if let Some(max) = max {
        int_or_percent(errors, max, "spec.maxUnavailable");
    }
    selector(errors, object, "/spec/selector", "spec.selector");
}

fn ingress_backend(errors: &mut Errors, backend: &Value, path: &str) {
    let service = backend.get("service").filter(|s| !s.is_null());
    let resource = backend.get("resource").filter(|r| !r.is_null());
    match (service, resource) {
        (Some(_), Some(_)) => errors.push(FieldError::invalid_raw(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (None, None) => errors.push(FieldError::invalid_raw(
            path,
            "",
            "resource or service backend is required",
        )),
        (Some(service), None) => {
            match service["name"].as_str() {
                None | Some("") => {
                    errors.push(FieldError::required(&format!("{path}.service.name"), ""))
                }
                Some(name) => {
                    for problem in validation::dns1035_label(name) {
                        errors.push(FieldError::invalid(
                            &format!("{path}.service.name"),
                            name,
                            &problem,
                        ));
                    }
                }
            }
            let port = &service["port"];
            let by_name = port["name"].as_str().is_some_and(|n| !n.is_empty());
            let by_number = port.get("number").is_some_and(|n| !n.is_null());
            match (by_name, by_number) {
                (true, true) => errors.push(FieldError::invalid_raw(
                    &format!("{path}.service.port"),
                    port,
                    "cannot set both port name & port number",
                )),
                (false, false) => errors.push(FieldError::invalid_raw(
                    &format!("{path}.service.port"),
                    port,
                    "port name or number is required",
                )),
                (false, true) => port_in_range(
                    errors,
                    &format!("{path}.service.port.number"),
                    port.get("number"),
                    true,
                ),
                (true, false) => {}
            }
        }
        (None, Some(resource)) => {
            require_text(errors, resource, "/kind", &format!("{path}.resource.kind"));
            require_text(errors, resource, "/name", &format!("{path}.resource.name"));
        }
    }
}

fn ingress(errors: &mut Errors, object: &Value) {
    let backend = object
        .pointer("/spec/defaultBackend")
        .filter(|b| !b.is_null());
    let rules = items(object, "/spec/rules");
    if backend.is_none() && rules.is_empty() {
        errors.push(FieldError::invalid_raw(
            "spec",
            object["spec"].to_string(),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(backend) = backend {
        ingress_backend(errors, backend, "spec.defaultBackend");
    }
    for (i, rule) in rules.iter().enumerate() {
        let path = format!("spec.rules[{i}]");
        if let Some(host) = rule["host"].as_str().filter(|h| !h.is_empty()) {
            let name = host.strip_prefix("*.").unwrap_or(host);
            for problem in validation::dns1123_subdomain(name) {
                errors.push(FieldError::invalid(&format!("{path}.host"), host, &problem));
            }
        }
        for (j, http_path) in items(rule, "/http/paths").iter().enumerate() {
            let at = format!("{path}.http.paths[{j}]");
            match http_path["pathType"].as_str() {
                None | Some("") => errors.push(FieldError::required(
                    &format!("{at}.pathType"),
                    "pathType must be specified",
                )),
                Some(kind) if !["Exact", "Prefix", "ImplementationSpecific"].contains(&kind) => {
                    errors.push(FieldError::not_supported(
                        &format!("{at}.pathType"),
                        kind,
                        &["Exact", "Prefix", "ImplementationSpecific"],
                    ))
                }
                Some(kind) => {
                    let value = http_path["path"].as_str().unwrap_or_default();
                    if kind != "ImplementationSpecific" && !value.starts_with('/') {
                        errors.push(FieldError::invalid(
                            &format!("{at}.path"),
                            value,
                            "must be an absolute path",
                        ));
                    }
                }
            }
            ingress_backend(errors, &http_path["backend"], &format!("{at}.backend"));
        }
    }
}

fn network_policy(errors: &mut Errors, object: &Value) {
    selector(errors, object, "/spec/podSelector", "spec.podSelector");
    for (i, kind) in items(object, "/spec/policyTypes").iter().enumerate() {
        if let Some(kind) = kind.as_str()
            && !["Ingress", "Egress"].contains(&kind)
        {
            errors.push(FieldError::not_supported(
                &format!("spec.policyTypes[{i}]"),
                kind,
                &["Ingress", "Egress"],
            ));
        }
    }
    for (direction, peers_key) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in items(object, &format!("/spec/{direction}"))
            .iter()
            .enumerate()
        {
            let path = format!("spec.{direction}[{i}]");
            for (j, port) in items(rule, "/ports").iter().enumerate() {
                if let Some(protocol) = port["protocol"].as_str()
                    && !PROTOCOLS.contains(&protocol)
                {
                    errors.push(FieldError::not_supported(
                        &format!("{path}.ports[{j}].protocol"),
                        protocol,
                        PROTOCOLS,
                    ));
                }
                if port["port"].is_number() {
                    port_in_range(
                        errors,
                        &format!("{path}.ports[{j}].port"),
                        port.get("port"),
                        false,
                    );
                }
            }
            for (j, peer) in items(rule, &format!("/{peers_key}")).iter().enumerate() {
                if let Some(cidr) = peer.pointer("/ipBlock/cidr").and_then(Value::as_str)
                    && !is_cidr(cidr)
                {
                    errors.push(FieldError::invalid(
                        &format!("{path}.{peers_key}[{j}].ipBlock.cidr"),
                        cidr,
                        "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                    ));
                }
            }
        }
    }
}

fn is_cidr(text: &str) -> bool {
    let Some((address, bits)) = text.split_once('/') else {
        return false;
    };
    match (address.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(bits)) => bits <= 32,
        (Ok(std::net::IpAddr::V6(_)), Ok(bits)) => bits <= 128,
        _ => false,
    }
}

fn priority_class(errors: &mut Errors, object: &Value) {
    let name = text(object, "/metadata/name").unwrap_or_default();
    let system = name.starts_with("system-");
    if system && !["system-cluster-critical", "system-node-critical"].contains(&name) {
        errors.push(FieldError::forbidden(
            "metadata.name",
            "priority class names with 'system-' prefix are reserved",
        ));
    }
    match int(object, "/value") {
        None => errors.push(FieldError::required("value", "")),
        Some(value) if value > 1_000_000_000 && !system => errors.push(FieldError::forbidden(
            "value",
            "maximum allowed value of a user defined priority is 1000000000",
        )),
        Some(_) => {}
    }
    one_of(
        errors,
        object,
        "/preemptionPolicy",
        "preemptionPolicy",
        &["Never", "PreemptLowerPriority"],
    );
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

fn access_modes(errors: &mut Errors, object: &Value) {
    let modes = items(object, "/spec/accessModes");
    if modes.is_empty() {
        errors.push(FieldError::required(
            "spec.accessModes",
            "at least 1 access mode is required",
        ));
    }
    for mode in modes.iter().filter_map(Value::as_str) {
        if !ACCESS_MODES.contains(&mode) {
            errors.push(FieldError::not_supported(
                "spec.accessModes",
                mode,
                ACCESS_MODES,
            ));
        }
    }
}

fn claim(errors: &mut Errors, object: &Value) {
    access_modes(errors, object);
    match object.pointer("/spec/resources/requests/storage") {
        Some(storage) => quantity(errors, storage, "spec.resources[storage]"),
        None => errors.push(FieldError::required("spec.resources[storage]", "")),
    }
    one_of(
        errors,
        object,
        "/spec/volumeMode",
        "spec.volumeMode",
        &["Block", "Filesystem"],
    );
    selector(errors, object, "/spec/selector", "spec.selector");
}

/// `spec` keys of a PersistentVolume that are not its volume source.
pub(super) const VOLUME_SETTINGS: &[&str] = &[
    "accessModes",
    "capacity",
    "claimRef",
    "mountOptions",
    "nodeAffinity",
    "persistentVolumeReclaimPolicy",
    "storageClassName",
    "volumeAttributesClassName",
    "volumeMode",
];

fn volume(errors: &mut Errors, object: &Value) {
    access_modes(errors, object);
    match object.pointer("/spec/capacity/storage") {
        Some(storage) => quantity(errors, storage, "spec.capacity[storage]"),
        None => errors.push(FieldError::required("spec.capacity", "")),
    }
    let sources = object["spec"]
        .as_object()
        .map(|spec| {
            spec.keys()
                .filter(|k| !VOLUME_SETTINGS.contains(&k.as_str()))
                .count()
        })
        .unwrap_or(0);
    match sources {
        0 => errors.push(FieldError::required("spec", "must specify a volume type")),
        1 => {}
        _ => errors.push(FieldError::forbidden(
            "spec",
            "may not specify more than 1 volume type",
        )),
    }
    one_of(
        errors,
        object,
        "/spec/persistentVolumeReclaimPolicy",
        "spec.persistentVolumeReclaimPolicy",
        &["Delete", "Recycle", "Retain"],
    );
}

fn limit_range(errors: &mut Errors, object: &Value) {
    for (i, limit) in items(object, "/spec/limits").iter().enumerate() {
        let path = format!("spec.limits[{i}]");
        match limit["type"].as_str() {
            None | Some("") => errors.push(FieldError::required(&format!("{path}.type"), "")),
            Some(kind) if !["Pod", "Container", "PersistentVolumeClaim"].contains(&kind) => errors
                .push(FieldError::not_supported(
                    &format!("{path}.type"),
                    kind,
                    &["Container", "PersistentVolumeClaim", "Pod"],
                )),
            Some(_) => {}
        }
        for key in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            quantities(errors, limit, &format!("/{key}"), &format!("{path}.{key}"));
        }
    }
}

fn secret(errors: &mut Errors, object: &Value) {
    let data = object.get("data").and_then(Value::as_object);
    let has = |key: &str| data.is_some_and(|d| d.contains_key(key));
    let required = |errors: &mut Errors, key: &str| {
        if !has(key) {
            errors.push(FieldError::required(&format!("data[{key}]"), ""));
        }
    };
    match text(object, "/type").unwrap_or("Opaque") {
        "kubernetes.io/tls" => {
            required(errors, "tls.crt");
            required(errors, "tls.key");
        }
        "kubernetes.io/dockerconfigjson" => required(errors, ".dockerconfigjson"),
        "kubernetes.io/dockercfg" => required(errors, ".dockercfg"),
        "kubernetes.io/ssh-auth" => required(errors, "ssh-privatekey"),
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errors.push(FieldError::required("data[username]", ""));
            errors.push(FieldError::required("data[password]", ""));
        }
        "kubernetes.io/service-account-token"
            if text(
                object,
                "/metadata/annotations/kubernetes.io~1service-account.name",
            )
            .is_none_or(str::is_empty) =>
        {
            errors.push(FieldError::required(
                "metadata.annotations[kubernetes.io/service-account.name]",
                "",
            ));
        }
        _ => {}
    }
}

fn rules(errors: &mut Errors, object: &Value, namespaced: bool) {
    for (i, rule) in items(object, "/rules").iter().enumerate() {
        let path = format!("rules[{i}]");
        if items(rule, "/verbs").is_empty() {
            errors.push(FieldError::required(
                &format!("{path}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = items(rule, "/nonResourceURLs");
        if !urls.is_empty() {
            // As Go prints a []string.
            let shown = format!(
                "[]string{{{}}}",
                urls.iter()
                    .map(|u| format!("{:?}", u.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let field = format!("{path}.nonResourceURLs");
            if namespaced {
                errors.push(FieldError::invalid_raw(
                    &field,
                    &shown,
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if ["/apiGroups", "/resources", "/resourceNames"]
                .iter()
                .any(|key| !items(rule, key).is_empty())
            {
                errors.push(FieldError::invalid_raw(
                    &field,
                    &shown,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if items(rule, "/apiGroups").is_empty() {
            errors.push(FieldError::required(
                &format!("{path}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if items(rule, "/resources").is_empty() {
            errors.push(FieldError::required(
                &format!("{path}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

fn binding(errors: &mut Errors, object: &Value, cluster: bool) {
    let kinds: &[&str] = if cluster {
        &["ClusterRole"]
    } else {
        &["Role", "ClusterRole"]
    };
    match text(object, "/roleRef/kind") {
        None | Some("") => errors.push(FieldError::required("roleRef.kind", "")),
        Some(kind) if !kinds.contains(&kind) => {
            errors.push(FieldError::not_supported("roleRef.kind", kind, kinds))
        }
        Some(_) => {}
    }
    require_text(errors, object, "/roleRef/name", "roleRef.name");
    if let Some(group) = text(object, "/roleRef/apiGroup")
        && group != "rbac.authorization.k8s.io"
    {
        errors.push(FieldError::not_supported(
            "roleRef.apiGroup",
            group,
            &["rbac.authorization.k8s.io"],
        ));
    }
    for (i, subject) in items(object, "/subjects").iter().enumerate() {
        let path = format!("subjects[{i}]");
        if subject["name"].as_str().is_none_or(str::is_empty) {
            errors.push(FieldError::required(&format!("{path}.name"), ""));
        }
        match subject["kind"].as_str() {
            Some("ServiceAccount") => {
                if cluster && subject["namespace"].as_str().is_none_or(str::is_empty) {
                    errors.push(FieldError::required(&format!("{path}.namespace"), ""));
                }
            }
            Some("User" | "Group") => {}
            Some(kind) => errors.push(FieldError::not_supported(
                &format!("{path}.kind"),
                kind,
                &["ServiceAccount", "User", "Group"],
            )),
            None => errors.push(FieldError::required(&format!("{path}.kind"), "")),
        }
    }
}

fn endpoint_slice(errors: &mut Errors, object: &Value) {
    const TYPES: &[&str] = &["IPv4", "IPv6", "FQDN"];
    match text(object, "/addressType") {
        None | Some("") => errors.push(FieldError::required("addressType", "")),
        Some(kind) if !TYPES.contains(&kind) => {
            errors.push(FieldError::not_supported("addressType", kind, TYPES))
        }
        Some(_) => {}
    }
    for (i, endpoint) in items(object, "/endpoints").iter().enumerate() {
        let addresses = items(endpoint, "/addresses");
        if addresses.is_empty() || addresses.len() > 100 {
            errors.push(FieldError::required(
                &format!("endpoints[{i}].addresses"),
                "must contain at least 1 address",
            ));
        }
    }
    for (i, port) in items(object, "/ports").iter().enumerate() {
        if port["port"].is_number() {
            port_in_range(errors, &format!("ports[{i}].port"), port.get("port"), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(group: &str, kind: &str, object: Value) -> Vec<String> {
        validate(group, kind, &object)
            .expect("covered")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn cron_schedules() {
        for good in [
            "*/5 * * * *",
            "0 0 1 jan-mar mon-fri",
            "15 3 * * 0,6",
            "@daily",
            "TZ=UTC 0 * * * *",
        ] {
            assert_eq!(cron_schedule(good), Ok(()), "{good}");
        }
        assert_eq!(
            cron_schedule("* * *"),
            Err("expected exactly 5 fields, found 3: * * *".into())
        );
        assert!(cron_schedule("61 * * * *").is_err_and(|e| e.contains("above maximum (59)")));
        assert!(cron_schedule("* * * * funday").is_err());
        assert!(cron_schedule("*/0 * * * *").is_err());
        let job = json!({"spec": {"schedule": "bad", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Always", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
        let errors = messages("batch", "CronJob", job);
        assert!(
            errors[0].starts_with("spec.schedule: Invalid value: \"bad\""),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("restartPolicy: Unsupported value: \"Always\"")),
            "{errors:?}"
        );
    }

    #[test]
    fn autoscalers_and_budgets() {
        let errors = messages(
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"spec": {"scaleTargetRef": {"kind": "Deployment"}, "minReplicas": 3, "maxReplicas": 2,
                   "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}]}}),
        );
        assert_eq!(
            errors,
            [
                "spec.scaleTargetRef.name: Required value",
                "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`",
                "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
            ]
        );
        let errors = messages(
            "policy",
            "PodDisruptionBudget",
            json!({"spec": {"minAvailable": "120%", "maxUnavailable": 1}}),
        );
        assert!(
            errors[0].contains("minAvailable and maxUnavailable cannot be both set"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("must not be greater than 100%"),
            "{errors:?}"
        );
    }

    #[test]
    fn ingresses_and_network_policies() {
        let errors = messages("networking.k8s.io", "Ingress", json!({"spec": {}}));
        assert!(errors[0].contains("either `defaultBackend` or `rules` must be specified"));
        let errors = messages(
            "networking.k8s.io",
            "Ingress",
            json!({"spec": {"rules": [{"host": "Bad_Host", "http": {"paths": [
                {"path": "api", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {}}}},
                {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
        );
        assert!(
            errors[0].starts_with("spec.rules[0].host: Invalid value: \"Bad_Host\""),
            "{errors:?}"
        );
        assert!(errors.contains(&"spec.rules[0].http.paths[0].path: Invalid value: \"api\": must be an absolute path".to_string()), "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("port name or number is required")),
            "{errors:?}"
        );
        assert!(
            errors.contains(
                &"spec.rules[0].http.paths[1].pathType: Required value: pathType must be specified"
                    .to_string()
            ),
            "{errors:?}"
        );
        let errors = messages(
            "networking.k8s.io",
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}, "policyTypes": ["Sideways"],
                   "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}], "ports": [{"protocol": "ICMP"}]}]}}),
        );
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn classes_volumes_and_quotas() {
        let errors = messages(
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"metadata": {"name": "system-mine"}, "value": 2_000_000_000}),
        );
        assert!(
            errors[0].contains("'system-' prefix are reserved"),
            "{errors:?}"
        );
        let errors = messages(
            "scheduling.k8s.io",
            "PriorityClass",
            json!({"metadata": {"name": "high"}, "value": 2_000_000_000}),
        );
        assert!(
            errors[0].contains("maximum allowed value of a user defined priority is 1000000000"),
            "{errors:?}"
        );
        assert_eq!(
            messages("storage.k8s.io", "StorageClass", json!({})),
            ["provisioner: Required value"]
        );
        let errors = messages(
            "",
            "PersistentVolumeClaim",
            json!({"spec": {"accessModes": ["ReadWriteSometimes"]}}),
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        let errors = messages(
            "",
            "PersistentVolume",
            json!({"spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}}),
        );
        assert_eq!(errors, ["spec: Required value: must specify a volume type"]);
        assert!(messages("", "PersistentVolume", json!({"spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/x"}}})).is_empty());
        let errors = messages(
            "",
            "ResourceQuota",
            json!({"spec": {"hard": {"pods": "lots", "cpu": "-1"}}}),
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        let errors = messages(
            "",
            "LimitRange",
            json!({"spec": {"limits": [{"type": "Node"}]}}),
        );
        assert!(
            errors[0].starts_with("spec.limits[0].type: Unsupported value: \"Node\""),
            "{errors:?}"
        );
    }

    #[test]
    fn typed_secrets_rbac_and_slices() {
        let errors = messages(
            "",
            "Secret",
            json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}),
        );
        assert_eq!(errors, ["data[tls.key]: Required value"]);
        assert!(messages("", "Secret", json!({"type": "Opaque"})).is_empty());
        let errors = messages(
            "rbac.authorization.k8s.io",
            "Role",
            json!({"rules": [{"resources": ["pods"]}, {"verbs": ["get"], "nonResourceURLs": ["/x"]}]}),
        );
        assert_eq!(
            errors,
            [
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[1].nonResourceURLs: Invalid value: []string{\"/x\"}: namespaced rules cannot apply to non-resource URLs",
            ]
        );
        let errors = messages(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            json!({"roleRef": {"kind": "Role", "name": "r", "apiGroup": "rbac.authorization.k8s.io"},
                   "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}),
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        let errors = messages(
            "discovery.k8s.io",
            "EndpointSlice",
            json!({"addressType": "IPv5", "endpoints": [{"addresses": []}]}),
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
    }
}
