//! What an RPC request gets back, and how it is written: the ECS or STS error shapes, the faulted
//! bodies (malformed, oversized, a dropped connection) and the `x-acs-request-id` header.

use std::fmt;
use std::sync::OnceLock;

use hyper::body::Bytes;
use hyper::header::HeaderValue;

use super::errors::EcsError;
use super::http::{Reply, json_response};
use super::sts;

/// Size of the `oversized` fault's body.
pub const OVERSIZED_BODY: usize = 4 << 20;

/// The service's error: hyper then closes the connection without writing a response.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

/// What an RPC request gets, before it is written.
pub(crate) enum Answer {
    Success(String),
    Error(EcsError),
    /// An error of the STS side, with STS's `HostId`.
    StsError(EcsError),
    Malformed,
    Oversized,
    Drop,
}

impl Answer {
    /// What the answer is counted under in the stats.
    pub(crate) fn code(&self) -> &str {
        match self {
            Answer::Success(_) => "Success",
            Answer::Error(e) | Answer::StsError(e) => &e.code,
            Answer::Malformed => "Fault.Malformed",
            Answer::Oversized => "Fault.Oversized",
            Answer::Drop => "Fault.Drop",
        }
    }

    /// The HTTP answer, or [`DropConnection`] for a dropped one.
    pub(crate) fn reply(self, request_id: &str) -> Result<Reply, DropConnection> {
        let (status, body) = match self {
            Answer::Success(body) => (200, Bytes::from(body)),
            Answer::Error(error) => (error.status, Bytes::from(error.to_body(request_id))),
            Answer::StsError(error) => (
                error.status,
                Bytes::from(sts::error_body(&error, request_id)),
            ),
            Answer::Malformed => (200, malformed_body(request_id)),
            Answer::Oversized => (200, oversized_body()),
            Answer::Drop => return Err(DropConnection),
        };
        let mut response = json_response(status, body);
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert("x-acs-request-id", value);
        }
        Ok(response)
    }
}

/// A JSON answer cut short and followed by bytes that are not even UTF-8.
fn malformed_body(request_id: &str) -> Bytes {
    let mut body =
        format!("{{\"RequestId\":\"{request_id}\",\"VncUrl\":\"wss%3A%2F%2F").into_bytes();
    body.extend_from_slice(b"\xff\xfe<html>502 Bad Gateway</html>\x00");
    Bytes::from(body)
}

/// Valid JSON, just far too big for a sane client to buffer: one long padding string.
fn oversized_body() -> Bytes {
    static BODY: OnceLock<Bytes> = OnceLock::new();
    BODY.get_or_init(|| {
        let head = b"{\"RequestId\":\"00000000-0000-0000-0000-000000000000\",\"Padding\":\"";
        let tail = b"\"}";
        let mut body = Vec::with_capacity(OVERSIZED_BODY);
        body.extend_from_slice(head);
        body.resize(OVERSIZED_BODY - tail.len(), b'A');
        body.extend_from_slice(tail);
        Bytes::from(body)
    })
    .clone()
}

/// Uppercase, like ECS's request ids.
pub(crate) fn new_request_id() -> String {
    let mut buffer = uuid::Uuid::encode_buffer();
    uuid::Uuid::new_v4()
        .hyphenated()
        .encode_upper(&mut buffer)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uppercase_uuids() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id, id.to_ascii_uppercase());
        assert_ne!(id, new_request_id());
    }

    #[test]
    fn oversized_body_is_json_of_the_promised_size() {
        let body = oversized_body();
        assert_eq!(body.len(), OVERSIZED_BODY);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(value["Padding"].as_str().unwrap().len() > 4_000_000);
    }

    #[test]
    fn malformed_body_is_neither_json_nor_utf8() {
        let body = malformed_body("X");
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());
        assert!(std::str::from_utf8(&body).is_err());
    }
}
