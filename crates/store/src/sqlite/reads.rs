//! Reads, each inside one read transaction so that it sees one consistent snapshot: the
//! revisions in `meta` and the rows agree.

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{Error, Event, EventKind, KeyValue, ListOptions, ListResult, Result, Revision};

/// Upper bound for key ranges with no natural end: keys are UTF-8, which never contains 0xff.
const NO_END: &[u8] = &[0xff];

/// The revisions of the snapshot a read transaction sees.
fn snapshot(conn: &Connection) -> Result<(Revision, Revision)> {
    let mut stmt = conn.prepare_cached(
        "SELECT (SELECT value FROM meta WHERE name = 'revision'),
                (SELECT value FROM meta WHERE name = 'compacted')",
    )?;
    Ok(stmt.query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?)
}

/// Resolves the revision a read asks for against the snapshot.
fn read_revision(
    requested: Option<Revision>,
    current: Revision,
    compacted: Revision,
) -> Result<Revision> {
    match requested {
        None => Ok(current),
        Some(r) if r < compacted => Err(Error::Compacted {
            requested: r,
            compacted,
        }),
        Some(r) if r > current => Err(Error::FutureRevision {
            requested: r,
            current,
        }),
        Some(r) => Ok(r),
    }
}

fn key_value(row: &Row<'_>) -> rusqlite::Result<KeyValue> {
    let key: Vec<u8> = row.get(0)?;
    Ok(KeyValue {
        key: String::from_utf8_lossy(&key).into_owned(),
        value: Bytes::from(row.get::<_, Vec<u8>>(1)?),
        create_revision: row.get(2)?,
        mod_revision: row.get(3)?,
    })
}

pub(crate) fn get(
    conn: &mut Connection,
    key: &str,
    revision: Option<Revision>,
) -> Result<Option<KeyValue>> {
    let tx = conn.transaction()?;
    let (current, compacted) = snapshot(&tx)?;
    let found = if revision.is_none() {
        tx.prepare_cached(
            "SELECT l.key, l.value, l.create_rev, l.rev FROM current c
             JOIN log l ON l.rev = c.rev WHERE c.key = ?1",
        )?
        .query_row([key.as_bytes()], key_value)
        .optional()?
    } else {
        let at = read_revision(revision, current, compacted)?;
        tx.prepare_cached(
            "SELECT key, value, create_rev, rev, deleted FROM log
             WHERE key = ?1 AND rev <= ?2 ORDER BY rev DESC LIMIT 1",
        )?
        .query_row(params![key.as_bytes(), at], |row| {
            Ok((key_value(row)?, row.get::<_, bool>(4)?))
        })
        .optional()?
        .and_then(|(kv, deleted)| (!deleted).then_some(kv))
    };
    Ok(found)
}

/// The newest change under `prefix` in `(after, upto]`, from the log; `None` when none.
pub(crate) fn last_change(
    conn: &mut Connection,
    prefix: &str,
    after: Revision,
    upto: Revision,
) -> Result<Option<Revision>> {
    let tx = conn.transaction()?;
    let (_, compacted) = snapshot(&tx)?;
    if after < compacted {
        return Err(Error::Compacted {
            requested: after,
            compacted,
        });
    }
    let end = crate::prefix_end(prefix.as_bytes()).unwrap_or_else(|| NO_END.to_vec());
    // By revision, not by key: the range is short when a copy is nearly current. (`+key`
    // keeps SQLite from walking the key index over every version of every key instead.)
    let newest: Option<Revision> = tx
        .prepare_cached(
            "SELECT max(rev) FROM log WHERE rev > ?1 AND rev <= ?2 AND +key >= ?3 AND +key < ?4",
        )?
        .query_row(params![after, upto, prefix.as_bytes(), end], |row| {
            row.get(0)
        })?;
    Ok(newest)
}

pub(crate) fn list(
    conn: &mut Connection,
    prefix: &str,
    options: &ListOptions,
) -> Result<ListResult> {
    let tx = conn.transaction()?;
    let (current, compacted) = snapshot(&tx)?;
    let at = read_revision(options.revision, current, compacted)?;
    let end = crate::prefix_end(prefix.as_bytes()).unwrap_or_else(|| NO_END.to_vec());
    let start = match &options.start_after {
        // The smallest key after `after`.
        Some(after) if after.as_str() >= prefix => {
            let mut start = after.as_bytes().to_vec();
            start.push(0);
            start
        }
        _ => prefix.as_bytes().to_vec(),
    };
    // One more than asked tells whether more follow.
    let limit = options.limit.filter(|&limit| limit > 0);
    let fetch = limit.map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1);
    let mut kvs = if options.revision.is_none() || at == current {
        tx.prepare_cached(
            "SELECT l.key, l.value, l.create_rev, l.rev FROM current c
             JOIN log l ON l.rev = c.rev
             WHERE c.key >= ?1 AND c.key < ?2 ORDER BY c.key LIMIT ?3",
        )?
        .query_map(params![start, end, fetch], key_value)?
        .collect::<rusqlite::Result<Vec<_>>>()?
    } else {
        // The newest row of each key at or below `at`, unless it is a tombstone.
        tx.prepare_cached(
            "SELECT l.key, l.value, l.create_rev, l.rev FROM log l
             WHERE l.key >= ?1 AND l.key < ?2 AND l.rev <= ?3 AND l.deleted = 0
               AND l.rev = (SELECT max(m.rev) FROM log m WHERE m.key = l.key AND m.rev <= ?3)
             ORDER BY l.key LIMIT ?4",
        )?
        .query_map(params![start, end, at, fetch], key_value)?
        .collect::<rusqlite::Result<Vec<_>>>()?
    };
    let more = limit.is_some_and(|limit| kvs.len() > limit);
    if let Some(limit) = limit {
        kvs.truncate(limit);
    }
    Ok(ListResult {
        kvs,
        more,
        revision: at,
    })
}

/// Events under `prefix` after revision `after`, oldest first, at most `limit`; and the
/// revision of the snapshot they were read from.
pub(crate) fn events_after(
    conn: &mut Connection,
    prefix: &str,
    after: Revision,
    limit: usize,
) -> Result<(Vec<Event>, Revision)> {
    let tx = conn.transaction()?;
    let (current, compacted) = snapshot(&tx)?;
    if after < compacted {
        return Err(Error::Compacted {
            requested: after,
            compacted,
        });
    }
    let end = crate::prefix_end(prefix.as_bytes()).unwrap_or_else(|| NO_END.to_vec());
    let mut stmt = tx.prepare_cached(
        "SELECT l.key, l.value, l.create_rev, l.rev, l.deleted, p.value, p.create_rev, p.rev
         FROM log l LEFT JOIN log p ON p.rev = l.prev_rev AND l.prev_rev > 0
         WHERE l.rev > ?1 AND l.key >= ?2 AND l.key < ?3
         ORDER BY l.rev LIMIT ?4",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let events = stmt
        .query_map(params![after, prefix.as_bytes(), end, limit], |row| {
            let kv = key_value(row)?;
            let prev = match row.get::<_, Option<i64>>(7)? {
                Some(prev_rev) => Some(KeyValue {
                    key: kv.key.clone(),
                    value: Bytes::from(row.get::<_, Vec<u8>>(5)?),
                    create_revision: row.get(6)?,
                    mod_revision: prev_rev,
                }),
                None => None,
            };
            Ok(if row.get::<_, bool>(4)? {
                Event {
                    kind: EventKind::Delete,
                    kv: KeyValue::tombstone(kv.key, kv.mod_revision),
                    prev,
                }
            } else {
                Event {
                    kind: EventKind::Put,
                    kv,
                    prev,
                }
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((events, current))
}
