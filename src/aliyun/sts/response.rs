//! Answers that carry temporary credentials, from bytes to values: STS `AssumeRoleWithOIDC` and
//! the instance metadata service's RAM-role credentials. Both are untrusted bytes: every field is
//! checked, nothing from the body is quoted in an error, and the values never reach `Debug`.

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use crate::aliyun::credentials::Credentials;
use crate::aliyun::error::EcsError;
use crate::aliyun::response::{parse_answer, request_id};

/// The longest an answer's credentials may live, counted from when the request was sent: STS
/// issues at most 12 h, the metadata service 6 h; anything far beyond is a broken answer or clock.
pub const MAX_LIFETIME: SignedDuration = SignedDuration::from_hours(48);
/// How far in the past an `Expiration` may lie and still be taken (the clocks may disagree; the
/// renewal schedule copes with an answer that is already expired by this clock).
pub const MAX_PAST_EXPIRATION: SignedDuration = SignedDuration::from_hours(48);

const MAX_ID_CHARS: usize = 256;
const MAX_SECRET_CHARS: usize = 256;
const MAX_TOKEN_CHARS: usize = 16 * 1024;

/// Temporary credentials and when they stop working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsCredentials {
    /// Always with a security token.
    pub credentials: Credentials,
    pub expiration: Timestamp,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleBody {
    request_id: Option<String>,
    credentials: Option<CredentialFields>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialFields {
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

/// A 2xx answer to `AssumeRoleWithOIDC`: `{"RequestId", "Credentials": {...}, ...}`.
pub(crate) fn decode_assumed_role(
    body: &[u8],
    status: u16,
    sent_at: Timestamp,
) -> Result<StsCredentials, EcsError> {
    let parsed: AssumeRoleBody = parse_answer(body, status)?;
    let request_id = request_id(parsed.request_id);
    let Some(fields) = parsed.credentials else {
        return Err(refused(status, "answer has no Credentials", request_id));
    };
    checked(fields, status, sent_at, request_id, "Credentials.")
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InstanceCredentialsBody {
    code: Option<String>,
    #[serde(flatten)]
    fields: CredentialFields,
}

/// A 2xx answer from `/latest/meta-data/ram/security-credentials/<role>`:
/// `{"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration", "LastUpdated", "Code"}`,
/// with `Code` `Success`.
pub(crate) fn decode_instance_credentials(
    body: &[u8],
    status: u16,
    sent_at: Timestamp,
) -> Result<StsCredentials, EcsError> {
    let parsed: InstanceCredentialsBody = parse_answer(body, status)?;
    if parsed.code.as_deref() != Some("Success") {
        return Err(refused(status, "answer's Code is not Success", None));
    }
    checked(parsed.fields, status, sent_at, None, "")
}

fn refused(status: u16, reason: &str, request_id: Option<String>) -> EcsError {
    EcsError::MalformedResponse {
        http_status: status,
        reason: reason.to_owned(),
        request_id,
    }
}

/// Every field present and plausible. Errors name the field, never its value.
fn checked(
    fields: CredentialFields,
    status: u16,
    sent_at: Timestamp,
    request_id: Option<String>,
    prefix: &str,
) -> Result<StsCredentials, EcsError> {
    let fail = |reason: String| EcsError::MalformedResponse {
        http_status: status,
        reason,
        request_id: request_id.clone(),
    };
    let field = |value: Option<String>, name: &str, max: usize| -> Result<String, EcsError> {
        match value {
            None => Err(fail(format!("answer has no {prefix}{name}"))),
            Some(v) if v.is_empty() => Err(fail(format!("answer's {prefix}{name} is empty"))),
            Some(v) if v.len() > max || !v.bytes().all(|b| b.is_ascii_graphic()) => {
                Err(fail(format!(
                    "answer's {prefix}{name} is not printable ASCII of at most {max} characters"
                )))
            }
            Some(v) => Ok(v),
        }
    };
    let id = field(fields.access_key_id, "AccessKeyId", MAX_ID_CHARS)?;
    let secret = field(
        fields.access_key_secret,
        "AccessKeySecret",
        MAX_SECRET_CHARS,
    )?;
    let token = field(fields.security_token, "SecurityToken", MAX_TOKEN_CHARS)?;
    let expiration = field(fields.expiration, "Expiration", 64)?;
    let expiration = parse_expiration(&expiration).ok_or_else(|| {
        fail(format!(
            "answer's {prefix}Expiration is not an RFC 3339 time"
        ))
    })?;
    let ahead = expiration.duration_since(sent_at);
    if ahead > MAX_LIFETIME || ahead < -MAX_PAST_EXPIRATION {
        return Err(fail(format!(
            "answer's {prefix}Expiration is more than {} hours away from this clock",
            MAX_LIFETIME.as_hours()
        )));
    }
    Ok(StsCredentials {
        credentials: Credentials::new(id, secret, Some(token)),
        expiration,
    })
}

/// `2026-12-01T10:00:00Z` as STS and the metadata service write it (any RFC 3339 offset taken).
fn parse_expiration(text: &str) -> Option<Timestamp> {
    // jiff also takes a bare date-time with a `[zone]`; an expiry must carry its offset.
    if !text.contains('T') || !(text.ends_with('Z') || text.ends_with('z') || has_offset(text)) {
        return None;
    }
    text.parse().ok()
}

fn has_offset(text: &str) -> bool {
    let tail = text.len().saturating_sub(6);
    text.get(tail..)
        .is_some_and(|t| t.starts_with(['+', '-']) && t.as_bytes().get(3) == Some(&b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent() -> Timestamp {
        "2026-12-01T09:00:00Z".parse().unwrap()
    }

    fn sts_body(creds: serde_json::Value) -> Vec<u8> {
        serde_json::json!({
            "RequestId": "3D57EAD2-R",
            "AssumedRoleUser": {"Arn": "acs:ram::1:role/x/s", "AssumedRoleId": "3:s"},
            "OIDCTokenInfo": {"Subject": "system:serviceaccount:ns:sa", "Issuer": "https://i", "ClientIds": "sts.aliyuncs.com"},
            "Credentials": creds,
        })
        .to_string()
        .into_bytes()
    }

    fn good() -> serde_json::Value {
        serde_json::json!({
            "AccessKeyId": "STS.NUgYrLnoC37mZZCNnAbez2",
            "AccessKeySecret": "CVwjCkNzTMupZ8NbTCxCBRq3K16jtcWFTJAyBEv2",
            "SecurityToken": "CAIS+AF1q6Ft5B2yfSjIr5D+/xx==",
            "Expiration": "2026-12-01T10:00:00Z",
        })
    }

    #[test]
    fn a_good_answer_decodes() {
        let c = decode_assumed_role(&sts_body(good()), 200, sent()).unwrap();
        assert_eq!(c.credentials.access_key_id(), "STS.NUgYrLnoC37mZZCNnAbez2");
        assert_eq!(
            c.credentials.security_token(),
            Some("CAIS+AF1q6Ft5B2yfSjIr5D+/xx==")
        );
        assert_eq!(c.expiration, "2026-12-01T10:00:00Z".parse().unwrap());
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("CVwjCk") && !shown.contains("CAIS"),
            "{shown}"
        );
    }

    #[test]
    fn missing_empty_or_odd_fields_are_refused_by_name_without_quoting() {
        for (field, value) in [
            ("AccessKeyId", serde_json::Value::Null),
            ("AccessKeySecret", serde_json::json!("")),
            ("SecurityToken", serde_json::json!("has space")),
            ("SecurityToken", serde_json::json!("x".repeat(20_000))),
            ("Expiration", serde_json::json!("tomorrow")),
            ("Expiration", serde_json::json!("2026-12-01T10:00:00")),
            ("Expiration", serde_json::json!("2026-12-01")),
            ("Expiration", serde_json::json!("2099-01-01T00:00:00Z")),
            ("Expiration", serde_json::json!("2001-01-01T00:00:00Z")),
            ("Expiration", serde_json::json!(5)),
        ] {
            let mut creds = good();
            if value.is_null() {
                creds.as_object_mut().unwrap().remove(field);
            } else {
                creds[field] = value.clone();
            }
            let err = decode_assumed_role(&sts_body(creds), 200, sent()).unwrap_err();
            assert_eq!(err.code(), "MalformedResponse", "{field}={value}");
            let text = err.to_string();
            assert!(
                text.contains(field) || text.contains("wrong type"),
                "{field}: {text}"
            );
            assert!(!text.contains("CVwjCk") && !text.contains("CAIS"), "{text}");
            if value.as_str() == Some("has space") {
                assert!(!text.contains("has space"), "{text}");
            }
        }
        let err = decode_assumed_role(br#"{"RequestId":"r"}"#, 200, sent()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed response from ECS (HTTP 200): answer has no Credentials"
        );
        assert_eq!(err.request_id(), Some("r"));
        for garbage in [&b"not json"[..], b"[]", b"", br#"{"Credentials":"x"}"#] {
            let err = decode_assumed_role(garbage, 200, sent()).unwrap_err();
            assert_eq!(err.code(), "MalformedResponse");
        }
    }

    #[test]
    fn offsets_and_already_expired_answers_are_taken() {
        let mut creds = good();
        creds["Expiration"] = serde_json::json!("2026-12-01T18:00:00+08:00");
        let c = decode_assumed_role(&sts_body(creds), 200, sent()).unwrap();
        assert_eq!(c.expiration, "2026-12-01T10:00:00Z".parse().unwrap());
        let mut creds = good();
        creds["Expiration"] = serde_json::json!("2026-12-01T08:00:00Z");
        assert!(decode_assumed_role(&sts_body(creds), 200, sent()).is_ok());
    }

    #[test]
    fn instance_credentials_need_code_success() {
        let body = serde_json::json!({
            "AccessKeyId": "STS.id", "AccessKeySecret": "sec", "SecurityToken": "tok",
            "Expiration": "2026-12-01T15:00:00Z", "LastUpdated": "2026-12-01T09:00:00Z",
            "Code": "Success",
        });
        let c = decode_instance_credentials(body.to_string().as_bytes(), 200, sent()).unwrap();
        assert_eq!(c.credentials.access_key_secret(), "sec");
        let mut failed = body.clone();
        failed["Code"] = serde_json::json!("Failed");
        let err =
            decode_instance_credentials(failed.to_string().as_bytes(), 200, sent()).unwrap_err();
        assert!(err.to_string().contains("Code is not Success"), "{err}");
        let mut no_token = body;
        no_token.as_object_mut().unwrap().remove("SecurityToken");
        let err =
            decode_instance_credentials(no_token.to_string().as_bytes(), 200, sent()).unwrap_err();
        assert!(err.to_string().contains("no SecurityToken"), "{err}");
    }
}
