//! ECS's account flow control against ecs-sim: the simulator's per-AccessKey, per-region quota, and
//! the operator's pacer (the same `Pacer::run` the issue path uses) in front of the real
//! `EcsClient`. Assertions are about answers, never about how long anything took.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ecs_vnc_operator::aliyun::{ClientOptions, Credentials, EcsClient, Endpoint, RetryPolicy};
use ecs_vnc_operator::controller::pacer::{PaceKey, Pacer, PacerConfig};
use ecs_vnc_operator::sim::{
    self, Fault, FaultKind, SimAccount, SimConfig, SimHandle, SimInstance,
};
use serde_json::json;
use support::ecs_sim::{self, REGION as HANGZHOU, VNC};
use support::http::{self, status_and_json};
use tokio::sync::Semaphore;

const SHANGHAI: &str = "cn-shanghai";
const AK1: &str = "quota-ak-1";
const AK2: &str = "quota-ak-2";
/// Reconciles in flight at once, as the operator's default.
const CONCURRENCY: usize = 32;

fn instance_id(region: &str, n: usize) -> String {
    format!("i-{region}-{n:04}")
}

/// Two accounts, 50 instances in each of two regions; the per-instance reconnect limit is out of
/// the way so that every `Throttling.User` here is the account quota's.
async fn start(quota: u32) -> (SimHandle, Endpoint) {
    let mut instances = Vec::new();
    for region in [HANGZHOU, SHANGHAI] {
        for n in 0..50 {
            instances.push(SimInstance {
                instance_id: instance_id(region, n),
                region_id: region.to_owned(),
                status: sim::InstanceStatus::Running,
                os_type: "linux".to_owned(),
            });
        }
    }
    let account = |id: &str| SimAccount {
        access_key_id: id.to_owned(),
        access_key_secret: format!("{id}-secret"),
        security_token: None,
    };
    let config = SimConfig {
        accounts: vec![account(AK1), account(AK2)],
        instances,
        reconnect_limit_per_minute: 100_000,
        ..SimConfig::default()
    };
    let handle = ecs_sim::start(config).await;
    handle.set_account_quota(Some(quota));
    let endpoint = ecs_sim::endpoint(&handle);
    (handle, endpoint)
}

fn creds(access_key_id: &str) -> Credentials {
    Credentials::new(access_key_id, format!("{access_key_id}-secret"), None)
}

/// The operator's client: one attempt per call, the controller does the retrying.
fn client() -> EcsClient {
    EcsClient::new(ClientOptions {
        retry: RetryPolicy {
            max_attempts: 1,
            deadline: Duration::from_secs(10),
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    })
    .unwrap()
}

/// One session to serve: whose key, which region, which instance.
#[derive(Clone)]
struct Job {
    access_key_id: &'static str,
    region_id: &'static str,
    instance_id: String,
}

/// `count` sessions of one key in one region; each key has 25 instances of its own per region.
fn jobs(access_key_id: &'static str, region_id: &'static str, count: usize) -> Vec<Job> {
    let first = if access_key_id == AK1 { 0 } else { 25 };
    (0..count)
        .map(|n| Job {
            access_key_id,
            region_id,
            instance_id: instance_id(region_id, first + n % 25),
        })
        .collect()
}

/// Serves every job the way the controller does: at most [`CONCURRENCY`] at once, each through
/// the pacer; a turn handed back, or a throttling answer, puts the job back for a moment (the
/// slot is free meanwhile). Returns how many were served.
async fn serve_all(endpoint: &Endpoint, pacer: Arc<Pacer>, jobs: Vec<Job>) -> usize {
    let client = client();
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for job in jobs {
        let (client, endpoint, pacer, slots) = (
            client.clone(),
            endpoint.clone(),
            Arc::clone(&pacer),
            Arc::clone(&slots),
        );
        tasks.spawn(async move {
            let creds = creds(job.access_key_id);
            let key = PaceKey::new(job.access_key_id, job.region_id);
            for _ in 0..100 {
                let answer = {
                    let _slot = slots.acquire().await.expect("never closed");
                    let call = client.describe_instance_vnc_url(
                        &endpoint,
                        &creds,
                        job.region_id,
                        &job.instance_id,
                    );
                    pacer.run(&key, call).await
                };
                let again_in = match answer {
                    Ok(Ok(_)) => return true,
                    Ok(Err(e)) if e.is_throttling() => Duration::from_millis(200),
                    Ok(Err(e)) => panic!("unexpected answer: {e}"),
                    Err(free_at) => {
                        let wait = free_at.duration_since(jiff::Timestamp::now());
                        Duration::try_from(wait).unwrap_or_default()
                    }
                };
                tokio::time::sleep(again_in).await;
            }
            false
        });
    }
    let mut served = 0;
    while let Some(done) = tasks.join_next().await {
        served += usize::from(done.expect("job task"));
    }
    served
}

fn throttled_share(sim: &SimHandle) -> (u64, u64, f64) {
    let stats = sim.stats();
    let calls = stats.total(VNC);
    let throttled = stats.count(VNC, "Throttling.User");
    (calls, throttled, throttled as f64 / calls.max(1) as f64)
}

#[tokio::test]
async fn beyond_the_quota_ecs_sim_answers_throttling_user_for_that_key_and_region_only() {
    let (sim, endpoint) = start(1).await;
    let c = client();
    let call = |key: &'static str, region: &'static str| {
        let c = c.clone();
        let endpoint = endpoint.clone();
        async move {
            c.describe_instance_vnc_url(&endpoint, &creds(key), region, &instance_id(region, 0))
                .await
        }
    };
    // One a second: a quick run of calls meets the empty bucket long before fifty.
    let mut refused = None;
    for _ in 0..50 {
        if let Err(e) = call(AK1, HANGZHOU).await {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("the quota refuses a burst");
    assert!(refused.is_throttling());
    assert_eq!(refused.code(), "Throttling.User");
    assert_eq!(refused.http_status(), Some(400));
    assert_eq!(
        refused.message(),
        "Request was denied due to user flow control."
    );

    // Other regions and other keys have buckets of their own, still full.
    call(AK1, SHANGHAI).await.expect("another region");
    call(AK2, HANGZHOU).await.expect("another key");

    let stats = sim.stats();
    let hangzhou = stats.account(AK1, HANGZHOU);
    assert_eq!(hangzhou.throttled, 1);
    assert_eq!(hangzhou.calls, stats.total(VNC) - 2);
    assert_eq!(stats.account(AK1, SHANGHAI).throttled, 0);
    assert_eq!(stats.account(AK2, HANGZHOU).throttled, 0);
    assert_eq!(stats.count(VNC, "Throttling.User"), 1);

    // Off again: nothing is refused.
    sim.set_account_quota(None);
    for _ in 0..20 {
        call(AK1, HANGZHOU).await.expect("no quota");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_paced_burst_at_the_quota_is_served_with_almost_no_throttling() {
    let (sim, endpoint) = start(100).await;
    let pacer = Arc::new(Pacer::new(PacerConfig::per_second(100)));
    let served = serve_all(&endpoint, pacer, jobs(AK1, HANGZHOU, 300)).await;
    assert_eq!(served, 300);
    let (calls, throttled, share) = throttled_share(&sim);
    assert!(share <= 0.02, "{throttled} of {calls} calls throttled");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_pacer_set_above_the_quota_slows_down_to_it() {
    let (sim, endpoint) = start(50).await;
    let pacer = Arc::new(Pacer::new(PacerConfig::per_second(100)));
    let key = PaceKey::new(AK1, HANGZHOU);
    let served = serve_all(&endpoint, Arc::clone(&pacer), jobs(AK1, HANGZHOU, 300)).await;
    assert_eq!(served, 300);
    let (calls, throttled, share) = throttled_share(&sim);
    // Unpaced, half of such a stream would be refused.
    assert!(throttled > 0, "the quota was never reached");
    assert!(share <= 0.10, "{throttled} of {calls} calls throttled");
    assert!(pacer.rate(&key).unwrap() < 100.0);
    sim.shutdown().await;
}

#[tokio::test]
async fn without_pacing_the_same_kind_of_burst_is_mostly_throttled() {
    let (sim, endpoint) = start(1).await;
    let c = client();
    let mut tasks = tokio::task::JoinSet::new();
    for job in jobs(AK1, HANGZHOU, 100) {
        let (c, endpoint) = (c.clone(), endpoint.clone());
        tasks.spawn(async move {
            let creds = creds(job.access_key_id);
            let _ = c
                .describe_instance_vnc_url(&endpoint, &creds, job.region_id, &job.instance_id)
                .await;
        });
    }
    while tasks.join_next().await.is_some() {}
    let (calls, throttled, share) = throttled_share(&sim);
    assert_eq!(calls, 100);
    assert!(share >= 0.5, "only {throttled} of {calls} calls throttled");
    sim.shutdown().await;
}

#[tokio::test]
async fn keys_and_regions_are_paced_separately() {
    let (sim, endpoint) = start(50).await;
    let pacer = Arc::new(Pacer::new(PacerConfig::per_second(50)));
    // ECS throttles one key in one region (say another client of that account is busy there):
    // only that key slows down.
    sim.inject(
        Fault::next(FaultKind::Error {
            status: 400,
            code: "Throttling.User".to_owned(),
            message: "Request was denied due to user flow control.".to_owned(),
        })
        .for_instance(&instance_id(HANGZHOU, 0))
        .times(1),
    );
    let mut all = jobs(AK1, HANGZHOU, 100);
    all.extend(jobs(AK1, SHANGHAI, 100));
    all.extend(jobs(AK2, HANGZHOU, 100));
    let served = serve_all(&endpoint, Arc::clone(&pacer), all).await;
    assert_eq!(served, 300);

    let stats = sim.stats();
    for (key, region) in [(AK1, HANGZHOU), (AK1, SHANGHAI), (AK2, HANGZHOU)] {
        let seen = stats.account(key, region);
        // Three streams at the quota each, together three times it: still next to no refusals,
        // because each is counted (by ECS) and paced (by the operator) on its own.
        assert!(
            seen.calls >= 100 && seen.throttled <= 2,
            "{key} in {region}: {seen:?}"
        );
    }
    assert!(pacer.rate(&PaceKey::new(AK1, HANGZHOU)).unwrap() < 50.0);
    assert_eq!(pacer.rate(&PaceKey::new(AK1, SHANGHAI)), Some(50.0));
    assert_eq!(pacer.rate(&PaceKey::new(AK2, HANGZHOU)), Some(50.0));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_quota_is_set_and_read_over_the_admin_api_and_counted_in_stats() {
    let (sim, endpoint) = start(5).await;
    let admin = |path: &str| format!("{}/_sim/{path}", sim.endpoint());
    let http = http::client();
    let read = |path: &str| {
        let request = http.get(admin(path)).send();
        async move { status_and_json(request.await.unwrap()).await }
    };
    let set = |body: &'static str| {
        let request = http.post(admin("quota")).body(body).send();
        async move { status_and_json(request.await.unwrap()).await }
    };

    assert_eq!(
        read("quota").await,
        (200, json!({"accountQpsPerRegion": 5}))
    );
    let answer = set(r#"{"accountQpsPerRegion": 1}"#).await;
    assert_eq!(answer.1, json!({"accountQpsPerRegion": 1}));
    assert_eq!(sim.account_quota(), Some(1));
    assert_eq!(set(r#"{"qps": 1}"#).await.0, 400);

    let (c, ak1) = (client(), creds(AK1));
    let instance = instance_id(HANGZHOU, 0);
    let call = || c.describe_instance_vnc_url(&endpoint, &ak1, HANGZHOU, &instance);
    let mut answers = Vec::new();
    for _ in 0..50 {
        let refused = call().await.is_err();
        answers.push(refused);
        if refused {
            break;
        }
    }
    assert_eq!(
        answers.last(),
        Some(&true),
        "the quota of 1/s refuses a quick run of calls"
    );
    let (_, stats) = read("stats").await;
    assert_eq!(
        stats["byAccount"][AK1][HANGZHOU],
        json!({"calls": answers.len(), "throttled": 1})
    );

    let answer = set(r#"{"accountQpsPerRegion": null}"#).await;
    assert_eq!(answer.1, json!({"accountQpsPerRegion": null}));
    call().await.expect("no quota");
    sim.shutdown().await;
}
