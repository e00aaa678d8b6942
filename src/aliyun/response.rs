//! ECS answers, from bytes to values: the success bodies of the calls the client makes, and error
//! bodies. Pure functions of the bytes, so property tests and fuzz targets call them directly.
//!
//! The bytes come from whatever the endpoint is; every text taken from them is bounded and free of
//! control characters before it can reach a status, an Event or a log line.

use std::fmt;

use jiff::Timestamp;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use super::error::EcsError;
use super::error::decode::{decode_error_body, sanitize};
use super::http::Reply;

/// The longest `RequestId` kept (ECS sends a 36-character UUID); it is written to the status.
pub const MAX_REQUEST_ID_CHARS: usize = 128;
/// The longest `reason` of a `MalformedResponse` (the error-body decoder quotes serde, which may
/// quote the whole body).
pub const MAX_REASON_CHARS: usize = 300;

/// A freshly issued VncUrl. `Debug` leaves the URL out: it must not reach logs.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedVncUrl {
    /// As ECS returned it (already percent-encoded).
    pub vnc_url: String,
    pub request_id: String,
    /// When the successful attempt's request was sent; the URL's validity counts from here.
    pub sent_at: Timestamp,
}

impl fmt::Debug for IssuedVncUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedVncUrl")
            .field("vnc_url", &"<redacted>")
            .field("request_id", &self.request_id)
            .field("sent_at", &self.sent_at)
            .finish()
    }
}

/// `OSType` as `DescribeInstances` reports it; only `windows` means Windows.
pub fn os_type_is_windows(os_type: &str) -> bool {
    os_type.trim().eq_ignore_ascii_case("windows")
}

/// A non-2xx answer. `secrets` never come back out (ECS echoes its string-to-sign, AccessKeyId and
/// STS token included, in `SignatureDoesNotMatch`).
pub fn decode_error(http_status: u16, body: &[u8], secrets: &[&str]) -> EcsError {
    bounded(decode_error_body(http_status, body, secrets), secrets)
}

/// What a reply stands for: a 2xx body through `decode`, any other as an error body (see
/// [`decode_error`]).
pub(crate) fn decode_reply<T>(
    reply: &Reply,
    secrets: &[&str],
    decode: impl FnOnce(&[u8], u16, Timestamp) -> Result<T, EcsError>,
) -> Result<T, EcsError> {
    if reply.is_success() {
        decode(&reply.body, reply.status, reply.sent_at)
    } else {
        Err(decode_error(reply.status, &reply.body, secrets))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VncUrlBody {
    vnc_url: Option<String>,
    request_id: Option<String>,
}

/// A 2xx answer to `DescribeInstanceVncUrl`: `{"RequestId", "VncUrl"}`, both non-empty.
pub fn decode_vnc_url(
    body: &[u8],
    status: u16,
    sent_at: Timestamp,
) -> Result<IssuedVncUrl, EcsError> {
    let parsed: VncUrlBody = parse_answer(body, status)?;
    let request_id = request_id(parsed.request_id.filter(|r| !r.is_empty()));
    match (parsed.vnc_url.filter(|v| !v.is_empty()), request_id) {
        (Some(vnc_url), _) if !is_plain_vnc_url(&vnc_url) => Err(EcsError::MalformedResponse {
            http_status: status,
            reason: format!(
                "the VncUrl is not a percent-encoded address of at most {MAX_VNC_URL_BYTES} bytes"
            ),
            request_id: None,
        }),
        (Some(vnc_url), Some(request_id)) => Ok(IssuedVncUrl {
            vnc_url,
            request_id,
            sent_at,
        }),
        (None, request_id) => Err(EcsError::MalformedResponse {
            http_status: status,
            reason: "answer has no VncUrl".into(),
            request_id,
        }),
        (Some(_), None) => Err(EcsError::MalformedResponse {
            http_status: status,
            reason: "answer has no RequestId".into(),
            request_id: None,
        }),
    }
}

/// A real VncUrl is a few hundred bytes, every reserved character percent-encoded; it goes into
/// status twice and into the console URL's query, so anything else is refused.
pub const MAX_VNC_URL_BYTES: usize = 4096;

fn is_plain_vnc_url(v: &str) -> bool {
    v.len() <= MAX_VNC_URL_BYTES
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'.' | b'_' | b'~' | b'-'))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InstancesBody {
    instances: Option<InstanceList>,
    request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InstanceList {
    #[serde(default)]
    instance: Vec<InstanceItem>,
}

#[derive(Deserialize)]
struct InstanceItem {
    #[serde(rename = "InstanceId")]
    instance_id: Option<String>,
    #[serde(rename = "OSType")]
    os_type: Option<String>,
}

/// A 2xx answer to `DescribeInstances`: the `OSType` of `instance_id`. An answer without the
/// instance is `InvalidInstanceId.NotFound`.
pub fn decode_os_type(
    body: &[u8],
    status: u16,
    region_id: &str,
    instance_id: &str,
) -> Result<String, EcsError> {
    let parsed: InstancesBody = parse_answer(body, status)?;
    let request_id = request_id(parsed.request_id);
    let Some(list) = parsed.instances else {
        return Err(EcsError::MalformedResponse {
            http_status: status,
            reason: "answer has no Instances".into(),
            request_id,
        });
    };
    let Some(item) = list
        .instance
        .into_iter()
        .find(|i| i.instance_id.as_deref() == Some(instance_id))
    else {
        return Err(EcsError::instance_not_found(
            region_id,
            instance_id,
            request_id,
        ));
    };
    match item.os_type.filter(|o| !o.trim().is_empty()) {
        Some(os) => Ok(os),
        None => Err(EcsError::MalformedResponse {
            http_status: status,
            reason: "instance has no OSType".into(),
            request_id,
        }),
    }
}

/// The body of a 2xx answer as `T`. Says what is wrong without quoting the body: serde's own
/// message quotes an offending string whole, and the body is whatever the endpoint chose to send
/// (the reason reaches the status).
pub(crate) fn parse_answer<T: DeserializeOwned>(body: &[u8], status: u16) -> Result<T, EcsError> {
    serde_json::from_slice(body).map_err(|e| malformed(status, e))
}

fn malformed(status: u16, e: serde_json::Error) -> EcsError {
    let what = match e.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "syntax error",
        Category::Data => "a value of the wrong type",
        Category::Eof => "cut short",
    };
    EcsError::MalformedResponse {
        http_status: status,
        reason: format!(
            "answer is not the expected JSON ({what} at line {}, column {})",
            e.line(),
            e.column()
        ),
        request_id: None,
    }
}

/// A `RequestId` as the body gave it, bounded: ECS sends a UUID, anything else may be anything.
pub(crate) fn request_id(id: Option<String>) -> Option<String> {
    id.map(|id| bound_request_id(id, &[]))
}

fn bound_request_id(id: String, secrets: &[&str]) -> String {
    let plain = id.chars().count() <= MAX_REQUEST_ID_CHARS && !id.chars().any(char::is_control);
    if plain && !secrets.iter().any(|s| s.len() >= 4 && id.contains(s)) {
        return id;
    }
    sanitize(&id, secrets, MAX_REQUEST_ID_CHARS)
}

/// The texts an error decoder took from the body, bounded and with `secrets` masked (the error
/// decoder itself masks only `Code` and `Message`).
fn bounded(err: EcsError, secrets: &[&str]) -> EcsError {
    match err {
        EcsError::MalformedResponse {
            http_status,
            reason,
            request_id,
        } => EcsError::MalformedResponse {
            http_status,
            reason: sanitize(&reason, secrets, MAX_REASON_CHARS),
            request_id: request_id.map(|id| bound_request_id(id, secrets)),
        },
        EcsError::Api {
            code,
            message,
            request_id,
            http_status,
        } => EcsError::Api {
            code,
            message,
            request_id: request_id.map(|id| bound_request_id(id, secrets)),
            http_status,
        },
        EcsError::SecurityTokenRejected {
            code,
            request_id,
            http_status,
        } => EcsError::SecurityTokenRejected {
            code,
            request_id: request_id.map(|id| bound_request_id(id, secrets)),
            http_status,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_vnc_url_that_could_inject_into_the_console_url_or_bloat_status_is_refused() {
        let t = jiff::Timestamp::UNIX_EPOCH;
        let ok = br#"{"RequestId":"R","VncUrl":"wss%3A%2F%2Fhz01-vncproxy.aliyun.com%2Fwebsockify%2F%3Fs%3Dab"}"#;
        assert!(super::decode_vnc_url(ok, 200, t).is_ok());
        for bad in [
            r#"{"RequestId":"R","VncUrl":"wss://evil/x&instanceId=i-other"}"#.to_owned(),
            r#"{"RequestId":"R","VncUrl":"a#b"}"#.to_owned(),
            format!(r#"{{"RequestId":"R","VncUrl":"{}"}}"#, "a".repeat(5000)),
        ] {
            assert!(
                super::decode_vnc_url(bad.as_bytes(), 200, t).is_err(),
                "{bad:.80}"
            );
        }
    }

    use super::*;

    #[test]
    fn vnc_url_body_decoding() {
        let t = Timestamp::UNIX_EPOCH;
        let ok = decode_vnc_url(br#"{"VncUrl":"wss%3A%2F%2Fx","RequestId":"r"}"#, 200, t).unwrap();
        assert_eq!(ok.vnc_url, "wss%3A%2F%2Fx");
        assert_eq!(ok.request_id, "r");
        assert!(!format!("{ok:?}").contains("wss"), "Debug redacts the URL");
        for bad in [
            &b"{}"[..],
            br#"{"RequestId":"r"}"#,
            br#"{"VncUrl":"","RequestId":"r"}"#,
            br#"{"VncUrl":"x"}"#,
            br#"{"VncUrl":5,"RequestId":"r"}"#,
            b"not json",
            b"[1,2]",
        ] {
            let err = decode_vnc_url(bad, 200, t).unwrap_err();
            assert_eq!(err.code(), "MalformedResponse", "{bad:?}");
            assert!(err.is_retryable());
        }
    }

    #[test]
    fn instances_body_decoding() {
        let body = br#"{"RequestId":"r","TotalCount":1,"Instances":{"Instance":[
            {"InstanceId":"i-other","OSType":"linux"},
            {"InstanceId":"i-win","OSType":"windows"}]}}"#;
        assert_eq!(
            decode_os_type(body, 200, "cn-hangzhou", "i-win").unwrap(),
            "windows"
        );
        let err = decode_os_type(body, 200, "cn-hangzhou", "i-gone").unwrap_err();
        assert_eq!(err.code(), "InvalidInstanceId.NotFound");
        assert!(!err.is_retryable());
        assert_eq!(err.request_id(), Some("r"));

        let empty = br#"{"RequestId":"r","TotalCount":0,"Instances":{"Instance":[]}}"#;
        let err = decode_os_type(empty, 200, "cn-hangzhou", "i-win").unwrap_err();
        assert_eq!(err.code(), "InvalidInstanceId.NotFound");

        let err = decode_os_type(br#"{"RequestId":"r"}"#, 200, "r", "i").unwrap_err();
        assert_eq!(err.code(), "MalformedResponse");
        let no_os = br#"{"Instances":{"Instance":[{"InstanceId":"i-win"}]}}"#;
        let err = decode_os_type(no_os, 200, "r", "i-win").unwrap_err();
        assert_eq!(err.code(), "MalformedResponse");
    }

    #[test]
    fn texts_taken_from_a_hostile_answer_are_bounded() {
        let t = Timestamp::UNIX_EPOCH;
        // serde quotes a mistyped string whole: this was a 1 MiB reason, and the reason of a
        // DescribeInstances answer reaches the status.
        let huge = "x".repeat(1 << 20);
        let body = format!(r#"{{"Instances":"{huge}","RequestId":"{huge}"}}"#);
        let err = decode_os_type(body.as_bytes(), 200, "r", "i").unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed response from ECS (HTTP 200): answer is not the expected JSON \
             (a value of the wrong type at line 1, column 1048591)"
        );

        let body = format!(r#"{{"VncUrl":"wss%3A%2F%2Fx","RequestId":"{huge}\n"}}"#);
        let issued = decode_vnc_url(body.as_bytes(), 200, t).unwrap();
        assert!(issued.request_id.chars().count() <= MAX_REQUEST_ID_CHARS + 1);
        let body = format!(r#"{{"RequestId":"{huge}"}}"#);
        let err = decode_vnc_url(body.as_bytes(), 200, t).unwrap_err();
        assert!(err.request_id().unwrap().chars().count() <= MAX_REQUEST_ID_CHARS + 1);
        let body = format!(r#"{{"Code":"Throttling","Message":"m","RequestId":"{huge}"}}"#);
        let err = decode_error(400, body.as_bytes(), &[]);
        assert_eq!(err.code(), "Throttling");
        assert!(err.request_id().unwrap().chars().count() <= MAX_REQUEST_ID_CHARS + 1);
        let err = decode_error(502, format!("<html>{huge}").as_bytes(), &[]);
        assert!(err.to_string().len() < 1000, "{}", err.to_string().len());
    }

    #[test]
    fn a_malformed_answer_is_described_not_quoted() {
        let t = Timestamp::UNIX_EPOCH;
        for (body, what) in [
            (
                &br#"{"VncUrl":"wss%3A%2F%2Fx","RequestId":"LTAI5tKeyId"#[..],
                "cut short",
            ),
            (
                br#"{"VncUrl":["LTAI5tKeyId"]}"#,
                "a value of the wrong type",
            ),
            (br#""LTAI5tKeyId""#, "a value of the wrong type"),
            (b"LTAI5tKeyId", "syntax error"),
        ] {
            let text = decode_vnc_url(body, 200, t).unwrap_err().to_string();
            assert!(text.contains(what), "{text}");
            assert!(!text.contains("LTAI5tKeyId"), "{text}");
        }
    }

    #[test]
    fn an_error_body_that_is_one_json_string_does_not_echo_a_secret() {
        let body = br#""SignatureDoesNotMatch for LTAI5tKeyId and token STS.abc123""#;
        let err = decode_error(400, body, &["LTAI5tKeyId", "STS.abc123"]);
        assert_eq!(err.code(), "MalformedResponse");
        let text = err.to_string();
        assert!(
            !text.contains("LTAI5tKeyId") && !text.contains("STS.abc123"),
            "{text}"
        );
        assert!(
            text.contains("line 1, column"),
            "described, not quoted: {text}"
        );
    }

    #[test]
    fn a_normal_request_id_is_kept_as_sent() {
        let id = "473469C7-AA6F-4DC5-B3DB-A3DC0DE3C83E";
        let body = format!(r#"{{"VncUrl":"wss%3A%2F%2Fx","RequestId":"{id}"}}"#);
        let issued = decode_vnc_url(body.as_bytes(), 200, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(issued.request_id, id);
    }

    #[test]
    fn windows_detection() {
        assert!(os_type_is_windows("windows"));
        assert!(os_type_is_windows("Windows"));
        assert!(!os_type_is_windows("linux"));
        assert!(!os_type_is_windows(""));
    }
}
