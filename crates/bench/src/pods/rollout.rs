//! A Deployment's life as `kubectl rollout status` sees it: the time from its creation until
//! all its replicas are available, then from a change of its pod template (an annotation:
//! there is one image, so this stands in for `kubectl set image`) until the rolling update is
//! complete, with the default strategy (maxSurge and maxUnavailable 25%).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use serde_json::json;

use super::cluster::NAMESPACE;

const NAME: &str = "bench-rollout";

#[derive(Debug, Clone)]
pub struct Rollout {
    pub replicas: i32,
    /// Create → every replica available.
    pub available: Duration,
    /// Template change → every replica updated and available, the old ones gone.
    pub updated: Duration,
}

pub async fn measure(
    client: &kube::Client,
    replicas: i32,
    template: &serde_json::Value,
    timeout: Duration,
) -> Result<Rollout> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let mut template = template.clone();
    template["metadata"]["labels"][super::RUN_LABEL] = NAME.into();
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {(super::RUN_LABEL): NAME}},
            "template": template,
        },
    }))?;

    let created = Instant::now();
    let made = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .context("creating the deployment")?;
    complete(&deployments, generation(&made), replicas, timeout).await?;
    let available = created.elapsed();

    let change = json!({"spec": {"template": {"metadata": {"annotations": {
        "bench.coxswain.dev/revision": "2",
    }}}}});
    let changed = Instant::now();
    let patched = deployments
        .patch(NAME, &PatchParams::default(), &Patch::Merge(&change))
        .await
        .context("changing the deployment's template")?;
    complete(&deployments, generation(&patched), replicas, timeout).await?;
    let updated = changed.elapsed();

    Ok(Rollout {
        replicas,
        available,
        updated,
    })
}

fn generation(deployment: &Deployment) -> i64 {
    deployment.metadata.generation.unwrap_or(1)
}

/// Waits until the deployment's controller has seen `generation` and every replica is
/// updated and available with no old one left: `kubectl rollout status`'s condition.
async fn complete(
    deployments: &Api<Deployment>,
    generation: i64,
    replicas: i32,
    timeout: Duration,
) -> Result<()> {
    let done = move |d: Option<&Deployment>| {
        let Some(status) = d.and_then(|d| d.status.as_ref()) else {
            return false;
        };
        status.observed_generation.unwrap_or(0) >= generation
            && status.updated_replicas.unwrap_or(0) == replicas
            && status.replicas.unwrap_or(0) == replicas
            && status.available_replicas.unwrap_or(0) == replicas
    };
    match tokio::time::timeout(timeout, await_condition(deployments.clone(), NAME, done)).await {
        Ok(outcome) => {
            outcome?;
            Ok(())
        }
        Err(_) => {
            let status = deployments
                .get_status(NAME)
                .await
                .ok()
                .and_then(|d| d.status);
            bail!(
                "the deployment's rollout (generation {generation}) was not complete after {}s: {status:?}",
                timeout.as_secs()
            )
        }
    }
}
