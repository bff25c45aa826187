//! Printers of the `batch` group: Job and CronJob.

use serde_json::Value;

use super::cells::{self, condition_is_true, int, items, optional_int, optional_text, text};
use super::core::template_containers;
use super::{AGE, CONTAINERS, Column, IMAGES, NAME, Printer, age};

pub(super) const JOB: Printer = Printer::new(JOB_COLUMNS, job);
pub(super) const CRON_JOB: Printer = Printer::new(CRON_JOB_COLUMNS, cron_job);

const JOB_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Status", "Status of the job."),
    Column::string("Completions", "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs."),
    Column::string("Duration", "Time required to complete the job."),
    AGE,
    CONTAINERS.wide(),
    IMAGES.wide(),
    Column::string("Selector", "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
];

const CRON_JOB_COLUMNS: &[Column] = &[
    NAME,
    Column::string("Schedule", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    Column::string("Timezone", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones"),
    Column::boolean("Suspend", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false."),
    Column::integer("Active", "A list of pointers to currently running jobs."),
    Column::string("Last Schedule", "Information when was the last time the job was successfully scheduled."),
    AGE,
    CONTAINERS.wide(),
    IMAGES.wide(),
    Column::string("Selector", "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
];

fn job(object: &Value, now: i64) -> Vec<Value> {
    let (names, images) = template_containers(object, "/spec/template/spec");
    cells![
        cells::name(object),
        job_status(object),
        completions(object),
        duration(object, now),
        cells::age(object, now),
        names,
        images,
        cells::format_label_selector(object.pointer("/spec/selector")),
    ]
}

/// The first of Complete, Failed, Terminating, Suspended, FailureTarget that holds, else
/// Running.
fn job_status(object: &Value) -> &'static str {
    let conditions = items(object, "/status/conditions");
    if condition_is_true(conditions, "Complete") {
        "Complete"
    } else if condition_is_true(conditions, "Failed") {
        "Failed"
    } else if cells::is_deleting(object) {
        "Terminating"
    } else if condition_is_true(conditions, "Suspended") {
        "Suspended"
    } else if condition_is_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

/// `succeeded/completions`; a job without completions needs one success, from any of its
/// parallel pods. Upstream defaults both fields to 1 when neither is set, which prints the same.
fn completions(object: &Value) -> String {
    let succeeded = int(object, "/status/succeeded");
    match optional_int(object, "/spec/completions") {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => match optional_int(object, "/spec/parallelism").unwrap_or(1) {
            parallelism if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
            _ => format!("{succeeded}/1"),
        },
    }
}

/// From the start to completion, or to now while running; empty before the start.
fn duration(object: &Value, now: i64) -> String {
    let Some(start) = age::timestamp(object.pointer("/status/startTime")) else {
        return String::new();
    };
    let end = age::timestamp(object.pointer("/status/completionTime"))
        .unwrap_or(i128::from(now) * 1_000_000_000);
    age::human_duration(age::duration(end, start))
}

/// Suspend is a string (`True`, `False`) although its column is a boolean, as upstream's.
fn cron_job(object: &Value, now: i64) -> Vec<Value> {
    let last_schedule = match object.pointer("/status/lastScheduleTime") {
        Some(time) if !time.is_null() => age::since(Some(time), now),
        _ => "<none>".to_owned(),
    };
    // Suspend defaults to false.
    let suspend = cells::optional_bool(object, "/spec/suspend").unwrap_or(false);
    let (names, images) = template_containers(object, "/spec/jobTemplate/spec/template/spec");
    cells![
        cells::name(object),
        text(object, "/spec/schedule"),
        optional_text(object, "/spec/timeZone").unwrap_or("<none>"),
        cells::bool_text(suspend),
        cells::count(object, "/status/active"),
        last_schedule,
        cells::age(object, now),
        names,
        images,
        cells::format_label_selector(object.pointer("/spec/jobTemplate/spec/selector")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::{NOW, minutes_ago, seconds_ago};
    use serde_json::json;

    fn job_with(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "pi", "creationTimestamp": minutes_ago(10)},
               "spec": spec, "status": status})
    }

    #[test]
    fn prints_job_status_completions_and_duration() {
        let complete = json!([{"type": "Complete", "status": "True"}]);
        let cases = [
            (
                "complete",
                json!({"completions": 1, "parallelism": 1}),
                json!({"succeeded": 1, "startTime": minutes_ago(10),
                       "completionTime": seconds_ago(10 * 60 - 95), "conditions": complete}),
                ["Complete", "1/1", "95s"],
            ),
            (
                "running, duration to now",
                json!({"completions": 5, "parallelism": 2}),
                json!({"succeeded": 2, "startTime": minutes_ago(4), "active": 2}),
                ["Running", "2/5", "4m"],
            ),
            (
                "no completions, parallel",
                json!({"parallelism": 3}),
                json!({"startTime": minutes_ago(200)}),
                ["Running", "0/1 of 3", "3h20m"],
            ),
            ("not started", json!({}), json!({}), ["Running", "0/1", ""]),
            (
                "failed",
                json!({"completions": 1}),
                json!({"failed": 1, "startTime": minutes_ago(3),
                       "completionTime": minutes_ago(1),
                       "conditions": [{"type": "FailureTarget", "status": "True"},
                                      {"type": "Failed", "status": "True"}]}),
                ["Failed", "0/1", "2m"],
            ),
            (
                "suspended",
                json!({"completions": 1, "suspend": true}),
                json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
                ["Suspended", "0/1", ""],
            ),
            (
                "failure target only",
                json!({"completions": 1}),
                json!({"conditions": [{"type": "Complete", "status": "False"},
                                      {"type": "FailureTarget", "status": "True"}]}),
                ["FailureTarget", "0/1", ""],
            ),
        ];
        for (case, spec, status, [state, completions, duration]) in cases {
            let cells = job(&job_with(spec, status), NOW);
            assert_eq!(cells[1], state, "{case}: STATUS");
            assert_eq!(cells[2], completions, "{case}: COMPLETIONS");
            assert_eq!(cells[3], duration, "{case}: DURATION");
        }
    }

    #[test]
    fn deleting_job_is_terminating_unless_finished() {
        let mut deleting = job_with(json!({}), json!({}));
        deleting["metadata"]["deletionTimestamp"] = json!(minutes_ago(1));
        assert_eq!(job_status(&deleting), "Terminating");
        deleting["status"]["conditions"] = json!([{"type": "Complete", "status": "True"}]);
        assert_eq!(job_status(&deleting), "Complete");
    }

    #[test]
    fn prints_job_wide_cells() {
        let object = job_with(
            json!({"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                   "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5"}]}}}),
            json!({}),
        );
        let cells = job(&object, NOW);
        assert_eq!(cells[4], "10m");
        assert_eq!(cells[5], "pi");
        assert_eq!(cells[6], "perl:5");
        assert_eq!(cells[7], "batch.kubernetes.io/controller-uid=u1");
    }

    #[test]
    fn prints_cron_jobs() {
        let cases = [
            (
                json!({"schedule": "*/5 * * * *", "suspend": false,
                       "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                           {"name": "hello", "image": "busybox"}]}}}}}),
                json!({"active": [{"name": "hello-1"}], "lastScheduleTime": seconds_ago(75)}),
                json!([
                    "hello",
                    "*/5 * * * *",
                    "<none>",
                    "False",
                    1,
                    "75s",
                    "20m",
                    "hello",
                    "busybox",
                    "<none>"
                ]),
            ),
            (
                json!({"schedule": "0 3 * * *", "timeZone": "Etc/UTC", "suspend": true}),
                json!({}),
                json!([
                    "hello",
                    "0 3 * * *",
                    "Etc/UTC",
                    "True",
                    0,
                    "<none>",
                    "20m",
                    "",
                    "",
                    "<none>"
                ]),
            ),
            (
                json!({"schedule": "@hourly"}),
                json!({}),
                json!([
                    "hello", "@hourly", "<none>", "False", 0, "<none>", "20m", "", "", "<none>"
                ]),
            ),
        ];
        for (spec, status, want) in cases {
            let object = json!({"metadata": {"name": "hello", "creationTimestamp": minutes_ago(20)},
                                "spec": spec, "status": status});
            assert_eq!(Value::from(cron_job(&object, NOW)), want, "{object}");
        }
    }
}
