//! What the node reports about its machine: CPUs, memory, huge pages, identity and versions
//! (read once, as upstream's cAdvisor machine info is), and the figures the eviction
//! thresholds watch (read on every status sync). Files are read under a root directory, `/`
//! in production, so tests can hand in a fake tree; the parsers are plain functions over text.
//! Reads are blocking: callers run them on `spawn_blocking`.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: no {field} line")]
    Missing { path: PathBuf, field: &'static str },
    #[error("statvfs {path}: {source}")]
    Statvfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The machine's fixed facts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Machine {
    /// Logical CPUs, as `/proc/cpuinfo` lists them (upstream counts those, not the affinity).
    pub cpus: u64,
    /// `MemTotal`, in bytes.
    pub memory_bytes: u64,
    /// `SwapTotal`, in bytes.
    pub swap_bytes: u64,
    /// Huge pages: (page size, bytes preallocated), for every size the kernel offers.
    pub hugepages: Vec<(u64, u64)>,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
}

/// The figures the eviction thresholds compare against, read on every sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Memory not in the working set: capacity less (usage less inactive file pages).
    pub memory_available: u64,
    pub fs: FsStats,
    /// Process IDs the kernel can still hand out.
    pub pids_available: u64,
    pub pid_max: u64,
}

/// A file system's size and what is left, as cAdvisor computes them from `statvfs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsStats {
    pub capacity: u64,
    pub available: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

/// Where the machine's files are: `/` in production.
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Self::new("/")
    }
}

impl Host {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    fn read(&self, absolute: &str) -> Result<String, MachineError> {
        let path = self.path(absolute);
        std::fs::read_to_string(&path).map_err(|source| MachineError::Read { path, source })
    }

    /// A file's first line, trimmed; empty when it cannot be read (upstream reports such
    /// identity fields empty too).
    fn read_or_empty(&self, absolute: &str) -> String {
        self.read(absolute)
            .map(|text| text.lines().next().unwrap_or("").trim().to_owned())
            .unwrap_or_default()
    }

    /// The fixed facts. Only memory is required; the rest is reported empty when missing.
    pub fn machine(&self) -> Result<Machine, MachineError> {
        let meminfo_path = "/proc/meminfo";
        let meminfo = self.read(meminfo_path)?;
        let memory_kib = meminfo_field(&meminfo, "MemTotal").ok_or(MachineError::Missing {
            path: self.path(meminfo_path),
            field: "MemTotal",
        })?;
        let cpus = self
            .read("/proc/cpuinfo")
            .ok()
            .map(|text| count_processors(&text))
            .filter(|n| *n > 0)
            .or_else(|| {
                std::thread::available_parallelism()
                    .ok()
                    .map(|n| n.get() as u64)
            })
            .unwrap_or(1);
        let machine_id = match self.read_or_empty("/etc/machine-id") {
            id if id.is_empty() => self.read_or_empty("/var/lib/dbus/machine-id"),
            id => id,
        };
        Ok(Machine {
            cpus,
            memory_bytes: memory_kib.saturating_mul(1024),
            swap_bytes: meminfo_field(&meminfo, "SwapTotal")
                .unwrap_or(0)
                .saturating_mul(1024),
            hugepages: self.hugepages(),
            machine_id,
            system_uuid: self.read_or_empty("/sys/class/dmi/id/product_uuid"),
            boot_id: self.read_or_empty("/proc/sys/kernel/random/boot_id"),
            // What `uname -r` prints.
            kernel_version: self.read_or_empty("/proc/sys/kernel/osrelease"),
            os_image: self
                .read("/etc/os-release")
                .ok()
                .and_then(|text| pretty_name(&text))
                .unwrap_or_else(|| "Linux".to_owned()),
        })
    }

    /// Every huge page size under `/sys/kernel/mm/hugepages`, smallest first, with the bytes
    /// preallocated in it.
    fn hugepages(&self) -> Vec<(u64, u64)> {
        let Ok(entries) = std::fs::read_dir(self.path("/sys/kernel/mm/hugepages")) else {
            return Vec::new();
        };
        let mut sizes: Vec<(u64, u64)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let size = hugepage_size(&entry.file_name().to_string_lossy())?;
                let pages: u64 = std::fs::read_to_string(entry.path().join("nr_hugepages"))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                Some((size, pages.saturating_mul(size)))
            })
            .collect();
        sizes.sort_unstable();
        sizes
    }

    /// What the eviction thresholds watch, with `data_dir` holding the node's files (the
    /// `nodefs` signals are its file system's).
    pub fn usage(&self, machine: &Machine, data_dir: &Path) -> Result<Usage, MachineError> {
        Ok(Usage {
            memory_available: self.memory_available(machine)?,
            fs: fs_stats(data_dir)?,
            pids_available: self.pids_available().unwrap_or(u64::MAX),
            pid_max: self.pid_max().unwrap_or(0),
        })
    }

    /// Upstream's `memory.available`: capacity less the root cgroup's working set (usage less
    /// inactive file pages), from the cgroup v1 memory controller; without one, `MemAvailable`.
    fn memory_available(&self, machine: &Machine) -> Result<u64, MachineError> {
        let cgroup = |file: &str| self.read(&format!("/sys/fs/cgroup/memory/{file}")).ok();
        if let (Some(usage), Some(stat)) = (cgroup("memory.usage_in_bytes"), cgroup("memory.stat"))
            && let Ok(usage) = usage.trim().parse::<u64>()
        {
            let inactive = stat_field(&stat, "total_inactive_file").unwrap_or(0);
            let working_set = usage.saturating_sub(inactive);
            return Ok(machine.memory_bytes.saturating_sub(working_set));
        }
        let meminfo_path = "/proc/meminfo";
        let meminfo = self.read(meminfo_path)?;
        meminfo_field(&meminfo, "MemAvailable")
            .map(|kib| kib.saturating_mul(1024))
            .ok_or(MachineError::Missing {
                path: self.path(meminfo_path),
                field: "MemAvailable",
            })
    }

    /// The kernel's process ID limit: the smaller of `pid_max` and `threads-max`, as upstream.
    fn pid_max(&self) -> Option<u64> {
        let read = |file| self.read(file).ok()?.trim().parse::<u64>().ok();
        match (
            read("/proc/sys/kernel/pid_max"),
            read("/proc/sys/kernel/threads-max"),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `pid.available`: the limit less the tasks that exist now.
    fn pids_available(&self) -> Option<u64> {
        let tasks = loadavg_tasks(&self.read("/proc/loadavg").ok()?)?;
        Some(self.pid_max()?.saturating_sub(tasks))
    }
}

/// `statvfs` of `dir`, or of its nearest existing parent when it does not exist yet.
pub fn fs_stats(dir: &Path) -> Result<FsStats, MachineError> {
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or_else(|| Path::new("/"));
    let stats = rustix::fs::statvfs(existing).map_err(|e| MachineError::Statvfs {
        path: existing.to_owned(),
        source: e.into(),
    })?;
    let fragment = stats.f_frsize;
    Ok(FsStats {
        capacity: stats.f_blocks.saturating_mul(fragment),
        available: stats.f_bavail.saturating_mul(fragment),
        inodes: stats.f_files,
        inodes_free: stats.f_ffree,
    })
}

/// A `Name:   value kB` field of `/proc/meminfo`, in KiB.
pub fn meminfo_field(meminfo: &str, name: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let (key, rest) = line.split_once(':')?;
        if key.trim() != name {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// A `name value` line of a cgroup's `memory.stat`.
fn stat_field(stat: &str, name: &str) -> Option<u64> {
    stat.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

/// The `processor` entries of `/proc/cpuinfo`.
pub fn count_processors(cpuinfo: &str) -> u64 {
    cpuinfo
        .lines()
        .filter(|line| {
            line.split_once(':')
                .is_some_and(|(key, _)| key.trim() == "processor")
        })
        .count() as u64
}

/// `PRETTY_NAME` of an os-release file, unquoted.
pub fn pretty_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|line| {
        let value = line.trim().strip_prefix("PRETTY_NAME=")?;
        let unquoted = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        Some(unquoted.replace("\\\"", "\"").replace("\\\\", "\\"))
    })
}

/// The page size of a `/sys/kernel/mm/hugepages` entry (`hugepages-2048kB`), in bytes.
pub fn hugepage_size(entry: &str) -> Option<u64> {
    let kib: u64 = entry
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024))
}

/// The task count of `/proc/loadavg` (`0.10 0.20 0.30 2/345 6789`: 345).
fn loadavg_tasks(loadavg: &str) -> Option<u64> {
    loadavg
        .split_whitespace()
        .nth(3)?
        .split_once('/')?
        .1
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:       24684084 kB\nMemFree:        14409004 kB\n\
                           MemAvailable:   23337396 kB\nSwapTotal:             0 kB\n\
                           HugePages_Total:       0\nHugepagesize:       2048 kB\n";

    #[test]
    fn meminfo_fields_in_kib() {
        assert_eq!(meminfo_field(MEMINFO, "MemTotal"), Some(24_684_084));
        assert_eq!(meminfo_field(MEMINFO, "MemAvailable"), Some(23_337_396));
        assert_eq!(meminfo_field(MEMINFO, "SwapTotal"), Some(0));
        assert_eq!(meminfo_field(MEMINFO, "HugePages_Total"), Some(0));
        assert_eq!(meminfo_field(MEMINFO, "Mem"), None);
        assert_eq!(meminfo_field("MemTotal: lots kB", "MemTotal"), None);
    }

    #[test]
    fn cpuinfo_os_release_hugepages_and_loadavg() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\n\nprocessor\t: 1\nmodel name\t: processor x\n";
        assert_eq!(count_processors(cpuinfo), 2);
        assert_eq!(
            pretty_name(
                "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
            ),
            Some("Debian GNU/Linux 12 (bookworm)".to_owned())
        );
        assert_eq!(
            pretty_name("PRETTY_NAME=Alpine\n"),
            Some("Alpine".to_owned())
        );
        assert_eq!(pretty_name("NAME=x\n"), None);
        assert_eq!(hugepage_size("hugepages-2048kB"), Some(2 << 20));
        assert_eq!(hugepage_size("hugepages-1048576kB"), Some(1 << 30));
        assert_eq!(hugepage_size("other"), None);
        assert_eq!(loadavg_tasks("2.00 1.59 1.35 3/111 26691\n"), Some(111));
        assert_eq!(
            stat_field("cache 5\ntotal_inactive_file 4096\n", "total_inactive_file"),
            Some(4096)
        );
    }

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn reads_a_machine_from_a_host_tree() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(r, "/proc/meminfo", MEMINFO);
        write(
            r,
            "/proc/cpuinfo",
            "processor : 0\nprocessor : 1\nprocessor : 2\n",
        );
        write(r, "/etc/machine-id", "abc123\n");
        write(r, "/proc/sys/kernel/random/boot_id", "boot-1\n");
        write(r, "/proc/sys/kernel/osrelease", "6.1.0-test\n");
        write(r, "/etc/os-release", "PRETTY_NAME=\"Test OS 1\"\n");
        write(
            r,
            "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
            "4\n",
        );
        write(
            r,
            "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages",
            "0\n",
        );
        write(r, "/proc/sys/kernel/pid_max", "32768\n");
        write(r, "/proc/sys/kernel/threads-max", "192730\n");
        write(r, "/proc/loadavg", "0.00 0.00 0.00 1/768 42\n");
        let host = Host::new(r);
        let machine = host.machine().unwrap();
        assert_eq!(
            machine,
            Machine {
                cpus: 3,
                memory_bytes: 24_684_084 * 1024,
                swap_bytes: 0,
                hugepages: vec![(2 << 20, 8 << 20), (1 << 30, 0)],
                machine_id: "abc123".into(),
                system_uuid: String::new(),
                boot_id: "boot-1".into(),
                kernel_version: "6.1.0-test".into(),
                os_image: "Test OS 1".into(),
            }
        );
        // No cgroup v1 memory controller in the tree: MemAvailable.
        let usage = host.usage(&machine, &r.join("not/yet/made")).unwrap();
        assert_eq!(usage.memory_available, 23_337_396 * 1024);
        assert_eq!(usage.pid_max, 32768);
        assert_eq!(usage.pids_available, 32768 - 768);
        assert!(usage.fs.capacity > 0 && usage.fs.available <= usage.fs.capacity);

        // With one: capacity less the working set.
        write(
            r,
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
            "3000000000\n",
        );
        write(
            r,
            "/sys/fs/cgroup/memory/memory.stat",
            "cache 1\ntotal_inactive_file 1000000000\n",
        );
        let usage = host.usage(&machine, r).unwrap();
        assert_eq!(usage.memory_available, 24_684_084 * 1024 - 2_000_000_000);

        let bare = tempfile::tempdir().unwrap();
        assert!(matches!(
            Host::new(bare.path()).machine(),
            Err(MachineError::Read { .. })
        ));
    }
}
