//! Finding containers, pods and images by what the user typed: a full ID or a unique prefix
//! (resolved against a listing), or for images also a reference the runtime understands.

use super::filters::{self, Kind};
use super::session::Session;
use crate::v1::{
    Container, Image, ImageSpec, ImageStatusRequest, ListContainersRequest, ListImagesRequest,
    ListPodSandboxRequest, PodSandbox,
};

/// Every container the runtime has, in any state.
pub(crate) async fn all_containers(session: &mut Session) -> anyhow::Result<Vec<Container>> {
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    let response = deadline
        .call(client.list_containers(deadline.request(ListContainersRequest { filter: None })))
        .await
        .map_err(|error| anyhow::anyhow!("call list containers RPC: {error}"))?;
    Ok(response.containers)
}

/// Every pod sandbox the runtime has, in any state.
pub(crate) async fn all_pods(session: &mut Session) -> anyhow::Result<Vec<PodSandbox>> {
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    let response = deadline
        .call(client.list_pod_sandbox(deadline.request(ListPodSandboxRequest { filter: None })))
        .await
        .map_err(|error| anyhow::anyhow!("call list sandboxes RPC: {error}"))?;
    Ok(response.items)
}

/// Every image the runtime has.
pub(crate) async fn all_images(session: &mut Session) -> anyhow::Result<Vec<Image>> {
    let mut client = session.images().await?;
    let deadline = session.deadline();
    let response = deadline
        .call(client.list_images(deadline.request(ListImagesRequest { filter: None })))
        .await?;
    Ok(response.images)
}

/// The full IDs of the containers `prefixes` name (one listing for all of them).
pub(crate) async fn container_ids(
    session: &mut Session,
    prefixes: &[String],
) -> anyhow::Result<Vec<String>> {
    let containers = all_containers(session).await?;
    prefixes
        .iter()
        .map(|prefix| {
            filters::resolve_prefix(
                Kind::Container,
                prefix,
                containers.iter().map(|c| c.id.as_str()),
            )
            .map_err(anyhow::Error::from)
        })
        .collect()
}

/// The full ID of the container `prefix` names.
pub(crate) async fn container_id(session: &mut Session, prefix: &str) -> anyhow::Result<String> {
    let mut ids = container_ids(session, &[prefix.to_string()]).await?;
    ids.pop()
        .ok_or_else(|| anyhow::anyhow!("no container found with ID or ID prefix {prefix:?}"))
}

/// The full IDs of the pod sandboxes `prefixes` name.
pub(crate) async fn pod_ids(
    session: &mut Session,
    prefixes: &[String],
) -> anyhow::Result<Vec<String>> {
    let pods = all_pods(session).await?;
    prefixes
        .iter()
        .map(|prefix| {
            filters::resolve_prefix(Kind::Pod, prefix, pods.iter().map(|p| p.id.as_str()))
                .map_err(anyhow::Error::from)
        })
        .collect()
}

/// The full ID of the pod sandbox `prefix` names.
pub(crate) async fn pod_id(session: &mut Session, prefix: &str) -> anyhow::Result<String> {
    let mut ids = pod_ids(session, &[prefix.to_string()]).await?;
    ids.pop()
        .ok_or_else(|| anyhow::anyhow!("no pod sandbox found with ID or ID prefix {prefix:?}"))
}

/// The status of an image by reference (asked of the runtime), `None` if it has no such image.
pub(crate) async fn image_status(
    session: &mut Session,
    reference: &str,
    verbose: bool,
) -> anyhow::Result<(Option<Image>, std::collections::HashMap<String, String>)> {
    let mut client = session.images().await?;
    let deadline = session.deadline();
    let response = deadline
        .call(client.image_status(deadline.request(ImageStatusRequest {
            image: Some(ImageSpec {
                image: reference.to_string(),
                ..ImageSpec::default()
            }),
            verbose,
        })))
        .await?;
    Ok((response.image, response.info))
}

/// An image the user named: by reference or ID as the runtime resolves it, or else by a unique
/// prefix of its ID. Returns the name to use in further calls with the image's status.
pub(crate) async fn image(
    session: &mut Session,
    name: &str,
    verbose: bool,
) -> anyhow::Result<Option<(String, Image, std::collections::HashMap<String, String>)>> {
    if name.is_empty() {
        anyhow::bail!("image ID cannot be empty");
    }
    if let (Some(image), info) = image_status(session, name, verbose).await? {
        return Ok(Some((name.to_string(), image, info)));
    }
    let images = all_images(session).await?;
    let id = match filters::resolve_image_prefix(name, images.iter().map(|i| i.id.as_str())) {
        Ok(id) => id,
        Err(filters::ResolveError::NotFound { .. }) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    Ok(match image_status(session, &id, verbose).await? {
        (Some(image), info) => Some((id, image, info)),
        (None, _) => None,
    })
}
