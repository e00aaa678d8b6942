//! Benchmark driver: a burst of new sessions against ECS's account flow control, pacing on and off.
//!
//! Starts `ecs-sim` in-process on 127.0.0.1 with a per-AccessKey, per-region quota, then serves
//! `--issues` sessions (known OS, so one `DescribeInstanceVncUrl` each) the way the controller
//! does: at most `--concurrency` at once; each through the per-instance limiter and the pacer
//! (`Pacer::run`, as in the issue path) with the operator's ECS client (one attempt per call);
//! a session whose call failed comes back after the decision function's backoff and gives up
//! after its retries, one that the limiter or the pacer turned away comes back when it said.
//! Kubernetes is left out: this measures the ECS side alone.
//!
//! Prints, per run: calls, throttling answers (count, share of calls), wall time and its ratio
//! to the quota's theoretical minimum (issues / quota).
//!
//! `cargo run --release --example bench_quota -- --issues 2000 --quota 20`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ecs_vnc_operator::aliyun::{Credentials, EcsClient, Endpoint};
use ecs_vnc_operator::controller::limiter::Limiter;
use ecs_vnc_operator::controller::pacer::{PaceKey, Pacer, PacerConfig};
use ecs_vnc_operator::session::decide::{MAX_AUTOMATIC_RETRIES, backoff};
use ecs_vnc_operator::session::expiry::{add, ceil_second};
use ecs_vnc_operator::sim::{self, InstanceStatus, SimConfig, SimHandle, SimInstance};
use jiff::Timestamp;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::Instant;

#[path = "support/ecs.rs"]
mod ecs;

const VNC: &str = "DescribeInstanceVncUrl";
const REGION: &str = "cn-hangzhou";
const ACCESS_KEY_ID: &str = "sim-access-key-id";
const ACCESS_KEY_SECRET: &str = "sim-access-key-secret";

#[derive(Parser)]
#[command(about = "A burst of issues against ECS's account quota, with pacing on and off")]
struct Args {
    /// Sessions created at once, all on one AccessKey in one region.
    #[arg(long, default_value_t = 2000)]
    issues: usize,
    /// ecs-sim's account quota: requests per second per AccessKey and region.
    #[arg(long, default_value_t = 20)]
    quota: u32,
    /// The operator's --ecs-requests-per-second for the paced run.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Reconciles in flight at once (the operator's --max-concurrent-reconciles).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Instances the sessions are spread over (each allows 30 URLs a minute).
    #[arg(long, default_value_t = 400)]
    instances: usize,
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// Also print each run as one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    On,
    Off,
    Both,
}

/// How each session ended, and what happened on the way.
#[derive(Default)]
struct Tally {
    issued: AtomicU64,
    gave_up: AtomicU64,
    /// Turns the pacer could not give within its wait: the session was requeued, nothing sent.
    handed_back: AtomicU64,
    /// Requeued by the per-instance limiter.
    limited: AtomicU64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let sim = start_sim(&args).await;
    let endpoint = Endpoint::parse(&sim.endpoint()).expect("sim endpoint");
    let minimum = args.issues as f64 / f64::from(args.quota.max(1));
    println!(
        "{} issues on one AccessKey in {REGION}, {} in flight, over {} instances; \
         ecs-sim quota {}/s: theoretical minimum {minimum:.1} s",
        args.issues, args.concurrency, args.instances, args.quota
    );
    let runs: &[(bool, &str)] = match args.mode {
        Mode::On => &[(true, "on")],
        Mode::Off => &[(false, "off")],
        Mode::Both => &[(true, "on"), (false, "off")],
    };
    for &(paced, label) in runs {
        sim.reset();
        let pacer = if paced {
            Pacer::new(PacerConfig::per_second(args.rate))
        } else {
            Pacer::off()
        };
        let tally = Arc::new(Tally::default());
        let started = Instant::now();
        burst(&args, &endpoint, Arc::new(pacer), Arc::clone(&tally)).await;
        let wall = started.elapsed().as_secs_f64();

        let stats = sim.stats();
        let calls = stats.total(VNC);
        let throttled = stats.count(VNC, "Throttling.User");
        let (_, by_quota) = stats.account_totals();
        let share = 100.0 * throttled as f64 / calls.max(1) as f64;
        let issued = tally.issued.load(Ordering::Relaxed);
        let gave_up = tally.gave_up.load(Ordering::Relaxed);
        let handed_back = tally.handed_back.load(Ordering::Relaxed);
        let limited = tally.limited.load(Ordering::Relaxed);
        let pacing = if paced {
            format!("on ({}/s per key and region)", args.rate)
        } else {
            "off".to_owned()
        };
        println!("pacing {pacing}:");
        println!("  sessions: {issued} issued, {gave_up} gave up after their retries");
        println!(
            "  calls: {calls}; throttling answers: {throttled} ({share:.2}% of calls; \
             {by_quota} by the account quota)"
        );
        println!(
            "  wall time: {wall:.1} s = {:.2}x the quota's minimum",
            wall / minimum
        );
        println!(
            "  requeued without a call: {handed_back} by the pacer, {limited} by the per-instance limiter"
        );
        if args.json {
            let line = json!({
                "pacing": label,
                "rate": paced.then_some(args.rate),
                "quota": args.quota,
                "issues": args.issues,
                "concurrency": args.concurrency,
                "issued": issued,
                "gaveUp": gave_up,
                "calls": calls,
                "throttled": throttled,
                "throttledByQuota": by_quota,
                "throttledPercent": share,
                "wallSeconds": wall,
                "minimumSeconds": minimum,
                "ratio": wall / minimum,
                "handedBack": handed_back,
                "limited": limited,
            });
            println!("{line}");
        }
    }
    sim.shutdown().await;
}

async fn start_sim(args: &Args) -> SimHandle {
    let instances = (0..args.instances)
        .map(|n| SimInstance {
            instance_id: instance_id(n),
            region_id: REGION.to_owned(),
            status: InstanceStatus::Running,
            os_type: "linux".to_owned(),
        })
        .collect();
    let config = SimConfig {
        instances,
        ..SimConfig::demo()
    };
    let sim = sim::start(config, "127.0.0.1:0".parse().expect("loopback"))
        .await
        .expect("ecs-sim starts");
    sim.set_account_quota(Some(args.quota));
    sim
}

fn instance_id(n: usize) -> String {
    format!("i-quota{n:06}")
}

/// Serves every session once; returns when each is issued or has given up.
async fn burst(args: &Args, endpoint: &Endpoint, pacer: Arc<Pacer>, tally: Arc<Tally>) {
    // The operator's client: one attempt per call, the controller does the retrying.
    let client = ecs::client(1).expect("client");
    let creds = Credentials::new(ACCESS_KEY_ID, ACCESS_KEY_SECRET, None);
    let limiter = Arc::new(Limiter::new(30));
    let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut sessions = tokio::task::JoinSet::new();
    for n in 0..args.issues {
        let session = Session {
            instance_id: instance_id(n % args.instances.max(1)),
            client: client.clone(),
            endpoint: endpoint.clone(),
            creds: creds.clone(),
            pacer: Arc::clone(&pacer),
            limiter: Arc::clone(&limiter),
            slots: Arc::clone(&slots),
            tally: Arc::clone(&tally),
        };
        sessions.spawn(session.serve());
    }
    while let Some(done) = sessions.join_next().await {
        done.expect("session task");
    }
}

struct Session {
    instance_id: String,
    client: EcsClient,
    endpoint: Endpoint,
    creds: Credentials,
    pacer: Arc<Pacer>,
    limiter: Arc<Limiter>,
    slots: Arc<Semaphore>,
    tally: Arc<Tally>,
}

/// What one reconcile decided about when to come back.
enum Next {
    Done,
    At(Timestamp),
}

impl Session {
    async fn serve(self) {
        let key = PaceKey::new(ACCESS_KEY_ID, REGION);
        let mut failures = 0u32;
        // Bounded: every round either ends the session, counts a failure (at most
        // MAX_AUTOMATIC_RETRIES) or waits for a limiter or pacer turn that has a time.
        for _ in 0..10_000 {
            let next = {
                let _slot = self.slots.acquire().await.expect("never closed");
                self.reconcile(&key, &mut failures).await
            };
            match next {
                Next::Done => return,
                // Status times are whole seconds, and so is the requeue.
                Next::At(at) => {
                    let wait = ceil_second(at).duration_since(Timestamp::now());
                    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
                }
            }
        }
        self.tally.gave_up.fetch_add(1, Ordering::Relaxed);
    }

    /// The issue path of one reconcile for a session whose OS is known.
    async fn reconcile(&self, key: &PaceKey, failures: &mut u32) -> Next {
        let now = Timestamp::now();
        if let Err(free_at) = self.limiter.try_acquire(REGION, &self.instance_id, now) {
            self.tally.limited.fetch_add(1, Ordering::Relaxed);
            return Next::At(free_at);
        }
        let call = self.client.describe_instance_vnc_url(
            &self.endpoint,
            &self.creds,
            REGION,
            &self.instance_id,
        );
        match self.pacer.run(key, call).await {
            Ok(Ok(_)) => {
                self.tally.issued.fetch_add(1, Ordering::Relaxed);
                Next::Done
            }
            Ok(Err(e)) => {
                *failures += 1;
                if e.is_retryable() && *failures < MAX_AUTOMATIC_RETRIES {
                    Next::At(add(Timestamp::now(), backoff(*failures, fastrand::f64())))
                } else {
                    self.tally.gave_up.fetch_add(1, Ordering::Relaxed);
                    Next::Done
                }
            }
            Err(free_at) => {
                self.tally.handed_back.fetch_add(1, Ordering::Relaxed);
                Next::At(free_at)
            }
        }
    }
}
