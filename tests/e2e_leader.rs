//! Leader election under faults, on a control plane of its own (this binary pauses its API
//! server): a standby whose wall clock runs 12 s ahead (libfaketime, monotonic clock left alone)
//! never takes the Lease from a healthy leader, and an API server outage longer than the Lease
//! costs a term, not the process. Run with `scripts/test.sh`.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use support::ecs_sim::VNC;
use support::env::Env;
use support::processes::signal;
use support::procfs::cpu_time;
use support::session_wait::WAIT;
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The kube-apiserver of this binary's control plane, from the PIDs `up` recorded.
fn apiserver_pid(dir: &Path) -> u32 {
    let pids = std::fs::read_to_string(dir.join("pids")).unwrap();
    pids.lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains("kube-apiserver"))
                .unwrap_or(false)
        })
        .expect("the kube-apiserver PID in the control plane's pids file")
}

/// Stops (`STOP`) or resumes (`CONT`) the API server.
fn signal_apiserver(pid: u32, name: &str) {
    assert!(signal(pid, name), "kill -{name} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn a_skewed_standby_never_steals_the_lease_and_an_outage_costs_a_term_not_the_process() {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} missing: run scripts/install-deps.sh (Debian package faketime)"
    );
    let env = Env::new("leader").await;
    let lease = ["--leader-elect", "--lease-duration", "6s"];
    let mut leader = env.operator(&lease);
    leader.wait_for_log("became the leader", WAIT).await;
    // The standby's wall clock runs 12 s ahead; its monotonic clock is left alone.
    let mut standby = env.operator_with_env(
        &lease,
        &[
            ("LD_PRELOAD", LIBFAKETIME),
            ("FAKETIME", "+12s"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    standby
        .wait_for_log("waiting for the leader Lease", WAIT)
        .await;

    env.apply_ready("web-1", json!({"isWindows": false})).await;
    // Refreshes over more than two lease durations: every one is served, by the leader.
    for i in 0..8 {
        env.refresh_and_wait("web-1", &format!("skew-{i}"), WAIT)
            .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(
        !standby.logs().contains("became the leader"),
        "the skewed standby took the Lease:\n{}",
        standby.logs()
    );
    assert_eq!(
        env.sim.stats().total(VNC),
        9,
        "one URL per request, all from the leader"
    );

    // The API server stops answering for longer than the Lease: the leader steps down, nobody
    // exits, CPU stays low, and the first refresh after it returns is served.
    let apiserver = apiserver_pid(&env.cluster().dir);
    let cpu_before = (cpu_time(leader.pid()) + cpu_time(standby.pid())).as_secs_f64();
    signal_apiserver(apiserver, "STOP");
    tokio::time::sleep(Duration::from_secs(15)).await;
    let cpu_during = (cpu_time(leader.pid()) + cpu_time(standby.pid())).as_secs_f64() - cpu_before;
    signal_apiserver(apiserver, "CONT");
    assert!(
        leader.running() && standby.running(),
        "no process exits for a lost Lease:\n{}",
        leader.logs()
    );
    assert!(
        cpu_during < 2.0,
        "bounded CPU during a 15 s outage, got {cpu_during:.2} s for both replicas"
    );
    leader
        .wait_for_log("lost the leader Lease; back to standby", WAIT)
        .await;
    env.refresh_and_wait("web-1", "after-outage", Duration::from_secs(60))
        .await;
    assert!(leader.running() && standby.running());
    assert!(!leader.logs().contains("panicked") && !standby.logs().contains("panicked"));
    assert!(leader.terminate().success());
    assert!(standby.terminate().success());
}
