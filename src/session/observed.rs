//! What the controller sees of one session, and what follows from that alone without asking ECS:
//! why a URL would be issued, when the grant ends and what is known of the instance's OS.

use jiff::Timestamp;

use super::crd::{VncSessionSpec, VncSessionStatus};
use super::{expiry, validate};

/// What the controller sees of one session.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    pub spec: &'a VncSessionSpec,
    pub status: &'a VncSessionStatus,
    pub generation: i64,
    /// Value of the `ecsvnc.dev/refresh` annotation.
    pub refresh: Option<&'a str>,
    pub created_at: Timestamp,
    /// resourceVersion of the referenced credentials Secret as it is now; `None` when the session
    /// references none or it does not exist.
    pub credentials_version: Option<&'a str>,
    /// How long a URL issued now opens connections (`--url-validity`): none is issued whose
    /// window would outlive the grant.
    pub url_validity: std::time::Duration,
}

/// Why a URL is being asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueCause {
    /// The session has never been served.
    First,
    /// A new generation of the spec.
    SpecChanged,
    /// A new value of the refresh annotation.
    RefreshRequested,
    /// A retryable failure or a throttled request is due again.
    Retry,
    /// The credentials Secret changed after a failure that waits for it.
    CredentialsChanged,
}

/// Whether the instance is Windows, as far as it is known without asking ECS: the spec says so,
/// or an earlier attempt for this same spec learned it. A new spec may name another instance, so
/// what was learned for the old one is not used.
pub fn known_os(obs: &Observed, cause: IssueCause) -> Option<bool> {
    let remembered = match cause {
        IssueCause::First | IssueCause::SpecChanged => None,
        _ => obs.status.is_windows,
    };
    obs.spec.is_windows.or(remembered)
}

/// When the grant ends, if it has a valid TTL.
pub fn ttl_deadline(obs: &Observed) -> Option<Timestamp> {
    let ttl = validate::ttl(obs.spec.ttl.as_deref()?).ok()?;
    Some(expiry::add(obs.created_at, ttl))
}
