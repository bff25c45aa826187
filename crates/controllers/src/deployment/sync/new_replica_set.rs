//! Finding, updating and creating the new ReplicaSet (upstream's `getNewReplicaSet`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::PostParams;

use super::Sync;
use crate::deployment::rollout::{self, desired};
use crate::deployment::status::{self as deployment_status, PROGRESSING};
use crate::deployment::{Error, hash, revision, template};
use crate::{api_errors, owner};

impl Sync<'_> {
    /// Upstream's `getAllReplicaSetsAndSyncRevision`/`getNewReplicaSet`: brings the new
    /// ReplicaSet's annotations and the Deployment's revision up to date, creating the new
    /// ReplicaSet if `create`. Returns its index.
    pub async fn new_replica_set(&mut self, create: bool) -> Result<Option<usize>, Error> {
        let existing = self.find_new();
        let old = self.old_indices(existing);
        let new_revision = revision::max_revision(self.refs(&old)) + 1;
        if let Some(i) = existing {
            return self.update_new(i, new_revision).await.map(Some);
        }
        if !create {
            return Ok(None);
        }
        self.create_new(new_revision).await.map(Some)
    }

    pub(super) async fn update_new(&mut self, i: usize, new_revision: i64) -> Result<usize, Error> {
        let mut rs = self.sets[i].clone();
        let mut annotations = rs.metadata.annotations.clone().unwrap_or_default();
        let changed = revision::update_new_replica_set_annotations(
            &self.d,
            &mut annotations,
            new_revision,
            None,
        );
        let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        let spec = rs.spec.get_or_insert_with(ReplicaSetSpec::default);
        let min_ready_changed = spec.min_ready_seconds.unwrap_or(0) != min_ready.unwrap_or(0);
        if changed || min_ready_changed {
            spec.min_ready_seconds = min_ready;
            rs.metadata.annotations = Some(annotations);
            let name = rs.name_any();
            let updated = self
                .replica_sets()
                .replace(&name, &PostParams::default(), &rs)
                .await
                .map_err(self.api_error(format!("updating replica set {name}")))?;
            self.sets[i] = updated;
            return Ok(i);
        }
        let rs_revision = annotations
            .get(revision::REVISION)
            .cloned()
            .unwrap_or_default();
        self.set_revision(&rs_revision).await?;
        let status = self.status();
        if deployment_status::has_progress_deadline(&self.d)
            && deployment_status::get_condition(&status, PROGRESSING).is_none()
        {
            let mut status = status;
            let message = format!("Found new replica set {:?}", rs.name_any());
            deployment_status::set_condition(
                &mut status,
                deployment_status::condition(
                    PROGRESSING,
                    "True",
                    deployment_status::FOUND_NEW_RS,
                    message,
                    Timestamp::now(),
                ),
            );
            self.write_status(status).await?;
        }
        Ok(i)
    }

    pub(super) async fn create_new(&mut self, new_revision: i64) -> Result<usize, Error> {
        let spec = self.d.spec.clone().unwrap_or_default();
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let mut template = spec.template.clone();
        let template_hash = hash::pod_template_hash(&template, collision_count);
        let template_meta = template.metadata.get_or_insert_with(ObjectMeta::default);
        let labels = template_meta.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(hash::LABEL.into(), template_hash.clone());
        let labels = labels.clone();
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(hash::LABEL.into(), template_hash.clone());
        let name = format!("{}-{}", self.d.name_any(), template_hash);
        let mut new = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.d.namespace(),
                owner_references: Some(vec![owner::controller_ref(&self.d)]),
                labels: Some(labels),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let mut all = self.all_refs();
        all.push(&new);
        let count =
            rollout::new_replicas(&self.d, &all, &new).map_err(|message| Error::Invalid {
                object: self.object.clone(),
                message,
            })?;
        if let Some(spec) = new.spec.as_mut() {
            spec.replicas = Some(count);
        }
        let mut annotations = BTreeMap::new();
        let max = desired(&self.d) + rollout::max_surge(&self.d);
        revision::update_new_replica_set_annotations(
            &self.d,
            &mut annotations,
            new_revision,
            Some((desired(&self.d), max)),
        );
        new.metadata.annotations = Some(annotations);

        let created = match self
            .replica_sets()
            .create(&PostParams::default(), &new)
            .await
        {
            Ok(created) => Some(created),
            Err(error) if api_errors::is_already_exists(&error) => {
                // A slow cache, or a hash collision.
                let existing = self
                    .replica_sets()
                    .get(&name)
                    .await
                    .map_err(self.api_error(format!("reading replica set {name}")))?;
                let ours = owner::is_controlled_by(
                    &existing.metadata,
                    self.d.metadata.uid.as_deref().unwrap_or_default(),
                );
                let same = existing
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| template::equal_ignoring_hash(t, &spec.template));
                if !(ours && same) {
                    let mut status = self.status();
                    status.collision_count = Some(collision_count.unwrap_or(0).saturating_add(1));
                    self.write_status(status).await?;
                    return Err(Error::Api {
                        object: self.object.clone(),
                        action: format!("creating replica set {name} (hash collision)"),
                        source: error,
                    });
                }
                self.sets.push(existing);
                None
            }
            Err(error) if api_errors::is_namespace_terminating(&error) => {
                return Err(Error::Api {
                    object: self.object.clone(),
                    action: format!("creating replica set {name}"),
                    source: error,
                });
            }
            Err(error) => {
                let message = format!(
                    "Failed to create new replica set {name:?}: {}",
                    api_errors::message(&error)
                );
                if deployment_status::has_progress_deadline(&self.d) {
                    let mut status = self.status();
                    deployment_status::set_condition(
                        &mut status,
                        deployment_status::condition(
                            PROGRESSING,
                            "False",
                            deployment_status::FAILED_RS_CREATE,
                            message.clone(),
                            Timestamp::now(),
                        ),
                    );
                    // The create error is the one to report.
                    let _ = self.write_status(status).await;
                }
                self.ctx
                    .events
                    .warning(&self.d, deployment_status::FAILED_RS_CREATE, &message)
                    .await;
                return Err(Error::Api {
                    object: self.object.clone(),
                    action: format!("creating replica set {name}"),
                    source: error,
                });
            }
        };
        let already_existed = created.is_none();
        if let Some(created) = created {
            if count > 0 {
                let message = format!("Scaled up replica set {name} to {count}");
                self.ctx
                    .events
                    .normal(&self.d, "ScalingReplicaSet", &message)
                    .await;
            }
            self.sets.push(created);
        }
        // Either branch pushed the new ReplicaSet last.
        let index = self.sets.len() - 1;
        self.set_revision(&new_revision.to_string()).await?;
        if !already_existed && deployment_status::has_progress_deadline(&self.d) {
            let mut status = self.status();
            let message = format!("Created new replica set {name:?}");
            deployment_status::set_condition(
                &mut status,
                deployment_status::condition(
                    PROGRESSING,
                    "True",
                    deployment_status::NEW_REPLICA_SET,
                    message,
                    Timestamp::now(),
                ),
            );
            self.write_status(status).await?;
        }
        Ok(index)
    }
}
