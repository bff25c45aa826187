//! HorizontalPodAutoscalers between `autoscaling/v1` and `autoscaling/v2`, as upstream converts
//! them: v1's one CPU target is v2's CPU utilization metric; what v1 cannot say (other metrics,
//! their current values, the conditions, the scaling behaviour) travels in annotations, in the
//! shapes upstream writes there, so that a read-modify-write through v1 loses nothing.

use serde_json::{Map, Value, json};

const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// The CPU target an HPA without metrics has (v1's implicit default, explicit since v2beta1).
const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// The object under `key`, made if missing; `None` when `value` is not an object.
fn object_mut<'a>(value: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let slot = value
        .as_object_mut()?
        .entry(key)
        .or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut()
}

/// Sets `key` to `value` unless `value` is null.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<&Value>) {
    if let Some(value) = value.filter(|v| !v.is_null()) {
        map.insert(key.to_owned(), value.clone());
    }
}

fn cpu_utilization_metric(percent: &Value) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}}})
}

/// Whether a v2 metric (spec or status) is the CPU utilization v1 has a field for.
fn is_cpu_utilization(metric: &Value, part: &str) -> Option<Value> {
    (metric["type"] == "Resource" && metric["resource"]["name"] == "cpu")
        .then(|| metric["resource"][part]["averageUtilization"].clone())
        .filter(|v| !v.is_null())
}

pub(super) fn v1_to_v2(mut hpa: Value) -> Value {
    if !hpa.is_object() {
        return hpa;
    }
    let annotations: Map<String, Value> = hpa
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
        .map(|a| {
            [METRICS, CURRENT_METRICS, CONDITIONS, BEHAVIOR]
                .iter()
                .filter_map(|key| a.remove(*key).map(|v| ((*key).to_owned(), v)))
                .collect()
        })
        .unwrap_or_default();
    if hpa["metadata"]["annotations"]
        .as_object()
        .is_some_and(Map::is_empty)
        && let Some(metadata) = hpa["metadata"].as_object_mut()
    {
        metadata.remove("annotations");
    }
    let decoded =
        |key: &str| -> Option<Value> { serde_json::from_str(annotations.get(key)?.as_str()?).ok() };

    let Some(spec) = object_mut(&mut hpa, "spec") else {
        return hpa;
    };
    let mut metrics: Vec<Value> = decoded(METRICS)
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|m| metric_to_v2(m, Part::Target))
        .collect();
    if let Some(percent) = spec.remove("targetCPUUtilizationPercentage") {
        metrics.push(cpu_utilization_metric(&percent));
    }
    if metrics.is_empty() {
        metrics.push(cpu_utilization_metric(&json!(DEFAULT_CPU_UTILIZATION)));
    }
    spec.insert("metrics".into(), Value::Array(metrics));
    if let Some(behavior) = decoded(BEHAVIOR) {
        spec.insert("behavior".into(), recase(&behavior, false));
    }

    let Some(status) = object_mut(&mut hpa, "status") else {
        return hpa;
    };
    let cpu = status.remove("currentCPUUtilizationPercentage");
    let current: Option<Vec<Value>> = decoded(CURRENT_METRICS)
        .and_then(|v| v.as_array().cloned())
        .map(|list| list.iter().map(|m| metric_to_v2(m, Part::Current)).collect())
        .or_else(|| {
            cpu.map(|percent| {
                vec![json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": percent}}})]
            })
        });
    if let Some(current) = current {
        status.insert("currentMetrics".into(), Value::Array(current));
    }
    if let Some(conditions) = decoded(CONDITIONS) {
        status.insert("conditions".into(), conditions);
    }
    if status.is_empty()
        && let Some(object) = hpa.as_object_mut()
    {
        object.remove("status");
    }
    hpa
}

pub(super) fn v2_to_v1(mut hpa: Value) -> Value {
    if !hpa.is_object() {
        return hpa;
    }
    let mut annotations = Map::new();
    let Some(spec) = object_mut(&mut hpa, "spec") else {
        return hpa;
    };
    let metrics = match spec.remove("metrics") {
        Some(Value::Array(metrics)) => metrics,
        _ => Vec::new(),
    };
    let cpu = metrics.iter().find_map(|m| is_cpu_utilization(m, "target"));
    let others: Vec<Value> = metrics
        .iter()
        .filter(|m| is_cpu_utilization(m, "target").is_none())
        .map(|m| metric_to_v1(m, Part::Target))
        .collect();
    if let Some(percent) = cpu {
        spec.insert("targetCPUUtilizationPercentage".into(), percent);
    }
    if !others.is_empty() {
        annotations.insert(METRICS.into(), json!(Value::Array(others).to_string()));
    }
    if let Some(behavior) = spec.remove("behavior").filter(|b| !b.is_null()) {
        annotations.insert(BEHAVIOR.into(), json!(recase(&behavior, true).to_string()));
    }

    if let Some(status) = hpa.get_mut("status").and_then(Value::as_object_mut) {
        let current = match status.remove("currentMetrics") {
            Some(Value::Array(current)) => current,
            _ => Vec::new(),
        };
        if let Some(percent) = current
            .iter()
            .find_map(|m| is_cpu_utilization(m, "current"))
        {
            status.insert("currentCPUUtilizationPercentage".into(), percent);
        }
        if !current.is_empty() {
            let converted: Vec<Value> = current
                .iter()
                .map(|m| metric_to_v1(m, Part::Current))
                .collect();
            annotations.insert(
                CURRENT_METRICS.into(),
                json!(Value::Array(converted).to_string()),
            );
        }
        if let Some(Value::Array(conditions)) = status.remove("conditions")
            && !conditions.is_empty()
        {
            annotations.insert(
                CONDITIONS.into(),
                json!(Value::Array(conditions).to_string()),
            );
        }
    }
    if !annotations.is_empty()
        && let Some(metadata) = object_mut(&mut hpa, "metadata")
    {
        if !metadata.get("annotations").is_some_and(Value::is_object) {
            metadata.insert("annotations".into(), json!({}));
        }
        if let Some(existing) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            existing.extend(annotations);
        }
    }
    hpa
}

/// A metric's target (in a spec) or current value (in a status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Target,
    Current,
}

impl Part {
    /// v2's key for the part, and the prefix of v1's names for its values.
    fn key(self) -> &'static str {
        match self {
            Part::Target => "target",
            Part::Current => "current",
        }
    }
}

/// The field of a metric of type `kind` that holds its source (`Pods` → `pods`).
fn source_field(kind: &str) -> String {
    let mut chars = kind.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect()
}

/// A v1 `MetricSpec` or `MetricStatus` (the annotations' shapes) as v2's.
fn metric_to_v2(metric: &Value, part: Part) -> Value {
    let kind = metric["type"].as_str().unwrap_or_default();
    let field = source_field(kind);
    let source = &metric[&field];
    let p = part.key();
    let v1 = |name: &str| &source[format!("{p}{name}")];
    // v2's target names its type; a current value does not.
    let typed = |target_type: &str| match part {
        Part::Target => json!({"type": target_type}),
        Part::Current => json!({}),
    };
    let converted = match kind {
        "Object" => {
            let target_type = if source["averageValue"].is_null() {
                "Value"
            } else {
                "AverageValue"
            };
            json!({
                "describedObject": source["target"],
                "metric": identifier(&source["metricName"], &source["selector"]),
                p: with(typed(target_type), &[("value", v1("Value")), ("averageValue", &source["averageValue"])]),
            })
        }
        "Pods" => json!({
            "metric": identifier(&source["metricName"], &source["selector"]),
            p: with(typed("AverageValue"), &[("averageValue", v1("AverageValue"))]),
        }),
        "Resource" | "ContainerResource" => {
            let target_type = if v1("AverageUtilization").is_null() {
                "AverageValue"
            } else {
                "Utilization"
            };
            let value = with(
                typed(target_type),
                &[
                    ("averageUtilization", v1("AverageUtilization")),
                    ("averageValue", v1("AverageValue")),
                ],
            );
            with(
                json!({"name": source["name"], p: value}),
                &[("container", &source["container"])],
            )
        }
        "External" => {
            let target_type = if v1("Value").is_null() {
                "AverageValue"
            } else {
                "Value"
            };
            json!({
                "metric": identifier(&source["metricName"], &source["metricSelector"]),
                p: with(typed(target_type), &[("value", v1("Value")), ("averageValue", v1("AverageValue"))]),
            })
        }
        _ => return json!({"type": kind}),
    };
    json!({"type": kind, field: converted})
}

/// A v2 `MetricSpec` or `MetricStatus` in v1's annotation shape.
fn metric_to_v1(metric: &Value, part: Part) -> Value {
    let kind = metric["type"].as_str().unwrap_or_default();
    let field = source_field(kind);
    let source = &metric[&field];
    let p = part.key();
    let value = &source[p];
    let name = |suffix: &str| format!("{p}{suffix}");
    let metric_name = json!({"metricName": source["metric"]["name"]});
    let converted = match kind {
        "Object" => with(
            json!({"target": source["describedObject"], "metricName": source["metric"]["name"]}),
            &[
                (&name("Value"), &value["value"]),
                ("selector", &source["metric"]["selector"]),
                ("averageValue", &value["averageValue"]),
            ],
        ),
        "Pods" => with(
            metric_name,
            &[
                (&name("AverageValue"), &value["averageValue"]),
                ("selector", &source["metric"]["selector"]),
            ],
        ),
        "Resource" | "ContainerResource" => with(
            json!({"name": source["name"]}),
            &[
                (&name("AverageUtilization"), &value["averageUtilization"]),
                (&name("AverageValue"), &value["averageValue"]),
                ("container", &source["container"]),
            ],
        ),
        "External" => with(
            metric_name,
            &[
                ("metricSelector", &source["metric"]["selector"]),
                (&name("Value"), &value["value"]),
                (&name("AverageValue"), &value["averageValue"]),
            ],
        ),
        _ => return json!({"type": kind}),
    };
    json!({"type": kind, field: converted})
}

/// v2's `MetricIdentifier`.
fn identifier(name: &Value, selector: &Value) -> Value {
    with(json!({"name": name}), &[("selector", selector)])
}

/// `base` with each non-null `(key, value)` added.
fn with(mut base: Value, extra: &[(&str, &Value)]) -> Value {
    if let Some(map) = base.as_object_mut() {
        for (key, value) in extra {
            put(map, key, Some(value));
        }
    }
    base
}

/// The behaviour annotation holds upstream's internal type, whose field names are the JSON
/// names capitalized (`ScaleUp`, `StabilizationWindowSeconds`): recased both ways.
fn recase(value: &Value, upper: bool) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let mut chars = key.chars();
                    let first = chars.next().map(|c| {
                        if upper {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    });
                    let key: String = first.into_iter().chain(chars).collect();
                    (key, recase(value, upper))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| recase(v, upper)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_target_is_the_cpu_utilization_metric() {
        let v1 = json!({"metadata": {"name": "web"},
                        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                                 "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50},
                        "status": {"currentReplicas": 1, "desiredReplicas": 1, "currentCPUUtilizationPercentage": 20}});
        let v2 = v1_to_v2(v1.clone());
        assert_eq!(
            v2["spec"]["metrics"],
            json!([cpu_utilization_metric(&json!(50))])
        );
        assert!(v2["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert_eq!(
            v2["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
            20
        );
        // Back: the same fields, the current metrics kept in their annotation as upstream does.
        let back = v2_to_v1(v2);
        assert_eq!(back["spec"], v1["spec"]);
        assert_eq!(back["status"]["currentCPUUtilizationPercentage"], 20);
        assert!(back["metadata"]["annotations"][CURRENT_METRICS].is_string());
        // And again to v2, unchanged.
        assert_eq!(v1_to_v2(back.clone()), v1_to_v2(v1));
    }

    #[test]
    fn no_target_is_the_default_cpu_target() {
        let v2 = v1_to_v2(json!({"metadata": {"name": "web"}, "spec": {"maxReplicas": 2}}));
        assert_eq!(
            v2["spec"]["metrics"],
            json!([cpu_utilization_metric(&json!(80))])
        );
        assert!(v2.get("status").is_none());
    }

    #[test]
    fn what_v1_cannot_say_survives_in_annotations() {
        let v2 = json!({
            "metadata": {"name": "web", "annotations": {"team": "a"}},
            "spec": {
                "maxReplicas": 5,
                "metrics": [
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}},
                    cpu_utilization_metric(&json!(60)),
                    {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}}},
                    {"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "s"}, "metric": {"name": "rps"}, "target": {"type": "Value", "value": "5"}}},
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}]}},
            },
            "status": {"conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"}]},
        });
        let v1 = v2_to_v1(v2.clone());
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        let annotations = &v1["metadata"]["annotations"];
        assert_eq!(annotations["team"], "a");
        let metrics: Value =
            serde_json::from_str(annotations[METRICS].as_str().expect("metrics")).expect("JSON");
        assert_eq!(
            metrics[0],
            json!({"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}})
        );
        assert_eq!(
            metrics[1]["resource"],
            json!({"name": "memory", "targetAverageValue": "1Gi"})
        );
        assert_eq!(metrics[2]["external"]["targetValue"], "30");
        let behavior = annotations[BEHAVIOR].as_str().expect("behavior");
        assert!(
            behavior.contains("\"ScaleDown\"")
                && behavior.contains("\"StabilizationWindowSeconds\":60"),
            "{behavior}"
        );
        assert!(
            annotations[CONDITIONS]
                .as_str()
                .expect("conditions")
                .contains("AbleToScale")
        );
        // Back to v2: the same metrics (the CPU one last, as upstream orders it), the behaviour
        // and conditions, and none of the annotations.
        let again = v1_to_v2(v1);
        let mut want = v2["spec"]["metrics"].as_array().expect("metrics").clone();
        let cpu = want.remove(2);
        want.push(cpu);
        assert_eq!(again["spec"]["metrics"], Value::Array(want));
        assert_eq!(again["spec"]["behavior"], v2["spec"]["behavior"]);
        assert_eq!(again["status"]["conditions"], v2["status"]["conditions"]);
        assert_eq!(again["metadata"]["annotations"], json!({"team": "a"}));
    }
}
