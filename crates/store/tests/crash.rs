//! Crash test for the SQLite backend: every acknowledged write survives SIGKILL.
//!
//! The test binary runs itself as a child (`COX_CRASH_CHILD_DIR` set) that writes continuously
//! with many concurrent writers and prints one line per acknowledged write. The parent kills it
//! with SIGKILL at a random moment, reopens the store and checks each acknowledged write
//! against the history: the version written at that revision must be exactly there, and the
//! revision must only have moved forward. While the child runs, the parent also checks that a
//! second process cannot open the same data directory.
//!
//! Rounds: `COX_CRASH_ROUNDS` (default 25).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use cox_store::sqlite::{SqliteOptions, SqliteStore};
use cox_store::{Error, Store};
use rand::Rng;

const CHILD_ENV: &str = "COX_CRASH_CHILD_DIR";
const WRITERS: usize = 16;

fn options() -> SqliteOptions {
    // Keep all history, so every acknowledged write can be checked at its own revision.
    SqliteOptions {
        history_revisions: i64::MAX / 2,
        compaction_interval: Duration::from_secs(3600),
    }
}

/// The value written as the `step`-th version of `key`.
fn value(key: &str, step: u32) -> Bytes {
    Bytes::from(format!(
        "{key}#{step}:{}",
        "x".repeat(200 + (step as usize * 37) % 300)
    ))
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return runtime.block_on(child(Path::new(&dir)));
    }
    let rounds: usize = std::env::var("COX_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(25);
    let dir = tempfile::tempdir()?;
    let mut checked = 0;
    let mut floor = 0;
    for round in 0..rounds {
        let (acks, revision) = runtime
            .block_on(parent_round(dir.path(), round, floor))
            .with_context(|| format!("round {round}"))?;
        checked += acks;
        floor = revision;
    }
    ensure!(checked > 0, "no write was acknowledged in {rounds} rounds");
    println!(
        "crash test: {rounds} SIGKILLs, {checked} acknowledged writes all found, final revision {floor}"
    );
    println!("crash: 1 passed, 0 failed");
    Ok(())
}

/// Writes until killed, printing `put KEY STEP REV` or `del KEY REV` for each acknowledged write.
async fn child(dir: &Path) -> Result<()> {
    let store = std::sync::Arc::new(SqliteStore::open(dir, options()).await?);
    let round = std::env::var("COX_CRASH_ROUND").unwrap_or_default();
    println!("ready {}", store.current_revision().await?);
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = std::sync::Arc::clone(&store);
        let round = round.clone();
        tasks.push(tokio::spawn(async move {
            let report = |line: String| {
                let mut out = std::io::stdout().lock();
                // The parent reads this pipe; if it is gone there is nobody to report to.
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            };
            for n in 0.. {
                let key = format!("/crash/{round}/{writer}/{n}");
                let mut rev = store.create(&key, value(&key, 0)).await?;
                report(format!("put {key} 0 {rev}"));
                for step in 1..4 {
                    rev = store.update(&key, value(&key, step), rev).await?;
                    report(format!("put {key} {step} {rev}"));
                }
                if n % 2 == 0 {
                    let (_, deleted) = store.delete(&key, Some(rev)).await?;
                    report(format!("del {key} {deleted}"));
                }
            }
            Ok::<_, Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Kills the child when dropped, whatever happened in the parent.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

enum Ack {
    Put { key: String, step: u32, rev: i64 },
    Del { key: String, rev: i64 },
}

fn parse(line: &str) -> Result<Ack> {
    let parts: Vec<&str> = line.split(' ').collect();
    match parts.as_slice() {
        ["put", key, step, rev] => Ok(Ack::Put {
            key: key.to_string(),
            step: step.parse()?,
            rev: rev.parse()?,
        }),
        ["del", key, rev] => Ok(Ack::Del {
            key: key.to_string(),
            rev: rev.parse()?,
        }),
        _ => bail!("unexpected line from the child: {line:?}"),
    }
}

/// One child run and its check. Returns how many writes were checked and the revision after.
async fn parent_round(dir: &Path, round: usize, floor: i64) -> Result<(usize, i64)> {
    let exe = std::env::current_exe()?;
    let mut child = KillOnDrop(
        Command::new(exe)
            .env(CHILD_ENV, dir)
            .env("COX_CRASH_ROUND", round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let stdout = child.0.stdout.take().context("child stdout")?;
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        // Only whole lines count: one cut by the kill has no newline and is dropped.
        while stdout.read_line(&mut line).is_ok_and(|n| n > 0) && line.ends_with('\n') {
            if lines_tx.send(line.trim_end().to_owned()).is_err() {
                break;
            }
            line.clear();
        }
    });
    let ready = lines
        .recv_timeout(Duration::from_secs(30))
        .context("the child never became ready")?;
    let start: i64 = ready
        .strip_prefix("ready ")
        .and_then(|r| r.parse().ok())
        .with_context(|| format!("unexpected first line {ready:?}"))?;
    ensure!(
        start >= floor,
        "revision went back from {floor} to {start} after a restart"
    );

    // A second process must not open the directory while the child holds it.
    match SqliteStore::open(dir, options()).await {
        Err(Error::Locked { .. }) => {}
        Err(other) => bail!("a second open failed with {other}, expected Locked"),
        Ok(_) => bail!("a second process opened a data directory in use"),
    }

    let delay = rand::rng().random_range(20..400);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    drop(child); // SIGKILL, then reap.
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))?;
    let acks: Vec<Ack> = lines
        .try_iter()
        .filter_map(|line| parse(&line).ok())
        .collect();

    let store = SqliteStore::open(dir, options()).await?;
    let current = store.current_revision().await?;
    let mut newest: HashMap<&str, i64> = HashMap::new();
    for ack in &acks {
        match ack {
            Ack::Put { key, step, rev } => {
                let kv = store
                    .get(key, Some(*rev))
                    .await?
                    .with_context(|| format!("acknowledged put of {key} at {rev} is missing"))?;
                ensure!(
                    kv.mod_revision == *rev,
                    "{key} at {rev} has mod revision {}",
                    kv.mod_revision
                );
                ensure!(
                    kv.value == value(key, *step),
                    "{key} at {rev} has the wrong value"
                );
                newest.insert(key, *rev);
            }
            Ack::Del { key, rev } => {
                ensure!(
                    store.get(key, Some(*rev)).await?.is_none(),
                    "acknowledged delete of {key} at {rev} is undone"
                );
                newest.insert(key, *rev);
            }
        }
        let rev = match ack {
            Ack::Put { rev, .. } | Ack::Del { rev, .. } => *rev,
        };
        ensure!(
            rev > start && rev <= current,
            "acknowledged revision {rev} outside {start}..={current}"
        );
    }
    // Nothing acknowledged was overwritten by an older state: each key's latest version is at
    // least as new as its last acknowledged write.
    for (key, rev) in newest {
        if let Some(kv) = store.get(key, None).await? {
            ensure!(
                kv.mod_revision >= rev,
                "{key} went back from {rev} to {}",
                kv.mod_revision
            );
        }
    }
    let count = acks.len();
    store.close().await;
    Ok((count, current))
}
