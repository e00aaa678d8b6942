//! What can go wrong with an ECS call, and whether trying again can help.
//!
//! No variant holds a request URL: the query string carries the AccessKeyId, the signature and the
//! STS token.

use serde::Deserialize;

/// Operator-made codes, next to the `Code` values ECS itself answers with.
pub(crate) const CODE_TIMEOUT: &str = "Timeout";
pub(crate) const CODE_CONNECTION_FAILED: &str = "ConnectionFailed";
pub(crate) const CODE_MALFORMED: &str = "MalformedResponse";
pub(crate) const CODE_TOO_LARGE: &str = "ResponseTooLarge";
pub(crate) const CODE_REQUEST_FAILED: &str = "RequestFailed";
pub(crate) const CODE_CLIENT_SETUP: &str = "ClientSetup";

/// ECS's codes for an STS token it will not take (`.Expired`, `.Malformed`,
/// `.MismatchWithAccessKey`, ...).
const SECURITY_TOKEN_CODES: &str = "InvalidSecurityToken";

/// Codes that stay wrong until the spec or the Secret changes. A trailing `*` matches a prefix.
const TERMINAL_CODES: &[&str] = &[
    "InvalidSecurityToken*",
    "InvalidRegionId.NotFound",
    "InvalidInstanceId.NotFound",
    "InvalidRegionInstance",
    "InvalidAccessKeyId*",
    "SignatureDoesNotMatch",
    "Forbidden*",
    "MissingParameter*",
];

/// Codes that a later attempt can cure (`SignatureNonceUsed`: a new nonce does).
const RETRYABLE_CODES: &[&str] = &[
    "InternalError*",
    "ServiceUnavailable*",
    "Throttling*",
    "InstanceNotReady",
    "IncorrectInstanceStatus",
    "SignatureNonceUsed",
];

/// The longest ECS `Message` kept; status fields and events have limits of their own.
const MAX_MESSAGE_CHARS: usize = 512;

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

fn is_security_token_code(code: &str) -> bool {
    code.strip_prefix(SECURITY_TOKEN_CODES)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// What an `InvalidSecurityToken.*` code means and what fixes it. Fixed texts, so the status does
/// not change on every retry and nothing ECS echoed can reach it.
fn security_token_advice(code: &str) -> &'static str {
    if code.ends_with(".Expired") {
        "the STS security token has expired. Put a fresh securityToken (with its AccessKey pair) \
         in the credentials Secret, or use keyless access (spec.serviceAccountRef, or the \
         operator's RRSA credentials), whose tokens the operator renews itself"
    } else {
        "the STS security token is invalid or does not match the AccessKeyId. Put the \
         securityToken issued together with this AccessKey pair in the credentials Secret, or \
         use keyless access (spec.serviceAccountRef, or the operator's RRSA credentials)"
    }
}

fn matches_any(code: &str, patterns: &[&str]) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => code.starts_with(prefix),
        None => code == *p,
    })
}

/// Known codes first; unknown codes by HTTP status: 5xx and 429 retry, any other status is terminal.
pub(crate) fn code_is_retryable(code: &str, http_status: Option<u16>) -> bool {
    if matches_any(code, TERMINAL_CODES) {
        return false;
    }
    if matches_any(code, RETRYABLE_CODES) {
        return true;
    }
    matches!(http_status, Some(s) if s >= 500 || s == 429)
}

/// `{RequestId, HostId, Code, Message, Recommend}`; `HostId` and `Recommend` (a diagnosis link
/// with a query string) are left out on purpose.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
}

/// Decodes a non-2xx answer. `secrets` are values that must never come back out (ECS echoes its
/// string-to-sign, which holds the AccessKeyId and STS token, in `SignatureDoesNotMatch`).
pub(crate) fn decode_error_body(http_status: u16, body: &[u8], secrets: &[&str]) -> EcsError {
    let parsed: ErrorBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            return EcsError::MalformedResponse {
                http_status,
                // Described, never quoted: serde's message can carry the offending value, which
                // a hostile endpoint controls (or which echoes a secret).
                reason: format!(
                    "error body is not the expected JSON ({:?} error at line {}, column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                ),
                request_id: None,
            };
        }
    };
    let Some(code) = parsed.code.filter(|c| !c.trim().is_empty()) else {
        return EcsError::MalformedResponse {
            http_status,
            reason: "error body has no Code".into(),
            request_id: parsed.request_id,
        };
    };
    let code = sanitize(code.trim(), secrets, 128);
    if is_security_token_code(&code) {
        return EcsError::SecurityTokenRejected {
            code,
            request_id: parsed.request_id,
            http_status: Some(http_status),
        };
    }
    EcsError::Api {
        code,
        message: sanitize(
            parsed.message.as_deref().unwrap_or(""),
            secrets,
            MAX_MESSAGE_CHARS,
        ),
        request_id: parsed.request_id,
        http_status: Some(http_status),
    }
}

/// Cuts an echoed string-to-sign, masks known secrets (raw and percent-encoded), drops control
/// characters and bounds the length.
pub(crate) fn sanitize(text: &str, secrets: &[&str], max_chars: usize) -> String {
    let mut text = text.to_owned();
    if let Some(at) = text.to_ascii_lowercase().find("string to sign") {
        text.truncate(at);
        text.push_str("string to sign: <omitted>");
    }
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        for form in [
            (*secret).to_owned(),
            super::signature::percent_encode(secret),
            super::signature::percent_encode(&super::signature::percent_encode(secret)),
        ] {
            text = text.replace(&form, "****");
        }
    }
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str, message: &str) -> Vec<u8> {
        serde_json::json!({
            "RequestId": "473469C7-AA6F-4DC5-B3DB-A3DC0DE3C83E",
            "HostId": "ecs.aliyuncs.com",
            "Code": code,
            "Message": message,
            "Recommend": "https://api.aliyun.com/troubleshoot?q=x&product=Ecs&requestId=473469C7",
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn seed_error_codes_are_decoded_and_classified() {
        let cases = [
            (400, "InvalidRegionInstance", false),
            (403, "IncorrectInstanceStatus", true),
            (403, "InstanceNotReady", true),
            (404, "InvalidRegionId.NotFound", false),
            (404, "InvalidInstanceId.NotFound", false),
            (500, "InternalError", true),
        ];
        for (status, code, retryable) in cases {
            let err = decode_error_body(status, &body(code, "Some message."), &[]);
            assert_eq!(err.code(), code);
            assert_eq!(err.message(), "Some message.");
            assert_eq!(err.http_status(), Some(status));
            assert_eq!(
                err.request_id(),
                Some("473469C7-AA6F-4DC5-B3DB-A3DC0DE3C83E")
            );
            assert_eq!(err.is_retryable(), retryable, "{code}");
            let shown = err.to_string();
            assert_eq!(shown, format!("ECS answered {code}: Some message."));
            assert!(!shown.contains("https://"), "no Recommend link in Display");
            assert!(!format!("{err:?}").contains("https://"), "nor in Debug");
        }
    }

    #[test]
    fn terminal_and_retryable_families() {
        for code in [
            "InvalidAccessKeyId.NotFound",
            "SignatureDoesNotMatch",
            "Forbidden",
            "Forbidden.RAM",
            "Forbidden.NotAuthorized",
            "MissingParameter",
            "MissingParameter.RegionId",
            "InvalidParameter",
        ] {
            assert!(!code_is_retryable(code, Some(400)), "{code}");
            assert!(!code_is_retryable(code, Some(403)), "{code}");
        }
        // Listed terminal codes win even if a proxy turned them into a 5xx.
        assert!(!code_is_retryable("SignatureDoesNotMatch", Some(503)));
        for code in [
            "InternalError",
            "ServiceUnavailable",
            "Throttling",
            "Throttling.User",
            "Throttling.Api",
            "InstanceNotReady",
            "IncorrectInstanceStatus",
            "SignatureNonceUsed",
        ] {
            assert!(code_is_retryable(code, Some(400)), "{code}");
        }
    }

    #[test]
    fn a_rejected_sts_token_is_its_own_terminal_failure_with_advice() {
        for code in [
            "InvalidSecurityToken.Expired",
            "InvalidSecurityToken.Malformed",
            "InvalidSecurityToken.MismatchWithAccessKey",
            "InvalidSecurityToken.Mismatch",
            "InvalidSecurityToken",
        ] {
            let err = decode_error_body(
                400,
                &body(
                    code,
                    "The security token you provided sts-token-value is bad.",
                ),
                &["sts-token-value"],
            );
            assert!(
                matches!(err, EcsError::SecurityTokenRejected { .. }),
                "{code}: {err:?}"
            );
            assert_eq!(err.code(), code, "ECS's code is kept");
            assert!(!err.is_retryable(), "{code}");
            assert!(!code_is_retryable(code, Some(503)), "{code}");
            assert_eq!(err.http_status(), Some(400));
            assert_eq!(
                err.request_id(),
                Some("473469C7-AA6F-4DC5-B3DB-A3DC0DE3C83E")
            );
            let message = err.message();
            assert!(message.contains("securityToken"), "{message}");
            assert!(message.contains("credentials Secret"), "{message}");
            assert!(message.contains("spec.serviceAccountRef"), "{message}");
            assert!(!message.contains("473469C7"), "no RequestId: {message}");
            for shown in [err.to_string(), format!("{err:?}"), message] {
                assert!(!shown.contains("sts-token-value"), "{shown}");
            }
        }
        let expired = decode_error_body(400, &body("InvalidSecurityToken.Expired", "x"), &[]);
        assert!(
            expired
                .message()
                .starts_with("the STS security token has expired")
        );
        assert!(expired.to_string().starts_with(
            "ECS answered InvalidSecurityToken.Expired: the STS security token has expired"
        ));
        let mismatch = decode_error_body(
            400,
            &body("InvalidSecurityToken.MismatchWithAccessKey", "x"),
            &[],
        );
        assert!(
            mismatch
                .message()
                .contains("does not match the AccessKeyId")
        );
        // Only the family itself, not a code that merely starts with the same letters.
        let other = decode_error_body(400, &body("InvalidSecurityTokenFormat", "x"), &[]);
        assert!(matches!(other, EcsError::Api { .. }));
    }

    #[test]
    fn unknown_codes_follow_the_http_status() {
        assert!(code_is_retryable("UnknownError", Some(500)));
        assert!(code_is_retryable("Whatever", Some(503)));
        assert!(code_is_retryable("Whatever", Some(429)));
        assert!(!code_is_retryable("Whatever", Some(400)));
        assert!(!code_is_retryable("Whatever", Some(404)));
        assert!(!code_is_retryable("Whatever", None));
    }

    #[test]
    fn garbage_is_malformed_and_retryable_never_a_panic() {
        for raw in [
            &b"<html>502 Bad Gateway</html>"[..],
            b"",
            b"{",
            b"[]",
            b"null",
            b"{\"Code\": 5}",
            &[0xff, 0x00, 0x13],
        ] {
            let err = decode_error_body(502, raw, &[]);
            assert_eq!(err.code(), "MalformedResponse", "{raw:?}");
            assert!(err.is_retryable());
            assert_eq!(err.http_status(), Some(502));
        }
        let err = decode_error_body(400, br#"{"RequestId":"r1","Message":"m"}"#, &[]);
        assert_eq!(err.code(), "MalformedResponse");
        assert_eq!(err.request_id(), Some("r1"));
    }

    #[test]
    fn missing_message_is_empty_not_an_error() {
        let err = decode_error_body(404, br#"{"Code":"InvalidRegionId.NotFound"}"#, &[]);
        assert_eq!(err.code(), "InvalidRegionId.NotFound");
        assert_eq!(err.message(), "");
        assert_eq!(err.request_id(), None);
    }

    #[test]
    fn echoed_string_to_sign_and_secrets_are_removed() {
        let msg = "Specified signature is not matched with our calculation. server string to sign \
                   is:POST&%2F&AccessKeyId%3DLTAIsecretid%26SecurityToken%3Dsts-token-value";
        let err = decode_error_body(
            400,
            &body("SignatureDoesNotMatch", msg),
            &["LTAIsecretid", "sts-token-value"],
        );
        let m = err.message();
        assert!(m.starts_with("Specified signature is not matched"), "{m}");
        assert!(
            !m.contains("LTAIsecretid") && !m.contains("sts-token"),
            "{m}"
        );
        assert!(!err.is_retryable());

        let m = sanitize("token a/b+c= leaked as a%2Fb%2Bc%3D", &["a/b+c="], 100);
        assert_eq!(m, "token **** leaked as ****");
    }

    #[test]
    fn long_messages_are_bounded() {
        let long = "x".repeat(10_000);
        let err = decode_error_body(400, &body("InvalidParameter", &long), &[]);
        assert!(err.message().chars().count() <= MAX_MESSAGE_CHARS + 1);
    }

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
