//! Which console URLs `open` hands to the browser (or prints for pasting): only an `https://` URL
//! on the console page the operator builds them on. `status.consoleUrl` is just a field that
//! anyone allowed to write the status can set; a `file:` or `javascript:` URL, or a page on
//! another host, must not reach a browser from a command the user trusts.

use std::fmt;

use reqwest::Url;

use super::terminal::clean;
pub use crate::aliyun::DEFAULT_CONSOLE_BASE;

/// The console page that every URL must be on (`--console-base-url`).
#[derive(Clone, Debug, PartialEq)]
pub struct ConsoleBase {
    url: Url,
}

/// Why a console URL is refused; worded to follow "the console URL ...".
#[derive(Clone, Debug, PartialEq)]
pub struct OffBase {
    pub why: String,
    pub base: String,
}

impl fmt::Display for OffBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.why)
    }
}

impl ConsoleBase {
    /// Parses `--console-base-url`: an `https://` URL with a host, no user info, no fragment.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
        if url.scheme() != "https" {
            return Err(format!(
                "{text:?} is not an https:// URL (the plugin opens only https:// consoles)"
            ));
        }
        if url.host_str().is_none_or(str::is_empty)
            || !url.username().is_empty()
            || url.password().is_some()
            || url.fragment().is_some()
        {
            return Err(format!(
                "{text:?} must be https://HOST[:PORT]/PATH[?QUERY], without user info or a fragment"
            ));
        }
        Ok(Self { url })
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// Accepts `console_url` only if its scheme, host, port and path are the base's, its query
    /// starts with the base's, and it holds nothing a terminal would act on. Compared parsed, not
    /// as text: `https://g.alicdn.com.evil.example/` and `https://g.alicdn.com@evil/` start with
    /// the right characters and point elsewhere.
    pub fn check(&self, console_url: &str) -> Result<(), OffBase> {
        let refuse = |why: String| OffBase {
            why,
            base: self.url.to_string(),
        };
        if clean(console_url) != console_url || console_url.chars().any(char::is_whitespace) {
            return Err(refuse(
                "contains control characters or white space".to_owned(),
            ));
        }
        let url = Url::parse(console_url).map_err(|_| refuse("is not a URL".to_owned()))?;
        let base = &self.url;
        if url.scheme() != "https" {
            return Err(refuse(format!("is a {}: URL, not https:", url.scheme())));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("has user info before its host".to_owned()));
        }
        if url.host() != base.host() {
            let host = url.host_str().unwrap_or_default();
            return Err(refuse(format!(
                "is on host {:?}, not {:?}",
                clean(host),
                base.host_str().unwrap_or_default()
            )));
        }
        if url.port_or_known_default() != base.port_or_known_default() {
            return Err(refuse("is on another port".to_owned()));
        }
        if url.path() != base.path() {
            return Err(refuse(format!(
                "is at path {:?}, not {:?}",
                clean(url.path()),
                base.path()
            )));
        }
        if !query_extends(base.query(), url.query()) {
            return Err(refuse(
                "does not start its query with the base's query".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The operator appends its parameters to the base's own query (`?lang=en` becomes
/// `?lang=en&vncUrl=...`).
fn query_extends(base: Option<&str>, query: Option<&str>) -> bool {
    match base.filter(|b| !b.is_empty()) {
        None => true,
        Some(b) => query.is_some_and(|q| {
            q == b || (q.starts_with(b) && (b.ends_with('&') || q[b.len()..].starts_with('&')))
        }),
    }
}

impl Default for ConsoleBase {
    fn default() -> Self {
        Self::parse(DEFAULT_CONSOLE_BASE).expect("the default console base parses")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html?vncUrl=wss%3A%2F%2Fhz01-vncproxy.aliyun.com%2Fwebsockify%2F%3Fs%3DDvh%252FIA&instanceId=i-bp1hzoinajzkh91h1234&isWindows=false";

    fn default_refuses(url: &str) -> String {
        match ConsoleBase::default().check(url) {
            Err(off) => off.why,
            Ok(()) => panic!("{url:?} was accepted"),
        }
    }

    #[test]
    fn the_operators_own_urls_are_accepted() {
        let base = ConsoleBase::default();
        assert_eq!(base.as_str(), DEFAULT_CONSOLE_BASE);
        assert_eq!(base.check(OURS), Ok(()));
        assert_eq!(
            base.check("https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html"),
            Ok(())
        );
        // Host names are not case-sensitive; the default port is the same port.
        assert_eq!(
            base.check(
                "https://G.ALICDN.COM:443/aliyun/ecs-console-vnc2/0.0.8/index.html?vncUrl=x"
            ),
            Ok(())
        );
    }

    #[test]
    fn other_schemes_are_refused() {
        assert_eq!(
            default_refuses("file:///etc/passwd"),
            "is a file: URL, not https:"
        );
        assert_eq!(
            default_refuses("javascript:alert(document.cookie)"),
            "is a javascript: URL, not https:"
        );
        assert_eq!(
            default_refuses(
                "http://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html?vncUrl=x"
            ),
            "is a http: URL, not https:"
        );
        assert!(default_refuses("data:text/html,<script>x</script>").starts_with("is a data:"));
    }

    #[test]
    fn look_alike_hosts_are_refused() {
        assert_eq!(
            default_refuses(
                "https://g.alicdn.com.evil.example/aliyun/ecs-console-vnc2/0.0.8/index.html?vncUrl=x"
            ),
            "is on host \"g.alicdn.com.evil.example\", not \"g.alicdn.com\""
        );
        assert_eq!(
            default_refuses("https://g.alicdn.com@evil/aliyun/ecs-console-vnc2/0.0.8/index.html"),
            "has user info before its host"
        );
        assert_eq!(
            default_refuses("https://evil.example/aliyun/ecs-console-vnc2/0.0.8/index.html"),
            "is on host \"evil.example\", not \"g.alicdn.com\""
        );
        assert!(
            default_refuses("https://alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html")
                .starts_with("is on host")
        );
        assert_eq!(
            default_refuses(
                "https://g.alicdn.com:8443/aliyun/ecs-console-vnc2/0.0.8/index.html?vncUrl=x"
            ),
            "is on another port"
        );
    }

    #[test]
    fn other_pages_on_the_host_are_refused() {
        assert!(
            default_refuses("https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html.evil")
                .starts_with("is at path")
        );
        assert!(
            default_refuses("https://g.alicdn.com/evil/index.html?vncUrl=x")
                .starts_with("is at path")
        );
        // Dot segments are resolved before comparing, encoded or not.
        for climb in [
            "https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/../../../evil/index.html",
            "https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/%2e%2e/%2e%2e/x/index.html",
        ] {
            assert!(default_refuses(climb).starts_with("is at path"), "{climb}");
        }
    }

    #[test]
    fn control_characters_and_junk_are_refused() {
        for url in [
            "https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html?vncUrl=\u{1b}[2J",
            "https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html\n?vncUrl=x",
            " https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html",
            "https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html?\u{202E}lmth",
        ] {
            assert_eq!(
                default_refuses(url),
                "contains control characters or white space",
                "{url:?}"
            );
        }
        assert_eq!(default_refuses(""), "is not a URL");
        assert_eq!(default_refuses("g.alicdn.com/aliyun"), "is not a URL");
    }

    #[test]
    fn a_base_with_a_query_needs_that_query_first() {
        let base = ConsoleBase::parse("https://console.example/vnc?lang=en").unwrap();
        assert_eq!(
            base.check(
                "https://console.example/vnc?lang=en&vncUrl=v&instanceId=i-a&isWindows=false"
            ),
            Ok(())
        );
        assert_eq!(base.check("https://console.example/vnc?lang=en"), Ok(()));
        for off in [
            "https://console.example/vnc?vncUrl=v",
            "https://console.example/vnc?lang=english&vncUrl=v",
            "https://console.example/vnc",
        ] {
            assert!(base.check(off).is_err(), "{off}");
        }
        let open = ConsoleBase::parse("https://console.example/vnc?").unwrap();
        assert_eq!(open.check("https://console.example/vnc?vncUrl=v"), Ok(()));
    }

    #[test]
    fn a_base_must_be_plain_https() {
        assert!(ConsoleBase::parse("https://console.example:8443/vnc/").is_ok());
        for bad in [
            "http://console.example/vnc",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://user:pw@console.example/",
            "https://console.example/#frag",
            "console.example/vnc",
            "",
        ] {
            assert!(ConsoleBase::parse(bad).is_err(), "{bad}");
        }
    }
}
