//! Claiming dependents through the API (upstream's `PodControllerRefManager.ClaimPods` and
//! `ReplicaSetControllerRefManager.ClaimReplicaSets`): [`owner::claim`] decides, this module
//! patches. Before its first adoption the owner is read again from the API server, not the
//! cache (upstream's `RecheckDeletionTimestamp`): an owner deleted or replaced meanwhile must
//! not adopt anything.

use std::fmt::Debug;
use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api_errors;
use crate::owner::{self, Claim};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{verb} {kind} {name}: {source}")]
    Patch {
        verb: &'static str,
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading {kind} {name} again before adopting: {source}")]
    Recheck {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("{kind} {name} is gone or being deleted; not adopting")]
    OwnerGone { kind: String, name: String },
}

/// Claims `candidates` (same namespace as `owner`) for `owner`, whose selector is
/// `matches`: returns the ones it owns afterwards. Every candidate is tried; the first error
/// is returned after the others were handled.
pub async fn claim<O, D>(
    client: &Client,
    owner: &O,
    candidates: Vec<Arc<D>>,
    matches: impl Fn(&D) -> bool,
) -> Result<Vec<Arc<D>>, Error>
where
    O: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
    D: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Serialize,
{
    let namespace = owner.namespace().unwrap_or_default();
    let dependents: Api<D> = Api::namespaced(client.clone(), &namespace);
    let owner_uid = owner.meta().uid.clone().unwrap_or_default();
    let mut rechecked = false;
    let mut first_error = None;
    let mut owned = Vec::new();
    for candidate in candidates {
        let decision = owner::claim(owner.meta(), candidate.meta(), matches(&candidate));
        let name = candidate.name_any();
        let uid = candidate.meta().uid.clone().unwrap_or_default();
        let result = match decision {
            Claim::Keep => {
                owned.push(candidate);
                continue;
            }
            Claim::Ignore => continue,
            Claim::Adopt => {
                if !rechecked {
                    // If this fails, nothing else can be adopted either.
                    recheck(client, owner).await?;
                    rechecked = true;
                }
                let patch = owner::adopt_patch(&owner::controller_ref(owner), &uid);
                match patch_dependent(&dependents, &name, patch).await {
                    Ok(adopted) => {
                        owned.push(Arc::new(adopted));
                        Ok(())
                    }
                    Err(source) => Err(("adopting", source)),
                }
            }
            Claim::Release => {
                let patch = owner::release_patch(&owner_uid, &uid);
                patch_dependent(&dependents, &name, patch)
                    .await
                    .map(|_| ())
                    .map_err(|source| ("releasing", source))
            }
        };
        match result {
            Ok(()) => {}
            // Gone already: nothing to claim.
            Err((_, source)) if api_errors::is_not_found(&source) => {}
            Err((verb, source)) => {
                first_error.get_or_insert(Error::Patch {
                    verb,
                    kind: D::kind(&()).into_owned(),
                    name,
                    source,
                });
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(owned),
    }
}

async fn patch_dependent<D>(
    api: &Api<D>,
    name: &str,
    patch: serde_json::Value,
) -> Result<D, kube::Error>
where
    D: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    api.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
}

async fn recheck<O>(client: &Client, owner: &O) -> Result<(), Error>
where
    O: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let name = owner.name_any();
    let kind = O::kind(&()).into_owned();
    let api: Api<O> = Api::namespaced(client.clone(), &owner.namespace().unwrap_or_default());
    let fresh = api.get_opt(&name).await.map_err(|source| Error::Recheck {
        kind: kind.clone(),
        name: name.clone(),
        source,
    })?;
    match fresh {
        Some(fresh)
            if fresh.meta().uid == owner.meta().uid
                && fresh.meta().deletion_timestamp.is_none() =>
        {
            Ok(())
        }
        _ => Err(Error::OwnerGone { kind, name }),
    }
}
