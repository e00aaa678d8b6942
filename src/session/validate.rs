//! The spec rules of DESIGN.md, checked in code as well as in the CRD schema: a cluster may run an
//! older schema, and the one-shot CLI has no schema at all.

/// Pattern `^[a-z]{2,}(-[a-z0-9]+)+$`, e.g. `cn-hangzhou`, `ap-southeast-1`.
pub const REGION_ID_PATTERN: &str = "^[a-z]{2,}(-[a-z0-9]+)+$";
/// Pattern `^i-[a-z0-9]+$`, at most 64 characters.
pub const INSTANCE_ID_PATTERN: &str = "^i-[a-z0-9]+$";
pub const INSTANCE_ID_MAX_LEN: usize = 64;
/// The CRD's bounds on `regionId` and `ttl`, checked again here.
pub const REGION_ID_MAX_LEN: usize = 64;
pub const TTL_MAX_LEN: usize = 32;
pub const REASON_MAX_LEN: usize = 1024;
/// A host name is at most 253 bytes; with a scheme and a port an endpoint is well under this.
pub const ENDPOINT_MAX_BYTES: usize = 512;

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

/// Checks an endpoint override's form (the CRD pattern); the allow-list decides where it may go.
pub fn endpoint(value: &str) -> Result<(), String> {
    // Checked first: the messages below quote the value.
    if value.len() > ENDPOINT_MAX_BYTES {
        return Err(format!(
            "endpoint is longer than {ENDPOINT_MAX_BYTES} bytes; expected scheme://host[:port]"
        ));
    }
    if let Some(what) = endpoint_forbidden_character(value) {
        return Err(format!(
            "endpoint {value:?} must not contain {what}; expected scheme://host[:port]"
        ));
    }
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(format!(
            "endpoint {value:?} is not an http:// or https:// URL without query or fragment"
        ));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        // The value is not repeated: what precedes `@` may be a password.
        return Err(
            "endpoint must not carry user info (user:password@); credentials come from a Secret, \
             a ServiceAccount or the operator"
                .to_owned(),
        );
    }
    // An ECS endpoint is a host: a path would let an allowed host's tenant-controlled paths (a
    // Function Compute trigger) receive signed requests.
    let path = &rest[authority.len()..];
    if !path.is_empty() && path != "/" {
        return Err(format!(
            "endpoint {value:?} must be scheme://host[:port] without a path"
        ));
    }
    if authority.is_empty() || rest.contains(['?', '#']) || rest.contains(char::is_whitespace) {
        return Err(format!(
            "endpoint {value:?} is not an http:// or https:// URL without query or fragment"
        ));
    }
    Ok(())
}

/// What in an endpoint a URL parser would turn into something else, described for a message:
/// `\` (WHATWG parsers read it as `/`), `%` (decoded, it can hide a path or a host), control
/// characters (C0, DEL, C1) and the invisible format characters (bidi controls, zero-width ones)
/// that hide what a value says.
pub fn endpoint_forbidden_character(value: &str) -> Option<String> {
    value.chars().find_map(|c| match c {
        '\\' => Some("a backslash (\\), which URL parsers read as /".to_owned()),
        '%' => Some("a percent sign (%): percent-encoding could hide a path or a host".to_owned()),
        c if c.is_control() => Some(format!("a control character (U+{:04X})", u32::from(c))),
        c if is_invisible_format(c) => Some(format!(
            "an invisible format character (U+{:04X})",
            u32::from(c)
        )),
        _ => None,
    })
}

/// Unicode's format characters (category Cf) that appear in text: soft hyphen, bidi marks and
/// overrides, zero-width characters, the byte order mark.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

/// Pattern of a DNS-1123 subdomain, what Kubernetes requires of Secret and ServiceAccount names.
pub const DNS1123_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
pub const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;

/// Checks an object name is a DNS-1123 subdomain: lowercase alphanumeric labels with inner `-`,
/// joined by `.`, at most 253 characters. Refuses `/`, `..` and everything else a path needs.
pub fn dns1123_subdomain(value: &str) -> bool {
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-'
    };
    value.len() <= DNS1123_SUBDOMAIN_MAX_LEN && value.split('.').all(label_ok)
}

fn object_name(field: &str, kind: &str, value: &str) -> Result<(), String> {
    if dns1123_subdomain(value) {
        Ok(())
    } else {
        Err(format!(
            "{field} {value:?} is not a {kind} name in the session's own namespace \
             (a DNS-1123 subdomain like ecs-credentials: lowercase letters, digits, '-' and '.', \
             at most {DNS1123_SUBDOMAIN_MAX_LEN} characters)"
        ))
    }
}

/// All spec rules at once; the first broken one is reported with the field it concerns.
pub fn spec(spec: &super::VncSessionSpec) -> Result<(), String> {
    // First, so that no message below quotes an unbounded value (an old CRD may lack the
    // schema's own bounds).
    for (field, value, max) in [
        ("regionId", Some(spec.region_id.as_str()), REGION_ID_MAX_LEN),
        (
            "instanceId",
            Some(spec.instance_id.as_str()),
            INSTANCE_ID_MAX_LEN,
        ),
        ("ttl", spec.ttl.as_deref(), TTL_MAX_LEN),
    ] {
        if value.is_some_and(|v| v.len() > max) {
            return Err(format!("spec.{field} is longer than {max} bytes"));
        }
    }
    region_id(&spec.region_id).map_err(|m| format!("spec.{m}"))?;
    instance_id(&spec.instance_id).map_err(|m| format!("spec.{m}"))?;
    if let Some(reason) = &spec.reason {
        if reason.chars().count() > REASON_MAX_LEN {
            return Err(format!(
                "spec.reason is longer than {REASON_MAX_LEN} characters"
            ));
        }
        // It reaches terminals through Events and kubectl vnc status: no escape sequences.
        if let Some(at) = reason.find(char::is_control) {
            return Err(format!(
                "spec.reason has a control character at byte {at}; write it on one line of plain text"
            ));
        }
    }
    if let Some(value) = &spec.ttl {
        ttl(value).map_err(|m| format!("spec.{m}"))?;
    }
    if let Some(value) = &spec.endpoint {
        endpoint(value).map_err(|m| format!("spec.{m}"))?;
    }
    if let Some(r) = &spec.credentials_ref {
        object_name("spec.credentialsRef.name", "Secret", &r.name)?;
    }
    if let Some(r) = &spec.service_account_ref {
        object_name("spec.serviceAccountRef.name", "ServiceAccount", &r.name)?;
    }
    if spec.credentials_ref.is_some() && spec.service_account_ref.is_some() {
        return Err(
            "spec.serviceAccountRef: set at most one of credentialsRef and serviceAccountRef"
                .to_owned(),
        );
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
        let long = format!("https://{}.aliyuncs.com", "a".repeat(ENDPOINT_MAX_BYTES));
        let err = endpoint(&long).unwrap_err();
        assert!(err.contains("longer than") && err.len() < 128, "{err}");
        assert!(endpoint("http://127.0.0.1:8080").is_ok());
        assert!(endpoint("https://ecs-vpc.cn-hangzhou.aliyuncs.com/").is_ok());
        assert!(
            endpoint("https://x.cn-hangzhou.fc.aliyuncs.com/2016-08-15/proxy/svc/fn/").is_err(),
            "a path could reach a tenant's function under *.aliyuncs.com"
        );
        for bad in [
            "ftp://x",
            "https://",
            "ecs.aliyuncs.com",
            "https://x?y=1",
            "https://x#f",
            "https://ecs.aliyuncs.com @evil",
        ] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
        let err = endpoint("https://user:hunter2@ecs.aliyuncs.com").unwrap_err();
        assert!(
            err.contains("user info") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn endpoints_refuse_what_a_url_parser_would_reinterpret() {
        for (bad, needle) in [
            // Read as http://host/2016-08-15/proxy/svc/fn/ by WHATWG parsers.
            (r"http://host\2016-08-15\proxy\svc\fn\", "backslash"),
            (r"https://ecs.aliyuncs.com\", "backslash"),
            ("https://ecs.aliyuncs.com%2F2016-08-15", "percent sign"),
            ("https://ecs%2ealiyuncs.com", "percent sign"),
            ("https://ecs.aliyuncs.com\u{7f}", "U+007F"),
            ("https://ecs.aliyuncs.com\u{85}", "U+0085"),
            ("https://ecs.aliyuncs.com\u{0}", "U+0000"),
            ("https://ecs.aliyuncs.com\r\n", "U+000D"),
            ("https://ecs\u{200d}.aliyuncs.com", "U+200D"),
            ("https://ecs\u{2066}.aliyuncs.com", "U+2066"),
        ] {
            let err = endpoint(bad).unwrap_err();
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
        for bad in [
            "https://ecs.aliyuncs.com/x",
            "https://ecs.aliyuncs.com//",
            "https://ecs.aliyuncs.com\u{3000}",
        ] {
            assert!(endpoint(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn object_names_are_dns1123_subdomains_in_the_own_namespace() {
        for good in ["ecs-credentials", "a", "a.b-c.d0", &"a".repeat(253)] {
            assert!(dns1123_subdomain(good), "{good}");
        }
        for bad in [
            "",
            "../kube-system/x",
            "kube-system/x",
            "..",
            "a..b",
            "-a",
            "a-",
            "A",
            "a_b",
            "a b",
            ".a",
            &"a".repeat(254),
        ] {
            assert!(!dns1123_subdomain(bad), "{bad}");
        }
    }

    /// A valid spec with nothing optional set.
    fn plain() -> crate::session::VncSessionSpec {
        crate::session::VncSessionSpec {
            region_id: "cn-hangzhou".into(),
            instance_id: "i-bp1".into(),
            credentials_ref: None,
            service_account_ref: None,
            is_windows: None,
            reason: None,
            ttl: None,
            endpoint: None,
        }
    }

    #[test]
    fn the_credential_sources_exclude_each_other() {
        let mut s = crate::session::VncSessionSpec {
            credentials_ref: Some(crate::session::crd::CredentialsRef { name: "k".into() }),
            service_account_ref: Some(crate::session::crd::ServiceAccountRef { name: "sa".into() }),
            ..plain()
        };
        let err = spec(&s).unwrap_err();
        assert!(err.starts_with("spec.serviceAccountRef"), "{err}");
        s.credentials_ref = None;
        assert_eq!(spec(&s), Ok(()));
        s.service_account_ref = Some(crate::session::crd::ServiceAccountRef {
            name: "../x".into(),
        });
        assert!(
            spec(&s)
                .unwrap_err()
                .starts_with("spec.serviceAccountRef.name")
        );
    }

    #[test]
    fn an_unbounded_field_from_an_old_schema_is_refused_without_being_quoted() {
        let mut s = crate::session::VncSessionSpec {
            ttl: Some(format!("{}m", "9".repeat(1_000_000))),
            ..plain()
        };
        let err = spec(&s).unwrap_err();
        assert_eq!(err, "spec.ttl is longer than 32 bytes");
        s.ttl = None;
        s.region_id = format!("cn-{}", "a".repeat(100));
        assert_eq!(
            spec(&s).unwrap_err(),
            "spec.regionId is longer than 64 bytes"
        );
    }

    #[test]
    fn a_reason_is_one_line_of_plain_text() {
        let mut s = crate::session::VncSessionSpec {
            reason: Some("磁盘已满 disk full, INC-4711".into()),
            ..plain()
        };
        assert_eq!(spec(&s), Ok(()));
        for bad in [
            "\u{1b}]0;owned\u{7}",
            "a\rb",
            "tab\there",
            "\u{9b}31m",
            "\u{7f}",
        ] {
            s.reason = Some(bad.into());
            let err = spec(&s).unwrap_err();
            assert!(err.contains("control character"), "{bad:?}: {err}");
        }
    }
}
