//! An `AssumeRoleWithOIDC` request: its parameters, checked before anything is sent, and its form
//! body. The OIDC token is the only proof of identity, so it goes in the body and nowhere else.

use std::fmt;

use crate::aliyun::signature::percent_encode;

/// STS API version.
pub const STS_API_VERSION: &str = "2015-04-01";
/// The OIDC token's length as STS accepts it.
const TOKEN_CHARS: std::ops::RangeInclusive<usize> = 4..=20_000;
/// `DurationSeconds` as STS accepts it (the role's maximum may be lower).
pub const DURATION_SECONDS: std::ops::RangeInclusive<u32> = 900..=43_200;

/// A parameter that STS would refuse, found before sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter} {reason}")]
pub struct InvalidStsParameter {
    pub parameter: &'static str,
    pub reason: String,
}

fn invalid(parameter: &'static str, reason: impl Into<String>) -> InvalidStsParameter {
    InvalidStsParameter {
        parameter,
        reason: reason.into(),
    }
}

/// `acs:ram::<account id>:role/<name>`.
pub fn check_role_arn(value: &str) -> Result<(), String> {
    check_arn(value, "role", "acs:ram::<account id>:role/<role name>")
}

/// `acs:ram::<account id>:oidc-provider/<name>`.
pub fn check_oidc_provider_arn(value: &str) -> Result<(), String> {
    check_arn(
        value,
        "oidc-provider",
        "acs:ram::<account id>:oidc-provider/<provider name>",
    )
}

fn check_arn(value: &str, kind: &str, shape: &str) -> Result<(), String> {
    let wrong = || format!("must look like {shape}");
    let rest = value.strip_prefix("acs:ram::").ok_or_else(wrong)?;
    let (account, name) = rest.split_once(&format!(":{kind}/")).ok_or_else(wrong)?;
    if account.is_empty() || account.len() > 32 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("must have a numeric account id ({shape})"));
    }
    let name_ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !name_ok {
        return Err(format!(
            "must name the {kind} with 1 to 128 letters, digits, '.', '-' or '_' ({shape})"
        ));
    }
    Ok(())
}

/// `RoleSessionName`: 2 to 64 of `[A-Za-z0-9.@_-]`.
pub fn check_role_session_name(value: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err("must be 2 to 64 letters, digits, '.', '@', '_' or '-'".into())
    }
}

/// The parameters of one exchange. `Debug` leaves the token out.
#[derive(Clone, PartialEq, Eq)]
pub struct AssumeRoleWithOidc {
    role_arn: String,
    oidc_provider_arn: String,
    oidc_token: String,
    role_session_name: String,
    duration_seconds: Option<u32>,
}

impl AssumeRoleWithOidc {
    /// Checks every parameter; the token is trimmed (a token file often ends in a newline).
    pub fn new(
        role_arn: &str,
        oidc_provider_arn: &str,
        oidc_token: &str,
        role_session_name: &str,
    ) -> Result<Self, InvalidStsParameter> {
        let role_arn = role_arn.trim();
        let oidc_provider_arn = oidc_provider_arn.trim();
        let oidc_token = oidc_token.trim();
        let role_session_name = role_session_name.trim();
        check_role_arn(role_arn).map_err(|r| invalid("RoleArn", r))?;
        check_oidc_provider_arn(oidc_provider_arn).map_err(|r| invalid("OIDCProviderArn", r))?;
        check_role_session_name(role_session_name).map_err(|r| invalid("RoleSessionName", r))?;
        if !TOKEN_CHARS.contains(&oidc_token.chars().count()) {
            return Err(invalid(
                "OIDCToken",
                format!(
                    "must be {} to {} characters",
                    TOKEN_CHARS.start(),
                    TOKEN_CHARS.end()
                ),
            ));
        }
        if !oidc_token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "OIDCToken",
                "must be a JWT (printable ASCII without spaces)",
            ));
        }
        Ok(Self {
            role_arn: role_arn.to_owned(),
            oidc_provider_arn: oidc_provider_arn.to_owned(),
            oidc_token: oidc_token.to_owned(),
            role_session_name: role_session_name.to_owned(),
            duration_seconds: None,
        })
    }

    /// Asks for credentials valid this long (900 to 43200 s); without it STS's default (3600 s).
    pub fn with_duration_seconds(mut self, seconds: u32) -> Result<Self, InvalidStsParameter> {
        if !DURATION_SECONDS.contains(&seconds) {
            return Err(invalid(
                "DurationSeconds",
                format!(
                    "must be {} to {}",
                    DURATION_SECONDS.start(),
                    DURATION_SECONDS.end()
                ),
            ));
        }
        self.duration_seconds = Some(seconds);
        Ok(self)
    }

    pub fn role_arn(&self) -> &str {
        &self.role_arn
    }

    pub fn oidc_provider_arn(&self) -> &str {
        &self.oidc_provider_arn
    }

    pub fn role_session_name(&self) -> &str {
        &self.role_session_name
    }

    pub fn duration_seconds(&self) -> Option<u32> {
        self.duration_seconds
    }

    /// What must never come back out of an answer: the token and each of its JWT segments.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        std::iter::once(self.oidc_token.as_str())
            .chain(self.oidc_token.split('.'))
            .filter(|s| s.len() >= 8)
            .collect()
    }

    /// The whole request as an `application/x-www-form-urlencoded` body: common parameters
    /// (no AccessKeyId, no signature: the token is the proof) and the action's own.
    pub(crate) fn form_body(&self, timestamp: &str) -> String {
        let duration = self.duration_seconds.map(|d| d.to_string());
        let mut pairs: Vec<(&str, &str)> = vec![
            ("Action", "AssumeRoleWithOIDC"),
            ("Version", STS_API_VERSION),
            ("Format", "JSON"),
            ("Timestamp", timestamp),
            ("RoleArn", &self.role_arn),
            ("OIDCProviderArn", &self.oidc_provider_arn),
            ("OIDCToken", &self.oidc_token),
            ("RoleSessionName", &self.role_session_name),
        ];
        if let Some(d) = &duration {
            pairs.push(("DurationSeconds", d));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

impl fmt::Debug for AssumeRoleWithOidc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssumeRoleWithOidc")
            .field("role_arn", &self.role_arn)
            .field("oidc_provider_arn", &self.oidc_provider_arn)
            .field("oidc_token", &"<redacted>")
            .field("role_session_name", &self.role_session_name)
            .field("duration_seconds", &self.duration_seconds)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aliyun::signature::percent_decode;

    const ROLE: &str = "acs:ram::1234567890123456:role/vnc-opener";
    const PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c123";
    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlLXBhcnQ";

    #[test]
    fn arns_and_session_names() {
        assert!(check_role_arn(ROLE).is_ok());
        assert!(check_oidc_provider_arn(PROVIDER).is_ok());
        for bad in [
            "",
            "acs:ram::123:user/x",
            "acs:ram:::role/x",
            "acs:ram::12a:role/x",
            "acs:ram::123:role/",
            "acs:ram::123:role/a b",
            "arn:aws:iam::123:role/x",
        ] {
            assert!(check_role_arn(bad).is_err(), "{bad}");
        }
        assert!(check_oidc_provider_arn(ROLE).is_err());
        for good in [
            "ab",
            "ecs-vnc-operator-1767225600",
            "a.b@c_d-e",
            &"x".repeat(64),
        ] {
            assert!(check_role_session_name(good).is_ok(), "{good}");
        }
        for bad in ["a", "has space", "slash/", "ü-name", &"x".repeat(65)] {
            assert!(check_role_session_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_request_is_checked_and_its_debug_hides_the_token() {
        let r = AssumeRoleWithOidc::new(ROLE, PROVIDER, &format!("{TOKEN}\n"), "s-1").unwrap();
        assert!(!format!("{r:?}").contains("c2lnbmF0dXJl"));
        let err = AssumeRoleWithOidc::new(ROLE, PROVIDER, "", "s-1").unwrap_err();
        assert_eq!(err.parameter, "OIDCToken");
        let err = AssumeRoleWithOidc::new(ROLE, PROVIDER, "a b c d", "s-1").unwrap_err();
        assert_eq!(err.parameter, "OIDCToken");
        assert!(!err.to_string().contains("a b c d"));
        let err = AssumeRoleWithOidc::new(PROVIDER, PROVIDER, TOKEN, "s-1").unwrap_err();
        assert_eq!(err.parameter, "RoleArn");
        let err = AssumeRoleWithOidc::new(ROLE, ROLE, TOKEN, "s-1").unwrap_err();
        assert_eq!(err.parameter, "OIDCProviderArn");
        let err = AssumeRoleWithOidc::new(ROLE, PROVIDER, TOKEN, "x").unwrap_err();
        assert_eq!(err.parameter, "RoleSessionName");
        assert!(r.clone().with_duration_seconds(899).is_err());
        assert!(r.clone().with_duration_seconds(43_201).is_err());
        assert_eq!(
            r.with_duration_seconds(900).unwrap().duration_seconds(),
            Some(900)
        );
    }

    #[test]
    fn the_form_body_carries_exactly_the_contract_parameters() {
        let r = AssumeRoleWithOidc::new(ROLE, PROVIDER, TOKEN, "s-1")
            .unwrap()
            .with_duration_seconds(3600)
            .unwrap();
        let body = r.form_body("2026-01-02T03:04:05Z");
        let pairs: Vec<(String, String)> = body
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (percent_decode(k).unwrap(), percent_decode(v).unwrap())
            })
            .collect();
        let expected = [
            ("Action", "AssumeRoleWithOIDC"),
            ("Version", "2015-04-01"),
            ("Format", "JSON"),
            ("Timestamp", "2026-01-02T03:04:05Z"),
            ("RoleArn", ROLE),
            ("OIDCProviderArn", PROVIDER),
            ("OIDCToken", TOKEN),
            ("RoleSessionName", "s-1"),
            ("DurationSeconds", "3600"),
        ];
        assert_eq!(
            pairs,
            expected.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
        );
        assert!(
            body.contains("acs%3Aram%3A%3A"),
            "reserved characters encoded"
        );
    }

    #[test]
    fn the_token_and_its_segments_are_secrets() {
        let r = AssumeRoleWithOidc::new(ROLE, PROVIDER, TOKEN, "s-1").unwrap();
        let secrets = r.secrets();
        assert!(secrets.contains(&TOKEN));
        assert!(secrets.contains(&"c2lnbmF0dXJlLXBhcnQ"));
    }
}
