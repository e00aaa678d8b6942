//! The ECS instance's RAM role, from the instance metadata service: IMDSv2 first (`PUT` a session
//! token, then `GET` the credentials with it), IMDSv1 only when the service hands out no token and
//! `ALIBABA_CLOUD_IMDSV1_DISABLED` does not forbid it.

use std::time::Duration;

use reqwest::Url;

use super::env::{ENV_METADATA_ENDPOINT, InstanceRoleEnv, ProviderSetupError};
use crate::aliyun::endpoint::Endpoint;
use crate::aliyun::error::EcsError;
use crate::aliyun::http::{Reply, build_client, send};
use crate::aliyun::retry::{RetryPolicy, run_with_retries};
use crate::aliyun::sts::{StsCredentials, StsError, decode_instance_credentials};

/// The metadata service's real address.
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://100.100.100.200";
/// How long a metadata session token lives (the service takes 1 to 21600 s); one is asked for at
/// every renewal, so a short life is enough.
pub const METADATA_TOKEN_TTL_SECONDS: u32 = 300;
const TOKEN_TTL_HEADER: &str = "X-aliyun-ecs-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "X-aliyun-ecs-metadata-token";
/// Metadata answers are a few hundred bytes.
const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Timeouts for a service on the instance's own network: it answers at once or not at all.
#[derive(Debug, Clone, Copy)]
pub struct MetadataTimeouts {
    pub connect: Duration,
    /// Per request (token, then credentials).
    pub request: Duration,
}

impl Default for MetadataTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(5),
        }
    }
}

pub(crate) struct InstanceRole {
    http: reqwest::Client,
    endpoint: Endpoint,
    token_url: Url,
    credentials_url: Url,
    role_name: String,
    imdsv1_disabled: bool,
    timeouts: MetadataTimeouts,
}

impl InstanceRole {
    pub fn new(
        env: InstanceRoleEnv,
        timeouts: MetadataTimeouts,
        user_agent: &str,
    ) -> Result<Self, ProviderSetupError> {
        let raw = env
            .metadata_endpoint
            .as_deref()
            .unwrap_or(DEFAULT_METADATA_ENDPOINT);
        let endpoint = Endpoint::parse(raw).map_err(|e| ProviderSetupError::InvalidEnv {
            var: ENV_METADATA_ENDPOINT,
            reason: e.to_string(),
        })?;
        let base = endpoint.as_str().trim_end_matches('/').to_owned();
        let url = |path: &str| {
            Url::parse(&format!("{base}{path}")).map_err(|e| ProviderSetupError::InvalidEnv {
                var: ENV_METADATA_ENDPOINT,
                reason: e.to_string(),
            })
        };
        let token_url = url("/latest/api/token")?;
        let credentials_url = url(&format!(
            "/latest/meta-data/ram/security-credentials/{}",
            env.role_name
        ))?;
        let http = build_client(timeouts.connect, user_agent)
            .map_err(|e| ProviderSetupError::Client(e.to_string()))?;
        Ok(Self {
            http,
            endpoint,
            token_url,
            credentials_url,
            role_name: env.role_name,
            imdsv1_disabled: env.imdsv1_disabled,
            timeouts,
        })
    }

    pub fn role_name(&self) -> &str {
        &self.role_name
    }

    /// The role's current credentials; one retry for a service that hiccups.
    pub async fn fetch(&self) -> Result<StsCredentials, StsError> {
        let policy = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_millis(500),
            deadline: self.timeouts.request * 3,
        };
        run_with_retries(
            policy,
            self.timeouts.request * 2,
            self.endpoint.as_str(),
            "InstanceRoleCredentials",
            || self.attempt(),
            |_, _| {},
        )
        .await
        .map_err(StsError::metadata)
    }

    async fn attempt(&self) -> Result<StsCredentials, EcsError> {
        let token = self.session_token().await?;
        let mut request = self
            .http
            .get(self.credentials_url.clone())
            .timeout(self.timeouts.request);
        if let Some(token) = &token {
            request = request.header(TOKEN_HEADER, token);
        }
        let reply = self.send(request).await?;
        if !reply.is_success() {
            return Err(self.refusal(&reply, "credentials"));
        }
        decode_instance_credentials(&reply.body, reply.status, reply.sent_at)
    }

    /// An IMDSv2 session token; `None` to go on without one (IMDSv1) when allowed.
    async fn session_token(&self) -> Result<Option<String>, EcsError> {
        let request = self
            .http
            .put(self.token_url.clone())
            .timeout(self.timeouts.request)
            .header(TOKEN_TTL_HEADER, METADATA_TOKEN_TTL_SECONDS.to_string());
        let reply = self.send(request).await?;
        if !reply.is_success() {
            if self.imdsv1_disabled {
                return Err(self.refusal(&reply, "an IMDSv2 token"));
            }
            tracing::warn!(
                http_status = reply.status,
                "the instance metadata service gave no IMDSv2 token; trying IMDSv1"
            );
            return Ok(None);
        }
        let token = std::str::from_utf8(&reply.body)
            .ok()
            .map(str::trim)
            .filter(|t| {
                !t.is_empty() && t.len() <= 1024 && t.bytes().all(|b| b.is_ascii_graphic())
            });
        match token {
            Some(t) => Ok(Some(t.to_owned())),
            None => Err(EcsError::MalformedResponse {
                http_status: reply.status,
                reason: "the IMDSv2 token is not printable ASCII of at most 1024 characters".into(),
                request_id: None,
            }),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply, EcsError> {
        send(
            request,
            self.endpoint.as_str(),
            self.timeouts.request,
            MAX_METADATA_BYTES,
        )
        .await
    }

    /// A non-2xx answer: the metadata service sends no error document, so the status says it all.
    fn refusal(&self, reply: &Reply, what: &str) -> EcsError {
        let (code, message) = match reply.status {
            404 => (
                "InstanceRoleNotFound",
                format!(
                    "no RAM role named {} is attached to this instance (HTTP 404); check \
                     ALIBABA_CLOUD_ECS_METADATA and the instance's RAM role",
                    self.role_name
                ),
            ),
            401 | 403 => (
                "MetadataTokenRejected",
                format!(
                    "the instance metadata service refused the request for {what} (HTTP {}); \
                     IMDSv2 token missing or invalid",
                    reply.status
                ),
            ),
            status => (
                "MetadataRequestFailed",
                format!("the instance metadata service answered HTTP {status} for {what}"),
            ),
        };
        EcsError::Api {
            code: code.to_owned(),
            message,
            request_id: None,
            http_status: Some(reply.status),
        }
    }
}
