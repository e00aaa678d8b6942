//! The HTTP plumbing every Alibaba Cloud call shares (ECS, STS, instance metadata): a client that
//! never follows redirects, bounded body reads, and transport failures turned into errors whose
//! text carries no URL query (reqwest quotes the full request URL, signature and all).

use std::time::Duration;

use jiff::Timestamp;

use super::error::EcsError;
use super::error::decode::sanitize;

/// The most of a response body the client reads; ECS and STS answers are a few kilobytes at most.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The `User-Agent` of the ECS and STS clients unless their options say otherwise.
pub(crate) const DEFAULT_USER_AGENT: &str = concat!("ecs-vnc-operator/", env!("CARGO_PKG_VERSION"));

/// One answered request: status, body (bounded) and when it was sent.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub sent_at: Timestamp,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A client that never follows a redirect: it would resend a signed query, an OIDC token or a
/// metadata token somewhere else.
pub(crate) fn build_client(
    connect_timeout: Duration,
    user_agent: &str,
) -> Result<reqwest::Client, EcsError> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .user_agent(user_agent)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| EcsError::ClientSetup {
            reason: error_chain(&e.without_url()),
        })
}

/// Sends `request` and reads at most `limit` bytes of the answer. `endpoint` is what messages
/// name (never the request URL); `timeout` is what a timeout message reports.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    endpoint: &str,
    timeout: Duration,
    limit: usize,
) -> Result<Reply, EcsError> {
    let sent_at = Timestamp::now();
    let mut response = request
        .send()
        .await
        .map_err(|e| transport_error(endpoint, e, timeout))?;
    let status = response.status().as_u16();
    let too_large = || EcsError::ResponseTooLarge {
        http_status: status,
        limit,
    };
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(endpoint, e, timeout))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply {
        status,
        body,
        sent_at,
    })
}

/// POSTs a form-encoded `body` to `url` (an RPC call to ECS or STS), asking for JSON, and reads
/// at most [`MAX_RESPONSE_BYTES`] of the answer. `endpoint` and `timeout` are as for [`send`].
pub(crate) async fn post_form(
    http: &reqwest::Client,
    url: reqwest::Url,
    body: impl Into<reqwest::Body>,
    endpoint: &str,
    timeout: Duration,
) -> Result<Reply, EcsError> {
    let request = http
        .post(url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body);
    send(request, endpoint, timeout, MAX_RESPONSE_BYTES).await
}

/// Maps a transport failure to an error whose text has no URL.
pub(crate) fn transport_error(endpoint: &str, err: reqwest::Error, timeout: Duration) -> EcsError {
    let err = err.without_url();
    let endpoint = endpoint.to_owned();
    if err.is_builder() {
        return EcsError::RequestFailed {
            endpoint,
            reason: error_chain(&err),
        };
    }
    if err.is_timeout() && !err.is_connect() {
        return EcsError::Timeout {
            endpoint,
            after_ms: millis(timeout),
        };
    }
    let request_sent = !err.is_connect();
    let reason = match io_kind(&err) {
        Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_owned(),
        Some(std::io::ErrorKind::ConnectionReset) => "connection reset".to_owned(),
        Some(std::io::ErrorKind::TimedOut) => "connect timed out".to_owned(),
        _ if err.is_connect() && err.is_timeout() => "connect timed out".to_owned(),
        _ if err.is_connect() => deepest(&err),
        _ => format!(
            "connection lost before a complete answer ({})",
            deepest(&err)
        ),
    };
    EcsError::ConnectionFailed {
        endpoint,
        reason,
        request_sent,
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        current = e.source();
    }
    None
}

/// The innermost cause, which names what actually happened ("dns error", "connection closed").
fn deepest(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    scrub(&current.to_string())
}

pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        parts.push(e.to_string());
        current = e.source();
    }
    scrub(&parts.join(": "))
}

/// Belt and braces: no query string of any URL survives into a message.
pub(crate) fn scrub(text: &str) -> String {
    let text = text
        .split(' ')
        .map(|word| match (word.contains("://"), word.find('?')) {
            (true, Some(q)) => &word[..q],
            _ => word,
        })
        .collect::<Vec<_>>()
        .join(" ");
    sanitize(&text, &[], 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_query_strings() {
        assert_eq!(
            scrub("error for url (http://h/?Signature=abc&AccessKeyId=x) here"),
            "error for url (http://h/ here"
        );
    }
}
