//! The `ecs-sim` binary's flag values, parsed: `--instance`, `--access-key`, `--role`,
//! `--role-instances` and `--metadata-role` (and an instance status in any case).

use std::str::FromStr;

use super::cloud::{InstanceStatus, SimAccount, SimInstance};
use super::keyless::{MetadataRole, SimRole};

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

/// `ARN=SUBJECT[,SUBJECT...]`, the binary's `--role` flag.
impl FromStr for SimRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (arn, subjects) =
            key_and_list(s, || format!("role {s:?} is not ARN=SUBJECT[,SUBJECT...]"))?;
        Ok(SimRole {
            arn,
            subjects,
            instances: None,
        })
    }
}

/// `ARN=INSTANCE[,INSTANCE...]`, the binary's `--role-instances` flag: the instances a `--role`'s
/// credentials are limited to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleInstances {
    pub arn: String,
    pub instances: Vec<String>,
}

impl FromStr for RoleInstances {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (arn, instances) = key_and_list(s, || {
            format!("--role-instances {s:?} is not ARN=INSTANCE[,...]")
        })?;
        Ok(RoleInstances { arn, instances })
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

/// `KEY=ITEM[,ITEM...]`; `malformed` says what the flag should look like when there is no `=`.
fn key_and_list(
    s: &str,
    malformed: impl FnOnce() -> String,
) -> Result<(String, Vec<String>), String> {
    let (key, list) = s.split_once('=').ok_or_else(malformed)?;
    Ok((key.to_owned(), split_list(list)))
}

/// Comma-separated, each item trimmed, empty items dropped.
fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn keyless_flags_parse() {
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
    fn role_instances_flag_parses() {
        let limit: RoleInstances = "acs:ram::1:role/a=i-a, i-b,".parse().unwrap();
        assert_eq!(limit.arn, "acs:ram::1:role/a");
        assert_eq!(limit.instances, ["i-a", "i-b"]);
        let err = "no-equals".parse::<RoleInstances>().unwrap_err();
        assert_eq!(
            err,
            "--role-instances \"no-equals\" is not ARN=INSTANCE[,...]"
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let a: SimAccount = "id:very-secret:sts-token".parse().unwrap();
        let shown = format!("{a:?}");
        assert!(!shown.contains("very-secret"));
        assert!(!shown.contains("sts-token"));
    }
}
