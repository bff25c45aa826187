//! Times as upstream's printers show them: RFC 3339 timestamps read to the nanosecond, ages in
//! apimachinery's `HumanDuration` form (`5m`, `3h5m`, `2d5h`), and Go's zero time as
//! `<unknown>`.

use serde_json::Value;

pub(crate) const NANOS_PER_SECOND: i128 = 1_000_000_000;
const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// Go's zero `time.Time`, 0001-01-01T00:00:00Z, in nanoseconds since the Unix epoch. Upstream
/// prints it as `<unknown>` in ages and as itself in the default table.
pub(super) const ZERO_TIME: i128 = -62_135_596_800 * NANOS_PER_SECOND;

/// A timestamp field in nanoseconds since the epoch; `None` when absent, null, unreadable, or
/// Go's zero time (upstream's `IsZero`).
pub(super) fn timestamp(value: Option<&Value>) -> Option<i128> {
    value
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
        .filter(|&t| t != ZERO_TIME)
}

/// Upstream's `translateTimestampSince`: the age of a timestamp at `now` (seconds since the
/// epoch), `<unknown>` when unset.
pub(super) fn since(value: Option<&Value>, now: i64) -> String {
    match timestamp(value) {
        Some(t) => human_duration(duration(i128::from(now) * NANOS_PER_SECOND, t)),
        None => "<unknown>".to_owned(),
    }
}

/// `end - start` as a Go `Duration`, which saturates rather than overflows.
pub(super) fn duration(end: i128, start: i128) -> i64 {
    let d = end - start;
    i64::try_from(d).unwrap_or(if d > 0 { i64::MAX } else { i64::MIN })
}

/// apimachinery's `duration.HumanDuration`: two significant units for short spans, one for
/// longer ones; up to a second in the future is clock skew (`0s`), more is `<invalid>`.
pub(super) fn human_duration(d: i64) -> String {
    let seconds = d / SECOND;
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = d / MINUTE;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = d / HOUR;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let dy = days % 365;
        return if dy == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{dy}d")
        };
    }
    format!("{years}y")
}

/// Parses Go's RFC 3339 form, `2024-05-01T12:00:00Z`, with optional fractional seconds and a
/// `Z` or `±hh:mm` offset, to nanoseconds since the epoch.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    let month_ok = (1..=12).contains(&month);
    if !month_ok || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut nanos: i128 = 0;
    if b[at] == b'.' {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            at += 1;
        }
        if at == start {
            return None;
        }
        // Go reads nanoseconds: digits past the ninth are dropped.
        let mut scale = NANOS_PER_SECOND;
        for &digit in &b[start..at.min(start + 9)] {
            scale /= 10;
            nanos += i128::from(digit - b'0') * scale;
        }
    }
    let offset_seconds = match b.get(at..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let zone = [*h1, *h2, *m1, *m2];
            let hours = digits(&zone, 0, 2)?;
            let minutes = digits(&zone, 2, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(i128::from(seconds) * NANOS_PER_SECOND + nanos)
}

/// Go's `Format(time.RFC3339)` in UTC: whole seconds, `Z`.
pub(super) fn format_rfc3339(nanos: i128) -> String {
    let seconds = nanos.div_euclid(NANOS_PER_SECOND);
    let days = i64::try_from(seconds.div_euclid(86_400)).unwrap_or_default();
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

fn digits(b: &[u8], start: usize, len: usize) -> Option<i64> {
    b.get(start..start + len)?.iter().try_fold(0, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn human_duration_follows_upstream_thresholds() {
        let s = SECOND;
        let cases: &[(i64, &str)] = &[
            (-2 * s, "<invalid>"),
            (-s - 1, "0s"),
            (-s, "0s"),
            (-1, "0s"),
            (0, "0s"),
            (s - 1, "0s"),
            (59 * s, "59s"),
            (119 * s, "119s"),
            (120 * s, "2m"),
            (150 * s, "2m30s"),
            (9 * MINUTE + 59 * s, "9m59s"),
            (10 * MINUTE, "10m"),
            (10 * MINUTE + 59 * s, "10m"),
            (179 * MINUTE, "179m"),
            (180 * MINUTE, "3h"),
            (3 * HOUR + 5 * MINUTE, "3h5m"),
            (7 * HOUR + 59 * MINUTE, "7h59m"),
            (8 * HOUR, "8h"),
            (47 * HOUR + 59 * MINUTE, "47h"),
            (48 * HOUR, "2d"),
            (53 * HOUR, "2d5h"),
            (7 * 24 * HOUR + 23 * HOUR, "7d23h"),
            (8 * 24 * HOUR, "8d"),
            (729 * 24 * HOUR, "729d"),
            (730 * 24 * HOUR, "2y"),
            (800 * 24 * HOUR, "2y70d"),
            (8 * 365 * 24 * HOUR - HOUR, "7y364d"),
            (8 * 365 * 24 * HOUR, "8y"),
            (9 * 365 * 24 * HOUR + 100 * 24 * HOUR, "9y"),
            (i64::MAX, "292y"),
        ];
        for &(d, want) in cases {
            assert_eq!(human_duration(d), want, "duration {d}ns");
        }
    }

    #[test]
    fn parses_and_formats_rfc3339() {
        let cases: &[(&str, Option<i128>)] = &[
            ("1970-01-01T00:00:00Z", Some(0)),
            (
                "2024-05-01T12:00:00Z",
                Some(1_714_564_800 * NANOS_PER_SECOND),
            ),
            (
                "2024-05-01T14:00:00+02:00",
                Some(1_714_564_800 * NANOS_PER_SECOND),
            ),
            (
                "2024-05-01T11:30:00-00:30",
                Some(1_714_564_800 * NANOS_PER_SECOND),
            ),
            (
                "2024-05-01T12:00:00.250000Z",
                Some(1_714_564_800 * NANOS_PER_SECOND + 250_000_000),
            ),
            (
                "2024-02-29T00:00:00Z",
                Some(1_709_164_800 * NANOS_PER_SECOND),
            ),
            ("0001-01-01T00:00:00Z", Some(ZERO_TIME)),
            ("2023-02-29T00:00:00Z", None),
            ("2024-05-01 12:00:00Z", None),
            ("2024-05-01T12:00:00", None),
            ("2024-05-01T24:00:00Z", None),
            ("2024-05-01T12:00:00.Z", None),
            ("yesterday", None),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_rfc3339(text), want, "{text}");
        }
        for text in [
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            let parsed = parse_rfc3339(text).expect("valid");
            assert_eq!(format_rfc3339(parsed), text);
        }
    }

    #[test]
    fn since_is_unknown_for_unset_and_zero_times() {
        let now = 1_714_564_800 + 300;
        let cases = [
            (json!("2024-05-01T12:00:00Z"), "5m"),
            (json!("2024-05-01T12:06:00Z"), "<invalid>"),
            (json!("0001-01-01T00:00:00Z"), "<unknown>"),
            (json!(null), "<unknown>"),
            (json!("not a time"), "<unknown>"),
        ];
        for (value, want) in cases {
            assert_eq!(since(Some(&value), now), want, "{value}");
        }
        assert_eq!(since(None, now), "<unknown>");
    }
}
