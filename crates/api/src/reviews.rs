//! The review kinds' shapes: objects created to be answered, never stored (`SelfSubjectReview`,
//! `TokenReview`, the access reviews and `SelfSubjectRulesReview`). What they ask is read here
//! and their answers are built here; who decides is the API server's authenticator and
//! authorizer.

use serde_json::{Value, json};

use crate::registry::Resource;
use crate::status::ApiError;

/// A user as reviews show one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub name: String,
    pub groups: Vec<String>,
}

/// The question of an access review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessQuestion {
    /// May the subject do `verb` on a resource?
    Resource {
        group: String,
        version: String,
        /// From the path for a local review, else from the attributes; `None` if empty.
        namespace: Option<String>,
        resource: String,
        subresource: String,
        name: String,
        verb: String,
    },
    /// May the subject do `verb` on a path that is not a resource?
    Path { verb: String, path: String },
}

/// The review answered: the request's `spec`, then `status`.
pub fn answered(
    resource: &Resource,
    namespace: Option<&str>,
    body: &Value,
    status: Value,
) -> Value {
    let mut answer = json!({
        "kind": resource.kind,
        "apiVersion": resource.api_version(),
        "metadata": {"creationTimestamp": null},
        "spec": body.get("spec").cloned().unwrap_or_else(|| json!({})),
    });
    if let Some(namespace) = namespace {
        answer["metadata"]["namespace"] = json!(namespace);
    }
    answer["status"] = status;
    answer
}

/// `status.userInfo` of a SelfSubjectReview, and a TokenReview's `status.user`.
pub fn user_info(subject: &Subject) -> Value {
    json!({"username": subject.name, "groups": subject.groups})
}

/// A TokenReview's status: whose the token is, or that it is not valid.
pub fn token_review_status(found: Option<&Subject>) -> Value {
    match found {
        Some(subject) => json!({"authenticated": true, "user": user_info(subject)}),
        None => json!({"user": {}, "error": "invalid bearer token"}),
    }
}

/// An access review's status.
pub fn access_status(allowed: bool) -> Value {
    json!({"allowed": allowed})
}

/// The user a (Local)SubjectAccessReview asks about.
pub fn subject(spec: &Value) -> Subject {
    Subject {
        name: spec["user"].as_str().unwrap_or_default().to_string(),
        groups: spec["groups"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// What an access review's `spec` asks; `local_namespace` is the path's, for local reviews
/// (the attributes may not name another).
pub fn access_question(
    spec: &Value,
    local_namespace: Option<&str>,
) -> Result<AccessQuestion, ApiError> {
    let attributes = &spec["resourceAttributes"];
    let non_resource = &spec["nonResourceAttributes"];
    let text = |value: &Value, key: &str| value[key].as_str().unwrap_or_default().to_string();
    if attributes.is_object() {
        let asked = attributes["namespace"].as_str().unwrap_or_default();
        if let Some(local) = local_namespace
            && !asked.is_empty()
            && asked != local
        {
            return Err(ApiError::bad_request(format!(
                "spec.resourceAttributes.namespace must match metadata.namespace: {asked:?} is not {local:?}"
            )));
        }
        let namespace = local_namespace.unwrap_or(asked).to_string();
        Ok(AccessQuestion::Resource {
            group: text(attributes, "group"),
            version: text(attributes, "version"),
            namespace: (!namespace.is_empty()).then_some(namespace),
            resource: text(attributes, "resource"),
            subresource: text(attributes, "subresource"),
            name: text(attributes, "name"),
            verb: text(attributes, "verb"),
        })
    } else if non_resource.is_object() {
        Ok(AccessQuestion::Path {
            verb: text(non_resource, "verb"),
            path: text(non_resource, "path"),
        })
    } else {
        Err(ApiError::bad_request(
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_are_read_from_the_spec() {
        let spec =
            json!({"resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "a"}});
        let AccessQuestion::Resource {
            namespace, verb, ..
        } = access_question(&spec, None).expect("valid")
        else {
            panic!("a resource question");
        };
        assert_eq!((namespace.as_deref(), verb.as_str()), (Some("a"), "get"));
        assert!(
            access_question(&spec, Some("b")).is_err(),
            "a local review names its own"
        );
        assert_eq!(
            access_question(
                &json!({"nonResourceAttributes": {"verb": "get", "path": "/healthz"}}),
                None
            ),
            Ok(AccessQuestion::Path {
                verb: "get".into(),
                path: "/healthz".into()
            })
        );
        assert_eq!(
            access_question(&json!({}), None).map_err(|e| e.code),
            Err(400)
        );
        let who = subject(&json!({"user": "jane", "groups": ["dev"]}));
        assert_eq!(
            user_info(&who),
            json!({"username": "jane", "groups": ["dev"]})
        );
        assert_eq!(token_review_status(None)["error"], "invalid bearer token");
    }
}
