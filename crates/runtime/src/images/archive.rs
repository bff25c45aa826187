//! Importing image archives: OCI image layouts in a tar (`skopeo copy ... oci-archive:`,
//! `ctr export`) and `docker save` archives.

use std::fs::{self, File};
use std::path::Path;

use super::oci::{self, Descriptor, Index, Manifest};
use super::reference::Reference;
use super::store::{ImageError, ImageRecord, ImageStore};
use crate::digest::Digest;

/// Imports every image in the archive at `path`; returns what was stored.
pub fn import(store: &ImageStore, path: &Path) -> Result<Vec<ImageRecord>, ImageError> {
    let file = File::open(path)
        .map_err(|e| ImageError::invalid(format!("cannot open {}: {e}", path.display())))?;
    let staging = store.staging()?;
    let root = staging.path().join("archive");
    fs::create_dir(&root)?;
    let mut archive = tar::Archive::new(file);
    archive.set_preserve_permissions(false);
    archive.set_preserve_ownerships(false);
    archive.unpack(&root).map_err(|e| {
        ImageError::invalid(format!(
            "{} is not a readable tar archive: {e}",
            path.display()
        ))
    })?;
    if root.join("index.json").is_file() {
        import_oci_layout(store, &root)
    } else if root.join("manifest.json").is_file() {
        import_docker_archive(store, &root)
    } else {
        Err(ImageError::invalid(format!(
            "{} is neither an OCI archive (no index.json) nor a docker archive (no manifest.json)",
            path.display()
        )))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ImageError> {
    let bytes = fs::read(path)
        .map_err(|e| ImageError::invalid(format!("archive lacks {}: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::invalid(format!("{} is not valid: {e}", path.display())))
}

/// Moves the layout's blob `digest` into the store, checking its content.
fn take_blob(store: &ImageStore, layout: &Path, digest: &Digest) -> Result<(), ImageError> {
    if store.has_blob(digest) {
        return Ok(());
    }
    let path = layout.join("blobs/sha256").join(digest.hex());
    let file = File::open(&path)
        .map_err(|_| ImageError::invalid(format!("archive lacks blob {digest}")))?;
    store.write_blob(digest, file, |_| {})?;
    Ok(())
}

fn import_oci_layout(store: &ImageStore, layout: &Path) -> Result<Vec<ImageRecord>, ImageError> {
    let index: Index = read_json(&layout.join("index.json"))?;
    let mut imported = Vec::new();
    for descriptor in &index.manifests {
        let names = names_of(descriptor);
        let manifest_descriptor = resolve_manifest(store, layout, descriptor)?;
        take_blob(store, layout, &manifest_descriptor.digest)?;
        let manifest: Manifest =
            serde_json::from_slice(&store.read_blob(&manifest_descriptor.digest)?)
                .map_err(|e| ImageError::invalid(format!("manifest is not valid: {e}")))?;
        take_blob(store, layout, &manifest.config.digest)?;
        for layer in &manifest.layers {
            take_blob(store, layout, &layer.digest)?;
        }
        imported.push(store.register(&manifest, Some(&manifest_descriptor.digest), &names)?);
    }
    if imported.is_empty() {
        return Err(ImageError::invalid("the archive's index lists no images"));
    }
    Ok(imported)
}

/// Follows nested indexes down to the manifest for this platform.
fn resolve_manifest(
    store: &ImageStore,
    layout: &Path,
    descriptor: &Descriptor,
) -> Result<Descriptor, ImageError> {
    let mut current = descriptor.clone();
    for _ in 0..4 {
        take_blob(store, layout, &current.digest)?;
        let document: serde_json::Value =
            serde_json::from_slice(&store.read_blob(&current.digest)?)
                .map_err(|e| ImageError::invalid(format!("{} is not JSON: {e}", current.digest)))?;
        if !oci::is_index(&current.media_type, &document) {
            return Ok(current);
        }
        let index: Index = serde_json::from_value(document)
            .map_err(|e| ImageError::invalid(format!("index is not valid: {e}")))?;
        current = oci::pick_platform(&index)
            .cloned()
            .ok_or_else(|| ImageError::invalid("the image has no linux/amd64 variant"))?;
    }
    Err(ImageError::invalid("image indexes nest too deep"))
}

/// The names an index entry gives its image. A bare tag (`1.36`) names nothing.
fn names_of(descriptor: &Descriptor) -> Vec<Reference> {
    [oci::CONTAINERD_NAME, oci::REF_NAME]
        .iter()
        .filter_map(|key| descriptor.annotations.get(*key))
        .filter(|name| name.contains('/') || (name.contains(':') && !name.starts_with(':')))
        .filter_map(|name| Reference::parse(name).ok())
        .take(1)
        .collect()
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn import_docker_archive(store: &ImageStore, root: &Path) -> Result<Vec<ImageRecord>, ImageError> {
    let entries: Vec<DockerEntry> = read_json(&root.join("manifest.json"))?;
    let mut imported = Vec::new();
    for entry in entries {
        let config = adopt(store, root, &entry.config)?;
        let mut layers = Vec::new();
        for layer in &entry.layers {
            let digest = adopt(store, root, layer)?;
            let size = fs::metadata(store.blob_path(&digest))?.len();
            layers.push(Descriptor {
                media_type: "application/vnd.docker.image.rootfs.diff.tar".to_string(),
                digest,
                size,
                annotations: Default::default(),
                platform: None,
            });
        }
        let manifest = Manifest {
            media_type: oci::DOCKER_MANIFEST.to_string(),
            config: Descriptor {
                media_type: "application/vnd.docker.container.image.v1+json".to_string(),
                size: fs::metadata(store.blob_path(&config))?.len(),
                digest: config,
                annotations: Default::default(),
                platform: None,
            },
            layers,
        };
        let names = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|tag| Reference::parse(tag))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ImageError::invalid(e.to_string()))?;
        imported.push(store.register(&manifest, None, &names)?);
    }
    if imported.is_empty() {
        return Err(ImageError::invalid(
            "the archive's manifest.json lists no images",
        ));
    }
    Ok(imported)
}

/// Stores an archive member whose digest is whatever its content hashes to.
fn adopt(store: &ImageStore, root: &Path, member: &str) -> Result<Digest, ImageError> {
    let path = root.join(member);
    let resolved = path
        .canonicalize()
        .map_err(|_| ImageError::invalid(format!("archive lacks {member}")))?;
    let inside = root
        .canonicalize()
        .map(|r| resolved.starts_with(r))
        .unwrap_or(false);
    if !inside {
        return Err(ImageError::invalid(format!(
            "archive member {member} leaves the archive"
        )));
    }
    store.adopt_blob(&resolved)
}

/// Imports every `*.tar` in `dir` not imported before (by name, size and modification time,
/// remembered in the store's `imported.json`). Failures are returned per archive; the rest go
/// on.
pub fn import_dir(
    store: &ImageStore,
    dir: &Path,
) -> Vec<(std::path::PathBuf, Result<usize, ImageError>)> {
    let mut outcomes = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return outcomes;
    };
    let seen_path = store.root().join("imported.json");
    let mut seen: std::collections::BTreeMap<String, String> = fs::read(&seen_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut archives: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tar"))
        .collect();
    archives.sort();
    for path in archives {
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        let stamp = format!(
            "{}:{:?}",
            meta.len(),
            meta.modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        );
        let key = path.display().to_string();
        if seen.get(&key) == Some(&stamp) {
            continue;
        }
        let outcome = import(store, &path).map(|images| images.len());
        if outcome.is_ok() {
            seen.insert(key, stamp);
        }
        outcomes.push((path, outcome));
    }
    if let Ok(bytes) = serde_json::to_vec_pretty(&seen) {
        let _ = fs::write(&seen_path, bytes);
    }
    outcomes
}
