//! What a value of the `ecsvnc.dev/refresh` annotation may be, and how it is recorded. Annotations
//! are not checked by the CRD schema, so a tenant can write hundreds of kilobytes there; the
//! operator keeps (in its cache) and stores (in `status.observedRefresh`) only a bounded form.
//! A value over the limit or with control characters issues nothing: it is answered once with a
//! `RefreshIgnored` Event and recorded by its digest, never as written.

use std::borrow::Cow;
use std::fmt::Write as _;

use sha1::{Digest, Sha1};

/// Far beyond any timestamp, counter or UUID that `kubectl vnc open` or a person would write.
pub const REFRESH_MAX_BYTES: usize = 256;

/// How a refused value is recorded. In the cache the record carries a control character in
/// front, which no served value has, so it is still refused when decided on.
const REFUSED_PREFIX: &str = "refused:sha1:";
const CACHE_MARK: char = '\u{1}';

/// Why a refresh value is refused; `None` when it is served.
pub fn refusal(value: &str) -> Option<String> {
    if cache_record(value).is_some() {
        // Already cut down by the cache: the original was over the limit.
        return Some(format!(
            "the ecsvnc.dev/refresh value is longer than {REFRESH_MAX_BYTES} bytes"
        ));
    }
    if value.len() > REFRESH_MAX_BYTES {
        return Some(format!(
            "the ecsvnc.dev/refresh value is {} bytes, over the limit of {REFRESH_MAX_BYTES}",
            value.len()
        ));
    }
    if let Some(at) = value.find(char::is_control) {
        return Some(format!(
            "the ecsvnc.dev/refresh value has a control character at byte {at}"
        ));
    }
    None
}

/// What `status.observedRefresh` records for `value`: the value itself when it is served, else a
/// digest of it (the same for the value as written and for the form the cache keeps).
pub fn observed_form(value: &str) -> Cow<'_, str> {
    if let Some(kept) = cache_record(value) {
        return Cow::Borrowed(kept);
    }
    if refusal(value).is_none() {
        return Cow::Borrowed(value);
    }
    Cow::Owned(digest_form(value))
}

/// The form a value takes in the operator's cache: unchanged unless over the limit, which is
/// replaced by its bounded record (marked so that it is still refused).
pub fn cache_form(value: &str) -> Option<String> {
    (value.len() > REFRESH_MAX_BYTES).then(|| format!("{CACHE_MARK}{}", digest_form(value)))
}

/// The record in a value the cache cut down: the mark, then exactly `refused:sha1:<40 hex>`.
/// Anything else that starts with the mark is a tenant's value, refused for its control
/// character and recorded by its own digest.
fn cache_record(value: &str) -> Option<&str> {
    let record = value.strip_prefix(CACHE_MARK)?;
    let hex = record.strip_prefix(REFUSED_PREFIX)?;
    (hex.len() == 40 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then_some(record)
}

fn digest_form(value: &str) -> String {
    let digest = Sha1::digest(value.as_bytes());
    let mut out = String::with_capacity(REFUSED_PREFIX.len() + 40);
    out.push_str(REFUSED_PREFIX);
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_values_are_served_and_recorded_as_written() {
        for value in ["2026-12-08T01:00:00Z", "1", &"x".repeat(REFRESH_MAX_BYTES)] {
            assert_eq!(refusal(value), None, "{value}");
            assert_eq!(observed_form(value), value);
            assert_eq!(cache_form(value), None, "kept as is");
        }
        // A multi-byte value within the byte limit.
        assert_eq!(refusal(&"刷".repeat(85)), None);
        assert!(refusal(&"刷".repeat(86)).is_some(), "258 bytes");
    }

    #[test]
    fn a_huge_value_is_recorded_by_its_digest_from_the_value_or_the_cache() {
        let huge = "r".repeat(200_000);
        let message = refusal(&huge).unwrap();
        assert!(message.contains("200000 bytes"), "{message}");
        let cached = cache_form(&huge).unwrap();
        assert!(cached.len() < 64, "the cache keeps {} bytes", cached.len());
        assert!(refusal(&cached).is_some(), "still refused after the cache");
        let recorded = observed_form(&huge);
        assert_eq!(observed_form(&cached), recorded, "one record either way");
        assert!(recorded.starts_with(REFUSED_PREFIX) && recorded.len() < 64);
        assert!(!recorded.contains(char::is_control));
        assert_ne!(observed_form(&"s".repeat(200_000)), recorded, "per value");
    }

    #[test]
    fn control_characters_are_refused_and_never_recorded() {
        for value in [
            "a\u{1b}[2J",
            "x\ny",
            "\u{7f}",
            "\u{85}",
            "\u{1}refused:sha1:00",
            // A forged cache mark does not smuggle escapes into observedRefresh.
            "\u{1}\u{1b}]0;owned\u{7}\u{1b}[2J",
        ] {
            assert!(refusal(value).is_some(), "{value:?}");
            assert!(
                !observed_form(value).contains(char::is_control),
                "{value:?}"
            );
        }
    }
}
