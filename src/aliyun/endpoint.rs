//! Where ECS calls go: the official SDK's regional rule with its per-region overrides, or an
//! explicit endpoint that always wins.

use std::fmt;

use reqwest::Url;

use super::regions::Regions;
use crate::session::validate;

/// The official global STS endpoint, where RRSA exchanges go unless `--sts-endpoint` says otherwise.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.aliyuncs.com";

/// Regions whose ECS endpoint is not `ecs.<region>.aliyuncs.com`, as listed in the endpoint data of
/// the official ECS SDK (aliyun-python-sdk-ecs; `cn-huhehaote-nebula-1` and `cn-zhangbei` from
/// 4.24.83). Sorted by region for binary search.
pub const REGION_OVERRIDES: &[(&str, &str)] = &[
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
    (
        "cn-huhehaote-nebula-1",
        "ecs.cn-qingdao-nebula.aliyuncs.com",
    ),
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
    ("cn-zhangbei", "ecs.aliyuncs.com"),
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

/// A resolved ECS endpoint: an `http(s)://host[:port]` URL without path, query, fragment or user
/// info, so it is safe to show in messages.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    url: Url,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("{0}")]
    InvalidRegion(String),
    /// A region id outside the SDK's table could make any `*.aliyuncs.com` name a host.
    #[error(
        "regionId {region:?} is not a known ECS region (neither in the official SDK's region table \
         nor in the operator's --extra-regions); check it, or add it to --extra-regions if it is \
         newer than the table"
    )]
    UnknownRegion { region: String },
    /// URL parsers read `\` as `/` and decode `%`: either could smuggle in a path or a host.
    #[error("endpoint {endpoint:?} must not contain {what}; expected scheme://host[:port]")]
    ForbiddenCharacter { endpoint: String, what: String },
    /// A path would let an allowed host's tenant-controlled paths receive signed requests.
    #[error("endpoint {endpoint:?} must be scheme://host[:port] without a path")]
    HasPath { endpoint: String },
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
    /// The region must be known (`regions`); then an explicit endpoint (`override_url`) wins,
    /// else the official SDK's table, then `https://ecs.<region>.aliyuncs.com`.
    pub fn resolve(
        region_id: &str,
        override_url: Option<&str>,
        regions: &Regions,
    ) -> Result<Self, EndpointError> {
        validate::region_id(region_id).map_err(EndpointError::InvalidRegion)?;
        if !regions.contains(region_id) {
            return Err(EndpointError::UnknownRegion {
                region: bounded(region_id),
            });
        }
        if let Some(raw) = override_url {
            return Self::parse(raw);
        }
        let host = regional_host(region_id);
        let url = Url::parse(&format!("https://{host}/")).map_err(|e| EndpointError::NotAUrl {
            endpoint: host.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self { url })
    }

    /// Parses an explicit endpoint; the messages say what is wrong with it.
    pub fn parse(raw: &str) -> Result<Self, EndpointError> {
        check_characters(raw)?;
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
        if url.path() != "/" {
            return Err(EndpointError::HasPath { endpoint });
        }
        Ok(Self { url })
    }

    /// The STS endpoint: an explicit one (`--sts-endpoint`) or the official global one.
    pub fn resolve_sts(override_url: Option<&str>) -> Result<Self, EndpointError> {
        let endpoint = Self::parse(override_url.unwrap_or(DEFAULT_STS_ENDPOINT))?;
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

    /// The endpoint as a URL string, e.g. `https://ecs-cn-hangzhou.aliyuncs.com` (no trailing `/`).
    pub fn as_str(&self) -> &str {
        let s = self.url.as_str();
        s.strip_suffix('/').unwrap_or(s)
    }

    /// The URL a request is sent to, before the query string is appended.
    pub(crate) fn request_url(&self) -> &Url {
        &self.url
    }
}

/// Refuses, anywhere in the raw text and before any trimming, what a URL parser would turn into
/// something else (see [`validate::endpoint_forbidden_character`]).
fn check_characters(raw: &str) -> Result<(), EndpointError> {
    match validate::endpoint_forbidden_character(raw) {
        None => Ok(()),
        Some(what) => Err(EndpointError::ForbiddenCharacter {
            endpoint: bounded(raw),
            what,
        }),
    }
}

/// At most 256 characters of a tenant's text, for a message.
fn bounded(text: &str) -> String {
    const MAX: usize = 256;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Hosts of the override table (each ECS's own), for the default allow-list.
pub(crate) fn override_hosts() -> impl Iterator<Item = &'static str> {
    REGION_OVERRIDES.iter().map(|(_, host)| *host)
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

    fn resolve(region: &str, endpoint: Option<&str>) -> Result<Endpoint, EndpointError> {
        Endpoint::resolve(region, endpoint, &Regions::default())
    }

    #[test]
    fn table_is_sorted_and_unique_so_binary_search_works() {
        assert!(REGION_OVERRIDES.windows(2).all(|w| w[0].0 < w[1].0));
        // Every overridden region is a known one, so every override host is reachable.
        let known = Regions::default();
        for (region, _) in REGION_OVERRIDES {
            assert!(known.contains(region), "{region}");
        }
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
            let e = resolve(region, None).unwrap();
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
            let e = resolve(region, None).unwrap();
            assert_eq!(e.to_string(), format!("https://ecs.{region}.aliyuncs.com"));
        }
    }

    #[test]
    fn a_bad_region_does_not_become_a_hostname() {
        for region in ["", "cn", "evil.com/x", "cn-hangzhou.attacker"] {
            assert!(matches!(
                resolve(region, None),
                Err(EndpointError::InvalidRegion(_))
            ));
        }
    }

    #[test]
    fn an_unknown_region_is_refused_even_with_an_explicit_endpoint() {
        // ecs.oss-accelerate.aliyuncs.com is the host of an OSS bucket named "ecs".
        for endpoint in [None, Some("https://ecs-vpc.cn-hangzhou.aliyuncs.com")] {
            let err = resolve("oss-accelerate", endpoint).unwrap_err();
            assert_eq!(
                err,
                EndpointError::UnknownRegion {
                    region: "oss-accelerate".into()
                }
            );
            let message = err.to_string();
            assert!(
                message.contains("\"oss-accelerate\"") && message.contains("--extra-regions"),
                "{message}"
            );
        }
        let extra = Regions::parse("cn-nanjing").unwrap();
        let e = Endpoint::resolve("cn-nanjing", None, &extra).unwrap();
        assert_eq!(e.as_str(), "https://ecs.cn-nanjing.aliyuncs.com");
        assert!(matches!(
            resolve("cn-nanjing", None),
            Err(EndpointError::UnknownRegion { .. })
        ));
        assert_eq!(
            resolve("cn-hangzhou", None).unwrap().as_str(),
            "https://ecs-cn-hangzhou.aliyuncs.com"
        );
    }

    #[test]
    fn explicit_endpoint_wins() {
        let e = resolve("cn-hangzhou", Some("http://127.0.0.1:8080")).unwrap();
        assert_eq!(e.as_str(), "http://127.0.0.1:8080");
        let e = resolve(
            "eu-central-1",
            Some("https://ecs-vpc.cn-hangzhou.aliyuncs.com/"),
        )
        .unwrap();
        assert_eq!(e.as_str(), "https://ecs-vpc.cn-hangzhou.aliyuncs.com");
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
    fn an_endpoint_has_no_path() {
        for raw in [
            "https://proxy.example/ecs",
            "https://ecs.cn-hangzhou.aliyuncs.com/x",
            "https://ecs.cn-hangzhou.aliyuncs.com//",
            "https://x.cn-hangzhou.fc.aliyuncs.com/2016-08-15/proxy/svc/fn/",
        ] {
            assert!(
                matches!(Endpoint::parse(raw), Err(EndpointError::HasPath { .. })),
                "{raw}"
            );
            let err = Endpoint::parse(raw).unwrap_err().to_string();
            assert!(err.contains("without a path"), "{err}");
        }
        for ok in [
            "https://a.example",
            "https://a.example/",
            "http://127.0.0.1:9/",
        ] {
            assert_eq!(Endpoint::parse(ok).unwrap().request_url().path(), "/");
        }
    }

    #[test]
    fn backslashes_percent_signs_and_control_characters_are_refused_anywhere() {
        let cases = [
            // WHATWG parsers read \ as /: this would reach a Function Compute trigger.
            (r"http://host\2016-08-15\proxy\svc\fn\", "backslash"),
            (r"https://ecs.aliyuncs.com\", "backslash"),
            (r"https://evil.example\@ecs.aliyuncs.com", "backslash"),
            ("https://ecs.cn-hangzhou.aliyuncs.com%2Fx", "percent sign"),
            (
                "https://x.cn-hangzhou.fc.aliyuncs.com/%2e%2e/",
                "percent sign",
            ),
            ("https://ecs%2ealiyuncs.com", "percent sign"),
            ("https://ecs.aliyuncs.com\u{7f}", "U+007F"),
            ("https://ecs.aliyuncs.com\u{85}", "U+0085"),
            ("https://ecs.ali\tyuncs.com", "U+0009"),
            ("https://ecs.aliyuncs.com\n", "U+000A"),
            ("\rhttps://ecs.aliyuncs.com", "U+000D"),
            ("https://ecs.aliyuncs.com\0", "U+0000"),
            ("https://ecs\u{200b}.aliyuncs.com", "U+200B"),
            ("https://ecs.aliyuncs.com\u{202e}", "U+202E"),
        ];
        for (raw, needle) in cases {
            let err = Endpoint::parse(raw).unwrap_err();
            assert!(
                matches!(err, EndpointError::ForbiddenCharacter { .. }),
                "{raw:?}: {err}"
            );
            assert!(err.to_string().contains(needle), "{raw:?}: {err}");
            assert!(
                resolve("cn-hangzhou", Some(raw)).is_err(),
                "{raw:?} as an override"
            );
        }
    }

    #[test]
    fn a_long_value_is_not_repeated_whole() {
        let raw = format!("https://{}\\x", "a".repeat(10_000));
        let message = Endpoint::parse(&raw).unwrap_err().to_string();
        assert!(message.len() < 500, "{} bytes", message.len());
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
