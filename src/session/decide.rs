//! The heart of the operator: from a session's spec, status, annotation and the time, decide what
//! happens next. No I/O here; the controller carries the decision out.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::crd::{LastError, Phase, VncSessionSpec, VncSessionStatus};
use super::expiry::{self, Expiry, Limits};
use super::message::{EVENT_NOTE_MAX_BYTES, clip, sanitize};
use super::{conditions, refresh, validate};

/// Failed attempts in a row after which automatic retries stop; a refresh starts over.
pub const MAX_AUTOMATIC_RETRIES: u32 = 8;
const BACKOFF_BASE: Duration = Duration::from_secs(2);
const BACKOFF_CAP: Duration = Duration::from_secs(300);
const CODE_MAX_BYTES: usize = 128;

/// What the controller sees of one session.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    pub spec: &'a VncSessionSpec,
    pub status: &'a VncSessionStatus,
    pub generation: i64,
    /// Value of the `ecsvnc.dev/refresh` annotation.
    pub refresh: Option<&'a str>,
    pub created_at: Timestamp,
    /// resourceVersion of the referenced credentials Secret as it is now; `None` when the session
    /// references none or it does not exist.
    pub credentials_version: Option<&'a str>,
}

/// Why a URL is being asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueCause {
    /// The session has never been served.
    First,
    /// A new generation of the spec.
    SpecChanged,
    /// A new value of the refresh annotation.
    RefreshRequested,
    /// A retryable failure or a throttled request is due again.
    Retry,
    /// The credentials Secret changed after a failure that waits for it.
    CredentialsChanged,
}

/// The reasons of DESIGN.md, used for both conditions and Events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    UrlIssued,
    UrlExpired,
    SessionExpired,
    RefreshRequested,
    IssueFailed,
    CredentialsNotFound,
    Throttled,
    Closed,
    RefreshIgnored,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UrlIssued => "UrlIssued",
            Reason::UrlExpired => "UrlExpired",
            Reason::SessionExpired => "SessionExpired",
            Reason::RefreshRequested => "RefreshRequested",
            Reason::IssueFailed => "IssueFailed",
            Reason::CredentialsNotFound => "CredentialsNotFound",
            Reason::Throttled => "Throttled",
            Reason::Closed => "Closed",
            Reason::RefreshIgnored => "RefreshIgnored",
        }
    }
}

/// An Event to publish alongside a status change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub reason: Reason,
    pub warning: bool,
    pub message: String,
}

/// A status to write, the Event that goes with it, and when to look at the session again.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    pub status: VncSessionStatus,
    pub note: Option<Note>,
    pub wake_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Ask ECS for a URL now, then record the outcome with [`after_issue`].
    Issue(IssueCause),
    /// Write this status; no ECS call.
    Write(Box<Update>),
    /// Nothing to do until the instant (or until something changes).
    Wait(Option<Timestamp>),
}

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

/// Whether the instance is Windows, as far as it is known without asking ECS: the spec says so,
/// or an earlier attempt for this same spec learned it. A new spec may name another instance, so
/// what was learned for the old one is not used.
pub fn known_os(obs: &Observed, cause: IssueCause) -> Option<bool> {
    let remembered = match cause {
        IssueCause::First | IssueCause::SpecChanged => None,
        _ => obs.status.is_windows,
    };
    obs.spec.is_windows.or(remembered)
}

/// Decides what to do with a session at `now`.
pub fn decide(obs: &Observed, now: Timestamp) -> Decision {
    let status = obs.status;
    let closes_at = ttl_deadline(obs);

    // A refresh asked of a grant that cannot issue is still answered (with the same state), so
    // whoever asked sees the reason instead of waiting.
    let refresh_answered = obs
        .refresh
        .is_none_or(|v| status.observed_refresh.as_deref() == Some(&*refresh::observed_form(v)));

    // A refresh value the operator does not serve (too long, control characters) is answered
    // once, whatever the grant's state, and changes nothing else.
    if !refresh_answered
        && let Some(value) = obs.refresh
        && let Some(why) = refresh::refusal(value)
    {
        return Decision::Write(Box::new(refresh_refused(obs, why)));
    }

    if let Some(deadline) = closes_at
        && now >= deadline
    {
        return if status.phase == Some(Phase::Closed) && refresh_answered {
            Decision::Wait(None)
        } else {
            Decision::Write(Box::new(closed(obs, now)))
        };
    }

    if let Err(message) = validate::spec(obs.spec) {
        let already = status.phase == Some(Phase::Failed)
            && status.observed_generation == Some(obs.generation)
            && refresh_answered
            && status
                .last_error
                .as_ref()
                .is_some_and(|e| e.code == INVALID_SPEC);
        return if already {
            Decision::Wait(None)
        } else {
            Decision::Write(Box::new(invalid_spec(obs, message, now)))
        };
    }

    if status.observed_generation != Some(obs.generation) {
        return Decision::Issue(if status.phase.is_none() {
            IssueCause::First
        } else {
            IssueCause::SpecChanged
        });
    }
    if !refresh_answered {
        return Decision::Issue(IssueCause::RefreshRequested);
    }

    let wake = |at: Option<Timestamp>| Decision::Wait(earliest(at, closes_at));
    let url_expires_at = status.url_expires_at.as_ref().map(|t| t.0);
    let session_expires_at = status.session_expires_at.as_ref().map(|t| t.0);
    let due = |at: Option<Timestamp>| at.is_none_or(|at| now >= at);

    match status.phase {
        None => Decision::Issue(IssueCause::First),
        Some(Phase::Ready) if due(session_expires_at) => {
            Decision::Write(Box::new(expired(obs, now)))
        }
        Some(Phase::Ready) if due(url_expires_at) => {
            Decision::Write(Box::new(url_expired(obs, now)))
        }
        Some(Phase::Ready) => wake(url_expires_at),
        Some(Phase::UrlExpired) if due(session_expires_at) => {
            Decision::Write(Box::new(expired(obs, now)))
        }
        Some(Phase::UrlExpired) => wake(session_expires_at),
        Some(Phase::Expired | Phase::Closed) => wake(None),
        // Nothing automatic is left (a terminal cause, or retries ran out): only a change helps,
        // and a changed Secret is one.
        Some(Phase::Failed)
            if !status.refreshable || status.consecutive_failures >= MAX_AUTOMATIC_RETRIES =>
        {
            if status.credentials_version.as_deref() != obs.credentials_version {
                Decision::Issue(IssueCause::CredentialsChanged)
            } else {
                wake(None)
            }
        }
        Some(Phase::Failed | Phase::Pending) => {
            let retry_at = status.retry_at.as_ref().map(|t| t.0);
            if due(retry_at) {
                Decision::Issue(IssueCause::Retry)
            } else {
                wake(retry_at)
            }
        }
    }
}

/// The status shown while the very first URL is being issued (the ECS call may take seconds).
pub fn pending(obs: &Observed) -> VncSessionStatus {
    let mut status = obs.status.clone();
    leave_ready(&mut status, Phase::Pending, false);
    status
}

/// Records the outcome of an issue attempt that [`decide`] asked for.
pub fn after_issue(
    obs: &Observed,
    cause: IssueCause,
    outcome: Outcome,
    now: Timestamp,
    limits: Limits,
    jitter: f64,
) -> Update {
    let mut status = obs.status.clone();
    status.observed_generation = Some(obs.generation);
    if let Some(value) = obs.refresh {
        status.observed_refresh = Some(refresh::observed_form(value).into_owned());
    }
    let closes_at = ttl_deadline(obs);
    let target = &obs.spec.instance_id;
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
            // Whole seconds, rounded down: the status shows seconds and a URL must never look
            // valid for longer than it is.
            let issued_at = Timestamp::from_second(sent_at.as_second()).unwrap_or(sent_at);
            let expiry = Expiry::from_issue(issued_at, limits);
            if status.issued_at.is_some() {
                status.refresh_count = status.refresh_count.saturating_add(1);
            }
            status.phase = Some(Phase::Ready);
            status.console_url = Some(console_url);
            status.vnc_url = Some(vnc_url);
            status.issued_at = Some(Time(expiry.issued_at));
            status.url_expires_at = Some(Time(expiry.url_expires_at));
            status.session_expires_at = Some(Time(expiry.session_expires_at));
            status.refreshable = false;
            status.request_id = Some(request_id);
            status.last_error = None;
            status.retry_at = None;
            status.consecutive_failures = 0;
            status.credentials_version = None;
            let message = format!(
                "console URL issued for {target}; it opens a connection until {}",
                expiry::rfc3339(expiry.url_expires_at)
            );
            set_conditions(&mut status, obs, Reason::UrlIssued, &message, now);
            // A refresh that had to wait (throttled, or retried after a failure) is still
            // answered as the refresh it is.
            let answers_refresh = cause == IssueCause::RefreshRequested
                || (cause == IssueCause::Retry
                    && obs.refresh.is_some()
                    && obs.status.issued_at.is_some());
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
            (normal(reason, event), Some(expiry.url_expires_at))
        }
        Outcome::Throttled { free_at, .. } | Outcome::Paced { free_at, .. } => {
            // Stored in whole seconds: rounded up, so the session never wakes before its slot.
            let at = expiry::ceil_second(free_at);
            leave_ready(&mut status, Phase::Pending, false);
            status.retry_at = Some(Time(at));
            let message = match outcome {
                Outcome::Throttled { limit, .. } => format!(
                    "at most {limit} console URLs per minute for {target}; the next one is issued at {}",
                    expiry::rfc3339(at)
                ),
                _ => format!(
                    "ECS calls with this AccessKey in {} are paced to the account's flow control; \
                     the next turn is at {}",
                    obs.spec.region_id,
                    expiry::rfc3339(at)
                ),
            };
            let free_at = at;
            // Both are reason Throttled; the code tells the per-instance limit (which a later
            // process may see differently) from the account's pacing (which only time cures).
            let code = match outcome {
                Outcome::Throttled { .. } => Reason::Throttled.as_str(),
                _ => PACED,
            };
            status.last_error = Some(LastError {
                code: code.to_owned(),
                message: message.clone(),
            });
            set_conditions(&mut status, obs, Reason::Throttled, &message, now);
            (warning(Reason::Throttled, message), Some(free_at))
        }
        Outcome::CredentialsNotFound { message } => {
            let message = sanitize(&message);
            leave_ready(&mut status, Phase::Failed, false);
            status.retry_at = None;
            status.consecutive_failures = 0;
            status.credentials_version = obs.credentials_version.map(str::to_owned);
            status.last_error = Some(LastError {
                code: Reason::CredentialsNotFound.as_str().to_owned(),
                message: message.clone(),
            });
            set_conditions(&mut status, obs, Reason::CredentialsNotFound, &message, now);
            (warning(Reason::CredentialsNotFound, message), None)
        }
        Outcome::Failed {
            code,
            message,
            retryable,
            ..
        } => {
            // Codes are short words; one from an untrusted endpoint could be anything.
            let code = clip(&code, CODE_MAX_BYTES);
            let failures = status.consecutive_failures.saturating_add(1);
            let ecs_message = sanitize(&message);
            let mut message = format!("{code}: {ecs_message}");
            let retry_at = if retryable && failures < MAX_AUTOMATIC_RETRIES {
                let at = expiry::ceil_second(expiry::add(now, backoff(failures, jitter)));
                message.push_str(&format!("; retrying at {}", expiry::rfc3339(at)));
                Some(at)
            } else {
                if retryable {
                    message.push_str(&format!(
                        "; gave up after {failures} attempts, set the {} annotation to try again",
                        super::crd::REFRESH_ANNOTATION
                    ));
                }
                None
            };
            leave_ready(&mut status, Phase::Failed, retryable);
            status.consecutive_failures = failures;
            status.retry_at = retry_at.map(Time);
            // Kept for retryable failures too: once their retries run out, a changed Secret
            // starts a new series.
            status.credentials_version = obs.credentials_version.map(str::to_owned);
            status.last_error = Some(LastError {
                code: code.clone(),
                message: ecs_message,
            });
            let reason = if code.starts_with("Throttling") {
                Reason::Throttled
            } else {
                Reason::IssueFailed
            };
            set_conditions(&mut status, obs, reason, &message, now);
            (warning(reason, message), retry_at)
        }
    };
    Update {
        status,
        note: Some(note),
        wake_at: earliest(wake_at, closes_at),
    }
}

/// Capped exponential backoff with equal jitter: half the step is fixed, half is random, so
/// retries spread out but never come sooner than half the nominal delay.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let step = BACKOFF_BASE.saturating_mul(1 << exp).min(BACKOFF_CAP);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    step.mul_f64(0.5 + 0.5 * jitter)
}

/// When the grant ends, if it has a valid TTL.
pub fn ttl_deadline(obs: &Observed) -> Option<Timestamp> {
    let ttl = validate::ttl(obs.spec.ttl.as_deref()?).ok()?;
    Some(expiry::add(obs.created_at, ttl))
}

const INVALID_SPEC: &str = "InvalidSpec";
/// `lastError.code` of a session waiting for its turn under the account's flow control.
pub const PACED: &str = "Paced";

fn invalid_spec(obs: &Observed, message: String, now: Timestamp) -> Update {
    let mut status = answered(obs);
    leave_ready(&mut status, Phase::Failed, false);
    status.observed_generation = Some(obs.generation);
    status.retry_at = None;
    status.last_error = Some(LastError {
        code: INVALID_SPEC.to_owned(),
        message: message.clone(),
    });
    set_conditions(&mut status, obs, Reason::IssueFailed, &message, now);
    Update {
        status,
        note: Some(warning(Reason::IssueFailed, message)),
        wake_at: None,
    }
}

fn closed(obs: &Observed, now: Timestamp) -> Update {
    let mut status = answered(obs);
    leave_ready(&mut status, Phase::Closed, false);
    status.retry_at = None;
    let message = format!(
        "the grant's ttl of {} has passed; no more console URLs",
        obs.spec.ttl.as_deref().unwrap_or_default()
    );
    set_conditions(&mut status, obs, Reason::Closed, &message, now);
    Update {
        status,
        note: Some(normal(Reason::Closed, message)),
        wake_at: None,
    }
}

fn url_expired(obs: &Observed, now: Timestamp) -> Update {
    let mut status = obs.status.clone();
    leave_ready(&mut status, Phase::UrlExpired, true);
    let session_end = status.session_expires_at.as_ref().map(|t| t.0);
    let message = format!(
        "the console URL no longer opens connections; a connection opened in time lasts at most until {}",
        session_end.map(expiry::rfc3339).unwrap_or_default()
    );
    set_conditions(&mut status, obs, Reason::UrlExpired, &message, now);
    Update {
        status,
        note: Some(normal(Reason::UrlExpired, message)),
        wake_at: earliest(session_end, ttl_deadline(obs)),
    }
}

fn expired(obs: &Observed, now: Timestamp) -> Update {
    let mut status = obs.status.clone();
    leave_ready(&mut status, Phase::Expired, true);
    let message = "the console session has expired; refresh to get a new URL".to_owned();
    set_conditions(&mut status, obs, Reason::SessionExpired, &message, now);
    Update {
        status,
        note: Some(normal(Reason::SessionExpired, message)),
        wake_at: ttl_deadline(obs),
    }
}

/// The status with the current refresh value marked as acted on.
fn answered(obs: &Observed) -> VncSessionStatus {
    let mut status = obs.status.clone();
    if let Some(value) = obs.refresh {
        status.observed_refresh = Some(refresh::observed_form(value).into_owned());
    }
    status
}

/// A refresh value that is not served: recorded (by its digest) so it is answered once, with a
/// warning that says what a value must be. Phase, URL and conditions stay as they are.
fn refresh_refused(obs: &Observed, why: String) -> Update {
    let message = format!(
        "{why}; nothing was issued. Set a short value without control characters (a \
         timestamp, as kubectl vnc open does)"
    );
    Update {
        status: answered(obs),
        note: Some(warning(Reason::RefreshIgnored, message)),
        wake_at: None,
    }
}

/// Moves to a phase other than `Ready`: the URLs go with it.
fn leave_ready(status: &mut VncSessionStatus, phase: Phase, refreshable: bool) {
    status.phase = Some(phase);
    status.console_url = None;
    status.vnc_url = None;
    status.refreshable = refreshable;
}

fn set_conditions(
    status: &mut VncSessionStatus,
    obs: &Observed,
    reason: Reason,
    message: &str,
    now: Timestamp,
) {
    let message = clip(message, EVENT_NOTE_MAX_BYTES);
    conditions::set(status, obs.generation, reason.as_str(), &message, now);
}

fn normal(reason: Reason, message: String) -> Note {
    Note {
        reason,
        warning: false,
        message: clip(&message, EVENT_NOTE_MAX_BYTES),
    }
}

fn warning(reason: Reason, message: String) -> Note {
    Note {
        reason,
        warning: true,
        message: clip(&message, EVENT_NOTE_MAX_BYTES),
    }
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
