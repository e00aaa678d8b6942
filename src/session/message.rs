//! Text that ends up in conditions and Events: bounded in bytes (the API limits are in bytes, and
//! a long CJK reason is three bytes a character), cut on a character boundary, with nothing that
//! changes on every retry or carries a credential.

/// Condition messages and the ECS part of a failure: room for any real ECS message.
pub const MESSAGE_MAX_BYTES: usize = 512;
/// The Kubernetes Event API refuses a note over 1 KiB.
pub const EVENT_NOTE_MAX_BYTES: usize = 1024;

const ELLIPSIS: &str = "…";

/// `text` cut to at most `max` bytes on a character boundary; a cut text ends in `…` (counted).
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(ELLIPSIS.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", &text[..end])
}

/// Keeps ECS messages fit for conditions and Events: no request ids (they change on every try and
/// would rewrite the status for nothing), no server string-to-sign (it carries the AccessKeyId and
/// token), bounded length.
pub fn sanitize(message: &str) -> String {
    let mut text = message;
    for marker in ["server string to sign", "RequestId", "Request ID"] {
        if let Some(at) = text.find(marker) {
            text = &text[..at];
        }
    }
    let text = text.trim_end_matches([' ', ',', ';', ':', '(', '.']).trim();
    clip(text, MESSAGE_MAX_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_drop_request_ids_and_the_string_to_sign() {
        let cleaned = sanitize(
            "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3Dabc",
        );
        assert_eq!(
            cleaned,
            "Specified signature is not matched with our calculation"
        );
        assert_eq!(sanitize("Boom (RequestId: 473469C7)"), "Boom");
        assert_eq!(sanitize(&"x".repeat(2000)).len(), MESSAGE_MAX_BYTES);
    }

    #[test]
    fn a_long_cjk_text_is_cut_on_a_character_boundary_within_the_byte_limit() {
        let reason = "磁盘已满需要紧急登录".repeat(100); // 1,000 characters, 3,000 bytes
        let cut = clip(&reason, EVENT_NOTE_MAX_BYTES);
        assert!(cut.len() <= EVENT_NOTE_MAX_BYTES, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert!(reason.starts_with(cut.trim_end_matches('…')));
        assert_eq!(clip("短", 1024), "短");
    }

    proptest! {
        #[test]
        fn clip_never_exceeds_the_limit_and_keeps_a_prefix(text in "\\PC{0,400}", max in 3usize..600) {
            let cut = clip(&text, max);
            prop_assert!(cut.len() <= max);
            prop_assert!(text.starts_with(cut.trim_end_matches('…')) || cut == text);
        }
    }
}
