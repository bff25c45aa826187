//! The PodDisruptionBudget printer (`policy`).

use serde_json::Value;

use super::cells::{self, int};
use super::{AGE, Column, NAME, Printer};

pub(super) const POD_DISRUPTION_BUDGET: Printer =
    Printer::new(POD_DISRUPTION_BUDGET_COLUMNS, pod_disruption_budget);

const POD_DISRUPTION_BUDGET_COLUMNS: &[Column] = &[
    NAME,
    Column::string(
        "Min Available",
        "The minimum number of pods that must be available.",
    ),
    Column::string(
        "Max Unavailable",
        "The maximum number of pods that may be unavailable.",
    ),
    Column::integer(
        "Allowed Disruptions",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

fn pod_disruption_budget(object: &Value, now: i64) -> Vec<Value> {
    // Each bound is a number or a percentage, `N/A` when unset.
    let bound = |pointer: &str| match object.pointer(pointer) {
        Some(value) if !value.is_null() => cells::int_or_string(value),
        _ => "N/A".to_owned(),
    };
    cells![
        cells::name(object),
        bound("/spec/minAvailable"),
        bound("/spec/maxUnavailable"),
        int(object, "/status/disruptionsAllowed"),
        cells::age(object, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago};
    use serde_json::json;

    #[test]
    fn prints_bounds() {
        let cases = [
            (
                json!({"minAvailable": 2}),
                json!({"disruptionsAllowed": 1}),
                ["2", "N/A"],
                1,
            ),
            (
                json!({"maxUnavailable": "25%"}),
                json!({}),
                ["N/A", "25%"],
                0,
            ),
        ];
        for (spec, status, [min, max], allowed) in cases {
            let object = json!({"metadata": {"name": "pdb", "creationTimestamp": minutes_ago(1)},
                                "spec": spec, "status": status});
            let want = json!(["pdb", min, max, allowed, "60s"]);
            assert_eq!(Value::from(pod_disruption_budget(&object, NOW)), want);
        }
    }
}
