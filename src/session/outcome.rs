//! Recording what happened when the controller asked ECS for a URL: the status, the Event and
//! the next look at the session that each outcome (a URL, a wait for a slot, a failure) leads to.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::crd::{LastError, Phase, REFRESH_ANNOTATION, VncSessionStatus};
use super::expiry::{self, Expiry, Limits};
use super::message::{clip, sanitize};
use super::observed::{IssueCause, Observed, known_os, ttl_deadline};
use super::retry::{MAX_AUTOMATIC_RETRIES, backoff};
use super::update::{
    Note, PACED, Reason, Update, announce, answered, earliest, leave_ready, set_conditions,
};

const CODE_MAX_BYTES: usize = 128;

/// What happened when the controller tried to issue a URL.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Issued {
        vnc_url: String,
        console_url: String,
        request_id: String,
        sent_at: Timestamp,
        is_windows: bool,
    },
    /// The per-instance limit is used up; a slot frees at `free_at`. `is_windows` is what
    /// `DescribeInstances` said, if it was asked on the way.
    Throttled {
        free_at: Timestamp,
        limit: u32,
        is_windows: Option<bool>,
    },
    /// The AccessKey's ECS calls in this region are paced (ECS's account flow control); this
    /// session's turn comes at `free_at`.
    Paced {
        free_at: Timestamp,
        is_windows: Option<bool>,
    },
    /// The credentials Secret or one of its keys is missing or unusable.
    CredentialsNotFound { message: String },
    /// ECS or the operator failed; `code` is ECS's Code or an operator code.
    Failed {
        code: String,
        message: String,
        retryable: bool,
        is_windows: Option<bool>,
    },
}

impl Outcome {
    /// The instance's OS as learned by this attempt (spec, status or `DescribeInstances`).
    fn is_windows(&self) -> Option<bool> {
        match self {
            Outcome::Issued { is_windows, .. } => Some(*is_windows),
            Outcome::Throttled { is_windows, .. }
            | Outcome::Paced { is_windows, .. }
            | Outcome::Failed { is_windows, .. } => *is_windows,
            Outcome::CredentialsNotFound { .. } => None,
        }
    }
}

/// Records the outcome of an issue attempt that `decide` asked for.
pub fn after_issue(
    obs: &Observed,
    cause: IssueCause,
    outcome: Outcome,
    now: Timestamp,
    limits: Limits,
    jitter: f64,
) -> Update {
    let mut status = answered(obs);
    status.observed_generation = Some(obs.generation);
    // A refresh, a new spec or new credentials start over; only a due retry keeps counting.
    if cause != IssueCause::Retry {
        status.consecutive_failures = 0;
    }
    // Remember the OS even when the URL itself failed, so a retry does not ask again.
    status.is_windows = outcome.is_windows().or(known_os(obs, cause));

    let (note, wake_at) = match outcome {
        Outcome::Issued {
            vnc_url,
            console_url,
            request_id,
            sent_at,
            ..
        } => {
            status.console_url = Some(console_url);
            status.vnc_url = Some(vnc_url);
            status.request_id = Some(request_id);
            issued(&mut status, obs, cause, sent_at, now, limits)
        }
        Outcome::Throttled { free_at, limit, .. } => {
            throttled(&mut status, obs, free_at, limit, now)
        }
        Outcome::Paced { free_at, .. } => paced(&mut status, obs, free_at, now),
        Outcome::CredentialsNotFound { message } => {
            credentials_not_found(&mut status, obs, &message, now)
        }
        Outcome::Failed {
            code,
            message,
            retryable,
            ..
        } => failed(&mut status, obs, (&code, &message), retryable, now, jitter),
    };
    Update {
        status,
        note: Some(note),
        wake_at: earliest(wake_at, ttl_deadline(obs)),
    }
}

/// A new URL (already in `status`): the session is `Ready` until the URL's window closes.
fn issued(
    status: &mut VncSessionStatus,
    obs: &Observed,
    cause: IssueCause,
    sent_at: Timestamp,
    now: Timestamp,
    limits: Limits,
) -> (Note, Option<Timestamp>) {
    // Whole seconds, rounded down: the status shows seconds and a URL must never look valid for
    // longer than it is.
    let issued_at = Timestamp::from_second(sent_at.as_second()).unwrap_or(sent_at);
    let expiry = Expiry::from_issue(issued_at, limits);
    if status.issued_at.is_some() {
        status.refresh_count = status.refresh_count.saturating_add(1);
    }
    status.phase = Some(Phase::Ready);
    status.issued_at = Some(Time(expiry.issued_at));
    status.url_expires_at = Some(Time(expiry.url_expires_at));
    status.session_expires_at = Some(Time(expiry.session_expires_at));
    status.refreshable = false;
    status.last_error = None;
    status.retry_at = None;
    status.consecutive_failures = 0;
    status.credentials_version = None;
    let message = format!(
        "console URL issued for {}; it opens a connection until {}",
        obs.spec.instance_id,
        expiry::rfc3339(expiry.url_expires_at)
    );
    set_conditions(status, obs, Reason::UrlIssued, &message, now);
    (issued_note(obs, cause), Some(expiry.url_expires_at))
}

/// The Event of a new URL: a refresh, or the URL the session (or its new spec) was first given.
fn issued_note(obs: &Observed, cause: IssueCause) -> Note {
    let target = &obs.spec.instance_id;
    // A refresh that had to wait (throttled, or retried after a failure) is still answered as the
    // refresh it is.
    let answers_refresh = cause == IssueCause::RefreshRequested
        || (cause == IssueCause::Retry && obs.refresh.is_some() && obs.status.issued_at.is_some());
    let reason = if answers_refresh {
        Reason::RefreshRequested
    } else {
        Reason::UrlIssued
    };
    let mut event = if answers_refresh {
        format!("issued a new console URL for {target} on request")
    } else {
        format!("issued a console URL for {target}")
    };
    if let Some(why) = &obs.spec.reason {
        // Cut to the Event's byte limit below; the start of the reason always survives.
        event.push_str(&format!("; reason: {why}"));
    }
    Note::normal(reason, event)
}

/// The per-instance limit is used up: the issue waits for the slot that frees at `free_at`.
fn throttled(
    status: &mut VncSessionStatus,
    obs: &Observed,
    free_at: Timestamp,
    limit: u32,
    now: Timestamp,
) -> (Note, Option<Timestamp>) {
    let at = expiry::ceil_second(free_at);
    let message = format!(
        "at most {limit} console URLs per minute for {}; the next one is issued at {}",
        obs.spec.instance_id,
        expiry::rfc3339(at)
    );
    wait_for_turn(status, obs, at, Reason::Throttled.as_str(), message, now)
}

/// The account's ECS calls are paced: the issue waits for this session's turn at `free_at`.
fn paced(
    status: &mut VncSessionStatus,
    obs: &Observed,
    free_at: Timestamp,
    now: Timestamp,
) -> (Note, Option<Timestamp>) {
    let at = expiry::ceil_second(free_at);
    let message = format!(
        "ECS calls with this AccessKey in {} are paced to the account's flow control; \
         the next turn is at {}",
        obs.spec.region_id,
        expiry::rfc3339(at)
    );
    wait_for_turn(status, obs, at, PACED, message, now)
}

/// `Pending` until `at` (whole seconds, rounded up, so the session never wakes before its slot).
/// Both waits are reason Throttled; `code` tells the per-instance limit (which a later process may
/// see differently) from the account's pacing (which only time cures).
fn wait_for_turn(
    status: &mut VncSessionStatus,
    obs: &Observed,
    at: Timestamp,
    code: &str,
    message: String,
    now: Timestamp,
) -> (Note, Option<Timestamp>) {
    leave_ready(status, Phase::Pending, false);
    status.retry_at = Some(Time(at));
    status.last_error = Some(LastError {
        code: code.to_owned(),
        message: message.clone(),
    });
    let note = announce(status, obs, Note::warning(Reason::Throttled, message), now);
    (note, Some(at))
}

/// The credentials are missing or unusable: nothing is retried until the Secret changes.
fn credentials_not_found(
    status: &mut VncSessionStatus,
    obs: &Observed,
    message: &str,
    now: Timestamp,
) -> (Note, Option<Timestamp>) {
    let message = sanitize(message);
    leave_ready(status, Phase::Failed, false);
    status.retry_at = None;
    status.consecutive_failures = 0;
    status.credentials_version = obs.credentials_version.map(str::to_owned);
    status.last_error = Some(LastError {
        code: Reason::CredentialsNotFound.as_str().to_owned(),
        message: message.clone(),
    });
    let note = announce(
        status,
        obs,
        Note::warning(Reason::CredentialsNotFound, message),
        now,
    );
    (note, None)
}

/// ECS or the operator failed with `(code, message)`: a retryable failure is tried again after a
/// backoff, until the retries run out.
fn failed(
    status: &mut VncSessionStatus,
    obs: &Observed,
    (code, message): (&str, &str),
    retryable: bool,
    now: Timestamp,
    jitter: f64,
) -> (Note, Option<Timestamp>) {
    // Codes are short words; one from an untrusted endpoint could be anything.
    let code = clip(code, CODE_MAX_BYTES);
    let failures = status.consecutive_failures.saturating_add(1);
    let ecs_message = sanitize(message);
    let mut message = format!("{code}: {ecs_message}");
    let retry_at = if retryable && failures < MAX_AUTOMATIC_RETRIES {
        let at = expiry::ceil_second(expiry::add(now, backoff(failures, jitter)));
        message.push_str(&format!("; retrying at {}", expiry::rfc3339(at)));
        Some(at)
    } else {
        if retryable {
            message.push_str(&format!(
                "; gave up after {failures} attempts, set the {REFRESH_ANNOTATION} annotation to try again"
            ));
        }
        None
    };
    leave_ready(status, Phase::Failed, retryable);
    status.consecutive_failures = failures;
    status.retry_at = retry_at.map(Time);
    // Kept for retryable failures too: once their retries run out, a changed Secret starts a new
    // series.
    status.credentials_version = obs.credentials_version.map(str::to_owned);
    let reason = if code.starts_with("Throttling") {
        Reason::Throttled
    } else {
        Reason::IssueFailed
    };
    status.last_error = Some(LastError {
        code,
        message: ecs_message,
    });
    let note = announce(status, obs, Note::warning(reason, message), now);
    (note, retry_at)
}
