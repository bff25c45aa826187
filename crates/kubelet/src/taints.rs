//! `--node-taint` (upstream's `--register-with-taints`) and `--node-label` values: parsed and
//! checked with upstream's rules and words, so a bad flag fails at start, not at registration.

use std::collections::BTreeMap;

use cox_api::validation::{label_value, qualified_name};
use k8s_openapi::api::core::v1::Taint;

/// The effects a taint may have.
pub const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Upstream's `parseTaint` wording: `invalid taint spec: <spec>[, <problems>]`.
    #[error("invalid taint spec: {spec}{}", details(.problems))]
    TaintSpec { spec: String, problems: Vec<String> },
    #[error("invalid taint effect: {effect}, unsupported taint effect")]
    TaintEffect { effect: String },
    /// The API server refuses a Node with two taints of the same key and effect.
    #[error("taints must be unique by key and effect pair: {key}:{effect}")]
    DuplicateTaint { key: String, effect: String },
    #[error("invalid node label {label:?}{}", details(.problems))]
    Label {
        label: String,
        problems: Vec<String>,
    },
}

fn details(problems: &[String]) -> String {
    if problems.is_empty() {
        String::new()
    } else {
        format!(", {}", problems.join("; "))
    }
}

/// Parses one taint, `<key>=<value>:<effect>` or `<key>:<effect>`, as upstream's `parseTaint`
/// does (the key a qualified name, the value a label value, the effect one of
/// [`TAINT_EFFECTS`]). Upstream also accepts a bare `<key>`, which the API server then refuses
/// for its missing effect; that is refused here.
pub fn parse_taint(spec: &str) -> Result<Taint, ParseError> {
    let spec_error = |problems: Vec<String>| ParseError::TaintSpec {
        spec: spec.to_owned(),
        problems,
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (key_value, effect) = match parts.as_slice() {
        [key_value, effect] => (*key_value, *effect),
        [_] => {
            return Err(spec_error(vec![
                "an effect is required (NoSchedule, PreferNoSchedule or NoExecute)".to_owned(),
            ]));
        }
        _ => return Err(spec_error(Vec::new())),
    };
    if !TAINT_EFFECTS.contains(&effect) {
        return Err(ParseError::TaintEffect {
            effect: effect.to_owned(),
        });
    }
    let key_value: Vec<&str> = key_value.split('=').collect();
    let (key, value) = match key_value.as_slice() {
        [key] => (*key, None),
        [key, value] => {
            let problems = label_value(value);
            if !problems.is_empty() {
                return Err(spec_error(problems));
            }
            (*key, Some(*value))
        }
        _ => return Err(spec_error(Vec::new())),
    };
    let problems = qualified_name(key);
    if !problems.is_empty() {
        return Err(spec_error(problems));
    }
    Ok(Taint {
        key: key.to_owned(),
        // Upstream registers `key:Effect` with an empty value, which the API omits.
        value: value.filter(|v| !v.is_empty()).map(str::to_owned),
        effect: effect.to_owned(),
        time_added: None,
    })
}

/// Parses every `--node-taint`; each may also hold several, comma separated, as upstream's
/// flag does.
pub fn parse_taints<S: AsRef<str>>(specs: &[S]) -> Result<Vec<Taint>, ParseError> {
    let mut taints: Vec<Taint> = Vec::new();
    for spec in specs.iter().flat_map(|s| s.as_ref().split(',')) {
        if spec.trim().is_empty() {
            continue;
        }
        let taint = parse_taint(spec)?;
        if taints
            .iter()
            .any(|t| t.key == taint.key && t.effect == taint.effect)
        {
            return Err(ParseError::DuplicateTaint {
                key: taint.key,
                effect: taint.effect,
            });
        }
        taints.push(taint);
    }
    Ok(taints)
}

/// Parses `--node-label` values, `<key>=<value>` (the value may be empty), checked as label
/// keys and values; later ones win.
pub fn parse_labels<S: AsRef<str>>(specs: &[S]) -> Result<BTreeMap<String, String>, ParseError> {
    let mut labels = BTreeMap::new();
    for spec in specs {
        let spec = spec.as_ref();
        let label_error = |problems: Vec<String>| ParseError::Label {
            label: spec.to_owned(),
            problems,
        };
        let Some((key, value)) = spec.split_once('=') else {
            return Err(label_error(vec!["must be <key>=<value>".to_owned()]));
        };
        let mut problems = qualified_name(key);
        problems.extend(label_value(value));
        if !problems.is_empty() {
            return Err(label_error(problems));
        }
        labels.insert(key.to_owned(), value.to_owned());
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect: effect.into(),
            time_added: None,
        }
    }

    #[test]
    fn valid_taints() {
        let cases = [
            (
                "dedicated=infra:NoSchedule",
                taint("dedicated", Some("infra"), "NoSchedule"),
            ),
            (
                "node-role.kubernetes.io/control-plane:NoSchedule",
                taint("node-role.kubernetes.io/control-plane", None, "NoSchedule"),
            ),
            (
                "CriticalAddonsOnly=true:NoExecute",
                taint("CriticalAddonsOnly", Some("true"), "NoExecute"),
            ),
            (
                "gpu=:PreferNoSchedule",
                taint("gpu", None, "PreferNoSchedule"),
            ),
            (
                "example.com/a_b.c=x-y_z.1:NoSchedule",
                taint("example.com/a_b.c", Some("x-y_z.1"), "NoSchedule"),
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_taint(spec), Ok(want), "{spec}");
        }
    }

    #[test]
    fn invalid_taints_in_upstreams_words() {
        let cases = [
            (
                "key=value",
                "invalid taint spec: key=value, an effect is required",
            ),
            ("a:b:NoSchedule", "invalid taint spec: a:b:NoSchedule"),
            (
                "key=value:Sometimes",
                "invalid taint effect: Sometimes, unsupported taint effect",
            ),
            ("key=value:noschedule", "invalid taint effect: noschedule"),
            ("a=b=c:NoSchedule", "invalid taint spec: a=b=c:NoSchedule"),
            (
                "=value:NoSchedule",
                "invalid taint spec: =value:NoSchedule, name part must be non-empty",
            ),
            (
                "bad key:NoSchedule",
                "invalid taint spec: bad key:NoSchedule, name part must consist of alphanumeric",
            ),
            (
                "Example.com/key:NoSchedule",
                "prefix part a lowercase RFC 1123 subdomain",
            ),
            (
                "key=-bad:NoSchedule",
                "invalid taint spec: key=-bad:NoSchedule, a valid label must be an empty string",
            ),
        ];
        for (spec, want) in cases {
            let got = parse_taint(spec).map_err(|e| e.to_string());
            assert!(
                got.as_ref().is_err_and(|e| e.contains(want)),
                "{spec}: {got:?} should contain {want:?}"
            );
        }
        let long = format!("key={}:NoSchedule", "v".repeat(64));
        assert!(
            parse_taint(&long)
                .unwrap_err()
                .to_string()
                .contains("must be no more than 63 characters")
        );
    }

    #[test]
    fn several_taints_comma_separated_and_unique_by_key_and_effect() {
        let taints = parse_taints(&["a=1:NoSchedule,b:NoExecute", "a=2:NoExecute"]).unwrap();
        assert_eq!(
            taints,
            [
                taint("a", Some("1"), "NoSchedule"),
                taint("b", None, "NoExecute"),
                taint("a", Some("2"), "NoExecute"),
            ]
        );
        assert_eq!(
            parse_taints(&["a=1:NoSchedule", "a=2:NoSchedule"]),
            Err(ParseError::DuplicateTaint {
                key: "a".into(),
                effect: "NoSchedule".into()
            })
        );
        assert_eq!(parse_taints::<&str>(&[]), Ok(Vec::new()));
    }

    #[test]
    fn labels() {
        let labels = parse_labels(&["team=rowing", "empty=", "team=sculling"]).unwrap();
        assert_eq!(labels.get("team").map(String::as_str), Some("sculling"));
        assert_eq!(labels.get("empty").map(String::as_str), Some(""));
        for bad in ["novalue", "bad key=x", "k=bad value"] {
            assert!(parse_labels(&[bad]).is_err(), "{bad}");
        }
    }
}
