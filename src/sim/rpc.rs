//! The RPC pipeline of one request: read and parse it; send `AssumeRoleWithOIDC` to the STS side;
//! otherwise verify it, check RAM's instance limits, take from the account quota, apply a queued
//! fault and run the action. Returns the answer with what the stats count it under.

use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request};

use super::actions::{authorize, mentioned_instances};
use super::answer::Answer;
use super::errors::EcsError;
use super::faults::FaultKind;
use super::http::read_body;
use super::params::Params;
use super::state::Shared;
use super::stats::AccountCall;
use super::sts::{self, STS_ACTION};
use super::verify::{Verified, verify};

/// Stats key for requests whose `Action` could not be read.
pub const NO_ACTION: &str = "-";

/// What an answer is counted under in the stats.
pub(crate) struct StatsKeys {
    pub(crate) action: String,
    pub(crate) instances: Vec<String>,
    /// Set once the request passed the checks before the account quota.
    pub(crate) account: Option<AccountCall>,
}

impl StatsKeys {
    /// Counted under the action alone: no instance, no account.
    fn action_only(action: String) -> Self {
        StatsKeys {
            action,
            instances: Vec::new(),
            account: None,
        }
    }
}

/// Returns the stats keys with the answer.
pub(crate) async fn rpc_answer(
    shared: &Shared,
    req: Request<Incoming>,
    request_id: &str,
) -> (StatsKeys, Answer) {
    let (method, params) = match read_request(req).await {
        Ok(read) => read,
        Err(error) => {
            let keys = StatsKeys::action_only(NO_ACTION.to_owned());
            return (keys, Answer::Error(error));
        }
    };
    let action_name = params
        .get("Action")
        .filter(|a| !a.is_empty())
        .unwrap_or(NO_ACTION)
        .to_owned();
    if action_name == STS_ACTION {
        let answer = sts_answer(shared, &params, request_id).await;
        return (StatsKeys::action_only(action_name), answer);
    }
    let instances = mentioned_instances(&params);
    let (answer, account) = ecs_answer(
        shared,
        method,
        &params,
        &action_name,
        &instances,
        request_id,
    )
    .await;
    let keys = StatsKeys {
        action: action_name,
        instances,
        account,
    };
    (keys, answer)
}

/// The method and the parameters (query and form body), or the error that refuses the request.
async fn read_request(req: Request<Incoming>) -> Result<(&'static str, Params), EcsError> {
    let (parts, body) = req.into_parts();
    if parts.uri.path() != "/" {
        return Err(EcsError::path_not_found());
    }
    let method = match parts.method {
        Method::POST => "POST",
        Method::GET => "GET",
        _ => return Err(EcsError::unsupported_method()),
    };
    let body = read_body(body, &parts.headers).await?;
    let form = if is_form(&parts.headers) {
        let text = std::str::from_utf8(&body)
            .map_err(|_| EcsError::invalid_parameter("The request body is not UTF-8."))?;
        Some(text)
    } else {
        None
    };
    let params = Params::parse(parts.uri.query().unwrap_or_default(), form)?;
    Ok((method, params))
}

/// An ECS request: verified, within RAM's instance limits, within the account quota, then a
/// queued fault or the action. The account call is set once the request reached the quota.
async fn ecs_answer(
    shared: &Shared,
    method: &str,
    params: &Params,
    action_name: &str,
    instances: &[String],
    request_id: &str,
) -> (Answer, Option<AccountCall>) {
    let verified = verify(
        shared,
        method,
        params,
        jiff::Timestamp::now(),
        Instant::now(),
    );
    let action = match verified {
        Err(error) => return (Answer::Error(error), None),
        Ok(Verified {
            allowed_instances: Some(allowed),
            action,
        }) if authorize(Some(&allowed), action, params).is_err() => {
            return (Answer::Error(EcsError::forbidden_ram()), None);
        }
        Ok(Verified { action, .. }) => action,
    };
    let access_key_id = params.get("AccessKeyId").unwrap_or_default();
    let region_id = params.get("RegionId").unwrap_or_default();
    // The account quota comes first: ECS's flow control refuses a request before any work is
    // done for it, so a refused request uses up no fault.
    let (within_quota, fault) = {
        let mut state = shared.lock();
        let within = state
            .quota
            .try_take(access_key_id, region_id, Instant::now());
        let fault = within
            .then(|| state.take_fault(action_name, instances))
            .flatten();
        (within, fault)
    };
    let account = AccountCall {
        access_key_id: access_key_id.to_owned(),
        region_id: region_id.to_owned(),
        over_quota: !within_quota,
    };
    if !within_quota {
        return (Answer::Error(EcsError::user_throttling()), Some(account));
    }
    let run = || match action.run(shared, params, request_id, Instant::now()) {
        Ok(body) => Answer::Success(body),
        Err(error) => Answer::Error(error),
    };
    (apply_fault(fault, run, Answer::Error).await, Some(account))
}

/// `AssumeRoleWithOIDC`; only faults queued for that action by name apply to it.
async fn sts_answer(shared: &Shared, params: &Params, request_id: &str) -> Answer {
    let fault = shared.lock().take_named_fault(STS_ACTION);
    let run =
        || match sts::assume_role_with_oidc(shared, params, request_id, jiff::Timestamp::now()) {
            Ok(body) => Answer::Success(body),
            Err(error) => Answer::StsError(error),
        };
    apply_fault(fault, run, Answer::StsError).await
}

/// What a queued fault does to an answer: without one, or after a delay, `run` answers; an error
/// kind answers that error (wrapped by `error`, ECS's or STS's shape); the rest replace the body.
async fn apply_fault(
    fault: Option<FaultKind>,
    run: impl FnOnce() -> Answer,
    error: fn(EcsError) -> Answer,
) -> Answer {
    match fault {
        None => run(),
        Some(FaultKind::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            run()
        }
        Some(FaultKind::Malformed) => Answer::Malformed,
        Some(FaultKind::Oversized) => Answer::Oversized,
        Some(FaultKind::Drop) => Answer::Drop,
        Some(kind) => kind.as_error().map_or_else(run, error),
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

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

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
