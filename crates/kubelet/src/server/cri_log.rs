//! CRI log files read back as `kubectl logs` prints them (upstream's `kuberuntime/logs`): each
//! entry is `<RFC 3339 time> <stdout|stderr> <P|F>[:tags] <text>`; the pieces of a partial
//! (`P`) line are printed one after the other, so they join into the line; with timestamps,
//! each printed line starts with its first piece's time. Pure: bytes in, bytes out.

use std::io::{Read, Seek, SeekFrom};

use jiff::Timestamp;

/// One entry of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub time: Timestamp,
    pub stderr: bool,
    /// A piece of a line that continues in the next entry.
    pub partial: bool,
    /// The text, with its newline unless partial.
    pub text: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("timestamp is not found")]
    NoTimestamp,
    #[error("unexpected timestamp format: {0}")]
    Timestamp(String),
    #[error("stream type is not found")]
    NoStream,
    #[error("unexpected stream type {0:?}")]
    Stream(String),
    #[error("log tag is not found")]
    NoTag,
}

fn field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = line.iter().position(|b| *b == b' ')?;
    Some((&line[..space], &line[space + 1..]))
}

/// Parses one line of a CRI log file (with its newline).
pub fn parse(line: &[u8]) -> Result<Entry<'_>, ParseError> {
    let (time, rest) = field(line).ok_or(ParseError::NoTimestamp)?;
    let time = std::str::from_utf8(time)
        .ok()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .ok_or_else(|| ParseError::Timestamp(String::from_utf8_lossy(time).into_owned()))?;
    let (stream, rest) = field(rest).ok_or(ParseError::NoStream)?;
    let stderr = match stream {
        b"stdout" => false,
        b"stderr" => true,
        other => {
            return Err(ParseError::Stream(
                String::from_utf8_lossy(other).into_owned(),
            ));
        }
    };
    let (tags, mut text) = field(rest).ok_or(ParseError::NoTag)?;
    // Tags may carry more after a colon; the first says whether the line is whole.
    let partial = tags.split(|b| *b == b':').next() == Some(b"P");
    if partial && let Some(stripped) = text.strip_suffix(b"\n") {
        text = stripped;
    }
    Ok(Entry {
        time,
        stderr,
        partial,
        text,
    })
}

/// The offset where the last `lines` lines of a file start (upstream's
/// `FindTailLineStartIndex`: counts newlines from the end, a block at a time).
pub fn tail_start(file: &mut (impl Read + Seek), lines: u64) -> std::io::Result<u64> {
    const BLOCK: u64 = 4096;
    let size = file.seek(SeekFrom::End(0))?;
    let mut right = size;
    let mut count = 0u64;
    let mut block = Vec::new();
    let mut left = size;
    while right > 0 && count <= lines {
        left = right.saturating_sub(BLOCK);
        block.resize((right - left) as usize, 0);
        file.seek(SeekFrom::Start(left))?;
        file.read_exact(&mut block)?;
        count += block.iter().filter(|b| **b == b'\n').count() as u64;
        right = left;
    }
    // Skip lines at the front of the last block read until exactly `lines` remain.
    let mut offset = 0usize;
    while count > lines {
        match block[offset..].iter().position(|b| *b == b'\n') {
            Some(at) => offset += at + 1,
            None => break,
        }
        count -= 1;
    }
    Ok(left + offset as u64)
}

/// What a log request prints (upstream's `LogOptions` after the kubelet read them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrintOptions {
    pub timestamps: bool,
    /// Entries older than this are skipped.
    pub since: Option<Timestamp>,
    /// At most this many bytes are printed.
    pub limit_bytes: Option<u64>,
}

/// Prints entries in order, keeping track of line starts and the byte limit.
#[derive(Debug)]
pub struct Printer {
    options: PrintOptions,
    remaining: Option<u64>,
    at_line_start: bool,
}

impl Printer {
    pub fn new(options: PrintOptions) -> Self {
        Self {
            remaining: options.limit_bytes,
            options,
            at_line_start: true,
        }
    }

    /// Whether the byte limit has been reached.
    pub fn done(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Appends `entry` as printed to `out`.
    pub fn print(&mut self, entry: &Entry<'_>, out: &mut Vec<u8>) {
        if self.done() {
            return;
        }
        let starts_line = self.at_line_start;
        self.at_line_start = !entry.partial;
        if self.options.since.is_some_and(|since| entry.time < since) {
            return;
        }
        let mut line = Vec::with_capacity(entry.text.len() + 32);
        if self.options.timestamps && starts_line {
            // Go's RFC3339Nano: UTC, trailing zeros of the fraction dropped.
            line.extend_from_slice(entry.time.to_string().as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(entry.text);
        if let Some(remaining) = self.remaining.as_mut() {
            let take = line
                .len()
                .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
            line.truncate(take);
            *remaining -= take as u64;
        }
        out.extend_from_slice(&line);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    #[test]
    fn entries_parse_as_upstream_reads_them() {
        let entry = parse(b"2024-05-01T10:00:00.120000000Z stdout F hello\n").unwrap();
        assert_eq!(entry.text, b"hello\n");
        assert!(!entry.partial && !entry.stderr);
        assert_eq!(entry.time.to_string(), "2024-05-01T10:00:00.12Z");
        let entry = parse(b"2024-05-01T10:00:00+02:00 stderr P:x part\n").unwrap();
        assert_eq!(
            (entry.text, entry.partial, entry.stderr),
            (&b"part"[..], true, true)
        );
        assert_eq!(entry.time.to_string(), "2024-05-01T08:00:00Z");
        for (line, error) in [
            (&b"nothing"[..], ParseError::NoTimestamp),
            (
                b"yesterday stdout F x\n",
                ParseError::Timestamp("yesterday".into()),
            ),
            (
                b"2024-05-01T10:00:00Z stdin F x\n",
                ParseError::Stream("stdin".into()),
            ),
            (b"2024-05-01T10:00:00Z stdout\n", ParseError::NoStream),
            (b"2024-05-01T10:00:00Z stdout F\n", ParseError::NoTag),
        ] {
            assert_eq!(
                parse(line).unwrap_err(),
                error,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    fn printed(options: PrintOptions, lines: &[&str]) -> String {
        let mut printer = Printer::new(options);
        let mut out = Vec::new();
        for line in lines {
            printer.print(&parse(line.as_bytes()).unwrap(), &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn partial_lines_join_and_timestamps_prefix_whole_lines() {
        let lines = [
            "2024-05-01T10:00:01.5Z stdout P hel\n",
            "2024-05-01T10:00:02Z stdout F lo\n",
            "2024-05-01T10:00:03Z stderr F oops\n",
        ];
        assert_eq!(printed(PrintOptions::default(), &lines), "hello\noops\n");
        let options = PrintOptions {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            printed(options, &lines),
            "2024-05-01T10:00:01.5Z hello\n2024-05-01T10:00:03Z oops\n"
        );
    }

    #[test]
    fn since_and_limit_bytes_cut_the_output() {
        let lines = [
            "2024-05-01T10:00:01Z stdout F one\n",
            "2024-05-01T10:00:02Z stdout F two\n",
            "2024-05-01T10:00:03Z stdout F three\n",
        ];
        let since = PrintOptions {
            since: Some("2024-05-01T10:00:02Z".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(printed(since, &lines), "two\nthree\n");
        let limited = PrintOptions {
            limit_bytes: Some(6),
            ..Default::default()
        };
        assert_eq!(printed(limited, &lines), "one\ntw");
    }

    #[test]
    fn tail_finds_the_start_of_the_last_lines() {
        let text = "a\nbb\nccc\n";
        for (lines, start) in [(0, 9), (1, 5), (2, 2), (3, 0), (10, 0)] {
            let got = tail_start(&mut Cursor::new(text.as_bytes()), lines).unwrap();
            assert_eq!(got, start, "last {lines} lines");
        }
        // Across blocks.
        let long: String = (0..3000).map(|i| format!("line {i}\n")).collect();
        let start = tail_start(&mut Cursor::new(long.as_bytes()), 2).unwrap() as usize;
        assert_eq!(&long[start..], "line 2998\nline 2999\n");
        assert_eq!(tail_start(&mut Cursor::new(&b""[..]), 5).unwrap(), 0);
    }
}
