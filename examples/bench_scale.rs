//! Benchmark driver for `scripts/bench.sh`: many sessions created at once.
//!
//! Creates `--count` VncSessions (spread round-robin over `--instances` instances, no `isWindows`
//! so the operator asks `DescribeInstances` once per session) with `--concurrency` creates in
//! flight, and follows them on a watch: when each was first served (`Ready`), and, with
//! `--until-expired`, when every one has reached `Expired`. Then it exits, so the caller can
//! measure the operator while nothing happens.
//!
//! Writes raw samples as JSON (`--out`); `bench/report.py` turns them into figures.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use ecs_vnc_operator::session::VncSession;
use ecs_vnc_operator::session::crd::Phase;
use futures::{StreamExt, stream};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;
use tokio::sync::mpsc;

#[path = "support/spread.rs"]
mod spread;
#[path = "support/watch.rs"]
mod watch;

use spread::Spread;
use watch::{Msg, Seen};

#[derive(Parser)]
#[command(about = "Scale benchmark (see scripts/bench.sh)")]
struct Args {
    #[arg(long)]
    namespace: String,
    #[arg(long, default_value_t = 2000)]
    count: usize,
    #[command(flatten)]
    spread: Spread,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Also wait until every session is `Expired`.
    #[arg(long)]
    until_expired: bool,
    /// Longest wait for each stage, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    #[arg(long)]
    out: PathBuf,
}

/// What the watch has shown so far.
#[derive(Default)]
struct Progress {
    ready_at: HashMap<String, Instant>,
    expired: HashSet<String>,
    failed: HashSet<String>,
    /// First issue of each session (whole seconds, as in status), by instance.
    issued: HashMap<String, HashMap<String, i64>>,
}

impl Progress {
    fn take(&mut self, s: Seen) {
        if let Some(at) = s.issued_at.map(|t| t.as_second()) {
            self.issued
                .entry(s.instance_id)
                .or_default()
                .entry(s.name.clone())
                .or_insert(at);
        }
        match s.phase {
            Some(Phase::Ready) => {
                // Served after all: a failure on the way (a retry) no longer counts.
                self.failed.remove(&s.name);
                self.ready_at.entry(s.name).or_insert(s.at);
            }
            Some(Phase::Expired) => {
                self.expired.insert(s.name);
            }
            Some(Phase::Failed) if !self.ready_at.contains_key(&s.name) => {
                self.failed.insert(s.name);
            }
            _ => {}
        }
    }
}

/// Drains the channel into `progress` until `done` holds or the deadline passes.
async fn follow(
    events: &mut mpsc::UnboundedReceiver<Msg>,
    progress: &mut Progress,
    deadline: Instant,
    done: impl Fn(&Progress) -> bool,
) -> bool {
    while !done(progress) {
        match tokio::time::timeout_at(deadline.into(), events.recv()).await {
            Ok(Some(Msg::Seen(s))) => progress.take(*s),
            Ok(Some(Msg::Synced)) => {}
            Ok(None) | Err(_) => return false,
        }
    }
    true
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let client = Client::try_default().await?;
    let api: Api<VncSession> = Api::namespaced(client, &args.namespace);
    let (mut events, watch_task) = watch::spawn(api.clone(), "bench_scale");
    let mut progress = Progress::default();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Some(Msg::Synced)) => break,
            Ok(Some(Msg::Seen(s))) => progress.take(*s),
            Ok(None) | Err(_) => return Err("watch did not sync within 30 s".into()),
        }
    }
    if !progress.ready_at.is_empty() || !progress.expired.is_empty() {
        return Err(format!("namespace {} already has sessions", args.namespace).into());
    }

    let width = args.count.saturating_sub(1).to_string().len().max(4);
    let plan: Vec<(String, String)> = (0..args.count)
        .map(|i| (format!("scale-{i:0width$}"), args.spread.instance(i)))
        .collect();

    let started = Instant::now();
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    let pp = PostParams::default();
    let mut creates = stream::iter(plan.iter().map(|(name, instance)| {
        let api = api.clone();
        let pp = pp.clone();
        let obj = args.spread.session(name, instance, "scale");
        async move {
            let obj = obj?;
            let t = Instant::now();
            api.create(&pp, &obj).await?;
            Ok::<_, Box<dyn std::error::Error>>((name.clone(), t, Instant::now()))
        }
    }))
    .buffer_unordered(args.concurrency.max(1));
    let mut created_at: HashMap<String, Instant> = HashMap::with_capacity(args.count);
    let mut create_ms = Vec::with_capacity(args.count);
    let mut create_errors = Vec::new();
    // Keep the watch drained while creating, so its arrival stamps stay honest.
    loop {
        tokio::select! {
            biased;
            msg = events.recv() => match msg {
                Some(Msg::Seen(s)) => progress.take(*s),
                Some(Msg::Synced) => {}
                None => return Err("watch ended".into()),
            },
            next = creates.next() => match next {
                Some(Ok((name, sent, done))) => {
                    create_ms.push(done.duration_since(sent).as_secs_f64() * 1000.0);
                    created_at.insert(name, done);
                }
                Some(Err(e)) => create_errors.push(e.to_string()),
                None => break,
            },
        }
    }
    drop(creates);
    let all_created = started.elapsed();
    eprintln!(
        "bench_scale: {} created in {:.1} s ({} errors)",
        created_at.len(),
        secs(all_created),
        create_errors.len()
    );

    let stage = Duration::from_secs(args.timeout_secs);
    let n = created_at.len();
    let all_ready = follow(&mut events, &mut progress, Instant::now() + stage, |p| {
        p.ready_at.len() + p.failed.len() >= n
    })
    .await;
    let ready_wall = progress
        .ready_at
        .values()
        .max()
        .map(|t| t.duration_since(started));
    eprintln!(
        "bench_scale: {} Ready, {} Failed; last Ready {:.1} s after the first create",
        progress.ready_at.len(),
        progress.failed.len(),
        ready_wall.map(secs).unwrap_or(f64::NAN)
    );
    let per_session_ms: Vec<f64> = progress
        .ready_at
        .iter()
        .filter_map(|(name, ready)| {
            created_at
                .get(name)
                .map(|c| ready.saturating_duration_since(*c).as_secs_f64() * 1000.0)
        })
        .collect();

    let mut expired_wall = None;
    if args.until_expired {
        let ok = follow(&mut events, &mut progress, Instant::now() + stage, |p| {
            p.expired.len() >= n
        })
        .await;
        if ok {
            expired_wall = Some(started.elapsed());
        }
        eprintln!(
            "bench_scale: {} Expired{}",
            progress.expired.len(),
            expired_wall
                .map(|d| format!(" after {:.1} s", secs(d)))
                .unwrap_or_default()
        );
    }

    let issued: HashMap<&String, Vec<i64>> = progress
        .issued
        .iter()
        .map(|(instance, by_session)| (instance, by_session.values().copied().collect()))
        .collect();
    let out = json!({
        "count": args.count,
        "startedAtUnixS": started_unix,
        "instances": args.spread.instances,
        "concurrency": args.concurrency,
        "created": n,
        "createErrors": create_errors,
        "createSeconds": secs(all_created),
        "createMs": create_ms,
        "allReady": all_ready && progress.failed.is_empty(),
        "ready": progress.ready_at.len(),
        "failed": progress.failed.len(),
        "allReadySeconds": ready_wall.map(secs),
        "createToReadyMs": per_session_ms,
        "expired": progress.expired.len(),
        "allExpiredSeconds": expired_wall.map(secs),
        "firstIssueByInstanceS": issued,
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&out)?)?;
    watch_task.abort();
    Ok(())
}
