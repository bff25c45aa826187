//! The single writer: one thread owns the writing connection and commits every write that is
//! waiting as one transaction (group commit), so one fsync acknowledges many writes and
//! throughput grows with the number of concurrent writers.
//!
//! Revisions are handed out here, in the order requests arrive, which is also the order in
//! which watchers see them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::schema::{DirLock, classify};
use super::{Batch, Shared};
use crate::{Error, Event, EventKind, KeyValue, Result, Revision};

/// The most writes committed in one transaction. Bounds the latency a batch adds and the size
/// of one broadcast message.
const MAX_BATCH: usize = 1024;

/// The most revisions one compaction step covers, so a step never holds up writers for long.
pub(crate) const COMPACTION_STEP: Revision = 2_000;

#[derive(Debug)]
pub(crate) enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

/// What an accepted write produced.
#[derive(Debug)]
pub(crate) enum Written {
    Put(Revision),
    Deleted(KeyValue, Revision),
}

#[derive(Debug)]
pub(crate) enum Request {
    Write {
        op: Op,
        reply: oneshot::Sender<Result<Written>>,
    },
    /// Compact one step towards `up_to`; replies with the compacted revision reached.
    Compact {
        up_to: Revision,
        reply: oneshot::Sender<Result<Revision>>,
    },
}

pub(crate) struct Writer {
    pub(crate) path: PathBuf,
    pub(crate) conn: Connection,
    pub(crate) shared: Arc<Shared>,
    pub(crate) events: broadcast::Sender<Batch>,
    /// Released only when the thread ends, after the connection is closed.
    pub(crate) lock: DirLock,
    /// How many revisions of history to keep (see `SqliteOptions::history_revisions`).
    pub(crate) history_revisions: Revision,
}

impl Writer {
    /// Serves requests until every sender is gone.
    pub(crate) fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut writes = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = requests.blocking_recv() {
            let mut compactions = Vec::new();
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Write { op, reply } => writes.push((op, reply)),
                    Request::Compact { up_to, reply } => compactions.push((up_to, reply)),
                }
                if writes.len() < MAX_BATCH {
                    next = requests.try_recv().ok();
                }
            }
            if !writes.is_empty() {
                self.commit(&mut writes);
                self.keep_pace();
            }
            for (up_to, reply) in compactions {
                let result = self.compact_step(up_to);
                // The caller may have gone away; the step is done either way.
                let _ = reply.send(result);
            }
        }
        let Self { conn, lock, .. } = self;
        if let Err((_, err)) = conn.close() {
            tracing::warn!(error = %err, "closing the store's database");
        }
        drop(lock);
    }

    /// Applies the waiting writes in one transaction and answers each once it is durable.
    fn commit(&mut self, writes: &mut Vec<(Op, oneshot::Sender<Result<Written>>)>) {
        let start = self.shared.revision.load(Ordering::Acquire);
        let mut revision = start;
        let mut results = Vec::with_capacity(writes.len());
        let mut events = Vec::with_capacity(writes.len());
        let outcome = (|| -> Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (op, _) in writes.iter() {
                match apply(&tx, op, revision + 1) {
                    Ok((written, event)) => {
                        revision += 1;
                        results.push(Ok(written));
                        events.push(event);
                    }
                    Err(err @ (Error::AlreadyExists { .. } | Error::NotFound { .. })) => {
                        results.push(Err(err));
                    }
                    Err(err @ Error::Conflict { .. }) => results.push(Err(err)),
                    Err(err) => return Err(err),
                }
            }
            if revision != start {
                tx.execute(
                    "UPDATE meta SET value = ?1 WHERE name = 'revision'",
                    [revision],
                )?;
            }
            tx.commit()?;
            Ok(())
        })();
        match outcome {
            Ok(()) => {
                self.shared.revision.store(revision, Ordering::Release);
                if !events.is_empty() {
                    // No receivers is fine: nobody is watching.
                    let _ = self.events.send(Arc::from(events));
                }
                for ((_, reply), result) in writes.drain(..).zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(err) => {
                let err = match err {
                    Error::Sqlite(e) => classify(&self.path, e),
                    other => other,
                };
                tracing::error!(error = %err, writes = writes.len(), "store write failed");
                let reason = err.to_string();
                for (_, reply) in writes.drain(..) {
                    let _ = reply.send(Err(Error::Internal(reason.clone())));
                }
            }
        }
    }

    /// Under heavy writes, compacts one step whenever history has grown a full step past the
    /// window, so compaction keeps pace with the writes instead of queueing behind them (the
    /// background task covers quiet periods). Writes pay for their own history this way.
    fn keep_pace(&mut self) {
        let revision = self.shared.revision.load(Ordering::Acquire);
        let target = revision - self.history_revisions;
        if target - self.shared.compacted.load(Ordering::Acquire) >= COMPACTION_STEP
            && let Err(err) = self.compact_step(target)
        {
            tracing::warn!(error = %err, target, "compaction failed");
        }
    }

    /// Removes history at or below `up_to`, one bounded step at a time.
    ///
    /// A version is only needed for reads at revisions before the write that replaced it; a
    /// tombstone answers "absent" exactly as no row does, so it is only needed to replay its
    /// event to watchers. So compacting to C deletes every version replaced by a write at or
    /// below C (found through that write's `prev_rev`) and every tombstone at or below C. Reads
    /// at C or later, and watches after C (with the previous values of their events), see
    /// exactly what they saw before.
    fn compact_step(&mut self, up_to: Revision) -> Result<Revision> {
        let from = self.shared.compacted.load(Ordering::Acquire);
        let current = self.shared.revision.load(Ordering::Acquire);
        if up_to > current {
            return Err(Error::FutureRevision {
                requested: up_to,
                current,
            });
        }
        if up_to <= from {
            return Ok(from);
        }
        let to = up_to.min(from + COMPACTION_STEP);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM log WHERE rev IN
                 (SELECT prev_rev FROM log WHERE rev > ?1 AND rev <= ?2 AND prev_rev > 0)",
            [from, to],
        )?;
        tx.execute(
            "DELETE FROM log WHERE rev > ?1 AND rev <= ?2 AND deleted = 1",
            [from, to],
        )?;
        tx.execute("UPDATE meta SET value = ?1 WHERE name = 'compacted'", [to])?;
        tx.commit()?;
        self.shared.compacted.store(to, Ordering::Release);
        Ok(to)
    }
}

/// The key's live version, if any.
fn live(tx: &Transaction<'_>, key: &str) -> Result<Option<KeyValue>> {
    let mut stmt = tx.prepare_cached(
        "SELECT l.rev, l.create_rev, l.value FROM current c JOIN log l ON l.rev = c.rev
         WHERE c.key = ?1",
    )?;
    Ok(stmt
        .query_row([key.as_bytes()], |row| {
            Ok(KeyValue {
                key: key.to_owned(),
                mod_revision: row.get(0)?,
                create_revision: row.get(1)?,
                value: Bytes::from(row.get::<_, Vec<u8>>(2)?),
            })
        })
        .optional()?)
}

fn check_expected(key: &str, live: Option<KeyValue>, expected: Revision) -> Result<KeyValue> {
    match live {
        None => Err(Error::NotFound {
            key: key.to_owned(),
        }),
        Some(kv) if kv.mod_revision != expected => Err(Error::Conflict {
            key: key.to_owned(),
            expected,
            current: Box::new(kv),
        }),
        Some(kv) => Ok(kv),
    }
}

fn insert_row(
    tx: &Transaction<'_>,
    rev: Revision,
    key: &str,
    create_rev: Revision,
    prev_rev: Revision,
    value: Option<&Bytes>,
) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO log (rev, key, create_rev, prev_rev, deleted, value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    stmt.execute(params![
        rev,
        key.as_bytes(),
        create_rev,
        prev_rev,
        value.is_none(),
        value.map_or(&[][..], |v| &v[..]),
    ])?;
    Ok(())
}

/// Applies one write at revision `rev` inside the batch's transaction.
fn apply(tx: &Transaction<'_>, op: &Op, rev: Revision) -> Result<(Written, Event)> {
    match op {
        Op::Create { key, value } => {
            if live(tx, key)?.is_some() {
                return Err(Error::AlreadyExists { key: key.clone() });
            }
            insert_row(tx, rev, key, rev, 0, Some(value))?;
            tx.prepare_cached("INSERT INTO current (key, rev) VALUES (?1, ?2)")?
                .execute(params![key.as_bytes(), rev])?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: rev,
                mod_revision: rev,
            };
            let event = Event {
                kind: EventKind::Put,
                kv,
                prev: None,
            };
            Ok((Written::Put(rev), event))
        }
        Op::Update {
            key,
            value,
            expected,
        } => {
            let prev = check_expected(key, live(tx, key)?, *expected)?;
            insert_row(
                tx,
                rev,
                key,
                prev.create_revision,
                prev.mod_revision,
                Some(value),
            )?;
            tx.prepare_cached("UPDATE current SET rev = ?2 WHERE key = ?1")?
                .execute(params![key.as_bytes(), rev])?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: prev.create_revision,
                mod_revision: rev,
            };
            let event = Event {
                kind: EventKind::Put,
                kv,
                prev: Some(prev),
            };
            Ok((Written::Put(rev), event))
        }
        Op::Delete { key, expected } => {
            let current = live(tx, key)?;
            let prev = match expected {
                Some(expected) => check_expected(key, current, *expected)?,
                None => current.ok_or_else(|| Error::NotFound { key: key.clone() })?,
            };
            insert_row(tx, rev, key, prev.create_revision, prev.mod_revision, None)?;
            tx.prepare_cached("DELETE FROM current WHERE key = ?1")?
                .execute([key.as_bytes()])?;
            let event = Event {
                kind: EventKind::Delete,
                kv: KeyValue::tombstone(key.clone(), rev),
                prev: Some(prev.clone()),
            };
            Ok((Written::Deleted(prev, rev), event))
        }
    }
}
