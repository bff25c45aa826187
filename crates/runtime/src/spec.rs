//! The OCI runtime spec (`config.json`) for a container, from its CRI config, its pod and its
//! image, following the rules the CRI and containerd use.

use std::collections::BTreeMap;
use std::path::Path;

use cox_cri::v1::{self, ContainerConfig};
use serde_json::{Value, json};

use crate::images::oci::RunConfig;

/// The capabilities a container gets unless it asks otherwise (containerd's and Docker's set).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, for privileged containers.
const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What the pod contributes to each of its containers.
#[derive(Debug, Clone)]
pub struct PodContext<'a> {
    /// The pod's persistent namespaces (network, uts, ipc); `None` for the host's.
    pub net_ns: Option<&'a Path>,
    pub uts_ns: Option<&'a Path>,
    pub ipc_ns: Option<&'a Path>,
    /// The pod's shared pid namespace to join; `None`: one of the container's own.
    pub pid_ns: Option<&'a Path>,
    /// Files bind-mounted at /etc/resolv.conf, /etc/hosts, /etc/hostname unless the container
    /// mounts its own.
    pub etc_files: Vec<(&'static str, &'a Path)>,
    /// Share the host's pid namespace.
    pub host_pid: bool,
}

/// Why a spec cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// The process arguments, by the CRI's rule: the container's command replaces the image's
/// entrypoint, and its args replace the image's cmd; args alone keep the entrypoint.
pub fn process_args(config: &ContainerConfig, image: &RunConfig) -> Vec<String> {
    let entrypoint = image.entrypoint.clone().unwrap_or_default();
    let cmd = image.cmd.clone().unwrap_or_default();
    if !config.command.is_empty() {
        config.command.iter().chain(&config.args).cloned().collect()
    } else if !config.args.is_empty() {
        entrypoint
            .into_iter()
            .chain(config.args.iter().cloned())
            .collect()
    } else {
        entrypoint.into_iter().chain(cmd).collect()
    }
}

/// The environment: the image's, then the container's (later keys override earlier ones).
pub fn environment(config: &ContainerConfig, image: &RunConfig) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |key: &str, value: &str| match env.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value.to_string(),
        None => env.push((key.to_string(), value.to_string())),
    };
    for pair in image.env.iter().flatten() {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        set(key, value);
    }
    for pair in &config.envs {
        set(&pair.key, &pair.value);
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(
            0,
            (
                "PATH".to_string(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            ),
        );
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The user to run as: the security context's uid/gid or user name, else the image's `User`,
/// resolved against the container's own /etc/passwd and /etc/group.
pub fn user(
    config: &ContainerConfig,
    image: &RunConfig,
    rootfs: &Path,
) -> Result<Value, SpecError> {
    let security = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref());
    let (mut uid, mut gid, mut name) = (None, None, None);
    if let Some(security) = security {
        uid = security.run_as_user.as_ref().map(|v| v.value as u32);
        gid = security.run_as_group.as_ref().map(|v| v.value as u32);
        if !security.run_as_username.is_empty() {
            name = Some(security.run_as_username.clone());
        }
    }
    if uid.is_none() && name.is_none() && !image.user.is_empty() {
        let (user_part, group_part) = match image.user.split_once(':') {
            Some((u, g)) => (u.to_string(), Some(g.to_string())),
            None => (image.user.clone(), None),
        };
        match user_part.parse::<u32>() {
            Ok(n) => uid = Some(n),
            Err(_) => name = Some(user_part),
        }
        if gid.is_none()
            && let Some(group) = group_part
        {
            gid = Some(match group.parse::<u32>() {
                Ok(n) => n,
                Err(_) => lookup(&rootfs.join("etc/group"), &group)
                    .map(|fields| fields.0)
                    .ok_or_else(|| SpecError(format!("group {group:?} not found in the image")))?,
            });
        }
    }
    if let Some(name) = name {
        let (found_uid, found_gid) =
            lookup(&rootfs.join("etc/passwd"), &name).ok_or_else(|| {
                SpecError(format!(
                    "user {name:?} not found in the image's /etc/passwd"
                ))
            })?;
        uid = Some(found_uid);
        gid = gid.or(Some(found_gid));
    }
    let uid = uid.unwrap_or(0);
    let gid = match gid {
        Some(gid) => gid,
        // Without a group, the user's primary group from /etc/passwd, else 0.
        None => primary_group(&rootfs.join("etc/passwd"), uid).unwrap_or(0),
    };
    let mut additional: Vec<u32> = security
        .map(|s| s.supplemental_groups.iter().map(|g| *g as u32).collect())
        .unwrap_or_default();
    additional.retain(|g| *g != gid);
    Ok(json!({"uid": uid, "gid": gid, "additionalGids": additional}))
}

/// `(uid or gid, gid)` of `name` in a passwd- or group-format file.
fn lookup(file: &Path, name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() != Some(&name) || fields.len() < 3 {
            return None;
        }
        let id = fields[2].parse().ok()?;
        let group = fields.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
        Some((id, group))
    })
}

fn primary_group(passwd: &Path, uid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(passwd).ok()?;
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 3 && fields[2].parse() == Ok(uid)).then(|| fields[3].parse().ok())?
    })
}

fn capabilities(security: Option<&v1::LinuxContainerSecurityContext>) -> Vec<String> {
    if security.is_some_and(|s| s.privileged) {
        return ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    }
    let normalize = |name: &str| {
        let upper = name.to_ascii_uppercase();
        if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        }
    };
    let mut caps: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    if let Some(requested) = security.and_then(|s| s.capabilities.as_ref()) {
        for add in &requested.add_capabilities {
            if add.eq_ignore_ascii_case("ALL") {
                caps = ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect();
            } else if !caps.contains(&normalize(add)) {
                caps.push(normalize(add));
            }
        }
        for drop in &requested.drop_capabilities {
            if drop.eq_ignore_ascii_case("ALL") {
                caps.clear();
            } else {
                caps.retain(|c| *c != normalize(drop));
            }
        }
        for add in &requested.add_capabilities {
            if !add.eq_ignore_ascii_case("ALL") && !caps.contains(&normalize(add)) {
                caps.push(normalize(add));
            }
        }
    }
    caps
}

fn default_mounts() -> Vec<Value> {
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ]
}

/// The container's `config.json`.
pub fn generate(
    config: &ContainerConfig,
    image: &RunConfig,
    pod: &PodContext<'_>,
    rootfs: &Path,
    cgroups_path: &str,
) -> Result<Value, SpecError> {
    let linux = config.linux.as_ref();
    let security = linux.and_then(|l| l.security_context.as_ref());
    let privileged = security.is_some_and(|s| s.privileged);
    let args = process_args(config, image);
    if args.is_empty() {
        return Err(SpecError(
            "no command: the container config and the image both leave it empty".into(),
        ));
    }
    let cwd = if !config.working_dir.is_empty() {
        config.working_dir.clone()
    } else if !image.working_dir.is_empty() {
        image.working_dir.clone()
    } else {
        "/".to_string()
    };
    let caps = capabilities(security);

    let mut mounts = default_mounts();
    let mounted: Vec<&str> = config
        .mounts
        .iter()
        .map(|m| m.container_path.as_str())
        .collect();
    for (target, source) in &pod.etc_files {
        if !mounted.contains(target) {
            mounts.push(json!({"destination": target, "type": "bind", "source": source, "options": ["rbind", "rprivate", "rw"]}));
        }
    }
    for mount in &config.mounts {
        if mount.container_path.is_empty() || !mount.container_path.starts_with('/') {
            return Err(SpecError(format!(
                "mount target {:?} is not an absolute path",
                mount.container_path
            )));
        }
        let propagation = match mount.propagation {
            1 => "rslave",
            2 => "rshared",
            _ => "rprivate",
        };
        let mode = if mount.readonly { "ro" } else { "rw" };
        mounts.push(json!({
            "destination": mount.container_path,
            "type": "bind",
            "source": mount.host_path,
            "options": ["rbind", propagation, mode],
        }));
    }

    let mut namespaces = vec![json!({"type": "mount"})];
    if !pod.host_pid {
        namespaces.push(match pod.pid_ns {
            Some(path) => json!({"type": "pid", "path": path}),
            None => json!({"type": "pid"}),
        });
    }
    for (kind, path) in [
        ("network", pod.net_ns),
        ("uts", pod.uts_ns),
        ("ipc", pod.ipc_ns),
    ] {
        if let Some(path) = path {
            namespaces.push(json!({"type": kind, "path": path}));
        }
    }

    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    if let Some(limits) = linux.and_then(|l| l.resources.as_ref()) {
        resources_from_cri(limits, &mut resources);
    }
    let mut devices = Vec::new();
    for device in &config.devices {
        let Ok(meta) = std::fs::metadata(&device.host_path) else {
            return Err(SpecError(format!(
                "device {} does not exist",
                device.host_path
            )));
        };
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let kind = if meta.file_type().is_char_device() {
            "c"
        } else if meta.file_type().is_block_device() {
            "b"
        } else {
            return Err(SpecError(format!("{} is not a device", device.host_path)));
        };
        let rdev = meta.rdev();
        let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
        devices.push(json!({"path": device.container_path, "type": kind, "major": major, "minor": minor, "fileMode": meta.mode() & 0o777, "uid": 0, "gid": 0}));
        if let Some(list) = resources["devices"].as_array_mut() {
            list.push(json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": if device.permissions.is_empty() { "rwm" } else { device.permissions.as_str() }}));
        }
    }

    let annotations: BTreeMap<&String, &String> = config.annotations.iter().collect();
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": config.tty,
            "user": user(config, image, rootfs)?,
            "args": args,
            "env": environment(config, image),
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": security.is_some_and(|s| s.no_new_privs),
        },
        "root": {"path": "rootfs", "readonly": security.is_some_and(|s| s.readonly_rootfs)},
        "mounts": mounts,
        "annotations": annotations,
        "linux": {
            "cgroupsPath": cgroups_path,
            "namespaces": namespaces,
            "resources": resources,
            "devices": devices,
        },
    });
    if !privileged {
        spec["linux"]["maskedPaths"] = json!(MASKED_PATHS);
        spec["linux"]["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if let Some(adj) = linux
        .and_then(|l| l.resources.as_ref())
        .map(|r| r.oom_score_adj)
        .filter(|adj| *adj > 0)
    {
        // Only raised, never lowered: lowering needs CAP_SYS_RESOURCE, which root lacks here.
        spec["process"]["oomScoreAdj"] = json!(adj);
    }
    Ok(spec)
}

/// CRI resource settings as OCI `linux.resources`.
pub fn resources_from_cri(limits: &v1::LinuxContainerResources, resources: &mut Value) {
    let mut cpu = serde_json::Map::new();
    if limits.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(limits.cpu_shares));
    }
    if limits.cpu_quota > 0 {
        cpu.insert("quota".into(), json!(limits.cpu_quota));
    }
    if limits.cpu_period > 0 {
        cpu.insert("period".into(), json!(limits.cpu_period));
    }
    if !limits.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(limits.cpuset_cpus));
    }
    if !limits.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(limits.cpuset_mems));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if limits.memory_limit_in_bytes > 0 {
        resources["memory"] = json!({"limit": limits.memory_limit_in_bytes});
        if limits.memory_swap_limit_in_bytes > 0 {
            resources["memory"]["swap"] = json!(limits.memory_swap_limit_in_bytes);
        }
    }
}
