//! The HorizontalPodAutoscaler printer. Upstream prints the internal (v2-shaped) object, so an
//! autoscaling/v1 object is first read as upstream converts it: its CPU target and the metrics
//! kept in `autoscaling.alpha.kubernetes.io/*` annotations become v2 metrics.

use serde_json::Value;

use super::cells::{self, int, items, optional_int, text};
use super::{AGE, Column, NAME, Printer, quantity};

pub(super) const HORIZONTAL_POD_AUTOSCALER: Printer =
    Printer::new(HORIZONTAL_POD_AUTOSCALER_COLUMNS, horizontal_pod_autoscaler);

const HORIZONTAL_POD_AUTOSCALER_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Reference",
        "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.",
    ),
    Column::string(
        "Targets",
        "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond.",
    ),
    Column::string(
        "MinPods",
        "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available.",
    ),
    Column::string(
        "MaxPods",
        "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas.",
    ),
    Column::string(
        "Replicas",
        "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.",
    ),
    AGE,
];

/// Where autoscaling/v1 keeps the metrics it has no fields for, as JSON.
const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";

/// The CPU utilization autoscalers target when no metric is given.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// At most this many metrics are shown, then how many more there are.
const MAX_METRICS: usize = 2;

/// A metric's target or current value; quantities are already printed, `None` is a nil pointer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Values {
    value: Option<String>,
    average_value: Option<String>,
    average_utilization: Option<i64>,
}

/// One metric's source, as the internal type has it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    External,
    Object,
    Pods,
    Resource,
    ContainerResource,
    Other,
}

/// A spec metric: its source, its resource name (for Resource and ContainerResource) and its
/// target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Metric {
    source: Source,
    name: String,
    target: Values,
}

/// A status metric: the current values under each source it reports (one, normally).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Current(Vec<(Source, Values)>);

impl Current {
    fn of(&self, source: &Source) -> Option<&Values> {
        self.0.iter().find(|(s, _)| s == source).map(|(_, v)| v)
    }
}

fn horizontal_pod_autoscaler(object: &Value, now: i64) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        text(object, "/spec/scaleTargetRef/kind"),
        text(object, "/spec/scaleTargetRef/name")
    );
    let (metrics, currents) = if is_v1(object) {
        v1_metrics(object)
    } else {
        v2_metrics(object)
    };
    // minReplicas defaults to 1.
    let min_pods = optional_int(object, "/spec/minReplicas").unwrap_or(1);
    cells![
        cells::name(object),
        reference,
        format_metrics(&metrics, &currents),
        min_pods.to_string(),
        int(object, "/spec/maxReplicas"),
        int(object, "/status/currentReplicas"),
        cells::age(object, now),
    ]
}

/// True for an autoscaling/v1 object: by its apiVersion, or, when that is absent (list items),
/// by fields only v1 has.
fn is_v1(object: &Value) -> bool {
    match cells::optional_text(object, "/apiVersion") {
        Some(api_version) => api_version == "autoscaling/v1",
        None => {
            cells::is_set(object, "/spec/targetCPUUtilizationPercentage")
                || cells::is_set(object, "/status/currentCPUUtilizationPercentage")
                || cells::annotation(object, METRICS_ANNOTATION).is_some()
                || cells::annotation(object, CURRENT_METRICS_ANNOTATION).is_some()
        }
    }
}

fn default_metrics() -> Vec<Metric> {
    vec![cpu_utilization(DEFAULT_CPU_UTILIZATION)]
}

fn cpu_utilization(percent: i64) -> Metric {
    Metric {
        source: Source::Resource,
        name: "cpu".to_owned(),
        target: Values {
            average_utilization: Some(percent),
            ..Values::default()
        },
    }
}

fn source(kind: &str) -> Source {
    match kind {
        "External" => Source::External,
        "Object" => Source::Object,
        "Pods" => Source::Pods,
        "Resource" => Source::Resource,
        "ContainerResource" => Source::ContainerResource,
        _ => Source::Other,
    }
}

/// The JSON key of a source's details in a metric.
fn source_key(source: &Source) -> &'static str {
    match source {
        Source::External => "external",
        Source::Object => "object",
        Source::Pods => "pods",
        Source::Resource => "resource",
        Source::ContainerResource => "containerResource",
        Source::Other => "",
    }
}

const SOURCES: [Source; 5] = [
    Source::External,
    Source::Object,
    Source::Pods,
    Source::Resource,
    Source::ContainerResource,
];

/// A quantity held by value: present even when zero.
fn required_quantity(details: &Value, key: &str) -> Option<String> {
    Some(quantity::or_zero(details.get(key)))
}

/// A quantity held by pointer.
fn optional_quantity(details: &Value, key: &str) -> Option<String> {
    details
        .get(key)
        .filter(|v| !v.is_null())
        .map(|v| quantity::or_nil(Some(v)))
}

/// Reads autoscaling/v2 `MetricTarget` / `MetricValueStatus` fields.
fn v2_values(values: Option<&Value>) -> Values {
    let values = values.unwrap_or(&Value::Null);
    Values {
        value: optional_quantity(values, "value"),
        average_value: optional_quantity(values, "averageValue"),
        average_utilization: values.get("averageUtilization").and_then(Value::as_i64),
    }
}

fn v2_metrics(object: &Value) -> (Vec<Metric>, Vec<Current>) {
    let specs = items(object, "/spec/metrics");
    // An autoscaler without metrics defaults to the CPU target.
    let metrics = if specs.is_empty() {
        default_metrics()
    } else {
        specs
            .iter()
            .map(|spec| {
                let source = source(text(spec, "/type"));
                let details = spec.get(source_key(&source)).unwrap_or(&Value::Null);
                Metric {
                    name: text(details, "/name").to_owned(),
                    target: v2_values(details.get("target")),
                    source,
                }
            })
            .collect()
    };
    let currents = items(object, "/status/currentMetrics")
        .iter()
        .map(|status| current(status, |_, details| v2_values(details.get("current"))))
        .collect();
    (metrics, currents)
}

/// A status entry's current values under each source it has details for.
fn current(status: &Value, read: impl Fn(&Source, &Value) -> Values) -> Current {
    Current(
        SOURCES
            .into_iter()
            .filter_map(|source| {
                let details = status.get(source_key(&source)).filter(|d| d.is_object())?;
                let values = read(&source, details);
                Some((source, values))
            })
            .collect(),
    )
}

fn v1_metrics(object: &Value) -> (Vec<Metric>, Vec<Current>) {
    let mut metrics: Vec<Metric> = annotation_list(object, METRICS_ANNOTATION)
        .iter()
        .map(v1_metric)
        .collect();
    if let Some(percent) = optional_int(object, "/spec/targetCPUUtilizationPercentage") {
        metrics.push(cpu_utilization(percent));
    }
    if metrics.is_empty() {
        metrics = default_metrics();
    }
    let currents = match cells::annotation(object, CURRENT_METRICS_ANNOTATION)
        .and_then(|a| serde_json::from_str::<Vec<Value>>(a).ok())
    {
        Some(list) => list.iter().map(|s| current(s, v1_current)).collect(),
        None => optional_int(object, "/status/currentCPUUtilizationPercentage")
            .map(|percent| {
                Current(vec![(
                    Source::Resource,
                    Values {
                        average_utilization: Some(percent),
                        ..Values::default()
                    },
                )])
            })
            .into_iter()
            .collect(),
    };
    (metrics, currents)
}

/// The JSON list in an annotation; none when absent or not a list of metrics, which upstream's
/// conversion ignores too.
fn annotation_list(object: &Value, key: &str) -> Vec<Value> {
    cells::annotation(object, key)
        .and_then(|a| serde_json::from_str::<Vec<Value>>(a).ok())
        .unwrap_or_default()
}

/// An autoscaling/v1 `MetricSpec` as upstream converts it.
fn v1_metric(spec: &Value) -> Metric {
    let source = source(text(spec, "/type"));
    let d = spec.get(source_key(&source)).unwrap_or(&Value::Null);
    let target = match source {
        Source::External => Values {
            value: optional_quantity(d, "targetValue"),
            average_value: optional_quantity(d, "targetAverageValue"),
            average_utilization: None,
        },
        Source::Object => Values {
            value: required_quantity(d, "targetValue"),
            average_value: optional_quantity(d, "averageValue"),
            average_utilization: None,
        },
        Source::Pods => Values {
            average_value: required_quantity(d, "targetAverageValue"),
            ..Values::default()
        },
        Source::Resource | Source::ContainerResource => Values {
            average_value: optional_quantity(d, "targetAverageValue"),
            average_utilization: d.get("targetAverageUtilization").and_then(Value::as_i64),
            value: None,
        },
        Source::Other => Values::default(),
    };
    Metric {
        name: text(d, "/name").to_owned(),
        source,
        target,
    }
}

/// An autoscaling/v1 `MetricStatus`'s details as upstream converts them.
fn v1_current(source: &Source, d: &Value) -> Values {
    match source {
        Source::External => Values {
            value: required_quantity(d, "currentValue"),
            average_value: optional_quantity(d, "currentAverageValue"),
            average_utilization: None,
        },
        Source::Object => Values {
            value: required_quantity(d, "currentValue"),
            average_value: optional_quantity(d, "averageValue"),
            average_utilization: None,
        },
        Source::Pods => Values {
            average_value: required_quantity(d, "currentAverageValue"),
            ..Values::default()
        },
        Source::Resource | Source::ContainerResource => Values {
            average_value: required_quantity(d, "currentAverageValue"),
            average_utilization: d.get("currentAverageUtilization").and_then(Value::as_i64),
            value: None,
        },
        Source::Other => Values::default(),
    }
}

/// Upstream's `formatHPAMetrics`: each spec metric with the status metric at the same index,
/// `current/target`, the first two, then how many more.
fn format_metrics(metrics: &[Metric], currents: &[Current]) -> String {
    if metrics.is_empty() {
        return "<none>".to_owned();
    }
    let unknown = || "<unknown>".to_owned();
    let nil = || "<nil>".to_owned();
    let shown: Vec<String> = metrics
        .iter()
        .enumerate()
        .map(|(i, metric)| {
            // Paired by index, not by source, as upstream does.
            let current = currents.get(i).and_then(|c| c.of(&metric.source));
            let target = &metric.target;
            match metric.source {
                Source::External | Source::Object => match &target.average_value {
                    Some(average) => {
                        let now = current.and_then(|c| c.average_value.clone());
                        format!("{}/{average} (avg)", now.unwrap_or_else(unknown))
                    }
                    None => {
                        let now = current.map(|c| c.value.clone().unwrap_or_else(nil));
                        let goal = target.value.clone().unwrap_or_else(nil);
                        format!("{}/{goal}", now.unwrap_or_else(unknown))
                    }
                },
                Source::Pods => {
                    let now = current.map(|c| c.average_value.clone().unwrap_or_else(nil));
                    let goal = target.average_value.clone().unwrap_or_else(nil);
                    format!("{}/{goal}", now.unwrap_or_else(unknown))
                }
                Source::Resource | Source::ContainerResource => match &target.average_value {
                    Some(average) => {
                        let now = current.map(|c| c.average_value.clone().unwrap_or_else(nil));
                        format!("{}: {}/{average}", metric.name, now.unwrap_or_else(unknown))
                    }
                    None => {
                        let now = current
                            .and_then(|c| c.average_utilization)
                            .map_or_else(unknown, |u| format!("{u}%"));
                        let goal = target
                            .average_utilization
                            .map_or_else(|| "<auto>".to_owned(), |u| format!("{u}%"));
                        format!("{}: {now}/{goal}", metric.name)
                    }
                },
                Source::Other => "<unknown type>".to_owned(),
            }
        })
        .collect();
    if shown.len() > MAX_METRICS {
        let more = shown.len() - MAX_METRICS;
        format!("{} + {more} more...", shown[..MAX_METRICS].join(", "))
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago};
    use serde_json::json;

    fn hpa(api_version: Option<&str>, annotations: Value, spec: Value, status: Value) -> Value {
        let mut object = json!({
            "metadata": {"name": "web", "creationTimestamp": minutes_ago(7),
                         "annotations": annotations},
            "spec": spec,
            "status": status,
        });
        if let Some(api_version) = api_version {
            object["apiVersion"] = json!(api_version);
        }
        object
    }

    fn target() -> Value {
        json!({"kind": "Deployment", "name": "web"})
    }

    #[test]
    fn prints_v2_autoscalers() {
        let cases = [
            (
                "cpu utilization with a reading",
                json!({"scaleTargetRef": target(), "minReplicas": 2, "maxReplicas": 10,
                       "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                           "target": {"type": "Utilization", "averageUtilization": 80}}}]}),
                json!({"currentReplicas": 3, "currentMetrics": [{"type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": 20,
                                                            "averageValue": "120m"}}}]}),
                json!(["web", "Deployment/web", "cpu: 20%/80%", "2", 10, 3, "7m"]),
            ),
            (
                "no reading yet, defaults",
                json!({"scaleTargetRef": target(), "maxReplicas": 5}),
                json!({}),
                json!([
                    "web",
                    "Deployment/web",
                    "cpu: <unknown>/80%",
                    "1",
                    5,
                    0,
                    "7m"
                ]),
            ),
            (
                "every source, paired by index, three shown as two and more",
                json!({"scaleTargetRef": target(), "minReplicas": 1, "maxReplicas": 4,
                "metrics": [
                    {"type": "Pods", "pods": {"metric": {"name": "rps"},
                        "target": {"type": "AverageValue", "averageValue": "1000m"}}},
                    {"type": "External", "external": {"metric": {"name": "queue"},
                        "target": {"type": "AverageValue", "averageValue": "30"}}},
                    {"type": "Object", "object": {"metric": {"name": "hits"},
                        "target": {"type": "Value", "value": "10k"}}},
                ]}),
                json!({"currentMetrics": [
                    {"type": "Pods", "pods": {"metric": {"name": "rps"},
                                              "current": {"averageValue": "1500m"}}},
                    {"type": "External", "external": {"metric": {"name": "queue"},
                                                      "current": {"value": "7"}}},
                ]}),
                json!([
                    "web",
                    "Deployment/web",
                    "1500m/1, <unknown>/30 (avg) + 1 more...",
                    "1",
                    4,
                    0,
                    "7m"
                ]),
            ),
            (
                "object and container resource values",
                json!({"scaleTargetRef": target(), "maxReplicas": 4, "metrics": [
                    {"type": "Object", "object": {"target": {"type": "Value", "value": "10k"}}},
                    {"type": "ContainerResource", "containerResource": {"name": "memory",
                        "container": "app",
                        "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
                ]}),
                json!({"currentMetrics": [
                    {"type": "Object", "object": {"current": {"value": "2500"}}},
                    {"type": "Resource", "resource": {"name": "memory",
                                                      "current": {"averageValue": "1Gi"}}},
                ]}),
                json!([
                    "web",
                    "Deployment/web",
                    "2500/10k, memory: <unknown>/1Gi",
                    "1",
                    4,
                    0,
                    "7m"
                ]),
            ),
            (
                "a resource target without utilization or value, and an unknown type",
                json!({"scaleTargetRef": target(), "maxReplicas": 2, "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}},
                    {"type": "Custom"},
                ]}),
                json!({}),
                json!([
                    "web",
                    "Deployment/web",
                    "cpu: <unknown>/<auto>, <unknown type>",
                    "1",
                    2,
                    0,
                    "7m"
                ]),
            ),
        ];
        for (case, spec, status, want) in cases {
            for api_version in [Some("autoscaling/v2"), None] {
                let object = hpa(api_version, json!({}), spec.clone(), status.clone());
                let got = Value::from(horizontal_pod_autoscaler(&object, NOW));
                assert_eq!(got, want, "{case} ({api_version:?})");
            }
        }
    }

    #[test]
    fn prints_v1_autoscalers_as_upstream_converts_them() {
        let cases = [
            (
                "cpu target and reading",
                json!({}),
                json!({"scaleTargetRef": target(), "minReplicas": 1, "maxReplicas": 10,
                       "targetCPUUtilizationPercentage": 50}),
                json!({"currentReplicas": 2, "currentCPUUtilizationPercentage": 35}),
                "cpu: 35%/50%",
            ),
            (
                "no cpu target: the default",
                json!({}),
                json!({"scaleTargetRef": target(), "maxReplicas": 10}),
                json!({}),
                "cpu: <unknown>/80%",
            ),
            (
                "annotated metrics come first, then the cpu target",
                json!({
                    METRICS_ANNOTATION: r#"[{"type":"Pods","pods":{"metricName":"rps","targetAverageValue":"100"}}]"#,
                    CURRENT_METRICS_ANNOTATION: r#"[{"type":"Pods","pods":{"metricName":"rps","currentAverageValue":"42"}},{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":12,"currentAverageValue":"50m"}}]"#,
                }),
                json!({"scaleTargetRef": target(), "maxReplicas": 10,
                       "targetCPUUtilizationPercentage": 60}),
                json!({"currentCPUUtilizationPercentage": 99}),
                "42/100, cpu: 12%/60%",
            ),
            (
                "an unreadable annotation is ignored",
                json!({METRICS_ANNOTATION: "not json"}),
                json!({"scaleTargetRef": target(), "maxReplicas": 10,
                       "targetCPUUtilizationPercentage": 60}),
                json!({"currentCPUUtilizationPercentage": 30}),
                "cpu: 30%/60%",
            ),
        ];
        for (case, annotations, spec, status, want) in cases {
            let object = hpa(
                Some("autoscaling/v1"),
                annotations.clone(),
                spec.clone(),
                status.clone(),
            );
            assert_eq!(horizontal_pod_autoscaler(&object, NOW)[2], want, "{case}");
            // List items carry no apiVersion: the v1 fields tell.
            let object = hpa(None, annotations, spec, status);
            assert_eq!(
                horizontal_pod_autoscaler(&object, NOW)[2],
                want,
                "{case} (no apiVersion)"
            );
        }
    }

    #[test]
    fn no_metrics_prints_none() {
        assert_eq!(format_metrics(&[], &[]), "<none>");
    }
}
