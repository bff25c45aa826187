//! Resource quantities (`100m`, `1.5`, `128Mi`, `1e3`) as whole numbers, the way upstream's
//! `resource.Quantity` reads them for the scheduler: `MilliValue()` for CPU and `Value()` for
//! everything else, both rounded up, away from zero, to a whole unit.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The quantity in whole units (bytes, pods, devices), rounded up; `None` if it does not parse.
pub fn value(quantity: &Quantity) -> Option<i64> {
    scaled(&quantity.0, 0)
}

/// The quantity in thousandths (millicores), rounded up; `None` if it does not parse.
pub fn milli_value(quantity: &Quantity) -> Option<i64> {
    scaled(&quantity.0, 3)
}

/// `text × 10^extra_exponent`, rounded up away from zero and clamped to `i64`.
fn scaled(text: &str, extra_exponent: i32) -> Option<i64> {
    let parsed = parse(text.trim())?;
    let mut amount = parsed.digits;
    for _ in 0..parsed.power_of_two {
        amount = amount.saturating_mul(2);
    }
    let exponent = parsed.power_of_ten + extra_exponent;
    if exponent >= 0 {
        for _ in 0..exponent {
            amount = amount.saturating_mul(10);
        }
    } else {
        let divisor = 10i128
            .checked_pow(exponent.unsigned_abs())
            .unwrap_or(i128::MAX);
        amount = amount / divisor + i128::from(amount % divisor != 0);
    }
    let amount = i64::try_from(amount).unwrap_or(i64::MAX);
    Some(if parsed.negative { -amount } else { amount })
}

/// A quantity as `digits × 10^power_of_ten × 2^power_of_two`.
struct Parsed {
    negative: bool,
    digits: i128,
    power_of_ten: i32,
    power_of_two: u32,
}

fn parse(text: &str) -> Option<Parsed> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut digits: i128 = 0;
    for c in whole.bytes().chain(fraction.bytes()) {
        if c == b'.' {
            return None;
        }
        digits = digits
            .saturating_mul(10)
            .saturating_add(i128::from(c - b'0'));
    }
    let fraction_len = i32::try_from(fraction.len()).ok()?;
    let (suffix_ten, power_of_two) = suffix_exponents(suffix)?;
    Some(Parsed {
        negative,
        digits,
        power_of_ten: suffix_ten - fraction_len,
        power_of_two,
    })
}

/// The powers of ten and two a suffix stands for: binary SI (`Ki`…`Ei`), decimal SI
/// (`n`…`E`) or a decimal exponent (`e3`, `E-2`).
fn suffix_exponents(suffix: &str) -> Option<(i32, u32)> {
    let decimal = |exponent| Some((exponent, 0));
    let binary = |exponent| Some((0, exponent));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
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
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let exponent: i32 = exponent.parse().ok()?;
            (-64..=64).contains(&exponent).then_some((exponent, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantity {
        Quantity(text.to_owned())
    }

    #[test]
    fn cpu_quantities_read_as_millicores_rounded_up() {
        for (text, milli) in [
            ("1", 1000),
            ("100m", 100),
            ("0.5", 500),
            ("1.5", 1500),
            (".1", 100),
            ("2500u", 3),
            ("1n", 1),
            ("0", 0),
            ("1e3", 1_000_000),
            ("1k", 1_000_000),
        ] {
            assert_eq!(milli_value(&q(text)), Some(milli), "{text}");
        }
    }

    #[test]
    fn byte_quantities_read_as_whole_units_rounded_up() {
        for (text, bytes) in [
            ("128974848", 128_974_848),
            ("129e6", 129_000_000),
            ("129M", 129_000_000),
            ("123Mi", 128_974_848),
            ("1Gi", 1 << 30),
            ("1.5Gi", 3 << 29),
            ("100m", 1),
            ("1Ei", 1 << 60),
            ("-1k", -1000),
            ("+2", 2),
        ] {
            assert_eq!(value(&q(text)), Some(bytes), "{text}");
        }
    }

    #[test]
    fn huge_quantities_saturate() {
        assert_eq!(value(&q("100Ei")), Some(i64::MAX));
        assert_eq!(milli_value(&q("9e18")), Some(i64::MAX));
    }

    #[test]
    fn malformed_quantities_do_not_parse() {
        for text in ["", "abc", "1.2.3", "1Qi", ".", "1e", "m", "1ee3"] {
            assert_eq!(value(&q(text)), None, "{text}");
        }
    }
}
