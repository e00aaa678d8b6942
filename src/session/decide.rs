//! The heart of the operator: from a session's spec, status, annotation and the time, decide what
//! happens next. No I/O here; the controller carries the decision out.
//!
//! This module is the decision core's front door: what the controller sees ([`Observed`]), what
//! an issue attempt brings back ([`Outcome`], recorded by [`after_issue`]) and what gets written
//! ([`Update`]) are re-exported here from the files that hold them.

use jiff::Timestamp;

use super::crd::{LastError, Phase, VncSessionStatus};
use super::expiry;
use super::update::{answered, earliest, leave_ready};
use super::{refresh, validate};

pub use super::observed::{IssueCause, Observed, known_os, ttl_deadline};
pub use super::outcome::{Outcome, after_issue};
pub use super::retry::{MAX_AUTOMATIC_RETRIES, backoff};
pub use super::update::{INVALID_SPEC, Note, PACED, Reason, Update};

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Ask ECS for a URL now, then record the outcome with [`after_issue`].
    Issue(IssueCause),
    /// Write this status; no ECS call.
    Write(Box<Update>),
    /// Nothing to do until the instant (or until something changes).
    Wait(Option<Timestamp>),
}

/// Decides what to do with a session at `now`: first what overrides the grant's state (a refused
/// refresh value, the end of its ttl, an invalid spec, a change to serve), then its phase.
pub fn decide(obs: &Observed, now: Timestamp) -> Decision {
    let closes_at = ttl_deadline(obs);
    let answered = refresh_answered(obs);
    let decision = refused_refresh(obs, answered)
        .or_else(|| closing(obs, now, closes_at, answered))
        .or_else(|| invalid(obs, now, answered))
        .or_else(|| asked_for(obs, answered).map(Decision::Issue))
        .unwrap_or_else(|| by_phase(obs, now, closes_at));
    match (decision, closes_at) {
        // A URL issued now would open connections after the grant has ended.
        (Decision::Issue(_), Some(deadline)) if expiry::add(now, obs.url_validity) > deadline => {
            Decision::Write(Box::new(closed_early(obs, now, deadline)))
        }
        (decision, _) => decision,
    }
}

/// The status shown while the very first URL is being issued (the ECS call may take seconds).
pub fn pending(obs: &Observed) -> VncSessionStatus {
    let mut status = obs.status.clone();
    leave_ready(&mut status, Phase::Pending, false);
    status
}

/// Whether the current refresh value (if any) has been acted on. A refresh asked of a grant that
/// cannot issue is still answered (with the same state), so whoever asked sees the reason instead
/// of waiting.
fn refresh_answered(obs: &Observed) -> bool {
    obs.refresh
        .is_none_or(|v| obs.status.observed_refresh.as_deref() == Some(&*refresh::observed_form(v)))
}

/// A refresh value the operator does not serve (too long, control characters) is answered once,
/// whatever the grant's state, and changes nothing else.
fn refused_refresh(obs: &Observed, answered: bool) -> Option<Decision> {
    if answered {
        return None;
    }
    let why = refresh::refusal(obs.refresh?)?;
    Some(Decision::Write(Box::new(refresh_refused(obs, why))))
}

/// Past the grant's ttl: `Closed` once, then quiet.
fn closing(
    obs: &Observed,
    now: Timestamp,
    closes_at: Option<Timestamp>,
    answered: bool,
) -> Option<Decision> {
    if closes_at.is_none_or(|deadline| now < deadline) {
        return None;
    }
    Some(if obs.status.phase == Some(Phase::Closed) && answered {
        Decision::Wait(None)
    } else {
        Decision::Write(Box::new(closed(obs, now)))
    })
}

/// A spec the operator cannot use: `Failed` once per generation, naming the field.
fn invalid(obs: &Observed, now: Timestamp, answered: bool) -> Option<Decision> {
    let message = validate::spec(obs.spec).err()?;
    let status = obs.status;
    let already = status.phase == Some(Phase::Failed)
        && status.observed_generation == Some(obs.generation)
        && answered
        && status
            .last_error
            .as_ref()
            .is_some_and(|e| e.code == INVALID_SPEC);
    Some(if already {
        Decision::Wait(None)
    } else {
        Decision::Write(Box::new(invalid_spec(obs, message, now)))
    })
}

/// A new spec or a new refresh value asks for a URL whatever the phase.
fn asked_for(obs: &Observed, answered: bool) -> Option<IssueCause> {
    let status = obs.status;
    if status.observed_generation != Some(obs.generation) {
        return Some(if status.phase.is_none() {
            IssueCause::First
        } else {
            IssueCause::SpecChanged
        });
    }
    (!answered).then_some(IssueCause::RefreshRequested)
}

/// What the phase leads to at `now`: the next expiry, a due retry, or a wait.
fn by_phase(obs: &Observed, now: Timestamp, closes_at: Option<Timestamp>) -> Decision {
    let status = obs.status;
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

/// Settles on a phase that only a changed spec leaves (`Failed` for an invalid spec, `Closed`):
/// no URL, no retry, nothing to wake for.
fn settled(
    mut status: VncSessionStatus,
    obs: &Observed,
    phase: Phase,
    note: Note,
    now: Timestamp,
) -> Update {
    leave_ready(&mut status, phase, false);
    status.retry_at = None;
    Update::announcing(status, obs, note, now, None)
}

fn invalid_spec(obs: &Observed, message: String, now: Timestamp) -> Update {
    let mut status = answered(obs);
    status.observed_generation = Some(obs.generation);
    status.last_error = Some(LastError {
        code: INVALID_SPEC.to_owned(),
        message: super::message::clip(&message, super::message::MESSAGE_MAX_BYTES),
    });
    let note = Note::warning(Reason::IssueFailed, message);
    settled(status, obs, Phase::Failed, note, now)
}

fn closed(obs: &Observed, now: Timestamp) -> Update {
    let message = format!(
        "the grant's ttl of {} has passed; no more console URLs",
        obs.spec.ttl.as_deref().unwrap_or_default()
    );
    let note = Note::normal(Reason::Closed, message);
    settled(answered(obs), obs, Phase::Closed, note, now)
}

/// In the grant's last `urlValidity`, asked for a URL: `Closed` now, since any URL would still
/// open connections after the grant ends.
fn closed_early(obs: &Observed, now: Timestamp, deadline: Timestamp) -> Update {
    let mut status = answered(obs);
    status.observed_generation = Some(obs.generation);
    let message = format!(
        "the grant ends at {} (ttl {}), before a URL issued now would stop opening connections \
         ({}); no more console URLs",
        expiry::rfc3339(deadline),
        obs.spec.ttl.as_deref().unwrap_or_default(),
        expiry::rfc3339(expiry::add(now, obs.url_validity)),
    );
    let note = Note::warning(Reason::Closed, message);
    settled(status, obs, Phase::Closed, note, now)
}

fn url_expired(obs: &Observed, now: Timestamp) -> Update {
    let mut status = obs.status.clone();
    leave_ready(&mut status, Phase::UrlExpired, true);
    let session_end = status.session_expires_at.as_ref().map(|t| t.0);
    let message = format!(
        "the console URL no longer opens connections; a connection opened in time lasts at most until {}",
        session_end.map(expiry::rfc3339).unwrap_or_default()
    );
    Update::announcing(
        status,
        obs,
        Note::normal(Reason::UrlExpired, message),
        now,
        earliest(session_end, ttl_deadline(obs)),
    )
}

fn expired(obs: &Observed, now: Timestamp) -> Update {
    let mut status = obs.status.clone();
    leave_ready(&mut status, Phase::Expired, true);
    let message = "the console session has expired; refresh to get a new URL".to_owned();
    Update::announcing(
        status,
        obs,
        Note::normal(Reason::SessionExpired, message),
        now,
        ttl_deadline(obs),
    )
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
        note: Some(Note::warning(Reason::RefreshIgnored, message)),
        wake_at: None,
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
