//! What a decision writes: the status, the Event that goes with it and the reasons both carry,
//! and the steps every change of status shares (leaving `Ready`, setting the conditions).

use jiff::Timestamp;

use super::crd::{Phase, VncSessionStatus};
use super::message::{EVENT_NOTE_MAX_BYTES, clip};
use super::observed::Observed;
use super::{conditions, refresh};

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

/// `lastError.code` of a session whose spec the operator cannot use.
pub const INVALID_SPEC: &str = "InvalidSpec";
/// `lastError.code` of a session waiting for its turn under the account's flow control.
pub const PACED: &str = "Paced";

/// An Event to publish alongside a status change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub reason: Reason,
    pub warning: bool,
    pub message: String,
}

impl Note {
    pub(super) fn normal(reason: Reason, message: String) -> Self {
        Self::new(reason, false, message)
    }

    pub(super) fn warning(reason: Reason, message: String) -> Self {
        Self::new(reason, true, message)
    }

    fn new(reason: Reason, warning: bool, message: String) -> Self {
        Self {
            reason,
            warning,
            message: clip(&message, EVENT_NOTE_MAX_BYTES),
        }
    }
}

/// A status to write, the Event that goes with it, and when to look at the session again.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    pub status: VncSessionStatus,
    pub note: Option<Note>,
    pub wake_at: Option<Timestamp>,
}

impl Update {
    /// `status` with its conditions set to what the Event `note` says, and when to look again.
    pub(super) fn announcing(
        mut status: VncSessionStatus,
        obs: &Observed,
        note: Note,
        now: Timestamp,
        wake_at: Option<Timestamp>,
    ) -> Self {
        let note = announce(&mut status, obs, note, now);
        Self {
            status,
            note: Some(note),
            wake_at,
        }
    }
}

/// The status with the current refresh value marked as acted on.
pub(super) fn answered(obs: &Observed) -> VncSessionStatus {
    let mut status = obs.status.clone();
    if let Some(value) = obs.refresh {
        status.observed_refresh = Some(refresh::observed_form(value).into_owned());
    }
    status
}

/// Moves to a phase other than `Ready`: the URLs go with it.
pub(super) fn leave_ready(status: &mut VncSessionStatus, phase: Phase, refreshable: bool) {
    status.phase = Some(phase);
    status.console_url = None;
    status.vnc_url = None;
    status.refreshable = refreshable;
}

pub(super) fn set_conditions(
    status: &mut VncSessionStatus,
    obs: &Observed,
    reason: Reason,
    message: &str,
    now: Timestamp,
) {
    let message = clip(message, EVENT_NOTE_MAX_BYTES);
    conditions::set(status, obs.generation, reason.as_str(), &message, now);
}

/// Sets the conditions to what the Event `note` says and gives it back, so that the two never
/// disagree.
pub(super) fn announce(
    status: &mut VncSessionStatus,
    obs: &Observed,
    note: Note,
    now: Timestamp,
) -> Note {
    set_conditions(status, obs, note.reason, &note.message, now);
    note
}

pub(super) fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
