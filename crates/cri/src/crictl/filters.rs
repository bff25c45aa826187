//! Choosing objects from the command line: IDs given as unique prefixes, `--label key=value`
//! selectors, and `--name`/`--namespace` patterns. Plain functions over lists, so that they are
//! tested without a runtime.

use std::collections::HashMap;
use std::fmt;

/// What an ID names, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Container,
    Pod,
    Image,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Container => "container",
            Kind::Pod => "pod sandbox",
            Kind::Image => "image",
        })
    }
}

/// An ID argument that names no object, or more than one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ResolveError {
    #[error("{kind} ID cannot be empty")]
    Empty { kind: Kind },
    #[error("no {kind} found with ID or ID prefix {prefix:?}")]
    NotFound { kind: Kind, prefix: String },
    #[error("{kind} ID prefix {prefix:?} is ambiguous: it matches {}", describe_matches(.matches))]
    Ambiguous {
        kind: Kind,
        prefix: String,
        matches: Vec<String>,
    },
}

fn describe_matches(matches: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut shown: Vec<String> = matches
        .iter()
        .take(SHOWN)
        .map(|id| super::output::truncate_id(id, ""))
        .collect();
    if matches.len() > SHOWN {
        shown.push(format!("and {} more", matches.len() - SHOWN));
    }
    shown.join(", ")
}

/// The one ID in `ids` that equals `prefix` or, failing that, starts with it.
pub(crate) fn resolve_prefix<'a>(
    kind: Kind,
    prefix: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<String, ResolveError> {
    if prefix.is_empty() {
        return Err(ResolveError::Empty { kind });
    }
    let mut matches: Vec<&str> = Vec::new();
    for id in ids {
        if id == prefix {
            return Ok(id.to_string());
        }
        if id.starts_with(prefix) && !matches.contains(&id) {
            matches.push(id);
        }
    }
    match matches.as_slice() {
        [] => Err(ResolveError::NotFound {
            kind,
            prefix: prefix.to_string(),
        }),
        [only] => Ok((*only).to_string()),
        _ => Err(ResolveError::Ambiguous {
            kind,
            prefix: prefix.to_string(),
            matches: matches.into_iter().map(str::to_string).collect(),
        }),
    }
}

/// Image IDs are usually written without their `sha256:`; compare them without it.
pub(crate) fn resolve_image_prefix<'a>(
    prefix: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<String, ResolveError> {
    const ALGORITHM: &str = "sha256:";
    let bare = prefix.strip_prefix(ALGORITHM).unwrap_or(prefix);
    let ids: Vec<&str> = ids.into_iter().collect();
    let bare_ids = ids
        .iter()
        .map(|id| id.strip_prefix(ALGORITHM).unwrap_or(id));
    let found = resolve_prefix(Kind::Image, bare, bare_ids).map_err(|error| match error {
        ResolveError::NotFound { kind, .. } => ResolveError::NotFound {
            kind,
            prefix: prefix.to_string(),
        },
        ResolveError::Ambiguous { kind, matches, .. } => ResolveError::Ambiguous {
            kind,
            prefix: prefix.to_string(),
            matches,
        },
        other => other,
    })?;
    // Give back the ID as the runtime wrote it.
    Ok(ids
        .into_iter()
        .find(|id| id.strip_prefix(ALGORITHM).unwrap_or(id) == found)
        .unwrap_or(&found)
        .to_string())
}

/// `--label key=value` flags as a selector; each must have exactly one `=`.
pub(crate) fn parse_labels(flags: &[String]) -> anyhow::Result<HashMap<String, String>> {
    let mut labels = HashMap::new();
    for flag in flags {
        let mut parts = flag.split('=');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(key), Some(value), None) => {
                labels.insert(key.to_string(), value.to_string());
            }
            _ => anyhow::bail!("incorrectly specified label: {flag}"),
        }
    }
    Ok(labels)
}

/// A `--name`/`--namespace` pattern. crictl takes a Go regular expression matched anywhere in
/// the name; this supports the part of that syntax names need — literals, `.`, the quantifiers
/// `*`, `+`, `?`, the anchors `^` and `$`, and `\` escapes — and refuses the rest rather than
/// matching something else.
#[derive(Debug, Clone)]
pub(crate) struct NamePattern {
    anchored_start: bool,
    atoms: Vec<(Atom, Repeat)>,
    anchored_end: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    Any,
    Char(char),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    One,
    ZeroOrMore,
    OneOrMore,
    ZeroOrOne,
}

impl NamePattern {
    pub(crate) fn new(pattern: &str) -> anyhow::Result<NamePattern> {
        let unsupported = |what: char| {
            anyhow::anyhow!(
                "invalid regular expression {pattern:?}: {what:?} is not supported (use literals, ., *, +, ?, ^, $)"
            )
        };
        let mut chars = pattern.chars().peekable();
        let anchored_start = chars.next_if_eq(&'^').is_some();
        let mut atoms: Vec<(Atom, Repeat)> = Vec::new();
        let mut anchored_end = false;
        while let Some(c) = chars.next() {
            let atom = match c {
                '$' if chars.peek().is_none() => {
                    anchored_end = true;
                    break;
                }
                '.' => Atom::Any,
                '\\' => Atom::Char(chars.next().ok_or_else(|| {
                    anyhow::anyhow!("invalid regular expression {pattern:?}: trailing backslash")
                })?),
                '*' | '+' | '?' => {
                    anyhow::bail!(
                        "invalid regular expression {pattern:?}: missing argument to repetition operator {c:?}"
                    )
                }
                '[' | ']' | '(' | ')' | '{' | '}' | '|' | '^' | '$' => {
                    return Err(unsupported(c));
                }
                c => Atom::Char(c),
            };
            let repeat = match chars.peek() {
                Some('*') => Repeat::ZeroOrMore,
                Some('+') => Repeat::OneOrMore,
                Some('?') => Repeat::ZeroOrOne,
                _ => Repeat::One,
            };
            if repeat != Repeat::One {
                chars.next();
            }
            atoms.push((atom, repeat));
        }
        Ok(NamePattern {
            anchored_start,
            atoms,
            anchored_end,
        })
    }

    /// Whether the pattern matches somewhere in `text`.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        if self.anchored_start {
            return self.match_here(0, &chars, 0);
        }
        (0..=chars.len()).any(|start| self.match_here(0, &chars, start))
    }

    fn match_here(&self, atom: usize, text: &[char], at: usize) -> bool {
        let Some(&(current, repeat)) = self.atoms.get(atom) else {
            return !self.anchored_end || at == text.len();
        };
        let fits = |position: usize| {
            text.get(position).is_some_and(|c| match current {
                Atom::Any => *c != '\n',
                Atom::Char(expected) => *c == expected,
            })
        };
        match repeat {
            Repeat::One => fits(at) && self.match_here(atom + 1, text, at + 1),
            Repeat::ZeroOrOne => {
                (fits(at) && self.match_here(atom + 1, text, at + 1))
                    || self.match_here(atom + 1, text, at)
            }
            Repeat::ZeroOrMore | Repeat::OneOrMore => {
                let minimum = usize::from(repeat == Repeat::OneOrMore);
                let mut longest = 0;
                while fits(at + longest) {
                    longest += 1;
                }
                (minimum..=longest)
                    .rev()
                    .any(|count| self.match_here(atom + 1, text, at + count))
            }
        }
    }
}

/// An optional pattern: no flag matches everything.
pub(crate) fn optional_pattern(pattern: Option<&str>) -> anyhow::Result<Option<NamePattern>> {
    pattern
        .filter(|pattern| !pattern.is_empty())
        .map(NamePattern::new)
        .transpose()
}

/// Whether an optional pattern matches `text`.
pub(crate) fn pattern_matches(pattern: Option<&NamePattern>, text: &str) -> bool {
    pattern.is_none_or(|pattern| pattern.is_match(text))
}

/// How many of `total` items (newest first) `--latest` and `--last N` keep.
pub(crate) fn keep_count(total: usize, latest: bool, last: usize) -> usize {
    let mut count = total;
    if latest {
        count = 1;
    }
    if last > 0 {
        count = last;
    }
    count.min(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: [&str; 4] = [
        "4dd1b3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2",
        "4dd2aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889",
        "9f00d",
        "9f00",
    ];

    #[test]
    fn unique_prefix_resolves() {
        assert_eq!(
            resolve_prefix(Kind::Container, "4dd1", IDS),
            Ok(IDS[0].to_string())
        );
        assert_eq!(
            resolve_prefix(Kind::Container, IDS[1], IDS),
            Ok(IDS[1].to_string())
        );
    }

    #[test]
    fn exact_match_beats_longer_ids_with_that_prefix() {
        assert_eq!(
            resolve_prefix(Kind::Pod, "9f00", IDS),
            Ok("9f00".to_string())
        );
    }

    #[test]
    fn ambiguous_and_missing_prefixes_fail_clearly() {
        let ambiguous = resolve_prefix(Kind::Container, "4dd", IDS);
        let Err(error) = ambiguous else {
            panic!("4dd is ambiguous")
        };
        assert_eq!(
            error.to_string(),
            "container ID prefix \"4dd\" is ambiguous: it matches 4dd1b3b4c5d6e, 4dd2aaaabbbbc"
        );
        assert_eq!(
            resolve_prefix(Kind::Pod, "abc", IDS).map_err(|e| e.to_string()),
            Err("no pod sandbox found with ID or ID prefix \"abc\"".to_string())
        );
        assert_eq!(
            resolve_prefix(Kind::Pod, "", IDS),
            Err(ResolveError::Empty { kind: Kind::Pod })
        );
    }

    #[test]
    fn many_matches_are_summarised() {
        let ids: Vec<String> = (0..8).map(|n| format!("ab{n}")).collect();
        let error = resolve_prefix(Kind::Container, "ab", ids.iter().map(String::as_str))
            .expect_err("ambiguous");
        assert!(error.to_string().ends_with("ab4, and 3 more"), "{error}");
    }

    #[test]
    fn image_prefixes_ignore_the_algorithm() {
        let ids = ["sha256:aaaa1111", "sha256:bbbb2222"];
        assert_eq!(
            resolve_image_prefix("aaaa", ids),
            Ok("sha256:aaaa1111".to_string())
        );
        assert_eq!(
            resolve_image_prefix("sha256:bb", ids),
            Ok("sha256:bbbb2222".to_string())
        );
        assert_eq!(
            resolve_image_prefix("cc", ids).map_err(|e| e.to_string()),
            Err("no image found with ID or ID prefix \"cc\"".to_string())
        );
    }

    #[test]
    fn labels_parse() {
        let selector =
            parse_labels(&["app=web".to_string(), "tier=".to_string()]).expect("valid labels");
        assert_eq!(
            selector,
            HashMap::from([
                ("app".to_string(), "web".to_string()),
                ("tier".to_string(), String::new()),
            ])
        );
        for bad in ["app", "a=b=c"] {
            let error = parse_labels(&[bad.to_string()]).expect_err("invalid");
            assert_eq!(
                error.to_string(),
                format!("incorrectly specified label: {bad}")
            );
        }
    }

    #[test]
    fn name_patterns_match_like_unanchored_regexps() {
        let cases = [
            ("web", "my-web-1", true),
            ("web", "api", false),
            ("^web", "my-web", false),
            ("^web", "web-1", true),
            ("web$", "web-1", false),
            ("web$", "my-web", true),
            ("^web$", "web", true),
            ("w.b", "wxb", true),
            ("^we*b$", "wb", true),
            ("^we+b$", "wb", false),
            ("^we+b$", "weeeb", true),
            ("^colou?r$", "color", true),
            ("^a.*z$", "abcz", true),
            ("^a.*z$", "abc", false),
            ("kube\\.system", "kube.system", true),
            ("kube\\.system", "kubexsystem", false),
            ("", "anything", true),
        ];
        for (pattern, text, expected) in cases {
            let compiled = NamePattern::new(pattern).expect("supported pattern");
            assert_eq!(compiled.is_match(text), expected, "{pattern:?} on {text:?}");
        }
    }

    #[test]
    fn unsupported_patterns_are_refused() {
        for pattern in ["a|b", "[ab]", "(a)", "*a", "a{2}", "a\\"] {
            assert!(NamePattern::new(pattern).is_err(), "{pattern:?}");
        }
        assert!(optional_pattern(None).expect("no pattern").is_none());
        assert!(pattern_matches(None, "x"));
    }

    #[test]
    fn latest_and_last() {
        assert_eq!(keep_count(5, false, 0), 5);
        assert_eq!(keep_count(5, true, 0), 1);
        assert_eq!(keep_count(5, true, 3), 3);
        assert_eq!(keep_count(2, false, 3), 2);
        assert_eq!(keep_count(0, true, 0), 0);
    }
}
