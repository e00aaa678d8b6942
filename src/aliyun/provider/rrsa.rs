//! RRSA: the pod's projected ServiceAccount token, re-read from its file for every exchange (the
//! kubelet rotates it), traded with STS `AssumeRoleWithOIDC` for the role's credentials.

use std::io::Read;
use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;

use super::env::{ENV_OIDC_TOKEN_FILE, ProviderSetupError, RrsaEnv};
use crate::aliyun::endpoint::Endpoint;
use crate::aliyun::sts::{AssumeRoleWithOidc, StsClient, StsCredentials, StsError};

/// A projected token is about a kilobyte; STS takes at most 20,000 characters.
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// The exchange the operator's own RRSA credentials come from.
pub(crate) struct Rrsa {
    token_file: PathBuf,
    role_arn: String,
    oidc_provider_arn: String,
    role_session_name: String,
    duration_seconds: Option<u32>,
    sts: StsClient,
    endpoint: Endpoint,
}

/// The session name when `ALIBABA_CLOUD_ROLE_SESSION_NAME` is unset: the product's name and the
/// start time, as the official SDKs do with their own names.
pub fn default_role_session_name(now: jiff::Timestamp) -> String {
    format!("ecs-vnc-operator-{}", now.as_second())
}

impl Rrsa {
    /// Checks at start-up that the token file can be read; its content is read again later.
    pub fn new(
        env: RrsaEnv,
        sts: StsClient,
        endpoint: Endpoint,
        duration_seconds: Option<u32>,
    ) -> Result<Self, ProviderSetupError> {
        read_token_now(&env.token_file).map_err(|reason| ProviderSetupError::TokenFile {
            var: ENV_OIDC_TOKEN_FILE,
            path: env.token_file.display().to_string(),
            reason,
        })?;
        Ok(Self {
            token_file: env.token_file,
            role_arn: env.role_arn,
            oidc_provider_arn: env.oidc_provider_arn,
            role_session_name: env
                .role_session_name
                .unwrap_or_else(|| default_role_session_name(jiff::Timestamp::now())),
            duration_seconds,
            sts,
            endpoint,
        })
    }

    pub fn role_arn(&self) -> &str {
        &self.role_arn
    }

    pub fn role_session_name(&self) -> &str {
        &self.role_session_name
    }

    /// One exchange with the token as the file holds it now.
    pub async fn fetch(&self) -> Result<StsCredentials, StsError> {
        let file_error = |reason: String| StsError::TokenFile {
            path: self.token_file.display().to_string(),
            reason,
        };
        let token = read_token(&self.token_file).await.map_err(file_error)?;
        let mut request = AssumeRoleWithOidc::new(
            &self.role_arn,
            &self.oidc_provider_arn,
            &token,
            &self.role_session_name,
        )
        .map_err(|e| file_error(e.to_string()))?;
        if let Some(seconds) = self.duration_seconds {
            request = request
                .with_duration_seconds(seconds)
                .map_err(|e| file_error(e.to_string()))?;
        }
        self.sts
            .assume_role_with_oidc(&self.endpoint, &request)
            .await
    }
}

/// The token, trimmed; the reason of a failure never quotes the file.
async fn read_token(path: &Path) -> Result<String, String> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| e.to_string())?;
    token_text(bytes)
}

fn read_token_now(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    token_text(bytes)
}

fn token_text(bytes: Vec<u8>) -> Result<String, String> {
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(format!(
            "larger than {MAX_TOKEN_FILE_BYTES} bytes; not a token"
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8; not a token".to_owned())?;
    let token = text.trim();
    if token.is_empty() {
        return Err("empty".into());
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_session_name_is_valid_for_sts() {
        let name = default_role_session_name("2026-12-01T09:00:00Z".parse().unwrap());
        assert_eq!(name, "ecs-vnc-operator-1796115600");
        assert!(crate::aliyun::sts::check_role_session_name(&name).is_ok());
    }

    #[test]
    fn token_texts() {
        assert_eq!(
            token_text(b"abc.def.ghi\n".to_vec()).unwrap(),
            "abc.def.ghi"
        );
        assert_eq!(token_text(b" \n".to_vec()).unwrap_err(), "empty");
        assert!(token_text(vec![0xff, 0xfe]).unwrap_err().contains("UTF-8"));
        let huge = vec![b'a'; 70_000];
        assert!(token_text(huge).unwrap_err().contains("larger"));
    }
}
