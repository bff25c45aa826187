//! The Prometheus text format (version 0.0.4) the components' `/metrics` answer in: metric
//! headers and histograms with cumulative buckets.

use std::fmt::Write;

/// The content type of a `/metrics` answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes a metric's `# HELP` and `# TYPE` lines.
pub fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one sample; `labels` is `a="x",b="y"` or empty.
pub fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// A histogram of durations in seconds over fixed bucket bounds.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bound, the observations at or below it (cumulative, as the format wants).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, seconds: f64) {
        for (bound, count) in self.bounds.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Writes the `_bucket`, `_sum` and `_count` samples under `name` with `labels`.
    pub fn write(&self, out: &mut String, name: &str, labels: &str) {
        let with = |extra: &str| match (labels.is_empty(), extra.is_empty()) {
            (true, _) => extra.to_string(),
            (false, true) => labels.to_string(),
            (false, false) => format!("{labels},{extra}"),
        };
        let bucket = format!("{name}_bucket");
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            sample(out, &bucket, &with(&format!("le=\"{bound}\"")), count);
        }
        sample(out, &bucket, &with("le=\"+Inf\""), self.count);
        sample(out, &format!("{name}_sum"), labels, self.sum);
        sample(out, &format!("{name}_count"), labels, self.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_with_sum_and_count() {
        let mut histogram = Histogram::new(&[0.1, 1.0]);
        histogram.observe(0.05);
        histogram.observe(0.5);
        histogram.observe(3.0);
        let mut out = String::new();
        header(&mut out, "t_seconds", "A test.", "histogram");
        histogram.write(&mut out, "t_seconds", "op=\"x\"");
        assert_eq!(
            out,
            "# HELP t_seconds A test.\n# TYPE t_seconds histogram\n\
             t_seconds_bucket{op=\"x\",le=\"0.1\"} 1\n\
             t_seconds_bucket{op=\"x\",le=\"1\"} 2\n\
             t_seconds_bucket{op=\"x\",le=\"+Inf\"} 3\n\
             t_seconds_sum{op=\"x\"} 3.55\n\
             t_seconds_count{op=\"x\"} 3\n"
        );
        let mut bare = String::new();
        Histogram::new(&[1.0]).write(&mut bare, "u", "");
        assert!(bare.starts_with("u_bucket{le=\"1\"} 0\n"), "{bare}");
        assert!(bare.contains("u_count 0\n"), "{bare}");
    }
}
