//! Reading a config file (YAML, or JSON by its name) into the cloud and the keyless part, and the
//! errors that name the file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::cloud::{
    SimAccount, SimConfig, SimInstance, default_limit, default_proxy_host, default_regions,
};
use super::keyless::{KeylessConfig, MetadataRole, OidcProvider, SimRole, default_sts_lifetime};

/// Loading a configuration file went wrong; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read sim config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse sim config {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("invalid sim config {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// Reads a sim config file: the ECS cloud and the keyless (STS, metadata) part, both validated.
pub fn load_config_file(path: &Path) -> Result<(SimConfig, KeylessConfig), SimError> {
    let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
        path: path.to_owned(),
        source,
    })?;
    let is_json = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
    let parsed = if is_json {
        serde_json::from_str::<ConfigFile>(&text).map_err(|e| e.to_string())
    } else {
        serde_yaml::from_str::<ConfigFile>(&text).map_err(|e| e.to_string())
    };
    let (config, keyless) = parsed
        .map_err(|message| SimError::Parse {
            path: path.to_owned(),
            message,
        })?
        .split();
    let invalid = |message| SimError::Invalid {
        path: path.to_owned(),
        message,
    };
    config.validate().map_err(invalid)?;
    keyless.validate().map_err(invalid)?;
    Ok((config, keyless))
}

impl SimConfig {
    /// Reads YAML, or JSON when the file name ends in `.json`; the keyless keys of the same file
    /// are read by [`KeylessConfig::from_file`] (or both at once by [`load_config_file`]).
    pub fn from_file(path: &Path) -> Result<Self, SimError> {
        load_config_file(path).map(|(config, _)| config)
    }
}

impl KeylessConfig {
    pub fn from_file(path: &Path) -> Result<Self, SimError> {
        load_config_file(path).map(|(_, keyless)| keyless)
    }
}

/// The file's shape: every key of [`SimConfig`] and [`KeylessConfig`] side by side (serde cannot
/// combine `flatten` with `deny_unknown_fields`, so they are listed here once more).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    accounts: Vec<SimAccount>,
    #[serde(default)]
    instances: Vec<SimInstance>,
    #[serde(default = "default_regions")]
    regions: Vec<String>,
    #[serde(default = "default_limit")]
    reconnect_limit_per_minute: u32,
    #[serde(default = "default_proxy_host")]
    vnc_proxy_host: String,
    #[serde(default)]
    oidc: Option<OidcProvider>,
    #[serde(default)]
    roles: Vec<SimRole>,
    #[serde(default = "default_sts_lifetime")]
    sts_lifetime_seconds: u64,
    #[serde(default)]
    metadata_roles: Vec<MetadataRole>,
}

impl ConfigFile {
    fn split(self) -> (SimConfig, KeylessConfig) {
        let config = SimConfig {
            accounts: self.accounts,
            instances: self.instances,
            regions: self.regions,
            reconnect_limit_per_minute: self.reconnect_limit_per_minute,
            vnc_proxy_host: self.vnc_proxy_host,
        };
        let keyless = KeylessConfig {
            oidc: self.oidc,
            roles: self.roles,
            sts_lifetime_seconds: self.sts_lifetime_seconds,
            metadata_roles: self.metadata_roles,
        };
        (config, keyless)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::InstanceStatus;

    #[test]
    fn yaml_and_json_files_load_with_defaults() {
        let dir = std::env::temp_dir().join(format!("ecs-sim-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = dir.join("sim.yaml");
        std::fs::write(
            &yaml,
            "accounts:\n- accessKeyId: a\n  accessKeySecret: s\n  securityToken: t\n\
             instances:\n- instanceId: i-x\n  regionId: cn-beijing\n  status: Starting\n  osType: linux\n",
        )
        .unwrap();
        let config = SimConfig::from_file(&yaml).unwrap();
        assert_eq!(config.accounts[0].security_token.as_deref(), Some("t"));
        assert_eq!(config.instances[0].status, InstanceStatus::Starting);
        assert_eq!(config.reconnect_limit_per_minute, 30);

        let json = dir.join("sim.json");
        std::fs::write(
            &json,
            r#"{"reconnectLimitPerMinute": 5, "regions": ["eu-central-1"]}"#,
        )
        .unwrap();
        let config = SimConfig::from_file(&json).unwrap();
        assert_eq!(config.reconnect_limit_per_minute, 5);
        assert_eq!(config.regions, ["eu-central-1"]);

        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "reconectLimit: 3\n").unwrap();
        let err = SimConfig::from_file(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.yaml"), "{err}");

        let missing = dir.join("missing.yaml");
        let err = SimConfig::from_file(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.yaml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
