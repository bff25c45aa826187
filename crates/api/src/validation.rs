//! Field errors (upstream's `field.Error`) and the name and label rules every object is checked
//! against, with upstream's messages, since clients and users read them.

use std::fmt;

/// Upstream's `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
}

impl ErrorKind {
    /// The `reason` of a `Status` cause.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "FieldValueNotFound",
            Self::Required => "FieldValueRequired",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Internal => "InternalError",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::Required => "Required value",
            Self::Duplicate => "Duplicate value",
            Self::Invalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Internal => "Internal error",
        }
    }

    /// Kinds whose message carries the offending value.
    fn shows_value(self) -> bool {
        !matches!(
            self,
            Self::Required | Self::Forbidden | Self::TooLong | Self::Internal
        )
    }
}

/// One problem with one field, e.g. `metadata.name: Invalid value: "Foo": ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub kind: ErrorKind,
    /// The field's path, e.g. `spec.containers[0].image`.
    pub field: String,
    /// The offending value as upstream prints it (strings quoted).
    pub value: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(kind: ErrorKind, field: &str, value: String, detail: &str) -> Self {
        Self {
            kind,
            field: field.to_owned(),
            value,
            detail: detail.to_owned(),
        }
    }

    pub fn required(field: &str, detail: &str) -> Self {
        Self::new(ErrorKind::Required, field, String::new(), detail)
    }

    /// An invalid string value (printed quoted).
    pub fn invalid(field: &str, value: &str, detail: &str) -> Self {
        Self::new(ErrorKind::Invalid, field, format!("{value:?}"), detail)
    }

    /// An invalid value printed as is (numbers).
    pub fn invalid_raw(field: &str, value: impl fmt::Display, detail: &str) -> Self {
        Self::new(ErrorKind::Invalid, field, value.to_string(), detail)
    }

    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        let detail = format!("supported values: {}", list.join(", "));
        Self::new(
            ErrorKind::NotSupported,
            field,
            format!("{value:?}"),
            &detail,
        )
    }

    pub fn duplicate(field: &str, value: &str) -> Self {
        Self::new(ErrorKind::Duplicate, field, format!("{value:?}"), "")
    }

    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self::new(ErrorKind::Forbidden, field, String::new(), detail)
    }

    /// The message without the field: `Invalid value: "Foo": detail`.
    pub fn body(&self) -> String {
        let mut body = self.kind.text().to_owned();
        if self.kind.shows_value() {
            body = format!("{body}: {}", self.value);
        }
        if !self.detail.is_empty() {
            body = format!("{body}: {}", self.detail);
        }
        body
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| is_lower_alnum(c) || c == '-')
        && s.starts_with(is_lower_alnum)
        && s.ends_with(is_lower_alnum)
}

/// Problems with `value` as a DNS-1123 label (most names that become DNS labels), in
/// upstream's words; empty when valid.
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        problems.push(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !is_dns1123_label(value) {
        problems.push(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
             '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or \
             '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                .to_owned(),
        );
    }
    problems
}

/// Problems with `value` as a DNS-1123 subdomain (the default rule for object names).
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        problems.push(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    if !value.split('.').all(is_dns1123_label) {
        problems.push(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character (e.g. \
             'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                .to_owned(),
        );
    }
    problems
}

/// Problems with `value` as a DNS-1035 label (Service names: must start with a letter).
pub fn dns1035_label(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        problems.push(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !is_dns1123_label(value) || !value.starts_with(|c: char| c.is_ascii_lowercase()) {
        problems.push(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start \
             with an alphabetic character, and end with an alphanumeric character (e.g. \
             'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
                .to_owned(),
        );
    }
    problems
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

fn is_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| is_alnum(c) || matches!(c, '-' | '_' | '.'))
        && s.starts_with(is_alnum)
        && s.ends_with(is_alnum)
}

/// Problems with `value` as a qualified name (`[prefix/]name`: label and annotation keys).
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let (prefix, name) = match value.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            problems.push("prefix part must be non-empty".to_owned());
        } else {
            problems.extend(
                dns1123_subdomain(prefix)
                    .into_iter()
                    .map(|p| format!("prefix part {p}")),
            );
        }
    }
    if name.is_empty() {
        problems.push("name part must be non-empty".to_owned());
    } else {
        if name.len() > DNS1123_LABEL_MAX {
            problems.push(format!(
                "name part must be no more than {DNS1123_LABEL_MAX} characters"
            ));
        }
        if !is_name_part(name) {
            problems.push(
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must \
                 start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  \
                 or '123-abc', regex used for validation is \
                 '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
                    .to_owned(),
            );
        }
    }
    problems
}

/// Problems with `value` as a label value.
pub fn label_value(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        problems.push(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !value.is_empty() && !is_name_part(value) {
        problems.push(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', \
             '_' or '.', and must start and end with an alphanumeric character (e.g. \
             'MyValue',  or 'my_value',  or '12345', regex used for validation is \
             '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
                .to_owned(),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        let long_label = "a".repeat(64);
        let cases: &[(&str, bool, bool, bool)] = &[
            // value, label, subdomain, dns1035
            ("web", true, true, true),
            ("web-1", true, true, true),
            ("1web", true, true, false),
            ("example.com", false, true, false),
            ("Web", false, false, false),
            ("-web", false, false, false),
            ("web-", false, false, false),
            ("web_1", false, false, false),
            ("", false, false, false),
            ("a..b", false, false, false),
            (&long_label, false, true, false),
        ];
        for &(value, label, subdomain, dns1035) in cases {
            assert_eq!(dns1123_label(value).is_empty(), label, "label {value:?}");
            assert_eq!(
                dns1123_subdomain(value).is_empty(),
                subdomain,
                "subdomain {value:?}"
            );
            assert_eq!(
                dns1035_label(value).is_empty(),
                dns1035,
                "dns1035 {value:?}"
            );
        }
        assert!(dns1123_subdomain(&"a".repeat(254))[0].contains("no more than 253"));
    }

    #[test]
    fn label_key_and_value_rules() {
        for ok in [
            "app",
            "app.kubernetes.io/name",
            "A_b.c-d",
            "kubernetes.io/hostname",
        ] {
            assert!(qualified_name(ok).is_empty(), "{ok}");
        }
        for bad in [
            "",
            "/app",
            "Bad.Prefix/x",
            "app/",
            "-app",
            "a/b/c",
            &"x".repeat(64),
        ] {
            assert!(!qualified_name(bad).is_empty(), "{bad:?}");
        }
        for ok in ["", "v1", "My_Value.1"] {
            assert!(label_value(ok).is_empty(), "{ok}");
        }
        for bad in ["-v", "v ", "a/b", &"x".repeat(64)] {
            assert!(!label_value(bad).is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn messages_follow_field_error_format() {
        assert_eq!(
            FieldError::required("spec.containers", "").to_string(),
            "spec.containers: Required value"
        );
        assert_eq!(
            FieldError::required("spec.ports", "must specify at least one").to_string(),
            "spec.ports: Required value: must specify at least one"
        );
        assert_eq!(
            FieldError::invalid("metadata.name", "Foo", "bad").to_string(),
            "metadata.name: Invalid value: \"Foo\": bad"
        );
        assert_eq!(
            FieldError::invalid_raw(
                "spec.ports[0].port",
                70000,
                "must be between 1 and 65535, inclusive"
            )
            .to_string(),
            "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            FieldError::not_supported(
                "spec.restartPolicy",
                "Sometimes",
                &["Always", "Never", "OnFailure"]
            )
            .to_string(),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\", \"OnFailure\""
        );
        assert_eq!(
            FieldError::duplicate("spec.containers[1].name", "app").to_string(),
            "spec.containers[1].name: Duplicate value: \"app\""
        );
    }
}
