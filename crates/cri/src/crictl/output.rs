//! Text output as crictl prints it: tab-aligned tables, "2 minutes ago", "12.3MB", truncated
//! IDs, and the names crictl gives to pod and container states.

use std::fmt::Write as _;
use std::io::Write as _;

use crate::v1::{ContainerState, PodSandboxState};

/// How many characters of an ID crictl's tables show.
pub(crate) const TRUNCATED_ID_LEN: usize = 13;

/// Rows of cells, aligned the way crictl's `text/tabwriter` (minimum width 20, padding 3,
/// spaces) aligns them: every cell but the last of a row is padded to its column's width.
#[derive(Debug, Default)]
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    const MIN_WIDTH: usize = 20;
    const PADDING: usize = 3;

    pub(crate) fn new() -> Self {
        Table::default()
    }

    pub(crate) fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as text, one line per row, each ending in a newline.
    pub(crate) fn render(&self) -> String {
        // A cell belongs to an aligned column only if another cell follows it on its row.
        let mut widths: Vec<usize> = Vec::new();
        for row in &self.rows {
            for (column, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
                let width = (cell.chars().count() + Self::PADDING).max(Self::MIN_WIDTH);
                match widths.get_mut(column) {
                    Some(current) => *current = (*current).max(width),
                    None => widths.push(width),
                }
            }
        }
        let mut text = String::new();
        for row in &self.rows {
            for (column, cell) in row.iter().enumerate() {
                text.push_str(cell);
                if column + 1 < row.len() {
                    let width = widths.get(column).copied().unwrap_or(Self::MIN_WIDTH);
                    let pad = width.saturating_sub(cell.chars().count());
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.push('\n');
        }
        text
    }
}

/// `id` without `prefix`, cut to the length crictl's tables show.
pub(crate) fn truncate_id(id: &str, prefix: &str) -> String {
    let id = id.strip_prefix(prefix).unwrap_or(id);
    id.chars().take(TRUNCATED_ID_LEN).collect()
}

/// A duration as go-units' `HumanDuration` words it ("About a minute", "3 hours").
pub(crate) fn human_duration(nanos: i64) -> String {
    let seconds = nanos / 1_000_000_000;
    let minutes = nanos / 60_000_000_000;
    // Hours are rounded, not truncated, as upstream does.
    let hours = (nanos as f64 / 3_600_000_000_000.0 + 0.5) as i64;
    if seconds < 1 {
        "Less than a second".to_string()
    } else if seconds == 1 {
        "1 second".to_string()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if minutes == 1 {
        "About a minute".to_string()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", nanos / 3_600_000_000_000 / 24 / 365)
    }
}

/// "<duration> ago" for a CRI timestamp (nanoseconds since the epoch), as crictl's tables show
/// creation times.
pub(crate) fn ago(unix_nanos: i64, now_nanos: i64) -> String {
    format!(
        "{} ago",
        human_duration(now_nanos.saturating_sub(unix_nanos))
    )
}

/// A byte count in decimal units with `precision` significant digits, as go-units'
/// `HumanSizeWithPrecision` writes it ("4.87MB", "0B").
pub(crate) fn human_size_with_precision(bytes: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", format_go_g(size, precision), UNITS[unit])
}

/// go-units' `HumanSize`: four significant digits.
pub(crate) fn human_size(bytes: u64) -> String {
    human_size_with_precision(bytes as f64, 4)
}

/// `value` as Go's `fmt.Sprintf("%.*g", precision, value)` writes it: `precision` significant
/// digits, trailing zeros dropped, exponent form for very large or small numbers.
pub(crate) fn format_go_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    if !value.is_finite() {
        return if value.is_nan() {
            "NaN".to_string()
        } else if value > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    let precision = precision.max(1);
    let scientific = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    if exponent < -4 || exponent >= precision as i64 {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            trim_fraction_zeros(mantissa),
            exponent.abs()
        )
    } else {
        let decimals = (precision as i64 - 1 - exponent).max(0) as usize;
        trim_fraction_zeros(&format!("{value:.decimals$}")).to_string()
    }
}

fn trim_fraction_zeros(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

/// A pod state as crictl's tables name it.
pub(crate) fn pod_state_name(state: i32) -> anyhow::Result<&'static str> {
    match PodSandboxState::try_from(state) {
        Ok(PodSandboxState::SandboxReady) => Ok("Ready"),
        Ok(PodSandboxState::SandboxNotready) => Ok("NotReady"),
        Err(_) => anyhow::bail!("unknown pod state {state}"),
    }
}

/// A container state as crictl's tables name it.
pub(crate) fn container_state_name(state: i32) -> anyhow::Result<&'static str> {
    match ContainerState::try_from(state) {
        Ok(ContainerState::ContainerCreated) => Ok("Created"),
        Ok(ContainerState::ContainerRunning) => Ok("Running"),
        Ok(ContainerState::ContainerExited) => Ok("Exited"),
        Ok(ContainerState::ContainerUnknown) => Ok("Unknown"),
        Err(_) => anyhow::bail!("unknown container state {state}"),
    }
}

/// The protobuf name of a state ("CONTAINER_RUNNING"), as crictl's `-o table` inspect output
/// prints it; the number if the runtime sent a state this client does not know.
pub(crate) fn container_state_proto_name(state: i32) -> String {
    ContainerState::try_from(state)
        .map(|state| state.as_str_name().to_string())
        .unwrap_or_else(|_| state.to_string())
}

/// See [`container_state_proto_name`].
pub(crate) fn pod_state_proto_name(state: i32) -> String {
    PodSandboxState::try_from(state)
        .map(|state| state.as_str_name().to_string())
        .unwrap_or_else(|_| state.to_string())
}

/// A map's entries as crictl's verbose listings print them: a heading, then one tab-indented
/// `key -> value` line per entry, sorted by key. Nothing for an empty map.
pub(crate) fn write_sorted_map(
    text: &mut String,
    heading: &str,
    map: &std::collections::HashMap<String, String>,
) {
    if map.is_empty() {
        return;
    }
    let _ = writeln!(text, "{heading}:");
    let mut entries: Vec<(&String, &String)> = map.iter().collect();
    entries.sort();
    for (key, value) in entries {
        let _ = writeln!(text, "\t{key} -> {value}");
    }
}

/// Where a command's output goes: this process's stdout and stderr, or memory in tests.
#[derive(Debug, Clone, Default)]
pub(crate) enum Terminal {
    #[default]
    Process,
    #[cfg(test)]
    Captured(std::sync::Arc<std::sync::Mutex<Captured>>),
}

/// Output kept for a test to look at.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

#[cfg(test)]
struct CapturedWriter {
    captured: std::sync::Arc<std::sync::Mutex<Captured>>,
    stderr: bool,
}

#[cfg(test)]
impl std::io::Write for CapturedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut captured = self
            .captured
            .lock()
            .map_err(|_| std::io::Error::other("captured output poisoned"))?;
        if self.stderr {
            captured.stderr.extend_from_slice(bytes);
        } else {
            captured.stdout.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Terminal {
    /// The standard output.
    pub(crate) fn stdout(&self) -> Box<dyn std::io::Write + Send> {
        match self {
            Terminal::Process => Box::new(std::io::stdout()),
            #[cfg(test)]
            Terminal::Captured(captured) => Box::new(CapturedWriter {
                captured: captured.clone(),
                stderr: false,
            }),
        }
    }

    /// The standard error.
    pub(crate) fn stderr(&self) -> Box<dyn std::io::Write + Send> {
        match self {
            Terminal::Process => Box::new(std::io::stderr()),
            #[cfg(test)]
            Terminal::Captured(captured) => Box::new(CapturedWriter {
                captured: captured.clone(),
                stderr: true,
            }),
        }
    }

    /// Writes `text` to stdout. A closed pipe comes back as an error, which `run` treats as
    /// the reader having seen enough (as Go's crictl dies quietly of SIGPIPE).
    pub(crate) fn print(&self, text: impl AsRef<[u8]>) -> std::io::Result<()> {
        let mut stdout = self.stdout();
        stdout.write_all(text.as_ref())?;
        stdout.flush()
    }

    /// Writes `bytes` to stderr.
    pub(crate) fn eprint(&self, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
        let mut stderr = self.stderr();
        stderr.write_all(bytes.as_ref())?;
        stderr.flush()
    }
}

/// A `level: message` line on stderr. Unlike `eprintln!`, a closed stderr is not a panic.
pub(crate) fn notice(level: &str, message: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "{level}: {message}");
}

/// A notice on stderr for something the user should know but that is not a failure.
pub(crate) fn warn(message: impl std::fmt::Display) {
    notice("warning", message);
}

/// An informational line on stderr, where crictl logs its own progress.
pub(crate) fn info(message: impl std::fmt::Display) {
    notice("info", message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_like_tabwriter() {
        let mut table = Table::new();
        table.row(["POD ID", "CREATED", "STATE", "NAME"]);
        table.row(["0123456789abc", "2 minutes ago", "Ready", "nginx"]);
        table.row([
            "ffff",
            "About a minute ago",
            "NotReady",
            "a-very-long-name-indeed",
        ]);
        let expected = "\
POD ID              CREATED              STATE               NAME
0123456789abc       2 minutes ago        Ready               nginx
ffff                About a minute ago   NotReady            a-very-long-name-indeed
";
        assert_eq!(table.render(), expected);
    }

    #[test]
    fn table_last_cell_is_not_padded_even_when_empty() {
        let mut table = Table::new();
        table.row(["A", "B"]);
        table.row(["x", ""]);
        assert_eq!(
            table.render(),
            format!("A{}B\nx{}\n", " ".repeat(19), " ".repeat(19))
        );
    }

    #[test]
    fn table_counts_characters_not_bytes() {
        let mut table = Table::new();
        table.row(["ünïcödé-name-of-20ch", "x"]);
        let rendered = table.render();
        // 20 characters + 3 padding.
        assert_eq!(rendered, "ünïcödé-name-of-20ch   x\n");
    }

    #[test]
    fn empty_table_renders_nothing() {
        assert_eq!(Table::new().render(), "");
    }

    #[test]
    fn human_durations_match_go_units() {
        let second = 1_000_000_000_i64;
        let cases = [
            (-5 * second, "Less than a second"),
            (0, "Less than a second"),
            (second / 2, "Less than a second"),
            (second, "1 second"),
            (59 * second, "59 seconds"),
            (60 * second, "About a minute"),
            (119 * second, "About a minute"),
            (120 * second, "2 minutes"),
            (59 * 60 * second, "59 minutes"),
            (60 * 60 * second, "About an hour"),
            (89 * 60 * second, "About an hour"),
            (90 * 60 * second, "2 hours"),
            (47 * 3600 * second, "47 hours"),
            (48 * 3600 * second, "2 days"),
            (13 * 24 * 3600 * second, "13 days"),
            (14 * 24 * 3600 * second, "2 weeks"),
            (60 * 24 * 3600 * second, "2 months"),
            (800 * 24 * 3600 * second, "2 years"),
        ];
        for (nanos, expected) in cases {
            assert_eq!(human_duration(nanos), expected, "for {nanos}ns");
        }
        assert_eq!(ago(0, 120 * second), "2 minutes ago");
    }

    #[test]
    fn human_sizes_match_go_units() {
        let cases = [
            (0.0, 3, "0B"),
            (999.0, 3, "999B"),
            (1000.0, 3, "1kB"),
            (1234.0, 3, "1.23kB"),
            (4_865_024.0, 3, "4.87MB"),
            (77_829_343.0, 3, "77.8MB"),
            (999_900.0, 3, "1e+03kB"),
            (12_345_678.0, 4, "12.35MB"),
            (1_000_000_000_000.0, 4, "1TB"),
            (2_500.0, 4, "2.5kB"),
        ];
        for (bytes, precision, expected) in cases {
            assert_eq!(
                human_size_with_precision(bytes, precision),
                expected,
                "for {bytes} at {precision}"
            );
        }
        assert_eq!(human_size(1_048_576), "1.049MB");
    }

    #[test]
    fn go_g_formatting() {
        assert_eq!(format_go_g(0.00001234, 3), "1.23e-05");
        assert_eq!(format_go_g(0.0001234, 3), "0.000123");
        assert_eq!(format_go_g(123456.0, 3), "1.23e+05");
        assert_eq!(format_go_g(100.0, 3), "100");
        assert_eq!(format_go_g(1.5, 4), "1.5");
    }

    #[test]
    fn ids_are_truncated_after_their_prefix() {
        assert_eq!(
            truncate_id("sha256:0123456789abcdef0123", "sha256:"),
            "0123456789abc"
        );
        assert_eq!(truncate_id("short", ""), "short");
        assert_eq!(truncate_id("0123456789abcdef", "sha256:"), "0123456789abc");
    }

    #[test]
    fn state_names() {
        assert_eq!(pod_state_name(0).ok(), Some("Ready"));
        assert_eq!(pod_state_name(1).ok(), Some("NotReady"));
        assert!(pod_state_name(7).is_err());
        assert_eq!(container_state_name(1).ok(), Some("Running"));
        assert_eq!(container_state_name(3).ok(), Some("Unknown"));
        assert_eq!(container_state_proto_name(2), "CONTAINER_EXITED");
        assert_eq!(pod_state_proto_name(9), "9");
    }
}
