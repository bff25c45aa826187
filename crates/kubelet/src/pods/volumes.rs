//! Pod volumes, set up on the node as upstream's kubelet lays them out:
//! `<pods root>/<uid>/volumes/kubernetes.io~<plugin>/<name>`.
//!
//! - `emptyDir`: a directory, or a tmpfs for `medium: Memory`.
//! - `hostPath`: the node's path, checked (or created) by its `type`.
//! - `configMap`, `secret`, `downwardAPI`, `projected` (also with ServiceAccount tokens,
//!   from [`Tokens`]): files written by the atomic writer:
//!   each version in a `..<time>` directory, `..data` a symlink to the current one, and every
//!   visible name a symlink through `..data`; an update swaps `..data` with one rename, so
//!   readers see the old or the new set, never a mix, and files change in place without a
//!   restart. Secrets (and projected volumes holding them) live on a tmpfs.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use cox_cri::v1;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Container, KeyToPath, Pod, Secret, Volume};
use kube::api::Api;

use super::tokens::Tokens;

/// A volume's files: relative path → (content, mode).
type Files = BTreeMap<String, (Vec<u8>, u32)>;

/// Where a pod's volumes live.
pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join(uid)
}

fn volume_dir(root: &Path, uid: &str, plugin: &str, name: &str) -> PathBuf {
    pod_dir(root, uid)
        .join("volumes")
        .join(format!("kubernetes.io~{plugin}"))
        .join(name)
}

/// Sets up (or refreshes) every volume of the pod; returns each volume's host path by name.
/// An error names the volume and the reason (the pod's containers wait as
/// `CreateContainerConfigError`).
pub async fn set_up(
    client: &kube::Client,
    tokens: &Tokens,
    root: &Path,
    pod: &Pod,
) -> Result<BTreeMap<String, PathBuf>, String> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let mut paths = BTreeMap::new();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let path = set_up_one(client, tokens, root, &uid, &namespace, pod, volume)
            .await
            .map_err(|e| format!("volume {:?}: {e}", volume.name))?;
        if let Some(path) = path {
            paths.insert(volume.name.clone(), path);
        }
    }
    Ok(paths)
}

async fn set_up_one(
    client: &kube::Client,
    tokens: &Tokens,
    root: &Path,
    uid: &str,
    namespace: &str,
    pod: &Pod,
    volume: &Volume,
) -> Result<Option<PathBuf>, String> {
    let io = |e: std::io::Error| e.to_string();
    if let Some(empty) = &volume.empty_dir {
        let dir = volume_dir(root, uid, "empty-dir", &volume.name);
        fs::create_dir_all(&dir).map_err(io)?;
        if empty.medium.as_deref() == Some("Memory") {
            ensure_tmpfs(&dir)?;
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).map_err(io)?;
        return Ok(Some(dir));
    }
    if let Some(host) = &volume.host_path {
        let path = PathBuf::from(&host.path);
        check_host_path(&path, host.type_.as_deref().unwrap_or(""))?;
        return Ok(Some(path));
    }
    let plugin;
    let mut memory = false;
    let files: Option<Files> = if let Some(source) = &volume.config_map {
        plugin = "configmap";
        let mode = source.default_mode.unwrap_or(0o644) as u32;
        let optional = source.optional.unwrap_or(false);
        let map = Api::<ConfigMap>::namespaced(client.clone(), namespace)
            .get_opt(&source.name)
            .await
            .map_err(|e| e.to_string())?;
        match map {
            Some(map) => Some(select(
                &config_map_data(&map),
                source.items.as_deref(),
                mode,
                optional,
                "ConfigMap",
                &source.name,
            )?),
            None if optional => Some(Files::new()),
            None => return Err(format!("configmap \"{}\" not found", source.name)),
        }
    } else if let Some(source) = &volume.secret {
        plugin = "secret";
        memory = true;
        let mode = source.default_mode.unwrap_or(0o644) as u32;
        let optional = source.optional.unwrap_or(false);
        let name = source.secret_name.clone().unwrap_or_default();
        let secret = Api::<Secret>::namespaced(client.clone(), namespace)
            .get_opt(&name)
            .await
            .map_err(|e| e.to_string())?;
        match secret {
            Some(secret) => Some(select(
                &secret_data(&secret),
                source.items.as_deref(),
                mode,
                optional,
                "Secret",
                &name,
            )?),
            None if optional => Some(Files::new()),
            None => return Err(format!("secret \"{name}\" not found")),
        }
    } else if let Some(source) = &volume.downward_api {
        plugin = "downward-api";
        let mode = source.default_mode.unwrap_or(0o644) as u32;
        let mut files = Files::new();
        for item in source.items.iter().flatten() {
            if let Some(field) = &item.field_ref {
                let value = downward_field(pod, &field.field_path);
                files.insert(
                    item.path.clone(),
                    (value.into_bytes(), item.mode.map_or(mode, |m| m as u32)),
                );
            }
        }
        Some(files)
    } else if let Some(source) = &volume.projected {
        plugin = "projected";
        let mode = source.default_mode.unwrap_or(0o644) as u32;
        let mut files = Files::new();
        for part in source.sources.iter().flatten() {
            if let Some(cm) = &part.config_map {
                let optional = cm.optional.unwrap_or(false);
                let map = Api::<ConfigMap>::namespaced(client.clone(), namespace)
                    .get_opt(&cm.name)
                    .await
                    .map_err(|e| e.to_string())?;
                match map {
                    Some(map) => files.extend(select(
                        &config_map_data(&map),
                        cm.items.as_deref(),
                        mode,
                        optional,
                        "ConfigMap",
                        &cm.name,
                    )?),
                    None if optional => {}
                    None => return Err(format!("configmap \"{}\" not found", cm.name)),
                }
            }
            if let Some(s) = &part.secret {
                memory = true;
                let optional = s.optional.unwrap_or(false);
                let secret = Api::<Secret>::namespaced(client.clone(), namespace)
                    .get_opt(&s.name)
                    .await
                    .map_err(|e| e.to_string())?;
                match secret {
                    Some(secret) => files.extend(select(
                        &secret_data(&secret),
                        s.items.as_deref(),
                        mode,
                        optional,
                        "Secret",
                        &s.name,
                    )?),
                    None if optional => {}
                    None => return Err(format!("secret \"{}\" not found", s.name)),
                }
            }
            if let Some(projection) = &part.service_account_token {
                // Tokens are secrets: the volume goes on a tmpfs.
                memory = true;
                let token = tokens
                    .get(
                        client,
                        pod,
                        projection.audience.as_deref().unwrap_or_default(),
                        projection.expiration_seconds.unwrap_or(3600),
                    )
                    .await?;
                files.insert(projection.path.clone(), (token.into_bytes(), mode));
            }
            if let Some(downward) = &part.downward_api {
                for item in downward.items.iter().flatten() {
                    if let Some(field) = &item.field_ref {
                        let value = downward_field(pod, &field.field_path);
                        files.insert(
                            item.path.clone(),
                            (value.into_bytes(), item.mode.map_or(mode, |m| m as u32)),
                        );
                    }
                }
            }
        }
        Some(files)
    } else {
        // Kinds not supported yet (persistentVolumeClaim, ...) mount nothing.
        return Err("this volume type is not supported yet".into());
    };
    let dir = volume_dir(root, uid, plugin, &volume.name);
    fs::create_dir_all(&dir).map_err(io)?;
    if memory {
        ensure_tmpfs(&dir)?;
    }
    if let Some(files) = files {
        write_atomically(&dir, &files).map_err(io)?;
    }
    Ok(Some(dir))
}

fn config_map_data(map: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = map
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    data.extend(
        map.binary_data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, ByteString(v))| (k, v)),
    );
    data
}

fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, ByteString(v))| (k, v))
        .collect();
    data.extend(
        secret
            .string_data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes())),
    );
    data
}

/// The keys to project: all of them, or the listed `items` (each at its path, with its mode).
fn select(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    mode: u32,
    optional: bool,
    kind: &str,
    name: &str,
) -> Result<Files, String> {
    let mut files = Files::new();
    match items {
        None => {
            for (key, value) in data {
                files.insert(key.clone(), (value.clone(), mode));
            }
        }
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(value) => {
                        files.insert(
                            item.path.clone(),
                            (value.clone(), item.mode.map_or(mode, |m| m as u32)),
                        );
                    }
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "{kind} {name:?} references non-existent key: {}",
                            item.key
                        ));
                    }
                }
            }
        }
    }
    for path in files.keys() {
        if path.starts_with('/') || path.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(format!("invalid path {path:?}"));
        }
    }
    Ok(files)
}

fn downward_field(pod: &Pod, path: &str) -> String {
    let render = |map: &Option<BTreeMap<String, String>>| {
        map.iter()
            .flatten()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    match path {
        "metadata.labels" => render(&pod.metadata.labels),
        "metadata.annotations" => render(&pod.metadata.annotations),
        "metadata.name" => pod.metadata.name.clone().unwrap_or_default(),
        "metadata.namespace" => pod.metadata.namespace.clone().unwrap_or_default(),
        "metadata.uid" => pod.metadata.uid.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// The atomic writer: a new `..<time>` directory with the files, `..data` swapped to it with
/// one rename, visible names as symlinks through `..data`. Nothing changes when the content
/// is the same.
pub fn write_atomically(dir: &Path, files: &Files) -> std::io::Result<()> {
    let data_link = dir.join("..data");
    if let Ok(current) = fs::read_link(&data_link) {
        let current = dir.join(current);
        let same = files.iter().all(|(path, (content, _))| {
            fs::read(current.join(path)).is_ok_and(|old| old == *content)
        }) && count_files(&current) == files.len();
        if same {
            return Ok(());
        }
    }
    let stamp = jiff::Timestamp::now()
        .strftime("..%Y_%m_%d_%H_%M_%S.%f")
        .to_string();
    let version = dir.join(&stamp);
    fs::create_dir_all(&version)?;
    for (path, (content, mode)) in files {
        let file = version.join(path);
        if let Some(parent) = file.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&file, content)?;
        fs::set_permissions(&file, fs::Permissions::from_mode(*mode & 0o777))?;
    }
    let staged = dir.join("..data_tmp");
    let _ = fs::remove_file(&staged);
    symlink(&stamp, &staged)?;
    let previous = fs::read_link(&data_link).ok();
    fs::rename(&staged, &data_link)?;
    // Visible names: the first path segment of each file, through ..data.
    let mut tops: Vec<String> = files
        .keys()
        .map(|p| p.split('/').next().unwrap_or(p).to_string())
        .collect();
    tops.dedup();
    for top in &tops {
        let link = dir.join(top);
        if fs::symlink_metadata(&link).is_err() {
            symlink(Path::new("..data").join(top), &link)?;
        }
    }
    // Names that are gone from the new version.
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !tops.contains(&name) {
            let _ = fs::remove_file(entry.path());
        }
    }
    if let Some(previous) = previous {
        let old = dir.join(previous);
        if old != version {
            let _ = fs::remove_dir_all(old);
        }
    }
    Ok(())
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Mounts a tmpfs on `dir` unless one is there.
fn ensure_tmpfs(dir: &Path) -> Result<(), String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let text = dir.display().to_string();
    if info
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(text.as_str()))
    {
        return Ok(());
    }
    rustix::mount::mount(
        "tmpfs",
        dir,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .map_err(|e| format!("mounting a tmpfs on {}: {e}", dir.display()))
}

/// Checks a hostPath by its type, creating what `...OrCreate` asks for.
fn check_host_path(path: &Path, kind: &str) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = fs::metadata(path);
    let missing = || {
        format!(
            "hostPath type check failed: {} does not exist",
            path.display()
        )
    };
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if meta.is_err() {
                fs::create_dir_all(path).map_err(|e| e.to_string())?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o755))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "FileOrCreate" => {
            if meta.is_err() {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                fs::File::create(path).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "Directory" => meta
            .map_err(|_| missing())?
            .is_dir()
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "hostPath type check failed: {} is not a directory",
                    path.display()
                )
            }),
        "File" => meta
            .map_err(|_| missing())?
            .is_file()
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "hostPath type check failed: {} is not a file",
                    path.display()
                )
            }),
        "Socket" => meta
            .map_err(|_| missing())?
            .file_type()
            .is_socket()
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "hostPath type check failed: {} is not a socket file",
                    path.display()
                )
            }),
        "CharDevice" => meta
            .map_err(|_| missing())?
            .file_type()
            .is_char_device()
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "hostPath type check failed: {} is not a character device",
                    path.display()
                )
            }),
        "BlockDevice" => meta
            .map_err(|_| missing())?
            .file_type()
            .is_block_device()
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "hostPath type check failed: {} is not a block device",
                    path.display()
                )
            }),
        other => Err(format!("unknown hostPath type {other:?}")),
    }
}

/// The container's mounts from its volumeMounts (subPath joined; readOnly kept).
pub fn mounts(
    container: &Container,
    volumes: &BTreeMap<String, PathBuf>,
) -> Result<Vec<v1::Mount>, String> {
    let mut mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let Some(base) = volumes.get(&mount.name) else {
            return Err(format!("volume {:?} not found", mount.name));
        };
        let mut host = base.clone();
        if let Some(sub) = mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if sub.starts_with('/') || sub.split('/').any(|p| p == "..") {
                return Err(format!("invalid subPath {sub:?}"));
            }
            host = host.join(sub);
            if !host.exists() {
                fs::create_dir_all(&host).map_err(|e| e.to_string())?;
            }
        }
        mounts.push(v1::Mount {
            container_path: mount.mount_path.clone(),
            host_path: host.display().to_string(),
            readonly: mount.read_only.unwrap_or(false),
            selinux_relabel: false,
            propagation: match mount.mount_propagation.as_deref() {
                Some("HostToContainer") => v1::MountPropagation::PropagationHostToContainer as i32,
                Some("Bidirectional") => v1::MountPropagation::PropagationBidirectional as i32,
                _ => v1::MountPropagation::PropagationPrivate as i32,
            },
            ..Default::default()
        });
    }
    Ok(mounts)
}

/// Unmounts and removes a pod's volume directories.
pub fn tear_down(root: &Path, uid: &str) {
    let dir = pod_dir(root, uid);
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = rustix::mount::unmount(point, rustix::mount::UnmountFlags::DETACH);
    }
    let _ = fs::remove_dir_all(&dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_atomic_writer_swaps_versions_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = Files::new();
        files.insert("a".into(), (b"one".to_vec(), 0o644));
        files.insert("sub/b".into(), (b"two".to_vec(), 0o600));
        write_atomically(dir.path(), &files).expect("first write");
        assert_eq!(fs::read(dir.path().join("a")).expect("a"), b"one");
        assert_eq!(fs::read(dir.path().join("sub/b")).expect("b"), b"two");
        let first = fs::read_link(dir.path().join("..data")).expect("..data");

        write_atomically(dir.path(), &files).expect("same content");
        assert_eq!(
            fs::read_link(dir.path().join("..data")).expect("..data"),
            first,
            "unchanged content keeps the version"
        );

        files.insert("a".into(), (b"uno".to_vec(), 0o644));
        files.remove("sub/b");
        write_atomically(dir.path(), &files).expect("update");
        assert_eq!(fs::read(dir.path().join("a")).expect("a"), b"uno");
        assert!(
            fs::symlink_metadata(dir.path().join("sub")).is_err(),
            "removed names go"
        );
        assert!(
            !dir.path().join(first).exists(),
            "the old version is removed"
        );
    }
}
