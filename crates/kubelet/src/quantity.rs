//! Whole-number resource quantities in the canonical text upstream's `resource.Quantity`
//! prints: what the node reports must read exactly as an upstream kubelet's does
//! (`24684084Ki`, not `25276502016`), or every status comparison sees a change.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
const DECIMAL_SUFFIXES: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];

/// A count in the decimal SI format (`cpu`, `pods`): factors of 1000 become suffixes.
pub fn decimal_si(value: u64) -> Quantity {
    Quantity(with_suffix(value, 1000, &DECIMAL_SUFFIXES))
}

/// Bytes in the binary SI format (`memory`, `ephemeral-storage`, huge pages): factors of 1024
/// become suffixes; a value that has none prints as a plain number, and one below 1024 prints
/// in the decimal format, as upstream does.
pub fn binary_si(value: u64) -> Quantity {
    if value < 1024 {
        return decimal_si(value);
    }
    Quantity(with_suffix(value, 1024, &BINARY_SUFFIXES))
}

fn with_suffix(mut value: u64, base: u64, suffixes: &[&str; 7]) -> String {
    let mut exponent = 0;
    while value != 0 && value.is_multiple_of(base) && exponent + 1 < suffixes.len() {
        value /= base;
        exponent += 1;
    }
    format!("{value}{}", suffixes[exponent])
}

/// The size part of a huge page resource name: `2Mi` in `hugepages-2Mi`.
pub fn hugepage_resource(page_size: u64) -> String {
    format!("hugepages-{}", binary_si(page_size).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_as_upstream() {
        let cases = [
            (binary_si(0), "0"),
            (binary_si(512), "512"),
            (binary_si(1000), "1k"),
            (binary_si(1024), "1Ki"),
            (binary_si(24_684_084 * 1024), "24684084Ki"),
            (binary_si(100 << 20), "100Mi"),
            (binary_si(2 << 30), "2Gi"),
            (binary_si(94_579_391_693), "94579391693"),
            (decimal_si(2), "2"),
            (decimal_si(110), "110"),
            (decimal_si(1500), "1500"),
            (decimal_si(2000), "2k"),
        ];
        for (got, want) in cases {
            assert_eq!(got.0, want);
        }
        assert_eq!(hugepage_resource(2 << 20), "hugepages-2Mi");
        assert_eq!(hugepage_resource(1 << 30), "hugepages-1Gi");
    }
}
