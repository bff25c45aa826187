//! The review kinds, created to be answered and never stored: `SelfSubjectReview` (`kubectl
//! auth whoami`), `TokenReview` (is this bearer token valid, and whose is it), and the access
//! reviews `kubectl auth can-i` and webhooks ask (`SelfSubjectAccessReview`,
//! `SubjectAccessReview`, `LocalSubjectAccessReview`) and `SelfSubjectRulesReview` (`kubectl
//! auth can-i --list`): the answer is the authorizer's.

use cox_api::registry::Resource;
use cox_api::status::ApiError;
use serde_json::{Value, json};

use crate::authn::User;
use crate::request::ResourceRequest;
use crate::server::Authorizer;

/// Everything a review may consult.
#[derive(Debug)]
pub struct Reviewer<'a> {
    pub authorizer: &'a dyn Authorizer,
    /// Who a bearer token is, for TokenReviews.
    pub token_user: Option<User>,
}

/// The answered review for `body`, a created object of `resource`, asked by `user`
/// (`namespace` from the path, for local reviews).
pub fn answer(
    reviewer: &Reviewer<'_>,
    resource: &Resource,
    user: &User,
    namespace: Option<&str>,
    body: &Value,
) -> Result<Value, ApiError> {
    let mut answer = json!({
        "kind": resource.kind,
        "apiVersion": resource.api_version(),
        "metadata": {"creationTimestamp": null},
        "spec": body.get("spec").cloned().unwrap_or_else(|| json!({})),
    });
    if let Some(namespace) = namespace {
        answer["metadata"]["namespace"] = json!(namespace);
    }
    answer["status"] = match resource.plural {
        "selfsubjectreviews" => json!({"userInfo": user_info(user)}),
        "tokenreviews" => match &reviewer.token_user {
            Some(found) => json!({"authenticated": true, "user": user_info(found)}),
            None => json!({"user": {}, "error": "invalid bearer token"}),
        },
        "selfsubjectaccessreviews" => access(reviewer, user, &body["spec"], None)?,
        "localsubjectaccessreviews" => {
            access(reviewer, &subject(&body["spec"]), &body["spec"], namespace)?
        }
        "subjectaccessreviews" => access(reviewer, &subject(&body["spec"]), &body["spec"], None)?,
        "selfsubjectrulesreviews" => {
            let namespace = body["spec"]["namespace"].as_str().unwrap_or_default();
            reviewer.authorizer.rules_review(user, namespace)
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "{other} cannot be answered by this server"
            )));
        }
    };
    Ok(answer)
}

fn user_info(user: &User) -> Value {
    json!({"username": user.name, "groups": user.groups})
}

/// The user a (Local)SubjectAccessReview asks about.
fn subject(spec: &Value) -> User {
    User {
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

/// The status of an access review: whether the authorizer allows the request described.
fn access(
    reviewer: &Reviewer<'_>,
    user: &User,
    spec: &Value,
    local_namespace: Option<&str>,
) -> Result<Value, ApiError> {
    let attributes = &spec["resourceAttributes"];
    let non_resource = &spec["nonResourceAttributes"];
    let text = |value: &Value, key: &str| value[key].as_str().unwrap_or_default().to_string();
    let allowed = if attributes.is_object() {
        let namespace = local_namespace
            .map(str::to_string)
            .or_else(|| attributes["namespace"].as_str().map(str::to_string))
            .filter(|n| !n.is_empty());
        if let (Some(local), Some(asked)) = (local_namespace, attributes["namespace"].as_str())
            && !asked.is_empty()
            && asked != local
        {
            return Err(ApiError::bad_request(format!(
                "spec.resourceAttributes.namespace must match metadata.namespace: {asked:?} is not {local:?}"
            )));
        }
        let request = ResourceRequest {
            group: text(attributes, "group"),
            version: text(attributes, "version"),
            namespace,
            resource: text(attributes, "resource"),
            name: text(attributes, "name"),
            subresource: text(attributes, "subresource"),
            verb: text(attributes, "verb"),
            rest: Vec::new(),
        };
        reviewer.authorizer.allowed(user, &request)
    } else if non_resource.is_object() {
        reviewer.authorizer.allowed_path(
            user,
            &text(non_resource, "verb"),
            &text(non_resource, "path"),
        )
    } else {
        return Err(ApiError::bad_request(
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    };
    Ok(json!({"allowed": allowed}))
}
