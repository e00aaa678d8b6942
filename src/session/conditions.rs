//! The three conditions Git tooling reads (kstatus: Helm 4's and Flux's waits; `kubectl wait`),
//! derived from the phase so they can never disagree with it.
//!
//! - `Ready`: the grant is in force and its last request was served (a session at rest in
//!   `Expired` is done, not in progress).
//! - `UrlValid`: the console URL opens connections right now.
//! - `Stalled`: nothing will happen without a change by a person, so waits fail fast.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::crd::{Condition, Phase, VncSessionStatus};

pub const READY: &str = "Ready";
pub const URL_VALID: &str = "UrlValid";
pub const STALLED: &str = "Stalled";

/// Whether a person must act: the failure is terminal, retries ran out, or the grant closed.
pub fn stalled(status: &VncSessionStatus) -> bool {
    match status.phase {
        Some(Phase::Closed) => true,
        Some(Phase::Failed) => !status.refreshable || status.retry_at.is_none(),
        _ => false,
    }
}

/// Rewrites all three conditions for the status's phase; `reason` and `message` explain the
/// latest change. A condition's `lastTransitionTime` moves only when its status flips.
pub fn set(
    status: &mut VncSessionStatus,
    generation: i64,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let phase = status.phase;
    let ready = matches!(
        phase,
        Some(Phase::Ready | Phase::UrlExpired | Phase::Expired)
    );
    let url_valid = phase == Some(Phase::Ready);
    let stalled = stalled(status);
    for (type_, value) in [(READY, ready), (URL_VALID, url_valid), (STALLED, stalled)] {
        let value = if value { "True" } else { "False" };
        let since = status
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == value)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        let condition = Condition {
            type_: type_.to_owned(),
            status: value.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            last_transition_time: since,
            observed_generation: Some(generation),
        };
        match status.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(slot) => *slot = condition,
            None => status.conditions.push(condition),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(phase: Phase, refreshable: bool, retrying: bool) -> VncSessionStatus {
        VncSessionStatus {
            phase: Some(phase),
            refreshable,
            retry_at: retrying.then_some(Time(Timestamp::UNIX_EPOCH)),
            ..VncSessionStatus::default()
        }
    }

    fn values(s: &VncSessionStatus) -> Vec<(&str, &str)> {
        s.conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect()
    }

    #[test]
    fn each_phase_maps_to_the_kstatus_reading_it_means() {
        let cases = [
            (
                status(Phase::Pending, false, false),
                ["False", "False", "False"],
            ),
            (
                status(Phase::Ready, false, false),
                ["True", "True", "False"],
            ),
            (
                status(Phase::UrlExpired, true, false),
                ["True", "False", "False"],
            ),
            (
                status(Phase::Expired, true, false),
                ["True", "False", "False"],
            ),
            // A retry is scheduled: still in progress.
            (
                status(Phase::Failed, true, true),
                ["False", "False", "False"],
            ),
            // Retries ran out, or the cause is terminal: a person must act.
            (
                status(Phase::Failed, true, false),
                ["False", "False", "True"],
            ),
            (
                status(Phase::Failed, false, false),
                ["False", "False", "True"],
            ),
            (
                status(Phase::Closed, false, false),
                ["False", "False", "True"],
            ),
        ];
        for (mut s, [ready, url, stalled]) in cases {
            let phase = s.phase;
            set(&mut s, 3, "UrlIssued", "m", Timestamp::UNIX_EPOCH);
            assert_eq!(
                values(&s),
                [(READY, ready), (URL_VALID, url), (STALLED, stalled)],
                "{phase:?}"
            );
            assert!(
                s.conditions
                    .iter()
                    .all(|c| c.observed_generation == Some(3))
            );
        }
    }

    #[test]
    fn transition_time_moves_only_for_the_condition_that_flips() {
        let t0 = Timestamp::UNIX_EPOCH;
        let t1 = Timestamp::from_second(60).unwrap();
        let mut s = status(Phase::Ready, false, false);
        set(&mut s, 1, "UrlIssued", "m", t0);
        s.phase = Some(Phase::UrlExpired);
        set(&mut s, 1, "UrlExpired", "m", t1);
        let since = |t: &str| {
            s.conditions
                .iter()
                .find(|c| c.type_ == t)
                .unwrap()
                .last_transition_time
                .0
        };
        assert_eq!(since(READY), t0, "Ready stayed True");
        assert_eq!(since(URL_VALID), t1, "UrlValid flipped");
        assert_eq!(since(STALLED), t0, "Stalled stayed False");
        assert_eq!(s.conditions.len(), 3);
    }
}
