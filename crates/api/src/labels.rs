//! Label selectors: the string form (`?labelSelector=`, `kubectl -l`) with every operator, the
//! structured `metav1.LabelSelector` of workloads, matching, and upstream's canonical string.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::validation;

/// A JSON map of strings (`metadata.labels`) as labels; non-string values are skipped.
pub fn from_json(labels: Option<&Value>) -> BTreeMap<String, String> {
    labels
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One condition on one label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    /// Sorted and without duplicates.
    pub values: Vec<String>,
}

impl Requirement {
    fn new(key: &str, operator: Operator, mut values: Vec<String>) -> Result<Self, String> {
        let problems = validation::qualified_name(key);
        if !problems.is_empty() {
            return Err(format!(
                "key: Invalid value: {key:?}: {}",
                problems.join("; ")
            ));
        }
        match operator {
            Operator::Equals | Operator::NotEquals if values.len() != 1 => {
                return Err("exact-match compatibility requires one single value".into());
            }
            Operator::In | Operator::NotIn if values.is_empty() => {
                return Err("for 'in', 'notin' operators, values set can't be empty".into());
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                return Err("values set must be empty for exists and does not exist".into());
            }
            Operator::GreaterThan | Operator::LessThan
                if values.len() != 1 || values[0].parse::<i64>().is_err() =>
            {
                return Err(
                    "for 'Gt', 'Lt' operators, exactly one integer value is required".into(),
                );
            }
            _ => {}
        }
        if !matches!(operator, Operator::GreaterThan | Operator::LessThan) {
            for value in &values {
                let problems = validation::label_value(value);
                if !problems.is_empty() {
                    return Err(format!(
                        "values[0][{key}]: Invalid value: {value:?}: {}",
                        problems.join("; ")
                    ));
                }
            }
        }
        values.sort();
        values.dedup();
        Ok(Self {
            key: key.to_owned(),
            operator,
            values,
        })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotEquals | Operator::NotIn => {
                !value.is_some_and(|v| self.values.contains(v))
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(have), Some(want)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = self.values.join(",");
        match self.operator {
            Operator::Equals => write!(f, "{}={values}", self.key),
            Operator::NotEquals => write!(f, "{}!={values}", self.key),
            Operator::In => write!(f, "{} in ({values})", self.key),
            Operator::NotIn => write!(f, "{} notin ({values})", self.key),
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::GreaterThan => write!(f, "{}>{values}", self.key),
            Operator::LessThan => write!(f, "{}<{values}", self.key),
        }
    }
}

/// A conjunction of requirements. No requirement selects everything; see [`Selector::nothing`]
/// for the opposite.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl Selector {
    pub fn everything() -> Self {
        Self::default()
    }

    /// Selects no object (a workload with a null selector).
    pub fn nothing() -> Self {
        Self {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches against an object's `metadata.labels` (a JSON map of strings).
    pub fn matches_json(&self, labels: Option<&Value>) -> bool {
        self.matches(&from_json(labels))
    }

    /// Parses the string form, e.g. `app=web,tier in (a,b),!canary`.
    pub fn parse(input: &str) -> Result<Self, String> {
        let tokens = tokenize(input)?;
        let mut parser = Parser { tokens, at: 0 };
        let mut requirements = Vec::new();
        if parser.tokens.is_empty() {
            return Ok(Self::everything());
        }
        loop {
            requirements.push(parser.requirement()?);
            match parser.next() {
                None => break,
                Some(Token::Comma) => continue,
                Some(other) => {
                    return Err(format!("found '{other}', expected: ',' or 'end of string'"));
                }
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self {
            requirements,
            nothing: false,
        })
    }

    /// Converts a `metav1.LabelSelector` (`matchLabels`, `matchExpressions`). `null` selects
    /// nothing; `{}` selects everything, as upstream.
    pub fn from_label_selector(selector: &Value) -> Result<Self, String> {
        if selector.is_null() {
            return Ok(Self::nothing());
        }
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (key, value) in labels {
                let value = value.as_str().ok_or("matchLabels values must be strings")?;
                requirements.push(Requirement::new(
                    key,
                    Operator::Equals,
                    vec![value.to_owned()],
                )?);
            }
        }
        if let Some(expressions) = selector.get("matchExpressions").and_then(Value::as_array) {
            for expression in expressions {
                let key = expression.get("key").and_then(Value::as_str).unwrap_or("");
                let values: Vec<String> = expression
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|v| {
                        v.iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let operator = match expression.get("operator").and_then(Value::as_str) {
                    Some("In") => Operator::In,
                    Some("NotIn") => Operator::NotIn,
                    Some("Exists") => Operator::Exists,
                    Some("DoesNotExist") => Operator::DoesNotExist,
                    other => {
                        return Err(format!("{other:?} is not a valid label selector operator"));
                    }
                };
                requirements.push(Requirement::new(key, operator, values)?);
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self {
            requirements,
            nothing: false,
        })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Comma,
    Open,
    Close,
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    Greater,
    Less,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Word(w) => f.write_str(w),
            Self::Comma => f.write_str(","),
            Self::Open => f.write_str("("),
            Self::Close => f.write_str(")"),
            Self::Not => f.write_str("!"),
            Self::Equals => f.write_str("="),
            Self::DoubleEquals => f.write_str("=="),
            Self::NotEquals => f.write_str("!="),
            Self::Greater => f.write_str(">"),
            Self::Less => f.write_str("<"),
        }
    }
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            ',' | '(' | ')' | '>' | '<' => {
                chars.next();
                tokens.push(match c {
                    ',' => Token::Comma,
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '>' => Token::Greater,
                    _ => Token::Less,
                });
            }
            '!' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                    tokens.push(Token::NotEquals);
                } else {
                    tokens.push(Token::Not);
                }
            }
            '=' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                    tokens.push(Token::DoubleEquals);
                } else {
                    tokens.push(Token::Equals);
                }
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || ",()!=<>".contains(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (key, negated) = match self.next() {
            Some(Token::Not) => match self.next() {
                Some(Token::Word(key)) => (key, true),
                other => return Err(unexpected(other, "identifier")),
            },
            Some(Token::Word(key)) => (key, false),
            other => return Err(unexpected(other, "'!' or identifier")),
        };
        if negated {
            return Requirement::new(&key, Operator::DoesNotExist, Vec::new());
        }
        let operator = match self.peek() {
            None | Some(Token::Comma) => {
                return Requirement::new(&key, Operator::Exists, Vec::new());
            }
            Some(Token::Equals | Token::DoubleEquals) => Operator::Equals,
            Some(Token::NotEquals) => Operator::NotEquals,
            Some(Token::Greater) => Operator::GreaterThan,
            Some(Token::Less) => Operator::LessThan,
            Some(Token::Word(w)) if w == "in" => Operator::In,
            Some(Token::Word(w)) if w == "notin" => Operator::NotIn,
            Some(other) => {
                return Err(format!(
                    "found '{other}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        };
        self.at += 1;
        let values = match operator {
            Operator::In | Operator::NotIn => self.set()?,
            _ => match self.peek() {
                // `key=` selects an empty value.
                None | Some(Token::Comma) => vec![String::new()],
                Some(Token::Word(_)) => match self.next() {
                    Some(Token::Word(value)) => vec![value],
                    _ => Vec::new(),
                },
                Some(other) => return Err(format!("found '{other}', expected: identifier")),
            },
        };
        Requirement::new(&key, operator, values)
    }

    /// `( a, b, c )`
    fn set(&mut self) -> Result<Vec<String>, String> {
        match self.next() {
            Some(Token::Open) => {}
            other => return Err(unexpected(other, "'('")),
        }
        let mut values = Vec::new();
        let mut expect_value = true;
        loop {
            match self.next() {
                Some(Token::Close) => {
                    if expect_value && !values.is_empty() {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                Some(Token::Comma) => {
                    if expect_value {
                        values.push(String::new());
                    }
                    expect_value = true;
                }
                Some(Token::Word(value)) if expect_value => {
                    values.push(value);
                    expect_value = false;
                }
                other => return Err(unexpected(other, "',' or ')'")),
            }
        }
    }
}

fn unexpected(token: Option<Token>, expected: &str) -> String {
    match token {
        Some(token) => format!("found '{token}', expected: {expected}"),
        None => format!("found 'end of string', expected: {expected}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_matches_every_operator() {
        let web = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        let db = labels(&[("app", "db"), ("canary", "")]);
        let cases: &[(&str, bool, bool)] = &[
            ("", true, true),
            ("app=web", true, false),
            ("app==web", true, false),
            ("app!=web", false, true),
            ("tier!=front", false, true),
            ("app in (web, api)", true, false),
            ("app notin (web,api)", false, true),
            ("tier", true, false),
            ("!tier", false, true),
            ("canary", false, true),
            ("app=web,tier=front", true, false),
            ("app=web, !canary", true, false),
            ("n>4", true, false),
            ("n<5", false, false),
            ("canary=", false, true),
            ("app in (db,)", false, true),
        ];
        for &(selector, want_web, want_db) in cases {
            let parsed = Selector::parse(selector).unwrap_or_else(|e| panic!("{selector:?}: {e}"));
            assert_eq!(parsed.matches(&web), want_web, "{selector:?} on web");
            assert_eq!(parsed.matches(&db), want_db, "{selector:?} on db");
        }
    }

    #[test]
    fn rejects_malformed_selectors() {
        for bad in [
            "app in web",
            "app=(x)",
            "=web",
            "app=web,",
            "app in ()",
            "Bad Key=x",
            "app=web=x",
            "n>x",
            "app=-x-",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn canonical_string_is_sorted_by_key() {
        let s = Selector::parse("tier in (b,a), app=web, !canary").unwrap();
        assert_eq!(s.to_string(), "app=web,!canary,tier in (a,b)");
    }

    #[test]
    fn structured_selectors() {
        let s = Selector::from_label_selector(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "edge"]}]
        }))
        .unwrap();
        assert_eq!(s.to_string(), "app=web,tier in (edge,front)");
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "edge")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        assert!(
            Selector::from_label_selector(&json!({}))
                .unwrap()
                .is_everything()
        );
        let nothing = Selector::from_label_selector(&Value::Null).unwrap();
        assert!(!nothing.matches(&labels(&[])));
        assert!(
            Selector::from_label_selector(
                &json!({"matchExpressions": [{"key": "a", "operator": "Maybe"}]})
            )
            .is_err()
        );
    }
}
