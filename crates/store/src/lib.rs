//! Coxswain's persistence: a revisioned key-value store with etcd's semantics.
//!
//! The API server is the only user. It keeps one object per key
//! (`/registry/<resource>/<namespace>/<name>`) and relies on these properties, which both
//! backends provide and the conformance suite (`tests/conformance.rs`) checks:
//!
//! - one global revision counter; every write (create, update, delete) gets the next
//!   revision, and each key carries the revision it was created at and last modified at;
//!   `mod_revision` becomes the object's `resourceVersion`;
//! - reads at the latest revision or at any retained past revision (a consistent snapshot),
//!   with prefix ranges, limits and continuation;
//! - create fails if the key exists; update and delete are compare-and-swap on `mod_revision`;
//! - watches deliver every change after a revision, in order, with the previous value, with no
//!   gaps and no duplicates; asking for history that compaction removed is a distinct
//!   [`Error::Compacted`] (the API server's 410 Gone).
//!
//! Backends: [`sqlite::SqliteStore`] (embedded, the default) and [`etcd::EtcdStore`] (HA).

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;

pub mod etcd;
pub mod etcd_server;
pub mod sqlite;

/// A position in the store's history. Revisions start at 1 and only grow.
pub type Revision = i64;

/// The largest write the store accepts, key and value together, in bytes.
///
/// Upstream etcd refuses requests over 1.5 MiB (`--max-request-bytes`); a write's request
/// carries the key, the value and a small envelope (the compare-and-swap transaction), so we
/// reserve [`REQUEST_ENVELOPE_BYTES`] of it. Both backends enforce the same limit, so an object
/// that fits in SQLite also fits in etcd.
pub const MAX_WRITE_BYTES: usize = 1536 * 1024 - REQUEST_ENVELOPE_BYTES;

/// Room kept for the etcd transaction around a key and value (see [`MAX_WRITE_BYTES`]).
pub const REQUEST_ENVELOPE_BYTES: usize = 1024;

/// One version of one key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// The revision at which the key was created (its current life, after any delete).
    pub create_revision: Revision,
    /// The revision of the write that produced this version.
    pub mod_revision: Revision,
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &self.key)
            .field("value_len", &self.value.len())
            .field("create_revision", &self.create_revision)
            .field("mod_revision", &self.mod_revision)
            .finish()
    }
}

impl KeyValue {
    /// The `kv` of a delete event, as etcd reports it: the key and the deletion's revision.
    pub(crate) fn tombstone(key: String, revision: Revision) -> Self {
        Self {
            key,
            value: Bytes::new(),
            create_revision: 0,
            mod_revision: revision,
        }
    }
}

/// What a watch event did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated; `kv` holds the new version.
    Put,
    /// The key was deleted; `kv.value` is empty and `kv.mod_revision` is the deletion's
    /// revision; `prev` holds the deleted version.
    Delete,
}

/// One change, as a watch delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    /// The version this change replaced, if there was one.
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision of the write this event reports.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }

    /// True for a put that created the key (as upstream tells ADDED from MODIFIED).
    pub fn is_create(&self) -> bool {
        self.kind == EventKind::Put && self.kv.create_revision == self.kv.mod_revision
    }
}

/// A read of all keys under a prefix.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Only keys strictly after this one (the last key of the previous page).
    pub start_after: Option<String>,
    /// At most this many keys; `None` (or `Some(0)`, as in Kubernetes) for all.
    pub limit: Option<usize>,
    /// Read at this past revision instead of the latest.
    pub revision: Option<Revision>,
}

/// The answer to [`Store::list`].
#[derive(Debug, Clone)]
pub struct ListResult {
    pub kvs: Vec<KeyValue>,
    /// True when the limit cut the answer short: more keys follow the last one returned.
    pub more: bool,
    /// The revision the read was served at; pass it back with `start_after` for the next page
    /// to continue the same snapshot.
    pub revision: Revision,
}

/// Errors of the store. The API server maps each to its `metav1.Status` once, at the edge.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },
    #[error("key {key:?} not found")]
    NotFound { key: String },
    #[error("key {key:?} was modified at revision {}, expected {expected}", current.mod_revision)]
    Conflict {
        key: String,
        expected: Revision,
        /// The version now stored, so that a caller can retry without another read.
        current: Box<KeyValue>,
    },
    #[error("revision {requested} has been compacted; the oldest retained revision is {compacted}")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("revision {requested} is in the future; the current revision is {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("write to {key:?} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        key: String,
        size: usize,
        limit: usize,
    },
    #[error("data directory {path} is in use by another process{}", holder.as_ref().map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        path: String,
        holder: Option<String>,
    },
    #[error("database {path} is damaged: {detail}")]
    Corrupt { path: String, detail: String },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("internal store error: {0}")]
    Internal(String),
    #[error("the store is closed")]
    Closed,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The revisioned key-value store the API server persists to.
///
/// Keys are `/`-separated strings; values are opaque bytes (JSON for Kubernetes objects).
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// The key's version at the latest revision, or at `revision`.
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>>;

    /// Keys under `prefix`, in key order, at one consistent revision.
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult>;

    /// Creates `key`; fails with [`Error::AlreadyExists`] if it exists. Returns the write's
    /// revision.
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision>;

    /// Replaces `key`'s value if its `mod_revision` is still `expected`; otherwise
    /// [`Error::Conflict`] (or [`Error::NotFound`]). Returns the write's revision.
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision>;

    /// Deletes `key`, if `expected` is given only while its `mod_revision` is still that.
    /// Returns the deleted version and the deletion's revision.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)>;

    /// The revision of the latest write.
    async fn current_revision(&self) -> Result<Revision>;

    /// The oldest revision still readable and watchable from.
    async fn compacted_revision(&self) -> Result<Revision>;

    /// Every change to a key under `prefix` with a revision greater than `after`, in revision
    /// order, then new changes as they happen. Fails with [`Error::Compacted`] (now or later in
    /// the stream, after which it ends) when the history after `after` is no longer retained.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// Discards history at and before `revision` (reads and watches of it then fail with
    /// [`Error::Compacted`]). The SQLite backend also does this by itself in the background.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The newest change to a key under `prefix` in the revisions `(after, upto]`: what a copy
    /// that has every change up to `after` lacks to be current at `upto`. A backend that
    /// cannot tell answers [`LastChange::Unknown`] (the caller then reads the store).
    async fn last_change(
        &self,
        _prefix: &str,
        _after: Revision,
        _upto: Revision,
    ) -> Result<LastChange> {
        Ok(LastChange::Unknown)
    }
}

/// The answer to [`Store::last_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastChange {
    /// No key under the prefix changed in the range.
    None,
    /// The newest change in the range was at this revision.
    At(Revision),
    /// The backend cannot tell.
    Unknown,
}

/// How many events a watch may buffer before its producer waits for the consumer.
pub(crate) const WATCH_BUFFER: usize = 1024;

/// The events of one watch. Dropping it cancels the watch.
pub struct WatchStream {
    inner: Pin<Box<dyn Stream<Item = Result<Event>> + Send>>,
}

impl fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WatchStream")
    }
}

impl WatchStream {
    /// A watch fed by a task through a bounded channel.
    pub(crate) fn channel() -> (mpsc::Sender<Result<Event>>, Self) {
        let (tx, mut rx) = mpsc::channel(WATCH_BUFFER);
        (
            tx,
            Self::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx))),
        )
    }

    /// A watch that produces its events itself (no task between it and the consumer).
    pub(crate) fn from_stream(stream: impl Stream<Item = Result<Event>> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(stream),
        }
    }

    /// The next event; `None` when the watch has ended (after an error, or when the store
    /// closed).
    pub async fn next(&mut self) -> Option<Result<Event>> {
        futures::StreamExt::next(&mut self.inner).await
    }
}

impl Stream for WatchStream {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Checks a write against [`MAX_WRITE_BYTES`].
pub(crate) fn check_size(key: &str, value: &[u8]) -> Result<()> {
    let size = key.len() + value.len();
    if size > MAX_WRITE_BYTES {
        return Err(Error::TooLarge {
            key: key.to_owned(),
            size,
            limit: MAX_WRITE_BYTES,
        });
    }
    Ok(())
}

/// The smallest key greater than every key starting with `prefix` (etcd's range end), as
/// bytes, or `None` when no such key exists (an empty prefix, or one of only `0xff` bytes).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_that_can_be() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"/registry/pods/", Some(b"/registry/pods0")),
            (b"a", Some(b"b")),
            (b"a\xff", Some(b"b")),
            (b"\xff\xff", None),
            (b"", None),
        ];
        for (prefix, want) in cases {
            assert_eq!(prefix_end(prefix).as_deref(), *want, "prefix {prefix:?}");
        }
    }

    #[test]
    fn size_limit_counts_key_and_value() {
        let at_limit = vec![0u8; MAX_WRITE_BYTES - 3];
        assert!(check_size("abc", &at_limit).is_ok());
        let over = vec![0u8; MAX_WRITE_BYTES - 2];
        assert!(matches!(
            check_size("abc", &over),
            Err(Error::TooLarge { size, .. }) if size == MAX_WRITE_BYTES + 1
        ));
    }
}
