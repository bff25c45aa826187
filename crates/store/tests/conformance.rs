//! The store's contract, checked against both backends: every test here runs once on SQLite
//! and once on a real etcd (see the `conformance!` invocation at the bottom).

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use common::{Backend, Fixture, assert_quiet, next_event};
use cox_store::{Error, EventKind, ListOptions, MAX_WRITE_BYTES, Store};

fn v(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn create_then_get(store: Arc<dyn Store>) {
    let before = store.current_revision().await.unwrap();
    let rev = store.create("/registry/pods/ns/a", v("one")).await.unwrap();
    assert_eq!(rev, before + 1, "a write gets the next revision");
    assert_eq!(store.current_revision().await.unwrap(), rev);
    let kv = store
        .get("/registry/pods/ns/a", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kv.key, "/registry/pods/ns/a");
    assert_eq!(kv.value, v("one"));
    assert_eq!((kv.create_revision, kv.mod_revision), (rev, rev));
    assert!(
        store
            .get("/registry/pods/ns/b", None)
            .await
            .unwrap()
            .is_none()
    );
}

async fn create_existing_key_fails(store: Arc<dyn Store>) {
    store.create("/k", v("1")).await.unwrap();
    let before = store.current_revision().await.unwrap();
    let err = store.create("/k", v("2")).await.unwrap_err();
    assert!(
        matches!(err, Error::AlreadyExists { ref key } if key == "/k"),
        "{err}"
    );
    assert_eq!(
        store.current_revision().await.unwrap(),
        before,
        "a failed write takes no revision"
    );
    assert_eq!(store.get("/k", None).await.unwrap().unwrap().value, v("1"));
}

async fn every_write_gets_the_next_revision(store: Arc<dyn Store>) {
    let mut last = store.current_revision().await.unwrap();
    for i in 0..5 {
        let key = format!("/k/{i}");
        let created = store.create(&key, v("a")).await.unwrap();
        let updated = store.update(&key, v("b"), created).await.unwrap();
        let (_, deleted) = store.delete(&key, Some(updated)).await.unwrap();
        assert_eq!([created, updated, deleted], [last + 1, last + 2, last + 3]);
        last = deleted;
    }
}

async fn update_is_compare_and_swap(store: Arc<dyn Store>) {
    let created = store.create("/k", v("1")).await.unwrap();
    let updated = store.update("/k", v("2"), created).await.unwrap();
    assert!(updated > created);
    let kv = store.get("/k", None).await.unwrap().unwrap();
    assert_eq!(
        (kv.value, kv.create_revision, kv.mod_revision),
        (v("2"), created, updated)
    );

    let err = store.update("/k", v("3"), created).await.unwrap_err();
    match err {
        Error::Conflict {
            key,
            expected,
            current,
        } => {
            assert_eq!((key.as_str(), expected), ("/k", created));
            assert_eq!((current.value, current.mod_revision), (v("2"), updated));
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let err = store.update("/missing", v("x"), created).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(store.current_revision().await.unwrap(), updated);
}

async fn delete_is_compare_and_swap(store: Arc<dyn Store>) {
    let created = store.create("/k", v("1")).await.unwrap();
    let updated = store.update("/k", v("2"), created).await.unwrap();
    let err = store.delete("/k", Some(created)).await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict { ref current, .. } if current.mod_revision == updated),
        "{err}"
    );
    let (deleted, rev) = store.delete("/k", Some(updated)).await.unwrap();
    assert_eq!(rev, updated + 1);
    assert_eq!((deleted.value, deleted.mod_revision), (v("2"), updated));
    assert!(store.get("/k", None).await.unwrap().is_none());
    let err = store.delete("/k", None).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = store.delete("/k", Some(rev)).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");

    // Unconditional delete, and a new life for the key afterwards.
    let again = store.create("/k", v("3")).await.unwrap();
    let kv = store.get("/k", None).await.unwrap().unwrap();
    assert_eq!(
        kv.create_revision, again,
        "a recreated key starts a new life"
    );
    let (deleted, _) = store.delete("/k", None).await.unwrap();
    assert_eq!(deleted.value, v("3"));
}

async fn list_returns_the_prefix_in_key_order(store: Arc<dyn Store>) {
    for key in [
        "/registry/pods/b/x",
        "/registry/pods/a/y",
        "/registry/pods/a/x",
        "/registry/podsx/a",
        "/registry/pod/a",
        "/registry/pods/c",
    ] {
        store.create(key, v(key)).await.unwrap();
    }
    let all = store
        .list("/registry/pods/", ListOptions::default())
        .await
        .unwrap();
    let keys: Vec<&str> = all.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "/registry/pods/a/x",
            "/registry/pods/a/y",
            "/registry/pods/b/x",
            "/registry/pods/c"
        ]
    );
    assert!(!all.more);
    assert_eq!(all.revision, store.current_revision().await.unwrap());
    for kv in &all.kvs {
        assert_eq!(kv.value, v(&kv.key));
    }
    let one_ns = store
        .list("/registry/pods/a/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(one_ns.kvs.len(), 2);
    let everything = store.list("", ListOptions::default()).await.unwrap();
    assert!(everything.kvs.len() >= 6, "an empty prefix lists every key");
    let none = store
        .list("/registry/services/", ListOptions::default())
        .await
        .unwrap();
    assert!(none.kvs.is_empty() && !none.more);
}

async fn list_pages_through_one_snapshot(store: Arc<dyn Store>) {
    for i in 0..25 {
        store.create(&format!("/p/{i:03}"), v("x")).await.unwrap();
    }
    let first = store
        .list(
            "/p/",
            ListOptions {
                limit: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.kvs.len(), 10);
    assert!(first.more);
    // Changes after the first page must not show in later pages of the same list.
    store.create("/p/999", v("late")).await.unwrap();
    store.delete("/p/020", None).await.unwrap();
    let mut keys: Vec<String> = first.kvs.iter().map(|kv| kv.key.clone()).collect();
    let mut after = keys.last().cloned();
    loop {
        let page = store
            .list(
                "/p/",
                ListOptions {
                    start_after: after.clone(),
                    limit: Some(10),
                    revision: Some(first.revision),
                },
            )
            .await
            .unwrap();
        assert_eq!(page.revision, first.revision);
        keys.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        after = keys.last().cloned();
        if !page.more {
            break;
        }
    }
    let want: Vec<String> = (0..25).map(|i| format!("/p/{i:03}")).collect();
    assert_eq!(keys, want);
    // Limit 0 means no limit, as in Kubernetes.
    let all = store
        .list(
            "/p/",
            ListOptions {
                limit: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.kvs.len(), 25);
    assert!(!all.more);
}

async fn reads_at_a_past_revision_see_that_snapshot(store: Arc<dyn Store>) {
    let a = store.create("/s/a", v("a1")).await.unwrap();
    let b = store.create("/s/b", v("b1")).await.unwrap();
    store.update("/s/a", v("a2"), a).await.unwrap();
    store.delete("/s/b", Some(b)).await.unwrap();
    store.create("/s/c", v("c1")).await.unwrap();

    let then = store
        .list(
            "/s/",
            ListOptions {
                revision: Some(b),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let then: Vec<(String, Bytes)> = then.kvs.into_iter().map(|kv| (kv.key, kv.value)).collect();
    assert_eq!(then, [("/s/a".into(), v("a1")), ("/s/b".into(), v("b1"))]);
    let now = store.list("/s/", ListOptions::default()).await.unwrap();
    let now: Vec<(String, Bytes)> = now.kvs.into_iter().map(|kv| (kv.key, kv.value)).collect();
    assert_eq!(now, [("/s/a".into(), v("a2")), ("/s/c".into(), v("c1"))]);

    assert_eq!(
        store.get("/s/a", Some(a)).await.unwrap().unwrap().value,
        v("a1")
    );
    assert_eq!(
        store.get("/s/b", Some(b)).await.unwrap().unwrap().value,
        v("b1")
    );
    assert!(
        store.get("/s/c", Some(b)).await.unwrap().is_none(),
        "not yet created"
    );
    assert!(
        store.get("/s/b", None).await.unwrap().is_none(),
        "deleted since"
    );
}

async fn reads_of_a_future_revision_fail(store: Arc<dyn Store>) {
    store.create("/k", v("1")).await.unwrap();
    let future = store.current_revision().await.unwrap() + 10;
    let err = store.get("/k", Some(future)).await.unwrap_err();
    assert!(
        matches!(err, Error::FutureRevision { requested, .. } if requested == future),
        "{err}"
    );
    let err = store
        .list(
            "/",
            ListOptions {
                revision: Some(future),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::FutureRevision { .. }), "{err}");
}

async fn compacted_history_is_gone_and_says_so(store: Arc<dyn Store>) {
    let first = store.create("/c/k", v("1")).await.unwrap();
    let mut rev = first;
    for i in 2..=5 {
        rev = store.update("/c/k", v(&i.to_string()), rev).await.unwrap();
    }
    let doomed = store.create("/c/gone", v("x")).await.unwrap();
    store.delete("/c/gone", None).await.unwrap();
    let at = store.update("/c/k", v("6"), rev).await.unwrap();
    store.compact(at).await.unwrap();
    assert!(store.compacted_revision().await.unwrap() >= at);

    let err = store.get("/c/k", Some(first)).await.unwrap_err();
    assert!(
        matches!(err, Error::Compacted { requested, .. } if requested == first),
        "{err}"
    );
    let err = store
        .list(
            "/c/",
            ListOptions {
                revision: Some(doomed),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Compacted { .. }), "{err}");
    // The compaction point itself and everything after it stay readable.
    assert_eq!(
        store.get("/c/k", Some(at)).await.unwrap().unwrap().value,
        v("6")
    );
    let listed = store.list("/c/", ListOptions::default()).await.unwrap();
    assert_eq!(listed.kvs.len(), 1);
    assert_eq!(listed.kvs[0].value, v("6"));
    // Compacting again to the same point is harmless; to the future is refused.
    store.compact(at).await.unwrap();
    let future = store.current_revision().await.unwrap() + 5;
    assert!(matches!(
        store.compact(future).await,
        Err(Error::FutureRevision { .. })
    ));

    let err = store.watch("/c/", first).await.unwrap_err();
    assert!(matches!(err, Error::Compacted { .. }), "{err}");
    // Watching from the compaction point works, and the next event has its previous value.
    let mut watch = store.watch("/c/", at).await.unwrap();
    let next = store.update("/c/k", v("7"), at).await.unwrap();
    let event = next_event(&mut watch).await;
    assert_eq!(event.revision(), next);
    assert_eq!(event.prev.unwrap().value, v("6"));
}

async fn watch_replays_history_then_follows_live(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let a = store.create("/w/a", v("a1")).await.unwrap();
    let a2 = store.update("/w/a", v("a2"), a).await.unwrap();
    let mut watch = store.watch("/w/", start).await.unwrap();

    let created = next_event(&mut watch).await;
    assert_eq!(
        (created.kind, created.revision(), created.kv.value.clone()),
        (EventKind::Put, a, v("a1"))
    );
    assert!(created.is_create() && created.prev.is_none());
    let updated = next_event(&mut watch).await;
    assert_eq!((updated.kind, updated.revision()), (EventKind::Put, a2));
    assert!(!updated.is_create());
    assert_eq!(updated.kv.create_revision, a);
    let prev = updated.prev.unwrap();
    assert_eq!((prev.value, prev.mod_revision), (v("a1"), a));

    let (_, deleted) = store.delete("/w/a", None).await.unwrap();
    let event = next_event(&mut watch).await;
    assert_eq!(
        (event.kind, event.revision(), event.kv.key.as_str()),
        (EventKind::Delete, deleted, "/w/a")
    );
    assert!(event.kv.value.is_empty());
    let prev = event.prev.unwrap();
    assert_eq!((prev.value, prev.mod_revision), (v("a2"), a2));

    let recreated = store.create("/w/a", v("a3")).await.unwrap();
    let event = next_event(&mut watch).await;
    assert_eq!(event.revision(), recreated);
    assert!(
        event.is_create() && event.prev.is_none(),
        "a recreated key has no previous value"
    );
    assert_quiet(&mut watch).await;
}

async fn watch_sees_only_its_prefix(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut pods = store.watch("/registry/pods/", start).await.unwrap();
    store.create("/registry/podsx/a", v("no")).await.unwrap();
    store.create("/registry/services/a", v("no")).await.unwrap();
    let wanted = store.create("/registry/pods/ns/a", v("yes")).await.unwrap();
    let event = next_event(&mut pods).await;
    assert_eq!(
        (event.revision(), event.kv.key.as_str()),
        (wanted, "/registry/pods/ns/a")
    );
    assert_quiet(&mut pods).await;
}

async fn watch_from_now_sees_only_new_changes(store: Arc<dyn Store>) {
    store.create("/n/old", v("x")).await.unwrap();
    let now = store.current_revision().await.unwrap();
    let mut watch = store.watch("/n/", now).await.unwrap();
    assert_quiet(&mut watch).await;
    let rev = store.create("/n/new", v("y")).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), rev);
}

async fn watch_under_concurrent_writers_has_no_gaps_or_duplicates(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/cw/", start).await.unwrap();
    let mut writers = Vec::new();
    for w in 0..8 {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            let key = format!("/cw/{w}");
            let mut rev = store.create(&key, v("0")).await.unwrap();
            revs.push(rev);
            for i in 1..40 {
                rev = store.update(&key, v(&i.to_string()), rev).await.unwrap();
                revs.push(rev);
            }
            revs
        }));
    }
    let mut written = BTreeSet::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    let mut seen = Vec::new();
    while seen.len() < written.len() {
        seen.push(next_event(&mut watch).await.revision());
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "events in revision order, no duplicates"
    );
    assert_eq!(
        seen.into_iter().collect::<BTreeSet<_>>(),
        written,
        "no gaps"
    );
    assert_quiet(&mut watch).await;
}

async fn a_slow_watcher_still_gets_every_event(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/slow/", start).await.unwrap();
    // More single-write commits than any buffer between the writer and this watcher holds,
    // while the watcher reads nothing.
    let mut expected = Vec::new();
    let mut rev = store.create("/slow/k", v("0")).await.unwrap();
    expected.push(rev);
    for i in 1..3000 {
        rev = store
            .update("/slow/k", v(&i.to_string()), rev)
            .await
            .unwrap();
        expected.push(rev);
    }
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        let event = next_event(&mut watch).await;
        assert_eq!(
            event.kv.value,
            v(&seen.len().to_string()),
            "values in order"
        );
        seen.push(event.revision());
    }
    assert_eq!(seen, expected);
}

async fn many_watchers_each_get_every_event(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut watches = Vec::new();
    for _ in 0..50 {
        watches.push(store.watch("/m/", start).await.unwrap());
    }
    let mut revs = Vec::new();
    for i in 0..20 {
        revs.push(store.create(&format!("/m/{i}"), v("x")).await.unwrap());
    }
    for watch in &mut watches {
        for rev in &revs {
            assert_eq!(next_event(watch).await.revision(), *rev);
        }
    }
}

async fn writes_over_the_size_limit_are_refused(store: Arc<dyn Store>) {
    let key = "/big/k";
    let biggest = Bytes::from(vec![b'x'; MAX_WRITE_BYTES - key.len()]);
    let rev = store.create(key, biggest.clone()).await.unwrap();
    assert_eq!(
        store.get(key, None).await.unwrap().unwrap().value,
        biggest,
        "the largest allowed write round-trips"
    );
    let too_big = Bytes::from(vec![b'x'; MAX_WRITE_BYTES - key.len() + 1]);
    let err = store.update(key, too_big.clone(), rev).await.unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { size, .. } if size == MAX_WRITE_BYTES + 1),
        "{err}"
    );
    let err = store.create("/big/other", too_big).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert_eq!(
        store.current_revision().await.unwrap(),
        rev,
        "nothing was written"
    );
}

async fn binary_values_round_trip(store: Arc<dyn Store>) {
    let value = Bytes::from((0..=255u8).cycle().take(4096).collect::<Vec<u8>>());
    store.create("/bin", value.clone()).await.unwrap();
    assert_eq!(store.get("/bin", None).await.unwrap().unwrap().value, value);
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = super::Fixture::new(super::Backend::Sqlite).await;
                    super::$name(fixture.store.clone()).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = super::Fixture::new(super::Backend::Etcd).await;
                    super::$name(fixture.store.clone()).await;
                }
            )*
        }
    };
}

conformance!(
    create_then_get,
    create_existing_key_fails,
    every_write_gets_the_next_revision,
    update_is_compare_and_swap,
    delete_is_compare_and_swap,
    list_returns_the_prefix_in_key_order,
    list_pages_through_one_snapshot,
    reads_at_a_past_revision_see_that_snapshot,
    reads_of_a_future_revision_fail,
    compacted_history_is_gone_and_says_so,
    watch_replays_history_then_follows_live,
    watch_sees_only_its_prefix,
    watch_from_now_sees_only_new_changes,
    watch_under_concurrent_writers_has_no_gaps_or_duplicates,
    a_slow_watcher_still_gets_every_event,
    many_watchers_each_get_every_event,
    writes_over_the_size_limit_are_refused,
    binary_values_round_trip,
);
