//! Prometheus metrics (OpenMetrics text). Labels are fixed words, the operator's own fixed codes,
//! or ECS (and STS) error codes checked to be identifiers and bounded in number: never a
//! credential, URL, name or free text.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::aliyun::Observer;
use crate::session::crd::Phase;
use crate::session::decide::{Outcome, Reason, Update};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EcsLabels {
    pub action: &'static str,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    pub phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub stage: &'static str,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

/// Where an issue failed. A failure before any ECS call is invisible in
/// `ecsvnc_ecs_requests_total`; this label is what the alerts tell it apart by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Refused before anything was looked up or sent: the spec, the refresh value, the region or
    /// the endpoint.
    Spec,
    /// No usable credentials: a Secret missing or unreadable, a ServiceAccount token or an STS
    /// exchange that failed, the operator's own credentials that could not be renewed.
    Credentials,
    /// ECS answered with an error, or the call failed (timeout, connection, garbled answer).
    Ecs,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Spec => "spec",
            Stage::Credentials => "credentials",
            Stage::Ecs => "ecs",
        }
    }
}

/// How an STS `AssumeRoleWithOIDC` exchange ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StsOutcome {
    /// Temporary credentials.
    Ok,
    /// STS said no in a way no retry cures (a role or trust policy that does not allow it).
    Refused,
    /// STS could not be asked or did not answer usefully (unreachable, timeout, 5xx,
    /// throttling, an expired token); retried with backoff.
    Error,
}

impl StsOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StsOutcome::Ok => "ok",
            StsOutcome::Refused => "refused",
            StsOutcome::Error => "error",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    /// The `code` labels in use: a hostile endpoint could invent a new code on every answer.
    codes: std::sync::Mutex<std::collections::HashSet<String>>,
    pub reconciles: Family<ResultLabel, Counter>,
    pub ecs_requests: Family<EcsLabels, Counter>,
    pub ecs_retries: Family<ActionLabel, Counter>,
    pub issue_seconds: Histogram,
    pub sessions: Family<PhaseLabel, Gauge>,
    pub throttled: Counter,
    pub leader: Gauge,
    pub issue_failures: Family<FailureLabels, Counter>,
    pub sts_exchanges: Family<OutcomeLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ecsvnc");
        let m = Self {
            reconciles: Family::default(),
            ecs_requests: Family::default(),
            ecs_retries: Family::default(),
            // 5 ms to ~10 s: a refresh is an ECS round trip plus a status write.
            issue_seconds: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            sessions: Family::default(),
            throttled: Counter::default(),
            leader: Gauge::default(),
            issue_failures: Family::default(),
            sts_exchanges: Family::default(),
            registry: Registry::default(),
            codes: Default::default(),
        };
        m.register(&mut registry);
        m.present_from_the_start();
        Self { registry, ..m }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "reconciles",
            "Reconciles by result (ok, error)",
            self.reconciles.clone(),
        );
        registry.register(
            "ecs_requests",
            "ECS request attempts by action and answer code (Success for 200)",
            self.ecs_requests.clone(),
        );
        registry.register(
            "ecs_retries",
            "ECS requests that retried an earlier failed one",
            self.ecs_retries.clone(),
        );
        registry.register(
            "url_issue_duration_seconds",
            "From deciding to issue a console URL to its status being written",
            self.issue_seconds.clone(),
        );
        registry.register("sessions", "VncSessions by phase", self.sessions.clone());
        registry.register(
            "throttled_issues",
            "Issues held back by the per-instance limit (ECS Throttling answers included)",
            self.throttled.clone(),
        );
        registry.register(
            "leader",
            "1 while this process serves (holds the leader Lease, or runs without leader election)",
            self.leader.clone(),
        );
        registry.register(
            "issue_failures",
            "Failed issues by stage (spec, credentials, ecs) and lastError code, ECS called or not",
            self.issue_failures.clone(),
        );
        registry.register(
            "sts_exchanges",
            "STS AssumeRoleWithOIDC exchanges for keyless sessions by outcome (ok, refused, error)",
            self.sts_exchanges.clone(),
        );
    }

    /// Series there (HELP, TYPE and a 0) before anything happened, so dashboards and alerts see
    /// them before the first retry or failure (`increase()` misses a series' first sample).
    fn present_from_the_start(&self) {
        for action in ["DescribeInstanceVncUrl", "DescribeInstances"] {
            let _ = self.ecs_retries.get_or_create(&ActionLabel { action });
        }
        for (stage, code) in FAILURES_FROM_THE_START {
            let _ = self.issue_failures.get_or_create(&FailureLabels {
                stage: stage.as_str(),
                code: code.to_owned(),
            });
        }
        for outcome in [StsOutcome::Ok, StsOutcome::Refused, StsOutcome::Error] {
            let _ = self.sts_exchanges.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
    }

    /// Counts every ECS attempt, for the client's `ClientOptions::observer`.
    pub fn ecs_observer(self: &std::sync::Arc<Self>) -> Observer {
        let metrics = self.clone();
        Observer::new(move |action, code, attempt| {
            metrics
                .ecs_requests
                .get_or_create(&EcsLabels {
                    action,
                    code: metrics.code_label(code),
                })
                .inc();
            if attempt > 1 {
                metrics
                    .ecs_retries
                    .get_or_create(&ActionLabel { action })
                    .inc();
            }
        })
    }

    /// `code` as a label: one of the operator's own codes; else well-formed and among the first
    /// [`MAX_CODE_LABELS`] other codes seen, else `Other`.
    fn code_label(&self, code: &str) -> String {
        if OPERATOR_CODES.contains(&code) {
            return code.to_owned();
        }
        let label = label_safe(code);
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        if codes.contains(&label) {
            return label;
        }
        if codes.len() >= MAX_CODE_LABELS {
            return "Other".to_owned();
        }
        codes.insert(label.clone());
        label
    }

    pub fn reconciled(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reconciles.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn url_issued(&self, seconds: f64) {
        self.issue_seconds.observe(seconds);
    }

    /// An issue the controller tried again after a retryable failure (its ECS client makes one
    /// attempt per call, so this is where retries happen).
    pub fn retried(&self, action: &'static str) {
        self.ecs_retries
            .get_or_create(&ActionLabel { action })
            .inc();
    }

    /// One failed issue, with the code its `lastError` (or Event) carries.
    pub fn issue_failed(&self, stage: Stage, code: &str) {
        self.issue_failures
            .get_or_create(&FailureLabels {
                stage: stage.as_str(),
                code: self.code_label(code),
            })
            .inc();
    }

    /// The outcome of an issue attempt that ended at `stage`; counted if it is a failure (a URL,
    /// a wait for the per-instance limit or for the account's pace is none).
    pub fn issue_outcome(&self, stage: Stage, outcome: &Outcome) {
        match outcome {
            Outcome::Failed { code, .. } => self.issue_failed(stage, code),
            Outcome::CredentialsNotFound { .. } => {
                self.issue_failed(stage, Reason::CredentialsNotFound.as_str());
            }
            Outcome::Issued { .. } | Outcome::Throttled { .. } | Outcome::Paced { .. } => {}
        }
    }

    /// A status written without an issue attempt: an unusable spec (`InvalidSpec`) or a refused
    /// refresh value (`RefreshIgnored`) is a failure that never reaches ECS.
    pub fn decided(&self, update: &Update) {
        let Some(note) = &update.note else {
            return;
        };
        match note.reason {
            Reason::RefreshIgnored => self.issue_failed(Stage::Spec, note.reason.as_str()),
            Reason::IssueFailed => {
                if let Some(error) = &update.status.last_error {
                    self.issue_failed(Stage::Spec, &error.code);
                }
            }
            _ => {}
        }
    }

    pub fn sts_exchanged(&self, outcome: StsOutcome) {
        self.sts_exchanges
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Replaces the per-phase gauges with a fresh count; a session without a status yet is
    /// `Pending`, as `kubectl vnc list` shows it.
    pub fn set_sessions(&self, phases: impl IntoIterator<Item = Option<Phase>>) {
        let mut counts = [0i64; PHASES.len()];
        for phase in phases {
            counts[phase_index(phase)] += 1;
        }
        for (i, count) in counts.iter().enumerate() {
            self.sessions
                .get_or_create(&PhaseLabel { phase: PHASES[i] })
                .set(*count);
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

const PHASES: [&str; 6] = [
    "Pending",
    "Ready",
    "UrlExpired",
    "Expired",
    "Failed",
    "Closed",
];

fn phase_index(phase: Option<Phase>) -> usize {
    match phase {
        None | Some(Phase::Pending) => 0,
        Some(Phase::Ready) => 1,
        Some(Phase::UrlExpired) => 2,
        Some(Phase::Expired) => 3,
        Some(Phase::Failed) => 4,
        Some(Phase::Closed) => 5,
    }
}

/// The codes the operator makes itself (a fixed set: never counted against
/// [`MAX_CODE_LABELS`]). `metrics_tests.rs` checks the codes the controller and the clients
/// write are all here.
pub const OPERATOR_CODES: [&str; 16] = [
    // Refused before anything is sent (src/session, src/controller/issue.rs).
    "InvalidSpec",
    "RefreshIgnored",
    "InvalidRegionId",
    "InvalidEndpoint",
    "EndpointNotAllowed",
    // Credentials (src/controller/issue.rs, src/controller/credentials/).
    "CredentialsNotFound",
    "SecretReadFailed",
    "TokenRequestFailed",
    "InvalidParameter",
    "OIDCTokenFileUnreadable",
    // A call that got no usable answer (src/aliyun/error/codes.rs).
    "Timeout",
    "ConnectionFailed",
    "MalformedResponse",
    "ResponseTooLarge",
    "RequestFailed",
    "ClientSetup",
];

/// The failures that make no ECS call and carry a fixed code: present at 0 from the start.
pub const FAILURES_FROM_THE_START: [(Stage, &str); 7] = [
    (Stage::Spec, "InvalidSpec"),
    (Stage::Spec, "RefreshIgnored"),
    (Stage::Spec, "InvalidRegionId"),
    (Stage::Spec, "InvalidEndpoint"),
    (Stage::Spec, "EndpointNotAllowed"),
    (Stage::Credentials, "CredentialsNotFound"),
    (Stage::Credentials, "SecretReadFailed"),
];

/// ECS codes are identifiers like `Throttling.User`; anything else (a hostile or broken endpoint
/// could send anything) becomes `Other` so labels stay few and free of text.
/// ECS has a few dozen codes for these two actions; more distinct ones means someone invents them.
const MAX_CODE_LABELS: usize = 64;

fn label_safe(code: &str) -> String {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    if ok {
        code.to_owned()
    } else {
        "Other".to_owned()
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
