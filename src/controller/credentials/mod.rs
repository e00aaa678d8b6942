//! Where a session's credentials come from: a Secret in its own namespace, a ServiceAccount of
//! it (keyless), or the operator's own. The room's door is [`load`] and [`version`], given the
//! [`Sources`] the controller's context lends it; nothing in here issues or reconciles.
//!
//! Inside, dependencies point one way: `found` and `watched` use nothing of the room; the caches
//! (`secrets`, `service_accounts`) use those; `operator` uses `found`; `keyless` uses the rest.

mod found;
mod keyless;
mod operator;
mod secrets;
mod service_accounts;
mod watched;

pub use found::{Failure, Found, Renewer};
pub use keyless::Keyless;
pub use operator::{Operator, OperatorCredentialsScope};
pub use secrets::SecretCache;
pub use service_accounts::ServiceAccountCache;

use crate::session::{VncSessionSpec, validate};

/// What looking up credentials needs of the controller's shared state, borrowed from it.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// The API server, for Secret reads.
    pub client: &'a kube::Client,
    pub secrets: &'a SecretCache,
    pub operator: Operator<'a>,
    pub keyless: Keyless<'a>,
}

/// Reads the credentials a session uses. The Secret or ServiceAccount is looked up in
/// `namespace`, the session's own: a reference cannot name another namespace, and a name that is
/// not a plain object name is refused before any API call.
pub async fn load(
    sources: &Sources<'_>,
    namespace: &str,
    spec: &VncSessionSpec,
) -> Result<(Found, Option<String>), kube::Error> {
    if let Some(reference) = &spec.service_account_ref {
        let keyless = &sources.keyless;
        return Ok(keyless
            .credentials(&sources.operator, namespace, &reference.name)
            .await);
    }
    let Some(reference) = &spec.credentials_ref else {
        return Ok((sources.operator.credentials(namespace).await, None));
    };
    secrets::credentials(sources.client, sources.secrets, namespace, &reference.name).await
}

/// The resourceVersion of the Secret or ServiceAccount a session references, as the metadata
/// watch last saw it; no API call. A name that is not a plain object name is never looked up.
pub fn version(sources: &Sources<'_>, namespace: &str, spec: &VncSessionSpec) -> Option<String> {
    if let Some(reference) = &spec.service_account_ref {
        return validate::dns1123_subdomain(&reference.name)
            .then(|| {
                let accounts = sources.keyless.service_accounts;
                accounts.version(namespace, &reference.name)
            })
            .flatten();
    }
    let reference = spec.credentials_ref.as_ref()?;
    if !validate::dns1123_subdomain(&reference.name) {
        return None;
    }
    sources.secrets.version(namespace, &reference.name)
}
