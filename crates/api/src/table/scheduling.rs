//! The PriorityClass printer (`scheduling.k8s.io`).

use serde_json::Value;

use super::cells::{self, int, optional_bool, optional_text};
use super::{AGE, Column, NAME, Printer};

pub(super) const PRIORITY_CLASS: Printer = Printer::new(PRIORITY_CLASS_COLUMNS, priority_class);

const PRIORITY_CLASS_COLUMNS: &[Column] = &[
    NAME,
    Column::integer(
        "Value",
        "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.",
    ),
    Column::boolean(
        "Global-Default",
        "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.",
    ),
    AGE,
    Column::string(
        "PreemptionPolicy",
        "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.",
    ),
];

/// PreemptionPolicy follows Age although it is not a wide column: upstream appends it only to
/// wide rows, and the server's rows are always wide.
fn priority_class(object: &Value, now: i64) -> Vec<Value> {
    cells![
        cells::name(object),
        int(object, "/value"),
        optional_bool(object, "/globalDefault").unwrap_or(false),
        cells::age(object, now),
        // The policy defaults to PreemptLowerPriority.
        optional_text(object, "/preemptionPolicy").unwrap_or("PreemptLowerPriority"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago};
    use serde_json::json;

    #[test]
    fn prints_value_default_and_policy() {
        let cases = [
            (
                json!({"value": 2_000_001_000, "globalDefault": false,
                       "preemptionPolicy": "PreemptLowerPriority"}),
                json!(["c", 2_000_001_000, false, "3h", "PreemptLowerPriority"]),
            ),
            (
                json!({"value": -5, "globalDefault": true, "preemptionPolicy": "Never"}),
                json!(["c", -5, true, "3h", "Never"]),
            ),
            (
                json!({"value": 7}),
                json!(["c", 7, false, "3h", "PreemptLowerPriority"]),
            ),
        ];
        for (mut object, want) in cases {
            object["metadata"] = json!({"name": "c", "creationTimestamp": minutes_ago(180)});
            assert_eq!(Value::from(priority_class(&object, NOW)), want, "{object}");
        }
    }
}
