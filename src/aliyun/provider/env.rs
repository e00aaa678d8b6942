//! Which operator-level credentials the environment selects, in the official SDK's order and with
//! its variable names: an AccessKey (and STS token), then RRSA, then the ECS instance's RAM role.
//! Pure: the environment comes in through a lookup, so tests never touch the process's own. Also
//! what is wrong with an environment the provider cannot start from ([`ProviderSetupError`]).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::aliyun::credentials::{Credentials, CredentialsError};
use crate::aliyun::sts::{check_oidc_provider_arn, check_role_arn, check_role_session_name};

pub const ENV_OIDC_TOKEN_FILE: &str = "ALIBABA_CLOUD_OIDC_TOKEN_FILE";
pub const ENV_ROLE_ARN: &str = "ALIBABA_CLOUD_ROLE_ARN";
pub const ENV_OIDC_PROVIDER_ARN: &str = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN";
pub const ENV_ROLE_SESSION_NAME: &str = "ALIBABA_CLOUD_ROLE_SESSION_NAME";
/// Names the instance's RAM role; set, it turns the instance-metadata source on.
pub const ENV_ECS_METADATA: &str = "ALIBABA_CLOUD_ECS_METADATA";
/// `true` forbids the IMDSv1 fallback when the metadata service hands out no token.
pub const ENV_IMDSV1_DISABLED: &str = "ALIBABA_CLOUD_IMDSV1_DISABLED";
/// The operator's own override of the metadata address, for tests (a base URL).
pub const ENV_METADATA_ENDPOINT: &str = "ECS_VNC_ECS_METADATA_ENDPOINT";
/// The STS endpoint override (`--sts-endpoint`).
pub const ENV_STS_ENDPOINT: &str = "ECS_VNC_STS_ENDPOINT";

/// A start-up error: the environment is incomplete or wrong. Each names its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderSetupError {
    #[error(transparent)]
    AccessKey(#[from] CredentialsError),
    #[error(
        "RRSA is on because {present} is set, but {missing} is not set; RRSA needs all of \
         {ENV_OIDC_TOKEN_FILE}, {ENV_ROLE_ARN} and {ENV_OIDC_PROVIDER_ARN}"
    )]
    IncompleteRrsa {
        present: &'static str,
        missing: &'static str,
    },
    #[error("{var} is not valid UTF-8")]
    EnvNotUtf8 { var: &'static str },
    #[error("{var} {reason}")]
    InvalidEnv { var: &'static str, reason: String },
    #[error("{var} names {path}, which cannot be read: {reason}")]
    TokenFile {
        var: &'static str,
        path: String,
        reason: String,
    },
    #[error("could not set up the HTTP client: {0}")]
    Client(String),
}

/// An environment lookup: `None` when unset, `Some(Err(_))` when not UTF-8.
pub trait Lookup: Fn(&str) -> Option<Result<String, OsString>> {}
impl<F: Fn(&str) -> Option<Result<String, OsString>>> Lookup for F {}

/// The process environment as a [`Lookup`].
pub fn process_env(var: &str) -> Option<Result<String, OsString>> {
    std::env::var_os(var).map(OsString::into_string)
}

/// RRSA as the environment configures it (token file not yet read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrsaEnv {
    pub token_file: PathBuf,
    pub role_arn: String,
    pub oidc_provider_arn: String,
    /// `None`: the operator's default (`ecs-vnc-operator-<unix seconds>`).
    pub role_session_name: Option<String>,
}

/// The instance RAM role as the environment configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRoleEnv {
    pub role_name: String,
    /// `ECS_VNC_ECS_METADATA_ENDPOINT`, unparsed; `None`: the real address.
    pub metadata_endpoint: Option<String>,
    pub imdsv1_disabled: bool,
}

/// The source the environment selects.
#[derive(Debug, PartialEq, Eq)]
pub enum Selected {
    AccessKey(Credentials),
    Rrsa(RrsaEnv),
    InstanceRole(InstanceRoleEnv),
    Nothing,
}

/// A variable's trimmed value; empty counts as unset (as in the official SDKs and in Helm
/// templates that always render the variable).
fn read(lookup: &impl Lookup, var: &'static str) -> Result<Option<String>, ProviderSetupError> {
    match lookup(var) {
        None => Ok(None),
        Some(Err(_)) => Err(ProviderSetupError::EnvNotUtf8 { var }),
        Some(Ok(v)) => Ok(Some(v.trim().to_owned()).filter(|v| !v.is_empty())),
    }
}

pub fn select(lookup: impl Lookup) -> Result<Selected, ProviderSetupError> {
    let access_key = Credentials::from_lookup(&lookup)?;
    // A partial RRSA environment is an error even when an AccessKey would win.
    let rrsa = rrsa(&lookup)?;
    if let Some(creds) = access_key {
        if rrsa.is_some() {
            tracing::warn!(
                "both an AccessKey (ALIBABA_CLOUD_ACCESS_KEY_ID) and RRSA (ALIBABA_CLOUD_ROLE_ARN) \
                 are set; the AccessKey is used, as the official SDKs do: remove it to go keyless"
            );
        }
        return Ok(Selected::AccessKey(creds));
    }
    if let Some(rrsa) = rrsa {
        return Ok(Selected::Rrsa(rrsa));
    }
    if let Some(role) = instance_role(&lookup)? {
        return Ok(Selected::InstanceRole(role));
    }
    Ok(Selected::Nothing)
}

/// RRSA is on when the token file or the role ARN is set; then all three are required. The
/// provider ARN alone is not RRSA: it serves `spec.serviceAccountRef` sessions.
fn rrsa(lookup: &impl Lookup) -> Result<Option<RrsaEnv>, ProviderSetupError> {
    let token_file = read(lookup, ENV_OIDC_TOKEN_FILE)?;
    let role_arn = read(lookup, ENV_ROLE_ARN)?;
    let present = match (&token_file, &role_arn) {
        (None, None) => return Ok(None),
        (Some(_), _) => ENV_OIDC_TOKEN_FILE,
        (None, Some(_)) => ENV_ROLE_ARN,
    };
    let provider_arn = read(lookup, ENV_OIDC_PROVIDER_ARN)?;
    let require = |value: Option<String>, missing: &'static str| {
        value.ok_or(ProviderSetupError::IncompleteRrsa { present, missing })
    };
    let token_file = require(token_file, ENV_OIDC_TOKEN_FILE)?;
    let role_arn = require(role_arn, ENV_ROLE_ARN)?;
    let oidc_provider_arn = require(provider_arn, ENV_OIDC_PROVIDER_ARN)?;
    let invalid =
        |var: &'static str| move |reason: String| ProviderSetupError::InvalidEnv { var, reason };
    check_role_arn(&role_arn).map_err(invalid(ENV_ROLE_ARN))?;
    check_oidc_provider_arn(&oidc_provider_arn).map_err(invalid(ENV_OIDC_PROVIDER_ARN))?;
    let role_session_name = read(lookup, ENV_ROLE_SESSION_NAME)?;
    if let Some(name) = &role_session_name {
        check_role_session_name(name).map_err(invalid(ENV_ROLE_SESSION_NAME))?;
    }
    Ok(Some(RrsaEnv {
        token_file: PathBuf::from(token_file),
        role_arn,
        oidc_provider_arn,
        role_session_name,
    }))
}

fn instance_role(lookup: &impl Lookup) -> Result<Option<InstanceRoleEnv>, ProviderSetupError> {
    let Some(role_name) = read(lookup, ENV_ECS_METADATA)? else {
        return Ok(None);
    };
    // The name becomes a path segment of the metadata URL.
    let ok = role_name.len() <= 64
        && role_name != "."
        && role_name != ".."
        && role_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !ok {
        return Err(ProviderSetupError::InvalidEnv {
            var: ENV_ECS_METADATA,
            reason: "must be a RAM role name: 1 to 64 letters, digits, '.', '-' or '_'".into(),
        });
    }
    Ok(Some(InstanceRoleEnv {
        role_name,
        metadata_endpoint: read(lookup, ENV_METADATA_ENDPOINT)?,
        imdsv1_disabled: read(lookup, ENV_IMDSV1_DISABLED)?
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
    }))
}

/// A lookup that knows exactly `pairs`, for tests.
#[cfg(test)]
pub(super) fn fixed_env(pairs: &[(&str, &str)]) -> impl Lookup + use<> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |var: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| Ok(v.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aliyun::{CredentialsError, ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET};

    const ROLE: &str = "acs:ram::1234567890123456:role/vnc";
    const PROVIDER: &str = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1";

    fn selected_rrsa(pairs: &[(&str, &str)]) -> RrsaEnv {
        let Ok(Selected::Rrsa(rrsa)) = select(fixed_env(pairs)) else {
            panic!("RRSA expected");
        };
        rrsa
    }

    const RRSA: &[(&str, &str)] = &[
        (ENV_OIDC_TOKEN_FILE, "/var/run/secrets/tokens/oidc-token"),
        (ENV_ROLE_ARN, ROLE),
        (ENV_OIDC_PROVIDER_ARN, PROVIDER),
    ];

    #[test]
    fn nothing_set_selects_nothing() {
        assert_eq!(select(fixed_env(&[])), Ok(Selected::Nothing));
    }

    #[test]
    fn an_access_key_wins_over_rrsa_and_the_instance_role() {
        let mut all = RRSA.to_vec();
        all.extend([
            (ENV_ACCESS_KEY_ID, "LTAIid"),
            (ENV_ACCESS_KEY_SECRET, "secret"),
            (ENV_ECS_METADATA, "role"),
        ]);
        assert!(matches!(
            select(fixed_env(&all)),
            Ok(Selected::AccessKey(_))
        ));
    }

    #[test]
    fn rrsa_wins_over_the_instance_role() {
        let mut all = RRSA.to_vec();
        all.push((ENV_ECS_METADATA, "role"));
        let rrsa = selected_rrsa(&all);
        assert_eq!(rrsa.role_arn, ROLE);
        assert_eq!(rrsa.oidc_provider_arn, PROVIDER);
        assert_eq!(
            rrsa.token_file,
            PathBuf::from("/var/run/secrets/tokens/oidc-token")
        );
        assert_eq!(rrsa.role_session_name, None);
    }

    #[test]
    fn a_partial_rrsa_environment_names_the_missing_variable() {
        for (set, missing) in [
            (&[0usize][..], ENV_ROLE_ARN),
            (&[1], ENV_OIDC_TOKEN_FILE),
            (&[0, 1], ENV_OIDC_PROVIDER_ARN),
            (&[0, 2], ENV_ROLE_ARN),
            (&[1, 2], ENV_OIDC_TOKEN_FILE),
        ] {
            let pairs: Vec<_> = set.iter().map(|&i| RRSA[i]).collect();
            let err = select(fixed_env(&pairs)).unwrap_err();
            assert!(
                matches!(err, ProviderSetupError::IncompleteRrsa { missing: m, .. } if m == missing),
                "{pairs:?}: {err}"
            );
            let text = err.to_string();
            assert!(text.contains(&format!("{missing} is not set")), "{text}");
        }
    }

    #[test]
    fn the_provider_arn_alone_is_not_rrsa() {
        let lone = [(ENV_OIDC_PROVIDER_ARN, PROVIDER)];
        assert_eq!(select(fixed_env(&lone)), Ok(Selected::Nothing));
        let with_role = [(ENV_OIDC_PROVIDER_ARN, PROVIDER), (ENV_ECS_METADATA, "r")];
        assert!(matches!(
            select(fixed_env(&with_role)),
            Ok(Selected::InstanceRole(_))
        ));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let pairs = [
            (ENV_OIDC_TOKEN_FILE, " "),
            (ENV_ROLE_ARN, ""),
            (ENV_ECS_METADATA, ""),
        ];
        assert_eq!(select(fixed_env(&pairs)), Ok(Selected::Nothing));
    }

    #[test]
    fn bad_arns_session_names_and_role_names_name_their_variable() {
        for (var, value) in [
            (ENV_ROLE_ARN, "acs:ram::123:user/x"),
            (ENV_OIDC_PROVIDER_ARN, ROLE),
            (ENV_ROLE_SESSION_NAME, "has space"),
        ] {
            let mut pairs = RRSA.to_vec();
            pairs.retain(|(k, _)| *k != var);
            pairs.push((var, value));
            let err = select(fixed_env(&pairs)).unwrap_err();
            assert!(err.to_string().starts_with(var), "{err}");
        }
        for bad in ["..", "a/b", "r?x", &"r".repeat(65)] {
            let err = select(fixed_env(&[(ENV_ECS_METADATA, bad)])).unwrap_err();
            assert!(err.to_string().starts_with(ENV_ECS_METADATA), "{err}");
        }
    }

    #[test]
    fn a_session_name_from_the_environment_is_kept() {
        let mut pairs = RRSA.to_vec();
        pairs.push((ENV_ROLE_SESSION_NAME, "vnc-op@cluster-1"));
        let rrsa = selected_rrsa(&pairs);
        assert_eq!(rrsa.role_session_name.as_deref(), Some("vnc-op@cluster-1"));
    }

    #[test]
    fn instance_role_settings() {
        let Ok(Selected::InstanceRole(role)) = select(fixed_env(&[
            (ENV_ECS_METADATA, "EcsVncRole"),
            (ENV_METADATA_ENDPOINT, "http://127.0.0.1:8787"),
            (ENV_IMDSV1_DISABLED, "TRUE"),
        ])) else {
            panic!("instance role expected");
        };
        assert_eq!(role.role_name, "EcsVncRole");
        assert_eq!(
            role.metadata_endpoint.as_deref(),
            Some("http://127.0.0.1:8787")
        );
        assert!(role.imdsv1_disabled);
    }

    #[test]
    fn access_key_errors_are_kept() {
        let err = select(fixed_env(&[(ENV_ACCESS_KEY_ID, "id")])).unwrap_err();
        assert_eq!(
            err,
            ProviderSetupError::AccessKey(CredentialsError::IncompleteEnv {
                present: ENV_ACCESS_KEY_ID,
                missing: ENV_ACCESS_KEY_SECRET
            })
        );
        let err = select(|var: &str| (var == ENV_ROLE_ARN).then(|| Err(OsString::from("x"))))
            .unwrap_err();
        assert_eq!(err, ProviderSetupError::EnvNotUtf8 { var: ENV_ROLE_ARN });
    }
}
