//! HTTP: the accept loop, the RPC pipeline (read, parse, verify, fault, act, count, answer) and the
//! answer bodies.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::actions::mentioned_instances;
use super::admin;
use super::errors::EcsError;
use super::faults::FaultKind;
use super::params::Params;
use super::state::Shared;
use super::verify::verify;

pub(crate) type Reply = Response<Full<Bytes>>;

/// Largest request body read; a bigger one is answered 413.
pub const MAX_REQUEST_BODY: usize = 1 << 20;
/// A too-large body is read (and thrown away) up to this size so that the client sees the 413;
/// past it the connection is simply closed.
const DRAIN_LIMIT: usize = 16 << 20;
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
    let request_id = new_request_id();
    let (action, instances, answer) = rpc_answer(&shared, req, &request_id).await;
    let code = answer.code();
    shared.lock().stats.record(&action, code, &instances);
    tracing::debug!(action = %action, code, "answered");
    reply(answer, &request_id)
}

/// What an RPC request gets, before it is written.
enum Answer {
    Success(String),
    Error(EcsError),
    Malformed,
    Oversized,
    Drop,
}

impl Answer {
    fn code(&self) -> &str {
        match self {
            Answer::Success(_) => "Success",
            Answer::Error(e) => &e.code,
            Answer::Malformed => "Fault.Malformed",
            Answer::Oversized => "Fault.Oversized",
            Answer::Drop => "Fault.Drop",
        }
    }
}

/// Returns the stats keys (action, instances) with the answer.
async fn rpc_answer(
    shared: &Shared,
    req: Request<Incoming>,
    request_id: &str,
) -> (String, Vec<String>, Answer) {
    let unread = |error| (NO_ACTION.to_owned(), Vec::new(), Answer::Error(error));
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
    let instances = mentioned_instances(&params);

    let answer = match verify(
        shared,
        method,
        &params,
        jiff::Timestamp::now(),
        Instant::now(),
    ) {
        Err(error) => Answer::Error(error),
        Ok(action) => {
            let fault = shared.lock().take_fault(&action_name, &instances);
            let run =
                |shared: &Shared| match action.run(shared, &params, request_id, Instant::now()) {
                    Ok(body) => Answer::Success(body),
                    Err(error) => Answer::Error(error),
                };
            match fault {
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
    (action_name, instances, answer)
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

/// Reads at most [`MAX_REQUEST_BODY`] bytes.
pub(crate) async fn read_body(mut body: Incoming, headers: &HeaderMap) -> Result<Bytes, EcsError> {
    let too_large = || EcsError::body_too_large(MAX_REQUEST_BODY);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Err(too_large());
    }
    let mut collected = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(EcsError::invalid_parameter(
                "The request body could not be read.",
            ));
        };
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total > DRAIN_LIMIT {
                break;
            }
            if total <= MAX_REQUEST_BODY {
                collected.extend_from_slice(&data);
            }
        }
    }
    if total > MAX_REQUEST_BODY {
        return Err(too_large());
    }
    Ok(Bytes::from(collected))
}

fn reply(answer: Answer, request_id: &str) -> Result<Reply, DropConnection> {
    let (status, body) = match answer {
        Answer::Success(body) => (200, Bytes::from(body)),
        Answer::Error(error) => (error.status, Bytes::from(error.to_body(request_id))),
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

/// A status outside what hyper accepts (only possible via a library-injected fault) becomes 500.
pub(crate) fn json_response(status: u16, body: Bytes) -> Reply {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    response
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
