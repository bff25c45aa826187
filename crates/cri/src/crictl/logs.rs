//! `crictl logs`: a container's log read straight from the file the runtime writes (the
//! `log_path` of its status), as crictl and the kubelet read it.
//!
//! Each line of the file is `<RFC 3339 time> <stdout|stderr> <tag> <text>`; tag `P` marks a
//! partial line whose text continues in the next record, `F` a full one. Partial records are
//! written without the line break, so a long line comes out joined; with `--timestamps` only
//! its first piece gets a time. Docker's JSON-lines format is read too. `--follow` polls the
//! file, follows it when it is rotated (renamed and recreated) or truncated, and stops once the
//! container is no longer running and the file is drained.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;

use super::output::Terminal;
use super::session::Session;
use super::timestamps::{self, Timestamp};
use crate::v1::{ContainerState, ContainerStatusRequest, ReopenContainerLogRequest};

/// `cox crictl logs`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogsArgs {
    /// The container: its ID or a unique prefix of it
    #[arg(value_name = "CONTAINER-ID")]
    container: String,
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Print the logs for the previous instance of the container in a pod if it exists
    #[arg(short, long)]
    previous: bool,
    /// Reopen the container logs for the provided container
    #[arg(short, long)]
    reopen: bool,
    /// Number of lines to show from the end of the logs. Defaults to all
    #[arg(long, allow_negative_numbers = true, conflicts_with = "stream")]
    tail: Option<i64>,
    /// Maximum bytes of logs to return. Defaults to no limit
    #[arg(long, allow_negative_numbers = true)]
    limit_bytes: Option<i64>,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37) or relative (e.g. 42m for 42 minutes)
    #[arg(long)]
    since: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Show specified stream (stdout or stderr). Defaults to both.
    #[arg(short, long, value_enum)]
    stream: Option<Stream>,
}

/// The output stream a log record was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// One record of a log file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LogRecord<'a> {
    pub(crate) timestamp: Timestamp,
    pub(crate) stream: Stream,
    /// The text, with its line break unless the record is partial.
    pub(crate) content: Cow<'a, [u8]>,
}

/// A log line that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum LogParseError {
    #[error("timestamp is not found")]
    NoTimestamp,
    #[error("unexpected timestamp format {0:?}")]
    BadTimestamp(String),
    #[error("stream type is not found")]
    NoStream,
    #[error("unexpected stream type {0:?}")]
    BadStream(String),
    #[error("log tag is not found")]
    NoTag,
    #[error("not a JSON log line: {0}")]
    Json(String),
}

/// The two formats runtimes write container logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// `2016-10-06T00:17:09.669794202Z stdout F text`
    Cri,
    /// `{"log":"text\n","stream":"stdout","time":"2016-10-20T18:39:20.57606443Z"}`
    DockerJson,
}

impl LogFormat {
    /// The format of a file, judged by one of its lines.
    pub(crate) fn detect(line: &[u8]) -> Option<LogFormat> {
        [LogFormat::Cri, LogFormat::DockerJson]
            .into_iter()
            .find(|format| format.parse(line).is_ok())
    }

    pub(crate) fn parse(self, line: &[u8]) -> Result<LogRecord<'_>, LogParseError> {
        match self {
            LogFormat::Cri => parse_cri_line(line),
            LogFormat::DockerJson => parse_docker_json_line(line),
        }
    }
}

fn split_field(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = text.iter().position(|byte| *byte == b' ')?;
    Some((&text[..space], &text[space + 1..]))
}

fn parse_stream(name: &[u8]) -> Result<Stream, LogParseError> {
    match name {
        b"stdout" => Ok(Stream::Stdout),
        b"stderr" => Ok(Stream::Stderr),
        other => Err(LogParseError::BadStream(
            String::from_utf8_lossy(other).into_owned(),
        )),
    }
}

/// Parses a line of the CRI log format (with its line break, if it has one).
pub(crate) fn parse_cri_line(line: &[u8]) -> Result<LogRecord<'_>, LogParseError> {
    let (time, rest) = split_field(line).ok_or(LogParseError::NoTimestamp)?;
    let time = String::from_utf8_lossy(time);
    let timestamp =
        timestamps::parse_rfc3339(&time).ok_or_else(|| LogParseError::BadTimestamp(time.into()))?;
    let (stream, rest) = split_field(rest).ok_or(LogParseError::NoStream)?;
    let stream = parse_stream(stream)?;
    let (tags, mut content) = split_field(rest).ok_or(LogParseError::NoTag)?;
    // Tags are `:`-separated; only the first (P or F) is defined so far.
    let partial = tags.split(|byte| *byte == b':').next() == Some(b"P");
    if partial && let Some(without_break) = content.strip_suffix(b"\n") {
        content = without_break;
    }
    Ok(LogRecord {
        timestamp,
        stream,
        content: Cow::Borrowed(content),
    })
}

#[derive(serde::Deserialize)]
struct DockerJsonLine {
    #[serde(default)]
    log: String,
    #[serde(default)]
    stream: String,
    time: String,
}

/// Parses a line of Docker's JSON-lines log format.
pub(crate) fn parse_docker_json_line(line: &[u8]) -> Result<LogRecord<'static>, LogParseError> {
    let parsed: DockerJsonLine =
        serde_json::from_slice(line).map_err(|error| LogParseError::Json(error.to_string()))?;
    let timestamp =
        timestamps::parse_rfc3339(&parsed.time).ok_or(LogParseError::BadTimestamp(parsed.time))?;
    Ok(LogRecord {
        timestamp,
        stream: parse_stream(parsed.stream.as_bytes())?,
        content: Cow::Owned(parsed.log.into_bytes()),
    })
}

/// What `logs` shows of the records it reads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogOptions {
    /// Records older than this (nanoseconds since the epoch) are skipped.
    pub(crate) since: Option<i128>,
    /// Prefix each line with its time.
    pub(crate) timestamps: bool,
    /// Stop after this many bytes.
    pub(crate) limit_bytes: Option<u64>,
    /// Show only this stream.
    pub(crate) only: Option<Stream>,
}

/// Whether to go on after writing a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    More,
    LimitReached,
}

/// Writes records to stdout and stderr as `logs` shows them.
#[derive(Debug)]
pub(crate) struct LogWriter {
    options: LogOptions,
    remaining_bytes: Option<u64>,
    /// Whether the next record starts a line (and so gets a timestamp).
    at_line_start: bool,
}

impl LogWriter {
    pub(crate) fn new(options: LogOptions) -> Self {
        LogWriter {
            options,
            remaining_bytes: options.limit_bytes,
            at_line_start: true,
        }
    }

    pub(crate) fn write(
        &mut self,
        record: &LogRecord<'_>,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> io::Result<Written> {
        let starts_line = self.at_line_start;
        self.at_line_start = record.content.last().is_none_or(|byte| *byte == b'\n');
        if self
            .options
            .since
            .is_some_and(|since| record.timestamp.unix_nanos < since)
        {
            return Ok(Written::More);
        }
        if self.options.only.is_some_and(|only| only != record.stream) {
            return Ok(Written::More);
        }
        let mut line = Vec::with_capacity(record.content.len() + 32);
        if self.options.timestamps && starts_line {
            line.extend_from_slice(timestamps::rfc3339_nano_fixed(record.timestamp).as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(&record.content);
        if let Some(remaining) = self.remaining_bytes {
            line.truncate(usize::try_from(remaining).unwrap_or(usize::MAX));
        }
        match record.stream {
            Stream::Stdout => stdout.write_all(&line)?,
            Stream::Stderr => stderr.write_all(&line)?,
        }
        if let Some(remaining) = &mut self.remaining_bytes {
            *remaining -= line.len() as u64;
            if *remaining == 0 {
                return Ok(Written::LimitReached);
            }
        }
        Ok(Written::More)
    }
}

/// Where the last `lines` complete lines of `file` start (the whole file if it has fewer).
/// An unterminated last line is not counted, so it comes on top, as crictl does.
pub(crate) fn tail_start<F: Read + Seek>(file: &mut F, lines: u64) -> io::Result<u64> {
    const BLOCK: u64 = 1024;
    let size = file.seek(SeekFrom::End(0))?;
    let mut right = size;
    let mut left = size;
    let mut newlines = 0u64;
    let mut block = Vec::new();
    while right > 0 && newlines <= lines {
        left = right.saturating_sub(BLOCK);
        block.resize(usize::try_from(right - left).unwrap_or(0), 0);
        file.seek(SeekFrom::Start(left))?;
        file.read_exact(&mut block)?;
        newlines += block.iter().filter(|byte| **byte == b'\n').count() as u64;
        right = left;
    }
    // The surplus newlines are all in the earliest block read.
    let mut start = left;
    let mut rest = block.as_slice();
    while newlines > lines {
        let Some(index) = rest.iter().position(|byte| *byte == b'\n') else {
            break;
        };
        rest = &rest[index + 1..];
        start += index as u64 + 1;
        newlines -= 1;
    }
    Ok(start)
}

/// How a followed file changed since it was last read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    None,
    Grew,
    /// The path now names another file (the old one was renamed away).
    Rotated,
    /// The file is shorter than what was read of it.
    Truncated,
}

/// Whether reading stopped at the end of the file or for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    EndOfFile,
    Finished,
}

/// An open log file being read from some position on.
#[derive(Debug)]
pub(crate) struct LogFile {
    path: PathBuf,
    file: File,
    identity: (u64, u64),
    /// Bytes read from `file`, including `pending`.
    offset: u64,
    /// The start of a line whose end has not been written yet.
    pending: Vec<u8>,
    format: Option<LogFormat>,
    writer: LogWriter,
    /// Without `--follow`, `--tail N` stops after N records even if the file grows.
    remaining_records: Option<u64>,
    follow: bool,
    debug: bool,
}

fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    (metadata.dev(), metadata.ino())
}

impl LogFile {
    /// Opens the log at `path` (following symlinks) at the start of its last `tail` lines.
    pub(crate) fn open(
        path: &Path,
        tail: Option<u64>,
        follow: bool,
        writer: LogWriter,
        debug: bool,
    ) -> anyhow::Result<LogFile> {
        let path = std::fs::canonicalize(path).with_context(|| {
            format!(
                "failed to try resolving symlinks in path {:?}",
                path.display()
            )
        })?;
        let mut file = File::open(&path)
            .with_context(|| format!("failed to open log file {:?}", path.display()))?;
        let start = match tail {
            Some(lines) => tail_start(&mut file, lines).with_context(|| {
                format!(
                    "failed to tail {lines} lines of log file {:?}",
                    path.display()
                )
            })?,
            None => 0,
        };
        file.seek(SeekFrom::Start(start))
            .with_context(|| format!("failed to seek in log file {:?}", path.display()))?;
        let identity = identity(&file.metadata()?);
        Ok(LogFile {
            path,
            file,
            identity,
            offset: start,
            pending: Vec::new(),
            format: None,
            writer,
            remaining_records: tail.filter(|_| !follow),
            follow,
            debug,
        })
    }

    /// Writes every complete line up to the end of the file. Without `--follow`, a last line
    /// without a line break is written too and reading is finished.
    pub(crate) fn pump(
        &mut self,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> anyhow::Result<Progress> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if self.remaining_records == Some(0) {
                return Ok(Progress::Finished);
            }
            let read = match self.file.read(&mut chunk) {
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(error).with_context(|| {
                        format!("failed to read log file {:?}", self.path.display())
                    });
                }
            };
            if read == 0 {
                if self.follow {
                    return Ok(Progress::EndOfFile);
                }
                let last = std::mem::take(&mut self.pending);
                if !last.is_empty() {
                    self.record(&last, stdout, stderr)?;
                }
                return Ok(Progress::Finished);
            }
            self.offset += read as u64;
            self.pending.extend_from_slice(&chunk[..read]);
            let mut consumed = 0;
            let buffer = std::mem::take(&mut self.pending);
            while let Some(end) = buffer[consumed..].iter().position(|byte| *byte == b'\n') {
                let line = &buffer[consumed..consumed + end + 1];
                consumed += end + 1;
                if self.record(line, stdout, stderr)? == Written::LimitReached {
                    return Ok(Progress::Finished);
                }
            }
            self.pending = buffer[consumed..].to_vec();
        }
    }

    /// Writes one line of the file; `LimitReached` once `--tail` or `--limit-bytes` is used up.
    fn record(
        &mut self,
        line: &[u8],
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> anyhow::Result<Written> {
        if self.remaining_records == Some(0) {
            return Ok(Written::LimitReached);
        }
        let format = match self.format {
            Some(format) => format,
            None => {
                let format = LogFormat::detect(line).ok_or_else(|| {
                    anyhow::anyhow!(
                        "failed to get parse function: unsupported log format: {:?}",
                        String::from_utf8_lossy(line)
                    )
                })?;
                self.format = Some(format);
                format
            }
        };
        let record = match format.parse(line) {
            Ok(record) => record,
            Err(error) => {
                if self.debug {
                    super::output::notice(
                        "debug",
                        format_args!(
                            "skipping a line of {}: {error}: {:?}",
                            self.path.display(),
                            String::from_utf8_lossy(line)
                        ),
                    );
                }
                return Ok(Written::More);
            }
        };
        let written = self.writer.write(&record, stdout, stderr)?;
        if let Some(remaining) = &mut self.remaining_records {
            *remaining -= 1;
        }
        Ok(written)
    }

    /// How the file at the path changed since the last [`pump`](Self::pump).
    pub(crate) fn change(&self) -> io::Result<Change> {
        let metadata = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata,
            // Renamed away and not yet recreated: keep reading the old file.
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Change::None),
            Err(error) => return Err(error),
        };
        Ok(if identity(&metadata) != self.identity {
            Change::Rotated
        } else if metadata.len() < self.offset {
            Change::Truncated
        } else if metadata.len() > self.offset {
            Change::Grew
        } else {
            Change::None
        })
    }

    /// Reads the file at the path from its start: after rotation, the new file; after
    /// truncation, the same one.
    pub(crate) fn restart(&mut self) -> io::Result<()> {
        let file = File::open(&self.path)?;
        self.identity = identity(&file.metadata()?);
        self.file = file;
        self.offset = 0;
        self.pending.clear();
        Ok(())
    }
}

/// The log of the container's previous attempt: `<dir>/<attempt - 1><ext>`, as the kubelet
/// names them.
pub(crate) fn previous_log_path(path: &str, attempt: u32) -> String {
    let directory_end = path.rfind('/').map_or(0, |slash| slash + 1);
    let name = &path[directory_end..];
    let extension = name.rfind('.').map_or("", |dot| &name[dot..]);
    format!(
        "{}{}{extension}",
        &path[..directory_end],
        attempt.saturating_sub(1)
    )
}

/// Runs blocking file work off the async runtime, handing the log file there and back.
async fn on_file<T: Send + 'static>(
    mut log: LogFile,
    work: impl FnOnce(&mut LogFile) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<(LogFile, T)> {
    tokio::task::spawn_blocking(move || {
        let result = work(&mut log);
        result.map(|value| (log, value))
    })
    .await
    .context("log reader stopped")?
}

/// Writes what the file holds to the terminal's stdout and stderr.
fn pump_to(
    terminal: &Terminal,
) -> impl FnOnce(&mut LogFile) -> anyhow::Result<Progress> + Send + 'static {
    let terminal = terminal.clone();
    move |log| {
        let mut out = io::BufWriter::new(terminal.stdout());
        let mut err = io::BufWriter::new(terminal.stderr());
        let progress = log.pump(&mut out, &mut err);
        out.flush()?;
        err.flush()?;
        progress
    }
}

/// Runs `logs`.
pub(crate) async fn run(session: &mut Session, args: LogsArgs) -> anyhow::Result<()> {
    let since = args
        .since
        .as_deref()
        .filter(|since| !since.is_empty())
        .map(|since| timestamps::parse_since(since, timestamps::now_nanos()))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let id = super::lookup::container_id(session, &args.container).await?;
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    if args.reopen {
        deadline
            .call(
                client.reopen_container_log(deadline.request(ReopenContainerLogRequest {
                    container_id: id.clone(),
                })),
            )
            .await
            .context("reopen container logs")?;
        super::output::info("Container logs reopened");
    }
    let status = deadline
        .call(
            client.container_status(deadline.request(ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })),
        )
        .await?
        .status
        .ok_or_else(|| anyhow::anyhow!("container status is nil"))?;
    let mut path = status.log_path.clone();
    if path.is_empty() {
        anyhow::bail!("the container has not set log path");
    }
    if args.previous {
        let metadata = status.metadata.unwrap_or_default();
        if metadata.attempt == 0 {
            anyhow::bail!("previous terminated container {} not found", metadata.name);
        }
        path = previous_log_path(&path, metadata.attempt);
    }
    let options = LogOptions {
        since,
        timestamps: args.timestamps,
        limit_bytes: args.limit_bytes.and_then(|limit| u64::try_from(limit).ok()),
        only: args.stream,
    };
    let tail = args.tail.and_then(|tail| u64::try_from(tail).ok());
    let follow = args.follow;
    let debug_enabled = session.debug_enabled();
    let writer = LogWriter::new(options);
    let log = {
        let path = PathBuf::from(&path);
        tokio::task::spawn_blocking(move || {
            LogFile::open(&path, tail, follow, writer, debug_enabled)
        })
        .await
        .context("log reader stopped")??
    };
    if !follow {
        on_file(log, pump_to(session.terminal())).await?;
        return Ok(());
    }
    tokio::select! {
        result = follow_log(session, &id, log) => result,
        // Ctrl-C ends following quietly, as crictl.
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// How often a followed file is looked at, and how often at most the container's state is
/// asked for (crictl also re-checks at least every second).
const POLL: Duration = Duration::from_millis(100);
const STATE_CHECK: Duration = Duration::from_secs(1);

async fn follow_log(session: &mut Session, id: &str, mut log: LogFile) -> anyhow::Result<()> {
    let mut last_check: Option<Instant> = None;
    loop {
        let progress;
        (log, progress) = on_file(log, pump_to(session.terminal())).await?;
        if progress == Progress::Finished {
            return Ok(());
        }
        let now = Instant::now();
        if last_check.is_none_or(|checked| now.duration_since(checked) >= STATE_CHECK) {
            last_check = Some(now);
            if !container_running(session, id).await? {
                // Write what the container wrote before it stopped, then end.
                on_file(log, pump_to(session.terminal())).await?;
                return Ok(());
            }
        }
        let give_up = now + STATE_CHECK;
        loop {
            tokio::time::sleep(POLL).await;
            let change;
            (log, change) = on_file(log, |log| Ok(log.change()?)).await?;
            match change {
                Change::Grew => break,
                Change::Rotated => {
                    // Finish the old file, then start on the new one.
                    let progress;
                    (log, progress) = on_file(log, pump_to(session.terminal())).await?;
                    if progress == Progress::Finished {
                        return Ok(());
                    }
                    (log, ()) = on_file(log, |log| Ok(log.restart()?)).await?;
                    break;
                }
                Change::Truncated => {
                    (log, ()) = on_file(log, |log| Ok(log.restart()?)).await?;
                    break;
                }
                Change::None if Instant::now() >= give_up => break,
                Change::None => {}
            }
        }
    }
}

/// Whether the container still runs. A runtime that is not answering is taken to still run
/// it, as crictl does: containers outlive their runtime's restarts.
async fn container_running(session: &mut Session, id: &str) -> anyhow::Result<bool> {
    let mut client = session.runtime().await?;
    let deadline = session.deadline();
    let response = deadline
        .call(
            client.container_status(deadline.request(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })),
        )
        .await;
    match response {
        Ok(response) => {
            let status = response
                .status
                .ok_or_else(|| anyhow::anyhow!("container status is nil"))?;
            Ok(status.state == ContainerState::ContainerRunning as i32)
        }
        Err(error) if error.code() == tonic::Code::Unavailable => Ok(true),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn at(text: &str) -> Timestamp {
        timestamps::parse_rfc3339(text).expect("a valid time")
    }

    #[test]
    fn parses_full_and_partial_cri_lines() {
        let full = parse_cri_line(b"2016-10-06T00:17:09.669794202Z stdout F log content 1\n")
            .expect("parses");
        assert_eq!(full.stream, Stream::Stdout);
        assert_eq!(full.content.as_ref(), b"log content 1\n");
        assert_eq!(full.timestamp, at("2016-10-06T00:17:09.669794202Z"));

        let partial =
            parse_cri_line(b"2016-10-06T00:17:09.669794203Z stderr P part one\n").expect("parses");
        assert_eq!(partial.stream, Stream::Stderr);
        assert_eq!(partial.content.as_ref(), b"part one");

        let tagged = parse_cri_line(b"2016-10-06T00:17:09Z stdout P:extra x\n").expect("parses");
        assert_eq!(tagged.content.as_ref(), b"x");

        let empty = parse_cri_line(b"2016-10-06T00:17:09Z stdout F \n").expect("parses");
        assert_eq!(empty.content.as_ref(), b"\n");

        let unterminated = parse_cri_line(b"2016-10-06T00:17:09Z stdout F end").expect("parses");
        assert_eq!(unterminated.content.as_ref(), b"end");
    }

    #[test]
    fn rejects_malformed_cri_lines() {
        assert_eq!(parse_cri_line(b"garbage"), Err(LogParseError::NoTimestamp));
        assert_eq!(
            parse_cri_line(b"yesterday stdout F x"),
            Err(LogParseError::BadTimestamp("yesterday".into()))
        );
        assert_eq!(
            parse_cri_line(b"2016-10-06T00:17:09Z stdout"),
            Err(LogParseError::NoStream)
        );
        assert_eq!(
            parse_cri_line(b"2016-10-06T00:17:09Z stdin F x"),
            Err(LogParseError::BadStream("stdin".into()))
        );
        assert_eq!(
            parse_cri_line(b"2016-10-06T00:17:09Z stdout F"),
            Err(LogParseError::NoTag)
        );
    }

    #[test]
    fn detects_docker_json_logs() {
        let line =
            br#"{"log":"content 1\n","stream":"stderr","time":"2016-10-20T18:39:20.57606443Z"}"#;
        assert_eq!(LogFormat::detect(line), Some(LogFormat::DockerJson));
        let record = LogFormat::DockerJson.parse(line).expect("parses");
        assert_eq!(record.stream, Stream::Stderr);
        assert_eq!(record.content.as_ref(), b"content 1\n");
        assert_eq!(
            LogFormat::detect(b"2016-10-06T00:17:09Z stdout F x\n"),
            Some(LogFormat::Cri)
        );
        assert_eq!(LogFormat::detect(b"plain text\n"), None);
    }

    /// Runs `lines` through a writer, returning what went to stdout and stderr.
    fn write_all(options: LogOptions, lines: &[&str]) -> (String, String) {
        let mut writer = LogWriter::new(options);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for line in lines {
            let record = parse_cri_line(line.as_bytes()).expect("valid line");
            if writer.write(&record, &mut out, &mut err).expect("writes") == Written::LimitReached {
                break;
            }
        }
        (
            String::from_utf8(out).expect("utf-8"),
            String::from_utf8(err).expect("utf-8"),
        )
    }

    const LINES: [&str; 5] = [
        "2024-05-01T10:00:00.1Z stdout P hello \n",
        "2024-05-01T10:00:00.2Z stdout P wide \n",
        "2024-05-01T10:00:00.3Z stdout F world\n",
        "2024-05-01T10:00:01Z stderr F oops\n",
        "2024-05-01T10:00:02Z stdout F bye\n",
    ];

    #[test]
    fn partial_lines_are_joined_and_streams_split() {
        let (out, err) = write_all(LogOptions::default(), &LINES);
        assert_eq!(out, "hello wide world\nbye\n");
        assert_eq!(err, "oops\n");
    }

    #[test]
    fn timestamps_prefix_only_the_start_of_a_line() {
        let options = LogOptions {
            timestamps: true,
            ..LogOptions::default()
        };
        let (out, err) = write_all(options, &LINES);
        assert_eq!(
            out,
            "2024-05-01T10:00:00.100000000Z hello wide world\n2024-05-01T10:00:02.000000000Z bye\n"
        );
        assert_eq!(err, "2024-05-01T10:00:01.000000000Z oops\n");
    }

    #[test]
    fn since_stream_and_byte_limits() {
        let since = at("2024-05-01T10:00:01Z").unix_nanos;
        let (out, err) = write_all(
            LogOptions {
                since: Some(since),
                ..LogOptions::default()
            },
            &LINES,
        );
        assert_eq!((out.as_str(), err.as_str()), ("bye\n", "oops\n"));

        let (out, err) = write_all(
            LogOptions {
                only: Some(Stream::Stderr),
                ..LogOptions::default()
            },
            &LINES,
        );
        assert_eq!((out.as_str(), err.as_str()), ("", "oops\n"));

        let (out, _) = write_all(
            LogOptions {
                limit_bytes: Some(8),
                ..LogOptions::default()
            },
            &LINES,
        );
        assert_eq!(out, "hello wi");

        let (out, err) = write_all(
            LogOptions {
                limit_bytes: Some(0),
                ..LogOptions::default()
            },
            &LINES,
        );
        assert_eq!((out.as_str(), err.as_str()), ("", ""));
    }

    #[test]
    fn tail_finds_the_last_lines() {
        let mut file = Cursor::new(b"a\nb\nc\n".to_vec());
        assert_eq!(tail_start(&mut file, 2).expect("seeks"), 2);
        assert_eq!(tail_start(&mut file, 0).expect("seeks"), 6);
        assert_eq!(tail_start(&mut file, 3).expect("seeks"), 0);
        assert_eq!(tail_start(&mut file, 10).expect("seeks"), 0);
        // An unterminated last line is not counted.
        let mut file = Cursor::new(b"a\nb\nc".to_vec());
        assert_eq!(tail_start(&mut file, 1).expect("seeks"), 2);
        let mut empty = Cursor::new(Vec::new());
        assert_eq!(tail_start(&mut empty, 1).expect("seeks"), 0);
    }

    #[test]
    fn tail_spans_blocks() {
        let text: String = (0..3000).map(|n| format!("line {n}\n")).collect();
        let mut file = Cursor::new(text.clone().into_bytes());
        let start = tail_start(&mut file, 2).expect("seeks");
        assert_eq!(
            &text[usize::try_from(start).expect("fits")..],
            "line 2998\nline 2999\n"
        );
        let start = tail_start(&mut file, 1500).expect("seeks");
        assert!(text[usize::try_from(start).expect("fits")..].starts_with("line 1500\n"));
    }

    #[test]
    fn previous_attempts_log_path() {
        assert_eq!(
            previous_log_path("/var/log/pods/ns_pod_uid/web/3.log", 3),
            "/var/log/pods/ns_pod_uid/web/2.log"
        );
        assert_eq!(previous_log_path("/logs/web/1", 1), "/logs/web/0");
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cox-crictl-{name}-{}-{}",
            std::process::id(),
            timestamps::now_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn pump_to_strings(log: &mut LogFile) -> (Progress, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let progress = log.pump(&mut out, &mut err).expect("reads");
        (
            progress,
            String::from_utf8(out).expect("utf-8"),
            String::from_utf8(err).expect("utf-8"),
        )
    }

    #[test]
    fn reads_a_file_with_tail_and_an_unterminated_last_line() {
        let dir = temp_dir("read");
        let path = dir.join("0.log");
        std::fs::write(
            &path,
            LINES.concat() + "2024-05-01T10:00:03Z stdout F no newline",
        )
        .expect("writes");
        // The unterminated line is not counted by --tail, which then stops after two records,
        // as crictl does.
        let writer = LogWriter::new(LogOptions::default());
        let mut log = LogFile::open(&path, Some(2), false, writer, false).expect("opens");
        let (progress, out, err) = pump_to_strings(&mut log);
        assert_eq!(progress, Progress::Finished);
        assert_eq!((out.as_str(), err.as_str()), ("bye\n", "oops\n"));

        let writer = LogWriter::new(LogOptions::default());
        let mut log = LogFile::open(&path, None, false, writer, false).expect("opens");
        let (progress, out, err) = pump_to_strings(&mut log);
        assert_eq!(progress, Progress::Finished);
        assert_eq!(
            (out.as_str(), err.as_str()),
            ("hello wide world\nbye\nno newline", "oops\n")
        );
        std::fs::remove_dir_all(dir).expect("cleans up");
    }

    #[test]
    fn follows_growth_rotation_and_truncation() {
        let dir = temp_dir("follow");
        let path = dir.join("0.log");
        std::fs::write(
            &path,
            "2024-05-01T10:00:00Z stdout F one\n2024-05-01T10:00:00Z stdout P tw",
        )
        .expect("writes");
        let writer = LogWriter::new(LogOptions::default());
        let mut log = LogFile::open(&path, None, true, writer, false).expect("opens");
        let (progress, out, _) = pump_to_strings(&mut log);
        assert_eq!(progress, Progress::EndOfFile);
        assert_eq!(out, "one\n", "an unfinished line waits for its end");
        assert_eq!(log.change().expect("stats"), Change::None);

        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("opens for append");
        file.write_all(b"o\n").expect("appends");
        assert_eq!(log.change().expect("stats"), Change::Grew);
        let (_, out, _) = pump_to_strings(&mut log);
        assert_eq!(out, "two");

        // Rotation: the file is renamed away and a new one created.
        std::fs::rename(&path, dir.join("0.log.20240501")).expect("renames");
        assert_eq!(log.change().expect("stats"), Change::None);
        std::fs::write(&path, "2024-05-01T10:00:05Z stdout F three\n").expect("recreates");
        assert_eq!(log.change().expect("stats"), Change::Rotated);
        log.restart().expect("reopens");
        let (_, out, _) = pump_to_strings(&mut log);
        assert_eq!(out, "three\n");

        // Truncation in place (copytruncate).
        std::fs::write(&path, "2024-05-01T10:00:06Z stderr F four\n").expect("truncates");
        let change = log.change().expect("stats");
        assert!(
            matches!(change, Change::Truncated | Change::None),
            "{change:?}"
        );
        std::fs::write(&path, "").expect("empties");
        assert_eq!(log.change().expect("stats"), Change::Truncated);
        std::fs::write(&path, "2024-05-01T10:00:07Z stderr F five\n").expect("rewrites");
        log.restart().expect("rereads");
        let (_, _, err) = pump_to_strings(&mut log);
        assert_eq!(err, "five\n");
        std::fs::remove_dir_all(dir).expect("cleans up");
    }

    #[test]
    fn missing_log_files_are_reported() {
        let writer = LogWriter::new(LogOptions::default());
        let error = LogFile::open(Path::new("/nonexistent/0.log"), None, false, writer, false)
            .expect_err("missing");
        assert!(
            error
                .to_string()
                .starts_with("failed to try resolving symlinks in path \"/nonexistent/0.log\""),
            "{error}"
        );
    }
}
