//! The keyless side as loaded once at start (the key file read, the roles indexed): the OIDC
//! provider STS trusts and its verifier, the RAM roles it issues credentials for, their lifetime,
//! and the roles the instance metadata serves.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::config::KeylessConfig;
use super::keys;
use super::oidc::Verifier;

/// A RAM role as the simulated STS sees it.
#[derive(Debug)]
pub(crate) struct Role {
    pub(crate) subjects: HashSet<String>,
    pub(crate) instances: Option<Arc<[String]>>,
}

/// The keyless configuration, loaded (key file read) once at start.
#[derive(Debug)]
pub(crate) struct Keyless {
    pub(crate) provider_arn: Option<String>,
    pub(crate) verifier: Option<Verifier>,
    pub(crate) roles: HashMap<String, Role>,
    /// Seconds.
    pub(crate) lifetime: i64,
    /// In configuration order, as the metadata service lists them.
    pub(crate) metadata_roles: Vec<(String, Option<Arc<[String]>>)>,
}

impl Default for Keyless {
    fn default() -> Self {
        Keyless::load(&KeylessConfig::default()).expect("the empty keyless config loads")
    }
}

impl Keyless {
    pub(crate) fn load(config: &KeylessConfig) -> Result<Self, String> {
        config.validate()?;
        let (provider_arn, verifier) = match &config.oidc {
            None => (None, None),
            Some(oidc) => {
                let keys = keys::load(&oidc.public_key_file)?;
                let verifier = Verifier {
                    issuer: oidc.issuer.clone(),
                    keys,
                };
                (Some(oidc.provider_arn.clone()), Some(verifier))
            }
        };
        let to_arc = |list: &Option<Vec<String>>| list.as_ref().map(|l| Arc::from(l.as_slice()));
        let roles = config
            .roles
            .iter()
            .map(|role| {
                let record = Role {
                    subjects: role.subjects.iter().cloned().collect(),
                    instances: to_arc(&role.instances),
                };
                (role.arn.clone(), record)
            })
            .collect();
        Ok(Keyless {
            provider_arn,
            verifier,
            roles,
            lifetime: i64::try_from(config.sts_lifetime_seconds).unwrap_or(i64::MAX),
            metadata_roles: config
                .metadata_roles
                .iter()
                .map(|role| (role.name.clone(), to_arc(&role.instances)))
                .collect(),
        })
    }
}
