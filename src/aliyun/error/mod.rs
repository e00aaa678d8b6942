//! What can go wrong with an ECS call, and whether trying again can help.
//!
//! No variant holds a request URL: the query string carries the AccessKeyId, the signature and the
//! STS token.

mod codes;
pub(crate) mod decode;

use codes::{
    CODE_CLIENT_SETUP, CODE_CONNECTION_FAILED, CODE_MALFORMED, CODE_REQUEST_FAILED, CODE_TIMEOUT,
    CODE_TOO_LARGE, code_is_retryable, security_token_advice,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EcsError {
    /// ECS answered with an error body (or the operator concluded an ECS-style error, such as
    /// `InvalidInstanceId.NotFound` from an empty `DescribeInstances`; `http_status` is then `None`).
    #[error("ECS answered {code}: {message}")]
    Api {
        code: String,
        message: String,
        request_id: Option<String>,
        http_status: Option<u16>,
    },
    /// ECS refused the STS token (`InvalidSecurityToken.*`): expired, malformed or not the one
    /// issued with this AccessKey. Terminal until the credentials change; `code` is ECS's.
    #[error("ECS answered {code}: {}", security_token_advice(code))]
    SecurityTokenRejected {
        code: String,
        request_id: Option<String>,
        http_status: Option<u16>,
    },
    #[error("no answer from {endpoint} within {after_ms} ms")]
    Timeout { endpoint: String, after_ms: u64 },
    /// `request_sent`: the connection was made, so the request may have reached ECS (and issued
    /// a URL); false when it failed while connecting (DNS, TCP, TLS), before anything was sent.
    #[error("could not reach {endpoint}: {reason}")]
    ConnectionFailed {
        endpoint: String,
        reason: String,
        request_sent: bool,
    },
    #[error("malformed response from ECS (HTTP {http_status}): {reason}")]
    MalformedResponse {
        http_status: u16,
        reason: String,
        request_id: Option<String>,
    },
    #[error("ECS response (HTTP {http_status}) is larger than {limit} bytes")]
    ResponseTooLarge { http_status: u16, limit: usize },
    /// The request could not even be built; nothing was sent.
    #[error("request to {endpoint} could not be sent: {reason}")]
    RequestFailed { endpoint: String, reason: String },
    #[error("could not set up the HTTP client: {reason}")]
    ClientSetup { reason: String },
}

impl EcsError {
    /// The ECS `Code`, or an operator code: `Timeout`, `ConnectionFailed`, `MalformedResponse`,
    /// `ResponseTooLarge`, `RequestFailed`, `ClientSetup`.
    pub fn code(&self) -> &str {
        match self {
            Self::Api { code, .. } | Self::SecurityTokenRejected { code, .. } => code,
            Self::Timeout { .. } => CODE_TIMEOUT,
            Self::ConnectionFailed { .. } => CODE_CONNECTION_FAILED,
            Self::MalformedResponse { .. } => CODE_MALFORMED,
            Self::ResponseTooLarge { .. } => CODE_TOO_LARGE,
            Self::RequestFailed { .. } => CODE_REQUEST_FAILED,
            Self::ClientSetup { .. } => CODE_CLIENT_SETUP,
        }
    }

    /// A human message without the RequestId (which changes on every call).
    pub fn message(&self) -> String {
        match self {
            Self::Api { message, .. } => message.clone(),
            Self::SecurityTokenRejected { code, .. } => security_token_advice(code).to_owned(),
            other => other.to_string(),
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api { request_id, .. }
            | Self::SecurityTokenRejected { request_id, .. }
            | Self::MalformedResponse { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Api { http_status, .. } | Self::SecurityTokenRejected { http_status, .. } => {
                *http_status
            }
            Self::MalformedResponse { http_status, .. }
            | Self::ResponseTooLarge { http_status, .. } => Some(*http_status),
            _ => None,
        }
    }

    /// True when the same call may succeed later without any change to spec or Secret.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api {
                code, http_status, ..
            } => code_is_retryable(code, *http_status),
            // A garbled or huge answer is most likely a proxy in trouble; attempts stay bounded.
            Self::Timeout { .. }
            | Self::ConnectionFailed { .. }
            | Self::MalformedResponse { .. }
            | Self::ResponseTooLarge { .. } => true,
            Self::SecurityTokenRejected { .. }
            | Self::RequestFailed { .. }
            | Self::ClientSetup { .. } => false,
        }
    }

    /// True when the request certainly never left this process or never reached a listening
    /// endpoint: it cannot have issued anything.
    pub fn never_sent(&self) -> bool {
        match self {
            Self::ConnectionFailed { request_sent, .. } => !request_sent,
            Self::RequestFailed { .. } | Self::ClientSetup { .. } => true,
            _ => false,
        }
    }

    /// True when the endpoint answered with an error body (any code, throttling included): an
    /// answer that carries no VncUrl issued none.
    pub fn is_error_answer(&self) -> bool {
        matches!(self, Self::Api { .. } | Self::SecurityTokenRejected { .. })
    }

    /// True for throttling answers, which callers may want to report separately.
    pub fn is_throttling(&self) -> bool {
        matches!(self, Self::Api { code, .. } if code.starts_with("Throttling"))
    }

    /// The error an empty `DescribeInstances` answer stands for.
    pub(crate) fn instance_not_found(
        region_id: &str,
        instance_id: &str,
        request_id: Option<String>,
    ) -> Self {
        Self::Api {
            code: "InvalidInstanceId.NotFound".into(),
            message: format!(
                "The specified InstanceId does not exist: DescribeInstances found no {instance_id} in {region_id}."
            ),
            request_id,
            http_status: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_codes() {
        let e = EcsError::Timeout {
            endpoint: "http://127.0.0.1:1".into(),
            after_ms: 10,
        };
        assert_eq!(
            (e.code(), e.is_retryable(), e.http_status()),
            ("Timeout", true, None)
        );
        let e = EcsError::ConnectionFailed {
            endpoint: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
            request_sent: false,
        };
        assert_eq!(e.code(), "ConnectionFailed");
        assert!(e.never_sent());
        assert_eq!(
            e.to_string(),
            "could not reach http://127.0.0.1:1: connection refused"
        );
        assert_eq!(e.message(), e.to_string());
        let e = EcsError::ResponseTooLarge {
            http_status: 200,
            limit: 1 << 20,
        };
        assert_eq!((e.code(), e.is_retryable()), ("ResponseTooLarge", true));
        let e = EcsError::instance_not_found("cn-hangzhou", "i-x", Some("r".into()));
        assert_eq!(e.code(), "InvalidInstanceId.NotFound");
        assert!(!e.is_retryable());
        assert_eq!(e.request_id(), Some("r"));
    }
}
