//! Applying one image layer (a tar, possibly gzip or zstd compressed) to an empty directory in
//! the form overlayfs reads as a lower layer.
//!
//! OCI layers mark deletions with whiteout files: `.wh.NAME` deletes `NAME` from the layers
//! below, and `.wh..wh..opq` in a directory hides everything below it. overlayfs spells the same
//! things as a 0:0 character device named `NAME` and the `trusted.overlay.opaque=y` attribute,
//! so that is what they become here.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;

use super::store::ImageError;
use crate::digest::{Digest, Hashing};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Unpacks the layer read from `blob` into `dir` and returns its diff ID (the digest of the
/// uncompressed tar).
pub fn apply_layer(blob: impl Read, dir: &Path) -> Result<Digest, ImageError> {
    let mut buffered = BufReader::with_capacity(256 * 1024, blob);
    let head = buffered.fill_buf()?;
    let decompressed: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(GzDecoder::new(buffered))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            ruzstd::decoding::StreamingDecoder::new(buffered)
                .map_err(|e| ImageError::invalid(format!("zstd layer: {e}")))?,
        )
    } else {
        Box::new(buffered)
    };
    let mut hashing = Hashing::new(decompressed);
    let mut archive = tar::Archive::new(&mut hashing);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let entries = archive
        .entries()
        .map_err(|e| ImageError::invalid(format!("layer is not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ImageError::invalid(format!("corrupt layer: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| ImageError::invalid(format!("corrupt layer path: {e}")))?
            .into_owned();
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX) {
            let parent = inside(dir, path.parent().unwrap_or(Path::new("")))?;
            fs::create_dir_all(&parent)?;
            if file_name == OPAQUE_MARKER {
                rustix::fs::setxattr(
                    &parent,
                    "trusted.overlay.opaque",
                    b"y",
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(io::Error::from)?;
            } else {
                let target = inside(&parent, Path::new(hidden))?;
                whiteout(&target)?;
            }
            continue;
        }
        entry.unpack_in(dir).map_err(|e| {
            // tar's error names the path; the reason is its source.
            let reason = e
                .get_ref()
                .and_then(|inner| inner.source())
                .map(|s| s.to_string());
            ImageError::invalid(format!("{e}: {}", reason.unwrap_or_default()))
        })?;
    }
    // The archive borrows the hashing reader; it is done with it here.
    let _ = archive;
    // Read to the end so the digest covers the whole stream, tar padding included.
    io::copy(&mut hashing, &mut io::sink())
        .map_err(|e| ImageError::invalid(format!("corrupt layer: {e}")))?;
    Ok(hashing.finish().0)
}

/// `relative` joined to `base`, refusing paths that climb out of it.
fn inside(base: &Path, relative: &Path) -> Result<PathBuf, ImageError> {
    let mut joined = base.to_path_buf();
    for component in relative.components() {
        match component {
            Component::Normal(part) => joined.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(ImageError::invalid(format!(
                    "layer path {} leaves the layer",
                    relative.display()
                )));
            }
        }
    }
    Ok(joined)
}

/// Makes `path` an overlayfs whiteout: a character device with number 0:0.
fn whiteout(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(_) => fs::remove_dir_all(path)?,
    }
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        rustix::fs::makedev(0, 0),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content) in files {
            // Names are written raw, so that a test can also build a hostile archive.
            let mut header = tar::Header::new_old();
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_cksum();
            builder
                .append(&header, *content)
                .expect("append to an in-memory tar");
        }
        builder.into_inner().expect("finish tar")
    }

    #[test]
    fn unpacks_gzip_and_plain_layers_with_whiteouts() {
        let tar = layer(&[
            ("etc/hostname", b"box\n"),
            ("etc/.wh.passwd", b""),
            ("var/.wh..wh..opq", b""),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).expect("gzip");
        let gz = gz.finish().expect("gzip");
        for blob in [tar.clone(), gz] {
            let dir = tempfile::tempdir().expect("tempdir");
            let diff_id = apply_layer(blob.as_slice(), dir.path()).expect("unpack");
            assert_eq!(
                diff_id,
                Digest::of(&tar),
                "diff ID is the uncompressed digest"
            );
            let hostname = fs::read(dir.path().join("etc/hostname")).expect("file unpacked");
            assert_eq!(hostname, b"box\n");
            let whiteout = fs::symlink_metadata(dir.path().join("etc/passwd")).expect("whiteout");
            assert!(whiteout.file_type().is_char_device());
            let opaque = rustix::fs::getxattr(
                dir.path().join("var"),
                "trusted.overlay.opaque",
                &mut [0u8; 4],
            );
            assert_eq!(opaque.ok(), Some(1));
        }
    }

    #[test]
    fn corrupt_and_escaping_layers_fail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut truncated = layer(&[("a", &[7u8; 4096])]);
        truncated.truncate(1000);
        assert!(apply_layer(truncated.as_slice(), dir.path()).is_err());
        let escaping = layer(&[("../.wh.outside", b"")]);
        let result = apply_layer(escaping.as_slice(), dir.path());
        assert!(result.is_err(), "a whiteout outside the layer is refused");
    }
}
