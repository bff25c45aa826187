//! The Lease printer (`coordination.k8s.io`).

use serde_json::Value;

use super::cells::{self, optional_text};
use super::{AGE, Column, NAME, Printer};

pub(super) const LEASE: Printer = Printer::new(LEASE_COLUMNS, lease);

const LEASE_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Holder",
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
    ),
    AGE,
];

fn lease(object: &Value, now: i64) -> Vec<Value> {
    cells![
        cells::name(object),
        optional_text(object, "/spec/holderIdentity").unwrap_or_default(),
        cells::age(object, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, seconds_ago};
    use serde_json::json;

    #[test]
    fn prints_the_holder() {
        let cases = [
            (json!({"holderIdentity": "node-1_5f0c"}), "node-1_5f0c"),
            (json!({}), ""),
        ];
        for (spec, holder) in cases {
            let object = json!({"metadata": {"name": "l", "creationTimestamp": seconds_ago(42)},
                                "spec": spec});
            assert_eq!(
                Value::from(lease(&object, NOW)),
                json!(["l", holder, "42s"])
            );
        }
    }
}
