//! `version` and `info`: what the runtime says about itself.

use anyhow::Context as _;

use super::inspect::{self, StatusFormat};
use super::json::Json;
use super::protojson;
use super::session::Session;
use crate::v1::{RuntimeFeatures, RuntimeHandler, StatusRequest, VersionRequest};

/// `cox crictl info`.
#[derive(Debug, clap::Args)]
pub(crate) struct InfoArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value = "json")]
    output: InfoFormat,
    /// Do not show verbose information
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum InfoFormat {
    Json,
    Yaml,
}

/// Runs `version`.
pub(crate) async fn version(session: &mut Session) -> anyhow::Result<()> {
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    let version = deadline
        .call(client.version(deadline.request(VersionRequest {
            version: crate::API_VERSION.to_string(),
        })))
        .await
        .context("getting the runtime version")?;
    // crictl prints with Go's Println, hence the two spaces.
    session.print(format!(
        "Version:  {}\nRuntimeName:  {}\nRuntimeVersion:  {}\nRuntimeApiVersion:  {}\n",
        version.version, version.runtime_name, version.runtime_version, version.runtime_api_version
    ))?;
    Ok(())
}

/// Runs `info`.
pub(crate) async fn info(session: &mut Session, args: InfoArgs) -> anyhow::Result<()> {
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    let response = deadline
        .call(client.status(deadline.request(StatusRequest {
            verbose: !args.quiet,
        })))
        .await
        .context("getting status of runtime")?;
    let status = response
        .status
        .as_ref()
        .map(protojson::to_json)
        .transpose()?
        .unwrap_or(Json::Object(Vec::new()));
    let mut extra = Vec::new();
    if !response.runtime_handlers.is_empty() {
        extra.push((
            "runtimeHandlers".to_string(),
            Json::Array(response.runtime_handlers.iter().map(handler_json).collect()),
        ));
    }
    if let Some(features) = &response.features {
        extra.push(("features".to_string(), features_json(features)));
    }
    let document = inspect::status_document(Some(status), extra, &response.info);
    let format = match args.output {
        InfoFormat::Json => StatusFormat::Json,
        InfoFormat::Yaml => StatusFormat::Yaml,
    };
    session.print(inspect::render_documents(vec![document], format))?;
    Ok(())
}

/// A runtime handler as crictl prints it: Go's JSON of the generated struct, so snake_case
/// names and zero values left out.
fn handler_json(handler: &RuntimeHandler) -> Json {
    let mut entries = Vec::new();
    if !handler.name.is_empty() {
        entries.push(("name", Json::String(handler.name.clone())));
    }
    if let Some(features) = &handler.features {
        let mut flags = Vec::new();
        if features.recursive_read_only_mounts {
            flags.push(("recursive_read_only_mounts", Json::Bool(true)));
        }
        if features.user_namespaces {
            flags.push(("user_namespaces", Json::Bool(true)));
        }
        entries.push(("features", Json::object(flags)));
    }
    Json::object(entries)
}

/// See [`handler_json`].
fn features_json(features: &RuntimeFeatures) -> Json {
    let mut entries = Vec::new();
    if features.supplemental_groups_policy {
        entries.push(("supplemental_groups_policy", Json::Bool(true)));
    }
    Json::object(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::RuntimeHandlerFeatures;

    #[test]
    fn handlers_print_like_go_json() {
        let handler = RuntimeHandler {
            name: String::new(),
            features: Some(RuntimeHandlerFeatures {
                recursive_read_only_mounts: true,
                user_namespaces: false,
            }),
        };
        assert_eq!(
            handler_json(&handler).to_pretty(),
            "{\n  \"features\": {\n    \"recursive_read_only_mounts\": true\n  }\n}"
        );
        let bare = RuntimeHandler {
            name: "runc".into(),
            features: None,
        };
        assert_eq!(
            handler_json(&bare).to_pretty(),
            "{\n  \"name\": \"runc\"\n}"
        );
        assert_eq!(
            features_json(&RuntimeFeatures {
                supplemental_groups_policy: false
            })
            .to_pretty(),
            "{}"
        );
    }
}
