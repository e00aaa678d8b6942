//! STS `AssumeRoleWithOIDC`: a Kubernetes ServiceAccount token exchanged for temporary credentials
//! of a RAM role (RRSA). Unsigned: the OIDC token is the proof, sent in the form body only.

mod error;
mod request;
mod response;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

pub use error::{CODE_TOKEN_FILE, CredentialService, StsError};
pub use request::{
    AssumeRoleWithOidc, DURATION_SECONDS, InvalidStsParameter, STS_API_VERSION,
    check_oidc_provider_arn, check_role_arn, check_role_session_name,
};
pub(crate) use response::decode_instance_credentials;
pub use response::{MAX_LIFETIME, StsCredentials};

pub use super::endpoint::DEFAULT_STS_ENDPOINT;
use super::endpoint::Endpoint;
use super::http::{DEFAULT_USER_AGENT, build_client, post_form};
use super::response::decode_reply;
use super::retry::{RetryPolicy, run_with_retries};
use crate::session::expiry::rfc3339;

#[derive(Debug, Clone)]
pub struct StsOptions {
    pub connect_timeout: Duration,
    /// Per attempt: sending, waiting and reading the body.
    pub request_timeout: Duration,
    /// Retries of one exchange (5xx, throttling, timeouts); renewals have their own backoff.
    pub retry: RetryPolicy,
    pub user_agent: String,
}

impl Default for StsOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(2),
                deadline: Duration::from_secs(20),
            },
            user_agent: DEFAULT_USER_AGENT.to_owned(),
        }
    }
}

/// The STS client. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct StsClient {
    http: reqwest::Client,
    options: Arc<StsOptions>,
}

impl fmt::Debug for StsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StsClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl StsClient {
    pub fn new(options: StsOptions) -> Result<Self, StsError> {
        let http =
            build_client(options.connect_timeout, &options.user_agent).map_err(StsError::sts)?;
        Ok(Self {
            http,
            options: Arc::new(options),
        })
    }

    pub fn options(&self) -> &StsOptions {
        &self.options
    }

    /// Exchanges the request's OIDC token for the role's temporary credentials.
    pub async fn assume_role_with_oidc(
        &self,
        endpoint: &Endpoint,
        request: &AssumeRoleWithOidc,
    ) -> Result<StsCredentials, StsError> {
        let secrets = request.secrets();
        run_with_retries(
            self.options.retry,
            self.options.request_timeout,
            endpoint.as_str(),
            "AssumeRoleWithOIDC",
            || async {
                let body = request.form_body(&rfc3339(Timestamp::now()));
                let reply = post_form(
                    &self.http,
                    endpoint.request_url().clone(),
                    body,
                    endpoint.as_str(),
                    self.options.request_timeout,
                )
                .await?;
                decode_reply(&reply, &secrets, response::decode_assumed_role)
            },
            |_, _| {},
        )
        .await
        .map_err(StsError::sts)
    }
}
