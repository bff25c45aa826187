//! Leader election through a Lease in `kube-system`, with upstream's semantics (client-go's
//! `leaderelection` with the Lease lock), so that of several servers on one store only one runs
//! the controllers (and one the scheduler) at a time:
//!
//! - A candidate takes the Lease when nobody holds it, or when its record has not changed for
//!   `leaseDurationSeconds` *as the candidate observed it*: expiry is judged by the candidate's
//!   own clock from when it last saw the record change, never by comparing the holder's
//!   timestamps with local time, so clock skew between servers does not matter.
//! - Every write is a compare-and-swap on the Lease's `resourceVersion`, so two candidates
//!   cannot both take it.
//! - The leader renews every `retry_period`. If it cannot renew within `renew_deadline`
//!   (shorter than the lease duration), it stops its work *before* anyone else may take over,
//!   and campaigns again.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

/// Where the leases live, as upstream's components keep theirs.
pub const NAMESPACE: &str = "kube-system";

/// How long a lease lasts, how long a leader keeps trying to renew, how often it tries
/// (upstream's defaults: 15 s, 10 s, 2 s).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What a candidate does with the Lease it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Another holder's lease is live: wait.
    Wait,
    /// Ours: renew it.
    Renew,
    /// Free or expired: take it.
    Take,
}

/// The rule: free, expired (as observed locally) or ours.
pub fn decide(spec: &LeaseSpec, me: &str, expired: bool) -> Decision {
    match spec.holder_identity.as_deref().unwrap_or_default() {
        holder if holder == me => Decision::Renew,
        "" => Decision::Take,
        _ if expired => Decision::Take,
        _ => Decision::Wait,
    }
}

/// The Lease's record as it was last seen, and when it was seen to change.
#[derive(Debug)]
struct Observation {
    record: String,
    changed_at: Instant,
    duration: Duration,
}

/// One candidate for one Lease.
pub struct Election {
    leases: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    observed: Option<Observation>,
}

impl std::fmt::Debug for Election {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Election")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// A process's identity as upstream's components make it: the host name and a random part.
pub fn identity(hostname: &str) -> String {
    let random: u64 = rand::random();
    format!("{hostname}_{random:016x}")
}

impl Election {
    pub fn new(client: Client, name: &str, identity: &str, timing: Timing) -> Self {
        Election {
            leases: Api::namespaced(client, NAMESPACE),
            name: name.to_string(),
            identity: identity.to_string(),
            timing,
            observed: None,
        }
    }

    /// Runs `work` whenever this candidate leads: campaigns, runs it, and stops it as soon
    /// as leadership cannot be kept, then campaigns again. When `stop` completes (or `work`
    /// ends), it stops the work, hands the Lease back so that a successor need not wait for
    /// it to expire, and returns.
    pub async fn run<F, Fut>(mut self, mut work: F, stop: impl Future<Output = ()>)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = self.acquire() => {}
                () = &mut stop => return,
            }
            tracing::info!(lease = %self.name, identity = %self.identity, "acquired the lease");
            let mut task = tokio::spawn(work());
            tokio::select! {
                () = self.keep() => {
                    task.abort();
                    let _ = (&mut task).await;
                    tracing::warn!(lease = %self.name, identity = %self.identity,
                        "lost the lease; stopped, campaigning again");
                }
                _ = &mut task => {
                    tracing::warn!(lease = %self.name, "the work under the lease ended");
                    self.release().await;
                    return;
                }
                () = &mut stop => {
                    task.abort();
                    let _ = (&mut task).await;
                    self.release().await;
                    return;
                }
            }
        }
    }

    /// Hands the Lease back, as upstream's `ReleaseOnCancel`: no holder, a one-second duration.
    async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.leases.get_opt(&self.name).await else {
            return;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        let now = MicroTime(Timestamp::now());
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(String::new()),
            lease_duration_seconds: Some(1),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..spec
        });
        match self
            .leases
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.name, "released the lease"),
            Err(e) => tracing::debug!(lease = %self.name, error = %e, "releasing the lease"),
        }
    }

    /// Returns once this candidate holds the Lease.
    async fn acquire(&mut self) {
        loop {
            if self.try_acquire_or_renew().await {
                return;
            }
            // Upstream jitters campaign retries by up to 1.2 times the period.
            let jitter = self
                .timing
                .retry_period
                .mul_f64(rand::random::<f64>() * 1.2);
            tokio::time::sleep(self.timing.retry_period + jitter).await;
        }
    }

    /// Renews every retry period; returns when a renewal did not succeed in time.
    async fn keep(&mut self) {
        loop {
            tokio::time::sleep(self.timing.retry_period).await;
            let deadline = self.timing.renew_deadline;
            let renewed = tokio::time::timeout(deadline, async {
                while !self.try_acquire_or_renew().await {
                    tokio::time::sleep(self.timing.retry_period).await;
                }
            })
            .await;
            if renewed.is_err() {
                return;
            }
        }
    }

    /// One attempt: reads the Lease and takes or renews it if the rule allows. A failed
    /// request counts as not holding it.
    async fn try_acquire_or_renew(&mut self) -> bool {
        let now = MicroTime(Timestamp::now());
        let current = match self.leases.get_opt(&self.name).await {
            Ok(current) => current,
            Err(e) => {
                tracing::debug!(lease = %self.name, error = %e, "reading the lease");
                return false;
            }
        };
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(NAMESPACE.to_string()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.held_spec(None, now)),
            };
            return self.write(self.leases.create(&PostParams::default(), &lease).await);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let expired = self.observe(&spec);
        let new_spec = match decide(&spec, &self.identity, expired) {
            Decision::Wait => return false,
            Decision::Renew => LeaseSpec {
                renew_time: Some(now),
                ..spec
            },
            Decision::Take => self.held_spec(Some(&spec), now),
        };
        lease.spec = Some(new_spec);
        // The resourceVersion read makes this a compare-and-swap.
        self.write(
            self.leases
                .replace(&self.name, &PostParams::default(), &lease)
                .await,
        )
    }

    /// The Lease's spec when this candidate takes it (after `previous`, if any).
    fn held_spec(&self, previous: Option<&LeaseSpec>, now: MicroTime) -> LeaseSpec {
        let transitions = previous.map_or(0, |p| {
            let changed = p
                .holder_identity
                .as_deref()
                .is_some_and(|h| !h.is_empty() && h != self.identity);
            p.lease_transitions.unwrap_or(0) + i32::from(changed)
        });
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.timing.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Records the Lease as seen now; returns whether it has expired by local observation.
    fn observe(&mut self, spec: &LeaseSpec) -> bool {
        let record = serde_json::to_string(spec).unwrap_or_default();
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        )
        .max(Duration::from_secs(1));
        match &mut self.observed {
            Some(seen) if seen.record == record => {}
            _ => {
                self.observed = Some(Observation {
                    record,
                    changed_at: Instant::now(),
                    duration,
                });
            }
        }
        self.observed
            .as_ref()
            .is_some_and(|seen| seen.changed_at.elapsed() >= seen.duration)
    }

    /// After a create or replace: whether it was written, remembering what was.
    fn write(&mut self, result: kube::Result<Lease>) -> bool {
        match result {
            Ok(written) => {
                let spec = written.spec.unwrap_or_default();
                self.observe(&spec);
                true
            }
            Err(e) => {
                tracing::debug!(lease = %self.name, error = %e, "writing the lease");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_string()),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_live_lease_of_another_is_left_alone() {
        assert_eq!(decide(&held_by("b"), "a", false), Decision::Wait);
        assert_eq!(decide(&held_by("b"), "a", true), Decision::Take);
        assert_eq!(decide(&held_by(""), "a", false), Decision::Take);
        assert_eq!(decide(&LeaseSpec::default(), "a", false), Decision::Take);
        assert_eq!(decide(&held_by("a"), "a", false), Decision::Renew);
        assert_eq!(decide(&held_by("a"), "a", true), Decision::Renew);
    }

    #[test]
    fn identities_differ_per_process_start() {
        let (one, two) = (identity("node-1"), identity("node-1"));
        assert!(one.starts_with("node-1_"));
        assert_ne!(one, two);
    }
}
