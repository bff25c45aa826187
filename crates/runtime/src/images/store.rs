//! The image store on disk: content-addressed blobs, unpacked layer snapshots, and the list of
//! images with their names.
//!
//! ```text
//! <root>/blobs/sha256/<hex>        every blob, verified against its digest when written
//! <root>/snapshots/<diff-id hex>/  one unpacked layer (overlayfs whiteouts), read-only by use
//! <root>/images.json               the image records; rewritten whole under images.lock
//! <root>/tmp/                      staging for blobs, snapshots and imports (same filesystem,
//!                                  so finished work moves in with one rename)
//! ```
//!
//! Several processes may use one store (the runtime and `cox images import`): blobs and
//! snapshots appear by atomic rename, and the records change under an exclusive `flock`.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::oci::{ImageConfig, Manifest};
use super::reference::Reference;
use super::unpack;
use crate::digest::{Digest, Hashing};

/// Why an image operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("digest mismatch for {expected}: content is {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    /// The message says what was not found.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("image {image} is in use by container {container}")]
    InUse { image: String, container: String },
    #[error("{0}")]
    Registry(String),
}

impl ImageError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ImageError::Invalid(message.into())
    }
}

/// One layer of an image: the blob as shipped, and the digest of its uncompressed tar.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    pub blob: Digest,
    pub diff_id: Digest,
}

/// An image known to the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config blob's digest: the image ID.
    pub id: Digest,
    /// `docker.io/library/busybox:1.36`.
    pub repo_tags: Vec<String>,
    /// `docker.io/library/busybox@sha256:<manifest digest>`.
    pub repo_digests: Vec<String>,
    /// Blob bytes: config plus layers as shipped.
    pub size: u64,
    pub layers: Vec<LayerRecord>,
    pub config: ImageConfig,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Records {
    images: Vec<ImageRecord>,
}

/// The on-disk image store.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    /// Opens (creating if needed) the store under `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        for dir in ["blobs/sha256", "snapshots", "tmp"] {
            fs::create_dir_all(root.join(dir))?;
        }
        Ok(ImageStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A fresh directory for staging work, removed when the guard drops.
    pub fn staging(&self) -> io::Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("stage-")
            .tempdir_in(self.root.join("tmp"))
    }

    /// Copies `content` into the store as `expected`, failing (and keeping nothing) if the bytes
    /// do not hash to it. `progress` hears the byte count as it grows.
    pub fn write_blob(
        &self,
        expected: &Digest,
        content: impl Read,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, ImageError> {
        if self.has_blob(expected) {
            return Ok(fs::metadata(self.blob_path(expected))?.len());
        }
        let mut staged = tempfile::NamedTempFile::new_in(self.root.join("tmp"))?;
        let mut reader = Hashing::new(content);
        let mut buffer = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            staged.write_all(&buffer[..n])?;
            total += n as u64;
            progress(total);
        }
        let (actual, _, _) = reader.finish();
        if &actual != expected {
            return Err(ImageError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        staged.as_file().sync_all()?;
        staged
            .persist(self.blob_path(expected))
            .map_err(|e| e.error)?;
        Ok(total)
    }

    /// Adds a blob already hashed elsewhere (a file inside a staging directory) by moving it.
    pub fn adopt_blob(&self, file: &Path) -> Result<Digest, ImageError> {
        let mut reader = Hashing::new(File::open(file)?);
        io::copy(&mut reader, &mut io::sink())?;
        let (digest, _, _) = reader.finish();
        if !self.has_blob(&digest) {
            fs::rename(file, self.blob_path(&digest))?;
        }
        Ok(digest)
    }

    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        fs::read(self.blob_path(digest)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::invalid(format!("blob {digest} is missing")),
            _ => ImageError::Io(e),
        })
    }

    /// The directory holding the unpacked layer with this diff ID.
    pub fn snapshot_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("snapshots").join(diff_id.hex())
    }

    /// Records an image whose manifest and blobs are all in the store: unpacks its layers (each
    /// once) and gives it `names` (moving a tag away from any other image that had it).
    pub fn register(
        &self,
        manifest: &Manifest,
        manifest_digest: Option<&Digest>,
        names: &[Reference],
    ) -> Result<ImageRecord, ImageError> {
        let config_bytes = self.read_blob(&manifest.config.digest)?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| ImageError::invalid(format!("image config is not valid: {e}")))?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::invalid(format!(
                "image config lists {} layers, the manifest {}",
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            )));
        }
        let mut layers = Vec::new();
        for (descriptor, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            self.unpack_layer(&descriptor.digest, diff_id)?;
            layers.push(LayerRecord {
                blob: descriptor.digest.clone(),
                diff_id: diff_id.clone(),
            });
        }
        let size = manifest.config.size.max(config_bytes.len() as u64)
            + manifest.layers.iter().map(|l| l.size).sum::<u64>();
        let tags: Vec<String> = names.iter().filter_map(Reference::tagged).collect();
        let digests: Vec<String> = match manifest_digest {
            Some(digest) => names.iter().map(|n| n.with_digest(digest)).collect(),
            None => Vec::new(),
        };
        let id = manifest.config.digest.clone();
        self.update(|records| {
            for other in records.images.iter_mut().filter(|r| r.id != id) {
                other.repo_tags.retain(|t| !tags.contains(t));
            }
            let record = match records.images.iter_mut().find(|r| r.id == id) {
                Some(existing) => existing,
                None => {
                    records.images.push(ImageRecord {
                        id: id.clone(),
                        repo_tags: Vec::new(),
                        repo_digests: Vec::new(),
                        size,
                        layers: layers.clone(),
                        config: config.clone(),
                    });
                    let last = records.images.len() - 1;
                    &mut records.images[last]
                }
            };
            for name in tags.iter().chain(&digests) {
                let list = if name.contains('@') {
                    &mut record.repo_digests
                } else {
                    &mut record.repo_tags
                };
                if !list.contains(name) {
                    list.push(name.clone());
                }
            }
            Ok(record.clone())
        })
    }

    /// Unpacks a layer blob into its snapshot directory unless that exists already, checking the
    /// uncompressed content against `diff_id`.
    fn unpack_layer(&self, blob: &Digest, diff_id: &Digest) -> Result<(), ImageError> {
        let target = self.snapshot_path(diff_id);
        if target.is_dir() {
            return Ok(());
        }
        let staging = self.staging()?;
        let dir = staging.path().join("fs");
        fs::create_dir(&dir)?;
        let actual = unpack::apply_layer(File::open(self.blob_path(blob))?, &dir)?;
        if &actual != diff_id {
            return Err(ImageError::DigestMismatch {
                expected: diff_id.clone(),
                actual,
            });
        }
        match fs::rename(&dir, &target) {
            Ok(()) => Ok(()),
            // Someone else unpacked the same layer meanwhile: theirs is as good as ours.
            Err(_) if target.is_dir() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every image, in the order they were first stored.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        Ok(self.read_records()?.images)
    }

    /// Finds an image by name (`busybox`, `docker.io/library/busybox:1.36`), by repo digest, by
    /// ID, or by a unique ID prefix of at least 3 hex digits.
    pub fn resolve(&self, text: &str) -> Result<Option<ImageRecord>, ImageError> {
        let images = self.list()?;
        Ok(find(&images, text).cloned())
    }

    /// Removes an image's record and every blob and snapshot no other image uses.
    /// `in_use` names images that containers still run on (by ID, with the container's ID).
    pub fn remove(
        &self,
        text: &str,
        in_use: &[(Digest, String)],
    ) -> Result<ImageRecord, ImageError> {
        let removed = self.update(|records| {
            let Some(image) = find(&records.images, text).cloned() else {
                return Err(ImageError::NotFound(format!("image {text:?} not found")));
            };
            if let Some((_, container)) = in_use.iter().find(|(id, _)| *id == image.id) {
                return Err(ImageError::InUse {
                    image: text.to_string(),
                    container: container.clone(),
                });
            }
            records.images.retain(|r| r.id != image.id);
            Ok(image)
        })?;
        self.collect_garbage()?;
        Ok(removed)
    }

    /// Deletes blobs and snapshots that no image record refers to. Manifest blobs are not
    /// kept (records hold what they need), so they go too.
    pub fn collect_garbage(&self) -> Result<(), ImageError> {
        let _lock = self.lock()?;
        let records = self.read_records()?;
        let mut blobs = HashSet::new();
        let mut snapshots = HashSet::new();
        for image in &records.images {
            blobs.insert(image.id.hex().to_string());
            for layer in &image.layers {
                blobs.insert(layer.blob.hex().to_string());
                snapshots.insert(layer.diff_id.hex().to_string());
            }
        }
        for (dir, keep) in [("blobs/sha256", &blobs), ("snapshots", &snapshots)] {
            for entry in fs::read_dir(self.root.join(dir))? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if keep.contains(&name) {
                    continue;
                }
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    fs::remove_dir_all(path)?;
                } else {
                    fs::remove_file(path)?;
                }
            }
        }
        Ok(())
    }

    /// Runs `change` on the records under the store's exclusive lock and saves the result.
    fn update<T>(
        &self,
        change: impl FnOnce(&mut Records) -> Result<T, ImageError>,
    ) -> Result<T, ImageError> {
        let _lock = self.lock()?;
        let mut records = self.read_records()?;
        let result = change(&mut records)?;
        let bytes = serde_json::to_vec_pretty(&records)
            .map_err(|e| ImageError::invalid(format!("encoding image records: {e}")))?;
        let mut staged = tempfile::NamedTempFile::new_in(self.root.join("tmp"))?;
        staged.write_all(&bytes)?;
        staged.as_file().sync_all()?;
        staged
            .persist(self.root.join("images.json"))
            .map_err(|e| e.error)?;
        Ok(result)
    }

    fn read_records(&self) -> Result<Records, ImageError> {
        match fs::read(self.root.join("images.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ImageError::invalid(format!(
                    "{} is corrupt: {e}",
                    self.root.join("images.json").display()
                ))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Records::default()),
            Err(e) => Err(e.into()),
        }
    }

    fn lock(&self) -> io::Result<File> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("images.lock"))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(file)
    }
}

/// The image `text` names among `images` (see [`ImageStore::resolve`]).
fn find<'a>(images: &'a [ImageRecord], text: &str) -> Option<&'a ImageRecord> {
    let text = text.trim();
    if let Ok(digest) = Digest::parse(text) {
        return images.iter().find(|i| i.id == digest);
    }
    if let Ok(reference) = Reference::parse(text) {
        let by_name = images.iter().find(|image| {
            reference
                .tagged()
                .is_some_and(|tag| image.repo_tags.contains(&tag) && reference.digest.is_none())
                || reference
                    .digest
                    .as_ref()
                    .is_some_and(|d| image.repo_digests.contains(&reference.with_digest(d)))
        });
        if by_name.is_some() {
            return by_name;
        }
    }
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    if hex.len() >= 3 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut matches = images.iter().filter(|i| i.id.hex().starts_with(hex));
        if let (Some(only), None) = (matches.next(), matches.next()) {
            return Some(only);
        }
    }
    None
}
