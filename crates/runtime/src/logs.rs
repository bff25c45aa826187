//! Container logs in the CRI format, written by the shim:
//! `<RFC3339Nano time> <stdout|stderr> <F|P> <text>`, one line each, where `P` marks a piece of
//! a longer line that continues in the next entry and `F` its end.
//!
//! The file is rotated when it grows past a size (renamed to `<path>.<UTC time>`, the oldest
//! beyond the kept count deleted), and reopened on request (`ReopenContainerLog`, after the
//! kubelet renamed it).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

/// Lines longer than this are written as several partial entries, as containerd does.
pub const MAX_ENTRY_BYTES: usize = 16 * 1024;

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Writes CRI log entries to one file, rotating it by size.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
    max_files: usize,
}

impl LogWriter {
    /// Opens `path` for appending. `max_bytes == 0` turns rotation off.
    pub fn open(path: &Path, max_bytes: u64, max_files: usize) -> io::Result<Self> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            written,
            max_bytes,
            max_files: max_files.max(1),
        })
    }

    /// Writes one entry: `text` without its newline, `partial` if the line continues.
    pub fn entry(&mut self, stream: Stream, partial: bool, text: &[u8]) -> io::Result<()> {
        let now = jiff::Timestamp::now();
        let mut line = Vec::with_capacity(text.len() + 48);
        write!(
            line,
            "{now:.9} {} {} ",
            stream.name(),
            if partial { 'P' } else { 'F' }
        )?;
        line.extend_from_slice(text);
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.written += line.len() as u64;
        if self.max_bytes > 0 && self.written >= self.max_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    /// Opens the file at the path anew (after someone renamed it).
    pub fn reopen(&mut self) -> io::Result<()> {
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = self.file.metadata()?.len();
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%d-%H%M%S%.6f")
            .to_string();
        let rotated = PathBuf::from(format!("{}.{stamp}", self.path.display()));
        fs::rename(&self.path, &rotated)?;
        self.reopen()?;
        // Keep the newest `max_files - 1` rotated files beside the live one.
        let Some(dir) = self.path.parent() else {
            return Ok(());
        };
        let prefix = format!(
            "{}.",
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let mut old: Vec<PathBuf> = fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect();
        old.sort();
        let excess = old.len().saturating_sub(self.max_files - 1);
        for path in &old[..excess] {
            let _ = fs::remove_file(path);
        }
        Ok(())
    }
}

/// Copies `source` to `writer` as log entries of `stream` until end of file.
pub fn copy_lines(
    mut source: impl BufRead,
    stream: Stream,
    writer: &std::sync::Mutex<LogWriter>,
) -> io::Result<()> {
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        let source: &mut dyn BufRead = &mut source;
        let n = std::io::Read::take(source, MAX_ENTRY_BYTES as u64).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let complete = line.last() == Some(&b'\n');
        if complete {
            line.pop();
        }
        let mut writer = writer
            .lock()
            .map_err(|_| io::Error::other("log writer poisoned"))?;
        writer.entry(stream, !complete, &line)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn writes_cri_entries_and_splits_long_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        let writer = Mutex::new(LogWriter::open(&path, 0, 1).expect("open"));
        let long = "x".repeat(MAX_ENTRY_BYTES + 10);
        let input = format!("hello\n{long}\nno newline");
        copy_lines(input.as_bytes(), Stream::Stdout, &writer).expect("copy");
        let text = fs::read_to_string(&path).expect("read log");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let fields: Vec<Vec<&str>> = lines.iter().map(|l| l.splitn(4, ' ').collect()).collect();
        assert!(fields[0][0].parse::<jiff::Timestamp>().is_ok());
        assert_eq!(&fields[0][1..], ["stdout", "F", "hello"]);
        assert_eq!(fields[1][2], "P");
        assert_eq!(fields[1][3].len(), MAX_ENTRY_BYTES);
        assert_eq!(&fields[2][2..], ["F", "xxxxxxxxxx"]);
        assert_eq!(&fields[3][2..], ["P", "no newline"]);
    }

    #[test]
    fn rotates_by_size_keeping_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        let mut writer = LogWriter::open(&path, 200, 3).expect("open");
        for i in 0..100 {
            writer
                .entry(Stream::Stderr, false, format!("line {i}").as_bytes())
                .expect("write");
        }
        let files = fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(files, 3, "the live file and two rotated ones");
        let live = fs::read_to_string(&path).expect("live file");
        assert!(live.len() < 200 + 60);
    }
}
