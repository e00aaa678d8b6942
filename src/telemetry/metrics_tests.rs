//! Unit tests of `metrics.rs`.

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

#[test]
fn failures_and_sts_exchanges_are_present_from_the_start_at_zero() {
    let text = Metrics::new().encode();
    for (stage, code) in FAILURES_FROM_THE_START {
        let line = format!(
            r#"ecsvnc_issue_failures_total{{stage="{}",code="{code}"}} 0"#,
            stage.as_str()
        );
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
    for outcome in ["ok", "refused", "error"] {
        let line = format!(r#"ecsvnc_sts_exchanges_total{{outcome="{outcome}"}} 0"#);
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
}

#[test]
fn failures_are_counted_by_stage_and_code() {
    let m = Metrics::new();
    let failed = |code: &str| Outcome::Failed {
        code: code.to_owned(),
        message: "a message never becomes a label".to_owned(),
        retryable: false,
        is_windows: None,
    };
    m.issue_outcome(Stage::Spec, &failed("EndpointNotAllowed"));
    m.issue_outcome(Stage::Spec, &failed("EndpointNotAllowed"));
    m.issue_outcome(
        Stage::Credentials,
        &Outcome::CredentialsNotFound {
            message: "Secret web-1 not found".to_owned(),
        },
    );
    m.issue_outcome(
        Stage::Credentials,
        &failed("AuthenticationFail.NoPermission"),
    );
    m.issue_outcome(Stage::Ecs, &failed("IncorrectInstanceStatus"));
    // Not failures: nothing is counted.
    m.issue_outcome(
        Stage::Ecs,
        &Outcome::Paced {
            free_at: jiff::Timestamp::UNIX_EPOCH,
            is_windows: None,
        },
    );
    let text = m.encode();
    for line in [
        r#"ecsvnc_issue_failures_total{stage="spec",code="EndpointNotAllowed"} 2"#,
        r#"ecsvnc_issue_failures_total{stage="credentials",code="CredentialsNotFound"} 1"#,
        r#"ecsvnc_issue_failures_total{stage="credentials",code="AuthenticationFail.NoPermission"} 1"#,
        r#"ecsvnc_issue_failures_total{stage="ecs",code="IncorrectInstanceStatus"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
    assert!(!text.contains("message"), "{text}");
    let failures = text
        .lines()
        .filter(|l| l.starts_with("ecsvnc_issue_failures_total{"))
        .count();
    // The seven from the start, and the two codes that were not among them.
    assert_eq!(failures, FAILURES_FROM_THE_START.len() + 2, "{text}");
}

#[test]
fn the_operators_own_codes_stay_labels_after_invented_ones_fill_the_bound() {
    let m = Metrics::new();
    for i in 0..200 {
        m.issue_failed(Stage::Ecs, &format!("Invented{i}"));
    }
    m.issue_failed(Stage::Ecs, "Timeout");
    m.issue_failed(Stage::Ecs, "Invented199");
    m.issue_failed(Stage::Ecs, "wss://x?token=1");
    let text = m.encode();
    assert!(
        text.contains(r#"ecsvnc_issue_failures_total{stage="ecs",code="Timeout"} 1"#),
        "{text}"
    );
    // 136 invented codes past the bound, one that is no identifier, and Invented199 again.
    assert!(
        text.contains(r#"ecsvnc_issue_failures_total{stage="ecs",code="Other"} 138"#),
        "{text}"
    );
    let codes: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("ecsvnc_issue_failures_total{"))
        .filter_map(|l| l.split("code=\"").nth(1)?.split('"').next())
        .collect();
    assert!(
        codes.len() <= MAX_CODE_LABELS + OPERATOR_CODES.len() + 1,
        "{codes:?}"
    );
}

#[test]
fn decided_failures_are_counted_and_nothing_else_written_without_a_call_is() {
    use crate::session::crd::{LastError, VncSessionStatus};
    use crate::session::decide::{INVALID_SPEC, Note};
    let update = |reason: Reason, code: Option<&str>| Update {
        status: VncSessionStatus {
            last_error: code.map(|c| LastError {
                code: c.to_owned(),
                message: "spec.instanceId is not an instance id".to_owned(),
            }),
            ..Default::default()
        },
        note: Some(Note {
            reason,
            warning: true,
            message: "free text".to_owned(),
        }),
        wake_at: None,
    };
    let m = Metrics::new();
    m.decided(&update(Reason::IssueFailed, Some(INVALID_SPEC)));
    m.decided(&update(Reason::RefreshIgnored, None));
    m.decided(&update(Reason::RefreshIgnored, None));
    // An expiry keeps an earlier failure's lastError: no new failure.
    m.decided(&update(
        Reason::SessionExpired,
        Some("IncorrectInstanceStatus"),
    ));
    m.decided(&update(Reason::Closed, None));
    let text = m.encode();
    for line in [
        r#"ecsvnc_issue_failures_total{stage="spec",code="InvalidSpec"} 1"#,
        r#"ecsvnc_issue_failures_total{stage="spec",code="RefreshIgnored"} 2"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
    assert!(!text.contains("IncorrectInstanceStatus"), "{text}");
}

#[test]
fn sts_exchanges_are_counted_by_outcome() {
    let m = Metrics::new();
    m.sts_exchanged(StsOutcome::Ok);
    m.sts_exchanged(StsOutcome::Refused);
    m.sts_exchanged(StsOutcome::Refused);
    let text = m.encode();
    for line in [
        r#"ecsvnc_sts_exchanges_total{outcome="ok"} 1"#,
        r#"ecsvnc_sts_exchanges_total{outcome="refused"} 2"#,
        r#"ecsvnc_sts_exchanges_total{outcome="error"} 0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
}

/// Every code the controller and the clients make up themselves, as their sources spell it: in
/// a `code: "…"` field or a `const CODE_…: &str = "…"` (and `ENDPOINT_NOT_ALLOWED`).
fn codes_in(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines().map(str::trim) {
        let literal = if let Some(rest) = line.split_once("code: \"").map(|(_, r)| r) {
            rest
        } else if (line.contains("const CODE_") || line.contains("const ENDPOINT_NOT_ALLOWED"))
            && line.contains(": &str = \"")
        {
            line.split_once(": &str = \"").unwrap().1
        } else {
            continue;
        };
        if let Some(code) = literal.split('"').next() {
            out.push(code.to_owned());
        }
    }
    out
}

#[test]
fn every_code_the_operator_makes_is_one_of_its_fixed_codes() {
    let sources = [
        (
            "src/controller/issue.rs",
            include_str!("../controller/issue.rs"),
        ),
        (
            "src/controller/credentials/keyless.rs",
            include_str!("../controller/credentials/keyless.rs"),
        ),
        (
            "src/aliyun/error/codes.rs",
            include_str!("../aliyun/error/codes.rs"),
        ),
        (
            "src/aliyun/sts/error.rs",
            include_str!("../aliyun/sts/error.rs"),
        ),
    ];
    let mut seen = 0;
    for (file, text) in sources {
        // Only the code before the file's unit tests.
        let text = text.split("#[cfg(test)]").next().unwrap();
        for code in codes_in(text) {
            seen += 1;
            assert!(
                OPERATOR_CODES.contains(&code.as_str()),
                "{file} makes the code {code:?}, which OPERATOR_CODES in metrics.rs lacks"
            );
        }
    }
    assert!(seen >= 12, "the scan found the codes ({seen})");
    for code in [
        crate::session::decide::INVALID_SPEC,
        Reason::RefreshIgnored.as_str(),
        Reason::CredentialsNotFound.as_str(),
    ] {
        assert!(OPERATOR_CODES.contains(&code), "{code}");
    }
    for (_, code) in FAILURES_FROM_THE_START {
        assert!(OPERATOR_CODES.contains(&code), "{code}");
    }
}
