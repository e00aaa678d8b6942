//! Decoding ECS's error body into an [`EcsError`], and the cleaning every text an endpoint echoes
//! goes through (string-to-sign cut, secrets masked, control characters dropped, length bounded).

use serde::Deserialize;

use super::EcsError;
use super::codes::is_security_token_code;

/// The longest ECS `Message` kept; status fields and events have limits of their own.
const MAX_MESSAGE_CHARS: usize = 512;

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
            crate::aliyun::signature::percent_encode(secret),
            crate::aliyun::signature::percent_encode(&crate::aliyun::signature::percent_encode(
                secret,
            )),
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
    use crate::aliyun::error::codes::code_is_retryable;

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
}
