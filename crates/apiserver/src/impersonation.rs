//! Impersonation (`kubectl --as`, `--as-group`): a request may act as another user, with
//! the `Impersonate-User`, `Impersonate-Group` and `Impersonate-Uid` headers, when its real
//! user is allowed to `impersonate` each of them (`users`, `groups` or `serviceaccounts` in
//! the core group, `uids` in `authentication.k8s.io`), as upstream's filter decides.

use cox_api::status::ApiError;
use http::HeaderMap;

use crate::authn::User;
use crate::request::ResourceRequest;
use crate::server::Authorizer;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";

/// The user the request acts as: `user` itself without impersonation headers, the
/// impersonated one when every part is allowed; 403 naming the part that is not.
pub fn apply(
    authorizer: &dyn Authorizer,
    user: User,
    headers: &HeaderMap,
) -> Result<User, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let (names, groups, uids) = (values(USER), values(GROUP), values(UID));
    if names.is_empty() && groups.is_empty() && uids.is_empty() {
        return Ok(user);
    }
    let Some(name) = names.first().cloned() else {
        return Err(ApiError::bad_request(
            "requested impersonation of groups or a uid without impersonating a user",
        ));
    };
    let check = |group: &str, resource: &str, namespace: Option<&str>, name: &str| {
        let request = ResourceRequest {
            group: group.to_string(),
            version: "v1".to_string(),
            namespace: namespace.map(str::to_string),
            resource: resource.to_string(),
            name: name.to_string(),
            verb: "impersonate".to_string(),
            ..ResourceRequest::default()
        };
        if authorizer.allowed(&user, &request) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                &user.name,
                "impersonate",
                group,
                resource,
                name,
                namespace,
                "",
            ))
        }
    };
    let mut impersonated = User {
        name: name.clone(),
        groups: Vec::new(),
    };
    match name
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    {
        Some((namespace, account)) => {
            check("", "serviceaccounts", Some(namespace), account)?;
            if groups.is_empty() {
                impersonated.groups = vec![
                    "system:serviceaccounts".to_string(),
                    format!("system:serviceaccounts:{namespace}"),
                ];
            }
        }
        None => check("", "users", None, &name)?,
    }
    for group in &groups {
        check("", "groups", None, group)?;
        impersonated.groups.push(group.clone());
    }
    for uid in &uids {
        check("authentication.k8s.io", "uids", None, uid)?;
    }
    // As upstream: every impersonated user but the anonymous one is authenticated.
    let authenticated = "system:authenticated";
    if name != "system:anonymous" && !impersonated.groups.iter().any(|g| g == authenticated) {
        impersonated.groups.push(authenticated.to_string());
    }
    Ok(impersonated)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allows `impersonate` of exactly one thing.
    #[derive(Debug)]
    struct Only(&'static str, &'static str);

    impl Authorizer for Only {
        fn allowed(&self, _user: &User, request: &ResourceRequest) -> bool {
            request.verb == "impersonate" && request.resource == self.0 && request.name == self.1
        }
        fn allowed_path(&self, _user: &User, _verb: &str, _path: &str) -> bool {
            false
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("header value"));
        }
        map
    }

    fn me() -> User {
        User {
            name: "me".into(),
            groups: vec!["system:authenticated".into()],
        }
    }

    #[test]
    fn acts_as_the_impersonated_user_when_allowed() {
        let as_bob =
            apply(&Only("users", "bob"), me(), &headers(&[(USER, "bob")])).expect("allowed");
        assert_eq!(as_bob.name, "bob");
        assert_eq!(as_bob.groups, ["system:authenticated"]);
        assert_eq!(
            apply(&Only("users", "bob"), me(), &HeaderMap::new()).expect("plain"),
            me()
        );
    }

    #[test]
    fn every_part_must_be_allowed() {
        let denied = apply(&Only("users", "bob"), me(), &headers(&[(USER, "eve")]))
            .expect_err("not allowed");
        assert_eq!(denied.code, 403);
        assert!(
            denied
                .message
                .contains("cannot impersonate resource \"users\""),
            "{}",
            denied.message
        );
        let group = apply(
            &Only("users", "bob"),
            me(),
            &headers(&[(USER, "bob"), (GROUP, "admins")]),
        )
        .expect_err("the group is not allowed");
        assert_eq!(group.code, 403);
        let no_user = apply(
            &Only("groups", "admins"),
            me(),
            &headers(&[(GROUP, "admins")]),
        )
        .expect_err("groups need a user");
        assert_eq!(no_user.code, 400);
    }

    #[test]
    fn service_accounts_get_their_groups() {
        let user = apply(
            &Only("serviceaccounts", "builder"),
            me(),
            &headers(&[(USER, "system:serviceaccount:ci:builder")]),
        )
        .expect("allowed");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ci",
                "system:authenticated"
            ]
        );
    }
}
