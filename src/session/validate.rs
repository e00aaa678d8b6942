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
