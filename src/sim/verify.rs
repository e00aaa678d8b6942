//! The checks ECS makes before it looks at an action, in ECS's order: parameters present, AccessKey
//! known, signature, STS token (and, for credentials the sim issued, their expiry), timestamp,
//! nonce, action known.

use std::sync::Arc;
use std::time::Instant;

use crate::aliyun::signature::{sign, string_to_sign};

use super::actions::Action;
use super::errors::EcsError;
use super::grants::Grant;
use super::params::Params;
use super::state::{NONCE_WINDOW, Shared};

pub const API_VERSION: &str = "2014-05-26";

/// Checked for presence in this order, so the first missing one is the one named.
const COMMON: [&str; 9] = [
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
    "Signature",
];

/// A verified request: its action and, for credentials limited to some instances, which.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) action: Action,
    pub(crate) allowed_instances: Option<Arc<[String]>>,
}

/// Verifies a request signed for `method` (`GET` or `POST`) and consumes its nonce.
pub(crate) fn verify(
    shared: &Shared,
    method: &str,
    params: &Params,
    server_time: jiff::Timestamp,
    now: Instant,
) -> Result<Verified, EcsError> {
    for name in COMMON {
        params.required(name)?;
    }
    let action = Action::from_name(params.get("Action").unwrap_or_default());
    if let Some(action) = action {
        for name in action.required_parameters() {
            params.required(name)?;
        }
    }
    let get = |name| params.get(name).unwrap_or_default();

    if get("Version") != API_VERSION {
        return Err(EcsError::invalid_version());
    }
    // Without Format=JSON real ECS answers XML, which a JSON client cannot read; so refuse it.
    if !get("Format").eq_ignore_ascii_case("JSON") {
        return Err(EcsError::invalid_parameter(
            "Specified parameter Format is not valid; this endpoint answers JSON only.",
        ));
    }
    if get("SignatureMethod") != "HMAC-SHA1" || get("SignatureVersion") != "1.0" {
        return Err(EcsError::incomplete_signature());
    }

    let key_id = get("AccessKeyId");
    // A configured account, else credentials the sim issued (copied out of the lock).
    let issued: Option<Grant>;
    let (secret, token) = match shared.accounts.get(key_id) {
        Some(account) => {
            issued = None;
            (
                account.access_key_secret.as_str(),
                account.security_token.as_deref(),
            )
        }
        None => {
            issued = shared.lock().grants.get(key_id).cloned();
            let grant = issued.as_ref().ok_or_else(EcsError::access_key_not_found)?;
            (grant.secret.as_str(), Some(grant.token.as_str()))
        }
    };

    let server_string_to_sign = string_to_sign(method, params.iter());
    let expected = sign(secret, &server_string_to_sign);
    if !constant_time_eq(expected.as_bytes(), get("Signature").as_bytes()) {
        return Err(EcsError::signature_does_not_match(&server_string_to_sign));
    }

    match (token, params.get("SecurityToken")) {
        (None, None) => {}
        (None, Some(_)) => return Err(EcsError::security_token_malformed()),
        (Some(expected), Some(sent)) if constant_time_eq(expected.as_bytes(), sent.as_bytes()) => {}
        (Some(_), _) => return Err(EcsError::security_token_mismatch()),
    }
    if issued
        .as_ref()
        .is_some_and(|grant| server_time >= grant.expires_at)
    {
        return Err(EcsError::security_token_expired());
    }

    let timestamp = parse_timestamp(get("Timestamp")).ok_or_else(EcsError::timestamp_format)?;
    let skew = server_time.as_second().abs_diff(timestamp.as_second());
    if skew > NONCE_WINDOW.as_secs() {
        return Err(EcsError::timestamp_expired());
    }

    if !shared
        .lock()
        .nonces
        .check_and_insert(key_id, get("SignatureNonce"), now)
    {
        return Err(EcsError::nonce_used());
    }

    Ok(Verified {
        action: action.ok_or_else(EcsError::action_not_found)?,
        allowed_instances: issued.and_then(|grant| grant.instances),
    })
}

/// Exactly `yyyy-MM-ddTHH:mm:ssZ` in UTC, and a real date and time.
pub(crate) fn parse_timestamp(text: &str) -> Option<jiff::Timestamp> {
    let bytes = text.as_bytes();
    if bytes.len() != 20 {
        return None;
    }
    let shape_ok = bytes.iter().enumerate().all(|(i, &b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T',
        13 | 16 => b == b':',
        19 => b == b'Z',
        _ => b.is_ascii_digit(),
    });
    if !shape_ok {
        return None;
    }
    text.parse().ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_must_have_the_exact_shape() {
        let t = parse_timestamp("2024-04-11T08:30:00Z").unwrap();
        assert_eq!(t.to_string(), "2024-04-11T08:30:00Z");
        for bad in [
            "2024-04-11T08:30:00",
            "2024-04-11T08:30:00.123Z",
            "2024-04-11 08:30:00Z",
            "2024-04-11T08:30:00+08:00",
            "2024-13-11T08:30:00Z",
            "2024-02-30T08:30:00Z",
            "1712824200",
            "",
            "２０２４-04-11T08:30:0Z",
        ] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
