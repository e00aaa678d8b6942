//! Where ECS calls go: the official SDK's regional rule with its per-region overrides, or an
//! explicit endpoint that always wins.

use std::fmt;

use reqwest::Url;

use crate::session::validate;

/// Regions whose ECS endpoint is not `ecs.<region>.aliyuncs.com`, as listed in the endpoint data of
/// the official ECS SDK (aliyun-python-sdk-ecs). Sorted by region for binary search.
const REGION_OVERRIDES: &[(&str, &str)] = &[
    ("ap-northeast-2-pop", "ecs.ap-northeast-1.aliyuncs.com"),
    ("ap-southeast-1", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-beijing", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-beijing-finance-1", "ecs.aliyuncs.com"),
    ("cn-beijing-finance-pop", "ecs.aliyuncs.com"),
    ("cn-beijing-gov-1", "ecs.aliyuncs.com"),
    ("cn-beijing-nu16-b01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-edge-1", "ecs.cn-qingdao-nebula.aliyuncs.com"),
    ("cn-fujian", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-haidian-cm12-c01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-hangzhou", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-hangzhou-bj-b01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-hangzhou-finance", "ecs.aliyuncs.com"),
    (
        "cn-hangzhou-internal-prod-1",
        "ecs-cn-hangzhou.aliyuncs.com",
    ),
    (
        "cn-hangzhou-internal-test-1",
        "ecs-cn-hangzhou.aliyuncs.com",
    ),
    (
        "cn-hangzhou-internal-test-2",
        "ecs-cn-hangzhou.aliyuncs.com",
    ),
    (
        "cn-hangzhou-internal-test-3",
        "ecs-cn-hangzhou.aliyuncs.com",
    ),
    ("cn-hangzhou-test-306", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-hongkong", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-hongkong-finance-pop", "ecs.aliyuncs.com"),
    ("cn-north-2-gov-1", "ecs.aliyuncs.com"),
    ("cn-qingdao", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shanghai", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shanghai-et15-b01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shanghai-et2-b01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shanghai-finance-1", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shanghai-inner", "ecs.aliyuncs.com"),
    (
        "cn-shanghai-internal-test-1",
        "ecs-cn-hangzhou.aliyuncs.com",
    ),
    ("cn-shenzhen", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shenzhen-finance-1", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shenzhen-inner", "ecs.aliyuncs.com"),
    ("cn-shenzhen-st4-d01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shenzhen-su18-b01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-wuhan", "ecs.aliyuncs.com"),
    ("cn-yushanfang", "ecs.aliyuncs.com"),
    ("cn-zhangbei-na61-b01", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-zhangjiakou-na62-a01", "ecs.cn-zhangjiakou.aliyuncs.com"),
    (
        "cn-zhengzhou-nebula-1",
        "ecs.cn-qingdao-nebula.aliyuncs.com",
    ),
    ("eu-west-1-oxs", "ecs.cn-shenzhen-cloudstone.aliyuncs.com"),
    ("rus-west-1-pop", "ecs.ap-northeast-1.aliyuncs.com"),
    ("us-east-1", "ecs-cn-hangzhou.aliyuncs.com"),
    ("us-west-1", "ecs-cn-hangzhou.aliyuncs.com"),
];

/// A resolved ECS endpoint: an `http(s)://host[:port][/path]` URL without query, fragment or
/// user info, so it is safe to show in messages.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    url: Url,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("{0}")]
    InvalidRegion(String),
    #[error(
        "endpoint {endpoint:?} is not a URL ({reason}); expected e.g. https://ecs-vpc.cn-hangzhou.aliyuncs.com"
    )]
    NotAUrl { endpoint: String, reason: String },
    #[error("endpoint {endpoint:?} must use http:// or https://, not {scheme}://")]
    UnsupportedScheme { endpoint: String, scheme: String },
    #[error("endpoint {endpoint:?} must not carry a query string or fragment")]
    HasQueryOrFragment { endpoint: String },
    /// STS receives ServiceAccount tokens: never in clear text beyond this machine.
    #[error("STS endpoint {endpoint:?} must use https:// (http:// only to a loopback address)")]
    PlainHttpSts { endpoint: String },
    /// The endpoint itself is not repeated: it holds a password.
    #[error(
        "endpoint must not carry user info (user:password@); credentials come from env or a Secret"
    )]
    HasUserInfo,
}

impl Endpoint {
    /// An explicit endpoint (`override_url`) always wins; otherwise the official SDK's table, then
    /// `https://ecs.<region>.aliyuncs.com`.
    pub fn resolve(region_id: &str, override_url: Option<&str>) -> Result<Self, EndpointError> {
        if let Some(raw) = override_url {
            return Self::parse(raw);
        }
        validate::region_id(region_id).map_err(EndpointError::InvalidRegion)?;
        let host = regional_host(region_id);
        let url = Url::parse(&format!("https://{host}/")).map_err(|e| EndpointError::NotAUrl {
            endpoint: host.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self { url })
    }

    /// Parses an explicit endpoint; the messages say what is wrong with it.
    pub fn parse(raw: &str) -> Result<Self, EndpointError> {
        let endpoint = raw.trim().to_owned();
        let url = Url::parse(&endpoint).map_err(|e| EndpointError::NotAUrl {
            endpoint: endpoint.clone(),
            reason: e.to_string(),
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointError::HasUserInfo);
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EndpointError::UnsupportedScheme {
                scheme: url.scheme().to_owned(),
                endpoint,
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(EndpointError::NotAUrl {
                endpoint,
                reason: "no host".into(),
            });
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(EndpointError::HasQueryOrFragment { endpoint });
        }
        Ok(Self { url })
    }

    /// The STS endpoint: an explicit one (`--sts-endpoint`) or the official global one.
    pub fn resolve_sts(override_url: Option<&str>) -> Result<Self, EndpointError> {
        let endpoint = Self::parse(override_url.unwrap_or(super::sts::DEFAULT_STS_ENDPOINT))?;
        let host = endpoint.url.host_str().unwrap_or_default();
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if endpoint.url.scheme() == "http" && !loopback {
            return Err(EndpointError::PlainHttpSts {
                endpoint: endpoint.as_str().to_owned(),
            });
        }
        Ok(endpoint)
    }

    /// The endpoint as a URL string, e.g. `https://ecs-cn-hangzhou.aliyuncs.com` (no trailing `/`
    /// when the path is empty).
    pub fn as_str(&self) -> &str {
        let s = self.url.as_str();
        if self.url.path() == "/" {
            s.strip_suffix('/').unwrap_or(s)
        } else {
            s
        }
    }

    /// The URL a request is sent to, before the query string is appended.
    pub(crate) fn request_url(&self) -> &Url {
        &self.url
    }
}

/// The official SDK's rule for a region without a table entry.
fn regional_host(region_id: &str) -> String {
    match REGION_OVERRIDES.binary_search_by(|(region, _)| (*region).cmp(region_id)) {
        Ok(i) => REGION_OVERRIDES[i].1.to_owned(),
        Err(_) => format!("ecs.{region_id}.aliyuncs.com"),
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique_so_binary_search_works() {
        assert!(REGION_OVERRIDES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn overrides_from_the_official_sdk() {
        for (region, expected) in [
            ("cn-hangzhou", "https://ecs-cn-hangzhou.aliyuncs.com"),
            ("cn-shanghai", "https://ecs-cn-hangzhou.aliyuncs.com"),
            ("ap-southeast-1", "https://ecs-cn-hangzhou.aliyuncs.com"),
            ("cn-wuhan", "https://ecs.aliyuncs.com"),
            (
                "cn-zhangjiakou-na62-a01",
                "https://ecs.cn-zhangjiakou.aliyuncs.com",
            ),
            ("rus-west-1-pop", "https://ecs.ap-northeast-1.aliyuncs.com"),
        ] {
            let e = Endpoint::resolve(region, None).unwrap();
            assert_eq!(e.as_str(), expected, "{region}");
        }
    }

    #[test]
    fn other_regions_follow_the_regional_rule() {
        for region in [
            "eu-central-1",
            "cn-zhangjiakou",
            "ap-northeast-1",
            "me-east-1",
        ] {
            let e = Endpoint::resolve(region, None).unwrap();
            assert_eq!(e.to_string(), format!("https://ecs.{region}.aliyuncs.com"));
        }
    }

    #[test]
    fn a_bad_region_does_not_become_a_hostname() {
        for region in ["", "cn", "evil.com/x", "cn-hangzhou.attacker"] {
            assert!(matches!(
                Endpoint::resolve(region, None),
                Err(EndpointError::InvalidRegion(_))
            ));
        }
    }

    #[test]
    fn explicit_endpoint_wins() {
        let e = Endpoint::resolve("cn-hangzhou", Some("http://127.0.0.1:8080")).unwrap();
        assert_eq!(e.as_str(), "http://127.0.0.1:8080");
        let e = Endpoint::resolve(
            "whatever",
            Some("https://ecs-vpc.cn-hangzhou.aliyuncs.com/"),
        )
        .unwrap();
        assert_eq!(e.as_str(), "https://ecs-vpc.cn-hangzhou.aliyuncs.com");
        let e = Endpoint::resolve("cn-hangzhou", Some("https://proxy.example/ecs")).unwrap();
        assert_eq!(e.as_str(), "https://proxy.example/ecs");
    }

    #[test]
    fn explicit_endpoint_must_be_a_plain_http_url() {
        let cases = [
            ("ecs.aliyuncs.com", "not a URL"),
            ("ftp://ecs.aliyuncs.com", "http:// or https://"),
            ("https://ecs.aliyuncs.com/?a=b", "query"),
            ("https://ecs.aliyuncs.com/#x", "fragment"),
            ("https://user:pw@ecs.aliyuncs.com", "user info"),
            ("http://", "not a URL"),
        ];
        for (raw, needle) in cases {
            let err = Endpoint::parse(raw).unwrap_err();
            assert!(err.to_string().contains(needle), "{raw}: {err}");
        }
    }

    #[test]
    fn sts_endpoint_defaults_to_the_official_one() {
        assert_eq!(
            Endpoint::resolve_sts(None).unwrap().as_str(),
            "https://sts.aliyuncs.com"
        );
        assert_eq!(
            Endpoint::resolve_sts(Some("http://127.0.0.1:9"))
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9"
        );
        assert!(Endpoint::resolve_sts(Some("sts.aliyuncs.com")).is_err());
        // Tokens travel to STS: clear text only on this machine.
        for plain in [
            "http://sts-vpc.cn-hangzhou.aliyuncs.com",
            "http://10.0.0.1:80",
            "http://127.0.0.1.example",
        ] {
            assert!(
                matches!(
                    Endpoint::resolve_sts(Some(plain)),
                    Err(EndpointError::PlainHttpSts { .. })
                ),
                "{plain}"
            );
        }
        for local in [
            "http://127.0.0.2:8787",
            "http://[::1]:9",
            "http://localhost:1",
        ] {
            assert!(Endpoint::resolve_sts(Some(local)).is_ok(), "{local}");
        }
    }

    #[test]
    fn password_is_not_echoed_back() {
        let err = Endpoint::parse("https://user:pw-secret@ecs.aliyuncs.com").unwrap_err();
        assert_eq!(err, EndpointError::HasUserInfo);
        assert!(!err.to_string().contains("pw-secret"));
    }
}
