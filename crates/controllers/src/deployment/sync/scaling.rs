//! Scaling ReplicaSets for a Deployment: one at a time with its event, proportionally on a
//! scaling event, and cleaning up old ones past the revision history limit (upstream's
//! `scaleReplicaSet`, `scale`, `cleanupDeployment`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use kube::ResourceExt;
use kube::api::{DeleteParams, PostParams};

use super::Sync;
use crate::api_errors;
use crate::deployment::rollout::{self, Plan, desired, replicas};
use crate::deployment::{Error, revision};

impl Sync<'_> {
    /// Sets ReplicaSet `i` to `size` replicas (and its replicas annotations to the
    /// Deployment's); returns whether its size changed (upstream's `scaleReplicaSet`).
    pub(super) async fn scale(
        &mut self,
        i: usize,
        size: i32,
        operation: &str,
    ) -> Result<bool, Error> {
        let rs = &self.sets[i];
        let old = replicas(rs);
        let want = desired(&self.d);
        let max = want + rollout::max_surge(&self.d);
        let resize = old != size;
        if !resize && revision::replicas_annotations_current(rs, want, max) {
            return Ok(false);
        }
        let mut updated = rs.clone();
        updated
            .spec
            .get_or_insert_with(ReplicaSetSpec::default)
            .replicas = Some(size);
        revision::set_replicas_annotations(
            updated
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new),
            want,
            max,
        );
        let name = updated.name_any();
        let written = self
            .replica_sets()
            .replace(&name, &PostParams::default(), &updated)
            .await
            .map_err(self.api_error(format!("scaling replica set {name}")))?;
        self.sets[i] = written;
        if resize {
            let message = format!("Scaled {operation} replica set {name} to {size} from {old}");
            self.ctx
                .events
                .normal(&self.d, "ScalingReplicaSet", &message)
                .await;
        }
        Ok(resize)
    }

    /// [`Self::scale`] with the direction from the sizes (upstream's
    /// `scaleReplicaSetAndRecordEvent`).
    pub(super) async fn scale_and_record(&mut self, i: usize, size: i32) -> Result<bool, Error> {
        let old = replicas(&self.sets[i]);
        if old == size {
            return Ok(false);
        }
        let operation = if old < size { "up" } else { "down" };
        self.scale(i, size, operation).await
    }

    /// Carries out a plan over `indices` (plan entries index into `indices`); returns the
    /// replicas removed.
    pub(super) async fn apply_down(&mut self, indices: &[usize], plan: Plan) -> Result<i32, Error> {
        let mut removed = 0;
        for (at, size) in plan {
            let i = indices[at];
            let before = replicas(&self.sets[i]);
            if self.scale_and_record(i, size).await? {
                removed += before - size;
            }
        }
        Ok(removed)
    }

    /// Whether this is a scaling event: an active ReplicaSet records another
    /// `desired-replicas` than the Deployment's (upstream's `isScalingEvent`).
    pub async fn is_scaling_event(&mut self) -> Result<bool, Error> {
        self.new_replica_set(false).await?;
        let want = desired(&self.d);
        Ok(self
            .sets
            .iter()
            .filter(|rs| replicas(rs) > 0)
            .filter_map(revision::desired_replicas)
            .any(|recorded| recorded != want))
    }

    /// A scaling event or a paused Deployment (upstream's `sync`).
    pub async fn sync_scale(&mut self) -> Result<(), Error> {
        let new = self.new_replica_set(false).await?;
        self.scale_all(new).await?;
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused {
            self.cleanup(new).await?;
        }
        self.sync_status(new).await
    }

    /// Upstream's `scale`: the one active ReplicaSet to full size; old ones to zero once the
    /// new one is saturated; otherwise proportionally.
    pub(super) async fn scale_all(&mut self, new: Option<usize>) -> Result<(), Error> {
        let old = self.old_indices(new);
        let latest = {
            let old_refs = self.refs(&old);
            rollout::find_active_or_latest(new.map(|i| &self.sets[i]), &old_refs)
                .and_then(|rs| self.sets.iter().position(|s| std::ptr::eq(s, rs)))
        };
        let want = desired(&self.d);
        if let Some(i) = latest {
            if replicas(&self.sets[i]) != want {
                self.scale_and_record(i, want).await?;
            }
            return Ok(());
        }
        if let Some(n) = new
            && rollout::is_saturated(&self.d, &self.sets[n])
        {
            for i in self.active_old(new) {
                self.scale_and_record(i, 0).await?;
            }
            return Ok(());
        }
        if rollout::is_rolling_update(&self.d) {
            let active: Vec<usize> = (0..self.sets.len())
                .filter(|&i| replicas(&self.sets[i]) > 0)
                .collect();
            let (plan, operation) = rollout::proportional_scale(&self.d, &self.refs(&active));
            for (at, size) in plan {
                self.scale(active[at], size, operation).await?;
            }
        }
        Ok(())
    }

    /// Deletes the oldest ReplicaSets beyond `revisionHistoryLimit`, if they are scaled to
    /// zero and settled (upstream's `cleanupDeployment`).
    pub async fn cleanup(&mut self, new: Option<usize>) -> Result<(), Error> {
        let Some(limit) = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .filter(|l| *l != i32::MAX)
        else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = self
            .old_indices(new)
            .into_iter()
            .map(|i| &self.sets[i])
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = cleanable
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        if excess == 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| rollout::by_revision(a, b));
        let doomed: Vec<String> = cleanable
            .into_iter()
            .take(excess)
            .filter(|rs| {
                rollout::status_replicas(rs) == 0
                    && replicas(rs) == 0
                    && rs.metadata.generation.unwrap_or(0)
                        <= rs
                            .status
                            .as_ref()
                            .and_then(|s| s.observed_generation)
                            .unwrap_or(0)
            })
            .map(ResourceExt::name_any)
            .collect();
        for name in doomed {
            match self
                .replica_sets()
                .delete(&name, &DeleteParams::default())
                .await
            {
                Ok(_) => self.sets.retain(|rs| rs.name_any() != name),
                Err(error) if api_errors::is_not_found(&error) => {}
                Err(error) => {
                    return Err(self.api_error(format!("deleting replica set {name}"))(
                        error,
                    ));
                }
            }
        }
        Ok(())
    }
}
