//! `/metrics`: request counts and latency histograms by verb and resource, in the Prometheus
//! text format, under upstream's metric names.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use cox_api::prometheus::{self, Histogram};
use http::{HeaderValue, Response, StatusCode, header};

use crate::http::Body;

/// Histogram bucket bounds in seconds (a subset of upstream's).
const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
];

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
        inner
            .latency
            .entry((verb.to_owned(), resource.to_owned()))
            .or_insert_with(|| Histogram::new(BUCKETS))
            .observe(took.as_secs_f64());
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(inner) = self.0.lock() else { return out };
        prometheus::header(
            &mut out,
            "apiserver_request_total",
            "Counter of apiserver requests broken out for each verb, API resource and HTTP response code.",
            "counter",
        );
        for ((verb, resource, code), count) in &inner.requests {
            let labels = format!("code=\"{code}\",resource=\"{resource}\",verb=\"{verb}\"");
            prometheus::sample(&mut out, "apiserver_request_total", &labels, count);
        }
        prometheus::header(
            &mut out,
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb and resource.",
            "histogram",
        );
        for ((verb, resource), histogram) in &inner.latency {
            let labels = format!("resource=\"{resource}\",verb=\"{verb}\"");
            histogram.write(&mut out, "apiserver_request_duration_seconds", &labels);
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
            HeaderValue::from_static(prometheus::CONTENT_TYPE),
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
