//! What can go wrong getting temporary credentials, from STS or from the instance metadata
//! service, and whether trying again can help.
//!
//! The HTTP side fails in the same ways as an ECS call, so the transport, decoding and sanitising
//! of [`EcsError`] are reused; this type only says which service failed (the ECS error's texts name
//! ECS) and adds the failure of reading the OIDC token file.

use std::fmt;

use crate::aliyun::EcsError;

/// Who was asked for temporary credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialService {
    /// STS `AssumeRoleWithOIDC`.
    Sts,
    /// The ECS instance metadata service (the instance's RAM role).
    InstanceMetadata,
}

impl CredentialService {
    fn name(self) -> &'static str {
        match self {
            Self::Sts => "STS",
            Self::InstanceMetadata => "the instance metadata service",
        }
    }
}

impl fmt::Display for CredentialService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Code of a token file that could not be read (or held no token) at renewal time.
pub const CODE_TOKEN_FILE: &str = "OIDCTokenFileUnreadable";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StsError {
    /// The service answered with an error, an unusable answer, or not at all. `code()` is the
    /// service's `Code` (e.g. `AuthenticationFail.OIDCToken.Expired`) or an operator code
    /// (`Timeout`, `ConnectionFailed`, `MalformedResponse`, ...).
    #[error("{}", call_text(*service, error))]
    Call {
        service: CredentialService,
        error: EcsError,
    },
    /// The OIDC token file, re-read for every exchange, is gone, unreadable or empty. The path is
    /// not secret; the token is never quoted.
    #[error("cannot read the OIDC token file {path}: {reason}")]
    TokenFile { path: String, reason: String },
}

fn call_text(service: CredentialService, error: &EcsError) -> String {
    let name = service.name();
    match error {
        EcsError::Api { code, message, .. } => format!("{name} answered {code}: {message}"),
        EcsError::MalformedResponse {
            http_status,
            reason,
            ..
        } => format!("malformed response from {name} (HTTP {http_status}): {reason}"),
        EcsError::ResponseTooLarge { http_status, limit } => {
            format!("response from {name} (HTTP {http_status}) is larger than {limit} bytes")
        }
        other => other.to_string(),
    }
}

impl StsError {
    pub(crate) fn sts(error: EcsError) -> Self {
        Self::Call {
            service: CredentialService::Sts,
            error,
        }
    }

    pub(crate) fn metadata(error: EcsError) -> Self {
        Self::Call {
            service: CredentialService::InstanceMetadata,
            error,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Self::Call { error, .. } => error.code(),
            Self::TokenFile { .. } => CODE_TOKEN_FILE,
        }
    }

    /// A message for a status or an Event: bounded, sanitised, no RequestId, no token.
    pub fn message(&self) -> String {
        match self {
            Self::Call {
                error: EcsError::Api { message, .. },
                ..
            } => message.clone(),
            other => other.to_string(),
        }
    }

    /// True when the same exchange may succeed later without a change of configuration: 5xx,
    /// `Throttling*`, timeouts, connection errors, garbled answers, an expired OIDC token and a
    /// token file that the kubelet may be rewriting. Other refusals (4xx) are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            // An expired OIDC token: the next exchange reads (or requests) a fresh one, and the
            // kubelet rewrites a projected token file on its own.
            Self::Call { error, .. } if error.code() == "AuthenticationFail.OIDCToken.Expired" => {
                true
            }
            Self::Call { error, .. } => error.is_retryable(),
            Self::TokenFile { .. } => true,
        }
    }

    pub fn is_throttling(&self) -> bool {
        matches!(self, Self::Call { error, .. } if error.is_throttling())
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Call { error, .. } => error.request_id(),
            Self::TokenFile { .. } => None,
        }
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Call { error, .. } => error.http_status(),
            Self::TokenFile { .. } => None,
        }
    }

    /// Which service failed; `None` for the token file.
    pub fn service(&self) -> Option<CredentialService> {
        match self {
            Self::Call { service, .. } => Some(*service),
            Self::TokenFile { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aliyun::decode_error;

    fn sts_answer(status: u16, code: &str) -> StsError {
        let body = serde_json::json!({
            "RequestId": "5B6B2E3F-REQ",
            "HostId": "sts.aliyuncs.com",
            "Code": code,
            "Message": "Some message.",
            "Recommend": "https://api.aliyun.com/troubleshoot?q=x",
        })
        .to_string();
        StsError::sts(decode_error(status, body.as_bytes(), &[]))
    }

    #[test]
    fn refusals_are_terminal_and_trouble_is_retried() {
        for (status, code, retryable) in [
            // A fresh token fixes it: the next exchange reads or requests one.
            (401, "AuthenticationFail.OIDCToken.Expired", true),
            (401, "AuthenticationFail.OIDCToken.InvalidSignature", false),
            (401, "AuthenticationFail.NoPermission", false),
            (404, "EntityNotExist.Role", false),
            (403, "NoPermission", false),
            (400, "MissingParameter", false),
            (400, "InvalidParameter.RoleSessionName", false),
            (400, "Throttling.User", true),
            (500, "InternalError", true),
            (503, "ServiceUnavailable", true),
            (502, "SomethingNew", true),
        ] {
            let err = sts_answer(status, code);
            assert_eq!(err.code(), code);
            assert_eq!(err.is_retryable(), retryable, "{code}");
            assert_eq!(err.message(), "Some message.");
            assert_eq!(err.request_id(), Some("5B6B2E3F-REQ"));
            assert_eq!(err.http_status(), Some(status));
            assert_eq!(err.service(), Some(CredentialService::Sts));
            assert_eq!(
                err.to_string(),
                format!("STS answered {code}: Some message.")
            );
        }
        assert!(sts_answer(400, "Throttling").is_throttling());
    }

    #[test]
    fn texts_name_the_service_not_ecs() {
        let err = StsError::metadata(decode_error(502, b"<html>", &[]));
        assert_eq!(err.code(), "MalformedResponse");
        assert!(err.is_retryable());
        assert!(
            err.to_string()
                .starts_with("malformed response from the instance metadata service (HTTP 502)"),
            "{err}"
        );
        let err = StsError::sts(EcsError::ResponseTooLarge {
            http_status: 200,
            limit: 10,
        });
        assert_eq!(
            err.to_string(),
            "response from STS (HTTP 200) is larger than 10 bytes"
        );
        let err = StsError::TokenFile {
            path: "/var/run/token".into(),
            reason: "not found".into(),
        };
        assert_eq!(err.code(), "OIDCTokenFileUnreadable");
        assert!(err.is_retryable());
        assert_eq!(
            err.message(),
            "cannot read the OIDC token file /var/run/token: not found"
        );
    }
}
