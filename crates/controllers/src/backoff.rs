//! Per-object retry delays after failed reconciles: exponential from 5 ms, capped, reset by a
//! success. Upstream's controllers requeue failed keys through the work queue's default
//! per-item rate limiter (`workqueue.DefaultTypedControllerRateLimiter`); a conflict from a
//! stale cache is retried almost at once, a persistent failure less and less often.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

const BASE: Duration = Duration::from_millis(5);
/// Lower than upstream's 1000 s: one server, one operator watching.
const MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// The delay before retrying `key` after one more failure.
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let count = failures.entry(key.to_owned()).or_default();
        let delay = BASE
            .checked_mul(1u32.checked_shl(*count).unwrap_or(u32::MAX))
            .map_or(MAX, |d| d.min(MAX));
        *count = count.saturating_add(1);
        delay
    }

    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let backoff = Backoff::default();
        assert_eq!(backoff.failed("a"), Duration::from_millis(5));
        assert_eq!(backoff.failed("a"), Duration::from_millis(10));
        assert_eq!(backoff.failed("a"), Duration::from_millis(20));
        assert_eq!(backoff.failed("b"), Duration::from_millis(5));
        for _ in 0..40 {
            assert!(backoff.failed("a") <= MAX);
        }
        assert_eq!(backoff.failed("a"), MAX);
        backoff.succeeded("a");
        assert_eq!(backoff.failed("a"), Duration::from_millis(5));
    }
}
