//! The ECS instance metadata service, the part the credentials chain uses, in hardened (IMDSv2)
//! mode: `PUT /latest/api/token` with `X-aliyun-ecs-metadata-token-ttl-seconds` (1 to 21600)
//! gives a token; `GET /latest/meta-data/ram/security-credentials/` lists the instance's RAM
//! roles and `GET …/<role>` gives that role's temporary credentials, both only with a valid
//! `X-aliyun-ecs-metadata-token`. Answers are text, the credentials JSON, as on a real instance.

use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::grants::{Issued, format_time};
use super::http::{Reply, response};
use super::state::Shared;

pub const TOKEN_PATH: &str = "/latest/api/token";
pub const CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";
pub const TOKEN_HEADER: &str = "x-aliyun-ecs-metadata-token";
pub const TTL_HEADER: &str = "x-aliyun-ecs-metadata-token-ttl-seconds";
/// The metadata service's longest token lifetime (6 h).
pub const MAX_TOKEN_TTL_SECONDS: i64 = 21_600;
/// Stats actions for the two endpoints (and `Metadata.Other` for any other `/latest/` path).
pub const STATS_TOKEN: &str = "Metadata.Token";
pub const STATS_CREDENTIALS: &str = "Metadata.SecurityCredentials";
const STATS_OTHER: &str = "Metadata.Other";

pub(crate) fn handle(shared: &Shared, req: &Request<Incoming>) -> Reply {
    let now = Timestamp::now();
    let path = req.uri().path();
    let (stats_action, (status, body)) = if path == TOKEN_PATH {
        (STATS_TOKEN, issue_token(shared, req, now))
    } else if let Some(role) = path.strip_prefix(CREDENTIALS_PATH) {
        (STATS_CREDENTIALS, credentials(shared, req, role, now))
    } else {
        (STATS_OTHER, text(404, "Not Found"))
    };
    let code = match status {
        200 => "Success",
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        _ => "Other",
    };
    shared.lock().stats.record(stats_action, code, &[]);
    let content_type = if body.1 {
        "application/json"
    } else {
        "text/plain"
    };
    response(status, Bytes::from(body.0), content_type)
}

/// (body, is JSON)
type Body = (String, bool);

fn text(status: u16, body: &str) -> (u16, Body) {
    (status, (body.to_owned(), false))
}

fn issue_token(shared: &Shared, req: &Request<Incoming>, now: Timestamp) -> (u16, Body) {
    if req.method() != Method::PUT {
        return text(405, "Method Not Allowed");
    }
    // What the real service does against SSRF: a request relayed by a proxy gets no token.
    if req.headers().contains_key("x-forwarded-for") {
        return text(403, "Forbidden");
    }
    let ttl = req
        .headers()
        .get(TTL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let Some(ttl) = ttl.filter(|t| (1..=MAX_TOKEN_TTL_SECONDS).contains(t)) else {
        return text(
            400,
            "X-aliyun-ecs-metadata-token-ttl-seconds must be 1 to 21600",
        );
    };
    let token: String = (0..56).map(|_| fastrand::alphanumeric()).collect();
    let expires_at = now
        .checked_add(SignedDuration::from_secs(ttl))
        .unwrap_or(now);
    shared
        .lock()
        .metadata
        .add_token(token.clone(), expires_at, now);
    (200, (token, false))
}

fn credentials(
    shared: &Shared,
    req: &Request<Incoming>,
    role: &str,
    now: Timestamp,
) -> (u16, Body) {
    if req.method() != Method::GET {
        return text(405, "Method Not Allowed");
    }
    let token = req
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut state = shared.lock();
    if token.is_empty() || !state.metadata.token_valid(token, now) {
        return text(401, "Unauthorized");
    }
    let roles = &shared.keyless.metadata_roles;
    if role.is_empty() {
        let names: Vec<&str> = roles.iter().map(|(name, _)| name.as_str()).collect();
        return if names.is_empty() {
            text(404, "Not Found")
        } else {
            (200, (names.join("\n"), false))
        };
    }
    let Some((name, instances)) = roles.iter().find(|(name, _)| name == role) else {
        return text(404, "Not Found");
    };
    let lifetime = shared.keyless.lifetime;
    // Like the real service, the same credentials are served until they are half used up.
    let reusable = state.metadata.current.get(name).and_then(|key| {
        let grant = state.grants.get(key)?;
        let left = grant.expires_at.as_second() - now.as_second();
        (left * 2 > lifetime).then(|| (key.clone(), grant.clone()))
    });
    let (access_key_id, grant) = match reusable {
        Some(found) => found,
        None => {
            let issued = Issued::new(now, lifetime, instances.clone());
            state.grants.insert(&issued, now);
            state
                .metadata
                .current
                .insert(name.clone(), issued.access_key_id.clone());
            (issued.access_key_id, issued.grant)
        }
    };
    let issued_at = grant
        .expires_at
        .checked_sub(SignedDuration::from_secs(lifetime))
        .unwrap_or(now);
    let body = json!({
        "AccessKeyId": access_key_id,
        "AccessKeySecret": grant.secret,
        "SecurityToken": grant.token,
        "Expiration": format_time(grant.expires_at),
        "LastUpdated": format_time(issued_at),
        "Code": "Success",
    });
    (200, (body.to_string(), true))
}
