//! The simulated ECS cloud as configured: accounts, instances, regions and limits, their defaults,
//! the demo cloud and the checks a valid cloud passes.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Default proxy host, the one in the seed's example `VncUrl`.
pub const DEFAULT_VNC_PROXY_HOST: &str = "hz01-vncproxy.aliyun.com";
/// Default reconnect limit per instance per minute (the seed's "30 times per minute").
pub const DEFAULT_RECONNECT_LIMIT_PER_MINUTE: u32 = 30;

/// The whole simulated cloud. An instance's region counts as known even when `regions` omits it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimConfig {
    #[serde(default)]
    pub accounts: Vec<SimAccount>,
    #[serde(default)]
    pub instances: Vec<SimInstance>,
    #[serde(default = "default_regions")]
    pub regions: Vec<String>,
    #[serde(default = "default_limit")]
    pub reconnect_limit_per_minute: u32,
    #[serde(default = "default_proxy_host")]
    pub vnc_proxy_host: String,
}

/// An AccessKey pair, optionally an STS one (then every request must carry exactly this token).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimAccount {
    pub access_key_id: String,
    pub access_key_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_token: Option<String>,
}

/// Secrets stay out of logs, even debug ones.
impl fmt::Debug for SimAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimAccount")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimInstance {
    pub instance_id: String,
    pub region_id: String,
    pub status: InstanceStatus,
    /// `linux` or `windows`, as ECS spells `OSType`.
    pub os_type: String,
}

/// ECS's spelling of the statuses that matter to `DescribeInstanceVncUrl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InstanceStatus {
    #[serde(alias = "running")]
    Running,
    #[serde(alias = "stopped")]
    Stopped,
    #[serde(alias = "starting")]
    Starting,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Running => "Running",
            InstanceStatus::Stopped => "Stopped",
            InstanceStatus::Starting => "Starting",
        }
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SimInstance {
    pub(super) fn check(&self) -> Result<(), String> {
        if self.instance_id.is_empty() || self.region_id.is_empty() {
            return Err("an instance needs an id and a region".to_owned());
        }
        if self.os_type != "linux" && self.os_type != "windows" {
            return Err(format!(
                "instance {}: osType {:?} is neither \"linux\" nor \"windows\"",
                self.instance_id, self.os_type
            ));
        }
        Ok(())
    }
}

impl SimAccount {
    pub(super) fn check(&self) -> Result<(), String> {
        if self.access_key_id.is_empty() || self.access_key_secret.is_empty() {
            return Err("an access key needs a non-empty id and secret".to_owned());
        }
        if self.security_token.as_deref() == Some("") {
            return Err(format!(
                "access key {}: an empty security token; leave it out instead",
                self.access_key_id
            ));
        }
        Ok(())
    }
}

pub(super) fn default_regions() -> Vec<String> {
    ["cn-hangzhou", "cn-shanghai", "ap-southeast-1"]
        .into_iter()
        .map(str::to_owned)
        .collect()
}

pub(super) fn default_limit() -> u32 {
    DEFAULT_RECONNECT_LIMIT_PER_MINUTE
}

pub(super) fn default_proxy_host() -> String {
    DEFAULT_VNC_PROXY_HOST.to_owned()
}

/// Empty cloud (no accounts, no instances) with the demo regions and the default limits.
impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            accounts: Vec::new(),
            instances: Vec::new(),
            regions: default_regions(),
            reconnect_limit_per_minute: default_limit(),
            vnc_proxy_host: default_proxy_host(),
        }
    }
}

impl SimConfig {
    /// The cloud that demos, docs and most tests use.
    pub fn demo() -> Self {
        let instance = |id: &str, status, os_type: &str| SimInstance {
            instance_id: id.to_owned(),
            region_id: "cn-hangzhou".to_owned(),
            status,
            os_type: os_type.to_owned(),
        };
        SimConfig {
            accounts: vec![
                SimAccount {
                    access_key_id: "sim-access-key-id".to_owned(),
                    access_key_secret: "sim-access-key-secret".to_owned(),
                    security_token: None,
                },
                // The placeholders of examples/credentials-secret.yaml, so the shipped examples
                // work against ecs-sim exactly as they are.
                SimAccount {
                    access_key_id: "LTAI5tEXAMPLEEXAMPLE".to_owned(),
                    access_key_secret: "replace-with-the-access-key-secret".to_owned(),
                    security_token: None,
                },
            ],
            instances: vec![
                instance("i-bp1hzoinajzkh91h1234", InstanceStatus::Running, "linux"),
                instance("i-bp1windows0000000001", InstanceStatus::Running, "windows"),
                instance("i-bp1stopped000000001", InstanceStatus::Stopped, "linux"),
                instance("i-bp1starting00000001", InstanceStatus::Starting, "linux"),
            ],
            ..SimConfig::default()
        }
    }

    /// Non-empty ids, known OS types, no duplicate access key or instance ids.
    pub fn validate(&self) -> Result<(), String> {
        let mut keys = HashSet::new();
        for account in &self.accounts {
            account.check()?;
            if !keys.insert(account.access_key_id.as_str()) {
                return Err(format!(
                    "access key id {} is listed twice",
                    account.access_key_id
                ));
            }
        }
        let mut ids = HashSet::new();
        for instance in &self.instances {
            instance.check()?;
            if !ids.insert(instance.instance_id.as_str()) {
                return Err(format!("instance {} is listed twice", instance.instance_id));
            }
        }
        if self.regions.iter().any(String::is_empty) {
            return Err("a region id is empty".to_owned());
        }
        if self.vnc_proxy_host.is_empty() {
            return Err("vncProxyHost is empty".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_is_valid_and_matches_the_contract() {
        let demo = SimConfig::demo();
        demo.validate().unwrap();
        assert_eq!(demo.accounts[0].access_key_id, "sim-access-key-id");
        assert_eq!(demo.instances.len(), 4);
        assert_eq!(demo.reconnect_limit_per_minute, 30);
        assert_eq!(demo.vnc_proxy_host, "hz01-vncproxy.aliyun.com");
    }
}
