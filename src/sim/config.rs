//! What the simulator knows: accounts, instances, regions and limits.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

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

impl FromStr for InstanceStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "running" => Ok(InstanceStatus::Running),
            "stopped" => Ok(InstanceStatus::Stopped),
            "starting" => Ok(InstanceStatus::Starting),
            _ => Err(format!(
                "unknown instance status {s:?} (expected Running, Stopped or Starting)"
            )),
        }
    }
}

/// `ID:REGION:STATUS:OSTYPE`, the binary's `--instance` flag.
impl FromStr for SimInstance {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let [id, region, status, os_type] = parts.as_slice() else {
            return Err(format!(
                "instance {s:?} is not ID:REGION:STATUS:OSTYPE (e.g. i-bp1abc:cn-hangzhou:Running:linux)"
            ));
        };
        let instance = SimInstance {
            instance_id: (*id).to_owned(),
            region_id: (*region).to_owned(),
            status: status.parse()?,
            os_type: os_type.to_ascii_lowercase(),
        };
        instance.check()?;
        Ok(instance)
    }
}

/// `ID:SECRET[:TOKEN]`, the binary's `--access-key` flag. The token may itself contain `:`.
impl FromStr for SimAccount {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, ':');
        let (Some(id), Some(secret)) = (parts.next(), parts.next()) else {
            return Err("access key is not ID:SECRET[:TOKEN]".to_owned());
        };
        let account = SimAccount {
            access_key_id: id.to_owned(),
            access_key_secret: secret.to_owned(),
            security_token: parts.next().map(str::to_owned),
        };
        account.check()?;
        Ok(account)
    }
}

impl SimInstance {
    fn check(&self) -> Result<(), String> {
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
    fn check(&self) -> Result<(), String> {
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

/// Default lifetime of issued STS credentials, STS's own default for `DurationSeconds`.
pub const DEFAULT_STS_LIFETIME_SECONDS: u64 = 3600;
/// STS's upper bound for a role session.
pub const MAX_STS_LIFETIME_SECONDS: u64 = 43_200;

/// Keyless access: the STS side (`AssumeRoleWithOIDC`) and the instance metadata's RAM roles.
/// Kept apart from [`SimConfig`] (the ECS cloud); the same config file holds both.
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
    pub fn from_file(path: &Path) -> Result<Self, SimError> {
        load_config_file(path).map(|(_, keyless)| keyless)
    }

    /// Shapes only; the key file is read when the simulator starts.
    pub fn validate(&self) -> Result<(), String> {
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
        if !(1..=MAX_STS_LIFETIME_SECONDS).contains(&self.sts_lifetime_seconds) {
            return Err(format!(
                "stsLifetimeSeconds must be 1 to {MAX_STS_LIFETIME_SECONDS}"
            ));
        }
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

/// `ARN=SUBJECT[,SUBJECT...]`, the binary's `--role` flag.
impl FromStr for SimRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (arn, subjects) = s
            .split_once('=')
            .ok_or_else(|| format!("role {s:?} is not ARN=SUBJECT[,SUBJECT...]"))?;
        Ok(SimRole {
            arn: arn.to_owned(),
            subjects: split_list(subjects),
            instances: None,
        })
    }
}

/// `NAME[=INSTANCE[,INSTANCE...]]`, the binary's `--metadata-role` flag.
impl FromStr for MetadataRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.split_once('=') {
            None => MetadataRole {
                name: s.to_owned(),
                instances: None,
            },
            Some((name, list)) => MetadataRole {
                name: name.to_owned(),
                instances: Some(split_list(list)),
            },
        })
    }
}

pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn default_sts_lifetime() -> u64 {
    DEFAULT_STS_LIFETIME_SECONDS
}

fn default_regions() -> Vec<String> {
    ["cn-hangzhou", "cn-shanghai", "ap-southeast-1"]
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn default_limit() -> u32 {
    DEFAULT_RECONNECT_LIMIT_PER_MINUTE
}

fn default_proxy_host() -> String {
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

    /// Reads YAML, or JSON when the file name ends in `.json`; the keyless keys of the same file
    /// are read by [`KeylessConfig::from_file`] (or both at once by [`load_config_file`]).
    pub fn from_file(path: &Path) -> Result<Self, SimError> {
        load_config_file(path).map(|(config, _)| config)
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

    #[test]
    fn instance_flag_parses() {
        let i: SimInstance = "i-abc:cn-beijing:stopped:Windows".parse().unwrap();
        assert_eq!(i.instance_id, "i-abc");
        assert_eq!(i.region_id, "cn-beijing");
        assert_eq!(i.status, InstanceStatus::Stopped);
        assert_eq!(i.os_type, "windows");
        assert!("i-abc:cn-beijing:Running".parse::<SimInstance>().is_err());
        assert!(
            "i-abc:cn-beijing:Broken:linux"
                .parse::<SimInstance>()
                .is_err()
        );
        assert!(
            "i-abc:cn-beijing:Running:bsd"
                .parse::<SimInstance>()
                .is_err()
        );
    }

    #[test]
    fn access_key_flag_parses_with_and_without_token() {
        let a: SimAccount = "id:secret".parse().unwrap();
        assert_eq!(a.security_token, None);
        let b: SimAccount = "id:secret:tok:en".parse().unwrap();
        assert_eq!(b.security_token.as_deref(), Some("tok:en"));
        assert!("id".parse::<SimAccount>().is_err());
        assert!("id:".parse::<SimAccount>().is_err());
    }

    #[test]
    fn ram_arns_and_keyless_flags_parse() {
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
        let role: SimRole = "acs:ram::1:role/a=system:serviceaccount:ns:sa, x"
            .parse()
            .unwrap();
        assert_eq!(role.arn, "acs:ram::1:role/a");
        assert_eq!(role.subjects, ["system:serviceaccount:ns:sa", "x"]);
        assert!("no-equals".parse::<SimRole>().is_err());
        let plain: MetadataRole = "EcsVncRole".parse().unwrap();
        assert_eq!(plain.instances, None);
        let limited: MetadataRole = "R=i-a,i-b".parse().unwrap();
        assert_eq!(limited.instances.unwrap(), ["i-a", "i-b"]);
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

    #[test]
    fn debug_never_shows_secrets() {
        let a: SimAccount = "id:very-secret:sts-token".parse().unwrap();
        let shown = format!("{a:?}");
        assert!(!shown.contains("very-secret"));
        assert!(!shown.contains("sts-token"));
    }

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
