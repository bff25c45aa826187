//! What an API error means to a controller: upstream's `apierrors.IsNotFound`,
//! `IsConflict`, `IsAlreadyExists`, and the message a status condition carries.

/// The API's `Status`, when the error is one.
fn status(error: &kube::Error) -> Option<&kube::core::Status> {
    match error {
        kube::Error::Api(status) => Some(status),
        _ => None,
    }
}

pub fn is_not_found(error: &kube::Error) -> bool {
    status(error).is_some_and(|s| s.is_not_found())
}

pub fn is_conflict(error: &kube::Error) -> bool {
    status(error).is_some_and(|s| s.is_conflict())
}

pub fn is_already_exists(error: &kube::Error) -> bool {
    status(error).is_some_and(|s| s.is_already_exists())
}

/// The API's message for an API error (what upstream puts in conditions and events),
/// otherwise the error itself.
pub fn message(error: &kube::Error) -> String {
    match status(error) {
        Some(status) if !status.message.is_empty() => status.message.clone(),
        _ => error.to_string(),
    }
}

/// A create refused because the namespace is being deleted (upstream's
/// `NamespaceTerminatingCause`): nothing to report, the namespace's objects are going.
pub fn is_namespace_terminating(error: &kube::Error) -> bool {
    status(error).is_some_and(|s| {
        let cause = s
            .details
            .as_ref()
            .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"));
        cause || (s.code == 403 && s.message.ends_with("because it is being terminated"))
    })
}
