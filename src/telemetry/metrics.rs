//! Prometheus metrics (OpenMetrics text). Labels are fixed words or ECS error codes checked to be
//! identifiers: never a credential, URL or free text.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::aliyun::Observer;
use crate::session::crd::Phase;

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
            registry: Registry::default(),
            codes: Default::default(),
        };
        registry.register(
            "reconciles",
            "Reconciles by result (ok, error)",
            m.reconciles.clone(),
        );
        registry.register(
            "ecs_requests",
            "ECS request attempts by action and answer code (Success for 200)",
            m.ecs_requests.clone(),
        );
        registry.register(
            "ecs_retries",
            "ECS requests that retried an earlier failed one",
            m.ecs_retries.clone(),
        );
        // Present from the start (HELP, TYPE and a 0), so dashboards and alerts see the series
        // before the first retry.
        for action in ["DescribeInstanceVncUrl", "DescribeInstances"] {
            let _ = m.ecs_retries.get_or_create(&ActionLabel { action });
        }
        registry.register(
            "url_issue_duration_seconds",
            "From deciding to issue a console URL to its status being written",
            m.issue_seconds.clone(),
        );
        registry.register("sessions", "VncSessions by phase", m.sessions.clone());
        registry.register(
            "throttled_issues",
            "Issues held back by the per-instance limit (ECS Throttling answers included)",
            m.throttled.clone(),
        );
        registry.register(
            "leader",
            "1 while this process serves (holds the leader Lease, or runs without leader election)",
            m.leader.clone(),
        );
        Self { registry, ..m }
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

    /// `code` as a label: well-formed and among the first [`MAX_CODE_LABELS`] seen, else `Other`.
    fn code_label(&self, code: &str) -> String {
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
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_ecs_attempts_by_action_and_code_and_retries() {
        let m = Arc::new(Metrics::new());
        let observer = m.ecs_observer();
        let client_options = crate::aliyun::ClientOptions {
            observer,
            ..Default::default()
        };
        let observe = format!("{:?}", client_options.observer);
        assert_eq!(observe, "Observer(set)");
        m.ecs_requests
            .get_or_create(&EcsLabels {
                action: "DescribeInstanceVncUrl",
                code: "Success".into(),
            })
            .inc();
        let text = m.encode();
        assert!(
            text.contains(
                r#"ecsvnc_ecs_requests_total{action="DescribeInstanceVncUrl",code="Success"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn odd_codes_do_not_become_labels() {
        assert_eq!(label_safe("Throttling.User"), "Throttling.User");
        assert_eq!(label_safe("wss://x?s=1"), "Other");
        assert_eq!(label_safe(""), "Other");
        assert_eq!(label_safe(&"A".repeat(65)), "Other");
    }

    #[test]
    fn invented_codes_do_not_grow_the_labels_without_bound() {
        let m = Metrics::new();
        for i in 0..1000 {
            assert!(!m.code_label(&format!("Invented{i}")).is_empty());
        }
        assert_eq!(m.code_label("Invented5"), "Invented5", "seen early: kept");
        assert_eq!(m.code_label("Invented999"), "Other");
        assert_eq!(m.codes.lock().unwrap().len(), MAX_CODE_LABELS);
    }

    #[test]
    fn sessions_by_phase_are_recounted() {
        let m = Metrics::new();
        m.set_sessions([Some(Phase::Ready), Some(Phase::Ready), Some(Phase::Expired)]);
        let text = m.encode();
        assert!(
            text.contains(r#"ecsvnc_sessions{phase="Ready"} 2"#),
            "{text}"
        );
        m.set_sessions([Some(Phase::Expired)]);
        let text = m.encode();
        assert!(
            text.contains(r#"ecsvnc_sessions{phase="Ready"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"ecsvnc_sessions{phase="Expired"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn output_is_openmetrics() {
        let m = Metrics::new();
        m.reconciled(true);
        m.url_issued(0.02);
        let text = m.encode();
        assert!(
            text.contains(r#"ecsvnc_reconciles_total{result="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("ecsvnc_url_issue_duration_seconds_count 1"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
