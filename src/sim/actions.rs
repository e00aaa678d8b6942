//! The ECS actions the simulator serves, answered the way ECS answers them, and RAM's check of
//! which instances limited credentials may name in them.

use std::time::Instant;

use base64::Engine;
use serde_json::json;

use crate::aliyun::signature::percent_encode;

use super::config::InstanceStatus;
use super::errors::EcsError;
use super::params::Params;
use super::state::Shared;
use super::windows::RATE_WINDOW;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    DescribeInstanceVncUrl,
    DescribeInstances,
}

impl Action {
    /// Action names are case-sensitive in ECS.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "DescribeInstanceVncUrl" => Some(Action::DescribeInstanceVncUrl),
            "DescribeInstances" => Some(Action::DescribeInstances),
            _ => None,
        }
    }

    pub(crate) fn required_parameters(self) -> &'static [&'static str] {
        match self {
            Action::DescribeInstanceVncUrl => &["RegionId", "InstanceId"],
            Action::DescribeInstances => &["RegionId"],
        }
    }

    /// Runs the action; `Ok` is the 200 body.
    pub(crate) fn run(
        self,
        shared: &Shared,
        params: &Params,
        request_id: &str,
        now: Instant,
    ) -> Result<String, EcsError> {
        match self {
            Action::DescribeInstanceVncUrl => {
                describe_instance_vnc_url(shared, params, request_id, now)
            }
            Action::DescribeInstances => describe_instances(shared, params, request_id),
        }
    }
}

/// Instances a request names, for fault filters and per-instance stats. Tolerates broken input.
pub(crate) fn mentioned_instances(params: &Params) -> Vec<String> {
    let mut ids = Vec::new();
    if let Some(id) = params.get("InstanceId").filter(|id| !id.is_empty()) {
        ids.push(id.to_owned());
    }
    if let Some(Ok(list)) = params.get("InstanceIds").map(parse_instance_ids) {
        ids.extend(list);
    }
    ids
}

fn describe_instance_vnc_url(
    shared: &Shared,
    params: &Params,
    request_id: &str,
    now: Instant,
) -> Result<String, EcsError> {
    let region = params.required("RegionId")?;
    let instance_id = params.required("InstanceId")?;
    if !shared.regions.contains(region) {
        return Err(EcsError::region_not_found());
    }
    {
        let mut state = shared.lock();
        let instance = state
            .instance(instance_id)
            .ok_or_else(EcsError::instance_not_found)?;
        if instance.region_id != region {
            return Err(EcsError::region_instance());
        }
        match instance.status {
            InstanceStatus::Running => {}
            InstanceStatus::Stopped => return Err(EcsError::incorrect_instance_status()),
            InstanceStatus::Starting => return Err(EcsError::instance_not_ready()),
        }
        let limit = shared.reconnect_limit_per_minute;
        // Looked up before inserting so that a known instance costs no allocation.
        if !state.windows.contains_key(instance_id) {
            state
                .windows
                .insert(instance_id.to_owned(), Default::default());
        }
        let acquired = state
            .windows
            .get_mut(instance_id)
            .is_some_and(|window| window.try_acquire(now, limit, RATE_WINDOW));
        if !acquired {
            return Err(EcsError::user_throttling());
        }
        state.stats.last_vnc_url_ms.insert(
            instance_id.to_owned(),
            jiff::Timestamp::now().as_millisecond(),
        );
    }
    Ok(json!({
        "RequestId": request_id,
        "VncUrl": vnc_url(&shared.vnc_proxy_host),
    })
    .to_string())
}

/// `percent_encode("wss://HOST/websockify/?s=" + percent_encode(token))`: the token is encoded
/// twice in the result, exactly like the documented example.
fn vnc_url(proxy_host: &str) -> String {
    let mut raw = [0u8; 48];
    fastrand::fill(&mut raw);
    let token = base64::engine::general_purpose::STANDARD.encode(raw);
    percent_encode(&format!(
        "wss://{proxy_host}/websockify/?s={}",
        percent_encode(&token)
    ))
}

/// At most 100 ids, as ECS allows.
pub(crate) fn parse_instance_ids(text: &str) -> Result<Vec<String>, EcsError> {
    match serde_json::from_str::<Vec<String>>(text) {
        Ok(ids) if ids.len() <= 100 && ids.iter().all(|id| !id.is_empty()) => Ok(ids),
        _ => Err(EcsError::instance_ids_malformed()),
    }
}

fn page_parameter(
    params: &Params,
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, EcsError> {
    match params.get(name) {
        None | Some("") => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(EcsError::invalid_parameter(format!(
                "The specified parameter \"{name}\" is not valid."
            ))),
        },
    }
}

fn describe_instances(
    shared: &Shared,
    params: &Params,
    request_id: &str,
) -> Result<String, EcsError> {
    let region = params.required("RegionId")?;
    if !shared.regions.contains(region) {
        return Err(EcsError::region_not_found());
    }
    let wanted = params
        .get("InstanceIds")
        .filter(|text| !text.is_empty())
        .map(parse_instance_ids)
        .transpose()?;
    let page_number = page_parameter(params, "PageNumber", 1, usize::MAX)?;
    let page_size = page_parameter(params, "PageSize", 10, 100)?;

    let state = shared.lock();
    let matching: Vec<_> = state
        .instances
        .iter()
        .filter(|i| i.region_id == region)
        .filter(|i| {
            wanted
                .as_ref()
                .is_none_or(|ids| ids.contains(&i.instance_id))
        })
        .collect();
    let page: Vec<_> = matching
        .iter()
        .skip((page_number - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|i| {
            json!({
                "InstanceId": i.instance_id,
                "InstanceName": i.instance_id,
                "RegionId": i.region_id,
                "Status": i.status.as_str(),
                "OSType": i.os_type,
            })
        })
        .collect();
    Ok(json!({
        "RequestId": request_id,
        "TotalCount": matching.len(),
        "PageNumber": page_number,
        "PageSize": page_size,
        "Instances": { "Instance": page },
    })
    .to_string())
}

/// RAM's resource check for credentials limited to some instances: a `DescribeInstanceVncUrl` for
/// another instance, or a `DescribeInstances` that does not name only allowed instances, is
/// `Forbidden.RAM`. A malformed `InstanceIds` is left for the action to refuse.
pub(crate) fn authorize(
    allowed: Option<&[String]>,
    action: Action,
    params: &Params,
) -> Result<(), EcsError> {
    let Some(allowed) = allowed else {
        return Ok(());
    };
    let permits = |id: &str| allowed.iter().any(|a| a == id);
    let ok = match action {
        Action::DescribeInstanceVncUrl => params.get("InstanceId").is_some_and(permits),
        Action::DescribeInstances => match params.get("InstanceIds").filter(|t| !t.is_empty()) {
            None => false,
            Some(text) => match parse_instance_ids(text) {
                Ok(ids) => ids.iter().all(|id| permits(id)),
                Err(_) => true,
            },
        },
    };
    if ok {
        Ok(())
    } else {
        Err(EcsError::forbidden_ram())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aliyun::signature::percent_decode;

    #[test]
    fn vnc_url_is_double_encoded_like_the_seed() {
        let url = vnc_url("hz01-vncproxy.aliyun.com");
        assert!(url.starts_with("wss%3A%2F%2Fhz01-vncproxy.aliyun.com%2Fwebsockify%2F%3Fs%3D"));
        let once = percent_decode(&url).unwrap();
        let token_encoded = once
            .strip_prefix("wss://hz01-vncproxy.aliyun.com/websockify/?s=")
            .unwrap();
        let token = percent_decode(token_encoded).unwrap();
        assert_eq!(token.len(), 64);
        base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap();
    }

    #[test]
    fn instance_ids_must_be_a_json_array_of_strings() {
        assert_eq!(
            parse_instance_ids(r#"["i-a","i-b"]"#).unwrap(),
            ["i-a", "i-b"]
        );
        for bad in ["i-a", r#"[1]"#, r#"{"a":1}"#, r#"[""]"#, "["] {
            assert_eq!(
                parse_instance_ids(bad).unwrap_err().code,
                "InvalidInstanceIds.Malformed"
            );
        }
        let too_many = serde_json::to_string(&vec!["i-x"; 101]).unwrap();
        assert!(parse_instance_ids(&too_many).is_err());
    }

    #[test]
    fn instance_limits_apply_to_both_actions() {
        let allowed: Vec<String> = vec!["i-a".into(), "i-b".into()];
        let allowed = Some(allowed.as_slice());
        let params = |q: &str| Params::parse(q, None).unwrap();
        let vnc = Action::DescribeInstanceVncUrl;
        let list = Action::DescribeInstances;
        assert!(authorize(allowed, vnc, &params("InstanceId=i-a")).is_ok());
        let err = authorize(allowed, vnc, &params("InstanceId=i-c")).unwrap_err();
        assert_eq!((err.status, err.code.as_ref()), (403, "Forbidden.RAM"));
        assert!(authorize(allowed, list, &params(r#"InstanceIds=["i-a","i-b"]"#)).is_ok());
        assert!(authorize(allowed, list, &params(r#"InstanceIds=["i-a","i-c"]"#)).is_err());
        assert!(authorize(allowed, list, &params("RegionId=cn-hangzhou")).is_err());
        assert!(authorize(allowed, list, &params("InstanceIds=oops")).is_ok());
        assert!(authorize(None, vnc, &params("InstanceId=i-z")).is_ok());
    }
}
