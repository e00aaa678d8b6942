//! The renewal cell's behaviour over time: when credentials are due, how failures back off, and
//! how concurrent callers share one renewal.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{RenewBackoff, Renewing, renewal_due, renewal_margin, renewal_time};
use crate::aliyun::credentials::Credentials;
use crate::aliyun::sts::StsCredentials;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn at(base: Timestamp, secs: i64) -> Timestamp {
    base.checked_add(SignedDuration::from_secs(secs)).unwrap()
}

const T0: &str = "2026-12-01T09:00:00Z";

// When credentials are due, and the backoff after failures.

#[test]
fn margin_is_three_minutes_or_a_quarter_of_a_short_lifetime() {
    let t0 = t(T0);
    for (lifetime, margin) in [
        (3600, 180), // a real STS hour
        (21_600, 180),
        (900, 180), // 15 min: a quarter would be 225 s
        (720, 180),
        (60, 15),
        (8, 2),
        (1, 0), // 250 ms, checked below
    ] {
        let exp = at(t0, lifetime);
        let m = renewal_margin(t0, exp);
        assert_eq!(m.as_secs(), margin, "lifetime {lifetime}");
        assert_eq!(renewal_time(t0, exp), exp.checked_sub(m).unwrap());
    }
    assert_eq!(
        renewal_margin(t0, at(t0, 1)),
        SignedDuration::from_millis(250)
    );
}

#[test]
fn an_answer_already_expired_is_due_at_once() {
    let t0 = t(T0);
    for exp in [t0, at(t0, -1), at(t0, -7200)] {
        assert_eq!(renewal_margin(t0, exp), SignedDuration::ZERO);
        assert_eq!(renewal_time(t0, exp), exp);
        assert!(renewal_due(t0, t0, renewal_time(t0, exp)));
    }
}

#[test]
fn due_at_the_renewal_time_not_before() {
    let t0 = t(T0);
    let renew_at = renewal_time(t0, at(t0, 3600));
    assert!(!renewal_due(at(t0, 3419), t0, renew_at));
    assert!(renewal_due(at(t0, 3420), t0, renew_at));
    assert!(renewal_due(at(t0, 99_999), t0, renew_at));
}

#[test]
fn a_clock_that_went_back_makes_credentials_due() {
    let t0 = t(T0);
    let renew_at = renewal_time(t0, at(t0, 3600));
    // An NTP slew of a fraction of a second is not a reason to renew.
    let slewed = t0.checked_sub(SignedDuration::from_millis(500)).unwrap();
    assert!(!renewal_due(slewed, t0, renew_at));
    assert!(renewal_due(at(t0, -2), t0, renew_at));
    assert!(renewal_due(at(t0, -7200), t0, renew_at));
}

#[test]
fn backoff_doubles_and_caps() {
    let b = RenewBackoff::default();
    let delays: Vec<u64> = (1..=9).map(|n| b.delay(n).as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(b.delay(0), Duration::from_secs(1));
    assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
}

// The cell.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Boom(u32);

fn sts(id: &str, expiration: Timestamp) -> StsCredentials {
    StsCredentials {
        credentials: Credentials::new(id, "secret", Some("token".into())),
        expiration,
    }
}

/// A fetch that counts its calls and answers from `answers` in order.
struct Script {
    calls: AtomicU32,
    answers: Mutex<Vec<Result<StsCredentials, Boom>>>,
}

impl Script {
    fn new(answers: Vec<Result<StsCredentials, Boom>>) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicU32::new(0),
            answers: Mutex::new(answers.into_iter().rev().collect()),
        })
    }

    async fn next(self: Arc<Self>) -> Result<StsCredentials, Boom> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.answers.lock().unwrap().pop().unwrap_or(Err(Boom(n)))
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn get(cell: &Renewing<Boom>, script: &Arc<Script>, now: Timestamp) -> Result<String, Boom> {
    let s = script.clone();
    cell.get(now, move || s.next())
        .await
        .map(|c| c.access_key_id().to_owned())
}

#[tokio::test]
async fn fetches_once_then_serves_until_due() {
    let t0 = t(T0);
    let script = Script::new(vec![Ok(sts("a", at(t0, 3600))), Ok(sts("b", at(t0, 7200)))]);
    let cell = Renewing::new();
    assert_eq!(cell.expires_at(), None);
    assert_eq!(get(&cell, &script, t0).await.unwrap(), "a");
    assert_eq!(get(&cell, &script, at(t0, 3419)).await.unwrap(), "a");
    assert_eq!(script.calls(), 1);
    assert_eq!(cell.expires_at(), Some(at(t0, 3600)));
    assert_eq!(cell.renew_at(), Some(at(t0, 3420)));
    assert_eq!(get(&cell, &script, at(t0, 3420)).await.unwrap(), "b");
    assert_eq!(script.calls(), 2);
}

#[tokio::test]
async fn rejected_credentials_are_fetched_anew_even_during_a_backoff() {
    let t0 = t(T0);
    let script = Script::new(vec![
        Ok(sts("a", at(t0, 3600))),
        Err(Boom(0)),
        Ok(sts("b", at(t0, 7200))),
    ]);
    let cell = Renewing::new();
    assert_eq!(get(&cell, &script, t0).await.unwrap(), "a");
    // A renewal failed: the old credentials are served during the backoff...
    assert_eq!(get(&cell, &script, at(t0, 3500)).await.unwrap(), "a");
    assert_eq!(get(&cell, &script, at(t0, 3500)).await.unwrap(), "a");
    assert_eq!(script.calls(), 2);
    // ...until the service they were for refuses them: then the next call fetches.
    cell.invalidate();
    assert_eq!(cell.expires_at(), None);
    assert_eq!(get(&cell, &script, at(t0, 3500)).await.unwrap(), "b");
    assert_eq!(script.calls(), 3);
}

#[tokio::test]
async fn rejections_in_quick_succession_drop_the_credentials_once() {
    let t0 = t(T0);
    let script = Script::new(vec![
        Ok(sts("a", at(t0, 3600))),
        Ok(sts("b", at(t0, 3600))),
        Ok(sts("c", at(t0, 3600))),
    ]);
    let cell = Renewing::new();
    get(&cell, &script, t0).await.unwrap();
    let gap = Duration::from_secs(30);
    assert!(
        cell.invalidate_at_most_every(gap),
        "the first rejection drops them"
    );
    assert_eq!(get(&cell, &script, t0).await.unwrap(), "b");
    for _ in 0..25 {
        assert!(
            !cell.invalidate_at_most_every(gap),
            "later ones within the gap do not"
        );
        assert_eq!(get(&cell, &script, t0).await.unwrap(), "b");
    }
    assert_eq!(script.calls(), 2, "one fetch for 26 rejections");
    assert!(
        cell.invalidate_at_most_every(Duration::ZERO),
        "after the gap it drops again"
    );
}

#[tokio::test]
async fn a_failed_renewal_keeps_serving_the_old_credentials_with_backoff() {
    let t0 = t(T0);
    let script = Script::new(vec![
        Ok(sts("a", at(t0, 3600))),
        Err(Boom(1)),
        Err(Boom(2)),
        Ok(sts("b", at(t0, 9000))),
    ]);
    let cell = Renewing::new();
    get(&cell, &script, t0).await.unwrap();
    // Due at 3420: the renewal fails, the old credentials are still good.
    assert_eq!(get(&cell, &script, at(t0, 3420)).await.unwrap(), "a");
    assert_eq!(script.calls(), 2);
    assert_eq!(cell.failures(), 1);
    // Within the 1 s backoff: no new attempt, however often asked.
    for _ in 0..50 {
        assert_eq!(get(&cell, &script, at(t0, 3420)).await.unwrap(), "a");
    }
    assert_eq!(script.calls(), 2);
    // After it: one attempt, failing again; then 2 s of quiet.
    assert_eq!(get(&cell, &script, at(t0, 3421)).await.unwrap(), "a");
    assert_eq!(script.calls(), 3);
    assert_eq!(get(&cell, &script, at(t0, 3422)).await.unwrap(), "a");
    assert_eq!(script.calls(), 3);
    assert_eq!(get(&cell, &script, at(t0, 3423)).await.unwrap(), "b");
    assert_eq!(script.calls(), 4);
    assert_eq!(cell.failures(), 0);
}

#[tokio::test]
async fn once_expired_a_failed_renewal_is_an_error_repeated_until_the_backoff_ends() {
    let t0 = t(T0);
    let script = Script::new(vec![Ok(sts("a", at(t0, 60))), Err(Boom(1)), Err(Boom(2))]);
    let cell = Renewing::new();
    get(&cell, &script, t0).await.unwrap();
    assert_eq!(get(&cell, &script, at(t0, 61)).await, Err(Boom(1)));
    assert_eq!(get(&cell, &script, at(t0, 61)).await, Err(Boom(1)));
    assert_eq!(script.calls(), 2, "no refetch inside the backoff");
    assert_eq!(get(&cell, &script, at(t0, 62)).await, Err(Boom(2)));
    assert_eq!(script.calls(), 3);
}

#[tokio::test]
async fn an_empty_cell_that_fails_backs_off_too() {
    let t0 = t(T0);
    let script = Script::new(vec![Err(Boom(7))]);
    let cell = Renewing::new();
    assert_eq!(get(&cell, &script, t0).await, Err(Boom(7)));
    assert_eq!(get(&cell, &script, t0).await, Err(Boom(7)));
    assert_eq!(script.calls(), 1);
}

#[tokio::test]
async fn the_retry_after_a_failure_comes_no_later_than_the_expiry() {
    let t0 = t(T0);
    let script = Script::new(vec![
        Ok(sts("a", at(t0, 3600))),
        Err(Boom(1)),
        Err(Boom(2)),
        Err(Boom(3)),
        Err(Boom(4)),
        Err(Boom(5)),
        Err(Boom(6)),
        Err(Boom(7)),
        Ok(sts("b", at(t0, 9000))),
    ]);
    let cell = Renewing::with_backoff(RenewBackoff {
        base: Duration::from_secs(100),
        cap: Duration::from_secs(600),
    });
    get(&cell, &script, t0).await.unwrap();
    // Fails at 3420: next try at 3520.
    assert_eq!(get(&cell, &script, at(t0, 3420)).await.unwrap(), "a");
    // Fails at 3520: next try at the expiry (3600), not 200 s later.
    assert_eq!(get(&cell, &script, at(t0, 3520)).await.unwrap(), "a");
    assert_eq!(script.calls(), 3);
    assert_eq!(get(&cell, &script, at(t0, 3599)).await.unwrap(), "a");
    assert_eq!(script.calls(), 3);
    assert_eq!(get(&cell, &script, at(t0, 3600)).await, Err(Boom(3)));
    assert_eq!(script.calls(), 4);
}

#[tokio::test]
async fn credentials_expired_on_arrival_are_used_without_a_refetch_storm() {
    let t0 = t(T0);
    let script = Script::new(vec![
        Ok(sts("skewed", at(t0, -10))),
        Ok(sts("fine", at(t0, 3600))),
    ]);
    let cell = Renewing::new();
    assert_eq!(get(&cell, &script, t0).await.unwrap(), "skewed");
    for _ in 0..20 {
        assert_eq!(get(&cell, &script, t0).await.unwrap(), "skewed");
    }
    assert_eq!(script.calls(), 1);
    assert_eq!(get(&cell, &script, at(t0, 1)).await.unwrap(), "fine");
    assert_eq!(script.calls(), 2);
}

#[tokio::test]
async fn a_clock_that_jumped_back_renews() {
    let t0 = t(T0);
    let script = Script::new(vec![Ok(sts("a", at(t0, 3600))), Ok(sts("b", at(t0, 3000)))]);
    let cell = Renewing::new();
    get(&cell, &script, t0).await.unwrap();
    assert_eq!(get(&cell, &script, at(t0, -3600)).await.unwrap(), "b");
    assert_eq!(script.calls(), 2);
}

/// `callers` concurrent `get`s at `t0`, each with a fetch that counts itself, waits for one gate
/// and then answers `answer`; returns every caller's result and how many fetches ran.
async fn gated_callers(
    callers: usize,
    t0: Timestamp,
    answer: Result<StsCredentials, Boom>,
) -> (Vec<Result<Credentials, Boom>>, u32) {
    let calls = Arc::new(AtomicU32::new(0));
    let gate = Arc::new(tokio::sync::Notify::new());
    let cell: Arc<Renewing<Boom>> = Arc::new(Renewing::new());
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (cell, calls, gate, answer) =
            (cell.clone(), calls.clone(), gate.clone(), answer.clone());
        tasks.push(tokio::spawn(async move {
            cell.get(t0, || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                gate.notified().await;
                answer
            })
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.notify_waiters();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    (results, calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn concurrent_callers_share_one_renewal() {
    let t0 = t(T0);
    let (results, calls) = gated_callers(16, t0, Ok(sts("shared", at(t0, 3600)))).await;
    for result in results {
        assert_eq!(result.unwrap().access_key_id(), "shared");
    }
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn callers_during_an_early_renewal_get_the_old_credentials_at_once() {
    let t0 = t(T0);
    let cell: Arc<Renewing<Boom>> = Arc::new(Renewing::new());
    cell.get(t0, || async move { Ok(sts("old", at(t0, 3600))) })
        .await
        .unwrap();
    let gate = Arc::new(tokio::sync::Notify::new());
    let renewing = {
        let (cell, gate) = (cell.clone(), gate.clone());
        tokio::spawn(async move {
            cell.get(at(t0, 3500), || async move {
                gate.notified().await;
                Ok(sts("new", at(t0, 7200)))
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let during = cell
        .get(at(t0, 3500), || async { Err(Boom(99)) })
        .await
        .unwrap();
    assert_eq!(during.access_key_id(), "old");
    gate.notify_waiters();
    assert_eq!(renewing.await.unwrap().unwrap().access_key_id(), "new");
}

#[tokio::test]
async fn waiters_share_a_failure_instead_of_retrying_it() {
    let (results, calls) = gated_callers(8, t(T0), Err(Boom(1))).await;
    for result in results {
        assert_eq!(result, Err(Boom(1)));
    }
    assert_eq!(calls, 1);
}
