//! The browser console link built around a VncUrl.

/// The console page ECS documents for `DescribeInstanceVncUrl`.
pub const DEFAULT_CONSOLE_BASE: &str =
    "https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html";

/// `<base>?vncUrl=<vnc_url>&instanceId=<id>&isWindows=<bool>`.
///
/// `vnc_url` goes in exactly as ECS returned it: it is already percent-encoded, and encoding it
/// again breaks the console page. A base that already has a query is extended with `&`.
pub fn console_url(base: &str, vnc_url: &str, instance_id: &str, is_windows: bool) -> String {
    let separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{base}{separator}vncUrl={vnc_url}&instanceId={instance_id}&isWindows={is_windows}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_VNC_URL: &str = "wss%3A%2F%2Fhz01-vncproxy.aliyun.com%2Fwebsockify%2F%3Fs%3DDvh%252FIA%252BYc73gWO48cBx2gBxUDVzaAnSKr74pq30mzqUYgeUMcB%252FbkNixDxdEA996";

    #[test]
    fn matches_the_documented_shape_without_re_encoding() {
        let url = console_url(
            DEFAULT_CONSOLE_BASE,
            SEED_VNC_URL,
            "i-bp1hzoinajzkh91h1234",
            false,
        );
        assert_eq!(
            url,
            format!(
                "https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html?vncUrl={SEED_VNC_URL}\
                 &instanceId=i-bp1hzoinajzkh91h1234&isWindows=false"
            )
        );
        assert!(url.contains("%252F"), "no double encoding, no decoding");
    }

    #[test]
    fn windows_flag() {
        assert!(console_url(DEFAULT_CONSOLE_BASE, "x", "i-a", true).ends_with("&isWindows=true"));
    }

    #[test]
    fn base_with_query_is_joined_with_ampersand() {
        assert_eq!(
            console_url("https://c.example/vnc?lang=en", "v", "i-a", false),
            "https://c.example/vnc?lang=en&vncUrl=v&instanceId=i-a&isWindows=false"
        );
        assert_eq!(
            console_url("https://c.example/vnc?", "v", "i-a", false),
            "https://c.example/vnc?vncUrl=v&instanceId=i-a&isWindows=false"
        );
        assert_eq!(
            console_url("https://c.example/vnc?a=1&", "v", "i-a", true),
            "https://c.example/vnc?a=1&vncUrl=v&instanceId=i-a&isWindows=true"
        );
    }
}
