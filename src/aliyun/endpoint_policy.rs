//! `--allowed-endpoints`: where a signed request may go. A session author chooses
//! `spec.endpoint`; the AccessKeyId, a replayable signature and any STS token travel with every
//! request, so only endpoints the operator's owner allowed are ever contacted. Matching is on the
//! parsed URL (scheme, host, port), never on strings: the URL parser has already applied IDNA,
//! lower-cased the host and normalised IP literals, so what is matched is where the request goes.

use std::collections::HashSet;
use std::fmt;

use reqwest::Url;

use super::endpoint::{Endpoint, override_hosts};
use super::flag_list;
use super::regions::Regions;

/// What messages call the default allow-list (its few hundred hosts are not listed).
pub const DEFAULT_ALLOWED_ENDPOINTS_DESCRIPTION: &str = "the default: ECS's own hosts for known \
     regions, https://ecs.<region>.aliyuncs.com and https://ecs-vpc.<region>.aliyuncs.com";

/// An example pattern for messages.
const EXAMPLE: &str = "https://ecs-vpc.cn-hangzhou.aliyuncs.com";

/// One `scheme://host[:port]` pattern; `host` may start with `*.` to match any subdomain.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    scheme: String,
    host: HostPattern,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// Exactly this host (a DNS name or an IP literal, as the URL parser prints it).
    Exact(String),
    /// Any name that ends in `.<suffix>` (not the suffix itself, never an IP literal).
    Subdomains(String),
}

/// `(scheme, host, port)` of an exact pattern, looked up rather than scanned: the default holds
/// two hosts per region.
type Origin = (String, String, u16);

/// A parsed `--allowed-endpoints` list, or the default built from the known regions.
#[derive(Clone, PartialEq, Eq)]
pub struct AllowedEndpoints {
    exact: HashSet<Origin>,
    subdomains: Vec<Pattern>,
    source: String,
}

impl AllowedEndpoints {
    /// Parses a comma-separated list; every pattern must be `http(s)://host[:port]`, nothing more.
    pub fn parse(list: &str) -> Result<Self, String> {
        let patterns = flag_list::items(list)
            .map(Pattern::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if patterns.is_empty() {
            return Err(format!(
                "--allowed-endpoints is empty; give at least one pattern like {EXAMPLE}"
            ));
        }
        Ok(Self::from_patterns(patterns, list.trim().to_owned()))
    }

    /// The default: `https://ecs.<region>.aliyuncs.com` and `https://ecs-vpc.<region>.aliyuncs.com`
    /// for every known region, and the hosts of the SDK's per-region overrides. No wildcard:
    /// other names under `aliyuncs.com` belong to tenants (OSS buckets, Function Compute).
    pub fn ecs_defaults(regions: &Regions) -> Self {
        let regional = regions.iter().flat_map(|region| {
            [
                format!("https://ecs.{region}.aliyuncs.com"),
                format!("https://ecs-vpc.{region}.aliyuncs.com"),
            ]
        });
        let patterns = regional
            .chain(override_hosts().map(|host| format!("https://{host}")))
            .map(|p| Pattern::parse(&p).expect("region ids and the SDK's hosts form hosts"))
            .collect();
        Self::from_patterns(patterns, DEFAULT_ALLOWED_ENDPOINTS_DESCRIPTION.to_owned())
    }

    fn from_patterns(patterns: Vec<Pattern>, source: String) -> Self {
        let mut exact = HashSet::new();
        let mut subdomains = Vec::new();
        for p in patterns {
            match p.host {
                HostPattern::Exact(host) => {
                    exact.insert((p.scheme, host, p.port));
                }
                HostPattern::Subdomains(_) => subdomains.push(p),
            }
        }
        Self {
            exact,
            subdomains,
            source,
        }
    }

    /// Whether a request to `endpoint` is allowed.
    pub fn allows(&self, endpoint: &Endpoint) -> bool {
        let url = endpoint.request_url();
        // Endpoint::parse refuses user info; checked again so this rule stands on its own.
        if !url.username().is_empty() || url.password().is_some() {
            return false;
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        // A trailing dot names the same DNS host, but certificates and this list do not expect
        // it: refused rather than normalised.
        if host.ends_with('.') {
            return false;
        }
        let origin = (url.scheme().to_owned(), host.to_owned(), port);
        self.exact.contains(&origin) || self.subdomains.iter().any(|p| p.matches(url))
    }

    /// The list as configured (or a short description of the default), for messages.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl Default for AllowedEndpoints {
    /// The default for the SDK's regions alone (no `--extra-regions`).
    fn default() -> Self {
        Self::ecs_defaults(&Regions::default())
    }
}

impl fmt::Debug for AllowedEndpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AllowedEndpoints({})", self.source)
    }
}

impl Pattern {
    fn parse(raw: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "--allowed-endpoints: {raw:?} {why}; expected scheme://host[:port], e.g. {EXAMPLE}"
            )
        };
        let (scheme, rest) = raw.split_once("://").ok_or_else(|| bad("has no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("must use http or https"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@', '\\', '%']) || rest.contains(char::is_control) {
            return Err(bad("must be only a scheme, a host and an optional port"));
        }
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        if rest.contains('*') {
            return Err(bad("may use * only as a leading *. label"));
        }
        // The URL parser normalises the host exactly as it will normalise endpoints.
        let url = Url::parse(&format!("{scheme}://{rest}/"))
            .map_err(|e| bad(&format!("is not a valid host ({e})")))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("has no host"))?;
        if host.ends_with('.') {
            return Err(bad("must not end in a dot"));
        }
        let is_ip = !is_domain(&url);
        if wildcard && (is_ip || !host.contains('.')) {
            return Err(bad(
                "may use *. only before a domain with at least two labels",
            ));
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| bad("has no port"))?;
        Ok(Self {
            host: if wildcard {
                HostPattern::Subdomains(host.to_owned())
            } else {
                HostPattern::Exact(host.to_owned())
            },
            scheme,
            port,
        })
    }

    /// Whether a subdomain pattern matches (exact hosts are looked up in the set).
    fn matches(&self, url: &Url) -> bool {
        if url.scheme() != self.scheme || url.port_or_known_default() != Some(self.port) {
            return false;
        }
        let (Some(host), HostPattern::Subdomains(suffix)) = (url.host_str(), &self.host) else {
            return false;
        };
        is_domain(url)
            && host.len() > suffix.len() + 1
            && host.ends_with(suffix.as_str())
            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
    }
}

/// Whether the URL's host is a DNS name (the parser prints IPv4 in dotted form, IPv6 in brackets).
fn is_domain(url: &Url) -> bool {
    url.host_str()
        .is_some_and(|h| !h.starts_with('[') && h.parse::<std::net::Ipv4Addr>().is_err())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &str, endpoint: &str) -> bool {
        let policy = AllowedEndpoints::parse(list).unwrap();
        match Endpoint::parse(endpoint) {
            Ok(e) => policy.allows(&e),
            Err(_) => false,
        }
    }

    fn allowed_by_default(regions: &Regions, endpoint: &str) -> bool {
        let policy = AllowedEndpoints::ecs_defaults(regions);
        Endpoint::parse(endpoint).is_ok_and(|e| policy.allows(&e))
    }

    #[test]
    fn the_default_allows_ecs_own_hosts_only() {
        let sdk = Regions::default();
        for ok in [
            "https://ecs.cn-hangzhou.aliyuncs.com",
            "https://ecs-vpc.cn-hangzhou.aliyuncs.com",
            "https://ecs-cn-hangzhou.aliyuncs.com",
            "https://ecs.aliyuncs.com",
            "https://ecs.eu-central-1.aliyuncs.com:443/",
            "https://ECS-VPC.AP-SOUTHEAST-1.ALIYUNCS.COM",
            "https://ecs.cn-qingdao-nebula.aliyuncs.com",
        ] {
            assert!(allowed_by_default(&sdk, ok), "{ok}");
        }
        for bad in [
            // Tenants' hosts under Alibaba's domain.
            "https://bucket.oss-cn-hangzhou.aliyuncs.com",
            "https://ecs.oss-accelerate.aliyuncs.com",
            "https://fc.cn-hangzhou.aliyuncs.com",
            "https://1234.cn-hangzhou.fc.aliyuncs.com",
            // Not TLS, not 443, not a known region, not ECS.
            "http://ecs.cn-hangzhou.aliyuncs.com",
            "https://ecs.cn-hangzhou.aliyuncs.com:8443",
            "https://ecs.cn-nanjing.aliyuncs.com",
            "https://sts.aliyuncs.com",
            "https://x.ecs.cn-hangzhou.aliyuncs.com",
            "https://ecs.cn-hangzhou.aliyuncs.com.",
            "https://ecs.cn-hangzhou.aliyuncs.com.evil.example",
            "https://evil.example",
        ] {
            assert!(!allowed_by_default(&sdk, bad), "{bad}");
        }
        let extra = Regions::parse("cn-nanjing").unwrap();
        assert!(allowed_by_default(
            &extra,
            "https://ecs.cn-nanjing.aliyuncs.com"
        ));
        assert!(allowed_by_default(
            &extra,
            "https://ecs-vpc.cn-nanjing.aliyuncs.com"
        ));
        assert!(allowed_by_default(
            &extra,
            "https://ecs.cn-hangzhou.aliyuncs.com"
        ));
        assert_eq!(
            AllowedEndpoints::default(),
            AllowedEndpoints::ecs_defaults(&sdk)
        );
    }

    #[test]
    fn the_default_is_described_in_a_few_words() {
        let d = AllowedEndpoints::default();
        assert_eq!(d.as_str(), DEFAULT_ALLOWED_ENDPOINTS_DESCRIPTION);
        assert!(d.as_str().len() < 200);
        assert!(format!("{d:?}").len() < 250);
        // Two hosts per region and the override table's distinct hosts, all exact.
        assert!(d.subdomains.is_empty());
        assert!(d.exact.len() > 2 * crate::aliyun::regions::SDK_REGIONS.len());
    }

    #[test]
    fn a_wildcard_allows_subdomains_over_tls_only() {
        let d = "https://*.aliyuncs.com";
        for ok in [
            "https://ecs.cn-hangzhou.aliyuncs.com",
            "https://ecs-cn-hangzhou.aliyuncs.com",
            "https://ecs-vpc.cn-hangzhou.aliyuncs.com/",
            "https://ECS.CN-HANGZHOU.ALIYUNCS.COM",
            "https://ecs.aliyuncs.com:443",
        ] {
            assert!(allowed(d, ok), "{ok}");
        }
        for bad in [
            "http://ecs.cn-hangzhou.aliyuncs.com",
            "https://aliyuncs.com",
            "https://ecs.aliyuncs.com:8443",
            "https://ecs.aliyuncs.com.evil.example",
            "https://evilaliyuncs.com",
            "https://ecs.aliyuncs.com@evil.example",
            "https://x@evil.example",
            "https://ecs.aliyuncs.com.",
            "https://ecs.cn-hangzhou.aliyuncs.com./",
            "https://127.0.0.1",
            "https://2130706433",
            "https://[::1]",
            "https://evil.example/ecs.aliyuncs.com",
            "https://evil.example#.aliyuncs.com",
            "https://evil.example?.aliyuncs.com",
            // Cyrillic "а" in aliyuncs: IDNA turns it into an xn-- label that does not match.
            "https://ecs.\u{0430}liyuncs.com",
            "https://ecs.aliyuncs.com\u{2024}evil.example",
        ] {
            assert!(!allowed(d, bad), "{bad}");
        }
    }

    #[test]
    fn idna_equivalents_go_where_they_say_and_match_as_such() {
        // A full-width dot is the same domain after IDNA mapping; the request goes there.
        assert!(allowed(
            "https://*.aliyuncs.com",
            "https://ecs\u{ff0e}aliyuncs\u{ff0e}com"
        ));
        assert!(allowed_by_default(
            &Regions::default(),
            "https://ecs\u{ff0e}cn-hangzhou\u{ff0e}aliyuncs\u{ff0e}com"
        ));
    }

    #[test]
    fn ip_literals_match_only_exactly_and_in_their_normal_form() {
        let list = "http://127.0.0.1:8080";
        assert!(allowed(list, "http://127.0.0.1:8080"));
        assert!(allowed(list, "http://2130706433:8080"), "same address");
        assert!(!allowed(list, "http://127.0.0.1:8081"));
        assert!(!allowed(list, "https://127.0.0.1:8080"));
        assert!(!allowed(list, "http://127.0.0.2:8080"));
        assert!(AllowedEndpoints::parse("http://*.0.0.1").is_err());
    }

    #[test]
    fn ports_default_by_scheme_and_must_match() {
        assert!(allowed("http://sim.local", "http://sim.local:80"));
        assert!(!allowed("http://sim.local", "http://sim.local:8080"));
        assert!(allowed("https://a.b:9443,http://c.d:81", "http://c.d:81/"));
    }

    #[test]
    fn patterns_are_refused_when_they_are_more_or_less_than_scheme_host_port() {
        for bad in [
            "",
            " , ",
            "ecs.aliyuncs.com",
            "ftp://x.y",
            "https://x.y/path",
            "https://u@x.y",
            "https://*",
            "https://*.com",
            "https://a.*.com",
            "https://x.y.",
            "https://x.y?q",
            "https://x.y\\",
            "https://x%2ey",
            "https://x.y\u{7f}",
        ] {
            assert!(AllowedEndpoints::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_keeps_the_configured_list() {
        let p = AllowedEndpoints::parse(" https://*.aliyuncs.com , http://127.0.0.1:9 ").unwrap();
        assert_eq!(p.as_str(), "https://*.aliyuncs.com , http://127.0.0.1:9");
        assert!(p.allows(&Endpoint::parse("http://127.0.0.1:9").unwrap()));
    }
}
