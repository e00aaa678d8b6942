//! Which ECS codes a later attempt can cure and which stay wrong until the spec or the Secret
//! changes, and the operator's own codes for failures that never got an ECS answer.

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

pub(super) fn is_security_token_code(code: &str) -> bool {
    code.strip_prefix(SECURITY_TOKEN_CODES)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// What an `InvalidSecurityToken.*` code means and what fixes it. Fixed texts, so the status does
/// not change on every retry and nothing ECS echoed can reach it.
pub(super) fn security_token_advice(code: &str) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn unknown_codes_follow_the_http_status() {
        assert!(code_is_retryable("UnknownError", Some(500)));
        assert!(code_is_retryable("Whatever", Some(503)));
        assert!(code_is_retryable("Whatever", Some(429)));
        assert!(!code_is_retryable("Whatever", Some(400)));
        assert!(!code_is_retryable("Whatever", Some(404)));
        assert!(!code_is_retryable("Whatever", None));
    }
}
