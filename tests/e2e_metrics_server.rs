//! The metrics server against a pod that opens connections and sends nothing (issue 11): with
//! hundreds of idle connections and a file-descriptor limit below what they need, the operator
//! costs near-zero CPU (no accept spin on EMFILE), and `/healthz` answers again once they close.
//! And the probes' own listener (issue 23): while idle connections hold every slot of the
//! metrics server, `/healthz` on `--health-addr` answers at once.
//! Run with `scripts/test.sh` (or `cargo test --test e2e_metrics_server -- --include-ignored`).

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use support::env::Env;
use support::operator::Operator;
use support::procfs::{cpu_time, fds};
use support::waiting::until;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

const IDLE_CONNECTIONS: usize = 300;
/// Opened once the descriptors have run out: the ones an accept loop meets EMFILE on.
const LATE_CONNECTIONS: usize = 50;
/// Longer than the server's header-read timeout (5 s), so the connections it held at first have
/// been closed and the ones queued behind them meet the descriptor limit.
const PAST_HEADER_TIMEOUT: Duration = Duration::from_secs(7);
const WINDOW: Duration = Duration::from_secs(5);

/// The status of `GET /healthz` on a fresh connection, `None` if there is no answer within 1 s.
async fn healthz(addr: &str) -> Option<u16> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = "GET /healthz HTTP/1.1\r\nhost: operator\r\nconnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        response.get(9..12)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .ok()
        .flatten()
}

/// Waits (20 s) until `/healthz` answers 200 on every one of `addrs`.
async fn wait_healthy(op: &Operator, addrs: &[&str]) {
    let failure = || format!("no /healthz:\n{}", op.logs());
    let healthy = || async move {
        for addr in addrs {
            if healthz(addr).await != Some(200) {
                return false;
            }
        }
        true
    };
    let (cap, every) = (Duration::from_secs(20), Duration::from_millis(200));
    until(cap, every, failure, healthy).await;
}

/// The `RLIMIT_NOFILE` under which the process can open exactly `n` more descriptors: a new
/// one takes the lowest free number, which must be below the limit (inherited descriptors
/// with high numbers leave holes, so counting them is not enough).
fn limit_leaving(held: &BTreeSet<u64>, n: usize) -> u64 {
    (0..).filter(|fd| !held.contains(fd)).nth(n).unwrap()
}

fn set_nofile(pid: u32, limit: u64) {
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .expect("run prlimit (util-linux)");
    assert!(status.success(), "prlimit --nofile={limit} failed");
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn idle_connections_and_no_descriptors_cost_no_cpu_and_healthz_recovers() {
    let env = Env::new("metrics-server").await;
    let op = env.operator(&[]);
    let addr = op.metrics_addr().await;
    let pid = op.pid();
    wait_healthy(&op, &[&addr]).await;
    // A few descriptors of headroom, fewer than the connections the server holds at first:
    // once those time out it accepts a few more, then meets EMFILE for the rest of the queue.
    let limit = limit_leaving(&fds(pid), 8);

    let mut idle = Vec::with_capacity(IDLE_CONNECTIONS);
    for _ in 0..IDLE_CONNECTIONS {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        limit_leaving(&fds(pid), 0) > limit,
        "the server holds too few connections for nofile={limit} to bind"
    );
    set_nofile(pid, limit);
    // In the background: once the listen backlog is full, a connect waits for the server.
    let mut late = JoinSet::new();
    for _ in 0..LATE_CONNECTIONS {
        late.spawn(TcpStream::connect(addr.clone()));
    }

    tokio::time::sleep(PAST_HEADER_TIMEOUT).await;
    let start = cpu_time(pid);
    tokio::time::sleep(WINDOW).await;
    let spent = cpu_time(pid) - start;
    eprintln!(
        "operator CPU over {WINDOW:?} with {} idle connections and nofile={limit}: {spent:?}",
        IDLE_CONNECTIONS + LATE_CONNECTIONS
    );
    // A bound on a spin (a spinning accept loop burns a core: ~5 s here), not a benchmark.
    assert!(spent < Duration::from_millis(500), "{spent:?} of CPU");
    assert_accept_errors_were_met_and_logged_once_per_run(&op.logs());

    drop((idle, late));
    let closed = Instant::now();
    let failure = || format!("/healthz did not recover:\n{}", op.logs());
    let addr = addr.as_str();
    let recovered = || async move { healthz(addr).await == Some(200) };
    let (cap, every) = (Duration::from_secs(5), Duration::from_millis(100));
    until(cap, every, failure, recovered).await;
    eprintln!(
        "/healthz answered {:?} after the connections closed",
        closed.elapsed()
    );
}

/// The accept loop met EMFILE (else the test proved nothing), and warned once per run of
/// errors (each ends with a recovery), not once per failed accept.
fn assert_accept_errors_were_met_and_logged_once_per_run(logs: &str) {
    let lines = |message: &str| -> Vec<serde_json::Value> {
        let lines = logs.lines().filter_map(|l| serde_json::from_str(l).ok());
        lines
            .filter(|v: &serde_json::Value| v["message"] == message)
            .collect()
    };
    let warnings = lines("accept failed; backing off until it succeeds");
    let recoveries = lines("accepting connections again");
    let failures: u64 = recoveries
        .iter()
        .filter_map(|v| v["failures"].as_u64())
        .sum();
    eprintln!(
        "{} accept warnings, {} recoveries after {failures} failed accepts",
        warnings.len(),
        recoveries.len()
    );
    assert!(
        warnings
            .iter()
            .any(|v| v["error"].as_str().unwrap_or("").contains("os error 24")),
        "the accept loop never met EMFILE, so the test proved nothing:\n{logs}"
    );
    // One warning per run of errors (each ends with a recovery), not one per failed accept.
    assert!(warnings.len() <= recoveries.len() + 1, "{logs}");
}

/// More idle connections than the metrics server has slots (32): those it holds keep their slot
/// for its header-read timeout (5 s), the rest wait in the listen backlog.
const SLOT_HOLDERS: usize = 64;

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn the_health_listener_answers_while_idle_clients_hold_every_metrics_slot() {
    let env = Env::new("health-listener").await;
    let op = env.operator(&[]);
    let (metrics, health) = (op.metrics_addr().await, op.health_addr().await);
    wait_healthy(&op, &[&metrics, &health]).await;

    let mut idle = Vec::with_capacity(SLOT_HOLDERS);
    for _ in 0..SLOT_HOLDERS {
        idle.push(TcpStream::connect(&metrics).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let filled = Instant::now();
    // The metrics port is full: a probe there would wait for a slot (and fail at 1 s).
    assert_eq!(
        healthz(&metrics).await,
        None,
        "the metrics slots were not all taken"
    );

    let asked = Instant::now();
    let answer = healthz(&health).await;
    let took = asked.elapsed();
    eprintln!("/healthz on the health listener answered {answer:?} in {took:?}");
    assert_eq!(answer, Some(200));
    assert!(took < Duration::from_millis(500), "{took:?}");
    // All of it while the idle connections still held their slots (header-read timeout: 5 s).
    assert!(
        filled.elapsed() < Duration::from_secs(4),
        "{:?}",
        filled.elapsed()
    );
    drop(idle);
}
