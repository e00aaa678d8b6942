//! Keyless access as configured: the OIDC provider STS trusts, the RAM roles it issues credentials
//! for, their lifetime and the instance metadata's roles, with the checks a valid setup passes.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Default lifetime of issued STS credentials, STS's own default for `DurationSeconds`.
pub const DEFAULT_STS_LIFETIME_SECONDS: u64 = 3600;
/// STS's upper bound for a role session.
pub const MAX_STS_LIFETIME_SECONDS: u64 = 43_200;

/// Keyless access: the STS side (`AssumeRoleWithOIDC`) and the instance metadata's RAM roles.
/// Kept apart from [`SimConfig`](super::SimConfig) (the ECS cloud); the same config file holds
/// both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeylessConfig {
    /// The cluster's OIDC provider as RAM knows it; without it every exchange is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcProvider>,
    /// RAM roles that trust ServiceAccounts of that provider.
    #[serde(default)]
    pub roles: Vec<SimRole>,
    /// Lifetime of issued credentials, and the cap on a requested `DurationSeconds`.
    #[serde(default = "default_sts_lifetime")]
    pub sts_lifetime_seconds: u64,
    /// RAM roles of the (simulated) instance, served by the metadata endpoints.
    #[serde(default)]
    pub metadata_roles: Vec<MetadataRole>,
}

/// `oidc: {issuer, providerArn, publicKeyFile}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcProvider {
    /// The tokens' `iss`, e.g. `https://kubernetes.default.svc`.
    pub issuer: String,
    /// `acs:ram::<uid>:oidc-provider/<name>`, what callers pass as `OIDCProviderArn`.
    pub provider_arn: String,
    /// PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`, e.g. the cluster's `sa.pub`) or a JWKS JSON file.
    pub public_key_file: PathBuf,
}

/// A RAM role whose trust policy lets the listed ServiceAccounts assume it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimRole {
    /// `acs:ram::<uid>:role/<name>`.
    pub arn: String,
    /// Token subjects trusted, e.g. `system:serviceaccount:team-a:opener`.
    pub subjects: Vec<String>,
    /// The only instances its credentials may open; absent: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<String>>,
}

/// The instance's RAM role, `/latest/meta-data/ram/security-credentials/<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetadataRole {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<String>>,
}

/// Nothing keyless: no provider, no roles, the default lifetime.
impl Default for KeylessConfig {
    fn default() -> Self {
        KeylessConfig {
            oidc: None,
            roles: Vec::new(),
            sts_lifetime_seconds: DEFAULT_STS_LIFETIME_SECONDS,
            metadata_roles: Vec::new(),
        }
    }
}

impl KeylessConfig {
    /// Shapes only; the key file is read when the simulator starts.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_oidc()?;
        self.validate_roles()?;
        if !(1..=MAX_STS_LIFETIME_SECONDS).contains(&self.sts_lifetime_seconds) {
            return Err(format!(
                "stsLifetimeSeconds must be 1 to {MAX_STS_LIFETIME_SECONDS}"
            ));
        }
        self.validate_metadata_roles()
    }

    fn validate_oidc(&self) -> Result<(), String> {
        if let Some(oidc) = &self.oidc {
            if oidc.issuer.is_empty() {
                return Err("oidc.issuer is empty".to_owned());
            }
            if !is_ram_arn(&oidc.provider_arn, "oidc-provider") {
                return Err(format!(
                    "oidc.providerArn {:?} is not acs:ram::<uid>:oidc-provider/<name>",
                    oidc.provider_arn
                ));
            }
            if oidc.public_key_file.as_os_str().is_empty() {
                return Err("oidc.publicKeyFile is empty".to_owned());
            }
        } else if !self.roles.is_empty() {
            return Err("roles are listed but no oidc provider trusts anyone".to_owned());
        }
        Ok(())
    }

    fn validate_roles(&self) -> Result<(), String> {
        let mut arns = HashSet::new();
        for role in &self.roles {
            if !is_ram_arn(&role.arn, "role") {
                return Err(format!(
                    "role {:?} is not acs:ram::<uid>:role/<name>",
                    role.arn
                ));
            }
            if !arns.insert(role.arn.as_str()) {
                return Err(format!("role {} is listed twice", role.arn));
            }
            if role.subjects.is_empty() || role.subjects.iter().any(String::is_empty) {
                return Err(format!("role {}: subjects must be non-empty", role.arn));
            }
        }
        Ok(())
    }

    fn validate_metadata_roles(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        for role in &self.metadata_roles {
            let valid = !role.name.is_empty()
                && role.name.len() <= 64
                && role
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !valid {
                return Err(format!(
                    "metadata role name {:?} is not 1 to 64 of [A-Za-z0-9._-]",
                    role.name
                ));
            }
            if !names.insert(role.name.as_str()) {
                return Err(format!("metadata role {} is listed twice", role.name));
            }
        }
        Ok(())
    }
}

/// `acs:ram::<digits>:<kind>/<name>` with a non-empty name.
pub(crate) fn is_ram_arn(arn: &str, kind: &str) -> bool {
    let Some((uid, rest)) = arn
        .strip_prefix("acs:ram::")
        .and_then(|rest| rest.split_once(':'))
    else {
        return false;
    };
    let name = rest
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix('/'));
    !uid.is_empty()
        && uid.bytes().all(|b| b.is_ascii_digit())
        && name.is_some_and(|n| !n.is_empty() && !n.contains(char::is_whitespace))
}

pub(super) fn default_sts_lifetime() -> u64 {
    DEFAULT_STS_LIFETIME_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_arns_are_recognised_by_kind() {
        assert!(is_ram_arn("acs:ram::1234567890:role/team-a", "role"));
        assert!(is_ram_arn("acs:ram::1:oidc-provider/ack", "oidc-provider"));
        for bad in [
            "acs:ram::1234567890:role/",
            "acs:ram::12x:role/a",
            "acs:ram:::role/a",
            "acs:ram::1:user/a",
            "arn:aws:iam::1:role/a",
            "acs:ram::1:role/a b",
        ] {
            assert!(!is_ram_arn(bad, "role"), "{bad}");
        }
    }

    #[test]
    fn keyless_validation_names_the_problem() {
        let oidc = OidcProvider {
            issuer: "https://kubernetes.default.svc".into(),
            provider_arn: "acs:ram::1:oidc-provider/p".into(),
            public_key_file: "sa.pub".into(),
        };
        let role = |arn: &str| SimRole {
            arn: arn.into(),
            subjects: vec!["s".into()],
            instances: None,
        };
        let valid = KeylessConfig {
            oidc: Some(oidc.clone()),
            roles: vec![role("acs:ram::1:role/a")],
            ..KeylessConfig::default()
        };
        valid.validate().unwrap();
        KeylessConfig::default().validate().unwrap();
        for (config, needle) in [
            (
                KeylessConfig {
                    oidc: None,
                    ..valid.clone()
                },
                "no oidc provider",
            ),
            (
                KeylessConfig {
                    roles: vec![role("acs:ram::1:role/a"), role("acs:ram::1:role/a")],
                    ..valid.clone()
                },
                "twice",
            ),
            (
                KeylessConfig {
                    sts_lifetime_seconds: 0,
                    ..valid.clone()
                },
                "stsLifetimeSeconds",
            ),
            (
                KeylessConfig {
                    metadata_roles: vec!["a/b".parse().unwrap()],
                    ..valid.clone()
                },
                "metadata role name",
            ),
        ] {
            let err = config.validate().unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }
}
