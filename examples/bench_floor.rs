//! Benchmark driver for `scripts/bench.sh`: the API server's own floor for the scale phase.
//!
//! Does to the API server what the scale phase asks of it, and nothing else: creates `--count`
//! VncSessions with `--create-concurrency` creates in flight (as `bench_scale` does), and as each
//! one exists writes its status `--patches` times in all (spread evenly over the sessions, one
//! after the other for each session, as a reconcile does), with `--concurrency` sessions in
//! flight (as the operator's `--max-concurrent-reconciles`). Each write is what the operator
//! sends: a server-side apply of a whole `Ready` status of the same shape, made conditional on
//! the resourceVersion the previous write returned. No watch, no ECS, no Events, no decisions.
//!
//! The time from the first create to the last status written is the floor that the operator's
//! "all Ready" time is compared with. Run it in a namespace no operator watches.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use ecs_vnc_operator::session::VncSession;
use futures::{StreamExt, stream};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[path = "support/spread.rs"]
mod spread;

use spread::Spread;

#[derive(Parser)]
#[command(about = "API server floor for the scale benchmark (see scripts/bench.sh)")]
struct Args {
    #[arg(long)]
    namespace: String,
    #[arg(long)]
    count: usize,
    /// Status writes in all; at least one per session.
    #[arg(long)]
    patches: usize,
    /// Sessions whose status is being written at once (the operator's reconciles in flight).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Creates in flight (`bench_scale --concurrency`).
    #[arg(long, default_value_t = 32)]
    create_concurrency: usize,
    #[command(flatten)]
    spread: Spread,
    #[arg(long)]
    out: PathBuf,
}

const MANAGER: &str = "bench-floor";

/// A `Ready` status the size of one the operator writes (URLs as long as ecs-sim's).
fn ready_status(instance_id: &str, write: usize) -> Value {
    let now = jiff::Timestamp::now();
    let later = now + jiff::SignedDuration::from_secs(15);
    let vnc_url = format!(
        "wss://ecs-sim.invalid/vnc/{instance_id}?token={:064x}",
        write + 1
    );
    let console_url = format!(
        "https://ecs.console.aliyun.invalid/vnc/index.htm?vncUrl={}&instanceId={instance_id}&isWindows=false",
        vnc_url.replace(':', "%3A").replace('/', "%2F")
    );
    json!({
        "phase": "Ready",
        "consoleUrl": console_url,
        "vncUrl": vnc_url,
        "issuedAt": now.to_string(),
        "urlExpiresAt": later.to_string(),
        "sessionExpiresAt": (now + jiff::SignedDuration::from_secs(300)).to_string(),
        "refreshable": true,
        "isWindows": false,
        "requestId": format!("{:08X}-0000-4000-8000-{:012X}", write, write),
        "refreshCount": 0,
        "observedGeneration": 1,
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "UrlIssued",
            "message": "console URL issued; valid until the time in urlExpiresAt",
            "lastTransitionTime": now.to_string(), "observedGeneration": 1,
        }],
    })
}

async fn write_statuses(
    api: &Api<VncSession>,
    name: &str,
    instance_id: &str,
    mut version: Option<String>,
    writes: usize,
) -> Result<(), kube::Error> {
    let params = PatchParams::apply(MANAGER).force();
    for w in 0..writes {
        let patch = json!({
            "apiVersion": "ecsvnc.dev/v1alpha1",
            "kind": "VncSession",
            "metadata": {"resourceVersion": version},
            "status": ready_status(instance_id, w),
        });
        let written = api
            .patch_status(name, &params, &Patch::Apply(&patch))
            .await?;
        version = written.metadata.resource_version;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let n = args.count.max(1);
    let patches = args.patches.max(n);
    let client = Client::try_default().await?;
    let api: Api<VncSession> = Api::namespaced(client, &args.namespace);
    let width = n.saturating_sub(1).to_string().len().max(4);
    let plan: Vec<(String, String, usize)> = (0..n)
        .map(|i| {
            let instance = args.spread.instance(i);
            // Evenly spread: the first (patches % n) sessions get one write more.
            let writes = patches / n + usize::from(i < patches % n);
            (format!("floor-{i:0width$}"), instance, writes)
        })
        .collect();

    let (created_tx, created_rx) =
        mpsc::unbounded_channel::<(String, String, Option<String>, usize)>();
    let started = Instant::now();
    let creator = {
        let api = api.clone();
        let spread = args.spread.clone();
        let create_concurrency = args.create_concurrency.max(1);
        tokio::spawn(async move {
            let pp = PostParams::default();
            let mut errors = 0usize;
            let mut creates = stream::iter(plan.into_iter().map(|(name, instance, writes)| {
                let api = api.clone();
                let pp = pp.clone();
                let obj = spread.session(&name, &instance, "floor");
                async move {
                    let created = api.create(&pp, &obj?).await?;
                    let version = created.metadata.resource_version.clone();
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>((
                        created.name_any(),
                        instance,
                        version,
                        writes,
                    ))
                }
            }))
            .buffer_unordered(create_concurrency);
            while let Some(result) = creates.next().await {
                match result {
                    Ok(job) => {
                        let _ = created_tx.send(job);
                    }
                    Err(e) => {
                        errors += 1;
                        eprintln!("bench_floor: create: {e}");
                    }
                }
            }
            (started.elapsed(), errors)
        })
    };

    let mut written = 0usize;
    let mut write_errors = 0usize;
    let mut writers = tokio_stream_from(created_rx)
        .map(|(name, instance, version, writes)| {
            let api = api.clone();
            async move {
                let result = write_statuses(&api, &name, &instance, version, writes).await;
                (writes, result)
            }
        })
        .buffer_unordered(args.concurrency.max(1));
    while let Some((writes, result)) = writers.next().await {
        match result {
            Ok(()) => written += writes,
            Err(e) => {
                write_errors += 1;
                eprintln!("bench_floor: status write: {e}");
            }
        }
    }
    let floor = started.elapsed();
    let (created_in, create_errors) = creator.await?;
    eprintln!(
        "bench_floor: {n} created in {:.1} s, {written} status writes ({write_errors} failed) \
         done {:.1} s after the first create",
        created_in.as_secs_f64(),
        floor.as_secs_f64()
    );
    let out = json!({
        "count": n,
        "patches": patches,
        "written": written,
        "concurrency": args.concurrency,
        "createConcurrency": args.create_concurrency,
        "createSeconds": created_in.as_secs_f64(),
        "createErrors": create_errors,
        "writeErrors": write_errors,
        "floorSeconds": floor.as_secs_f64(),
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&out)?)?;
    Ok(())
}

/// The receiver as a stream that ends once every sender is gone (the creates are done).
fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> {
    stream::poll_fn(move |cx| rx.poll_recv(cx))
}
