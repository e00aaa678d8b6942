//! The ECS answer decoders (`DescribeInstanceVncUrl`, `DescribeInstances`, error bodies) on any
//! bytes: no panic, and every text taken from the body is bounded and printable; secrets never
//! come back out of an error.

#![no_main]

use ecs_vnc_operator::aliyun::{
    EcsError, MAX_REASON_CHARS, MAX_REQUEST_ID_CHARS, decode_error, decode_os_type, decode_vnc_url,
};
use libfuzzer_sys::fuzz_target;

const SECRETS: [&str; 3] = ["LTAI5tAccessKeyId", "AccessKeySecret0", "STS/Token+Value=="];

fn check(err: &EcsError) {
    if let Some(id) = err.request_id() {
        assert!(
            id.chars().count() <= MAX_REQUEST_ID_CHARS + 1,
            "{}",
            id.len()
        );
        assert!(!id.chars().any(char::is_control), "{id:?}");
    }
    let texts = match err {
        EcsError::Api { code, message, .. } => {
            assert!(!code.is_empty());
            assert!(code.chars().count() <= 129);
            assert!(message.chars().count() <= 513);
            vec![code.as_str(), message.as_str()]
        }
        EcsError::MalformedResponse { reason, .. } => {
            assert!(reason.chars().count() <= MAX_REASON_CHARS + 1);
            vec![reason.as_str()]
        }
        other => panic!("a decoder made {other:?}"),
    };
    for text in texts {
        assert!(!text.chars().any(char::is_control), "{text:?}");
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} in {text:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Two bytes of HTTP status, then the body.
    let (status, body) = match data {
        [hi, lo, body @ ..] => (u16::from_be_bytes([*hi, *lo]), body),
        _ => (200, data),
    };
    match decode_vnc_url(body, status, jiff::Timestamp::UNIX_EPOCH) {
        Ok(issued) => {
            assert!(!issued.vnc_url.is_empty() && !issued.request_id.is_empty());
            assert!(issued.request_id.chars().count() <= MAX_REQUEST_ID_CHARS + 1);
        }
        Err(err) => {
            assert_eq!(err.code(), "MalformedResponse");
            check(&err);
        }
    }
    match decode_os_type(body, status, "cn-hangzhou", "i-bp1") {
        Ok(os) => assert!(!os.trim().is_empty()),
        Err(err) => check(&err),
    }
    check(&decode_error(status, body, &SECRETS));
});
