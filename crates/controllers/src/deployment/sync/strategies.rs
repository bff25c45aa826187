//! The two strategies' steps: RollingUpdate (upstream's `rolloutRolling`) and Recreate
//! (upstream's `rolloutRecreate`).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::Sync;
use crate::deployment::Error;
use crate::deployment::rollout::{self, desired, replicas};
use crate::deployment::status as deployment_status;
use crate::{owner, pods};

impl Sync<'_> {
    /// A RollingUpdate step (upstream's `rolloutRolling`): grow the new ReplicaSet, or else
    /// shrink old ones, or else clean up a finished rollout; then the status.
    pub async fn rollout_rolling(&mut self) -> Result<(), Error> {
        let Some(new) = self.new_replica_set(true).await? else {
            return Ok(());
        };
        if self.reconcile_new(new).await? || self.reconcile_old(new).await? {
            return self.sync_rollout_status(Some(new)).await;
        }
        if deployment_status::complete(&self.d, &self.status()) {
            self.cleanup(Some(new)).await?;
        }
        let new = self.find_new();
        self.sync_rollout_status(new).await
    }

    pub(super) async fn reconcile_new(&mut self, new: usize) -> Result<bool, Error> {
        let want = desired(&self.d);
        let current = replicas(&self.sets[new]);
        if current == want {
            return Ok(false);
        }
        if current > want {
            return self.scale_and_record(new, want).await;
        }
        let size = rollout::new_replicas(&self.d, &self.all_refs(), &self.sets[new]).map_err(
            |message| Error::Invalid {
                object: self.object.clone(),
                message,
            },
        )?;
        self.scale_and_record(new, size).await
    }

    pub(super) async fn reconcile_old(&mut self, new: usize) -> Result<bool, Error> {
        let old = self.active_old(Some(new));
        if rollout::total_replicas(self.refs(&old)) == 0 {
            return Ok(false);
        }
        let max_down = rollout::max_scaled_down(&self.d, &self.all_refs(), &self.sets[new]);
        if max_down <= 0 {
            return Ok(false);
        }
        let plan = rollout::cleanup_unhealthy(&self.refs(&old), max_down);
        let cleaned = self.apply_down(&old, plan).await?;
        // The availability budget counts the active old ReplicaSets and the new one.
        let mut all = old.clone();
        all.push(new);
        let plan = rollout::scale_down_old(&self.d, &self.refs(&all), &self.refs(&old));
        let scaled = self.apply_down(&old, plan).await?;
        Ok(cleaned + scaled > 0)
    }

    /// A Recreate step (upstream's `rolloutRecreate`): old ReplicaSets to zero, wait until
    /// none of their pods runs, then the new one to full size.
    pub async fn rollout_recreate(&mut self, pods: &[Arc<Pod>]) -> Result<(), Error> {
        let mut new = self.new_replica_set(false).await?;
        let mut scaled_down = false;
        for i in self.active_old(new) {
            scaled_down |= self.scale_and_record(i, 0).await?;
        }
        if scaled_down || self.old_pods_running(new, pods) {
            return self.sync_rollout_status(new).await;
        }
        if new.is_none() {
            new = self.new_replica_set(true).await?;
        }
        if let Some(n) = new {
            self.scale_and_record(n, desired(&self.d)).await?;
        }
        if deployment_status::complete(&self.d, &self.status()) {
            self.cleanup(new).await?;
        }
        let new = self.find_new();
        self.sync_rollout_status(new).await
    }

    /// Whether old ReplicaSets still report replicas or have pods not yet finished
    /// (upstream's `oldPodsRunning`).
    pub(super) fn old_pods_running(&self, new: Option<usize>, pods: &[Arc<Pod>]) -> bool {
        let old = self.old_indices(new);
        if old
            .iter()
            .map(|&i| rollout::status_replicas(&self.sets[i]))
            .sum::<i32>()
            > 0
        {
            return true;
        }
        let old_uids: Vec<&str> = old
            .iter()
            .filter_map(|&i| self.sets[i].metadata.uid.as_deref())
            .collect();
        pods.iter().any(|pod| {
            owner::controller_of(&pod.metadata).is_some_and(|c| old_uids.contains(&c.uid.as_str()))
                && !matches!(pods::phase(pod), "Failed" | "Succeeded")
        })
    }
}
