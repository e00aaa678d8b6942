//! The spec rules of DESIGN.md, checked in code as well as in the CRD schema: a cluster may run an
//! older schema, and the one-shot CLI has no schema at all.

/// Pattern `^[a-z]{2,}(-[a-z0-9]+)+$`, e.g. `cn-hangzhou`, `ap-southeast-1`.
pub const REGION_ID_PATTERN: &str = "^[a-z]{2,}(-[a-z0-9]+)+$";
/// Pattern `^i-[a-z0-9]+$`, at most 64 characters.
pub const INSTANCE_ID_PATTERN: &str = "^i-[a-z0-9]+$";
pub const INSTANCE_ID_MAX_LEN: usize = 64;
pub const REASON_MAX_LEN: usize = 1024;

/// Checks a region id; the error says what a good one looks like.
pub fn region_id(value: &str) -> Result<(), String> {
    let mut parts = value.split('-');
    let head = parts.next().unwrap_or_default();
    let head_ok = head.len() >= 2 && head.bytes().all(|b| b.is_ascii_lowercase());
    let rest: Vec<&str> = parts.collect();
    let rest_ok = !rest.is_empty()
        && rest.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if head_ok && rest_ok {
        Ok(())
    } else {
        Err(format!(
            "regionId {value:?} is not a region id like cn-hangzhou (pattern {REGION_ID_PATTERN})"
        ))
    }
}

/// Checks an instance id; the error says what a good one looks like.
pub fn instance_id(value: &str) -> Result<(), String> {
    let body = value.strip_prefix("i-").unwrap_or_default();
    let ok = !body.is_empty()
        && value.len() <= INSTANCE_ID_MAX_LEN
        && body
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "instanceId {value:?} is not an instance id like i-bp1hzoinajzkh91h1234 \
             (pattern {INSTANCE_ID_PATTERN}, at most {INSTANCE_ID_MAX_LEN} characters)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_ids() {
        for good in [
            "cn-hangzhou",
            "ap-southeast-1",
            "cn-shanghai-finance-1",
            "us-east-1",
        ] {
            assert_eq!(region_id(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "cn",
            "c-hangzhou",
            "CN-hangzhou",
            "cn-",
            "cn--x",
            "cn_hangzhou",
            "cn-hang zhou",
        ] {
            assert!(region_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instance_ids() {
        assert_eq!(instance_id("i-bp1hzoinajzkh91h1234"), Ok(()));
        for bad in ["", "i-", "bp1", "i-BP1", "i-bp1_x", "x-bp1"] {
            assert!(instance_id(bad).is_err(), "{bad}");
        }
        assert!(instance_id(&format!("i-{}", "a".repeat(62))).is_ok());
        assert!(instance_id(&format!("i-{}", "a".repeat(63))).is_err());
    }
}

/// Parses a grant duration: one or more `<digits><unit>` with units `s`, `m`, `h`, `d`
/// (`30m`, `8h`, `1h30m`). Zero and overflowing durations are refused.
pub fn ttl(value: &str) -> Result<std::time::Duration, String> {
    let bad =
        || format!("ttl {value:?} is not a duration like 30m, 8h or 1h30m (units s, m, h, d)");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in value.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        digits.clear();
    }
    // Ten years is far beyond any break-glass grant and keeps timestamp arithmetic in range.
    if !digits.is_empty() || total == 0 || total > 10 * 366 * 86_400 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(total))
}

/// Checks an endpoint override's form; the ECS client does the full parse.
pub fn endpoint(value: &str) -> Result<(), String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => Ok(()),
        _ => Err(format!(
            "endpoint {value:?} is not an http:// or https:// URL without query or fragment"
        )),
    }
}

/// All spec rules at once; the first broken one is reported with the field it concerns.
pub fn spec(spec: &super::VncSessionSpec) -> Result<(), String> {
    region_id(&spec.region_id).map_err(|m| format!("spec.{m}"))?;
    instance_id(&spec.instance_id).map_err(|m| format!("spec.{m}"))?;
    if let Some(reason) = &spec.reason
        && reason.chars().count() > REASON_MAX_LEN
    {
        return Err(format!(
            "spec.reason is longer than {REASON_MAX_LEN} characters"
        ));
    }
    if let Some(value) = &spec.ttl {
        ttl(value).map_err(|m| format!("spec.{m}"))?;
    }
    if let Some(value) = &spec.endpoint {
        endpoint(value).map_err(|m| format!("spec.{m}"))?;
    }
    if let Some(r) = &spec.credentials_ref
        && (r.name.is_empty() || r.name.contains('/'))
    {
        return Err(format!(
            "spec.credentialsRef.name {:?} must name a Secret in the session's own namespace",
            r.name
        ));
    }
    Ok(())
}

#[cfg(test)]
mod spec_tests {
    use super::*;

    #[test]
    fn ttls() {
        assert_eq!(ttl("30m"), Ok(std::time::Duration::from_secs(1800)));
        assert_eq!(ttl("1h30m"), Ok(std::time::Duration::from_secs(5400)));
        assert_eq!(ttl("2d"), Ok(std::time::Duration::from_secs(172_800)));
        for bad in [
            "",
            "0s",
            "30",
            "m",
            "1.5h",
            "-1h",
            "1w",
            "99999999999999999999h",
            "4000d",
        ] {
            assert!(ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints() {
        assert!(endpoint("https://ecs-vpc.cn-hangzhou.aliyuncs.com").is_ok());
        assert!(endpoint("http://127.0.0.1:8080").is_ok());
        for bad in ["ftp://x", "https://", "ecs.aliyuncs.com", "https://x?y=1"] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
    }
}
