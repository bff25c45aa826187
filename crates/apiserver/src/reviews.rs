//! The review kinds, created to be answered and never stored: `SelfSubjectReview` (`kubectl
//! auth whoami`), `TokenReview` (is this bearer token valid, and whose is it), and the access
//! reviews `kubectl auth can-i` and webhooks ask (`SelfSubjectAccessReview`,
//! `SubjectAccessReview`, `LocalSubjectAccessReview`) and `SelfSubjectRulesReview` (`kubectl
//! auth can-i --list`): the answer is the authorizer's. Their shapes are `cox_api::reviews`.

use cox_api::registry::Resource;
use cox_api::reviews::{self, AccessQuestion, Subject};
use cox_api::status::ApiError;
use serde_json::Value;

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
    let spec = &body["spec"];
    let status = match resource.plural {
        "selfsubjectreviews" => {
            serde_json::json!({"userInfo": reviews::user_info(&subject_of(user))})
        }
        "tokenreviews" => {
            reviews::token_review_status(reviewer.token_user.as_ref().map(subject_of).as_ref())
        }
        "selfsubjectaccessreviews" => access(reviewer, user, spec, None)?,
        "localsubjectaccessreviews" => access(reviewer, &user_of(spec), spec, namespace)?,
        "subjectaccessreviews" => access(reviewer, &user_of(spec), spec, None)?,
        "selfsubjectrulesreviews" => {
            let namespace = spec["namespace"].as_str().unwrap_or_default();
            reviewer.authorizer.rules_review(user, namespace)
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "{other} cannot be answered by this server"
            )));
        }
    };
    Ok(reviews::answered(resource, namespace, body, status))
}

fn subject_of(user: &User) -> Subject {
    Subject {
        name: user.name.clone(),
        groups: user.groups.clone(),
    }
}

/// The user a (Local)SubjectAccessReview asks about.
fn user_of(spec: &Value) -> User {
    let Subject { name, groups } = reviews::subject(spec);
    User { name, groups }
}

/// The status of an access review: whether the authorizer allows the request described.
fn access(
    reviewer: &Reviewer<'_>,
    user: &User,
    spec: &Value,
    local_namespace: Option<&str>,
) -> Result<Value, ApiError> {
    let allowed = match reviews::access_question(spec, local_namespace)? {
        AccessQuestion::Resource {
            group,
            version,
            namespace,
            resource,
            subresource,
            name,
            verb,
        } => reviewer.authorizer.allowed(
            user,
            &ResourceRequest {
                group,
                version,
                namespace,
                resource,
                name,
                subresource,
                verb,
                rest: Vec::new(),
            },
        ),
        AccessQuestion::Path { verb, path } => reviewer.authorizer.allowed_path(user, &verb, &path),
    };
    Ok(reviews::access_status(allowed))
}
