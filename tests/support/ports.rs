//! Loopback ports for tests of what happens when nobody listens.

/// A loopback port nobody listens on: bound, then let go.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `http://127.0.0.1:PORT` on a [`closed_port`].
pub fn closed_endpoint() -> String {
    format!("http://127.0.0.1:{}", closed_port())
}

/// What a client (ECS's or STS's) reports for a call to a [`closed_endpoint`]: a retryable
/// `ConnectionFailed` that names the endpoint and nothing else (no query string).
#[track_caller]
pub fn assert_connection_refused(code: &str, retryable: bool, shown: &str, endpoint: &str) {
    assert_eq!(code, "ConnectionFailed");
    assert!(retryable);
    let expected = format!("could not reach {endpoint}: connection refused");
    assert_eq!(shown, expected);
}
