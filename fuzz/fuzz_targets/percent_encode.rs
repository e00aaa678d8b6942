//! The RPC percent-encoder: only `A-Z a-z 0-9 - _ . ~` and `%XX` (upper-case hex) come out, and
//! decoding gives the input back. The decoder never panics on any text.

#![no_main]

use ecs_vnc_operator::aliyun::signature::{percent_decode, percent_encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let encoded = percent_encode(text);
    let bytes = encoded.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = &bytes[i + 1..i + 3];
            assert!(
                hex.iter().all(|h| matches!(h, b'0'..=b'9' | b'A'..=b'F')),
                "{encoded:?}"
            );
            i += 3;
        } else {
            assert!(
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'),
                "{encoded:?}"
            );
            i += 1;
        }
    }
    assert_eq!(percent_decode(&encoded).as_deref(), Some(text));
    // Any text at all, escapes broken or not.
    if let Some(decoded) = percent_decode(text) {
        assert_eq!(percent_decode(&percent_encode(&decoded)), Some(decoded));
    }
});
