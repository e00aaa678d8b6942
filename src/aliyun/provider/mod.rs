//! The operator's own credentials, found the way the official SDKs find them: an AccessKey from
//! the environment, else RRSA (the pod's ServiceAccount token exchanged with STS), else the ECS
//! instance's RAM role. Temporary credentials are held in a [`Renewing`] cell and renewed before
//! they expire.

mod env;
mod metadata;
mod rrsa;

use std::fmt;

use jiff::Timestamp;

pub use env::{
    ENV_ECS_METADATA, ENV_IMDSV1_DISABLED, ENV_METADATA_ENDPOINT, ENV_OIDC_PROVIDER_ARN,
    ENV_OIDC_TOKEN_FILE, ENV_ROLE_ARN, ENV_ROLE_SESSION_NAME, ENV_STS_ENDPOINT, InstanceRoleEnv,
    Lookup, ProviderSetupError, RrsaEnv, Selected, process_env, select,
};
pub use metadata::{DEFAULT_METADATA_ENDPOINT, METADATA_TOKEN_TTL_SECONDS, MetadataTimeouts};
pub use rrsa::default_role_session_name;

use super::credentials::Credentials;
use super::endpoint::Endpoint;
use super::renewing::{RenewBackoff, Renewing};
use super::sts::{StsClient, StsError, StsOptions};
use metadata::InstanceRole;
use rrsa::Rrsa;

/// How temporary credentials are fetched.
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    /// Where RRSA exchanges go (`--sts-endpoint`, default the official endpoint).
    pub sts_endpoint: Endpoint,
    pub sts: StsOptions,
    /// `DurationSeconds` of RRSA exchanges; `None`: STS's default (1 h).
    pub duration_seconds: Option<u32>,
    pub metadata: MetadataTimeouts,
    /// Pause after failed renewals while the old credentials still work.
    pub renew_backoff: RenewBackoff,
}

impl ProviderOptions {
    pub fn new(sts_endpoint: Endpoint) -> Self {
        Self {
            sts_endpoint,
            sts: StsOptions::default(),
            duration_seconds: None,
            metadata: MetadataTimeouts::default(),
            renew_backoff: RenewBackoff::default(),
        }
    }
}

enum Source {
    AccessKey(Credentials),
    Rrsa(Rrsa, Renewing<StsError>),
    InstanceRole(InstanceRole, Renewing<StsError>),
}

/// The operator's own credentials. Share it (e.g. in an `Arc`): renewals are single-flight.
pub struct OperatorCredentials {
    source: Source,
}

impl fmt::Debug for OperatorCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorCredentials")
            .field("source", &self.describe())
            .finish()
    }
}

impl OperatorCredentials {
    /// From the process environment. `Ok(None)`: nothing configured.
    pub fn from_env(options: ProviderOptions) -> Result<Option<Self>, ProviderSetupError> {
        Self::from_lookup(process_env, options)
    }

    /// From any environment lookup. Checks everything that can be checked before the first call:
    /// complete RRSA settings, ARNs, session name, a readable token file, the metadata address.
    /// `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` alone selects nothing (it serves keyless sessions).
    pub fn from_lookup(
        lookup: impl Lookup,
        options: ProviderOptions,
    ) -> Result<Option<Self>, ProviderSetupError> {
        let source = match select(lookup)? {
            Selected::Nothing => return Ok(None),
            Selected::AccessKey(creds) => Source::AccessKey(creds),
            Selected::Rrsa(env) => {
                let sts = StsClient::new(options.sts.clone())
                    .map_err(|e| ProviderSetupError::Client(e.to_string()))?;
                let rrsa = Rrsa::new(env, sts, options.sts_endpoint, options.duration_seconds)?;
                Source::Rrsa(rrsa, Renewing::with_backoff(options.renew_backoff))
            }
            Selected::InstanceRole(env) => {
                let role = InstanceRole::new(env, options.metadata, &options.sts.user_agent)?;
                Source::InstanceRole(role, Renewing::with_backoff(options.renew_backoff))
            }
        };
        Ok(Some(Self { source }))
    }

    /// Fixed credentials (an AccessKey, perhaps with a token that is never renewed).
    pub fn access_key(credentials: Credentials) -> Self {
        Self {
            source: Source::AccessKey(credentials),
        }
    }

    /// Credentials to sign the next call with, renewed first when due.
    pub async fn credentials(&self) -> Result<Credentials, StsError> {
        match &self.source {
            Source::AccessKey(creds) => Ok(creds.clone()),
            Source::Rrsa(rrsa, cell) => cell.get(Timestamp::now(), || rrsa.fetch()).await,
            Source::InstanceRole(role, cell) => cell.get(Timestamp::now(), || role.fetch()).await,
        }
    }

    /// When the held temporary credentials expire; `None` for an AccessKey or before the first
    /// fetch.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.cell().and_then(Renewing::expires_at)
    }

    /// When the held temporary credentials are due for renewal.
    pub fn renew_at(&self) -> Option<Timestamp> {
        self.cell().and_then(Renewing::renew_at)
    }

    /// Drops temporary credentials that ECS rejected, so the next call fetches fresh ones.
    /// Returns false for a fixed AccessKey, which nothing can renew.
    pub fn invalidate(&self) -> bool {
        self.cell().map(Renewing::invalidate).is_some()
    }

    /// [`OperatorCredentials::invalidate`] at most once per `gap`; returns whether it dropped them.
    pub fn invalidate_at_most_every(&self, gap: std::time::Duration) -> bool {
        self.cell()
            .is_some_and(|cell| cell.invalidate_at_most_every(gap))
    }

    /// The RAM role of RRSA, if that is the source: keyless sessions may not borrow it.
    pub fn rrsa_role_arn(&self) -> Option<&str> {
        match &self.source {
            Source::Rrsa(rrsa, _) => Some(rrsa.role_arn()),
            _ => None,
        }
    }

    fn cell(&self) -> Option<&Renewing<StsError>> {
        match &self.source {
            Source::AccessKey(_) => None,
            Source::Rrsa(_, cell) | Source::InstanceRole(_, cell) => Some(cell),
        }
    }

    /// Which source, for logs; nothing secret (an AccessKeyId is shown masked).
    pub fn describe(&self) -> String {
        match &self.source {
            Source::AccessKey(creds) => format!("{creds} from the environment"),
            Source::Rrsa(rrsa, _) => format!(
                "RRSA role {} (session {})",
                rrsa.role_arn(),
                rrsa.role_session_name()
            ),
            Source::InstanceRole(role, _) => {
                format!("ECS instance RAM role {}", role.role_name())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_key_is_described_masked() {
        let c = OperatorCredentials::access_key(Credentials::new("LTAI5tExample", "s", None));
        assert_eq!(c.describe(), "AccessKey LTAI**** from the environment");
        assert!(!format!("{c:?}").contains("Example"));
        assert_eq!(c.expires_at(), None);
    }

    #[test]
    fn an_unreadable_token_file_is_a_start_up_error_naming_the_variable() {
        let lookup = env::fixed_env(&[
            (ENV_OIDC_TOKEN_FILE, "/nonexistent/ecs-vnc-operator/token"),
            (ENV_ROLE_ARN, "acs:ram::1234567890123456:role/vnc"),
            (
                ENV_OIDC_PROVIDER_ARN,
                "acs:ram::1234567890123456:oidc-provider/p",
            ),
        ]);
        let options = ProviderOptions::new(Endpoint::resolve_sts(None).unwrap());
        let err = OperatorCredentials::from_lookup(lookup, options).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "ALIBABA_CLOUD_OIDC_TOKEN_FILE names /nonexistent/ecs-vnc-operator/token, which cannot be read"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_bad_metadata_address_is_a_start_up_error() {
        let lookup = env::fixed_env(&[
            (ENV_ECS_METADATA, "Role"),
            (ENV_METADATA_ENDPOINT, "100.100.100.200"),
        ]);
        let options = ProviderOptions::new(Endpoint::resolve_sts(None).unwrap());
        let err = OperatorCredentials::from_lookup(lookup, options).unwrap_err();
        assert!(err.to_string().starts_with(ENV_METADATA_ENDPOINT), "{err}");
    }
}
