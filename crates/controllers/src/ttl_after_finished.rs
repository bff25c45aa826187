//! The TTL-after-finished controller (upstream's `ttl-after-finished-controller`): a Job with
//! `spec.ttlSecondsAfterFinished` is deleted (in the foreground, so its pods go first) that
//! many seconds after it finished, i.e. after its `Complete` or `Failed` condition turned
//! true. Before deleting, the Job is read again, in case its TTL changed meanwhile.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use crate::api_errors;
use crate::backoff::Backoff;

#[derive(Debug, thiserror::Error)]
#[error("job {namespace}/{name}: deleting it after its TTL: {source}")]
pub struct Error {
    namespace: String,
    name: String,
    #[source]
    source: kube::Error,
}

/// When the Job is due to go: `None` without a TTL, before it finished, or once it is being
/// deleted.
pub fn expires_at(job: &Job) -> Option<Timestamp> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = job
        .status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .filter(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
        .min()?;
    finished
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(i64::from(ttl)))
        .ok()
}

struct Context {
    client: Client,
    backoff: Backoff,
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (namespace, name) = (job.namespace().unwrap_or_default(), job.name_any());
    let Some(expires) = expires_at(&job) else {
        return Ok(Action::await_change());
    };
    let now = Timestamp::now();
    if now < expires {
        let wait = now.duration_until(expires).unsigned_abs();
        return Ok(Action::requeue(wait.max(Duration::from_secs(1))));
    }
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let error = |source| Error {
        namespace: namespace.clone(),
        name: name.clone(),
        source,
    };
    // The cache may be behind: judge the Job as it is now.
    let fresh = match api.get_opt(&name).await.map_err(error)? {
        Some(fresh) if expires_at(&fresh).is_some_and(|at| at <= now) => fresh,
        _ => return Ok(Action::await_change()),
    };
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: fresh.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => tracing::info!(job = %name, %namespace, "deleted a finished job after its TTL"),
        Err(e) if api_errors::is_not_found(&e) || api_errors::is_conflict(&e) => {}
        Err(e) => return Err(error(e)),
    }
    ctx.backoff.succeeded(&format!("{namespace}/{name}"));
    Ok(Action::await_change())
}

fn error_policy(job: Arc<Job>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(%error, "ttl-after-finished controller");
    let key = format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any());
    Action::requeue(ctx.backoff.failed(&key))
}

/// Runs the controller until its watch ends.
pub async fn run(client: Client) {
    let ctx = Arc::new(Context {
        client: client.clone(),
        backoff: Backoff::default(),
    });
    Controller::new(Api::<Job>::all(client), watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn job(ttl: Option<i32>, condition: Option<(&str, &str)>) -> Job {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        Job {
            spec: Some(JobSpec {
                ttl_seconds_after_finished: ttl,
                ..JobSpec::default()
            }),
            status: Some(JobStatus {
                conditions: condition.map(|(kind, status)| {
                    vec![JobCondition {
                        type_: kind.into(),
                        status: status.into(),
                        last_transition_time: Some(Time(at)),
                        ..JobCondition::default()
                    }]
                }),
                ..JobStatus::default()
            }),
            ..Job::default()
        }
    }

    #[test]
    fn finished_jobs_with_a_ttl_expire_after_it() {
        let due = expires_at(&job(Some(30), Some(("Complete", "True"))));
        assert_eq!(
            due.map(|t| t.to_string()),
            Some("2026-01-01T00:00:30Z".into())
        );
        assert!(expires_at(&job(Some(0), Some(("Failed", "True")))).is_some());
        assert_eq!(expires_at(&job(None, Some(("Complete", "True")))), None);
        assert_eq!(expires_at(&job(Some(30), None)), None);
        assert_eq!(
            expires_at(&job(Some(30), Some(("Complete", "False")))),
            None
        );
        assert_eq!(
            expires_at(&job(Some(30), Some(("Suspended", "True")))),
            None
        );
        let mut deleting = job(Some(30), Some(("Complete", "True")));
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        assert_eq!(expires_at(&deleting), None);
    }
}
