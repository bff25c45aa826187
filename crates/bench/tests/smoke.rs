//! The store benchmark runs end to end (small sizes) and its figures are sane: the benchmark
//! is part of the project, so it must not rot between the runs that print real figures.

#![allow(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed test"
)]

use cox_bench::store::{Config, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_benchmark_runs_and_every_watch_event_arrives() {
    let config = Config::smoke();
    let report = run(&config).await.expect("benchmark run");
    let names: Vec<&str> = report.targets.iter().map(|t| t.name).collect();
    assert_eq!(names, ["sqlite", "etcd", "raw-etcd", "raw-etcd-cas"]);
    for target in &report.targets {
        assert_eq!(target.writes.len(), config.writers.len());
        for writes in &target.writes {
            assert!(
                writes.ops > 0 && writes.per_sec > 0.0,
                "{}: {writes:?}",
                target.name
            );
        }
        if target.name == "raw-etcd-cas" {
            continue; // measured for writes only
        }
        assert_eq!(target.lists.len(), config.list_sizes.len());
        let expected = (config.watchers * config.watch_events) as u64;
        let watch = target.watch.as_ref().expect("watch figures");
        assert_eq!(
            watch.delivered, expected,
            "{}: every watcher gets every event",
            target.name
        );
    }
    assert_eq!(report.churn.len(), 5);
    let last = report.churn.last().unwrap();
    assert!(last.revision > config.churn_revisions as i64 / 2);
}
