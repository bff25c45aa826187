//! Upstream's defaults for built-in kinds (`SetDefaults_*`, and the create-time work of the
//! default admission plugins that every cluster runs: ServiceAccount's account name, Priority,
//! DefaultTolerationSeconds), applied to objects as JSON. Only absent fields are filled in.
//!
//! Services have their own module ([`crate::service`]), since their defaults go with address
//! allocation.

use serde_json::{Map, Value, json};

/// Sets `key` to `value` when it is absent or null.
fn default(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        let slot = map.entry(key).or_insert(Value::Null);
        if slot.is_null() {
            *slot = value;
        }
    }
}

/// The object at `key`, created empty when absent.
fn child<'a>(object: &'a mut Value, key: &str) -> &'a mut Value {
    if !object.get(key).is_some_and(Value::is_object) {
        object[key] = Value::Object(Map::new());
    }
    &mut object[key]
}

fn each<'a>(object: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    object
        .get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// `Always` for `:latest` or untagged images, else `IfNotPresent` (digests included).
pub fn image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    // The tag is after the last colon that follows the last slash (a registry port is not a tag).
    let name = image.rsplit('/').next().unwrap_or(image);
    match name.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn probe(probe: &mut Value) {
    if !probe.is_object() {
        return;
    }
    default(probe, "timeoutSeconds", json!(1));
    default(probe, "periodSeconds", json!(10));
    default(probe, "successThreshold", json!(1));
    default(probe, "failureThreshold", json!(3));
    if let Some(http) = probe.get_mut("httpGet").filter(|h| h.is_object()) {
        default(http, "path", json!("/"));
        default(http, "scheme", json!("HTTP"));
    }
}

fn container(container: &mut Value) {
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    default(
        container,
        "imagePullPolicy",
        json!(image_pull_policy(&image)),
    );
    default(
        container,
        "terminationMessagePath",
        json!("/dev/termination-log"),
    );
    default(container, "terminationMessagePolicy", json!("File"));
    default(container, "resources", json!({}));
    for port in each(container, "ports") {
        default(port, "protocol", json!("TCP"));
    }
    for name in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = container.get_mut(name) {
            probe(p);
        }
    }
    for env in each(container, "env") {
        if let Some(field) = env.pointer_mut("/valueFrom/fieldRef") {
            default(field, "apiVersion", json!("v1"));
        }
    }
}

/// Defaults of a pod spec (pods, and the templates of workloads).
pub fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        for c in each(spec, list) {
            container(c);
        }
    }
    for volume in each(spec, "volumes") {
        for source in ["configMap", "secret"] {
            if let Some(v) = volume.get_mut(source).filter(|v| v.is_object()) {
                default(v, "defaultMode", json!(420));
            }
        }
        if let Some(projected) = volume.get_mut("projected").filter(|v| v.is_object()) {
            default(projected, "defaultMode", json!(420));
        }
        if let Some(host) = volume.get_mut("hostPath").filter(|v| v.is_object()) {
            default(host, "type", json!(""));
        }
        if let Some(downward) = volume.get_mut("downwardAPI").filter(|v| v.is_object()) {
            default(downward, "defaultMode", json!(420));
        }
    }
}

/// The defaults upstream gives pods but not the pod templates of workloads: service links
/// on, each container's requests taken from its limits where it names none, and on the host's
/// network, each port's host port.
fn pod_only(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default(spec, "enableServiceLinks", json!(true));
    let host_network = spec["hostNetwork"] == true;
    for list in ["containers", "initContainers"] {
        for c in each(spec, list) {
            if let Some(limits) = c.pointer("/resources/limits").and_then(Value::as_object) {
                let limits = limits.clone();
                let resources = child(c, "resources");
                let requests = child(resources, "requests");
                for (name, limit) in limits {
                    default(requests, &name, limit);
                }
            }
            if host_network {
                for port in each(c, "ports") {
                    let unset = port.get("hostPort").is_none_or(|p| p.is_null() || p == 0);
                    if unset && let Some(number) = port.get("containerPort").cloned() {
                        port["hostPort"] = number;
                    }
                }
            }
        }
    }
}

/// The QoS class of a pod from its containers' requests and limits.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        for resource in ["cpu", "memory"] {
            let request = requests.and_then(|r| r.get(resource));
            let limit = limits.and_then(|l| l.get(resource));
            any |= request.is_some() || limit.is_some();
            // Guaranteed needs a limit for both, and any request equal to it.
            match (request, limit) {
                (_, None) => guaranteed = false,
                (Some(r), Some(l)) if r != l => guaranteed = false,
                _ => {}
            }
        }
    }
    match (any, guaranteed && !containers.is_empty()) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// The defaults of a new Pod's spec. What admission adds comes after, in [`pod_admission`]:
/// its writer does not own those fields.
pub fn pod_create(pod: &mut Value) {
    if !pod.is_object() {
        return;
    }
    let spec = child(pod, "spec");
    pod_spec(spec);
    pod_only(spec);
}

/// What upstream's Job strategy gives a new Job unless it asks for a manual selector: its
/// template labelled with the Job's name and uid (both under their legacy and their
/// `batch.kubernetes.io/` names), and a selector on the uid. Labels and a selector the Job
/// already has are kept (validation judges them). Needs the Job's uid.
pub fn job_create(job: &mut Value) {
    if !job.is_object() || job.pointer("/spec/manualSelector") == Some(&json!(true)) {
        return;
    }
    let name = job.pointer("/metadata/name").cloned().unwrap_or(json!(""));
    let uid = job.pointer("/metadata/uid").cloned().unwrap_or(json!(""));
    let spec = child(job, "spec");
    let labels = child(child(child(spec, "template"), "metadata"), "labels");
    for key in ["job-name", "batch.kubernetes.io/job-name"] {
        default(labels, key, name.clone());
    }
    for key in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
        default(labels, key, uid.clone());
    }
    let selector = child(child(spec, "selector"), "matchLabels");
    default(selector, "batch.kubernetes.io/controller-uid", uid);
}

/// What upstream's admission plugins give a new Pod (its ServiceAccount's name, priority,
/// the default tolerations), and its first status.
pub fn pod_admission(pod: &mut Value) {
    if !pod.is_object() {
        return;
    }
    let spec = child(pod, "spec");
    default(spec, "serviceAccountName", json!("default"));
    let account = spec["serviceAccountName"].clone();
    default(spec, "serviceAccount", account);
    default(spec, "priority", json!(0));
    default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    if let Some(tolerations) = child_array(spec, "tolerations") {
        for taint in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            if !tolerations
                .iter()
                .any(|t| t.get("key").and_then(Value::as_str) == Some(taint))
            {
                tolerations.push(json!({"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
    }
    let qos = qos_class(spec);
    pod["status"] = json!({"phase": "Pending", "qosClass": qos});
}

/// The array at `key`, created empty when absent or not an array; `None` only when `object`
/// is not an object.
fn child_array<'a>(object: &'a mut Value, key: &str) -> Option<&'a mut Vec<Value>> {
    let slot = object
        .as_object_mut()?
        .entry(key)
        .or_insert_with(|| json!([]));
    if !slot.is_array() {
        *slot = json!([]);
    }
    slot.as_array_mut()
}

fn template(workload: &mut Value) {
    if let Some(spec) = workload.pointer_mut("/spec/template/spec") {
        pod_spec(spec);
    }
}

/// Defaults for a new or updated object of `group`/`kind` (not Services, see the module doc).
pub fn apply(group: &str, kind: &str, object: &mut Value) {
    if !object.is_object() {
        return;
    }
    match (group, kind) {
        ("", "Secret") => default(object, "type", json!("Opaque")),
        ("", "Pod") => {
            if let Some(spec) = object.get_mut("spec") {
                pod_spec(spec);
                pod_only(spec);
            }
        }
        ("", "PodTemplate") => {
            if let Some(spec) = object.pointer_mut("/template/spec") {
                pod_spec(spec);
            }
        }
        ("", "ReplicationController") => {
            let spec = child(object, "spec");
            default(spec, "replicas", json!(1));
            if spec.get("selector").is_none_or(Value::is_null)
                && let Some(labels) = spec.pointer("/template/metadata/labels").cloned()
            {
                spec["selector"] = labels;
            }
            template(object);
        }
        ("", "PersistentVolumeClaim") => {
            default(child(object, "spec"), "volumeMode", json!("Filesystem"));
            default(child(object, "status"), "phase", json!("Pending"));
        }
        ("", "PersistentVolume") => {
            let spec = child(object, "spec");
            default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
            default(spec, "volumeMode", json!("Filesystem"));
            default(child(object, "status"), "phase", json!("Pending"));
        }
        ("", "Endpoints") => {
            for subset in each(object, "subsets") {
                for port in each(subset, "ports") {
                    default(port, "protocol", json!("TCP"));
                }
            }
        }
        ("", "LimitRange") => {
            if let Some(items) = object
                .pointer_mut("/spec/limits")
                .and_then(Value::as_array_mut)
            {
                items.iter_mut().for_each(limit_range_item);
            }
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            for port in each(object, "ports") {
                default(port, "name", json!(""));
                default(port, "protocol", json!("TCP"));
            }
        }
        ("networking.k8s.io", "NetworkPolicy") => network_policy(child(object, "spec")),
        ("networking.k8s.io", "IngressClass") => {
            if let Some(parameters) = object
                .pointer_mut("/spec/parameters")
                .filter(|p| p.is_object())
            {
                default(parameters, "scope", json!("Cluster"));
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            default(object, "reclaimPolicy", json!("Delete"));
            default(object, "volumeBindingMode", json!("Immediate"));
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            default(object, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        ("apps", "Deployment") => {
            let spec = child(object, "spec");
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            default(spec, "strategy", json!({"type": "RollingUpdate"}));
            let strategy = child(spec, "strategy");
            default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                let rolling = child(strategy, "rollingUpdate");
                default(rolling, "maxUnavailable", json!("25%"));
                default(rolling, "maxSurge", json!("25%"));
            }
            template(object);
        }
        ("apps", "ReplicaSet") => {
            default(child(object, "spec"), "replicas", json!(1));
            template(object);
        }
        ("apps", "StatefulSet") => {
            let spec = child(object, "spec");
            default(spec, "replicas", json!(1));
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            default(spec, "revisionHistoryLimit", json!(10));
            default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            template(object);
        }
        ("apps", "DaemonSet") => {
            let spec = child(object, "spec");
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
            let strategy = child(spec, "updateStrategy");
            if strategy["type"] == "RollingUpdate" {
                let rolling = child(strategy, "rollingUpdate");
                default(rolling, "maxUnavailable", json!(1));
                default(rolling, "maxSurge", json!(0));
            }
            template(object);
        }
        ("batch", "Job") => {
            let spec = child(object, "spec");
            let (completions, parallelism) = (
                spec.get("completions").cloned(),
                spec.get("parallelism").cloned(),
            );
            if completions.as_ref().is_none_or(Value::is_null)
                && parallelism.as_ref().is_none_or(Value::is_null)
            {
                spec["completions"] = json!(1);
            }
            default(spec, "parallelism", json!(1));
            default(spec, "backoffLimit", json!(6));
            default(spec, "completionMode", json!("NonIndexed"));
            default(spec, "suspend", json!(false));
            let replacement = if spec.get("podFailurePolicy").is_none_or(Value::is_null) {
                "TerminatingOrFailed"
            } else {
                "Failed"
            };
            default(spec, "podReplacementPolicy", json!(replacement));
            default(spec, "manualSelector", json!(false));
            template(object);
        }
        ("batch", "CronJob") => {
            let spec = child(object, "spec");
            default(spec, "concurrencyPolicy", json!("Allow"));
            default(spec, "suspend", json!(false));
            default(spec, "successfulJobsHistoryLimit", json!(3));
            default(spec, "failedJobsHistoryLimit", json!(1));
            if let Some(pod) = spec.pointer_mut("/jobTemplate/spec/template/spec") {
                pod_spec(pod);
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(child(object, "spec")),
        _ => {}
    }
}

/// A container limit's defaults: its default limit from its max, its default request from
/// its default limit, else from its min.
fn limit_range_item(item: &mut Value) {
    if item["type"] != "Container" {
        return;
    }
    let resources = |item: &Value, key: &str| -> Map<String, Value> {
        item.get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let mut limits = resources(item, "default");
    for (name, value) in resources(item, "max") {
        limits.entry(name).or_insert(value);
    }
    let mut requests = resources(item, "defaultRequest");
    for (name, value) in limits.iter().chain(&resources(item, "min")) {
        requests
            .entry(name.clone())
            .or_insert_with(|| value.clone());
    }
    for (key, list) in [("default", limits), ("defaultRequest", requests)] {
        if !list.is_empty() {
            item[key] = Value::Object(list);
        }
    }
}

/// A NetworkPolicy's ports speak TCP unless they say otherwise; a policy without types is
/// about ingress, and egress too when it has egress rules.
fn network_policy(spec: &mut Value) {
    for direction in ["ingress", "egress"] {
        for rule in each(spec, direction) {
            for port in each(rule, "ports") {
                default(port, "protocol", json!("TCP"));
            }
        }
    }
    if spec["policyTypes"].as_array().is_none_or(Vec::is_empty) {
        let egress = spec["egress"].as_array().is_some_and(|e| !e.is_empty());
        spec["policyTypes"] = if egress {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
    }
}

/// An `autoscaling/v2` HPA's spec (v1 ones are stored as v2): one replica at least, the CPU
/// target when no metric is named, and a behaviour that is given filled in.
fn hpa(spec: &mut Value) {
    default(spec, "minReplicas", json!(1));
    if spec["metrics"].as_array().is_none_or(|m| m.is_empty()) {
        spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 80}}}]);
    }
    if spec["behavior"].is_object() {
        let behavior = child(spec, "behavior");
        let up = child(behavior, "scaleUp");
        default(up, "stabilizationWindowSeconds", json!(0));
        default(up, "selectPolicy", json!("Max"));
        default(
            up,
            "policies",
            json!([{"type": "Pods", "value": 4, "periodSeconds": 15},
                   {"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
        // Scale-down's window stays unset: the controller's flag decides it.
        let down = child(behavior, "scaleDown");
        default(down, "selectPolicy", json!("Max"));
        default(
            down,
            "policies",
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_and_policy_kinds_get_upstreams_defaults() {
        let mut class = json!({"provisioner": "x"});
        apply("storage.k8s.io", "StorageClass", &mut class);
        assert_eq!(
            class,
            json!({"provisioner": "x", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"})
        );
        let mut priority = json!({"value": 10});
        apply("scheduling.k8s.io", "PriorityClass", &mut priority);
        assert_eq!(priority["preemptionPolicy"], "PreemptLowerPriority");
        let mut policy = json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}],
                                         "ingress": [{"ports": [{"port": 80, "protocol": "UDP"}]}]}});
        apply("networking.k8s.io", "NetworkPolicy", &mut policy);
        assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(policy["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["protocol"], "UDP");
        let mut slice = json!({"addressType": "IPv4", "ports": [{"port": 80}]});
        apply("discovery.k8s.io", "EndpointSlice", &mut slice);
        assert_eq!(
            slice["ports"],
            json!([{"name": "", "port": 80, "protocol": "TCP"}])
        );
        let mut limits = json!({"spec": {"limits": [
            {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "default": {"cpu": "1"},
             "min": {"memory": "64Mi"}},
            {"type": "Pod", "max": {"cpu": "4"}}
        ]}});
        apply("", "LimitRange", &mut limits);
        assert_eq!(
            limits["spec"]["limits"],
            json!([
                {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"memory": "64Mi"},
                 "default": {"cpu": "1", "memory": "1Gi"}, "defaultRequest": {"cpu": "1", "memory": "1Gi"}},
                {"type": "Pod", "max": {"cpu": "4"}}
            ])
        );
        let mut volume = json!({"spec": {"hostPath": {"path": "/x"}}});
        apply("", "PersistentVolume", &mut volume);
        assert_eq!(volume["status"], json!({"phase": "Pending"}));
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        let cases = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.27", "IfNotPresent"),
            ("registry.local:5000/nginx", "Always"),
            ("registry.local:5000/nginx:1", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
        ];
        for (image, want) in cases {
            assert_eq!(image_pull_policy(image), want, "{image}");
        }
    }

    #[test]
    fn a_new_pod_looks_as_upstream_stores_it() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{
            "name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
            "readinessProbe": {"httpGet": {"port": 80}}
        }]}});
        pod_create(&mut pod);
        pod_admission(&mut pod);
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["serviceAccountName"], "default");
        assert_eq!(spec["tolerations"].as_array().unwrap().len(), 2);
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["readinessProbe"]["periodSeconds"], 10);
        assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        assert_eq!(spec["enableServiceLinks"], true);
    }

    #[test]
    fn a_new_job_selects_its_pods_by_its_uid_unless_it_asks_for_a_manual_selector() {
        let mut job = json!({"metadata": {"name": "pi", "uid": "u-1"},
            "spec": {"template": {"metadata": {"labels": {"job-name": "mine"}},
                                  "spec": {"containers": []}}}});
        apply("batch", "Job", &mut job);
        assert_eq!(job["spec"]["manualSelector"], false);
        job_create(&mut job);
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"],
            json!({"job-name": "mine", "batch.kubernetes.io/job-name": "pi",
                   "controller-uid": "u-1", "batch.kubernetes.io/controller-uid": "u-1"})
        );
        assert_eq!(
            job["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );

        let mut manual = json!({"metadata": {"name": "m", "uid": "u-2"},
            "spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}}}});
        let before = manual.clone();
        job_create(&mut manual);
        assert_eq!(manual, before);
    }

    #[test]
    fn pods_but_not_templates_get_service_links_requests_from_limits_and_host_ports() {
        let spec = json!({"hostNetwork": true, "containers": [{
            "name": "web", "image": "nginx", "ports": [{"containerPort": 8080}],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}
        }]});
        let mut pod = json!({"metadata": {"name": "p"}, "spec": spec.clone()});
        pod_create(&mut pod);
        let c = &pod["spec"]["containers"][0];
        assert_eq!(
            c["resources"]["requests"],
            json!({"cpu": "500m", "memory": "1Gi"})
        );
        assert_eq!(c["ports"][0]["hostPort"], 8080);
        assert_eq!(pod["spec"]["enableServiceLinks"], true);

        let mut deploy = json!({"spec": {"template": {"spec": spec}}});
        apply("apps", "Deployment", &mut deploy);
        let template = &deploy["spec"]["template"]["spec"];
        assert!(template.get("enableServiceLinks").is_none(), "{template}");
        let c = &template["containers"][0];
        assert_eq!(c["resources"]["requests"], json!({"cpu": "500m"}));
        assert!(c["ports"][0].get("hostPort").is_none());
    }

    #[test]
    fn qos_classes() {
        let spec =
            |resources: Value| json!({"containers": [{"name": "a", "resources": resources}]});
        assert_eq!(qos_class(&spec(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&spec(json!({"requests": {"cpu": "1"}}))),
            "Burstable"
        );
        let both = json!({"cpu": "1", "memory": "1Gi"});
        assert_eq!(
            qos_class(&spec(json!({"limits": both.clone()}))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&spec(json!({"limits": both.clone(), "requests": both}))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&spec(
                json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}})
            )),
            "Burstable"
        );
    }

    #[test]
    fn workloads_get_their_defaults_without_losing_given_values() {
        let mut deploy = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}});
        apply("apps", "Deployment", &mut deploy);
        assert_eq!(deploy["spec"]["replicas"], 3);
        assert_eq!(
            deploy["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(deploy["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(
            deploy["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        let mut recreate = json!({"spec": {"strategy": {"type": "Recreate"}}});
        apply("apps", "Deployment", &mut recreate);
        assert!(recreate["spec"]["strategy"].get("rollingUpdate").is_none());

        let mut job = json!({"spec": {"template": {"spec": {"containers": []}}}});
        apply("batch", "Job", &mut job);
        assert_eq!(
            (
                job["spec"]["completions"].as_i64(),
                job["spec"]["parallelism"].as_i64(),
                job["spec"]["backoffLimit"].as_i64()
            ),
            (Some(1), Some(1), Some(6))
        );
        let mut parallel = json!({"spec": {"parallelism": 4}});
        apply("batch", "Job", &mut parallel);
        assert!(
            parallel["spec"]["completions"].is_null(),
            "work-queue jobs have no completions"
        );

        let mut secret = json!({"data": {}});
        apply("", "Secret", &mut secret);
        assert_eq!(secret["type"], "Opaque");
        let mut rc = json!({"spec": {"template": {"metadata": {"labels": {"app": "a"}}}}});
        apply("", "ReplicationController", &mut rc);
        assert_eq!(rc["spec"]["selector"], json!({"app": "a"}));
    }
}
