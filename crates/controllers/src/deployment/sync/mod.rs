//! One sync of one Deployment against the API: the steps of upstream's `sync.go`,
//! `rolling.go` and `recreate.go`, with the arithmetic in [`super::rollout`] and the status in
//! [`super::status`]. A [`Sync`] holds a working copy of the Deployment and its ReplicaSets,
//! replaced by what the API answers after each write, so that later steps of the same sync
//! build on it; writes carry the `resourceVersion` read, so a stale cache ends in a conflict
//! and a retry rather than a lost update.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::rollout::{self, replicas};
use super::status as deployment_status;
use super::{Context, Error, revision, template};

pub(super) struct Sync<'a> {
    ctx: &'a Context,
    /// The working copy: what the API last answered.
    pub d: Deployment,
    /// The ReplicaSets the Deployment controls.
    pub sets: Vec<ReplicaSet>,
    object: String,
    /// When to look again, for a progress-deadline check.
    pub requeue: Option<Duration>,
}

mod new_replica_set;
mod scaling;
mod strategies;

impl<'a> Sync<'a> {
    pub fn new(ctx: &'a Context, d: Deployment, sets: Vec<ReplicaSet>) -> Self {
        let object = format!(
            "Deployment {}/{}",
            d.namespace().unwrap_or_default(),
            d.name_any()
        );
        Self {
            ctx,
            d,
            sets,
            object,
            requeue: None,
        }
    }

    pub(super) fn api_error(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(kube::Error) -> Error + '_ {
        let action = action.into();
        move |source| Error::Api {
            object: self.object.clone(),
            action,
            source,
        }
    }

    pub(super) fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(
            self.ctx.client.clone(),
            &self.d.namespace().unwrap_or_default(),
        )
    }

    pub(super) fn replica_sets(&self) -> Api<ReplicaSet> {
        Api::namespaced(
            self.ctx.client.clone(),
            &self.d.namespace().unwrap_or_default(),
        )
    }

    pub(super) fn template(&self) -> k8s_openapi::api::core::v1::PodTemplateSpec {
        self.d
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default()
    }

    /// The index of the new ReplicaSet (the oldest whose template is the Deployment's).
    pub(super) fn find_new(&self) -> Option<usize> {
        let template = self.template();
        let mut order: Vec<usize> = (0..self.sets.len()).collect();
        order.sort_by(|&a, &b| rollout::by_creation(&self.sets[a], &self.sets[b]));
        order.into_iter().find(|&i| {
            self.sets[i]
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| template::equal_ignoring_hash(t, &template))
        })
    }

    pub(super) fn old_indices(&self, new: Option<usize>) -> Vec<usize> {
        (0..self.sets.len()).filter(|&i| Some(i) != new).collect()
    }

    pub(super) fn active_old(&self, new: Option<usize>) -> Vec<usize> {
        self.old_indices(new)
            .into_iter()
            .filter(|&i| replicas(&self.sets[i]) > 0)
            .collect()
    }

    pub(super) fn refs(&self, indices: &[usize]) -> Vec<&ReplicaSet> {
        indices.iter().map(|&i| &self.sets[i]).collect()
    }

    pub(super) fn all_refs(&self) -> Vec<&ReplicaSet> {
        self.sets.iter().collect()
    }

    pub(super) fn status(&self) -> DeploymentStatus {
        self.d.status.clone().unwrap_or_default()
    }

    /// Writes `status` as the Deployment's (PUT on `/status`).
    pub(super) async fn write_status(&mut self, status: DeploymentStatus) -> Result<(), Error> {
        let mut updated = self.d.clone();
        updated.status = Some(status);
        let name = self.d.name_any();
        let written = self
            .deployments()
            .replace_status(&name, &PostParams::default(), &updated)
            .await
            .map_err(self.api_error("updating status"))?;
        self.d = written;
        Ok(())
    }

    /// Records `revision` on the Deployment, if it is not there yet.
    pub(super) async fn set_revision(&mut self, revision: &str) -> Result<(), Error> {
        let current = self
            .d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(revision::REVISION));
        if current.map(String::as_str) == Some(revision) {
            return Ok(());
        }
        let patch = json!({
            "metadata": {
                "annotations": {revision::REVISION: revision},
                "resourceVersion": self.d.metadata.resource_version,
            }
        });
        let name = self.d.name_any();
        let written = self
            .deployments()
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(self.api_error("recording the revision"))?;
        self.d = written;
        Ok(())
    }

    /// Writes the counts and `Available` (upstream's `syncDeploymentStatus`).
    pub async fn sync_status(&mut self, new: Option<usize>) -> Result<(), Error> {
        let new_rs = new.map(|i| &self.sets[i]);
        let status =
            deployment_status::calculate(&self.all_refs(), new_rs, &self.d, Timestamp::now());
        if deployment_status::normalized(&self.status()) == status {
            return Ok(());
        }
        self.write_status(status).await
    }

    /// Writes the status with the `Progressing` condition (upstream's `syncRolloutStatus`);
    /// when nothing changed, schedules the next progress check.
    pub(super) async fn sync_rollout_status(&mut self, new: Option<usize>) -> Result<(), Error> {
        let now = Timestamp::now();
        let new_rs = new.map(|i| &self.sets[i]);
        let status = deployment_status::rollout(&self.all_refs(), new_rs, &self.d, now);
        if deployment_status::normalized(&self.status()) == status {
            self.requeue = deployment_status::progress_check_in(&self.d, &status, now);
            return Ok(());
        }
        self.write_status(status).await
    }

    /// The status of a Deployment being deleted (upstream's `syncStatusOnly`).
    pub async fn sync_status_only(&mut self) -> Result<(), Error> {
        let new = self.new_replica_set(false).await?;
        self.sync_status(new).await
    }

    /// Writes the paused or resumed `Progressing` condition if it changed.
    pub async fn check_paused_conditions(&mut self) -> Result<(), Error> {
        match deployment_status::paused_condition(&self.d, Timestamp::now()) {
            Some(status) => self.write_status(status).await,
            None => Ok(()),
        }
    }
}
