//! `/metrics`: request counts and latency histograms by verb and resource, in the Prometheus
//! text format, under upstream's metric names.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};

use crate::http::Body;

/// Histogram bucket bounds in seconds (a subset of upstream's).
const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
}

#[derive(Debug, Default)]
pub struct Metrics(Mutex<Inner>);

impl Metrics {
    pub fn record(&self, verb: &str, resource: &str, code: u16, took: Duration) {
        let Ok(mut inner) = self.0.lock() else { return };
        *inner
            .requests
            .entry((verb.to_owned(), resource.to_owned(), code))
            .or_default() += 1;
        let histogram = inner
            .latency
            .entry((verb.to_owned(), resource.to_owned()))
            .or_default();
        if histogram.counts.is_empty() {
            histogram.counts = vec![0; BUCKETS.len()];
        }
        let seconds = took.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(inner) = self.0.lock() else { return out };
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, API resource and HTTP response code.\n");
        out.push_str("# TYPE apiserver_request_total counter\n");
        for ((verb, resource, code), count) in &inner.requests {
            let _ = writeln!(
                out,
                "apiserver_request_total{{code=\"{code}\",resource=\"{resource}\",verb=\"{verb}\"}} {count}"
            );
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb and resource.\n");
        out.push_str("# TYPE apiserver_request_duration_seconds histogram\n");
        for ((verb, resource), histogram) in &inner.latency {
            let labels = format!("resource=\"{resource}\",verb=\"{verb}\"");
            for (bound, count) in BUCKETS.iter().zip(&histogram.counts) {
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }
        out
    }

    pub fn response(&self) -> Response<Body> {
        use http_body_util::BodyExt;
        let mut response =
            Response::new(http_body_util::Full::new(bytes::Bytes::from(self.render())).boxed());
        *response.status_mut() = StatusCode::OK;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_buckets() {
        let metrics = Metrics::default();
        metrics.record("list", "pods", 200, Duration::from_millis(3));
        metrics.record("list", "pods", 200, Duration::from_millis(300));
        metrics.record("get", "pods", 404, Duration::from_millis(1));
        let text = metrics.render();
        assert!(
            text.contains(
                "apiserver_request_total{code=\"200\",resource=\"pods\",verb=\"list\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("apiserver_request_total{code=\"404\",resource=\"pods\",verb=\"get\"} 1")
        );
        assert!(text.contains("apiserver_request_duration_seconds_bucket{resource=\"pods\",verb=\"list\",le=\"0.005\"} 1"));
        assert!(text.contains("apiserver_request_duration_seconds_bucket{resource=\"pods\",verb=\"list\",le=\"0.4\"} 2"));
        assert!(text.contains(
            "apiserver_request_duration_seconds_count{resource=\"pods\",verb=\"list\"} 2"
        ));
    }
}
