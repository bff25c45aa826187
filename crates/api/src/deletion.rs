//! What a DELETE does to an object (upstream's generic registry `Delete` with `BeforeDelete`
//! and the garbage collector's finalizers): remove it now, or keep it marked with a
//! `deletionTimestamp` until its finalizers are gone.
//!
//! The propagation policy picks the collector's finalizer: `Orphan` adds `orphan` (the
//! collector strips the owner references from the dependents first), `Foreground` adds
//! `foregroundDeletion` (the collector deletes the dependents first), `Background` adds
//! neither (the object goes now, the collector deletes the dependents after). Without a
//! policy, a collector finalizer already on the object stands, else the resource's default
//! policy decides. A pod whose grace period is running keeps its finalizers: the
//! options of a later delete cannot change them.

use serde_json::Value;

use crate::graceful::{self, Deletion};
use crate::registry::Resource;
use crate::status::ApiError;
use crate::validation::FieldError;

/// The finalizer with which an owner asks for its dependents to be orphaned.
pub const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer with which an owner waits for its dependents to be deleted first.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// `DeleteOptions.propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

/// What a resource's dependents get when no policy is asked for (upstream's
/// `GarbageCollectionPolicy` of the resource's strategy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultPolicy {
    OrphanDependents,
    DeleteDependents,
    /// The collector's finalizers never apply (events).
    Unsupported,
}

/// The default policy of a resource as served at `version`. Upstream kept `Orphan` where
/// it was the behaviour before the collector existed: the core `v1` ReplicationController,
/// `batch/v1` Jobs, and the beta versions of the workload kinds.
pub fn default_policy(resource: &Resource) -> DefaultPolicy {
    match (resource.group, resource.version, resource.plural) {
        ("" | "events.k8s.io", _, "events") => DefaultPolicy::Unsupported,
        ("", "v1", "replicationcontrollers") | ("batch", "v1", "jobs") => {
            DefaultPolicy::OrphanDependents
        }
        (
            "extensions" | "apps",
            "v1beta1" | "v1beta2",
            "replicasets" | "deployments" | "daemonsets" | "statefulsets",
        )
        | ("batch", "v1beta1" | "v2alpha1", "cronjobs") => DefaultPolicy::OrphanDependents,
        _ => DefaultPolicy::DeleteDependents,
    }
}

/// The propagation choices of a `DeleteOptions`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    pub propagation: Option<Propagation>,
    /// The deprecated `orphanDependents` (never set together with `propagation`).
    pub orphan_dependents: Option<bool>,
}

const POLICIES: &[&str] = &["Foreground", "Background", "Orphan", "nil"];

impl Options {
    /// Reads and checks `options` (a `DeleteOptions` as JSON): upstream's 422 for an unknown
    /// policy or for both fields set.
    pub fn parse(options: &Value) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let policy = options.get("propagationPolicy").filter(|p| !p.is_null());
        let orphan_dependents = options.get("orphanDependents").and_then(Value::as_bool);
        let policy_text = policy.map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned));
        if let (Some(_), Some(text)) = (orphan_dependents, &policy_text) {
            errors.push(FieldError::invalid(
                "propagationPolicy",
                text,
                "orphanDependents and deletionPropagation cannot be both set",
            ));
        }
        let propagation = match policy_text.as_deref() {
            None => None,
            Some("Orphan") => Some(Propagation::Orphan),
            Some("Background") => Some(Propagation::Background),
            Some("Foreground") => Some(Propagation::Foreground),
            Some(other) => {
                errors.push(FieldError::not_supported(
                    "propagationPolicy",
                    other,
                    POLICIES,
                ));
                None
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                &errors,
            ));
        }
        Ok(Self {
            propagation,
            orphan_dependents,
        })
    }

    /// Whether the object should carry `orphan`: the options first, then the finalizers it
    /// has, then the resource's default.
    fn orphans(&self, finalizers: &[String], default: DefaultPolicy) -> bool {
        if default == DefaultPolicy::Unsupported {
            return false;
        }
        if let Some(orphan) = self.orphan_dependents {
            return orphan;
        }
        if let Some(policy) = self.propagation {
            return policy == Propagation::Orphan;
        }
        match first_collector_finalizer(finalizers) {
            Some(finalizer) => finalizer == ORPHAN_FINALIZER,
            None => default == DefaultPolicy::OrphanDependents,
        }
    }

    /// Whether the object should carry `foregroundDeletion`: the options first, then the
    /// finalizers it has; never by default.
    fn deletes_in_foreground(&self, finalizers: &[String], default: DefaultPolicy) -> bool {
        if default == DefaultPolicy::Unsupported || self.orphan_dependents.is_some() {
            return false;
        }
        if let Some(policy) = self.propagation {
            return policy == Propagation::Foreground;
        }
        first_collector_finalizer(finalizers) == Some(FOREGROUND_FINALIZER)
    }
}

fn first_collector_finalizer(finalizers: &[String]) -> Option<&str> {
    finalizers
        .iter()
        .map(String::as_str)
        .find(|f| *f == ORPHAN_FINALIZER || *f == FOREGROUND_FINALIZER)
}

/// A `DeleteOptions` from a DELETE's query parameters, which upstream reads when the request
/// has no body: `gracePeriodSeconds`, `propagationPolicy` and `orphanDependents` (`dryRun`
/// is read from the query in any case). A value that does not parse is a 400.
pub fn options_from_query(param: impl Fn(&str) -> Option<String>) -> Result<Value, ApiError> {
    let mut options = serde_json::Map::new();
    if let Some(grace) = param("gracePeriodSeconds") {
        let seconds: i64 = grace.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "gracePeriodSeconds: invalid value {grace:?}: not an integer"
            ))
        })?;
        options.insert("gracePeriodSeconds".into(), seconds.into());
    }
    if let Some(policy) = param("propagationPolicy") {
        options.insert("propagationPolicy".into(), policy.into());
    }
    if let Some(orphan) = param("orphanDependents") {
        // Go's `strconv.ParseBool`, as upstream's parameter codec.
        let value = match orphan.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
            "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "orphanDependents: invalid value {orphan:?}: not a boolean"
                )));
            }
        };
        options.insert("orphanDependents".into(), value.into());
    }
    Ok(Value::Object(options))
}

/// The object's finalizers after a delete with `options`: the collector's two replaced by
/// the one (if any) the options, the object and the default call for. `None` when the set
/// stays the same.
pub fn collector_finalizers(
    finalizers: &[String],
    options: &Options,
    default: DefaultPolicy,
) -> Option<Vec<String>> {
    let mut new: Vec<String> = finalizers
        .iter()
        .filter(|f| *f != ORPHAN_FINALIZER && *f != FOREGROUND_FINALIZER)
        .cloned()
        .collect();
    if options.orphans(finalizers, default) {
        new.push(ORPHAN_FINALIZER.to_owned());
    }
    if options.deletes_in_foreground(finalizers, default) {
        new.push(FOREGROUND_FINALIZER.to_owned());
    }
    let same = new.len() == finalizers.len() && new.iter().all(|f| finalizers.contains(f));
    (!same).then_some(new)
}

/// How the deletion marks an object it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A pod's grace period starts: `deletionTimestamp` `seconds` from now,
    /// `deletionGracePeriodSeconds` `seconds`.
    Grace { seconds: i64 },
    /// A pod's running grace period shrinks from `from` to `to` seconds: the timestamp moves
    /// by the difference.
    Shorten { from: i64, to: i64 },
    /// Waiting for finalizers only: `deletionTimestamp` now unless an earlier one is set,
    /// `deletionGracePeriodSeconds` 0.
    Finalizing,
}

/// What a DELETE does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// A pod's grace period is already running and nothing shorter was asked: the object
    /// stays as stored (its finalizers too).
    Pending,
    /// The object is written with `mark` and, when `Some`, these finalizers; it stays.
    Keep {
        mark: Mark,
        finalizers: Option<Vec<String>>,
    },
    /// The object is removed now.
    Remove,
}

fn string_list(object: &Value, pointer: &str) -> Vec<String> {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The plan for deleting `object` of `resource` with `options` (the `DeleteOptions` as JSON)
/// and their checked propagation choices.
pub fn plan(resource: &Resource, object: &Value, options: &Value, choices: &Options) -> Plan {
    let graceful = if resource.group.is_empty() && resource.plural == "pods" {
        graceful::pod_deletion(object, options)
    } else {
        Deletion::Now
    };
    let grace = match graceful {
        Deletion::Pending => return Plan::Pending,
        Deletion::Mark { seconds } => Some(Mark::Grace { seconds }),
        Deletion::Shorten { from, to } => Some(Mark::Shorten { from, to }),
        Deletion::Now => None,
    };
    let existing = string_list(object, "/metadata/finalizers");
    let finalizers = collector_finalizers(&existing, choices, default_policy(resource));
    // A namespace also waits for the finalizers of its spec (the namespace controller's).
    let spec_finalizers = resource.group.is_empty()
        && resource.plural == "namespaces"
        && !string_list(object, "/spec/finalizers").is_empty();
    let pending = !finalizers.as_ref().unwrap_or(&existing).is_empty() || spec_finalizers;
    let mark = match grace {
        Some(mark @ Mark::Grace { .. }) => mark,
        Some(mark @ Mark::Shorten { to, .. }) if to > 0 || pending => mark,
        _ if pending => Mark::Finalizing,
        _ => return Plan::Remove,
    };
    Plan::Keep { mark, finalizers }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry;

    fn resource(group: &str, version: &str, plural: &str) -> &'static Resource {
        registry::find(group, version, plural).expect("a served resource")
    }

    fn object(finalizers: &[&str]) -> Value {
        json!({"metadata": {"name": "x", "finalizers": finalizers}})
    }

    fn choices(options: &Value) -> Options {
        Options::parse(options).expect("valid options")
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn policies_are_checked_as_upstream_words_it() {
        let both =
            Options::parse(&json!({"orphanDependents": true, "propagationPolicy": "Foreground"}))
                .unwrap_err();
        assert_eq!(both.code, 422);
        assert_eq!(
            both.message,
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"Foreground\": orphanDependents and deletionPropagation cannot be both set"
        );
        let unknown = Options::parse(&json!({"propagationPolicy": "Sideways"})).unwrap_err();
        assert_eq!(unknown.code, 422);
        assert_eq!(
            unknown.message,
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Sideways\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        );
        assert_eq!(
            choices(&json!({"propagationPolicy": null})),
            Options::default()
        );
        assert_eq!(
            choices(&json!({"orphanDependents": false})).orphan_dependents,
            Some(false)
        );
    }

    #[test]
    fn query_parameters_make_options() {
        let query = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            options_from_query(query(&[
                ("propagationPolicy", "Orphan"),
                ("gracePeriodSeconds", "5")
            ]))
            .unwrap(),
            json!({"propagationPolicy": "Orphan", "gracePeriodSeconds": 5})
        );
        assert_eq!(
            options_from_query(query(&[("orphanDependents", "False")])).unwrap(),
            json!({"orphanDependents": false})
        );
        assert_eq!(options_from_query(query(&[])).unwrap(), json!({}));
        let bad = options_from_query(query(&[("gracePeriodSeconds", "soon")])).unwrap_err();
        assert_eq!(bad.code, 400);
        let bad = options_from_query(query(&[("orphanDependents", "maybe")])).unwrap_err();
        assert_eq!(bad.code, 400);
    }

    #[test]
    fn default_policies_follow_upstream_per_resource() {
        let cases = [
            ("apps", "v1", "replicasets", DefaultPolicy::DeleteDependents),
            ("apps", "v1", "deployments", DefaultPolicy::DeleteDependents),
            ("", "v1", "configmaps", DefaultPolicy::DeleteDependents),
            (
                "",
                "v1",
                "replicationcontrollers",
                DefaultPolicy::OrphanDependents,
            ),
            ("batch", "v1", "jobs", DefaultPolicy::OrphanDependents),
            ("batch", "v1", "cronjobs", DefaultPolicy::DeleteDependents),
            ("", "v1", "events", DefaultPolicy::Unsupported),
        ];
        for (group, version, plural, want) in cases {
            assert_eq!(
                default_policy(resource(group, version, plural)),
                want,
                "{group}/{version} {plural}"
            );
        }
    }

    #[test]
    fn finalizers_follow_options_then_object_then_default() {
        let delete = DefaultPolicy::DeleteDependents;
        let orphan = DefaultPolicy::OrphanDependents;
        // The finalizers before, the options, the default, the finalizers after if changed.
        type Case = (
            &'static [&'static str],
            Value,
            DefaultPolicy,
            Option<&'static [&'static str]>,
        );
        let cases: &[Case] = &[
            // Background, or no policy on a DeleteDependents resource: nothing to add.
            (&[], json!({}), delete, None),
            (
                &[],
                json!({"propagationPolicy": "Background"}),
                delete,
                None,
            ),
            (
                &["a"],
                json!({"propagationPolicy": "Orphan"}),
                delete,
                Some(&["a", "orphan"]),
            ),
            (
                &[],
                json!({"propagationPolicy": "Foreground"}),
                delete,
                Some(&["foregroundDeletion"]),
            ),
            (
                &[],
                json!({"orphanDependents": true}),
                delete,
                Some(&["orphan"]),
            ),
            (
                &["orphan"],
                json!({"orphanDependents": false}),
                orphan,
                Some(&[]),
            ),
            // The default of an orphaning resource, unless the options say otherwise.
            (&[], json!({}), orphan, Some(&["orphan"])),
            (
                &[],
                json!({"propagationPolicy": "Background"}),
                orphan,
                None,
            ),
            // A collector finalizer on the object stands when no policy is asked for...
            (&["foregroundDeletion"], json!({}), orphan, None),
            (&["orphan"], json!({}), delete, None),
            // ...and is swapped when another one is.
            (
                &["a", "orphan"],
                json!({"propagationPolicy": "Foreground"}),
                delete,
                Some(&["a", "foregroundDeletion"]),
            ),
            (
                &["foregroundDeletion"],
                json!({"propagationPolicy": "Background"}),
                delete,
                Some(&[]),
            ),
            // Events never carry them.
            (
                &["orphan"],
                json!({"propagationPolicy": "Orphan"}),
                DefaultPolicy::Unsupported,
                Some(&[]),
            ),
        ];
        for (existing, options, default, want) in cases {
            let got = collector_finalizers(&strings(existing), &choices(options), *default);
            assert_eq!(
                got,
                want.map(strings),
                "{existing:?} with {options} ({default:?})"
            );
        }
    }

    #[test]
    fn plans_combine_finalizers_with_graceful_deletion() {
        let rs = resource("apps", "v1", "replicasets");
        let background = json!({"propagationPolicy": "Background"});
        assert_eq!(
            plan(rs, &object(&[]), &background, &choices(&background)),
            Plan::Remove
        );
        let orphan = json!({"propagationPolicy": "Orphan"});
        assert_eq!(
            plan(rs, &object(&[]), &orphan, &choices(&orphan)),
            Plan::Keep {
                mark: Mark::Finalizing,
                finalizers: Some(strings(&["orphan"]))
            }
        );
        // A second delete that drops the only finalizer removes the object now.
        let mut marked = object(&["orphan"]);
        marked["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(
            plan(rs, &marked, &background, &choices(&background)),
            Plan::Remove
        );
        // Other finalizers keep it.
        assert_eq!(
            plan(rs, &object(&["x"]), &json!({}), &Options::default()),
            Plan::Keep {
                mark: Mark::Finalizing,
                finalizers: None
            }
        );

        let pods = resource("", "v1", "pods");
        let mut running = json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": "n", "terminationGracePeriodSeconds": 30},
            "status": {"phase": "Running"},
        });
        assert_eq!(
            plan(pods, &running, &orphan, &choices(&orphan)),
            Plan::Keep {
                mark: Mark::Grace { seconds: 30 },
                finalizers: Some(strings(&["orphan"]))
            }
        );
        // While the grace period runs, the options cannot change the finalizers.
        running["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:30Z");
        running["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        let foreground = json!({"propagationPolicy": "Foreground"});
        assert_eq!(
            plan(pods, &running, &foreground, &choices(&foreground)),
            Plan::Pending
        );
        // Shortened to 0: removed, unless a finalizer holds it.
        let now = json!({"gracePeriodSeconds": 0});
        assert_eq!(plan(pods, &running, &now, &choices(&now)), Plan::Remove);
        let now_orphan = json!({"gracePeriodSeconds": 0, "propagationPolicy": "Orphan"});
        assert_eq!(
            plan(pods, &running, &now_orphan, &choices(&now_orphan)),
            Plan::Keep {
                mark: Mark::Shorten { from: 30, to: 0 },
                finalizers: Some(strings(&["orphan"]))
            }
        );
    }

    #[test]
    fn namespaces_wait_for_their_spec_finalizers() {
        let namespaces = resource("", "v1", "namespaces");
        let namespace = json!({"metadata": {"name": "ns"}, "spec": {"finalizers": ["kubernetes"]}});
        assert_eq!(
            plan(namespaces, &namespace, &json!({}), &Options::default()),
            Plan::Keep {
                mark: Mark::Finalizing,
                finalizers: None
            }
        );
        let emptied = json!({"metadata": {"name": "ns"}, "spec": {"finalizers": []}});
        assert_eq!(
            plan(namespaces, &emptied, &json!({}), &Options::default()),
            Plan::Remove
        );
    }
}
