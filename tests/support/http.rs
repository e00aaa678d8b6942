//! The tests' HTTP client: straight to loopback (no proxy), every request bounded.

use std::time::Duration;

use serde_json::Value;

/// A client with a 20 s bound on each request.
pub fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(20))
}

pub fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .unwrap()
}

/// The status and the JSON body of an answer (`Null` if the body is not JSON).
pub async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// The JSON body of an answer; panics if it is not JSON.
pub async fn json(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.expect("body")).expect("a JSON body")
}
