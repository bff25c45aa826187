//! `cox server`: the control plane. Today that is the store; the API server, controllers and
//! node components join here as they land (see the README's status section).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use cox_store::Store;
use cox_store::etcd::EtcdStore;
use cox_store::sqlite::{SqliteOptions, SqliteStore};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the server keeps its state.
    #[arg(long, default_value = "/var/lib/cox")]
    data_dir: PathBuf,
    /// etcd endpoints (`http://host:2379`, comma separated) to keep state in instead of the
    /// embedded SQLite store.
    #[arg(long, value_delimiter = ',')]
    datastore_endpoint: Vec<String>,
}

pub async fn run(args: Args) -> Result<()> {
    let store: Arc<dyn Store> = if args.datastore_endpoint.is_empty() {
        let dir = args.data_dir.join("server").join("db");
        let store = SqliteStore::open(&dir, SqliteOptions::default())
            .await
            .with_context(|| format!("opening the store in {}", dir.display()))?;
        tracing::info!(path = %dir.display(), "embedded SQLite store open");
        Arc::new(store)
    } else {
        let store = EtcdStore::connect(&args.datastore_endpoint)
            .await
            .with_context(|| format!("connecting to etcd at {:?}", args.datastore_endpoint))?;
        tracing::info!(endpoints = ?args.datastore_endpoint, "etcd store connected");
        Arc::new(store)
    };
    let revision = store.current_revision().await?;
    tracing::info!(
        revision,
        "store ready; the API server is not built yet, so nothing else is served (see README)"
    );
    shutdown_signal().await?;
    tracing::info!("shutting down");
    Ok(())
}

async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = term.recv() => {}
    }
    Ok(())
}
