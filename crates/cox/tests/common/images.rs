//! The offline test images, shared by the runtime and cluster harnesses.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The offline test images, built by `dev/build-images` once per test run.
pub fn images_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("target/images");
    let status = Command::new(root.join("dev/build-images"))
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .expect("running dev/build-images");
    assert!(status.success(), "dev/build-images failed");
    dir
}
