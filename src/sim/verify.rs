//! The checks ECS makes before it looks at an action, in ECS's order: parameters present, AccessKey
//! known, signature, STS token (and, for credentials the sim issued, their expiry), timestamp,
//! nonce, action known. The `Format` and `Timestamp` checks are STS's too.

use std::sync::Arc;
use std::time::Instant;

use crate::aliyun::signature::{sign, string_to_sign};

use super::actions::Action;
use super::config::SimAccount;
use super::errors::EcsError;
use super::grants::Grant;
use super::params::Params;
use super::state::Shared;
use super::windows::NONCE_WINDOW;

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

/// Who an AccessKeyId belongs to: a configured account, or credentials the sim issued (copied out
/// of the lock).
enum Signer<'a> {
    Account(&'a SimAccount),
    Issued(Grant),
}

impl Signer<'_> {
    fn secret(&self) -> &str {
        match self {
            Signer::Account(account) => &account.access_key_secret,
            Signer::Issued(grant) => &grant.secret,
        }
    }

    fn token(&self) -> Option<&str> {
        match self {
            Signer::Account(account) => account.security_token.as_deref(),
            Signer::Issued(grant) => Some(&grant.token),
        }
    }
}

/// Verifies a request signed for `method` (`GET` or `POST`) and consumes its nonce.
pub(crate) fn verify(
    shared: &Shared,
    method: &str,
    params: &Params,
    server_time: jiff::Timestamp,
    now: Instant,
) -> Result<Verified, EcsError> {
    let action = check_parameters(params)?;
    let get = |name| params.get(name).unwrap_or_default();
    let key_id = get("AccessKeyId");
    let signer = find_signer(shared, key_id)?;
    check_signature(signer.secret(), method, params)?;
    check_security_token(signer.token(), params.get("SecurityToken"))?;
    let issued = match signer {
        Signer::Account(_) => None,
        Signer::Issued(grant) => Some(grant),
    };
    if issued
        .as_ref()
        .is_some_and(|grant| server_time >= grant.expires_at)
    {
        return Err(EcsError::security_token_expired());
    }
    check_timestamp(get("Timestamp"), server_time)?;
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

/// The common parameters and a known action's own are present, `Version`, `Format` and the
/// signature method are the ones ECS speaks. Returns the action when it is a known one.
fn check_parameters(params: &Params) -> Result<Option<Action>, EcsError> {
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
    check_json_format(get("Format"))?;
    if get("SignatureMethod") != "HMAC-SHA1" || get("SignatureVersion") != "1.0" {
        return Err(EcsError::incomplete_signature());
    }
    Ok(action)
}

fn find_signer<'s>(shared: &'s Shared, key_id: &str) -> Result<Signer<'s>, EcsError> {
    match shared.accounts.get(key_id) {
        Some(account) => Ok(Signer::Account(account)),
        None => shared
            .lock()
            .grants
            .get(key_id)
            .cloned()
            .map(Signer::Issued)
            .ok_or_else(EcsError::access_key_not_found),
    }
}

fn check_signature(secret: &str, method: &str, params: &Params) -> Result<(), EcsError> {
    let server_string_to_sign = string_to_sign(method, params.iter());
    let expected = sign(secret, &server_string_to_sign);
    let sent = params.get("Signature").unwrap_or_default();
    if !constant_time_eq(expected.as_bytes(), sent.as_bytes()) {
        return Err(EcsError::signature_does_not_match(&server_string_to_sign));
    }
    Ok(())
}

/// An STS account's token must be sent, and match; a permanent key must send none.
fn check_security_token(expected: Option<&str>, sent: Option<&str>) -> Result<(), EcsError> {
    match (expected, sent) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(EcsError::security_token_malformed()),
        (Some(expected), Some(sent)) if constant_time_eq(expected.as_bytes(), sent.as_bytes()) => {
            Ok(())
        }
        (Some(_), _) => Err(EcsError::security_token_mismatch()),
    }
}

/// Without `Format=JSON` real ECS and STS answer XML, which a JSON client cannot read; so refuse it.
pub(crate) fn check_json_format(format: &str) -> Result<(), EcsError> {
    if format.eq_ignore_ascii_case("JSON") {
        Ok(())
    } else {
        Err(EcsError::invalid_parameter(
            "Specified parameter Format is not valid; this endpoint answers JSON only.",
        ))
    }
}

/// A `Timestamp` of the exact shape, at most [`NONCE_WINDOW`] from the server clock.
pub(crate) fn check_timestamp(text: &str, server_time: jiff::Timestamp) -> Result<(), EcsError> {
    let timestamp = parse_timestamp(text).ok_or_else(EcsError::timestamp_format)?;
    let skew = server_time.as_second().abs_diff(timestamp.as_second());
    if skew > NONCE_WINDOW.as_secs() {
        return Err(EcsError::timestamp_expired());
    }
    Ok(())
}

/// Exactly `yyyy-MM-ddTHH:mm:ssZ` in UTC, and a real date and time.
fn parse_timestamp(text: &str) -> Option<jiff::Timestamp> {
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
