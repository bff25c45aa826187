//! API errors as upstream reports them: a `metav1.Status` with a `reason`, an HTTP code, a
//! message worded as upstream words it, and `details` (the object, and field causes for 422).
//!
//! Every error the API server answers goes through [`ApiError`]; the HTTP layer only
//! serializes it with [`ApiError::to_status`].

use serde_json::{Value, json};

use crate::validation::FieldError;

/// The `reason` of a failed `Status` (upstream's `metav1.StatusReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    AlreadyExists,
    Conflict,
    Gone,
    Expired,
    Invalid,
    MethodNotAllowed,
    NotAcceptable,
    RequestEntityTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    InternalError,
    ServiceUnavailable,
    Timeout,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BadRequest",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "NotFound",
            Self::AlreadyExists => "AlreadyExists",
            Self::Conflict => "Conflict",
            Self::Gone => "Gone",
            Self::Expired => "Expired",
            Self::Invalid => "Invalid",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::NotAcceptable => "NotAcceptable",
            Self::RequestEntityTooLarge => "RequestEntityTooLarge",
            Self::UnsupportedMediaType => "UnsupportedMediaType",
            Self::TooManyRequests => "TooManyRequests",
            Self::InternalError => "InternalError",
            Self::ServiceUnavailable => "ServiceUnavailable",
            Self::Timeout => "Timeout",
        }
    }
}

/// Which object an error is about, for `details`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub group: String,
    /// The resource's plural (upstream puts the resource, not the kind, here for most errors).
    pub kind: String,
    pub name: String,
}

/// One entry of `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// The `details` of a failed `Status`; boxed in [`ApiError`], since most errors have none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Details {
    pub target: Option<Target>,
    pub causes: Vec<Cause>,
    pub retry_after_seconds: Option<u32>,
}

/// An error the API answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: Reason,
    pub message: String,
    pub details: Option<Box<Details>>,
}

/// `pods` for the core group, `deployments.apps` otherwise: how upstream names a resource in
/// messages.
fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

impl ApiError {
    fn new(code: u16, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn details_mut(&mut self) -> &mut Details {
        self.details.get_or_insert_with(Default::default)
    }

    fn about(mut self, group: &str, resource: &str, name: &str) -> Self {
        self.details_mut().target = Some(Target {
            group: group.to_owned(),
            kind: resource.to_owned(),
            name: name.to_owned(),
        });
        self
    }

    /// Seconds the client should wait before retrying, if the error says.
    pub fn retry_after_seconds(&self) -> Option<u32> {
        self.details.as_ref().and_then(|d| d.retry_after_seconds)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, Reason::BadRequest, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, Reason::Unauthorized, "Unauthorized")
    }

    /// `pods is forbidden: User "x" cannot list resource "pods" in API group "" in the
    /// namespace "default"`.
    pub fn forbidden(
        user: &str,
        verb: &str,
        group: &str,
        resource: &str,
        name: &str,
        namespace: Option<&str>,
        reason: &str,
    ) -> Self {
        let subject = if name.is_empty() {
            qualified(group, resource)
        } else {
            format!("{} \"{name}\"", qualified(group, resource))
        };
        let scope = match namespace {
            Some(ns) => format!(" in the namespace \"{ns}\""),
            None => " at the cluster scope".to_owned(),
        };
        let why = if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        };
        Self::new(
            403,
            Reason::Forbidden,
            format!(
                "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" \
                 in API group \"{group}\"{scope}{why}"
            ),
        )
        .about(group, resource, name)
    }

    /// `roles.rbac.authorization.k8s.io "x" is forbidden: <why>`: a refusal that is not about
    /// the request's verb but about what it asks for (RBAC's escalation check, admission).
    pub fn forbidden_because(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let subject = if name.is_empty() {
            qualified(group, resource)
        } else {
            format!("{} \"{name}\"", qualified(group, resource))
        };
        Self::new(
            403,
            Reason::Forbidden,
            format!("{subject} is forbidden: {why}"),
        )
        .about(group, resource, name)
    }

    /// `forbidden: User "x" cannot get path "/metrics"`: a path that is no resource.
    pub fn forbidden_path(user: &str, verb: &str, path: &str) -> Self {
        Self::new(
            403,
            Reason::Forbidden,
            format!("forbidden: User \"{user}\" cannot {verb} path \"{path}\""),
        )
    }

    /// `pods "x" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            404,
            Reason::NotFound,
            format!("{} \"{name}\" not found", qualified(group, resource)),
        )
        .about(group, resource, name)
    }

    /// A path the server does not serve at all: upstream answers 404 with this message.
    pub fn no_route() -> Self {
        Self::new(
            404,
            Reason::NotFound,
            "the server could not find the requested resource",
        )
    }

    /// `pods "x" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            409,
            Reason::AlreadyExists,
            format!("{} \"{name}\" already exists", qualified(group, resource)),
        )
        .about(group, resource, name)
    }

    /// The optimistic-concurrency failure kubectl knows to retry.
    pub fn conflict(group: &str, resource: &str, name: &str, detail: &str) -> Self {
        Self::new(
            409,
            Reason::Conflict,
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {detail}",
                qualified(group, resource)
            ),
        )
        .about(group, resource, name)
    }

    /// The detail upstream gives for a stale `resourceVersion`.
    pub const MODIFIED: &'static str = "the object has been modified; please apply your changes to the latest version and try again";

    /// A `resourceVersion` older than the retained history (watch or list): 410 Expired.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, Reason::Expired, message)
    }

    /// 410 Gone, as upstream answers a watch from a compacted revision.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, Reason::Gone, message)
    }

    /// `Pod "x" is invalid: spec.containers[0].name: Required value`, with one cause per error
    /// (the kind qualified by its group outside the core group, `Deployment.apps "x"`, as
    /// upstream's `GroupKind` prints).
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let summary = match list.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let mut error = Self::new(
            422,
            Reason::Invalid,
            format!(
                "{} \"{name}\" is invalid: {summary}",
                qualified(group, kind)
            ),
        );
        error.details_mut().target = Some(Target {
            group: group.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
        });
        error.details_mut().causes = errors
            .iter()
            .map(|e| Cause {
                reason: e.kind.reason().to_owned(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect();
        error
    }

    pub fn method_not_supported(group: &str, resource: &str, verb: &str) -> Self {
        Self::new(
            405,
            Reason::MethodNotAllowed,
            format!(
                "{verb} is not supported on resources of kind \"{}\"",
                qualified(group, resource)
            ),
        )
        .about(group, resource, "")
    }

    pub fn not_acceptable(accepted: &str) -> Self {
        Self::new(
            406,
            Reason::NotAcceptable,
            format!("only the following media types are accepted: {accepted}"),
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            Reason::RequestEntityTooLarge,
            format!("Request entity too large: limit is {limit}"),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            Reason::UnsupportedMediaType,
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"
            ),
        )
    }

    pub fn too_many_requests(retry_after_seconds: u32) -> Self {
        let mut error = Self::new(
            429,
            Reason::TooManyRequests,
            "Too many requests, please try again later.",
        );
        error.details_mut().retry_after_seconds = Some(retry_after_seconds);
        error
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            Reason::InternalError,
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// A backend the request needs is not there or not answering (upstream's
    /// `NewServiceUnavailable`).
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, Reason::ServiceUnavailable, message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, Reason::Timeout, message)
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "code": self.code,
        });
        let mut details = serde_json::Map::new();
        let empty = Details::default();
        let extra = self.details.as_deref().unwrap_or(&empty);
        if let Some(target) = &extra.target {
            if !target.name.is_empty() {
                details.insert("name".into(), json!(target.name));
            }
            if !target.group.is_empty() {
                details.insert("group".into(), json!(target.group));
            }
            if !target.kind.is_empty() {
                details.insert("kind".into(), json!(target.kind));
            }
        }
        if !extra.causes.is_empty() {
            let causes: Vec<Value> = extra
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(seconds) = extra.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), json!(seconds));
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// A successful `Status`, as upstream answers some deletes.
pub fn success(group: &str, resource: &str, name: &str, uid: &str) -> Value {
    let mut details = json!({"name": name, "kind": resource});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    if !uid.is_empty() {
        details["uid"] = json!(uid);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::FieldError;

    #[test]
    fn messages_match_upstream_wording() {
        let cases = [
            (
                ApiError::not_found("", "pods", "web"),
                404,
                "NotFound",
                "pods \"web\" not found",
            ),
            (
                ApiError::not_found("apps", "deployments", "web"),
                404,
                "NotFound",
                "deployments.apps \"web\" not found",
            ),
            (
                ApiError::already_exists("", "configmaps", "c"),
                409,
                "AlreadyExists",
                "configmaps \"c\" already exists",
            ),
            (
                ApiError::conflict("", "pods", "web", ApiError::MODIFIED),
                409,
                "Conflict",
                "Operation cannot be fulfilled on pods \"web\": the object has been modified; please apply your changes to the latest version and try again",
            ),
            (
                ApiError::forbidden("bob", "list", "", "pods", "", Some("default"), ""),
                403,
                "Forbidden",
                "pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"",
            ),
            (
                ApiError::method_not_supported("", "bindings", "list"),
                405,
                "MethodNotAllowed",
                "list is not supported on resources of kind \"bindings\"",
            ),
        ];
        for (error, code, reason, message) in cases {
            let status = error.to_status();
            assert_eq!(status["code"], code, "{message}");
            assert_eq!(status["reason"], reason, "{message}");
            assert_eq!(status["message"], message);
            assert_eq!(status["status"], "Failure");
            assert_eq!(status["kind"], "Status");
        }
    }

    #[test]
    fn details_name_the_object() {
        let status = ApiError::not_found("apps", "deployments", "web").to_status();
        assert_eq!(
            status["details"],
            json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
        assert!(
            ApiError::bad_request("x")
                .to_status()
                .get("details")
                .is_none()
        );
    }

    #[test]
    fn invalid_lists_causes() {
        let errors = [
            FieldError::required("spec.containers[0].image", ""),
            FieldError::invalid("metadata.name", "Foo", "must be lowercase"),
        ];
        let status = ApiError::invalid("", "Pod", "Foo", &errors).to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(
            status["message"],
            "Pod \"Foo\" is invalid: [spec.containers[0].image: Required value, metadata.name: Invalid value: \"Foo\": must be lowercase]"
        );
        assert_eq!(
            status["details"]["causes"][0],
            json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"})
        );
        let one = ApiError::invalid("", "ConfigMap", "c", &errors[..1]).to_status();
        assert_eq!(
            one["message"],
            "ConfigMap \"c\" is invalid: spec.containers[0].image: Required value"
        );
    }
}
