//! Removing what the runtime set up, tolerating partial state: everything is attempted, and
//! mounts are always taken down before the directories that hold them are deleted (deleting
//! through a mount would reach into what is mounted).

use std::fs;
use std::path::{Path, PathBuf};

/// Mount points at or below `dir`, deepest first, from /proc/self/mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape)
        .map(PathBuf::from)
        .filter(|point| point.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(byte) => {
                out.push(byte as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Unmounts `point` (lazily if busy). Not mounted counts as success.
pub fn unmount(point: &Path) -> std::io::Result<()> {
    use rustix::mount::{UnmountFlags, unmount};
    loop {
        match unmount(point, UnmountFlags::empty()) {
            Ok(()) => continue, // Stacked mounts: take them all down.
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(rustix::io::Errno::BUSY) => {
                unmount(point, UnmountFlags::DETACH)?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Unmounts everything below `dir`, then deletes it. Errors are logged, not returned: this is
/// the last step of a teardown and must get as far as it can.
pub fn remove_dir_carefully(dir: &Path) {
    for point in mounts_under(dir) {
        if let Err(e) = unmount(&point) {
            tracing::warn!(point = %point.display(), error = %e, "cannot unmount");
        }
    }
    if !mounts_under(dir).is_empty() {
        tracing::warn!(dir = %dir.display(), "mounts remain; leaving the directory");
        return;
    }
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot remove"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(super::unescape(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(super::unescape("/plain"), "/plain");
    }
}
