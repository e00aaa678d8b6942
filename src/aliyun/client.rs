//! Signed RPC calls to ECS over HTTP, with bounded retries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::credentials::Credentials;
use super::endpoint::Endpoint;
use super::error::EcsError;
use super::http::{DEFAULT_USER_AGENT, Reply, build_client, post_form};
use super::response::{IssuedVncUrl, decode_os_type, decode_reply, decode_vnc_url};
use super::retry::{RetryPolicy, run_with_retries};
use super::signature::{canonical_query, percent_encode, sign, string_to_sign};
use crate::session::expiry::rfc3339;

/// ECS API version of every call.
const API_VERSION: &str = "2014-05-26";

#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// Per attempt: sending, waiting and reading the body.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    pub user_agent: String,
    /// Told of every attempt's outcome, for metrics.
    pub observer: Observer,
}

/// Sees each attempt: the action, ECS's Code (or `Success`, or an operator code such as
/// `Timeout`) and the attempt number (2 and up are retries).
#[derive(Clone, Default)]
pub struct Observer(Option<Arc<ObserveFn>>);

type ObserveFn = dyn Fn(&'static str, &str, u32) + Send + Sync;

impl Observer {
    pub fn new(f: impl Fn(&'static str, &str, u32) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    fn observe(&self, action: &'static str, code: &str, attempt: u32) {
        if let Some(f) = &self.0 {
            f(action, code, attempt);
        }
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Observer(set)"
        } else {
            "Observer(none)"
        })
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            observer: Observer::default(),
        }
    }
}

/// The ECS client. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct EcsClient {
    http: reqwest::Client,
    options: Arc<ClientOptions>,
}

impl fmt::Debug for EcsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcsClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl EcsClient {
    pub fn new(options: ClientOptions) -> Result<Self, EcsError> {
        let http = build_client(options.connect_timeout, &options.user_agent)?;
        Ok(Self {
            http,
            options: Arc::new(options),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// `DescribeInstanceVncUrl`: a new console address, valid for a short time after `sent_at`.
    pub async fn describe_instance_vnc_url(
        &self,
        endpoint: &Endpoint,
        creds: &Credentials,
        region_id: &str,
        instance_id: &str,
    ) -> Result<IssuedVncUrl, EcsError> {
        let params = [("RegionId", region_id), ("InstanceId", instance_id)];
        self.call(
            endpoint,
            creds,
            "DescribeInstanceVncUrl",
            &params,
            decode_vnc_url,
        )
        .await
    }

    /// `DescribeInstances` for one instance; returns its `OSType` (e.g. `linux`, `windows`).
    /// An answer without the instance is `InvalidInstanceId.NotFound`.
    pub async fn describe_os_type(
        &self,
        endpoint: &Endpoint,
        creds: &Credentials,
        region_id: &str,
        instance_id: &str,
    ) -> Result<String, EcsError> {
        let ids = serde_json::to_string(&[instance_id]).unwrap_or_default();
        let params = [("RegionId", region_id), ("InstanceIds", ids.as_str())];
        self.call(
            endpoint,
            creds,
            "DescribeInstances",
            &params,
            |body: &[u8], status, _sent_at| decode_os_type(body, status, region_id, instance_id),
        )
        .await
    }

    /// Runs attempts until one succeeds, an error is terminal, or attempts or deadline run out.
    async fn call<T>(
        &self,
        endpoint: &Endpoint,
        creds: &Credentials,
        action: &'static str,
        params: &[(&str, &str)],
        decode: impl Fn(&[u8], u16, Timestamp) -> Result<T, EcsError>,
    ) -> Result<T, EcsError> {
        let secrets: Vec<&str> = [creds.access_key_id(), creds.access_key_secret()]
            .into_iter()
            .chain(creds.security_token())
            .collect();
        let endpoint_text = endpoint.to_string();
        run_with_retries(
            self.options.retry,
            self.options.request_timeout,
            &endpoint_text,
            action,
            || async {
                let reply = self.attempt(endpoint, creds, action, params).await?;
                decode_reply(&reply, &secrets, &decode)
            },
            |code, attempt| self.options.observer.observe(action, code, attempt),
        )
        .await
    }

    /// One signed request with a fresh nonce and timestamp.
    async fn attempt(
        &self,
        endpoint: &Endpoint,
        creds: &Credentials,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<Reply, EcsError> {
        let nonce = uuid::Uuid::new_v4().to_string();
        let timestamp = rfc3339(Timestamp::now());
        let query = signed_query(creds, action, params, &nonce, &timestamp);
        let mut url = endpoint.request_url().clone();
        url.set_query(Some(&query));
        post_form(
            &self.http,
            url,
            Vec::new(),
            endpoint.as_str(),
            self.options.request_timeout,
        )
        .await
    }
}

/// The full query string: common parameters, the action's own, and `Signature` over `POST`.
fn signed_query(
    creds: &Credentials,
    action: &str,
    params: &[(&str, &str)],
    nonce: &str,
    timestamp: &str,
) -> String {
    let mut all: Vec<(&str, &str)> = vec![
        ("Action", action),
        ("Version", API_VERSION),
        ("Format", "JSON"),
        ("AccessKeyId", creds.access_key_id()),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce),
        ("Timestamp", timestamp),
    ];
    if let Some(token) = creds.security_token() {
        all.push(("SecurityToken", token));
    }
    all.extend_from_slice(params);
    let signature = sign(
        creds.access_key_secret(),
        &string_to_sign("POST", all.iter().copied()),
    );
    format!(
        "{}&Signature={}",
        canonical_query(all.iter().copied()),
        percent_encode(&signature)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aliyun::signature;
    use std::collections::BTreeMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn creds() -> Credentials {
        Credentials::new("test-key-id", "test-secret", Some("sts-token".into()))
    }

    fn query_params(query: &str) -> BTreeMap<String, String> {
        query
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap();
                (
                    signature::percent_decode(k).unwrap(),
                    signature::percent_decode(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn signed_query_carries_every_common_parameter_and_verifies() {
        let q = signed_query(
            &creds(),
            "DescribeInstanceVncUrl",
            &[("RegionId", "cn-hangzhou"), ("InstanceId", "i-abc")],
            "nonce-1",
            "2026-01-02T03:04:05Z",
        );
        let p = query_params(&q);
        for (k, v) in [
            ("Action", "DescribeInstanceVncUrl"),
            ("Version", "2014-05-26"),
            ("Format", "JSON"),
            ("AccessKeyId", "test-key-id"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "nonce-1"),
            ("Timestamp", "2026-01-02T03:04:05Z"),
            ("SecurityToken", "sts-token"),
            ("RegionId", "cn-hangzhou"),
            ("InstanceId", "i-abc"),
        ] {
            assert_eq!(p.get(k).map(String::as_str), Some(v), "{k}");
        }
        let expected = signature::sign(
            "test-secret",
            &signature::string_to_sign("POST", p.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        );
        assert_eq!(p["Signature"], expected);
        assert!(!q.contains("test-secret"));
    }

    #[test]
    fn no_token_no_security_token_parameter() {
        let c = Credentials::new("id", "secret", None);
        let q = signed_query(&c, "DescribeInstances", &[], "n", "t");
        assert!(!q.contains("SecurityToken"));
    }

    /// A one-shot server: answers each connection with the next canned response and records the
    /// request heads.
    async fn canned(responses: Vec<Vec<u8>>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut heads = Vec::new();
            for response in responses {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut tmp).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                }
                heads.push(String::from_utf8_lossy(&buf).into_owned());
                let _ = sock.write_all(&response).await;
                let _ = sock.shutdown().await;
            }
            heads
        });
        (format!("http://{addr}"), task)
    }

    fn http(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn fast_client() -> EcsClient {
        EcsClient::new(ClientOptions {
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_millis(1000),
            retry: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
                deadline: Duration::from_secs(5),
            },
            ..ClientOptions::default()
        })
        .unwrap()
    }

    /// The error `client` ends with when asking `endpoint` for the console of `i-a`.
    async fn vnc_url_error(client: &EcsClient, endpoint: &str) -> EcsError {
        client
            .describe_instance_vnc_url(
                &Endpoint::parse(endpoint).unwrap(),
                &creds(),
                "cn-hangzhou",
                "i-a",
            )
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn posts_signed_query_and_retries_with_a_new_nonce() {
        let (url, server) = canned(vec![
            http(
                "500 Internal Server Error",
                r#"{"Code":"InternalError","Message":"m","RequestId":"r1"}"#,
            ),
            http("200 OK", r#"{"VncUrl":"wss%3A%2F%2Fvnc","RequestId":"r2"}"#),
        ])
        .await;
        let endpoint = Endpoint::parse(&url).unwrap();
        let before = Timestamp::now();
        let issued = fast_client()
            .describe_instance_vnc_url(&endpoint, &creds(), "cn-hangzhou", "i-abc")
            .await
            .unwrap();
        assert_eq!(issued.vnc_url, "wss%3A%2F%2Fvnc");
        assert_eq!(issued.request_id, "r2");
        assert!(
            issued.sent_at
                >= before
                    .checked_sub(jiff::SignedDuration::from_secs(1))
                    .unwrap()
        );
        let heads = server.await.unwrap();
        assert_eq!(heads.len(), 2);
        let nonces: Vec<String> = heads
            .iter()
            .map(|h| {
                let line = h.lines().next().unwrap();
                assert!(line.starts_with("POST /?"), "{line}");
                let query = line.split(' ').nth(1).unwrap().trim_start_matches("/?");
                query_params(query)["SignatureNonce"].clone()
            })
            .collect();
        assert_ne!(nonces[0], nonces[1]);
    }

    #[tokio::test]
    async fn streamed_body_over_the_cap_is_refused() {
        // Chunked, so the size is only known while reading.
        let mut response =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..20 {
            response.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            response.extend_from_slice(&chunk);
            response.extend_from_slice(b"\r\n");
        }
        response.extend_from_slice(b"0\r\n\r\n");
        let client = EcsClient::new(ClientOptions {
            retry: RetryPolicy::none(Duration::from_secs(5)),
            ..ClientOptions::default()
        })
        .unwrap();
        let (url, _server) = canned(vec![response]).await;
        let err = vnc_url_error(&client, &url).await;
        assert_eq!(err.code(), "ResponseTooLarge");
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn refused_connection_names_the_endpoint_without_query() {
        // Bind and drop to find a port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = vnc_url_error(&fast_client(), &format!("http://127.0.0.1:{port}")).await;
        assert_eq!(err.code(), "ConnectionFailed");
        assert_eq!(
            err.to_string(),
            format!("could not reach http://127.0.0.1:{port}: connection refused")
        );
        assert!(!format!("{err:?}").contains("Signature"));
    }

    #[tokio::test]
    async fn terminal_errors_are_not_retried() {
        let (url, server) = canned(vec![http(
            "404 Not Found",
            r#"{"Code":"InvalidInstanceId.NotFound","Message":"The specified InstanceId does not exist.","RequestId":"r"}"#,
        )])
        .await;
        let err = vnc_url_error(&fast_client(), &url).await;
        assert_eq!(err.code(), "InvalidInstanceId.NotFound");
        assert_eq!(err.http_status(), Some(404));
        assert_eq!(server.await.unwrap().len(), 1);
    }
}
