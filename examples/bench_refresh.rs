//! Benchmark driver for `scripts/bench.sh`: refresh latency.
//!
//! Refreshes already-Ready sessions one at a time, round-robin: sets a new `ecsvnc.dev/refresh`
//! value (merge patch) and times until a watch event shows that value served with a new console
//! URL. After each refresh it makes one direct `DescribeInstanceVncUrl` call with the operator's
//! own ECS client (pooled connection, same options) against the same endpoint, on instances no
//! session uses: the ECS share of the latency, measured interleaved on the same machine.
//!
//! Writes raw samples as JSON (`--out`); `bench/report.py` turns them into figures.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use ecs_vnc_operator::aliyun::{Credentials, Endpoint};
use ecs_vnc_operator::session::VncSession;
use ecs_vnc_operator::session::crd::{Phase, REFRESH_ANNOTATION};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

#[path = "support/ecs.rs"]
mod ecs;
#[path = "support/watch.rs"]
mod watch;

use watch::Msg;

#[derive(Parser)]
#[command(about = "Refresh latency benchmark (see scripts/bench.sh)")]
struct Args {
    #[arg(long)]
    namespace: String,
    /// Ready sessions to refresh, round-robin.
    #[arg(long, value_delimiter = ',', required = true)]
    sessions: Vec<String>,
    #[arg(long, default_value_t = 200)]
    refreshes: usize,
    /// ECS endpoint for the direct calls (the operator's --ecs-endpoint).
    #[arg(long)]
    ecs_endpoint: String,
    #[arg(long, default_value = "cn-hangzhou")]
    region_id: String,
    /// Instances for the direct ECS calls; no session may use them.
    #[arg(long, value_delimiter = ',', required = true)]
    ecs_instances: Vec<String>,
    /// Longest wait for one refresh to be served, in seconds.
    #[arg(long, default_value_t = 20)]
    timeout_secs: u64,
    #[arg(long)]
    out: PathBuf,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let client = Client::try_default().await?;
    let api: Api<VncSession> = Api::namespaced(client, &args.namespace);
    let creds = Credentials::from_env()?.ok_or("set ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET")?;
    let endpoint = Endpoint::parse(&args.ecs_endpoint)?;
    // The operator's client settings, three tries per call.
    let ecs = ecs::client(3)?;

    let (mut events, watch_task) = watch::spawn(api.clone(), "bench_refresh");
    let mut last_url: HashMap<String, Option<String>> = HashMap::new();
    let mut instance_of: HashMap<String, String> = HashMap::new();
    // Every URL issue the driver knows of, per instance, in wall-clock ms: the first issues from
    // the initial list (whole seconds, as status records them), then each refresh.
    let mut issues: HashMap<String, Vec<i64>> = HashMap::new();
    let sync_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout_at(sync_deadline.into(), events.recv())
            .await
            .map_err(|_| "watch did not sync within 30 s")?
            .ok_or("watch ended")?;
        match msg {
            Msg::Synced => break,
            Msg::Seen(s) => {
                if let Some(at) = s.issued_at.map(|t| t.as_millisecond()) {
                    issues.entry(s.instance_id.clone()).or_default().push(at);
                }
                instance_of.insert(s.name.clone(), s.instance_id);
                last_url.insert(s.name, s.console_url);
            }
        }
    }
    for name in &args.sessions {
        if !instance_of.contains_key(name) {
            return Err(format!("session {name} not found in {}", args.namespace).into());
        }
    }

    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let timeout = Duration::from_secs(args.timeout_secs);
    let mut latency_ms = Vec::with_capacity(args.refreshes);
    let mut patch_ms = Vec::with_capacity(args.refreshes);
    let mut ecs_ms = Vec::with_capacity(args.refreshes);
    let mut failures: Vec<String> = Vec::new();
    let mut ecs_failures: Vec<String> = Vec::new();
    let started = Instant::now();
    for i in 0..args.refreshes {
        let name = &args.sessions[i % args.sessions.len()];
        let value = format!("bench-{run_id}-{i}");
        let patch = json!({"metadata": {"annotations": {REFRESH_ANNOTATION: &value}}});
        let before = last_url.get(name).cloned().flatten();
        let t0 = Instant::now();
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        patch_ms.push(ms(t0.elapsed()));
        let deadline = t0 + timeout;
        let outcome = loop {
            let Ok(msg) = tokio::time::timeout_at(deadline.into(), events.recv()).await else {
                break Err(format!(
                    "refresh {i} of {name}: not served within {timeout:?}"
                ));
            };
            let Some(Msg::Seen(s)) = msg else {
                if msg.is_none() {
                    break Err("watch ended".to_owned());
                }
                continue;
            };
            let is_ours = s.name == *name && s.observed_refresh.as_deref() == Some(value.as_str());
            last_url.insert(s.name.clone(), s.console_url.clone());
            if !is_ours {
                continue;
            }
            let fresh = s.console_url.is_some() && s.console_url != before;
            break if s.phase == Some(Phase::Ready) && fresh {
                Ok(s.at.duration_since(t0))
            } else {
                Err(format!(
                    "refresh {i} of {name}: served as {:?} without a new URL",
                    s.phase
                ))
            };
        };
        match outcome {
            Ok(d) => {
                latency_ms.push(ms(d));
                issues
                    .entry(instance_of[name].clone())
                    .or_default()
                    .push(now_ms());
            }
            Err(e) => failures.push(e),
        }
        // One direct ECS call while nothing else of ours is in flight.
        let instance = &args.ecs_instances[i % args.ecs_instances.len()];
        let t = Instant::now();
        match ecs
            .describe_instance_vnc_url(&endpoint, &creds, &args.region_id, instance)
            .await
        {
            Ok(_) => {
                ecs_ms.push(ms(t.elapsed()));
                issues.entry(instance.clone()).or_default().push(now_ms());
            }
            Err(e) => ecs_failures.push(format!("{}: {}", e.code(), e.message())),
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    eprintln!(
        "bench_refresh: {} refreshes ({} failed) in {wall_s:.1} s",
        latency_ms.len(),
        failures.len()
    );
    let out = json!({
        "refreshes": args.refreshes,
        "sessions": args.sessions.len(),
        "ecsInstances": args.ecs_instances.len(),
        "wallSeconds": wall_s,
        "latencyMs": latency_ms,
        "patchMs": patch_ms,
        "ecsCallMs": ecs_ms,
        "failures": failures,
        "ecsFailures": ecs_failures,
        "issuesByInstanceMs": issues,
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&out)?)?;
    watch_task.abort();
    Ok(())
}
