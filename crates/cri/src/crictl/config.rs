//! Pod and container config files (`runp pod.json`, `create POD container.json pod.json`):
//! crictl's JSON form of `PodSandboxConfig` and `ContainerConfig`, snake_case field names,
//! every field optional, checked as crictl checks them.

use std::path::Path;

use anyhow::Context as _;

use crate::v1::{ContainerConfig, PodSandboxConfig};

/// Reads a file without blocking the async runtime.
pub(crate) async fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let owned = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || std::fs::read(owned))
        .await
        .context("reading a file")?;
    match read {
        Ok(bytes) => Ok(bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!("config at {} not found", path.display())
        }
        Err(error) => Err(error).with_context(|| format!("read {}", path.display())),
    }
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> anyhow::Result<T> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|error| {
        let yaml = path
            .extension()
            .is_some_and(|extension| extension == "yaml" || extension == "yml");
        if yaml {
            anyhow::anyhow!(
                "{}: YAML config files are not supported yet, write the config as JSON",
                path.display()
            )
        } else {
            anyhow::anyhow!("{}: invalid JSON: {error}", path.display())
        }
    })?;
    crate::lenient::from_value(value).with_context(|| format!("{}", path.display()))
}

/// A pod config from `path`: metadata with a name and namespace is required; a missing UID is
/// generated, as crictl does.
pub(crate) async fn load_pod_config(path: &Path) -> anyhow::Result<PodSandboxConfig> {
    let bytes = read_file(path).await?;
    let mut config: PodSandboxConfig = parse(path, &bytes)?;
    check_pod_config(&mut config, new_uid)?;
    Ok(config)
}

/// crictl's checks on a pod config; `uid` makes a UID for a pod config without one.
pub(crate) fn check_pod_config(
    config: &mut PodSandboxConfig,
    uid: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let Some(metadata) = config.metadata.as_mut() else {
        anyhow::bail!("metadata is not set");
    };
    if metadata.uid.is_empty() {
        metadata.uid = uid()?;
    }
    if metadata.name.is_empty() || metadata.namespace.is_empty() {
        anyhow::bail!(
            "name or namespace is not in metadata (name {:?}, namespace {:?})",
            metadata.name,
            metadata.namespace
        );
    }
    if config
        .linux
        .as_ref()
        .is_some_and(|linux| linux.cgroup_parent.is_empty())
    {
        super::output::warn(
            "cgroup_parent is not set. Use `runtime-config` to get the runtime cgroup driver",
        );
    }
    Ok(())
}

/// A container config from `path`: metadata with a name and an image are required.
pub(crate) async fn load_container_config(path: &Path) -> anyhow::Result<ContainerConfig> {
    let bytes = read_file(path).await?;
    let mut config: ContainerConfig = parse(path, &bytes)?;
    check_container_config(&mut config)?;
    Ok(config)
}

/// crictl's checks on a container config; also records the image as the user wrote it.
pub(crate) fn check_container_config(config: &mut ContainerConfig) -> anyhow::Result<()> {
    let Some(metadata) = &config.metadata else {
        anyhow::bail!("metadata is not set");
    };
    if metadata.name.is_empty() {
        anyhow::bail!("name is not in metadata");
    }
    let Some(image) = config.image.as_mut() else {
        anyhow::bail!("image is not set");
    };
    if image.image.is_empty() {
        anyhow::bail!("image field is not set in image");
    }
    if image.user_specified_image.is_empty() {
        image.user_specified_image = image.image.clone();
    }
    Ok(())
}

/// A random UUID from the kernel.
fn new_uid() -> anyhow::Result<String> {
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .context("generate a pod UID from /proc/sys/kernel/random/uuid")?;
    Ok(uuid.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> anyhow::Result<PodSandboxConfig> {
        let bytes = serde_json::to_vec(&json)?;
        let mut config: PodSandboxConfig = parse(Path::new("pod.json"), &bytes)?;
        check_pod_config(&mut config, || Ok("generated-uid".to_string()))?;
        Ok(config)
    }

    #[test]
    fn pod_configs_get_a_uid_and_need_a_name_and_namespace() {
        let config = pod(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "log_directory": "/tmp/logs"
        }))
        .expect("valid");
        let metadata = config.metadata.expect("metadata");
        assert_eq!(metadata.uid, "generated-uid");
        assert_eq!(config.log_directory, "/tmp/logs");

        let kept = pod(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "mine"}
        }))
        .expect("valid");
        assert_eq!(kept.metadata.map(|m| m.uid).as_deref(), Some("mine"));

        let error = pod(serde_json::json!({"hostname": "x"})).expect_err("no metadata");
        assert_eq!(error.to_string(), "metadata is not set");
        let error = pod(serde_json::json!({"metadata": {"name": "web"}})).expect_err("no ns");
        assert!(
            error
                .to_string()
                .starts_with("name or namespace is not in metadata")
        );
    }

    #[test]
    fn container_configs_need_a_name_and_an_image() {
        let mut config: ContainerConfig = parse(
            Path::new("c.json"),
            br#"{"metadata": {"name": "c"}, "image": {"image": "busybox"}}"#,
        )
        .expect("parses");
        check_container_config(&mut config).expect("valid");
        assert_eq!(
            config
                .image
                .map(|image| image.user_specified_image)
                .as_deref(),
            Some("busybox")
        );

        for (json, message) in [
            (r#"{"image": {"image": "busybox"}}"#, "metadata is not set"),
            (
                r#"{"metadata": {}, "image": {"image": "b"}}"#,
                "name is not in metadata",
            ),
            (r#"{"metadata": {"name": "c"}}"#, "image is not set"),
            (
                r#"{"metadata": {"name": "c"}, "image": {}}"#,
                "image field is not set in image",
            ),
        ] {
            let mut config: ContainerConfig =
                parse(Path::new("c.json"), json.as_bytes()).expect("parses");
            let error = check_container_config(&mut config).expect_err("invalid");
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn bad_files_name_the_file() {
        let error =
            parse::<ContainerConfig>(Path::new("c.json"), b"{not json").expect_err("invalid JSON");
        assert!(
            error.to_string().starts_with("c.json: invalid JSON"),
            "{error}"
        );
        let error = parse::<ContainerConfig>(Path::new("c.yaml"), b"metadata:\n  name: c\n")
            .expect_err("YAML");
        assert!(
            error
                .to_string()
                .contains("YAML config files are not supported"),
            "{error}"
        );
        let error = parse::<ContainerConfig>(Path::new("c.json"), br#"{"command": "sh"}"#)
            .expect_err("wrong type");
        assert!(format!("{error:#}").starts_with("c.json: "), "{error:#}");
    }

    #[tokio::test]
    async fn missing_files_are_reported_like_crictl() {
        let error = load_pod_config(Path::new("/nonexistent/pod.json"))
            .await
            .expect_err("missing");
        assert_eq!(
            error.to_string(),
            "config at /nonexistent/pod.json not found"
        );
    }
}
