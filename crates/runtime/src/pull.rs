//! `PullImage`: fetches an image from its registry (or a configured mirror) into the store.
//! Pulls of one image running at once are done once (see [`Puller`]).

use std::sync::Arc;

use cox_cri::v1;

use crate::images::registries::{Credentials, Registries};
use crate::images::registry::Puller;
use crate::images::{ImageRecord, Reference};
use crate::runtime::{Runtime, RuntimeError};

/// Pulls for the CRI service.
#[derive(Debug)]
pub struct Pulls {
    puller: Puller,
}

impl Pulls {
    /// Reads the registries file named in the runtime's configuration; a bad file is an error
    /// now rather than at the first pull.
    pub fn new(runtime: &Arc<Runtime>) -> Result<Self, RuntimeError> {
        let registries = Registries::load(&runtime.config().registries)?;
        Ok(Pulls {
            puller: Puller::new(runtime.images().clone(), registries),
        })
    }

    /// Pulls `name` with the request's credentials, if any.
    pub async fn pull(
        &self,
        name: &str,
        auth: Option<v1::AuthConfig>,
    ) -> Result<ImageRecord, RuntimeError> {
        let reference =
            Reference::parse(name).map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?;
        let credentials = auth.and_then(credentials);
        Ok(self.puller.pull(&reference, credentials, |_| {}).await?)
    }
}

/// The CRI's `AuthConfig` as registry credentials.
fn credentials(auth: v1::AuthConfig) -> Option<Credentials> {
    if !auth.registry_token.is_empty() {
        return Some(Credentials::RegistryToken(auth.registry_token));
    }
    if !auth.identity_token.is_empty() {
        return Some(Credentials::IdentityToken(auth.identity_token));
    }
    if !auth.username.is_empty() {
        return Some(Credentials::Basic {
            username: auth.username,
            password: auth.password,
        });
    }
    if !auth.auth.is_empty() {
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&auth.auth)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (username, password) = text.split_once(':')?;
        return Some(Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        });
    }
    None
}
