//! What the cluster says is the tenant's text: `status`, `list` and `open` against a session whose
//! status the test writes itself, as the cluster admin, with no operator running to overwrite it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ecs_vnc_operator::session::VncSession;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::support::ecs_sim::LINUX;
use super::support::env::Env;
use super::support::session_wait::WAIT;
use super::{Ran, command};

const OURS: &str = "https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html";

fn rfc3339_in(secs: i64) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(secs);
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

async fn write_status(api: &Api<VncSession>, name: &str, status: Value) {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await
    .unwrap_or_else(|e| panic!("status of {name}: {e}"));
}

/// A character a terminal acts on (other than the newline that ends a line), or a bidi control.
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n')
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

fn assert_clean(ran: &Ran) {
    for (stream, text) in [("stdout", &ran.stdout), ("stderr", &ran.stderr)] {
        let bad: Vec<String> = text
            .chars()
            .filter(|&c| unsafe_char(c))
            .map(|c| format!("U+{:04X}", c as u32))
            .collect();
        assert!(bad.is_empty(), "{stream} holds {bad:?}: {ran:?}");
    }
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn status_and_list_print_no_control_characters_from_the_cluster() {
    let env = Env::new("plugin-ctl").await;
    // spec.reason may not hold C0/C1 controls (the CRD's pattern), but bidi overrides pass it.
    env.apply_ok(&env.session(
        "web-1",
        json!({"isWindows": false, "reason": "INC-9 \u{202E}gnp.exe 磁盘已满"}),
    ));
    let api = env.api();
    write_status(
        &api,
        "web-1",
        json!({"phase": "Failed", "refreshable": true,
               "lastError": {"code": "InternalError",
                             "message": "\u{1b}[2J\u{1b}[31mdone\rOK\u{2066}x\u{9b}1m"},
               "conditions": [{"type": "Ready", "status": "False",
                               "reason": "IssueFailed\u{1b}[5m",
                               "message": "first\nStalled:      False\u{1b}]0;pwned\u{07}",
                               "lastTransitionTime": rfc3339_in(0)}]}),
    )
    .await;
    let session = api.get("web-1").await.unwrap();
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.ns);
    let event: Event = serde_json::from_value(json!({
        "metadata": {"name": "web-1.forged", "namespace": env.ns},
        "eventTime": rfc3339_in(0), "type": "Warning", "reason": "Forged", "action": "Test",
        "reportingController": "ecsvnc.dev/e2e", "reportingInstance": "e2e",
        "note": "note\twith\ttabs\nand\u{1b}[1A\u{1b}[2Ka rewritten line\u{202E}",
        "regarding": {"apiVersion": "ecsvnc.dev/v1alpha1", "kind": "VncSession",
                      "name": "web-1", "namespace": env.ns, "uid": session.uid()}
    }))
    .unwrap();
    events.create(&PostParams::default(), &event).await.unwrap();

    let status = super::plugin(env.kubeconfig(), &["-n", &env.ns, "status", "web-1"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert_clean(&status);
    let text = &status.stdout;
    assert!(
        text.contains("Reason:       INC-9 \u{FFFD}gnp.exe 磁盘已满\n"),
        "{status:?}"
    );
    assert!(
        text.contains(
            "Last error:   InternalError: \u{FFFD}[2J\u{FFFD}[31mdone OK\u{FFFD}x\u{FFFD}1m\n"
        ),
        "{status:?}"
    );
    assert!(
        text.contains("first Stalled:      False\u{FFFD}]0;pwned\u{FFFD}\n"),
        "{status:?}"
    );
    assert!(!text.contains("\nStalled:"), "a forged line: {status:?}");
    let forged = text
        .lines()
        .find(|l| l.contains("Forged"))
        .unwrap_or_else(|| panic!("no forged Event: {status:?}"));
    assert!(
        forged.ends_with("note with tabs and\u{FFFD}[1A\u{FFFD}[2Ka rewritten line\u{FFFD}"),
        "the note stays in its row: {forged:?}"
    );

    let list = super::plugin(env.kubeconfig(), &["-n", &env.ns, "list"]).await;
    assert_eq!(list.code, 0, "{list:?}");
    assert_clean(&list);
    assert_eq!(list.stdout.lines().count(), 2, "{list:?}");
    let row: Vec<&str> = list
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..5],
        ["web-1", LINUX, "Failed", "-", "IssueFailed\u{FFFD}[5m"],
        "{list:?}"
    );
}

/// A stand-in for `xdg-open`, alone on the PATH, that appends each URL it gets to a file.
struct FakeOpener {
    dir: PathBuf,
}

impl FakeOpener {
    fn new(ns: &str) -> FakeOpener {
        let dir = std::env::temp_dir().join(format!("kubectl-vnc-e2e-opener-{ns}"));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("xdg-open");
        // Only builtins: nothing else is on the PATH.
        std::fs::write(
            &script,
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> \"${0%/*}/opened\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeOpener { dir }
    }

    fn opened(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("opened"))
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    async fn open(&self, kubeconfig: &Path, args: &[&str]) -> Ran {
        let mut cmd = command(kubeconfig, args);
        cmd.env("PATH", &self.dir);
        let started = std::time::Instant::now();
        let out = tokio::process::Command::from(cmd).output().await.unwrap();
        super::ran(out, started)
    }
}

impl Drop for FakeOpener {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Plays the operator for one request: once a refresh value is set that the status has not
/// served, serves it as `Ready` with `url`.
async fn serve_next_refresh(api: Api<VncSession>, name: &str, url: &str) {
    let unserved = |s: Option<&VncSession>| {
        let Some(s) = s else { return false };
        let asked = s.annotations().get("ecsvnc.dev/refresh");
        let served = s
            .status
            .as_ref()
            .and_then(|st| st.observed_refresh.as_ref());
        asked.is_some() && asked != served
    };
    let cond = kube::runtime::wait::await_condition(api.clone(), name, unserved);
    let asked = tokio::time::timeout(WAIT, cond)
        .await
        .expect("the plugin sets a refresh value")
        .unwrap()
        .unwrap();
    let value = asked.annotations()["ecsvnc.dev/refresh"].clone();
    write_status(
        &api,
        name,
        json!({"phase": "Ready", "refreshable": false, "observedRefresh": value,
               "consoleUrl": url, "urlExpiresAt": rfc3339_in(15)}),
    )
    .await;
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn open_refuses_a_console_url_off_the_console_base() {
    let env = Env::new("plugin-offbase").await;
    env.apply_ok(&env.session("web-1", json!({"isWindows": false})));
    let opener = FakeOpener::new(&env.ns);
    let good = format!("{OURS}?vncUrl=wss%3A%2F%2Fx&instanceId={LINUX}&isWindows=false");

    // The control: the fake opener is the browser the plugin starts.
    let args = ["-n", env.ns.as_str(), "open", "web-1"];
    let (_, ran) = tokio::join!(
        serve_next_refresh(env.api(), "web-1", &good),
        opener.open(env.kubeconfig(), &args)
    );
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(ran.stdout, format!("{good}\n"), "{ran:?}");
    assert_eq!(opener.opened(), vec![good.clone()]);

    let look_alike = format!(
        "https://g.alicdn.com.evil.example/aliyun/ecs-console-vnc2/0.0.8/index.html?vncUrl=x&instanceId={LINUX}"
    );
    for (url, why) in [
        ("file:///etc/passwd", "it is a file: URL, not https:"),
        (
            look_alike.as_str(),
            "it is on host \"g.alicdn.com.evil.example\", not \"g.alicdn.com\"",
        ),
    ] {
        for print in [false, true] {
            let mut args = vec!["-n", env.ns.as_str(), "open", "web-1"];
            if print {
                args.push("--print");
            }
            let (_, ran) = tokio::join!(
                serve_next_refresh(env.api(), "web-1", url),
                opener.open(env.kubeconfig(), &args)
            );
            assert_eq!(ran.code, 14, "{url}: {ran:?}");
            assert!(ran.stdout.is_empty(), "{url} printed: {ran:?}");
            assert!(
                ran.stderr.contains(&format!(
                    "is not under the console base {OURS}: {why}; it was neither opened nor printed"
                )),
                "{ran:?}"
            );
            assert!(ran.stderr.contains("--console-base-url"), "{ran:?}");
            assert_eq!(
                opener.opened(),
                vec![good.clone()],
                "{url} went to the browser"
            );
        }
    }
}
