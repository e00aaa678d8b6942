//! What the RPC pipeline and the admin API both need from HTTP: reading a bounded body and
//! writing a JSON answer. Kept apart so that neither of them imports the other.

use http_body_util::{BodyExt, Full};
use hyper::Response;
use hyper::StatusCode;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};

use super::errors::EcsError;

pub(crate) type Reply = Response<Full<Bytes>>;

/// Largest request body read; a bigger one is answered 413.
pub const MAX_REQUEST_BODY: usize = 1 << 20;
/// A too-large body is read (and thrown away) up to this size so that the client sees the 413;
/// past it the connection is simply closed.
const DRAIN_LIMIT: usize = 16 << 20;

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

/// A status outside what hyper accepts (only possible via a library-injected fault) becomes 500.
pub(crate) fn json_response(status: u16, body: Bytes) -> Reply {
    response(status, body, "application/json;charset=utf-8")
}

/// An answer with this status, body and `Content-Type`; an impossible status becomes 500.
pub(crate) fn response(status: u16, body: Bytes, content_type: &'static str) -> Reply {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
