//! Reading and removing the cgroups runc makes, on these machines' cgroup v1 hierarchies
//! (one mount per controller under `/sys/fs/cgroup`).

use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
/// The controllers runc places a container in.
const CONTROLLERS: &[&str] = &[
    "cpu,cpuacct",
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "blkio",
    "devices",
    "freezer",
    "net_cls,net_prio",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "misc",
    "systemd",
    // runc makes the cgroup in the (controller-less) cgroup v2 hierarchy of a hybrid layout
    // too; left there, every pod would leave an empty directory behind.
    "unified",
];

fn path(controller: &str, cgroup: &str) -> PathBuf {
    Path::new(ROOT)
        .join(controller)
        .join(cgroup.trim_start_matches('/'))
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// How many processes the OOM killer killed in `cgroup` (the `oom_kill` count).
pub fn oom_kills(cgroup: &str) -> u64 {
    let Ok(text) = fs::read_to_string(path("memory", cgroup).join("memory.oom_control")) else {
        return 0;
    };
    text.lines()
        .filter_map(|line| line.strip_prefix("oom_kill "))
        .find_map(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// A cgroup's resource use right now.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// CPU time used, in nanoseconds.
    pub cpu_nanos: u64,
    /// Memory in use, less inactive file cache (what the kubelet calls the working set).
    pub working_set_bytes: u64,
    pub memory_usage_bytes: u64,
    pub rss_bytes: u64,
    pub page_faults: u64,
    pub major_page_faults: u64,
}

impl Usage {
    /// The CPU figures as the CRI reports them, taken at `timestamp` (nanoseconds).
    pub fn cpu(&self, timestamp: i64) -> cox_cri::v1::CpuUsage {
        cox_cri::v1::CpuUsage {
            timestamp,
            usage_core_nano_seconds: Some(cox_cri::v1::UInt64Value {
                value: self.cpu_nanos,
            }),
            usage_nano_cores: None,
        }
    }

    /// The memory figures as the CRI reports them, taken at `timestamp` (nanoseconds).
    pub fn memory(&self, timestamp: i64) -> cox_cri::v1::MemoryUsage {
        let value = |value| Some(cox_cri::v1::UInt64Value { value });
        cox_cri::v1::MemoryUsage {
            timestamp,
            working_set_bytes: value(self.working_set_bytes),
            available_bytes: None,
            usage_bytes: value(self.memory_usage_bytes),
            rss_bytes: value(self.rss_bytes),
            page_faults: value(self.page_faults),
            major_page_faults: value(self.major_page_faults),
        }
    }
}

/// Reads a cgroup's usage; `None` if it does not exist.
pub fn usage(cgroup: &str) -> Option<Usage> {
    let cpu_nanos = read_u64(&path("cpuacct", cgroup).join("cpuacct.usage"))
        .or_else(|| read_u64(&path("cpu,cpuacct", cgroup).join("cpuacct.usage")))?;
    let memory = path("memory", cgroup);
    let memory_usage_bytes = read_u64(&memory.join("memory.usage_in_bytes")).unwrap_or(0);
    let stat = fs::read_to_string(memory.join("memory.stat")).unwrap_or_default();
    let field = |name: &str| {
        stat.lines()
            .filter_map(|line| line.split_once(' '))
            .find(|(key, _)| *key == name)
            .and_then(|(_, value)| value.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(Usage {
        cpu_nanos,
        working_set_bytes: memory_usage_bytes.saturating_sub(field("total_inactive_file")),
        memory_usage_bytes,
        rss_bytes: field("total_rss"),
        page_faults: field("total_pgfault"),
        major_page_faults: field("total_pgmajfault"),
    })
}

/// How many processes the cgroup (and those below it) holds.
pub fn process_count(cgroup: &str) -> Option<u64> {
    read_u64(&path("pids", cgroup).join("pids.current"))
}

/// Interface counters from a `/proc/<pid>/net/dev` table; `eth0` is the default interface.
pub fn network_usage(net_dev: &str, timestamp: i64) -> cox_cri::v1::NetworkUsage {
    use cox_cri::v1::{NetworkInterfaceUsage, UInt64Value};
    let interfaces: Vec<NetworkInterfaceUsage> = net_dev
        .lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let fields: Vec<u64> = counters
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            let value = |i: usize| fields.get(i).map(|&value| UInt64Value { value });
            Some(NetworkInterfaceUsage {
                name: name.trim().to_string(),
                rx_bytes: value(0),
                rx_errors: value(2),
                tx_bytes: value(8),
                tx_errors: value(10),
            })
        })
        .filter(|i| i.name != "lo")
        .collect();
    cox_cri::v1::NetworkUsage {
        timestamp,
        default_interface: interfaces.iter().find(|i| i.name == "eth0").cloned(),
        interfaces,
    }
}

/// Removes `cgroup` (and anything empty beneath it) from every hierarchy. Cgroups that still
/// hold processes cannot be removed; those are left and reported.
pub fn remove(cgroup: &str) -> Result<(), String> {
    let mut busy = Vec::new();
    for controller in CONTROLLERS {
        let dir = path(controller, cgroup);
        if dir.is_dir() && remove_tree(&dir).is_err() {
            busy.push(dir.display().to_string());
        }
    }
    if busy.is_empty() {
        Ok(())
    } else {
        Err(format!("cgroups still in use: {}", busy.join(", ")))
    }
}

/// On a hybrid layout (cgroup v1 hierarchies beside a cgroup v2 one at `unified`), binds every
/// controller the v2 hierarchy still holds to a v1 hierarchy of its own at
/// `/sys/fs/cgroup/<controller>`, as systemd's hybrid layout has it, and returns the ones it
/// bound. crun refuses to run on a hybrid layout whose v2 hierarchy holds controllers ("cgroups
/// in hybrid mode not supported, drop all controllers from cgroupv2"); these machines leave
/// `hugetlb` there. runc does not care, so only the crun path calls this. The mounts stay: they
/// are the host's layout from then on, as if its init had made them.
pub fn bind_unified_controllers_to_v1() -> Result<Vec<String>, String> {
    let unified = Path::new(ROOT).join("unified");
    let Ok(held) = fs::read_to_string(unified.join("cgroup.controllers")) else {
        // Not a hybrid layout: nothing to do.
        return Ok(Vec::new());
    };
    let mut bound = Vec::new();
    for controller in held.split_whitespace() {
        let target = Path::new(ROOT).join(controller);
        fs::create_dir_all(&target).map_err(|e| format!("creating {}: {e}", target.display()))?;
        rustix::mount::mount(
            "cgroup",
            &target,
            "cgroup",
            rustix::mount::MountFlags::empty(),
            Some(
                std::ffi::CString::new(controller)
                    .map_err(|e| e.to_string())?
                    .as_c_str(),
            ),
        )
        .map_err(|e| {
            format!(
                "binding the {controller} controller to a cgroup v1 hierarchy at {}: {e} \
                 (it must not be enabled in any cgroup v2 subtree)",
                target.display()
            )
        })?;
        bound.push(controller.to_owned());
    }
    Ok(bound)
}

/// cgroup directories are removed with rmdir, children first (their files are virtual).
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_interface_counters_from_net_dev() {
        let table = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  eth0:    5000      40    1    0    0     0          0         0     7000      50    3    0    0     0       0          0\n";
        let usage = super::network_usage(table, 42);
        assert_eq!(usage.interfaces.len(), 1, "loopback is left out");
        let eth0 = usage.default_interface.expect("eth0");
        assert_eq!(eth0.rx_bytes.map(|v| v.value), Some(5000));
        assert_eq!(eth0.rx_errors.map(|v| v.value), Some(1));
        assert_eq!(eth0.tx_bytes.map(|v| v.value), Some(7000));
        assert_eq!(eth0.tx_errors.map(|v| v.value), Some(3));
    }
}
