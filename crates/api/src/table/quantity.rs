//! Resource quantities as upstream prints them. Upstream parses every `resource.Quantity` and
//! prints its canonical form (`1024Mi` as `1Gi`, `1.5` as `1500m`, `1000` as `1k`), so cells
//! built from a stored quantity go through [`canonical`].

use serde_json::Value;

/// A quantity cell read from a map entry: Go's zero quantity, `0`, when absent.
pub(super) fn or_zero(value: Option<&Value>) -> String {
    or(value, "0")
}

/// A quantity cell read through a pointer: Go's `<nil>` when absent.
pub(super) fn or_nil(value: Option<&Value>) -> String {
    or(value, "<nil>")
}

fn or(value: Option<&Value>, absent: &str) -> String {
    let text = match value {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return absent.to_owned(),
    };
    // A quantity upstream could not parse never reaches its printers; show it as stored.
    canonical(&text).unwrap_or(text)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalExponent,
    BinarySI,
    DecimalSI,
}

/// The parts of a quantity's text, as upstream's `parseQuantityString` splits them.
struct Parts<'a> {
    positive: bool,
    /// The integer digits without leading zeros, `0` when there are none.
    num: &'a str,
    /// The fraction's digits.
    denom: &'a str,
    suffix: &'a str,
}

/// The canonical form of a quantity, `None` when it does not parse (or is too large for this
/// implementation, beyond 38 significant digits).
pub(super) fn canonical(text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    if text == "0" {
        return Some(text.to_owned());
    }
    let parts = split(text)?;
    let (base, exponent, mut format) = interpret(parts.suffix)?;
    if keeps_text(&parts, base, exponent, format) {
        return Some(text.to_owned());
    }

    // The value is `unscaled * 10^scale`.
    let digits = format!("{}{}", parts.num, parts.denom);
    let mut unscaled: i128 = digits.parse().ok()?;
    let denom_len = i32::try_from(parts.denom.len()).ok()?;
    let mut scale = -denom_len;
    if base == 10 {
        scale = scale.checked_add(exponent)?;
    } else {
        unscaled = unscaled.checked_mul(1i128.checked_shl(u32::try_from(exponent).ok()?)?)?;
    }
    // Upstream rounds every non-zero amount up, away from zero, to a whole nano.
    if unscaled != 0 && scale < -9 {
        let shift = u32::try_from(-9 - scale).ok()?;
        unscaled = match 10i128.checked_pow(shift) {
            Some(divisor) => {
                let rounded = unscaled / divisor;
                if unscaled % divisor == 0 {
                    rounded
                } else {
                    rounded + 1
                }
            }
            None => 1,
        };
        scale = -9;
    }
    if format == Format::BinarySI {
        // Binary quantities are capped at the largest int64, and those below one print as
        // decimals.
        if compare(unscaled, scale, i128::from(i64::MAX)).is_gt() {
            unscaled = i128::from(i64::MAX);
            scale = 0;
        }
        if compare(unscaled, scale, 1).is_lt() {
            format = Format::DecimalSI;
        }
    }
    if !parts.positive {
        unscaled = -unscaled;
    }
    render(unscaled, scale, format)
}

/// Upstream's `parseQuantityString`: sign, digits, fraction, suffix.
fn split(text: &str) -> Option<Parts<'_>> {
    let b = text.as_bytes();
    let mut at = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            at += 1;
        }
        Some(b'+') => at += 1,
        _ => {}
    }
    while b.get(at) == Some(&b'0') {
        at += 1;
    }
    let start = at;
    while b.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    let num = if at == start { "0" } else { &text[start..at] };
    let mut denom = "";
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        denom = &text[start..at];
    }
    let suffix_start = at;
    while b.get(at).is_some_and(|c| b"eEinumkKMGTP".contains(c)) {
        at += 1;
    }
    if matches!(b.get(at), Some(b'-' | b'+')) {
        at += 1;
    }
    while b.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    if at != b.len() {
        return None;
    }
    Some(Parts {
        positive,
        num,
        denom,
        suffix: &text[suffix_start..],
    })
}

/// The suffix's base, exponent and format.
fn interpret(suffix: &str) -> Option<(i32, i32, Format)> {
    let decimal = |exponent| Some((10, exponent, Format::DecimalSI));
    let binary = |exponent| Some((2, exponent, Format::BinarySI));
    match suffix {
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "" => decimal(0),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ if suffix.len() > 1 && suffix.starts_with(['e', 'E']) => {
            let exponent: i64 = suffix[1..].parse().ok()?;
            Some((10, i32::try_from(exponent).ok()?, Format::DecimalExponent))
        }
        _ => None,
    }
}

/// Upstream keeps the text as given when its fast path parses a form it considers canonical
/// already; the printed text then is the stored one (`+1` stays `+1`).
fn keeps_text(parts: &Parts<'_>, base: i32, exponent: i32, format: Format) -> bool {
    let digits = parts.num.len() + parts.denom.len();
    let precision = match format {
        Format::BinarySI if exponent >= 0 && parts.denom.is_empty() => {
            // Upstream estimates the decimal digits of 2^exponent in float32.
            let estimate = (exponent as f32 * 3.0 / 10.0) as i64;
            15 - i64::try_from(parts.num.len()).unwrap_or(i64::MAX) - estimate - 1
        }
        Format::BinarySI => -1,
        _ => 18 - i64::try_from(digits).unwrap_or(i64::MAX),
    };
    if precision < 0 {
        return false;
    }
    let denom_len = i64::try_from(parts.denom.len()).unwrap_or(i64::MAX);
    let scale = if base == 10 { i64::from(exponent) } else { 0 } - denom_len;
    if scale < -9 {
        return false;
    }
    let shifted = format!("{}{}", parts.num, parts.denom);
    let Ok(value) = shifted.parse::<i64>() else {
        return false;
    };
    let mantissa = if format == Format::BinarySI {
        1i64.checked_shl(u32::try_from(exponent).unwrap_or(u32::MAX))
    } else {
        Some(1)
    };
    if mantissa.and_then(|m| value.checked_mul(m)).is_none() {
        return false;
    }
    match format {
        Format::BinarySI => exponent % 10 == 0 && value & 0x07 != 0,
        _ => scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0'),
    }
}

/// Compares `unscaled * 10^scale` with an integer.
fn compare(unscaled: i128, scale: i32, other: i128) -> std::cmp::Ordering {
    if scale >= 0 {
        let factor = 10i128.checked_pow(scale.unsigned_abs());
        match factor.and_then(|f| unscaled.checked_mul(f)) {
            Some(value) => value.cmp(&other),
            None => unscaled.signum().cmp(&0).then(std::cmp::Ordering::Greater),
        }
    } else {
        match 10i128
            .checked_pow(scale.unsigned_abs())
            .and_then(|f| other.checked_mul(f))
        {
            Some(scaled_other) => unscaled.cmp(&scaled_other),
            None => 0.cmp(&other.signum()),
        }
    }
}

/// Upstream's `CanonicalizeBytes`.
fn render(unscaled: i128, scale: i32, format: Format) -> Option<String> {
    if unscaled == 0 {
        return Some("0".to_owned());
    }
    let mut format = format;
    if format == Format::BinarySI {
        let small =
            compare(unscaled, scale, -1024).is_gt() && compare(unscaled, scale, 1024).is_lt();
        let whole = scale >= 0 || unscaled % 10i128.checked_pow(scale.unsigned_abs())? == 0;
        if small || !whole {
            format = Format::DecimalSI;
        }
    }
    if format == Format::BinarySI {
        let mut value = if scale >= 0 {
            unscaled.checked_mul(10i128.checked_pow(scale.unsigned_abs())?)?
        } else {
            unscaled / 10i128.checked_pow(scale.unsigned_abs())?
        };
        let mut times = 0;
        while value.abs() >= 1024 && value % 1024 == 0 {
            value /= 1024;
            times += 1;
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
            .get(times)
            .copied()
            .unwrap_or_default();
        return Some(format!("{value}{suffix}"));
    }
    // Decimal: move factors of ten into the exponent, then make it a multiple of three.
    let (mut mantissa, mut exponent) = (unscaled, scale);
    while mantissa.abs() >= 10 && mantissa % 10 == 0 {
        mantissa /= 10;
        exponent += 1;
    }
    while exponent % 3 != 0 {
        mantissa = mantissa.checked_mul(10)?;
        exponent -= 1;
    }
    let suffix = match format {
        Format::DecimalExponent if exponent == 0 => String::new(),
        Format::DecimalExponent => format!("e{exponent}"),
        // Exponents without an SI suffix print with none, as upstream does.
        _ => match exponent {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => "",
        }
        .to_owned(),
    };
    Some(format!("{mantissa}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_quantities_canonically() {
        let cases = [
            ("0", "0"),
            ("0Gi", "0"),
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Ki", "512"),
            ("2048", "2048"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("1.5", "1500m"),
            ("100m", "100m"),
            ("0.1", "100m"),
            ("1000m", "1"),
            ("1500000", "1500k"),
            ("5G", "5G"),
            ("10Gi", "10Gi"),
            ("1e3", "1e3"),
            ("1e4", "10e3"),
            ("1.5e3", "1500"),
            ("0.0000000001", "1n"),
            ("-1500m", "-1500m"),
            ("-1000", "-1k"),
            ("+5", "+5"),
            ("05", "05"),
            ("3Ki", "3Ki"),
            ("8Ki", "8Ki"),
            ("1024Ki", "1Mi"),
        ];
        for (text, want) in cases {
            assert_eq!(canonical(text).as_deref(), Some(want), "{text}");
        }
        for bad in ["", "1 Gi", "abc", "1Xi", "1e"] {
            assert_eq!(canonical(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn absent_quantities_print_as_go_zero_values() {
        assert_eq!(or_zero(None), "0");
        assert_eq!(or_nil(None), "<nil>");
        assert_eq!(or_zero(Some(&json!("2048Mi"))), "2Gi");
        assert_eq!(or_nil(Some(&json!(3))), "3");
        assert_eq!(or_zero(Some(&json!("not a quantity"))), "not a quantity");
    }
}
