//! Opening the SQLite file: exclusive use of the data directory, durability settings, the
//! integrity check, and the schema.
//!
//! Tables:
//! - `log`: every write as one row, keyed by its revision: puts carry the new value, deletes
//!   are tombstones. `prev_rev` links a row to the version it replaced, which is what makes
//!   compaction cheap (see `writer::compact_chunk`) and gives watch events their previous value.
//! - `current`: live keys → the revision of their newest row, so reads at the latest revision
//!   do not scan history.
//! - `meta`: the current and the compacted revision, and the schema version.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use crate::{Error, Result, Revision};

/// Bumped whenever the layout changes; a file with another version is refused, not guessed at.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
    rev        INTEGER PRIMARY KEY,
    key        BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    prev_rev   INTEGER NOT NULL,
    deleted    INTEGER NOT NULL,
    value      BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
CREATE TABLE IF NOT EXISTS current (
    key BLOB PRIMARY KEY,
    rev INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The database file inside the data directory.
pub(crate) fn db_path(dir: &Path) -> PathBuf {
    dir.join("state.db")
}

/// Holds the data directory for this process: an exclusive lock on `<dir>/lock`, released when
/// dropped (or when the process dies, whatever the way).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<Self> {
        let io = |context: String| move |source| Error::Io { context, source };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(format!("creating {}", dir.display())))?;
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // Best effort: the holder wrote its pid there; an unreadable file only loses
                // that detail from the message.
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(Error::Locked {
                    path: dir.display().to_string(),
                    holder: (!holder.is_empty()).then(|| holder.to_owned()),
                });
            }
            Err(fs::TryLockError::Error(source)) => {
                return Err(Error::Io {
                    context: format!("locking {}", path.display()),
                    source,
                });
            }
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .map_err(io(format!("writing {}", path.display())))?;
        Ok(Self { _file: file })
    }
}

/// Turns SQLite's "this is not a database" and "the database is malformed" into
/// [`Error::Corrupt`], so a damaged file is reported as such rather than as a generic failure.
pub(crate) fn classify(path: &Path, err: rusqlite::Error) -> Error {
    match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::Corrupt {
            path: path.display().to_string(),
            detail: err.to_string(),
        },
        _ => Error::Sqlite(err),
    }
}

/// Opens a connection with the settings every connection needs.
pub(crate) fn connect(path: &Path, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| classify(path, e))?;
    // WAL lets readers work beside the single writer. FULL makes every commit fsync the WAL:
    // an acknowledged write survives power loss, not just a crash of this process.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| classify(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Corrupt {
            path: path.display().to_string(),
            detail: format!("cannot switch to WAL mode (journal_mode is {mode})"),
        });
    }
    // 8 MiB of page cache per connection: the OS page cache holds the rest, and a reader pool
    // of several connections must not cost hundreds of MiB.
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA journal_size_limit = 67108864;
         PRAGMA cache_size = -8192;",
    )
    .map_err(|e| classify(path, e))?;
    Ok(conn)
}

/// The revisions recorded in the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub(crate) revision: Revision,
    pub(crate) compacted: Revision,
}

/// Checks the file's integrity, creates or verifies the schema, and reads the revisions.
pub(crate) fn prepare(path: &Path, conn: &mut Connection) -> Result<Meta> {
    let corrupt = |detail: String| Error::Corrupt {
        path: path.display().to_string(),
        detail,
    };
    // quick_check reads every page: a truncated or overwritten file fails here, before any
    // write could make it worse.
    let problems: Vec<String> = conn
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| classify(path, e))?;
    if problems.first().map(String::as_str) != Some("ok") {
        return Err(corrupt(problems.join("; ")));
    }
    let tx = conn.transaction().map_err(|e| classify(path, e))?;
    tx.execute_batch(SCHEMA).map_err(|e| classify(path, e))?;
    let get = |name: &str| -> Result<Option<i64>> {
        tx.query_row("SELECT value FROM meta WHERE name = ?1", [name], |row| {
            row.get(0)
        })
        .optional()
        .map_err(|e| classify(path, e))
    };
    let meta = match get("schema_version")? {
        None => {
            // A new file. Like a new etcd, the store starts at revision 1.
            tx.execute_batch(&format!(
                "INSERT INTO meta (name, value) VALUES
                     ('schema_version', {SCHEMA_VERSION}), ('revision', 1), ('compacted', 0);"
            ))
            .map_err(|e| classify(path, e))?;
            Meta {
                revision: 1,
                compacted: 0,
            }
        }
        Some(SCHEMA_VERSION) => {
            let revision = get("revision")?.ok_or_else(|| corrupt("no revision".into()))?;
            let compacted =
                get("compacted")?.ok_or_else(|| corrupt("no compacted revision".into()))?;
            let newest: Option<i64> = tx
                .query_row("SELECT max(rev) FROM log", [], |row| row.get(0))
                .map_err(|e| classify(path, e))?;
            if newest.is_some_and(|newest| newest > revision) || compacted > revision {
                return Err(corrupt(format!(
                    "revision {revision} is behind the history (newest row {newest:?}, \
                     compacted {compacted})"
                )));
            }
            Meta {
                revision,
                compacted,
            }
        }
        Some(other) => {
            return Err(corrupt(format!(
                "schema version {other}, this build reads version {SCHEMA_VERSION}"
            )));
        }
    };
    tx.commit().map_err(|e| classify(path, e))?;
    Ok(meta)
}
