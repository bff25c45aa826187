//! Test fixtures: a fresh store of either backend, in its own temporary directory (and, for
//! etcd, its own etcd process), cleaned up when dropped.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cox_store::etcd::EtcdStore;
use cox_store::etcd_server::EtcdServer;
use cox_store::sqlite::{SqliteOptions, SqliteStore};
use cox_store::{Event, Store, WatchStream};

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Etcd,
}

pub struct Fixture {
    pub store: Arc<dyn Store>,
    // Dropped after the store: the etcd process, then the directory.
    _etcd: Option<EtcdServer>,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        match backend {
            Backend::Sqlite => {
                // Tests compact explicitly; keep the background task out of their way.
                let options = SqliteOptions {
                    history_revisions: 1_000_000,
                    compaction_interval: Duration::from_secs(3600),
                };
                let store = SqliteStore::open(dir.path().join("db"), options)
                    .await
                    .expect("open sqlite store");
                Self {
                    store: Arc::new(store),
                    _etcd: None,
                    dir,
                }
            }
            Backend::Etcd => {
                // Never skipped: a missing or broken etcd fails the test.
                let etcd = EtcdServer::start(dir.path())
                    .await
                    .expect("start etcd (Debian package etcd-server)");
                let store = EtcdStore::connect(&[etcd.endpoint().to_owned()])
                    .await
                    .expect("connect to etcd");
                Self {
                    store: Arc::new(store),
                    _etcd: Some(etcd),
                    dir,
                }
            }
        }
    }
}

/// The next event, failing the test if none comes within a few seconds.
pub async fn next_event(watch: &mut WatchStream) -> Event {
    match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(err))) => panic!("watch failed: {err}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no event within 10s"),
    }
}

/// Asserts that no event arrives for a short while.
pub async fn assert_quiet(watch: &mut WatchStream) {
    if let Ok(got) = tokio::time::timeout(Duration::from_millis(300), watch.next()).await {
        panic!("expected no event, got {got:?}");
    }
}

/// Waits for `condition` to hold, failing after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
