//! What only the embedded backend has to get right: its file survives restarts, refuses to be
//! shared, reports damage instead of working on it, and stays bounded under endless churn.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::eventually;
use cox_store::sqlite::{SqliteOptions, SqliteStore};
use cox_store::{Error, LastChange, ListOptions, Store};

fn quiet_options() -> SqliteOptions {
    SqliteOptions {
        history_revisions: 1_000_000,
        compaction_interval: Duration::from_secs(3600),
    }
}

async fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, quiet_options())
        .await
        .expect("open store")
}

/// Bytes the store occupies on disk: the database and its write-ahead log.
fn disk_use(dir: &Path) -> u64 {
    ["state.db", "state.db-wal"]
        .iter()
        .filter_map(|name| std::fs::metadata(dir.join(name)).ok())
        .map(|meta| meta.len())
        .sum()
}

/// What a cache at some revision lacks for a prefix: the newest change after it, puts and
/// deletes alike, other prefixes and later revisions left out.
#[tokio::test]
async fn the_last_change_under_a_prefix_is_found_in_a_revision_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let v = || Bytes::from_static(b"x");
    let a1 = store.create("/pods/a", v()).await.unwrap();
    let other = store.create("/services/s", v()).await.unwrap();
    assert_eq!(
        store.last_change("/pods/", a1, other).await.unwrap(),
        LastChange::None
    );
    assert_eq!(
        store.last_change("/pods/", 0, other).await.unwrap(),
        LastChange::At(a1)
    );
    let (_, deleted) = store.delete("/pods/a", None).await.unwrap();
    let later = store.create("/pods/b", v()).await.unwrap();
    assert_eq!(
        store.last_change("/pods/", other, deleted).await.unwrap(),
        LastChange::At(deleted),
        "a delete is a change"
    );
    assert_eq!(
        store.last_change("/pods/", other, later).await.unwrap(),
        LastChange::At(later)
    );
    assert_eq!(
        store.last_change("/pods/", later, later).await.unwrap(),
        LastChange::None
    );
    store.compact(later).await.unwrap();
    assert!(matches!(
        store.last_change("/pods/", a1, later).await,
        Err(Error::Compacted { .. })
    ));
}

#[tokio::test]
async fn data_and_revision_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let a = store.create("/a", Bytes::from_static(b"1")).await.unwrap();
    let a2 = store
        .update("/a", Bytes::from_static(b"2"), a)
        .await
        .unwrap();
    let b = store.create("/b", Bytes::from_static(b"x")).await.unwrap();
    let (_, deleted) = store.delete("/b", Some(b)).await.unwrap();
    store.close().await;

    let store = open(dir.path()).await;
    assert_eq!(store.current_revision().await.unwrap(), deleted);
    let kv = store.get("/a", None).await.unwrap().unwrap();
    assert_eq!(
        (kv.value, kv.create_revision, kv.mod_revision),
        (Bytes::from_static(b"2"), a, a2)
    );
    assert!(store.get("/b", None).await.unwrap().is_none());
    assert_eq!(
        store.get("/a", Some(a)).await.unwrap().unwrap().value,
        Bytes::from_static(b"1"),
        "history survives too"
    );
    let next = store.create("/c", Bytes::new()).await.unwrap();
    assert_eq!(next, deleted + 1, "revisions continue where they were");
    // A watch after a reopen replays history written before it.
    let mut watch = store.watch("/", a).await.unwrap();
    assert_eq!(common::next_event(&mut watch).await.revision(), a2);
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let err = SqliteStore::open(dir.path(), quiet_options())
        .await
        .unwrap_err();
    match &err {
        Error::Locked { holder, .. } => {
            assert_eq!(
                holder.as_deref(),
                Some(std::process::id().to_string().as_str())
            );
        }
        other => panic!("expected Locked, got {other}"),
    }
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
    store.close().await;
    // Released on close.
    open(dir.path()).await.close().await;
}

async fn filled_store(dir: &Path) {
    let store = open(dir).await;
    let value = Bytes::from(vec![b'v'; 2000]);
    for i in 0..500 {
        store
            .create(&format!("/k/{i:04}"), value.clone())
            .await
            .unwrap();
    }
    store.close().await;
}

/// Folds the write-ahead log into the database file, as a clean shutdown eventually would, so
/// the test can damage the main file.
fn checkpoint(dir: &Path) {
    let conn = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

#[tokio::test]
async fn a_corrupt_database_is_reported_not_used() {
    let dir = tempfile::tempdir().unwrap();
    filled_store(dir.path()).await;
    checkpoint(dir.path());
    let path = dir.path().join("state.db");
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    // Scribble over pages in the middle of the file.
    for byte in &mut bytes[len / 3..len / 3 + 20_000] {
        *byte = 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = SqliteStore::open(dir.path(), quiet_options())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "got {err}");
    assert!(err.to_string().contains("is damaged"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the damaged file is left as it was"
    );
}

#[tokio::test]
async fn a_truncated_database_is_reported_not_used() {
    let dir = tempfile::tempdir().unwrap();
    filled_store(dir.path()).await;
    checkpoint(dir.path());
    let path = dir.path().join("state.db");
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let err = SqliteStore::open(dir.path(), quiet_options())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "got {err}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.db"), vec![0x42u8; 8192]).unwrap();
    let err = SqliteStore::open(dir.path(), quiet_options())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "got {err}");
}

#[tokio::test]
async fn background_compaction_keeps_the_window_and_disk_use_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        history_revisions: 500,
        compaction_interval: Duration::from_millis(20),
    };
    let store = SqliteStore::open(dir.path(), options).await.unwrap();
    let value = Bytes::from(vec![b'v'; 1000]);
    let mut revs = Vec::new();
    for i in 0..100 {
        revs.push(
            store
                .create(&format!("/churn/{i:03}"), value.clone())
                .await
                .unwrap(),
        );
    }

    // Endless churn, in rounds: update every key, delete and recreate some.
    let mut sizes = Vec::new();
    for round in 0..8 {
        for _ in 0..10 {
            for (i, rev) in revs.iter_mut().enumerate() {
                let key = format!("/churn/{i:03}");
                if i % 10 == round % 10 {
                    store.delete(&key, Some(*rev)).await.unwrap();
                    *rev = store.create(&key, value.clone()).await.unwrap();
                } else {
                    *rev = store.update(&key, value.clone(), *rev).await.unwrap();
                }
            }
        }
        let current = store.current_revision().await.unwrap();
        eventually(
            Duration::from_secs(20),
            "background compaction to catch up",
            || async { store.compacted_revision().await.unwrap() >= current - 500 },
        )
        .await;
        sizes.push(disk_use(dir.path()));
    }
    let current = store.current_revision().await.unwrap();
    let compacted = store.compacted_revision().await.unwrap();
    assert!(current > 8000, "the churn wrote {current} revisions");
    assert!(
        current - compacted <= 500 + 200,
        "history window kept: {compacted}..{current}"
    );
    // Old history is gone, recent history is still readable.
    assert!(matches!(
        store.get("/churn/000", Some(compacted - 1)).await,
        Err(Error::Compacted { .. })
    ));
    assert!(
        store
            .list(
                "/churn/",
                ListOptions {
                    revision: Some(compacted),
                    ..Default::default()
                }
            )
            .await
            .is_ok()
    );
    assert_eq!(
        store
            .list("/churn/", ListOptions::default())
            .await
            .unwrap()
            .kvs
            .len(),
        100
    );
    // The file stops growing once the churn is steady: the later rounds need no more room
    // than the first ones did (freed pages are reused), with a little slack for the WAL.
    eprintln!("disk use per round: {sizes:?}");
    let early = sizes[..3].iter().max().copied().unwrap();
    let late = sizes[5..].iter().max().copied().unwrap();
    assert!(
        late <= early + early / 4,
        "disk use grew under steady churn: {sizes:?}"
    );
    store.close().await;
}
