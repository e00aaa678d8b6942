//! `kubectl-vnc` end to end: the real binary against the local control plane, ecs-sim and the
//! operator (see `tests/support/`). Run with `scripts/test.sh`, or
//! `cargo test --test plugin -- --include-ignored` once `scripts/local-cluster.sh build` is done.

mod support;
// Control characters in what the cluster says, and console URLs off the console base.
#[path = "plugin/untrusted.rs"]
mod untrusted;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::cluster::Cluster;
use support::ecs_sim::LINUX;
use support::env::Env;
use support::scratch::ScratchDir;
use support::session_wait::WAIT;

/// One run of the plugin binary.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.took, self.stdout, self.stderr
        )
    }
}

/// `kubectl-vnc --kubeconfig KC ARGS` with no ambient KUBECONFIG, and no browser opener on the
/// PATH (a test must never start one).
fn command(kubeconfig: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-vnc"));
    command.arg("--kubeconfig").arg(kubeconfig).args(args);
    isolate(&mut command);
    command
}

fn isolate(command: &mut Command) {
    let empty = std::env::temp_dir().join("kubectl-vnc-e2e-empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    command
        .env_remove("KUBECONFIG")
        .env("PATH", &empty)
        .stdin(Stdio::null());
}

/// Runs the plugin without blocking the test's runtime: ecs-sim is served from it.
async fn plugin(kubeconfig: &Path, args: &[&str]) -> Ran {
    let mut command = tokio::process::Command::from(command(kubeconfig, args));
    let started = Instant::now();
    let out = command.output().await.expect("run kubectl-vnc");
    ran(out, started)
}

/// The plugin as the cluster admin, in `env`'s namespace: `-n NS ARGS`.
async fn plugin_in(env: &Env, args: &[&str]) -> Ran {
    let args = [&["-n", env.ns.as_str()], args].concat();
    plugin(env.kubeconfig(), &args).await
}

/// For the tests that need no ecs-sim.
fn plugin_blocking(mut command: Command) -> Ran {
    let started = Instant::now();
    let out = command.output().expect("run kubectl-vnc");
    ran(out, started)
}

fn ran(out: std::process::Output, started: Instant) -> Ran {
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// The `N.N s left` figure `open` prints on stderr.
fn seconds_left(stderr: &str) -> f64 {
    let at = stderr
        .find(" s left to open a connection")
        .unwrap_or_else(|| panic!("no time left in: {stderr}"));
    let start = stderr[..at]
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .map_or(0, |i| i + 1);
    stderr[start..at].parse().unwrap()
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn open_print_gives_a_fresh_url_with_most_of_its_window_left() {
    let (env, _op, first) = Env::with_ready_session("plugin-open", "web-1").await;
    let first_url = first.status.unwrap().console_url.unwrap();

    let ran = plugin_in(&env, &["open", "web-1", "--print"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout is the URL alone: {ran:?}");
    let url = lines[0];
    assert!(
        url.starts_with("https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html?vncUrl="),
        "{url}"
    );
    assert!(
        url.ends_with(&format!("&instanceId={LINUX}&isWindows=false")),
        "{url}"
    );
    assert_ne!(url, first_url, "open asks for a new URL");
    assert!(!ran.stderr.contains("vncUrl"), "URL on stderr: {ran:?}");

    // The whole run, patch to print, bounds how much of the real window is gone: ECS issued the
    // URL after the run started.
    assert!(
        ran.took < Duration::from_secs(1),
        "took {:?}: less than 14 s of the window left",
        ran.took
    );
    // The figure printed counts from the operator's issuedAt, which it rounds down to the second
    // (so it never over-promises); that costs up to one more second.
    let left = seconds_left(&ran.stderr);
    assert!((13.0..=15.0).contains(&left), "{left} s left: {ran:?}");

    // Each open is a new request, served once.
    let again = plugin_in(&env, &["open", "web-1", "--print"]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_ne!(again.stdout, ran.stdout);
    let st = env.api().get("web-1").await.unwrap().status.unwrap();
    assert_eq!(st.refresh_count, 2);
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn open_without_print_reports_a_missing_browser_but_succeeds() {
    let (env, _op, _) = Env::with_ready_session("plugin-browser", "web-1").await;

    let ran = plugin_in(&env, &["open", "web-1"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("vncUrl="), "{ran:?}");
    assert!(
        ran.stderr.contains("could not open a browser") && ran.stderr.contains("not installed"),
        "{ran:?}"
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn open_of_a_missing_session_says_so_and_exits_3() {
    let env = Env::new("plugin-missing").await;
    let ran = plugin_in(&env, &["open", "ghost", "--print"]).await;
    assert_eq!(ran.code, 3, "{ran:?}");
    assert!(ran.stdout.is_empty(), "{ran:?}");
    assert!(
        ran.stderr.contains(&format!(
            "vncsession \"ghost\" not found in namespace \"{}\"",
            env.ns
        )),
        "{ran:?}"
    );
    assert_eq!(ran.stderr.lines().count(), 1, "one line: {ran:?}");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn open_with_the_operator_stopped_times_out_naming_the_causes() {
    let (env, mut op, _) = Env::with_ready_session("plugin-timeout", "web-1").await;
    op.terminate();

    let ran = plugin_in(&env, &["open", "web-1", "--timeout", "1500ms"]).await;
    assert_eq!(ran.code, 7, "{ran:?}");
    assert!(ran.stdout.is_empty(), "{ran:?}");
    assert!(ran.stderr.contains("within 1500ms"), "{ran:?}");
    assert!(ran.stderr.contains("not running"), "{ran:?}");
    assert!(ran.stderr.contains("RBAC to patch"), "{ran:?}");
    assert!(
        ran.took >= Duration::from_millis(1500) && ran.took < Duration::from_secs(5),
        "{ran:?}"
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn open_of_a_failed_or_closed_session_gives_the_reason_and_the_fix() {
    let env = Env::new("plugin-refused").await;
    let _op = env.operator(&[]);
    env.apply_ok(&env.session(
        "no-secret",
        json!({"isWindows": false, "credentialsRef": {"name": "absent"}}),
    ));
    env.apply_ok(&env.session("short", json!({"isWindows": false, "ttl": "1s"})));
    env.wait_phase("no-secret", "Failed", WAIT).await;
    env.wait_phase("short", "Closed", WAIT).await;

    let failed = plugin_in(&env, &["open", "no-secret"]).await;
    assert_eq!(failed.code, 10, "{failed:?}");
    assert!(failed.stdout.is_empty(), "{failed:?}");
    assert!(
        failed.stderr.contains("is Failed") && failed.stderr.contains("CredentialsNotFound"),
        "{failed:?}"
    );
    assert!(failed.stderr.contains("fix:"), "{failed:?}");

    let closed = plugin_in(&env, &["open", "short"]).await;
    assert_eq!(closed.code, 11, "{closed:?}");
    assert!(closed.stderr.contains("is Closed"), "{closed:?}");
    assert!(closed.stderr.contains("raise spec.ttl"), "{closed:?}");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn list_and_status_show_phase_time_left_and_events() {
    let env = Env::new("plugin-view").await;
    let _op = env.operator(&[]);
    env.apply_ok(&env.session("web-1", json!({"isWindows": false})));
    env.apply_ok(&env.session(
        "no-secret",
        json!({"isWindows": false, "credentialsRef": {"name": "absent"}}),
    ));
    env.wait_phase("no-secret", "Failed", WAIT).await;
    env.wait_phase("web-1", "Ready", WAIT).await;
    let opened = plugin_in(&env, &["open", "web-1", "--print"]).await;
    assert_eq!(opened.code, 0, "{opened:?}");

    list_shows_both(&env).await;
    status_shows_both(&env).await;
}

/// `list` (and `list -A`) of a namespace with the Ready `web-1` and the Failed `no-secret`.
async fn list_shows_both(env: &Env) {
    let list = plugin_in(env, &["list"]).await;
    assert_eq!(list.code, 0, "{list:?}");
    let header: Vec<&str> = list
        .stdout
        .lines()
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "INSTANCE",
            "PHASE",
            "URL EXPIRES IN",
            "REASON",
            "AGE"
        ]
    );
    let row = |name: &str| -> Vec<String> {
        list.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {list:?}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let web = row("web-1");
    assert_eq!(&web[..3], ["web-1", LINUX, "Ready"], "{list:?}");
    let secs: u64 = web[3].trim_end_matches('s').parse().unwrap();
    assert!((10..=15).contains(&secs), "{list:?}");
    assert_eq!(web[4], "UrlIssued", "{list:?}");
    let failed = row("no-secret");
    assert_eq!(
        &failed[2..5],
        ["Failed", "-", "CredentialsNotFound"],
        "{list:?}"
    );

    let all = plugin(env.kubeconfig(), &["list", "-A"]).await;
    assert_eq!(all.code, 0, "{all:?}");
    assert!(all.stdout.starts_with("NAMESPACE"), "{all:?}");
    assert!(
        all.stdout
            .lines()
            .any(|l| l.starts_with(&env.ns) && l.contains("web-1")),
        "{all:?}"
    );
}

/// `status` of the Ready `web-1` (opened once) and of the Failed `no-secret`.
async fn status_shows_both(env: &Env) {
    let status = plugin_in(env, &["status", "web-1"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    let text = &status.stdout;
    let instance = format!("Instance:     {LINUX} in cn-hangzhou (Linux)");
    for shown in [
        "Phase:        Ready\n",
        &instance,
        "s left to open a connection (until ",
        "s left at most for a connection opened in time",
        "Refreshable:  false\n",
        "Last error:   none\n",
        "URLs issued:  2\n",
    ] {
        assert!(text.contains(shown), "{shown:?}: {status:?}");
    }
    let events = &text[text.find("Events:\n").expect("events section")..];
    assert!(events.contains("UrlIssued"), "{status:?}");
    assert!(events.contains("RefreshRequested"), "{status:?}");
    assert!(
        !text.contains("vncUrl"),
        "status never shows the URL: {status:?}"
    );

    let failed = plugin_in(env, &["status", "no-secret"]).await;
    assert_eq!(failed.code, 0, "{failed:?}");
    assert!(
        failed.stdout.contains("Phase:        Failed\n"),
        "{failed:?}"
    );
    assert!(
        failed
            .stdout
            .contains("Last error:   CredentialsNotFound: "),
        "{failed:?}"
    );
    assert!(failed.stdout.contains("CredentialsNotFound"), "{failed:?}");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn refresh_sets_a_new_value_that_the_operator_serves() {
    let (env, _op, _) = Env::with_ready_session("plugin-refresh", "web-1").await;

    let ran = plugin_in(&env, &["refresh", "web-1"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let value = ran.stdout.trim().to_owned();
    assert!(!value.is_empty(), "{ran:?}");
    let served = env.wait_served("web-1", &value, WAIT).await;
    assert_eq!(
        served.metadata.annotations.unwrap()["ecsvnc.dev/refresh"],
        value
    );
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn a_user_without_rbac_is_told_the_verb_and_resource() {
    let env = Env::new("plugin-rbac").await;
    env.apply_ok(&env.session("web-1", json!({"isWindows": false})));
    env.kubectl_ok(&["-n", &env.ns, "create", "serviceaccount", "nobody"]);
    let kubeconfig = env.cluster().service_account_kubeconfig(&env.ns, "nobody");

    let ran = plugin(&kubeconfig, &["open", "web-1", "--print"]).await;
    assert_eq!(ran.code, 5, "{ran:?}");
    assert!(
        ran.stderr.contains(&format!(
            "you may not patch vncsessions.ecsvnc.dev in namespace \"{}\"",
            env.ns
        )),
        "{ran:?}"
    );
    assert!(
        ran.stderr.contains("ecsvnc.dev/refresh annotation") && ran.stderr.contains("`edit` role"),
        "a 403 on the annotation names what opening by annotation needs: {ran:?}"
    );
    let list = plugin(&kubeconfig, &["list"]).await;
    assert_eq!(list.code, 5, "{list:?}");
    assert!(
        list.stderr
            .contains("you may not list vncsessions.ecsvnc.dev"),
        "{list:?}"
    );
}

#[test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
fn without_the_crd_the_fix_is_to_install_it() {
    // A plain control plane of its own: the shared one (and any hybrid) has the CRD.
    let bare = Cluster::start_plain();
    let ran = plugin_blocking(command(&bare.kubeconfig, &["-n", "default", "list"]));
    assert_eq!(ran.code, 4, "{ran:?}");
    assert!(
        ran.stderr
            .contains("the VncSession CRD is not installed: kubectl apply -f crds/vncsession.yaml"),
        "{ran:?}"
    );
    let open = plugin_blocking(command(&bare.kubeconfig, &["-n", "default", "open", "x"]));
    assert_eq!(open.code, 4, "{open:?}");
}

/// Needs no cluster: the kubeconfig is what is missing.
#[test]
fn without_a_kubeconfig_it_says_how_to_point_at_one() {
    let home = ScratchDir::new("kubectl-vnc-nohome");
    let mut bare = Command::new(env!("CARGO_BIN_EXE_kubectl-vnc"));
    isolate(&mut bare);
    bare.arg("list").env("HOME", home.path());
    let ran = plugin_blocking(bare);
    assert_eq!(ran.code, 6, "{ran:?}");
    assert!(ran.stderr.contains("no kubeconfig found"), "{ran:?}");
    assert!(
        ran.stderr.contains("--kubeconfig PATH or KUBECONFIG=PATH"),
        "{ran:?}"
    );

    let ran = plugin_blocking(command(&home.join("absent"), &["list"]));
    assert_eq!(ran.code, 6, "{ran:?}");
}
