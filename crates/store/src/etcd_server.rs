//! Runs a single-member etcd on loopback in a directory of the caller's, for the conformance
//! tests and the benchmark. It is the real `etcd` binary (Debian's `etcd-server`); if it cannot
//! start, that is an error, never a silent skip.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How long etcd gets to answer after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running etcd, stopped (SIGKILL, then reaped) when dropped.
#[derive(Debug)]
pub struct EtcdServer {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

impl EtcdServer {
    /// Starts `etcd` (found on `PATH`) with its data and log under `dir`.
    pub async fn start(dir: &Path) -> Result<Self> {
        Self::start_with(Path::new("etcd"), dir).await
    }

    /// Starts the given etcd binary with its data and log under `dir`.
    pub async fn start_with(binary: &Path, dir: &Path) -> Result<Self> {
        // A port picked by binding to port 0 may be taken again before etcd binds it; try a
        // few times before giving up.
        let mut last_error = None;
        for attempt in 0..3 {
            match Self::try_start(binary, &dir.join(format!("etcd-{attempt}"))).await {
                Ok(server) => return Ok(server),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or(Error::Closed))
    }

    async fn try_start(binary: &Path, dir: &Path) -> Result<Self> {
        let io = |context: String| move |source| Error::Io { context, source };
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let client = free_port()?;
        let peer = free_port()?;
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = dir.join("etcd.log");
        let log_file =
            std::fs::File::create(&log).map_err(io(format!("creating {}", log.display())))?;
        let log_err = log_file
            .try_clone()
            .map_err(io(format!("opening {}", log.display())))?;
        let child = Command::new(binary)
            .arg("--name=default")
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(io(format!(
                "starting {} (is Debian's etcd-server installed?)",
                binary.display()
            )))?;
        let mut server = Self {
            child,
            endpoint,
            log,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failure(format!("etcd exited with {status}")));
            }
            let options =
                etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_secs(1));
            if let Ok(mut client) =
                etcd_client::Client::connect([&self.endpoint], Some(options)).await
                && client.get("health", None).await.is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.failure(format!("etcd did not answer within {READY_TIMEOUT:?}")));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn failure(&self, what: String) -> Error {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Error::Internal(format!(
            "{what}; last lines of its log:\n{}",
            tail.join("\n")
        ))
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // Already exited is fine; either way reap it so no zombie is left.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|source| Error::Io {
        context: "finding a free loopback port".into(),
        source,
    })?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|source| Error::Io {
            context: "finding a free loopback port".into(),
            source,
        })
}
