//! Times as crictl reads and writes them: CRI timestamps are nanoseconds since the Unix epoch;
//! crictl shows them as RFC 3339 (`inspect`, `logs --timestamps`) or in Go's `time.Time` form
//! (verbose listings), and reads Go durations (`--timeout 5s`, `--since 10m`).
//!
//! There is no time zone database here: times are shown in UTC, and a `--since` time without
//! a zone is taken as UTC (crictl takes it in the local zone).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The current time in nanoseconds since the epoch.
pub(crate) fn now_nanos() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(elapsed) => i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// A point in time with the UTC offset it was written with (logs keep the writer's offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timestamp {
    /// Nanoseconds since the epoch.
    pub(crate) unix_nanos: i128,
    /// Seconds east of UTC.
    pub(crate) offset_seconds: i32,
}

/// Civil date (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let day_of_year = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + day_of_year;
    era * 146_097 + doe - 719_468
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    nanos: i64,
}

fn civil(unix_nanos: i128, offset_seconds: i32) -> Civil {
    let local = unix_nanos + i128::from(offset_seconds) * i128::from(NANOS_PER_SECOND);
    let seconds = local.div_euclid(i128::from(NANOS_PER_SECOND)) as i64;
    let nanos = local.rem_euclid(i128::from(NANOS_PER_SECOND)) as i64;
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: of_day / 3600,
        minute: of_day % 3600 / 60,
        second: of_day % 60,
        nanos,
    }
}

fn zone(offset_seconds: i32) -> String {
    if offset_seconds == 0 {
        return "Z".to_string();
    }
    let sign = if offset_seconds < 0 { '-' } else { '+' };
    let minutes = offset_seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Go's `time.RFC3339Nano` in UTC: `2024-05-01T10:00:00.5Z` (fraction without trailing zeros,
/// none at all for whole seconds).
pub(crate) fn rfc3339_nano(unix_nanos: i64) -> String {
    let c = civil(i128::from(unix_nanos), 0);
    let mut text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    if c.nanos != 0 {
        let fraction = format!("{:09}", c.nanos);
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// The zero `time.Time` of Go in RFC 3339, which crictl prints for times that never happened.
pub(crate) const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The fixed-width RFC 3339 form that log timestamps are printed in:
/// `2024-05-01T10:00:00.500000000Z`, in the offset the log line was written with.
pub(crate) fn rfc3339_nano_fixed(timestamp: Timestamp) -> String {
    let c = civil(timestamp.unix_nanos, timestamp.offset_seconds);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}{}",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.nanos,
        zone(timestamp.offset_seconds)
    )
}

/// Go's `time.Time.String()` in UTC, as crictl's verbose listings print creation times:
/// `2024-05-01 10:00:00.5 +0000 UTC`.
pub(crate) fn go_time_string(unix_nanos: i64) -> String {
    let c = civil(i128::from(unix_nanos), 0);
    let mut text = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    if c.nanos != 0 {
        let fraction = format!("{:09}", c.nanos);
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push_str(" +0000 UTC");
    text
}

/// A cursor over ASCII text for the small parsers below.
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor {
            text: text.as_bytes(),
            at: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn done(&self) -> bool {
        self.at >= self.text.len()
    }

    /// Exactly `count` decimal digits.
    fn digits(&mut self, count: usize) -> Option<i64> {
        let digits = self.text.get(self.at..self.at + count)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.at += count;
        Some(
            digits
                .iter()
                .fold(0, |value, digit| value * 10 + i64::from(digit - b'0')),
        )
    }

    /// One or more digits, as a fraction of a second in nanoseconds (digits past the ninth are
    /// dropped).
    fn fraction(&mut self) -> Option<i64> {
        let start = self.at;
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.at += 1;
        }
        let digits = self.text.get(start..self.at)?;
        if digits.is_empty() {
            return None;
        }
        let mut nanos = 0;
        for position in 0..9 {
            let digit = digits
                .get(position)
                .map_or(0, |digit| i64::from(digit - b'0'));
            nanos = nanos * 10 + digit;
        }
        Some(nanos)
    }
}

/// Parses an RFC 3339 time with an optional fraction of any length up to nine digits, as Go's
/// lenient `2006-01-02T15:04:05.999999999Z07:00` layout reads CRI log lines.
pub(crate) fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let parsed = parse_date_time(text, true)?;
    let offset_seconds = parsed.offset_seconds?;
    Some(parsed.at(offset_seconds))
}

/// A date and time as written, before its zone is applied.
struct WallClock {
    /// Nanoseconds since the epoch if the written time were UTC.
    as_utc_nanos: i128,
    /// The written zone, if there was one.
    offset_seconds: Option<i32>,
}

impl WallClock {
    fn at(&self, offset_seconds: i32) -> Timestamp {
        Timestamp {
            unix_nanos: self.as_utc_nanos
                - i128::from(offset_seconds) * i128::from(NANOS_PER_SECOND),
            offset_seconds,
        }
    }
}

/// `YYYY-MM-DD`, then a time of day and a zone. With `strict`, exactly RFC 3339 with an
/// optional fraction; otherwise the time (or its minutes and seconds) and the zone may be left
/// out, as `--since` allows.
fn parse_date_time(text: &str, strict: bool) -> Option<WallClock> {
    let mut cursor = Cursor::new(text);
    let year = cursor.digits(4)?;
    if !cursor.eat(b'-') {
        return None;
    }
    let month = u32::try_from(cursor.digits(2)?).ok()?;
    if !cursor.eat(b'-') {
        return None;
    }
    let day = u32::try_from(cursor.digits(2)?).ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    let mut complete_time = false;
    if cursor.eat(b'T') {
        hour = cursor.digits(2)?;
        if cursor.eat(b':') {
            minute = cursor.digits(2)?;
            if cursor.eat(b':') {
                second = cursor.digits(2)?;
                complete_time = true;
                if cursor.eat(b'.') {
                    nanos = cursor.fraction()?;
                }
            }
        }
    }
    if strict && !complete_time {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset_seconds = if cursor.eat(b'Z') {
        Some(0)
    } else if let Some(sign @ (b'+' | b'-')) = cursor.peek() {
        cursor.at += 1;
        let hours = cursor.digits(2)?;
        if !cursor.eat(b':') {
            return None;
        }
        let minutes = cursor.digits(2)?;
        let magnitude = i32::try_from(hours * 3600 + minutes * 60).ok()?;
        Some(if sign == b'-' { -magnitude } else { magnitude })
    } else {
        None
    };
    if !cursor.done() {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(WallClock {
        as_utc_nanos: i128::from(seconds) * i128::from(NANOS_PER_SECOND) + i128::from(nanos),
        offset_seconds,
    })
}

/// Parses a Go duration (`300ms`, `1.5h`, `2m30s`, `-1s`; a bare `0` too) into signed
/// nanoseconds.
pub(crate) fn parse_go_duration(text: &str) -> Result<i128, String> {
    let invalid = || format!("invalid duration {text:?}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {text:?}"))?;
        let number = &rest[..number_end];
        if number.is_empty() || number == "." {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            unit => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        total += value * nanos_per_unit;
        rest = &rest[unit_end..];
    }
    let nanos = total.round() as i128;
    Ok(if negative { -nanos } else { nanos })
}

/// A `--timeout`-style flag: a Go duration; zero or less means crictl's default of 2s.
pub(crate) fn parse_timeout(text: &str) -> Result<Duration, String> {
    let nanos = parse_go_duration(text)?;
    if nanos <= 0 {
        return Ok(super::DEFAULT_TIMEOUT);
    }
    Ok(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}

/// A duration flag where zero means "none" (`--pull-timeout`, `--cancel-timeout`).
pub(crate) fn parse_optional_duration(text: &str) -> Result<Duration, String> {
    let nanos = parse_go_duration(text)?;
    if nanos < 0 {
        return Err(format!("duration {text:?} must not be negative"));
    }
    Ok(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}

/// `logs --since`: a Go duration before `now` (to the second, as crictl), an RFC 3339 time or
/// date (possibly without seconds or zone), or Unix seconds with an optional fraction. Returns
/// nanoseconds since the epoch.
pub(crate) fn parse_since(value: &str, now_nanos: i64) -> Result<i128, String> {
    if value != "0"
        && let Ok(ago) = parse_go_duration(value)
    {
        let at = i128::from(now_nanos).saturating_sub(ago);
        let seconds = at.div_euclid(i128::from(NANOS_PER_SECOND));
        return Ok(seconds * i128::from(NANOS_PER_SECOND));
    }
    if let Some(parsed) = parse_date_time(value, false) {
        // Without a zone, the time is read as UTC.
        let offset_seconds = parsed.offset_seconds.unwrap_or(0);
        return Ok(parsed.at(offset_seconds).unix_nanos);
    }
    if value.contains('-') {
        return Err(format!("cannot parse time {value:?}"));
    }
    let (seconds, fraction) = value.split_once('.').unwrap_or((value, ""));
    let seconds: i64 = seconds
        .parse()
        .map_err(|_| format!("failed to parse value as time or duration: {value:?}"))?;
    let nanos = if fraction.is_empty() {
        0
    } else {
        Cursor::new(fraction)
            .fraction()
            .filter(|_| fraction.bytes().all(|byte| byte.is_ascii_digit()))
            .ok_or_else(|| format!("failed to parse value as time or duration: {value:?}"))?
    };
    Ok(i128::from(seconds) * i128::from(NANOS_PER_SECOND) + i128::from(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAY_FIRST_2024: i64 = 1_714_557_600; // 2024-05-01T10:00:00Z

    #[test]
    fn formats_rfc3339_like_go() {
        assert_eq!(
            rfc3339_nano(MAY_FIRST_2024 * NANOS_PER_SECOND),
            "2024-05-01T10:00:00Z"
        );
        assert_eq!(
            rfc3339_nano(MAY_FIRST_2024 * NANOS_PER_SECOND + 500_000_000),
            "2024-05-01T10:00:00.5Z"
        );
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_nano(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            go_time_string(MAY_FIRST_2024 * NANOS_PER_SECOND + 120_000),
            "2024-05-01 10:00:00.00012 +0000 UTC"
        );
    }

    #[test]
    fn parses_log_timestamps_and_keeps_their_offset() {
        let utc = parse_rfc3339("2024-05-01T10:00:00.123456789Z").expect("parses");
        assert_eq!(
            utc.unix_nanos,
            i128::from(MAY_FIRST_2024) * 1_000_000_000 + 123_456_789
        );
        assert_eq!(rfc3339_nano_fixed(utc), "2024-05-01T10:00:00.123456789Z");

        let short = parse_rfc3339("2024-05-01T10:00:00.5Z").expect("parses");
        assert_eq!(rfc3339_nano_fixed(short), "2024-05-01T10:00:00.500000000Z");

        let whole = parse_rfc3339("2024-05-01T10:00:00Z").expect("parses");
        assert_eq!(rfc3339_nano_fixed(whole), "2024-05-01T10:00:00.000000000Z");

        let east = parse_rfc3339("2024-05-01T12:00:00.1+02:00").expect("parses");
        assert_eq!(
            east.unix_nanos,
            i128::from(MAY_FIRST_2024) * 1_000_000_000 + 100_000_000
        );
        assert_eq!(
            rfc3339_nano_fixed(east),
            "2024-05-01T12:00:00.100000000+02:00"
        );

        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T10:00:00",
            "2024-13-01T10:00:00Z",
            "2024-05-01T10:00:00.Z",
            "2024-05-01T10:00:00Zjunk",
        ] {
            assert!(
                parse_rfc3339(bad).is_none(),
                "{bad:?} is not a log timestamp"
            );
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("2s"), Ok(2_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_go_duration("-1s"), Ok(-1_000_000_000));
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("1d").is_err());
        assert_eq!(parse_timeout("0"), Ok(crate::crictl::DEFAULT_TIMEOUT));
        assert_eq!(parse_timeout("-3s"), Ok(crate::crictl::DEFAULT_TIMEOUT));
        assert_eq!(parse_timeout("10s"), Ok(Duration::from_secs(10)));
    }

    #[test]
    fn since_accepts_durations_times_and_unix_seconds() {
        let now = MAY_FIRST_2024 * NANOS_PER_SECOND + 700_000_000;
        let second = i128::from(NANOS_PER_SECOND);
        let base = i128::from(MAY_FIRST_2024) * second;
        assert_eq!(parse_since("10m", now), Ok(base - 600 * second));
        assert_eq!(parse_since("2024-05-01T10:00:00Z", now), Ok(base));
        assert_eq!(parse_since("2024-05-01T10:00:00", now), Ok(base));
        assert_eq!(parse_since("2024-05-01T10:00", now), Ok(base));
        assert_eq!(parse_since("2024-05-01T12:00:00+02:00", now), Ok(base));
        assert_eq!(
            parse_since("2024-05-01", now),
            Ok(base - 10 * 3600 * second)
        );
        assert_eq!(parse_since("1714557600.25", now), Ok(base + 250_000_000));
        assert_eq!(parse_since("1714557600", now), Ok(base));
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("2024-99-01", now).is_err());
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 59, 365, 11_016, 19_844, 2_932_896] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }
}
