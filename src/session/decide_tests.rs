use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::session::crd::{Condition, CredentialsRef, VncSessionSpec};
use crate::session::expiry::Limits;

const T0: &str = "2026-11-26T08:00:00Z";

fn at(offset_secs: i64) -> Timestamp {
    T0.parse::<Timestamp>().unwrap() + jiff::SignedDuration::from_secs(offset_secs)
}

fn spec() -> VncSessionSpec {
    VncSessionSpec {
        region_id: "cn-hangzhou".into(),
        instance_id: "i-bp1hzoinajzkh91h1234".into(),
        credentials_ref: Some(CredentialsRef {
            name: "ecs-credentials".into(),
        }),
        service_account_ref: None,
        is_windows: None,
        reason: Some("INC-42 disk full".into()),
        ttl: None,
        endpoint: None,
    }
}

/// One session as the controller would see it, built up step by step.
struct Session {
    spec: VncSessionSpec,
    status: VncSessionStatus,
    generation: i64,
    refresh: Option<String>,
    credentials_version: Option<String>,
}

impl Session {
    fn new() -> Self {
        Self {
            spec: spec(),
            status: VncSessionStatus::default(),
            generation: 1,
            refresh: None,
            credentials_version: Some("100".into()),
        }
    }

    fn obs(&self) -> Observed<'_> {
        Observed {
            spec: &self.spec,
            status: &self.status,
            generation: self.generation,
            refresh: self.refresh.as_deref(),
            created_at: at(0),
            credentials_version: self.credentials_version.as_deref(),
            url_validity: Limits::default().url_validity,
        }
    }

    fn decide(&self, t: i64) -> Decision {
        decide(&self.obs(), at(t))
    }

    fn apply(&mut self, cause: IssueCause, outcome: Outcome, t: i64) -> Update {
        let update = after_issue(&self.obs(), cause, outcome, at(t), Limits::default(), 0.5);
        self.status = round_trip(&update.status);
        update
    }

    fn write(&mut self, d: Decision) -> Update {
        match d {
            Decision::Write(update) => {
                self.status = round_trip(&update.status);
                *update
            }
            other => panic!("expected a status write, got {other:?}"),
        }
    }

    /// A session that was issued a URL at `t`.
    fn issued_at(t: i64) -> Self {
        let mut s = Self::new();
        s.apply(IssueCause::First, issued(t), t);
        s
    }
}

/// The status as the API server stores it and the next reconcile reads it back: JSON, whole
/// seconds. Decisions must hold on that, not on the exact in-memory instants.
fn round_trip(status: &VncSessionStatus) -> VncSessionStatus {
    serde_json::from_value(serde_json::to_value(status).unwrap()).unwrap()
}

fn issued(t: i64) -> Outcome {
    Outcome::Issued {
        vnc_url: "wss%3A%2F%2Fproxy%2Fwebsockify%2F%3Fs%3Dtoken".into(),
        console_url: "https://console/?vncUrl=wss%3A%2F%2Fproxy&instanceId=i-1&isWindows=false"
            .into(),
        request_id: "REQ-1".into(),
        sent_at: at(t),
        is_windows: false,
    }
}

fn failed(code: &str, retryable: bool) -> Outcome {
    failed_os(code, retryable, None)
}

/// A failure of an attempt that learned (or already knew) the instance's OS first.
fn failed_os(code: &str, retryable: bool, is_windows: Option<bool>) -> Outcome {
    Outcome::Failed {
        code: code.into(),
        message: format!("{code} happened"),
        retryable,
        is_windows,
    }
}

fn ready(status: &VncSessionStatus) -> &Condition {
    status.ready_condition().expect("a Ready condition")
}

fn condition<'a>(status: &'a VncSessionStatus, type_: &str) -> &'a Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("a {type_} condition"))
}

#[test]
fn a_new_session_asks_for_its_first_url() {
    assert_eq!(Session::new().decide(0), Decision::Issue(IssueCause::First));
}

#[test]
fn an_issued_url_makes_the_session_ready_with_exact_expiry() {
    let mut s = Session::new();
    let update = s.apply(IssueCause::First, issued(3), 4);
    let st = &update.status;
    assert_eq!(st.phase, Some(Phase::Ready));
    assert!(!st.refreshable);
    assert_eq!(st.issued_at, Some(Time(at(3))));
    assert_eq!(st.url_expires_at, Some(Time(at(18))));
    assert_eq!(st.session_expires_at, Some(Time(at(318))));
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!(st.refresh_count, 0);
    assert_eq!(st.request_id.as_deref(), Some("REQ-1"));
    assert!(st.console_url.is_some() && st.vnc_url.is_some());
    assert_eq!(ready(st).status, "True");
    assert_eq!(ready(st).reason, "UrlIssued");
    assert_eq!(update.wake_at, Some(at(18)));
    let note = update.note.unwrap();
    assert_eq!(note.reason, Reason::UrlIssued);
    assert!(
        note.message.contains("INC-42 disk full"),
        "the reason is recorded"
    );
    assert!(!note.message.contains("wss"), "no URL in Events");
    assert!(!ready(st).message.contains("wss"), "no URL in conditions");
}

#[test]
fn sub_second_send_times_round_down() {
    let mut s = Session::new();
    let sent = at(3) + jiff::SignedDuration::from_millis(999);
    let outcome = match issued(3) {
        Outcome::Issued {
            sent_at: _,
            vnc_url,
            console_url,
            request_id,
            is_windows,
        } => Outcome::Issued {
            sent_at: sent,
            vnc_url,
            console_url,
            request_id,
            is_windows,
        },
        _ => unreachable!(),
    };
    let update = s.apply(IssueCause::First, outcome, 4);
    assert_eq!(update.status.url_expires_at, Some(Time(at(18))));
}

#[test]
fn ready_waits_until_the_window_closes() {
    let s = Session::issued_at(0);
    assert_eq!(s.decide(1), Decision::Wait(Some(at(15))));
    assert_eq!(s.decide(14), Decision::Wait(Some(at(15))));
}

#[test]
fn at_exactly_15_seconds_the_url_has_expired() {
    let mut s = Session::issued_at(0);
    let update = s.write(s.decide(15));
    assert_eq!(update.status.phase, Some(Phase::UrlExpired));
    assert!(update.status.refreshable);
    assert_eq!(
        update.status.console_url, None,
        "URL cleared when leaving Ready"
    );
    assert_eq!(update.status.vnc_url, None);
    assert_eq!(update.wake_at, Some(at(315)));
    assert_eq!(update.note.unwrap().reason, Reason::UrlExpired);
    // The grant is still in force (kstatus: Current); only the URL stopped working.
    assert_eq!(ready(&update.status).status, "True");
    assert_eq!(condition(&update.status, "UrlValid").status, "False");
    assert_eq!(condition(&update.status, "UrlValid").reason, "UrlExpired");
    assert_eq!(condition(&update.status, "Stalled").status, "False");
}

#[test]
fn url_expired_waits_for_the_keepalive_then_expires_at_exactly_300_seconds_after_the_window() {
    let mut s = Session::issued_at(0);
    s.write(s.decide(15));
    assert_eq!(s.decide(314), Decision::Wait(Some(at(315))));
    let update = s.write(s.decide(315));
    assert_eq!(update.status.phase, Some(Phase::Expired));
    assert!(update.status.refreshable);
    assert_eq!(update.wake_at, None);
    assert_eq!(update.note.unwrap().reason, Reason::SessionExpired);
}

#[test]
fn a_ready_session_seen_late_goes_straight_to_expired() {
    let mut s = Session::issued_at(0);
    let update = s.write(s.decide(1000));
    assert_eq!(update.status.phase, Some(Phase::Expired));
    assert_eq!(update.status.console_url, None);
}

#[test]
fn an_expired_session_stays_quiet() {
    let mut s = Session::issued_at(0);
    s.write(s.decide(1000));
    for t in [1000, 5000, 1_000_000] {
        assert_eq!(s.decide(t), Decision::Wait(None));
    }
}

#[test]
fn each_refresh_value_is_served_exactly_once() {
    let mut s = Session::issued_at(0);
    s.write(s.decide(1000));
    s.refresh = Some("a".into());
    assert_eq!(
        s.decide(1001),
        Decision::Issue(IssueCause::RefreshRequested)
    );
    let update = s.apply(IssueCause::RefreshRequested, issued(1001), 1001);
    assert_eq!(update.status.observed_refresh.as_deref(), Some("a"));
    assert_eq!(update.status.refresh_count, 1);
    assert_eq!(update.note.unwrap().reason, Reason::RefreshRequested);
    assert_eq!(s.decide(1002), Decision::Wait(Some(at(1016))));
    s.refresh = Some("b".into());
    assert_eq!(
        s.decide(1002),
        Decision::Issue(IssueCause::RefreshRequested)
    );
}

#[test]
fn removing_the_annotation_asks_for_nothing() {
    let mut s = Session::issued_at(0);
    s.refresh = Some("a".into());
    s.apply(IssueCause::RefreshRequested, issued(5), 5);
    s.refresh = None;
    assert_eq!(s.decide(6), Decision::Wait(Some(at(20))));
}

#[test]
fn a_new_generation_issues_a_new_url() {
    let mut s = Session::issued_at(0);
    s.write(s.decide(1000));
    s.generation = 2;
    assert_eq!(s.decide(1001), Decision::Issue(IssueCause::SpecChanged));
}

#[test]
fn ttl_closes_the_grant_at_the_exact_instant() {
    let mut s = Session::issued_at(0);
    s.spec.ttl = Some("30m".into());
    s.write(s.decide(15));
    s.write(s.decide(315));
    assert_eq!(s.decide(316), Decision::Wait(Some(at(1800))));
    assert_eq!(s.decide(1799), Decision::Wait(Some(at(1800))));
    let update = s.write(s.decide(1800));
    assert_eq!(update.status.phase, Some(Phase::Closed));
    assert!(!update.status.refreshable);
    assert_eq!(update.note.unwrap().reason, Reason::Closed);
    assert_eq!(s.decide(1801), Decision::Wait(None));
}

#[test]
fn a_closed_grant_issues_nothing_even_when_asked() {
    let mut s = Session::issued_at(0);
    s.spec.ttl = Some("1m".into());
    s.write(s.decide(60));
    s.refresh = Some("please".into());
    let answer = s.write(s.decide(61));
    assert_eq!(
        answer.status.phase,
        Some(Phase::Closed),
        "answered, with no URL"
    );
    assert_eq!(answer.status.observed_refresh.as_deref(), Some("please"));
    assert_eq!(s.decide(62), Decision::Wait(None), "answered once");
    let mut fresh = Session::new();
    fresh.spec.ttl = Some("1m".into());
    assert!(
        matches!(fresh.decide(60), Decision::Write(u) if u.status.phase == Some(Phase::Closed))
    );
}

#[test]
fn no_url_is_issued_whose_window_would_outlive_the_grant() {
    // ttl 30m, URLs open connections for 15 s: a refresh at 1785 s is the last one served.
    let mut s = Session::issued_at(0);
    s.spec.ttl = Some("30m".into());
    s.write(s.decide(15));
    s.write(s.decide(315));
    s.refresh = Some("last".into());
    assert_eq!(
        s.decide(1785),
        Decision::Issue(IssueCause::RefreshRequested)
    );
    s.refresh = Some("too-late".into());
    let update = s.write(s.decide(1786));
    assert_eq!(update.status.phase, Some(Phase::Closed), "nothing issued");
    assert_eq!(update.status.observed_refresh.as_deref(), Some("too-late"));
    let note = update.note.unwrap();
    assert_eq!((note.reason, note.warning), (Reason::Closed, true));
    assert!(
        note.message.contains("before a URL issued now would stop"),
        "{}",
        note.message
    );
    assert_eq!(s.decide(1787), Decision::Wait(Some(at(1800))));
    assert_eq!(s.decide(1800), Decision::Wait(None), "closed once, quietly");
    // A grant shorter than one URL's window never issues one.
    let mut short = Session::new();
    short.spec.ttl = Some("10s".into());
    assert!(matches!(short.decide(0), Decision::Write(u) if u.status.phase == Some(Phase::Closed)));
}

#[test]
fn a_closing_ready_session_drops_its_url() {
    let mut s = Session::issued_at(0);
    s.spec.ttl = Some("10s".into());
    assert_eq!(s.decide(5), Decision::Wait(Some(at(10))));
    let update = s.write(s.decide(10));
    assert_eq!(update.status.phase, Some(Phase::Closed));
    assert_eq!(update.status.console_url, None);
}

#[test]
fn the_ttl_bounds_every_wait() {
    let mut s = Session::new();
    s.spec.ttl = Some("10s".into());
    let update = s.apply(IssueCause::First, issued(0), 0);
    assert_eq!(update.wake_at, Some(at(10)));
}

#[test]
fn an_invalid_spec_fails_once_naming_the_field() {
    let mut s = Session::new();
    s.spec.instance_id = "bogus".into();
    let update = s.write(s.decide(0));
    assert_eq!(update.status.phase, Some(Phase::Failed));
    assert!(!update.status.refreshable);
    let err = update.status.last_error.clone().unwrap();
    assert_eq!(err.code, "InvalidSpec");
    assert!(err.message.contains("spec.instanceId"), "{}", err.message);
    assert_eq!(update.note.unwrap().reason, Reason::IssueFailed);
    assert_eq!(s.decide(1), Decision::Wait(None), "no rewrite loop");
    s.refresh = Some("try".into());
    let answer = s.write(s.decide(2));
    assert_eq!(
        answer.status.observed_refresh.as_deref(),
        Some("try"),
        "a refresh is answered"
    );
    assert_eq!(answer.status.phase, Some(Phase::Failed));
    assert_eq!(s.decide(3), Decision::Wait(None));
    s.spec.instance_id = "i-good".into();
    s.generation = 2;
    assert_eq!(s.decide(2), Decision::Issue(IssueCause::SpecChanged));
}

#[test]
fn every_spec_field_is_checked() {
    type Breaker = fn(&mut VncSessionSpec);
    let cases: [(&str, Breaker); 5] = [
        ("spec.regionId", |s| s.region_id = "Hangzhou".into()),
        ("spec.ttl", |s| s.ttl = Some("forever".into())),
        ("spec.endpoint", |s| s.endpoint = Some("ftp://x".into())),
        ("spec.reason", |s| s.reason = Some("x".repeat(1025))),
        ("spec.credentialsRef.name", |s| {
            s.credentials_ref = Some(CredentialsRef {
                name: "other/secret".into(),
            })
        }),
    ];
    for (field, break_it) in cases {
        let mut s = Session::new();
        break_it(&mut s.spec);
        let update = s.write(s.decide(0));
        let message = update.status.last_error.unwrap().message;
        assert!(message.contains(field), "{field}: {message}");
    }
}

#[test]
fn a_retryable_failure_backs_off_and_retries() {
    let mut s = Session::new();
    let update = s.apply(IssueCause::First, failed("InternalError", true), 0);
    assert_eq!(update.status.phase, Some(Phase::Failed));
    assert!(
        update.status.refreshable,
        "Failed with a retryable cause is refreshable"
    );
    assert_eq!(update.status.consecutive_failures, 1);
    let retry_at = update.wake_at.unwrap();
    assert_eq!(update.status.retry_at, Some(Time(retry_at)));
    assert!(retry_at > at(0) && retry_at <= at(2));
    assert_eq!(update.note.unwrap().reason, Reason::IssueFailed);
    assert_eq!(s.decide(0), Decision::Wait(Some(retry_at)));
    assert_eq!(
        decide(&s.obs(), retry_at),
        Decision::Issue(IssueCause::Retry)
    );
}

#[test]
fn retries_stop_after_a_bounded_number_of_attempts() {
    let mut s = Session::new();
    let mut t = 0;
    let mut update = s.apply(IssueCause::First, failed("ServiceUnavailable", true), t);
    let mut attempts = 1;
    while let Some(wake) = update.wake_at {
        t = wake.duration_since(at(0)).as_secs_f64().ceil() as i64;
        assert_eq!(s.decide(t), Decision::Issue(IssueCause::Retry));
        update = s.apply(IssueCause::Retry, failed("ServiceUnavailable", true), t);
        attempts += 1;
        assert!(
            attempts <= MAX_AUTOMATIC_RETRIES,
            "retry loop without a cap"
        );
    }
    assert_eq!(attempts, MAX_AUTOMATIC_RETRIES);
    assert_eq!(s.decide(t + 100_000), Decision::Wait(None));
    assert!(s.status.refreshable);
    let message = &ready(&s.status).message;
    assert!(message.contains("gave up"), "{message}");
    s.refresh = Some("again".into());
    assert_eq!(
        s.decide(t + 100_001),
        Decision::Issue(IssueCause::RefreshRequested)
    );
    // The refresh starts a fresh series: its failure is retried again, not given up at once.
    let update = s.apply(
        IssueCause::RefreshRequested,
        failed("ServiceUnavailable", true),
        t + 100_001,
    );
    assert_eq!(update.status.consecutive_failures, 1);
    let wake = update.wake_at.expect("a refresh that fails is retried");
    assert_eq!(decide(&s.obs(), wake), Decision::Issue(IssueCause::Retry));
}

#[test]
fn a_new_spec_or_new_credentials_also_start_a_fresh_retry_series() {
    for cause in [IssueCause::SpecChanged, IssueCause::CredentialsChanged] {
        let mut s = Session::new();
        for t in 0..(MAX_AUTOMATIC_RETRIES as i64) {
            s.apply(IssueCause::Retry, failed("InternalError", true), t);
        }
        assert_eq!(s.status.consecutive_failures, MAX_AUTOMATIC_RETRIES);
        let update = s.apply(cause, failed("InternalError", true), 100);
        assert_eq!(update.status.consecutive_failures, 1, "{cause:?}");
        assert!(update.wake_at.is_some(), "{cause:?} is retried");
    }
}

#[test]
fn the_os_learned_before_a_failure_is_kept_for_the_retry() {
    let mut s = Session::new();
    assert_eq!(known_os(&s.obs(), IssueCause::First), None);
    s.apply(
        IssueCause::First,
        failed_os("InternalError", true, Some(true)),
        0,
    );
    assert_eq!(s.status.is_windows, Some(true));
    assert_eq!(known_os(&s.obs(), IssueCause::Retry), Some(true));
    assert_eq!(known_os(&s.obs(), IssueCause::RefreshRequested), Some(true));
}

#[test]
fn a_new_spec_asks_for_the_os_again_unless_the_spec_says() {
    let mut s = Session::new();
    s.apply(IssueCause::First, issued(0), 0);
    assert_eq!(s.status.is_windows, Some(false));
    // The new generation may name another instance: the old answer is not reused.
    s.generation = 2;
    s.spec.instance_id = "i-another".into();
    assert_eq!(known_os(&s.obs(), IssueCause::SpecChanged), None);
    // If that attempt fails before learning anything, the old answer is gone for the retry too.
    s.apply(IssueCause::SpecChanged, failed("InternalError", true), 1);
    assert_eq!(s.status.is_windows, None);
    assert_eq!(known_os(&s.obs(), IssueCause::Retry), None);
    s.spec.is_windows = Some(true);
    assert_eq!(known_os(&s.obs(), IssueCause::SpecChanged), Some(true));
}

#[test]
fn backoff_grows_is_capped_and_jitter_stays_within_half() {
    assert_eq!(backoff(1, 1.0), Duration::from_secs(2));
    assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
    assert_eq!(backoff(4, 1.0), Duration::from_secs(16));
    assert_eq!(backoff(30, 1.0), Duration::from_secs(300));
    assert_eq!(backoff(u32::MAX, 0.0), Duration::from_secs(150));
    assert_eq!(backoff(2, f64::NAN), Duration::from_secs(2));
    assert_eq!(backoff(2, 7.0), Duration::from_secs(4));
}

#[test]
fn a_terminal_failure_waits_for_the_spec_or_the_secret() {
    let mut s = Session::new();
    let update = s.apply(
        IssueCause::First,
        failed("InvalidInstanceId.NotFound", false),
        0,
    );
    assert_eq!(update.wake_at, None);
    assert_eq!(update.status.credentials_version.as_deref(), Some("100"));
    assert_waits_for_a_changed_secret(&mut s, &update, 10_000, "101");
}

/// `update` is a failure no retry mends: it waits (at `later`, still) until the Secret changes
/// to `version`, and then issues again.
fn assert_waits_for_a_changed_secret(s: &mut Session, update: &Update, later: i64, version: &str) {
    assert_eq!(update.status.phase, Some(Phase::Failed));
    assert!(!update.status.refreshable);
    assert_eq!(s.decide(later), Decision::Wait(None));
    s.credentials_version = Some(version.into());
    assert_eq!(
        s.decide(later + 1),
        Decision::Issue(IssueCause::CredentialsChanged)
    );
}

#[test]
fn a_missing_secret_is_tried_again_once_it_exists() {
    let mut s = Session::new();
    s.credentials_version = None;
    let update = s.apply(
        IssueCause::First,
        Outcome::CredentialsNotFound {
            message: "Secret default/ecs-credentials not found".into(),
        },
        0,
    );
    assert_eq!(ready(&update.status).reason, "CredentialsNotFound");
    assert_eq!(
        update.note.as_ref().unwrap().reason,
        Reason::CredentialsNotFound
    );
    assert_waits_for_a_changed_secret(&mut s, &update, 60, "7");
}

#[test]
fn throttled_issues_wait_for_the_exact_free_slot() {
    let mut s = Session::new();
    let update = s.apply(
        IssueCause::First,
        Outcome::Throttled {
            free_at: at(42),
            limit: 30,
            is_windows: Some(false),
        },
        0,
    );
    assert_eq!(update.status.phase, Some(Phase::Pending));
    assert!(!update.status.refreshable);
    assert_eq!(update.wake_at, Some(at(42)));
    assert_eq!(update.note.unwrap().reason, Reason::Throttled);
    assert_eq!(ready(&update.status).reason, "Throttled");
    assert_eq!(
        update.status.consecutive_failures, 0,
        "throttling is not a failure"
    );
    assert_eq!(s.decide(41), Decision::Wait(Some(at(42))));
    assert_eq!(s.decide(42), Decision::Issue(IssueCause::Retry));
}

#[test]
fn a_throttled_session_never_wakes_before_its_sub_second_slot() {
    let mut s = Session::new();
    let free_at = at(42) + jiff::SignedDuration::from_millis(300);
    let update = s.apply(
        IssueCause::First,
        Outcome::Throttled {
            free_at,
            limit: 30,
            is_windows: Some(false),
        },
        0,
    );
    // Stored rounded up; read back from JSON it is still not before the slot.
    assert_eq!(update.wake_at, Some(at(43)));
    assert_eq!(s.status.retry_at, Some(Time(at(43))));
    assert_eq!(decide(&s.obs(), free_at), Decision::Wait(Some(at(43))));
    assert_eq!(s.decide(43), Decision::Issue(IssueCause::Retry));
}

#[test]
fn a_retry_time_read_back_from_json_is_not_early() {
    let mut s = Session::new();
    let now = at(0) + jiff::SignedDuration::from_millis(700);
    let update = after_issue(
        &s.obs(),
        IssueCause::First,
        failed("InternalError", true),
        now,
        Limits::default(),
        0.5,
    );
    let exact = update.wake_at.unwrap();
    s.status = round_trip(&update.status);
    assert!(s.status.retry_at.as_ref().unwrap().0 >= exact);
    assert!(matches!(decide(&s.obs(), now), Decision::Wait(_)));
}

#[test]
fn a_changed_secret_restarts_a_series_whose_retries_ran_out() {
    let mut s = Session::new();
    s.apply(IssueCause::First, failed("InternalError", true), 0);
    for i in 1..MAX_AUTOMATIC_RETRIES {
        s.apply(
            IssueCause::Retry,
            failed("InternalError", true),
            i64::from(i) * 400,
        );
    }
    assert_eq!(s.status.consecutive_failures, MAX_AUTOMATIC_RETRIES);
    assert_eq!(s.decide(10_000), Decision::Wait(None), "gave up");
    s.credentials_version = Some("101".into());
    assert_eq!(
        s.decide(10_000),
        Decision::Issue(IssueCause::CredentialsChanged)
    );
}

#[test]
fn ecs_throttling_codes_report_throttled() {
    let mut s = Session::new();
    let update = s.apply(IssueCause::First, failed("Throttling.User", true), 0);
    assert_eq!(update.note.unwrap().reason, Reason::Throttled);
    assert!(update.status.refreshable);
}

#[test]
fn success_after_failure_clears_the_error() {
    let mut s = Session::new();
    s.apply(IssueCause::First, failed("InternalError", true), 0);
    let update = s.apply(IssueCause::Retry, issued(3), 3);
    assert_eq!(update.status.last_error, None);
    assert_eq!(update.status.retry_at, None);
    assert_eq!(update.status.consecutive_failures, 0);
    assert_eq!(
        update.status.refresh_count, 0,
        "the first URL is not a refresh"
    );
}

#[test]
fn condition_transition_time_moves_only_when_the_status_flips() {
    let mut s = Session::issued_at(0);
    s.write(s.decide(15));
    assert_eq!(ready(&s.status).last_transition_time, Time(at(0)));
    let since = condition(&s.status, "UrlValid")
        .last_transition_time
        .clone();
    assert_eq!(since, Time(at(15)));
    s.write(s.decide(315));
    assert_eq!(condition(&s.status, "UrlValid").last_transition_time, since);
    assert_eq!(ready(&s.status).last_transition_time, Time(at(0)));
    assert_eq!(s.status.conditions.len(), 3, "Ready, UrlValid, Stalled");
}

#[test]
fn a_grant_that_cannot_work_is_stalled_and_a_retrying_one_is_not() {
    let mut s = Session::new();
    s.apply(
        IssueCause::First,
        failed("InvalidInstanceId.NotFound", false),
        0,
    );
    assert_eq!(condition(&s.status, "Stalled").status, "True");
    assert_eq!(condition(&s.status, "Stalled").reason, "IssueFailed");
    let mut s = Session::new();
    s.apply(IssueCause::First, failed("InternalError", true), 0);
    assert_eq!(condition(&s.status, "Stalled").status, "False");
    assert_eq!(ready(&s.status).status, "False");
}

#[test]
fn a_long_cjk_reason_reaches_the_event_within_its_byte_limit() {
    let mut s = Session::new();
    s.spec.reason = Some("磁盘已满需要紧急登录".repeat(100));
    let update = s.apply(IssueCause::First, issued(0), 0);
    let note = update.note.unwrap();
    assert!(note.message.len() <= 1024, "{} bytes", note.message.len());
    assert!(note.message.contains("; reason: 磁盘已满需要紧急登录"));
}

#[test]
fn an_absurd_error_code_from_an_endpoint_is_bounded() {
    let mut s = Session::new();
    let update = s.apply(IssueCause::First, failed(&"X".repeat(100_000), false), 0);
    assert!(update.status.last_error.unwrap().code.len() <= 128);
    assert!(update.note.unwrap().message.len() <= 1024);
    assert!(ready(&s.status).message.len() <= 1024);
}

#[test]
fn a_failure_message_without_request_id_does_not_change_between_retries() {
    let mut s = Session::new();
    let first = s.apply(IssueCause::First, failed("InternalError", true), 0);
    let second = s.apply(IssueCause::Retry, failed("InternalError", true), 5);
    assert_eq!(first.status.last_error, second.status.last_error);
}

#[test]
fn a_pending_status_without_a_retry_time_is_issued_again() {
    let mut s = Session::new();
    s.status.phase = Some(Phase::Pending);
    s.status.observed_generation = Some(1);
    assert_eq!(s.decide(0), Decision::Issue(IssueCause::Retry));
}

#[test]
fn a_refresh_served_after_waiting_for_a_slot_is_announced_as_the_refresh() {
    let mut s = Session::issued_at(0);
    s.refresh = Some("r1".into());
    s.apply(
        IssueCause::RefreshRequested,
        Outcome::Throttled {
            free_at: at(60),
            limit: 30,
            is_windows: Some(false),
        },
        20,
    );
    assert_eq!(s.decide(60), Decision::Issue(IssueCause::Retry));
    let update = s.apply(IssueCause::Retry, issued(60), 60);
    assert_eq!(update.note.unwrap().reason, Reason::RefreshRequested);
}

#[test]
fn a_paced_session_is_throttled_but_says_it_waits_for_the_account() {
    let mut s = Session::issued_at(0);
    s.refresh = Some("r1".into());
    let update = s.apply(
        IssueCause::RefreshRequested,
        Outcome::Paced {
            free_at: at(30),
            is_windows: Some(false),
        },
        20,
    );
    assert_eq!(update.note.unwrap().reason, Reason::Throttled);
    assert_eq!(s.status.last_error.as_ref().unwrap().code, PACED);
    assert_eq!(s.decide(25), Decision::Wait(Some(at(30))));
    assert_eq!(s.decide(30), Decision::Issue(IssueCause::Retry));
}
