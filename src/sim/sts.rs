//! The STS side: `AssumeRoleWithOIDC` (version `2015-04-01`), answered as Alibaba's STS answers
//! it. There is no AccessKey and no signature; the OIDC token is the proof. The credentials it
//! issues become accounts of the ECS side until their `Expiration` (see [`super::grants`]); whom it
//! trusts is loaded in [`super::roles`].

use jiff::Timestamp;
use serde_json::json;

use super::config::is_ram_arn;
use super::errors::EcsError;
use super::grants::Issued;
use super::oidc::{Claims, TokenError};
use super::params::Params;
use super::state::Shared;
use super::verify::{check_json_format, check_timestamp};

pub const STS_ACTION: &str = "AssumeRoleWithOIDC";
pub const STS_VERSION: &str = "2015-04-01";
/// `HostId` of STS's error answers.
pub const STS_HOST_ID: &str = "sts.aliyuncs.com";
/// STS's floor for `DurationSeconds`.
const MIN_DURATION_SECONDS: i64 = 900;

/// The parameters of one exchange, of the right shapes.
struct Exchange<'p> {
    role_arn: &'p str,
    provider_arn: &'p str,
    session_name: &'p str,
    token: &'p str,
    /// `DurationSeconds`, when given.
    requested: Option<i64>,
}

/// Checks in this order, the first failure answering: common parameters, action parameters,
/// provider, role, token, trust; then issues credentials. `Ok` is the 200 body.
pub(crate) fn assume_role_with_oidc(
    shared: &Shared,
    params: &Params,
    request_id: &str,
    now: Timestamp,
) -> Result<String, EcsError> {
    check_common(params, now)?;
    let exchange = read_exchange(params)?;
    let keyless = &shared.keyless;
    let verifier = match (&keyless.provider_arn, &keyless.verifier) {
        (Some(arn), Some(verifier)) if arn == exchange.provider_arn => verifier,
        _ => return Err(no_such_provider()),
    };
    let role = keyless
        .roles
        .get(exchange.role_arn)
        .ok_or_else(|| role_not_found(exchange.role_arn))?;
    let claims = verifier
        .verify(exchange.token, now.as_second())
        .map_err(token_error)?;
    if !role.subjects.contains(&claims.subject) {
        return Err(no_permission());
    }

    let lifetime = exchange
        .requested
        .map_or(keyless.lifetime, |n| n.min(keyless.lifetime));
    let issued = Issued::new(now, lifetime, role.instances.clone());
    shared.lock().grants.insert(&issued, now);
    Ok(success_body(
        request_id,
        exchange.role_arn,
        exchange.session_name,
        &claims,
        &issued,
    ))
}

/// `Version`, `Format` and `Timestamp`, as STS checks them before anything else.
fn check_common(params: &Params, now: Timestamp) -> Result<(), EcsError> {
    for name in ["Version", "Format", "Timestamp"] {
        params.required(name)?;
    }
    if params.get("Version") != Some(STS_VERSION) {
        return Err(EcsError::invalid_version());
    }
    check_json_format(params.get("Format").unwrap_or_default())?;
    check_timestamp(params.get("Timestamp").unwrap_or_default(), now)
}

fn read_exchange(params: &Params) -> Result<Exchange<'_>, EcsError> {
    let role_arn = params.required("RoleArn")?;
    let provider_arn = params.required("OIDCProviderArn")?;
    let session_name = params.required("RoleSessionName")?;
    let token = params.get("OIDCToken").unwrap_or_default();
    if token.is_empty() {
        return Err(token_error(TokenError::Empty));
    }
    if !valid_session_name(session_name) {
        return Err(invalid_session_name());
    }
    let requested = match params.get("DurationSeconds").filter(|d| !d.is_empty()) {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (MIN_DURATION_SECONDS..=43_200).contains(&n) => Some(n),
            _ => return Err(invalid_duration()),
        },
    };
    if !is_ram_arn(role_arn, "role") {
        return Err(invalid_role_arn());
    }
    Ok(Exchange {
        role_arn,
        provider_arn,
        session_name,
        token,
        requested,
    })
}

fn success_body(
    request_id: &str,
    role_arn: &str,
    session_name: &str,
    claims: &Claims,
    issued: &Issued,
) -> String {
    // acs:ram::<uid>:role/<name> -> acs:ram::<uid>:assumed-role/<name>/<session>
    let assumed_arn = role_arn.replacen(":role/", ":assumed-role/", 1) + "/" + session_name;
    json!({
        "RequestId": request_id,
        "AssumedRoleUser": {
            "Arn": assumed_arn,
            "AssumedRoleId": format!("{}:{session_name}", role_id(role_arn)),
        },
        "OIDCTokenInfo": {
            "Subject": claims.subject,
            "Issuer": claims.issuer,
            "ClientIds": claims.audiences.join(","),
        },
        "Credentials": {
            "AccessKeyId": issued.access_key_id,
            "AccessKeySecret": issued.grant.secret,
            "SecurityToken": issued.grant.token,
            "Expiration": issued.expiration(),
        },
    })
    .to_string()
}

/// A stable 19-digit id per role, like RAM's role ids (FNV-1a of the ARN).
fn role_id(role_arn: &str) -> u64 {
    let hash = role_arn.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    3_000_000_000_000_000_000 + hash % 1_000_000_000_000_000_000
}

/// `[A-Za-z0-9.@_-]`, 2 to 64 characters.
fn valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".@_-".contains(&b))
}

/// STS's `{"RequestId","HostId","Code","Message","Recommend"}`.
pub(crate) fn error_body(error: &EcsError, request_id: &str) -> String {
    json!({
        "RequestId": request_id,
        "HostId": STS_HOST_ID,
        "Code": error.code,
        "Message": error.message,
        "Recommend": format!(
            "https://api.aliyun.com/troubleshoot?q={}&product=Sts&requestId={request_id}",
            error.code
        ),
    })
    .to_string()
}

fn token_error(error: TokenError) -> EcsError {
    let fail = |code: &'static str, message: String| EcsError::new(401, code, message);
    match error {
        TokenError::Empty => fail(
            "AuthenticationFail.OIDCToken.Invalid",
            "The OIDCToken can not empty.".to_owned(),
        ),
        TokenError::Malformed(message) => {
            fail("AuthenticationFail.OIDCToken.Invalid", message.to_owned())
        }
        TokenError::Algorithm(alg) => fail(
            "AuthenticationFail.OIDCToken.Invalid",
            format!("The algorithm {alg} that be specified in Jwt header is unknown."),
        ),
        TokenError::NotYetValid => fail(
            "AuthenticationFail.OIDCToken.Invalid",
            "The Jwt is not valid yet (nbf or iat is in the future).".to_owned(),
        ),
        TokenError::Signature => fail(
            "AuthenticationFail.OIDCToken.InvalidSignature",
            "OIDC token validate failed: invalid signature.".to_owned(),
        ),
        TokenError::Issuer => fail(
            "AuthenticationFail.OIDCToken.IssuerNotMatch",
            "The issuer in the OIDC Token doesn't match the OIDC Provider registered.".to_owned(),
        ),
        TokenError::Expired => fail(
            "AuthenticationFail.OIDCToken.Expired",
            "This JsonWebToken is expired.".to_owned(),
        ),
        TokenError::Audience => fail(
            "AuthenticationFail.OIDCToken.AudienceNotMatch",
            "Invalid audience.".to_owned(),
        ),
    }
}

fn no_such_provider() -> EcsError {
    EcsError::new(
        401,
        "AuthenticationFail.NoPermission",
        "No such OIDC Provider registered.",
    )
}

fn no_permission() -> EcsError {
    EcsError::new(
        401,
        "AuthenticationFail.NoPermission",
        "There is no permission",
    )
}

fn role_not_found(role_arn: &str) -> EcsError {
    EcsError::new(
        404,
        "EntityNotExist.Role",
        format!("The role not exists: {role_arn}."),
    )
}

fn invalid_role_arn() -> EcsError {
    EcsError::new(
        400,
        "InvalidParameter.RoleArn",
        "The parameter RoleArn is wrongly formed.",
    )
}

fn invalid_session_name() -> EcsError {
    EcsError::new(
        400,
        "InvalidParameter.RoleSessionName",
        "The parameter RoleSessionName is wrongly formed.",
    )
}

fn invalid_duration() -> EcsError {
    EcsError::new(
        400,
        "InvalidParameter.DurationSeconds",
        "The Min/Max value of DurationSeconds is 15min/12hr.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_follow_sts_rules() {
        for good in ["ab", "opener@team-a.sess_1", &"x".repeat(64)] {
            assert!(valid_session_name(good), "{good}");
        }
        for bad in ["a", "", "has space", "slash/", &"x".repeat(65), "é1"] {
            assert!(!valid_session_name(bad), "{bad}");
        }
    }

    #[test]
    fn role_ids_are_stable_19_digit_numbers() {
        let a = role_id("acs:ram::1:role/a");
        assert_eq!(a, role_id("acs:ram::1:role/a"));
        assert_ne!(a, role_id("acs:ram::1:role/b"));
        assert_eq!(a.to_string().len(), 19);
    }

    #[test]
    fn errors_carry_stss_host_and_product() {
        let body: serde_json::Value =
            serde_json::from_str(&error_body(&no_permission(), "RID")).unwrap();
        assert_eq!(body["HostId"], "sts.aliyuncs.com");
        assert_eq!(body["Code"], "AuthenticationFail.NoPermission");
        assert!(body["Recommend"].as_str().unwrap().contains("product=Sts"));
    }

    #[test]
    fn every_token_error_is_a_401_authentication_failure() {
        for error in [
            TokenError::Empty,
            TokenError::Malformed("m"),
            TokenError::Algorithm("HS256".into()),
            TokenError::Signature,
            TokenError::Issuer,
            TokenError::Expired,
            TokenError::NotYetValid,
            TokenError::Audience,
        ] {
            let e = token_error(error);
            assert_eq!(e.status, 401);
            assert!(
                e.code.starts_with("AuthenticationFail.OIDCToken."),
                "{}",
                e.code
            );
        }
    }
}
