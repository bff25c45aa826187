//! The embedded backend: one SQLite file (`<dir>/state.db`) in WAL mode.
//!
//! - Writes go to one writer thread ([`writer`]) that commits everything waiting as one
//!   transaction; a write is acknowledged only after its commit is fsync'd.
//! - Reads run on a small pool of read connections, each in its own snapshot ([`reads`]).
//! - Watches replay history from the file, then follow the writer's broadcast of committed
//!   batches; a watcher that falls behind the broadcast goes back to the file, so slow watchers
//!   never hold up writers and never miss events ([`watch`]).
//! - History is kept for the last [`SqliteOptions::history_revisions`] revisions; a background
//!   task compacts older history every [`SqliteOptions::compaction_interval`], so the file stays
//!   bounded under endless churn: live data plus that many revisions of history.

mod reads;
mod schema;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{
    Error, Event, KeyValue, LastChange, ListOptions, ListResult, Result, Revision, Store,
    WatchStream,
};
use writer::{Op, Request, Written};

/// Committed events of one transaction, shared by every watcher.
pub(crate) type Batch = Arc<[Event]>;

/// How the SQLite backend keeps history.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How many of the latest revisions stay readable and watchable from.
    pub history_revisions: Revision,
    /// How often the background task compacts what falls out of that window.
    pub compaction_interval: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            history_revisions: 10_000,
            compaction_interval: Duration::from_secs(1),
        }
    }
}

/// State shared by the store, the writer thread and watch tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    path: PathBuf,
    revision: AtomicI64,
    compacted: AtomicI64,
    /// Idle read connections.
    readers: Mutex<Vec<Connection>>,
}

/// Idle read connections kept open; more are opened under load and closed after.
const MAX_IDLE_READERS: usize = 8;

impl Shared {
    /// Runs `read` on a pooled read connection, on the blocking pool.
    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let idle = shared.readers.lock().ok().and_then(|mut idle| idle.pop());
            let mut conn = match idle {
                Some(conn) => conn,
                None => schema::connect(&shared.path, false)?,
            };
            let result = read(&mut conn).map_err(|err| match err {
                Error::Sqlite(e) => schema::classify(&shared.path, e),
                other => other,
            });
            if let Ok(mut idle) = shared.readers.lock()
                && idle.len() < MAX_IDLE_READERS
            {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| Error::Internal(format!("read task failed: {e}")))?
    }
}

/// The embedded store. See the module documentation.
#[derive(Debug)]
pub struct SqliteStore {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Request>,
    events: broadcast::Sender<Batch>,
    writer: Mutex<Option<JoinHandle<()>>>,
    compactor: tokio::task::JoinHandle<()>,
}

/// How many writes may wait for the writer before callers wait to enqueue.
const REQUEST_QUEUE: usize = 8192;

/// How many committed batches the broadcast keeps for watchers that are behind.
const BROADCAST_BATCHES: usize = 1024;

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`, which this process then holds
    /// exclusively until the store is closed or dropped.
    pub async fn open(dir: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let dir = dir.as_ref().to_owned();
        let (lock, conn, meta, path) = tokio::task::spawn_blocking(move || {
            let lock = schema::DirLock::acquire(&dir)?;
            let path = schema::db_path(&dir);
            let mut conn = schema::connect(&path, true)?;
            let meta = schema::prepare(&path, &mut conn)?;
            Ok::<_, Error>((lock, conn, meta, path))
        })
        .await
        .map_err(|e| Error::Internal(format!("open task failed: {e}")))??;

        let shared = Arc::new(Shared {
            path: path.clone(),
            revision: AtomicI64::new(meta.revision),
            compacted: AtomicI64::new(meta.compacted),
            readers: Mutex::new(Vec::new()),
        });
        let (requests, receiver) = mpsc::channel(REQUEST_QUEUE);
        let (events, _) = broadcast::channel(BROADCAST_BATCHES);
        let writer = writer::Writer {
            path,
            conn,
            shared: Arc::clone(&shared),
            events: events.clone(),
            lock,
            history_revisions: options.history_revisions,
        };
        let writer = std::thread::Builder::new()
            .name("cox-store-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|source| Error::Io {
                context: "starting the store's writer thread".into(),
                source,
            })?;
        let compactor = tokio::spawn(compact_in_background(
            Arc::downgrade(&shared),
            requests.downgrade(),
            options,
        ));
        Ok(Self {
            shared,
            requests,
            events,
            writer: Mutex::new(Some(writer)),
            compactor,
        })
    }

    /// Closes the store and waits until the data directory is released (its last writes are
    /// durable before any was acknowledged; this only waits for the writer thread to end).
    pub async fn close(self) {
        let Self {
            requests,
            events,
            writer,
            compactor,
            ..
        } = self;
        compactor.abort();
        drop(requests);
        drop(events);
        let handle = writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            // The thread ends once the queue is drained; a panic there was already reported.
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    async fn write(&self, op: Op) -> Result<Written> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Write { op, reply })
            .await
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    /// Compacts to `up_to` in steps, letting writes through between steps.
    async fn compact_to(requests: &mpsc::Sender<Request>, up_to: Revision) -> Result<()> {
        loop {
            let (reply, answer) = oneshot::channel();
            requests
                .send(Request::Compact { up_to, reply })
                .await
                .map_err(|_| Error::Closed)?;
            let reached = answer.await.map_err(|_| Error::Closed)??;
            if reached >= up_to {
                return Ok(());
            }
        }
    }
}

/// Keeps history to the configured window until the store goes away.
async fn compact_in_background(
    shared: Weak<Shared>,
    requests: mpsc::WeakSender<Request>,
    options: SqliteOptions,
) {
    let mut tick = tokio::time::interval(options.compaction_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (Some(shared), Some(requests)) = (shared.upgrade(), requests.upgrade()) else {
            return;
        };
        let target = shared.revision.load(Ordering::Acquire) - options.history_revisions;
        if target > shared.compacted.load(Ordering::Acquire)
            && let Err(err) = SqliteStore::compact_to(&requests, target).await
        {
            tracing::warn!(error = %err, target, "background compaction failed");
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.shared
            .read(move |conn| reads::get(conn, &key, revision))
            .await
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let prefix = prefix.to_owned();
        self.shared
            .read(move |conn| reads::list(conn, &prefix, &options))
            .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        crate::check_size(key, &value)?;
        let op = Op::Create {
            key: key.to_owned(),
            value,
        };
        match self.write(op).await? {
            Written::Put(revision) => Ok(revision),
            Written::Deleted(..) => Err(Error::Internal("create answered as a delete".into())),
        }
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        crate::check_size(key, &value)?;
        let op = Op::Update {
            key: key.to_owned(),
            value,
            expected,
        };
        match self.write(op).await? {
            Written::Put(revision) => Ok(revision),
            Written::Deleted(..) => Err(Error::Internal("update answered as a delete".into())),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let op = Op::Delete {
            key: key.to_owned(),
            expected,
        };
        match self.write(op).await? {
            Written::Deleted(kv, revision) => Ok((kv, revision)),
            Written::Put(_) => Err(Error::Internal("delete answered as a put".into())),
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.shared.compacted.load(Ordering::Acquire))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let compacted = self.shared.compacted.load(Ordering::Acquire);
        if after < compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted,
            });
        }
        // Subscribe before reading history, so nothing committed in between is missed.
        let live = self.events.subscribe();
        let (tx, stream) = WatchStream::channel();
        tokio::spawn(watch::run(
            Arc::clone(&self.shared),
            prefix.to_owned(),
            after,
            live,
            tx,
        ));
        Ok(stream)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        Self::compact_to(&self.requests, revision).await
    }

    async fn last_change(
        &self,
        prefix: &str,
        after: Revision,
        upto: Revision,
    ) -> Result<LastChange> {
        let prefix = prefix.to_owned();
        let newest = self
            .shared
            .read(move |conn| reads::last_change(conn, &prefix, after, upto))
            .await?;
        Ok(newest.map_or(LastChange::None, LastChange::At))
    }
}
