//! Alibaba Cloud RPC signature, version 1.0 (HMAC-SHA1).
//!
//! Shared by the client (to sign) and `ecs-sim` (to verify), so both sides agree byte for byte.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Percent-encodes UTF-8 the way Alibaba's RPC signing wants: only `A-Z a-z 0-9 - _ . ~` pass through,
/// so space is `%20` and `*` is `%2A` (unlike form encoding).
pub fn percent_encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len() * 3);
    for byte in input.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Decodes `%XX` escapes (either case); `+` stays a plus. Returns `None` on a broken escape or bytes
/// that are not UTF-8.
pub fn percent_decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// `name=value` pairs sorted by name, each side percent-encoded, joined with `&`. `Signature` itself
/// never takes part.
pub fn canonical_query<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    // Sorted by the raw names, then encoded (Alibaba's documented order, and the official SDK's):
    // sorting encoded names would put `a%2Fb` before `a.b`. UTF-8 byte order is code-point order.
    let mut pairs: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(name, _)| *name != "Signature")
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `METHOD&%2F&percentEncode(canonicalQuery)`.
pub fn string_to_sign<'a>(
    method: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&canonical_query(params))
    )
}

/// `Base64(HMAC-SHA1(secret + "&", stringToSign))`.
pub fn sign(access_key_secret: &str, string_to_sign: &str) -> String {
    let key = format!("{access_key_secret}&");
    let mut mac =
        Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The parameters of Alibaba's documented signature example (secret `testsecret`, `GET`): the
/// known answer every signer here is checked against.
#[doc(hidden)]
pub const DOCUMENTED_EXAMPLE: [(&str, &str); 8] = [
    ("AccessKeyId", "testid"),
    ("Action", "DescribeRegions"),
    ("Format", "XML"),
    ("SignatureMethod", "HMAC-SHA1"),
    ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
    ("SignatureVersion", "1.0"),
    ("Timestamp", "2016-02-23T12:46:24Z"),
    ("Version", "2014-05-26"),
];

#[cfg(test)]
mod tests {
    #[test]
    fn parameters_are_sorted_by_raw_name_before_encoding() {
        // Found by the differential test against the official SDK (tests/signature_differential.rs).
        assert_eq!(
            super::canonical_query([("a/b", "2"), ("a.b", "1")]),
            "a.b=1&a%2Fb=2"
        );
        assert_eq!(
            super::canonical_query([("\u{e9}", "1"), ("z", "2")]),
            "z=2&%C3%A9=1"
        );
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reproduces_alibabas_documented_example() {
        let params = super::DOCUMENTED_EXAMPLE;
        let to_sign = string_to_sign("GET", params);
        assert_eq!(
            to_sign,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML\
             %26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\
             %26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(sign("testsecret", &to_sign), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
    }

    #[test]
    fn space_star_and_tilde_follow_the_rpc_rules() {
        assert_eq!(percent_encode("a b*c~d"), "a%20b%2Ac~d");
        assert_eq!(percent_encode("+/=&"), "%2B%2F%3D%26");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn signature_parameter_is_left_out_and_order_does_not_matter() {
        let a = canonical_query([("B", "2"), ("A", "1"), ("Signature", "x")]);
        let b = canonical_query([("A", "1"), ("B", "2")]);
        assert_eq!(a, "A=1&B=2");
        assert_eq!(a, b);
    }

    #[test]
    fn broken_escapes_do_not_decode() {
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%FF"), None, "a lone 0xFF byte is not UTF-8");
        assert_eq!(percent_decode("a+b%20c").as_deref(), Some("a+b c"));
    }

    proptest! {
        #[test]
        fn round_trips_any_string(s in any::<String>()) {
            prop_assert_eq!(percent_decode(&percent_encode(&s)), Some(s));
        }

        #[test]
        fn output_is_only_unreserved_or_escapes(s in any::<String>()) {
            let encoded = percent_encode(&s);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
        }

        #[test]
        fn every_byte_value_is_encoded_as_specified(b in 0u8..=0x7f) {
            let s = (b as char).to_string();
            let unreserved = b.is_ascii_alphanumeric() || b"-_.~".contains(&b);
            let expected = if unreserved { s.clone() } else { format!("%{b:02X}") };
            prop_assert_eq!(percent_encode(&s), expected);
        }

        #[test]
        fn multi_byte_utf8_encodes_each_byte(c in any::<char>().prop_filter("non-ascii", |c| !c.is_ascii())) {
            let s = c.to_string();
            let expected: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
            prop_assert_eq!(percent_encode(&s), expected);
        }
    }
}
