//! The runtime's state: its configuration, the image store, and the pods and containers it
//! runs, each kept as a JSON record on disk so a restarted runtime picks everything up again.
//!
//! ```text
//! <root>/images/            the image store (see images::store)
//! <root>/pods/<id>/         sandbox.json, ns/{net,uts,ipc}, resolv.conf, hosts, hostname
//! <root>/containers/<id>/   container.json, the OCI bundle (config.json, rootfs, upper, work),
//!                           exit.json once it ended, shim.log, runc.log
//! <root>/runc/              runc's --root
//! <root>/cni/               host-local's leases
//! <root>/cri.sock           the CRI socket
//! ```
//!
//! Operations are synchronous (they run processes and touch files); the gRPC service calls
//! them on blocking threads. Each pod and container has its own lock, so different pods never
//! wait for each other; only announcing an event (see [`crate::events`]) takes a lock of the
//! whole runtime, and never while holding a pod's or container's.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::cni::{NetworkConfig, PortMapping};
use crate::digest::Digest;
use crate::images::ImageStore;
use cox_cri::v1;

/// Where the runtime keeps its state and which programs it runs.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub root: PathBuf,
    /// The OCI runtime binary (`runc`, or `crun`).
    pub runc: PathBuf,
    /// The program started as each container's shim, with `shim` as its first argument: the
    /// `cox` binary itself.
    pub shim: PathBuf,
    pub network: NetworkConfig,
    /// Container logs are rotated past this size; 0 turns rotation off.
    pub log_max_bytes: u64,
    pub log_max_files: usize,
    /// The k3s-style registries file (mirrors, credentials).
    pub registries: PathBuf,
    /// Where exec and port-forward streams are served (port 0: any free port).
    pub stream_address: std::net::SocketAddr,
}

impl RuntimeConfig {
    /// The defaults for a node whose state lives under `root`.
    pub fn new(root: &Path, shim: PathBuf) -> Self {
        RuntimeConfig {
            root: root.to_path_buf(),
            runc: PathBuf::from("runc"),
            shim,
            network: NetworkConfig {
                bin_dir: PathBuf::from("/usr/lib/cni"),
                bridge: "cox0".to_string(),
                pod_cidr: "10.42.0.0/24".to_string(),
                state_dir: root.join("cni"),
            },
            log_max_bytes: 10 * 1024 * 1024,
            log_max_files: 5,
            registries: PathBuf::from("/etc/cox/registries.yaml"),
            stream_address: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.root.join("cri.sock")
    }

    /// Whether the OCI runtime is crun (by its file name), which needs a cgroup layout runc
    /// does not.
    pub fn is_crun(&self) -> bool {
        self.runc
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("crun"))
    }
}

/// Errors the CRI service turns into gRPC statuses.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    Internal(String),
}

impl From<io::Error> for RuntimeError {
    fn from(e: io::Error) -> Self {
        RuntimeError::Internal(e.to_string())
    }
}

impl From<crate::images::ImageError> for RuntimeError {
    fn from(e: crate::images::ImageError) -> Self {
        use crate::images::ImageError as E;
        match e {
            E::NotFound(_) => RuntimeError::NotFound(e.to_string()),
            E::InUse { .. } => RuntimeError::FailedPrecondition(e.to_string()),
            E::Invalid(_) | E::DigestMismatch { .. } => {
                RuntimeError::InvalidArgument(e.to_string())
            }
            E::Io(_) | E::Registry(_) => RuntimeError::Internal(e.to_string()),
        }
    }
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// A pod sandbox as recorded on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub config: v1::PodSandboxConfig,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    /// `v1::PodSandboxState` as a number.
    pub state: i32,
    pub ip: String,
    pub cni_result: serde_json::Value,
    pub ports: Vec<PortMapping>,
    pub cgroup_parent: String,
    pub host_network: bool,
    pub runtime_handler: String,
    /// The process holding the pod's shared pid namespace (`NamespaceMode::POD`); 0 when the
    /// pod has none.
    #[serde(default)]
    pub pause_pid: i32,
}

/// A container as recorded on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub sandbox_id: String,
    pub config: v1::ContainerConfig,
    pub image_id: Digest,
    /// The image as the request named it.
    pub image_ref: String,
    pub created_at: i64,
    /// 0 until started.
    pub started_at: i64,
    pub pid: i32,
    pub log_path: String,
    pub stop_signal: String,
    pub cgroups_path: String,
    /// Why its process could not be made (its command is not in the image): reported by
    /// `StartContainer`, as containerd does, not by `CreateContainer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_error: Option<String>,
}

/// The runtime.
#[derive(Debug)]
pub struct Runtime {
    pub(crate) config: RuntimeConfig,
    pub(crate) images: ImageStore,
    pub(crate) sandboxes: Mutex<BTreeMap<String, Arc<Mutex<SandboxRecord>>>>,
    pub(crate) containers: Mutex<BTreeMap<String, Arc<Mutex<ContainerRecord>>>>,
    pub(crate) events: crate::events::Events,
}

/// Locks a mutex, treating a poisoned one (a panic elsewhere) as still usable: the records
/// are plain data, rewritten whole.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Runtime {
    /// Opens the runtime's state under `config.root`, reading back every pod and container.
    pub fn open(config: RuntimeConfig) -> Result<Self> {
        for dir in ["pods", "containers", "runc", "cni", "s"] {
            fs::create_dir_all(config.root.join(dir))?;
        }
        let images = ImageStore::open(config.root.join("images"))?;
        if config.is_crun() {
            match crate::cgroups::bind_unified_controllers_to_v1() {
                Ok(bound) if !bound.is_empty() => tracing::info!(
                    ?bound,
                    "bound the cgroup v2 hierarchy's controllers to v1 hierarchies, as crun needs"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "crun will refuse this cgroup layout"),
            }
        }
        let runtime = Runtime {
            sandboxes: Mutex::new(load_records(&config.root.join("pods"), "sandbox.json")?),
            containers: Mutex::new(load_records(
                &config.root.join("containers"),
                "container.json",
            )?),
            images,
            config,
            events: crate::events::Events::new(),
        };
        runtime.recover_exit_watches();
        Ok(runtime)
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    pub(crate) fn pod_dir(&self, id: &str) -> PathBuf {
        self.config.root.join("pods").join(id)
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.config.root.join("containers").join(id)
    }

    /// The socket a container's shim serves attach on: short, as socket paths must be.
    pub(crate) fn attach_socket(&self, id: &str) -> PathBuf {
        self.config
            .root
            .join("s")
            .join(format!("{}.sock", &id[..id.len().min(16)]))
    }

    /// The sandbox with this ID (or unique ID prefix).
    pub(crate) fn sandbox(&self, id: &str) -> Result<Arc<Mutex<SandboxRecord>>> {
        find_by_prefix(&lock(&self.sandboxes), id, "pod sandbox")
    }

    pub(crate) fn container(&self, id: &str) -> Result<Arc<Mutex<ContainerRecord>>> {
        find_by_prefix(&lock(&self.containers), id, "container")
    }

    /// Images that containers use, with one container using each.
    pub fn images_in_use(&self) -> Vec<(Digest, String)> {
        lock(&self.containers)
            .values()
            .map(|c| {
                let c = lock(c);
                (c.image_id.clone(), c.id.clone())
            })
            .collect()
    }
}

fn find_by_prefix<T>(
    map: &BTreeMap<String, Arc<Mutex<T>>>,
    id: &str,
    what: &str,
) -> Result<Arc<Mutex<T>>> {
    if id.is_empty() {
        return Err(RuntimeError::InvalidArgument(format!(
            "{what} ID must not be empty"
        )));
    }
    if let Some(found) = map.get(id) {
        return Ok(found.clone());
    }
    let mut matches = map
        .range(id.to_string()..)
        .take_while(|(key, _)| key.starts_with(id));
    match (matches.next(), matches.next()) {
        (Some((_, found)), None) => Ok(found.clone()),
        (Some(_), Some(_)) => Err(RuntimeError::InvalidArgument(format!(
            "{what} ID prefix {id:?} is ambiguous"
        ))),
        _ => Err(RuntimeError::NotFound(format!("{what} {id:?} not found"))),
    }
}

/// Reads every `<dir>/<id>/<file>` record. A directory without a readable record is what a
/// crash in the middle of a create leaves: it is removed.
fn load_records<T: serde::de::DeserializeOwned>(
    dir: &Path,
    file: &str,
) -> Result<BTreeMap<String, Arc<Mutex<T>>>> {
    let mut records = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let id = entry.file_name().to_string_lossy().into_owned();
        match fs::read(entry.path().join(file))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(record) => {
                records.insert(id, Arc::new(Mutex::new(record)));
            }
            None => {
                tracing::warn!(path = %entry.path().display(), "dropping a half-created record");
                crate::teardown::remove_dir_carefully(&entry.path());
            }
        }
    }
    Ok(records)
}

/// Writes a record atomically.
pub(crate) fn save<T: Serialize>(path: &Path, record: &T) -> Result<()> {
    let bytes =
        serde_json::to_vec_pretty(record).map_err(|e| RuntimeError::Internal(e.to_string()))?;
    let staged = path.with_extension("json.tmp");
    fs::write(&staged, bytes)?;
    fs::rename(&staged, path)?;
    Ok(())
}

/// A new random 64-hex-digit ID, as containerd makes them.
pub(crate) fn new_id() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now, in nanoseconds since the epoch.
pub(crate) fn now_nanos() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}
