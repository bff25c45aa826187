//! What an authorizer judges: who asks, with which verb, for what. A request is either for a
//! resource (`GET /api/v1/namespaces/x/pods/y/log`) or for a plain path (`GET /version`); rules
//! are written for one kind or the other, never both.

/// The authenticated user, as authentication left it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn new(name: impl Into<String>, groups: &[&str]) -> Self {
        Self {
            name: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// The part of a resource request rules are matched against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// `None` for cluster-scoped resources and for requests across all namespaces.
    pub namespace: Option<String>,
    /// `""` for the core group.
    pub api_group: String,
    /// The plural, e.g. `pods`.
    pub resource: String,
    /// e.g. `log`, `status`; `""` for the resource itself.
    pub subresource: String,
    /// `""` when the request names no object (`list`, `create`, `watch` of a collection).
    pub name: String,
}

/// Which kind of request it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Resource(ResourceAttributes),
    /// A path outside the resource tree, e.g. `/healthz` or `/apis/apps`.
    NonResource {
        path: String,
    },
}

/// One request as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    pub user: UserInfo,
    /// The API verb for resource requests (`get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`, or a special one such as `bind`, `escalate`,
    /// `impersonate`); the lowercased HTTP method for other paths.
    pub verb: String,
    pub target: Target,
}

impl Attributes {
    /// A request for `resource` in `api_group`; narrow it with [`Self::in_namespace`],
    /// [`Self::named`] and [`Self::subresource`].
    pub fn resource(
        user: UserInfo,
        verb: impl Into<String>,
        api_group: impl Into<String>,
        resource: impl Into<String>,
    ) -> Self {
        Self {
            user,
            verb: verb.into(),
            target: Target::Resource(ResourceAttributes {
                api_group: api_group.into(),
                resource: resource.into(),
                ..ResourceAttributes::default()
            }),
        }
    }

    /// A request for a path outside the resource tree.
    pub fn non_resource(user: UserInfo, verb: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            user,
            verb: verb.into(),
            target: Target::NonResource { path: path.into() },
        }
    }

    /// Scopes a resource request to a namespace (no effect on other paths).
    pub fn in_namespace(mut self, namespace: impl Into<String>) -> Self {
        if let Target::Resource(resource) = &mut self.target {
            resource.namespace = Some(namespace.into());
        }
        self
    }

    /// Names the object of a resource request (no effect on other paths).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        if let Target::Resource(resource) = &mut self.target {
            resource.name = name.into();
        }
        self
    }

    /// Points a resource request at a subresource (no effect on other paths).
    pub fn subresource(mut self, subresource: impl Into<String>) -> Self {
        if let Target::Resource(resource) = &mut self.target {
            resource.subresource = subresource.into();
        }
        self
    }

    pub fn is_resource_request(&self) -> bool {
        matches!(self.target, Target::Resource(_))
    }

    /// The namespace whose RoleBindings apply: only namespaced resource requests have one.
    pub fn namespace(&self) -> Option<&str> {
        match &self.target {
            Target::Resource(resource) => resource.namespace.as_deref().filter(|n| !n.is_empty()),
            Target::NonResource { .. } => None,
        }
    }
}
