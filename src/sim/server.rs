//! HTTP: the accept loop, the RPC pipeline (read, parse, verify, account quota, fault, act, count,
//! answer) and the answer bodies. `Action=AssumeRoleWithOIDC` goes to the STS side and `/latest/`
//! paths to the instance metadata, on the same port.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::actions::mentioned_instances;
use super::admin;
use super::errors::EcsError;
use super::faults::FaultKind;
use super::grants::authorize;
use super::http::{Reply, json_response, read_body};
use super::metadata;
use super::params::Params;
use super::state::{AccountCall, Shared};
use super::sts::{self, STS_ACTION};
use super::verify::{Verified, verify};

/// Size of the `oversized` fault's body.
pub const OVERSIZED_BODY: usize = 4 << 20;
/// Stats key for requests whose `Action` could not be read.
pub const NO_ACTION: &str = "-";

/// The service's error: hyper then closes the connection without writing a response.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

/// Serves until the future is dropped; dropping it also aborts every open connection.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        let service = service_fn(move |req| handle(Arc::clone(&shared), req));
                        let connection = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .serve_connection(TokioIo::new(stream), service);
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "connection ended");
                        }
                    });
                }
                Err(error) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Reply, DropConnection> {
    if req.uri().path().starts_with("/_sim/") {
        return Ok(admin::handle(&shared, req).await);
    }
    if req.uri().path().starts_with("/latest/") {
        return Ok(metadata::handle(&shared, &req));
    }
    let request_id = new_request_id();
    let (keys, answer) = rpc_answer(&shared, req, &request_id).await;
    let code = answer.code();
    {
        let stats = &mut shared.lock().stats;
        stats.record(&keys.action, code, &keys.instances);
        if let Some(account) = &keys.account {
            stats.record_account(account);
        }
    }
    tracing::debug!(action = %keys.action, code, "answered");
    reply(answer, &request_id)
}

/// What an answer is counted under in the stats.
struct StatsKeys {
    action: String,
    instances: Vec<String>,
    /// Set once the request passed the checks before the account quota.
    account: Option<AccountCall>,
}

/// What an RPC request gets, before it is written.
enum Answer {
    Success(String),
    Error(EcsError),
    /// An error of the STS side, with STS's `HostId`.
    StsError(EcsError),
    Malformed,
    Oversized,
    Drop,
}

impl Answer {
    fn code(&self) -> &str {
        match self {
            Answer::Success(_) => "Success",
            Answer::Error(e) | Answer::StsError(e) => &e.code,
            Answer::Malformed => "Fault.Malformed",
            Answer::Oversized => "Fault.Oversized",
            Answer::Drop => "Fault.Drop",
        }
    }
}

/// Returns the stats keys with the answer.
async fn rpc_answer(
    shared: &Shared,
    req: Request<Incoming>,
    request_id: &str,
) -> (StatsKeys, Answer) {
    let unread = |error| {
        let keys = StatsKeys {
            action: NO_ACTION.to_owned(),
            instances: Vec::new(),
            account: None,
        };
        (keys, Answer::Error(error))
    };
    let (parts, body) = req.into_parts();
    if parts.uri.path() != "/" {
        return unread(EcsError::path_not_found());
    }
    let method = match parts.method {
        Method::POST => "POST",
        Method::GET => "GET",
        _ => return unread(EcsError::unsupported_method()),
    };
    let body = match read_body(body, &parts.headers).await {
        Ok(body) => body,
        Err(error) => return unread(error),
    };
    let form = if is_form(&parts.headers) {
        match std::str::from_utf8(&body) {
            Ok(text) => Some(text),
            Err(_) => {
                return unread(EcsError::invalid_parameter(
                    "The request body is not UTF-8.",
                ));
            }
        }
    } else {
        None
    };
    let params = match Params::parse(parts.uri.query().unwrap_or_default(), form) {
        Ok(params) => params,
        Err(error) => return unread(error),
    };
    let action_name = params
        .get("Action")
        .filter(|a| !a.is_empty())
        .unwrap_or(NO_ACTION)
        .to_owned();
    if action_name == STS_ACTION {
        let answer = sts_answer(shared, &params, request_id).await;
        let keys = StatsKeys {
            action: action_name,
            instances: Vec::new(),
            account: None,
        };
        return (keys, answer);
    }
    let instances = mentioned_instances(&params);
    let mut account = None;

    let answer = match verify(
        shared,
        method,
        &params,
        jiff::Timestamp::now(),
        Instant::now(),
    ) {
        Err(error) => Answer::Error(error),
        Ok(Verified {
            allowed_instances: Some(allowed),
            action,
        }) if authorize(Some(&allowed), action, &params).is_err() => {
            Answer::Error(EcsError::forbidden_ram())
        }
        Ok(Verified { action, .. }) => {
            let access_key_id = params.get("AccessKeyId").unwrap_or_default();
            let region_id = params.get("RegionId").unwrap_or_default();
            // The account quota comes first: ECS's flow control refuses a request before any
            // work is done for it, so a refused request uses up no fault.
            let (within_quota, fault) = {
                let mut state = shared.lock();
                let within = state
                    .quota
                    .try_take(access_key_id, region_id, Instant::now());
                let fault = within
                    .then(|| state.take_fault(&action_name, &instances))
                    .flatten();
                (within, fault)
            };
            account = Some(AccountCall {
                access_key_id: access_key_id.to_owned(),
                region_id: region_id.to_owned(),
                over_quota: !within_quota,
            });
            let run =
                |shared: &Shared| match action.run(shared, &params, request_id, Instant::now()) {
                    Ok(body) => Answer::Success(body),
                    Err(error) => Answer::Error(error),
                };
            match fault {
                _ if !within_quota => Answer::Error(EcsError::user_throttling()),
                None => run(shared),
                Some(FaultKind::Delay(delay)) => {
                    tokio::time::sleep(delay).await;
                    run(shared)
                }
                Some(FaultKind::Malformed) => Answer::Malformed,
                Some(FaultKind::Oversized) => Answer::Oversized,
                Some(FaultKind::Drop) => Answer::Drop,
                Some(kind) => kind.as_error().map_or_else(|| run(shared), Answer::Error),
            }
        }
    };
    let keys = StatsKeys {
        action: action_name,
        instances,
        account,
    };
    (keys, answer)
}

/// `AssumeRoleWithOIDC`; only faults queued for that action by name apply to it.
async fn sts_answer(shared: &Shared, params: &Params, request_id: &str) -> Answer {
    let fault = shared.lock().take_named_fault(STS_ACTION);
    let run =
        || match sts::assume_role_with_oidc(shared, params, request_id, jiff::Timestamp::now()) {
            Ok(body) => Answer::Success(body),
            Err(error) => Answer::StsError(error),
        };
    match fault {
        None => run(),
        Some(FaultKind::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            run()
        }
        Some(FaultKind::Malformed) => Answer::Malformed,
        Some(FaultKind::Oversized) => Answer::Oversized,
        Some(FaultKind::Drop) => Answer::Drop,
        Some(kind) => kind.as_error().map_or_else(run, Answer::StsError),
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn reply(answer: Answer, request_id: &str) -> Result<Reply, DropConnection> {
    let (status, body) = match answer {
        Answer::Success(body) => (200, Bytes::from(body)),
        Answer::Error(error) => (error.status, Bytes::from(error.to_body(request_id))),
        Answer::StsError(error) => (
            error.status,
            Bytes::from(sts::error_body(&error, request_id)),
        ),
        Answer::Malformed => (200, malformed_body(request_id)),
        Answer::Oversized => (200, oversized_body()),
        Answer::Drop => return Err(DropConnection),
    };
    let mut response = json_response(status, body);
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-acs-request-id", value);
    }
    Ok(response)
}

/// A JSON answer cut short and followed by bytes that are not even UTF-8.
fn malformed_body(request_id: &str) -> Bytes {
    let mut body =
        format!("{{\"RequestId\":\"{request_id}\",\"VncUrl\":\"wss%3A%2F%2F").into_bytes();
    body.extend_from_slice(b"\xff\xfe<html>502 Bad Gateway</html>\x00");
    Bytes::from(body)
}

/// Valid JSON, just far too big for a sane client to buffer: one long padding string.
fn oversized_body() -> Bytes {
    static BODY: OnceLock<Bytes> = OnceLock::new();
    BODY.get_or_init(|| {
        let head = b"{\"RequestId\":\"00000000-0000-0000-0000-000000000000\",\"Padding\":\"";
        let tail = b"\"}";
        let mut body = Vec::with_capacity(OVERSIZED_BODY);
        body.extend_from_slice(head);
        body.resize(OVERSIZED_BODY - tail.len(), b'A');
        body.extend_from_slice(tail);
        Bytes::from(body)
    })
    .clone()
}

/// Uppercase, like ECS's request ids.
fn new_request_id() -> String {
    let mut buffer = uuid::Uuid::encode_buffer();
    uuid::Uuid::new_v4()
        .hyphenated()
        .encode_upper(&mut buffer)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uppercase_uuids() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id, id.to_ascii_uppercase());
        assert_ne!(id, new_request_id());
    }

    #[test]
    fn oversized_body_is_json_of_the_promised_size() {
        let body = oversized_body();
        assert_eq!(body.len(), OVERSIZED_BODY);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(value["Padding"].as_str().unwrap().len() > 4_000_000);
    }

    #[test]
    fn malformed_body_is_neither_json_nor_utf8() {
        let body = malformed_body("X");
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());
        assert!(std::str::from_utf8(&body).is_err());
    }

    #[test]
    fn form_content_type_is_recognised_with_parameters() {
        let mut headers = HeaderMap::new();
        assert!(!is_form(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
        );
        assert!(is_form(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert!(!is_form(&headers));
    }
}
