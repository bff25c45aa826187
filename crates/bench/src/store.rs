//! `cox bench store`: the store's backends beside raw etcd, in one run.
//!
//! Three targets, measured the same way: our SQLite backend, our etcd backend, and raw etcd
//! (etcd-client puts straight to the same etcd: the baseline). For each: durable writes with
//! 1, 16 and 256 concurrent writers (writes/s, p50/p99), a full list of 10,000 and 100,000
//! keys at one snapshot, and watch fan-out (1,000 watchers, every event delivered, delivery
//! delay from the write's start to each watcher's receipt). Then SQLite's disk use under
//! endless churn, to show compaction keeps it bounded.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use cox_store::etcd::EtcdStore;
use cox_store::etcd_server::EtcdServer;
use cox_store::sqlite::{SqliteOptions, SqliteStore};
use cox_store::{ListOptions, Store};
use etcd_client::{Client, GetOptions, WatchOptions};
use futures::stream::{BoxStream, StreamExt};

use crate::stats::{Latencies, mib, ratio};

/// What to measure, and how much.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long each write measurement runs.
    pub write_duration: Duration,
    /// Concurrent writer counts.
    pub writers: Vec<usize>,
    /// Key counts to list, ascending.
    pub list_sizes: Vec<usize>,
    /// Timed lists per size.
    pub list_repeats: usize,
    pub watchers: usize,
    pub watch_events: usize,
    /// Events written per second during the fan-out measurement.
    pub watch_rate: u32,
    /// Revisions written in the disk-use measurement (SQLite only).
    pub churn_revisions: usize,
    pub churn_keys: usize,
    /// Bytes per value.
    pub value_size: usize,
    pub etcd_binary: PathBuf,
    /// Measure only these targets (`sqlite`, `etcd`, `raw-etcd`, `raw-etcd-cas`); all if empty.
    pub only: Vec<String>,
}

impl Config {
    /// The figures the issue asks for.
    pub fn full() -> Self {
        Self {
            write_duration: Duration::from_secs(3),
            writers: vec![1, 16, 256],
            list_sizes: vec![10_000, 100_000],
            list_repeats: 5,
            watchers: 1000,
            watch_events: 1000,
            watch_rate: 500,
            churn_revisions: 200_000,
            churn_keys: 1000,
            value_size: 1024,
            etcd_binary: PathBuf::from("etcd"),
            only: Vec::new(),
        }
    }

    /// Everything once, small: proves the benchmark works (used by the test suite).
    pub fn smoke() -> Self {
        Self {
            write_duration: Duration::from_millis(200),
            writers: vec![1, 16],
            list_sizes: vec![300],
            list_repeats: 2,
            watchers: 20,
            watch_events: 20,
            watch_rate: 200,
            churn_revisions: 2_000,
            churn_keys: 50,
            value_size: 256,
            etcd_binary: PathBuf::from("etcd"),
            only: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WriteFigures {
    pub writers: usize,
    pub ops: u64,
    pub per_sec: f64,
    pub latency: Latencies,
}

#[derive(Debug, Clone)]
pub struct ListFigures {
    pub keys: usize,
    pub latency: Latencies,
}

#[derive(Debug, Clone)]
pub struct WatchFigures {
    pub watchers: usize,
    pub events: usize,
    pub delivered: u64,
    pub delay: Latencies,
}

#[derive(Debug, Clone)]
pub struct TargetReport {
    pub name: &'static str,
    pub writes: Vec<WriteFigures>,
    pub lists: Vec<ListFigures>,
    /// Absent for targets measured only for writes.
    pub watch: Option<WatchFigures>,
}

#[derive(Debug, Clone)]
pub struct ChurnSample {
    pub revision: i64,
    pub compacted: i64,
    pub db_bytes: u64,
    pub wal_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub targets: Vec<TargetReport>,
    pub churn: Vec<ChurnSample>,
}

/// One thing under measurement.
#[derive(Clone)]
enum Target {
    Ours(Arc<dyn Store>),
    /// Plain etcd puts: the floor.
    RawEtcd(Client),
    /// The create upstream's API server sends (a transaction: put if the key does not exist),
    /// straight from etcd-client: what our etcd backend costs beyond etcd itself.
    RawEtcdCas(Client),
}

impl Target {
    async fn put(&self, key: String, value: Bytes) -> Result<()> {
        match self {
            Self::Ours(store) => {
                store.create(&key, value).await?;
            }
            Self::RawEtcd(client) => {
                client.kv_client().put(key, value.to_vec(), None).await?;
            }
            Self::RawEtcdCas(client) => {
                let txn = etcd_client::Txn::new()
                    .when([etcd_client::Compare::create_revision(
                        key.as_str(),
                        etcd_client::CompareOp::Equal,
                        0,
                    )])
                    .and_then([etcd_client::TxnOp::put(key.as_str(), value.to_vec(), None)]);
                if !client.kv_client().txn(txn).await?.succeeded() {
                    bail!("{key} already exists");
                }
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<usize> {
        Ok(match self {
            Self::Ours(store) => store.list(prefix, ListOptions::default()).await?.kvs.len(),
            Self::RawEtcd(client) | Self::RawEtcdCas(client) => client
                .kv_client()
                .max_decoding_message_size(i32::MAX as usize)
                .get(prefix, Some(GetOptions::new().with_prefix()))
                .await?
                .kvs()
                .len(),
        })
    }

    async fn revision(&self) -> Result<i64> {
        Ok(match self {
            Self::Ours(store) => store.current_revision().await?,
            Self::RawEtcd(client) | Self::RawEtcdCas(client) => client
                .kv_client()
                .get("/", Some(GetOptions::new().with_count_only()))
                .await?
                .header()
                .context("etcd answered without a header")?
                .revision(),
        })
    }

    /// Values written under `prefix` after `after`, as they arrive.
    async fn watch(&self, prefix: &str, after: i64) -> Result<BoxStream<'static, Result<Bytes>>> {
        match self {
            Self::Ours(store) => {
                let watch = store.watch(prefix, after).await?;
                Ok(watch.map(|event| Ok(event?.kv.value)).boxed())
            }
            Self::RawEtcd(client) | Self::RawEtcdCas(client) => {
                let options = WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(after + 1);
                let stream = client.watch_client().watch(prefix, Some(options)).await?;
                let values = futures::stream::unfold(stream, |mut stream| async move {
                    match stream.message().await {
                        Ok(Some(resp)) => {
                            let values: Vec<Result<Bytes>> = resp
                                .events()
                                .iter()
                                .filter_map(|e| e.kv())
                                .map(|kv| Ok(Bytes::copy_from_slice(kv.value())))
                                .collect();
                            Some((futures::stream::iter(values), stream))
                        }
                        Ok(None) => None,
                        Err(err) => Some((
                            futures::stream::iter(vec![Err(anyhow::Error::from(err))]),
                            stream,
                        )),
                    }
                });
                Ok(values.flatten().boxed())
            }
        }
    }
}

/// Runs every measurement and prints the figures as they come, then the summary.
pub async fn run(config: &Config) -> Result<Report> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    println!(
        "cox bench store: {} cores, {} B values, durable writes (fsync before acknowledging)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        config.value_size
    );
    let etcd = EtcdServer::start_with(&config.etcd_binary, dir.path())
        .await
        .context("starting etcd (Debian package etcd-server) for the baseline")?;
    let sqlite = SqliteStore::open(dir.path().join("sqlite"), SqliteOptions::default()).await?;
    let etcd_store = EtcdStore::connect(&[etcd.endpoint().to_owned()]).await?;
    let raw = Client::connect([etcd.endpoint()], None).await?;
    println!(
        "etcd {} (a single member on loopback, its default settings)",
        etcd.endpoint()
    );

    let targets: Vec<(&'static str, Target)> = [
        ("sqlite", Target::Ours(Arc::new(sqlite))),
        ("etcd", Target::Ours(Arc::new(etcd_store))),
        ("raw-etcd", Target::RawEtcd(raw.clone())),
        ("raw-etcd-cas", Target::RawEtcdCas(raw)),
    ]
    .into_iter()
    .filter(|(name, _)| config.only.is_empty() || config.only.iter().any(|o| o == name))
    .collect();
    let mut reports: Vec<TargetReport> = targets
        .iter()
        .map(|(name, _)| TargetReport {
            name,
            writes: Vec::new(),
            lists: Vec::new(),
            watch: None,
        })
        .collect();
    // Each measurement visits every target in turn, so that all of them meet etcd in the
    // same state (etcd's database grows through the run).
    let value = Bytes::from(vec![b'v'; config.value_size]);
    println!("\n== durable writes (each writer creates new keys as fast as it can)");
    for &writers in &config.writers {
        for ((name, target), report) in targets.iter().zip(&mut reports) {
            let figures = write_load(target, writers, config.write_duration, &value, name).await?;
            println!(
                "{name:<13} {writers:>4} writers  {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
                figures.per_sec,
                figures.latency.ms(0.5),
                figures.latency.ms(0.99)
            );
            report.writes.push(figures);
        }
    }
    // raw-etcd-cas reads and watches exactly as raw-etcd does: measured for writes only.
    let readers = || {
        targets
            .iter()
            .zip(0..)
            .filter(|((name, _), _)| *name != "raw-etcd-cas")
    };
    println!("\n== list a whole prefix at one snapshot");
    for &keys in &config.list_sizes {
        for ((name, target), i) in readers() {
            let figures = list_load(name, target, keys, config.list_repeats, &value).await?;
            println!(
                "{name:<13} {keys:>7} keys  p50 {:>8.1} ms  max {:>8.1} ms",
                figures.latency.ms(0.5),
                figures.latency.max_ms()
            );
            reports[i].lists.push(figures);
        }
    }
    println!(
        "\n== watch fan-out: {} watchers, {} events at {}/s",
        config.watchers, config.watch_events, config.watch_rate
    );
    for ((name, target), i) in readers() {
        let watch = fan_out(name, target, config, &value).await?;
        println!(
            "{name:<13} {}/{} delivered  delay p50 {:.2} ms  p99 {:.2} ms",
            watch.delivered,
            watch.watchers as u64 * watch.events as u64,
            watch.delay.ms(0.5),
            watch.delay.ms(0.99)
        );
        reports[i].watch = Some(watch);
    }
    drop(targets);

    let churn = if config.only.is_empty() || config.only.iter().any(|o| o == "sqlite") {
        println!("\n== sqlite disk use under churn");
        churn(&dir.path().join("churn"), config).await?
    } else {
        Vec::new()
    };
    summarize(&reports, &churn);
    Ok(Report {
        targets: reports,
        churn,
    })
}

/// Loads `keys` keys under the target's list prefix, then times full lists of it.
async fn list_load(
    name: &str,
    target: &Target,
    keys: usize,
    repeats: usize,
    value: &Bytes,
) -> Result<ListFigures> {
    let prefix = format!("/bench/{name}/list/");
    load_keys(target, &prefix, keys, value).await?;
    target.list(&prefix).await?; // warm caches once
    let mut latency = Latencies::new();
    for _ in 0..repeats {
        let start = Instant::now();
        let listed = target.list(&prefix).await?;
        latency.record(start.elapsed());
        if listed != keys {
            bail!("{name}: listed {listed} keys, expected {keys}");
        }
    }
    Ok(ListFigures { keys, latency })
}

/// `writers` tasks creating new keys as fast as they can for `duration`.
async fn write_load(
    target: &Target,
    writers: usize,
    duration: Duration,
    value: &Bytes,
    name: &'static str,
) -> Result<WriteFigures> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (target, value) = (target.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            let mut latency = Latencies::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let key = format!("/bench/{name}/writes/{writers}/{writer}/{n}");
                let began = Instant::now();
                target.put(key, value.clone()).await?;
                latency.record(began.elapsed());
                n += 1;
            }
            Ok::<_, anyhow::Error>(latency)
        }));
    }
    let mut latency = Latencies::new();
    for task in tasks {
        latency.merge(&task.await.context("writer task")??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ops = latency.count();
    if ops == 0 {
        bail!("{name}: no write completed with {writers} writers");
    }
    Ok(WriteFigures {
        writers,
        ops,
        per_sec: ops as f64 / elapsed,
        latency,
    })
}

/// Makes sure `prefix` holds exactly keys 0..count (earlier sizes are reused).
async fn load_keys(target: &Target, prefix: &str, count: usize, value: &Bytes) -> Result<()> {
    let have = target.list(prefix).await?;
    const LOADERS: usize = 64;
    let mut tasks = Vec::new();
    for loader in 0..LOADERS {
        let (target, value, prefix) = (target.clone(), value.clone(), prefix.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut i = have + loader;
            while i < count {
                target.put(format!("{prefix}{i:07}"), value.clone()).await?;
                i += LOADERS;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await.context("loader task")??;
    }
    Ok(())
}

/// `watchers` watches on one prefix; events written at a steady rate, each carrying the time
/// its write started; every watcher must get every event.
async fn fan_out(
    name: &'static str,
    target: &Target,
    config: &Config,
    value: &Bytes,
) -> Result<WatchFigures> {
    let base = Instant::now();
    let stamp = move |value: &Bytes| -> Bytes {
        let mut stamped = format!("{};", base.elapsed().as_micros()).into_bytes();
        stamped.extend_from_slice(value);
        Bytes::from(stamped)
    };
    let after = target.revision().await?;
    let total = config.watch_events + 1; // a warm-up event first, not measured
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel(config.watchers);
    let mut tasks = Vec::new();
    for _ in 0..config.watchers {
        let mut stream = target
            .watch(&format!("/bench/{name}/watch/"), after)
            .await?;
        let ready_tx = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut delay = Latencies::new();
            let mut got = 0;
            // Every event must arrive within two minutes, or the watcher stops counting.
            let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
            while got < total {
                let Ok(Some(Ok(value))) = tokio::time::timeout_at(give_up, stream.next()).await
                else {
                    break;
                };
                let received = base.elapsed().as_micros();
                if got == 0 {
                    let _ = ready_tx.send(()).await;
                } else if let Some(sent) = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|v| v.split(';').next())
                    .and_then(|t| t.parse::<u128>().ok())
                {
                    let micros = u64::try_from(received.saturating_sub(sent)).unwrap_or(u64::MAX);
                    delay.record(Duration::from_micros(micros));
                }
                got += 1;
            }
            delay
        }));
    }
    drop(ready_tx);
    // The warm-up event proves every watch is live before the timed events start.
    target
        .put(format!("/bench/{name}/watch/warm-up"), stamp(value))
        .await?;
    for _ in 0..config.watchers {
        if tokio::time::timeout(Duration::from_secs(60), ready.recv())
            .await
            .is_err()
        {
            bail!("not every watcher received the warm-up event within 60s");
        }
    }
    let interval = Duration::from_secs_f64(1.0 / f64::from(config.watch_rate.max(1)));
    let start = tokio::time::Instant::now();
    let mut writes = Vec::new();
    for i in 0..config.watch_events {
        tokio::time::sleep_until(start + interval * i as u32).await;
        let (target, value) = (target.clone(), stamp(value));
        writes.push(tokio::spawn(async move {
            target
                .put(format!("/bench/{name}/watch/{i:07}"), value)
                .await
        }));
    }
    for write in writes {
        write.await.context("watch writer")??;
    }
    let mut delay = Latencies::new();
    for task in tasks {
        delay.merge(&task.await.context("watcher task")?);
    }
    Ok(WatchFigures {
        watchers: config.watchers,
        events: config.watch_events,
        delivered: delay.count(),
        delay,
    })
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |meta| meta.len())
}

/// Updates a fixed set of keys over and over with the default history window.
async fn churn(dir: &Path, config: &Config) -> Result<Vec<ChurnSample>> {
    let options = SqliteOptions::default();
    println!(
        "{} keys updated {} times in all; history window {} revisions, compaction every {:?}",
        config.churn_keys,
        config.churn_revisions,
        options.history_revisions,
        options.compaction_interval
    );
    let store = Arc::new(SqliteStore::open(dir, options).await?);
    let value = Bytes::from(vec![b'c'; config.value_size]);
    let mut revs = Vec::new();
    for i in 0..config.churn_keys {
        revs.push(
            store
                .create(&format!("/churn/{i:06}"), value.clone())
                .await?,
        );
    }
    let samples_wanted = 5;
    let per_sample = config.churn_revisions / samples_wanted;
    let writers = 64.min(config.churn_keys);
    let mut samples = Vec::new();
    for _ in 0..samples_wanted {
        let mut tasks = Vec::new();
        for writer in 0..writers {
            let store = Arc::clone(&store);
            let value = value.clone();
            let mut mine: Vec<(usize, i64)> = revs
                .iter()
                .enumerate()
                .filter(|(i, _)| i % writers == writer)
                .map(|(i, rev)| (i, *rev))
                .collect();
            let updates = per_sample / writers;
            tasks.push(tokio::spawn(async move {
                for n in 0..updates {
                    let slot = n % mine.len();
                    let (i, rev) = mine[slot];
                    let next = store
                        .update(&format!("/churn/{i:06}"), value.clone(), rev)
                        .await?;
                    mine[slot] = (i, next);
                }
                Ok::<_, anyhow::Error>(mine)
            }));
        }
        for task in tasks {
            for (i, rev) in task.await.context("churn writer")?? {
                revs[i] = rev;
            }
        }
        // Give the background compaction its interval to catch up before measuring.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let sample = ChurnSample {
            revision: store.current_revision().await?,
            compacted: store.compacted_revision().await?,
            db_bytes: file_size(&dir.join("state.db")),
            wal_bytes: file_size(&dir.join("state.db-wal")),
        };
        println!(
            "after revision {:>8}: history from {:>8}, database {}, write-ahead log {}",
            sample.revision,
            sample.compacted,
            mib(sample.db_bytes),
            mib(sample.wal_bytes)
        );
        samples.push(sample);
    }
    Ok(samples)
}

fn summarize(reports: &[TargetReport], churn: &[ChurnSample]) {
    let find = |name: &str| reports.iter().find(|r| r.name == name);
    let (Some(raw), Some(raw_cas)) = (find("raw-etcd"), find("raw-etcd-cas")) else {
        return;
    };
    println!("\n== summary: ours against raw etcd, measured in this run");
    let writes = |ours: &TargetReport, base: &TargetReport| {
        for (o, b) in ours.writes.iter().zip(&base.writes) {
            println!(
                "{:<7} writes {:>4} writers: {:>9.0}/s vs {:<12} {:>9.0}/s = {}   p99 {:.2} vs {:.2} ms",
                ours.name,
                o.writers,
                o.per_sec,
                base.name,
                b.per_sec,
                ratio(o.per_sec, b.per_sec),
                o.latency.ms(0.99),
                b.latency.ms(0.99)
            );
        }
    };
    for name in ["sqlite", "etcd"] {
        let Some(ours) = find(name) else { continue };
        writes(ours, raw);
        if name == "etcd" {
            writes(ours, raw_cas);
        }
        for (o, b) in ours.lists.iter().zip(&raw.lists) {
            println!(
                "{:<7} list {:>7} keys: p50 {:.1} vs {:.1} ms = {} of raw etcd's time",
                ours.name,
                o.keys,
                o.latency.ms(0.5),
                b.latency.ms(0.5),
                ratio(o.latency.ms(0.5), b.latency.ms(0.5))
            );
        }
        if let (Some(o), Some(b)) = (&ours.watch, &raw.watch) {
            println!(
                "{:<7} watch fan-out delay p99: {:.2} vs {:.2} ms = {} of raw etcd's",
                ours.name,
                o.delay.ms(0.99),
                b.delay.ms(0.99),
                ratio(o.delay.ms(0.99), b.delay.ms(0.99))
            );
        }
    }
    if let (Some(first), Some(last)) = (churn.first(), churn.last()) {
        println!(
            "sqlite disk under churn: {} after {} revisions, {} after {} (database + log)",
            mib(first.db_bytes + first.wal_bytes),
            first.revision,
            mib(last.db_bytes + last.wal_bytes),
            last.revision
        );
    }
}
