//! Creating and deleting pods to reach `spec.replicas`: upstream's `manageReplicas`.
//!
//! At most [`BURST_REPLICAS`] per sync. Creations go in slow-start batches of 1, 2, 4, ...
//! (upstream's `slowStartBatch`), stopping after a batch with a failure, so that a template
//! the API refuses costs one request, not hundreds. The expectations are raised before the
//! requests and lowered for each creation or deletion that failed, which will never be seen.

use std::sync::Arc;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use tokio::time::Instant;

use super::{Context, Error, ReplicaKind, describe, ranking};
use crate::{api_errors, owner, pods};

/// Upstream's `BurstReplicas`: the most pods one sync creates or deletes.
pub const BURST_REPLICAS: usize = 500;

pub(super) async fn replicas<K: ReplicaKind>(
    ctx: &Context<K>,
    set: &K,
    owned: &[Arc<Pod>],
) -> Result<(), Error> {
    let desired = usize::try_from(set.replicas()).unwrap_or(0);
    if owned.len() < desired {
        create(ctx, set, (desired - owned.len()).min(BURST_REPLICAS)).await
    } else if owned.len() > desired {
        delete(ctx, set, owned, (owned.len() - desired).min(BURST_REPLICAS)).await
    } else {
        Ok(())
    }
}

/// The sizes of the slow-start batches for `count` creations: 1, 2, 4, ... then the rest.
pub fn batches(count: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let (mut left, mut size) = (count, 1);
    while left > 0 {
        let batch = size.min(left);
        sizes.push(batch);
        left -= batch;
        size = size.saturating_mul(2);
    }
    sizes
}

async fn create<K: ReplicaKind>(ctx: &Context<K>, set: &K, count: usize) -> Result<(), Error> {
    let object = describe(set);
    let template = set.template().ok_or_else(|| Error::NoTemplate {
        object: object.clone(),
    })?;
    let uid = set.meta().uid.clone().unwrap_or_default();
    let namespace = set.namespace().unwrap_or_default();
    let pod = pods::from_template(template, owner::controller_ref(set), &namespace);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    ctx.expectations
        .expect_creations(&uid, count, Instant::now());
    let mut created = 0;
    let mut failures = Vec::new();
    // The namespace is going away: no more creations, and no failure to report.
    let mut terminating = false;
    let params = PostParams::default();
    for batch in batches(count) {
        let results = join_all((0..batch).map(|_| api.create(&params, &pod))).await;
        for result in results {
            match result {
                Ok(pod) => {
                    created += 1;
                    let message = format!("Created pod: {}", pod.name_any());
                    ctx.events.normal(set, "SuccessfulCreate", &message).await;
                }
                Err(error) if api_errors::is_namespace_terminating(&error) => terminating = true,
                Err(error) => {
                    let message = format!("Error creating: {}", api_errors::message(&error));
                    ctx.events.warning(set, "FailedCreate", &message).await;
                    failures.push(error);
                }
            }
        }
        if !failures.is_empty() || terminating {
            break;
        }
    }
    // What was not created will never be seen.
    for _ in created..count {
        ctx.expectations.creation_observed(&uid);
    }
    let failed = failures.len();
    match failures.into_iter().next() {
        Some(source) => Err(Error::Pods {
            object,
            failed,
            attempted: created + failed,
            source,
        }),
        None => Ok(()),
    }
}

async fn delete<K: ReplicaKind>(
    ctx: &Context<K>,
    set: &K,
    owned: &[Arc<Pod>],
    count: usize,
) -> Result<(), Error> {
    let uid = set.meta().uid.clone().unwrap_or_default();
    let namespace = set.namespace().unwrap_or_default();
    let related = related_pods(ctx, set);
    let victims = ranking::pods_to_delete(owned, &related, count, Timestamp::now());
    ctx.expectations.expect_deletions(
        &uid,
        victims.iter().filter_map(|p| p.metadata.uid.clone()),
        Instant::now(),
    );
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let params = DeleteParams::default();
    let results = join_all(
        victims
            .iter()
            .map(|pod| api.delete(pod.metadata.name.as_deref().unwrap_or_default(), &params)),
    )
    .await;
    let mut failures = Vec::new();
    for (pod, result) in victims.iter().zip(results) {
        let name = pod.name_any();
        match result {
            Ok(_) => {
                let message = format!("Deleted pod: {name}");
                ctx.events.normal(set, "SuccessfulDelete", &message).await;
            }
            Err(error) => {
                ctx.expectations
                    .deletion_observed(&uid, pod.metadata.uid.as_deref().unwrap_or_default());
                if !api_errors::is_not_found(&error) {
                    let message = format!("Error deleting: {}", api_errors::message(&error));
                    ctx.events.warning(set, "FailedDelete", &message).await;
                    failures.push(error);
                }
            }
        }
    }
    let failed = failures.len();
    match failures.into_iter().next() {
        Some(source) => Err(Error::Pods {
            object: describe(set),
            failed,
            attempted: victims.len(),
            source,
        }),
        None => Ok(()),
    }
}

/// The pods of every set with the same controller as `set` (for a ReplicaSet of a
/// Deployment: the pods of all its ReplicaSets), by their selectors, as upstream's
/// `getIndirectlyRelatedPods`. A set without a controller has none.
fn related_pods<K: ReplicaKind>(ctx: &Context<K>, set: &K) -> Vec<Arc<Pod>> {
    let Some(controller) = owner::controller_of(set.meta()) else {
        return Vec::new();
    };
    let namespace = set.namespace();
    let siblings: Vec<_> = ctx
        .sets
        .state()
        .into_iter()
        .filter(|s| {
            s.namespace() == namespace && owner::is_controlled_by(s.meta(), &controller.uid)
        })
        .map(|s| s.selector())
        .collect();
    ctx.pods
        .state()
        .into_iter()
        .filter(|p| p.namespace() == namespace)
        .filter(|p| siblings.iter().any(|selector| selector.matches(p.labels())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_batches_double() {
        assert_eq!(batches(0), Vec::<usize>::new());
        assert_eq!(batches(1), [1]);
        assert_eq!(batches(10), [1, 2, 4, 3]);
        assert_eq!(batches(15), [1, 2, 4, 8]);
    }
}
